/* bench_gemm_gpu: the card's cuBLAS GEMM ceiling per math mode, the yardstick for the TFLOP/s of
 * bench/gpu.sh's table. One large product C(N,N) = A(N,N) B(N,N) on random data in [-1,1):
 *   fp32, tf32, bf16   through cuda_sgemm with that nn_math (float32 storage: what the trainer
 *                      can reach in each mode)
 *   bf16-native        cublasGemmEx with bfloat16 A/B, float32 C, FP32 compute (the tensor-core
 *                      rate with operands already in bf16, for reference)
 * Each: 3 warm-up products, then `reps` timed one by one with CUDA events; the median counts.
 *   bench_gemm_gpu [--size N] [--reps R] [--device D]      defaults 8192, 10, 0
 * Prints one JSON line per mode: {"bench":"gemm","math":..,"n":..,"ms":..,"tflops":..}.
 * Dimension legend: N rows = columns = inner dimension. Exits 77 without a GPU. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_check.h"
#include "cuda_ctx.h"
#include "cuda_matmul.h"
#include "err.h"

#define WARMUP 3

static int parse_int(const char *flag, const char *s, int lo, int hi, int *out)
{
    char *end;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || *end || v < lo || v > hi) {
        fprintf(stderr, "bench_gemm_gpu: %s needs an integer in [%d, %d]\n", flag, lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* bfloat16 bits of x, rounded to nearest even (x finite). */
static uint16_t to_bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

typedef struct gemm_case {
    const char *name;
    nn_math math;
    bool native_bf16;
} gemm_case;

/* Median milliseconds of one product of the case. */
static float time_case(cuda_ctx *ctx, const gemm_case *gc, int n, int reps, float *c,
                       const float *a, const float *b, const uint16_t *a16, const uint16_t *b16,
                       float *ms)
{
    cudaEvent_t t0, t1;
    const float one = 1.0f, zero = 0.0f;
    CUDA_CHECK(cudaEventCreate(&t0));
    CUDA_CHECK(cudaEventCreate(&t1));
    for (int it = 0; it < WARMUP + reps; it++) {
        CUDA_CHECK(cudaEventRecord(t0, ctx->stream));
        if (gc->native_bf16) {
            CUBLAS_CHECK(cublasGemmEx(ctx->blas, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, b16,
                                      CUDA_R_16BF, n, a16, CUDA_R_16BF, n, &zero, c, CUDA_R_32F,
                                      n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        } else {
            cuda_gemm g = {.c = c, .a = a, .b = b, .m = n, .n = n, .k = n, .alpha = 1,
                           .beta = 0, .math = gc->math};
            cuda_sgemm(ctx, &g);
        }
        CUDA_CHECK(cudaEventRecord(t1, ctx->stream));
        CUDA_CHECK(cudaEventSynchronize(t1));
        if (it >= WARMUP)
            CUDA_CHECK(cudaEventElapsedTime(&ms[it - WARMUP], t0, t1));
    }
    CUDA_CHECK(cudaEventDestroy(t0));
    CUDA_CHECK(cudaEventDestroy(t1));
    qsort(ms, (size_t)reps, sizeof *ms, cmp_float);
    return ms[reps / 2];
}

int main(int argc, char **argv)
{
    int n = 8192, reps = 10, dev = 0, n_cuda = 0, rc = 1;
    for (int i = 1; i < argc; i += 2) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int ok = !strcmp(f, "--size")    ? parse_int(f, v, 1, 32768, &n)
                 : !strcmp(f, "--reps")  ? parse_int(f, v, 1, 1000, &reps)
                 : !strcmp(f, "--device") ? parse_int(f, v, 0, 1024, &dev)
                                          : (fprintf(stderr, "bench_gemm_gpu: unknown option %s "
                                                     "(see the comment at the top)\n", f), -1);
        if (ok < 0)
            return 2;
    }
    if (cuda_device_count(&n_cuda) < 0) {
        fprintf(stderr, "SKIP: %s\n", err_msg());
        return 77;
    }
    cuda_ctx ctx;
    size_t nn = (size_t)n * n;
    float *h = malloc(nn * sizeof *h), *ms = malloc((size_t)reps * sizeof *ms);
    uint16_t *h16 = malloc(nn * sizeof *h16);
    float *a = NULL, *b = NULL, *c = NULL;
    uint16_t *a16 = NULL, *b16 = NULL;
    if (!h || !h16 || !ms) {
        fprintf(stderr, "bench_gemm_gpu: out of host memory for %d x %d\n", n, n);
        goto done;
    }
    if (cuda_ctx_init(&ctx, dev) < 0) {
        fprintf(stderr, "bench_gemm_gpu: %s\n", err_msg());
        goto done;
    }
    if (CUDA_TRY(cudaMalloc((void **)&a, nn * sizeof *a)) < 0 ||
        CUDA_TRY(cudaMalloc((void **)&b, nn * sizeof *b)) < 0 ||
        CUDA_TRY(cudaMalloc((void **)&c, nn * sizeof *c)) < 0 ||
        CUDA_TRY(cudaMalloc((void **)&a16, nn * sizeof *a16)) < 0 ||
        CUDA_TRY(cudaMalloc((void **)&b16, nn * sizeof *b16)) < 0) {
        fprintf(stderr, "bench_gemm_gpu: %s\n", err_msg());
        goto dispose;
    }
    uint32_t s = 2024;
    for (int m = 0; m < 2; m++) { /* A, then B: uniform in [-1, 1), never 0 */
        for (size_t i = 0; i < nn; i++) {
            s = s * 1664525u + 1013904223u;
            h[i] = ((float)(s >> 8) + 0.5f) / (float)(1u << 23) - 1.0f;
            h16[i] = to_bf16(h[i]);
        }
        CUDA_CHECK(cudaMemcpy(m ? b : a, h, nn * sizeof *h, cudaMemcpyHostToDevice));
        CUDA_CHECK(cudaMemcpy(m ? b16 : a16, h16, nn * sizeof *h16, cudaMemcpyHostToDevice));
    }
    static const gemm_case cases[] = {{"fp32", NN_MATH_FP32, false},
                                      {"tf32", NN_MATH_TF32, false},
                                      {"bf16", NN_MATH_BF16, false},
                                      {"bf16-native", NN_MATH_BF16, true}};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        float med = time_case(&ctx, &cases[k], n, reps, c, a, b, a16, b16, ms);
        double flop = 2.0 * n * (double)n * n;
        printf("{\"bench\":\"gemm\",\"device\":\"%s\",\"math\":\"%s\",\"n\":%d,\"reps\":%d,"
               "\"ms\":%.4f,\"ms_min\":%.4f,\"tflops\":%.2f}\n",
               ctx.name, cases[k].name, n, reps, med, ms[0], med > 0 ? flop / med * 1e-9 : 0.0);
        fflush(stdout);
    }
    rc = 0;
dispose:
    cudaFree(a), cudaFree(b), cudaFree(c), cudaFree(a16), cudaFree(b16);
    cuda_ctx_dispose(&ctx);
done:
    free(h);
    free(h16);
    free(ms);
    return rc;
}
