/*
 * switchyard: an HTTP router for OpenAI-compatible LLM inference servers.
 * main: command line and config, plugins, workers, signals.  Exit status 2
 * for anything wrong with what the operator gave us, 1 for runtime failures.
 */
#include <curl/curl.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin.h"
#include "cli.h"
#include "config.h"
#include "control.h"
#include "dynconf.h"
#include "log.h"
#include "metrics.h"
#include "server.h"
#include "setup.h"
#include "trace.h"
#include "discovery.h"

#define DEFAULT_CONFIG SY_SYSCONF_DIR "/switchyard.yaml"

/* The config from the file (if any), the flags, then the dynamic config
 * file (if any) over both, validated. */
static int load_config(const struct cli_opts *o, struct sy_cfg **out, char *err,
                       size_t errlen)
{
    struct sy_cfg *cfg = NULL;
    const char *path = o->config_path;

    /* Started the vllm_router way: exactly what the flags and the dynamic
     * file say, not the installed example. */
    if (path == NULL && !cli_given(o, "static_backends") && !cli_given(o, "service_discovery") &&
        o->dynamic_config == NULL &&
        access(DEFAULT_CONFIG, F_OK) == 0)
        path = DEFAULT_CONFIG;
    if (path != NULL) {
        if (config_load_file(path, &cfg, err, errlen) != 0)
            return -1;
    } else if ((cfg = config_new()) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (cli_apply(o, cfg, err, errlen) != 0 ||
        (o->dynamic_config != NULL && dynconf_apply(o->dynamic_config, cfg, err, errlen) != 0) ||
        config_finish(cfg, err, errlen) != 0) {
        config_free(cfg);
        return -1;
    }
    *out = cfg;
    return 0;
}

/* The running daemon, as the main thread sees it. */
struct daemon {
    const struct cli_opts *opts;
    struct event_base *base;
    struct server *srv;
    struct setup *current;
    struct setup **retired;     /* replaced setups with requests still on them */
    int nretired, retired_cap;
    struct discovery *disc;     /* the discovery plugins, or NULL */
    struct event *disc_event;   /* discovery published: rebuild the setup */
    long long disc_built_ms;    /* when the last rebuild for it ran */
    int nworkers;
    char *host;
    int port;
    int draining;
    long long drain_deadline_ms;
    struct event *drain_timer;
    struct admin *admin;
    struct timespec dyn_mtime;  /* of --dynamic-config-yaml, when watched */
    long long stats_logged_ms;  /* --log-stats: when it last wrote */
    int dyn_known;
};

/* Where plugins are searched: the configured directories, then the
 * compiled-in one (so the shipped plugins are found beside one's own). */
static const char *plugin_dir_of(const struct sy_cfg *cfg)
{
    static char search[8192];

    if (cfg->plugin_dir == NULL)
        return SY_PLUGIN_DIR;
    snprintf(search, sizeof search, "%s:%s", cfg->plugin_dir, SY_PLUGIN_DIR);
    return search;
}

/* Free the replaced setups nobody uses any more.  Main thread, so the
 * plugins' destroy() runs where the SDK says it does. */
static void reap(struct daemon *d)
{
    for (int i = 0; i < d->nretired;) {
        if (atomic_load(&d->retired[i]->refs) == 0) {
            /* what its last requests counted after the swap */
            setup_move_counters(d->current, d->retired[i]);
            setup_destroy(d->retired[i]);
            d->retired[i] = d->retired[--d->nretired];
        } else {
            i++;
        }
    }
}

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
    reap(arg);
}

/* Logging as the config says.  -1 with why in err. */
static int apply_logging(const struct sy_cfg *cfg, char *err, size_t errlen)
{
    if (cfg->log_file != NULL && log_open(cfg->log_file) != 0) {
        snprintf(err, errlen, "log_file: cannot open %s: %s", cfg->log_file, strerror(errno));
        return -1;
    }
    log_format = cfg->log_format;
    log_access_on = cfg->access_log;
    log_level = cfg->log_level;
    return 0;
}

