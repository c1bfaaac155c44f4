/*
 * k8s_kubeconfig.c - the kubeconfig fields the k8s plugin uses, read with
 * libyaml: the context (current-context, or one named in the plugin's
 * config), its cluster (server, certificate-authority[-data],
 * insecure-skip-tls-verify) and its user (token, tokenFile,
 * client-certificate[-data], client-key[-data]).  Credentials this plugin
 * cannot use (exec plugins, auth-provider, basic auth) are an error that
 * says so, rather than requests that fail later for no visible reason.
 *
 * The YAML becomes a small tree first (maps, lists, scalars), so the
 * fields can be looked up in any order.  Only the first document counts,
 * as in kubectl; anchors and aliases are refused (kubeconfigs written by
 * tools never have them, and a tree without them cannot blow up).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "k8s_lib.h"

#define MAX_DEPTH 64
#define MAX_NODES 200000

enum { Y_SCALAR, Y_MAP, Y_SEQ };

struct ynode {
    int type;
    char *text; /* Y_SCALAR: the value; NULL for an empty or null plain one */
    size_t len;
    int has_nul;
    struct ynode **items; /* Y_MAP: values; Y_SEQ: items */
    char **keys;          /* Y_MAP: keys (NULL for a non-text key) */
    size_t n;
    size_t line;
};

struct ybuild {
    yaml_parser_t parser;
    size_t nodes;
    char *err;
    size_t errlen;
};

static void ynode_free(struct ynode *y)
{
    if (y == NULL)
        return;
    for (size_t i = 0; i < y->n; i++) {
        ynode_free(y->items[i]);
        if (y->keys)
            free(y->keys[i]);
    }
    free(y->items);
    free(y->keys);
    free(y->text);
    free(y);
}

static int next_event(struct ybuild *b, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&b->parser, ev)) {
        snprintf(b->err, b->errlen, "line %zu: %s", b->parser.problem_mark.line + 1,
                 b->parser.problem ? b->parser.problem : "YAML syntax error");
        return -1;
    }
    return 0;
}

static struct ynode *build(struct ybuild *b, yaml_event_t *ev, int depth);

/* Append a child (and key, for maps) to y; takes both on success and
 * failure. */
static int push(struct ybuild *b, struct ynode *y, char *key, struct ynode *child)
{
    struct ynode **items = realloc(y->items, (y->n + 1) * sizeof *items);
    if (items != NULL)
        y->items = items;
    if (items != NULL && y->type == Y_MAP) {
        char **keys = realloc(y->keys, (y->n + 1) * sizeof *keys);
        if (keys == NULL)
            items = NULL;
        else
            y->keys = keys;
    }
    if (items == NULL) {
        snprintf(b->err, b->errlen, "out of memory");
        free(key);
        ynode_free(child);
        return -1;
    }
    y->items[y->n] = child;
    if (y->type == Y_MAP)
        y->keys[y->n] = key;
    y->n++;
    return 0;
}

/* The node whose first event is *ev (which this consumes). */
static struct ynode *build(struct ybuild *b, yaml_event_t *ev, int depth)
{
    struct ynode *y = NULL;
    size_t line = ev->start_mark.line + 1;

    if (depth > MAX_DEPTH || ++b->nodes > MAX_NODES) {
        snprintf(b->err, b->errlen, "line %zu: nested too deep or too large", line);
        yaml_event_delete(ev);
        return NULL;
    }
    y = calloc(1, sizeof *y);
    if (y == NULL) {
        snprintf(b->err, b->errlen, "out of memory");
        yaml_event_delete(ev);
        return NULL;
    }
    y->line = line;
    switch (ev->type) {
    case YAML_SCALAR_EVENT: {
        const char *v = (const char *)ev->data.scalar.value;
        size_t n = ev->data.scalar.length;
        int plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        y->type = Y_SCALAR;
        if (!(plain && (n == 0 || (n == 1 && v[0] == '~') ||
                        (n == 4 && (memcmp(v, "null", 4) == 0 || memcmp(v, "Null", 4) == 0 ||
                                    memcmp(v, "NULL", 4) == 0))))) {
            y->text = malloc(n + 1);
            if (y->text == NULL) {
                snprintf(b->err, b->errlen, "out of memory");
                goto fail;
            }
            memcpy(y->text, v, n);
            y->text[n] = '\0';
            y->len = n;
            y->has_nul = memchr(v, '\0', n) != NULL;
        }
        yaml_event_delete(ev);
        return y;
    }
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT: {
        int map = ev->type == YAML_MAPPING_START_EVENT;
        yaml_event_type_t end = map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;
        y->type = map ? Y_MAP : Y_SEQ;
        yaml_event_delete(ev);
        for (;;) {
            yaml_event_t e;
            char *key = NULL;
            struct ynode *child;
            if (next_event(b, &e) != 0)
                goto fail;
            if (e.type == end) {
                yaml_event_delete(&e);
                return y;
            }
            if (map) {
                /* a key that is not text can name no field we read */
                struct ynode *k = build(b, &e, depth + 1);
                if (k == NULL)
                    goto fail;
                if (k->type == Y_SCALAR && k->text != NULL && !k->has_nul) {
                    key = k->text;
                    k->text = NULL;
                }
                ynode_free(k);
                if (next_event(b, &e) != 0) {
                    free(key);
                    goto fail;
                }
            }
            child = build(b, &e, depth + 1);
            if (child == NULL) {
                free(key);
                goto fail;
            }
            if (push(b, y, key, child) != 0)
                goto fail;
        }
    }
    case YAML_ALIAS_EVENT:
        snprintf(b->err, b->errlen, "line %zu: YAML aliases are not supported in a kubeconfig",
                 line);
        break;
    default:
        snprintf(b->err, b->errlen, "line %zu: unexpected YAML event", line);
        break;
    }
    yaml_event_delete(ev);
fail:
    ynode_free(y);
    return NULL;
}

