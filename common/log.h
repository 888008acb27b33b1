/* log: JSON lines on stderr, one object per line:
 *   {"ts":"2026-11-26T15:40:00.123Z","level":"info","mod":"watch","msg":"relisting","rv":"42"}
 * The message is a constant; variables go in fields, given as a jansson json_pack format for an
 * object plus its arguments, e.g. log_info("watch", "relisting", "{s:s,s:i}", "rv", rv, "n", n).
 * Pass NULL as fields for none. Any bytes may be in string fields (an error message quoting bad
 * input): bytes that are not UTF-8 are written as \xNN, so the line keeps the field; a number
 * that is NaN or infinite (JSON has neither) leaves its field out. The level threshold comes from
 * KUBEFIT_LOG_LEVEL (debug|info|warn|error, default info). Thread-safe: each line is written in
 * one call. */
#ifndef KUBEFIT_LOG_H
#define KUBEFIT_LOG_H

#include <stdio.h>

typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;

void log_emit(log_level level, const char *mod, const char *msg, const char *fields, ...);
/* Redirect output (default stderr); NULL restores stderr. For tests. */
void log_set_stream(FILE *f);
int log_enabled(log_level level);

#define log_debug(mod, msg, ...) log_emit(LOG_DEBUG, mod, msg, __VA_ARGS__)
#define log_info(mod, msg, ...) log_emit(LOG_INFO, mod, msg, __VA_ARGS__)
#define log_warn(mod, msg, ...) log_emit(LOG_WARN, mod, msg, __VA_ARGS__)
#define log_error(mod, msg, ...) log_emit(LOG_ERROR, mod, msg, __VA_ARGS__)

#endif