/* Room to retire one more setup; -1 when out of memory. */
static int retire_room(struct daemon *d)
{
    if (d->nretired < d->retired_cap)
        return 0;
    int cap = d->retired_cap ? d->retired_cap * 2 : 16;
    struct setup **r = realloc(d->retired, (size_t)cap * sizeof *r);
    if (r == NULL)
        return -1;
    d->retired = r;
    d->retired_cap = cap;
    return 0;
}

/* Hand a new setup over: it takes the running one's health flags,
 * cooldowns and counters by URL, its health thread starts, and every
 * worker moves to it for new requests; the old one retires until its last
 * request ends.  -1 (ns destroyed) when its health thread cannot start. */
static int install(struct daemon *d, struct setup *ns, struct discovery *disc, char *err,
                   size_t errlen)
{
    ns->discovery = disc;
    setup_carry_over(ns, d->current);
    if (control_start(ns, err, errlen) != 0) {
        setup_destroy(ns);
        return -1;
    }
    control_stop(d->current);
    server_adopt(d->srv, ns); /* returns when every worker serves from ns */
    admin_set_timeout(d->admin, ns->cfg->client_timeout);
    d->retired[d->nretired++] = d->current;
    d->current = ns;
    return 0;
}

/* The discovery thread says a plugin published a change. */
static void discovery_changed(void *arg)
{
    struct daemon *d = arg;
    event_active(d->disc_event, EV_TIMEOUT, 0);
}

/* Rebuild the setup from the running config and what discovery published,
 * at most every DISCOVERY_COALESCE_MS: a burst of changes (pods starting
 * together, a re-list) costs one rebuild. */
#define DISCOVERY_COALESCE_MS 200
static void on_discovery(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;
    long long wait = d->disc_built_ms + DISCOVERY_COALESCE_MS - setup_now_ms();
    struct discovered_set *snap;
    struct setup *ns = NULL;
    char err[1024];

    if (d->draining || d->disc == NULL)
        return;
    if (wait > 0) {
        struct timeval tv = { 0, (long)wait * 1000 };
        evtimer_add(d->disc_event, &tv);
        return;
    }
    d->disc_built_ms = setup_now_ms();
    if (retire_room(d) != 0 || (snap = discovery_snapshot(d->disc)) == NULL) {
        LOG_ERROR("discovery: out of memory; backends as they were");
        return;
    }
    struct sy_cfg *cfg = config_ref(d->current->cfg);
    int rc = setup_build(cfg, plugin_dir_of(cfg), d->nworkers, snap, &ns, err, sizeof err);
    discovered_set_free(snap);
    if (rc != 0 || install(d, ns, d->disc, err, sizeof err) != 0) {
        LOG_ERROR("discovery: cannot apply the change, backends as they were: %s", err);
        return;
    }
    LOG_INFO("discovery: now %zu models, %zu backends", d->current->nmodels,
             d->current->nbackends);
}

/* SIGHUP or POST /admin/reload: build a new setup from the config files and
 * flags (and new discovery plugins, which keep the backends discovered so
 * far until they publish); when all of it loads, workers move to it for
 * new requests.  Anything wrong leaves the running setup as it is (-1, why
 * in err). */
