/*
 * kstore.c - the fake API server's objects and their history (kstore.h).
 *
 * Objects are one array sorted by (resource, namespace, name), the order
 * etcd keeps /registry/<resource>/<namespace>/<name> in, so lists come out
 * in the real server's order and a range is found by binary search. A few
 * thousand objects is all a test makes, so inserting by moving the tail is
 * cheap enough.
 */
#define _POSIX_C_SOURCE 200809L

#include "kstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const struct kres kres_all[N_KRES] = {
	{ "pods", "pod", "Pod", "", "v1", "v1", "po", 1 },
	{ "services", "service", "Service", "", "v1", "v1", "svc", 1 },
	{ "endpointslices", "endpointslice", "EndpointSlice", "discovery.k8s.io", "v1",
	  "discovery.k8s.io/v1", NULL, 0 },
};

const char *const kev_names[3] = { "ADDED", "MODIFIED", "DELETED" };

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL) {
		fprintf(stderr, "fake_kube_apiserver: out of memory\n");
		exit(1);
	}
	return p;
}

static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;

	return memcpy(xmalloc(n), s, n);
}

int kres_find(const char *group, const char *version, const char *plural)
{
	int i;

	for (i = 0; i < N_KRES; i++)
		if (!strcmp(kres_all[i].group, group) && !strcmp(kres_all[i].version, version) &&
		    !strcmp(kres_all[i].plural, plural))
			return i;
	return -1;
}

int kres_by_kind(const char *api_version, const char *kind)
{
	int i;

	for (i = 0; i < N_KRES && api_version != NULL && kind != NULL; i++)
		if (!strcmp(kres_all[i].api_version, api_version) && !strcmp(kres_all[i].kind, kind))
			return i;
	return -1;
}

json_object *kj_get(json_object *o, const char *key, json_type type)
{
	json_object *v;

	if (o == NULL || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, type))
		return NULL;
	return v;
}

const char *kj_str(json_object *o, const char *key)
{
	json_object *v = kj_get(o, key, json_type_string);

	return v != NULL ? json_object_get_string(v) : NULL;
}

json_object *kj_meta(json_object *obj)
{
	return kj_get(obj, "metadata", json_type_object);
}

/* ---- the sorted array ---- */

static int key_cmp(int res, const char *ns, const char *name, const struct kobj *o)
{
	int c;

	if (res != o->res)
		return res < o->res ? -1 : 1;
	if ((c = strcmp(ns, o->ns)) != 0)
		return c;
	return strcmp(name, o->name);
}

