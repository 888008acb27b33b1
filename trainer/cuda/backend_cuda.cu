/* backend_cuda: fills the nn_backend table with cuBLAS and the kernels of kernels_*.cu.
 * Row-major GEMMs go to column-major cuBLAS with the operands swapped (see cuda_matmul.cu).
 * Memory comes from the device's stream-ordered pool with its release threshold raised, so an
 * alloc after a release of the same size is a pool hit, not a cudaMalloc. Ops never allocate:
 * the reductions use scratch made once here, and cuBLAS gets a fixed workspace. */
#include "backend_cuda.h"

#include "cuda_check.h"
#include "cuda_metrics.h"
#include "cuda_optim.h"
#include "head_cuda.h"
#include "kernels.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CUBLAS_WORKSPACE_BYTES ((size_t)32 << 20) /* NVIDIA's recommendation for Hopper */

typedef struct cuda_backend {
    cuda_ctx cuda;
    double *d_red;      /* KERN_RED_PARTS partials + 1 result (device) */
    double *h_red;      /* 1 result (pinned host) */
    void *workspace;    /* cuBLAS workspace */
    cuda_optim *optim;  /* the optimizer ops adam_set/adam_queue/clip_queue/clip_norm */
    nn_math math;       /* matrix-product math mode (nn_backend_cuda_set_math) */
} cuda_backend;

#define CB(be) ((cuda_backend *)(be)->ctx)
#define ST(be) (CB(be)->cuda.stream)

static void *cu_alloc(nn_backend *be, size_t bytes)
{
    void *p = NULL;
    if (!bytes)
        bytes = 1;
    cudaError_t rc = cudaMallocAsync(&p, bytes, ST(be));
    if (rc != cudaSuccess) {
        (void)cudaGetLastError(); /* out of memory is not sticky; the caller reports NULL */
        log_error("cuda", "device allocation failed", "{s:s,s:i,s:I,s:s}", "file", __FILE__,
                  "line", __LINE__, "bytes", (long long)bytes, "error", cudaGetErrorName(rc));
        return NULL;
    }
    CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, ST(be)));
    return p;
}

static void cu_release(nn_backend *be, void *p)
{
    if (p)
        CUDA_CHECK(cudaFreeAsync(p, ST(be)));
}

/* Host buffers may be pageable and the caller may free them on return: copy and wait. */
static void cu_upload(nn_backend *be, void *dst, const void *src, size_t bytes)
{
    if (!bytes)
        return;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ST(be)));
    CUDA_CHECK(cudaStreamSynchronize(ST(be)));
}

static void cu_download(nn_backend *be, void *dst, const void *src, size_t bytes)
{
    if (!bytes)
        return;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, ST(be)));
    CUDA_CHECK(cudaStreamSynchronize(ST(be)));
}

static void cu_copy(nn_backend *be, void *dst, const void *src, size_t bytes)
{
    if (bytes && dst != src)
        CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, ST(be)));
}

static void cu_fill(nn_backend *be, float *x, float value, size_t n)
{
    if (value == 0.0f && !signbit(value))
        CUDA_CHECK(cudaMemsetAsync(x, 0, n * sizeof *x, ST(be)));
    else
        kern_fill(ST(be), x, value, n);
}

/* Row-major C(M,N) = alpha op(A) op(B) + beta C is column-major C^T = op(B)^T op(A)^T. */
static void cu_sgemm(nn_backend *be, bool ta, bool tb, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb, float beta, float *C,
                     int ldc)
{
    if (M <= 0 || N <= 0)
        return;
    cuda_gemm g = {C, A, B, M, N, K, ta, tb, alpha, beta, lda, ldb, ldc, CB(be)->math};
    cuda_sgemm(&CB(be)->cuda, &g);
}

static void cu_dropout_mask(nn_backend *be, float *mask, size_t n, float p, uint64_t seed,
                            uint64_t stream)
{
    kern_dropout_mask(ST(be), mask, n, p, seed, stream);
}

static void cu_mul(nn_backend *be, float *y, const float *x, const float *m, size_t n)
{
    kern_mul(ST(be), y, x, m, n);
}

