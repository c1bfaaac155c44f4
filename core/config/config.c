/*
 * config: the YAML file (through cfg_tree) into struct sy_cfg, and the
 * checks that need the whole picture (config_finish), which run after the
 * command line has been applied.  Every error names where the value came
 * from: "file:line: key: why", or "command line: --flag: why".
 */
#define _POSIX_C_SOURCE 200809L /* strdup, strndup, gmtime_r */
#include "config.h"
#include "plugin_loader.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "settings.h"

const char *const config_model_types[] = {
    "chat", "completion", "embeddings", "rerank", "score",
    "transcription", "vision", "messages", NULL,
};

#define CMDLINE "command line"
#define MAX_WORKERS 256
#define MAX_REROUTE 100
#define MAX_ATTEMPTS 1000
#define MAX_FALLBACK_DEPTH 16 /* dispatch tracks at most 17 models */
#define MAX_WEIGHT 1000
#define MAX_PLUGIN_NAME 100

/* ---- building blocks ---- */

struct sy_cfg *config_new(void)
{
    struct sy_cfg *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return NULL;
    if (!(cfg->source = strdup(CMDLINE)) || settings_defaults(cfg) < 0) {
        config_free(cfg);
        return NULL;
    }
    return cfg;
}

int config_list_add(struct plugin_list *pl, const char *name)
{
    char *copy = strdup(name);
    char **names = copy ? realloc(pl->names, (pl->n + 1) * sizeof *names)
                        : NULL;
    if (!names) {
        free(copy);
        return -1;
    }
    pl->names = names;
    pl->names[pl->n++] = copy;
    return 0;
}

void config_list_clear(struct plugin_list *pl)
{
    for (size_t i = 0; i < pl->n; i++)
        free(pl->names[i]);
    free(pl->names);
    pl->names = NULL;
    pl->n = 0;
    pl->line = 0;
}

static void model_free(struct model_cfg *m)
{
    for (size_t i = 0; i < m->nbackends; i++) {
        free(m->backends[i].url);
        free(m->backends[i].api_key_env);
        free(m->backends[i].model_label);
    }
    free(m->backends);
    free(m->name);
    free(m->type);
    free(m->fallback_model);
    free(m->api_key_env);
}

void config_clear_models(struct sy_cfg *cfg)
{
    for (size_t i = 0; i < cfg->nmodels; i++)
        model_free(&cfg->models[i]);
    free(cfg->models);
    cfg->models = NULL;
    cfg->nmodels = 0;
    for (size_t i = 0; i < cfg->naliases; i++) {
        free(cfg->aliases[i].alias);
        free(cfg->aliases[i].model);
    }
    free(cfg->aliases);
    cfg->aliases = NULL;
    cfg->naliases = 0;
}

struct model_cfg *config_add_model(struct sy_cfg *cfg, const char *name,
                                   int line)
{
    struct model_cfg *models =
        realloc(cfg->models, (cfg->nmodels + 1) * sizeof *models);
    if (!models)
        return NULL;
    cfg->models = models;
    struct model_cfg *m = &models[cfg->nmodels];
    memset(m, 0, sizeof *m);
    m->line = line;
    m->name = strdup(name);
    m->type = strdup("chat");
    if (!m->name || !m->type) {
        model_free(m);
        return NULL;
    }
    cfg->nmodels++;
    return m;
}

int config_add_backend(struct model_cfg *m, const char *url, unsigned weight,
                       const char *api_key_env, int line)
{
    struct backend_cfg b = {.weight = weight, .line = line};
    b.url = strdup(url);
    if (api_key_env)
        b.api_key_env = strdup(api_key_env);
    struct backend_cfg *bs = b.url && (!api_key_env || b.api_key_env)
        ? realloc(m->backends, (m->nbackends + 1) * sizeof *bs)
        : NULL;
    if (!bs) {
        free(b.url);
        free(b.api_key_env);
        return -1;
    }
    m->backends = bs;
    m->backends[m->nbackends++] = b;
    return 0;
}

int config_add_alias(struct sy_cfg *cfg, const char *alias, const char *model,
                     int line)
{
    struct alias_cfg a = {.line = line};
    a.alias = strdup(alias);
    a.model = strdup(model);
    struct alias_cfg *as = a.alias && a.model
        ? realloc(cfg->aliases, (cfg->naliases + 1) * sizeof *as)
        : NULL;
    if (!as) {
        free(a.alias);
        free(a.model);
        return -1;
    }
    cfg->aliases = as;
    cfg->aliases[cfg->naliases++] = a;
    return 0;
}

struct sy_cfg *config_ref(struct sy_cfg *cfg)
{
    cfg->refs++;
    return cfg;
}

void config_free(struct sy_cfg *cfg)
{
    if (!cfg)
        return;
    if (cfg->refs > 0) {
        cfg->refs--;
        return;
    }
    config_clear_models(cfg);
    config_list_clear(&cfg->routing);
    config_list_clear(&cfg->health);
    config_list_clear(&cfg->fallback);
    config_list_clear(&cfg->discovery);
    free(cfg->source);
    free(cfg->host);
    free(cfg->plugin_dir);
    free(cfg->log_file);
    for (size_t i = 0; i < cfg->napi_keys; i++)
        free(cfg->api_keys[i]);
    free(cfg->api_keys);
    free(cfg->api_keys_file);
    free(cfg->admin_listen);
    free(cfg->ca_file);
    free(cfg->root_path);
    free(cfg->otel_endpoint);
    free(cfg->prefill_model_labels);
    free(cfg->decode_model_labels);
    free(cfg->otel_service_name);
    cfg_tree_free(cfg->tree);
    cfg_tree_free(cfg->extra);
    free(cfg->dynamic_config);
    cfg_tree_free(cfg->dyn_tree);
    free(cfg);
}

