/*
 * settings: the table (settings.h says what a row is), the typed setters,
 * and the one applier behind the config file, the flags and the dynamic
 * config.
 */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include "settings.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define F SETTING_FILE
#define L SETTING_FLAG
#define D SETTING_DYNAMIC
#define OFF(field) offsetof(struct sy_cfg, field)
#define KiB 1024LL
#define MiB (1024LL * 1024)
#define GiB (1024LL * 1024 * 1024)

/* The order is the order of application, and of --help. */
const struct setting settings_table[] = {
    /* The native file's settings; the single values are flags too. */
    {"listen", F, SETTING_CUSTOM, .set = set_listen},
    {"host", F | L, SETTING_STRING, OFF(host), .def = SY_DEFAULT_HOST,
     .arg = "HOST", .help = "listen address"},
    {"port", F | L, SETTING_INT, OFF(port), 1, 65535, .def = "8001",
     .arg = "PORT", .help = "listen port"},
    {"workers", F | L, SETTING_INT, OFF(workers), 0, 256, .def = "0",
     .arg = "N", .help = "event-loop threads; 0: one per CPU"},
    {"log_level", F | L, SETTING_CUSTOM, .set = set_log_level, .def = "info",
     .arg = "LEVEL", .help = "debug, info, warning or error"},
    {"log_format", F | L, SETTING_CUSTOM, .set = set_log_format, .def = "text",
     .arg = "FORMAT", .help = "text or json"},
    {"log_file", F | L, SETTING_STRING, OFF(log_file), .arg = "FILE",
     .help = "log there instead of stderr (SIGUSR1 reopens\nit)"},
    {"access_log", F | L, SETTING_BOOL, OFF(access_log), .def = "true",
     .arg = "BOOL", .help = "one line per proxied request"},
    {"plugin_dir", F | L, SETTING_CUSTOM, .set = set_plugin_dir, .repeat = 1,
     .arg = "DIR", .help = "where plugins NAME.so are searched, before the\n"
                           "default directory; repeatable"},
    {"plugin_path", F, SETTING_CUSTOM, .set = set_plugin_dir},
    {"max_body_size", F | L, SETTING_SIZE, OFF(max_body), 1, INT64_MAX,
     .def = "32MiB", .arg = "SIZE", .help = "largest request body"},
    {"upstream_timeout", F | L, SETTING_SECONDS, OFF(upstream_timeout),
     .def = "300", .arg = "S",
     .help = "seconds an attempt may wait for the backend's\nresponse headers"},
    {"connect_timeout", F | L, SETTING_SECONDS, OFF(connect_timeout),
     .def = "10", .arg = "S", .help = "seconds to connect to a backend"},
    {"idle_timeout", F | L, SETTING_SECONDS, OFF(idle_timeout), .def = "120",
     .arg = "S", .help = "seconds between body bytes of an answer"},
    {"request_deadline", F | L, SETTING_SECONDS, OFF(request_deadline),
     .def = "600", .arg = "S",
     .help = "seconds a request may spend before an answer"},
    {"drain_timeout", F | L, SETTING_SECONDS, OFF(drain_timeout), .def = "30",
     .arg = "S", .help = "seconds SIGTERM waits for requests in flight"},
    {"reroute_attempts", F, SETTING_INT, OFF(reroute_attempts), 0, 100,
     .def = "2"},
    {"max_attempts", F | L, SETTING_INT, OFF(max_attempts), 1, 1000,
     .def = "8", .arg = "N", .help = "upstream attempts per request, all models"},
    {"max_fallback_depth", F | L, SETTING_INT, OFF(max_fallback_depth), 0, 16,
     .def = "4", .arg = "N", .help = "models tried after the one asked"},
    {"retry_after_cap", F | L, SETTING_SECONDS0, OFF(retry_after_cap),
     .def = "5", .arg = "S", .help = "longest Retry-After wait honoured"},
    {"upstream_max_connections", F | L, SETTING_LONG,
     OFF(upstream_max_connections), 1, 100000, .def = "256", .arg = "N",
     .help = "idle backend connections kept per worker"},
    {"client_timeout", F | L, SETTING_SECONDS, OFF(client_timeout),
     .def = "120", .arg = "S",
     .help = "seconds a client may stay silent or unread"},
    {"client_idle_timeout", F | L, SETTING_SECONDS, OFF(client_idle_timeout),
     .arg = "S", .help = "seconds of keep-alive idleness (default: the\n"
                         "client_timeout)"},
    {"client_request_timeout", F | L, SETTING_SECONDS,
     OFF(client_request_timeout), .def = "300", .arg = "S",
     .help = "seconds for a whole request, head and body"},
    {"stream_buffer_size", F | L, SETTING_SIZE, OFF(stream_buffer), 4 * KiB,
     GiB, .def = "256KiB", .arg = "SIZE",
     .help = "answer bytes held for a slow client"},
    {"max_header_size", F | L, SETTING_SIZE, OFF(max_header_size), KiB,
     16 * MiB, .def = "64KiB", .arg = "SIZE", .help = "bytes of a request's head"},
    {"max_headers", F | L, SETTING_INT, OFF(max_headers), 1, 10000,
     .def = "100", .arg = "N", .help = "header lines of a request"},
    {"max_inflight", F | L, SETTING_INT, OFF(max_inflight), 0, 10000000,
     .def = "0", .arg = "N", .help = "proxied requests at once; 0: no limit"},
    {"max_client_connections", F | L, SETTING_INT, OFF(max_client_connections),
     0, 10000000, .def = "0", .arg = "N",
     .help = "open client connections; 0: half the open-files\nlimit"},
    {"api_keys", F, SETTING_CUSTOM, .set = set_api_keys},
    {"api_keys_file", F | L, SETTING_STRING, OFF(api_keys_file), .arg = "FILE",
     .help = "client API keys, one a line; re-read on reload"},
    {"admin_listen", F | L, SETTING_CUSTOM, .set = set_admin_listen,
     .arg = "HOST:PORT", .help = "a second listener for /metrics and /engines"},
    {"ca_file", F | L, SETTING_STRING, OFF(ca_file), .arg = "FILE",
     .help = "CA bundle for https backends"},
    {"discovery", F, SETTING_CUSTOM, OFF(discovery), .set = set_plugin_list},
    {"routing", F, SETTING_CUSTOM, OFF(routing), .set = set_plugin_list},
    {"health", F, SETTING_CUSTOM, OFF(health), .set = set_plugin_list},
    {"fallback", F, SETTING_CUSTOM, OFF(fallback), .set = set_plugin_list},
    {"plugin_config", F, SETTING_CUSTOM, .set = set_plugin_config},
    {"models", F, SETTING_CUSTOM, .set = set_models},
    {"aliases", F, SETTING_CUSTOM, .set = set_aliases},

    /* vllm_router's settings, as flags and dynamic-config keys. */
    {"service_discovery", F | L | D, SETTING_CUSTOM, .set = set_service_discovery,
     .arg = "static|k8s", .help = "k8s: the backends are the Ready pods (or\n"
                                  "services) of --k8s-label-selector (the k8s\n"
                                  "plugin, discovery: [k8s])"},
    {"k8s_namespace", F | L | D, SETTING_CUSTOM, .set = set_k8s_option,
     .arg = "NS", .help = "where pods are watched (default: default)"},
    {"k8s_label_selector", F | L | D, SETTING_CUSTOM, .set = set_k8s_option,
     .arg = "SEL", .help = "which pods or services, e.g. app=vllm,env!=dev"},
    {"k8s_port", F | L | D, SETTING_CUSTOM, .set = set_k8s_option, .arg = "PORT",
     .help = "the engines' port on each pod (default 8000)"},
    {"k8s_service_discovery_type", F | L | D, SETTING_CUSTOM,
     .set = set_k8s_option, .arg = "TYPE",
     .help = "pod-ip or service-name (default pod-ip)"},
    {"k8s_watcher_timeout_seconds", F | L | D, SETTING_CUSTOM,
     .set = set_k8s_option, .arg = "S",
     .help = "each watch's timeoutSeconds, then a new one"},
    {"static_backends", L | D, SETTING_CUSTOM, .set = set_static_models,
     .always = 1, .arg = "U1,U2",
     .help = "backend base URLs (http:// or https://,\noptional path prefix; "
             "replaces the file's\nmodels)"},
    {"static_models", L | D, SETTING_GROUPED, .arg = "M1,M2",
     .help = "the model each backend serves, in the same\norder; repeat a name "
             "for replicas"},
    {"static_model_types", L | D, SETTING_GROUPED, .arg = "T1,T2",
     .help = "each backend's model type: chat, completion,\nembeddings, rerank, "
             "score, transcription,\nvision or messages"},
    {"static_model_labels", L | D, SETTING_GROUPED, .arg = "L1,L2",
     .help = "each backend's model label, in the same order\n(its label model_label=L in /engines)"},
    {"prefill_model_labels", F | L | D, SETTING_STRING, OFF(prefill_model_labels),
     .arg = "L1,L2", .help = "model labels of prefill engines (role=prefill)"},
    {"decode_model_labels", F | L | D, SETTING_STRING, OFF(decode_model_labels),
     .arg = "L1,L2", .help = "model labels of decode engines (role=decode)"},
    {"prefix_min_match_length", L | D, SETTING_CUSTOM, .set = set_prefix_min_match,
     .arg = "N", .help = "prefixaware reuses a backend for a shared\nprefix of at least N bytes "
                         "(plugin_config.\nprefixaware.min_match_length)"},
    {"static_aliases", L | D, SETTING_CUSTOM, .set = set_static_aliases,
     .arg = "A:M,...", .help = "alias A names model M"},
    {"static_fallback_models", L | D, SETTING_CUSTOM,
     .set = set_static_fallbacks, .arg = "M:F,...",
     .help = "model M falls back to model F; write M=F when\nnames contain ':'"},
    {"routing_logic", L | D, SETTING_CUSTOM, .set = set_routing_logic,
     .arg = "L", .help = "roundrobin, session, least_loaded or\nprefixaware"},
    {"session_key", L | D, SETTING_CUSTOM, .set = set_session_key, .arg = "K",
     .help = "header (or body field) for session affinity\n"
             "(plugin_config.session.key)"},
    {"static_backend_health_checks", L | D, SETTING_CUSTOM,
     .set = set_health_checks, .help = "turn on active health checks (http_probe)"},
    {"static_backend_health_check_interval", L | D, SETTING_CUSTOM,
     .set = set_health_interval, .arg = "S",
     .help = "seconds between probes; fractions allowed"},
    {"max_instance_failover_reroute_attempts", L | D, SETTING_INT,
     OFF(reroute_attempts), 0, 100, .arg = "N",
     .help = "extra attempts on other backends of the same\nmodel (default 2)"},
    {"backend_health_check_timeout_seconds", L | D, SETTING_CUSTOM,
     .set = set_health_timeout, .arg = "S",
     .help = "seconds a probe may take (http_probe's timeout)"},
    {"static_backend_health_check_timeout_seconds", L | D, SETTING_CUSTOM,
     .set = set_health_timeout, .arg = "S", .help = "the same"},
    {"otel_endpoint", F | L | D, SETTING_STRING, OFF(otel_endpoint), .arg = "URL",
     .help = "export a span per request and per attempt\nover OTLP/HTTP (JSON): host:port or a URL"},
    {"otel_service_name", F | L | D, SETTING_STRING, OFF(otel_service_name),
     .def = "switchyard", .arg = "NAME", .help = "the spans' service.name"},
    {"otel_secure", F | L | D, SETTING_BOOL, OFF(otel_secure), .def = "false",
     .help = "https to a host:port otel_endpoint"},
    {"root_path", F | L | D, SETTING_CUSTOM, .set = set_root_path, .arg = "PATH",
     .help = "served under this prefix too (a front proxy's\nmount point), e.g. /llm"},
    {"engine_stats_interval", F | L | D, SETTING_SECONDS0, OFF(engine_stats_interval),
     .def = "30", .arg = "S",
     .help = "seconds between scrapes of each engine's\n/metrics (its queue and cache); 0: off"},
    {"request_stats_window", F | L | D, SETTING_SECONDS, OFF(request_stats_window),
     .def = "60", .arg = "S",
     .help = "seconds of the sliding window of each\nbackend's request stats"},
    {"log_stats", F | L | D, SETTING_BOOL, OFF(log_stats), .def = "false",
     .help = "log each backend's engine and request stats"},
    {"log_stats_interval", F | L | D, SETTING_SECONDS, OFF(log_stats_interval),
     .def = "10", .arg = "S", .help = "seconds between those log lines"},
    /* vllm_router's flags whose features switchyard does not have yet, or
     * at all: each is accepted with a warning saying it has no effect, so
     * a deployment's command line starts (the Helm chart passes the stats
     * ones on every render) */
    {"kv_aware_threshold", L | D, SETTING_IGNORED, .arg = "N",
     .help = "accepted; no effect yet (kvaware)"},
    {"callbacks", L | D, SETTING_IGNORED, .arg = "MODULE",
     .help = "accepted; no effect (Python callbacks)"},
    {"request_rewriter", L | D, SETTING_IGNORED, .arg = "NAME",
     .help = "accepted; no effect"},
    {"enable_batch_api", L | D, SETTING_IGNORED, .help = "accepted; no effect (no batch API)"},
    {"file_storage_class", L | D, SETTING_IGNORED, .arg = "NAME",
     .help = "accepted; no effect"},
    {"file_storage_path", L | D, SETTING_IGNORED, .arg = "DIR",
     .help = "accepted; no effect"},
    {"batch_processor", L | D, SETTING_IGNORED, .arg = "NAME", .help = "accepted; no effect"},
    {"feature_gates", L | D, SETTING_IGNORED, .arg = "GATES", .help = "accepted; no effect"},
    {"sentry_dsn", L | D, SETTING_IGNORED, .arg = "DSN", .help = "accepted; no effect"},
    {"sentry_traces_sample_rate", L | D, SETTING_IGNORED, .arg = "R",
     .help = "accepted; no effect"},
    {"sentry_profile_session_sample_rate", L | D, SETTING_IGNORED, .arg = "R",
     .help = "accepted; no effect"},
    {"lmcache_controller_port", L | D, SETTING_IGNORED, .arg = "PORT",
     .help = "accepted; no effect (no LMCache controller)"},
    {"lmcache_health_check_interval", L | D, SETTING_IGNORED, .arg = "S",
     .help = "accepted; no effect"},
    {"lmcache_worker_timeout", L | D, SETTING_IGNORED, .arg = "S",
     .help = "accepted; no effect"},
    /* vllm_router's keys that switchyard has no use for */
    {.key = NULL},
};

