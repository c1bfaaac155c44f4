/*
 * k8s_models.c - what a backend serves, from its GET /v1/models answer.
 * vLLM lists its base model and every LoRA adapter loaded at the time; an
 * adapter has a "parent" (the base model) and is routable by its own id,
 * so every usable id counts.  Ids the router could not carry in a header
 * or a metric label are skipped, and counted, rather than failing the
 * whole answer: one odd adapter must not take a pod's base model away.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "k8s_lib.h"

int k8s_model_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > 512)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

void k8s_models_free(struct k8s_models *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->ids[i]);
        free(m->parents[i]);
    }
    free(m->ids);
    free(m->parents);
    memset(m, 0, sizeof *m);
}

int k8s_models_equal(const struct k8s_models *a, const struct k8s_models *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->ids[i], b->ids[i]) != 0)
            return 0;
    return 1;
}

static const char *text_of(json_object *o, const char *key, size_t *len)
{
    json_object *v;

    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    *len = (size_t)json_object_get_string_len(v);
    return json_object_get_string(v);
}

int k8s_models_parse(const char *body, size_t len, struct k8s_models *out, char *err,
                     size_t errlen)
{
    struct json_tokener *tok;
    json_object *root = NULL, *data;
    size_t n;

    memset(out, 0, sizeof *out);
    if (len > (size_t)INT32_MAX) {
        snprintf(err, errlen, "answer too long");
        return -1;
    }
    if ((tok = json_tokener_new()) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    root = json_tokener_parse_ex(tok, body, (int)len);
    json_tokener_free(tok);
    if (root == NULL || !json_object_is_type(root, json_type_object) ||
        !json_object_object_get_ex(root, "data", &data) ||
        !json_object_is_type(data, json_type_array)) {
        snprintf(err, errlen, "not a models list ({\"data\":[{\"id\":...}]})");
        goto fail;
    }
    n = json_object_array_length(data);
    out->ids = calloc(n ? n : 1, sizeof *out->ids);
    out->parents = calloc(n ? n : 1, sizeof *out->parents);
    if (out->ids == NULL || out->parents == NULL)
        goto oom;
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(data, i);
        size_t idlen = 0, plen = 0;
        const char *id = e && json_object_is_type(e, json_type_object)
                             ? text_of(e, "id", &idlen) : NULL;
        const char *parent = id ? text_of(e, "parent", &plen) : NULL;
        int dup = 0;

        for (size_t j = 0; id != NULL && j < out->n && !dup; j++)
            dup = strcmp(out->ids[j], id) == 0;
        if (id == NULL || !k8s_model_name_ok(id, idlen) || strlen(id) != idlen || dup ||
            out->n == K8S_MAX_MODELS) {
            out->skipped++;
            continue;
        }
        if ((out->ids[out->n] = strdup(id)) == NULL)
            goto oom;
        if (parent != NULL && strlen(parent) == plen && plen > 0 &&
            (out->parents[out->n] = strdup(parent)) == NULL) {
            free(out->ids[out->n]);
            goto oom;
        }
        out->n++;
    }
    if (out->n == 0) {
        snprintf(err, errlen, "no usable model id in the list%s",
                 out->skipped ? " (some were skipped)" : "");
        goto fail;
    }
    json_object_put(root);
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    json_object_put(root);
    k8s_models_free(out);
    return -1;
}
