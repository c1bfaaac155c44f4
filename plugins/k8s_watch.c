/*
 * k8s_watch.c - what the API server sends, made into a table of objects:
 * the framing of a watch (one JSON event per line, in pieces of any size),
 * the fields of pods, Services and EndpointSlices that discovery reads, a
 * LIST answer, watch events, and the rules that make a pod or a Service a
 * backend.  No network here: the plugin feeds it, the tests and the
 * fuzzer too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "k8s_lib.h"

/* Kubernetes objects nest deeper than json-c's default of 32 in their
 * managedFields. */
#define JSON_DEPTH 128

/* ---- framing ---- */

static int deliver(const char *line, size_t n, k8s_line_fn fn, void *arg)
{
    if (n > 0 && line[n - 1] == '\r')
        n--;
    if (n == 0)
        return 0;
    return fn(arg, line, n);
}

static int keep(struct k8s_lines *l, const char *data, size_t n)
{
    size_t max = l->max ? l->max : K8S_MAX_LINE;

    if (l->len + n > max) {
        k8s_lines_reset(l);
        return K8S_LINE_TOO_LONG;
    }
    if (l->len + n > l->cap) {
        size_t cap = l->cap ? l->cap : 4096;
        while (cap < l->len + n)
            cap *= 2;
        if (cap > max)
            cap = max;
        char *nb = realloc(l->buf, cap);
        if (nb == NULL) {
            k8s_lines_reset(l);
            return K8S_LINE_TOO_LONG; /* the stream must start over either way */
        }
        l->buf = nb;
        l->cap = cap;
    }
    memcpy(l->buf + l->len, data, n);
    l->len += n;
    return 0;
}

int k8s_lines_feed(struct k8s_lines *l, const char *data, size_t len, k8s_line_fn fn, void *arg)
{
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t n = nl ? (size_t)(nl - data) : len;
        int rc;

        if (nl == NULL)
            return keep(l, data, n);
        if (l->len == 0) {
            /* the usual case: whole lines in this piece, no copy */
            size_t max = l->max ? l->max : K8S_MAX_LINE;
            if (n > max)
                return K8S_LINE_TOO_LONG;
            rc = deliver(data, n, fn, arg);
        } else {
            if ((rc = keep(l, data, n)) != 0)
                return rc;
            rc = deliver(l->buf, l->len, fn, arg);
            l->len = 0;
        }
        if (rc != 0)
            return rc;
        data += n + 1;
        len -= n + 1;
    }
    return 0;
}

int k8s_lines_finish(struct k8s_lines *l, k8s_line_fn fn, void *arg)
{
    int rc = l->len > 0 ? deliver(l->buf, l->len, fn, arg) : 0;

    l->len = 0;
    return rc;
}

void k8s_lines_reset(struct k8s_lines *l)
{
    free(l->buf);
    l->buf = NULL;
    l->len = l->cap = 0;
}

/* ---- objects ---- */

void k8s_obj_free(struct k8s_obj *o)
{
    free(o->name);
    free(o->uid);
    free(o->rv);
    for (size_t i = 0; i < o->nlabels; i++) {
        free(o->labels[i].key);
        free(o->labels[i].value);
    }
    free(o->labels);
    free(o->phase);
    free(o->pod_ip);
    free(o->service);
    memset(o, 0, sizeof *o);
}

const char *k8s_obj_label(const struct k8s_obj *o, const char *key)
{
    for (size_t i = 0; i < o->nlabels; i++)
        if (strcmp(o->labels[i].key, key) == 0)
            return o->labels[i].value;
    return NULL;
}

static json_object *member(json_object *o, const char *key)
{
    json_object *v = NULL;

    if (o == NULL || !json_object_is_type(o, json_type_object) ||
        !json_object_object_get_ex(o, key, &v))
        return NULL;
    return v;
}

/* A string member without NUL bytes, else NULL. */
static const char *string_member(json_object *o, const char *key)
{
    json_object *v = member(o, key);
    const char *s;

    if (v == NULL || !json_object_is_type(v, json_type_string))
        return NULL;
    s = json_object_get_string(v);
    return strlen(s) == (size_t)json_object_get_string_len(v) ? s : NULL;
}

/* Copy a string member into *dst (NULL when absent); -1 out of memory. */
static int copy_member(json_object *o, const char *key, char **dst)
{
    const char *s = string_member(o, key);

    *dst = NULL;
    if (s == NULL)
        return 0;
    *dst = strdup(s);
    return *dst != NULL ? 0 : -1;
}

