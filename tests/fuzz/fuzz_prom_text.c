/*
 * Fuzz the Prometheus text parser (core/runtime/prom_text.c) the router
 * scrapes backends' /metrics with: the input is a /metrics body from the
 * network, read under small limits so that every bound is reached.
 *
 * Invariants: the input read whole, cut in two where its first byte says,
 * and (when short) a byte at a time gives the same samples and the same
 * result and message; an error says "line N: why" with N a line of the
 * input; every sample keeps to the grammar (names, label names, no label
 * twice, no more labels than the limit, a timestamp only when it has
 * one); the samples written back as text read back as themselves, so
 * values are unescaped exactly; a callback that stops after k samples
 * gets the first k and PROM_STOPPED.  ASan and LeakSanitizer check every
 * path frees what it took.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../../core/runtime/prom_text.h"
#include "fuzz.h"

static const struct prom_limits lim = { 256, 8, 4096 };

/* Samples as bytes, copied from the borrowed ones, to compare runs. */
struct run {
    unsigned char *b;
    size_t len, cap, n;
    size_t stop_after; /* 0: never */
    const struct prom_limits *lim;
};

static void put(struct run *r, const void *d, size_t n)
{
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap : 1024;
        while (cap < r->len + n)
            cap *= 2;
        r->b = realloc(r->b, cap);
        FUZZ_CHECK(r->b != NULL, "out of memory");
        r->cap = cap;
    }
    memcpy(r->b + r->len, d, n);
    r->len += n;
}

static void put_bytes(struct run *r, const char *s, size_t n)
{
    put(r, &n, sizeof n);
    put(r, s, n);
}

static int name_ok(const char *s, size_t n, int colon)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                    (colon && c == ':');
        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return 0;
    }
    return 1;
}

static int take(void *arg, const struct prom_sample *s)
{
    struct run *r = arg;
    unsigned char nan_mark = 0;

    FUZZ_CHECK(name_ok(s->name, s->name_len, 1), "metric name '%.*s'", (int)s->name_len,
               s->name);
    FUZZ_CHECK(s->name_len <= r->lim->max_line, "a name of %zu bytes", s->name_len);
    FUZZ_CHECK(s->nlabels <= r->lim->max_labels, "%zu labels", s->nlabels);
    FUZZ_CHECK(s->nlabels == 0 || s->labels != NULL, "labels without their array");
    FUZZ_CHECK(s->has_timestamp == 0 || s->has_timestamp == 1, "has_timestamp %d",
               s->has_timestamp);
    FUZZ_CHECK(s->has_timestamp || s->timestamp_ms == 0, "a timestamp that is not there");
    put_bytes(r, s->name, s->name_len);
    put(r, &s->nlabels, sizeof s->nlabels);
    for (size_t i = 0; i < s->nlabels; i++) {
        const struct prom_label *l = &s->labels[i];
        FUZZ_CHECK(name_ok(l->name, l->name_len, 0), "label name '%.*s'", (int)l->name_len,
                   l->name);
        FUZZ_CHECK(l->value_len <= r->lim->max_line, "a value of %zu bytes", l->value_len);
        FUZZ_CHECK(memchr(l->value, '\0', l->value_len) == NULL, "a NUL in a label value");
        for (size_t j = 0; j < i; j++)
            FUZZ_CHECK(l->name_len != s->labels[j].name_len ||
                           memcmp(l->name, s->labels[j].name, l->name_len) != 0,
                       "label '%.*s' twice", (int)l->name_len, l->name);
        put_bytes(r, l->name, l->name_len);
        put_bytes(r, l->value, l->value_len);
    }
    /* NaNs compare as one: their payload is strtod's business */
    if (isnan(s->value)) {
        nan_mark = 1;
        put(r, &nan_mark, 1);
    } else {
        put(r, &nan_mark, 1);
        put(r, &s->value, sizeof s->value);
    }
    put(r, &s->has_timestamp, sizeof s->has_timestamp);
    put(r, &s->timestamp_ms, sizeof s->timestamp_ms);
    r->n++;
    return r->stop_after != 0 && r->n >= r->stop_after;
}

struct result {
    int rc;
    char err[256];
    struct run run;
};