const struct cfg_node *config_plugin_section(const struct sy_cfg *cfg,
                                             const char *name)
{
    char own[MAX_PLUGIN_NAME + 1];
    /* a plugin given by path has the section of its own name */
    if (strchr(name, '/') != NULL && plugin_name_of(name, own, sizeof own) == 0)
        name = own;
    const struct cfg_node *s = cfg ? cfg_map_get(cfg->plugin_config, name)
                                   : NULL;
    /* "name:" with nothing under it is an empty section too. */
    return s && s->kind == CFG_MAP ? s : cfg_empty_map();
}

struct alias_cfg *config_find_alias(const struct sy_cfg *cfg, const char *name)
{
    for (size_t i = 0; cfg && name && i < cfg->naliases; i++)
        if (strcmp(cfg->aliases[i].alias, name) == 0)
            return &cfg->aliases[i];
    return NULL;
}

struct model_cfg *config_find_model(const struct sy_cfg *cfg, const char *name)
{
    for (size_t i = 0; cfg && name && i < cfg->nmodels; i++)
        if (strcmp(cfg->models[i].name, name) == 0)
            return &cfg->models[i];
    return NULL;
}

/* ---- syntax checks ---- */

static int parse_port(const char *s, int *out)
{
    long v = 0;
    if (!*s || strlen(s) > 5)
        return -1;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    if (v < 1 || v > 65535)
        return -1;
    *out = (int)v;
    return 0;
}

static const char *const routing_logics[] = {
    "roundrobin", "session", "least_loaded", "prefixaware", NULL,
};

/* vllm_router's logics switchyard has no plugin for yet: the nearest one
 * serves meanwhile, and says so (config_routing_stand_in). */
static const char *const stand_ins[][2] = {
    {"kvaware", "prefixaware"},          /* cache-aware, without engine state */
    {"disaggregated_prefill", "roundrobin"}, /* no prefill/decode split */
    {"priority", "roundrobin"},
};

const char *config_routing_stand_in(const char *name)
{
    for (size_t i = 0; i < sizeof stand_ins / sizeof stand_ins[0]; i++)
        if (strcmp(stand_ins[i][0], name) == 0)
            return stand_ins[i][1];
    return NULL;
}

int config_is_routing_logic(const char *name)
{
    for (size_t i = 0; routing_logics[i] != NULL; i++)
        if (strcmp(routing_logics[i], name) == 0)
            return 1;
    return config_routing_stand_in(name) != NULL;
}

int config_set_routing_logic(struct sy_cfg *cfg, const char *name)
{
    const char *stand_in = config_routing_stand_in(name);
    if (stand_in != NULL)
        name = stand_in;
    config_list_clear(&cfg->routing);
    if (config_list_add(&cfg->routing, name) < 0 ||
        (strcmp(name, "session") == 0 && config_list_add(&cfg->routing, "least_loaded") < 0))
        return -1;
    return 0;
}

int config_host_port(const char *s, char *host, size_t hostlen, int *port)
{
    const char *hs, *ps, *colon = strrchr(s, ':');
    size_t hl;

    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close == s + 1 || close[1] != ':')
            return -1;
        hs = s + 1;
        hl = (size_t)(close - hs);
        ps = close + 2;
    } else {
        if (colon == NULL || strchr(s, ':') != colon)
            return -1;
        hs = s;
        hl = (size_t)(colon - s);
        ps = colon + 1;
    }
    if (hl == 0 || hl >= hostlen || parse_port(ps, port) < 0)
        return -1;
    memcpy(host, hs, hl);
    host[hl] = '\0';
    return 0;
}

int config_parse_url(const char *text, char **out, char *why, size_t whylen)
{
    const char *rest;
    if (strncasecmp(text, "http://", 7) == 0)
        rest = text + 7;
    else if (strncasecmp(text, "https://", 8) == 0)
        rest = text + 8;
    else {
        snprintf(why, whylen, "must start with http:// or https://");
        return -1;
    }
    for (const char *p = text; *p; p++) {
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
            snprintf(why, whylen, "contains a space or control character");
            return -1;
        }
    }
    if (strpbrk(rest, "?#")) {
        snprintf(why, whylen, "a base URL takes no query or fragment");
        return -1;
    }
    size_t alen = strcspn(rest, "/");
    if (memchr(rest, '@', alen)) {
        /* Credentials would show in logs and /engines; keys go in env. */
        snprintf(why, whylen, "must not contain user:password@ "
                              "(use api_key_env for a key)");
        return -1;
    }
    const char *port = NULL, *end = rest + alen;
    size_t hlen;
    if (rest[0] == '[') {
        const char *close = memchr(rest, ']', alen);
        if (!close) {
            snprintf(why, whylen, "unclosed '[' in the host");
            return -1;
        }
        hlen = (size_t)(close - rest - 1);
        if (close + 1 < end) {
            if (close[1] != ':') {
                snprintf(why, whylen, "unexpected text after ']'");
                return -1;
            }
            port = close + 2;
        }
    } else {
        const char *colon = memchr(rest, ':', alen);
        if (colon && memchr(colon + 1, ':', (size_t)(end - colon - 1))) {
            snprintf(why, whylen, "an IPv6 address needs brackets, "
                                  "as in http://[::1]:8000");
            return -1;
        }
        hlen = colon ? (size_t)(colon - rest) : alen;
        port = colon ? colon + 1 : NULL;
    }
    if (hlen == 0) {
        snprintf(why, whylen, "has no host");
        return -1;
    }
    if (port) {
        char buf[8];
        size_t plen = (size_t)(end - port);
        int p;
        if (plen >= sizeof buf) {
            snprintf(why, whylen, "bad port (expected 1..65535)");
            return -1;
        }
        memcpy(buf, port, plen);
        buf[plen] = '\0';
        if (parse_port(buf, &p) < 0) {
            snprintf(why, whylen, "bad port '%s' (expected 1..65535)", buf);
            return -1;
        }
    }
    size_t len = strlen(text);
    /* Drop one trailing slash after a path, so base + "/v1/..." works. */
    if (*end && text[len - 1] == '/')
        len--;
    if (!(*out = strndup(text, len))) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    return 0;
}

