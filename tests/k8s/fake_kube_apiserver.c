/*
 * fake_kube_apiserver.c - a small Kubernetes API server for switchyard's
 * tests of pod discovery: enough of the API that kubectl (and so
 * client-go) takes it for the real one, plus a control interface to script
 * the faults a router must live through.
 *
 * Serves namespaced core/v1 pods and services (each with a status
 * subresource) and discovery.k8s.io/v1 endpointslices, in memory:
 *   discovery  /version /api /api/v1 /apis /apis/G /apis/G/V, /openapi/v3
 *              (just enough for kubectl; /openapi/v2 is a 404), /healthz
 *              /livez /readyz
 *   list       GET .../[namespaces/NS/]RES ?labelSelector= &fieldSelector=
 *              &limit= &continue= &resourceVersion= &resourceVersionMatch=
 *   watch      the same with ?watch=1 (or /watch/ in the path); see kwatch.c
 *   get        GET .../namespaces/NS/RES/NAME[/status]
 *   create     POST .../namespaces/NS/RES (generateName too)
 *   update     PUT .../namespaces/NS/RES/NAME[/status]
 *   patch      PATCH the same: merge, strategic merge and JSON patches
 *   delete     DELETE .../NAME (DeleteOptions: gracePeriodSeconds,
 *              preconditions), DELETE .../RES (a collection, by selectors)
 * resourceVersion is one counter for everything, as etcd's revision; the
 * history behind watches and paged lists holds the last --history changes.
 * Table output (kubectl get without -o) is served for every resource.
 * ?dryRun=All validates and answers without storing; fieldValidation and
 * fieldManager are accepted and not acted on; server-side apply is not
 * served (415).
 *
 * Flags:
 *   --port P            listen on 127.0.0.1:P (0: any free port)
 *   --host H            the address to listen on (127.0.0.1)
 *   --port-file FILE    (or --ready-file) written when ready: the API port,
 *                       then the control port on a second line if any
 *   --control-port P    also serve /_fake/ alone on plain HTTP at P (0: any),
 *                       for tests that drive an HTTPS fake without TLS
 *   --tls-cert F --tls-key F   serve HTTPS (else plain HTTP)
 *   --client-ca F       accept client certificates signed by this CA as a
 *                       login (the user is the certificate's CN)
 *   --token FILE        require "Authorization: Bearer <the file's text>"
 *                       (read again on every request, so a test can rotate
 *                       it); with --client-ca either one will do. Without
 *                       either, no login is asked for. /_fake/, /version and
 *                       the health paths need none.
 *   --bookmark-interval D   BOOKMARK events this often to watches that
 *                       allow them (default 1s; D is N or Ns, Nms, Nm)
 *   --history N         changes kept for watches and paged lists (1000)
 *   --delete-grace D    pods are deleted gracefully: DELETE sets
 *                       deletionTimestamp (MODIFIED) and the pod goes D later
 *                       (DELETED); gracePeriodSeconds=0 deletes at once.
 *                       Default 0: at once. Objects with finalizers wait for
 *                       them to be patched away, as on the real server.
 *   --watch-timeout D   how long a watch without timeoutSeconds lasts (30m)
 *   --verbose           one line per request on stderr
 * It prints "fake_kube_apiserver: ready on URL" on stdout when listening,
 * and exits cleanly on SIGTERM or SIGINT.
 *
 * Control interface (no login, never failed by /_fake/fail; JSON answers):
 *   GET  /_fake/state          resourceVersion, history start, objects,
 *                              open watches, requests by verb, faults
 *   GET  /_fake/requests       the last 1000 API requests: method, path,
 *                              query, verb, code, user
 *   DELETE /_fake/requests     forget them (and zero the counts)
 *   POST /_fake/load           create or replace every object in the body, a
 *                              List ({"items":[...]}) or an array; each needs
 *                              apiVersion, kind, metadata.name (namespace
 *                              defaults to "default"); status is kept as
 *                              given. All or nothing: a bad item is a 400.
 *   POST /_fake/reset          drop every object, the history, faults and
 *                              stalls, and end every watch; resourceVersion
 *                              keeps counting up
 *   POST /_fake/compact[?resourceVersion=N]  forget the history up to N
 *                              (default: all): a watch or continue token from
 *                              an older version gets 410 Expired
 *   POST /_fake/watches/close[?abrupt=1]  end every open watch now: the
 *                              last chunk, as at timeoutSeconds; abrupt=1
 *                              drops the connections instead
 *   POST /_fake/watches/expire send every open watch an ERROR event (410
 *                              Expired, "too old resource version") and end it
 *   POST /_fake/watches/stall  every watch, open or new, sends nothing (no
 *                              events, no bookmarks, no end at timeoutSeconds;
 *                              a new one does get its 200 and headers) ...
 *   POST /_fake/watches/resume ... until this; the held events then follow
 *                              (or 410 if the history was compacted meanwhile),
 *                              and watches whose time ran out end
 *   POST /_fake/bookmark       a BOOKMARK now to every watch that allows them
 *   POST /_fake/fail           {"code":503,"count":N,"seconds":S,
 *                              "retry_after":1,"only":"list"}: answer API
 *                              requests with that code (a Status object):
 *                              the next N (count -1 or absent: no limit),
 *                              for S seconds (absent: no limit), only one verb
 *                              (discovery list watch get create update patch
 *                              delete deletecollection) or all; {"code":0} ends it
 *   POST /_fake/config         {"bookmark_interval_ms":N,"delete_grace_ms":N}
 *   POST /_fake/listener/close?ms=N  stop accepting: close the listening
 *                              socket (connections are refused), drop every
 *                              watch and every API request that comes on an
 *                              old connection meanwhile (/_fake/ still
 *                              answers there), and listen again on the same
 *                              port N ms later (default 1000). To restart with an
 *                              empty store, kill the process (SIGTERM) and
 *                              start it again with --port P: the port is
 *                              bound with SO_REUSEADDR.
 *
 * A test starts it as tests/e2e/harness.c starts mock_backend: with
 * --port 0 --port-file FILE (and --control-port 0 when it serves HTTPS),
 * waits for the file, reads the port(s), drives /_fake/ with HTTP
 * requests, and ends it with SIGTERM. tests/k8s/kubectl_check.sh does the
 * same from the shell, and tests/k8s/make_certs.sh makes its certificates.
 *
 * Lifetimes follow tests/mock_backend.c: an open watch owns its request
 * until it ends, with a close callback on its connection for a client that
 * goes away (kwatch.c).
 */
