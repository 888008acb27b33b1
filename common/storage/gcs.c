#include "gcs.h"

#include "b64.h"
#include "backoff.h"
#include "crc32c.h"
#include "err.h"
#include "gcs_json.h"
#include "http.h"
#include "log.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SESSION_RESTARTS 3

struct gcs {
    gcs_options opt;
    char *endpoint;
    gcs_auth *auth;
    http_client *http;
};

int gcs_new(gcs **out, const gcs_options *opt, gcs_auth *auth)
{
    *out = NULL;
    gcs *g = calloc(1, sizeof *g);
    if (!g) {
        gcs_auth_free(auth);
        return err_set(KF_ENOMEM, "storage: out of memory");
    }
    g->opt = *opt;
    g->auth = auth;
    g->endpoint = strdup(opt->endpoint);
    g->opt.endpoint = NULL;
    if (g->endpoint) {
        size_t n = strlen(g->endpoint);
        while (n > 0 && g->endpoint[n - 1] == '/')
            g->endpoint[--n] = '\0';
    }
    g->http = http_client_new(&(http_options){.connect_timeout_ms = 10000, .timeout_ms = opt->timeout_ms});
    if (!g->endpoint || !g->http) {
        gcs_free(g);
        return err_set(KF_ENOMEM, "storage: out of memory");
    }
    *out = g;
    return 0;
}

void gcs_free(gcs *g)
{
    if (!g)
        return;
    http_client_free(g->http);
    gcs_auth_free(g->auth);
    free(g->endpoint);
    free(g);
}

/* One logical API call; the retry loop re-sends it (calling reset first) on transient failures. */
typedef struct {
    const char *method;
    const char *url;
    const char *uri;             /* gs://bucket/name, for messages */
    const char *headers[6];      /* extra headers, NULL-terminated */
    const void *body;
    size_t body_len;
    FILE *body_file;
    http_data_fn on_data;
    void *ctx;
    int (*reset)(void *ctx);     /* before every attempt; may be NULL */
    int once;                    /* no retries: the caller has its own recovery */
} gcs_call;

static int call_do(gcs *g, const gcs_call *c, http_response *resp)
{
    int rc = 0, refreshed = 0;
    memset(resp, 0, sizeof *resp);
    for (int attempt = 1;; attempt++) {
        char *auth = NULL;
        const char *hdrs[8];
        size_t k = 0;
        if ((rc = gcs_auth_header(g->auth, &auth)))
            return err_wrap(rc, "storage: %s", c->uri);
        for (; k < 6 && c->headers[k]; k++)
            hdrs[k] = c->headers[k];
        if (auth)
            hdrs[k++] = auth;
        hdrs[k] = NULL;
        if (c->reset && (rc = c->reset(c->ctx))) {
            free(auth);
            return rc;
        }
        rc = http_do(g->http,
                     &(http_request){.method = c->method, .url = c->url, .headers = hdrs, .body = c->body,
                                     .body_len = c->body_len, .body_file = c->body_file, .on_data = c->on_data,
                                     .ctx = c->ctx, .low_speed_secs = 60,
                                     /* a large download may take long: only a stall aborts it */
                                     .timeout_ms = c->on_data ? -1 : 0},
                     resp);
        free(auth);
        if (rc == 0 && resp->status == 401 && !refreshed && gcs_auth_kind_of(g->auth) != GCS_AUTH_NONE) {
            /* The token may have been revoked or expired early: fetch a new one, once. */
            refreshed = 1;
            gcs_auth_invalidate(g->auth);
            http_response_dispose(resp);
            attempt--;
            continue;
        }
        int retry = rc == KF_ERETRY || (rc == 0 && backoff_retryable_status(resp->status));
        if (!retry)
            return rc;
        if (rc == 0) {
            char *m = gcs_json_error_message(resp->body, resp->body_len);
            rc = err_set(KF_ERETRY, "storage: %s: %s: HTTP %ld%s%s", c->uri, c->method, resp->status,
                         m ? ": " : "", m ? m : "");
            free(m);
            if (c->once)
                return 0; /* the caller reads the status */
            http_response_dispose(resp);
        } else {
            err_wrap(rc, "storage: %s", c->uri);
        }
        if (c->once)
            return rc;
        if (attempt >= g->opt.max_attempts)
            return err_wrap(KF_ERETRY, "storage: giving up after %d attempts", attempt);
        long d = backoff_delay_ms(attempt, g->opt.backoff_initial_ms, g->opt.backoff_max_ms);
        log_warn("storage", "request failed, retrying", "{s:s,s:s,s:i,s:I,s:s}", "uri", c->uri, "method",
                 c->method, "attempt", attempt, "delay_ms", (json_int_t)d, "error", err_msg());
        backoff_sleep_ms(d);
    }
}

