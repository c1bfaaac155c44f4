/*
 * kwatch.c - watches: one chunked answer per watch, one JSON event per
 * line, {"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":{...}}.
 *
 * A watch remembers the last resourceVersion it has covered (sent_rv) and
 * catches up from the store's history whenever something changes (pump):
 * from resourceVersion=N it replays the changes after N, and if N is older
 * than the history it gets an ERROR event with a 410 Expired Status and
 * ends, as on the real server. Without a resourceVersion (or with "0") it
 * starts with an ADDED event for every object there is. A change that
 * makes an object pass or fail the watch's selectors comes as ADDED or
 * DELETED (the old object at the new version), as the real watch cache
 * sends it. BOOKMARKs carry kind, apiVersion and metadata.resourceVersion
 * only. A stalled watch (POST /_fake/watches/stall) sends nothing and
 * catches up when resumed.
 */
#define _POSIX_C_SOURCE 200809L

#include "kfake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/keyvalq_struct.h>

/* A client that reads slower than this much output is dropped. */
#define MAX_BACKLOG (64 * 1024 * 1024)

struct kwatch {
	struct kfake *f;
	struct kwatch *prev, *next;
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	int res;
	char *ns, *name;	/* NULL: every namespace, every name */
	struct ksel *labels, *fields;
	uint64_t sent_rv;
	int initial;		/* the current objects are still to be sent as ADDED */
	int initial_end;	/* then a bookmark saying so (sendInitialEvents) */
	int bookmarks;
	int table;		/* objects as one-row Tables (kubectl get -w) */
	char *include;		/* the Tables' includeObject */
	int timed_out;		/* timeoutSeconds passed while stalled */
	struct event *timer;
};

static void *xcalloc(size_t n)
{
	void *p = calloc(1, n);

	if (p == NULL) {
		fprintf(stderr, "fake_kube_apiserver: out of memory\n");
		exit(1);
	}
	return p;
}

static char *xstrdup_or_null(const char *s)
{
	char *p;

	if (s == NULL)
		return NULL;
	if ((p = strdup(s)) == NULL) {
		fprintf(stderr, "fake_kube_apiserver: out of memory\n");
		exit(1);
	}
	return p;
}

/* Forget w; its request is the caller's to end or free. */
static void watch_forget(struct kwatch *w)
{
	struct kfake *f = w->f;

	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		f->watches = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	f->nwatches--;
	if (w->evcon != NULL)
		evhttp_connection_set_closecb(w->evcon, NULL, NULL);
	event_free(w->timer);
	ksel_free(w->labels);
	ksel_free(w->fields);
	free(w->ns);
	free(w->name);
	free(w->include);
	free(w);
}

static void end_watch(struct kwatch *w, int abrupt)
{
	struct evhttp_connection *evcon = w->evcon;
	struct evhttp_request *req = w->req;

	/* Unhook first: ending may free the connection at once. */
	watch_forget(w);
	if (abrupt)
		evhttp_connection_free(evcon);
	else
		evhttp_send_reply_end(req);
}

static void on_client_close(struct evhttp_connection *evcon, void *arg)
{
	struct kwatch *w = arg;
	struct evhttp_request *req = w->req;
	/* On EOF libevent detaches an unfinished request and leaves it to us. */
	int orphaned = evhttp_request_get_connection(req) == NULL;

	w->evcon = NULL;
	watch_forget(w);
	if (orphaned)
		evhttp_request_free(req);
}

/* evhttp stops reading once a request is in, so a client that goes away
 * would go unnoticed until we write: read too, as mock_backend.c does. */
static void watch_client_close(struct evhttp_connection *evcon)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
	bufferevent_data_cb wcb;
	bufferevent_event_cb ecb;
	void *arg;

	bufferevent_getcb(bev, NULL, &wcb, &ecb, &arg);
	bufferevent_setcb(bev, NULL, wcb, ecb, arg);
	bufferevent_enable(bev, EV_READ);
}

/* ---- events ---- */

static int passes(const struct kwatch *w, json_object *obj)
{
	return ksel_match(w->labels, obj) && ksel_match(w->fields, obj);
}

static void add_line(struct kwatch *w, struct evbuffer *buf, const char *type, json_object *obj)
{
	json_object *t = NULL;

	if (w->table && strcmp(type, "ERROR") != 0 && strcmp(type, "BOOKMARK") != 0)
		obj = t = kapi_table(w->include, w->res, &obj, 1,
				     kj_str(kj_meta(obj), "resourceVersion"), NULL);
	evbuffer_add_printf(buf, "{\"type\":\"%s\",\"object\":%s}\n", type,
			    json_object_to_json_string_ext(obj, KF_JSON));
	json_object_put(t);
}

