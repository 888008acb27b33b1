#include "reconcile.h"

#include "contract.h"
#include "cron.h"
#include "err.h"
#include "kubetime.h"
#include "podspec.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Working state of one reconcile. st is the new status being built (a copy of the old). */
typedef struct {
    const reconcile_input *in;
    const json_t *meta, *spec;
    json_t *st;
    reconcile_result *out;
    const char *name, *ns, *uid;
    json_int_t generation;
    char now_s[32];
} ctx;

static const char *str(const json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }
static json_int_t num(const json_t *o, const char *k, json_int_t dflt)
{
    const json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? json_integer_value(v) : dflt;
}
static int has(const json_t *o, const char *k) { return json_object_get(o, k) && !json_is_null(json_object_get(o, k)); }

#define event(c, ...) reconcile_event_add((c)->out->events, __VA_ARGS__)

static void requeue(ctx *c, double after)
{
    if (after < 0.5)
        after = 0.5;
    if (c->out->requeue_after == 0 || after < c->out->requeue_after)
        c->out->requeue_after = after;
}

static void set_condition(ctx *c, const char *type, int status, const char *reason, const char *message)
{
    reconcile_condition_set(c->st, type, status, reason, message, c->now_s, c->generation);
}

void reconcile_condition_set(json_t *st, const char *type, int status, const char *reason, const char *message,
                             const char *now, json_int_t generation)
{
    json_t *conds = json_object_get(st, "conditions");
    if (!json_is_array(conds)) {
        conds = json_array();
        json_object_set_new(st, "conditions", conds);
    }
    const char *sv = status ? "True" : "False";
    json_t *cond = NULL;
    size_t i;
    json_t *x;
    json_array_foreach(conds, i, x) {
        const char *t = str(x, "type");
        if (t && strcmp(t, type) == 0) {
            cond = x;
            break;
        }
    }
    if (!cond) {
        cond = json_object();
        json_object_set_new(cond, "type", json_string(type));
        json_array_append_new(conds, cond);
    }
    const char *old = str(cond, "status");
    if (!old || strcmp(old, sv) != 0 || !has(cond, "lastTransitionTime"))
        json_object_set_new(cond, "lastTransitionTime", json_string(now));
    json_object_set_new(cond, "status", json_string(sv));
    json_object_set_new(cond, "reason", json_string(reason));
    json_object_set_new(cond, "message", json_string(message ? message : ""));
    json_object_set_new(cond, "observedGeneration", json_integer(generation));
}

void reconcile_event_add(json_t *events, const char *type, const char *reason, const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    json_array_append_new(events, json_pack("{s:s,s:s,s:s}", "type", type, "reason", reason, "message", msg ? msg : ""));
    free(msg);
}

/* Whether condition type currently has this reason. */
static int condition_is(ctx *c, const char *type, const char *reason)
{
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(c->st, "conditions"), i, x) {
        const char *t = str(x, "type"), *r = str(x, "reason");
        if (t && r && strcmp(t, type) == 0)
            return strcmp(r, reason) == 0;
    }
    return 0;
}

static void set_phase(ctx *c, const char *phase, const char *reason, const char *message)
{
    json_object_set_new(c->st, "phase", json_string(phase));
    if (reason)
        json_object_set_new(c->st, "reason", json_string(reason));
    else
        json_object_del(c->st, "reason");
    if (message)
        json_object_set_new(c->st, "message", json_string(message));
    else
        json_object_del(c->st, "message");
}

/* The runs[] entry of the current run (created when missing). */
static json_t *run_record(ctx *c)
{
    json_int_t run = num(c->st, "currentRun", 0);
    json_t *runs = json_object_get(c->st, "runs");
    if (!json_is_array(runs)) {
        runs = json_array();
        json_object_set_new(c->st, "runs", runs);
    }
    size_t i;
    json_t *r;
    json_array_foreach(runs, i, r) {
        if (num(r, "run", -1) == run)
            return r;
    }
    r = json_pack("{s:I}", "run", run);
    json_array_append_new(runs, r);
    return r;
}