static void cu_mul_bcast(nn_backend *be, float *y, const float *x, const float *m, int R, int B,
                         int D)
{
    size_t period = (size_t)B * D;
    kern_mul_bcast(ST(be), y, x, m, (size_t)R * period, period);
}

static void cu_axpy(nn_backend *be, float *y, float a, const float *x, size_t n)
{
    kern_axpy(ST(be), y, a, x, n);
}

static void cu_embedding_fwd(nn_backend *be, float *out, const int32_t *tok, const float *w,
                             const float *rowmask, int B, int T, int E)
{
    kern_embedding_fwd(ST(be), out, tok, w, rowmask, B, T, E);
}

static void cu_embedding_bwd(nn_backend *be, float *dw, const float *dout, const int32_t *tok,
                             const float *rowmask, int pad, int B, int T, int E)
{
    kern_embedding_bwd(ST(be), dw, dout, tok, rowmask, pad, B, T, E);
}

static void cu_add_bias(nn_backend *be, float *y, const float *b1, const float *b2, int N, int D)
{
    kern_add_bias(ST(be), y, b1, b2, N, D);
}

static void cu_bias_grad(nn_backend *be, float *db, const float *dy, int N, int D)
{
    kern_bias_grad(ST(be), db, dy, N, D);
}

static void cu_lstm_cell_fwd(nn_backend *be, float *gates, float *c, float *h,
                             const float *c_prev, int B, int H)
{
    kern_lstm_cell_fwd(ST(be), gates, c, h, c_prev, B, H);
}

static void cu_lstm_cell_bwd(nn_backend *be, float *dgates, const float *dh, float *dc,
                             const float *gates, const float *c, const float *c_prev, int B,
                             int H)
{
    kern_lstm_cell_bwd(ST(be), dgates, dh, dc, gates, c, c_prev, B, H);
}

static void cu_softmax_xent_fwd(nn_backend *be, float *loss, float *probs,
                                const int32_t *targets, int N, int V)
{
    kern_softmax_xent_fwd(ST(be), loss, probs, targets, N, V);
}

static void cu_softmax_xent_bwd(nn_backend *be, float *dlogits, const float *probs,
                                const int32_t *targets, float scale, int N, int V)
{
    kern_softmax_xent_bwd(ST(be), dlogits, probs, targets, scale, N, V);
}

/* Runs one reduction and brings its double back (synchronises the stream). */
static double reduce(nn_backend *be, const float *x, size_t n, size_t M, int kind)
{
    cuda_backend *cb = CB(be);
    kern_reduce(cb->cuda.stream, cb->d_red + KERN_RED_PARTS, cb->d_red, x, n, M, kind);
    CUDA_CHECK(cudaMemcpyAsync(cb->h_red, cb->d_red + KERN_RED_PARTS, sizeof(double),
                               cudaMemcpyDeviceToHost, cb->cuda.stream));
    CUDA_CHECK(cudaStreamSynchronize(cb->cuda.stream));
    return *cb->h_red;
}

static double cu_sum(nn_backend *be, const float *x, size_t n)
{
    return reduce(be, x, n, 0, KERN_RED_SUM);
}

static double cu_sumsq(nn_backend *be, const float *x, size_t n)
{
    return reduce(be, x, n, 0, KERN_RED_SUMSQ);
}

static double cu_sumsq_tdiff(nn_backend *be, const float *x, int R, int M)
{
    return R > 1 ? reduce(be, x, (size_t)(R - 1) * M, (size_t)M, KERN_RED_TDIFF) : 0.0;
}

static void cu_sumsq_tdiff_grad(nn_backend *be, float *dx, const float *x, float scale, int R,
                                int M)
{
    kern_tdiff_grad(ST(be), dx, x, scale, R, M);
}

/* The trainer's optional ops (backend.h): cuda_optim.cu and cuda_metrics.cu. */
static int cu_adam_set(nn_backend *be, const nn_opt_tensor *t, int count, double mom,
                       double sqr_mom, double eps)
{
    return cuda_optim_adam_list_set(CB(be)->optim, t, count, mom, sqr_mom, eps);
}

