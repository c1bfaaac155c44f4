/*
 * setup: what the router runs from, built from a finished config: the
 * backend table, the models and aliases, and the plugin chains with their
 * instances.  Workers only read it; backend counters are atomics.
 */
#ifndef SY_SETUP_H
#define SY_SETUP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <switchyard/plugin.h>

#include "backend_health.h"
#include "engine_stats.h"
#include "request_stats.h"
#include "config.h"
#include "plugin_loader.h"

struct control;
struct timer_list;
struct discovered_set;

#define SY_LATENCY_BUCKETS 14
extern const double setup_latency_bounds[SY_LATENCY_BUCKETS]; /* seconds */

/* How an attempt failed, for vllm_router's request_errors_total. */
enum attempt_error_type {
    AE_CONNECT, AE_TIMEOUT, AE_CLOSED, AE_MALFORMED, AE_HTTP_429, AE_HTTP_5XX, AE_COUNT
};
const char *attempt_error_type_name(enum attempt_error_type t);

/* What a backend did for one model it serves: vllm_router's {server,model}
 * series (metrics_vllm.c). */
struct backend_model {
    struct model *model;
    atomic_uint_fast64_t input_tokens, output_tokens; /* from answers' usage */
    atomic_uint_fast64_t errors[AE_COUNT];             /* failed attempts */
    /* attempt latency, [0] answered, [1] failed or an error status */
    atomic_uint_fast64_t latency_buckets[2][SY_LATENCY_BUCKETS + 1];
    atomic_uint_fast64_t latency_count[2];
    atomic_uint_fast64_t latency_sum_us[2];
};

/* Per-backend counters, shared by every worker. */
struct backend {
    unsigned index;
    const struct setup *setup; /* the setup it belongs to */
    char *url;               /* base URL without trailing slash */
    char engine_id[37];      /* a UUID from the URL: vllm_router's engine id */
    long long created;       /* Unix time it joined (kept over reloads) */
    char *auth_header;       /* "Authorization: Bearer ..." or NULL */
    unsigned weight;
    char *models_label;      /* "m1,m2": models this backend serves */
    struct backend_model *served; /* the same, with their counters */
    size_t nserved;
    int discovered;          /* published by discovery (else the config's) */
    char **labels;           /* discovery's "key=value" labels (a pod's, its
                                role later), NULL-terminated; NULL: none */
    atomic_uint inflight;
    atomic_uint_fast64_t latency_buckets[SY_LATENCY_BUCKETS + 1]; /* +Inf */
    atomic_uint_fast64_t latency_count;
    atomic_uint_fast64_t latency_sum_us;
    /* Health (backend_health.h), written from any thread, read by workers
     * without locks; the lock only guards the text shown in /engines. */
    atomic_ullong flags;              /* bit i: source i holds it out */
    atomic_llong cooldown_until_ms;   /* monotonic ms; 0: no cooldown */
    atomic_int cooldown_source;       /* who started the cooldown */
    atomic_int trial_taken;           /* the trial after a cooldown is out */
    atomic_int shown_state;           /* the state last logged */
    atomic_uint_fast64_t state_changes;
    atomic_uint_fast64_t probe_buckets[SY_LATENCY_BUCKETS + 1];
    atomic_uint_fast64_t probe_count;
    atomic_uint_fast64_t probe_sum_us;
    struct engine_stats_cell estats;  /* what the engine says (engine_stats.h) */
    struct request_stats_cell *rstats; /* [nworkers]: what each worker saw
                                          (request_stats.h) */
    pthread_mutex_t info_lock;
    char reason[160];                 /* why the state last changed */
    long long since;                  /* wall-clock seconds of that change */
};

#define SY_STATUS_MIN 100
#define SY_STATUS_MAX 599

/* Per-model counters. */
struct model_stats {
    atomic_uint_fast64_t incoming;  /* requests that asked for it, at arrival */
    atomic_uint_fast64_t by_status[SY_STATUS_MAX - SY_STATUS_MIN + 1];
    atomic_uint_fast64_t retries;
    atomic_uint_fast64_t exhausted;
    atomic_uint_fast64_t *fallbacks_to; /* [nmodels]: fallbacks from this model */
};

struct model {
    unsigned index;
    const struct model_cfg *cfg;
    const char *name;        /* cfg->name */
    struct backend **backends;
    size_t nbackends;
    struct model_stats stats;
};

/* One configured plugin of a chain, with its instances. */
struct plugin_slot {
    struct loaded_plugin *plugin;
    struct host_ctx *host;   /* host API table handed to the instances */
    void **inst;             /* one per worker, or one when shared */
    size_t ninst;
    int borrowed;            /* the same plugin's slot in an earlier chain:
                                its instances serve this chain too */
};

