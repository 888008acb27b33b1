/* follow: one TrainingJob run watched to its end through the API server (list + watch with a
 * field selector on the name, re-listing when the watch ends or its version is gone), with its
 * phase changes and progress printed as they come. Used by `kubefit wait`, `submit --follow`
 * and `retrain --follow`.
 *
 * Which run: the one the controller starts for the given generation (submit: a spec change) or
 * retrain annotation value (retrain), else the current one. A newer run superseding it ends the
 * follow with a failure. */
#ifndef KUBEFIT_FOLLOW_H
#define KUBEFIT_FOLLOW_H

#include <stdio.h>

#include <jansson.h>

#include "cluster.h"

typedef struct {
    cluster *cluster;
    const char *name;
    long generation;     /* > 0: wait until status.observedGeneration reaches it */
    const char *retrain; /* non-NULL: wait until status.retrain is this value */
    double timeout_s;    /* 0: no limit */
    int progress;        /* print phase changes and progress to err */
    int tty;             /* progress as a redrawn bar */
    FILE *err;
} follow_opts;

/* Follows to the end of the run. *job: the job as last seen (caller decrefs; may be NULL on
 * error). *exit_code: 0 Succeeded, 2 failed for bad input (BadInput, InvalidSpec, PodRejected),
 * 1 failed otherwise (or superseded, or deleted), 3 timed out. Returns 0 when it could follow
 * (whatever the outcome), else a negative code (API errors). */
int follow_run(json_t **job, int *exit_code, const follow_opts *o);

/* The exit code a finished job's status means (as above); -1 while it is not finished. */
int follow_exit_code(const json_t *status);

#endif
