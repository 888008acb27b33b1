/* Credentials and retries against in-process endpoints on loopback ports:
 * - a token endpoint that verifies the JWT's RS256 signature with the public half of a key pair
 *   this test generates (a key file with another key must be refused);
 * - a metadata server that insists on "Metadata-Flavor: Google" and is slow to start (503s);
 * - token caching, expiry and refresh (with an injected clock), refresh after a 401;
 * - a GCS endpoint answering 503/429 (retried, bounded), 403 (clear error), bad checksums;
 * - a resumable upload whose connection drops after the server stored a chunk: the client asks
 *   the session what it holds and resumes from there, sending no byte twice;
 * - no token ever appears in the logs. */
#include "b64.h"
#include "crc32c.h"
#include "err.h"
#include "gcs_auth.h"
#include "http.h"
#include "log.h"
#include "mini_server.h"
#include "storage.h"
#include "test.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <unistd.h>

#define EMAIL "trainer@kubefit-test.iam.gserviceaccount.com"

typedef struct {
    EVP_PKEY *pub;       /* verifies JWTs */
    char token_uri[64];
    long expires_in;
    int issued;          /* tokens handed out */
    int refused;
    char why[256];       /* last refusal reason */
    int md_fail_first;   /* metadata: answer 503 to this many token requests first */
    int md_no_header;    /* requests without Metadata-Flavor */
    int gcs_mode;        /* see gcs_handler */
    unsigned char *up;   /* resumable session (mode 7): bytes received so far */
    long long up_total, up_got, up_sent; /* declared size, held, bytes sent in PUT bodies */
    int up_puts, up_queries, up_bad_offset;
    int gcs_calls;
    char last_auth[128];
    int port;
} ctx_t;

static void refuse(ctx_t *c, mini_response *r, const char *why)
{
    c->refused++;
    snprintf(c->why, sizeof c->why, "%s", why);
    r->status = 400;
    char body[400];
    snprintf(body, sizeof body, "{\"error\":\"invalid_grant\",\"error_description\":\"%s\"}", why);
    mini_body(r, body);
}

static void issue(ctx_t *c, mini_response *r)
{
    char body[200];
    c->issued++;
    snprintf(body, sizeof body, "{\"access_token\":\"ya29.SECRET-%d\",\"expires_in\":%ld,\"token_type\":\"Bearer\"}",
             c->issued, c->expires_in);
    r->status = 200;
    mini_body(r, body);
}

/* The token endpoint: checks the form, the JWT's header and claims, and its RS256 signature. */
static void token_endpoint(ctx_t *c, const mini_request *q, mini_response *r)
{
    static const char prefix[] = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=";
    char *ct = mini_header(q, "Content-Type");
    int form = ct && strcmp(ct, "application/x-www-form-urlencoded") == 0;
    free(ct);
    if (strcmp(q->method, "POST") != 0 || !form || strncmp(q->body, prefix, sizeof prefix - 1) != 0)
        return refuse(c, r, "not a jwt-bearer form POST");
    const char *jwt = q->body + sizeof prefix - 1;
    const char *d1 = strchr(jwt, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d1 || !d2)
        return refuse(c, r, "not three JWT parts");
    size_t hn, cn, sn;
    unsigned char *h = b64_decode(jwt, (size_t)(d1 - jwt), &hn);
    unsigned char *cl = b64_decode(d1 + 1, (size_t)(d2 - d1 - 1), &cn);
    unsigned char *sig = b64_decode(d2 + 1, strlen(d2 + 1), &sn);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = h && cl && sig && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, c->pub) == 1 &&
             EVP_DigestVerify(md, sig, sn, (const unsigned char *)jwt, (size_t)(d2 - jwt)) == 1;
    EVP_MD_CTX_free(md);
    char aud[100];
    snprintf(aud, sizeof aud, "\"aud\":\"%s\"", c->token_uri);
    if (!ok)
        refuse(c, r, "Invalid JWT Signature.");
    else if (!strstr((char *)h, "\"alg\":\"RS256\""))
        refuse(c, r, "alg is not RS256");
    else if (!strstr((char *)cl, "\"iss\":\"" EMAIL "\"") || !strstr((char *)cl, aud) ||
             !strstr((char *)cl, "devstorage.read_write") || !strstr((char *)cl, "\"exp\":"))
        refuse(c, r, "bad claims");
    else
        issue(c, r);
    free(h), free(cl), free(sig);
}

