/* GPU smoke test: cuBLAS SGEMM (all four transpose cases) and the bias kernel against a CPU
 * triple loop in double, on random non-zero inputs. Skips (77) where no GPU or driver is present.
 * Tolerance: |gpu - ref| <= 1e-4 + 1e-4 * |ref|, inputs uniform in [-1, 1) with K <= 515: the
 * float32 rounding error of a K-term dot product stays near K * 6e-8 ~ 3e-5, while a wrong
 * transpose or leading dimension is off by O(1). The bias add is exact (one float add each). */
#include "cuda_check.h"
#include "cuda_ctx.h"
#include "cuda_matmul.h"
#include "test.h"

#include <stdint.h>
#include <time.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

/* Uniform in [-1, 1), never exactly 0 (xorshift64*). */
static float rand_uniform(void)
{
    for (;;) {
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        uint64_t r = rng_state * 0x2545f4914f6cdd1dull;
        float f = (float)((double)(r >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
        if (f != 0.0f)
            return f;
    }
}

static float *host_random(size_t n)
{
    float *p = malloc(n * sizeof *p);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = rand_uniform();
    return p;
}

static float *device_copy(const float *h, size_t n)
{
    float *d = NULL;
    CUDA_CHECK(cudaMalloc((void **)&d, n * sizeof *d));
    CUDA_CHECK(cudaMemcpy(d, h, n * sizeof *d, cudaMemcpyHostToDevice));
    return d;
}

/* c[M,N] = alpha * op(a) @ op(b) + beta * c, row-major, accumulated in double. */
static void cpu_gemm(float *c, const float *a, const float *b, int m, int n, int k, int trans_a,
                     int trans_b, float alpha, float beta)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int p = 0; p < k; p++) {
                double av = trans_a ? a[(size_t)p * m + i] : a[(size_t)i * k + p];
                double bv = trans_b ? b[(size_t)j * k + p] : b[(size_t)p * n + j];
                s += av * bv;
            }
            c[(size_t)i * n + j] = (float)(alpha * s + (double)beta * c[(size_t)i * n + j]);
        }
}

static void check_gemm(cuda_ctx *ctx, int m, int n, int k, int trans_a, int trans_b)
{
    float *a = host_random((size_t)m * k), *b = host_random((size_t)k * n);
    float *c = host_random((size_t)m * n), *ref = malloc((size_t)m * n * sizeof *ref);
    float *got = malloc((size_t)m * n * sizeof *got);
    if (!ref || !got) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    memcpy(ref, c, (size_t)m * n * sizeof *ref);
    float *da = device_copy(a, (size_t)m * k), *db = device_copy(b, (size_t)k * n);
    float *dc = device_copy(c, (size_t)m * n);
    const float alpha = 0.75f, beta = -0.5f;
    cuda_sgemm(ctx, &(cuda_gemm){.c = dc, .a = da, .b = db, .m = m, .n = n, .k = k,
                                 .trans_a = trans_a, .trans_b = trans_b, .alpha = alpha,
                                 .beta = beta});
    CUDA_CHECK(cudaMemcpyAsync(got, dc, (size_t)m * n * sizeof *got, cudaMemcpyDeviceToHost,
                               ctx->stream));
    CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
    cpu_gemm(ref, a, b, m, n, k, trans_a, trans_b, alpha, beta);
    fprintf(stderr, "sgemm m=%d n=%d k=%d trans_a=%d trans_b=%d\n", m, n, k, trans_a, trans_b);
    CHECK_ALLCLOSE(ref, got, (size_t)m * n, 1e-4, 1e-4);
    CUDA_CHECK(cudaFree(da));
    CUDA_CHECK(cudaFree(db));
    CUDA_CHECK(cudaFree(dc));
    free(a), free(b), free(c), free(ref), free(got);
}