/* Copies the phase and its outcome into the run's history entry. */
static void sync_run_record(ctx *c)
{
    json_t *r = run_record(c);
    const char *keys[] = {"phase", "reason", "message", "attempts", "failures", "startTime", "completionTime",
                          "modelURI", "metricsURI", "retrain"};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        json_t *v = json_object_get(c->st, keys[k]);
        if (v)
            json_object_set(r, keys[k], v);
        else
            json_object_del(r, keys[k]);
    }
    json_object_set_new(r, "generation", json_integer(num(c->st, "runGeneration", c->generation)));
    const char *summary[] = {"accuracy", "microF1"};
    for (int k = 0; k < 2; k++) {
        json_t *v = json_object_get(json_object_get(c->st, "metrics"), summary[k]);
        if (json_is_number(v))
            json_object_set(r, summary[k], v);
    }
}

/* Keeps the newest limit entries of runs[]. */
static void trim_runs(ctx *c)
{
    json_int_t limit = num(c->spec, "runsHistoryLimit", c->in->cfg->runs_history_limit > 0 ? c->in->cfg->runs_history_limit : 10);
    if (limit < 1)
        limit = 1;
    json_t *runs = json_object_get(c->st, "runs");
    while (json_is_array(runs) && json_array_size(runs) > (size_t)limit)
        json_array_remove(runs, 0);
}

/* ---- Pods ---- */

json_t *reconcile_trim_pod(json_t *pod)
{
    static const char *const META[] = {"name", "namespace", "uid", "resourceVersion", "labels", "ownerReferences",
                                       "creationTimestamp", "deletionTimestamp", NULL};
    static const char *const STATUS[] = {"phase", "reason", "message", "conditions", NULL};
    const json_t *meta = json_object_get(pod, "metadata"), *status = json_object_get(pod, "status");
    json_t *out = json_object(), *m = json_object(), *st = json_object(), *cs = json_array();
    if (!out || !m || !st || !cs) {
        json_decref(out), json_decref(m), json_decref(st), json_decref(cs);
        return NULL;
    }
    for (const char *const *k = META; *k; k++)
        if (json_object_get(meta, *k))
            json_object_set(m, *k, json_object_get(meta, *k));
    for (const char *const *k = STATUS; *k; k++)
        if (json_object_get(status, *k))
            json_object_set(st, *k, json_object_get(status, *k));
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(status, "containerStatuses"), i, c)
        json_array_append_new(cs, json_pack("{s:O?,s:O?}", "name", json_object_get(c, "name"), "state",
                                            json_object_get(c, "state")));
    json_object_set_new(st, "containerStatuses", cs);
    json_object_set_new(out, "metadata", m);
    json_object_set_new(out, "status", st);
    return out;
}

static int pod_is_ours(ctx *c, const json_t *pod)
{
    size_t i;
    json_t *ref;
    json_array_foreach(json_object_get(json_object_get(pod, "metadata"), "ownerReferences"), i, ref) {
        const char *uid = str(ref, "uid");
        if (json_is_true(json_object_get(ref, "controller")) && uid && strcmp(uid, c->uid) == 0)
            return 1;
    }
    return 0;
}

static int pod_label_int(const json_t *pod, const char *label)
{
    const char *v = str(json_object_get(json_object_get(pod, "metadata"), "labels"), label);
    return v ? atoi(v) : 0;
}

static const char *pod_phase(const json_t *pod) { return str(json_object_get(pod, "status"), "phase"); }

int reconcile_phase_finished(const char *phase)
{
    return phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0);
}

static int pod_finished(const json_t *pod) { return reconcile_phase_finished(pod_phase(pod)); }

static const char *pod_name(const json_t *pod) { return str(json_object_get(pod, "metadata"), "name"); }

/* The trainer container's state of this kind ("terminated", "waiting"), or NULL. */
static const json_t *container_state(const json_t *pod, const char *kind)
{
    size_t i;
    json_t *cs;
    json_array_foreach(json_object_get(json_object_get(pod, "status"), "containerStatuses"), i, cs) {
        const char *n = str(cs, "name");
        if (n && strcmp(n, RECONCILE_CONTAINER) == 0)
            return json_object_get(json_object_get(cs, "state"), kind);
    }
    return NULL;
}

static const json_t *terminated_state(const json_t *pod) { return container_state(pod, "terminated"); }

/* Preempted, evicted or stopped by a node shutdown: not the trainer's fault. */
static int pod_disrupted(const json_t *pod)
{
    const json_t *status = json_object_get(pod, "status");
    size_t i;
    json_t *cond;
    json_array_foreach(json_object_get(status, "conditions"), i, cond) {
        const char *t = str(cond, "type"), *s = str(cond, "status");
        if (t && s && strcmp(t, "DisruptionTarget") == 0 && strcmp(s, "True") == 0)
            return 1;
    }
    const char *reason = str(status, "reason");
    static const char *const disrupted[] = {"Preempted", "Shutdown", "Evicted", "Terminated", "NodeShutdown",
                                            "NodeLost", NULL};
    for (const char *const *r = disrupted; reason && *r; r++)
        if (strcmp(reason, *r) == 0)
            return 1;
    return 0;
}

