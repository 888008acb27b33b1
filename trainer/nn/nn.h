/* nn: fastai's AWD-LSTM language model (encoder + tied decoder), forward and backward, on any
 * nn_backend (backend.h). See docs/model.md.
 *
 * Dimension legend
 *   V vocab, E embedding size (400), H hidden size (1152), NL layers (3),
 *   B batch, T time steps of one BPTT chunk.
 *   Layer l: input size I_l = (l == 0 ? E : H), output size H_l = (l == NL-1 ? E : H).
 * Activations are TIME-MAJOR: a (T,B,D) tensor stores element [t][b][d] at (t*B+b)*D+d.
 * Tokens given by the caller are BATCH-FIRST (B,T) int32, as fastai's batches.
 *
 * Typical LM step:
 *   nn_model_new(&m, &cfg, be); nn_model_init(m, seed);
 *   nn_acts_new(&a, m, B, T, NN_ACTS_DECODER);
 *   for each chunk: nn_masks_sample(m, a, seed, step);
 *                   nn_lm_forward(m, a, tokens, targets, &loss);
 *                   nn_zero_grad(m); nn_lm_backward(m, a); optimizer on nn_params/nn_grads.
 *   nn_reset(m) to zero the carried hidden state (new epoch / new text). */
#ifndef KUBEFIT_NN_H
#define KUBEFIT_NN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"

#define NN_MAX_LAYERS 8

typedef struct nn_config {
    int vocab;     /* V */
    int emb;       /* E (fastai emb_sz, 400) */
    int hidden;    /* H (fastai n_hid, 1152) */
    int layers;    /* NL (fastai n_layers, 3), 1..NN_MAX_LAYERS */
    int pad_token; /* padding_idx of the embedding (1): its row gets no gradient from lookups */
    float embed_p, input_p, hidden_p, weight_p, output_p; /* dropout probabilities */
    float ar_alpha, tar_beta; /* RNNRegularizer (LM: 2, 1); 0 turns one off */
} nn_config;

/* fastai's awd_lstm_lm_config with every *_p times drop_mult; alpha 2, beta 1. */
nn_config nn_config_lm(int vocab, float drop_mult);
/* fastai's awd_lstm_clas_config dropouts (embed 0.05, input 0.4, hidden 0.3, weight 0.5;
 * output_p unused) times drop_mult; alpha = beta = 0 here: the classifier's AR/TAR spans all
 * kept chunks of the SentenceEncoder output, so the head (trainer/head) applies it. */
nn_config nn_config_clas(int vocab, float drop_mult);

/* Typed views into the parameter block (and, same layout, the gradient block). */
typedef struct nn_lstm_weights {
    float *w_hh_raw; /* (4*H_l, H_l) raw recurrent weight (before WeightDropout) */
    float *w_ih;     /* (4*H_l, I_l) */
    float *b_ih;     /* (4*H_l) */
    float *b_hh;     /* (4*H_l) */
} nn_lstm_weights;

typedef struct nn_weights {
    float *emb;                             /* (V,E) encoder weight == tied decoder weight */
    nn_lstm_weights lstm[NN_MAX_LAYERS];
    float *dec_bias;                        /* (V) */
} nn_weights;

/* One parameter tensor in the blocks, for the optimizer and for safetensors. */
typedef struct nn_tensor {
    const char *name;       /* fastai state_dict name, e.g. "0.rnns.1.module.weight_ih_l0" */
    const char *aliases[3]; /* other state_dict names of the same storage, NULL-terminated */
    size_t offset;          /* in floats from the start of the params (and grads) block */
    size_t numel;
    int ndim;
    int64_t shape[2];
    int group;   /* fastai awd_lstm_lm_split group: rnn layer l -> l; emb + dec bias -> NL */
    bool no_wd;  /* a bias: fastai applies no weight decay (wd_bn_bias=False) */
} nn_tensor;

typedef struct nn_model nn_model;

/* Creates a model with zeroed parameters/gradients in backend memory. cfg is copied.
 * Caller frees with nn_model_free. Returns 0 or KF_EINVAL (bad config) / KF_ENOMEM. */