/* Plugin names become file names: no '/', no '..'. */
static int plugin_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MAX_PLUGIN_NAME)
        return 0;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789_-") == n;
}

/* A plugin by path: absolute, naming NAME.so with a good NAME. */
static int plugin_path_ok(const char *s)
{
    char name[MAX_PLUGIN_NAME + 1];
    return s[0] == '/' && plugin_name_of(s, name, sizeof name) == 0 && plugin_name_ok(name);
}

static int env_name_ok(const char *s)
{
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
        return 0;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789_") == strlen(s);
}

/* Model and alias names go into headers and metric labels. */
int config_model_name_ok(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

int config_model_type_ok(const char *t)
{
    for (size_t i = 0; config_model_types[i]; i++)
        if (strcmp(t, config_model_types[i]) == 0)
            return 1;
    return 0;
}

/* ---- the file ---- */

/* A non-empty string copied into *out (replacing what was there). */
static int set_string(struct setter *st, const struct cfg_node *v,
                      const char *key, char **out)
{
    const char *s = NULL;
    if (setting_scalar(st, v, key, &s) < 0)
        return -1;
    if (!*s)
        return setting_error(st, v->line, key, "empty value");
    char *copy = strdup(s);
    if (!copy)
        return setting_oom(st, v->line, key);
    free(*out);
    *out = copy;
    return 0;
}

static int get_int(struct setter *st, const struct cfg_node *v,
                   const char *key, long min, long max, long *out)
{
    const char *s = NULL;
    char *end;
    if (setting_scalar(st, v, key, &s) < 0)
        return -1;
    errno = 0;
    long n = strtol(s, &end, 10);
    if (!*s || *end || errno || n < min || n > max || !strchr("-0123456789", *s))
        return setting_error(st, v->line, key, "expected a whole number %ld..%ld, got '%s'",
                             min, max, s);
    *out = n;
    return 0;
}

int set_listen(struct setter *st, const struct setting *row,
        const struct cfg_node *v)
{
    const char *key = row->key;
    const char *s = NULL, *hs = NULL, *ps = NULL;
    size_t hlen = 0;
    char *host = NULL;
    int port = st->cfg->port;

    if (setting_scalar(st, v, key, &s) < 0)
        return -1;
    const char *colon = strrchr(s, ':');
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close == s + 1 || close[1] != ':')
            goto bad;
        hs = s + 1;
        hlen = (size_t)(close - hs);
        ps = close + 2;
    } else if (colon && strchr(s, ':') != colon) {
        return setting_error(st, v->line, key, "an IPv6 address needs brackets, as in "
                                      "[::1]:8001; got '%s'", s);
    } else if (colon) {
        hs = s;
        hlen = (size_t)(colon - s); /* ":8001": every address */
        ps = colon + 1;
    } else if (*s && strspn(s, "0123456789") == strlen(s)) {
        ps = s; /* just a port */
    } else {
        hs = s; /* just a host */
        hlen = strlen(s);
    }
    if (ps && parse_port(ps, &port) < 0)
        goto bad;
    if (hs && hlen) {
        if (!(host = strndup(hs, hlen)))
            return setting_oom(st, v->line, key);
        free(st->cfg->host);
        st->cfg->host = host;
    }
    st->cfg->port = port;
    return 0;
bad:
    return setting_error(st, v->line, key,
                "expected host:port, [ipv6]:port or a port 1..65535, got '%s'",
                s);
}

int set_log_level(struct setter *st, const struct setting *row,
        const struct cfg_node *v)
{
    const char *key = row->key;
    const char *s = NULL;
    if (setting_scalar(st, v, key, &s) < 0)
        return -1;
    int level = log_parse_level(s);
    if (level < 0)
        return setting_error(st, v->line, key,
                    "expected debug, info, warning or error, got '%s'", s);
    st->cfg->log_level = level;
    return 0;
}

/* plugin_dir: DIR, plugin_path: [DIR, ...], --plugin-dir repeated: the
 * directories joined by ':'. */
int set_plugin_dir(struct setter *st, const struct setting *row,
        const struct cfg_node *v)
{
    const char *key = row->key;
    size_t n = v->kind == CFG_LIST ? v->n : 1, len = 0;
    char *joined;

    if (v->kind == CFG_MAP)
        return setting_error(st, v->line, key, "expected a directory or a list of directories, got a map");
    for (size_t i = 0; i < n; i++) {
        const struct cfg_node *item = v->kind == CFG_LIST ? v->vals[i] : v;
        if (item->kind != CFG_SCALAR || item->scalar[0] == '\0')
            return setting_error(st, item->line, key, "expected a directory, got %s",
                        item->kind != CFG_SCALAR ? setting_kind_name(item) : "an empty value");
        if (strchr(item->scalar, ':') != NULL)
            return setting_error(st, item->line, key,
                        "a directory with ':' in its name cannot be searched, got '%s'",
                        item->scalar);
        len += strlen(item->scalar) + 1;
    }
    if (n == 0)
        return setting_error(st, v->line, key, "an empty list");
    if ((joined = malloc(len)) == NULL)
        return setting_oom(st, v->line, key);
    joined[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const struct cfg_node *item = v->kind == CFG_LIST ? v->vals[i] : v;
        if (i > 0)
            strcat(joined, ":");
        strcat(joined, item->scalar);
    }
    free(st->cfg->plugin_dir);
    st->cfg->plugin_dir = joined;
    return 0;
}

