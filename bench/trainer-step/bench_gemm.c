/* bench_gemm: the matrix products of one AWD-LSTM LM training step (fastai's size by default),
 * each timed on kubefit's gemm_cpu.c kernels and on OpenBLAS's cblas_sgemm, one JSON line per
 * shape and kernel:
 *   {"bench":"gemm","shape":"l1.fwd.x","impl":"avx512","M":..,"N":..,"K":..,"ta":0,"tb":1,
 *    "threads":2,"ms":..,"gflops":..,"cpu_ms":..,"gflops_per_cpu_s":..}
 * and a last line with the step's products in total (the recurrent ones counted t times).
 *   bench_gemm [--threads N] [--reps R] [--impl avx512,avx2,c,amx-bf16,openblas] [--only SHAPE]
 *              [--emb E] [--hidden H] [--vocab V] [--batch B] [--bptt T]
 *              [--shape M,N,K[,ta,tb]]   (one shape of one's own instead of the step's)
 * The recurrent products use the packed path (gemm_cpu.h nn_gemm_run_packed) on ours and
 * cblas_sgemm on OpenBLAS, as the backend does. OPENBLAS_CORETYPE picks OpenBLAS's kernel.
 * ms is the best repetition's wall time, cpu_ms the least process CPU time of one (on a shared
 * machine the rate per CPU-second is the steadier figure). */
#include <cblas.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gemm_cpu.h"
#include "pool.h"

void openblas_set_num_threads(int num_threads);
char *openblas_get_corename(void);

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct shape {
    char name[32];
    int M, N, K;
    bool ta, tb, packed; /* packed: a recurrent product (M = batch), repeated t times a step */
    int per_step;        /* how often a step makes it */
} shape;

static float *rand_array(size_t n)
{
    float *x = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    for (size_t i = 0; i < n && x; i++)
        x[i] = (float)rand() / RAND_MAX - 0.5f;
    return x;
}

/* Seconds per product, best of reps: wall time, and in *cpu the least process CPU time (all
 * threads) of one repetition. */
static double time_one(const shape *s, const char *impl, nn_gemm *g, int reps, double *cpu)
{
    int lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N;
    float *A = rand_array((size_t)s->M * s->K), *B = rand_array((size_t)s->K * s->N);
    float *C = rand_array((size_t)s->M * s->N), *P = NULL;
    bool blas = !strcmp(impl, "openblas");
    if (s->packed && !blas) {
        P = aligned_alloc(64, nn_gemm_packed_size(g, s->K, s->N) * sizeof(float));
        nn_gemm_pack(g, P, B, ldb, s->tb, s->K, s->N);
    }
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
        if (blas)
            cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans,
                        s->tb ? CblasTrans : CblasNoTrans, s->M, s->N, s->K, 1.0f, A, lda, B, ldb,
                        1.0f, C, s->N);
        else if (P)
            nn_gemm_run_packed(g, s->M, s->N, s->K, A, lda, P, 1.0f, C, s->N);
        else
            nn_gemm_run(g, s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, lda, B, ldb, 1.0f, C, s->N);
        double dt = clock_s(CLOCK_MONOTONIC) - t0, dc = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
        best = dt < best ? dt : best;
        *cpu = r == 0 || dc < *cpu ? dc : *cpu;
    }
    free(A), free(B), free(C), free(P);
    return best;
}

