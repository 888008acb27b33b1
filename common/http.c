#include "http.h"

#include "err.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* One easy handle per thread and client, kept between requests: its connection cache keeps
 * the connection to the server open, so a client makes as many connections as threads use it
 * (libcurl does not support sharing one connection cache between threads). */
typedef struct {
    http_client *owner;
    CURL *h;
    int busy; /* a request of this thread is running on h (a nested request gets its own) */
} thread_handle;

struct http_client {
    http_options opt;
    char *ca_file, *ca_pem, *cert_file, *cert_pem, *key_file, *key_pem;
    CURLSH *share; /* DNS and TLS sessions, which libcurl shares safely */
    pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
    pthread_key_t key; /* -> thread_handle */
    int key_ok;
    pthread_mutex_t handles_mu;
    thread_handle **handles; /* every live one, for http_client_free */
    size_t nhandles;
};

typedef struct {
    char *data;
    size_t len, cap;
} growbuf;

static int growbuf_append(growbuf *b, const char *p, size_t n)
{
    if (n > SIZE_MAX - b->len - 1)
        return -1;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap = cap > SIZE_MAX / 2 ? b->len + n + 1 : cap * 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return -1;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static void global_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }
void http_global_init(void) { pthread_once(&global_once, global_init_once); }

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access a, void *u)
{
    (void)h, (void)a;
    pthread_mutex_lock(&((http_client *)u)->locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *u)
{
    (void)h;
    pthread_mutex_unlock(&((http_client *)u)->locks[data]);
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static void forget_handle(http_client *c, thread_handle *t)
{
    pthread_mutex_lock(&c->handles_mu);
    for (size_t i = 0; i < c->nhandles; i++)
        if (c->handles[i] == t) {
            c->handles[i] = c->handles[--c->nhandles];
            break;
        }
    pthread_mutex_unlock(&c->handles_mu);
}

/* A thread that used the client ends: its handle (and connection) goes with it. */
static void on_thread_exit(void *u)
{
    thread_handle *t = u;
    forget_handle(t->owner, t);
    curl_easy_cleanup(t->h);
    free(t);
}

/* This thread's handle, reset to defaults but keeping its connections; NULL when out of memory.
 * *slot is NULL for a one-off handle (a nested request), which release_handle cleans up. */
static CURL *acquire_handle(http_client *c, thread_handle **slot)
{
    thread_handle *t = pthread_getspecific(c->key);
    *slot = NULL;
    if (t && t->busy)
        return curl_easy_init(); /* a request from inside a request: a one-off handle */
    if (!t) {
        thread_handle **grown = NULL;
        if (!(t = calloc(1, sizeof *t)) || !(t->h = curl_easy_init())) {
            free(t);
            return NULL;
        }
        t->owner = c;
        pthread_mutex_lock(&c->handles_mu);
        grown = realloc(c->handles, (c->nhandles + 1) * sizeof *grown);
        if (grown)
            (c->handles = grown)[c->nhandles++] = t;
        pthread_mutex_unlock(&c->handles_mu);
        if (!grown || pthread_setspecific(c->key, t) != 0) {
            if (grown)
                forget_handle(c, t);
            curl_easy_cleanup(t->h);
            free(t);
            return NULL;
        }
    } else {
        curl_easy_reset(t->h);
    }
    t->busy = 1;
    *slot = t;
    return t->h;
}

static void release_handle(CURL *h, thread_handle *slot)
{
    if (slot)
        slot->busy = 0;
    else if (h)
        curl_easy_cleanup(h);
}

http_client *http_client_new(const http_options *opt)
{
    http_global_init();
    http_client *c = calloc(1, sizeof *c);
    if (!c) {
        err_set(KF_ENOMEM, "http: out of memory");
        return NULL;
    }
    if (opt)
        c->opt = *opt;
    c->ca_file = dup_or_null(c->opt.ca_file);
    c->ca_pem = dup_or_null(c->opt.ca_pem);
    c->cert_file = dup_or_null(c->opt.cert_file);
    c->cert_pem = dup_or_null(c->opt.cert_pem);
    c->key_file = dup_or_null(c->opt.key_file);
    c->key_pem = dup_or_null(c->opt.key_pem);
    if (!c->opt.connect_timeout_ms)
        c->opt.connect_timeout_ms = 10000;
    if (!c->opt.timeout_ms)
        c->opt.timeout_ms = 60000;
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&c->locks[i], NULL);
    pthread_mutex_init(&c->handles_mu, NULL);
    if (pthread_key_create(&c->key, on_thread_exit) != 0) {
        c->key_ok = 0;
        http_client_free(c);
        err_set(KF_ENOMEM, "http: no thread key left");
        return NULL;
    }
    c->key_ok = 1;
    c->share = curl_share_init();
    if (!c->share) {
        http_client_free(c);
        err_set(KF_ENOMEM, "http: curl_share_init failed");
        return NULL;
    }
    curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    return c;
}

void http_client_free(http_client *c)
{
    if (!c)
        return;
    /* No thread may use c any more: the handles of threads still alive go now. */
    if (c->key_ok)
        pthread_key_delete(c->key);
    for (size_t i = 0; i < c->nhandles; i++) {
        curl_easy_cleanup(c->handles[i]->h);
        free(c->handles[i]);
    }
    free(c->handles);
    pthread_mutex_destroy(&c->handles_mu);
    if (c->share)
        curl_share_cleanup(c->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&c->locks[i]);
    free(c->ca_file), free(c->ca_pem), free(c->cert_file);
    free(c->cert_pem), free(c->key_file), free(c->key_pem);
    free(c);
}

typedef struct {
    const http_request *req;
    growbuf body, headers;
    long status;
    int aborted;
} transfer;

static size_t on_header(char *p, size_t size, size_t n, void *u)
{
    transfer *t = u;
    size_t len = size * n;
    /* A new status line starts a new header block (redirects, 100-continue). */
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0)
        t->headers.len = 0;
    if (growbuf_append(&t->headers, p, len) != 0)
        return 0;
    return len;
}