#define _POSIX_C_SOURCE 200809L

#include "kfake.h"
#include "../test_server.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#define MAX_BODY (64 * 1024 * 1024)
#define LOG_KEEP 1000
#define MAX_TOKEN 4096

const char *const kverb_names[N_KVERBS] = {
	"other", "discovery", "list", "watch", "get", "create", "update", "patch",
	"delete", "deletecollection",
};

/* ---- queries ---- */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decode %XX and '+' (a space, as Go's url.Values writes it) in place. */
static int url_decode(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (*s == '+') {
			*o++ = ' ';
		} else if (*s == '%') {
			int hi = hexval((unsigned char)s[1]), lo = hi < 0 ? -1 : hexval((unsigned char)s[2]);

			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -1;
			*o++ = (char)(hi * 16 + lo);
			s += 2;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
	return 0;
}

static void parse_query(struct kreq *kr, const char *query)
{
	const char *p = query, *amp;

	while (p != NULL && *p != '\0') {
		char *pair, *eq;
		size_t n;

		amp = strchr(p, '&');
		n = amp ? (size_t)(amp - p) : strlen(p);
		if (n > 0) {
			if (kr->nq == KF_MAX_QUERY) {
				kr->bad_query = 1;
				return;
			}
			pair = strndup(p, n);
			if (pair == NULL) {
				fprintf(stderr, "fake_kube_apiserver: out of memory\n");
				exit(1);
			}
			eq = strchr(pair, '=');
			if (eq != NULL)
				*eq++ = '\0';
			kr->qk[kr->nq] = pair;
			kr->qv[kr->nq] = eq != NULL ? eq : pair + strlen(pair);
			kr->nq++;
			if (url_decode(pair) != 0 || (eq != NULL && url_decode(eq) != 0))
				kr->bad_query = 1;
		}
		p = amp ? amp + 1 : NULL;
	}
}

const char *kq_get(const struct kreq *kr, const char *key)
{
	int i;

	/* the first one, as Go's url.Values.Get reads it */
	for (i = 0; i < kr->nq; i++)
		if (!strcmp(kr->qk[i], key))
			return kr->qv[i];
	return NULL;
}

int kq_true(const struct kreq *kr, const char *key)
{
	const char *v = kq_get(kr, key);

	return v != NULL && (!strcmp(v, "1") || !strcasecmp(v, "true"));
}

/* ---- answers ---- */

json_object *kf_status(int code, const char *reason, const char *msg)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "kind", json_object_new_string("Status"));
	json_object_object_add(o, "apiVersion", json_object_new_string("v1"));
	json_object_object_add(o, "metadata", json_object_new_object());
	json_object_object_add(o, "status", json_object_new_string("Failure"));
	json_object_object_add(o, "message", json_object_new_string(msg));
	json_object_object_add(o, "reason", json_object_new_string(reason));
	json_object_object_add(o, "code", json_object_new_int(code));
	return o;
}

