/*
 * log: one line per message on stderr, formatted on the stack and written
 * with a single write(2), so lines from different threads never interleave.
 */
#define _POSIX_C_SOURCE 200809L /* strdup, strndup, gmtime_r */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* PIPE_BUF on Linux: writes up to this size to a pipe are atomic. */
#define LOG_LINE_MAX 4096

_Atomic int log_level = SY_LOG_INFO;
_Atomic int log_format = LOG_FORMAT_TEXT;
_Atomic int log_access_on = 1;

/* Clamp an snprintf result to what was really written into a buffer of
 * `room` bytes. */
static size_t written(int n, size_t room)
{
    if (n < 0)
        return 0;
    return (size_t)n < room ? (size_t)n : room - 1;
}

/* Writers always use this descriptor; a reopen dup2()s the new file onto
 * it, so no writer ever sees a closed descriptor. */
static int log_fd = STDERR_FILENO;
static char *log_path;

int log_open(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    free(log_path);
    log_path = strdup(path);
    if (log_fd == STDERR_FILENO) {
        log_fd = fd;
        return 0;
    }
    dup2(fd, log_fd);
    close(fd);
    return 0;
}

int log_reopen(void)
{
    int fd;

    if (log_path == NULL)
        return 0;
    fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    dup2(fd, log_fd);
    close(fd);
    return 0;
}

static void write_line(const char *buf, size_t len)
{
    for (size_t off = 0; off < len;) {
        ssize_t w = write(log_fd, buf + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* nowhere left to report it */
        }
        off += (size_t)w;
    }
}

/* Append s as the inside of a JSON string; returns the new length. */
static size_t json_escape(char *buf, size_t len, size_t room, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (; s && *s && len + 7 < room; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[len++] = '\\';
            buf[len++] = (char)c;
        } else if (c < 0x20) {
            memcpy(buf + len, "\\u00", 4);
            buf[len + 4] = hex[c >> 4];
            buf[len + 5] = hex[c & 15];
            len += 6;
        } else {
            buf[len++] = (char)c;
        }
    }
    return len;
}

/* A value needs quotes unless it is all bytes 0x21-0x7E other than the
 * quote, the backslash and '=' (empty needs them too). */
static int logfmt_bare(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c >= 0x7F || c == '"' || c == '\\' || c == '=')
            return 0;
    }
    return 1;
}

size_t log_quote_value(char *buf, size_t len, size_t room, const char *s)
{
    static const char hex[] = "0123456789abcdef";

    if (len + 3 > room)
        return len;
    if (s == NULL) {
        buf[len++] = '-';
        return len;
    }
    if (logfmt_bare(s)) {
        size_t n = strlen(s);
        if (n > room - 1 - len)
            n = room - 1 - len;
        memcpy(buf + len, s, n);
        return len + n;
    }
    buf[len++] = '"';
    /* room for the longest escape and the closing quote, always */
    for (; *s && len + 8 < room; s++) {
        unsigned char c = (unsigned char)*s;
        const char *esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n"
                        : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
        if (esc != NULL) {
            buf[len++] = esc[0];
            buf[len++] = esc[1];
        } else if (c < 0x20 || c == 0x7F || c == '=') {
            /* '=' too: no key=value can be read inside a quoted value,
             * even by a parser that knows nothing of quotes */
            memcpy(buf + len, "\\u00", 4);
            buf[len + 4] = hex[c >> 4];
            buf[len + 5] = hex[c & 15];
            len += 6;
        } else {
            buf[len++] = (char)c;
        }
    }
    buf[len++] = '"';
    return len;
}

/* " key=value", the value by log_quote_value. */
static size_t logfmt_field(char *buf, size_t len, size_t room, const char *key,
                           const char *value)
{
    len += written(snprintf(buf + len, room - len, " %s=", key), room - len);
    return log_quote_value(buf, len, room, value);
}

static size_t timestamp(char *buf, size_t room)
{
    struct timespec ts;
    struct tm tm;
    size_t len;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    len = strftime(buf, room, "%Y-%m-%dT%H:%M:%S", &tm);
    return len + written(snprintf(buf + len, room - len, ".%03dZ", (int)(ts.tv_nsec / 1000000)),
                         room - len);
}

