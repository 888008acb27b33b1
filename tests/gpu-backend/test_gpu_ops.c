/* test_gpu_ops: every op of the CUDA nn_backend against the CPU backend (the reference
 * semantics, backend_cpu.c) on random non-zero inputs and odd sizes, plus cuda_optim's Adam
 * step and gradient clip against a float64 evaluation of fastai's formulas written here.
 * Tolerances: gpu_pair.h (1e-5 relative to the tensor's scale); dropout masks must be identical;
 * reductions (double on both sides) agree to 1e-10 of sum|terms|. Skips (77) without a GPU.
 * Dimension legend: B batch, T time, E/D columns, H hidden, V vocab, N = T*B rows. */
#include "cuda_optim.h"
#include "gpu_pair.h"

enum { B = 5, T = 7, E = 37, H = 29, V = 301, N = B * T };

static gpu_pair P;

/* The same host data on both backends. */
typedef struct twin {
    float *c, *g;
    size_t n;
} twin;

static twin twin_rand(size_t n, float lo, float hi)
{
    float *h = host_rand(n, lo, hi);
    twin t = {be_from(P.cpu, h, n * 4), be_from(P.gpu, h, n * 4), n};
    free(h);
    return t;
}

static void twin_free(twin t)
{
    P.cpu->release(P.cpu, t.c);
    P.gpu->release(P.gpu, t.g);
}

#define CHECK_TWIN(what, t) CHECK_PAIR(what, P.cpu, (t).c, P.gpu, (t).g, (t).n)

static void test_memory(void)
{
    float *d = P.gpu->alloc(P.gpu, 1000 * 4 + 3);
    CHECK(d != NULL && (uintptr_t)d % 64 == 0);
    float *h = be_to_host(P.gpu, d, 1000);
    CHECK_EQ_INT(0, max_abs(h, 1000) != 0); /* alloc zeroes */
    float *src = host_rand(1000, -1, 1);
    P.gpu->upload(P.gpu, d, src, 1000 * 4);
    float *e = P.gpu->alloc(P.gpu, 1000 * 4);
    P.gpu->copy(P.gpu, e, d, 1000 * 4);
    P.gpu->download(P.gpu, h, e, 1000 * 4);
    CHECK_ALLCLOSE(src, h, 1000, 0, 0);
    P.gpu->fill(P.gpu, e + 10, -2.5f, 900);
    P.gpu->download(P.gpu, h, e, 1000 * 4);
    CHECK(h[9] == src[9] && h[10] == -2.5f && h[909] == -2.5f && h[910] == src[910]);
    P.gpu->fill(P.gpu, e, 0.0f, 1000);
    P.gpu->download(P.gpu, h, e, 1000 * 4);
    CHECK(max_abs(h, 1000) == 0);
    P.gpu->release(P.gpu, d);
    P.gpu->release(P.gpu, e);
    P.gpu->release(P.gpu, NULL);
    free(h);
    free(src);
}

/* All four transposes on sub-matrices (leading dimensions wider than the rows), beta != 0. */
static void test_sgemm(void)
{
    const int M = 67, Nn = 45, K = 131, pad = 3;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            int ra = ta ? K : M, ca = ta ? M : K, rb = tb ? Nn : K, cb = tb ? K : Nn;
            int lda = ca + pad, ldb = cb + pad, ldc = Nn + pad;
            twin a = twin_rand((size_t)ra * lda, -1, 1), b = twin_rand((size_t)rb * ldb, -1, 1);
            twin c = twin_rand((size_t)M * ldc, -1, 1);
            P.cpu->sgemm(P.cpu, ta, tb, M, Nn, K, 0.75f, a.c, lda, b.c, ldb, -0.5f, c.c, ldc);
            P.gpu->sgemm(P.gpu, ta, tb, M, Nn, K, 0.75f, a.g, lda, b.g, ldb, -0.5f, c.g, ldc);
            char what[32];
            snprintf(what, sizeof what, "sgemm ta=%d tb=%d", ta, tb);
            CHECK_TWIN(what, c);
            twin_free(a), twin_free(b), twin_free(c);
        }
}

