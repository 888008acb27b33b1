/* textclf: fastai's whole text classifier, get_text_classifier(AWD_LSTM, ...) =
 * SentenceEncoder(AWD-LSTM encoder) -> PoolingLinearClassifier, as one object over a borrowed
 * nn_model (nn_config_clas) and head_clf: forward, loss (task loss + fastai TextLearner's AR/TAR),
 * backward, and the parameter list under fastai's classifier state_dict names with
 * awd_lstm_clas_split groups (for the optimizer, gradual unfreezing and safetensors).
 *
 * Dimension legend: B batch, S padded length, L labels.
 *
 *   head_textclf_new(&tc, m, clf, &sc, max_batch);
 *   per batch: head_textclf_zero_grad(tc);
 *              head_textclf_forward(tc, tokens, B, S, &(head_forward_opts){.training = true,
 *                                   .seed = seed, .step = step});
 *              head_textclf_loss(tc, &loss, &targets); head_textclf_backward(tc);
 *              optimizer over head_textclf_params(tc) (param/grad pointers, group, no_wd). */
#ifndef KUBEFIT_HEAD_TEXTCLF_H
#define KUBEFIT_HEAD_TEXTCLF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "classifier.h"
#include "nn.h"
#include "sentence.h"

/* One tensor of the classifier (backend memory). */
typedef struct head_param {
    const char *name;  /* fastai state_dict name, e.g. "0.module.rnns.1.module.weight_ih_l0" */
    const char *alias; /* another state_dict name of the same storage, or NULL
                          ("0.module.encoder_dp.emb.weight") */
    float *param;
    float *grad;       /* NULL for buffers */
    size_t numel;
    int ndim;
    int64_t shape[2];
    int group;         /* awd_lstm_clas_split: 0 embedding, l+1 rnn layer l, NL+1 the head */
    bool no_wd;        /* biases and BatchNorm parameters (fastai wd_bn_bias=False) */
    bool buffer;       /* BatchNorm running statistics: saved with the model, not optimised */
} head_param;

typedef struct head_losses {
    double task;  /* mean BCE (multi-label) or CE (single-label): what fastai reports */
    double reg;   /* AR + TAR (training only) */
    double total; /* what backward differentiates */
} head_losses;

typedef struct head_textclf head_textclf;

/* m and clf are borrowed and must outlive tc; clf's emb must equal m's emb and its bptt the
 * sentence bptt. Caller frees with head_textclf_free. KF_EINVAL on a mismatch, KF_ENOMEM. */
int head_textclf_new(head_textclf **out, nn_model *m, head_clf *clf,
                     const head_sentence_config *sc, int max_batch);
void head_textclf_free(head_textclf *tc);

/* Zeroes the encoder's and the head's gradients. */
void head_textclf_zero_grad(head_textclf *tc);
/* tokens (B,S) host int32, pad-first, longest row first. Training draws the encoder's masks per
 * chunk and the head's masks from (seed, step) unless o->set_masks is given (then the caller
 * also writes the head masks, head_clf_acts(clf, k)->mask). */
int head_textclf_forward(head_textclf *tc, const int32_t *tokens, int B, int S,
                         const head_forward_opts *o);
/* The SentenceEncoder inside (its output, pad mask, AR/TAR of the last forward). */
head_sentence *head_textclf_sentence(head_textclf *tc);
/* Logits (B,L) of the last forward, backend memory. */
float *head_textclf_logits(head_textclf *tc);
/* Loss of the last forward against y (host); prepares backward. */
int head_textclf_loss(head_textclf *tc, head_losses *out, const head_targets *y);
/* Backward of loss->total; accumulates into the encoder's and the head's gradients. */
int head_textclf_backward(head_textclf *tc);

/* Trainable tensors then buffers, encoder first, in fastai state_dict order. */
int head_textclf_param_count(const head_textclf *tc);
const head_param *head_textclf_params(const head_textclf *tc);
/* Parameter groups (NL + 2): freeze_to(-n) trains groups >= NL + 2 - n. */
int head_textclf_group_count(const head_textclf *tc);

#endif
