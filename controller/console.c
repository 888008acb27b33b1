/* console: static files, JSON API and WebSocket feed. See console.h. */
#include "console.h"

#include "console_assets.h"
#include "err.h"
#include "history.h"
#include "http.h"
#include "kubetime.h"
#include "log.h"
#include "reconcile.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JOBS_GROUP "kubefit.dev"
#define MAX_LOG_BYTES (256 * 1024)
#define DEFAULT_TAIL_LINES 200
#define MAX_TAIL_LINES 5000
#define MAX_EVENTS 200
#define SCOPE_RECHECK_S 60.0 /* a WebSocket client's rights are asked again this often */

static const char JSON_HEADERS[] = "Cache-Control: no-store\r\n";
static const char PAGE_HEADERS[] =
    "Cache-Control: no-cache\r\n"
    "Content-Security-Policy: default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'\r\n"
    "X-Frame-Options: DENY\r\n";

typedef struct session {
    uint64_t conn;
    json_t *user;          /* NULL until authenticated */
    double expires;        /* the token's exp; 0: none known */
    int authing;           /* a TokenReview is on its way */
    char *ns, *job;        /* subscription: namespace ("" all), job (NULL: the table) */
    int subscribed;
    unsigned gen;          /* bumped by each subscribe, so stale answers are dropped */
    json_t *scope;         /* namespaces (or "*") the subscription may see; NULL: not yet known */
    double scope_time;
    int rechecking;
    struct session *next;
} session;

struct console {
    console_options opt;
    httpd *http;
    history *hist;
    pthread_mutex_t mu; /* guards sessions and counters */
    session *sessions;
    console_stats n;
};

console *console_new(const console_options *opt)
{
    console *c = calloc(1, sizeof *c);
    if (!c) {
        err_set(KF_ENOMEM, "console: out of memory");
        return NULL;
    }
    c->opt = *opt;
    pthread_mutex_init(&c->mu, NULL);
    if (!(c->hist = history_new(0, 0))) {
        console_free(c);
        err_set(KF_ENOMEM, "console: out of memory");
        return NULL;
    }
    return c;
}

static void session_free(session *s)
{
    if (!s)
        return;
    json_decref(s->user);
    json_decref(s->scope);
    free(s->ns);
    free(s->job);
    free(s);
}

