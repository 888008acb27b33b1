/* serving (controller/serving.c) as a sequence of situations -> decisions, status and objects.
 * Pure: no server needed. A job's runs succeed with chosen metrics; the Deployment and Service the
 * result asks for are fed back as the cache would hold them. */
#include "reconcile.h"
#include "serving.h"
#include "test.h"

#define T0 1790000000.0

static const serving_config CFG = {.default_image = "img:1"};

static json_t *job_new(const char *serving)
{
    json_t *job = json_pack("{s:s,s:s,s:{s:s,s:s,s:s,s:i},s:{s:s,s:{s:s},s:s,s:[{s:s,s:s}]}}", "apiVersion",
                            "kubefit.dev/v1alpha1", "kind", "TrainingJob", "metadata", "name", "tj", "namespace", "ns",
                            "uid", "uid-1", "generation", 1, "spec", "language", "en", "storage", "bucket", "gs://bkt",
                            "serviceAccountName", "sa", "env", "name", "STORAGE_EMULATOR_HOST", "value", "http://gcs:4443");
    if (serving) {
        json_t *s = json_loads(serving, 0, NULL);
        if (!s) {
            fprintf(stderr, "bad fixture %s\n", serving);
            exit(1);
        }
        json_object_set_new(json_object_get(job, "spec"), "serving", s);
    }
    return job;
}

/* The status reconcile leaves after run `run` finished with phase and metrics (JSON). */
static void run_done(json_t *job, int run, const char *phase, const char *metrics)
{
    json_t *st = json_object_get(job, "status");
    if (!st) {
        st = json_object();
        json_object_set_new(job, "status", st);
    }
    char uri[128];
    snprintf(uri, sizeof uri, "gs://bkt/models/en/tj/%d/model.safetensors", run);
    json_object_set_new(st, "currentRun", json_integer(run));
    json_object_set_new(st, "phase", json_string(phase));
    json_object_set_new(st, "metrics", metrics ? json_loads(metrics, 0, NULL) : json_object());
    json_object_set_new(st, "modelURI", json_string(uri));
}

typedef struct {
    json_t *dep, *svc; /* what the cache holds */
} cache;

static void cache_dispose(cache *k)
{
    json_decref(k->dep);
    json_decref(k->svc);
}

/* One reconcile after the Deployment controller has brought `ready` replicas of the cached
 * Deployment up; the status is adopted, written objects go to the cache as the server stores them
 * (a resourceVersion, a generation that moves on a change, not observed yet). */
static void step(serving_result *r, json_t *job, cache *k, int ready)
{
    if (k->dep)
        json_object_set_new(k->dep, "status",
                            json_pack("{s:I,s:i,s:i,s:i}", "observedGeneration",
                                      json_integer_value(json_object_get(json_object_get(k->dep, "metadata"), "generation")),
                                      "replicas", ready, "updatedReplicas", ready, "readyReplicas", ready));
    serving_input in = {.job = job, .status = json_object_get(job, "status"), .deployment = k->dep,
                        .service = k->svc, .now = T0, .cfg = &CFG};
    CHECK_EQ_INT(0, serving_reconcile(r, &in));
    if (r->status)
        json_object_set(job, "status", r->status);
    if (r->delete_objects) {
        json_decref(k->dep), json_decref(k->svc);
        k->dep = k->svc = NULL;
    }
    if (r->deployment) {
        json_int_t gen = k->dep ? json_integer_value(json_object_get(json_object_get(k->dep, "metadata"), "generation")) + 1 : 1;
        json_decref(k->dep);
        k->dep = json_deep_copy(r->deployment);
        json_t *meta = json_object_get(k->dep, "metadata");
        json_object_set_new(meta, "resourceVersion", json_string("rv"));
        json_object_set_new(meta, "generation", json_integer(gen));
        json_object_set_new(json_object_get(meta, "annotations"), "deployment.kubernetes.io/revision", json_string("7"));
        json_object_set_new(k->dep, "status", json_pack("{s:I}", "observedGeneration", gen - 1));
    }
    if (r->service && !r->service_patch) {
        json_decref(k->svc);
        k->svc = json_deep_copy(r->service);
    }
}

static const char *cond_reason(const json_t *job, const char *type, const char **status)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(json_object_get(job, "status"), "conditions"), i, c) {
        if (strcmp(json_string_value(json_object_get(c, "type")), type) == 0) {
            if (status)
                *status = json_string_value(json_object_get(c, "status"));
            return json_string_value(json_object_get(c, "reason"));
        }
    }
    return NULL;
}

