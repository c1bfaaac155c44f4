/*
 * passive: outlier detection from live traffic.  A backend whose attempts
 * fail (as docs/fallback.md defines failure: connection errors, timeouts,
 * 5xx, 429) `consecutive` times in a row, or at `failure_ratio` or more of
 * at least `min_requests` attempts within `window`, goes into cooldown for
 * `cooldown`, doubled on each repeat up to `max_cooldown`; a Retry-After
 * from the backend sets the cooldown instead.  When the cooldown ends, one
 * trial request decides: success makes it healthy, failure starts a longer
 * cooldown.
 *
 *   health: [passive]
 *   plugin_config:
 *     passive: {consecutive: 5, failure_ratio: 0.5, min_requests: 10,
 *               window: 10s, cooldown: 5s, max_cooldown: 300s}
 *
 * attempt_done() runs on every worker at once: one mutex guards the
 * counters, held for a few arithmetic steps.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <switchyard/plugin.h>

struct stats {
    long long consecutive;
    long long window_total, window_failed;
    double window_start;
    int ejections;         /* cooldowns in a row, for the exponential */
    double last_ejection;
};

struct passive {
    const struct sy_host_api *host;
    long long consecutive, min_requests;
    double failure_ratio, window, cooldown, max_cooldown;
    pthread_mutex_t lock;
    struct stats *stats;   /* by backend index */
    size_t nstats;
};

static int read_settings(struct passive *p, const sy_config *cfg, char *err, size_t errlen)
{
    const struct sy_host_api *h = p->host;
    double ratio = 0.5;
    const char *bad = NULL, *want = "";
    char where[256];

    p->consecutive = 5;
    p->min_requests = 10;
    p->window = 10;
    p->cooldown = 5;
    p->max_cooldown = 300;
    if (h->config_int(cfg, "consecutive", &p->consecutive) == SY_ERROR || p->consecutive < 1)
        bad = "consecutive", want = "a whole number >= 1";
    else if (h->config_int(cfg, "min_requests", &p->min_requests) == SY_ERROR || p->min_requests < 1)
        bad = "min_requests", want = "a whole number >= 1";
    else if (h->config_seconds(cfg, "failure_ratio", &ratio) == SY_ERROR || ratio <= 0 || ratio > 1)
        bad = "failure_ratio", want = "a fraction above 0, at most 1";
    else if (h->config_seconds(cfg, "window", &p->window) == SY_ERROR || !(p->window > 0))
        bad = "window", want = "seconds > 0";
    else if (h->config_seconds(cfg, "cooldown", &p->cooldown) == SY_ERROR || !(p->cooldown > 0))
        bad = "cooldown", want = "seconds > 0";
    else if (h->config_seconds(cfg, "max_cooldown", &p->max_cooldown) == SY_ERROR ||
             p->max_cooldown < p->cooldown)
        bad = "max_cooldown", want = "seconds, at least the cooldown";
    if (bad != NULL) {
        h->config_where(cfg, bad, where, sizeof where);
        snprintf(err, errlen, "%s: plugin_config.passive.%s: expected %s", where, bad, want);
        return -1;
    }
    p->failure_ratio = ratio;
    return 0;
}

static void pv_destroy(void *inst)
{
    struct passive *p = inst;

    pthread_mutex_destroy(&p->lock);
    free(p->stats);
    free(p);
}

static int pv_create(const struct sy_host_api *host, const sy_config *cfg, void **inst,
                     char *err, size_t errlen)
{
    struct passive *p;

    if (host->size < offsetof(struct sy_host_api, backend_set_state) + sizeof host->backend_set_state) {
        snprintf(err, errlen, "needs switchyard with plugin ABI 1.1");
        return SY_ERROR;
    }
    p = calloc(1, sizeof *p);
    if (p == NULL)
        return SY_ERROR;
    p->host = host;
    pthread_mutex_init(&p->lock, NULL);
    if (read_settings(p, cfg, err, errlen) != 0) {
        pv_destroy(p);
        return SY_ERROR;
    }
    p->nstats = host->backend_count(host);
    p->stats = calloc(p->nstats ? p->nstats : 1, sizeof *p->stats);
    if (p->stats == NULL) {
        pv_destroy(p);
        return SY_ERROR;
    }
    *inst = p;
    return SY_OK;
}

