/* The DNS codec of dns_resolve() (core/host/dns_packet.c): queries as the
 * RFCs lay them out, answers read strictly, since they come from the
 * network. */
#include <stdio.h>
#include <string.h>

#include "dns_packet.h"
#include "unit.h"

/* ---- building packets by hand ---- */

struct pkt {
    unsigned char b[1024];
    size_t n;
};

static void p8(struct pkt *p, unsigned v)
{
    p->b[p->n++] = (unsigned char)v;
}

static void p16(struct pkt *p, unsigned v)
{
    p8(p, v >> 8);
    p8(p, v & 0xff);
}

static void p32(struct pkt *p, unsigned long v)
{
    p16(p, (unsigned)(v >> 16));
    p16(p, (unsigned)(v & 0xffff));
}

static void pbytes(struct pkt *p, const void *d, size_t n)
{
    memcpy(p->b + p->n, d, n);
    p->n += n;
}

/* Labels of a dotted name, then the root unless `tail` says where a
 * pointer goes (tail > 0). */
static void pname(struct pkt *p, const char *name, unsigned tail)
{
    while (*name) {
        size_t len = strcspn(name, ".");
        p8(p, (unsigned)len);
        pbytes(p, name, len);
        name += len;
        if (*name == '.')
            name++;
    }
    if (tail > 0)
        p16(p, 0xc000 | tail);
    else
        p8(p, 0);
}

static void pptr(struct pkt *p, unsigned to)
{
    p16(p, 0xc000 | to);
}

/* A header: id, flags (QR, RD, RA set unless flags says), counts. */
static void header(struct pkt *p, unsigned id, unsigned flags, unsigned qd, unsigned an)
{
    p->n = 0;
    p16(p, id);
    p16(p, flags);
    p16(p, qd);
    p16(p, an);
    p16(p, 0);
    p16(p, 0);
}

#define RESPONSE 0x8180 /* QR, RD, RA, NOERROR */

static void question(struct pkt *p, const char *name, unsigned type)
{
    pname(p, name, 0);
    p16(p, type);
    p16(p, DNS_CLASS_IN);
}

/* An RR head with the owner as a pointer (to the question, at 12). */
static void rr(struct pkt *p, unsigned owner, unsigned type, unsigned long ttl, unsigned rdlen)
{
    pptr(p, owner);
    p16(p, type);
    p16(p, DNS_CLASS_IN);
    p32(p, ttl);
    p16(p, rdlen);
}

static int parse(const struct pkt *p, unsigned id, const char *name, int type,
                 struct dns_answer *a, char *err)
{
    return dns_answer_parse(p->b, p->n, id, name, type, a, err, 160);
}

#define SRV_NAME "_http._tcp.svc.example"

/* ---- queries ---- */

static void test_query_layout(void)
{
    unsigned char q[DNS_QUERY_MAX], q2[DNS_QUERY_MAX];
    static const unsigned char want[] = {
        0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1, /* RD, one question, OPT */
        5, '_', 'h', 't', 't', 'p', 4, '_', 't', 'c', 'p', 3, 's', 'v', 'c',
        7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 0, 33, 0, 1,
        0, 0, 41, 0x10, 0x00, 0, 0, 0, 0, 0, 0 /* OPT: 4096 bytes, no flags */
    };
    int n = dns_query_build(q, sizeof q, 0x1234, SRV_NAME, DNS_TYPE_SRV);

    CU_ASSERT_EQUAL_FATAL(n, (int)sizeof want);
    CU_ASSERT_EQUAL(memcmp(q, want, sizeof want), 0);
    /* a final '.' is the same name */
    CU_ASSERT_EQUAL(dns_query_build(q2, sizeof q2, 0x1234, SRV_NAME ".", DNS_TYPE_SRV), n);
    CU_ASSERT_EQUAL(memcmp(q, q2, (size_t)n), 0);
    /* the id is 16 bits */
    CU_ASSERT_EQUAL(dns_query_build(q2, sizeof q2, 0x51234, SRV_NAME, DNS_TYPE_SRV), n);
    CU_ASSERT_EQUAL(memcmp(q, q2, (size_t)n), 0);
    /* no room */
    CU_ASSERT_EQUAL(dns_query_build(q2, (size_t)n - 1, 1, SRV_NAME, DNS_TYPE_SRV), -1);
    CU_ASSERT_EQUAL(dns_query_build(q2, sizeof q2, 1, SRV_NAME, 0), -1);
}

