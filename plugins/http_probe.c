/*
 * http_probe: active health checks.  Every `interval` (with jitter, so
 * probes of many backends don't align) each backend gets a request with a
 * `timeout`: GET `path` (default /health), or with `probe: inference` a tiny
 * request of the model's type (chat: max_tokens 1, completion, embeddings,
 * rerank, score, transcription: a form with 0.1 s of silence, vision: a
 * 2x2 image, messages), as vllm_router's static health checks do.  `fall`
 * failures in a row take a backend out, `rise` successes bring it back, so
 * one blip does not flap.
 *
 *   health: [http_probe]
 *   plugin_config:
 *     http_probe: {interval: 5s, timeout: 2s, rise: 2, fall: 2,
 *                  path: /health, probe: health, jitter: 0.1}
 *
 * Everything runs on the control thread (timers and HTTP from the host), so
 * a slow probe never delays a client request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <switchyard/plugin.h>

struct target;

struct http_probe {
    const struct sy_host_api *host;
    double interval, timeout, jitter;
    long long rise, fall;
    const char *path;
    int inference;
    struct target *targets;
    size_t ntargets;
    unsigned long long rng;
};

struct target {
    struct http_probe *hp;
    const sy_backend *backend;
    char *url;        /* what to probe */
    char *body;       /* NULL: GET */
    size_t body_len;
    long long oks, fails; /* in a row */
    int up;           /* as far as this plugin knows */
    double started;
    sy_timer *timer;
    const char *content_type; /* the inference probe's header */
    const char *headers[3]; /* Content-Type for inference probes, the
                               backend's credential: NULL-terminated */
};

static double jittered(struct http_probe *hp, double seconds)
{
    /* xorshift: spread, not secrecy */
    hp->rng ^= hp->rng << 13;
    hp->rng ^= hp->rng >> 7;
    hp->rng ^= hp->rng << 17;
    double unit = (double)(hp->rng % 10000) / 10000.0; /* [0,1) */
    return seconds * (1.0 + hp->jitter * (2.0 * unit - 1.0));
}

/* base + path, without doubling an OpenAI-style "/v1" prefix. */
static char *join_url(const char *base, const char *path)
{
    size_t bl = strlen(base);
    char *out;

    if (bl >= 3 && strcmp(base + bl - 3, "/v1") == 0 && strncmp(path, "/v1/", 4) == 0)
        path += 3;
    out = malloc(bl + strlen(path) + 1);
    if (out != NULL)
        sprintf(out, "%s%s", base, path);
    return out;
}

/* A transcription probe's form: the model, then empty.wav (below). */
#define BOUNDARY "switchyard-probe-5b0d2e7c"
#define WAV_DATA 3200 /* 0.1 s of 16 kHz mono 16-bit silence */
#define WAV_SIZE (44 + WAV_DATA)
#define FORM_END "\r\n--" BOUNDARY "--\r\n"

/* A RIFF/WAVE header for WAV_DATA bytes of PCM, then the silence. */
static void put_wav(unsigned char *w)
{
    static const struct {
        size_t at;
        unsigned long v;
        int bytes;
    } fields[] = {
        { 4, 36 + WAV_DATA, 4 }, /* RIFF chunk size */
        { 16, 16, 4 },           /* fmt chunk size */
        { 20, 1, 2 },            /* PCM */
        { 22, 1, 2 },            /* mono */
        { 24, 16000, 4 },        /* samples a second */
        { 28, 32000, 4 },        /* bytes a second */
        { 32, 2, 2 },            /* bytes a frame */
        { 34, 16, 2 },           /* bits a sample */
        { 40, WAV_DATA, 4 },     /* data chunk size */
    };

    memset(w, 0, WAV_SIZE);
    memcpy(w, "RIFF", 4);
    memcpy(w + 8, "WAVEfmt ", 8);
    memcpy(w + 36, "data", 4);
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        for (int b = 0; b < fields[i].bytes; b++)
            w[fields[i].at + (size_t)b] = (unsigned char)(fields[i].v >> (8 * b));
}

