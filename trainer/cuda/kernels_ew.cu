/* kernels_ew: element-wise, gather/scatter and column-sum kernels of the CUDA backend. The CPU
 * versions (trainer/nn/backend_cpu.c) define the semantics; these do the same float operations
 * in the same order per element, so most results are bit-identical.
 * Dimension legend: N rows, D columns, B batch, T time, E embedding, R x M (time, row) for TAR. */
#include "kernels.h"

#include "cuda_check.h"

#include <stdint.h>

/* rng.h is plain integer math written for the host; compile its functions for the device too so
 * the masks come from the very same code as the CPU's (and nn_masks_sample's). It holds only
 * static inline functions, which this makes __host__ __device__. (Asked in perf-notes.md for an
 * annotation in rng.h itself.) */
#define static static __host__ __device__
#include "rng.h"
#undef static

#define BLOCK 256

#define GRID_STRIDE(i, n)                                                                  \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                 \
         i += (size_t)gridDim.x * blockDim.x)

static __global__ void fill_kernel(float *x, float v, size_t n)
{
    GRID_STRIDE(i, n) x[i] = v;
}

void kern_fill(cudaStream_t st, float *x, float value, size_t n)
{
    if (!n)
        return;
    fill_kernel<<<kern_grid(n, BLOCK), BLOCK, 0, st>>>(x, value, n);
    CUDA_CHECK(cudaGetLastError());
}

static __global__ void mask_kernel(float *y, size_t n, float p, uint64_t seed, uint64_t stream)
{
    float keep = p > 0 ? 1.0f / (1.0f - p) : 1.0f;
    GRID_STRIDE(i, n) y[i] = (p > 0 && nn_rng_uniform(seed, stream, i) < p) ? 0.0f : keep;
}

void kern_dropout_mask(cudaStream_t st, float *mask, size_t n, float p, uint64_t seed,
                       uint64_t stream)
{
    if (!n)
        return;
    mask_kernel<<<kern_grid(n, BLOCK), BLOCK, 0, st>>>(mask, n, p, seed, stream);
    CUDA_CHECK(cudaGetLastError());
}

static __global__ void mul_kernel(float *y, const float *x, const float *m, size_t n)
{
    GRID_STRIDE(i, n) y[i] = x[i] * m[i];
}

void kern_mul(cudaStream_t st, float *y, const float *x, const float *m, size_t n)
{
    if (!n)
        return;
    mul_kernel<<<kern_grid(n, BLOCK), BLOCK, 0, st>>>(y, x, m, n);
    CUDA_CHECK(cudaGetLastError());
}

/* y(R*period) = x * m(period) repeated. */
static __global__ void mul_bcast_kernel(float *y, const float *x, const float *m, size_t n,
                                        size_t period)
{
    GRID_STRIDE(i, n) y[i] = x[i] * m[i % period];
}

void kern_mul_bcast(cudaStream_t st, float *y, const float *x, const float *m, size_t n,
                    size_t period)
{
    if (!n)
        return;
    mul_bcast_kernel<<<kern_grid(n, BLOCK), BLOCK, 0, st>>>(y, x, m, n, period);
    CUDA_CHECK(cudaGetLastError());
}

static __global__ void axpy_kernel(float *y, float a, const float *x, size_t n)
{
    GRID_STRIDE(i, n) y[i] += a * x[i];
}

void kern_axpy(cudaStream_t st, float *y, float a, const float *x, size_t n)
{
    if (!n)
        return;
    axpy_kernel<<<kern_grid(n, BLOCK), BLOCK, 0, st>>>(y, a, x, n);
    CUDA_CHECK(cudaGetLastError());
}

/* out(T,B,E): element (r=t*B+b, e) = w[tok[b*T+t]][e] * rowmask[id]. */
static __global__ void emb_fwd_kernel(float *out, const int32_t *tok, const float *w,
                                      const float *rowmask, int B, int T, int E)
{
    size_t n = (size_t)B * T * E;
    GRID_STRIDE(i, n) {
        size_t r = i / (size_t)E, e = i % (size_t)E;
        size_t t = r / (size_t)B, b = r % (size_t)B;
        int32_t id = tok[b * (size_t)T + t];
        float s = rowmask ? rowmask[id] : 1.0f;
        out[i] = w[(size_t)id * E + e] * s;
    }
}