static void add_event(struct kwatch *w, struct evbuffer *buf, const struct kevent *ev)
{
	int now, before;
	json_object *old = NULL;
	char rv[24];

	if (ev->res != w->res || (w->ns != NULL && strcmp(w->ns, ev->ns) != 0) ||
	    (w->name != NULL && strcmp(w->name, ev->name) != 0))
		return;
	now = passes(w, ev->obj);
	before = ev->prev != NULL && passes(w, ev->prev);
	switch (ev->type) {
	case KEV_ADDED:
		if (now)
			add_line(w, buf, "ADDED", ev->obj);
		break;
	case KEV_DELETED:
		if (now)
			add_line(w, buf, "DELETED", ev->obj);
		break;
	case KEV_MODIFIED:
		if (now) {
			add_line(w, buf, before ? "MODIFIED" : "ADDED", ev->obj);
		} else if (before) {
			/* It no longer passes: DELETED, the old object at the new version. */
			if (json_object_deep_copy(ev->prev, &old, NULL) != 0) {
				fprintf(stderr, "fake_kube_apiserver: out of memory\n");
				exit(1);
			}
			snprintf(rv, sizeof(rv), "%llu", (unsigned long long)ev->rv);
			json_object_object_add(kj_meta(old), "resourceVersion", json_object_new_string(rv));
			add_line(w, buf, "DELETED", old);
			json_object_put(old);
		}
		break;
	}
}

static void add_bookmark(struct kwatch *w, struct evbuffer *buf, int initial_end)
{
	const struct kres *k = &kres_all[w->res];
	json_object *o = json_object_new_object(), *meta = json_object_new_object(), *ann;
	char rv[24];

	snprintf(rv, sizeof(rv), "%llu", (unsigned long long)w->sent_rv);
	json_object_object_add(o, "kind", json_object_new_string(k->kind));
	json_object_object_add(o, "apiVersion", json_object_new_string(k->api_version));
	json_object_object_add(meta, "resourceVersion", json_object_new_string(rv));
	if (initial_end) {
		ann = json_object_new_object();
		json_object_object_add(ann, "k8s.io/initial-events-end", json_object_new_string("true"));
		json_object_object_add(meta, "annotations", ann);
	}
	json_object_object_add(o, "metadata", meta);
	add_line(w, buf, "BOOKMARK", o);
	json_object_put(o);
}

static void add_expired(struct kwatch *w, struct evbuffer *buf)
{
	json_object *st;
	char msg[120];

	snprintf(msg, sizeof(msg), "too old resource version: %llu (%llu)",
		 (unsigned long long)w->sent_rv, (unsigned long long)w->f->st->hist_start);
	st = kf_status(410, "Expired", msg);
	add_line(w, buf, "ERROR", st);
	json_object_put(st);
}

/* Send buf; 0, or -1 when w was ended (dropped for its backlog). */
static int flush(struct kwatch *w, struct evbuffer *buf)
{
	struct bufferevent *bev;

	if (evbuffer_get_length(buf) > 0)
		evhttp_send_reply_chunk(w->req, buf);
	bev = evhttp_connection_get_bufferevent(w->evcon);
	if (evbuffer_get_length(bufferevent_get_output(bev)) > MAX_BACKLOG) {
		fprintf(stderr, "fake_kube_apiserver: a watch client reads too slowly: dropped\n");
		end_watch(w, 1);
		return -1;
	}
	return 0;
}

/* Bring w up to date with the store. */
static void pump(struct kwatch *w)
{
	struct kstore *st = w->f->st;
	struct evbuffer *buf;
	size_t begin, end, i;

	if (w->f->stalled)
		return;
	buf = evbuffer_new();
	if (buf == NULL) {
		fprintf(stderr, "fake_kube_apiserver: out of memory\n");
		exit(1);
	}
	if (w->initial) {
		kstore_range(st, w->res, w->ns, &begin, &end);
		for (i = begin; i < end; i++)
			if ((w->name == NULL || !strcmp(w->name, st->objs[i]->name)) &&
			    passes(w, st->objs[i]->obj))
				add_line(w, buf, "ADDED", st->objs[i]->obj);
		w->sent_rv = st->rv;
		w->initial = 0;
		if (w->initial_end)
			add_bookmark(w, buf, 1);
	}
	while (w->sent_rv < st->rv) {
		if (w->sent_rv < st->hist_start) {
			add_expired(w, buf);
			if (flush(w, buf) == 0)
				end_watch(w, 0);
			evbuffer_free(buf);
			return;
		}
		add_event(w, buf, kstore_event(st, ++w->sent_rv));
	}
	flush(w, buf);
	evbuffer_free(buf);
}

void kwatch_on_event(struct kstore *st, const struct kevent *ev, void *arg)
{
	struct kfake *f = arg;
	struct kwatch *w, *next;

	for (w = f->watches; w != NULL; w = next) {
		next = w->next;
		pump(w);
	}
}

/* ---- timers ---- */

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct kwatch *w = arg;

	/* A stalled watch says nothing, not even its end, until resumed. */
	if (w->f->stalled)
		w->timed_out = 1;
	else
		end_watch(w, 0);
}

void kwatch_bookmark_all(struct kfake *f)
{
	struct kwatch *w, *next;
	struct evbuffer *buf;

	if (f->stalled)
		return;
	for (w = f->watches; w != NULL; w = next) {
		next = w->next;
		/* A watch from a future version has nothing to mark yet. */
		if (!w->bookmarks || w->sent_rv > f->st->rv)
			continue;
		buf = evbuffer_new();
		if (buf == NULL) {
			fprintf(stderr, "fake_kube_apiserver: out of memory\n");
			exit(1);
		}
		add_bookmark(w, buf, 0);
		flush(w, buf);
		evbuffer_free(buf);
	}
}

