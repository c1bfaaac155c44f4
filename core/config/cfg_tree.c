/*
 * cfg_tree: libyaml events into struct cfg_node trees that remember the line
 * of every node and map key, so config errors can say file:line.
 */
#define _POSIX_C_SOURCE 200809L /* strdup, strndup, gmtime_r */
#include "cfg_tree.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>
#include <switchyard/plugin.h> /* SY_PRINTF */

/* Deeper nesting than this is no config but an attack on the stack. */
#define CFG_MAX_DEPTH 64
/* A config file larger than this is a mistake (or /dev/zero). */
#define CFG_MAX_FILE ((size_t)64 * 1024 * 1024)

struct parse_ctx {
    yaml_parser_t parser;
    const char *file;
    char *err;
    size_t errlen;
};

static int perr(struct parse_ctx *c, int line, const char *fmt, ...)
    SY_PRINTF(3, 4);

static int perr(struct parse_ctx *c, int line, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(c->err, c->errlen, "%s:%d: ", c->file, line);
    if (n < 0 || (size_t)n >= c->errlen)
        return -1;
    va_start(ap, fmt);
    vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

/* Next event, turning a libyaml failure into "file:line: problem". */
static int next_event(struct parse_ctx *c, yaml_event_t *ev)
{
    if (yaml_parser_parse(&c->parser, ev))
        return 0;
    const yaml_parser_t *p = &c->parser;
    int line = (int)p->problem_mark.line + 1;
    if (p->error == YAML_MEMORY_ERROR)
        return perr(c, line, "out of memory");
    if (p->context)
        return perr(c, line, "%s %s", p->problem ? p->problem : "syntax error",
                    p->context);
    return perr(c, line, "%s", p->problem ? p->problem : "syntax error");
}

static struct cfg_node *node_alloc(enum cfg_kind kind, const char *file,
                                   int line, size_t extra)
{
    struct cfg_node *n = calloc(1, sizeof *n + extra);
    if (!n)
        return NULL;
    n->kind = kind;
    n->file = file;
    n->line = line;
    return n;
}

struct cfg_node *cfg_node_new(enum cfg_kind kind, const char *file, int line)
{
    struct cfg_node *n = node_alloc(kind, file, line, 0);
    if (n && kind == CFG_SCALAR && !(n->scalar = strdup(""))) {
        free(n);
        return NULL;
    }
    return n;
}

struct cfg_node *cfg_node_new_scalar(const char *text, const char *file,
                                     int line)
{
    struct cfg_node *n = node_alloc(CFG_SCALAR, file, line, 0);
    if (n && !(n->scalar = strdup(text ? text : ""))) {
        free(n);
        return NULL;
    }
    return n;
}

void cfg_tree_free(struct cfg_node *root)
{
    if (!root)
        return;
    for (size_t i = 0; i < root->n; i++) {
        if (root->keys)
            free(root->keys[i]);
        cfg_tree_free(root->vals[i]);
    }
    free(root->keys);
    free(root->key_lines);
    free(root->vals);
    free(root->scalar);
    /* A parsed root carries its file name in the same allocation. */
    free(root);
}

/* Grow a map or list by one slot; the caller fills slot n and bumps n. */
static int grow(struct cfg_node *node)
{
    size_t n = node->n + 1;
    struct cfg_node **vals = realloc(node->vals, n * sizeof *vals);
    if (!vals)
        return -1;
    node->vals = vals;
    if (node->kind != CFG_MAP)
        return 0;
    char **keys = realloc(node->keys, n * sizeof *keys);
    if (!keys)
        return -1;
    node->keys = keys;
    int *lines = realloc(node->key_lines, n * sizeof *lines);
    if (!lines)
        return -1;
    node->key_lines = lines;
    return 0;
}

static int map_append(struct cfg_node *map, char *key, int key_line,
                      struct cfg_node *val)
{
    if (grow(map) < 0)
        return -1;
    map->keys[map->n] = key;
    map->key_lines[map->n] = key_line;
    map->vals[map->n] = val;
    map->n++;
    return 0;
}

int cfg_map_set(struct cfg_node *map, const char *key, struct cfg_node *val)
{
    char *k = NULL;
    if (!map || map->kind != CFG_MAP || !key || !val)
        goto fail;
    for (size_t i = 0; i < map->n; i++) {
        if (strcmp(map->keys[i], key) == 0) {
            cfg_tree_free(map->vals[i]);
            map->vals[i] = val;
            map->key_lines[i] = val->line;
            return 0;
        }
    }
    if (!(k = strdup(key)) || map_append(map, k, val->line, val) < 0)
        goto fail;
    return 0;
fail:
    free(k);
    cfg_tree_free(val);
    return -1;
}

int cfg_list_append(struct cfg_node *list, struct cfg_node *item)
{
    if (!list || list->kind != CFG_LIST || !item || grow(list) < 0) {
        cfg_tree_free(item);
        return -1;
    }
    list->vals[list->n++] = item;
    return 0;
}

const struct cfg_node *cfg_map_get(const struct cfg_node *map, const char *key)
{
    if (!map || map->kind != CFG_MAP || !key)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->keys[i], key) == 0)
            return map->vals[i];
    return NULL;
}

