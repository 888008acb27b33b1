/* bench_clf_gpu: times the trainer's classifier training step (trainer/train fit.c) on the CUDA
 * backend: SentenceEncoder over BPTT chunks (masks, encoder forward per chunk), the pooling
 * head (BatchNorm, dropout, linear) and multi-label BCE, backward through the head and every
 * kept chunk with AR/TAR, global-norm gradient clipping and Adam over the encoder's and the
 * head's tensors (the backend's clip_queue/clip_norm and adam_set/adam_queue ops, as
 * trainer/train optim.c uses them) - the work PyTorch does in bench_clf_torch.py.
 *   bench_clf_gpu [--vocab V] [--emb E] [--hidden H] [--layers NL] [--batch B] [--bptt T]
 *                 [--min-len N0] [--max-len N1] [--labels L] [--steps N] [--warmup W]
 *                 [--math fp32|tf32|bf16] [--device D] [--cpu]
 * Defaults: fastai's classifier (E 400, H 1152, 3 layers, drop_mult 0.5, head [3E, 50, L]),
 * V 60000, B 64, T 72, L 200, document lengths spread evenly from 1400 down to 400 tokens
 * (sorted longest first, padded pad-first as fastai's pad_input_chunk), the same batch every step.
 * Prints one JSON line: {"bench":"clf_step","backend":"cuda","math":..,"fwd_ms","bwd_ms",
 * "opt_ms","step_ms","tokens" (encoder positions run per step: sum over chunks of rows that are
 * not padding at the chunk start x chunk length),"tokens_per_s","loss"}.
 * --cpu runs the same step on the CPU backend without the optimizer (the CPU backend has no
 * optimizer ops), to check this program on a machine without a GPU (tiny sizes).
 * Dimension legend: B batch, S padded length, T bptt, L labels. Exits 77 without a GPU. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend_cuda.h"
#include "classifier.h"
#include "err.h"
#include "head_cuda.h"
#include "nn.h"
#include "sentence.h"

#define DROP_MULT 0.5f /* fastai text_classifier_learner's default */
#define SEED 99

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct bench_opts {
    int V, E, H, NL, B, T, len_min, len_max, L, steps, warmup, dev;
    nn_math math;
    bool cpu;
} bench_opts;

static int parse_args(bench_opts *o, int argc, char **argv)
{
    for (int i = 1; i < argc; i += 2) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(f, "--cpu")) {
            o->cpu = true;
            i--;
            continue;
        }
        if (!strcmp(f, "--math")) {
            if (nn_math_parse(&o->math, v) < 0) {
                fprintf(stderr, "bench_clf_gpu: %s\n", err_msg());
                return -1;
            }
            continue;
        }
        int *dst = !strcmp(f, "--vocab")     ? &o->V
                   : !strcmp(f, "--emb")     ? &o->E
                   : !strcmp(f, "--hidden")  ? &o->H
                   : !strcmp(f, "--layers")  ? &o->NL
                   : !strcmp(f, "--batch")   ? &o->B
                   : !strcmp(f, "--bptt")    ? &o->T
                   : !strcmp(f, "--min-len") ? &o->len_min
                   : !strcmp(f, "--max-len") ? &o->len_max
                   : !strcmp(f, "--labels")  ? &o->L
                   : !strcmp(f, "--steps")   ? &o->steps
                   : !strcmp(f, "--warmup")  ? &o->warmup
                   : !strcmp(f, "--device")  ? &o->dev
                                             : NULL;
        char *end;
        long x = v ? strtol(v, &end, 10) : -1;
        int lo = dst == &o->warmup || dst == &o->dev ? 0 : dst == &o->B || dst == &o->V ? 2 : 1;
        if (!dst || !v || *end || x < lo || x > 1 << 24) {
            fprintf(stderr, "bench_clf_gpu: %s: unknown option or not an integer >= %d (see the "
                            "comment at the top)\n", f, lo);
            return -1;
        }
        *dst = (int)x;
    }
    if (o->len_min > o->len_max) {
        fprintf(stderr, "bench_clf_gpu: --min-len %d > --max-len %d\n", o->len_min, o->len_max);
        return -1;
    }
    return 0;
}

/* Length of row r: evenly from len_max (row 0) down to len_min (row B-1). bench_clf_torch.py
 * uses the same formula. */
static int row_len(const bench_opts *o, int r)
{
    return o->len_max - (int)((long long)(o->len_max - o->len_min) * r / (o->B - 1));
}

/* tokens (B,S) pad-first as fastai's pad_input_chunk: whole bptt chunks of padding in front,
 * the rest at the end; random ids in [2, V). Returns the encoder positions one forward runs. */
