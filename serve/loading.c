/* loading: the served model's loads (at start, serve_reload / SIGHUP, the v2 repository
 * extension), what the routes read about the model serving (serve_published), and the repository
 * routes. Part of server.c's serve (server_internal.h). */
#include "server_internal.h"

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "loader.h"
#include "log.h"

void serve_published_free(serve_published *p)
{
    if (!p)
        return;
    free(p->name), free(p->version), free(p->uri), free(p->lang), free(p->device);
    for (size_t i = 0; p->labels && i < p->n_labels; i++)
        free(p->labels[i]);
    free(p->labels);
    free(p);
}

static serve_published *publish(const batcher_model *m)
{
    serve_published *p = calloc(1, sizeof *p);
    const infer_model *im = m->models[0];
    if (!p)
        return NULL;
    p->name = strdup(m->name);
    p->version = strdup(m->version);
    p->uri = strdup(m->uri);
    p->lang = strdup(infer_lang(im));
    p->device = strdup(infer_device(im));
    p->n_labels = infer_n_labels(im);
    p->labels = calloc(p->n_labels, sizeof *p->labels);
    p->multi_label = infer_multi_label(im);
    p->threshold = infer_threshold(im);
    p->max_batch = infer_max_batch(im);
    int ok = p->name && p->version && p->uri && p->lang && p->device && p->labels;
    for (size_t i = 0; ok && i < p->n_labels; i++)
        ok = (p->labels[i] = strdup(infer_label(im, i))) != NULL;
    if (!ok) {
        serve_published_free(p);
        return NULL;
    }
    return p;
}

/* ---- loading ---- */

void serve_on_model(void *ctx, const batcher_model *m)
{
    serve *s = ctx;
    serve_published *p = publish(m), *old;
    pthread_mutex_lock(&s->mu);
    old = s->pub;
    if (p) {
        s->pub = p;
    }
    pthread_mutex_unlock(&s->mu);
    if (p)
        serve_published_free(old);
    log_info("serve", "model serving", "{s:s,s:s,s:s,s:i,s:b,s:s,s:i}", "model", m->name, "version", m->version,
             "uri", m->uri, "labels", (int)infer_n_labels(m->models[0]), "multiLabel", infer_multi_label(m->models[0]),
             "device", infer_device(m->models[0]), "replicas", m->n);
}

/* Loads uri and hands it to the batcher. Called with s->loading set by the caller; clears it. */
int serve_load(serve *s, const char *uri)
{
    double t0 = serve_now();
    batcher_model *m = NULL;
    loader_options lo = {.st = s->st, .uri = uri, .work_dir = s->o.work_dir, .name = s->o.model_name,
                         .infer = s->o.infer, .replicas = s->o.workers > 0 ? s->o.workers : 1};
    log_info("serve", "loading model", "{s:s}", "uri", uri);
    int rc = loader_load(&m, &lo);
    pthread_mutex_lock(&s->mu);
    s->loading = 0;
    free(s->load_error);
    s->load_error = rc < 0 ? strdup(err_msg()) : NULL;
    if (rc == 0) {
        char *u = strdup(uri);
        if (u) {
            free(s->serving_uri);
            s->serving_uri = u;
        }
    }
    pthread_mutex_unlock(&s->mu);
    stats_model_load(s->stats, rc == 0);
    if (rc < 0) {
        log_error("serve", "model load failed", "{s:s,s:s,s:s}", "uri", uri, "code", err_name(rc), "error", err_msg());
        return rc;
    }
    log_info("serve", "model loaded", "{s:s,s:s,s:s,s:f}", "uri", uri, "model", m->name, "version", m->version,
             "seconds", serve_now() - t0);
    batcher_set_model(s->batcher, m);
    return 0;
}

typedef struct {
    serve *s;
    char *uri;
    int initial;
} load_arg;

static void *load_main(void *u)
{
    load_arg *a = u;
    int rc = serve_load(a->s, a->uri);
    if (rc < 0 && a->initial) {
        pthread_mutex_lock(&a->s->mu);
        a->s->failed = 1;
        pthread_mutex_unlock(&a->s->mu);
    }
    free(a->uri);
    free(a);
    return NULL;
}

