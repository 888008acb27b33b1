/* batcher: dynamic batching and hot swap over N inference workers. See batcher.h.
 *
 * Locking: mu guards the queue, the counters, cur/pending, every model's refs, the jobs' taken
 * and answered counts and stop. A worker holds no lock while its forward runs. A model is freed
 * when its references are gone: the batcher's (while current or pending), one per batch running
 * on it, one per job it took and has not answered yet. */
#include "batcher.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "log.h"

#define DEFAULT_MAX_QUEUED 1024
#define MAX_WORKERS 64

typedef struct worker worker;

struct batcher {
    batcher_options o;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    batcher_job *head, *tail; /* waiting jobs; head may be partly taken */
    size_t queued_texts, in_flight;
    batcher_model *cur, *pending;
    worker *workers;
    int n_workers;
};

/* One inference thread and its batch (touched by that thread only). */
struct worker {
    batcher *b;
    int index, started;
    pthread_t thread;
    int cap;
    const char **texts;
    size_t *lens;
    batcher_job **owner;
    size_t *row;
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
    for (int i = 0; m->models && i < m->n; i++)
        infer_model_free(m->models[i]);
    free(m->models);
    free(m->name);
    free(m->version);
    free(m->uri);
    free(m);
}

/* Drops one reference (mu held); returns the model when it is to be freed (outside the lock). */
static batcher_model *unref(batcher_model *m)
{
    return m && --m->refs == 0 ? m : NULL;
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

/* Grows the worker's batch arrays to cap texts. */
static int batch_reserve(worker *w, int cap)
{
    if (cap <= w->cap)
        return 0;
    const char **t = realloc(w->texts, (size_t)cap * sizeof *t);
    if (t)
        w->texts = t;
    size_t *l = realloc(w->lens, (size_t)cap * sizeof *l);
    if (l)
        w->lens = l;
    batcher_job **o = realloc(w->owner, (size_t)cap * sizeof *o);
    if (o)
        w->owner = o;
    size_t *r = realloc(w->row, (size_t)cap * sizeof *r);
    if (r)
        w->row = r;
    if (!t || !l || !o || !r)
        return err_set(KF_ENOMEM, "out of memory");
    w->cap = cap;
    return 0;
}

static void unlink_head(batcher *b)
{
    batcher_job *j = b->head;
    b->head = j->next;
    if (!b->head)
        b->tail = NULL;
    j->next = NULL;
}

/* Calls done() for the jobs of list (outside the lock) and releases them. */
static void finish_jobs(batcher *b, batcher_job *list)
{
    for (batcher_job *j = list, *next; j; j = next) {
        next = j->next;
        j->next = NULL;
        batcher_model *m = j->model;
        j->done(j, m, j->rc, j->error); /* j belongs to the callee from here */
        pthread_mutex_lock(&b->mu);
        b->in_flight--;
        batcher_model *dead = unref(m);
        pthread_mutex_unlock(&b->mu);
        batcher_model_free(dead);
    }
}

/* Runs one batch of n texts on model m; writes each text's row into its job. */
static void run_batch(worker *w, batcher_model *m, int n, double oldest)
{
    batcher *b = w->b;
    infer_model *im = m->models[w->index % m->n];
    const size_t L = infer_n_labels(im);
    size_t tokens = 0;
    float *probs = malloc((size_t)n * L * sizeof *probs);
    double t0 = now_s();
    int rc = probs ? infer_predict(im, probs, w->texts, w->lens, (size_t)n, &tokens) : err_set(KF_ENOMEM, "out of memory");
    double t1 = now_s();
    if (rc < 0) {
        log_warn("batcher", "inference failed", "{s:i,s:s}", "texts", n, "error", err_msg());
        pthread_mutex_lock(&b->mu);
        for (int i = 0; i < n; i++)
            fail_job(w->owner[i], rc, err_msg());
        pthread_mutex_unlock(&b->mu);
    } else {
        for (int i = 0; i < n; i++) { /* rows of a job are its own: no lock needed */
            batcher_job *j = w->owner[i];
            memcpy(j->probs + w->row[i] * L, probs + (size_t)i * L, L * sizeof *probs);
            infer_decide(im, j->pred + w->row[i] * L, probs + (size_t)i * L);
        }
    }
    free(probs);
    if (b->o.on_batch)
        b->o.on_batch(b->o.ctx, n, t0 - oldest, t1 - t0, tokens);
}

/* With mu held: makes the pending model current when the queue is at a job boundary. Returns the
 * model that stopped being current (to free outside the lock), and sets *swapped. */
static batcher_model *maybe_swap(batcher *b, int *swapped)
{
    *swapped = 0;
    if (!b->pending || (b->head && b->head->taken > 0))
        return NULL;
    batcher_model *old = b->cur;
    b->cur = b->pending;
    b->pending = NULL;
    *swapped = 1;
    return unref(old);
}

static void *loop(void *u)
{
    worker *w = u;
    batcher *b = w->b;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (!b->stop && !b->pending && !(b->head && b->cur))
            pthread_cond_wait(&b->cv, &b->mu);
        if (b->stop)
            break;
        int swapped;
        batcher_model *dead = maybe_swap(b, &swapped);
        if (swapped) {
            batcher_model *m = b->cur;
            m->refs++;
            pthread_mutex_unlock(&b->mu);
            if (b->o.on_model)
                b->o.on_model(b->o.ctx, m);
            batcher_model_free(dead);
            pthread_mutex_lock(&b->mu);
            batcher_model_free(unref(m)); /* never the last reference: cur or a later swap holds one */
            continue;
        }
        if (!b->head || !b->cur)
            continue;
        const int max = b->o.max_batch > 0 ? b->o.max_batch : infer_max_batch(b->cur->models[0]);
        /* Dynamic batching: give the batch until the oldest text's deadline to fill. */
        double deadline = b->head->t_submit + b->o.max_delay_s;
        while (!b->stop && b->head && b->queued_texts < (size_t)max && b->o.max_delay_s > 0) {
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
        if (!b->head || (b->pending && b->head->taken == 0))
            continue; /* another worker took it, or a swap is due first */
        /* Take up to max texts in arrival order, all on the current model. */
        batcher_model *m = b->cur;
        const size_t L = infer_n_labels(m->models[0]);
        batcher_job *done_list = NULL, **done_tail = &done_list;
        int n = 0, can_take = batch_reserve(w, max) == 0;
        double oldest = b->head->t_submit, t = now_s();
        if (!can_take) { /* out of memory for the batch itself: fail the head job rather than spin */
            batcher_job *j = b->head;
            unlink_head(b);
            b->queued_texts -= j->n - j->taken;
            fail_job(j, KF_ENOMEM, "out of memory");
            j->answered = j->n;
            if (!j->model) {
                j->model = m;
                m->refs++;
            }
            *done_tail = j;
            done_tail = &j->next;
        }
        while (can_take && b->head && n < max) {
            batcher_job *j = b->head;
            if (j->taken == 0) {
                j->t_start = t;
                j->model = m;
                m->refs++;
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
                w->texts[n] = j->texts[j->taken];
                w->lens[n] = j->lens[j->taken];
                w->owner[n] = j;
                w->row[n] = j->taken;
                j->taken++;
                n++;
                b->queued_texts--;
            }
            if (j->taken == j->n)
                unlink_head(b);
        }
        if (n > 0)
            m->refs++; /* the batch's */
        pthread_mutex_unlock(&b->mu);
        if (n > 0)
            run_batch(w, m, n, oldest);
        /* Jobs whose last text this batch answered (a job's texts are contiguous in the batch). */
        double t_end = now_s();
        pthread_mutex_lock(&b->mu);
        for (int i = 0; i < n; i++) {
            batcher_job *j = w->owner[i];
            if (++j->answered == j->n) {
                j->t_end = t_end;
                *done_tail = j;
                done_tail = &j->next;
            }
        }
        *done_tail = NULL;
        batcher_model *gone = n > 0 ? unref(m) : NULL;
        pthread_mutex_unlock(&b->mu);
        batcher_model_free(gone);
        finish_jobs(b, done_list);
        pthread_mutex_lock(&b->mu);
    }
    pthread_mutex_unlock(&b->mu);
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
    b->n_workers = o->workers > 0 ? (o->workers < MAX_WORKERS ? o->workers : MAX_WORKERS) : 1;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (!(b->workers = calloc((size_t)b->n_workers, sizeof *b->workers))) {
        batcher_free(b);
        return err_set(KF_ENOMEM, "out of memory");
    }
    for (int i = 0; i < b->n_workers; i++) {
        worker *w = &b->workers[i];
        w->b = b;
        w->index = i;
        if (pthread_create(&w->thread, NULL, loop, w) != 0) {
            batcher_free(b);
            return err_set(KF_EIO, "cannot start an inference thread");
        }
        w->started = 1;
    }
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
    for (int i = 0; b->workers && i < b->n_workers; i++)
        if (b->workers[i].started)
            pthread_join(b->workers[i].thread, NULL);
    /* Whatever still waits fails (no batch runs any more). */
    batcher_job *j = b->head, *list = NULL, **tail = &list;
    b->head = b->tail = NULL;
    b->queued_texts = 0;
    while (j) {
        batcher_job *next = j->next;
        fail_job(j, KF_ERETRY, "the server is shutting down");
        *tail = j;
        tail = &j->next;
        j = next;
    }
    *tail = NULL;
    finish_jobs(b, list);
    batcher_model_free(unref(b->cur));
    batcher_model_free(b->pending);
    for (int i = 0; b->workers && i < b->n_workers; i++) {
        free(b->workers[i].texts);
        free(b->workers[i].lens);
        free(b->workers[i].owner);
        free(b->workers[i].row);
    }
    free(b->workers);
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
        j->model = NULL;
        j->next = NULL;
        if (b->tail)
            b->tail->next = j;
        else
            b->head = j;
        b->tail = j;
        b->queued_texts += j->n;
        b->in_flight++;
        pthread_cond_broadcast(&b->cv);
    }
    pthread_mutex_unlock(&b->mu);
    return rc;
}

void batcher_set_model(batcher *b, batcher_model *m)
{
    pthread_mutex_lock(&b->mu);
    batcher_model *old = b->pending;
    m->refs = 1; /* the batcher's */
    b->pending = m;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    batcher_model_free(old); /* never became current: nothing else refers to it */
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
