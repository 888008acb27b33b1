/* review: who a bearer token belongs to and what that identity may do, asked of the API server
 * (TokenReview, SubjectAccessReview), with small caches so a trainer's progress reports and a
 * browser's polling do not turn into one review per request.
 *
 * Tokens are never stored or logged: the cache is keyed by the token's SHA-256 (and the audience).
 * A positive TokenReview is kept for ttl_s (default 60 s) but never past the token's own "exp"
 * claim; a refusal for 5 s (a burst of forged reports costs one review, not one each); API errors
 * are not cached. SubjectAccessReview answers are kept for sar_ttl_s (default 30 s).
 * Thread-safe. */
#ifndef KUBEFIT_REVIEW_H
#define KUBEFIT_REVIEW_H

#include "kube.h"

#include <jansson.h>

typedef struct review review;

typedef struct {
    kube_client *kube;    /* borrowed */
    double ttl_s;         /* TokenReview cache; 0: 60 */
    double sar_ttl_s;     /* SubjectAccessReview cache; 0: 30 */
    size_t max_entries;   /* per cache; 0: 4096 */
} review_options;

/* What a request asks to do, as in SubjectAccessReview's resourceAttributes. */
typedef struct {
    const char *verb;        /* get, list, watch */
    const char *group;       /* "" core, "kubefit.dev" */
    const char *resource;    /* trainingjobs, events, pods */
    const char *subresource; /* "log" or NULL */
    const char *namespace;   /* NULL or "": all namespaces */
    const char *name;        /* NULL: any */
} review_attrs;

typedef struct {
    long token_reviews, token_cache_hits, token_refused, access_reviews, access_cache_hits, access_denied, errors;
} review_stats;

review *review_new(const review_options *opt);
void review_free(review *r);

/* Authenticates token (audience NULL: the API server's own). On success *user is a new object
 * {"username","uid","groups":[...],"extra":{...}} (caller decrefs). KF_EAUTH when the API server
 * says the token is not valid (err_msg() gives its reason, never the token); other codes
 * (KF_ERETRY...) when the review itself failed. */
int review_token(review *r, json_t **user, const char *token, const char *audience);

/* *allowed: 1 when user (as review_token returned it) may do a. 0 with *allowed set, or an error
 * when the review itself failed. */
int review_access(review *r, int *allowed, const json_t *user, const review_attrs *a);

review_stats review_get_stats(review *r);

/* The "exp" claim of a JWT, read without verifying it (the API server verifies); 0 when absent
 * or token is not a JWT. Exposed for tests. */
double review_jwt_expiry(const char *token);

/* First value of user.extra[key], or NULL (borrowed from user). */
const char *review_user_extra(const json_t *user, const char *key);

#endif
