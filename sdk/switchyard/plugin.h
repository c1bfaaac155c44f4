/*
 * switchyard/plugin.h - the switchyard plugin SDK.
 *
 * This is the only header a switchyard plugin includes. It depends on libc
 * headers alone: no libevent, libcurl, json-c or libyaml type crosses it, so
 * the core can change those freely without breaking a plugin.
 *
 * A plugin is a shared object NAME.so in the plugin directory that exports
 * exactly one data symbol:
 *
 *     const struct sy_plugin sy_plugin_v1 = { SY_PLUGIN_HEADER, ... };
 *
 * ABI RULES
 *   - The loader reads the descriptor's first four fields (magic, abi_major,
 *     abi_minor, size) before it calls any plugin code.  It refuses a wrong
 *     magic, a different ABI major, or an ABI minor newer than its own.
 *   - A minor bump only appends fields at the end of struct sy_plugin,
 *     struct sy_host_api and struct sy_fallback_query.  Each of them carries
 *     its size, so either side can tell which fields the other has.
 *   - A major bump may change anything; the symbol name then changes too
 *     (sy_plugin_v2), so an old plugin is refused with a clear message.
 *
 * OWNERSHIP WORDS used below
 *   borrowed: the pointer is valid only for the duration of the call that
 *             handed it out; copy what you need to keep.
 *   owned by the host: valid until the plugin instance is destroyed.
 *   owned by the plugin: the plugin keeps it valid until destroy().
 *
 * THREADS
 *   create() and destroy() run on the main thread while no request flows
 *   through the instance.  Routing and fallback hooks run on worker threads:
 *     - by default the host creates one instance per worker thread, and calls
 *       an instance's hooks only from its own worker, never concurrently, so
 *       a plugin needs no locks;
 *     - with SY_PLUGIN_F_SHARED the host creates a single instance whose hooks
 *       may run concurrently on every worker; the plugin synchronises itself.
 *   Host API functions may be called from any hook, on any thread, unless a
 *   function says otherwise.  Hooks must never block.
 *
 * ABI HISTORY
 *   1.0  (switchyard 0.1.0) descriptor, host API with config, model, request
 *        and backend accessors; routing and fallback hooks.  Kinds
 *        SY_KIND_HEALTH and SY_KIND_DISCOVERY are reserved.
 *   1.1  (switchyard 0.1.0) health plugins: the start() and attempt_done()
 *        hooks take two of the descriptor's reserved slots (its size is
 *        unchanged); the host API appends request_prompt(), the backend
 *        table and states, the clock, and timers and HTTP requests on the
 *        control thread.  SY_KIND_DISCOVERY stays reserved.
 *   1.2  (after switchyard 0.1.0) health owned per source: the host API appends
 *        backend_set_flag() and backend_flag(); backend_set_state() now acts
 *        on the calling plugin's own flag and cooldown (a plugin's HEALTHY
 *        no longer undoes another's UNHEALTHY), and backend_state() reports
 *        the combined state.  The loader accepts any descriptor from 1.0's
 *        size up and reads the fields a plugin lacks as NULL.  The request
 *        body by JSON pointer (request_field_*, request_body);
 *        config_double(), config_size(), config_check_keys().  Fallback
 *        plugins see every failed attempt (struct sy_attempt: backend,
 *        status or error class, the upstream error's type, code and
 *        message, Retry-After) and may act after each one
 *        (attempt_failed(), SY_RETRY); routing plugins learn how their
 *        picks went (outcome(), request_done(), request_slot()).  The
 *        descriptor grows past 1.1's: hooks are appended after reserved.
 *        One plugin may serve several kinds: listed in a chain of another
 *        kind than its .kind, it is accepted when it has that kind's hooks,
 *        and a plugin listed in several chains has one set of instances
 *        (one instance when one of them is health: set
 *        SY_PLUGIN_F_SHARED).  Routing and fallback instances get
 *        worker_start() on each worker's thread and may keep timers on
 *        its loop (worker_timer_add()).
 *   1.3  discovery plugins (SY_KIND_DISCOVERY): they publish the backends
 *        they see with discovery_publish() (struct sy_discovered), from
 *        start() and their callbacks on a thread of their own, which lives
 *        across the setups their changes make; the core reconciles the
 *        backend table as a reload does.  http_stream() and
 *        http_stream_cancel(): a long HTTP GET whose body arrives as it
 *        comes (a Kubernetes watch), with TLS settings of its own (struct
 *        sy_http_options: CA, client certificate, bearer token).
 *        counter_add() and gauge_set(): a plugin's own numbers in /metrics.
 *        The descriptor appends backend_failed(): discovery plugins hear
 *        of backends that stopped answering.
 *        dns_resolve(): A, AAAA and SRV lookups on the plugin thread,
 *        never blocking (struct sy_dns_record).
 *   1.4  engine state for routing: backend_engine_stats() gives what each
 *        engine's /metrics said (queue, running, KV-cache use, prefix-cache
 *        hits, cache size; struct sy_engine_stats) and how old it is;
 *        backend_request_stats() what the router itself saw of the backend
 *        over its sliding window (struct sy_request_stats).
 */
