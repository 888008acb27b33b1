/* reconcile as a table of situations -> expected actions and status. Pure: no server needed. */
#include "kubetime.h"
#include "reconcile.h"
#include "test.h"

#define T0 1790000000.0 /* a fixed "now" */

static const reconcile_config CFG = {.default_image = "img:1", .progress_base_url = "http://ctl:8080",
                                     .backoff_base_s = 10, .backoff_max_s = 600};

static json_t *job_new(const char *spec_extra)
{
    json_t *job = json_pack("{s:s,s:s,s:{s:s,s:s,s:s,s:i,s:s},s:{s:s,s:i,s:{s:s},s:{s:i,s:s,s:b},s:s}}",
                            "apiVersion", "kubefit.dev/v1alpha1", "kind", "TrainingJob", "metadata", "name", "tj",
                            "namespace", "ns", "uid", "uid-1", "generation", 1, "resourceVersion", "100", "spec",
                            "language", "fr", "epochs", 10, "storage", "bucket", "gs://bkt", "resources", "gpus", 1,
                            "acceleratorType", "nvidia-h100-80gb", "spot", 1, "serviceAccountName", "trainer-sa");
    if (spec_extra) {
        json_t *extra = json_loads(spec_extra, 0, NULL);
        if (!extra) {
            fprintf(stderr, "bad fixture %s\n", spec_extra);
            exit(1);
        }
        json_object_update(json_object_get(job, "spec"), extra);
        json_decref(extra);
    }
    return job;
}

/* The job as the server holds it after the result's status was written. */
static void adopt(json_t *job, const reconcile_result *r)
{
    if (r->status)
        json_object_set(job, "status", r->status);
}

static json_t *pod_of(const json_t *created, const char *phase)
{
    json_t *pod = json_deep_copy(created);
    json_object_set_new(pod, "status", json_pack("{s:s}", "phase", phase));
    return pod;
}

static void terminate(json_t *pod, int code, const char *message, const char *finished)
{
    json_t *term = json_pack("{s:i,s:s}", "exitCode", code, "finishedAt", finished);
    if (message)
        json_object_set_new(term, "message", json_string(message));
    json_object_set_new(json_object_get(pod, "status"), "containerStatuses",
                        json_pack("[{s:s,s:{s:o}}]", "name", "trainer", "state", "terminated", term));
}

static int run(reconcile_result *r, const json_t *job, const json_t *pods, double now)
{
    json_t *empty = json_array();
    reconcile_input in = {.job = job, .pods = pods ? pods : empty, .now = now, .cfg = &CFG};
    int rc = reconcile(r, &in);
    json_decref(empty);
    return rc;
}

static const char *sget(const json_t *o, const char *path)
{
    /* "a.b.0.c" lookups; numbers index arrays. */
    const json_t *cur = o;
    while (cur && *path) {
        size_t n = strcspn(path, ".");
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)n, path);
        cur = json_is_array(cur) ? json_array_get(cur, (size_t)atoi(key)) : json_object_get(cur, key);
        path += n + (path[n] == '.');
    }
    return json_string_value(cur);
}

static json_int_t iget(const json_t *o, const char *key) { return json_integer_value(json_object_get(o, key)); }

/* A field ("status", "reason") of the condition of this type, or NULL. */
static const char *cond_field(const json_t *st, const char *type, const char *field)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(st, "conditions"), i, c) {
        if (!strcmp(json_string_value(json_object_get(c, "type")), type))
            return json_string_value(json_object_get(c, field));
    }
    return NULL;
}

static const char *cond(const json_t *st, const char *type) { return cond_field(st, type, "status"); }


static int has_arg_pair(const json_t *pod, const char *flag, const char *value)
{
    const json_t *args = json_object_get(json_array_get(json_object_get(json_object_get(pod, "spec"), "containers"), 0), "args");
    for (size_t i = 0; i + 1 < json_array_size(args); i++)
        if (!strcmp(json_string_value(json_array_get(args, i)), flag))
            return !strcmp(json_string_value(json_array_get(args, i + 1)), value);
    return 0;
}

static int arg_count(const json_t *pod, const char *flag)
{
    const json_t *args = json_object_get(json_array_get(json_object_get(json_object_get(pod, "spec"), "containers"), 0), "args");
    int n = 0;
    for (size_t i = 0; i < json_array_size(args); i++)
        n += !strcmp(json_string_value(json_array_get(args, i)), flag);
    return n;
}

static const char *event_reason(const reconcile_result *r, size_t i)
{
    return json_string_value(json_object_get(json_array_get(r->events, i), "reason"));
}

