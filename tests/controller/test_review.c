/* review.c against a fake API server: TokenReview and SubjectAccessReview requests and answers,
 * their caches (a positive review kept, capped by the token's exp; a refusal kept briefly; errors
 * not kept), and the pieces the console and the progress ingest build on (history points, job
 * views without env values, the progress path). */
#include "console.h"
#include "err.h"
#include "history.h"
#include "http.h"
#include "ingest.h"
#include "kubetime.h"
#include "review.h"
#include "test.h"
#include "../storage/mini_server.h"

#include <openssl/evp.h>
#include <pthread.h>

typedef struct {
    pthread_mutex_t mu;
    int token_reviews, access_reviews;
    char last_audience[64];
    char last_sar[512];
} fake;

static void handler(void *ctx, const mini_request *req, mini_response *resp)
{
    fake *f = ctx;
    json_t *body = json_loads(req->body ? req->body : "", 0, NULL), *out = NULL;
    const json_t *spec = json_object_get(body, "spec");
    pthread_mutex_lock(&f->mu);
    if (strstr(req->target, "/tokenreviews")) {
        f->token_reviews++;
        const char *tok = json_string_value(json_object_get(spec, "token"));
        const char *aud = json_string_value(json_array_get(json_object_get(spec, "audiences"), 0));
        snprintf(f->last_audience, sizeof f->last_audience, "%s", aud ? aud : "");
        if (tok && !strcmp(tok, "boom")) {
            resp->status = 500;
            mini_body(resp, "{\"kind\":\"Status\",\"message\":\"etcd is sad\"}");
        } else if (tok && (!strcmp(tok, "good") || !strncmp(tok, "eyJ", 3))) {
            out = json_pack("{s:{s:b,s:{s:s,s:s,s:[s,s],s:{s:[s],s:[s]}}}}", "status", "authenticated", 1, "user",
                            "username", "system:serviceaccount:ns:trainer", "uid", "u-1", "groups",
                            "system:serviceaccounts", "system:authenticated", "extra",
                            "authentication.kubernetes.io/pod-name", "tj-1-1", "authentication.kubernetes.io/pod-uid",
                            "pod-uid-1");
        } else {
            out = json_pack("{s:{s:b,s:s}}", "status", "authenticated", 0, "error", "invalid bearer token");
        }
    } else if (strstr(req->target, "/subjectaccessreviews")) {
        f->access_reviews++;
        char *s = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
        snprintf(f->last_sar, sizeof f->last_sar, "%s", s ? s : "");
        free(s);
        const char *ns = json_string_value(json_object_get(json_object_get(spec, "resourceAttributes"), "namespace"));
        out = json_pack("{s:{s:b}}", "status", "allowed", ns && !strcmp(ns, "ok"));
    } else {
        resp->status = 404;
    }
    pthread_mutex_unlock(&f->mu);
    if (out) {
        resp->status = 201;
        char *text = json_dumps(out, JSON_COMPACT);
        mini_body(resp, text);
        free(text);
    }
    json_decref(out);
    json_decref(body);
}

static int counts(fake *f, int *access)
{
    pthread_mutex_lock(&f->mu);
    int n = f->token_reviews;
    if (access)
        *access = f->access_reviews;
    pthread_mutex_unlock(&f->mu);
    return n;
}

