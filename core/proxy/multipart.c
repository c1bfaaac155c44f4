#include "multipart.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NOT_FOUND ((size_t)-1)

/* RFC 9110's tchar: the bytes of a token. */
static int is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* RFC 2046's bchars (a space among them, but not last). */
static int is_bchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c != '\0' && strchr("'()+_,-./:=? ", c) != NULL;
}

/* qdtext of a quoted-string, backslash excluded: no quoted-pair is taken. */
static int is_qdtext(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f && c != '"' && c != '\\');
}

static int is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* n bytes at s equal the lowercase word w, case-insensitively. */
static int word_is(const char *s, size_t n, const char *w)
{
    return strlen(w) == n && strncasecmp(s, w, n) == 0;
}

/* One parameter "name=value" at s[*i, n) (the value a token or a quoted
 * string); on success *i is past it. */
static int read_param(const char *s, size_t n, size_t *i, const char **pname, size_t *pnlen,
                      const char **val, size_t *vlen, int *quoted)
{
    size_t p = *i, start = p;

    while (p < n && is_tchar((unsigned char)s[p]))
        p++;
    if (p == start || p >= n || s[p] != '=')
        return -1;
    *pname = s + start;
    *pnlen = p - start;
    p++;
    if (p < n && s[p] == '"') {
        start = ++p;
        while (p < n && is_qdtext((unsigned char)s[p]))
            p++;
        if (p >= n || s[p] != '"')
            return -1; /* unterminated, a backslash or a control byte */
        *val = s + start;
        *vlen = p - start;
        *quoted = 1;
        p++;
    } else {
        start = p;
        while (p < n && is_tchar((unsigned char)s[p]))
            p++;
        if (p == start)
            return -1;
        *val = s + start;
        *vlen = p - start;
        *quoted = 0;
    }
    *i = p;
    return 0;
}

/* After a media or disposition type at s[*i]: OWS ";" OWS, skipping empty
 * parameters.  1 with *i at the next parameter, 0 at the end (trailing
 * OWS allowed), -1 on anything else. */
static int next_param(const char *s, size_t n, size_t *i)
{
    size_t p = *i;

    for (;;) {
        while (p < n && is_ows((unsigned char)s[p]))
            p++;
        if (p == n) {
            *i = p;
            return 0;
        }
        if (s[p] != ';')
            return -1;
        p++;
        while (p < n && is_ows((unsigned char)s[p]))
            p++;
        if (p < n && s[p] != ';') {
            *i = p;
            return 1;
        }
    }
}

int multipart_boundary(const char *content_type, const char **b, size_t *blen)
{
    static const char type[] = "multipart/form-data";
    const char *s = content_type, *bnd = NULL, *pn, *v;
    size_t n, i = 0, bn = 0, pnl, vl;
    int quoted, r;

    if (s == NULL)
        return -1;
    n = strlen(s);
    while (i < n && is_ows((unsigned char)s[i]))
        i++;
    if (n - i < sizeof type - 1 || strncasecmp(s + i, type, sizeof type - 1) != 0)
        return -1;
    i += sizeof type - 1;
    while ((r = next_param(s, n, &i)) == 1) {
        if (read_param(s, n, &i, &pn, &pnl, &v, &vl, &quoted) != 0)
            return -1;
        if (!word_is(pn, pnl, "boundary"))
            continue;
        if (bnd != NULL || vl == 0 || vl > MULTIPART_BOUNDARY_MAX || v[vl - 1] == ' ')
            return -1;
        for (size_t k = 0; k < vl; k++)
            if (!is_bchar((unsigned char)v[k]))
                return -1;
        bnd = v;
        bn = vl;
    }
    if (r < 0 || bnd == NULL)
        return -1;
    *b = bnd;
    *blen = bn;
    return 0;
}

/* ---- the body ---- */

static int bad(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return MULTIPART_BAD;
}

/* The first "\r\n--B" in s[from, n), or NOT_FOUND.  Linear: '\r' is only
 * the pattern's first byte, so a partial match of k bytes moves the next
 * candidate at least k bytes on. */
static size_t find_delim(const char *s, size_t from, size_t n, const char *b, size_t blen)
{
    size_t dlen = blen + 4;

    while (from < n && n - from >= dlen) {
        const char *cr = memchr(s + from, '\r', n - from - dlen + 1);
        size_t p;

        if (cr == NULL)
            return NOT_FOUND;
        p = (size_t)(cr - s);
        if (s[p + 1] == '\n' && s[p + 2] == '-' && s[p + 3] == '-' &&
            memcmp(s + p + 4, b, blen) == 0)
            return p;
        from = p + 1;
    }
    return NOT_FOUND;
}

/* What a part's headers say, as spans of the body. */
struct part_headers {
    const char *cd, *cte; /* Content-Disposition, Content-Transfer-Encoding values */
    size_t cd_len, cte_len;
    size_t end;           /* past the empty line */
};

