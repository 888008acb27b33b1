/* controller: informers (TrainingJobs; Pods labelled app.kubernetes.io/managed-by=kubefit) feed
 * a work queue of job keys; N workers reconcile one key at a time and apply the result: status
 * through /status (merge patch conditional on resourceVersion; 409 -> re-read and retry), then
 * Pod deletes/creates, Events and TTL deletion. Trainers' progress reaches status.progress
 * through ingest.c (any replica writes it); reconcile keeps it. */
#ifndef KUBEFIT_CONTROLLER_H
#define KUBEFIT_CONTROLLER_H

#include "informer.h"
#include "kube.h"
#include "reconcile.h"

typedef struct controller controller;

typedef struct {
    kube_client *kube;            /* borrowed; outlives the controller */
    const char *watch_namespace;  /* NULL or "": all namespaces */
    int workers;                  /* default 2 */
    reconcile_config reconcile;   /* strings are copied */
    double resync_s;              /* re-reconcile unfinished jobs this often; default 60 */
    double queue_base_delay_s, queue_max_delay_s; /* error backoff per key; default 0.05, 60 */
    long watch_timeout_s;         /* default 300 */
    int serving_off;              /* 1: no spec.serving (no Deployment/Service informers or rights) */
} controller_options;

controller *controller_new(const controller_options *opt);
/* Starts informers and workers. Workers reconcile only while leader (see controller_set_leader). */
int controller_start(controller *c);
/* Stops workers and informers and waits for them. */
void controller_stop(controller *c);
void controller_free(controller *c);
void controller_set_leader(controller *c, int leader);
/* Every cache has completed its first list. */
int controller_ready(controller *c);
/* The caches (borrowed; valid until controller_free). */
informer *controller_jobs(controller *c);
informer *controller_pods(controller *c);
/* Also hands every TrainingJob watch event to fn (the console); call before controller_start. */
void controller_observe_jobs(controller *c, void (*fn)(void *ctx, const char *type, const json_t *job), void *ctx);
/* Prometheus text exposition of the controller's metrics. Caller frees. */
char *controller_metrics(controller *c);

/* JSON merge patch (RFC 7386) turning from into to. Caller decrefs. Exposed for tests. */
json_t *controller_merge_diff(const json_t *from, const json_t *to);

#endif
