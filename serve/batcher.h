/* batcher: dynamic batching in front of the served model, and its hot swap.
 *
 * Requests (jobs of one or more texts) wait in one FIFO queue. Each of `workers` inference threads
 * (each with its own replica of the model: activations are per model) takes up to max_batch texts
 * at a time - waiting at most max_delay_s after the oldest waiting text arrived for the batch to
 * fill - runs them through its replica in one forward (the replica's backend thread pool spreads the
 * matrix products over its threads), writes each job's probabilities and decisions, and the thread
 * that answers a job's last text calls the job's done(). A job larger than max_batch spans several
 * batches, possibly on several workers.
 *
 * Hot swap: batcher_set_model() hands over a loaded model; it becomes current at the next job
 * boundary of the queue (every text of a job is answered by one model), batches already running
 * finish on the old one, which is freed when its last batch and job are done. Requests keep
 * flowing through a swap: none waits for a load, none fails.
 *
 * Dimension legend: N texts of a job, L labels of the model that answers it. */
#ifndef KUBEFIT_SERVE_BATCHER_H
#define KUBEFIT_SERVE_BATCHER_H

#include <stddef.h>

#include "infer.h"

/* A model being served: the batcher owns it after batcher_set_model (frees the strings too). */
typedef struct {
    infer_model **models; /* [n] replicas of one model (worker i uses models[i % n]) */
    int n;
    char *name;    /* the served name (routes /v2/models/NAME) */
    char *version; /* the run, e.g. "3" */
    char *uri;     /* where it was loaded from */
    int refs;      /* private: the batcher's, its batches' and its jobs' references */
} batcher_model;

void batcher_model_free(batcher_model *m);

typedef struct batcher_job batcher_job;
struct batcher_job {
    /* Set by the caller before batcher_submit (borrowed until done): */
    size_t n;
    const char *const *texts;
    const size_t *lens;
    /* Called once, on an inference thread, when every text is answered (rc 0) or the job failed
     * (rc < 0, error says why; probs/pred are then undefined). m is the model that answered (use
     * m->models[0] for its labels), valid during the call only (NULL when the job failed before
     * any model took it). The callee owns the job from here (frees it with batcher_job_free). */
    void (*done)(batcher_job *j, const batcher_model *m, int rc, const char *error);
    void *ctx;
    /* Results, allocated by the batcher when the job's first batch starts: */
    float *probs;         /* (N, L) */
    unsigned char *pred;  /* (N, L) 0/1, infer_decide */
    double t_submit, t_start, t_end; /* monotonic seconds: queued, first batch started, answered */
    /* Private. */
    size_t taken, answered;
    int rc;
    char *error;
    batcher_model *model;
    batcher_job *next;
};

/* A zeroed job; caller fills it and submits it, done() frees it with batcher_job_free. */
batcher_job *batcher_job_new(void);
void batcher_job_free(batcher_job *j);

typedef struct {
    int workers;          /* inference threads; <= 0: 1 */
    int max_batch;        /* texts per forward; <= 0: the model's infer_max_batch */
    double max_delay_s;   /* how long the oldest text may wait for a batch to fill; < 0: 0 */
    size_t max_queued;    /* texts waiting (not yet in a batch) before submit refuses; 0: 1024 */
    /* Called on an inference thread after each forward: texts in it, the queue wait of its oldest
     * text, the forward's seconds, its tokens. May be NULL. */
    void (*on_batch)(void *ctx, int size, double queue_s, double infer_s, size_t tokens);
    /* Called on an inference thread when a model becomes current (after a swap), before the first
     * batch it answers. May be NULL. */
    void (*on_model)(void *ctx, const batcher_model *m);
    void *ctx;
} batcher_options;

typedef struct batcher batcher;

/* Starts the inference threads (no model yet: submitted jobs wait for the first one). Caller frees
 * with batcher_free. */
int batcher_new(batcher **out, const batcher_options *o);
/* Stops the threads; jobs still waiting fail with "the server is shutting down". NULL is fine. */
void batcher_free(batcher *b);

/* Queues j. KF_ERETRY (with a message) when max_queued texts already wait or the batcher is
 * stopping: the caller answers 503 and still owns j. KF_EINVAL for a job without texts. */
int batcher_submit(batcher *b, batcher_job *j);

/* Hands over m (owned by the batcher from here). It becomes current at the next job boundary; a
 * model handed over before an earlier one took over replaces it. */
void batcher_set_model(batcher *b, batcher_model *m);

/* Texts waiting, and jobs submitted but not yet done. */
size_t batcher_queued(batcher *b);
size_t batcher_in_flight(batcher *b);

#endif
