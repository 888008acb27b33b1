#include "controller.h"

#include "err.h"
#include "http.h"
#include "informer.h"
#include "kubetime.h"
#include "log.h"
#include "serving.h"
#include "workqueue.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define JOBS_API "/apis/kubefit.dev/v1alpha1"
#define MAX_STATUS_TRIES 5
#define MAX_WORKERS 64
/* Reconcile duration histogram buckets (seconds). */
static const double LATENCY_BUCKETS[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define NLATENCY (sizeof LATENCY_BUCKETS / sizeof *LATENCY_BUCKETS)

struct controller {
    controller_options opt;
    char *watch_ns, *default_image, *progress_url;
    informer *jobs, *pods;
    informer *deployments, *services; /* spec.serving's objects; NULL with opt.serving_off */
    wq *queue;
    pthread_t workers[MAX_WORKERS];
    int nworkers;
    volatile int stop;
    volatile int leader;
    pthread_mutex_t mu;  /* guards the counters */
    void (*observer)(void *ctx, const char *type, const json_t *job);
    void *observer_ctx;
    struct {
        long buckets[NLATENCY]; /* reconciles that took <= LATENCY_BUCKETS[i] (not cumulative) */
        long count;
        double sum;
    } latency;
    struct {
        long reconciles, reconcile_errors, status_updates, status_conflicts, pods_created, pods_deleted, events,
            jobs_deleted;
    } n;
};

static void count(controller *c, long *field)
{
    pthread_mutex_lock(&c->mu);
    (*field)++;
    pthread_mutex_unlock(&c->mu);
}

json_t *controller_merge_diff(const json_t *from, const json_t *to)
{
    if (!json_is_object(from) || !json_is_object(to))
        return json_deep_copy(to);
    json_t *patch = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)from, k, v) {
        if (!json_object_get(to, k))
            json_object_set_new(patch, k, json_null());
    }
    json_object_foreach((json_t *)to, k, v) {
        json_t *old = json_object_get(from, k);
        if (old && json_equal(old, v))
            continue;
        json_object_set_new(patch, k, old && json_is_object(old) && json_is_object(v) ? controller_merge_diff(old, v)
                                                                                     : json_deep_copy(v));
    }
    return patch;
}

/* ---- event handlers: only enqueue keys ---- */

static void on_job(void *u, const char *type, const json_t *obj)
{
    controller *c = u;
    char *k = informer_key(obj);
    if (k)
        wq_add(c->queue, k);
    free(k);
    if (c->observer)
        c->observer(c->observer_ctx, type, obj);
}

static void on_pod(void *u, const char *type, const json_t *obj)
{
    controller *c = u;
    const json_t *meta = json_object_get(obj, "metadata");
    const char *job = json_string_value(json_object_get(json_object_get(meta, "labels"), RECONCILE_LABEL_JOB));
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    char *k = NULL;
    if (job && ns && asprintf(&k, "%s/%s", ns, job) >= 0) {
        wq_add(c->queue, k);
        free(k);
    }
}

/* ---- applying a reconcile result ---- */

static char *job_path(const char *ns, const char *name, const char *sub)
{
    char *p = NULL;
    if (asprintf(&p, JOBS_API "/namespaces/%s/trainingjobs/%s%s", ns, name, sub ? sub : "") < 0)
        return NULL;
    return p;
}

