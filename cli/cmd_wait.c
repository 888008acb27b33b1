/* kubefit wait NAME and kubefit retrain NAME. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "follow.h"
#include "kubetime.h"
#include "reconcile.h"
#include "show.h"

static const args_flag WAIT_FLAGS[] = {
    {"timeout", 0, "DURATION", "give up after this long (exit 3); default: no limit", 0},
    {"quiet", 'q', NULL, "print nothing; the exit code says how the run ended", 0},
    {NULL, 0, NULL, NULL, 0},
};

int cmd_wait(const cli_ctx *ctx, char **argv)
{
    args_parsed a;
    static const cli_command CMD = {"wait", "wait NAME [--timeout 30m]  (exit 0: the run succeeded, 1: failed, 2: failed "
                                         "for bad input, 3: timed out)", WAIT_FLAGS, 1};
    int code = cli_args(&a, ctx, &CMD, argv);
    if (code >= 0)
        return code;
    cluster c = {0};
    json_t *job = NULL;
    double timeout = 0;
    int rc;
    if (a.n_pos != 1) {
        fprintf(ctx->err, "%s wait: %s\n", ctx->prog, a.n_pos ? "one NAME only" : "NAME is required");
        code = CLI_BAD_INPUT;
        goto done;
    }
    if ((rc = args_duration(&timeout, &a, "timeout", 0)) < 0) {
        code = cli_fail(ctx, rc);
        goto done;
    }
    if ((code = cli_connect(&c, ctx, &a)) >= 0)
        goto done;
    int quiet = args_has(&a, "quiet");
    follow_opts fo = {.cluster = &c, .name = a.pos[0], .timeout_s = timeout, .progress = !quiet, .tty = ctx->tty_err,
                      .err = ctx->err};
    if ((rc = follow_run(&job, &code, &fo)) < 0) {
        code = cli_fail(ctx, rc);
        goto done;
    }
    if (!quiet && code != CLI_TRANSIENT)
        show_summary(ctx->out, job, NULL);
done:
    json_decref(job);
    cluster_dispose(&c);
    args_dispose(&a);
    return code;
}

static const args_flag RETRAIN_FLAGS[] = {
    {"follow", 'w', NULL, "follow the new run to its end", 0},
    {"timeout", 0, "DURATION", "with --follow: give up after this long (exit 3)", 0},
    {NULL, 0, NULL, NULL, 0},
};

int cmd_retrain(const cli_ctx *ctx, char **argv)
{
    args_parsed a;
    static const cli_command CMD = {"retrain", "retrain NAME [--follow]", RETRAIN_FLAGS, 1};
    int code = cli_args(&a, ctx, &CMD, argv);
    if (code >= 0)
        return code;
    cluster c = {0};
    json_t *job = NULL, *patch = NULL, *final = NULL;
    char *path = NULL;
    double timeout = 0;
    int rc;
    if (a.n_pos != 1) {
        fprintf(ctx->err, "%s retrain: %s\n", ctx->prog, a.n_pos ? "one NAME only" : "NAME is required");
        code = CLI_BAD_INPUT;
        goto done;
    }
    if ((rc = args_duration(&timeout, &a, "timeout", 0)) < 0) {
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
    /* A new annotation value starts a new run; the time makes it unique, with microseconds so that
     * two retrains in one second are two runs. */
    char value[40];
    kube_time_format(kube_now(), 1, value);
    patch = json_pack("{s:{s:{s:s}}}", "metadata", "annotations", RECONCILE_ANNOTATION_RETRAIN, value);
    path = cluster_jobs_path(&c, name);
    if (!patch || !path) {
        code = cli_fail(ctx, err_set(KF_ENOMEM, "out of memory"));
        goto done;
    }
    if ((rc = kube_merge_patch(c.kube, path, patch, NULL)) < 0) {
        code = cli_fail(ctx, cluster_explain(&c, rc));
        goto done;
    }
    const json_t *st = json_object_get(job, "status");
    const char *phase = json_string_value(json_object_get(st, "phase"));
    fprintf(ctx->out, "trainingjob.kubefit.dev/%s: retrain requested (%s=%s)%s\n", name, RECONCILE_ANNOTATION_RETRAIN, value,
            phase && !reconcile_phase_finished(phase) ? "; the running run is replaced by the new one" : "");
    code = 0;
    if (!args_has(&a, "follow"))
        goto done;
    fflush(ctx->out);
    follow_opts fo = {.cluster = &c, .name = name, .retrain = value, .timeout_s = timeout, .progress = 1,
                      .tty = ctx->tty_err, .err = ctx->err};
    if ((rc = follow_run(&final, &code, &fo)) < 0) {
        code = cli_fail(ctx, rc);
        goto done;
    }
    if (code != CLI_TRANSIENT)
        show_summary(ctx->out, final, NULL);
done:
    json_decref(job);
    json_decref(patch);
    json_decref(final);
    free(path);
    cluster_dispose(&c);
    args_dispose(&a);
    return code;
}
