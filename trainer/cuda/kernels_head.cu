/* kernels_head: the classifier head's ops (trainer/head/kernels.h) on the CUDA backend's stream.
 * kernels_cpu.c defines the semantics; each output element here sees the same float/double
 * operations in the same order (separate multiply and add where the CPU has them, no FMA), so
 * pooling, ReLU and the BatchNorm statistics match the CPU bit for bit or within an ulp:
 *   pooling:   one thread per (row b, feature e) column, the time loop inside; backward writes only
 *              its own column of denc, so there are no races and no atomics;
 *   BatchNorm: one thread per feature, the batch loops inside in double (B is a batch, small);
 *   ReLU, BCE backward: one thread per element;
 *   bce_sum:   double partials per block, then one block adds them in a fixed order
 *              (deterministic); the scratch comes from the stream-ordered pool (a pool hit after
 *              the first call) and the call waits for the stream to return the sum.
 * Nothing else synchronises. Backward ops ACCUMULATE (+=), as on the CPU.
 * Dimension legend: B batch, T time, E encoder output size, D layer features, n elements. */
#include "backend_cuda.h"
#include "cuda_check.h"
#include "head_cuda.h"
#include "kernels.h" /* this folder's: kern_grid */

extern "C" {
#include "../head/kernels.h" /* the head_kernels table and its dims structs */
}

#include <math.h>
#include <stdint.h>

#define BLOCK 256
#define BCE_PARTS 256 /* most partial sums of bce_sum */

#define GRID_STRIDE(i, n)                                                                  \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                 \
         i += (size_t)gridDim.x * blockDim.x)

/* The backend's stream; a table handed a non-CUDA backend is a programmer error. */
static cudaStream_t head_stream(nn_backend *be)
{
    cuda_ctx *ctx = nn_backend_cuda_ctx(be);
    if (!ctx) {
        log_error("cuda", "head CUDA kernel called with a non-CUDA backend", "{s:s}", "backend",
                  be && be->name ? be->name : "(null)");
        abort();
    }
    return ctx->stream;
}

/* ---- masked concat pooling ---- */

/* pooled(B,3E) = [enc[last_b] | max | mean] over the non-pad steps of column (b,e);
 * argmax(B,E) = the step of the max (first of equals); enc(T,B,E), pad(B,T). */
static __global__ void pool_fwd_kernel(float *pooled, int32_t *argmax, const float *enc,
                                       const uint8_t *pad, const int32_t *last,
                                       const int32_t *len, int T, int B, int E)
{
    const size_t n = (size_t)B * E;
    GRID_STRIDE(i, n) {
        const size_t b = i / (size_t)E, e = i % (size_t)E;
        float mx = -INFINITY, avg = 0.0f;
        int32_t am = -1;
        for (int t = 0; t < T; t++) {
            if (pad[b * (size_t)T + t])
                continue;
            const float x = enc[((size_t)t * B + b) * E + e];
            if (x > mx || am < 0) {
                mx = x;
                am = t;
            }
            avg = __fadd_rn(avg, x);
        }
        const float inv = 1.0f / (float)len[b];
        const int32_t lt = last[b];
        float *row = pooled + b * 3 * (size_t)E;
        row[e] = lt >= 0 && lt < T ? enc[((size_t)lt * B + b) * E + e] : NAN; /* head_clf: in range */
        row[E + e] = mx;
        row[2 * (size_t)E + e] = __fmul_rn(avg, inv);
        argmax[i] = am;
    }
}

static void pool_fwd(nn_backend *be, float *pooled, int32_t *argmax, const float *enc,
                     const head_pool_dims *d)
{
    const size_t n = (size_t)d->B * d->E;
    if (!n || d->T <= 0)
        return;
    pool_fwd_kernel<<<kern_grid(n, BLOCK), BLOCK, 0, head_stream(be)>>>(
        pooled, argmax, enc, d->pad, d->last, d->len, d->T, d->B, d->E);
    CUDA_CHECK(cudaGetLastError());
}

/* denc(T,B,E) += dpooled(B,3E) routed back: last -> its step, max -> argmax, mean/len -> every
 * non-pad step. Per element the order is the CPU's: last, max, mean. Indices outside [0,T) (not
 * produced by pool_fwd) are skipped rather than written out of bounds. */
static __global__ void pool_bwd_kernel(float *denc, const float *dpooled, const int32_t *argmax,
                                       const uint8_t *pad, const int32_t *last,
                                       const int32_t *len, int T, int B, int E)
{
    const size_t n = (size_t)B * E;
    GRID_STRIDE(i, n) {
        const size_t b = i / (size_t)E, e = i % (size_t)E;
        const float *dp = dpooled + b * 3 * (size_t)E;
        const int32_t lt = last[b], am = argmax[i];
        if (lt >= 0 && lt < T) {
            float *dst = denc + ((size_t)lt * B + b) * E + e;
            *dst = __fadd_rn(*dst, dp[e]);
        }
        if (am >= 0 && am < T) {
            float *dst = denc + ((size_t)am * B + b) * E + e;
            *dst = __fadd_rn(*dst, dp[E + e]);
        }
        const float inv = 1.0f / (float)len[b];
        const float g = __fmul_rn(dp[2 * (size_t)E + e], inv);
        for (int t = 0; t < T; t++) {
            if (pad[b * (size_t)T + t])
                continue;
            float *dst = denc + ((size_t)t * B + b) * E + e;
            *dst = __fadd_rn(*dst, g);
        }
    }
}