void kf_log(struct kreq *kr, int code)
{
	struct kfake *f = kr->f;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(kr->req);
	const char *q = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
	json_object *e;

	if (!strncmp(kr->path, "/_fake/", 7))
		return;
	e = json_object_new_object();
	json_object_object_add(e, "method", json_object_new_string(
		kr->cmd == EVHTTP_REQ_GET ? "GET" : kr->cmd == EVHTTP_REQ_POST ? "POST" :
		kr->cmd == EVHTTP_REQ_PUT ? "PUT" : kr->cmd == EVHTTP_REQ_PATCH ? "PATCH" :
		kr->cmd == EVHTTP_REQ_DELETE ? "DELETE" : "OTHER"));
	json_object_object_add(e, "path", json_object_new_string(kr->path));
	json_object_object_add(e, "query", json_object_new_string(q != NULL ? q : ""));
	json_object_object_add(e, "verb", json_object_new_string(kverb_names[kr->verb]));
	json_object_object_add(e, "code", json_object_new_int(code));
	json_object_object_add(e, "user", kr->user ? json_object_new_string(kr->user) : NULL);
	if (json_object_array_length(f->log) >= LOG_KEEP)
		json_object_array_del_idx(f->log, 0, 1);
	json_object_array_add(f->log, e);
	f->counts[kr->verb]++;
	if (f->verbose)
		fprintf(stderr, "fake_kube_apiserver: %s %s%s%s -> %d\n", kverb_names[kr->verb],
			kr->path, q ? "?" : "", q ? q : "", code);
}

void kf_send_json(struct kreq *kr, int code, json_object *obj)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(kr->req);
	struct evbuffer *buf = evbuffer_new();

	evhttp_add_header(out, "Content-Type", "application/json");
	evhttp_add_header(out, "Cache-Control", "no-cache, private");
	if (buf != NULL)
		evbuffer_add_printf(buf, "%s", json_object_to_json_string_ext(obj, KF_JSON));
	kf_log(kr, code);
	evhttp_send_reply(kr->req, code, NULL, buf);
	if (buf != NULL)
		evbuffer_free(buf);
	json_object_put(obj);
}

void kf_fail(struct kreq *kr, int code, const char *reason, const char *kind,
	     const char *name, const char *fmt, ...)
{
	char msg[1024];
	json_object *st, *details;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	st = kf_status(code, reason, msg);
	if (kind != NULL) {
		details = json_object_new_object();
		if (name != NULL)
			json_object_object_add(details, "name", json_object_new_string(name));
		json_object_object_add(details, "kind", json_object_new_string(kind));
		json_object_object_add(st, "details", details);
	}
	kf_send_json(kr, code, st);
}

json_object *kf_body(struct kreq *kr, int want_array_too)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(kr->req);
	size_t len = evbuffer_get_length(in), end;
	const char *raw = len ? (const char *)evbuffer_pullup(in, -1) : "";
	json_tokener *tok;
	json_object *o = NULL;
	char msg[200];

	if (len == 0) {
		kf_fail(kr, 400, "BadRequest", NULL, NULL, "the request body is empty");
		return NULL;
	}
	tok = json_tokener_new_ex(100);
	if (tok == NULL || len > INT_MAX) {
		if (tok != NULL)
			json_tokener_free(tok);
		kf_fail(kr, 413, "RequestEntityTooLarge", NULL, NULL, "the request body is too large");
		return NULL;
	}
	o = json_tokener_parse_ex(tok, raw, (int)len);
	if (json_tokener_get_error(tok) != json_tokener_success) {
		snprintf(msg, sizeof(msg), "the body is not JSON: %s",
			 json_tokener_error_desc(json_tokener_get_error(tok)));
		goto bad;
	}
	for (end = json_tokener_get_parse_end(tok); end < len; end++)
		if (!isspace((unsigned char)raw[end])) {
			snprintf(msg, sizeof(msg), "the body has text after its JSON value");
			goto bad;
		}
	if (!json_object_is_type(o, json_type_object) &&
	    !(want_array_too && json_object_is_type(o, json_type_array))) {
		snprintf(msg, sizeof(msg), "the body is not a JSON object");
		goto bad;
	}
	json_tokener_free(tok);
	return o;
