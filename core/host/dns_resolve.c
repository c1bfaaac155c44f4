#include "dns_resolve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns_packet.h"
#include "log.h"

#define MAX_RESOLVERS 16  /* distinct resolvers one thread keeps */
#define MAX_NAMESERVERS 3 /* of the system's, tried in turn */
#define TRIES 2           /* each query is sent twice at most */
#define READS_A_WAKEUP 16 /* datagrams read before the loop runs again */

struct resolver {
    char key[128]; /* "" for the system's, else as the plugin wrote it */
    struct evdns_base *evdns;
    LIST_ENTRY(resolver) link;
};

struct query {
    struct dns_resolver *r;
    struct resolver *res;
    sy_dns_cb cb;
    void *arg;
    int type;
    char name[DNS_NAME_MAX + 1]; /* without a final '.' */
    double timeout;
    int done;                    /* the plugin has had its callback */
    /* A, AAAA: evdns calls on_evdns exactly once, even after a cancel,
     * so the query lives until then */
    struct evdns_request *ereq;
    struct event *deadline;
    /* SRV */
    evutil_socket_t fd;
    struct event *readable, *try_timer;
    unsigned id;
    int tries;
    char server[64];             /* the address asked, for messages */
    char why[160];               /* why the last send failed */
    LIST_ENTRY(query) link;
};

struct dns_resolver {
    struct event_base *base;
    LIST_HEAD(, resolver) resolvers;
    LIST_HEAD(, query) queries;
    unsigned char *buf;          /* one datagram, read into */
};

/* evdns logs through libevent's global log: its own debugging (dropped)
 * and warnings (a nameserver marked down), which are the plugin's to
 * report, so they go at debug. */
static void evdns_log(int is_warning, const char *msg)
{
    if (is_warning)
        LOG_DEBUG("evdns: %s", msg);
}

static pthread_once_t log_once = PTHREAD_ONCE_INIT;

static void set_evdns_log(void)
{
    evdns_set_log_fn(evdns_log);
}

struct dns_resolver *dns_resolver_new(struct event_base *base)
{
    struct dns_resolver *r = calloc(1, sizeof *r);

    pthread_once(&log_once, set_evdns_log);
    if (r == NULL || (r->buf = malloc(65536)) == NULL) {
        free(r);
        return NULL;
    }
    r->base = base;
    LIST_INIT(&r->resolvers);
    LIST_INIT(&r->queries);
    return r;
}

/* --- the resolvers --- */

/* "ADDRESS[:PORT]", numeric, port 53 by default.  -1 when it is not. */
static int parse_resolver(const char *text, struct sockaddr_storage *ss, int *len)
{
    *len = (int)sizeof *ss;
    memset(ss, 0, sizeof *ss);
    if (evutil_parse_sockaddr_port(text, (struct sockaddr *)ss, len) != 0)
        return -1;
    if (ss->ss_family == AF_INET && ((struct sockaddr_in *)ss)->sin_port == 0)
        ((struct sockaddr_in *)ss)->sin_port = htons(53);
    else if (ss->ss_family == AF_INET6 && ((struct sockaddr_in6 *)ss)->sin6_port == 0)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(53);
    return ss->ss_family == AF_INET || ss->ss_family == AF_INET6 ? 0 : -1;
}

static struct resolver *resolver_get(struct dns_resolver *r, const char *text)
{
    const char *key = text != NULL ? text : "";
    struct sockaddr_storage ss;
    struct resolver *res;
    size_t n = 0;
    int len;

    LIST_FOREACH(res, &r->resolvers, link) {
        if (strcmp(res->key, key) == 0)
            return res;
        n++;
    }
    if (n == MAX_RESOLVERS || strlen(key) >= sizeof res->key)
        return NULL;
    if (text != NULL && parse_resolver(text, &ss, &len) < 0)
        return NULL;
    if ((res = calloc(1, sizeof *res)) == NULL)
        return NULL;
    snprintf(res->key, sizeof res->key, "%s", key);
    /* the system's: resolv.conf's servers, search list and options (a
     * small local file, read once); or the one server asked for */
    res->evdns = evdns_base_new(r->base, EVDNS_BASE_DISABLE_WHEN_INACTIVE |
                                             (text == NULL ? EVDNS_BASE_INITIALIZE_NAMESERVERS : 0));
    if (res->evdns == NULL ||
        (text != NULL &&
         evdns_base_nameserver_sockaddr_add(res->evdns, (struct sockaddr *)&ss,
                                            (ev_socklen_t)len, 0) != 0) ||
        evdns_base_set_option(res->evdns, "attempts", "2") != 0) {
        if (res->evdns != NULL)
            evdns_base_free(res->evdns, 0);
        free(res);
        return NULL;
    }
    LIST_INSERT_HEAD(&r->resolvers, res, link);
    return res;
}

