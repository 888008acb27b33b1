#include "log.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *log_stream;

static const char *level_names[] = {"debug", "info", "warn", "error"};

static log_level threshold(void)
{
    const char *env = getenv("KUBEFIT_LOG_LEVEL");
    if (!env)
        return LOG_INFO;
    for (int i = 0; i < 4; i++)
        if (strcmp(env, level_names[i]) == 0)
            return (log_level)i;
    return LOG_INFO;
}

int log_enabled(log_level level) { return level >= threshold(); }

void log_set_stream(FILE *f)
{
    pthread_mutex_lock(&log_lock);
    log_stream = f;
    pthread_mutex_unlock(&log_lock);
}

void log_emit(log_level level, const char *mod, const char *msg, const char *fields, ...)
{
    if (!log_enabled(level))
        return;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    char ts[40];
    size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - n, ".%03ldZ", now.tv_nsec / 1000000);

    json_t *line = NULL;
    if (fields) {
        va_list ap;
        va_start(ap, fields);
        json_error_t jerr;
        line = json_vpack_ex(&jerr, 0, fields, ap);
        va_end(ap);
    }
    if (!json_is_object(line)) {
        json_decref(line);
        line = json_object();
        if (fields)
            json_object_set_new(line, "log_fields_error", json_string(fields));
    }
    json_t *out = json_pack("{s:s,s:s,s:s,s:s}", "ts", ts, "level", level_names[level], "mod",
                            mod ? mod : "", "msg", msg ? msg : "");
    json_object_update_missing(out, line);
    char *text = json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER);
    pthread_mutex_lock(&log_lock);
    FILE *f = log_stream ? log_stream : stderr;
    if (text) {
        fputs(text, f);
        fputc('\n', f);
        fflush(f);
    }
    pthread_mutex_unlock(&log_lock);
    free(text);
    json_decref(out);
    json_decref(line);
}
