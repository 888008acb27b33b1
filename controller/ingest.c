/* ingest: authenticated progress reports into status.progress. See ingest.h. */
#include "ingest.h"

#include "contract.h"
#include "err.h"
#include "kubetime.h"
#include "log.h"
#include "reconcile.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JOBS_API "/apis/kubefit.dev/v1alpha1"
#define MAX_BUCKETS 10000   /* jobs with a rate bucket; idle ones are dropped first */
#define MAX_STATUS_TRIES 3
#define EXTRA_POD_NAME "authentication.kubernetes.io/pod-name"
#define EXTRA_POD_UID "authentication.kubernetes.io/pod-uid"

struct ingest {
    ingest_options opt;
    char *audience;
    pthread_mutex_t mu;
    json_t *buckets; /* "ns/job" -> [tokens, last time] */
    long n[INGEST_NOUTCOMES];
};

static const char *const outcome_names[INGEST_NOUTCOMES] = {
    "accepted", "unauthenticated", "forbidden", "rate_limited", "invalid", "stale", "unavailable",
};

const char *ingest_outcome_name(ingest_outcome o) { return o < INGEST_NOUTCOMES ? outcome_names[o] : "unknown"; }

ingest *ingest_new(const ingest_options *opt)
{
    ingest *g = calloc(1, sizeof *g);
    if (!g) {
        err_set(KF_ENOMEM, "ingest: out of memory");
        return NULL;
    }
    g->opt = *opt;
    if (g->opt.rate_per_s <= 0)
        g->opt.rate_per_s = 0.2;
    if (g->opt.burst <= 0)
        g->opt.burst = 5;
    g->audience = strdup(opt->audience && *opt->audience ? opt->audience : INGEST_DEFAULT_AUDIENCE);
    g->opt.audience = g->audience;
    g->buckets = json_object();
    pthread_mutex_init(&g->mu, NULL);
    if (!g->audience || !g->buckets) {
        ingest_free(g);
        err_set(KF_ENOMEM, "ingest: out of memory");
        return NULL;
    }
    return g;
}

void ingest_free(ingest *g)
{
    if (!g)
        return;
    json_decref(g->buckets);
    free(g->audience);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

/* Kubernetes names: DNS labels/subdomains (lowercase letters, digits, '-', '.'), at most 253. */
static int name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 253)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '.'))
            return 0;
    return 1;
}

int ingest_parse_path(const char *path, char **ns, char **job, int *run)
{
    *ns = *job = NULL;
    *run = 0;
    static const char prefix[] = "/progress/";
    if (strncmp(path, prefix, sizeof prefix - 1) != 0)
        return err_set(KF_EINVAL, "want /progress/<namespace>/<job>/<run>");
    const char *a = path + sizeof prefix - 1, *b = strchr(a, '/'), *c = b ? strchr(b + 1, '/') : NULL;
    char *end = NULL;
    long r = c ? strtol(c + 1, &end, 10) : 0;
    if (!b || !c || !name_ok(a, (size_t)(b - a)) || !name_ok(b + 1, (size_t)(c - b - 1)) || c[1] < '0' ||
        c[1] > '9' || !end || *end || r < 1 || r > 1000000)
        return err_set(KF_EINVAL, "want /progress/<namespace>/<job>/<run>, got %.300s", path);
    *ns = strndup(a, (size_t)(b - a));
    *job = strndup(b + 1, (size_t)(c - b - 1));
    if (!*ns || !*job) {
        free(*ns), free(*job);
        *ns = *job = NULL;
        return err_set(KF_ENOMEM, "ingest: out of memory");
    }
    *run = (int)r;
    return KF_OK;
}

/* A token bucket per job. 0 when a token was taken, else the seconds until one is there. */
static double take(ingest *g, const char *key, double now)
{
    double wait = 0;
    pthread_mutex_lock(&g->mu);
    json_t *b = json_object_get(g->buckets, key);
    double tokens = g->opt.burst, last = now;
    if (b) {
        tokens = json_real_value(json_array_get(b, 0));
        last = json_real_value(json_array_get(b, 1));
        tokens += (now - last) * g->opt.rate_per_s;
        if (tokens > g->opt.burst)
            tokens = g->opt.burst;
    } else if (json_object_size(g->buckets) >= MAX_BUCKETS) {
        const char *k;
        json_t *v;
        void *tmp;
        double idle = g->opt.burst / g->opt.rate_per_s; /* full again by now: nothing is lost */
        json_object_foreach_safe(g->buckets, tmp, k, v) {
            if (now - json_real_value(json_array_get(v, 1)) > idle)
                json_object_del(g->buckets, k);
        }
        if (json_object_size(g->buckets) >= MAX_BUCKETS)
            json_object_clear(g->buckets);
    }
    if (tokens >= 1)
        tokens -= 1;
    else
        wait = (1 - tokens) / g->opt.rate_per_s;
    json_object_set_new(g->buckets, key, json_pack("[f,f]", tokens, now));
    pthread_mutex_unlock(&g->mu);
    return wait;
}