static void test_names(void)
{
    char long_label[80], long_name[300];

    CU_ASSERT_TRUE(dns_name_ok("a"));
    CU_ASSERT_TRUE(dns_name_ok("vllm.default.svc.cluster.local."));
    CU_ASSERT_TRUE(dns_name_ok("_http._tcp.x"));
    CU_ASSERT_FALSE(dns_name_ok(NULL));
    CU_ASSERT_FALSE(dns_name_ok(""));
    CU_ASSERT_FALSE(dns_name_ok("."));
    CU_ASSERT_FALSE(dns_name_ok("a..b"));
    CU_ASSERT_FALSE(dns_name_ok(".a"));
    CU_ASSERT_FALSE(dns_name_ok("a.."));
    CU_ASSERT_FALSE(dns_name_ok("a b"));
    CU_ASSERT_FALSE(dns_name_ok("a\\.b"));
    CU_ASSERT_FALSE(dns_name_ok("caf\xc3\xa9"));
    memset(long_label, 'x', 64);
    long_label[64] = '\0';
    CU_ASSERT_FALSE(dns_name_ok(long_label));
    long_label[63] = '\0';
    CU_ASSERT_TRUE(dns_name_ok(long_label));
    /* 253 bytes is the most: 255 on the wire */
    memset(long_name, 'a', 253);
    for (int i = 1; i < 253; i += 2)
        long_name[i] = '.';
    long_name[253] = '\0';
    CU_ASSERT_TRUE(dns_name_ok(long_name));
    long_name[253] = 'a';
    long_name[254] = '\0';
    CU_ASSERT_FALSE(dns_name_ok(long_name));
}

/* ---- answers ---- */

static void test_srv_compressed(void)
{
    struct pkt p;
    struct dns_answer a;
    char err[160];

    header(&p, 0xbeef, RESPONSE, 1, 3);
    question(&p, SRV_NAME, DNS_TYPE_SRV);          /* "svc" at 23, "example" at 27 */
    rr(&p, 12, DNS_TYPE_SRV, 30, 6 + 8);            /* target pod-a.svc.example */
    p16(&p, 10), p16(&p, 5), p16(&p, 8000);
    pname(&p, "pod-a", 23);
    rr(&p, 12, DNS_TYPE_SRV, 0x80000001UL, 6 + 8); /* a TTL past 2^31 means 0 */
    p16(&p, 20), p16(&p, 0), p16(&p, 8001);
    pname(&p, "pod-b", 23);
    rr(&p, 12, DNS_TYPE_SRV, 30, 7);                /* ".": not offered there */
    p16(&p, 0), p16(&p, 0), p16(&p, 0);
    p8(&p, 0);
    /* the server may change the question's case (0x20 hack) */
    p.b[14] = 'H';
    CU_ASSERT_EQUAL_FATAL(parse(&p, 0xbeef, SRV_NAME, DNS_TYPE_SRV, &a, err), DNS_ANSWER_OK);
    CU_ASSERT_EQUAL(a.rcode, DNS_RCODE_NOERROR);
    CU_ASSERT_EQUAL_FATAL(a.n, 3);
    CU_ASSERT_STRING_EQUAL(a.rec[0].text, "pod-a.svc.example");
    CU_ASSERT_EQUAL(a.rec[0].priority, 10);
    CU_ASSERT_EQUAL(a.rec[0].weight, 5);
    CU_ASSERT_EQUAL(a.rec[0].port, 8000);
    CU_ASSERT_EQUAL(a.rec[0].ttl, 30);
    CU_ASSERT_STRING_EQUAL(a.rec[1].text, "pod-b.svc.example");
    CU_ASSERT_EQUAL(a.rec[1].port, 8001);
    CU_ASSERT_EQUAL(a.rec[1].ttl, 0);
    CU_ASSERT_STRING_EQUAL(a.rec[2].text, "");
    dns_answer_free(&a);
    /* the asked name with a final '.' is the same */
    CU_ASSERT_EQUAL(parse(&p, 0xbeef, SRV_NAME ".", DNS_TYPE_SRV, &a, err), DNS_ANSWER_OK);
    CU_ASSERT_EQUAL(a.n, 3);
    dns_answer_free(&a);
}

