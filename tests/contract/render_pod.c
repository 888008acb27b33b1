/* render_pod: a TrainingJob (JSON on stdin, as the API server returns it) -> the trainer Pod the
 * controller would create for run 1, attempt 1 (JSON on stdout), through the controller's own
 * podspec_check and reconcile_build_pod. Exit 2 with the controller's message when it refuses the
 * spec. Used by test-pipeline.sh. */
#include <stdio.h>
#include <time.h>

#include "err.h"
#include "podspec.h"
#include "reconcile.h"

int main(void)
{
    json_error_t jerr;
    json_t *job = json_loadf(stdin, 0, &jerr), *pod = NULL;
    if (!job) {
        fprintf(stderr, "render_pod: stdin: %s\n", jerr.text);
        return 1;
    }
    reconcile_config cfg = {.default_image = "kubefit-trainer:test", .progress_base_url = "http://ctl:8080"};
    int rc = podspec_check(job, &cfg, (double)time(NULL));
    if (rc == 0)
        rc = reconcile_build_pod(&pod, job, 1, 1, &cfg, 0);
    if (rc < 0) {
        fprintf(stderr, "%s\n", err_msg());
        json_decref(job);
        return 2;
    }
    json_dumpf(pod, stdout, JSON_INDENT(1) | JSON_SORT_KEYS);
    putchar('\n');
    json_decref(pod);
    json_decref(job);
    return 0;
}
