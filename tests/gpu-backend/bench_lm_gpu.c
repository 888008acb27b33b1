/* bench_lm_gpu: times one AWD-LSTM LM training step on the CUDA backend - dropout masks,
 * forward (with AR/TAR), backward, global-norm clip and the Adam step (cuda_optim) - the work
 * PyTorch does in bench/gpu.sh's peer.
 *   bench_lm_gpu [--vocab V] [--emb E] [--hidden H] [--layers NL] [--batch B] [--bptt T]
 *                [--steps N] [--warmup W] [--math fp32|tf32|bf16] [--tf32] [--device D] [--graph]
 * Prints one JSON line: {"bench":"lm_step","backend":"cuda","math":...,"fwd_ms","bwd_ms",
 * "opt_ms", "step_ms" (wall per step, stream drained at each boundary), "tokens" (B*T per step),
 * "tokens_per_s","loss"}. --tf32 is --math tf32. bench/gpu.sh turns the shapes into FLOPs.
 * --graph: after the warm-up (at least 1 step), forward + backward + clip + Adam are recorded
 * once as a CUDA graph and each timed step replays it (masks, token upload and the step's Adam
 * constants are set before each replay, the loss read after it); backend "cuda-graph", the
 * whole step in step_ms (fwd/bwd/opt_ms 0).
 * Defaults: fastai's LM (E 400, H 1152, 3 layers), V 60000, B 64, T 72.
 * Exits 77 without a GPU. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend_cuda.h"
#include "cuda_optim.h"
#include "err.h"
#include "lm_bench.h"
#include "nn.h"

int main(int argc, char **argv)
{
    lm_args A = {.vocab = 60000, .emb = 400, .hidden = 1152, .layers = 3, .batch = 64,
                 .bptt = 72, .steps = 10, .warmup = 2};
    int rc = 1, graph = 0, dev = 0;
    nn_math math = NN_MATH_FP32;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int r = lm_args_take(&A, "bench_lm_gpu", argc, argv, &i);
        if (r < 0)
            return 2;
        if (r)
            continue;
        if (!strcmp(f, "--tf32")) {
            math = NN_MATH_TF32;
        } else if (!strcmp(f, "--graph")) {
            graph = 1;
        } else if (!strcmp(f, "--math")) {
            if (nn_math_parse(&math, v) < 0) {
                fprintf(stderr, "bench_lm_gpu: %s\n", err_msg());
                return 2;
            }
            i++;
        } else if (!strcmp(f, "--device")) {
            if (lm_args_int("bench_lm_gpu", f, v, 0, &dev))
                return 2;
            i++;
        } else {
            fprintf(stderr, "bench_lm_gpu: unknown option %s (see the comment at the top)\n", f);
            return 2;
        }
    }
    const int V = A.vocab, E = A.emb, H = A.hidden, NL = A.layers, B = A.batch, T = A.bptt;
    const int steps = A.steps, warmup = A.warmup;
    nn_backend *be = NULL;
    nn_model *m = NULL;
    nn_acts *a = NULL;
    cuda_optim *opt = NULL;
    cuda_optim_tensor *ts = NULL;
    float *avg = NULL, *sqr = NULL;
    int32_t *x = NULL, *y = NULL;
    void *g = NULL; /* the recorded step (--graph) */
    nn_config cfg = nn_config_lm(V, 1.0f);
    cfg.emb = E, cfg.hidden = H, cfg.layers = NL;
    int n_cuda = 0;
    if (cuda_device_count(&n_cuda) < 0) {
        fprintf(stderr, "SKIP: %s\n", err_msg());
        return 77;
    }
    if (nn_backend_cuda_new(&be, dev) || nn_model_new(&m, &cfg, be) ||
        nn_acts_new(&a, m, B, T, NN_ACTS_DECODER) ||
        cuda_optim_new(&opt, nn_backend_cuda_ctx(be))) {
        fprintf(stderr, "bench_lm_gpu: %s\n", err_msg());
        goto done;
    }
    nn_backend_cuda_set_math(be, math);
    nn_model_init(m, 1);
    size_t np = nn_num_params(m);
    int nt = nn_tensor_count(m);
    avg = be->alloc(be, np * sizeof(float));
    sqr = be->alloc(be, np * sizeof(float));
    ts = calloc((size_t)nt, sizeof *ts);
    x = malloc((size_t)B * T * sizeof *x);
    y = malloc((size_t)B * T * sizeof *y);
    if (!avg || !sqr || !ts || !x || !y) {
        fprintf(stderr, "bench_lm_gpu: out of memory\n");
        goto done;
    }
    for (int k = 0; k < nt; k++) {
        const nn_tensor *t = &nn_tensors(m)[k];
        ts[k] = (cuda_optim_tensor){.offset = t->offset, .n = t->numel, .lr = 1e-3,
                                    .wd = t->no_wd ? 0.0 : 0.01};
    }
    uint32_t s = 12345;
    for (size_t i = 0; i < (size_t)B * T; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (int32_t)((s >> 8) % (uint32_t)V);
        s = s * 1664525u + 1013904223u;
        y[i] = (int32_t)((s >> 8) % (uint32_t)V);
    }
    if (graph && warmup < 1) {
        fprintf(stderr, "bench_lm_gpu: --graph needs --warmup >= 1 (the step recorded must not be "
                        "the first)\n");
        goto done;
    }
    cuda_adam_args adam = {.params = nn_params(m), .grads = nn_grads(m), .avg = avg, .sqr = sqr,
                           .tensors = ts, .count = nt, .mom = 0.9, .sqr_mom = 0.99, .eps = 1e-5};
    double t_fwd = 0, t_bwd = 0, t_opt = 0, t_graph = 0, loss = 0;
    for (int it = 0; it < warmup + steps; it++) {
        nn_lm_loss l;
        nn_backend_cuda_sync(be);
        if (graph && it >= warmup) {
            if (!g) { /* record forward + backward + clip + Adam once, outside the timing */
                int r = be->capture_begin(be);
                if (!r)
                    r = nn_lm_forward_queue(m, a);
                if (!r) {
                    nn_zero_grad(m);
                    r = nn_lm_backward(m, a);
                }
                if (!r) {
                    cuda_optim_clip_queue(opt, nn_grads(m), ts, nt, 0.1);
                    cuda_optim_adam_queue(opt, &adam);
                }
                if (be->capture_end(be, &g) || r) {
                    fprintf(stderr, "bench_lm_gpu: recording the step: %s\n", err_msg());
                    goto done;
                }
            }
            double t0 = bench_now();
            nn_masks_sample(m, a, 99, (uint64_t)it);
            for (int k = 0; k < nt; k++)
                ts[k].step = it + 1;
            if (nn_lm_set_batch(m, a, x, y, B, T) || cuda_optim_adam_set(opt, &adam) ||
                be->graph_launch(be, g) || nn_lm_loss_read(m, a, &l)) {
                fprintf(stderr, "bench_lm_gpu: %s\n", err_msg());
                goto done;
            }
            (void)cuda_optim_clip_norm(opt); /* read like the eager step's, for the same work */
            t_graph += bench_now() - t0;
            loss = l.ce;
            continue;
        }
        double t0 = bench_now();
        nn_masks_sample(m, a, 99, (uint64_t)it);
        if (nn_lm_forward(m, a, x, y, B, T, &l)) {
            fprintf(stderr, "bench_lm_gpu: %s\n", err_msg());
            goto done;
        }
        double t1 = bench_now(); /* forward ends with the loss reductions: the stream is drained */
        nn_zero_grad(m);
        nn_lm_backward(m, a);
        nn_backend_cuda_sync(be);
        double t2 = bench_now();
        cuda_optim_clip_grad_norm(opt, nn_grads(m), ts, nt, 0.1);
        for (int k = 0; k < nt; k++)
            ts[k].step = it + 1;
        cuda_optim_adam_step(opt, &adam);
        nn_backend_cuda_sync(be);
        double t3 = bench_now();
        if (it >= warmup)
            t_fwd += t1 - t0, t_bwd += t2 - t1, t_opt += t3 - t2;
        loss = l.ce;
    }
    if (!isfinite(loss)) {
        fprintf(stderr, "bench_lm_gpu: the loss is %g in %s math: not a usable timing\n", loss,
                nn_math_name(math));
        goto done;
    }
    double step = (t_fwd + t_bwd + t_opt + t_graph) / steps;
    printf("{\"bench\":\"lm_step\",\"backend\":\"%s\",\"device\":\"%s\",\"math\":\"%s\","
           "\"vocab\":%d,"
           "\"emb\":%d,\"hidden\":%d,\"layers\":%d,\"batch\":%d,\"bptt\":%d,\"steps\":%d,"
           "\"params\":%zu,\"fwd_ms\":%.3f,\"bwd_ms\":%.3f,\"opt_ms\":%.3f,\"step_ms\":%.3f,"
           "\"tokens\":%d,\"tokens_per_s\":%.1f,\"loss\":%.4f}\n",
           graph ? "cuda-graph" : "cuda", nn_backend_cuda_ctx(be)->name, nn_math_name(math), V, E,
           H, NL, B, T, steps, np,
           1e3 * t_fwd / steps, 1e3 * t_bwd / steps, 1e3 * t_opt / steps, 1e3 * step,
           B * T, (double)B * T / step, loss);
    rc = 0;
done:
    if (g)
        be->graph_free(be, g);
    free(x);
    free(y);
    free(ts);
    cuda_optim_free(opt);
    if (be) {
        be->release(be, avg);
        be->release(be, sqr);
    }
    nn_acts_free(m, a);
    nn_model_free(m);
    if (be)
        be->destroy(be);
    return rc;
}
