/* The Kubernetes client against a real kube-apiserver (run inside tests/cluster/with-apiserver):
 * pagination, the server's Status messages as errors, conflicts, watch + ERROR 410, token/exec
 * credentials, Lease-based leader election. */
#include "err.h"
#include "kube.h"
#include "kubeconfig.h"
#include "leader.h"
#include "test.h"

#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CM "/api/v1/namespaces/default/configmaps"

static kube_client *client_with(const char *user_yaml)
{
    char *yaml = NULL;
    if (asprintf(&yaml, "current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\nclusters:\n"
                        "- name: c\n  cluster: {server: %s, certificate-authority: %s}\nusers:\n- name: u\n  user:\n%s",
                 getenv("KUBE_APISERVER_URL"), getenv("KUBE_CA_FILE"), user_yaml) < 0)
        return NULL;
    kube_config cfg;
    kube_client *c = NULL;
    if (kube_config_parse(&cfg, yaml, strlen(yaml), NULL, NULL) == 0)
        c = kube_client_new(&cfg);
    else
        fprintf(stderr, "kubeconfig: %s\n", err_msg());
    kube_config_dispose(&cfg);
    free(yaml);
    return c;
}

static json_t *configmap(const char *name)
{
    return json_pack("{s:s,s:s,s:{s:s,s:{s:s}},s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap", "metadata", "name",
                     name, "labels", "kubefit-test", "pg", "data", "k", "v");
}

typedef struct {
    int added_watched;
    char rv_seen[64];
} watch_state;

static int on_event(void *u, const char *type, json_t *obj)
{
    watch_state *w = u;
    const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
    if (!strcmp(type, "ADDED") && name && !strcmp(name, "watched")) {
        w->added_watched = 1;
        return 1;
    }
    return 0;
}

static void *create_later(void *u)
{
    usleep(300000);
    json_t *cm = configmap("watched");
    kube_create(u, CM, cm, NULL);
    json_decref(cm);
    return NULL;
}

