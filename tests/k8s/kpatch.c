/*
 * kpatch.c - merge, strategic merge and JSON patches (kpatch.h).
 *
 * Every patch works on a deep copy of the stored object, so it may change
 * that copy in place; the stored object is never touched.
 *
 * Strategic merge knows no schemas: a list is merged by key when its field
 * name is one the core types merge (merge_keys below), else replaced, as
 * every other list in these resources is. The directives kubectl writes
 * are understood: $patch (replace, delete, merge) in maps and list items,
 * $retainKeys, $deleteFromPrimitiveList/<field>; $setElementOrder/<field>
 * is accepted and ignored (items keep their order, new ones go last).
 */
#define _POSIX_C_SOURCE 200809L

#include "kpatch.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Field name -> the key its items are merged by ("ports" is found by look). */
static const struct {
	const char *field, *key;
} merge_keys[] = {
	{ "conditions", "type" },
	{ "containers", "name" }, { "initContainers", "name" }, { "ephemeralContainers", "name" },
	{ "containerStatuses", "name" }, { "initContainerStatuses", "name" },
	{ "ephemeralContainerStatuses", "name" }, { "volumes", "name" }, { "env", "name" },
	{ "imagePullSecrets", "name" }, { "resourceClaims", "name" },
	{ "volumeMounts", "mountPath" }, { "volumeDevices", "devicePath" },
	{ "ownerReferences", "uid" }, { "podIPs", "ip" }, { "hostIPs", "ip" },
};
/* Lists of strings merged as sets. */
static const char *const merge_sets[] = { "finalizers" };

#define MAX_DEPTH 64

static json_object *copy(json_object *o)
{
	json_object *c = NULL;

	if (o == NULL)
		return NULL;
	if (json_object_deep_copy(o, &c, NULL) != 0) {
		fprintf(stderr, "fake_kube_apiserver: out of memory\n");
		exit(1);
	}
	return c;
}

/* Remove strategic directives ("$..." keys) everywhere in o, in place. */
static void strip(json_object *o)
{
	size_t i;

	if (json_object_is_type(o, json_type_array)) {
		for (i = 0; i < json_object_array_length(o); i++)
			strip(json_object_array_get_idx(o, i));
	} else if (json_object_is_type(o, json_type_object)) {
		int again = 1;

		while (again) {
			again = 0;
			json_object_object_foreach(o, k, v) {
				if (k[0] == '$') {
					json_object_object_del(o, k);
					again = 1;
					break;
				}
				strip(v);
			}
		}
	}
}

static const char *list_key(const char *field, json_object *a, json_object *b)
{
	size_t i, j;

	if (field == NULL)
		return NULL;
	if (!strcmp(field, "ports")) {
		json_object *lists[2] = { a, b }, *e, *v;

		for (j = 0; j < 2; j++)
			for (i = 0; lists[j] != NULL && i < json_object_array_length(lists[j]); i++)
				if ((e = json_object_array_get_idx(lists[j], i)) != NULL &&
				    json_object_object_get_ex(e, "containerPort", &v))
					return "containerPort";
		return "port";
	}
	for (i = 0; i < sizeof(merge_keys) / sizeof(merge_keys[0]); i++)
		if (!strcmp(field, merge_keys[i].field))
			return merge_keys[i].key;
	return NULL;
}

static int is_set_list(const char *field)
{
	size_t i;

	for (i = 0; field != NULL && i < sizeof(merge_sets) / sizeof(merge_sets[0]); i++)
		if (!strcmp(field, merge_sets[i]))
			return 1;
	return 0;
}

static const char *directive(json_object *o)
{
	json_object *v;

	if (json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, "$patch", &v) &&
	    json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return NULL;
}

static json_object *merge(json_object *t, json_object *p, int strategic, const char *field,
			  int depth, char *err, size_t errlen, int *bad);

static int index_of(json_object *list, json_object *val)
{
	size_t i;

	for (i = 0; i < json_object_array_length(list); i++)
		if (json_object_equal(json_object_array_get_idx(list, i), val))
			return (int)i;
	return -1;
}

static int index_by_key(json_object *list, const char *key, json_object *kv)
{
	size_t i;
	json_object *v;

	for (i = 0; i < json_object_array_length(list); i++)
		if (json_object_object_get_ex(json_object_array_get_idx(list, i), key, &v) &&
		    json_object_equal(v, kv))
			return (int)i;
	return -1;
}

