/* gcs: the GCS JSON API calls the storage layer needs, with bounded retries (exponential backoff,
 * jitter) on 408/429/5xx and connection errors, and checksums on every whole transfer. */
#ifndef KUBEFIT_STORAGE_GCS_H
#define KUBEFIT_STORAGE_GCS_H

#include "gcs_auth.h"
#include "storage.h"

#include <stdio.h>

typedef struct gcs gcs;

typedef struct {
    const char *endpoint;  /* base URL, e.g. https://storage.googleapis.com or http://127.0.0.1:4443 */
    int max_attempts;
    long backoff_initial_ms, backoff_max_ms, timeout_ms;
    size_t chunk_size, resumable_threshold;
    int list_page_size;    /* maxResults per list page; 0: the server's default */
    void (*on_chunk)(void *ctx, int64_t done, int64_t total);
    void *on_chunk_ctx;
} gcs_options;

/* Takes ownership of auth (freed by gcs_free, also on failure). Caller frees with gcs_free. */
int gcs_new(gcs **out, const gcs_options *opt, gcs_auth *auth);
void gcs_free(gcs *g);

int gcs_stat(gcs *g, const char *bucket, const char *name, storage_object *out);
/* Streams the object (or a byte range of it) into f from its current position; f is truncated and
 * rewritten when an attempt restarts. Whole objects are checked against crc32c/md5. */
int gcs_download(gcs *g, const char *bucket, const char *name, FILE *f, const storage_range *range);
/* Uploads size bytes read from f (seekable) as the object. */
int gcs_upload(gcs *g, const char *bucket, const char *name, FILE *f, int64_t size, const char *content_type);
int gcs_list(gcs *g, const char *bucket, const char *prefix, storage_object **out, size_t *n);
int gcs_delete(gcs *g, const char *bucket, const char *name);

#endif
