/* work queue: de-dup, no concurrent processing of a key, delays, per-key backoff, shutdown. */
#include "kubetime.h"
#include "test.h"
#include "workqueue.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *shutdown_later(void *u)
{
    usleep(100000);
    wq_shutdown(u);
    return NULL;
}

int main(void)
{
    wq *q = wq_new(&(wq_options){.base_delay_s = 0.02, .max_delay_s = 0.1});
    char *k = NULL;

    /* De-dup and FIFO. */
    wq_add(q, "ns/a");
    wq_add(q, "ns/b");
    wq_add(q, "ns/a");
    CHECK_EQ_INT(2, wq_len(q));
    CHECK_EQ_INT(0, wq_get(q, &k));
    CHECK_EQ_STR("ns/a", k);
    /* Added while processing: not handed out again until done. */
    wq_add(q, "ns/a");
    CHECK_EQ_INT(1, wq_len(q));
    char *k2 = NULL;
    CHECK_EQ_INT(0, wq_get(q, &k2));
    CHECK_EQ_STR("ns/b", k2);
    CHECK_EQ_INT(0, wq_len(q));
    wq_done(q, k);
    CHECK_EQ_INT(1, wq_len(q)); /* the dirty key is back */
    wq_done(q, k2);
    free(k), free(k2);
    CHECK_EQ_INT(0, wq_get(q, &k));
    CHECK_EQ_STR("ns/a", k);
    wq_done(q, k);
    free(k);
    CHECK_EQ_INT(0, wq_len(q));

    /* Delayed add: not ready before its time; an earlier add wins. */
    double t0 = mono();
    wq_add_after(q, "ns/late", 0.3);
    wq_add_after(q, "ns/late", 0.15);
    CHECK_EQ_INT(0, wq_len(q));
    CHECK_EQ_INT(0, wq_get(q, &k));
    double waited = mono() - t0;
    CHECK_EQ_STR("ns/late", k);
    CHECK(waited >= 0.14 && waited < 0.28);
    wq_done(q, k);
    free(k);

    /* Many delayed keys come out in due order, each once; a key added at once (wq_add) leaves the
     * delayed set, and re-adding one later does not postpone it. */
    char name[32];
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof name, "ns/d%03d", i);
        wq_add_after(q, name, 0.05 + 0.0005 * (double)((i * 37) % 200));
    }
    wq_add_after(q, "ns/d000", 5);  /* later: keeps its earlier time */
    wq_add(q, "ns/d199");           /* now: ready at once */
    CHECK_EQ_INT(1, wq_len(q));
    int order_ok = 1, got = 0;
    double last_due = 0;
    for (; got < 200; got++) {
        CHECK_EQ_INT(0, wq_get(q, &k));
        int i = atoi(k + 4);
        double due = got == 0 ? 0 : 0.05 + 0.0005 * (double)((i * 37) % 200);
        if (got == 0 && strcmp(k, "ns/d199") != 0)
            order_ok = 0;
        if (due + 1e-9 < last_due)
            order_ok = 0;
        last_due = due;
        wq_done(q, k);
        free(k);
    }
    CHECK(order_ok);
    CHECK_EQ_INT(0, wq_len(q));

    /* Per-key exponential backoff: 0.02, 0.04, 0.08, capped at 0.1; forget resets. */
    double want[] = {0.02, 0.04, 0.08, 0.1, 0.1};
    for (int i = 0; i < 5; i++) {
        t0 = mono();
        wq_add_rate_limited(q, "ns/flaky");
        CHECK_EQ_INT(0, wq_get(q, &k));
        double d = mono() - t0;
        CHECK_NEAR(want[i], d, 0.015, 0.2);
        wq_done(q, k);
        free(k);
    }
    CHECK_EQ_INT(5, wq_failures(q, "ns/flaky"));
    wq_forget(q, "ns/flaky");
    CHECK_EQ_INT(0, wq_failures(q, "ns/flaky"));

    /* Shutdown wakes a blocked getter. */
    pthread_t th;
    pthread_create(&th, NULL, shutdown_later, q);
    CHECK_EQ_INT(-1, wq_get(q, &k));
    CHECK(k == NULL);
    pthread_join(th, NULL);
    wq_add(q, "ns/after");
    CHECK_EQ_INT(-1, wq_get(q, &k));
    wq_free(q);
    wq_free(NULL);
    return test_done();
}
