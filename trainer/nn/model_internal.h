/* model_internal: the nn_model struct, shared by model.c, lstm.c and awd.c. Not public. */
#ifndef KUBEFIT_NN_MODEL_INTERNAL_H
#define KUBEFIT_NN_MODEL_INTERNAL_H

#include "nn.h"

/* 3 tensors (emb, dec bias) + 4 per layer. */
#define NN_MAX_TENSORS (2 + 4 * NN_MAX_LAYERS)

struct nn_model {
    nn_config cfg;
    nn_backend *be;       /* borrowed */
    size_t num_params;    /* floats in each block, padding included */
    float *params;        /* the parameter block (backend memory) */
    float *grads;         /* the gradient block, same layout */
    nn_weights w, g;      /* typed views into params / grads */
    int num_tensors;
    nn_tensor tensors[NN_MAX_TENSORS];
    char *names;          /* storage of the tensor names */
    /* Carried hidden state (fastai self.hidden), backend memory. */
    int state_b;          /* rows in use */
    int state_cap;        /* rows allocated */
    float *state_h[NN_MAX_LAYERS]; /* (state_cap, H_l) */
    float *state_c[NN_MAX_LAYERS]; /* (state_cap, H_l) */
    /* Scratch: the weight-dropped W_hh of the layer being run, packed for be->sgemm_packed
     * (forward: W_hh^T, backward: W_hh); NULL when the backend has no pack_b. */
    float *w_hh_packed;
};

static inline int nn_in_size(const nn_config *c, int l) { return l == 0 ? c->emb : c->hidden; }
static inline int nn_out_size(const nn_config *c, int l)
{
    return l == c->layers - 1 ? c->emb : c->hidden;
}

/* Makes the carried state hold b rows as fastai's _change_hidden does. */
int nn_state_resize(nn_model *m, int b);

/* lstm.c: one layer over a chunk of t steps and b rows, time-major. */
void nn_lstm_forward(nn_model *m, nn_acts *a, int l);
/* dy (t,b,H_l): dL/d raw output (clobbered: the recurrent gradient accumulates into it); dx
 * (t,b,I_l): out, dL/d layer input. Accumulates weight grads. */
void nn_lstm_backward(nn_model *m, nn_acts *a, int l, float *dy, float *dx);

#endif
