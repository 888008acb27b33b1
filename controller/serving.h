/* serving: spec.serving of a TrainingJob - which run is served (the promotion policy) and the
 * kubefit-serve Deployment + Service the job owns - decided as a pure function of cached objects,
 * like reconcile.h; serving_apply() then writes what was decided (docs/serving.md).
 *
 * Promotion: when the current run has Succeeded and was not looked at before
 * (status.serving.lastEvaluatedRun), its spec.serving.promote.metric is compared with the served
 * run's: it is served when it reaches minValue and (no run is served yet, or it beats the served
 * one by more than 0 and by at least minImprovement). Either way a Promoted condition and an
 * Event (Promoted / PromotionSkipped) say why. The served run, its model URI and metric value, the
 * in-cluster URL and the replicas live in status.serving; the Deployment is rendered from them, so
 * a write that fails is redone on the next reconcile (level-triggered).
 *
 * Objects: Deployment and Service "<job>-serve" in the job's namespace, labelled
 * app.kubernetes.io/managed-by=kubefit, kubefit.dev/job=<job>, kubefit.dev/component=serve, owned
 * by the job (controller ownerReference: the garbage collector deletes them with it). Their Pods
 * carry kubefit.dev/serve=<job> (not the trainer Pods' labels). A rollout is RollingUpdate with
 * maxUnavailable 0 behind the /v2/health/ready probe; kubefit-serve drains on SIGTERM. */
#ifndef KUBEFIT_SERVING_H
#define KUBEFIT_SERVING_H

#include <jansson.h>

#include "kube.h"

#define SERVING_LABEL_COMPONENT "kubefit.dev/component"
#define SERVING_COMPONENT "serve"
#define SERVING_LABEL_SERVE "kubefit.dev/serve"
#define SERVING_ANNOTATION_HASH "kubefit.dev/serving-hash"
#define SERVING_ANNOTATION_RUN "kubefit.dev/run"
#define SERVING_ANNOTATION_MODEL "kubefit.dev/model-uri"
#define SERVING_PORT 8080
/* The informers' label selector for Deployments and Services. */
#define SERVING_SELECTOR "app.kubernetes.io/managed-by=kubefit,kubefit.dev/component=serve"

typedef struct {
    const char *default_image; /* when spec.serving.image and spec.image are empty (the trainer image
                                * ships kubefit-serve) */
} serving_config;

typedef struct {
    const json_t *job;        /* the TrainingJob (metadata, spec) */
    const json_t *status;     /* its status as reconcile left it (new or cached); NULL: none yet */
    const json_t *deployment; /* the cached Deployment <job>-serve, or NULL */
    const json_t *service;    /* the cached Service <job>-serve, or NULL */
    double now;               /* seconds since the epoch */
    const serving_config *cfg;
} serving_input;

typedef struct {
    json_t *status;     /* the complete new status; NULL when serving changed nothing */
    json_t *events;     /* array of {"type","reason","message"} (never NULL after serving_reconcile) */
    json_t *deployment; /* create (no metadata.resourceVersion) or replace (with it), or NULL */
    json_t *service;    /* create (a whole Service) or, when service_patch, a merge patch; or NULL */
    int service_patch;
    int delete_objects; /* serving is off: delete the Deployment and the Service */
    char *namespace_, *name; /* where: the job's namespace and "<job>-serve" */
} serving_result;

/* Returns 0, KF_ENOMEM, or KF_EINVAL (a job without metadata). */
int serving_reconcile(serving_result *out, const serving_input *in);
void serving_result_dispose(serving_result *r);

/* What the informers cache of a Deployment or Service: metadata (name, namespace, uid,
 * resourceVersion, generation, labels, annotations, ownerReferences, deletionTimestamp),
 * spec.replicas and the Deployment's status counts. NULL when out of memory. */
json_t *serving_trim(json_t *obj);

/* Writes r: Deployment then Service (create, replace or patch), or deletes both. 0, or the API
 * server's error with context (a name taken by an object the job does not own is KF_EEXISTS). */
int serving_apply(kube_client *kube, const serving_result *r);

#endif