static void format_addr(const struct sockaddr_storage *ss, char *out, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";

    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        snprintf(out, len, "[%s]:%u", ip, (unsigned)ntohs(a->sin6_port));
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        snprintf(out, len, "%s:%u", ip, (unsigned)ntohs(a->sin_port));
    }
}

/* --- queries --- */

static void query_free(struct query *q)
{
    LIST_REMOVE(q, link);
    if (q->deadline != NULL)
        event_free(q->deadline);
    if (q->readable != NULL)
        event_free(q->readable);
    if (q->try_timer != NULL)
        event_free(q->try_timer);
    if (q->fd >= 0)
        evutil_closesocket(q->fd);
    free(q);
}

/* The plugin's callback, once. */
static void deliver(struct query *q, const struct sy_dns_record *recs, size_t n,
                    const char *error)
{
    q->done = 1;
    if (q->deadline != NULL)
        evtimer_del(q->deadline);
    q->cb(q->arg, recs, n, error);
}

static const char *type_name(int type)
{
    return type == SY_DNS_A ? "A" : type == SY_DNS_AAAA ? "AAAA" : "SRV";
}

/* --- A and AAAA: evdns --- */

static void on_evdns(int result, char type, int count, int ttl, void *addresses, void *arg)
{
    struct query *q = arg;
    struct sy_dns_record recs[32];
    char text[32][INET6_ADDRSTRLEN];
    char error[512];
    size_t n = 0;

    q->ereq = NULL; /* evdns frees it after this call */
    if (q->done) {  /* cancelled: timed out, or the thread stopped */
        query_free(q);
        return;
    }
    if (result == DNS_ERR_NONE && addresses != NULL &&
        (type == DNS_IPv4_A || type == DNS_IPv6_AAAA)) {
        for (int i = 0; i < count && n < 32; i++) {
            const void *a = type == DNS_IPv4_A ? (const void *)((const uint32_t *)addresses + i)
                                               : (const void *)((const struct in6_addr *)addresses + i);
            if (inet_ntop(type == DNS_IPv4_A ? AF_INET : AF_INET6, a, text[n],
                          sizeof text[n]) == NULL)
                continue;
            recs[n] = (struct sy_dns_record){ .size = sizeof recs[n], .address = text[n],
                                              .ttl = ttl > 0 ? (unsigned)ttl : 0 };
            n++;
        }
        deliver(q, recs, n, NULL);
    } else if (result == DNS_ERR_NONE || result == DNS_ERR_NOTEXIST ||
               result == DNS_ERR_NODATA) {
        deliver(q, NULL, 0, NULL); /* the name has none */
    } else {
        snprintf(error, sizeof error, "%s %s: %s", type_name(q->type), q->name,
                 evdns_err_to_string(result));
        deliver(q, NULL, 0, error);
    }
    query_free(q);
}

/* Our own bound on top of evdns's tries: the plugin hears by then. */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct query *q = arg;
    char error[512];

    (void)fd, (void)what;
    snprintf(error, sizeof error, "%s %s: no answer in %.1fs", type_name(q->type), q->name,
             q->timeout);
    deliver(q, NULL, 0, error);
    /* evdns still calls on_evdns once (with DNS_ERR_CANCEL), which frees q */
    if (q->ereq != NULL)
        evdns_cancel_request(q->res->evdns, q->ereq);
}

static int start_evdns(struct query *q, int absolute)
{
    struct timeval tv;
    char per_try[32];

    /* evdns's tries share the timeout (the option applies to the sends
     * that follow, so each query sets it) */
    snprintf(per_try, sizeof per_try, "%.3f", q->timeout / TRIES);
    evdns_base_set_option(q->res->evdns, "timeout", per_try);
    q->deadline = evtimer_new(q->r->base, on_deadline, q);
    if (q->deadline == NULL)
        return -1;
    q->ereq = (q->type == SY_DNS_A ? evdns_base_resolve_ipv4 : evdns_base_resolve_ipv6)(
        q->res->evdns, q->name, absolute ? DNS_QUERY_NO_SEARCH : 0, on_evdns, q);
    if (q->ereq == NULL)
        return -1;
    /* a little past evdns's own end, so its reason usually comes first */
    tv.tv_sec = (long)(q->timeout * 1.1 + 0.05);
    tv.tv_usec = (long)((q->timeout * 1.1 + 0.05 - (double)tv.tv_sec) * 1e6);
    evtimer_add(q->deadline, &tv);
    return 0;
}