#ifndef SWITCHYARD_PLUGIN_H
#define SWITCHYARD_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SY_PLUGIN_MAGIC 0x53595047u /* "SYPG" */
#define SY_ABI_MAJOR 1
#define SY_ABI_MINOR 4

/* Name of the descriptor symbol for this ABI major. */
#define SY_PLUGIN_SYMBOL "sy_plugin_v1"

#if defined(__GNUC__)
#define SY_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define SY_EXPORT __attribute__((visibility("default")))
#else
#define SY_PRINTF(fmt, args)
#define SY_EXPORT
#endif

/* Status returned by hooks and host functions.  SY_DECLINED means "no
 * opinion, ask the next plugin in the chain" from a hook, and "absent" from a
 * host lookup. */
enum sy_status {
    SY_OK = 0,
    SY_DECLINED = 1,
    SY_ERROR = -1,
    SY_RETRY = 2 /* 1.2, attempt_failed() only: retry the model as the
                    rules allow, and ask no further plugin */
};

enum sy_plugin_kind {
    SY_KIND_ROUTING = 1,   /* picks a backend among the model's usable ones */
    SY_KIND_HEALTH = 2,    /* decides which backends are usable (1.1) */
    SY_KIND_FALLBACK = 3,  /* names the next model when one cannot be served */
    SY_KIND_DISCOVERY = 4  /* publishes backends, from DNS or Kubernetes (1.3) */
};

/* Descriptor flags. */
#define SY_PLUGIN_F_SHARED 0x1u /* one instance for all workers, thread-safe */

enum sy_log_level {
    SY_LOG_DEBUG = 0,
    SY_LOG_INFO = 1,
    SY_LOG_WARNING = 2,
    SY_LOG_ERROR = 3
};

/* Opaque handles.  All are owned by the host. */
typedef struct sy_config sy_config;   /* a section of the config file */
typedef struct sy_request sy_request; /* a client request being routed */
typedef struct sy_backend sy_backend; /* one upstream server */

/* JSON types of the request's body fields (1.2). */
enum sy_json_type {
    SY_JSON_ABSENT = 0, /* no such field */
    SY_JSON_NULL = 1,
    SY_JSON_BOOL = 2,
    SY_JSON_NUMBER = 3,
    SY_JSON_STRING = 4,
    SY_JSON_ARRAY = 5,
    SY_JSON_OBJECT = 6
};

/* Why a model could not be served, for fallback plugins. */
enum sy_fallback_reason {
    SY_FALLBACK_NO_BACKEND = 1, /* no usable backend: none tried */
    SY_FALLBACK_EXHAUSTED = 2,  /* attempts were made and all failed */
    SY_FALLBACK_ATTEMPT_FAILED = 3 /* 1.2, attempt_failed(): one attempt
                                      failed; the model may have more */
};

/* How the last failed attempt failed. */
enum sy_attempt_error {
    SY_ATTEMPT_NONE = 0,
    SY_ATTEMPT_CONNECT = 1, /* refused, reset, unreachable, DNS */
    SY_ATTEMPT_TIMEOUT = 2, /* connect, first-byte or idle timeout */
    SY_ATTEMPT_STATUS = 3,  /* the backend answered 5xx or 429 */
    SY_ATTEMPT_CLOSED = 4   /* the backend closed before an answer */
};

/*
 * One failed attempt of a request (1.2), as fallback plugins see it.
 * Borrowed for the duration of the hook; check `size` before reading fields
 * appended later.
 */
struct sy_attempt {
    size_t size;
    const char *model;         /* the model it was for */
    const sy_backend *backend;
    int error;                 /* enum sy_attempt_error */
    int status;                /* HTTP status, 0 when none came */
    double retry_after;        /* seconds the backend asked to wait, or 0 */
    /* From an OpenAI-shaped error body ({"error":{"type","code","message"}},
     * or vLLM's {"object":"error","type","code","message"}); NULL when the
     * body had no such member.  A numeric code is given as text. */
    const char *error_type;    /* e.g. "insufficient_quota" */
    const char *error_code;
    const char *error_message;
    /* The first bytes (at most 512, as text) of a body that is not
     * OpenAI-shaped; NULL otherwise or when there was no body. */
    const char *body_excerpt;
};

