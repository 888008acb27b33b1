#include "gcs_auth.h"

#include "b64.h"
#include "backoff.h"
#include "err.h"
#include "fileio.h"
#include "gcs_json.h"
#include "http.h"
#include "log.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_SCOPE "https://www.googleapis.com/auth/devstorage.read_write"
#define DEFAULT_METADATA_HOST "metadata.google.internal"
#define TOKEN_PATH "/computeMetadata/v1/instance/service-accounts/default/token"
#define EMAIL_PATH "/computeMetadata/v1/instance/service-accounts/default/email"

struct gcs_auth {
    gcs_auth_options opt;
    char *key_file, *metadata_host, *scope;
    gcs_key key;
    EVP_PKEY *pkey;
    http_client *http;
    pthread_mutex_t mu;
    char *token;      /* guarded by mu */
    time_t refresh_at; /* refetch at or after this time */
    char *identity;
    int fetches;
};

static time_t now_of(const gcs_auth *a) { return a->opt.now ? a->opt.now(a->opt.now_ctx) : time(NULL); }

/* The key file, at most 64 MiB; any failure is a bad credentials setting (KF_EINVAL). */
static int read_file(char **out, size_t *len, const char *path)
{
    int rc = file_read_max(out, len, path, (size_t)64 << 20);
    if (rc < 0)
        rc = err_wrap(rc == KF_ENOMEM ? rc : KF_EINVAL, "storage: credentials file");
    return rc;
}

static int load_key(gcs_auth *a)
{
    char *json = NULL;
    size_t len = 0;
    BIO *bio = NULL;
    int rc = read_file(&json, &len, a->key_file);
    if (rc)
        goto done;
    if ((rc = gcs_json_key(&a->key, json, len, a->key_file)))
        goto done;
    bio = BIO_new_mem_buf(a->key.private_key, -1);
    a->pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    if (!a->pkey) {
        rc = err_set(KF_EINVAL, "storage: credentials file %s: private_key is not a PEM private key", a->key_file);
        goto done;
    }
    if (EVP_PKEY_get_base_id(a->pkey) != EVP_PKEY_RSA) {
        rc = err_set(KF_EINVAL, "storage: credentials file %s: private_key is not an RSA key", a->key_file);
        goto done;
    }
    a->identity = strdup(a->key.client_email);
done:
    BIO_free(bio);
    free(json);
    return rc;
}

int gcs_auth_new(gcs_auth **out, const gcs_auth_options *opt)
{
    *out = NULL;
    int rc = 0;
    gcs_auth *a = calloc(1, sizeof *a);
    if (!a)
        return err_set(KF_ENOMEM, "storage: out of memory");
    a->opt = *opt;
    pthread_mutex_init(&a->mu, NULL);
    if (!a->opt.max_attempts)
        a->opt.max_attempts = 6;
    if (!a->opt.backoff_initial_ms)
        a->opt.backoff_initial_ms = 250;
    if (!a->opt.backoff_max_ms)
        a->opt.backoff_max_ms = 4000;
    a->scope = strdup(opt->scope ? opt->scope : DEFAULT_SCOPE);
    a->metadata_host = strdup(opt->metadata_host && *opt->metadata_host ? opt->metadata_host : DEFAULT_METADATA_HOST);
    a->key_file = opt->key_file ? strdup(opt->key_file) : NULL;
    if (!a->scope || !a->metadata_host || (opt->key_file && !a->key_file)) {
        rc = err_set(KF_ENOMEM, "storage: out of memory");
        goto done;
    }
    a->opt.key_file = a->opt.metadata_host = a->opt.scope = NULL;
    if (opt->kind == GCS_AUTH_NONE)
        goto done;
    a->http = http_client_new(&(http_options){.connect_timeout_ms = 5000, .timeout_ms = 30000});
    if (!a->http) {
        rc = KF_ENOMEM;
        goto done;
    }
    if (opt->kind == GCS_AUTH_KEY_FILE) {
        if (!a->key_file) {
            rc = err_set(KF_EINVAL, "storage: no credentials file given");
            goto done;
        }
        rc = load_key(a);
    }
done:
    if (rc)
        gcs_auth_free(a);
    else
        *out = a;
    return rc;
}

void gcs_auth_free(gcs_auth *a)
{
    if (!a)
        return;
    http_client_free(a->http);
    EVP_PKEY_free(a->pkey);
    gcs_key_dispose(&a->key);
    free(a->key_file), free(a->metadata_host), free(a->scope);
    free(a->token), free(a->identity);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

gcs_auth_kind gcs_auth_kind_of(const gcs_auth *a) { return a->opt.kind; }

static char *json_escape_dup(const char *s)
{
    /* The values we embed (emails, URLs, scopes) are plain ASCII; escape quotes and backslashes. */
    size_t n = strlen(s), extra = 0;
    for (const char *p = s; *p; p++)
        extra += (*p == '"' || *p == '\\');
    char *out = malloc(n + extra + 1), *o = out;
    if (!out)
        return NULL;
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\')
            *o++ = '\\';
        *o++ = *p;
    }
    *o = '\0';
    return out;
}

