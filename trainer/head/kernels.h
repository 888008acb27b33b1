/* kernels: the classifier head's own compute ops (pooling, BatchNorm, ReLU, BCE), as a function
 * table next to nn's backend table so a CUDA version can plug in without touching the model code.
 * Tensor pointers are backend memory (be->alloc). Row-major; backward ops ACCUMULATE (+=).
 *
 * Dimension legend: B batch, T time (kept encoder positions), E encoder output size,
 * D features of one head layer, n element count.
 * Encoder outputs are TIME-MAJOR (T,B,E) like nn's activations; pad masks BATCH-FIRST (B,T). */
#ifndef KUBEFIT_HEAD_KERNELS_H
#define KUBEFIT_HEAD_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"

/* Geometry of one masked concat pooling call (fastai masked_concat_pool). */
typedef struct head_pool_dims {
    int T, B, E;
    const uint8_t *pad;  /* (B,T) 1 = padding position */
    const int32_t *last; /* (B) time index fastai takes as "last": T - 1 - pads in last bptt */
    const int32_t *len;  /* (B) non-pad positions, > 0 */
} head_pool_dims;

/* Batch norm call (BatchNorm1d over (B,D), per feature d). */
typedef struct head_bn_dims {
    int B, D;
    float eps, momentum; /* 1e-5, 0.1 as PyTorch */
    bool training;       /* true: batch stats + running update; false: running stats */
} head_bn_dims;

typedef struct head_kernels {
    /* pooled(B,3E) = [enc[last_b,b,:] | max over non-pad t | mean over non-pad t];
     * argmax(B,E) out: the time index each max came from. enc(T,B,E). */
    void (*pool_fwd)(nn_backend *be, float *pooled, int32_t *argmax, const float *enc,
                     const head_pool_dims *d);
    /* denc(T,B,E) += routing of dpooled(B,3E): last -> its step, max -> argmax, mean -> 1/len
     * on every non-pad step. */
    void (*pool_bwd)(nn_backend *be, float *denc, const float *dpooled, const int32_t *argmax,
                     const head_pool_dims *d);
    /* y(B,D) = gamma*xhat + beta; xhat(B,D), mean(D), rstd(D) out. Training: batch mean and
     * biased variance; run_mean/run_var(D) updated with momentum (unbiased variance).
     * Eval: running statistics, nothing updated. */
    void (*bn_fwd)(nn_backend *be, float *y, float *xhat, float *mean, float *rstd,
                   float *run_mean, float *run_var, const float *x, const float *gamma,
                   const float *beta, const head_bn_dims *d);
    /* dx(B,D) += input gradient; dgamma(D), dbeta(D) += parameter gradients. */
    void (*bn_bwd)(nn_backend *be, float *dx, float *dgamma, float *dbeta, const float *dy,
                   const float *xhat, const float *rstd, const float *gamma,
                   const head_bn_dims *d);
    /* y(n) = max(x, 0); y may alias x. */
    void (*relu_fwd)(nn_backend *be, float *y, const float *x, size_t n);
    /* dx(n) += dy * (y > 0), y the forward output. */
    void (*relu_bwd)(nn_backend *be, float *dx, const float *dy, const float *y, size_t n);
    /* Sum over n of the stable BCE-with-logits max(z,0) - z*y + log1p(exp(-|z|)), in double. */
    double (*bce_sum)(nn_backend *be, const float *logits, const float *targets, size_t n);
    /* dlogits(n) += scale * (sigmoid(z) - y). */
    void (*bce_bwd)(nn_backend *be, float *dlogits, const float *logits, const float *targets,
                    float scale, size_t n);
} head_kernels;

/* The CPU table (host memory; threads through be->parallel_for). */
const head_kernels *head_kernels_cpu(void);

#endif