/* Read the header block at body[h, len) of part `part`. */
static int read_headers(const char *body, size_t len, size_t h, const char *b, size_t blen,
                        unsigned part, struct part_headers *ph, char *err, size_t errlen)
{
    size_t limit = h + MULTIPART_HEADERS_MAX, stop = len < limit ? len : limit, p = h;

    memset(ph, 0, sizeof *ph);
    for (;;) {
        size_t ls = p, q, ve;

        while (p < stop && body[p] != '\r') {
            unsigned char c = (unsigned char)body[p];
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return bad(err, errlen, "part %u: a control byte in its headers", part);
            p++;
        }
        if (p == stop || p + 2 > limit) {
            if (p + 2 > len && len < limit)
                return bad(err, errlen, "part %u: truncated body in its headers", part);
            return bad(err, errlen, "part %u: header block over %d bytes", part,
                       MULTIPART_HEADERS_MAX);
        }
        if (p + 1 == len)
            return bad(err, errlen, "part %u: truncated body in its headers", part);
        if (body[p + 1] != '\n')
            return bad(err, errlen, "part %u: a CR without LF in its headers", part);
        if (p == ls) {
            ph->end = p + 2;
            return 0;
        }
        /* "--B" opening a line is a delimiter to any reader that looks */
        if (p - ls >= blen + 2 && body[ls] == '-' && body[ls + 1] == '-' &&
            memcmp(body + ls + 2, b, blen) == 0)
            return bad(err, errlen, "part %u: a delimiter in its headers", part);
        if (is_ows((unsigned char)body[ls]))
            return bad(err, errlen, "part %u: a folded header line", part);
        for (q = ls; q < p && is_tchar((unsigned char)body[q]); q++)
            ;
        if (q == ls || q == p || body[q] != ':')
            return bad(err, errlen, "part %u: a malformed header line", part);
        ve = p;
        while (ve > q + 1 && is_ows((unsigned char)body[ve - 1]))
            ve--;
        if (word_is(body + ls, q - ls, "content-disposition")) {
            if (ph->cd != NULL)
                return bad(err, errlen, "part %u: Content-Disposition given twice", part);
            for (q++; q < ve && is_ows((unsigned char)body[q]); q++)
                ;
            ph->cd = body + q;
            ph->cd_len = ve - q;
        } else if (word_is(body + ls, q - ls, "content-transfer-encoding")) {
            if (ph->cte != NULL)
                return bad(err, errlen, "part %u: Content-Transfer-Encoding given twice", part);
            for (q++; q < ve && is_ows((unsigned char)body[q]); q++)
                ;
            ph->cte = body + q;
            ph->cte_len = ve - q;
        }
        p += 2;
    }
}

/* A Content-Disposition value: "form-data", its name, whether a file. */
static int read_disposition(const char *s, size_t n, unsigned part, const char **name,
                            size_t *nlen, int *file, char *err, size_t errlen)
{
    size_t i = 0, pnl, vl;
    const char *pn, *v;
    int quoted, r;

    *name = NULL;
    *nlen = 0;
    *file = 0;
    while (i < n && is_tchar((unsigned char)s[i]))
        i++;
    if (!word_is(s, i, "form-data"))
        return bad(err, errlen, "part %u: Content-Disposition is not form-data", part);
    while ((r = next_param(s, n, &i)) == 1) {
        if (read_param(s, n, &i, &pn, &pnl, &v, &vl, &quoted) != 0)
            return bad(err, errlen, "part %u: a malformed Content-Disposition parameter",
                       part);
        if (word_is(pn, pnl, "name")) {
            if (*name != NULL)
                return bad(err, errlen, "part %u: name given twice", part);
            *name = v;
            *nlen = vl;
        } else if (word_is(pn, pnl, "filename") || word_is(pn, pnl, "filename*")) {
            *file = 1;
        }
    }
    if (r < 0)
        return bad(err, errlen, "part %u: a malformed Content-Disposition", part);
    if (*name == NULL)
        return bad(err, errlen, "part %u: Content-Disposition without a name", part);
    return 0;
}

/* After "--B" at body[*q]: the close delimiter (1) or a delimiter line
 * opening part `part` (0, *q past its CRLF), or an error. */
static int after_delim(const char *body, size_t len, size_t *q, unsigned part, char *err,
                       size_t errlen)
{
    size_t p = *q;

    if (p < len && body[p] == '-') {
        if (p + 1 == len)
            return bad(err, errlen, "truncated body in a delimiter");
        if (body[p + 1] == '-') {
            for (p += 2; p < len && is_ows((unsigned char)body[p]); p++)
                ;
            if (p < len && !(p + 1 < len && body[p] == '\r' && body[p + 1] == '\n'))
                return bad(err, errlen, "no CRLF after the closing delimiter");
            *q = p;
            return 1;
        }
    }
    while (p < len && is_ows((unsigned char)body[p]))
        p++;
    if (p == len || (p + 1 == len && body[p] == '\r'))
        return bad(err, errlen, "part %u: truncated body in its delimiter line", part);
    if (body[p] != '\r' || body[p + 1] != '\n')
        return bad(err, errlen, "part %u: no CRLF after the delimiter", part);
    *q = p + 2;
    return 0;
}