static const char *cond_message(const json_t *job, const char *type)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(json_object_get(job, "status"), "conditions"), i, c) {
        if (strcmp(json_string_value(json_object_get(c, "type")), type) == 0)
            return json_string_value(json_object_get(c, "message"));
    }
    return "";
}

static const char *event_reason(const serving_result *r, size_t i)
{
    return json_string_value(json_object_get(json_array_get(r->events, i), "reason"));
}

static json_int_t sv_int(const json_t *job, const char *k)
{
    return json_integer_value(json_object_get(json_object_get(json_object_get(job, "status"), "serving"), k));
}

static const char *arg_after(const json_t *dep, const char *flag)
{
    const json_t *args = json_object_get(json_array_get(json_object_get(json_object_get(json_object_get(
                                             json_object_get(dep, "spec"), "template"), "spec"), "containers"), 0), "args");
    for (size_t i = 0; i + 1 < json_array_size(args); i++)
        if (strcmp(json_string_value(json_array_get(args, i)), flag) == 0)
            return json_string_value(json_array_get(args, i + 1));
    return NULL;
}

static void test_promotion(void)
{
    json_t *job = job_new("{\"enabled\":true,\"replicas\":2,\"resources\":{\"cpu\":\"2\",\"memory\":\"3Gi\",\"gpus\":0},"
                          "\"promote\":{\"metric\":\"microF1\",\"minImprovement\":0.01,\"minValue\":0.5}}");
    cache k = {0};
    serving_result r;
    const char *st;

    /* run 1 running: nothing served yet */
    run_done(job, 1, "Running", NULL);
    step(&r, job, &k, 0);
    CHECK(r.status != NULL);
    CHECK(r.deployment == NULL && r.service == NULL);
    CHECK_EQ_STR("NoModel", cond_reason(job, "Serving", &st));
    CHECK_EQ_STR("False", st);
    CHECK_EQ_STR("http://tj-serve.ns.svc:8080",
                 json_string_value(json_object_get(json_object_get(json_object_get(job, "status"), "serving"), "url")));
    serving_result_dispose(&r);
    step(&r, job, &k, 0);
    CHECK(r.status == NULL && json_array_size(r.events) == 0); /* nothing changes: nothing written */
    serving_result_dispose(&r);

    /* run 1 succeeds (0.80): the first run above minValue is served */
    run_done(job, 1, "Succeeded", "{\"microF1\":0.8,\"accuracy\":0.9}");
    step(&r, job, &k, 0);
    CHECK_EQ_INT(1, sv_int(job, "run"));
    CHECK_EQ_INT(1, sv_int(job, "lastEvaluatedRun"));
    CHECK_EQ_INT(1, json_array_size(r.events));
    CHECK_EQ_STR("Promoted", event_reason(&r, 0));
    CHECK_EQ_STR("Promoted", cond_reason(job, "Promoted", &st));
    CHECK_EQ_STR("True", st);
    CHECK(strstr(cond_message(job, "Promoted"), "run 1 is served: microF1 0.8000") != NULL);
    CHECK(r.deployment != NULL && r.service != NULL && !r.service_patch);
    CHECK_EQ_STR("RollingOut", cond_reason(job, "Serving", NULL));
    const json_t *d = r.deployment, *meta = json_object_get(d, "metadata"), *spec = json_object_get(d, "spec");
    const json_t *pod = json_object_get(json_object_get(spec, "template"), "spec");
    const json_t *ctr = json_array_get(json_object_get(pod, "containers"), 0);
    CHECK_EQ_STR("tj-serve", json_string_value(json_object_get(meta, "name")));
    CHECK_EQ_STR("ns", json_string_value(json_object_get(meta, "namespace")));
    CHECK(json_object_get(meta, "resourceVersion") == NULL); /* a create */
    CHECK_EQ_STR("uid-1", json_string_value(json_object_get(json_array_get(json_object_get(meta, "ownerReferences"), 0), "uid")));
    CHECK_EQ_STR("serve", json_string_value(json_object_get(json_object_get(meta, "labels"), SERVING_LABEL_COMPONENT)));
    CHECK_EQ_STR("tj", json_string_value(json_object_get(json_object_get(meta, "labels"), RECONCILE_LABEL_JOB)));
    CHECK(json_string_value(json_object_get(json_object_get(meta, "annotations"), SERVING_ANNOTATION_HASH)) != NULL);
    CHECK_EQ_INT(2, json_integer_value(json_object_get(spec, "replicas")));
    CHECK_EQ_STR("tj", json_string_value(json_object_get(json_object_get(json_object_get(spec, "selector"), "matchLabels"),
                                                         SERVING_LABEL_SERVE)));
    /* the Pods do not carry the trainer Pods' labels (the Pod informer and the node agent skip them) */
    const json_t *plabels = json_object_get(json_object_get(json_object_get(spec, "template"), "metadata"), "labels");
    CHECK(json_object_get(plabels, RECONCILE_LABEL_MANAGED) == NULL && json_object_get(plabels, RECONCILE_LABEL_JOB) == NULL);
    CHECK_EQ_INT(0, json_integer_value(json_object_get(json_object_get(json_object_get(spec, "strategy"), "rollingUpdate"),
                                                       "maxUnavailable")));
    CHECK_EQ_STR("img:1", json_string_value(json_object_get(ctr, "image")));
    CHECK_EQ_STR("kubefit-serve", json_string_value(json_array_get(json_object_get(ctr, "command"), 0)));
    CHECK_EQ_STR("gs://bkt/models/en/tj/1/model.safetensors", arg_after(d, "--model-uri"));
    CHECK_EQ_STR("tj", arg_after(d, "--model-name"));
    CHECK_EQ_STR("cpu", arg_after(d, "--device"));
    CHECK_EQ_STR("16", arg_after(d, "--max-batch-size"));
    CHECK_EQ_STR("/v2/health/ready",
                 json_string_value(json_object_get(json_object_get(json_object_get(ctr, "readinessProbe"), "httpGet"), "path")));
    CHECK_EQ_STR("2", json_string_value(json_object_get(json_object_get(json_object_get(ctr, "resources"), "requests"), "cpu")));
    CHECK_EQ_STR("3Gi", json_string_value(json_object_get(json_object_get(json_object_get(ctr, "resources"), "limits"), "memory")));
    CHECK(json_object_get(json_object_get(json_object_get(ctr, "resources"), "limits"), "nvidia.com/gpu") == NULL);
    CHECK_EQ_STR("STORAGE_EMULATOR_HOST", json_string_value(json_object_get(json_array_get(json_object_get(ctr, "env"), 0), "name")));
    CHECK_EQ_STR("sa", json_string_value(json_object_get(pod, "serviceAccountName")));
    const json_t *svc = r.service;
    CHECK_EQ_STR("tj-serve", json_string_value(json_object_get(json_object_get(svc, "metadata"), "name")));
    CHECK_EQ_STR("tj", json_string_value(json_object_get(json_object_get(json_object_get(svc, "spec"), "selector"),
                                                         SERVING_LABEL_SERVE)));
    CHECK_EQ_INT(8080, json_integer_value(json_object_get(json_array_get(json_object_get(json_object_get(svc, "spec"),
                                                                                           "ports"), 0), "port")));
    serving_result_dispose(&r);

    /* the Deployment becomes ready: Serving Available, nothing rewritten, no second decision */
    step(&r, job, &k, 2);
    CHECK(r.deployment == NULL && r.service == NULL && json_array_size(r.events) == 0);
    CHECK_EQ_STR("Available", cond_reason(job, "Serving", &st));
    CHECK_EQ_STR("True", st);
    CHECK_EQ_INT(2, sv_int(job, "readyReplicas"));
    serving_result_dispose(&r);
    step(&r, job, &k, 2);
    CHECK(r.status == NULL && r.deployment == NULL && json_array_size(r.events) == 0);
    serving_result_dispose(&r);

    /* run 2 fails: not looked at */
    run_done(job, 2, "Failed", NULL);
    step(&r, job, &k, 2);
    CHECK_EQ_INT(1, sv_int(job, "lastEvaluatedRun"));
    CHECK(json_array_size(r.events) == 0 && r.deployment == NULL);
    serving_result_dispose(&r);

    /* run 3 improves by 0.05: served, the Deployment is replaced (resourceVersion, others' annotations kept) */
    run_done(job, 3, "Succeeded", "{\"microF1\":0.85}");
    step(&r, job, &k, 0);
    CHECK_EQ_INT(3, sv_int(job, "run"));
    CHECK_EQ_STR("Promoted", event_reason(&r, 0));
    CHECK(strstr(cond_message(job, "Promoted"), "beats run 1's 0.8000 by 0.0500") != NULL);
    CHECK(r.deployment != NULL && r.service == NULL);
    CHECK_EQ_STR("rv", json_string_value(json_object_get(json_object_get(r.deployment, "metadata"), "resourceVersion")));
    CHECK_EQ_STR("7", json_string_value(json_object_get(json_object_get(json_object_get(r.deployment, "metadata"),
                                                                        "annotations"), "deployment.kubernetes.io/revision")));
    CHECK_EQ_STR("gs://bkt/models/en/tj/3/model.safetensors", arg_after(r.deployment, "--model-uri"));
    CHECK_EQ_STR("RollingOut", cond_reason(job, "Serving", NULL));
    serving_result_dispose(&r);
    step(&r, job, &k, 2);
    CHECK_EQ_STR("Available", cond_reason(job, "Serving", NULL));
    serving_result_dispose(&r);

    /* run 4 regresses: skipped, run 3 keeps serving, nothing rewritten */
    run_done(job, 4, "Succeeded", "{\"microF1\":0.84}");
    step(&r, job, &k, 2);
    CHECK_EQ_INT(3, sv_int(job, "run"));
    CHECK_EQ_INT(4, sv_int(job, "lastEvaluatedRun"));
    CHECK_EQ_STR("PromotionSkipped", event_reason(&r, 0));
    CHECK_EQ_STR("PromotionSkipped", cond_reason(job, "Promoted", &st));
    CHECK_EQ_STR("False", st);
    CHECK(strstr(cond_message(job, "Promoted"), "run 3 keeps serving") != NULL);
    CHECK(r.deployment == NULL && r.service == NULL);
    CHECK_EQ_STR("Available", cond_reason(job, "Serving", NULL));
    serving_result_dispose(&r);

    /* run 5 improves by less than minImprovement: skipped */
    run_done(job, 5, "Succeeded", "{\"microF1\":0.855}");
    step(&r, job, &k, 2);
    CHECK_EQ_INT(3, sv_int(job, "run"));
    CHECK_EQ_STR("PromotionSkipped", event_reason(&r, 0));
    CHECK(strstr(cond_message(job, "Promoted"), "minImprovement 0.0100") != NULL);
    serving_result_dispose(&r);

    /* run 6 reports no microF1: skipped, saying so */
    run_done(job, 6, "Succeeded", "{\"accuracy\":0.99}");
    step(&r, job, &k, 2);
    CHECK_EQ_STR("PromotionSkipped", event_reason(&r, 0));
    CHECK(strstr(cond_message(job, "Promoted"), "reports no microF1") != NULL);
    serving_result_dispose(&r);

    /* replicas change (not a new run): the Deployment is replaced, no decision */
    json_object_set_new(json_object_get(json_object_get(job, "spec"), "serving"), "replicas", json_integer(3));
    step(&r, job, &k, 2);
    CHECK(r.deployment != NULL && json_array_size(r.events) == 0);
    CHECK_EQ_INT(3, json_integer_value(json_object_get(json_object_get(r.deployment, "spec"), "replicas")));
    CHECK_EQ_STR("RollingOut", cond_reason(job, "Serving", NULL));
    serving_result_dispose(&r);

    /* serving off: both objects deleted, status.serving and its conditions gone */
    json_object_set_new(json_object_get(json_object_get(job, "spec"), "serving"), "enabled", json_false());
    step(&r, job, &k, 0);
    CHECK(r.delete_objects);
    CHECK(json_object_get(json_object_get(job, "status"), "serving") == NULL);
    CHECK(cond_reason(job, "Serving", NULL) == NULL && cond_reason(job, "Promoted", NULL) == NULL);
    CHECK_EQ_STR("ServingStopped", event_reason(&r, 0));
    serving_result_dispose(&r);
    step(&r, job, &k, 0);
    CHECK(!r.delete_objects && r.status == NULL && json_array_size(r.events) == 0);
    serving_result_dispose(&r);
    cache_dispose(&k);
    json_decref(job);
}