static char *object_url(const gcs *g, const char *prefix, const char *bucket, const char *name, const char *query)
{
    char *eb = http_escape(bucket), *en = name ? http_escape(name) : NULL, *url = NULL;
    if (eb && (en || !name) &&
        asprintf(&url, "%s%s/storage/v1/b/%s%s%s%s", g->endpoint, prefix, eb, name ? "/o/" : "", name ? en : "",
                 query ? query : "") < 0)
        url = NULL;
    free(eb), free(en);
    return url;
}

static char *gs_uri(const char *bucket, const char *name)
{
    char *s = NULL;
    return asprintf(&s, "gs://%s/%s", bucket, name ? name : "") < 0 ? NULL : s;
}

static int bucket_status(gcs *g, const char *bucket, long *status)
{
    *status = 0;
    char *url = object_url(g, "", bucket, NULL, NULL), *uri = gs_uri(bucket, NULL);
    http_response r = {0};
    int rc = url && uri ? call_do(g, &(gcs_call){.method = "GET", .url = url, .uri = uri}, &r) : KF_ENOMEM;
    if (rc == 0)
        *status = r.status;
    http_response_dispose(&r);
    free(url), free(uri);
    return rc;
}

/* Turns a non-success response into a clear error naming the URI and the cause. */
static int status_error(gcs *g, const http_response *r, const char *bucket, const char *name, const char *what)
{
    char *m = gcs_json_error_message(r->body, r->body_len);
    const char *sep = m ? ": " : "", *msg = m ? m : "";
    const char *u = name ? "/" : "", *n = name ? name : "";
    int rc;
    if (r->status == 404) {
        long bs = 0;
        if (!name) /* bucket-level calls (list): the bucket itself is missing */
            rc = err_set(KF_ENOTFOUND, "storage: gs://%s: %s: bucket %s does not exist", bucket, what, bucket);
        else if (bucket_status(g, bucket, &bs) == 0 && bs == 404)
            rc = err_set(KF_ENOTFOUND, "storage: gs://%s%s%s: %s: bucket %s does not exist", bucket, u, n, what, bucket);
        else if (bs == 200)
            rc = err_set(KF_ENOTFOUND, "storage: gs://%s%s%s: %s: no such object", bucket, u, n, what);
        else
            rc = err_set(KF_ENOTFOUND, "storage: gs://%s%s%s: %s: not found%s%s", bucket, u, n, what, sep, msg);
    } else if (r->status == 401 || r->status == 403) {
        rc = err_set(KF_EAUTH, "storage: gs://%s%s%s: %s: permission denied (HTTP %ld) for %s%s%s", bucket, u, n,
                     what, r->status, gcs_auth_identity(g->auth), sep, msg);
    } else if (r->status == 400 || r->status == 412 || r->status == 416) {
        rc = err_set(KF_EINVAL, "storage: gs://%s%s%s: %s: HTTP %ld%s%s", bucket, u, n, what, r->status, sep, msg);
    } else {
        rc = err_set(KF_EIO, "storage: gs://%s%s%s: %s: unexpected HTTP %ld%s%s", bucket, u, n, what, r->status, sep,
                     msg);
    }
    free(m);
    return rc;
}

