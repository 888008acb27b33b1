/* cluster: the API server connection of one kubefit command, resolved as kubectl resolves it:
 * --kubeconfig, else $KUBECONFIG (its first file), else the in-cluster service account, else
 * ~/.kube/config; --context picks a context; --namespace, else the context's namespace, else
 * "default". The client is the controller's (controller/kube.c, kubeconfig.c, kubeauth.c), so
 * exec plugins such as gke-gcloud-auth-plugin and rotating tokens work the same way.
 * Errors say what to do ("no cluster configured: set KUBECONFIG ..."). */
#ifndef KUBEFIT_CLUSTER_H
#define KUBEFIT_CLUSTER_H

#include <jansson.h>

#include "kube.h"

typedef struct {
    const char *kubeconfig; /* --kubeconfig or NULL */
    const char *context;    /* --context or NULL */
    const char *namespace;  /* --namespace or NULL */
} cluster_options;

typedef struct {
    kube_client *kube;
    char *namespace;
    char *server;
} cluster;

int cluster_connect(cluster *out, const cluster_options *opt);
void cluster_dispose(cluster *c);

/* "/apis/kubefit.dev/v1alpha1/namespaces/NS/trainingjobs[/NAME]" (name NULL: the collection).
 * Caller frees. */
char *cluster_jobs_path(const cluster *c, const char *name);

/* GET one TrainingJob. KF_ENOTFOUND says which job and namespace, or that the CRD is missing;
 * other errors say what the API server said and, for 401/403 and connection errors, what to check. */
int cluster_get_job(cluster *c, const char *name, json_t **out);

/* Sets the message for a job that is not there (KF_ENOTFOUND). */
int cluster_not_found(const cluster *c, const char *name);

/* Rewrites err_msg() for a failed API call with a hint for the usual causes (unreachable server,
 * credentials, missing CRD). Returns rc. */
int cluster_explain(const cluster *c, int rc);

#endif