/* The tiny inference request for a model of `type`: `fmt` with the model's
 * name, for a form followed by the WAV and the form's end. */
static int inference_probe(struct target *t, const char *base, const char *model,
                           const char *type)
{
    static const struct {
        const char *type, *path, *content_type, *fmt;
        int wav;
    } kinds[] = {
#define JSON "Content-Type: application/json"
        { "chat", "/v1/chat/completions", JSON,
          "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":1}", 0 },
        { "completion", "/v1/completions", JSON,
          "{\"model\":\"%s\",\"prompt\":\"hi\",\"max_tokens\":1}", 0 },
        { "embeddings", "/v1/embeddings", JSON, "{\"model\":\"%s\",\"input\":\"hi\"}", 0 },
        { "rerank", "/v1/rerank", JSON,
          "{\"model\":\"%s\",\"query\":\"hi\",\"documents\":[\"hi\"]}", 0 },
        { "score", "/v1/score", JSON, "{\"model\":\"%s\",\"text_1\":\"hi\",\"text_2\":\"hi\"}", 0 },
        { "transcription", "/v1/audio/transcriptions",
          "Content-Type: multipart/form-data; boundary=" BOUNDARY,
          "--" BOUNDARY "\r\n"
          "Content-Disposition: form-data; name=\"model\"\r\n\r\n%s\r\n"
          "--" BOUNDARY "\r\n"
          "Content-Disposition: form-data; name=\"file\"; filename=\"empty.wav\"\r\n"
          "Content-Type: audio/wav\r\n\r\n", 1 },
        /* vllm_router's 2x2 PNG */
        { "vision", "/v1/chat/completions", JSON,
          "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":["
          "{\"type\":\"text\",\"text\":\"hi\"},"
          "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,"
          "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAG0lEQVR4nGLinfJq851wJn69udZSvIAAAAD//"
          "yf3BLKCfW8HAAAAAElFTkSuQmCC\"}}]}],\"max_tokens\":1}", 0 },
        { "messages", "/v1/messages", JSON,
          "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":1}", 0 },
#undef JSON
    };
    size_t k = 0;

    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (type != NULL && strcmp(type, kinds[i].type) == 0)
            k = i;
    /* model names come from the config; keep quotes and backslashes out */
    if (strpbrk(model, "\"\\") != NULL)
        return -1;
    int n = snprintf(NULL, 0, kinds[k].fmt, model);
    size_t extra = kinds[k].wav ? WAV_SIZE + sizeof FORM_END - 1 : 0;
    t->body = malloc((size_t)n + extra + 1);
    t->url = join_url(base, kinds[k].path);
    if (t->body == NULL || t->url == NULL)
        return -1;
    snprintf(t->body, (size_t)n + 1, kinds[k].fmt, model);
    if (kinds[k].wav) {
        put_wav((unsigned char *)t->body + n);
        memcpy(t->body + n + WAV_SIZE, FORM_END, sizeof FORM_END);
    }
    t->body_len = (size_t)n + extra;
    t->content_type = kinds[k].content_type;
    return 0;
}

static int read_settings(struct http_probe *hp, const sy_config *cfg, char *err, size_t errlen)
{
    const struct sy_host_api *h = hp->host;
    const char *probe = "health";
    char where[256];
    const char *bad = NULL;

    hp->interval = 5;
    hp->timeout = 2;
    hp->jitter = 0.1;
    hp->rise = 2;
    hp->fall = 2;
    hp->path = "/health";
    if (h->config_seconds(cfg, "interval", &hp->interval) == SY_ERROR || !(hp->interval > 0))
        bad = "interval";
    else if (h->config_seconds(cfg, "timeout", &hp->timeout) == SY_ERROR || !(hp->timeout > 0))
        bad = "timeout";
    else if (h->config_int(cfg, "rise", &hp->rise) == SY_ERROR || hp->rise < 1)
        bad = "rise";
    else if (h->config_int(cfg, "fall", &hp->fall) == SY_ERROR || hp->fall < 1)
        bad = "fall";
    else if (h->config_string(cfg, "path", &hp->path) == SY_ERROR || hp->path[0] != '/')
        bad = "path";
    else if (h->config_string(cfg, "probe", &probe) == SY_ERROR ||
             (strcmp(probe, "health") != 0 && strcmp(probe, "inference") != 0))
        bad = "probe";
    else if (h->config_seconds(cfg, "jitter", &hp->jitter) == SY_ERROR || hp->jitter < 0 ||
             hp->jitter > 0.5)
        bad = "jitter";
    if (bad != NULL) {
        static const char *const want[][2] = {
            { "interval", "seconds > 0, e.g. 5s or 500ms" }, { "timeout", "seconds > 0" },
            { "rise", "a whole number >= 1" }, { "fall", "a whole number >= 1" },
            { "path", "a path starting with /" }, { "probe", "health or inference" },
            { "jitter", "a fraction from 0 to 0.5" },
        };
        const char *what = "";
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
            if (strcmp(want[i][0], bad) == 0)
                what = want[i][1];
        h->config_where(cfg, bad, where, sizeof where);
        snprintf(err, errlen, "%s: plugin_config.http_probe.%s: expected %s", where, bad, what);
        return -1;
    }
    hp->inference = strcmp(probe, "inference") == 0;
    return 0;
}

static void hp_destroy(void *inst)
{
    struct http_probe *hp = inst;

    for (size_t i = 0; i < hp->ntargets; i++) {
        free(hp->targets[i].url);
        free(hp->targets[i].body);
    }
    free(hp->targets);
    free(hp);
}

static int hp_create(const struct sy_host_api *host, const sy_config *cfg, void **inst,
                     char *err, size_t errlen)
{
    struct http_probe *hp;

    if (host->size < offsetof(struct sy_host_api, backend_authorization) +
                         sizeof host->backend_authorization) {
        snprintf(err, errlen, "needs switchyard with plugin ABI 1.1");
        return SY_ERROR;
    }
    hp = calloc(1, sizeof *hp);
    if (hp == NULL)
        return SY_ERROR;
    hp->host = host;
    hp->rng = 0x9E3779B97F4A7C15ull ^ (unsigned long long)(host->now() * 1e6);
    if (read_settings(hp, cfg, err, errlen) != 0)
        goto fail;
    hp->ntargets = host->backend_count(host);
    hp->targets = calloc(hp->ntargets ? hp->ntargets : 1, sizeof *hp->targets);
    if (hp->targets == NULL)
        goto oom;
    for (size_t i = 0; i < hp->ntargets; i++) {
        struct target *t = &hp->targets[i];
        const char *model;
        t->hp = hp;
        t->backend = host->backend_at(host, i);
        t->up = 1;
        model = host->backend_model(t->backend, 0);
        if (hp->inference && model != NULL) {
            if (inference_probe(t, host->backend_url(t->backend), model,
                                host->model_option(host, model, "type")) != 0) {
                snprintf(err, errlen, "cannot build an inference probe for model '%s'", model);
                goto fail;
            }
        } else if ((t->url = join_url(host->backend_url(t->backend), hp->path)) == NULL) {
            goto oom;
        }
        /* a gateway behind a key answers probes only with that key */
        size_t nh = 0;
        if (t->body != NULL)
            t->headers[nh++] = t->content_type;
        if (host->backend_authorization(t->backend) != NULL)
            t->headers[nh++] = host->backend_authorization(t->backend);
        t->headers[nh] = NULL;
    }
    *inst = hp;
    return SY_OK;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    hp_destroy(hp);
    return SY_ERROR;
}

static void probe_now(void *arg);

static void schedule(struct target *t, double seconds)
{
    t->timer = t->hp->host->timer_add(t->hp->host, seconds, probe_now, t);
    if (t->timer == NULL)
        t->hp->host->log(t->hp->host, SY_LOG_ERROR, "backend %s: cannot schedule a probe",
                         t->url);
}

/* ABI 1.2: the host keeps this plugin's own flag per backend. */
static int own_flags(const struct sy_host_api *h)
{
    return h->size >= offsetof(struct sy_host_api, backend_flag) + sizeof h->backend_flag;
}

static void judge(struct target *t, int ok, const char *why)
{
    const struct sy_host_api *h = t->hp->host;

    if (ok) {
        t->fails = 0;
        if (!t->up && ++t->oks >= t->hp->rise) {
            t->up = 1;
            h->backend_set_state(h, t->backend, SY_BACKEND_HEALTHY, 0, why);
        }
    } else {
        t->oks = 0;
        if (t->up && ++t->fails >= t->hp->fall) {
            t->up = 0;
            h->backend_set_state(h, t->backend, SY_BACKEND_UNHEALTHY, 0, why);
        } else if (!t->up && !own_flags(h) &&
                   h->backend_state(t->backend) != SY_BACKEND_UNHEALTHY) {
            /* an ABI 1.1 host: another health plugin let it back in (e.g.
             * passive's trial) while the probes still fail: they have the
             * last word.  With 1.2's own flags nobody else can lift ours. */
            h->backend_set_state(h, t->backend, SY_BACKEND_UNHEALTHY, 0, why);
        }
    }
}

static void probe_done(void *arg, int status, const char *body, size_t len, const char *error)
{
    struct target *t = arg;
    const struct sy_host_api *h = t->hp->host;
    char why[200];

    h->backend_observe_probe(t->backend, h->now() - t->started);
    if (status >= 200 && status < 300) {
        snprintf(why, sizeof why, "probe answered %d", status);
        judge(t, 1, why);
    } else {
        if (status != 0)
            snprintf(why, sizeof why, "probe %s answered %d", t->url, status);
        else
            snprintf(why, sizeof why, "probe %s failed: %s", t->url, error ? error : "?");
        judge(t, 0, why);
    }
    schedule(t, jittered(t->hp, t->hp->interval));
}

static void probe_now(void *arg)
{
    struct target *t = arg;
    const struct sy_host_api *h = t->hp->host;

    t->timer = NULL;
    t->started = h->now();
    if (h->http_request(h, t->url, t->body, t->body_len, t->headers,
                        t->hp->timeout, probe_done, t) != SY_OK) {
        judge(t, 0, "could not start a probe");
        schedule(t, jittered(t->hp, t->hp->interval));
    }
}

static int hp_start(void *inst)
{
    struct http_probe *hp = inst;

    /* A reload carries the backends' states over (after create()): start
     * from them, or a backend that was out would never be brought back. */
    for (size_t i = 0; i < hp->ntargets; i++)
        hp->targets[i].up = own_flags(hp->host)
            ? !hp->host->backend_flag(hp->host, hp->targets[i].backend)
            : hp->host->backend_state(hp->targets[i].backend) != SY_BACKEND_UNHEALTHY;
    /* first probes spread over one interval */
    for (size_t i = 0; i < hp->ntargets; i++)
        schedule(&hp->targets[i], hp->interval * (double)i / (double)(hp->ntargets + 1) * hp->jitter);
    return SY_OK;
}

SY_EXPORT const struct sy_plugin sy_plugin_v1 = {
    SY_PLUGIN_HEADER,
    .kind = SY_KIND_HEALTH,
    .name = "http_probe",
    .version = "1.0",
    .description = "active HTTP health checks with rise/fall thresholds",
    .create = hp_create,
    .destroy = hp_destroy,
    .start = hp_start,
};
