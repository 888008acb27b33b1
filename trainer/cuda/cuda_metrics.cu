/* cuda_metrics: argmax hits, one 256-thread block per row (grid-strided over rows past the grid
 * limit). Each thread scans a strided slice keeping its first maximum; the block then keeps the
 * larger value, the smaller index on a tie - the first maximum of the row, as the CPU loop. */
#include "cuda_metrics.h"

#include "cuda_check.h"

#define HBLOCK 256
#define HMAX_ROWS_PER_GRID 65535

/* (va, ia) wins over (vb, ib): larger value, or equal value and smaller index; a slot with no
 * element (index -1) always loses. Rows holding NaN give an unspecified pick (so does the host). */
static __device__ bool better(float va, int ia, float vb, int ib)
{
    if (ia < 0)
        return false;
    return ib < 0 || va > vb || (va == vb && ia < ib);
}

static __global__ void argmax_hits_kernel(float *hits, const float *x, const int32_t *targets,
                                          int N, int V)
{
    __shared__ float sv[HBLOCK];
    __shared__ int si[HBLOCK];
    for (int row = blockIdx.x; row < N; row += gridDim.x) {
        const float *r = x + (size_t)row * V;
        float best = 0.0f;
        int bi = -1; /* none yet */
        for (int v = threadIdx.x; v < V; v += HBLOCK)
            if (bi < 0 || r[v] > best)
                best = r[v], bi = v;
        sv[threadIdx.x] = best, si[threadIdx.x] = bi;
        __syncthreads();
        for (int s = HBLOCK / 2; s > 0; s >>= 1) {
            if (threadIdx.x < s &&
                better(sv[threadIdx.x + s], si[threadIdx.x + s], sv[threadIdx.x], si[threadIdx.x]))
                sv[threadIdx.x] = sv[threadIdx.x + s], si[threadIdx.x] = si[threadIdx.x + s];
            __syncthreads();
        }
        if (threadIdx.x == 0)
            hits[row] = si[0] == targets[row] ? 1.0f : 0.0f;
        __syncthreads(); /* sv/si are reused by the next row */
    }
}

extern "C" void cuda_argmax_hits(cudaStream_t stream, float *hits, const float *x,
                                 const int32_t *targets, int N, int V)
{
    if (N <= 0 || V <= 0)
        return;
    unsigned grid = N < HMAX_ROWS_PER_GRID ? (unsigned)N : HMAX_ROWS_PER_GRID;
    argmax_hits_kernel<<<grid, HBLOCK, 0, stream>>>(hits, x, targets, N, V);
    CUDA_CHECK(cudaGetLastError());
}
