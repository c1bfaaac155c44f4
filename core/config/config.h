/*
 * config: the router's settings, from the YAML file and the command line.
 *
 * The file is read into a cfg_tree (which keeps file:line for errors), then
 * into struct sy_cfg.  Command-line flags (cli.h) are applied on top, then
 * the whole is validated.  Plugin sections stay cfg_tree nodes: the core does
 * not know their keys, the plugin reads them through the host API.
 */
#ifndef SY_CONFIG_H
#define SY_CONFIG_H

#include <stddef.h>
#include "cfg_tree.h"

#define SY_DEFAULT_HOST "0.0.0.0"
/* Every other default is written once, in the settings table (settings.c). */

/* Model types, for health probes (vllm_router's ModelType). */
extern const char *const config_model_types[]; /* NULL-terminated */
/* config_model_types for error messages. */
#define CONFIG_MODEL_TYPES_TEXT \
    "chat, completion, embeddings, rerank, score, transcription, vision or messages"

struct backend_cfg {
    char *url;          /* base URL, no trailing slash */
    unsigned weight;    /* default 1 */
    char *api_key_env;  /* NULL: inherit the model's */
    char *model_label;  /* vllm_router's --static-model-labels, or NULL */
    int line;
};

struct model_cfg {
    char *name;
    struct backend_cfg *backends;
    size_t nbackends;
    char *type;           /* one of config_model_types; default "chat" */
    char *fallback_model; /* NULL when none */
    char *api_key_env;    /* NULL when none */
    int line;             /* where the model was declared; 0: command line */
    int fallback_line;    /* where fallback_model was written; 0: command line */
    const struct cfg_node *headers; /* extra upstream headers (a map), or NULL */
};

struct alias_cfg {
    char *alias;
    char *model;
    int line;             /* 0: from the command line */
};

struct plugin_list {
    char **names;
    size_t n;
    int line;            /* where written in the file; 0: not in the file */
};

struct sy_cfg {
    char *source;        /* the config file, or "command line" */
    char *host;
    int port;
    int workers;         /* 0: one per CPU */
    int log_level;       /* SY_LOG_* */
    char *plugin_dir;    /* plugin_path (or plugin_dir, or --plugin-dir):
                            directories joined by ':', searched before the
                            compiled-in default; NULL: that alone */
    size_t max_body;     /* bytes */
    double upstream_timeout; /* seconds to the response headers */
    double connect_timeout;  /* seconds */
    int reroute_attempts;    /* extra attempts on other backends */
    /* Retry and fallback limits (docs/fallback.md); set in config.c. */
    double idle_timeout;     /* seconds between body bytes of an answer */
    double request_deadline; /* seconds a request may spend before an answer */
    int max_attempts;        /* upstream attempts per request, all models */
    int max_fallback_depth;  /* models tried after the one asked */
    double retry_after_cap;  /* longest Retry-After wait honoured, seconds */
    long upstream_max_connections; /* idle connections kept per worker */
    double drain_timeout;    /* seconds SIGTERM waits for requests in flight */
    /* Logging */
    int log_format;          /* LOG_FORMAT_TEXT or LOG_FORMAT_JSON */
    char *log_file;          /* NULL: stderr */
    int access_log;          /* one line per proxied request */
    /* Limits and access (docs/security.md) */
    double client_timeout;   /* seconds a client may stay silent/unread */
    double client_idle_timeout; /* seconds of keep-alive idleness, 0: client_timeout */
    double client_request_timeout; /* seconds for a whole request, head and body */
    size_t stream_buffer;    /* answer bytes held for a slow client */
    size_t max_header_size;  /* bytes of a request's head */
    int max_headers;         /* header lines of a request */
    int max_inflight;        /* proxied requests at once, 0: no limit */
    int max_client_connections; /* open client connections, 0: half the
                                   open-files limit (server_connection_cap) */
    char **api_keys;         /* client keys (inline and from the file) */
    size_t napi_keys;
    char *api_keys_file;     /* one key per line; re-read on reload */
    char *admin_listen;      /* host:port for /metrics, /engines; NULL: main */
    char *ca_file;           /* CA bundle for https backends; NULL: system */
    char *prefill_model_labels; /* "L1,L2": backends of these model labels
                                   are prefill engines (role=prefill) */
    char *decode_model_labels;  /* ... decode engines (role=decode) */
    char *otel_endpoint;     /* OTLP/HTTP traces go there (trace.h); NULL: off */
    char *otel_service_name; /* the spans' service.name */
    int otel_secure;         /* https for a host:port endpoint */
    char *root_path;         /* vllm_router's --root-path: "/prefix" (no
                                trailing '/') also served with it stripped;
                                NULL: none */
    /* Engine and request stats (runtime/engine_stats.h, request_stats.h) */
    double engine_stats_interval; /* seconds between /metrics scrapes; 0: off */
    double request_stats_window;  /* seconds of the request stats' window */
    int log_stats;                /* log both every log_stats_interval */
    double log_stats_interval;
    struct plugin_list routing;
    struct plugin_list health;
    struct plugin_list fallback;
    struct plugin_list discovery; /* discovery plugins (1.3): backends found
                                     at run time, besides the models' own */
    const struct cfg_node *plugin_config; /* map plugin name -> section; may be NULL */
    struct model_cfg *models;
    size_t nmodels;
    struct alias_cfg *aliases;
    size_t naliases;
    struct cfg_node *tree;   /* owns every node the above points into */
    struct cfg_node *extra;  /* nodes made for command-line settings */
    char *dynamic_config;    /* --dynamic-config-yaml FILE, or NULL */
    struct cfg_node *dyn_tree; /* that file's tree (dynconf.h), or NULL */
    int refs;                /* holders besides the first (config_ref);
                                main thread only */
};

