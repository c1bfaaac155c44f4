/*
 * soak.c - soak-and-faults test of switchyard.
 *
 * Starts NMOCKS mock backends and the router (its config in a scratch
 * directory), drives --requests requests at --concurrency through it with
 * libcurl's multi interface (plain chat, streams of several chunks, clients
 * that hang up mid-stream or give up early on purpose), while a chaos
 * thread, driven by --seed, kills mock backends (SIGKILL) and restarts them
 * on the same port, makes them fail (503, 500, 429 with Retry-After, hang,
 * close, slow answers, death or a stall mid-stream), restores them, and
 * reloads the router (SIGHUP with a rewritten config).  Then it checks:
 *
 *   1. outcomes: every request got exactly one answer: a status (200, the
 *      router's 503 or 504, or a backend's last 500, 503 or 429 passed on;
 *      a 200 stream may end in an error event when its backend died or
 *      stalled), or the client's own deliberate hang-up;
 *   2. attempts: X-Switchyard-Attempts on every answer (>= 1 for a 200, at
 *      most max_attempts), the request's own X-Request-Id back, and one
 *      access-log line per request agreeing with what the client saw;
 *   3. no hidden resends: the inference requests the backends received (the
 *      counts of killed incarnations included) are at most the attempts the
 *      router declared;
 *   4. recovery: once the chaos stops, every backend is healthy again and
 *      every request of a short load is 200;
 *   5. fds: the router's open descriptors are back at the baseline taken
 *      after start-up and warm-up (idle backend connections within the
 *      workers' caches);
 *   6. rss: its VmRSS is within +20% or +8 MiB of that baseline (not
 *      counted under AddressSanitizer, whose quarantine keeps freed memory);
 *   7. in flight: every switchyard_backend_inflight in /metrics, every
 *      in_flight in /engines and every mock's inflight is 0;
 *   8. exit: the router stayed up and exits 0 on SIGTERM.
 *
 * The last line is "soak: N passed, M failed"; the exit status is 0 when
 * every check passed.  Only 127.0.0.1 is used.  docs/soak.md has more.
 *
 *   soak --router ./switchyard --mock tests/mock_backend --plugin-dir plugins/.libs \
 *        [--requests 200000] [--concurrency 64] [--seconds 600] [--rate R] [--seed N]
 *        [--fd-margin 16] [--keep]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NMOCKS 4            /* m0..m2 serve "main", m3 serves "small" */
#define MAX_ATTEMPTS 8      /* max_attempts in the config */
#define CLIENT_TIMEOUT_MS 15000
#define MAX_FAIL_LINES 40
#define BODY_CAP (1 << 20)

/* ---- options and shared state ---- */

static struct {
    long requests;
    int conc;
    double seconds;
    double rate;
    unsigned seed;
    const char *router_bin, *mock_bin, *plugin_dir;
    int keep;
    int fd_margin;
} O = { 200000, 64, 600, 0, 0, NULL, NULL, NULL, 0, 16 };

struct mockproc {
    pid_t pid;
    int port;
    char name[16];
    const char *models;
    int alive;
    int moded;               /* a failure mode is set */
    double restart_at;       /* while dead: when to start it again */
    unsigned long lost;      /* inference requests counted by killed incarnations */
    int lost_unknown;        /* kills whose count could not be read */
};

static struct mockproc mocks[NMOCKS];
static char dir[256];
static char config_path[320], router_log[320];
static volatile pid_t router_pid;
static int router_port;
static int router_exited = -1;   /* wait status once it exited by itself */
static int use_asan;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- processes ---- */

static void close_from(int lo)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned)lo, ~0U, 0) == 0)
        return;
#endif
    for (int fd = lo; fd < 65536; fd++)
        close(fd);
}

/* fork+exec with stdout/stderr to log.  The child keeps none of our
 * descriptors: an inherited client socket would keep a connection to the
 * router open after we close it. */
