/*
 * cli: native flags plus vllm_router's static flags.  cli_parse only checks
 * each value on its own; cli_apply turns them into config, and config_finish
 * does the cross-checks, naming the flag for what came from here (line 0).
 */
#define _POSIX_C_SOURCE 200809L /* strdup, strndup, gmtime_r */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define CMDLINE "command line"

enum {
    OPT_CHECK_CONFIG = 256, /* above every char, so optopt tells them apart */
    OPT_VERSION,
    OPT_HOST,
    OPT_PORT,
    OPT_WORKERS,
    OPT_LOG_LEVEL,
    OPT_PLUGIN_DIR,
    OPT_UPSTREAM_TIMEOUT,
    OPT_REROUTE,
    OPT_STATIC_BACKENDS,
    OPT_STATIC_MODELS,
    OPT_STATIC_ALIASES,
    OPT_STATIC_TYPES,
    OPT_STATIC_FALLBACKS,
    OPT_ROUTING,
    OPT_SESSION_KEY,
    OPT_HEALTH_CHECKS,
    OPT_HEALTH_INTERVAL,
    OPT_DISCOVERY,
    OPT_LOG_FORMAT,
    OPT_LOG_FILE,
    OPT_DYNAMIC_CONFIG,
};

static const struct option long_opts[] = {
    {"config", required_argument, NULL, 'c'},
    {"check-config", no_argument, NULL, OPT_CHECK_CONFIG},
    {"version", no_argument, NULL, OPT_VERSION},
    {"help", no_argument, NULL, 'h'},
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"log-file", required_argument, NULL, OPT_LOG_FILE},
    {"plugin-dir", required_argument, NULL, OPT_PLUGIN_DIR},
    {"upstream-timeout", required_argument, NULL, OPT_UPSTREAM_TIMEOUT},
    {"max-instance-failover-reroute-attempts", required_argument, NULL,
     OPT_REROUTE},
    {"static-backends", required_argument, NULL, OPT_STATIC_BACKENDS},
    {"static-models", required_argument, NULL, OPT_STATIC_MODELS},
    {"static-aliases", required_argument, NULL, OPT_STATIC_ALIASES},
    {"static-model-types", required_argument, NULL, OPT_STATIC_TYPES},
    {"static-fallback-models", required_argument, NULL, OPT_STATIC_FALLBACKS},
    {"routing-logic", required_argument, NULL, OPT_ROUTING},
    {"session-key", required_argument, NULL, OPT_SESSION_KEY},
    {"static-backend-health-checks", no_argument, NULL, OPT_HEALTH_CHECKS},
    {"static-backend-health-check-interval", required_argument, NULL,
     OPT_HEALTH_INTERVAL},
    {"service-discovery", required_argument, NULL, OPT_DISCOVERY},
    {"dynamic-config-yaml", required_argument, NULL, OPT_DYNAMIC_CONFIG},
    /* vllm_router's JSON spelling: JSON is YAML too */
    {"dynamic-config-json", required_argument, NULL, OPT_DYNAMIC_CONFIG},
    {NULL, 0, NULL, 0},
};

static int fail(char *err, size_t errlen, const char *fmt, ...)
    SY_PRINTF(3, 4);

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static const char *flag_name(int val)
{
    for (const struct option *o = long_opts; o->name; o++)
        if (o->val == val)
            return o->name;
    return "?";
}

