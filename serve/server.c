/* server: routes and life cycle of kubefit-serve (loads: loading.c). See server.h and
 * docs/serving.md.
 *
 * Threads: httpd's service thread routes every request; cheap routes (health, metadata,
 * metrics) answer there. Inference requests go to an httpd worker, which parses the body and
 * queues a batcher job; an inference worker answers it (done_job) and replies. */
#include "server_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "device.h"
#include "err.h"
#include "log.h"

#ifndef KUBEFIT_VERSION
#define KUBEFIT_VERSION "dev"
#endif

#define DEFAULT_MAX_BODY ((size_t)1 << 20)
#define DEFAULT_MAX_TEXTS 256
#define MAX_NAME 256

double serve_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- replies ---- */

void serve_reply_json(serve *s, httpd_req *r, stats_route route, double t0, int status, json_t *doc,
                       const char *headers)
{
    char *body = doc ? json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(doc);
    if (!body) {
        status = 500;
        body = strdup("{\"error\":\"out of memory\"}");
    }
    stats_request(s->stats, route, status, serve_now() - t0);
    httpd_reply_take(r, status, SERVE_JSON_TYPE, body, body ? strlen(body) : 0, headers);
}

void serve_reply_error(serve *s, httpd_req *r, proto_kind kind, stats_route route, double t0, int status,
                        const char *msg)
{
    size_t len = 0;
    char *body = proto_error(kind, status, msg, &len);
    if (status >= 500)
        log_warn("serve", "request failed", "{s:s,s:s,s:i,s:s}", "method", httpd_req_method(r), "path",
                 httpd_req_path(r), "code", status, "error", msg);
    else
        log_debug("serve", "request refused", "{s:s,s:s,s:i,s:s}", "method", httpd_req_method(r), "path",
                  httpd_req_path(r), "code", status, "error", msg);
    stats_request(s->stats, route, status, serve_now() - t0);
    httpd_reply_take(r, status, SERVE_JSON_TYPE, body, body ? len : 0, status == 503 ? "Retry-After: 1\r\n" : NULL);
}

int serve_ready(serve *s)
{
    pthread_mutex_lock(&s->mu);
    int r = s->pub && !s->draining;
    pthread_mutex_unlock(&s->mu);
    return r;
}

int serve_failed(serve *s)
{
    pthread_mutex_lock(&s->mu);
    int f = s->failed;
    pthread_mutex_unlock(&s->mu);
    return f;
}

static void on_batch(void *ctx, int size, double queue_s, double infer_s, size_t tokens)
{
    serve *s = ctx;
    stats_batch(s->stats, size, queue_s, infer_s, tokens);
}

/* ---- inference ---- */

typedef struct {
    serve *s;
    httpd_req *r;
    proto_kind kind;
    stats_route route;
    double t0;
    proto_request pr;
} infer_call;

static void call_end(infer_call *c)
{
    pthread_mutex_lock(&c->s->mu);
    c->s->in_flight--;
    pthread_mutex_unlock(&c->s->mu);
    proto_request_dispose(&c->pr);
    free(c);
}

/* On the inference thread: the job is answered (or failed). */
static void done_job(batcher_job *j, const batcher_model *m, int rc, const char *error)
{
    infer_call *c = j->ctx;
    serve *s = c->s;
    if (rc < 0) {
        serve_reply_error(s, c->r, c->kind, c->route, c->t0, rc == KF_ERETRY ? 503 : 500, error);
    } else {
        const infer_model *im = m->models[0];
        const size_t L = infer_n_labels(im);
        const char **labels = malloc(L * sizeof *labels);
        size_t len = 0;
        char *body = NULL;
        if (labels) {
            for (size_t l = 0; l < L; l++)
                labels[l] = infer_label(im, l);
            proto_model pm = {.name = m->name, .version = m->version, .labels = labels, .n_labels = L};
            body = proto_response(&c->pr, &pm, j->probs, j->pred, &len);
            free(labels);
        }
        if (!body) {
            serve_reply_error(s, c->r, c->kind, c->route, c->t0, 500, "out of memory");
        } else {
            stats_request(s->stats, c->route, 200, serve_now() - c->t0);
            httpd_reply_take(c->r, 200, SERVE_JSON_TYPE, body, len, NULL);
        }
    }
    batcher_job_free(j);
    call_end(c);
}

