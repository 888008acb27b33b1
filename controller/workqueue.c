#include "workqueue.h"

#include "kubetime.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A delayed key: due (monotonic seconds). The heap may hold stale entries (a key added again
 * with an earlier time, or moved to ready by wq_add): an entry counts only while its due equals
 * the key's time in the delayed map. */
typedef struct {
    double due;
    char *key;
} delayed_item;

/* Sets are jansson objects used as string hash sets/maps. */
struct wq {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    wq_options opt;
    char **ready;      /* FIFO ring of keys */
    size_t head, count, cap;
    json_t *queued;    /* keys in ready */
    json_t *processing;
    json_t *dirty;     /* added while processing */
    json_t *delayed;   /* key -> due time (real): the current one */
    delayed_item *heap; /* min-heap by due, over the delayed map's entries (and stale ones) */
    size_t nheap, capheap;
    json_t *failures;  /* key -> count */
    int shut;
};

wq *wq_new(const wq_options *opt)
{
    wq *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    if (opt)
        q->opt = *opt;
    if (q->opt.base_delay_s <= 0)
        q->opt.base_delay_s = 0.005;
    if (q->opt.max_delay_s <= 0)
        q->opt.max_delay_s = 300;
    pthread_mutex_init(&q->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cv, &ca);
    pthread_condattr_destroy(&ca);
    q->queued = json_object();
    q->processing = json_object();
    q->dirty = json_object();
    q->delayed = json_object();
    q->failures = json_object();
    if (!q->queued || !q->processing || !q->dirty || !q->delayed || !q->failures) {
        wq_free(q);
        return NULL;
    }
    return q;
}

void wq_free(wq *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->count; i++)
        free(q->ready[(q->head + i) % q->cap]);
    free(q->ready);
    for (size_t i = 0; i < q->nheap; i++)
        free(q->heap[i].key);
    free(q->heap);
    json_decref(q->queued), json_decref(q->processing), json_decref(q->dirty);
    json_decref(q->delayed), json_decref(q->failures);
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Locked. Puts key in the ready FIFO unless it is there or being processed. */
static void push_ready(wq *q, const char *key)
{
    if (json_object_get(q->queued, key))
        return;
    if (json_object_get(q->processing, key)) {
        json_object_set_new(q->dirty, key, json_true());
        return;
    }
    if (q->count == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 16;
        char **r = malloc(cap * sizeof *r);
        if (!r)
            return; /* out of memory: the periodic resync will bring the key back */
        for (size_t i = 0; i < q->count; i++)
            r[i] = q->ready[(q->head + i) % q->cap];
        free(q->ready);
        q->ready = r;
        q->head = 0;
        q->cap = cap;
    }
    char *k = strdup(key);
    if (!k)
        return;
    q->ready[(q->head + q->count) % q->cap] = k;
    q->count++;
    json_object_set_new(q->queued, key, json_true());
    pthread_cond_signal(&q->cv);
}

void wq_add(wq *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    if (!q->shut) {
        json_object_del(q->delayed, key);
        push_ready(q, key);
    }
    pthread_mutex_unlock(&q->mu);
}

/* Locked. Heap push (sift up). Returns 0 or -1 when out of memory. */
static int heap_push(wq *q, double due, const char *key)
{
    if (q->nheap == q->capheap) {
        size_t cap = q->capheap ? q->capheap * 2 : 64;
        delayed_item *h = realloc(q->heap, cap * sizeof *h);
        if (!h)
            return -1;
        q->heap = h;
        q->capheap = cap;
    }
    char *k = strdup(key);
    if (!k)
        return -1;
    size_t i = q->nheap++;
    while (i > 0 && q->heap[(i - 1) / 2].due > due) {
        q->heap[i] = q->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    q->heap[i] = (delayed_item){due, k};
    return 0;
}

/* Locked. Removes the earliest entry (sift down); the caller owns its key. */
static delayed_item heap_pop(wq *q)
{
    delayed_item top = q->heap[0], last = q->heap[--q->nheap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= q->nheap)
            break;
        if (c + 1 < q->nheap && q->heap[c + 1].due < q->heap[c].due)
            c++;
        if (q->heap[c].due >= last.due)
            break;
        q->heap[i] = q->heap[c];
        i = c;
    }
    if (q->nheap)
        q->heap[i] = last;
    return top;
}