int cfg_map_key_line(const struct cfg_node *map, const char *key)
{
    if (!map)
        return 0;
    if (map->kind == CFG_MAP && key)
        for (size_t i = 0; i < map->n; i++)
            if (strcmp(map->keys[i], key) == 0)
                return map->key_lines[i];
    return map->line;
}

const struct cfg_node *cfg_empty_map(void)
{
    /* No file: host_api's config_where then says "config". */
    static const struct cfg_node empty = {.kind = CFG_MAP};
    return &empty;
}

/* ---- parsing ---- */

static int parse_node(struct parse_ctx *c, yaml_event_t *ev, const char *file,
                      int depth, struct cfg_node **out);

static int reject_anchor(struct parse_ctx *c, const yaml_char_t *anchor,
                         int line)
{
    if (!anchor)
        return 0;
    return perr(c, line, "anchors and aliases (&%s) are not supported",
                (const char *)anchor);
}

/* YAML's plain null spellings; "key:" gives an empty plain scalar too. */
static int is_plain_null(const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    return !*v || !strcmp(v, "~") || !strcmp(v, "null") ||
           !strcmp(v, "Null") || !strcmp(v, "NULL");
}

static int scalar_text(struct parse_ctx *c, const yaml_event_t *ev, int line,
                       char **out)
{
    size_t len = ev->data.scalar.length;
    const char *v = (const char *)ev->data.scalar.value;
    /* Embedded NULs would silently cut the text short everywhere else. */
    if (memchr(v, '\0', len))
        return perr(c, line, "NUL character in a string");
    if (!(*out = strdup(v)))
        return perr(c, line, "out of memory");
    return 0;
}

/* Entries of a mapping whose MAPPING_START was consumed, until its end. */
static int parse_map_body(struct parse_ctx *c, struct cfg_node *map, int depth)
{
    yaml_event_t ev;
    for (;;) {
        char *key = NULL;
        struct cfg_node *val = NULL;
        if (next_event(c, &ev) < 0)
            return -1;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        int line = (int)ev.start_mark.line + 1;
        if (ev.type == YAML_ALIAS_EVENT) {
            yaml_event_delete(&ev);
            return perr(c, line, "anchors and aliases are not supported");
        }
        if (ev.type != YAML_SCALAR_EVENT) {
            yaml_event_delete(&ev);
            return perr(c, line, "a map key must be a plain string");
        }
        int rc = reject_anchor(c, ev.data.scalar.anchor, line);
        if (rc == 0)
            rc = scalar_text(c, &ev, line, &key);
        yaml_event_delete(&ev);
        if (rc < 0)
            return -1;
        for (size_t i = 0; i < map->n; i++) {
            if (strcmp(map->keys[i], key) == 0) {
                rc = perr(c, line, "duplicate key '%s' (first at line %d)",
                          key, map->key_lines[i]);
                free(key);
                return rc;
            }
        }
        if (next_event(c, &ev) < 0 ||
            parse_node(c, &ev, map->file, depth + 1, &val) < 0) {
            free(key);
            return -1;
        }
        if (map_append(map, key, line, val) < 0) {
            free(key);
            cfg_tree_free(val);
            return perr(c, line, "out of memory");
        }
    }
}

static int parse_list_body(struct parse_ctx *c, struct cfg_node *list,
                           int depth)
{
    yaml_event_t ev;
    for (;;) {
        struct cfg_node *item = NULL;
        if (next_event(c, &ev) < 0)
            return -1;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        int line = (int)ev.start_mark.line + 1;
        if (parse_node(c, &ev, list->file, depth + 1, &item) < 0)
            return -1;
        if (grow(list) < 0) {
            cfg_tree_free(item);
            return perr(c, line, "out of memory");
        }
        list->vals[list->n++] = item;
    }
}

