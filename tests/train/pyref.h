/* pyref.h: run the reference Python (venv-torch) from a C test.
 * py_path() finds ${KUBEFIT_TOOLS:-$HOME/.cache/kubefit}/venv-torch/bin/python; when it is
 * missing the test skips (exit 77), except under CI=true where a missing reference is a failure. */
#ifndef KUBEFIT_TESTS_TRAIN_PYREF_H
#define KUBEFIT_TESTS_TRAIN_PYREF_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "safetensors.h"

static char py_buf_[4096];

static const char *py_path(void)
{
    const char *tools = getenv("KUBEFIT_TOOLS"), *home = getenv("HOME");
    if (tools && *tools)
        snprintf(py_buf_, sizeof py_buf_, "%s/venv-torch/bin/python", tools);
    else
        snprintf(py_buf_, sizeof py_buf_, "%s/.cache/kubefit/venv-torch/bin/python", home ? home : "");
    if (access(py_buf_, X_OK) != 0) {
        const char *ci = getenv("CI");
        if (ci && strcmp(ci, "true") == 0) {
            fprintf(stderr, "FAIL: reference python %s missing under CI=true\n", py_buf_);
            exit(1);
        }
        fprintf(stderr, "SKIP: reference python %s missing (run hack/setup)\n", py_buf_);
        exit(77);
    }
    return py_buf_;
}

/* Runs "<python> $KUBEFIT_SOURCE_DIR/tests/train/<script> args"; returns its exit status. */
static int py_run(const char *script, const char *args)
{
    const char *src = getenv("KUBEFIT_SOURCE_DIR");
    char *cmd = NULL;
    if (asprintf(&cmd, "'%s' '%s/tests/train/%s' %s", py_path(), src ? src : ".", script, args) < 0)
        return -1;
    int st = system(cmd);
    free(cmd);
    return st == -1 ? -1 : WEXITSTATUS(st);
}

/* Runs <script> with a fresh temporary safetensors path as its argument and loads what it wrote.
 * Returns the file (caller frees with st_free) or NULL after printing why (a test failure).
 */
static inline st_file *py_reference(const char *script)
{
    char path[] = "/tmp/kf-ref-XXXXXX.safetensors", args[64];
    st_file *f = NULL;
    int fd = mkstemps(path, 12);
    if (fd < 0) {
        fprintf(stderr, "FAIL: mkstemps: cannot create a temporary file\n");
        return NULL;
    }
    close(fd);
    snprintf(args, sizeof args, "'%s'", path);
    if (py_run(script, args) != 0)
        fprintf(stderr, "FAIL: %s failed\n", script);
    else if (st_load(&f, path) < 0)
        fprintf(stderr, "FAIL: %s: %s\n", path, err_msg());
    remove(path);
    return f;
}

#endif
