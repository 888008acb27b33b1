/* loss: the classifier's losses, predictions and fastai's AR/TAR regulariser, forward and gradient.
 *
 * Dimension legend: B batch, L labels, n = B*L, T time, E encoder output size.
 * logits/targets/gradients are backend memory unless a comment says host. Loss backward WRITES
 * d_logits (it starts the chain); AR/TAR backward ACCUMULATES into d_out. */
#ifndef KUBEFIT_HEAD_LOSS_H
#define KUBEFIT_HEAD_LOSS_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "kernels.h"

/* Multi-label: mean over n of max(z,0) - z*y + log1p(exp(-|z|)) (BCEWithLogitsLoss). */
double head_bce_forward(const head_kernels *k, nn_backend *be, const float *logits,
                        const float *targets, size_t n);
/* d_logits(n) = dloss * (sigmoid(z) - y) / n. */
void head_bce_backward(const head_kernels *k, nn_backend *be, float *d_logits,
                       const float *logits, const float *targets, size_t n, float dloss);

/* Single-label: mean over B of logsumexp(z_b) - z_b[y_b]. probs(B,L) out (softmax, kept for
 * backward), losses(B) scratch. Targets must be in [0,L) (checked by the caller). */
double head_ce_forward(nn_backend *be, float *probs, float *losses, const float *logits,
                       const int32_t *targets, int B, int L);
/* d_logits(B,L) = dloss * (probs - onehot(y)) / B; may alias probs. */
void head_ce_backward(nn_backend *be, float *d_logits, const float *probs,
                      const int32_t *targets, int B, int L, float dloss);

/* Host helpers for metrics. Multi-label: probs = sigmoid(z), pred = probs > thresh (0.5 as
 * fastai's accuracy_multi). Single-label: probs = softmax(z), pred = argmax (first of ties). */
void head_predict_multi(uint8_t *pred, float *probs, const float *logits, size_t n,
                        float thresh);
void head_predict_single(int32_t *pred, float *probs, const float *logits, int B, int L);

/* fastai RNNRegularizer on the classifier's encoder output out(T,B,E) (zero-padded rows and pad
 * positions included, as fastai sees them): alpha * mean(out^2) + beta * mean over B*(T-1)*E of
 * (out[t+1]-out[t])^2. TAR is skipped when B == 1 (fastai's `len(h)>1`) or T == 1. */
double head_artar_forward(nn_backend *be, const float *out, int T, int B, int E, float alpha,
                          float beta);
/* d_out(T,B,E) += dloss * gradient of head_artar_forward. */
void head_artar_backward(nn_backend *be, float *d_out, const float *out, int T, int B, int E,
                         float alpha, float beta, float dloss);

#endif
