/* protocol: request/response bodies of the three protocols. See protocol.h. */
#include "protocol.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

/* Caps what one request may hold, whatever the options say: a shape product is checked against it
 * before anything is sized from it. */
#define PROTO_MAX_TEXTS ((size_t)1 << 20)

void proto_request_dispose(proto_request *r)
{
    if (!r)
        return;
    free(r->texts);
    free(r->lens);
    free(r->id);
    free(r->owned);
    json_decref((json_t *)r->doc);
    memset(r, 0, sizeof *r);
}

static int alloc_texts(proto_request *r, size_t n)
{
    r->texts = calloc(n ? n : 1, sizeof *r->texts);
    r->lens = calloc(n ? n : 1, sizeof *r->lens);
    return r->texts && r->lens ? 0 : err_set(KF_ENOMEM, "out of memory");
}

static int count_check(size_t n, size_t max_texts)
{
    if (n == 0)
        return err_set(KF_EINVAL, "no texts in the request");
    if ((max_texts && n > max_texts) || n > PROTO_MAX_TEXTS)
        return err_set(KF_EINVAL, "%zu texts in one request, at most %zu", n,
                       max_texts && max_texts < PROTO_MAX_TEXTS ? max_texts : PROTO_MAX_TEXTS);
    return 0;
}

static json_t *load_object(const char *body, size_t len, int *rc)
{
    json_error_t e;
    json_t *doc = json_loadb(body, len, JSON_ALLOW_NUL, &e);
    if (!doc)
        *rc = err_set(KF_EINVAL, "the body is not JSON: %s (line %d, column %d)", e.text, e.line, e.column);
    else if (!json_is_object(doc))
        *rc = err_set(KF_EINVAL, "the body is not a JSON object"), json_decref(doc), doc = NULL;
    return doc;
}

/* Appends the strings of data (nested arrays flattened, row-major) to r; KF_EINVAL for anything
 * else or more than cap of them. */
static int flatten(proto_request *r, const json_t *data, size_t cap, int depth)
{
    size_t i;
    json_t *v;
    if (depth > 1)
        return err_set(KF_EINVAL, "inputs[0].data nests deeper than its shape");
    json_array_foreach(data, i, v) {
        if (json_is_array(v)) {
            int rc = flatten(r, v, cap, depth + 1);
            if (rc < 0)
                return rc;
            continue;
        }
        if (!json_is_string(v))
            return err_set(KF_EINVAL, "inputs[0].data[%zu] is not a string (BYTES data are texts)", i);
        if (r->n >= cap)
            return err_set(KF_EINVAL, "inputs[0].data holds more elements than its shape says (%zu)", cap);
        r->texts[r->n] = json_string_value(v);
        r->lens[r->n] = json_string_length(v);
        r->n++;
    }
    return 0;
}

static const struct {
    const char *name;
    unsigned bit;
} OUTPUTS[] = {{"labels", PROTO_OUT_LABELS}, {"probabilities", PROTO_OUT_PROBS}, {"predicted", PROTO_OUT_PREDICTED}};