/* A whole decimal number in min..max, nothing else. */
static int parse_int(const char *s, long min, long max, int *out)
{
    char *end;
    if (!*s || !strchr("-0123456789", *s))
        return -1;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end || errno || v < min || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

/* Seconds > 0: "2.5", "500ms", "5s", "2m". */
static int parse_positive_seconds(const char *s, double *out)
{
    double v;
    if (cfg_parse_seconds(s, &v) < 0 || !(v > 0))
        return -1;
    *out = v;
    return 0;
}

static int one_value(struct cli_opts *o, int c, const char *arg, char *err,
                     size_t errlen)
{
    const char *flag = flag_name(c);
    int level;

    /* Only flags taking a value get here with arg set. */
    if (arg && !*arg)
        return fail(err, errlen, "--%s: empty value", flag);
    switch (c) {
    case 'c': o->config_path = arg; break;
    case OPT_HOST: o->host = arg; break;
    case OPT_PLUGIN_DIR:
        if (o->nplugin_dirs == (int)(sizeof o->plugin_dirs / sizeof o->plugin_dirs[0]))
            return fail(err, errlen, "--plugin-dir: at most %zu directories",
                        sizeof o->plugin_dirs / sizeof o->plugin_dirs[0]);
        if (strchr(arg, ':') != NULL)
            return fail(err, errlen, "--plugin-dir: a directory with ':' in its name cannot be searched, got '%s'", arg);
        o->plugin_dirs[o->nplugin_dirs++] = arg;
        break;
    case OPT_STATIC_BACKENDS: o->static_backends = arg; break;
    case OPT_STATIC_MODELS: o->static_models = arg; break;
    case OPT_STATIC_ALIASES: o->static_aliases = arg; break;
    case OPT_STATIC_TYPES: o->static_model_types = arg; break;
    case OPT_STATIC_FALLBACKS: o->static_fallback_models = arg; break;
    case OPT_SESSION_KEY: o->session_key = arg; break;
    case OPT_HEALTH_CHECKS: o->health_checks = 1; break;
    case OPT_DYNAMIC_CONFIG: o->dynamic_config = arg; break;
    case OPT_PORT:
        if (parse_int(arg, 1, 65535, &o->port) < 0)
            return fail(err, errlen,
                        "--port: expected a number 1..65535, got '%s'", arg);
        break;
    case OPT_WORKERS:
        if (parse_int(arg, 1, 256, &o->workers) < 0)
            return fail(err, errlen,
                        "--workers: expected a number 1..256, got '%s'", arg);
        break;
    case OPT_REROUTE:
        if (parse_int(arg, 0, 100, &o->reroute_attempts) < 0)
            return fail(err, errlen, "--%s: expected a number 0..100, got '%s'",
                        flag, arg);
        break;
    case OPT_LOG_LEVEL:
        if ((level = log_parse_level(arg)) < 0)
            return fail(err, errlen, "--log-level: expected debug, info, "
                                     "warning or error, got '%s'", arg);
        o->log_level = arg;
        break;
    case OPT_LOG_FORMAT:
        if (strcmp(arg, "text") != 0 && strcmp(arg, "json") != 0)
            return fail(err, errlen, "--log-format: expected text or json, got '%s'", arg);
        o->log_format = arg;
        break;
    case OPT_LOG_FILE:
        if (*arg == '\0')
            return fail(err, errlen, "--log-file: expected a file name");
        o->log_file = arg;
        break;
    case OPT_UPSTREAM_TIMEOUT:
        if (parse_positive_seconds(arg, &o->upstream_timeout) < 0)
            return fail(err, errlen, "--upstream-timeout: expected seconds "
                                     "> 0 (such as 300, 2.5 or 500ms), got '%s'",
                        arg);
        break;
    case OPT_HEALTH_INTERVAL:
        if (parse_positive_seconds(arg, &o->health_check_interval) < 0)
            return fail(err, errlen, "--%s: expected seconds > 0 (such as 10 "
                                     "or 2.5), got '%s'", flag, arg);
        /* cli_apply writes it for http_probe as "%.6f" text: below a
         * microsecond it would read 0, and huge values did not fit */
        if (o->health_check_interval < 1e-6 || o->health_check_interval > 1e9)
            return fail(err, errlen, "--%s: expected 0.000001 to 1000000000 "
                                     "seconds, got '%s'", flag, arg);
        break;
    case OPT_ROUTING:
        if (!config_is_routing_logic(arg))
            return fail(err, errlen, "--routing-logic: expected " CONFIG_ROUTING_LOGICS
                                     ", got '%s'", arg);
        o->routing_logic = arg;
        break;
    case OPT_DISCOVERY:
        if (strcmp(arg, "static") != 0)
            return fail(err, errlen, "--service-discovery: only 'static' is "
                                     "supported, got '%s'", arg);
        break;
    default:
        return fail(err, errlen, "--%s: not handled", flag);
    }
    return 0;
}

int cli_parse(int argc, char **argv, struct cli_opts *o, char *err,
              size_t errlen)
{
    int c, help = 0, version = 0, check = 0;

    memset(o, 0, sizeof *o);
    o->port = o->workers = o->reroute_attempts = -1;
    o->upstream_timeout = o->health_check_interval = -1;
    o->action = CLI_RUN;

    opterr = 0; /* our own messages, one line each */
    optind = 0; /* full reset, so tests can parse again */
    /* '+': no permuting of argv, stop at the first operand; ':': report a
     * missing value apart from an unknown flag. */
    while ((c = getopt_long(argc, argv, "+:c:h", long_opts, NULL)) != -1) {
        switch (c) {
        case 'h': help = 1; break;
        case OPT_VERSION: version = 1; break;
        case OPT_CHECK_CONFIG: check = 1; break;
        case ':':
            if (optopt == 'c' && optind > 0 && argv[optind - 1][1] == 'c')
                return fail(err, errlen, "-c: missing value (a config file)");
            return fail(err, errlen, "--%s: missing value", flag_name(optopt));
        case '?': {
            const char *arg = optind > 0 ? argv[optind - 1] : "";
            /* optopt is set for "--help=x" (a value given to a flag that
             * takes none) and for an unknown short flag. */
            if (optopt && strncmp(arg, "--", 2) == 0 && strchr(arg, '='))
                return fail(err, errlen, "--%s: takes no value",
                            flag_name(optopt));
            if (optopt)
                return fail(err, errlen, "unknown flag '-%c'", optopt);
            return fail(err, errlen, "unknown or ambiguous flag '%s'", arg);
        }
        default:
            if (one_value(o, c, optarg, err, errlen) < 0)
                return -1;
            break;
        }
    }
    if (optind < argc)
        return fail(err, errlen, "unexpected argument '%s'", argv[optind]);
    if (help)
        o->action = CLI_HELP;
    else if (version)
        o->action = CLI_VERSION;
    else if (check)
        o->action = CLI_CHECK_CONFIG;
    return 0;
}

/* ---- applying ---- */

struct strlist {
    char **v;
    size_t n;
};

static void strlist_free(struct strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* "a, b,c" -> {"a","b","c"}; an empty item is an error. */
static int split_list(const char *flag, const char *s, struct strlist *out,
                      char *err, size_t errlen)
{
    out->v = NULL;
    out->n = 0;
    for (const char *p = s;;) {
        size_t len = strcspn(p, ",");
        const char *b = p, *e = p + len;
        while (b < e && (*b == ' ' || *b == '\t'))
            b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (b == e) {
            strlist_free(out);
            return fail(err, errlen, "--%s: empty item in '%s'", flag, s);
        }
        char *item = strndup(b, (size_t)(e - b));
        char **v = item ? realloc(out->v, (out->n + 1) * sizeof *v) : NULL;
        if (!v) {
            free(item);
            strlist_free(out);
            return fail(err, errlen, "--%s: out of memory", flag);
        }
        out->v = v;
        out->v[out->n++] = item;
        if (!p[len])
            return 0;
        p += len + 1;
    }
}

/* "A:B" or "A=B": at the first '=' when there is one (names may contain
 * ':', as in org/m:v1=org/m:v2), else at the last ':'. */
static int split_pair(const char *flag, const char *what, char *item,
                      const char **left, const char **right, char *err,
                      size_t errlen)
{
    char *sep = strchr(item, '=');
    if (!sep)
        sep = strrchr(item, ':');
    if (!sep || sep == item || !sep[1])
        return fail(err, errlen, "--%s: expected %s, got '%s'", flag, what,
                    item);
    *sep = '\0';
    *left = item;
    *right = sep + 1;
    return 0;
}

/* --static-backends with --static-models (and --static-model-types): the
 * whole set of models, replacing the file's models and aliases. */
static int apply_static_models(const struct cli_opts *o, struct sy_cfg *cfg,
                               char *err, size_t errlen)
{
    struct strlist urls = {0}, names = {0}, types = {0};
    char why[128];
    int rc = -1;

    if (!o->static_models)
        return fail(err, errlen, "--static-models: required with "
                                 "--static-backends (the model each backend "
                                 "serves)");
    if (split_list("static-backends", o->static_backends, &urls, err,
                   errlen) < 0 ||
        split_list("static-models", o->static_models, &names, err, errlen) < 0)
        goto out;
    if (names.n != urls.n) {
        fail(err, errlen, "--static-models: %zu model(s) for %zu backend(s); "
                          "give one model per backend, repeating a name for "
                          "replicas", names.n, urls.n);
        goto out;
    }
    if (o->static_model_types) {
        if (split_list("static-model-types", o->static_model_types, &types,
                       err, errlen) < 0)
            goto out;
        if (types.n != urls.n) {
            fail(err, errlen, "--static-model-types: %zu type(s) for %zu "
                              "backend(s); give one type per backend",
                 types.n, urls.n);
            goto out;
        }
    }
    config_clear_models(cfg);
    for (size_t i = 0; i < urls.n; i++) {
        char *url = NULL;
        const char *type = types.n ? types.v[i] : NULL;
        if (type && !config_model_type_ok(type)) {
            fail(err, errlen, "--static-model-types: unknown type '%s' "
                              "(expected chat, completion, embeddings, rerank "
                              "or score)", type);
            goto out;
        }
        if (config_parse_url(urls.v[i], &url, why, sizeof why) < 0) {
            fail(err, errlen, "--static-backends: '%s': %s", urls.v[i], why);
            goto out;
        }
        struct model_cfg *m = config_find_model(cfg, names.v[i]);
        if (!m && !(m = config_add_model(cfg, names.v[i], 0))) {
            free(url);
            fail(err, errlen, "--static-models: out of memory");
            goto out;
        }
        if (type && m->nbackends && strcmp(m->type, type) != 0) {
            fail(err, errlen, "--static-model-types: model '%s' is given "
                              "types '%s' and '%s'; replicas of one model "
                              "must agree", m->name, m->type, type);
            free(url);
            goto out;
        }
        if (type) {
            char *t = strdup(type);
            if (!t) {
                free(url);
                fail(err, errlen, "--static-model-types: out of memory");
                goto out;
            }
            free(m->type);
            m->type = t;
        }
        for (size_t j = 0; j < m->nbackends; j++) {
            if (strcmp(m->backends[j].url, url) == 0) {
                fail(err, errlen, "--static-backends: '%s' is given twice for "
                                  "model '%s'", url, m->name);
                free(url);
                goto out;
            }
        }
        int added = config_add_backend(m, url, 1, NULL, 0);
        free(url);
        if (added < 0) {
            fail(err, errlen, "--static-backends: out of memory");
            goto out;
        }
    }
    rc = 0;
out:
    strlist_free(&urls);
    strlist_free(&names);
    strlist_free(&types);
    return rc;
}

static int apply_aliases(const char *arg, struct sy_cfg *cfg, char *err,
                         size_t errlen)
{
    struct strlist items = {0};
    size_t first = cfg->naliases; /* aliases before this came from the file */
    int rc = -1;

    if (split_list("static-aliases", arg, &items, err, errlen) < 0)
        return -1;
    for (size_t i = 0; i < items.n; i++) {
        const char *alias = NULL, *model = NULL;
        if (split_pair("static-aliases", "ALIAS:MODEL or ALIAS=MODEL",
                       items.v[i], &alias, &model, err, errlen) < 0)
            goto out;
        struct alias_cfg *a = NULL;
        for (size_t j = 0; j < cfg->naliases && !a; j++)
            if (strcmp(cfg->aliases[j].alias, alias) == 0)
                a = &cfg->aliases[j];
        if (a && a >= cfg->aliases + first) {
            fail(err, errlen, "--static-aliases: alias '%s' is given twice",
                 alias);
            goto out;
        }
        if (a) {
            /* The flag overrides the file's alias of the same name. */
            char *copy = strdup(model);
            if (!copy)
                goto oom;
            free(a->model);
            a->model = copy;
            a->line = 0;
        } else if (config_add_alias(cfg, alias, model, 0) < 0) {
            goto oom;
        }
    }
    rc = 0;
    goto out;
oom:
    fail(err, errlen, "--static-aliases: out of memory");
out:
    strlist_free(&items);
    return rc;
}

static int apply_fallbacks(const char *arg, struct sy_cfg *cfg, int from_flags,
                           char *err, size_t errlen)
{
    struct strlist items = {0};
    int rc = -1;

    if (split_list("static-fallback-models", arg, &items, err, errlen) < 0)
        return -1;
    for (size_t i = 0; i < items.n; i++) {
        const char *name = NULL, *target = NULL;
        if (split_pair("static-fallback-models", "MODEL:FALLBACK or "
                       "MODEL=FALLBACK", items.v[i], &name, &target, err,
                       errlen) < 0)
            goto out;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(items.v[j], name) == 0) {
                fail(err, errlen, "--static-fallback-models: model '%s' is "
                                  "given twice", name);
                goto out;
            }
        }
        struct model_cfg *m = config_find_model(cfg, name);
        for (size_t j = 0; !m && j < cfg->naliases; j++)
            if (strcmp(cfg->aliases[j].alias, name) == 0)
                m = config_find_model(cfg, cfg->aliases[j].model);
        if (!m) {
            fail(err, errlen, "--static-fallback-models: unknown model '%s' "
                              "(not in %s)", name,
                 from_flags ? "--static-models" : "the config file's models");
            goto out;
        }
        char *copy = strdup(target);
        if (!copy) {
            fail(err, errlen, "--static-fallback-models: out of memory");
            goto out;
        }
        free(m->fallback_model);
        m->fallback_model = copy;
        m->fallback_line = 0;
    }
    rc = 0;
out:
    strlist_free(&items);
    return rc;
}