static void test_addresses(void)
{
    static const unsigned char v6[16] = { 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
    struct pkt p;
    struct dns_answer a;
    char err[160];

    header(&p, 7, RESPONSE, 1, 3);
    question(&p, "vllm.ns.svc", DNS_TYPE_A);
    rr(&p, 12, DNS_TYPE_A, 5, 4);
    pbytes(&p, "\x0a\x01\x02\x03", 4);
    /* another class, and another type: not ours to read */
    pptr(&p, 12), p16(&p, DNS_TYPE_A), p16(&p, 3), p32(&p, 5), p16(&p, 4);
    pbytes(&p, "\x0a\x09\x09\x09", 4);
    rr(&p, 12, 46 /* RRSIG */, 5, 3);
    pbytes(&p, "abc", 3);
    CU_ASSERT_EQUAL_FATAL(parse(&p, 7, "vllm.ns.svc", DNS_TYPE_A, &a, err), DNS_ANSWER_OK);
    CU_ASSERT_EQUAL_FATAL(a.n, 1);
    CU_ASSERT_STRING_EQUAL(a.rec[0].text, "10.1.2.3");
    CU_ASSERT_EQUAL(a.rec[0].ttl, 5);
    dns_answer_free(&a);

    header(&p, 8, RESPONSE, 1, 1);
    question(&p, "vllm.ns.svc", DNS_TYPE_AAAA);
    rr(&p, 12, DNS_TYPE_AAAA, 5, 16);
    pbytes(&p, v6, 16);
    CU_ASSERT_EQUAL_FATAL(parse(&p, 8, "vllm.ns.svc", DNS_TYPE_AAAA, &a, err), DNS_ANSWER_OK);
    CU_ASSERT_EQUAL_FATAL(a.n, 1);
    CU_ASSERT_STRING_EQUAL(a.rec[0].text, "fd00::1");
    dns_answer_free(&a);

    /* no data: an empty answer */
    header(&p, 9, RESPONSE, 1, 0);
    question(&p, "vllm.ns.svc", DNS_TYPE_AAAA);
    CU_ASSERT_EQUAL(parse(&p, 9, "vllm.ns.svc", DNS_TYPE_AAAA, &a, err), DNS_ANSWER_OK);
    CU_ASSERT_EQUAL(a.n, 0);
    CU_ASSERT_PTR_NULL(a.rec);
}

static void test_cname_chain(void)
{
    struct pkt p;
    struct dns_answer a;
    char err[160];

    unsigned y, z;

    /* www.x -> y.x -> z.x, whose A record counts; y.x's own does not */
    header(&p, 1, RESPONSE, 1, 4);
    question(&p, "www.x", DNS_TYPE_A); /* "x" at 16 */
    rr(&p, 12, DNS_TYPE_CNAME, 60, 4);
    y = (unsigned)p.n;
    pname(&p, "y", 16);
    rr(&p, y, DNS_TYPE_A, 60, 4);
    pbytes(&p, "\x01\x01\x01\x01", 4);
    rr(&p, y, DNS_TYPE_CNAME, 60, 4);
    z = (unsigned)p.n;
    pname(&p, "z", 16);
    rr(&p, z, DNS_TYPE_A, 60, 4);
    pbytes(&p, "\x02\x02\x02\x02", 4);
    CU_ASSERT_EQUAL_FATAL(parse(&p, 1, "www.x", DNS_TYPE_A, &a, err), DNS_ANSWER_OK);
    CU_ASSERT_EQUAL_FATAL(a.n, 1);
    CU_ASSERT_STRING_EQUAL(a.rec[0].text, "2.2.2.2");
    dns_answer_free(&a);

    /* a loop: y.x -> www.x */
    header(&p, 1, RESPONSE, 1, 2);
    question(&p, "www.x", DNS_TYPE_A);
    rr(&p, 12, DNS_TYPE_CNAME, 60, 4);
    y = (unsigned)p.n;
    pname(&p, "y", 16);
    rr(&p, y, DNS_TYPE_CNAME, 60, 2);
    pptr(&p, 12);
    CU_ASSERT_EQUAL(parse(&p, 1, "www.x", DNS_TYPE_A, &a, err), DNS_ANSWER_BAD);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "CNAME"));
}