/* The index of the first object not before the key (name NULL: before every name). */
static size_t lower_bound(struct kstore *st, int res, const char *ns, const char *name)
{
	size_t lo = 0, hi = st->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct kobj *o = st->objs[mid];
		int c;

		if (res != o->res)
			c = res < o->res ? -1 : 1;
		else if (ns == NULL)
			c = -1;
		else if ((c = strcmp(ns, o->ns)) == 0)
			c = name == NULL ? -1 : strcmp(name, o->name);
		if (c > 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct kobj *kstore_get(struct kstore *st, int res, const char *ns, const char *name)
{
	size_t i = lower_bound(st, res, ns, name);

	if (i < st->n && key_cmp(res, ns, name, st->objs[i]) == 0)
		return st->objs[i];
	return NULL;
}

void kstore_range(struct kstore *st, int res, const char *ns, size_t *begin, size_t *end)
{
	size_t i = lower_bound(st, res, ns, NULL);

	*begin = i;
	while (i < st->n && st->objs[i]->res == res && (ns == NULL || !strcmp(st->objs[i]->ns, ns)))
		i++;
	*end = i;
}

/* ---- history ---- */

struct kstore *kstore_new(size_t history)
{
	struct kstore *st = xmalloc(sizeof(*st));

	memset(st, 0, sizeof(*st));
	st->hcap = history > 0 ? history : 1;
	st->hist = xmalloc(st->hcap * sizeof(*st->hist));
	/* Versions start well above 0: "0" means "any" to the API. */
	st->rv = st->hist_start = 100;
	st->uid_salt = (unsigned)getpid() ^ (unsigned)time(NULL);
	return st;
}

static void event_clear(struct kevent *ev)
{
	free(ev->ns);
	free(ev->name);
	json_object_put(ev->obj);
	json_object_put(ev->prev);
}

/* Drop the oldest event. */
static void hist_pop(struct kstore *st)
{
	struct kevent *ev = &st->hist[st->hhead];

	st->hist_start = ev->rv;
	event_clear(ev);
	st->hhead = (st->hhead + 1) % st->hcap;
	st->hlen--;
}

/* Record a change; takes obj and prev. */
static void record(struct kstore *st, enum kev_type type, int res, const char *ns,
		   const char *name, json_object *obj, json_object *prev)
{
	struct kevent *ev;

	if (st->hlen == st->hcap)
		hist_pop(st);
	ev = &st->hist[(st->hhead + st->hlen++) % st->hcap];
	ev->rv = st->rv;
	ev->type = type;
	ev->res = res;
	ev->ns = xstrdup(ns);
	ev->name = xstrdup(name);
	ev->obj = obj;
	ev->prev = prev;
	if (st->on_event != NULL)
		st->on_event(st, ev, st->cb_arg);
}

const struct kevent *kstore_event(struct kstore *st, uint64_t rv)
{
	if (rv <= st->hist_start || rv > st->rv)
		return NULL;
	return &st->hist[(st->hhead + (size_t)(rv - st->hist_start - 1)) % st->hcap];
}

void kstore_compact(struct kstore *st, uint64_t rv)
{
	if (rv > st->rv)
		rv = st->rv;
	while (st->hlen > 0 && st->hist[st->hhead].rv <= rv)
		hist_pop(st);
	if (rv > st->hist_start)
		st->hist_start = rv;
}

static void set_rv(json_object *obj, uint64_t rv)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)rv);
	json_object_object_add(kj_meta(obj), "resourceVersion", json_object_new_string(buf));
}

int kstore_put(struct kstore *st, int res, json_object *obj, struct kobj **out)
{
	json_object *meta = kj_meta(obj);
	const char *ns = kj_str(meta, "namespace"), *name = kj_str(meta, "name");
	size_t i = lower_bound(st, res, ns, name);
	struct kobj *o = NULL;
	json_object *prev;

	if (i < st->n && key_cmp(res, ns, name, st->objs[i]) == 0) {
		o = st->objs[i];
		set_rv(obj, o->rv);
		if (json_object_equal(o->obj, obj)) {
			json_object_put(obj);
			*out = o;
			return 1;
		}
	}
	set_rv(obj, ++st->rv);
	if (o != NULL) {
		prev = o->obj;
		o->obj = obj;
		o->rv = st->rv;
		*out = o;
		record(st, KEV_MODIFIED, res, o->ns, o->name, json_object_get(obj), prev);
		return 0;
	}
	if (st->n == st->cap) {
		struct kobj **grown;

		st->cap = st->cap ? st->cap * 2 : 64;
		grown = realloc(st->objs, st->cap * sizeof(*st->objs));
		if (grown == NULL) {
			fprintf(stderr, "fake_kube_apiserver: out of memory\n");
			exit(1);
		}
		st->objs = grown;
	}
	o = xmalloc(sizeof(*o));
	o->res = res;
	o->ns = xstrdup(ns);
	o->name = xstrdup(name);
	o->obj = obj;
	o->rv = st->rv;
	memmove(st->objs + i + 1, st->objs + i, (st->n - i) * sizeof(*st->objs));
	st->objs[i] = o;
	st->n++;
	*out = o;
	record(st, KEV_ADDED, res, o->ns, o->name, json_object_get(obj), NULL);
	return 0;
}

static void kobj_free(struct kobj *o)
{
	free(o->ns);
	free(o->name);
	json_object_put(o->obj);
	free(o);
}