int log_parse_level(const char *name)
{
    static const struct { const char *name; int level; } names[] = {
        {"debug", SY_LOG_DEBUG}, {"info", SY_LOG_INFO},
        {"warning", SY_LOG_WARNING}, {"warn", SY_LOG_WARNING},
        {"error", SY_LOG_ERROR},
        /* vllm_router's (uvicorn's) extremes, to the nearest we have */
        {"critical", SY_LOG_ERROR}, {"trace", SY_LOG_DEBUG},
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


void log_vmsg(int level, const char *prefix, const char *fmt, va_list ap)
{
    char msg[LOG_LINE_MAX], buf[LOG_LINE_MAX];
    const size_t room = sizeof buf - 1; /* keep one byte for the newline */
    size_t len;
    int n;

    if (level < log_level)
        return;
    n = vsnprintf(msg, sizeof msg, fmt, ap);
    if (n > 0 && (size_t)n >= sizeof msg)
        memcpy(msg + sizeof msg - 4, "...", 4); /* say it was cut */
    /* Names from requests end up in messages: keep it one line. */
    for (char *c = msg; *c; c++)
        if ((unsigned char)*c < 0x20 && *c != '\t')
            *c = ' ';
    if (log_format == LOG_FORMAT_JSON) {
        len = written(snprintf(buf, room, "{\"ts\":\""), room);
        len += timestamp(buf + len, room - len);
        len += written(snprintf(buf + len, room - len, "\",\"level\":\"%s\",", level_name(level)),
                       room - len);
        if (prefix) {
            len += written(snprintf(buf + len, room - len, "\"plugin\":\""), room - len);
            len = json_escape(buf, len, room, prefix);
            len += written(snprintf(buf + len, room - len, "\","), room - len);
        }
        len += written(snprintf(buf + len, room - len, "\"msg\":\""), room - len);
        len = json_escape(buf, len, room - 2, msg);
        buf[len++] = '"';
        buf[len++] = '}';
    } else {
        len = timestamp(buf, room);
        n = snprintf(buf + len, room - len, " %s %s%s%s%s", level_name(level),
                     prefix ? "[" : "", prefix ? prefix : "", prefix ? "] " : "", msg);
        if (n > 0 && (size_t)n >= room - len)
            memcpy(buf + room - 4, "...", 3); /* cut to one atomic write */
        len += written(n, room - len);
    }
    buf[len++] = '\n';
    write_line(buf, len);
}

void log_access(const struct access_entry *e)
{
    char buf[LOG_LINE_MAX];
    const size_t room = sizeof buf - 1;
    size_t len;

    if (!log_access_on)
        return;
    if (log_format == LOG_FORMAT_JSON) {
        static const char *const keys[] = { "request_id", "method", "path", "model",
                                            "model_served", "backend", "fallback", "error" };
        const char *vals[] = { e->id, e->method, e->path, e->model, e->model_served,
                               e->backend, e->fallback, e->error };
        len = written(snprintf(buf, room, "{\"ts\":\""), room);
        len += timestamp(buf + len, room - len);
        len += written(snprintf(buf + len, room - len, "\",\"type\":\"access\""), room - len);
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            if (vals[i] == NULL) {
                len += written(snprintf(buf + len, room - len, ",\"%s\":null", keys[i]), room - len);
                continue;
            }
            len += written(snprintf(buf + len, room - len, ",\"%s\":\"", keys[i]), room - len);
            len = json_escape(buf, len, room - 200, vals[i]);
            len += written(snprintf(buf + len, room - len, "\""), room - len);
        }
        len += written(snprintf(buf + len, room - len,
                                ",\"status\":%d,\"attempts\":%d,\"bytes\":%llu,"
                                "\"latency_ms\":%.3f,\"ttfb_ms\":",
                                e->status, e->attempts, e->bytes, e->duration * 1e3),
                       room - len);
        if (e->ttfb >= 0)
            len += written(snprintf(buf + len, room - len, "%.3f}", e->ttfb * 1e3), room - len);
        else
            len += written(snprintf(buf + len, room - len, "null}"), room - len);
    } else {
        len = timestamp(buf, room);
        len += written(snprintf(buf + len, room - len, " ACCESS"), room - len);
        len = logfmt_field(buf, len, room, "id", e->id);
        len = logfmt_field(buf, len, room, "method", e->method);
        len = logfmt_field(buf, len, room, "path", e->path);
        len = logfmt_field(buf, len, room, "model", e->model);
        len = logfmt_field(buf, len, room, "served", e->model_served);
        len = logfmt_field(buf, len, room, "backend", e->backend);
        len += written(snprintf(buf + len, room - len, " status=%d attempts=%d", e->status,
                                e->attempts), room - len);
        len = logfmt_field(buf, len, room, "fallback", e->fallback);
        len += written(snprintf(buf + len, room - len,
                                " bytes=%llu latency_ms=%.3f ttfb_ms=%.3f", e->bytes,
                                e->duration * 1e3, e->ttfb >= 0 ? e->ttfb * 1e3 : -1.0),
                       room - len);
        if (e->error != NULL)
            len = logfmt_field(buf, len, room, "error", e->error);
    }
    buf[len++] = '\n';
    write_line(buf, len);
}

void log_msg(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, NULL, fmt, ap);
    va_end(ap);
}
