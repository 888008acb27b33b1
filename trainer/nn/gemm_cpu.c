/* gemm_cpu: the blocked product driver (see gemm_cpu.h; the kernels are in gemm_kern.c).
 * C is cut into a grid of tm x tn parts, one per thread (pick_grid weighs the tiles a part
 * computes against the packing it repeats). A part walks its columns in blocks of nc and the
 * inner dimension in blocks of kc: it packs op(B)'s kc x nc block into panels of nr columns
 * (the block stays in L2), then for each row tile of mr rows runs the micro-kernel across the
 * panels, so the tile's A micro-panel (kc x mr) stays in L1 and C is swept along its rows.
 * A is read in place (mr row pointers) unless transposed; a transposed A's tile is first copied
 * into a contiguous micro-panel. Measured on the LM's shapes (bench/trainer-step/bench_gemm):
 * this order beat panel-outer with packed A blocks by 10-20% on a Sapphire Rapids core.
 * Pre-packed layout (nn_gemm_pack): blocks of kc inner indices, each a run of column panels, so
 * one block is read front to back: P[k][q*nr + j] sits at k0*Np + q*kc*nr + (k-k0)*nr + j where
 * k0 is the block start, kc its length and Np = N rounded up to nr; zero beyond N.
 * Dimension legend: M rows, K inner, N columns; mr x nr a tile, mt/np tiles/panels of C. */
#include "gemm_cpu.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "gemm_bf16.h"
#include "gemm_kern.h"

/* Products smaller than this many multiply-adds per part are not worth waking a worker for. */
#define MIN_MACS_PER_PART (1 << 20)
/* The most rows of A a bf16 part rounds at once (x kc bf16: 8 MiB); all of them (the usual
 * case) means each row is rounded once per inner block instead of once per column block. */
#define BF16_MC_MAX 8192
/* The A block of a bf16 part when memory is short. */
#define BF16_MC_MIN 128

const nn_gemm_arch *nn_gemm_arch_best(void)
{
    const nn_gemm_arch *order[] = {nn_gemm_kern_avx512(), nn_gemm_kern_avx2()};
    for (size_t i = 0; i < sizeof order / sizeof *order; i++)
        if (order[i] && nn_gemm_kern_usable(order[i]))
            return order[i];
    return nn_gemm_kern_c();
}

const nn_gemm_arch *nn_gemm_arch_named(const char *name)
{
    const nn_gemm_arch *all[] = {nn_gemm_kern_avx512(), nn_gemm_kern_avx2(), nn_gemm_kern_c()};
    for (size_t i = 0; name && i < sizeof all / sizeof *all; i++)
        if (all[i] && !strcmp(all[i]->name, name))
            return nn_gemm_kern_usable(all[i]) ? all[i] : NULL;
    return NULL;
}

const char *nn_gemm_arch_name(const nn_gemm_arch *arch) { return arch->name; }

struct nn_gemm {
    nn_pool *pool;
    const nn_gemm_arch *arch;
    bool bf16;    /* products on bfloat16 operands (gemm_bf16.c) */
    int threads;
    float **ws;   /* per part: fp32, an A tile (mr*kc floats) then a B block (kc*nc); bf16, see
                   * gemm_bf16.c; 64-byte aligned, ws_size floats each */
    size_t ws_size;
    int ws_count; /* buffers allocated so far (grown on demand, >= 1) */
};

static size_t ws_floats(const nn_gemm *g)
{
    const nn_gemm_arch *a = g->arch;
    size_t fp32 = (size_t)a->mr * a->kc + (size_t)a->kc * a->nc;
    size_t bf16 = g->bf16 ? nn_gemm_bf16_ws_floats(BF16_MC_MIN) : 0;
    return fp32 > bf16 ? fp32 : bf16;
}

/* Makes buffers for up to `parts` parts; returns how many exist (>= 1). */
static int ws_ensure(nn_gemm *g, int parts)
{
    if (g->ws_size < ws_floats(g)) { /* the mode changed: larger buffers */
        for (int i = 0; i < g->ws_count; i++)
            free(g->ws[i]);
        g->ws_count = 0, g->ws_size = ws_floats(g);
    }
    size_t bytes = g->ws_size * sizeof(float);
    while (g->ws_count < parts && g->ws_count < g->threads) {
        float *p = aligned_alloc(64, bytes);
        if (!p)
            break; /* fewer parts then: slower, still right */
        g->ws[g->ws_count++] = p;
    }
    return g->ws_count;
}