void console_free(console *c)
{
    if (!c)
        return;
    while (c->sessions) {
        session *s = c->sessions;
        c->sessions = s->next;
        session_free(s);
    }
    history_free(c->hist);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void console_attach(console *c, httpd *h) { c->http = h; }

console_stats console_get_stats(console *c)
{
    pthread_mutex_lock(&c->mu);
    console_stats s = c->n;
    pthread_mutex_unlock(&c->mu);
    return s;
}

/* ---- views of a job ---- */

static void copy_keys(json_t *dst, const json_t *src, const char *const *keys)
{
    for (; *keys; keys++) {
        json_t *v = json_object_get(src, *keys);
        if (v)
            json_object_set(dst, *keys, v);
    }
}

json_t *console_job_summary(const json_t *job)
{
    static const char *const meta_keys[] = {"namespace", "name", "uid", "creationTimestamp", "generation", NULL};
    static const char *const spec_keys[] = {"language", "epochs", "schedule", "suspend", NULL};
    static const char *const status_keys[] = {"phase", "reason", "message", "currentRun", "attempts", "failures",
                                              "startTime", "completionTime", "progress", "podName", "modelURI",
                                              "metricsURI", "observedGeneration", NULL};
    const json_t *status = json_object_get(job, "status");
    json_t *out = json_object();
    if (!out)
        return NULL;
    copy_keys(out, json_object_get(job, "metadata"), meta_keys);
    copy_keys(out, json_object_get(job, "spec"), spec_keys);
    copy_keys(out, status, status_keys);
    const json_t *m = json_object_get(status, "metrics");
    if (json_is_object(m)) {
        json_t *small = json_deep_copy(m);
        json_object_del(small, "labels");
        json_object_set_new(out, "metrics", small);
    }
    return out;
}

json_t *console_job_detail(const json_t *job)
{
    json_t *out = console_job_summary(job);
    const json_t *status = json_object_get(job, "status");
    if (!out)
        return NULL;
    static const char *const keys[] = {"conditions", "runs", "metrics", "nextAttemptTime", NULL};
    copy_keys(out, status, keys);
    json_t *spec = json_deep_copy(json_object_get(job, "spec"));
    if (json_is_object(spec)) {
        /* Env values may hold secrets: names only. */
        json_t *env = json_object_get(spec, "env"), *e;
        size_t i;
        json_array_foreach(env, i, e) {
            if (json_object_get(e, "value"))
                json_object_set_new(e, "value", json_string("(hidden)"));
        }
        json_object_set_new(out, "spec", spec);
    } else {
        json_decref(spec);
    }
    return out;
}

/* ---- who, and may they ---- */

static json_t *anonymous_user(void)
{
    return json_pack("{s:s,s:[],s:b}", "username", "system:anonymous", "groups", "anonymous", 1);
}

/* 0 with *user, or the HTTP status to answer (401, 503) with err_msg(). */
static int identify(console *c, const char *token, json_t **user, double *expires)
{
    *user = NULL;
    if (expires)
        *expires = 0;
    if (!token) {
        if (c->opt.anonymous) {
            *user = anonymous_user();
            return *user ? 0 : 503;
        }
        err_set(KF_EAUTH, "send your Kubernetes token: Authorization: Bearer <token>");
        return 401;
    }
    int rc = review_token(c->opt.review, user, token, NULL);
    if (rc == KF_EAUTH)
        return 401;
    if (rc)
        return 503;
    if (expires)
        *expires = review_jwt_expiry(token);
    return 0;
}

/* 0 with *ok, or 503 when the review failed. Anonymous access reads everything. */
static int may(console *c, const json_t *user, const review_attrs *a, int *ok)
{
    *ok = 0;
    if (json_is_true(json_object_get(user, "anonymous"))) {
        *ok = 1;
        return 0;
    }
    return review_access(c->opt.review, ok, user, a) ? 503 : 0;
}

/* The namespaces whose jobs user may list: {"*":true} for all, else {"ns":true,...} (possibly
 * empty). ns non-empty: that namespace only. 0 or 503. */
static int list_scope(console *c, const json_t *user, const char *ns, json_t **scope)
{
    *scope = json_object();
    int ok = 0, rc;
    if (!*scope)
        return 503;
    if (ns && *ns) {
        rc = may(c, user, &(review_attrs){.verb = "list", .group = JOBS_GROUP, .resource = "trainingjobs", .namespace = ns}, &ok);
        if (rc == 0)
            json_object_set_new(*scope, ns, json_boolean(ok));
        return rc;
    }
    rc = may(c, user, &(review_attrs){.verb = "list", .group = JOBS_GROUP, .resource = "trainingjobs"}, &ok);
    if (rc || ok) {
        if (ok)
            json_object_set_new(*scope, "*", json_true());
        return rc;
    }
    /* Not cluster-wide: namespace by namespace, for the namespaces that have jobs. */
    json_t *all = informer_list(c->opt.jobs, NULL, NULL, NULL), *j, *seen = json_object();
    size_t i;
    json_array_foreach(all, i, j) {
        const char *jns = json_string_value(json_object_get(json_object_get(j, "metadata"), "namespace"));
        if (!jns || json_object_get(seen, jns))
            continue;
        json_object_set_new(seen, jns, json_true());
        rc = may(c, user, &(review_attrs){.verb = "list", .group = JOBS_GROUP, .resource = "trainingjobs", .namespace = jns}, &ok);
        if (rc)
            break;
        json_object_set_new(*scope, jns, json_boolean(ok)); /* denied ones too: not asked again */
    }
    json_decref(all);
    json_decref(seen);
    return rc;
}

static int in_scope(const json_t *scope, const char *ns)
{
    return json_object_get(scope, "*") || (ns && json_is_true(json_object_get(scope, ns)));
}

/* Whether scope allows any namespace at all. */
static int scope_any(const json_t *scope)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)scope, k, v) {
        if (json_is_true(v))
            return 1;
    }
    return 0;
}