int main(int argc, char **argv)
{
    int threads = 1, reps = 5, E = 400, H = 1152, V = 8000, Bt = 32, T = 70;
    const char *impls = "avx512,avx2,openblas", *only = NULL, *custom = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *f = argv[i], *v = argv[i + 1];
        if (!strcmp(f, "--threads")) threads = atoi(v);
        else if (!strcmp(f, "--reps")) reps = atoi(v);
        else if (!strcmp(f, "--impl")) impls = v;
        else if (!strcmp(f, "--only")) only = v;
        else if (!strcmp(f, "--shape")) custom = v;
        else if (!strcmp(f, "--emb")) E = atoi(v);
        else if (!strcmp(f, "--hidden")) H = atoi(v);
        else if (!strcmp(f, "--vocab")) V = atoi(v);
        else if (!strcmp(f, "--batch")) Bt = atoi(v);
        else if (!strcmp(f, "--bptt")) T = atoi(v);
        else {
            fprintf(stderr, "bench_gemm: bad option %s (see the comment at the top)\n", f);
            return 2;
        }
    }
    int N = Bt * T, ins[3] = {E, H, H}, outs[3] = {H, H, E};
    shape sh[64];
    int ns = 0;
    for (int l = 0; l < 3; l++) {
        int In = ins[l], Ho = outs[l];
        /* forward: gates = x W_ih^T; recurrent gates_s += h W_hh^T */
        sh[ns++] = (shape){"", N, 4 * Ho, In, false, true, false, 1};
        snprintf(sh[ns - 1].name, 32, "l%d.fwd.x", l);
        sh[ns++] = (shape){"", Bt, 4 * Ho, Ho, false, true, true, T};
        snprintf(sh[ns - 1].name, 32, "l%d.fwd.h", l);
        /* backward: dh += dg W_hh; dW_hh = dg^T h; dW_ih = dg^T x; dx = dg W_ih */
        sh[ns++] = (shape){"", Bt, Ho, 4 * Ho, false, false, true, T - 1};
        snprintf(sh[ns - 1].name, 32, "l%d.bwd.h", l);
        sh[ns++] = (shape){"", 4 * Ho, Ho, N, true, false, false, 1};
        snprintf(sh[ns - 1].name, 32, "l%d.bwd.whh", l);
        sh[ns++] = (shape){"", 4 * Ho, In, N, true, false, false, 1};
        snprintf(sh[ns - 1].name, 32, "l%d.bwd.wih", l);
        sh[ns++] = (shape){"", N, In, 4 * Ho, false, false, false, 1};
        snprintf(sh[ns - 1].name, 32, "l%d.bwd.x", l);
    }
    sh[ns++] = (shape){"dec.fwd", N, V, E, false, true, false, 1};
    sh[ns++] = (shape){"dec.bwd.w", V, E, N, true, false, false, 1};
    sh[ns++] = (shape){"dec.bwd.x", N, E, V, false, false, false, 1};
    if (custom) { /* one shape of one's own instead: M,N,K,ta,tb */
        shape c = {"custom", 0, 0, 0, false, false, false, 1};
        int ta = 0, tb = 0;
        if (sscanf(custom, "%d,%d,%d,%d,%d", &c.M, &c.N, &c.K, &ta, &tb) < 3 || c.M < 1 ||
            c.N < 1 || c.K < 1) {
            fprintf(stderr, "bench_gemm: --shape M,N,K[,ta,tb]\n");
            return 2;
        }
        c.ta = ta, c.tb = tb, sh[0] = c, ns = 1;
    }

    nn_pool *pool = NULL;
    if (nn_pool_new(&pool, threads) < 0)
        return 1;
    openblas_set_num_threads(threads);
    char list[256];
    snprintf(list, sizeof list, "%s", impls);
    for (char *save = NULL, *impl = strtok_r(list, ",", &save); impl;
         impl = strtok_r(NULL, ",", &save)) {
        nn_gemm *g = NULL;
        const nn_gemm_arch *arch = NULL;
        if (strcmp(impl, "openblas") != 0) {
            bool bf16 = !strcmp(impl, "amx-bf16");
            if (!(arch = bf16 ? nn_gemm_arch_best() : nn_gemm_arch_named(impl))) {
                fprintf(stderr, "bench_gemm: %s: unknown or not on this CPU\n", impl);
                continue;
            }
            if (nn_gemm_new(&g, pool, arch) < 0)
                return 1;
            if (bf16 && nn_gemm_set_bf16(g, true) < 0) {
                fprintf(stderr, "bench_gemm: %s: not on this CPU\n", impl);
                nn_gemm_free(g);
                continue;
            }
        }
        const char *label = g ? impl : openblas_get_corename();
        double total = 0, total_cpu = 0, flops = 0;
        for (int i = 0; i < ns; i++) {
            if (only && strcmp(only, sh[i].name) != 0)
                continue;
            double cpu = 0, s = time_one(&sh[i], impl, g, reps, &cpu);
            double f = 2.0 * sh[i].M * sh[i].N * sh[i].K;
            total += s * sh[i].per_step, total_cpu += cpu * sh[i].per_step;
            flops += f * sh[i].per_step;
            printf("{\"bench\":\"gemm\",\"shape\":\"%s\",\"impl\":\"%s%s\",\"M\":%d,\"N\":%d,"
                   "\"K\":%d,\"ta\":%d,\"tb\":%d,\"threads\":%d,\"ms\":%.3f,\"gflops\":%.1f,"
                   "\"cpu_ms\":%.3f,\"gflops_per_cpu_s\":%.1f}\n",
                   sh[i].name, g ? "" : "openblas-", label, sh[i].M, sh[i].N, sh[i].K, sh[i].ta,
                   sh[i].tb, threads, s * 1e3, f / s * 1e-9, cpu * 1e3, f / cpu * 1e-9);
            fflush(stdout);
        }
        printf("{\"bench\":\"gemm_step\",\"impl\":\"%s%s\",\"threads\":%d,\"ms\":%.1f,"
               "\"gflops\":%.1f,\"cpu_ms\":%.1f,\"gflops_per_cpu_s\":%.1f}\n",
               g ? "" : "openblas-", label, threads, total * 1e3, flops / total * 1e-9,
               total_cpu * 1e3, flops / total_cpu * 1e-9);
        nn_gemm_free(g);
    }
    nn_pool_free(pool);
    return 0;
}
