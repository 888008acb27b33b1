/* test_nn_gemm: gemm_cpu.c's products against a float64 reference on random non-zero inputs,
 * for every kernel set this CPU runs (avx512, avx2, c): all four transpose cases, alpha/beta
 * (beta 0 must not read C: it is filled with NaN), leading dimensions wider than the rows,
 * sizes off the tile (mr, nr) and across the inner (kc 256) and column (nc) blocks, K 0, the
 * LM's own shapes, 1-3 threads (results must be bitwise the same for every thread count), and
 * the pre-packed path (nn_gemm_pack + nn_gemm_run_packed) the recurrent products use.
 * Bound: |got - ref| <= 2e-6 * sum_k |a_k b_k| * sqrt(K/256 + 1) + 1e-6 * |beta C| + 1e-30
 * (float32 rounding of a sum in blocks; the sqrt grows with the number of blocks added).
 * The bf16 mode (nn_gemm_set_bf16, AMX; skipped where the CPU or kernel lacks it) is checked the
 * same way against the float64 product of the operands rounded to bfloat16 (nearest even) - so
 * the rounding itself is checked - and must differ from the unrounded product by more than
 * 2^-12 of sum |a b| somewhere (the mode is on). */
#include <stdint.h>
#include <stdlib.h>

#include "err.h"
#include "gemm_cpu.h"
#include "pool.h"
#include "test.h"

static uint32_t rng_state = 88172645u;

static float urand(float lo, float hi) /* xorshift32, uniform in [lo,hi) */
{
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 17, rng_state ^= rng_state << 5;
    return lo + (hi - lo) * (float)(rng_state >> 8) / 16777216.0f;
}

static float *rand_array(size_t n)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    for (size_t i = 0; i < n; i++) {
        x[i] = urand(-1, 1);
        if (x[i] == 0.0f)
            x[i] = 0.5f;
    }
    return x;
}

typedef struct problem {
    int M, N, K;
    bool ta, tb;
    float alpha, beta;
    int lda, ldb, ldc;
    float *A, *B, *C0; /* C0: C before the product */
    double *ref, *bound;
    double *ref16, *bound16; /* the product of the bf16-rounded operands */
    double *scale;           /* sum_k |a_k b_k| per element */
} problem;

/* x rounded to bfloat16, nearest even (finite x). */
static double bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    memcpy(&x, &u, sizeof x);
    return x;
}

static void problem_init(problem *p, int M, int N, int K, bool ta, bool tb, float alpha,
                         float beta)
{
    *p = (problem){.M = M, .N = N, .K = K, .ta = ta, .tb = tb, .alpha = alpha, .beta = beta};
    p->lda = (ta ? M : K) + 3, p->ldb = (tb ? K : N) + 5, p->ldc = N + 2;
    p->A = rand_array((size_t)(ta ? K : M) * p->lda);
    p->B = rand_array((size_t)(tb ? N : K) * p->ldb);
    p->C0 = rand_array((size_t)M * p->ldc);
    size_t nc = (size_t)M * p->ldc;
    p->ref = calloc(nc, sizeof *p->ref), p->bound = calloc(nc, sizeof *p->bound);
    p->ref16 = calloc(nc, sizeof *p->ref16), p->bound16 = calloc(nc, sizeof *p->bound16);
    p->scale = calloc(nc, sizeof *p->scale);
    double grow = sqrt(K / 256.0 + 1.0);
    for (int r = 0; r < M; r++)
        for (int j = 0; j < N; j++) {
            double s = 0, m = 0, s16 = 0, m16 = 0;
            for (int k = 0; k < K; k++) {
                float a = ta ? p->A[(size_t)k * p->lda + r] : p->A[(size_t)r * p->lda + k];
                float b = tb ? p->B[(size_t)j * p->ldb + k] : p->B[(size_t)k * p->ldb + j];
                s += (double)a * b, m += fabs((double)a * b);
                s16 += bf16(a) * bf16(b), m16 += fabs(bf16(a) * bf16(b));
            }
            size_t i = (size_t)r * p->ldc + j;
            double c = beta != 0.0f ? (double)beta * p->C0[i] : 0.0;
            p->ref[i] = alpha * s + c, p->ref16[i] = alpha * s16 + c;
            p->bound[i] = 2e-6 * fabs(alpha) * m * grow + 1e-6 * fabs(c) + 1e-30;
            p->bound16[i] = 2e-6 * fabs(alpha) * m16 * grow + 1e-6 * fabs(c) + 1e-30;
            p->scale[i] = fabs(alpha) * m;
        }
}

