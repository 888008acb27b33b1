/* test_nn_kernels: the CPU backend's own fast kernels against double-precision references on
 * random non-zero inputs - the packed matrix product (gemm_cpu.c: edge tiles, inner blocks,
 * transposed and plain packing, beta 0/1, 1 and 2 threads) and the LSTM cell / softmax rows
 * (ew_cpu.c: the AVX2 set this CPU picks and the plain C set, row lengths off the vector width,
 * large arguments that hit the exp clamps). */
#include <stdint.h>
#include <stdlib.h>

#include "ew_cpu.h"
#include "gemm_cpu.h"
#include "pool.h"
#include "test.h"

static uint32_t rng_state = 2463534242u;

static float urand(float lo, float hi) /* xorshift32, uniform in [lo,hi) */
{
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 17, rng_state ^= rng_state << 5;
    return lo + (hi - lo) * (float)(rng_state >> 8) / 16777216.0f;
}

static float *rand_array(size_t n, float lo, float hi)
{
    float *x = calloc(n ? n : 1, sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = urand(lo, hi);
    return x;
}

/* C = A op(B) + beta C in double vs nn_gemm_packed; the bound scales with sum |a||b|. */
static void check_gemm(nn_pool *pool, int M, int N, int K, bool trans, float beta)
{
    int lda = K + 3, ldb = (trans ? K : N) + 2, ldc = N + 1; /* strides wider than the rows */
    float *A = rand_array((size_t)M * lda, -1, 1);
    float *B = rand_array((size_t)(trans ? N : K) * ldb, -1, 1);
    float *C = rand_array((size_t)M * ldc, -1, 1);
    float *P = malloc(nn_gemm_packed_floats(K, N) * sizeof *P + 64);
    float *want = malloc((size_t)M * ldc * sizeof *want), *bound = malloc((size_t)M * ldc * 4);
    for (int r = 0; r < M; r++)
        for (int j = 0; j < ldc; j++) {
            double s = j < N ? (double)beta * C[(size_t)r * ldc + j] : C[(size_t)r * ldc + j],
                   m = 0;
            for (int k = 0; j < N && k < K; k++) {
                double b = trans ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                s += (double)A[(size_t)r * lda + k] * b;
                m += fabs((double)A[(size_t)r * lda + k] * b);
            }
            want[(size_t)r * ldc + j] = (float)s;
            bound[(size_t)r * ldc + j] = (float)(m + fabs((double)C[(size_t)r * ldc + j]));
        }
    nn_gemm_pack_b(pool, P, B, ldb, trans, K, N);
    nn_gemm_packed(pool, M, N, K, A, lda, P, beta, C, ldc);
    int bad = 0;
    for (size_t i = 0; i < (size_t)M * ldc; i++)
        if (!(fabs((double)C[i] - want[i]) <= 1e-6 * bound[i] + 1e-7))
            bad++;
    CHECK_EQ_INT(0, bad);
    if (bad)
        fprintf(stderr, "  gemm M %d N %d K %d trans %d beta %g threads %d\n", M, N, K, trans,
                (double)beta, nn_pool_threads(pool));
    free(A), free(B), free(C), free(P), free(want), free(bound);
}

static double sigm(double x) { return 1.0 / (1.0 + exp(-x)); }

static void check_cell(const nn_ew_kernels *k, int H, float span)
{
    float *g = rand_array(4 * (size_t)H, -span, span), *cp = rand_array((size_t)H, -2, 2);
    float *g0 = malloc(4 * (size_t)H * sizeof *g0), *c = malloc((size_t)H * sizeof *c);
    float *h = malloc((size_t)H * sizeof *h), *want = malloc(7 * (size_t)H * sizeof *want);
    memcpy(g0, g, 4 * (size_t)H * sizeof *g0);
    for (int j = 0; j < H; j++) {
        double gi = sigm(g0[j]), gf = sigm(g0[H + j]), gg = tanh(g0[2 * H + j]),
               go = sigm(g0[3 * H + j]);
        double cn = gf * cp[j] + gi * gg;
        want[j] = (float)gi, want[H + j] = (float)gf, want[2 * H + j] = (float)gg;
        want[3 * H + j] = (float)go, want[4 * H + j] = (float)cn;
        want[5 * H + j] = (float)(go * tanh(cn));
    }
    k->cell_fwd(g, c, h, cp, H);
    CHECK_ALLCLOSE(want, g, 4 * (size_t)H, 5e-7, 2e-6);
    CHECK_ALLCLOSE(want + 4 * H, c, (size_t)H, 5e-7, 2e-6);
    CHECK_ALLCLOSE(want + 5 * H, h, (size_t)H, 5e-7, 2e-6);

    /* backward from the activated gates just checked */
    float *dh = rand_array((size_t)H, -1, 1), *dc = rand_array((size_t)H, -1, 1);
    float *dg = malloc(4 * (size_t)H * sizeof *dg), *wdg = malloc(5 * (size_t)H * sizeof *wdg);
    for (int j = 0; j < H; j++) {
        double gi = g[j], gf = g[H + j], gg = g[2 * H + j], go = g[3 * H + j], tc = tanh(c[j]);
        double dct = dc[j] + dh[j] * go * (1 - tc * tc);
        wdg[j] = (float)(dct * gg * gi * (1 - gi));
        wdg[H + j] = (float)(dct * cp[j] * gf * (1 - gf));
        wdg[2 * H + j] = (float)(dct * gi * (1 - gg * gg));
        wdg[3 * H + j] = (float)(dh[j] * tc * go * (1 - go));
        wdg[4 * H + j] = (float)(dct * gf);
    }
    k->cell_bwd(dg, dc, dh, g, c, cp, H);
    CHECK_ALLCLOSE(wdg, dg, 4 * (size_t)H, 5e-7, 1e-5);
    CHECK_ALLCLOSE(wdg + 4 * H, dc, (size_t)H, 5e-7, 1e-5);
    free(g), free(cp), free(g0), free(c), free(h), free(want), free(dh), free(dc), free(dg);
    free(wdg);
}

static void check_softmax(const nn_ew_kernels *k, int V, float span)
{
    float *x = rand_array((size_t)V, -span, span), *want = malloc((size_t)V * sizeof *want);
    int32_t target = (int32_t)(V / 3);
    double mx = x[0], s = 0;
    for (int i = 1; i < V; i++)
        mx = x[i] > mx ? x[i] : mx;
    for (int i = 0; i < V; i++)
        s += exp((double)x[i] - mx);
    for (int i = 0; i < V; i++)
        want[i] = (float)(exp((double)x[i] - mx) / s);
    double loss = log(s) + mx - x[target];
    float got = k->softmax(x, V, target);
    CHECK_NEAR(loss, got, 1e-6, 1e-6);
    CHECK_ALLCLOSE(want, x, (size_t)V, 1e-12, 4e-6);
    free(x), free(want);
}

int main(void)
{
    static const int Ms[] = {1, 3, 4, 5, 32, 33}, Ns[] = {1, 7, 24, 25, 50};
    static const int Ks[] = {1, 5, 513, 1030}; /* KC is 512: one, two and three inner blocks */
    for (int threads = 1; threads <= 2; threads++) {
        nn_pool *pool = NULL;
        CHECK_EQ_INT(0, nn_pool_new(&pool, threads));
        for (size_t i = 0; i < sizeof Ms / sizeof *Ms; i++)
            for (size_t j = 0; j < sizeof Ns / sizeof *Ns; j++)
                for (size_t q = 0; q < sizeof Ks / sizeof *Ks; q++)
                    for (int tr = 0; tr < 2; tr++)
                        check_gemm(pool, Ms[i], Ns[j], Ks[q], tr, (i + j + q) % 2 ? 1.0f : 0.0f);
        check_gemm(pool, 32, 1600, 400, true, 1.0f); /* the LM's last-layer recurrent shapes */
        check_gemm(pool, 32, 400, 1600, false, 0.0f);
        nn_pool_free(pool);
    }
    const nn_ew_kernels *sets[2] = {nn_ew_kernels_get(), nn_ew_kernels_scalar()};
    for (int s = 0; s < 2; s++) {
        static const int Hs[] = {1, 7, 8, 13, 400, 1152};
        for (size_t i = 0; i < sizeof Hs / sizeof *Hs; i++) {
            check_cell(sets[s], Hs[i], 4.0f);
            check_cell(sets[s], Hs[i], 0.5f); /* the small-argument tanh branch */
            check_cell(sets[s], Hs[i], 120.0f); /* saturated gates, exp clamps */
            check_softmax(sets[s], Hs[i], 8.0f);
            check_softmax(sets[s], Hs[i] * 7, 150.0f);
        }
    }
    return test_done();
}
