/* The controller's HTTP routes (a real socket, no API server behind), merge-patch diffs and API
 * error mapping. */
#include "controller.h"
#include "err.h"
#include "http.h"
#include "server.h"
#include "test.h"

static long get(http_client *h, const char *method, const char *url, const char *body, char **out)
{
    http_response r;
    long status = -1;
    if (http_do(h, &(http_request){.method = method, .url = url, .body = body, .body_len = body ? strlen(body) : 0}, &r) == 0) {
        status = r.status;
        if (out)
            *out = strdup(r.body);
    }
    http_response_dispose(&r);
    return status;
}

static void test_server(int anonymous)
{
    kube_config cfg = {.server = "http://127.0.0.1:9", .namespace = "default"};
    kube_client *kube = kube_client_new(&cfg);
    controller *ctl = controller_new(&(controller_options){.kube = kube});
    server *srv = server_new(&(server_options){.ctl = ctl, .kube = kube, .listen = "127.0.0.1:0", .console = 1,
                                               .console_anonymous = anonymous});
    CHECK(srv != NULL);
    if (!srv)
        return;
    CHECK_EQ_INT(0, server_start(srv));
    http_client *h = http_client_new(&(http_options){.timeout_ms = 5000});
    char base[64], url[160], *body = NULL;
    snprintf(base, sizeof base, "http://127.0.0.1:%d", server_port(srv));

    snprintf(url, sizeof url, "%s/healthz", base);
    CHECK_EQ_INT(200, get(h, "GET", url, NULL, NULL));
    snprintf(url, sizeof url, "%s/readyz", base);
    CHECK_EQ_INT(503, get(h, "GET", url, NULL, NULL)); /* caches never synced: no API server */
    /* Progress: no token is 401 at once; a malformed path 404; only POST. */
    snprintf(url, sizeof url, "%s/progress/ns/tj/2", base);
    CHECK_EQ_INT(401, get(h, "POST", url, "{\"stage\":\"finetune-lm\",\"epoch\":2,\"percent\":21.4}", &body));
    CHECK(body && strstr(body, "unauthenticated: no bearer token"));
    free(body);
    CHECK_EQ_INT(405, get(h, "GET", url, NULL, NULL));
    snprintf(url, sizeof url, "%s/progress/ns/tj/zero", base);
    CHECK_EQ_INT(404, get(h, "POST", url, "{}", NULL));
    snprintf(url, sizeof url, "%s/progress/ns", base);
    CHECK_EQ_INT(404, get(h, "POST", url, "{}", NULL));
    snprintf(url, sizeof url, "%s/progress/NS/tj/1", base);
    CHECK_EQ_INT(404, get(h, "POST", url, "{}", NULL));
    snprintf(url, sizeof url, "%s/nothing", base);
    CHECK_EQ_INT(404, get(h, "GET", url, NULL, NULL));
    char *big = malloc(20 * 1024);
    memset(big, ' ', 20 * 1024 - 1);
    big[20 * 1024 - 1] = '\0';
    snprintf(url, sizeof url, "%s/progress/ns/tj/2", base);
    CHECK_EQ_INT(413, get(h, "POST", url, big, NULL));
    free(big);
    /* The console's page is there for anyone; its data is not. */
    snprintf(url, sizeof url, "%s/", base);
    CHECK_EQ_INT(200, get(h, "GET", url, NULL, &body));
    CHECK(body && strstr(body, "<title>kubefit"));
    free(body);
    snprintf(url, sizeof url, "%s/api/jobs", base);
    CHECK_EQ_INT(anonymous ? 200 : 401, get(h, "GET", url, NULL, &body));
    CHECK(body && strstr(body, anonymous ? "\"jobs\":[]" : "Bearer"));
    free(body);
    snprintf(url, sizeof url, "%s/api/whoami", base);
    CHECK_EQ_INT(anonymous ? 200 : 401, get(h, "GET", url, NULL, &body));
    CHECK(body && (!anonymous || strstr(body, "\"anonymous\":true")));
    free(body);
    snprintf(url, sizeof url, "%s/metrics", base);
    CHECK_EQ_INT(200, get(h, "GET", url, NULL, &body));
    CHECK(body && strstr(body, "kubefit_progress_reports_total{outcome=\"unauthenticated\"} 1\n"));
    CHECK(body && strstr(body, "kubefit_progress_reports_total{outcome=\"invalid\"} 3\n"));
    CHECK(body && strstr(body, "kubefit_progress_reports_total{outcome=\"accepted\"} 0\n"));
    CHECK(body && strstr(body, "kubefit_reconcile_total 0\n"));
    CHECK(body && strstr(body, "# TYPE kubefit_workqueue_depth gauge"));
    CHECK(body && strstr(body, "# TYPE kubefit_reconcile_duration_seconds histogram"));
    CHECK(body && strstr(body, "kubefit_reconcile_duration_seconds_bucket{le=\"+Inf\"} 0\n"));
    CHECK(body && strstr(body, "kubefit_jobs{phase=\"Running\"} 0\n"));
    CHECK(body && strstr(body, "kubefit_http_requests_total{code=\"4xx\"}"));
    free(body);
    http_client_free(h);
    server_free(srv);
    controller_free(ctl);
    kube_client_free(kube);
}

