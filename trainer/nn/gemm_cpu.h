/* gemm_cpu: a matrix product with a pre-packed right operand, for the LSTM's recurrent products
 * (few rows - the batch - times a large weight that stays the same for every step of a chunk).
 * OpenBLAS re-packs the weight on every call; here it is packed once per forward/backward.
 * Dimension legend: M rows of A and C (the batch), K inner, N columns of B and C. Row-major. */
#ifndef KUBEFIT_NN_GEMM_CPU_H
#define KUBEFIT_NN_GEMM_CPU_H

#include <stdbool.h>
#include <stddef.h>

#include "pool.h"

/* Floats a packed (K,N) operand takes. */
size_t nn_gemm_packed_floats(int K, int N);

/* packed = op(B)(K,N), op(B) = B^T when trans_b (B is then (N,K)), B row-major with leading
 * dimension ldb. Panels of columns, zero-padded; runs on the pool. */
void nn_gemm_pack_b(nn_pool *pool, float *packed, const float *B, int ldb, bool trans_b, int K,
                    int N);

/* C(M,N) = A(M,K) packed(K,N) + beta * C, beta 0 or 1 (others scale C first). Splits the
 * columns over the pool. Summation order: k ascending within blocks of the inner dimension. */
void nn_gemm_packed(nn_pool *pool, int M, int N, int K, const float *A, int lda,
                    const float *packed, float beta, float *C, int ldc);

#endif
