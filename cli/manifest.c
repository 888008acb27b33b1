/* manifest: YAML -> JSON as kubectl does it (see manifest.h). */
#include "manifest.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "err.h"
#include "fileio.h"

#define MAX_DEPTH 256        /* nesting, also what stops self-referencing aliases */
#define MAX_NODES 1000000    /* values produced, also what stops alias "billion laughs" */
#define MAX_BYTES (64u << 20)

typedef struct {
    yaml_document_t *doc;
    const char *source;
    const char *text; /* the YAML source, to see tags written out */
    size_t len;
    size_t nodes;
} conv;

static int is_one_of(const char *s, size_t n, const char *const *list)
{
    for (; *list; list++)
        if (strlen(*list) == n && memcmp(*list, s, n) == 0)
            return 1;
    return 0;
}

static const char *const NULLS[] = {"", "~", "null", "Null", "NULL", NULL};
static const char *const TRUES[] = {"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", NULL};
static const char *const FALSES[] = {"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF", NULL};
static const char *const NONFINITE[] = {".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF",
                                        "-.inf", "-.Inf", "-.INF", NULL};

/* Go's strconv.ParseInt(s, 0, 64) (and ParseUint for what overflows int64 but fits uint64):
 * optional sign, 0x / 0o / 0b prefixes, a leading 0 means octal. */
static int parse_go_int(const char *s, json_t **out)
{
    int neg = 0, base = 10;
    const char *p = s;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
        base = 16, p += 2;
    else if (p[0] == '0' && (p[1] == 'o' || p[1] == 'O'))
        base = 8, p += 2;
    else if (p[0] == '0' && (p[1] == 'b' || p[1] == 'B'))
        base = 2, p += 2;
    else if (p[0] == '0' && p[1])
        base = 8, p += 1;
    if (!*p)
        return 0;
    uint64_t v = 0;
    for (; *p; p++) {
        int d = isdigit((unsigned char)*p) ? *p - '0' : isxdigit((unsigned char)*p) ? tolower((unsigned char)*p) - 'a' + 10 : 99;
        if (d >= base)
            return 0;
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
            return 0;
        v = v * (uint64_t)base + (uint64_t)d;
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1)
            return 0;
        *out = json_integer(v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(json_int_t)v);
    } else if (v <= (uint64_t)INT64_MAX) {
        *out = json_integer((json_int_t)v);
    } else {
        *out = json_real((double)v); /* a uint64 beyond int64: JSON has no other way */
    }
    return 1;
}

/* ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$ (go-yaml's yamlStyleFloat). */
static int is_yaml_float(const char *s)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (*p == '.') {
        if (!isdigit((unsigned char)*++p))
            return 0;
        while (isdigit((unsigned char)*p))
            p++;
    } else {
        if (!isdigit((unsigned char)*p))
            return 0;
        while (isdigit((unsigned char)*p))
            p++;
        if (*p == '.')
            for (p++; isdigit((unsigned char)*p); p++)
                ;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!isdigit((unsigned char)*p))
            return 0;
        while (isdigit((unsigned char)*p))
            p++;
    }
    return *p == '\0';
}

/* A finite double as JSON: an integer when it is integral and fits (Go writes 10.0 as 10). */
static json_t *json_number_of(double d)
{
    if (d == floor(d) && fabs(d) < 9.2e18)
        return json_integer((json_int_t)d);
    return json_real(d);
}

