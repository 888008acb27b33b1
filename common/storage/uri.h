/* uri: the storage URI forms. gs://bucket/object, file:///abs/path, or a plain local path. */
#ifndef KUBEFIT_STORAGE_URI_H
#define KUBEFIT_STORAGE_URI_H

typedef enum { STORAGE_URI_FILE = 1, STORAGE_URI_GS } storage_uri_kind;

typedef struct {
    storage_uri_kind kind;
    char *bucket;   /* gs: the bucket; NULL for files */
    char *path;     /* gs: the object name or prefix ("" for the bucket root); file: the path */
} storage_uri;

/* Parses s. Returns KF_EINVAL (naming s) for an unknown scheme, an empty or malformed bucket name,
 * a file:// URI with a host, or an empty path. Dispose with storage_uri_dispose. */
int storage_uri_parse(storage_uri *out, const char *s);
void storage_uri_dispose(storage_uri *u);
/* Formats back: "gs://b/p" or the local path. Caller frees. */
char *storage_uri_format(const storage_uri *u);

#endif
