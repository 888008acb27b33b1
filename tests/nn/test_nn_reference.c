/* test_nn_reference: the AWD-LSTM LM (float32, CPU backend) against fastai's own model in
 * PyTorch float64 (tests/nn/make_reference.py) on random weights, tokens and dropout masks:
 * four chunks (two training chunks carrying the hidden state, an eval chunk with a smaller batch,
 * a training chunk whose batch grows back) and the encoder alone with a given upstream gradient
 * (the classifier's use), comparing the losses, softmax, every layer's raw output and every
 * parameter gradient.
 * Tolerance |c - ref| <= ATOL + RTOL*|ref|. Fails (not skips) without PyTorch when CI=true. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "nn.h"
#include "refdata.h"
#include "test.h"

/* Activations and losses are O(1), gradients O(1e-2): absolute floors sized for each. */
#define ATOL_ACT 5e-7
#define ATOL_GRAD 5e-8
#define RTOL 1e-5

/* Compares n floats against doubles; reports the worst element with the tensor's name. */
static void compare(const char *what, const double *ref, const float *got, size_t n, double atol)
{
    size_t bad = (size_t)-1;
    double worst = 0, maxdiff = 0, maxref = 0;
    test_checks++;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]), lim = atol + RTOL * fabs(ref[i]);
        maxref = fabs(ref[i]) > maxref ? fabs(ref[i]) : maxref;
        if (d > maxdiff || isnan(d))
            maxdiff = isnan(d) ? INFINITY : d;
        if (!(d <= lim) && (bad == (size_t)-1 || isnan(d) || d - lim > worst)) {
            worst = isnan(d) ? INFINITY : d - lim;
            bad = i;
        }
    }
    if (bad != (size_t)-1)
        TEST_FAIL_("%s[%zu]: expected %.9g, actual %.9g (atol %g, rtol %g)", what, bad, ref[bad],
                   (double)got[bad], atol, RTOL);
    else if (getenv("NN_TEST_VERBOSE"))
        fprintf(stderr, "ok %-40s n=%-5zu max|ref|=%-9.3g max|diff|=%.3g\n", what, n, maxref,
                maxdiff);
}

static const ref_tensor *need(const ref_file *rf, const char *name, size_t numel)
{
    const ref_tensor *t = ref_get(rf, name);
    test_checks++;
    if (!t || t->numel != numel) {
        TEST_FAIL_("reference record %s missing or of size %zu (want %zu)", name,
                   t ? t->numel : 0, numel);
        return NULL;
    }
    return t;
}

/* (T,b,D) time-major -> (b,T,D) batch-first */
static void to_batch_first(float *dst, const float *src, int T, int b, int D)
{
    for (int t = 0; t < T; t++)
        for (int bb = 0; bb < b; bb++)
            memcpy(dst + ((size_t)bb * T + t) * D, src + ((size_t)t * b + bb) * D,
                   (size_t)D * sizeof *dst);
}

static void copy_mask(const ref_file *rf, const char *name, float *dst, size_t n)
{
    const ref_tensor *t = need(rf, name, n);
    for (size_t i = 0; t && i < n; i++)
        dst[i] = (float)t->f[i];
}