/* Adds a Pod name to the delete list once. */
static void delete_pod(ctx *c, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(c->out->delete_pods, i, v) {
        if (strcmp(json_string_value(v), name) == 0)
            return;
    }
    json_array_append_new(c->out->delete_pods, json_string(name));
}

/* Deletes every unfinished Pod of this job except keep (may be NULL). */
static void delete_active_pods(ctx *c, const char *keep)
{
    size_t i;
    json_t *pod;
    json_array_foreach(c->in->pods, i, pod) {
        const char *n = pod_name(pod);
        if (!n || !pod_is_ours(c, pod) || pod_finished(pod) || (keep && strcmp(n, keep) == 0))
            continue;
        if (has(json_object_get(pod, "metadata"), "deletionTimestamp"))
            continue;
        delete_pod(c, n);
    }
}

/* ---- phases ---- */

static void finish(ctx *c, const char *phase, const char *reason, const char *message, double completion)
{
    char ts[32];
    set_phase(c, phase, reason, message);
    json_object_set_new(c->st, "completionTime", json_string(kube_time_format(completion, 0, ts)));
    json_object_del(c->st, "nextAttemptTime");
    int ok = strcmp(phase, "Succeeded") == 0;
    set_condition(c, "Running", 0, "Completed", message);
    set_condition(c, "Succeeded", ok, reason, message);
    set_condition(c, "Failed", !ok, reason, message);
    sync_run_record(c);
}

/* The spec cannot run (podspec_check): fail at once, stop the run's Pods, and forget the spec
 * hash so that any fixed spec starts a new run. One Event per distinct message. */
static void fail_invalid_spec(ctx *c, const char *msg)
{
    const char *old = str(c->st, "message");
    if (!condition_is(c, "Failed", "InvalidSpec") || !old || strcmp(old, msg) != 0)
        event(c, "Warning", "InvalidSpec", "%s", msg);
    delete_active_pods(c, NULL);
    json_object_del(c->st, "nextAttemptTime");
    json_object_set_new(c->st, "specHash", json_string(""));
    set_phase(c, "Failed", "InvalidSpec", msg);
    set_condition(c, "Running", 0, "InvalidSpec", msg);
    set_condition(c, "Succeeded", 0, "InvalidSpec", msg);
    set_condition(c, "Failed", 1, "InvalidSpec", msg);
    if (num(c->st, "currentRun", 0) > 0)
        sync_run_record(c);
}

static void start_run(ctx *c, const char *hash, const char *retrain, const char *why)
{
    json_int_t run = num(c->st, "currentRun", 0);
    if (run > 0) {
        /* The previous run ends here: superseded when it was still going. */
        const char *ph = str(c->st, "phase");
        if (ph && !reconcile_phase_finished(ph)) {
            set_phase(c, "Failed", "Superseded", "a newer run replaced this one");
            sync_run_record(c);
        }
        delete_active_pods(c, NULL);
        event(c, "Normal", "NewRun", "run %lld starts: %s", (long long)run + 1, why);
    }
    const char *drop[] = {"startTime", "completionTime", "progress", "metrics", "modelURI", "metricsURI",
                          "nextAttemptTime", "podName", "reason", "message"};
    for (size_t k = 0; k < sizeof drop / sizeof *drop; k++)
        json_object_del(c->st, drop[k]);
    json_object_set_new(c->st, "currentRun", json_integer(run + 1));
    json_object_set_new(c->st, "specHash", json_string(hash));
    json_object_set_new(c->st, "retrain", json_string(retrain));
    json_object_set_new(c->st, "runGeneration", json_integer(c->generation));
    json_object_set_new(c->st, "attempts", json_integer(0));
    json_object_set_new(c->st, "failures", json_integer(0));
    set_phase(c, "Pending", "RunCreated", NULL);
    set_condition(c, "Running", 0, "Pending", "waiting for the trainer Pod");
    set_condition(c, "Succeeded", 0, "Pending", "");
    set_condition(c, "Failed", 0, "Pending", "");
    set_condition(c, "Suspended", 0, "NotSuspended", "");
    sync_run_record(c);
    /* Also kept in the run's history entry, which the schema preserves as it is. */
    json_object_set_new(run_record(c), "specHash", json_string(hash));
    trim_runs(c);
}