static void post_events(controller *c, const json_t *job, const json_t *events)
{
    const json_t *meta = json_object_get(job, "metadata");
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    const char *name = json_string_value(json_object_get(meta, "name"));
    char ts[32], *path = NULL, *gen = NULL;
    kube_time_format(kube_now(), 0, ts);
    if (asprintf(&path, "/api/v1/namespaces/%s/events", ns) < 0 || asprintf(&gen, "%s.", name) < 0) {
        free(path);
        return;
    }
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e) {
        json_t *ev = json_pack(
            "{s:s,s:s,s:{s:s,s:s},s:{s:s,s:s,s:O,s:O,s:O,s:O},s:O,s:O,s:O,s:{s:s},s:s,s:s,s:i}", "apiVersion", "v1",
            "kind", "Event", "metadata", "generateName", gen, "namespace", ns, "involvedObject", "apiVersion",
            "kubefit.dev/v1alpha1", "kind", "TrainingJob", "name", json_object_get(meta, "name"), "namespace",
            json_object_get(meta, "namespace"), "uid", json_object_get(meta, "uid"), "resourceVersion",
            json_object_get(meta, "resourceVersion"), "type", json_object_get(e, "type"), "reason",
            json_object_get(e, "reason"), "message", json_object_get(e, "message"), "source", "component",
            "kubefit-controller", "firstTimestamp", ts, "lastTimestamp", ts, "count", 1);
        if (!ev)
            continue;
        if (kube_create(c->opt.kube, path, ev, NULL) == KF_OK)
            count(c, &c->n.events);
        else
            log_warn("controller", "event not recorded", "{s:s,s:s}", "job", name, "error", err_msg());
        json_decref(ev);
    }
    free(path);
    free(gen);
}

/* Applies res for job; *fresh receives a re-read job on conflict. Returns 0, KF_ECONFLICT, or an error. */
static int apply(controller *c, const json_t *job, const reconcile_result *res, double *requeue, int *pod_rejected)
{
    *pod_rejected = 0;
    const json_t *meta = json_object_get(job, "metadata");
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    const char *name = json_string_value(json_object_get(meta, "name"));
    int rc = KF_OK;
    char *path = NULL;
    if (res->status) {
        json_t *diff = controller_merge_diff(json_object_get(job, "status"), res->status);
        json_t *patch = json_pack("{s:{s:O},s:o}", "metadata", "resourceVersion",
                                  json_object_get(meta, "resourceVersion"), "status", diff);
        path = job_path(ns, name, "/status");
        rc = patch && path ? kube_merge_patch(c->opt.kube, path, patch, NULL) : err_set(KF_ENOMEM, "out of memory");
        json_decref(patch);
        free(path);
        path = NULL;
        if (rc == KF_ECONFLICT) {
            count(c, &c->n.status_conflicts);
            return rc;
        }
        if (rc)
            return err_wrap(rc, "status of %s/%s", ns, name);
        count(c, &c->n.status_updates);
        log_info("controller", "status updated", "{s:s,s:s,s:s,s:I}", "namespace", ns, "job", name, "phase",
                 json_string_value(json_object_get(res->status, "phase")) ? json_string_value(json_object_get(res->status, "phase")) : "", "run",
                 json_integer_value(json_object_get(res->status, "currentRun")));
    }
    size_t i;
    json_t *pn;
    json_array_foreach(res->delete_pods, i, pn) {
        if (asprintf(&path, "/api/v1/namespaces/%s/pods/%s", ns, json_string_value(pn)) < 0)
            return err_set(KF_ENOMEM, "out of memory");
        rc = kube_delete(c->opt.kube, path, "Background", -1);
        free(path);
        path = NULL;
        if (rc && rc != KF_ENOTFOUND)
            return err_wrap(rc, "deleting Pod");
        rc = KF_OK;
        count(c, &c->n.pods_deleted);
        log_info("controller", "pod deleted", "{s:s,s:s}", "namespace", ns, "pod", json_string_value(pn));
    }
    if (res->create_pod) {
        if (asprintf(&path, "/api/v1/namespaces/%s/pods", ns) < 0)
            return err_set(KF_ENOMEM, "out of memory");
        rc = kube_create(c->opt.kube, path, res->create_pod, NULL);
        free(path);
        path = NULL;
        const char *pod = json_string_value(json_object_get(json_object_get(res->create_pod, "metadata"), "name"));
        if (rc == KF_EEXISTS) {
            rc = KF_OK; /* deterministic names: it is already there */
        } else if (rc == KF_EINVAL) {
            *pod_rejected = 1;
            return err_wrap(rc, "creating Pod %s", pod);
        } else if (rc) {
            return err_wrap(rc, "creating Pod %s", pod);
        } else {
            count(c, &c->n.pods_created);
            log_info("controller", "pod created", "{s:s,s:s}", "namespace", ns, "pod", pod);
        }
    }
    post_events(c, job, res->events);
    if (res->delete_job) {
        path = job_path(ns, name, NULL);
        rc = path ? kube_delete(c->opt.kube, path, "Background", -1) : err_set(KF_ENOMEM, "out of memory");
        free(path);
        if (rc && rc != KF_ENOTFOUND)
            return err_wrap(rc, "deleting TrainingJob after its TTL");
        rc = KF_OK;
        count(c, &c->n.jobs_deleted);
        log_info("controller", "job deleted after ttl", "{s:s,s:s}", "namespace", ns, "job", name);
    }
    *requeue = res->requeue_after;
    return rc;
}

