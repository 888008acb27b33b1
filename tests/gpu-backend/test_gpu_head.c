/* test_gpu_head: the classifier head on the CUDA backend against the CPU backend.
 * 1. Each op of the head's table (head_kernels_cuda vs head_kernels_cpu) on the same random,
 *    non-zero inputs of odd sizes: masked concat pooling with pad masks of a different length
 *    per row (pad in front, at the end, both, a single kept step), BatchNorm1d in training and
 *    eval, ReLU (also in place), BCE sum and gradient; backward ops start from random gradients
 *    so accumulation is checked too; size-0 calls must be no-ops.
 * 2. The head alone (head_clf) on one encoder output uploaded to both backends: two training
 *    steps with fixed dropout masks, then eval; multi-label BCE and single-label CE.
 * 3. The whole classifier (head_textclf: SentenceEncoder over the AWD-LSTM encoder + head),
 *    training with FIXED masks written into both backends by a set_masks callback, four BPTT
 *    chunks (state carried, the first dropped by max_len), a batch whose real size changes per
 *    chunk; two training steps and an eval forward; multi-label and single-label.
 * Rule (gpu_pair.h): |gpu - cpu| <= 1e-5 * (|cpu| + max|cpu|) per tensor, NaN never passes; the
 * argmax indices must be equal; losses within 1e-5 relative. Every compared tensor prints a line
 * (name, size, scale, worst difference); a failure prints the worst index. Skips without a GPU.
 * KUBEFIT_GPU_HEAD_SELFTEST=1 runs it with a second CPU backend as the "GPU" (checks the test's
 * own plumbing on any machine; every difference is then 0).
 * Dimension legend: B batch, T time, E encoder output size, D layer features, L labels,
 * V vocab, H hidden, NL layers, S padded length. */
#include "classifier.h"
#include "gpu_pair.h"
#include "head_cuda.h"
#include "nn.h"
#include "sentence.h"
#include "textclf.h"

static gpu_pair P;
static const head_kernels *KC, *KG; /* CPU and CUDA tables */

/* ---- helpers ---- */

/* One host array uploaded to both backends. */
typedef struct twin {
    void *c, *g;
} twin;

static twin twin_from(const void *host, size_t bytes)
{
    return (twin){be_from(P.cpu, host, bytes), be_from(P.gpu, host, bytes)};
}

/* Zeroed backend memory on both backends. */
static twin twin_alloc(size_t bytes)
{
    twin t = {P.cpu->alloc(P.cpu, bytes), P.gpu->alloc(P.gpu, bytes)};
    if (!t.c || !t.g) {
        fprintf(stderr, "alloc of %zu bytes failed\n", bytes);
        exit(1);
    }
    return t;
}

/* n random floats in [lo,hi) on both backends. */
static twin twin_rand(size_t n, float lo, float hi)
{
    float *h = host_rand(n, lo, hi);
    twin t = twin_from(h, n * sizeof *h);
    free(h);
    return t;
}

static void twin_free(twin *t)
{
    P.cpu->release(P.cpu, t->c);
    P.gpu->release(P.gpu, t->g);
}

#define CHECK_TWIN(what, t, n) CHECK_PAIR((what), P.cpu, (const float *)(t).c, P.gpu, (const float *)(t).g, (n))

/* int32 tensors (argmax) must be equal. */
static void check_i32(const char *what, const int32_t *c, const int32_t *g, size_t n)
{
    int32_t *hc = xmalloc(n * sizeof *hc), *hg = xmalloc(n * sizeof *hg);
    P.cpu->download(P.cpu, hc, c, n * sizeof *hc);
    P.gpu->download(P.gpu, hg, g, n * sizeof *hg);
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++)
        if (hc[i] != hg[i] && !bad++)
            first = i;
    fprintf(stderr, "  %-28s n=%-8zu mismatches=%zu\n", what, n, bad);
    test_checks++;
    if (bad)
        TEST_FAIL_("%s: %zu of %zu differ, first [%zu]: cpu %d gpu %d", what, bad, n, first,
                   hc[first], hg[first]);
    free(hc);
    free(hg);
}