int set_log_format(struct setter *st, const struct setting *row,
        const struct cfg_node *v)
{
    const char *key = row->key;
    const char *s = NULL;
    if (setting_scalar(st, v, key, &s) < 0)
        return -1;
    if (strcmp(s, "text") == 0)
        st->cfg->log_format = LOG_FORMAT_TEXT;
    else if (strcmp(s, "json") == 0)
        st->cfg->log_format = LOG_FORMAT_JSON;
    else
        return setting_error(st, v->line, key, "expected text or json, got '%s'", s);
    return 0;
}

static int add_api_key(struct sy_cfg *cfg, const char *key)
{
    char **nk = realloc(cfg->api_keys, (cfg->napi_keys + 1) * sizeof *nk);
    if (nk == NULL)
        return -1;
    cfg->api_keys = nk;
    if ((nk[cfg->napi_keys] = strdup(key)) == NULL)
        return -1;
    cfg->napi_keys++;
    return 0;
}

int set_api_keys(struct setter *st, const struct setting *row,
        const struct cfg_node *v)
{
    const char *key = row->key;
    if (v->kind != CFG_LIST)
        return setting_error(st, v->line, key, "expected a list of keys, got %s", setting_kind_name(v));
    for (size_t i = 0; i < v->n; i++) {
        const struct cfg_node *k = v->vals[i];
        if (k->kind != CFG_SCALAR || k->scalar[0] == '\0')
            return setting_error(st, k->line, key, "expected a non-empty key");
        if (add_api_key(st->cfg, k->scalar) < 0)
            return setting_oom(st, k->line, key);
    }
    return 0;
}

int set_admin_listen(struct setter *st, const struct setting *row,
        const struct cfg_node *v)
{
    const char *key = row->key;
    const char *s = NULL;
    char host[256];
    int port;

    if (setting_scalar(st, v, key, &s) < 0)
        return -1;
    if (config_host_port(s, host, sizeof host, &port) != 0)
        return setting_error(st, v->line, key,
                    "expected host:port such as 127.0.0.1:9090 or [::1]:9090, got '%s'", s);
    return set_string(st, v, key, &st->cfg->admin_listen);
}

/* A plugin name, or a list of them. */
static int ld_plugins(struct setter *st, const char *key,
                      const struct cfg_node *v, int line,
                      struct plugin_list *pl)
{
    config_list_clear(pl);
    pl->line = line; /* given, even when empty */
    if (v->kind == CFG_SCALAR && !*v->scalar)
        return 0;
    if (v->kind == CFG_MAP)
        return setting_error(st, v->line, key,
                    "expected a plugin name or a list of names, got a map "
                    "(plugin settings go under plugin_config)");
    size_t n = v->kind == CFG_LIST ? v->n : 1;
    for (size_t i = 0; i < n; i++) {
        const struct cfg_node *item = v->kind == CFG_LIST ? v->vals[i] : v;
        if (item->kind != CFG_SCALAR)
            return setting_error(st, item->line, key,
                        "expected a plugin name, got %s", setting_kind_name(item));
        if (!plugin_name_ok(item->scalar) && !plugin_path_ok(item->scalar))
            return setting_error(st, item->line, key,
                        "bad plugin name '%s' (letters, digits, '_' and '-' "
                        "only, or an absolute path to NAME.so)", item->scalar);
        for (size_t j = 0; j < pl->n; j++)
            if (strcmp(pl->names[j], item->scalar) == 0)
                return setting_error(st, item->line, key, "plugin '%s' is listed twice",
                            item->scalar);
        if (config_list_add(pl, item->scalar) < 0)
            return setting_oom(st, item->line, key);
    }
    return 0;
}

/* routing, health, fallback: the list at the row's offset. */
int set_plugin_list(struct setter *st, const struct setting *row,
        const struct cfg_node *v)
{
    struct plugin_list *pl = (struct plugin_list *)((char *)st->cfg + row->offset);
    return ld_plugins(st, row->key, v, cfg_map_key_line(st->map, row->key), pl);
}

int set_plugin_config(struct setter *st, const struct setting *row,
        const struct cfg_node *v)
{
    const char *key = row->key;
    if (v->kind == CFG_SCALAR && !*v->scalar)
        return 0;
    if (v->kind != CFG_MAP)
        return setting_error(st, v->line, key,
                    "expected a map of plugin name to its settings, got %s",
                    setting_kind_name(v));
    for (size_t i = 0; i < v->n; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s.%s", key, v->keys[i]);
        if (!plugin_name_ok(v->keys[i]))
            return setting_error(st, v->key_lines[i], path,
                        "bad plugin name (letters, digits, '_' and '-' only)");
        const struct cfg_node *s = v->vals[i];
        if (s->kind != CFG_MAP && !(s->kind == CFG_SCALAR && !*s->scalar))
            return setting_error(st, s->line, path, "expected a map of settings, got %s",
                        setting_kind_name(s));
    }
    st->cfg->plugin_config = v;
    return 0;
}