bad:
	json_object_put(o);
	json_tokener_free(tok);
	kf_fail(kr, 400, "BadRequest", NULL, NULL, "%s", msg);
	return NULL;
}

/* ---- login ---- */

/* The token file's text without surrounding white space; NULL if unreadable. */
static char *read_token(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *buf, *s, *e;
	size_t n;

	if (fp == NULL)
		return NULL;
	buf = calloc(1, MAX_TOKEN + 1);
	if (buf == NULL) {
		fclose(fp);
		return NULL;
	}
	n = fread(buf, 1, MAX_TOKEN, fp);
	fclose(fp);
	buf[n] = '\0';
	for (s = buf; isspace((unsigned char)*s); s++)
		;
	for (e = s + strlen(s); e > s && isspace((unsigned char)e[-1]); e--)
		;
	*e = '\0';
	memmove(buf, s, (size_t)(e - s) + 1);
	return buf;
}

/* The verified client certificate's CN, into kr->user; 0 without one. */
static int cert_user(struct kreq *kr)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(kr->req);
	struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
	SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
	X509 *cert;
	int ok = 0;

	if (ssl == NULL || kr->f->client_ca == NULL)
		return 0;
	cert = SSL_get1_peer_certificate(ssl);
	if (cert != NULL && SSL_get_verify_result(ssl) == X509_V_OK) {
		if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName,
					      kr->user_buf, sizeof(kr->user_buf)) < 0)
			snprintf(kr->user_buf, sizeof(kr->user_buf), "(no CN)");
		kr->user = kr->user_buf;
		ok = 1;
	}
	X509_free(cert);
	return ok;
}

static int logged_in(struct kreq *kr)
{
	struct kfake *f = kr->f;
	const char *h;
	char *tok;
	int ok = 0;

	if (f->token_file == NULL && f->client_ca == NULL) {
		kr->user = "anonymous";
		return 1;
	}
	if (cert_user(kr))
		return 1;
	if (f->token_file == NULL)
		return 0;
	h = evhttp_find_header(evhttp_request_get_input_headers(kr->req), "Authorization");
	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return 0;
	for (h += 7; *h == ' '; h++)
		;
	tok = read_token(f->token_file);
	if (tok == NULL) {
		fprintf(stderr, "fake_kube_apiserver: cannot read the token file %s: %s\n",
			f->token_file, strerror(errno));
		return 0;
	}
	if (*tok != '\0' && !strcmp(tok, h)) {
		kr->user = "token";
		ok = 1;
	}
	free(tok);
	return ok;
}

/* ---- scripted failures ---- */

static int fault_applies(struct kreq *kr)
{
	struct kfault *ft = &kr->f->fault;
	struct timeval now;

	if (ft->code == 0)
		return 0;
	if (ft->until.tv_sec != 0) {
		evutil_gettimeofday(&now, NULL);
		if (evutil_timercmp(&now, &ft->until, >=)) {
			ft->code = 0;
			return 0;
		}
	}
	if (ft->only >= 0 && (int)kr->verb != ft->only)
		return 0;
	if (ft->count == 0) {
		ft->code = 0;
		return 0;
	}
	if (ft->count > 0)
		ft->count--;
	return 1;
}

static void send_fault(struct kreq *kr)
{
	struct kfault *ft = &kr->f->fault;
	int code = ft->code;
	const char *reason = code == 503 ? "ServiceUnavailable" : code == 429 ? "TooManyRequests" :
		code == 504 ? "Timeout" : code >= 500 ? "InternalError" : "BadRequest";
	char ra[16];

	if (ft->retry_after > 0) {
		snprintf(ra, sizeof(ra), "%d", ft->retry_after);
		evhttp_add_header(evhttp_request_get_output_headers(kr->req), "Retry-After", ra);
	}
	kf_fail(kr, code, reason, NULL, NULL, "fake_kube_apiserver: scripted failure %d", code);
}

/* ---- dropping requests while the listener is closed ---- */

/* A request whose connection is closed from a timer: it cannot be freed
 * from inside its own callback. */
struct kdrop {
	struct kfake *f;
	struct kdrop *next;
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	struct event *ev;
};
static struct kdrop *drops;

