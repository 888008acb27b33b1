#include "storage.h"

#include "err.h"
#include "gcs.h"
#include "local.h"
#include "uri.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

struct storage {
    storage_options opt;
    char *emulator_host, *credentials_file, *metadata_host, *endpoint;
    pthread_mutex_t mu;
    gcs *gcs; /* created on the first gs:// call; guarded by mu */
};

static char *dup_opt(const char *v, const char *env)
{
    if (!v && env)
        v = getenv(env);
    return v && *v ? strdup(v) : NULL;
}

int storage_new(storage **out, const storage_options *opt)
{
    *out = NULL;
    storage *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(KF_ENOMEM, "storage: out of memory");
    if (opt)
        s->opt = *opt;
    storage_options *o = &s->opt;
    if (o->max_attempts <= 0)
        o->max_attempts = 8;
    if (o->backoff_initial_ms <= 0)
        o->backoff_initial_ms = 250;
    if (o->backoff_max_ms <= 0)
        o->backoff_max_ms = 8000;
    if (o->timeout_ms <= 0)
        o->timeout_ms = 120000;
    if (!o->chunk_size)
        o->chunk_size = 8u << 20;
    if (!o->resumable_threshold)
        o->resumable_threshold = 8u << 20;
    int rc = 0;
    if (o->chunk_size % (256u << 10) != 0) {
        rc = err_set(KF_EINVAL, "storage: chunk_size %zu is not a multiple of 256 KiB", o->chunk_size);
        goto done;
    }
    s->emulator_host = dup_opt(o->emulator_host, "STORAGE_EMULATOR_HOST");
    s->credentials_file = dup_opt(o->credentials_file, "GOOGLE_APPLICATION_CREDENTIALS");
    s->metadata_host = dup_opt(o->metadata_host, "GCE_METADATA_HOST");
    s->endpoint = dup_opt(o->endpoint, NULL);
    o->emulator_host = o->credentials_file = o->metadata_host = o->endpoint = NULL;
    pthread_mutex_init(&s->mu, NULL);
done:
    if (rc)
        free(s);
    else
        *out = s;
    return rc;
}