int main(void)
{
    if (!getenv("KUBECONFIG") || !getenv("KUBE_APISERVER_URL"))
        TEST_SKIP("run me inside tests/cluster/with-apiserver");
    kube_config cfg;
    CHECK_EQ_INT(0, kube_config_load(&cfg, NULL, NULL));
    kube_client *k = kube_client_new(&cfg);
    CHECK(k != NULL);
    if (!k)
        return test_done();

    /* Pagination: 5 objects, pages of 2. */
    for (int i = 0; i < 5; i++) {
        char name[32];
        snprintf(name, sizeof name, "page-%d", i);
        json_t *cm = configmap(name);
        CHECK_EQ_INT(0, kube_create(k, CM, cm, NULL));
        json_decref(cm);
    }
    json_t *items = NULL;
    char *rv = NULL;
    CHECK_EQ_INT(0, kube_list(k, CM, "labelSelector=kubefit-test%3Dpg", 2, &items, &rv));
    CHECK_EQ_INT(5, json_array_size(items));
    CHECK(rv && *rv);
    json_decref(items);

    /* The API server's Status.message in errors. */
    CHECK_EQ_INT(KF_ENOTFOUND, kube_get(k, CM "/nope", NULL));
    CHECK(strstr(err_msg(), "configmaps \"nope\" not found") != NULL);
    json_t *dup = configmap("page-0");
    CHECK_EQ_INT(KF_EEXISTS, kube_create(k, CM, dup, NULL));
    CHECK(strstr(err_msg(), "already exists") != NULL);
    json_decref(dup);
    json_t *bad = configmap("Not_A_Valid_Name");
    CHECK_EQ_INT(KF_EINVAL, kube_create(k, CM, bad, NULL));
    CHECK(strstr(err_msg(), "Invalid value") != NULL);
    json_decref(bad);

    /* Merge patch; a stale resourceVersion precondition -> KF_ECONFLICT. */
    json_t *got = NULL, *patch = json_pack("{s:{s:s}}", "data", "k", "v2");
    CHECK_EQ_INT(0, kube_merge_patch(k, CM "/page-1", patch, &got));
    CHECK_EQ_STR("v2", json_string_value(json_object_get(json_object_get(got, "data"), "k")));
    json_decref(got);
    json_decref(patch);
    patch = json_pack("{s:{s:s},s:{s:s}}", "metadata", "resourceVersion", "1", "data", "k", "v3");
    CHECK_EQ_INT(KF_ECONFLICT, kube_merge_patch(k, CM "/page-1", patch, NULL));
    CHECK(strstr(err_msg(), "the object has been modified") != NULL);
    json_decref(patch);

    /* Watch from the list's version sees a new object. */
    watch_state w = {0};
    pthread_t th;
    pthread_create(&th, NULL, create_later, k);
    kube_watch_opts wo = {.collection = CM, .resource_version = rv, .timeout_seconds = 10, .on_event = on_event, .ctx = &w};
    CHECK_EQ_INT(0, kube_watch(k, &wo));
    pthread_join(th, NULL);
    CHECK(w.added_watched);
    free(rv);

    /* After compaction (and an API server restart, so its watch cache starts at the current
     * revision), a watch from an old version is 410 Gone (HTTP or ERROR event). */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s/tests/cluster/etcd-compact %s >/dev/null && %s/tests/cluster/apiserver-restart %s >/dev/null",
             getenv("KUBEFIT_SOURCE_DIR"), getenv("KUBE_CLUSTER_DIR"), getenv("KUBEFIT_SOURCE_DIR"), getenv("KUBE_CLUSTER_DIR"));
    CHECK_EQ_INT(0, system(cmd));
    w.added_watched = 0;
    wo.resource_version = "2";
    wo.timeout_seconds = 5;
    CHECK_EQ_INT(KF_EGONE, kube_watch(k, &wo));
    CHECK(!w.added_watched);
    fprintf(stderr, "410 says: %s\n", err_msg());

    /* Delete; then it is gone. */
    CHECK_EQ_INT(0, kube_delete(k, CM "/watched", "Background", 0));
    CHECK_EQ_INT(KF_ENOTFOUND, kube_delete(k, CM "/watched", NULL, -1));

    /* Credentials: a wrong token is KF_EAUTH; a token file and an exec plugin both work. */
    kube_client *anon = client_with("    token: wrong\n");
    CHECK_EQ_INT(KF_EAUTH, kube_get(anon, CM, NULL));
    CHECK(strstr(err_msg(), "401") != NULL);
    kube_client_free(anon);
    char dir[] = "/tmp/kubefit-kubeapi-XXXXXX", path[256], user[1024];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/token", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "%s\n", getenv("KUBE_TOKEN"));
    fclose(f);
    snprintf(user, sizeof user, "    tokenFile: %s\n", path);
    kube_client *tf = client_with(user);
    CHECK_EQ_INT(0, kube_get(tf, CM "/page-2", NULL));
    kube_client_free(tf);
    snprintf(path, sizeof path, "%s/plugin.sh", dir);
    f = fopen(path, "w");
    fprintf(f, "#!/bin/sh\necho '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
               "\"status\":{\"token\":\"'\"$TOK\"'\"}}'\n");
    fclose(f);
    chmod(path, 0700);
    snprintf(user, sizeof user, "    exec:\n      command: %s\n      env: [{name: TOK, value: \"%s\"}]\n", path,
             getenv("KUBE_TOKEN"));
    kube_client *ex = client_with(user);
    CHECK_EQ_INT(0, kube_get(ex, CM "/page-2", NULL));
    kube_client_free(ex);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK_EQ_INT(0, system(cmd));

    /* Leader election on a Lease. */
    leader *a = leader_new(&(leader_options){.kube = k, .namespace = "default", .name = "t", .identity = "a", .lease_s = 10});
    leader *b = leader_new(&(leader_options){.kube = k, .namespace = "default", .name = "t", .identity = "b", .lease_s = 10});
    double now = (double)time(NULL);
    CHECK_EQ_INT(0, leader_try(a, now));          /* created, held by a */
    CHECK_EQ_INT(KF_ECONFLICT, leader_try(b, now)); /* valid: b waits */
    CHECK(strstr(err_msg(), "held by a") != NULL);
    CHECK_EQ_INT(0, leader_try(a, now + 1));      /* renew */
    CHECK_EQ_INT(0, leader_try(b, now + 30));     /* expired: b takes over */
    CHECK_EQ_INT(KF_ECONFLICT, leader_try(a, now + 31));
    json_t *lease = NULL;
    CHECK_EQ_INT(0, kube_get(k, "/apis/coordination.k8s.io/v1/namespaces/default/leases/t", &lease));
    CHECK_EQ_STR("b", json_string_value(json_object_get(json_object_get(lease, "spec"), "holderIdentity")));
    CHECK_EQ_INT(1, json_integer_value(json_object_get(json_object_get(lease, "spec"), "leaseTransitions")));
    json_decref(lease);
    leader_free(a);
    leader_free(b);

    kube_client_free(k);
    kube_config_dispose(&cfg);
    return test_done();
}
