/* kernels_xent: softmax + cross-entropy over the vocabulary, one block per row.
 * Dimension legend: N rows (t*b tokens), V vocab. Forward: row max, sum of exp in double, loss
 * = log(sum) + max - x[target], then probs in place; same steps as backend_cpu.c. */
#include "kernels.h"

#include "cuda_check.h"

#include <float.h>

#define XBLOCK 512

/* Block-wide reductions over XBLOCK threads through shared memory; every thread gets the result. */
static __device__ float block_max(float v, float *sh)
{
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = XBLOCK / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s)
            sh[threadIdx.x] = fmaxf(sh[threadIdx.x], sh[threadIdx.x + s]);
        __syncthreads();
    }
    float r = sh[0];
    __syncthreads();
    return r;
}

static __device__ double block_sum(double v, double *sh)
{
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = XBLOCK / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s)
            sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    double r = sh[0];
    __syncthreads();
    return r;
}

/* probs(N,V): logits in, probabilities out; loss(N). */
static __global__ void xent_fwd_kernel(float *loss, float *probs, const int32_t *targets, int V)
{
    __shared__ float shf[XBLOCK];
    __shared__ double shd[XBLOCK];
    float *x = probs + (size_t)blockIdx.x * V;
    float mx = -FLT_MAX;
    for (int k = threadIdx.x; k < V; k += XBLOCK)
        mx = fmaxf(mx, x[k]);
    mx = block_max(mx, shf);
    double s = 0;
    for (int k = threadIdx.x; k < V; k += XBLOCK)
        s += exp((double)x[k] - mx);
    s = block_sum(s, shd);
    if (threadIdx.x == 0)
        loss[blockIdx.x] = (float)(log(s) + mx - x[targets[blockIdx.x]]);
    __syncthreads(); /* x[target] is read before it is overwritten */
    float inv = (float)(1.0 / s);
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
