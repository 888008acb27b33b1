/* workqueue: keys to reconcile, in the shape of client-go's rate-limited queue.
 * A key is queued at most once; a key added while a worker holds it is queued again when the
 * worker calls wq_done (so one key is never processed by two workers at once). Delayed adds and
 * per-key exponential backoff (base * 2^failures, capped) for errors. Thread-safe. */
#ifndef KUBEFIT_WORKQUEUE_H
#define KUBEFIT_WORKQUEUE_H

#include <stddef.h>

typedef struct wq wq;

typedef struct {
    double base_delay_s; /* first retry delay; default 0.005 */
    double max_delay_s;  /* cap; default 300 */
} wq_options;

wq *wq_new(const wq_options *opt);
void wq_free(wq *q);
void wq_add(wq *q, const char *key);
/* Adds key after delay_s seconds (an earlier pending add wins). */
void wq_add_after(wq *q, const char *key, double delay_s);
/* Adds key after its backoff delay and counts a failure. */
void wq_add_rate_limited(wq *q, const char *key);
/* Clears key's failure count (after a successful reconcile). */
void wq_forget(wq *q, const char *key);
int wq_failures(wq *q, const char *key);
/* Blocks until a key is ready; *key is a new string (caller frees) to pass to wq_done.
 * Returns 0, or -1 once the queue is shut down. */
int wq_get(wq *q, char **key);
void wq_done(wq *q, const char *key);
/* Wakes all waiters; wq_get then returns -1. */
void wq_shutdown(wq *q);
/* Keys waiting now (ready ones, not delayed). */
size_t wq_len(wq *q);

#endif