static void check_loss(const char *what, double c, double g)
{
    fprintf(stderr, "  %-28s cpu %.12g gpu %.12g\n", what, c, g);
    CHECK(isfinite(c) && isfinite(g));
    CHECK_NEAR(c, g, 1e-12, GPU_RTOL);
}

/* A fixed dropout mask value: 0 with probability p, else 1/(1-p), from a hash of (key, i). */
static float mask_value(uint64_t key, size_t i, float p)
{
    uint64_t z = key * 0x9e3779b97f4a7c15ull + i + 0x632be59bd9b4e019ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    double u = (double)(z >> 11) / (double)(1ull << 53);
    return p > 0 && u < p ? 0.0f : 1.0f / (1.0f - p);
}

/* Writes n mask values for key into backend memory dst. */
static void upload_mask(nn_backend *be, float *dst, size_t n, float p, uint64_t key)
{
    float *h = xmalloc(n * sizeof *h);
    for (size_t i = 0; i < n; i++)
        h[i] = mask_value(key, i, p);
    be->upload(be, dst, h, n * sizeof *h);
    free(h);
}

/* fastai's per-row numbers as head_clf computes them: len = non-pad count, last = T-1-(pads in
 * the last bptt positions). idx = last(B) then len(B). */
static void pool_indices(int32_t *idx, const uint8_t *pad, int B, int T, int bptt)
{
    int from = T > bptt ? T - bptt : 0;
    for (int b = 0; b < B; b++) {
        int n = 0, tail = 0;
        for (int t = 0; t < T; t++) {
            int p = pad[(size_t)b * T + t] != 0;
            n += !p;
            tail += p && t >= from;
        }
        idx[b] = T - 1 - tail;
        idx[B + b] = n;
    }
}

/* ---- 1. the kernels one by one ---- */

static void test_pool(void)
{
    enum { T = 13, B = 5, E = 37, BPTT = 6 };
    fprintf(stderr, "pool T %d B %d E %d\n", T, B, E);
    /* per row: leading pads, trailing pads (a different non-pad length per row) */
    static const int lead[B] = {0, 4, 0, 5, 7}, trail[B] = {0, 0, 3, 2, 5};
    uint8_t pad[B * T];
    int32_t idx[2 * B];
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            pad[b * T + t] = t < lead[b] || t >= T - trail[b];
    pool_indices(idx, pad, B, T, BPTT);
    twin tpad = twin_from(pad, sizeof pad), tidx = twin_from(idx, sizeof idx);
    twin enc = twin_rand((size_t)T * B * E, -2.0f, 2.0f);
    twin pooled = twin_rand((size_t)B * 3 * E, -1.0f, 1.0f); /* overwritten */
    twin argmax = twin_alloc((size_t)B * E * sizeof(int32_t));
    head_pool_dims dc = {.T = T, .B = B, .E = E, .pad = tpad.c, .last = tidx.c,
                         .len = (const int32_t *)tidx.c + B};
    head_pool_dims dg = {.T = T, .B = B, .E = E, .pad = tpad.g, .last = tidx.g,
                         .len = (const int32_t *)tidx.g + B};
    KC->pool_fwd(P.cpu, pooled.c, argmax.c, enc.c, &dc);
    KG->pool_fwd(P.gpu, pooled.g, argmax.g, enc.g, &dg);
    CHECK_TWIN("pool_fwd pooled", pooled, (size_t)B * 3 * E);
    check_i32("pool_fwd argmax", argmax.c, argmax.g, (size_t)B * E);

    twin denc = twin_rand((size_t)T * B * E, -1.0f, 1.0f); /* accumulated into */
    twin dpooled = twin_rand((size_t)B * 3 * E, -1.0f, 1.0f);
    KC->pool_bwd(P.cpu, denc.c, dpooled.c, argmax.c, &dc);
    KG->pool_bwd(P.gpu, denc.g, dpooled.g, argmax.g, &dg);
    CHECK_TWIN("pool_bwd denc (+=)", denc, (size_t)T * B * E);

    /* B == 0 queues nothing */
    head_pool_dims d0 = dg;
    d0.B = 0;
    KG->pool_fwd(P.gpu, pooled.g, argmax.g, enc.g, &d0);
    KG->pool_bwd(P.gpu, denc.g, dpooled.g, argmax.g, &d0);
    CHECK_TWIN("pool after B=0 calls", denc, (size_t)T * B * E);

    twin *all[] = {&tpad, &tidx, &enc, &pooled, &argmax, &denc, &dpooled};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        twin_free(all[i]);
}