/* A strategic list merge: t (owned, an array) with the patch list p. */
static json_object *merge_list(json_object *t, json_object *p, const char *key, int depth,
			       char *err, size_t errlen, int *bad)
{
	size_t i;
	int at;

	for (i = 0; i < json_object_array_length(p); i++) {
		const char *d = directive(json_object_array_get_idx(p, i));

		if (d != NULL && !strcmp(d, "replace")) {
			json_object *r = copy(p);

			json_object_array_del_idx(r, i, 1);
			strip(r);
			json_object_put(t);
			return r;
		}
	}
	for (i = 0; i < json_object_array_length(p); i++) {
		json_object *pe = json_object_array_get_idx(p, i), *kv;
		const char *d = directive(pe);

		if (key == NULL) {	/* a set of scalars */
			if (index_of(t, pe) < 0)
				json_object_array_add(t, copy(pe));
			continue;
		}
		if (!json_object_is_type(pe, json_type_object) ||
		    !json_object_object_get_ex(pe, key, &kv)) {
			snprintf(err, errlen, "an item of a merged list lacks its merge key '%s'", key);
			*bad = 1;
			return t;
		}
		at = index_by_key(t, key, kv);
		if (d != NULL && !strcmp(d, "delete")) {
			while (at >= 0) {
				json_object_array_del_idx(t, (size_t)at, 1);
				at = index_by_key(t, key, kv);
			}
		} else if (at >= 0) {
			json_object *e = json_object_get(json_object_array_get_idx(t, (size_t)at));

			e = merge(e, pe, 1, NULL, depth + 1, err, errlen, bad);
			if (e == NULL)
				json_object_array_del_idx(t, (size_t)at, 1);
			else
				json_object_array_put_idx(t, (size_t)at, e);
		} else {
			json_object *e = copy(pe);

			strip(e);
			json_object_array_add(t, e);
		}
	}
	return t;
}

/* Drop the values in vals from t[field], a list of scalars. */
static void delete_from_list(json_object *t, const char *field, json_object *vals)
{
	json_object *list;
	size_t i;
	int at;

	if (!json_object_object_get_ex(t, field, &list) || !json_object_is_type(list, json_type_array) ||
	    !json_object_is_type(vals, json_type_array))
		return;
	for (i = 0; i < json_object_array_length(vals); i++)
		while ((at = index_of(list, json_object_array_get_idx(vals, i))) >= 0)
			json_object_array_del_idx(list, (size_t)at, 1);
}

/*
 * Merge p into t, which is owned (consumed) and may be changed in place.
 * Returns the new value, or NULL when a strategic $patch: delete removes it.
 */
static json_object *merge(json_object *t, json_object *p, int strategic, const char *field,
			  int depth, char *err, size_t errlen, int *bad)
{
	const char *d;
	json_object *keep;

	if (*bad)
		return t;
	if (depth > MAX_DEPTH) {
		snprintf(err, errlen, "patch nested too deep");
		*bad = 1;
		return t;
	}
	if (strategic && json_object_is_type(p, json_type_array) &&
	    json_object_is_type(t, json_type_array) && (list_key(field, t, p) || is_set_list(field)))
		return merge_list(t, p, list_key(field, t, p), depth, err, errlen, bad);
	if (!json_object_is_type(p, json_type_object)) {
		json_object_put(t);
		t = copy(p);
		if (strategic)
			strip(t);
		return t;
	}
	d = strategic ? directive(p) : NULL;
	if (d != NULL && !strcmp(d, "delete")) {
		json_object_put(t);
		return NULL;
	}
	if (d != NULL && !strcmp(d, "replace")) {
		json_object_put(t);
		t = copy(p);
		strip(t);
		return t;
	}
	if (!json_object_is_type(t, json_type_object)) {
		json_object_put(t);
		t = json_object_new_object();
	}
	json_object_object_foreach(p, k, v) {
		json_object *cur, *nv;

		if (strategic && k[0] == '$') {
			if (!strncmp(k, "$deleteFromPrimitiveList/", 25))
				delete_from_list(t, k + 25, v);
			continue;
		}
		if (v == NULL || json_object_is_type(v, json_type_null)) {
			json_object_object_del(t, k);
			continue;
		}
		if (json_object_object_get_ex(t, k, &cur))
			json_object_get(cur);
		else
			cur = NULL;
		nv = merge(cur, v, strategic, k, depth + 1, err, errlen, bad);
		if (nv == NULL)
			json_object_object_del(t, k);
		else
			json_object_object_add(t, k, nv);
	}
	keep = NULL;
	if (strategic && json_object_object_get_ex(p, "$retainKeys", &keep) &&
	    json_object_is_type(keep, json_type_array)) {
		int again = 1;

		while (again) {
			json_object *name;

			again = 0;
			json_object_object_foreach(t, tk, tv) {
				(void)tv;
				name = json_object_new_string(tk);
				if (index_of(keep, name) < 0) {
					json_object_put(name);
					json_object_object_del(t, tk);
					again = 1;
					break;
				}
				json_object_put(name);
			}
		}
	}
	return t;
}