static void drop_forget(struct kdrop *d)
{
	struct kdrop **pp;

	for (pp = &drops; *pp != NULL; pp = &(*pp)->next)
		if (*pp == d) {
			*pp = d->next;
			break;
		}
	event_free(d->ev);
	free(d);
}

static void drop_now(evutil_socket_t fd, short what, void *arg)
{
	struct kdrop *d = arg;
	struct evhttp_connection *evcon = d->evcon;

	evhttp_connection_set_closecb(evcon, NULL, NULL);
	drop_forget(d);
	evhttp_connection_free(evcon);
}

static void drop_gone(struct evhttp_connection *evcon, void *arg)
{
	struct kdrop *d = arg;
	struct evhttp_request *req = d->req;
	int orphaned = evhttp_request_get_connection(req) == NULL;

	drop_forget(d);
	if (orphaned)
		evhttp_request_free(req);
}

static void drop_later(struct kfake *f, struct evhttp_request *req)
{
	struct kdrop *d = calloc(1, sizeof(*d));
	struct timeval zero = { 0, 0 };

	if (d == NULL || (d->ev = evtimer_new(f->base, drop_now, d)) == NULL) {
		fprintf(stderr, "fake_kube_apiserver: out of memory\n");
		exit(1);
	}
	d->f = f;
	d->req = req;
	d->evcon = evhttp_request_get_connection(req);
	d->next = drops;
	drops = d;
	evhttp_connection_set_closecb(d->evcon, drop_gone, d);
	evtimer_add(d->ev, &zero);
}

static void drops_free(void)
{
	while (drops != NULL) {
		evhttp_connection_set_closecb(drops->evcon, NULL, NULL);
		drop_forget(drops);
	}
}

/* ---- requests ---- */

static void kreq_clear(struct kreq *kr)
{
	int i;

	for (i = 0; i < kr->nq; i++)
		free(kr->qk[i]);
	free(kr->ns);
	free(kr->name);
}

static void send_text(struct kreq *kr, int code, const char *text)
{
	struct evbuffer *buf = evbuffer_new();

	evhttp_add_header(evhttp_request_get_output_headers(kr->req), "Content-Type",
			  "text/plain; charset=utf-8");
	if (buf != NULL)
		evbuffer_add_printf(buf, "%s", text);
	kf_log(kr, code);
	evhttp_send_reply(kr->req, code, NULL, buf);
	if (buf != NULL)
		evbuffer_free(buf);
}

static void handle(struct kfake *f, struct evhttp_request *req, int control_only)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	struct kreq kr;

	memset(&kr, 0, sizeof(kr));
	kr.f = f;
	kr.req = req;
	kr.cmd = evhttp_request_get_command(req);
	kr.path = path != NULL && *path != '\0' ? path : "/";
	kr.res = -1;
	parse_query(&kr, uri != NULL ? evhttp_uri_get_query(uri) : NULL);

	if (!strncmp(kr.path, "/_fake/", 7)) {
		kcontrol_serve(&kr, kr.path + 7);
	} else if (control_only) {
		kf_fail(&kr, 404, "NotFound", NULL, NULL, "the control port serves /_fake/ only");
	} else if (f->down) {
		drop_later(f, req);
	} else if (kr.cmd == EVHTTP_REQ_GET && (!strcmp(kr.path, "/healthz") ||
			!strcmp(kr.path, "/livez") || !strcmp(kr.path, "/readyz"))) {
		send_text(&kr, 200, "ok");
	} else if (kr.cmd == EVHTTP_REQ_GET && !strcmp(kr.path, "/version")) {
		kr.verb = KV_DISCOVERY;
		kf_send_json(&kr, 200, kapi_version());
	} else {
		/* routed first: the verb is logged, and faults may pick it */
		kapi_route(&kr);
		if (!logged_in(&kr)) {
			f->auth_failures++;
			kf_send_json(&kr, 401, kf_status(401, "Unauthorized", "Unauthorized"));
		} else if (fault_applies(&kr)) {
			send_fault(&kr);
		} else if (kr.bad_query) {
			kf_fail(&kr, 400, "BadRequest", NULL, NULL, "bad query string");
		} else {
			kapi_serve(&kr);
		}
	}
	kreq_clear(&kr);
}

static void on_request(struct evhttp_request *req, void *arg)
{
	handle(arg, req, 0);
}

static void on_control_request(struct evhttp_request *req, void *arg)
{
	handle(arg, req, 1);
}

/* ---- listeners ---- */


