/* test_gpu_graph: the whole LM training step recorded once as a CUDA graph and replayed gives
 * what the same steps give run op by op. Two models with the same init on the CUDA backend:
 * model E runs 4 steps eagerly (masks, forward, backward, clip 0.01, Adam); model G runs step 0
 * the same way, records forward + backward + clip + Adam at step 1 (nn_lm_forward_queue,
 * cuda_optim_clip_queue, cuda_optim_adam_queue between capture_begin and capture_end) and
 * replays it for steps 1-3, with each step's masks, tokens and Adam constants (learning rates and
 * momentum change every step) set before the replay. Losses, grad norms and every parameter must agree (gpu_pair.h rule; the same kernels in
 * the same order, so they should be identical). Skips without a GPU. */
#include "cuda_optim.h"
#include "gpu_pair.h"
#include "nn.h"

enum { V = 301, E = 32, H = 48, NL = 3, B = 8, T = 10, STEPS = 4 };

static gpu_pair P;

typedef struct run {
    nn_model *m;
    nn_acts *a;
    cuda_optim *opt;
    cuda_optim_tensor *ts;
    float *avg, *sqr;
    int nt;
    void *graph;
} run;

static void run_new(run *r)
{
    nn_config cfg = nn_config_lm(V, 1.0f);
    cfg.emb = E, cfg.hidden = H, cfg.layers = NL;
    memset(r, 0, sizeof *r);
    CHECK(nn_model_new(&r->m, &cfg, P.gpu) == 0 && nn_model_init(r->m, 7) == 0);
    CHECK(nn_acts_new(&r->a, r->m, B, T, NN_ACTS_DECODER) == 0);
    CHECK(cuda_optim_new(&r->opt, nn_backend_cuda_ctx(P.gpu)) == 0);
    size_t np = nn_num_params(r->m);
    r->avg = P.gpu->alloc(P.gpu, np * sizeof(float));
    r->sqr = P.gpu->alloc(P.gpu, np * sizeof(float));
    r->nt = nn_tensor_count(r->m);
    r->ts = calloc((size_t)r->nt, sizeof *r->ts);
    for (int k = 0; k < r->nt; k++) {
        const nn_tensor *t = &nn_tensors(r->m)[k];
        r->ts[k] = (cuda_optim_tensor){.offset = t->offset, .n = t->numel, .lr = 3e-3 * (1 + k % 3),
                                       .wd = t->no_wd ? 0.0 : 0.01};
    }
}

/* Adam at `step`: the momentum and learning rates move every step, as the one-cycle schedule
 * moves them, so a replay that kept the recorded step's values would drift. */
static cuda_adam_args adam_of(run *r, int step)
{
    for (int k = 0; k < r->nt; k++) {
        r->ts[k].lr = 3e-3 * (1 + k % 3) * (1.0 + 0.5 * step);
        r->ts[k].step = step + 1;
    }
    return (cuda_adam_args){.params = nn_params(r->m), .grads = nn_grads(r->m), .avg = r->avg,
                            .sqr = r->sqr, .tensors = r->ts, .count = r->nt,
                            .mom = 0.95 - 0.03 * step, .sqr_mom = 0.99, .eps = 1e-5};
}

static void tokens(int32_t *x, int32_t *y, int step)
{
    uint32_t s = 1000u + (uint32_t)step;
    for (int i = 0; i < B * T; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (int32_t)((s >> 8) % V);
        s = s * 1664525u + 1013904223u;
        y[i] = (int32_t)((s >> 8) % V);
    }
}

