/*
 * A routing plugin that checks ABI 1.2's outcome() and request_done(): it
 * picks the first candidate, keeps a note in its request slot, and logs
 * each outcome and the end of each request with what the slot held.  A
 * request_done() that never came leaks the note (the sanitizer and
 * valgrind runs of the e2e tests fail then).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <switchyard/plugin.h>

struct note {
    char id[64];
    int outcomes;
};

struct probe {
    const struct sy_host_api *host;
};

static int op_create(const struct sy_host_api *host, const sy_config *cfg, void **inst,
                     char *err, size_t errlen)
{
    struct probe *p = calloc(1, sizeof *p);
    if (p == NULL)
        return SY_ERROR;
    p->host = host;
    *inst = p;
    return SY_OK;
}

static void op_destroy(void *inst)
{
    free(inst);
}

static int op_route(void *inst, const sy_request *req, const sy_backend *const *c, size_t n,
                    size_t *pick)
{
    struct probe *p = inst;
    void **slot = p->host->request_slot(p->host, req);

    if (slot == NULL)
        return SY_ERROR;
    if (*slot == NULL) { /* the first pick of this request */
        struct note *nt = calloc(1, sizeof *nt);
        if (nt == NULL)
            return SY_ERROR;
        snprintf(nt->id, sizeof nt->id, "%s", p->host->request_id(req));
        *slot = nt;
    }
    *pick = 0;
    return SY_OK;
}

static void op_outcome(void *inst, const sy_request *req, const struct sy_outcome *o)
{
    struct probe *p = inst;
    void **slot = p->host->request_slot(p->host, req);
    struct note *nt = slot ? *slot : NULL;

    if (nt == NULL || strcmp(nt->id, p->host->request_id(req)) != 0) {
        p->host->log(p->host, SY_LOG_ERROR, "outcome_probe: FAIL no note for %s",
                     p->host->request_id(req));
        return;
    }
    nt->outcomes++;
    p->host->log(p->host, SY_LOG_INFO,
                 "outcome_probe: id=%s backend=%s model=%s error=%d status=%d bytes=%llu "
                 "ttfb_set=%d latency_ok=%d",
                 nt->id, p->host->backend_url(o->backend), o->model, o->error, o->status,
                 o->bytes, o->ttfb >= 0, o->latency >= 0 && o->latency >= o->ttfb);
}

static void op_request_done(void *inst, const sy_request *req, void *slot)
{
    struct probe *p = inst;
    struct note *nt = slot;

    p->host->log(p->host, SY_LOG_INFO, "outcome_probe: done id=%s outcomes=%d",
                 nt ? nt->id : "(none)", nt ? nt->outcomes : -1);
    free(nt);
}

SY_EXPORT const struct sy_plugin sy_plugin_v1 = {
    SY_PLUGIN_HEADER, .kind = SY_KIND_ROUTING, .name = "outcome_probe", .version = "1",
    .create = op_create, .destroy = op_destroy, .route = op_route,
    .outcome = op_outcome, .request_done = op_request_done,
};