static void problem_free(problem *p)
{
    free(p->A), free(p->B), free(p->C0), free(p->ref), free(p->bound);
    free(p->ref16), free(p->bound16), free(p->scale);
}

/* C as the caller hands it: beta 0 fills it with NaN (must not be read); the padding columns
 * keep their values (must not be written). */
static float *fresh_c(const problem *p)
{
    size_t n = (size_t)p->M * p->ldc;
    float *C = malloc((n ? n : 1) * sizeof *C);
    for (size_t i = 0; i < n; i++)
        C[i] = p->beta == 0.0f && (int)(i % p->ldc) < p->N ? NAN : p->C0[i];
    return C;
}

static double worst_bf16_shift; /* largest |bf16 result - exact| / sum|ab| seen */

/* Compares C with the reference (bf16: of the rounded operands) and the untouched padding;
 * returns the worst |err|/bound. */
static double check_c(const problem *p, const float *C, const char *what, const char *arch,
                      int threads, bool is_bf16)
{
    const double *ref = is_bf16 ? p->ref16 : p->ref, *bound = is_bf16 ? p->bound16 : p->bound;
    int bad = 0;
    double worst = 0;
    for (int r = 0; r < p->M; r++)
        for (int j = 0; j < p->ldc; j++) {
            size_t i = (size_t)r * p->ldc + j;
            if (j >= p->N) {
                bad += C[i] != p->C0[i];
                continue;
            }
            double e = fabs((double)C[i] - ref[i]);
            if (!(e <= bound[i]))
                bad++;
            else if (e / bound[i] > worst)
                worst = e / bound[i];
            if (is_bf16 && p->scale[i] > 0 &&
                fabs((double)C[i] - p->ref[i]) / p->scale[i] > worst_bf16_shift)
                worst_bf16_shift = fabs((double)C[i] - p->ref[i]) / p->scale[i];
        }
    CHECK_EQ_INT(0, bad);
    if (bad)
        fprintf(stderr, "  %s %s threads %d: M %d N %d K %d ta %d tb %d alpha %g beta %g\n", what,
                arch, threads, p->M, p->N, p->K, p->ta, p->tb, (double)p->alpha,
                (double)p->beta);
    return worst;
}

static double worst_seen;

static bool have_bf16;

/* Every kernel set (and the bf16 mode) and thread count on one problem; the first result of a
 * set is the one the other thread counts must match bit for bit. */
static void run_problem(const problem *p, nn_pool **pools, int npools, bool packed)
{
    static const char *archs[] = {"avx512", "avx2", "c", "amx-bf16"};
    for (size_t s = 0; s < sizeof archs / sizeof *archs; s++) {
        bool is_bf16 = !strcmp(archs[s], "amx-bf16");
        const nn_gemm_arch *arch = is_bf16 ? nn_gemm_arch_best() : nn_gemm_arch_named(archs[s]);
        if (!arch || (is_bf16 && !have_bf16))
            continue; /* not on this CPU */
        float *first = NULL;
        for (int t = 0; t < npools; t++) {
            nn_gemm *g = NULL;
            CHECK_EQ_INT(0, nn_gemm_new(&g, pools[t], arch));
            if (is_bf16)
                CHECK_EQ_INT(0, nn_gemm_set_bf16(g, true));
            CHECK_EQ_STR(archs[s], nn_gemm_name(g));
            float *C = fresh_c(p);
            if (packed) {
                float *P = malloc((nn_gemm_packed_size(g, p->K, p->N) + 1) * sizeof *P);
                nn_gemm_pack(g, P, p->B, p->ldb, p->tb, p->K, p->N);
                nn_gemm_run_packed(g, p->M, p->N, p->K, p->A, p->lda, P, p->beta, C, p->ldc);
                free(P);
            } else {
                nn_gemm_run(g, p->ta, p->tb, p->M, p->N, p->K, p->alpha, p->A, p->lda, p->B,
                            p->ldb, p->beta, C, p->ldc);
            }
            double w = check_c(p, C, packed ? "packed" : "run", archs[s],
                               nn_pool_threads(pools[t]), is_bf16);
            worst_seen = w > worst_seen ? w : worst_seen;
            if (!first) {
                first = C;
            } else {
                size_t n = (size_t)p->M * p->ldc, diff = 0;
                for (size_t i = 0; i < n; i++)
                    diff += memcmp(&first[i], &C[i], sizeof *C) != 0;
                CHECK_EQ_INT(0, diff); /* the same bits whatever the thread count */
                free(C);
            }
            nn_gemm_free(g);
        }
        free(first);
    }
}