int gcs_stat(gcs *g, const char *bucket, const char *name, storage_object *out)
{
    memset(out, 0, sizeof *out);
    char *url = object_url(g, "", bucket, name, NULL), *uri = gs_uri(bucket, name);
    http_response r = {0};
    int rc = url && uri ? 0 : err_set(KF_ENOMEM, "storage: out of memory");
    if (!rc)
        rc = call_do(g, &(gcs_call){.method = "GET", .url = url, .uri = uri}, &r);
    if (!rc && r.status != 200)
        rc = status_error(g, &r, bucket, name, "stat");
    if (!rc && (rc = gcs_json_object(out, r.body, r.body_len)))
        rc = err_wrap(rc, "storage: %s", uri);
    http_response_dispose(&r);
    free(url), free(uri);
    return rc;
}

/* Download state: the file, and running checksums of what was written. */
typedef struct {
    FILE *f;
    int64_t written;
    uint32_t crc;
    EVP_MD_CTX *md5;
} sink;

static int sink_reset(void *u)
{
    sink *s = u;
    fflush(s->f);
    if (ftruncate(fileno(s->f), 0) != 0 || fseeko(s->f, 0, SEEK_SET) != 0)
        return err_set(KF_EIO, "storage: cannot truncate the download file");
    s->written = 0;
    s->crc = 0;
    if (s->md5 && EVP_DigestInit_ex(s->md5, EVP_md5(), NULL) != 1)
        return err_set(KF_EIO, "storage: md5 init failed");
    return 0;
}

static int sink_data(void *u, const char *data, size_t len)
{
    sink *s = u;
    if (fwrite(data, 1, len, s->f) != len)
        return -1;
    s->crc = crc32c_update(s->crc, data, len);
    if (s->md5)
        EVP_DigestUpdate(s->md5, data, len);
    s->written += (int64_t)len;
    return 0;
}

/* Compares what arrived with the object's metadata; 0 when it matches. */
static int verify(const storage_object *meta, sink *s, const char *uri, const char *what)
{
    if (s->written != meta->size)
        return err_set(KF_EIO, "storage: %s: %s: size mismatch: expected %lld bytes, got %lld", uri, what,
                       (long long)meta->size, (long long)s->written);
    if (meta->crc32c) {
        char got[9];
        crc32c_to_b64(s->crc, got);
        if (strcmp(got, meta->crc32c) != 0)
            return err_set(KF_EIO, "storage: %s: %s: crc32c mismatch: expected %s, got %s (corrupted data)", uri,
                           what, meta->crc32c, got);
    } else if (meta->md5 && s->md5) {
        unsigned char d[EVP_MAX_MD_SIZE];
        unsigned int dn = 0;
        char got[32];
        EVP_DigestFinal_ex(s->md5, d, &dn);
        b64_encode_to(got, d, dn, 0);
        if (strcmp(got, meta->md5) != 0)
            return err_set(KF_EIO, "storage: %s: %s: md5 mismatch: expected %s, got %s (corrupted data)", uri, what,
                           meta->md5, got);
    } else {
        log_warn("storage", "no checksum to verify against", "{s:s}", "uri", uri);
    }
    return 0;
}

