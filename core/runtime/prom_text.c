#include "prom_text.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_LINE (64 * 1024)
#define DEFAULT_MAX_LABELS 64
#define DEFAULT_MAX_BYTES (16 * 1024 * 1024)
#define LINE_INITIAL 256
#define LABELS_INITIAL 8

/* The names seen in TYPE lines, for the duplicate check: bounded, so a
 * hostile input cannot grow it; names beyond it are not checked. */
#define TYPE_NAMES_MAX 4096
#define TYPE_SLOTS 8192 /* a power of two, twice the names: short probes */
#define TYPE_BYTES_MAX (256 * 1024)

#define QUOTE_MAX 40 /* bytes of input an error message shows */

struct type_slot {
    uint32_t off, len; /* in types */
    uint32_t gen;      /* the input it was filled in: another is empty */
};

struct prom_parser {
    struct prom_limits lim;
    prom_sample_cb cb;
    prom_want_cb want;  /* NULL: every series */
    void *arg;
    int status; /* PROM_OK until an error or a stop, then final */
    int finished;
    size_t lineno; /* of the line being read, from 1 */
    size_t total;  /* bytes fed so far */
    char *line;    /* the line being read, without its '\n' */
    size_t len, cap;
    struct prom_label *labels;
    size_t labcap;
    char *types; /* TYPE names back to back, found through slots */
    size_t types_len, types_cap, ntypes;
    struct type_slot *slots;
    uint32_t gen;  /* this input's number (prom_parser_reset counts them) */
    int line_nul;  /* the line being read has a NUL byte */
    char err[256];
};

static int fail(struct prom_parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int fail(struct prom_parser *p, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(p->err, sizeof p->err, "line %zu: ", p->lineno);

    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof p->err)
        vsnprintf(p->err + n, sizeof p->err - (size_t)n, fmt, ap);
    va_end(ap);
    p->status = PROM_ERROR;
    return PROM_ERROR;
}

/* Input shown in an error: at most QUOTE_MAX bytes, in double quotes,
 * anything unprintable as \xNN, so the message stays one line of text. */
static const char *quote(char *out, size_t outlen, const char *s, size_t n)
{
    size_t o = 0;

    out[o++] = '"';
    for (size_t i = 0; i < n && i < QUOTE_MAX && o + 6 < outlen; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
    }
    if (n > QUOTE_MAX && o + 5 < outlen) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}

#define QBUF (QUOTE_MAX * 4 + 8)

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha_(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

/* What may start (1) and continue (2) a metric name: [a-zA-Z_:][a-zA-Z0-9_:]*,
 * as a table, for every line's name is read. */
static unsigned char name_chars[256];
static pthread_once_t name_chars_once = PTHREAD_ONCE_INIT;

static void fill_name_chars(void)
{
    for (int c = 0; c < 256; c++)
        name_chars[c] = (unsigned char)((is_alpha_((char)c) || c == ':' ? 1 : 0) |
                                        (is_alpha_((char)c) || is_digit((char)c) || c == ':' ? 2 : 0));
}

static int is_name_start(char c)
{
    return name_chars[(unsigned char)c] & 1;
}

static int is_name_char(char c)
{
    return name_chars[(unsigned char)c] & 2;
}

static int is_label_char(char c)
{
    return is_alpha_(c) || is_digit(c);
}

/* The line is NUL-terminated (no NUL inside: checked first), so scans stop
 * at the end without a bound of their own. */
static char *skip_blanks(char *s)
{
    while (is_blank(*s))
        s++;
    return s;
}

static char *token_end(char *s)
{
    while (*s != '\0' && !is_blank(*s))
        s++;
    return s;
}

static char *metric_name_end(char *s)
{
    if (!is_name_start(*s))
        return s;
    while (is_name_char(*s))
        s++;
    return s;
}

static int ieq(const char *s, size_t n, const char *word)
{
    size_t i;

    for (i = 0; i < n && word[i] != '\0'; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != word[i])
            return 0;
    }
    return i == n && word[i] == '\0';
}

