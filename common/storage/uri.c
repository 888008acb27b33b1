#include "uri.h"

#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* GCS bucket names: 3-222 chars of [a-z0-9._-], starting and ending with a letter or digit. */
static int bucket_name_ok(const char *b, size_t n)
{
    if (n < 3 || n > 222)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = b[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && c != '.' && c != '_' && c != '-')
            return 0;
        if ((i == 0 || i == n - 1) && !alnum)
            return 0;
    }
    return 1;
}

int storage_uri_parse(storage_uri *out, const char *s)
{
    memset(out, 0, sizeof *out);
    if (!s || !*s)
        return err_set(KF_EINVAL, "storage: empty URI");
    if (strncmp(s, "gs://", 5) == 0) {
        const char *b = s + 5, *slash = strchr(b, '/');
        size_t blen = slash ? (size_t)(slash - b) : strlen(b);
        if (!bucket_name_ok(b, blen))
            return err_set(KF_EINVAL, "storage: %s: bad bucket name (3-222 chars of a-z 0-9 . _ -)", s);
        out->kind = STORAGE_URI_GS;
        out->bucket = strndup(b, blen);
        out->path = strdup(slash ? slash + 1 : "");
    } else if (strncmp(s, "file://", 7) == 0) {
        const char *p = s + 7;
        if (strncmp(p, "localhost/", 10) == 0)
            p += 9;
        if (*p != '/')
            return err_set(KF_EINVAL, "storage: %s: file URIs need an absolute path (file:///path)", s);
        out->kind = STORAGE_URI_FILE;
        out->path = strdup(p);
    } else if (strstr(s, "://")) {
        return err_set(KF_EINVAL, "storage: %s: unsupported scheme (use gs://, file:// or a path)", s);
    } else {
        out->kind = STORAGE_URI_FILE;
        out->path = strdup(s);
    }
    if ((out->kind == STORAGE_URI_GS && !out->bucket) || !out->path) {
        storage_uri_dispose(out);
        return err_set(KF_ENOMEM, "storage: out of memory");
    }
    return 0;
}

void storage_uri_dispose(storage_uri *u)
{
    if (!u)
        return;
    free(u->bucket);
    free(u->path);
    memset(u, 0, sizeof *u);
}

char *storage_uri_format(const storage_uri *u)
{
    if (u->kind == STORAGE_URI_FILE)
        return strdup(u->path);
    size_t n = strlen(u->bucket) + strlen(u->path) + 7;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "gs://%s/%s", u->bucket, u->path);
    return s;
}
