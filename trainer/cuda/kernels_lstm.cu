/* kernels_lstm: the fused LSTM cell, forward and backward, one thread per (b, j) element of the
 * (B,H) state reading and writing all four gates of that element in one pass.
 * Dimension legend: B batch, H hidden; gates (B,4H) in PyTorch order i,f,g,o. Same float math as
 * backend_cpu.c (sigmoid = 1/(1+expf(-x)), tanhf). */
#include "kernels.h"

#include "cuda_check.h"

#define BLOCK 256

static __device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

/* gates(B,4H): pre-activations in, activations out; c, h (B,H) out; c_prev (B,H) in. */
static __global__ void cell_fwd_kernel(float *gates, float *c, float *h, const float *c_prev,
                                       size_t n, size_t H)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        size_t b = i / H, j = i % H;
        float *g = gates + b * 4 * H;
        float gi = sigmoid(g[j]), gf = sigmoid(g[H + j]);
        float gg = tanhf(g[2 * H + j]), go = sigmoid(g[3 * H + j]);
        g[j] = gi, g[H + j] = gf, g[2 * H + j] = gg, g[3 * H + j] = go;
        float cn = gf * c_prev[i] + gi * gg;
        c[i] = cn;
        h[i] = go * tanhf(cn);
    }
}

void kern_lstm_cell_fwd(cudaStream_t st, float *gates, float *c, float *h, const float *c_prev,
                        int B, int H)
{
    size_t n = (size_t)B * H;
    if (!n)
        return;
    cell_fwd_kernel<<<kern_grid(n, BLOCK), BLOCK, 0, st>>>(gates, c, h, c_prev, n, (size_t)H);
    CUDA_CHECK(cudaGetLastError());
}

/* dgates(B,4H) out; dh (B,H) in; dc (B,H) in dL/dc_t, out dL/dc_{t-1}; gates activated. */
static __global__ void cell_bwd_kernel(float *dgates, const float *dh, float *dc,
                                       const float *gates, const float *c, const float *c_prev,
                                       size_t n, size_t H)
{
    for (size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x; k < n;
         k += (size_t)gridDim.x * blockDim.x) {
        size_t b = k / H, j = k % H;
        const float *g = gates + b * 4 * H;
        float *dg = dgates + b * 4 * H;
        float gi = g[j], gf = g[H + j], gg = g[2 * H + j], go = g[3 * H + j];
        float tc = tanhf(c[k]), dhk = dh[k];
        float dct = dc[k] + dhk * go * (1.0f - tc * tc);
        dg[j] = dct * gg * gi * (1.0f - gi);
        dg[H + j] = dct * c_prev[k] * gf * (1.0f - gf);
        dg[2 * H + j] = dct * gi * (1.0f - gg * gg);
        dg[3 * H + j] = dhk * tc * go * (1.0f - go);
        dc[k] = dct * gf;
    }
}

void kern_lstm_cell_bwd(cudaStream_t st, float *dgates, const float *dh, float *dc,
                        const float *gates, const float *c, const float *c_prev, int B, int H)
{
    size_t n = (size_t)B * H;
    if (!n)
        return;
    cell_bwd_kernel<<<kern_grid(n, BLOCK), BLOCK, 0, st>>>(dgates, dh, dc, gates, c, c_prev, n,
                                                            (size_t)H);
    CUDA_CHECK(cudaGetLastError());
}
