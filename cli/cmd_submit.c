/* kubefit submit NAME --lang fr --epochs 10 --bucket-name B --model-dir D [...] [-- trainer args]:
 * the TrainingJob the old flags describe (jobspec.c), applied with server-side apply (field
 * manager "kubefit"), optionally followed to the end of its run. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "follow.h"
#include "http.h"
#include "jobspec.h"
#include "show.h"

static const args_flag SUBMIT_FLAGS[] = {
    {"dry-run", 0, NULL, "print the TrainingJob (YAML; -o json) instead of applying it; needs no cluster", 0},
    {"follow", 'w', NULL, "follow the run to its end (progress, then the summary; the exit code says how it ended)", 0},
    {"timeout", 0, "DURATION", "with --follow: give up after this long (exit 3)", 0},
    {"output", 'o', "yaml|json", "with --dry-run: the format; else print the applied object", 0},
    {NULL, 0, NULL, NULL, 0},
};

int cmd_submit(const cli_ctx *ctx, char **argv)
{
    args_parsed a;
    static args_flag flags[96];
    if (!flags[0].name) {
        size_t n = 0;
        for (const args_flag *f = jobspec_flags(); f->name && n + 1 < 96; f++)
            flags[n++] = *f;
        for (const args_flag *f = SUBMIT_FLAGS; f->name && n + 1 < 96; f++)
            flags[n++] = *f;
    }
    static const cli_command CMD = {
        "submit", "submit NAME --lang L --bucket-name B [--epochs N --model-dir D ...] [-- TRAINER ARGS]", flags, 1};
    int code = cli_args(&a, ctx, &CMD, argv);
    if (code >= 0)
        return code;
    cluster c = {0};
    json_t *job = NULL, *before = NULL, *after = NULL, *final = NULL;
    char *path = NULL, *apply = NULL;
    const char *fmt = NULL;
    double timeout = 0;
    int rc;
    if ((code = cli_output(&fmt, ctx, &a, "yaml|json")) >= 0)
        goto done;
    if (a.n_pos != 1) {
        fprintf(ctx->err, "%s submit: %s\n", ctx->prog,
                a.n_pos ? "one NAME only (trainer arguments go after --)" : "NAME is required (the TrainingJob's name)");
        code = CLI_BAD_INPUT;
        goto done;
    }
    if ((rc = args_duration(&timeout, &a, "timeout", 0)) < 0) {
        code = cli_fail(ctx, rc);
        goto done;
    }
    const char *name = a.pos[0], *ns = args_get(&a, "namespace");
    /* Checked before any cluster is asked: a bad flag is a bad flag with or without one. */
    if ((rc = jobspec_build(&job, &a, name, ns ? ns : "default")) < 0) {
        code = cli_fail(ctx, rc);
        goto done;
    }
    if (args_has(&a, "dry-run")) {
        if (!ns)
            json_object_del(json_object_get(job, "metadata"), "namespace");
        code = cli_print_object(ctx, job, fmt ? fmt : "yaml") < 0 ? cli_fail(ctx, KF_EIO) : 0;
        goto done;
    }
    if ((code = cli_connect(&c, ctx, &a)) >= 0)
        goto done;
    json_object_set_new(json_object_get(job, "metadata"), "namespace", json_string(c.namespace));
    rc = cluster_get_job(&c, name, &before);
    if (rc < 0 && rc != KF_ENOTFOUND) {
        code = cli_fail(ctx, rc);
        goto done;
    }
    if (rc == KF_ENOTFOUND && strstr(err_msg(), "not installed")) {
        code = cli_fail(ctx, rc);
        goto done;
    }
    path = cluster_jobs_path(&c, name);
    if (!path || asprintf(&apply, "%s?fieldManager=kubefit&force=true", path) < 0) {
        apply = NULL;
        code = cli_fail(ctx, err_set(KF_ENOMEM, "out of memory"));
        goto done;
    }
    if ((rc = kube_request(c.kube, "PATCH", apply, "application/apply-patch+yaml", job, &after)) < 0) {
        const char *why = strstr(err_msg(), "HTTP 422: ");
        if (why) { /* admission said no (the CRD's rules): its words are the message */
            char copy[2048];
            snprintf(copy, sizeof copy, "%s", why + 10);
            err_set(rc, "the API server refused the TrainingJob: %s", copy);
        }
        code = cli_fail(ctx, cluster_explain(&c, rc));
        goto done;
    }
    json_int_t gen0 = json_integer_value(json_object_get(json_object_get(before, "metadata"), "generation"));
    json_int_t gen1 = json_integer_value(json_object_get(json_object_get(after, "metadata"), "generation"));
    const char *what = !before ? "created" : gen1 != gen0 ? "configured" : "unchanged";
    if (fmt)
        cli_print_object(ctx, after, fmt);
    else
        fprintf(ctx->out, "trainingjob.kubefit.dev/%s %s%s\n", name, what,
                !strcmp(what, "unchanged") ? " (kubefit retrain starts a new run with the same spec)" : "");
    if (!args_has(&a, "follow")) {
        code = 0;
        goto done;
    }
    fflush(ctx->out);
    follow_opts fo = {.cluster = &c, .name = name, .generation = strcmp(what, "unchanged") ? (long)gen1 : 0,
                      .timeout_s = timeout, .progress = 1, .tty = ctx->tty_err, .err = ctx->err};
    if ((rc = follow_run(&final, &code, &fo)) < 0) {
        code = cli_fail(ctx, rc);
        goto done;
    }
    if (code != CLI_TRANSIENT)
        show_summary(ctx->out, final, NULL);
done:
    json_decref(job);
    json_decref(before);
    json_decref(after);
    json_decref(final);
    free(path);
    free(apply);
    cluster_dispose(&c);
    args_dispose(&a);
    return code;
}
