/* review: TokenReview and SubjectAccessReview with caches. See review.h. */
#include "review.h"

#include "err.h"
#include "kubetime.h"

#include <openssl/evp.h>
#include <openssl/sha.h> /* SHA256_DIGEST_LENGTH */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REFUSAL_TTL_S 5.0
#define MAX_TOKEN_BYTES (64 * 1024)

struct review {
    review_options opt;
    pthread_mutex_t mu;
    json_t *tokens; /* sha256(audience NUL token) hex -> {"until":t, "user":{...} | "error":"..."} */
    json_t *access; /* key text -> {"until":t, "allowed":bool} */
    review_stats n;
};

review *review_new(const review_options *opt)
{
    review *r = calloc(1, sizeof *r);
    if (!r) {
        err_set(KF_ENOMEM, "review: out of memory");
        return NULL;
    }
    r->opt = *opt;
    if (r->opt.ttl_s <= 0)
        r->opt.ttl_s = 60;
    if (r->opt.sar_ttl_s <= 0)
        r->opt.sar_ttl_s = 30;
    if (!r->opt.max_entries)
        r->opt.max_entries = 4096;
    pthread_mutex_init(&r->mu, NULL);
    r->tokens = json_object();
    r->access = json_object();
    if (!r->tokens || !r->access) {
        review_free(r);
        err_set(KF_ENOMEM, "review: out of memory");
        return NULL;
    }
    return r;
}

