/* cuda_matmul: the matmul forward pieces every layer uses, on row-major float32 tensors.
 * Dimensions: M rows of the output, N its columns, K the reduced dimension.
 *   cuda_sgemm(&ctx, &(cuda_gemm){.c = y, .a = x, .b = w, .m = B*T, .n = H, .k = E,
 *                                 .trans_b = true, .alpha = 1, .beta = 0});   y = x @ w^T
 *   cuda_bias_add(&ctx, y, bias, B*T, H);                                     y += bias
 * Work is queued on ctx->stream; pointers are device memory. CUDA errors abort (cuda_check.h);
 * bad dimensions are programmer errors (assert). */
#ifndef KUBEFIT_CUDA_MATMUL_H
#define KUBEFIT_CUDA_MATMUL_H

#include <stdbool.h>

#include "cuda_ctx.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cuda_gemm {
    float *c;        /* [M,N] out: alpha * op(a) @ op(b) + beta * c */
    const float *a;  /* [M,K], or [K,M] when trans_a */
    const float *b;  /* [K,N], or [N,K] when trans_b */
    int m, n, k;
    bool trans_a, trans_b;
    float alpha, beta;
} cuda_gemm;

void cuda_sgemm(cuda_ctx *ctx, const cuda_gemm *g);

/* y[M,N] += bias[N], broadcast over rows. */
void cuda_bias_add(cuda_ctx *ctx, float *y, const float *bias, int m, int n);

#ifdef __cplusplus
}
#endif

#endif