/* The report's documented keys only, so a trainer cannot grow the status without bound. */
static json_t *clean_report(const char *body, size_t len, int run)
{
    json_error_t jerr;
    json_t *p = json_loadb(body, len, 0, &jerr), *clean = NULL;
    if (!json_is_object(p)) {
        err_set(KF_EINVAL, "progress: body is not a JSON object");
        goto done;
    }
    clean = json_object();
    for (const char *const *k = contract_progress_keys; clean && *k; k++) {
        json_t *v = json_object_get(p, *k);
        if ((json_is_number(v) && isfinite(json_number_value(v))) ||
            (json_is_string(v) && strlen(json_string_value(v)) <= 64))
            json_object_set(clean, *k, v);
    }
    char ts[32];
    if (clean) {
        json_object_set_new(clean, "run", json_integer(run));
        json_object_set_new(clean, "updateTime", json_string(kube_time_format(kube_now(), 0, ts)));
    } else {
        err_set(KF_ENOMEM, "ingest: out of memory");
    }
done:
    json_decref(p);
    return clean;
}

static const char *label(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(json_object_get(json_object_get(obj, "metadata"), "labels"), key));
}

/* The token's Pod is this job's Pod of this run. INGEST_ACCEPTED or the refusal. */
static ingest_outcome check_pod(ingest *g, const json_t *user, const char *ns, const char *job, int run)
{
    const char *username = json_string_value(json_object_get(user, "username"));
    const char *pod_name = review_user_extra(user, EXTRA_POD_NAME), *pod_uid = review_user_extra(user, EXTRA_POD_UID);
    size_t nl = strlen(ns);
    static const char sa[] = "system:serviceaccount:";
    if (!username || strncmp(username, sa, sizeof sa - 1) != 0 || strncmp(username + sizeof sa - 1, ns, nl) != 0 ||
        username[sizeof sa - 1 + nl] != ':') {
        err_set(KF_EAUTH, "the token is not a service account's of namespace %s", ns);
        return INGEST_FORBIDDEN;
    }
    if (!pod_name || !pod_uid) {
        err_set(KF_EAUTH, "the token is not bound to a Pod (use the projected token the controller mounts)");
        return INGEST_FORBIDDEN;
    }
    json_t *pod = informer_get(g->opt.pods, ns, pod_name);
    if (!pod) {
        /* Just created: the watch may not have brought it yet. */
        char *path = NULL;
        if (asprintf(&path, "/api/v1/namespaces/%s/pods/%s", ns, pod_name) >= 0) {
            int rc = kube_get(g->opt.kube, path, &pod);
            free(path);
            if (rc && rc != KF_ENOTFOUND) {
                err_wrap(rc, "reading the token's Pod");
                return INGEST_UNAVAILABLE;
            }
        }
    }
    char want_run[24];
    snprintf(want_run, sizeof want_run, "%d", run);
    const char *uid = json_string_value(json_object_get(json_object_get(pod, "metadata"), "uid"));
    const char *managed = label(pod, RECONCILE_LABEL_MANAGED), *pj = label(pod, RECONCILE_LABEL_JOB);
    const char *pr = label(pod, RECONCILE_LABEL_RUN);
    ingest_outcome o = INGEST_ACCEPTED;
    if (!pod || !uid || strcmp(uid, pod_uid) != 0) {
        err_set(KF_EAUTH, "the token's Pod %s/%s is gone", ns, pod_name);
        o = INGEST_FORBIDDEN;
    } else if (!managed || strcmp(managed, "kubefit") != 0 || !pj || strcmp(pj, job) != 0 || !pr ||
               strcmp(pr, want_run) != 0) {
        err_set(KF_EAUTH, "the token's Pod %s/%s is not the trainer of job %s run %d", ns, pod_name, job, run);
        o = INGEST_FORBIDDEN;
    }
    json_decref(pod);
    return o;
}

static char *job_path(const char *ns, const char *job, const char *sub)
{
    char *p = NULL;
    if (asprintf(&p, JOBS_API "/namespaces/%s/trainingjobs/%s%s", ns, job, sub ? sub : "") < 0)
        return NULL;
    return p;
}