void storage_free(storage *s)
{
    if (!s)
        return;
    gcs_free(s->gcs);
    free(s->emulator_host), free(s->credentials_file), free(s->metadata_host), free(s->endpoint);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* The GCS client, created with the credentials in order: emulator, key file, metadata server. */
static int gcs_of(storage *s, gcs **out)
{
    int rc = 0;
    char *endpoint = NULL;
    pthread_mutex_lock(&s->mu);
    if (s->gcs)
        goto done;
    gcs_auth_options ao = {.max_attempts = 6, .backoff_initial_ms = s->opt.backoff_initial_ms,
                           .backoff_max_ms = s->opt.backoff_max_ms > 4000 ? 4000 : s->opt.backoff_max_ms};
    if (s->emulator_host) {
        ao.kind = GCS_AUTH_NONE;
        const char *h = s->emulator_host;
        int scheme = strncmp(h, "http://", 7) == 0 || strncmp(h, "https://", 8) == 0;
        if (asprintf(&endpoint, "%s%s", scheme ? "" : "http://", h) < 0)
            endpoint = NULL;
    } else {
        ao.kind = s->credentials_file ? GCS_AUTH_KEY_FILE : GCS_AUTH_METADATA;
        ao.key_file = s->credentials_file;
        ao.metadata_host = s->metadata_host;
        endpoint = strdup(s->endpoint ? s->endpoint : "https://storage.googleapis.com");
    }
    if (!endpoint) {
        rc = err_set(KF_ENOMEM, "storage: out of memory");
        goto done;
    }
    gcs_auth *auth = NULL;
    if ((rc = gcs_auth_new(&auth, &ao)))
        goto done;
    rc = gcs_new(&s->gcs, &(gcs_options){.endpoint = endpoint, .max_attempts = s->opt.max_attempts,
                                         .backoff_initial_ms = s->opt.backoff_initial_ms,
                                         .backoff_max_ms = s->opt.backoff_max_ms, .timeout_ms = s->opt.timeout_ms,
                                         .chunk_size = s->opt.chunk_size,
                                         .resumable_threshold = s->opt.resumable_threshold,
                                         .list_page_size = s->opt.list_page_size, .on_chunk = s->opt.on_chunk,
                                         .on_chunk_ctx = s->opt.on_chunk_ctx},
                 auth);
done:
    *out = s->gcs;
    pthread_mutex_unlock(&s->mu);
    free(endpoint);
    return rc;
}

/* Parses uri; for gs:// also makes sure there is a client and, when object is set, an object name. */
static int resolve(storage *s, const char *uri, storage_uri *u, gcs **g, int object)
{
    *g = NULL;
    int rc = storage_uri_parse(u, uri);
    if (rc || u->kind != STORAGE_URI_GS)
        return rc;
    if (object && (!*u->path || u->path[strlen(u->path) - 1] == '/')) {
        storage_uri_dispose(u);
        return err_set(KF_EINVAL, "storage: %s: names a folder, not an object", uri);
    }
    if ((rc = gcs_of(s, g)))
        storage_uri_dispose(u);
    return rc;
}

int storage_get(storage *s, const char *uri, const char *local_path, const storage_range *range)
{
    storage_uri u = {0};
    gcs *g = NULL;
    FILE *f = NULL;
    char *tmp = NULL;
    int rc = resolve(s, uri, &u, &g, 1);
    if (rc)
        return rc;
    if ((rc = local_temp_for(local_path, &f, &tmp)))
        goto done;
    rc = g ? gcs_download(g, u.bucket, u.path, f, range) : local_copy_range(f, u.path, range);
    if (rc) {
        fclose(f);
        unlink(tmp);
    } else {
        rc = local_commit(f, tmp, local_path);
    }
done:
    free(tmp);
    storage_uri_dispose(&u);
    return rc;
}

const char *storage_content_type(const char *name)
{
    static const struct { const char *ext, *type; } types[] = {
        {".json", "application/json"}, {".csv", "text/csv"},          {".txt", "text/plain; charset=utf-8"},
        {".svg", "image/svg+xml"},     {".html", "text/html"},        {".yaml", "application/yaml"},
        {".gz", "application/gzip"},   {".safetensors", "application/octet-stream"},
    };
    const char *dot = name ? strrchr(name, '.') : NULL;
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcasecmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

/* Uploads an open, seekable file of size bytes. */
static int put_stream(storage *s, FILE *src, int64_t size, const char *uri)
{
    storage_uri u = {0};
    gcs *g = NULL;
    FILE *f = NULL;
    char *tmp = NULL;
    int rc = resolve(s, uri, &u, &g, 1);
    if (rc)
        return rc;
    if (g) {
        rc = gcs_upload(g, u.bucket, u.path, src, size, storage_content_type(u.path));
        goto done;
    }
    if ((rc = local_temp_for(u.path, &f, &tmp)))
        goto done;
    char buf[65536];
    if (fseeko(src, 0, SEEK_SET) != 0)
        rc = err_set(KF_EIO, "storage: %s: the source is not seekable", uri);
    for (size_t n; !rc && (n = fread(buf, 1, sizeof buf, src)) > 0;)
        if (fwrite(buf, 1, n, f) != n)
            rc = err_set(KF_EIO, "storage: %s: write failed", uri);
    if (!rc && ferror(src))
        rc = err_set(KF_EIO, "storage: %s: reading the source failed", uri);
    if (rc) {
        fclose(f);
        unlink(tmp);
    } else {
        rc = local_commit(f, tmp, u.path);
    }
done:
    free(tmp);
    storage_uri_dispose(&u);
    return rc;
}

int storage_put(storage *s, const char *local_path, const char *uri)
{
    FILE *f = fopen(local_path, "rb");
    struct stat st;
    if (!f)
        return err_set(KF_ENOTFOUND, "storage: %s: cannot open the file to upload to %s", local_path, uri);
    int rc = 0;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode))
        rc = err_set(KF_EINVAL, "storage: %s: not a regular file", local_path);
    else
        rc = put_stream(s, f, st.st_size, uri);
    fclose(f);
    return rc;
}

