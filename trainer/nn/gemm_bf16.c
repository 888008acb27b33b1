/* gemm_bf16: BF16 products on AMX (see gemm_bf16.h). One part: for each block of kc inner
 * indices, op(A)'s rows - all of the part's when the workspace allows (gemm_cpu.c sizes it),
 * else blocks of them - are rounded into bf16 rows once; then for each block of nc columns op(B)
 * is packed into 16-column pair panels (512 KiB, kept in L2), and every 32 x 32 C block runs
 * kc/32 steps of 4 TDPBF16PS (rows 0-15/16-31 x columns 0-15/16-31) before its four tiles are
 * stored to a scratch tile and added into C. Row strips outer, column blocks inner: a 32-row A
 * strip (32 x kc bf16, 32 KiB) stays in L1 while the B panels stream from L2. (Packing B for all
 * columns at once instead streams B from L3 at AMX's rate: measured 20-40% slower.) Conversion
 * to bf16 uses VCVTNE2PS2BF16 (round to nearest even, as PyTorch and cuBLAS round).
 * Each part loads the tile configuration itself (it is per thread) and releases it at the end.
 * Dimension legend: M rows, K inner, N columns; mc/kc/nc blocks; kcp kc rounded up to 32. */
#include "gemm_bf16.h"

#include <stdint.h>
#include <string.h>

/* GCC 11+ (AMX intrinsics and __builtin_cpu_supports("amx-bf16")); elsewhere the mode reports
 * itself unsupported and the products stay float32. */
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__) &&       \
    __GNUC__ >= 11
#define HAVE_AMX 1
#include <immintrin.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>
#else
#define HAVE_AMX 0
#endif

enum { KC = 512, NC = 512 };

/* nc: the B block (kc x nc bf16, 512 KiB: kept in L2). */
const struct nn_gemm_arch nn_gemm_bf16_arch = {
    .name = "amx-bf16", .mr = 32, .nr = 32, .kc = KC, .nc = NC, .kernel = NULL, .pack = NULL};

static int round32(int x) { return (x + 31) / 32 * 32; }

size_t nn_gemm_bf16_ws_floats(int mc)
{
    /* A block (mc x KC bf16), B block (KC x NC bf16), four scratch tiles (4 x 256 floats) */
    return ((size_t)round32(mc) * KC + (size_t)KC * NC) / 2 + 4 * 256;
}

size_t nn_gemm_bf16_packed_floats(int K, int N)
{
    return (size_t)round32(K) * (size_t)round32(N) / 2;
}

#if HAVE_AMX

#define TBF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,amx-tile,amx-bf16")))

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

static bool amx_ok;
static pthread_once_t amx_once = PTHREAD_ONCE_INIT;

static void amx_probe(void)
{
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("amx-bf16") || !__builtin_cpu_supports("amx-tile") ||
        !__builtin_cpu_supports("avx512bf16") || !__builtin_cpu_supports("avx512bw"))
        return;
    /* Linux 5.16+: a process must ask before it touches the tile data state. */
    amx_ok = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}

bool nn_gemm_bf16_ready(void)
{
    pthread_once(&amx_once, amx_probe);
    return amx_ok;
}

typedef struct tile_cfg {
    uint8_t palette, start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_cfg;

TBF16 static void tiles_on(void)
{
    tile_cfg c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int t = 0; t < 8; t++) /* 0-3 C (16 x 16 float32), 4-5 A, 6-7 B (16 x 32 bf16) */
        c.rows[t] = 16, c.colsb[t] = 64;
    _tile_loadconfig(&c);
}

/* 16 floats at p, the first n of them (others 0). */
TBF16 static inline __m512 load16(const float *p, int n)
{
    return n >= 16 ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p);
}

