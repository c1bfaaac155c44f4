/*
 * dispatch: one proxied request from arrival to answer.  Parse the body,
 * resolve the model, ask the routing chain for a backend, run the attempt,
 * and on failure retry on another backend or ask the fallback chain for
 * another model (rewriting `model` in the body), as retry.h decides.
 * Nothing reaches the client before an attempt has succeeded.
 *
 * A body is JSON, or a multipart/form-data form (audio transcriptions,
 * image edits) whose `model` field is read and rewritten the same way.
 * vllm_router's `?id=ENGINE` pins a request to one engine (no other
 * backend, no fallback); an engine's own endpoints (/sleep, /wake_up,
 * /is_sleeping) go to the engine `?id=` names, whatever its health.
 */
#ifndef SY_DISPATCH_H
#define SY_DISPATCH_H

struct worker;
struct http_req;

enum dispatch_engine_op {
    ENGINE_OP_NONE,
    ENGINE_OP_SLEEP,       /* POST /sleep: once it answers 2xx the engine
                              gets no request until /wake_up does */
    ENGINE_OP_WAKE,        /* POST /wake_up */
    ENGINE_OP_IS_SLEEPING, /* GET /is_sleeping */
};

/* Paths proxied by the body's model, and the method each takes (1: POST,
 * 2: GET); 0 for other paths. */
int dispatch_proxied_path(const char *path);
/* An engine's own endpoint: its op, or ENGINE_OP_NONE. */
enum dispatch_engine_op dispatch_engine_path(const char *path, int *get);

/* Take over `req` (a request to a proxied path, its method checked) until
 * its answer ends. */
void dispatch_request(struct worker *w, struct http_req *req);
/* Take over a request to an engine's own endpoint. */
void dispatch_engine_request(struct worker *w, struct http_req *req, enum dispatch_engine_op op);

#endif