static void cu_adam_queue(nn_backend *be, const nn_opt_tensor *t, int count)
{
    cuda_optim_adam_list_queue(CB(be)->optim, t, count);
}

static void cu_clip_queue(nn_backend *be, const nn_opt_tensor *t, int count, double max_norm)
{
    cuda_optim_clip_list_queue(CB(be)->optim, t, count, max_norm);
}

static double cu_clip_norm(nn_backend *be)
{
    return cuda_optim_clip_norm(CB(be)->optim);
}

static void cu_argmax_hits(nn_backend *be, float *hits, const float *x, const int32_t *targets,
                           int N, int V)
{
    cuda_argmax_hits(ST(be), hits, x, targets, N, V);
}

/* Graph pieces (backend.h): the stream's capture into an executable graph. */
static void cu_reduce_to(nn_backend *be, double *dst, int kind, const float *x, size_t n, int M)
{
    static_assert((int)NN_RED_SUM == (int)KERN_RED_SUM && (int)NN_RED_SUMSQ == (int)KERN_RED_SUMSQ &&
                      (int)NN_RED_TDIFF == (int)KERN_RED_TDIFF,
                  "one numbering");
    kern_reduce(ST(be), dst, CB(be)->d_red, x, n, (size_t)M, kind);
}

static int cu_capture_begin(nn_backend *be)
{
    return CUDA_TRY(cudaStreamBeginCapture(ST(be), cudaStreamCaptureModeThreadLocal));
}

static int cu_capture_end(nn_backend *be, void **graph)
{
    cudaGraph_t g = NULL;
    cudaGraphExec_t exec = NULL;
    int rc = CUDA_TRY(cudaStreamEndCapture(ST(be), &g));
    if (rc == 0)
        rc = CUDA_TRY(cudaGraphInstantiate(&exec, g, 0));
    if (g)
        CUDA_CHECK(cudaGraphDestroy(g));
    *graph = rc == 0 ? (void *)exec : NULL;
    return rc;
}

static int cu_graph_launch(nn_backend *be, void *graph)
{
    return CUDA_TRY(cudaGraphLaunch((cudaGraphExec_t)graph, ST(be)));
}

static void cu_graph_free(nn_backend *be, void *graph)
{
    (void)be;
    if (graph)
        CUDA_CHECK(cudaGraphExecDestroy((cudaGraphExec_t)graph));
}

static void cu_destroy(nn_backend *be)
{
    if (!be)
        return;
    cuda_backend *cb = CB(be);
    if (cb) {
        if (cb->cuda.stream) {
            cudaMemPool_t pool;
            CUDA_CHECK(cudaStreamSynchronize(cb->cuda.stream));
            /* give the pool's cached blocks back to the driver */
            CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, cb->cuda.device));
            CUDA_CHECK(cudaMemPoolTrimTo(pool, 0));
        }
        cuda_optim_free(cb->optim);
        if (cb->d_red)
            CUDA_CHECK(cudaFree(cb->d_red));
        if (cb->h_red)
            CUDA_CHECK(cudaFreeHost(cb->h_red));
        cuda_ctx_dispose(&cb->cuda); /* the cuBLAS handle goes before its workspace */
        if (cb->workspace)
            CUDA_CHECK(cudaFree(cb->workspace));
        free(cb);
    }
    free(be);
}