/* On an httpd worker: parse, then queue for the inference thread. */
static void parse_and_queue(void *arg, httpd_req *r)
{
    infer_call *c = arg;
    serve *s = c->s;
    size_t len = 0;
    const char *body = httpd_req_body(r, &len);
    int rc = proto_parse(&c->pr, c->kind, body, len, s->o.max_texts ? s->o.max_texts : DEFAULT_MAX_TEXTS);
    if (rc < 0) {
        serve_reply_error(s, r, c->kind, c->route, c->t0, rc == KF_ENOMEM ? 500 : 400, err_msg());
        call_end(c);
        return;
    }
    batcher_job *j = batcher_job_new();
    if (!j) {
        serve_reply_error(s, r, c->kind, c->route, c->t0, 500, "out of memory");
        call_end(c);
        return;
    }
    j->n = c->pr.n;
    j->texts = c->pr.texts;
    j->lens = c->pr.lens;
    j->done = done_job;
    j->ctx = c;
    if ((rc = batcher_submit(s->batcher, j)) < 0) {
        serve_reply_error(s, r, c->kind, c->route, c->t0, 503, err_msg());
        batcher_job_free(j);
        call_end(c);
    }
}

/* The request names the model served now (and its version, when given)? Else a 404 or 503
 * message in msg (a static string or one written into buf). */
static int check_model(serve *s, const char *name, const char *version, int *status, char *buf, size_t cap)
{
    int ok = 0;
    pthread_mutex_lock(&s->mu);
    if (!s->pub) {
        *status = 503;
        snprintf(buf, cap, "%s", s->failed && s->load_error ? s->load_error : "the model is loading");
    } else if (strcmp(name, s->pub->name) != 0) {
        *status = 404;
        snprintf(buf, cap, "model %s not found (this server serves %s)", name, s->pub->name);
    } else if (version && *version && strcmp(version, s->pub->version) != 0) {
        *status = 404;
        snprintf(buf, cap, "model %s version %s not found (version %s is served)", name, version, s->pub->version);
    } else {
        ok = 1;
    }
    pthread_mutex_unlock(&s->mu);
    return ok;
}

static void infer_route(serve *s, httpd_req *r, proto_kind kind, stats_route route, double t0, const char *name,
                        const char *version)
{
    char msg[512];
    int status = 0;
    if (!check_model(s, name, version, &status, msg, sizeof msg)) {
        serve_reply_error(s, r, kind, route, t0, status, msg);
        return;
    }
    infer_call *c = calloc(1, sizeof *c);
    if (!c) {
        serve_reply_error(s, r, kind, route, t0, 500, "out of memory");
        return;
    }
    *c = (infer_call){.s = s, .r = r, .kind = kind, .route = route, .t0 = t0};
    pthread_mutex_lock(&s->mu);
    s->in_flight++;
    pthread_mutex_unlock(&s->mu);
    if (httpd_defer(s->httpd, r, parse_and_queue, c) < 0) { /* httpd answered 503 */
        stats_request(s->stats, route, 503, serve_now() - t0);
        c->r = NULL;
        call_end(c);
    }
}

/* ---- metadata and health ---- */

static json_t *model_metadata(const serve_published *p)
{
    json_t *labels = json_array();
    for (size_t i = 0; labels && i < p->n_labels; i++)
        json_array_append_new(labels, json_string(p->labels[i]));
    json_int_t L = (json_int_t)p->n_labels;
    return json_pack("{s:s,s:[s],s:s,s:[{s:s,s:s,s:[i]}],s:[{s:s,s:s,s:[i]},{s:s,s:s,s:[i,I]},{s:s,s:s,s:[i,I]}],"
                     "s:o,s:{s:b,s:f,s:s,s:s,s:i,s:s}}",
                     "name", p->name, "versions", p->version, "platform", "kubefit", "inputs", "name", "text",
                     "datatype", "BYTES", "shape", -1, "outputs", "name", "labels", "datatype", "BYTES", "shape", -1,
                     "name", "probabilities", "datatype", "FP32", "shape", -1, L, "name", "predicted", "datatype",
                     "BOOL", "shape", -1, L, "labels", labels, "parameters", "multi_label", p->multi_label,
                     "threshold", p->threshold, "language", p->lang, "device", p->device, "max_batch_size",
                     p->max_batch, "uri", p->uri);
}

