/* pool: thread team (see pool.h). A job is published by storing a new atomic job word (a serial
 * number and the job's part count: a worker learns whether it takes part without reading fields
 * the next job may already be writing) after the other fields are written; a job's fields stay
 * put until its last part is done. Workers and the caller wait for each other by spinning a short
 * while (SPIN_NS: the LSTM's time loop publishes two small jobs per step, and waking a sleeping
 * thread costs about as much as one of them) and then sleeping on a condition variable. The
 * sleep/wake handshakes are Dekker-style on seq_cst atomics - the publisher stores the job word
 * then reads `sleepers`; a worker going to sleep adds itself to `sleepers` then reads the job
 * word under the mutex - so one of the two always sees the other (no lost wake-up);
 * the same holds for `pending` and `caller_sleeping` at the end of a job. */
#include "pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "err.h"

/* How long an idle thread spins before it sleeps. */
#define SPIN_NS 50000

struct nn_pool {
    int threads;
    pthread_t *tids;
    pthread_mutex_t mu;
    pthread_cond_t start, done;
    atomic_ulong job;           /* serial << 16 | parts of the current job (0: none yet) */
    atomic_int quit;
    atomic_int sleepers;        /* workers asleep (or going to sleep) on `start` */
    atomic_int caller_sleeping; /* the caller asleep (or going to sleep) on `done` */
    /* the current job: written before `job` changes, read after it is seen */
    void (*fn)(void *, size_t, size_t);
    void *arg;
    size_t n;
    int parts;          /* participants of this job, caller included */
    atomic_int pending; /* workers still running their part */
    unsigned long serial;
};

static void run_part(nn_pool *p, int k)
{
    size_t lo = p->n * (size_t)k / (size_t)p->parts, hi = p->n * (size_t)(k + 1) / (size_t)p->parts;
    if (lo < hi)
        p->fn(p->arg, lo, hi);
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Spins until done(p, v) or SPIN_NS pass; returns done's last answer. */
static bool spin_until(nn_pool *p, bool (*done)(nn_pool *, unsigned long), unsigned long v)
{
    long long t0 = 0;
    for (unsigned i = 0;; i++) {
        if (done(p, v))
            return true;
        if ((i & 63) == 63) {
            long long t = now_ns();
            if (!t0)
                t0 = t;
            else if (t - t0 > SPIN_NS)
                return false;
        }
        cpu_relax();
    }
}

static bool new_job(nn_pool *p, unsigned long seen)
{
    return atomic_load(&p->quit) || atomic_load(&p->job) != seen;
}

static bool job_done(nn_pool *p, unsigned long unused)
{
    (void)unused;
    return atomic_load(&p->pending) == 0;
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
    for (;;) {
        if (!spin_until(p, new_job, seen)) {
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while (!new_job(p, seen))
                pthread_cond_wait(&p->start, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->quit))
            break;
        seen = atomic_load(&p->job);
        if (k >= (int)(seen & 0xffff))
            continue; /* not needed for this job */
        run_part(p, k);
        if (atomic_fetch_sub(&p->pending, 1) == 1 && atomic_load(&p->caller_sleeping)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
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
    p->threads = threads > 1 ? (threads < 4096 ? threads : 4096) : 1; /* parts fit the job word */
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
    atomic_store(&p->quit, 1);
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
    p->fn = fn, p->arg = arg, p->n = n, p->parts = parts;
    atomic_store(&p->pending, parts - 1);
    atomic_store(&p->job, ++p->serial << 16 | (unsigned long)parts); /* publishes the above */
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->start);
        pthread_mutex_unlock(&p->mu);
    }
    run_part(p, 0);
    if (!spin_until(p, job_done, 0)) {
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->caller_sleeping, 1);
        while (atomic_load(&p->pending) > 0)
            pthread_cond_wait(&p->done, &p->mu);
        atomic_store(&p->caller_sleeping, 0);
        pthread_mutex_unlock(&p->mu);
    }
}