static void metadata_endpoint(ctx_t *c, const mini_request *q, mini_response *r)
{
    char *flavor = mini_header(q, "Metadata-Flavor");
    int ok = flavor && strcmp(flavor, "Google") == 0;
    free(flavor);
    if (!ok) {
        c->md_no_header++;
        r->status = 403;
        mini_body(r, "Missing Metadata-Flavor:Google header.");
    } else if (strcmp(q->target, "/computeMetadata/v1/instance/service-accounts/default/email") == 0) {
        r->status = 200;
        mini_body(r, "wi-sa@kubefit-test.iam.gserviceaccount.com");
    } else if (c->md_fail_first > 0) {
        c->md_fail_first--;
        r->status = 503;
    } else {
        issue(c, r);
    }
}

/* A GCS stand-in for one object gs://bkt/obj (content "hello world"). */
static void gcs_handler(ctx_t *c, const mini_request *q, mini_response *r)
{
    char *auth = mini_header(q, "Authorization");
    snprintf(c->last_auth, sizeof c->last_auth, "%s", auth ? auth : "");
    free(auth);
    c->gcs_calls++;
    const char *meta = "{\"name\":\"obj\",\"bucket\":\"bkt\",\"size\":\"11\",\"crc32c\":\"yZRlqg==\"}";
    switch (c->gcs_mode) {
    case 1: /* 503, 503, 429, then fine */
        r->status = c->gcs_calls <= 2 ? 503 : c->gcs_calls == 3 ? 429 : 200;
        mini_body(r, r->status == 200 ? meta : "{\"error\":{\"code\":503,\"message\":\"backend busy\"}}");
        return;
    case 2: /* always 503 */
        r->status = 503;
        return;
    case 3:
        r->status = 403;
        mini_body(r, "{\"error\":{\"code\":403,\"message\":\"does not have storage.objects.get access\"}}");
        return;
    case 4: /* 401 until the token changes (a revoked token) */
        r->status = strstr(c->last_auth, "SECRET-1") ? 401 : 200;
        mini_body(r, meta);
        return;
    case 7: { /* resumable session; the 2nd chunk is stored but its answer is lost */
        if (strcmp(q->method, "POST") == 0) {
            char *len = mini_header(q, "X-Upload-Content-Length");
            c->up_total = len ? atoll(len) : -1;
            free(len);
            free(c->up);
            c->up = malloc((size_t)c->up_total + 1);
            c->up_got = 0;
            r->status = 200;
            snprintf(r->headers, sizeof r->headers, "Location: http://127.0.0.1:%d/session/1\r\n", c->port);
            return;
        }
        char *cr = mini_header(q, "Content-Range");
        long long a = -1, b = -1, total = -1;
        if (cr && sscanf(cr, "bytes %lld-%lld/%lld", &a, &b, &total) == 3) {
            c->up_puts++;
            c->up_sent += (long long)q->body_len;
            if (a != c->up_got || b - a + 1 != (long long)q->body_len || total != c->up_total)
                c->up_bad_offset++;
            else
                memcpy(c->up + a, q->body, q->body_len), c->up_got = b + 1;
        } else if (cr && strncmp(cr, "bytes */", 8) == 0) {
            c->up_queries++;
        }
        free(cr);
        if (c->up_puts == 2 && c->up_queries == 0) {
            r->status = 0; /* stored, but the client never hears about it */
            return;
        }
        if (c->up_got < c->up_total) {
            r->status = 308;
            if (c->up_got > 0)
                snprintf(r->headers, sizeof r->headers, "Range: bytes=0-%lld\r\n", c->up_got - 1);
            return;
        }
        char crc[9], body[200];
        crc32c_to_b64(crc32c_update(0, c->up, (size_t)c->up_got), crc);
        snprintf(body, sizeof body, "{\"name\":\"obj\",\"bucket\":\"bkt\",\"size\":\"%lld\",\"crc32c\":\"%s\"}",
                 c->up_got, crc);
        r->status = 200;
        mini_body(r, body);
        return;
    }
    case 5:   /* media that does not match the metadata's crc32c */
    case 6: { /* the first connection drops, then the right bytes */
        int media = strstr(q->target, "alt=media") != NULL;
        if (c->gcs_mode == 6 && media && c->gcs_calls == 2) {
            r->status = 0; /* close without answering */
            return;
        }
        r->status = 200;
        mini_body(r, !media ? meta : c->gcs_mode == 5 ? "hellO world" : "hello world");
        return;
    }
    }
}

static void handler(void *u, const mini_request *q, mini_response *r)
{
    ctx_t *c = u;
    if (strcmp(q->target, "/token") == 0)
        token_endpoint(c, q, r);
    else if (strncmp(q->target, "/computeMetadata/", 17) == 0)
        metadata_endpoint(c, q, r);
    else
        gcs_handler(c, q, r);
}