/*
 * What a fallback plugin is asked.  Borrowed for the duration of the hook.
 * Check `size` before reading fields appended after 1.0.
 */
struct sy_fallback_query {
    size_t size;              /* sizeof(struct sy_fallback_query) of the host */
    const char *model;        /* the model that could not be served */
    int reason;               /* enum sy_fallback_reason */
    int last_error;           /* enum sy_attempt_error */
    int last_status;          /* HTTP status of the last attempt, 0 if none */
    const char *const *tried; /* models tried so far, first = asked */
    size_t ntried;
    const sy_request *req;
    /* --- 1.2 --- */
    /* Every failed attempt of the request so far, over all models, in order:
     * the last one is the attempt that just failed (none for
     * SY_FALLBACK_NO_BACKEND before any attempt). */
    const struct sy_attempt *attempts;
    size_t nattempts;
};

/*
 * How an attempt a routing plugin may have picked ended (1.2), for its
 * outcome() hook.  Borrowed for the duration of the hook.
 */
struct sy_outcome {
    size_t size;
    const sy_backend *backend;
    const char *model;
    int error;          /* enum sy_attempt_error; SY_ATTEMPT_NONE: answered */
    int status;         /* HTTP status, 0 when none came */
    double latency;     /* seconds from the attempt's start to its end */
    double ttfb;        /* seconds from its start to the response head, or -1 */
    unsigned long long bytes; /* body bytes relayed to the client */
};

/* A backend's state, kept by the core and set by health plugins (1.1):
 * since 1.2 the combination of every source's flag and the cooldown. */
enum sy_backend_state {
    SY_BACKEND_HEALTHY = 0,   /* gets traffic */
    SY_BACKEND_UNHEALTHY = 1, /* gets none while any source (a plugin, the
                                 operator) holds its flag on it */
    SY_BACKEND_COOLDOWN = 2   /* gets none until the cooldown ends; then
                                 one trial request, whose outcome the
                                 plugin judges in attempt_done() */
};

/*
 * One finished upstream attempt, for health plugins (1.1).  Borrowed for the
 * duration of attempt_done().  Check `size` before reading fields appended
 * later.
 */
struct sy_attempt_report {
    size_t size;
    const sy_backend *backend;
    const char *model;
    int error;          /* enum sy_attempt_error; SY_ATTEMPT_NONE: answered */
    int status;         /* HTTP status, 0 when none came */
    double retry_after; /* seconds the backend asked to wait (429/503), or 0 */
    double latency;     /* seconds from the attempt's start to its outcome */
    int trial;          /* 1 when this was the trial after a cooldown */
};

/* Timers and HTTP requests of health plugins (1.1).  Callbacks run on the
 * control thread, never concurrently with each other or with start(). */
typedef struct sy_timer sy_timer;
typedef void (*sy_timer_cb)(void *arg);
/* status: the HTTP status, or 0 with `error` saying why (refused, timeout).
 * body: the first bytes of the answer (at most 64 KiB), borrowed. */
typedef void (*sy_http_cb)(void *arg, int status, const char *body, size_t len,
                           const char *error);

/*
 * One backend as a discovery plugin sees it (1.3), for discovery_publish().
 * Borrowed for the call: the core copies what it keeps.
 */
struct sy_discovered {
    size_t size;                /* sizeof(struct sy_discovered) of the plugin */
    const char *url;            /* base URL, e.g. "http://10.1.2.3:8000" */
    const char *const *models;  /* the models it serves (LoRA adapters too) */
    size_t nmodels;
    const char *const *labels;  /* "key=value" (a pod's labels, roles) */
    size_t nlabels;
    int ready;                  /* 0: known, but to be sent no request */
};

/* A long HTTP GET on the plugin thread (1.3): the answer's status first,
 * then its body as it arrives, then the end.  on_data returns 0 to go on,
 * non-zero to stop (no on_end follows then).  on_end runs once: status 0
 * and `error` when no answer came or it broke off (a timeout, a reset),
 * else the status with error NULL.  The stream is freed after on_end;
 * cancel it only before. */
typedef struct sy_stream sy_stream;
typedef void (*sy_stream_head_cb)(void *arg, int status);
typedef int (*sy_stream_data_cb)(void *arg, const char *data, size_t len);
typedef void (*sy_stream_end_cb)(void *arg, int status, const char *error);

/*
 * What an engine says of its own load (1.4), from its /metrics, scraped
 * every engine_stats_interval seconds (vLLM's names, SGLang's too).  The
 * caller sets `size` to sizeof(struct sy_engine_stats); the host fills
 * the fields it knows of that size.  A value the engine did not report
 * is -1.
 */
