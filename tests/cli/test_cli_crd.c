/* crd: the compiled-in CRD's defaults and structural checks, as the API server applies them. */
#include <jansson.h>
#include <string.h>

#include "crd.h"
#include "err.h"
#include "manifest.h"
#include "test.h"

static json_t *yaml(const char *text)
{
    json_t *docs = NULL;
    if (manifest_parse(&docs, text, strlen(text), "t.yaml") < 0) {
        fprintf(stderr, "bad test YAML: %s\n", err_msg());
        return json_object();
    }
    json_t *v = json_incref(json_array_get(docs, 0));
    json_decref(docs);
    return v;
}

#define JOB(spec) "apiVersion: kubefit.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: j}\nspec:\n" spec

/* Every default the schema states under obj's properties is in obj after defaulting (walked here
 * independently of crd.c). Returns the number of defaults checked. */
static int check_defaults(const json_t *obj, const json_t *schema, const char *path)
{
    int n = 0;
    const char *k;
    json_t *p;
    json_object_foreach(json_object_get(schema, "properties"), k, p) {
        const json_t *d = json_object_get(p, "default"), *v = json_object_get(obj, k);
        char sub[256];
        snprintf(sub, sizeof sub, "%s.%s", path, k);
        if (d) {
            n++;
            int ok = v && (json_is_object(d) ? json_is_object(v) : json_equal((json_t *)d, (json_t *)v));
            if (!ok)
                fprintf(stderr, "%s: default not applied\n", sub);
            CHECK(ok);
        }
        if (json_is_object(v))
            n += check_defaults(v, p, sub);
    }
    return n;
}

static void defaults(const crd *c)
{
    json_t *job = yaml(JOB("  language: fr\n  storage: {bucket: gs://abc}\n  epochs: null\n"
                           "  env: [{name: A}]\n"));
    CHECK_EQ_INT(0, crd_default(c, job));
    const json_t *spec = json_object_get(job, "spec");
    int n = check_defaults(spec, json_object_get(json_object_get(crd_schema(c), "properties"), "spec"), "spec");
    CHECK(n >= 15);
    /* a few by value: a null is pruned and defaulted; a default {} gets its own fields' defaults */
    CHECK_EQ_INT(10, json_integer_value(json_object_get(spec, "epochs")));
    CHECK_EQ_INT(400, json_integer_value(json_object_get(json_object_get(spec, "model"), "embSize")));
    CHECK_EQ_INT(1, json_integer_value(json_object_get(json_object_get(spec, "resources"), "gpus")));
    CHECK_EQ_STR("models", json_string_value(json_object_get(json_object_get(spec, "storage"), "modelDir")));
    CHECK_EQ_STR("auto", json_string_value(json_object_get(json_object_get(spec, "labels"), "mode")));
    CHECK_EQ_STR("", json_string_value(json_object_get(json_array_get(json_object_get(spec, "env"), 0), "value")));
    CHECK_EQ_INT(0, crd_validate(c, job));
    /* set values are kept */
    json_t *j2 = yaml(JOB("  language: fr\n  storage: {bucket: gs://abc, modelDir: out}\n  model: {layers: 2}\n"));
    crd_default(c, j2);
    spec = json_object_get(j2, "spec");
    CHECK_EQ_STR("out", json_string_value(json_object_get(json_object_get(spec, "storage"), "modelDir")));
    CHECK_EQ_INT(2, json_integer_value(json_object_get(json_object_get(spec, "model"), "layers")));
    CHECK_EQ_INT(1152, json_integer_value(json_object_get(json_object_get(spec, "model"), "hiddenSize")));
    json_decref(j2);
    json_decref(job);
}

/* The message crd_validate gives for a job with spec lines (after defaulting), or "ok". */
static const char *verdict(const crd *c, const char *text)
{
    static char buf[1024];
    json_t *job = yaml(text);
    crd_default(c, job);
    int rc = crd_validate(c, job);
    snprintf(buf, sizeof buf, "%s", rc == 0 ? "ok" : err_msg());
    json_decref(job);
    return buf;
}

#define BASE "  language: fr\n  storage: {bucket: gs://abc}\n"