/* First visit -> run 1, attempt 1: the Pod as docs/contract.md wires it. Then idempotence. */
static void test_first_visit_and_pod(void)
{
    json_t *job = job_new("{\"batchSize\":32,\"learningRate\":\"2e-3\",\"env\":[{\"name\":\"A\",\"value\":\"b\"}],"
                          "\"args\":[\"--seed\",\"7\"]}");
    reconcile_result r;
    CHECK_EQ_INT(0, run(&r, job, NULL, T0));
    CHECK(r.status != NULL);
    CHECK_EQ_STR("Pending", sget(r.status, "phase"));
    CHECK_EQ_INT(1, iget(r.status, "currentRun"));
    CHECK_EQ_INT(1, iget(r.status, "attempts"));
    CHECK_EQ_INT(1, iget(r.status, "observedGeneration"));
    CHECK_EQ_STR("tj-1-1", sget(r.status, "podName"));
    CHECK_EQ_STR("False", cond(r.status, "Running"));
    CHECK_EQ_STR("False", cond(r.status, "Succeeded"));
    CHECK_EQ_STR("False", cond(r.status, "Failed"));
    CHECK_EQ_STR("False", cond(r.status, "Suspended"));
    CHECK_EQ_INT(1, json_array_size(json_object_get(r.status, "runs")));
    const json_t *pod = r.create_pod;
    CHECK(pod != NULL);
    CHECK_EQ_STR("tj-1-1", sget(pod, "metadata.name"));
    CHECK_EQ_STR("ns", sget(pod, "metadata.namespace"));
    const json_t *labels = json_object_get(json_object_get(pod, "metadata"), "labels");
    CHECK_EQ_STR("kubefit", json_string_value(json_object_get(labels, "app.kubernetes.io/managed-by")));
    CHECK_EQ_STR("tj", json_string_value(json_object_get(labels, "kubefit.dev/job")));
    CHECK_EQ_STR("1", json_string_value(json_object_get(labels, "kubefit.dev/run")));
    CHECK_EQ_STR("uid-1", sget(pod, "metadata.ownerReferences.0.uid"));
    CHECK(json_is_true(json_object_get(json_array_get(json_object_get(json_object_get(pod, "metadata"), "ownerReferences"), 0), "controller")));
    const json_t *spec = json_object_get(pod, "spec");
    CHECK_EQ_STR("Never", sget(spec, "restartPolicy"));
    CHECK_EQ_STR("trainer-sa", sget(spec, "serviceAccountName"));
    const json_t *sel = json_object_get(spec, "nodeSelector");
    CHECK_EQ_STR("nvidia-h100-80gb", json_string_value(json_object_get(sel, "cloud.google.com/gke-accelerator")));
    CHECK_EQ_STR("true", json_string_value(json_object_get(sel, "cloud.google.com/gke-spot")));
    int spot_tol = 0;
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(spec, "tolerations"), i, t) spot_tol |= !strcmp(sget(t, "key"), "cloud.google.com/gke-spot");
    CHECK(spot_tol);
    const json_t *c = json_array_get(json_object_get(spec, "containers"), 0);
    CHECK_EQ_STR("img:1", sget(c, "image"));
    CHECK_EQ_STR("kubefit-trainer", sget(c, "command.0"));
    CHECK_EQ_STR("train", sget(c, "args.0"));
    CHECK_EQ_STR("1", json_string_value(json_object_get(json_object_get(json_object_get(c, "resources"), "limits"), "nvidia.com/gpu")));
    CHECK_EQ_STR("/dev/termination-log", sget(c, "terminationMessagePath"));
    CHECK_EQ_STR("FallbackToLogsOnError", sget(c, "terminationMessagePolicy"));
    CHECK_EQ_STR("ALL", sget(c, "securityContext.capabilities.drop.0"));
    /* Non-root user and group 65532, a read-only image with an emptyDir at /tmp for scratch. */
    CHECK(json_is_true(json_object_get(json_object_get(c, "securityContext"), "readOnlyRootFilesystem")));
    CHECK_EQ_INT(65532, json_integer_value(json_object_get(json_object_get(json_object_get(pod, "spec"),
                                                                           "securityContext"), "runAsGroup")));
    CHECK_EQ_STR("/tmp", sget(c, "volumeMounts.0.mountPath"));
    CHECK_EQ_STR("tmp", sget(pod, "spec.volumes.0.name"));
    CHECK(json_is_object(json_object_get(json_array_get(json_object_get(json_object_get(pod, "spec"), "volumes"), 0),
                                         "emptyDir")));
    CHECK(json_is_false(json_object_get(json_object_get(c, "securityContext"), "allowPrivilegeEscalation")));
    CHECK(has_arg_pair(pod, "--lang", "fr"));
    CHECK(has_arg_pair(pod, "--epochs", "10"));
    CHECK(has_arg_pair(pod, "--bucket-name", "gs://bkt"));
    CHECK(has_arg_pair(pod, "--model-dir", "models"));
    CHECK(has_arg_pair(pod, "--job", "tj"));
    CHECK(has_arg_pair(pod, "--run", "1"));
    CHECK(has_arg_pair(pod, "--batch-size", "32"));
    CHECK(has_arg_pair(pod, "--lr", "0.002")); /* "2e-3" checked and rendered as the trainer reads it */
    CHECK(has_arg_pair(pod, "--device", "cuda")); /* gpus 1: the GPU or a clear failure */
    CHECK(has_arg_pair(pod, "--progress-url", "http://ctl:8080/progress/ns/tj/1"));
    CHECK(has_arg_pair(pod, "--seed", "7"));
    CHECK_EQ_STR("A", sget(c, "env.0.name"));
    /* Spec fields left out stay out of the args (the trainer's defaults apply). */
    const char *unset[] = {"--stages", "--label-mode", "--threshold", "--pretrained-uri", "--vocab-uri",
                           "--train-uri", "--valid-uri", "--corpus-uri", "--lm-lr", "--emb-size"};
    for (size_t k = 0; k < sizeof unset / sizeof unset[0]; k++)
        CHECK_EQ_INT(0, arg_count(pod, unset[k]));

    /* The Pod exists but is Pending; then nothing changes: no write, no create. */
    adopt(job, &r);
    json_t *pods = json_pack("[o]", pod_of(r.create_pod, "Pending"));
    reconcile_result r2, r3;
    CHECK_EQ_INT(0, run(&r2, job, pods, T0 + 1));
    CHECK(r2.create_pod == NULL);
    adopt(job, &r2);
    CHECK_EQ_INT(0, run(&r3, job, pods, T0 + 2));
    CHECK(r3.status == NULL);
    CHECK(r3.create_pod == NULL);
    CHECK_EQ_INT(0, json_array_size(r3.delete_pods));
    CHECK_EQ_INT(0, json_array_size(r3.events));

    /* The Pod is not in the cache (deleted, or not seen yet): the same name is created again. */
    reconcile_result r4;
    CHECK_EQ_INT(0, run(&r4, job, NULL, T0 + 3));
    CHECK_EQ_STR("tj-1-1", sget(r4.create_pod, "metadata.name"));
    reconcile_result_dispose(&r), reconcile_result_dispose(&r2), reconcile_result_dispose(&r3);
    reconcile_result_dispose(&r4);
    json_decref(pods);
    json_decref(job);
}

/* Runs the job to attempt 1 created; returns the job (status adopted) and the created Pod. */
static json_t *started(const char *spec_extra, json_t **pod)
{
    json_t *job = job_new(spec_extra);
    reconcile_result r;
    run(&r, job, NULL, T0);
    adopt(job, &r);
    *pod = json_incref(r.create_pod);
    reconcile_result_dispose(&r);
    return job;
}