/* The input fed in pieces ending at cuts[] (offsets), then finished. */
static void parse(const char *d, size_t size, const struct prom_limits *l, const size_t *cuts,
                  size_t ncuts, size_t stop_after, struct result *out)
{
    struct prom_parser *p;
    size_t at = 0;
    int rc = PROM_OK;

    memset(out, 0, sizeof *out);
    out->run.stop_after = stop_after;
    out->run.lim = l;
    p = prom_parser_new(l, take, &out->run);
    FUZZ_CHECK(p != NULL, "out of memory");
    for (size_t i = 0; i <= ncuts && rc == PROM_OK; i++) {
        size_t end = i < ncuts ? cuts[i] : size;
        rc = prom_feed(p, d + at, end - at);
        FUZZ_CHECK(rc == PROM_OK || rc == PROM_ERROR || rc == PROM_STOPPED, "feed gave %d", rc);
        at = end;
    }
    if (rc == PROM_OK)
        rc = prom_finish(p);
    FUZZ_CHECK(rc == PROM_OK || rc == PROM_ERROR || rc == PROM_STOPPED, "finish gave %d", rc);
    FUZZ_CHECK((rc == PROM_ERROR) == (prom_error(p)[0] != '\0'), "result %d with error '%s'", rc,
               prom_error(p));
    /* final: once more gives the same */
    FUZZ_CHECK(rc == PROM_OK || prom_feed(p, "a 1\n", 4) == rc, "a final result %d changed", rc);
    out->rc = rc;
    snprintf(out->err, sizeof out->err, "%s", prom_error(p));
    prom_parser_free(p);
}

static int bytes_eq(const struct run *a, const struct run *b, size_t len)
{
    return len == 0 || memcmp(a->b, b->b, len) == 0;
}

static void same(const struct result *a, const struct result *b, const char *how)
{
    FUZZ_CHECK(a->rc == b->rc, "%s: result %d, whole %d", how, b->rc, a->rc);
    FUZZ_CHECK(strcmp(a->err, b->err) == 0, "%s: '%s', whole '%s'", how, b->err, a->err);
    FUZZ_CHECK(a->run.n == b->run.n, "%s: %zu samples, whole %zu", how, b->run.n, a->run.n);
    FUZZ_CHECK(a->run.len == b->run.len && bytes_eq(&a->run, &b->run, a->run.len),
               "%s: other samples", how);
}

/* ---- the samples written back as text ---- */

struct text {
    char *s;
    size_t len, cap;
};

static void tput(struct text *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 1024;
        while (cap < t->len + n + 1)
            cap *= 2;
        t->s = realloc(t->s, cap);
        FUZZ_CHECK(t->s != NULL, "out of memory");
        t->cap = cap;
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
}

static int write_back(void *arg, const struct prom_sample *s)
{
    struct text *t = arg;
    char num[64];
    int n;

    tput(t, s->name, s->name_len);
    for (size_t i = 0; i < s->nlabels; i++) {
        const struct prom_label *l = &s->labels[i];
        tput(t, i == 0 ? "{" : ",", 1);
        tput(t, l->name, l->name_len);
        tput(t, "=\"", 2);
        for (size_t j = 0; j < l->value_len; j++) {
            char c = l->value[j];
            if (c == '\n')
                tput(t, "\\n", 2);
            else if (c == '"' || c == '\\') {
                tput(t, "\\", 1);
                tput(t, &c, 1);
            } else
                tput(t, &c, 1);
        }
        tput(t, "\"", 1);
    }
    if (s->nlabels > 0)
        tput(t, "}", 1);
    if (isnan(s->value))
        n = snprintf(num, sizeof num, " NaN");
    else if (isinf(s->value))
        n = snprintf(num, sizeof num, s->value > 0 ? " +Inf" : " -Inf");
    else
        n = snprintf(num, sizeof num, " %.17g", s->value);
    tput(t, num, (size_t)n);
    if (s->has_timestamp) {
        n = snprintf(num, sizeof num, " %lld", s->timestamp_ms);
        tput(t, num, (size_t)n);
    }
    tput(t, "\n", 1);
    return 0;
}

static size_t lines_in(const uint8_t *d, size_t size)
{
    size_t n = 1;

    for (size_t i = 0; i < size; i++)
        n += d[i] == '\n';
    return n;
}

/* A reader of some series only (prom_parser_want): those of odd length. */
struct counts {
    size_t all, odd;
};

static int count_take(void *arg, const struct prom_sample *s)
{
    struct counts *c = arg;
    c->all++;
    c->odd += s->name_len % 2;
    return 0;
}

static int odd_names(void *arg, const char *name, size_t len)
{
    (void)arg;
    (void)name;
    return len % 2;
}

