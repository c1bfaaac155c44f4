/*
 * backend_health: whether a backend takes requests, owned per source.
 *
 * Each health source (the operator, each plugin, later discovery) holds or
 * releases its own flag on a backend; a source may also put a backend in a
 * cooldown, after which one trial request decides.  A backend is usable
 * when no source holds its flag and no cooldown runs (envoy's host health
 * flags, haproxy's maintenance bits): one source saying "healthy" never
 * undoes another's "out".  Flags and the cooldown carry over a reload per
 * (source name, backend URL); a source gone after the reload takes its
 * flags with it.
 *
 * Written from any thread (plugins, the admin listener, workers), read by
 * workers on every pick without locks: atomics only.
 */
#ifndef SY_BACKEND_HEALTH_H
#define SY_BACKEND_HEALTH_H

struct backend;
struct setup;

/* Sources are bits of a 64-bit mask: index 0 is the operator's. */
#define HEALTH_MAX_SOURCES 64
#define HEALTH_SOURCE_OPERATOR 0u
/* An engine asleep (vllm_router's POST /sleep, until /wake_up): index 1. */
#define HEALTH_SOURCE_SLEEP 1u
/* The source that holds discovered backends that are not ready: set when
 * a setup is built from what discovery published, never carried over. */
#define HEALTH_SOURCE_DISCOVERY "discovery"

/* The source of this name in the setup, added when new; -1 when the
 * setup has HEALTH_MAX_SOURCES already.  Setup building only. */
int health_source(struct setup *s, const char *name);

/* Hold (on) or release source's flag on b; `reason` is logged and shown
 * in /engines when the backend's state changes. */
void backend_flag_set(struct backend *b, unsigned source, int on, const char *reason);
/* Does source hold its flag on b? */
int backend_flag_held(const struct backend *b, unsigned source);
/* Does the source of this name hold its flag on b? */
int backend_health_flagged_by(const struct backend *b, const char *source);
/* Every flag held on b, as a mask of sources. */
unsigned long long backend_flags(const struct backend *b);
/* A cooldown of `seconds` by source: no request until it ends, then one
 * trial request (backend_claim); a renewed cooldown starts over. */
void backend_cooldown(struct backend *b, unsigned source, double seconds, const char *reason);
/* End b's cooldown (its trial succeeded), whoever started it. */
void backend_cooldown_end(struct backend *b, const char *reason);
/* End b's cooldown if `source` started it. */
void backend_cooldown_release(struct backend *b, unsigned source, const char *reason);

/* enum sy_backend_state as plugins of ABI 1.1 saw it: UNHEALTHY while a
 * flag is held, COOLDOWN while a cooldown runs (ended or not, until its
 * trial succeeds), else HEALTHY. */
int backend_state(const struct backend *b);
/* ABI 1.1's backend_set_state, for `source`: UNHEALTHY holds its flag,
 * HEALTHY releases its flag and its cooldown, COOLDOWN starts one. */
void backend_set_state_by(struct backend *b, unsigned source, int state, double seconds,
                          const char *reason);
const char *backend_state_name(int state);

/* Can b take a request now?  No flag, and no cooldown, or one that has
 * ended and whose trial request is not out yet.  Takes nothing. */
int backend_usable(struct backend *b, long long now_ms);
/* Take b for one attempt: always when no cooldown; after an ended
 * cooldown only the first caller wins the trial.  1 when taken, and
 * *trial set. */
int backend_claim(struct backend *b, long long now_ms, int *trial);
/* A trial cut short decides nothing: let the next request try. */
void backend_trial_release(struct backend *b);

/* After a reload: b (of `to`) takes the flags and cooldown that `o` (of
 * `from`, the same URL) had, for the sources `to` has too. */
void backend_health_carry_over(struct backend *b, const struct setup *to,
                               const struct backend *o, const struct setup *from);

#endif