/* Grows every buffer to `floats` (contents not kept); false (buffers unchanged) when memory is
 * short. */
static bool ws_grow(nn_gemm *g, size_t floats)
{
    if (floats <= g->ws_size)
        return true;
    float **fresh = calloc((size_t)g->ws_count, sizeof *fresh);
    int n = 0;
    for (; fresh && n < g->ws_count; n++)
        if (!(fresh[n] = aligned_alloc(64, (floats * sizeof(float) + 63) / 64 * 64)))
            break;
    bool ok = fresh && n == g->ws_count;
    for (int i = 0; i < n; i++) {
        float *drop = ok ? g->ws[i] : fresh[i];
        if (ok)
            g->ws[i] = fresh[i];
        free(drop);
    }
    if (ok)
        g->ws_size = floats;
    free(fresh);
    return ok;
}

int nn_gemm_new(nn_gemm **out, nn_pool *pool, const nn_gemm_arch *arch)
{
    *out = NULL;
    nn_gemm *g = calloc(1, sizeof *g);
    int threads = nn_pool_threads(pool);
    if (!g || !(g->ws = calloc((size_t)threads, sizeof *g->ws))) {
        free(g);
        return err_set(KF_ENOMEM, "nn: out of memory for the matrix product buffers");
    }
    g->pool = pool, g->arch = arch ? arch : nn_gemm_arch_best(), g->threads = threads;
    if (ws_ensure(g, 1) < 1) {
        nn_gemm_free(g);
        return err_set(KF_ENOMEM, "nn: out of memory for the matrix product buffers");
    }
    *out = g;
    return 0;
}

void nn_gemm_free(nn_gemm *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->ws_count; i++)
        free(g->ws[i]);
    free(g->ws);
    free(g);
}

const nn_gemm_arch *nn_gemm_arch_of(const nn_gemm *g) { return g->arch; }

int nn_gemm_set_bf16(nn_gemm *g, bool on)
{
    if (on && !nn_gemm_bf16_ready())
        return err_set(KF_EUNSUPPORTED, "nn: bf16 products need AMX-BF16 (this CPU or kernel "
                                        "does not offer it)");
    g->bf16 = on;
    if (ws_ensure(g, 1) < 1) {
        g->bf16 = false;
        ws_ensure(g, 1);
        return err_set(KF_ENOMEM, "nn: out of memory for the matrix product buffers");
    }
    return 0;
}

const char *nn_gemm_name(const nn_gemm *g)
{
    return g->bf16 ? nn_gemm_bf16_arch.name : g->arch->name;
}

/* The blocking the product is cut by: the micro-kernel set's, or the bf16 path's. */
static const nn_gemm_arch *blocking(const nn_gemm *g)
{
    return g->bf16 ? &nn_gemm_bf16_arch : g->arch;
}

/* ---- the grid of parts ------------------------------------------------------------------ */

typedef struct grid {
    int tm, tn; /* parts along rows and columns */
    int mt, np; /* row tiles and column panels of C */
} grid;

/* At most `threads` parts, fewer for small products. A part's cost: its tiles' multiply-adds
 * plus what it packs or streams again because another part has the same rows (A) or columns
 * (B) - weighted as 16 multiply-adds per float moved. */
static grid pick_grid(const nn_gemm_arch *a, int threads, int M, int N, int K)
{
    grid best = {1, 1, (M + a->mr - 1) / a->mr, (N + a->nr - 1) / a->nr};
    double macs = (double)M * N * K;
    int maxp = threads;
    if (macs / MIN_MACS_PER_PART < maxp)
        maxp = macs < MIN_MACS_PER_PART ? 1 : (int)(macs / MIN_MACS_PER_PART);
    double best_cost = -1;
    for (int tn = 1; tn <= maxp && tn <= best.np; tn++)
        for (int tm = 1; tm * tn <= maxp && tm <= best.mt; tm++) {
            double rows = (double)((best.mt + tm - 1) / tm) * a->mr;
            double cols = (double)((best.np + tn - 1) / tn) * a->nr;
            double cost = rows * cols + 16.0 * (rows + cols);
            if (best_cost < 0 || cost < best_cost - 1e-9 ||
                (cost < best_cost + 1e-9 && tm * tn < best.tm * best.tn)) {
                best_cost = cost;
                best.tm = tm, best.tn = tn;
            }
        }
    return best;
}