/* Creates attempt n of the current run (status first: attempts, podName, startTime). */
static void create_attempt(ctx *c, int attempt)
{
    int run = (int)num(c->st, "currentRun", 1);
    double deadline_left = 0;
    json_int_t ads = num(c->spec, "activeDeadlineSeconds", 0);
    if (!has(c->st, "startTime"))
        json_object_set_new(c->st, "startTime", json_string(c->now_s));
    if (ads > 0) {
        double start = c->in->now;
        kube_time_parse(str(c->st, "startTime"), &start);
        deadline_left = start + (double)ads - c->in->now;
        if (deadline_left < 1)
            deadline_left = 1;
    }
    json_t *pod = NULL;
    if (reconcile_build_pod(&pod, c->in->job, run, attempt, c->in->cfg, deadline_left) < 0) {
        fail_invalid_spec(c, err_msg());
        return;
    }
    json_object_set_new(c->st, "attempts", json_integer(attempt));
    json_object_set_new(c->st, "podName", json_string(pod_name(pod)));
    json_object_del(c->st, "nextAttemptTime");
    const char *ph = str(c->st, "phase");
    if (!ph || strcmp(ph, "Running") != 0)
        set_phase(c, "Pending", "PodCreated", NULL);
    sync_run_record(c);
    json_decref(c->out->create_pod);
    c->out->create_pod = pod;
}

/* Copies the trainer's result (termination message) into status.metrics and the URIs. */
static void take_result(ctx *c, const json_t *term)
{
    const char *msg = str(term, "message");
    json_t *res = msg ? json_loads(msg, 0, NULL) : NULL;
    if (!json_is_object(res)) {
        event(c, "Warning", "NoResult", "the trainer exited 0 without a JSON result");
        json_decref(res);
        return;
    }
    json_t *metrics = json_object();
    json_t *m = json_object_get(res, "metrics");
    for (const char *const *k = contract_metric_keys; *k; k++)
        if (json_is_number(json_object_get(m, *k)))
            json_object_set(metrics, *k, json_object_get(m, *k));
    if (json_is_number(json_object_get(res, "trainSeconds")))
        json_object_set(metrics, "trainSeconds", json_object_get(res, "trainSeconds"));
    json_t *labels = json_object_get(res, "labels");
    if (json_is_array(labels) && json_array_size(labels))
        json_object_set(metrics, "labels", labels);
    json_object_set_new(c->st, "metrics", metrics);
    const char *uris[] = {"modelURI", "metricsURI"};
    for (int k = 0; k < 2; k++)
        if (str(res, uris[k]))
            json_object_set(c->st, uris[k], json_object_get(res, uris[k]));
    json_decref(res);
}

static double backoff_delay(ctx *c, json_int_t failures)
{
    double base = c->in->cfg->backoff_base_s > 0 ? c->in->cfg->backoff_base_s : 10;
    double max = c->in->cfg->backoff_max_s > 0 ? c->in->cfg->backoff_max_s : 600;
    double d = base * pow(2.0, (double)(failures > 1 ? (failures > 40 ? 40 : failures - 1) : 0));
    return d > max ? max : d;
}