static struct bufferevent *make_tls_bev(struct event_base *base, void *arg)
{
	struct kfake *f = arg;
	SSL *ssl = SSL_new(f->ssl);
	struct bufferevent *bev;

	/* evhttp would fall back to plain HTTP on NULL: never let it. */
	if (ssl == NULL) {
		fprintf(stderr, "fake_kube_apiserver: SSL_new failed\n");
		exit(1);
	}
	bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
					     BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		fprintf(stderr, "fake_kube_apiserver: cannot make a TLS bufferevent\n");
		exit(1);
	}
	/* Go clients close without close_notify; that is no error. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

static int tls_setup(struct kfake *f)
{
	unsigned long e;

	f->ssl = SSL_CTX_new(TLS_server_method());
	if (f->ssl == NULL)
		goto bad;
	SSL_CTX_set_min_proto_version(f->ssl, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate_chain_file(f->ssl, f->tls_cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(f->ssl, f->tls_key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(f->ssl) != 1)
		goto bad;
	if (f->client_ca != NULL) {
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(f->client_ca);

		if (names == NULL || SSL_CTX_load_verify_locations(f->ssl, f->client_ca, NULL) != 1) {
			sk_X509_NAME_pop_free(names, X509_NAME_free);
			goto bad;
		}
		SSL_CTX_set_client_CA_list(f->ssl, names);
		/* Ask for a certificate but do not require one: a token will do
		 * too. A certificate that does not verify fails the handshake. */
		SSL_CTX_set_verify(f->ssl, SSL_VERIFY_PEER, NULL);
		/* with client certificates OpenSSL resumes a session only
		 * within a context id: without one every resumption fails */
		static const unsigned char sid_ctx[] = "fake_kube_apiserver";
		SSL_CTX_set_session_id_context(f->ssl, sid_ctx, sizeof sid_ctx - 1);
	}
	evhttp_set_bevcb(f->http, make_tls_bev, f);
	return 0;
bad:
	e = ERR_get_error();
	fprintf(stderr, "fake_kube_apiserver: TLS setup failed (--tls-cert %s --tls-key %s%s%s): %s\n",
		f->tls_cert, f->tls_key, f->client_ca ? " --client-ca " : "",
		f->client_ca ? f->client_ca : "", e ? ERR_error_string(e, NULL) : "unknown error");
	return -1;
}

static int listen_api(struct kfake *f)
{
	f->bound = evhttp_bind_socket_with_handle(f->http, f->host, (ev_uint16_t)f->port);
	if (f->bound == NULL)
		return -1;
	f->port = test_server_bound_port(f->bound);
	return f->port < 0 ? -1 : 0;
}

static void relisten(evutil_socket_t fd, short what, void *arg)
{
	struct kfake *f = arg;
	struct timeval again = { 0, 100 * 1000 };

	if (listen_api(f) != 0) {
		fprintf(stderr, "fake_kube_apiserver: cannot listen on %s:%d again: %s; retrying\n",
			f->host, f->port, strerror(errno));
		evtimer_add(f->relisten, &again);
		return;
	}
	f->down = 0;
	fprintf(stderr, "fake_kube_apiserver: listening on %s:%d again\n", f->host, f->port);
}

void kf_listener_close(struct kfake *f, long ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (f->bound != NULL) {
		evhttp_del_accept_socket(f->http, f->bound);
		f->bound = NULL;
	}
	f->down = 1;
	kwatch_end_all(f, 1);
	evtimer_add(f->relisten, &tv);
}

/* The API port, then the control port when there is one. */
static int write_port_file(struct kfake *f, int control)
{
	int ports[2] = { f->port, control };
	return test_server_write_ports("fake_kube_apiserver", f->port_file, ports,
				       control >= 0 ? 2 : 1);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct kfake *f = arg;

	event_base_loopbreak(f->base);
}

static void new_http(struct kfake *f, struct evhttp **out, void (*cb)(struct evhttp_request *, void *))
{
	*out = evhttp_new(f->base);
	if (*out == NULL) {
		fprintf(stderr, "fake_kube_apiserver: evhttp_new failed\n");
		exit(1);
	}
	evhttp_set_allowed_methods(*out, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
				   EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH);
	evhttp_set_max_body_size(*out, MAX_BODY);
	/* Watches are long and quiet: idle connections are the clients' to end. */
	evhttp_set_timeout(*out, 7200);
	evhttp_set_gencb(*out, cb, f);
}