/* Writes report into status.progress of job when run is its current, unfinished run. */
static ingest_outcome write_status(ingest *g, const char *ns, const char *name, int run, const json_t *report)
{
    json_t *job = informer_get(g->opt.jobs, ns, name);
    char *path = job_path(ns, name, NULL), *status_path = job_path(ns, name, "/status");
    ingest_outcome o = INGEST_UNAVAILABLE;
    if (!path || !status_path) {
        err_set(KF_ENOMEM, "ingest: out of memory");
        goto done;
    }
    for (int tries = 0; tries < MAX_STATUS_TRIES; tries++) {
        if (!job) {
            int rc = kube_get(g->opt.kube, path, &job);
            if (rc == KF_ENOTFOUND) {
                err_set(KF_ENOTFOUND, "job %s/%s not found", ns, name);
                o = INGEST_STALE;
                goto done;
            }
            if (rc) {
                err_wrap(rc, "reading job %s/%s", ns, name);
                goto done;
            }
        }
        const json_t *st = json_object_get(job, "status");
        json_int_t current = json_integer_value(json_object_get(st, "currentRun"));
        const char *phase = json_string_value(json_object_get(st, "phase"));
        if (current != run || reconcile_phase_finished(phase)) {
            err_set(KF_ECONFLICT, "run %d of %s/%s is not running (current run %lld, phase %s)", run, ns, name,
                    (long long)current, phase ? phase : "none");
            o = INGEST_STALE;
            goto done;
        }
        json_t *patch = json_pack("{s:{s:O},s:{s:O}}", "metadata", "resourceVersion",
                                  json_object_get(json_object_get(job, "metadata"), "resourceVersion"), "status",
                                  "progress", report);
        int rc = patch ? kube_merge_patch(g->opt.kube, status_path, patch, NULL) : err_set(KF_ENOMEM, "out of memory");
        json_decref(patch);
        json_decref(job);
        job = NULL;
        if (rc == KF_OK) {
            o = INGEST_ACCEPTED;
            goto done;
        }
        if (rc == KF_ENOTFOUND) {
            o = INGEST_STALE;
            goto done;
        }
        if (rc != KF_ECONFLICT) {
            err_wrap(rc, "writing the progress of %s/%s", ns, name);
            goto done;
        }
        /* Someone wrote the job since we read it: read it from the server and decide again. */
    }
    err_set(KF_ECONFLICT, "status of %s/%s kept conflicting", ns, name);
done:
    json_decref(job);
    free(path);
    free(status_path);
    return o;
}

static const int outcome_status[INGEST_NOUTCOMES] = {204, 401, 403, 429, 400, 409, 503};

void ingest_report(ingest *g, ingest_result *out, const char *path, const char *token, const char *body, size_t len)
{
    char *ns = NULL, *job = NULL, *key = NULL;
    int run = 0;
    json_t *user = NULL, *report = NULL;
    memset(out, 0, sizeof *out);
    ingest_outcome o = INGEST_INVALID;
    if (ingest_parse_path(path, &ns, &job, &run) != KF_OK)
        goto done;
    if (!token) {
        err_set(KF_EAUTH, "no bearer token");
        o = INGEST_UNAUTHENTICATED;
        goto done;
    }
    int rc = review_token(g->opt.review, &user, token, g->audience);
    if (rc == KF_EAUTH) {
        o = INGEST_UNAUTHENTICATED;
        goto done;
    }
    if (rc) {
        o = INGEST_UNAVAILABLE;
        goto done;
    }
    if ((o = check_pod(g, user, ns, job, run)) != INGEST_ACCEPTED)
        goto done;
    if (asprintf(&key, "%s/%s", ns, job) < 0) {
        key = NULL;
        o = INGEST_UNAVAILABLE;
        err_set(KF_ENOMEM, "ingest: out of memory");
        goto done;
    }
    double wait = take(g, key, kube_now());
    if (wait > 0) {
        err_set(KF_ERETRY, "job %s reports faster than %g a second", key, g->opt.rate_per_s);
        out->retry_after_s = wait;
        o = INGEST_RATE_LIMITED;
        goto done;
    }
    if (!(report = clean_report(body, len, run))) {
        o = INGEST_INVALID;
        goto done;
    }
    o = write_status(g, ns, job, run, report);
    if (o == INGEST_UNAVAILABLE)
        out->retry_after_s = 1;
done:
    out->outcome = o;
    out->status = o == INGEST_INVALID && !ns ? 404 : outcome_status[o];
    pthread_mutex_lock(&g->mu);
    g->n[o]++;
    pthread_mutex_unlock(&g->mu);
    if (o != INGEST_ACCEPTED && o != INGEST_RATE_LIMITED)
        log_info("ingest", "progress report refused", "{s:s,s:s,s:s,s:i,s:s}", "outcome", outcome_names[o], "namespace",
                 ns ? ns : "", "job", job ? job : "", "run", run, "error", err_msg());
    json_decref(user);
    json_decref(report);
    free(key);
    free(ns);
    free(job);
}

char *ingest_metrics(ingest *g)
{
    long n[INGEST_NOUTCOMES];
    pthread_mutex_lock(&g->mu);
    memcpy(n, g->n, sizeof n);
    pthread_mutex_unlock(&g->mu);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (!f)
        return NULL;
    fputs("# HELP kubefit_progress_reports_total Trainer progress reports by outcome (accepted, or why refused).\n"
          "# TYPE kubefit_progress_reports_total counter\n", f);
    for (int i = 0; i < INGEST_NOUTCOMES; i++)
        fprintf(f, "kubefit_progress_reports_total{outcome=\"%s\"} %ld\n", outcome_names[i], n[i]);
    fclose(f);
    return out;
}