static void test_dropout_mask(void)
{
    const float ps[] = {0.0f, 0.1f, 0.5f, 0.9f};
    for (size_t k = 0; k < sizeof ps / sizeof *ps; k++) {
        size_t n = 100003;
        twin m = twin_rand(n, -1, 1);
        P.cpu->dropout_mask(P.cpu, m.c, n, ps[k], 1234 + k, 7 + k);
        P.gpu->dropout_mask(P.gpu, m.g, n, ps[k], 1234 + k, 7 + k);
        float *c = be_to_host(P.cpu, m.c, n), *g = be_to_host(P.gpu, m.g, n);
        CHECK_ALLCLOSE(c, g, n, 0, 0); /* identical, not close */
        size_t zeros = 0;
        for (size_t i = 0; i < n; i++)
            zeros += g[i] == 0;
        /* the drop rate itself: binomial sd <= 0.0016 at n = 1e5 */
        CHECK_NEAR(ps[k], (double)zeros / n, 0.01, 0);
        fprintf(stderr, "  dropout_mask p=%.1f dropped %.4f\n", ps[k], (double)zeros / n);
        free(c), free(g);
        twin_free(m);
    }
}

static void test_elementwise(void)
{
    size_t n = (size_t)N * E;
    twin x = twin_rand(n, -2, 2), m = twin_rand(n, -1.5, 1.5), y = twin_rand(n, -1, 1);
    twin mb = twin_rand((size_t)B * E, 0, 2);
    P.cpu->mul(P.cpu, y.c, x.c, m.c, n);
    P.gpu->mul(P.gpu, y.g, x.g, m.g, n);
    CHECK_TWIN("mul", y);
    P.cpu->mul(P.cpu, x.c, x.c, m.c, n); /* in place */
    P.gpu->mul(P.gpu, x.g, x.g, m.g, n);
    CHECK_TWIN("mul in place", x);
    P.cpu->mul_bcast(P.cpu, y.c, x.c, mb.c, T, B, E);
    P.gpu->mul_bcast(P.gpu, y.g, x.g, mb.g, T, B, E);
    CHECK_TWIN("mul_bcast", y);
    P.cpu->mul_bcast(P.cpu, y.c, y.c, mb.c, T, B, E);
    P.gpu->mul_bcast(P.gpu, y.g, y.g, mb.g, T, B, E);
    CHECK_TWIN("mul_bcast in place", y);
    P.cpu->axpy(P.cpu, y.c, -0.37f, x.c, n);
    P.gpu->axpy(P.gpu, y.g, -0.37f, x.g, n);
    CHECK_TWIN("axpy", y);
    twin b1 = twin_rand(E, -1, 1), b2 = twin_rand(E, -1, 1);
    P.cpu->add_bias(P.cpu, y.c, b1.c, b2.c, N, E);
    P.gpu->add_bias(P.gpu, y.g, b1.g, b2.g, N, E);
    CHECK_TWIN("add_bias b1+b2", y);
    P.cpu->add_bias(P.cpu, y.c, b1.c, NULL, N, E);
    P.gpu->add_bias(P.gpu, y.g, b1.g, NULL, N, E);
    CHECK_TWIN("add_bias b1", y);
    /* bias_grad accumulates: start from non-zero db; wide D spans several column tiles */
    int D = 1000, R = 333;
    twin dy = twin_rand((size_t)R * D, -1, 1), db = twin_rand(D, -1, 1);
    P.cpu->bias_grad(P.cpu, db.c, dy.c, R, D);
    P.gpu->bias_grad(P.gpu, db.g, dy.g, R, D);
    CHECK_TWIN("bias_grad", db);
    twin_free(x), twin_free(m), twin_free(y), twin_free(mb), twin_free(b1), twin_free(b2);
    twin_free(dy), twin_free(db);
}

