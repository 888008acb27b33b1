/* serving: the promotion decision and the kubefit-serve objects of a TrainingJob (pure). See
 * serving.h. */
#include "serving.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contract.h"
#include "err.h"
#include "kubetime.h"
#include "reconcile.h"

#define DEFAULT_IMAGE "ghcr.io/kubefit/kubefit-trainer:latest"
#define DEFAULT_METRIC "microF1"

typedef struct {
    const serving_input *in;
    serving_result *out;
    const json_t *meta, *spec, *sspec; /* job metadata, spec, spec.serving */
    const char *name, *ns, *uid;
    json_int_t generation;
    json_t *st; /* the new status (a copy) */
    char now_s[32];
} ctx;

static const char *str(const json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }
static json_int_t num(const json_t *o, const char *k, json_int_t dflt)
{
    const json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? json_integer_value(v) : dflt;
}
static double real(const json_t *o, const char *k, double dflt)
{
    const json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : dflt;
}

#define event(c, ...) reconcile_event_add((c)->out->events, __VA_ARGS__)

static void condition(ctx *c, const char *type, int status, const char *reason, const char *message)
{
    reconcile_condition_set(c->st, type, status, reason, message, c->now_s, c->generation);
}

static void drop_condition(ctx *c, const char *type)
{
    json_t *conds = json_object_get(c->st, "conditions"), *x;
    size_t i;
    json_array_foreach(conds, i, x) {
        const char *t = str(x, "type");
        if (t && strcmp(t, type) == 0) {
            json_array_remove(conds, i);
            return;
        }
    }
}

/* A quantity given as a string or an integer, as text (caller frees); NULL when absent. */
static char *quantity(const json_t *v, const char *dflt)
{
    char *s = NULL;
    if (json_is_string(v))
        return strdup(json_string_value(v));
    if (json_is_integer(v) && asprintf(&s, "%" JSON_INTEGER_FORMAT, json_integer_value(v)) >= 0)
        return s;
    return dflt ? strdup(dflt) : NULL;
}

static char *hash_of(const json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS), *out = NULL;
    if (!text)
        return NULL;
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    free(text);
    if (asprintf(&out, "%016" PRIx64, h) < 0)
        return NULL;
    return out;
}

/* ---- the promotion decision ---- */

/* The served run's value of metric: status.serving.value when it was recorded for this metric,
 * else the served run's entry in status.runs[] (which keeps accuracy and microF1). NAN: unknown. */
static double served_value(ctx *c, const json_t *sv, const char *metric)
{
    const char *m = str(sv, "metric");
    if (m && strcmp(m, metric) == 0 && json_is_number(json_object_get(sv, "value")))
        return real(sv, "value", NAN);
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(c->st, "runs"), i, r) {
        if (num(r, "run", -1) == num(sv, "run", -2) && json_is_number(json_object_get(r, metric)))
            return real(r, metric, NAN);
    }
    return NAN;
}