/* Summaries of the cached jobs in scope (and namespace ns when given), oldest first. */
static json_t *jobs_in(console *c, const json_t *scope, const char *ns)
{
    json_t *all = informer_list(c->opt.jobs, ns && *ns ? ns : NULL, NULL, NULL), *out = json_array(), *j;
    size_t i;
    json_array_foreach(all, i, j) {
        const char *jns = json_string_value(json_object_get(json_object_get(j, "metadata"), "namespace"));
        if (in_scope(scope, jns))
            json_array_append_new(out, console_job_summary(j));
    }
    json_decref(all);
    return out;
}

/* ---- HTTP API ---- */

static void reply_json(httpd_req *r, int status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) {
        httpd_reply(r, 500, NULL, "out of memory\n", 14, NULL);
        return;
    }
    httpd_reply_take(r, status, "application/json", text, strlen(text), JSON_HEADERS);
}

static void reply_error(console *c, httpd_req *r, int status, const char *msg)
{
    if (status == 403) {
        pthread_mutex_lock(&c->mu);
        c->n.api_denied++;
        pthread_mutex_unlock(&c->mu);
    }
    char *text = NULL;
    json_t *o = json_pack("{s:i,s:s}", "status", status, "message", msg);
    if (o)
        text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    httpd_reply_take(r, status, "application/json", text, text ? strlen(text) : 0,
                     status == 401 ? "WWW-Authenticate: Bearer realm=\"kubefit\"\r\nCache-Control: no-store\r\n"
                                   : JSON_HEADERS);
}

/* Splits "/api/jobs/<ns>/<name>[/<what>]". Returns the number of parts after /api/jobs (0-3). */
static int job_route(const char *path, char ns[254], char name[254], char what[16])
{
    ns[0] = name[0] = what[0] = '\0';
    const char *p = path + strlen("/api/jobs");
    if (!*p || !strcmp(p, "/"))
        return 0;
    if (*p != '/')
        return -1;
    int n = sscanf(p, "/%253[a-z0-9.-]/%253[a-z0-9.-]/%15[a-z]", ns, name, what);
    char rebuilt[600];
    snprintf(rebuilt, sizeof rebuilt, "/%s%s%s%s%s", ns, n >= 2 ? "/" : "", n >= 2 ? name : "", n == 3 ? "/" : "",
             n == 3 ? what : "");
    return n >= 1 && !strcmp(rebuilt, p) ? n : -1;
}

static void api_jobs(console *c, httpd_req *r, const json_t *user)
{
    const char *ns = httpd_req_query(r, "namespace");
    json_t *scope = NULL;
    if (list_scope(c, user, ns, &scope)) {
        reply_error(c, r, 503, err_msg());
    } else if (!scope_any(scope)) {
        reply_error(c, r, 403,
                    ns && *ns ? "you may not list trainingjobs in this namespace"
                              : "you may not list trainingjobs in any namespace (try one namespace: ?namespace=)");
    } else {
        reply_json(r, 200, json_pack("{s:o}", "jobs", jobs_in(c, scope, ns)));
    }
    json_decref(scope);
}