static void test_bn(bool training)
{
    enum { B = 7, D = 53 };
    fprintf(stderr, "batchnorm B %d D %d %s\n", B, D, training ? "training" : "eval");
    /* features with their own offset and spread, as pooled encoder outputs have */
    float *hx = host_rand((size_t)B * D, -1.0f, 1.0f);
    for (int b = 0; b < B; b++)
        for (int f = 0; f < D; f++)
            hx[b * D + f] = hx[b * D + f] * (0.2f + 0.03f * f) + 0.01f * (f % 11) - 0.05f;
    twin x = twin_from(hx, (size_t)B * D * sizeof *hx);
    free(hx);
    twin gamma = twin_rand(D, 0.5f, 1.5f), beta = twin_rand(D, -0.5f, 0.5f);
    twin rmean = twin_rand(D, -0.2f, 0.2f), rvar = twin_rand(D, 0.5f, 1.5f);
    twin y = twin_rand((size_t)B * D, -1, 1), xhat = twin_rand((size_t)B * D, -1, 1);
    twin mean = twin_rand(D, -1, 1), rstd = twin_rand(D, -1, 1);
    head_bn_dims bd = {.B = B, .D = D, .eps = 1e-5f, .momentum = 0.1f, .training = training};
    KC->bn_fwd(P.cpu, y.c, xhat.c, mean.c, rstd.c, rmean.c, rvar.c, x.c, gamma.c, beta.c, &bd);
    KG->bn_fwd(P.gpu, y.g, xhat.g, mean.g, rstd.g, rmean.g, rvar.g, x.g, gamma.g, beta.g, &bd);
    CHECK_TWIN("bn_fwd y", y, (size_t)B * D);
    CHECK_TWIN("bn_fwd xhat", xhat, (size_t)B * D);
    CHECK_TWIN("bn_fwd mean", mean, D);
    CHECK_TWIN("bn_fwd rstd", rstd, D);
    CHECK_TWIN("bn_fwd running_mean", rmean, D);
    CHECK_TWIN("bn_fwd running_var", rvar, D);

    twin dy = twin_rand((size_t)B * D, -1, 1), dx = twin_rand((size_t)B * D, -1, 1);
    twin dgamma = twin_rand(D, -1, 1), dbeta = twin_rand(D, -1, 1);
    KC->bn_bwd(P.cpu, dx.c, dgamma.c, dbeta.c, dy.c, xhat.c, rstd.c, gamma.c, &bd);
    KG->bn_bwd(P.gpu, dx.g, dgamma.g, dbeta.g, dy.g, xhat.g, rstd.g, gamma.g, &bd);
    CHECK_TWIN("bn_bwd dx (+=)", dx, (size_t)B * D);
    CHECK_TWIN("bn_bwd dgamma (+=)", dgamma, D);
    CHECK_TWIN("bn_bwd dbeta (+=)", dbeta, D);

    twin *all[] = {&x, &gamma, &beta, &rmean, &rvar, &y, &xhat, &mean, &rstd,
                   &dy, &dx, &dgamma, &dbeta};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        twin_free(all[i]);
}

