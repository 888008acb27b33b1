/* storage: one interface over gs:// (GCS JSON API) and file:// / plain local paths.
 * A storage context is thread-safe; create one per process and pass it around.
 * Every function returns 0 or a negative KF_E* code with err_msg() naming the URI and the cause:
 *   KF_ENOTFOUND missing object or bucket (the message says which), KF_EAUTH permission denied or
 *   bad credentials (with the identity when known), KF_EINVAL bad URI or credentials file,
 *   KF_ERETRY transient failure after the bounded retries, KF_EIO local I/O or checksum mismatch. */
#ifndef KUBEFIT_STORAGE_H
#define KUBEFIT_STORAGE_H

#include <stddef.h>
#include <stdint.h>

typedef struct storage storage;

typedef struct {
    const char *emulator_host;    /* NULL: env STORAGE_EMULATOR_HOST; set means no auth */
    const char *credentials_file; /* NULL: env GOOGLE_APPLICATION_CREDENTIALS */
    const char *metadata_host;    /* NULL: env GCE_METADATA_HOST, else metadata.google.internal */
    const char *endpoint;         /* GCS base URL; NULL: https://storage.googleapis.com */
    int max_attempts;             /* per operation, the first included; default 8 */
    long backoff_initial_ms;      /* default 250; doubles per attempt, full jitter */
    long backoff_max_ms;          /* default 8000 */
    long timeout_ms;              /* per HTTP request; default 120000 */
    size_t chunk_size;            /* resumable chunk, a multiple of 256 KiB; default 8 MiB */
    size_t resumable_threshold;   /* uploads of at least this many bytes are resumable; default 8 MiB */
    int list_page_size;           /* objects per list page (maxResults); 0: the server's default */
    /* Called after each resumable chunk is acknowledged (tests use it to cut the connection). */
    void (*on_chunk)(void *ctx, int64_t done, int64_t total);
    void *on_chunk_ctx;
} storage_options;

/* Creates a context; opt may be NULL. Credentials are resolved lazily, on the first gs:// call.
 * Caller frees with storage_free. */
int storage_new(storage **out, const storage_options *opt);
void storage_free(storage *s);

typedef struct {
    int64_t offset;
    int64_t length; /* -1: to the end */
} storage_range;

/* Downloads uri into local_path, streaming through a temporary file renamed on success.
 * Whole-object downloads are verified against the object's crc32c (or md5). range may be NULL. */
int storage_get(storage *s, const char *uri, const char *local_path, const storage_range *range);
/* Uploads local_path to uri: one request when small, resumable chunks when large. The stored
 * object's crc32c is compared with the local one. */
int storage_put(storage *s, const char *local_path, const char *uri);
/* Reads a whole object into memory: *data is NUL-terminated (not counted in *len). Caller frees. */
int storage_read(storage *s, const char *uri, char **data, size_t *len);
/* Writes len bytes as the object uri (replacing it). */
int storage_write(storage *s, const char *uri, const void *data, size_t len);

typedef struct {
    char *uri;          /* full URI of the object */
    int64_t size;
    char *crc32c;       /* base64 big-endian, as GCS reports it; NULL when unknown */
    char *md5;          /* base64; NULL when unknown */
    int64_t generation; /* 0 for local files */
    char *content_type; /* NULL for local files */
    char *updated;      /* RFC 3339 */
} storage_object;

void storage_object_dispose(storage_object *o);
int storage_stat(storage *s, const char *uri, storage_object *out);
/* *exists = 0 or 1; a missing bucket is an error (KF_ENOTFOUND), a missing object is not. */
int storage_exists(storage *s, const char *uri, int *exists);
/* Every object whose URI starts with prefix_uri (all pages), in name order. For local paths,
 * the files under the prefix's folder, recursively. Free with storage_list_free. */
int storage_list(storage *s, const char *prefix_uri, storage_object **out, size_t *n);
void storage_list_free(storage_object *objs, size_t n);
int storage_delete(storage *s, const char *uri);

/* Content type guessed from a name's extension (.json, .csv, .txt, .svg, ...). Static string. */
const char *storage_content_type(const char *name);

#endif