struct sy_engine_stats {
    size_t size;
    double age;            /* seconds since the last good scrape */
    int stale;             /* the last scrape failed, or is overdue: these
                              are the last values known; weigh them less */
    double running;        /* requests the engine is running */
    double waiting;        /* requests queued in the engine */
    double swapped;        /* requests swapped out (older vLLM) */
    double kv_usage;       /* KV cache in use, 0..1 */
    double prefix_hits;    /* prefix-cache hits, tokens, since it started */
    double prefix_queries; /* prefix-cache lookups, tokens, since it started */
    double block_size;     /* tokens a KV-cache block holds */
    double gpu_blocks;     /* KV-cache blocks the engine has */
};

/*
 * What the router saw of a backend (1.4) over the last
 * request_stats_window seconds, all workers together.  `size` as above.
 * An average over nothing is -1.
 */
struct sy_request_stats {
    size_t size;
    double window;              /* seconds the figures cover */
    double qps;                 /* attempts sent a second */
    double avg_latency;         /* seconds, attempt start to its end */
    double avg_ttft;            /* seconds to the answer's first byte */
    double avg_itl;             /* seconds between a stream's events */
    double avg_decoding_length; /* events a streamed answer */
    long in_prefill;            /* sent, no answer byte yet (now) */
    long in_decoding;           /* answering (now) */
    unsigned long long finished; /* attempts ended in the window */
};

/* How to talk to a server that is not a backend (1.3): the Kubernetes API
 * with a kubeconfig's credentials.  Zero fields take the defaults. */
struct sy_http_options {
    size_t size;                /* sizeof(struct sy_http_options) of the plugin */
    const char *const *headers; /* NULL-terminated "Name: value" lines */
    double connect_timeout;     /* seconds; 0: 10 */
    double idle_timeout;        /* seconds with no byte before the stream
                                   ends with an error; 0: never */
    const char *ca_file;        /* PEM bundle; NULL: the router's ca_file,
                                   else the system's */
    const char *ca_pem;         /* PEM text instead of ca_file */
    const char *cert_file;      /* client certificate and key, PEM */
    const char *key_file;
    const char *cert_pem;       /* the same as text */
    const char *key_pem;
    int insecure;               /* 1: do not verify the server's certificate */
};

/* DNS record types for dns_resolve() (1.3): their numbers on the wire. */
enum sy_dns_type {
    SY_DNS_A = 1,
    SY_DNS_AAAA = 28,
    SY_DNS_SRV = 33 /* RFC 2782: _service._proto.name */
};

/*
 * One record of a dns_resolve() answer (1.3).  Borrowed for the callback:
 * copy what you keep.  Fields may be appended later: step through the
 * array with SY_DNS_RECORD(), which uses the host's `size`.
 */
struct sy_dns_record {
    size_t size;          /* sizeof(struct sy_dns_record) of the host */
    const char *address;  /* A, AAAA: the address as text ("10.1.2.3",
                             "fd00::1"); NULL for SRV */
    const char *target;   /* SRV: the target's name, without the final '.';
                             "" for "." (the service is not offered there);
                             NULL for A, AAAA */
    unsigned port, priority, weight; /* SRV; 0 for A, AAAA */
    unsigned ttl;         /* seconds the record may be kept */
};
#define SY_DNS_RECORD(records, i)                                            \
    ((const struct sy_dns_record *)(const void *)((const char *)(records) + \
                                                  (i) * (records)->size))

/* A dns_resolve() answer, once, on the plugin's thread.  error NULL: the
 * server answered, with the n records of the type asked (n may be 0: the
 * name does not exist, NXDOMAIN, or has no record of that type; the two
 * are not told apart).  Else n is 0 and error says why no answer came: a
 * timeout, SERVFAIL, REFUSED, a malformed or truncated answer. */
typedef void (*sy_dns_cb)(void *arg, const struct sy_dns_record *records, size_t n,
                          const char *error);

/*
 * The host API: the only way a plugin calls the core.  The table is owned by
 * the host and valid until the instance that received it is destroyed.  Check
 * `size` before using a function appended after 1.0.
 */
struct sy_host_api {
    size_t size; /* sizeof(struct sy_host_api) of the host */
    unsigned abi_major;
    unsigned abi_minor;

    /* Log a line at `level`, prefixed with the plugin's name. */
    void (*log)(const struct sy_host_api *host, int level, const char *fmt,
                ...) SY_PRINTF(3, 4);

