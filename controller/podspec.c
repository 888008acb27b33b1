/* podspec: the Pod one attempt of a TrainingJob run needs (part of reconcile). */
#include "reconcile.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_IMAGE "ghcr.io/kubefit/kubefit-trainer:latest"
#define TERMINATION_LOG "/dev/termination-log"

/* Spec fields that do not change what a run computes. */
static const char *const NON_RUN_FIELDS[] = {
    "suspend", "ttlSecondsAfterFinished", "backoffLimit", "activeDeadlineSeconds",
    "runsHistoryLimit", "schedule", "concurrencyPolicy", NULL,
};

char *reconcile_spec_hash(const json_t *spec)
{
    json_t *copy = json_is_object(spec) ? json_deep_copy(spec) : json_object();
    if (!copy)
        return NULL;
    for (const char *const *f = NON_RUN_FIELDS; *f; f++)
        json_object_del(copy, *f);
    char *text = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(copy);
    if (!text)
        return NULL;
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    free(text);
    char *out = NULL;
    if (asprintf(&out, "%016" PRIx64, h) < 0)
        return NULL;
    return out;
}

/* A spec scalar (string or number) as text, or NULL. Caller frees. */
static char *scalar_text(const json_t *v)
{
    char *s = NULL;
    if (json_is_string(v))
        return strdup(json_string_value(v));
    if (json_is_integer(v))
        return asprintf(&s, "%" JSON_INTEGER_FORMAT, json_integer_value(v)) < 0 ? NULL : s;
    if (json_is_real(v)) {
        /* The shortest text that reads back as the same double (0.02, not 0.020000000000000000). */
        double d = json_real_value(v);
        for (int prec = 6; prec <= 17; prec++) {
            free(s);
            if (asprintf(&s, "%.*g", prec, d) < 0)
                return NULL;
            if (strtod(s, NULL) == d)
                break;
        }
        return s;
    }
    return NULL;
}

static void add_flag(json_t *args, const char *flag, const json_t *v)
{
    char *t = scalar_text(v);
    if (!t)
        return;
    json_array_append_new(args, json_string(flag));
    json_array_append_new(args, json_string(t));
    free(t);
}

/* --stages when spec.stages is set and is not the default [finetune-lm, classifier]. */
static void add_stages(json_t *args, const json_t *stages)
{
    size_t i, len = 0;
    json_t *v;
    char *list = NULL;
    if (!json_is_array(stages) || !json_array_size(stages))
        return;
    json_array_foreach(stages, i, v) {
        if (!json_is_string(v))
            return;
        len += json_string_length(v) + 1;
    }
    if (json_array_size(stages) == 2 && !strcmp(json_string_value(json_array_get(stages, 0)), "finetune-lm") &&
        !strcmp(json_string_value(json_array_get(stages, 1)), "classifier"))
        return;
    if (!(list = calloc(len + 1, 1)))
        return;
    json_array_foreach(stages, i, v) {
        if (i)
            strcat(list, ",");
        strcat(list, json_string_value(v));
    }
    json_array_append_new(args, json_string("--stages"));
    json_array_append_new(args, json_string(list));
    free(list);
}

