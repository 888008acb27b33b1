/* bench_lm: times forward + backward of the AWD-LSTM LM on the CPU backend and prints tokens/s.
 *   bench_lm [--vocab V] [--emb E] [--hidden H] [--layers NL] [--batch B] [--bptt T]
 *            [--steps N] [--warmup W] [--threads N] [--eval]
 * Prints one JSON line: {"bench":"lm_fwd_bwd", ..., "fwd_ms" (dropout masks + forward + loss),
 * "bwd_ms" (zero_grad + backward; wall per step),
 * "cpu_ms" (process CPU time per step, all threads; steadier on a shared machine),
 * "tokens_per_s"}. Defaults: fastai's LM (emb 400, hidden 1152, 3 layers), V 8000, B 32, T 70.
 * The "train" engineer's bench/trainer-cpu.sh compares it against PyTorch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "lm_bench.h"
#include "nn.h"

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    lm_args A = {.vocab = 8000, .emb = 400, .hidden = 1152, .layers = 3, .batch = 32, .bptt = 70,
                 .steps = 5, .warmup = 1};
    int threads = 0, eval = 0, rc = 1;
    for (int i = 1; i < argc; i++) {
        int r = lm_args_take(&A, "bench_lm", argc, argv, &i);
        if (r < 0)
            return 2;
        if (r)
            continue;
        if (!strcmp(argv[i], "--eval")) {
            eval = 1;
        } else if (!strcmp(argv[i], "--threads")) {
            if (lm_args_int("bench_lm", "--threads", i + 1 < argc ? argv[i + 1] : NULL, 0, &threads))
                return 2;
            i++;
        } else {
            fprintf(stderr, "bench_lm: unknown option %s (see the comment at the top)\n", argv[i]);
            return 2;
        }
    }
    const int V = A.vocab, E = A.emb, H = A.hidden, NL = A.layers, B = A.batch, T = A.bptt;
    const int steps = A.steps, warmup = A.warmup;
    nn_backend *be = NULL;
    nn_model *m = NULL;
    nn_acts *a = NULL;
    int32_t *x = NULL, *y = NULL;
    nn_config cfg = nn_config_lm(V, 1.0f);
    cfg.emb = E, cfg.hidden = H, cfg.layers = NL;
    if (nn_backend_cpu_new(&be, threads) || nn_model_new(&m, &cfg, be) ||
        nn_acts_new(&a, m, B, T, NN_ACTS_DECODER)) {
        fprintf(stderr, "bench_lm: %s\n", err_msg());
        goto done;
    }
    nn_model_init(m, 1);
    x = malloc((size_t)B * T * sizeof *x);
    y = malloc((size_t)B * T * sizeof *y);
    if (!x || !y)
        goto done;
    uint32_t s = 12345;
    for (size_t i = 0; i < (size_t)B * T; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (int32_t)((s >> 8) % (uint32_t)V);
        s = s * 1664525u + 1013904223u;
        y[i] = (int32_t)((s >> 8) % (uint32_t)V);
    }
    double t_fwd = 0, t_bwd = 0, loss = 0, cpu = 0;
    for (int it = 0; it < warmup + steps; it++) {
        nn_lm_loss l;
        /* The masks count as forward time: PyTorch draws them inside its forward. */
        double c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID), t0 = bench_now();
        if (eval)
            a->training = false;
        else
            nn_masks_sample(m, a, 99, (uint64_t)it);
        if (nn_lm_forward(m, a, x, y, B, T, &l)) {
            fprintf(stderr, "bench_lm: %s\n", err_msg());
            goto done;
        }
        double t1 = bench_now();
        nn_zero_grad(m);
        nn_lm_backward(m, a);
        double t2 = bench_now();
        if (it >= warmup)
            t_fwd += t1 - t0, t_bwd += t2 - t1, cpu += clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
        loss = l.ce;
    }
    double tok = (double)B * T * steps;
    printf("{\"bench\":\"lm_fwd_bwd\",\"backend\":\"%s\",\"threads\":%d,\"vocab\":%d,\"emb\":%d,"
           "\"hidden\":%d,\"layers\":%d,\"batch\":%d,\"bptt\":%d,\"steps\":%d,\"params\":%zu,"
           "\"fwd_ms\":%.2f,\"bwd_ms\":%.2f,\"cpu_ms\":%.2f,\"tokens_per_s\":%.1f,\"loss\":%.4f}\n",
           be->name, be->threads, V, E, H, NL, B, T, steps, nn_num_params(m),
           1e3 * t_fwd / steps, 1e3 * t_bwd / steps, 1e3 * cpu / steps, tok / (t_fwd + t_bwd),
           loss);
    rc = 0;
done:
    free(x);
    free(y);
    nn_acts_free(m, a);
    nn_model_free(m);
    if (be)
        be->destroy(be);
    return rc;
}