void kern_embedding_fwd(cudaStream_t st, float *out, const int32_t *tok, const float *w,
                        const float *rowmask, int B, int T, int E)
{
    size_t n = (size_t)B * T * E;
    if (!n)
        return;
    emb_fwd_kernel<<<kern_grid(n, BLOCK), BLOCK, 0, st>>>(out, tok, w, rowmask, B, T, E);
    CUDA_CHECK(cudaGetLastError());
}

/* dw(V,E)[id] += dout(T,B,E) * rowmask[id]; repeated tokens meet in atomicAdd. */
static __global__ void emb_bwd_kernel(float *dw, const float *dout, const int32_t *tok,
                                      const float *rowmask, int pad, int B, int T, int E)
{
    size_t n = (size_t)B * T * E;
    GRID_STRIDE(i, n) {
        size_t r = i / (size_t)E, e = i % (size_t)E;
        size_t t = r / (size_t)B, b = r % (size_t)B;
        int32_t id = tok[b * (size_t)T + t];
        if (id == pad)
            continue;
        float s = rowmask ? rowmask[id] : 1.0f;
        atomicAdd(&dw[(size_t)id * E + e], dout[i] * s);
    }
}

void kern_embedding_bwd(cudaStream_t st, float *dw, const float *dout, const int32_t *tok,
                        const float *rowmask, int pad, int B, int T, int E)
{
    size_t n = (size_t)B * T * E;
    if (!n)
        return;
    emb_bwd_kernel<<<kern_grid(n, BLOCK), BLOCK, 0, st>>>(dw, dout, tok, rowmask, pad, B, T, E);
    CUDA_CHECK(cudaGetLastError());
}

/* y(N,D) += b1(D) + b2(D) */
static __global__ void add_bias_kernel(float *y, const float *b1, const float *b2, size_t n, int D)
{
    GRID_STRIDE(i, n) {
        size_t d = i % (size_t)D;
        y[i] += b1[d] + (b2 ? b2[d] : 0.0f);
    }
}

void kern_add_bias(cudaStream_t st, float *y, const float *b1, const float *b2, int N, int D)
{
    size_t n = (size_t)N * D;
    if (!n)
        return;
    add_bias_kernel<<<kern_grid(n, BLOCK), BLOCK, 0, st>>>(y, b1, b2, n, D);
    CUDA_CHECK(cudaGetLastError());
}

/* db(D) += column sums of dy(N,D). A block owns 32 columns; its 8 warps-rows stride over the
 * rows (coalesced 128-byte reads), accumulate in double and meet in shared memory. */
#define BG_COLS 32
#define BG_ROWS 8
static __global__ void bias_grad_kernel(float *db, const float *dy, int N, int D)
{
    __shared__ double part[BG_ROWS][BG_COLS];
    int col = blockIdx.x * BG_COLS + threadIdx.x;
    double acc = 0;
    if (col < D)
        for (int r = threadIdx.y; r < N; r += BG_ROWS)
            acc += dy[(size_t)r * D + col];
    part[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && col < D) {
        for (int k = 1; k < BG_ROWS; k++)
            acc += part[k][threadIdx.x];
        db[col] += (float)acc;
    }
}

void kern_bias_grad(cudaStream_t st, float *db, const float *dy, int N, int D)
{
    if (N <= 0 || D <= 0)
        return;
    dim3 block(BG_COLS, BG_ROWS);
    bias_grad_kernel<<<(unsigned)((D + BG_COLS - 1) / BG_COLS), block, 0, st>>>(db, dy, N, D);
    CUDA_CHECK(cudaGetLastError());
}

/* dx(R,M) += 2*scale*((x[t]-x[t-1]) - (x[t+1]-x[t])), the terms that exist. */
static __global__ void tdiff_grad_kernel(float *dx, const float *x, float scale, size_t R,
                                         size_t M)
{
    size_t n = R * M;
    GRID_STRIDE(i, n) {
        size_t t = i / M;
        float g = 0;
        if (t > 0)
            g += x[i] - x[i - M];
        if (t + 1 < R)
            g -= x[i + M] - x[i];
        dx[i] += 2.0f * scale * g;
    }
}

void kern_tdiff_grad(cudaStream_t st, float *dx, const float *x, float scale, int R, int M)
{
    size_t n = (size_t)R * M;
    if (!n)
        return;
    tdiff_grad_kernel<<<kern_grid(n, BLOCK), BLOCK, 0, st>>>(dx, x, scale, (size_t)R, (size_t)M);
    CUDA_CHECK(cudaGetLastError());
}
