/* kubefit run -f job.yaml (localrun.c) and kubefit predict (the local trainer on a job's model). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "err.h"
#include "localrun.h"
#include "show.h"

static const args_flag RUN_FLAGS[] = {
    {"filename", 'f', "FILE", "the TrainingJob manifest (- for stdin)", 0},
    {"bucket-name", 0, "B", "replaces spec.storage.bucket (e.g. file:///abs/path)", 0},
    {"model-dir", 0, "D", "replaces spec.storage.modelDir", 0},
    {"epochs", 0, "N", "replaces spec.epochs", 0},
    {"device", 0, "auto|cpu|cuda", "replaces the device spec.resources.gpus asks for (gpus 1: cuda, 0: cpu)", 0},
    {"run", 0, "N", "run number (default: the next free one; an unfinished run resumes from its checkpoint)", 0},
    {"trainer", 0, "PATH", "kubefit-trainer to run (default: next to kubefit, then $PATH)", 0},
    {"work-dir", 0, "DIR", "where each attempt's log and result go (default: a new folder in $TMPDIR)", 0},
    {"retry-backoff", 0, "DURATION", "first retry delay after a failed attempt (default 10s, doubling)", 0},
    {"dry-run", 0, NULL, "print the trainer's command line and the resolved inputs and outputs; train nothing", 0},
    {"quiet", 'q', NULL, "no progress, only the summary", 0},
    {"output", 'o', "json|yaml", "print the finished TrainingJob (with its status) instead of the summary", 0},
    {NULL, 0, NULL, NULL, 0},
};

int cmd_run(const cli_ctx *ctx, char **argv)
{
    args_parsed a;
    static const cli_command CMD = {"run", "run -f trainingjob.yaml [NAME] [flags]", RUN_FLAGS, 0};
    int code = cli_args(&a, ctx, &CMD, argv);
    if (code >= 0)
        return code;
    const char *fmt = NULL;
    long epochs = 0, run = 0;
    double backoff = 0;
    localrun_result res = {0};
    int rc;
    if ((code = cli_output(&fmt, ctx, &a, "json|yaml")) >= 0)
        goto done;
    if (!args_get(&a, "filename")) {
        fprintf(ctx->err, "%s run: -f FILE is required (a TrainingJob manifest, e.g. examples/trainingjob-demo.yaml)\n",
                ctx->prog);
        code = CLI_BAD_INPUT;
        goto done;
    }
    if (a.n_pos > 1 || a.n_rest) {
        fprintf(ctx->err, "%s run: unexpected argument \"%s\" (one NAME at most)\n", ctx->prog,
                a.n_pos > 1 ? a.pos[1] : a.rest[0]);
        code = CLI_BAD_INPUT;
        goto done;
    }
    const char *device = args_get(&a, "device");
    if (device && strcmp(device, "auto") && strcmp(device, "cpu") && strcmp(device, "cuda")) {
        fprintf(ctx->err, "%s run: --device must be auto, cpu or cuda, got \"%s\"\n", ctx->prog, device);
        code = CLI_BAD_INPUT;
        goto done;
    }
    if ((rc = args_long(&epochs, &a, "epochs", 1, 1000, 0)) < 0 || (rc = args_long(&run, &a, "run", 1, 1000000000, 0)) < 0 ||
        (rc = args_duration(&backoff, &a, "retry-backoff", 0)) < 0) {
        code = cli_fail(ctx, rc);
        goto done;
    }
    localrun_opts o = {.manifest = args_get(&a, "filename"), .name = a.n_pos ? a.pos[0] : NULL,
                       .bucket = args_get(&a, "bucket-name"), .model_dir = args_get(&a, "model-dir"), .epochs = epochs,
                       .device = device, .trainer = args_get(&a, "trainer"), .work_dir = args_get(&a, "work-dir"),
                       .run = run, .retry_backoff_s = backoff, .dry_run = args_has(&a, "dry-run"),
                       .quiet = args_has(&a, "quiet"), .tty = ctx->tty_err, .out = ctx->out, .err = ctx->err};
    if ((rc = localrun(&res, &o)) < 0) {
        code = cli_fail(ctx, rc);
        goto done;
    }
    code = res.exit_code;
    if (o.dry_run)
        goto done;
    if (fmt)
        cli_print_object(ctx, res.job, fmt);
    else
        show_summary(ctx->out, res.job, res.metrics);
done:
    localrun_result_dispose(&res);
    args_dispose(&a);
    return code;
}

/* ---- predict ---- */

