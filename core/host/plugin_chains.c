#include "plugin_chains.h"

#include "host_api.h"
#include "discovery.h"
#include "log.h"
#include "request.h"
#include "setup.h"

size_t chains_route(const struct setup *s, int worker, struct sy_request *req,
                    struct backend *const *cands, size_t n)
{
    for (size_t i = 0; i < s->routing.n; i++) {
        const struct plugin_slot *slot = &s->routing.slots[i];
        size_t choice = 0;
        int rc = slot->plugin->desc->route(plugin_slot_instance(slot, worker), req,
                                           (const sy_backend *const *)cands, n, &choice);
        if (rc == SY_OK && choice < n)
            return choice;
        if (rc == SY_ERROR)
            LOG_WARN("request %s: routing plugin %s failed; asking the next", req->id,
                     slot->plugin->name);
        else if (rc == SY_OK)
            LOG_WARN("request %s: routing plugin %s picked %zu of %zu candidates; asking the next",
                     req->id, slot->plugin->name, choice, n);
    }
    return 0; /* every plugin declined */
}

int chains_has_attempt_hooks(const struct setup *s)
{
    for (size_t i = 0; i < s->fallback.n; i++)
        if (s->fallback.slots[i].plugin->desc->attempt_failed != NULL)
            return 1;
    return 0;
}

const char *chains_fallback(const struct setup *s, int worker, const struct sy_fallback_query *q,
                            int after_attempt, int (*accept)(void *ctx, const char *name),
                            void *ctx, int *retry)
{
    const char *id = q->req ? ((const struct sy_request *)q->req)->id : "-";

    *retry = 0;
    for (size_t i = 0; i < s->fallback.n; i++) {
        const struct plugin_slot *slot = &s->fallback.slots[i];
        const struct sy_plugin *d = slot->plugin->desc;
        const char *next = NULL;
        int rc;

        if (after_attempt && d->attempt_failed == NULL)
            continue;
        rc = after_attempt ? d->attempt_failed(plugin_slot_instance(slot, worker), q, &next)
                           : d->fallback(plugin_slot_instance(slot, worker), q, &next);
        if (rc == SY_RETRY && after_attempt) {
            *retry = 1;
            return NULL;
        }
        if (rc == SY_ERROR)
            LOG_WARN("request %s: fallback plugin %s failed; asking the next", id,
                     slot->plugin->name);
        if (rc != SY_OK || next == NULL)
            continue;
        if (accept(ctx, next))
            return next;
        LOG_DEBUG("request %s: fallback plugin %s named '%s', which cannot be taken", id,
                  slot->plugin->name, next);
    }
    return NULL;
}

void chains_attempt_report(const struct setup *s, const struct sy_attempt_report *r)
{
    const struct backend *b = (const struct backend *)r->backend;
    /* a discovered backend that stopped answering: discovery may know
     * better soon (a DNS record that moved) */
    if (b->discovered && (r->error == SY_ATTEMPT_CONNECT || r->error == SY_ATTEMPT_TIMEOUT))
        discovery_backend_failed(b->url);
    for (size_t i = 0; i < s->health.n; i++) {
        const struct plugin_slot *slot = &s->health.slots[i];
        if (slot->plugin->desc->attempt_done != NULL)
            slot->plugin->desc->attempt_done(slot->inst[0], r);
    }
}

void chains_outcome(const struct setup *s, int worker, const struct sy_request *req,
                    const struct sy_outcome *o)
{
    for (size_t i = 0; i < s->routing.n; i++) {
        const struct plugin_slot *slot = &s->routing.slots[i];
        if (slot->plugin->desc->outcome != NULL)
            slot->plugin->desc->outcome(plugin_slot_instance(slot, worker), req, o);
    }
}

void chains_worker_start(const struct setup *s, int worker)
{
    const struct chain *chains[] = { &s->routing, &s->fallback };

    for (size_t c = 0; c < 2; c++)
        for (size_t i = 0; i < chains[c]->n; i++) {
            const struct plugin_slot *slot = &chains[c]->slots[i];
            if (slot->borrowed || slot->plugin->desc->worker_start == NULL)
                continue;
            if (slot->plugin->desc->worker_start(plugin_slot_instance(slot, worker)) != SY_OK)
                LOG_WARN("plugin %s: worker_start failed on worker %d", slot->plugin->name,
                         worker);
        }
}

void chains_request_done(const struct setup *s, int worker, struct sy_request *req)
{
    for (size_t i = 0; i < s->routing.n; i++) {
        const struct plugin_slot *slot = &s->routing.slots[i];
        if (slot->plugin->desc->request_done != NULL)
            slot->plugin->desc->request_done(plugin_slot_instance(slot, worker), req,
                                             request_slot_value(req, slot->host->source));
    }
}
