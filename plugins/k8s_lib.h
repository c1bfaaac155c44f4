/*
 * k8s_lib.h - the pure parts of the k8s discovery plugin: no network, no
 * host API, so the unit tests and the fuzzer drive them directly.
 *
 *   k8s_select.c      label selectors (parse, match) and URL escaping
 *   k8s_kubeconfig.c  the kubeconfig fields the plugin uses (libyaml), base64
 *   k8s_watch.c       watch stream framing, Kubernetes objects, the object
 *                     table that LISTs fill and watch events change, and the
 *                     rules that make a pod or a Service a backend
 *   k8s_models.c      a backend's GET /v1/models answer
 *
 * Strings in these structures are malloc'd and owned by the structure; each
 * has a free function that takes a zeroed or half-filled structure too.
 */
#ifndef SY_K8S_LIB_H
#define SY_K8S_LIB_H

#include <stddef.h>

/* ---- k8s_select.c ---- */

struct k8s_label {
    char *key, *value;
};

enum k8s_op {
    K8S_OP_EXISTS,     /* a */
    K8S_OP_NOT_EXISTS, /* !a */
    K8S_OP_IN,         /* a=b, a==b, a in (x,y) */
    K8S_OP_NOT_IN      /* a!=b, a notin (x,y): also true without the label */
};

struct k8s_requirement {
    char *key;
    int op; /* enum k8s_op */
    char **values;
    size_t nvalues;
};

/* Every requirement must hold; no requirement matches everything. */
struct k8s_selector {
    struct k8s_requirement *reqs;
    size_t n;
};

/* Parse Kubernetes' label selector syntax ("environment=test,release=test",
 * "tier!=cache", "gpu", "!canary", "env in (prod,test)", "zone notin (a)").
 * 0, or -1 with a reason in err. */
int k8s_selector_parse(const char *text, struct k8s_selector *out, char *err, size_t errlen);
void k8s_selector_free(struct k8s_selector *s);
/* 1 when the labels satisfy the selector, else 0. */
int k8s_selector_match(const struct k8s_selector *s, const struct k8s_label *labels,
                       size_t nlabels);
/* s with every byte but A-Z a-z 0-9 - . _ ~ as %XX (for a query string);
 * malloc'd, NULL when out of memory. */
char *k8s_url_escape(const char *s);

/* ---- k8s_kubeconfig.c ---- */

/* What the plugin needs of a kubeconfig: the chosen context's cluster and
 * user.  Paths are absolute (a relative one is taken from the file's
 * directory, as kubectl does); the *_pem fields hold the decoded -data
 * forms, which win over the file forms. */
struct k8s_kubeconfig {
    char *context;          /* the context used */
    char *server;           /* e.g. "https://10.0.0.1:6443", no trailing '/' */
    char *namespace_;       /* the context's namespace, or NULL */
    char *ca_file, *ca_pem;
    int insecure;           /* insecure-skip-tls-verify: true */
    char *token, *token_file;
    char *cert_file, *key_file, *cert_pem, *key_pem;
};

/* One kubeconfig file's text; `dir` is its directory, for relative paths.
 * `context`: the context to use, NULL for the file's current-context.
 * 0, or -1 with a reason in err (which names what is wrong: no such
 * context, a user with exec credentials, bad base64, ...). */
int k8s_kubeconfig_parse(const char *text, size_t len, const char *dir, const char *context,
                         struct k8s_kubeconfig *out, char *err, size_t errlen);
void k8s_kubeconfig_free(struct k8s_kubeconfig *kc);
/* Standard base64 (RFC 4648, padding optional, whitespace skipped) into a
 * malloc'd NUL-terminated buffer; its length in *outlen.  NULL when the
 * text is not base64 (or out of memory). */
char *k8s_base64_decode(const char *in, size_t len, size_t *outlen);

/* ---- k8s_watch.c ---- */

/* A watch answer is one JSON event per line, in pieces of any size. */
#define K8S_MAX_LINE (8u * 1024 * 1024)
#define K8S_LINE_TOO_LONG (-2)

typedef int (*k8s_line_fn)(void *arg, const char *line, size_t len);

struct k8s_lines {
    char *buf;
    size_t len, cap;
    size_t max; /* 0: K8S_MAX_LINE */
};

/* Hand each complete line (without its "\n" or "\r\n"; empty lines are
 * skipped) to fn, keeping a partial one for the next call.  0; the first
 * non-zero return of fn; or K8S_LINE_TOO_LONG when a line grows past max
 * (the buffer is dropped: the stream must start over). */
int k8s_lines_feed(struct k8s_lines *l, const char *data, size_t len, k8s_line_fn fn, void *arg);
/* The stream ended: what is left (a last line without "\n") goes to fn. */
int k8s_lines_finish(struct k8s_lines *l, k8s_line_fn fn, void *arg);
void k8s_lines_reset(struct k8s_lines *l);

