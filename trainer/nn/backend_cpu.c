/* backend_cpu: the nn_backend table on the CPU - gemm_cpu.c for every matrix product (its own
 * AVX-512 / AVX2 / C micro-kernels, picked by CPU features; KUBEFIT_GEMM=avx512|avx2|c|openblas
 * overrides, openblas being the former path through cblas_sgemm, kept for comparison, and
 * amx-bf16 turns on the bf16 products, see nn_backend_cpu_set_bf16), a pthread
 * pool (pool.c, sleeping workers) for the products and the element-wise kernels (exp/tanh-bound
 * rows in ew_cpu.c). Float32 storage, double accumulation in reductions. Dimension legend: see
 * backend.h (N rows, D columns, B batch, H hidden, V vocab, E emb). Each kernel is a range
 * function over its index space plus a call through the pool. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "err.h"
#include "ew_cpu.h"
#include "gemm_cpu.h"
#include "log.h"
#include "pool.h"
#include "rng.h"

/* Fewer elements than this per thread are not worth waking a worker for (memory-bound work). */
#define CHUNK 32768

void openblas_set_num_threads(int num_threads);

typedef struct cpu_ctx {
    nn_pool *pool;
    nn_gemm *gemm;
    bool openblas; /* KUBEFIT_GEMM=openblas: sgemm through cblas (the packed products stay ours) */
} cpu_ctx;

#define CTX(be) ((cpu_ctx *)(be)->ctx)
#define POOL(be) (CTX(be)->pool)

static void *cpu_alloc(nn_backend *be, size_t bytes)
{
    size_t rounded = (bytes + 63) / 64 * 64;
    if (rounded < bytes)
        return NULL;
    if (!rounded)
        rounded = 64;
    void *p = aligned_alloc(64, rounded);
    if (p)
        memset(p, 0, rounded);
    return p;
}

static void cpu_release(nn_backend *be, void *p) { free(p); }

static void cpu_copy(nn_backend *be, void *dst, const void *src, size_t bytes)
{
    if (bytes)
        memmove(dst, src, bytes);
}

static void cpu_parallel_for(nn_backend *be, size_t n, void (*fn)(void *, size_t, size_t),
                             void *arg)
{
    nn_pool_run(POOL(be), n, 1, fn, arg);
}