static long long make_batch(int32_t *tok, const bench_opts *o, int S, int pad)
{
    uint32_t s = 12345;
    for (int r = 0; r < o->B; r++) {
        int n = row_len(o, r), front = (S - n) / o->T * o->T;
        for (int t = 0; t < S; t++) {
            s = s * 1664525u + 1013904223u;
            tok[(size_t)r * S + t] = t >= front && t < front + n
                                         ? 2 + (int32_t)((s >> 8) % (uint32_t)(o->V - 2)) : pad;
        }
    }
    long long run = 0;
    for (int i = 0; i < S; i += o->T) {
        int rows = 0, len = S - i < o->T ? S - i : o->T;
        for (int r = 0; r < o->B; r++)
            rows += tok[(size_t)r * S + i] != pad;
        run += (long long)rows * len;
    }
    return run;
}

/* Appends the optimizer entries of one block (params/grads/avg/sqr of the same layout; the LM
 * decoder's tensors are not part of the classifier) to ts; returns the new count. */
static int optim_list(nn_opt_tensor *ts, int k, const nn_tensor *t, int n, float *params,
                      float *grads, float *avg, float *sqr)
{
    for (int i = 0; i < n; i++) {
        size_t o = t[i].offset;
        if (strncmp(t[i].name, "1.decoder.", 10) != 0)
            ts[k++] = (nn_opt_tensor){.param = params + o, .grad = grads + o, .avg = avg + o,
                                      .sqr = sqr + o, .n = t[i].numel, .lr = 1e-3,
                                      .wd = t[i].no_wd ? 0.0 : 0.01};
    }
    return k;
}