static void run_chunk(const ref_file *rf, nn_model *m, nn_acts *a, int k, float *tmp)
{
    const nn_config *c = nn_model_config(m);
    int T = a->T, E = c->emb, V = c->vocab, NL = c->layers;
    char name[256];
    snprintf(name, sizeof name, "c%d.train", k);
    const ref_tensor *tr = need(rf, name, 2);
    if (!tr)
        return;
    int training = (int)tr->i[0], b = (int)tr->i[1];
    int32_t *x = calloc((size_t)b * T, sizeof *x), *y = calloc((size_t)b * T, sizeof *y);
    snprintf(name, sizeof name, "c%d.x", k);
    const ref_tensor *rx = need(rf, name, (size_t)b * T);
    snprintf(name, sizeof name, "c%d.y", k);
    const ref_tensor *ry = need(rf, name, (size_t)b * T);
    if (!rx || !ry)
        goto done;
    for (int i = 0; i < b * T; i++)
        x[i] = (int32_t)rx->i[i], y[i] = (int32_t)ry->i[i];

    a->training = training;
    if (training) {
        snprintf(name, sizeof name, "c%d.mask.emb", k);
        copy_mask(rf, name, a->mask_emb, (size_t)V);
        snprintf(name, sizeof name, "c%d.mask.in", k);
        copy_mask(rf, name, a->mask_in, (size_t)b * E);
        snprintf(name, sizeof name, "c%d.mask.out", k);
        copy_mask(rf, name, a->mask_out, (size_t)b * E);
        for (int l = 0; l < NL; l++) {
            int H = l == NL - 1 ? E : c->hidden;
            snprintf(name, sizeof name, "c%d.mask.w%d", k, l);
            copy_mask(rf, name, a->layer[l].mask_w, (size_t)4 * H * H);
            if (l < NL - 1) {
                snprintf(name, sizeof name, "c%d.mask.h%d", k, l);
                copy_mask(rf, name, a->layer[l].mask_h, (size_t)b * H);
            }
        }
    }

    nn_lm_loss loss;
    int rc = nn_lm_forward(m, a, x, y, b, T, &loss);
    CHECK_EQ_INT(0, rc);
    if (rc) {
        fprintf(stderr, "forward: %s\n", err_msg());
        goto done;
    }
    snprintf(name, sizeof name, "c%d.loss", k);
    const ref_tensor *rl = need(rf, name, 4);
    if (rl) {
        float got[4] = {(float)loss.ce, (float)loss.ar, (float)loss.tar, (float)loss.total};
        snprintf(name, sizeof name, "c%d.loss[ce,ar,tar,total]", k);
        compare(name, rl->f, got, 4, ATOL_ACT);
        CHECK(rl->f[0] > 0.5 && (!training || (rl->f[1] > 0 && rl->f[2] > 0)));
    }
    snprintf(name, sizeof name, "c%d.probs", k);
    const ref_tensor *rp = need(rf, name, (size_t)b * T * V);
    if (rp) {
        to_batch_first(tmp, a->logits, T, b, V);
        compare(name, rp->f, tmp, (size_t)b * T * V, ATOL_ACT);
    }
    for (int l = 0; l < NL; l++) {
        int H = l == NL - 1 ? E : c->hidden;
        snprintf(name, sizeof name, "c%d.raw%d", k, l);
        const ref_tensor *rr = need(rf, name, (size_t)b * T * H);
        if (rr) {
            to_batch_first(tmp, a->layer[l].h + (size_t)b * H, T, b, H);
            compare(name, rr->f, tmp, (size_t)b * T * H, ATOL_ACT);
        }
    }

    nn_zero_grad(m);
    rc = nn_lm_backward(m, a);
    CHECK_EQ_INT(0, rc);
    const nn_tensor *ts = nn_tensors(m);
    const float *g = nn_grads(m);
    for (int i = 0; i < nn_tensor_count(m); i++) {
        snprintf(name, sizeof name, "c%d.grad.%s", k, ts[i].name);
        const ref_tensor *rg = need(rf, name, ts[i].numel);
        if (rg)
            compare(name, rg->f, g + ts[i].offset, ts[i].numel, ATOL_GRAD);
    }
done:
    free(x);
    free(y);
}

/* The encoder alone with an upstream gradient from the file (as the classifier head uses it). */
static void run_encoder(const ref_file *rf, nn_model *m, int B, int T, float *tmp)
{
    const nn_config *c = nn_model_config(m);
    int E = c->emb, NL = c->layers;
    nn_acts *a = NULL;
    int32_t *x = calloc((size_t)B * T, sizeof *x);
    char name[256];
    CHECK_EQ_INT(0, nn_acts_new(&a, m, B, T, 0));
    const ref_tensor *rx = need(rf, "e0.x", (size_t)B * T);
    const ref_tensor *rg = need(rf, "e0.dout", (size_t)B * T * E);
    if (!a || !rx || !rg || !x)
        goto done;
    for (int i = 0; i < B * T; i++)
        x[i] = (int32_t)rx->i[i];
    copy_mask(rf, "e0.mask.emb", a->mask_emb, (size_t)c->vocab);
    copy_mask(rf, "e0.mask.in", a->mask_in, (size_t)B * E);
    for (int l = 0; l < NL; l++) {
        int H = l == NL - 1 ? E : c->hidden;
        snprintf(name, sizeof name, "e0.mask.w%d", l);
        copy_mask(rf, name, a->layer[l].mask_w, (size_t)4 * H * H);
        if (l < NL - 1) {
            snprintf(name, sizeof name, "e0.mask.h%d", l);
            copy_mask(rf, name, a->layer[l].mask_h, (size_t)B * H);
        }
    }
    a->training = true;
    CHECK_EQ_INT(0, nn_encoder_forward(m, a, x, B, T));
    for (int l = 0; l < NL; l++) {
        int H = l == NL - 1 ? E : c->hidden;
        snprintf(name, sizeof name, "e0.raw%d", l);
        const ref_tensor *rr = need(rf, name, (size_t)B * T * H);
        if (rr) {
            to_batch_first(tmp, a->layer[l].h + (size_t)B * H, T, B, H);
            compare(name, rr->f, tmp, (size_t)B * T * H, ATOL_ACT);
        }
    }
    /* d_out is time-major (T,B,E); the file holds G batch-first (B,T,E). */
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++)
            for (int e = 0; e < E; e++)
                a->d_out[((size_t)t * B + b) * E + e] = (float)rg->f[((size_t)b * T + t) * E + e];
    nn_zero_grad(m);
    CHECK_EQ_INT(0, nn_encoder_backward(m, a));
    const nn_tensor *ts = nn_tensors(m);
    for (int i = 0; i < nn_tensor_count(m); i++) {
        snprintf(name, sizeof name, "e0.grad.%s", ts[i].name);
        const ref_tensor *rt = ref_get(rf, name);
        if (strcmp(ts[i].name, "1.decoder.bias") == 0) { /* not part of the encoder */
            CHECK(rt == NULL && nn_grads(m)[ts[i].offset] == 0.0f);
            continue;
        }
        rt = need(rf, name, ts[i].numel);
        if (rt)
            compare(name, rt->f, nn_grads(m) + ts[i].offset, ts[i].numel, ATOL_ACT); /* O(1) */
    }
