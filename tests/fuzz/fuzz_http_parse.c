/*
 * Fuzz core/http/http_parse.c: request heads and chunked bodies, as a client's
 * connection delivers them.
 *
 * Input: byte 0 picks a split point; the rest is what the client sends.
 * It is read as up to 4 pipelined requests: a head, then, when it says
 * "Transfer-Encoding: chunked", a chunked body (other heads have no body
 * here).  This runs twice: with all the bytes at once, and with the bytes
 * up to the split point first, the rest once the parser asks for more (the
 * buffer realloc'd to its new size, as a connection grows it).  Each buffer
 * is exactly as long as what was received, so ASan sees any read past it.
 *
 * Invariants:
 *   - both runs give the same results, messages, heads, fields, *in and
 *     *out, and leave the same bytes in the buffer;
 *   - a head not DONE leaves the buffer as it was; a refusal has a message;
 *   - a DONE head: head_len <= max_head, nfields <= max_fields, minor 0 or
 *     1, only empty lines before the method; method, target, names and
 *     values are in the head, NUL-terminated at their length, and the only
 *     bytes changed are those NULs; the method a token mapped as the table
 *     says; the target 0x21-0x7E; names tokens followed by ':'; values
 *     without CR, LF, NUL or blanks at either end, with only blanks
 *     between them and the colon and the end of the line;
 *     http_head_field finds the first field of each name (any case), and
 *     http_keep_alive agrees with a reference;
 *   - chunked: *out <= *in, the decoded body at most max_body, MORE only
 *     with every byte consumed; and against a plain line-by-line decoder of
 *     the whole input: DONE exactly when it says DONE, with the same body
 *     and end; MORE only when it wants more; a refusal when it refuses.
 */
#include <string.h>

#include "fuzz.h"
#include "http_parse.h"

#define MAX_HEAD 1024
#define MAX_FIELDS 8
#define MAX_BODY 512
#define MAX_REQUESTS 4
#define LINE_MAX_BYTES 8192

/* What a run saw, to compare the two runs. */
struct step {
    int chunked; /* 0: a head; 1: a chunked body */
    enum http_parse_result r;
    const char *why;
    struct http_head h;
    struct http_field f[MAX_FIELDS];
    size_t in, out;
};

struct run {
    char *buf;
    size_t avail;
    struct step steps[2 * MAX_REQUESTS];
    size_t nsteps;
};

static int ref_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int same_name(const char *a, const char *b)
{
    while (*a && lower((unsigned char)*a) == lower((unsigned char)*b))
        a++, b++;
    return *a == *b;
}

/* Does the comma list hold `word` (blanks around items, any case)? */
static int ref_lists(const char *list, const char *word)
{
    size_t wl = strlen(word);
    for (const char *p = list;;) {
        size_t len = strcspn(p, ",");
        const char *b = p, *e = p + len;
        while (b < e && (*b == ' ' || *b == '\t'))
            b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - b) == wl) {
            size_t i = 0;
            while (i < wl && lower((unsigned char)b[i]) == word[i])
                i++;
            if (i == wl)
                return 1;
        }
        if (!p[len])
            return 0;
        p += len + 1;
    }
}

