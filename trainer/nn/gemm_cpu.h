/* gemm_cpu: kubefit's own single-precision matrix products for the CPU trainer - every product
 * the LSTM and the tied decoder make (sgemm with either operand transposed) and products with a
 * right operand packed once and reused (the recurrent weight of a chunk: one small product per
 * time step). Blocked as BLIS/GotoBLAS do (B panels in L1, A blocks in L2), on micro-kernels
 * chosen by CPU features at run time (gemm_kern.c: AVX-512, AVX2+FMA, plain C), threaded on the
 * backend's pool over a 2-D grid of C's tiles. No OpenBLAS underneath, so its kernel choice
 * (OPENBLAS_CORETYPE) does not matter here. Each element of C is summed by one thread in the same
 * order (k ascending within blocks of kc), whatever the thread count.
 * Dimension legend: M rows of A and C, K inner, N columns of B and C. Row-major. */
#ifndef KUBEFIT_NN_GEMM_CPU_H
#define KUBEFIT_NN_GEMM_CPU_H

#include <stdbool.h>
#include <stddef.h>

#include "pool.h"

typedef struct nn_gemm_arch nn_gemm_arch; /* one set of micro-kernels, gemm_kern.h */

/* The fastest set this CPU runs (checked once). */
const nn_gemm_arch *nn_gemm_arch_best(void);
/* The set named "avx512", "avx2" or "c"; NULL when unknown or this CPU lacks it. */
const nn_gemm_arch *nn_gemm_arch_named(const char *name);
const char *nn_gemm_arch_name(const nn_gemm_arch *arch);

/* A product context: the pool, the kernel set and per-thread packing buffers. */
typedef struct nn_gemm nn_gemm;

/* pool borrowed (outlives the context); arch NULL: nn_gemm_arch_best(). Free with nn_gemm_free.
 * Returns 0 or KF_ENOMEM. */
int nn_gemm_new(nn_gemm **out, nn_pool *pool, const nn_gemm_arch *arch);
void nn_gemm_free(nn_gemm *g);
const nn_gemm_arch *nn_gemm_arch_of(const nn_gemm *g);

/* on: every product of g rounds both operands to bfloat16 (nearest even) and sums in float32
 * (AMX, gemm_bf16.h); off: float32 (the default). Returns 0, KF_EUNSUPPORTED (no AMX-BF16 for
 * this process; g stays as it was) or KF_ENOMEM. Packed operands must be packed again after a
 * change (the layout differs). */
int nn_gemm_set_bf16(nn_gemm *g, bool on);
/* What g computes with: the kernel set's name ("avx512", "avx2", "c") or "amx-bf16". */
const char *nn_gemm_name(const nn_gemm *g);

/* C(M,N) = alpha * op(A)(M,K) op(B)(K,N) + beta * C, op(X) = X^T when trans_x (A is then
 * stored (K,M), B (N,K)); leading dimensions lda, ldb, ldc as BLAS (row-major). */
void nn_gemm_run(nn_gemm *g, bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb, float beta, float *C,
                 int ldc);

/* Floats a packed (K,N) operand takes in g's layout. */
size_t nn_gemm_packed_size(const nn_gemm *g, int K, int N);
/* packed = op(B)(K,N), op(B) = B^T when trans_b (B is then (N,K)); packed 64-byte aligned. */
void nn_gemm_pack(nn_gemm *g, float *packed, const float *B, int ldb, bool trans_b, int K, int N);
/* C(M,N) = A(M,K) packed(K,N) + beta * C. For few rows (the batch): A is read in place. */
void nn_gemm_run_packed(nn_gemm *g, int M, int N, int K, const float *A, int lda,
                        const float *packed, float beta, float *C, int ldc);

/* The packed products on the best set without a context (as before the context existed):
 * floats of a packed (K,N) operand, the packing and the product, on `pool`. */
size_t nn_gemm_packed_floats(int K, int N);
void nn_gemm_pack_b(nn_pool *pool, float *packed, const float *B, int ldb, bool trans_b, int K,
                    int N);
void nn_gemm_packed(nn_pool *pool, int M, int N, int K, const float *A, int lda,
                    const float *packed, float beta, float *C, int ldc);

#endif