/* GET /v2/models/NAME[/versions/V][/ready] and GET /v1/models/NAME. */
static void metadata_route(serve *s, httpd_req *r, proto_kind kind, double t0, const char *name, const char *version,
                           int ready_only)
{
    char msg[512];
    int status = 0;
    if (!check_model(s, name, version, &status, msg, sizeof msg)) {
        if (ready_only && status == 503) {
            serve_reply_json(s, r, STATS_METADATA, t0, 503, json_pack("{s:s,s:b}", "name", name, "ready", 0), NULL);
            return;
        }
        serve_reply_error(s, r, kind, STATS_METADATA, t0, status, msg);
        return;
    }
    int ready = serve_ready(s);
    json_t *doc;
    pthread_mutex_lock(&s->mu);
    doc = ready_only || kind == PROTO_V1 ? json_pack("{s:s,s:b}", "name", s->pub->name, "ready", ready)
                                         : model_metadata(s->pub);
    pthread_mutex_unlock(&s->mu);
    serve_reply_json(s, r, STATS_METADATA, t0, ready_only && !ready ? 503 : 200, doc, NULL);
}

static void metrics_route(serve *s, httpd_req *r, double t0)
{
    stats_gauges g = {.queued = batcher_queued(s->batcher), .ready = serve_ready(s)};
    pthread_mutex_lock(&s->mu);
    g.in_flight = s->in_flight;
    char *model = s->pub ? strdup(s->pub->name) : NULL, *version = s->pub ? strdup(s->pub->version) : NULL;
    char *uri = s->pub ? strdup(s->pub->uri) : NULL;
    pthread_mutex_unlock(&s->mu);
    g.model = model, g.version = version, g.uri = uri;
    stats_request(s->stats, STATS_METRICS, 200, serve_now() - t0);
    size_t len = 0;
    char *text = stats_render(s->stats, &g, &len);
    free(model), free(version), free(uri);
    if (text)
        httpd_reply_take(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len, NULL);
    else
        httpd_reply(r, 500, NULL, "out of memory\n", 14, NULL);
}

/* ---- routing ---- */

/* Copies the path segment at *p (up to '/', or end) into out; advances *p past it. 0 when the
 * segment is empty or too long. */
static int segment(const char **p, char *out, size_t cap, char stop2)
{
    const char *b = *p, *e = b;
    while (*e && *e != '/' && *e != stop2)
        e++;
    if (e == b || (size_t)(e - b) >= cap)
        return 0;
    memcpy(out, b, (size_t)(e - b));
    out[e - b] = 0;
    *p = e;
    return 1;
}

static int is(const char *a, const char *b) { return strcmp(a, b) == 0; }

/* /v2/models/NAME[/versions/V][/ready|/infer] */
static void v2_models(serve *s, httpd_req *r, const char *method, const char *rest, double t0)
{
    char name[MAX_NAME], version[MAX_NAME] = "";
    if (!segment(&rest, name, sizeof name, 0)) {
        serve_reply_error(s, r, PROTO_V2, STATS_OTHER, t0, 404, "no model name in the path");
        return;
    }
    if (strncmp(rest, "/versions/", 10) == 0) {
        rest += 10;
        if (!segment(&rest, version, sizeof version, 0)) {
            serve_reply_error(s, r, PROTO_V2, STATS_OTHER, t0, 404, "no version in the path");
            return;
        }
    }
    if (is(rest, "/infer")) {
        if (!is(method, "POST"))
            serve_reply_error(s, r, PROTO_V2, STATS_V2_INFER, t0, 405, "use POST for infer");
        else
            infer_route(s, r, PROTO_V2, STATS_V2_INFER, t0, name, version);
    } else if (is(rest, "/ready") || is(rest, "") || is(rest, "/")) {
        if (!is(method, "GET"))
            serve_reply_error(s, r, PROTO_V2, STATS_METADATA, t0, 405, "use GET");
        else
            metadata_route(s, r, PROTO_V2, t0, name, version, is(rest, "/ready"));
    } else {
        serve_reply_error(s, r, PROTO_V2, STATS_OTHER, t0, 404, "no such route");
    }
}

/* /v1/models[/NAME[:predict]] */
static void v1_models(serve *s, httpd_req *r, const char *method, const char *rest, double t0)
{
    char name[MAX_NAME];
    if (*rest == 0 || is(rest, "/")) {
        if (!is(method, "GET")) {
            serve_reply_error(s, r, PROTO_V1, STATS_METADATA, t0, 405, "use GET");
            return;
        }
        pthread_mutex_lock(&s->mu);
        json_t *doc = json_pack("{s:[s?]}", "models", s->pub ? s->pub->name : NULL);
        pthread_mutex_unlock(&s->mu);
        serve_reply_json(s, r, STATS_METADATA, t0, 200, doc, NULL);
        return;
    }
    rest++; /* '/' */
    if (!segment(&rest, name, sizeof name, ':')) {
        serve_reply_error(s, r, PROTO_V1, STATS_OTHER, t0, 404, "no model name in the path");
        return;
    }
    if (is(rest, ":predict")) {
        if (!is(method, "POST"))
            serve_reply_error(s, r, PROTO_V1, STATS_V1_PREDICT, t0, 405, "use POST for :predict");
        else
            infer_route(s, r, PROTO_V1, STATS_V1_PREDICT, t0, name, NULL);
    } else if (*rest == 0) {
        if (!is(method, "GET"))
            serve_reply_error(s, r, PROTO_V1, STATS_METADATA, t0, 405, "use GET");
        else
            metadata_route(s, r, PROTO_V1, t0, name, NULL, 0);
    } else {
        serve_reply_error(s, r, PROTO_V1, STATS_OTHER, t0, 404, "no such route");
    }
}

