/* test_gpu_lm: the whole AWD-LSTM LM step on the CUDA backend against the CPU backend. Both models
 * get the same parameters (nn_model_init with one seed, then the CPU block uploaded to the GPU),
 * the same tokens and the same nn_masks_sample seed; then loss, every activation and every
 * gradient tensor are compared (gpu_pair.h: 1e-5 relative to each tensor's scale). Three training
 * chunks carry the hidden state; a fourth in eval mode uses a smaller batch. Skips without a GPU.
 * Dimension legend: V vocab, E emb, H hidden, NL layers, B batch, T time (small, odd sizes). */
#include "gpu_pair.h"
#include "nn.h"

enum { V = 257, E = 24, H = 40, NL = 3, B = 6, T = 9 };

static gpu_pair P;

static void random_ids(int32_t *ids, size_t n, uint32_t *s)
{
    for (size_t i = 0; i < n; i++) {
        *s = *s * 1664525u + 1013904223u;
        ids[i] = (int32_t)((*s >> 8) % V);
    }
}

static void compare_loss(const nn_lm_loss *c, const nn_lm_loss *g)
{
    fprintf(stderr, "  loss ce %.9g/%.9g ar %.6g/%.6g tar %.6g/%.6g\n", c->ce, g->ce, c->ar, g->ar,
            c->tar, g->tar);
    CHECK_NEAR(c->ce, g->ce, 0, GPU_RTOL);
    CHECK_NEAR(c->ar, g->ar, 1e-12, GPU_RTOL);
    CHECK_NEAR(c->tar, g->tar, 1e-12, GPU_RTOL);
    CHECK_NEAR(c->total, g->total, 0, GPU_RTOL);
}

static void compare_acts(const nn_config *cfg, const nn_acts *ac, const nn_acts *ag, int b, int t)
{
    size_t n = (size_t)b * t;
    char what[64];
    CHECK_PAIR("emb", P.cpu, ac->emb, P.gpu, ag->emb, n * E);
    for (int l = 0; l < NL; l++) {
        int I = l == 0 ? E : H, Hl = l == NL - 1 ? E : H;
        snprintf(what, sizeof what, "layer %d x", l);
        CHECK_PAIR(what, P.cpu, ac->layer[l].x, P.gpu, ag->layer[l].x, n * I);
        snprintf(what, sizeof what, "layer %d gates", l);
        CHECK_PAIR(what, P.cpu, ac->layer[l].gates, P.gpu, ag->layer[l].gates, n * 4 * Hl);
        snprintf(what, sizeof what, "layer %d h", l);
        CHECK_PAIR(what, P.cpu, ac->layer[l].h, P.gpu, ag->layer[l].h, (n + b) * Hl);
        snprintf(what, sizeof what, "layer %d c", l);
        CHECK_PAIR(what, P.cpu, ac->layer[l].c, P.gpu, ag->layer[l].c, (n + b) * Hl);
        if (ac->training) {
            snprintf(what, sizeof what, "layer %d mask_w", l);
            CHECK_PAIR(what, P.cpu, ac->layer[l].mask_w, P.gpu, ag->layer[l].mask_w,
                       (size_t)4 * Hl * Hl);
        }
    }
    CHECK_PAIR("dec_in", P.cpu, ac->dec_in, P.gpu, ag->dec_in, n * E);
    CHECK_PAIR("losses", P.cpu, ac->losses, P.gpu, ag->losses, n);
    CHECK_PAIR("probs", P.cpu, ac->logits, P.gpu, ag->logits, n * cfg->vocab);
}

static void compare_grads(nn_model *mc, nn_model *mg)
{
    const nn_tensor *ts = nn_tensors(mc);
    for (int k = 0; k < nn_tensor_count(mc); k++)
        CHECK_PAIR(ts[k].name, P.cpu, nn_grads(mc) + ts[k].offset, P.gpu,
                   nn_grads(mg) + ts[k].offset, ts[k].numel);
}

int main(void)
{
    gpu_pair_init(&P);
    nn_config cfg = nn_config_lm(V, 1.0f);
    cfg.emb = E, cfg.hidden = H, cfg.layers = NL;
    nn_model *mc = NULL, *mg = NULL;
    nn_acts *ac = NULL, *ag = NULL;
    if (nn_model_new(&mc, &cfg, P.cpu) || nn_model_new(&mg, &cfg, P.gpu) ||
        nn_acts_new(&ac, mc, B, T, NN_ACTS_DECODER) || nn_acts_new(&ag, mg, B, T, NN_ACTS_DECODER)) {
        fprintf(stderr, "model: %s\n", err_msg());
        return 1;
    }
    size_t np = nn_num_params(mc);
    CHECK_EQ_INT(np, nn_num_params(mg));
    CHECK_EQ_INT(0, nn_model_init(mc, 42));
    CHECK_EQ_INT(0, nn_model_init(mg, 42));
    /* init goes through the backend too: the same seed must give the same block */
    CHECK_PAIR("params after init", P.cpu, nn_params(mc), P.gpu, nn_params(mg), np);
    float *host = be_to_host(P.cpu, nn_params(mc), np);
    P.gpu->upload(P.gpu, nn_params(mg), host, np * sizeof *host);
    free(host);

    int32_t x[B * T], y[B * T];
    uint32_t s = 7;
    for (int chunk = 0; chunk < 4; chunk++) {
        bool eval = chunk == 3;
        int b = eval ? B - 2 : B, t = eval ? T - 3 : T;
        random_ids(x, (size_t)b * t, &s);
        random_ids(y, (size_t)b * t, &s);
        x[1] = cfg.pad_token; /* the pad row gets no gradient */
        fprintf(stderr, "chunk %d (%s, b %d, t %d)\n", chunk, eval ? "eval" : "training", b, t);
        if (eval) {
            ac->training = ag->training = false;
        } else {
            nn_masks_sample(mc, ac, 2024, (uint64_t)chunk);
            nn_masks_sample(mg, ag, 2024, (uint64_t)chunk);
        }
        nn_lm_loss lc, lg;
        CHECK_EQ_INT(0, nn_lm_forward(mc, ac, x, y, b, t, &lc));
        CHECK_EQ_INT(0, nn_lm_forward(mg, ag, x, y, b, t, &lg));
        compare_loss(&lc, &lg);
        compare_acts(&cfg, ac, ag, b, t);
        nn_zero_grad(mc), nn_zero_grad(mg);
        CHECK_EQ_INT(0, nn_lm_backward(mc, ac));
        CHECK_EQ_INT(0, nn_lm_backward(mg, ag));
        compare_grads(mc, mg);
    }
    /* a bad token is refused the same way on the GPU (checked on the host before upload) */
    x[0] = V;
    nn_lm_loss l;
    CHECK_EQ_INT(KF_EINVAL, nn_lm_forward(mg, ag, x, y, B, T, &l));
    nn_acts_free(mc, ac), nn_acts_free(mg, ag);
    nn_model_free(mc), nn_model_free(mg);
    gpu_pair_dispose(&P);
    return test_done();
}