static void cpu_sgemm(nn_backend *be, bool ta, bool tb, int M, int N, int K, float alpha,
                      const float *A, int lda, const float *B, int ldb, float beta, float *C,
                      int ldc)
{
    if (M <= 0 || N <= 0)
        return;
    if (!CTX(be)->openblas) {
        nn_gemm_run(CTX(be)->gemm, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M,
                N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* Element-wise kernels share one argument struct: y, x, m float arrays and a few scalars. */
typedef struct ew_args {
    float *y;
    const float *x, *m;
    float a;
    size_t bd;        /* broadcast period (mul_bcast) */
    uint64_t seed, stream;
} ew_args;

static void fill_range(void *v, size_t lo, size_t hi)
{
    ew_args *e = v;
    for (size_t i = lo; i < hi; i++)
        e->y[i] = e->a;
}

static void cpu_fill(nn_backend *be, float *x, float value, size_t n)
{
    ew_args e = {.y = x, .a = value};
    nn_pool_run(POOL(be), n, CHUNK, fill_range, &e);
}

static void mask_range(void *v, size_t lo, size_t hi)
{
    ew_args *e = v; /* a = p */
    float keep = e->a > 0 ? 1.0f / (1.0f - e->a) : 1.0f;
    for (size_t i = lo; i < hi; i++)
        e->y[i] = (e->a > 0 && nn_rng_uniform(e->seed, e->stream, i) < e->a) ? 0.0f : keep;
}

static void cpu_dropout_mask(nn_backend *be, float *mask, size_t n, float p, uint64_t seed,
                             uint64_t stream)
{
    ew_args e = {.y = mask, .a = p, .seed = seed, .stream = stream};
    nn_pool_run(POOL(be), n, CHUNK / 8, mask_range, &e);
}

static void mul_range(void *v, size_t lo, size_t hi)
{
    ew_args *e = v;
    for (size_t i = lo; i < hi; i++)
        e->y[i] = e->x[i] * e->m[i];
}

static void cpu_mul(nn_backend *be, float *y, const float *x, const float *m, size_t n)
{
    ew_args e = {.y = y, .x = x, .m = m};
    nn_pool_run(POOL(be), n, CHUNK, mul_range, &e);
}

static void mul_bcast_range(void *v, size_t lo, size_t hi)
{
    ew_args *e = v;
    size_t j = lo % e->bd; /* the mask index, wrapped by hand (a division per element is slow) */
    for (size_t i = lo; i < hi; i++) {
        e->y[i] = e->x[i] * e->m[j];
        j = j + 1 == e->bd ? 0 : j + 1;
    }
}

static void cpu_mul_bcast(nn_backend *be, float *y, const float *x, const float *m, int R, int B,
                          int D)
{
    ew_args e = {.y = y, .x = x, .m = m, .bd = (size_t)B * D};
    nn_pool_run(POOL(be), (size_t)R * B * D, CHUNK, mul_bcast_range, &e);
}

static void axpy_range(void *v, size_t lo, size_t hi)
{
    ew_args *e = v;
    for (size_t i = lo; i < hi; i++)
        e->y[i] += e->a * e->x[i];
}

static void cpu_axpy(nn_backend *be, float *y, float a, const float *x, size_t n)
{
    ew_args e = {.y = y, .x = x, .a = a};
    nn_pool_run(POOL(be), n, CHUNK, axpy_range, &e);
}

typedef struct emb_args {
    float *out;       /* fwd: (T,B,E) output; bwd: dw (V,E) */
    const float *in;  /* fwd: w (V,E); bwd: dout (T,B,E) */
    const int32_t *tok;
    const float *rowmask;
    int pad, B, T, E;
} emb_args;

static void emb_fwd_range(void *v, size_t lo, size_t hi)
{
    emb_args *g = v;
    for (size_t r = lo; r < hi; r++) {
        size_t t = r / (size_t)g->B, b = r % (size_t)g->B;
        int32_t id = g->tok[b * g->T + t];
        const float *src = g->in + (size_t)id * g->E;
        float s = g->rowmask ? g->rowmask[id] : 1.0f;
        float *dst = g->out + r * g->E;
        for (int e = 0; e < g->E; e++)
            dst[e] = src[e] * s;
    }
}

static void cpu_embedding_fwd(nn_backend *be, float *out, const int32_t *tok, const float *w,
                              const float *rowmask, int B, int T, int E)
{
    emb_args g = {.out = out, .in = w, .tok = tok, .rowmask = rowmask, .B = B, .T = T, .E = E};
    nn_pool_run(POOL(be), (size_t)B * T, CHUNK / (size_t)E + 1, emb_fwd_range, &g);
}

/* Parts own column slices [lo,hi) of E, so repeated tokens never race. */
static void emb_bwd_range(void *v, size_t lo, size_t hi)
{
    emb_args *g = v;
    for (size_t r = 0; r < (size_t)g->B * g->T; r++) {
        size_t t = r / (size_t)g->B, b = r % (size_t)g->B;
        int32_t id = g->tok[b * g->T + t];
        if (id == g->pad)
            continue;
        float s = g->rowmask ? g->rowmask[id] : 1.0f;
        const float *src = g->in + r * g->E;
        float *dst = g->out + (size_t)id * g->E;
        for (size_t e = lo; e < hi; e++)
            dst[e] += src[e] * s;
    }
}

static void cpu_embedding_bwd(nn_backend *be, float *dw, const float *dout, const int32_t *tok,
                              const float *rowmask, int pad, int B, int T, int E)
{
    emb_args g = {.out = dw, .in = dout, .tok = tok, .rowmask = rowmask, .pad = pad,
                  .B = B, .T = T, .E = E};
    size_t work = (size_t)B * T * E;
    nn_pool_run(POOL(be), (size_t)E, work > CHUNK ? 16 : (size_t)E, emb_bwd_range, &g);
}

typedef struct bias_args {
    float *y;
    const float *b1, *b2;
    int N, D;
} bias_args;

static void add_bias_range(void *v, size_t lo, size_t hi)
{
    bias_args *g = v;
    for (size_t r = lo; r < hi; r++) {
        float *row = g->y + r * g->D;
        for (int d = 0; d < g->D; d++)
            row[d] += g->b1[d] + (g->b2 ? g->b2[d] : 0.0f);
    }
}

static void cpu_add_bias(nn_backend *be, float *y, const float *b1, const float *b2, int N, int D)
{
    bias_args g = {.y = y, .b1 = b1, .b2 = b2, .N = N, .D = D};
    nn_pool_run(POOL(be), (size_t)N, CHUNK / (size_t)D + 1, add_bias_range, &g);
}

/* Column blocks of 256, rows inner: contiguous reads, double accumulators per block (the same
 * sums in the same order on every CPU; the AVX-512 clone only converts and adds 8 at a time). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "default")))
#endif
static void bias_grad_range(void *v, size_t lo, size_t hi)
{
    bias_args *g = v; /* y = db, b1 = dy */
    for (size_t k = lo; k < hi; k++) {
        double acc[256] = {0};
        int c0 = (int)k * 256, n = g->D - c0 < 256 ? g->D - c0 : 256;
        for (int r = 0; r < g->N; r++) {
            const float *row = g->b1 + (size_t)r * g->D + c0;
            for (int d = 0; d < n; d++)
                acc[d] += row[d];
        }
        for (int d = 0; d < n; d++)
            g->y[c0 + d] += (float)acc[d];
    }
}

static void cpu_bias_grad(nn_backend *be, float *db, const float *dy, int N, int D)
{
    bias_args g = {.y = db, .b1 = dy, .N = N, .D = D};
    size_t blocks = ((size_t)D + 255) / 256;
    nn_pool_run(POOL(be), blocks, (size_t)N * D > CHUNK ? 1 : blocks, bias_grad_range, &g);
}

typedef struct cell_args {
    const nn_ew_kernels *k;
    float *gates, *c, *dgates;
    const float *h_or_dh, *c_prev, *cc;
    float *h, *dc;
    int H;
} cell_args;

/* Rows b of (B,.) tensors; ew_cpu.c has the per-row math. */
static void cell_fwd_range(void *v, size_t lo, size_t hi)
{
    cell_args *a = v;
    size_t H = (size_t)a->H;
    for (size_t b = lo; b < hi; b++)
        a->k->cell_fwd(a->gates + b * 4 * H, a->c + b * H, a->h + b * H, a->c_prev + b * H, a->H);
}

static void cpu_lstm_cell_fwd(nn_backend *be, float *gates, float *c, float *h, const float *c_prev,
                              int B, int H)
{
    cell_args a = {.k = nn_ew_kernels_get(), .gates = gates, .c = c, .h = h, .c_prev = c_prev,
                   .H = H};
    nn_pool_run(POOL(be), (size_t)B, CHUNK / 8 / (size_t)H + 1, cell_fwd_range, &a);
}

static void cell_bwd_range(void *v, size_t lo, size_t hi)
{
    cell_args *a = v; /* gates: activated (read), cc: c_t, h_or_dh: dh */
    size_t H = (size_t)a->H;
    for (size_t b = lo; b < hi; b++)
        a->k->cell_bwd(a->dgates + b * 4 * H, a->dc + b * H, a->h_or_dh + b * H,
                       a->gates + b * 4 * H, a->cc + b * H, a->c_prev + b * H, a->H);
}

static void cpu_lstm_cell_bwd(nn_backend *be, float *dgates, const float *dh, float *dc,
                              const float *gates, const float *c, const float *c_prev, int B, int H)
{
    cell_args a = {.k = nn_ew_kernels_get(), .gates = (float *)gates, .dgates = dgates,
                   .h_or_dh = dh, .dc = dc, .cc = c, .c_prev = c_prev, .H = H};
    nn_pool_run(POOL(be), (size_t)B, CHUNK / 8 / (size_t)H + 1, cell_bwd_range, &a);
}

typedef struct xent_args {
    const nn_ew_kernels *k;
    float *loss, *out;
    const float *probs;
    const int32_t *targets;
    float scale;
    int V;
} xent_args;

static void xent_fwd_range(void *v, size_t lo, size_t hi)
{
    xent_args *a = v;
    for (size_t r = lo; r < hi; r++)
        a->loss[r] = a->k->softmax(a->out + r * a->V, a->V, a->targets[r]);
}

static void cpu_softmax_xent_fwd(nn_backend *be, float *loss, float *probs, const int32_t *targets,
                                 int N, int V)
{
    xent_args a = {.k = nn_ew_kernels_get(), .loss = loss, .out = probs, .targets = targets,
                   .V = V};
    nn_pool_run(POOL(be), (size_t)N, CHUNK / 8 / (size_t)V + 1, xent_fwd_range, &a);
}

static void xent_bwd_range(void *v, size_t lo, size_t hi)
{
    xent_args *a = v;
    int V = a->V;
    for (size_t r = lo; r < hi; r++) {
        const float *p = a->probs + r * V;
        float *d = a->out + r * V;
        for (int k = 0; k < V; k++)
            d[k] = a->scale * p[k];
        d[a->targets[r]] -= a->scale;
    }
}

static void cpu_softmax_xent_bwd(nn_backend *be, float *dlogits, const float *probs,
                                 const int32_t *targets, float scale, int N, int V)
{
    xent_args a = {.out = dlogits, .probs = probs, .targets = targets, .scale = scale, .V = V};
    nn_pool_run(POOL(be), (size_t)N, CHUNK / (size_t)V + 1, xent_bwd_range, &a);
}

/* Reductions: the data is cut into `parts` fixed slices; part k writes partial[k]. */
enum { RED_SUM, RED_SUMSQ, RED_TDIFF };
typedef struct red_args {
    const float *x;
    size_t n, M;     /* n elements; M = row length for TDIFF */
    int kind, parts;
    double partial[64];
} red_args;

static void red_range(void *v, size_t lo, size_t hi)
{
    red_args *a = v;
    for (size_t k = lo; k < hi; k++) {
        size_t i0 = a->n * k / (size_t)a->parts, i1 = a->n * (k + 1) / (size_t)a->parts;
        double s = 0;
        for (size_t i = i0; i < i1; i++) {
            double d = a->kind == RED_TDIFF ? (double)a->x[i + a->M] - a->x[i] : a->x[i];
            s += a->kind == RED_SUM ? d : d * d;
        }
        a->partial[k] = s;
    }
}

static double reduce(nn_backend *be, const float *x, size_t n, size_t M, int kind)
{
    red_args a = {.x = x, .n = n, .M = M, .kind = kind};
    size_t parts = n / CHUNK + 1;
    int threads = nn_pool_threads(POOL(be));
    a.parts = parts < (size_t)threads ? (int)parts : threads;
    if (a.parts > 64)
        a.parts = 64;
    nn_pool_run(POOL(be), (size_t)a.parts, 1, red_range, &a);
    double s = 0;
    for (int k = 0; k < a.parts; k++)
        s += a.partial[k];
    return s;
}

static double cpu_sum(nn_backend *be, const float *x, size_t n)
{
    return reduce(be, x, n, 0, RED_SUM);
}
static double cpu_sumsq(nn_backend *be, const float *x, size_t n)
{
    return reduce(be, x, n, 0, RED_SUMSQ);
}
static double cpu_sumsq_tdiff(nn_backend *be, const float *x, int R, int M)
{
    return R > 1 ? reduce(be, x, (size_t)(R - 1) * M, (size_t)M, RED_TDIFF) : 0.0;
}

static void cpu_reduce_to(nn_backend *be, double *dst, int kind, const float *x, size_t n, int M)
{
    *dst = kind == NN_RED_SUM     ? reduce(be, x, n, 0, RED_SUM)
           : kind == NN_RED_SUMSQ ? reduce(be, x, n, 0, RED_SUMSQ)
                                  : reduce(be, x, n, (size_t)M, RED_TDIFF);
}

typedef struct tdiff_args {
    float *dx;
    const float *x;
    float scale;
    size_t R, M;
} tdiff_args;

static void tdiff_grad_range(void *v, size_t lo, size_t hi)
{
    tdiff_args *a = v;
    for (size_t i = lo; i < hi; i++) {
        size_t t = i / a->M;
        float g = 0;
        if (t > 0)
            g += a->x[i] - a->x[i - a->M];
        if (t + 1 < a->R)
            g -= a->x[i + a->M] - a->x[i];
        a->dx[i] += 2.0f * a->scale * g;
    }
}

static void cpu_sumsq_tdiff_grad(nn_backend *be, float *dx, const float *x, float scale, int R,
                                 int M)
{
    tdiff_args a = {.dx = dx, .x = x, .scale = scale, .R = (size_t)R, .M = (size_t)M};
    nn_pool_run(POOL(be), (size_t)R * M, CHUNK, tdiff_grad_range, &a);
}

static size_t cpu_packed_floats(nn_backend *be, int K, int N)
{
    return nn_gemm_packed_size(CTX(be)->gemm, K, N);
}

static void cpu_pack_b(nn_backend *be, float *packed, const float *B, int ldb, bool trans_b, int K,
                       int N)
{
    nn_gemm_pack(CTX(be)->gemm, packed, B, ldb, trans_b, K, N);
}

static void cpu_sgemm_packed(nn_backend *be, int M, int N, int K, const float *A, int lda,
                             const float *packed, float beta, float *C, int ldc)
{
    nn_gemm_run_packed(CTX(be)->gemm, M, N, K, A, lda, packed, beta, C, ldc);
}

static void cpu_destroy(nn_backend *be)
{
    if (!be)
        return;
    if (be->ctx) {
        nn_gemm_free(CTX(be)->gemm);
        nn_pool_free(POOL(be));
        free(be->ctx);
    }
    free(be);
}

int nn_backend_cpu_new(nn_backend **out, int threads)
{
    int rc;
    *out = NULL;
    nn_backend *be = calloc(1, sizeof *be);
    if (!be)
        return err_set(KF_ENOMEM, "nn: out of memory for the CPU backend");
    if (threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 1;
    }
    if (threads > 256)
        threads = 256;
    cpu_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        free(be);
        return err_set(KF_ENOMEM, "nn: out of memory for the CPU backend");
    }
    be->ctx = ctx;
    /* KUBEFIT_GEMM picks the product kernels by name (benchmarks, A/B checks). */
    const char *want = getenv("KUBEFIT_GEMM");
    bool bf16 = want && !strcmp(want, "amx-bf16");
    const nn_gemm_arch *arch = want && *want && !bf16 ? nn_gemm_arch_named(want) : NULL;
    ctx->openblas = want && !strcmp(want, "openblas");
    if (want && *want && !arch && !ctx->openblas && !bf16)
        log_warn("nn", "KUBEFIT_GEMM names no kernel set this CPU runs; using the best",
                 "{s:s,s:s}", "KUBEFIT_GEMM", want, "using",
                 nn_gemm_arch_name(nn_gemm_arch_best()));
    if ((rc = nn_pool_new(&ctx->pool, threads)) ||
        (rc = nn_gemm_new(&ctx->gemm, ctx->pool, arch))) {
        cpu_destroy(be);
        return rc;
    }
    *be = (nn_backend){
        .name = "cpu",
        .ctx = ctx,
        .threads = threads,
        .destroy = cpu_destroy,
        .alloc = cpu_alloc,
        .release = cpu_release,
        .upload = cpu_copy,
        .download = cpu_copy,
        .copy = cpu_copy,
        .fill = cpu_fill,
        .parallel_for = cpu_parallel_for,
        .sgemm = cpu_sgemm,
        .dropout_mask = cpu_dropout_mask,
        .mul = cpu_mul,
        .mul_bcast = cpu_mul_bcast,
        .axpy = cpu_axpy,
        .embedding_fwd = cpu_embedding_fwd,
        .embedding_bwd = cpu_embedding_bwd,
        .add_bias = cpu_add_bias,
        .bias_grad = cpu_bias_grad,
        .lstm_cell_fwd = cpu_lstm_cell_fwd,
        .lstm_cell_bwd = cpu_lstm_cell_bwd,
        .softmax_xent_fwd = cpu_softmax_xent_fwd,
        .softmax_xent_bwd = cpu_softmax_xent_bwd,
        .sum = cpu_sum,
        .sumsq = cpu_sumsq,
        .sumsq_tdiff = cpu_sumsq_tdiff,
        .sumsq_tdiff_grad = cpu_sumsq_tdiff_grad,
        .reduce_to = cpu_reduce_to,
        .packed_floats = cpu_packed_floats,
        .pack_b = cpu_pack_b,
        .sgemm_packed = cpu_sgemm_packed,
    };
    openblas_set_num_threads(threads);
    if (bf16 && (rc = nn_gemm_set_bf16(ctx->gemm, true)) < 0) {
        log_warn("nn", "KUBEFIT_GEMM=amx-bf16: no AMX-BF16 here; products stay float32",
                 "{s:s}", "reason", err_msg());
        err_clear();
    }
    *out = be;
    return 0;
}

int nn_backend_cpu_set_bf16(nn_backend *be, bool on)
{
    if (!be || strcmp(be->name, "cpu") != 0)
        return err_set(KF_EINVAL, "nn: bf16 products: not a CPU backend");
    if (CTX(be)->openblas && on)
        return err_set(KF_EUNSUPPORTED, "nn: bf16 products: KUBEFIT_GEMM=openblas is float32");
    return nn_gemm_set_bf16(CTX(be)->gemm, on);
}

const char *nn_backend_cpu_gemm(const nn_backend *be)
{
    if (!be || strcmp(be->name, "cpu") != 0)
        return NULL;
    return CTX(be)->openblas ? "openblas" : nn_gemm_name(CTX(be)->gemm);
}