json_object *kpatch_merge(json_object *target, json_object *patch, int strategic,
			  char *err, size_t errlen)
{
	int bad = 0;
	json_object *r;

	if (!json_object_is_type(patch, json_type_object)) {
		snprintf(err, errlen, "a merge patch must be a JSON object");
		return NULL;
	}
	r = merge(copy(target), patch, strategic, NULL, 0, err, errlen, &bad);
	if (bad || r == NULL || !json_object_is_type(r, json_type_object)) {
		if (!bad)
			snprintf(err, errlen, "the patch removes the whole object");
		json_object_put(r);
		return NULL;
	}
	return r;
}

/* ---- JSON patch ---- */

/* The next reference token of a JSON pointer, unescaped; NULL at the end. */
static const char *ptr_next(const char **p, char *tok, size_t len)
{
	const char *s = *p;
	size_t n = 0;

	if (*s != '/')
		return NULL;
	for (s++; *s != '\0' && *s != '/'; s++) {
		char c = *s;

		if (c == '~' && (s[1] == '0' || s[1] == '1'))
			c = *++s == '0' ? '~' : '/';
		if (n + 1 < len)
			tok[n++] = c;
	}
	tok[n] = '\0';
	*p = s;
	return tok;
}

static int array_index(const char *tok, size_t len, int allow_end, size_t *idx)
{
	size_t v = 0;
	const char *s;

	if (allow_end && !strcmp(tok, "-")) {
		*idx = len;
		return 0;
	}
	if (*tok == '\0' || (tok[0] == '0' && tok[1] != '\0'))
		return -1;
	for (s = tok; *s; s++) {
		if (!isdigit((unsigned char)*s) || v > 100000000)
			return -1;
		v = v * 10 + (size_t)(*s - '0');
	}
	if (v > len || (!allow_end && v == len))
		return -1;
	*idx = v;
	return 0;
}

/* Find the container of path's last token: *parent and the token in last. */
static int ptr_parent(json_object *doc, const char *path, json_object **parent,
		      char *last, size_t len)
{
	json_object *cur = doc;
	const char *p = path;
	char tok[512];
	size_t idx;

	if (ptr_next(&p, last, len) == NULL)
		return -1;
	while (*p != '\0') {
		if (json_object_is_type(cur, json_type_object)) {
			if (!json_object_object_get_ex(cur, last, &cur))
				return -1;
		} else if (json_object_is_type(cur, json_type_array)) {
			if (array_index(last, json_object_array_length(cur), 0, &idx) != 0)
				return -1;
			cur = json_object_array_get_idx(cur, idx);
		} else {
			return -1;
		}
		if (ptr_next(&p, tok, sizeof(tok)) == NULL)
			return -1;
		snprintf(last, len, "%s", tok);
	}
	if (!json_object_is_type(cur, json_type_object) && !json_object_is_type(cur, json_type_array))
		return -1;
	*parent = cur;
	return 0;
}

static json_object *ptr_get(json_object *doc, const char *path)
{
	json_object *parent, *v;
	char last[512];
	size_t idx;

	if (*path == '\0')
		return doc;
	if (ptr_parent(doc, path, &parent, last, sizeof(last)) != 0)
		return NULL;
	if (json_object_is_type(parent, json_type_object))
		return json_object_object_get_ex(parent, last, &v) ? v : NULL;
	if (array_index(last, json_object_array_length(parent), 0, &idx) != 0)
		return NULL;
	return json_object_array_get_idx(parent, idx);
}

/* Insert v (consumed) at idx, moving the rest up. */
static void array_insert(json_object *a, size_t idx, json_object *v)
{
	size_t i = json_object_array_length(a);

	json_object_array_add(a, NULL);
	for (; i > idx; i--)
		json_object_array_put_idx(a, i, json_object_get(json_object_array_get_idx(a, i - 1)));
	json_object_array_put_idx(a, idx, v);
}

