/* gemm_cpu: C(M,N) = A(M,K) P(K,N) + beta C with P packed once (see gemm_cpu.h).
 * Packed layout: blocks of KC inner indices, each a run of column panels of NR, so one block
 * is read front to back: P[k][p*NR + j] sits at k0*Np + p*kc*NR + (k-k0)*NR + j where k0 is
 * the block start, kc its length and Np = N rounded up to NR; zero beyond N.
 * A micro-kernel computes an MR x NR tile of C over a block of KC inner indices, keeping the
 * tile in registers (AVX2+FMA when the CPU has it, plain C otherwise - chosen once at
 * run time, so the binary stays portable).
 * Dimension legend: M rows (batch), K inner, N columns. */
#include "gemm_cpu.h"

#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

#define NR 24  /* columns of a tile: 3 AVX registers */
#define MR 4   /* rows of a tile: 4 x 3 = 12 accumulators */
#define KC 512 /* inner block: a panel block (KC x NR, 48 KiB) stays in L2 across the row tiles */

size_t nn_gemm_packed_floats(int K, int N) { return (size_t)((N + NR - 1) / NR) * NR * (size_t)K; }

typedef struct pack_args {
    float *packed;
    const float *B;
    int ldb, K, N;
    bool trans;
} pack_args;

static void pack_range(void *v, size_t lo, size_t hi)
{
    pack_args *g = v;
    size_t ldb = (size_t)g->ldb, Np = (size_t)(g->N + NR - 1) / NR * NR;
    for (size_t p = lo; p < hi; p++) {
        int n0 = (int)p * NR, cols = g->N - n0 < NR ? g->N - n0 : NR;
        for (int k0 = 0; k0 < g->K; k0 += KC) {
            size_t kc = (size_t)(g->K - k0 < KC ? g->K - k0 : KC);
            float *dst = g->packed + (size_t)k0 * Np + p * kc * NR;
            if (!g->trans) { /* B (K,N): NR consecutive floats of each row */
                for (size_t k = 0; k < kc; k++) {
                    memcpy(dst + k * NR, g->B + (k0 + k) * ldb + n0, (size_t)cols * sizeof(float));
                    for (int j = cols; j < NR; j++)
                        dst[k * NR + j] = 0.0f;
                }
            } else { /* B (N,K): column j of the panel is row n0+j of B */
                for (int j = 0; j < NR; j++) {
                    const float *src = g->B + (size_t)(n0 + j) * ldb + k0;
                    for (size_t k = 0; k < kc; k++)
                        dst[k * NR + j] = j < cols ? src[k] : 0.0f;
                }
            }
        }
    }
}

void nn_gemm_pack_b(nn_pool *pool, float *packed, const float *B, int ldb, bool trans_b, int K,
                    int N)
{
    pack_args g = {.packed = packed, .B = B, .ldb = ldb, .K = K, .N = N, .trans = trans_b};
    nn_pool_run(pool, (size_t)(N + NR - 1) / NR, 4, pack_range, &g);
}

/* Writes (acc: adds) the rows x cols corner of tile t (MR,NR) into C. */
static void store_tile(const float *t, float *c, size_t ldc, int rows, int cols, bool acc)
{
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < cols; j++)
            c[r * ldc + j] = acc ? c[r * ldc + j] + t[r * NR + j] : t[r * NR + j];
}

/* Tile of C (rows <= MR, cols <= NR) from kc inner indices: A rows a (lda), panel block bp. */
typedef void kernel_fn(int kc, const float *a, size_t lda, const float *bp, float *c, size_t ldc,
                       int rows, int cols, bool acc);

static void kernel_c(int kc, const float *a, size_t lda, const float *bp, float *c, size_t ldc,
                     int rows, int cols, bool acc)
{
    float t[MR * NR] = {0};
    for (int r = 0; r < rows; r++)
        for (int k = 0; k < kc; k++) {
            float x = a[r * lda + k];
            for (int j = 0; j < NR; j++)
                t[r * NR + j] += x * bp[k * NR + j];
        }
    store_tile(t, c, ldc, rows, cols, acc);
}