static int parse_v2(proto_request *r, const char *body, size_t len, size_t max_texts)
{
    int rc = 0;
    json_t *doc = load_object(body, len, &rc);
    if (!doc)
        return rc;
    r->doc = doc;
    const json_t *id = json_object_get(doc, "id"), *inputs = json_object_get(doc, "inputs");
    if (id && !json_is_string(id))
        return err_set(KF_EINVAL, "\"id\" is not a string");
    if (id && !(r->id = strdup(json_string_value(id))))
        return err_set(KF_ENOMEM, "out of memory");
    if (!json_is_array(inputs) || json_array_size(inputs) != 1)
        return err_set(KF_EINVAL, "\"inputs\" must be an array of one tensor (datatype BYTES, the texts), got %s",
                       json_is_array(inputs) ? "another number of tensors" : "none");
    const json_t *in = json_array_get(inputs, 0), *shape = json_object_get(in, "shape");
    const char *name = json_string_value(json_object_get(in, "name"));
    const char *dtype = json_string_value(json_object_get(in, "datatype"));
    const json_t *params = json_object_get(in, "parameters"), *data = json_object_get(in, "data");
    if (!json_is_object(in) || !name)
        return err_set(KF_EINVAL, "inputs[0] needs a \"name\"");
    if (!dtype || strcmp(dtype, "BYTES") != 0)
        return err_set(KF_EINVAL, "inputs[0] (%s): datatype must be BYTES (the texts), got %s", name,
                       dtype ? dtype : "none");
    if (json_object_get(params, "binary_data_size"))
        return err_set(KF_EINVAL, "inputs[0] (%s): binary tensor data is not supported; send the texts in \"data\"",
                       name);
    if (!json_is_array(shape) || json_array_size(shape) < 1 || json_array_size(shape) > 2)
        return err_set(KF_EINVAL, "inputs[0] (%s): shape must be [N] or [N, 1]", name);
    json_int_t n = json_integer_value(json_array_get(shape, 0));
    if (!json_is_integer(json_array_get(shape, 0)) || n < 0 ||
        (json_array_size(shape) == 2 && (!json_is_integer(json_array_get(shape, 1)) ||
                                         json_integer_value(json_array_get(shape, 1)) != 1)))
        return err_set(KF_EINVAL, "inputs[0] (%s): shape must be [N] or [N, 1] with N >= 1", name);
    if ((rc = count_check((size_t)n, max_texts)) < 0)
        return rc;
    if (!json_is_array(data))
        return err_set(KF_EINVAL, "inputs[0] (%s): \"data\" must be an array of texts", name);
    if ((rc = alloc_texts(r, (size_t)n)) < 0 || (rc = flatten(r, data, (size_t)n, 0)) < 0)
        return rc;
    if (r->n != (size_t)n)
        return err_set(KF_EINVAL, "inputs[0] (%s): shape says %lld texts, data holds %zu", name, (long long)n, r->n);
    const json_t *outs = json_object_get(doc, "outputs"), *o;
    size_t i;
    r->outputs = PROTO_OUT_ALL;
    if (outs && !json_is_array(outs))
        return err_set(KF_EINVAL, "\"outputs\" must be an array");
    if (json_array_size(outs))
        r->outputs = 0;
    json_array_foreach(outs, i, o) {
        const char *on = json_string_value(json_object_get(o, "name"));
        size_t k = 0;
        while (on && k < sizeof OUTPUTS / sizeof *OUTPUTS && strcmp(on, OUTPUTS[k].name) != 0)
            k++;
        if (!on || k == sizeof OUTPUTS / sizeof *OUTPUTS)
            return err_set(KF_EINVAL, "outputs[%zu]: unknown output %s (labels, probabilities, predicted)", i,
                           on ? on : "without a name");
        r->outputs |= OUTPUTS[k].bit;
    }
    return 0;
}

static int parse_v1(proto_request *r, const char *body, size_t len, size_t max_texts)
{
    int rc = 0;
    json_t *doc = load_object(body, len, &rc);
    if (!doc)
        return rc;
    r->doc = doc;
    const json_t *inst = json_object_get(doc, "instances"), *v;
    if (!json_is_array(inst))
        return err_set(KF_EINVAL, "\"instances\" must be an array of texts");
    if ((rc = count_check(json_array_size(inst), max_texts)) < 0 || (rc = alloc_texts(r, json_array_size(inst))) < 0)
        return rc;
    size_t i;
    json_array_foreach(inst, i, v) {
        const json_t *t = json_is_object(v) ? json_object_get(v, "text") : v;
        if (!json_is_string(t))
            return err_set(KF_EINVAL, "instances[%zu] is not a text (a string, or an object with a \"text\" string)", i);
        r->texts[i] = json_string_value(t);
        r->lens[i] = json_string_length(t);
    }
    r->n = json_array_size(inst);
    r->outputs = PROTO_OUT_ALL;
    return 0;
}

