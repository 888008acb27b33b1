/* cuda_matmul: the matrix products of every layer, on row-major float32 tensors, in one of three
 * math modes, plus the bias kernel.
 * Dimensions: M rows of the output, N its columns, K the reduced dimension.
 *   cuda_sgemm(&ctx, &(cuda_gemm){.c = y, .a = x, .b = w, .m = B*T, .n = H, .k = E,
 *                                 .trans_b = true, .alpha = 1, .beta = 0});   y = x @ w^T
 *   cuda_bias_add(&ctx, y, bias, B*T, H);                                     y += bias
 * Math modes (storage is always float32; docs/gpu.md "Math modes"):
 *   NN_MATH_FP32  cublasSgemm, true FP32 (the default; what the float32 tests assume)
 *   NN_MATH_TF32  cublasGemmEx, CUBLAS_COMPUTE_32F_FAST_TF32: operands rounded to TF32
 *                 (10-bit mantissa, unit roundoff 2^-11) on tensor cores, FP32 accumulation
 *   NN_MATH_BF16  cublasGemmEx, CUBLAS_COMPUTE_32F_FAST_16BF: operands rounded to bfloat16
 *                 (7-bit mantissa, unit roundoff 2^-8) on tensor cores, FP32 accumulation
 * Work is queued on ctx->stream; pointers are device memory. CUDA errors abort (cuda_check.h);
 * bad dimensions are programmer errors (assert). */
#ifndef KUBEFIT_CUDA_MATMUL_H
#define KUBEFIT_CUDA_MATMUL_H

#include <stdbool.h>

#include "cuda_ctx.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum nn_math {
    NN_MATH_FP32 = 0,
    NN_MATH_TF32 = 1,
    NN_MATH_BF16 = 2,
} nn_math;

/* "fp32", "tf32", "bf16" (the CLI and bench spelling); "?" for a value outside the enum. */
const char *nn_math_name(nn_math m);
/* Parses one of the names above into *out. Returns 0 or KF_EINVAL (err_msg() names the value). */
int nn_math_parse(nn_math *out, const char *name);
/* Unit roundoff of the mode's operand rounding: 2^-24, 2^-11, 2^-8. */
double nn_math_unit_roundoff(nn_math m);

typedef struct cuda_gemm {
    float *c;        /* [M,N] out: alpha * op(a) @ op(b) + beta * c */
    const float *a;  /* [M,K], or [K,M] when trans_a */
    const float *b;  /* [K,N], or [N,K] when trans_b */
    int m, n, k;     /* m, n > 0; k >= 0 (k == 0 scales c by beta) */
    bool trans_a, trans_b;
    float alpha, beta;
    int lda, ldb, ldc; /* row strides as stored; 0 = packed (the row length) */
    nn_math math;      /* 0 = NN_MATH_FP32 */
} cuda_gemm;

void cuda_sgemm(cuda_ctx *ctx, const cuda_gemm *g);

/* y[M,N] += bias[N], broadcast over rows. */
void cuda_bias_add(cuda_ctx *ctx, float *y, const float *bias, int m, int n);

#ifdef __cplusplus
}
#endif

#endif
