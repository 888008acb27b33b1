/* cuda_splitk: split-K for products with few output tiles and a long reduction - the LSTM's
 * per-step recurrent products (M = batch, 64 rows; N = 4H; K = H, or the reverse in backward),
 * which a single cuBLAS call spreads over only 9-36 of the H100's 132 multiprocessors.
 * K is cut into S equal slices computed by one strided-batched cuBLAS call into the context's
 * scratch, and one kernel sums the slices into C (alpha, beta applied there). The summation
 * order differs from one product; results agree to float32 rounding (tests/gpu-backend).
 * KUBEFIT_CUDA_SPLITK=0 in the environment turns it off (for A/B timing). */
#ifndef KUBEFIT_CUDA_SPLITK_H
#define KUBEFIT_CUDA_SPLITK_H

#include <stdbool.h>

#include "cuda_matmul.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Scratch floats a context keeps for the slices (32 MiB). */
#define CUDA_SPLITK_SCRATCH_FLOATS ((size_t)8 << 20)

/* Number of slices worth using for g (row strides resolved: lda/ldb/ldc non-zero), or 1 for a
 * plain product. */
int cuda_splitk_slices(const cuda_ctx *ctx, const cuda_gemm *g);

/* C = alpha * op(A) op(B) + beta * C in `slices` slices (from cuda_splitk_slices, > 1). */
void cuda_sgemm_splitk(cuda_ctx *ctx, const cuda_gemm *g, int slices);

#ifdef __cplusplus
}
#endif

#endif
