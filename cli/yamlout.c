/* yamlout: JSON -> YAML through libyaml's emitter (see yamlout.h). */
#include "yamlout.h"

#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "err.h"
#include "manifest.h"

typedef struct {
    char *buf;
    size_t len, cap;
} text_sink;

static int sink_write(void *data, unsigned char *buffer, size_t size)
{
    text_sink *s = data;
    if (s->len + size + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 1024;
        while (cap < s->len + size + 1)
            cap *= 2;
        char *grown = realloc(s->buf, cap);
        if (!grown)
            return 0;
        s->buf = grown, s->cap = cap;
    }
    memcpy(s->buf + s->len, buffer, size);
    s->len += size;
    s->buf[s->len] = '\0';
    return 1;
}

/* The shortest text that reads back as the same double. */
static void number_text(char *out, size_t n, double d)
{
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(out, n, "%.*g", prec, d);
        if (strtod(out, NULL) == d)
            break;
    }
}

static int scalar(yaml_emitter_t *e, const char *text, int plain_ok, yaml_scalar_style_t style)
{
    yaml_event_t ev;
    if (!yaml_scalar_event_initialize(&ev, NULL, (yaml_char_t *)YAML_STR_TAG, (yaml_char_t *)text, (int)strlen(text),
                                      plain_ok, 1, style))
        return 0;
    return yaml_emitter_emit(e, &ev);
}

/* A string is written plain only when it reads back as a string. */
static int string_scalar(yaml_emitter_t *e, const char *s)
{
    json_t *as = NULL;
    int plain_ok = manifest_plain_scalar(&as, s, strlen(s)) == 0 && !as;
    json_decref(as);
    err_clear();
    const char *nl = strchr(s, '\n');
    return scalar(e, s, plain_ok, nl && nl[1] ? YAML_LITERAL_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE);
}

static int emit_value(yaml_emitter_t *e, const json_t *v)
{
    yaml_event_t ev;
    char num[64];
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (!yaml_mapping_start_event_initialize(&ev, NULL, (yaml_char_t *)YAML_MAP_TAG, 1,
                                                 json_object_size(v) ? YAML_BLOCK_MAPPING_STYLE : YAML_FLOW_MAPPING_STYLE) ||
            !yaml_emitter_emit(e, &ev))
            return 0;
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) {
            if (!string_scalar(e, k) || !emit_value(e, x))
                return 0;
        }
        return yaml_mapping_end_event_initialize(&ev) && yaml_emitter_emit(e, &ev);
    }
    case JSON_ARRAY: {
        if (!yaml_sequence_start_event_initialize(&ev, NULL, (yaml_char_t *)YAML_SEQ_TAG, 1,
                                                  json_array_size(v) ? YAML_BLOCK_SEQUENCE_STYLE : YAML_FLOW_SEQUENCE_STYLE) ||
            !yaml_emitter_emit(e, &ev))
            return 0;
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) {
            if (!emit_value(e, x))
                return 0;
        }
        return yaml_sequence_end_event_initialize(&ev) && yaml_emitter_emit(e, &ev);
    }
    case JSON_STRING:
        return string_scalar(e, json_string_value(v));
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return scalar(e, num, 1, YAML_PLAIN_SCALAR_STYLE);
    case JSON_REAL:
        number_text(num, sizeof num, json_real_value(v));
        return scalar(e, num, 1, YAML_PLAIN_SCALAR_STYLE);
    case JSON_TRUE:
        return scalar(e, "true", 1, YAML_PLAIN_SCALAR_STYLE);
    case JSON_FALSE:
        return scalar(e, "false", 1, YAML_PLAIN_SCALAR_STYLE);
    default:
        return scalar(e, "null", 1, YAML_PLAIN_SCALAR_STYLE);
    }
}

char *yamlout_string(const json_t *v)
{
    yaml_emitter_t e;
    yaml_event_t ev;
    text_sink s = {0};
    if (!yaml_emitter_initialize(&e)) {
        err_set(KF_ENOMEM, "yaml: out of memory");
        return NULL;
    }
    yaml_emitter_set_output(&e, sink_write, &s);
    yaml_emitter_set_unicode(&e, 1);
    yaml_emitter_set_width(&e, -1);
    yaml_emitter_set_indent(&e, 2);
    int ok = yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) && yaml_emitter_emit(&e, &ev) &&
             yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) && yaml_emitter_emit(&e, &ev) &&
             emit_value(&e, v) && yaml_document_end_event_initialize(&ev, 1) && yaml_emitter_emit(&e, &ev) &&
             yaml_stream_end_event_initialize(&ev) && yaml_emitter_emit(&e, &ev) && yaml_emitter_flush(&e);
    if (!ok) {
        err_set(KF_EIO, "yaml: %s", e.problem ? e.problem : "cannot write");
        free(s.buf);
        s.buf = NULL;
    }
    yaml_emitter_delete(&e);
    return s.buf;
}

int yamlout_write(FILE *f, const json_t *v)
{
    char *s = yamlout_string(v);
    if (!s)
        return KF_EIO;
    int rc = fputs(s, f) < 0 ? err_set(KF_EIO, "yaml: write failed") : 0;
    free(s);
    return rc;
}
