/*
 * http_parse: strict HTTP/1.x request heads and chunked bodies, in place.
 *
 * A head is read in two steps: find_end() looks for the blank line with
 * memchr, resuming where the last call stopped (*scanned), so a head that
 * trickles in costs linear time; then parse() reads the complete head once,
 * validating every byte, and only if all of it is good writes the NULs.
 * The chunked decoder is a byte-level state machine that keeps its state
 * in struct http_chunked and moves data with memmove.
 */
#include "http_parse.h"

#include <string.h>

#include "http_headers.h"

/* RFC 9110 tchar: "!#$%&'*+-.^_`|~", digits and letters, as a bitmap */
static const uint32_t tchar_map[8] = {
    0x00000000, 0x03FF6CFA, 0xC7FFFFFE, 0x57FFFFFF, 0, 0, 0, 0,
};

static int is_tchar(unsigned char c)
{
    return tchar_map[c >> 5] >> (c & 31) & 1;
}

/* field-value bytes: HTAB, SP, VCHAR, obs-text */
static int is_value(unsigned char c)
{
    return c >= 0x20 ? c != 0x7F : c == '\t';
}

static int is_blank(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int ascii_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* --- request heads --- */

/*
 * Where the head ends in buf[0, lim): just past the LF of the first empty
 * line after a non-empty one; 0 if it has not come yet.  *scanned tells
 * where to resume, and which of two phases the search is in, in O(1):
 * while only empty lines were read it is just past the last of them
 * (0, or buf[s - 1] is an LF); past them it is never just after an LF
 * (it backs off one byte instead), and every LF before it was looked at.
 */
static size_t find_end(const char *buf, size_t lim, size_t *scanned)
{
    size_t s = *scanned <= lim ? *scanned : 0;

    if (s == 0 || buf[s - 1] == '\n') {
        while (s < lim) {
            if (buf[s] == '\n')
                s++;
            else if (buf[s] == '\r' && s + 1 < lim && buf[s + 1] == '\n')
                s += 2;
            else
                break;
        }
        if (s == lim || (buf[s] == '\r' && s + 1 == lim)) {
            *scanned = s;
            return 0;
        }
        s++; /* past the request line's first byte, which is no LF */
    }
    for (;;) {
        const char *lf = memchr(buf + s, '\n', lim - s);
        if (lf == NULL)
            break;
        /* an empty line: LF or CR LF just after an LF; any LF this far
         * ends a line after the request line began, so looking two bytes
         * back stays in the head, and finds no leading empty line */
        size_t i = (size_t)(lf - buf);
        if (buf[i - 1] == '\n' || (buf[i - 1] == '\r' && buf[i - 2] == '\n'))
            return i + 1;
        s = i + 1;
    }
    *scanned = lim - (buf[lim - 1] == '\n');
    return 0;
}

/* A CR not followed by LF gets its own message, whatever the context.
 * buf[i + 1] exists: the head ends in an LF. */
static enum http_parse_result bad(const char *buf, size_t i, const char *msg, const char **why)
{
    *why = buf[i] == '\r' && buf[i + 1] != '\n' ? "bare CR in the request head" : msg;
    return HTTP_PARSE_BAD;
}

/* Past the line end at buf[i] (LF or CR LF), or 0 if there is none. */
static size_t line_end(const char *buf, size_t i)
{
    if (buf[i] == '\n')
        return i + 1;
    if (buf[i] == '\r' && buf[i + 1] == '\n')
        return i + 2;
    return 0;
}

static enum http_method method_of(const char *m, size_t n)
{
    static const struct { const char *name; size_t len; enum http_method method; } known[] = {
        {"GET", 3, HTTP_METHOD_GET},         {"PUT", 3, HTTP_METHOD_PUT},
        {"POST", 4, HTTP_METHOD_POST},       {"HEAD", 4, HTTP_METHOD_HEAD},
        {"PATCH", 5, HTTP_METHOD_PATCH},     {"DELETE", 6, HTTP_METHOD_DELETE},
        {"OPTIONS", 7, HTTP_METHOD_OPTIONS},
    };
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
        if (known[k].len == n && memcmp(m, known[k].name, n) == 0)
            return known[k].method;
    return HTTP_METHOD_OTHER;
}

/* One validating pass over a complete head buf[0, end): buf[end - 1] is the
 * LF of the blank line, so every loop below stops by then.  The NULs are
 * written only once all of it is known to be good. */
static enum http_parse_result parse(char *buf, size_t end, struct http_head *h,
                                    struct http_field *fields, size_t max_fields,
                                    const char **why)
{
    const char *rl = "malformed request line";
    size_t i = 0, n, m, t, tlen, nf = 0;
    int version_ok, minor;

    while ((n = line_end(buf, i)) != 0) /* the empty lines find_end skipped */
        i = n;

    /* method SP target SP HTTP/D.D */
    m = i;
    while (is_tchar((unsigned char)buf[i]))
        i++;
    if (i == m || buf[i] != ' ')
        return bad(buf, i, rl, why);
    t = ++i;
    while ((unsigned char)buf[i] > 0x20 && (unsigned char)buf[i] < 0x7F)
        i++;
    tlen = i - t;
    if (tlen == 0 || buf[i] != ' ')
        return bad(buf, i, rl, why);
    i++;
    if (end - i < 9 || memcmp(buf + i, "HTTP/", 5) != 0 || buf[i + 5] < '0' ||
        buf[i + 5] > '9' || buf[i + 6] != '.' || buf[i + 7] < '0' || buf[i + 7] > '9')
        return bad(buf, i, rl, why);
    version_ok = buf[i + 5] == '1' && buf[i + 7] <= '1';
    minor = buf[i + 7] - '0';
    if ((n = line_end(buf, i + 8)) == 0)
        return bad(buf, i + 8, rl, why);

    /* header lines: name ":" OWS value OWS, up to the blank line */
    for (i = n; (n = line_end(buf, i)) == 0; i = n) {
        size_t name = i, colon, value, last;
        if (is_blank((unsigned char)buf[i])) {
            *why = "obsolete line folding in a header";
            return HTTP_PARSE_BAD;
        }
        while (is_tchar((unsigned char)buf[i]))
            i++;
        colon = i;
        if (buf[i] != ':') {
            const char *msg = "invalid character in a header name";
            if (i > name && is_blank((unsigned char)buf[i]))
                msg = "whitespace before the colon of a header name"; /* read two ways */
            else if (buf[i] == '\r' || buf[i] == '\n')
                msg = "header line without a colon";
            return bad(buf, i, msg, why);
        }
        if (colon == name) {
            *why = "empty header name";
            return HTTP_PARSE_BAD;
        }
        for (i++; is_blank((unsigned char)buf[i]); i++)
            ;
        for (value = i; is_value((unsigned char)buf[i]); i++)
            ;
        for (last = i; last > value && is_blank((unsigned char)buf[last - 1]); last--)
            ;
        if ((n = line_end(buf, i)) == 0)
            return bad(buf, i, "invalid character in a header value", why);
        if (nf < max_fields)
            fields[nf] = (struct http_field){(uint32_t)name, (uint32_t)(colon - name),
                                             (uint32_t)value, (uint32_t)(last - value)};
        nf++;
    }

    if (!version_ok) {
        *why = "unsupported HTTP version";
        return HTTP_PARSE_VERSION;
    }
    if (nf > max_fields) {
        *why = "too many header lines";
        return HTTP_PARSE_TOO_LARGE;
    }
    /* all good: now, and only now, make C strings of it all */
    h->method = method_of(buf + m, t - 1 - m);
    buf[t - 1] = '\0';
    buf[t + tlen] = '\0';
    for (size_t k = 0; k < nf; k++) {
        buf[fields[k].name + fields[k].name_len] = '\0';
        buf[fields[k].value + fields[k].value_len] = '\0';
    }
    h->method_off = (uint32_t)m;
    h->target = (uint32_t)t;
    h->target_len = (uint32_t)tlen;
    h->minor = minor;
    h->nfields = nf;
    h->head_len = n;
    return HTTP_PARSE_DONE;
}

/* Empty lines at buf's start, counted up to two. */
static int leading_empty_lines(const char *buf, size_t len)
{
    size_t i = 0;
    int n = 0;

    while (n < 2 && i < len) {
        if (buf[i] == '\n')
            i++;
        else if (buf[i] == '\r' && i + 1 < len && buf[i + 1] == '\n')
            i += 2;
        else
            break;
        n++;
    }
    return n;
}

enum http_parse_result http_parse_head(char *buf, size_t len, size_t max_head,
                                       struct http_head *h, struct http_field *fields,
                                       size_t max_fields, size_t *scanned,
                                       const char **why)
{
    size_t lim, end;

    if (max_head > UINT32_MAX - 1) /* offsets are uint32_t */
        max_head = UINT32_MAX - 1;
    /* one empty line before a request is a client's leftover after a body
     * (RFC 9112 2.2); more are no request at all, and would keep the
     * connection waiting for one */
    if (leading_empty_lines(buf, len) > 1) {
        *why = "empty lines before the request line";
        return HTTP_PARSE_BAD;
    }
    lim = len < max_head ? len : max_head;
    end = find_end(buf, lim, scanned);
    if (end == 0) {
        if (len <= max_head)
            return HTTP_PARSE_MORE;
        *why = "request head too large";
        return HTTP_PARSE_TOO_LARGE;
    }
    return parse(buf, end, h, fields, max_fields, why);
}

const char *http_head_field(const char *buf, const struct http_field *fields,
                            size_t nfields, const char *name)
{
    size_t n = strlen(name);

    for (size_t k = 0; k < nfields; k++) {
        const char *f = buf + fields[k].name;
        size_t j = 0;
        if (fields[k].name_len != n)
            continue;
        while (j < n && ascii_lower((unsigned char)f[j]) == ascii_lower((unsigned char)name[j]))
            j++;
        if (j == n)
            return buf + fields[k].value;
    }
    return NULL;
}

int http_keep_alive(int minor, const char *connection)
{
    /* "close" wins over "keep-alive" when both are listed */
    if (http_connection_lists(connection, "close"))
        return 0;
    return minor >= 1 || http_connection_lists(connection, "keep-alive");
}

/* --- response heads --- */

int http_parse_status_line(const char *line, size_t len, int *minor, const char **why)
{
    const unsigned char *s = (const unsigned char *)line;
    size_t i;
    int status;

    if (len >= 8 && memcmp(s, "HTTP/1.", 7) == 0 && s[7] >= '0' && s[7] <= '9') {
        *minor = s[7] == '0' ? 0 : 1;
        i = 8;
    } else if (len >= 6 && (memcmp(s, "HTTP/2", 6) == 0 || memcmp(s, "HTTP/3", 6) == 0)) {
        *minor = 1;
        i = 6;
    } else {
        *why = "malformed status line (no HTTP/1.x version)";
        return -1;
    }
    if (len < i + 4 || s[i] != ' ' || s[i + 1] < '0' || s[i + 1] > '9' ||
        s[i + 2] < '0' || s[i + 2] > '9' || s[i + 3] < '0' || s[i + 3] > '9') {
        *why = "malformed status line (no three-digit status)";
        return -1;
    }
    status = (s[i + 1] - '0') * 100 + (s[i + 2] - '0') * 10 + (s[i + 3] - '0');
    i += 4;
    if (status < 100 || status > 599) {
        *why = "status code out of range";
        return -1;
    }
    if (i < len && s[i] != ' ') {
        *why = "malformed status line (no space after the status)";
        return -1;
    }
    for (; i < len; i++)
        if (!is_value(s[i])) {
            *why = "invalid character in the status line";
            return -1;
        }
    return status;
}

int http_parse_field_line(const char *line, size_t len, size_t *name_len,
                          size_t *value_off, size_t *value_len, const char **why)
{
    const unsigned char *s = (const unsigned char *)line;
    size_t i = 0, end;

    if (len > 0 && is_blank(s[0])) {
        *why = "obsolete line folding in a header";
        return -1;
    }
    while (i < len && is_tchar(s[i]))
        i++;
    if (i == 0 || i == len || s[i] != ':') {
        *why = i < len && i > 0 && is_blank(s[i]) ? "space before a header's colon"
                                                   : "malformed header line";
        return -1;
    }
    *name_len = i++;
    while (i < len && is_blank(s[i]))
        i++;
    end = len;
    while (end > i && is_blank(s[end - 1]))
        end--;
    for (size_t k = i; k < end; k++)
        if (!is_value(s[k])) {
            *why = "invalid character in a header value";
            return -1;
        }
    *value_off = i;
    *value_len = end - i;
    return 0;
}

/* --- chunked bodies --- */

#define CHUNK_LINE_MAX 8192 /* bytes of a chunk-size line; of the trailer section */

enum {
    CH_SIZE,     /* hex digits of a chunk size (line_bytes of them so far) */
    CH_EXT,      /* a chunk extension, up to the end of the line */
    CH_SIZE_LF,  /* the LF after a size line's CR */
    CH_DATA,     /* `left` bytes of data */
    CH_DATA_END, /* the CR LF (or LF) after the data */
    CH_DATA_LF,  /* the LF after the data's CR */
    CH_TRAILER,  /* the start of a trailer line, or the blank line */
    CH_TR_NAME,  /* a trailer field's name */
    CH_TR_VALUE, /* its value */
    CH_TR_LF,    /* the LF after a trailer line's CR */
    CH_LAST_LF,  /* the LF after the blank line's CR */
    CH_DONE,
};

/* Refuse the byte at i: *in stays on it. */
#define FAIL(result, msg)                                                      \
    do {                                                                       \
        *why = (msg);                                                          \
        r = (result);                                                          \
        goto stop;                                                             \
    } while (0)

enum http_parse_result http_chunked_decode(struct http_chunked *c, char *buf,
                                           size_t *in, size_t len, size_t *out,
                                           size_t max_body, const char **why)
{
    enum http_parse_result r = HTTP_PARSE_MORE;
    size_t i = *in, o = *out;

    while (i < len && c->state != CH_DONE) {
        unsigned char ch = (unsigned char)buf[i];
        int d, trailer = c->state >= CH_TRAILER;

        if (c->state == CH_DATA) {
            size_t n = len - i < c->left ? len - i : (size_t)c->left;
            memmove(buf + o, buf + i, n);
            i += n;
            o += n;
            c->decoded += n;
            if ((c->left -= n) == 0)
                c->state = CH_DATA_END;
            continue;
        }
        if (trailer && c->trailer_bytes == CHUNK_LINE_MAX) /* the blank line included */
            FAIL(HTTP_PARSE_TOO_LARGE, "trailer section too large");
        switch (c->state) {
        case CH_SIZE:
            if ((d = hex_value(ch)) >= 0) {
                /* 1 to 16 digits, and the value below 2^63 */
                if (c->line_bytes == 16 || c->left >> 59)
                    FAIL(HTTP_PARSE_BAD, "chunk size out of range");
                c->left = c->left << 4 | (uint64_t)d;
                c->line_bytes++;
                break;
            }
            /* no whitespace after the size: some read "1 x" as 1, some not */
            if (c->line_bytes > 0 && is_blank(ch))
                FAIL(HTTP_PARSE_BAD, "whitespace after a chunk size");
            if (c->line_bytes == 0 || (ch != ';' && ch != '\r' && ch != '\n'))
                FAIL(HTTP_PARSE_BAD, "invalid chunk size");
            if (c->left > max_body - c->decoded) /* refused before its data comes */
                FAIL(HTTP_PARSE_TOO_LARGE, "request body too large");
            c->line_bytes++;
            if (ch == ';')
                c->state = CH_EXT;
            else if (ch == '\r')
                c->state = CH_SIZE_LF;
            else
                c->state = c->left ? CH_DATA : CH_TRAILER;
            break;
        case CH_EXT: /* ignored, but bounded and free of NUL and bare CR */
            if (ch == '\0')
                FAIL(HTTP_PARSE_BAD, "invalid character in a chunk extension");
            if (ch == '\r')
                c->state = CH_SIZE_LF;
            else if (ch == '\n')
                c->state = c->left ? CH_DATA : CH_TRAILER;
            else if (c->line_bytes++ == CHUNK_LINE_MAX) /* malformed, not a body too large */
                FAIL(HTTP_PARSE_BAD, "chunk extension too long");
            break;
        case CH_SIZE_LF:
            if (ch != '\n')
                FAIL(HTTP_PARSE_BAD, "bare CR in the chunked body");
            c->state = c->left ? CH_DATA : CH_TRAILER;
            break;
        case CH_DATA_END:
            if (ch != '\r' && ch != '\n')
                FAIL(HTTP_PARSE_BAD, "chunk data not followed by CRLF");
            c->state = ch == '\r' ? CH_DATA_LF : CH_SIZE;
            c->line_bytes = 0;
            break;
        case CH_DATA_LF:
            if (ch != '\n')
                FAIL(HTTP_PARSE_BAD, "chunk data not followed by CRLF");
            c->state = CH_SIZE;
            break;
        case CH_TRAILER: /* a field line (read and dropped) or the blank line */
            if (ch == '\r' || ch == '\n')
                c->state = ch == '\r' ? CH_LAST_LF : CH_DONE;
            else if (is_tchar(ch))
                c->state = CH_TR_NAME;
            else
                FAIL(HTTP_PARSE_BAD, is_blank(ch) ? "obsolete line folding in a trailer"
                                                  : "malformed trailer line");
            break;
        case CH_TR_NAME:
            if (ch == ':')
                c->state = CH_TR_VALUE;
            else if (!is_tchar(ch))
                FAIL(HTTP_PARSE_BAD, "malformed trailer line");
            break;
        case CH_TR_VALUE:
            if (ch == '\r' || ch == '\n')
                c->state = ch == '\r' ? CH_TR_LF : CH_TRAILER;
            else if (!is_value(ch))
                FAIL(HTTP_PARSE_BAD, "malformed trailer line");
            break;
        case CH_TR_LF:
        case CH_LAST_LF:
            if (ch != '\n')
                FAIL(HTTP_PARSE_BAD, "bare CR in the chunked body");
            c->state = c->state == CH_TR_LF ? CH_TRAILER : CH_DONE;
            break;
        default:
            FAIL(HTTP_PARSE_BAD, "malformed chunked body");
        }
        c->trailer_bytes += trailer;
        i++;
    }
    if (c->state == CH_DONE)
        r = HTTP_PARSE_DONE;
stop:
    *in = i;
    *out = o;
    return r;
}
#undef FAIL
