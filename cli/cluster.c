/* cluster: the API server connection of one kubefit command (see cluster.h). */
#include "cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "crd.h"
#include "err.h"
#include "http.h"
#include "kubeconfig.h"

/* Nothing at all to read: say where kubefit looked instead of "no such file". */
static int nothing_configured(const cluster_options *opt)
{
    const char *env = getenv("KUBECONFIG"), *host = getenv("KUBERNETES_SERVICE_HOST"), *home = getenv("HOME");
    if ((opt->kubeconfig && *opt->kubeconfig) || (env && *env) || (host && *host))
        return 0;
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/.kube/config", home ? home : "");
    return !home || stat(path, &st) != 0;
}

int cluster_connect(cluster *out, const cluster_options *opt)
{
    kube_config cfg;
    memset(out, 0, sizeof *out);
    if (nothing_configured(opt))
        return err_set(KF_EINVAL, "no cluster configured: no --kubeconfig, no $KUBECONFIG, not inside a cluster and "
                                  "no ~/.kube/config (point KUBECONFIG at your cluster's kubeconfig, e.g. after "
                                  "`gcloud container clusters get-credentials`; `kubefit run -f` trains without a "
                                  "cluster)");
    int rc = kube_config_load(&cfg, opt->kubeconfig, opt->context);
    if (rc < 0) /* a kubeconfig that is not there is the caller's to fix, not a missing object */
        return rc == KF_ENOTFOUND ? KF_EINVAL : rc;
    http_global_init();
    out->kube = kube_client_new(&cfg);
    const char *ns = opt->namespace && *opt->namespace ? opt->namespace : cfg.namespace;
    out->namespace = strdup(ns && *ns ? ns : "default");
    out->server = strdup(cfg.server ? cfg.server : "");
    kube_config_dispose(&cfg);
    if (!out->kube || !out->namespace || !out->server) {
        rc = out->kube ? err_set(KF_ENOMEM, "out of memory") : KF_EINVAL;
        cluster_dispose(out);
    }
    return rc;
}

void cluster_dispose(cluster *c)
{
    if (!c)
        return;
    kube_client_free(c->kube);
    free(c->namespace);
    free(c->server);
    memset(c, 0, sizeof *c);
}

char *cluster_jobs_path(const cluster *c, const char *name)
{
    char *p = NULL, *ns = http_escape(c->namespace), *n = name ? http_escape(name) : NULL;
    if (ns && (!name || n) &&
        asprintf(&p, "/apis/%s/%s/namespaces/%s/%s%s%s", CRD_GROUP, CRD_VERSION, ns, CRD_PLURAL, n ? "/" : "",
                 n ? n : "") < 0)
        p = NULL;
    free(ns);
    free(n);
    return p;
}

/* A 404 for the resource type rather than for an object: the CRD is not installed. */
static int crd_missing(void)
{
    return strstr(err_msg(), "could not find the requested resource") || strstr(err_msg(), "404 page not found");
}

int cluster_not_found(const cluster *c, const char *name)
{
    return err_set(KF_ENOTFOUND, "trainingjob \"%s\" not found in namespace \"%s\" (kubefit get lists the jobs; -n "
                                 "picks the namespace)", name, c->namespace);
}

int cluster_explain(const cluster *c, int rc)
{
    if (rc == KF_ERETRY && strstr(err_msg(), "HTTP ") == NULL)
        return err_wrap(rc, "cannot reach the API server at %s (is the cluster up, and is this the right "
                            "context? kubectl cluster-info checks the same kubeconfig)", c->server);
    if (rc == KF_EAUTH)
        return err_wrap(rc, "the API server refused the credentials or the request (kubectl auth can-i "
                            "get trainingjobs.kubefit.dev checks the permissions)");
    if (rc == KF_ENOTFOUND && crd_missing())
        return err_set(rc, "the TrainingJob resource is not installed on %s: install kubefit first "
                           "(helm install kubefit charts/kubefit; docs/install.md)", c->server);
    return rc;
}

int cluster_get_job(cluster *c, const char *name, json_t **out)
{
    char *path = cluster_jobs_path(c, name);
    if (!path)
        return err_set(KF_ENOMEM, "out of memory");
    int rc = kube_get(c->kube, path, out);
    free(path);
    if (rc == KF_ENOTFOUND && !crd_missing())
        return cluster_not_found(c, name);
    return cluster_explain(c, rc);
}