static void test_embedding(void)
{
    int32_t tok[B * T];
    for (int i = 0; i < B * T; i++) /* few distinct ids: repeats exercise the atomics */
        tok[i] = (int32_t)(rnd(0, 1) * 12) + (i % 3 == 0 ? 1 : 40);
    tok[3] = 1, tok[9] = 1; /* the pad id */
    int32_t *tc = be_from(P.cpu, tok, sizeof tok), *tg = be_from(P.gpu, tok, sizeof tok);
    twin w = twin_rand((size_t)V * E, -1, 1), rm = twin_rand(V, 0, 2);
    twin out = twin_rand((size_t)N * E, -1, 1), dw = twin_rand((size_t)V * E, -1, 1);
    for (int masked = 0; masked < 2; masked++) {
        P.cpu->embedding_fwd(P.cpu, out.c, tc, w.c, masked ? rm.c : NULL, B, T, E);
        P.gpu->embedding_fwd(P.gpu, out.g, tg, w.g, masked ? rm.g : NULL, B, T, E);
        CHECK_TWIN(masked ? "embedding_fwd rowmask" : "embedding_fwd", out);
        P.cpu->embedding_bwd(P.cpu, dw.c, out.c, tc, masked ? rm.c : NULL, 1, B, T, E);
        P.gpu->embedding_bwd(P.gpu, dw.g, out.g, tg, masked ? rm.g : NULL, 1, B, T, E);
        CHECK_TWIN(masked ? "embedding_bwd rowmask" : "embedding_bwd", dw);
    }
    P.cpu->release(P.cpu, tc), P.gpu->release(P.gpu, tg);
    twin_free(w), twin_free(rm), twin_free(out), twin_free(dw);
}

static void test_lstm_cell(void)
{
    int Hh = 300; /* B*Hh > one block */
    twin g = twin_rand((size_t)B * 4 * Hh, -3, 3), cp = twin_rand((size_t)B * Hh, -1, 1);
    twin c = twin_rand((size_t)B * Hh, -1, 1), h = twin_rand((size_t)B * Hh, -1, 1);
    P.cpu->lstm_cell_fwd(P.cpu, g.c, c.c, h.c, cp.c, B, Hh);
    P.gpu->lstm_cell_fwd(P.gpu, g.g, c.g, h.g, cp.g, B, Hh);
    CHECK_TWIN("lstm_cell_fwd gates", g);
    CHECK_TWIN("lstm_cell_fwd c", c);
    CHECK_TWIN("lstm_cell_fwd h", h);
    twin dg = twin_rand((size_t)B * 4 * Hh, -1, 1), dh = twin_rand((size_t)B * Hh, -1, 1);
    twin dc = twin_rand((size_t)B * Hh, -1, 1);
    P.cpu->lstm_cell_bwd(P.cpu, dg.c, dh.c, dc.c, g.c, c.c, cp.c, B, Hh);
    P.gpu->lstm_cell_bwd(P.gpu, dg.g, dh.g, dc.g, g.g, c.g, cp.g, B, Hh);
    CHECK_TWIN("lstm_cell_bwd dgates", dg);
    CHECK_TWIN("lstm_cell_bwd dc", dc);
    twin_free(g), twin_free(cp), twin_free(c), twin_free(h), twin_free(dg), twin_free(dh);
    twin_free(dc);
}

static void test_softmax_xent(void)
{
    const int Vs[] = {V, 5000, 60000}; /* narrower and wider than a block; an LM's vocab */
    for (int k = 0; k < 3; k++) {
        int v = Vs[k];
        int32_t tgt[N];
        for (int i = 0; i < N; i++)
            tgt[i] = (int32_t)(rnd(0, 1) * (v - 1));
        tgt[0] = v - 1;
        int32_t *tc = be_from(P.cpu, tgt, sizeof tgt), *tg = be_from(P.gpu, tgt, sizeof tgt);
        twin x = twin_rand((size_t)N * v, -8, 8), loss = twin_rand(N, -1, 1);
        P.cpu->softmax_xent_fwd(P.cpu, loss.c, x.c, tc, N, v);
        P.gpu->softmax_xent_fwd(P.gpu, loss.g, x.g, tg, N, v);
        CHECK_TWIN("softmax_xent_fwd loss", loss);
        CHECK_TWIN("softmax_xent_fwd probs", x);
        twin d = twin_rand((size_t)N * v, -1, 1);
        P.cpu->softmax_xent_bwd(P.cpu, d.c, x.c, tc, 0.03f, N, v);
        P.gpu->softmax_xent_bwd(P.gpu, d.g, x.g, tg, 0.03f, N, v);
        CHECK_TWIN("softmax_xent_bwd", d);
        P.cpu->softmax_xent_bwd(P.cpu, x.c, x.c, tc, 0.03f, N, v); /* aliased, as the model */
        P.gpu->softmax_xent_bwd(P.gpu, x.g, x.g, tg, 0.03f, N, v);
        CHECK_TWIN("softmax_xent_bwd in place", x);
        /* a NaN logit makes its row's loss NaN (the online max/sum must not drop it) */
        float nan_logit = NAN, row_loss = 0;
        P.gpu->upload(P.gpu, x.g + (size_t)v / 2, &nan_logit, sizeof nan_logit);
        P.gpu->softmax_xent_fwd(P.gpu, loss.g, x.g, tg, N, v);
        P.gpu->download(P.gpu, &row_loss, loss.g, sizeof row_loss);
        CHECK(isnan(row_loss));
        P.cpu->release(P.cpu, tc), P.gpu->release(P.gpu, tg);
        twin_free(x), twin_free(loss), twin_free(d);
    }
}

