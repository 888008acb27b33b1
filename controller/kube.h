/* kube: the handful of Kubernetes API calls the controller needs, over one shared http_client.
 * Paths are API paths ("/api/v1/namespaces/ns/pods/name"); objects are jansson values.
 * Errors: the API server's Status.message is carried into err_msg(); codes map as
 * 404 KF_ENOTFOUND, 409 KF_ECONFLICT (AlreadyExists: KF_EEXISTS), 410 KF_EGONE, 401/403 KF_EAUTH,
 * 400/422 KF_EINVAL, 408/429/5xx and connection errors KF_ERETRY. A 401 refreshes the credential
 * and retries once. Thread-safe. */
#ifndef KUBEFIT_KUBE_H
#define KUBEFIT_KUBE_H

#include "kubeconfig.h"

#include <jansson.h>

typedef struct kube_client kube_client;

/* Copies cfg. Caller frees with kube_client_free. NULL with err_msg() on failure. */
kube_client *kube_client_new(const kube_config *cfg);
void kube_client_free(kube_client *c);
const char *kube_client_namespace(const kube_client *c);
/* Client-side limit on requests (not on watch streams): qps a second on average, bursts of
 * burst; qps <= 0 removes it. Call before the client is shared between threads. */
int kube_client_set_limit(kube_client *c, double qps, int burst);
/* Seconds requests have waited for the limit, in all. */
double kube_client_throttled_seconds(kube_client *c);

/* One request. body may be NULL; content_type NULL means application/json. *out (may be NULL
 * to ignore) receives the decoded response object on 2xx; caller decrefs. */
int kube_request(kube_client *c, const char *method, const char *path, const char *content_type,
                 const json_t *body, json_t **out);

int kube_get(kube_client *c, const char *path, json_t **out);
/* POST to a collection path. */
int kube_create(kube_client *c, const char *collection, const json_t *obj, json_t **out);
/* JSON merge patch (RFC 7386). For a subresource pass ".../status" as path. */
int kube_merge_patch(kube_client *c, const char *path, const json_t *patch, json_t **out);
/* PUT the whole object (resourceVersion in metadata makes it conditional). */
int kube_replace(kube_client *c, const char *path, const json_t *obj, json_t **out);
/* DELETE with propagationPolicy (NULL: server default) and grace period (-1: default). */
int kube_delete(kube_client *c, const char *path, const char *propagation, long grace_seconds);

/* Lists a collection page by page (limit per page, 0 = server default), following continue
 * tokens; query is extra query text such as "labelSelector=a%3Db" (NULL for none). On success
 * *items is a new array of all items and *rv the list's resourceVersion (caller frees).
 * A 410 on a continue token restarts the list from the beginning once. */
int kube_list(kube_client *c, const char *collection, const char *query, long limit, json_t **items,
              char **rv);
/* The same, keeping map(ctx, item) of each item instead (a new reference; NULL drops it), page by
 * page: a caller that keeps little of each object never holds the whole list. */
typedef json_t *(*kube_item_map)(void *ctx, json_t *item);
int kube_list_map(kube_client *c, const char *collection, const char *query, long limit, kube_item_map map,
                  void *ctx, json_t **items, char **rv);

/* Watch events arrive here: type is ADDED, MODIFIED, DELETED or BOOKMARK (ERROR events are
 * turned into return codes by the watch parser). Return non-zero to stop the watch. */
typedef int (*kube_watch_fn)(void *ctx, const char *type, json_t *object);

typedef struct {
    const char *collection;      /* e.g. "/apis/kubefit.dev/v1alpha1/trainingjobs" */
    const char *query;           /* extra query text or NULL */
    const char *resource_version;/* start after this version */
    long timeout_seconds;        /* server closes the watch after this; 0: 300 */
    kube_watch_fn on_event;
    void *ctx;
    const volatile int *cancel;  /* abort when *cancel becomes non-zero */
} kube_watch_opts;

/* Runs one watch until the server closes it (0), the callback stops it (0), it is cancelled
 * (KF_ERETRY), or an error: KF_EGONE when the version is too old (HTTP 410 or an ERROR event
 * with code 410), other codes as for requests. */
int kube_watch(kube_client *c, const kube_watch_opts *opt);

/* GETs path and hands the response body to on_data as it arrives (e.g. a Pod's log with
 * follow=true). Returns 0 at the end of the body, the on_data's stop as 0 too, KF_ERETRY when
 * cancelled, or the request's error (the Status message of a non-2xx answer, as for requests).
 * on_data returns non-zero to stop. No overall timeout. */
int kube_stream(kube_client *c, const char *path, int (*on_data)(void *ctx, const char *data, size_t len), void *ctx,
                const volatile int *cancel);

/* Maps an HTTP status and a Status body to a KF_E* code and err_set()s a message naming
 * method and path. Exposed for tests. */
int kube_status_error(long http_status, const char *body, const char *method, const char *path);

/* GET a text resource such as pods/<name>/log. *out: the last max_bytes bytes of it, NUL-terminated
 * (caller frees). Errors as for kube_request. */
int kube_get_text(kube_client *c, const char *path, size_t max_bytes, char **out);

/* Prometheus text: kubefit_api_requests_total{verb,code} for every request this client made
 * (verb WATCH for watches; code 0 when no response came). Caller frees. */
char *kube_client_metrics(kube_client *c);

#endif
