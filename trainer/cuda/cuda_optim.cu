/* cuda_optim: Adam (decoupled weight decay) and global-norm gradient clipping over a list of
 * tensors given by pointer; the flat-array API (offsets into one params/grads/avg/sqr layout) is
 * the same list built on the host. Pointers and sizes travel in the kernel arguments
 * (CUDA_OPTIM_LIST_TENSORS per launch): blockIdx.y picks the tensor, x blocks stride over its
 * elements. The per-tensor constants of a step are computed on the host in double, as optim.c
 * does, and copied to the device before the update; the clip factor is computed on the device.
 * So the whole update can be recorded in a graph and replayed with each step's constants. */
#include "cuda_optim.h"

#include "cuda_check.h"

static_assert(CUDA_OPTIM_LIST_TENSORS <= CUDA_OPTIM_MAX_TENSORS, "d_part holds the partials");

#include <math.h>
#include <stdlib.h>

#define OBLOCK 256
#define OGRID_X 256 /* x blocks per tensor */

/* Per-tensor Adam constants of one step, copied to the device before the update, so a recorded
 * graph of the update replays with the current step's values. */
typedef struct seg_hyper {
    float decay, scale, inv_d2; /* 1 - lr*wd; lr/(1-mom^step); 1/(1-sqr_mom^step) */
    float mom, damp1, sqr_mom, damp2, eps; /* the schedule moves mom every step */
    int do_wd;
} seg_hyper;

struct cuda_optim {
    cuda_ctx *ctx;
    double *d_part; /* OGRID_X * CUDA_OPTIM_MAX_TENSORS partial sums, then the total */
    double *h_total; /* pinned */
    float *d_coef;   /* the clip factor of the last clip */
    seg_hyper *h_hyper, *d_hyper; /* CUDA_OPTIM_STEP_TENSORS each; h_hyper pinned */
    cudaEvent_t hyper_copied;     /* recorded after each copy of h_hyper */
    nn_opt_tensor *flat;          /* CUDA_OPTIM_STEP_TENSORS: a flat-array call as a list */
};

/* h_hyper[0..count) from the tensors' lr/wd/step (in double, as optim.c). */
static int set_hyper(cuda_optim *o, const nn_opt_tensor *t, int count, double mom, double sqr_mom,
                     double eps)
{
    if (count > CUDA_OPTIM_STEP_TENSORS)
        return err_set(KF_EINVAL, "cuda_optim: %d tensors in one step (at most %d)", count,
                       CUDA_OPTIM_STEP_TENSORS);
    CUDA_CHECK(cudaEventSynchronize(o->hyper_copied)); /* the last copy has read h_hyper */
    for (int k = 0; k < count; k++) {
        seg_hyper *h = &o->h_hyper[k];
        h->decay = (float)(1.0 - t[k].lr * t[k].wd);
        h->scale = (float)(t[k].lr / (1.0 - pow(mom, t[k].step)));
        h->inv_d2 = (float)(1.0 / (1.0 - pow(sqr_mom, t[k].step)));
        h->mom = (float)mom, h->damp1 = (float)(1.0 - mom);
        h->sqr_mom = (float)sqr_mom, h->damp2 = (float)(1.0 - sqr_mom);
        h->eps = (float)eps;
        h->do_wd = t[k].wd != 0.0;
    }
    return 0;
}

/* Queues the copy of h_hyper[0..count) and marks it (an external event node in a recording). */
static void copy_hyper(cuda_optim *o, int count)
{
    cudaStream_t st = o->ctx->stream;
    cudaStreamCaptureStatus cap = cudaStreamCaptureStatusNone;
    CUDA_CHECK(cudaMemcpyAsync(o->d_hyper, o->h_hyper, (size_t)count * sizeof *o->h_hyper,
                               cudaMemcpyHostToDevice, st));
    CUDA_CHECK(cudaStreamIsCapturing(st, &cap));
    CUDA_CHECK(cudaEventRecordWithFlags(o->hyper_copied, st,
                                        cap == cudaStreamCaptureStatusActive
                                            ? cudaEventRecordExternal
                                            : cudaEventRecordDefault));
}