    /* --- Config: the plugin's own section of plugin_config. ---
     * Each lookup returns SY_OK and sets *out, SY_DECLINED when the key is
     * absent, or SY_ERROR when it has the wrong type.  Strings are owned by
     * the host.  A NULL key means the section itself (for lists and maps). */
    int (*config_string)(const sy_config *cfg, const char *key,
                         const char **out);
    int (*config_int)(const sy_config *cfg, const char *key, long long *out);
    /* Numbers, or durations with a unit: "250ms", "5s", "2m", "1h". */
    int (*config_seconds)(const sy_config *cfg, const char *key, double *out);
    /* true/false, yes/no, on/off. */
    int (*config_bool)(const sy_config *cfg, const char *key, int *out);
    /* A nested map or list. */
    int (*config_section)(const sy_config *cfg, const char *key,
                          const sy_config **out);
    /* Number of items of a list, or of entries of a map. */
    size_t (*config_count)(const sy_config *cfg);
    /* The i-th entry of a map: its key and its value as a section. */
    int (*config_entry)(const sy_config *cfg, size_t i, const char **key,
                        const sy_config **value);
    /* The i-th item of a list, as a section (use a NULL key to read it). */
    int (*config_item)(const sy_config *cfg, size_t i, const sy_config **out);
    /* "file:line" where `key` (or the section if NULL) was written, for
     * error messages.  Writes at most len bytes, always terminated. */
    void (*config_where)(const sy_config *cfg, const char *key, char *buf,
                         size_t len);

    /* --- Models of the running setup. --- */
    size_t (*model_count)(const struct sy_host_api *host);
    const char *(*model_name)(const struct sy_host_api *host, size_t i);
    /* SY_OK if `name` is a model (not an alias), SY_DECLINED if not. */
    int (*model_exists)(const struct sy_host_api *host, const char *name);
    /* A model's per-model setting from its `models:` entry, as a string:
     * "type", "fallback_model".  NULL when unset or unknown. */
    const char *(*model_option)(const struct sy_host_api *host,
                                const char *model, const char *key);

    /* --- The request being routed (borrowed handle, hooks only). --- */
    const char *(*request_id)(const sy_request *req);
    /* The model this attempt serves (after any fallback rewrite). */
    const char *(*request_model)(const sy_request *req);
    /* A client header, case-insensitive; NULL when absent. */
    const char *(*request_header)(const sy_request *req, const char *name);
    /* A top-level string field of the JSON body; NULL when absent or not a
     * string. */
    const char *(*request_body_string)(const sy_request *req,
                                       const char *field);
    /* The request's path, e.g. "/v1/chat/completions". */
    const char *(*request_path)(const sy_request *req);

    /* --- Backends (borrowed handles, hooks only). --- */
    const char *(*backend_url)(const sy_backend *b);
    /* Stable small integer, unique per backend in this setup. */
    unsigned (*backend_index)(const sy_backend *b);
    /* Requests in flight to this backend, over all workers. */
    unsigned (*backend_inflight)(const sy_backend *b);
    /* Configured weight (default 1). */
    unsigned (*backend_weight)(const sy_backend *b);

    /* --- Appended in ABI 1.1 (check `size`). --- */

    /* The request's prompt text: the body's "prompt" (a string, or the
     * first string of a list), else the text of "messages" (each content
     * string or text part, in order, separated by "\n"); SY_DECLINED when
     * the body has neither.  *text is owned by the host, valid during the
     * hook. */
    int (*request_prompt)(const sy_request *req, const char **text,
                          size_t *len);
    /* Every backend of the setup, e.g. for probes. */
    size_t (*backend_count)(const struct sy_host_api *host);
    const sy_backend *(*backend_at)(const struct sy_host_api *host, size_t i);
    /* The i-th model the backend serves; NULL past the end. */
    const char *(*backend_model)(const sy_backend *b, size_t i);
    /* enum sy_backend_state: UNHEALTHY while any source holds its flag,
     * COOLDOWN while a cooldown runs, else HEALTHY. */
    int (*backend_state)(const sy_backend *b);
    /* Set a backend's state as this plugin sees it (since 1.2, on the
     * plugin's own flag): UNHEALTHY holds the plugin's flag, HEALTHY
     * releases it and ends a cooldown this plugin started, COOLDOWN starts
     * a cooldown of `seconds`.  `reason` is logged and shown in /engines,
     * once per change of the backend's state.  Any thread. */
    void (*backend_set_state)(const struct sy_host_api *host,
                              const sy_backend *b, int state, double seconds,
                              const char *reason);
    /* Record one probe's duration for /metrics. */
    void (*backend_observe_probe)(const sy_backend *b, double seconds);
    /* Monotonic clock, seconds. */
    double (*now)(void);
    /* Control thread only (start() and the callbacks below): a one-shot
     * timer; cancel it, or it frees itself after firing.  Timers still
     * pending when the instance is destroyed are cancelled by the host
     * first: never call timer_cancel() from destroy(). */
    sy_timer *(*timer_add)(const struct sy_host_api *host, double seconds,
                           sy_timer_cb cb, void *arg);
    void (*timer_cancel)(sy_timer *t);
    /* Control thread only: an HTTP request; GET when body is NULL, else
     * POST.  headers: NULL-terminated "Name: value" list or NULL.  cb runs
     * once, later, on the control thread; requests still running when the
     * instance is destroyed are cancelled without a callback.  SY_ERROR when
     * it could not start. */
    int (*http_request)(const struct sy_host_api *host, const char *url,
                        const char *body, size_t len,
                        const char *const *headers, double timeout,
                        sy_http_cb cb, void *arg);
    /* The header line the core sends this backend for its credential
     * ("Authorization: Bearer ..." from api_key_env), or NULL.  A secret:
     * send it to the backend, never log it. */
    const char *(*backend_authorization)(const sy_backend *b);