extern "C" int nn_backend_cuda_new(nn_backend **out, int device)
{
    int rc;
    cudaMemPool_t pool;
    uint64_t keep = UINT64_MAX;
    *out = NULL;
    nn_backend *be = (nn_backend *)calloc(1, sizeof *be);
    cuda_backend *cb = (cuda_backend *)calloc(1, sizeof *cb);
    if (!be || !cb) {
        free(cb);
        rc = err_set(KF_ENOMEM, "cuda: out of memory for the CUDA backend");
        goto done;
    }
    be->ctx = cb;
    if ((rc = cuda_ctx_init(&cb->cuda, device)) < 0)
        goto done;
    /* Freed blocks stay in the pool for the next alloc instead of going back to the driver. */
    if ((rc = CUDA_TRY(cudaDeviceGetDefaultMemPool(&pool, device))) < 0 ||
        (rc = CUDA_TRY(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep))) < 0 ||
        (rc = CUDA_TRY(cudaMalloc((void **)&cb->d_red, (KERN_RED_PARTS + 1) * sizeof(double)))) < 0 ||
        (rc = CUDA_TRY(cudaMallocHost((void **)&cb->h_red, sizeof(double)))) < 0 ||
        (rc = CUDA_TRY(cudaMalloc(&cb->workspace, CUBLAS_WORKSPACE_BYTES))) < 0)
        goto done;
    if ((rc = cuda_optim_new(&cb->optim, &cb->cuda)) < 0)
        goto done;
    CUBLAS_CHECK(cublasSetWorkspace(cb->cuda.blas, cb->workspace, CUBLAS_WORKSPACE_BYTES));
    CUBLAS_CHECK(cublasSetMathMode(cb->cuda.blas, CUBLAS_DEFAULT_MATH));
    be->name = "cuda";
    be->threads = 1;
    be->destroy = cu_destroy;
    be->alloc = cu_alloc;
    be->release = cu_release;
    be->upload = cu_upload;
    be->download = cu_download;
    be->copy = cu_copy;
    be->fill = cu_fill;
    be->parallel_for = NULL; /* the model never calls it (nn-api.md) */
    be->sgemm = cu_sgemm;
    be->dropout_mask = cu_dropout_mask;
    be->mul = cu_mul;
    be->mul_bcast = cu_mul_bcast;
    be->axpy = cu_axpy;
    be->embedding_fwd = cu_embedding_fwd;
    be->embedding_bwd = cu_embedding_bwd;
    be->add_bias = cu_add_bias;
    be->bias_grad = cu_bias_grad;
    be->lstm_cell_fwd = cu_lstm_cell_fwd;
    be->lstm_cell_bwd = cu_lstm_cell_bwd;
    be->softmax_xent_fwd = cu_softmax_xent_fwd;
    be->softmax_xent_bwd = cu_softmax_xent_bwd;
    be->sum = cu_sum;
    be->sumsq = cu_sumsq;
    be->sumsq_tdiff = cu_sumsq_tdiff;
    be->sumsq_tdiff_grad = cu_sumsq_tdiff_grad;
    be->reduce_to = cu_reduce_to;
    be->adam_set = cu_adam_set;
    be->adam_queue = cu_adam_queue;
    be->clip_queue = cu_clip_queue;
    be->clip_norm = cu_clip_norm;
    be->capture_begin = cu_capture_begin;
    be->capture_end = cu_capture_end;
    be->graph_launch = cu_graph_launch;
    be->graph_free = cu_graph_free;
    be->argmax_hits = cu_argmax_hits;
    be->head = head_kernels_cuda(); /* the classifier head's kernels (kernels_head.cu) */
    *out = be;
    rc = 0;
done:
    if (rc < 0 && be)
        cu_destroy(be);
    return rc;
}

/* The mode travels with every product (cuda_gemm.math); the handle keeps CUBLAS_DEFAULT_MATH. */
extern "C" void nn_backend_cuda_set_math(nn_backend *be, nn_math math)
{
    if (nn_backend_cuda_ctx(be))
        CB(be)->math = math;
}

extern "C" nn_math nn_backend_cuda_math(nn_backend *be)
{
    return nn_backend_cuda_ctx(be) ? CB(be)->math : NN_MATH_FP32;
}

extern "C" void nn_backend_cuda_set_tf32(nn_backend *be, bool on)
{
    nn_backend_cuda_set_math(be, on ? NN_MATH_TF32 : NN_MATH_FP32);
}

extern "C" cuda_ctx *nn_backend_cuda_ctx(nn_backend *be)
{
    return be && be->destroy == cu_destroy ? &CB(be)->cuda : NULL;
}

extern "C" void nn_backend_cuda_sync(nn_backend *be)
{
    cuda_ctx *ctx = nn_backend_cuda_ctx(be);
    if (ctx)
        CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
}