/* spec.serving (serving.c) after reconcile: its status and Events join res; its objects are
 * written by serving_apply once the status is. */
static int serving_step(controller *c, const json_t *job, reconcile_result *res, serving_result *sres, double now)
{
    const json_t *meta = json_object_get(job, "metadata");
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    const char *name = json_string_value(json_object_get(meta, "name"));
    char *obj = NULL;
    if (!ns || !name || asprintf(&obj, "%s-serve", name) < 0)
        return KF_OK;
    json_t *dep = informer_get(c->deployments, ns, obj), *svc = informer_get(c->services, ns, obj);
    free(obj);
    serving_input in = {.job = job, .status = res->status ? res->status : json_object_get(job, "status"),
                        .deployment = dep, .service = svc, .now = now,
                        .cfg = &(serving_config){.default_image = c->opt.reconcile.default_image}};
    int rc = serving_reconcile(sres, &in);
    json_decref(dep);
    json_decref(svc);
    if (rc == KF_OK && sres->status) {
        json_decref(res->status);
        res->status = json_incref(sres->status);
    }
    if (rc == KF_OK)
        json_array_extend(res->events, sres->events);
    return rc;
}

static int sync_key(controller *c, const char *key, double *requeue)
{
    *requeue = 0;
    const char *slash = strchr(key, '/');
    if (!slash)
        return KF_OK;
    char *ns = strndup(key, (size_t)(slash - key));
    const char *name = slash + 1;
    json_t *job = ns ? informer_get(c->jobs, ns, name) : NULL;
    int rc = KF_OK, rejected = 0;
    char *pod_error = NULL;
    for (int tries = 0; job && tries < MAX_STATUS_TRIES; tries++) {
        json_t *pods = informer_list(c->pods, ns, RECONCILE_LABEL_JOB, name);
        reconcile_result res;
        reconcile_input in = {.job = job, .pods = pods, .now = kube_now(),
                              .cfg = &c->opt.reconcile, .pod_error = pod_error};
        rc = reconcile(&res, &in);
        serving_result sres = {0};
        if (rc == KF_OK && c->deployments)
            rc = serving_step(c, job, &res, &sres, in.now);
        if (rc == KF_OK)
            rc = apply(c, job, &res, requeue, &rejected);
        if (rc == KF_OK && c->deployments) /* after the status write that records the decision */
            rc = serving_apply(c->opt.kube, &sres);
        serving_result_dispose(&sres);
        reconcile_result_dispose(&res);
        json_decref(pods);
        if (rejected && !pod_error) {
            /* Decide again knowing the Pod is refused: the job fails with the server's reason. */
            pod_error = strdup(err_msg());
            if (!pod_error)
                break;
        } else if (rc != KF_ECONFLICT) {
            break;
        }
        /* Our cached copy is stale: read the job from the server and decide again. */
        json_decref(job);
        job = NULL;
        char *path = job_path(ns, name, NULL);
        rc = path ? kube_get(c->opt.kube, path, &job) : KF_ENOMEM;
        free(path);
        if (rc == KF_ENOTFOUND)
            rc = KF_OK;
        if (rc)
            break;
        rc = KF_ECONFLICT;
    }
    if (rc == KF_ECONFLICT)
        err_set(rc, "%s: status kept conflicting", key);
    if (rc == KF_OK && job) {
        const char *phase = json_string_value(json_object_get(json_object_get(job, "status"), "phase"));
        if (!reconcile_phase_finished(phase) && (*requeue == 0 || *requeue > c->opt.resync_s))
            *requeue = c->opt.resync_s;
    }
    json_decref(job);
    free(pod_error);
    free(ns);
    return rc;
}

