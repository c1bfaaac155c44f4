/*
 * kwrite.c - the fake API server's writing side: create, update and patch
 * (the object or its status subresource), delete (at once, gracefully, or
 * held by finalizers), delete a collection, and the bulk load of
 * POST /_fake/load.
 *
 * What the server owns is kept from the stored object whatever the body
 * says: uid, creationTimestamp, the deletion fields; an update of the
 * object keeps its status, an update of the status keeps everything else,
 * as the real server's strategies for pods and services do.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE	/* random */

#include "kfake.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include "kpatch.h"

/* A pod whose graceful deletion ends when ev fires. */
struct kgrace {
	struct kfake *f;
	struct kgrace *next;
	int res;
	char *ns, *name, *uid;
	struct event *ev;
};

/* Why an object is refused. */
struct kerr {
	int code;
	const char *reason;
	char msg[600];
};

static json_object *copy(json_object *o)
{
	json_object *c = NULL;

	/* (a JSON null is NULL to json-c, and copies to itself) */
	if (o != NULL && json_object_deep_copy(o, &c, NULL) != 0) {
		fprintf(stderr, "fake_kube_apiserver: out of memory\n");
		exit(1);
	}
	return c;
}

static int refuse(struct kerr *e, int code, const char *reason, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int refuse(struct kerr *e, int code, const char *reason, const char *fmt, ...)
{
	va_list ap;

	e->code = code;
	e->reason = reason;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return -1;
}

static void send_refusal(struct kreq *kr, const struct kerr *e, const char *name)
{
	kf_fail(kr, e->code, e->reason, kr->res >= 0 ? kres_all[kr->res].plural : NULL, name, "%s",
		e->msg);
}

/* A lowercase RFC 1123 subdomain (names) or label (namespaces). */
static int valid_dns(const char *s, size_t max, int dots)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > max)
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i], prev = i ? s[i - 1] : '.', next = i + 1 < n ? s[i + 1] : '.';
		int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

		if (alnum)
			continue;
		if (c == '-' && prev != '.' && next != '.')
			continue;
		if (c == '.' && dots && prev != '.' && prev != '-' && next != '.' && next != '-')
			continue;
		return 0;
	}
	return (s[0] != '-' && s[0] != '.' && s[n - 1] != '-' && s[n - 1] != '.');
}

static int string_map(json_object *m)
{
	if (m == NULL)
		return 1;
	if (!json_object_is_type(m, json_type_object))
		return 0;
	json_object_object_foreach(m, k, v) {
		(void)k;
		if (!json_object_is_type(v, json_type_string))
			return 0;
	}
	return 1;
}