static const args_flag PREDICT_FLAGS[] = {
    {"filename", 'f', "FILE", "a local job: its manifest (as given to kubefit run) instead of the cluster's job", 0},
    {"run", 0, "N", "the run whose model to use (default: the latest that succeeded)", 0},
    {"bucket-name", 0, "B", "with -f: replaces spec.storage.bucket, as for kubefit run", 0},
    {"trainer", 0, "PATH", "kubefit-trainer to run (default: next to kubefit, then $PATH)", 0},
    {"device", 0, "auto|cpu|cuda", "where to predict (default cpu)", 0},
    {"output", 'o', "json", "one JSON object per text, with every label's probability", 0},
    {NULL, 0, NULL, NULL, 0},
};

static const char *str(const json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

/* The latest run of status.runs that succeeded, or 0. */
static long latest_success(const json_t *job)
{
    long best = 0;
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(json_object_get(job, "status"), "runs"), i, r) {
        const char *ph = str(r, "phase");
        if (ph && !strcmp(ph, "Succeeded") && json_integer_value(json_object_get(r, "run")) > best)
            best = (long)json_integer_value(json_object_get(r, "run"));
    }
    return best;
}

/* Newest RUN folder with a model.safetensors, for a local job (no status to ask). */
static long latest_local_run(const json_t *job, const char *bucket)
{
    const json_t *spec = json_object_get(job, "spec"), *stor = json_object_get(spec, "storage");
    const char *b = bucket ? bucket : str(stor, "bucket");
    if (!b || strncmp(b, "file://", 7) != 0)
        return 0;
    char path[4096];
    long best = 0;
    for (long r = 1; r < 100000; r++) {
        snprintf(path, sizeof path, "%s/%s/%s/%s/%ld/model.safetensors", b + 7,
                 str(stor, "modelDir") ? str(stor, "modelDir") : "models", str(spec, "language"),
                 str(json_object_get(job, "metadata"), "name"), r);
        if (access(path, R_OK) == 0)
            best = r;
        else if (r > best + 50)
            break;
    }
    return best;
}

/* Prints the trainer's JSON lines as "text -> labels". */
static void print_prediction(FILE *f, const char *line)
{
    json_t *p = json_loads(line, 0, NULL);
    if (!json_is_object(p)) {
        fprintf(f, "%s\n", line);
        json_decref(p);
        return;
    }
    const char *text = str(p, "text");
    fprintf(f, "%.70s%s\n  ->", text ? text : "", text && strlen(text) > 70 ? "..." : "");
    const json_t *labels = json_object_get(p, "labels"), *probs = json_object_get(p, "probabilities");
    size_t n = json_array_size(labels), i;
    const char **names = calloc(n ? n : 1, sizeof *names);
    for (i = 0; names && i < n; i++) /* most probable first */
        names[i] = json_string_value(json_array_get(labels, i));
    for (i = 1; names && i < n; i++)
        for (size_t j = i; j > 0 && names[j] && names[j - 1] &&
                           json_number_value(json_object_get(probs, names[j])) >
                               json_number_value(json_object_get(probs, names[j - 1]));
             j--) {
            const char *t = names[j];
            names[j] = names[j - 1], names[j - 1] = t;
        }
    for (i = 0; names && i < n; i++)
        fprintf(f, "%s %s (%.2f)", i ? "," : "", names[i] ? names[i] : "?",
                json_number_value(json_object_get(probs, names[i] ? names[i] : "")));
    free(names);
    if (!json_array_size(labels)) {
        /* nothing above the threshold: say what came closest */
        const char *k, *best = NULL;
        json_t *v;
        double bp = -1;
        json_object_foreach((json_t *)probs, k, v) {
            if (json_number_value(v) > bp)
                bp = json_number_value(v), best = k;
        }
        fprintf(f, " no label above the threshold%s%s%s", best ? " (closest: " : "", best ? best : "", best ? ")" : "");
        if (best)
            fprintf(f, " %.2f", bp);
    }
    fputc('\n', f);
    json_decref(p);
}