/* Part k's rows [*r0,*r1) and columns [*n0,*n1) of C (M x N). */
static void part_range(const grid *gr, const nn_gemm_arch *a, int M, int N, int k, int *r0,
                       int *r1, int *n0, int *n1)
{
    int im = k / gr->tn, in = k % gr->tn;
    *r0 = (int)((long long)gr->mt * im / gr->tm) * a->mr;
    *r1 = (int)((long long)gr->mt * (im + 1) / gr->tm) * a->mr;
    *n0 = (int)((long long)gr->np * in / gr->tn) * a->nr;
    *n1 = (int)((long long)gr->np * (in + 1) / gr->tn) * a->nr;
    *r1 = *r1 < M ? *r1 : M;
    *n1 = *n1 < N ? *n1 : N;
}

/* ---- the general product ---------------------------------------------------------------- */

typedef struct run_job {
    nn_gemm_job p; /* the product */
    const nn_gemm_arch *arch;
    float **ws;
    grid gr;
    bool bf16;
    int bf16_mc; /* rows of A a bf16 part rounds at once */
} run_job;

/* One part: for each block of nc columns and kc inner indices, pack op(B)'s block (kept in L2),
 * then for each row tile (its A micro-panel stays in L1) run over the panels. */
static void run_part(const run_job *rj, int part)
{
    const nn_gemm_arch *a = rj->arch;
    const nn_gemm_job *j = &rj->p;
    int r0, r1, n0, n1, mr = a->mr, nr = a->nr;
    part_range(&rj->gr, a, j->M, j->N, part, &r0, &r1, &n0, &n1);
    if (rj->bf16) {
        nn_gemm_bf16_part(j, rj->ws[part], rj->bf16_mc, r0, r1, n0, n1);
        return;
    }
    float *abuf = rj->ws[part], *bbuf = abuf + (size_t)a->mr * a->kc;
    size_t lda = (size_t)j->lda, ldb = (size_t)j->ldb, ldc = (size_t)j->ldc;
    for (int jc = n0; jc < n1; jc += a->nc) {
        int nc = n1 - jc < a->nc ? n1 - jc : a->nc, npan = (nc + nr - 1) / nr;
        for (int pc = 0; pc < j->K; pc += a->kc) {
            int kc = j->K - pc < a->kc ? j->K - pc : a->kc;
            bool acc = pc > 0 || j->beta_acc;
            for (int q = 0; q < npan; q++) {
                int cols = nc - q * nr < nr ? nc - q * nr : nr, c0 = jc + q * nr;
                const float *src = j->tb ? j->B + (size_t)c0 * ldb + pc : j->B + pc * ldb + c0;
                a->pack(bbuf + (size_t)q * kc * nr, src, ldb, j->tb, kc, cols, nr);
            }
            for (int ir = r0; ir < r1; ir += mr) {
                int rows = r1 - ir < mr ? r1 - ir : mr;
                const float *ap = j->A + ir * lda + pc; /* A's rows in place, or ... */
                size_t rs = lda, cs = 1;
                if (j->ta) { /* ... op(A) = A^T's tile copied together: kc short runs (mr
                              * floats adjacent in A for each k) into one contiguous micro-panel,
                              * L1-friendly, and a last partial tile read in place would run past
                              * the end of A */
                    a->pack_at(abuf, j->A + (size_t)pc * lda + ir, lda, rows, kc, mr);
                    ap = abuf, rs = 1, cs = (size_t)mr;
                }
                float *c = j->C + ir * ldc + jc;
                for (int q = 0; q < npan; q++)
                    a->kernel(kc, ap, rs, cs, bbuf + (size_t)q * kc * nr, c + q * nr, ldc, rows,
                              nc - q * nr < nr ? nc - q * nr : nr, j->alpha, acc);
            }
        }
    }
}

static void run_range(void *v, size_t lo, size_t hi)
{
    for (size_t k = lo; k < hi; k++)
        run_part(v, (int)k);
}

