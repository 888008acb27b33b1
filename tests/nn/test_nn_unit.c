/* test_nn_unit: the AWD-LSTM pieces without PyTorch - central finite differences of each
 * backend op and of the total LM loss (CE + AR + TAR, with dropout masks) against the analytic
 * gradient of every parameter, the dropout mask generator, the carried hidden state, the tensor
 * table, 1 vs 4 threads, and bad input. */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "nn.h"
#include "test.h"

enum { V = 11, E = 5, H = 6, NL = 3, B = 3, T = 4 };

static nn_config small_config(void)
{
    nn_config c = nn_config_lm(V, 1.0f);
    c.emb = E, c.hidden = H, c.layers = NL;
    c.embed_p = 0.2f, c.input_p = 0.3f, c.hidden_p = 0.25f, c.weight_p = 0.3f, c.output_p = 0.2f;
    return c;
}

static void random_ids(int32_t *x, size_t n, uint32_t *state)
{
    for (size_t i = 0; i < n; i++) {
        *state = *state * 1664525u + 1013904223u;
        x[i] = (int32_t)((*state >> 8) % V);
    }
}

/* Loss of one training forward whose carried state comes from a warm-up chunk run with the
 * unperturbed parameter (*p = keep): the state is detached, so the finite difference must hold it
 * fixed. Then *p = value for the measured chunk. */
static double loss_at(nn_model *m, nn_acts *a, const int32_t *x0, const int32_t *x,
                      const int32_t *y, float *p, float keep, float value)
{
    nn_lm_loss l;
    *p = keep;
    nn_reset(m);
    nn_masks_sample(m, a, 7, 0);
    CHECK_EQ_INT(0, nn_lm_forward(m, a, x0, y, B, T, &l));
    *p = value;
    nn_masks_sample(m, a, 7, 1);
    CHECK_EQ_INT(0, nn_lm_forward(m, a, x, y, B, T, &l));
    *p = keep;
    return l.total;
}

static void test_gradients(nn_backend *be)
{
    nn_config c = small_config();
    nn_model *m = NULL;
    nn_acts *a = NULL;
    int32_t x0[B * T], x[B * T], y[B * T];
    uint32_t st = 42;
    CHECK_EQ_INT(0, nn_model_new(&m, &c, be));
    CHECK_EQ_INT(0, nn_acts_new(&a, m, B, T, NN_ACTS_DECODER));
    if (!m || !a)
        goto done;
    nn_model_init(m, 3);
    /* Larger weights than the default init so every gate is far from linear. */
    for (size_t i = 0; i < nn_num_params(m); i++)
        nn_params(m)[i] *= 4.0f;
    for (int i = 0; i < V; i++)
        nn_model_weights(m)->dec_bias[i] = 0.05f * (float)(i % 5) - 0.1f;
    random_ids(x0, B * T, &st);
    random_ids(x, B * T, &st);
    random_ids(y, B * T, &st);
    x[1] = c.pad_token;

    float *p0 = nn_params(m);
    double l0 = loss_at(m, a, x0, x, y, p0, *p0, *p0);
    CHECK(l0 > 0);
    nn_zero_grad(m);
    CHECK_EQ_INT(0, nn_lm_backward(m, a));
    size_t n = nn_num_params(m);
    float *grad = malloc(n * sizeof *grad);
    memcpy(grad, nn_grads(m), n * sizeof *grad);

    /* Central differences in float32 parameters, loss summed in double: eps 1e-2 keeps the
     * rounding error (~1e-7/eps) and the truncation error (~eps^2) near 1e-5 (seen: 3.1e-5). */
    const float eps = 1e-2f;
    int checked = 0, bad = 0;
    double worst = 0, gmax = 0;
    const nn_tensor *ts = nn_tensors(m);
    for (int k = 0; k < nn_tensor_count(m); k++) {
        for (size_t j = 0; j < ts[k].numel; j++) {
            float *p = nn_params(m) + ts[k].offset + j, keep = *p;
            double lp = loss_at(m, a, x0, x, y, p, keep, keep + eps);
            double lm = loss_at(m, a, x0, x, y, p, keep, keep - eps);
            double fd = (lp - lm) / (2.0 * eps), an = grad[ts[k].offset + j];
            checked++;
            worst = fabs(fd - an) > worst ? fabs(fd - an) : worst;
            gmax = fabs(an) > gmax ? fabs(an) : gmax;
            if (!(fabs(fd - an) <= 1e-4 + 5e-3 * fabs(fd))) {
                if (bad++ < 5)
                    TEST_FAIL_("%s[%zu]: finite difference %.7g, backward %.7g", ts[k].name, j,
                               fd, an);
            }
        }
    }
    fprintf(stderr, "finite differences: %d parameters, max|grad| %.3g, max|fd - grad| %.3g\n",
            checked, gmax, worst);
    CHECK_EQ_INT(0, bad);
    CHECK(checked > 500); /* every parameter of every tensor was perturbed */
    /* The pad row gets gradient only from the decoder use; it is not zero. */
    CHECK(grad[ts[0].offset + (size_t)c.pad_token * E] != 0.0f);
    free(grad);
done:
    nn_acts_free(m, a);
    nn_model_free(m);
}

