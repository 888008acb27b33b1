/* kernels_reduce: sum, sum of squares and the TAR sum of squared time differences, in double.
 * Two launches, deterministic for a given n: KERN_RED_PARTS blocks at most write one partial
 * each (grid-stride), then one block adds the partials in a fixed order.
 * Dimension legend: n elements; for TDIFF x is (R,M) and n = (R-1)*M, term i = x[i+M] - x[i]. */
#include "kernels.h"

#include "cuda_check.h"

#define RBLOCK 256

static __device__ double block_sum(double v)
{
    __shared__ double sh[RBLOCK];
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = RBLOCK / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s)
            sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    return sh[0];
}

static __global__ void partial_kernel(double *part, const float *x, size_t n, size_t M, int kind)
{
    double s = 0;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        double d = kind == KERN_RED_TDIFF ? (double)x[i + M] - x[i] : (double)x[i];
        s += kind == KERN_RED_SUM ? d : d * d;
    }
    s = block_sum(s);
    if (threadIdx.x == 0)
        part[blockIdx.x] = s;
}

static __global__ void total_kernel(double *out, const double *part, int parts)
{
    double s = 0;
    for (int k = threadIdx.x; k < parts; k += RBLOCK)
        s += part[k];
    s = block_sum(s);
    if (threadIdx.x == 0)
        *out = s;
}

void kern_reduce(cudaStream_t st, double *d_out, double *scratch, const float *x, size_t n,
                 size_t M, int kind)
{
    size_t blocks = (n + RBLOCK - 1) / RBLOCK;
    int parts = blocks == 0 ? 1 : blocks > KERN_RED_PARTS ? KERN_RED_PARTS : (int)blocks;
    partial_kernel<<<(unsigned)parts, RBLOCK, 0, st>>>(scratch, x, n, M, kind);
    CUDA_CHECK(cudaGetLastError());
    total_kernel<<<1, RBLOCK, 0, st>>>(d_out, scratch, parts);
    CUDA_CHECK(cudaGetLastError());
}
