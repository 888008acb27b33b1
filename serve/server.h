/* server: kubefit-serve's HTTP side - routes of the Open Inference Protocol v2, KServe v1 and
 * TorchServe's inference API over one served model, /metrics, model loading (at start, on
 * serve_reload / SIGHUP, and through the v2 repository extension when enabled) and the drain
 * on shutdown. docs/serving.md describes every route.
 *
 *   serve *s = serve_new(&opt);        binds (port 0 picks one: serve_port)
 *   serve_start(s);                    serves; the model loads in the background (ready after)
 *   ... serve_drain(s); serve_free(s); on SIGTERM */
#ifndef KUBEFIT_SERVE_SERVER_H
#define KUBEFIT_SERVE_SERVER_H

#include <stddef.h>

#include "infer.h"

typedef struct {
    const char *listen;       /* httpd.h's forms; NULL: ":8080" */
    const char *model_uri;    /* required: the run folder or its model.safetensors */
    const char *model_name;   /* served name; NULL: config.json's "job", else "kubefit" */
    const char *work_dir;     /* downloads; NULL: $TMPDIR */
    infer_options infer;      /* device, threads (per worker), max_batch (texts per forward), lang,
                               * threshold */
    int workers;              /* inference workers, each with its own copy of the model; <= 0: 1 */
    double max_delay_s;       /* dynamic batching: the longest a text waits for its batch to fill */
    size_t max_body;          /* request body bytes; 0: 1 MiB */
    size_t max_texts;         /* texts per request; 0: 256 */
    size_t max_queued;        /* texts waiting for a batch before 503; 0: 1024 */
    int http_workers;         /* threads that parse requests and load models; 0: 4 */
    int repository_api;       /* 1: POST /v2/repository/index and /v2/repository/models/NAME/load */
    double drain_delay_s;     /* serve_drain: keep answering this long while not ready */
    double drain_timeout_s;   /* serve_drain: then wait at most this long for requests in flight */
} serve_options;

typedef struct serve serve;

/* Binds the listening socket and starts the inference thread; NULL with err_msg() on failure.
 * Caller frees with serve_free. */
serve *serve_new(const serve_options *o);
int serve_port(const serve *s);
/* Serves HTTP and starts loading opt.model_uri in the background. */
int serve_start(serve *s);
/* Loads uri (NULL: the URI served now, or opt.model_uri) in the background and swaps it in when
 * loaded; KF_ECONFLICT when a load is already running. */
int serve_reload(serve *s, const char *uri);
/* 1 once a model serves and the server is not draining. */
int serve_ready(serve *s);
/* 1 when the initial load failed (the process should exit non-zero: the model is unusable). */
int serve_failed(serve *s);
/* Not ready from now on (readiness probes fail, so endpoints drop the Pod), but still answering for
 * drain_delay_s; then waits up to drain_timeout_s for the requests in flight. */
void serve_drain(serve *s);
/* Stops HTTP and the inference thread; waiting jobs answer 503. NULL is fine. */
void serve_free(serve *s);

#endif