static void test_running_and_success(void)
{
    json_t *created, *job = started(NULL, &created);
    json_t *pod = pod_of(created, "Running"), *pods = json_pack("[O]", pod);
    reconcile_result r;
    CHECK_EQ_INT(0, run(&r, job, pods, T0 + 5));
    CHECK_EQ_STR("Running", sget(r.status, "phase"));
    CHECK_EQ_STR("True", cond(r.status, "Running"));
    CHECK(sget(r.status, "startTime") != NULL);
    adopt(job, &r);
    reconcile_result_dispose(&r);
    /* status.progress is the progress ingest's to write (controller/ingest.c): reconcile keeps it. */
    json_object_set_new(json_object_get(job, "status"), "progress",
                        json_pack("{s:s,s:i,s:f}", "stage", "classifier", "epoch", 3, "percent", 30.0));
    CHECK_EQ_INT(0, run(&r, job, pods, T0 + 6));
    CHECK(r.status == NULL);
    reconcile_result_dispose(&r);

    /* Success: the termination message becomes metrics, URIs, completionTime, an Event. */
    json_object_set_new(json_object_get(pod, "status"), "phase", json_string("Succeeded"));
    terminate(pod, 0,
              "{\"version\":1,\"phase\":\"Succeeded\",\"stage\":\"classifier\",\"epochs\":10,"
              "\"metrics\":{\"accuracy\":0.91,\"microF1\":0.83,\"macroF1\":0.61,\"loss\":0.12,\"validLoss\":0.15},"
              "\"labels\":[{\"name\":\"role::program\",\"f1\":0.9,\"precision\":0.9,\"recall\":0.9,\"support\":120}],"
              "\"modelURI\":\"gs://b/models/fr/tj/1/model.safetensors\",\"metricsURI\":\"gs://b/models/fr/tj/1/metrics.json\","
              "\"trainSeconds\":812.4}",
              "2026-09-21T10:00:00Z");
    CHECK_EQ_INT(0, run(&r, job, pods, T0 + 20));
    CHECK_EQ_STR("Succeeded", sget(r.status, "phase"));
    CHECK_EQ_STR("True", cond(r.status, "Succeeded"));
    CHECK_EQ_STR("False", cond(r.status, "Running"));
    CHECK_EQ_STR("False", cond(r.status, "Failed"));
    CHECK_NEAR(0.91, json_real_value(json_object_get(json_object_get(r.status, "metrics"), "accuracy")), 0, 0);
    CHECK_NEAR(0.61, json_real_value(json_object_get(json_object_get(r.status, "metrics"), "macroF1")), 0, 0);
    CHECK_NEAR(812.4, json_real_value(json_object_get(json_object_get(r.status, "metrics"), "trainSeconds")), 0, 0);
    CHECK_EQ_STR("role::program", sget(r.status, "metrics.labels.0.name"));
    CHECK_EQ_STR("gs://b/models/fr/tj/1/model.safetensors", sget(r.status, "modelURI"));
    CHECK_EQ_STR("gs://b/models/fr/tj/1/metrics.json", sget(r.status, "metricsURI"));
    CHECK_EQ_STR("2026-09-21T10:00:00Z", sget(r.status, "completionTime"));
    CHECK_EQ_STR("Succeeded", sget(r.status, "runs.0.phase"));
    CHECK_NEAR(0.91, json_real_value(json_object_get(json_array_get(json_object_get(r.status, "runs"), 0), "accuracy")), 0, 0);
    CHECK_EQ_INT(1, json_array_size(r.events));
    CHECK_EQ_STR("Succeeded", event_reason(&r, 0));
    CHECK(r.create_pod == NULL);
    adopt(job, &r);
    reconcile_result_dispose(&r);
    /* Finished and no TTL: nothing more to do, ever. */
    CHECK_EQ_INT(0, run(&r, job, pods, T0 + 1000));
    CHECK(r.status == NULL && r.create_pod == NULL && !r.delete_job && r.requeue_after == 0);
    reconcile_result_dispose(&r);
    json_decref(pod), json_decref(pods), json_decref(created);
    json_decref(job);
}

static void test_failures_and_retries(void)
{
    json_t *created, *job = started("{\"backoffLimit\":1}", &created);
    char fin[32];
    kube_time_format(T0 + 10, 0, fin);
    json_t *pod = pod_of(created, "Failed"), *pods = json_pack("[O]", pod);
    terminate(pod, 1, "{\"version\":1,\"phase\":\"Failed\",\"reason\":\"Crash\",\"message\":\"segfault in lstm\"}", fin);
    reconcile_result r;
    /* First failure: counted, retry after backoff (10 s from finishedAt), no Pod yet. */
    CHECK_EQ_INT(0, run(&r, job, pods, T0 + 12));
    CHECK_EQ_INT(1, iget(r.status, "failures"));
    CHECK_EQ_STR("Pending", sget(r.status, "phase"));
    CHECK_EQ_STR("Retrying", sget(r.status, "reason"));
    CHECK(strstr(sget(r.status, "message"), "segfault in lstm") != NULL);
    CHECK(r.create_pod == NULL);
    CHECK_NEAR(8, r.requeue_after, 1.01, 0);
    CHECK_EQ_STR("AttemptFailed", event_reason(&r, 0));
    adopt(job, &r);
    reconcile_result_dispose(&r);
    /* Seen again before the time: not counted twice. */
    CHECK_EQ_INT(0, run(&r, job, pods, T0 + 15));
    CHECK(r.status == NULL && r.create_pod == NULL);
    reconcile_result_dispose(&r);
    /* After the backoff: attempt 2. */
    CHECK_EQ_INT(0, run(&r, job, pods, T0 + 21));
    CHECK_EQ_STR("tj-1-2", sget(r.create_pod, "metadata.name"));
    CHECK_EQ_INT(2, iget(r.status, "attempts"));
    CHECK_EQ_INT(1, iget(r.status, "failures"));
    adopt(job, &r);
    json_t *pod2 = pod_of(r.create_pod, "Failed");
    reconcile_result_dispose(&r);
    /* Attempt 2 preempted: does not count, attempt 3 at once. */
    json_object_set_new(json_object_get(pod2, "status"), "conditions",
                        json_pack("[{s:s,s:s,s:s}]", "type", "DisruptionTarget", "status", "True", "reason",
                                  "PreemptionByScheduler"));
    terminate(pod2, 137, NULL, fin);
    json_array_append(pods, pod2);
    CHECK_EQ_INT(0, run(&r, job, pods, T0 + 30));
    CHECK_EQ_INT(1, iget(r.status, "failures"));
    CHECK_EQ_INT(3, iget(r.status, "attempts"));
    CHECK_EQ_STR("tj-1-3", sget(r.create_pod, "metadata.name"));
    CHECK_EQ_STR("Preempted", event_reason(&r, 0));
    adopt(job, &r);
    json_t *pod3 = pod_of(r.create_pod, "Failed");
    reconcile_result_dispose(&r);
    /* Attempt 3 fails: 2 failures > backoffLimit 1 -> Failed. */
    terminate(pod3, 3, "storage unavailable", fin);
    json_array_append(pods, pod3);
    CHECK_EQ_INT(0, run(&r, job, pods, T0 + 40));
    CHECK_EQ_STR("Failed", sget(r.status, "phase"));
    CHECK_EQ_STR("BackoffLimitExceeded", sget(r.status, "reason"));
    CHECK_EQ_STR("True", cond(r.status, "Failed"));
    CHECK(strstr(sget(r.status, "message"), "storage unavailable") != NULL);
    CHECK(r.create_pod == NULL);
    reconcile_result_dispose(&r);
    json_decref(pod), json_decref(pod2), json_decref(pod3), json_decref(pods), json_decref(created);
    json_decref(job);

    /* Exit code 2 is bad input: Failed at once, no retry. Evicted by status reason also counts as disruption. */
    job = started(NULL, &created);
    pod = pod_of(created, "Failed");
    terminate(pod, 2, "{\"version\":1,\"phase\":\"Failed\",\"reason\":\"BadInput\",\"message\":\"train.csv: row 3: no label\"}", fin);
    pods = json_pack("[O]", pod);
    CHECK_EQ_INT(0, run(&r, job, pods, T0 + 40));
    CHECK_EQ_STR("Failed", sget(r.status, "phase"));
    CHECK_EQ_STR("BadInput", sget(r.status, "reason"));
    CHECK(strstr(sget(r.status, "message"), "row 3: no label") != NULL);
    CHECK(r.create_pod == NULL);
    reconcile_result_dispose(&r);
    json_object_set_new(json_object_get(pod, "status"), "reason", json_string("Evicted"));
    CHECK_EQ_INT(0, run(&r, job, pods, T0 + 40));
    CHECK_EQ_INT(0, iget(r.status, "failures"));
    CHECK_EQ_STR("tj-1-2", sget(r.create_pod, "metadata.name"));
    reconcile_result_dispose(&r);
    json_decref(pod), json_decref(pods), json_decref(created), json_decref(job);
}

