/*
 * Fuzz the DNS codec (core/host/dns_packet.c) that reads the answers to
 * dns_resolve()'s SRV queries: the input is a datagram from the network,
 * read as the answer to three queries (SRV, A and AAAA) whose id is the
 * input's first two bytes; then the input's first line, as a name, goes
 * through dns_query_build.
 *
 * Invariants: the result is one of the three; an error says why; an
 * answer holds no more records than the packet could, NXDOMAIN none, each
 * an address inet_pton takes back (A, AAAA) or a name dns_name_ok takes
 * (SRV, or "" for "."); a name dns_name_ok takes builds a query, any other
 * does not, and that query, turned into its own empty answer, reads back
 * as ours.  ASan and LeakSanitizer check every path frees what it took.
 */
#include <arpa/inet.h>
#include <string.h>

#include "../../core/host/dns_packet.h"
#include "fuzz.h"

static void check_answer(const uint8_t *data, size_t size, unsigned id, const char *name,
                         int type)
{
    struct dns_answer a;
    char err[256] = "";
    unsigned char addr[16];
    int rc = dns_answer_parse(data, size, id, name, type, &a, err, sizeof err);

    FUZZ_CHECK(rc == DNS_ANSWER_OK || rc == DNS_ANSWER_BAD || rc == DNS_ANSWER_NOT_OURS,
               "result %d", rc);
    if (rc != DNS_ANSWER_OK) {
        FUZZ_CHECK(a.n == 0 && a.rec == NULL, "records beside result %d", rc);
        FUZZ_CHECK(rc != DNS_ANSWER_BAD || err[0] != '\0', "an error without a reason");
        return;
    }
    FUZZ_CHECK(a.rcode == DNS_RCODE_NOERROR || a.rcode == DNS_RCODE_NXDOMAIN, "rcode %d",
               a.rcode);
    FUZZ_CHECK(a.rcode == DNS_RCODE_NOERROR || a.n == 0, "records with NXDOMAIN");
    FUZZ_CHECK(a.n <= size / 11, "%zu records in %zu bytes", a.n, size);
    FUZZ_CHECK((a.n == 0) == (a.rec == NULL), "records array and count disagree");
    for (size_t i = 0; i < a.n; i++) {
        const char *t = a.rec[i].text;
        FUZZ_CHECK(memchr(t, '\0', sizeof a.rec[i].text) != NULL, "record %zu unterminated", i);
        if (type == DNS_TYPE_A)
            FUZZ_CHECK(inet_pton(AF_INET, t, addr) == 1, "A '%s'", t);
        else if (type == DNS_TYPE_AAAA)
            FUZZ_CHECK(inet_pton(AF_INET6, t, addr) == 1, "AAAA '%s'", t);
        else
            FUZZ_CHECK(t[0] == '\0' || dns_name_ok(t), "SRV target '%s'", t);
        FUZZ_CHECK(a.rec[i].port <= 0xffff && a.rec[i].priority <= 0xffff &&
                       a.rec[i].weight <= 0xffff && a.rec[i].ttl <= 0x7fffffffu,
                   "record %zu numbers", i);
    }
    dns_answer_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned id = size >= 2 ? (unsigned)data[0] << 8 | data[1] : 0;
    unsigned char q[DNS_QUERY_MAX];
    char name[300];
    size_t len;
    int n;

    check_answer(data, size, id, "_vllm._tcp.sy.test", DNS_TYPE_SRV);
    check_answer(data, size, id, "vllm.sy.test", DNS_TYPE_A);
    check_answer(data, size, id, "vllm.sy.test", DNS_TYPE_AAAA);

    len = size < sizeof name - 1 ? size : sizeof name - 1;
    memcpy(name, data, len);
    name[len] = '\0';
    name[strcspn(name, "\n")] = '\0';
    n = dns_query_build(q, sizeof q, id, name, DNS_TYPE_SRV);
    FUZZ_CHECK((n > 0) == (dns_name_ok(name) != 0), "built %d for a name judged %d", n,
               dns_name_ok(name));
    if (n > 0) {
        struct dns_answer a;
        char err[256];
        FUZZ_CHECK(n <= DNS_QUERY_MAX, "a query of %d bytes", n);
        q[2] |= 0x80; /* the server's empty answer */
        FUZZ_CHECK(dns_answer_parse(q, (size_t)n, id, name, DNS_TYPE_SRV, &a, err, sizeof err) ==
                       DNS_ANSWER_OK && a.n == 0,
                   "the query for '%s' does not read back", name);
    }
    return 0;
}
