/*
 * dynconf: production-stack's dynamic router config over struct sy_cfg.
 *
 * Everything this file sets is checked here, with this file's name and
 * line in the error, so that config_finish (which names the native file or
 * the command line) has nothing left to say about it.
 */
#define _POSIX_C_SOURCE 200809L /* strdup, strndup */
#include "dynconf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define MAX_REROUTE 100

struct item {
    char *text;
    int line;
};

struct items {
    struct item *v;
    size_t n;
};

/* A fallback this file set: checked once aliases are known. */
struct fb_set {
    size_t model; /* index in cfg->models */
    int line;
    int from_map; /* static_models.NAME.fallback_model, else static_fallback_models */
};

struct dyn {
    struct sy_cfg *cfg;
    const struct cfg_node *root;
    const char *file;
    char *err;
    size_t errlen;
    struct items aliases;    /* aliases this file set (text: the alias) */
    struct fb_set *fbs;
    size_t nfbs;
};

/* Keys this file may have, handled below. */
static const char *const known_keys[] = {
    "service_discovery", "routing_logic", "session_key", "static_backends",
    "static_models", "static_aliases", "static_model_types",
    "static_fallback_models", "static_backend_health_checks",
    "static_backend_health_check_interval",
    "max_instance_failover_reroute_attempts", NULL,
};

/* vllm_router's keys that switchyard has no use for. */
static const char *const ignored_keys[] = {
    "k8s_port", "k8s_namespace", "k8s_label_selector", "static_model_labels",
    "prefill_model_labels", "decode_model_labels", "callbacks", NULL,
};

static int in_list(const char *const *list, const char *s)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(list[i], s) == 0)
            return 1;
    return 0;
}

static int derr(struct dyn *d, int line, const char *key, const char *fmt, ...)
    SY_PRINTF(4, 5);

