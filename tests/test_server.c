#define _POSIX_C_SOURCE 200809L /* strdup */
#include "test_server.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <event2/http.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int test_server_bound_port(struct evhttp_bound_socket *bound)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	evutil_socket_t fd = evhttp_bound_socket_get_fd(bound);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -1;
}

int test_server_write_ports(const char *prog, const char *path, const int *ports, size_t n)
{
	size_t len = strlen(path) + sizeof(".tmp");
	char *tmp = test_server_xcalloc(prog, len);
	FILE *f;
	int rc = -1;

	snprintf(tmp, len, "%s.tmp", path);
	f = fopen(tmp, "w");
	if (f != NULL) {
		int bad = 0;

		for (size_t i = 0; i < n; i++)
			bad |= fprintf(f, "%d\n", ports[i]) < 0;
		bad |= fclose(f) != 0;
		if (!bad && rename(tmp, path) == 0)
			rc = 0;
	}
	if (rc != 0)
		fprintf(stderr, "%s: cannot write %s: %s\n", prog, path, strerror(errno));
	free(tmp);
	return rc;
}

void *test_server_xcalloc(const char *prog, size_t n)
{
	void *p = calloc(1, n ? n : 1);

	if (p == NULL) {
		fprintf(stderr, "%s: out of memory\n", prog);
		exit(1);
	}
	return p;
}

char *test_server_xstrdup(const char *prog, const char *s)
{
	char *p = strdup(s);

	if (p == NULL) {
		fprintf(stderr, "%s: out of memory\n", prog);
		exit(1);
	}
	return p;
}

json_object *test_server_parse_object(const char *buf, size_t len)
{
	json_tokener *tok = json_tokener_new_ex(512);
	json_object *o = NULL;
	size_t end;

	if (tok == NULL || len == 0 || len > INT_MAX)
		goto out;
	o = json_tokener_parse_ex(tok, buf, (int)len);
	if (json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_is_type(o, json_type_object))
		goto bad;
	for (end = json_tokener_get_parse_end(tok); end < len; end++)
		if (!isspace((unsigned char)buf[end]))
			goto bad;
	goto out;
bad:
	json_object_put(o);
	o = NULL;
out:
	if (tok != NULL)
		json_tokener_free(tok);
	return o;
}