static void api_job(console *c, httpd_req *r, const json_t *user, const char *ns, const char *name)
{
    int ok = 0;
    json_t *job = NULL;
    if (may(c, user, &(review_attrs){.verb = "get", .group = JOBS_GROUP, .resource = "trainingjobs", .namespace = ns, .name = name}, &ok)) {
        reply_error(c, r, 503, err_msg());
    } else if (!ok) {
        reply_error(c, r, 403, "you may not get this trainingjob");
    } else if (!(job = informer_get(c->opt.jobs, ns, name))) {
        reply_error(c, r, 404, "no such trainingjob (or the controller does not watch its namespace)");
    } else {
        json_t *d = console_job_detail(job);
        if (d)
            json_object_set_new(d, "history", history_points(c->hist, ns, name));
        reply_json(r, 200, d);
    }
    json_decref(job);
}

static json_t *event_view(const json_t *e)
{
    static const char *const keys[] = {"type", "reason", "message", "count", "firstTimestamp", "lastTimestamp",
                                       "eventTime", NULL};
    json_t *v = json_object();
    copy_keys(v, e, keys);
    const json_t *obj = json_object_get(e, "involvedObject");
    json_object_set(v, "object", json_object_get(obj, "kind"));
    json_object_set(v, "objectName", json_object_get(obj, "name"));
    const char *src = json_string_value(json_object_get(json_object_get(e, "source"), "component"));
    if (!src)
        src = json_string_value(json_object_get(e, "reportingComponent"));
    if (src)
        json_object_set_new(v, "source", json_string(src));
    return v;
}

/* Appends the Events about kind/name in ns to out. */
static int events_of(console *c, json_t *out, const char *ns, const char *kind, const char *name)
{
    char *sel = NULL, *esc = NULL, *path = NULL;
    json_t *list = NULL;
    int rc = KF_ENOMEM;
    if (asprintf(&sel, "involvedObject.kind=%s,involvedObject.name=%s", kind, name) < 0 || !(esc = http_escape(sel)) ||
        asprintf(&path, "/api/v1/namespaces/%s/events?fieldSelector=%s&limit=%d", ns, esc, MAX_EVENTS) < 0) {
        path = NULL;
        err_set(KF_ENOMEM, "console: out of memory");
        goto done;
    }
    if ((rc = kube_get(c->opt.kube, path, &list)))
        goto done;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(list, "items"), i, e) json_array_append_new(out, event_view(e));
done:
    json_decref(list);
    free(sel), free(esc), free(path);
    return rc;
}

static const char *event_time(const json_t *e)
{
    const char *t = json_string_value(json_object_get(e, "lastTimestamp"));
    return t ? t : json_string_value(json_object_get(e, "eventTime")) ? json_string_value(json_object_get(e, "eventTime")) : "";
}

static int by_time(const void *a, const void *b)
{
    return strcmp(event_time(*(json_t *const *)a), event_time(*(json_t *const *)b));
}

static void api_events(console *c, httpd_req *r, const json_t *user, const char *ns, const char *name)
{
    int ok = 0;
    if (may(c, user, &(review_attrs){.verb = "list", .resource = "events", .namespace = ns}, &ok)) {
        reply_error(c, r, 503, err_msg());
        return;
    }
    if (!ok) {
        reply_error(c, r, 403, "you may not list events in this namespace");
        return;
    }
    json_t *out = json_array(), *job = informer_get(c->opt.jobs, ns, name);
    const char *pod = json_string_value(json_object_get(json_object_get(job, "status"), "podName"));
    int rc = events_of(c, out, ns, "TrainingJob", name);
    if (rc == KF_OK && pod)
        rc = events_of(c, out, ns, "Pod", pod);
    if (rc) {
        reply_error(c, r, 502, err_msg());
        json_decref(out);
    } else {
        size_t n = json_array_size(out);
        json_t **v = malloc((n ? n : 1) * sizeof *v), *sorted = json_array();
        for (size_t i = 0; v && i < n; i++)
            v[i] = json_array_get(out, i);
        if (v)
            qsort(v, n, sizeof *v, by_time);
        for (size_t i = 0; v && i < n; i++)
            json_array_append(sorted, v[i]);
        free(v);
        json_decref(out);
        reply_json(r, 200, json_pack("{s:o}", "events", sorted));
    }
    json_decref(job);
}

