/* pool: a fixed team of pthreads for the CPU backend's parallel-for. An idle worker spins for
 * at most 50 us (the next job of the LSTM's time loop usually comes sooner), then sleeps on a
 * condition variable, so a team between phases costs no CPU. */
#ifndef KUBEFIT_NN_POOL_H
#define KUBEFIT_NN_POOL_H

#include <stddef.h>

typedef struct nn_pool nn_pool;

/* threads >= 1 participants (the caller is one of them; at most 4096). Free with nn_pool_free.
 * Returns 0 or KF_ENOMEM / KF_EIO. */
int nn_pool_new(nn_pool **out, int threads);
void nn_pool_free(nn_pool *p);
int nn_pool_threads(const nn_pool *p);

/* Runs fn(arg, lo, hi) over [0,n) in at most threads contiguous parts of at least min_chunk
 * indices each (one part on the caller when n < 2*min_chunk). Returns when all parts are done.
 * Not reentrant: one caller at a time. */
void nn_pool_run(nn_pool *p, size_t n, size_t min_chunk,
                 void (*fn)(void *arg, size_t lo, size_t hi), void *arg);

#endif