static void check_bias_add(cuda_ctx *ctx, int m, int n)
{
    float *y = host_random((size_t)m * n), *bias = host_random((size_t)n);
    float *got = malloc((size_t)m * n * sizeof *got);
    if (!got) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    float *dy = device_copy(y, (size_t)m * n), *db = device_copy(bias, (size_t)n);
    cuda_bias_add(ctx, dy, db, m, n);
    CUDA_CHECK(cudaMemcpyAsync(got, dy, (size_t)m * n * sizeof *got, cudaMemcpyDeviceToHost,
                               ctx->stream));
    CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
            y[(size_t)i * n + j] += bias[j];
    CHECK_ALLCLOSE(y, got, (size_t)m * n, 0.0, 0.0);
    CUDA_CHECK(cudaFree(dy));
    CUDA_CHECK(cudaFree(db));
    free(y), free(bias), free(got);
}

/* Informational: sustained SGEMM rate on a square product (not a timed test). */
static void report_sgemm_rate(cuda_ctx *ctx, int s)
{
    size_t n = (size_t)s * s;
    float *da, *db, *dc;
    cudaEvent_t t0, t1;
    CUDA_CHECK(cudaMalloc((void **)&da, n * sizeof(float)));
    CUDA_CHECK(cudaMalloc((void **)&db, n * sizeof(float)));
    CUDA_CHECK(cudaMalloc((void **)&dc, n * sizeof(float)));
    CUDA_CHECK(cudaMemsetAsync(da, 0, n * sizeof(float), ctx->stream));
    CUDA_CHECK(cudaMemsetAsync(db, 0, n * sizeof(float), ctx->stream));
    CUDA_CHECK(cudaEventCreate(&t0));
    CUDA_CHECK(cudaEventCreate(&t1));
    cuda_gemm g = {.c = dc, .a = da, .b = db, .m = s, .n = s, .k = s, .alpha = 1, .beta = 0};
    cuda_sgemm(ctx, &g); /* warm-up */
    const int reps = 10;
    CUDA_CHECK(cudaEventRecord(t0, ctx->stream));
    for (int i = 0; i < reps; i++)
        cuda_sgemm(ctx, &g);
    CUDA_CHECK(cudaEventRecord(t1, ctx->stream));
    CUDA_CHECK(cudaEventSynchronize(t1));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, t0, t1));
    double tflops = 2.0 * s * s * (double)s * reps / (ms * 1e-3) / 1e12;
    log_info("gpu_smoke", "sgemm rate", "{s:i,s:f,s:f}", "size", s, "ms", ms / reps, "tflops",
             tflops);
    CUDA_CHECK(cudaEventDestroy(t0));
    CUDA_CHECK(cudaEventDestroy(t1));
    CUDA_CHECK(cudaFree(da));
    CUDA_CHECK(cudaFree(db));
    CUDA_CHECK(cudaFree(dc));
}

int main(void)
{
    int count = 0;
    if (cuda_device_count(&count) < 0)
        TEST_SKIP(err_msg());
    cuda_ctx ctx;
    int rc = cuda_ctx_init(&ctx, 0);
    CHECK_EQ_INT(0, rc);
    if (rc < 0) {
        fprintf(stderr, "cuda_ctx_init: %s\n", err_msg());
        return test_done();
    }
    fprintf(stderr, "device 0 of %d: %s, compute capability %d.%d\n", count, ctx.name,
            ctx.cc_major, ctx.cc_minor);

    static const int shapes[][3] = {{1, 1, 1}, {37, 53, 129}, {128, 256, 64}, {300, 17, 515}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                check_gemm(&ctx, shapes[s][0], shapes[s][1], shapes[s][2], ta, tb);
    check_bias_add(&ctx, 1, 1);
    check_bias_add(&ctx, 333, 1152);

    /* A device index past the end is refused with a message, not a crash. */
    cuda_ctx bad;
    CHECK_EQ_INT(KF_EINVAL, cuda_ctx_init(&bad, count));
    CHECK(strstr(err_msg(), "does not exist") != NULL);
    CHECK(bad.blas == NULL && bad.stream == NULL);

    report_sgemm_rate(&ctx, 4096);
    cuda_ctx_dispose(&ctx);
    cuda_ctx_dispose(NULL);
    return test_done();
}