static int set_plugin_option(struct sy_cfg *cfg, const char *flag,
                             const char *plugin, const char *key,
                             const char *value, char *err, size_t errlen)
{
    struct cfg_node *pc = config_own_plugin_config(cfg, CMDLINE), *section = NULL;
    for (size_t i = 0; pc && i < pc->n; i++)
        if (strcmp(pc->keys[i], plugin) == 0 && pc->vals[i]->kind == CFG_MAP)
            section = pc->vals[i];
    if (pc && !section) {
        /* Absent, or "plugin:" with nothing under it: a new section. */
        section = cfg_node_new(CFG_MAP, CMDLINE, 0);
        if (cfg_map_set(pc, plugin, section) < 0)
            section = NULL;
    }
    if (!section ||
        cfg_map_set(section, key, cfg_node_new_scalar(value, CMDLINE, 0)) < 0)
        return fail(err, errlen, "--%s: out of memory", flag);
    return 0;
}

static int apply_plugins(const struct cli_opts *o, struct sy_cfg *cfg,
                         char *err, size_t errlen)
{
    if (o->routing_logic && config_set_routing_logic(cfg, o->routing_logic) < 0)
        return fail(err, errlen, "--routing-logic: out of memory");
    if (o->health_checks) {
        size_t i = 0;
        while (i < cfg->health.n && strcmp(cfg->health.names[i], "http_probe"))
            i++;
        if (i == cfg->health.n &&
            config_list_add(&cfg->health, "http_probe") < 0)
            return fail(err, errlen,
                        "--static-backend-health-checks: out of memory");
        /* as vllm_router: a tiny request of the model's type, not /health */
        if (set_plugin_option(cfg, "static-backend-health-checks", "http_probe",
                              "probe", "inference", err, errlen) < 0)
            return -1;
    }
    if (o->session_key &&
        set_plugin_option(cfg, "session-key", "session", "key", o->session_key,
                          err, errlen) < 0)
        return -1;
    if (o->health_check_interval >= 0) {
        char text[64];
        snprintf(text, sizeof text, "%.6f", o->health_check_interval);
        /* "2.500000" -> "2.5", "5.000000" -> "5" */
        char *end = text + strlen(text);
        while (end[-1] == '0')
            *--end = '\0';
        if (end[-1] == '.')
            end[-1] = '\0';
        if (set_plugin_option(cfg, "static-backend-health-check-interval",
                              "http_probe", "interval", text, err, errlen) < 0)
            return -1;
    }
    return 0;
}

