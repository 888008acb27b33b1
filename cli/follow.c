/* follow: a TrainingJob run watched to its end (see follow.h). */
#include "follow.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "http.h"
#include "kubetime.h"
#include "reconcile.h"
#include "show.h"

static const char *str(const json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

int follow_exit_code(const json_t *st)
{
    const char *phase = str(st, "phase"), *reason = str(st, "reason");
    if (!reconcile_phase_finished(phase))
        return -1;
    if (!strcmp(phase, "Succeeded"))
        return 0;
    if (reason && (!strcmp(reason, "BadInput") || !strcmp(reason, "InvalidSpec") || !strcmp(reason, "PodRejected")))
        return 2;
    return 1;
}

typedef struct {
    const follow_opts *o;
    json_t *job;          /* last seen */
    long run;             /* the run followed; 0 until known */
    int done, exit_code;
    char last_phase[160]; /* phase/reason printed last */
    char last_key[96];    /* progress stage/epoch printed last (no TTY) */
    int bar_shown;
    double deadline;
    int cancel;
} follower;

static void clear_bar(follower *f)
{
    if (f->bar_shown)
        fputs("\r\033[K", f->o->err);
    f->bar_shown = 0;
}

/* Looks at one version of the job: settles which run, prints what changed, notices the end. */
static void look(follower *f, const json_t *job)
{
    const follow_opts *o = f->o;
    json_decref(f->job);
    f->job = json_deep_copy(job);
    const json_t *st = json_object_get(job, "status"), *meta = json_object_get(job, "metadata");
    long cur = (long)json_integer_value(json_object_get(st, "currentRun"));
    if (!f->run) {
        long seen = (long)json_integer_value(json_object_get(st, "observedGeneration"));
        if (o->generation > 0 && seen < o->generation)
            return; /* the controller has not looked at this spec yet */
        if (o->retrain && (!str(st, "retrain") || strcmp(str(st, "retrain"), o->retrain) != 0))
            return;
        if (cur <= 0)
            return;
        f->run = cur;
    }
    if (cur > f->run) {
        clear_bar(f);
        if (o->progress)
            fprintf(o->err, "kubefit: %s: run %ld was superseded by run %ld\n", str(meta, "name"), f->run, cur);
        f->done = 1, f->exit_code = 1;
        return;
    }
    const char *phase = str(st, "phase"), *reason = str(st, "reason"), *msg = str(st, "message");
    char key[160];
    snprintf(key, sizeof key, "%s/%s", phase ? phase : "", reason ? reason : "");
    if (o->progress && strcmp(key, f->last_phase) != 0 && !reconcile_phase_finished(phase)) {
        clear_bar(f);
        fprintf(o->err, "kubefit: %s: run %ld: %s%s%s%s\n", str(meta, "name"), f->run, phase ? phase : "?",
                reason ? " (" : "", reason ? reason : "", reason ? ")" : "");
        if (msg && *msg && reason && strcmp(reason, "PodCreated") && strcmp(reason, "PodRunning") &&
            strcmp(reason, "RunCreated") && strcmp(reason, "PodPending"))
            fprintf(o->err, "  %s\n", msg);
    }
    snprintf(f->last_phase, sizeof f->last_phase, "%s", key);
    const json_t *p = json_object_get(st, "progress");
    if (o->progress && json_is_object(p) && phase && !strcmp(phase, "Running")) {
        char text[256], pkey[96];
        snprintf(pkey, sizeof pkey, "%s/%lld", str(p, "stage") ? str(p, "stage") : "",
                 (long long)json_integer_value(json_object_get(p, "epoch")));
        if (o->tty) {
            show_progress_text(text, sizeof text, p, 30);
            fprintf(o->err, "\r\033[K%s", text);
            fflush(o->err);
            f->bar_shown = 1;
        } else if (strcmp(pkey, f->last_key) != 0) {
            show_progress_text(text, sizeof text, p, 0);
            fprintf(o->err, "progress: %s\n", text);
        }
        snprintf(f->last_key, sizeof f->last_key, "%s", pkey);
    }
    int code = follow_exit_code(st);
    if (code >= 0) {
        clear_bar(f);
        f->done = 1, f->exit_code = code;
    }
}

static int on_event(void *ctx, const char *type, json_t *obj)
{
    follower *f = ctx;
    if (!strcmp(type, "DELETED")) {
        clear_bar(f);
        if (f->o->progress)
            fprintf(f->o->err, "kubefit: %s: the TrainingJob was deleted\n", f->o->name);
        f->done = 1, f->exit_code = 1;
        return 1;
    }
    if (!strcmp(type, "ADDED") || !strcmp(type, "MODIFIED"))
        look(f, obj);
    if (!f->done && f->deadline > 0 && kube_now() >= f->deadline)
        return 1;
    return f->done;
}

int follow_run(json_t **job, int *exit_code, const follow_opts *o)
{
    follower f = {.o = o, .exit_code = 1};
    cluster *c = o->cluster;
    char *path = cluster_jobs_path(c, NULL), *sel = NULL, *esc = http_escape(o->name);
    int rc = 0;
    *job = NULL;
    *exit_code = 1;
    if (!path || !esc || asprintf(&sel, "fieldSelector=metadata.name%%3D%s", esc) < 0) {
        sel = NULL;
        rc = err_set(KF_ENOMEM, "out of memory");
        goto done;
    }
    f.deadline = o->timeout_s > 0 ? kube_now() + o->timeout_s : 0;
    while (!f.done) {
        json_t *items = NULL;
        char *rv = NULL;
        if ((rc = kube_list(c->kube, path, sel, 0, &items, &rv)) < 0) {
            rc = cluster_explain(c, rc);
            break;
        }
        if (!json_array_size(items)) {
            json_decref(items);
            free(rv);
            rc = cluster_not_found(c, o->name);
            break;
        }
        look(&f, json_array_get(items, 0));
        json_decref(items);
        if (f.done) {
            free(rv);
            break;
        }
        long left = f.deadline > 0 ? (long)(f.deadline - kube_now()) + 1 : 60;
        if (f.deadline > 0 && kube_now() >= f.deadline) {
            free(rv);
            break;
        }
        kube_watch_opts w = {.collection = path, .query = sel, .resource_version = rv,
                             .timeout_seconds = left < 60 ? left : 60, .on_event = on_event, .ctx = &f};
        rc = kube_watch(c->kube, &w);
        free(rv);
        if (rc == KF_EGONE || rc == KF_ERETRY)
            rc = 0; /* list again (a transient error gets the list's verdict next) */
        if (rc < 0) {
            rc = cluster_explain(c, rc);
            break;
        }
        if (f.deadline > 0 && kube_now() >= f.deadline && !f.done)
            break;
    }
    clear_bar(&f);
    if (rc == 0 && !f.done) {
        const json_t *st = json_object_get(f.job, "status");
        char d[32];
        show_duration(d, sizeof d, o->timeout_s);
        if (o->progress)
            fprintf(o->err, "kubefit: %s: timed out after %s (phase %s)\n", o->name, d,
                    str(st, "phase") ? str(st, "phase") : "none yet");
        f.exit_code = 3;
    }
    *exit_code = f.exit_code;
    *job = f.job;
    f.job = NULL;
done:
    json_decref(f.job);
    free(path);
    free(sel);
    free(esc);
    return rc;
}