/* A DONE head at buf (orig: the bytes as received). */
static void check_head(const char *buf, const char *orig, size_t len,
                       const struct http_head *h, const struct http_field *f)
{
    static const char *known[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"};
    size_t hl = h->head_len, nuls = 0;
    const char *m = buf + h->method_off, *t = buf + h->target;

    FUZZ_CHECK(hl <= len && hl <= MAX_HEAD, "head_len %zu of %zu", hl, len);
    FUZZ_CHECK(hl >= 2 && buf[hl - 1] == '\n', "head does not end in LF");
    FUZZ_CHECK(h->minor == 0 || h->minor == 1, "minor %d", h->minor);
    FUZZ_CHECK(h->nfields <= MAX_FIELDS, "%zu fields", h->nfields);
    for (size_t i = 0; i < h->method_off; i++)
        FUZZ_CHECK(buf[i] == '\r' || buf[i] == '\n', "byte %zu before the method", i);

    /* method SP target SP HTTP/1.x */
    size_t ml = strnlen(m, hl - h->method_off);
    FUZZ_CHECK(ml > 0 && h->method_off + ml < hl, "method not NUL-terminated in the head");
    for (size_t i = 0; i < ml; i++)
        FUZZ_CHECK(ref_tchar((unsigned char)m[i]), "method byte 0x%02x", (unsigned char)m[i]);
    enum http_method want = HTTP_METHOD_OTHER;
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
        if (strcmp(m, known[k]) == 0)
            want = (enum http_method)k;
    FUZZ_CHECK(h->method == want, "method '%s' read as %d", m, (int)h->method);
    FUZZ_CHECK(h->target == h->method_off + ml + 1 && orig[h->target - 1] == ' ',
               "target at %u", h->target);
    FUZZ_CHECK(h->target_len > 0 && h->target + h->target_len < hl && t[h->target_len] == '\0' &&
                   strlen(t) == h->target_len,
               "target not NUL-terminated at its length");
    for (size_t i = 0; i < h->target_len; i++)
        FUZZ_CHECK(t[i] > 0x20 && t[i] < 0x7f, "target byte 0x%02x", (unsigned char)t[i]);
    const char *v = orig + h->target + h->target_len;
    FUZZ_CHECK(memcmp(v, " HTTP/1.", 8) == 0 && v[8] == '0' + h->minor, "version");
    nuls += 2;

    for (size_t k = 0; k < h->nfields; k++) {
        const char *name = buf + f[k].name, *val = buf + f[k].value;
        FUZZ_CHECK(f[k].name > h->target && f[k].name_len > 0 &&
                       f[k].name + f[k].name_len < f[k].value &&
                       f[k].value + f[k].value_len < hl,
                   "field %zu offsets", k);
        FUZZ_CHECK(orig[f[k].name - 1] == '\n', "field %zu does not start a line", k);
        FUZZ_CHECK(strlen(name) == f[k].name_len && orig[f[k].name + f[k].name_len] == ':',
                   "field %zu name", k);
        for (size_t i = 0; i < f[k].name_len; i++)
            FUZZ_CHECK(ref_tchar((unsigned char)name[i]), "name byte 0x%02x",
                       (unsigned char)name[i]);
        FUZZ_CHECK(strlen(val) == f[k].value_len, "field %zu value length", k);
        FUZZ_CHECK(strpbrk(val, "\r\n") == NULL, "CR or LF in a value");
        for (size_t i = 0; i < f[k].value_len; i++)
            FUZZ_CHECK((unsigned char)val[i] >= 0x20 ? val[i] != 0x7f : val[i] == '\t',
                       "value byte 0x%02x", (unsigned char)val[i]);
        FUZZ_CHECK(f[k].value_len == 0 || (val[0] != ' ' && val[0] != '\t' &&
                                           val[f[k].value_len - 1] != ' ' &&
                                           val[f[k].value_len - 1] != '\t'),
                   "value not trimmed");
        for (size_t i = f[k].name + f[k].name_len + 1; i < f[k].value; i++)
            FUZZ_CHECK(orig[i] == ' ' || orig[i] == '\t', "byte between colon and value");
        size_t e = f[k].value + f[k].value_len;
        while (orig[e] == ' ' || orig[e] == '\t')
            e++;
        FUZZ_CHECK(orig[e] == '\n' || (orig[e] == '\r' && orig[e + 1] == '\n'),
                   "value not followed by the end of its line");
        nuls += 2;

        const char *first = NULL;
        for (size_t j = 0; j < h->nfields && first == NULL; j++)
            if (same_name(buf + f[j].name, name))
                first = buf + f[j].value;
        FUZZ_CHECK(http_head_field(buf, f, h->nfields, name) == first,
                   "http_head_field('%s') is not the first of its name", name);
    }
    /* the only bytes changed: the NULs */
    for (size_t i = 0; i < hl; i++)
        if (buf[i] != orig[i]) {
            FUZZ_CHECK(buf[i] == '\0', "byte %zu changed to 0x%02x", i, (unsigned char)buf[i]);
            FUZZ_CHECK(nuls-- > 0, "more NULs written than strings");
        }
    FUZZ_CHECK(memcmp(buf + hl, orig + hl, len - hl) == 0, "bytes after the head changed");

    const char *conn = http_head_field(buf, f, h->nfields, "Connection");
    int keep = conn == NULL ? h->minor == 1
                            : !ref_lists(conn, "close") &&
                                  (h->minor == 1 || ref_lists(conn, "keep-alive"));
    FUZZ_CHECK(http_keep_alive(h->minor, conn) == keep, "keep-alive for 1.%d, '%s'", h->minor,
               conn ? conn : "(none)");
}

/* A plain reference: a chunked body, whole, line by line.  *end: where it
 * ends; body[0, *blen) the data. */
static enum http_parse_result ref_chunked(const char *p, size_t n, char *body, size_t *blen,
                                          size_t *end)
{
    size_t pos = 0, total = 0;

    for (;;) {
        const char *lf = memchr(p + pos, '\n', n - pos);
        if (lf == NULL)
            return HTTP_PARSE_MORE;
        size_t le = (size_t)(lf - p), ce = le, d = pos, size = 0;
        if (ce > pos && p[ce - 1] == '\r')
            ce--;
        if (ce - pos > LINE_MAX_BYTES)
            return HTTP_PARSE_TOO_LARGE;
        for (; d < ce && strchr("0123456789abcdefABCDEF", p[d]) && p[d]; d++) {
            if (d - pos == 16 || size >> 59)
                return HTTP_PARSE_BAD;
            size = size * 16 + (size_t)(p[d] <= '9' ? p[d] - '0' : (p[d] | 0x20) - 'a' + 10);
        }
        if (d == pos || (d < ce && p[d] != ';'))
            return HTTP_PARSE_BAD;
        for (; d < ce; d++)
            if (p[d] == '\0' || p[d] == '\r')
                return HTTP_PARSE_BAD;
        if (size > MAX_BODY - total)
            return HTTP_PARSE_TOO_LARGE;
        pos = le + 1;
        if (size == 0)
            break;
        if (n - pos < size)
            return HTTP_PARSE_MORE;
        memcpy(body + total, p + pos, size);
        total += size;
        pos += size;
        if (pos < n && p[pos] == '\r')
            pos++;
        if (pos == n)
            return HTTP_PARSE_MORE;
        if (p[pos++] != '\n')
            return HTTP_PARSE_BAD;
    }
    /* trailer lines, then the blank line */
    for (size_t start = pos;;) {
        const char *lf = memchr(p + pos, '\n', n - pos);
        if (lf == NULL)
            return n - start > LINE_MAX_BYTES ? HTTP_PARSE_TOO_LARGE : HTTP_PARSE_MORE;
        size_t le = (size_t)(lf - p), ce = le, d = pos;
        if (le + 1 - start > LINE_MAX_BYTES)
            return HTTP_PARSE_TOO_LARGE;
        if (ce > pos && p[ce - 1] == '\r')
            ce--;
        if (ce == pos) {
            *blen = total;
            *end = le + 1;
            return HTTP_PARSE_DONE;
        }
        while (d < ce && ref_tchar((unsigned char)p[d]))
            d++;
        if (d == pos || d == ce || p[d] != ':')
            return HTTP_PARSE_BAD;
        for (d++; d < ce; d++)
            if (!((unsigned char)p[d] >= 0x20 ? p[d] != 0x7f : p[d] == '\t'))
                return HTTP_PARSE_BAD;
        pos = le + 1;
    }
}

static void check_chunked(const char *orig, size_t n, size_t start, const char *buf,
                          const struct step *s)
{
    static char body[MAX_BODY];
    size_t blen = 0, end = 0;
    enum http_parse_result want = ref_chunked(orig + start, n - start, body, &blen, &end);

    FUZZ_CHECK((s->r == HTTP_PARSE_DONE) == (want == HTTP_PARSE_DONE),
               "chunked: %d, the reference %d", (int)s->r, (int)want);
    if (want == HTTP_PARSE_DONE)
        FUZZ_CHECK(s->in == start + end && s->out == start + blen &&
                       memcmp(buf + start, body, blen) == 0,
                   "chunked: a different body or end than the reference's");
    if (s->r == HTTP_PARSE_MORE)
        FUZZ_CHECK(want == HTTP_PARSE_MORE, "chunked: MORE, the reference %d", (int)want);
    if (want == HTTP_PARSE_BAD || want == HTTP_PARSE_TOO_LARGE)
        FUZZ_CHECK(s->r == HTTP_PARSE_BAD || s->r == HTTP_PARSE_TOO_LARGE,
                   "chunked: %d, the reference refuses (%d)", (int)s->r, (int)want);
}

/* Bytes [0, split) arrive first; the rest when the parser asks for more. */
static void grow(struct run *run, const char *data, size_t n)
{
    char *b = realloc(run->buf, n ? n : 1);
    FUZZ_CHECK(b != NULL, "out of memory");
    memcpy(b + run->avail, data + run->avail, n - run->avail);
    run->buf = b;
    run->avail = n;
}

static void run_requests(struct run *run, const char *data, size_t n, size_t split)
{
    size_t off = 0;

    run->buf = malloc(split ? split : 1);
    FUZZ_CHECK(run->buf != NULL, "out of memory");
    memcpy(run->buf, data, split);
    run->avail = split;
    run->nsteps = 0;
    for (int req = 0; req < MAX_REQUESTS; req++) {
        struct step *s = &run->steps[run->nsteps++];
        size_t scanned = 0;

        memset(s, 0, sizeof *s);
        for (;;) {
            FUZZ_CHECK(memcmp(run->buf + off, data + off, run->avail - off) == 0,
                       "bytes of the next request changed");
            s->r = http_parse_head(run->buf + off, run->avail - off, MAX_HEAD, &s->h, s->f,
                                   MAX_FIELDS, &scanned, &s->why);
            FUZZ_CHECK(scanned <= run->avail - off, "scanned %zu past %zu", scanned,
                       run->avail - off);
            if (s->r != HTTP_PARSE_MORE || run->avail == n)
                break;
            grow(run, data, n);
        }
        if (s->r != HTTP_PARSE_DONE) {
            FUZZ_CHECK(memcmp(run->buf + off, data + off, run->avail - off) == 0,
                       "buffer changed by a head not DONE (%d)", (int)s->r);
            FUZZ_CHECK(s->r == HTTP_PARSE_MORE || (s->why != NULL && *s->why),
                       "refusal %d without a message", (int)s->r);
            FUZZ_CHECK(s->r != HTTP_PARSE_MORE || run->avail - off <= MAX_HEAD,
                       "MORE past max_head");
            return;
        }
        check_head(run->buf + off, data + off, run->avail - off, &s->h, s->f);

        const char *te = http_head_field(run->buf + off, s->f, s->h.nfields, "Transfer-Encoding");
        off += s->h.head_len;
        if (te == NULL || !same_name(te, "chunked"))
            continue;

        struct http_chunked c;
        memset(&c, 0, sizeof c);
        s = &run->steps[run->nsteps++];
        memset(s, 0, sizeof *s);
        s->chunked = 1;
        s->in = s->out = off;
        for (;;) {
            size_t before = s->in;
            s->r = http_chunked_decode(&c, run->buf, &s->in, run->avail, &s->out, MAX_BODY,
                                       &s->why);
            FUZZ_CHECK(s->out <= s->in && s->in >= before && s->in <= run->avail,
                       "chunked: in %zu, out %zu, of %zu", s->in, s->out, run->avail);
            FUZZ_CHECK(s->out - off <= MAX_BODY, "chunked: %zu bytes decoded", s->out - off);
            FUZZ_CHECK(s->r != HTTP_PARSE_MORE || s->in == run->avail, "chunked: MORE at %zu",
                       s->in);
            FUZZ_CHECK(s->r == HTTP_PARSE_MORE || s->r == HTTP_PARSE_DONE ||
                           (s->why != NULL && *s->why),
                       "chunked: refusal %d without a message", (int)s->r);
            if (s->r != HTTP_PARSE_MORE || run->avail == n)
                break;
            grow(run, data, n);
        }
        if (split == n)
            check_chunked(data, n, off, run->buf, s);
        if (s->r != HTTP_PARSE_DONE)
            return;
        off = s->in;
    }
}

static void same_steps(const struct run *a, const struct run *b, size_t n)
{
    FUZZ_CHECK(a->nsteps == b->nsteps, "%zu steps whole, %zu split", a->nsteps, b->nsteps);
    for (size_t i = 0; i < a->nsteps; i++) {
        const struct step *x = &a->steps[i], *y = &b->steps[i];
        FUZZ_CHECK(x->r == y->r, "step %zu: %d whole, %d split", i, (int)x->r, (int)y->r);
        FUZZ_CHECK((x->why == NULL) == (y->why == NULL) &&
                       (x->why == NULL || strcmp(x->why, y->why) == 0),
                   "step %zu: '%s' whole, '%s' split", i, x->why ? x->why : "",
                   y->why ? y->why : "");
        FUZZ_CHECK(x->in == y->in && x->out == y->out, "step %zu: in/out differ", i);
        if (x->chunked || x->r != HTTP_PARSE_DONE)
            continue;
        FUZZ_CHECK(x->h.method == y->h.method && x->h.method_off == y->h.method_off &&
                       x->h.target == y->h.target && x->h.target_len == y->h.target_len &&
                       x->h.minor == y->h.minor && x->h.nfields == y->h.nfields &&
                       x->h.head_len == y->h.head_len,
                   "step %zu: heads differ", i);
        FUZZ_CHECK(memcmp(x->f, y->f, x->h.nfields * sizeof x->f[0]) == 0,
                   "step %zu: fields differ", i);
    }
    /* the split run stops without the rest when it had all it needed */
    size_t common = a->avail < b->avail ? a->avail : b->avail;
    FUZZ_CHECK(memcmp(a->buf, b->buf, common) == 0, "the buffers differ (%zu and %zu bytes of %zu)",
               a->avail, b->avail, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct run whole, split;

    if (size == 0)
        return 0;
    const char *in = (const char *)data + 1;
    size_t n = size - 1, at = n * data[0] / 255;

    run_requests(&whole, in, n, n);
    run_requests(&split, in, n, at);
    same_steps(&whole, &split, n);
    free(whole.buf);
    free(split.buf);
    return 0;
}