int main(void)
{
    enum { NPOOLS = 3 };
    nn_pool *pools[NPOOLS] = {0};
    for (int t = 0; t < NPOOLS; t++)
        CHECK_EQ_INT(0, nn_pool_new(&pools[t], t + 1));
    CHECK(nn_gemm_arch_best() != NULL);
    CHECK(nn_gemm_arch_named("c") != NULL);
    CHECK(nn_gemm_arch_named("sse9") == NULL);
    {
        nn_gemm *g = NULL;
        CHECK_EQ_INT(0, nn_gemm_new(&g, pools[0], NULL));
        int rc = nn_gemm_set_bf16(g, true);
        have_bf16 = rc == 0;
        CHECK(rc == 0 || rc == KF_EUNSUPPORTED);
        CHECK_EQ_STR(have_bf16 ? "amx-bf16" : nn_gemm_arch_name(nn_gemm_arch_best()),
                     nn_gemm_name(g));
        CHECK_EQ_INT(0, nn_gemm_set_bf16(g, false));
        CHECK_EQ_STR(nn_gemm_arch_name(nn_gemm_arch_best()), nn_gemm_name(g));
        nn_gemm_free(g);
        fprintf(stderr, "test_nn_gemm: bf16 (AMX) %s\n", have_bf16 ? "on" : "not on this CPU");
    }

    /* Odd sizes around the tiles (mr 4/6/8, nr 16/48) and the blocks (kc 256, nc 768/1024). */
    static const int Ms[] = {1, 7, 9, 50}, Ns[] = {1, 17, 49, 97}, Ks[] = {1, 3, 257, 520};
    int n = 0;
    for (size_t i = 0; i < sizeof Ms / sizeof *Ms; i++)
        for (size_t j = 0; j < sizeof Ns / sizeof *Ns; j++)
            for (size_t q = 0; q < sizeof Ks / sizeof *Ks; q++, n++) {
                static const float betas[] = {0.0f, 1.0f, 0.5f};
                problem p;
                problem_init(&p, Ms[i], Ns[j], Ks[q], n % 2, (n / 2) % 2,
                             n % 5 == 0 ? -0.75f : 1.0f, betas[n % 3]);
                run_problem(&p, pools, NPOOLS, false);
                problem_free(&p);
            }
    /* Across the column block (nc) with many row tiles, every transpose case, K 0. */
    for (int c = 0; c < 4; c++) {
        problem p;
        problem_init(&p, 67, 1100, 300, c & 1, c & 2, 1.0f, c == 3 ? 0.0f : 1.0f);
        run_problem(&p, pools, NPOOLS, false);
        problem_free(&p);
        problem_init(&p, 13, 29, 0, c & 1, c & 2, 1.0f, c % 2 ? 0.0f : 0.5f);
        run_problem(&p, pools, NPOOLS, false);
        problem_free(&p);
    }
    /* The pre-packed path: the recurrent shapes (batch rows) of the small LM and off sizes. */
    static const int Pm[] = {1, 5, 32, 32, 33}, Pn[] = {1, 49, 768, 192, 100},
                     Pk[] = {1, 300, 192, 768, 513};
    for (size_t i = 0; i < sizeof Pm / sizeof *Pm; i++)
        for (int tb = 0; tb < 2; tb++) {
            problem p;
            problem_init(&p, Pm[i], Pn[i], Pk[i], false, tb, 1.0f, i % 2 ? 0.0f : 1.0f);
            run_problem(&p, pools, NPOOLS, true);
            problem_free(&p);
        }
    /* The default LM's shapes, one of each transpose case (rows trimmed to keep it quick). */
    {
        problem p;
        problem_init(&p, 70, 1600, 400, false, true, 1.0f, 0.0f); /* x W_ih^T, logits */
        run_problem(&p, pools, NPOOLS, false);
        problem_free(&p);
        problem_init(&p, 400, 150, 70, true, false, 1.0f, 1.0f); /* dW = dg^T x */
        run_problem(&p, pools, NPOOLS, false);
        problem_free(&p);
        problem_init(&p, 70, 400, 1600, false, false, 1.0f, 0.0f); /* dx = dg W_ih */
        run_problem(&p, pools, NPOOLS, false);
        problem_free(&p);
    }
    fprintf(stderr, "test_nn_gemm: worst error %.3g of the bound\n", worst_seen);
    if (have_bf16) { /* the rounding shows: 2^-9 relative per operand, random signs */
        fprintf(stderr, "test_nn_gemm: bf16 vs the exact product: worst %.3g of sum|ab|\n",
                worst_bf16_shift);
        CHECK(worst_bf16_shift > 0x1p-12);
    }
    for (int t = 0; t < NPOOLS; t++)
        nn_pool_free(pools[t]);
    return test_done();
}
