#include "dns_packet.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define HEADER 12
#define RR_FIXED 10     /* type, class, ttl, rdlength after the owner */
#define MAX_CNAMES 16   /* CNAME records an answer may hold */
#define MAX_CHAIN 8     /* CNAMEs followed from the name asked */

static unsigned get16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

static unsigned long get32(const unsigned char *p)
{
    return (unsigned long)get16(p) << 16 | get16(p + 2);
}

static void put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

/* Bytes a label may hold: a name stays one line of text, and '.' and '\'
 * never stand inside a label, so its text form is unambiguous. */
static int label_byte_ok(unsigned char c)
{
    return c > 0x20 && c < 0x7f && c != '.' && c != '\\';
}

int dns_name_ok(const char *name)
{
    size_t len = name != NULL ? strlen(name) : 0, label = 0;

    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len == 0 || len > DNS_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (name[i] == '.') {
            if (label == 0)
                return 0;
            label = 0;
        } else if (!label_byte_ok((unsigned char)name[i]) || ++label > 63) {
            return 0;
        }
    }
    return label > 0;
}

int dns_query_build(unsigned char *buf, size_t cap, unsigned id, const char *name, int type)
{
    size_t len, n = HEADER, start = 0;

    if (!dns_name_ok(name) || type <= 0 || type > 0xffff)
        return -1;
    len = strlen(name);
    if (name[len - 1] == '.')
        len--;
    /* header, labels and the root, type and class, the OPT record */
    if (cap < HEADER + len + 2 + 4 + 11)
        return -1;
    memset(buf, 0, HEADER);
    put16(buf, id & 0xffff);
    buf[2] = 0x01;     /* RD: the resolver recurses for us */
    put16(buf + 4, 1); /* one question */
    put16(buf + 10, 1); /* one additional record: OPT */
    for (size_t i = 0; i <= len; i++) {
        if (i < len && name[i] != '.')
            continue;
        buf[n++] = (unsigned char)(i - start);
        memcpy(buf + n, name + start, i - start);
        n += i - start;
        start = i + 1;
    }
    buf[n++] = 0;
    put16(buf + n, (unsigned)type);
    put16(buf + n + 2, DNS_CLASS_IN);
    n += 4;
    /* OPT (RFC 6891): root owner; the class is the UDP size we take; a zero
     * TTL (no extended rcode, version 0, no DNSSEC) and no options */
    buf[n++] = 0;
    put16(buf + n, DNS_TYPE_OPT);
    put16(buf + n + 2, DNS_UDP_MAX);
    memset(buf + n + 4, 0, 6);
    return (int)(n + 10);
}

/* The name at *off as text into out (DNS_NAME_MAX + 1 bytes); *off moves
 * past the name where it stands (after its first pointer, or its final
 * zero).  Each pointer must point before the place the name read so far
 * began, so the walk only goes backwards and ends.  -1 when a rule is
 * broken. */
static int read_name(const unsigned char *p, size_t len, size_t *off, char *out)
{
    size_t pos = *off, limit = *off, wire = 1, n = 0;
    int jumped = 0;

    for (;;) {
        if (pos >= len)
            return -1;
        unsigned c = p[pos];
        if ((c & 0xc0) == 0xc0) {
            if (pos + 1 >= len)
                return -1;
            size_t to = (size_t)(c & 0x3f) << 8 | p[pos + 1];
            if (to < HEADER || to >= limit)
                return -1;
            if (!jumped)
                *off = pos + 2;
            jumped = 1;
            limit = pos = to;
            continue;
        }
        if (c & 0xc0) /* 0x40 and 0x80: label types no one uses */
            return -1;
        if (c == 0)
            break;
        wire += c + 1;
        if (wire > 255 || pos + 1 + c > len)
            return -1;
        if (n > 0)
            out[n++] = '.';
        for (size_t i = 1; i <= c; i++) {
            if (!label_byte_ok(p[pos + i]))
                return -1;
            out[n++] = (char)p[pos + i];
        }
        pos += 1 + c;
    }
    if (!jumped)
        *off = pos + 1;
    out[n] = '\0';
    return 0;
}

