/*
 * kfake.h - the fake Kubernetes API server's shared state, and what its
 * parts call of each other:
 *   fake_kube_apiserver.c  flags, listeners, TLS, auth, faults, the request log
 *   kapi.c                 routing, discovery, list, get, Tables
 *   kwrite.c               create, update, patch, delete, the bulk load
 *   kwatch.c               watches
 *   kcontrol.c             the /_fake/ control paths
 *   kstore.c, kselect.c, kpatch.c  objects and history, selectors, patches
 * Everything runs on one libevent loop: no locks.
 */
#ifndef KFAKE_H
#define KFAKE_H

#include <stdint.h>
#include <sys/time.h>

#include <event2/event.h>
#include <event2/http.h>
#include <json-c/json.h>
#include <openssl/ssl.h>

#include "kselect.h"
#include "kstore.h"

#define KF_JSON (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
#define KF_MAX_QUERY 32

/* What an API request does, for the request log, counters and faults. */
enum kverb {
	KV_OTHER, KV_DISCOVERY, KV_LIST, KV_WATCH, KV_GET, KV_CREATE, KV_UPDATE, KV_PATCH,
	KV_DELETE, KV_DELETECOLLECTION, N_KVERBS
};
extern const char *const kverb_names[N_KVERBS];

struct kwatch;
struct kgrace;

/* A scripted failure of the API (POST /_fake/fail). */
struct kfault {
	int code;		/* 0: none */
	long count;		/* requests left to fail; -1: no limit */
	struct timeval until;	/* tv_sec 0: no time limit */
	int retry_after;	/* seconds; 0: no Retry-After */
	int only;		/* a kverb to fail, or -1 for every API request */
};

struct kfake {
	/* flags */
	const char *host;
	int port;
	const char *port_file;
	int control_port;	/* -1: none */
	const char *tls_cert, *tls_key, *client_ca, *token_file;
	long bookmark_ms, delete_grace_ms, watch_timeout_ms;
	long history;
	int verbose;

	struct event_base *base;
	struct evhttp *http, *control_http;
	struct evhttp_bound_socket *bound;
	SSL_CTX *ssl;
	struct kstore *st;

	struct kwatch *watches;
	int nwatches;
	int stalled;
	struct event *bookmark_timer;
	struct kgrace *graces;

	struct kfault fault;
	int down;		/* the listener is closed (POST /_fake/listener/close) */
	struct event *relisten;

	json_object *log;	/* the last requests, oldest first */
	unsigned long counts[N_KVERBS];
	unsigned long auth_failures;
	struct event *sig_term, *sig_int;
};

/* One request being served. */
struct kreq {
	struct kfake *f;
	struct evhttp_request *req;
	enum evhttp_cmd_type cmd;
	const char *path;
	char *qk[KF_MAX_QUERY], *qv[KF_MAX_QUERY];
	int nq;
	int bad_query;		/* too many parameters, or a bad %-escape */
	const char *user;	/* who passed auth, for the log */
	char user_buf[128];
	/* the route (kapi_route) */
	enum kverb verb;
	int res;		/* -1: not a resource path */
	char *ns, *name;	/* NULL: all namespaces / the collection */
	int status_sub;		/* the status subresource */
	int watch_path;		/* /api/v1/watch/... */
	int route_err;		/* 404 or 405: no such path, or method */
	int discovery;		/* which document: see kapi.c */
	const char *group, *version;	/* discovery of a group (version) */
	char seg_buf[1024];
};

/* ---- fake_kube_apiserver.c ---- */
const char *kq_get(const struct kreq *kr, const char *key);
int kq_true(const struct kreq *kr, const char *key);
/* The whole body as a JSON object or array; NULL after answering 400. */
json_object *kf_body(struct kreq *kr, int want_array_too);
/* Answer obj (consumed) with code; the request is logged. */
void kf_send_json(struct kreq *kr, int code, json_object *obj);
/* A Status object: {"kind":"Status",...,"status":"Failure","code":code}. */
json_object *kf_status(int code, const char *reason, const char *msg);
/* Answer a failure Status; details (kind, name) when kind is not NULL. */
void kf_fail(struct kreq *kr, int code, const char *reason, const char *kind,
	     const char *name, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
void kf_log(struct kreq *kr, int code);
void kf_listener_close(struct kfake *f, long ms);

/* ---- kapi.c ---- */
/* Find what the request is (kr->verb, res, ns, name, ...); 0, or -1 when it
 * is no API path (then kr->verb is KV_OTHER and kapi_serve answers 404). */
int kapi_route(struct kreq *kr);
void kapi_serve(struct kreq *kr);
json_object *kapi_version(void);
/* An object as a list item: without kind and apiVersion, as the real
 * server writes them (shares obj's members). */
json_object *kapi_item(json_object *obj);
/* Does the client want a Table (kubectl get without -o)? */
int kapi_wants_table(const struct kreq *kr);
/* A Table of these objects (borrowed) of resource res; include is the
 * includeObject parameter (None, Metadata: the default, Object). */
json_object *kapi_table(const char *include, int res, json_object **objs, size_t n,
			const char *rv, const char *cont);

/* ---- kwrite.c ---- */
void kwrite_create(struct kreq *kr);
void kwrite_update(struct kreq *kr, int patch);
void kwrite_delete(struct kreq *kr);
void kwrite_deletecollection(struct kreq *kr, struct ksel *labels, struct ksel *fields);
/* Create or replace every object of a List or array (POST /_fake/load). */
void kwrite_load(struct kreq *kr);
void kwrite_grace_free_all(struct kfake *f);

/* ---- kwatch.c ---- */
void kwatch_start(struct kreq *kr, struct ksel *labels, struct ksel *fields);
void kwatch_on_event(struct kstore *st, const struct kevent *ev, void *arg);
void kwatch_bookmark_all(struct kfake *f);
/* End every watch: cleanly (the last chunk), or by dropping the connection. */
void kwatch_end_all(struct kfake *f, int abrupt);
/* Send every watch an ERROR 410 Expired event, then end it. */
void kwatch_expire_all(struct kfake *f);
void kwatch_stall(struct kfake *f, int stall);
void kwatch_set_bookmark_interval(struct kfake *f, long ms);
void kwatch_free_all(struct kfake *f);

/* ---- kcontrol.c ---- */
void kcontrol_serve(struct kreq *kr, const char *what);
json_object *kcontrol_state(struct kfake *f);

#endif