static pid_t spawn(char *const argv[], const char *log)
{
    pid_t pid = fork();

    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0)
            dup2(nul, 0);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        close_from(3);
        signal(SIGPIPE, SIG_DFL);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static void on_fatal_signal(int sig)
{
    for (int i = 0; i < NMOCKS; i++)
        if (mocks[i].pid > 0)
            kill(mocks[i].pid, SIGKILL);
    if (router_pid > 0)
        kill(router_pid, SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* A port below the kernel's ephemeral range, so that no outgoing
 * connection takes it while its mock is dead and it can be bound again. */
static int pick_port(unsigned *rs)
{
    int lo = 32768, hi = 60999;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");

    if (f != NULL) {
        if (fscanf(f, "%d %d", &lo, &hi) != 2)
            lo = 32768;
        fclose(f);
    }
    int base = 10000, span = lo - 1 - base;
    if (span < 1000) { /* odd range: any free port */
        base = 1024;
        span = lo - 1 - base;
    }
    for (int tries = 0; tries < 200; tries++) {
        int port = base + (int)(rand_r(rs) % (unsigned)span), one = 1;
        struct sockaddr_in a;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int ok;

        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons((unsigned short)port);
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
        if (fd >= 0)
            close(fd);
        if (ok)
            return port;
    }
    return -1;
}

static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

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

/* Start m on m->port; waits for its port file.  0 on success. */
static int mock_spawn(struct mockproc *m)
{
    char port[16], pf[320], log[320];
    char *argv[12];
    int n = 0, st;

    snprintf(port, sizeof port, "%d", m->port);
    snprintf(pf, sizeof pf, "%s/%s.port", dir, m->name);
    snprintf(log, sizeof log, "%s/%s.log", dir, m->name);
    unlink(pf);
    argv[n++] = (char *)O.mock_bin;
    argv[n++] = "--port";
    argv[n++] = port;
    argv[n++] = "--port-file";
    argv[n++] = pf;
    argv[n++] = "--name";
    argv[n++] = m->name;
    argv[n++] = "--models";
    argv[n++] = (char *)m->models;
    argv[n] = NULL;
    m->pid = spawn(argv, log);
    if (m->pid < 0)
        return -1;
    for (int i = 0; i < 500; i++) {
        FILE *f = fopen(pf, "r");
        if (f != NULL) {
            int p = 0, ok = fscanf(f, "%d", &p) == 1;
            fclose(f);
            if (ok && p == m->port) {
                m->alive = 1;
                m->moded = 0;
                return 0;
            }
        }
        if (waitpid(m->pid, &st, WNOHANG) == m->pid) {
            m->pid = 0;
            return -1;
        }
        sleep_ms(10);
    }
    kill(m->pid, SIGKILL);
    waitpid(m->pid, &st, 0);
    m->pid = 0;
    return -1;
}

static void mock_kill(struct mockproc *m, int sig)
{
    int st;

    if (m->pid > 0) {
        kill(m->pid, sig);
        waitpid(m->pid, &st, 0);
    }
    m->pid = 0;
    m->alive = 0;
    m->moded = 0;
}

/* ---- small HTTP exchanges (control plane), one connection each ---- */

struct buf {
    char *p;
    size_t n, cap;
};

static size_t buf_cb(char *data, size_t size, size_t nm, void *arg)
{
    struct buf *b = arg;
    size_t len = size * nm;

    if (b->n + len + 1 > b->cap) {
        size_t cap = (b->n + len + 1) * 2;
        char *p = realloc(b->p, cap);
        if (p == NULL)
            return 0;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, len);
    b->n += len;
    b->p[b->n] = '\0';
    return len;
}

/* The status, or -1; the body in out (NUL-terminated, caller frees). */
static long http_do(int port, const char *path, const char *post, struct buf *out, long timeout_ms)
{
    CURL *e = curl_easy_init();
    struct curl_slist *h = NULL;
    char url[256];
    long status = -1;

    memset(out, 0, sizeof *out);
    if (e == NULL)
        return -1;
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, buf_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    if (post != NULL) {
        h = curl_slist_append(h, "Content-Type: application/json");
        h = curl_slist_append(h, "Expect:");
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, post);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(post));
    }
    if (curl_easy_perform(e) == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    if (out->p == NULL)
        out->p = strdup("");
    return status;
}

/* A mock's /_mock/stats: requests and inflight; -1 when unreadable. */
static int mock_stats(const struct mockproc *m, long *requests, long *inflight)
{
    struct buf b;
    json_object *o, *v;
    int rc = -1;

    if (http_do(m->port, "/_mock/stats", NULL, &b, 2000) == 200 &&
        (o = json_tokener_parse(b.p)) != NULL) {
        if (json_object_object_get_ex(o, "requests", &v))
            *requests = (long)json_object_get_int64(v), rc = 0;
        if (inflight != NULL && json_object_object_get_ex(o, "inflight", &v))
            *inflight = (long)json_object_get_int64(v);
        json_object_put(o);
    }
    free(b.p);
    return rc;
}

static int mock_mode(const struct mockproc *m, const char *json)
{
    struct buf b;
    long st = http_do(m->port, "/_mock/mode", json, &b, 2000);
    free(b.p);
    return st == 200 ? 0 : -1;
}

/* ---- the router ---- */

static int cfg_reroute = 2, cfg_consecutive = 3;

/* Idle upstream connections each worker keeps: about what a worker uses at
 * the load's concurrency, so the warm-up fills the cache about as full as
 * the chaos can, and the fd check compares like with like. */
static int upstream_cache(void)
{
    return O.conc / 2 > 8 ? O.conc / 2 : 8;
}

/* Written next to it and renamed in, so a reload never reads half a file. */
static int write_config(void)
{
    char tmp[340];
    FILE *f;

    snprintf(tmp, sizeof tmp, "%s.tmp", config_path);
    f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    fprintf(f,
            "# written by tests/soak\n"
            "listen: 127.0.0.1:%d\n"
            "workers: 2\n"
            "log_level: warning\n"
            "access_log: true\n"
            "upstream_timeout: 300ms\n"
            "connect_timeout: 200ms\n"
            "idle_timeout: 1s\n"
            "request_deadline: 5s\n"
            "retry_after_cap: 200ms\n"
            "reroute_attempts: %d\n"
            "max_attempts: %d\n"
            "drain_timeout: 2s\n"
            "upstream_max_connections: %d\n"
            "routing: roundrobin\n"
            "health: [passive]\n"
            "plugin_config:\n"
            "  passive: {consecutive: %d, failure_ratio: 0.5, min_requests: 20, window: 1s,\n"
            "            cooldown: 200ms, max_cooldown: 1s}\n"
            "models:\n"
            "  main:\n"
            "    backends: [http://127.0.0.1:%d, http://127.0.0.1:%d, http://127.0.0.1:%d]\n"
            "    fallback_model: small\n"
            "  small:\n"
            "    backends: [http://127.0.0.1:%d]\n",
            router_port, cfg_reroute, MAX_ATTEMPTS, upstream_cache(), cfg_consecutive,
            mocks[0].port, mocks[1].port, mocks[2].port, mocks[3].port);
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, config_path);
}

static int router_alive(void)
{
    int st;

    if (router_pid <= 0)
        return 0;
    if (waitpid(router_pid, &st, WNOHANG) == router_pid) {
        router_exited = st;
        router_pid = 0;
        return 0;
    }
    return 1;
}

static int router_start(void)
{
    char *argv[8];
    int n = 0;

    router_port = free_port();
    if (router_port < 0 || write_config() != 0)
        return -1;
    argv[n++] = (char *)O.router_bin;
    argv[n++] = "-c";
    argv[n++] = config_path;
    argv[n++] = "--plugin-dir";
    argv[n++] = (char *)O.plugin_dir;
    argv[n] = NULL;
    router_pid = spawn(argv, router_log);
    for (int i = 0; i < 3000; i++) {
        struct buf b;
        long st;
        if (!router_alive())
            return -1;
        st = http_do(router_port, "/health", NULL, &b, 500);
        free(b.p);
        if (st == 200)
            return 0;
        sleep_ms(10);
    }
    return -1;
}

static void print_log_tail(const char *path, int lines)
{
    char cmd[600];

    snprintf(cmd, sizeof cmd, "grep -v ' ACCESS ' '%s' 2>/dev/null | tail -n %d | sed 's/^/soak:   | /'",
             path, lines);
    fflush(stdout);
    if (system(cmd) != 0)
        return;
}

/* ---- the router's resources ---- */

struct snap {
    int fds, sockets, client, upstream, listening, other_sockets, non_sockets;
    long rss_kib;
};

static int mock_port_index(int port)
{
    for (int i = 0; i < NMOCKS; i++)
        if (mocks[i].port == port)
            return i;
    return -1;
}

/* inode -> ports from /proc/PID/net/tcp{,6} */
struct sockinfo {
    unsigned long ino;
    int lport, rport, state;
};

static size_t read_tcp(pid_t pid, struct sockinfo **out)
{
    const char *files[] = { "tcp", "tcp6" };
    size_t n = 0, cap = 0;
    char path[64], line[512];

    *out = NULL;
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "/proc/%d/net/%s", (int)pid, files[k]);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        if (fgets(line, sizeof line, f) == NULL) { /* header */
            fclose(f);
            continue;
        }
        while (fgets(line, sizeof line, f) != NULL) {
            char local[64], remote[64];
            unsigned st;
            unsigned long ino;
            if (sscanf(line, "%*d: %63s %63s %x %*s %*s %*s %*d %*d %lu", local, remote, &st,
                       &ino) != 4)
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 256;
                struct sockinfo *p = realloc(*out, cap * sizeof **out);
                if (p == NULL)
                    break;
                *out = p;
            }
            char *lc = strrchr(local, ':'), *rc = strrchr(remote, ':');
            (*out)[n].ino = ino;
            (*out)[n].lport = lc ? (int)strtol(lc + 1, NULL, 16) : 0;
            (*out)[n].rport = rc ? (int)strtol(rc + 1, NULL, 16) : 0;
            (*out)[n].state = (int)st;
            n++;
        }
        fclose(f);
    }
    return n;
}

static long read_rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