/* One eager step; returns the loss, *norm the grad norm before clipping. */
static nn_lm_loss eager_step(run *r, int step, double *norm)
{
    int32_t x[B * T], y[B * T];
    nn_lm_loss l;
    tokens(x, y, step);
    nn_masks_sample(r->m, r->a, 5, (uint64_t)step);
    CHECK(nn_lm_forward(r->m, r->a, x, y, B, T, &l) == 0);
    nn_zero_grad(r->m);
    CHECK(nn_lm_backward(r->m, r->a) == 0);
    *norm = cuda_optim_clip_grad_norm(r->opt, nn_grads(r->m), r->ts, r->nt, 0.01);
    cuda_adam_args ad = adam_of(r, step);
    cuda_optim_adam_step(r->opt, &ad);
    return l;
}

/* One replayed step (recording it first when there is no graph yet). */
static nn_lm_loss graph_step(run *r, int step, double *norm)
{
    int32_t x[B * T], y[B * T];
    nn_lm_loss l = {0};
    cuda_adam_args ad = adam_of(r, step);
    tokens(x, y, step);
    nn_masks_sample(r->m, r->a, 5, (uint64_t)step);
    CHECK(nn_lm_set_batch(r->m, r->a, x, y, B, T) == 0);
    if (!r->graph) {
        CHECK(P.gpu->capture_begin(P.gpu) == 0);
        CHECK(nn_lm_forward_queue(r->m, r->a) == 0);
        nn_zero_grad(r->m);
        CHECK(nn_lm_backward(r->m, r->a) == 0);
        cuda_optim_clip_queue(r->opt, nn_grads(r->m), r->ts, r->nt, 0.01);
        cuda_optim_adam_queue(r->opt, &ad);
        CHECK(P.gpu->capture_end(P.gpu, &r->graph) == 0);
        CHECK(r->graph != NULL);
    }
    CHECK(cuda_optim_adam_set(r->opt, &ad) == 0);
    CHECK(P.gpu->graph_launch(P.gpu, r->graph) == 0);
    CHECK(nn_lm_loss_read(r->m, r->a, &l) == 0);
    *norm = cuda_optim_clip_norm(r->opt);
    return l;
}

int main(void)
{
    gpu_pair_init(&P);
    CHECK(P.gpu->reduce_to && P.gpu->capture_begin && P.gpu->capture_end &&
          P.gpu->graph_launch && P.gpu->graph_free);
    run e, g;
    run_new(&e);
    run_new(&g);
    for (int step = 0; step < STEPS; step++) {
        double ne = 0, ng = 0;
        nn_lm_loss le = eager_step(&e, step, &ne);
        nn_lm_loss lg = step == 0 ? eager_step(&g, step, &ng) : graph_step(&g, step, &ng);
        fprintf(stderr, "step %d: loss %.9g / %.9g (ar %.6g/%.6g tar %.6g/%.6g), norm %.9g / %.9g\n",
                step, le.total, lg.total, le.ar, lg.ar, le.tar, lg.tar, ne, ng);
        CHECK(isfinite(le.total) && le.ar > 0 && le.tar > 0);
        CHECK_NEAR(le.ce, lg.ce, 0, GPU_RTOL);
        CHECK_NEAR(le.total, lg.total, 0, GPU_RTOL);
        CHECK_NEAR(ne, ng, 0, GPU_RTOL);
        CHECK(ne > 0.01); /* the clip (0.01) really scaled: the replayed factor is not a stale 1 */
        char what[32];
        snprintf(what, sizeof what, "params after step %d", step);
        CHECK_PAIR(what, P.gpu, nn_params(e.m), P.gpu, nn_params(g.m), nn_num_params(e.m));
    }
    run *rs[2] = {&e, &g};
    for (int i = 0; i < 2; i++) {
        run *r = rs[i];
        if (r->graph)
            P.gpu->graph_free(P.gpu, r->graph);
        P.gpu->release(P.gpu, r->avg);
        P.gpu->release(P.gpu, r->sqr);
        cuda_optim_free(r->opt);
        free(r->ts);
        nn_acts_free(r->m, r->a);
        nn_model_free(r->m);
    }
    gpu_pair_dispose(&P);
    return test_done();
}
