/* jobspec: a TrainingJob from submit's flags (see jobspec.h). */
#include "jobspec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contract.h"
#include "crd.h"
#include "err.h"
#include "kubetime.h"
#include "podspec.h"

/* The Pod-shaped flags and the field each one sets. */
typedef struct {
    args_flag flag;
    const char *field;
    enum { AS_TEXT, AS_INT, AS_BOOL, AS_SECONDS, AS_QUANTITY } as;
} pod_flag;

static const pod_flag POD_FLAGS[] = {
    {{"gpus", 0, "N", "GPUs for the trainer Pod: 1 (default) or 0 for the CPU", 0}, "spec.resources.gpus", AS_INT},
    {{"accelerator", 0, "TYPE", "GKE accelerator, e.g. nvidia-l4, nvidia-h100-80gb", 0}, "spec.resources.acceleratorType",
     AS_TEXT},
    {{"spot", 0, NULL, "run on spot VMs (preemptions are retried, not counted)", 0}, "spec.resources.spot", AS_BOOL},
    {{"cpu", 0, "QTY", "CPU request and limit, e.g. 8 or 3500m", 0}, "spec.resources.cpu", AS_QUANTITY},
    {{"memory", 0, "QTY", "memory request and limit, e.g. 32Gi", 0}, "spec.resources.memory", AS_QUANTITY},
    {{"image", 0, "IMAGE", "trainer image (default: the controller's)", 0}, "spec.image", AS_TEXT},
    {{"service-account", 0, "SA", "trainer Pod's service account (Workload Identity for gs://)", 0},
     "spec.serviceAccountName", AS_TEXT},
    {{"backoff-limit", 0, "N", "failed attempts before the run fails (default 3)", 0}, "spec.backoffLimit", AS_INT},
    {{"deadline", 0, "DURATION", "wall-clock limit of a run, e.g. 2h", 0}, "spec.activeDeadlineSeconds", AS_SECONDS},
    {{"schedule", 0, "CRON", "retrain periodically, e.g. \"0 3 * * 1\"", 0}, "spec.schedule", AS_TEXT},
    {{"time-zone", 0, "TZ", "time zone of --schedule, e.g. Europe/Paris", 0}, "spec.timeZone", AS_TEXT},
    {{"env", 0, "NAME=VALUE", "environment variable of the trainer (repeatable)", 1}, "spec.env", AS_TEXT},
    {{NULL, 0, NULL, NULL, 0}, NULL, AS_TEXT},
};

#define MAX_FLAGS 48
static args_flag table[MAX_FLAGS];
static char help_text[MAX_FLAGS][200];

/* The contract's flags that the controller renders from a spec field. */
static int from_contract(const contract_flag *f)
{
    return f->owner == CONTRACT_BY_CONTROLLER && f->field && !strncmp(f->field, "spec.", 5);
}

const args_flag *jobspec_flags(void)
{
    if (table[0].name)
        return table;
    size_t n = 0;
    for (const contract_flag *f = contract_flags; f->name && n + 1 < MAX_FLAGS; f++) {
        if (!from_contract(f))
            continue;
        const char *metavar = f->kind == CONTRACT_INT ? "N" : f->kind == CONTRACT_NUMBER ? "X"
                              : f->kind == CONTRACT_LIST ? "A,B"
                                                         : "V";
        snprintf(help_text[n], sizeof help_text[n], "%s (%s)", f->help, f->field);
        table[n] = (args_flag){f->name, 0, metavar, help_text[n], 0};
        n++;
    }
    for (const pod_flag *p = POD_FLAGS; p->flag.name && n + 1 < MAX_FLAGS; p++)
        table[n++] = p->flag;
    table[n] = (args_flag){NULL, 0, NULL, NULL, 0};
    return table;
}

/* Sets the value at a dotted path ("spec.storage.bucket"), making the objects on the way. */
static int set_path(json_t *root, const char *path, json_t *value)
{
    json_t *o = root;
    char key[64];
    for (;;) {
        size_t n = strcspn(path, ".");
        if (n >= sizeof key) {
            json_decref(value);
            return err_set(KF_EINVAL, "field path too long: %s", path);
        }
        memcpy(key, path, n);
        key[n] = '\0';
        if (!path[n])
            return json_object_set_new(o, key, value) ? err_set(KF_ENOMEM, "out of memory") : 0;
        json_t *next = json_object_get(o, key);
        if (!json_is_object(next)) {
            next = json_object();
            json_object_set_new(o, key, next);
        }
        o = next;
        path += n + 1;
    }
}

/* A value already checked by contract_set, as the JSON the field takes. */
static json_t *contract_value(const contract_flag *f, const char *text)
{
    switch (f->kind) {
    case CONTRACT_INT:
        return json_integer(strtoll(text, NULL, 10));
    case CONTRACT_NUMBER:
        return json_real(strtod(text, NULL));
    case CONTRACT_LIST: {
        json_t *arr = json_array();
        const char *p = text;
        while (arr && *p) {
            size_t n = strcspn(p, ",");
            json_array_append_new(arr, json_stringn(p, n));
            p += n + (p[n] == ',');
        }
        return arr;
    }
    default:
        return json_string(text);
    }
}

static int pod_value(json_t **out, const pod_flag *p, const char *text)
{
    char *end = NULL;
    *out = NULL;
    switch (p->as) {
    case AS_INT: {
        errno = 0;
        long long v = strtoll(text, &end, 10);
        if (!*text || *end || errno)
            return err_set(KF_EINVAL, "--%s: expected an integer, got \"%s\"", p->flag.name, text);
        *out = json_integer(v);
        break;
    }
    case AS_BOOL:
        *out = json_true();
        break;
    case AS_QUANTITY: {
        /* a plain integer stays one (the CRD takes int-or-string), anything else is a quantity */
        errno = 0;
        long long v = strtoll(text, &end, 10);
        *out = *text && !*end && !errno ? json_integer(v) : json_string(text);
        break;
    }
    default:
        *out = json_string(text);
    }
    return *out ? 0 : err_set(KF_ENOMEM, "out of memory");
}