static int parse_labels(json_object *meta, struct k8s_obj *out)
{
    json_object *labels = member(meta, "labels");

    if (labels == NULL || !json_object_is_type(labels, json_type_object))
        return 0;
    size_t n = (size_t)json_object_object_length(labels);
    if (n == 0)
        return 0;
    out->labels = calloc(n, sizeof *out->labels);
    if (out->labels == NULL)
        return -1;
    json_object_object_foreach(labels, key, val) {
        const char *v;
        if (!json_object_is_type(val, json_type_string))
            continue;
        v = json_object_get_string(val);
        if (strlen(v) != (size_t)json_object_get_string_len(val))
            continue; /* a NUL byte: no label value has one */
        struct k8s_label *l = &out->labels[out->nlabels];
        l->key = strdup(key);
        l->value = strdup(v);
        if (l->key == NULL || l->value == NULL) {
            free(l->key);
            free(l->value);
            return -1;
        }
        out->nlabels++;
    }
    return 0;
}

static int pod_fields(json_object *obj, struct k8s_obj *out)
{
    json_object *status = member(obj, "status"), *conds = member(status, "conditions");
    json_object *del = member(member(obj, "metadata"), "deletionTimestamp");

    out->deleting = del != NULL && !json_object_is_type(del, json_type_null);
    if (copy_member(status, "phase", &out->phase) != 0 ||
        copy_member(status, "podIP", &out->pod_ip) != 0)
        return -1;
    if (out->pod_ip != NULL && out->pod_ip[0] == '\0') {
        free(out->pod_ip);
        out->pod_ip = NULL;
    }
    if (out->pod_ip == NULL) {
        /* podIPs[0] is podIP by the API's rule; older servers send podIP only */
        json_object *ips = member(status, "podIPs");
        if (ips != NULL && json_object_is_type(ips, json_type_array) &&
            json_object_array_length(ips) > 0) {
            const char *ip = string_member(json_object_array_get_idx(ips, 0), "ip");
            if (ip != NULL && ip[0] != '\0' && (out->pod_ip = strdup(ip)) == NULL)
                return -1;
        }
    }
    if (conds != NULL && json_object_is_type(conds, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(conds); i++) {
            json_object *c = json_object_array_get_idx(conds, i);
            const char *type = string_member(c, "type"), *st = string_member(c, "status");
            if (type != NULL && strcmp(type, "Ready") == 0)
                out->ready = st != NULL && strcmp(st, "True") == 0;
        }
    }
    return 0;
}

static int slice_fields(json_object *obj, struct k8s_obj *out)
{
    json_object *eps = member(obj, "endpoints");
    const char *svc = k8s_obj_label(out, "kubernetes.io/service-name");

    if (svc != NULL && (out->service = strdup(svc)) == NULL)
        return -1;
    if (eps == NULL || !json_object_is_type(eps, json_type_array))
        return 0;
    for (size_t i = 0; i < json_object_array_length(eps); i++) {
        json_object *ep = json_object_array_get_idx(eps, i);
        json_object *addrs = member(ep, "addresses");
        json_object *ready = member(member(ep, "conditions"), "ready");
        /* the API: an absent ready condition is to be read as true */
        if (addrs != NULL && json_object_is_type(addrs, json_type_array) &&
            json_object_array_length(addrs) > 0 &&
            (ready == NULL || json_object_is_type(ready, json_type_null) ||
             (json_object_is_type(ready, json_type_boolean) && json_object_get_boolean(ready))))
            out->ready_endpoints++;
    }
    return 0;
}

/* obj into *out: 0; 1 when it has no name (skip it); -1 out of memory. */
static int obj_parse(int kind, json_object *obj, struct k8s_obj *out)
{
    json_object *meta = member(obj, "metadata");

    memset(out, 0, sizeof *out);
    if (string_member(meta, "name") == NULL || string_member(meta, "name")[0] == '\0')
        return 1;
    if (copy_member(meta, "name", &out->name) != 0 || copy_member(meta, "uid", &out->uid) != 0 ||
        copy_member(meta, "resourceVersion", &out->rv) != 0 || parse_labels(meta, out) != 0 ||
        (kind == K8S_POD && pod_fields(obj, out) != 0) ||
        (kind == K8S_ENDPOINTSLICE && slice_fields(obj, out) != 0)) {
        k8s_obj_free(out);
        return -1;
    }
    return 0;
}

/* ---- the table ---- */

void k8s_table_init(struct k8s_table *t, int kind)
{
    memset(t, 0, sizeof *t);
    t->kind = kind;
}

void k8s_table_free(struct k8s_table *t)
{
    for (size_t i = 0; i < t->n; i++)
        k8s_obj_free(&t->objs[i]);
    free(t->objs);
    free(t->rv);
    k8s_table_init(t, t->kind);
}

