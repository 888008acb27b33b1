#include "kube.h"

#include "err.h"
#include "http.h"
#include "kubeauth.h"
#include "ratelimit.h"
#include "watch.h"

#define KUBE_MAX_COUNTS 64 /* distinct (verb, code) pairs counted */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kube_client {
    char *server;
    char *namespace;
    http_client *http;
    kube_auth *auth;
    pthread_mutex_t stats_mu; /* guards counts */
    struct { char verb[8]; int code; long n; } counts[KUBE_MAX_COUNTS];
    int ncounts;
    rl_bucket *limit; /* NULL: no client-side limit */
};

kube_client *kube_client_new(const kube_config *cfg)
{
    kube_client *c = calloc(1, sizeof *c);
    if (!c) {
        err_set(KF_ENOMEM, "kube: out of memory");
        return NULL;
    }
    pthread_mutex_init(&c->stats_mu, NULL);
    if (!cfg->server || !*cfg->server) {
        err_set(KF_EINVAL, "kube: no server in the configuration");
        goto fail;
    }
    c->server = strdup(cfg->server);
    c->namespace = strdup(cfg->namespace ? cfg->namespace : "default");
    c->auth = kube_auth_new(cfg);
    if (!c->server || !c->namespace || !c->auth) {
        err_set(KF_ENOMEM, "kube: out of memory");
        goto fail;
    }
    http_options o = {
        .ca_file = cfg->ca_file, .ca_pem = cfg->ca_pem, .cert_file = cfg->cert_file,
        .cert_pem = cfg->cert_pem, .key_file = cfg->key_file, .key_pem = cfg->key_pem,
        .insecure = cfg->insecure, .connect_timeout_ms = 5000, .timeout_ms = 30000,
    };
    c->http = http_client_new(&o);
    if (!c->http)
        goto fail;
    return c;
fail:
    kube_client_free(c);
    return NULL;
}

void kube_client_free(kube_client *c)
{
    if (!c)
        return;
    http_client_free(c->http);
    kube_auth_free(c->auth);
    pthread_mutex_destroy(&c->stats_mu);
    rl_free(c->limit);
    free(c->server);
    free(c->namespace);
    free(c);
}

const char *kube_client_namespace(const kube_client *c) { return c->namespace; }

int kube_client_set_limit(kube_client *c, double qps, int burst)
{
    rl_bucket *b = NULL;
    if (qps > 0 && !(b = rl_new(qps, burst)))
        return err_set(KF_ENOMEM, "kube: out of memory");
    rl_free(c->limit);
    c->limit = b;
    return KF_OK;
}

double kube_client_throttled_seconds(kube_client *c) { return rl_waited(c->limit); }

/* Counts one request by verb and HTTP status (0: no response). */
static void count_request(kube_client *c, const char *verb, long code)
{
    pthread_mutex_lock(&c->stats_mu);
    int i = 0;
    while (i < c->ncounts && (c->counts[i].code != (int)code || strcmp(c->counts[i].verb, verb) != 0))
        i++;
    if (i == c->ncounts && c->ncounts < KUBE_MAX_COUNTS) {
        snprintf(c->counts[i].verb, sizeof c->counts[i].verb, "%s", verb);
        c->counts[i].code = (int)code;
        c->ncounts++;
    }
    if (i < c->ncounts)
        c->counts[i].n++;
    pthread_mutex_unlock(&c->stats_mu);
}

int kube_status_error(long http_status, const char *body, const char *method, const char *path)
{
    json_t *st = body ? json_loads(body, 0, NULL) : NULL;
    const char *msg = json_string_value(json_object_get(st, "message"));
    const char *reason = json_string_value(json_object_get(st, "reason"));
    int code;
    switch (http_status) {
    case 404: code = KF_ENOTFOUND; break;
    case 409: code = reason && strcmp(reason, "AlreadyExists") == 0 ? KF_EEXISTS : KF_ECONFLICT; break;
    case 410: code = KF_EGONE; break;
    case 401: case 403: code = KF_EAUTH; break;
    case 400: case 422: code = KF_EINVAL; break;
    case 415: code = KF_EUNSUPPORTED; break;
    default: code = KF_ERETRY; break; /* 408, 429, 5xx and anything unexpected */
    }
    if (msg)
        err_set(code, "%s %s: HTTP %ld: %s", method, path, http_status, msg);
    else
        err_set(code, "%s %s: HTTP %ld: %.200s", method, path, http_status, body ? body : "");
    json_decref(st);
    return code;
}