int cli_apply(const struct cli_opts *o, struct sy_cfg *cfg, char *err,
              size_t errlen)
{
    if (o->host) {
        char *h = strdup(o->host);
        if (!h)
            return fail(err, errlen, "--host: out of memory");
        free(cfg->host);
        cfg->host = h;
    }
    if (o->nplugin_dirs > 0) { /* the flags' list replaces the file's */
        size_t len = 0;
        for (int i = 0; i < o->nplugin_dirs; i++)
            len += strlen(o->plugin_dirs[i]) + 1;
        char *d = malloc(len);
        if (!d)
            return fail(err, errlen, "--plugin-dir: out of memory");
        d[0] = '\0';
        for (int i = 0; i < o->nplugin_dirs; i++) {
            if (i > 0)
                strcat(d, ":");
            strcat(d, o->plugin_dirs[i]);
        }
        free(cfg->plugin_dir);
        cfg->plugin_dir = d;
    }
    if (o->port > 0)
        cfg->port = o->port;
    if (o->workers > 0)
        cfg->workers = o->workers;
    if (o->log_level) {
        int level = log_parse_level(o->log_level);
        if (level < 0)
            return fail(err, errlen, "--log-level: expected debug, info, "
                                     "warning or error, got '%s'",
                        o->log_level);
        cfg->log_level = level;
    }
    if (o->log_format)
        cfg->log_format = strcmp(o->log_format, "json") == 0 ? LOG_FORMAT_JSON : LOG_FORMAT_TEXT;
    if (o->log_file) {
        char *f = strdup(o->log_file);
        if (f == NULL)
            return fail(err, errlen, "--log-file: out of memory");
        free(cfg->log_file);
        cfg->log_file = f;
    }
    if (o->upstream_timeout > 0)
        cfg->upstream_timeout = o->upstream_timeout;
    if (o->reroute_attempts >= 0)
        cfg->reroute_attempts = o->reroute_attempts;

    if (o->static_backends) {
        if (apply_static_models(o, cfg, err, errlen) < 0)
            return -1;
    } else {
        if (o->static_models)
            return fail(err, errlen, "--static-models: needs --static-backends "
                                     "(one model per backend)");
        if (o->static_model_types)
            return fail(err, errlen, "--static-model-types: needs "
                                     "--static-backends (one type per backend)");
        const char *flag = o->static_aliases ? "--static-aliases"
                                             : "--static-fallback-models";
        if ((o->static_aliases || o->static_fallback_models) &&
            cfg->nmodels == 0)
            return fail(err, errlen, "%s: no models to apply it to: give "
                                     "--static-backends and --static-models, "
                                     "or a config file with models", flag);
    }
    if (o->static_aliases &&
        apply_aliases(o->static_aliases, cfg, err, errlen) < 0)
        return -1;
    if (o->static_fallback_models &&
        apply_fallbacks(o->static_fallback_models, cfg, o->static_backends != NULL,
                        err, errlen) < 0)
        return -1;
    return apply_plugins(o, cfg, err, errlen);
}

