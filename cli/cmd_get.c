/* kubefit get [NAME] and kubefit status NAME. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "crd.h"
#include "err.h"
#include "kubetime.h"
#include "show.h"

static const args_flag GET_FLAGS[] = {
    {"output", 'o', "json|yaml|wide|name", "the objects as JSON or YAML, more columns, or names only", 0},
    {"all-namespaces", 'A', NULL, "jobs of every namespace", 0},
    {"no-headers", 0, NULL, "no header line", 0},
    {NULL, 0, NULL, NULL, 0},
};

int cmd_get(const cli_ctx *ctx, char **argv)
{
    args_parsed a;
    static const cli_command CMD = {"get", "get [NAME] [flags]", GET_FLAGS, 1};
    int code = cli_args(&a, ctx, &CMD, argv);
    if (code >= 0)
        return code;
    cluster c = {0};
    crd *schema = NULL;
    json_t *items = NULL, *one = NULL;
    char *path = NULL, *rv = NULL;
    const char *fmt = NULL;
    int rc;
    if ((code = cli_output(&fmt, ctx, &a, "json|yaml|wide|name")) >= 0)
        goto done;
    if (a.n_pos > 1) {
        fprintf(ctx->err, "%s get: one NAME at most, got %zu\n", ctx->prog, a.n_pos);
        code = CLI_BAD_INPUT;
        goto done;
    }
    if ((code = cli_connect(&c, ctx, &a)) >= 0)
        goto done;
    int all = args_has(&a, "all-namespaces");
    if (a.n_pos) {
        if ((rc = cluster_get_job(&c, a.pos[0], &one)) < 0) {
            code = cli_fail(ctx, rc);
            goto done;
        }
        items = json_pack("[O]", one);
    } else {
        if (all && asprintf(&path, "/apis/%s/%s/%s", CRD_GROUP, CRD_VERSION, CRD_PLURAL) < 0)
            path = NULL;
        else if (!all)
            path = cluster_jobs_path(&c, NULL);
        if (!path) {
            code = cli_fail(ctx, err_set(KF_ENOMEM, "out of memory"));
            goto done;
        }
        if ((rc = kube_list(c.kube, path, NULL, 500, &items, &rv)) < 0) {
            code = cli_fail(ctx, cluster_explain(&c, rc));
            goto done;
        }
    }
    code = 0;
    if (fmt && (!strcmp(fmt, "json") || !strcmp(fmt, "yaml"))) {
        json_t *list = one ? json_incref(one)
                           : json_pack("{s:s,s:s,s:O,s:{s:s}}", "apiVersion", CRD_API_VERSION, "kind", "TrainingJobList",
                                       "items", items, "metadata", "resourceVersion", rv ? rv : "");
        cli_print_object(ctx, list, fmt);
        json_decref(list);
        goto done;
    }
    if (fmt && !strcmp(fmt, "name")) {
        size_t i;
        json_t *j;
        json_array_foreach(items, i, j)
            fprintf(ctx->out, "%s\n", json_string_value(json_object_get(json_object_get(j, "metadata"), "name")));
        goto done;
    }
    if (!json_array_size(items)) {
        fprintf(ctx->err, "No TrainingJobs in %s%s%s.\n", all ? "any namespace" : "namespace \"",
                all ? "" : c.namespace, all ? "" : "\"");
        goto done;
    }
    if ((rc = crd_load(&schema)) < 0) {
        code = cli_fail(ctx, rc);
        goto done;
    }
    show_table_opts to = {.columns = crd_printer_columns(schema), .wide = fmt && !strcmp(fmt, "wide"),
                          .all_namespaces = all, .no_headers = args_has(&a, "no-headers"), .now = kube_now()};
    show_table(ctx->out, items, &to);
done:
    crd_free(schema);
    json_decref(items);
    json_decref(one);
    free(path);
    free(rv);
    cluster_dispose(&c);
    args_dispose(&a);
    return code;
}

static const args_flag STATUS_FLAGS[] = {
    {"output", 'o', "json|yaml", "the status object instead of the page", 0},
    {NULL, 0, NULL, NULL, 0},
};

int cmd_status(const cli_ctx *ctx, char **argv)
{
    args_parsed a;
    static const cli_command CMD = {"status", "status NAME [flags]", STATUS_FLAGS, 1};
    int code = cli_args(&a, ctx, &CMD, argv);
    if (code >= 0)
        return code;
    cluster c = {0};
    json_t *job = NULL;
    const char *fmt = NULL;
    int rc;
    if ((code = cli_output(&fmt, ctx, &a, "json|yaml")) >= 0)
        goto done;
    if (a.n_pos != 1) {
        fprintf(ctx->err, "%s status: %s\n", ctx->prog, a.n_pos ? "one NAME only" : "NAME is required (kubefit get lists the jobs)");
        code = CLI_BAD_INPUT;
        goto done;
    }
    if ((code = cli_connect(&c, ctx, &a)) >= 0)
        goto done;
    if ((rc = cluster_get_job(&c, a.pos[0], &job)) < 0) {
        code = cli_fail(ctx, rc);
        goto done;
    }
    code = 0;
    if (fmt) {
        json_t *st = json_object_get(job, "status");
        json_t *empty = json_object();
        cli_print_object(ctx, st ? st : empty, fmt);
        json_decref(empty);
    } else {
        show_status(ctx->out, job, kube_now(), ctx->tty_out);
    }
done:
    json_decref(job);
    cluster_dispose(&c);
    args_dispose(&a);
    return code;
}
