/* batcher: dynamic batching and hot swap. See batcher.h.
 *
 * Locking: mu guards the queue, the counters, the pending model and stop. The current model is
 * touched by the inference thread only. */
#include "batcher.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "log.h"

#define DEFAULT_MAX_QUEUED 1024

struct batcher {
    batcher_options o;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    batcher_job *head, *tail; /* waiting jobs; head may be partly taken */
    size_t queued_texts, in_flight;
    batcher_model *cur, *pending;
    /* One batch (inference thread only). */
    int cap;
    const char **texts;
    size_t *lens;
    batcher_job **owner;
    size_t *row;
    float *probs;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void batcher_model_free(batcher_model *m)
{
    if (!m)
        return;
    infer_model_free(m->model);
    free(m->name);
    free(m->version);
    free(m->uri);
    free(m);
}

batcher_job *batcher_job_new(void) { return calloc(1, sizeof(batcher_job)); }

void batcher_job_free(batcher_job *j)
{
    if (!j)
        return;
    free(j->probs);
    free(j->pred);
    free(j->error);
    free(j);
}

static void fail_job(batcher_job *j, int rc, const char *msg)
{
    if (j->rc == 0) {
        j->rc = rc;
        free(j->error);
        j->error = strdup(msg ? msg : "");
    }
}

/* Grows the batch arrays to cap texts. */
static int batch_reserve(batcher *b, int cap)
{
    if (cap <= b->cap)
        return 0;
    const char **t = realloc(b->texts, (size_t)cap * sizeof *t);
    if (t)
        b->texts = t;
    size_t *l = realloc(b->lens, (size_t)cap * sizeof *l);
    if (l)
        b->lens = l;
    batcher_job **o = realloc(b->owner, (size_t)cap * sizeof *o);
    if (o)
        b->owner = o;
    size_t *r = realloc(b->row, (size_t)cap * sizeof *r);
    if (r)
        b->row = r;
    if (!t || !l || !o || !r)
        return err_set(KF_ENOMEM, "out of memory");
    b->cap = cap;
    return 0;
}

/* Called with mu held: the job at the head is complete in taking (taken == n): unlink it. */
static void unlink_head(batcher *b)
{
    batcher_job *j = b->head;
    b->head = j->next;
    if (!b->head)
        b->tail = NULL;
    j->next = NULL;
}

/* Runs one batch of n texts through the model; writes each text's row into its job. */
static void run_batch(batcher *b, int n, double oldest)
{
    const infer_model *im = b->cur->model;
    const size_t L = infer_n_labels(im);
    size_t tokens = 0;
    float *probs = malloc((size_t)n * L * sizeof *probs);
    double t0 = now_s();
    int rc = probs ? infer_predict(b->cur->model, probs, b->texts, b->lens, (size_t)n, &tokens)
                   : err_set(KF_ENOMEM, "out of memory");
    double t1 = now_s();
    if (rc < 0) {
        log_warn("batcher", "inference failed", "{s:i,s:s}", "texts", n, "error", err_msg());
        for (int i = 0; i < n; i++)
            fail_job(b->owner[i], rc, err_msg());
    } else {
        for (int i = 0; i < n; i++) {
            batcher_job *j = b->owner[i];
            memcpy(j->probs + b->row[i] * L, probs + (size_t)i * L, L * sizeof *probs);
            infer_decide(im, j->pred + b->row[i] * L, probs + (size_t)i * L);
        }
    }
    free(probs);
    if (b->o.on_batch)
        b->o.on_batch(b->o.ctx, n, t0 - oldest, t1 - t0, tokens);
}

static void *loop(void *u)
{
    batcher *b = u;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (!b->stop && !b->pending && (!b->head || !b->cur))
            pthread_cond_wait(&b->cv, &b->mu);
        if (b->stop)
            break;
        if (b->pending && (!b->head || b->head->taken == 0)) {
            /* A job boundary: switch models. */
            batcher_model *old = b->cur;
            b->cur = b->pending;
            b->pending = NULL;
            pthread_mutex_unlock(&b->mu);
            if (b->o.on_model)
                b->o.on_model(b->o.ctx, b->cur);
            batcher_model_free(old);
            pthread_mutex_lock(&b->mu);
            continue;
        }
        if (!b->head || !b->cur)
            continue;
        const int max = b->o.max_batch > 0 ? b->o.max_batch : infer_max_batch(b->cur->model);
        /* Dynamic batching: give the batch until the oldest text's deadline to fill. */
        double deadline = b->head->t_submit + b->o.max_delay_s;
        while (!b->stop && b->queued_texts < (size_t)max && b->o.max_delay_s > 0) {
            double left = deadline - now_s();
            if (left <= 0)
                break;
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            long long ns = (long long)ts.tv_nsec + (long long)(left * 1e9);
            ts.tv_sec += (time_t)(ns / 1000000000LL);
            ts.tv_nsec = (long)(ns % 1000000000LL);
            if (pthread_cond_timedwait(&b->cv, &b->mu, &ts) == ETIMEDOUT)
                break;
        }
        if (b->stop)
            break;
        /* Take up to max texts, in arrival order; a swap waits for the next job boundary. */
        const size_t L = infer_n_labels(b->cur->model);
        batcher_job *done_list = NULL, **done_tail = &done_list;
        int n = 0;
        double oldest = b->head->t_submit, t = now_s();
        int can_take = batch_reserve(b, max) == 0;
        if (!can_take) {
            /* Out of memory for the batch itself: fail the head job rather than spin. */
            batcher_job *j = b->head;
            unlink_head(b);
            b->queued_texts -= j->n - j->taken;
            fail_job(j, KF_ENOMEM, "out of memory");
            j->answered = j->n;
            *done_tail = j;
            done_tail = &j->next;
        }
        while (can_take && b->head && n < max) {
            batcher_job *j = b->head;
            if (j->taken == 0) {
                j->t_start = t;
                j->probs = malloc(j->n * L * sizeof *j->probs);
                j->pred = malloc(j->n * L);
                if (!j->probs || !j->pred) {
                    unlink_head(b);
                    b->queued_texts -= j->n;
                    fail_job(j, KF_ENOMEM, "out of memory");
                    j->answered = j->n;
                    *done_tail = j;
                    done_tail = &j->next;
                    continue;
                }
            }
            while (j->taken < j->n && n < max) {
                b->texts[n] = j->texts[j->taken];
                b->lens[n] = j->lens[j->taken];
                b->owner[n] = j;
                b->row[n] = j->taken;
                j->taken++;
                n++;
                b->queued_texts--;
            }
            if (j->taken == j->n)
                unlink_head(b);
        }
        pthread_mutex_unlock(&b->mu);
        if (n > 0)
            run_batch(b, n, oldest);
        /* Jobs answered by this batch: each job's texts are contiguous in the batch. */
        double t_end = now_s();
        for (int i = 0; i < n; i++) {
            batcher_job *j = b->owner[i];
            if (++j->answered == j->n) {
                j->t_end = t_end;
                *done_tail = j;
                done_tail = &j->next;
            }
        }
        *done_tail = NULL;
        for (batcher_job *j = done_list, *next; j; j = next) {
            next = j->next;
            j->next = NULL;
            j->done(j, b->cur, j->rc, j->error); /* j belongs to the callee from here */
            pthread_mutex_lock(&b->mu);
            b->in_flight--;
            pthread_mutex_unlock(&b->mu);
        }
        pthread_mutex_lock(&b->mu);
    }
    /* Stopping: whatever still waits fails. */
    batcher_job *j = b->head;
    b->head = b->tail = NULL;
    b->queued_texts = 0;
    pthread_mutex_unlock(&b->mu);
    while (j) {
        batcher_job *next = j->next;
        j->next = NULL;
        fail_job(j, KF_ERETRY, "the server is shutting down");
        j->done(j, b->cur, j->rc, j->error);
        pthread_mutex_lock(&b->mu);
        b->in_flight--;
        pthread_mutex_unlock(&b->mu);
        j = next;
    }
    return NULL;
}