static int derr(struct dyn *d, int line, const char *key, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(d->err, d->errlen, "%s:%d: %s: ", d->file, line, key);
    if (n >= 0 && (size_t)n < d->errlen) {
        va_start(ap, fmt);
        vsnprintf(d->err + n, d->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int oom(struct dyn *d, int line, const char *key)
{
    return derr(d, line, key, "out of memory");
}

static const char *kind_name(const struct cfg_node *v)
{
    switch (v->kind) {
    case CFG_MAP: return "a map";
    case CFG_LIST: return "a list";
    default: return "a single value";
    }
}

/* Absent, or written as null / nothing: vllm_router's None. */
static int unset(const struct cfg_node *v)
{
    return !v || (v->kind == CFG_SCALAR && !*v->scalar);
}

/* The same for a key that takes a list: [] too. */
static int no_items(const struct cfg_node *v)
{
    return unset(v) || (v->kind == CFG_LIST && v->n == 0);
}

static int get_scalar(struct dyn *d, const struct cfg_node *v, const char *key,
                      const char **out)
{
    if (v->kind != CFG_SCALAR)
        return derr(d, v->line, key, "expected a single value, got %s",
                    kind_name(v));
    *out = v->scalar;
    return 0;
}


static void items_free(struct items *it)
{
    for (size_t i = 0; i < it->n; i++)
        free(it->v[i].text);
    free(it->v);
    it->v = NULL;
    it->n = 0;
}

static int items_add(struct items *it, const char *text, size_t len, int line)
{
    char *copy = strndup(text, len);
    struct item *v = copy ? realloc(it->v, (it->n + 1) * sizeof *v) : NULL;
    if (!v) {
        free(copy);
        return -1;
    }
    it->v = v;
    it->v[it->n].text = copy;
    it->v[it->n].line = line;
    it->n++;
    return 0;
}

static const char *trim(const char *b, const char **e)
{
    while (b < *e && (*b == ' ' || *b == '\t'))
        b++;
    while (*e > b && ((*e)[-1] == ' ' || (*e)[-1] == '\t'))
        (*e)--;
    return b;
}

/* "a, b,c" or a YAML list [a, b, c] -> items; an empty item is an error,
 * null is no items. */
static int get_items(struct dyn *d, const struct cfg_node *v, const char *key,
                     struct items *out)
{
    out->v = NULL;
    out->n = 0;
    if (unset(v))
        return 0;
    if (v->kind == CFG_MAP)
        return derr(d, v->line, key, "expected a comma-separated string or a "
                                     "list, got a map");
    size_t n = v->kind == CFG_LIST ? v->n : 1;
    for (size_t i = 0; i < n; i++) {
        const struct cfg_node *item = v->kind == CFG_LIST ? v->vals[i] : v;
        if (item->kind != CFG_SCALAR) {
            items_free(out);
            return derr(d, item->line, key, "expected a list of strings, "
                                            "got %s in it", kind_name(item));
        }
        const char *s = item->scalar;
        for (const char *p = s;;) {
            size_t len = v->kind == CFG_LIST ? strlen(p) : strcspn(p, ",");
            const char *e = p + len, *b = trim(p, &e);
            if (b == e) {
                items_free(out);
                return derr(d, item->line, key, "empty item in '%s'", s);
            }
            if (items_add(out, b, (size_t)(e - b), item->line) < 0) {
                items_free(out);
                return oom(d, item->line, key);
            }
            if (!p[len])
                break;
            p += len + 1;
        }
    }
    return 0;
}

/* "A:B" or "A=B": at the first '=' when there is one (names may contain
 * ':', as in org/m:v1=org/m:v2), else at the last ':'. */
static int split_pair(struct dyn *d, const char *key, const char *what,
                      struct item *it, const char **left, const char **right)
{
    char *sep = strchr(it->text, '=');
    if (!sep)
        sep = strrchr(it->text, ':');
    if (!sep || sep == it->text || !sep[1])
        return derr(d, it->line, key, "expected %s, got '%s'", what, it->text);
    *sep = '\0';
    *left = it->text;
    *right = sep + 1;
    return 0;
}

/* One backend URL for model m (checked, not twice for one model). */
static int add_backend(struct dyn *d, struct model_cfg *m, const char *key,
                       const struct item *u)
{
    char *url = NULL, why[128];
    if (config_parse_url(u->text, &url, why, sizeof why) < 0)
        return derr(d, u->line, key, "'%s': %s", u->text, why);
    for (size_t j = 0; j < m->nbackends; j++) {
        if (strcmp(m->backends[j].url, url) == 0) {
            derr(d, u->line, key, "'%s' is given twice for model '%s'", url,
                 m->name);
            free(url);
            return -1;
        }
    }
    int rc = config_add_backend(m, url, 1, NULL, u->line);
    free(url);
    return rc < 0 ? oom(d, u->line, key) : 0;
}

static int set_type(struct dyn *d, struct model_cfg *m, const char *key,
                    const char *type, int line)
{
    char *t = strdup(type);
    if (!t)
        return oom(d, line, key);
    free(m->type);
    m->type = t;
    return 0;
}

/* ---- models ---- */

/* static_backends + static_models (+ static_model_types), positional as
 * the flags: one model (and type) per backend, names repeated for
 * replicas. */
static int models_positional(struct dyn *d, const struct cfg_node *vb,
                             const struct cfg_node *vm,
                             const struct cfg_node *vt)
{
    struct items urls = {0}, names = {0}, types = {0};
    struct sy_cfg *cfg = d->cfg;
    int rc = -1;

    if (get_items(d, vb, "static_backends", &urls) < 0 ||
        get_items(d, vm, "static_models", &names) < 0 ||
        get_items(d, vt, "static_model_types", &types) < 0)
        goto out;
    if (names.n != urls.n) {
        derr(d, vm->line, "static_models", "%zu model(s) for %zu backend(s); "
             "give one model per backend, repeating a name for replicas",
             names.n, urls.n);
        goto out;
    }
    if (!no_items(vt) && types.n != urls.n) {
        derr(d, vt->line, "static_model_types", "%zu type(s) for %zu "
             "backend(s); give one type per backend", types.n, urls.n);
        goto out;
    }
    config_clear_models(cfg);
    for (size_t i = 0; i < urls.n; i++) {
        const struct item *type = types.n ? &types.v[i] : NULL;
        if (!config_model_name_ok(names.v[i].text)) {
            derr(d, names.v[i].line, "static_models", "bad model name '%s'",
                 names.v[i].text);
            goto out;
        }
        if (type && !config_model_type_ok(type->text)) {
            derr(d, type->line, "static_model_types", "unknown type '%s' "
                 "(expected chat, completion, embeddings, rerank or score)",
                 type->text);
            goto out;
        }
        struct model_cfg *m = config_find_model(cfg, names.v[i].text);
        if (!m && !(m = config_add_model(cfg, names.v[i].text,
                                         names.v[i].line))) {
            oom(d, names.v[i].line, "static_models");
            goto out;
        }
        if (type && m->nbackends && strcmp(m->type, type->text) != 0) {
            derr(d, type->line, "static_model_types", "model '%s' is given "
                 "types '%s' and '%s'; replicas of one model must agree",
                 m->name, m->type, type->text);
            goto out;
        }
        if (type && set_type(d, m, "static_model_types", type->text,
                             type->line) < 0)
            goto out;
        if (add_backend(d, m, "static_backends", &urls.v[i]) < 0)
            goto out;
    }
    rc = 0;
out:
    items_free(&urls);
    items_free(&names);
    items_free(&types);
    return rc;
}

static int add_fb(struct dyn *d, size_t model, int line, int from_map)
{
    struct fb_set *f = realloc(d->fbs, (d->nfbs + 1) * sizeof *f);
    if (!f)
        return -1;
    d->fbs = f;
    d->fbs[d->nfbs++] = (struct fb_set){model, line, from_map};
    return 0;
}

static int set_fallback(struct dyn *d, struct model_cfg *m, const char *key,
                        const char *target, int line, int from_map)
{
    char *copy = strdup(target);
    if (!copy || add_fb(d, (size_t)(m - d->cfg->models), line, from_map) < 0) {
        free(copy);
        return oom(d, line, key);
    }
    free(m->fallback_model);
    m->fallback_model = copy;
    m->fallback_line = line;
    return 0;
}

/* static_models as a map: model -> {static_backends, static_model_type,
 * fallback_model}. */
static int models_map(struct dyn *d, const struct cfg_node *v)
{
    struct sy_cfg *cfg = d->cfg;
    char path[300], kpath[400];

    if (v->n == 0)
        return derr(d, v->line, "static_models", "no models in the map");
    config_clear_models(cfg);
    for (size_t i = 0; i < v->n; i++) {
        const char *name = v->keys[i];
        const struct cfg_node *mv = v->vals[i];
        int line = v->key_lines[i];
        snprintf(path, sizeof path, "static_models.%s", name);
        if (!config_model_name_ok(name))
            return derr(d, line, path, "bad model name");
        if (!unset(mv) && mv->kind != CFG_MAP)
            return derr(d, mv->line, path, "expected a map with "
                        "static_backends (and static_model_type, "
                        "fallback_model), got %s", kind_name(mv));
        struct model_cfg *m = config_add_model(cfg, name, line);
        if (!m)
            return oom(d, line, path);
        for (size_t k = 0; !unset(mv) && k < mv->n; k++) {
            const char *key = mv->keys[k];
            const struct cfg_node *val = mv->vals[k];
            const char *s = NULL;
            snprintf(kpath, sizeof kpath, "%s.%s", path, key);
            if (strcmp(key, "static_backends") == 0) {
                struct items urls;
                if (get_items(d, val, kpath, &urls) < 0)
                    return -1;
                for (size_t j = 0; j < urls.n; j++) {
                    if (add_backend(d, m, kpath, &urls.v[j]) < 0) {
                        items_free(&urls);
                        return -1;
                    }
                }
                items_free(&urls);
            } else if (strcmp(key, "static_model_type") == 0) {
                if (get_scalar(d, val, kpath, &s) < 0)
                    return -1;
                if (*s && !config_model_type_ok(s))
                    return derr(d, val->line, kpath, "expected chat, "
                                "completion, embeddings, rerank or score, "
                                "got '%s'", s);
                if (*s && set_type(d, m, kpath, s, val->line) < 0)
                    return -1;
            } else if (strcmp(key, "fallback_model") == 0) {
                if (get_scalar(d, val, kpath, &s) < 0)
                    return -1;
                if (*s && set_fallback(d, m, kpath, s, mv->key_lines[k],
                                       1) < 0)
                    return -1;
            } else {
                log_msg(SY_LOG_WARNING, "%s:%d: %s: unknown setting, ignored "
                        "(a model takes static_backends, static_model_type "
                        "and fallback_model)", d->file, mv->key_lines[k],
                        kpath);
            }
        }
        if (m->nbackends == 0)
            return derr(d, line, path, "model '%s' has no backends (give "
                        "%s.static_backends)", name, path);
    }
    return 0;
}

static int apply_models(struct dyn *d)
{
    const struct cfg_node *vb = cfg_map_get(d->root, "static_backends");
    const struct cfg_node *vm = cfg_map_get(d->root, "static_models");
    const struct cfg_node *vt = cfg_map_get(d->root, "static_model_types");

    if (vm && vm->kind == CFG_MAP) {
        if (!no_items(vb))
            return derr(d, cfg_map_key_line(d->root, "static_backends"),
                        "static_backends", "with static_models as a map, "
                        "give each model's backends as "
                        "static_models.NAME.static_backends");
        if (!no_items(vt))
            return derr(d, cfg_map_key_line(d->root, "static_model_types"),
                        "static_model_types", "with static_models as a map, "
                        "give each model's type as "
                        "static_models.NAME.static_model_type");
        return models_map(d, vm);
    }
    if (no_items(vb) && no_items(vm)) {
        if (!no_items(vt))
            return derr(d, cfg_map_key_line(d->root, "static_model_types"),
                        "static_model_types", "needs static_backends and "
                        "static_models (one type per backend)");
        return 0;
    }
    if (no_items(vm))
        return derr(d, cfg_map_key_line(d->root, "static_backends"),
                    "static_backends", "needs static_models (the model each "
                    "backend serves)");
    if (no_items(vb))
        return derr(d, cfg_map_key_line(d->root, "static_models"),
                    "static_models", "needs static_backends (one model per "
                    "backend), or write static_models as a map of model to "
                    "its static_backends");
    return models_positional(d, vb, vm, vt);
}

/* ---- aliases and fallbacks ---- */

static int set_alias(struct dyn *d, const char *alias, const char *model,
                     int line)
{
    const char *key = "static_aliases";
    for (size_t i = 0; i < d->aliases.n; i++)
        if (strcmp(d->aliases.v[i].text, alias) == 0)
            return derr(d, line, key, "alias '%s' is given twice (first at "
                        "line %d)", alias, d->aliases.v[i].line);
    if (!config_model_name_ok(alias))
        return derr(d, line, key, "bad alias name '%s'", alias);
    if (items_add(&d->aliases, alias, strlen(alias), line) < 0)
        return oom(d, line, key);
    struct alias_cfg *a = config_find_alias(d->cfg, alias);
    if (a) {
        /* This file overrides the file's or the flags' alias. */
        char *copy = strdup(model);
        if (!copy)
            return oom(d, line, key);
        free(a->model);
        a->model = copy;
        a->line = line;
        return 0;
    }
    return config_add_alias(d->cfg, alias, model, line) < 0
        ? oom(d, line, key) : 0;
}

static int apply_aliases(struct dyn *d)
{
    const char *key = "static_aliases";
    const struct cfg_node *v = cfg_map_get(d->root, key);
    struct items items;

    if (unset(v))
        return 0;
    if (v->kind == CFG_MAP) {
        for (size_t i = 0; i < v->n; i++) {
            const char *model = NULL;
            char path[300];
            snprintf(path, sizeof path, "%s.%s", key, v->keys[i]);
            if (get_scalar(d, v->vals[i], path, &model) < 0)
                return -1;
            if (!*model)
                return derr(d, v->key_lines[i], path, "expected a model name");
            if (set_alias(d, v->keys[i], model, v->key_lines[i]) < 0)
                return -1;
        }
        return 0;
    }
    if (get_items(d, v, key, &items) < 0)
        return -1;
    for (size_t i = 0; i < items.n; i++) {
        const char *alias = NULL, *model = NULL;
        if (split_pair(d, key, "ALIAS:MODEL or ALIAS=MODEL", &items.v[i],
                       &alias, &model) < 0 ||
            set_alias(d, alias, model, items.v[i].line) < 0) {
            items_free(&items);
            return -1;
        }
    }
    items_free(&items);
    return 0;
}

/* static_fallback_models: "M:F,..." (or M=F), a list of them, or a map. */
static int fallback_one(struct dyn *d, const char *name, const char *target,
                        int line)
{
    const char *key = "static_fallback_models";
    struct model_cfg *m = config_find_model(d->cfg, name);
    struct alias_cfg *a = m ? NULL : config_find_alias(d->cfg, name);
    if (a)
        m = config_find_model(d->cfg, a->model);
    if (!m)
        return derr(d, line, key, "unknown model '%s'", name);
    for (size_t i = 0; i < d->nfbs; i++) {
        if (&d->cfg->models[d->fbs[i].model] != m)
            continue;
        if (d->fbs[i].from_map)
            return derr(d, line, key, "model '%s' already has a "
                        "fallback_model (line %d)", m->name, d->fbs[i].line);
        return derr(d, line, key, "model '%s' is given twice (first at line "
                    "%d)", m->name, d->fbs[i].line);
    }
    return set_fallback(d, m, key, target, line, 0);
}

static int apply_fallbacks(struct dyn *d)
{
    const char *key = "static_fallback_models";
    const struct cfg_node *v = cfg_map_get(d->root, key);
    struct items items = {0};
    int rc = -1;

    if (unset(v))
        return 0;
    if (v->kind == CFG_MAP) {
        for (size_t i = 0; i < v->n; i++) {
            const char *target = NULL;
            char path[300];
            snprintf(path, sizeof path, "%s.%s", key, v->keys[i]);
            if (get_scalar(d, v->vals[i], path, &target) < 0)
                return -1;
            if (!*target)
                return derr(d, v->key_lines[i], path, "expected a model name");
            if (fallback_one(d, v->keys[i], target, v->key_lines[i]) < 0)
                return -1;
        }
        return 0;
    }
    if (get_items(d, v, key, &items) < 0)
        return -1;
    for (size_t i = 0; i < items.n; i++) {
        const char *name = NULL, *target = NULL;
        if (split_pair(d, key, "MODEL:FALLBACK or MODEL=FALLBACK",
                       &items.v[i], &name, &target) < 0 ||
            fallback_one(d, name, target, items.v[i].line) < 0)
            goto out;
    }
    rc = 0;
out:
    items_free(&items);
    return rc;
}

/* What config_finish would check about what this file set. */
static int check_set(struct dyn *d)
{
    struct sy_cfg *cfg = d->cfg;
    char key[300];

    for (size_t i = 0; i < d->aliases.n; i++) {
        const struct alias_cfg *a = config_find_alias(cfg, d->aliases.v[i].text);
        int line = d->aliases.v[i].line;
        if (!a)
            continue;
        if (config_find_model(cfg, a->alias))
            return derr(d, line, "static_aliases", "alias '%s' is also the "
                        "name of a model", a->alias);
        if (!config_find_model(cfg, a->model))
            return derr(d, line, "static_aliases", "alias '%s' names unknown "
                        "model '%s'", a->alias, a->model);
    }
    for (size_t i = 0; i < d->nfbs; i++) {
        const struct model_cfg *m = &cfg->models[d->fbs[i].model];
        const char *target = m->fallback_model;
        const struct alias_cfg *a = NULL;
        if (d->fbs[i].from_map)
            snprintf(key, sizeof key, "static_models.%s.fallback_model",
                     m->name);
        else
            snprintf(key, sizeof key, "static_fallback_models");
        if (!config_find_model(cfg, target) && (a = config_find_alias(cfg, target)))
            target = a->model;
        if (!config_find_model(cfg, target))
            return derr(d, d->fbs[i].line, key, "model '%s' falls back to "
                        "unknown model '%s'", m->name, m->fallback_model);
        if (strcmp(target, m->name) == 0)
            return derr(d, d->fbs[i].line, key, "model '%s' falls back to "
                        "itself%s%s%s", m->name, a ? " (through alias '" : "",
                        a ? a->alias : "", a ? "')" : "");
    }
    return 0;
}

/* ---- plugin settings ---- */


/* plugin_config.PLUGIN.KEY = value, remembered as written at this file's
 * line so a plugin's complaint names it. */
static int plugin_option(struct dyn *d, const char *what, int line,
                         const char *plugin, const char *key,
                         const char *value)
{
    struct cfg_node *pc = config_own_plugin_config(d->cfg, d->file), *section = NULL;
    for (size_t i = 0; pc && i < pc->n; i++)
        if (strcmp(pc->keys[i], plugin) == 0 && pc->vals[i]->kind == CFG_MAP)
            section = pc->vals[i];
    if (pc && !section) {
        section = cfg_node_new(CFG_MAP, d->file, line);
        if (cfg_map_set(pc, plugin, section) < 0)
            section = NULL;
    }
    if (!section ||
        cfg_map_set(section, key, cfg_node_new_scalar(value, d->file, line)) < 0)
        return oom(d, line, what);
    return 0;
}

/* ---- flat settings ---- */

static int apply_discovery(struct dyn *d)
{
    const char *key = "service_discovery", *s = NULL;
    const struct cfg_node *v = cfg_map_get(d->root, key);
    if (unset(v))
        return 0;
    if (get_scalar(d, v, key, &s) < 0)
        return -1;
    if (strcmp(s, "static") != 0)
        return derr(d, v->line, key, "only 'static' is supported, got '%s'", s);
    return 0;
}

static int apply_routing(struct dyn *d)
{
    const char *key = "routing_logic", *s = NULL;
    const struct cfg_node *v = cfg_map_get(d->root, key);
    struct sy_cfg *cfg = d->cfg;
    if (unset(v))
        return 0;
    if (get_scalar(d, v, key, &s) < 0)
        return -1;
    if (!config_is_routing_logic(s))
        return derr(d, v->line, key, "expected " CONFIG_ROUTING_LOGICS ", got '%s'", s);
    if (config_set_routing_logic(cfg, s) < 0)
        return oom(d, v->line, key);
    return 0;
}

static int apply_session_key(struct dyn *d)
{
    const char *key = "session_key", *s = NULL;
    const struct cfg_node *v = cfg_map_get(d->root, key);
    if (unset(v))
        return 0;
    if (get_scalar(d, v, key, &s) < 0)
        return -1;
    return plugin_option(d, key, v->line, "session", "key", s);
}

static int apply_health(struct dyn *d)
{
    const char *key = "static_backend_health_checks", *s = NULL;
    const struct cfg_node *v = cfg_map_get(d->root, key);
    struct sy_cfg *cfg = d->cfg;
    int on;

    if (!unset(v)) {
        if (get_scalar(d, v, key, &s) < 0)
            return -1;
        if (cfg_parse_bool(s, &on) < 0)
            return derr(d, v->line, key, "expected true or false, got '%s'", s);
        size_t i = 0;
        while (i < cfg->health.n && strcmp(cfg->health.names[i], "http_probe"))
            i++;
        if (on) {
            if (i == cfg->health.n &&
                config_list_add(&cfg->health, "http_probe") < 0)
                return oom(d, v->line, key);
            /* as vllm_router: a tiny request of the model's type */
            if (plugin_option(d, key, v->line, "http_probe", "probe",
                              "inference") < 0)
                return -1;
        } else if (i < cfg->health.n) {
            /* false overrides the native file and the flags */
            free(cfg->health.names[i]);
            memmove(&cfg->health.names[i], &cfg->health.names[i + 1],
                    (cfg->health.n - i - 1) * sizeof *cfg->health.names);
            cfg->health.n--;
        }
    }

    key = "static_backend_health_check_interval";
    v = cfg_map_get(d->root, key);
    if (!unset(v)) {
        double secs;
        char text[64];
        if (get_scalar(d, v, key, &s) < 0)
            return -1;
        if (cfg_parse_seconds(s, &secs) < 0 || !(secs > 0))
            return derr(d, v->line, key, "expected seconds > 0 (such as 10 or "
                        "2.5), got '%s'", s);
        snprintf(text, sizeof text, "%.6f", secs);
        /* "2.500000" -> "2.5", "5.000000" -> "5" */
        char *end = text + strlen(text);
        while (end[-1] == '0')
            *--end = '\0';
        if (end[-1] == '.')
            end[-1] = '\0';
        if (plugin_option(d, key, v->line, "http_probe", "interval", text) < 0)
            return -1;
    }
    return 0;
}

static int apply_reroute(struct dyn *d)
{
    const char *key = "max_instance_failover_reroute_attempts", *s = NULL;
    const struct cfg_node *v = cfg_map_get(d->root, key);
    char *end;
    if (unset(v))
        return 0;
    if (get_scalar(d, v, key, &s) < 0)
        return -1;
    errno = 0;
    long n = strtol(s, &end, 10);
    if (!strchr("-0123456789", *s) || *end || errno || n < 0 ||
        n > MAX_REROUTE)
        return derr(d, v->line, key, "expected a whole number 0..%d, got '%s'",
                    MAX_REROUTE, s);
    d->cfg->reroute_attempts = (int)n;
    return 0;
}

/* ---- the whole file ---- */

static void warn_unknown(const struct dyn *d)
{
    for (size_t i = 0; i < d->root->n; i++) {
        const char *k = d->root->keys[i];
        if (in_list(known_keys, k))
            continue;
        if (in_list(ignored_keys, k) && unset(d->root->vals[i]))
            continue; /* null, as vllm_router's JSON dumps write them */
        if (in_list(ignored_keys, k))
            log_msg(SY_LOG_WARNING, "%s:%d: %s: not supported by switchyard, "
                    "ignored", d->file, d->root->key_lines[i], k);
        else
            log_msg(SY_LOG_WARNING, "%s:%d: %s: unknown setting, ignored",
                    d->file, d->root->key_lines[i], k);
    }
}

/* Takes ownership of tree (it goes to cfg->dyn_tree, also on failure). */
static int apply_tree(struct cfg_node *tree, const char *path,
                      struct sy_cfg *cfg, char *err, size_t errlen)
{
    struct dyn d = {.cfg = cfg, .root = tree, .file = tree->file, .err = err,
                    .errlen = errlen};
    int rc = -1;

    if (cfg->dyn_tree) {
        snprintf(err, errlen, "%s: a dynamic config was applied already",
                 tree->file);
        cfg_tree_free(tree);
        return -1;
    }
    cfg->dyn_tree = tree;
    if (path) {
        char *copy = strdup(path);
        if (!copy) {
            snprintf(err, errlen, "%s: out of memory", path);
            return -1;
        }
        free(cfg->dynamic_config);
        cfg->dynamic_config = copy;
    }
    warn_unknown(&d);
    if (apply_discovery(&d) == 0 && apply_models(&d) == 0 &&
        apply_aliases(&d) == 0 && apply_fallbacks(&d) == 0 &&
        check_set(&d) == 0 && apply_routing(&d) == 0 &&
        apply_session_key(&d) == 0 && apply_health(&d) == 0 &&
        apply_reroute(&d) == 0)
        rc = 0;
    items_free(&d.aliases);
    free(d.fbs);
    return rc;
}

int dynconf_apply(const char *path, struct sy_cfg *cfg, char *err,
                  size_t errlen)
{
    struct cfg_node *tree;
    if (cfg_tree_load_file(path, &tree, err, errlen) < 0)
        return -1;
    return apply_tree(tree, path, cfg, err, errlen);
}

int dynconf_apply_string(const char *text, const char *name,
                         struct sy_cfg *cfg, char *err, size_t errlen)
{
    struct cfg_node *tree;
    if (cfg_tree_parse(text, strlen(text), name ? name : "<string>", &tree,
                       err, errlen) < 0)
        return -1;
    return apply_tree(tree, NULL, cfg, err, errlen);
}