/* Headers for one request: content type, accept, authorization. Frees with free_headers. */
static int make_headers(kube_client *c, const char *content_type, char *hdrs[4])
{
    memset(hdrs, 0, 4 * sizeof *hdrs);
    char *token = NULL;
    int rc = kube_auth_token(c->auth, &token);
    if (rc)
        return err_wrap(rc, "kube: credentials");
    int k = 0;
    if (asprintf(&hdrs[k++], "Content-Type: %s", content_type ? content_type : "application/json") < 0 ||
        !(hdrs[k++] = strdup("Accept: application/json")) ||
        (token && asprintf(&hdrs[k++], "Authorization: Bearer %s", token) < 0)) {
        hdrs[k - 1] = NULL;
        rc = err_set(KF_ENOMEM, "kube: out of memory");
    }
    free(token);
    return rc;
}

static void free_headers(char *hdrs[4])
{
    for (int i = 0; i < 4; i++)
        free(hdrs[i]);
}

static char *url_of(kube_client *c, const char *path)
{
    char *url = NULL;
    if (asprintf(&url, "%s%s", c->server, path) < 0)
        return NULL;
    return url;
}

int kube_request(kube_client *c, const char *method, const char *path, const char *content_type,
                 const json_t *body, json_t **out)
{
    if (out)
        *out = NULL;
    int rc = KF_OK;
    char *url = url_of(c, path), *text = NULL, *hdrs[4] = {0};
    http_response resp = {0};
    if (!url || (body && !(text = json_dumps(body, JSON_COMPACT)))) {
        rc = err_set(KF_ENOMEM, "kube: out of memory");
        goto done;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        free_headers(hdrs);
        if ((rc = make_headers(c, content_type, hdrs)))
            goto done;
        rl_take(c->limit);
        http_response_dispose(&resp);
        http_request req = {.method = method, .url = url, .headers = (const char *const *)hdrs,
                            .body = text, .body_len = text ? strlen(text) : 0};
        rc = http_do(c->http, &req, &resp);
        count_request(c, method, rc ? 0 : resp.status);
        if (rc)
            goto done;
        if (resp.status != 401)
            break;
        kube_auth_invalidate(c->auth); /* expired token: fetch a fresh one and try once more */
    }
    if (resp.status < 200 || resp.status >= 300) {
        rc = kube_status_error(resp.status, resp.body, method, path);
        goto done;
    }
    if (out) {
        json_error_t jerr;
        *out = json_loadb(resp.body, resp.body_len, 0, &jerr);
        if (!*out)
            rc = err_set(KF_ERETRY, "%s %s: response is not JSON: %s", method, path, jerr.text);
    }
done:
    http_response_dispose(&resp);
    free_headers(hdrs);
    free(url);
    free(text);
    return rc;
}

int kube_get(kube_client *c, const char *path, json_t **out)
{
    return kube_request(c, "GET", path, NULL, NULL, out);
}

int kube_create(kube_client *c, const char *collection, const json_t *obj, json_t **out)
{
    return kube_request(c, "POST", collection, NULL, obj, out);
}

int kube_merge_patch(kube_client *c, const char *path, const json_t *patch, json_t **out)
{
    return kube_request(c, "PATCH", path, "application/merge-patch+json", patch, out);
}

int kube_replace(kube_client *c, const char *path, const json_t *obj, json_t **out)
{
    return kube_request(c, "PUT", path, NULL, obj, out);
}

int kube_delete(kube_client *c, const char *path, const char *propagation, long grace_seconds)
{
    json_t *opts = json_pack("{s:s,s:s}", "kind", "DeleteOptions", "apiVersion", "v1");
    if (!opts)
        return err_set(KF_ENOMEM, "kube: out of memory");
    if (propagation)
        json_object_set_new(opts, "propagationPolicy", json_string(propagation));
    if (grace_seconds >= 0)
        json_object_set_new(opts, "gracePeriodSeconds", json_integer(grace_seconds));
    int rc = kube_request(c, "DELETE", path, NULL, opts, NULL);
    json_decref(opts);
    return rc;
}

int kube_list(kube_client *c, const char *collection, const char *query, long limit, json_t **items,
              char **rv)
{
    return kube_list_map(c, collection, query, limit, NULL, NULL, items, rv);
}

