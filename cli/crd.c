/* crd: the compiled-in TrainingJob CRD's defaults and structural validation (see crd.h). */
#include "crd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "manifest.h"

/* cli/embed.cmake writes these from crds/trainingjob.yaml. */
extern const char kubefit_crd_yaml[];
extern const size_t kubefit_crd_yaml_len;

struct crd {
    json_t *doc;                  /* the whole CRD */
    const json_t *schema;         /* spec.versions[CRD_VERSION].schema.openAPIV3Schema */
    const json_t *columns;        /* its additionalPrinterColumns (may be NULL) */
};

const char *crd_text(void) { return kubefit_crd_yaml; }

int crd_load(crd **out)
{
    json_t *docs = NULL;
    *out = NULL;
    int rc = manifest_parse(&docs, kubefit_crd_yaml, kubefit_crd_yaml_len, "crds/trainingjob.yaml");
    if (rc < 0)
        return rc;
    crd *c = calloc(1, sizeof *c);
    if (!c) {
        json_decref(docs);
        return err_set(KF_ENOMEM, "out of memory");
    }
    c->doc = json_incref(json_array_get(docs, 0));
    json_decref(docs);
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(json_object_get(c->doc, "spec"), "versions"), i, v) {
        const char *name = json_string_value(json_object_get(v, "name"));
        if (name && strcmp(name, CRD_VERSION) == 0) {
            c->schema = json_object_get(json_object_get(v, "schema"), "openAPIV3Schema");
            c->columns = json_object_get(v, "additionalPrinterColumns");
        }
    }
    if (!json_is_object(c->schema)) {
        crd_free(c);
        return err_set(KF_EINVAL, "crds/trainingjob.yaml: no openAPIV3Schema for version %s", CRD_VERSION);
    }
    *out = c;
    return 0;
}

void crd_free(crd *c)
{
    if (!c)
        return;
    json_decref(c->doc);
    free(c);
}

const json_t *crd_schema(const crd *c) { return c->schema; }
const json_t *crd_printer_columns(const crd *c) { return c->columns; }

/* ---- defaults ---- */