/* Marks a load as running; KF_ECONFLICT when one already is. */
int serve_load_begin(serve *s)
{
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    if (s->loading)
        rc = err_set(KF_ECONFLICT, "a model load is already running");
    else
        s->loading = 1;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int serve_load_start(serve *s, const char *uri, int initial)
{
    int rc;
    if ((rc = serve_load_begin(s)) < 0)
        return rc;
    load_arg *a = calloc(1, sizeof *a);
    if (a) {
        a->s = s;
        a->initial = initial;
        pthread_mutex_lock(&s->mu);
        a->uri = strdup(uri ? uri : s->serving_uri ? s->serving_uri : s->model_uri);
        pthread_mutex_unlock(&s->mu);
    }
    if (s->load_thread_started) /* the previous load thread has finished (loading was 0) */
        pthread_join(s->load_thread, NULL);
    s->load_thread_started = 0;
    if (!a || !a->uri || pthread_create(&s->load_thread, NULL, load_main, a) != 0) {
        if (a)
            free(a->uri);
        free(a);
        pthread_mutex_lock(&s->mu);
        s->loading = 0;
        pthread_mutex_unlock(&s->mu);
        return err_set(KF_ENOMEM, "cannot start a load");
    }
    s->load_thread_started = 1;
    return 0;
}

int serve_reload(serve *s, const char *uri) { return serve_load_start(s, uri, 0); }

/* ---- the repository extension (opt-in) ---- */

typedef struct {
    serve *s;
    double t0;
    char *uri;
} load_call;

static void load_route_work(void *arg, httpd_req *r)
{
    load_call *c = arg;
    serve *s = c->s;
    pthread_mutex_lock(&s->mu);
    char *uri = strdup(c->uri ? c->uri : s->serving_uri ? s->serving_uri : s->model_uri);
    pthread_mutex_unlock(&s->mu);
    int rc = uri ? serve_load(s, uri) : err_set(KF_ENOMEM, "out of memory");
    if (rc < 0)
        serve_reply_error(s, r, PROTO_V2, STATS_REPOSITORY, c->t0,
                    rc == KF_ENOTFOUND ? 404 : rc == KF_EINVAL ? 400 : rc == KF_ENOMEM ? 500 : 503, err_msg());
    else
        serve_reply_json(s, r, STATS_REPOSITORY, c->t0, 200, json_pack("{s:s,s:s}", "uri", uri, "state", "LOADED"), NULL);
    free(uri);
    free(c->uri);
    free(c);
}

/* POST /v2/repository/models/NAME/load {"parameters": {"uri": "..."}} (body optional). */
void serve_repository_load(serve *s, httpd_req *r, double t0, const char *name)
{
    size_t len = 0;
    const char *body = httpd_req_body(r, &len);
    json_t *doc = len ? json_loadb(body, len, 0, NULL) : NULL;
    const json_t *uri = json_object_get(json_object_get(doc, "parameters"), "uri");
    char msg[512];
    if (len && !json_is_object(doc)) {
        json_decref(doc);
        serve_reply_error(s, r, PROTO_V2, STATS_REPOSITORY, t0, 400, "the body is not a JSON object");
        return;
    }
    if (uri && (!json_is_string(uri) || !*json_string_value(uri))) {
        json_decref(doc);
        serve_reply_error(s, r, PROTO_V2, STATS_REPOSITORY, t0, 400, "parameters.uri must be a non-empty string");
        return;
    }
    pthread_mutex_lock(&s->mu);
    const char *served = s->o.model_name ? s->o.model_name : s->pub ? s->pub->name : NULL;
    int name_ok = !served || strcmp(served, name) == 0;
    if (!name_ok)
        snprintf(msg, sizeof msg, "model %s not found (this server serves %s)", name, served);
    pthread_mutex_unlock(&s->mu);
    if (!name_ok) {
        json_decref(doc);
        serve_reply_error(s, r, PROTO_V2, STATS_REPOSITORY, t0, 404, msg);
        return;
    }
    if (serve_load_begin(s) < 0) {
        json_decref(doc);
        serve_reply_error(s, r, PROTO_V2, STATS_REPOSITORY, t0, 409, err_msg());
        return;
    }
    load_call *c = calloc(1, sizeof *c);
    if (c) {
        c->s = s;
        c->t0 = t0;
        c->uri = uri ? strdup(json_string_value(uri)) : NULL;
    }
    json_decref(doc);
    if (!c || (uri && !c->uri)) {
        free(c);
        pthread_mutex_lock(&s->mu);
        s->loading = 0;
        pthread_mutex_unlock(&s->mu);
        serve_reply_error(s, r, PROTO_V2, STATS_REPOSITORY, t0, 500, "out of memory");
        return;
    }
    if (httpd_defer(s->httpd, r, load_route_work, c) < 0) {
        free(c->uri);
        free(c);
        pthread_mutex_lock(&s->mu);
        s->loading = 0;
        pthread_mutex_unlock(&s->mu);
    }
}

void serve_repository_index(serve *s, httpd_req *r, double t0)
{
    json_t *list = json_array();
    pthread_mutex_lock(&s->mu);
    const char *state = s->loading ? "LOADING" : s->pub ? "READY" : "UNAVAILABLE";
    if (s->pub)
        json_array_append_new(list, json_pack("{s:s,s:s,s:s}", "name", s->pub->name, "version", s->pub->version,
                                              "state", state));
    else
        json_array_append_new(list, json_pack("{s:s,s:s,s:s?}", "name", s->o.model_name ? s->o.model_name : "",
                                              "state", state, "reason", s->load_error));
    pthread_mutex_unlock(&s->mu);
    serve_reply_json(s, r, STATS_REPOSITORY, t0, 200, list, NULL);
}
