/*
 * usage_scan: the token counts of an answer, read as its bytes are
 * relayed.  OpenAI-shaped answers end with a "usage" object
 * ({"prompt_tokens":5,"completion_tokens":7,...}): in the JSON body, or in a
 * stream's last event (stream_options.include_usage).  The scanner looks
 * for those two keys in whatever comes, split anywhere across reads, and
 * keeps the last value of each: no JSON tree, no copy of the body, memchr
 * from quote to quote.  A key inside a string (an escaped \"prompt_tokens\")
 * is not one: its closing quote is escaped.
 */
#ifndef SY_USAGE_SCAN_H
#define SY_USAGE_SCAN_H

#include <stddef.h>

#define USAGE_SCAN_CARRY 64 /* bytes kept from one read to the next */

struct usage_scan {
    long long prompt;      /* -1 until seen */
    long long completion;  /* -1 until seen */
    char carry[USAGE_SCAN_CARRY]; /* the end of the previous read, from a '"' */
    size_t ncarry;
};

void usage_scan_init(struct usage_scan *u);
void usage_scan_feed(struct usage_scan *u, const char *data, size_t len);

#endif
