/* gpu_pair: what the gpu-backend tests share - a CPU and a CUDA nn_backend side by side, random
 * non-zero inputs, copies between them, and the comparison rule.
 * Rule: |gpu - cpu| <= 1e-5 * (|cpu| + max|cpu| over the tensor) elementwise, i.e. relative error
 * below 1e-5 measured against the tensor's own scale (a sum whose terms cancel has no meaningful
 * elementwise relative error in float32). NaN never passes (CHECK_ALLCLOSE). */
#ifndef KUBEFIT_TEST_GPU_PAIR_H
#define KUBEFIT_TEST_GPU_PAIR_H

#include <stdint.h>

#include "backend.h"
#include "backend_cuda.h"
#include "err.h"
#include "test.h"

#define GPU_RTOL 1e-5

typedef struct gpu_pair {
    nn_backend *cpu, *gpu;
} gpu_pair;

/* Both backends, or TEST_SKIP (77) when this machine has no usable CUDA device. */
static inline void gpu_pair_init(gpu_pair *p)
{
    int n = 0;
    if (cuda_device_count(&n) < 0 || n == 0)
        TEST_SKIP(err_msg());
    if (nn_backend_cpu_new(&p->cpu, 2) < 0 || nn_backend_cuda_new(&p->gpu, 0) < 0) {
        fprintf(stderr, "backend: %s\n", err_msg());
        exit(1);
    }
}

static inline void gpu_pair_dispose(gpu_pair *p)
{
    p->cpu->destroy(p->cpu);
    p->gpu->destroy(p->gpu);
}

static uint64_t gpu_rng = 0x2545f4914f6cdd1dull;

/* Uniform in [lo, hi), never exactly 0 (xorshift64*). */
static inline float rnd(float lo, float hi)
{
    for (;;) {
        gpu_rng ^= gpu_rng >> 12;
        gpu_rng ^= gpu_rng << 25;
        gpu_rng ^= gpu_rng >> 27;
        uint64_t r = gpu_rng * 0x2545f4914f6cdd1dull;
        float f = lo + (hi - lo) * (float)((double)(r >> 40) / (double)(1ull << 24));
        if (f != 0.0f)
            return f;
    }
}

static inline void *xmalloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

/* n random floats in [lo,hi), host memory (caller frees). */
static inline float *host_rand(size_t n, float lo, float hi)
{
    float *x = xmalloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = rnd(lo, hi);
    return x;
}

/* A backend copy of host data. */
static inline void *be_from(nn_backend *be, const void *host, size_t bytes)
{
    void *d = be->alloc(be, bytes);
    if (!d) {
        fprintf(stderr, "%s alloc of %zu bytes failed\n", be->name, bytes);
        exit(1);
    }
    be->upload(be, d, host, bytes);
    return d;
}

/* A host copy of n floats of backend memory (caller frees). */
static inline float *be_to_host(nn_backend *be, const float *d, size_t n)
{
    float *h = xmalloc(n * sizeof *h);
    be->download(be, h, d, n * sizeof *h);
    return h;
}

static inline double max_abs(const float *x, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fabs(x[i]) > m ? fabs(x[i]) : m;
    return m;
}

/* Compares the GPU tensor with the CPU one (the rule at the top); prints the worst difference. */
#define CHECK_PAIR(what, cpu_be, cpu_ptr, gpu_be, gpu_ptr, n)                                \
    do {                                                                                   \
        size_t pn_ = (n);                                                                  \
        float *pc_ = be_to_host((cpu_be), (cpu_ptr), pn_);                                 \
        float *pg_ = be_to_host((gpu_be), (gpu_ptr), pn_);                                 \
        double scale_ = max_abs(pc_, pn_), worst_ = 0;                                     \
        for (size_t k_ = 0; k_ < pn_; k_++)                                                \
            worst_ = fmax(worst_, fabs((double)pg_[k_] - pc_[k_]));                        \
        fprintf(stderr, "  %-28s n=%-8zu max|cpu|=%-10.4g max|gpu-cpu|=%.3g\n", (what),     \
                pn_, scale_, worst_);                                                      \
        CHECK_ALLCLOSE(pc_, pg_, pn_, GPU_RTOL * scale_, GPU_RTOL);                        \
        free(pc_);                                                                         \
        free(pg_);                                                                         \
    } while (0)

#endif