/* The current run has Succeeded: serve it or say why not. */
static void decide(ctx *c, json_t *sv, json_int_t run)
{
    const json_t *promote = json_object_get(c->sspec, "promote");
    const char *metric = str(promote, "metric") ? str(promote, "metric") : DEFAULT_METRIC;
    double min_improvement = real(promote, "minImprovement", 0), min_value = real(promote, "minValue", 0);
    const json_t *v = json_object_get(json_object_get(c->st, "metrics"), metric);
    const char *model = str(c->st, "modelURI");
    json_int_t served = num(sv, "run", 0);
    char keeps[96] = "nothing is served yet", *why = NULL;
    if (served > 0)
        snprintf(keeps, sizeof keeps, "run %" JSON_INTEGER_FORMAT " keeps serving", served);
    json_object_set_new(sv, "lastEvaluatedRun", json_integer(run));
    int ok = 0, rc = 0;
    if (!json_is_number(v)) {
        rc = asprintf(&why, "run %" JSON_INTEGER_FORMAT " is not served: it reports no %s (%s runs report %s); %s", run,
                      metric, json_object_get(json_object_get(c->st, "metrics"), "accuracy") ? "single-label" : "multi-label",
                      json_object_get(json_object_get(c->st, "metrics"), "accuracy") ? "accuracy, microF1, macroF1"
                                                                                     : "subsetAccuracy, labelAccuracy, microF1, macroF1",
                      keeps);
    } else if (!model || !*model) {
        rc = asprintf(&why, "run %" JSON_INTEGER_FORMAT " is not served: its result has no modelURI; %s", run, keeps);
    } else if (json_number_value(v) < min_value) {
        rc = asprintf(&why, "run %" JSON_INTEGER_FORMAT " is not served: %s %.4f is below minValue %.4f; %s", run, metric,
                      json_number_value(v), min_value, keeps);
    } else if (served > 0) {
        double old = served_value(c, sv, metric), gain = json_number_value(v) - old;
        if (isnan(old)) {
            ok = 1;
            rc = asprintf(&why, "run %" JSON_INTEGER_FORMAT " is served: %s %.4f (run %" JSON_INTEGER_FORMAT
                          " has no %s to compare)", run, metric, json_number_value(v), served, metric);
        } else if (gain > 0 && gain >= min_improvement) {
            ok = 1;
            rc = asprintf(&why, "run %" JSON_INTEGER_FORMAT " is served: %s %.4f beats run %" JSON_INTEGER_FORMAT
                          "'s %.4f by %.4f (minImprovement %.4f)", run, metric, json_number_value(v), served, old, gain,
                          min_improvement);
        } else {
            rc = asprintf(&why, "run %" JSON_INTEGER_FORMAT " is not served: %s %.4f does not beat run %" JSON_INTEGER_FORMAT
                          "'s %.4f by more than 0 and at least minImprovement %.4f; %s", run, metric,
                          json_number_value(v), served, old, min_improvement, keeps);
        }
    } else {
        ok = 1;
        rc = asprintf(&why, "run %" JSON_INTEGER_FORMAT " is served: %s %.4f (the first run to reach minValue %.4f)", run,
                      metric, json_number_value(v), min_value);
    }
    if (rc < 0)
        why = NULL;
    if (ok) {
        json_object_set_new(sv, "run", json_integer(run));
        json_object_set_new(sv, "modelURI", json_string(model));
        json_object_set_new(sv, "metric", json_string(metric));
        json_object_set(sv, "value", (json_t *)v);
        json_object_set_new(sv, "promotionTime", json_string(c->now_s));
        condition(c, "Promoted", 1, "Promoted", why);
        event(c, "Normal", "Promoted", "%s", why ? why : "");
    } else {
        condition(c, "Promoted", 0, "PromotionSkipped", why);
        event(c, "Normal", "PromotionSkipped", "%s", why ? why : "");
    }
    free(why);
}

/* ---- the objects ---- */

static json_t *owner_refs(ctx *c)
{
    return json_pack("[{s:s,s:s,s:s,s:s,s:b,s:b}]", "apiVersion", "kubefit.dev/v1alpha1", "kind", "TrainingJob",
                     "name", c->name, "uid", c->uid, "controller", 1, "blockOwnerDeletion", 1);
}

static json_t *object_labels(ctx *c)
{
    return json_pack("{s:s,s:s,s:s,s:s}", RECONCILE_LABEL_MANAGED, "kubefit", RECONCILE_LABEL_JOB, c->name,
                     SERVING_LABEL_COMPONENT, SERVING_COMPONENT, "app.kubernetes.io/name", "kubefit-serve");
}