/* 32 bf16 of (lo, hi) in order: lo's 16 then hi's 16. */
TBF16 static inline __m512i to_bf16(__m512 lo, __m512 hi)
{
    return (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
}

/* dst(rows, kcp) bf16 = op(A) rows [r0, r0+rows) x inner [k0, k0+kc), zero beyond (to mcp rows,
 * kcp columns). */
TBF16 static void pack_a(uint16_t *dst, const nn_gemm_job *j, int r0, int rows, int mcp, int k0,
                         int kc, int kcp)
{
    size_t lda = (size_t)j->lda;
    if (!j->ta) {
        for (int r = 0; r < mcp; r++) {
            uint16_t *d = dst + (size_t)r * kcp;
            const float *s = j->A + (size_t)(r0 + r) * lda + k0;
            for (int k = 0; k < kcp; k += 32) {
                __m512i v = _mm512_setzero_si512();
                int hi = kc - k - 16 > 0 ? kc - k - 16 : 0;
                if (r < rows && k < kc)
                    v = to_bf16(load16(s + k, kc - k), load16(s + k + 16, hi));
                _mm512_storeu_si512(d + k, v);
            }
        }
        return;
    }
    /* A stored (K,M): 16 x 16 float blocks turned (rows = r) through a scratch, then rounded */
    float t[16 * 16], u[16 * 16];
    for (int r = 0; r < mcp; r += 16)
        for (int k = 0; k < kcp; k += 16) {
            int nr = rows - r < 16 ? (rows - r > 0 ? rows - r : 0) : 16;
            int nk = kc - k < 16 ? (kc - k > 0 ? kc - k : 0) : 16;
            for (int i = 0; i < 16; i++) { /* t[i] = A row k0+k+i, columns r0+r.. */
                __m512 v = _mm512_setzero_ps();
                if (i < nk && nr > 0)
                    v = load16(j->A + (size_t)(k0 + k + i) * lda + r0 + r, nr);
                _mm512_storeu_ps(t + 16 * i, v);
            }
            nn_gemm_transpose16(u, 16, t, 16); /* u[r'][k'] */
            for (int i = 0; i < 16; i++) {
                __m256i h = (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(u + 16 * i));
                _mm256_storeu_si256((__m256i *)(dst + (size_t)(r + i) * kcp + k), h);
            }
        }
}

/* One 16-column panel (cols <= 16 of them, from column c0) of op(B) over inner [k0, k0+kc):
 * dst[kp][n][2] = (B(k0+2kp, n), B(k0+2kp+1, n)), zero beyond, kcp/2 rows of 64 bytes. */
TBF16 static void pack_b_panel(uint16_t *dst, const nn_gemm_job *j, const float *B, int c0,
                               int cols, int k0, int kc, int kcp)
{
    size_t ldb = (size_t)j->ldb;
    if (!j->tb) { /* B (K,N): rows k and k+1, interleaved by halves */
        const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25,
                                             9, 24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2,
                                             17, 1, 16, 0);
        for (int k = 0; k < kcp; k += 2) {
            __m512 a = _mm512_setzero_ps(), b = _mm512_setzero_ps();
            if (k < kc && cols > 0)
                a = load16(B + (size_t)(k0 + k) * ldb + c0, cols);
            if (k + 1 < kc && cols > 0)
                b = load16(B + (size_t)(k0 + k + 1) * ldb + c0, cols);
            _mm512_storeu_si512(dst + (size_t)k * 16, _mm512_permutexvar_epi16(idx, to_bf16(a, b)));
        }
        return;
    }
    /* B (N,K): row n holds column n of op(B), its (k, k+1) pairs adjacent: round 32 inner values
     * of each of the 16 rows into 16 pairs, then transpose the 16 x 16 pairs */
    float t[16 * 16];
    for (int k = 0; k < kcp; k += 32) {
        int nk = kc - k < 32 ? (kc - k > 0 ? kc - k : 0) : 32;
        for (int n = 0; n < 16; n++) {
            __m512i v = _mm512_setzero_si512();
            if (n < cols && nk > 0) {
                const float *s = B + (size_t)(c0 + n) * ldb + k0 + k;
                v = to_bf16(load16(s, nk), load16(s + 16, nk - 16 > 0 ? nk - 16 : 0));
            }
            _mm512_storeu_si512(t + 16 * n, v);
        }
        nn_gemm_transpose16((float *)(dst + (size_t)k * 16), 16, t, 16);
    }
}

/* C rows [r, r+rows) x cols [c, c+cols) (+)= alpha * the 32 x 32 block in tiles 0-3. */
TBF16 static void store_block(const nn_gemm_job *j, float *scratch, int r, int rows, int c,
                              int cols, bool acc)
{
    _tile_stored(0, scratch, 64);
    _tile_stored(1, scratch + 256, 64);
    _tile_stored(2, scratch + 512, 64);
    _tile_stored(3, scratch + 768, 64);
    __m512 al = _mm512_set1_ps(j->alpha);
    for (int i = 0; i < rows; i++) {
        float *dst = j->C + (size_t)(r + i) * j->ldc + c;
        const float *t = scratch + (i < 16 ? 0 : 512) + 16 * (i % 16);
        for (int h = 0; h < 2; h++) { /* columns 0-15 (tiles 0/2), 16-31 (tiles 1/3) */
            int n = cols - 16 * h;
            if (n <= 0)
                break;
            __mmask16 m = n >= 16 ? 0xffff : (__mmask16)((1u << n) - 1);
            __m512 x = _mm512_mul_ps(_mm512_loadu_ps(t + 256 * h), al);
            if (acc)
                x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, dst + 16 * h));
            _mm512_mask_storeu_ps(dst + 16 * h, m, x);
        }
    }
}