static void on_bookmark_timer(evutil_socket_t fd, short what, void *arg)
{
	kwatch_bookmark_all(arg);
}

void kwatch_set_bookmark_interval(struct kfake *f, long ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (f->bookmark_timer != NULL)
		event_free(f->bookmark_timer);
	f->bookmark_ms = ms;
	f->bookmark_timer = event_new(f->base, -1, EV_PERSIST, on_bookmark_timer, f);
	if (f->bookmark_timer == NULL || event_add(f->bookmark_timer, &tv) != 0) {
		fprintf(stderr, "fake_kube_apiserver: cannot start the bookmark timer\n");
		exit(1);
	}
}

/* ---- starting and ending ---- */

void kwatch_start(struct kreq *kr, struct ksel *labels, struct ksel *fields)
{
	struct kfake *f = kr->f;
	const char *rvs = kq_get(kr, "resourceVersion"), *ts = kq_get(kr, "timeoutSeconds");
	struct kwatch *w;
	struct timeval tv;
	long ms = f->watch_timeout_ms;
	unsigned long long rv = 0;
	char *end;

	if (rvs != NULL && *rvs != '\0') {
		rv = strtoull(rvs, &end, 10);
		if (*end != '\0' || *rvs == '-') {
			kf_fail(kr, 400, "BadRequest", NULL, NULL,
				"resourceVersion: Invalid value: \"%.40s\": must be a number", rvs);
			goto bad;
		}
	}
	if (ts != NULL && *ts != '\0') {
		long s = strtol(ts, &end, 10);

		if (*end != '\0' || s < 0) {
			kf_fail(kr, 400, "BadRequest", NULL, NULL, "timeoutSeconds: not a number");
			goto bad;
		}
		if (s > 0)
			ms = s > 100000 ? 100000000L : s * 1000;
	}
	w = xcalloc(sizeof(*w));
	w->f = f;
	w->req = kr->req;
	w->evcon = evhttp_request_get_connection(kr->req);
	w->res = kr->res;
	w->ns = xstrdup_or_null(kr->ns);
	w->name = xstrdup_or_null(kr->name);
	w->labels = labels;
	w->fields = fields;
	w->bookmarks = kq_true(kr, "allowWatchBookmarks");
	w->initial = rv == 0 || kq_true(kr, "sendInitialEvents");
	w->initial_end = kq_true(kr, "sendInitialEvents") && w->bookmarks;
	w->sent_rv = rv;
	w->table = kapi_wants_table(kr);
	w->include = xstrdup_or_null(kq_get(kr, "includeObject"));
	w->timer = evtimer_new(f->base, on_timeout, w);
	if (w->timer == NULL) {
		fprintf(stderr, "fake_kube_apiserver: out of memory\n");
		exit(1);
	}
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(w->timer, &tv);
	w->next = f->watches;
	if (f->watches != NULL)
		f->watches->prev = w;
	f->watches = w;
	f->nwatches++;
	evhttp_connection_set_closecb(w->evcon, on_client_close, w);
	watch_client_close(w->evcon);

	evhttp_add_header(evhttp_request_get_output_headers(kr->req), "Content-Type",
			  "application/json");
	evhttp_add_header(evhttp_request_get_output_headers(kr->req), "Cache-Control",
			  "no-cache, private");
	kf_log(kr, 200);
	evhttp_send_reply_start(kr->req, 200, "OK");
	pump(w);
	return;
bad:
	ksel_free(labels);
	ksel_free(fields);
}

void kwatch_end_all(struct kfake *f, int abrupt)
{
	while (f->watches != NULL)
		end_watch(f->watches, abrupt);
}

void kwatch_expire_all(struct kfake *f)
{
	struct kwatch *w;
	struct evbuffer *buf;

	while ((w = f->watches) != NULL) {
		buf = evbuffer_new();
		if (buf == NULL) {
			fprintf(stderr, "fake_kube_apiserver: out of memory\n");
			exit(1);
		}
		add_expired(w, buf);
		if (flush(w, buf) == 0)
			end_watch(w, 0);
		evbuffer_free(buf);
	}
}

void kwatch_stall(struct kfake *f, int stall)
{
	struct kwatch *w, *next;

	f->stalled = stall;
	if (stall)
		return;
	/* pump ends at most the watch it is given */
	for (w = f->watches; w != NULL; w = next) {
		next = w->next;
		pump(w);
	}
	/* then the ones whose time ran out meanwhile */
	for (;;) {
		for (w = f->watches; w != NULL && !w->timed_out; w = w->next)
			;
		if (w == NULL)
			break;
		end_watch(w, 0);
	}
}

void kwatch_free_all(struct kfake *f)
{
	while (f->watches != NULL)
		watch_forget(f->watches);
	if (f->bookmark_timer != NULL)
		event_free(f->bookmark_timer);
	f->bookmark_timer = NULL;
}