int batcher_new(batcher **out, const batcher_options *o)
{
    batcher *b = calloc(1, sizeof *b);
    *out = NULL;
    if (!b)
        return err_set(KF_ENOMEM, "out of memory");
    b->o = *o;
    if (b->o.max_delay_s < 0)
        b->o.max_delay_s = 0;
    if (!b->o.max_queued)
        b->o.max_queued = DEFAULT_MAX_QUEUED;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&b->thread, NULL, loop, b) != 0) {
        batcher_free(b);
        return err_set(KF_EIO, "cannot start the inference thread");
    }
    b->started = 1;
    *out = b;
    return 0;
}

void batcher_free(batcher *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->mu);
    b->stop = 1;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    if (b->started)
        pthread_join(b->thread, NULL);
    batcher_model_free(b->cur);
    batcher_model_free(b->pending);
    free(b->texts);
    free(b->lens);
    free(b->owner);
    free(b->row);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
    free(b);
}

int batcher_submit(batcher *b, batcher_job *j)
{
    if (!j || j->n == 0 || !j->done)
        return err_set(KF_EINVAL, "a job without texts");
    int rc = 0;
    pthread_mutex_lock(&b->mu);
    if (b->stop) {
        rc = err_set(KF_ERETRY, "the server is shutting down");
    } else if (b->queued_texts + j->n > b->o.max_queued && b->queued_texts > 0) {
        rc = err_set(KF_ERETRY, "%zu texts are already waiting (max %zu): try again", b->queued_texts, b->o.max_queued);
    } else {
        j->t_submit = now_s();
        j->taken = j->answered = 0;
        j->next = NULL;
        if (b->tail)
            b->tail->next = j;
        else
            b->head = j;
        b->tail = j;
        b->queued_texts += j->n;
        b->in_flight++;
        pthread_cond_signal(&b->cv);
    }
    pthread_mutex_unlock(&b->mu);
    return rc;
}

void batcher_set_model(batcher *b, batcher_model *m)
{
    pthread_mutex_lock(&b->mu);
    batcher_model *old = b->pending;
    b->pending = m;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
    batcher_model_free(old);
}

size_t batcher_queued(batcher *b)
{
    pthread_mutex_lock(&b->mu);
    size_t n = b->queued_texts;
    pthread_mutex_unlock(&b->mu);
    return n;
}

size_t batcher_in_flight(batcher *b)
{
    pthread_mutex_lock(&b->mu);
    size_t n = b->in_flight;
    pthread_mutex_unlock(&b->mu);
    return n;
}
