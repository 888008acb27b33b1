/* gemm_kern: the micro-kernels and panel packing of gemm_cpu.c (see gemm_kern.h).
 * - avx512: 8 x 48 tiles (24 zmm accumulators, 3 loads of B and 8 broadcasts of A per 24 FMAs),
 *   kc 256 so that a B panel (48 KiB... 256 x 48 floats) and the A micro-panel stay near L1;
 *   the transposed pack moves 16 x 16 blocks through registers.
 * - avx2: 6 x 16 tiles (12 ymm accumulators), the classic Haswell shape.
 * - c: 4 x 16 tiles in plain C, for any other CPU.
 * Each vector set is compiled through a function attribute and picked at run time, so the build
 * keeps its default target and no fast-math. Dimension legend: see gemm_kern.h. */
#include "gemm_kern.h"

#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

/* ---- packing, plain C ---------------------------------------------------------------------- */

static void pack_c(float *dst, const float *src, size_t ldb, bool trans, int kc, int cols, int nr)
{
    if (!trans) {
        for (int k = 0; k < kc; k++) {
            memcpy(dst + (size_t)k * nr, src + (size_t)k * ldb, (size_t)cols * sizeof(float));
            memset(dst + (size_t)k * nr + cols, 0, (size_t)(nr - cols) * sizeof(float));
        }
        return;
    }
    for (int j = 0; j < cols; j++) {
        const float *s = src + (size_t)j * ldb;
        for (int k = 0; k < kc; k++)
            dst[(size_t)k * nr + j] = s[k];
    }
    for (int k = 0; k < kc && cols < nr; k++)
        memset(dst + (size_t)k * nr + cols, 0, (size_t)(nr - cols) * sizeof(float));
}

static void pack_at_c(float *dst, const float *src, size_t lda, int rows, int kc, int mr)
{
    for (int k = 0; k < kc; k++)
        for (int r = 0; r < mr; r++)
            dst[(size_t)k * mr + r] = r < rows ? src[(size_t)k * lda + r] : 0.0f;
}

/* ---- plain C kernel ------------------------------------------------------------------------ */

enum { C_MR = 4, C_NR = 16 };

static void kernel_c(int kc, const float *a, size_t rs, size_t cs, const float *bp, float *c,
                     size_t ldc, int rows, int cols, float alpha, bool acc)
{
    float t[C_MR][C_NR] = {{0}};
    for (int k = 0; k < kc; k++, bp += C_NR)
        for (int r = 0; r < C_MR; r++) {
            float x = a[(size_t)(r < rows ? r : 0) * rs + (size_t)k * cs];
            for (int j = 0; j < C_NR; j++)
                t[r][j] += x * bp[j];
        }
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < cols; j++) {
            float *d = c + (size_t)r * ldc + j;
            *d = acc ? *d + alpha * t[r][j] : alpha * t[r][j];
        }
}

static const struct nn_gemm_arch arch_c = {
    .name = "c", .mr = C_MR, .nr = C_NR, .kc = 256, .nc = 1024,
    .kernel = kernel_c, .pack = pack_c, .pack_at = pack_at_c};

const struct nn_gemm_arch *nn_gemm_kern_c(void) { return &arch_c; }

#if HAVE_X86

/* ---- AVX2 + FMA: 6 x 16 -------------------------------------------------------------------- */

#define T256 __attribute__((target("avx2,fma")))
#define VEC_W 8
#define vec __m256
#define VEC_ZERO() _mm256_setzero_ps()
#define VEC_LOAD(p) _mm256_loadu_ps(p)
#define VEC_LOADU(p) _mm256_loadu_ps(p)
#define VEC_STOREU(p, x) _mm256_storeu_ps(p, x)
#define VEC_SET1(x) _mm256_set1_ps(x)
#define VEC_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VEC_MUL(a, b) _mm256_mul_ps(a, b)
#define VEC_ADD(a, b) _mm256_add_ps(a, b)
#define TILE_TARGET T256
#define TILE_NAME kernel_avx2
#define TILE_MR 6
#define TILE_NV 2
#define TILE_PF 512
#include "gemm_tile.inc"
#undef TILE_NAME
#undef TILE_MR
#undef TILE_NV
#undef TILE_PF
#undef TILE_TARGET
#undef VEC_W
#undef vec
#undef VEC_ZERO
#undef VEC_LOAD
#undef VEC_LOADU
#undef VEC_STOREU
#undef VEC_SET1
#undef VEC_FMA
#undef VEC_MUL
#undef VEC_ADD

static const struct nn_gemm_arch arch_avx2 = {
    .name = "avx2", .mr = 6, .nr = 16, .kc = 256, .nc = 768,
    .kernel = kernel_avx2, .pack = pack_c, .pack_at = pack_at_c};

/* ---- AVX-512: 8 x 48 ----------------------------------------------------------------------- */