/* The Deployment for the served run (without the hash annotation). */
static json_t *build_deployment(ctx *c, const json_t *sv)
{
    const json_t *res = json_object_get(c->sspec, "resources");
    const char *image = str(c->sspec, "image");
    if (!image || !*image)
        image = str(c->spec, "image");
    if (!image || !*image)
        image = c->in->cfg && c->in->cfg->default_image ? c->in->cfg->default_image : DEFAULT_IMAGE;
    json_int_t gpus = num(res, "gpus", 0), replicas = num(c->sspec, "replicas", 1);
    char batch[24], delay[24], run[24];
    snprintf(batch, sizeof batch, "%" JSON_INTEGER_FORMAT, num(c->sspec, "maxBatchSize", 16));
    snprintf(delay, sizeof delay, "%" JSON_INTEGER_FORMAT, num(c->sspec, "maxBatchDelayMs", 2));
    snprintf(run, sizeof run, "%" JSON_INTEGER_FORMAT, num(sv, "run", 0));
    char *cpu = quantity(json_object_get(res, "cpu"), "1"), *mem = quantity(json_object_get(res, "memory"), "1Gi");
    json_t *env = json_array(), *e;
    size_t i;
    json_array_foreach(json_object_get(c->spec, "env"), i, e) {
        if (json_is_string(json_object_get(e, "name")))
            json_array_append_new(env, json_pack("{s:O,s:s}", "name", json_object_get(e, "name"), "value",
                                                 str(e, "value") ? str(e, "value") : ""));
    }
    json_t *limits = json_pack("{s:s?}", "memory", mem), *requests = json_pack("{s:s?,s:s?}", "cpu", cpu, "memory", mem);
    if (gpus > 0)
        json_object_set_new(limits, "nvidia.com/gpu", json_string("1"));
    json_t *container = json_pack(
        "{s:s,s:s,s:[s],s:[s,s,s,s,s,s,s,s,s,s,s,s],s:[{s:s,s:i,s:s}],s:o,s:{s:o,s:o},"
        "s:{s:{s:s,s:s},s:i,s:i,s:i},s:{s:{s:s,s:s},s:i,s:i,s:i},"
        "s:{s:b,s:{s:[s]},s:b,s:{s:s}}}",
        "name", "serve", "image", image, "command", "kubefit-serve", "args", "--model-uri", str(sv, "modelURI"),
        "--model-name", c->name, "--listen", ":8080", "--device", gpus > 0 ? "cuda" : "cpu", "--max-batch-size", batch,
        "--max-batch-delay-ms", delay, "ports", "name", "http", "containerPort", SERVING_PORT, "protocol", "TCP", "env",
        env, "resources", "requests", requests, "limits", limits, "readinessProbe", "httpGet", "path",
        "/v2/health/ready", "port", "http", "periodSeconds", 2, "failureThreshold", 2, "timeoutSeconds", 2,
        "livenessProbe", "httpGet", "path", "/v2/health/live", "port", "http", "periodSeconds", 10,
        "failureThreshold", 3, "timeoutSeconds", 5, "securityContext", "allowPrivilegeEscalation", 0, "capabilities",
        "drop", "ALL", "runAsNonRoot", 1, "seccompProfile", "type", "RuntimeDefault");
    free(cpu);
    free(mem);
    json_t *pod_spec = json_pack("{s:[o],s:i,s:{s:b,s:i,s:i,s:{s:s}}}", "containers", container,
                                 "terminationGracePeriodSeconds", 30, "securityContext", "runAsNonRoot", 1, "runAsUser",
                                 CONTRACT_NONROOT_UID, "fsGroup", CONTRACT_NONROOT_UID, "seccompProfile", "type",
                                 "RuntimeDefault");
    const char *sa = str(c->spec, "serviceAccountName");
    if (pod_spec && sa && *sa)
        json_object_set_new(pod_spec, "serviceAccountName", json_string(sa));
    if (pod_spec && gpus > 0)
        json_object_set_new(pod_spec, "tolerations", json_pack("[{s:s,s:s,s:s}]", "key", "nvidia.com/gpu", "operator",
                                                               "Exists", "effect", "NoSchedule"));
    return json_pack("{s:s,s:s,s:{s:s,s:s,s:o,s:{s:s,s:s},s:o},s:{s:I,s:i,s:{s:{s:s}},s:{s:s,s:{s:i,s:i}},"
                     "s:{s:{s:{s:s,s:s},s:{s:s}},s:o}}}",
                     "apiVersion", "apps/v1", "kind", "Deployment", "metadata", "name", c->out->name, "namespace",
                     c->ns, "labels", object_labels(c), "annotations", SERVING_ANNOTATION_RUN, run,
                     SERVING_ANNOTATION_MODEL, str(sv, "modelURI"), "ownerReferences", owner_refs(c), "spec", "replicas", replicas, "revisionHistoryLimit",
                     3, "selector", "matchLabels", SERVING_LABEL_SERVE, c->name, "strategy", "type", "RollingUpdate",
                     "rollingUpdate", "maxUnavailable", 0, "maxSurge", 1, "template", "metadata", "labels",
                     SERVING_LABEL_SERVE, c->name, "app.kubernetes.io/name", "kubefit-serve", "annotations",
                     SERVING_ANNOTATION_RUN, run, "spec", pod_spec);
}