static void validation(const crd *c)
{
    CHECK_EQ_STR("ok", verdict(c, JOB(BASE)));
    CHECK_EQ_STR("spec.epoch: unknown field (did you mean \"epochs\"?)", verdict(c, JOB(BASE "  epoch: 3\n")));
    CHECK_EQ_STR("spec.storage.bukket: unknown field (did you mean \"bucket\"?)",
                 verdict(c, JOB("  language: fr\n  storage: {bucket: gs://abc, bukket: x}\n")));
    CHECK(strncmp(verdict(c, JOB(BASE "  zzzzzzzz: 1\n")), "spec.zzzzzzzz: unknown field (spec has: language, ", 50) == 0);
    CHECK_EQ_STR("spc: unknown field (did you mean \"spec\"?)",
                 verdict(c, "apiVersion: kubefit.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: j}\nspc: {}\n"));
    CHECK_EQ_STR("spec: required field is missing",
                 verdict(c, "apiVersion: kubefit.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: j}\n"));
    CHECK_EQ_STR("spec.language: required field is missing", verdict(c, JOB("  storage: {bucket: gs://abc}\n")));
    CHECK_EQ_STR("spec.storage.bucket: required field is missing", verdict(c, JOB("  language: fr\n  storage: {}\n")));
    CHECK_EQ_STR("spec.epochs: must be an integer, got a string (\"ten\")", verdict(c, JOB(BASE "  epochs: ten\n")));
    CHECK_EQ_STR("spec.epochs: must be an integer, got a number", verdict(c, JOB(BASE "  epochs: 2.5\n")));
    CHECK_EQ_STR("spec.epochs: must be at least 1, got 0", verdict(c, JOB(BASE "  epochs: 0\n")));
    CHECK_EQ_STR("spec.epochs: must be at most 1000, got 1001", verdict(c, JOB(BASE "  epochs: 1001\n")));
    CHECK_EQ_STR("ok", verdict(c, JOB(BASE "  epochs: 1e1\n"))); /* 10.0 is the integer 10 in JSON */
    CHECK_EQ_STR("spec.labels.threshold: must be less than 1, got 1",
                 verdict(c, JOB(BASE "  labels: {threshold: 1}\n")));
    CHECK_EQ_STR("spec.labels.threshold: must be more than 0, got 0",
                 verdict(c, JOB(BASE "  labels: {threshold: 0}\n")));
    CHECK_EQ_STR("spec.labels.mode: must be one of \"auto\", \"multi\", \"single\"; got \"many\"",
                 verdict(c, JOB(BASE "  labels: {mode: many}\n")));
    CHECK_EQ_STR("spec.stages[1]: duplicate value \"classifier\"",
                 verdict(c, JOB(BASE "  stages: [classifier, classifier]\n")));
    CHECK_EQ_STR("spec.stages: must have at least 1 items, got 0", verdict(c, JOB(BASE "  stages: []\n")));
    CHECK_EQ_STR("spec.stages[0]: must be one of \"pretrain\", \"finetune-lm\", \"classifier\"; got \"train\"",
                 verdict(c, JOB(BASE "  stages: [train]\n")));
    CHECK_EQ_STR("spec.env[1]: duplicate entry with name \"A\"",
                 verdict(c, JOB(BASE "  env: [{name: A, value: x}, {name: A, value: y}]\n")));
    CHECK_EQ_STR("spec.resources.cpu: must be an integer or a string, got a boolean",
                 verdict(c, JOB(BASE "  resources: {cpu: true}\n")));
    CHECK_EQ_STR("ok", verdict(c, JOB(BASE "  resources: {cpu: 4, memory: 16Gi}\n")));
    CHECK_EQ_STR("spec.language: must be a string, got a boolean (YAML reads yes, no, on, off, y and n as booleans: "
                 "quote the value)",
                 verdict(c, JOB("  language: no\n  storage: {bucket: gs://abc}\n")));
    CHECK_EQ_STR("spec.language: must have at most 6 characters, got 7",
                 verdict(c, JOB("  language: abcdefg\n  storage: {bucket: gs://abc}\n")));
    CHECK_EQ_STR("spec.storage.bucket: must have at least 3 characters, got 2",
                 verdict(c, JOB("  language: fr\n  storage: {bucket: ab}\n")));
    CHECK_EQ_STR("spec.args: must be a list, got a string (\"--lr 1\")", verdict(c, JOB(BASE "  args: --lr 1\n")));
    /* metadata is the API server's business: anything goes here */
    CHECK_EQ_STR("ok", verdict(c, "apiVersion: kubefit.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: j, labels: "
                                  "{a: b}}\nspec:\n" BASE));
}

int main(void)
{
    crd *c = NULL;
    CHECK_EQ_INT(0, crd_load(&c));
    if (!c)
        return test_done();
    CHECK(strstr(crd_text(), "name: trainingjobs.kubefit.dev") != NULL);
    CHECK_EQ_STR("Phase", json_string_value(json_object_get(json_array_get(crd_printer_columns(c), 0), "name")));
    defaults(c);
    validation(c);
    crd_free(c);
    return test_done();
}