done:
    nn_acts_free(m, a);
    free(x);
}

int main(void)
{
    const char *src = getenv("KUBEFIT_SOURCE_DIR");
    char script[4096];
    snprintf(script, sizeof script, "%s/tests/nn/make_reference.py", src ? src : ".");
    int gen = ref_generate(script, "nn_reference.bin", "1234");
    if (gen == 77) {
        const char *ci = getenv("CI");
        if (ci && strcmp(ci, "true") == 0) {
            fprintf(stderr, "FAIL: CI=true and the PyTorch reference is unavailable\n");
            return 1;
        }
        TEST_SKIP("venv-torch missing");
    }
    if (gen != 0) {
        fprintf(stderr, "FAIL: reference generator failed\n");
        return 1;
    }
    ref_file rf;
    if (ref_load(&rf, "nn_reference.bin")) {
        fprintf(stderr, "FAIL: %s\n", err_msg());
        return 1;
    }
    const ref_tensor *rc_cfg = need(&rf, "config", 7), *rc_p = need(&rf, "p", 7);
    if (!rc_cfg || !rc_p)
        return test_done();
    nn_config cfg = {
        .vocab = (int)rc_cfg->i[0], .emb = (int)rc_cfg->i[1], .hidden = (int)rc_cfg->i[2],
        .layers = (int)rc_cfg->i[3], .pad_token = (int)rc_cfg->i[6],
        .embed_p = (float)rc_p->f[0], .input_p = (float)rc_p->f[1], .hidden_p = (float)rc_p->f[2],
        .weight_p = (float)rc_p->f[3], .output_p = (float)rc_p->f[4],
        .ar_alpha = (float)rc_p->f[5], .tar_beta = (float)rc_p->f[6],
    };
    int B = (int)rc_cfg->i[4], T = (int)rc_cfg->i[5];
    nn_backend *be = NULL;
    nn_model *m = NULL;
    nn_acts *a = NULL;
    CHECK_EQ_INT(0, nn_backend_cpu_new(&be, 2));
    CHECK_EQ_INT(0, nn_model_new(&m, &cfg, be));
    CHECK_EQ_INT(0, nn_acts_new(&a, m, B, T, NN_ACTS_DECODER));
    if (!m || !a)
        goto done;

    /* Weights by fastai name; every state_dict entry must be one of our names or aliases. */
    const nn_tensor *ts = nn_tensors(m);
    char name[256];
    for (int i = 0; i < nn_tensor_count(m); i++) {
        snprintf(name, sizeof name, "w.%s", ts[i].name);
        const ref_tensor *rw = need(&rf, name, ts[i].numel);
        for (size_t j = 0; rw && j < ts[i].numel; j++)
            nn_params(m)[ts[i].offset + j] = (float)rw->f[j];
        for (int k = 0; ts[i].aliases[k]; k++) {
            snprintf(name, sizeof name, "w.%s", ts[i].aliases[k]);
            const ref_tensor *ra = need(&rf, name, ts[i].numel);
            CHECK(ra && rw && memcmp(ra->f, rw->f, ts[i].numel * 8) == 0);
        }
    }
    int known = 0, listed = 0;
    for (size_t r = 0; r < rf.n; r++) {
        if (strncmp(rf.t[r].name, "w.", 2) != 0)
            continue;
        listed++;
        for (int i = 0; i < nn_tensor_count(m); i++) {
            int hit = strcmp(ts[i].name, rf.t[r].name + 2) == 0;
            for (int k = 0; ts[i].aliases[k]; k++)
                hit |= strcmp(ts[i].aliases[k], rf.t[r].name + 2) == 0;
            known += hit;
        }
    }
    CHECK_EQ_INT(listed, known);

    float *tmp = malloc((size_t)B * T * (cfg.vocab + cfg.hidden + cfg.emb) * sizeof *tmp);
    nn_reset(m);
    const ref_tensor *nc = need(&rf, "nchunks", 1);
    for (int k = 0; nc && k < (int)nc->i[0]; k++)
        run_chunk(&rf, m, a, k, tmp);
    CHECK(nc && nc->i[0] >= 4);
    run_encoder(&rf, m, B, T, tmp);
    free(tmp);
done:
    nn_acts_free(m, a);
    nn_model_free(m);
    if (be)
        be->destroy(be);
    ref_free(&rf);
    return test_done();
}