static void test_relu(void)
{
    const size_t n = 1001;
    fprintf(stderr, "relu n %zu\n", n);
    twin x = twin_rand(n, -1, 1), y = twin_rand(n, -1, 1);
    KC->relu_fwd(P.cpu, y.c, x.c, n);
    KG->relu_fwd(P.gpu, y.g, x.g, n);
    CHECK_TWIN("relu_fwd y", y, n);
    twin dy = twin_rand(n, -1, 1), dx = twin_rand(n, -1, 1);
    KC->relu_bwd(P.cpu, dx.c, dy.c, y.c, n);
    KG->relu_bwd(P.gpu, dx.g, dy.g, y.g, n);
    CHECK_TWIN("relu_bwd dx (+=)", dx, n);
    KC->relu_fwd(P.cpu, x.c, x.c, n); /* in place */
    KG->relu_fwd(P.gpu, x.g, x.g, n);
    CHECK_TWIN("relu_fwd in place", x, n);
    CHECK_TWIN("relu_fwd in place == y", ((twin){y.c, x.g}), n);
    KG->relu_fwd(P.gpu, y.g, x.g, 0);
    KG->relu_bwd(P.gpu, dx.g, dy.g, y.g, 0);
    CHECK_TWIN("relu after n=0 calls", dx, n);
    twin *all[] = {&x, &y, &dy, &dx};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        twin_free(all[i]);
}

static void test_bce(size_t n, float zmax)
{
    fprintf(stderr, "bce n %zu logits in [-%g,%g)\n", n, (double)zmax, (double)zmax);
    twin z = twin_rand(n, -zmax, zmax);
    float *hy = host_rand(n, 0.0f, 1.0f);
    for (size_t i = 0; i < n; i += 5)
        hy[i] = (float)(i / 5 % 2); /* hard 0/1 targets too */
    twin y = twin_from(hy, n * sizeof *hy);
    free(hy);
    check_loss("bce_sum", KC->bce_sum(P.cpu, z.c, y.c, n), KG->bce_sum(P.gpu, z.g, y.g, n));
    twin dz = twin_rand(n, -1, 1);
    KC->bce_bwd(P.cpu, dz.c, z.c, y.c, 0.37f, n);
    KG->bce_bwd(P.gpu, dz.g, z.g, y.g, 0.37f, n);
    CHECK_TWIN("bce_bwd dlogits (+=)", dz, n);
    CHECK(KG->bce_sum(P.gpu, z.g, y.g, 0) == 0.0);
    KG->bce_bwd(P.gpu, dz.g, z.g, y.g, 0.37f, 0);
    CHECK_TWIN("bce after n=0 calls", dz, n);
    twin_free(&z), twin_free(&y), twin_free(&dz);
}

/* ---- 2. the head alone on one encoder output ---- */

/* Head masks for one training step (every block), the same on both heads. */
static void upload_head_masks(nn_backend *be, head_clf *c, int B, uint64_t step)
{
    const head_config *hc = head_clf_config(c);
    for (int k = 0; k < hc->n_blocks; k++)
        upload_mask(be, head_clf_acts(c, k)->mask, (size_t)B * hc->dims[k], hc->ps[k],
                    0x4845414400ull + step * 16 + (uint64_t)k);
}

/* Copies the CPU head's parameters and running statistics into the GPU head. */
static void sync_head(head_clf *cc, head_clf *cg)
{
    size_t np = head_num_params(cc), nb = head_num_buffers(cc);
    CHECK_PAIR("head params after init", P.cpu, head_params(cc), P.gpu, head_params(cg), np);
    float *h = be_to_host(P.cpu, head_params(cc), np);
    P.gpu->upload(P.gpu, head_params(cg), h, np * sizeof *h);
    free(h);
    h = be_to_host(P.cpu, head_buffers(cc), nb);
    P.gpu->upload(P.gpu, head_buffers(cg), h, nb * sizeof *h);
    free(h);
}