static json_t *build_service(ctx *c)
{
    return json_pack("{s:s,s:s,s:{s:s,s:s,s:o,s:o},s:{s:s,s:{s:s},s:[{s:s,s:i,s:s,s:s}]}}", "apiVersion", "v1", "kind",
                     "Service", "metadata", "name", c->out->name, "namespace", c->ns, "labels", object_labels(c),
                     "ownerReferences", owner_refs(c), "spec", "type", "ClusterIP", "selector", SERVING_LABEL_SERVE,
                     c->name, "ports", "name", "http", "port", SERVING_PORT, "targetPort", "http", "protocol", "TCP");
}

/* Stamps obj's hash annotation (of everything we set but the annotation) and returns the hash. */
static char *stamp(json_t *obj)
{
    json_t *ann = json_object_get(json_object_get(obj, "metadata"), "annotations");
    if (!ann) {
        ann = json_object();
        json_object_set_new(json_object_get(obj, "metadata"), "annotations", ann);
    }
    char *h = hash_of(obj);
    if (h)
        json_object_set_new(ann, SERVING_ANNOTATION_HASH, json_string(h));
    return h;
}

static const char *annotation(const json_t *obj, const char *key)
{
    return str(json_object_get(json_object_get(obj, "metadata"), "annotations"), key);
}

static int owned(ctx *c, const json_t *obj)
{
    size_t i;
    json_t *ref;
    json_array_foreach(json_object_get(json_object_get(obj, "metadata"), "ownerReferences"), i, ref) {
        if (json_is_true(json_object_get(ref, "controller")) && str(ref, "uid") && strcmp(str(ref, "uid"), c->uid) == 0)
            return 1;
    }
    return 0;
}