static void on_request(void *ctx, httpd_req *r)
{
    serve *s = ctx;
    const char *path = httpd_req_path(r), *method = httpd_req_method(r);
    double t0 = serve_now();
    if (is(path, "/v2/health/live") || is(path, "/v2/health/ready")) {
        if (!is(method, "GET")) {
            serve_reply_error(s, r, PROTO_V2, STATS_HEALTH, t0, 405, "use GET");
            return;
        }
        int live = is(path, "/v2/health/live"), ok = live || serve_ready(s);
        serve_reply_json(s, r, STATS_HEALTH, t0, ok ? 200 : 503, json_pack("{s:b}", live ? "live" : "ready", ok), NULL);
    } else if (is(path, "/v2") || is(path, "/v2/")) {
        if (!is(method, "GET")) {
            serve_reply_error(s, r, PROTO_V2, STATS_METADATA, t0, 405, "use GET");
            return;
        }
        json_t *ext = json_array();
        if (s->o.repository_api)
            json_array_append_new(ext, json_string("model_repository"));
        serve_reply_json(s, r, STATS_METADATA, t0, 200,
                   json_pack("{s:s,s:s,s:o}", "name", "kubefit-serve", "version", KUBEFIT_VERSION, "extensions", ext),
                   NULL);
    } else if (strncmp(path, "/v2/models/", 11) == 0) {
        v2_models(s, r, method, path + 11, t0);
    } else if (s->o.repository_api && is(path, "/v2/repository/index")) {
        if (!is(method, "POST"))
            serve_reply_error(s, r, PROTO_V2, STATS_REPOSITORY, t0, 405, "use POST");
        else
            serve_repository_index(s, r, t0);
    } else if (s->o.repository_api && strncmp(path, "/v2/repository/models/", 22) == 0) {
        const char *rest = path + 22;
        char name[MAX_NAME];
        if (!segment(&rest, name, sizeof name, 0) || !is(rest, "/load"))
            serve_reply_error(s, r, PROTO_V2, STATS_REPOSITORY, t0, 404, "no such route (POST .../models/NAME/load)");
        else if (!is(method, "POST"))
            serve_reply_error(s, r, PROTO_V2, STATS_REPOSITORY, t0, 405, "use POST");
        else
            serve_repository_load(s, r, t0, name);
    } else if (is(path, "/v1/models") || strncmp(path, "/v1/models/", 11) == 0) {
        v1_models(s, r, method, path + 10, t0);
    } else if (is(path, "/ping")) {
        if (!is(method, "GET")) {
            serve_reply_error(s, r, PROTO_TS, STATS_HEALTH, t0, 405, "use GET");
            return;
        }
        int ok = serve_ready(s);
        serve_reply_json(s, r, STATS_HEALTH, t0, ok ? 200 : 503, json_pack("{s:s}", "status", ok ? "Healthy" : "Unhealthy"),
                   NULL);
    } else if (strncmp(path, "/predictions/", 13) == 0) {
        const char *rest = path + 13;
        char name[MAX_NAME], version[MAX_NAME] = "";
        int ok = segment(&rest, name, sizeof name, 0);
        if (ok && *rest == '/') {
            rest++;
            ok = segment(&rest, version, sizeof version, 0);
        }
        if (!ok || *rest)
            serve_reply_error(s, r, PROTO_TS, STATS_TS_PREDICT, t0, 404, "no such route (POST /predictions/NAME[/VERSION])");
        else if (!is(method, "POST") && !is(method, "PUT"))
            serve_reply_error(s, r, PROTO_TS, STATS_TS_PREDICT, t0, 405, "use POST");
        else
            infer_route(s, r, PROTO_TS, STATS_TS_PREDICT, t0, name, version);
    } else if (is(path, "/metrics")) {
        metrics_route(s, r, t0);
    } else {
        serve_reply_error(s, r, PROTO_V2, STATS_OTHER, t0, 404, "no such route");
    }
}

