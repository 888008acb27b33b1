/* cuda_matmul: row-major SGEMM through cuBLAS (which is column-major) and the bias kernel.
 * A row-major [R,C] matrix is, read column-major, its transpose [C,R]; so the row-major product
 * C = op(A) op(B) is computed as the column-major C^T = op(B)^T op(A)^T with the operands swapped
 * (llm.c's matmul_forward does the same). */
#include "cuda_matmul.h"

#include "cuda_check.h"

#include <assert.h>

extern "C" void cuda_sgemm(cuda_ctx *ctx, const cuda_gemm *g)
{
    assert(g->m > 0 && g->n > 0 && g->k > 0);
    cublasOperation_t op_a = g->trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t op_b = g->trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    int lda = g->trans_a ? g->m : g->k; /* row length of a as stored */
    int ldb = g->trans_b ? g->k : g->n;
    CUBLAS_CHECK(cublasSgemm(ctx->blas, op_b, op_a, g->n, g->m, g->k, &g->alpha, g->b, ldb, g->a,
                             lda, &g->beta, g->c, g->n));
}

/* One thread per element; the row index is implied. y: [M,N], bias: [N]. */
static __global__ void bias_add_kernel(float *y, const float *bias, long long total, int n)
{
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < total)
        y[i] += bias[i % n];
}

extern "C" void cuda_bias_add(cuda_ctx *ctx, float *y, const float *bias, int m, int n)
{
    assert(m > 0 && n > 0);
    const int block = 256;
    long long total = (long long)m * n;
    unsigned grid = (unsigned)((total + block - 1) / block);
    bias_add_kernel<<<grid, block, 0, ctx->stream>>>(y, bias, total, n);
    CUDA_CHECK(cudaGetLastError());
}