static void test_rcodes(void)
{
    struct pkt p;
    struct dns_answer a;
    char err[160];

    header(&p, 2, RESPONSE | 3, 1, 0);
    question(&p, SRV_NAME, DNS_TYPE_SRV);
    CU_ASSERT_EQUAL(parse(&p, 2, SRV_NAME, DNS_TYPE_SRV, &a, err), DNS_ANSWER_OK);
    CU_ASSERT_EQUAL(a.rcode, DNS_RCODE_NXDOMAIN);
    CU_ASSERT_EQUAL(a.n, 0);

    header(&p, 2, RESPONSE | 2, 1, 0);
    question(&p, SRV_NAME, DNS_TYPE_SRV);
    CU_ASSERT_EQUAL(parse(&p, 2, SRV_NAME, DNS_TYPE_SRV, &a, err), DNS_ANSWER_BAD);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "SERVFAIL"));

    /* an error may come without the question */
    header(&p, 2, RESPONSE | 5, 0, 0);
    CU_ASSERT_EQUAL(parse(&p, 2, SRV_NAME, DNS_TYPE_SRV, &a, err), DNS_ANSWER_BAD);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "REFUSED"));

    header(&p, 2, RESPONSE | 9, 1, 0);
    question(&p, SRV_NAME, DNS_TYPE_SRV);
    CU_ASSERT_EQUAL(parse(&p, 2, SRV_NAME, DNS_TYPE_SRV, &a, err), DNS_ANSWER_BAD);
    CU_ASSERT_STRING_EQUAL(err, "rcode 9");

    /* truncated: no TCP fallback */
    header(&p, 2, RESPONSE | 0x0200, 1, 0);
    question(&p, SRV_NAME, DNS_TYPE_SRV);
    CU_ASSERT_EQUAL(parse(&p, 2, SRV_NAME, DNS_TYPE_SRV, &a, err), DNS_ANSWER_BAD);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "truncated"));

    /* a type this codec does not read */
    CU_ASSERT_EQUAL(dns_answer_parse(p.b, p.n, 2, SRV_NAME, DNS_TYPE_CNAME, &a, err, sizeof err),
                    DNS_ANSWER_BAD);
}

/* Datagrams that are not the answer to our query are ignored, not taken
 * as an error: a forger cannot end a lookup by guessing badly. */
