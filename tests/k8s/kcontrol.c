/*
 * kcontrol.c - the /_fake/ control paths a test scripts faults with; the
 * list is at the top of fake_kube_apiserver.c. They need no login and are
 * never failed by /_fake/fail. Answers are JSON; a bad path or body is a
 * Status object as the API's own errors are.
 */
#define _POSIX_C_SOURCE 200809L

#include "kfake.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_object *ok(void)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "status", json_object_new_string("ok"));
	return o;
}

json_object *kcontrol_state(struct kfake *f)
{
	json_object *o = ok(), *objs = json_object_new_object(), *reqs = json_object_new_object();
	json_object *fault = json_object_new_object();
	size_t begin, end;
	int i;

	json_object_object_add(o, "resource_version", json_object_new_int64((int64_t)f->st->rv));
	json_object_object_add(o, "history_start", json_object_new_int64((int64_t)f->st->hist_start));
	json_object_object_add(o, "history_len", json_object_new_int64((int64_t)f->st->hlen));
	for (i = 0; i < N_KRES; i++) {
		kstore_range(f->st, i, NULL, &begin, &end);
		json_object_object_add(objs, kres_all[i].plural, json_object_new_int64((int64_t)(end - begin)));
	}
	json_object_object_add(o, "objects", objs);
	json_object_object_add(o, "watches", json_object_new_int(f->nwatches));
	json_object_object_add(o, "stalled", json_object_new_boolean(f->stalled));
	json_object_object_add(o, "listening", json_object_new_boolean(!f->down));
	for (i = 0; i < N_KVERBS; i++)
		json_object_object_add(reqs, kverb_names[i], json_object_new_int64((int64_t)f->counts[i]));
	json_object_object_add(o, "requests", reqs);
	json_object_object_add(o, "auth_failures", json_object_new_int64((int64_t)f->auth_failures));
	json_object_object_add(fault, "code", json_object_new_int(f->fault.code));
	json_object_object_add(fault, "count", json_object_new_int64(f->fault.count));
	json_object_object_add(fault, "only", json_object_new_string(
		f->fault.only >= 0 ? kverb_names[f->fault.only] : "all"));
	json_object_object_add(o, "fault", fault);
	json_object_object_add(o, "bookmark_interval_ms", json_object_new_int64(f->bookmark_ms));
	json_object_object_add(o, "delete_grace_ms", json_object_new_int64(f->delete_grace_ms));
	return o;
}

static int int_member(json_object *o, const char *key, long min, long max, long *out)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_int))
		return -1;
	errno = 0;
	*out = (long)json_object_get_int64(v);
	return *out < min || *out > max ? -1 : 1;
}

static void set_fault(struct kreq *kr)
{
	struct kfake *f = kr->f;
	json_object *body = kf_body(kr, 0), *v;
	struct kfault ft = { 0, -1, { 0, 0 }, 0, -1 };
	long code = 0, count = -1, retry = 0;
	double secs = -1;
	const char *only;
	int i;

	if (body == NULL)
		return;
	json_object_object_foreach(body, key, val) {
		(void)val;
		if (strcmp(key, "code") && strcmp(key, "count") && strcmp(key, "seconds") &&
		    strcmp(key, "retry_after") && strcmp(key, "only")) {
			kf_fail(kr, 400, "BadRequest", NULL, NULL, "fail: unknown key '%.60s'", key);
			goto out;
		}
	}
	if (int_member(body, "code", 0, 599, &code) < 0 || (code != 0 && code < 400) ||
	    int_member(body, "count", -1, 1000000000, &count) < 0 ||
	    int_member(body, "retry_after", 0, 3600, &retry) < 0) {
		kf_fail(kr, 400, "BadRequest", NULL, NULL,
			"fail: code must be 0 or 400..599, count -1 or more, retry_after 0..3600");
		goto out;
	}
	if (json_object_object_get_ex(body, "seconds", &v)) {
		if ((!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)) ||
		    (secs = json_object_get_double(v)) <= 0 || secs > 86400) {
			kf_fail(kr, 400, "BadRequest", NULL, NULL, "fail: seconds must be above 0");
			goto out;
		}
	}
	only = kj_str(body, "only");
	if (only != NULL) {
		for (i = 0; i < N_KVERBS && strcmp(only, kverb_names[i]) != 0; i++)
			;
		if (i == N_KVERBS || i == KV_OTHER) {
			kf_fail(kr, 400, "BadRequest", NULL, NULL, "fail: 'only' is no verb: '%.40s'", only);
			goto out;
		}
		ft.only = i;
	}
	ft.code = (int)code;
	ft.count = count;
	ft.retry_after = (int)retry;
	if (secs > 0) {
		struct timeval now;
		long usec;

		evutil_gettimeofday(&now, NULL);
		usec = (long)now.tv_usec + (long)((secs - (long)secs) * 1e6);
		ft.until.tv_sec = now.tv_sec + (long)secs + usec / 1000000;
		ft.until.tv_usec = usec % 1000000;
	}
	f->fault = ft;
	kf_send_json(kr, 200, kcontrol_state(f));
