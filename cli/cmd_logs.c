/* kubefit logs NAME [-f] [--run N]: the trainer Pods' logs of one run, attempt after attempt,
 * through the API server (pods/log). -f follows the newest attempt and, when it ends while the
 * run goes on (a retry), the next one, until the run is over. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "err.h"
#include "follow.h"
#include "http.h"
#include "reconcile.h"

static const args_flag LOGS_FLAGS[] = {
    {"follow", 'f', NULL, "stream the log until the run ends, across retries", 0},
    {"run", 0, "N", "which run (default: the current one)", 0},
    {NULL, 0, NULL, NULL, 0},
};

static const char *str(const json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

static int label_int(const json_t *pod, const char *label)
{
    const char *v = str(json_object_get(json_object_get(pod, "metadata"), "labels"), label);
    return v ? atoi(v) : 0;
}

static int by_attempt(const void *a, const void *b)
{
    return label_int(*(json_t *const *)a, RECONCILE_LABEL_ATTEMPT) - label_int(*(json_t *const *)b, RECONCILE_LABEL_ATTEMPT);
}

/* The run's Pods, by attempt. Caller decrefs. */
static int run_pods(cluster *c, const char *name, long run, json_t **out)
{
    char *path = NULL, *q = NULL, *sel = NULL, *rv = NULL, *esc = NULL;
    json_t *items = NULL;
    int rc;
    *out = NULL;
    if (asprintf(&sel, "%s=%s,%s=%ld", RECONCILE_LABEL_JOB, name, RECONCILE_LABEL_RUN, run) < 0 ||
        !(esc = http_escape(sel)) || asprintf(&path, "/api/v1/namespaces/%s/pods", c->namespace) < 0 ||
        asprintf(&q, "labelSelector=%s", esc) < 0) {
        rc = err_set(KF_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = kube_list(c->kube, path, q, 0, &items, &rv)) < 0) {
        rc = cluster_explain(c, rc);
        goto done;
    }
    size_t n = json_array_size(items);
    json_t **v = calloc(n ? n : 1, sizeof *v);
    if (!v) {
        rc = err_set(KF_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(items, i);
    qsort(v, n, sizeof *v, by_attempt);
    *out = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append(*out, v[i]);
    free(v);
done:
    json_decref(items);
    free(path);
    free(q);
    free(sel);
    free(rv);
    free(esc);
    return rc;
}

static int to_stdout(void *ctx, const char *data, size_t len)
{
    FILE *f = ctx;
    fwrite(data, 1, len, f);
    fflush(f);
    return 0;
}

/* One Pod's log (follow: until the container ends). KF_EINVAL "waiting to start" when it has not. */
static int pod_log(cluster *c, FILE *out, const char *pod, int follow)
{
    char *path = NULL, *esc = http_escape(pod);
    if (!esc || asprintf(&path, "/api/v1/namespaces/%s/pods/%s/log?container=%s%s", c->namespace, esc, RECONCILE_CONTAINER,
                         follow ? "&follow=true" : "") < 0) {
        free(esc);
        return err_set(KF_ENOMEM, "out of memory");
    }
    int rc = kube_stream(c->kube, path, to_stdout, out, NULL);
    free(path);
    free(esc);
    return rc;
}

static const char *pod_phase(const json_t *pod) { return str(json_object_get(pod, "status"), "phase"); }

static void header(FILE *f, const json_t *pod)
{
    const json_t *cs = json_array_get(json_object_get(json_object_get(pod, "status"), "containerStatuses"), 0);
    const json_t *term = json_object_get(json_object_get(cs, "state"), "terminated");
    fprintf(f, "==> %s (attempt %d, %s", str(json_object_get(pod, "metadata"), "name"),
            label_int(pod, RECONCILE_LABEL_ATTEMPT), pod_phase(pod) ? pod_phase(pod) : "Pending");
    if (term)
        fprintf(f, ", exit code %lld", (long long)json_integer_value(json_object_get(term, "exitCode")));
    fprintf(f, ") <==\n");
}

static void pause_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

int cmd_logs(const cli_ctx *ctx, char **argv)
{
    args_parsed a;
    static const cli_command CMD = {"logs", "logs NAME [-f] [--run N]", LOGS_FLAGS, 1};
    int code = cli_args(&a, ctx, &CMD, argv);
    if (code >= 0)
        return code;
    cluster c = {0};
    json_t *job = NULL, *pods = NULL;
    long run = 0;
    int rc;
    if (a.n_pos != 1) {
        fprintf(ctx->err, "%s logs: %s\n", ctx->prog, a.n_pos ? "one NAME only" : "NAME is required");
        code = CLI_BAD_INPUT;
        goto done;
    }
    if ((rc = args_long(&run, &a, "run", 1, 1000000000, 0)) < 0) {
        code = cli_fail(ctx, rc);
        goto done;
    }
    if ((code = cli_connect(&c, ctx, &a)) >= 0)
        goto done;
    const char *name = a.pos[0];
    if ((rc = cluster_get_job(&c, name, &job)) < 0) {
        code = cli_fail(ctx, rc);
        goto done;
    }
    const json_t *st = json_object_get(job, "status");
    if (!run)
        run = (long)json_integer_value(json_object_get(st, "currentRun"));
    if (run <= 0) {
        fprintf(ctx->err, "%s logs: %s has no run yet (is kubefit-controller running? kubefit status %s)\n", ctx->prog,
                name, name);
        code = CLI_FAILED;
        goto done;
    }
    int follow = args_has(&a, "follow");
    if ((rc = run_pods(&c, name, run, &pods)) < 0) {
        code = cli_fail(ctx, rc);
        goto done;
    }
    if (!json_array_size(pods) && !follow) {
        fprintf(ctx->err, "%s logs: run %ld of %s has no trainer Pod (any more)\n", ctx->prog, run, name);
        code = CLI_FAILED;
        goto done;
    }
    /* Finished attempts first, then (with -f) the newest one as it runs. */
    size_t n = json_array_size(pods), shown = 0;
    int multi = n > 1 || follow;
    for (size_t i = 0; i < n; i++) {
        const json_t *pod = json_array_get(pods, i);
        int last = i + 1 == n;
        if (follow && last && !reconcile_phase_finished(pod_phase(pod)))
            break;
        if (multi)
            header(ctx->out, pod);
        rc = pod_log(&c, ctx->out, str(json_object_get(pod, "metadata"), "name"), 0);
        if (rc == KF_EINVAL) {
            fprintf(ctx->out, "(no log: %s)\n", err_msg());
        } else if (rc < 0) {
            code = cli_fail(ctx, cluster_explain(&c, rc));
            goto done;
        }
        shown = i + 1;
    }
    code = 0;
    if (!follow)
        goto done;
    /* Follow: the next attempt's Pod, once its container has started, until the run is over. */
    int next_attempt = shown ? label_int(json_array_get(pods, shown - 1), RECONCILE_LABEL_ATTEMPT) + 1 : 0;
    for (;;) {
        json_decref(pods);
        pods = NULL;
        if ((rc = run_pods(&c, name, run, &pods)) < 0) {
            code = cli_fail(ctx, rc);
            goto done;
        }
        const json_t *pod = NULL;
        size_t i;
        json_t *p;
        json_array_foreach(pods, i, p) {
            if (label_int(p, RECONCILE_LABEL_ATTEMPT) >= next_attempt) {
                pod = p;
                break;
            }
        }
        const char *ph = pod ? pod_phase(pod) : NULL;
        if (pod && ph && strcmp(ph, "Pending") != 0) {
            header(ctx->out, pod);
            rc = pod_log(&c, ctx->out, str(json_object_get(pod, "metadata"), "name"), 1);
            if (rc == KF_EINVAL) {
                pause_s(1); /* not started after all: try again */
                continue;
            }
            if (rc < 0) {
                code = cli_fail(ctx, cluster_explain(&c, rc));
                goto done;
            }
            next_attempt = label_int(pod, RECONCILE_LABEL_ATTEMPT) + 1;
            continue;
        }
        json_decref(job);
        job = NULL;
        if ((rc = cluster_get_job(&c, name, &job)) < 0) {
            code = cli_fail(ctx, rc);
            goto done;
        }
        st = json_object_get(job, "status");
        long cur = (long)json_integer_value(json_object_get(st, "currentRun"));
        if (cur != run || follow_exit_code(st) >= 0) {
            if (cur != run)
                fprintf(ctx->err, "%s logs: run %ld is over; run %ld started (kubefit logs -f %s follows it)\n",
                        ctx->prog, run, cur, name);
            break;
        }
        pause_s(1);
    }
done:
    json_decref(job);
    json_decref(pods);
    cluster_dispose(&c);
    args_dispose(&a);
    return code;
}