int manifest_plain_scalar(json_t **out, const char *text, size_t len)
{
    *out = NULL;
    if (is_one_of(text, len, NULLS))
        return (*out = json_null()) ? 0 : err_set(KF_ENOMEM, "out of memory");
    if (is_one_of(text, len, TRUES))
        return (*out = json_true()) ? 0 : err_set(KF_ENOMEM, "out of memory");
    if (is_one_of(text, len, FALSES))
        return (*out = json_false()) ? 0 : err_set(KF_ENOMEM, "out of memory");
    if (is_one_of(text, len, NONFINITE))
        return err_set(KF_EINVAL, "%.*s: JSON has no NaN or infinity", (int)len, text);
    if (!len || !(isdigit((unsigned char)text[0]) || strchr("+-.", text[0])))
        return 0;
    char *plain = malloc(len + 1);
    if (!plain)
        return err_set(KF_ENOMEM, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (text[i] != '_')
            plain[n++] = text[i];
    plain[n] = '\0';
    if (!memchr(plain, '\0', n) && !parse_go_int(plain, out) && is_yaml_float(plain)) {
        errno = 0;
        double d = strtod(plain, NULL);
        if (isfinite(d))
            *out = json_number_of(d);
    }
    free(plain);
    return 0;
}

static int node_error(conv *c, const yaml_node_t *n, int code, const char *what)
{
    return err_set(code, "%s:%zu:%zu: %s", c->source, n->start_mark.line + 1, n->start_mark.column + 1, what);
}

static int convert(conv *c, yaml_node_t *n, int depth, json_t **out);

/* A scalar with an explicit tag, or quoted: what the tag says. */
static int tagged_scalar(conv *c, yaml_node_t *n, json_t **out)
{
    const char *tag = (const char *)n->tag, *v = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    int plain = n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    /* libyaml gives every untagged scalar the !!str tag; whether one was written out shows in the
     * source: the node starts at its tag (or at its anchor, then its tag). */
    size_t at = n->start_mark.index;
    if (at < c->len && c->text[at] == '&')
        while (at < c->len && !isspace((unsigned char)c->text[at]))
            at++;
    while (at < c->len && (c->text[at] == ' ' || c->text[at] == '\t'))
        at++;
    int written = at < c->len && c->text[at] == '!';
    int str_tag = !tag || strcmp(tag, YAML_STR_TAG) == 0;
    if (str_tag && (!plain || written))
        return (*out = json_stringn(v, len)) ? 0 : node_error(c, n, KF_EINVAL, "text is not valid UTF-8");
    json_t *v_json = NULL;
    int rc = manifest_plain_scalar(&v_json, v, len);
    if (rc < 0) {
        char msg[200];
        snprintf(msg, sizeof msg, "%s", err_msg()); /* node_error writes err_msg()'s buffer */
        return node_error(c, n, rc, msg);
    }
    if (tag && strcmp(tag, YAML_STR_TAG) != 0) {
        int want_int = !strcmp(tag, YAML_INT_TAG), want_float = !strcmp(tag, YAML_FLOAT_TAG);
        int want_bool = !strcmp(tag, YAML_BOOL_TAG), want_null = !strcmp(tag, YAML_NULL_TAG);
        if (want_float && json_is_integer(v_json)) {
            /* stays an integer in JSON, as Go writes it */
        } else if ((want_int && !json_is_integer(v_json)) || (want_float && !json_is_number(v_json)) ||
                   (want_bool && !json_is_boolean(v_json)) || (want_null && !json_is_null(v_json))) {
            json_decref(v_json);
            char msg[160];
            snprintf(msg, sizeof msg, "\"%.*s\" is not a valid %s", (int)(len > 60 ? 60 : len), v, tag);
            return node_error(c, n, KF_EINVAL, msg);
        } else if (!want_int && !want_float && !want_bool && !want_null) {
            json_decref(v_json);
            v_json = NULL; /* an unknown tag: the text */
        }
    }
    if (v_json) {
        *out = v_json;
        return 0;
    }
    return (*out = json_stringn(v, len)) ? 0 : node_error(c, n, KF_EINVAL, "text is not valid UTF-8");
}

/* A mapping key as JSON object key text (sigs.k8s.io/yaml turns scalar keys into strings). */
static int key_text(conv *c, yaml_node_t *k, char **out)
{
    *out = NULL;
    if (k->type != YAML_SCALAR_NODE)
        return node_error(c, k, KF_EINVAL, "a mapping key must be a scalar");
    json_t *v = NULL;
    int rc = tagged_scalar(c, k, &v);
    if (rc < 0)
        return rc;
    if (json_is_string(v))
        *out = strdup(json_string_value(v));
    else if (json_is_null(v))
        *out = strdup("null");
    else if (json_is_true(v) || json_is_false(v))
        *out = strdup(json_is_true(v) ? "true" : "false");
    else if (json_is_integer(v))
        rc = asprintf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v)) < 0 ? -1 : 0;
    else
        rc = asprintf(out, "%.17g", json_real_value(v)) < 0 ? -1 : 0;
    json_decref(v);
    if (rc < 0 || !*out) {
        *out = NULL;
        return err_set(KF_ENOMEM, "out of memory");
    }
    return 0;
}

/* Copies the keys of a merge source (a mapping, or a list of them) that obj does not have yet. */
static int merge_into(conv *c, json_t *obj, yaml_node_t *src, int depth)
{
    if (src->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = src->data.sequence.items.start; it < src->data.sequence.items.top; it++) {
            int rc = merge_into(c, obj, yaml_document_get_node(c->doc, *it), depth);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    if (src->type != YAML_MAPPING_NODE)
        return node_error(c, src, KF_EINVAL, "a merge key (<<) takes a mapping or a list of mappings");
    json_t *m = NULL;
    int rc = convert(c, src, depth + 1, &m);
    if (rc < 0)
        return rc;
    const char *k;
    json_t *v;
    json_object_foreach(m, k, v) {
        if (!json_object_get(obj, k))
            json_object_set(obj, k, v);
    }
    json_decref(m);
    return 0;
}

static int convert_mapping(conv *c, yaml_node_t *n, int depth, json_t **out)
{
    json_t *obj = json_object(), *merges = json_array();
    int rc = 0;
    if (!obj || !merges) {
        rc = err_set(KF_ENOMEM, "out of memory");
        goto done;
    }
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key), *v = yaml_document_get_node(c->doc, p->value);
        if (k->type == YAML_SCALAR_NODE && k->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
            k->data.scalar.length == 2 && memcmp(k->data.scalar.value, "<<", 2) == 0) {
            json_array_append_new(merges, json_integer(p->value));
            continue;
        }
        char *key = NULL;
        json_t *val = NULL;
        if ((rc = key_text(c, k, &key)) < 0)
            goto done;
        if (json_object_get(obj, key)) {
            char msg[200];
            snprintf(msg, sizeof msg, "duplicate key \"%.120s\"", key);
            free(key);
            rc = node_error(c, k, KF_EINVAL, msg);
            goto done;
        }
        rc = convert(c, v, depth + 1, &val);
        if (rc == 0 && json_object_set_new(obj, key, val) != 0)
            rc = err_set(KF_ENOMEM, "out of memory");
        free(key);
        if (rc < 0)
            goto done;
    }
    /* Merged keys never override the mapping's own (go-yaml's rule). */
    size_t i;
    json_t *idx;
    json_array_foreach(merges, i, idx) {
        if ((rc = merge_into(c, obj, yaml_document_get_node(c->doc, (int)json_integer_value(idx)), depth)) < 0)
            goto done;
    }
