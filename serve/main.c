/* kubefit-serve: the inference server for a kubefit model. See docs/serving.md for the flags. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "log.h"
#include "server.h"

#ifndef KUBEFIT_VERSION
#define KUBEFIT_VERSION "dev"
#endif

static const char USAGE[] =
    "usage: kubefit-serve --model-uri URI [flags]\n"
    "  --model-uri URI            the run folder the trainer wrote (gs://B/D/LANG/JOB/RUN/, file://..., a\n"
    "                             path) or its model.safetensors (env KUBEFIT_MODEL_URI)\n"
    "  --model-name NAME          served name in the routes (default: config.json's job, else kubefit)\n"
    "  --listen ADDR:PORT         (default :8080: IPv6 and IPv4; 0.0.0.0:8080 IPv4 only; port 0 picks one)\n"
    "  --port-file PATH           write the listening port here (tests)\n"
    "  --device auto|cpu|cuda     (default auto: CUDA when built with it and a GPU answers)\n"
    "  --workers N                inference threads, each with its own copy of the model (default 1)\n"
    "  --threads N                CPU threads of each worker (default 0: the cgroup CPU quota, else all\n"
    "                             cores, divided among the workers)\n"
    "  --max-batch-size N         texts per forward (default 16)\n"
    "  --max-batch-delay-ms MS    the longest a text waits for its batch to fill (default 2)\n"
    "  --max-queue N              texts waiting before requests get 503 (default 1024)\n"
    "  --max-body-bytes N         request body limit (default 1048576)\n"
    "  --max-texts N              texts per request (default 256)\n"
    "  --http-workers N           request-parsing threads (default 4)\n"
    "  --lang CODE                tokenizer language (default: the model's)\n"
    "  --threshold X              multi-label decision threshold in (0,1) (default: the model's)\n"
    "  --repository-api           enable POST /v2/repository/index and .../models/NAME/load (hot swap)\n"
    "  --drain-delay S            after SIGTERM: not ready but still answering for S seconds (default 5)\n"
    "  --drain-timeout S          then wait up to S seconds for requests in flight (default 20)\n"
    "  --work-dir DIR             where gs:// models are downloaded (default $TMPDIR)\n"
    "  --version, --help\n"
    "Signals: SIGHUP reloads the model URI (hot swap); SIGTERM/SIGINT drain and exit 0.\n";

enum {
    OPT_MODEL_URI = 256, OPT_MODEL_NAME, OPT_LISTEN, OPT_PORT_FILE, OPT_DEVICE, OPT_THREADS, OPT_MAX_BATCH,
    OPT_MAX_DELAY, OPT_MAX_QUEUE, OPT_MAX_BODY, OPT_MAX_TEXTS, OPT_HTTP_WORKERS, OPT_LANG, OPT_THRESHOLD,
    OPT_REPOSITORY, OPT_DRAIN_DELAY, OPT_DRAIN_TIMEOUT, OPT_WORK_DIR, OPT_VERSION, OPT_HELP, OPT_WORKERS,
};

static int number(const char *flag, const char *v, double lo, double hi, double *out)
{
    char *end = NULL;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || !end || end == v || *end || !(d >= lo && d <= hi)) {
        fprintf(stderr, "kubefit-serve: %s wants a number in [%g, %g], got \"%s\"\n", flag, lo, hi, v);
        return -1;
    }
    *out = d;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"model-uri", required_argument, 0, OPT_MODEL_URI}, {"model-name", required_argument, 0, OPT_MODEL_NAME},
        {"listen", required_argument, 0, OPT_LISTEN}, {"port-file", required_argument, 0, OPT_PORT_FILE},
        {"device", required_argument, 0, OPT_DEVICE}, {"threads", required_argument, 0, OPT_THREADS},
        {"workers", required_argument, 0, OPT_WORKERS},
        {"max-batch-size", required_argument, 0, OPT_MAX_BATCH},
        {"max-batch-delay-ms", required_argument, 0, OPT_MAX_DELAY},
        {"max-queue", required_argument, 0, OPT_MAX_QUEUE}, {"max-body-bytes", required_argument, 0, OPT_MAX_BODY},
        {"max-texts", required_argument, 0, OPT_MAX_TEXTS}, {"http-workers", required_argument, 0, OPT_HTTP_WORKERS},
        {"lang", required_argument, 0, OPT_LANG}, {"threshold", required_argument, 0, OPT_THRESHOLD},
        {"repository-api", no_argument, 0, OPT_REPOSITORY}, {"drain-delay", required_argument, 0, OPT_DRAIN_DELAY},
        {"drain-timeout", required_argument, 0, OPT_DRAIN_TIMEOUT}, {"work-dir", required_argument, 0, OPT_WORK_DIR},
        {"version", no_argument, 0, OPT_VERSION}, {"help", no_argument, 0, OPT_HELP}, {0, 0, 0, 0}};
    serve_options o = {.listen = ":8080", .model_uri = getenv("KUBEFIT_MODEL_URI"), .max_delay_s = 0.002,
                       .drain_delay_s = 5, .drain_timeout_s = 20,
                       .infer = {.device = "auto", .max_batch = 16}};
    const char *port_file = NULL;
    double d;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_MODEL_URI: o.model_uri = optarg; break;
        case OPT_MODEL_NAME: o.model_name = optarg; break;
        case OPT_LISTEN: o.listen = optarg; break;
        case OPT_PORT_FILE: port_file = optarg; break;
        case OPT_DEVICE: o.infer.device = optarg; break;
        case OPT_LANG: o.infer.lang = optarg; break;
        case OPT_WORK_DIR: o.work_dir = optarg; break;
        case OPT_REPOSITORY: o.repository_api = 1; break;
        case OPT_THREADS:
            if (number("--threads", optarg, 0, 1024, &d) < 0)
                return 2;
            o.infer.threads = (int)d;
            break;
        case OPT_WORKERS:
            if (number("--workers", optarg, 1, 64, &d) < 0)
                return 2;
            o.workers = (int)d;
            break;
        case OPT_MAX_BATCH:
            if (number("--max-batch-size", optarg, 1, 4096, &d) < 0)
                return 2;
            o.infer.max_batch = (int)d;
            break;
        case OPT_MAX_DELAY:
            if (number("--max-batch-delay-ms", optarg, 0, 10000, &d) < 0)
                return 2;
            o.max_delay_s = d / 1000;
            break;
        case OPT_MAX_QUEUE:
            if (number("--max-queue", optarg, 1, 1e7, &d) < 0)
                return 2;
            o.max_queued = (size_t)d;
            break;
        case OPT_MAX_BODY:
            if (number("--max-body-bytes", optarg, 1024, 1 << 30, &d) < 0)
                return 2;
            o.max_body = (size_t)d;
            break;
        case OPT_MAX_TEXTS:
            if (number("--max-texts", optarg, 1, 1 << 20, &d) < 0)
                return 2;
            o.max_texts = (size_t)d;
            break;
        case OPT_HTTP_WORKERS:
            if (number("--http-workers", optarg, 1, 32, &d) < 0)
                return 2;
            o.http_workers = (int)d;
            break;
        case OPT_THRESHOLD:
            if (number("--threshold", optarg, 1e-9, 1 - 1e-9, &d) < 0)
                return 2;
            o.infer.threshold = d;
            break;
        case OPT_DRAIN_DELAY:
            if (number("--drain-delay", optarg, 0, 3600, &o.drain_delay_s) < 0)
                return 2;
            break;
        case OPT_DRAIN_TIMEOUT:
            if (number("--drain-timeout", optarg, 0, 3600, &o.drain_timeout_s) < 0)
                return 2;
            break;
        case OPT_VERSION:
            printf("kubefit-serve %s\n", KUBEFIT_VERSION);
            return 0;
        case OPT_HELP:
            fputs(USAGE, stdout);
            return 0;
        default:
            fputs(USAGE, stderr);
            return 2;
        }
    }
    if (optind < argc || !o.model_uri || !*o.model_uri) {
        fprintf(stderr, "kubefit-serve: %s\n%s", optind < argc ? "unexpected argument" : "--model-uri is required",
                USAGE);
        return 2;
    }
    /* Signals go to this thread only (sigtimedwait below): block them before any thread starts. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    serve *s = serve_new(&o);
    if (!s) {
        log_error("serve", "cannot start", "{s:s}", "error", err_msg());
        return 1;
    }
    if (port_file) {
        FILE *f = fopen(port_file, "w");
        if (f) {
            fprintf(f, "%d\n", serve_port(s));
            fclose(f);
        }
    }
    if (serve_start(s) < 0) {
        log_error("serve", "cannot start", "{s:s}", "error", err_msg());
        serve_free(s);
        return 1;
    }
    int rc = 0;
    for (;;) {
        struct timespec ts = {0, 200 * 1000 * 1000};
        int sig = sigtimedwait(&sigs, NULL, &ts);
        if (sig == SIGHUP) {
            if (serve_reload(s, NULL) < 0)
                log_warn("serve", "reload refused", "{s:s}", "error", err_msg());
        } else if (sig == SIGTERM || sig == SIGINT) {
            log_info("serve", "stopping", "{s:s}", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            serve_drain(s);
            break;
        } else if (serve_failed(s)) {
            /* The first model did not load: nothing to serve (the log says why). */
            rc = 1;
            break;
        }
    }
    serve_free(s);
    log_info("serve", "stopped", "{s:i}", "exitCode", rc);
    return rc;
}
