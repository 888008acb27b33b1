/* cuda_optim: Adam (decoupled weight decay) and global-norm gradient clipping on flat arrays.
 * Tensors travel in the kernel arguments (up to CUDA_OPTIM_MAX_TENSORS, ~2.5 KB), so a step needs
 * no host-to-device copy: blockIdx.y picks the tensor, x blocks stride over its elements.
 * Per-tensor constants are computed on the host in double, as optim.c does. */
#include "cuda_optim.h"

#include "cuda_check.h"

static_assert(CUDA_OPTIM_LIST_TENSORS <= CUDA_OPTIM_MAX_TENSORS, "d_part holds the partials");

#include <math.h>
#include <stdlib.h>

#define OBLOCK 256
#define OGRID_X 256 /* x blocks per tensor */

typedef struct seg {
    size_t offset, n;
    float decay, scale, inv_d2; /* 1 - lr*wd; lr/(1-mom^step); 1/(1-sqr_mom^step) */
    int do_wd;
} seg;

typedef struct seg_list {
    seg s[CUDA_OPTIM_MAX_TENSORS];
    float mom, damp1, sqr_mom, damp2, eps, coef;
} seg_list;

struct cuda_optim {
    cuda_ctx *ctx;
    double *d_part; /* OGRID_X * CUDA_OPTIM_MAX_TENSORS partial sums, then the total */
    double *h_total; /* pinned */
};

static __global__ void adam_kernel(float *p, const float *g, float *avg, float *sqr,
                                   const seg_list L)
{
    const seg s = L.s[blockIdx.y];
    for (size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x; k < s.n;
         k += (size_t)gridDim.x * blockDim.x) {
        size_t i = s.offset + k;
        float w = p[i], gi = g[i];
        if (s.do_wd)
            w *= s.decay;
        float a = L.mom * avg[i] + L.damp1 * gi;
        float q = L.sqr_mom * sqr[i] + L.damp2 * gi * gi;
        avg[i] = a, sqr[i] = q;
        p[i] = w - s.scale * a / (sqrtf(q * s.inv_d2) + L.eps);
    }
}

