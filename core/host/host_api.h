/*
 * host_api: the function table plugins call the core through.  Each plugin
 * slot gets its own host_ctx, so host functions know the plugin's name (for
 * log prefixes) and the setup they serve.
 */
#ifndef SY_HOST_API_H
#define SY_HOST_API_H

#include <switchyard/plugin.h>

struct setup;

struct host_ctx {
    struct sy_host_api api;  /* first: plugins hold &ctx->api */
    struct setup *setup;
    const char *plugin_name;
    unsigned source;         /* the plugin's health source (backend_health.h) */
};

void host_ctx_init(struct host_ctx *ctx, struct setup *setup,
                   const char *plugin_name, unsigned source);

#endif
