#include "backend_health.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "setup.h"

int health_source(struct setup *s, const char *name)
{
    for (unsigned i = 0; i < s->nsources; i++)
        if (strcmp(s->sources[i], name) == 0)
            return (int)i;
    if (s->nsources == HEALTH_MAX_SOURCES)
        return -1;
    s->sources[s->nsources] = name;
    return (int)s->nsources++;
}

static const char *source_name(const struct backend *b, unsigned source)
{
    const struct setup *s = b->setup;
    return s != NULL && source < s->nsources ? s->sources[source] : "?";
}

const char *backend_state_name(int state)
{
    switch (state) {
    case SY_BACKEND_HEALTHY: return "healthy";
    case SY_BACKEND_UNHEALTHY: return "unhealthy";
    case SY_BACKEND_COOLDOWN: return "cooldown";
    }
    return "unknown";
}

int backend_state(const struct backend *b)
{
    if (atomic_load_explicit(&b->flags, memory_order_acquire) != 0)
        return SY_BACKEND_UNHEALTHY;
    if (atomic_load_explicit(&b->cooldown_until_ms, memory_order_acquire) != 0)
        return SY_BACKEND_COOLDOWN;
    return SY_BACKEND_HEALTHY;
}

/* The state may have changed: log and count a change once, whoever made
 * it (the exchange makes concurrent writers agree on who saw it). */
static void state_changed(struct backend *b, unsigned source, const char *reason,
                          double cooldown)
{
    int now = backend_state(b);
    int old = atomic_exchange_explicit(&b->shown_state, now, memory_order_acq_rel);
    const char *who = source_name(b, source);

    if (old == now && !(now == SY_BACKEND_COOLDOWN && cooldown > 0))
        return;
    pthread_mutex_lock(&b->info_lock);
    /* /engines shows the last error: recovering keeps it */
    if (now != SY_BACKEND_HEALTHY)
        snprintf(b->reason, sizeof b->reason, "%s: %s", who, reason ? reason : "");
    b->since = (long long)time(NULL);
    pthread_mutex_unlock(&b->info_lock);
    if (old == now)
        return; /* a renewed cooldown is not news */
    atomic_fetch_add_explicit(&b->state_changes, 1, memory_order_relaxed);
    if (now == SY_BACKEND_COOLDOWN)
        log_msg(SY_LOG_WARNING, "backend %s: %s -> cooldown for %.1fs (%s): %s", b->url,
                backend_state_name(old), cooldown, who, reason ? reason : "");
    else
        log_msg(now == SY_BACKEND_HEALTHY ? SY_LOG_INFO : SY_LOG_WARNING,
                "backend %s: %s -> %s (%s): %s", b->url, backend_state_name(old),
                backend_state_name(now), who, reason ? reason : "");
}

int backend_health_flagged_by(const struct backend *b, const char *source)
{
    const struct setup *s = b->setup;
    unsigned long long flags = backend_flags(b);
    for (unsigned i = 0; s != NULL && i < s->nsources; i++)
        if (strcmp(s->sources[i], source) == 0)
            return (int)(flags >> i & 1);
    return 0;
}

/* What /engines says of b now, and a log line, for news that is not a
 * source's flag change in this setup (discovery's, across setups). */
static void backend_note(struct backend *b, const char *what)
{
    pthread_mutex_lock(&b->info_lock);
    snprintf(b->reason, sizeof b->reason, "%s", what);
    b->since = (long long)time(NULL);
    pthread_mutex_unlock(&b->info_lock);
    log_msg(SY_LOG_INFO, "backend %s: %s", b->url, what);
}

void backend_flag_set(struct backend *b, unsigned source, int on, const char *reason)
{
    unsigned long long bit = 1ull << source;
    unsigned long long old;

    if (source >= HEALTH_MAX_SOURCES)
        return;
    if (on)
        old = atomic_fetch_or_explicit(&b->flags, bit, memory_order_acq_rel);
    else
        old = atomic_fetch_and_explicit(&b->flags, ~bit, memory_order_acq_rel);
    if (((old & bit) != 0) != (on != 0))
        state_changed(b, source, reason, 0);
}

int backend_flag_held(const struct backend *b, unsigned source)
{
    return source < HEALTH_MAX_SOURCES &&
           (atomic_load_explicit(&b->flags, memory_order_acquire) >> source & 1);
}

unsigned long long backend_flags(const struct backend *b)
{
    return atomic_load_explicit(&b->flags, memory_order_acquire);
}