static void test_reductions(void)
{
    const size_t ns[] = {1, 255, 257, 100003, 3000001}; /* up to more than 1024 blocks */
    for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
        size_t n = ns[k];
        twin x = twin_rand(n, -1, 1.5);
        float *h = be_to_host(P.cpu, x.c, n);
        double l1 = 0, l2 = 0;
        for (size_t i = 0; i < n; i++)
            l1 += fabs(h[i]), l2 += (double)h[i] * h[i];
        CHECK_NEAR(P.cpu->sum(P.cpu, x.c, n), P.gpu->sum(P.gpu, x.g, n), 1e-10 * l1, 0);
        CHECK_NEAR(P.cpu->sumsq(P.cpu, x.c, n), P.gpu->sumsq(P.gpu, x.g, n), 1e-10 * l2, 0);
        free(h);
        twin_free(x);
    }
    int R = T, M = B * E;
    twin x = twin_rand((size_t)R * M, -1, 1), dx = twin_rand((size_t)R * M, -1, 1);
    double ref = P.cpu->sumsq_tdiff(P.cpu, x.c, R, M);
    CHECK_NEAR(ref, P.gpu->sumsq_tdiff(P.gpu, x.g, R, M), 1e-10 * ref, 0);
    CHECK_NEAR(0.0, P.gpu->sumsq_tdiff(P.gpu, x.g, 1, M), 0, 0);
    P.cpu->sumsq_tdiff_grad(P.cpu, dx.c, x.c, 0.7f, R, M);
    P.gpu->sumsq_tdiff_grad(P.gpu, dx.g, x.g, 0.7f, R, M);
    CHECK_TWIN("sumsq_tdiff_grad", dx);
    twin_free(x), twin_free(dx);
}