/* A failed attempt: count it (unless disrupted), then retry after backoff or give up. */
static void handle_failed(ctx *c, const json_t *pod, int attempt)
{
    const json_t *term = terminated_state(pod);
    json_int_t code = term ? num(term, "exitCode", -1) : -1;
    const char *tmsg = str(term, "message");
    json_t *res = tmsg ? json_loads(tmsg, 0, NULL) : NULL;
    const char *why = str(res, "message") ? str(res, "message") : tmsg ? tmsg : str(json_object_get(pod, "status"), "message");
    char *detail = NULL;
    if (asprintf(&detail, "attempt %d: exit code %lld: %.300s", attempt, (long long)code, why ? why : "no message") < 0)
        detail = NULL;
    double finished = c->in->now;
    if (term && str(term, "finishedAt"))
        kube_time_parse(str(term, "finishedAt"), &finished);

    if (!has(c->st, "nextAttemptTime")) {
        /* First look at this failure. */
        int disrupted = pod_disrupted(pod);
        if (code == 2 && !disrupted) {
            event(c, "Warning", "BadInput", "%s", detail ? detail : "bad input");
            finish(c, "Failed", "BadInput", detail, finished);
            goto done;
        }
        json_int_t failures = num(c->st, "failures", 0) + (disrupted ? 0 : 1);
        json_object_set_new(c->st, "failures", json_integer(failures));
        json_int_t limit = num(c->spec, "backoffLimit", 3);
        if (!disrupted && failures > limit) {
            char *m = NULL;
            if (asprintf(&m, "%lld failed attempts (backoffLimit %lld); last %s", (long long)failures,
                         (long long)limit, detail ? detail : "") < 0)
                m = NULL;
            event(c, "Warning", "BackoffLimitExceeded", "%s", m ? m : "");
            finish(c, "Failed", "BackoffLimitExceeded", m, finished);
            free(m);
            goto done;
        }
        double next = disrupted ? c->in->now : finished + backoff_delay(c, failures);
        char ts[32];
        json_object_set_new(c->st, "nextAttemptTime", json_string(kube_time_format(next, 0, ts)));
        set_phase(c, "Pending", disrupted ? "Preempted" : "Retrying", detail);
        set_condition(c, "Running", 0, disrupted ? "Preempted" : "Retrying", detail);
        event(c, "Warning", disrupted ? "Preempted" : "AttemptFailed", "%s", detail ? detail : "");
        sync_run_record(c);
    }
    double next = c->in->now;
    kube_time_parse(str(c->st, "nextAttemptTime"), &next);
    if (c->in->now + 0.001 >= next)
        create_attempt(c, attempt + 1);
    else
        requeue(c, next - c->in->now);
done:
    free(detail);
    json_decref(res);
}

/* Container waiting reasons that mean the Pod does not start by itself, and of those the ones no
 * wait can fix. */
static const char *const STUCK_REASONS[] = {"ErrImagePull",        "ImagePullBackOff", "InvalidImageName",
                                            "ErrImageNeverPull",   "CreateContainerConfigError",
                                            "CreateContainerError", "RunContainerError", NULL};
static const char *const HOPELESS_REASONS[] = {"InvalidImageName", "ErrImageNeverPull", NULL};

static int in_list(const char *const *list, const char *s)
{
    for (; s && *list; list++)
        if (strcmp(*list, s) == 0)
            return 1;
    return 0;
}


/* The Pod's PodScheduled=False condition when the scheduler could not place it, or NULL. */
static const json_t *unschedulable(const json_t *pod)
{
    size_t i;
    json_t *cond;
    json_array_foreach(json_object_get(json_object_get(pod, "status"), "conditions"), i, cond) {
        const char *t = str(cond, "type"), *st = str(cond, "status");
        if (t && st && !strcmp(t, "PodScheduled") && !strcmp(st, "False"))
            return cond;
    }
    return NULL;
}

/* Says why the job waits (once per reason, as an Event too). */
static void report_waiting(ctx *c, const char *reason, const char *message)
{
    if (!condition_is(c, "Running", reason))
        event(c, "Warning", reason, "%s", message);
    set_phase(c, "Pending", reason, message);
    set_condition(c, "Running", 0, reason, message);
    sync_run_record(c);
}

/* A Pod not running yet: waiting on the scheduler or the kubelet is normal; a container that
 * cannot start (image pull, config) is surfaced at once and fails the run after
 * cfg->pod_start_timeout_s (at once when no wait can fix it). */
static void handle_pending(ctx *c, const json_t *pod, int attempt)
{
    const json_t *waiting = container_state(pod, "waiting"), *unsched = unschedulable(pod);
    const char *reason = str(waiting, "reason"), *cur = str(c->st, "phase");
    if (in_list(STUCK_REASONS, reason)) {
        const char *why = str(waiting, "message");
        char *m = NULL;
        if (asprintf(&m, "attempt %d: the trainer container cannot start: %s: %.400s", attempt, reason,
                     why ? why : "no message") < 0)
            m = NULL;
        double since = c->in->now, limit = c->in->cfg->pod_start_timeout_s > 0 ? c->in->cfg->pod_start_timeout_s : 300;
        kube_time_parse(str(json_object_get(pod, "metadata"), "creationTimestamp"), &since);
        if (in_list(HOPELESS_REASONS, reason) || c->in->now - since >= limit) {
            event(c, "Warning", reason, "%s", m ? m : reason);
            finish(c, "Failed", reason, m, c->in->now);
        } else {
            report_waiting(c, reason, m ? m : reason);
            requeue(c, since + limit - c->in->now);
        }
        free(m);
    } else if (unsched) {
        const char *why = str(unsched, "message");
        report_waiting(c, str(unsched, "reason") ? str(unsched, "reason") : "Unschedulable",
                       why ? why : "the scheduler has not placed the trainer Pod");
    } else if (!cur || strcmp(cur, "Running") != 0) {
        /* Waiting normally. A status that already says so (PodCreated, written with the Pod) is
         * left alone: one status write per new Pod, not two. */
        const char *why = str(c->st, "reason");
        if (!cur || strcmp(cur, "Pending") != 0 || !why || (strcmp(why, "PodCreated") && strcmp(why, "PodPending"))) {
            set_phase(c, "Pending", "PodPending", NULL);
            set_condition(c, "Running", 0, "Pending", "waiting for the trainer Pod");
        }
    }
}

