/* localrun: `kubefit run -f trainingjob.yaml` - one TrainingJob on this machine, no cluster.
 *
 * The manifest goes the way it goes on a cluster: YAML -> JSON as kubectl sends it (manifest.c),
 * the CRD's defaults and structural checks (crd.c, from crds/trainingjob.yaml itself), then the
 * controller's own reconcile() (controller/reconcile.c, which calls podspec_check and
 * reconcile_build_pod). Each Pod reconcile asks for is run here as a local process: its command
 * and args as the controller rendered them (kubefit-trainer resolved to the local binary,
 * --result-file pointed at a local file), its env on top of ours, its activeDeadlineSeconds
 * enforced; the exit code and the result file become the Pod's terminated state, exactly what a
 * kubelet reports, and reconcile decides: Succeeded, a retry with backoff (exit 3, crashes, up to
 * spec.backoffLimit), or Failed at once (exit 2: BadInput; a spec the trainer cannot run:
 * InvalidSpec). Same layout, result and exit semantics as on a cluster.
 *
 * Differences, by design: there is no image (the local kubefit-trainer runs, or spec.command
 * from $PATH), a run's number is the next free one in the output folder (a cluster counts runs
 * in status), spec.schedule is ignored (a local run is one run, now) and spec.suspend: true is
 * refused, and --device can override what spec.resources.gpus asks for (a laptop has no GPU). */
#ifndef KUBEFIT_LOCALRUN_H
#define KUBEFIT_LOCALRUN_H

#include <stdio.h>

#include <jansson.h>

typedef struct {
    const char *manifest;   /* -f: a file, or "-" for stdin */
    const char *name;       /* which TrainingJob when the file holds several; NULL: the only one */
    /* overrides of the manifest, in submit's flag names (NULL / 0: keep) */
    const char *bucket;     /* --bucket-name -> spec.storage.bucket */
    const char *model_dir;  /* --model-dir -> spec.storage.modelDir */
    long epochs;            /* --epochs -> spec.epochs */
    const char *device;     /* --device auto|cpu|cuda replaces the one rendered from resources.gpus */
    const char *trainer;    /* the kubefit-trainer to run; NULL: localrun_find_trainer */
    const char *work_dir;   /* logs and results of each attempt; NULL: a new folder under $TMPDIR */
    long run;               /* run number; 0: the next free one in the output folder */
    double retry_backoff_s; /* first retry delay (doubles per failure, at most 600 s); 0: 10 s */
    int dry_run;            /* print the trainer's command line and resolved layout; run nothing */
    int quiet;              /* no progress lines */
    int tty;                /* progress as a redrawn bar */
    FILE *out, *err;        /* summary / progress and events */
} localrun_opts;

typedef struct {
    json_t *job;      /* the TrainingJob with its final status (as the controller would have written it) */
    json_t *metrics;  /* the run's metrics.json when it could be read, else NULL */
    int exit_code;    /* 0 Succeeded; 2 bad input (BadInput, InvalidSpec); 3 transient failures used up the
                       * retries; 1 any other failure; 130 interrupted */
} localrun_result;

/* The TrainingJob the manifest describes, defaulted and checked as the API server and the
 * controller would (crd_default, crd_validate, podspec_check). KF_EINVAL naming the file and the
 * field. Caller decrefs. */
int localrun_load(json_t **job, const localrun_opts *o);

/* Runs it to the end. Returns 0 when it ran (whatever the outcome: see out->exit_code), or a
 * negative code when it could not (bad manifest, no trainer, I/O). Dispose out. */
int localrun(localrun_result *out, const localrun_opts *o);
void localrun_result_dispose(localrun_result *r);

/* The kubefit-trainer to run: explicit, else $KUBEFIT_TRAINER, else next to this program (also
 * ../trainer/ in a build tree), else $PATH. *out: a new string. KF_ENOTFOUND saying where it looked. */
int localrun_find_trainer(char **out, const char *explicit_path);

#endif