static int take_snapshot(struct snap *s)
{
    char path[64], target[256];
    struct sockinfo *socks = NULL;
    size_t nsocks;
    struct dirent *de;
    DIR *d;

    memset(s, 0, sizeof *s);
    if (router_pid <= 0)
        return -1;
    nsocks = read_tcp(router_pid, &socks);
    snprintf(path, sizeof path, "/proc/%d/fd", (int)router_pid);
    d = opendir(path);
    if (d == NULL) {
        free(socks);
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        s->fds++;
        ssize_t len = readlinkat(dirfd(d), de->d_name, target, sizeof target - 1);
        unsigned long ino;
        if (len < 0)
            continue;
        target[len] = '\0';
        if (sscanf(target, "socket:[%lu]", &ino) != 1) {
            s->non_sockets++;
            continue;
        }
        s->sockets++;
        size_t i;
        for (i = 0; i < nsocks && socks[i].ino != ino; i++)
            ;
        if (i == nsocks)
            s->other_sockets++;
        else if (socks[i].state == 0x0A)
            s->listening++;
        else if (socks[i].lport == router_port)
            s->client++;
        else if (mock_port_index(socks[i].rport) >= 0)
            s->upstream++;
        else
            s->other_sockets++;
    }
    closedir(d);
    free(socks);
    s->rss_kib = read_rss_kib(router_pid);
    return 0;
}

static int maps_have(pid_t pid, const char *what)
{
    char path[64], line[1024];
    int found = 0;
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    while (!found && fgets(line, sizeof line, f) != NULL)
        found = strstr(line, what) != NULL;
    fclose(f);
    return found;
}

/* ---- the load ---- */

/* plain chat; a stream of several chunks; a stream the client hangs up
 * on after its first event; a stream whose client gives up after 50-600 ms
 * (before the answer when its backend is slow, hangs or stalls) */
enum kind { K_PLAIN, K_STREAM, K_ABORT, K_GIVEUP };

struct outcome {
    short status;           /* 0: no head */
    short attempts;         /* -1: no header */
    unsigned char kind;
    unsigned char small;    /* asked for the fallback model directly */
    unsigned char heads;    /* response heads seen */
    unsigned char aborted;  /* we hung up mid-stream on purpose */
    unsigned char done_ev;  /* data: [DONE] seen */
    unsigned char err_ev;   /* data: {"error"...} seen */
    unsigned char fallback; /* X-Switchyard-Fallback */
    unsigned char id_ok;    /* X-Request-Id is ours */
    unsigned char sse;
    unsigned char retry_after; /* Retry-After */
    unsigned char finished;
    unsigned char gave_up;  /* K_GIVEUP and our timeout struck */
    unsigned char log_count; /* access-log lines with its id */
    unsigned char log_garbled; /* one of them without the path sent */
    short log_status, log_attempts;
    int curl_rc;
};

struct slot {
    CURL *e;
    long idx;
    struct curl_slist *hdrs;
    char body[256];
    char id[64];
    struct buf resp;
};

struct phase {
    const char *name;       /* id prefix */
    long n;
    int conc;
    double seconds;         /* stop issuing after this long; 0: no limit */
    double rate;            /* requests started per second at most; 0: no limit */
    int chaos_mix;          /* aborts and the fallback model too */
    struct outcome *out;
    long issued, finished;
    double elapsed;
    int router_died;
};

/* Per-request state lives in the outcome; the callbacks get both. */
struct cbarg {
    struct slot *s;
    struct outcome *o;
};

static size_t hdr_cb(char *data, size_t size, size_t nm, void *arg)
{
    struct cbarg *a = arg;
    size_t len = size * nm, l = len;
    const char *v;

    while (l > 0 && (data[l - 1] == '\r' || data[l - 1] == '\n'))
        l--;
    if (l >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        const char *sp = memchr(data, ' ', l);
        a->o->heads++;
        a->o->status = (short)(sp ? atoi(sp + 1) : 0);
        return len;
    }
    v = memchr(data, ':', l);
    if (v == NULL)
        return len;
    size_t nlen = (size_t)(v - data);
    v++;
    while (v < data + l && (*v == ' ' || *v == '\t'))
        v++;
    size_t vlen = (size_t)(data + l - v);
#define IS(h) (nlen == sizeof(h) - 1 && strncasecmp(data, h, nlen) == 0)
    if (IS("X-Switchyard-Attempts"))
        a->o->attempts = (short)atoi(v);
    else if (IS("X-Switchyard-Fallback"))
        a->o->fallback = 1;
    else if (IS("X-Request-Id"))
        a->o->id_ok = vlen == strlen(a->s->id) && strncmp(v, a->s->id, vlen) == 0;
    else if (IS("Retry-After"))
        a->o->retry_after = 1;
    else if (IS("Content-Type"))
        a->o->sse = vlen >= 17 && strncasecmp(v, "text/event-stream", 17) == 0;
#undef IS
    return len;
}

static size_t body_cb(char *data, size_t size, size_t nm, void *arg)
{
    struct cbarg *a = arg;
    size_t len = size * nm;

    if (a->s->resp.n + len < BODY_CAP && buf_cb(data, 1, len, &a->s->resp) != len)
        return 0;
    /* hang up once the first event of a 200 stream is in */
    if (a->o->kind == K_ABORT && a->o->status == 200 && a->o->sse &&
        a->s->resp.p != NULL && strstr(a->s->resp.p, "\n\n") != NULL) {
        a->o->aborted = 1;
        return 0;
    }
    return len;
}

static struct cbarg *cbargs;
static struct slot *slots;