static int ld_backend(struct setter *st, const char *path,
                      struct model_cfg *m, const struct cfg_node *item)
{
    const char *text = NULL, *env = NULL;
    long weight = 1;
    char *url = NULL, why[128];
    int rc = -1;

    if (item->kind == CFG_SCALAR) {
        text = item->scalar;
    } else if (item->kind == CFG_MAP) {
        for (size_t i = 0; i < item->n; i++) {
            const char *k = item->keys[i];
            const struct cfg_node *v = item->vals[i];
            char kpath[300];
            snprintf(kpath, sizeof kpath, "%s.%s", path, k);
            if (strcmp(k, "url") == 0) {
                if (setting_scalar(st, v, kpath, &text) < 0)
                    return -1;
            } else if (strcmp(k, "weight") == 0) {
                if (get_int(st, v, kpath, 1, MAX_WEIGHT, &weight) < 0)
                    return -1;
            } else if (strcmp(k, "api_key_env") == 0) {
                if (setting_scalar(st, v, kpath, &env) < 0)
                    return -1;
                if (!env_name_ok(env))
                    return setting_error(st, v->line, kpath,
                                "expected the name of an environment "
                                "variable, got '%s'", env);
            } else {
                return setting_error(st, item->key_lines[i], kpath,
                            "unknown key (expected url, weight, api_key_env)");
            }
        }
        if (!text)
            return setting_error(st, item->line, path, "a backend needs a url");
    } else {
        return setting_error(st, item->line, path,
                    "expected a URL or a map with url, weight, api_key_env; "
                    "got %s", setting_kind_name(item));
    }
    if (config_parse_url(text, &url, why, sizeof why) < 0)
        return setting_error(st, item->line, path, "'%s': %s", text, why);
    for (size_t i = 0; i < m->nbackends; i++) {
        if (strcmp(m->backends[i].url, url) == 0) {
            rc = setting_error(st, item->line, path, "'%s' is listed twice (line %d)",
                      url, m->backends[i].line);
            goto out;
        }
    }
    rc = config_add_backend(m, url, (unsigned)weight, env, item->line);
    if (rc < 0)
        setting_oom(st, item->line, path);
out:
    free(url);
    return rc;
}

static int ld_backends(struct setter *st, const char *path,
                       struct model_cfg *m, const struct cfg_node *v)
{
    if (v->kind == CFG_SCALAR)
        return *v->scalar ? ld_backend(st, path, m, v) : 0;
    if (v->kind != CFG_LIST)
        return setting_error(st, v->line, path, "expected a list of URLs, got %s",
                    setting_kind_name(v));
    for (size_t i = 0; i < v->n; i++)
        if (ld_backend(st, path, m, v->vals[i]) < 0)
            return -1;
    return 0;
}

static int ld_model_aliases(struct setter *st, const char *path,
                            const char *model, const struct cfg_node *v)
{
    if (v->kind == CFG_MAP)
        return setting_error(st, v->line, path,
                    "expected an alias or a list of aliases, got a map");
    size_t n = v->kind == CFG_LIST ? v->n : (*v->scalar ? 1 : 0);
    for (size_t i = 0; i < n; i++) {
        const struct cfg_node *item = v->kind == CFG_LIST ? v->vals[i] : v;
        const char *a = NULL;
        if (setting_scalar(st, item, path, &a) < 0)
            return -1;
        if (!*a)
            return setting_error(st, item->line, path, "empty alias");
        if (config_add_alias(st->cfg, a, model, item->line) < 0)
            return setting_oom(st, item->line, path);
    }
    return 0;
}

/* Extra upstream headers: a map of header name to value, sent as they are;
 * names are HTTP tokens, values one line. */