/* A request the HTTP server refused before routing (405, 413): the error in the shape of the
 * protocol its path belongs to, as the routes answer theirs. */
static void on_refuse(void *ctx, httpd_req *r, int status, const char *message)
{
    serve *s = ctx;
    const char *path = httpd_req_path(r);
    proto_kind kind = PROTO_V2;
    stats_route route = STATS_OTHER;
    if (strncmp(path, "/v1/", 4) == 0)
        kind = PROTO_V1, route = STATS_V1_PREDICT;
    else if (strncmp(path, "/predictions/", 13) == 0 || is(path, "/ping"))
        kind = PROTO_TS, route = strncmp(path, "/predictions/", 13) == 0 ? STATS_TS_PREDICT : STATS_HEALTH;
    else if (strncmp(path, "/v2/", 4) == 0 && strstr(path, "/infer"))
        route = STATS_V2_INFER;
    char msg[160];
    snprintf(msg, sizeof msg, "%s", message);
    msg[strcspn(msg, "\n")] = 0;
    serve_reply_error(s, r, kind, route, serve_now(), status, msg);
}

/* ---- life cycle ---- */

serve *serve_new(const serve_options *o)
{
    serve *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(KF_ENOMEM, "out of memory");
        return NULL;
    }
    s->o = *o;
    pthread_mutex_init(&s->mu, NULL);
    if (s->o.workers > 1 && s->o.infer.threads <= 0) { /* the cores, shared among the workers */
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        int cores = device_default_threads(device_cgroup_root(), online > 0 ? (int)online : 1, NULL);
        s->o.infer.threads = cores / s->o.workers > 0 ? cores / s->o.workers : 1;
    }
    if (!o->model_uri || !*o->model_uri) {
        err_set(KF_EINVAL, "no model URI");
        goto fail;
    }
    s->model_uri = strdup(o->model_uri);
    s->o.model_uri = s->model_uri;
    s->stats = stats_new();
    if (!s->model_uri || !s->stats) {
        err_set(KF_ENOMEM, "out of memory");
        goto fail;
    }
    if (storage_new(&s->st, NULL) < 0)
        goto fail;
    if (batcher_new(&s->batcher, &(batcher_options){.workers = s->o.workers, .max_batch = o->infer.max_batch,
                                                    .max_delay_s = o->max_delay_s,
                                                    .max_queued = o->max_queued, .on_batch = on_batch,
                                                    .on_model = serve_on_model, .ctx = s}) < 0)
        goto fail;
    s->httpd = httpd_new(&(httpd_options){.on_request = on_request, .on_refuse = on_refuse, .ctx = s, .listen = o->listen,
                                          .max_body = o->max_body ? o->max_body : DEFAULT_MAX_BODY,
                                          .workers = o->http_workers, .max_queued = 1024});
    if (!s->httpd)
        goto fail;
    return s;
fail:
    serve_free(s);
    return NULL;
}

int serve_port(const serve *s) { return httpd_port(s->httpd); }

int serve_start(serve *s)
{
    int rc = httpd_start(s->httpd);
    if (rc == 0)
        rc = serve_load_start(s, s->model_uri, 1);
    return rc;
}

void serve_drain(serve *s)
{
    pthread_mutex_lock(&s->mu);
    s->draining = 1;
    pthread_mutex_unlock(&s->mu);
    log_info("serve", "draining", "{s:f,s:f}", "delaySeconds", s->o.drain_delay_s, "timeoutSeconds",
             s->o.drain_timeout_s);
    double t0 = serve_now();
    while (serve_now() - t0 < s->o.drain_delay_s)
        usleep(20000);
    size_t left = 0;
    t0 = serve_now();
    for (;;) {
        pthread_mutex_lock(&s->mu);
        left = s->in_flight;
        pthread_mutex_unlock(&s->mu);
        if (left == 0 || serve_now() - t0 >= s->o.drain_timeout_s)
            break;
        usleep(10000);
    }
    usleep(50000); /* let the last replies leave the event loop */
    log_info("serve", "drained", "{s:I}", "inFlight", (json_int_t)left);
}

void serve_free(serve *s)
{
    if (!s)
        return;
    httpd_stop(s->httpd);
    if (s->load_thread_started)
        pthread_join(s->load_thread, NULL);
    batcher_free(s->batcher); /* fails what still waits (their replies are dropped: httpd is stopped) */
    httpd_free(s->httpd);
    storage_free(s->st);
    stats_free(s->stats);
    serve_published_free(s->pub);
    free(s->load_error);
    free(s->serving_uri);
    free(s->model_uri);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