void cli_usage(FILE *out, const char *argv0)
{
    fprintf(out,
"Usage: %s [-c FILE] [--check-config] [OPTIONS]\n"
"An HTTP router for OpenAI-compatible LLM servers, with per-model fallback.\n"
"\n"
"  -c, --config FILE         YAML config file (default: the installed\n"
"                            switchyard.yaml, if it exists)\n"
"      --check-config        check the config and the command line, then exit\n"
"      --version             print the version and exit\n"
"  -h, --help                print this help and exit\n"
"\n"
"Settings (a flag overrides the config file):\n"
"      --host HOST           listen address (default " SY_DEFAULT_HOST ")\n"
"      --port PORT           listen port, 1..65535 (default %d)\n"
"      --workers N           event-loop threads, 1..256 (default: one per CPU)\n"
"      --log-level LEVEL     debug, info, warning or error (default info)\n"
"      --log-format FORMAT   text or json (default text)\n"
"      --log-file FILE       log there instead of stderr (SIGUSR1 reopens it)\n"
"      --plugin-dir DIR      where plugins NAME.so are searched, before the\n"
"                            default directory; repeatable\n"
"      --upstream-timeout S  seconds an attempt may wait for the backend's\n"
"                            response headers (default %g; fractions allowed)\n"
"      --max-instance-failover-reroute-attempts N\n"
"                            extra attempts on other backends of the same\n"
"                            model, 0..100 (default %d)\n"
"\n"
"Models and backends, as vllm_router's flags (--static-backends replaces\n"
"the config file's models and aliases):\n"
"      --static-backends U1,U2       backend base URLs (http:// or https://,\n"
"                                    optional path prefix)\n"
"      --static-models M1,M2         the model each backend serves, in the same\n"
"                                    order; repeat a name for replicas\n"
"      --static-model-types T1,T2    each backend's model type: chat,\n"
"                                    completion, embeddings, rerank or score\n"
"      --static-aliases A:M,...      alias A names model M\n"
"      --static-fallback-models M:F,...\n"
"                                    model M falls back to model F; write M=F\n"
"                                    when names contain ':'\n"
"      --routing-logic L             roundrobin, session, least_loaded or\n"
"                                    prefixaware\n"
"      --session-key K               header (or body field) for session\n"
"                                    affinity (plugin_config.session.key)\n"
"      --static-backend-health-checks\n"
"                                    turn on active health checks (http_probe)\n"
"      --static-backend-health-check-interval S\n"
"                                    seconds between probes; fractions allowed\n"
"      --service-discovery static    accepted for compatibility; only static\n"
"                                    is supported\n"
"      --dynamic-config-yaml FILE    production-stack's router config (flat\n"
"                                    keys as these flags, or static_models as\n"
"                                    a map with fallback_model); its keys\n"
"                                    override the flags and the config file\n"
"\n"
"Values: seconds as 10, 2.5, 500ms, 5s, 2m or 1h.  Both --flag VALUE and\n"
"--flag=VALUE work.  Errors exit with status 2.\n",
            argv0 ? argv0 : "switchyard", SY_DEFAULT_PORT,
            SY_DEFAULT_UPSTREAM_TIMEOUT, SY_DEFAULT_REROUTE_ATTEMPTS);
}