void backend_cooldown(struct backend *b, unsigned source, double seconds, const char *reason)
{
    long long until = setup_now_ms() + (long long)(seconds * 1000);

    if (until == 0)
        until = 1; /* 0 means none */
    atomic_store_explicit(&b->cooldown_source, (int)source, memory_order_relaxed);
    atomic_store_explicit(&b->trial_taken, 0, memory_order_relaxed);
    atomic_store_explicit(&b->cooldown_until_ms, until, memory_order_release);
    state_changed(b, source, reason, seconds > 0 ? seconds : 1e-9);
}

void backend_cooldown_end(struct backend *b, const char *reason)
{
    unsigned source = (unsigned)atomic_load_explicit(&b->cooldown_source, memory_order_relaxed);

    if (atomic_exchange_explicit(&b->cooldown_until_ms, 0, memory_order_acq_rel) != 0)
        state_changed(b, source, reason, 0);
    atomic_store_explicit(&b->trial_taken, 0, memory_order_relaxed);
}

void backend_cooldown_release(struct backend *b, unsigned source, const char *reason)
{
    if (atomic_load_explicit(&b->cooldown_until_ms, memory_order_acquire) != 0 &&
        (unsigned)atomic_load_explicit(&b->cooldown_source, memory_order_relaxed) == source)
        backend_cooldown_end(b, reason);
}

void backend_set_state_by(struct backend *b, unsigned source, int state, double seconds,
                          const char *reason)
{
    switch (state) {
    case SY_BACKEND_UNHEALTHY:
        backend_flag_set(b, source, 1, reason);
        break;
    case SY_BACKEND_COOLDOWN:
        backend_cooldown(b, source, seconds, reason);
        break;
    default:
        backend_flag_set(b, source, 0, reason);
        backend_cooldown_release(b, source, reason);
        break;
    }
}

int backend_usable(struct backend *b, long long now_ms)
{
    long long until;

    if (atomic_load_explicit(&b->flags, memory_order_acquire) != 0)
        return 0;
    until = atomic_load_explicit(&b->cooldown_until_ms, memory_order_acquire);
    return until == 0 ||
           (now_ms >= until && !atomic_load_explicit(&b->trial_taken, memory_order_relaxed));
}

int backend_claim(struct backend *b, long long now_ms, int *trial)
{
    int expected = 0;

    *trial = 0;
    if (!backend_usable(b, now_ms))
        return 0;
    if (atomic_load_explicit(&b->cooldown_until_ms, memory_order_acquire) == 0)
        return 1;
    /* one trial after a cooldown: the first worker to get here */
    if (!atomic_compare_exchange_strong(&b->trial_taken, &expected, 1))
        return 0;
    *trial = 1;
    return 1;
}

void backend_trial_release(struct backend *b)
{
    atomic_store_explicit(&b->trial_taken, 0, memory_order_relaxed);
}

void backend_health_carry_over(struct backend *b, const struct setup *to,
                               const struct backend *o, const struct setup *from)
{
    unsigned long long held = atomic_load(&o->flags), flags = 0;
    long long until = atomic_load(&o->cooldown_until_ms);
    unsigned cd_source = (unsigned)atomic_load(&o->cooldown_source);
    int cd_kept = 0;

    int was_ready = 1, ready = 1;

    /* discovery's flag (not ready) is what the new setup was built from,
     * newer than the old one's */
    for (unsigned j = 0; j < to->nsources; j++)
        if (strcmp(to->sources[j], HEALTH_SOURCE_DISCOVERY) == 0) {
            flags |= atomic_load(&b->flags) & (1ull << j);
            ready = !(atomic_load(&b->flags) >> j & 1);
        }
    for (unsigned i = 0; i < from->nsources; i++)
        if (strcmp(from->sources[i], HEALTH_SOURCE_DISCOVERY) == 0)
            was_ready = !(held >> i & 1);
    for (unsigned i = 0; i < from->nsources; i++) {
        for (unsigned j = 0; j < to->nsources; j++) {
            if (strcmp(from->sources[i], to->sources[j]) != 0 ||
                strcmp(to->sources[j], HEALTH_SOURCE_DISCOVERY) == 0)
                continue;
            if (held >> i & 1)
                flags |= 1ull << j;
            if (until != 0 && i == cd_source) {
                atomic_store(&b->cooldown_source, (int)j);
                cd_kept = 1;
            }
        }
    }
    atomic_store(&b->flags, flags);
    atomic_store(&b->cooldown_until_ms, cd_kept ? until : 0);
    atomic_store(&b->trial_taken, 0);
    atomic_store(&b->shown_state, backend_state(b));
    if (ready != was_ready) {
        /* the news is discovery's: b says it since it was built */
        if (ready)
            backend_note(b, "ready (discovery)");
        return;
    }
    pthread_mutex_lock((pthread_mutex_t *)&o->info_lock);
    memcpy(b->reason, o->reason, sizeof b->reason);
    b->since = o->since;
    pthread_mutex_unlock((pthread_mutex_t *)&o->info_lock);
}