int gcs_download(gcs *g, const char *bucket, const char *name, FILE *f, const storage_range *range)
{
    storage_object meta = {0};
    sink s = {.f = f, .md5 = EVP_MD_CTX_new()};
    http_response r = {0};
    char *url = object_url(g, "", bucket, name, "?alt=media"), *uri = gs_uri(bucket, name), *rh = NULL;
    int rc = url && uri && s.md5 ? 0 : err_set(KF_ENOMEM, "storage: out of memory");
    if (rc)
        goto done;
    if (range) {
        if (range->offset < 0 || range->length == 0 || range->length < -1) {
            rc = err_set(KF_EINVAL, "storage: %s: bad byte range (offset %lld, length %lld)", uri,
                         (long long)range->offset, (long long)range->length);
            goto done;
        }
        int ok = range->length < 0
                     ? asprintf(&rh, "Range: bytes=%lld-", (long long)range->offset)
                     : asprintf(&rh, "Range: bytes=%lld-%lld", (long long)range->offset,
                                (long long)(range->offset + range->length - 1));
        if (ok < 0) {
            rc = err_set(KF_ENOMEM, "storage: out of memory");
            goto done;
        }
        rc = call_do(g, &(gcs_call){.method = "GET", .url = url, .uri = uri, .headers = {rh}, .on_data = sink_data,
                                    .ctx = &s, .reset = sink_reset},
                     &r);
        if (!rc && r.status != 200 && r.status != 206)
            rc = status_error(g, &r, bucket, name, "download");
        goto done;
    }
    /* Whole object: metadata first (size, checksums, a clear not-found), then the bytes. A mismatch
     * is retried once from scratch (the object may have been replaced in between). */
    for (int tries = 1;; tries++) {
        storage_object_dispose(&meta);
        http_response_dispose(&r);
        if ((rc = gcs_stat(g, bucket, name, &meta)))
            goto done;
        rc = call_do(g, &(gcs_call){.method = "GET", .url = url, .uri = uri, .on_data = sink_data, .ctx = &s,
                                    .reset = sink_reset},
                     &r);
        if (!rc && r.status != 200)
            rc = status_error(g, &r, bucket, name, "download");
        if (rc)
            goto done;
        if (fflush(f) != 0) {
            rc = err_set(KF_EIO, "storage: %s: writing the local file failed", uri);
            goto done;
        }
        rc = verify(&meta, &s, uri, "download");
        if (!rc || tries >= 2)
            goto done;
        log_warn("storage", "download checksum mismatch, retrying", "{s:s,s:s}", "uri", uri, "error", err_msg());
    }
done:
    if (!rc && fflush(f) != 0)
        rc = err_set(KF_EIO, "storage: %s: writing the local file failed", uri);
    storage_object_dispose(&meta);
    http_response_dispose(&r);
    EVP_MD_CTX_free(s.md5);
    free(url), free(uri), free(rh);
    return rc;
}

static int rewind_file(void *u) { return fseeko((FILE *)u, 0, SEEK_SET) == 0 ? 0 : err_set(KF_EIO, "storage: cannot rewind the upload source"); }

/* Checks the stored object against the local size and crc32c. */
static int check_uploaded(const storage_object *o, int64_t size, uint32_t crc, const char *uri)
{
    char want[9];
    crc32c_to_b64(crc, want);
    if (o->size != size)
        return err_set(KF_EIO, "storage: %s: upload: stored object has %lld bytes, expected %lld", uri,
                       (long long)o->size, (long long)size);
    if (o->crc32c && strcmp(o->crc32c, want) != 0)
        return err_set(KF_EIO, "storage: %s: upload: crc32c mismatch: stored %s, local %s (corrupted upload)", uri,
                       o->crc32c, want);
    return 0;
}

static int upload_simple(gcs *g, const char *bucket, const char *name, FILE *f, int64_t size, const char *ct,
                         const char *uri, storage_object *obj)
{
    char *en = http_escape(name), *eb = http_escape(bucket), *url = NULL, *cth = NULL;
    http_response r = {0};
    int rc = 0;
    if (!en || !eb || asprintf(&url, "%s/upload/storage/v1/b/%s/o?uploadType=media&name=%s", g->endpoint, eb, en) < 0 ||
        asprintf(&cth, "Content-Type: %s", ct) < 0) {
        url = cth = NULL;
        rc = err_set(KF_ENOMEM, "storage: out of memory");
        goto done;
    }
    rc = call_do(g, &(gcs_call){.method = "POST", .url = url, .uri = uri, .headers = {cth}, .body = "",
                                .body_file = size ? f : NULL, .body_len = (size_t)size, .ctx = f,
                                .reset = rewind_file},
                 &r);
    if (!rc && r.status != 200 && r.status != 201)
        rc = status_error(g, &r, bucket, name, "upload");
    if (!rc && (rc = gcs_json_object(obj, r.body, r.body_len)))
        rc = err_wrap(rc, "storage: %s: upload response", uri);
done:
    http_response_dispose(&r);
    free(en), free(eb), free(url), free(cth);
    return rc;
}