/* add (replace_only 0) or replace (1) v (consumed) at path; the root is *doc. */
static int ptr_set(json_object **doc, const char *path, json_object *v, int replace_only)
{
	json_object *parent, *old;
	char last[512];
	size_t idx;

	if (*path == '\0') {
		json_object_put(*doc);
		*doc = v;
		return 0;
	}
	if (ptr_parent(*doc, path, &parent, last, sizeof(last)) != 0)
		goto bad;
	if (json_object_is_type(parent, json_type_object)) {
		if (replace_only && !json_object_object_get_ex(parent, last, &old))
			goto bad;
		json_object_object_add(parent, last, v);
		return 0;
	}
	if (array_index(last, json_object_array_length(parent), !replace_only, &idx) != 0)
		goto bad;
	if (replace_only)
		json_object_array_put_idx(parent, idx, v);
	else
		array_insert(parent, idx, v);
	return 0;
bad:
	json_object_put(v);
	return -1;
}

static int ptr_remove(json_object *doc, const char *path)
{
	json_object *parent, *old;
	char last[512];
	size_t idx;

	if (*path == '\0' || ptr_parent(doc, path, &parent, last, sizeof(last)) != 0)
		return -1;
	if (json_object_is_type(parent, json_type_object)) {
		if (!json_object_object_get_ex(parent, last, &old))
			return -1;
		json_object_object_del(parent, last);
		return 0;
	}
	if (array_index(last, json_object_array_length(parent), 0, &idx) != 0)
		return -1;
	return json_object_array_del_idx(parent, idx, 1) == 0 ? 0 : -1;
}

json_object *kpatch_json(json_object *target, json_object *ops, char *err, size_t errlen)
{
	json_object *doc;
	size_t i;

	if (!json_object_is_type(ops, json_type_array)) {
		snprintf(err, errlen, "a JSON patch must be an array of operations");
		return NULL;
	}
	doc = copy(target);
	for (i = 0; i < json_object_array_length(ops); i++) {
		json_object *op = json_object_array_get_idx(ops, i), *val = NULL, *v;
		const char *name = NULL, *path = NULL, *from = NULL;
		int rc = -1, has_val = 0;

		if (json_object_is_type(op, json_type_object)) {
			if (json_object_object_get_ex(op, "op", &v) && json_object_is_type(v, json_type_string))
				name = json_object_get_string(v);
			if (json_object_object_get_ex(op, "path", &v) && json_object_is_type(v, json_type_string))
				path = json_object_get_string(v);
			if (json_object_object_get_ex(op, "from", &v) && json_object_is_type(v, json_type_string))
				from = json_object_get_string(v);
			has_val = json_object_object_get_ex(op, "value", &val);
		}
		if (name == NULL || path == NULL) {
			snprintf(err, errlen, "operation %zu: needs string 'op' and 'path'", i);
			goto bad;
		}
		if (!strcmp(name, "add") || !strcmp(name, "replace")) {
			if (!has_val) {
				snprintf(err, errlen, "operation %zu: '%s' needs a value", i, name);
				goto bad;
			}
			rc = ptr_set(&doc, path, copy(val), name[0] == 'r');
		} else if (!strcmp(name, "remove")) {
			rc = ptr_remove(doc, path);
		} else if (!strcmp(name, "test")) {
			rc = has_val && json_object_equal(ptr_get(doc, path), val) ? 0 : -1;
			if (rc != 0) {
				snprintf(err, errlen, "operation %zu: test failed at '%.200s'", i, path);
				goto bad;
			}
		} else if (!strcmp(name, "move") || !strcmp(name, "copy")) {
			json_object *src = from != NULL ? ptr_get(doc, from) : NULL;

			if (src != NULL) {
				src = copy(src);
				if (name[0] == 'm' && ptr_remove(doc, from) != 0) {
					json_object_put(src);
					src = NULL;
				}
			}
			if (src != NULL)
				rc = ptr_set(&doc, path, src, 0);
		} else {
			snprintf(err, errlen, "operation %zu: unknown op '%.40s'", i, name);
			goto bad;
		}
		if (rc != 0) {
			snprintf(err, errlen, "operation %zu (%s): no such path '%.200s'", i, name,
				 name[0] == 'm' || name[0] == 'c' ? (from ? from : "") : path);
			goto bad;
		}
	}
	if (!json_object_is_type(doc, json_type_object)) {
		snprintf(err, errlen, "the patch does not leave an object");
		goto bad;
	}
	return doc;
bad:
	json_object_put(doc);
	return NULL;
}