/* C block (rows x cols at r, c) from the A strip a (32 rows, stride kcp) and the panel pair b
 * (two 16-column panels of kcp/2 x 64 bytes, pstride halves apart). */
TBF16 static void block(const nn_gemm_job *j, float *scratch, const uint16_t *a, size_t kcp,
                        const uint16_t *b, size_t pstride, int r, int rows, int c, int cols,
                        bool acc)
{
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (size_t k = 0; k < kcp; k += 32) {
        _tile_loadd(4, a + k, kcp * 2);
        _tile_loadd(5, a + 16 * kcp + k, kcp * 2);
        _tile_loadd(6, b + k * 16, 64);
        _tile_loadd(7, b + pstride + k * 16, 64);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    store_block(j, scratch, r, rows, c, cols, acc);
}

TBF16 void nn_gemm_bf16_part(const nn_gemm_job *j, float *ws, int mc_max, int r0, int r1, int n0,
                             int n1)
{
    uint16_t *abuf = (uint16_t *)ws, *bbuf = abuf + (size_t)round32(mc_max) * KC;
    float *scratch = (float *)(bbuf + (size_t)KC * NC);
    size_t Np = (size_t)round32(j->N);
    tiles_on();
    for (int pc = 0; pc < j->K; pc += KC) {
        int kc = j->K - pc < KC ? j->K - pc : KC, kcp = round32(kc);
        bool acc = pc > 0 || j->beta_acc;
        size_t pstride = (size_t)kcp * 16; /* halves between two 16-column panels */
        for (int ic = r0; ic < r1; ic += mc_max) {
            int mc = r1 - ic < mc_max ? r1 - ic : mc_max, mcp = round32(mc);
            pack_a(abuf, j, ic, mc, mcp, pc, kc, kcp);
            for (int jc = n0; jc < n1; jc += NC) {
                int nc = n1 - jc < NC ? n1 - jc : NC, ncp = round32(nc);
                const uint16_t *bblk = bbuf;
                if (j->packed) { /* the pre-packed block: column jc is panel jc/16 */
                    bblk = (const uint16_t *)j->packed + (size_t)pc * Np +
                           (size_t)(jc / 16) * pstride;
                } else {
                    for (int q = 0; q * 16 < ncp; q++) {
                        int cols = nc - 16 * q < 16 ? nc - 16 * q : 16;
                        pack_b_panel(bbuf + (size_t)q * pstride, j, j->B, jc + 16 * q, cols, pc, kc,
                                     kcp);
                    }
                }
                for (int ib = 0; ib < mcp; ib += 32)
                    for (int jb = 0; jb < ncp; jb += 32) {
                        int rows = mc - ib < 32 ? mc - ib : 32, cols = nc - jb < 32 ? nc - jb : 32;
                        block(j, scratch, abuf + (size_t)ib * kcp, (size_t)kcp,
                              bblk + (size_t)(jb / 16) * pstride, pstride, ic + ib, rows,
                              jc + jb, cols, acc);
                    }
            }
        }
    }
    _tile_release();
}

TBF16 void nn_gemm_bf16_pack(float *packed, const float *B, int ldb, bool trans_b, int K, int N,
                             int q0, int q1)
{
    nn_gemm_job j = {.tb = trans_b, .ldb = ldb, .K = K, .N = N};
    size_t Np = (size_t)round32(N);
    uint16_t *P = (uint16_t *)packed;
    for (int pc = 0; pc < K; pc += KC) {
        int kc = K - pc < KC ? K - pc : KC, kcp = round32(kc);
        for (int q = q0; q < q1; q++) {
            int cols = N - 16 * q < 16 ? (N - 16 * q > 0 ? N - 16 * q : 0) : 16;
            pack_b_panel(P + (size_t)pc * Np + (size_t)q * kcp * 16, &j, B, 16 * q, cols, pc, kc,
                         kcp);
        }
    }
}

#else

bool nn_gemm_bf16_ready(void) { return false; }

void nn_gemm_bf16_part(const nn_gemm_job *j, float *ws, int mc, int r0, int r1, int n0, int n1)
{
    (void)j, (void)ws, (void)mc, (void)r0, (void)r1, (void)n0, (void)n1;
}

void nn_gemm_bf16_pack(float *packed, const float *B, int ldb, bool trans_b, int K, int N, int q0,
                       int q1)
{
    (void)packed, (void)B, (void)ldb, (void)trans_b, (void)K, (void)N, (void)q0, (void)q1;
}

#endif
