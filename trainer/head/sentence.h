/* sentence: fastai's SentenceEncoder over nn's AWD-LSTM encoder, plus its AR/TAR regulariser.
 *
 * For a padded batch tokens(B,S) (pad-first as fastai's pad_input_chunk, sorted longest first):
 * reset the carried state; for every BPTT chunk i = 0, bptt, 2*bptt, ...: real_bs = rows whose
 * token at i is not pad; run the encoder on tokens[:real_bs, i:i+bptt] (state carried, detached);
 * keep the chunk's output when S - i <= max_len. Output (T,B,E) time-major = kept chunks
 * concatenated in time, rows >= real_bs zero, T = S - first kept i; pad mask (B,T) host.
 * Backward runs nn_encoder_backward for every kept chunk (chunks are independent: the state
 * between them is detached, as in fastai). Chunks that are not kept get no backward.
 *
 * Dimension legend: B batch, S padded length, T kept length, E encoder output size, V vocab. */
#ifndef KUBEFIT_HEAD_SENTENCE_H
#define KUBEFIT_HEAD_SENTENCE_H

#include <stdbool.h>
#include <stdint.h>

#include "nn.h"

#define HEAD_CHUNK_STREAMS 65536 /* mask step of chunk c of batch step s: s*65536 + c */

typedef struct head_sentence_config {
    int bptt;        /* fastai seq_len: 72 */
    int max_len;     /* kept output length: 72*20; <= 0 keeps everything */
    int pad_token;   /* 1 */
    float ar_alpha;  /* fastai TextLearner's RNNRegularizer: 2 */
    float tar_beta;  /* 1 */
} head_sentence_config;

head_sentence_config head_sentence_config_default(void);

/* Called before chunk `chunk`'s encoder forward in training instead of nn_masks_sample: write the
 * masks into a (for `b` rows) and set a->training = true. For tests that share masks. */
typedef void (*head_mask_fn)(void *ctx, nn_model *m, nn_acts *a, int chunk, int b);

typedef struct head_forward_opts {
    bool training;
    uint64_t seed, step;   /* training masks: nn_masks_sample(m, a, seed, step*65536 + chunk) */
    head_mask_fn set_masks; /* optional, see above */
    void *ctx;
} head_forward_opts;

typedef struct head_sentence head_sentence;

/* m is borrowed (must outlive s) and should be built with nn_config_clas (no decoder needed).
 * Caller frees with head_sentence_free. */
int head_sentence_new(head_sentence **out, nn_model *m, const head_sentence_config *cfg,
                      int max_batch);
void head_sentence_free(head_sentence *s);

/* Allocates everything a forward of up to B rows and length S needs (outputs, the activations
 * of every kept chunk), so that training batches no longer than S allocate nothing. */
int head_sentence_reserve(head_sentence *s, int B, int S);
/* Kept output length T of a forward of length S (at most max_len). */
int head_sentence_kept_len(const head_sentence *s, int S);

/* tokens (B,S) host int32. KF_EINVAL: B over capacity, a token out of range, a chunk whose
 * first position is pad in every row (the batch is not pad-first/sorted). */
int head_sentence_forward(head_sentence *s, const int32_t *tokens, int B, int S,
                          const head_forward_opts *o);
/* Results of the last forward: out (T,B,E) backend memory, pad (B,T) host, d_out (T,B,E)
 * backend memory zeroed by forward (the head accumulates into it), T via *T. */
const float *head_sentence_output(const head_sentence *s, int *T);
const uint8_t *head_sentence_pad(const head_sentence *s);
float *head_sentence_dout(head_sentence *s);
/* AR + TAR of the last forward (0 in eval, as fastai's RNNRegularizer). */
double head_sentence_reg(const head_sentence *s);
/* Adds the AR/TAR gradient (training) to d_out and backpropagates every kept chunk into the
 * encoder's gradients (nn_grads, accumulated). KF_EINVAL after an eval forward (it keeps no
 * activations: every chunk runs in one shared scratch). */
int head_sentence_backward(head_sentence *s);

#endif
