/* protocol: the request and response bodies kubefit-serve speaks (no I/O, no model).
 *
 *   Open Inference Protocol v2 (KServe v2, Triton's HTTP/REST):
 *     request  {"id"?, "inputs": [{"name", "datatype": "BYTES", "shape": [N] | [N,1], "data": [N texts]}],
 *               "outputs"?: [{"name": "labels" | "probabilities" | "predicted"}]}
 *     response {"model_name", "model_version", "id"?, "outputs": [
 *                 {"name": "labels", "datatype": "BYTES", "shape": [N], "data": [...]},       predicted
 *                                      labels of each text, joined by ';' (multi-label: maybe none)
 *                 {"name": "probabilities", "datatype": "FP32", "shape": [N, L], "data": [...]},
 *                 {"name": "predicted", "datatype": "BOOL", "shape": [N, L], "data": [...]}]}
 *     error    {"error": "message"}
 *   KServe v1: {"instances": [text | {"text": text}, ...]} -> {"predictions": [{"labels": [...],
 *     "probabilities": {label: p, ...}}, ...]}; error {"error": "message"}.
 *   TorchServe: the body is one text (raw UTF-8; a JSON string, or an object with a "data" or
 *     "text" string, is unwrapped) -> {"labels": [...], "probabilities": {label: p}} with p rounded
 *     to 4 decimals as `kubefit-trainer predict` prints it; error {"code", "type", "message"}.
 *
 * Dimension legend: N texts of the request, L labels of the model. */
#ifndef KUBEFIT_SERVE_PROTOCOL_H
#define KUBEFIT_SERVE_PROTOCOL_H

#include <stddef.h>

typedef enum { PROTO_V2, PROTO_V1, PROTO_TS } proto_kind;

enum { PROTO_OUT_LABELS = 1, PROTO_OUT_PROBS = 2, PROTO_OUT_PREDICTED = 4, PROTO_OUT_ALL = 7 };

/* A parsed inference request: texts[i][0..lens[i]) point into memory the request owns. */
typedef struct {
    proto_kind kind;
    size_t n;
    const char **texts;
    size_t *lens;
    char *id;        /* v2 "id", or NULL */
    unsigned outputs; /* PROTO_OUT_* bits requested (v2 "outputs"; all by default) */
    void *doc;       /* private: the parsed JSON */
    char *owned;     /* private: a copy of a raw TorchServe body */
} proto_request;

/* Parses body[0..len) as a request of kind. KF_EINVAL with a message for the client (what is
 * wrong, where) on bad input, including more than max_texts texts (0: no limit) or none. Dispose
 * with proto_request_dispose (also after an error). */
int proto_parse(proto_request *out, proto_kind kind, const char *body, size_t len, size_t max_texts);
void proto_request_dispose(proto_request *r);

/* What the response needs to know about the model that answered. */
typedef struct {
    const char *name, *version;
    const char *const *labels; /* [L] */
    size_t n_labels;
} proto_model;

/* The response body (NUL-terminated, *len bytes; caller frees) for rq's texts: probs (N, L) and
 * pred (N, L) 0/1 as infer_decide gives them. NULL when out of memory. */
char *proto_response(const proto_request *rq, const proto_model *m, const float *probs, const unsigned char *pred,
                     size_t *len);

/* An error body in kind's shape for HTTP status (caller frees; *len bytes). NULL when out of
 * memory. */
char *proto_error(proto_kind kind, int status, const char *message, size_t *len);

#endif
