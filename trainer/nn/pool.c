/* pool: condition-variable thread team (see pool.h). A job is published under the mutex with a
 * new generation number; each worker runs its part and the last one to finish signals `done`. */
#include "pool.h"

#include <pthread.h>
#include <stdlib.h>

#include "err.h"

struct nn_pool {
    int threads;
    pthread_t *tids;
    pthread_mutex_t mu;
    pthread_cond_t start, done;
    unsigned long generation;
    int quit;
    /* the current job */
    void (*fn)(void *, size_t, size_t);
    void *arg;
    size_t n;
    int parts;   /* participants of this job, caller included */
    int pending; /* workers still running their part */
};

static void run_part(nn_pool *p, int k)
{
    size_t lo = p->n * (size_t)k / (size_t)p->parts, hi = p->n * (size_t)(k + 1) / (size_t)p->parts;
    if (lo < hi)
        p->fn(p->arg, lo, hi);
}

typedef struct worker_arg {
    nn_pool *p;
    int index; /* 1..threads-1 */
} worker_arg;

static void *worker(void *v)
{
    worker_arg *wa = v;
    nn_pool *p = wa->p;
    int k = wa->index;
    free(wa);
    unsigned long seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && p->generation == seen)
            pthread_cond_wait(&p->start, &p->mu);
        if (p->quit)
            break;
        seen = p->generation;
        if (k >= p->parts)
            continue; /* not needed for this job */
        pthread_mutex_unlock(&p->mu);
        run_part(p, k);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int nn_pool_new(nn_pool **out, int threads)
{
    int rc = 0;
    nn_pool *p = calloc(1, sizeof *p);
    *out = NULL;
    if (!p || !(p->tids = calloc((size_t)(threads > 1 ? threads : 1), sizeof *p->tids))) {
        free(p);
        return err_set(KF_ENOMEM, "nn: out of memory for the thread pool");
    }
    p->threads = threads > 1 ? threads : 1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->start, NULL);
    pthread_cond_init(&p->done, NULL);
    for (int k = 1; k < p->threads; k++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (wa)
            *wa = (worker_arg){p, k};
        if (!wa || pthread_create(&p->tids[k], NULL, worker, wa) != 0) {
            free(wa);
            p->threads = k; /* the ones started so far get joined */
            rc = err_set(KF_EIO, "nn: cannot start worker thread %d", k);
            goto done;
        }
    }
done:
    if (rc) {
        nn_pool_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

void nn_pool_free(nn_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    for (int k = 1; k < p->threads; k++)
        pthread_join(p->tids[k], NULL);
    pthread_cond_destroy(&p->start);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p->tids);
    free(p);
}

int nn_pool_threads(const nn_pool *p) { return p->threads; }

void nn_pool_run(nn_pool *p, size_t n, size_t min_chunk, void (*fn)(void *, size_t, size_t),
                 void *arg)
{
    if (n == 0)
        return;
    size_t want = min_chunk ? n / min_chunk : n;
    int parts = want < (size_t)p->threads ? (int)want : p->threads;
    if (parts <= 1) {
        fn(arg, 0, n);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn, p->arg = arg, p->n = n, p->parts = parts, p->pending = parts - 1;
    p->generation++;
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    run_part(p, 0);
    pthread_mutex_lock(&p->mu);
    while (p->pending > 0)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
