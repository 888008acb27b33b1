/* profile_lm_gpu: where the LM training step's device time goes, op by op (cuda_profile.h).
 *   profile_lm_gpu [--vocab V] [--emb E] [--hidden H] [--layers NL] [--batch B] [--bptt T]
 *                  [--steps N] [--warmup W]   defaults: 60000 400 1152 3 64 72, 3 steps, 2 warm-up
 * Runs the warm-up steps (masks, forward, backward; no optimizer), then `steps` recorded ones, and
 * prints cuda_profile_report's JSON lines (top 40 tags) plus the wall time per step. Exits 77
 * without a GPU. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "backend_cuda.h"
#include "cuda_profile.h"
#include "err.h"
#include "lm_bench.h"
#include "nn.h"

int main(int argc, char **argv)
{
    lm_args A = {.vocab = 60000, .emb = 400, .hidden = 1152, .layers = 3, .batch = 64,
                 .bptt = 72, .steps = 3, .warmup = 2};
    int rc = 1, n_cuda = 0;
    for (int i = 1; i < argc; i++) {
        int r = lm_args_take(&A, "profile_lm_gpu", argc, argv, &i);
        if (r < 0)
            return 2;
        if (!r) {
            fprintf(stderr, "profile_lm_gpu: unknown option %s (see the comment at the top)\n",
                    argv[i]);
            return 2;
        }
    }
    const int V = A.vocab, B = A.batch, T = A.bptt, steps = A.steps, warmup = A.warmup;
    if (cuda_device_count(&n_cuda) < 0 || n_cuda == 0) {
        fprintf(stderr, "SKIP: %s\n", err_msg());
        return 77;
    }
    nn_backend *cuda = NULL, *be = NULL;
    nn_model *m = NULL;
    nn_acts *a = NULL;
    int32_t *x = malloc((size_t)B * T * sizeof *x), *y = malloc((size_t)B * T * sizeof *y);
    nn_config cfg = nn_config_lm(V, 1.0f);
    cfg.emb = A.emb, cfg.hidden = A.hidden, cfg.layers = A.layers;
    if (!x || !y || nn_backend_cuda_new(&cuda, 0) || cuda_profile_new(&be, cuda) ||
        nn_model_new(&m, &cfg, be) || nn_acts_new(&a, m, B, T, NN_ACTS_DECODER) ||
        nn_model_init(m, 1)) {
        fprintf(stderr, "profile_lm_gpu: %s\n", err_msg());
        goto done;
    }
    uint32_t s = 777;
    for (size_t i = 0; i < (size_t)B * T; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (int32_t)((s >> 8) % (uint32_t)V);
        s = s * 1664525u + 1013904223u;
        y[i] = (int32_t)((s >> 8) % (uint32_t)V);
    }
    double t0 = 0;
    for (int it = 0; it < warmup + steps; it++) {
        if (it == warmup) {
            cuda_profile_reset(be);
            t0 = bench_now();
        }
        nn_lm_loss l;
        nn_masks_sample(m, a, 5, (uint64_t)it);
        if (nn_lm_forward(m, a, x, y, B, T, &l)) {
            fprintf(stderr, "profile_lm_gpu: %s\n", err_msg());
            goto done;
        }
        nn_zero_grad(m);
        if (nn_lm_backward(m, a)) {
            fprintf(stderr, "profile_lm_gpu: %s\n", err_msg());
            goto done;
        }
    }
    nn_backend_cuda_sync(cuda);
    printf("{\"profile\":\"lm_step\",\"V\":%d,\"E\":%d,\"H\":%d,\"NL\":%d,\"B\":%d,\"T\":%d,"
           "\"steps\":%d,\"wall_ms_per_step\":%.3f}\n",
           V, A.emb, A.hidden, A.layers, B, T, steps, 1e3 * (bench_now() - t0) / steps);
    cuda_profile_report(be, stdout, 40);
    rc = 0;
done:
    nn_acts_free(m, a);
    nn_model_free(m);
    if (be)
        be->destroy(be);
    if (cuda)
        cuda->destroy(cuda);
    free(x);
    free(y);
    return rc;
}
