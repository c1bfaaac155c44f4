/*
 * discovery_file: a discovery plugin (ABI 1.3).  The backends are the lines
 * of a file, re-read every `interval` and published whole each time (the
 * core applies only what changed): a backend list an operator, a script or
 * a config-management tool edits while the router runs, with no reload.
 *
 * plugin_config.discovery_file: {file: PATH, interval: 50ms, first_delay: 0}
 * Each line: URL MODEL[,MODEL...] [ready|notready] [key=value ...]; blank
 * lines and lines starting with '#' are skipped.  A missing file publishes
 * nothing (the last set stands), as a discovery source that cannot reach
 * its API must.  Its own metrics: counter "reads", gauge "lines".
 * first_delay: seconds before the first read, so a test can
 * see what stands before a new instance publishes (after a reload).
 */
#define _POSIX_C_SOURCE 200809L /* getline */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <switchyard/plugin.h>

#define MAX_ITEMS 16 /* models, and labels, a line */

struct entry {
    char *line;                       /* tokens point in here */
    const char *models[MAX_ITEMS];
    const char *labels[MAX_ITEMS];
};

struct df {
    const struct sy_host_api *h;
    char file[512];
    double interval, first_delay;
    struct entry *entries;            /* grown as the file grows */
    struct sy_discovered *set;
    size_t cap;
};

static int df_create(const struct sy_host_api *h, const sy_config *cfg, void **inst, char *err,
                     size_t errlen)
{
    static const char *const known[] = { "file", "interval", "first_delay", NULL };
    const char *file = NULL;
    struct df *d;

    if (h->size < offsetof(struct sy_host_api, http_stream_cancel) + sizeof h->http_stream_cancel) {
        snprintf(err, errlen, "needs a host of ABI 1.3");
        return SY_ERROR;
    }
    if (h->config_check_keys(cfg, known, err, errlen) != SY_OK)
        return SY_ERROR;
    if (h->config_string(cfg, "file", &file) != SY_OK) {
        snprintf(err, errlen, "file: required");
        return SY_ERROR;
    }
    if ((d = calloc(1, sizeof *d)) == NULL)
        return SY_ERROR;
    d->h = h;
    snprintf(d->file, sizeof d->file, "%s", file);
    d->interval = 0.05;
    if (h->config_seconds(cfg, "interval", &d->interval) == SY_ERROR ||
        h->config_seconds(cfg, "first_delay", &d->first_delay) == SY_ERROR) {
        snprintf(err, errlen, "interval, first_delay: seconds");
        free(d);
        return SY_ERROR;
    }
    *inst = d;
    return SY_OK;
}

static void df_destroy(void *inst)
{
    struct df *d = inst;
    for (size_t i = 0; i < d->cap; i++)
        free(d->entries[i].line);
    free(d->entries);
    free(d->set);
    free(d);
}

/* Room for n + 1 entries; -1 when out of memory. */
static int grow(struct df *d, size_t n)
{
    if (n < d->cap)
        return 0;
    size_t cap = d->cap ? d->cap * 2 : 64;
    struct entry *e = realloc(d->entries, cap * sizeof *e);
    if (e == NULL)
        return -1;
    d->entries = e;
    memset(e + d->cap, 0, (cap - d->cap) * sizeof *e);
    struct sy_discovered *set = realloc(d->set, cap * sizeof *set);
    if (set == NULL)
        return -1; /* entries grew, cap did not: grown again next time */
    d->set = set;
    d->cap = cap;
    return 0;
}

/* Split a line into the entry; 0 when it is a backend. */
static int parse_line(struct entry *e, struct sy_discovered *out)
{
    char *save = NULL, *tok;
    char *url = strtok_r(e->line, " \t\r\n", &save);
    char *models = url ? strtok_r(NULL, " \t\r\n", &save) : NULL;

    if (url == NULL || url[0] == '#' || models == NULL)
        return -1;
    memset(out, 0, sizeof *out);
    out->size = sizeof *out;
    out->url = url;
    out->ready = 1;
    out->models = e->models;
    out->labels = e->labels;
    for (char *m = strtok_r(models, ",", &tok); m && out->nmodels < MAX_ITEMS;
         m = strtok_r(NULL, ",", &tok))
        e->models[out->nmodels++] = m;
    for (char *w = strtok_r(NULL, " \t\r\n", &save); w; w = strtok_r(NULL, " \t\r\n", &save)) {
        if (strcmp(w, "notready") == 0)
            out->ready = 0;
        else if (strcmp(w, "ready") != 0 && out->nlabels < MAX_ITEMS)
            e->labels[out->nlabels++] = w;
    }
    return 0;
}

static void df_tick(void *arg)
{
    struct df *d = arg;
    FILE *f = fopen(d->file, "r");
    size_t n = 0, len = 0;
    char *line = NULL;

    if (f != NULL) {
        int complete = 1;
        while (getline(&line, &len, f) != -1) {
            if (grow(d, n) != 0) {
                complete = 0; /* out of memory: publish nothing partial */
                break;
            }
            free(d->entries[n].line);
            d->entries[n].line = line; /* the entry keeps the buffer */
            line = NULL;
            len = 0;
            if (parse_line(&d->entries[n], &d->set[n]) == 0)
                n++;
        }
        free(line);
        fclose(f);
        /* the entries may have moved as they grew: point at where they are */
        for (size_t i = 0; i < n; i++) {
            d->set[i].models = d->entries[i].models;
            d->set[i].labels = d->entries[i].labels;
        }
        d->h->counter_add(d->h, "reads", 1);
        d->h->gauge_set(d->h, "lines", (double)n);
        if (complete && d->h->discovery_publish(d->h, d->set, n) != SY_OK)
            d->h->log(d->h, SY_LOG_WARNING, "discovery_file: %s refused", d->file);
    }
    d->h->timer_add(d->h, d->interval, df_tick, d);
}

static int df_start(void *inst)
{
    struct df *d = inst;
    if (d->first_delay > 0)
        return d->h->timer_add(d->h, d->first_delay, df_tick, d) ? SY_OK : SY_ERROR;
    df_tick(d);
    return SY_OK;
}

SY_EXPORT const struct sy_plugin sy_plugin_v1 = {
    SY_PLUGIN_HEADER,
    .kind = SY_KIND_DISCOVERY,
    .name = "discovery_file",
    .version = "1.0",
    .description = "backends from the lines of a file (tests)",
    .create = df_create,
    .destroy = df_destroy,
    .start = df_start,
};