    /* --- Appended in ABI 1.2 (check `size`). --- */

    /* Health flags.  Every health source (each plugin, the operator's
     * drain, later discovery) holds or releases its own flag on a backend;
     * a backend takes requests only while no source holds a flag and no
     * cooldown runs, so one plugin's "healthy" never undoes another's
     * "out".  Flags carry over a reload per (plugin name, backend URL): a
     * new instance reads the flags it holds with backend_flag() (e.g. in
     * create() or start()) and reconciles; a plugin gone after a reload
     * takes its flags with it.  `reason` is logged and shown in /engines
     * when the backend's state changes.  Any thread. */
    void (*backend_set_flag)(const struct sy_host_api *host, const sy_backend *b,
                             int on, const char *reason);
    /* 1 when this plugin holds its flag on b, else 0.  Any thread. */
    int (*backend_flag)(const struct sy_host_api *host, const sy_backend *b);

    /* The request's body, by JSON pointer (RFC 6901): "/max_tokens",
     * "/messages/0/content", "/stream_options/include_usage"; "" is the
     * whole body.  The body is parsed into a tree the first time a plugin
     * asks, once per request; requests whose plugins never ask cost
     * nothing.  Getters return SY_OK, SY_DECLINED when nothing is there,
     * SY_ERROR when the value has another type.  Strings are owned by the
     * host, valid during the hook (they may hold NUL bytes: use *len).
     * Numbers are doubles (integers past 2^53 lose precision).  Hooks that
     * have a request only. */
    int (*request_field_type)(const sy_request *req, const char *pointer); /* sy_json_type */
    int (*request_field_string)(const sy_request *req, const char *pointer,
                                const char **out, size_t *len);
    int (*request_field_number)(const sy_request *req, const char *pointer, double *out);
    int (*request_field_bool)(const sy_request *req, const char *pointer, int *out);
    /* The body's bytes as the client sent them (before any rewrite of
     * `model`).  Borrowed, valid during the hook. */
    int (*request_body)(const sy_request *req, const char **body, size_t *len);

    /* Config, 1.2: a number with a fraction ("0.25", "1e3"); a size in
     * bytes ("512", "64KiB", "16MiB", "1GiB"). */
    int (*config_double)(const sy_config *cfg, const char *key, double *out);
    int (*config_size)(const sy_config *cfg, const char *key, size_t *out);
    /* SY_OK when every key of the map section `cfg` is one of `known`
     * (NULL-terminated); else SY_ERROR with "file:line: KEY: unknown key
     * (known: ...)" in err, so a misspelt setting stops the router at
     * start instead of being ignored.  Call it from create(). */
    int (*config_check_keys)(const sy_config *cfg, const char *const *known,
                             char *err, size_t errlen);

    /* This plugin's slot for one request: a pointer the plugin may set in
     * route() (e.g. to what it decided) and read back in outcome(); the
     * core never touches what it points to.  The plugin frees it in
     * request_done().  NULL when req is NULL.  Hooks of that request only. */
    void **(*request_slot)(const struct sy_host_api *host, const sy_request *req);

    /* A one-shot timer on the calling worker's loop (worker_start() and
     * the hooks of requests), for per-worker instances; NULL on another
     * thread, or from an instance the worker no longer serves new requests
     * from.  Cancel it with timer_cancel() on the same worker, or let it
     * fire (it frees itself).  A worker's pending timers are cancelled
     * when it moves to a reloaded setup, and when it stops. */
    sy_timer *(*worker_timer_add)(const struct sy_host_api *host, double seconds,
                                  sy_timer_cb cb, void *arg);

    /* --- Appended in ABI 1.3 (check `size`). --- */