/* C *= beta for beta not 0 or 1; C = 0 for beta 0 when there is nothing to add (K 0). */
static void scale_c(int M, int N, float beta, float *C, int ldc, bool no_product)
{
    for (int r = 0; r < M; r++) {
        float *row = C + (size_t)r * ldc;
        if (beta == 0.0f && no_product)
            memset(row, 0, (size_t)N * sizeof(float));
        else if (beta != 0.0f && beta != 1.0f)
            for (int j = 0; j < N; j++)
                row[j] *= beta;
    }
}

void nn_gemm_run(nn_gemm *g, bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0)
        return;
    scale_c(M, N, beta, C, ldc, K <= 0);
    if (K <= 0)
        return;
    run_job j = {.p = {.ta = trans_a, .tb = trans_b, .beta_acc = beta != 0.0f, .M = M, .N = N,
                       .K = K, .lda = lda, .ldb = ldb, .ldc = ldc, .alpha = alpha, .A = A,
                       .B = B, .C = C},
                 .arch = blocking(g), .ws = g->ws, .bf16 = g->bf16};
    j.gr = pick_grid(j.arch, ws_ensure(g, g->threads), M, N, K);
    if (g->bf16) { /* each part packs its whole column range at once when memory allows */
        int rows = (j.gr.mt + j.gr.tm - 1) / j.gr.tm * nn_gemm_bf16_arch.mr;
        j.bf16_mc = rows < BF16_MC_MAX ? rows : BF16_MC_MAX;
        if (!ws_grow(g, nn_gemm_bf16_ws_floats(j.bf16_mc)))
            j.bf16_mc = BF16_MC_MIN;
    }
    nn_pool_run(g->pool, (size_t)j.gr.tm * j.gr.tn, 1, run_range, &j);
}

/* ---- pre-packed right operand ------------------------------------------------------------ */

static size_t packed_size(const nn_gemm_arch *a, int K, int N)
{
    return (size_t)((N + a->nr - 1) / a->nr) * a->nr * (size_t)K;
}

typedef struct pack_job {
    const nn_gemm_arch *arch;
    float *packed;
    const float *B;
    int ldb, K, N;
    bool trans, bf16;
} pack_job;

static void pack_range(void *v, size_t lo, size_t hi)
{
    pack_job *g = v;
    const nn_gemm_arch *a = g->arch;
    if (g->bf16) { /* [lo, hi) are 16-column panels there */
        nn_gemm_bf16_pack(g->packed, g->B, g->ldb, g->trans, g->K, g->N, (int)lo, (int)hi);
        return;
    }
    size_t ldb = (size_t)g->ldb, Np = packed_size(a, 1, g->N);
    for (size_t q = lo; q < hi; q++) {
        int c0 = (int)q * a->nr, cols = g->N - c0 < a->nr ? g->N - c0 : a->nr;
        for (int k0 = 0; k0 < g->K; k0 += a->kc) {
            int kc = g->K - k0 < a->kc ? g->K - k0 : a->kc;
            const float *src = g->trans ? g->B + (size_t)c0 * ldb + k0 : g->B + k0 * ldb + c0;
            a->pack(g->packed + (size_t)k0 * Np + q * kc * a->nr, src, ldb, g->trans, kc, cols,
                    a->nr);
        }
    }
}

static void pack_on(nn_pool *pool, const nn_gemm_arch *a, bool bf16, float *packed,
                    const float *B, int ldb, bool trans, int K, int N)
{
    pack_job j = {.arch = a, .packed = packed, .B = B, .ldb = ldb, .K = K, .N = N,
                  .trans = trans, .bf16 = bf16};
    size_t panels = bf16 ? (size_t)(N + 31) / 32 * 2 : (size_t)(N + a->nr - 1) / a->nr;
    nn_pool_run(pool, panels, 4, pack_range, &j);
}

typedef struct packed_job {
    const nn_gemm_arch *arch;
    grid gr;
    int M, N, K, lda, ldc;
    bool beta_acc;
    const float *A, *packed;
    float *C;
    float **ws; /* bf16 (NULL: fp32) */
} packed_job;

/* A part's rows are read in place (few: the batch); its panels go outer so that each panel
 * block is read once from memory and reused by every row tile. */