static void observe_latency(controller *c, double secs)
{
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < NLATENCY; i++)
        if (secs <= LATENCY_BUCKETS[i]) {
            c->latency.buckets[i]++;
            break;
        }
    c->latency.count++;
    c->latency.sum += secs;
    pthread_mutex_unlock(&c->mu);
}

static void *worker(void *u)
{
    controller *c = u;
    while (!c->stop) {
        if (!c->leader || !controller_ready(c)) {
            struct timespec ts = {0, 50 * 1000 * 1000};
            nanosleep(&ts, NULL);
            continue;
        }
        char *key = NULL;
        if (wq_get(c->queue, &key) != 0)
            break;
        double requeue = 0;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int rc = sync_key(c, key, &requeue);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        observe_latency(c, (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
        count(c, &c->n.reconciles);
        if (rc) {
            count(c, &c->n.reconcile_errors);
            log_warn("controller", "reconcile failed", "{s:s,s:s,s:s,s:i}", "key", key, "code", err_name(rc), "error",
                     err_msg(), "failures", wq_failures(c->queue, key) + 1);
            wq_add_rate_limited(c->queue, key);
        } else {
            wq_forget(c->queue, key);
            if (requeue > 0)
                wq_add_after(c->queue, key, requeue);
        }
        wq_done(c->queue, key);
        free(key);
    }
    return NULL;
}

controller *controller_new(const controller_options *opt)
{
    controller *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->opt = *opt;
    if (c->opt.workers <= 0)
        c->opt.workers = 2;
    if (c->opt.workers > MAX_WORKERS)
        c->opt.workers = MAX_WORKERS;
    if (c->opt.resync_s <= 0)
        c->opt.resync_s = 60;
    pthread_mutex_init(&c->mu, NULL);
    c->watch_ns = opt->watch_namespace && *opt->watch_namespace ? strdup(opt->watch_namespace) : NULL;
    c->default_image = opt->reconcile.default_image ? strdup(opt->reconcile.default_image) : NULL;
    c->progress_url = opt->reconcile.progress_base_url ? strdup(opt->reconcile.progress_base_url) : NULL;
    c->opt.reconcile.default_image = c->default_image;
    c->opt.reconcile.progress_base_url = c->progress_url;
    c->queue = wq_new(&(wq_options){.base_delay_s = opt->queue_base_delay_s > 0 ? opt->queue_base_delay_s : 0.05,
                                    .max_delay_s = opt->queue_max_delay_s > 0 ? opt->queue_max_delay_s : 60});
    char *jobs_path = NULL, *pods_path = NULL;
    if (c->watch_ns) {
        if (asprintf(&jobs_path, JOBS_API "/namespaces/%s/trainingjobs", c->watch_ns) < 0)
            jobs_path = NULL;
        if (asprintf(&pods_path, "/api/v1/namespaces/%s/pods", c->watch_ns) < 0)
            pods_path = NULL;
    } else {
        jobs_path = strdup(JOBS_API "/trainingjobs");
        pods_path = strdup("/api/v1/pods");
    }
    if (jobs_path && pods_path && c->queue && !opt->serving_off) {
        /* spec.serving's Deployments and Services, in the same scope as the Pods. */
        char *deps = NULL, *svcs = NULL;
        if (c->watch_ns) {
            if (asprintf(&deps, "/apis/apps/v1/namespaces/%s/deployments", c->watch_ns) < 0)
                deps = NULL;
            if (asprintf(&svcs, "/api/v1/namespaces/%s/services", c->watch_ns) < 0)
                svcs = NULL;
        } else {
            deps = strdup("/apis/apps/v1/deployments");
            svcs = strdup("/api/v1/services");
        }
        if (deps && svcs) { /* else out of memory: fails below */
            c->deployments = informer_new(&(informer_options){
                .kube = opt->kube, .name = "deployments", .collection = deps, .label_selector = SERVING_SELECTOR,
                .watch_timeout_s = opt->watch_timeout_s, .on_event = on_pod, .ctx = c, .trim = serving_trim});
            c->services = informer_new(&(informer_options){
                .kube = opt->kube, .name = "services", .collection = svcs, .label_selector = SERVING_SELECTOR,
                .watch_timeout_s = opt->watch_timeout_s, .on_event = on_pod, .ctx = c, .trim = serving_trim});
        }
        free(deps);
        free(svcs);
    }
    if (jobs_path && pods_path && c->queue) {
        c->jobs = informer_new(&(informer_options){.kube = opt->kube, .name = "trainingjobs", .collection = jobs_path,
                                                   .watch_timeout_s = opt->watch_timeout_s, .on_event = on_job, .ctx = c});
        c->pods = informer_new(&(informer_options){.kube = opt->kube, .name = "pods", .collection = pods_path,
                                                   .label_selector = RECONCILE_LABEL_MANAGED "=kubefit",
                                                   .watch_timeout_s = opt->watch_timeout_s, .on_event = on_pod, .ctx = c,
                                                   .trim = reconcile_trim_pod, .index_label = RECONCILE_LABEL_JOB});
    }
    free(jobs_path);
    free(pods_path);
    if (!c->jobs || !c->pods || (!opt->serving_off && (!c->deployments || !c->services))) {
        err_set(KF_ENOMEM, "controller: out of memory");
        controller_free(c);
        return NULL;
    }
    return c;
}

int controller_start(controller *c)
{
    int rc = informer_start(c->jobs);
    if (rc == KF_OK)
        rc = informer_start(c->pods);
    if (rc == KF_OK && c->deployments)
        rc = informer_start(c->deployments);
    if (rc == KF_OK && c->services)
        rc = informer_start(c->services);
    for (int i = 0; rc == KF_OK && i < c->opt.workers; i++) {
        if (pthread_create(&c->workers[i], NULL, worker, c) != 0)
            rc = err_set(KF_EIO, "controller: cannot start worker");
        else
            c->nworkers++;
    }
    return rc;
}

void controller_stop(controller *c)
{
    if (!c)
        return;
    c->stop = 1;
    wq_shutdown(c->queue);
    for (int i = 0; i < c->nworkers; i++)
        pthread_join(c->workers[i], NULL);
    c->nworkers = 0;
    informer_stop(c->jobs);
    informer_stop(c->pods);
    if (c->deployments)
        informer_stop(c->deployments);
    if (c->services)
        informer_stop(c->services);
}

void controller_free(controller *c)
{
    if (!c)
        return;
    controller_stop(c);
    informer_free(c->jobs);
    informer_free(c->pods);
    informer_free(c->deployments);
    informer_free(c->services);
    wq_free(c->queue);
    free(c->watch_ns), free(c->default_image), free(c->progress_url);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void controller_set_leader(controller *c, int leader) { c->leader = leader; }

int controller_ready(controller *c)
{
    return informer_synced(c->jobs) && informer_synced(c->pods) && (!c->deployments || informer_synced(c->deployments)) &&
           (!c->services || informer_synced(c->services));
}

informer *controller_jobs(controller *c) { return c->jobs; }

informer *controller_pods(controller *c) { return c->pods; }

void controller_observe_jobs(controller *c, void (*fn)(void *ctx, const char *type, const json_t *job), void *ctx)
{
    c->observer = fn;
    c->observer_ctx = ctx;
}

/* kubefit_reconcile_duration_seconds and kubefit_jobs{phase}: appended to f. */
static void more_metrics(controller *c, FILE *f)
{
    pthread_mutex_lock(&c->mu);
    __typeof__(c->latency) lat = c->latency;
    pthread_mutex_unlock(&c->mu);
    fputs("# HELP kubefit_reconcile_duration_seconds Time to reconcile one job (read, decide, write).\n"
          "# TYPE kubefit_reconcile_duration_seconds histogram\n", f);
    long cum = 0;
    for (size_t i = 0; i < NLATENCY; i++) {
        cum += lat.buckets[i];
        fprintf(f, "kubefit_reconcile_duration_seconds_bucket{le=\"%g\"} %ld\n", LATENCY_BUCKETS[i], cum);
    }
    fprintf(f, "kubefit_reconcile_duration_seconds_bucket{le=\"+Inf\"} %ld\n", lat.count);
    fprintf(f, "kubefit_reconcile_duration_seconds_sum %.6f\nkubefit_reconcile_duration_seconds_count %ld\n", lat.sum,
            lat.count);
    static const char *const phases[] = {"Pending", "Running", "Succeeded", "Failed", "Suspended"};
    long by[6] = {0};
    json_t *jobs = informer_list(c->jobs, NULL, NULL, NULL), *j;
    size_t i;
    json_array_foreach(jobs, i, j) {
        const char *ph = json_string_value(json_object_get(json_object_get(j, "status"), "phase"));
        size_t k = 0;
        while (k < 5 && (!ph || strcmp(ph, phases[k]) != 0))
            k++;
        by[k]++;
    }
    json_decref(jobs);
    fputs("# HELP kubefit_jobs TrainingJobs in the controller's cache by phase (\"\" before the first reconcile).\n"
          "# TYPE kubefit_jobs gauge\n", f);
    for (size_t k = 0; k < 6; k++)
        fprintf(f, "kubefit_jobs{phase=\"%s\"} %ld\n", k < 5 ? phases[k] : "", by[k]);
}

char *controller_metrics(controller *c)
{
    pthread_mutex_lock(&c->mu);
    __typeof__(c->n) n = c->n;
    pthread_mutex_unlock(&c->mu);
    informer_stats js = informer_get_stats(c->jobs), ps = informer_get_stats(c->pods);
    char *out = NULL;
    if (asprintf(&out,
                 "# HELP kubefit_reconcile_total Reconciles run.\n# TYPE kubefit_reconcile_total counter\n"
                 "kubefit_reconcile_total %ld\n"
                 "# HELP kubefit_reconcile_errors_total Reconciles that failed and were requeued.\n"
                 "# TYPE kubefit_reconcile_errors_total counter\nkubefit_reconcile_errors_total %ld\n"
                 "# TYPE kubefit_status_updates_total counter\nkubefit_status_updates_total %ld\n"
                 "# TYPE kubefit_status_conflicts_total counter\nkubefit_status_conflicts_total %ld\n"
                 "# TYPE kubefit_pods_created_total counter\nkubefit_pods_created_total %ld\n"
                 "# TYPE kubefit_pods_deleted_total counter\nkubefit_pods_deleted_total %ld\n"
                 "# TYPE kubefit_events_total counter\nkubefit_events_total %ld\n"
                 "# TYPE kubefit_jobs_deleted_total counter\nkubefit_jobs_deleted_total %ld\n"
                 "# HELP kubefit_workqueue_depth Keys ready to reconcile.\n# TYPE kubefit_workqueue_depth gauge\n"
                 "kubefit_workqueue_depth %zu\n"
                 "# TYPE kubefit_leader gauge\nkubefit_leader %d\n"
                 "# TYPE kubefit_relists_total counter\n"
                 "kubefit_relists_total{resource=\"trainingjobs\"} %ld\nkubefit_relists_total{resource=\"pods\"} %ld\n"
                 "# TYPE kubefit_watch_events_total counter\n"
                 "kubefit_watch_events_total{resource=\"trainingjobs\"} %ld\n"
                 "kubefit_watch_events_total{resource=\"pods\"} %ld\n"
                 "# TYPE kubefit_watch_restarts_total counter\n"
                 "kubefit_watch_restarts_total{resource=\"trainingjobs\"} %ld\n"
                 "kubefit_watch_restarts_total{resource=\"pods\"} %ld\n",
                 n.reconciles, n.reconcile_errors, n.status_updates, n.status_conflicts, n.pods_created, n.pods_deleted,
                 n.events, n.jobs_deleted, wq_len(c->queue), c->leader ? 1 : 0, js.relists,
                 ps.relists, js.events, ps.events, js.watch_restarts, ps.watch_restarts) < 0)
        return NULL;
    char *more = NULL;
    size_t more_len = 0;
    FILE *f = open_memstream(&more, &more_len);
    if (f) {
        more_metrics(c, f);
        fclose(f);
    }
    char *all = NULL;
    if (asprintf(&all, "%s%s", out, more ? more : "") < 0)
        all = NULL;
    free(out);
    free(more);
    return all;
}