    /* Discovery plugins, on their thread (start() and callbacks): the whole
     * set of backends this plugin sees now, replacing what it published
     * before.  Publish after every change and after every full re-list, so
     * that a backend gone while the plugin was not looking leaves too.
     * The core copies the set and applies it soon, changes coalesced, as a
     * reload: new backends take requests at once, removed ones finish the
     * requests they have; flags, cooldowns and counters carry over by URL.
     * A backend whose `ready` is 0 stays in /engines but gets no request.
     * SY_ERROR (nothing changes) for a set with a bad URL or model name. */
    int (*discovery_publish)(const struct sy_host_api *host,
                             const struct sy_discovered *set, size_t n);
    /* Health and discovery plugins, on their thread: start a long GET (see
     * sy_stream).  opts may be NULL.  NULL when it could not start. */
    sy_stream *(*http_stream)(const struct sy_host_api *host, const char *url,
                              const struct sy_http_options *opts,
                              sy_stream_head_cb on_head, sy_stream_data_cb on_data,
                              sy_stream_end_cb on_end, void *arg);
    /* Stop a stream before its on_end; no callback follows.  Not from inside
     * its own on_data (return non-zero there instead). */
    void (*http_stream_cancel)(sy_stream *s);
    /* The plugin's own numbers in /metrics, as
     * switchyard_plugin_counter_total{plugin,name} (counter_add: adds
     * delta) and switchyard_plugin_gauge{plugin,name} (gauge_set).  name:
     * [a-z0-9_], at most 47 bytes; at most 16 names a plugin.  Any thread,
     * e.g. a discovery plugin's watch restarts, re-lists and API errors. */
    void (*counter_add)(const struct sy_host_api *host, const char *name, double delta);
    void (*gauge_set)(const struct sy_host_api *host, const char *name, double value);
    /* Health and discovery plugins, on their thread: look `name` up
     * (type: enum sy_dns_type) without blocking; cb runs once, later, on
     * that thread (see sy_dns_cb), at the latest about `timeout` seconds
     * on.  resolver: "ADDRESS:PORT" ("10.96.0.10:53", "[fd00::a]:53"; the
     * port defaults to 53), numeric, or NULL for the system's
     * (/etc/resolv.conf, its search list and ndots applied to A and AAAA
     * as getaddrinfo() does; a name ending in '.' is not searched).  A
     * and AAAA go through libevent's evdns (at most 32 records an
     * answer); SRV through the host's own strict codec over UDP, with an
     * EDNS0 offer of 4096 bytes (a truncated answer is an error: there is
     * no TCP fallback).  Each query is sent twice at most, half the
     * timeout apart.  Queries still pending when the plugin's thread stops
     * are dropped without a callback.  SY_ERROR (no callback) for a bad
     * name, type or resolver, or off the plugin's thread. */
    int (*dns_resolve)(const struct sy_host_api *host, const char *name, int type,
                       const char *resolver, double timeout, sy_dns_cb cb, void *arg);

    /* --- Appended in ABI 1.4 (check `size`). --- */

    /* b's engine stats (see struct sy_engine_stats): SY_OK, or SY_DECLINED
     * when the engine was never scraped (engine_stats_interval is 0, or
     * its first scrape has not answered).  Any thread, no lock taken:
     * cheap enough for every candidate of every pick. */
    int (*backend_engine_stats)(const sy_backend *b, struct sy_engine_stats *out);
    /* b's request stats (see struct sy_request_stats).  Any thread. */
    void (*backend_request_stats)(const sy_backend *b, struct sy_request_stats *out);
};

/*
 * The plugin descriptor.  Fields after `size` may be read only once the
 * loader has checked magic, ABI and size.
 */
struct sy_plugin {
    uint32_t magic;     /* SY_PLUGIN_MAGIC */
    uint16_t abi_major; /* SY_ABI_MAJOR the plugin was built against */
    uint16_t abi_minor; /* SY_ABI_MINOR the plugin was built against */
    uint32_t size;      /* sizeof(struct sy_plugin) the plugin was built with */
    uint32_t kind;      /* enum sy_plugin_kind */
    uint32_t flags;     /* SY_PLUGIN_F_* */
    const char *name;   /* short name, matches the file name */
    const char *version;
    const char *description;

    /*
     * Make an instance from the plugin's config section (never NULL; an
     * empty map when the config file has none).  `host` is valid until
     * destroy().  On failure return SY_ERROR and write a one-line reason to
     * err (at most errlen bytes, terminated): the daemon then refuses to
     * start, naming the plugin and the reason.  Main thread.
     */
    int (*create)(const struct sy_host_api *host, const sy_config *cfg,
                  void **inst, char *err, size_t errlen);
    /* Free an instance.  Main thread, after its last hook returned. */
    void (*destroy)(void *inst);

