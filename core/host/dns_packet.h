/*
 * dns_packet: one DNS question and its answer on the wire (RFC 1035; SRV,
 * RFC 2782; the EDNS0 OPT record, RFC 6891), for the lookups libevent's
 * evdns does not make (SRV).  No I/O: dns_resolve.c sends and receives.
 *
 * An answer comes from the network and is untrusted: every count, length
 * and compression pointer is checked against the packet, a pointer must
 * point before the name it continues (so no loop is possible), names keep
 * to 255 bytes on the wire and to printable ASCII, and whatever does not
 * fit these rules is an error, never a guess.
 */
#ifndef SY_DNS_PACKET_H
#define SY_DNS_PACKET_H

#include <stddef.h>

#define DNS_TYPE_A 1
#define DNS_TYPE_CNAME 5
#define DNS_TYPE_AAAA 28
#define DNS_TYPE_SRV 33
#define DNS_TYPE_OPT 41
#define DNS_CLASS_IN 1

#define DNS_RCODE_NOERROR 0
#define DNS_RCODE_NXDOMAIN 3

#define DNS_NAME_MAX 253  /* a name as text, without the final '.' */
#define DNS_UDP_MAX 4096  /* the answer size a query offers (EDNS0) */
#define DNS_QUERY_MAX 300 /* room for any query dns_query_build makes */

/* One record of an answer: A and AAAA give an address as text, SRV a
 * target ("" for ".": no service there) and its numbers. */
struct dns_record {
    char text[DNS_NAME_MAX + 1];
    unsigned port, priority, weight;
    unsigned ttl;
};

struct dns_answer {
    int rcode;              /* DNS_RCODE_NOERROR or DNS_RCODE_NXDOMAIN */
    struct dns_record *rec; /* malloc'd; NULL when n is 0 */
    size_t n;
};

enum dns_parse_result {
    DNS_ANSWER_OK = 0,       /* ours, and usable */
    DNS_ANSWER_NOT_OURS = 1, /* another id or question, or no answer at all:
                                a stray or forged datagram; keep waiting */
    DNS_ANSWER_BAD = -1      /* ours, but no records come of it (err says) */
};

/* 1 when `name` can be asked: labels of 1 to 63 bytes of printable ASCII
 * but '.' and '\', at most 253 bytes, one final '.' allowed. */
int dns_name_ok(const char *name);

/* The query for `name` and `type` (class IN) with this id, recursion
 * desired, and an OPT record offering DNS_UDP_MAX bytes of answer.  Its
 * length, or -1 when name is no name or cap is too small. */
int dns_query_build(unsigned char *buf, size_t cap, unsigned id, const char *name, int type);

/* Read an answer to the query (id, name, type) dns_query_build made.
 * DNS_ANSWER_OK: out->rcode is NOERROR, with the records of `type` owned
 * by the name (or by the end of a CNAME chain in the answer; n may be 0),
 * or NXDOMAIN with none.  DNS_ANSWER_NOT_OURS: ignore the datagram.
 * DNS_ANSWER_BAD: err says why (an error rcode, truncation, a malformed
 * packet).  out is empty unless DNS_ANSWER_OK; free it with
 * dns_answer_free. */
int dns_answer_parse(const unsigned char *pkt, size_t len, unsigned id, const char *name,
                     int type, struct dns_answer *out, char *err, size_t errlen);
void dns_answer_free(struct dns_answer *a);

#endif