static int reload(struct daemon *d, char *err, size_t errlen)
{
    struct sy_cfg *cfg = NULL;
    struct setup *ns = NULL;
    struct discovery *disc = NULL;
    struct discovered_set *snap = NULL;

    if (d->draining) {
        snprintf(err, errlen, "shutting down");
        return -1;
    }
    if (retire_room(d) != 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    LOG_INFO("reloading the configuration");
    if (load_config(d->opts, &cfg, err, errlen) != 0)
        goto fail;
    if (strcmp(cfg->host, d->host) != 0 || cfg->port != d->port ||
        (cfg->workers != 0 && cfg->workers != d->nworkers))
        LOG_WARN("reload: the listen address and the number of workers change only on restart");
    if (discovery_start(cfg, plugin_dir_of(cfg), d->disc, 1, discovery_changed, d, &disc, err,
                        errlen) != 0) {
        config_free(cfg);
        goto fail;
    }
    if (disc != NULL && (snap = discovery_snapshot(disc)) == NULL) {
        snprintf(err, errlen, "out of memory");
        discovery_stop(disc);
        config_free(cfg);
        goto fail;
    }
    if (setup_build(cfg, plugin_dir_of(cfg), d->nworkers, snap, &ns, err, errlen) != 0 ||
        install(d, ns, disc, err, errlen) != 0) {
        discovered_set_free(snap);
        discovery_stop(disc);
        goto fail;
    }
    discovered_set_free(snap);
    discovery_set_current(disc);
    discovery_stop(d->disc);
    d->disc = disc;
    if (apply_logging(ns->cfg, err, errlen) != 0)
        LOG_ERROR("reload: %s; logging where it was", err);
    LOG_INFO("configuration reloaded: %zu models, %zu backends", ns->nmodels, ns->nbackends);
    return 0;
fail:
    LOG_ERROR("reload failed, keeping the running configuration: %s", err);
    return -1;
}

static int admin_reload(void *arg, char *err, size_t errlen)
{
    return reload(arg, err, errlen);
}

static struct setup *admin_current(void *arg)
{
    return ((struct daemon *)arg)->current;
}

static void drain_check(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;
    int active = server_active(d->srv);

    if (active == 0) {
        LOG_INFO("drained: stopping");
        event_base_loopbreak(d->base);
    } else if (setup_now_ms() >= d->drain_deadline_ms) {
        LOG_WARN("drain timeout: stopping with %d request%s in flight", active,
                 active == 1 ? "" : "s");
        event_base_loopbreak(d->base);
    }
}

/* SIGTERM/SIGINT: stop accepting, let requests in flight (streams too)
 * finish up to drain_timeout, then stop.  A second signal stops at once. */
static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    struct daemon *d = arg;
    struct timeval tick = { 0, 50 * 1000 };

    if (d->draining) {
        LOG_INFO("signal %d again: stopping now", (int)sig);
        event_base_loopbreak(d->base);
        return;
    }
    d->draining = 1;
    d->drain_deadline_ms = setup_now_ms() + (long long)(d->current->cfg->drain_timeout * 1000);
    LOG_INFO("signal %d: no new connections; %d request%s in flight may finish (up to %.0fs)",
             (int)sig, server_active(d->srv), server_active(d->srv) == 1 ? "" : "s",
             d->current->cfg->drain_timeout);
    server_drain(d->srv);
    d->drain_timer = event_new(d->base, -1, EV_PERSIST, drain_check, d);
    if (d->drain_timer == NULL || event_add(d->drain_timer, &tick) != 0)
        event_base_loopbreak(d->base);
}

/* --dynamic-config-yaml is watched as vllm_router watches it: a change of
 * the file (its modification time) reloads, as SIGHUP does. */
static int dyn_changed(struct daemon *d)
{
    struct stat st;

    if (d->opts->dynamic_config == NULL || stat(d->opts->dynamic_config, &st) != 0)
        return 0;
    if (d->dyn_known && st.st_mtim.tv_sec == d->dyn_mtime.tv_sec &&
        st.st_mtim.tv_nsec == d->dyn_mtime.tv_nsec)
        return 0;
    int first = !d->dyn_known;
    d->dyn_mtime = st.st_mtim;
    d->dyn_known = 1;
    return !first;
}

/* Every second: the dynamic config's file, and the stats log's turn. */
static void watch_cb(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;
    const struct sy_cfg *cfg = d->current->cfg;
    long long now = setup_now_ms();
    char err[1024];

    /* the tick's own jitter must not skip a turn: 100 ms early is on time */
    if (cfg->log_stats &&
        now - d->stats_logged_ms + 100 >= (long long)(cfg->log_stats_interval * 1000)) {
        d->stats_logged_ms = now;
        metrics_log_stats(d->current);
    }
    if (dyn_changed(d)) {
        LOG_INFO("%s changed", d->opts->dynamic_config);
        reload(d, err, sizeof err);
    }
}