static void api_log(console *c, httpd_req *r, const json_t *user, const char *ns, const char *name)
{
    json_t *job = informer_get(c->opt.jobs, ns, name), *pod_obj = NULL;
    const char *pod = httpd_req_query(r, "pod");
    if (!pod)
        pod = json_string_value(json_object_get(json_object_get(job, "status"), "podName"));
    const char *tail_q = httpd_req_query(r, "tailLines");
    long tail = tail_q ? strtol(tail_q, NULL, 10) : DEFAULT_TAIL_LINES;
    if (tail < 1 || tail > MAX_TAIL_LINES)
        tail = DEFAULT_TAIL_LINES;
    int ok = 0;
    char *path = NULL, *text = NULL;
    if (may(c, user, &(review_attrs){.verb = "get", .resource = "pods", .subresource = "log", .namespace = ns, .name = pod}, &ok)) {
        reply_error(c, r, 503, err_msg());
        goto done;
    }
    if (!ok) {
        reply_error(c, r, 403, "you may not read pods/log in this namespace");
        goto done;
    }
    const char *owner = NULL;
    if (pod && (pod_obj = informer_get(c->opt.pods, ns, pod)))
        owner = json_string_value(json_object_get(json_object_get(json_object_get(pod_obj, "metadata"), "labels"),
                                                  RECONCILE_LABEL_JOB));
    if (!pod || !owner || strcmp(owner, name) != 0) {
        reply_error(c, r, 404, "this job has no trainer Pod now");
        goto done;
    }
    if (asprintf(&path, "/api/v1/namespaces/%s/pods/%s/log?container=%s&tailLines=%ld&limitBytes=%d", ns, pod,
                 RECONCILE_CONTAINER, tail, MAX_LOG_BYTES) < 0) {
        path = NULL;
        reply_error(c, r, 500, "out of memory");
        goto done;
    }
    if (kube_get_text(c->opt.kube, path, MAX_LOG_BYTES, &text)) {
        reply_error(c, r, 502, err_msg());
        goto done;
    }
    httpd_reply_take(r, 200, "text/plain; charset=utf-8", text, strlen(text), JSON_HEADERS);
    text = NULL;
done:
    json_decref(job);
    json_decref(pod_obj);
    free(path);
    free(text);
}

static void api_worker(void *arg, httpd_req *r)
{
    console *c = arg;
    const char *path = httpd_req_path(r);
    json_t *user = NULL;
    pthread_mutex_lock(&c->mu);
    c->n.api_requests++;
    pthread_mutex_unlock(&c->mu);
    int status = identify(c, httpd_req_bearer(r), &user, NULL);
    if (status) {
        reply_error(c, r, status, err_msg());
        return;
    }
    char ns[254], name[254], what[16];
    int parts = strncmp(path, "/api/jobs", 9) == 0 ? job_route(path, ns, name, what) : -1;
    if (!strcmp(path, "/api/whoami")) {
        reply_json(r, 200, json_pack("{s:O,s:O,s:b}", "username", json_object_get(user, "username"), "groups",
                                     json_object_get(user, "groups"), "anonymous",
                                     json_is_true(json_object_get(user, "anonymous"))));
    } else if (parts == 0) {
        api_jobs(c, r, user);
    } else if (parts == 2) {
        api_job(c, r, user, ns, name);
    } else if (parts == 3 && !strcmp(what, "events")) {
        api_events(c, r, user, ns, name);
    } else if (parts == 3 && !strcmp(what, "log")) {
        api_log(c, r, user, ns, name);
    } else {
        reply_error(c, r, 404, "no such API path");
    }
    json_decref(user);
}

