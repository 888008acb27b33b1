#include "reconcile.h"

#include "cron.h"
#include "err.h"
#include "kubetime.h"

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

static void event(ctx *c, const char *type, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void event(ctx *c, const char *type, const char *reason, const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    json_array_append_new(c->out->events, json_pack("{s:s,s:s,s:s}", "type", type, "reason", reason, "message",
                                                    msg ? msg : ""));
    free(msg);
}

static void requeue(ctx *c, double after)
{
    if (after < 0.5)
        after = 0.5;
    if (c->out->requeue_after == 0 || after < c->out->requeue_after)
        c->out->requeue_after = after;
}

/* metav1.Condition upsert: lastTransitionTime changes only when status does. */
static void set_condition(ctx *c, const char *type, int status, const char *reason, const char *message)
{
    json_t *conds = json_object_get(c->st, "conditions");
    if (!json_is_array(conds)) {
        conds = json_array();
        json_object_set_new(c->st, "conditions", conds);
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
        json_object_set_new(cond, "lastTransitionTime", json_string(c->now_s));
    json_object_set_new(cond, "status", json_string(sv));
    json_object_set_new(cond, "reason", json_string(reason));
    json_object_set_new(cond, "message", json_string(message ? message : ""));
    json_object_set_new(cond, "observedGeneration", json_integer(c->generation));
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
    json_t *acc = json_object_get(json_object_get(c->st, "metrics"), "accuracy");
    if (json_is_number(acc))
        json_object_set(r, "accuracy", acc);
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

static int pod_finished(const json_t *pod)
{
    const char *p = pod_phase(pod);
    return p && (strcmp(p, "Succeeded") == 0 || strcmp(p, "Failed") == 0);
}

static const char *pod_name(const json_t *pod) { return str(json_object_get(pod, "metadata"), "name"); }

/* The trainer container's terminated state, or NULL. */
static const json_t *terminated_state(const json_t *pod)
{
    size_t i;
    json_t *cs;
    json_array_foreach(json_object_get(json_object_get(pod, "status"), "containerStatuses"), i, cs) {
        const char *n = str(cs, "name");
        if (n && strcmp(n, RECONCILE_CONTAINER) == 0)
            return json_object_get(json_object_get(cs, "state"), "terminated");
    }
    return NULL;
}

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

static void start_run(ctx *c, const char *hash, const char *retrain, const char *why)
{
    json_int_t run = num(c->st, "currentRun", 0);
    if (run > 0) {
        /* The previous run ends here: superseded when it was still going. */
        const char *ph = str(c->st, "phase");
        if (ph && strcmp(ph, "Succeeded") != 0 && strcmp(ph, "Failed") != 0) {
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
    json_t *pod = reconcile_build_pod(c->in->job, run, attempt, c->in->cfg, deadline_left);
    if (!pod)
        return;
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
    const char *keys[] = {"accuracy", "microF1", "macroF1", "loss", "validLoss"};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
        if (json_is_number(json_object_get(m, keys[k])))
            json_object_set(metrics, keys[k], json_object_get(m, keys[k]));
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

static void handle_pod(ctx *c, const json_t *pod, int attempt)
{
    const char *ph = pod_phase(pod);
    int run = (int)num(c->st, "currentRun", 1);
    if (ph && strcmp(ph, "Running") == 0) {
        if (!has(c->st, "startTime"))
            json_object_set_new(c->st, "startTime", json_string(c->now_s));
        set_phase(c, "Running", "PodRunning", NULL);
        set_condition(c, "Running", 1, "PodRunning", pod_name(pod));
        const json_t *p = c->in->progress;
        if (json_is_object(p) && num(p, "run", -1) == run) {
            json_t *copy = json_deep_copy(p);
            json_object_del(copy, "run");
            json_object_set_new(c->st, "progress", copy);
        }
        sync_run_record(c);
    } else if (ph && strcmp(ph, "Succeeded") == 0) {
        const json_t *term = terminated_state(pod);
        double finished = c->in->now;
        if (term && str(term, "finishedAt"))
            kube_time_parse(str(term, "finishedAt"), &finished);
        take_result(c, term);
        json_t *acc = json_object_get(json_object_get(c->st, "metrics"), "accuracy");
        char msg[128];
        if (json_is_number(acc))
            snprintf(msg, sizeof msg, "run %d: accuracy %.4f", run, json_number_value(acc));
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
        /* Pending or unknown: wait for the kubelet. */
        const char *cur = str(c->st, "phase");
        if (!cur || strcmp(cur, "Running") != 0)
            set_phase(c, "Pending", "PodPending", NULL);
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
 * while a run is active; Replace and Allow supersede it: one run at a time). */
static void schedule(ctx *c, const char *hash, const char *retrain)
{
    const char *sched = str(c->spec, "schedule");
    cron_schedule cs;
    if (!sched || !*sched)
        return;
    if (cron_parse(&cs, sched) != KF_OK) {
        if (!condition_is(c, "Scheduled", "InvalidSchedule"))
            event(c, "Warning", "InvalidSchedule", "%s", err_msg());
        set_condition(c, "Scheduled", 0, "InvalidSchedule", err_msg());
        return;
    }
    set_condition(c, "Scheduled", 1, "Scheduled", sched);
    double last;
    if (kube_time_parse(str(c->st, "lastScheduleTime"), &last) != KF_OK &&
        kube_time_parse(str(c->meta, "creationTimestamp"), &last) != KF_OK)
        last = c->in->now;
    double next = cron_next(&cs, last);
    if (next > 0 && next <= c->in->now) {
        double tick = next, n;
        for (int i = 0; i < 100000 && (n = cron_next(&cs, tick)) > 0 && n <= c->in->now; i++)
            tick = n; /* missed ticks collapse into the latest one */
        char ts[32];
        json_object_set_new(c->st, "lastScheduleTime", json_string(kube_time_format(tick, 0, ts)));
        const char *phase = str(c->st, "phase"), *policy = str(c->spec, "concurrencyPolicy");
        int active = phase && strcmp(phase, "Succeeded") != 0 && strcmp(phase, "Failed") != 0;
        if (active && (!policy || strcmp(policy, "Forbid") == 0))
            event(c, "Normal", "ScheduleSkipped", "a run is still active (concurrencyPolicy Forbid)");
        else
            start_run(c, hash, retrain, "schedule");
        next = cron_next(&cs, tick);
    }
    if (next > 0)
        requeue(c, next - c->in->now);
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

    /* Bad specs the schema should have stopped: fail clearly, make no Pod. */
    const char *lang = str(c.spec, "language"), *bucket = str(json_object_get(c.spec, "storage"), "bucket");
    if (!lang || !*lang || !bucket || !*bucket) {
        const char *m = !lang || !*lang ? "spec.language is required" : "spec.storage.bucket is required";
        const char *cur = str(c.st, "reason");
        if (!cur || strcmp(cur, "InvalidSpec") != 0)
            event(&c, "Warning", "InvalidSpec", "%s", m);
        set_phase(&c, "Failed", "InvalidSpec", m);
        set_condition(&c, "Failed", 1, "InvalidSpec", m);
        goto diff;
    }

    /* A new run on the first visit, a run-relevant spec change or a new retrain annotation. A
     * status without specHash (e.g. pruned by an older schema) keeps the current run. */
    json_int_t cur = num(c.st, "currentRun", 0);
    const char *old_hash = str(c.st, "specHash"), *old_retrain = str(c.st, "retrain");
    if (!old_hash) {
        size_t i;
        json_t *r;
        json_array_foreach(json_object_get(c.st, "runs"), i, r) {
            if (num(r, "run", -1) == cur)
                old_hash = str(r, "specHash");
        }
    }
    if (cur == 0 || (old_hash && strcmp(old_hash, hash) != 0) || (old_retrain && strcmp(old_retrain, retrain) != 0))
        start_run(&c, hash, retrain, cur == 0 ? "first run" : old_retrain && strcmp(old_retrain, retrain) ? "retrain annotation changed" : "spec changed");
    else if (!json_is_true(json_object_get(c.spec, "suspend")))
        schedule(&c, hash, retrain);

    const char *phase = str(c.st, "phase");
    if (phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0)) {
        handle_finished(&c);
        goto diff;
    }

    /* Suspend: no Pod while suspended; resuming starts a fresh attempt and deadline clock. */
    if (json_is_true(json_object_get(c.spec, "suspend"))) {
        delete_active_pods(&c, NULL);
        if (!phase || strcmp(phase, "Suspended") != 0)
            event(&c, "Normal", "Suspended", "the job is suspended; its Pod is deleted");
        set_phase(&c, "Suspended", "Suspended", NULL);
        set_condition(&c, "Suspended", 1, "Suspended", "spec.suspend is true");
        set_condition(&c, "Running", 0, "Suspended", "");
        json_object_del(c.st, "startTime");
        json_object_del(c.st, "nextAttemptTime");
        sync_run_record(&c);
        goto diff;
    }
    int resumed = phase && strcmp(phase, "Suspended") == 0;
    if (resumed) {
        set_condition(&c, "Suspended", 0, "Resumed", "spec.suspend is false");
        event(&c, "Normal", "Resumed", "the job is resumed");
    }

    /* activeDeadlineSeconds counts from the run's start. */
    json_int_t ads = num(c.spec, "activeDeadlineSeconds", 0);
    double start;
    if (ads > 0 && kube_time_parse(str(c.st, "startTime"), &start) == 0) {
        double left = start + (double)ads - in->now;
        if (left <= 0) {
            char m[96];
            snprintf(m, sizeof m, "the run exceeded activeDeadlineSeconds (%lld)", (long long)ads);
            delete_active_pods(&c, NULL);
            event(&c, "Warning", "DeadlineExceeded", "%s", m);
            finish(&c, "Failed", "DeadlineExceeded", m, in->now);
            handle_finished(&c);
            goto diff;
        }
        requeue(&c, left);
    }

    /* The newest attempt of the current run: from status, or a Pod ahead of a stale status. */
    int run = (int)num(c.st, "currentRun", 1), attempt = (int)num(c.st, "attempts", 0);
    const json_t *pod = NULL;
    size_t i;
    json_t *p;
    json_array_foreach(in->pods, i, p) {
        if (!pod_is_ours(&c, p))
            continue;
        int prun = pod_label_int(p, RECONCILE_LABEL_RUN), patt = pod_label_int(p, RECONCILE_LABEL_ATTEMPT);
        if (prun != run) {
            if (!pod_finished(p) && !has(json_object_get(p, "metadata"), "deletionTimestamp"))
                delete_pod(&c, pod_name(p)); /* an older run's */
            continue;
        }
        if (patt > attempt)
            attempt = patt, pod = NULL;
        if (patt == attempt)
            pod = p;
    }
    if (attempt > num(c.st, "attempts", 0)) {
        json_object_set_new(c.st, "attempts", json_integer(attempt));
        json_object_set_new(c.st, "podName", json_string(pod_name(pod)));
    }
    if (attempt == 0 || (resumed && pod && !pod_finished(pod)) || (resumed && !pod)) {
        create_attempt(&c, attempt + 1);
    } else if (!pod) {
        create_attempt(&c, attempt); /* missing (deleted, or not in the cache yet): same name again */
    } else {
        const char *pph = pod_phase(pod);
        if (resumed && pph && strcmp(pph, "Failed") == 0)
            create_attempt(&c, attempt + 1);
        else
            handle_pod(&c, pod, attempt);
    }
    if (in->pod_error && out->create_pod) {
        /* A Pod the API server refuses (e.g. a bad env name) will not get better by retrying. */
        json_decref(out->create_pod);
        out->create_pod = NULL;
        event(&c, "Warning", "PodRejected", "%s", in->pod_error);
        finish(&c, "Failed", "PodRejected", in->pod_error, in->now);
    }
    phase = str(c.st, "phase");
    if (phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0))
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
