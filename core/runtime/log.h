/* log: leveled lines on stderr.  Thread-safe (one write(2) per line). */
#ifndef SY_LOG_H
#define SY_LOG_H

#include <switchyard/plugin.h> /* SY_LOG_* levels, SY_PRINTF */
#include <stdarg.h>

/* Set by the main thread at start and at each reload while workers log:
 * atomics, so a reload never races a worker's read. */
extern _Atomic int log_level; /* lines below this level are dropped before formatting */

enum log_format { LOG_FORMAT_TEXT = 0, LOG_FORMAT_JSON = 1 };
extern _Atomic int log_format;
extern _Atomic int log_access_on; /* one access line per proxied request */

/* Log to `path` (appending) instead of stderr.  -1 with errno. */
int log_open(const char *path);
/* Open the log file again under its name (logrotate, SIGUSR1); lines
 * written meanwhile go to the old file.  0 when there is no file. */
int log_reopen(void);

/* One proxied request, for the access log. */
struct access_entry {
    const char *id;
    const char *method;
    const char *path;
    const char *model;        /* as asked; NULL when the body had none */
    const char *model_served; /* NULL when nothing served it */
    const char *backend;      /* the last backend tried, or NULL */
    const char *fallback;     /* "A>B" after a fallback, or NULL */
    int status;               /* sent to the client; 499: the client left */
    int attempts;
    unsigned long long bytes; /* body bytes sent to the client */
    double duration;          /* seconds, arrival to the end */
    double ttfb;              /* seconds to the first byte sent, or < 0 */
    const char *error;        /* the router's own error message, or NULL */
};
/* The text format writes one record per line whatever the values hold:
 * each is written as log_quote_value says. */
void log_access(const struct access_entry *e);
/* Append a value for a key=value line at buf[len] (room: the buffer's
 * size) and return the new length: "-" for NULL; bare when it is all
 * bytes 0x21-0x7E other than '"', '\' and '='; otherwise in double quotes
 * with JSON's escapes, '=' and control bytes as \u00XX (so neither a line
 * break nor a "key=" can stand inside a value).  Cut to fit, quotes kept. */
size_t log_quote_value(char *buf, size_t len, size_t room, const char *s);

/* "debug", "info", "warning" (or "warn"), "error" -> level, and
 * vllm_router's "trace" (debug) and "critical" (error); -1 if unknown. */
int log_parse_level(const char *name);
void log_msg(int level, const char *fmt, ...) SY_PRINTF(2, 3);
void log_vmsg(int level, const char *prefix, const char *fmt, va_list ap);

#define LOG_DEBUG(...) do { if (log_level <= SY_LOG_DEBUG) log_msg(SY_LOG_DEBUG, __VA_ARGS__); } while (0)
#define LOG_INFO(...) do { if (log_level <= SY_LOG_INFO) log_msg(SY_LOG_INFO, __VA_ARGS__); } while (0)
#define LOG_WARN(...) log_msg(SY_LOG_WARNING, __VA_ARGS__)
#define LOG_ERROR(...) log_msg(SY_LOG_ERROR, __VA_ARGS__)

#endif