int multipart_find_field(const char *body, size_t len, const char *boundary, size_t blen,
                         const char *name, struct multipart_field *out, char *err,
                         size_t errlen)
{
    size_t q, nlen = name != NULL ? strlen(name) : 0, found_off = 0, found_len = 0;
    unsigned part = 0;
    int found = 0;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (boundary == NULL || blen == 0 || blen > MULTIPART_BOUNDARY_MAX)
        return bad(err, errlen, "no valid boundary");
    if (nlen == 0)
        return bad(err, errlen, "no field name to look for");
    if (body == NULL)
        len = 0;

    /* the first delimiter: at the start, or the first after a CRLF */
    if (len >= blen + 2 && body[0] == '-' && body[1] == '-' &&
        memcmp(body + 2, boundary, blen) == 0) {
        q = blen + 2;
    } else {
        q = find_delim(body, 0, len, boundary, blen);
        if (q == NOT_FOUND)
            return bad(err, errlen, "no boundary delimiter");
        q += blen + 4;
    }
    for (;;) {
        struct part_headers ph;
        const char *pname;
        size_t pnlen, d;
        int file, r = after_delim(body, len, &q, part + 1, err, errlen);

        if (r < 0)
            return MULTIPART_BAD;
        if (r == 1) {
            if (part == 0)
                return bad(err, errlen, "no part before the closing delimiter");
            /* an epilogue is ignored, but one that goes on with more parts
             * would be read by a parser that does not stop here */
            if (find_delim(body, q, len, boundary, blen) != NOT_FOUND)
                return bad(err, errlen, "a delimiter after the closing one");
            break;
        }
        if (++part > MULTIPART_PARTS_MAX)
            return bad(err, errlen, "more than %d parts", MULTIPART_PARTS_MAX);
        if (read_headers(body, len, q, boundary, blen, part, &ph, err, errlen) < 0)
            return MULTIPART_BAD;
        if (ph.cd == NULL)
            return bad(err, errlen, "part %u: no Content-Disposition", part);
        if (read_disposition(ph.cd, ph.cd_len, part, &pname, &pnlen, &file, err, errlen) < 0)
            return MULTIPART_BAD;
        /* from the empty line's CRLF: "--B" right after it would be a
         * part without content to RFC 2046, content to others */
        d = find_delim(body, ph.end - 2, len, boundary, blen);
        if (d == NOT_FOUND)
            return bad(err, errlen, "no closing boundary");
        if (d == ph.end - 2)
            return bad(err, errlen, "part %u: a delimiter right after its headers", part);
        if (pnlen == nlen && memcmp(pname, name, nlen) == 0) {
            if (file)
                return bad(err, errlen, "part %u: \"%.64s\" is a file, not a field", part,
                           name);
            if (found)
                return bad(err, errlen, "part %u: a second \"%.64s\" field", part, name);
            if (ph.cte != NULL && !word_is(ph.cte, ph.cte_len, "7bit") &&
                !word_is(ph.cte, ph.cte_len, "8bit") && !word_is(ph.cte, ph.cte_len, "binary"))
                return bad(err, errlen, "part %u: \"%.64s\" has Content-Transfer-Encoding %.*s",
                           part, name, (int)(ph.cte_len < 32 ? ph.cte_len : 32), ph.cte);
            found = 1;
            found_off = ph.end;
            found_len = d - ph.end;
        }
        q = d + blen + 4;
    }
    if (!found)
        return MULTIPART_ABSENT;
    out->value_off = found_off;
    out->value_len = found_len;
    return MULTIPART_FOUND;
}

int multipart_replace_field(const char *body, size_t len, const struct multipart_field *f,
                            const char *boundary, size_t blen, const char *value,
                            size_t vlen, char **out, size_t *outlen)
{
    size_t off, end, n, dlen = blen + 4, from, to, d;
    char *buf;

    if (body == NULL || f == NULL || boundary == NULL || blen == 0 ||
        blen > MULTIPART_BOUNDARY_MAX || (value == NULL && vlen > 0))
        return -1;
    off = f->value_off;
    if (off > len || f->value_len > len - off || vlen > (size_t)-1 - len)
        return -1;
    end = off + f->value_len;
    n = len - f->value_len + vlen;
    buf = malloc(n > 0 ? n : 1);
    if (buf == NULL)
        return -1;
    memcpy(buf, body, off);
    if (vlen > 0)
        memcpy(buf + off, value, vlen);
    memcpy(buf + off + vlen, body + end, len - end);

    /* no delimiter may overlap the new value: one starting from dlen - 1
     * bytes before it to its last byte */
    from = off >= dlen - 1 ? off - (dlen - 1) : 0;
    to = off + vlen + dlen - 1 < n ? off + vlen + dlen - 1 : n;
    for (;;) {
        d = find_delim(buf, from, to, boundary, blen);
        if (d == NOT_FOUND || d >= off + vlen)
            break;
        if (d + dlen > off) {
            free(buf);
            return -1;
        }
        from = d + 1;
    }
    *out = buf;
    *outlen = n;
    return 0;
}