done:
    json_decref(merges);
    if (rc < 0)
        json_decref(obj);
    else
        *out = obj;
    return rc;
}

static int convert(conv *c, yaml_node_t *n, int depth, json_t **out)
{
    *out = NULL;
    if (!n)
        return err_set(KF_EINVAL, "%s: dangling node", c->source);
    if (depth > MAX_DEPTH)
        return node_error(c, n, KF_EINVAL, "nested too deeply (a self-referencing alias?)");
    if (++c->nodes > MAX_NODES)
        return node_error(c, n, KF_EINVAL, "too many values (aliases expand to more than a million)");
    switch (n->type) {
    case YAML_SCALAR_NODE:
        return tagged_scalar(c, n, out);
    case YAML_SEQUENCE_NODE: {
        json_t *arr = json_array();
        if (!arr)
            return err_set(KF_ENOMEM, "out of memory");
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
            json_t *v = NULL;
            int rc = convert(c, yaml_document_get_node(c->doc, *it), depth + 1, &v);
            if (rc < 0) {
                json_decref(arr);
                return rc;
            }
            json_array_append_new(arr, v);
        }
        *out = arr;
        return 0;
    }
    case YAML_MAPPING_NODE:
        return convert_mapping(c, n, depth, out);
    default:
        return node_error(c, n, KF_EINVAL, "empty node");
    }
}

int manifest_parse(json_t **docs, const char *text, size_t len, const char *source)
{
    yaml_parser_t parser;
    json_t *all = json_array();
    int rc = 0;
    *docs = NULL;
    if (!all || !yaml_parser_initialize(&parser)) {
        json_decref(all);
        return err_set(KF_ENOMEM, "out of memory");
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    for (;;) {
        yaml_document_t doc;
        if (!yaml_parser_load(&parser, &doc)) {
            rc = err_set(KF_EINVAL, "%s:%zu:%zu: %s%s%s", source, parser.problem_mark.line + 1,
                         parser.problem_mark.column + 1, parser.problem ? parser.problem : "malformed YAML",
                         parser.context ? " " : "", parser.context ? parser.context : "");
            break;
        }
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (!root) {
            yaml_document_delete(&doc);
            break; /* end of the stream */
        }
        conv c = {.doc = &doc, .source = source, .text = text, .len = len};
        json_t *v = NULL;
        rc = convert(&c, root, 0, &v);
        yaml_document_delete(&doc);
        if (rc < 0)
            break;
        if (json_is_null(v))
            json_decref(v); /* an empty document */
        else
            json_array_append_new(all, v);
    }
    yaml_parser_delete(&parser);
    if (rc < 0) {
        json_decref(all);
        return rc;
    }
    *docs = all;
    return 0;
}

int manifest_load(json_t **docs, const char *path)
{
    char *text = NULL;
    size_t len = 0;
    int rc;
    *docs = NULL;
    if (strcmp(path, "-") == 0) {
        size_t cap = 0;
        for (;;) {
            if (len + 4096 + 1 > cap) {
                size_t ncap = cap ? cap * 2 : 8192;
                char *grown = ncap > MAX_BYTES ? NULL : realloc(text, ncap);
                if (!grown) {
                    free(text);
                    return err_set(ncap > MAX_BYTES ? KF_EINVAL : KF_ENOMEM, "<stdin>: more than %u bytes",
                                   MAX_BYTES);
                }
                text = grown, cap = ncap;
            }
            size_t got = fread(text + len, 1, cap - len - 1, stdin);
            len += got;
            if (got == 0)
                break;
        }
        text[len] = '\0';
        rc = manifest_parse(docs, text, len, "<stdin>");
    } else {
        if ((rc = file_read_max(&text, &len, path, MAX_BYTES)) < 0)
            return rc;
        rc = manifest_parse(docs, text, len, path);
    }
    free(text);
    return rc;
}