/* "h.<base64url(claims)>.s" */
static char *jwt_with(const char *claims)
{
    unsigned char b64[256];
    int n = EVP_EncodeBlock(b64, (const unsigned char *)claims, (int)strlen(claims));
    while (n > 0 && b64[n - 1] == '=')
        n--;
    for (int i = 0; i < n; i++)
        b64[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
    char *out = NULL;
    if (asprintf(&out, "eyJhbGciOiJFUzI1NiJ9.%.*s.sig", n, b64) < 0)
        return NULL;
    return out;
}

static void test_reviews(void)
{
    fake f = {.mu = PTHREAD_MUTEX_INITIALIZER};
    mini_server srv;
    CHECK_EQ_INT(0, mini_server_start(&srv, handler, &f));
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", srv.port);
    kube_config cfg = {.server = url, .namespace = "default"};
    kube_client *kube = kube_client_new(&cfg);
    review *r = review_new(&(review_options){.kube = kube, .ttl_s = 60, .sar_ttl_s = 30});
    json_t *user = NULL;

    CHECK_EQ_INT(0, review_token(r, &user, "good", "kubefit"));
    CHECK_EQ_STR("system:serviceaccount:ns:trainer", json_string_value(json_object_get(user, "username")));
    CHECK_EQ_STR("tj-1-1", review_user_extra(user, "authentication.kubernetes.io/pod-name"));
    CHECK_EQ_STR("pod-uid-1", review_user_extra(user, "authentication.kubernetes.io/pod-uid"));
    CHECK(review_user_extra(user, "nothing") == NULL);
    pthread_mutex_lock(&f.mu);
    CHECK_EQ_STR("kubefit", f.last_audience);
    pthread_mutex_unlock(&f.mu);
    json_decref(user);
    /* Cached: the same token and audience again asks nobody. */
    CHECK_EQ_INT(0, review_token(r, &user, "good", "kubefit"));
    json_decref(user);
    CHECK_EQ_INT(1, counts(&f, NULL));
    /* Another audience is another question. */
    CHECK_EQ_INT(0, review_token(r, &user, "good", NULL));
    json_decref(user);
    CHECK_EQ_INT(2, counts(&f, NULL));
    pthread_mutex_lock(&f.mu);
    CHECK_EQ_STR("", f.last_audience);
    pthread_mutex_unlock(&f.mu);
    /* Refused: KF_EAUTH with the server's reason (never the token), kept for a few seconds. */
    CHECK_EQ_INT(KF_EAUTH, review_token(r, &user, "forged-secret-value", "kubefit"));
    CHECK(user == NULL);
    CHECK(strstr(err_msg(), "invalid bearer token") != NULL);
    CHECK(strstr(err_msg(), "forged-secret-value") == NULL);
    CHECK_EQ_INT(KF_EAUTH, review_token(r, &user, "forged-secret-value", "kubefit"));
    CHECK_EQ_INT(3, counts(&f, NULL));
    /* The API server failing is not a refusal, and is not cached. */
    CHECK_EQ_INT(KF_ERETRY, review_token(r, &user, "boom", "kubefit"));
    CHECK(strstr(err_msg(), "TokenReview") != NULL);
    CHECK_EQ_INT(KF_ERETRY, review_token(r, &user, "boom", "kubefit"));
    CHECK_EQ_INT(5, counts(&f, NULL));
    CHECK_EQ_INT(KF_EAUTH, review_token(r, &user, "", "kubefit"));
    CHECK_EQ_INT(5, counts(&f, NULL));
    /* A token about to expire is not trusted past its exp. */
    char claims[96];
    snprintf(claims, sizeof claims, "{\"exp\":%.0f,\"sub\":\"x\"}", kube_now() + 1);
    char *soon = jwt_with(claims);
    CHECK(fabs(review_jwt_expiry(soon) - (kube_now() + 1)) < 1.5);
    CHECK_EQ_INT(0, review_token(r, &user, soon, "kubefit"));
    json_decref(user);
    CHECK_EQ_INT(0, review_token(r, &user, soon, "kubefit"));
    json_decref(user);
    CHECK_EQ_INT(6, counts(&f, NULL));
    struct timespec nap = {2, 100 * 1000 * 1000};
    nanosleep(&nap, NULL);
    CHECK_EQ_INT(0, review_token(r, &user, soon, "kubefit"));
    json_decref(user);
    CHECK_EQ_INT(7, counts(&f, NULL));
    free(soon);
    CHECK(review_jwt_expiry("not-a-jwt") == 0);
    CHECK(review_jwt_expiry("a.%%%.b") == 0);

    /* SubjectAccessReview: the user's name, groups, uid and extra go along; answers are cached. */
    CHECK_EQ_INT(0, review_token(r, &user, "good", NULL));
    int allowed = -1, sars = 0;
    review_attrs a = {.verb = "get", .group = "kubefit.dev", .resource = "trainingjobs", .namespace = "ok", .name = "tj"};
    CHECK_EQ_INT(0, review_access(r, &allowed, user, &a));
    CHECK_EQ_INT(1, allowed);
    pthread_mutex_lock(&f.mu);
    CHECK(strstr(f.last_sar, "\"resourceAttributes\":{\"group\":\"kubefit.dev\",\"name\":\"tj\",\"namespace\":\"ok\","
                             "\"resource\":\"trainingjobs\",\"verb\":\"get\"}") != NULL);
    CHECK(strstr(f.last_sar, "\"user\":\"system:serviceaccount:ns:trainer\"") != NULL);
    CHECK(strstr(f.last_sar, "\"groups\":[\"system:serviceaccounts\",\"system:authenticated\"]") != NULL);
    CHECK(strstr(f.last_sar, "\"uid\":\"u-1\"") != NULL);
    CHECK(strstr(f.last_sar, "\"extra\":{\"authentication.kubernetes.io/pod-name\":[\"tj-1-1\"]") != NULL);
    pthread_mutex_unlock(&f.mu);
    CHECK_EQ_INT(0, review_access(r, &allowed, user, &a));
    counts(&f, &sars);
    CHECK_EQ_INT(1, sars);
    a.namespace = "other";
    CHECK_EQ_INT(0, review_access(r, &allowed, user, &a));
    CHECK_EQ_INT(0, allowed);
    a.subresource = "log";
    a.resource = "pods";
    CHECK_EQ_INT(0, review_access(r, &allowed, user, &a));
    counts(&f, &sars);
    CHECK_EQ_INT(3, sars);
    pthread_mutex_lock(&f.mu);
    CHECK(strstr(f.last_sar, "\"subresource\":\"log\"") != NULL);
    pthread_mutex_unlock(&f.mu);
    review_stats st = review_get_stats(r);
    CHECK_EQ_INT(7, st.token_reviews); /* the last "good" came from the cache */
    CHECK_EQ_INT(3, st.access_reviews);
    CHECK_EQ_INT(1, st.access_cache_hits);
    CHECK_EQ_INT(2, st.access_denied);
    json_decref(user);
    review_free(r);
    kube_client_free(kube);
    mini_server_stop(&srv);
}

static json_t *job_with(const char *progress, int run)
{
    char *text = NULL;
    if (asprintf(&text,
                 "{\"metadata\":{\"namespace\":\"ns\",\"name\":\"tj\",\"uid\":\"u\"},\"spec\":{\"language\":\"fr\","
                 "\"env\":[{\"name\":\"API_KEY\",\"value\":\"s3cret\"}]},\"status\":{\"phase\":\"Running\",\"currentRun\":%d,"
                 "\"metrics\":{\"microF1\":0.8,\"labels\":[{\"name\":\"a\",\"f1\":0.8}]}%s%s}}",
                 run, progress ? ",\"progress\":" : "", progress ? progress : "") < 0)
        return NULL;
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    return j;
}

static void test_history_and_views(void)
{
    history *h = history_new(2, 4);
    json_t *j0 = job_with(NULL, 1), *p;
    CHECK(history_observe(h, "ADDED", j0) == NULL); /* no progress yet */
    char prog[160];
    for (int i = 1; i <= 6; i++) {
        snprintf(prog, sizeof prog, "{\"run\":1,\"stage\":\"classifier\",\"step\":%d,\"loss\":%g,\"percent\":%d,"
                                    "\"updateTime\":\"2026-11-26T15:40:%02dZ\"}", i, 1.0 / i, 10 * i, i);
        json_t *j = job_with(prog, 1);
        p = history_observe(h, "MODIFIED", j);
        CHECK(p != NULL);
        CHECK_EQ_INT(i, json_integer_value(json_object_get(p, "step")));
        json_decref(p);
        CHECK(history_observe(h, "MODIFIED", j) == NULL); /* same updateTime: no new point */
        json_decref(j);
    }
    /* 4 points at most: when full, every other point goes (the curve keeps its shape). */
    json_t *pts = history_points(h, "ns", "tj");
    CHECK(json_array_size(pts) <= 4 && json_array_size(pts) >= 2);
    CHECK_EQ_INT(6, json_integer_value(json_object_get(json_array_get(pts, json_array_size(pts) - 1), "step")));
    CHECK_EQ_INT(1, json_integer_value(json_object_get(json_array_get(pts, 0), "step")));
    json_decref(pts);
    /* A new run starts a new curve. */
    json_t *j2 = job_with("{\"run\":2,\"step\":1,\"percent\":1,\"updateTime\":\"2026-11-26T16:00:00Z\"}", 2);
    json_decref(history_observe(h, "MODIFIED", j2));
    pts = history_points(h, "ns", "tj");
    CHECK_EQ_INT(1, json_array_size(pts));
    json_decref(pts);
    CHECK(history_observe(h, "DELETED", j2) == NULL);
    pts = history_points(h, "ns", "tj");
    CHECK_EQ_INT(0, json_array_size(pts));
    json_decref(pts);

    /* Views: the table's summary has no per-label list; the detail has it, and no env values. */
    json_t *sum = console_job_summary(j2), *det = console_job_detail(j2);
    CHECK_EQ_STR("tj", json_string_value(json_object_get(sum, "name")));
    CHECK_EQ_STR("fr", json_string_value(json_object_get(sum, "language")));
    CHECK(json_object_get(json_object_get(sum, "metrics"), "labels") == NULL);
    CHECK(json_object_get(json_object_get(det, "metrics"), "labels") != NULL);
    char *text = json_dumps(det, JSON_COMPACT);
    CHECK(text && !strstr(text, "s3cret") && strstr(text, "API_KEY"));
    free(text);
    json_decref(sum), json_decref(det), json_decref(j0), json_decref(j2);
    history_free(h);

    /* The progress path. */
    char *ns = NULL, *job = NULL;
    int run = 0;
    CHECK_EQ_INT(0, ingest_parse_path("/progress/team-a/news.v2/12", &ns, &job, &run));
    CHECK_EQ_STR("team-a", ns);
    CHECK_EQ_STR("news.v2", job);
    CHECK_EQ_INT(12, run);
    free(ns), free(job);
    const char *bad[] = {"/progress/ns/job", "/progress/ns/job/0", "/progress/ns/job/-1", "/progress/ns//1",
                         "/progress/Ns/job/1", "/progress/ns/job/1/x", "/progress/ns/job/1x", "/progress/ns/j%2F/1",
                         "/progress/ns/job/+1", "/other/ns/job/1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = ingest_parse_path(bad[i], &ns, &job, &run);
        if (rc != KF_EINVAL)
            TEST_FAIL_("%s: expected KF_EINVAL, got %d", bad[i], rc);
        CHECK(ns == NULL && job == NULL);
    }
}

int main(void)
{
    http_global_init();
    test_reviews();
    test_history_and_views();
    return test_done();
}
