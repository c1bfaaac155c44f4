/*
 * vllm_settings: vllm_router's settings (static_backends, static_models,
 * routing_logic, ...), with vllm_router's meanings.  The same setters serve
 * its flags and production-stack's dynamic config (the table in settings.c
 * names each once); what either source sets is checked here, naming where
 * it was written, so config_finish has nothing left to say about it.
 *
 * A list is a comma-separated string ("a, b,c") or, in the dynamic config,
 * a YAML list; null there is vllm_router's None: not given.
 */
#define _POSIX_C_SOURCE 200809L /* strdup, strndup */
#include "settings.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct item {
    char *text;
    int line;
};

struct items {
    struct item *v;
    size_t n;
};

/* The same for a key that takes a list: [] too. */
static int no_items(const struct cfg_node *v)
{
    return setting_unset(v) || (v->kind == CFG_LIST && v->n == 0);
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
static int get_items(struct setter *st, const struct cfg_node *v,
                     const char *key, struct items *out)
{
    out->v = NULL;
    out->n = 0;
    if (setting_unset(v))
        return 0;
    if (v->kind == CFG_MAP)
        return setting_error(st, v->line, key, "expected a comma-separated "
                             "string or a list, got a map");
    size_t n = v->kind == CFG_LIST ? v->n : 1;
    for (size_t i = 0; i < n; i++) {
        const struct cfg_node *item = v->kind == CFG_LIST ? v->vals[i] : v;
        if (item->kind != CFG_SCALAR) {
            items_free(out);
            return setting_error(st, item->line, key, "expected a list of "
                                 "strings, got %s in it",
                                 setting_kind_name(item));
        }
        const char *s = item->scalar;
        for (const char *p = s;;) {
            size_t len = v->kind == CFG_LIST ? strlen(p) : strcspn(p, ",");
            const char *e = p + len, *b = trim(p, &e);
            if (b == e) {
                items_free(out);
                return setting_error(st, item->line, key, "empty item in '%s'", s);
            }
            if (items_add(out, b, (size_t)(e - b), item->line) < 0) {
                items_free(out);
                return setting_oom(st, item->line, key);
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
static int split_pair(struct setter *st, const char *key, const char *what,
                      struct item *it, const char **left, const char **right)
{
    char *sep = strchr(it->text, '=');
    if (!sep)
        sep = strrchr(it->text, ':');
    if (!sep || sep == it->text || !sep[1])
        return setting_error(st, it->line, key, "expected %s, got '%s'", what,
                             it->text);
    *sep = '\0';
    *left = it->text;
    *right = sep + 1;
    return 0;
}

/* One backend URL for model m (checked, not twice for one model). */
static int add_backend(struct setter *st, struct model_cfg *m, const char *key,
                       const struct item *u)
{
    char *url = NULL, why[128];
    if (config_parse_url(u->text, &url, why, sizeof why) < 0)
        return setting_error(st, u->line, key, "'%s': %s", u->text, why);
    for (size_t j = 0; j < m->nbackends; j++) {
        if (strcmp(m->backends[j].url, url) == 0) {
            setting_error(st, u->line, key, "'%s' is given twice for model '%s'",
                          url, m->name);
            free(url);
            return -1;
        }
    }
    int rc = config_add_backend(m, url, 1, NULL, u->line);
    free(url);
    return rc < 0 ? setting_oom(st, u->line, key) : 0;
}

static int set_type(struct setter *st, struct model_cfg *m, const char *key,
                    const char *type, int line)
{
    char *t = strdup(type);
    if (!t)
        return setting_oom(st, line, key);
    free(m->type);
    m->type = t;
    return 0;
}

/* ---- models ---- */

/* static_backends + static_models (+ static_model_types), positional: one
 * model (and type) per backend, names repeated for replicas.  The whole set
 * of models: the file's models and aliases are dropped. */
static int models_positional(struct setter *st, const struct cfg_node *vb,
                             const struct cfg_node *vm,
                             const struct cfg_node *vt, const struct cfg_node *vl)
{
    struct items urls = {0}, names = {0}, types = {0}, labels = {0};
    struct sy_cfg *cfg = st->cfg;
    int rc = -1;

    if (get_items(st, vb, "static_backends", &urls) < 0 ||
        get_items(st, vm, "static_models", &names) < 0 ||
        get_items(st, vt, "static_model_types", &types) < 0 ||
        get_items(st, vl, "static_model_labels", &labels) < 0)
        goto out;
    if (names.n != urls.n) {
        setting_error(st, vm->line, "static_models", "%zu model(s) for %zu "
                      "backend(s); give one model per backend, repeating a "
                      "name for replicas", names.n, urls.n);
        goto out;
    }
    if (!no_items(vt) && types.n != urls.n) {
        setting_error(st, vt->line, "static_model_types", "%zu type(s) for %zu "
                      "backend(s); give one type per backend", types.n, urls.n);
        goto out;
    }
    if (!no_items(vl) && labels.n != urls.n) {
        setting_error(st, vl->line, "static_model_labels", "%zu label(s) for %zu "
                      "backend(s); give one label per backend", labels.n, urls.n);
        goto out;
    }
    config_clear_models(cfg);
    for (size_t i = 0; i < urls.n; i++) {
        const struct item *type = types.n ? &types.v[i] : NULL;
        if (!config_model_name_ok(names.v[i].text)) {
            setting_error(st, names.v[i].line, "static_models",
                          "bad model name '%s'", names.v[i].text);
            goto out;
        }
        if (type && !config_model_type_ok(type->text)) {
            setting_error(st, type->line, "static_model_types", "unknown type "
                          "'%s' (expected " CONFIG_MODEL_TYPES_TEXT ")",
                          type->text);
            goto out;
        }
        struct model_cfg *m = config_find_model(cfg, names.v[i].text);
        if (!m && !(m = config_add_model(cfg, names.v[i].text,
                                         names.v[i].line))) {
            setting_oom(st, names.v[i].line, "static_models");
            goto out;
        }
        if (type && m->nbackends && strcmp(m->type, type->text) != 0) {
            setting_error(st, type->line, "static_model_types", "model '%s' is "
                          "given types '%s' and '%s'; replicas of one model "
                          "must agree", m->name, m->type, type->text);
            goto out;
        }
        if (type && set_type(st, m, "static_model_types", type->text,
                             type->line) < 0)
            goto out;
        if (add_backend(st, m, "static_backends", &urls.v[i]) < 0)
            goto out;
        if (labels.n > 0 && (m->backends[m->nbackends - 1].model_label =
                                 strdup(labels.v[i].text)) == NULL) {
            setting_oom(st, labels.v[i].line, "static_model_labels");
            goto out;
        }
    }
    rc = 0;
out:
    items_free(&urls);
    items_free(&names);
    items_free(&types);
    items_free(&labels);
    return rc;
}

static int mark_fallback(struct setter *st, size_t model, int line, int from_map)
{
    struct setting_fallback *f = realloc(st->fbs, (st->nfbs + 1) * sizeof *f);
    if (!f)
        return -1;
    st->fbs = f;
    st->fbs[st->nfbs++] = (struct setting_fallback){model, line, from_map};
    return 0;
}

static int set_fallback(struct setter *st, struct model_cfg *m, const char *key,
                        const char *target, int line, int from_map)
{
    char *copy = strdup(target);
    if (!copy || mark_fallback(st, (size_t)(m - st->cfg->models), line,
                               from_map) < 0) {
        free(copy);
        return setting_oom(st, line, key);
    }
    free(m->fallback_model);
    m->fallback_model = copy;
    m->fallback_line = line;
    return 0;
}

/* static_models as a map (the dynamic config): model -> {static_backends,
 * static_model_type, fallback_model}. */
static int models_map(struct setter *st, const struct cfg_node *v)
{
    struct sy_cfg *cfg = st->cfg;
    char path[300], kpath[400];

    if (v->n == 0)
        return setting_error(st, v->line, "static_models", "no models in the map");
    config_clear_models(cfg);
    for (size_t i = 0; i < v->n; i++) {
        const char *name = v->keys[i];
        const struct cfg_node *mv = v->vals[i];
        int line = v->key_lines[i];
        snprintf(path, sizeof path, "static_models.%s", name);
        if (!config_model_name_ok(name))
            return setting_error(st, line, path, "bad model name");
        if (!setting_unset(mv) && mv->kind != CFG_MAP)
            return setting_error(st, mv->line, path, "expected a map with "
                                 "static_backends (and static_model_type, "
                                 "fallback_model), got %s",
                                 setting_kind_name(mv));
        struct model_cfg *m = config_add_model(cfg, name, line);
        if (!m)
            return setting_oom(st, line, path);
        for (size_t k = 0; !setting_unset(mv) && k < mv->n; k++) {
            const char *key = mv->keys[k];
            const struct cfg_node *val = mv->vals[k];
            const char *s = NULL;
            snprintf(kpath, sizeof kpath, "%s.%s", path, key);
            if (strcmp(key, "static_backends") == 0) {
                struct items urls;
                if (get_items(st, val, kpath, &urls) < 0)
                    return -1;
                for (size_t j = 0; j < urls.n; j++) {
                    if (add_backend(st, m, kpath, &urls.v[j]) < 0) {
                        items_free(&urls);
                        return -1;
                    }
                }
                items_free(&urls);
            } else if (strcmp(key, "static_model_type") == 0) {
                if (setting_scalar(st, val, kpath, &s) < 0)
                    return -1;
                if (*s && !config_model_type_ok(s))
                    return setting_error(st, val->line, kpath, "expected "
                                         CONFIG_MODEL_TYPES_TEXT ", got '%s'",
                                         s);
                if (*s && set_type(st, m, kpath, s, val->line) < 0)
                    return -1;
            } else if (strcmp(key, "fallback_model") == 0) {
                if (setting_scalar(st, val, kpath, &s) < 0)
                    return -1;
                if (*s && set_fallback(st, m, kpath, s, mv->key_lines[k], 1) < 0)
                    return -1;
            } else {
                log_msg(SY_LOG_WARNING, "%s:%d: %s: unknown setting, ignored "
                        "(a model takes static_backends, static_model_type "
                        "and fallback_model)", st->file, mv->key_lines[k],
                        kpath);
            }
        }
        if (m->nbackends == 0)
            return setting_error(st, line, path, "model '%s' has no backends "
                                 "(give %s.static_backends)", name, path);
    }
    return 0;
}

/* The head of static_backends, static_models and static_model_types. */
int set_static_models(struct setter *st, const struct setting *row,
                      const struct cfg_node *vb)
{
    const struct cfg_node *vm = cfg_map_get(st->map, "static_models");
    const struct cfg_node *vt = cfg_map_get(st->map, "static_model_types");
    const struct cfg_node *vl = cfg_map_get(st->map, "static_model_labels");
    char n1[64], n2[64];
    (void)row;

    if (vm && vm->kind == CFG_MAP) {
        if (!no_items(vb))
            return setting_error(st, cfg_map_key_line(st->map, "static_backends"),
                                 "static_backends", "with static_models as a "
                                 "map, give each model's backends as "
                                 "static_models.NAME.static_backends");
        if (!no_items(vt))
            return setting_error(st, cfg_map_key_line(st->map, "static_model_types"),
                                 "static_model_types", "with static_models as a "
                                 "map, give each model's type as "
                                 "static_models.NAME.static_model_type");
        if (!no_items(vl))
            return setting_error(st, cfg_map_key_line(st->map, "static_model_labels"),
                                 "static_model_labels", "goes with static_backends, one "
                                 "label per backend, not with static_models as a map");
        return models_map(st, vm);
    }
    if (no_items(vb) && no_items(vm)) {
        if (!no_items(vl))
            return setting_error(st, cfg_map_key_line(st->map, "static_model_labels"),
                                 "static_model_labels", "needs %s and %s (one "
                                 "label per backend)",
                                 setting_name(st, "static_backends", n1, sizeof n1),
                                 setting_name(st, "static_models", n2, sizeof n2));
        if (!no_items(vt))
            return setting_error(st, cfg_map_key_line(st->map, "static_model_types"),
                                 "static_model_types", "needs %s and %s (one "
                                 "type per backend)",
                                 setting_name(st, "static_backends", n1, sizeof n1),
                                 setting_name(st, "static_models", n2, sizeof n2));
        return 0;
    }
    if (no_items(vm))
        return setting_error(st, cfg_map_key_line(st->map, "static_backends"),
                             "static_backends", "needs %s (the model each "
                             "backend serves)",
                             setting_name(st, "static_models", n1, sizeof n1));
    if (no_items(vb))
        return setting_error(st, cfg_map_key_line(st->map, "static_models"),
                             "static_models", "needs %s (one model per "
                             "backend)%s",
                             setting_name(st, "static_backends", n1, sizeof n1),
                             st->src == SETTING_DYNAMIC
                                 ? ", or write static_models as a map of model "
                                   "to its static_backends" : "");
    return models_positional(st, vb, vm, vt, vl);
}

/* ---- aliases and fallbacks ---- */

static int set_alias(struct setter *st, const char *alias, const char *model,
                     int line)
{
    const char *key = "static_aliases";
    for (size_t i = 0; i < st->naliases; i++)
        if (strcmp(st->aliases[i], alias) == 0)
            return st->src == SETTING_FLAG
                ? setting_error(st, line, key, "alias '%s' is given twice", alias)
                : setting_error(st, line, key, "alias '%s' is given twice (first "
                                "at line %d)", alias, st->alias_lines[i]);
    if (!config_model_name_ok(alias))
        return setting_error(st, line, key, "bad alias name '%s'", alias);
    char **names = realloc(st->aliases, (st->naliases + 1) * sizeof *names);
    if (names)
        st->aliases = names;
    int *lines = names ? realloc(st->alias_lines, (st->naliases + 1) * sizeof *lines)
                       : NULL;
    if (lines)
        st->alias_lines = lines;
    if (!lines || !(names[st->naliases] = strdup(alias)))
        return setting_oom(st, line, key);
    lines[st->naliases++] = line;
    struct alias_cfg *a = config_find_alias(st->cfg, alias);
    if (a) {
        /* This source overrides an earlier one's alias of the same name. */
        char *copy = strdup(model);
        if (!copy)
            return setting_oom(st, line, key);
        free(a->model);
        a->model = copy;
        a->line = line;
        return 0;
    }
    return config_add_alias(st->cfg, alias, model, line) < 0
        ? setting_oom(st, line, key) : 0;
}

/* Pairs NAME -> MODEL, written as a map, or as "A:B" / "A=B" items of a
 * comma string or list: each to one(st, name, model, line). */
static int for_each_pair(struct setter *st, const char *key, const struct cfg_node *v,
                         const char *form,
                         int (*one)(struct setter *, const char *, const char *, int))
{
    struct items items;
    int rc = 0;

    if (v->kind == CFG_MAP) {
        for (size_t i = 0; i < v->n; i++) {
            const char *model = NULL;
            char path[300];
            snprintf(path, sizeof path, "%s.%s", key, v->keys[i]);
            if (setting_scalar(st, v->vals[i], path, &model) < 0)
                return -1;
            if (!*model)
                return setting_error(st, v->key_lines[i], path, "expected a model name");
            if (one(st, v->keys[i], model, v->key_lines[i]) < 0)
                return -1;
        }
        return 0;
    }
    if (get_items(st, v, key, &items) < 0)
        return -1;
    for (size_t i = 0; i < items.n && rc == 0; i++) {
        const char *name = NULL, *model = NULL;
        rc = split_pair(st, key, form, &items.v[i], &name, &model) < 0 ||
                     one(st, name, model, items.v[i].line) < 0
                 ? -1 : 0;
    }
    items_free(&items);
    return rc;
}

int set_static_aliases(struct setter *st, const struct setting *row,
                       const struct cfg_node *v)
{
    return for_each_pair(st, row->key, v, "ALIAS:MODEL or ALIAS=MODEL", set_alias);
}

/* static_fallback_models: "M:F,..." (or M=F), a list of them, or a map. */
static int fallback_one(struct setter *st, const char *name, const char *target,
                        int line)
{
    const char *key = "static_fallback_models";
    struct model_cfg *m = config_find_model(st->cfg, name);
    struct alias_cfg *a = m ? NULL : config_find_alias(st->cfg, name);
    if (a)
        m = config_find_model(st->cfg, a->model);
    /* with discovery, the model may be discovered later: written down now,
     * without backends, it gives its fallback to the discovered ones */
    if (!m && st->cfg->discovery.n > 0 && config_model_name_ok(name) &&
        !(m = config_add_model(st->cfg, name, line)))
        return setting_oom(st, line, key);
    if (!m && st->src == SETTING_FLAG)
        return setting_error(st, line, key, "unknown model '%s' (not in %s)", name,
                             cfg_map_get(st->map, "static_backends")
                                 ? "--static-models" : "the config file's models");
    if (!m)
        return setting_error(st, line, key, "unknown model '%s'", name);
    for (size_t i = 0; i < st->nfbs; i++) {
        if (&st->cfg->models[st->fbs[i].model] != m)
            continue;
        if (st->fbs[i].from_map)
            return setting_error(st, line, key, "model '%s' already has a "
                                 "fallback_model (line %d)", m->name,
                                 st->fbs[i].line);
        if (st->src == SETTING_FLAG)
            return setting_error(st, line, key, "model '%s' is given twice",
                                 m->name);
        return setting_error(st, line, key, "model '%s' is given twice (first "
                             "at line %d)", m->name, st->fbs[i].line);
    }
    return set_fallback(st, m, key, target, line, 0);
}

int set_static_fallbacks(struct setter *st, const struct setting *row,
                         const struct cfg_node *v)
{
    return for_each_pair(st, row->key, v, "MODEL:FALLBACK or MODEL=FALLBACK", fallback_one);
}

/* What config_finish would check about the aliases and fallbacks this
 * source set, named as this source wrote them. */
int vllm_settings_check(struct setter *st)
{
    struct sy_cfg *cfg = st->cfg;
    char key[300];

    for (size_t i = 0; i < st->naliases; i++) {
        const struct alias_cfg *a = config_find_alias(cfg, st->aliases[i]);
        int line = st->alias_lines[i];
        if (!a)
            continue;
        if (config_find_model(cfg, a->alias))
            return setting_error(st, line, "static_aliases", "alias '%s' is "
                                 "also the name of a model", a->alias);
        if (!config_find_model(cfg, a->model))
            return setting_error(st, line, "static_aliases", "alias '%s' names "
                                 "unknown model '%s'", a->alias, a->model);
    }
    for (size_t i = 0; i < st->nfbs; i++) {
        const struct model_cfg *m = &cfg->models[st->fbs[i].model];
        const char *target = m->fallback_model;
        const struct alias_cfg *a = NULL;
        if (st->fbs[i].from_map)
            snprintf(key, sizeof key, "static_models.%s.fallback_model", m->name);
        else
            snprintf(key, sizeof key, "static_fallback_models");
        if (!config_find_model(cfg, target) && (a = config_find_alias(cfg, target)))
            target = a->model;
        if (!config_find_model(cfg, target) && cfg->discovery.n > 0)
            continue; /* may be discovered: config_finish writes it down */
        if (!config_find_model(cfg, target))
            return setting_error(st, st->fbs[i].line, key, "model '%s' falls "
                                 "back to unknown model '%s'", m->name,
                                 m->fallback_model);
        if (strcmp(target, m->name) == 0)
            return setting_error(st, st->fbs[i].line, key, "model '%s' falls "
                                 "back to itself%s%s%s", m->name,
                                 a ? " (through alias '" : "", a ? a->alias : "",
                                 a ? "')" : "");
    }
    return 0;
}

/* ---- single values ---- */

int set_service_discovery(struct setter *st, const struct setting *row,
                          const struct cfg_node *v)
{
    const char *s = NULL;
    if (setting_scalar(st, v, row->key, &s) < 0)
        return -1;
    if (strcmp(s, "static") == 0)
        return 0;
    if (strcmp(s, "k8s") != 0)
        return setting_error(st, v->line, row->key, "expected static or k8s, "
                             "got '%s'", s);
    /* vllm_router's k8s discovery is the k8s plugin */
    for (size_t i = 0; i < st->cfg->discovery.n; i++)
        if (strcmp(st->cfg->discovery.names[i], "k8s") == 0)
            return 0;
    return config_list_add(&st->cfg->discovery, "k8s") < 0
        ? setting_oom(st, v->line, row->key) : 0;
}

/* --k8s-namespace and the others: plugin_config.k8s.KEY, KEY the flag's
 * name less its "k8s_" (vllm_router's flags, the k8s plugin's keys). */
int set_k8s_option(struct setter *st, const struct setting *row,
                   const struct cfg_node *v)
{
    const char *s = NULL;
    if (setting_scalar(st, v, row->key, &s) < 0)
        return -1;
    if (!*s)
        return setting_error(st, v->line, row->key, "empty value");
    return setting_plugin_option(st, v->line, row->key, "k8s",
                                 row->key + strlen("k8s_"), s);
}

int set_routing_logic(struct setter *st, const struct setting *row,
                      const struct cfg_node *v)
{
    const char *s = NULL;
    if (setting_scalar(st, v, row->key, &s) < 0)
        return -1;
    if (!config_is_routing_logic(s))
        return setting_error(st, v->line, row->key,
                             "expected " CONFIG_ROUTING_LOGICS ", got '%s'", s);
    if (config_routing_stand_in(s) != NULL) {
        char name[64];
        log_msg(SY_LOG_WARNING, "%s: %s: '%s' has no plugin in switchyard yet: %s serves "
                "instead", st->file, setting_name(st, row->key, name, sizeof name), s,
                config_routing_stand_in(s));
    }
    if (config_set_routing_logic(st->cfg, s) < 0)
        return setting_oom(st, v->line, row->key);
    return 0;
}

int set_session_key(struct setter *st, const struct setting *row,
                    const struct cfg_node *v)
{
    const char *s = NULL;
    if (setting_scalar(st, v, row->key, &s) < 0)
        return -1;
    if (!*s)
        return setting_error(st, v->line, row->key, "empty value");
    return setting_plugin_option(st, v->line, row->key, "session", "key", s);
}

/* --prefix-min-match-length N: prefixaware's threshold, in bytes (as
 * vllm_router's, in characters of its 128-character chunks); 0: none. */
int set_prefix_min_match(struct setter *st, const struct setting *row, const struct cfg_node *v)
{
    const char *s = NULL;
    char *end;
    long n;

    if (setting_scalar(st, v, row->key, &s) < 0)
        return -1;
    errno = 0;
    n = strtol(s, &end, 10);
    if (!*s || *end || errno != 0 || n < 0 || n > 100000000)
        return setting_error(st, v->line, row->key,
                             "expected a whole number from 0 to 100000000, got '%s'", s);
    return setting_plugin_option(st, v->line, row->key, "prefixaware", "min_match_length", s);
}

/* --root-path: where a front proxy mounts the router ("/llm"); "" or "/"
 * is none.  Kept without its trailing '/'. */
int set_root_path(struct setter *st, const struct setting *row, const struct cfg_node *v)
{
    const char *s = NULL;
    size_t n;
    char *copy;

    if (setting_scalar(st, v, row->key, &s) < 0)
        return -1;
    n = strlen(s);
    while (n > 0 && s[n - 1] == '/')
        n--;
    if (n > 0 && s[0] != '/')
        return setting_error(st, v->line, row->key, "expected a path such as /llm, got '%s'", s);
    for (size_t i = 0; i < n; i++)
        if (s[i] == '?' || s[i] == '#' || (unsigned char)s[i] <= ' ' || s[i] == 0x7f)
            return setting_error(st, v->line, row->key,
                                 "expected a path such as /llm, got '%s'", s);
    free(st->cfg->root_path);
    st->cfg->root_path = NULL;
    if (n == 0)
        return 0;
    if ((copy = strndup(s, n)) == NULL)
        return setting_error(st, v->line, row->key, "out of memory");
    st->cfg->root_path = copy;
    return 0;
}

int set_health_checks(struct setter *st, const struct setting *row,
                      const struct cfg_node *v)
{
    struct plugin_list *health = &st->cfg->health;
    const char *s = NULL;
    int on;

    if (setting_scalar(st, v, row->key, &s) < 0)
        return -1;
    if (cfg_parse_bool(s, &on) < 0)
        return setting_error(st, v->line, row->key,
                             "expected true or false, got '%s'", s);
    size_t i = 0;
    while (i < health->n && strcmp(health->names[i], "http_probe"))
        i++;
    if (on) {
        if (i == health->n && config_list_add(health, "http_probe") < 0)
            return setting_oom(st, v->line, row->key);
        /* as vllm_router: a tiny request of the model's type, not /health */
        return setting_plugin_option(st, v->line, row->key, "http_probe",
                                     "probe", "inference");
    }
    if (i < health->n) {
        /* false overrides the native file and the flags */
        free(health->names[i]);
        memmove(&health->names[i], &health->names[i + 1],
                (health->n - i - 1) * sizeof *health->names);
        health->n--;
    }
    return 0;
}

/* Seconds for http_probe as "%.6f" text less its trailing zeros; -1 and
 * an error out of 0.000001 .. 1000000000 (below a microsecond it would
 * read 0; huge values would not fit). */
static int probe_seconds(struct setter *st, const struct setting *row,
                         const struct cfg_node *v, char *text, size_t len)
{
    const char *s = NULL;
    double secs;

    if (setting_scalar(st, v, row->key, &s) < 0)
        return -1;
    if (cfg_parse_seconds(s, &secs) < 0 || !(secs > 0))
        return setting_error(st, v->line, row->key, "expected seconds > 0 "
                             "(such as 10 or 2.5), got '%s'", s);
    if (secs < 1e-6 || secs > 1e9)
        return setting_error(st, v->line, row->key, "expected 0.000001 to "
                             "1000000000 seconds, got '%s'", s);
    snprintf(text, len, "%.6f", secs);
    /* "2.500000" -> "2.5", "5.000000" -> "5" */
    char *end = text + strlen(text);
    while (end[-1] == '0')
        *--end = '\0';
    if (end[-1] == '.')
        end[-1] = '\0';
    return 0;
}

/* vllm_router's two names for a probe's timeout: http_probe's. */
int set_health_timeout(struct setter *st, const struct setting *row,
                       const struct cfg_node *v)
{
    char text[64];
    if (probe_seconds(st, row, v, text, sizeof text) < 0)
        return -1;
    return setting_plugin_option(st, v->line, row->key, "http_probe", "timeout", text);
}

int set_health_interval(struct setter *st, const struct setting *row,
                        const struct cfg_node *v)
{
    char text[64];
    if (probe_seconds(st, row, v, text, sizeof text) < 0)
        return -1;
    return setting_plugin_option(st, v->line, row->key, "http_probe", "interval", text);
}
