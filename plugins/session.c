/*
 * session: requests of one session go to the same backend, by rendezvous
 * (highest random weight) hashing of the session key over the candidates.
 *
 *   routing: [session, least_loaded]
 *   plugin_config:
 *     session: {key: X-Session-Id}     # --session-key X-Session-Id
 *
 * The key is the request header named `key`, else the top-level string
 * field of the JSON body with that name (e.g. `key: user`).  Each candidate
 * scores hash(session key, backend URL) and the highest wins, so:
 *   - only the candidates the core hands over (healthy, not yet tried)
 *     count, and a retry moves to the session's second choice;
 *   - a backend leaving moves only its own sessions, one joining takes only
 *     its fair share (about 1/N), the rest stay where they were;
 *   - identity is the URL, not the position in the list, so router replicas
 *     with the same backends choose alike with no shared state.
 * A request without the key (or with an empty one) is declined: the next
 * routing plugin of the chain decides, hence `[session, least_loaded]`.
 *
 * Stateless after create(), so one instance serves every worker.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <switchyard/plugin.h>

#include "hash.h"

struct session {
    const struct sy_host_api *host;
    char *key;
};

static int session_create(const struct sy_host_api *host, const sy_config *cfg,
                          void **inst, char *err, size_t errlen)
{
    struct session *s;
    const char *key = NULL, *name;
    const sy_config *v;
    char where[256];
    int rc;

    /* unknown keys are typos: say so, like the core does for its own keys */
    for (size_t i = 0; (rc = host->config_entry(cfg, i, &name, &v)) == SY_OK; i++) {
        if (strcmp(name, "key") != 0) {
            host->config_where(cfg, name, where, sizeof where);
            snprintf(err, errlen, "%s: session.%s: unknown key (expected key)", where, name);
            return SY_ERROR;
        }
    }
    if (rc == SY_ERROR) {
        host->config_where(cfg, NULL, where, sizeof where);
        snprintf(err, errlen, "%s: session: expected a map with key", where);
        return SY_ERROR;
    }
    rc = host->config_string(cfg, "key", &key);
    if (rc != SY_OK || key == NULL || *key == '\0') {
        host->config_where(cfg, rc == SY_DECLINED ? NULL : "key", where, sizeof where);
        snprintf(err, errlen,
                 "%s: session.key: expected the name of the header or body field "
                 "that keys sessions (or --session-key)", where);
        return SY_ERROR;
    }
    s = calloc(1, sizeof *s);
    if (s == NULL || (s->key = strdup(key)) == NULL) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return SY_ERROR;
    }
    s->host = host;
    *inst = s;
    return SY_OK;
}

static void session_destroy(void *inst)
{
    struct session *s = inst;
    free(s->key);
    free(s);
}

static int session_route(void *inst, const sy_request *req,
                         const sy_backend *const *candidates, size_t n, size_t *pick)
{
    struct session *s = inst;
    const struct sy_host_api *h = s->host;
    const char *value, *best_url = NULL;
    uint64_t key, best = 0;
    size_t choice = 0;

    if (req == NULL)
        return SY_DECLINED;
    value = h->request_header(req, s->key);
    if (value == NULL || *value == '\0')
        value = h->request_body_string(req, s->key);
    if (value == NULL || *value == '\0')
        return SY_DECLINED;
    key = sy_hash_str(value);
    for (size_t i = 0; i < n; i++) {
        const char *url = h->backend_url(candidates[i]);
        uint64_t score = sy_hash_score(key, sy_hash_str(url));
        /* equal scores (astronomically rare): the smaller URL, so the
         * choice never depends on the candidates' order */
        if (best_url == NULL || score > best || (score == best && strcmp(url, best_url) < 0)) {
            best = score;
            best_url = url;
            choice = i;
        }
    }
    if (best_url == NULL)
        return SY_DECLINED;
    *pick = choice;
    return SY_OK;
}

SY_EXPORT const struct sy_plugin sy_plugin_v1 = {
    SY_PLUGIN_HEADER,
    .kind = SY_KIND_ROUTING,
    .flags = SY_PLUGIN_F_SHARED,
    .name = "session",
    .version = "1.0",
    .description = "session affinity by rendezvous hashing of a header or body field",
    .create = session_create,
    .destroy = session_destroy,
    .route = session_route,
};