static void on_reload_signal(evutil_socket_t sig, short what, void *arg)
{
    char err[1024];
    reload(arg, err, sizeof err);
}

/* SIGUSR1: logrotate moved the log file away; write to a new one. */
static void on_reopen_signal(evutil_socket_t sig, short what, void *arg)
{
    if (log_reopen() != 0)
        LOG_ERROR("cannot reopen the log file: %s", strerror(errno));
    else
        LOG_INFO("log file reopened");
}

/* Each proxied request holds two sockets (client and backend): the usual
 * soft limit of 1024 open files would cap a router at ~500 streams.  Take
 * what the hard limit allows, as nginx's worker_rlimit_nofile does. */
static void raise_open_files_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
            LOG_INFO("open files limit raised from %llu to %llu", (unsigned long long)was,
                     (unsigned long long)rl.rlim_max);
    }
}

static int run(int argc, char **argv, struct cli_opts *opts)
{
    struct sy_cfg *cfg = NULL;
    struct daemon d;
    struct event *events[6] = { NULL, NULL, NULL, NULL, NULL, NULL };
    struct timeval watch_every = { 1, 0 };
    struct timeval reap_every = { 0, 200 * 1000 };
    char err[1024] = "";
    int status = 1;

    memset(&d, 0, sizeof d);
    d.opts = opts;
    if (cli_parse(argc, argv, opts, err, sizeof err) != 0) {
        fprintf(stderr, "switchyard: %s (see --help)\n", err);
        return 2;
    }
    if (opts->action == CLI_HELP) {
        cli_usage(stdout, argv[0]);
        return 0;
    }
    if (opts->action == CLI_VERSION) {
        printf("switchyard %s (plugin ABI %d.%d)\n", PACKAGE_VERSION, SY_ABI_MAJOR, SY_ABI_MINOR);
        return 0;
    }
    if (load_config(opts, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "switchyard: %s\n", err);
        return 2;
    }
    if (opts->action == CLI_RUN && apply_logging(cfg, err, sizeof err) != 0) {
        fprintf(stderr, "switchyard: %s\n", err);
        config_free(cfg);
        return 2;
    }
    log_level = cfg->log_level;
    d.nworkers = cfg->workers > 0 ? cfg->workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (d.nworkers < 1)
        d.nworkers = 1;
    d.host = strdup(cfg->host);
    d.port = cfg->port;
    if (d.host == NULL || curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || evthread_use_pthreads() != 0) {
        fprintf(stderr, "switchyard: cannot initialise libcurl or libevent threads\n");
        free(d.host);
        config_free(cfg);
        return 1;
    }
    if (opts->action == CLI_CHECK_CONFIG) {
        /* every plugin is loaded and created, discovery's too; none runs */
        if (discovery_start(cfg, plugin_dir_of(cfg), NULL, 0, NULL, NULL, &d.disc, err,
                            sizeof err) != 0 ||
            setup_create(config_ref(cfg), plugin_dir_of(cfg), d.nworkers, &d.current, err,
                         sizeof err) != 0) {
            fprintf(stderr, "switchyard: %s\n", err);
            config_free(cfg);
            status = 2;
            goto out;
        }
        config_free(cfg);
        printf("switchyard: configuration OK (%zu models, %zu backends%s)\n",
               d.current->nmodels, d.current->nbackends,
               d.disc != NULL ? ", and those discovery finds" : "");
        status = 0;
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);
    raise_open_files_limit();
    d.base = event_base_new();
    if (d.base == NULL) {
        fprintf(stderr, "switchyard: cannot create the event loop\n");
        config_free(cfg);
        goto out;
    }
    /* discovery first: what its plugins publish in start() is served from
     * the first request on */
    struct discovered_set *snap = NULL;
    d.disc_event = evtimer_new(d.base, on_discovery, &d);
    if (d.disc_event == NULL ||
        discovery_start(cfg, plugin_dir_of(cfg), NULL, 1, discovery_changed, &d, &d.disc, err,
                        sizeof err) != 0 ||
        (d.disc != NULL && (snap = discovery_snapshot(d.disc)) == NULL)) {
        fprintf(stderr, "switchyard: %s\n", d.disc_event ? err : "out of memory");
        config_free(cfg);
        status = 2;
        goto out;
    }
    int built = setup_build(cfg, plugin_dir_of(cfg), d.nworkers, snap, &d.current, err,
                            sizeof err);
    discovered_set_free(snap);
    if (built != 0) {
        fprintf(stderr, "switchyard: %s\n", err);
        status = 2;
        goto out;
    }
    d.current->discovery = d.disc;
    discovery_set_current(d.disc);
    events[0] = evsignal_new(d.base, SIGTERM, on_stop_signal, &d);
    events[1] = evsignal_new(d.base, SIGINT, on_stop_signal, &d);
    events[2] = evsignal_new(d.base, SIGHUP, on_reload_signal, &d);
    events[3] = evsignal_new(d.base, SIGUSR1, on_reopen_signal, &d);
    events[4] = event_new(d.base, -1, EV_PERSIST, reap_cb, &d);
    events[5] = event_new(d.base, -1, EV_PERSIST, watch_cb, &d);
    dyn_changed(&d); /* the modification time it started from */
    d.stats_logged_ms = setup_now_ms(); /* the first stats after an interval */
    for (int i = 0; i < 6; i++) {
        const struct timeval *every = i == 4 ? &reap_every : i == 5 ? &watch_every : NULL;
        if (events[i] == NULL || event_add(events[i], every) != 0) {
            fprintf(stderr, "switchyard: cannot install signal handlers\n");
            goto out;
        }
    }
    struct admin_ops aops = { admin_current, admin_reload, &d };
    /* health plugins start first: what they decide holds from the first
     * request on; the admin listener is bound before the main one, so once
     * /health answers /metrics can be scraped too */
    if (trace_start(d.current->cfg, d.nworkers, err, sizeof err) != 0 ||
        control_start(d.current, err, sizeof err) != 0 ||
        (d.current->cfg->admin_listen != NULL &&
         admin_start(d.base, d.current->cfg->admin_listen, d.current->cfg->client_timeout,
                     &aops, &d.admin, err, sizeof err) != 0) ||
        server_start(d.current, d.host, d.port, d.nworkers, &d.srv, err, sizeof err) != 0) {
        fprintf(stderr, "switchyard: %s\n", err);
        goto out;
    }
    LOG_INFO("switchyard %s listening on %s:%d with %d worker%s, %zu models, %zu backends",
             PACKAGE_VERSION, d.host, d.port, d.nworkers, d.nworkers == 1 ? "" : "s",
             d.current->nmodels, d.current->nbackends);
    event_base_dispatch(d.base);
    status = 0;
out:
    admin_stop(d.admin);
    discovery_stop(d.disc); /* no more publishing */
    if (d.current != NULL)
        control_stop(d.current);
    /* workers first: their requests hold references on the setups */
    server_stop(d.srv);
    trace_stop(); /* the last requests' spans go out */
    for (int i = 0; i < d.nretired; i++)
        setup_destroy(d.retired[i]);
    free(d.retired);
    setup_destroy(d.current);
    if (d.disc_event != NULL)
        event_free(d.disc_event);
    for (int i = 0; i < 6; i++)
        if (events[i] != NULL)
            event_free(events[i]);
    if (d.drain_timer != NULL)
        event_free(d.drain_timer);
    if (d.base != NULL)
        event_base_free(d.base);
    free(d.host);
    curl_global_cleanup();
    libevent_global_shutdown();
    if (status == 0 && opts->action == CLI_RUN)
        LOG_INFO("stopped");
    return status;
}

int main(int argc, char **argv)
{
    struct cli_opts opts;
    int status = run(argc, argv, &opts);
    cli_free(&opts);
    return status;
}