int nn_model_new(nn_model **out, const nn_config *cfg, nn_backend *be);
void nn_model_free(nn_model *m);
const nn_config *nn_model_config(const nn_model *m);
nn_backend *nn_model_backend(const nn_model *m);

/* Initialises as fastai/PyTorch do: emb U(-0.1,0.1), LSTM weights and biases U(-1/sqrt(H_l),
 * 1/sqrt(H_l)), decoder bias 0; zeroes the carried state. Deterministic in seed.
 * Returns 0 or KF_ENOMEM (host staging buffer). */
int nn_model_init(nn_model *m, uint64_t seed);

/* The blocks: nn_num_params() floats each, backend memory; views in nn_model_weights/grads. */
size_t nn_num_params(const nn_model *m);
float *nn_params(nn_model *m);
float *nn_grads(nn_model *m);
const nn_weights *nn_model_weights(const nn_model *m);
const nn_weights *nn_model_grads(const nn_model *m);
void nn_zero_grad(nn_model *m);
/* Unique tensors (the tied decoder weight appears once, as an alias of the encoder weight). */
int nn_tensor_count(const nn_model *m);
const nn_tensor *nn_tensors(const nn_model *m);

/* Zeroes the carried hidden state (h, c of every layer) - fastai's reset(). */
void nn_reset(nn_model *m);
/* Allocates the carried state for up to b rows now (a forward with more rows than ever before
 * allocates it otherwise). Returns 0 or KF_ENOMEM. */
int nn_state_reserve(nn_model *m, int b);

/* Activations of one forward call (one BPTT chunk), kept for its backward. Several may live at
 * once (the classifier runs several chunks before one backward). */
typedef struct nn_layer_acts {
    float *x;      /* (T,B,I_l) layer input after dropout: l=0 input-dropped embedding,
                      l>0 the previous layer's output after its hidden dropout */
    float *gates;  /* (T,B,4*H_l) activated gates i,f,g,o */
    float *h;      /* (T+1,B,H_l) h[0] = state carried in, h[1..T] = raw outputs */
    float *c;      /* (T+1,B,H_l) c[0] = state carried in, c[t+1] = cell state after step t */
    float *w_hh;   /* (4*H_l,H_l) weight-dropped recurrent weight this forward used */
    float *mask_w; /* (4*H_l,H_l) WeightDropout mask (values 0 or 1/(1-weight_p)) */
    float *mask_h; /* (B,H_l) hidden dropout mask on this layer's output; NULL for the last */
} nn_layer_acts;

typedef struct nn_acts {
    int B, T;       /* capacity, fixed at nn_acts_new */
    int b, t;       /* batch and time of the last forward (b <= B, t <= T) */
    bool training;  /* false: no dropout at all (eval); false in a fresh nn_acts */
    bool decoder;   /* has the LM decoder part */
    int32_t *tokens;   /* (B,T) backend copy of the inputs, batch-first */
    int32_t *targets;  /* (T,B) time-major backend copy of the targets (decoder only) */
    float *mask_emb;   /* (V) embedding dropout (whole rows), 0 or 1/(1-embed_p) */
    float *mask_in;    /* (B,E) input dropout */
    float *mask_out;   /* (B,E) output dropout (decoder only) */
    float *emb;        /* (T,B,E) embedding after embedding dropout, before input dropout */
    nn_layer_acts layer[NN_MAX_LAYERS];
    float *dec_in;     /* (T,B,E) last layer output after output dropout (decoder only) */
    float *logits;     /* (T,B,V) forward: softmax probs; backward: dlogits (decoder only) */
    float *losses;     /* (T,B) per-token cross-entropy (decoder only) */
    /* backward scratch */
    float *d_out;      /* (T,B,E) gradient w.r.t. the last layer's raw output (see encoder_bwd) */
    float *d_a, *d_b;  /* (T,B,max(E,H)) ping-pong gradients between layers */
    float *d_gates;    /* (T,B,4*max H_l) */
    float *d_c;        /* (B,max H_l) */
    float *d_w;        /* (4*max H_l, max H_l) gradient w.r.t. the dropped w_hh */
    void *block;       /* the one allocation behind every pointer above */
    double *red;       /* (3) LM loss sums of the last queued forward (cross-entropy, AR,
                          TAR), backend memory (decoder only) */
} nn_acts;