/* Activations of the last forward, block by block. */
static void compare_head_acts(head_clf *cc, head_clf *cg, int B, bool training)
{
    const head_config *hc = head_clf_config(cc);
    char what[64];
    CHECK_PAIR("pooled", P.cpu, head_clf_pooled(cc), P.gpu, head_clf_pooled(cg),
               (size_t)B * hc->dims[0]);
    check_i32("argmax", head_clf_argmax(cc), head_clf_argmax(cg), (size_t)B * hc->emb);
    for (int k = 0; k < hc->n_blocks; k++) {
        const head_block_acts *ac = head_clf_acts(cc, k), *ag = head_clf_acts(cg, k);
        size_t n = (size_t)B * hc->dims[k], D = (size_t)hc->dims[k];
        snprintf(what, sizeof what, "block %d xhat", k);
        CHECK_PAIR(what, P.cpu, ac->xhat, P.gpu, ag->xhat, n);
        snprintf(what, sizeof what, "block %d mean", k);
        CHECK_PAIR(what, P.cpu, ac->mean, P.gpu, ag->mean, D);
        snprintf(what, sizeof what, "block %d rstd", k);
        CHECK_PAIR(what, P.cpu, ac->rstd, P.gpu, ag->rstd, D);
        if (training) {
            snprintf(what, sizeof what, "block %d mask", k);
            CHECK_PAIR(what, P.cpu, ac->mask, P.gpu, ag->mask, n);
        }
        snprintf(what, sizeof what, "block %d drop", k);
        CHECK_PAIR(what, P.cpu, ac->drop, P.gpu, ag->drop, n);
        snprintf(what, sizeof what, "block %d out", k);
        CHECK_PAIR(what, P.cpu, ac->out, P.gpu, ag->out, (size_t)B * hc->dims[k + 1]);
    }
    CHECK_PAIR("running stats", P.cpu, head_buffers(cc), P.gpu, head_buffers(cg),
               head_num_buffers(cc));
}

/* How much training BatchNorm amplifies a relative difference of its input, per block:
 * max over features of max|x| / std (std = 1/rstd, so this is max|x| * rstd). Informational: a
 * feature whose batch spread is near eps turns float32 rounding of the encoder (which differs
 * between cuBLAS and OpenBLAS) into large relative differences, and the inputs here are chosen
 * to keep it moderate. */
static void print_bn_condition(head_clf *cc, int B)
{
    const head_config *hc = head_clf_config(cc);
    for (int k = 0; k < hc->n_blocks; k++) {
        size_t D = (size_t)hc->dims[k];
        float *x = be_to_host(P.cpu, k ? head_clf_acts(cc, k - 1)->out : head_clf_pooled(cc),
                              (size_t)B * D);
        float *rs = be_to_host(P.cpu, head_clf_acts(cc, k)->rstd, D);
        double worst = 0, scale = max_abs(x, (size_t)B * D), rs_max = max_abs(rs, D);
        for (size_t f = 0; f < D; f++)
            for (int b = 0; b < B; b++)
                worst = fmax(worst, fabs(x[(size_t)b * D + f]) * rs[f]);
        fprintf(stderr, "  block %d BatchNorm input: max|x|/std %.3g, max|x| over the tensor / min std %.3g\n",
                k, worst, scale * rs_max);
        free(x);
        free(rs);
    }
}

static void compare_head_grads(head_clf *cc, head_clf *cg)
{
    const nn_tensor *ts = head_tensors(cc);
    for (int i = 0; i < head_tensor_count(cc); i++)
        CHECK_PAIR(ts[i].name, P.cpu, head_grads(cc) + ts[i].offset, P.gpu,
                   head_grads(cg) + ts[i].offset, ts[i].numel);
}

/* Targets: multi-label (B,L) in [0,1] with hard 0/1 entries, single-label classes. */
static void make_targets(float *multi, int32_t *single, int B, int L)
{
    for (int i = 0; i < B * L; i++)
        multi[i] = i % 3 == 0 ? (float)(i / 3 % 2) : rnd(0.0f, 1.0f);
    for (int b = 0; b < B; b++)
        single[b] = (b * 7 + 3) % L;
}