/* fastai Adam (decoupled wd) and clip_grad_norm_, evaluated in double on the host. */
static void test_optim(void)
{
    enum { NT = 4, STEPS = 3 };
    const cuda_optim_tensor base[NT] = {
        {.offset = 0, .n = 1000, .lr = 1e-2, .wd = 0.01},
        {.offset = 1008, .n = 37, .lr = 3e-3, .wd = 0}, /* a no_wd bias */
        {.offset = 1056, .n = 70000, .lr = 1e-3, .wd = 0.1},
        {.offset = 71056, .n = 500, .lr = 5e-2, .wd = 0.01}, /* frozen: left out below */
    };
    size_t total = 71556;
    double mom = 0.9, sqr_mom = 0.99, eps = 1e-5;
    float *p0 = host_rand(total, -1, 1);
    double *p = xmalloc(total * sizeof *p), *avg = xmalloc(total * sizeof *avg);
    double *sqr = xmalloc(total * sizeof *sqr);
    for (size_t i = 0; i < total; i++)
        p[i] = p0[i], avg[i] = sqr[i] = 0;
    float *dp = be_from(P.gpu, p0, total * 4), *dg = P.gpu->alloc(P.gpu, total * 4);
    float *davg = P.gpu->alloc(P.gpu, total * 4), *dsqr = P.gpu->alloc(P.gpu, total * 4);
    cuda_optim *o = NULL;
    CHECK_EQ_INT(0, cuda_optim_new(&o, nn_backend_cuda_ctx(P.gpu)));
    for (int s = 1; s <= STEPS; s++) {
        float *g = host_rand(total, -1, 1);
        P.gpu->upload(P.gpu, dg, g, total * 4);
        /* clip: step 1 clips hard, later steps have a max_norm over the norm (no change) */
        double sq = 0;
        for (int t = 0; t < NT - 1; t++)
            for (size_t k = 0; k < base[t].n; k++)
                sq += (double)g[base[t].offset + k] * g[base[t].offset + k];
        double norm = sqrt(sq), max_norm = s == 1 ? 0.5 : 1e6;
        CHECK_NEAR(norm, cuda_optim_clip_grad_norm(o, dg, base, NT - 1, max_norm), 1e-12 * norm, 0);
        double coef = max_norm / (norm + 1e-6);
        float *gc = be_to_host(P.gpu, dg, total);
        for (int t = 0; t < NT - 1 && coef < 1; t++)
            for (size_t k = 0; k < base[t].n; k++)
                g[base[t].offset + k] *= (float)coef;
        CHECK_ALLCLOSE(g, gc, total, 0, 1e-6); /* the frozen tensor and padding untouched */
        cuda_optim_tensor ts[NT - 1];
        for (int t = 0; t < NT - 1; t++) {
            ts[t] = base[t];
            ts[t].step = s + t; /* per-tensor step counts may differ (unfrozen later) */
            double lr = ts[t].lr, st = ts[t].step;
            for (size_t k = 0; k < ts[t].n; k++) {
                size_t i = ts[t].offset + k;
                double gi = gc[i];
                p[i] *= 1 - lr * ts[t].wd;
                avg[i] = mom * avg[i] + (1 - mom) * gi;
                sqr[i] = sqr_mom * sqr[i] + (1 - sqr_mom) * gi * gi;
                p[i] -= lr / (1 - pow(mom, st)) * avg[i] /
                        (sqrt(sqr[i] / (1 - pow(sqr_mom, st))) + eps);
            }
        }
        cuda_optim_adam_step(o, &(cuda_adam_args){.params = dp, .grads = dg, .avg = davg,
                                                  .sqr = dsqr, .tensors = ts, .count = NT - 1,
                                                  .mom = mom, .sqr_mom = sqr_mom, .eps = eps});
        float *got = be_to_host(P.gpu, dp, total), *want = xmalloc(total * sizeof *want);
        for (size_t i = 0; i < total; i++)
            want[i] = (float)p[i];
        double worst = 0;
        for (size_t i = 0; i < total; i++)
            worst = fmax(worst, fabs((double)got[i] - p[i]));
        fprintf(stderr, "  adam step %d: max|gpu-f64| = %.3g (clip norm %.4g)\n", s, worst, norm);
        CHECK_ALLCLOSE(want, got, total, 2e-6, 1e-5);
        CHECK(got[base[NT - 1].offset] == p0[base[NT - 1].offset]); /* frozen */
        free(g), free(gc), free(got), free(want);
    }
    cuda_optim_free(o);
    P.gpu->release(P.gpu, dp), P.gpu->release(P.gpu, dg);
    P.gpu->release(P.gpu, davg), P.gpu->release(P.gpu, dsqr);
    free(p0), free(p), free(avg), free(sqr);
}

/* More tensors than one launch takes (CUDA_OPTIM_LIST_TENSORS per launch): clip then one Adam
 * step. */