static void test_masks(nn_backend *be)
{
    enum { N = 200000 };
    float *m1 = be->alloc(be, N * sizeof(float)), *m2 = be->alloc(be, N * sizeof(float));
    be->dropout_mask(be, m1, N, 0.25f, 9, 3);
    be->dropout_mask(be, m2, N, 0.25f, 9, 3);
    CHECK(memcmp(m1, m2, N * sizeof(float)) == 0); /* deterministic */
    size_t zeros = 0, other = 0;
    for (size_t i = 0; i < N; i++) {
        zeros += m1[i] == 0.0f;
        other += m1[i] != 0.0f && m1[i] != 1.0f / 0.75f;
    }
    CHECK_EQ_INT(0, other);
    CHECK_NEAR(0.25, (double)zeros / N, 0.005, 0); /* ~11 sigma of a binomial(200000, .25) */
    be->dropout_mask(be, m2, N, 0.25f, 9, 4);
    CHECK(memcmp(m1, m2, N * sizeof(float)) != 0); /* another stream differs */
    be->dropout_mask(be, m2, N, 0.0f, 9, 4);
    CHECK_EQ_INT(1, m2[0] == 1.0f && m2[N - 1] == 1.0f);
    be->release(be, m1);
    be->release(be, m2);
}

static void test_state_and_errors(nn_backend *be)
{
    nn_config c = small_config();
    nn_model *m = NULL;
    nn_acts *a = NULL;
    int32_t x[B * T], y[B * T];
    uint32_t st = 5;
    nn_lm_loss l1, l2;
    CHECK_EQ_INT(0, nn_model_new(&m, &c, be));
    CHECK_EQ_INT(0, nn_acts_new(&a, m, B, T, NN_ACTS_DECODER));
    if (!m || !a)
        goto done;
    nn_model_init(m, 11);
    random_ids(x, B * T, &st);
    random_ids(y, B * T, &st);

    /* Eval: same state -> same loss; carried state changes the next chunk. */
    a->training = false;
    CHECK_EQ_INT(0, nn_lm_forward(m, a, x, y, B, T, &l1));
    CHECK_EQ_INT(0, nn_lm_forward(m, a, x, y, B, T, &l2));
    CHECK(l1.ce != l2.ce);
    CHECK_EQ_INT(0, l1.ar == 0 && l1.tar == 0 ? 0 : 1); /* no AR/TAR in eval */
    nn_reset(m);
    CHECK_EQ_INT(0, nn_lm_forward(m, a, x, y, B, T, &l2));
    CHECK_NEAR(l1.ce, l2.ce, 0, 0);
    /* A smaller batch keeps the first rows: row 0 of a b=1 forward equals row 0 of b=3. */
    const float *last = a->layer[NL - 1].h + (size_t)B * E; /* (T,B,E) */
    float row0[T * E];
    for (int t = 0; t < T; t++)
        memcpy(row0 + t * E, last + (size_t)t * B * E, E * sizeof(float));
    nn_reset(m);
    int32_t x1[T], y1[T];
    memcpy(x1, x, sizeof x1), memcpy(y1, y, sizeof y1);
    CHECK_EQ_INT(0, nn_lm_forward(m, a, x1, y1, 1, T, &l2));
    last = a->layer[NL - 1].h + E;
    CHECK_ALLCLOSE(row0, last, (size_t)T * E, 0, 0);

    /* Bad input answers KF_EINVAL with a message naming it. */
    x[3] = V;
    CHECK_EQ_INT(KF_EINVAL, nn_lm_forward(m, a, x, y, B, T, &l1));
    CHECK(strstr(err_msg(), "tokens[0][3]") != NULL);
    x[3] = 0;
    y[2] = -1;
    CHECK_EQ_INT(KF_EINVAL, nn_lm_forward(m, a, x, y, B, T, &l1));
    CHECK(strstr(err_msg(), "targets") != NULL);
    CHECK_EQ_INT(KF_EINVAL, nn_lm_forward(m, a, x, y, B + 1, T, &l1));
    nn_config bad = c;
    nn_model *m2 = NULL;
    bad.weight_p = 1.0f;
    CHECK_EQ_INT(KF_EINVAL, nn_model_new(&m2, &bad, be));
    CHECK(strstr(err_msg(), "weight_p") != NULL);
    bad = c, bad.layers = 0;
    CHECK_EQ_INT(KF_EINVAL, nn_model_new(&m2, &bad, be));
    bad = c, bad.pad_token = V;
    CHECK_EQ_INT(KF_EINVAL, nn_model_new(&m2, &bad, be));
    CHECK(m2 == NULL);
    nn_acts *enc = NULL;
    CHECK_EQ_INT(0, nn_acts_new(&enc, m, B, T, 0));
    CHECK_EQ_INT(KF_EINVAL, nn_lm_forward(m, enc, x, y, B, T, &l1)); /* no decoder part */
    nn_acts_free(m, enc);
done:
    nn_acts_free(m, a);
    nn_model_free(m);
}

