/* test_head_unit: head pieces that need no PyTorch: loss stability at extreme logits (closed
 * forms), predictions, fastai defaults and parameter names, init, mask sampling, bad input. */
#include <stdbool.h>

#include "classifier.h"
#include "err.h"
#include "kernels.h"
#include "loss.h"
#include "test.h"

static void test_bce_extremes(nn_backend *be)
{
    const head_kernels *k = head_kernels_cpu();
    /* z, y -> loss: 80,0 -> 80; -80,1 -> 80; 80,1 -> ~1.8e-35; 0,1 -> log 2 */
    float z[4] = {80.0f, -80.0f, 80.0f, 0.0f}, y[4] = {0, 1, 1, 1}, d[4];
    double loss = head_bce_forward(k, be, z, y, 4);
    CHECK_NEAR((80.0 + 80.0 + 0.0 + log(2.0)) / 4, loss, 1e-9, 1e-12);
    head_bce_backward(k, be, d, z, y, 4, 2.0f);
    /* d = 2 * (sigmoid(z) - y) / 4 */
    CHECK_NEAR(0.5, d[0], 1e-7, 0);
    CHECK_NEAR(-0.5, d[1], 1e-7, 0);
    CHECK_NEAR(0.0, d[2], 1e-7, 0);
    CHECK_NEAR(-0.25, d[3], 1e-7, 0);
}

static void test_ce_extremes(nn_backend *be)
{
    float z[6] = {1000.0f, 0.0f, -1000.0f, 3.0f, 1.0f, 2.0f}, probs[6], losses[2], d[6];
    int32_t y[2] = {1, 0};
    double loss = head_ce_forward(be, probs, losses, z, y, 2, 3);
    double l2 = log(exp(0.0) + exp(-2.0) + exp(-1.0)); /* row 2: logsumexp - z[0], shifted */
    CHECK_NEAR((1000.0 + l2) / 2, loss, 1e-4, 1e-7);
    CHECK(isfinite(loss));
    head_ce_backward(be, d, probs, y, 2, 3, 1.0f);
    CHECK_NEAR(0.5, d[0], 1e-7, 0);  /* (1 - 0) / 2 */
    CHECK_NEAR(-0.5, d[1], 1e-7, 0); /* (0 - 1) / 2 */
    CHECK_NEAR(0.0, d[2], 1e-7, 0);
    CHECK_NEAR((exp(0.0) / exp(l2) - 1) / 2, d[3], 1e-6, 0);
}

static void test_predictions(void)
{
    float z[6] = {0.1f, -0.1f, 0.0f, 5.0f, -3.0f, 2.0f}, probs[6];
    uint8_t pred[6];
    head_predict_multi(pred, probs, z, 6, 0.5f);
    CHECK_EQ_INT(1, pred[0]);
    CHECK_EQ_INT(0, pred[1]);
    CHECK_EQ_INT(0, pred[2]); /* sigmoid(0) = 0.5 is not > 0.5 (fastai: probs > thresh) */
    CHECK_NEAR(1 / (1 + exp(3.0)), probs[4], 1e-7, 1e-6);
    int32_t cls[2];
    head_predict_single(cls, probs, z, 2, 3);
    CHECK_EQ_INT(0, cls[0]);
    CHECK_EQ_INT(0, cls[1]);
    CHECK_NEAR(1.0, probs[0] + probs[1] + probs[2], 1e-6, 0);
}

static bool has_tensor(const head_clf *c, const char *name)
{
    for (int i = 0; i < head_tensor_count(c); i++)
        if (strcmp(head_tensors(c)[i].name, name) == 0)
            return true;
    return false;
}