void review_free(review *r)
{
    if (!r)
        return;
    json_decref(r->tokens);
    json_decref(r->access);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

review_stats review_get_stats(review *r)
{
    pthread_mutex_lock(&r->mu);
    review_stats s = r->n;
    pthread_mutex_unlock(&r->mu);
    return s;
}

/* ---- cache (callers hold r->mu) ---- */

static json_t *cache_get(json_t *cache, const char *key, double now)
{
    json_t *e = json_object_get(cache, key);
    if (e && json_real_value(json_object_get(e, "until")) <= now) {
        json_object_del(cache, key);
        e = NULL;
    }
    return e;
}

/* Takes e. Drops expired entries when full, and everything when still full. */
static void cache_put(json_t *cache, size_t max, const char *key, json_t *e, double now)
{
    if (json_object_size(cache) >= max) {
        const char *k;
        json_t *v;
        void *tmp;
        json_object_foreach_safe(cache, tmp, k, v) {
            if (json_real_value(json_object_get(v, "until")) <= now)
                json_object_del(cache, k);
        }
        if (json_object_size(cache) >= max)
            json_object_clear(cache);
    }
    json_object_set_new(cache, key, e);
}

static void token_key(char out[2 * SHA256_DIGEST_LENGTH + 1], const char *token, const char *audience)
{
    unsigned char md[SHA256_DIGEST_LENGTH] = {0};
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1) {
        EVP_DigestUpdate(c, audience ? audience : "", audience ? strlen(audience) : 0);
        EVP_DigestUpdate(c, "", 1);
        EVP_DigestUpdate(c, token, strlen(token));
        EVP_DigestFinal_ex(c, md, NULL);
    }
    EVP_MD_CTX_free(c);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* ---- JWT expiry ---- */

double review_jwt_expiry(const char *token)
{
    const char *a = token ? strchr(token, '.') : NULL, *b = a ? strchr(a + 1, '.') : NULL;
    if (!a || !b || b - a - 1 <= 0 || b - a - 1 > 8192)
        return 0;
    size_t n = (size_t)(b - a - 1), padded = (n + 3) / 4 * 4;
    char *text = malloc(padded + 1);
    unsigned char *raw = malloc(padded / 4 * 3 + 1);
    double exp = 0;
    if (!text || !raw)
        goto done;
    for (size_t i = 0; i < padded; i++) {
        char ch = i < n ? a[1 + i] : '=';
        text[i] = ch == '-' ? '+' : ch == '_' ? '/' : ch;
    }
    text[padded] = '\0';
    int len = EVP_DecodeBlock(raw, (const unsigned char *)text, (int)padded);
    if (len <= 0)
        goto done;
    while (len > 0 && raw[len - 1] == '\0') /* padding decodes to trailing zero bytes */
        len--;
    json_t *claims = json_loadb((const char *)raw, (size_t)len, 0, NULL);
    json_t *e = json_object_get(claims, "exp");
    if (json_is_number(e))
        exp = json_number_value(e);
    json_decref(claims);
done:
    free(text);
    free(raw);
    return exp;
}

const char *review_user_extra(const json_t *user, const char *key)
{
    return json_string_value(json_array_get(json_object_get(json_object_get(user, "extra"), key), 0));
}

/* ---- TokenReview ---- */

int review_token(review *r, json_t **user, const char *token, const char *audience)
{
    *user = NULL;
    if (!token || !*token || strlen(token) > MAX_TOKEN_BYTES)
        return err_set(KF_EAUTH, "no bearer token");
    char key[2 * SHA256_DIGEST_LENGTH + 1];
    token_key(key, token, audience);
    double now = kube_now();
    pthread_mutex_lock(&r->mu);
    json_t *hit = cache_get(r->tokens, key, now);
    int rc = KF_OK;
    if (hit) {
        r->n.token_cache_hits++;
        json_t *u = json_object_get(hit, "user");
        if (u)
            *user = json_deep_copy(u);
        else
            rc = err_set(KF_EAUTH, "token refused: %s", json_string_value(json_object_get(hit, "error")));
    }
    pthread_mutex_unlock(&r->mu);
    if (hit)
        return *user || rc ? rc : err_set(KF_ENOMEM, "review: out of memory");

    json_t *req = json_pack("{s:s,s:s,s:{s:s}}", "apiVersion", "authentication.k8s.io/v1", "kind", "TokenReview",
                            "spec", "token", token);
    json_t *resp = NULL;
    if (!req)
        return err_set(KF_ENOMEM, "review: out of memory");
    if (audience && *audience)
        json_object_set_new(json_object_get(req, "spec"), "audiences", json_pack("[s]", audience));
    rc = kube_create(r->opt.kube, "/apis/authentication.k8s.io/v1/tokenreviews", req, &resp);
    json_decref(req); /* holds the token: gone before anything is logged */
    pthread_mutex_lock(&r->mu);
    r->n.token_reviews++;
    if (rc) {
        r->n.errors++;
        pthread_mutex_unlock(&r->mu);
        return err_wrap(rc == KF_EAUTH ? KF_ERETRY : rc, "TokenReview");
    }
    const json_t *st = json_object_get(resp, "status");
    const json_t *u = json_object_get(st, "user");
    const char *why = json_string_value(json_object_get(st, "error"));
    if (json_is_true(json_object_get(st, "authenticated")) && json_string_value(json_object_get(u, "username"))) {
        double until = now + r->opt.ttl_s, exp = review_jwt_expiry(token);
        if (exp > 0 && exp < until)
            until = exp;
        const json_t *groups = json_object_get(u, "groups"), *extra = json_object_get(u, "extra");
        const char *uid = json_string_value(json_object_get(u, "uid"));
        json_t *copy = json_pack("{s:O,s:s,s:o,s:o}", "username", json_object_get(u, "username"), "uid", uid ? uid : "",
                                 "groups", json_is_array(groups) ? json_deep_copy(groups) : json_array(), "extra",
                                 json_is_object(extra) ? json_deep_copy(extra) : json_object());
        if (!copy || !(*user = json_deep_copy(copy))) {
            rc = err_set(KF_ENOMEM, "review: out of memory");
        } else if (until > now) {
            cache_put(r->tokens, r->opt.max_entries, key, json_pack("{s:f,s:O}", "until", until, "user", copy), now);
        }
        json_decref(copy);
    } else {
        r->n.token_refused++;
        rc = err_set(KF_EAUTH, "token refused: %s", why && *why ? why : "not authenticated");
        cache_put(r->tokens, r->opt.max_entries, key,
                  json_pack("{s:f,s:s}", "until", now + REFUSAL_TTL_S, "error", why && *why ? why : "not authenticated"), now);
    }
    pthread_mutex_unlock(&r->mu);
    json_decref(resp);
    return rc;
}

/* ---- SubjectAccessReview ---- */

static char *access_key(const json_t *user, const review_attrs *a)
{
    char *groups = json_dumps(json_object_get(user, "groups"), JSON_COMPACT);
    char *key = NULL;
    if (asprintf(&key, "%s\n%s\n%s\n%s/%s/%s\n%s\n%s", json_string_value(json_object_get(user, "username")),
                 groups ? groups : "", a->verb, a->group ? a->group : "", a->resource,
                 a->subresource ? a->subresource : "", a->namespace ? a->namespace : "", a->name ? a->name : "") < 0)
        key = NULL;
    free(groups);
    return key;
}

int review_access(review *r, int *allowed, const json_t *user, const review_attrs *a)
{
    *allowed = 0;
    const char *username = json_string_value(json_object_get(user, "username"));
    if (!username)
        return err_set(KF_EINVAL, "review: no user");
    char *key = access_key(user, a);
    if (!key)
        return err_set(KF_ENOMEM, "review: out of memory");
    double now = kube_now();
    pthread_mutex_lock(&r->mu);
    json_t *hit = cache_get(r->access, key, now);
    if (hit) {
        r->n.access_cache_hits++;
        *allowed = json_is_true(json_object_get(hit, "allowed"));
    }
    pthread_mutex_unlock(&r->mu);
    if (hit) {
        free(key);
        return KF_OK;
    }
    json_t *attrs = json_pack("{s:s,s:s,s:s}", "verb", a->verb, "group", a->group ? a->group : "", "resource",
                              a->resource);
    const json_t *groups = json_object_get(user, "groups");
    json_t *spec = json_pack("{s:s,s:o,s:o}", "user", username, "groups",
                             json_is_array(groups) ? json_deep_copy(groups) : json_array(), "resourceAttributes", attrs);
    int rc = KF_OK;
    json_t *req = NULL, *resp = NULL;
    if (!spec) {
        rc = err_set(KF_ENOMEM, "review: out of memory");
        goto done;
    }
    if (a->subresource && *a->subresource)
        json_object_set_new(attrs, "subresource", json_string(a->subresource));
    if (a->namespace && *a->namespace)
        json_object_set_new(attrs, "namespace", json_string(a->namespace));
    if (a->name && *a->name)
        json_object_set_new(attrs, "name", json_string(a->name));
    const char *uid = json_string_value(json_object_get(user, "uid"));
    if (uid && *uid)
        json_object_set_new(spec, "uid", json_string(uid));
    json_t *extra = json_object_get(user, "extra");
    if (json_is_object(extra) && json_object_size(extra))
        json_object_set(spec, "extra", extra);
    req = json_pack("{s:s,s:s,s:O}", "apiVersion", "authorization.k8s.io/v1", "kind", "SubjectAccessReview", "spec",
                    spec);
    rc = req ? kube_create(r->opt.kube, "/apis/authorization.k8s.io/v1/subjectaccessreviews", req, &resp)
             : err_set(KF_ENOMEM, "review: out of memory");
    pthread_mutex_lock(&r->mu);
    r->n.access_reviews++;
    if (rc) {
        r->n.errors++;
        pthread_mutex_unlock(&r->mu);
        rc = err_wrap(rc == KF_EAUTH ? KF_ERETRY : rc, "SubjectAccessReview");
        goto done;
    }
    const json_t *st = json_object_get(resp, "status");
    *allowed = json_is_true(json_object_get(st, "allowed")) && !json_is_true(json_object_get(st, "denied"));
    if (!*allowed)
        r->n.access_denied++;
    cache_put(r->access, r->opt.max_entries, key, json_pack("{s:f,s:b}", "until", now + r->opt.sar_ttl_s, "allowed", *allowed), now);
    pthread_mutex_unlock(&r->mu);
done:
    json_decref(spec);
    json_decref(req);
    json_decref(resp);
    free(key);
    return rc;
}