static json_t *build_args(const json_t *job, int run, const reconcile_config *cfg)
{
    const json_t *meta = json_object_get(job, "metadata"), *spec = json_object_get(job, "spec");
    const json_t *storage = json_object_get(spec, "storage"), *model = json_object_get(spec, "model");
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    const char *name = json_string_value(json_object_get(meta, "name"));
    json_t *args = json_array(), *runv = json_integer(run);
    json_t *epochs = json_object_get(spec, "epochs"), *model_dir = json_object_get(storage, "modelDir");
    json_array_append_new(args, json_string("train"));
    add_flag(args, "--lang", json_object_get(spec, "language"));
    json_t *dflt_epochs = json_integer(10), *dflt_dir = json_string("models");
    add_flag(args, "--epochs", epochs ? epochs : dflt_epochs);
    add_flag(args, "--bucket-name", json_object_get(storage, "bucket"));
    add_flag(args, "--model-dir", model_dir ? model_dir : dflt_dir);
    json_decref(dflt_epochs);
    json_decref(dflt_dir);
    add_flag(args, "--job", json_object_get(meta, "name"));
    add_flag(args, "--run", runv);
    json_decref(runv);
    add_flag(args, "--batch-size", json_object_get(spec, "batchSize"));
    add_flag(args, "--lr", json_object_get(spec, "learningRate"));
    add_flag(args, "--lm-lr", json_object_get(spec, "lmLearningRate"));
    add_flag(args, "--emb-size", json_object_get(model, "embSize"));
    add_flag(args, "--hidden-size", json_object_get(model, "hiddenSize"));
    add_flag(args, "--layers", json_object_get(model, "layers"));
    add_stages(args, json_object_get(spec, "stages"));
    /* labels.mode is passed whenever set (the CRD defaults it to auto, which is also the
     * trainer's default: inferred from the data); the threshold only when it is not 0.5. */
    const json_t *labels = json_object_get(spec, "labels"), *thr = json_object_get(labels, "threshold");
    if (json_is_string(json_object_get(labels, "mode")))
        add_flag(args, "--label-mode", json_object_get(labels, "mode"));
    if (json_is_number(thr) && json_number_value(thr) != 0.5)
        add_flag(args, "--threshold", thr);
    static const char *const uris[][2] = {{"pretrainedURI", "--pretrained-uri"}, {"vocabURI", "--vocab-uri"},
                                          {"trainURI", "--train-uri"},           {"validURI", "--valid-uri"},
                                          {"corpusURI", "--corpus-uri"}};
    for (size_t k = 0; k < sizeof uris / sizeof uris[0]; k++) {
        const json_t *u = json_object_get(storage, uris[k][0]);
        if (json_is_string(u) && json_string_length(u))
            add_flag(args, uris[k][1], u);
    }
    json_array_append_new(args, json_string("--result-file"));
    json_array_append_new(args, json_string(TERMINATION_LOG));
    if (cfg->progress_base_url && *cfg->progress_base_url && ns && name) {
        char *url = NULL;
        if (asprintf(&url, "%s/progress/%s/%s/%d", cfg->progress_base_url, ns, name, run) >= 0) {
            json_array_append_new(args, json_string("--progress-url"));
            json_array_append_new(args, json_string(url));
            free(url);
        }
    }
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(spec, "args"), i, a) {
        if (json_is_string(a))
            json_array_append(args, a);
    }
    return args;
}

static json_t *build_env(const json_t *job, int run, int attempt)
{
    const json_t *meta = json_object_get(job, "metadata"), *spec = json_object_get(job, "spec");
    json_t *env = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(spec, "env"), i, e) {
        const char *value = json_string_value(json_object_get(e, "value"));
        if (json_is_string(json_object_get(e, "name")))
            json_array_append_new(env, json_pack("{s:O,s:s}", "name", json_object_get(e, "name"), "value",
                                                 value ? value : ""));
    }
    json_array_append_new(env, json_pack("{s:s,s:O}", "name", "KUBEFIT_JOB", "value", json_object_get(meta, "name")));
    json_array_append_new(env, json_pack("{s:s,s:O}", "name", "KUBEFIT_NAMESPACE", "value",
                                         json_object_get(meta, "namespace")));
    char buf[32];
    snprintf(buf, sizeof buf, "%d", run);
    json_array_append_new(env, json_pack("{s:s,s:s}", "name", "KUBEFIT_RUN", "value", buf));
    snprintf(buf, sizeof buf, "%d", attempt);
    json_array_append_new(env, json_pack("{s:s,s:s}", "name", "KUBEFIT_ATTEMPT", "value", buf));
    return env;
}

static json_t *build_resources(const json_t *res)
{
    json_t *limits = json_object(), *requests = json_object();
    json_int_t gpus = json_is_integer(json_object_get(res, "gpus")) ? json_integer_value(json_object_get(res, "gpus")) : 1;
    if (gpus > 0) {
        char buf[32];
        snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, gpus);
        json_object_set_new(limits, "nvidia.com/gpu", json_string(buf));
    }
    const char *keys[] = {"cpu", "memory"};
    for (int k = 0; k < 2; k++) {
        char *v = scalar_text(json_object_get(res, keys[k]));
        if (v) {
            json_object_set_new(requests, keys[k], json_string(v));
            json_object_set_new(limits, keys[k], json_string(v));
            free(v);
        }
    }
    json_t *out = json_object();
    if (json_object_size(limits))
        json_object_set(out, "limits", limits);
    if (json_object_size(requests))
        json_object_set(out, "requests", requests);
    json_decref(limits);
    json_decref(requests);
    return out;
}