static int run(struct kfake *f)
{
	struct evhttp_bound_socket *cbound = NULL;
	int cport = -1;

	f->base = event_base_new();
	if (f->base == NULL) {
		fprintf(stderr, "fake_kube_apiserver: libevent init failed\n");
		return 1;
	}
	f->st = kstore_new((size_t)f->history);
	f->st->on_event = kwatch_on_event;
	f->st->cb_arg = f;
	f->log = json_object_new_array();
	f->fault.only = -1;
	f->relisten = evtimer_new(f->base, relisten, f);
	new_http(f, &f->http, on_request);
	if (f->tls_cert != NULL && tls_setup(f) != 0)
		return 1;
	if (listen_api(f) != 0) {
		fprintf(stderr, "fake_kube_apiserver: cannot listen on %s:%d: %s\n",
			f->host, f->port, strerror(errno));
		return 1;
	}
	if (f->control_port >= 0) {
		new_http(f, &f->control_http, on_control_request);
		cbound = evhttp_bind_socket_with_handle(f->control_http, f->host,
							(ev_uint16_t)f->control_port);
		if (cbound == NULL || (cport = test_server_bound_port(cbound)) < 0) {
			fprintf(stderr, "fake_kube_apiserver: cannot listen on %s:%d: %s\n",
				f->host, f->control_port, strerror(errno));
			return 1;
		}
	}
	kwatch_set_bookmark_interval(f, f->bookmark_ms);
	f->sig_term = evsignal_new(f->base, SIGTERM, on_signal, f);
	f->sig_int = evsignal_new(f->base, SIGINT, on_signal, f);
	if (f->relisten == NULL || f->sig_term == NULL || f->sig_int == NULL ||
	    evsignal_add(f->sig_term, NULL) != 0 || evsignal_add(f->sig_int, NULL) != 0) {
		fprintf(stderr, "fake_kube_apiserver: cannot set up events\n");
		return 1;
	}
	if (f->port_file != NULL && write_port_file(f, cport) != 0)
		return 1;
	printf("fake_kube_apiserver: ready on %s://%s:%d", f->ssl ? "https" : "http", f->host, f->port);
	if (cport >= 0)
		printf(" control http://%s:%d", f->host, cport);
	printf("\n");
	fflush(stdout);
	return event_base_dispatch(f->base) < 0 ? 1 : 0;
}

static void kfake_free(struct kfake *f)
{
	/* Watches and drops stay on their connections; evhttp_free frees both. */
	kwatch_free_all(f);
	drops_free();
	kwrite_grace_free_all(f);
	if (f->http != NULL)
		evhttp_free(f->http);
	if (f->control_http != NULL)
		evhttp_free(f->control_http);
	if (f->ssl != NULL)
		SSL_CTX_free(f->ssl);
	if (f->relisten != NULL)
		event_free(f->relisten);
	if (f->sig_term != NULL)
		event_free(f->sig_term);
	if (f->sig_int != NULL)
		event_free(f->sig_int);
	kstore_free(f->st);
	json_object_put(f->log);
	if (f->base != NULL)
		event_base_free(f->base);
}

/* ---- flags ---- */

static int parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (s == NULL || *s == '\0')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* "N" or "Ns" seconds, "Nms" milliseconds, "Nm" minutes; into ms. */
static int parse_duration(const char *s, long *ms)
{
	char num[32];
	size_t n = strspn(s, "0123456789");
	long v, mult;

	if (n == 0 || n >= sizeof(num))
		return -1;
	memcpy(num, s, n);
	num[n] = '\0';
	if (!strcmp(s + n, "") || !strcmp(s + n, "s"))
		mult = 1000;
	else if (!strcmp(s + n, "ms"))
		mult = 1;
	else if (!strcmp(s + n, "m"))
		mult = 60000;
	else
		return -1;
	if (parse_long(num, 0, 100L * 24 * 3600 * 1000 / mult, &v) != 0)
		return -1;
	*ms = v * mult;
	return 0;
}

static void usage(void)
{
	printf("usage: fake_kube_apiserver --port P [--host H] [--port-file FILE]\n"
	       "       [--control-port P] [--tls-cert FILE --tls-key FILE] [--client-ca FILE]\n"
	       "       [--token FILE] [--bookmark-interval D] [--history N]\n"
	       "       [--delete-grace D] [--watch-timeout D] [--verbose]\n"
	       "D: N or Ns (seconds), Nms, Nm. The control paths are described at the top\n"
	       "of tests/k8s/fake_kube_apiserver.c.\n");
}