/* The cooldown for one more ejection: doubled each time, capped.  A backend
 * healthy for a while (two max cooldowns) starts again from the base. */
static double next_cooldown(struct passive *p, struct stats *st, double now)
{
    double c = p->cooldown;

    if (st->ejections > 0 && now - st->last_ejection > 2 * p->max_cooldown)
        st->ejections = 0;
    for (int i = 0; i < st->ejections && c < p->max_cooldown; i++)
        c *= 2;
    if (c > p->max_cooldown)
        c = p->max_cooldown;
    st->ejections++;
    st->last_ejection = now;
    return c;
}

static void pv_attempt_done(void *inst, const struct sy_attempt_report *r)
{
    struct passive *p = inst;
    const struct sy_host_api *h = p->host;
    unsigned idx = h->backend_index(r->backend);
    double now = h->now(), seconds = 0;
    char why[160] = "";
    int eject = 0, recovered = 0;

    if (idx >= p->nstats)
        return;
    /* Taken out by an active check: its verdict holds.  A late failure (a
     * request already in flight) must not turn it into a cooldown, nor a
     * late trial success make it healthy, while its probes still fail. */
    if (h->backend_state(r->backend) == SY_BACKEND_UNHEALTHY)
        return;
    pthread_mutex_lock(&p->lock);
    struct stats *st = &p->stats[idx];
    if (now - st->window_start > p->window) {
        st->window_start = now;
        st->window_total = st->window_failed = 0;
    }
    st->window_total++;
    if (r->error == SY_ATTEMPT_NONE) {
        st->consecutive = 0;
        recovered = r->trial;
    } else {
        st->consecutive++;
        st->window_failed++;
        if (r->trial) {
            eject = 1;
            snprintf(why, sizeof why, "trial request failed");
        } else if (st->consecutive >= p->consecutive) {
            eject = 1;
            snprintf(why, sizeof why, "%lld failed attempts in a row", st->consecutive);
        } else if (st->window_total >= p->min_requests &&
                   (double)st->window_failed >= p->failure_ratio * (double)st->window_total) {
            eject = 1;
            snprintf(why, sizeof why, "%lld of %lld attempts failed within %gs",
                     st->window_failed, st->window_total, p->window);
        }
        if (eject) {
            seconds = next_cooldown(p, st, now);
            /* the backend said how long: believe it */
            if (r->retry_after > 0)
                seconds = r->retry_after < p->max_cooldown ? r->retry_after : p->max_cooldown;
            st->consecutive = 0;
            st->window_total = st->window_failed = 0;
        }
    }
    pthread_mutex_unlock(&p->lock);
    if (eject) {
        size_t used = strlen(why);
        if (r->status != 0)
            snprintf(why + used, sizeof why - used, " (last: status %d)", r->status);
        h->backend_set_state(h, r->backend, SY_BACKEND_COOLDOWN, seconds, why);
    } else if (recovered) {
        h->backend_set_state(h, r->backend, SY_BACKEND_HEALTHY, 0, "trial request succeeded");
    }
}

SY_EXPORT const struct sy_plugin sy_plugin_v1 = {
    SY_PLUGIN_HEADER,
    .kind = SY_KIND_HEALTH,
    .flags = SY_PLUGIN_F_SHARED,
    .name = "passive",
    .version = "1.0",
    .description = "outlier detection from live traffic, with exponential cooldowns",
    .create = pv_create,
    .destroy = pv_destroy,
    .attempt_done = pv_attempt_done,
};