/* Where name is, or would go: *found says which. */
static size_t slot(const struct k8s_table *t, const char *name, int *found)
{
    size_t lo = 0, hi = t->n;

    *found = 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(t->objs[mid].name, name);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const struct k8s_obj *k8s_table_find(const struct k8s_table *t, const char *name)
{
    int found;
    size_t i = slot(t, name, &found);

    return found ? &t->objs[i] : NULL;
}

/* Put o in (taking it), replacing an object of the same name. */
static int table_put(struct k8s_table *t, struct k8s_obj *o)
{
    int found;
    size_t i = slot(t, o->name, &found);

    if (found) {
        k8s_obj_free(&t->objs[i]);
        t->objs[i] = *o;
        return 0;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        struct k8s_obj *no = realloc(t->objs, cap * sizeof *no);
        if (no == NULL) {
            k8s_obj_free(o);
            return -1;
        }
        t->objs = no;
        t->cap = cap;
    }
    memmove(&t->objs[i + 1], &t->objs[i], (t->n - i) * sizeof *t->objs);
    t->objs[i] = *o;
    t->n++;
    return 0;
}

static void table_remove(struct k8s_table *t, const char *name)
{
    int found;
    size_t i = slot(t, name, &found);

    if (!found)
        return;
    k8s_obj_free(&t->objs[i]);
    memmove(&t->objs[i], &t->objs[i + 1], (t->n - i - 1) * sizeof *t->objs);
    t->n--;
}

static int set_rv(struct k8s_table *t, const char *rv)
{
    char *copy;

    if (rv == NULL || rv[0] == '\0')
        return 0; /* keep the last one we had */
    if ((copy = strdup(rv)) == NULL)
        return -1;
    free(t->rv);
    t->rv = copy;
    return 0;
}

void k8s_table_swap_in(struct k8s_table *dst, struct k8s_table *src)
{
    k8s_table_free(dst);
    *dst = *src;
    k8s_table_init(src, dst->kind);
}

static json_object *parse_json(const char *text, size_t len, char *err, size_t errlen)
{
    struct json_tokener *tok;
    json_object *o;

    if (len > (size_t)INT32_MAX) {
        snprintf(err, errlen, "too long");
        return NULL;
    }
    tok = json_tokener_new_ex(JSON_DEPTH);
    if (tok == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    o = json_tokener_parse_ex(tok, text, (int)len);
#if JSON_C_VERSION_NUM >= (15 << 8)
    size_t end = o != NULL ? json_tokener_get_parse_end(tok) : len;
#else
    size_t end = o != NULL ? (size_t)tok->char_offset : len;
#endif
    while (end < len && (text[end] == ' ' || text[end] == '\t' || text[end] == '\r' ||
                         text[end] == '\n'))
        end++;
    if (o == NULL || end < len) {
        enum json_tokener_error e = json_tokener_get_error(tok);
        snprintf(err, errlen, "not JSON: %s",
                 o != NULL ? "text after the value"
                 : e == json_tokener_continue ? "it ends too soon"
                                              : json_tokener_error_desc(e));
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}

static const char *const kind_names[] = { "pods", "services", "endpointslices" };

int k8s_list_parse(int kind, const char *body, size_t len, struct k8s_table *out,
                   size_t *skipped, char *err, size_t errlen)
{
    json_object *root = parse_json(body, len, err, errlen), *items;
    const char *rv;

    k8s_table_init(out, kind);
    if (skipped != NULL)
        *skipped = 0;
    if (root == NULL)
        return -1;
    rv = string_member(member(root, "metadata"), "resourceVersion");
    /* "items": null is Go's empty slice; json-c reads null as NULL */
    if (!json_object_is_type(root, json_type_object) ||
        !json_object_object_get_ex(root, "items", &items) ||
        (items != NULL && !json_object_is_type(items, json_type_array))) {
        snprintf(err, errlen, "the list of %s has no items", kind_names[kind]);
        goto fail;
    }
    if (rv == NULL || rv[0] == '\0') {
        /* without it a watch cannot start where the list ends */
        snprintf(err, errlen, "the list of %s has no resourceVersion", kind_names[kind]);
        goto fail;
    }
    if (set_rv(out, rv) != 0)
        goto oom;
    for (size_t i = 0; items != NULL && i < json_object_array_length(items); i++) {
        struct k8s_obj o;
        int rc = obj_parse(kind, json_object_array_get_idx(items, i), &o);
        if (rc < 0)
            goto oom;
        if (rc > 0) {
            if (skipped != NULL)
                (*skipped)++;
            continue;
        }
        if (table_put(out, &o) != 0)
            goto oom;
    }
    json_object_put(root);
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    json_object_put(root);
    k8s_table_free(out);
    return -1;
}

int k8s_event_apply(struct k8s_table *t, const char *line, size_t len, struct k8s_event *ev,
                    char *err, size_t errlen)
{
    static const char *const types[] = { "ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR" };
    json_object *root = parse_json(line, len, err, errlen), *obj;
    const char *type, *s;
    struct k8s_obj o;
    int rc = -1;

    memset(ev, 0, sizeof *ev);
    if (root == NULL)
        return -1;
    type = string_member(root, "type");
    obj = member(root, "object");
    ev->type = -1;
    for (int i = 0; type != NULL && i < 5; i++)
        if (strcmp(type, types[i]) == 0)
            ev->type = i;
    if (ev->type < 0) {
        snprintf(err, errlen, "a watch event of unknown type '%.40s'", type ? type : "(none)");
        goto out;
    }
    if (obj == NULL || !json_object_is_type(obj, json_type_object)) {
        snprintf(err, errlen, "a %s event without an object", type);
        goto out;
    }
    switch (ev->type) {
    case K8S_EV_ERROR: {
        /* a Status: {"kind":"Status","code":410,"reason":"Expired",...} */
        json_object *code = member(obj, "code");
        ev->code = code != NULL && json_object_is_type(code, json_type_int)
                       ? (int)json_object_get_int64(code) : 0;
        s = string_member(obj, "message");
        snprintf(ev->message, sizeof ev->message, "%s", s ? s : "(no message)");
        rc = 0;
        break;
    }
    case K8S_EV_BOOKMARK:
        /* a bookmark only says how far the watch has come */
        if (set_rv(t, string_member(member(obj, "metadata"), "resourceVersion")) != 0)
            snprintf(err, errlen, "out of memory");
        else
            rc = 0;
        break;
    default:
        if ((rc = obj_parse(t->kind, obj, &o)) != 0) {
            if (rc > 0)
                snprintf(err, errlen, "a %s event for an object without a name", type);
            else
                snprintf(err, errlen, "out of memory");
            rc = -1;
            break;
        }
        snprintf(ev->name, sizeof ev->name, "%s", o.name);
        if (set_rv(t, o.rv) != 0) {
            k8s_obj_free(&o);
            snprintf(err, errlen, "out of memory");
            break;
        }
        if (ev->type == K8S_EV_DELETED) {
            table_remove(t, o.name);
            k8s_obj_free(&o);
        } else if (table_put(t, &o) != 0) {
            snprintf(err, errlen, "out of memory");
            break;
        }
        rc = 0;
        break;
    }
out:
    json_object_put(root);
    return rc;
}

void k8s_status_message(const char *body, size_t len, char *out, size_t outlen)
{
    char err[64];
    json_object *root = len > 0 && len < 1024 * 1024 ? parse_json(body, len, err, sizeof err) : NULL;
    const char *msg = string_member(root, "message");
    size_t o = 0;

    if (outlen == 0)
        return;
    if (msg != NULL) {
        snprintf(out, outlen, "%s", msg);
    } else {
        for (size_t i = 0; i < len && i < 200 && o + 1 < outlen; i++)
            out[o++] = (unsigned char)body[i] >= 0x20 && body[i] != 0x7f ? body[i] : ' ';
        out[o] = '\0';
        if (o == 0)
            snprintf(out, outlen, "(empty)");
    }
    json_object_put(root);
}

/* ---- the rules ---- */

int k8s_pod_serving(const struct k8s_obj *pod, const struct k8s_selector *sel, const char **why)
{
    const char *reason = NULL;

    if (pod->deleting)
        reason = "terminating (deletionTimestamp set)";
    else if (!k8s_selector_match(sel, pod->labels, pod->nlabels))
        reason = "its labels no longer match the selector";
    else if (pod->phase == NULL || strcmp(pod->phase, "Running") != 0)
        reason = "not Running";
    else if (pod->pod_ip == NULL)
        reason = "no pod IP (evicted?)";
    else if (!pod->ready)
        reason = "not Ready";
    if (why != NULL)
        *why = reason;
    return reason == NULL;
}

int k8s_service_serving(const struct k8s_obj *svc, const struct k8s_selector *sel,
                        const struct k8s_table *slices, const char **why)
{
    const char *reason = "no ready endpoint";

    if (!k8s_selector_match(sel, svc->labels, svc->nlabels))
        reason = "its labels no longer match the selector";
    else
        for (size_t i = 0; i < slices->n; i++)
            if (slices->objs[i].service != NULL &&
                strcmp(slices->objs[i].service, svc->name) == 0 &&
                slices->objs[i].ready_endpoints > 0)
                reason = NULL;
    if (why != NULL)
        *why = reason;
    return reason == NULL;
}