static void test_deadline_suspend_ttl(void)
{
    json_t *created, *job = started("{\"activeDeadlineSeconds\":60}", &created);
    CHECK(json_integer_value(json_object_get(json_object_get(created, "spec"), "activeDeadlineSeconds")) >= 60);
    json_t *pods = json_pack("[o]", pod_of(created, "Running"));
    reconcile_result r;
    CHECK_EQ_INT(0, run(&r, job, pods, T0 + 30));
    CHECK_NEAR(30, r.requeue_after, 1, 0);
    adopt(job, &r);
    reconcile_result_dispose(&r);
    CHECK_EQ_INT(0, run(&r, job, pods, T0 + 61));
    CHECK_EQ_STR("Failed", sget(r.status, "phase"));
    CHECK_EQ_STR("DeadlineExceeded", sget(r.status, "reason"));
    CHECK_EQ_INT(1, json_array_size(r.delete_pods));
    CHECK_EQ_STR("tj-1-1", json_string_value(json_array_get(r.delete_pods, 0)));
    reconcile_result_dispose(&r);
    json_decref(pods), json_decref(created), json_decref(job);

    /* Suspend deletes the running Pod; resuming creates a new attempt. Not a new run. */
    job = started(NULL, &created);
    pods = json_pack("[o]", pod_of(created, "Running"));
    json_object_set_new(json_object_get(job, "spec"), "suspend", json_true());
    json_object_set_new(json_object_get(job, "metadata"), "generation", json_integer(2));
    CHECK_EQ_INT(0, run(&r, job, pods, T0 + 5));
    CHECK_EQ_STR("Suspended", sget(r.status, "phase"));
    CHECK_EQ_STR("True", cond(r.status, "Suspended"));
    CHECK_EQ_INT(1, iget(r.status, "currentRun"));
    CHECK_EQ_INT(1, json_array_size(r.delete_pods));
    CHECK_EQ_INT(2, iget(r.status, "observedGeneration"));
    adopt(job, &r);
    reconcile_result_dispose(&r);
    json_object_set_new(json_object_get(job, "spec"), "suspend", json_false());
    json_object_set_new(json_object_get(job, "metadata"), "generation", json_integer(3));
    json_object_set_new(json_object_get(json_array_get(pods, 0), "metadata"), "deletionTimestamp",
                        json_string("2026-01-01T00:00:00Z"));
    CHECK_EQ_INT(0, run(&r, job, pods, T0 + 9));
    CHECK_EQ_STR("False", cond(r.status, "Suspended"));
    CHECK_EQ_INT(1, iget(r.status, "currentRun"));
    CHECK_EQ_STR("tj-1-2", sget(r.create_pod, "metadata.name"));
    CHECK_EQ_INT(0, json_array_size(r.delete_pods)); /* already being deleted */
    reconcile_result_dispose(&r);
    json_decref(pods), json_decref(created), json_decref(job);

    /* TTL after finishing: requeue until it passes, then delete the job. */
    job = started("{\"ttlSecondsAfterFinished\":50}", &created);
    json_t *st = json_object_get(job, "status");
    json_object_set_new(st, "phase", json_string("Succeeded"));
    char ts[32];
    json_object_set_new(st, "completionTime", json_string(kube_time_format(T0 + 100, 0, ts)));
    CHECK_EQ_INT(0, run(&r, job, NULL, T0 + 120));
    CHECK(!r.delete_job);
    CHECK_NEAR(30, r.requeue_after, 0.01, 0);
    reconcile_result_dispose(&r);
    CHECK_EQ_INT(0, run(&r, job, NULL, T0 + 151));
    CHECK(r.delete_job);
    reconcile_result_dispose(&r);
    json_decref(created), json_decref(job);
}

