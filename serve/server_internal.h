/* server_internal: what server.c (routes, life cycle) and loading.c (loads, the repository
 * extension) share: the server's state and the reply helpers. Internal to serve/.
 *
 * s->mu guards pub (what the routes read about the model serving: a copy made when a model becomes
 * current), the load state (loading, failed, load_error, serving_uri) and in_flight. */
#ifndef KUBEFIT_SERVE_SERVER_INTERNAL_H
#define KUBEFIT_SERVE_SERVER_INTERNAL_H

#include <pthread.h>
#include <jansson.h>

#include "batcher.h"
#include "httpd.h"
#include "protocol.h"
#include "server.h"
#include "stats.h"
#include "storage/storage.h"

#define SERVE_JSON_TYPE "application/json"

/* What routes read about the model being served (copied from the batcher_model). */
typedef struct {
    char *name, *version, *uri, *lang, *device;
    char **labels;
    size_t n_labels;
    int multi_label, max_batch;
    double threshold;
} serve_published;

struct serve {
    serve_options o;
    char *model_uri; /* the configured URI (o.model_uri points here) */
    storage *st;
    stats *stats;
    batcher *batcher;
    httpd *httpd;
    pthread_mutex_t mu;
    serve_published *pub; /* NULL until the first model serves */
    int loading, failed, draining;
    char *load_error;   /* the last failed load's message */
    char *serving_uri;  /* the URI of the model being served */
    size_t in_flight;   /* inference requests received and not answered */
    pthread_t load_thread;
    int load_thread_started;
};


/* Monotonic seconds. */
double serve_now(void);
/* Answers r with doc (taken) as JSON, counting it under route (t0: when the request arrived). */
void serve_reply_json(serve *s, httpd_req *r, stats_route route, double t0, int status, json_t *doc,
                      const char *headers);
/* Answers r with an error body in kind's shape (503 adds Retry-After: 1). */
void serve_reply_error(serve *s, httpd_req *r, proto_kind kind, stats_route route, double t0, int status,
                       const char *msg);

/* ---- loading.c ---- */
void serve_published_free(serve_published *p);
/* batcher_options.on_model: publishes m for the routes. */
void serve_on_model(void *ctx, const batcher_model *m);
/* Marks a load as running; KF_ECONFLICT when one already is. */
int serve_load_begin(serve *s);
/* Loads uri and hands it to the batcher (the caller did serve_load_begin; this ends the load). */
int serve_load(serve *s, const char *uri);
/* serve_load_begin, then serve_load on a thread of its own; initial: a failure marks the server
 * failed (the process exits 1). */
int serve_load_start(serve *s, const char *uri, int initial);
/* POST /v2/repository/models/NAME/load and POST /v2/repository/index. */
void serve_repository_load(serve *s, httpd_req *r, double t0, const char *name);
void serve_repository_index(serve *s, httpd_req *r, double t0);

#endif