/* One node starting at *ev (which this consumes). */
static int parse_node(struct parse_ctx *c, yaml_event_t *ev, const char *file,
                      int depth, struct cfg_node **out)
{
    int line = (int)ev->start_mark.line + 1;
    int rc = -1;
    struct cfg_node *n = NULL;

    if (depth > CFG_MAX_DEPTH) {
        rc = perr(c, line, "nested deeper than %d levels", CFG_MAX_DEPTH);
        goto out;
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        if (reject_anchor(c, ev->data.scalar.anchor, line) < 0)
            goto out;
        if (!(n = node_alloc(CFG_SCALAR, file, line, 0))) {
            rc = perr(c, line, "out of memory");
            goto out;
        }
        if (is_plain_null(ev))
            rc = (n->scalar = strdup("")) ? 0 : perr(c, line, "out of memory");
        else
            rc = scalar_text(c, ev, line, &n->scalar);
        break;
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT: {
        int is_map = ev->type == YAML_MAPPING_START_EVENT;
        const yaml_char_t *anchor = is_map ? ev->data.mapping_start.anchor
                                           : ev->data.sequence_start.anchor;
        if (reject_anchor(c, anchor, line) < 0)
            goto out;
        if (!(n = node_alloc(is_map ? CFG_MAP : CFG_LIST, file, line, 0))) {
            rc = perr(c, line, "out of memory");
            goto out;
        }
        /* The body reads further events; free ours first. */
        yaml_event_delete(ev);
        rc = is_map ? parse_map_body(c, n, depth) : parse_list_body(c, n, depth);
        if (rc < 0)
            cfg_tree_free(n);
        else
            *out = n;
        return rc;
    }
    case YAML_ALIAS_EVENT:
        rc = perr(c, line, "anchors and aliases (*%s) are not supported",
                  (const char *)ev->data.alias.anchor);
        break;
    default:
        rc = perr(c, line, "unexpected YAML event");
        break;
    }
out:
    yaml_event_delete(ev);
    if (rc < 0)
        cfg_tree_free(n);
    else
        *out = n;
    return rc;
}

/* The document: a top-level map read into root, or nothing (an empty file,
 * or only comments) which is an empty map. */
static int parse_stream(struct parse_ctx *c, struct cfg_node *root)
{
    yaml_event_t ev;
    int docs = 0;
    for (;;) {
        if (next_event(c, &ev) < 0)
            return -1;
        int line = (int)ev.start_mark.line + 1;
        switch (ev.type) {
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_END_EVENT:
            yaml_event_delete(&ev);
            break;
        case YAML_STREAM_END_EVENT:
            yaml_event_delete(&ev);
            return 0;
        case YAML_DOCUMENT_START_EVENT:
            yaml_event_delete(&ev);
            if (++docs > 1)
                return perr(c, line, "only one YAML document is allowed");
            break;
        case YAML_MAPPING_START_EVENT:
            if (reject_anchor(c, ev.data.mapping_start.anchor, line) < 0) {
                yaml_event_delete(&ev);
                return -1;
            }
            yaml_event_delete(&ev);
            root->line = line;
            if (parse_map_body(c, root, 0) < 0)
                return -1;
            break;
        case YAML_SCALAR_EVENT:
            if (is_plain_null(&ev) && !ev.data.scalar.anchor) {
                yaml_event_delete(&ev);
                break; /* an empty document */
            }
            yaml_event_delete(&ev);
            return perr(c, line, "the top level must be a map of settings");
        default:
            yaml_event_delete(&ev);
            return perr(c, line, "the top level must be a map of settings");
        }
    }
}

int cfg_tree_parse(const char *text, size_t len, const char *name,
                   struct cfg_node **out, char *err, size_t errlen)
{
    struct parse_ctx c = {.err = err, .errlen = errlen};
    struct cfg_node *root = NULL;
    int rc = -1;

    if (!name)
        name = "<string>";
    size_t nlen = strlen(name);
    /* The root owns the file name: it lives right after the struct, so
     * freeing the root frees it, and hand-built trees need no flag. */
    if (!(root = node_alloc(CFG_MAP, NULL, 1, nlen + 1))) {
        snprintf(err, errlen, "%s: out of memory", name);
        return -1;
    }
    memcpy(root + 1, name, nlen + 1);
    root->file = (const char *)(root + 1);
    c.file = root->file;

    if (!yaml_parser_initialize(&c.parser)) {
        snprintf(err, errlen, "%s: out of memory", name);
        goto out;
    }
    yaml_parser_set_input_string(&c.parser, (const unsigned char *)text, len);
    rc = parse_stream(&c, root);
    yaml_parser_delete(&c.parser);
out:
    if (rc < 0)
        cfg_tree_free(root);
    else
        *out = root;
    return rc;
}

