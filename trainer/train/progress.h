/* progress: the JSON-lines progress of docs/contract.md, one object per logging step on stdout,
 * and the same object POSTed to --progress-url when given.
 *
 * The POST never runs on the training thread: progress_emit() prints the line and leaves it in a
 * one-report mailbox (a newer report replaces one not yet sent: only the latest matters), and a
 * sender thread posts it, with exponential backoff (0.5 s doubling to 30 s) after a failure and
 * the server's Retry-After after a 429; a 409 (the run is over, or not current) drops the report.
 * The request carries "Authorization: Bearer <token>" read from the file that
 * $KUBEFIT_PROGRESS_TOKEN_FILE names (re-read for every POST: the kubelet rotates it; the token
 * is never logged). Failures are logged once per kind and never fail the run. progress_free
 * aborts a POST in flight (within about a second) and, unless the last POST failed, makes one
 * last attempt (2 s at most) to deliver the final report. */
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

typedef struct {
    long emitted;   /* reports emitted */
    long sent;      /* accepted by the server (2xx) */
    long replaced;  /* superseded in the mailbox before they could be sent */
    long failed;    /* POSTs that failed (retried with backoff) */
    long refused;   /* dropped on a 409 */
    double max_emit_seconds; /* the longest progress_emit call */
} progress_stats;

/* url may be NULL (stdout only). out NULL = stdout. Caller frees with progress_free. */
int progress_new(progress **out, const char *url, FILE *stream);
/* Stops the sender (after one last attempt at the pending report when the server answered
 * the previous one). */
void progress_free(progress *p);
/* Formats the line (caller frees); used by progress_emit, exposed for tests. */
char *progress_format(const progress_event *e);
void progress_emit(progress *p, const progress_event *e);
progress_stats progress_get_stats(progress *p);

#endif