/* One resource record's owner and fixed fields; *off moves past its data.
 * -1 when it does not fit the packet. */
struct rr {
    char owner[DNS_NAME_MAX + 1];
    unsigned type, class_;
    unsigned long ttl;
    size_t rdata, rdlen;
};

static int read_rr(const unsigned char *p, size_t len, size_t *off, struct rr *rr)
{
    if (read_name(p, len, off, rr->owner) < 0 || len - *off < RR_FIXED)
        return -1;
    rr->type = get16(p + *off);
    rr->class_ = get16(p + *off + 2);
    rr->ttl = get32(p + *off + 4);
    rr->rdlen = get16(p + *off + 8);
    rr->rdata = *off + RR_FIXED;
    if (len - rr->rdata < rr->rdlen)
        return -1;
    *off = rr->rdata + rr->rdlen;
    return 0;
}

/* A name standing alone in a record's data (CNAME, SRV's target): it must
 * end exactly where the data ends. */
static int rdata_name(const unsigned char *p, size_t len, size_t at, size_t end, char *out)
{
    size_t off = at;
    return at < end && read_name(p, len, &off, out) == 0 && off == end ? 0 : -1;
}

static const char *rcode_name(unsigned rcode)
{
    switch (rcode) {
    case 1: return "FORMERR (the server could not read the query)";
    case 2: return "SERVFAIL (the server failed)";
    case 4: return "NOTIMP (the server does not do this query)";
    case 5: return "REFUSED (the server refused the query)";
    }
    return NULL;
}

static int bad(char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "%s", what);
    return DNS_ANSWER_BAD;
}

/* Records of the types we read must have the right shape; the data of
 * other types is only kept inside the packet. */
static int check_rdata(const unsigned char *p, size_t len, const struct rr *rr, char *name)
{
    size_t end = rr->rdata + rr->rdlen;

    if (rr->class_ != DNS_CLASS_IN)
        return 0;
    switch (rr->type) {
    case DNS_TYPE_A: return rr->rdlen == 4 ? 0 : -1;
    case DNS_TYPE_AAAA: return rr->rdlen == 16 ? 0 : -1;
    case DNS_TYPE_CNAME: return rdata_name(p, len, rr->rdata, end, name);
    case DNS_TYPE_SRV:
        return rr->rdlen >= 7 ? rdata_name(p, len, rr->rdata + 6, end, name) : -1;
    }
    return 0;
}