static void test_min_value_and_foreign(void)
{
    json_t *job = job_new("{\"promote\":{\"metric\":\"accuracy\",\"minValue\":0.9},\"image\":\"serve:2\"}");
    cache k = {0};
    serving_result r;
    run_done(job, 1, "Succeeded", "{\"accuracy\":0.8}");
    step(&r, job, &k, 0);
    CHECK_EQ_STR("PromotionSkipped", event_reason(&r, 0));
    CHECK(strstr(cond_message(job, "Promoted"), "below minValue 0.9000; nothing is served yet") != NULL);
    CHECK_EQ_STR("NoModel", cond_reason(job, "Serving", NULL));
    CHECK(r.deployment == NULL);
    serving_result_dispose(&r);
    run_done(job, 2, "Succeeded", "{\"accuracy\":0.95}");
    step(&r, job, &k, 0);
    CHECK_EQ_INT(2, sv_int(job, "run"));
    CHECK_EQ_STR("serve:2", json_string_value(json_object_get(json_array_get(json_object_get(json_object_get(
                                json_object_get(json_object_get(r.deployment, "spec"), "template"), "spec"), "containers"), 0), "image")));
    serving_result_dispose(&r);
    /* a Deployment of that name owned by something else: left alone, said in the condition */
    json_t *foreign = json_pack("{s:{s:s,s:s,s:{s:s}}}", "metadata", "name", "tj-serve", "namespace", "ns", "annotations",
                                SERVING_ANNOTATION_HASH, "x");
    cache k2 = {.dep = foreign};
    step(&r, job, &k2, 0);
    CHECK(r.deployment == NULL && r.service == NULL);
    CHECK_EQ_STR("NameTaken", cond_reason(job, "Serving", NULL));
    serving_result_dispose(&r);
    cache_dispose(&k2);
    cache_dispose(&k);
    json_decref(job);
}

