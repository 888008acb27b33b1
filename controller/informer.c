#include "informer.h"

#include "err.h"
#include "http.h"
#include "log.h"

#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct informer {
    informer_options opt;
    char *collection, *name, *query, *index_label;
    pthread_rwlock_t lock; /* cache, index: written by the watch thread only */
    pthread_mutex_t mu;    /* rv, synced, stats */
    json_t *cache;   /* key -> entry: [resourceVersion, index bucket or null, compact JSON text] */
    json_t *index;   /* "namespace/label value" -> {key -> true} */
    char *rv;        /* last seen resourceVersion */
    int synced;
    volatile int stop;
    pthread_t thread;
    int started;
    informer_stats stats;
};

char *informer_key(const json_t *obj)
{
    json_t *meta = json_object_get(obj, "metadata");
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    const char *name = json_string_value(json_object_get(meta, "name"));
    char *k = NULL;
    if (!name || asprintf(&k, "%s/%s", ns ? ns : "", name) < 0)
        return NULL;
    return k;
}

informer *informer_new(const informer_options *opt)
{
    informer *inf = calloc(1, sizeof *inf);
    if (!inf)
        return NULL;
    inf->opt = *opt;
    inf->collection = strdup(opt->collection);
    inf->name = strdup(opt->name ? opt->name : opt->collection);
    inf->index_label = opt->index_label ? strdup(opt->index_label) : NULL;
    inf->cache = json_object();
    inf->index = json_object();
    if (opt->label_selector) {
        char *esc = http_escape(opt->label_selector);
        if (esc && asprintf(&inf->query, "labelSelector=%s", esc) < 0)
            inf->query = NULL;
        free(esc);
    }
    if (!inf->collection || !inf->name || !inf->cache || !inf->index || (opt->label_selector && !inf->query) ||
        (opt->index_label && !inf->index_label)) {
        informer_free(inf);
        return NULL;
    }
    inf->opt.collection = inf->collection;
    inf->opt.name = inf->name;
    inf->opt.index_label = inf->index_label;
    if (inf->opt.page_size <= 0)
        inf->opt.page_size = 500;
    if (inf->opt.backoff_min_s <= 0)
        inf->opt.backoff_min_s = 0.2;
    if (inf->opt.backoff_max_s <= 0)
        inf->opt.backoff_max_s = 30;
    pthread_mutex_init(&inf->mu, NULL);
    pthread_rwlock_init(&inf->lock, NULL);
    return inf;
}

/* What of obj goes into the cache: a new reference, or NULL for out of memory. */
static json_t *trimmed(informer *inf, json_t *obj)
{
    json_t *meta = json_object_get(obj, "metadata");
    if (json_object_get(meta, "managedFields"))
        json_object_del(meta, "managedFields"); /* obj was just parsed for us: nobody shares it yet */
    return inf->opt.trim ? inf->opt.trim(obj) : json_incref(obj);
}

/* The index bucket name of obj ("namespace/value"), or NULL when not indexed. Caller frees. */
static char *index_key(informer *inf, const json_t *obj)
{
    if (!inf->index_label)
        return NULL;
    const json_t *meta = json_object_get(obj, "metadata");
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    const char *v = json_string_value(json_object_get(json_object_get(meta, "labels"), inf->index_label));
    char *k = NULL;
    if (!v || asprintf(&k, "%s/%s", ns ? ns : "", v) < 0)
        return NULL;
    return k;
}

/* The cache keeps each object as its compact JSON text (a parsed jansson object takes several
 * times the memory) with the two fields the cache itself needs; readers get a fresh parse. */
static const char *rv_of(const json_t *obj);

static json_t *entry_new(informer *inf, const json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT), *ik = index_key(inf, obj);
    json_t *e = text ? json_pack("[s?,s?,s]", rv_of(obj), ik, text) : NULL;
    free(text);
    free(ik);
    return e;
}