/* ---- errors ---- */

int setting_error(const struct setter *st, int line, const char *key,
                  const char *fmt, ...)
{
    char name[128];
    va_list ap;
    int n = st->src == SETTING_FLAG
        ? snprintf(st->err, st->errlen, "%s: %s: ", st->file,
                   setting_name(st, key, name, sizeof name))
        : snprintf(st->err, st->errlen, "%s:%d: %s: ", st->file, line, key);
    if (n >= 0 && (size_t)n < st->errlen) {
        va_start(ap, fmt);
        vsnprintf(st->err + n, st->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int setting_oom(const struct setter *st, int line, const char *key)
{
    return setting_error(st, line, key, "out of memory");
}

const char *setting_name(const struct setter *st, const char *key, char *buf,
                         size_t len)
{
    if (st->src != SETTING_FLAG)
        return key;
    snprintf(buf, len, "--%s", key);
    for (char *p = buf; *p; p++)
        if (*p == '_')
            *p = '-';
    return buf;
}

const char *setting_kind_name(const struct cfg_node *v)
{
    switch (v->kind) {
    case CFG_MAP: return "a map";
    case CFG_LIST: return "a list";
    default: return "a single value";
    }
}

int setting_scalar(const struct setter *st, const struct cfg_node *v,
                   const char *key, const char **out)
{
    if (v->kind != CFG_SCALAR)
        return setting_error(st, v->line, key, "expected a single value, got %s",
                             setting_kind_name(v));
    *out = v->scalar;
    return 0;
}

int setting_unset(const struct cfg_node *v)
{
    return !v || (v->kind == CFG_SCALAR && !*v->scalar);
}

int setting_plugin_option(struct setter *st, int line, const char *what,
                          const char *plugin, const char *key,
                          const char *value)
{
    struct cfg_node *pc = config_own_plugin_config(st->cfg, st->file), *section = NULL;
    for (size_t i = 0; pc && i < pc->n; i++)
        if (strcmp(pc->keys[i], plugin) == 0 && pc->vals[i]->kind == CFG_MAP)
            section = pc->vals[i];
    if (pc && !section) {
        /* Absent, or "plugin:" with nothing under it: a new section. */
        section = cfg_node_new(CFG_MAP, st->file, line);
        if (cfg_map_set(pc, plugin, section) < 0)
            section = NULL;
    }
    if (!section ||
        cfg_map_set(section, key, cfg_node_new_scalar(value, st->file, line)) < 0)
        return setting_oom(st, line, what);
    return 0;
}

/* ---- typed rows ---- */

/* "64KiB", "16MiB", "1GiB", or bytes. */
static void size_text(long long n, char *buf, size_t len)
{
    static const char *const units[] = {"GiB", "MiB", "KiB"};
    long long scale = GiB;
    for (size_t i = 0; i < 3; i++, scale /= 1024)
        if (n >= scale && n % scale == 0) {
            snprintf(buf, len, "%lld%s", n / scale, units[i]);
            return;
        }
    snprintf(buf, len, "%lld", n);
}

static int set_typed(struct setter *st, const struct setting *row,
                     const struct cfg_node *v)
{
    char *field = (char *)st->cfg + row->offset;
    const char *s = NULL, *key = row->key;
    char lo[32], hi[32], *end;
    double d;
    size_t bytes;
    int b;

    if (setting_scalar(st, v, key, &s) < 0)
        return -1;
    switch (row->type) {
    case SETTING_INT:
    case SETTING_LONG: {
        errno = 0;
        long n = strtol(s, &end, 10);
        if (!*s || *end || errno || n < row->min || n > row->max ||
            !strchr("-0123456789", *s))
            return setting_error(st, v->line, key,
                                 "expected a whole number %lld..%lld, got '%s'",
                                 row->min, row->max, s);
        if (row->type == SETTING_INT)
            *(int *)field = (int)n;
        else
            *(long *)field = n;
        return 0;
    }
    case SETTING_SECONDS:
        if (cfg_parse_seconds(s, &d) < 0)
            return setting_error(st, v->line, key,
                                 "expected seconds such as 10, 2.5, 500ms, 5s, "
                                 "2m or 1h, got '%s'", s);
        if (d <= 0)
            return setting_error(st, v->line, key, "must be more than 0, got '%s'", s);
        *(double *)field = d;
        return 0;
    case SETTING_SECONDS0: /* 0 means never */
        if (cfg_parse_seconds(s, &d) < 0)
            return setting_error(st, v->line, key, "expected seconds such as 0, "
                                 "2.5, 500ms or 5s, got '%s'", s);
        *(double *)field = d;
        return 0;
    case SETTING_SIZE:
        if (row->min == 1 && row->max == INT64_MAX) {
            if (cfg_parse_bytes(s, &bytes) < 0)
                return setting_error(st, v->line, key, "expected a size such as "
                                     "1048576, 64KiB, 32MiB or 1GiB, got '%s'", s);
            if (bytes == 0)
                return setting_error(st, v->line, key, "must be more than 0");
        } else if (cfg_parse_bytes(s, &bytes) < 0 || bytes < (size_t)row->min ||
                   bytes > (size_t)row->max) {
            size_text(row->min, lo, sizeof lo);
            size_text(row->max, hi, sizeof hi);
            return setting_error(st, v->line, key,
                                 "expected a size from %s to %s, got '%s'", lo, hi, s);
        }
        *(size_t *)field = bytes;
        return 0;
    case SETTING_BOOL:
        if (cfg_parse_bool(s, &b) < 0)
            return setting_error(st, v->line, key, "expected true or false, got '%s'", s);
        *(int *)field = b;
        return 0;
    case SETTING_STRING: {
        if (!*s)
            return setting_error(st, v->line, key, "empty value");
        char *copy = strdup(s);
        if (!copy)
            return setting_oom(st, v->line, key);
        free(*(char **)field);
        *(char **)field = copy;
        return 0;
    }
    default:
        return 0;
    }
}

/* ---- applying ---- */

const struct setting *settings_find(const char *key, enum setting_source src)
{
    for (const struct setting *row = settings_table; row->key; row++)
        if ((row->where & src) && strcmp(row->key, key) == 0)
            return row;
    return NULL;
}

static int unknown_in_file(struct setter *st, const char *key, int line)
{
    char known[2048];
    size_t len = 0;
    for (const struct setting *row = settings_table; row->key; row++) {
        if (!(row->where & SETTING_FILE))
            continue;
        int n = snprintf(known + len, sizeof known - len, "%s%s",
                         len ? ", " : "", row->key);
        if (n < 0 || (size_t)n >= sizeof known - len)
            break;
        len += (size_t)n;
    }
    return setting_error(st, line, key, "unknown setting (expected one of: %s)",
                         known);
}

/* Unknown keys: the native file is the operator's own, so a typo is an
 * error; production-stack's file carries keys of vllm_router's that
 * switchyard has no use for, so those are a warning. */
static int check_keys(struct setter *st)
{
    char name[128];
    for (size_t i = 0; i < st->map->n; i++) {
        const char *k = st->map->keys[i];
        int line = st->map->key_lines[i];
        const struct setting *row = settings_find(k, st->src);
        if (!row && st->src == SETTING_FILE)
            return unknown_in_file(st, k, line);
        if (!row)
            log_msg(SY_LOG_WARNING, "%s:%d: %s: unknown setting, ignored",
                    st->file, line, k);
        else if (row->type == SETTING_IGNORED && !setting_unset(st->map->vals[i]) &&
                 st->src == SETTING_FLAG)
            log_msg(SY_LOG_WARNING, "command line: %s: accepted for vllm_router's sake, "
                    "no effect in switchyard", setting_name(st, k, name, sizeof name));
        else if (row->type == SETTING_IGNORED && !setting_unset(st->map->vals[i]))
            log_msg(SY_LOG_WARNING, "%s:%d: %s: not supported by switchyard, "
                    "ignored", st->file, line, k);
    }
    return 0;
}

static void marks_free(struct setter *st)
{
    for (size_t i = 0; i < st->naliases; i++)
        free(st->aliases[i]);
    free(st->aliases);
    free(st->alias_lines);
    free(st->fbs);
    st->aliases = NULL;
    st->alias_lines = NULL;
    st->fbs = NULL;
    st->naliases = st->nfbs = 0;
}

int settings_apply(struct setter *st)
{
    int rc = -1;
    if (check_keys(st) < 0)
        return -1;
    for (const struct setting *row = settings_table; row->key; row++) {
        if (!(row->where & st->src))
            continue;
        const struct cfg_node *v = cfg_map_get(st->map, row->key);
        /* the dynamic config writes vllm_router's None as null */
        if (st->src == SETTING_DYNAMIC && setting_unset(v))
            v = NULL;
        if ((!v && !row->always) || row->type == SETTING_GROUPED ||
            row->type == SETTING_IGNORED)
            continue;
        int r = row->type == SETTING_CUSTOM ? row->set(st, row, v)
                                            : set_typed(st, row, v);
        if (r < 0)
            goto out;
    }
    rc = st->naliases || st->nfbs ? vllm_settings_check(st) : 0;
out:
    marks_free(st);
    return rc;
}

int settings_defaults(struct sy_cfg *cfg)
{
    char err[256];
    struct setter st = {.cfg = cfg, .src = SETTING_FILE, .file = "default",
                        .err = err, .errlen = sizeof err};
    for (const struct setting *row = settings_table; row->key; row++) {
        if (!row->def)
            continue;
        struct cfg_node *v = cfg_node_new_scalar(row->def, "default", 0);
        int r = v ? (row->type == SETTING_CUSTOM ? row->set(&st, row, v)
                                                 : set_typed(&st, row, v))
                  : -1;
        cfg_tree_free(v);
        if (r < 0)
            return -1;
    }
    return 0;
}