/* The first document's root, or NULL with *empty set when there is none. */
static struct ynode *parse_tree(const char *text, size_t len, int *empty, char *err, size_t errlen)
{
    struct ybuild b = { .err = err, .errlen = errlen };
    struct ynode *root = NULL;
    yaml_event_t ev;

    *empty = 0;
    if (!yaml_parser_initialize(&b.parser)) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&b.parser, (const unsigned char *)text, len);
    for (;;) {
        if (next_event(&b, &ev) != 0)
            break;
        if (ev.type == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            *empty = 1;
            break;
        }
        if (ev.type == YAML_STREAM_START_EVENT || ev.type == YAML_DOCUMENT_START_EVENT) {
            yaml_event_delete(&ev);
            continue;
        }
        root = build(&b, &ev, 0);
        break;
    }
    yaml_parser_delete(&b.parser);
    return root;
}

static const struct ynode *get(const struct ynode *map, const char *key)
{
    if (map == NULL || map->type != Y_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (map->keys[i] != NULL && strcmp(map->keys[i], key) == 0)
            return map->items[i];
    return NULL;
}

/* A text field: SY-style 0 with *out (NULL when absent or null), or -1. */
static int text_field(const struct ynode *map, const char *key, const char *where,
                      const char **out, char *err, size_t errlen)
{
    const struct ynode *v = get(map, key);

    *out = NULL;
    if (v == NULL)
        return 0;
    if (v->type != Y_SCALAR) {
        snprintf(err, errlen, "line %zu: %s: '%s' must be text", v->line, where, key);
        return -1;
    }
    if (v->has_nul) {
        snprintf(err, errlen, "line %zu: %s: '%s' holds a NUL byte", v->line, where, key);
        return -1;
    }
    *out = v->text;
    return 0;
}

/* The entry of a list of {name: N, KIND: {...}} whose name is `name`: its
 * KIND map (an empty one is NULL), or *found 0. */
static int named(const struct ynode *root, const char *list, const char *kind,
                 const char *name, const struct ynode **out, int *found, char *err, size_t errlen)
{
    const struct ynode *l = get(root, list);

    *out = NULL;
    *found = 0;
    if (l == NULL)
        return 0;
    if (l->type != Y_SEQ) {
        snprintf(err, errlen, "line %zu: '%s' must be a list", l->line, list);
        return -1;
    }
    for (size_t i = 0; i < l->n; i++) {
        const struct ynode *e = l->items[i], *n = get(e, "name");
        if (e->type != Y_MAP) {
            snprintf(err, errlen, "line %zu: the items of '%s' must be maps", e->line, list);
            return -1;
        }
        if (n != NULL && n->type == Y_SCALAR && n->text != NULL && !n->has_nul &&
            strcmp(n->text, name) == 0) {
            const struct ynode *k = get(e, kind);
            if (k != NULL && k->type != Y_MAP && !(k->type == Y_SCALAR && k->text == NULL)) {
                snprintf(err, errlen, "line %zu: %s '%s': '%s' must be a map", k->line, kind,
                         name, kind);
                return -1;
            }
            *out = k != NULL && k->type == Y_MAP ? k : NULL;
            *found = 1;
            return 0; /* the first of a name wins, as in kubectl */
        }
    }
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = { "true", "yes", "on", "y" };
    static const char *const no[] = { "false", "no", "off", "n" };

    if (s == NULL) {
        *out = 0;
        return 0;
    }
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/* A path as kubectl reads it: relative ones from the kubeconfig's dir. */
static char *resolve_path(const char *dir, const char *path)
{
    char *out;
    size_t n;

    if (path[0] == '/' || dir == NULL || dir[0] == '\0')
        return strdup(path);
    n = strlen(dir) + strlen(path) + 2;
    out = malloc(n);
    if (out != NULL)
        snprintf(out, n, "%s/%s", dir, path);
    return out;
}

static const signed char b64[256] = {
    ['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6, ['G'] = 7, ['H'] = 8,
    ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15,
    ['P'] = 16, ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22,
    ['W'] = 23, ['X'] = 24, ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29,
    ['d'] = 30, ['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36,
    ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42, ['q'] = 43,
    ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48, ['w'] = 49, ['x'] = 50,
    ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56, ['4'] = 57,
    ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64,
}; /* value + 1; 0: not base64 */

char *k8s_base64_decode(const char *in, size_t len, size_t *outlen)
{
    char *out = malloc(len / 4 * 3 + 4), *o = out;
    unsigned acc = 0;
    int bits = 0, pad = 0;
    size_t digits = 0;

    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        if (pad > 0 || b64[c] == 0)
            goto bad; /* a digit after padding, or no base64 digit */
        acc = (acc << 6) | (unsigned)(b64[c] - 1);
        bits += 6;
        digits++;
        if (bits >= 8) {
            bits -= 8;
            *o++ = (char)((acc >> bits) & 0xff);
        }
    }
    /* a lone digit in the last group carries no byte; padding, when
     * present, must complete the group */
    if (digits % 4 == 1 || pad > 2 || (pad > 0 && (digits + (size_t)pad) % 4 != 0))
        goto bad;
    *o = '\0';
    *outlen = (size_t)(o - out);
    return out;
bad:
    free(out);
    return NULL;
}

void k8s_kubeconfig_free(struct k8s_kubeconfig *kc)
{
    free(kc->context);
    free(kc->server);
    free(kc->namespace_);
    free(kc->ca_file);
    free(kc->ca_pem);
    free(kc->token);
    free(kc->token_file);
    free(kc->cert_file);
    free(kc->key_file);
    free(kc->cert_pem);
    free(kc->key_pem);
    memset(kc, 0, sizeof *kc);
}

/* The -data form (decoded, must be text) else the file form (resolved). */
static int pem_pair(const struct ynode *map, const char *file_key, const char *data_key,
                    const char *where, const char *dir, char **file_out, char **pem_out,
                    char *err, size_t errlen)
{
    const char *file, *data;
    size_t n;

    if (text_field(map, file_key, where, &file, err, errlen) != 0 ||
        text_field(map, data_key, where, &data, err, errlen) != 0)
        return -1;
    if (data != NULL) {
        *pem_out = k8s_base64_decode(data, strlen(data), &n);
        if (*pem_out == NULL || n == 0 || memchr(*pem_out, '\0', n) != NULL) {
            free(*pem_out);
            *pem_out = NULL;
            snprintf(err, errlen, "line %zu: %s: '%s' is not base64 of a PEM text",
                     get(map, data_key)->line, where, data_key);
            return -1;
        }
    } else if (file != NULL && (*file_out = resolve_path(dir, file)) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static int dup_to(char **dst, const char *s, char *err, size_t errlen)
{
    if (s == NULL)
        return 0;
    if ((*dst = strdup(s)) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int k8s_kubeconfig_parse(const char *text, size_t len, const char *dir, const char *context,
                         struct k8s_kubeconfig *out, char *err, size_t errlen)
{
    const struct ynode *ctx = NULL, *cluster = NULL, *user = NULL;
    const char *cluster_name, *user_name, *ns, *server, *insecure, *token, *token_file;
    char where[300];
    int empty, found;
    struct ynode *root;

    memset(out, 0, sizeof *out);
    root = parse_tree(text, len, &empty, err, errlen);
    if (root == NULL) {
        if (empty)
            snprintf(err, errlen, "the kubeconfig is empty");
        return -1;
    }
    if (root->type != Y_MAP) {
        snprintf(err, errlen, "line %zu: a kubeconfig is a map (apiVersion, clusters, "
                              "users, contexts, current-context)", root->line);
        goto fail;
    }
    if (context == NULL && text_field(root, "current-context", "kubeconfig", &context, err,
                                      errlen) != 0)
        goto fail;
    if (context == NULL || context[0] == '\0') {
        snprintf(err, errlen, "the kubeconfig has no current-context (choose one with "
                              "'kubectl config use-context', or set the plugin's context)");
        goto fail;
    }
    if (named(root, "contexts", "context", context, &ctx, &found, err, errlen) != 0)
        goto fail;
    if (!found) {
        snprintf(err, errlen, "the kubeconfig has no context '%s'", context);
        goto fail;
    }
    snprintf(where, sizeof where, "context '%s'", context);
    if (text_field(ctx, "cluster", where, &cluster_name, err, errlen) != 0 ||
        text_field(ctx, "user", where, &user_name, err, errlen) != 0 ||
        text_field(ctx, "namespace", where, &ns, err, errlen) != 0)
        goto fail;
    if (cluster_name == NULL) {
        snprintf(err, errlen, "context '%s' names no cluster", context);
        goto fail;
    }
    if (named(root, "clusters", "cluster", cluster_name, &cluster, &found, err, errlen) != 0)
        goto fail;
    if (!found) {
        snprintf(err, errlen, "context '%s' names cluster '%s', which the kubeconfig does "
                              "not have", context, cluster_name);
        goto fail;
    }
    if (user_name != NULL) {
        if (named(root, "users", "user", user_name, &user, &found, err, errlen) != 0)
            goto fail;
        if (!found) {
            snprintf(err, errlen, "context '%s' names user '%s', which the kubeconfig does "
                                  "not have", context, user_name);
            goto fail;
        }
    }

    /* the cluster */
    snprintf(where, sizeof where, "cluster '%s'", cluster_name);
    if (text_field(cluster, "server", where, &server, err, errlen) != 0 ||
        text_field(cluster, "insecure-skip-tls-verify", where, &insecure, err, errlen) != 0)
        goto fail;
    if (server == NULL || (strncmp(server, "https://", 8) != 0 &&
                           strncmp(server, "http://", 7) != 0) ||
        strpbrk(server, " \t\r\n") != NULL || server[server[4] == 's' ? 8 : 7] == '\0' ||
        server[server[4] == 's' ? 8 : 7] == '/') {
        snprintf(err, errlen, "cluster '%s': 'server' must be an http:// or https:// URL%s%s",
                 cluster_name, server ? ", not " : "", server ? server : "");
        goto fail;
    }
    if (parse_bool(insecure, &out->insecure) != 0) {
        snprintf(err, errlen, "cluster '%s': insecure-skip-tls-verify must be true or false",
                 cluster_name);
        goto fail;
    }
    if (get(cluster, "tls-server-name") != NULL || get(cluster, "proxy-url") != NULL) {
        snprintf(err, errlen, "cluster '%s': %s is not supported by the k8s plugin",
                 cluster_name, get(cluster, "tls-server-name") ? "tls-server-name" : "proxy-url");
        goto fail;
    }
    if (pem_pair(cluster, "certificate-authority", "certificate-authority-data", where, dir,
                 &out->ca_file, &out->ca_pem, err, errlen) != 0)
        goto fail;
    if (out->insecure && (out->ca_file || out->ca_pem)) {
        /* kubectl refuses it too: which one was meant? */
        snprintf(err, errlen, "cluster '%s': insecure-skip-tls-verify with a "
                              "certificate-authority: choose one", cluster_name);
        goto fail;
    }

    /* the user */
    if (user != NULL) {
        snprintf(where, sizeof where, "user '%s'", user_name);
        static const char *const unsupported[][2] = {
            { "exec", "exec credential plugins" },
            { "auth-provider", "auth-provider credentials" },
            { "username", "basic authentication" },
            { "password", "basic authentication" },
        };
        for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++)
            if (get(user, unsupported[i][0]) != NULL) {
                snprintf(err, errlen, "user '%s' uses %s ('%s'), which the k8s plugin does "
                                      "not support: use a token, tokenFile or a client "
                                      "certificate", user_name, unsupported[i][1],
                         unsupported[i][0]);
                goto fail;
            }
        if (text_field(user, "token", where, &token, err, errlen) != 0 ||
            text_field(user, "tokenFile", where, &token_file, err, errlen) != 0)
            goto fail;
        if (dup_to(&out->token, token, err, errlen) != 0)
            goto fail;
        if (token == NULL && token_file != NULL &&
            (out->token_file = resolve_path(dir, token_file)) == NULL) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        if (pem_pair(user, "client-certificate", "client-certificate-data", where, dir,
                     &out->cert_file, &out->cert_pem, err, errlen) != 0 ||
            pem_pair(user, "client-key", "client-key-data", where, dir, &out->key_file,
                     &out->key_pem, err, errlen) != 0)
            goto fail;
        if ((out->cert_file || out->cert_pem) != (out->key_file || out->key_pem)) {
            snprintf(err, errlen, "user '%s': a client certificate needs its key, and a key "
                                  "its certificate", user_name);
            goto fail;
        }
    }
    if (dup_to(&out->context, context, err, errlen) != 0 ||
        dup_to(&out->server, server, err, errlen) != 0 ||
        dup_to(&out->namespace_, ns, err, errlen) != 0)
        goto fail;
    /* "https://host/" + "/api/v1/..." would be a double slash */
    for (size_t n = strlen(out->server); n > 0 && out->server[n - 1] == '/'; n--)
        out->server[n - 1] = '\0';
    ynode_free(root);
    return 0;
fail:
    ynode_free(root);
    k8s_kubeconfig_free(out);
    return -1;
}