static __device__ double block_sum(double v)
{
    __shared__ double sh[OBLOCK];
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = OBLOCK / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s)
            sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    return sh[0];
}

/* total[0] += sum of part[0..n) (one block; total[0] is zeroed first by the host). */
static __global__ void total_kernel(double *total, const double *part, int n)
{
    double acc = 0;
    for (int k = threadIdx.x; k < n; k += OBLOCK)
        acc += part[k];
    acc = block_sum(acc);
    if (threadIdx.x == 0)
        *total += acc;
}

/* coef = min(1, max_norm / (sqrt(total) + 1e-6)), 1 when max_norm <= 0 (torch's formula). */
static __global__ void coef_kernel(float *coef, const double *total, double max_norm)
{
    double c = max_norm > 0 ? max_norm / (sqrt(*total) + 1e-6) : 1.0;
    *coef = c < 1.0 ? (float)c : 1.0f;
}

extern "C" double cuda_optim_clip_norm(cuda_optim *o)
{
    cudaStream_t st = o->ctx->stream;
    const double *total = o->d_part + OGRID_X * CUDA_OPTIM_MAX_TENSORS;
    CUDA_CHECK(cudaMemcpyAsync(o->h_total, total, sizeof *total, cudaMemcpyDeviceToHost, st));
    CUDA_CHECK(cudaStreamSynchronize(st));
    return sqrt(*o->h_total);
}

/* ---- tensor lists (pointers per tensor) ---- */

typedef struct pseg {
    float *p, *g, *avg, *sqr;
    size_t n;
} pseg;

typedef struct pseg_list { /* ~1.3 KB of kernel arguments */
    pseg s[CUDA_OPTIM_LIST_TENSORS];
} pseg_list;

static __global__ void adam_list_kernel(const pseg_list L, const seg_hyper *H)
{
    const pseg s = L.s[blockIdx.y];
    const seg_hyper h = H[blockIdx.y];
    for (size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x; k < s.n;
         k += (size_t)gridDim.x * blockDim.x) {
        float w = s.p[k], gi = s.g[k];
        if (h.do_wd)
            w *= h.decay;
        float a = h.mom * s.avg[k] + h.damp1 * gi;
        float q = h.sqr_mom * s.sqr[k] + h.damp2 * gi * gi;
        s.avg[k] = a, s.sqr[k] = q;
        s.p[k] = w - h.scale * a / (sqrtf(q * h.inv_d2) + h.eps);
    }
}

static __global__ void sumsq_list_kernel(double *part, const pseg_list L)
{
    const pseg s = L.s[blockIdx.y];
    double acc = 0;
    for (size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x; k < s.n;
         k += (size_t)gridDim.x * blockDim.x) {
        double v = s.g[k];
        acc += v * v;
    }
    acc = block_sum(acc);
    if (threadIdx.x == 0)
        part[blockIdx.y * gridDim.x + blockIdx.x] = acc;
}

static __global__ void scale_list_kernel(const pseg_list L, const float *coef)
{
    const pseg s = L.s[blockIdx.y];
    const float c = *coef;
    for (size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x; k < s.n;
         k += (size_t)gridDim.x * blockDim.x)
        s.g[k] *= c;
}

/* Fills L with tensors [first, first + returned count) of t (pointers and sizes only). */
static int fill_list(pseg_list *L, const nn_opt_tensor *t, int first, int count)
{
    int n = count - first < CUDA_OPTIM_LIST_TENSORS ? count - first : CUDA_OPTIM_LIST_TENSORS;
    *L = (pseg_list){};
    for (int k = 0; k < n; k++) {
        pseg *s = &L->s[k];
        s->p = t[first + k].param, s->g = t[first + k].grad;
        s->avg = t[first + k].avg, s->sqr = t[first + k].sqr;
        s->n = t[first + k].n;
    }
    return n;
}