static const char *entry_rv(const json_t *e) { return json_string_value(json_array_get(e, 0)); }
static const char *entry_bucket(const json_t *e) { return json_string_value(json_array_get(e, 1)); }

/* A new object parsed from the entry, or NULL. */
static json_t *entry_object(const json_t *e)
{
    const json_t *t = json_array_get(e, 2);
    return json_loadb(json_string_value(t), json_string_length(t), 0, NULL);
}

/* Cache edits (write lock held): key -> entry (NULL: removed), keeping the index in step. */
static void cache_put(json_t *cache, json_t *index, const char *key, json_t *entry)
{
    json_t *old = json_object_get(cache, key);
    const char *ik = old ? entry_bucket(old) : NULL;
    if (ik) {
        json_t *bucket = json_object_get(index, ik);
        json_object_del(bucket, key);
        if (bucket && !json_object_size(bucket))
            json_object_del(index, ik);
    }
    if (!entry) {
        json_object_del(cache, key);
        return;
    }
    json_object_set(cache, key, entry);
    if ((ik = entry_bucket(entry))) {
        json_t *bucket = json_object_get(index, ik);
        if (!bucket)
            json_object_set_new(index, ik, bucket = json_object());
        if (bucket)
            json_object_set_new(bucket, key, json_true());
    }
}

static void emit(informer *inf, const char *type, const json_t *obj)
{
    if (inf->opt.on_event)
        inf->opt.on_event(inf->opt.ctx, type, obj);
}

static const char *rv_of(const json_t *obj)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
}

static json_t *list_trim(void *ctx, json_t *item) { return trimmed(ctx, item); }

/* Lists and replaces the cache; emits ADDED/MODIFIED for what is new or changed and DELETED for
 * what disappeared while we were not watching. */
static int relist(informer *inf)
{
    json_t *items = NULL, *fresh = json_object(), *fresh_index = json_object(), *old = NULL;
    json_t *pending = json_array(); /* [type, object] to emit once the cache is swapped */
    char *rv = NULL;
    int rc = kube_list_map(inf->opt.kube, inf->collection, inf->query, inf->opt.page_size, list_trim, inf, &items,
                           &rv);
    if (rc || !fresh || !fresh_index || !pending)
        goto done;
    size_t i, n = json_array_size(items);
    json_t *obj;
    pthread_rwlock_rdlock(&inf->lock);
    json_array_foreach(items, i, obj) {
        char *k = informer_key(obj);
        json_t *t = k ? json_incref(obj) : NULL, *e = t ? entry_new(inf, t) : NULL;
        if (e) {
            cache_put(fresh, fresh_index, k, e);
            const json_t *prev = json_object_get(inf->cache, k);
            const char *a = prev ? entry_rv(prev) : NULL, *b = entry_rv(e);
            if (!prev)
                json_array_append_new(pending, json_pack("[s,O]", "ADDED", t));
            else if (!a || !b || strcmp(a, b) != 0)
                json_array_append_new(pending, json_pack("[s,O]", "MODIFIED", t));
        }
        json_decref(e);
        json_decref(t);
        free(k);
    }
    pthread_rwlock_unlock(&inf->lock);
    json_decref(items);
    items = NULL;
    pthread_rwlock_wrlock(&inf->lock);
    old = inf->cache;
    inf->cache = fresh;
    json_incref(fresh);
    json_decref(inf->index);
    inf->index = fresh_index;
    fresh_index = NULL;
    pthread_rwlock_unlock(&inf->lock);
    pthread_mutex_lock(&inf->mu);
    free(inf->rv);
    inf->rv = rv;
    rv = NULL;
    inf->synced = 1;
    inf->stats.relists++;
    pthread_mutex_unlock(&inf->mu);
    /* Events outside the lock: handlers may call informer_get. */
    json_t *ev;
    json_array_foreach(pending, i, ev)
        emit(inf, json_string_value(json_array_get(ev, 0)), json_array_get(ev, 1));
    const char *k;
    json_t *e;
    json_object_foreach(old, k, e) {
        if (!json_object_get(fresh, k) && (obj = entry_object(e))) {
            emit(inf, "DELETED", obj);
            json_decref(obj);
        }
    }
    log_info("informer", "listed", "{s:s,s:i}", "resource", inf->name, "items", (int)n);
    malloc_trim(0); /* the list's full objects are gone: give their pages back */
done:
    json_decref(old);
    json_decref(pending);
    json_decref(fresh);
    json_decref(fresh_index);
    json_decref(items);
    free(rv);
    return rc;
}