int jobspec_build(json_t **out, const args_parsed *a, const char *name, const char *namespace)
{
    contract_args ca;
    memset(&ca, 0, sizeof ca);
    json_t *job = json_pack("{s:s,s:s,s:{s:s,s:s},s:{}}", "apiVersion", CRD_API_VERSION, "kind", CRD_KIND, "metadata",
                            "name", name, "namespace", namespace, "spec");
    int rc = job ? 0 : err_set(KF_ENOMEM, "out of memory");
    *out = NULL;
    for (const contract_flag *f = contract_flags; rc == 0 && f->name; f++) {
        const char *v = from_contract(f) ? args_get(a, f->name) : NULL;
        char who[72];
        snprintf(who, sizeof who, "--%s", f->name);
        if (v && (rc = contract_set(&ca, f, v, who)) == 0)
            rc = set_path(job, f->field, contract_value(f, v));
    }
    for (const pod_flag *p = POD_FLAGS; rc == 0 && p->flag.name; p++) {
        if (p->flag.repeatable) { /* --env NAME=VALUE */
            json_t *env = json_array();
            for (char *const *e = args_get_all(a, p->flag.name); rc == 0 && *e; e++) {
                const char *eq = strchr(*e, '=');
                if (!eq || eq == *e)
                    rc = err_set(KF_EINVAL, "--env: expected NAME=VALUE, got \"%s\"", *e);
                else
                    json_array_append_new(env, json_pack("{s:s%,s:s}", "name", *e, (size_t)(eq - *e), "value", eq + 1));
            }
            if (rc == 0 && json_array_size(env))
                rc = set_path(job, p->field, json_incref(env));
            json_decref(env);
            continue;
        }
        const char *v = args_get(a, p->flag.name);
        if (!v)
            continue;
        json_t *val = NULL;
        if (p->as == AS_SECONDS) {
            double s;
            if ((rc = args_duration(&s, a, p->flag.name, 0)) == 0)
                val = json_integer((json_int_t)(s + 0.5));
        } else {
            rc = pod_value(&val, p, v);
        }
        if (rc == 0)
            rc = set_path(job, p->field, val);
    }
    if (rc == 0 && a->n_rest) {
        json_t *args = json_array();
        for (size_t i = 0; i < a->n_rest; i++)
            json_array_append_new(args, json_string(a->rest[i]));
        rc = set_path(job, "spec.args", args);
    }
    if (rc == 0 && !json_object_get(json_object_get(job, "spec"), "language"))
        rc = err_set(KF_EINVAL, "--lang is required (the language folder in the bucket: en, fr, pt-BR, ...)");
    if (rc == 0 && !json_object_get(json_object_get(json_object_get(job, "spec"), "storage"), "bucket"))
        rc = err_set(KF_EINVAL, "--bucket-name is required (gs://BUCKET, where LANG/data/train.csv is)");
    /* What the API server and the controller would refuse, refused now, naming the flag. */
    crd *c = NULL;
    json_t *full = NULL;
    if (rc == 0 && (rc = crd_load(&c)) == 0 && (rc = crd_validate(c, job)) == 0) {
        full = json_deep_copy(job);
        json_object_set_new(json_object_get(full, "metadata"), "uid", json_string("submit-check"));
        if (!full || (rc = crd_default(c, full)) < 0 || (rc = podspec_check(full, NULL, kube_now())) < 0)
            rc = rc < 0 ? rc : err_set(KF_ENOMEM, "out of memory");
    }
    json_decref(full);
    crd_free(c);
    if (rc < 0) {
        json_decref(job);
        return jobspec_explain(rc);
    }
    *out = job;
    return 0;
}

int jobspec_explain(int rc)
{
    const char *msg = err_msg();
    const char *field = NULL, *flag = NULL;
    size_t best = 0;
    for (const contract_flag *f = contract_flags; f->name; f++) {
        size_t n = f->field ? strlen(f->field) : 0;
        if (from_contract(f) && n > best && !strncmp(msg, f->field, n) && (msg[n] == ':' || msg[n] == '['))
            field = f->field, flag = f->name, best = n;
    }
    for (const pod_flag *p = POD_FLAGS; p->flag.name; p++) {
        size_t n = strlen(p->field);
        if (n > best && !strncmp(msg, p->field, n) && (msg[n] == ':' || msg[n] == '[' || msg[n] == '.'))
            field = p->field, flag = p->flag.name, best = n;
    }
    char copy[2048];
    if (!field && !strncmp(msg, "spec.args", 9)) {
        /* "spec.args[0]: --lr is set by the controller from spec.learningRate; ..." */
        const char *f = strstr(msg, ": --");
        for (const contract_flag *cf = contract_flags; f && cf->name; cf++) {
            size_t n = strlen(cf->name);
            if (from_contract(cf) && !strncmp(f + 4, cf->name, n) && (f[4 + n] == ' ' || f[4 + n] == '='))
                return err_set(rc, "after --: --%s is a kubefit submit flag (it sets %s): give it before --", cf->name,
                               cf->field);
        }
        snprintf(copy, sizeof copy, "%s", msg);
        return err_set(rc, "after --: %s", copy);
    }
    if (!field)
        return rc;
    snprintf(copy, sizeof copy, "%s", msg + best);
    return err_set(rc, "--%s%s", flag, copy);
}