static void start_request(CURLM *multi, struct phase *ph, int si, long idx)
{
    struct slot *s = &slots[si];
    struct outcome *o = &ph->out[idx];
    unsigned rs = O.seed ^ (unsigned)(idx * 2654435761u) ^ (unsigned)ph->name[0];
    char h[128];
    int r = (int)(rand_r(&rs) % 100);

    memset(o, 0, sizeof *o);
    o->attempts = -1;
    o->kind = ph->chaos_mix ? (r < 44 ? K_PLAIN : r < 88 ? K_STREAM : r < 97 ? K_ABORT : K_GIVEUP)
                            : (r < 50 ? K_PLAIN : K_STREAM);
    o->small = ph->chaos_mix && rand_r(&rs) % 10 == 0;
    s->idx = idx;
    s->resp.n = 0;
    if (s->resp.p != NULL)
        s->resp.p[0] = '\0';
    snprintf(s->id, sizeof s->id, "soak-%s-%u-%ld", ph->name, O.seed, idx);
    snprintf(s->body, sizeof s->body,
             "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"soak %ld\"}]%s}",
             o->small ? "small" : "main", idx, o->kind == K_PLAIN ? "" : ",\"stream\":true");
    s->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    s->hdrs = curl_slist_append(s->hdrs, "Expect:");
    snprintf(h, sizeof h, "X-Request-Id: %s", s->id);
    s->hdrs = curl_slist_append(s->hdrs, h);
    if (o->kind == K_STREAM || o->kind == K_GIVEUP) {
        snprintf(h, sizeof h, "X-Mock-Chunks: %u", 3 + rand_r(&rs) % 6);
        s->hdrs = curl_slist_append(s->hdrs, h);
    } else if (o->kind == K_ABORT) {
        /* long enough to be cut in the middle */
        s->hdrs = curl_slist_append(s->hdrs, "X-Mock-Chunks: 30");
        s->hdrs = curl_slist_append(s->hdrs, "X-Mock-Chunk-Delay-Ms: 10");
    }
    cbargs[si].s = s;
    cbargs[si].o = o;
    if (s->e == NULL)
        s->e = curl_easy_init();
    else
        curl_easy_reset(s->e);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/chat/completions", router_port);
    curl_easy_setopt(s->e, CURLOPT_URL, url);
    curl_easy_setopt(s->e, CURLOPT_PROXY, "");
    curl_easy_setopt(s->e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(s->e, CURLOPT_HTTPHEADER, s->hdrs);
    curl_easy_setopt(s->e, CURLOPT_POSTFIELDS, s->body);
    curl_easy_setopt(s->e, CURLOPT_POSTFIELDSIZE, (long)strlen(s->body));
    curl_easy_setopt(s->e, CURLOPT_HEADERFUNCTION, hdr_cb);
    curl_easy_setopt(s->e, CURLOPT_HEADERDATA, &cbargs[si]);
    curl_easy_setopt(s->e, CURLOPT_WRITEFUNCTION, body_cb);
    curl_easy_setopt(s->e, CURLOPT_WRITEDATA, &cbargs[si]);
    curl_easy_setopt(s->e, CURLOPT_TIMEOUT_MS,
                     o->kind == K_GIVEUP ? 50L + (long)(rand_r(&rs) % 550) : (long)CLIENT_TIMEOUT_MS);
    curl_easy_setopt(s->e, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
    curl_easy_setopt(s->e, CURLOPT_PRIVATE, (char *)(intptr_t)si);
    curl_multi_add_handle(multi, s->e);
    ph->issued++;
}

/* What was wrong with a finished request, or NULL. */
static const char *judge(const struct outcome *o, const char *body, char *why, size_t wlen)
{
    if (o->gave_up) {
        if (o->heads > 1 || (o->heads == 1 && (o->attempts < 0 || !o->id_ok))) {
            snprintf(why, wlen, "client gave up after %d heads, attempts %d, id %s", o->heads,
                     o->attempts, o->id_ok ? "ok" : "wrong");
            return why;
        }
        return NULL;
    }
    if (o->aborted) {
        if (o->heads != 1 || o->status != 200 || o->attempts < 1 || !o->id_ok) {
            snprintf(why, wlen, "aborted stream with %d heads, status %d, attempts %d, id %s",
                     o->heads, o->status, o->attempts, o->id_ok ? "ok" : "wrong");
            return why;
        }
        return NULL;
    }
    if (o->curl_rc != CURLE_OK) {
        snprintf(why, wlen, "transport error: %s (status %d, %d heads)",
                 curl_easy_strerror((CURLcode)o->curl_rc), o->status, o->heads);
        return why;
    }
    if (o->heads != 1) {
        snprintf(why, wlen, "%d response heads", o->heads);
        return why;
    }
    if (!o->id_ok) {
        snprintf(why, wlen, "X-Request-Id missing or not ours");
        return why;
    }
    if (o->attempts < 0 || o->attempts > MAX_ATTEMPTS || (o->status == 200 && o->attempts < 1)) {
        snprintf(why, wlen, "status %d with X-Switchyard-Attempts %d", o->status, o->attempts);
        return why;
    }
    switch (o->status) {
    case 200:
        if (o->kind == K_PLAIN) {
            json_object *j = json_tokener_parse(body), *c;
            int ok = j != NULL && json_object_object_get_ex(j, "choices", &c);
            json_object_put(j);
            if (!ok) {
                snprintf(why, wlen, "200 with a body that is not a chat completion: %.80s", body);
                return why;
            }
        } else if (!o->sse) {
            snprintf(why, wlen, "stream answered 200 without text/event-stream");
            return why;
        } else if (!o->done_ev && !o->err_ev) {
            snprintf(why, wlen, "stream ended without [DONE] or an error event");
            return why;
        } else if (o->done_ev && o->err_ev) {
            snprintf(why, wlen, "stream with both [DONE] and an error event");
            return why;
        }
        return NULL;
    case 429:
    case 500:
    case 503:
    case 504:
        /* the router's own 503 or 504 (no backend answered), or the last
         * answer a backend gave, passed on: the mocks' 500, 503 and 429 */
        if (strstr(body, "\"error\"") == NULL) {
            snprintf(why, wlen, "%d without an error body", o->status);
            return why;
        }
        if (strstr(body, "no backend could serve") != NULL) {
            if (o->status != 503 && o->status != 504) {
                snprintf(why, wlen, "the router's own %d", o->status);
                return why;
            }
            if (o->status == 503 && !o->retry_after) {
                snprintf(why, wlen, "the router's 503 without Retry-After");
                return why;
            }
        } else if (strstr(body, "mock status") == NULL || o->status == 504) {
            snprintf(why, wlen, "%d that is neither the router's nor a backend's: %.80s",
                     o->status, body);
            return why;
        }
        return NULL;
    default:
        snprintf(why, wlen, "status %d: %.80s", o->status, body);
        return why;
    }
}

static long nfail_lines;

static void finish_request(struct phase *ph, int si, CURLcode rc, long *nbad)
{
    struct slot *s = &slots[si];
    struct outcome *o = &ph->out[s->idx];
    const char *body = s->resp.p ? s->resp.p : "";
    char why[256];

    o->curl_rc = (int)rc;
    o->finished = 1;
    o->gave_up = o->kind == K_GIVEUP && rc == CURLE_OPERATION_TIMEDOUT && !o->aborted;
    if (o->kind != K_PLAIN && o->sse) {
        o->done_ev = strstr(body, "data: [DONE]") != NULL;
        o->err_ev = strstr(body, "data: {\"error\"") != NULL;
    }
    if (judge(o, body, why, sizeof why) != NULL) {
        (*nbad)++;
        if (nfail_lines++ < MAX_FAIL_LINES)
            printf("soak: FAILED request %s: %s\n", s->id, why);
    }
    curl_slist_free_all(s->hdrs);
    s->hdrs = NULL;
    ph->finished++;
}

/* Runs a phase to its end; returns the number of failed requests. */
static long run_phase(struct phase *ph)
{
    CURLM *multi = curl_multi_init();
    int *freelist = calloc((size_t)ph->conc, sizeof *freelist), nfree = ph->conc;
    double start = now(), last_check = start;
    long next = 0, nbad = 0;
    int running = 0;

    slots = calloc((size_t)ph->conc, sizeof *slots);
    cbargs = calloc((size_t)ph->conc, sizeof *cbargs);
    if (multi == NULL || freelist == NULL || slots == NULL || cbargs == NULL) {
        fprintf(stderr, "soak: out of memory\n");
        exit(2);
    }
    for (int i = 0; i < ph->conc; i++)
        freelist[i] = ph->conc - 1 - i;
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)ph->conc);
    for (;;) {
        int stop_issuing = ph->router_died ||
                           (ph->seconds > 0 && now() - start >= ph->seconds);
        long allowed = ph->rate > 0 ? (long)((now() - start) * ph->rate) + 1 : ph->n;
        while (nfree > 0 && next < ph->n && next < allowed && !stop_issuing)
            start_request(multi, ph, freelist[--nfree], next++);
        if (nfree == ph->conc && (next >= ph->n || stop_issuing))
            break;
        curl_multi_perform(multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(multi, &left)) != NULL) {
            if (m->msg != CURLMSG_DONE)
                continue;
            char *pv = NULL;
            CURL *e = m->easy_handle;
            CURLcode rc = m->data.result;
            curl_easy_getinfo(e, CURLINFO_PRIVATE, &pv);
            int si = (int)(intptr_t)pv;
            curl_multi_remove_handle(multi, e);
            finish_request(ph, si, rc, &nbad);
            freelist[nfree++] = si;
        }
        curl_multi_poll(multi, NULL, 0, 50, NULL);
        if (now() - last_check > 0.5) {
            last_check = now();
            if (!ph->router_died && !router_alive()) {
                ph->router_died = 1;
                printf("soak: the router exited during the %s phase (wait status 0x%x)\n",
                       ph->name, router_exited);
            }
        }
    }
    ph->elapsed = now() - start;
    for (int i = 0; i < ph->conc; i++) {
        if (slots[i].e != NULL)
            curl_easy_cleanup(slots[i].e);
        free(slots[i].resp.p);
    }
    curl_multi_cleanup(multi); /* closes our connections to the router */
    free(slots);
    free(cbargs);
    free(freelist);
    slots = NULL;
    cbargs = NULL;
    return nbad;
}

