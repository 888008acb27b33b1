/* refdata: loads the reference tensors the Python scripts in tests/head write.
 * File: repeated records { u32 name_len, name, u32 dtype (0 f32, 1 i32, 2 u8), u32 ndim,
 * u64 dims[ndim], data (little-endian, numel * size) } until EOF. Everything is bounds-checked. */
#ifndef KUBEFIT_TESTS_HEAD_REFDATA_H
#define KUBEFIT_TESTS_HEAD_REFDATA_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { REF_F32 = 0, REF_I32 = 1, REF_U8 = 2 };

typedef struct ref_tensor {
    char *name;
    int dtype, ndim;
    uint64_t dims[4];
    size_t numel;
    void *data;
} ref_tensor;

typedef struct ref_file {
    ref_tensor *t;
    size_t n;
} ref_file;

static inline void ref_free(ref_file *f)
{
    for (size_t i = 0; f && i < f->n; i++) {
        free(f->t[i].name);
        free(f->t[i].data);
    }
    if (f)
        free(f->t);
}

/* Returns 0 or -1 with a message on stderr. */
static inline int ref_load(ref_file *out, const char *path)
{
    FILE *fp = fopen(path, "rb");
    int rc = -1;
    memset(out, 0, sizeof *out);
    if (!fp) {
        fprintf(stderr, "refdata: cannot open %s\n", path);
        return -1;
    }
    for (;;) {
        uint32_t nlen, dtype, ndim;
        if (fread(&nlen, 4, 1, fp) != 1) {
            rc = feof(fp) ? 0 : -1;
            break;
        }
        if (nlen == 0 || nlen > 4096)
            goto bad;
        ref_tensor t = {0};
        t.name = calloc(nlen + 1, 1);
        if (!t.name || fread(t.name, 1, nlen, fp) != nlen || fread(&dtype, 4, 1, fp) != 1 ||
            fread(&ndim, 4, 1, fp) != 1 || dtype > 2 || ndim > 4) {
            free(t.name);
            goto bad;
        }
        t.dtype = (int)dtype;
        t.ndim = (int)ndim;
        t.numel = 1;
        for (uint32_t d = 0; d < ndim; d++) {
            if (fread(&t.dims[d], 8, 1, fp) != 1 || t.dims[d] > (1u << 28)) {
                free(t.name);
                goto bad;
            }
            t.numel *= (size_t)t.dims[d];
        }
        size_t esz = dtype == REF_U8 ? 1 : 4;
        if (t.numel > (1u << 28)) {
            free(t.name);
            goto bad;
        }
        t.data = malloc(t.numel * esz + 1);
        ref_tensor *grown = realloc(out->t, (out->n + 1) * sizeof *grown);
        if (!t.data || !grown || fread(t.data, esz, t.numel, fp) != t.numel) {
            free(t.name);
            free(t.data);
            if (grown)
                out->t = grown;
            goto bad;
        }
        out->t = grown;
        out->t[out->n++] = t;
    }
    fclose(fp);
    return rc;
bad:
    fprintf(stderr, "refdata: %s is malformed\n", path);
    fclose(fp);
    ref_free(out);
    memset(out, 0, sizeof *out);
    return -1;
}

static inline const ref_tensor *ref_get(const ref_file *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->t[i].name, name) == 0)
            return &f->t[i];
    fprintf(stderr, "refdata: tensor %s missing\n", name);
    return NULL;
}

/* Float data of `name`, or exits the test (a missing reference is a failure, not a skip). */
static inline const float *ref_f32(const ref_file *f, const char *name, size_t numel)
{
    const ref_tensor *t = ref_get(f, name);
    if (!t || t->dtype != REF_F32 || (numel && t->numel != numel)) {
        fprintf(stderr, "refdata: %s: wrong dtype or size (want %zu floats)\n", name, numel);
        exit(1);
    }
    return t->data;
}

static inline const int32_t *ref_i32(const ref_file *f, const char *name, size_t numel)
{
    const ref_tensor *t = ref_get(f, name);
    if (!t || t->dtype != REF_I32 || (numel && t->numel != numel)) {
        fprintf(stderr, "refdata: %s: wrong dtype or size (want %zu ints)\n", name, numel);
        exit(1);
    }
    return t->data;
}

static inline const uint8_t *ref_u8(const ref_file *f, const char *name, size_t numel)
{
    const ref_tensor *t = ref_get(f, name);
    if (!t || t->dtype != REF_U8 || (numel && t->numel != numel)) {
        fprintf(stderr, "refdata: %s: wrong dtype or size (want %zu bytes)\n", name, numel);
        exit(1);
    }
    return t->data;
}

/* Largest |x| of n floats (to scale absolute tolerances to a tensor's magnitude). */
static inline double ref_maxabs(const float *x, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs((double)x[i]) > m)
            m = fabs((double)x[i]);
    return m;
}

/* Runs the reference script: `python tests/head/script args` (args already quoted as needed).
 * Returns 0 when it succeeded. Exits 77 (skip) when venv-torch is missing, unless CI=true (then fails). */
static inline int ref_generate(const char *script, const char *args)
{
    const char *tools = getenv("KUBEFIT_TOOLS"), *home = getenv("HOME"), *src = getenv("KUBEFIT_SOURCE_DIR");
    char py[4096], cmd[16384];
    if (tools && *tools)
        snprintf(py, sizeof py, "%s/venv-torch/bin/python", tools);
    else
        snprintf(py, sizeof py, "%s/.cache/kubefit/venv-torch/bin/python", home ? home : "");
    FILE *probe = fopen(py, "rb");
    if (!probe) {
        const char *ci = getenv("CI");
        if (ci && strcmp(ci, "true") == 0) {
            fprintf(stderr, "FAIL: %s missing and CI=true (run hack/setup)\n", py);
            exit(1);
        }
        fprintf(stderr, "SKIP: %s missing (run hack/setup)\n", py);
        exit(77);
    }
    fclose(probe);
    snprintf(cmd, sizeof cmd, "'%s' '%s/tests/head/%s' %s", py, src ? src : ".", script, args);
    if (system(cmd) != 0) {
        fprintf(stderr, "refdata: reference script failed: %s\n", cmd);
        return -1;
    }
    return 0;
}

#endif