static int parse_ts(proto_request *r, const char *body, size_t len)
{
    if (!body || len == 0)
        return err_set(KF_EINVAL, "empty body: send the text to classify");
    json_t *doc = json_loadb(body, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    const json_t *t = json_is_string(doc) ? doc : json_is_object(doc) ? json_object_get(doc, "data") : NULL;
    if (json_is_object(doc) && !json_is_string(t))
        t = json_object_get(doc, "text");
    if (alloc_texts(r, 1) < 0) {
        json_decref(doc);
        return KF_ENOMEM;
    }
    r->n = 1;
    r->outputs = PROTO_OUT_ALL;
    if (json_is_string(t)) {
        r->doc = doc;
        r->texts[0] = json_string_value(t);
        r->lens[0] = json_string_length(t);
        return 0;
    }
    json_decref(doc);
    if (!(r->owned = malloc(len + 1)))
        return err_set(KF_ENOMEM, "out of memory");
    memcpy(r->owned, body, len);
    r->owned[len] = 0;
    r->texts[0] = r->owned;
    r->lens[0] = len;
    return 0;
}

int proto_parse(proto_request *out, proto_kind kind, const char *body, size_t len, size_t max_texts)
{
    memset(out, 0, sizeof *out);
    out->kind = kind;
    switch (kind) {
    case PROTO_V2:
        return parse_v2(out, body ? body : "", body ? len : 0, max_texts);
    case PROTO_V1:
        return parse_v1(out, body ? body : "", body ? len : 0, max_texts);
    case PROTO_TS:
        return parse_ts(out, body, len);
    }
    return err_set(KF_EINVAL, "unknown protocol");
}

/* "a;b" of the predicted labels of one row. */
static json_t *joined_labels(const proto_model *m, const unsigned char *pred)
{
    size_t total = 1;
    for (size_t l = 0; l < m->n_labels; l++)
        if (pred[l])
            total += strlen(m->labels[l]) + 1;
    char *s = malloc(total), *p = s;
    if (!s)
        return NULL;
    for (size_t l = 0; l < m->n_labels; l++)
        if (pred[l]) {
            size_t n = strlen(m->labels[l]);
            if (p != s)
                *p++ = ';';
            memcpy(p, m->labels[l], n);
            p += n;
        }
    *p = 0;
    json_t *j = json_stringn(s, (size_t)(p - s));
    free(s);
    return j;
}

static json_t *tensor(const char *name, const char *dtype, size_t n, size_t L)
{
    json_t *shape = L ? json_pack("[I,I]", (json_int_t)n, (json_int_t)L) : json_pack("[I]", (json_int_t)n);
    return json_pack("{s:s,s:s,s:o,s:[]}", "name", name, "datatype", dtype, "shape", shape, "data");
}

static json_t *response_v2(const proto_request *rq, const proto_model *m, const float *probs, const unsigned char *pred)
{
    const size_t n = rq->n, L = m->n_labels;
    json_t *outs = json_array();
    json_t *doc = json_pack("{s:s,s:s,s:o}", "model_name", m->name, "model_version", m->version, "outputs", outs);
    if (!doc)
        return NULL;
    if (rq->id)
        json_object_set_new(doc, "id", json_string(rq->id));
    if (rq->outputs & PROTO_OUT_LABELS) {
        json_t *t = tensor("labels", "BYTES", n, 0), *d = json_object_get(t, "data");
        for (size_t i = 0; d && i < n; i++)
            json_array_append_new(d, joined_labels(m, pred + i * L));
        json_array_append_new(outs, t);
    }
    if (rq->outputs & PROTO_OUT_PROBS) {
        json_t *t = tensor("probabilities", "FP32", n, L), *d = json_object_get(t, "data");
        for (size_t i = 0; d && i < n * L; i++)
            json_array_append_new(d, json_real(probs[i]));
        json_array_append_new(outs, t);
    }
    if (rq->outputs & PROTO_OUT_PREDICTED) {
        json_t *t = tensor("predicted", "BOOL", n, L), *d = json_object_get(t, "data");
        for (size_t i = 0; d && i < n * L; i++)
            json_array_append_new(d, json_boolean(pred[i]));
        json_array_append_new(outs, t);
    }
    return doc;
}

/* {"labels": [...], "probabilities": {label: p}} for one text; round4: as predict prints. */
static json_t *prediction(const proto_model *m, const float *probs, const unsigned char *pred, int round4)
{
    json_t *labels = json_array(), *scores = json_object();
    for (size_t l = 0; labels && scores && l < m->n_labels; l++) {
        if (pred[l])
            json_array_append_new(labels, json_string(m->labels[l]));
        json_object_set_new(scores, m->labels[l], json_real(round4 ? round(probs[l] * 1e4) / 1e4 : probs[l]));
    }
    return json_pack("{s:o,s:o}", "labels", labels, "probabilities", scores);
}

char *proto_response(const proto_request *rq, const proto_model *m, const float *probs, const unsigned char *pred,
                     size_t *len)
{
    json_t *doc = NULL;
    size_t flags = JSON_COMPACT | JSON_REAL_PRECISION(9);
    if (rq->kind == PROTO_V2) {
        doc = response_v2(rq, m, probs, pred);
    } else if (rq->kind == PROTO_V1) {
        json_t *preds = json_array();
        for (size_t i = 0; preds && i < rq->n; i++)
            json_array_append_new(preds, prediction(m, probs + i * m->n_labels, pred + i * m->n_labels, 0));
        doc = json_pack("{s:o}", "predictions", preds);
    } else {
        doc = prediction(m, probs, pred, 1);
        flags = JSON_COMPACT | JSON_REAL_PRECISION(4);
    }
    char *s = doc ? json_dumps(doc, flags) : NULL;
    json_decref(doc);
    if (s)
        *len = strlen(s);
    return s;
}

static const char *ts_type(int status)
{
    switch (status) {
    case 400:
        return "BadRequestException";
    case 404:
        return "ModelNotFoundException";
    case 405:
        return "MethodNotAllowedException";
    case 413:
        return "RequestEntityTooLargeException";
    case 503:
        return "ServiceUnavailableException";
    default:
        return status >= 500 ? "InternalServerException" : "BadRequestException";
    }
}

char *proto_error(proto_kind kind, int status, const char *message, size_t *len)
{
    json_t *doc = kind == PROTO_TS ? json_pack("{s:i,s:s,s:s}", "code", status, "type", ts_type(status), "message",
                                               message ? message : "")
                                   : json_pack("{s:s}", "error", message ? message : "");
    if (!doc) /* a message that is not UTF-8: say so rather than nothing */
        doc = json_pack("{s:s}", "error", "error (message not UTF-8)");
    char *s = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (s)
        *len = strlen(s);
    return s;
}
