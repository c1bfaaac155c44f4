/* log: leveled lines on stderr.  Thread-safe (one write(2) per line). */
#ifndef SY_LOG_H
#define SY_LOG_H

#include <switchyard/plugin.h> /* SY_LOG_* levels, SY_PRINTF */
#include <stdarg.h>

extern int log_level; /* lines below this level are dropped before formatting */

/* "debug", "info", "warning" (or "warn"), "error" -> level; -1 if unknown. */
int log_parse_level(const char *name);
void log_msg(int level, const char *fmt, ...) SY_PRINTF(2, 3);
void log_vmsg(int level, const char *prefix, const char *fmt, va_list ap);

#define LOG_DEBUG(...) do { if (log_level <= SY_LOG_DEBUG) log_msg(SY_LOG_DEBUG, __VA_ARGS__); } while (0)
#define LOG_INFO(...) do { if (log_level <= SY_LOG_INFO) log_msg(SY_LOG_INFO, __VA_ARGS__); } while (0)
#define LOG_WARN(...) log_msg(SY_LOG_WARNING, __VA_ARGS__)
#define LOG_ERROR(...) log_msg(SY_LOG_ERROR, __VA_ARGS__)

#endif
