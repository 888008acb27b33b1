/* server: routes of the controller's HTTP side. See server.h. */
#include "server.h"

#include "console.h"
#include "err.h"
#include "httpd.h"
#include "ingest.h"
#include "log.h"
#include "review.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BODY (16 * 1024) /* a progress report is ~200 bytes */

struct server {
    server_options opt;
    httpd *http;
    review *review;
    ingest *ingest;
    console *console;
};

static void progress_worker(void *arg, httpd_req *r)
{
    server *s = arg;
    size_t len = 0;
    const char *body = httpd_req_body(r, &len);
    ingest_result res;
    ingest_report(s->ingest, &res, httpd_req_path(r), httpd_req_bearer(r), body, len);
    char headers[96] = "";
    if (res.status == 401)
        snprintf(headers, sizeof headers, "WWW-Authenticate: Bearer realm=\"kubefit\"\r\n");
    else if (res.retry_after_s > 0)
        snprintf(headers, sizeof headers, "Retry-After: %d\r\n", (int)(res.retry_after_s + 0.999));
    if (res.outcome == INGEST_ACCEPTED) {
        httpd_reply(r, 204, NULL, NULL, 0, NULL);
    } else {
        char *msg = NULL;
        int n = asprintf(&msg, "%s: %s\n", ingest_outcome_name(res.outcome), err_msg());
        httpd_reply_take(r, res.status, NULL, n < 0 ? NULL : msg, n < 0 ? 0 : (size_t)n, headers[0] ? headers : NULL);
    }
}

/* The server's own counters, then everyone else's. Caller frees. */
static char *metrics(server *s)
{
    httpd_stats h = httpd_get_stats(s->http);
    review_stats rv = review_get_stats(s->review);
    console_stats cs = s->console ? console_get_stats(s->console) : (console_stats){0};
    char *parts[3] = {controller_metrics(s->opt.ctl), kube_client_metrics(s->opt.kube), ingest_metrics(s->ingest)};
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (!f)
        goto done;
    for (int i = 0; i < 3; i++)
        fputs(parts[i] ? parts[i] : "", f);
    fprintf(f,
            "# HELP kubefit_http_requests_total HTTP requests served, by status class.\n"
            "# TYPE kubefit_http_requests_total counter\n"
            "kubefit_http_requests_total{code=\"2xx\"} %ld\nkubefit_http_requests_total{code=\"4xx\"} %ld\n"
            "kubefit_http_requests_total{code=\"5xx\"} %ld\n"
            "# HELP kubefit_http_busy_total Requests refused with 503 because every worker was busy.\n"
            "# TYPE kubefit_http_busy_total counter\nkubefit_http_busy_total %ld\n"
            "# HELP kubefit_websocket_clients Console WebSocket clients connected now.\n"
            "# TYPE kubefit_websocket_clients gauge\nkubefit_websocket_clients %ld\n"
            "# TYPE kubefit_websocket_dropped_total counter\nkubefit_websocket_dropped_total %ld\n"
            "# HELP kubefit_tokenreviews_total TokenReviews asked of the API server (cache misses).\n"
            "# TYPE kubefit_tokenreviews_total counter\nkubefit_tokenreviews_total %ld\n"
            "# TYPE kubefit_tokenreview_cache_hits_total counter\nkubefit_tokenreview_cache_hits_total %ld\n"
            "# TYPE kubefit_tokens_refused_total counter\nkubefit_tokens_refused_total %ld\n"
            "# HELP kubefit_subjectaccessreviews_total SubjectAccessReviews asked (cache misses).\n"
            "# TYPE kubefit_subjectaccessreviews_total counter\nkubefit_subjectaccessreviews_total %ld\n"
            "# TYPE kubefit_access_denied_total counter\nkubefit_access_denied_total %ld\n"
            "# TYPE kubefit_review_errors_total counter\nkubefit_review_errors_total %ld\n"
            "# HELP kubefit_console_requests_total Console API requests.\n"
            "# TYPE kubefit_console_requests_total counter\nkubefit_console_requests_total %ld\n"
            "# TYPE kubefit_console_forbidden_total counter\nkubefit_console_forbidden_total %ld\n"
            "# TYPE kubefit_console_messages_total counter\nkubefit_console_messages_total %ld\n",
            h.responses_2xx, h.responses_4xx, h.responses_5xx, h.refused_busy, h.ws_open, h.ws_dropped,
            rv.token_reviews, rv.token_cache_hits, rv.token_refused, rv.access_reviews, rv.access_denied, rv.errors,
            cs.api_requests, cs.api_denied, cs.ws_messages);
    fclose(f);
done:
    for (int i = 0; i < 3; i++)
        free(parts[i]);
    return out;
}