static void test_head_alone(bool multi)
{
    enum { T = 11, B = 6, E = 14, L = 5, LIN = 19, BPTT = 4 };
    fprintf(stderr, "head alone T %d B %d E %d [%d,%d,%d] %s\n", T, B, E, 3 * E, LIN, L,
            multi ? "multi-label BCE" : "single-label CE");
    head_config hc = head_config_default(E, L, multi, 1.0f);
    hc.dims[1] = LIN, hc.bptt = BPTT;
    head_clf *cc = NULL, *cg = NULL;
    if (head_clf_new(&cc, &hc, P.cpu, NULL, B) || head_clf_new(&cg, &hc, P.gpu, NULL, B) ||
        head_clf_init(cc, 5) || head_clf_init(cg, 5)) {
        TEST_FAIL_("head: %s", err_msg());
        goto done;
    }
    sync_head(cc, cg);
    static const int lead[B] = {0, 0, 4, 4, 8, 8}, trail[B] = {0, 2, 1, 3, 0, 2};
    uint8_t pad[B * T];
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            pad[b * T + t] = t < lead[b] || t >= T - trail[b];
    twin enc = twin_rand((size_t)T * B * E, -1.0f, 1.0f);
    float ym[B * L];
    int32_t ys[B];
    make_targets(ym, ys, B, L);
    head_targets y = {.multi = multi ? ym : NULL, .single = multi ? NULL : ys};
    for (int step = 0; step < 3; step++) {
        bool training = step < 2;
        fprintf(stderr, " step %d (%s)\n", step, training ? "training" : "eval");
        if (training) {
            upload_head_masks(P.cpu, cc, B, (uint64_t)step);
            upload_head_masks(P.gpu, cg, B, (uint64_t)step);
        }
        CHECK_EQ_INT(0, head_clf_forward(cc, enc.c, pad, B, T, training));
        CHECK_EQ_INT(0, head_clf_forward(cg, enc.g, pad, B, T, training));
        compare_head_acts(cc, cg, B, training);
        double lc = 0, lg = 0;
        CHECK_EQ_INT(0, head_clf_loss(cc, &lc, &y, 1.0f));
        CHECK_EQ_INT(0, head_clf_loss(cg, &lg, &y, 1.0f));
        check_loss("loss", lc, lg);
        CHECK_PAIR("dlogits", P.cpu, head_clf_dlogits(cc), P.gpu, head_clf_dlogits(cg),
                   (size_t)B * L);
        if (!training)
            continue;
        twin denc = twin_rand((size_t)T * B * E, -0.1f, 0.1f); /* accumulated into */
        if (step == 0)
            head_zero_grad(cc), head_zero_grad(cg); /* step 1 accumulates on top */
        CHECK_EQ_INT(0, head_clf_backward(cc, denc.c));
        CHECK_EQ_INT(0, head_clf_backward(cg, denc.g));
        compare_head_grads(cc, cg);
        CHECK_TWIN("d_enc (+=)", denc, (size_t)T * B * E);
        twin_free(&denc);
    }
    twin_free(&enc);
done:
    head_clf_free(cc);
    head_clf_free(cg);
}

/* ---- 3. the whole classifier ---- */

/* Encoder weights: fastai's init with the embedding x10 and the LSTM x2, so that the rows' encoder
 * outputs differ more and the pooled features' batch spread stays well above BatchNorm's eps
 * (print_bn_condition: max|x|/min std about 20 instead of about 40). */
#define EMB_SCALE 10.0f
#define LSTM_SCALE 2.0f
enum { TV = 97, TE = 20, TH = 36, TNL = 3, TB = 10, TS = 17, TBPTT = 5, TMAXLEN = 12, TLIN = 23 };

typedef struct mask_ctx {
    const nn_config *nc;
    uint64_t step;
} mask_ctx;

/* set_masks callback: fixed masks from (step, chunk, tensor), identical on both backends. */
static void set_masks(void *ctx, nn_model *m, nn_acts *a, int chunk, int b)
{
    const mask_ctx *mc = ctx;
    const nn_config *nc = mc->nc;
    nn_backend *be = nn_model_backend(m);
    uint64_t key = (mc->step * 64 + (uint64_t)chunk) * 64;
    upload_mask(be, a->mask_emb, (size_t)nc->vocab, nc->embed_p, key);
    upload_mask(be, a->mask_in, (size_t)b * nc->emb, nc->input_p, key + 1);
    for (int l = 0; l < nc->layers; l++) {
        size_t hl = (size_t)(l < nc->layers - 1 ? nc->hidden : nc->emb);
        upload_mask(be, a->layer[l].mask_w, 4 * hl * hl, nc->weight_p, key + 2 + 2 * l);
        if (l < nc->layers - 1)
            upload_mask(be, a->layer[l].mask_h, (size_t)b * hl, nc->hidden_p, key + 3 + 2 * l);
    }
    a->training = true;
}

