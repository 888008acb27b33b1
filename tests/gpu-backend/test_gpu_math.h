/* test_gpu_math.h: the LM-step comparison behind the TF32/BF16 bounds, shared by
 * test_gpu_math (CUDA backend in TF32/BF16 against the CPU backend in FP32) and
 * test_gpu_math_emu (the CPU backend with the operands of every product rounded the way the
 * tensor cores round them, against the plain CPU backend: checks the same bounds without a GPU).
 *
 * Bound, per element of every compared tensor (activations, probabilities, every gradient):
 *   |got - ref| <= MATH_GROWTH * u * (|ref| + max|ref| over the tensor)
 * u is the unit roundoff of the operands' format (TF32 2^-11, BF16 2^-8; nn_math_unit_roundoff).
 * A product of K terms whose operands are rounded with relative error <= u has a relative error
 * of about 2u against the tensor's scale for random signs (each factor is off by <= u; sums of
 * independent roundings grow like sqrt(K) as does the scale itself); the LM step chains 3 LSTM
 * layers x T steps forward and the same backward, each passing on the error through the gates
 * (sigmoid/tanh slopes <= 1) and adding its own. MATH_GROWTH = 32 allows ~2u per product over
 * a chain of ~16 products of the error before the scale; test_gpu_math_emu measures the real
 * factor with truncation (worst case: error up to 2u per operand) and fails if it ever comes
 * within 2x of the bound. The cross-entropy is compared with the same u: |ce - ref| <= G u |ref|.
 * NaN never passes. The same run must also differ from the FP32 reference by more than
 * MATH_VISIBLE * u somewhere: a mode that silently stayed FP32 fails.
 *
 * Dimension legend: V vocab, E emb, H hidden, NL layers, B batch, T time. */
#ifndef KUBEFIT_TEST_GPU_MATH_H
#define KUBEFIT_TEST_GPU_MATH_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend.h"
#include "err.h"
#include "nn.h"
#include "test.h"

#define MATH_GROWTH 32.0  /* growth factor on u (see above) */
#define MATH_VISIBLE 0.05 /* the largest deviation must exceed this many u: the mode is on */

enum { MV = 509, ME = 48, MH = 80, MNL = 3, MB = 8, MT = 12, MCHUNKS = 2 };

typedef struct math_stats {
    double worst;        /* max over tensors of max|got-ref| / (|ref| + max|ref|), in units of u */
    const char *where;   /* the tensor it came from */
    int tensors;
} math_stats;

static void math_random_ids(int32_t *ids, size_t n, uint32_t *s)
{
    for (size_t i = 0; i < n; i++) {
        *s = *s * 1664525u + 1013904223u;
        ids[i] = (int32_t)((*s >> 8) % MV);
    }
}

static float *math_download(nn_backend *be, const float *d, size_t n)
{
    float *h = malloc((n ? n : 1) * sizeof *h);
    if (!h) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    be->download(be, h, d, n * sizeof *h);
    return h;
}

/* Compares one tensor under the bound; records the worst ratio; prints one line. */
static void math_compare(math_stats *st, const char *what, nn_backend *rb, const float *r_dev,
                         nn_backend *gb, const float *g_dev, size_t n, double u)
{
    float *r = math_download(rb, r_dev, n), *g = math_download(gb, g_dev, n);
    double scale = 0, worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs((double)r[i]));
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)g[i] - (double)r[i]) / (fabs((double)r[i]) + scale);
        if (!(d <= worst)) { /* NaN lands here and stays the worst */
            worst = isnan(d) ? INFINITY : d;
            at = i;
        }
    }
    if (scale == 0)
        worst = 0, at = 0;
    fprintf(stderr, "  %-30s n=%-7zu max|ref|=%-10.4g worst %.3g u at [%zu] (ref %.7g got %.7g)\n",
            what, n, scale, worst / u, at, n ? r[at] : 0.0, n ? g[at] : 0.0);
    test_checks++;
    if (!(worst <= MATH_GROWTH * u) || scale == 0)
        TEST_FAIL_("%s: worst |got-ref|/(|ref|+max|ref|) = %.3g u at [%zu] (ref %.9g, got %.9g), "
                   "bound %.0f u%s", what, worst / u, at, n ? r[at] : 0.0, n ? g[at] : 0.0,
                   MATH_GROWTH, scale == 0 ? " (reference all zero: the test cannot fail)" : "");
    if (!(worst / u <= st->worst)) {
        st->worst = worst / u;
        st->where = what;
    }
    st->tensors++;
    free(r);
    free(g);
}

/* The LM step (MCHUNKS training chunks with carried state: masks, forward with AR/TAR, backward)
 * on rb (the FP32 reference) and gb (the mode under test, unit roundoff u); both models start
 * from the same parameters and draw the same masks. expect_visible: also fail when the worst
 * deviation stays below MATH_VISIBLE u (the mode under test is not reduced precision). */