static void on_request(void *ctx, httpd_req *r)
{
    server *s = ctx;
    const char *path = httpd_req_path(r), *method = httpd_req_method(r);
    int get = !strcmp(method, "GET");
    if (!strcmp(path, "/healthz") && get) {
        httpd_reply(r, 200, NULL, "ok\n", 3, NULL);
    } else if (!strcmp(path, "/readyz") && get) {
        int ok = controller_ready(s->opt.ctl);
        httpd_reply(r, ok ? 200 : 503, NULL, ok ? "ok\n" : "caches not synced\n", ok ? 3 : 18, NULL);
    } else if (!strcmp(path, "/metrics") && get) {
        char *m = metrics(s);
        if (m)
            httpd_reply_take(r, 200, "text/plain; version=0.0.4; charset=utf-8", m, strlen(m), NULL);
        else
            httpd_reply(r, 500, NULL, "out of memory\n", 14, NULL);
    } else if (!strncmp(path, "/progress/", 10)) {
        if (strcmp(method, "POST") != 0)
            httpd_reply(r, 405, NULL, "POST only\n", 10, "Allow: POST\r\n");
        else
            httpd_defer(s->http, r, progress_worker, s);
    } else if (s->console && console_owns(path)) {
        console_handle(s->console, r);
    } else {
        httpd_reply(r, 404, NULL, "not found\n", 10, NULL);
    }
}

static int ws_path_ok(void *ctx, const char *path)
{
    server *s = ctx;
    return s->console && console_ws_path_ok(s->console, path);
}

static void ws_open(void *ctx, uint64_t conn, const char *path, const char *bearer)
{
    server *s = ctx;
    console_ws_open(s->console, conn, bearer);
}

static void ws_message(void *ctx, uint64_t conn, const char *text, size_t len)
{
    server *s = ctx;
    console_ws_message(s->console, conn, text, len);
}

static void ws_close(void *ctx, uint64_t conn)
{
    server *s = ctx;
    console_ws_close(s->console, conn);
}

static void on_job(void *ctx, const char *type, const json_t *job)
{
    console_on_job(ctx, type, job);
}

server *server_new(const server_options *opt)
{
    server *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(KF_ENOMEM, "server: out of memory");
        return NULL;
    }
    s->opt = *opt;
    informer *jobs = controller_jobs(opt->ctl), *pods = controller_pods(opt->ctl);
    if (!(s->review = review_new(&(review_options){.kube = opt->kube})) ||
        !(s->ingest = ingest_new(&(ingest_options){.kube = opt->kube, .review = s->review, .jobs = jobs, .pods = pods,
                                                   .audience = opt->progress_audience, .rate_per_s = opt->progress_rate,
                                                   .burst = opt->progress_burst})) ||
        (opt->console && !(s->console = console_new(&(console_options){.kube = opt->kube, .review = s->review,
                                                                       .jobs = jobs, .pods = pods,
                                                                       .anonymous = opt->console_anonymous}))))
        goto fail;
    s->http = httpd_new(&(httpd_options){.on_request = on_request, .ws_path_ok = ws_path_ok, .on_ws_open = ws_open,
                                         .on_ws_message = ws_message, .on_ws_close = ws_close, .ctx = s,
                                         .listen = opt->listen, .max_body = MAX_BODY, .workers = opt->workers});
    if (!s->http)
        goto fail;
    if (s->console) {
        console_attach(s->console, s->http);
        controller_observe_jobs(opt->ctl, on_job, s->console);
    }
    return s;
fail:
    server_free(s);
    return NULL;
}

int server_port(const server *s) { return httpd_port(s->http); }

int server_start(server *s)
{
    if (s->opt.console_anonymous)
        log_warn("server", "console open to anyone who reaches it (read-only, no token)", NULL);
    return httpd_start(s->http);
}

void server_stop(server *s)
{
    if (s)
        httpd_stop(s->http);
}

void server_free(server *s)
{
    if (!s)
        return;
    httpd_free(s->http); /* first: no handler runs after this */
    console_free(s->console);
    ingest_free(s->ingest);
    review_free(s->review);
    free(s);
}