static void test_new_runs(void)
{
    json_t *created, *job = started("{\"runsHistoryLimit\":2}", &created);
    json_t *pods = json_pack("[o]", pod_of(created, "Running"));
    reconcile_result r;
    /* A spec change that matters (epochs) -> run 2; the running Pod of run 1 is deleted. */
    json_object_set_new(json_object_get(job, "spec"), "epochs", json_integer(20));
    json_object_set_new(json_object_get(job, "metadata"), "generation", json_integer(2));
    CHECK_EQ_INT(0, run(&r, job, pods, T0 + 5));
    CHECK_EQ_INT(2, iget(r.status, "currentRun"));
    CHECK_EQ_STR("tj-2-1", sget(r.create_pod, "metadata.name"));
    CHECK(has_arg_pair(r.create_pod, "--epochs", "20"));
    CHECK_EQ_INT(1, json_array_size(r.delete_pods));
    CHECK_EQ_STR("Superseded", sget(r.status, "runs.0.reason"));
    CHECK_EQ_STR("NewRun", event_reason(&r, 0));
    adopt(job, &r);
    reconcile_result_dispose(&r);
    /* A change that does not (backoffLimit) -> same run. */
    json_object_set_new(json_object_get(job, "spec"), "backoffLimit", json_integer(5));
    CHECK_EQ_INT(0, run(&r, job, NULL, T0 + 6));
    CHECK_EQ_INT(2, iget(r.status ? r.status : json_object_get(job, "status"), "currentRun"));
    CHECK(r.create_pod == NULL || !strcmp(sget(r.create_pod, "metadata.name"), "tj-2-1"));
    reconcile_result_dispose(&r);
    /* The retrain annotation -> run 3; history keeps the newest 2. */
    json_object_set_new(json_object_get(job, "metadata"), "annotations", json_pack("{s:s}", "kubefit.dev/retrain", "monday"));
    CHECK_EQ_INT(0, run(&r, job, NULL, T0 + 7));
    CHECK_EQ_INT(3, iget(r.status, "currentRun"));
    CHECK_EQ_STR("monday", sget(r.status, "retrain"));
    CHECK_EQ_INT(2, json_array_size(json_object_get(r.status, "runs")));
    CHECK_EQ_INT(2, iget(json_array_get(json_object_get(r.status, "runs"), 0), "run"));
    CHECK_EQ_STR("tj-3-1", sget(r.create_pod, "metadata.name"));
    reconcile_result_dispose(&r);
    json_decref(pods), json_decref(created), json_decref(job);

    /* A schema that prunes status.specHash: the run's history entry still carries it. */
    job = started(NULL, &created);
    json_object_del(json_object_get(job, "status"), "specHash");
    CHECK_EQ_INT(0, run(&r, job, NULL, T0 + 1));
    CHECK(r.status == NULL || iget(r.status, "currentRun") == 1);
    reconcile_result_dispose(&r);
    json_object_set_new(json_object_get(job, "spec"), "epochs", json_integer(30));
    CHECK_EQ_INT(0, run(&r, job, NULL, T0 + 2));
    CHECK_EQ_INT(2, iget(r.status, "currentRun"));
    reconcile_result_dispose(&r);
    json_decref(created), json_decref(job);
}

static void test_odd_inputs(void)
{
    reconcile_result r;
    /* A stale status (attempts 1) but attempt 2's Pod exists: adopt it, create nothing. */
    json_t *created, *job = started(NULL, &created);
    json_t *p2 = pod_of(created, "Running");
    json_object_set_new(json_object_get(p2, "metadata"), "name", json_string("tj-1-2"));
    json_object_set_new(json_object_get(json_object_get(p2, "metadata"), "labels"), "kubefit.dev/attempt", json_string("2"));
    /* A Pod with our labels but another owner (an older job of the same name) is ignored. */
    json_t *foreign = pod_of(created, "Running");
    json_object_set_new(json_array_get(json_object_get(json_object_get(foreign, "metadata"), "ownerReferences"), 0),
                        "uid", json_string("someone-else"));
    json_object_set_new(json_object_get(json_object_get(foreign, "metadata"), "labels"), "kubefit.dev/attempt", json_string("9"));
    json_t *pods = json_pack("[o,o]", p2, foreign);
    CHECK_EQ_INT(0, run(&r, job, pods, T0 + 5));
    CHECK(r.create_pod == NULL);
    CHECK_EQ_INT(2, iget(r.status, "attempts"));
    CHECK_EQ_STR("tj-1-2", sget(r.status, "podName"));
    CHECK_EQ_STR("Running", sget(r.status, "phase"));
    CHECK_EQ_INT(0, json_array_size(r.delete_pods));
    reconcile_result_dispose(&r);
    json_decref(pods), json_decref(created), json_decref(job);

    /* The API server refused the Pod: Failed/PodRejected with its message, no retry loop. */
    job = job_new(NULL);
    json_t *none = json_array();
    reconcile_input rin = {.job = job, .pods = none, .now = T0, .cfg = &CFG,
                           .pod_error = "POST /api/v1/namespaces/ns/pods: HTTP 422: spec.containers[0].image: Invalid value"};
    CHECK_EQ_INT(0, reconcile(&r, &rin));
    CHECK(r.create_pod == NULL);
    CHECK_EQ_STR("Failed", sget(r.status, "phase"));
    CHECK_EQ_STR("PodRejected", sget(r.status, "reason"));
    CHECK(strstr(sget(r.status, "message"), "image: Invalid value") != NULL);
    CHECK_EQ_STR("True", cond(r.status, "Failed"));
    reconcile_result_dispose(&r);
    json_decref(none), json_decref(job);

    /* Missing required fields: Failed with a clear message, no Pod. */
    job = job_new(NULL);
    json_object_del(json_object_get(job, "spec"), "language");
    CHECK_EQ_INT(0, run(&r, job, NULL, T0));
    CHECK_EQ_STR("Failed", sget(r.status, "phase"));
    CHECK_EQ_STR("spec.language is required", sget(r.status, "message"));
    CHECK(r.create_pod == NULL);
    reconcile_result_dispose(&r);
    json_decref(job);

    /* Being deleted: nothing. No metadata: KF_EINVAL, no crash. */
    job = job_new(NULL);
    json_object_set_new(json_object_get(job, "metadata"), "deletionTimestamp", json_string("2026-01-01T00:00:00Z"));
    CHECK_EQ_INT(0, run(&r, job, NULL, T0));
    CHECK(r.status == NULL && r.create_pod == NULL);
    reconcile_result_dispose(&r);
    json_decref(job);
    job = json_pack("{s:{}}", "spec");
    CHECK(run(&r, job, NULL, T0) < 0);
    reconcile_result_dispose(&r);
    json_decref(job);

    /* The run hash ignores suspend/TTL/backoff, not epochs. */
    json_t *a = json_pack("{s:s,s:i,s:b}", "language", "fr", "epochs", 3, "suspend", 1);
    json_t *b = json_pack("{s:i,s:s,s:i}", "epochs", 3, "language", "fr", "ttlSecondsAfterFinished", 9);
    json_t *d = json_pack("{s:i,s:s}", "epochs", 4, "language", "fr");
    char *ha = reconcile_spec_hash(a), *hb = reconcile_spec_hash(b), *hd = reconcile_spec_hash(d);
    CHECK_EQ_STR(ha, hb);
    CHECK(strcmp(ha, hd) != 0);
    free(ha), free(hb), free(hd);
    json_decref(a), json_decref(b), json_decref(d);
}