/* Pad-first batch as fastai's pad_input_chunk(seq_len=bptt): whole bptt chunks of pad in front,
 * the rest at the end; rows longest first, so the real batch grows and shrinks per chunk. */
static void make_tokens(int32_t *tok)
{
    static const int len[TB] = {TS, 16, 15, 12, 11, 9, 8, 6, 4, 3};
    uint32_t s = 11;
    for (int b = 0; b < TB; b++) {
        int pads = TS - len[b], front = pads / TBPTT * TBPTT;
        for (int t = 0; t < TS; t++) {
            s = s * 1664525u + 1013904223u;
            bool is_pad = t < front || t >= front + len[b];
            tok[b * TS + t] = is_pad ? 1 : 2 + (int32_t)((s >> 8) % (TV - 2));
        }
    }
}

static void compare_textclf_grads(head_textclf *tc, head_textclf *tg)
{
    const head_param *pc = head_textclf_params(tc), *pg = head_textclf_params(tg);
    CHECK_EQ_INT(head_textclf_param_count(tc), head_textclf_param_count(tg));
    for (int i = 0; i < head_textclf_param_count(tc); i++) {
        char what[160];
        snprintf(what, sizeof what, "%s %s", pc[i].buffer ? "buf" : "grad", pc[i].name);
        CHECK_PAIR(what, P.cpu, pc[i].buffer ? pc[i].param : pc[i].grad, P.gpu,
                   pg[i].buffer ? pg[i].param : pg[i].grad, pc[i].numel);
    }
}