void wq_add_after(wq *q, const char *key, double delay_s)
{
    if (delay_s <= 0) {
        wq_add(q, key);
        return;
    }
    pthread_mutex_lock(&q->mu);
    if (!q->shut) {
        double due = mono_now() + delay_s;
        json_t *cur = json_object_get(q->delayed, key);
        if ((!cur || json_real_value(cur) > due) && heap_push(q, due, key) == 0)
            json_object_set_new(q->delayed, key, json_real(due));
        pthread_cond_broadcast(&q->cv);
    }
    pthread_mutex_unlock(&q->mu);
}

void wq_add_rate_limited(wq *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    json_int_t n = json_integer_value(json_object_get(q->failures, key));
    json_object_set_new(q->failures, key, json_integer(n + 1));
    double d = q->opt.base_delay_s * pow(2.0, (double)(n > 60 ? 60 : n));
    pthread_mutex_unlock(&q->mu);
    wq_add_after(q, key, d > q->opt.max_delay_s ? q->opt.max_delay_s : d);
}

void wq_forget(wq *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    json_object_del(q->failures, key);
    pthread_mutex_unlock(&q->mu);
}

int wq_failures(wq *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    int n = (int)json_integer_value(json_object_get(q->failures, key));
    pthread_mutex_unlock(&q->mu);
    return n;
}

/* Locked. Moves due delayed keys to ready; returns the earliest remaining due time or 0.
 * O(log n) per key moved, not a scan of every delayed key. */
static double promote_delayed(wq *q)
{
    double now = mono_now();
    while (q->nheap) {
        const json_t *cur = json_object_get(q->delayed, q->heap[0].key);
        if (!cur || json_real_value(cur) != q->heap[0].due) {
            free(heap_pop(q).key); /* stale: added again earlier, or already made ready */
            continue;
        }
        if (q->heap[0].due > now)
            return q->heap[0].due;
        delayed_item it = heap_pop(q);
        json_object_del(q->delayed, it.key);
        push_ready(q, it.key);
        free(it.key);
    }
    return 0;
}

int wq_get(wq *q, char **key)
{
    *key = NULL;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        if (q->shut)
            break;
        double next = promote_delayed(q);
        if (q->count > 0) {
            char *k = q->ready[q->head];
            q->head = (q->head + 1) % q->cap;
            q->count--;
            json_object_del(q->queued, k);
            json_object_set_new(q->processing, k, json_true());
            *key = k;
            break;
        }
        if (next > 0) {
            struct timespec ts = {.tv_sec = (time_t)next, .tv_nsec = (long)((next - floor(next)) * 1e9)};
            pthread_cond_timedwait(&q->cv, &q->mu, &ts);
        } else {
            pthread_cond_wait(&q->cv, &q->mu);
        }
    }
    pthread_mutex_unlock(&q->mu);
    return *key ? 0 : -1;
}

void wq_done(wq *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    json_object_del(q->processing, key);
    if (json_object_get(q->dirty, key)) {
        json_object_del(q->dirty, key);
        if (!q->shut)
            push_ready(q, key);
    }
    pthread_mutex_unlock(&q->mu);
}

void wq_shutdown(wq *q)
{
    pthread_mutex_lock(&q->mu);
    q->shut = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

size_t wq_len(wq *q)
{
    pthread_mutex_lock(&q->mu);
    size_t n = q->count;
    pthread_mutex_unlock(&q->mu);
    return n;
}