    /*
     * SY_KIND_ROUTING.  Pick one of `candidates` (the model's backends that
     * are healthy, not cooling down and not yet tried by this request, never
     * empty) and store its position in *pick.  Return SY_OK, SY_DECLINED to
     * let the next routing plugin decide (the core falls back to the first
     * candidate when all decline), or SY_ERROR.  Worker thread.
     */
    int (*route)(void *inst, const sy_request *req,
                 const sy_backend *const *candidates, size_t ncandidates,
                 size_t *pick);

    /*
     * SY_KIND_FALLBACK.  q->model could not be served: name the next model
     * in *next_model (owned by the plugin or the host; need not be checked:
     * the core ignores unknown and already-tried models and asks the next
     * plugin) and return SY_OK, or return SY_DECLINED.  Worker thread.
     */
    int (*fallback)(void *inst, const struct sy_fallback_query *q,
                    const char **next_model);

    /* --- ABI 1.1: two of 1.0's reserved slots. --- */

    /*
     * SY_KIND_HEALTH.  Health plugins always have one instance (as if
     * SY_PLUGIN_F_SHARED).  start() runs once on the control thread before the
     * first request is served from its setup (at start, and for a
     * reloaded setup before it takes requests): set up timers and probes,
     * and set the flags that must hold from the first request.  Optional.
     * SY_KIND_DISCOVERY (1.3): one instance too, created when the config
     * is loaded (at start and on each reload, not when its own changes
     * remake the setup); start() runs once on the discovery thread, where
     * its timers, requests and streams run.  Until it first publishes, the
     * set its predecessor (same name, before a reload) published stands.
     */
    int (*start)(void *inst);
    /*
     * SY_KIND_HEALTH.  Called after every upstream attempt, on the worker
     * thread that made it, concurrently from several workers: be
     * thread-safe and quick.  Optional.
     */
    void (*attempt_done)(void *inst, const struct sy_attempt_report *r);

    /* Room for the hooks of later minor versions; keep NULL. */
    void *reserved[6];

    /* --- ABI 1.2: appended (a 1.0 or 1.1 descriptor is shorter; the
     * loader reads what it lacks as NULL). --- */

    /*
     * SY_KIND_FALLBACK, optional.  Asked after every failed attempt, before
     * the model's other attempts (retries, Retry-After waits), with q->attempts
     * ending in the one that just failed: name a model in *next_model and
     * return SY_OK to fall back to it now; SY_RETRY to let the rules retry
     * the model (no further plugin is asked); SY_DECLINED to have no
     * opinion (the next plugin is asked; when all decline, the rules go
     * on).  fallback() is still asked when the model is exhausted.
     * Worker thread.
     */
    int (*attempt_failed)(void *inst, const struct sy_fallback_query *q,
                          const char **next_model);
    /*
     * SY_KIND_ROUTING, optional.  How each attempt of a request that went
     * through route() ended: a failure when it failed, an answer when the
     * answer is complete (bytes known).  On the worker, and the instance,
     * that routed it.  nginx's peer free(), varnish's director finish().
     */
    void (*outcome)(void *inst, const sy_request *req, const struct sy_outcome *o);
    /*
     * SY_KIND_ROUTING, optional.  The request is over (after its last
     * outcome, or without any when it never reached a backend): free what
     * the plugin's request_slot() holds.  Same worker and instance.
     */
    void (*request_done)(void *inst, const sy_request *req, void *slot);
    /*
     * SY_KIND_ROUTING and SY_KIND_FALLBACK, optional.  A worker begins
     * serving from this instance's setup (when the router starts, and after
     * each reload): called on that worker's thread, once per worker (a
     * SY_PLUGIN_F_SHARED instance is called by every worker).  Per-worker
     * timers (worker_timer_add) start here.
     */
    int (*worker_start)(void *inst);

    /* --- ABI 1.3: appended. --- */

    /*
     * SY_KIND_DISCOVERY, optional.  An attempt on `url`, a backend this or
     * another discovery plugin published, could not connect or timed out:
     * a hint that what the plugin knows may be stale (a DNS record, say),
     * worth a look sooner than its interval.  On the plugin's thread, soon
     * after the failure; each plugin judges whether the URL is its own and
     * how often to act.
     */
    void (*backend_failed)(void *inst, const char *url);
};

/* The first fields of every descriptor. */
#define SY_PLUGIN_HEADER                                                     \
    .magic = SY_PLUGIN_MAGIC, .abi_major = SY_ABI_MAJOR,                     \
    .abi_minor = SY_ABI_MINOR, .size = sizeof(struct sy_plugin)

#ifdef __cplusplus
}
#endif

#endif /* SWITCHYARD_PLUGIN_H */