static void test_tensor_table(nn_backend *be)
{
    nn_config c = nn_config_lm(100, 1.0f);
    c.emb = 8, c.hidden = 12;
    nn_model *m = NULL;
    CHECK_EQ_INT(0, nn_model_new(&m, &c, be));
    if (!m)
        return;
    const nn_tensor *ts = nn_tensors(m);
    CHECK_EQ_INT(2 + 4 * 3, nn_tensor_count(m));
    CHECK_EQ_STR("0.encoder.weight", ts[0].name);
    CHECK_EQ_STR("1.decoder.weight", ts[0].aliases[1]);
    CHECK_EQ_STR("0.rnns.2.weight_hh_l0_raw", ts[9].name);
    CHECK_EQ_INT(4 * 8, ts[9].shape[0]);
    CHECK_EQ_STR("0.rnns.1.module.weight_ih_l0", ts[6].name);
    CHECK_EQ_INT(12, ts[6].shape[1]);
    CHECK_EQ_STR("1.decoder.bias", ts[13].name);
    CHECK(ts[13].no_wd && !ts[0].no_wd && ts[13].group == 3 && ts[5].group == 1);
    size_t total = 0;
    for (int i = 0; i < nn_tensor_count(m); i++) {
        CHECK_EQ_INT(0, ts[i].offset % 16);
        if (i > 0)
            CHECK(ts[i].offset >= ts[i - 1].offset + ts[i - 1].numel);
        total += ts[i].numel;
    }
    CHECK(nn_num_params(m) >= total && nn_num_params(m) < total + 16 * 14);
    CHECK(nn_model_weights(m)->lstm[1].w_ih == nn_params(m) + ts[6].offset);
    CHECK(nn_model_grads(m)->dec_bias == nn_grads(m) + ts[13].offset);
    nn_model_free(m);
}

/* The thread pool: a model big enough that every kernel splits across 4 threads gives the same
 * loss and gradients as 1 thread (element-wise work is identical; only the order of partial sums
 * in reductions and OpenBLAS may differ). */
static void test_threads(void)
{
    nn_backend *be[2] = {NULL, NULL};
    nn_model *m[2] = {NULL, NULL};
    nn_acts *a[2] = {NULL, NULL};
    nn_lm_loss l[2];
    enum { BV = 3000, BB = 8, BT = 12 };
    int32_t x[BB * BT], y[BB * BT];
    uint32_t st = 77;
    for (int i = 0; i < BB * BT; i++) {
        st = st * 1664525u + 1013904223u;
        x[i] = (int32_t)((st >> 8) % BV);
        st = st * 1664525u + 1013904223u;
        y[i] = (int32_t)((st >> 8) % BV);
    }
    nn_config c = nn_config_lm(BV, 1.0f);
    c.emb = 48, c.hidden = 96;
    for (int k = 0; k < 2; k++) {
        CHECK_EQ_INT(0, nn_backend_cpu_new(&be[k], k == 0 ? 1 : 4));
        CHECK_EQ_INT(0, nn_model_new(&m[k], &c, be[k]));
        CHECK_EQ_INT(0, nn_acts_new(&a[k], m[k], BB, BT, NN_ACTS_DECODER));
        if (!a[k])
            goto done;
        nn_model_init(m[k], 5);
        nn_masks_sample(m[k], a[k], 3, 0);
        CHECK_EQ_INT(0, nn_lm_forward(m[k], a[k], x, y, BB, BT, &l[k]));
        nn_zero_grad(m[k]);
        CHECK_EQ_INT(0, nn_lm_backward(m[k], a[k]));
    }
    CHECK(memcmp(a[0]->layer[0].mask_w, a[1]->layer[0].mask_w, 4 * 96 * 96 * sizeof(float)) == 0);
    CHECK_NEAR(l[0].total, l[1].total, 1e-9, 1e-6);
    CHECK_ALLCLOSE(nn_grads(m[0]), nn_grads(m[1]), nn_num_params(m[0]), 1e-9, 1e-4);
done:
    for (int k = 0; k < 2; k++) {
        nn_acts_free(m[k], a[k]);
        nn_model_free(m[k]);
        if (be[k])
            be[k]->destroy(be[k]);
    }
}

