/*
 * discovery: the discovery plugins (ABI 1.3) and what they publish.
 *
 * They live outside any setup: on a thread of their own (host/control.c),
 * from one config load to the next, while the setups their changes make
 * come and go.  Each plugin publishes the whole set it sees
 * (discovery_publish); a change calls back the main thread, which builds
 * a new setup from the running config and a snapshot of every set, and
 * hands it over as a reload does (main.c).  The backends the config
 * writes down are the built-in source: setup.c merges both by model.
 */
#ifndef SY_DISCOVERY_H
#define SY_DISCOVERY_H

#include <stddef.h>
#include <switchyard/plugin.h>

#include "config.h"

struct discovered_backend {
    char *url;
    char **models;
    size_t nmodels;
    char **labels;     /* "key=value" */
    size_t nlabels;
    int ready;
};

/* Every published backend, one per URL (the first source's, in the order
 * of the discovery list, when two publish one URL). */
struct discovered_set {
    struct discovered_backend *v;
    size_t n;
};

struct discovery;
struct host_ctx;

/* Load the discovery plugins of cfg->discovery, create one instance each,
 * and start their thread (their start() hooks run there).  prev, when not
 * NULL, is the discovery this one replaces (a reload): until a plugin
 * publishes, what the plugin of that name published there stands, so a
 * reload never empties the table.  changed(arg) runs on the discovery
 * thread after each publish that changed the snapshot.  No discovery
 * plugin: *out = NULL.  run 0 (--check-config): the plugins are loaded
 * and created, and nothing runs.  -1 with the reason in err. */
int discovery_start(struct sy_cfg *cfg, const char *plugin_dir, const struct discovery *prev,
                    int run, void (*changed)(void *arg), void *arg, struct discovery **out,
                    char *err, size_t errlen);
/* Stop the thread, destroy the instances.  Main thread. */
void discovery_stop(struct discovery *d);

/* A copy of everything published now (NULL d: an empty set).  NULL when out
 * of memory. */
struct discovered_set *discovery_snapshot(struct discovery *d);
void discovered_set_free(struct discovered_set *s);

/* The host API's discovery_publish() for plugin `name`: SY_OK, or SY_ERROR
 * with nothing changed for a bad entry (logged). */
int discovery_publish(struct discovery *d, const char *name, const struct sy_discovered *set,
                      size_t n);

/* For /metrics: publishes that changed something, and seconds since the
 * last publish of any source (-1: none yet). */
void discovery_stats(struct discovery *d, unsigned long long *changes, double *since_publish);
/* The discovery the daemon runs now (main thread: at start, on a reload,
 * NULL at the end), for discovery_backend_failed. */
void discovery_set_current(struct discovery *d);
/* Any thread (a worker whose attempt on a discovered backend could not
 * connect or timed out): the current discovery's plugins hear of it on
 * their thread (backend_failed), at most once a second for one URL. */
void discovery_backend_failed(const char *url);

/* The plugins' host tables, for their own metrics: up to max into hosts. */
size_t discovery_hosts(struct discovery *d, struct host_ctx **hosts, size_t max);

#endif