static void handle_pod(ctx *c, const json_t *pod, int attempt)
{
    const char *ph = pod_phase(pod);
    int run = (int)num(c->st, "currentRun", 1);
    if (ph && strcmp(ph, "Running") == 0) {
        if (!has(c->st, "startTime"))
            json_object_set_new(c->st, "startTime", json_string(c->now_s));
        set_phase(c, "Running", "PodRunning", NULL);
        set_condition(c, "Running", 1, "PodRunning", pod_name(pod));
        sync_run_record(c); /* status.progress is written by the progress ingest (ingest.c) */
    } else if (ph && strcmp(ph, "Succeeded") == 0) {
        const json_t *term = terminated_state(pod);
        double finished = c->in->now;
        if (term && str(term, "finishedAt"))
            kube_time_parse(str(term, "finishedAt"), &finished);
        take_result(c, term);
        const json_t *m = json_object_get(c->st, "metrics");
        json_t *acc = json_object_get(m, "accuracy"), *f1 = json_object_get(m, "microF1");
        char msg[128];
        if (json_is_number(acc))
            snprintf(msg, sizeof msg, "run %d: accuracy %.4f", run, json_number_value(acc));
        else if (json_is_number(f1))
            snprintf(msg, sizeof msg, "run %d: micro-F1 %.4f", run, json_number_value(f1));
        else
            snprintf(msg, sizeof msg, "run %d finished", run);
        json_t *prog = json_object_get(c->st, "progress");
        if (json_is_object(prog))
            json_object_set_new(prog, "percent", json_real(100));
        event(c, "Normal", "Succeeded", "%s", msg);
        finish(c, "Succeeded", "Succeeded", msg, finished);
    } else if (ph && strcmp(ph, "Failed") == 0) {
        handle_failed(c, pod, attempt);
    } else {
        handle_pending(c, pod, attempt);
    }
}

/* TTL after a finished run; returns after deciding. */
static void handle_finished(ctx *c)
{
    delete_active_pods(c, NULL);
    json_int_t ttl = num(c->spec, "ttlSecondsAfterFinished", -1);
    double done_at;
    if (ttl < 0 || kube_time_parse(str(c->st, "completionTime"), &done_at) != 0)
        return;
    double left = done_at + (double)ttl - c->in->now;
    if (left <= 0)
        c->out->delete_job = 1;
    else
        requeue(c, left);
}

/* spec.schedule: when a tick is due, start a new run (concurrencyPolicy Forbid skips the tick
 * while a run is active; Replace supersedes it: one run at a time). podspec_check has already
 * refused schedules that do not parse or never fire. */
static void schedule(ctx *c, const char *hash, const char *retrain)
{
    const char *sched = str(c->spec, "schedule"), *zone_name = str(c->spec, "timeZone");
    cron_schedule cs;
    tz_zone *zone = NULL;
    if (!sched || !*sched || cron_parse(&cs, sched) != KF_OK ||
        (zone_name && *zone_name && tz_load(&zone, zone_name) != KF_OK))
        return;
    set_condition(c, "Scheduled", 1, "Scheduled", sched);
    double last;
    if (kube_time_parse(str(c->st, "lastScheduleTime"), &last) != KF_OK &&
        kube_time_parse(str(c->meta, "creationTimestamp"), &last) != KF_OK)
        last = c->in->now;
    double next = cron_next_in(&cs, last, zone);
    if (next > 0 && next <= c->in->now) {
        double tick = next, n;
        for (int i = 0; i < 100000 && (n = cron_next_in(&cs, tick, zone)) > 0 && n <= c->in->now; i++)
            tick = n; /* missed ticks collapse into the latest one */
        char ts[32];
        json_object_set_new(c->st, "lastScheduleTime", json_string(kube_time_format(tick, 0, ts)));
        const char *phase = str(c->st, "phase"), *policy = str(c->spec, "concurrencyPolicy");
        json_int_t late_limit = num(c->spec, "startingDeadlineSeconds", -1);
        if (late_limit >= 0 && c->in->now - tick > (double)late_limit)
            event(c, "Warning", "ScheduleMissed", "the tick at %s is more than startingDeadlineSeconds (%lld) late",
                  ts, (long long)late_limit);
        else if (!reconcile_phase_finished(phase) && (!policy || strcmp(policy, "Forbid") == 0))
            event(c, "Normal", "ScheduleSkipped", "a run is still active (concurrencyPolicy Forbid)");
        else
            start_run(c, hash, retrain, "schedule");
        next = cron_next_in(&cs, tick, zone);
    }
    if (next > 0)
        requeue(c, next - c->in->now);
    tz_free(zone);
}