static void test_defaults_names_init(nn_backend *be)
{
    head_config hc = head_config_default(400, 7, true, 0.5f);
    CHECK_EQ_INT(2, hc.n_blocks);
    CHECK_EQ_INT(1200, hc.dims[0]);
    CHECK_EQ_INT(50, hc.dims[1]);
    CHECK_EQ_INT(7, hc.dims[2]);
    CHECK_NEAR(0.2, hc.ps[0], 1e-7, 0); /* output_p 0.4 * drop_mult */
    CHECK_NEAR(0.1, hc.ps[1], 1e-7, 0); /* lin_ftrs' ps are not scaled by drop_mult */
    CHECK_EQ_INT(72, hc.bptt);

    head_clf *c = NULL;
    CHECK_EQ_INT(0, head_clf_new(&c, &hc, be, NULL, 8));
    if (!c)
        return;
    CHECK(has_tensor(c, "1.layers.0.0.weight"));
    CHECK(has_tensor(c, "1.layers.0.0.bias"));
    CHECK(has_tensor(c, "1.layers.0.2.weight"));
    CHECK(has_tensor(c, "1.layers.1.2.weight"));
    CHECK_EQ_INT(6, head_tensor_count(c));
    CHECK_EQ_INT(4, head_buffer_count(c));
    CHECK_EQ_INT(0, head_clf_init(c, 42));
    const head_block_weights *w = head_clf_weights(c, 0);
    CHECK_NEAR(1.0, w->bn_w[5], 0, 0);
    CHECK_NEAR(1e-3, w->bn_b[5], 1e-9, 0);
    CHECK_NEAR(0.0, w->run_mean[5], 0, 0);
    CHECK_NEAR(1.0, w->run_var[5], 0, 0);
    double bound = 1 / sqrt(1200.0), mx = 0, sum = 0;
    for (int i = 0; i < 50 * 1200; i++) {
        mx = fmax(mx, fabs(w->lin_w[i]));
        sum += w->lin_w[i];
    }
    CHECK(mx <= bound && mx > 0.95 * bound);
    CHECK(fabs(sum / (50 * 1200)) < 0.02 * bound);
    /* masks: deterministic in (seed, step), values 0 or 1/(1-p), about p dropped */
    enum { NM = 8 * 1200 };
    float *m0 = malloc(NM * sizeof(float));
    head_clf_masks_sample(c, 8, 1, 3);
    memcpy(m0, head_clf_acts(c, 0)->mask, NM * sizeof(float));
    int zeros = 0, bad = 0, differs = 0, same = 0;
    for (int i = 0; i < NM; i++) {
        zeros += m0[i] == 0.0f;
        bad += !(m0[i] == 0.0f || fabsf(m0[i] - 1.25f) < 1e-6f);
    }
    CHECK_EQ_INT(0, bad);
    CHECK(zeros > 0.15 * NM && zeros < 0.25 * NM);
    head_clf_masks_sample(c, 8, 1, 4);
    for (int i = 0; i < NM; i++)
        differs += head_clf_acts(c, 0)->mask[i] != m0[i];
    head_clf_masks_sample(c, 8, 1, 3);
    for (int i = 0; i < NM; i++)
        same += head_clf_acts(c, 0)->mask[i] == m0[i];
    CHECK(differs > NM / 10);
    CHECK_EQ_INT(NM, same);
    free(m0);
    head_clf_free(c);

    /* drop_mult 0: the first block has no Dropout, so its Linear is layers.0.1 (fastai) */
    hc = head_config_default(400, 7, true, 0.0f);
    CHECK_EQ_INT(0, head_clf_new(&c, &hc, be, NULL, 8));
    if (c) {
        CHECK(has_tensor(c, "1.layers.0.1.weight"));
        CHECK(has_tensor(c, "1.layers.1.2.weight"));
    }
    head_clf_free(c);
}

static void test_bad_input(nn_backend *be)
{
    head_config hc = head_config_default(4, 3, true, 1.0f);
    head_clf *c = NULL;
    hc.n_blocks = 0;
    CHECK_EQ_INT(KF_EINVAL, head_clf_new(&c, &hc, be, NULL, 4));
    hc = head_config_default(4, 0, true, 1.0f);
    CHECK_EQ_INT(KF_EINVAL, head_clf_new(&c, &hc, be, NULL, 4));
    CHECK(strstr(err_msg(), "dims[2]") != NULL);
    hc = head_config_default(4, 3, true, 1.0f);
    CHECK_EQ_INT(KF_EINVAL, head_clf_new(&c, &hc, be, NULL, 0));
    CHECK_EQ_INT(0, head_clf_new(&c, &hc, be, NULL, 2));
    if (!c)
        return;
    float enc[2 * 2 * 4] = {1, 2, 3, 4, 5, 6, 7, 8, -1, -2, -3, -4, -5, -6, -7, -8};
    uint8_t pad[4] = {0, 0, 1, 0};
    double loss;
    CHECK_EQ_INT(KF_EINVAL, head_clf_loss(c, &loss, &(head_targets){0}, 1.0f)); /* no forward */
    CHECK_EQ_INT(KF_EINVAL, head_clf_backward(c, enc));
    CHECK_EQ_INT(KF_EINVAL, head_clf_forward(c, enc, pad, 2, 0, false));
    CHECK_EQ_INT(0, head_clf_forward(c, enc, pad, 2, 2, true));
    float y[6] = {0, 1, 0, 1, 2, 0}; /* 2 is not a probability */
    CHECK_EQ_INT(KF_EINVAL, head_clf_loss(c, &loss, &(head_targets){.multi = y}, 1.0f));
    CHECK(strstr(err_msg(), "[1][1]") != NULL);
    y[4] = 1;
    CHECK_EQ_INT(0, head_clf_loss(c, &loss, &(head_targets){.multi = y}, 1.0f));
    CHECK(isfinite(loss) && loss > 0);
    head_clf_free(c);
}

int main(void)
{
    nn_backend *be = NULL;
    if (nn_backend_cpu_new(&be, 1) != 0) {
        fprintf(stderr, "cannot create CPU backend: %s\n", err_msg());
        return 1;
    }
    test_bce_extremes(be);
    test_ce_extremes(be);
    test_predictions();
    test_defaults_names_init(be);
    test_bad_input(be);
    be->destroy(be);
    return test_done();
}