static int on_watch_event(void *ctx, const char *type, json_t *obj);
int informer_apply(informer *inf, const char *type, json_t *obj) { return on_watch_event(inf, type, obj); }

static int on_watch_event(void *ctx, const char *type, json_t *obj)
{
    informer *inf = ctx;
    const char *rv = rv_of(obj);
    pthread_mutex_lock(&inf->mu);
    inf->stats.events++;
    if (rv) {
        char *r = strdup(rv);
        if (r) {
            free(inf->rv);
            inf->rv = r;
        }
    }
    pthread_mutex_unlock(&inf->mu);
    if (strcmp(type, "BOOKMARK") == 0)
        return inf->stop;
    char *k = informer_key(obj);
    json_t *t = trimmed(inf, obj), *e = NULL;
    int deleted = strcmp(type, "DELETED") == 0;
    if (k && t && (deleted || (e = entry_new(inf, t)))) {
        pthread_rwlock_wrlock(&inf->lock);
        cache_put(inf->cache, inf->index, k, e);
        pthread_rwlock_unlock(&inf->lock);
    }
    json_decref(e);
    free(k);
    if (t)
        emit(inf, type, t);
    json_decref(t);
    return inf->stop;
}

static void count_error(informer *inf)
{
    pthread_mutex_lock(&inf->mu);
    inf->stats.errors++;
    pthread_mutex_unlock(&inf->mu);
}