int cmd_predict(const cli_ctx *ctx, char **argv)
{
    args_parsed a;
    static const cli_command CMD = {"predict", "predict NAME [TEXT...] | predict -f job.yaml [TEXT...]  (no TEXT: one per "
                                            "line on stdin)", PREDICT_FLAGS, 1};
    int code = cli_args(&a, ctx, &CMD, argv);
    if (code >= 0)
        return code;
    cluster c = {0};
    json_t *job = NULL;
    char *trainer = NULL, *line = NULL;
    const char *fmt = NULL;
    long run = 0;
    int rc, fds[2] = {-1, -1}, in[2] = {-1, -1};
    size_t first_text = 0;
    if ((code = cli_output(&fmt, ctx, &a, "json")) >= 0)
        goto done;
    if ((rc = args_long(&run, &a, "run", 1, 1000000000, 0)) < 0) {
        code = cli_fail(ctx, rc);
        goto done;
    }
    if (args_get(&a, "filename")) {
        localrun_opts lo = {.manifest = args_get(&a, "filename"), .bucket = args_get(&a, "bucket-name")};
        if ((rc = localrun_load(&job, &lo)) < 0) {
            code = cli_fail(ctx, rc);
            goto done;
        }
        if (!run)
            run = latest_local_run(job, lo.bucket);
    } else {
        if (!a.n_pos) {
            fprintf(ctx->err, "%s predict: NAME is required (or -f job.yaml for a local job)\n", ctx->prog);
            code = CLI_BAD_INPUT;
            goto done;
        }
        first_text = 1;
        if ((code = cli_connect(&c, ctx, &a)) >= 0)
            goto done;
        if ((rc = cluster_get_job(&c, a.pos[0], &job)) < 0) {
            code = cli_fail(ctx, rc);
            goto done;
        }
        if (!run)
            run = latest_success(job);
    }
    const char *name = str(json_object_get(job, "metadata"), "name");
    if (!run) {
        fprintf(ctx->err, "%s predict: %s has no successful run yet (kubefit status %s)\n", ctx->prog, name, name);
        code = CLI_FAILED;
        goto done;
    }
    if ((rc = localrun_find_trainer(&trainer, args_get(&a, "trainer"))) < 0) {
        code = cli_fail(ctx, rc);
        goto done;
    }
    const json_t *spec = json_object_get(job, "spec"), *stor = json_object_get(spec, "storage");
    const char *bucket = args_get(&a, "bucket-name") ? args_get(&a, "bucket-name") : str(stor, "bucket");
    char run_s[24];
    snprintf(run_s, sizeof run_s, "%ld", run);
    const char *device = args_get(&a, "device") ? args_get(&a, "device") : "cpu";
    char *targv[] = {trainer, "predict", "--lang", (char *)str(spec, "language"), "--bucket-name", (char *)bucket,
                     "--model-dir", (char *)(str(stor, "modelDir") ? str(stor, "modelDir") : "models"), "--job",
                     (char *)name, "--run", run_s, "--device", (char *)device, NULL};
    if (pipe(fds) < 0 || (a.n_pos > first_text && pipe(in) < 0)) {
        code = cli_fail(ctx, err_set(KF_EIO, "pipe: %s", strerror(errno)));
        goto done;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        /* the trainer's own log lines are for its log files, not for this terminal */
        if (!getenv("KUBEFIT_LOG_LEVEL"))
            setenv("KUBEFIT_LOG_LEVEL", "warn", 1);
        dup2(fds[1], 1);
        if (in[0] >= 0)
            dup2(in[0], 0);
        close(fds[0]), close(fds[1]);
        if (in[0] >= 0)
            close(in[0]), close(in[1]);
        execv(trainer, targv);
        fprintf(stderr, "kubefit: cannot start %s: %s\n", trainer, strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    fds[1] = -1;
    if (in[1] >= 0) {
        close(in[0]);
        in[0] = -1;
        for (size_t i = first_text; i < a.n_pos; i++) {
            /* one text per line: newlines inside a text become spaces */
            for (const char *p = a.pos[i]; *p; p++)
                if (write(in[1], *p == '\n' ? " " : p, 1) < 0)
                    break;
            if (write(in[1], "\n", 1) < 0)
                break;
        }
        close(in[1]);
        in[1] = -1;
    }
    FILE *out = fdopen(fds[0], "r");
    size_t cap = 0;
    ssize_t len;
    while (out && (len = getline(&line, &cap, out)) >= 0) {
        while (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        if (fmt)
            fprintf(ctx->out, "%s\n", line);
        else
            print_prediction(ctx->out, line);
        fflush(ctx->out);
    }
    if (out)
        fclose(out);
    fds[0] = -1;
    int ws = 0;
    while (pid > 0 && waitpid(pid, &ws, 0) < 0 && errno == EINTR)
        ;
    code = pid < 0 ? CLI_FAILED : WIFEXITED(ws) ? WEXITSTATUS(ws) : CLI_FAILED;
    if (code != 0)
        fprintf(ctx->err, "%s predict: the trainer failed (exit %d) reading run %ld of %s from %s\n", ctx->prog, code,
                run, name, bucket);
done:
    for (int k = 0; k < 2; k++) {
        if (fds[k] >= 0)
            close(fds[k]);
        if (in[k] >= 0)
            close(in[k]);
    }
    free(line);
    free(trainer);
    json_decref(job);
    cluster_dispose(&c);
    args_dispose(&a);
    return code;
}
