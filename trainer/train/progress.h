/* progress: the JSON-lines progress of docs/contract.md, one object per logging step on stdout,
 * and the same object POSTed to --progress-url when given (best effort: a failure is logged once
 * as a warning and never fails the run). */
#ifndef KUBEFIT_PROGRESS_H
#define KUBEFIT_PROGRESS_H

#include <stdio.h>

typedef struct progress progress;

typedef struct {
    const char *stage;
    int epoch, epochs;       /* epoch 1-based within the stage */
    long step, steps;        /* optimiser steps done / planned in the stage */
    double loss;             /* smoothed training loss */
    double percent;          /* of the whole run, 0..100 */
    double eta_seconds;      /* < 0: unknown */
} progress_event;

/* url may be NULL (stdout only). out NULL = stdout. Caller frees with progress_free. */
int progress_new(progress **out, const char *url, FILE *stream);
void progress_free(progress *p);
/* Formats the line (caller frees); used by progress_emit, exposed for tests. */
char *progress_format(const progress_event *e);
void progress_emit(progress *p, const progress_event *e);

#endif