/* ---- per-op finite differences: each backend backward against its own forward ---- */

typedef struct op_case {
    nn_backend *be;
    int B, H, N, V, R, M, E;
    float *x;             /* the perturbed input */
    const float *x2;      /* second input where an op has one (c_prev), else NULL */
    const float *G, *G2;  /* upstream gradients */
    const int32_t *tok;
    float *scratch, *scratch2, *scratch3;
    double (*f)(struct op_case *);
} op_case;

/* L = sum(h*G) + sum(c*G2) of one LSTM cell step; x = pre-activation gates (B,4H). */
static double f_cell(op_case *o)
{
    size_t n = (size_t)o->B * o->H;
    memcpy(o->scratch, o->x, 4 * n * sizeof(float));
    o->be->lstm_cell_fwd(o->be, o->scratch, o->scratch2, o->scratch3, o->x2, o->B, o->H);
    double L = 0;
    for (size_t i = 0; i < n; i++)
        L += (double)o->scratch3[i] * o->G[i] + (double)o->scratch2[i] * o->G2[i];
    return L;
}

/* L = sum of the cross-entropies of logits x (N,V). */
static double f_xent(op_case *o)
{
    memcpy(o->scratch, o->x, (size_t)o->N * o->V * sizeof(float));
    o->be->softmax_xent_fwd(o->be, o->scratch2, o->scratch, o->tok, o->N, o->V);
    return o->be->sum(o->be, o->scratch2, (size_t)o->N);
}

static double f_tdiff(op_case *o) { return o->be->sumsq_tdiff(o->be, o->x, o->R, o->M); }

/* L = sum(emb(x)[tok] * G) with the row mask x2; x = weight (V,E). */
static double f_emb(op_case *o)
{
    size_t n = (size_t)o->B * o->R * o->E;
    o->be->embedding_fwd(o->be, o->scratch, o->tok, o->x, o->x2, o->B, o->R, o->E);
    double L = 0;
    for (size_t i = 0; i < n; i++)
        L += (double)o->scratch[i] * o->G[i];
    return L;
}

/* Central differences of o->f over the n entries of o->x against grad; skip[i] != 0 skips. */
static void fd_check(const char *what, op_case *o, size_t n, const float *grad, float eps)
{
    double worst = 0;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        float keep = o->x[i];
        o->x[i] = keep + eps;
        double lp = o->f(o);
        o->x[i] = keep - eps;
        double lm = o->f(o);
        o->x[i] = keep;
        double fd = (lp - lm) / (2.0 * eps), d = fabs(fd - grad[i]);
        worst = d > worst ? d : worst;
        if (!(d <= 1e-4 + 2e-3 * fabs(fd)) && bad++ < 3)
            TEST_FAIL_("%s[%zu]: finite difference %.7g, backward %.7g", what, i, fd,
                       (double)grad[i]);
    }
    test_checks++;
    if (getenv("NN_TEST_VERBOSE"))
        fprintf(stderr, "fd %-8s n=%zu max|fd - grad| %.3g\n", what, n, worst);
}

static float urand(uint32_t *st, float lo, float hi)
{
    *st = *st * 1664525u + 1013904223u;
    return lo + (hi - lo) * (float)(*st >> 8) / 16777216.0f;
}