static size_t on_body(char *p, size_t size, size_t n, void *u)
{
    transfer *t = u;
    size_t len = size * n;
    /* Non-2xx bodies always go to memory so the caller can read the server's message. */
    int ok2xx = t->status >= 200 && t->status < 300;
    if (ok2xx && t->req->on_data) {
        if (t->req->on_data(t->req->ctx, p, len) != 0) {
            t->aborted = 1;
            return 0;
        }
        return len;
    }
    if (ok2xx && t->req->sink)
        return fwrite(p, 1, len, t->req->sink);
    if (growbuf_append(&t->body, p, len) != 0)
        return 0;
    return len;
}


typedef struct {
    transfer t;
    CURL *h;
} transfer_ctx;

static size_t on_body_status(char *p, size_t size, size_t n, void *u)
{
    transfer_ctx *x = u;
    if (!x->t.status)
        curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->t.status);
    return on_body(p, size, n, &x->t);
}

static int on_progress(void *u, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    return *(const volatile int *)u ? 1 : 0;
}

static size_t on_read_file(char *buf, size_t size, size_t n, void *u)
{
    return fread(buf, 1, size * n, (FILE *)u);
}

int http_do(http_client *c, const http_request *req, http_response *resp)
{
    memset(resp, 0, sizeof *resp);
    if (!c || !req || !req->url)
        return err_set(KF_EINVAL, "http: missing client or URL");
    const char *method = req->method ? req->method : "GET";
    int rc = KF_OK;
    struct curl_slist *hdrs = NULL;
    transfer_ctx x = {.t = {.req = req}};
    thread_handle *slot = NULL;
    CURL *h = acquire_handle(c, &slot);
    if (!h) {
        rc = err_set(KF_ENOMEM, "http: curl_easy_init failed");
        goto done;
    }
    x.h = h;
    curl_easy_setopt(h, CURLOPT_URL, req->url);
    curl_easy_setopt(h, CURLOPT_SHARE, c->share);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->opt.connect_timeout_ms);
    long timeout = req->timeout_ms ? req->timeout_ms : c->opt.timeout_ms;
    if (timeout > 0)
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout);
    if (req->low_speed_secs > 0) {
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, req->low_speed_secs);
    }
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_MAXCONNECTS, 2L);
    if (req->cancel) {
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)req->cancel);
    }
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &x.t);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body_status);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
    if (c->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    if (c->ca_pem) {
        struct curl_blob blob = {.data = c->ca_pem, .len = strlen(c->ca_pem), .flags = CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
    }
    if (c->cert_file)
        curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert_file);
    if (c->cert_pem) {
        struct curl_blob blob = {.data = c->cert_pem, .len = strlen(c->cert_pem), .flags = CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &blob);
        curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
    }
    if (c->key_file)
        curl_easy_setopt(h, CURLOPT_SSLKEY, c->key_file);
    if (c->key_pem) {
        struct curl_blob blob = {.data = c->key_pem, .len = strlen(c->key_pem), .flags = CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &blob);
        curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
    }
    if (c->opt.insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    for (const char *const *p = req->headers; p && *p; p++) {
        struct curl_slist *n = curl_slist_append(hdrs, *p);
        if (!n) {
            rc = err_set(KF_ENOMEM, "http: out of memory");
            goto done;
        }
        hdrs = n;
    }
    /* Do not send "Expect: 100-continue"; it costs a round trip on every upload. */
    hdrs = curl_slist_append(hdrs, "Expect:");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);

    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        if (req->body_file) {
            curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read_file);
            curl_easy_setopt(h, CURLOPT_READDATA, req->body_file);
            curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->body_len);
        } else {
            curl_easy_setopt(h, CURLOPT_POST, 1L);
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? req->body : "");
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(req->body ? req->body_len : 0));
        }
    }

    CURLcode cc = curl_easy_perform(h);
    if (x.t.aborted) {
        rc = err_set(KF_EIO, "%s %s: aborted by the receiver", method, req->url);
        goto done;
    }
    if (cc != CURLE_OK) {
        int code = (cc == CURLE_WRITE_ERROR || cc == CURLE_READ_ERROR || cc == CURLE_OUT_OF_MEMORY)
                       ? KF_EIO
                       : KF_ERETRY;
        rc = err_set(code, "%s %s: %s", method, req->url, curl_easy_strerror(cc));
        goto done;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    resp->body = x.t.body.data ? x.t.body.data : strdup("");
    resp->body_len = x.t.body.len;
    resp->headers = x.t.headers.data ? x.t.headers.data : strdup("");
    x.t.body.data = NULL;
    x.t.headers.data = NULL;
done:
    free(x.t.body.data);
    free(x.t.headers.data);
    curl_slist_free_all(hdrs);
    release_handle(h, slot);
    return rc;
}

void http_response_dispose(http_response *resp)
{
    if (!resp)
        return;
    free(resp->body);
    free(resp->headers);
    memset(resp, 0, sizeof *resp);
}

char *http_response_header(const http_response *resp, const char *name)
{
    if (!resp || !resp->headers || !name)
        return NULL;
    size_t nlen = strlen(name);
    const char *line = resp->headers;
    while (*line) {
        const char *eol = strchr(line, '\n');
        size_t llen = eol ? (size_t)(eol - line) : strlen(line);
        if (llen > nlen && line[nlen] == ':' && strncasecmp(line, name, nlen) == 0) {
            const char *v = line + nlen + 1;
            const char *end = line + llen;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            while (end > v && (end[-1] == '\r' || end[-1] == ' '))
                end--;
            return strndup(v, (size_t)(end - v));
        }
        if (!eol)
            break;
        line = eol + 1;
    }
    return NULL;
}

char *http_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    if (n > (SIZE_MAX - 1) / 3)
        return NULL;
    char *out = malloc(n * 3 + 1), *o = out;
    if (!out)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}
