/*
 * dns_resolve: the DNS lookups of one control thread's plugins
 * (dns_resolve() in the host API), on its loop, never blocking.  A and
 * AAAA through libevent's evdns; SRV, which evdns does not ask, through
 * dns_packet over a UDP socket of its own.  One evdns_base per distinct
 * resolver (the system's, from /etc/resolv.conf, or "ADDRESS:PORT"), made
 * when first asked.
 */
#ifndef SY_DNS_RESOLVE_H
#define SY_DNS_RESOLVE_H

#include <switchyard/plugin.h>

struct event_base;
struct dns_resolver;

/* NULL when out of memory. */
struct dns_resolver *dns_resolver_new(struct event_base *base);
/* After the loop stopped: every pending query is dropped without its
 * callback. */
void dns_resolver_free(struct dns_resolver *r);
/* dns_resolve() of the host API, on the loop's thread: SY_OK, or SY_ERROR
 * (no callback) for a bad name, type, resolver or timeout. */
int dns_resolver_query(struct dns_resolver *r, const char *name, int type,
                       const char *resolver, double timeout, sy_dns_cb cb, void *arg);

#endif
