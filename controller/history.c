/* history: progress points per job. See history.h. */
#include "history.h"

#include "kubetime.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct history {
    size_t max_jobs, max_points;
    pthread_mutex_t mu;
    json_t *jobs; /* "ns/name" -> {"run":N,"touched":seq,"last":"updateTime","points":[...]} */
    json_int_t seq;
};

history *history_new(size_t max_jobs, size_t max_points)
{
    history *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->max_jobs = max_jobs ? max_jobs : 256;
    h->max_points = max_points >= 4 ? max_points : 600;
    pthread_mutex_init(&h->mu, NULL);
    if (!(h->jobs = json_object())) {
        history_free(h);
        return NULL;
    }
    return h;
}

void history_free(history *h)
{
    if (!h)
        return;
    json_decref(h->jobs);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

static char *key_of(const json_t *job)
{
    const json_t *meta = json_object_get(job, "metadata");
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    const char *name = json_string_value(json_object_get(meta, "name"));
    char *k = NULL;
    if (!ns || !name || asprintf(&k, "%s/%s", ns, name) < 0)
        return NULL;
    return k;
}

/* Forgets the least recently updated job (caller holds h->mu). */
static void evict_one(history *h)
{
    const char *k, *oldest = NULL;
    json_t *v;
    json_int_t best = 0;
    json_object_foreach(h->jobs, k, v) {
        json_int_t t = json_integer_value(json_object_get(v, "touched"));
        if (!oldest || t < best)
            oldest = k, best = t;
    }
    if (oldest)
        json_object_del(h->jobs, oldest);
}

static json_t *point_of(const json_t *progress, double t)
{
    static const char *const keys[] = {"run", "stage", "epoch", "epochs", "step", "steps", "loss", "percent",
                                       "etaSeconds"};
    json_t *p = json_pack("{s:f}", "t", t);
    for (size_t i = 0; p && i < sizeof keys / sizeof *keys; i++) {
        json_t *v = json_object_get(progress, keys[i]);
        if (json_is_number(v) || json_is_string(v))
            json_object_set(p, keys[i], v);
    }
    return p;
}

json_t *history_observe(history *h, const char *type, const json_t *job)
{
    char *key = key_of(job);
    if (!key)
        return NULL;
    json_t *point = NULL;
    pthread_mutex_lock(&h->mu);
    if (strcmp(type, "DELETED") == 0) {
        json_object_del(h->jobs, key);
        goto done;
    }
    const json_t *st = json_object_get(job, "status"), *prog = json_object_get(st, "progress");
    const char *when = json_string_value(json_object_get(prog, "updateTime"));
    json_int_t run = json_integer_value(json_object_get(st, "currentRun"));
    json_int_t prog_run = json_is_integer(json_object_get(prog, "run")) ? json_integer_value(json_object_get(prog, "run")) : run;
    json_t *e = json_object_get(h->jobs, key);
    if (e && json_integer_value(json_object_get(e, "run")) != run) {
        json_object_del(h->jobs, key); /* a new run: its curve starts afresh */
        e = NULL;
    }
    if (!json_is_object(prog) || !when || prog_run != run)
        goto done;
    const char *last = e ? json_string_value(json_object_get(e, "last")) : NULL;
    if (last && strcmp(last, when) == 0)
        goto done;
    if (!e) {
        if (json_object_size(h->jobs) >= h->max_jobs)
            evict_one(h);
        e = json_pack("{s:I,s:I,s:s,s:[]}", "run", run, "touched", (json_int_t)0, "last", "", "points");
        if (!e || json_object_set_new(h->jobs, key, e) != 0)
            goto done;
    }
    double t = 0;
    if (kube_time_parse(when, &t) != 0)
        t = kube_now();
    json_t *points = json_object_get(e, "points");
    if (json_array_size(points) >= h->max_points) {
        json_t *kept = json_array();
        for (size_t i = 0; kept && i < json_array_size(points); i += 2)
            json_array_append(kept, json_array_get(points, i));
        if (kept)
            json_object_set_new(e, "points", kept);
        points = json_object_get(e, "points");
    }
    point = point_of(prog, t);
    if (point) {
        json_array_append(points, point);
        json_object_set_new(e, "last", json_string(when));
        json_object_set_new(e, "touched", json_integer(++h->seq));
    }
done:
    pthread_mutex_unlock(&h->mu);
    free(key);
    return point;
}

json_t *history_points(history *h, const char *ns, const char *name)
{
    char *key = NULL;
    json_t *out = NULL;
    if (asprintf(&key, "%s/%s", ns, name) < 0)
        return json_array();
    pthread_mutex_lock(&h->mu);
    json_t *e = json_object_get(h->jobs, key);
    out = e ? json_deep_copy(json_object_get(e, "points")) : json_array();
    pthread_mutex_unlock(&h->mu);
    free(key);
    return out;
}
