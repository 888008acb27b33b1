/* bench_step: times full training steps of the AWD-LSTM LM on the CPU backend - dropout masks,
 * forward, loss (CE + AR + TAR), backward, fastai Adam step - and prints one JSON line:
 *   {"bench":"lm_train_step", "gemm" (the product kernels: avx512, avx2, c or openblas, see
 *    KUBEFIT_GEMM in trainer/nn/backend_cpu.c), sizes..., "step_ms" (wall per step), "cpu_ms"
 *    (process CPU per step, all threads), "tokens_per_s" (B*T / step wall time)}
 *   bench_step [--vocab V] [--emb E] [--hidden H] [--layers NL] [--batch B] [--bptt T]
 *              [--steps N] [--warmup W] [--threads N] [--precision fp32|bf16]
 * --precision bf16: the products on bfloat16 operands (nn_backend_cpu_set_bf16, AMX).
 * Defaults: fastai's LM (emb 400, hidden 1152, 3 layers), V 8000, B 32, T 70.
 * bench/trainer-cpu.sh compares it with bench/trainer-cpu/torch_lm.py --adam. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "nn.h"
#include "optim.h"

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    int V = 8000, E = 400, H = 1152, NL = 3, B = 32, T = 70, steps = 5, warmup = 1, threads = 0, rc = 1;
    const char *precision = "fp32";
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *f = argv[i];
        if (!strcmp(f, "--precision") &&
            (!strcmp(argv[i + 1], "fp32") || !strcmp(argv[i + 1], "bf16"))) {
            precision = argv[i + 1];
            continue;
        }
        int *dst = !strcmp(f, "--vocab") ? &V : !strcmp(f, "--emb") ? &E : !strcmp(f, "--hidden") ? &H
                 : !strcmp(f, "--layers") ? &NL : !strcmp(f, "--batch") ? &B : !strcmp(f, "--bptt") ? &T
                 : !strcmp(f, "--steps") ? &steps : !strcmp(f, "--warmup") ? &warmup
                 : !strcmp(f, "--threads") ? &threads : NULL;
        if (!dst || atoi(argv[i + 1]) < 0) {
            fprintf(stderr, "bench_step: bad option %s (see the comment at the top)\n", f);
            return 2;
        }
        *dst = atoi(argv[i + 1]);
    }
    nn_backend *be = NULL;
    nn_model *m = NULL;
    nn_acts *a = NULL;
    optim *o = NULL;
    optim_param *p = NULL;
    int32_t *x = malloc((size_t)B * T * sizeof *x), *y = malloc((size_t)B * T * sizeof *y);
    if (!x || !y || nn_backend_cpu_new(&be, threads) < 0)
        goto done;
    if (!strcmp(precision, "bf16") && nn_backend_cpu_set_bf16(be, true) < 0)
        goto done;
    nn_config cfg = nn_config_lm(V, 1.0f);
    cfg.emb = E;
    cfg.hidden = H;
    cfg.layers = NL;
    if (nn_model_new(&m, &cfg, be) < 0 || nn_acts_new(&a, m, B, T, NN_ACTS_DECODER) < 0)
        goto done;
    nn_model_init(m, 1);
    const nn_tensor *t = nn_tensors(m);
    int nt = nn_tensor_count(m);
    if (!(p = calloc((size_t)nt, sizeof *p)))
        goto done;
    for (int i = 0; i < nt; i++)
        p[i] = (optim_param){.name = t[i].name, .param = nn_params(m) + t[i].offset,
                             .grad = nn_grads(m) + t[i].offset, .n = t[i].numel, .group = t[i].group};
    if (optim_new(&o, p, (size_t)nt, NL + 1, OPTIM_HPARAMS_DEFAULT) < 0)
        goto done;
    for (int g = 0; g < NL + 1; g++)
        optim_set_lr(o, g, 1e-3);
    srand(1);
    for (int i = 0; i < B * T; i++) {
        x[i] = rand() % V;
        y[i] = rand() % V;
    }
    double w0 = 0, c0 = 0;
    for (int s = 0; s < warmup + steps; s++) {
        if (s == warmup) {
            w0 = clock_s(CLOCK_MONOTONIC);
            c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
        }
        nn_lm_loss loss;
        nn_masks_sample(m, a, 7, (uint64_t)s);
        if (nn_lm_forward(m, a, x, y, B, T, &loss) < 0)
            goto done;
        nn_zero_grad(m);
        if (nn_lm_backward(m, a) < 0)
            goto done;
        optim_step(o);
    }
    double wall = (clock_s(CLOCK_MONOTONIC) - w0) / steps, cpu = (clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0) / steps;
    printf("{\"bench\":\"lm_train_step\",\"impl\":\"kubefit\",\"gemm\":\"%s\",\"vocab\":%d,\"emb\":%d,"
           "\"hidden\":%d,\"layers\":%d,\"batch\":%d,\"bptt\":%d,\"steps\":%d,\"threads\":%d,"
           "\"step_ms\":%.3f,\"cpu_ms\":%.3f,\"tokens_per_s\":%.1f}\n",
           nn_backend_cpu_gemm(be), V, E, H, NL, B, T, steps, be->threads, wall * 1e3, cpu * 1e3,
           B * T / wall);
    rc = 0;
done:
    if (rc)
        fprintf(stderr, "bench_step: %s\n", err_msg());
    optim_free(o);
    free(p);
    if (a)
        nn_acts_free(m, a);
    nn_model_free(m);
    if (be)
        be->destroy(be);
    free(x);
    free(y);
    return rc;
}