static void test_textclf(bool multi)
{
    const int L = multi ? 5 : 4;
    fprintf(stderr, "classifier V %d E %d H %d NL %d B %d S %d bptt %d max_len %d %s\n", TV, TE,
            TH, TNL, TB, TS, TBPTT, TMAXLEN, multi ? "multi-label BCE" : "single-label CE");
    nn_config nc = nn_config_clas(TV, 1.0f);
    nc.emb = TE, nc.hidden = TH, nc.layers = TNL, nc.pad_token = 1;
    head_config hc = head_config_default(TE, L, multi, 1.0f);
    hc.dims[1] = TLIN, hc.bptt = TBPTT;
    head_sentence_config sc = head_sentence_config_default();
    sc.bptt = TBPTT, sc.max_len = TMAXLEN, sc.pad_token = 1;
    nn_model *mc = NULL, *mg = NULL;
    head_clf *cc = NULL, *cg = NULL;
    head_textclf *tc = NULL, *tg = NULL;
    if (nn_model_new(&mc, &nc, P.cpu) || nn_model_new(&mg, &nc, P.gpu) ||
        nn_model_init(mc, 42) || nn_model_init(mg, 42) ||
        head_clf_new(&cc, &hc, P.cpu, NULL, TB) || head_clf_new(&cg, &hc, P.gpu, NULL, TB) ||
        head_clf_init(cc, 9) || head_clf_init(cg, 9) ||
        head_textclf_new(&tc, mc, cc, &sc, TB) || head_textclf_new(&tg, mg, cg, &sc, TB)) {
        TEST_FAIL_("classifier: %s", err_msg());
        goto done;
    }
    size_t np = nn_num_params(mc);
    CHECK_PAIR("encoder params after init", P.cpu, nn_params(mc), P.gpu, nn_params(mg), np);
    /* the scaled weights (EMB_SCALE, LSTM_SCALE): both models get the same block */
    float *h = be_to_host(P.cpu, nn_params(mc), np);
    const nn_tensor *emb = &nn_tensors(mc)[0];
    CHECK_EQ_STR("0.encoder.weight", emb->name);
    for (size_t i = 0; i < emb->numel; i++)
        h[emb->offset + i] *= EMB_SCALE;
    for (size_t i = emb->offset + emb->numel; i < np; i++)
        h[i] *= LSTM_SCALE;
    P.cpu->upload(P.cpu, nn_params(mc), h, np * sizeof *h);
    P.gpu->upload(P.gpu, nn_params(mg), h, np * sizeof *h);
    free(h);
    sync_head(cc, cg);

    int32_t tok[TB * TS];
    make_tokens(tok);
    float ym[TB * 5];
    int32_t ys[TB];
    make_targets(ym, ys, TB, L);
    head_targets y = {.multi = multi ? ym : NULL, .single = multi ? NULL : ys};
    for (int step = 0; step < 3; step++) {
        bool training = step < 2;
        fprintf(stderr, " step %d (%s)\n", step, training ? "training" : "eval");
        mask_ctx mctx = {.nc = &nc, .step = (uint64_t)step};
        head_forward_opts fo = {.training = training, .set_masks = set_masks, .ctx = &mctx};
        if (training) {
            upload_head_masks(P.cpu, cc, TB, (uint64_t)step + 100);
            upload_head_masks(P.gpu, cg, TB, (uint64_t)step + 100);
        }
        head_textclf_zero_grad(tc), head_textclf_zero_grad(tg);
        CHECK_EQ_INT(0, head_textclf_forward(tc, tok, TB, TS, &fo));
        CHECK_EQ_INT(0, head_textclf_forward(tg, tok, TB, TS, &fo));
        int T = 0, Tg = 0;
        const float *ec = head_sentence_output(head_textclf_sentence(tc), &T);
        const float *eg = head_sentence_output(head_textclf_sentence(tg), &Tg);
        CHECK_EQ_INT(T, Tg);
        CHECK_EQ_INT(TS - TBPTT, T); /* max_len dropped the first chunk */
        CHECK_PAIR("encoder output", P.cpu, ec, P.gpu, eg, (size_t)T * TB * TE);
        if (training)
            print_bn_condition(cc, TB);
        compare_head_acts(cc, cg, TB, training);
        CHECK_PAIR("logits", P.cpu, head_textclf_logits(tc), P.gpu, head_textclf_logits(tg),
                   (size_t)TB * L);
        head_losses lc = {0}, lg = {0};
        CHECK_EQ_INT(0, head_textclf_loss(tc, &lc, &y));
        CHECK_EQ_INT(0, head_textclf_loss(tg, &lg, &y));
        check_loss("task loss", lc.task, lg.task);
        check_loss("AR+TAR", lc.reg, lg.reg);
        check_loss("total loss", lc.total, lg.total);
        CHECK(training ? lc.reg > 0 : lc.reg == 0);
        if (!training)
            continue;
        CHECK_EQ_INT(0, head_textclf_backward(tc));
        CHECK_EQ_INT(0, head_textclf_backward(tg));
        CHECK_PAIR("d_enc (head + AR/TAR)", P.cpu, head_sentence_dout(head_textclf_sentence(tc)),
                   P.gpu, head_sentence_dout(head_textclf_sentence(tg)), (size_t)T * TB * TE);
        compare_textclf_grads(tc, tg);
    }
done:
    head_textclf_free(tc), head_textclf_free(tg);
    head_clf_free(cc), head_clf_free(cg);
    nn_model_free(mc), nn_model_free(mg);
}

int main(void)
{
    KC = head_kernels_cpu();
    if (getenv("KUBEFIT_GPU_HEAD_SELFTEST")) {
        /* checks this test without a GPU: a second CPU backend (1 thread) stands in for it */
        fprintf(stderr, "SELFTEST: the GPU side is a CPU backend with the CPU head kernels\n");
        if (nn_backend_cpu_new(&P.cpu, 2) < 0 || nn_backend_cpu_new(&P.gpu, 1) < 0) {
            fprintf(stderr, "backend: %s\n", err_msg());
            return 1;
        }
        KG = KC;
    } else {
        gpu_pair_init(&P);
        KG = head_kernels_cuda();
        /* the CUDA backend carries its head table; head_clf_new(..., NULL, ...) picks it */
        CHECK(P.gpu->head == KG);
    }
    CHECK(P.cpu->head == NULL);
    test_pool();
    test_bn(true);
    test_bn(false);
    test_relu();
    test_bce(777, 30.0f);
    test_bce(300001, 8.0f); /* more blocks than bce_sum's partials */
    test_head_alone(true);
    test_head_alone(false);
    test_textclf(true);
    test_textclf(false);
    gpu_pair_dispose(&P);
    return test_done();
}
