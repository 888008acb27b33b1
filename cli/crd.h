/* crd: the TrainingJob CRD (crds/trainingjob.yaml, compiled into the program) applied to one
 * object as the API server applies it on create: the schema's defaults (top-down, a defaulted
 * object gets its own fields' defaults), then the structural checks - types (integer, number,
 * string, boolean, object, array, int-or-string), enum, minimum/maximum (exclusive too),
 * minLength/maxLength, minItems/maxItems, required fields, unknown fields (as kubectl's strict
 * field validation refuses them) and x-kubernetes-list-type set/map uniqueness. The CEL rules
 * (x-kubernetes-validations) stay with the API server; podspec_check, which runs next, holds the
 * rules the trainer depends on (language, bucket, GPUs, args, schedule).
 * Messages name the field: "spec.epochs: must be at least 1, got 0". */
#ifndef KUBEFIT_CRD_H
#define KUBEFIT_CRD_H

#include <jansson.h>

#define CRD_GROUP "kubefit.dev"
#define CRD_VERSION "v1alpha1"
#define CRD_API_VERSION CRD_GROUP "/" CRD_VERSION
#define CRD_KIND "TrainingJob"
#define CRD_PLURAL "trainingjobs"

typedef struct crd crd;

/* Parses the compiled-in CRD. Caller frees with crd_free. */
int crd_load(crd **out);
void crd_free(crd *c);

/* The CRD source text (for `kubefit crd`, and tests). */
const char *crd_text(void);

/* The openAPIV3Schema of CRD_VERSION, and its additionalPrinterColumns (borrowed). */
const json_t *crd_schema(const crd *c);
const json_t *crd_printer_columns(const crd *c);

/* Sets every missing field that has a schema default, in place. */
int crd_default(const crd *c, json_t *obj);
/* 0, or KF_EINVAL naming the first field that breaks a structural rule. */
int crd_validate(const crd *c, const json_t *obj);

/* The same on any schema node (exposed for tests); path names obj in messages ("spec"). */
int crd_schema_default(json_t *obj, const json_t *schema);
int crd_schema_validate(const json_t *obj, const json_t *schema, const char *path);

#endif
