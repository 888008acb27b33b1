#include "gcs_json.h"

#include "err.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *load(const char *json, size_t len, const char *what)
{
    json_error_t e;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &e);
    if (!root) {
        err_set(KF_EINVAL, "storage: %s: malformed JSON at line %d: %s", what, e.line, e.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        err_set(KF_EINVAL, "storage: %s: expected a JSON object", what);
        return NULL;
    }
    return root;
}

/* Optional string field: 0 and *out NULL when absent; KF_EINVAL when present but not a string. */
static int opt_str(char **out, json_t *obj, const char *key, const char *what)
{
    *out = NULL;
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return err_set(KF_EINVAL, "storage: %s: field %s is not a string", what, key);
    *out = strndup(json_string_value(v), json_string_length(v));
    return *out ? 0 : err_set(KF_ENOMEM, "storage: out of memory");
}

/* GCS sends int64 fields as decimal strings ("size":"123"); accept integers too. */
static int opt_int64(int64_t *out, json_t *obj, const char *key, const char *what)
{
    *out = 0;
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0)
            return err_set(KF_EINVAL, "storage: %s: field %s is negative", what, key);
        *out = json_integer_value(v);
        return 0;
    }
    if (!json_is_string(v))
        return err_set(KF_EINVAL, "storage: %s: field %s is not a number", what, key);
    const char *s = json_string_value(v);
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (!*s || *end || errno || x < 0 || s[0] == '-' || s[0] == '+' || s[0] == ' ')
        return err_set(KF_EINVAL, "storage: %s: field %s is not a non-negative integer: \"%.40s\"", what,
                       key, s);
    *out = x;
    return 0;
}

static int object_from(storage_object *out, json_t *o)
{
    const char *what = "object metadata";
    char *name = NULL, *bucket = NULL;
    memset(out, 0, sizeof *out);
    int rc;
    if (!json_is_object(o)) {
        rc = err_set(KF_EINVAL, "storage: %s: expected a JSON object", what);
        goto done;
    }
    if ((rc = opt_str(&name, o, "name", what)) || (rc = opt_str(&bucket, o, "bucket", what)) ||
        (rc = opt_str(&out->crc32c, o, "crc32c", what)) || (rc = opt_str(&out->md5, o, "md5Hash", what)) ||
        (rc = opt_str(&out->content_type, o, "contentType", what)) ||
        (rc = opt_str(&out->updated, o, "updated", what)) || (rc = opt_int64(&out->size, o, "size", what)) ||
        (rc = opt_int64(&out->generation, o, "generation", what)))
        goto done;
    if (!name || !bucket) {
        rc = err_set(KF_EINVAL, "storage: %s: missing %s", what, !name ? "name" : "bucket");
        goto done;
    }
    size_t n = strlen(bucket) + strlen(name) + 7;
    out->uri = malloc(n);
    if (!out->uri) {
        rc = err_set(KF_ENOMEM, "storage: out of memory");
        goto done;
    }
    snprintf(out->uri, n, "gs://%s/%s", bucket, name);
done:
    free(name);
    free(bucket);
    if (rc)
        storage_object_dispose(out);
    return rc;
}

int gcs_json_object(storage_object *out, const char *json, size_t len)
{
    memset(out, 0, sizeof *out);
    json_t *root = load(json, len, "object metadata");
    if (!root)
        return KF_EINVAL;
    int rc = object_from(out, root);
    json_decref(root);
    return rc;
}

int gcs_json_list_page(storage_object **items, size_t *n, size_t *cap, char **next_token,
                       const char *json, size_t len)
{
    const char *what = "object list";
    *next_token = NULL;
    int rc = 0;
    json_t *root = load(json, len, what);
    if (!root)
        return KF_EINVAL;
    json_t *arr = json_object_get(root, "items");
    if (arr && !json_is_array(arr)) {
        rc = err_set(KF_EINVAL, "storage: %s: items is not an array", what);
        goto done;
    }
    size_t i;
    json_t *it;
    json_array_foreach(arr, i, it) {
        if (*n == *cap) {
            size_t nc = *cap ? *cap * 2 : 64;
            storage_object *p = nc > SIZE_MAX / sizeof *p ? NULL : realloc(*items, nc * sizeof *p);
            if (!p) {
                rc = err_set(KF_ENOMEM, "storage: out of memory");
                goto done;
            }
            *items = p;
            *cap = nc;
        }
        if ((rc = object_from(&(*items)[*n], it)))
            goto done;
        (*n)++;
    }
    rc = opt_str(next_token, root, "nextPageToken", what);
    if (!rc && *next_token && !**next_token) {
        free(*next_token);
        *next_token = NULL;
    }
done:
    json_decref(root);
    return rc;
}

