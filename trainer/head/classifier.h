/* classifier: fastai's PoolingLinearClassifier (get_text_classifier's head) on any nn_backend.
 *
 *   pooled = masked_concat_pool(enc, pad)                  [last | max | mean], (B, 3E)
 *   for each block k < NK:  BatchNorm1d(D_k) -> Dropout(p_k) -> Linear(D_k, D_k+1, no bias)
 *                           -> ReLU (all but the last block)
 *   logits (B, L)
 * fastai defaults: dims [3E, 50, L], ps [0.4*drop_mult, 0.1], BN eps 1e-5 momentum 0.1,
 * "last" = position T-1-(pads among the last bptt=72 positions), exactly as fastai computes it.
 *
 * Dimension legend: B batch, T kept encoder positions, E encoder output size, D_k input features
 * of block k (D_0 = 3E, D_NK = L), L labels, NK blocks.
 * Encoder outputs/gradients are TIME-MAJOR (T,B,E) backend memory (nn's layout); the pad mask
 * is a host (B,T) uint8 array (1 = pad). All tensors other than inputs are backend memory.
 * Backward accumulates into the parameter gradients and into d_enc. */
#ifndef KUBEFIT_HEAD_CLASSIFIER_H
#define KUBEFIT_HEAD_CLASSIFIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "kernels.h"
#include "nn.h"

#define HEAD_MAX_BLOCKS 8

typedef struct head_config {
    int emb;                          /* E: encoder output size; the head's input is 3E */
    int n_blocks;                     /* NK = len(lin_ftrs) + 1, 1..HEAD_MAX_BLOCKS */
    int dims[HEAD_MAX_BLOCKS + 1];    /* dims[0] = 3E, dims[k] = lin_ftrs[k-1], dims[NK] = L */
    float ps[HEAD_MAX_BLOCKS];        /* dropout before block k's linear, in [0,1) */
    int bptt;                         /* fastai seq_len (72): window for the "last" position */
    float bn_eps, bn_momentum;        /* 1e-5, 0.1 */
    bool multi_label;                 /* true: sigmoid + BCE; false: softmax + CE */
} head_config;

/* fastai get_text_classifier defaults: lin_ftrs [50], ps [0.4*drop_mult, 0.1], bptt 72. */
head_config head_config_default(int emb, int n_labels, bool multi_label, float drop_mult);

typedef struct head_clf head_clf;

/* Views into the parameter block (same layout in the gradient block) and the buffers. */
typedef struct head_block_weights {
    float *bn_w;      /* (D_k)  "1.layers.k.0.weight" */
    float *bn_b;      /* (D_k)  "1.layers.k.0.bias" */
    float *lin_w;     /* (D_k+1, D_k) "1.layers.k.2.weight" (".1." when p_k == 0) */
    float *run_mean;  /* (D_k)  buffer "1.layers.k.0.running_mean" (NULL in the grad view) */
    float *run_var;   /* (D_k)  buffer "1.layers.k.0.running_var" (NULL in the grad view) */
} head_block_weights;

/* Activations of the last forward, for backward (backend memory, capacity max_batch). */
typedef struct head_block_acts {
    float *xhat;   /* (B,D_k) normalised BN input */
    float *mean;   /* (D_k) statistics used (batch in training, running in eval) */
    float *rstd;   /* (D_k) 1/sqrt(var + eps) */
    float *mask;   /* (B,D_k) dropout mask, 0 or 1/(1-p_k); written by head_clf_masks_sample or
                      the caller (then set training) */
    float *drop;   /* (B,D_k) BN output after dropout = the linear's input */
    float *out;    /* (B,D_k+1) linear output, after ReLU for all but the last block (= logits) */
} head_block_acts;

/* Creates the head for batches of up to max_batch rows; parameters zeroed (call head_clf_init or
 * load weights). kernels NULL = the backend's own (be->head, e.g. the CUDA table), else
 * head_kernels_cpu(). Caller frees with head_clf_free.
 * KF_EINVAL for a bad config, KF_ENOMEM. */
