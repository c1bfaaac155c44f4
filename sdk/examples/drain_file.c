/*
 * drain_file: an example switchyard health plugin, built out of tree:
 *
 *     make                      # uses only `pkg-config switchyard`
 *     sudo make install         # copies drain_file.so to the plugin dir
 *
 * and enabled in switchyard.yaml:
 *
 *     health: [drain_file, http_probe]
 *     plugin_config:
 *       drain_file: {file: /etc/switchyard/drained, interval: 2s}
 *
 * The backends listed in the file (one base URL a line, as configured;
 * blank lines and lines starting with '#' are skipped) take no requests;
 * the file is read again every `interval`.  A missing file drains nothing.
 *
 * It shows the health flags of plugin ABI 1.2: the plugin holds its own
 * flag on each drained backend, so another health plugin saying "healthy"
 * (http_probe's probes succeed) never lets a drained backend back in.  The
 * flags outlive a reload (SIGHUP): the new instance starts by reading the
 * file and reconciling the flags it finds itself holding, so a drained
 * backend takes no request during the reload, and one taken out of the
 * file serves again at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <switchyard/plugin.h>

#define LINE_MAX_BYTES 4096

struct drain_file {
    const struct sy_host_api *host;
    char *file;
    double interval;
    sy_timer *timer;     /* the next read; cancelled by the host at the end */
    int missing_said; /* the file's absence was logged */
};

static int df_create(const struct sy_host_api *host, const sy_config *cfg,
                     void **inst, char *err, size_t errlen)
{
    struct drain_file *df;
    const char *file = NULL;
    double interval = 1;
    char where[256];

    /* backend_set_flag() and backend_flag() came with ABI 1.2 */
    if (host->size < offsetof(struct sy_host_api, backend_flag) + sizeof host->backend_flag) {
        snprintf(err, errlen, "needs a switchyard with plugin ABI 1.2 (health flags)");
        return SY_ERROR;
    }
    if (host->config_string(cfg, "file", &file) != SY_OK || file[0] == '\0') {
        host->config_where(cfg, "file", where, sizeof where);
        snprintf(err, errlen, "%s: file: the path of the list of drained backends is required",
                 where);
        return SY_ERROR;
    }
    if (host->config_seconds(cfg, "interval", &interval) == SY_ERROR || interval <= 0) {
        host->config_where(cfg, "interval", where, sizeof where);
        snprintf(err, errlen, "%s: interval: expected a duration above 0, e.g. 2s", where);
        return SY_ERROR;
    }
    df = calloc(1, sizeof *df);
    if (df == NULL || (df->file = strdup(file)) == NULL) {
        free(df);
        snprintf(err, errlen, "out of memory");
        return SY_ERROR;
    }
    df->host = host;
    df->interval = interval;
    *inst = df;
    return SY_OK;
}

/* Its pending timer is the host's to cancel (destroy() runs on the main
 * thread, after the health thread stopped). */
static void df_destroy(void *inst)
{
    struct drain_file *df = inst;

    free(df->file);
    free(df);
}

/* A URL as configured, less one trailing '/', as the core keeps it. */
static size_t url_len(const char *url, size_t n)
{
    return n > 0 && url[n - 1] == '/' ? n - 1 : n;
}

/* Is b's URL a line of the list (lines NUL-separated, `len` bytes)? */
static int listed(const char *list, size_t len, const char *url)
{
    size_t ul = url_len(url, strlen(url));

    for (const char *line = list; line < list + len; line += strlen(line) + 1)
        if (url_len(line, strlen(line)) == ul && strncmp(line, url, ul) == 0)
            return 1;
    return 0;
}

/* The file's URLs, trimmed, NUL-separated, in one malloc'd block; NULL
 * with *len 0 when it cannot be read. */
static char *read_list(struct drain_file *df, size_t *len)
{
    FILE *f = fopen(df->file, "r");
    char line[LINE_MAX_BYTES], *list = NULL;
    size_t used = 0;

    *len = 0;
    if (f == NULL) {
        if (!df->missing_said)
            df->host->log(df->host, SY_LOG_WARNING, "%s: cannot read it: nothing drained",
                          df->file);
        df->missing_said = 1;
        return NULL;
    }
    df->missing_said = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        char *s = line, *e;
        while (*s == ' ' || *s == '\t')
            s++;
        e = s + strlen(s);
        while (e > s && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
            e--;
        *e = '\0';
        if (*s == '\0' || *s == '#')
            continue;
        char *grown = realloc(list, used + (size_t)(e - s) + 1);
        if (grown == NULL)
            break;
        list = grown;
        memcpy(list + used, s, (size_t)(e - s) + 1);
        used += (size_t)(e - s) + 1;
    }
    fclose(f);
    *len = used;
    return list;
}

/* Hold the flag on every listed backend, release it on every other one
 * this plugin holds it on (after a reload, too: the flags carried over). */
static void reconcile(struct drain_file *df)
{
    const struct sy_host_api *h = df->host;
    size_t len;
    char *list = read_list(df, &len);

    for (size_t i = 0; i < h->backend_count(h); i++) {
        const sy_backend *b = h->backend_at(h, i);
        int want = list != NULL && listed(list, len, h->backend_url(b));
        if (want != h->backend_flag(h, b))
            h->backend_set_flag(h, b, want, want ? "listed in the drain file"
                                                 : "no longer listed in the drain file");
    }
    free(list);
}

static void df_tick(void *arg)
{
    struct drain_file *df = arg;

    df->timer = NULL;
    reconcile(df);
    df->timer = df->host->timer_add(df->host, df->interval, df_tick, df);
}

static int df_start(void *inst)
{
    struct drain_file *df = inst;

    reconcile(df);
    df->timer = df->host->timer_add(df->host, df->interval, df_tick, df);
    return df->timer != NULL ? SY_OK : SY_ERROR;
}

SY_EXPORT const struct sy_plugin sy_plugin_v1 = {
    SY_PLUGIN_HEADER,
    .kind = SY_KIND_HEALTH,
    .name = "drain_file",
    .version = "1.0",
    .description = "drains the backends listed in a file, re-read every interval",
    .create = df_create,
    .destroy = df_destroy,
    .start = df_start,
};
