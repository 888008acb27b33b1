/* refdata: reader for the reference record files (see refdata.h). */
#include "refdata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"

static int rd(FILE *f, void *p, size_t n) { return fread(p, 1, n, f) == n ? 0 : -1; }

int ref_load(ref_file *rf, const char *path)
{
    int rc = 0;
    FILE *f = fopen(path, "rb");
    *rf = (ref_file){0};
    if (!f)
        return err_set(KF_EIO, "refdata: cannot open %s", path);
    for (;;) {
        uint32_t len, dt, nd;
        if (fread(&len, 4, 1, f) != 1)
            break; /* end of file */
        ref_tensor *nt = realloc(rf->t, (rf->n + 1) * sizeof *nt);
        if (!nt) {
            rc = err_set(KF_ENOMEM, "refdata: out of memory");
            goto done;
        }
        rf->t = nt;
        ref_tensor *t = &rf->t[rf->n++];
        *t = (ref_tensor){0};
        if (len > 4096 || !(t->name = calloc(1, len + 1)) || rd(f, t->name, len) ||
            rd(f, &dt, 4) || rd(f, &nd, 4) || nd > 4 || dt > 1) {
            rc = err_set(KF_EINVAL, "refdata: %s: bad record header", path);
            goto done;
        }
        t->is_int = (int)dt;
        t->ndim = (int)nd;
        t->numel = 1;
        for (uint32_t k = 0; k < nd; k++) {
            if (rd(f, &t->dims[k], 8) || t->dims[k] > (1u << 28)) {
                rc = err_set(KF_EINVAL, "refdata: %s: bad dims of %s", path, t->name);
                goto done;
            }
            t->numel *= t->dims[k];
        }
        void *data = malloc(t->numel * 8 + 8);
        if (!data) {
            rc = err_set(KF_ENOMEM, "refdata: out of memory");
            goto done;
        }
        if (dt)
            t->i = data;
        else
            t->f = data;
        if (rd(f, data, t->numel * 8)) {
            rc = err_set(KF_EINVAL, "refdata: %s: truncated data of %s", path, t->name);
            goto done;
        }
    }
done:
    fclose(f);
    if (rc)
        ref_free(rf);
    return rc;
}

void ref_free(ref_file *rf)
{
    for (size_t k = 0; k < rf->n; k++) {
        free(rf->t[k].name);
        free(rf->t[k].f);
        free(rf->t[k].i);
    }
    free(rf->t);
    *rf = (ref_file){0};
}

const ref_tensor *ref_get(const ref_file *rf, const char *name)
{
    for (size_t k = 0; k < rf->n; k++)
        if (strcmp(rf->t[k].name, name) == 0)
            return &rf->t[k];
    return NULL;
}

float *ref_floats(const ref_file *rf, const char *name, size_t *numel)
{
    const ref_tensor *t = ref_get(rf, name);
    if (!t || t->is_int)
        return NULL;
    float *out = malloc(t->numel * sizeof *out + 1);
    if (!out)
        return NULL;
    for (size_t k = 0; k < t->numel; k++)
        out[k] = (float)t->f[k];
    if (numel)
        *numel = t->numel;
    return out;
}

int ref_generate(const char *script, const char *out_path, const char *args)
{
    const char *tools = getenv("KUBEFIT_TOOLS");
    const char *home = getenv("HOME");
    char py[4096], cmd[8192];
    if (tools && *tools)
        snprintf(py, sizeof py, "%s/venv-torch/bin/python", tools);
    else
        snprintf(py, sizeof py, "%s/.cache/kubefit/venv-torch/bin/python", home ? home : "");
    if (access(py, X_OK) != 0) {
        fprintf(stderr, "refdata: no PyTorch venv at %s (run hack/setup)\n", py);
        return 77;
    }
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' %s", py, script, out_path, args ? args : "");
    int st = system(cmd);
    if (st != 0) {
        fprintf(stderr, "refdata: '%s' failed (status %d)\n", cmd, st);
        return 1;
    }
    return 0;
}
