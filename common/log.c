#include "log.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "utf8.h"

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

/* ---- fields: a json_pack format whose strings may hold any bytes ----
 * jansson's pack refuses a string that is not valid UTF-8 and the whole line's fields with it.
 * This packer reads the same format (objects, arrays, s s? s* s# s%, n b i I f, o O o? O? o* O*)
 * and writes invalid bytes as \xNN (utf8_escape), so an error message quoting bad input still
 * reaches the log. Formats with anything else (e.g. the s+ concatenation) go to jansson. */

/* 1 when every character of fmt is one this packer reads. */
static int fields_supported(const char *fmt)
{
    for (const char *p = fmt; *p; p++)
        if (!strchr("{}[]sbnifIoO?*#%:, \t\n", *p))
            return 0;
    return 1;
}

typedef struct {
    const char *p;
    va_list *ap;
    int bad;   /* the format did not parse: the result is dropped */
} packer;

static json_t *omitted(void)
{
    static json_t marker; /* never touched: compared by address */
    return &marker;
}

static void skip_space(packer *k)
{
    while (*k->p == ' ' || *k->p == '\t' || *k->p == '\n' || *k->p == ',' || *k->p == ':')
        k->p++;
}

static json_t *pack_string(packer *k)
{
    const char *s = va_arg(*k->ap, const char *);
    size_t len = 0;
    int opt = 0, omit = 0;
    if (*k->p == '#') {
        k->p++;
        len = (size_t)va_arg(*k->ap, int);
    } else if (*k->p == '%') {
        k->p++;
        len = va_arg(*k->ap, size_t);
    } else {
        len = s ? strlen(s) : 0;
    }
    if (*k->p == '?')
        opt = 1, k->p++;
    else if (*k->p == '*')
        omit = 1, k->p++;
    (void)opt; /* a NULL plain string is an error for jansson; a log line shows null instead */
    if (!s)
        return omit ? omitted() : json_null();
    if (utf8_valid(s, len, NULL) && !memchr(s, 0, len))
        return json_stringn(s, len);
    char *e = utf8_escape(s, len);
    json_t *v = e ? json_string(e) : json_null();
    free(e);
    return v;
}

static json_t *pack_value(packer *k);

static json_t *pack_container(packer *k, int object)
{
    json_t *c = object ? json_object() : json_array();
    const char end = object ? '}' : ']';
    for (;;) {
        skip_space(k);
        if (*k->p == end) {
            k->p++;
            return c;
        }
        if (!*k->p) {
            k->bad = 1;
            return c;
        }
        char *key = NULL;
        if (object) {
            if (*k->p != 's') {
                k->bad = 1;
                return c;
            }
            k->p++;
            json_t *kv = pack_string(k);
            key = json_is_string(kv) ? strdup(json_string_value(kv)) : strdup("?");
            if (kv != omitted())
                json_decref(kv);
            skip_space(k);
        }
        json_t *v = pack_value(k);
        if (v && v != omitted()) {
            if (object)
                json_object_set_new(c, key ? key : "?", v);
            else
                json_array_append_new(c, v);
        }
        free(key);
        if (k->bad)
            return c;
    }
}

static json_t *pack_value(packer *k)
{
    skip_space(k);
    char t = *k->p ? *k->p++ : 0;
    switch (t) {
    case '{':
        return pack_container(k, 1);
    case '[':
        return pack_container(k, 0);
    case 's':
        return pack_string(k);
    case 'n':
        return json_null();
    case 'b':
        return json_boolean(va_arg(*k->ap, int));
    case 'i':
        return json_integer(va_arg(*k->ap, int));
    case 'I':
        return json_integer(va_arg(*k->ap, json_int_t));
    case 'f':
        return json_real(va_arg(*k->ap, double));
    case 'o':
    case 'O': {
        json_t *v = va_arg(*k->ap, json_t *);
        int omit = *k->p == '*';
        if (*k->p == '?' || *k->p == '*')
            k->p++;
        if (!v)
            return omit ? omitted() : json_null();
        return t == 'O' ? json_incref(v) : v;
    }
    default:
        k->bad = 1;
        return NULL;
    }
}

/* The fields object of a log line; NULL when fmt is not an object format. */
static json_t *pack_fields(const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    json_t *v = NULL;
    if (fields_supported(fmt)) {
        packer k = {.p = fmt, .ap = &copy};
        v = pack_value(&k);
        if (v == omitted())
            v = NULL;
        if (k.bad) {
            json_decref(v);
            v = NULL;
        }
    } else {
        json_error_t jerr;
        v = json_vpack_ex(&jerr, 0, fmt, copy);
    }
    va_end(copy);
    return v;
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
        line = pack_fields(fields, ap);
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