int console_owns(const char *path)
{
    if (!strncmp(path, "/api/", 5))
        return 1;
    for (size_t i = 0; i < console_nassets; i++)
        if (!strcmp(path, console_assets[i].path))
            return 1;
    return !strcmp(path, "/index.html");
}

void console_handle(console *c, httpd_req *r)
{
    const char *path = httpd_req_path(r), *method = httpd_req_method(r);
    if (strcmp(method, "GET") != 0) {
        httpd_reply(r, 405, NULL, "GET only\n", 9, "Allow: GET\r\n");
        return;
    }
    if (!strncmp(path, "/api/", 5)) {
        httpd_defer(c->http, r, api_worker, c);
        return;
    }
    if (!strcmp(path, "/index.html"))
        path = "/";
    for (size_t i = 0; i < console_nassets; i++) {
        const console_asset *a = &console_assets[i];
        if (!strcmp(path, a->path)) {
            httpd_reply(r, 200, a->type, (const char *)a->data, a->len, PAGE_HEADERS);
            return;
        }
    }
    httpd_reply(r, 404, NULL, "not found\n", 10, NULL);
}

/* ---- WebSocket sessions ---- */

static session *find(console *c, uint64_t conn)
{
    for (session *s = c->sessions; s; s = s->next)
        if (s->conn == conn)
            return s;
    return NULL;
}

/* Sends msg (takes it) to conn; the caller holds c->mu. */
static void send_json(console *c, uint64_t conn, json_t *msg)
{
    char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    if (text && c->http) {
        httpd_ws_send(c->http, conn, text, strlen(text));
        c->n.ws_messages++;
    }
    free(text);
}

static void send_error(console *c, uint64_t conn, int status, const char *msg)
{
    send_json(c, conn, json_pack("{s:s,s:i,s:s}", "type", "error", "status", status, "message", msg));
}

typedef struct {
    console *c;
    uint64_t conn;
    char *token;
    unsigned gen;
} ws_task;

static void task_free(ws_task *t)
{
    if (!t)
        return;
    if (t->token) {
        explicit_bzero(t->token, strlen(t->token));
        free(t->token);
    }
    free(t);
}

static void submit(console *c, uint64_t conn, const char *token, unsigned gen, void (*fn)(void *))
{
    ws_task *t = calloc(1, sizeof *t);
    if (!t || (token && !(t->token = strdup(token)))) {
        task_free(t);
        return;
    }
    t->c = c;
    t->conn = conn;
    t->gen = gen;
    if (httpd_submit(c->http, fn, t) != KF_OK)
        task_free(t);
}

/* Worker: the subscription's scope, then a snapshot (sent under c->mu, so no change overtakes it). */
static void subscribe_task(void *arg)
{
    ws_task *t = arg;
    console *c = t->c;
    json_t *user = NULL, *scope = NULL;
    char *ns = NULL, *job = NULL;
    pthread_mutex_lock(&c->mu);
    session *s = find(c, t->conn);
    if (s && s->user && s->gen == t->gen) {
        user = json_incref(s->user);
        ns = s->ns ? strdup(s->ns) : NULL;
        job = s->job ? strdup(s->job) : NULL;
    }
    pthread_mutex_unlock(&c->mu);
    if (!user)
        goto done;
    int status = 0, ok = 0;
    if (job) {
        status = may(c, user, &(review_attrs){.verb = "get", .group = JOBS_GROUP, .resource = "trainingjobs",
                                              .namespace = ns, .name = job}, &ok);
        scope = json_object();
        if (!status && scope)
            json_object_set_new(scope, ns, json_boolean(ok));
    } else {
        status = list_scope(c, user, ns, &scope);
    }
    pthread_mutex_lock(&c->mu);
    s = find(c, t->conn);
    if (!s || s->gen != t->gen) {
        pthread_mutex_unlock(&c->mu);
        goto done;
    }
    s->rechecking = 0;
    s->scope_time = kube_now();
    json_decref(s->scope);
    s->scope = NULL;
    if (status) {
        send_error(c, t->conn, 503, err_msg());
    } else if (!scope_any(scope)) {
        send_error(c, t->conn, 403, job ? "you may not get this trainingjob" : "you may not list trainingjobs here");
    } else if (job) {
        s->scope = json_incref(scope);
        json_t *obj = informer_get(c->opt.jobs, ns, job), *d = obj ? console_job_detail(obj) : NULL;
        if (d)
            json_object_set_new(d, "history", history_points(c->hist, ns, job));
        send_json(c, t->conn, json_pack("{s:s,s:s,s:o}", "type", "detail", "event", d ? "SNAPSHOT" : "DELETED",
                                        "job", d ? d : json_pack("{s:s,s:s}", "namespace", ns, "name", job)));
        json_decref(obj);
    } else {
        s->scope = json_incref(scope);
        send_json(c, t->conn, json_pack("{s:s,s:o}", "type", "snapshot", "jobs", jobs_in(c, scope, ns)));
    }
    pthread_mutex_unlock(&c->mu);
done:
    json_decref(user);
    json_decref(scope);
    free(ns);
    free(job);
    task_free(t);
}