static void test_ops_fd(nn_backend *be)
{
    enum { OB = 3, OH = 5, ON = 4, OV = 7, OR = 5, OM = 6, OE = 4 };
    uint32_t st = 99;
    float x[OB * 4 * OH], cp[OB * OH], G[OB * OH * 8], G2[OB * OH], s1[OB * 4 * OH * 2],
        s2[OB * OH * 8], s3[OB * OH], grad[OB * 4 * OH * 2], dc[OB * OH];
    for (size_t i = 0; i < sizeof x / sizeof *x; i++)
        x[i] = urand(&st, -2, 2);
    for (int i = 0; i < OB * OH; i++)
        cp[i] = urand(&st, -1, 1), G2[i] = urand(&st, -1, 1);
    for (size_t i = 0; i < sizeof G / sizeof *G; i++)
        G[i] = urand(&st, -1, 1);

    /* LSTM cell: d/d(pre-activation gates) and d/d(c_prev). */
    op_case o = {.be = be, .B = OB, .H = OH, .x = x, .x2 = cp, .G = G, .G2 = G2, .scratch = s1,
                 .scratch2 = s2, .scratch3 = s3, .f = f_cell};
    f_cell(&o); /* s1 = activated gates, s2 = c, s3 = h */
    memcpy(dc, G2, sizeof dc);
    be->lstm_cell_bwd(be, grad, G, dc, s1, s2, cp, OB, OH);
    fd_check("cell.x", &o, (size_t)OB * 4 * OH, grad, 1e-2f);
    /* d/d(c_prev): the gates stay fixed, c_prev (o.x2 points at cp) varies. */
    for (int i = 0; i < OB * OH; i++) {
        float keep = cp[i];
        cp[i] = keep + 1e-2f;
        double lp = f_cell(&o);
        cp[i] = keep - 1e-2f;
        double lm = f_cell(&o);
        cp[i] = keep;
        CHECK_NEAR((lp - lm) / 2e-2, dc[i], 1e-4, 2e-3);
    }

    /* Softmax cross-entropy. */
    int32_t tgt[ON] = {3, 0, 6, 3};
    float logits[ON * OV];
    for (int i = 0; i < ON * OV; i++)
        logits[i] = urand(&st, -3, 3);
    op_case ox = {.be = be, .N = ON, .V = OV, .x = logits, .tok = tgt, .scratch = s1,
                  .scratch2 = s2, .f = f_xent};
    f_xent(&ox);
    be->softmax_xent_bwd(be, grad, s1, tgt, 1.0f, ON, OV);
    fd_check("xent", &ox, (size_t)ON * OV, grad, 1e-2f);

    /* TAR's sum of squared time differences. */
    float tx[OR * OM];
    for (int i = 0; i < OR * OM; i++)
        tx[i] = urand(&st, -1, 1);
    op_case ot = {.be = be, .R = OR, .M = OM, .x = tx, .f = f_tdiff};
    memset(grad, 0, sizeof grad);
    be->sumsq_tdiff_grad(be, grad, tx, 1.0f, OR, OM);
    fd_check("tdiff", &ot, (size_t)OR * OM, grad, 1e-2f);

    /* Embedding with a row mask; the pad row (id 1) gets no gradient even when looked up. */
    float w[OV * OE], rowmask[OV];
    int32_t tok[2 * OR] = {0, 1, 2, 1, 6, 5, 5, 0, 3, 1};
    for (int i = 0; i < OV * OE; i++)
        w[i] = urand(&st, -1, 1);
    for (int i = 0; i < OV; i++)
        rowmask[i] = i == 2 ? 0.0f : 1.25f;
    op_case oe = {.be = be, .B = 2, .R = OR, .E = OE, .x = w, .x2 = rowmask, .G = G,
                  .tok = tok, .scratch = s2, .f = f_emb};
    memset(grad, 0, sizeof grad);
    be->embedding_bwd(be, grad, G, tok, rowmask, -1, 2, OR, OE); /* no pad: all rows */
    fd_check("emb", &oe, (size_t)OV * OE, grad, 1e-2f);
    memset(grad, 0, sizeof grad);
    be->embedding_bwd(be, grad, G, tok, rowmask, 1, 2, OR, OE);
    CHECK(grad[1 * OE] == 0.0f && grad[1 * OE + OE - 1] == 0.0f && grad[0] != 0.0f);
}

int main(void)
{
    nn_backend *be = NULL;
    CHECK_EQ_INT(0, nn_backend_cpu_new(&be, 2));
    if (!be)
        return test_done();
    test_masks(be);
    test_ops_fd(be);
    test_tensor_table(be);
    test_state_and_errors(be);
    test_gradients(be);
    be->destroy(be);
    test_threads();
    return test_done();
}