static void test_misc(void)
{
    /* no serving at all: nothing */
    json_t *job = job_new(NULL);
    cache k = {0};
    serving_result r;
    run_done(job, 1, "Succeeded", "{\"microF1\":0.8}");
    step(&r, job, &k, 0);
    CHECK(r.status == NULL && r.deployment == NULL && !r.delete_objects && json_array_size(r.events) == 0);
    serving_result_dispose(&r);
    /* the run hash ignores spec.serving: changing it starts no run */
    json_t *a = job_new(NULL), *b = job_new("{\"replicas\":3}");
    char *ha = reconcile_spec_hash(json_object_get(a, "spec")), *hb = reconcile_spec_hash(json_object_get(b, "spec"));
    CHECK_EQ_STR(ha, hb);
    free(ha), free(hb);
    json_decref(a), json_decref(b);
    /* GPU serving */
    json_t *g = job_new("{\"resources\":{\"gpus\":1}}");
    run_done(g, 1, "Succeeded", "{\"microF1\":0.8}");
    step(&r, g, &k, 0);
    CHECK_EQ_STR("cuda", arg_after(r.deployment, "--device"));
    const json_t *pod = json_object_get(json_object_get(json_object_get(r.deployment, "spec"), "template"), "spec");
    CHECK_EQ_STR("1", json_string_value(json_object_get(json_object_get(json_object_get(json_array_get(
                          json_object_get(pod, "containers"), 0), "resources"), "limits"), "nvidia.com/gpu")));
    CHECK(json_array_size(json_object_get(pod, "tolerations")) == 1);
    serving_result_dispose(&r);
    /* the cache keeps what serving reads */
    json_t *full = json_pack("{s:s,s:{s:s,s:s,s:s,s:I,s:{s:s},s:[{}],s:{s:s}},s:{s:i,s:o},s:{s:i,s:i,s:i,s:i}}", "kind",
                             "Deployment", "metadata", "name", "tj-serve", "namespace", "ns", "resourceVersion", "9",
                             "generation", (json_int_t)4, "labels", "a", "b", "managedFields", "annotations", "x", "y",
                             "spec", "replicas", 2, "template", json_object(), "status", "observedGeneration", 4,
                             "replicas", 2, "readyReplicas", 1, "unknown", 5);
    json_t *t = serving_trim(full);
    CHECK(json_object_get(json_object_get(t, "spec"), "template") == NULL);
    CHECK_EQ_INT(2, json_integer_value(json_object_get(json_object_get(t, "spec"), "replicas")));
    CHECK_EQ_INT(4, json_integer_value(json_object_get(json_object_get(t, "metadata"), "generation")));
    CHECK(json_object_get(json_object_get(t, "metadata"), "managedFields") == NULL);
    CHECK_EQ_INT(1, json_integer_value(json_object_get(json_object_get(t, "status"), "readyReplicas")));
    CHECK(json_object_get(json_object_get(t, "status"), "unknown") == NULL);
    json_decref(t);
    json_decref(full);
    cache_dispose(&k);
    json_decref(g);
    json_decref(job);
}

int main(void)
{
    test_promotion();
    test_min_value_and_foreign();
    test_misc();
    return test_done();
}