json_t *reconcile_build_pod(const json_t *job, int run, int attempt, const reconcile_config *cfg,
                            double deadline_left_s)
{
    const json_t *meta = json_object_get(job, "metadata"), *spec = json_object_get(job, "spec");
    const json_t *res = json_object_get(spec, "resources");
    const char *name = json_string_value(json_object_get(meta, "name"));
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    const char *uid = json_string_value(json_object_get(meta, "uid"));
    if (!name || !ns || !uid)
        return NULL;
    char *pod_name = NULL, run_s[24], att_s[24];
    if (asprintf(&pod_name, "%s-%d-%d", name, run, attempt) < 0)
        return NULL;
    snprintf(run_s, sizeof run_s, "%d", run);
    snprintf(att_s, sizeof att_s, "%d", attempt);
    const char *image = json_string_value(json_object_get(spec, "image"));
    if (!image || !*image)
        image = cfg->default_image ? cfg->default_image : DEFAULT_IMAGE;

    json_t *container = json_pack(
        "{s:s,s:s,s:o,s:o,s:o,s:s,s:s,s:{s:b,s:{s:[s]},s:b,s:{s:s}}}", "name", RECONCILE_CONTAINER, "image", image,
        "args", build_args(job, run, cfg), "env", build_env(job, run, attempt), "resources", build_resources(res),
        "terminationMessagePath", TERMINATION_LOG, "terminationMessagePolicy", "FallbackToLogsOnError",
        "securityContext", "allowPrivilegeEscalation", 0, "capabilities", "drop", "ALL", "runAsNonRoot", 1,
        "seccompProfile", "type", "RuntimeDefault");
    const json_t *command = json_object_get(spec, "command");
    if (json_is_array(command) && json_array_size(command))
        json_object_set(container, "command", (json_t *)command);
    else
        json_object_set_new(container, "command", json_pack("[s]", "kubefit-trainer"));

    json_t *pod_spec = json_pack("{s:s,s:[o],s:{s:b,s:i,s:i,s:{s:s}}}", "restartPolicy", "Never", "containers",
                                 container, "securityContext", "runAsNonRoot", 1, "runAsUser", 65532, "fsGroup",
                                 65532, "seccompProfile", "type", "RuntimeDefault");
    const char *sa = json_string_value(json_object_get(spec, "serviceAccountName"));
    if (sa && *sa)
        json_object_set_new(pod_spec, "serviceAccountName", json_string(sa));
    json_t *selector = json_object(), *tolerations = json_array();
    const char *accel = json_string_value(json_object_get(res, "acceleratorType"));
    if (accel && *accel)
        json_object_set_new(selector, "cloud.google.com/gke-accelerator", json_string(accel));
    json_t *gpus = json_object_get(res, "gpus");
    if (!json_is_integer(gpus) || json_integer_value(gpus) > 0)
        json_array_append_new(tolerations, json_pack("{s:s,s:s,s:s}", "key", "nvidia.com/gpu", "operator", "Exists",
                                                     "effect", "NoSchedule"));
    if (json_is_true(json_object_get(res, "spot"))) {
        json_object_set_new(selector, "cloud.google.com/gke-spot", json_string("true"));
        json_array_append_new(tolerations, json_pack("{s:s,s:s,s:s,s:s}", "key", "cloud.google.com/gke-spot",
                                                     "operator", "Equal", "value", "true", "effect", "NoSchedule"));
    }
    if (json_object_size(selector))
        json_object_set(pod_spec, "nodeSelector", selector);
    if (json_array_size(tolerations))
        json_object_set(pod_spec, "tolerations", tolerations);
    json_decref(selector);
    json_decref(tolerations);
    if (deadline_left_s > 0)
        json_object_set_new(pod_spec, "activeDeadlineSeconds", json_integer((json_int_t)deadline_left_s + 1));

    json_t *pod = json_pack(
        "{s:s,s:s,s:{s:s,s:s,s:{s:s,s:s,s:s,s:s,s:s},s:[{s:s,s:s,s:s,s:s,s:b,s:b}]},s:o}", "apiVersion", "v1",
        "kind", "Pod", "metadata", "name", pod_name, "namespace", ns, "labels", RECONCILE_LABEL_MANAGED, "kubefit",
        "app.kubernetes.io/name", "kubefit-trainer", RECONCILE_LABEL_JOB, name, RECONCILE_LABEL_RUN, run_s,
        RECONCILE_LABEL_ATTEMPT, att_s, "ownerReferences", "apiVersion", "kubefit.dev/v1alpha1", "kind",
        "TrainingJob", "name", name, "uid", uid, "controller", 1, "blockOwnerDeletion", 1, "spec", pod_spec);
    free(pod_name);
    return pod;
}