enum k8s_kind { K8S_POD, K8S_SERVICE, K8S_ENDPOINTSLICE };

/* The fields of an object that discovery looks at. */
struct k8s_obj {
    char *name, *uid, *rv;
    struct k8s_label *labels;
    size_t nlabels;
    /* pods */
    char *phase;   /* status.phase, NULL when absent */
    char *pod_ip;  /* status.podIP (else podIPs[0].ip), NULL when none */
    int ready;     /* the Ready condition is "True" */
    int deleting;  /* metadata.deletionTimestamp is set */
    /* endpointslices */
    char *service;       /* label kubernetes.io/service-name */
    size_t ready_endpoints; /* endpoints with an address whose ready
                               condition is true or absent */
};

void k8s_obj_free(struct k8s_obj *o);
/* The value of a label, or NULL. */
const char *k8s_obj_label(const struct k8s_obj *o, const char *key);

/* Objects of one kind by name (one namespace), and the resourceVersion the
 * table is at: the LIST's, then each event's or bookmark's. */
struct k8s_table {
    int kind;
    struct k8s_obj *objs; /* sorted by name */
    size_t n, cap;
    char *rv;
};

void k8s_table_init(struct k8s_table *t, int kind);
void k8s_table_free(struct k8s_table *t);
const struct k8s_obj *k8s_table_find(const struct k8s_table *t, const char *name);
/* Move the contents of src into dst (dst's old contents are freed). */
void k8s_table_swap_in(struct k8s_table *dst, struct k8s_table *src);

/* A LIST answer ({"kind":"PodList","metadata":{"resourceVersion":..},
 * "items":[...]}) into a fresh table.  Items without a name are skipped
 * (counted in *skipped when not NULL).  0, or -1 with err. */
int k8s_list_parse(int kind, const char *body, size_t len, struct k8s_table *out,
                   size_t *skipped, char *err, size_t errlen);

enum k8s_event_type {
    K8S_EV_ADDED, K8S_EV_MODIFIED, K8S_EV_DELETED, K8S_EV_BOOKMARK, K8S_EV_ERROR
};

struct k8s_event {
    int type;           /* enum k8s_event_type */
    char name[256];     /* the object's name (ADDED, MODIFIED, DELETED) */
    int code;           /* ERROR: the Status code (410: resourceVersion too old) */
    char message[256];  /* ERROR: the Status message */
};

/* Apply one watch event line to the table: ADDED and MODIFIED put the
 * object in, DELETED takes it out, BOOKMARK moves the resourceVersion
 * only, ERROR changes nothing (the caller must LIST again).  0 with *ev
 * filled, or -1 with err for a line that is no event (the caller must LIST
 * again too: the stream can no longer be trusted). */
int k8s_event_apply(struct k8s_table *t, const char *line, size_t len, struct k8s_event *ev,
                    char *err, size_t errlen);

/* For a log line: the message of a failed answer's Status object, else
 * its first bytes as printable text ("(empty)" when there are none). */
void k8s_status_message(const char *body, size_t len, char *out, size_t outlen);

/* Is this pod a backend?  Running, with a pod IP, Ready, not being deleted,
 * and its labels match sel (the watch reports a relabelled pod as
 * MODIFIED).  1, or 0 with the first reason it is not in *why. */
int k8s_pod_serving(const struct k8s_obj *pod, const struct k8s_selector *sel, const char **why);
/* Is this Service a backend?  Its labels match sel and one of its
 * EndpointSlices (from `slices`) has a ready endpoint.  1, or 0 and *why. */
int k8s_service_serving(const struct k8s_obj *svc, const struct k8s_selector *sel,
                        const struct k8s_table *slices, const char **why);

/* ---- k8s_models.c ---- */

#define K8S_MAX_MODELS 4096

/* A backend's models: the ids of GET /v1/models, base models and LoRA
 * adapters (an entry with a "parent") alike, each routable by its id. */
struct k8s_models {
    char **ids;
    char **parents; /* parents[i]: the base model of adapter i, or NULL */
    size_t n;
    size_t skipped; /* entries without a usable id (empty, control bytes,
                       a duplicate, past K8S_MAX_MODELS) */
};

/* {"object":"list","data":[{"id":"m","parent":null},...]}: 0, or -1 with
 * err when it is no models list or has no usable id. */
int k8s_models_parse(const char *body, size_t len, struct k8s_models *out, char *err,
                     size_t errlen);
void k8s_models_free(struct k8s_models *m);
/* The same ids in the same order. */
int k8s_models_equal(const struct k8s_models *a, const struct k8s_models *b);
/* A model name the router accepts: not empty, at most 512 bytes, no
 * control byte. */
int k8s_model_name_ok(const char *s, size_t len);

#endif