static void test_not_ours(void)
{
    struct pkt p;
    struct dns_answer a;
    char err[160];

    header(&p, 3, RESPONSE, 1, 0);
    question(&p, SRV_NAME, DNS_TYPE_SRV);
    CU_ASSERT_EQUAL(parse(&p, 4, SRV_NAME, DNS_TYPE_SRV, &a, err), DNS_ANSWER_NOT_OURS);
    CU_ASSERT_EQUAL(parse(&p, 3, "_other._tcp.svc.example", DNS_TYPE_SRV, &a, err),
                    DNS_ANSWER_NOT_OURS);
    CU_ASSERT_EQUAL(dns_answer_parse(p.b, p.n, 3, SRV_NAME, DNS_TYPE_A, &a, err, sizeof err),
                    DNS_ANSWER_NOT_OURS);
    CU_ASSERT_EQUAL(dns_answer_parse(p.b, 11, 3, SRV_NAME, DNS_TYPE_SRV, &a, err, sizeof err),
                    DNS_ANSWER_NOT_OURS);
    CU_ASSERT_EQUAL(dns_answer_parse(p.b, p.n - 1, 3, SRV_NAME, DNS_TYPE_SRV, &a, err,
                                     sizeof err), DNS_ANSWER_NOT_OURS);
    p.b[2] &= 0x7f; /* a query, not a response */
    CU_ASSERT_EQUAL(parse(&p, 3, SRV_NAME, DNS_TYPE_SRV, &a, err), DNS_ANSWER_NOT_OURS);
    p.b[2] = 0x80 | 0x10; /* opcode 2 */
    CU_ASSERT_EQUAL(parse(&p, 3, SRV_NAME, DNS_TYPE_SRV, &a, err), DNS_ANSWER_NOT_OURS);
    header(&p, 3, RESPONSE, 2, 0); /* two questions */
    question(&p, SRV_NAME, DNS_TYPE_SRV);
    question(&p, SRV_NAME, DNS_TYPE_SRV);
    CU_ASSERT_EQUAL(parse(&p, 3, SRV_NAME, DNS_TYPE_SRV, &a, err), DNS_ANSWER_NOT_OURS);
    header(&p, 3, RESPONSE, 1, 0); /* class CH */
    pname(&p, SRV_NAME, 0);
    p16(&p, DNS_TYPE_SRV);
    p16(&p, 3);
    CU_ASSERT_EQUAL(parse(&p, 3, SRV_NAME, DNS_TYPE_SRV, &a, err), DNS_ANSWER_NOT_OURS);
}

/* One SRV answer whose record is broken as `breaker` says. */
static int broken_srv(void (*breaker)(struct pkt *p), char *err)
{
    struct pkt p;
    struct dns_answer a;

    header(&p, 5, RESPONSE, 1, 1);
    question(&p, SRV_NAME, DNS_TYPE_SRV);
    breaker(&p);
    return parse(&p, 5, SRV_NAME, DNS_TYPE_SRV, &a, err);
}

static void forward_pointer(struct pkt *p)
{
    rr(p, 12, DNS_TYPE_SRV, 1, 8);
    p16(p, 0), p16(p, 0), p16(p, 80);
    pptr(p, (unsigned)p->n + 2); /* after itself */
}

static void self_pointer(struct pkt *p)
{
    rr(p, 12, DNS_TYPE_SRV, 1, 8);
    p16(p, 0), p16(p, 0), p16(p, 80);
    pptr(p, (unsigned)p->n);
}

/* a label then a pointer back to it: each jump must go further back */
static void label_loop(struct pkt *p)
{
    size_t at;
    rr(p, 12, DNS_TYPE_SRV, 1, 6 + 4);
    p16(p, 0), p16(p, 0), p16(p, 80);
    at = p->n;
    p8(p, 1), p8(p, 'a');
    pptr(p, (unsigned)at);
}

static void header_pointer(struct pkt *p)
{
    rr(p, 12, DNS_TYPE_SRV, 1, 8);
    p16(p, 0), p16(p, 0), p16(p, 80);
    pptr(p, 4);
}

static void extended_label(struct pkt *p)
{
    rr(p, 12, DNS_TYPE_SRV, 1, 9);
    p16(p, 0), p16(p, 0), p16(p, 80);
    p8(p, 0x41), p8(p, 'a'), p8(p, 0);
}