int dns_answer_parse(const unsigned char *pkt, size_t len, unsigned id, const char *name,
                     int type, struct dns_answer *out, char *err, size_t errlen)
{
    char want[DNS_NAME_MAX + 1], got[DNS_NAME_MAX + 1], data[DNS_NAME_MAX + 1];
    char (*cnames)[2][DNS_NAME_MAX + 1];
    size_t off = HEADER, answers, ncnames = 0, section;
    unsigned rcode;
    struct rr rr;

    memset(out, 0, sizeof *out);
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (!dns_name_ok(name))
        return bad(err, errlen, "not a name");
    if (type != DNS_TYPE_A && type != DNS_TYPE_AAAA && type != DNS_TYPE_SRV)
        return bad(err, errlen, "only A, AAAA and SRV answers are read");
    snprintf(want, sizeof want, "%s", name);
    if (want[strlen(want) - 1] == '.')
        want[strlen(want) - 1] = '\0';
    /* ours: our id, a response (QR), a standard query */
    if (len < HEADER || get16(pkt) != (id & 0xffff) || !(pkt[2] & 0x80) ||
        (pkt[2] >> 3 & 0xf) != 0)
        return DNS_ANSWER_NOT_OURS;
    rcode = pkt[3] & 0xf;
    if (get16(pkt + 4) != 1) {
        /* a server may leave the question out of an error */
        if (get16(pkt + 4) == 0 && rcode != DNS_RCODE_NOERROR && rcode_name(rcode) != NULL)
            return bad(err, errlen, rcode_name(rcode));
        return DNS_ANSWER_NOT_OURS;
    }
    if (read_name(pkt, len, &off, got) < 0 || len - off < 4 || strcasecmp(got, want) != 0 ||
        get16(pkt + off) != (unsigned)type || get16(pkt + off + 2) != DNS_CLASS_IN)
        return DNS_ANSWER_NOT_OURS;
    off += 4;
    if (pkt[2] & 0x02) {
        snprintf(err, errlen, "truncated: the answer is larger than %d bytes (no TCP fallback)",
                 DNS_UDP_MAX);
        return DNS_ANSWER_BAD;
    }
    if (rcode == DNS_RCODE_NXDOMAIN) {
        out->rcode = DNS_RCODE_NXDOMAIN;
        return DNS_ANSWER_OK;
    }
    if (rcode != DNS_RCODE_NOERROR) {
        if (rcode_name(rcode) != NULL)
            return bad(err, errlen, rcode_name(rcode));
        snprintf(err, errlen, "rcode %u", rcode);
        return DNS_ANSWER_BAD;
    }
    answers = get16(pkt + 6);
    /* every record takes at least a 1-byte owner and its fixed fields */
    if (answers > (len - off) / (1 + RR_FIXED))
        return bad(err, errlen, "malformed: more answers counted than the packet holds");
    cnames = calloc(MAX_CNAMES, sizeof *cnames);
    if (cnames == NULL)
        return bad(err, errlen, "out of memory");

    /* first pass: every record fits, and the CNAMEs */
    section = off;
    for (size_t i = 0; i < answers; i++) {
        if (read_rr(pkt, len, &off, &rr) < 0 || check_rdata(pkt, len, &rr, data) < 0) {
            free(cnames);
            return bad(err, errlen, "malformed: a record does not fit its rules");
        }
        if (rr.class_ == DNS_CLASS_IN && rr.type == DNS_TYPE_CNAME) {
            if (ncnames == MAX_CNAMES) {
                free(cnames);
                return bad(err, errlen, "malformed: too many CNAME records");
            }
            memcpy(cnames[ncnames][0], rr.owner, sizeof rr.owner);
            memcpy(cnames[ncnames][1], data, sizeof data);
            ncnames++;
        }
    }
    /* the name the records belong to: the end of the CNAME chain */
    for (size_t hops = 0;; hops++) {
        size_t k = 0;
        while (k < ncnames && strcasecmp(cnames[k][0], want) != 0)
            k++;
        if (k == ncnames)
            break;
        if (hops == MAX_CHAIN) {
            free(cnames);
            return bad(err, errlen, "malformed: a CNAME chain too long, or a loop");
        }
        snprintf(want, sizeof want, "%s", cnames[k][1]);
    }
    free(cnames);

    /* second pass: the records of the type asked, owned by that name */
    out->rec = calloc(answers ? answers : 1, sizeof *out->rec);
    if (out->rec == NULL)
        return bad(err, errlen, "out of memory");
    off = section;
    for (size_t i = 0; i < answers; i++) {
        struct dns_record *r = &out->rec[out->n];
        const unsigned char *d;

        read_rr(pkt, len, &off, &rr); /* checked in the first pass */
        if (rr.class_ != DNS_CLASS_IN || rr.type != (unsigned)type ||
            strcasecmp(rr.owner, want) != 0)
            continue;
        d = pkt + rr.rdata;
        memset(r, 0, sizeof *r);
        r->ttl = rr.ttl > 0x7fffffffUL ? 0 : (unsigned)rr.ttl; /* RFC 2181 8 */
        if (rr.type == DNS_TYPE_A || rr.type == DNS_TYPE_AAAA) {
            if (inet_ntop(rr.type == DNS_TYPE_A ? AF_INET : AF_INET6, d, r->text,
                          sizeof r->text) == NULL)
                continue;
        } else {
            r->priority = get16(d);
            r->weight = get16(d + 2);
            r->port = get16(d + 4);
            rdata_name(pkt, len, rr.rdata + 6, rr.rdata + rr.rdlen, r->text);
        }
        out->n++;
    }
    if (out->n == 0) {
        free(out->rec);
        out->rec = NULL;
    }
    return DNS_ANSWER_OK;
}

void dns_answer_free(struct dns_answer *a)
{
    free(a->rec);
    a->rec = NULL;
    a->n = 0;
}