int kube_list_map(kube_client *c, const char *collection, const char *query, long limit, kube_item_map map,
                  void *ctx, json_t **items, char **rv)
{
    *items = NULL;
    *rv = NULL;
    int rc = KF_OK, restarted = 0;
    char *cont = NULL, *path = NULL;
    json_t *all = json_array(), *page = NULL;
    if (!all)
        return err_set(KF_ENOMEM, "kube: out of memory");
    for (;;) {
        char *esc = cont ? http_escape(cont) : NULL;
        char lim[32] = "";
        if (limit > 0)
            snprintf(lim, sizeof lim, "limit=%ld", limit);
        free(path);
        path = NULL;
        if (asprintf(&path, "%s?%s%s%s%s%s", collection, lim, query && *query ? (*lim ? "&" : "") : "",
                     query ? query : "", esc ? "&continue=" : "", esc ? esc : "") < 0) {
            path = NULL;
            free(esc);
            rc = err_set(KF_ENOMEM, "kube: out of memory");
            goto done;
        }
        free(esc);
        json_decref(page);
        page = NULL;
        rc = kube_get(c, path, &page);
        if (rc == KF_EGONE && cont && !restarted) {
            /* The continue token expired: start over once, from a fresh snapshot. */
            restarted = 1;
            free(cont);
            cont = NULL;
            json_array_clear(all);
            continue;
        }
        if (rc)
            goto done;
        json_t *its = json_object_get(page, "items");
        json_t *meta = json_object_get(page, "metadata");
        if (its && !json_is_array(its)) {
            rc = err_set(KF_ERETRY, "GET %s: items is not an array", path);
            goto done;
        }
        size_t i;
        json_t *it;
        json_array_foreach(its, i, it) {
            json_t *keep = map ? map(ctx, it) : json_incref(it);
            if (map && !keep)
                continue;
            if (json_array_append_new(all, keep) != 0) {
                rc = err_set(KF_ENOMEM, "kube: out of memory");
                goto done;
            }
        }
        const char *next = json_string_value(json_object_get(meta, "continue"));
        const char *v = json_string_value(json_object_get(meta, "resourceVersion"));
        free(cont);
        cont = next && *next ? strdup(next) : NULL;
        if (!cont) {
            if (!(*rv = strdup(v ? v : ""))) {
                rc = err_set(KF_ENOMEM, "kube: out of memory");
                goto done;
            }
            break;
        }
    }
    *items = all;
    all = NULL;
done:
    json_decref(all);
    json_decref(page);
    free(cont);
    free(path);
    return rc;
}

typedef struct {
    watch_parser parser;
    const kube_watch_opts *opt;
    int rc;
} watch_ctx;

static int on_watch_data(void *u, const char *data, size_t len)
{
    watch_ctx *w = u;
    w->rc = watch_parser_feed(&w->parser, data, len, w->opt->on_event, w->opt->ctx);
    return w->rc != 0 || w->parser.stopped;
}

int kube_watch(kube_client *c, const kube_watch_opts *opt)
{
    int rc = KF_OK;
    char *path = NULL, *url = NULL, *hdrs[4] = {0}, *rv = NULL;
    http_response resp = {0};
    watch_ctx w = {.opt = opt};
    long tmo = opt->timeout_seconds > 0 ? opt->timeout_seconds : 300;
    rv = opt->resource_version ? http_escape(opt->resource_version) : NULL;
    if (asprintf(&path, "%s?watch=1&allowWatchBookmarks=true&timeoutSeconds=%ld%s%s%s%s", opt->collection,
                 tmo, rv ? "&resourceVersion=" : "", rv ? rv : "", opt->query && *opt->query ? "&" : "",
                 opt->query ? opt->query : "") < 0) {
        path = NULL;
        rc = err_set(KF_ENOMEM, "kube: out of memory");
        goto done;
    }
    if (!(url = url_of(c, path))) {
        rc = err_set(KF_ENOMEM, "kube: out of memory");
        goto done;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        free_headers(hdrs);
        if ((rc = make_headers(c, NULL, hdrs)))
            goto done;
        http_response_dispose(&resp);
        watch_parser_dispose(&w.parser);
        w.rc = 0;
        /* The server ends the watch after tmo; allow a margin before giving up on the socket. */
        http_request req = {.url = url, .headers = (const char *const *)hdrs, .timeout_ms = -1,
                            .low_speed_secs = tmo + 30, .on_data = on_watch_data, .ctx = &w,
                            .cancel = opt->cancel};
        rc = http_do(c->http, &req, &resp);
        count_request(c, "WATCH", rc ? 0 : resp.status);
        if (rc == KF_OK && resp.status == 401) {
            kube_auth_invalidate(c->auth);
            continue;
        }
        break;
    }
    if (w.rc) {
        rc = w.rc; /* the parser's error (ERROR event, malformed stream) says more than "aborted" */
        goto done;
    }
    if (w.parser.stopped) {
        rc = KF_OK;
        goto done;
    }
    if (rc) {
        if (opt->cancel && *opt->cancel)
            rc = err_set(KF_ERETRY, "watch %s: cancelled", opt->collection);
        goto done;
    }
    if (resp.status < 200 || resp.status >= 300) {
        rc = kube_status_error(resp.status, resp.body, "WATCH", opt->collection);
        goto done;
    }
    rc = watch_parser_finish(&w.parser, opt->on_event, opt->ctx);
done:
    watch_parser_dispose(&w.parser);
    http_response_dispose(&resp);
    free_headers(hdrs);
    free(path);
    free(url);
    free(rv);
    return rc;
}