/* Parses a 308's "Range: bytes=0-N" into the next offset (N+1); no header means nothing persisted. */
static int64_t persisted_bytes(const http_response *r)
{
    char *h = http_response_header(r, "Range");
    int64_t next = 0;
    long long a, b;
    if (h && sscanf(h, "bytes=%lld-%lld", &a, &b) == 2 && a == 0 && b >= 0)
        next = b + 1;
    free(h);
    return next;
}

static int upload_resumable(gcs *g, const char *bucket, const char *name, FILE *f, int64_t size, const char *ct,
                            const char *uri, storage_object *obj)
{
    char *en = http_escape(name), *eb = http_escape(bucket), *url = NULL, *cth = NULL, *xct = NULL, *xlen = NULL;
    char *session = NULL, *crh = NULL;
    char body[160];
    size_t chunk = g->opt.chunk_size;
    unsigned char *buf = malloc(chunk);
    http_response r = {0};
    int rc = 0, restarts = 0;
    if (!buf || !en || !eb ||
        asprintf(&url, "%s/upload/storage/v1/b/%s/o?uploadType=resumable&name=%s", g->endpoint, eb, en) < 0 ||
        asprintf(&cth, "Content-Type: %s", ct) < 0 || asprintf(&xct, "X-Upload-Content-Type: %s", ct) < 0 ||
        asprintf(&xlen, "X-Upload-Content-Length: %lld", (long long)size) < 0) {
        rc = err_set(KF_ENOMEM, "storage: out of memory");
        goto done;
    }
    snprintf(body, sizeof body, "{\"contentType\":\"%s\"}", ct);
start:
    free(session), session = NULL;
    http_response_dispose(&r);
    rc = call_do(g, &(gcs_call){.method = "POST", .url = url, .uri = uri, .body = body, .body_len = strlen(body),
                                .headers = {"Content-Type: application/json; charset=UTF-8", xct, xlen}},
                 &r);
    if (!rc && r.status != 200 && r.status != 201)
        rc = status_error(g, &r, bucket, name, "starting a resumable upload");
    if (rc)
        goto done;
    if (!(session = http_response_header(&r, "Location")) || !*session) {
        rc = err_set(KF_EIO, "storage: %s: resumable upload: no session URL in the response", uri);
        goto done;
    }
    log_debug("storage", "resumable upload started", "{s:s,s:I}", "uri", uri, "size", (json_int_t)size);
    int64_t off = 0;
    int failures = 0, query = 0;
    for (;;) {
        size_t n = 0;
        free(crh), crh = NULL;
        http_response_dispose(&r);
        if (query || size == 0) {
            if (asprintf(&crh, "Content-Range: bytes */%lld", (long long)size) < 0)
                crh = NULL;
        } else {
            n = (size_t)(size - off < (int64_t)chunk ? size - off : (int64_t)chunk);
            if (fseeko(f, off, SEEK_SET) != 0 || fread(buf, 1, n, f) != n) {
                rc = err_set(KF_EIO, "storage: %s: upload: reading the source at offset %lld failed", uri,
                             (long long)off);
                goto done;
            }
            if (asprintf(&crh, "Content-Range: bytes %lld-%lld/%lld", (long long)off, (long long)(off + (int64_t)n - 1),
                         (long long)size) < 0)
                crh = NULL;
        }
        if (!crh) {
            rc = err_set(KF_ENOMEM, "storage: out of memory");
            goto done;
        }
        rc = call_do(g, &(gcs_call){.method = "PUT", .url = session, .uri = uri, .headers = {cth, crh},
                                    .body = n ? (const void *)buf : "", .body_len = n, .once = 1},
                     &r);
        if (rc == KF_ERETRY || (rc == 0 && backoff_retryable_status(r.status))) {
            if (++failures >= g->opt.max_attempts) {
                rc = err_wrap(KF_ERETRY, "storage: %s: resumable upload: giving up after %d failed attempts at "
                                         "offset %lld", uri, failures, (long long)off);
                goto done;
            }
            long d = backoff_delay_ms(failures, g->opt.backoff_initial_ms, g->opt.backoff_max_ms);
            log_warn("storage", "upload chunk failed, will query the session and resume", "{s:s,s:I,s:i,s:I,s:s}",
                     "uri", uri, "offset", (json_int_t)off, "attempt", failures, "delay_ms", (json_int_t)d,
                     "error", err_msg());
            backoff_sleep_ms(d);
            query = 1;
            rc = 0;
            continue;
        }
        if (rc)
            goto done;
        if (r.status == 308) {
            int64_t next = persisted_bytes(&r);
            if (next > size) {
                rc = err_set(KF_EIO, "storage: %s: resumable upload: server claims %lld of %lld bytes", uri,
                             (long long)next, (long long)size);
                goto done;
            }
            if (next > off || !query)
                failures = 0;
            off = next;
            query = 0;
            if (g->opt.on_chunk)
                g->opt.on_chunk(g->opt.on_chunk_ctx, off, size);
            continue;
        }
        if (r.status == 200 || r.status == 201) {
            storage_object_dispose(obj);
            if ((rc = gcs_json_object(obj, r.body, r.body_len))) {
                rc = err_wrap(rc, "storage: %s: upload response", uri);
                goto done;
            }
            if (obj->size == size)
                goto done; /* the checksum is checked by the caller */
            /* Finalised short (some servers commit on a status query): start over. */
            log_warn("storage", "upload finalised with the wrong size, restarting", "{s:s,s:I,s:I}", "uri", uri,
                     "stored", (json_int_t)obj->size, "size", (json_int_t)size);
        } else if (r.status != 404 && r.status != 410) {
            rc = status_error(g, &r, bucket, name, "resumable upload");
            goto done;
        }
        /* The session is gone (expired, or the server lost it): start a new one. */
        if (++restarts > MAX_SESSION_RESTARTS) {
            rc = err_set(KF_ERETRY, "storage: %s: resumable upload: session lost %d times, giving up", uri, restarts);
            goto done;
        }
        log_warn("storage", "upload session lost, starting a new one", "{s:s,s:I,s:i}", "uri", uri, "offset",
                 (json_int_t)off, "restart", restarts);
        goto start;
    }
done:
    http_response_dispose(&r);
    free(buf), free(en), free(eb), free(url), free(cth), free(xct), free(xlen), free(session), free(crh);
    return rc;
}

