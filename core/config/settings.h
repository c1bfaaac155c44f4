/*
 * settings: the one table of the router's settings (nginx's command table).
 *
 * Each row names a setting once: its key (the config file's key, the
 * dynamic config's key, and, with '-' for '_', its command-line flag),
 * where it may be written, and how its value is parsed and checked: a typed
 * row (a whole number, seconds, a size, a bool, a string) writes a field of
 * struct sy_cfg; a custom row has a setter of its own.  The config file, the
 * flags and production-stack's dynamic config all go through
 * settings_apply(), so a value means the same and is checked the same
 * wherever it is written, and an error names where it was written:
 * "file:line: key: why" or "command line: --flag: why".
 */
#ifndef SY_SETTINGS_H
#define SY_SETTINGS_H

#include <stddef.h>
#include "cfg_tree.h"
#include "config.h"

/* Where a setting may be written (a row's `where`, a setter's `src`). */
enum setting_source {
    SETTING_FILE = 1,    /* the native YAML config file */
    SETTING_FLAG = 2,    /* the command line */
    SETTING_DYNAMIC = 4, /* production-stack's dynamic config (vllm_router's keys) */
};

enum setting_type {
    SETTING_CUSTOM,   /* the row's set() parses and checks */
    SETTING_INT,      /* int field, a whole number min..max */
    SETTING_LONG,     /* long field, a whole number min..max */
    SETTING_SECONDS,  /* double field, seconds > 0 ("2.5", "500ms", "2m") */
    SETTING_SECONDS0, /* double field, seconds >= 0 */
    SETTING_SIZE,     /* size_t field, bytes min..max ("64KiB") */
    SETTING_BOOL,     /* int field, true or false */
    SETTING_STRING,   /* char * field, a non-empty string */
    SETTING_GROUPED,  /* read by another row's setter (vllm_router's
                         static_models goes with static_backends) */
    SETTING_IGNORED,  /* accepted for compatibility, no effect: a warning */
};

struct setter;
struct setting;

typedef int (*setting_fn)(struct setter *st, const struct setting *row,
                          const struct cfg_node *v);

struct setting {
    const char *key;
    unsigned where;          /* enum setting_source bits */
    enum setting_type type;
    size_t offset;           /* of the typed field in struct sy_cfg */
    long long min, max;      /* SETTING_INT, _LONG, _SIZE */
    setting_fn set;          /* SETTING_CUSTOM */
    unsigned always : 1;     /* set() is called even when the key is absent
                                (v NULL): the head of a group */
    unsigned repeat : 1;     /* the flag may be repeated: a list */
    const char *arg;         /* --help: the value's name; NULL: a flag
                                without a value (it means true) */
    const char *help;        /* --help text; NULL: not listed */
    const char *def;         /* the default, as it would be written;
                                NULL: the field's zero */
};

/* A fallback set by the source being applied, checked at its end. */
struct setting_fallback {
    size_t model;            /* index in cfg->models */
    int line;
    int from_map;            /* static_models.NAME.fallback_model */
};

/* One source of values being applied to a config. */
struct setter {
    struct sy_cfg *cfg;
    const struct cfg_node *map; /* the values: key -> node */
    enum setting_source src;
    const char *file;        /* for errors and new nodes: the file's name,
                                or "command line" */
    char *err;
    size_t errlen;
    /* What this source set of vllm_router's aliases and fallbacks, for
     * the checks at its end (settings_apply frees them). */
    char **aliases;
    int *alias_lines;
    size_t naliases;
    struct setting_fallback *fbs;
    size_t nfbs;
};

/* The table, in the order rows are applied; NULL-keyed at the end. */
extern const struct setting settings_table[];

/* The row for `key` that `src` may write; NULL when none. */
const struct setting *settings_find(const char *key, enum setting_source src);

/* Apply every value of st->map: unknown keys are an error in the file and a
 * warning in the dynamic config; rows go in table order; then the checks of
 * what this source set (aliases and fallbacks name known models).  -1 with
 * the reason in st->err. */
int settings_apply(struct setter *st);

/* Every row's default into a new config (config_new).  -1: a default of
 * the table does not parse (a unit test makes sure none does). */
int settings_defaults(struct sy_cfg *cfg);

/* "file:line: key: why", or "command line: --key-as-flag: why". */
int setting_error(const struct setter *st, int line, const char *key,
                  const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
int setting_oom(const struct setter *st, int line, const char *key);
/* A key as the source spells it: "static_models" or "--static-models". */
const char *setting_name(const struct setter *st, const char *key, char *buf,
                         size_t len);
/* "a map", "a list" or "a single value". */
const char *setting_kind_name(const struct cfg_node *v);
/* v as a single value, else an error. */
int setting_scalar(const struct setter *st, const struct cfg_node *v,
                   const char *key, const char **out);
/* Absent, or written as null / nothing (vllm_router's None). */
int setting_unset(const struct cfg_node *v);
/* plugin_config.PLUGIN.KEY = value, as if written where st's value was. */
int setting_plugin_option(struct setter *st, int line, const char *what,
                          const char *plugin, const char *key,
                          const char *value);

/* Setters of the custom rows, beside what they set: config.c (the native
 * file's structured settings) and vllm_settings.c (vllm_router's). */
int set_listen(struct setter *, const struct setting *, const struct cfg_node *);
int set_log_level(struct setter *, const struct setting *, const struct cfg_node *);
int set_log_format(struct setter *, const struct setting *, const struct cfg_node *);
int set_plugin_dir(struct setter *, const struct setting *, const struct cfg_node *);
int set_api_keys(struct setter *, const struct setting *, const struct cfg_node *);
int set_admin_listen(struct setter *, const struct setting *, const struct cfg_node *);
int set_plugin_list(struct setter *, const struct setting *, const struct cfg_node *);
int set_plugin_config(struct setter *, const struct setting *, const struct cfg_node *);
int set_models(struct setter *, const struct setting *, const struct cfg_node *);
int set_aliases(struct setter *, const struct setting *, const struct cfg_node *);
int set_service_discovery(struct setter *, const struct setting *, const struct cfg_node *);
int set_k8s_option(struct setter *, const struct setting *, const struct cfg_node *);
int set_static_models(struct setter *, const struct setting *, const struct cfg_node *);
int set_static_aliases(struct setter *, const struct setting *, const struct cfg_node *);
int set_static_fallbacks(struct setter *, const struct setting *, const struct cfg_node *);
int set_routing_logic(struct setter *, const struct setting *, const struct cfg_node *);
int set_session_key(struct setter *, const struct setting *, const struct cfg_node *);
int set_root_path(struct setter *, const struct setting *, const struct cfg_node *);
int set_prefix_min_match(struct setter *, const struct setting *, const struct cfg_node *);
int set_health_checks(struct setter *, const struct setting *, const struct cfg_node *);
int set_health_interval(struct setter *, const struct setting *, const struct cfg_node *);
int set_health_timeout(struct setter *, const struct setting *, const struct cfg_node *);
/* The checks at the end of a source that set vllm_router's aliases or
 * fallbacks (vllm_settings.c). */
int vllm_settings_check(struct setter *st);

#endif