/* The router's access log: per request of the phase, how many lines, the
 * status and attempts logged.  Returns the lines of the phase. */
static long read_access_log(struct phase *ph)
{
    FILE *f = fopen(router_log, "r");
    char *line = NULL, prefix[64];
    size_t cap = 0;
    long n = 0;

    if (f == NULL)
        return -1;
    snprintf(prefix, sizeof prefix, " ACCESS id=soak-%s-%u-", ph->name, O.seed);
    while (getline(&line, &cap, f) > 0) {
        char *p = strstr(line, prefix), *end, *st, *at;
        long idx;
        if (p == NULL)
            continue;
        idx = strtol(p + strlen(prefix), &end, 10);
        if (*end != ' ' || idx < 0 || idx >= ph->issued)
            continue;
        st = strstr(end, " status=");
        at = strstr(end, " attempts=");
        struct outcome *o = &ph->out[idx];
        if (o->log_count < 255)
            o->log_count++;
        /* the path as the client sent it: garbage here means the line was
         * written from freed memory */
        if (strstr(end, " path=/v1/chat/completions ") == NULL)
            o->log_garbled = 1;
        o->log_status = (short)(st ? atoi(st + 8) : -1);
        o->log_attempts = (short)(at ? atoi(at + 10) : -1);
        n++;
    }
    free(line);
    fclose(f);
    return n;
}

/* ---- chaos ---- */

static atomic_int chaos_stop;

static struct {
    long kills, restarts, restart_failures, modes, restores, reloads, ticks;
    long by_mode[10];
} C;

static const char *const mode_names[10] = {
    "503", "500", "429+Retry-After", "503+Retry-After", "hang", "close",
    "delay<timeout", "delay>timeout", "die mid-stream", "stall mid-stream",
};

static void chaos_set_mode(struct mockproc *m, unsigned *rs)
{
    char json[128];
    int k = (int)(rand_r(rs) % 10);

    switch (k) {
    case 0: snprintf(json, sizeof json, "{\"status\":503}"); break;
    case 1: snprintf(json, sizeof json, "{\"status\":500}"); break;
    case 2: snprintf(json, sizeof json, "{\"status\":429,\"retry_after\":\"1\"}"); break;
    case 3: snprintf(json, sizeof json, "{\"status\":503,\"retry_after\":\"2\"}"); break;
    case 4: snprintf(json, sizeof json, "{\"hang\":true}"); break;
    case 5: snprintf(json, sizeof json, "{\"close\":true}"); break;
    case 6: snprintf(json, sizeof json, "{\"delay_ms\":%u}", 20 + rand_r(rs) % 230); break;
    case 7: snprintf(json, sizeof json, "{\"delay_ms\":%u}", 350 + rand_r(rs) % 300); break;
    case 8: snprintf(json, sizeof json, "{\"die_after\":%u}", rand_r(rs) % 4); break;
    default: snprintf(json, sizeof json, "{\"chunk_delay_ms\":1500}"); break;
    }
    if (mock_mode(m, json) == 0) {
        m->moded = 1;
        C.modes++;
        C.by_mode[k]++;
    }
}

static void *chaos_main(void *arg)
{
    unsigned rs = O.seed * 7919u + 17u;

    (void)arg;
    while (!atomic_load(&chaos_stop)) {
        sleep_ms(100 + (int)(rand_r(&rs) % 201));
        if (atomic_load(&chaos_stop))
            break;
        C.ticks++;
        double t = now();
        int dead = 0;
        for (int i = 0; i < NMOCKS; i++) {
            struct mockproc *m = &mocks[i];
            if (!m->alive && t >= m->restart_at) {
                if (mock_spawn(m) == 0) {
                    C.restarts++;
                } else {
                    C.restart_failures++;
                    m->restart_at = t + 0.5;
                }
            }
            dead += !m->alive;
        }
        int r = (int)(rand_r(&rs) % 100), i = (int)(rand_r(&rs) % NMOCKS);
        struct mockproc *m = &mocks[i];
        if (r < 12) {
            long req = 0;
            if (!m->alive || dead >= 2)
                continue;
            /* what this incarnation received dies with it: read it first */
            if (mock_stats(m, &req, NULL) == 0)
                m->lost += (unsigned long)req;
            else
                m->lost_unknown++;
            mock_kill(m, SIGKILL);
            m->restart_at = t + 0.2 + (rand_r(&rs) % 1300) / 1000.0;
            C.kills++;
        } else if (r < 56) {
            if (m->alive)
                chaos_set_mode(m, &rs);
        } else if (r < 93) {
            /* restore one that misbehaves, if any */
            for (int k = 0; k < NMOCKS; k++) {
                struct mockproc *mm = &mocks[(i + k) % NMOCKS];
                if (mm->alive && mm->moded) {
                    if (mock_mode(mm, "{}") == 0) {
                        mm->moded = 0;
                        C.restores++;
                    }
                    break;
                }
            }
        } else {
            cfg_reroute = 1 + (int)(rand_r(&rs) % 2);
            cfg_consecutive = 2 + (int)(rand_r(&rs) % 3);
            if (write_config() == 0 && router_pid > 0 && kill(router_pid, SIGHUP) == 0)
                C.reloads++;
        }
    }
    return NULL;
}

/* ---- checks ---- */

static int npass, nfailc;

static void check(int ok, const char *fmt, ...)
{
    va_list ap;

    printf("soak: %s ", ok ? "PASS" : "FAIL");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    if (ok)
        npass++;
    else
        nfailc++;
}

struct metrics {
    int inflight_n, inflight_nonzero;
    long inflight_sum;
    double retries, fallbacks, exhausted, requests;
};