static void rdata_past_end(struct pkt *p)
{
    rr(p, 12, DNS_TYPE_SRV, 1, 200);
    p16(p, 0), p16(p, 0), p16(p, 80);
    pname(p, "a", 0);
}

static void target_short_of_rdata(struct pkt *p)
{
    rr(p, 12, DNS_TYPE_SRV, 1, 6 + 3 + 1);
    p16(p, 0), p16(p, 0), p16(p, 80);
    pname(p, "a", 0);
    p8(p, 0); /* a stray byte inside the data */
}

static void target_past_rdata(struct pkt *p)
{
    rr(p, 12, DNS_TYPE_SRV, 1, 6 + 2);
    p16(p, 0), p16(p, 0), p16(p, 80);
    pname(p, "abc", 0);
}

static void srv_too_short(struct pkt *p)
{
    rr(p, 12, DNS_TYPE_SRV, 1, 6);
    p16(p, 0), p16(p, 0), p16(p, 80);
}

static void control_byte(struct pkt *p)
{
    rr(p, 12, DNS_TYPE_SRV, 1, 6 + 4);
    p16(p, 0), p16(p, 0), p16(p, 80);
    p8(p, 2), p8(p, 'a'), p8(p, '\n'), p8(p, 0);
}

static void dot_in_label(struct pkt *p)
{
    rr(p, 12, DNS_TYPE_SRV, 1, 6 + 5);
    p16(p, 0), p16(p, 0), p16(p, 80);
    p8(p, 3), p8(p, 'a'), p8(p, '.'), p8(p, 'b'), p8(p, 0);
}

static void cut_pointer(struct pkt *p)
{
    rr(p, 12, DNS_TYPE_SRV, 1, 7);
    p16(p, 0), p16(p, 0), p16(p, 80);
    p8(p, 0xc0); /* half a pointer, at the end of the packet */
}

static void more_answers_than_room(struct pkt *p)
{
    p->b[7] = 200; /* 200 answers in a few bytes */
    rr(p, 12, DNS_TYPE_SRV, 1, 7);
    p16(p, 0), p16(p, 0), p16(p, 80);
    p8(p, 0);
}

static void second_answer_cut(struct pkt *p)
{
    p->b[7] = 2;
    rr(p, 12, DNS_TYPE_SRV, 1, 7);
    p16(p, 0), p16(p, 0), p16(p, 80);
    p8(p, 0);
    pptr(p, 12), p16(p, DNS_TYPE_SRV), p16(p, 1), p32(p, 1); /* no rdlength */
}

static void a_of_five_bytes(struct pkt *p)
{
    rr(p, 12, DNS_TYPE_A, 1, 5); /* an A record, even of another owner type */
    pbytes(p, "\x01\x02\x03\x04\x05", 5);
}

/* 255 bytes on the wire at most, even when pointers make the name: the
 * parts stand in the data of a record of a type not read */
static void name_too_long(struct pkt *p)
{
    unsigned prev = 12 + 23; /* the root byte ending the question's name */
    size_t rdlen_at, start;
    char label[64];

    memset(label, 'x', 63);
    label[63] = '\0';
    p->b[7] = 2;
    rr(p, 12, 99, 1, 0);
    rdlen_at = p->n - 2;
    start = p->n;
    /* four 63-byte labels, each ending with a pointer to the one before:
     * 4 * 64 + 1 = 257 bytes */
    for (int i = 0; i < 4; i++) {
        unsigned at = (unsigned)p->n;
        pname(p, label, prev);
        prev = at;
    }
    p->b[rdlen_at] = (unsigned char)((p->n - start) >> 8);
    p->b[rdlen_at + 1] = (unsigned char)(p->n - start);
    rr(p, 12, DNS_TYPE_SRV, 1, 8);
    p16(p, 0), p16(p, 0), p16(p, 80);
    pptr(p, prev);
}

