/* ratelimit: token bucket. Tokens accrue at qps up to burst; a taker reserves the next token
 * under the lock (so waiters are served in order) and sleeps outside it. */
#include "ratelimit.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct rl_bucket {
    pthread_mutex_t mu;
    double qps, burst;
    double tokens; /* may go negative: tokens reserved by waiters */
    double last;   /* monotonic seconds of the last refill */
    double waited;
};

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

rl_bucket *rl_new(double qps, int burst)
{
    rl_bucket *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    pthread_mutex_init(&b->mu, NULL);
    b->qps = qps;
    b->burst = burst > 0 ? burst : 1;
    b->tokens = b->burst;
    b->last = mono_now();
    return b;
}

void rl_free(rl_bucket *b)
{
    if (!b)
        return;
    pthread_mutex_destroy(&b->mu);
    free(b);
}

double rl_take(rl_bucket *b)
{
    if (!b || b->qps <= 0)
        return 0;
    pthread_mutex_lock(&b->mu);
    double now = mono_now();
    b->tokens += (now - b->last) * b->qps;
    if (b->tokens > b->burst)
        b->tokens = b->burst;
    b->last = now;
    b->tokens -= 1;
    double wait = b->tokens < 0 ? -b->tokens / b->qps : 0;
    b->waited += wait;
    pthread_mutex_unlock(&b->mu);
    if (wait > 0) {
        struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
        nanosleep(&ts, NULL);
    }
    return wait;
}

double rl_waited(rl_bucket *b)
{
    if (!b)
        return 0;
    pthread_mutex_lock(&b->mu);
    double w = b->waited;
    pthread_mutex_unlock(&b->mu);
    return w;
}
