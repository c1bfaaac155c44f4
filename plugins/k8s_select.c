/*
 * k8s_select.c - Kubernetes label selectors, as the API server reads them
 * (apimachinery's labels.Parse): requirements joined by commas, each one of
 *   key  !key  key=value  key==value  key!=value  key in (v1,v2)  key notin (v1)
 * The plugin sends the selector to the API server and checks it itself
 * too: a pod relabelled out of the selector may still come as MODIFIED.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s_lib.h"

/* ASCII only, whatever the locale. */
static int is_alnum(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

struct lexer {
    const char *s;
    size_t i;
};

static void skip_ws(struct lexer *lx)
{
    while (lx->s[lx->i] == ' ' || lx->s[lx->i] == '\t')
        lx->i++;
}

/* Bytes a key or value may hold; the checks below are stricter. */
static int word_char(int c)
{
    return is_alnum(c) || c == '-' || c == '_' || c == '.' || c == '/';
}

static char *word(struct lexer *lx)
{
    size_t start = lx->i;
    char *w;

    while (lx->s[lx->i] != '\0' && word_char((unsigned char)lx->s[lx->i]))
        lx->i++;
    w = malloc(lx->i - start + 1);
    if (w != NULL) {
        memcpy(w, lx->s + start, lx->i - start);
        w[lx->i - start] = '\0';
    }
    return w;
}

/* A label name or value: at most 63 bytes of [A-Za-z0-9._-], starting and
 * ending with an alphanumeric (a value may also be empty). */
static int name_ok(const char *s, size_t n, int may_be_empty)
{
    if (n == 0)
        return may_be_empty;
    if (n > 63 || !is_alnum((unsigned char)s[0]) || !is_alnum((unsigned char)s[n - 1]))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return 0;
    return 1;
}

/* A key: [prefix/]name, the prefix a DNS subdomain of at most 253 bytes. */
static int key_ok(const char *k)
{
    const char *slash = strchr(k, '/');

    if (slash == NULL)
        return name_ok(k, strlen(k), 0);
    if (strchr(slash + 1, '/') != NULL)
        return 0;
    size_t plen = (size_t)(slash - k);
    if (plen == 0 || plen > 253 || !is_alnum((unsigned char)k[0]) ||
        !is_alnum((unsigned char)k[plen - 1]))
        return 0;
    for (size_t i = 0; i < plen; i++)
        if (!(k[i] >= 'a' && k[i] <= 'z') && !(k[i] >= '0' && k[i] <= '9') && k[i] != '-' &&
            k[i] != '.')
            return 0;
    return name_ok(slash + 1, strlen(slash + 1), 0);
}

static void req_free(struct k8s_requirement *r)
{
    free(r->key);
    for (size_t i = 0; i < r->nvalues; i++)
        free(r->values[i]);
    free(r->values);
}

void k8s_selector_free(struct k8s_selector *s)
{
    for (size_t i = 0; i < s->n; i++)
        req_free(&s->reqs[i]);
    free(s->reqs);
    s->reqs = NULL;
    s->n = 0;
}

static int add_value(struct k8s_requirement *r, char *v)
{
    char **nv = realloc(r->values, (r->nvalues + 1) * sizeof *nv);

    if (nv == NULL) {
        free(v);
        return -1;
    }
    r->values = nv;
    r->values[r->nvalues++] = v;
    return 0;
}

#define FAIL(...)                                                              \
    do {                                                                       \
        snprintf(err, errlen, __VA_ARGS__);                                    \
        goto fail;                                                             \
    } while (0)

/* One requirement at lx; 0 or -1 with err. */
static int parse_req(struct lexer *lx, struct k8s_requirement *r, const char *text, char *err,
                     size_t errlen)
{
    int negated = 0;
    char *v = NULL;

    memset(r, 0, sizeof *r);
    skip_ws(lx);
    if (lx->s[lx->i] == '!') {
        negated = 1;
        lx->i++;
        skip_ws(lx);
    }
    if ((r->key = word(lx)) == NULL)
        FAIL("out of memory");
    if (r->key[0] == '\0')
        FAIL("label selector '%s': expected a label key at offset %zu", text, lx->i);
    if (!key_ok(r->key))
        FAIL("label selector '%s': '%s' is not a valid label key", text, r->key);
    skip_ws(lx);
    char c = lx->s[lx->i];
    if (negated) {
        r->op = K8S_OP_NOT_EXISTS;
        return 0;
    }
    if (c == '\0' || c == ',') {
        r->op = K8S_OP_EXISTS;
        return 0;
    }
    if (c == '=' || (c == '!' && lx->s[lx->i + 1] == '=')) {
        r->op = c == '=' ? K8S_OP_IN : K8S_OP_NOT_IN;
        lx->i += c == '!' || lx->s[lx->i + 1] == '=' ? 2 : 1;
        skip_ws(lx);
        if ((v = word(lx)) == NULL)
            FAIL("out of memory");
        if (!name_ok(v, strlen(v), 1))
            FAIL("label selector '%s': '%s' is not a valid label value", text, v);
        if (add_value(r, v) != 0) {
            v = NULL;
            FAIL("out of memory");
        }
        return 0;
    }
    if (word_char((unsigned char)c)) {
        if ((v = word(lx)) == NULL)
            FAIL("out of memory");
        if (strcmp(v, "in") != 0 && strcmp(v, "notin") != 0)
            FAIL("label selector '%s': unexpected '%s' after '%s' (expected =, ==, !=, in, "
                 "notin, or ',')", text, v, r->key);
        r->op = strcmp(v, "in") == 0 ? K8S_OP_IN : K8S_OP_NOT_IN;
        free(v);
        v = NULL;
        skip_ws(lx);
        if (lx->s[lx->i] != '(')
            FAIL("label selector '%s': expected '(' after '%s %s'", text, r->key,
                 r->op == K8S_OP_IN ? "in" : "notin");
        lx->i++;
        for (;;) {
            skip_ws(lx);
            if ((v = word(lx)) == NULL)
                FAIL("out of memory");
            if (!name_ok(v, strlen(v), 1))
                FAIL("label selector '%s': '%s' is not a valid label value", text, v);
            if (add_value(r, v) != 0) {
                v = NULL;
                FAIL("out of memory");
            }
            v = NULL;
            skip_ws(lx);
            if (lx->s[lx->i] == ',') {
                lx->i++;
                continue;
            }
            if (lx->s[lx->i] == ')') {
                lx->i++;
                break;
            }
            FAIL("label selector '%s': expected ',' or ')' in the values of '%s'", text, r->key);
        }
        /* "a in ()" parses as one empty value; the API server refuses it */
        if (r->nvalues == 1 && r->values[0][0] == '\0')
            FAIL("label selector '%s': '%s' needs at least one value", text, r->key);
        return 0;
    }
    FAIL("label selector '%s': unexpected '%c' after '%s' (expected =, ==, !=, in, notin, "
         "or ',')", text, c, r->key);
fail:
    free(v);
    req_free(r);
    memset(r, 0, sizeof *r);
    return -1;
}

int k8s_selector_parse(const char *text, struct k8s_selector *out, char *err, size_t errlen)
{
    struct lexer lx = { text, 0 };

    memset(out, 0, sizeof *out);
    skip_ws(&lx);
    if (text[lx.i] == '\0')
        return 0; /* matches everything */
    for (;;) {
        struct k8s_requirement r, *nr;
        if (parse_req(&lx, &r, text, err, errlen) != 0)
            goto fail;
        nr = realloc(out->reqs, (out->n + 1) * sizeof *nr);
        if (nr == NULL) {
            req_free(&r);
            FAIL("out of memory");
        }
        out->reqs = nr;
        out->reqs[out->n++] = r;
        skip_ws(&lx);
        if (text[lx.i] == '\0')
            return 0;
        if (text[lx.i] != ',')
            FAIL("label selector '%s': unexpected '%c' at offset %zu", text, text[lx.i], lx.i);
        lx.i++;
    }
fail:
    k8s_selector_free(out);
    return -1;
}

int k8s_selector_match(const struct k8s_selector *s, const struct k8s_label *labels,
                       size_t nlabels)
{
    for (size_t i = 0; i < s->n; i++) {
        const struct k8s_requirement *r = &s->reqs[i];
        const char *value = NULL;
        int in = 0;

        for (size_t j = 0; j < nlabels && value == NULL; j++)
            if (strcmp(labels[j].key, r->key) == 0)
                value = labels[j].value;
        for (size_t j = 0; value != NULL && j < r->nvalues && !in; j++)
            in = strcmp(value, r->values[j]) == 0;
        switch (r->op) {
        case K8S_OP_EXISTS:
            if (value == NULL)
                return 0;
            break;
        case K8S_OP_NOT_EXISTS:
            if (value != NULL)
                return 0;
            break;
        case K8S_OP_IN:
            if (!in)
                return 0;
            break;
        default: /* K8S_OP_NOT_IN: a pod without the label passes too */
            if (in)
                return 0;
            break;
        }
    }
    return 1;
}

char *k8s_url_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = malloc(strlen(s) * 3 + 1), *o = out;

    if (out == NULL)
        return NULL;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}