void kstore_remove(struct kstore *st, struct kobj *o)
{
	size_t i = lower_bound(st, o->res, o->ns, o->name);
	json_object *last = NULL;
	int res = o->res;
	char *ns = o->ns, *name = o->name;

	if (i >= st->n || st->objs[i] != o)
		return;
	memmove(st->objs + i, st->objs + i + 1, (st->n - i - 1) * sizeof(*st->objs));
	st->n--;
	/* The DELETED event carries the last state at the deletion's version. */
	if (json_object_deep_copy(o->obj, &last, NULL) != 0) {
		fprintf(stderr, "fake_kube_apiserver: out of memory\n");
		exit(1);
	}
	set_rv(last, ++st->rv);
	o->ns = o->name = NULL;
	record(st, KEV_DELETED, res, ns, name, last, o->obj);
	o->obj = NULL;
	free(ns);
	free(name);
	kobj_free(o);
}

void kstore_reset(struct kstore *st)
{
	size_t i;

	for (i = 0; i < st->n; i++)
		kobj_free(st->objs[i]);
	st->n = 0;
	kstore_compact(st, st->rv);
}

void kstore_free(struct kstore *st)
{
	if (st == NULL)
		return;
	kstore_reset(st);
	free(st->objs);
	free(st->hist);
	free(st);
}

/* ---- lists at a version ---- */

struct snap {
	const char *ns, *name;
	json_object *obj;	/* borrowed */
};

static size_t snap_find(struct snap *s, size_t n, const char *ns, const char *name, int *found)
{
	size_t lo = 0, hi = n;

	*found = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(ns, s[mid].ns);

		if (c == 0)
			c = strcmp(name, s[mid].name);
		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c > 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int kstore_snapshot(struct kstore *st, int res, const char *ns, uint64_t rv,
		    json_object ***items, size_t *n)
{
	size_t begin, end, cnt, cap, i;
	struct snap *s;
	uint64_t r;

	*items = NULL;
	*n = 0;
	if (rv < st->hist_start)
		return -1;
	if (rv > st->rv)
		return -2;
	kstore_range(st, res, ns, &begin, &end);
	cap = end - begin + 16;
	s = xmalloc(cap * sizeof(*s));
	for (cnt = 0, i = begin; i < end; i++, cnt++) {
		s[cnt].ns = st->objs[i]->ns;
		s[cnt].name = st->objs[i]->name;
		s[cnt].obj = st->objs[i]->obj;
	}
	/* Undo the newer events, newest first. */
	for (r = st->rv; r > rv; r--) {
		const struct kevent *ev = kstore_event(st, r);
		int found;

		if (ev->res != res || (ns != NULL && strcmp(ev->ns, ns) != 0))
			continue;
		i = snap_find(s, cnt, ev->ns, ev->name, &found);
		if (ev->type == KEV_ADDED && found) {
			memmove(s + i, s + i + 1, (cnt - i - 1) * sizeof(*s));
			cnt--;
		} else if (ev->type == KEV_MODIFIED && found) {
			s[i].obj = ev->prev;
		} else if (ev->type == KEV_DELETED && !found) {
			if (cnt == cap) {
				struct snap *grown = realloc(s, (cap *= 2) * sizeof(*s));

				if (grown == NULL) {
					fprintf(stderr, "fake_kube_apiserver: out of memory\n");
					exit(1);
				}
				s = grown;
			}
			memmove(s + i + 1, s + i, (cnt - i) * sizeof(*s));
			s[i].ns = ev->ns;
			s[i].name = ev->name;
			s[i].obj = ev->prev;
			cnt++;
		}
	}
	*items = xmalloc(cnt * sizeof(**items));
	for (i = 0; i < cnt; i++)
		(*items)[i] = json_object_get(s[i].obj);
	*n = cnt;
	free(s);
	return 0;
}

void kstore_items_free(json_object **items, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		json_object_put(items[i]);
	free(items);
}

void kstore_new_uid(struct kstore *st, char *buf, size_t len)
{
	unsigned long long seq = ++st->uid_seq;

	snprintf(buf, len, "%08x-%04llx-4%03llx-8000-%012llx", st->uid_salt,
		 (seq >> 32) & 0xffff, (seq >> 48) & 0xfff, seq & 0xffffffffffffULL);
}

void kstore_now(char *buf, size_t len)
{
	kstore_time(buf, len, 0);
}

void kstore_time(char *buf, size_t len, long from_now)
{
	time_t t = time(NULL) + from_now;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
