#define _GNU_SOURCE
#include "harness.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *const router_plugin_args[] = { "--plugin-dir", BUILT_PLUGIN_DIR, NULL };

double mono_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

int free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* A directory of this run's own: a name from the pid alone was taken again
 * by a later run with the same pid, whose routers then appended to the old
 * logs (and a test waiting for a log line found the old run's). */
static char scratch[64];

static const char *scratch_dir(void)
{
    if (scratch[0] == '\0') {
        snprintf(scratch, sizeof scratch, "/tmp/sy-e2e-XXXXXX");
        if (mkdtemp(scratch) == NULL) {
            perror("e2e: mkdtemp");
            exit(2);
        }
    }
    return scratch;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

void scratch_finish(int keep)
{
    if (scratch[0] == '\0')
        return;
    if (keep)
        fprintf(stderr, "e2e: the routers' and mocks' files are in %s\n", scratch);
    else
        nftw(scratch, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *write_temp(const char *name, const char *text)
{
    static char paths[8][256];
    static int next;
    char *p = paths[next++ % 8];
    FILE *f;

    snprintf(p, 256, "%s/%s", scratch_dir(), name);
    f = fopen(p, "w");
    if (f == NULL)
        return NULL;
    fputs(text, f);
    fclose(f);
    return p;
}

/* SY_TEST_WRAPPER="valgrind -q ..." runs the daemon under a tool. */
static const char *const *wrap(const char *const *argv, const char **buf, size_t cap,
                               char *words, size_t wlen)
{
    const char *w = getenv("SY_TEST_WRAPPER");
    size_t n = 0;

    if (w == NULL || *w == '\0' || strcmp(argv[0], SWITCHYARD_BIN) != 0)
        return argv;
    snprintf(words, wlen, "%s", w);
    for (char *save = NULL, *t = strtok_r(words, " ", &save); t && n + 1 < cap;
         t = strtok_r(NULL, " ", &save))
        buf[n++] = t;
    for (size_t i = 0; argv[i] && n + 1 < cap; i++)
        buf[n++] = argv[i];
    buf[n] = NULL;
    return buf;
}

/* Slower start-ups and exits under a wrapper such as valgrind. */
static int patience(void)
{
    const char *w = getenv("SY_TEST_WRAPPER");
    return w != NULL && *w != '\0' ? 10 : 1;
}

static pid_t spawn(const char *const *args, const char *log_path)
{
    const char *buf[64];
    char words[1024];
    const char *const *argv = wrap(args, buf, 64, words, sizeof words);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log_path ? log_path : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

static int wait_exit(pid_t pid, int timeout_ms)
{
    int st;
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (r < 0)
            return -1;
        sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

/* --- mock backends --- */

int mock_start(struct mock *m, const char *name, const char *models, const char *const *extra)
{
    char portfile[256], log[256];
    const char *argv[32];
    int n = 0;

    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", name);
    snprintf(portfile, sizeof portfile, "%s/%s.port", scratch_dir(), name);
    snprintf(log, sizeof log, "%s/%s.log", scratch_dir(), name);
    unlink(portfile);
    argv[n++] = MOCK_BIN;
    argv[n++] = "--port";
    argv[n++] = "0";
    argv[n++] = "--port-file";
    argv[n++] = portfile;
    argv[n++] = "--name";
    argv[n++] = name;
    argv[n++] = "--models";
    argv[n++] = models;
    for (int i = 0; extra && extra[i] && n < 30; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    m->pid = spawn(argv, log);
    for (int i = 0; i < 500; i++) {
        FILE *f = fopen(portfile, "r");
        if (f != NULL) {
            int ok = fscanf(f, "%d", &m->port) == 1;
            fclose(f);
            if (ok && m->port > 0) {
                snprintf(m->url, sizeof m->url, "http://127.0.0.1:%d", m->port);
                return 0;
            }
        }
        sleep_ms(10);
    }
    mock_stop(m);
    return -1;
}

void mock_stop(struct mock *m)
{
    if (m->pid > 0) {
        kill(m->pid, SIGTERM);
        wait_exit(m->pid, 3000);
        m->pid = 0;
    }
}

int mock_set_mode(const struct mock *m, const char *json)
{
    struct resp r;
    int rc = http_post(m->port, "/_mock/mode", json, NULL, &r);
    rc = rc == 0 && r.status == 200 ? 0 : -1;
    resp_free(&r);
    return rc;
}

int mock_requests(const struct mock *m)
{
    struct resp r;
    int n = -1;
    if (http_get(m->port, "/_mock/stats", &r) == 0 && r.body != NULL) {
        const char *p = strstr(r.body, "\"requests\"");
        if (p != NULL && (p = strchr(p, ':')) != NULL)
            n = atoi(p + 1);
    }
    resp_free(&r);
    return n;
}

int mock_last(const struct mock *m, struct resp *r)
{
    return http_get(m->port, "/_mock/last", r);
}

/* --- the OTLP receiver --- */

int otlp_start(struct otlp *o)
{
    static int seq;
    char portfile[256], log[256];
    const char *argv[] = { OTLP_BIN, "--port", "0", "--port-file", portfile, NULL };

    memset(o, 0, sizeof *o);
    seq++;
    snprintf(portfile, sizeof portfile, "%s/otlp-%d.port", scratch_dir(), seq);
    snprintf(log, sizeof log, "%s/otlp-%d.log", scratch_dir(), seq);
    unlink(portfile);
    o->pid = spawn(argv, log);
    for (int i = 0; i < 500; i++) {
        FILE *f = fopen(portfile, "r");
        if (f != NULL) {
            int ok = fscanf(f, "%d", &o->port) == 1;
            fclose(f);
            if (ok && o->port > 0) {
                snprintf(o->url, sizeof o->url, "http://127.0.0.1:%d", o->port);
                return 0;
            }
        }
        sleep_ms(10);
    }
    otlp_stop(o);
    return -1;
}

void otlp_stop(struct otlp *o)
{
    if (o->pid > 0) {
        kill(o->pid, SIGTERM);
        wait_exit(o->pid, 3000);
        o->pid = 0;
    }
}

/* GET path as JSON of the given type: a new reference, or NULL. */
static json_object *otlp_get(const struct otlp *o, const char *path, json_type type)
{
    struct resp r;
    json_object *j = NULL;

    if (http_get(o->port, path, &r) == 0 && r.status == 200) {
        j = json_tokener_parse(r.body);
        if (j != NULL && !json_object_is_type(j, type)) {
            json_object_put(j);
            j = NULL;
        }
    }
    resp_free(&r);
    return j;
}

json_object *otlp_spans(const struct otlp *o)
{
    return otlp_get(o, "/_otlp/spans", json_type_array);
}

json_object *otlp_wait_spans(const struct otlp *o, size_t n, int timeout_ms)
{
    double deadline = mono_seconds() + (double)(timeout_ms * patience()) / 1000;
    json_object *a;

    for (;;) {
        a = otlp_spans(o);
        if ((a != NULL && json_object_array_length(a) >= n) || mono_seconds() >= deadline)
            return a;
        json_object_put(a);
        sleep_ms(20);
    }
}

json_object *otlp_stats(const struct otlp *o)
{
    return otlp_get(o, "/_otlp/stats", json_type_object);
}

int otlp_set_mode(const struct otlp *o, const char *json)
{
    struct resp r;
    int rc = http_post(o->port, "/_otlp/mode", json, NULL, &r);
    rc = rc == 0 && r.status == 200 ? 0 : -1;
    resp_free(&r);
    return rc;
}

/* --- the router --- */

int router_start(struct router *r, const char *yaml, const char *const *extra)
{
    static int seq;
    const char *argv[40];
    char text[16384];
    int n = 0;
    FILE *f;

    memset(r, 0, sizeof *r);
    r->port = free_port();
    snprintf(r->dir, sizeof r->dir, "%s", scratch_dir());
    snprintf(r->config, sizeof r->config, "%s/router-%d.yaml", r->dir, ++seq);
    snprintf(r->log, sizeof r->log, "%s/router-%d.log", r->dir, seq);
    snprintf(text, sizeof text, "listen: 127.0.0.1:%d\n%s", r->port, yaml);
    f = fopen(r->config, "w");
    if (f == NULL)
        return -1;
    fputs(text, f);
    fclose(f);
    argv[n++] = SWITCHYARD_BIN;
    argv[n++] = "-c";
    argv[n++] = r->config;
    for (int i = 0; router_plugin_args[i]; i++)
        argv[n++] = router_plugin_args[i];
    for (int i = 0; extra && extra[i] && n < 38; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    r->pid = spawn(argv, r->log);
    for (int i = 0; i < 500 * patience(); i++) {
        struct resp h;
        int st;
        if (waitpid(r->pid, &st, WNOHANG) == r->pid) {
            r->pid = 0;
            return -1;
        }
        if (http_raw(r->port, "GET", "/health", NULL, NULL, 200, &h) == 0 && h.status == 200) {
            resp_free(&h);
            return 0;
        }
        resp_free(&h);
        sleep_ms(10);
    }
    router_stop(r);
    return -1;
}

int router_stop(struct router *r)
{
    int st = -1;
    if (r->pid > 0) {
        kill(r->pid, SIGTERM);
        st = wait_exit(r->pid, 10000 * patience());
        r->pid = 0;
    }
    return st;
}

int router_wait(struct router *r, int timeout_ms)
{
    int st = -1;
    if (r->pid > 0) {
        st = wait_exit(r->pid, timeout_ms * patience());
        r->pid = 0;
    }
    return st;
}

int router_run(const char *const *args, char **out)
{
    const char *argv[40];
    char log[256];
    int n = 0, st;
    FILE *f;

    snprintf(log, sizeof log, "%s/run.log", scratch_dir());
    unlink(log);
    argv[n++] = SWITCHYARD_BIN;
    for (int i = 0; args[i] && n < 39; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    st = wait_exit(spawn(argv, log), 10000 * patience());
    *out = NULL;
    f = fopen(log, "r");
    if (f != NULL) {
        size_t cap = 65536, len;
        *out = calloc(1, cap + 1);
        len = *out ? fread(*out, 1, cap, f) : 0;
        if (*out)
            (*out)[len] = '\0';
        fclose(f);
    }
    if (*out == NULL)
        *out = strdup("");
    return st;
}

/* --- HTTP client --- */

struct collect {
    struct resp *r;
    double start;
    size_t cap;
    size_t hlen, hcap;
};

/* Append to a NUL-terminated growing buffer; -1 on OOM. */
static int append(char **buf, size_t *len, size_t *cap, const char *data, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t ncap = (*len + n + 1) * 2;
        char *nb = realloc(*buf, ncap);
        if (nb == NULL)
            return -1;
        *buf = nb;
        *cap = ncap;
    }
    memcpy(*buf + *len, data, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

static size_t body_cb(char *data, size_t size, size_t n, void *arg)
{
    struct collect *c = arg;
    size_t len = size * n;
    struct resp *r = c->r;

    if (r->chunks == 0)
        r->first_byte = mono_seconds() - c->start;
    if (r->chunks < 64)
        r->chunk_times[r->chunks] = mono_seconds() - c->start;
    r->chunks++;
    return append(&r->body, &r->len, &c->cap, data, len) == 0 ? len : 0;
}

static size_t head_cb(char *data, size_t size, size_t n, void *arg)
{
    struct collect *c = arg;
    size_t len = size * n;

    return append(&c->r->headers, &c->hlen, &c->hcap, data, len) == 0 ? len : 0;
}

int http_raw(int port, const char *method, const char *path, const char *body,
             const char *const *headers, long timeout_ms, struct resp *r)
{
    CURL *e = curl_easy_init();
    struct curl_slist *l = NULL;
    struct collect c = { r, mono_seconds(), 0, 0, 0 };
    char url[1024];
    CURLcode rc;

    memset(r, 0, sizeof *r);
    if (e == NULL)
        return -1;
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    for (int i = 0; headers && headers[i]; i++)
        l = curl_slist_append(l, headers[i]);
    if (body != NULL && (headers == NULL || strcasestr(headers[0] ? headers[0] : "", "content-type") == NULL))
        l = curl_slist_append(l, "Content-Type: application/json");
    l = curl_slist_append(l, "Expect:");
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, l);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, body_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &c);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, head_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &c);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    rc = curl_easy_perform(e);
    r->curl_error = (int)rc;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
    r->total = mono_seconds() - c.start;
    curl_slist_free_all(l);
    curl_easy_cleanup(e);
    if (r->body == NULL)
        r->body = strdup("");
    if (r->headers == NULL)
        r->headers = strdup("");
    return rc == CURLE_OK ? 0 : -1;
}

int http_post(int port, const char *path, const char *body, const char *const *headers,
              struct resp *r)
{
    return http_raw(port, "POST", path, body, headers, 15000, r);
}

int http_get(int port, const char *path, struct resp *r)
{
    return http_raw(port, "GET", path, NULL, NULL, 15000, r);
}

void resp_free(struct resp *r)
{
    free(r->body);
    free(r->headers);
    r->body = r->headers = NULL;
}

const char *resp_header(const struct resp *r, const char *name)
{
    static char value[1024];
    size_t n = strlen(name);
    const char *p = r->headers, *found = NULL;

    /* the last head wins (after 100 Continue and the like) */
    while (p != NULL && *p) {
        if (strncasecmp(p, name, n) == 0 && p[n] == ':')
            found = p + n + 1;
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    if (found == NULL)
        return NULL;
    while (*found == ' ')
        found++;
    size_t len = strcspn(found, "\r\n");
    if (len >= sizeof value)
        len = sizeof value - 1;
    memcpy(value, found, len);
    value[len] = '\0';
    return value;
}

int tcp_read_close(int fd, char *out, size_t outlen, long timeout_ms)
{
    size_t got = 0;
    double deadline = mono_seconds() + (double)timeout_ms / 1000;

    while (fd >= 0 && got + 1 < outlen && mono_seconds() < deadline) {
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t n = read(fd, out + got, outlen - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    out[got] = '\0';
    if (fd >= 0)
        close(fd);
    return (int)got;
}

int tcp_connect(int port)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

int count_substr(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

int tcp_exchange(int port, const char *data, size_t len, char *out, size_t outlen, long timeout_ms)
{
    int fd = tcp_connect(port);

    if (fd < 0)
        return -1;
    if (len > 0 && write(fd, data, len) != (ssize_t)len) {
        close(fd);
        return -1;
    }
    return tcp_read_close(fd, out, outlen, timeout_ms);
}

double metric_value(int port, const char *sample, double absent)
{
    struct resp r;
    double v = absent;
    size_t n = strlen(sample);

    if (http_get(port, "/metrics", &r) == 0 && r.body != NULL) {
        for (const char *p = r.body; *p;) {
            if (strncmp(p, sample, n) == 0 && p[n] == ' ') {
                v = strtod(p + n + 1, NULL);
                break;
            }
            const char *nl = strchr(p, '\n');
            if (nl == NULL)
                break;
            p = nl + 1;
        }
    }
    resp_free(&r);
    return v;
}

int router_log_lines(const struct router *r, const char *a, const char *b)
{
    char line[4096];
    int n = 0;
    FILE *f = fopen(r->log, "r");

    if (f == NULL)
        return 0;
    while (fgets(line, sizeof line, f) != NULL)
        n += strstr(line, a) != NULL && (b == NULL || strstr(line, b) != NULL);
    fclose(f);
    return n;
}