static void auth_task(void *arg)
{
    ws_task *t = arg;
    console *c = t->c;
    json_t *user = NULL;
    double expires = 0;
    int status = identify(c, t->token, &user, &expires);
    pthread_mutex_lock(&c->mu);
    session *s = find(c, t->conn);
    unsigned gen = 0;
    int subscribed = 0;
    if (s) {
        s->authing = 0;
        if (status) {
            send_error(c, t->conn, status, err_msg());
            httpd_ws_close(c->http, t->conn);
        } else {
            json_decref(s->user);
            s->user = json_incref(user);
            s->expires = expires;
            send_json(c, t->conn, json_pack("{s:s,s:O,s:b}", "type", "hello", "user", json_object_get(user, "username"),
                                            "anonymous", json_is_true(json_object_get(user, "anonymous"))));
            subscribed = s->subscribed;
            gen = s->gen;
        }
    }
    pthread_mutex_unlock(&c->mu);
    json_decref(user);
    if (subscribed) {
        t->gen = gen;
        if (t->token) {
            explicit_bzero(t->token, strlen(t->token));
            free(t->token);
            t->token = NULL;
        }
        subscribe_task(t); /* frees t */
        return;
    }
    task_free(t);
}

int console_ws_path_ok(console *c, const char *path) { return !strcmp(path, "/api/watch"); }

void console_ws_open(console *c, uint64_t conn, const char *bearer)
{
    session *s = calloc(1, sizeof *s);
    if (!s) {
        httpd_ws_close(c->http, conn);
        return;
    }
    s->conn = conn;
    pthread_mutex_lock(&c->mu);
    s->next = c->sessions;
    c->sessions = s;
    c->n.ws_sessions++;
    if (bearer || c->opt.anonymous)
        s->authing = 1;
    pthread_mutex_unlock(&c->mu);
    if (bearer || c->opt.anonymous)
        submit(c, conn, bearer, 0, auth_task);
}