static void pool_bwd(nn_backend *be, float *denc, const float *dpooled, const int32_t *argmax,
                     const head_pool_dims *d)
{
    const size_t n = (size_t)d->B * d->E;
    if (!n || d->T <= 0)
        return;
    pool_bwd_kernel<<<kern_grid(n, BLOCK), BLOCK, 0, head_stream(be)>>>(
        denc, dpooled, argmax, d->pad, d->last, d->len, d->T, d->B, d->E);
    CUDA_CHECK(cudaGetLastError());
}

/* ---- BatchNorm1d over (B,D), one thread per feature ---- */

static __global__ void bn_fwd_kernel(float *y, float *xhat, float *mean, float *rstd,
                                     float *run_mean, float *run_var, const float *x,
                                     const float *gamma, const float *beta, int B, int D,
                                     double eps, double momentum, bool training)
{
    GRID_STRIDE(f, (size_t)D) {
        double mu, var;
        if (training) {
            double s = 0, ss = 0;
            for (int b = 0; b < B; b++)
                s = __dadd_rn(s, (double)x[(size_t)b * D + f]);
            mu = s / B;
            for (int b = 0; b < B; b++) {
                const double c = __dsub_rn((double)x[(size_t)b * D + f], mu);
                ss = __dadd_rn(ss, __dmul_rn(c, c));
            }
            var = ss / B;
            const double m = momentum;
            run_mean[f] = (float)__dadd_rn(__dmul_rn(1 - m, (double)run_mean[f]), __dmul_rn(m, mu));
            run_var[f] = (float)__dadd_rn(__dmul_rn(1 - m, (double)run_var[f]),
                                          __dmul_rn(m, ss / (B - 1)));
        } else {
            mu = run_mean[f];
            var = run_var[f];
        }
        const double rs = 1.0 / sqrt(var + eps);
        mean[f] = (float)mu;
        rstd[f] = (float)rs;
        for (int b = 0; b < B; b++) {
            const size_t i = (size_t)b * D + f;
            const double xh = __dmul_rn(__dsub_rn((double)x[i], mu), rs);
            xhat[i] = (float)xh;
            y[i] = (float)__dadd_rn(__dmul_rn((double)gamma[f], xh), (double)beta[f]);
        }
    }
}

static void bn_fwd(nn_backend *be, float *y, float *xhat, float *mean, float *rstd,
                   float *run_mean, float *run_var, const float *x, const float *gamma,
                   const float *beta, const head_bn_dims *d)
{
    if (d->B <= 0 || d->D <= 0)
        return;
    bn_fwd_kernel<<<kern_grid((size_t)d->D, BLOCK), BLOCK, 0, head_stream(be)>>>(
        y, xhat, mean, rstd, run_mean, run_var, x, gamma, beta, d->B, d->D, (double)d->eps,
        (double)d->momentum, d->training);
    CUDA_CHECK(cudaGetLastError());
}

static __global__ void bn_bwd_kernel(float *dx, float *dgamma, float *dbeta, const float *dy,
                                     const float *xhat, const float *rstd, const float *gamma,
                                     int B, int D, bool training)
{
    GRID_STRIDE(f, (size_t)D) {
        double sdy = 0, sdyx = 0;
        for (int b = 0; b < B; b++) {
            const size_t i = (size_t)b * D + f;
            sdy = __dadd_rn(sdy, (double)dy[i]);
            sdyx = __dadd_rn(sdyx, __dmul_rn((double)dy[i], (double)xhat[i]));
        }
        dgamma[f] = __fadd_rn(dgamma[f], (float)sdyx);
        dbeta[f] = __fadd_rn(dbeta[f], (float)sdy);
        const double g = __dmul_rn((double)gamma[f], (double)rstd[f]);
        for (int b = 0; b < B; b++) {
            const size_t i = (size_t)b * D + f;
            double v;
            if (training) {
                const double inner = __dsub_rn(__dsub_rn(__dmul_rn((double)B, (double)dy[i]), sdy),
                                               __dmul_rn((double)xhat[i], sdyx));
                v = __dmul_rn(g / B, inner);
            } else {
                v = __dmul_rn(g, (double)dy[i]);
            }
            dx[i] = __fadd_rn(dx[i], (float)v);
        }
    }
}

