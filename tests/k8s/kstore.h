/*
 * kstore.h - the fake API server's objects and their history.
 *
 * One global resourceVersion counter, as etcd's revision: every change
 * (ADDED, MODIFIED, DELETED) takes the next number, so the history is one
 * run of consecutive versions (hist_start, rv]. It is bounded (--history);
 * what falls off the front, or is compacted away, cannot be watched from
 * or listed at any more (410 Expired).
 *
 * Stored objects are json-c objects that are never changed once stored: a
 * change stores a new object, so the history and open lists can hold
 * references to old versions without copying them.
 */
#ifndef KSTORE_H
#define KSTORE_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

/* A resource the fake serves; all are namespaced. */
struct kres {
	const char *plural;	/* "pods" */
	const char *singular;	/* "pod" */
	const char *kind;	/* "Pod" */
	const char *group;	/* "" for the core group */
	const char *version;	/* "v1" */
	const char *api_version;	/* "v1", "discovery.k8s.io/v1" */
	const char *short_name;	/* NULL: none */
	int has_status;		/* a status subresource */
};

enum { KRES_PODS, KRES_SERVICES, KRES_ENDPOINTSLICES, N_KRES };
extern const struct kres kres_all[N_KRES];

/* The resource with this group, version and plural, or -1. */
int kres_find(const char *group, const char *version, const char *plural);
/* The resource of an object's apiVersion and kind, or -1. */
int kres_by_kind(const char *api_version, const char *kind);

enum kev_type { KEV_ADDED, KEV_MODIFIED, KEV_DELETED };
extern const char *const kev_names[3];

struct kobj {
	int res;
	char *ns, *name;	/* the key */
	json_object *obj;	/* the stored object, metadata.resourceVersion set */
	uint64_t rv;
};

struct kevent {
	uint64_t rv;
	enum kev_type type;
	int res;
	char *ns, *name;
	json_object *obj;	/* the state after; DELETED: the last state, at this rv */
	json_object *prev;	/* the state before; NULL for ADDED */
};

struct kstore;
/* Called after each change is recorded (the watches follow it). */
typedef void (*kstore_cb)(struct kstore *st, const struct kevent *ev, void *arg);

struct kstore {
	uint64_t rv;		/* the last resourceVersion handed out */
	struct kobj **objs;	/* sorted by (res, ns, name) */
	size_t n, cap;
	struct kevent *hist;	/* a ring of the events hist_start+1 .. rv */
	size_t hcap, hhead, hlen;
	uint64_t hist_start;
	uint64_t uid_seq;
	unsigned uid_salt;
	kstore_cb on_event;
	void *cb_arg;
};

struct kstore *kstore_new(size_t history);
void kstore_free(struct kstore *st);

struct kobj *kstore_get(struct kstore *st, int res, const char *ns, const char *name);
/* The objects of res (in namespace ns, or all when ns is NULL) are
 * st->objs[*begin .. *end). */
void kstore_range(struct kstore *st, int res, const char *ns, size_t *begin, size_t *end);

/*
 * Store obj (consumed) as the new state of its key, the key being its
 * metadata.namespace and metadata.name (the caller has checked both):
 * ADDED or MODIFIED at the next resourceVersion, which is written into it.
 * A change to nothing but metadata.resourceVersion is no change: then
 * nothing is recorded and 1 is returned; else 0. *out: the stored object.
 */
int kstore_put(struct kstore *st, int res, json_object *obj, struct kobj **out);
/* Remove o (DELETED at the next resourceVersion); o is freed. */
void kstore_remove(struct kstore *st, struct kobj *o);
/* Forget every event up to rv (at most the current one). */
void kstore_compact(struct kstore *st, uint64_t rv);
/* Remove every object without events, and forget the history. */
void kstore_reset(struct kstore *st);

/* The event at rv, when hist_start < rv <= st->rv; else NULL. */
const struct kevent *kstore_event(struct kstore *st, uint64_t rv);

/*
 * The objects of res (ns NULL: every namespace) as they were at rv, sorted
 * by (namespace, name): new references in *items (free with
 * kstore_items_free). Returns 0, -1 when rv is older than the history, -2
 * when it is newer than the store.
 */
int kstore_snapshot(struct kstore *st, int res, const char *ns, uint64_t rv,
		    json_object ***items, size_t *n);
void kstore_items_free(json_object **items, size_t n);

/* A new uid, creationTimestamp-style time: helpers for the API layer. */
void kstore_new_uid(struct kstore *st, char *buf, size_t len);
void kstore_now(char *buf, size_t len);
void kstore_time(char *buf, size_t len, long seconds_from_now);

/* json helpers used everywhere: a member of the given type, or NULL. */
json_object *kj_get(json_object *o, const char *key, json_type type);
const char *kj_str(json_object *o, const char *key);
/* obj.metadata (an object), or NULL. */
json_object *kj_meta(json_object *obj);

#endif