int storage_write(storage *s, const char *uri, const void *data, size_t len)
{
    FILE *f = tmpfile();
    if (!f)
        return err_set(KF_EIO, "storage: %s: cannot create a temporary file", uri);
    int rc = 0;
    if ((len && fwrite(data, 1, len, f) != len) || fflush(f) != 0)
        rc = err_set(KF_EIO, "storage: %s: writing a temporary file failed", uri);
    else
        rc = put_stream(s, f, (int64_t)len, uri);
    fclose(f);
    return rc;
}

int storage_read(storage *s, const char *uri, char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    storage_uri u = {0};
    gcs *g = NULL;
    FILE *f = NULL;
    int rc = resolve(s, uri, &u, &g, 1);
    if (rc)
        return rc;
    if (!(f = tmpfile())) {
        rc = err_set(KF_EIO, "storage: %s: cannot create a temporary file", uri);
        goto done;
    }
    rc = g ? gcs_download(g, u.bucket, u.path, f, NULL) : local_copy_range(f, u.path, NULL);
    if (rc)
        goto done;
    off_t n = ftello(f);
    if (n < 0 || (uint64_t)n >= SIZE_MAX || !(*data = malloc((size_t)n + 1))) {
        rc = err_set(KF_ENOMEM, "storage: %s: %lld bytes do not fit in memory", uri, (long long)n);
        goto done;
    }
    rewind(f);
    if (fread(*data, 1, (size_t)n, f) != (size_t)n) {
        rc = err_set(KF_EIO, "storage: %s: reading back the temporary file failed", uri);
        free(*data);
        *data = NULL;
        goto done;
    }
    (*data)[n] = '\0';
    *len = (size_t)n;
done:
    if (f)
        fclose(f);
    storage_uri_dispose(&u);
    return rc;
}

void storage_object_dispose(storage_object *o)
{
    if (!o)
        return;
    free(o->uri), free(o->crc32c), free(o->md5), free(o->content_type), free(o->updated);
    memset(o, 0, sizeof *o);
}

int storage_stat(storage *s, const char *uri, storage_object *out)
{
    memset(out, 0, sizeof *out);
    storage_uri u = {0};
    gcs *g = NULL;
    int rc = resolve(s, uri, &u, &g, 1);
    if (rc)
        return rc;
    rc = g ? gcs_stat(g, u.bucket, u.path, out) : local_stat(u.path, out);
    storage_uri_dispose(&u);
    return rc;
}

int storage_exists(storage *s, const char *uri, int *exists)
{
    *exists = 0;
    storage_object o;
    int rc = storage_stat(s, uri, &o);
    if (rc == 0) {
        *exists = 1;
        storage_object_dispose(&o);
    } else if (rc == KF_ENOTFOUND && !strstr(err_msg(), "does not exist")) {
        rc = 0; /* a missing object is an answer; a missing bucket stays an error */
        err_clear();
    }
    return rc;
}

int storage_list(storage *s, const char *prefix_uri, storage_object **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    storage_uri u = {0};
    gcs *g = NULL;
    int rc = resolve(s, prefix_uri, &u, &g, 0);
    if (rc)
        return rc;
    rc = g ? gcs_list(g, u.bucket, u.path, out, n) : local_list(u.path, out, n);
    /* A file:// prefix lists file:// URIs; a plain path lists paths. */
    for (size_t i = 0; !rc && !g && strncmp(prefix_uri, "file://", 7) == 0 && i < *n; i++) {
        char *f = NULL;
        if (asprintf(&f, "file://%s", (*out)[i].uri) < 0) {
            rc = err_set(KF_ENOMEM, "storage: out of memory");
            storage_list_free(*out, *n);
            *out = NULL, *n = 0;
            break;
        }
        free((*out)[i].uri);
        (*out)[i].uri = f;
    }
    storage_uri_dispose(&u);
    return rc;
}

void storage_list_free(storage_object *objs, size_t n)
{
    for (size_t i = 0; objs && i < n; i++)
        storage_object_dispose(&objs[i]);
    free(objs);
}

int storage_delete(storage *s, const char *uri)
{
    storage_uri u = {0};
    gcs *g = NULL;
    int rc = resolve(s, uri, &u, &g, 1);
    if (rc)
        return rc;
    rc = g ? gcs_delete(g, u.bucket, u.path) : local_delete(u.path);
    storage_uri_dispose(&u);
    return rc;
}