static void bn_bwd(nn_backend *be, float *dx, float *dgamma, float *dbeta, const float *dy,
                   const float *xhat, const float *rstd, const float *gamma,
                   const head_bn_dims *d)
{
    if (d->B <= 0 || d->D <= 0)
        return;
    bn_bwd_kernel<<<kern_grid((size_t)d->D, BLOCK), BLOCK, 0, head_stream(be)>>>(
        dx, dgamma, dbeta, dy, xhat, rstd, gamma, d->B, d->D, d->training);
    CUDA_CHECK(cudaGetLastError());
}

/* ---- element-wise ---- */

static __global__ void relu_fwd_kernel(float *y, const float *x, size_t n)
{
    GRID_STRIDE(i, n) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

static void relu_fwd(nn_backend *be, float *y, const float *x, size_t n)
{
    if (!n)
        return;
    relu_fwd_kernel<<<kern_grid(n, BLOCK), BLOCK, 0, head_stream(be)>>>(y, x, n);
    CUDA_CHECK(cudaGetLastError());
}

static __global__ void relu_bwd_kernel(float *dx, const float *dy, const float *y, size_t n)
{
    GRID_STRIDE(i, n) {
        if (y[i] > 0.0f)
            dx[i] = __fadd_rn(dx[i], dy[i]);
    }
}

static void relu_bwd(nn_backend *be, float *dx, const float *dy, const float *y, size_t n)
{
    if (!n)
        return;
    relu_bwd_kernel<<<kern_grid(n, BLOCK), BLOCK, 0, head_stream(be)>>>(dx, dy, y, n);
    CUDA_CHECK(cudaGetLastError());
}

/* ---- BCE with logits ---- */

/* Block-wide sum of one double per thread (blockDim.x == BLOCK). */
static __device__ double block_sum(double v)
{
    __shared__ double sh[BLOCK];
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = BLOCK / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s)
            sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    return sh[0];
}

static __global__ void bce_partial_kernel(double *part, const float *logits, const float *targets,
                                          size_t n)
{
    double s = 0;
    GRID_STRIDE(i, n) {
        const double z = logits[i];
        s += (z > 0 ? z : 0) - z * (double)targets[i] + log1p(exp(-fabs(z)));
    }
    s = block_sum(s);
    if (threadIdx.x == 0)
        part[blockIdx.x] = s;
}

static __global__ void bce_total_kernel(double *out, const double *part, int parts)
{
    double s = 0;
    for (int k = threadIdx.x; k < parts; k += BLOCK)
        s += part[k];
    s = block_sum(s);
    if (threadIdx.x == 0)
        *out = s;
}

static double bce_sum(nn_backend *be, const float *logits, const float *targets, size_t n)
{
    if (!n)
        return 0.0;
    cudaStream_t st = head_stream(be);
    const size_t blocks = (n + BLOCK - 1) / BLOCK;
    const int parts = blocks > BCE_PARTS ? BCE_PARTS : (int)blocks;
    /* the context's op scratch (cuda_ctx.h): parts partials, then the total */
    double *scratch = (double *)nn_backend_cuda_ctx(be)->scratch, sum = 0.0;
    bce_partial_kernel<<<(unsigned)parts, BLOCK, 0, st>>>(scratch, logits, targets, n);
    CUDA_CHECK(cudaGetLastError());
    bce_total_kernel<<<1, BLOCK, 0, st>>>(scratch + parts, scratch, parts);
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaMemcpyAsync(&sum, scratch + parts, sizeof sum, cudaMemcpyDeviceToHost, st));
    CUDA_CHECK(cudaStreamSynchronize(st));
    return sum;
}

/* dlogits(n) += scale * (sigmoid(z) - y), the sigmoid in the CPU's overflow-free form. */
static __global__ void bce_bwd_kernel(float *dlogits, const float *logits, const float *targets,
                                      double scale, size_t n)
{
    GRID_STRIDE(i, n) {
        const double z = logits[i];
        double sig;
        if (z >= 0) {
            sig = 1.0 / (1.0 + exp(-z));
        } else {
            const double ez = exp(z);
            sig = ez / (1.0 + ez);
        }
        dlogits[i] = __fadd_rn(dlogits[i], (float)__dmul_rn(scale, sig - (double)targets[i]));
    }
}

static void bce_bwd(nn_backend *be, float *dlogits, const float *logits, const float *targets,
                    float scale, size_t n)
{
    if (!n)
        return;
    bce_bwd_kernel<<<kern_grid(n, BLOCK), BLOCK, 0, head_stream(be)>>>(dlogits, logits, targets,
                                                                      (double)scale, n);
    CUDA_CHECK(cudaGetLastError());
}

static const head_kernels cuda_head_kernels = {
    pool_fwd, pool_bwd, bn_fwd, bn_bwd, relu_fwd, relu_bwd, bce_sum, bce_bwd,
};

extern "C" const struct head_kernels *head_kernels_cuda(void) { return &cuda_head_kernels; }
