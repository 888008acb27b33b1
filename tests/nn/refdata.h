/* refdata: reads the record files tests/nn/make_reference.py writes (name, f64/i64 tensor). */
#ifndef KUBEFIT_TESTS_NN_REFDATA_H
#define KUBEFIT_TESTS_NN_REFDATA_H

#include <stddef.h>
#include <stdint.h>

typedef struct ref_tensor {
    char *name;
    int is_int;      /* 1: i64 data, 0: f64 data */
    int ndim;
    uint64_t dims[4];
    size_t numel;
    double *f;       /* numel values (f64 records) */
    int64_t *i;      /* numel values (i64 records) */
} ref_tensor;

typedef struct ref_file {
    ref_tensor *t;
    size_t n;
} ref_file;

/* Loads path; returns 0 or a negative KF_E* code with err_msg() set. Free with ref_free. */
int ref_load(ref_file *rf, const char *path);
void ref_free(ref_file *rf);
/* The record called name, or NULL. */
const ref_tensor *ref_get(const ref_file *rf, const char *name);
/* f64 record -> newly malloc'd floats (caller frees); NULL when missing. */
float *ref_floats(const ref_file *rf, const char *name, size_t *numel);
/* Runs the generator script with venv-torch's python into out_path. Returns 0 on success, 77 when
 * the venv is missing (the caller skips, or fails when CI=true), 1 when the script failed. */
int ref_generate(const char *script, const char *out_path, const char *args);

#endif