/* --- SRV: dns_packet over UDP --- */

static void srv_close(struct query *q)
{
    if (q->readable != NULL) {
        event_free(q->readable);
        q->readable = NULL;
    }
    if (q->fd >= 0) {
        evutil_closesocket(q->fd);
        q->fd = -1;
    }
}

static void srv_fail(struct query *q, const char *why)
{
    char error[600];

    snprintf(error, sizeof error, "SRV %s: %s", q->name, why);
    deliver(q, NULL, 0, error);
    query_free(q);
}

static void srv_read(evutil_socket_t fd, short what, void *arg);
static void srv_try_timeout(evutil_socket_t fd, short what, void *arg);

/* Send the query, on a fresh socket with a fresh id: the next of the
 * resolver's servers.  0, or -1 with errno. */
static int srv_send(struct query *q)
{
    struct sockaddr_storage ss;
    unsigned char pkt[DNS_QUERY_MAX];
    unsigned char rnd[2];
    struct timeval tv;
    int len, nservers = 0, plen;

    q->tries++;
    while (nservers < MAX_NAMESERVERS &&
           evdns_base_get_nameserver_addr(q->res->evdns, nservers, (struct sockaddr *)&ss,
                                          sizeof ss) > 0)
        nservers++;
    if (nservers == 0) {
        errno = EDESTADDRREQ;
        return -1;
    }
    len = evdns_base_get_nameserver_addr(q->res->evdns, (q->tries - 1) % nservers,
                                         (struct sockaddr *)&ss, sizeof ss);
    if (len <= 0 || len > (int)sizeof ss) {
        errno = EDESTADDRREQ;
        return -1;
    }
    format_addr(&ss, q->server, sizeof q->server);
    srv_close(q);
    /* an unguessable id, and a fresh port from the kernel: what an
     * off-path forger must both hit */
    evutil_secure_rng_get_bytes(rnd, sizeof rnd);
    q->id = (unsigned)rnd[0] << 8 | rnd[1];
    plen = dns_query_build(pkt, sizeof pkt, q->id, q->name, DNS_TYPE_SRV);
    if (plen < 0) {
        errno = EINVAL;
        return -1;
    }
    q->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    /* connected: the kernel drops datagrams from anyone else */
    if (q->fd < 0 || connect(q->fd, (struct sockaddr *)&ss, (socklen_t)len) != 0 ||
        send(q->fd, pkt, (size_t)plen, 0) != plen)
        return -1;
    q->readable = event_new(q->r->base, q->fd, EV_READ | EV_PERSIST, srv_read, q);
    if (q->readable == NULL || event_add(q->readable, NULL) != 0)
        return -1;
    tv.tv_sec = (long)(q->timeout / TRIES);
    tv.tv_usec = (long)((q->timeout / TRIES - (double)tv.tv_sec) * 1e6);
    return evtimer_add(q->try_timer, &tv);
}

/* The next try, or the end; a send that fails is a try that failed. */
static void srv_next(struct query *q, const char *why)
{
    char error[200];

    evtimer_del(q->try_timer);
    while (q->tries < TRIES) {
        if (srv_send(q) == 0)
            return;
        snprintf(error, sizeof error, "%s: %s", q->server[0] ? q->server : "no server",
                 strerror(errno));
        why = error;
    }
    srv_fail(q, why);
}

static void srv_try_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct query *q = arg;
    char why[160];

    (void)fd, (void)what;
    if (q->why[0] != '\0') /* the first send failed */
        snprintf(why, sizeof why, "%s", q->why);
    else
        snprintf(why, sizeof why, "no answer from %s in %.1fs", q->server,
                 q->timeout / TRIES);
    q->why[0] = '\0';
    srv_next(q, why);
}

