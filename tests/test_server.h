/*
 * test_server: what the test servers (mock_backend, vllm_sim,
 * fake_kube_apiserver) share: the port they bound, written where the
 * harness waits for it, and allocation that ends the process when memory
 * runs out (a test tool has nothing better to do).
 */
#ifndef SY_TEST_SERVER_H
#define SY_TEST_SERVER_H

#include <stddef.h>

struct evhttp_bound_socket;

/* The port a listener bound (for --port 0), or -1. */
int test_server_bound_port(struct evhttp_bound_socket *bound);
/* Write the ports, one a line, to path through path.tmp and a rename, so a
 * reader never sees half of it.  0, or -1 said on stderr after `prog`. */
int test_server_write_ports(const char *prog, const char *path, const int *ports, size_t n);
/* A JSON object filling the whole body (trailing whitespace allowed),
 * nested as deep as the router lets through (json-c's default is 32);
 * else NULL. */
struct json_object *test_server_parse_object(const char *buf, size_t len);
/* calloc / strdup, or "PROG: out of memory" and exit(1). */
void *test_server_xcalloc(const char *prog, size_t n);
char *test_server_xstrdup(const char *prog, const char *s);

#endif
