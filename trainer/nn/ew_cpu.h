/* ew_cpu: row kernels of the CPU backend whose cost is exp/tanh - the LSTM cell (forward and
 * backward) and the softmax cross-entropy - in plain C and, when the CPU has AVX2+FMA, with
 * 8-wide exp/tanh (a few ulp, no fast-math). backend_cpu.c splits rows over the pool.
 * Dimension legend: H hidden size of the layer, V vocab. Gates in PyTorch order i,f,g,o. */
#ifndef KUBEFIT_NN_EW_CPU_H
#define KUBEFIT_NN_EW_CPU_H

#include <stdint.h>

/* One batch row of lstm_cell_fwd: g(4H) pre-activations in, activated gates out;
 * c(H) = f*c_prev + i*g, h(H) = o*tanh(c). */
typedef void nn_cell_fwd_row_fn(float *g, float *c, float *h, const float *c_prev, int H);
/* One batch row of lstm_cell_bwd: g(4H) activated gates, c(H) = c_t, c_prev(H), dh(H) total
 * dL/dh_t; dc(H) in dL/dc_t from step t+1, out dL/dc_{t-1}; dg(4H) out. */
typedef void nn_cell_bwd_row_fn(float *dg, float *dc, const float *dh, const float *g,
                                const float *c, const float *c_prev, int H);
/* One row of softmax_xent_fwd: x(V) logits in, probabilities out; returns -log p[target]. */
typedef float nn_softmax_row_fn(float *x, int V, int32_t target);

typedef struct nn_ew_kernels {
    nn_cell_fwd_row_fn *cell_fwd;
    nn_cell_bwd_row_fn *cell_bwd;
    nn_softmax_row_fn *softmax;
} nn_ew_kernels;

/* The fastest set this CPU runs (checked once). */
const nn_ew_kernels *nn_ew_kernels_get(void);
/* The plain C set (tests compare the two). */
const nn_ew_kernels *nn_ew_kernels_scalar(void);

#endif