static void test_merge_diff(void)
{
    json_t *from = json_loads("{\"a\":1,\"b\":{\"x\":1,\"y\":2},\"c\":[1,2],\"gone\":true,\"same\":\"s\"}", 0, NULL);
    json_t *to = json_loads("{\"a\":2,\"b\":{\"x\":1},\"c\":[1],\"same\":\"s\",\"new\":{\"k\":1}}", 0, NULL);
    json_t *want = json_loads("{\"a\":2,\"b\":{\"y\":null},\"c\":[1],\"gone\":null,\"new\":{\"k\":1}}", 0, NULL);
    json_t *got = controller_merge_diff(from, to);
    CHECK(json_equal(want, got));
    json_t *none = controller_merge_diff(from, from);
    CHECK_EQ_INT(0, json_object_size(none));
    json_decref(from), json_decref(to), json_decref(want), json_decref(got), json_decref(none);
}

static void test_status_errors(void)
{
    const char *st = "{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":\"trainingjobs.kubefit.dev \\\"x\\\" not found\","
                     "\"reason\":\"NotFound\",\"code\":404}";
    CHECK_EQ_INT(KF_ENOTFOUND, kube_status_error(404, st, "GET", "/apis/x"));
    CHECK_EQ_STR("GET /apis/x: HTTP 404: trainingjobs.kubefit.dev \"x\" not found", err_msg());
    CHECK_EQ_INT(KF_EEXISTS, kube_status_error(409, "{\"reason\":\"AlreadyExists\",\"message\":\"exists\"}", "POST", "/p"));
    CHECK_EQ_INT(KF_ECONFLICT, kube_status_error(409, "{\"reason\":\"Conflict\",\"message\":\"modified\"}", "PATCH", "/p"));
    CHECK_EQ_INT(KF_EGONE, kube_status_error(410, "{}", "GET", "/p"));
    CHECK_EQ_INT(KF_EAUTH, kube_status_error(401, "Unauthorized", "GET", "/p"));
    CHECK(strstr(err_msg(), "Unauthorized") != NULL);
    CHECK_EQ_INT(KF_EAUTH, kube_status_error(403, NULL, "GET", "/p"));
    CHECK_EQ_INT(KF_EINVAL, kube_status_error(422, "{\"message\":\"spec.epochs: Invalid value\"}", "POST", "/p"));
    CHECK_EQ_INT(KF_ERETRY, kube_status_error(429, "", "GET", "/p"));
    CHECK_EQ_INT(KF_ERETRY, kube_status_error(503, "<html>", "GET", "/p"));
}

int main(void)
{
    test_server(0);
    test_server(1);
    test_merge_diff();
    test_status_errors();
    return test_done();
}