/* What Go's strconv.ParseFloat takes in base 10 (the reference parser's
 * rule), checked here because strtod takes more: hex, "nan(...)". */
static int float_ok(const char *s, size_t n)
{
    size_t i = 0, digits = 0;

    if (ieq(s, n, "nan"))
        return 1;
    if (n > 0 && (s[0] == '+' || s[0] == '-'))
        i = 1;
    if (ieq(s + i, n - i, "inf") || ieq(s + i, n - i, "infinity"))
        return 1;
    for (; i < n && is_digit(s[i]); i++)
        digits++;
    if (i < n && s[i] == '.')
        for (i++; i < n && is_digit(s[i]); i++)
            digits++;
    if (digits == 0)
        return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t exp = 0;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        for (; i < n && is_digit(s[i]); i++)
            exp++;
        if (exp == 0)
            return 0;
    }
    return i == n;
}

/* A base-10 int64 as Go's strconv.ParseInt reads it; 0 when it is not. */
static int int64_parse(const char *s, size_t n, long long *out)
{
    size_t i = 0;
    int neg = 0;
    unsigned long long v = 0, lim;

    if (n > 0 && (s[0] == '+' || s[0] == '-')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == n)
        return 0;
    lim = neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
    for (; i < n; i++) {
        unsigned d;
        if (!is_digit(s[i]))
            return 0;
        d = (unsigned)(s[i] - '0');
        if (v > (lim - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    if (neg)
        *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
    else
        *out = (long long)v;
    return 1;
}

/* ---- the names of TYPE lines ---- */

static uint32_t name_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

/* 1 when a TYPE line named it before; else 0, the name kept while there
 * is room; -1 when out of memory. */
static int type_seen(struct prom_parser *p, const char *name, size_t n)
{
    uint32_t i;

    if (p->slots == NULL) {
        p->slots = calloc(TYPE_SLOTS, sizeof *p->slots);
        if (p->slots == NULL)
            return -1;
    }
    for (i = name_hash(name, n) & (TYPE_SLOTS - 1); p->slots[i].gen == p->gen;
         i = (i + 1) & (TYPE_SLOTS - 1))
        if (p->slots[i].len == n && memcmp(p->types + p->slots[i].off, name, n) == 0)
            return 1;
    if (p->ntypes >= TYPE_NAMES_MAX || n > TYPE_BYTES_MAX - p->types_len)
        return 0;
    if (p->types_len + n > p->types_cap) {
        size_t cap = p->types_cap ? p->types_cap : 1024;
        char *t;
        while (cap < p->types_len + n)
            cap *= 2;
        if (cap > TYPE_BYTES_MAX)
            cap = TYPE_BYTES_MAX;
        t = realloc(p->types, cap);
        if (t == NULL)
            return -1;
        p->types = t;
        p->types_cap = cap;
    }
    memcpy(p->types + p->types_len, name, n);
    p->slots[i].off = (uint32_t)p->types_len;
    p->slots[i].len = (uint32_t)n;
    p->slots[i].gen = p->gen;
    p->types_len += n;
    p->ntypes++;
    return 0;
}

/* ---- lines ---- */

/* "# HELP name text" or "# TYPE name type"; s is past the keyword. */
static int parse_meta(struct prom_parser *p, char *s, int is_type)
{
    const char *kw = is_type ? "TYPE" : "HELP";
    char q[QBUF], q2[QBUF];
    char *name = skip_blanks(s), *end = metric_name_end(name);
    size_t n = (size_t)(end - name);

    if (*name == '\0')
        return fail(p, "%s without a metric name", kw);
    if (n == 0 || (*end != '\0' && !is_blank(*end))) {
        char *tok = token_end(name);
        return fail(p, "invalid metric name %s in %s",
                    quote(q, sizeof q, name, (size_t)(tok - name)), kw);
    }
    if (p->want != NULL && !p->want(p->arg, name, n))
        return PROM_OK; /* a series the reader does not read */
    s = skip_blanks(end);
    if (!is_type) {
        /* the docstring: escapes \\ and \n only, as the reference parser */
        for (; *s != '\0'; s++) {
            if (*s != '\\')
                continue;
            s++;
            if (*s != '\\' && *s != 'n')
                return fail(p, "invalid escape %s in HELP of %s",
                            quote(q, sizeof q, s - 1, *s == '\0' ? 1 : 2),
                            quote(q2, sizeof q2, name, n));
        }
        return PROM_OK;
    }
    {
        char *type = s, *tend = token_end(s);
        size_t tn = (size_t)(tend - type);
        int seen;
        if (tn == 0)
            return fail(p, "TYPE of %s without a type", quote(q, sizeof q, name, n));
        if (!(tn == 7 && memcmp(type, "counter", 7) == 0) &&
            !(tn == 5 && memcmp(type, "gauge", 5) == 0) &&
            !(tn == 9 && memcmp(type, "histogram", 9) == 0) &&
            !(tn == 7 && memcmp(type, "summary", 7) == 0) &&
            !(tn == 7 && memcmp(type, "untyped", 7) == 0))
            return fail(p, "unknown type %s in TYPE", quote(q, sizeof q, type, tn));
        if (*skip_blanks(tend) != '\0')
            return fail(p, "junk after the type in TYPE: %s",
                        quote(q, sizeof q, skip_blanks(tend), strlen(skip_blanks(tend))));
        seen = type_seen(p, name, n);
        if (seen < 0)
            return fail(p, "out of memory");
        if (seen)
            return fail(p, "a second TYPE for %s", quote(q, sizeof q, name, n));
    }
    return PROM_OK;
}

static int add_label(struct prom_parser *p, size_t nlabels, const char *name, size_t name_len,
                     const char *value, size_t value_len)
{
    char q[QBUF];

    for (size_t i = 0; i < nlabels; i++)
        if (p->labels[i].name_len == name_len && memcmp(p->labels[i].name, name, name_len) == 0)
            return fail(p, "label %s twice", quote(q, sizeof q, name, name_len));
    if (nlabels >= p->lim.max_labels)
        return fail(p, "more than %zu labels", p->lim.max_labels);
    if (nlabels == p->labcap) {
        size_t cap = p->labcap ? p->labcap * 2 : LABELS_INITIAL;
        struct prom_label *l;
        if (cap > p->lim.max_labels)
            cap = p->lim.max_labels;
        l = realloc(p->labels, cap * sizeof *l);
        if (l == NULL)
            return fail(p, "out of memory");
        p->labels = l;
        p->labcap = cap;
    }
    p->labels[nlabels].name = name;
    p->labels[nlabels].name_len = name_len;
    p->labels[nlabels].value = value;
    p->labels[nlabels].value_len = value_len;
    return PROM_OK;
}

/* {label="value",...}: s is past the '{'; *out past the '}'.  Values are
 * unescaped in place (never longer than their escaped form). */
static int parse_labels(struct prom_parser *p, char *s, char **out, size_t *nlabels)
{
    char q[QBUF], q2[QBUF];

    *nlabels = 0;
    for (;;) {
        char *name, *value, *w;
        size_t name_len;

        s = skip_blanks(s);
        if (*s == '}')
            break;
        if (!is_alpha_(*s))
            return fail(p, *s == '\0' ? "unterminated label set" : "label name expected, found %s",
                        quote(q, sizeof q, s, 1));
        for (name = s; is_label_char(*s); s++)
            ;
        name_len = (size_t)(s - name);
        s = skip_blanks(s);
        if (*s != '=')
            return fail(p, "'=' expected after label %s", quote(q, sizeof q, name, name_len));
        s = skip_blanks(s + 1);
        if (*s != '"')
            return fail(p, "'\"' expected to open the value of label %s",
                        quote(q, sizeof q, name, name_len));
        for (value = w = ++s; *s != '"'; s++) {
            if (*s == '\0')
                return fail(p, "unterminated value of label %s",
                            quote(q, sizeof q, name, name_len));
            if (*s != '\\') {
                *w++ = *s;
                continue;
            }
            s++;
            if (*s == '\\' || *s == '"')
                *w++ = *s;
            else if (*s == 'n')
                *w++ = '\n';
            else if (*s == '\0')
                return fail(p, "unterminated value of label %s",
                            quote(q, sizeof q, name, name_len));
            else
                return fail(p, "invalid escape %s in the value of label %s",
                            quote(q, sizeof q, s - 1, 2), quote(q2, sizeof q2, name, name_len));
        }
        s++;
        if (add_label(p, *nlabels, name, name_len, value, (size_t)(w - value)) != PROM_OK)
            return PROM_ERROR;
        (*nlabels)++;
        s = skip_blanks(s);
        if (*s == ',') {
            s++;
            continue;
        }
        if (*s != '}')
            return fail(p, *s == '\0' ? "unterminated label set" : "',' or '}' expected, found %s",
                        quote(q, sizeof q, s, 1));
        break;
    }
    *out = s + 1;
    return PROM_OK;
}

static int parse_sample(struct prom_parser *p, char *s)
{
    struct prom_sample smp;
    char q[QBUF], q2[QBUF];
    char *name = s, *end = metric_name_end(s), *tok, save;

    memset(&smp, 0, sizeof smp);
    if (end == name)
        return fail(p, "metric name expected, found %s", quote(q, sizeof q, s, 1));
    smp.name = name;
    smp.name_len = (size_t)(end - name);
    s = end;
    if (*s != '\0' && !is_blank(*s) && *s != '{')
        return fail(p, "invalid character %s after metric name %s", quote(q, sizeof q, s, 1),
                    quote(q2, sizeof q2, name, smp.name_len));
    if (p->want != NULL && !p->want(p->arg, name, smp.name_len))
        return PROM_OK; /* a series the reader does not read */
    s = skip_blanks(s);
    if (*s == '{') {
        if (parse_labels(p, s + 1, &s, &smp.nlabels) != PROM_OK)
            return PROM_ERROR;
        smp.labels = p->labels;
        if (*s != '\0' && !is_blank(*s))
            return fail(p, "blank expected after the labels of %s, found %s",
                        quote(q, sizeof q, name, smp.name_len), quote(q2, sizeof q2, s, 1));
    }
    s = skip_blanks(s);
    if (*s == '\0')
        return fail(p, "no value for %s", quote(q, sizeof q, name, smp.name_len));
    tok = s;
    s = token_end(s);
    if (!float_ok(tok, (size_t)(s - tok)))
        return fail(p, "invalid value %s", quote(q, sizeof q, tok, (size_t)(s - tok)));
    {
        /* strtod on the token alone: a NUL in its place for the call */
        char *e;
        save = *s;
        *s = '\0';
        errno = 0;
        smp.value = strtod(tok, &e);
        *s = save;
        if (e != s)
            return fail(p, "invalid value %s", quote(q, sizeof q, tok, (size_t)(s - tok)));
        if (errno == ERANGE && isinf(smp.value))
            return fail(p, "value %s out of range", quote(q, sizeof q, tok, (size_t)(s - tok)));
    }
    s = skip_blanks(s);
    if (*s != '\0') {
        tok = s;
        s = token_end(s);
        if (!int64_parse(tok, (size_t)(s - tok), &smp.timestamp_ms))
            return fail(p, "invalid timestamp %s", quote(q, sizeof q, tok, (size_t)(s - tok)));
        smp.has_timestamp = 1;
        s = skip_blanks(s);
        if (*s != '\0')
            return fail(p, "junk after the timestamp: %s", quote(q, sizeof q, s, strlen(s)));
    }
    if (p->cb != NULL && p->cb(p->arg, &smp) != 0) {
        p->status = PROM_STOPPED;
        return PROM_STOPPED;
    }
    return PROM_OK;
}

/* The line in p->line, its '\n' gone. */
static int parse_line(struct prom_parser *p)
{
    char *s = p->line;
    size_t n = p->len;

    if (n > 0 && s[n - 1] == '\r')
        n--;
    if (n > p->lim.max_line)
        return fail(p, "longer than %zu bytes", p->lim.max_line);
    s[n] = '\0';
    if (p->line_nul)
        return fail(p, "a NUL byte");
    s = skip_blanks(s);
    if (*s == '\0')
        return PROM_OK;
    if (*s == '#') {
        char *kw = skip_blanks(s + 1), *kend = token_end(kw);
        size_t kn = (size_t)(kend - kw);
        if (kn == 4 && memcmp(kw, "HELP", 4) == 0)
            return parse_meta(p, kend, 0);
        if (kn == 4 && memcmp(kw, "TYPE", 4) == 0)
            return parse_meta(p, kend, 1);
        return PROM_OK; /* a comment */
    }
    return parse_sample(p, s);
}

/* Room for n more bytes of the current line (and its NUL): a line is
 * bounded by max_line, plus the '\r' of its "\r\n". */
static int line_append(struct prom_parser *p, const char *data, size_t n)
{
    if (n > p->lim.max_line + 1 - p->len)
        return fail(p, "longer than %zu bytes", p->lim.max_line);
    if (p->len + n + 1 > p->cap) {
        size_t cap = p->cap * 2;
        char *l;
        if (cap < p->len + n + 1)
            cap = p->len + n + 1;
        if (cap > p->lim.max_line + 2)
            cap = p->lim.max_line + 2;
        l = realloc(p->line, cap);
        if (l == NULL)
            return fail(p, "out of memory");
        p->line = l;
        p->cap = cap;
    }
    memcpy(p->line + p->len, data, n);
    p->len += n;
    return PROM_OK;
}

/* ---- API ---- */

struct prom_parser *prom_parser_new(const struct prom_limits *lim, prom_sample_cb cb, void *arg)
{
    struct prom_parser *p = calloc(1, sizeof *p);

    pthread_once(&name_chars_once, fill_name_chars);
    if (p == NULL)
        return NULL;
    if (lim != NULL)
        p->lim = *lim;
    if (p->lim.max_line == 0)
        p->lim.max_line = DEFAULT_MAX_LINE;
    if (p->lim.max_labels == 0)
        p->lim.max_labels = DEFAULT_MAX_LABELS;
    if (p->lim.max_bytes == 0)
        p->lim.max_bytes = DEFAULT_MAX_BYTES;
    /* so that sizes computed from them cannot wrap */
    if (p->lim.max_line > SIZE_MAX / 4)
        p->lim.max_line = SIZE_MAX / 4;
    if (p->lim.max_labels > SIZE_MAX / 4 / sizeof(struct prom_label))
        p->lim.max_labels = SIZE_MAX / 4 / sizeof(struct prom_label);
    p->cb = cb;
    p->arg = arg;
    p->lineno = 1;
    p->gen = 1;
    p->cap = p->lim.max_line + 2 < LINE_INITIAL ? p->lim.max_line + 2 : LINE_INITIAL;
    p->line = malloc(p->cap);
    if (p->line == NULL) {
        free(p);
        return NULL;
    }
    return p;
}

/* A whole line in the caller's bytes [s, end): its '\n' and a '\r' before
 * it gone, no NUL in it, not too long.  1 when it can be passed over where
 * it lies, not copied: blank, a comment, or a sample, HELP or TYPE line of
 * a series the reader does not want, its name checked (what parse_line
 * would do to it).  0 when parse_line must read it: a wanted series, or a
 * fault it will name. */
static int skippable(struct prom_parser *p, const char *s, const char *end)
{
    const char *name;

    while (s < end && is_blank(*s))
        s++;
    if (s == end)
        return 1;
    if (*s == '#') {
        const char *kw = s + 1, *kend;
        while (kw < end && is_blank(*kw))
            kw++;
        for (kend = kw; kend < end && !is_blank(*kend); kend++)
            ;
        if (kend - kw != 4 || (memcmp(kw, "HELP", 4) != 0 && memcmp(kw, "TYPE", 4) != 0))
            return 1; /* a comment */
        for (s = kend; s < end && is_blank(*s); s++)
            ;
        if (s == end || !is_name_start(*s))
            return 0;
        for (name = s; s < end && is_name_char(*s); s++)
            ;
        if (s < end && !is_blank(*s))
            return 0;
        return !p->want(p->arg, name, (size_t)(s - name));
    }
    if (!is_name_start(*s))
        return 0;
    for (name = s; s < end && is_name_char(*s); s++)
        ;
    if (s < end && !is_blank(*s) && *s != '{')
        return 0;
    return !p->want(p->arg, name, (size_t)(s - name));
}

int prom_feed(struct prom_parser *p, const char *data, size_t len)
{
    if (p->status != PROM_OK)
        return p->status;
    if (p->finished)
        return fail(p, "input after its end");
    /* one look for NUL bytes over what came, not one a line */
    const char *nul = memchr(data, '\0', len);
    while (len > 0) {
        size_t room = p->lim.max_bytes - p->total, n, take;
        const char *nl;

        if (room == 0)
            return fail(p, "input longer than %zu bytes", p->lim.max_bytes);
        n = len < room ? len : room;
        nl = memchr(data, '\n', n);
        take = nl != NULL ? (size_t)(nl - data) : n;
        if (p->want != NULL && p->len == 0 && nl != NULL && (nul == NULL || nul > nl)) {
            /* a whole line here: most of a scrape's are of series not
             * wanted, passed over without a copy */
            size_t l = take > 0 && data[take - 1] == '\r' ? take - 1 : take;
            if (l <= p->lim.max_line && skippable(p, data, data + l)) {
                p->total += take + 1;
                data += take + 1;
                len -= take + 1;
                p->lineno++;
                continue;
            }
        }
        if (nul != NULL && nul >= data && nul < data + take)
            p->line_nul = 1;
        if (nul != NULL && nul < data + take) /* past it: look for the next */
            nul = memchr(data + take, '\0', len - take);
        if (line_append(p, data, take) != PROM_OK)
            return PROM_ERROR;
        if (nl != NULL)
            take++;
        p->total += take;
        data += take;
        len -= take;
        if (nl != NULL) {
            int rc = parse_line(p);
            if (rc != PROM_OK)
                return rc;
            p->len = 0;
            p->line_nul = 0;
            p->lineno++;
        }
    }
    return PROM_OK;
}

int prom_finish(struct prom_parser *p)
{
    int rc;

    if (p->status != PROM_OK)
        return p->status;
    if (p->finished)
        return PROM_OK;
    p->finished = 1;
    if (p->len == 0)
        return PROM_OK;
    rc = parse_line(p);
    p->len = 0;
    return rc;
}

void prom_parser_want(struct prom_parser *p, prom_want_cb want)
{
    p->want = want;
}

void prom_parser_reset(struct prom_parser *p)
{
    p->status = PROM_OK;
    p->finished = 0;
    p->lineno = 1;
    p->total = 0;
    p->len = 0;
    p->line_nul = 0;
    p->err[0] = '\0';
    p->types_len = 0;
    p->ntypes = 0;
    /* the table's slots are empty for the next input without a sweep;
     * once in 2^32 inputs the numbers come round: sweep then */
    if (++p->gen == 0 && p->slots != NULL) {
        memset(p->slots, 0, TYPE_SLOTS * sizeof *p->slots);
        p->gen = 1;
    }
}

const char *prom_error(const struct prom_parser *p)
{
    return p->status == PROM_ERROR ? p->err : "";
}

void prom_parser_free(struct prom_parser *p)
{
    if (p == NULL)
        return;
    free(p->line);
    free(p->labels);
    free(p->types);
    free(p->slots);
    free(p);
}

int prom_parse(const char *text, size_t len, const struct prom_limits *lim, prom_sample_cb cb,
               void *arg, char *err, size_t errlen)
{
    struct prom_parser *p = prom_parser_new(lim, cb, arg);
    int rc;

    if (errlen > 0)
        err[0] = '\0';
    if (p == NULL) {
        if (errlen > 0)
            snprintf(err, errlen, "line 1: out of memory");
        return PROM_ERROR;
    }
    rc = prom_feed(p, text, len);
    if (rc == PROM_OK)
        rc = prom_finish(p);
    if (rc == PROM_ERROR && errlen > 0)
        snprintf(err, errlen, "%s", prom_error(p));
    prom_parser_free(p);
    return rc;
}
