/*
 * prom_text: a strict, bounded, streaming parser of the Prometheus text
 * exposition format 0.0.4 (what vLLM's /metrics serves through
 * prometheus_client), for scraping engine stats from each backend.  No I/O.
 *
 * The input comes from the network and is untrusted: every line, label set
 * and the whole input are bounded, whatever does not fit the grammar is an
 * error naming the line, never a guess, and no input leads to recursion or
 * to memory beyond one line buffer, one label array and a bounded set of
 * the names seen in TYPE lines.
 *
 * Grammar: lines end in '\n' (a '\r' before it is dropped); blank lines
 * and '#' comments are skipped; "# HELP name text" (escapes \\ and \n) and
 * "# TYPE name counter|gauge|histogram|summary|untyped" are checked, and a
 * second TYPE for a name is an error; a sample is
 *   name[{label="value",...}] value [timestamp_ms]
 * with names [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]*,
 * values escaped with \\ \" \n only, a value as Go's ParseFloat reads it
 * (no hex) and an optional integer timestamp.  Spaces and tabs may stand
 * between tokens, and at either end of a line.
 */
#ifndef SY_PROM_TEXT_H
#define SY_PROM_TEXT_H

#include <stddef.h>

struct prom_label {
    const char *name;
    size_t name_len;
    const char *value; /* unescaped; not NUL-terminated, may hold '\n' */
    size_t value_len;
};

struct prom_sample {
    const char *name; /* e.g. "vllm:num_requests_running"; not NUL-terminated */
    size_t name_len;
    const struct prom_label *labels; /* in input order; no two share a name */
    size_t nlabels;
    double value; /* NaN, +Inf and -Inf included */
    int has_timestamp;
    long long timestamp_ms; /* 0 unless has_timestamp */
};

/* Called once per sample line, in input order.  The sample, its names,
 * labels and values are the parser's, borrowed for the call only: copy
 * what is to be kept.  Non-zero stops the parse (PROM_STOPPED). */
typedef int (*prom_sample_cb)(void *arg, const struct prom_sample *s);

/* A field of 0 takes its default: a line of 64 KiB (not counting its
 * "\r\n"), 64 labels in a sample, 16 MiB of input in all. */
struct prom_limits {
    size_t max_line;
    size_t max_labels;
    size_t max_bytes;
};

enum { PROM_OK = 0, PROM_ERROR = -1, PROM_STOPPED = 1 };

/* A parser of one input; lim (NULL: the defaults) is copied.  NULL when
 * out of memory.  Free it with prom_parser_free. */
struct prom_parser *prom_parser_new(const struct prom_limits *lim, prom_sample_cb cb, void *arg);

/* The next len bytes of input, split anywhere: the samples and the result
 * do not depend on how the input is cut.  PROM_OK to go on; PROM_ERROR
 * (prom_error says why) and PROM_STOPPED are final, and every later call
 * returns them again. */
int prom_feed(struct prom_parser *p, const char *data, size_t len);

/* The end of input: a last line without '\n' is parsed.  The same result
 * codes as prom_feed; feeding after it is an error. */
int prom_finish(struct prom_parser *p);

/* "line N: why" after PROM_ERROR, else "".  Owned by the parser. */
const char *prom_error(const struct prom_parser *p);

void prom_parser_free(struct prom_parser *p);

/* Which series the reader wants, by metric name (not NUL-terminated): a
 * sample line of another is checked up to its name (and for its length
 * and NUL bytes, as every line), then skipped without reading its labels
 * or value; so are the HELP and TYPE lines of another.  A scraper that
 * reads 10 series of an engine's 500 pays for little more than 10. */
typedef int (*prom_want_cb)(void *arg, const char *name, size_t len);
void prom_parser_want(struct prom_parser *p, prom_want_cb want);
/* Ready for a new input, with the same callbacks and limits, keeping the
 * buffers it grew (a scraper's next answer). */
void prom_parser_reset(struct prom_parser *p);

/* One buffer at once (new, feed, finish, free); err (errlen > 0) gets
 * "line N: why" on PROM_ERROR, "" otherwise. */
int prom_parse(const char *text, size_t len, const struct prom_limits *lim, prom_sample_cb cb,
               void *arg, char *err, size_t errlen);

#endif
