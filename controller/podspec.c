/* podspec: the Pod one attempt of a TrainingJob run needs (part of reconcile). See podspec.h. */
#include "podspec.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cron.h"
#include "err.h"

#define DEFAULT_IMAGE "ghcr.io/kubefit/kubefit-trainer:latest"
/* Pod activeDeadlineSeconds is int64, but the CRD caps the job's at int32 like batch/v1 Job. */
#define DEADLINE_MAX 2147483647.0
#define PROGRESS_TOKEN_VOLUME "kubefit-progress-token"
#define SCRATCH_VOLUME "tmp"

/* Spec fields that do not change what a run computes. */
static const char *const NON_RUN_FIELDS[] = {
    "suspend", "ttlSecondsAfterFinished", "backoffLimit", "activeDeadlineSeconds",
    "runsHistoryLimit", "schedule", "concurrencyPolicy", "serving", NULL,
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

/* The value at a dotted path below the job ("spec.model.embSize"), or NULL. */
static const json_t *field_at(const json_t *job, const char *path)
{
    const json_t *v = job;
    char key[64];
    while (v && *path) {
        size_t n = strcspn(path, ".");
        if (n >= sizeof key)
            return NULL;
        memcpy(key, path, n);
        key[n] = 0;
        v = json_object_get(v, key);
        path += n + (path[n] == '.');
    }
    return json_is_null(v) ? NULL : v;
}

static const char *kind_name(const json_t *v)
{
    return json_is_object(v) ? "an object" : json_is_array(v) ? "a list" : json_is_boolean(v) ? "a boolean"
         : json_is_string(v) ? "a string" : "a number";
}

/* One spec field as the text of flag f: text (caller frees) or NULL when unset (empty strings
 * count as unset). KF_EINVAL when the field has the wrong JSON type for the flag. */
static int field_text(char **out, const json_t *v, const contract_flag *f)
{
    *out = NULL;
    if (!v || (json_is_string(v) && !json_string_length(v)))
        return 0;
    int ok = 0;
    switch (f->kind) {
    case CONTRACT_INT:
        ok = json_is_integer(v);
        break;
    case CONTRACT_NUMBER:
        ok = json_is_number(v) || json_is_string(v);
        break;
    case CONTRACT_LIST: {
        size_t i, len = 0;
        json_t *x;
        ok = json_is_array(v) && json_array_size(v) > 0;
        json_array_foreach(v, i, x) {
            ok = ok && json_is_string(x) && json_string_length(x);
            len += json_string_length(x) + 1;
        }
        if (!ok)
            break;
        char *list = calloc(len + 1, 1);
        if (!list)
            return err_set(KF_ENOMEM, "out of memory");
        json_array_foreach(v, i, x) {
            if (i)
                strcat(list, ",");
            strcat(list, json_string_value(x));
        }
        *out = list;
        return 0;
    }
    default:
        ok = json_is_string(v);
    }
    if (!ok)
        return err_set(KF_EINVAL, "%s: expected %s, got %s", f->field,
                       f->kind == CONTRACT_INT      ? "an integer"
                       : f->kind == CONTRACT_NUMBER ? "a number or a numeric string"
                       : f->kind == CONTRACT_LIST   ? "a non-empty list of strings"
                                                    : "a string",
                       kind_name(v));
    if (!(*out = scalar_text(v)))
        return err_set(KF_ENOMEM, "out of memory");
    return 0;
}

/* Keeps texts alive while a contract_args borrows them. */
typedef struct {
    char *v[64];
    int n;
} text_pool;

static const char *pool_keep(text_pool *p, char *s)
{
    if (!s || p->n == (int)(sizeof p->v / sizeof *p->v)) {
        free(s);
        return NULL;
    }
    return p->v[p->n++] = s;
}

static void pool_dispose(text_pool *p)
{
    for (int i = 0; i < p->n; i++)
        free(p->v[i]);
    p->n = 0;
}

/* Sets flag name to text (not from a spec field: the controller's own values). */
static int set_own(contract_args *a, text_pool *pool, const char *name, char *text)
{
    const char *t = pool_keep(pool, text);
    if (!t)
        return err_set(KF_ENOMEM, "out of memory");
    return contract_set(a, contract_flag_find(name), t, name);
}

static char *dup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *dup_printf(const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

/* spec.args: a controller-owned flag there is refused, naming the field it comes from. */
static int check_user_args(const json_t *args)
{
    size_t i;
    json_t *a;
    json_array_foreach(args, i, a) {
        const char *s = json_string_value(a);
        if (!s)
            return err_set(KF_EINVAL, "spec.args[%zu]: expected a string, got %s", i, kind_name(a));
        if (strncmp(s, "--", 2) != 0)
            continue;
        char name[64];
        size_t n = strcspn(s + 2, "=");
        if (n >= sizeof name)
            continue;
        memcpy(name, s + 2, n);
        name[n] = 0;
        const contract_flag *f = contract_flag_find(name);
        if (f && f->owner == CONTRACT_BY_CONTROLLER)
            return err_set(KF_EINVAL, "spec.args[%zu]: --%s is set by the controller%s%s%s", i, name,
                           f->field ? " from " : "", f->field ? f->field : "", f->field ? "; set that field instead" : "");
    }
    return 0;
}

int podspec_args(contract_argv *out, const json_t *job, int run, const reconcile_config *cfg)
{
    const json_t *meta = json_object_get(job, "metadata"), *spec = json_object_get(job, "spec");
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    const char *name = json_string_value(json_object_get(meta, "name"));
    contract_args a;
    text_pool pool = {.n = 0};
    contract_argv full = {0};
    int rc = 0;
    memset(&a, 0, sizeof a);
    memset(out, 0, sizeof *out);
    a.command = CONTRACT_TRAIN;
    for (const contract_flag *f = contract_flags; f->name && rc == 0; f++) {
        char *text = NULL;
        if (!f->field)
            continue;
        if ((rc = field_text(&text, field_at(job, f->field), f)) < 0)
            break;
        if (!text)
            continue;
        const char *t = pool_keep(&pool, text);
        rc = t ? contract_set(&a, f, t, f->field) : err_set(KF_ENOMEM, "out of memory");
    }
    /* Defaults the CRD also writes (for objects stored before it did). */
    if (rc == 0 && !a.epochs)
        rc = set_own(&a, &pool, "epochs", strdup("10"));
    if (rc == 0 && !a.model_dir)
        rc = set_own(&a, &pool, "model-dir", strdup("models"));
    if (rc == 0 && (!a.lang || !a.bucket_name))
        rc = err_set(KF_EINVAL, "%s is required", !a.lang ? "spec.language" : "spec.storage.bucket");
    if (rc == 0 && name)
        rc = set_own(&a, &pool, "job", strdup(name));
    if (rc == 0)
        rc = set_own(&a, &pool, "run", dup_printf("%d", run));
    /* A GPU Pod trains on the GPU or fails; it never falls back to the CPU unnoticed. */
    const json_t *gpus = json_object_get(json_object_get(spec, "resources"), "gpus");
    if (rc == 0)
        rc = set_own(&a, &pool, "device", strdup(!json_is_integer(gpus) || json_integer_value(gpus) > 0 ? "cuda" : "cpu"));
    if (rc == 0)
        rc = set_own(&a, &pool, "result-file", strdup(CONTRACT_TERMINATION_LOG));
    if (rc == 0 && cfg && cfg->progress_base_url && *cfg->progress_base_url && ns && name)
        rc = set_own(&a, &pool, "progress-url", dup_printf("%s/progress/%s/%s/%d", cfg->progress_base_url, ns, name, run));
    const json_t *user = json_object_get(spec, "args");
    if (rc == 0)
        rc = check_user_args(user);
    if (rc == 0)
        rc = contract_render(&full, &a);
    size_t i;
    json_t *x;
    json_array_foreach(user, i, x) {
        if (rc == 0 && json_is_string(x)) {
            char **grown = realloc(full.v, (full.n + 2) * sizeof *grown);
            if (!grown || !(grown[full.n] = strdup(json_string_value(x)))) {
                if (grown)
                    full.v = grown;
                rc = err_set(KF_ENOMEM, "out of memory");
                break;
            }
            full.v = grown;
            full.v[++full.n] = NULL;
        }
    }
    /* With the trainer's own entry point, the whole line must parse as the trainer parses it. */
    if (rc == 0 && !json_array_size(json_object_get(spec, "command"))) {
        contract_args back;
        int prc = contract_parse(&back, (int)full.n, full.v);
        if (prc == 1)
            rc = err_set(KF_EINVAL, "spec.args: --help does not train");
        else if (prc < 0)
            rc = err_wrap(KF_EINVAL, "spec.args");
    }
    if (rc == 0)
        *out = full;
    else
        contract_argv_free(&full);
    pool_dispose(&pool);
    return rc;
}

static json_t *build_args(const contract_argv *argv)
{
    json_t *args = json_array();
    for (size_t i = 0; args && i < argv->n; i++)
        json_array_append_new(args, json_string(argv->v[i]));
    return args;
}

/* The projected ServiceAccount token the trainer authenticates its progress reports with (bound to
 * this Pod, audience CONTRACT_PROGRESS_AUDIENCE, rotated by the kubelet). Only with --progress-url. */
static void add_progress_token(json_t *pod_spec, json_t *container)
{
    json_t *volume = json_pack("{s:s,s:{s:[{s:{s:s,s:i,s:s}}]}}", "name", PROGRESS_TOKEN_VOLUME, "projected", "sources",
                               "serviceAccountToken", "audience", CONTRACT_PROGRESS_AUDIENCE, "expirationSeconds", 3600,
                               "path", "token");
    json_t *mount = json_pack("{s:s,s:s,s:b}", "name", PROGRESS_TOKEN_VOLUME, "mountPath", CONTRACT_PROGRESS_TOKEN_DIR,
                              "readOnly", 1);
    json_t *env = json_pack("{s:s,s:s}", "name", CONTRACT_PROGRESS_TOKEN_ENV, "value", CONTRACT_PROGRESS_TOKEN_FILE);
    /* A serviceAccountToken source needs a named account; the ServiceAccount admission plugin would
     * set "default" anyway, but not every API server runs it. */
    if (!json_string_value(json_object_get(pod_spec, "serviceAccountName")))
        json_object_set_new(pod_spec, "serviceAccountName", json_string("default"));
    json_array_append_new(json_object_get(pod_spec, "volumes"), volume);
    json_array_append_new(json_object_get(container, "volumeMounts"), mount);
    json_array_append_new(json_object_get(container, "env"), env);
}

/* The trainer's scratch space: an emptyDir at /tmp (its work folder, the downloaded inputs), so
 * that the image's own files can stay read-only. */
static void add_scratch(json_t *pod_spec, json_t *container, int read_only_root)
{
    json_object_set_new(pod_spec, "volumes", json_pack("[{s:s,s:{}}]", "name", SCRATCH_VOLUME, "emptyDir"));
    json_object_set_new(container, "volumeMounts", json_pack("[{s:s,s:s}]", "name", SCRATCH_VOLUME, "mountPath", "/tmp"));
    if (read_only_root) /* kubefit-trainer writes only there (and the termination log) */
        json_object_set_new(json_object_get(container, "securityContext"), "readOnlyRootFilesystem", json_true());
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

/* spec.schedule parses with the controller's own parser, spec.timeZone is a known zone, and the
 * schedule fires at least once in the next five years. */
static int check_schedule(const json_t *spec, double now)
{
    const json_t *sched = json_object_get(spec, "schedule"), *zone_name = json_object_get(spec, "timeZone");
    cron_schedule cs;
    tz_zone *zone = NULL;
    if (!sched || json_is_null(sched))
        return 0;
    const char *text = json_string_value(sched);
    if (!text)
        return err_set(KF_EINVAL, "spec.schedule: expected a string");
    if (cron_parse(&cs, text) < 0)
        return err_wrap(KF_EINVAL, "spec.schedule");
    if (zone_name && !json_is_null(zone_name)) {
        int rc = json_is_string(zone_name) ? tz_load(&zone, json_string_value(zone_name))
                                           : err_set(KF_EINVAL, "expected a string");
        if (rc < 0)
            return err_wrap(KF_EINVAL, "spec.timeZone");
    }
    double next = cron_next_in(&cs, now, zone);
    tz_free(zone);
    if (next < 0)
        return err_set(KF_EINVAL, "spec.schedule: \"%s\" never fires (no such date within five years)", text);
    return 0;
}

int podspec_check(const json_t *job, const reconcile_config *cfg, double now)
{
    const json_t *spec = json_object_get(job, "spec");
    const char *bucket = json_string_value(json_object_get(json_object_get(spec, "storage"), "bucket"));
    contract_argv argv;
    int rc = podspec_args(&argv, job, 1, cfg);
    if (rc < 0)
        return rc;
    contract_argv_free(&argv);
    if (bucket && (!strncmp(bucket, "gs://", 5) || !strchr(bucket, '/'))) {
        const char *name = !strncmp(bucket, "gs://", 5) ? bucket + 5 : bucket;
        if (contract_gcs_bucket_check(name) < 0)
            return err_wrap(KF_EINVAL, "spec.storage.bucket");
    }
    const json_t *gpus = json_object_get(json_object_get(spec, "resources"), "gpus");
    if (json_is_integer(gpus) && (json_integer_value(gpus) < 0 || json_integer_value(gpus) > 1))
        return err_set(KF_EINVAL, "spec.resources.gpus: %" JSON_INTEGER_FORMAT
                                  " GPUs requested; the trainer uses one GPU (0 or 1)", json_integer_value(gpus));
    return check_schedule(spec, now);
}

int reconcile_build_pod(json_t **out, const json_t *job, int run, int attempt, const reconcile_config *cfg,
                        double deadline_left_s)
{
    const json_t *meta = json_object_get(job, "metadata"), *spec = json_object_get(job, "spec");
    const json_t *res = json_object_get(spec, "resources");
    const char *name = json_string_value(json_object_get(meta, "name"));
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    const char *uid = json_string_value(json_object_get(meta, "uid"));
    *out = NULL;
    if (!name || !ns || !uid)
        return err_set(KF_EINVAL, "metadata: name, namespace and uid are required");
    contract_argv argv;
    int rc = podspec_args(&argv, job, run, cfg);
    if (rc < 0)
        return rc;
    char *pod_name = NULL, run_s[24], att_s[24];
    if (asprintf(&pod_name, "%s-%d-%d", name, run, attempt) < 0) {
        contract_argv_free(&argv);
        return err_set(KF_ENOMEM, "out of memory");
    }
    snprintf(run_s, sizeof run_s, "%d", run);
    snprintf(att_s, sizeof att_s, "%d", attempt);
    const char *image = json_string_value(json_object_get(spec, "image"));
    if (!image || !*image)
        image = cfg->default_image ? cfg->default_image : DEFAULT_IMAGE;

    json_t *container = json_pack(
        "{s:s,s:s,s:o,s:o,s:o,s:s,s:s,s:{s:b,s:{s:[s]},s:b,s:{s:s}}}", "name", RECONCILE_CONTAINER, "image", image,
        "args", build_args(&argv), "env", build_env(job, run, attempt), "resources", build_resources(res),
        "terminationMessagePath", CONTRACT_TERMINATION_LOG, "terminationMessagePolicy", "FallbackToLogsOnError",
        "securityContext", "allowPrivilegeEscalation", 0, "capabilities", "drop", "ALL", "runAsNonRoot", 1,
        "seccompProfile", "type", "RuntimeDefault");
    const json_t *command = json_object_get(spec, "command");
    if (json_is_array(command) && json_array_size(command))
        json_object_set(container, "command", (json_t *)command);
    else
        json_object_set_new(container, "command", json_pack("[s]", "kubefit-trainer"));

    json_t *pod_spec = json_pack("{s:s,s:[O],s:{s:b,s:i,s:i,s:i,s:{s:s}}}", "restartPolicy", "Never", "containers",
                                 container, "securityContext", "runAsNonRoot", 1, "runAsUser", CONTRACT_NONROOT_UID,
                                 "runAsGroup", CONTRACT_NONROOT_UID, "fsGroup", CONTRACT_NONROOT_UID, "seccompProfile",
                                 "type", "RuntimeDefault");
    add_scratch(pod_spec, container, !(json_is_array(command) && json_array_size(command)));
    json_decref(container);
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
    if (cfg && cfg->progress_base_url && *cfg->progress_base_url)
        add_progress_token(pod_spec, container);
    if (deadline_left_s > 0)
        json_object_set_new(pod_spec, "activeDeadlineSeconds",
                            json_integer((json_int_t)(deadline_left_s < DEADLINE_MAX ? deadline_left_s : DEADLINE_MAX) + 1));

    json_t *pod = json_pack(
        "{s:s,s:s,s:{s:s,s:s,s:{s:s,s:s,s:s,s:s,s:s},s:[{s:s,s:s,s:s,s:s,s:b,s:b}]},s:o}", "apiVersion", "v1",
        "kind", "Pod", "metadata", "name", pod_name, "namespace", ns, "labels", RECONCILE_LABEL_MANAGED, "kubefit",
        "app.kubernetes.io/name", "kubefit-trainer", RECONCILE_LABEL_JOB, name, RECONCILE_LABEL_RUN, run_s,
        RECONCILE_LABEL_ATTEMPT, att_s, "ownerReferences", "apiVersion", "kubefit.dev/v1alpha1", "kind",
        "TrainingJob", "name", name, "uid", uid, "controller", 1, "blockOwnerDeletion", 1, "spec", pod_spec);
    free(pod_name);
    contract_argv_free(&argv);
    if (!pod)
        return err_set(KF_ENOMEM, "out of memory");
    *out = pod;
    return 0;
}