static int ld_model_headers(struct setter *st, const char *path, const struct cfg_node *v)
{
    if (v->kind != CFG_MAP)
        return setting_error(st, v->line, path, "expected a map of header name to value, got %s",
                    setting_kind_name(v));
    for (size_t i = 0; i < v->n; i++) {
        const char *name = v->keys[i];
        const struct cfg_node *val = v->vals[i];
        if (*name == '\0' || strspn(name, "!#$%&'*+-.^_`|~0123456789"
                                           "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
                                  != strlen(name))
            return setting_error(st, v->key_lines[i], path, "'%s' is not a header name", name);
        if (val->kind != CFG_SCALAR || strpbrk(val->scalar, "\r\n") != NULL)
            return setting_error(st, val->line, path, "the value of %s must be one line of text", name);
    }
    return 0;
}

static int ld_model(struct setter *st, const char *name, int line,
                    const struct cfg_node *v)
{
    char path[256], kpath[300];
    snprintf(path, sizeof path, "models.%s", name);

    if (!config_model_name_ok(name))
        return setting_error(st, line, path, "a model name must be non-empty text");
    if (v->kind != CFG_MAP)
        return setting_error(st, v->line, path,
                    "expected a map with backends (and type, aliases, "
                    "fallback_model, api_key_env), got %s", setting_kind_name(v));
    struct model_cfg *m = config_add_model(st->cfg, name, line);
    if (!m)
        return setting_oom(st, line, path);
    for (size_t i = 0; i < v->n; i++) {
        const char *k = v->keys[i];
        const struct cfg_node *val = v->vals[i];
        const char *s = NULL;
        snprintf(kpath, sizeof kpath, "%s.%s", path, k);
        if (strcmp(k, "backends") == 0) {
            if (ld_backends(st, kpath, m, val) < 0)
                return -1;
        } else if (strcmp(k, "type") == 0) {
            if (setting_scalar(st, val, kpath, &s) < 0)
                return -1;
            if (!config_model_type_ok(s))
                return setting_error(st, val->line, kpath,
                            "expected " CONFIG_MODEL_TYPES_TEXT ", got '%s'", s);
            if (set_string(st, val, kpath, &m->type) < 0)
                return -1;
        } else if (strcmp(k, "aliases") == 0) {
            if (ld_model_aliases(st, kpath, name, val) < 0)
                return -1;
        } else if (strcmp(k, "fallback_model") == 0) {
            if (setting_scalar(st, val, kpath, &s) < 0)
                return -1;
            if (*s && set_string(st, val, kpath, &m->fallback_model) < 0)
                return -1;
            m->fallback_line = v->key_lines[i];
        } else if (strcmp(k, "api_key_env") == 0) {
            if (setting_scalar(st, val, kpath, &s) < 0)
                return -1;
            if (!env_name_ok(s))
                return setting_error(st, val->line, kpath,
                            "expected the name of an environment variable, "
                            "got '%s'", s);
            if (set_string(st, val, kpath, &m->api_key_env) < 0)
                return -1;
        } else if (strcmp(k, "headers") == 0) {
            if (ld_model_headers(st, kpath, val) < 0)
                return -1;
            m->headers = val;
        } else {
            return setting_error(st, v->key_lines[i], kpath,
                        "unknown key (expected backends, type, aliases, "
                        "fallback_model, api_key_env, headers)");
        }
    }
    return 0;
}

int set_models(struct setter *st, const struct setting *row,
        const struct cfg_node *v)
{
    const char *key = row->key;
    if (v->kind == CFG_SCALAR && !*v->scalar)
        return 0;
    if (v->kind != CFG_MAP)
        return setting_error(st, v->line, key,
                    "expected a map of model name to its settings, got %s",
                    setting_kind_name(v));
    for (size_t i = 0; i < v->n; i++)
        if (ld_model(st, v->keys[i], v->key_lines[i], v->vals[i]) < 0)
            return -1;
    return 0;
}

int set_aliases(struct setter *st, const struct setting *row,
        const struct cfg_node *v)
{
    const char *key = row->key;
    if (v->kind == CFG_SCALAR && !*v->scalar)
        return 0;
    if (v->kind != CFG_MAP)
        return setting_error(st, v->line, key,
                    "expected a map of alias to model name, got %s",
                    setting_kind_name(v));
    for (size_t i = 0; i < v->n; i++) {
        char path[256];
        const char *model = NULL;
        snprintf(path, sizeof path, "%s.%s", key, v->keys[i]);
        if (!config_model_name_ok(v->keys[i]))
            return setting_error(st, v->key_lines[i], path, "empty alias");
        if (setting_scalar(st, v->vals[i], path, &model) < 0)
            return -1;
        if (!*model)
            return setting_error(st, v->key_lines[i], path, "expected a model name");
        if (config_add_alias(st->cfg, v->keys[i], model, v->key_lines[i]) < 0)
            return setting_oom(st, v->key_lines[i], path);
    }
    return 0;
}

/* Takes ownership of tree, also on failure. */
static int config_from_tree(struct cfg_node *tree, const char *name,
                            struct sy_cfg **out, char *err, size_t errlen)
{
    struct sy_cfg *cfg = config_new();
    struct setter st = {.cfg = cfg, .map = tree, .src = SETTING_FILE,
                        .file = name, .err = err, .errlen = errlen};
    /* Two ways to say one thing: both at once would be ambiguous. */
    static const char *const either[][3] = {
        {"listen", "host", "host/port"}, {"listen", "port", "host/port"},
        {"plugin_path", "plugin_dir", "plugin_dir"},
    };
    int rc = -1;

    if (!cfg) {
        snprintf(err, errlen, "%s: out of memory", name);
        cfg_tree_free(tree);
        return -1;
    }
    cfg->tree = tree;
    free(cfg->source);
    if (!(cfg->source = strdup(name))) {
        snprintf(err, errlen, "%s: out of memory", name);
        goto out;
    }
    for (size_t i = 0; i < sizeof either / sizeof either[0]; i++)
        if (cfg_map_get(tree, either[i][0]) && cfg_map_get(tree, either[i][1])) {
            setting_error(&st, cfg_map_key_line(tree, either[i][1]), either[i][1],
                          "give either %s or %s, not both (%s is at line %d)",
                          either[i][0], either[i][2], either[i][0],
                          cfg_map_key_line(tree, either[i][0]));
            goto out;
        }
    if (settings_apply(&st) < 0)
        goto out;
    rc = 0;
out:
    if (rc < 0)
        config_free(cfg);
    else
        *out = cfg;
    return rc;
}

int config_load_file(const char *path, struct sy_cfg **out, char *err,
                     size_t errlen)
{
    struct cfg_node *tree;
    if (cfg_tree_load_file(path, &tree, err, errlen) < 0)
        return -1;
    return config_from_tree(tree, path, out, err, errlen);
}

int config_load_string(const char *text, const char *name, struct sy_cfg **out,
                       char *err, size_t errlen)
{
    struct cfg_node *tree;
    if (!name)
        name = "<string>";
    if (cfg_tree_parse(text, strlen(text), name, &tree, err, errlen) < 0)
        return -1;
    return config_from_tree(tree, name, out, err, errlen);
}

/* ---- the whole picture ---- */

/* "file:line: key: why" for what came from the file (line > 0), or
 * "command line: flag: why" for what came from a flag. */
static int ferr(const struct sy_cfg *cfg, char *err, size_t errlen, int line,
                const char *key, const char *fmt, ...) SY_PRINTF(6, 7);

static int ferr(const struct sy_cfg *cfg, char *err, size_t errlen, int line,
                const char *key, const char *fmt, ...)
{
    va_list ap;
    int n = line > 0
        ? snprintf(err, errlen, "%s:%d: %s: ", cfg->source, line, key)
        : snprintf(err, errlen, CMDLINE ": %s: ", key);
    if (n >= 0 && (size_t)n < errlen) {
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static void model_key(const struct model_cfg *m, const char *sub, char *buf,
                      size_t len, const char *flag)
{
    if (m->line <= 0)
        snprintf(buf, len, "%s", flag);
    else if (sub)
        snprintf(buf, len, "models.%s.%s", m->name, sub);
    else
        snprintf(buf, len, "models.%s", m->name);
}

/* Aliases are declared under `aliases:` or in a model's `aliases:` list;
 * the line tells which. */
static void alias_key(const struct sy_cfg *cfg, const struct alias_cfg *a,
                      char *buf, size_t len)
{
    const struct cfg_node *top = cfg_map_get(cfg->tree, "aliases");
    if (a->line <= 0)
        snprintf(buf, len, "--static-aliases");
    else if (cfg_map_get(top, a->alias) &&
             cfg_map_key_line(top, a->alias) == a->line)
        snprintf(buf, len, "aliases.%s", a->alias);
    else
        snprintf(buf, len, "models.%s.aliases", a->model);
}

static int check_settings(const struct sy_cfg *cfg, char *err, size_t errlen)
{
    const char *src = cfg->source ? cfg->source : CMDLINE;
    const char *why = NULL;
    if (!cfg->host || !*cfg->host)
        why = "host: empty";
    else if (cfg->port < 1 || cfg->port > 65535)
        why = "port: must be 1..65535";
    else if (cfg->workers < 0 || cfg->workers > MAX_WORKERS)
        why = "workers: must be 0..256";
    else if (cfg->max_body == 0)
        why = "max_body_size: must be more than 0";
    else if (!(cfg->upstream_timeout > 0))
        why = "upstream_timeout: must be more than 0";
    else if (!(cfg->connect_timeout > 0))
        why = "connect_timeout: must be more than 0";
    else if (cfg->reroute_attempts < 0 || cfg->reroute_attempts > MAX_REROUTE)
        why = "reroute_attempts: must be 0..100";
    if (why) {
        snprintf(err, errlen, "%s: %s", src, why);
        return -1;
    }
    const struct plugin_list *lists[] = {&cfg->routing, &cfg->health,
                                         &cfg->fallback, &cfg->discovery};
    for (size_t i = 0; i < 4; i++)
        for (size_t j = 0; j < lists[i]->n; j++)
            if (!plugin_name_ok(lists[i]->names[j]) && !plugin_path_ok(lists[i]->names[j])) {
                snprintf(err, errlen, "%s: bad plugin name '%s'", src,
                         lists[i]->names[j]);
                return -1;
            }
    return 0;
}

static int check_models(const struct sy_cfg *cfg, char *err, size_t errlen)
{
    char key[300], why[128];
    /* with discovery, models and their backends may come at run time: a
     * model written without backends gives its settings to discovered
     * backends of that name */
    int discovered = cfg->discovery.n > 0;
    if (cfg->nmodels == 0 && !discovered) {
        snprintf(err, errlen, "%s: no models: add a models: section to the "
                              "config file, or give --static-backends and "
                              "--static-models",
                 cfg->source ? cfg->source : CMDLINE);
        return -1;
    }
    for (size_t i = 0; i < cfg->nmodels; i++) {
        const struct model_cfg *m = &cfg->models[i];
        model_key(m, NULL, key, sizeof key, "--static-models");
        if (!config_model_name_ok(m->name))
            return ferr(cfg, err, errlen, m->line, key,
                        "bad model name '%s'", m->name);
        for (size_t j = 0; j < i; j++)
            if (strcmp(cfg->models[j].name, m->name) == 0)
                return ferr(cfg, err, errlen, m->line, key,
                            "model '%s' is declared twice", m->name);
        if (m->nbackends == 0 && !discovered)
            return ferr(cfg, err, errlen, m->line, key,
                        "model '%s' has no backends", m->name);
        if (m->type && !config_model_type_ok(m->type))
            return ferr(cfg, err, errlen, m->line, key,
                        "model '%s' has unknown type '%s'", m->name, m->type);
        model_key(m, "backends", key, sizeof key, "--static-backends");
        for (size_t j = 0; j < m->nbackends; j++) {
            const struct backend_cfg *b = &m->backends[j];
            char *url = NULL;
            if (config_parse_url(b->url, &url, why, sizeof why) < 0)
                return ferr(cfg, err, errlen, b->line, key, "'%s': %s",
                            b->url, why);
            free(url);
            if (b->weight < 1)
                return ferr(cfg, err, errlen, b->line, key,
                            "'%s': weight must be at least 1", b->url);
        }
    }
    return 0;
}

static int check_aliases(const struct sy_cfg *cfg, char *err, size_t errlen)
{
    char key[300];
    for (size_t i = 0; i < cfg->naliases; i++) {
        const struct alias_cfg *a = &cfg->aliases[i];
        alias_key(cfg, a, key, sizeof key);
        if (!config_model_name_ok(a->alias))
            return ferr(cfg, err, errlen, a->line, key, "bad alias name '%s'",
                        a->alias);
        if (config_find_model(cfg, a->alias))
            return ferr(cfg, err, errlen, a->line, key,
                        "alias '%s' is also the name of a model", a->alias);
        for (size_t j = 0; j < i; j++) {
            const struct alias_cfg *b = &cfg->aliases[j];
            if (strcmp(a->alias, b->alias) != 0)
                continue;
            if (b->line > 0)
                return ferr(cfg, err, errlen, a->line, key,
                            "alias '%s' is declared twice (first at line %d)",
                            a->alias, b->line);
            return ferr(cfg, err, errlen, a->line, key,
                        "alias '%s' is declared twice", a->alias);
        }
        if (!config_find_model(cfg, a->model))
            return ferr(cfg, err, errlen, a->line, key,
                        "alias '%s' names unknown model '%s'", a->alias,
                        a->model);
    }
    return 0;
}

/* Resolve each fallback_model through aliases to a model. */
static int check_fallbacks(struct sy_cfg *cfg, char *err, size_t errlen)
{
    char key[300];
    /* With discovery, a target nobody wrote down may be discovered later:
     * it is a model without backends until then (indexes, not pointers:
     * adding a model moves them). */
    for (size_t i = 0; cfg->discovery.n > 0 && i < cfg->nmodels; i++) {
        const char *target = cfg->models[i].fallback_model;
        if (target && !config_find_model(cfg, target) && !config_find_alias(cfg, target)) {
            char *name = strdup(target);
            int line = cfg->models[i].fallback_line;
            if (!name || !config_add_model(cfg, name, line)) {
                free(name);
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            free(name);
        }
    }
    for (size_t i = 0; i < cfg->nmodels; i++) {
        struct model_cfg *m = &cfg->models[i];
        if (!m->fallback_model)
            continue;
        if (m->fallback_line > 0)
            snprintf(key, sizeof key, "models.%s.fallback_model", m->name);
        else
            snprintf(key, sizeof key, "--static-fallback-models");
        const char *target = m->fallback_model;
        const struct alias_cfg *a = NULL;
        if (!config_find_model(cfg, target) && (a = config_find_alias(cfg, target)))
            target = a->model;
        if (!config_find_model(cfg, target))
            return ferr(cfg, err, errlen, m->fallback_line, key,
                        "model '%s' falls back to unknown model '%s'",
                        m->name, m->fallback_model);
        if (strcmp(target, m->name) == 0 && a)
            return ferr(cfg, err, errlen, m->fallback_line, key,
                        "model '%s' falls back to itself (through alias '%s')",
                        m->name, a->alias);
        if (strcmp(target, m->name) == 0)
            return ferr(cfg, err, errlen, m->fallback_line, key,
                        "model '%s' falls back to itself", m->name);
        if (a) {
            char *copy = strdup(target);
            if (!copy) {
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            free(m->fallback_model);
            m->fallback_model = copy;
        }
    }
    return 0;
}

/* Client keys from api_keys_file: one per line; blank lines and lines
 * starting with # are skipped.  Read at every load, so a reload (SIGHUP)
 * picks up a changed file. */
static int load_api_keys_file(struct sy_cfg *cfg, char *err, size_t errlen)
{
    FILE *f;
    char line[4096];
    int lineno = 0;

    if (cfg->api_keys_file == NULL)
        return 0;
    f = fopen(cfg->api_keys_file, "r");
    if (f == NULL) {
        snprintf(err, errlen, "%s: api_keys_file: cannot read %s: %s",
                 cfg->source ? cfg->source : CMDLINE, cfg->api_keys_file, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        char *k = line, *end;
        lineno++;
        while (*k == ' ' || *k == '\t')
            k++;
        end = k + strlen(k);
        while (end > k && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        if (*k == '\0' || *k == '#')
            continue;
        if (add_api_key(cfg, k) < 0) {
            fclose(f);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    fclose(f);
    return 0;
}

int config_finish(struct sy_cfg *cfg, char *err, size_t errlen)
{
    if (load_api_keys_file(cfg, err, errlen) < 0 ||
        check_settings(cfg, err, errlen) < 0 ||
        check_models(cfg, err, errlen) < 0 ||
        check_aliases(cfg, err, errlen) < 0 ||
        check_fallbacks(cfg, err, errlen) < 0)
        return -1;
    for (size_t i = 0; i < cfg->nmodels; i++)
        if (!cfg->models[i].type && !(cfg->models[i].type = strdup("chat")))
            goto oom;
    if (cfg->routing.n == 0 && config_list_add(&cfg->routing, "roundrobin") < 0)
        goto oom;
    /* An explicit fallback list, even empty, is the user's choice. */
    if (cfg->fallback.n == 0 && cfg->fallback.line == 0) {
        for (size_t i = 0; i < cfg->nmodels; i++) {
            if (cfg->models[i].fallback_model) {
                if (config_list_add(&cfg->fallback, "model_map") < 0)
                    goto oom;
                break;
            }
        }
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

struct cfg_node *config_own_plugin_config(struct sy_cfg *cfg, const char *file)
{
    const struct cfg_node *pc = cfg->plugin_config;
    struct cfg_node *map;

    if (cfg->extra && pc == cfg->extra)
        return cfg->extra;
    map = pc && pc->kind == CFG_MAP ? cfg_node_clone(pc) : cfg_node_new(CFG_MAP, file, 0);
    if (!map)
        return NULL;
    cfg_tree_free(cfg->extra);
    cfg->extra = map;
    cfg->plugin_config = map;
    return map;
}
