/* reconcile: the TrainingJob state machine as a pure function of cached objects -> actions.
 * It never modifies its inputs and performs no I/O; controller.c applies the result (status
 * first, conditional on the job's resourceVersion, then Pods, Events, TTL deletion).
 *
 * A job runs in "runs" (1, 2, ...): a new run starts on the first visit, when the run-relevant
 * spec changes (status.specHash) or the kubefit.dev/retrain annotation changes. Each run makes
 * attempts, one Pod each, named <job>-<run>-<attempt>; failed attempts are retried with
 * backoff up to spec.backoffLimit (exit code 2 = bad input: never; preemptions: not counted). */
#ifndef KUBEFIT_RECONCILE_H
#define KUBEFIT_RECONCILE_H

#include <jansson.h>

#define RECONCILE_LABEL_MANAGED "app.kubernetes.io/managed-by"
#define RECONCILE_LABEL_JOB "kubefit.dev/job"
#define RECONCILE_LABEL_RUN "kubefit.dev/run"
#define RECONCILE_LABEL_ATTEMPT "kubefit.dev/attempt"
#define RECONCILE_ANNOTATION_RETRAIN "kubefit.dev/retrain"
#define RECONCILE_CONTAINER "trainer"

typedef struct {
    const char *default_image;     /* when spec.image is empty */
    const char *progress_base_url; /* "http://host:port"; NULL: no --progress-url */
    double backoff_base_s;         /* delay before retry n is base * 2^(n-1); default 10 */
    double backoff_max_s;          /* default 600 */
    int runs_history_limit;        /* when spec.runsHistoryLimit is unset; default 10 */
    double pod_start_timeout_s;    /* a container that cannot start (image pull, config) fails the
                                    * run after this long; default 300 */
} reconcile_config;

typedef struct {
    const json_t *job;      /* the TrainingJob */
    const json_t *pods;     /* array: Pods labelled kubefit.dev/job=<name> in its namespace */
    double now;             /* seconds since the epoch */
    const reconcile_config *cfg;
    const char *pod_error;  /* the API server refused the Pod this reconcile would create (422) */
} reconcile_input;

typedef struct {
    json_t *status;       /* the complete new status; NULL when nothing changed */
    json_t *create_pod;   /* a Pod to create, or NULL */
    json_t *delete_pods;  /* array of Pod names to delete (never NULL after reconcile) */
    json_t *events;       /* array of {"type","reason","message"} (never NULL after reconcile) */
    int delete_job;       /* ttlSecondsAfterFinished has passed */
    double requeue_after; /* seconds; 0: no timed requeue needed */
} reconcile_result;

/* What reconcile reads of a Pod (metadata, phase, conditions, container states), as a new
 * object: what the controller's Pod cache keeps. NULL when out of memory. */
json_t *reconcile_trim_pod(json_t *pod);

/* metav1.Condition upsert into status st's conditions[]: lastTransitionTime (now) changes only
 * when status does. For serving.c, which writes its own conditions. */
void reconcile_condition_set(json_t *st, const char *type, int status, const char *reason, const char *message,
                             const char *now, json_int_t generation);

/* Appends an event {"type","reason","message"} (message from fmt) to a result's events[]. */
void reconcile_event_add(json_t *events, const char *type, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Whether a job (or Pod) phase is final: Succeeded or Failed. */
int reconcile_phase_finished(const char *phase);

/* Returns 0, or KF_ENOMEM / KF_EINVAL (a job without metadata). */
int reconcile(reconcile_result *out, const reconcile_input *in);
void reconcile_result_dispose(reconcile_result *r);

/* Builds the Pod for one attempt into *out (caller decrefs); KF_EINVAL naming the spec field
 * when the spec cannot run (podspec.c). */
int reconcile_build_pod(json_t **out, const json_t *job, int run, int attempt, const reconcile_config *cfg,
                        double deadline_left_s);
/* The hash of the spec fields that define a run (not suspend, TTL, backoff, deadline, history). */
char *reconcile_spec_hash(const json_t *spec);

#endif