static void test_malformed(void)
{
    static const struct {
        const char *what;
        void (*breaker)(struct pkt *p);
    } cases[] = {
        { "a pointer forward", forward_pointer },
        { "a pointer to itself", self_pointer },
        { "a label and a pointer back to it", label_loop },
        { "a pointer into the header", header_pointer },
        { "an extended label type", extended_label },
        { "rdlength past the end", rdata_past_end },
        { "a target short of the data", target_short_of_rdata },
        { "a target past the data", target_past_rdata },
        { "SRV data of 6 bytes", srv_too_short },
        { "a control byte in a label", control_byte },
        { "a '.' in a label", dot_in_label },
        { "half a pointer", cut_pointer },
        { "200 answers counted", more_answers_than_room },
        { "a second answer cut", second_answer_cut },
        { "an A record of 5 bytes", a_of_five_bytes },
        { "a name of 257 bytes", name_too_long },
    };
    char err[160];

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err[0] = '\0';
        int rc = broken_srv(cases[i].breaker, err);
        if (rc != DNS_ANSWER_BAD || strstr(err, "malformed") == NULL)
            fprintf(stderr, "\n  %s: %d '%s'\n", cases[i].what, rc, err);
        CU_ASSERT_EQUAL(rc, DNS_ANSWER_BAD);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "malformed"));
    }
}

/* What dnsmasq 2.90 answered for _vllm._tcp.sy.test SRV (with the A record
 * of the target in the additional section). */
static void test_dnsmasq_answer(void)
{
    static const char hex[] =
        "7dbd85800001000100000001055f766c6c6d045f74637002737904746573740000210001c00c0021"
        "0001000000000011000000011f410161027379047465737400c036000100010000000000047f0000"
        "02";
    struct pkt p = { .n = 0 };
    struct dns_answer a;
    char err[160];

    for (size_t i = 0; hex[i] && hex[i + 1]; i += 2) {
        unsigned v;
        sscanf(hex + i, "%2x", &v);
        p8(&p, v);
    }
    CU_ASSERT_EQUAL_FATAL(parse(&p, 0x7dbd, "_vllm._tcp.sy.test", DNS_TYPE_SRV, &a, err),
                          DNS_ANSWER_OK);
    CU_ASSERT_EQUAL_FATAL(a.n, 1);
    CU_ASSERT_STRING_EQUAL(a.rec[0].text, "a.sy.test");
    CU_ASSERT_EQUAL(a.rec[0].port, 8001);
    CU_ASSERT_EQUAL(a.rec[0].weight, 1);
    dns_answer_free(&a);
}

/* A query, turned into its own empty answer, reads back as ours. */
static void test_round_trip(void)
{
    unsigned char q[DNS_QUERY_MAX];
    struct dns_answer a;
    char err[160];
    int n = dns_query_build(q, sizeof q, 0xabcd, "_x._tcp.Example.COM.", DNS_TYPE_SRV);

    CU_ASSERT_FATAL(n > 0);
    q[2] |= 0x80;
    CU_ASSERT_EQUAL(dns_answer_parse(q, (size_t)n, 0xabcd, "_x._tcp.example.com", DNS_TYPE_SRV,
                                     &a, err, sizeof err), DNS_ANSWER_OK);
    CU_ASSERT_EQUAL(a.n, 0);
}

void register_dns_packet_tests(void)
{
    UNIT_SUITE("dns_packet", UNIT_TEST(test_query_layout), UNIT_TEST(test_names),
               UNIT_TEST(test_srv_compressed), UNIT_TEST(test_addresses),
               UNIT_TEST(test_cname_chain), UNIT_TEST(test_rcodes), UNIT_TEST(test_not_ours),
               UNIT_TEST(test_malformed), UNIT_TEST(test_dnsmasq_answer),
               UNIT_TEST(test_round_trip));
}