static int read_metrics(struct metrics *mt)
{
    struct buf b;
    char *line, *save = NULL;

    memset(mt, 0, sizeof *mt);
    if (http_do(router_port, "/metrics", NULL, &b, 5000) != 200) {
        free(b.p);
        return -1;
    }
    for (line = strtok_r(b.p, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *sp = strrchr(line, ' ');
        double v = sp ? atof(sp + 1) : 0;
        if (line[0] == '#' || sp == NULL)
            continue;
        if (!strncmp(line, "switchyard_backend_inflight{", 28)) {
            mt->inflight_n++;
            mt->inflight_sum += (long)v;
            mt->inflight_nonzero += v != 0;
        } else if (!strncmp(line, "switchyard_retries_total{", 25)) {
            mt->retries += v;
        } else if (!strncmp(line, "switchyard_fallbacks_total{", 27)) {
            mt->fallbacks += v;
        } else if (!strncmp(line, "switchyard_exhausted_total{", 27)) {
            mt->exhausted += v;
        } else if (!strncmp(line, "switchyard_requests_total{", 26)) {
            mt->requests += v;
        }
    }
    free(b.p);
    return 0;
}

/* Sum of in_flight over /engines; -1 when unreadable. */
static long engines_inflight(int *n)
{
    struct buf b;
    json_object *o, *list, *v;
    long sum = -1;

    *n = 0;
    if (http_do(router_port, "/engines", NULL, &b, 5000) == 200 &&
        (o = json_tokener_parse(b.p)) != NULL) {
        if ((list = o) != NULL && json_object_is_type(list, json_type_array)) {
            sum = 0;
            for (size_t i = 0; i < json_object_array_length(list); i++)
                if (json_object_object_get_ex(json_object_array_get_idx(list, i), "in_flight", &v)) {
                    sum += (long)json_object_get_int64(v);
                    (*n)++;
                }
        }
        json_object_put(o);
    }
    free(b.p);
    return sum;
}

/* Backends /engines calls healthy. */
static int engines_healthy(void)
{
    struct buf b;
    json_object *o, *list, *v;
    int n = 0;

    if (http_do(router_port, "/engines", NULL, &b, 5000) == 200 &&
        (o = json_tokener_parse(b.p)) != NULL) {
        if ((list = o) != NULL && json_object_is_type(list, json_type_array))
            for (size_t i = 0; i < json_object_array_length(list); i++)
                if (json_object_object_get_ex(json_object_array_get_idx(list, i), "state", &v) &&
                    strcmp(json_object_get_string(v), "healthy") == 0)
                    n++;
        json_object_put(o);
    }
    free(b.p);
    return n;
}

/* Let the router notice our closed connections and settle, then look. */
static void settle_and_snapshot(struct snap *s)
{
    sleep_ms(500);
    take_snapshot(s);
}

static void print_snap(const char *what, const struct snap *s)
{
    printf("soak: %s: %d fds (%d sockets: %d listening, %d from clients, %d to backends, %d other;"
           " %d not sockets), VmRSS %ld KiB\n", what, s->fds, s->sockets, s->listening, s->client,
           s->upstream, s->other_sockets, s->non_sockets, s->rss_kib);
}

/* ---- main ---- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: soak --router BIN --mock BIN --plugin-dir DIR [--requests N]\n"
            "            [--concurrency C] [--seconds S] [--rate R] [--seed X] [--fd-margin N] [--keep]\n");
}

static int parse_args(int argc, char **argv)
{
    static const struct option opts[] = {
        { "requests", required_argument, NULL, 'n' },
        { "concurrency", required_argument, NULL, 'c' },
        { "seconds", required_argument, NULL, 's' },
        { "rate", required_argument, NULL, 'R' },
        { "seed", required_argument, NULL, 'x' },
        { "router", required_argument, NULL, 'r' },
        { "mock", required_argument, NULL, 'm' },
        { "plugin-dir", required_argument, NULL, 'p' },
        { "fd-margin", required_argument, NULL, 'f' },
        { "keep", no_argument, NULL, 'k' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c, seeded = 0;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'n': O.requests = atol(optarg); break;
        case 'c': O.conc = atoi(optarg); break;
        case 's': O.seconds = atof(optarg); break;
        case 'R': O.rate = atof(optarg); break;
        case 'x': O.seed = (unsigned)strtoul(optarg, NULL, 0); seeded = 1; break;
        case 'r': O.router_bin = optarg; break;
        case 'm': O.mock_bin = optarg; break;
        case 'p': O.plugin_dir = optarg; break;
        case 'f': O.fd_margin = atoi(optarg); break;
        case 'k': O.keep = 1; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (optind < argc || O.router_bin == NULL || O.mock_bin == NULL || O.plugin_dir == NULL ||
        O.requests < 1 || O.conc < 1 || O.conc > 4096 || O.seconds <= 0 || O.rate < 0) {
        usage(stderr);
        return -1;
    }
    if (!seeded)
        O.seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    return 0;
}

int main(int argc, char **argv)
{
    struct phase warm, load, recover;
    struct snap base, after;
    struct metrics mt;
    pthread_t chaos;
    unsigned rs;
    int setup_ok = 0;

    memset(&warm, 0, sizeof warm);
    memset(&load, 0, sizeof load);
    memset(&recover, 0, sizeof recover);
    if (parse_args(argc, argv) != 0)
        return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_fatal_signal);
    signal(SIGTERM, on_fatal_signal);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        return 2;
    snprintf(dir, sizeof dir, "%s/soak-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("soak: mkdtemp");
        return 2;
    }
    snprintf(config_path, sizeof config_path, "%s/switchyard.yaml", dir);
    snprintf(router_log, sizeof router_log, "%s/router.log", dir);
    printf("soak: seed %u, %ld requests at concurrency %d (at most %.0f s", O.seed, O.requests,
           O.conc, O.seconds);
    if (O.rate > 0)
        printf(", %.0f requests/s", O.rate);
    printf("), scratch dir %s\n", dir);

    /* ---- start ---- */
    rs = O.seed;
    for (int i = 0; i < NMOCKS; i++) {
        struct mockproc *m = &mocks[i];
        snprintf(m->name, sizeof m->name, "m%d", i);
        m->models = i < 3 ? "main" : "small";
        int ok = -1;
        for (int tries = 0; tries < 5 && ok != 0; tries++) {
            m->port = pick_port(&rs);
            ok = m->port > 0 ? mock_spawn(m) : -1;
        }
        if (ok != 0) {
            printf("soak: cannot start mock %s\n", m->name);
            goto teardown;
        }
    }
    if (router_start() != 0) {
        printf("soak: the router did not start\n");
        print_log_tail(router_log, 20);
        goto teardown;
    }
    use_asan = maps_have(router_pid, "libasan");
    printf("soak: router pid %d on 127.0.0.1:%d; mocks", (int)router_pid, router_port);
    for (int i = 0; i < NMOCKS; i++)
        printf(" %s:%d(%s)", mocks[i].name, mocks[i].port, mocks[i].models);
    printf("%s\n", use_asan ? "; router built with AddressSanitizer" : "");

    /* ---- warm-up and baseline ---- */
    memset(&warm, 0, sizeof warm);
    warm.name = "warm";
    warm.n = O.conc * 8L < 400 ? 400 : O.conc * 8L;
    warm.conc = O.conc;
    warm.out = calloc((size_t)warm.n, sizeof *warm.out);
    if (warm.out == NULL)
        goto teardown;
    long warm_bad = run_phase(&warm);
    if (warm_bad != 0 || warm.router_died) {
        printf("soak: warm-up: %ld of %ld requests failed with every backend well\n", warm_bad,
               warm.n);
        print_log_tail(router_log, 20);
        goto teardown;
    }
    settle_and_snapshot(&base);
    print_snap("baseline after warm-up", &base);
    for (int i = 0; i < NMOCKS; i++) {
        struct buf b;
        http_do(mocks[i].port, "/_mock/reset", "{}", &b, 2000);
        free(b.p);
    }
    setup_ok = 1;

    /* ---- the load, with chaos ---- */
    memset(&load, 0, sizeof load);
    load.name = "load";
    load.n = O.requests;
    load.conc = O.conc;
    load.seconds = O.seconds;
    load.rate = O.rate;
    load.chaos_mix = 1;
    load.out = calloc((size_t)load.n, sizeof *load.out);
    if (load.out == NULL)
        goto teardown;
    atomic_store(&chaos_stop, 0);
    if (pthread_create(&chaos, NULL, chaos_main, NULL) != 0)
        goto teardown;
    run_phase(&load);
    atomic_store(&chaos_stop, 1);
    pthread_join(chaos, NULL);
    printf("soak: load: %ld of %ld requests issued, %ld finished in %.1f s (%.0f requests/s)%s\n",
           load.issued, load.n, load.finished, load.elapsed,
           load.elapsed > 0 ? (double)load.finished / load.elapsed : 0.0,
           load.issued < load.n ? "; stopped by --seconds" : "");
    printf("soak: chaos: %ld ticks, %ld kills, %ld restarts (%ld failed), %ld modes set, "
           "%ld restored, %ld reloads\n", C.ticks, C.kills, C.restarts, C.restart_failures,
           C.modes, C.restores, C.reloads);
    printf("soak: modes:");
    for (int k = 0; k < 10; k++)
        printf(" %s=%ld", mode_names[k], C.by_mode[k]);
    printf("\n");

    /* ---- back to normal: every mock up and well ---- */
    long received = 0, lost = 0;
    int counts_ok = 1, lost_unknown = 0;
    for (int i = 0; i < NMOCKS; i++) {
        struct mockproc *m = &mocks[i];
        for (int tries = 0; !m->alive && tries < 20; tries++)
            if (mock_spawn(m) != 0)
                sleep_ms(250);
        if (!m->alive)
            printf("soak: mock %s could not be restarted on port %d\n", m->name, m->port);
        if (m->alive && m->moded && mock_mode(m, "{}") == 0)
            m->moded = 0;
        long req = 0;
        if (!m->alive || mock_stats(m, &req, NULL) != 0)
            counts_ok = 0;
        received += req + (long)m->lost;
        lost += (long)m->lost;
        lost_unknown += m->lost_unknown;
    }

    /* ---- outcomes ---- */
    sleep_ms(300); /* the router logs requests whose client left as it notices */
    long log_lines = read_access_log(&load);
    long n200 = 0, n200err = 0, naborted = 0, ngaveup = 0, n503 = 0, n504 = 0, nbad = 0;
    long npassed = 0; /* a backend's 500 or 429, passed on */
    long nfallback = 0, nretried = 0, attempts = 0, unaccounted = 0, nsmall = 0;
    long attempts_bad = 0, log_bad = 0, by_kind[4] = { 0 };
    int max_att = 0;
    for (long i = 0; i < load.issued; i++) {
        struct outcome *o = &load.out[i];
        char why[256];
        by_kind[o->kind]++;
        nsmall += o->small;
        if (!o->finished) {
            nbad++;
            continue;
        }
        /* attempts as the client was told, else as the access log says */
        if (o->heads > 0 && o->attempts >= 0)
            attempts += o->attempts;
        else if (o->log_count == 1)
            attempts += o->log_attempts;
        else
            attempts += MAX_ATTEMPTS, unaccounted++;
        if (o->attempts > max_att)
            max_att = o->attempts;
        if (o->heads > 0 && (o->attempts < 0 || o->attempts > MAX_ATTEMPTS ||
                             (o->status == 200 && o->attempts < 1) || !o->id_ok))
            attempts_bad++;
        /* one access-log line per request, agreeing with what the client saw */
        int lok = o->log_count == 1 && !o->log_garbled;
        if (lok && o->heads == 1 && o->log_attempts != o->attempts)
            lok = 0;
        if (lok && (o->aborted || o->gave_up))
            lok = o->log_status == 499 || (o->heads == 1 ? o->log_status == o->status :
                  o->log_status == 200 || o->log_status == 503 || o->log_status == 504 ||
                  o->log_status == 500 || o->log_status == 429);
        else if (lok)
            lok = o->log_status == o->status;
        if (!lok && log_bad++ < 10)
            printf("soak: access log disagrees for soak-load-%u-%ld: %d lines%s, status %d"
                   " attempts %d; the client saw status %d attempts %d%s\n", O.seed, i,
                   o->log_count, o->log_garbled ? " (path garbled)" : "", o->log_status,
                   o->log_attempts, o->status, o->attempts,
                   o->aborted ? " (aborted)" : o->gave_up ? " (gave up)" : "");
        nretried += o->attempts > 1;
        nfallback += o->fallback;
        /* judged again without the body: the verdict was printed already */
        if (o->aborted || o->gave_up) {
            int ok = judge(o, "", why, sizeof why) == NULL;
            naborted += ok && o->aborted;
            ngaveup += ok && o->gave_up;
            nbad += !ok;
            continue;
        }
        if (o->curl_rc != CURLE_OK || o->heads != 1) {
            nbad++;
            continue;
        }
        switch (o->status) {
        case 200:
            if (o->kind != K_PLAIN && o->err_ev && !o->done_ev)
                n200err++;
            else if (o->kind == K_PLAIN || o->done_ev)
                n200++;
            else
                nbad++;
            break;
        case 503: n503++; break;
        case 504: n504++; break;
        case 429:
        case 500: npassed++; break;
        default: nbad++; break;
        }
    }
    printf("soak: requests: %ld plain, %ld streams, %ld streams to hang up on, %ld with a short"
           " client timeout; %ld asked the fallback model directly\n", by_kind[K_PLAIN],
           by_kind[K_STREAM], by_kind[K_ABORT], by_kind[K_GIVEUP], nsmall);
    printf("soak: outcomes: 200=%ld, 200 stream ended by an error event=%ld, hung up mid-stream"
           "=%ld, client timed out=%ld, 503=%ld, 504=%ld, a backend's 500 or 429=%ld, "
           "failed=%ld\n", n200, n200err, naborted, ngaveup, n503, n504, npassed, nbad);
    printf("soak: attempts: %ld declared, %ld answers retried (attempts > 1), max %d, %ld after"
           " a fallback; %ld access-log lines\n", attempts, nretried, max_att, nfallback,
           log_lines);
    check(nbad == 0 && load.finished == load.issued &&
          n200 + n200err + naborted + ngaveup + n503 + n504 + npassed == load.issued,
          "outcomes: %ld requests, each with exactly one allowed outcome (%ld failed)",
          load.issued, nbad);
    check(attempts_bad == 0 && log_bad == 0,
          "attempts: X-Switchyard-Attempts and X-Request-Id on every answer (%ld inconsistent),"
          " one access-log line per request agreeing with it (%ld disagree)", attempts_bad,
          log_bad);
    long bound = attempts;
    printf("soak: backends received %ld inference requests (%ld of them counted before a kill"
           "%s); attempts declared %ld (%ld requests counted at %d, their attempts unknown)\n",
           received, lost, lost_unknown ? ", some kills uncounted" : "", attempts, unaccounted,
           MAX_ATTEMPTS);
    check(counts_ok && received <= bound,
          "no hidden resends: received %ld <= declared attempts %ld", received, bound);

    /* ---- recovery, then the resources ---- */
    sleep_ms(1200); /* cooldowns (max_cooldown 1s) run out */
    /* A backend whose cooldown ended takes one trial request before it
     * is healthy again (others skip it meanwhile): send requests one at a
     * time until every backend is healthy. */
    int wakeups = 0, healthy = 0;
    double wake_start = now();
    while (now() - wake_start < 10 && (healthy = engines_healthy()) < NMOCKS) {
        struct buf b;
        http_do(router_port, "/v1/chat/completions",
                wakeups % 2 ? "{\"model\":\"small\",\"messages\":[]}"
                            : "{\"model\":\"main\",\"messages\":[]}", &b, 5000);
        free(b.p);
        wakeups++;
        sleep_ms(20);
    }
    printf("soak: recovery: %d of %d backends healthy %.1f s after the chaos stopped, after %d"
           " single requests\n", healthy, NMOCKS, now() - wake_start + 1.2, wakeups);
    memset(&recover, 0, sizeof recover);
    recover.name = "recover";
    recover.n = warm.n;
    recover.conc = O.conc;
    recover.out = calloc((size_t)recover.n, sizeof *recover.out);
    if (recover.out == NULL)
        goto teardown;
    long rec_bad = run_phase(&recover);
    long rec_ok = 0;
    for (long i = 0; i < recover.issued; i++)
        rec_ok += recover.out[i].finished && recover.out[i].status == 200;
    check(healthy == NMOCKS && rec_bad == 0 && rec_ok == recover.n,
          "recovery: every backend healthy again, then %ld of %ld requests 200", rec_ok,
          recover.n);

    settle_and_snapshot(&after);
    print_snap("after the load", &after);
    /* Idle connections to backends stay in the workers' caches, up to
     * upstream_max_connections each; everything else must be back. */
    int cache_bound = 2 * upstream_cache() > base.upstream ? 2 * upstream_cache() : base.upstream;
    int fd_ok = after.fds > 0 && after.fds - after.upstream <= base.fds - base.upstream + 2 &&
                after.non_sockets <= base.non_sockets + 2 && after.client <= base.client &&
                after.upstream <= cache_bound && after.fds <= base.fds + O.fd_margin;
    check(fd_ok, "fds: %d after, baseline %d (margin %d); without idle backend connections %d"
          " vs %d; those %d (cache bound %d)", after.fds, base.fds, O.fd_margin,
          after.fds - after.upstream, base.fds - base.upstream, after.upstream, cache_bound);
    long rss_limit = base.rss_kib + 8 * 1024;
    if ((long)(base.rss_kib * 1.2) > rss_limit)
        rss_limit = (long)(base.rss_kib * 1.2);
    if (use_asan)
        printf("soak: rss: %ld KiB after, baseline %ld KiB: not checked under AddressSanitizer\n",
               after.rss_kib, base.rss_kib);
    else
        check(after.rss_kib > 0 && after.rss_kib <= rss_limit,
              "rss: %ld KiB after, baseline %ld KiB (limit %ld KiB)", after.rss_kib,
              base.rss_kib, rss_limit);

    int neng = 0;
    long eng = engines_inflight(&neng), mock_inflight = 0;
    int mt_ok = read_metrics(&mt) == 0;
    for (int i = 0; i < NMOCKS; i++) {
        long req = 0, inf = -1;
        if (mock_stats(&mocks[i], &req, &inf) != 0 || inf < 0)
            mock_inflight = -1000000;
        else
            mock_inflight += inf;
    }
    long sent = warm.issued + load.issued + wakeups + recover.issued;
    if (mt_ok)
        printf("soak: router metrics: %.0f requests (%ld sent), %.0f retries, %.0f fallbacks,"
               " %.0f exhausted\n",
               mt.requests, sent, mt.retries, mt.fallbacks, mt.exhausted);
    /* each request counted once at most in switchyard_requests_total */
    check(mt_ok && mt.inflight_n == NMOCKS && mt.inflight_nonzero == 0 && eng == 0 &&
          neng == NMOCKS && mock_inflight == 0 && mt.requests <= (double)sent,
          "in flight: switchyard_backend_inflight sum %ld over %d backends, /engines %ld,"
          " mocks %ld; switchyard_requests_total %.0f <= %ld sent", mt.inflight_sum,
          mt.inflight_n, eng, mock_inflight, mt.requests, sent);

teardown:
    atomic_store(&chaos_stop, 1);
    if (router_pid > 0 || router_exited != -1) {
        int st = router_exited, code = -1;
        if (router_alive()) {
            int reaped = 0;
            kill(router_pid, SIGTERM);
            for (int i = 0; i < 1000 && !reaped; i++)
                if (!(reaped = waitpid(router_pid, &st, WNOHANG) == router_pid))
                    sleep_ms(10);
            if (!reaped) {
                kill(router_pid, SIGKILL);
                waitpid(router_pid, &st, 0);
                printf("soak: the router did not exit within 10 s of SIGTERM\n");
                st = -1;
            }
            router_pid = 0;
            code = st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
            if (setup_ok)
                check(code == 0, "exit: the router stayed up and exited %d on SIGTERM", code);
        } else if (setup_ok) {
            check(0, "exit: the router died during the run (wait status 0x%x)", router_exited);
        }
    }
    for (int i = 0; i < NMOCKS; i++)
        if (mocks[i].pid > 0)
            mock_kill(&mocks[i], SIGTERM);
    if (!setup_ok)
        nfailc++;
    if (nfailc > 0) {
        printf("soak: router log (%s), last lines:\n", router_log);
        print_log_tail(router_log, 15);
    }
    if (nfailc == 0 && !O.keep) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            printf("soak: could not remove %s\n", dir);
    } else {
        printf("soak: logs and config kept in %s\n", dir);
    }
    printf("soak: %d passed, %d failed\n", npass, nfailc);
    free(warm.out);
    free(load.out);
    free(recover.out);
    curl_global_cleanup();
    return nfailc == 0 ? 0 : 1;
}