struct chain {
    struct plugin_slot *slots;
    size_t n;
};

struct name_entry {
    const char *name;
    struct model *model;
};

struct setup {
    struct sy_cfg *cfg;      /* owned */
    int nworkers;
    struct backend *backends;
    size_t nbackends;
    unsigned *url_slots;     /* backends by URL (setup.c), url_cap slots */
    size_t url_cap;
    struct model *models;
    size_t nmodels;
    struct model_cfg *discovered_models; /* models only discovery knows */
    size_t ndiscovered_models;
    struct name_entry *names; /* models and aliases, sorted by name */
    size_t nnames;
    struct chain routing;
    struct chain fallback;
    struct chain health;
    /* health sources (backend_health.h): the operator, then each plugin,
     * by name; a backend's flags are bits of this list */
    const char *sources[HEALTH_MAX_SOURCES];
    unsigned nsources;
    struct control *control;  /* the health plugins' and the engine-stats
                                 scraper's thread, when running */
    struct engine_scraper *scraper; /* on that thread (engine_stats.h) */
    struct discovery *discovery; /* the daemon's discovery while this setup
                                    serves (for /metrics), or NULL */
    struct timer_list *worker_timers; /* [nworkers]: per-worker instances'
                                         timers, each list its worker's */
    atomic_uint_fast64_t unknown_model_by_status[SY_STATUS_MAX - SY_STATUS_MIN + 1];
    atomic_uint_fast64_t *worker_requests; /* [nworkers]: requests each took */
    struct request_stats_cell *rstats; /* [nbackends][nworkers] */
    /* Holders: each worker that serves from this setup, and each request
     * that started on it.  Only worker threads add, and only while their
     * own worker reference is held, so once workers moved on to a newer
     * setup and this reaches 0 it stays 0: the setup can be freed. */
    atomic_int refs;
};

/* Build a setup from cfg (takes ownership of cfg, also on failure): load the
 * plugins and create their instances, nworkers of each unless shared.
 * -1 with the reason in err (the daemon exits 2). */
int setup_create(struct sy_cfg *cfg, const char *plugin_dir, int nworkers,
                 struct setup **out, char *err, size_t errlen);
/* The same, with the backends discovery published (runtime/discovery.h)
 * merged into the config's models by name; disc NULL: none.  A discovered
 * backend that is not ready is held out by the source "discovery". */
int setup_build(struct sy_cfg *cfg, const char *plugin_dir, int nworkers,
                const struct discovered_set *disc, struct setup **out, char *err,
                size_t errlen);
void setup_destroy(struct setup *s);

/* A model by its name or an alias; NULL when unknown. */
struct model *setup_find_model(const struct setup *s, const char *name);

/* The instance of a slot that worker `w` uses. */
static inline void *plugin_slot_instance(const struct plugin_slot *slot, int w)
{
    return slot->ninst == 1 ? slot->inst[0] : slot->inst[w];
}

/* Continue from `from` after a reload: the health flags and cooldowns of
 * the backends that stay (by URL) carry over for the sources that stay (by
 * name), and so do counters (setup_move_counters). */
void setup_carry_over(struct setup *to, struct setup *from);
/* Move what `from` has counted into `to`, for the models and backends both
 * have (by name, by URL), leaving `from`'s counters at zero.  At the swap,
 * and again when the old setup's last request has finished, so what its
 * requests in flight counted after the swap is kept too. */
void setup_move_counters(struct setup *to, struct setup *from);

/* Monotonic milliseconds, the clock of backend states. */
long long setup_now_ms(void);
/* A backend by its engine id; NULL. */
struct backend *setup_find_engine(const struct setup *s, const char *engine_id);
/* A backend by its URL (as configured, without a trailing slash); NULL. */
struct backend *setup_find_backend(const struct setup *s, const char *url);
void backend_observe_probe(struct backend *b, double seconds);

/* Record the status of an answer for a model (NULL: unknown model). */
void setup_count_status(struct setup *s, struct model *m, int status);
void backend_observe_latency(struct backend *b, double seconds);
/* b's counters for model m (one it serves), or NULL. */
struct backend_model *backend_model_of(struct backend *b, const struct model *m);
/* One attempt of bm's model on its backend: how long, and whether it
 * failed (error: an attempt_error_type, or -1 for an answer; status_error:
 * answered with a status of 400 or more). */
void backend_model_observe(struct backend_model *bm, int error, int status_error,
                           double seconds);

#endif