int gcs_upload(gcs *g, const char *bucket, const char *name, FILE *f, int64_t size, const char *content_type)
{
    storage_object obj = {0};
    char *uri = gs_uri(bucket, name);
    unsigned char *buf = malloc(1 << 20);
    uint32_t crc = 0;
    int64_t seen = 0;
    int rc = uri && buf ? 0 : err_set(KF_ENOMEM, "storage: out of memory");
    if (rc)
        goto done;
    /* Local checksum first: the stored object must match it. */
    if (fseeko(f, 0, SEEK_SET) != 0) {
        rc = err_set(KF_EIO, "storage: %s: upload: the source is not seekable", uri);
        goto done;
    }
    for (size_t n; (n = fread(buf, 1, 1 << 20, f)) > 0;) {
        crc = crc32c_update(crc, buf, n);
        seen += (int64_t)n;
    }
    if (ferror(f) || seen != size) {
        rc = err_set(KF_EIO, "storage: %s: upload: read %lld bytes of the source, expected %lld", uri,
                     (long long)seen, (long long)size);
        goto done;
    }
    for (int tries = 1;; tries++) {
        storage_object_dispose(&obj);
        if (size >= (int64_t)g->opt.resumable_threshold)
            rc = upload_resumable(g, bucket, name, f, size, content_type, uri, &obj);
        else
            rc = upload_simple(g, bucket, name, f, size, content_type, uri, &obj);
        if (!rc)
            rc = check_uploaded(&obj, size, crc, uri);
        if (rc != KF_EIO || tries >= 2)
            break;
        log_warn("storage", "uploaded object does not match, uploading again", "{s:s,s:s}", "uri", uri, "error",
                 err_msg());
    }
done:
    storage_object_dispose(&obj);
    free(uri), free(buf);
    return rc;
}