static void test_optim_many(void)
{
    enum { NT = 2 * CUDA_OPTIM_MAX_TENSORS + 5, LEN = 7, STRIDE = 8 };
    size_t total = (size_t)NT * STRIDE;
    cuda_optim_tensor ts[NT];
    float *p0 = host_rand(total, -1, 1), *g = host_rand(total, -1, 1);
    float *want = xmalloc(total * sizeof *want);
    double sq = 0;
    for (int t = 0; t < NT; t++) {
        ts[t] = (cuda_optim_tensor){.offset = (size_t)t * STRIDE, .n = LEN, .lr = 1e-3 * (1 + t % 5),
                                    .wd = t % 3 ? 0.01 : 0, .step = 1 + t % 4};
        for (int k = 0; k < LEN; k++)
            sq += (double)g[t * STRIDE + k] * g[t * STRIDE + k];
    }
    double norm = sqrt(sq), coef = 1.0 / (norm + 1e-6); /* max_norm 1 */
    memcpy(want, p0, total * sizeof *want);
    for (int t = 0; t < NT; t++)
        for (int k = 0; k < LEN; k++) {
            size_t i = ts[t].offset + k;
            double gi = (float)(g[i] * (float)coef), lr = ts[t].lr, st = ts[t].step;
            double avg = 0.1 * gi, sqr = 0.01 * gi * gi;
            double pi = p0[i] * (1 - lr * ts[t].wd);
            want[i] = (float)(pi - lr / (1 - pow(0.9, st)) * avg /
                                       (sqrt(sqr / (1 - pow(0.99, st))) + 1e-5));
        }
    float *dp = be_from(P.gpu, p0, total * 4), *dg = be_from(P.gpu, g, total * 4);
    float *davg = P.gpu->alloc(P.gpu, total * 4), *dsqr = P.gpu->alloc(P.gpu, total * 4);
    cuda_optim *o = NULL;
    CHECK_EQ_INT(0, cuda_optim_new(&o, nn_backend_cuda_ctx(P.gpu)));
    CHECK_NEAR(norm, cuda_optim_clip_grad_norm(o, dg, ts, NT, 1.0), 1e-12 * norm, 0);
    cuda_optim_adam_step(o, &(cuda_adam_args){.params = dp, .grads = dg, .avg = davg,
                                              .sqr = dsqr, .tensors = ts, .count = NT,
                                              .mom = 0.9, .sqr_mom = 0.99, .eps = 1e-5});
    float *got = be_to_host(P.gpu, dp, total);
    CHECK_ALLCLOSE(want, got, total, 2e-6, 1e-5); /* padding (k = LEN) stays p0 on both */
    cuda_optim_free(o);
    P.gpu->release(P.gpu, dp), P.gpu->release(P.gpu, dg);
    P.gpu->release(P.gpu, davg), P.gpu->release(P.gpu, dsqr);
    free(p0), free(g), free(want), free(got);
}

static void test_bad_input(void)
{
    nn_backend *be = (nn_backend *)1;
    int rc = nn_backend_cuda_new(&be, 9999);
    CHECK_EQ_INT(KF_EINVAL, rc);
    CHECK(be == NULL);
    CHECK(strstr(err_msg(), "9999") != NULL);
    fprintf(stderr, "  device 9999: %s\n", err_msg());
    CHECK(nn_backend_cuda_ctx(P.cpu) == NULL);
    CHECK(nn_backend_cuda_ctx(P.gpu) != NULL);
}

int main(void)
{
    gpu_pair_init(&P);
    test_memory();
    test_sgemm();
    test_dropout_mask();
    test_elementwise();
    test_embedding();
    test_lstm_cell();
    test_softmax_xent();
    test_reductions();
    test_optim();
    test_optim_many();
    test_bad_input();
    /* TF32 is a different precision class: only check that it runs and stays near FP32. */
    nn_backend_cuda_set_tf32(P.gpu, true);
    twin a = twin_rand(64 * 64, -1, 1), c = twin_rand(64 * 64, -1, 1);
    P.gpu->sgemm(P.gpu, false, false, 64, 64, 64, 1, a.g, 64, a.g, 64, 0, c.g, 64);
    P.cpu->sgemm(P.cpu, false, false, 64, 64, 64, 1, a.c, 64, a.c, 64, 0, c.c, 64);
    float *cc = be_to_host(P.cpu, c.c, 64 * 64), *cg = be_to_host(P.gpu, c.g, 64 * 64);
    CHECK_ALLCLOSE(cc, cg, 64 * 64, 1e-2 * max_abs(cc, 64 * 64), 1e-2);
    free(cc), free(cg);
    twin_free(a), twin_free(c);
    nn_backend_cuda_set_tf32(P.gpu, false);
    gpu_pair_dispose(&P);
    return test_done();
}