extern "C" void cuda_optim_adam_step(cuda_optim *o, const cuda_adam_args *a)
{
    for (int first = 0; first < a->count; first += CUDA_OPTIM_MAX_TENSORS) {
        int n = a->count - first < CUDA_OPTIM_MAX_TENSORS ? a->count - first
                                                          : CUDA_OPTIM_MAX_TENSORS;
        seg_list L = {};
        L.mom = (float)a->mom, L.damp1 = (float)(1.0 - a->mom);
        L.sqr_mom = (float)a->sqr_mom, L.damp2 = (float)(1.0 - a->sqr_mom);
        L.eps = (float)a->eps;
        for (int k = 0; k < n; k++) {
            const cuda_optim_tensor *t = &a->tensors[first + k];
            seg *s = &L.s[k];
            s->offset = t->offset, s->n = t->n;
            s->decay = (float)(1.0 - t->lr * t->wd);
            s->scale = (float)(t->lr / (1.0 - pow(a->mom, t->step)));
            s->inv_d2 = (float)(1.0 / (1.0 - pow(a->sqr_mom, t->step)));
            s->do_wd = t->wd != 0.0;
        }
        adam_kernel<<<dim3(OGRID_X, (unsigned)n), OBLOCK, 0, o->ctx->stream>>>(
            a->params, a->grads, a->avg, a->sqr, L);
        CUDA_CHECK(cudaGetLastError());
    }
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

/* part[y*gridDim.x + x] = partial sum of squares of tensor y. */
static __global__ void sumsq_kernel(double *part, const float *g, const seg_list L)
{
    const seg s = L.s[blockIdx.y];
    double acc = 0;
    for (size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x; k < s.n;
         k += (size_t)gridDim.x * blockDim.x) {
        double v = g[s.offset + k];
        acc += v * v;
    }
    acc = block_sum(acc);
    if (threadIdx.x == 0)
        part[blockIdx.y * gridDim.x + blockIdx.x] = acc;
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

static __global__ void scale_kernel(float *g, const seg_list L)
{
    const seg s = L.s[blockIdx.y];
    for (size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x; k < s.n;
         k += (size_t)gridDim.x * blockDim.x)
        g[s.offset + k] *= L.coef;
}

static int fill_segs(seg_list *L, const cuda_optim_tensor *t, int first, int count)
{
    int n = count - first < CUDA_OPTIM_MAX_TENSORS ? count - first : CUDA_OPTIM_MAX_TENSORS;
    *L = (seg_list){};
    for (int k = 0; k < n; k++)
        L->s[k].offset = t[first + k].offset, L->s[k].n = t[first + k].n;
    return n;
}

extern "C" double cuda_optim_clip_grad_norm(cuda_optim *o, float *grads,
                                            const cuda_optim_tensor *tensors, int count,
                                            double max_norm)
{
    cudaStream_t st = o->ctx->stream;
    double *total = o->d_part + OGRID_X * CUDA_OPTIM_MAX_TENSORS;
    seg_list L;
    CUDA_CHECK(cudaMemsetAsync(total, 0, sizeof *total, st));
    for (int first = 0; first < count; first += CUDA_OPTIM_MAX_TENSORS) {
        int n = fill_segs(&L, tensors, first, count);
        sumsq_kernel<<<dim3(OGRID_X, (unsigned)n), OBLOCK, 0, st>>>(o->d_part, grads, L);
        CUDA_CHECK(cudaGetLastError());
        total_kernel<<<1, OBLOCK, 0, st>>>(total, o->d_part, OGRID_X * n);
        CUDA_CHECK(cudaGetLastError());
    }
    CUDA_CHECK(cudaMemcpyAsync(o->h_total, total, sizeof *total, cudaMemcpyDeviceToHost, st));
    CUDA_CHECK(cudaStreamSynchronize(st));
    double norm = sqrt(*o->h_total);
    double coef = max_norm > 0 ? max_norm / (norm + 1e-6) : 1.0;
    if (coef < 1.0)
        for (int first = 0; first < count; first += CUDA_OPTIM_MAX_TENSORS) {
            int n = fill_segs(&L, tensors, first, count);
            L.coef = (float)coef;
            scale_kernel<<<dim3(OGRID_X, (unsigned)n), OBLOCK, 0, st>>>(grads, L);
            CUDA_CHECK(cudaGetLastError());
        }
    return norm;
}

/* ---- tensor lists (pointers per tensor) ---- */

typedef struct pseg {
    float *p, *g, *avg, *sqr;
    size_t n;
    float decay, scale, inv_d2; /* as seg */
    int do_wd;
} pseg;

typedef struct pseg_list { /* ~1.8 KB of kernel arguments */
    pseg s[CUDA_OPTIM_LIST_TENSORS];
    float mom, damp1, sqr_mom, damp2, eps, coef;
} pseg_list;

static __global__ void adam_list_kernel(const pseg_list L)
{
    const pseg s = L.s[blockIdx.y];
    for (size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x; k < s.n;
         k += (size_t)gridDim.x * blockDim.x) {
        float w = s.p[k], gi = s.g[k];
        if (s.do_wd)
            w *= s.decay;
        float a = L.mom * s.avg[k] + L.damp1 * gi;
        float q = L.sqr_mom * s.sqr[k] + L.damp2 * gi * gi;
        s.avg[k] = a, s.sqr[k] = q;
        s.p[k] = w - s.scale * a / (sqrtf(q * s.inv_d2) + L.eps);
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

static __global__ void scale_list_kernel(const pseg_list L)
{
    const pseg s = L.s[blockIdx.y];
    for (size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x; k < s.n;
         k += (size_t)gridDim.x * blockDim.x)
        s.g[k] *= L.coef;
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

extern "C" void cuda_optim_adam_list(cuda_optim *o, const nn_opt_tensor *t, int count, double mom,
                                     double sqr_mom, double eps)
{
    for (int first = 0; first < count; first += CUDA_OPTIM_LIST_TENSORS) {
        pseg_list L;
        int n = fill_list(&L, t, first, count);
        L.mom = (float)mom, L.damp1 = (float)(1.0 - mom);
        L.sqr_mom = (float)sqr_mom, L.damp2 = (float)(1.0 - sqr_mom);
        L.eps = (float)eps;
        for (int k = 0; k < n; k++) { /* per-tensor constants in double, as optim.c */
            const nn_opt_tensor *x = &t[first + k];
            L.s[k].decay = (float)(1.0 - x->lr * x->wd);
            L.s[k].scale = (float)(x->lr / (1.0 - pow(mom, x->step)));
            L.s[k].inv_d2 = (float)(1.0 / (1.0 - pow(sqr_mom, x->step)));
            L.s[k].do_wd = x->wd != 0.0;
        }
        adam_list_kernel<<<dim3(OGRID_X, (unsigned)n), OBLOCK, 0, o->ctx->stream>>>(L);
        CUDA_CHECK(cudaGetLastError());
    }
}

extern "C" double cuda_optim_clip_list(cuda_optim *o, const nn_opt_tensor *t, int count,
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
    CUDA_CHECK(cudaMemcpyAsync(o->h_total, total, sizeof *total, cudaMemcpyDeviceToHost, st));
    CUDA_CHECK(cudaStreamSynchronize(st));
    double norm = sqrt(*o->h_total);
    double coef = max_norm > 0 ? max_norm / (norm + 1e-6) : 1.0;
    if (coef < 1.0)
        for (int first = 0; first < count; first += CUDA_OPTIM_LIST_TENSORS) {
            int n = fill_list(&L, t, first, count);
            L.coef = (float)coef;
            scale_list_kernel<<<dim3(OGRID_X, (unsigned)n), OBLOCK, 0, st>>>(L);
            CUDA_CHECK(cudaGetLastError());
        }
    return norm;
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
        (rc = CUDA_TRY(cudaMallocHost((void **)&o->h_total, sizeof(double)))) < 0) {
        cuda_optim_free(o);
        return rc;
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
    free(o);
}