static int count_run(const char *d, size_t size, int filtered, struct counts *c)
{
    struct prom_parser *p = prom_parser_new(&lim, count_take, c);
    int rc;

    memset(c, 0, sizeof *c);
    if (p == NULL)
        return -2;
    if (filtered)
        prom_parser_want(p, odd_names);
    rc = prom_feed(p, d, size);
    if (rc == PROM_OK)
        rc = prom_finish(p);
    /* and once more after a reset: the same */
    struct counts again = { 0, 0 };
    prom_parser_reset(p);
    memcpy(&again, c, sizeof again);
    memset(c, 0, sizeof *c);
    int rc2 = prom_feed(p, d, size);
    if (rc2 == PROM_OK)
        rc2 = prom_finish(p);
    FUZZ_CHECK(rc2 == rc && c->all == again.all && c->odd == again.odd, "after a reset");
    /* a byte at a time (no line whole in a read: every line copied and
     * parsed) reads as the whole input (lines passed over where they lie) */
    if (size <= 512) {
        struct counts bytes = { 0, 0 };
        struct counts keep = *c;
        int rc3 = PROM_OK;
        prom_parser_reset(p);
        memset(c, 0, sizeof *c);
        for (size_t i = 0; i < size && rc3 == PROM_OK; i++)
            rc3 = prom_feed(p, d + i, 1);
        if (rc3 == PROM_OK)
            rc3 = prom_finish(p);
        bytes = *c;
        *c = keep;
        FUZZ_CHECK(rc3 == rc && bytes.all == keep.all && bytes.odd == keep.odd,
                   "a byte at a time: %d with %zu samples, whole %d with %zu", rc3, bytes.all, rc,
                   keep.all);
    }
    prom_parser_free(p);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *d = (const char *)data;
    struct result whole, other;
    size_t cut = size > 0 ? (size_t)data[0] * size / 255 : 0;
    size_t stop = size > 1 ? 1 + data[1] % 8 : 1;

    parse(d, size, &lim, NULL, 0, 0, &whole);
    if (whole.rc == PROM_ERROR) {
        unsigned long line = 0;
        char *end;
        FUZZ_CHECK(strncmp(whole.err, "line ", 5) == 0, "error '%s'", whole.err);
        line = strtoul(whole.err + 5, &end, 10);
        FUZZ_CHECK(line >= 1 && line <= lines_in(data, size) && strncmp(end, ": ", 2) == 0 &&
                       end[2] != '\0',
                   "error '%s' in %zu lines", whole.err, lines_in(data, size));
    } else {
        FUZZ_CHECK(whole.rc == PROM_OK, "no callback stopped, yet %d", whole.rc);
    }

    parse(d, size, &lim, &cut, 1, 0, &other);
    same(&whole, &other, "cut in two");
    free(other.run.b);
    if (size <= 512) {
        size_t cuts[512];
        for (size_t i = 0; i < size; i++)
            cuts[i] = i + 1;
        parse(d, size, &lim, cuts, size, 0, &other);
        same(&whole, &other, "a byte at a time");
        free(other.run.b);
    }

    /* stopped after `stop` samples: the first of them */
    parse(d, size, &lim, &cut, 1, stop, &other);
    if (whole.run.n >= stop) {
        FUZZ_CHECK(other.rc == PROM_STOPPED && other.run.n == stop, "stopped with %d after %zu",
                   other.rc, other.run.n);
        FUZZ_CHECK(other.run.len <= whole.run.len &&
                       bytes_eq(&other.run, &whole.run, other.run.len),
                   "stopped: other samples");
    } else {
        same(&whole, &other, "with a stop never reached");
    }
    free(other.run.b);

    /* written back, read back: the same samples (an error stops both) */
    {
        struct text t = { 0 };
        struct prom_limits wide = lim;
        char err[256];
        int rc;

        wide.max_line = lim.max_line + 64; /* a value or timestamp may grow */
        wide.max_bytes = 0;
        rc = prom_parse(d, size, &lim, write_back, &t, err, sizeof err);
        FUZZ_CHECK(rc == whole.rc, "written back: %d, whole %d", rc, whole.rc);
        parse(t.s != NULL ? t.s : "", t.len, &wide, NULL, 0, 0, &other);
        FUZZ_CHECK(other.rc == PROM_OK, "written back, '%s' for '%.*s'", other.err, (int)t.len,
                   t.s != NULL ? t.s : "");
        FUZZ_CHECK(other.run.n == whole.run.n && other.run.len == whole.run.len &&
                       bytes_eq(&other.run, &whole.run, whole.run.len),
                   "written back, read back other samples: '%.*s'", (int)t.len,
                   t.s != NULL ? t.s : "");
        free(other.run.b);
        free(t.s);
    }
    /* a reader of some series: exactly those, wherever the whole input is
     * good (it may also pass input whose only faults are in the others) */
    {
        struct counts all, some;
        int rc_all = count_run(d, size, 0, &all), rc_some = count_run(d, size, 1, &some);
        FUZZ_CHECK(rc_all == whole.rc, "counted: %d, whole %d", rc_all, whole.rc);
        if (rc_all == PROM_OK)
            FUZZ_CHECK(rc_some == PROM_OK && some.all == all.odd,
                       "filtered: %d with %zu samples, %zu wanted", rc_some, some.all, all.odd);
        FUZZ_CHECK(some.all == some.odd, "a sample of a series not wanted");
    }
    free(whole.run.b);
    return 0;
}