static json_object *member(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/*
 * Check obj as an object of resource res, in namespace ns (NULL: its own,
 * or "default"): kind and apiVersion are set, metadata made and typed.
 * The name is checked when it is there (creates make one first).
 */
static int check_object(int res, json_object *obj, const char *ns, struct kerr *e)
{
	const struct kres *k = &kres_all[res];
	json_object *meta, *v;
	const char *s;
	size_t i;

	if (!json_object_is_type(obj, json_type_object))
		return refuse(e, 400, "BadRequest", "the object is not a JSON object");
	if ((v = member(obj, "apiVersion")) != NULL &&
	    (!json_object_is_type(v, json_type_string) || strcmp(json_object_get_string(v), k->api_version)))
		return refuse(e, 400, "BadRequest",
			      "the API version in the data (%.60s) does not match the expected API version (%s)",
			      json_object_get_string(v), k->api_version);
	if ((v = member(obj, "kind")) != NULL &&
	    (!json_object_is_type(v, json_type_string) || strcmp(json_object_get_string(v), k->kind)))
		return refuse(e, 400, "BadRequest",
			      "the kind in the data (%.60s) does not match the expected kind (%s)",
			      json_object_get_string(v), k->kind);
	json_object_object_add(obj, "apiVersion", json_object_new_string(k->api_version));
	json_object_object_add(obj, "kind", json_object_new_string(k->kind));
	meta = member(obj, "metadata");
	if (meta == NULL) {
		meta = json_object_new_object();
		json_object_object_add(obj, "metadata", meta);
	} else if (!json_object_is_type(meta, json_type_object)) {
		return refuse(e, 400, "BadRequest", "metadata must be an object");
	}
	json_object_object_foreach(meta, key, val) {
		static const char *const strings[] = { "name", "generateName", "namespace", "uid",
			"resourceVersion", "creationTimestamp", "deletionTimestamp", NULL };

		for (i = 0; strings[i] != NULL; i++)
			if (!strcmp(key, strings[i]) && val != NULL &&
			    !json_object_is_type(val, json_type_string))
				return refuse(e, 400, "BadRequest", "metadata.%s must be a string", key);
		if ((!strcmp(key, "labels") || !strcmp(key, "annotations")) && val != NULL &&
		    !string_map(val))
			return refuse(e, 400, "BadRequest", "metadata.%s must be a map of strings", key);
		if (!strcmp(key, "finalizers") && val != NULL) {
			if (!json_object_is_type(val, json_type_array))
				return refuse(e, 400, "BadRequest", "metadata.finalizers must be a list");
			for (i = 0; i < json_object_array_length(val); i++)
				if (!json_object_is_type(json_object_array_get_idx(val, i), json_type_string))
					return refuse(e, 400, "BadRequest",
						      "metadata.finalizers must be a list of strings");
		}
	}
	s = kj_str(meta, "namespace");
	if (s != NULL && ns != NULL && *s != '\0' && strcmp(s, ns) != 0)
		return refuse(e, 400, "BadRequest",
			      "the namespace of the provided object does not match the namespace sent on the request");
	ns = ns != NULL ? ns : s != NULL && *s != '\0' ? s : "default";
	if (!valid_dns(ns, 63, 0))
		return refuse(e, 422, "Invalid", "%s is invalid: metadata.namespace: Invalid value: \"%.100s\"",
			      k->kind, ns);
	json_object_object_add(meta, "namespace", json_object_new_string(ns));
	s = kj_str(meta, "name");
	if (s != NULL && !valid_dns(s, 253, 1))
		return refuse(e, 422, "Invalid",
			      "%s \"%.100s\" is invalid: metadata.name: Invalid value: \"%.100s\": a lowercase "
			      "RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
			      "'.', and must start and end with an alphanumeric character", k->kind, s, s);
	if ((v = member(obj, "spec")) != NULL && !json_object_is_type(v, json_type_object))
		return refuse(e, 400, "BadRequest", "spec must be an object");
	if ((v = member(obj, "status")) != NULL && !json_object_is_type(v, json_type_object))
		return refuse(e, 400, "BadRequest", "status must be an object");
	return 0;
}

/* A new object's server-owned metadata: uid and creationTimestamp. */
static void stamp_new(struct kfake *f, json_object *obj)
{
	json_object *meta = kj_meta(obj);
	char buf[64];

	kstore_new_uid(f->st, buf, sizeof(buf));
	json_object_object_add(meta, "uid", json_object_new_string(buf));
	kstore_now(buf, sizeof(buf));
	json_object_object_add(meta, "creationTimestamp", json_object_new_string(buf));
	json_object_object_del(meta, "deletionTimestamp");
	json_object_object_del(meta, "deletionGracePeriodSeconds");
	json_object_object_del(meta, "resourceVersion");
}

static int dry_run(struct kreq *kr)
{
	const char *d = kq_get(kr, "dryRun");

	return d != NULL && *d != '\0';
}

static const char *rv_of(json_object *obj)
{
	return kj_str(kj_meta(obj), "resourceVersion");
}

static int has_finalizers(json_object *obj)
{
	json_object *fin = kj_get(kj_meta(obj), "finalizers", json_type_array);

	return fin != NULL && json_object_array_length(fin) > 0;
}

/* ---- graceful deletion ---- */

static void grace_unlink(struct kgrace *g)
{
	struct kgrace **pp;

	for (pp = &g->f->graces; *pp != NULL; pp = &(*pp)->next)
		if (*pp == g) {
			*pp = g->next;
			break;
		}
	event_free(g->ev);
	free(g->ns);
	free(g->name);
	free(g->uid);
	free(g);
}

void kwrite_grace_free_all(struct kfake *f)
{
	while (f->graces != NULL)
		grace_unlink(f->graces);
}

static struct kgrace *grace_find(struct kfake *f, struct kobj *o)
{
	struct kgrace *g;
	const char *uid = kj_str(kj_meta(o->obj), "uid");

	for (g = f->graces; g != NULL; g = g->next)
		if (g->res == o->res && !strcmp(g->ns, o->ns) && !strcmp(g->name, o->name) &&
		    uid != NULL && !strcmp(g->uid, uid))
			return g;
	return NULL;
}

/* An object being deleted goes once no timer and no finalizer holds it. */
static void maybe_remove(struct kfake *f, struct kobj *o)
{
	if (o != NULL && kj_str(kj_meta(o->obj), "deletionTimestamp") != NULL &&
	    !has_finalizers(o->obj) && grace_find(f, o) == NULL)
		kstore_remove(f->st, o);
}

static void grace_done(evutil_socket_t fd, short what, void *arg)
{
	struct kgrace *g = arg;
	struct kfake *f = g->f;
	struct kobj *o = kstore_get(f->st, g->res, g->ns, g->name);
	const char *uid = o != NULL ? kj_str(kj_meta(o->obj), "uid") : NULL;
	int same = uid != NULL && !strcmp(uid, g->uid);	/* not a new object of that name */

	grace_unlink(g);
	if (same)
		maybe_remove(f, o);
}

static void grace_start(struct kfake *f, struct kobj *o, long ms)
{
	struct kgrace *g = calloc(1, sizeof(*g));
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (g == NULL || (g->ev = evtimer_new(f->base, grace_done, g)) == NULL ||
	    (g->ns = strdup(o->ns)) == NULL || (g->name = strdup(o->name)) == NULL ||
	    (g->uid = strdup(kj_str(kj_meta(o->obj), "uid") ? kj_str(kj_meta(o->obj), "uid") : "")) == NULL) {
		fprintf(stderr, "fake_kube_apiserver: out of memory\n");
		exit(1);
	}
	g->f = f;
	g->res = o->res;
	g->next = f->graces;
	f->graces = g;
	evtimer_add(g->ev, &tv);
}

/*
 * Delete o: at once, or (a pod while --delete-grace is set, and
 * grace != 0; or an object with finalizers) by setting deletionTimestamp
 * first. Returns the object to answer with (a new reference).
 */
static json_object *delete_one(struct kfake *f, struct kobj *o, long grace)
{
	json_object *meta, *answer, *next;
	int graceful = o->res == KRES_PODS && f->delete_grace_ms > 0 && grace != 0;
	char ts[64];
	struct kobj *stored;

	if (kj_str(kj_meta(o->obj), "deletionTimestamp") != NULL) {
		answer = json_object_get(o->obj);
		if (grace == 0 && !has_finalizers(o->obj)) {
			struct kgrace *g = grace_find(f, o);

			if (g != NULL)
				grace_unlink(g);
			kstore_remove(f->st, o);
		}
		return answer;
	}
	if (!graceful && !has_finalizers(o->obj)) {
		answer = json_object_get(o->obj);
		kstore_remove(f->st, o);
		return answer;
	}
	next = copy(o->obj);
	meta = kj_meta(next);
	/* As on the real server: the time the grace period ends (the fake's
	 * own --delete-grace decides when the object really goes). */
	if (graceful && grace < 0)
		grace = 30;
	kstore_time(ts, sizeof(ts), graceful ? grace : 0);
	json_object_object_add(meta, "deletionTimestamp", json_object_new_string(ts));
	json_object_object_add(meta, "deletionGracePeriodSeconds",
			       json_object_new_int64(graceful ? grace : 0));
	kstore_put(f->st, o->res, next, &stored);
	answer = json_object_get(stored->obj);
	if (graceful)
		grace_start(f, stored, f->delete_grace_ms);
	return answer;
}

/* ---- create ---- */

static void generate_name(json_object *meta, const char *prefix)
{
	static const char chars[] = "bcdfghjklmnpqrstvwxz2456789";
	char name[300];
	size_t n = strlen(prefix), i;

	if (n > 248)
		n = 248;
	memcpy(name, prefix, n);
	for (i = 0; i < 5; i++)
		name[n + i] = chars[random() % (sizeof(chars) - 1)];
	name[n + 5] = '\0';
	json_object_object_add(meta, "name", json_object_new_string(name));
}

void kwrite_create(struct kreq *kr)
{
	struct kfake *f = kr->f;
	const struct kres *k = &kres_all[kr->res];
	json_object *obj = kf_body(kr, 0), *meta, *spec, *containers, *status;
	struct kobj *stored;
	const char *name, *gen;
	struct kerr e;
	int tries;

	if (obj == NULL)
		return;
	if (check_object(kr->res, obj, kr->ns, &e) != 0) {
		send_refusal(kr, &e, NULL);
		goto out;
	}
	meta = kj_meta(obj);
	name = kj_str(meta, "name");
	gen = kj_str(meta, "generateName");
	if ((name == NULL || *name == '\0') && gen != NULL && *gen != '\0') {
		for (tries = 0; tries < 8; tries++) {
			generate_name(meta, gen);
			if (kstore_get(f->st, kr->res, kr->ns, kj_str(meta, "name")) == NULL)
				break;
		}
		if (check_object(kr->res, obj, kr->ns, &e) != 0) {
			send_refusal(kr, &e, NULL);
			goto out;
		}
		name = kj_str(meta, "name");
	}
	if (name == NULL || *name == '\0') {
		kf_fail(kr, 422, "Invalid", k->plural, NULL,
			"%s is invalid: metadata.name: Required value: name or generateName is required",
			k->kind);
		goto out;
	}
	if (kstore_get(f->st, kr->res, kr->ns, name) != NULL) {
		kf_fail(kr, 409, "AlreadyExists", k->plural, name, "%s \"%s\" already exists",
			k->plural, name);
		goto out;
	}
	spec = kj_get(obj, "spec", json_type_object);
	containers = kj_get(spec, "containers", json_type_array);
	if (kr->res == KRES_PODS && (containers == NULL || json_object_array_length(containers) == 0)) {
		kf_fail(kr, 422, "Invalid", k->plural, name,
			"Pod \"%s\" is invalid: spec.containers: Required value", name);
		goto out;
	}
	stamp_new(f, obj);
	/* The status is the server's: a new pod is Pending until "kubelet" says. */
	if (kr->res == KRES_PODS) {
		status = json_object_new_object();
		json_object_object_add(status, "phase", json_object_new_string("Pending"));
		json_object_object_add(status, "qosClass", json_object_new_string("BestEffort"));
		json_object_object_add(obj, "status", status);
	} else if (kr->res == KRES_SERVICES) {
		status = json_object_new_object();
		json_object_object_add(status, "loadBalancer", json_object_new_object());
		json_object_object_add(obj, "status", status);
	}
	if (dry_run(kr)) {
		kf_send_json(kr, 201, obj);
		return;
	}
	kstore_put(f->st, kr->res, obj, &stored);
	kf_send_json(kr, 201, json_object_get(stored->obj));
	return;
out:
	json_object_put(obj);
}

/* ---- update and patch ---- */

/* The body of a PATCH, applied to the stored object; NULL after answering. */
static json_object *apply_patch(struct kreq *kr, struct kobj *o)
{
	const char *ct = evhttp_find_header(evhttp_request_get_input_headers(kr->req), "Content-Type");
	json_object *body, *out;
	char type[80], err[300];
	int kind;

	snprintf(type, sizeof(type), "%s", ct != NULL ? ct : "");
	type[strcspn(type, "; ")] = '\0';
	if (!strcasecmp(type, "application/merge-patch+json"))
		kind = 0;
	else if (!strcasecmp(type, "application/strategic-merge-patch+json"))
		kind = 1;
	else if (!strcasecmp(type, "application/json-patch+json"))
		kind = 2;
	else {
		kf_fail(kr, 415, "UnsupportedMediaType", NULL, NULL,
			"the body of the request was in an unknown format - accepted media types include: "
			"application/json-patch+json, application/merge-patch+json, "
			"application/strategic-merge-patch+json%s",
			!strcasecmp(type, "application/apply-patch+yaml") ?
			" (server-side apply is not served by this fake)" : "");
		return NULL;
	}
	body = kf_body(kr, kind == 2);
	if (body == NULL)
		return NULL;
	if (kind == 2 && !json_object_is_type(body, json_type_array)) {
		json_object_put(body);
		kf_fail(kr, 400, "BadRequest", NULL, NULL, "a JSON patch must be an array of operations");
		return NULL;
	}
	out = kind == 2 ? kpatch_json(o->obj, body, err, sizeof(err)) :
		kpatch_merge(o->obj, body, kind == 1, err, sizeof(err));
	json_object_put(body);
	if (out == NULL)
		kf_fail(kr, 422, "Invalid", kres_all[kr->res].plural, kr->name,
			"the patch does not apply to %s \"%s\": %s", kres_all[kr->res].plural, kr->name, err);
	return out;
}

/* Copy key of from's metadata into to's (or drop it from to). */
static void keep_meta(json_object *to, json_object *from, const char *key)
{
	json_object *v;

	if (json_object_object_get_ex(kj_meta(from), key, &v))
		json_object_object_add(kj_meta(to), key, json_object_get(v));
	else
		json_object_object_del(kj_meta(to), key);
}

/* The object to store for an update of o to cand (consumed). */
static json_object *merge_update(struct kreq *kr, struct kobj *o, json_object *cand)
{
	static const char *const owned[] = { "uid", "creationTimestamp", "namespace", "name",
		"deletionTimestamp", "deletionGracePeriodSeconds", NULL };
	json_object *r, *status;
	size_t i;

	if (kr->status_sub) {
		/* Only the status changes (and the version, when the body gives one). */
		r = copy(o->obj);
		if (json_object_object_get_ex(cand, "status", &status) && status != NULL)
			json_object_object_add(r, "status", json_object_get(status));
		else
			json_object_object_del(r, "status");
		json_object_put(cand);
		return r;
	}
	r = cand;
	for (i = 0; owned[i] != NULL; i++)
		keep_meta(r, o->obj, owned[i]);
	if (kres_all[kr->res].has_status) {
		if (json_object_object_get_ex(o->obj, "status", &status))
			json_object_object_add(r, "status", copy(status));
		else
			json_object_object_del(r, "status");
	}
	return r;
}

void kwrite_update(struct kreq *kr, int patch)
{
	struct kfake *f = kr->f;
	const struct kres *k = &kres_all[kr->res];
	struct kobj *o = kstore_get(f->st, kr->res, kr->ns, kr->name), *stored;
	json_object *cand, *answer;
	const char *crv, *name;
	struct kerr e;

	if (o == NULL) {
		kf_fail(kr, 404, "NotFound", k->plural, kr->name, "%s \"%s\" not found", k->plural,
			kr->name);
		return;
	}
	cand = patch ? apply_patch(kr, o) : kf_body(kr, 0);
	if (cand == NULL)
		return;
	if (check_object(kr->res, cand, kr->ns, &e) != 0) {
		send_refusal(kr, &e, kr->name);
		json_object_put(cand);
		return;
	}
	name = kj_str(kj_meta(cand), "name");
	if (!patch && (name == NULL || strcmp(name, kr->name) != 0)) {
		kf_fail(kr, 400, "BadRequest", k->plural, kr->name,
			"the name of the object (%.100s) does not match the name on the URL (%s)",
			name ? name : "", kr->name);
		json_object_put(cand);
		return;
	}
	/* A version in the body (or put there by the patch) is a precondition. */
	crv = rv_of(cand);
	if (crv != NULL && *crv != '\0' && strcmp(crv, rv_of(o->obj)) != 0) {
		kf_fail(kr, 409, "Conflict", k->plural, kr->name,
			"Operation cannot be fulfilled on %s \"%s\": the object has been modified; "
			"please apply your changes to the latest version and try again", k->plural, kr->name);
		json_object_put(cand);
		return;
	}
	cand = merge_update(kr, o, cand);
	if (dry_run(kr)) {
		kf_send_json(kr, 200, cand);
		return;
	}
	kstore_put(f->st, kr->res, cand, &stored);
	answer = json_object_get(stored->obj);
	maybe_remove(f, stored);
	kf_send_json(kr, 200, answer);
}

/* ---- delete ---- */

/* DeleteOptions from the body and the query: the grace (-1: unset) and
 * preconditions. 0, or -1 after answering. */
static int delete_options(struct kreq *kr, struct kobj *o, long *grace, int *dry)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(kr->req);
	const char *q = kq_get(kr, "gracePeriodSeconds"), *want;
	json_object *opts = NULL, *v, *pre;
	char *end;

	*grace = -1;
	*dry = dry_run(kr);
	if (q != NULL && *q != '\0') {
		*grace = strtol(q, &end, 10);
		if (*end != '\0') {
			kf_fail(kr, 400, "BadRequest", NULL, NULL, "gracePeriodSeconds: not a number");
			return -1;
		}
	}
	if (evbuffer_get_length(in) == 0)
		return 0;
	if ((opts = kf_body(kr, 0)) == NULL)
		return -1;
	if ((v = kj_get(opts, "gracePeriodSeconds", json_type_int)) != NULL)
		*grace = (long)json_object_get_int64(v);
	pre = kj_get(opts, "preconditions", json_type_object);
	if ((want = kj_str(pre, "uid")) != NULL &&
	    strcmp(want, kj_str(kj_meta(o->obj), "uid") ? kj_str(kj_meta(o->obj), "uid") : "") != 0) {
		kf_fail(kr, 409, "Conflict", kres_all[kr->res].plural, kr->name,
			"Precondition failed: UID in precondition: %.64s, UID in object meta: %s", want,
			kj_str(kj_meta(o->obj), "uid"));
		json_object_put(opts);
		return -1;
	}
	if ((want = kj_str(pre, "resourceVersion")) != NULL && strcmp(want, rv_of(o->obj)) != 0) {
		kf_fail(kr, 409, "Conflict", kres_all[kr->res].plural, kr->name,
			"Precondition failed: ResourceVersion in precondition: %.30s, ResourceVersion in object meta: %s",
			want, rv_of(o->obj));
		json_object_put(opts);
		return -1;
	}
	if (kj_str(opts, "dryRun") != NULL || kj_get(opts, "dryRun", json_type_array) != NULL)
		*dry = 1;
	json_object_put(opts);
	return 0;
}

