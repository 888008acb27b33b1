#include "watch.h"

#include "err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int decode_line(watch_parser *p, const char *line, size_t len, kube_watch_fn fn, void *ctx)
{
    while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
        len--;
    if (len == 0)
        return KF_OK;
    json_error_t jerr;
    json_t *ev = json_loadb(line, len, 0, &jerr);
    int rc = KF_OK;
    if (!ev) {
        rc = err_set(KF_EINVAL, "watch: malformed event at column %d: %s", jerr.column, jerr.text);
        goto done;
    }
    const char *type = json_string_value(json_object_get(ev, "type"));
    json_t *obj = json_object_get(ev, "object");
    if (!type || !json_is_object(obj)) {
        rc = err_set(KF_EINVAL, "watch: event without type or object");
        goto done;
    }
    if (strcmp(type, "ERROR") == 0) {
        json_int_t code = json_integer_value(json_object_get(obj, "code"));
        const char *msg = json_string_value(json_object_get(obj, "message"));
        rc = err_set(code == 410 ? KF_EGONE : KF_ERETRY, "watch: ERROR event %lld: %s", (long long)code,
                     msg ? msg : "(no message)");
        goto done;
    }
    if (strcmp(type, "ADDED") && strcmp(type, "MODIFIED") && strcmp(type, "DELETED") && strcmp(type, "BOOKMARK")) {
        rc = err_set(KF_EINVAL, "watch: unknown event type \"%s\"", type);
        goto done;
    }
    if (fn(ctx, type, obj) != 0)
        p->stopped = 1;
done:
    json_decref(ev);
    return rc;
}

int watch_parser_feed(watch_parser *p, const char *data, size_t len, kube_watch_fn fn, void *ctx)
{
    size_t max = p->max_line ? p->max_line : WATCH_MAX_LINE;
    while (len > 0 && !p->stopped) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) : len;
        if (p->len == 0 && nl) {
            /* A whole line in this chunk: decode it in place. */
            if (take > max)
                return err_set(KF_EINVAL, "watch: event over %zu bytes", max);
            int rc = decode_line(p, data, take, fn, ctx);
            if (rc)
                return rc;
        } else {
            if (take > max || p->len > max - take)
                return err_set(KF_EINVAL, "watch: event over %zu bytes", max);
            if (p->len + take + 1 > p->cap) {
                size_t cap = p->cap ? p->cap : 4096;
                while (cap < p->len + take + 1)
                    cap *= 2;
                char *b = realloc(p->buf, cap);
                if (!b)
                    return err_set(KF_ENOMEM, "watch: out of memory");
                p->buf = b;
                p->cap = cap;
            }
            memcpy(p->buf + p->len, data, take);
            p->len += take;
            if (nl) {
                int rc = decode_line(p, p->buf, p->len, fn, ctx);
                p->len = 0;
                if (rc)
                    return rc;
            }
        }
        if (!nl)
            break;
        data = nl + 1;
        len -= take + 1;
    }
    return KF_OK;
}

int watch_parser_finish(watch_parser *p, kube_watch_fn fn, void *ctx)
{
    if (p->stopped || p->len == 0)
        return KF_OK;
    int rc = decode_line(p, p->buf, p->len, fn, ctx);
    p->len = 0;
    return rc;
}

void watch_parser_dispose(watch_parser *p)
{
    if (!p)
        return;
    free(p->buf);
    memset(p, 0, sizeof *p);
}
