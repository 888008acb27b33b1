/* kubefit-trainer: command-line entry point (docs/contract.md). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "contract.h"
#include "err.h"
#include "log.h"
#include "report.h"
#include "storage/layout.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* The --result-file value, found even when parsing stopped early at a bad flag. */
static const char *result_file(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--result-file") && i + 1 < argc)
            path = argv[++i];
        else if (!strncmp(argv[i], "--result-file=", 14))
            path = argv[i] + 14;
    }
    return path;
}

/* --dry-run: the storage layout the arguments resolve to, as one JSON object on stdout. Returns
 * the exit code. */
static int dry_run(const run_opts *o)
{
    storage_layout l;
    storage_layout_options lo = {.bucket = o->bucket, .lang = o->lang, .model_dir = o->model_dir, .job = o->job,
                                 .run = o->run, .data_dir = o->data_dir, .lm = o->pretrained_uri,
                                 .vocab_in = o->vocab_uri, .train = o->train_uri, .valid = o->valid_uri,
                                 .corpus = o->corpus_uri};
    if (storage_layout_init(&l, &lo) < 0) {
        fprintf(stderr, "kubefit-trainer: %s\n", err_msg());
        return CONTRACT_EXIT_BAD_INPUT;
    }
    json_t *out = json_pack("{s:s,s:s,s:{s:s,s:s,s:s,s:s,s:s},s:{s:s,s:s,s:s}}", "device", o->device, "precision",
                            o->precision, "inputs", "pretrained", l.lm, "vocab", l.vocab_in, "train", l.train, "valid",
                            l.valid, "corpus", l.corpus, "outputs", "dir", l.output_dir, "model", l.model, "metrics",
                            l.metrics);
    int rc = out && json_dumpf(out, stdout, JSON_COMPACT) == 0 ? 0 : 1;
    putchar('\n');
    json_decref(out);
    storage_layout_dispose(&l);
    return rc;
}

int main(int argc, char **argv)
{
    run_opts o;
    switch (cli_parse(&o, argc, argv)) {
    case CLI_HELP: {
        char *usage = contract_usage();
        fputs(usage ? usage : "kubefit-trainer: out of memory\n", stdout);
        free(usage);
        return usage ? 0 : 1;
    }
    case CLI_BAD: {
        log_error("trainer", "bad command line", "{s:s}", "error", err_msg());
        fprintf(stderr, "kubefit-trainer: %s\n", err_msg());
        char *res = NULL;
        const char *rf = result_file(argc, argv);
        if (rf && report_failure_json(&res, "BadInput", err_msg()) == 0) {
            FILE *f = fopen(rf, "w");
            if (f) {
                fputs(res, f);
                fclose(f);
            }
        }
        free(res);
        return CONTRACT_EXIT_BAD_INPUT;
    }
    case CLI_DRY_RUN:
        return dry_run(&o);
    case CLI_RUN:
        break;
    }
    /* Kubernetes sends SIGTERM before it kills a preempted pod: stop at the next step and exit 3
     * (transient) so the controller retries; the retry resumes from the epoch checkpoint. */
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    o.stop = &stop_requested;
    int rc = run_main(&o);
    if (rc < 0) {
        log_error("trainer", "run failed", "{s:s,s:s}", "code", err_name(rc), "error", err_msg());
        return run_exit_code(rc);
    }
    return 0;
}