int head_clf_new(head_clf **out, const head_config *cfg, nn_backend *be,
                 const head_kernels *kernels, int max_batch);
void head_clf_free(head_clf *c);
const head_config *head_clf_config(const head_clf *c);

/* fastai/PyTorch init: BN weight 1, bias 1e-3, running mean 0, var 1; Linear weights
 * U(-1/sqrt(D_k), 1/sqrt(D_k)) (kaiming_uniform a=sqrt(5)), deterministic in seed.
 * Returns 0 or KF_ENOMEM. */
int head_clf_init(head_clf *c, uint64_t seed);

/* Parameter and gradient blocks (head_num_params floats each, backend memory, same layout). */
size_t head_num_params(const head_clf *c);
float *head_params(head_clf *c);
float *head_grads(head_clf *c);
void head_zero_grad(head_clf *c);
const head_block_weights *head_clf_weights(const head_clf *c, int k);
const head_block_weights *head_clf_grads(const head_clf *c, int k);
/* Trainable tensors in fastai state_dict order (nn_tensor: name, offset into the blocks, shape,
 * group = 0 here (the caller shifts it), no_wd for BN weight/bias as fastai wd_bn_bias=False). */
int head_tensor_count(const head_clf *c);
const nn_tensor *head_tensors(const head_clf *c);
/* BN running statistics: their own block (backend memory) and tensors (offsets into it).
 * num_batches_tracked (int64 in PyTorch) is head_clf_batches_tracked; not in this block. */
size_t head_num_buffers(const head_clf *c);
float *head_buffers(head_clf *c);
int head_buffer_count(const head_clf *c);
const nn_tensor *head_buffer_tensors(const head_clf *c);
int64_t head_clf_batches_tracked(const head_clf *c);

/* Activations of block k, for tests and for masks of the caller's own. */
const head_block_acts *head_clf_acts(const head_clf *c, int k);
/* pooled (B,3E), logits (B,L) and d_logits (B,L) of the last forward (backend memory). */
float *head_clf_pooled(head_clf *c);
float *head_clf_logits(head_clf *c);
float *head_clf_dlogits(head_clf *c);
/* Index of the max position per (b,e) (B,E), int32 backend memory. */
const int32_t *head_clf_argmax(const head_clf *c);

/* Draws every dropout mask of one training forward from (seed, step) for batch size B. */
void head_clf_masks_sample(head_clf *c, int B, uint64_t seed, uint64_t step);

/* Allocates the pad mask for batches of up to B x T (forward grows it otherwise). */
int head_clf_reserve(head_clf *c, int B, int T);

/* Forward: enc (T,B,E) backend memory, pad (B,T) host. training: batch-statistics BN (updates
 * running stats) + the current masks; otherwise eval (running stats, no dropout).
 * KF_EINVAL: B over capacity, B < 2 in training (BatchNorm needs 2 rows), a row with no
 * non-pad position, T < 1. */
int head_clf_forward(head_clf *c, const float *enc, const uint8_t *pad, int B, int T,
                     bool training);

/* Targets of one batch, host memory: multi-label (B,L) floats in [0,1]; single-label (B) class
 * indices in [0,L). */
typedef struct head_targets {
    const float *multi;
    const int32_t *single;
} head_targets;

/* Loss of the last forward: mean BCE-with-logits over B*L (multi-label) or mean softmax CE over B
 * (single-label). Writes d_logits = dloss * dLoss/dlogits (dloss usually 1) for backward.
 * KF_EINVAL for missing targets or a class index out of range. */
int head_clf_loss(head_clf *c, double *loss, const head_targets *y, float dloss);

/* Backward from d_logits (written by head_clf_loss, or by the caller): accumulates parameter
 * gradients and d_enc (T,B,E) backend memory (the encoder-output gradient for nn). */
int head_clf_backward(head_clf *c, float *d_enc);

#endif