/* ---- the steps of one reconcile ---- */

/* A new run on the first visit, a run-relevant spec change or a new retrain annotation; else a
 * due schedule tick. A status without specHash (e.g. pruned by an older schema) keeps the
 * current run. */
static void decide_run(ctx *c, const char *hash, const char *retrain)
{
    json_int_t cur = num(c->st, "currentRun", 0);
    const char *old_hash = str(c->st, "specHash"), *old_retrain = str(c->st, "retrain");
    if (!old_hash) {
        size_t i;
        json_t *r;
        json_array_foreach(json_object_get(c->st, "runs"), i, r) {
            if (num(r, "run", -1) == cur)
                old_hash = str(r, "specHash");
        }
    }
    int retrained = old_retrain && strcmp(old_retrain, retrain) != 0;
    if (cur == 0 || (old_hash && strcmp(old_hash, hash) != 0) || retrained)
        start_run(c, hash, retrain, cur == 0 ? "first run" : retrained ? "retrain annotation changed" : "spec changed");
    else if (!json_is_true(json_object_get(c->spec, "suspend")))
        schedule(c, hash, retrain);
}

/* spec.suspend: no Pod while suspended. Returns 1 when suspended; sets *resumed when the job
 * just left suspension (a fresh attempt and deadline clock follow). */
static int suspend_or_resume(ctx *c, int *resumed)
{
    const char *phase = str(c->st, "phase");
    *resumed = 0;
    if (json_is_true(json_object_get(c->spec, "suspend"))) {
        delete_active_pods(c, NULL);
        if (!phase || strcmp(phase, "Suspended") != 0)
            event(c, "Normal", "Suspended", "the job is suspended; its Pod is deleted");
        set_phase(c, "Suspended", "Suspended", NULL);
        set_condition(c, "Suspended", 1, "Suspended", "spec.suspend is true");
        set_condition(c, "Running", 0, "Suspended", "");
        json_object_del(c->st, "startTime");
        json_object_del(c->st, "nextAttemptTime");
        sync_run_record(c);
        return 1;
    }
    if (phase && strcmp(phase, "Suspended") == 0) {
        *resumed = 1;
        set_condition(c, "Suspended", 0, "Resumed", "spec.suspend is false");
        event(c, "Normal", "Resumed", "the job is resumed");
    }
    return 0;
}

/* activeDeadlineSeconds counts from the run's start. Returns 1 when the run is over. */
static int check_deadline(ctx *c)
{
    json_int_t ads = num(c->spec, "activeDeadlineSeconds", 0);
    double start;
    if (ads <= 0 || kube_time_parse(str(c->st, "startTime"), &start) != 0)
        return 0;
    double left = start + (double)ads - c->in->now;
    if (left > 0) {
        requeue(c, left);
        return 0;
    }
    char m[96];
    snprintf(m, sizeof m, "the run exceeded activeDeadlineSeconds (%lld)", (long long)ads);
    delete_active_pods(c, NULL);
    event(c, "Warning", "DeadlineExceeded", "%s", m);
    finish(c, "Failed", "DeadlineExceeded", m, c->in->now);
    return 1;
}

/* The newest attempt of the current run: from status, or a Pod ahead of a stale status. Pods of
 * older runs still going are deleted. *pod is NULL when the attempt's Pod is missing. */
