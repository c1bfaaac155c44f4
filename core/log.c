/*
 * log: one line per message on stderr, formatted on the stack and written
 * with a single write(2), so lines from different threads never interleave.
 */
#define _POSIX_C_SOURCE 200809L /* strdup, strndup, gmtime_r */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* PIPE_BUF on Linux: writes up to this size to a pipe are atomic. */
#define LOG_LINE_MAX 4096

int log_level = SY_LOG_INFO;

int log_parse_level(const char *name)
{
    static const struct { const char *name; int level; } names[] = {
        {"debug", SY_LOG_DEBUG}, {"info", SY_LOG_INFO},
        {"warning", SY_LOG_WARNING}, {"warn", SY_LOG_WARNING},
        {"error", SY_LOG_ERROR},
    };
    if (!name)
        return -1;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(name, names[i].name) == 0)
            return names[i].level;
    return -1;
}

static const char *level_name(int level)
{
    switch (level) {
    case SY_LOG_DEBUG: return "DEBUG";
    case SY_LOG_INFO: return "INFO";
    case SY_LOG_WARNING: return "WARNING";
    default: return "ERROR";
    }
}

/* Clamp an snprintf result to what was really written into a buffer of
 * `room` bytes. */
static size_t written(int n, size_t room)
{
    if (n < 0)
        return 0;
    return (size_t)n < room ? (size_t)n : room - 1;
}

void log_vmsg(int level, const char *prefix, const char *fmt, va_list ap)
{
    char buf[LOG_LINE_MAX];
    const size_t room = sizeof buf - 1; /* keep one byte for the newline */
    struct timespec ts;
    struct tm tm;
    size_t len;

    if (level < log_level)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    len = strftime(buf, room, "%Y-%m-%dT%H:%M:%S", &tm);
    len += written(snprintf(buf + len, room - len, ".%03dZ %s ",
                            (int)(ts.tv_nsec / 1000000), level_name(level)),
                   room - len);
    if (prefix)
        len += written(snprintf(buf + len, room - len, "[%s] ", prefix),
                       room - len);
    size_t body = len;
    int n = vsnprintf(buf + len, room - len, fmt, ap);
    len += written(n, room - len);
    if (n > 0 && (size_t)n >= room - body && len >= 3)
        memcpy(buf + len - 3, "...", 3); /* say it was cut */
    /* Names from requests end up in messages: keep it one line. */
    for (size_t i = body; i < len; i++)
        if ((unsigned char)buf[i] < 0x20 && buf[i] != '\t')
            buf[i] = ' ';
    buf[len++] = '\n';

    for (size_t off = 0; off < len;) {
        ssize_t w = write(STDERR_FILENO, buf + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* nowhere left to report it */
        }
        off += (size_t)w;
    }
}

void log_msg(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, NULL, fmt, ap);
    va_end(ap);
}