/* Returns 0, 1 for --help, or -1 after printing one line. */
static int parse_args(struct kfake *f, int argc, char **argv)
{
	enum { O_PORT = 1000, O_HOST, O_PORT_FILE, O_CONTROL, O_CERT, O_KEY, O_CA, O_TOKEN,
	       O_BOOKMARK, O_HISTORY, O_GRACE, O_WTIMEOUT, O_VERBOSE, O_HELP };
	static const struct option opts[] = {
		{ "port", required_argument, NULL, O_PORT },
		{ "host", required_argument, NULL, O_HOST },
		{ "port-file", required_argument, NULL, O_PORT_FILE },
		{ "ready-file", required_argument, NULL, O_PORT_FILE },
		{ "control-port", required_argument, NULL, O_CONTROL },
		{ "tls-cert", required_argument, NULL, O_CERT },
		{ "tls-key", required_argument, NULL, O_KEY },
		{ "client-ca", required_argument, NULL, O_CA },
		{ "token", required_argument, NULL, O_TOKEN },
		{ "bookmark-interval", required_argument, NULL, O_BOOKMARK },
		{ "history", required_argument, NULL, O_HISTORY },
		{ "delete-grace", required_argument, NULL, O_GRACE },
		{ "watch-timeout", required_argument, NULL, O_WTIMEOUT },
		{ "verbose", no_argument, NULL, O_VERBOSE },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	long v;
	int c, idx = 0, rc = 0;

	opterr = 0;
	while (rc == 0 && (c = getopt_long(argc, argv, ":", opts, &idx)) != -1) {
		switch (c) {
		case O_PORT: rc = parse_long(optarg, 0, 65535, &v); f->port = (int)v; break;
		case O_HOST: f->host = optarg; break;
		case O_PORT_FILE: f->port_file = optarg; break;
		case O_CONTROL: rc = parse_long(optarg, 0, 65535, &v); f->control_port = (int)v; break;
		case O_CERT: f->tls_cert = optarg; break;
		case O_KEY: f->tls_key = optarg; break;
		case O_CA: f->client_ca = optarg; break;
		case O_TOKEN: f->token_file = optarg; break;
		case O_BOOKMARK: rc = parse_duration(optarg, &f->bookmark_ms); break;
		case O_HISTORY: rc = parse_long(optarg, 1, 10000000, &f->history); break;
		case O_GRACE: rc = parse_duration(optarg, &f->delete_grace_ms); break;
		case O_WTIMEOUT: rc = parse_duration(optarg, &f->watch_timeout_ms); break;
		case O_VERBOSE: f->verbose = 1; break;
		case O_HELP: usage(); return 1;
		case ':':
			fprintf(stderr, "fake_kube_apiserver: missing value for %s\n", argv[optind - 1]);
			return -1;
		default:
			fprintf(stderr, "fake_kube_apiserver: bad option '%s' (try --help)\n",
				argv[optind - 1]);
			return -1;
		}
	}
	if (rc != 0) {
		fprintf(stderr, "fake_kube_apiserver: bad value for --%s: '%s'\n", opts[idx].name, optarg);
		return -1;
	}
	if (optind < argc || f->port < 0) {
		fprintf(stderr, "fake_kube_apiserver: %s\n",
			optind < argc ? "unexpected argument" : "--port is required");
		return -1;
	}
	if ((f->tls_cert == NULL) != (f->tls_key == NULL)) {
		fprintf(stderr, "fake_kube_apiserver: --tls-cert and --tls-key go together\n");
		return -1;
	}
	if (f->client_ca != NULL && f->tls_cert == NULL) {
		fprintf(stderr, "fake_kube_apiserver: --client-ca needs --tls-cert and --tls-key\n");
		return -1;
	}
	if (f->bookmark_ms <= 0 || f->watch_timeout_ms <= 0) {
		fprintf(stderr, "fake_kube_apiserver: --bookmark-interval and --watch-timeout must be above 0\n");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct kfake f;
	int rc;

	memset(&f, 0, sizeof(f));
	f.host = "127.0.0.1";
	f.port = -1;
	f.control_port = -1;
	f.bookmark_ms = 1000;
	f.history = 1000;
	f.watch_timeout_ms = 30L * 60 * 1000;

	rc = parse_args(&f, argc, argv);
	if (rc == 0) {
		/* A client vanishing mid-write must not kill us. */
		signal(SIGPIPE, SIG_IGN);
		rc = run(&f);
	} else {
		rc = rc > 0 ? 0 : 2;
	}
	kfake_free(&f);
	return rc;
}