void console_ws_message(console *c, uint64_t conn, const char *text, size_t len)
{
    json_t *m = json_loadb(text, len, 0, NULL);
    const char *type = json_string_value(json_object_get(m, "type"));
    pthread_mutex_lock(&c->mu);
    session *s = find(c, conn);
    if (!s || !type) {
        if (s)
            send_error(c, conn, 400, "want {\"type\":\"auth\"|\"subscribe\",...}");
        pthread_mutex_unlock(&c->mu);
        json_decref(m);
        return;
    }
    if (!strcmp(type, "auth")) {
        const char *token = json_string_value(json_object_get(m, "token"));
        s->authing = 1;
        pthread_mutex_unlock(&c->mu);
        submit(c, conn, token && *token ? token : NULL, 0, auth_task);
    } else if (!strcmp(type, "subscribe")) {
        const char *ns = json_string_value(json_object_get(m, "namespace"));
        const char *job = json_string_value(json_object_get(m, "job"));
        free(s->ns);
        free(s->job);
        s->ns = strdup(ns ? ns : "");
        s->job = job && *job && ns && *ns ? strdup(job) : NULL;
        s->subscribed = 1;
        unsigned gen = ++s->gen;
        json_decref(s->scope);
        s->scope = NULL;
        int ready = s->user && !s->authing;
        if (!s->user && !s->authing)
            send_error(c, conn, 401, "send {\"type\":\"auth\",\"token\":...} first");
        pthread_mutex_unlock(&c->mu);
        if (ready)
            submit(c, conn, NULL, gen, subscribe_task);
    } else {
        send_error(c, conn, 400, "unknown message type");
        pthread_mutex_unlock(&c->mu);
    }
    if (m) {
        json_t *tok = json_object_get(m, "token");
        if (json_is_string(tok))
            explicit_bzero((char *)json_string_value(tok), strlen(json_string_value(tok)));
    }
    json_decref(m);
}

void console_ws_close(console *c, uint64_t conn)
{
    pthread_mutex_lock(&c->mu);
    for (session **pp = &c->sessions; *pp; pp = &(*pp)->next)
        if ((*pp)->conn == conn) {
            session *s = *pp;
            *pp = s->next;
            session_free(s);
            break;
        }
    pthread_mutex_unlock(&c->mu);
}

void console_on_job(console *c, const char *type, const json_t *job)
{
    json_t *point = history_observe(c->hist, type, job), *summary = NULL, *detail = NULL;
    const json_t *meta = json_object_get(job, "metadata");
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    const char *name = json_string_value(json_object_get(meta, "name"));
    int deleted = !strcmp(type, "DELETED");
    double now = kube_now();
    if (!ns || !name) {
        json_decref(point);
        return;
    }
    pthread_mutex_lock(&c->mu);
    for (session *s = c->sessions; s; s = s->next) {
        if (!s->subscribed || !s->user || !s->scope || (s->ns && *s->ns && strcmp(s->ns, ns) != 0) ||
            (s->job && strcmp(s->job, name) != 0))
            continue;
        if (s->expires > 0 && now >= s->expires) {
            send_error(c, s->conn, 401, "your token has expired; sign in again");
            httpd_ws_close(c->http, s->conn);
            continue;
        }
        if (!s->rechecking && (now - s->scope_time > SCOPE_RECHECK_S || (!s->job && !in_scope(s->scope, ns) &&
                                                                         !json_object_get(s->scope, ns)))) {
            /* Rights may have changed, or a namespace is new to this client: ask again (a fresh
             * snapshot follows, this change included). */
            s->rechecking = 1;
            submit(c, s->conn, NULL, s->gen, subscribe_task);
            continue;
        }
        if (!in_scope(s->scope, ns))
            continue;
        if (s->job) {
            if (!detail && !deleted)
                detail = console_job_detail(job);
            if (deleted || !detail)
                send_json(c, s->conn, json_pack("{s:s,s:s,s:{s:s,s:s}}", "type", "detail", "event", "DELETED", "job",
                                                "namespace", ns, "name", name));
            else
                send_json(c, s->conn, json_pack("{s:s,s:s,s:O}", "type", "detail", "event", type, "job", detail));
            if (point)
                send_json(c, s->conn, json_pack("{s:s,s:s,s:s,s:O}", "type", "progress", "namespace", ns, "name", name,
                                                "point", point));
        } else {
            if (!summary)
                summary = console_job_summary(job);
            if (summary)
                send_json(c, s->conn, json_pack("{s:s,s:s,s:O}", "type", "job", "event", type, "job", summary));
        }
    }
    pthread_mutex_unlock(&c->mu);
    json_decref(summary);
    json_decref(detail);
    json_decref(point);
}
