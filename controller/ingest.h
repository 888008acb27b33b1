/* ingest: trainers' progress reports, authenticated and written to status.progress.
 *
 * POST /progress/<namespace>/<job>/<run> with "Authorization: Bearer <token>", where the token is
 * the projected ServiceAccount token (audience ingest_options.audience) that the controller
 * mounts into the trainer Pod. A report is accepted when:
 *   - TokenReview (with that audience) authenticates the token;
 *   - the token is bound to a Pod (extra authentication.kubernetes.io/pod-name and pod-uid) in
 *     <namespace>, and that Pod, with the same uid, is the kubefit Pod of <job>, run <run>;
 *   - the job's rate allows it (a token bucket per job: rate_per_s, burst);
 *   - the body is a JSON object (the contract's progress keys are kept, others dropped);
 *   - run <run> is the job's current run and has not finished.
 * It is then merge-patched into status.progress through /status (conditional on the job's
 * resourceVersion; a conflict re-reads the job), so whichever replica receives it, it lands in
 * the object and outlives a controller restart. Every refusal is counted by reason.
 * Thread-safe. */
#ifndef KUBEFIT_INGEST_H
#define KUBEFIT_INGEST_H

#include "contract.h"
#include "informer.h"
#include "kube.h"
#include "review.h"

typedef struct ingest ingest;

typedef struct {
    kube_client *kube;     /* borrowed */
    review *review;        /* borrowed */
    informer *jobs, *pods; /* borrowed: the controller's caches */
    const char *audience;  /* NULL: CONTRACT_PROGRESS_AUDIENCE ("kubefit") */
    double rate_per_s;     /* per job; 0: 0.2 (each accepted report is one status write) */
    int burst;             /* 0: 5 */
} ingest_options;

typedef enum {
    INGEST_ACCEPTED,
    INGEST_UNAUTHENTICATED, /* no token, or TokenReview refused it: 401 */
    INGEST_FORBIDDEN,       /* a valid token of another Pod, job, run or namespace: 403 */
    INGEST_RATE_LIMITED,    /* 429 with Retry-After */
    INGEST_INVALID,         /* bad path or body: 400/404 */
    INGEST_STALE,           /* not the current run, or it has finished: 409 (do not resend) */
    INGEST_UNAVAILABLE,     /* the API server could not be asked or written: 503 */
    INGEST_NOUTCOMES
} ingest_outcome;

typedef struct {
    ingest_outcome outcome;
    int status;           /* the HTTP status to answer */
    double retry_after_s; /* INGEST_RATE_LIMITED, INGEST_UNAVAILABLE */
} ingest_result;

#define INGEST_DEFAULT_AUDIENCE CONTRACT_PROGRESS_AUDIENCE

ingest *ingest_new(const ingest_options *opt);
void ingest_free(ingest *g);

/* Handles one report (blocking: API calls). path is "/progress/<ns>/<job>/<run>"; token may be
 * NULL. err_msg() says why when out->outcome is not INGEST_ACCEPTED (never quoting the token). */
void ingest_report(ingest *g, ingest_result *out, const char *path, const char *token, const char *body, size_t len);

/* Prometheus text: kubefit_progress_reports_total{outcome="..."}. Caller frees. */
char *ingest_metrics(ingest *g);

/* The outcome's metric label ("accepted", "unauthenticated", ...). */
const char *ingest_outcome_name(ingest_outcome o);

/* Splits "/progress/<ns>/<job>/<run>" (exposed for tests). 0, or KF_EINVAL. Caller frees *ns, *job. */
int ingest_parse_path(const char *path, char **ns, char **job, int *run);

#endif