static void test_schedule(void)
{
    reconcile_result r;
    char ts[32];
    /* Run 1 succeeded; an hourly schedule's tick has passed -> run 2, lastScheduleTime = the tick. */
    json_t *created, *job = started("{\"schedule\":\"0 * * * *\",\"learningRate\":0.02}", &created);
    CHECK(has_arg_pair(created, "--lr", "0.02"));
    json_object_set_new(json_object_get(job, "metadata"), "creationTimestamp", json_string(kube_time_format(T0, 0, ts)));
    json_object_set_new(json_object_get(job, "status"), "phase", json_string("Succeeded"));
    double tick = floor(T0 / 3600) * 3600 + 3600;
    CHECK_EQ_INT(0, run(&r, job, NULL, tick - 10));
    CHECK(r.status == NULL || iget(r.status, "currentRun") == 1);
    CHECK_NEAR(10, r.requeue_after, 0.01, 0);
    reconcile_result_dispose(&r);
    CHECK_EQ_INT(0, run(&r, job, NULL, tick + 30));
    CHECK_EQ_INT(2, iget(r.status, "currentRun"));
    CHECK_EQ_STR(kube_time_format(tick, 0, ts), sget(r.status, "lastScheduleTime"));
    CHECK_EQ_STR("tj-2-1", sget(r.create_pod, "metadata.name"));
    CHECK_NEAR(3570, r.requeue_after, 0.01, 0);
    adopt(job, &r);
    json_t *pods = json_pack("[o]", pod_of(r.create_pod, "Running"));
    reconcile_result_dispose(&r);
    /* Next tick while run 2 is active: Forbid (the default) skips it. */
    CHECK_EQ_INT(0, run(&r, job, pods, tick + 3600 + 5));
    CHECK_EQ_INT(2, iget(r.status, "currentRun"));
    CHECK_EQ_STR(kube_time_format(tick + 3600, 0, ts), sget(r.status, "lastScheduleTime"));
    CHECK_EQ_STR("ScheduleSkipped", event_reason(&r, 0));
    CHECK(r.create_pod == NULL);
    reconcile_result_dispose(&r);
    /* Replace: the active run is superseded. Missed ticks collapse into the latest. */
    json_object_set_new(json_object_get(job, "spec"), "concurrencyPolicy", json_string("Replace"));
    CHECK_EQ_INT(0, run(&r, job, pods, tick + 5 * 3600 + 5));
    CHECK_EQ_INT(3, iget(r.status, "currentRun"));
    CHECK_EQ_STR(kube_time_format(tick + 5 * 3600, 0, ts), sget(r.status, "lastScheduleTime"));
    CHECK_EQ_INT(1, json_array_size(r.delete_pods));
    CHECK_EQ_STR("tj-3-1", sget(r.create_pod, "metadata.name"));
    reconcile_result_dispose(&r);
    /* A schedule the parser refuses fails the job at once (no silent "first run only"). */
    json_object_set_new(json_object_get(job, "spec"), "schedule", json_string("61 * * * *"));
    CHECK_EQ_INT(0, run(&r, job, pods, tick + 5 * 3600 + 5));
    CHECK_EQ_STR("Failed", sget(r.status, "phase"));
    CHECK_EQ_STR("InvalidSpec", sget(r.status, "reason"));
    CHECK(strstr(sget(r.status, "message"), "spec.schedule: cron: bad minute field \"61\"") != NULL);
    CHECK_EQ_STR("InvalidSpec", event_reason(&r, 0));
    CHECK_EQ_INT(1, json_array_size(r.delete_pods)); /* run 2's Pod */
    CHECK(r.create_pod == NULL);
    adopt(job, &r);
    reconcile_result_dispose(&r);
    CHECK_EQ_INT(0, run(&r, job, pods, tick + 5 * 3600 + 6));
    CHECK_EQ_INT(0, json_array_size(r.events)); /* reported once */
    reconcile_result_dispose(&r);
    /* A schedule that can never fire (31 February) is refused the same way. */
    json_object_set_new(json_object_get(job, "spec"), "schedule", json_string("0 3 31 2 *"));
    CHECK_EQ_INT(0, run(&r, job, NULL, tick + 5 * 3600 + 7));
    CHECK(strstr(sget(r.status, "message"), "spec.schedule: \"0 3 31 2 *\" never fires") != NULL);
    CHECK_EQ_STR("InvalidSpec", event_reason(&r, 0));
    adopt(job, &r);
    reconcile_result_dispose(&r);
    /* Fixed: a new run starts at once (the failed spec's hash was forgotten). */
    json_object_set_new(json_object_get(job, "spec"), "schedule", json_string("0 * * * *"));
    CHECK_EQ_INT(0, run(&r, job, NULL, tick + 5 * 3600 + 8));
    CHECK_EQ_STR("Pending", sget(r.status, "phase"));
    CHECK(r.create_pod != NULL);
    reconcile_result_dispose(&r);
    json_decref(pods), json_decref(created), json_decref(job);

    /* startingDeadlineSeconds: a tick found later than that is skipped, with an Event. */
    job = started("{\"schedule\":\"0 * * * *\",\"startingDeadlineSeconds\":60}", &created);
    json_object_set_new(json_object_get(job, "metadata"), "creationTimestamp", json_string(kube_time_format(T0, 0, ts)));
    json_object_set_new(json_object_get(job, "status"), "phase", json_string("Succeeded"));
    CHECK_EQ_INT(0, run(&r, job, NULL, tick + 61));
    CHECK_EQ_INT(1, iget(r.status, "currentRun"));
    CHECK_EQ_STR("ScheduleMissed", event_reason(&r, 0));
    CHECK_EQ_STR(kube_time_format(tick, 0, ts), sget(r.status, "lastScheduleTime"));
    reconcile_result_dispose(&r);
    CHECK_EQ_INT(0, run(&r, job, NULL, tick + 59));
    CHECK_EQ_INT(2, iget(r.status, "currentRun"));
    reconcile_result_dispose(&r);
    json_decref(created), json_decref(job);
}

/* A new Pod costs one status write: the Pod showing up Pending changes nothing; a Pod that
 * recovers from a waiting reason goes back to PodPending. */
static void test_one_status_write(void)
{
    json_t *created, *job = started(NULL, &created);
    reconcile_result r;
    CHECK_EQ_STR("PodCreated", sget(json_object_get(job, "status"), "reason"));
    json_t *pods = json_pack("[o]", pod_of(created, "Pending"));
    CHECK_EQ_INT(0, run(&r, job, pods, T0 + 1));
    CHECK(r.status == NULL && r.create_pod == NULL && json_array_size(r.events) == 0);
    reconcile_result_dispose(&r);
    json_decref(pods);
    json_t *pod = pod_of(created, "Pending");
    json_object_set_new(json_object_get(pod, "status"), "containerStatuses",
                        json_pack("[{s:s,s:{s:{s:s}}}]", "name", "trainer", "state", "waiting", "reason", "ErrImagePull"));
    pods = json_pack("[O]", pod);
    CHECK_EQ_INT(0, run(&r, job, pods, T0 + 2));
    CHECK_EQ_STR("ErrImagePull", sget(r.status, "reason"));
    adopt(job, &r);
    reconcile_result_dispose(&r);
    json_decref(pods);
    json_object_set_new(json_object_get(pod, "status"), "containerStatuses", json_array());
    pods = json_pack("[O]", pod);
    CHECK_EQ_INT(0, run(&r, job, pods, T0 + 3));
    CHECK_EQ_STR("PodPending", sget(r.status, "reason"));
    CHECK_EQ_STR("Pending", cond_field(r.status, "Running", "reason"));
    reconcile_result_dispose(&r);
    json_decref(pods), json_decref(pod), json_decref(created), json_decref(job);
}