/* header.claims.signature, each base64url. Caller frees *jwt. */
static int make_jwt(gcs_auth *a, char **jwt)
{
    *jwt = NULL;
    int rc = 0;
    char *claims = NULL, *h64 = NULL, *c64 = NULL, *s64 = NULL, *input = NULL;
    char *iss = json_escape_dup(a->key.client_email), *aud = json_escape_dup(a->key.token_uri);
    unsigned char *sig = NULL;
    EVP_MD_CTX *md = NULL;
    char header[160];
    if (a->key.private_key_id && strlen(a->key.private_key_id) < 80 && !strpbrk(a->key.private_key_id, "\"\\"))
        snprintf(header, sizeof header, "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", a->key.private_key_id);
    else
        snprintf(header, sizeof header, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}");
    long long iat = (long long)now_of(a);
    if (!iss || !aud)
        goto oom;
    int n = snprintf(NULL, 0, "{\"iss\":\"%s\",\"scope\":\"%s\",\"aud\":\"%s\",\"iat\":%lld,\"exp\":%lld}", iss,
                     a->scope, aud, iat, iat + 3600);
    if (!(claims = malloc((size_t)n + 1)))
        goto oom;
    snprintf(claims, (size_t)n + 1, "{\"iss\":\"%s\",\"scope\":\"%s\",\"aud\":\"%s\",\"iat\":%lld,\"exp\":%lld}", iss,
             a->scope, aud, iat, iat + 3600);
    h64 = b64_encode(header, strlen(header), 1);
    c64 = b64_encode(claims, strlen(claims), 1);
    if (!h64 || !c64 || !(input = malloc(strlen(h64) + strlen(c64) + 2)))
        goto oom;
    sprintf(input, "%s.%s", h64, c64);
    size_t siglen = 0;
    md = EVP_MD_CTX_new();
    if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, a->pkey) != 1 ||
        EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)input, strlen(input)) != 1 ||
        !(sig = malloc(siglen)) ||
        EVP_DigestSign(md, sig, &siglen, (const unsigned char *)input, strlen(input)) != 1) {
        rc = err_set(KF_EINVAL, "storage: credentials file %s: signing the token request failed", a->key_file);
        goto done;
    }
    if (!(s64 = b64_encode(sig, siglen, 1)) || !(*jwt = malloc(strlen(input) + strlen(s64) + 2)))
        goto oom;
    sprintf(*jwt, "%s.%s", input, s64);
    goto done;
oom:
    rc = err_set(KF_ENOMEM, "storage: out of memory");
done:
    EVP_MD_CTX_free(md);
    free(sig), free(claims), free(h64), free(c64), free(s64), free(input), free(iss), free(aud);
    return rc;
}

/* One token request; on success *resp holds a 200. Retries transient failures with backoff. */
static int fetch(gcs_auth *a, const http_request *req, http_response *resp, const char *what)
{
    int rc = 0;
    for (int attempt = 1;; attempt++) {
        rc = http_do(a->http, req, resp);
        if (rc == 0 && resp->status == 200)
            return 0;
        int retry = rc == KF_ERETRY || (rc == 0 && (backoff_retryable_status(resp->status) ||
                                                     (a->opt.kind == GCS_AUTH_METADATA && resp->status == 404)));
        if (rc == 0 && !retry) {
            char *m = gcs_json_error_message(resp->body, resp->body_len);
            rc = err_set(resp->status == 400 || resp->status == 401 || resp->status == 403 ? KF_EAUTH : KF_EIO,
                         "storage: %s %s: HTTP %ld%s%s", what, req->url, resp->status, m ? ": " : "", m ? m : "");
            free(m);
            http_response_dispose(resp);
            return rc;
        }
        if (rc == 0) {
            rc = err_set(KF_ERETRY, "storage: %s %s: HTTP %ld", what, req->url, resp->status);
            http_response_dispose(resp);
        }
        if (attempt >= a->opt.max_attempts)
            return err_wrap(rc, "storage: %s: giving up after %d attempts", what, attempt);
        long d = backoff_delay_ms(attempt, a->opt.backoff_initial_ms, a->opt.backoff_max_ms);
        log_warn("storage", "token fetch failed, retrying", "{s:s,s:i,s:I,s:s}", "source", what, "attempt",
                 attempt, "delay_ms", (json_int_t)d, "error", err_msg());
        backoff_sleep_ms(d);
    }
}