extern "C" int cuda_optim_adam_list_set(cuda_optim *o, const nn_opt_tensor *t, int count,
                                        double mom, double sqr_mom, double eps)
{
    return set_hyper(o, t, count, mom, sqr_mom, eps);
}

extern "C" void cuda_optim_adam_list_queue(cuda_optim *o, const nn_opt_tensor *t, int count)
{
    copy_hyper(o, count);
    for (int first = 0; first < count; first += CUDA_OPTIM_LIST_TENSORS) {
        pseg_list L;
        int n = fill_list(&L, t, first, count);
        adam_list_kernel<<<dim3(OGRID_X, (unsigned)n), OBLOCK, 0, o->ctx->stream>>>(
            L, o->d_hyper + first);
        CUDA_CHECK(cudaGetLastError());
    }
}

extern "C" void cuda_optim_adam_list(cuda_optim *o, const nn_opt_tensor *t, int count, double mom,
                                     double sqr_mom, double eps)
{
    if (cuda_optim_adam_list_set(o, t, count, mom, sqr_mom, eps) < 0) {
        log_error("cuda", "adam step refused", "{s:s}", "error", err_msg());
        abort();
    }
    cuda_optim_adam_list_queue(o, t, count);
}

extern "C" void cuda_optim_clip_list_queue(cuda_optim *o, const nn_opt_tensor *t, int count,
                                           double max_norm)
{
    cudaStream_t st = o->ctx->stream;
    double *total = o->d_part + OGRID_X * CUDA_OPTIM_MAX_TENSORS;
    pseg_list L;
    CUDA_CHECK(cudaMemsetAsync(total, 0, sizeof *total, st));
    for (int first = 0; first < count; first += CUDA_OPTIM_LIST_TENSORS) {
        int n = fill_list(&L, t, first, count);
        sumsq_list_kernel<<<dim3(OGRID_X, (unsigned)n), OBLOCK, 0, st>>>(o->d_part, L);
        CUDA_CHECK(cudaGetLastError());
        total_kernel<<<1, OBLOCK, 0, st>>>(total, o->d_part, OGRID_X * n);
        CUDA_CHECK(cudaGetLastError());
    }
    coef_kernel<<<1, 1, 0, st>>>(o->d_coef, total, max_norm);
    CUDA_CHECK(cudaGetLastError());
    if (max_norm > 0)
        for (int first = 0; first < count; first += CUDA_OPTIM_LIST_TENSORS) {
            int n = fill_list(&L, t, first, count);
            scale_list_kernel<<<dim3(OGRID_X, (unsigned)n), OBLOCK, 0, st>>>(L, o->d_coef);
            CUDA_CHECK(cudaGetLastError());
        }
}

/* ---- flat arrays: the same list, built from offsets ---- */

/* o->flat[0..count) = the tensors of a flat-array call, by pointer (NULL arrays stay NULL). */
static const nn_opt_tensor *flat_list(cuda_optim *o, float *params, const float *grads, float *avg,
                                      float *sqr, const cuda_optim_tensor *t, int count)
{
    if (count > CUDA_OPTIM_STEP_TENSORS) {
        log_error("cuda", "optimizer call refused", "{s:i,s:i}", "tensors", count, "most",
                  CUDA_OPTIM_STEP_TENSORS);
        abort();
    }
    for (int k = 0; k < count; k++) {
        size_t off = t[k].offset;
        o->flat[k] = (nn_opt_tensor){.param = params ? params + off : NULL,
                                     .grad = (float *)grads + off,
                                     .avg = avg ? avg + off : NULL,
                                     .sqr = sqr ? sqr + off : NULL,
                                     .n = t[k].n, .lr = t[k].lr, .wd = t[k].wd,
                                     .step = t[k].step};
    }
    return o->flat;
}