int gcs_list(gcs *g, const char *bucket, const char *prefix, storage_object **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    char *ep = http_escape(prefix), *token = NULL, *url = NULL, *uri = gs_uri(bucket, prefix), *base = NULL;
    char maxr[32] = "";
    http_response r = {0};
    int rc = 0;
    if (g->opt.list_page_size > 0)
        snprintf(maxr, sizeof maxr, "&maxResults=%d", g->opt.list_page_size);
    if (!ep || !uri || asprintf(&base, "%s/storage/v1/b/%s/o?prefix=%s%s", g->endpoint, bucket, ep, maxr) < 0) {
        base = NULL;
        rc = err_set(KF_ENOMEM, "storage: out of memory");
        goto done;
    }
    for (int page = 0;; page++) {
        free(url), url = NULL;
        char *et = token ? http_escape(token) : NULL;
        int ok = token ? (et ? asprintf(&url, "%s&pageToken=%s", base, et) : -1) : asprintf(&url, "%s", base);
        free(et);
        if (ok < 0) {
            url = NULL;
            rc = err_set(KF_ENOMEM, "storage: out of memory");
            goto done;
        }
        http_response_dispose(&r);
        rc = call_do(g, &(gcs_call){.method = "GET", .url = url, .uri = uri}, &r);
        if (!rc && r.status != 200)
            rc = status_error(g, &r, bucket, NULL, "list");
        if (rc)
            goto done;
        free(token), token = NULL;
        if ((rc = gcs_json_list_page(out, n, &cap, &token, r.body, r.body_len))) {
            rc = err_wrap(rc, "storage: %s: list page %d", uri, page + 1);
            goto done;
        }
        log_debug("storage", "list page", "{s:s,s:i,s:I,s:b}", "uri", uri, "page", page + 1, "objects",
                  (json_int_t)*n, "more", token != NULL);
        if (!token)
            break;
        if (page > 1000000) {
            rc = err_set(KF_EIO, "storage: %s: list: the server keeps returning pages", uri);
            goto done;
        }
    }
done:
    if (rc) {
        storage_list_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    http_response_dispose(&r);
    free(ep), free(token), free(url), free(uri), free(base);
    return rc;
}

int gcs_delete(gcs *g, const char *bucket, const char *name)
{
    char *url = object_url(g, "", bucket, name, NULL), *uri = gs_uri(bucket, name);
    http_response r = {0};
    int rc = url && uri ? 0 : err_set(KF_ENOMEM, "storage: out of memory");
    if (!rc)
        rc = call_do(g, &(gcs_call){.method = "DELETE", .url = url, .uri = uri}, &r);
    if (!rc && r.status != 204 && r.status != 200)
        rc = status_error(g, &r, bucket, name, "delete");
    http_response_dispose(&r);
    free(url), free(uri);
    return rc;
}