static int fetch_token(gcs_auth *a, char **token, long *expires_in)
{
    http_response resp = {0};
    char *jwt = NULL, *body = NULL, *url = NULL;
    int rc = 0;
    if (a->opt.kind == GCS_AUTH_KEY_FILE) {
        if ((rc = make_jwt(a, &jwt)))
            goto done;
        static const char grant[] = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=";
        if (!(body = malloc(sizeof grant + strlen(jwt)))) {
            rc = err_set(KF_ENOMEM, "storage: out of memory");
            goto done;
        }
        sprintf(body, "%s%s", grant, jwt);
        const char *hdrs[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
        rc = fetch(a, &(http_request){.method = "POST", .url = a->key.token_uri, .headers = hdrs, .body = body,
                                      .body_len = strlen(body)},
                   &resp, "token endpoint");
        if (rc == KF_EAUTH)
            rc = err_wrap(KF_EAUTH, "storage: service account %s (key file %s) was refused", a->key.client_email,
                          a->key_file);
    } else {
        size_t n = strlen(a->metadata_host) + sizeof TOKEN_PATH + 8;
        if (!(url = malloc(n))) {
            rc = err_set(KF_ENOMEM, "storage: out of memory");
            goto done;
        }
        snprintf(url, n, "http://%s%s", a->metadata_host, TOKEN_PATH);
        const char *hdrs[] = {"Metadata-Flavor: Google", NULL};
        rc = fetch(a, &(http_request){.url = url, .headers = hdrs}, &resp, "metadata server");
        if (rc)
            rc = err_wrap(rc == KF_EAUTH ? KF_EAUTH : rc,
                          "storage: no GCS credentials from the metadata server (set STORAGE_EMULATOR_HOST or "
                          "GOOGLE_APPLICATION_CREDENTIALS outside GKE)");
    }
    if (rc)
        goto done;
    rc = gcs_json_token(token, expires_in, resp.body, resp.body_len);
    if (rc)
        rc = err_wrap(KF_EAUTH, "storage: %s", a->opt.kind == GCS_AUTH_KEY_FILE ? a->key.token_uri : "metadata server");
done:
    http_response_dispose(&resp);
    free(jwt), free(body), free(url);
    return rc;
}

int gcs_auth_header(gcs_auth *a, char **header)
{
    *header = NULL;
    if (a->opt.kind == GCS_AUTH_NONE)
        return 0;
    int rc = 0;
    pthread_mutex_lock(&a->mu);
    time_t now = now_of(a);
    if (!a->token || now >= a->refresh_at) {
        char *token = NULL;
        long expires_in = 0;
        if ((rc = fetch_token(a, &token, &expires_in)))
            goto done;
        free(a->token);
        a->token = token;
        /* Refresh ahead of expiry: 5 minutes, or a quarter of the lifetime when that is shorter. */
        long margin = expires_in / 4 < 300 ? expires_in / 4 : 300;
        a->refresh_at = now + expires_in - margin;
        a->fetches++;
        log_debug("storage", "access token fetched", "{s:s,s:I}", "source",
                  a->opt.kind == GCS_AUTH_KEY_FILE ? "key file" : "metadata server",
                  "expires_in", (json_int_t)expires_in);
    }
    size_t n = strlen(a->token) + 24;
    if (!(*header = malloc(n))) {
        rc = err_set(KF_ENOMEM, "storage: out of memory");
        goto done;
    }
    snprintf(*header, n, "Authorization: Bearer %s", a->token);
done:
    pthread_mutex_unlock(&a->mu);
    return rc;
}

void gcs_auth_invalidate(gcs_auth *a)
{
    pthread_mutex_lock(&a->mu);
    free(a->token);
    a->token = NULL;
    pthread_mutex_unlock(&a->mu);
}

const char *gcs_auth_identity(gcs_auth *a)
{
    if (a->opt.kind == GCS_AUTH_NONE)
        return "anonymous (emulator)";
    pthread_mutex_lock(&a->mu);
    if (!a->identity && a->opt.kind == GCS_AUTH_METADATA) {
        /* Best effort, one try: it only decorates an error message. */
        size_t n = strlen(a->metadata_host) + sizeof EMAIL_PATH + 8;
        char *url = malloc(n);
        http_response resp = {0};
        const char *hdrs[] = {"Metadata-Flavor: Google", NULL};
        if (url) {
            snprintf(url, n, "http://%s%s", a->metadata_host, EMAIL_PATH);
            if (http_do(a->http, &(http_request){.url = url, .headers = hdrs}, &resp) == 0 && resp.status == 200 &&
                resp.body_len > 0 && resp.body_len < 256 && strlen(resp.body) == resp.body_len)
                a->identity = strdup(resp.body);
        }
        http_response_dispose(&resp);
        free(url);
        if (!a->identity)
            a->identity = strdup("the metadata server's default service account");
    }
    pthread_mutex_unlock(&a->mu);
    return a->identity ? a->identity : "unknown";
}

int gcs_auth_fetch_count(gcs_auth *a)
{
    pthread_mutex_lock(&a->mu);
    int n = a->fetches;
    pthread_mutex_unlock(&a->mu);
    return n;
}