extern "C" int cuda_optim_adam_set(cuda_optim *o, const cuda_adam_args *a)
{
    if (a->count > CUDA_OPTIM_STEP_TENSORS)
        return err_set(KF_EINVAL, "cuda_optim: %d tensors in one step (at most %d)", a->count,
                       CUDA_OPTIM_STEP_TENSORS);
    const nn_opt_tensor *t =
        flat_list(o, a->params, a->grads, a->avg, a->sqr, a->tensors, a->count);
    return cuda_optim_adam_list_set(o, t, a->count, a->mom, a->sqr_mom, a->eps);
}

extern "C" void cuda_optim_adam_queue(cuda_optim *o, const cuda_adam_args *a)
{
    cuda_optim_adam_list_queue(
        o, flat_list(o, a->params, a->grads, a->avg, a->sqr, a->tensors, a->count), a->count);
}

extern "C" void cuda_optim_adam_step(cuda_optim *o, const cuda_adam_args *a)
{
    cuda_optim_adam_list(o, flat_list(o, a->params, a->grads, a->avg, a->sqr, a->tensors, a->count),
                         a->count, a->mom, a->sqr_mom, a->eps);
}

extern "C" void cuda_optim_clip_queue(cuda_optim *o, float *grads,
                                      const cuda_optim_tensor *tensors, int count, double max_norm)
{
    cuda_optim_clip_list_queue(o, flat_list(o, NULL, grads, NULL, NULL, tensors, count), count,
                               max_norm);
}

extern "C" double cuda_optim_clip_grad_norm(cuda_optim *o, float *grads,
                                            const cuda_optim_tensor *tensors, int count,
                                            double max_norm)
{
    cuda_optim_clip_queue(o, grads, tensors, count, max_norm);
    return cuda_optim_clip_norm(o);
}

extern "C" int cuda_optim_new(cuda_optim **out, cuda_ctx *ctx)
{
    int rc;
    *out = NULL;
    cuda_optim *o = (cuda_optim *)calloc(1, sizeof *o);
    if (!o)
        return err_set(KF_ENOMEM, "cuda: out of memory for the optimizer");
    o->ctx = ctx;
    if ((rc = CUDA_TRY(cudaMalloc((void **)&o->d_part,
                                  (OGRID_X * CUDA_OPTIM_MAX_TENSORS + 1) * sizeof(double)))) < 0 ||
        (rc = CUDA_TRY(cudaMallocHost((void **)&o->h_total, sizeof(double)))) < 0 ||
        (rc = CUDA_TRY(cudaMalloc((void **)&o->d_coef, sizeof(float)))) < 0 ||
        (rc = CUDA_TRY(cudaMallocHost((void **)&o->h_hyper,
                                      CUDA_OPTIM_STEP_TENSORS * sizeof(seg_hyper)))) < 0 ||
        (rc = CUDA_TRY(cudaMalloc((void **)&o->d_hyper,
                                  CUDA_OPTIM_STEP_TENSORS * sizeof(seg_hyper)))) < 0 ||
        (rc = CUDA_TRY(cudaEventCreateWithFlags(&o->hyper_copied, cudaEventDisableTiming))) < 0) {
        cuda_optim_free(o);
        return rc;
    }
    if (!(o->flat = (nn_opt_tensor *)calloc(CUDA_OPTIM_STEP_TENSORS, sizeof *o->flat))) {
        cuda_optim_free(o);
        return err_set(KF_ENOMEM, "cuda: out of memory for the optimizer");
    }
    *out = o;
    return 0;
}

extern "C" void cuda_optim_free(cuda_optim *o)
{
    if (!o)
        return;
    if (o->d_part)
        CUDA_CHECK(cudaFree(o->d_part));
    if (o->h_total)
        CUDA_CHECK(cudaFreeHost(o->h_total));
    if (o->d_coef)
        CUDA_CHECK(cudaFree(o->d_coef));
    if (o->h_hyper)
        CUDA_CHECK(cudaFreeHost(o->h_hyper));
    if (o->d_hyper)
        CUDA_CHECK(cudaFree(o->d_hyper));
    if (o->hyper_copied)
        CUDA_CHECK(cudaEventDestroy(o->hyper_copied));
    free(o->flat);
    free(o);
}