/* Sleeps up to secs, waking early on stop. */
static void nap(informer *inf, double secs)
{
    for (double t = 0; t < secs && !inf->stop; t += 0.05) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static void *run(void *u)
{
    informer *inf = u;
    double backoff = inf->opt.backoff_min_s;
    int need_list = 1;
    while (!inf->stop) {
        if (need_list) {
            int rc = relist(inf);
            if (rc && inf->stop)
                break;
            if (rc) {
                count_error(inf);
                log_warn("informer", "list failed", "{s:s,s:s,s:f}", "resource", inf->name, "error", err_msg(),
                         "retryIn", backoff);
                nap(inf, backoff);
                backoff = backoff * 2 > inf->opt.backoff_max_s ? inf->opt.backoff_max_s : backoff * 2;
                continue;
            }
            need_list = 0;
            backoff = inf->opt.backoff_min_s;
        }
        pthread_mutex_lock(&inf->mu);
        char *rv = inf->rv ? strdup(inf->rv) : NULL;
        pthread_mutex_unlock(&inf->mu);
        kube_watch_opts wo = {.collection = inf->collection, .query = inf->query, .resource_version = rv,
                              .timeout_seconds = inf->opt.watch_timeout_s, .on_event = on_watch_event,
                              .ctx = inf, .cancel = &inf->stop};
        double started = (double)time(NULL);
        int rc = kube_watch(inf->opt.kube, &wo);
        free(rv);
        if (inf->stop)
            break;
        pthread_mutex_lock(&inf->mu);
        inf->stats.watch_restarts++;
        pthread_mutex_unlock(&inf->mu);
        if (rc == KF_EGONE) {
            log_info("informer", "watch expired, relisting", "{s:s,s:s}", "resource", inf->name, "reason", err_msg());
            need_list = 1;
            continue;
        }
        if (rc) {
            count_error(inf);
            if ((double)time(NULL) - started > 10)
                backoff = inf->opt.backoff_min_s; /* it worked for a while: start small again */
            log_warn("informer", "watch failed, reconnecting", "{s:s,s:s,s:f}", "resource", inf->name, "error",
                     err_msg(), "retryIn", backoff);
            nap(inf, backoff);
            backoff = backoff * 2 > inf->opt.backoff_max_s ? inf->opt.backoff_max_s : backoff * 2;
            if (rc == KF_EINVAL)
                need_list = 1; /* a corrupt stream: trust nothing we had */
            continue;
        }
        backoff = inf->opt.backoff_min_s; /* the server closed a healthy watch: resume at once */
    }
    return NULL;
}

int informer_start(informer *inf)
{
    if (pthread_create(&inf->thread, NULL, run, inf) != 0)
        return err_set(KF_EIO, "informer %s: cannot start thread", inf->name);
    inf->started = 1;
    return KF_OK;
}

void informer_stop(informer *inf)
{
    if (!inf || !inf->started)
        return;
    inf->stop = 1;
    pthread_join(inf->thread, NULL);
    inf->started = 0;
}

void informer_free(informer *inf)
{
    if (!inf)
        return;
    informer_stop(inf);
    json_decref(inf->cache);
    json_decref(inf->index);
    free(inf->collection), free(inf->name), free(inf->query), free(inf->rv), free(inf->index_label);
    pthread_mutex_destroy(&inf->mu);
    pthread_rwlock_destroy(&inf->lock);
    free(inf);
}

int informer_synced(informer *inf)
{
    pthread_mutex_lock(&inf->mu);
    int s = inf->synced;
    pthread_mutex_unlock(&inf->mu);
    return s;
}

json_t *informer_get(informer *inf, const char *ns, const char *name)
{
    char *k = NULL;
    if (asprintf(&k, "%s/%s", ns ? ns : "", name) < 0)
        return NULL;
    pthread_rwlock_rdlock(&inf->lock);
    const json_t *e = json_object_get(inf->cache, k);
    json_t *o = e ? entry_object(e) : NULL;
    pthread_rwlock_unlock(&inf->lock);
    free(k);
    return o;
}

json_t *informer_list(informer *inf, const char *ns, const char *label_key, const char *label_value)
{
    json_t *out = json_array();
    if (!out)
        return NULL;
    const char *k;
    json_t *obj;
    pthread_rwlock_rdlock(&inf->lock);
    if (ns && label_key && label_value && inf->index_label && !strcmp(label_key, inf->index_label)) {
        char *ik = NULL;
        if (asprintf(&ik, "%s/%s", ns, label_value) >= 0) {
            json_t *yes;
            json_object_foreach(json_object_get(inf->index, ik), k, yes) {
                if ((obj = entry_object(json_object_get(inf->cache, k))))
                    json_array_append_new(out, obj);
            }
            free(ik);
        }
        pthread_rwlock_unlock(&inf->lock);
        return out;
    }
    size_t nslen = ns ? strlen(ns) : 0;
    json_t *e;
    json_object_foreach(inf->cache, k, e) {
        if (ns && (strncmp(k, ns, nslen) != 0 || k[nslen] != '/')) /* keys are "namespace/name" */
            continue;
        if (!(obj = entry_object(e)))
            continue;
        if (label_key) {
            const json_t *meta = json_object_get(obj, "metadata");
            const char *v = json_string_value(json_object_get(json_object_get(meta, "labels"), label_key));
            if (!v || !label_value || strcmp(v, label_value) != 0) {
                json_decref(obj);
                continue;
            }
        }
        json_array_append_new(out, obj);
    }
    pthread_rwlock_unlock(&inf->lock);
    return out;
}

informer_stats informer_get_stats(informer *inf)
{
    pthread_mutex_lock(&inf->mu);
    informer_stats s = inf->stats;
    pthread_mutex_unlock(&inf->mu);
    return s;
}