/* Specs the trainer could not honour fail at once with InvalidSpec naming the field; no Pod. */
static void test_invalid_specs(void)
{
    struct {
        const char *spec, *message;
    } cases[] = {
        {"{\"batchSize\":1}", "spec.batchSize: expected an integer in [2, 4096], got \"1\""},
        {"{\"learningRate\":{}}", "spec.learningRate: expected a number or a numeric string, got an object"},
        {"{\"learningRate\":true}", "spec.learningRate: expected a number or a numeric string, got a boolean"},
        {"{\"learningRate\":\"1e-13\"}", "spec.learningRate: expected a number in [1e-12, 100]"},
        {"{\"lmLearningRate\":500}", "spec.lmLearningRate: expected a number in [1e-12, 100]"},
        {"{\"language\":\"pt-br\"}", "spec.language: language \"pt-br\" must be"},
        {"{\"model\":{\"embSize\":4096}}", "spec.model.embSize: expected an integer in [1, 2048]"},
        {"{\"stages\":[]}", "spec.stages: expected a non-empty list of strings, got a list"},
        {"{\"labels\":{\"threshold\":1}}", "spec.labels.threshold: expected a number in (0, 1)"},
        {"{\"storage\":{\"bucket\":\"gs://my-google-bucket\"}}", "spec.storage.bucket: bucket name"},
        {"{\"storage\":{\"bucket\":\"192.168.1.1\"}}", "may not be an IP address"},
        {"{\"resources\":{\"gpus\":2}}", "spec.resources.gpus: 2 GPUs requested"},
        {"{\"args\":[\"--result-file\",\"/tmp/x\"]}", "spec.args[0]: --result-file is set by the controller"},
        {"{\"args\":[\"--lr=0.1\"]}", "spec.args[0]: --lr is set by the controller from spec.learningRate"},
        {"{\"args\":[\"--bptt\",\"0\"]}", "spec.args: --bptt: expected an integer in [1, 4096], got \"0\""},
        {"{\"args\":[\"--warp\",\"9\"]}", "spec.args: unknown option '--warp'"},
        {"{\"args\":[\"--seed\",\"1\",\"--seed\",\"2\"]}", "spec.args: --seed given twice"},
        {"{\"args\":[\"--help\"]}", "spec.args: --help does not train"},
        {"{\"schedule\":\"@daily\",\"timeZone\":\"Mars/Olympus\"}",
         "spec.timeZone: time zone \"Mars/Olympus\" is not in the zone database"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *job = job_new(cases[i].spec);
        reconcile_result r;
        CHECK_EQ_INT(0, run(&r, job, NULL, T0));
        const char *msg = sget(r.status, "message");
        if (!msg || !strstr(msg, cases[i].message))
            TEST_FAIL_("%s: expected a message with \"%s\", got \"%s\"", cases[i].spec, cases[i].message,
                       msg ? msg : "(null)");
        CHECK_EQ_STR("Failed", sget(r.status, "phase"));
        CHECK_EQ_STR("InvalidSpec", sget(r.status, "reason"));
        CHECK_EQ_STR("True", cond(r.status, "Failed"));
        CHECK(r.create_pod == NULL);
        CHECK_EQ_STR("InvalidSpec", event_reason(&r, 0));
        reconcile_result_dispose(&r);
        json_decref(job);
    }
    /* A custom command may take other flags; the controller-owned ones stay refused. Its image
     * keeps a writable root (only kubefit-trainer is known to write nowhere but /tmp). */
    json_t *job = job_new("{\"image\":\"my/img:1\",\"command\":[\"python\",\"train.py\"],\"args\":[\"--warp\",\"9\"]}");
    reconcile_result r;
    CHECK_EQ_INT(0, run(&r, job, NULL, T0));
    CHECK(r.create_pod != NULL);
    CHECK_EQ_INT(1, arg_count(r.create_pod, "--warp"));
    CHECK(!json_object_get(json_object_get(json_array_get(json_object_get(json_object_get(r.create_pod, "spec"),
                                                                          "containers"), 0), "securityContext"),
                           "readOnlyRootFilesystem"));
    reconcile_result_dispose(&r);
    json_decref(job);
    /* gpus 0: the trainer is told to use the CPU. */
    job = job_new("{\"resources\":{\"gpus\":0}}");
    CHECK_EQ_INT(0, run(&r, job, NULL, T0));
    CHECK(has_arg_pair(r.create_pod, "--device", "cpu"));
    reconcile_result_dispose(&r);
    json_decref(job);
    /* An activeDeadlineSeconds past int32 is capped, never overflowed into a negative deadline. */
    job = job_new("{\"activeDeadlineSeconds\":9223372036854775807}");
    CHECK_EQ_INT(0, run(&r, job, NULL, T0));
    json_t *ads = json_object_get(json_object_get(r.create_pod, "spec"), "activeDeadlineSeconds");
    CHECK(json_is_integer(ads) && json_integer_value(ads) == 2147483648LL);
    reconcile_result_dispose(&r);
    json_decref(job);
}

/* A container that cannot start: surfaced at once (condition + Event), failed after the pod start
 * timeout, or at once when no wait can fix it. */
static void test_stuck_pods(void)
{
    json_t *created, *job = started(NULL, &created);
    reconcile_result r;
    char ts[32];
    json_t *pod = pod_of(created, "Pending");
    json_object_set_new(json_object_get(pod, "metadata"), "creationTimestamp", json_string(kube_time_format(T0, 0, ts)));
    json_object_set_new(json_object_get(pod, "status"), "containerStatuses",
                        json_pack("[{s:s,s:{s:{s:s,s:s}}}]", "name", "trainer", "state", "waiting", "reason",
                                  "ImagePullBackOff", "message", "Back-off pulling image \"img:1\""));
    json_t *pods = json_pack("[O]", pod);
    CHECK_EQ_INT(0, run(&r, job, pods, T0 + 20));
    CHECK_EQ_STR("Pending", sget(r.status, "phase"));
    CHECK_EQ_STR("ImagePullBackOff", sget(r.status, "reason"));
    CHECK(strstr(sget(r.status, "message"), "Back-off pulling image") != NULL);
    CHECK_EQ_STR("ImagePullBackOff", event_reason(&r, 0));
    CHECK_NEAR(280, r.requeue_after, 0.01, 0);
    adopt(job, &r);
    reconcile_result_dispose(&r);
    CHECK_EQ_INT(0, run(&r, job, pods, T0 + 40));
    CHECK_EQ_INT(0, json_array_size(r.events)); /* said once */
    reconcile_result_dispose(&r);
    CHECK_EQ_INT(0, run(&r, job, pods, T0 + 301));
    CHECK_EQ_STR("Failed", sget(r.status, "phase"));
    CHECK_EQ_STR("ImagePullBackOff", sget(r.status, "reason"));
    CHECK_EQ_STR("True", cond(r.status, "Failed"));
    CHECK_EQ_STR("tj-1-1", sget(r.delete_pods, "0"));
    reconcile_result_dispose(&r);
    json_decref(pods);
    /* InvalidImageName never heals: failed at once. */
    json_object_set_new(json_object_get(pod, "status"), "containerStatuses",
                        json_pack("[{s:s,s:{s:{s:s,s:s}}}]", "name", "trainer", "state", "waiting", "reason",
                                  "InvalidImageName", "message", "Failed to apply default image tag"));
    pods = json_pack("[O]", pod);
    CHECK_EQ_INT(0, run(&r, job, pods, T0 + 5));
    CHECK_EQ_STR("Failed", sget(r.status, "phase"));
    CHECK_EQ_STR("InvalidImageName", sget(r.status, "reason"));
    reconcile_result_dispose(&r);
    json_decref(pods);
    /* Unschedulable: the scheduler's message is shown; the job keeps waiting (autoscaling). */
    json_object_set_new(json_object_get(pod, "status"), "containerStatuses", json_array());
    json_object_set_new(json_object_get(pod, "status"), "conditions",
                        json_pack("[{s:s,s:s,s:s,s:s}]", "type", "PodScheduled", "status", "False", "reason",
                                  "Unschedulable", "message", "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."));
    pods = json_pack("[O]", pod);
    CHECK_EQ_INT(0, run(&r, job, pods, T0 + 1000));
    CHECK_EQ_STR("Pending", sget(r.status, "phase"));
    CHECK_EQ_STR("Unschedulable", sget(r.status, "reason"));
    CHECK(strstr(sget(r.status, "message"), "Insufficient nvidia.com/gpu") != NULL);
    reconcile_result_dispose(&r);
    json_decref(pods), json_decref(pod), json_decref(created), json_decref(job);
}

/* A spec with every field set: each reaches the trainer as its flag, exactly once; defaults stay out. */
static void test_every_field_wired(void)
{
    json_t *job = job_new(
        "{\"epochs\":7,\"batchSize\":48,\"learningRate\":0.03,\"lmLearningRate\":\"4e-3\","
        "\"stages\":[\"pretrain\",\"finetune-lm\"],\"model\":{\"embSize\":32,\"hiddenSize\":64,\"layers\":2},"
        "\"labels\":{\"mode\":\"single\",\"threshold\":0.35},"
        "\"storage\":{\"bucket\":\"gs://bkt\",\"modelDir\":\"out/x\",\"pretrainedURI\":\"gs://p/lm.safetensors\","
        "\"vocabURI\":\"gs://p/vocab.txt\",\"trainURI\":\"file:///d/t.csv\",\"validURI\":\"gs://v/v.csv\","
        "\"corpusURI\":\"gs://c/c.txt\"}}");
    reconcile_result r;
    CHECK_EQ_INT(0, run(&r, job, NULL, T0));
    const json_t *pod = r.create_pod;
    CHECK(pod != NULL);
    const char *want[][2] = {
        {"--lang", "fr"}, {"--epochs", "7"}, {"--bucket-name", "gs://bkt"}, {"--model-dir", "out/x"},
        {"--job", "tj"}, {"--run", "1"}, {"--batch-size", "48"}, {"--lr", "0.03"}, {"--lm-lr", "0.004"},
        {"--emb-size", "32"}, {"--hidden-size", "64"}, {"--layers", "2"}, {"--stages", "pretrain,finetune-lm"},
        {"--label-mode", "single"}, {"--threshold", "0.35"}, {"--pretrained-uri", "gs://p/lm.safetensors"},
        {"--vocab-uri", "gs://p/vocab.txt"}, {"--train-uri", "file:///d/t.csv"}, {"--valid-uri", "gs://v/v.csv"},
        {"--corpus-uri", "gs://c/c.txt"}, {"--result-file", "/dev/termination-log"}};
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        if (!has_arg_pair(pod, want[k][0], want[k][1]))
            fprintf(stderr, "missing %s %s\n", want[k][0], want[k][1]);
        CHECK(has_arg_pair(pod, want[k][0], want[k][1]));
        CHECK_EQ_INT(1, arg_count(pod, want[k][0]));
    }
    reconcile_result_dispose(&r);
    json_decref(job);

    /* Defaults written out by the API server are passed like any value; an empty URI is unset. */
    job = job_new("{\"stages\":[\"finetune-lm\",\"classifier\"],\"labels\":{\"mode\":\"multi\",\"threshold\":0.5},"
                  "\"storage\":{\"bucket\":\"gs://bkt\",\"trainURI\":\"\"}}");
    CHECK_EQ_INT(0, run(&r, job, NULL, T0));
    CHECK(r.create_pod != NULL);
    CHECK(has_arg_pair(r.create_pod, "--stages", "finetune-lm,classifier"));
    CHECK(has_arg_pair(r.create_pod, "--threshold", "0.5"));
    CHECK_EQ_INT(0, arg_count(r.create_pod, "--train-uri"));
    CHECK(has_arg_pair(r.create_pod, "--label-mode", "multi"));
    reconcile_result_dispose(&r);
    json_decref(job);
    /* The classifier alone is not the default either. */
    job = job_new("{\"stages\":[\"classifier\"]}");
    CHECK_EQ_INT(0, run(&r, job, NULL, T0));
    CHECK(has_arg_pair(r.create_pod, "--stages", "classifier"));
    reconcile_result_dispose(&r);
    json_decref(job);
}

int main(void)
{
    test_schedule();
    test_first_visit_and_pod();
    test_running_and_success();
    test_failures_and_retries();
    test_deadline_suspend_ttl();
    test_new_runs();
    test_odd_inputs();
    test_every_field_wired();
    test_invalid_specs();
    test_stuck_pods();
    test_one_status_write();
    return test_done();
}
