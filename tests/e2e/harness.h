/*
 * e2e harness: start the real daemon and mock backends as processes, talk
 * to them over HTTP with libcurl, and look at what a client sees.
 */
#ifndef SY_E2E_HARNESS_H
#define SY_E2E_HARNESS_H

#include <stddef.h>
#include <sys/types.h>
#include <CUnit/CUnit.h>

struct json_object;

struct mock {
    pid_t pid;
    int port;
    char name[32];
    char url[64];
};

struct router {
    pid_t pid;
    int port;
    char dir[64];      /* scratch dir: config, log */
    char config[128];
    char log[128];
};

struct resp {
    long status;
    char *body;
    size_t len;
    char *headers;     /* raw response head */
    double first_byte; /* seconds from start to the first body byte */
    double total;      /* seconds for the whole exchange */
    int chunks;        /* body deliveries seen by the client */
    double chunk_times[64]; /* arrival time of the first 64 deliveries */
    int curl_error;    /* CURLcode, 0 when the exchange completed */
};

/* An OTLP/HTTP trace receiver (tests/otlp_receiver.c), JSON only. */
struct otlp {
    pid_t pid;
    int port;
    char url[64];      /* "http://127.0.0.1:PORT"; exports go to url + "/v1/traces" */
};

/* A free TCP port on 127.0.0.1. */
int free_port(void);

/* mock_backend --name NAME --models MODELS [extra args...]; 0 on success. */
int mock_start(struct mock *m, const char *name, const char *models, const char *const *extra);
void mock_stop(struct mock *m);
/* POST /_mock/mode with a JSON body ("{}" restores normal). */
int mock_set_mode(const struct mock *m, const char *json);
/* Inference requests the mock received (GET /_mock/stats). */
int mock_requests(const struct mock *m);
/* Seconds on the monotonic clock. */
double mono_seconds(void);
void sleep_ms(int ms);

/* At the end of the run: remove the scratch directory (config files, logs,
 * port files), or keep it and say where (keep != 0: something failed). */
void scratch_finish(int keep);

/* The value of one sample line of the router's /metrics ("name{labels}"),
 * or `absent` when there is no such line. */
double metric_value(int port, const char *sample, double absent);

/* GET /_mock/last into r (JSON with method, uri, headers, body). */
int mock_last(const struct mock *m, struct resp *r);

/* Write `yaml` (listen: is added) and start switchyard with it plus extra
 * args; waits until /health answers.  0 on success. */
int router_start(struct router *r, const char *yaml, const char *const *extra);
/* Wait for the daemon to exit by itself; its exit status, or -1 (killed)
 * after timeout_ms. */
int router_wait(struct router *r, int timeout_ms);
/* Stop with SIGTERM; returns the exit status (or -1). */
int router_stop(struct router *r);
/* Run switchyard with args to completion; captures stdout+stderr into out
 * (malloc'd) and returns the exit status. */
int router_run(const char *const *args, char **out);
/* Write text to a fresh file in a scratch dir; returns the path (static
 * buffer rotated over 8 slots). */
const char *write_temp(const char *name, const char *text);

/* HTTP.  headers: NULL-terminated "Name: value" list, may be NULL. */
int http_post(int port, const char *path, const char *body, const char *const *headers,
              struct resp *r);
int http_get(int port, const char *path, struct resp *r);
int http_raw(int port, const char *method, const char *path, const char *body,
             const char *const *headers, long timeout_ms, struct resp *r);
void resp_free(struct resp *r);
/* A response header's value (case-insensitive), copied into a static
 * buffer; NULL when absent. */
const char *resp_header(const struct resp *r, const char *name);
/* Raw bytes over TCP, returns what came back until close or timeout. */
int tcp_exchange(int port, const char *data, size_t len, char *out, size_t outlen, long timeout_ms);
/* A TCP connection to 127.0.0.1:port, or -1. */
int tcp_connect(int port);
/* How many times needle stands in s, not overlapping. */
int count_substr(const char *s, const char *needle);
/* Read fd until the peer closes or timeout_ms pass; closes fd.  Bytes read
 * (out is NUL-terminated). */
int tcp_read_close(int fd, char *out, size_t outlen, long timeout_ms);

/* Lines of a router's log holding `a` (and `b`, unless NULL); 0 when
 * there is no log. */
int router_log_lines(const struct router *r, const char *a, const char *b);

/* Start an otlp_receiver on a free port; 0 on success. */
int otlp_start(struct otlp *o);
void otlp_stop(struct otlp *o);
/* GET /_otlp/spans: every span taken so far, flattened (a new reference to
 * an array; NULL when the receiver does not answer). */
struct json_object *otlp_spans(const struct otlp *o);
/* otlp_spans once it holds at least n spans, or as it is after timeout_ms
 * (exports are sent in the background); NULL as otlp_spans. */
struct json_object *otlp_wait_spans(const struct otlp *o, size_t n, int timeout_ms);
/* GET /_otlp/stats ({requests, spans, rejected, failed, last_error}), a new
 * reference or NULL. */
struct json_object *otlp_stats(const struct otlp *o);
/* POST /_otlp/mode, e.g. {"status":503,"count":2}; "{}" restores normal. */
int otlp_set_mode(const struct otlp *o, const char *json);

/* Router flags that point at the plugins of the build tree. */
extern const char *const router_plugin_args[];

void register_proxy_tests(void);
void register_error_tests(void);
void register_cli_e2e_tests(void);
void register_fallback_e2e_tests(void);
void register_routing_e2e_tests(void);
void register_health_e2e_tests(void);
void register_stream_e2e_tests(void);
void register_ops_e2e_tests(void);
void register_security_e2e_tests(void);
void register_dynconf_e2e_tests(void);
void register_http_e2e_tests(void);
void register_health_flags_e2e_tests(void);
void register_backend_e2e_tests(void);
void register_examples_e2e_tests(void);
void register_discovery_e2e_tests(void);
void register_k8s_e2e_tests(void);
void register_dns_e2e_tests(void);
void register_stats_e2e_tests(void);
void register_endpoints_e2e_tests(void);
void register_trace_e2e_tests(void);
void register_failures_e2e_tests(void);
void register_otlp_e2e_tests(void);

#endif