void kwrite_delete(struct kreq *kr)
{
	struct kfake *f = kr->f;
	const struct kres *k = &kres_all[kr->res];
	struct kobj *o = kstore_get(f->st, kr->res, kr->ns, kr->name);
	long grace;
	int dry;

	if (o == NULL) {
		kf_fail(kr, 404, "NotFound", k->plural, kr->name, "%s \"%s\" not found", k->plural,
			kr->name);
		return;
	}
	if (delete_options(kr, o, &grace, &dry) != 0)
		return;
	if (dry) {
		kf_send_json(kr, 200, json_object_get(o->obj));
		return;
	}
	kf_send_json(kr, 200, delete_one(f, o, grace));
}

void kwrite_deletecollection(struct kreq *kr, struct ksel *labels, struct ksel *fields)
{
	struct kfake *f = kr->f;
	const struct kres *k = &kres_all[kr->res];
	json_object *list = json_object_new_object(), *items = json_object_new_array(), *meta;
	json_object **doomed;
	size_t begin, end, i, n = 0;
	char kind[80], rv[24];
	long grace = -1;
	const char *q = kq_get(kr, "gracePeriodSeconds");

	if (q != NULL)
		grace = strtol(q, NULL, 10);
	kstore_range(f->st, kr->res, kr->ns, &begin, &end);
	doomed = malloc((end - begin + 1) * sizeof(*doomed));
	if (doomed == NULL) {
		fprintf(stderr, "fake_kube_apiserver: out of memory\n");
		exit(1);
	}
	/* Pick first: deleting moves the array. */
	for (i = begin; i < end; i++)
		if (ksel_match(labels, f->st->objs[i]->obj) && ksel_match(fields, f->st->objs[i]->obj))
			doomed[n++] = json_object_get(f->st->objs[i]->obj);
	for (i = 0; i < n; i++) {
		json_object *meta_i = kj_meta(doomed[i]);
		struct kobj *o = kstore_get(f->st, kr->res, kj_str(meta_i, "namespace"),
					    kj_str(meta_i, "name"));

		if (o != NULL && !dry_run(kr)) {
			json_object *gone = delete_one(f, o, grace);

			json_object_array_add(items, kapi_item(gone));
			json_object_put(gone);
		} else if (o != NULL) {
			json_object_array_add(items, kapi_item(o->obj));
		}
		json_object_put(doomed[i]);
	}
	free(doomed);
	ksel_free(labels);
	ksel_free(fields);
	snprintf(kind, sizeof(kind), "%sList", k->kind);
	snprintf(rv, sizeof(rv), "%llu", (unsigned long long)f->st->rv);
	json_object_object_add(list, "kind", json_object_new_string(kind));
	json_object_object_add(list, "apiVersion", json_object_new_string(k->api_version));
	meta = json_object_new_object();
	json_object_object_add(meta, "resourceVersion", json_object_new_string(rv));
	json_object_object_add(list, "metadata", meta);
	json_object_object_add(list, "items", items);
	kf_send_json(kr, 200, list);
}