/* Desired objects vs the cached ones; the Serving condition and the replica counts. */
static void sync_objects(ctx *c, json_t *sv)
{
    const json_t *dep = c->in->deployment, *svc = c->in->service;
    json_t *want = build_deployment(c, sv), *want_svc = build_service(c);
    char *h = want ? stamp(want) : NULL, *hs = want_svc ? stamp(want_svc) : NULL;
    char msg[512];
    if (!h || !hs)
        goto done;
    if ((dep && !owned(c, dep)) || (svc && !owned(c, svc))) {
        snprintf(msg, sizeof msg, "%s %s/%s exists and is not owned by this TrainingJob: delete it or rename the job",
                 dep && !owned(c, dep) ? "Deployment" : "Service", c->ns, c->out->name);
        condition(c, "Serving", 0, "NameTaken", msg);
        goto done;
    }
    if (!dep) {
        c->out->deployment = want;
        want = NULL;
    } else if (!annotation(dep, SERVING_ANNOTATION_HASH) || strcmp(annotation(dep, SERVING_ANNOTATION_HASH), h) != 0) {
        /* Replace, keeping annotations others set (the Deployment controller's revision). */
        json_t *meta = json_object_get(want, "metadata"), *ann = json_object_get(meta, "annotations");
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(json_object_get(dep, "metadata"), "annotations"), k, v) {
            if (!json_object_get(ann, k))
                json_object_set(ann, k, v);
        }
        json_object_set(meta, "resourceVersion", json_object_get(json_object_get(dep, "metadata"), "resourceVersion"));
        c->out->deployment = want;
        want = NULL;
    }
    if (!svc) {
        c->out->service = want_svc;
        want_svc = NULL;
    } else if (!annotation(svc, SERVING_ANNOTATION_HASH) || strcmp(annotation(svc, SERVING_ANNOTATION_HASH), hs) != 0) {
        c->out->service = json_pack("{s:{s:O,s:{s:s},s:O},s:O}", "metadata", "labels",
                                    json_object_get(json_object_get(want_svc, "metadata"), "labels"), "annotations",
                                    SERVING_ANNOTATION_HASH, hs, "ownerReferences",
                                    json_object_get(json_object_get(want_svc, "metadata"), "ownerReferences"), "spec",
                                    json_object_get(want_svc, "spec"));
        c->out->service_patch = 1;
    }
    /* Rollout state: the cached Deployment serves the run only once it has our spec and the
     * Deployment controller has seen it. */
    json_int_t replicas = num(c->sspec, "replicas", 1), run = num(sv, "run", 0);
    const json_t *dst = json_object_get(dep, "status");
    int current = dep && !c->out->deployment &&
                  num(dst, "observedGeneration", 0) >= num(json_object_get(dep, "metadata"), "generation", 1);
    json_int_t ready = current ? num(dst, "readyReplicas", 0) : 0, updated = current ? num(dst, "updatedReplicas", 0) : 0;
    json_object_set_new(sv, "replicas", json_integer(replicas));
    json_object_set_new(sv, "readyReplicas", json_integer(dep ? num(dst, "readyReplicas", 0) : 0));
    if (replicas == 0) {
        snprintf(msg, sizeof msg, "run %" JSON_INTEGER_FORMAT " is served by 0 replicas (spec.serving.replicas)", run);
        condition(c, "Serving", 0, "ScaledToZero", msg);
    } else if (current && updated >= replicas && ready >= replicas && num(dst, "replicas", 0) <= replicas) {
        snprintf(msg, sizeof msg, "run %" JSON_INTEGER_FORMAT " serves at %s (%" JSON_INTEGER_FORMAT " replicas ready)",
                 run, str(sv, "url"), ready);
        condition(c, "Serving", 1, "Available", msg);
    } else {
        snprintf(msg, sizeof msg, "rolling out run %" JSON_INTEGER_FORMAT ": %" JSON_INTEGER_FORMAT " of %" JSON_INTEGER_FORMAT
                 " replicas updated and ready", run, current && updated < ready ? updated : ready, replicas);
        condition(c, "Serving", 0, "RollingOut", msg);
    }
done:
    json_decref(want);
    json_decref(want_svc);
    free(h);
    free(hs);
}

/* spec.serving is absent or disabled: the objects go, and so does status.serving. */
static void stop_serving(ctx *c)
{
    if (c->in->deployment || c->in->service)
        c->out->delete_objects = 1;
    if (json_object_get(c->st, "serving")) {
        json_object_del(c->st, "serving");
        drop_condition(c, "Serving");
        drop_condition(c, "Promoted");
        event(c, "Normal", "ServingStopped", "spec.serving is off: the kubefit-serve Deployment and Service are deleted");
    }
}