enum { NN_ACTS_DECODER = 1 };

/* Allocates activations for up to B x T. Caller frees with nn_acts_free. training starts false. */
int nn_acts_new(nn_acts **out, nn_model *m, int B, int T, unsigned flags);
/* What nn_acts_new would allocate for a model of this configuration, in bytes; 0 when B, T or
 * the configuration is out of range. For sizing a run before allocating anything. */
size_t nn_acts_bytes(const nn_config *cfg, int B, int T, unsigned flags);
/* Floats of the parameter block nn_model_new allocates for cfg (the gradient block is as big);
 * 0 when cfg is invalid. */
size_t nn_config_num_params(const nn_config *cfg);
void nn_acts_free(nn_model *m, nn_acts *a);

/* Draws every dropout mask of one forward call from (seed, step) and sets a->training = true.
 * To use masks of your own instead, write them into a->mask_* / layer[l].mask_* / mask_w
 * (be->upload) and set a->training = true yourself. */
void nn_masks_sample(nn_model *m, nn_acts *a, uint64_t seed, uint64_t step);

/* Encoder (fastai AWD_LSTM.forward): tokens(B,T) host int32 in [0,V) ->
 * raw outputs a->layer[l].h + b*H_l (T,B,H_l) for every layer; the last layer's raw output is
 * what AWD_LSTM returns. Reads the carried state (batch changes as fastai: smaller b keeps the
 * first b rows, larger appends zero rows) and stores the final (h,c) as the new state (detached).
 * Returns 0, or KF_EINVAL for a token out of range or b,t over capacity. */
int nn_encoder_forward(nn_model *m, nn_acts *a, const int32_t *tokens, int b, int t);
/* Backward of the encoder given a->d_out (T,B,E) = dL/d(last layer raw output), which the
 * caller fills (backend memory; the LM fills it itself). Accumulates into nn_grads.
 * Gradients do not flow into the carried state (it is detached, as in fastai). Clobbers d_out. */
int nn_encoder_backward(nn_model *m, nn_acts *a);

/* Loss of one LM forward. total = ce + ar + tar is what backward differentiates; fastai
 * reports ce only (RNNRegularizer adds AR/TAR to loss_grad). */
typedef struct nn_lm_loss {
    double ce;    /* mean cross-entropy over b*t tokens */
    double ar;    /* alpha * mean(dec_in^2) (0 when not training) */
    double tar;   /* beta * mean((h[t+1]-h[t])^2) of the last layer raw output (0 when not
                     training or b == 1, as fastai's `len(h)>1` test) */
    double total;
} nn_lm_loss;

/* LM forward: encoder, output dropout, tied decoder + bias, softmax cross-entropy against
 * targets(B,T) host int32, AR/TAR. The same as nn_lm_set_batch + nn_lm_forward_queue +
 * nn_lm_loss_read. */
int nn_lm_forward(nn_model *m, nn_acts *a, const int32_t *tokens, const int32_t *targets, int b,
                  int t, nn_lm_loss *loss);

/* The LM forward in three parts, so that forward + backward can be recorded as one graph
 * (backend capture_begin/capture_end) and replayed:
 *   nn_lm_set_batch   checks and uploads tokens/targets(B,T) host int32 and sizes the carried
 *                     state (waits for the device; never inside a capture);
 *   nn_lm_forward_queue  queues the forward; the loss sums stay in backend memory (on a GPU
 *                     nothing waits: capturable);
 *   nn_lm_loss_read   reads the loss of the last queued forward (waits). */
int nn_lm_set_batch(nn_model *m, nn_acts *a, const int32_t *tokens, const int32_t *targets, int b,
                    int t);
int nn_lm_forward_queue(nn_model *m, nn_acts *a);
int nn_lm_loss_read(nn_model *m, nn_acts *a, nn_lm_loss *loss);
/* Backward of loss->total; accumulates into nn_grads (zero them first with nn_zero_grad). */
int nn_lm_backward(nn_model *m, nn_acts *a);

#endif
