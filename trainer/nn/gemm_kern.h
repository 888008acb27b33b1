/* gemm_kern: the micro-kernels under gemm_cpu.c, one set per instruction set, and the blocking
 * each wants (the driver reads it from the table; nothing else knows the sizes).
 * A micro-kernel updates one tile of C, rows x cols with rows <= mr, cols <= nr:
 *   C[r][j] = alpha * sum_{k<kc} A[r][k] * Bp[k][j] + (acc ? C[r][j] : 0)
 * A element (r,k) sits at a[r*rs + k*cs] (rows of a plain matrix: rs = lda, cs = 1; a packed
 * micro-panel: rs = 1, cs = mr). Bp is a packed panel: kc rows of nr floats (any alignment),
 * zero beyond the matrix's last column (the kernel always computes nr columns and stores cols).
 * Rows past `rows` are computed from row 0 again and never stored. Summation: k ascending.
 * Dimension legend: mr/nr rows/columns of a tile, kc inner indices of one block, nc columns of
 * the B block the driver packs (kc x nc, kept in L2 while the row tiles sweep it). */
#ifndef KUBEFIT_NN_GEMM_KERN_H
#define KUBEFIT_NN_GEMM_KERN_H

#include <stdbool.h>
#include <stddef.h>

typedef void nn_gemm_kernel_fn(int kc, const float *a, size_t rs, size_t cs, const float *bp,
                               float *c, size_t ldc, int rows, int cols, float alpha, bool acc);

/* dst(kc, nr) = the kc x cols block of op(B) starting at src (op(B) = B^T when trans: element
 * (k,j) at src[j*ldb + k], else src[k*ldb + j]), zero-filled past cols. */
typedef void nn_gemm_pack_fn(float *dst, const float *src, size_t ldb, bool trans, int kc,
                             int cols, int nr);

/* dst(kc, mr) = a transposed A's row tile: element (r,k) at src[k*lda + r] for r < rows, zero
 * for rows <= r < mr (a contiguous micro-panel: rs 1, cs mr). */
typedef void nn_gemm_pack_at_fn(float *dst, const float *src, size_t lda, int rows, int kc,
                                int mr);

struct nn_gemm_arch {
    const char *name; /* "avx512", "avx2", "c" */
    int mr, nr, kc, nc;
    nn_gemm_kernel_fn *kernel;
    nn_gemm_pack_fn *pack;       /* packs one panel of B */
    nn_gemm_pack_at_fn *pack_at; /* packs one row tile of a transposed A */
};

/* One product as the driver (gemm_cpu.c) hands it to a part: C = alpha op(A) op(B) + (beta_acc ?
 * C : 0) (C already scaled by beta), op(B) from B or, when packed is set, pre-packed. */
typedef struct nn_gemm_job {
    bool ta, tb, beta_acc;
    int M, N, K, lda, ldb, ldc;
    float alpha;
    const float *A, *B, *packed;
    float *C;
} nn_gemm_job;

/* 16 x 16 transpose of 32-bit elements (AVX-512; only where nn_gemm_kern_avx512 is usable):
 * row i of s (stride ls) becomes column i of d (stride ld). */
void nn_gemm_transpose16(float *d, size_t ld, const float *s, size_t ls);

/* The sets compiled in; nn_gemm_kern_usable says whether this CPU runs one. */
const struct nn_gemm_arch *nn_gemm_kern_avx512(void);
const struct nn_gemm_arch *nn_gemm_kern_avx2(void);
const struct nn_gemm_arch *nn_gemm_kern_c(void);
bool nn_gemm_kern_usable(const struct nn_gemm_arch *arch);

#endif
