/* serving_apply: writes what serving_reconcile decided (the only I/O of spec.serving). See
 * serving.h. */
#include "serving.h"

#include <stdio.h>
#include <stdlib.h>

#include "err.h"
#include "log.h"

static int write_object(kube_client *kube, const char *collection, const char *kind, const char *ns, const char *name,
                        const json_t *obj, int patch)
{
    char *path = NULL;
    int rc;
    const json_t *meta = json_object_get(obj, "metadata");
    int replace = !patch && json_object_get(meta, "resourceVersion") != NULL;
    if (asprintf(&path, "%s/%s", collection, name) < 0)
        return err_set(KF_ENOMEM, "out of memory");
    if (patch)
        rc = kube_merge_patch(kube, path, obj, NULL);
    else if (replace)
        rc = kube_replace(kube, path, obj, NULL);
    else
        rc = kube_create(kube, collection, obj, NULL);
    free(path);
    if (rc == KF_EEXISTS)
        return err_set(rc, "%s %s/%s exists but the controller's cache does not know it as this job's "
                           "(not owned by the TrainingJob, or the cache lags)", kind, ns, name);
    if (rc)
        return err_wrap(rc, "%s %s %s/%s", patch || replace ? "updating" : "creating", kind, ns, name);
    log_info("serving", patch || replace ? "object updated" : "object created", "{s:s,s:s,s:s}", "kind", kind,
             "namespace", ns, "name", name);
    return 0;
}

int serving_apply(kube_client *kube, const serving_result *r)
{
    char *deps = NULL, *svcs = NULL;
    int rc = 0;
    if (!r->name || (!r->deployment && !r->service && !r->delete_objects))
        return 0;
    if (asprintf(&deps, "/apis/apps/v1/namespaces/%s/deployments", r->namespace_) < 0 ||
        asprintf(&svcs, "/api/v1/namespaces/%s/services", r->namespace_) < 0) {
        rc = err_set(KF_ENOMEM, "out of memory");
        goto done;
    }
    if (r->delete_objects) {
        const char *cols[] = {deps, svcs}, *kinds[] = {"Deployment", "Service"};
        for (int k = 0; k < 2 && rc == 0; k++) {
            char *path = NULL;
            if (asprintf(&path, "%s/%s", cols[k], r->name) < 0) {
                rc = err_set(KF_ENOMEM, "out of memory");
                break;
            }
            rc = kube_delete(kube, path, "Background", -1);
            free(path);
            if (rc == KF_ENOTFOUND)
                rc = 0;
            else if (rc)
                err_wrap(rc, "deleting %s %s/%s", kinds[k], r->namespace_, r->name);
            else
                log_info("serving", "object deleted", "{s:s,s:s,s:s}", "kind", kinds[k], "namespace", r->namespace_,
                         "name", r->name);
        }
        goto done;
    }
    if (r->deployment && (rc = write_object(kube, deps, "Deployment", r->namespace_, r->name, r->deployment, 0)) < 0)
        goto done;
    if (r->service)
        rc = write_object(kube, svcs, "Service", r->namespace_, r->name, r->service, r->service_patch);
done:
    free(deps);
    free(svcs);
    return rc;
}