static char *key_file_json(EVP_PKEY *k, const char *token_uri)
{
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
    char *pem;
    long n = BIO_get_mem_data(b, &pem);
    char *esc = malloc((size_t)n * 2 + 1), *o = esc;
    for (long i = 0; i < n; i++) {
        if (pem[i] == '\n')
            *o++ = '\\', *o++ = 'n';
        else
            *o++ = pem[i];
    }
    *o = '\0';
    char *json = NULL;
    if (asprintf(&json, "{\"type\":\"service_account\",\"project_id\":\"kubefit-test\",\"private_key_id\":\"k1\","
                        "\"private_key\":\"%s\",\"client_email\":\"" EMAIL "\",\"token_uri\":\"%s\"}",
                 esc, token_uri) < 0)
        json = NULL;
    free(esc);
    BIO_free(b);
    return json;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static time_t fake_now;
static time_t clock_fn(void *u) { (void)u; return fake_now; }

static void test_key_file(ctx_t *c, const char *dir)
{
    char path[256], other[256];
    snprintf(path, sizeof path, "%s/key.json", dir);
    snprintf(other, sizeof other, "%s/other-key.json", dir);
    EVP_PKEY *k1 = EVP_RSA_gen(2048), *k2 = EVP_RSA_gen(2048);
    char *j1 = key_file_json(k1, c->token_uri), *j2 = key_file_json(k2, c->token_uri);
    write_file(path, j1);
    write_file(other, j2);
    /* The endpoint knows only the public half of k1. */
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(b, k1);
    c->pub = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
    BIO_free(b);
    CHECK(c->pub != NULL);

    fake_now = 1800000000;
    c->expires_in = 3600;
    gcs_auth *a = NULL;
    char *h = NULL;
    CHECK_EQ_INT(0, gcs_auth_new(&a, &(gcs_auth_options){.kind = GCS_AUTH_KEY_FILE, .key_file = path,
                                                         .now = clock_fn}));
    CHECK_EQ_INT(0, gcs_auth_header(a, &h));
    CHECK_EQ_STR("Authorization: Bearer ya29.SECRET-1", h);
    CHECK_EQ_INT(0, c->refused);
    CHECK_EQ_STR(EMAIL, gcs_auth_identity(a));
    free(h);
    /* Cached until 5 minutes before expiry, then refreshed. */
    fake_now += 3299;
    CHECK_EQ_INT(0, gcs_auth_header(a, &h));
    CHECK_EQ_STR("Authorization: Bearer ya29.SECRET-1", h);
    free(h);
    CHECK_EQ_INT(1, gcs_auth_fetch_count(a));
    fake_now += 1;
    CHECK_EQ_INT(0, gcs_auth_header(a, &h));
    CHECK_EQ_STR("Authorization: Bearer ya29.SECRET-2", h);
    free(h);
    CHECK_EQ_INT(2, gcs_auth_fetch_count(a));
    gcs_auth_invalidate(a);
    CHECK_EQ_INT(0, gcs_auth_header(a, &h));
    CHECK_EQ_STR("Authorization: Bearer ya29.SECRET-3", h);
    free(h);
    gcs_auth_free(a);

    /* A key the endpoint does not know: refused, with the identity in the message. */
    int refused = c->refused;
    CHECK_EQ_INT(0, gcs_auth_new(&a, &(gcs_auth_options){.kind = GCS_AUTH_KEY_FILE, .key_file = other}));
    CHECK_EQ_INT(KF_EAUTH, gcs_auth_header(a, &h));
    CHECK(h == NULL);
    CHECK_EQ_INT(refused + 1, c->refused);
    CHECK_EQ_STR("Invalid JWT Signature.", c->why);
    CHECK(strstr(err_msg(), EMAIL) && strstr(err_msg(), "Invalid JWT Signature"));
    gcs_auth_free(a);

    /* Bad credentials files: clear errors naming the file. */
    const char *bad[][2] = {
        {"missing.json", NULL},
        {"notjson.json", "this is not json"},
        {"user.json", "{\"type\":\"authorized_user\",\"client_id\":\"x\",\"refresh_token\":\"y\"}"},
        {"nopem.json", "{\"type\":\"service_account\",\"client_email\":\"a@b\",\"private_key\":\"garbage\"}"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char p[300];
        snprintf(p, sizeof p, "%s/%s", dir, bad[i][0]);
        if (bad[i][1])
            write_file(p, bad[i][1]);
        CHECK_EQ_INT(KF_EINVAL, gcs_auth_new(&a, &(gcs_auth_options){.kind = GCS_AUTH_KEY_FILE, .key_file = p}));
        if (!strstr(err_msg(), bad[i][0]))
            TEST_FAIL_("bad key file %s: message \"%s\" does not name it", bad[i][0], err_msg());
    }

    /* Through the storage API: key-file credentials against a GCS endpoint; a 401 refreshes once. */
    char ep[64];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%s", strrchr(c->token_uri, ':') + 1);
    *strchr(ep + 7, '/') = '\0';
    storage *s = NULL;
    CHECK_EQ_INT(0, storage_new(&s, &(storage_options){.credentials_file = path, .endpoint = ep}));
    c->gcs_mode = 4;
    c->gcs_calls = 0;
    c->issued = 0; /* the next token is SECRET-1, which this GCS refuses with 401 */
    storage_object o;
    CHECK_EQ_INT(0, storage_stat(s, "gs://bkt/obj", &o));
    CHECK_EQ_INT(2, c->gcs_calls);
    CHECK_EQ_STR("Bearer ya29.SECRET-2", c->last_auth);
    storage_object_dispose(&o);
    storage_free(s);

    free(j1), free(j2);
    EVP_PKEY_free(k1), EVP_PKEY_free(k2);
}

static void test_metadata(ctx_t *c, int port)
{
    char host[64];
    snprintf(host, sizeof host, "127.0.0.1:%d", port);
    c->issued = 0;
    c->expires_in = 100;
    c->md_fail_first = 2; /* a pod's first seconds */
    fake_now = 1800000000;
    gcs_auth *a = NULL;
    char *h = NULL;
    CHECK_EQ_INT(0, gcs_auth_new(&a, &(gcs_auth_options){.kind = GCS_AUTH_METADATA, .metadata_host = host,
                                                         .backoff_initial_ms = 20, .now = clock_fn}));
    CHECK_EQ_INT(0, gcs_auth_header(a, &h));
    CHECK_EQ_STR("Authorization: Bearer ya29.SECRET-1", h);
    free(h);
    CHECK_EQ_INT(0, c->md_fail_first);
    CHECK_EQ_INT(0, c->md_no_header);
    /* expires_in 100: refreshed a quarter of the lifetime early. */
    fake_now += 74;
    CHECK_EQ_INT(0, gcs_auth_header(a, &h));
    CHECK_EQ_STR("Authorization: Bearer ya29.SECRET-1", h);
    free(h);
    fake_now += 1;
    CHECK_EQ_INT(0, gcs_auth_header(a, &h));
    CHECK_EQ_STR("Authorization: Bearer ya29.SECRET-2", h);
    free(h);
    CHECK_EQ_STR("wi-sa@kubefit-test.iam.gserviceaccount.com", gcs_auth_identity(a));
    gcs_auth_free(a);

    /* The endpoint really checks the header: a plain request is refused. */
    http_client *hc = http_client_new(NULL);
    http_response r;
    char url[160];
    snprintf(url, sizeof url, "http://%s/computeMetadata/v1/instance/service-accounts/default/token", host);
    CHECK_EQ_INT(0, http_do(hc, &(http_request){.url = url}, &r));
    CHECK_EQ_INT(403, r.status);
    CHECK_EQ_INT(1, c->md_no_header);
    http_response_dispose(&r);
    http_client_free(hc);

    /* No metadata server at all: a bounded number of tries, then a clear error. */
    mini_server dead;
    CHECK_EQ_INT(0, mini_server_start(&dead, handler, c));
    int dead_port = dead.port;
    mini_server_stop(&dead); /* nothing listens there now */
    snprintf(host, sizeof host, "127.0.0.1:%d", dead_port);
    CHECK_EQ_INT(0, gcs_auth_new(&a, &(gcs_auth_options){.kind = GCS_AUTH_METADATA, .metadata_host = host,
                                                         .max_attempts = 3, .backoff_initial_ms = 10}));
    CHECK_EQ_INT(KF_ERETRY, gcs_auth_header(a, &h));
    CHECK(strstr(err_msg(), "metadata server") && strstr(err_msg(), "3 attempts"));
    gcs_auth_free(a);
}

static void test_gcs_retries(ctx_t *c, int port)
{
    char emu[64];
    snprintf(emu, sizeof emu, "127.0.0.1:%d", port);
    storage *s = NULL;
    storage_object o;
    CHECK_EQ_INT(0, storage_new(&s, &(storage_options){.emulator_host = emu, .max_attempts = 5,
                                                       .backoff_initial_ms = 10, .backoff_max_ms = 40}));
    c->gcs_mode = 1, c->gcs_calls = 0;
    CHECK_EQ_INT(0, storage_stat(s, "gs://bkt/obj", &o));
    CHECK_EQ_INT(4, c->gcs_calls);
    CHECK_EQ_STR("", c->last_auth); /* emulator: no credentials */
    CHECK_EQ_INT(11, o.size);
    storage_object_dispose(&o);

    c->gcs_mode = 2, c->gcs_calls = 0;
    CHECK_EQ_INT(KF_ERETRY, storage_stat(s, "gs://bkt/obj", &o));
    CHECK_EQ_INT(5, c->gcs_calls); /* bounded */
    CHECK(strstr(err_msg(), "gs://bkt/obj") && strstr(err_msg(), "503"));

    c->gcs_mode = 3, c->gcs_calls = 0;
    CHECK_EQ_INT(KF_EAUTH, storage_stat(s, "gs://bkt/obj", &o));
    CHECK_EQ_INT(1, c->gcs_calls); /* not retried */
    CHECK(strstr(err_msg(), "permission denied") && strstr(err_msg(), "gs://bkt/obj") &&
          strstr(err_msg(), "storage.objects.get"));

    char *data = NULL;
    size_t len = 0;
    c->gcs_mode = 5, c->gcs_calls = 0;
    CHECK_EQ_INT(KF_EIO, storage_read(s, "gs://bkt/obj", &data, &len));
    CHECK(strstr(err_msg(), "crc32c mismatch") && strstr(err_msg(), "gs://bkt/obj"));
    CHECK_EQ_INT(4, c->gcs_calls); /* stat + media, twice */

    c->gcs_mode = 6, c->gcs_calls = 0;
    CHECK_EQ_INT(0, storage_read(s, "gs://bkt/obj", &data, &len));
    CHECK_EQ_STR("hello world", data);
    CHECK_EQ_INT(3, c->gcs_calls); /* stat, dropped media, media */
    free(data);

    /* Resumable upload over a dropped connection: 1 MiB + 1000 bytes in 256 KiB chunks. */
    size_t n = (1u << 20) + 1000;
    unsigned char *p = malloc(n);
    unsigned seed = 7;
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)rand_r(&seed);
    storage_free(s);
    CHECK_EQ_INT(0, storage_new(&s, &(storage_options){.emulator_host = emu, .backoff_initial_ms = 10,
                                                       .chunk_size = 256u << 10, .resumable_threshold = 1}));
    c->gcs_mode = 7, c->gcs_calls = 0;
    int rc = storage_write(s, "gs://bkt/obj", p, n);
    CHECK_EQ_INT(0, rc);
    if (rc)
        fprintf(stderr, "resumable: %s\n", err_msg());
    CHECK_EQ_INT((long long)n, c->up_got);
    CHECK(c->up && memcmp(c->up, p, n) == 0);
    CHECK_EQ_INT(1, c->up_queries);       /* asked once what the session holds */
    CHECK_EQ_INT(0, c->up_bad_offset);    /* and resumed exactly there */
    CHECK_EQ_INT((long long)n, c->up_sent); /* no byte sent twice */
    CHECK_EQ_INT(5, c->up_puts);
    free(p);
    free(c->up);
    c->up = NULL;
    storage_free(s);
}

int main(void)
{
    setenv("KUBEFIT_LOG_LEVEL", "debug", 1);
    FILE *logs = tmpfile();
    log_set_stream(logs);
    char dir[] = "/tmp/kubefit-storage-auth-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    ctx_t c = {0};
    mini_server srv;
    CHECK_EQ_INT(0, mini_server_start(&srv, handler, &c));
    snprintf(c.token_uri, sizeof c.token_uri, "http://127.0.0.1:%d/token", srv.port);
    c.port = srv.port;

    test_key_file(&c, dir);
    test_metadata(&c, srv.port);
    test_gcs_retries(&c, srv.port);

    mini_server_stop(&srv);
    EVP_PKEY_free(c.pub);
    /* Logs were written (retries, fetches) and never carry a token. */
    log_set_stream(NULL);
    fflush(logs);
    long n = ftell(logs);
    char *text = calloc(1, (size_t)n + 1);
    rewind(logs);
    CHECK(fread(text, 1, (size_t)n, logs) == (size_t)n);
    CHECK(strstr(text, "retrying") != NULL);
    CHECK(strstr(text, "SECRET") == NULL);
    free(text);
    fclose(logs);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK_EQ_INT(0, system(cmd));
    return test_done();
}
