/* kernels_xent: softmax + cross-entropy over the vocabulary, one block per row.
 * Dimension legend: N rows (t*b tokens), V vocab. Forward: one read of the row for the running
 * (max, sum of exp) of every thread (online softmax), the pairs merged across the block in
 * double, loss = log(sum) + max - x[target], then a second pass writes the probs in place.
 * Same result as backend_cpu.c's max / double sum / normalise to float32 rounding. */
#include "kernels.h"

#include "cuda_check.h"

#include <float.h>
#include <math.h>

#define XBLOCK 512

/* Merges (m, s) pairs - s = sum of exp(x - m) - across the block; every thread gets the row's
 * max in *mx and its sum of exp(x - max). A pair with s == 0 holds no element. */
static __device__ double block_merge(float m, double s, float *shm, double *shs, float *mx)
{
    shm[threadIdx.x] = m;
    shs[threadIdx.x] = s;
    __syncthreads();
    for (int k = XBLOCK / 2; k > 0; k >>= 1) {
        if (threadIdx.x < k) {
            float m1 = shm[threadIdx.x], m2 = shm[threadIdx.x + k];
            double s1 = shs[threadIdx.x], s2 = shs[threadIdx.x + k];
            float mm = fmaxf(m1, m2);
            shm[threadIdx.x] = mm;
            shs[threadIdx.x] = (s1 != 0 ? s1 * exp((double)m1 - mm) : 0.0) + /* NaN propagates */
                               (s2 != 0 ? s2 * exp((double)m2 - mm) : 0.0);
        }
        __syncthreads();
    }
    *mx = shm[0];
    double r = shs[0];
    __syncthreads();
    return r;
}

static __global__ void xent_fwd_kernel(float *loss, float *probs, const int32_t *targets, int V)
{
    __shared__ float shm[XBLOCK];
    __shared__ double shs[XBLOCK];
    float *x = probs + (size_t)blockIdx.x * V;
    float m = -FLT_MAX, s = 0.0f; /* running max and sum of exp(x - m) of this thread */
    for (int k = threadIdx.x; k < V; k += XBLOCK) {
        float v = x[k];
        if (v > m) {
            s = s * expf(m - v) + 1.0f;
            m = v;
        } else {
            s += expf(v - m);
        }
    }
    float mx;
    double sum = block_merge(m, (double)s, shm, shs, &mx);
    if (threadIdx.x == 0)
        loss[blockIdx.x] = (float)(log(sum) + mx - x[targets[blockIdx.x]]);
    __syncthreads(); /* x[target] is read before it is overwritten */
    float inv = (float)(1.0 / sum);
    for (int k = threadIdx.x; k < V; k += XBLOCK)
        x[k] = expf(x[k] - mx) * inv;
}

void kern_softmax_xent_fwd(cudaStream_t st, float *loss, float *probs, const int32_t *targets,
                           int N, int V)
{
    if (N <= 0 || V <= 0)
        return;
    xent_fwd_kernel<<<(unsigned)N, XBLOCK, 0, st>>>(loss, probs, targets, V);
    CUDA_CHECK(cudaGetLastError());
}

/* dlogits(N,V) = scale*probs - scale*onehot(target); may alias probs. */
static __global__ void xent_bwd_kernel(float *d, const float *p, const int32_t *targets,
                                       float scale, int V)
{
    size_t row = (size_t)blockIdx.x * V;
    int target = targets[blockIdx.x];
    for (int k = threadIdx.x; k < V; k += XBLOCK) {
        float v = scale * p[row + k];
        d[row + k] = k == target ? v - scale : v;
    }
}

void kern_softmax_xent_bwd(cudaStream_t st, float *dlogits, const float *probs,
                           const int32_t *targets, float scale, int N, int V)
{
    if (N <= 0 || V <= 0)
        return;
    xent_bwd_kernel<<<(unsigned)N, XBLOCK, 0, st>>>(dlogits, probs, targets, scale, V);
    CUDA_CHECK(cudaGetLastError());
}
