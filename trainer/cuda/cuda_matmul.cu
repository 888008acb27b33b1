/* cuda_matmul: row-major GEMM through cuBLAS (which is column-major) and the bias kernel.
 * A row-major [R,C] matrix is, read column-major, its transpose [C,R]; so the row-major product
 * C = op(A) op(B) is computed as the column-major C^T = op(B)^T op(A)^T with the operands swapped
 * (llm.c's matmul_forward does the same).
 * FP32 stays on cublasSgemm (bit-for-bit what the FP32 tests were written against); TF32 and BF16
 * go through cublasGemmEx with float32 A/B/C and a "fast" compute type, so cuBLAS rounds the
 * operands to the narrow format inside the kernel and accumulates in float32: no bf16 copies, no
 * extra memory, master weights stay float32 (docs/gpu.md "Math modes"). */
#include "cuda_matmul.h"

#include "cuda_check.h"
#include "cuda_splitk.h"

#include <assert.h>
#include <string.h>

static const char *const MATH_NAMES[] = {"fp32", "tf32", "bf16"};

extern "C" const char *nn_math_name(nn_math m)
{
    return (unsigned)m < sizeof MATH_NAMES / sizeof *MATH_NAMES ? MATH_NAMES[m] : "?";
}

extern "C" int nn_math_parse(nn_math *out, const char *name)
{
    for (unsigned i = 0; name && i < sizeof MATH_NAMES / sizeof *MATH_NAMES; i++)
        if (!strcmp(name, MATH_NAMES[i])) {
            *out = (nn_math)i;
            return 0;
        }
    return err_set(KF_EINVAL, "math mode '%s' is not one of fp32, tf32, bf16",
                   name ? name : "(null)");
}

extern "C" double nn_math_unit_roundoff(nn_math m)
{
    return m == NN_MATH_BF16 ? 0x1p-8 : m == NN_MATH_TF32 ? 0x1p-11 : 0x1p-24;
}

extern "C" void cuda_sgemm(cuda_ctx *ctx, const cuda_gemm *g)
{
    assert(g->m > 0 && g->n > 0 && g->k >= 0);
    assert(g->math == NN_MATH_FP32 || g->math == NN_MATH_TF32 || g->math == NN_MATH_BF16);
    cublasOperation_t op_a = g->trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t op_b = g->trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    /* row length of each operand as stored, unless the caller gives a padded stride */
    int lda = g->lda ? g->lda : g->trans_a ? g->m : g->k;
    int ldb = g->ldb ? g->ldb : g->trans_b ? g->k : g->n;
    int ldc = g->ldc ? g->ldc : g->n;
    cuda_gemm r = *g; /* strides resolved, for split-K */
    r.lda = lda, r.ldb = ldb, r.ldc = ldc;
    int slices = cuda_splitk_slices(ctx, &r);
    if (slices > 1) {
        cuda_sgemm_splitk(ctx, &r, slices);
        return;
    }
    if (g->math == NN_MATH_FP32) {
        CUBLAS_CHECK(cublasSgemm(ctx->blas, op_b, op_a, g->n, g->m, g->k, &g->alpha, g->b, ldb,
                                 g->a, lda, &g->beta, g->c, ldc));
        return;
    }
    cublasComputeType_t compute = g->math == NN_MATH_BF16 ? CUBLAS_COMPUTE_32F_FAST_16BF
                                                          : CUBLAS_COMPUTE_32F_FAST_TF32;
    CUBLAS_CHECK(cublasGemmEx(ctx->blas, op_b, op_a, g->n, g->m, g->k, &g->alpha, g->b, CUDA_R_32F,
                              ldb, g->a, CUDA_R_32F, lda, &g->beta, g->c, CUDA_R_32F, ldc, compute,
                              CUBLAS_GEMM_DEFAULT));
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