static int current_attempt(ctx *c, const json_t **pod)
{
    int run = (int)num(c->st, "currentRun", 1), attempt = (int)num(c->st, "attempts", 0);
    size_t i;
    json_t *p;
    *pod = NULL;
    json_array_foreach(c->in->pods, i, p) {
        if (!pod_is_ours(c, p))
            continue;
        int prun = pod_label_int(p, RECONCILE_LABEL_RUN), patt = pod_label_int(p, RECONCILE_LABEL_ATTEMPT);
        if (prun != run) {
            if (!pod_finished(p) && !has(json_object_get(p, "metadata"), "deletionTimestamp"))
                delete_pod(c, pod_name(p)); /* an older run's */
            continue;
        }
        if (patt > attempt)
            attempt = patt, *pod = NULL;
        if (patt == attempt)
            *pod = p;
    }
    if (attempt > num(c->st, "attempts", 0)) {
        json_object_set_new(c->st, "attempts", json_integer(attempt));
        json_object_set_new(c->st, "podName", json_string(pod_name(*pod)));
    }
    return attempt;
}

/* Moves the attempt on: the first Pod, a missing Pod again, a fresh one after resuming, or
 * whatever the Pod's state asks for. */
static void advance_attempt(ctx *c, const json_t *pod, int attempt, int resumed)
{
    if (attempt == 0 || (resumed && (!pod || !pod_finished(pod))))
        create_attempt(c, attempt + 1);
    else if (!pod)
        create_attempt(c, attempt); /* missing (deleted, or not in the cache yet): same name again */
    else if (resumed && strcmp(pod_phase(pod) ? pod_phase(pod) : "", "Failed") == 0)
        create_attempt(c, attempt + 1);
    else
        handle_pod(c, pod, attempt);
}

int reconcile(reconcile_result *out, const reconcile_input *in)
{
    memset(out, 0, sizeof *out);
    out->delete_pods = json_array();
    out->events = json_array();
    ctx c = {.in = in, .out = out};
    c.meta = json_object_get(in->job, "metadata");
    c.spec = json_object_get(in->job, "spec");
    c.name = str(c.meta, "name");
    c.ns = str(c.meta, "namespace");
    c.uid = str(c.meta, "uid");
    c.generation = num(c.meta, "generation", 1);
    kube_time_format(in->now, 0, c.now_s);
    if (!out->delete_pods || !out->events)
        return err_set(KF_ENOMEM, "reconcile: out of memory");
    if (!c.name || !c.ns || !c.uid)
        return err_set(KF_EINVAL, "reconcile: job without name, namespace or uid");
    if (has(c.meta, "deletionTimestamp"))
        return KF_OK; /* the garbage collector removes the Pods */

    const json_t *old = json_object_get(in->job, "status");
    c.st = json_is_object(old) ? json_deep_copy(old) : json_object();
    char *hash = reconcile_spec_hash(c.spec);
    if (!c.st || !hash) {
        free(hash);
        json_decref(c.st);
        return err_set(KF_ENOMEM, "reconcile: out of memory");
    }
    const char *retrain = str(json_object_get(c.meta, "annotations"), RECONCILE_ANNOTATION_RETRAIN);
    retrain = retrain ? retrain : "";
    json_object_set_new(c.st, "observedGeneration", json_integer(c.generation));

    int resumed = 0;
    if (podspec_check(in->job, in->cfg, in->now) < 0) {
        fail_invalid_spec(&c, err_msg());
        goto diff;
    }
    decide_run(&c, hash, retrain);
    if (reconcile_phase_finished(str(c.st, "phase")) || suspend_or_resume(&c, &resumed) || check_deadline(&c))
        goto finished;
    const json_t *pod;
    int attempt = current_attempt(&c, &pod);
    advance_attempt(&c, pod, attempt, resumed);
    if (in->pod_error && out->create_pod) {
        /* A Pod the API server refuses (e.g. a bad env name) will not get better by retrying. */
        json_decref(out->create_pod);
        out->create_pod = NULL;
        event(&c, "Warning", "PodRejected", "%s", in->pod_error);
        finish(&c, "Failed", "PodRejected", in->pod_error, in->now);
    }
finished:
    if (reconcile_phase_finished(str(c.st, "phase")))
        handle_finished(&c);
diff:
    trim_runs(&c);
    if (json_equal(c.st, (json_t *)old))
        json_decref(c.st);
    else
        out->status = c.st;
    free(hash);
    return KF_OK;
}

void reconcile_result_dispose(reconcile_result *r)
{
    if (!r)
        return;
    json_decref(r->status);
    json_decref(r->create_pod);
    json_decref(r->delete_pods);
    json_decref(r->events);
    memset(r, 0, sizeof *r);
}