static void math_lm_step(math_stats *st, nn_backend *rb, nn_backend *gb, double u,
                         bool expect_visible)
{
    static char names[64][48];
    int nn_names = 0;
    nn_config cfg = nn_config_lm(MV, 1.0f);
    cfg.emb = ME, cfg.hidden = MH, cfg.layers = MNL;
    nn_model *mr = NULL, *mg = NULL;
    nn_acts *ar = NULL, *ag = NULL;
    if (nn_model_new(&mr, &cfg, rb) || nn_model_new(&mg, &cfg, gb) ||
        nn_acts_new(&ar, mr, MB, MT, NN_ACTS_DECODER) ||
        nn_acts_new(&ag, mg, MB, MT, NN_ACTS_DECODER)) {
        fprintf(stderr, "model: %s\n", err_msg());
        exit(1);
    }
    size_t np = nn_num_params(mr);
    CHECK_EQ_INT(0, nn_model_init(mr, 4242));
    float *host = math_download(rb, nn_params(mr), np);
    gb->upload(gb, nn_params(mg), host, np * sizeof *host);
    free(host);
    nn_reset(mg);
    int32_t x[MB * MT], y[MB * MT];
    uint32_t s = 99;
    *st = (math_stats){0};
    for (int chunk = 0; chunk < MCHUNKS; chunk++) {
        math_random_ids(x, (size_t)MB * MT, &s);
        math_random_ids(y, (size_t)MB * MT, &s);
        nn_masks_sample(mr, ar, 77, (uint64_t)chunk);
        nn_masks_sample(mg, ag, 77, (uint64_t)chunk);
        nn_lm_loss lr, lg;
        CHECK_EQ_INT(0, nn_lm_forward(mr, ar, x, y, MB, MT, &lr));
        CHECK_EQ_INT(0, nn_lm_forward(mg, ag, x, y, MB, MT, &lg));
        fprintf(stderr, " chunk %d: ce ref %.9g got %.9g (%.3g u); ar %.6g/%.6g tar %.6g/%.6g\n",
                chunk, lr.ce, lg.ce, fabs(lg.ce - lr.ce) / fabs(lr.ce) / u, lr.ar, lg.ar, lr.tar,
                lg.tar);
        CHECK(isfinite(lg.ce) && isfinite(lg.total));
        CHECK_NEAR(lr.ce, lg.ce, 0, MATH_GROWTH * u);
        CHECK_NEAR(lr.total, lg.total, 0, MATH_GROWTH * u);
        size_t n = (size_t)MB * MT;
        for (int l = 0; l < MNL; l++) {
            int Hl = l == MNL - 1 ? ME : MH;
            snprintf(names[nn_names], sizeof names[0], "chunk %d layer %d h", chunk, l);
            math_compare(st, names[nn_names++], rb, ar->layer[l].h, gb, ag->layer[l].h,
                         (n + MB) * Hl, u);
            snprintf(names[nn_names], sizeof names[0], "chunk %d layer %d c", chunk, l);
            math_compare(st, names[nn_names++], rb, ar->layer[l].c, gb, ag->layer[l].c,
                         (n + MB) * Hl, u);
        }
        snprintf(names[nn_names], sizeof names[0], "chunk %d probs", chunk);
        math_compare(st, names[nn_names++], rb, ar->logits, gb, ag->logits, n * MV, u);
        nn_zero_grad(mr), nn_zero_grad(mg);
        CHECK_EQ_INT(0, nn_lm_backward(mr, ar));
        CHECK_EQ_INT(0, nn_lm_backward(mg, ag));
        const nn_tensor *ts = nn_tensors(mr);
        for (int k = 0; k < nn_tensor_count(mr) && nn_names < 64; k++) {
            snprintf(names[nn_names], sizeof names[0], "chunk %d d %s", chunk, ts[k].name);
            math_compare(st, names[nn_names++], rb, nn_grads(mr) + ts[k].offset, gb,
                         nn_grads(mg) + ts[k].offset, ts[k].numel, u);
        }
    }
    fprintf(stderr, " worst %.3g u (%s) over %d tensors; bound %.0f u, visible above %.2g u\n",
            st->worst, st->where ? st->where : "-", st->tensors, MATH_GROWTH, MATH_VISIBLE);
    /* the mode must show: FP32 on both sides would stay near 2^-24 / u */
    test_checks++;
    if (expect_visible && !(st->worst > MATH_VISIBLE))
        TEST_FAIL_("the largest deviation is %.3g u <= %.2g u: the reduced-precision mode does "
                   "not seem to be on", st->worst, MATH_VISIBLE);
    nn_acts_free(mr, ar), nn_acts_free(mg, ag);
    nn_model_free(mr), nn_model_free(mg);
}

#endif