static void packed_range(void *v, size_t lo, size_t hi)
{
    packed_job *j = v;
    const nn_gemm_arch *a = j->arch;
    size_t lda = (size_t)j->lda, ldc = (size_t)j->ldc, Np = packed_size(a, 1, j->N);
    for (size_t part = lo; part < hi; part++) {
        int r0, r1, n0, n1;
        part_range(&j->gr, a, j->M, j->N, (int)part, &r0, &r1, &n0, &n1);
        if (j->ws) {
            nn_gemm_job p = {.beta_acc = j->beta_acc, .M = j->M, .N = j->N, .K = j->K,
                             .lda = j->lda, .ldc = j->ldc, .alpha = 1.0f, .A = j->A,
                             .packed = j->packed, .C = j->C};
            nn_gemm_bf16_part(&p, j->ws[part], BF16_MC_MIN, r0, r1, n0, n1);
            continue;
        }
        for (int pc = 0; pc < j->K; pc += a->kc) {
            int kc = j->K - pc < a->kc ? j->K - pc : a->kc;
            bool acc = pc > 0 || j->beta_acc;
            for (int c0 = n0; c0 < n1; c0 += a->nr) {
                const float *bp = j->packed + (size_t)pc * Np + (size_t)(c0 / a->nr) * kc * a->nr;
                int cols = n1 - c0 < a->nr ? n1 - c0 : a->nr;
                for (int ir = r0; ir < r1; ir += a->mr)
                    a->kernel(kc, j->A + (size_t)ir * lda + pc, lda, 1, bp, j->C + ir * ldc + c0,
                              ldc, r1 - ir < a->mr ? r1 - ir : a->mr, cols, 1.0f, acc);
            }
        }
    }
}

/* ws NULL: the fp32 kernels of a; else the bf16 path with these per-part workspaces (as many
 * as `parts`). */
static void run_packed_on(nn_pool *pool, const nn_gemm_arch *a, float **ws, int parts, int M,
                          int N, int K, const float *A, int lda, const float *packed, float beta,
                          float *C, int ldc)
{
    if (M <= 0 || N <= 0)
        return;
    scale_c(M, N, beta, C, ldc, K <= 0);
    if (K <= 0)
        return;
    packed_job j = {.arch = ws ? &nn_gemm_bf16_arch : a, .M = M, .N = N, .K = K, .lda = lda,
                    .ldc = ldc, .beta_acc = beta != 0.0f, .A = A, .packed = packed, .C = C,
                    .ws = ws};
    j.gr = pick_grid(j.arch, parts, M, N, K);
    nn_pool_run(pool, (size_t)j.gr.tm * j.gr.tn, 1, packed_range, &j);
}

size_t nn_gemm_packed_size(const nn_gemm *g, int K, int N)
{
    return g->bf16 ? nn_gemm_bf16_packed_floats(K, N) : packed_size(g->arch, K, N);
}

void nn_gemm_pack(nn_gemm *g, float *packed, const float *B, int ldb, bool trans_b, int K, int N)
{
    pack_on(g->pool, g->arch, g->bf16, packed, B, ldb, trans_b, K, N);
}

void nn_gemm_run_packed(nn_gemm *g, int M, int N, int K, const float *A, int lda,
                        const float *packed, float beta, float *C, int ldc)
{
    if (g->bf16)
        run_packed_on(g->pool, g->arch, g->ws, ws_ensure(g, g->threads), M, N, K, A, lda, packed,
                      beta, C, ldc);
    else
        run_packed_on(g->pool, g->arch, NULL, g->threads, M, N, K, A, lda, packed, beta, C, ldc);
}

size_t nn_gemm_packed_floats(int K, int N) { return packed_size(nn_gemm_arch_best(), K, N); }

void nn_gemm_pack_b(nn_pool *pool, float *packed, const float *B, int ldb, bool trans_b, int K,
                    int N)
{
    pack_on(pool, nn_gemm_arch_best(), false, packed, B, ldb, trans_b, K, N);
}

void nn_gemm_packed(nn_pool *pool, int M, int N, int K, const float *A, int lda,
                    const float *packed, float beta, float *C, int ldc)
{
    run_packed_on(pool, nn_gemm_arch_best(), NULL, nn_pool_threads(pool), M, N, K, A, lda, packed,
                  beta, C, ldc);
}