#define T512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,fma")))
#define VEC_W 16
#define vec __m512
#define VEC_ZERO() _mm512_setzero_ps()
#define VEC_LOAD(p) _mm512_loadu_ps(p)
#define VEC_LOADU(p) _mm512_loadu_ps(p)
#define VEC_STOREU(p, x) _mm512_storeu_ps(p, x)
#define VEC_SET1(x) _mm512_set1_ps(x)
#define VEC_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VEC_MUL(a, b) _mm512_mul_ps(a, b)
#define VEC_ADD(a, b) _mm512_add_ps(a, b)
#define TILE_TARGET T512
#define TILE_NAME kernel_avx512
#define TILE_MR 8
#define TILE_NV 3
#define TILE_PF 1536
#include "gemm_tile.inc"
#undef TILE_NAME
#undef TILE_MR
#undef TILE_NV
#undef TILE_PF
#undef TILE_TARGET

/* 16 x 16 transpose: row i of s (stride ld) becomes column i of d (stride nr). */
T512 void nn_gemm_transpose16(float *d, size_t nr, const float *s, size_t ld)
{
    __m512 r[16], u[16];
    for (int i = 0; i < 16; i++)
        r[i] = _mm512_loadu_ps(s + (size_t)i * ld);
    for (int g = 0; g < 16; g += 4) {
        /* rows g..g+3: lane L of u[g+c] holds column 4L+c of the four rows */
        __m512 t0 = _mm512_unpacklo_ps(r[g], r[g + 1]), t1 = _mm512_unpackhi_ps(r[g], r[g + 1]);
        __m512 t2 = _mm512_unpacklo_ps(r[g + 2], r[g + 3]),
               t3 = _mm512_unpackhi_ps(r[g + 2], r[g + 3]);
        u[g] = _mm512_shuffle_ps(t0, t2, 0x44), u[g + 1] = _mm512_shuffle_ps(t0, t2, 0xEE);
        u[g + 2] = _mm512_shuffle_ps(t1, t3, 0x44), u[g + 3] = _mm512_shuffle_ps(t1, t3, 0xEE);
    }
    for (int c = 0; c < 4; c++) { /* gather lane L of u[c], u[4+c], u[8+c], u[12+c] */
        __m512 v = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88),
               w = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xDD);
        __m512 v2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88),
               w2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xDD);
        _mm512_storeu_ps(d + (size_t)c * nr, _mm512_shuffle_f32x4(v, v2, 0x88));
        _mm512_storeu_ps(d + (size_t)(8 + c) * nr, _mm512_shuffle_f32x4(v, v2, 0xDD));
        _mm512_storeu_ps(d + (size_t)(4 + c) * nr, _mm512_shuffle_f32x4(w, w2, 0x88));
        _mm512_storeu_ps(d + (size_t)(12 + c) * nr, _mm512_shuffle_f32x4(w, w2, 0xDD));
    }
}

T512 static void pack_avx512(float *dst, const float *src, size_t ldb, bool trans, int kc,
                             int cols, int nr)
{
    if (!trans && nr == 48) { /* rows of 48: three masked loads (zero past cols) and stores */
        __mmask16 m[3];
        for (int v = 0; v < 3; v++) {
            int n = cols - 16 * v;
            m[v] = n >= 16 ? 0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
        }
        for (int k = 0; k < kc; k++, dst += 48, src += ldb)
            for (int v = 0; v < 3; v++)
                _mm512_storeu_ps(dst + 16 * v, _mm512_maskz_loadu_ps(m[v], src + 16 * v));
        return;
    }
    if (!trans || cols < nr) {
        pack_c(dst, src, ldb, trans, kc, cols, nr);
        return;
    }
    int k = 0;
    for (; k + 16 <= kc; k += 16)
        for (int j = 0; j < nr; j += 16)
            nn_gemm_transpose16(dst + (size_t)k * nr + j, (size_t)nr, src + (size_t)j * ldb + k,
                                ldb);
    for (; k < kc; k++)
        for (int j = 0; j < nr; j++)
            dst[(size_t)k * nr + j] = src[(size_t)j * ldb + k];
}

T512 static void pack_at_avx512(float *dst, const float *src, size_t lda, int rows, int kc,
                                int mr)
{
    if (mr != 8) {
        pack_at_c(dst, src, lda, rows, kc, mr);
        return;
    }
    __mmask8 m = rows >= 8 ? 0xff : (__mmask8)((1u << rows) - 1);
    for (int k = 0; k < kc; k++, dst += 8, src += lda)
        _mm256_storeu_ps(dst, _mm256_maskz_loadu_ps(m, src));
}

#undef VEC_W
#undef vec

static const struct nn_gemm_arch arch_avx512 = {
    .name = "avx512", .mr = 8, .nr = 48, .kc = 256, .nc = 1536,
    .kernel = kernel_avx512, .pack = pack_avx512, .pack_at = pack_at_avx512};

const struct nn_gemm_arch *nn_gemm_kern_avx512(void) { return &arch_avx512; }
const struct nn_gemm_arch *nn_gemm_kern_avx2(void) { return &arch_avx2; }

bool nn_gemm_kern_usable(const struct nn_gemm_arch *arch)
{
    __builtin_cpu_init();
    if (arch == &arch_avx512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw");
    if (arch == &arch_avx2)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return arch == &arch_c;
}

#else

const struct nn_gemm_arch *nn_gemm_kern_avx512(void) { return NULL; }
const struct nn_gemm_arch *nn_gemm_kern_avx2(void) { return NULL; }
bool nn_gemm_kern_usable(const struct nn_gemm_arch *arch) { return arch == &arch_c; }

#endif