int serving_reconcile(serving_result *out, const serving_input *in)
{
    memset(out, 0, sizeof *out);
    out->events = json_array();
    ctx c = {.in = in, .out = out};
    c.meta = json_object_get(in->job, "metadata");
    c.spec = json_object_get(in->job, "spec");
    c.sspec = json_object_get(c.spec, "serving");
    c.name = str(c.meta, "name");
    c.ns = str(c.meta, "namespace");
    c.uid = str(c.meta, "uid");
    c.generation = num(c.meta, "generation", 1);
    kube_time_format(in->now, 0, c.now_s);
    if (!out->events)
        return err_set(KF_ENOMEM, "serving: out of memory");
    if (!c.name || !c.ns || !c.uid)
        return err_set(KF_EINVAL, "serving: job without name, namespace or uid");
    if (json_object_get(c.meta, "deletionTimestamp"))
        return KF_OK; /* the garbage collector removes what the job owns */
    out->namespace_ = strdup(c.ns);
    if (!out->namespace_ || asprintf(&out->name, "%s-serve", c.name) < 0) {
        out->name = NULL;
        return err_set(KF_ENOMEM, "serving: out of memory");
    }
    c.st = json_is_object(in->status) ? json_deep_copy(in->status) : json_object();
    if (!c.st)
        return err_set(KF_ENOMEM, "serving: out of memory");
    int enabled = json_is_object(c.sspec) && !json_is_false(json_object_get(c.sspec, "enabled"));
    if (!enabled) {
        stop_serving(&c);
    } else {
        json_t *sv = json_object_get(c.st, "serving");
        if (!json_is_object(sv)) {
            sv = json_object();
            json_object_set_new(c.st, "serving", sv);
        }
        char *url = NULL;
        if (asprintf(&url, "http://%s.%s.svc:%d", out->name, c.ns, SERVING_PORT) >= 0) {
            json_object_set_new(sv, "url", json_string(url));
            free(url);
        }
        json_int_t run = num(c.st, "currentRun", 0);
        const char *phase = str(c.st, "phase");
        if (run > num(sv, "lastEvaluatedRun", 0) && phase && strcmp(phase, "Succeeded") == 0)
            decide(&c, sv, run);
        if (str(sv, "modelURI")) {
            sync_objects(&c, sv);
        } else {
            json_object_set_new(sv, "replicas", json_integer(0));
            json_object_set_new(sv, "readyReplicas", json_integer(0));
            condition(&c, "Serving", 0, "NoModel", "no run has passed spec.serving.promote yet");
        }
    }
    if (json_equal(c.st, (json_t *)in->status) || (!in->status && json_object_size(c.st) == 0))
        json_decref(c.st);
    else
        out->status = c.st;
    return KF_OK;
}

void serving_result_dispose(serving_result *r)
{
    if (!r)
        return;
    json_decref(r->status);
    json_decref(r->events);
    json_decref(r->deployment);
    json_decref(r->service);
    free(r->namespace_);
    free(r->name);
    memset(r, 0, sizeof *r);
}

json_t *serving_trim(json_t *obj)
{
    static const char *const META[] = {"name", "namespace", "uid", "resourceVersion", "generation", "labels",
                                       "annotations", "ownerReferences", "deletionTimestamp", NULL};
    static const char *const STATUS[] = {"observedGeneration", "replicas", "updatedReplicas", "readyReplicas",
                                         "availableReplicas", NULL};
    const json_t *meta = json_object_get(obj, "metadata"), *status = json_object_get(obj, "status");
    json_t *out = json_object(), *m = json_object(), *st = json_object();
    if (!out || !m || !st) {
        json_decref(out), json_decref(m), json_decref(st);
        return NULL;
    }
    for (const char *const *k = META; *k; k++)
        if (json_object_get(meta, *k))
            json_object_set(m, *k, json_object_get(meta, *k));
    for (const char *const *k = STATUS; *k; k++)
        if (json_object_get(status, *k))
            json_object_set(st, *k, json_object_get(status, *k));
    json_object_set(out, "kind", json_object_get(obj, "kind"));
    json_object_set_new(out, "metadata", m);
    json_object_set_new(out, "status", st);
    const json_t *replicas = json_object_get(json_object_get(obj, "spec"), "replicas");
    if (replicas)
        json_object_set_new(out, "spec", json_pack("{s:O}", "replicas", replicas));
    return out;
}