out:
	json_object_put(body);
}

static void set_config(struct kreq *kr)
{
	struct kfake *f = kr->f;
	json_object *body = kf_body(kr, 0);
	long bm = f->bookmark_ms, grace = f->delete_grace_ms;

	if (body == NULL)
		return;
	json_object_object_foreach(body, key, val) {
		(void)val;
		if (strcmp(key, "bookmark_interval_ms") && strcmp(key, "delete_grace_ms")) {
			kf_fail(kr, 400, "BadRequest", NULL, NULL, "config: unknown key '%.60s'", key);
			goto out;
		}
	}
	if (int_member(body, "bookmark_interval_ms", 1, 86400000, &bm) < 0 ||
	    int_member(body, "delete_grace_ms", 0, 86400000, &grace) < 0) {
		kf_fail(kr, 400, "BadRequest", NULL, NULL,
			"config: bookmark_interval_ms must be 1..86400000, delete_grace_ms 0..86400000");
		goto out;
	}
	if (bm != f->bookmark_ms)
		kwatch_set_bookmark_interval(f, bm);
	f->delete_grace_ms = grace;
	kf_send_json(kr, 200, kcontrol_state(f));
out:
	json_object_put(body);
}

/* A query number, or dflt when absent; -1 when malformed. */
static long query_num(struct kreq *kr, const char *key, long dflt)
{
	const char *s = kq_get(kr, key);
	char *end;
	long v;

	if (s == NULL || *s == '\0')
		return dflt;
	errno = 0;
	v = strtol(s, &end, 10);
	return errno != 0 || *end != '\0' || v < 0 ? -1 : v;
}

void kcontrol_serve(struct kreq *kr, const char *what)
{
	struct kfake *f = kr->f;
	int get = kr->cmd == EVHTTP_REQ_GET, post = kr->cmd == EVHTTP_REQ_POST;
	json_object *o;
	long n;

	if (get && !strcmp(what, "state")) {
		kf_send_json(kr, 200, kcontrol_state(f));
	} else if (get && !strcmp(what, "requests")) {
		kf_send_json(kr, 200, json_object_get(f->log));
	} else if (kr->cmd == EVHTTP_REQ_DELETE && !strcmp(what, "requests")) {
		json_object_put(f->log);
		f->log = json_object_new_array();
		memset(f->counts, 0, sizeof(f->counts));
		f->auth_failures = 0;
		kf_send_json(kr, 200, ok());
	} else if (post && !strcmp(what, "load")) {
		kwrite_load(kr);
	} else if (post && !strcmp(what, "reset")) {
		kwatch_end_all(f, 0);
		kwrite_grace_free_all(f);
		kstore_reset(f->st);
		memset(&f->fault, 0, sizeof(f->fault));
		f->fault.only = -1;
		f->stalled = 0;
		kf_send_json(kr, 200, kcontrol_state(f));
	} else if (post && !strcmp(what, "compact")) {
		n = query_num(kr, "resourceVersion", LONG_MAX);
		if (n < 0) {
			kf_fail(kr, 400, "BadRequest", NULL, NULL, "compact: resourceVersion must be a number");
			return;
		}
		kstore_compact(f->st, (uint64_t)n);
		kf_send_json(kr, 200, kcontrol_state(f));
	} else if (post && !strcmp(what, "watches/close")) {
		o = ok();
		json_object_object_add(o, "closed", json_object_new_int(f->nwatches));
		kwatch_end_all(f, kq_true(kr, "abrupt"));
		kf_send_json(kr, 200, o);
	} else if (post && !strcmp(what, "watches/expire")) {
		o = ok();
		json_object_object_add(o, "expired", json_object_new_int(f->nwatches));
		kwatch_expire_all(f);
		kf_send_json(kr, 200, o);
	} else if (post && (!strcmp(what, "watches/stall") || !strcmp(what, "watches/resume"))) {
		kwatch_stall(f, !strcmp(what, "watches/stall"));
		kf_send_json(kr, 200, kcontrol_state(f));
	} else if (post && !strcmp(what, "bookmark")) {
		kwatch_bookmark_all(f);
		kf_send_json(kr, 200, ok());
	} else if (post && !strcmp(what, "fail")) {
		set_fault(kr);
	} else if (post && !strcmp(what, "config")) {
		set_config(kr);
	} else if (post && !strcmp(what, "listener/close")) {
		n = query_num(kr, "ms", 1000);
		if (n < 0 || n > 3600000) {
			kf_fail(kr, 400, "BadRequest", NULL, NULL, "listener/close: ms must be 0..3600000");
			return;
		}
		/* Answer first: this connection stays, the listener goes. */
		kf_send_json(kr, 200, ok());
		kf_listener_close(f, n);
	} else {
		kf_fail(kr, 404, "NotFound", NULL, NULL, "no such control path: %s /_fake/%.100s",
			get ? "GET" : post ? "POST" : "this method on", what);
	}
}