int crd_schema_default(json_t *obj, const json_t *schema)
{
    if (json_is_array(obj)) {
        const json_t *items = json_object_get(schema, "items");
        size_t i;
        json_t *x;
        json_array_foreach(obj, i, x) {
            int rc = crd_schema_default(x, items);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    if (!json_is_object(obj))
        return 0;
    const json_t *props = json_object_get(schema, "properties");
    const char *k;
    json_t *p;
    void *tmp;
    /* null is pruned (no field here is nullable), so that a default can take its place */
    json_object_foreach_safe(obj, tmp, k, p) {
        if (json_is_null(p) && json_object_get(props, k))
            json_object_del(obj, k);
    }
    json_object_foreach((json_t *)props, k, p) {
        const json_t *dflt = json_object_get(p, "default");
        if (dflt && !json_object_get(obj, k) && json_object_set_new(obj, k, json_deep_copy(dflt)) != 0)
            return err_set(KF_ENOMEM, "out of memory");
        json_t *v = json_object_get(obj, k);
        if (v) {
            int rc = crd_schema_default(v, p);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

int crd_default(const crd *c, json_t *obj) { return crd_schema_default(obj, c->schema); }

/* ---- validation ---- */

static const char *kind_of(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "a list";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* Edit distance, for "did you mean". */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return 99;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = row[j];
            size_t sub = prev + (a[i - 1] != b[j - 1]);
            size_t best = row[j] + 1 < row[j - 1] + 1 ? row[j] + 1 : row[j - 1] + 1;
            row[j] = sub < best ? sub : best;
            prev = cur;
        }
    }
    return row[lb];
}

static int unknown_field(const char *path, const char *key, const json_t *props)
{
    const char *best = NULL, *k;
    size_t best_d = 3;
    json_t *p;
    json_object_foreach((json_t *)props, k, p) {
        size_t d = distance(key, k);
        if (d < best_d)
            best = k, best_d = d;
    }
    if (best)
        return err_set(KF_EINVAL, "%s.%s: unknown field (did you mean \"%s\"?)", path, key, best);
    char list[512] = "";
    size_t used = 0;
    json_object_foreach((json_t *)props, k, p) {
        int n = snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", k);
        if (n < 0 || (size_t)n >= sizeof list - used)
            break;
        used += (size_t)n;
    }
    return err_set(KF_EINVAL, "%s.%s: unknown field (%s has: %s)", path, key, path, list);
}

static int check_type(const json_t *v, const json_t *schema, const char *path)
{
    if (json_is_true(json_object_get(schema, "x-kubernetes-int-or-string"))) {
        if (!json_is_integer(v) && !json_is_string(v))
            return err_set(KF_EINVAL, "%s: must be an integer or a string, got %s", path, kind_of(v));
        return 0;
    }
    const char *type = json_string_value(json_object_get(schema, "type"));
    if (!type)
        return 0;
    int ok = !strcmp(type, "object")    ? json_is_object(v)
             : !strcmp(type, "array")   ? json_is_array(v)
             : !strcmp(type, "string")  ? json_is_string(v)
             : !strcmp(type, "integer") ? json_is_integer(v)
             : !strcmp(type, "number")  ? json_is_number(v)
             : !strcmp(type, "boolean") ? json_is_boolean(v)
                                        : 1;
    if (ok)
        return 0;
    const char *want = !strcmp(type, "object")    ? "an object"
                       : !strcmp(type, "array")   ? "a list"
                       : !strcmp(type, "string")  ? "a string"
                       : !strcmp(type, "integer") ? "an integer"
                       : !strcmp(type, "number")  ? "a number"
                                                  : "a boolean";
    if (json_is_string(v))
        return err_set(KF_EINVAL, "%s: must be %s, got a string (\"%.60s\")", path, want, json_string_value(v));
    if (json_is_boolean(v) && !strcmp(type, "string"))
        return err_set(KF_EINVAL, "%s: must be a string, got a boolean (YAML reads yes, no, on, off, y and n as "
                                  "booleans: quote the value)", path);
    return err_set(KF_EINVAL, "%s: must be %s, got %s", path, want, kind_of(v));
}

static void value_text(char *out, size_t n, const json_t *v)
{
    if (json_is_string(v))
        snprintf(out, n, "\"%.60s\"", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(out, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v))
        snprintf(out, n, "%g", json_real_value(v));
    else
        snprintf(out, n, "%s", kind_of(v));
}

static int check_enum(const json_t *v, const json_t *schema, const char *path)
{
    const json_t *en = json_object_get(schema, "enum");
    if (!json_is_array(en))
        return 0;
    size_t i;
    json_t *x;
    json_array_foreach(en, i, x) {
        if (json_equal(x, (json_t *)v))
            return 0;
    }
    char list[256] = "", got[80];
    size_t used = 0;
    json_array_foreach(en, i, x) {
        char one[80];
        value_text(one, sizeof one, x);
        int n = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", one);
        if (n < 0 || (size_t)n >= sizeof list - used)
            break;
        used += (size_t)n;
    }
    value_text(got, sizeof got, v);
    return err_set(KF_EINVAL, "%s: must be one of %s; got %s", path, list, got);
}

static int check_bounds(const json_t *v, const json_t *schema, const char *path)
{
    if (json_is_number(v)) {
        double d = json_number_value(v);
        const json_t *mn = json_object_get(schema, "minimum"), *mx = json_object_get(schema, "maximum");
        int xmn = json_is_true(json_object_get(schema, "exclusiveMinimum"));
        int xmx = json_is_true(json_object_get(schema, "exclusiveMaximum"));
        char got[40];
        value_text(got, sizeof got, v);
        if (json_is_number(mn) && (xmn ? d <= json_number_value(mn) : d < json_number_value(mn)))
            return err_set(KF_EINVAL, "%s: must be %s %g, got %s", path, xmn ? "more than" : "at least",
                           json_number_value(mn), got);
        if (json_is_number(mx) && (xmx ? d >= json_number_value(mx) : d > json_number_value(mx)))
            return err_set(KF_EINVAL, "%s: must be %s %g, got %s", path, xmx ? "less than" : "at most",
                           json_number_value(mx), got);
    }
    if (json_is_string(v)) {
        size_t n = utf8_chars(json_string_value(v));
        const json_t *mn = json_object_get(schema, "minLength"), *mx = json_object_get(schema, "maxLength");
        if (json_is_integer(mn) && n < (size_t)json_integer_value(mn))
            return err_set(KF_EINVAL, "%s: must have at least %" JSON_INTEGER_FORMAT " characters, got %zu", path,
                           json_integer_value(mn), n);
        if (json_is_integer(mx) && n > (size_t)json_integer_value(mx))
            return err_set(KF_EINVAL, "%s: must have at most %" JSON_INTEGER_FORMAT " characters, got %zu", path,
                           json_integer_value(mx), n);
    }
    if (json_is_array(v)) {
        size_t n = json_array_size(v);
        const json_t *mn = json_object_get(schema, "minItems"), *mx = json_object_get(schema, "maxItems");
        if (json_is_integer(mn) && n < (size_t)json_integer_value(mn))
            return err_set(KF_EINVAL, "%s: must have at least %" JSON_INTEGER_FORMAT " items, got %zu", path,
                           json_integer_value(mn), n);
        if (json_is_integer(mx) && n > (size_t)json_integer_value(mx))
            return err_set(KF_EINVAL, "%s: must have at most %" JSON_INTEGER_FORMAT " items, got %zu", path,
                           json_integer_value(mx), n);
    }
    return 0;
}

/* x-kubernetes-list-type set (no equal items) and map (no two items with the same keys). */
static int check_list_type(const json_t *v, const json_t *schema, const char *path)
{
    const char *lt = json_string_value(json_object_get(schema, "x-kubernetes-list-type"));
    if (!lt || !json_is_array(v))
        return 0;
    const json_t *keys = json_object_get(schema, "x-kubernetes-list-map-keys");
    for (size_t i = 0; i < json_array_size(v); i++) {
        for (size_t j = 0; j < i; j++) {
            const json_t *a = json_array_get(v, i), *b = json_array_get(v, j);
            if (!strcmp(lt, "set") && json_equal((json_t *)a, (json_t *)b)) {
                char got[80];
                value_text(got, sizeof got, a);
                return err_set(KF_EINVAL, "%s[%zu]: duplicate value %s", path, i, got);
            }
            if (!strcmp(lt, "map") && json_is_array(keys) && json_array_size(keys)) {
                int same = 1;
                size_t k;
                json_t *key;
                json_array_foreach(keys, k, key) {
                    const char *kn = json_string_value(key);
                    same = same && kn && json_equal(json_object_get(a, kn), json_object_get(b, kn));
                }
                if (same) {
                    char got[80];
                    const char *k0 = json_string_value(json_array_get(keys, 0));
                    value_text(got, sizeof got, json_object_get(a, k0));
                    return err_set(KF_EINVAL, "%s[%zu]: duplicate entry with %s %s", path, i, k0, got);
                }
            }
        }
    }
    return 0;
}

int crd_schema_validate(const json_t *v, const json_t *schema, const char *path)
{
    int rc;
    if (!json_is_object(schema))
        return 0;
    if ((rc = check_type(v, schema, path)) < 0 || (rc = check_enum(v, schema, path)) < 0 ||
        (rc = check_bounds(v, schema, path)) < 0 || (rc = check_list_type(v, schema, path)) < 0)
        return rc;
    char *sub = NULL;
    if (json_is_object(v)) {
        const json_t *props = json_object_get(schema, "properties");
        int open = !props || json_is_true(json_object_get(schema, "x-kubernetes-preserve-unknown-fields")) ||
                   json_object_get(schema, "additionalProperties");
        const char *k;
        json_t *x;
        if (!open) {
            json_object_foreach((json_t *)v, k, x) {
                if (!json_object_get(props, k))
                    return unknown_field(path, k, props);
            }
        }
        size_t i;
        json_t *req;
        json_array_foreach(json_object_get(schema, "required"), i, req) {
            const char *name = json_string_value(req);
            if (name && !json_object_get(v, name))
                return err_set(KF_EINVAL, "%s.%s: required field is missing", path, name);
        }
        json_object_foreach((json_t *)v, k, x) {
            const json_t *ps = json_object_get(props, k);
            if (!ps)
                ps = json_object_get(schema, "additionalProperties");
            if (!json_is_object(ps))
                continue;
            if (asprintf(&sub, "%s.%s", path, k) < 0)
                return err_set(KF_ENOMEM, "out of memory");
            rc = crd_schema_validate(x, ps, sub);
            free(sub);
            if (rc < 0)
                return rc;
        }
    } else if (json_is_array(v)) {
        const json_t *items = json_object_get(schema, "items");
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) {
            if (asprintf(&sub, "%s[%zu]", path, i) < 0)
                return err_set(KF_ENOMEM, "out of memory");
            rc = crd_schema_validate(x, items, sub);
            free(sub);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

int crd_validate(const crd *c, const json_t *obj)
{
    /* The top level reads better without a leading "." ("spec.epochs", not ".spec.epochs"). */
    const json_t *props = json_object_get(c->schema, "properties");
    const char *k;
    json_t *x;
    if (!json_is_object(obj))
        return err_set(KF_EINVAL, "a TrainingJob must be an object, got %s", kind_of(obj));
    json_object_foreach((json_t *)obj, k, x) {
        const json_t *ps = json_object_get(props, k);
        if (!ps) {
            /* unknown_field wants a path; at the top level it is the object itself */
            const char *best = NULL, *kk;
            json_t *p;
            json_object_foreach((json_t *)props, kk, p) {
                if (distance(k, kk) < 3)
                    best = kk;
            }
            if (best)
                return err_set(KF_EINVAL, "%s: unknown field (did you mean \"%s\"?)", k, best);
            return err_set(KF_EINVAL, "%s: unknown field (a TrainingJob has apiVersion, kind, metadata, spec)", k);
        }
        int rc = crd_schema_validate(x, ps, k);
        if (rc < 0)
            return rc;
    }
    size_t i;
    json_t *req;
    json_array_foreach(json_object_get(c->schema, "required"), i, req) {
        const char *name = json_string_value(req);
        if (name && !json_object_get(obj, name))
            return err_set(KF_EINVAL, "%s: required field is missing", name);
    }
    return 0;
}
