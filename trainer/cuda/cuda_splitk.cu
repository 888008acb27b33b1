/* cuda_splitk: see cuda_splitk.h. Row-major products go to column-major cuBLAS with the operands
 * swapped, as in cuda_matmul.cu; slice j covers k in [j*Ks, (j+1)*Ks). */
#include "cuda_splitk.h"

#include "cuda_check.h"
#include "kernels.h"

#define SM_TARGET 132 /* CTAs to aim for: one per H100 multiprocessor */
#define MIN_SLICE_K 128

extern "C" int cuda_splitk_slices(const cuda_ctx *ctx, const cuda_gemm *g)
{
    if (!ctx->splitk || g->m > 256 || g->k < 3 * MIN_SLICE_K)
        return 1;
    /* cuBLAS's tiles for such shapes are about 64 x 128 (output rows x columns). Measured on an
     * H200 (docs/gpu.md): splitting 9 tiles (64x1152x4608, the backward dh product) 16 ways took
     * it from 13 to 21 TFLOP/s, while splitting 36 tiles (64x4608x1152, forward) 4 ways lost
     * time; so only products of under 16 tiles are split. */
    long tiles = (long)((g->m + 63) / 64) * ((g->n + 127) / 128);
    if (tiles >= 16)
        return 1;
    int best = 1;
    for (int s = 2; s <= 16; s++) {
        if (g->k % s || g->k / s < MIN_SLICE_K || (size_t)s * g->m * g->n > ctx->scratch_floats)
            continue;
        best = s;
        if (tiles * s >= SM_TARGET)
            break;
    }
    return best;
}

/* c[i,n] = alpha * sum_j part[j][i,n] + beta * c[i,n] (c not read when beta == 0). */
static __global__ void splitk_sum_kernel(float *c, int ldc, const float *part, int slices, int M,
                                         int N, float alpha, float beta)
{
    size_t total = (size_t)M * N, stride = (size_t)gridDim.x * blockDim.x;
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride) {
        float s = 0.0f;
        for (int j = 0; j < slices; j++)
            s += part[(size_t)j * total + e];
        float *out = c + (e / N) * (size_t)ldc + e % N;
        *out = beta == 0.0f ? alpha * s : alpha * s + beta * *out;
    }
}

extern "C" void cuda_sgemm_splitk(cuda_ctx *ctx, const cuda_gemm *g, int slices)
{
    const int ks = g->k / slices;
    const float one = 1.0f, zero = 0.0f;
    cublasOperation_t op_a = g->trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t op_b = g->trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    /* A is (M,K) row-major, or (K,M) when transposed; B is (K,N), or (N,K). */
    long long stride_a = g->trans_a ? (long long)ks * g->lda : ks;
    long long stride_b = g->trans_b ? ks : (long long)ks * g->ldb;
    long long stride_c = (long long)g->m * g->n;
    if (g->math == NN_MATH_FP32) {
        CUBLAS_CHECK(cublasSgemmStridedBatched(ctx->blas, op_b, op_a, g->n, g->m, ks, &one, g->b,
                                               g->ldb, stride_b, g->a, g->lda, stride_a, &zero,
                                               ctx->scratch, g->n, stride_c, slices));
    } else {
        cublasComputeType_t compute = g->math == NN_MATH_BF16 ? CUBLAS_COMPUTE_32F_FAST_16BF
                                                              : CUBLAS_COMPUTE_32F_FAST_TF32;
        CUBLAS_CHECK(cublasGemmStridedBatchedEx(
            ctx->blas, op_b, op_a, g->n, g->m, ks, &one, g->b, CUDA_R_32F, g->ldb, stride_b, g->a,
            CUDA_R_32F, g->lda, stride_a, &zero, ctx->scratch, CUDA_R_32F, g->n, stride_c, slices,
            compute, CUBLAS_GEMM_DEFAULT));
    }
    size_t total = (size_t)g->m * g->n;
    splitk_sum_kernel<<<kern_grid(total, 256), 256, 0, ctx->stream>>>(
        g->c, g->ldc, ctx->scratch, slices, g->m, g->n, g->alpha, g->beta);
    CUDA_CHECK(cudaGetLastError());
}