int main(int argc, char **argv)
{
    bench_opts o = {.V = 60000, .E = 400, .H = 1152, .NL = 3, .B = 64, .T = 72, .len_min = 400,
                    .len_max = 1400, .L = 200, .steps = 10, .warmup = 2};
    if (parse_args(&o, argc, argv) < 0)
        return 2;
    int n_cuda = 0, rc = 1;
    if (!o.cpu && cuda_device_count(&n_cuda) < 0) {
        fprintf(stderr, "SKIP: %s\n", err_msg());
        return 77;
    }
    nn_backend *be = NULL;
    nn_model *m = NULL;
    head_clf *head = NULL;
    head_sentence *sent = NULL;
    nn_opt_tensor *ts = NULL;
    float *avg_e = NULL, *sqr_e = NULL, *avg_h = NULL, *sqr_h = NULL, *y = NULL;
    int32_t *tok = NULL;
    nn_config cfg = nn_config_clas(o.V, DROP_MULT);
    cfg.emb = o.E, cfg.hidden = o.H, cfg.layers = o.NL;
    head_config hc = head_config_default(o.E, o.L, true, DROP_MULT);
    hc.bptt = o.T;
    head_sentence_config sc = head_sentence_config_default();
    sc.bptt = o.T;
    sc.max_len = 0; /* keep every chunk (fastai keeps 72*20 = 1440 >= the default lengths) */
    if ((o.cpu ? nn_backend_cpu_new(&be, 2) : nn_backend_cuda_new(&be, o.dev)) ||
        nn_model_new(&m, &cfg, be) || nn_model_init(m, 1) ||
        head_clf_new(&head, &hc, be, o.cpu ? NULL : head_kernels_cuda(), o.B) ||
        head_clf_init(head, 2) || head_sentence_new(&sent, m, &sc, o.B)) {
        fprintf(stderr, "bench_clf_gpu: %s\n", err_msg());
        goto done;
    }
    nn_backend_cuda_set_math(be, o.math);
    const int S = o.len_max, ne_all = nn_tensor_count(m), nh_all = head_tensor_count(head);
    size_t npe = nn_num_params(m), nph = head_num_params(head);
    ts = calloc((size_t)(ne_all + nh_all), sizeof *ts);
    tok = malloc((size_t)o.B * S * sizeof *tok);
    y = malloc((size_t)o.B * o.L * sizeof *y);
    avg_e = be->alloc(be, npe * sizeof(float));
    sqr_e = be->alloc(be, npe * sizeof(float));
    avg_h = be->alloc(be, nph * sizeof(float));
    sqr_h = be->alloc(be, nph * sizeof(float));
    if (!ts || !tok || !y || !avg_e || !sqr_e || !avg_h || !sqr_h) {
        fprintf(stderr, "bench_clf_gpu: out of memory\n");
        goto done;
    }
    int nt = optim_list(ts, 0, nn_tensors(m), ne_all, nn_params(m), nn_grads(m), avg_e, sqr_e);
    nt = optim_list(ts, nt, head_tensors(head), nh_all, head_params(head), head_grads(head), avg_h,
                    sqr_h);
    size_t trained = 0; /* what the optimizer updates, as torch's sum of requires_grad numel */
    for (int k = 0; k < nt; k++)
        trained += ts[k].n;
    if (!o.cpu && (!be->adam_set || !be->clip_queue)) {
        fprintf(stderr, "bench_clf_gpu: the CUDA backend has no optimizer ops\n");
        goto done;
    }
    long long run = make_batch(tok, &o, S, cfg.pad_token);
    uint32_t s = 777;
    for (size_t i = 0; i < (size_t)o.B * o.L; i++) { /* about 5% positive labels */
        s = s * 1664525u + 1013904223u;
        y[i] = (s >> 8) % 20 == 0 ? 1.0f : 0.0f;
    }
    head_targets targets = {.multi = y};
    double t_fwd = 0, t_bwd = 0, t_opt = 0, loss = 0;
    for (int it = 0; it < o.warmup + o.steps; it++) {
        int T_out = 0;
        nn_backend_cuda_sync(be);
        double t0 = now();
        head_forward_opts fo = {.training = true, .seed = SEED, .step = (uint64_t)it};
        if (head_sentence_forward(sent, tok, o.B, S, &fo) < 0) {
            fprintf(stderr, "bench_clf_gpu: %s\n", err_msg());
            goto done;
        }
        const float *enc = head_sentence_output(sent, &T_out);
        head_clf_masks_sample(head, o.B, SEED, (uint64_t)it);
        if (head_clf_forward(head, enc, head_sentence_pad(sent), o.B, T_out, true) < 0 ||
            head_clf_loss(head, &loss, &targets, 1.0f) < 0) { /* the loss comes to the host */
            fprintf(stderr, "bench_clf_gpu: %s\n", err_msg());
            goto done;
        }
        double t1 = now();
        nn_zero_grad(m);
        head_zero_grad(head);
        if (head_clf_backward(head, head_sentence_dout(sent)) < 0 ||
            head_sentence_backward(sent) < 0) {
            fprintf(stderr, "bench_clf_gpu: %s\n", err_msg());
            goto done;
        }
        nn_backend_cuda_sync(be);
        double t2 = now();
        if (be->adam_set) { /* the CPU backend (--cpu) has none */
            for (int k = 0; k < nt; k++)
                ts[k].step = it + 1;
            be->clip_queue(be, ts, nt, 0.1);
            (void)be->clip_norm(be); /* read, as the trainer's clip does */
            if (be->adam_set(be, ts, nt, 0.9, 0.99, 1e-5) < 0) {
                fprintf(stderr, "bench_clf_gpu: %s\n", err_msg());
                goto done;
            }
            be->adam_queue(be, ts, nt);
            nn_backend_cuda_sync(be);
        }
        double t3 = now();
        if (it >= o.warmup)
            t_fwd += t1 - t0, t_bwd += t2 - t1, t_opt += t3 - t2;
    }
    if (!isfinite(loss)) {
        fprintf(stderr, "bench_clf_gpu: the loss is %g in %s math: not a usable timing\n", loss,
                nn_math_name(o.math));
        goto done;
    }
    double step = (t_fwd + t_bwd + t_opt) / o.steps;
    printf("{\"bench\":\"clf_step\",\"backend\":\"%s\",\"device\":\"%s\",\"math\":\"%s\","
           "\"vocab\":%d,\"emb\":%d,\"hidden\":%d,\"layers\":%d,\"batch\":%d,\"bptt\":%d,"
           "\"min_len\":%d,\"max_len\":%d,\"labels\":%d,\"steps\":%d,\"params\":%zu,"
           "\"fwd_ms\":%.3f,\"bwd_ms\":%.3f,\"opt_ms\":%.3f,\"step_ms\":%.3f,\"tokens\":%lld,"
           "\"tokens_per_s\":%.1f,\"loss\":%.4f}\n",
           be->name, o.cpu ? "cpu" : nn_backend_cuda_ctx(be)->name, nn_math_name(o.math), o.V, o.E, o.H, o.NL, o.B, o.T,
           o.len_min, o.len_max, o.L, o.steps, trained, 1e3 * t_fwd / o.steps,
           1e3 * t_bwd / o.steps, 1e3 * t_opt / o.steps, 1e3 * step, run, (double)run / step,
           loss);
    rc = 0;
done:
    free(tok);
    free(y);
    free(ts);
    if (be) {
        be->release(be, avg_e), be->release(be, sqr_e);
        be->release(be, avg_h), be->release(be, sqr_h);
    }
    head_sentence_free(sent);
    head_clf_free(head);
    nn_model_free(m);
    if (be)
        be->destroy(be);
    return rc;
}