#if HAVE_X86
__attribute__((target("avx2,fma"))) static void kernel_avx2(int kc, const float *a, size_t lda,
                                                            const float *bp, float *c, size_t ldc,
                                                            int rows, int cols, bool acc)
{
    /* Missing rows read row 0 again and are not stored. */
    const float *a0 = a, *a1 = a + (rows > 1 ? lda : 0), *a2 = a + (rows > 2 ? 2 * lda : 0),
                *a3 = a + (rows > 3 ? 3 * lda : 0);
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00,
           c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00;
    for (int k = 0; k < kc; k++, bp += NR) {
        __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8),
               b2 = _mm256_loadu_ps(bp + 16), x;
        x = _mm256_broadcast_ss(a0 + k);
        c00 = _mm256_fmadd_ps(x, b0, c00), c01 = _mm256_fmadd_ps(x, b1, c01),
        c02 = _mm256_fmadd_ps(x, b2, c02);
        x = _mm256_broadcast_ss(a1 + k);
        c10 = _mm256_fmadd_ps(x, b0, c10), c11 = _mm256_fmadd_ps(x, b1, c11),
        c12 = _mm256_fmadd_ps(x, b2, c12);
        x = _mm256_broadcast_ss(a2 + k);
        c20 = _mm256_fmadd_ps(x, b0, c20), c21 = _mm256_fmadd_ps(x, b1, c21),
        c22 = _mm256_fmadd_ps(x, b2, c22);
        x = _mm256_broadcast_ss(a3 + k);
        c30 = _mm256_fmadd_ps(x, b0, c30), c31 = _mm256_fmadd_ps(x, b1, c31),
        c32 = _mm256_fmadd_ps(x, b2, c32);
    }
    __m256 acc_regs[MR][3] = {{c00, c01, c02}, {c10, c11, c12}, {c20, c21, c22}, {c30, c31, c32}};
    if (rows == MR && cols == NR) {
        for (int r = 0; r < MR; r++)
            for (int q = 0; q < 3; q++) {
                float *dst = c + r * ldc + 8 * q;
                __m256 v = acc_regs[r][q];
                if (acc)
                    v = _mm256_add_ps(_mm256_loadu_ps(dst), v);
                _mm256_storeu_ps(dst, v);
            }
        return;
    }
    float t[MR * NR];
    for (int r = 0; r < MR; r++)
        for (int q = 0; q < 3; q++)
            _mm256_storeu_ps(t + r * NR + 8 * q, acc_regs[r][q]);
    store_tile(t, c, ldc, rows, cols, acc);
}
#endif

static kernel_fn *pick_kernel(void)
{
#if HAVE_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return kernel_avx2;
#endif
    return kernel_c;
}

typedef struct gemm_args {
    kernel_fn *kern;
    int M, N, K, lda, ldc;
    const float *A, *packed;
    float *C;
    bool beta1;
} gemm_args;

/* Panels [lo,hi): inner blocks outer, so the A block (M x KC) is reused by every panel. */
static void gemm_range(void *v, size_t lo, size_t hi)
{
    gemm_args *g = v;
    size_t lda = (size_t)g->lda, ldc = (size_t)g->ldc, Np = (size_t)(g->N + NR - 1) / NR * NR;
    for (int k0 = 0; k0 < g->K; k0 += KC) {
        int kc = g->K - k0 < KC ? g->K - k0 : KC;
        bool acc = k0 > 0 || g->beta1;
        for (size_t p = lo; p < hi; p++) {
            const float *bp = g->packed + (size_t)k0 * Np + p * (size_t)kc * NR;
            int n0 = (int)p * NR, cols = g->N - n0 < NR ? g->N - n0 : NR;
            for (int r0 = 0; r0 < g->M; r0 += MR)
                g->kern(kc, g->A + r0 * lda + k0, lda, bp, g->C + r0 * ldc + n0, ldc,
                        g->M - r0 < MR ? g->M - r0 : MR, cols, acc);
        }
    }
}

void nn_gemm_packed(nn_pool *pool, int M, int N, int K, const float *A, int lda,
                    const float *packed, float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0)
        return;
    if (beta != 0.0f && beta != 1.0f)
        for (int r = 0; r < M; r++)
            for (int j = 0; j < N; j++)
                C[(size_t)r * ldc + j] *= beta;
    if (K <= 0) {
        if (beta == 0.0f)
            for (int r = 0; r < M; r++)
                memset(C + (size_t)r * ldc, 0, (size_t)N * sizeof(float));
        return;
    }
    gemm_args g = {.kern = pick_kernel(), /* a cached CPU feature test: cheap per call */ .M = M, .N = N, .K = K, .lda = lda, .ldc = ldc, .A = A,
                   .packed = packed, .C = C, .beta1 = beta != 0.0f};
    nn_pool_run(pool, (size_t)(N + NR - 1) / NR, 4, gemm_range, &g);
}