char *gcs_json_error_message(const char *json, size_t len)
{
    json_t *root = json_loadb(json, len, 0, NULL);
    char *msg = NULL;
    json_t *e = json_object_get(root, "error");
    json_t *m = json_is_object(e) ? json_object_get(e, "message") : NULL;
    if (json_is_string(m))
        msg = strndup(json_string_value(m), json_string_length(m));
    else if (json_is_string(e)) /* OAuth2 errors: {"error":"invalid_grant","error_description":..} */
        msg = strndup(json_string_value(e), json_string_length(e));
    json_t *d = json_object_get(root, "error_description");
    if (msg && json_is_string(d)) {
        size_t n = strlen(msg) + json_string_length(d) + 3;
        char *both = malloc(n);
        if (both)
            snprintf(both, n, "%s: %s", msg, json_string_value(d));
        free(msg);
        msg = both;
    }
    json_decref(root);
    return msg;
}

int gcs_json_token(char **token, long *expires_in, const char *json, size_t len)
{
    const char *what = "token response";
    *token = NULL;
    *expires_in = 0;
    json_t *root = load(json, len, what);
    if (!root)
        return KF_EINVAL;
    int rc = 0;
    json_t *t = json_object_get(root, "access_token");
    json_t *e = json_object_get(root, "expires_in");
    if (!json_is_string(t) || json_string_length(t) == 0 || strlen(json_string_value(t)) != json_string_length(t)) {
        rc = err_set(KF_EINVAL, "storage: %s: no access_token string", what);
        goto done;
    }
    if (!json_is_integer(e) || json_integer_value(e) <= 0 || json_integer_value(e) > 10L * 365 * 86400) {
        rc = err_set(KF_EINVAL, "storage: %s: expires_in is not a positive integer", what);
        goto done;
    }
    for (const char *p = json_string_value(t); *p; p++) {
        if (*p < 0x21 || *p > 0x7e) { /* it goes into an HTTP header */
            rc = err_set(KF_EINVAL, "storage: %s: access_token has invalid characters", what);
            goto done;
        }
    }
    *token = strdup(json_string_value(t));
    *expires_in = (long)json_integer_value(e);
    if (!*token)
        rc = err_set(KF_ENOMEM, "storage: out of memory");
done:
    json_decref(root);
    return rc;
}

int gcs_json_key(gcs_key *out, const char *json, size_t len, const char *path)
{
    memset(out, 0, sizeof *out);
    json_error_t e;
    char *type = NULL;
    int rc = 0;
    json_t *root = json_loadb(json, len, 0, &e);
    if (!json_is_object(root)) {
        rc = err_set(KF_EINVAL, "storage: credentials file %s: not a JSON object (line %d: %s)", path,
                     e.line, root ? "not an object" : e.text);
        goto done;
    }
    if ((rc = opt_str(&type, root, "type", path)) || (rc = opt_str(&out->client_email, root, "client_email", path)) ||
        (rc = opt_str(&out->private_key, root, "private_key", path)) ||
        (rc = opt_str(&out->private_key_id, root, "private_key_id", path)) ||
        (rc = opt_str(&out->token_uri, root, "token_uri", path))) {
        rc = err_wrap(KF_EINVAL, "storage: credentials file");
        goto done;
    }
    if (!type || strcmp(type, "service_account") != 0) {
        rc = err_set(KF_EINVAL, "storage: credentials file %s: type is \"%s\", expected \"service_account\"",
                     path, type ? type : "(missing)");
        goto done;
    }
    const char *missing = !out->client_email ? "client_email"
                          : !out->private_key ? "private_key"
                                              : NULL;
    if (missing) {
        rc = err_set(KF_EINVAL, "storage: credentials file %s: missing %s", path, missing);
        goto done;
    }
    if (!out->token_uri && !(out->token_uri = strdup("https://oauth2.googleapis.com/token")))
        rc = err_set(KF_ENOMEM, "storage: out of memory");
done:
    free(type);
    json_decref(root);
    if (rc)
        gcs_key_dispose(out);
    return rc;
}

void gcs_key_dispose(gcs_key *k)
{
    if (!k)
        return;
    free(k->client_email);
    free(k->private_key);
    free(k->private_key_id);
    free(k->token_uri);
    memset(k, 0, sizeof *k);
}