/* A config with every default and no models. */
struct sy_cfg *config_new(void);
/* Read a YAML file into a new config.  -1 and "file:line: key: why" in err. */
int config_load_file(const char *path, struct sy_cfg **out, char *err,
                     size_t errlen);
/* Same, from a string (tests). */
int config_load_string(const char *text, const char *name, struct sy_cfg **out,
                       char *err, size_t errlen);
/* Check the whole: at least one model, every model has backends, aliases and
 * fallback targets name known models, no alias shadows a model, URLs are
 * http(s).  Fills defaults (routing: [roundrobin]; fallback: [model_map] when
 * any model has a fallback_model and no fallback list was given). */
int config_finish(struct sy_cfg *cfg, char *err, size_t errlen);
/* The section of plugin_config for `name`, or cfg_empty_map(). */
const struct cfg_node *config_plugin_section(const struct sy_cfg *cfg,
                                             const char *name);
/* A model (not an alias) or an alias by name; NULL when none. */
struct model_cfg *config_find_model(const struct sy_cfg *cfg, const char *name);
struct alias_cfg *config_find_alias(const struct sy_cfg *cfg, const char *name);
/* One of config_model_types? */
int config_model_type_ok(const char *type);
/* One more holder (a setup rebuilt for discovery shares the config of the
 * one it replaces); config_free drops one.  Main thread. */
struct sy_cfg *config_ref(struct sy_cfg *cfg);
void config_free(struct sy_cfg *cfg);
/* Model and alias names: non-empty, no control characters (they go into
 * headers and metric labels). */
int config_model_name_ok(const char *s);
/* cfg's plugin_config as a map that may be changed by command-line or
 * dynamic-config settings: a copy in cfg->extra of the file's, which stays as
 * it was.  `file` names nodes made new.  NULL when out of memory. */
struct cfg_node *config_own_plugin_config(struct sy_cfg *cfg, const char *file);

/* Building blocks shared by the file loader and the command line. */

/* Check a backend base URL (http:// or https://, a host, an optional port and
 * path prefix, no query, no user:password@) and copy it, less one trailing
 * slash, into *out (malloc'd).  -1 with the reason in why. */
int config_parse_url(const char *text, char **out, char *why, size_t whylen);
/* Append a model with no backends and type "chat"; NULL when out of memory.
 * The pointer is valid until the next config_add_model. */
struct model_cfg *config_add_model(struct sy_cfg *cfg, const char *name,
                                   int line);
/* Append a backend (url already checked; api_key_env may be NULL). */
int config_add_backend(struct model_cfg *m, const char *url, unsigned weight,
                       const char *api_key_env, int line);
int config_add_alias(struct sy_cfg *cfg, const char *alias, const char *model,
                     int line);
/* Drop every model and alias (the command line replaces them). */
void config_clear_models(struct sy_cfg *cfg);
/* Append a plugin name to a list / empty a list. */
int config_list_add(struct plugin_list *pl, const char *name);
void config_list_clear(struct plugin_list *pl);

/* "host:port" or "[v6]:port", both parts required, the port 1-65535:
 * the host into host[hostlen] and the port; -1 when malformed. */
int config_host_port(const char *s, char *host, size_t hostlen, int *port);

/* vllm_router's routing logic (--routing-logic, the dynamic config's
 * routing_logic), named and mapped once: each name is a routing plugin, and
 * "session", which declines requests without the key, is followed by
 * least_loaded. */
#define CONFIG_ROUTING_LOGICS "roundrobin, session, least_loaded, prefixaware, kvaware, " \
    "disaggregated_prefill or priority"
int config_is_routing_logic(const char *name);
/* For vllm_router's logics without a plugin of their own yet (kvaware,
 * disaggregated_prefill, priority): the one that serves meanwhile; NULL
 * for the others. */
const char *config_routing_stand_in(const char *name);
/* The routing chain for a logic name (checked first); -1 on OOM. */
int config_set_routing_logic(struct sy_cfg *cfg, const char *name);

#endif