int kube_get_text(kube_client *c, const char *path, size_t max_bytes, char **out)
{
    *out = NULL;
    int rc = KF_OK;
    char *url = url_of(c, path), *hdrs[4] = {0};
    http_response resp = {0};
    if (!url) {
        rc = err_set(KF_ENOMEM, "kube: out of memory");
        goto done;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        free_headers(hdrs);
        if ((rc = make_headers(c, NULL, hdrs)))
            goto done;
        free(hdrs[1]);
        if (!(hdrs[1] = strdup("Accept: */*"))) {
            rc = err_set(KF_ENOMEM, "kube: out of memory");
            goto done;
        }
        http_response_dispose(&resp);
        rc = http_do(c->http, &(http_request){.url = url, .headers = (const char *const *)hdrs}, &resp);
        count_request(c, "GET", rc ? 0 : resp.status);
        if (rc)
            goto done;
        if (resp.status != 401)
            break;
        kube_auth_invalidate(c->auth);
    }
    if (resp.status < 200 || resp.status >= 300) {
        rc = kube_status_error(resp.status, resp.body, "GET", path);
        goto done;
    }
    size_t n = resp.body_len < max_bytes ? resp.body_len : max_bytes;
    if (!(*out = malloc(n + 1))) {
        rc = err_set(KF_ENOMEM, "kube: out of memory");
        goto done;
    }
    memcpy(*out, resp.body + (resp.body_len - n), n); /* the tail, when it is too long */
    (*out)[n] = '\0';
done:
    http_response_dispose(&resp);
    free_headers(hdrs);
    free(url);
    return rc;
}

char *kube_client_metrics(kube_client *c)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (!f)
        return NULL;
    fputs("# HELP kubefit_api_requests_total Requests to the Kubernetes API server by verb and HTTP code "
          "(code 0: no response).\n# TYPE kubefit_api_requests_total counter\n", f);
    pthread_mutex_lock(&c->stats_mu);
    for (int i = 0; i < c->ncounts; i++)
        fprintf(f, "kubefit_api_requests_total{verb=\"%s\",code=\"%d\"} %ld\n", c->counts[i].verb, c->counts[i].code,
                c->counts[i].n);
    pthread_mutex_unlock(&c->stats_mu);
    fclose(f);
    return out;
}

typedef struct {
    int (*on_data)(void *ctx, const char *data, size_t len);
    void *ctx;
    int stopped;
} stream_ctx;

static int on_stream_data(void *u, const char *data, size_t len)
{
    stream_ctx *s = u;
    if (s->on_data(s->ctx, data, len) != 0)
        s->stopped = 1;
    return s->stopped;
}

int kube_stream(kube_client *c, const char *path, int (*on_data)(void *ctx, const char *data, size_t len), void *ctx,
                const volatile int *cancel)
{
    int rc = KF_OK;
    char *url = url_of(c, path), *hdrs[4] = {0};
    http_response resp = {0};
    stream_ctx s = {.on_data = on_data, .ctx = ctx};
    if (!url)
        return err_set(KF_ENOMEM, "kube: out of memory");
    for (int attempt = 0; attempt < 2; attempt++) {
        free_headers(hdrs);
        if ((rc = make_headers(c, NULL, hdrs)))
            goto done;
        free(hdrs[1]); /* logs are text: the API server refuses Accept: application/json there */
        if (!(hdrs[1] = strdup("Accept: */*"))) {
            rc = err_set(KF_ENOMEM, "kube: out of memory");
            goto done;
        }
        http_response_dispose(&resp);
        http_request req = {.url = url, .headers = (const char *const *)hdrs, .timeout_ms = -1, .on_data = on_stream_data,
                            .ctx = &s, .cancel = cancel};
        rc = http_do(c->http, &req, &resp);
        if (rc == KF_OK && resp.status == 401 && !s.stopped) {
            kube_auth_invalidate(c->auth);
            continue;
        }
        break;
    }
    if (s.stopped) {
        rc = KF_OK;
        goto done;
    }
    if (rc) {
        if (cancel && *cancel)
            rc = err_set(KF_ERETRY, "GET %s: cancelled", path);
        goto done;
    }
    if (resp.status < 200 || resp.status >= 300)
        rc = kube_status_error(resp.status, resp.body, "GET", path);
done:
    http_response_dispose(&resp);
    free_headers(hdrs);
    free(url);
    return rc;
}
