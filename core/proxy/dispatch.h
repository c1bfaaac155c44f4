/*
 * dispatch: one proxied request from arrival to answer.  Parse the body,
 * resolve the model, ask the routing chain for a backend, run the attempt,
 * and on failure retry on another backend or ask the fallback chain for
 * another model (rewriting `model` in the body), as retry.h decides.
 * Nothing reaches the client before an attempt has succeeded.
 */
#ifndef SY_DISPATCH_H
#define SY_DISPATCH_H

struct worker;
struct http_req;

/* Paths proxied by the body's model. */
int dispatch_is_proxied_path(const char *path);
/* Take over `req` (a POST to a proxied path) until its answer ends. */
void dispatch_request(struct worker *w, struct http_req *req);

#endif