int cfg_tree_load_file(const char *path, struct cfg_node **out, char *err,
                       size_t errlen)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = -1;
    FILE *f = fopen(path, "rb");

    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    for (;;) {
        if (len == cap) {
            if (cap >= CFG_MAX_FILE) {
                snprintf(err, errlen, "%s: larger than %zu MiB, not a config",
                         path, CFG_MAX_FILE >> 20);
                goto out;
            }
            size_t ncap = cap ? cap * 2 : 8192;
            char *nbuf = realloc(buf, ncap);
            if (!nbuf) {
                snprintf(err, errlen, "%s: out of memory", path);
                goto out;
            }
            buf = nbuf;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) {
                snprintf(err, errlen, "%s: cannot read: %s", path,
                         strerror(errno));
                goto out;
            }
            break;
        }
    }
    rc = cfg_tree_parse(buf ? buf : "", len, path, out, err, errlen);
out:
    free(buf);
    fclose(f);
    return rc;
}

/* ---- value helpers ---- */

/* A decimal number with an optional fraction, no sign, no exponent: strtod
 * alone would take "0x10", "inf" and "-1". Returns the length read. */
static size_t scan_decimal(const char *s, double *out)
{
    size_t i = 0, digits = 0;
    while (s[i] >= '0' && s[i] <= '9')
        i++, digits++;
    if (s[i] == '.') {
        i++;
        while (s[i] >= '0' && s[i] <= '9')
            i++, digits++;
    }
    if (!digits)
        return 0;
    char tmp[64];
    if (i >= sizeof tmp)
        return 0;
    memcpy(tmp, s, i);
    tmp[i] = '\0';
    errno = 0;
    double v = strtod(tmp, NULL);
    if (errno == ERANGE || !isfinite(v))
        return 0;
    *out = v;
    return i;
}

int cfg_parse_seconds(const char *text, double *out)
{
    static const struct { const char *unit; double mult; } units[] = {
        {"", 1}, {"ms", 0.001}, {"s", 1}, {"m", 60}, {"h", 3600},
    };
    double v;
    if (!text)
        return -1;
    size_t n = scan_decimal(text, &v);
    if (!n)
        return -1;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(text + n, units[i].unit) == 0) {
            *out = v * units[i].mult;
            return 0;
        }
    }
    return -1;
}

int cfg_parse_bytes(const char *text, size_t *out)
{
    /* Single letters follow nginx (1k = 1024); KB/MB/GB are SI, KiB/Ki are
     * binary, as the units say. */
    static const struct { const char *unit; unsigned long long mult; } units[] = {
        {"", 1}, {"b", 1},
        {"k", 1ULL << 10}, {"m", 1ULL << 20}, {"g", 1ULL << 30},
        {"ki", 1ULL << 10}, {"mi", 1ULL << 20}, {"gi", 1ULL << 30},
        {"kib", 1ULL << 10}, {"mib", 1ULL << 20}, {"gib", 1ULL << 30},
        {"tib", 1ULL << 40},
        {"kb", 1000ULL}, {"mb", 1000ULL * 1000}, {"gb", 1000ULL * 1000 * 1000},
        {"tb", 1000ULL * 1000 * 1000 * 1000},
    };
    double v;
    if (!text)
        return -1;
    size_t n = scan_decimal(text, &v);
    if (!n)
        return -1;
    const char *unit = text + n;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcasecmp(unit, units[i].unit) != 0)
            continue;
        unsigned long long mult = units[i].mult;
        if (!memchr(text, '.', n)) {
            /* Integers stay exact: no detour through double. */
            errno = 0;
            unsigned long long base = strtoull(text, NULL, 10);
            if (errno == ERANGE || base > SIZE_MAX / mult)
                return -1;
            *out = (size_t)(base * mult);
            return 0;
        }
        /* "1.5" bytes means nothing; "1.5KiB" is 1536 (rounded down). */
        double bytes = v * (double)mult;
        if (mult == 1 || bytes >= (double)SIZE_MAX)
            return -1;
        *out = (size_t)bytes;
        return 0;
    }
    return -1;
}

int cfg_parse_bool(const char *text, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    if (!text)
        return -1;
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

struct cfg_node *cfg_node_clone(const struct cfg_node *n)
{
    struct cfg_node *c = n->kind == CFG_SCALAR
        ? cfg_node_new_scalar(n->scalar, n->file, n->line)
        : cfg_node_new(n->kind, n->file, n->line);
    for (size_t i = 0; c && i < n->n; i++) {
        struct cfg_node *child = cfg_node_clone(n->vals[i]);
        int rc = n->kind == CFG_MAP ? cfg_map_set(c, n->keys[i], child)
                                    : cfg_list_append(c, child);
        if (rc < 0) {
            cfg_tree_free(c);
            return NULL;
        }
        if (n->kind == CFG_MAP)
            c->key_lines[c->n - 1] = n->key_lines[i];
    }
    return c;
}
