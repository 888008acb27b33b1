/* kernels: launchers of the CUDA backend's own kernels (CUDA C++ only, internal to trainer/cuda).
 * Every launcher queues work on `st` and checks the launch (cuda_check.h); pointers are device
 * memory. Dimension legend as backend.h: N rows, D columns, B batch, T time, H hidden, V vocab,
 * E embedding; R x M for a (time, row) view in the TAR helpers. */
#ifndef KUBEFIT_CUDA_KERNELS_H
#define KUBEFIT_CUDA_KERNELS_H

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

/* Grid size for a grid-stride loop over n elements with `block` threads (C++ inline). */
inline unsigned kern_grid(size_t n, int block)
{
    size_t g = (n + (size_t)block - 1) / (size_t)block;
    return g == 0 ? 1u : g > 8192 ? 8192u : (unsigned)g;
}

/* kernels_ew.cu: element-wise and gather/scatter. */
void kern_fill(cudaStream_t st, float *x, float value, size_t n);
void kern_dropout_mask(cudaStream_t st, float *mask, size_t n, float p, uint64_t seed,
                       uint64_t stream);
void kern_mul(cudaStream_t st, float *y, const float *x, const float *m, size_t n);
void kern_mul_bcast(cudaStream_t st, float *y, const float *x, const float *m, size_t n,
                    size_t period);
void kern_axpy(cudaStream_t st, float *y, float a, const float *x, size_t n);
void kern_embedding_fwd(cudaStream_t st, float *out, const int32_t *tok, const float *w,
                        const float *rowmask, int B, int T, int E);
void kern_embedding_bwd(cudaStream_t st, float *dw, const float *dout, const int32_t *tok,
                        const float *rowmask, int pad, int B, int T, int E);
void kern_add_bias(cudaStream_t st, float *y, const float *b1, const float *b2, int N, int D);
void kern_bias_grad(cudaStream_t st, float *db, const float *dy, int N, int D);
void kern_tdiff_grad(cudaStream_t st, float *dx, const float *x, float scale, int R, int M);

/* kernels_lstm.cu: the fused LSTM cell (one pass over the four gates and the cell state). */
void kern_lstm_cell_fwd(cudaStream_t st, float *gates, float *c, float *h, const float *c_prev,
                        int B, int H);
void kern_lstm_cell_bwd(cudaStream_t st, float *dgates, const float *dh, float *dc,
                        const float *gates, const float *c, const float *c_prev, int B, int H);

/* kernels_xent.cu: softmax + cross-entropy, one block per row. */
void kern_softmax_xent_fwd(cudaStream_t st, float *loss, float *probs, const int32_t *targets,
                           int N, int V);
void kern_softmax_xent_bwd(cudaStream_t st, float *dlogits, const float *probs,
                           const int32_t *targets, float scale, int N, int V);

/* kernels_reduce.cu: reductions in double. Partial sums go to scratch (KERN_RED_PARTS doubles),
 * the total to *d_out (device); nothing is synchronised here. */
enum { KERN_RED_SUM, KERN_RED_SUMSQ, KERN_RED_TDIFF };
#define KERN_RED_PARTS 1024
void kern_reduce(cudaStream_t st, double *d_out, double *scratch, const float *x, size_t n,
                 size_t M, int kind);

#endif
