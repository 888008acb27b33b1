#include "leader.h"

#include "err.h"
#include "kubetime.h"
#include "log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct leader {
    leader_options opt;
    char *ns, *name, *identity, *path, *collection;
    volatile int stop, leading;
    double last_renew;
    pthread_t thread;
    int started;
};

leader *leader_new(const leader_options *opt)
{
    leader *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->opt = *opt;
    if (l->opt.lease_s <= 0)
        l->opt.lease_s = 15;
    if (l->opt.renew_deadline_s <= 0)
        l->opt.renew_deadline_s = 10;
    if (l->opt.retry_s <= 0)
        l->opt.retry_s = 2;
    char host[256] = "kubefit";
    gethostname(host, sizeof host - 1);
    l->ns = strdup(opt->namespace ? opt->namespace : "default");
    l->name = strdup(opt->name ? opt->name : "kubefit-controller");
    if (opt->identity)
        l->identity = strdup(opt->identity);
    else if (asprintf(&l->identity, "%s_%d", host, (int)getpid()) < 0)
        l->identity = NULL;
    if (!l->ns || !l->name || !l->identity ||
        asprintf(&l->collection, "/apis/coordination.k8s.io/v1/namespaces/%s/leases", l->ns) < 0 ||
        asprintf(&l->path, "%s/%s", l->collection, l->name) < 0) {
        free(l->ns), free(l->name), free(l->identity), free(l);
        return NULL;
    }
    return l;
}

static void set_leading(leader *l, int v)
{
    if (l->leading == v)
        return;
    l->leading = v;
    log_info("leader", v ? "became leader" : "lost leadership", "{s:s,s:s}", "lease", l->name, "identity", l->identity);
    if (l->opt.on_change)
        l->opt.on_change(l->opt.ctx, v);
}

int leader_try(leader *l, double now)
{
    json_t *lease = NULL, *out = NULL;
    char nows[32];
    kube_time_format(now, 1, nows);
    int rc = kube_get(l->opt.kube, l->path, &lease);
    if (rc == KF_ENOTFOUND) {
        json_t *obj = json_pack("{s:s,s:s,s:{s:s,s:s},s:{s:s,s:i,s:s,s:s,s:i}}", "apiVersion", "coordination.k8s.io/v1",
                                "kind", "Lease", "metadata", "name", l->name, "namespace", l->ns, "spec",
                                "holderIdentity", l->identity, "leaseDurationSeconds", (int)l->opt.lease_s,
                                "acquireTime", nows, "renewTime", nows, "leaseTransitions", 0);
        rc = obj ? kube_create(l->opt.kube, l->collection, obj, NULL) : KF_ENOMEM;
        json_decref(obj);
        if (rc == KF_EEXISTS)
            rc = err_set(KF_ECONFLICT, "lease %s: created by someone else first", l->name);
        goto done;
    }
    if (rc)
        goto done;
    json_t *spec = json_object_get(lease, "spec");
    if (!json_is_object(spec)) {
        spec = json_object();
        json_object_set_new(lease, "spec", spec);
    }
    const char *holder = json_string_value(json_object_get(spec, "holderIdentity"));
    double renew = 0;
    json_int_t dur = json_integer_value(json_object_get(spec, "leaseDurationSeconds"));
    kube_time_parse(json_string_value(json_object_get(spec, "renewTime")), &renew);
    int mine = holder && strcmp(holder, l->identity) == 0;
    int free_ = !holder || !*holder || renew + (double)dur < now;
    if (!mine && !free_) {
        rc = err_set(KF_ECONFLICT, "lease %s is held by %s", l->name, holder);
        goto done;
    }
    if (!mine) {
        json_object_set_new(spec, "acquireTime", json_string(nows));
        json_object_set_new(spec, "leaseTransitions",
                            json_integer(json_integer_value(json_object_get(spec, "leaseTransitions")) + 1));
    }
    json_object_set_new(spec, "holderIdentity", json_string(l->identity));
    json_object_set_new(spec, "leaseDurationSeconds", json_integer((json_int_t)l->opt.lease_s));
    json_object_set_new(spec, "renewTime", json_string(nows));
    rc = kube_replace(l->opt.kube, l->path, lease, &out); /* conditional: metadata.resourceVersion */
done:
    json_decref(lease);
    json_decref(out);
    return rc;
}

static void *run(void *u)
{
    leader *l = u;
    while (!l->stop) {
        double now = kube_now();
        int rc = leader_try(l, now);
        if (rc == KF_OK) {
            l->last_renew = now;
            set_leading(l, 1);
        } else {
            if (rc != KF_ECONFLICT)
                log_warn("leader", "lease update failed", "{s:s,s:s}", "lease", l->name, "error", err_msg());
            if (l->leading && (rc == KF_ECONFLICT || now - l->last_renew > l->opt.renew_deadline_s))
                set_leading(l, 0);
        }
        for (double t = 0; t < l->opt.retry_s && !l->stop; t += 0.05) {
            struct timespec ts = {0, 50 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

int leader_start(leader *l)
{
    if (pthread_create(&l->thread, NULL, run, l) != 0)
        return err_set(KF_EIO, "leader: cannot start thread");
    l->started = 1;
    return KF_OK;
}

void leader_stop(leader *l)
{
    if (!l || !l->started)
        return;
    l->stop = 1;
    pthread_join(l->thread, NULL);
    l->started = 0;
    if (!l->leading)
        return;
    /* Release: clear the holder so a standby takes over at once. */
    json_t *lease = NULL;
    if (kube_get(l->opt.kube, l->path, &lease) == KF_OK) {
        json_t *spec = json_object_get(lease, "spec");
        const char *holder = json_string_value(json_object_get(spec, "holderIdentity"));
        if (holder && strcmp(holder, l->identity) == 0) {
            json_object_set_new(spec, "holderIdentity", json_string(""));
            json_object_set_new(spec, "leaseDurationSeconds", json_integer(1));
            if (kube_replace(l->opt.kube, l->path, lease, NULL) == KF_OK)
                log_info("leader", "lease released", "{s:s}", "lease", l->name);
        }
    }
    json_decref(lease);
    set_leading(l, 0);
}

void leader_free(leader *l)
{
    if (!l)
        return;
    leader_stop(l);
    free(l->ns), free(l->name), free(l->identity), free(l->path), free(l->collection);
    free(l);
}

int leader_is_leader(leader *l) { return l->leading; }