/* ---- bulk load ---- */

void kwrite_load(struct kreq *kr)
{
	struct kfake *f = kr->f;
	json_object *body = kf_body(kr, 1), *items, *answer;
	size_t i, n;
	int *res = NULL;
	long created = 0, replaced = 0, unchanged = 0;
	char rv[24];
	struct kerr e;

	if (body == NULL)
		return;
	items = json_object_is_type(body, json_type_array) ? body :
		kj_get(body, "items", json_type_array);
	if (items == NULL) {
		kf_fail(kr, 400, "BadRequest", NULL, NULL, "the body must be a List with items, or an array");
		goto out;
	}
	n = json_object_array_length(items);
	res = calloc(n + 1, sizeof(*res));
	if (res == NULL) {
		fprintf(stderr, "fake_kube_apiserver: out of memory\n");
		exit(1);
	}
	/* All or nothing: check every item first. */
	for (i = 0; i < n; i++) {
		json_object *it = json_object_array_get_idx(items, i);
		const char *name;

		res[i] = kres_by_kind(kj_str(it, "apiVersion"), kj_str(it, "kind"));
		if (res[i] < 0) {
			kf_fail(kr, 400, "BadRequest", NULL, NULL,
				"item %zu: apiVersion and kind must name a served resource (v1 Pod, v1 Service, discovery.k8s.io/v1 EndpointSlice)", i);
			goto out;
		}
		if (check_object(res[i], it, NULL, &e) != 0) {
			kf_fail(kr, e.code, e.reason, NULL, NULL, "item %zu: %s", i, e.msg);
			goto out;
		}
		name = kj_str(kj_meta(it), "name");
		if (name == NULL || *name == '\0') {
			kf_fail(kr, 422, "Invalid", NULL, NULL, "item %zu: metadata.name is required", i);
			goto out;
		}
	}
	for (i = 0; i < n; i++) {
		json_object *it = copy(json_object_array_get_idx(items, i)), *meta = kj_meta(it);
		struct kobj *o = kstore_get(f->st, res[i], kj_str(meta, "namespace"), kj_str(meta, "name"));
		struct kobj *stored;

		if (o != NULL) {
			if (kj_str(meta, "uid") == NULL)
				keep_meta(it, o->obj, "uid");
			if (kj_str(meta, "creationTimestamp") == NULL)
				keep_meta(it, o->obj, "creationTimestamp");
			json_object_object_del(meta, "resourceVersion");
			if (kstore_put(f->st, res[i], it, &stored) == 1)
				unchanged++;
			else
				replaced++;
		} else {
			char buf[64];

			if (kj_str(meta, "uid") == NULL) {
				kstore_new_uid(f->st, buf, sizeof(buf));
				json_object_object_add(meta, "uid", json_object_new_string(buf));
			}
			if (kj_str(meta, "creationTimestamp") == NULL) {
				kstore_now(buf, sizeof(buf));
				json_object_object_add(meta, "creationTimestamp", json_object_new_string(buf));
			}
			json_object_object_del(meta, "resourceVersion");
			kstore_put(f->st, res[i], it, &stored);
			created++;
		}
	}
	snprintf(rv, sizeof(rv), "%llu", (unsigned long long)f->st->rv);
	answer = json_object_new_object();
	json_object_object_add(answer, "created", json_object_new_int64(created));
	json_object_object_add(answer, "replaced", json_object_new_int64(replaced));
	json_object_object_add(answer, "unchanged", json_object_new_int64(unchanged));
	json_object_object_add(answer, "resourceVersion", json_object_new_string(rv));
	kf_send_json(kr, 200, answer);
out:
	free(res);
	json_object_put(body);
}