static void srv_read(evutil_socket_t fd, short what, void *arg)
{
    struct query *q = arg;
    struct dns_answer ans;
    char err[160], why[240];

    (void)what;
    for (int i = 0; i < READS_A_WAKEUP; i++) {
        ssize_t got = recv(fd, q->r->buf, 65536, 0);
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        if (got < 0) { /* ECONNREFUSED: an ICMP error for our query */
            snprintf(why, sizeof why, "%s: %s", q->server, strerror(errno));
            srv_next(q, why);
            return;
        }
        int rc = dns_answer_parse(q->r->buf, (size_t)got, q->id, q->name, DNS_TYPE_SRV, &ans,
                                  err, sizeof err);
        if (rc == DNS_ANSWER_NOT_OURS)
            continue;
        if (rc == DNS_ANSWER_BAD) {
            snprintf(why, sizeof why, "%s: %s", q->server, err);
            srv_fail(q, why);
            return;
        }
        struct sy_dns_record *recs = calloc(ans.n ? ans.n : 1, sizeof *recs);
        if (recs == NULL) {
            dns_answer_free(&ans);
            srv_fail(q, "out of memory");
            return;
        }
        for (size_t k = 0; k < ans.n; k++)
            recs[k] = (struct sy_dns_record){ .size = sizeof recs[k], .target = ans.rec[k].text,
                                              .port = ans.rec[k].port,
                                              .priority = ans.rec[k].priority,
                                              .weight = ans.rec[k].weight,
                                              .ttl = ans.rec[k].ttl };
        srv_close(q); /* before the callback, which may ask again */
        deliver(q, recs, ans.n, NULL);
        free(recs);
        dns_answer_free(&ans);
        query_free(q);
        return;
    }
}

static int start_srv(struct query *q)
{
    struct timeval now = { 0, 0 };

    if ((q->try_timer = evtimer_new(q->r->base, srv_try_timeout, q)) == NULL)
        return -1;
    if (srv_send(q) == 0)
        return 0;
    /* the retry, and the callback if it fails too, come later */
    snprintf(q->why, sizeof q->why, "%s: %s", q->server[0] ? q->server : "no server",
             strerror(errno));
    evtimer_del(q->try_timer);
    return evtimer_add(q->try_timer, &now);
}

int dns_resolver_query(struct dns_resolver *r, const char *name, int type,
                       const char *resolver, double timeout, sy_dns_cb cb, void *arg)
{
    struct query *q;
    size_t len;
    int absolute, rc;

    if (r == NULL || cb == NULL || !dns_name_ok(name) || !(timeout > 0 && timeout <= 3600) ||
        (type != SY_DNS_A && type != SY_DNS_AAAA && type != SY_DNS_SRV))
        return SY_ERROR;
    if ((q = calloc(1, sizeof *q)) == NULL)
        return SY_ERROR;
    q->r = r;
    q->cb = cb;
    q->arg = arg;
    q->type = type;
    q->timeout = timeout;
    q->fd = -1;
    len = strlen(name);
    absolute = name[len - 1] == '.';
    memcpy(q->name, name, len - (size_t)absolute);
    q->res = resolver_get(r, resolver);
    LIST_INSERT_HEAD(&r->queries, q, link);
    if (q->res == NULL) {
        query_free(q);
        return SY_ERROR;
    }
    rc = type == SY_DNS_SRV ? start_srv(q) : start_evdns(q, absolute);
    if (rc != 0) {
        query_free(q);
        return SY_ERROR;
    }
    return SY_OK;
}

void dns_resolver_free(struct dns_resolver *r)
{
    struct resolver *res;
    struct query *q, *next;

    if (r == NULL)
        return;
    for (q = LIST_FIRST(&r->queries); q != NULL; q = next) {
        next = LIST_NEXT(q, link);
        q->done = 1; /* no callback from now on */
        if (q->type == SY_DNS_SRV)
            query_free(q);
    }
    /* evdns answers every request it still holds with a deferred
     * DNS_ERR_SHUTDOWN, as it does a cancelled one (its own probes of a
     * server it thinks down too): one turn of the stopped loop runs
     * those, and on_evdns frees each query, so nothing is left behind */
    if (!LIST_EMPTY(&r->resolvers)) {
        while ((res = LIST_FIRST(&r->resolvers)) != NULL) {
            LIST_REMOVE(res, link);
            evdns_base_free(res->evdns, 1);
            free(res);
        }
        event_base_loop(r->base, EVLOOP_NONBLOCK);
    }
    while ((q = LIST_FIRST(&r->queries)) != NULL)
        query_free(q);
    free(r->buf);
    free(r);
}
