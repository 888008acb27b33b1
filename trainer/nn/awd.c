/* awd: fastai's AWD_LSTM encoder (embedding dropout, input/hidden RNN dropout, weight-dropped
 * LSTM layers, carried hidden state) and the LM on top (output dropout, tied decoder + bias,
 * cross-entropy, AR/TAR), forward and backward, through the backend table.
 * Dimension legend: V vocab, E emb, H_l output size of layer l, NL layers, b batch, t time,
 * N = t*b rows of a time-major (t,b,.) tensor. */
#include <stdlib.h>

#include "err.h"
#include "model_internal.h"

/* Mask streams of one step: 0 emb, 1 input, 2 output, 3.. hidden, 3+NN_MAX_LAYERS.. weight. */
#define STREAMS_PER_STEP 64

void nn_masks_sample(nn_model *m, nn_acts *a, uint64_t seed, uint64_t step)
{
    nn_backend *be = m->be;
    const nn_config *c = &m->cfg;
    uint64_t s0 = step * STREAMS_PER_STEP;
    size_t B = (size_t)a->B, E = (size_t)c->emb;
    be->dropout_mask(be, a->mask_emb, (size_t)c->vocab, c->embed_p, seed, s0 + 0);
    be->dropout_mask(be, a->mask_in, B * E, c->input_p, seed, s0 + 1);
    if (a->decoder)
        be->dropout_mask(be, a->mask_out, B * E, c->output_p, seed, s0 + 2);
    for (int l = 0; l < c->layers; l++) {
        size_t H = (size_t)nn_out_size(c, l);
        if (a->layer[l].mask_h)
            be->dropout_mask(be, a->layer[l].mask_h, B * H, c->hidden_p, seed, s0 + 3 + l);
        be->dropout_mask(be, a->layer[l].mask_w, 4 * H * H, c->weight_p, seed,
                         s0 + 3 + NN_MAX_LAYERS + l);
    }
    a->training = true;
}

/* Copies (B,T) host ids into backend memory after checking them; time_major transposes. */
static int upload_ids(nn_model *m, int32_t *dst, const int32_t *ids, int b, int t, bool time_major,
                      const char *what)
{
    int rc = 0;
    int32_t *tmp = NULL;
    for (size_t i = 0; i < (size_t)b * t; i++)
        if (ids[i] < 0 || ids[i] >= m->cfg.vocab)
            return err_set(KF_EINVAL, "nn: %s[%zu][%zu] = %d is outside the vocab (size %d)",
                           what, i / (size_t)t, i % (size_t)t, ids[i], m->cfg.vocab);
    const int32_t *src = ids;
    if (time_major) {
        if (!(tmp = malloc((size_t)b * t * sizeof *tmp))) {
            rc = err_set(KF_ENOMEM, "nn: out of memory");
            goto done;
        }
        for (int bb = 0; bb < b; bb++)
            for (int s = 0; s < t; s++)
                tmp[(size_t)s * b + bb] = ids[(size_t)bb * t + s];
        src = tmp;
    }
    m->be->upload(m->be, dst, src, (size_t)b * t * sizeof *dst);
done:
    free(tmp);
    return rc;
}

/* Checks and uploads the tokens, sizes the carried state, sets a->b, a->t (waits). */
static int encoder_set_batch(nn_model *m, nn_acts *a, const int32_t *tokens, int b, int t)
{
    int rc;
    if (b < 1 || t < 1 || b > a->B || t > a->T)
        return err_set(KF_EINVAL, "nn: batch %d x time %d exceeds the activations (%d x %d)", b, t,
                       a->B, a->T);
    if ((rc = upload_ids(m, a->tokens, tokens, b, t, false, "tokens")))
        return rc;
    if ((rc = nn_state_resize(m, b)))
        return rc;
    a->b = b, a->t = t;
    return 0;
}

/* Queues the encoder over a->tokens (a->b x a->t); never waits. */
static void encoder_queue(nn_model *m, nn_acts *a)
{
    nn_backend *be = m->be;
    const nn_config *c = &m->cfg;
    int b = a->b, t = a->t, E = c->emb, NL = c->layers;
    size_t N = (size_t)b * t;

    /* Embedding (whole-row dropout), then input dropout shared over time. */
    be->embedding_fwd(be, a->emb, a->tokens, m->w.emb, a->training ? a->mask_emb : NULL, b, t, E);
    if (a->training)
        be->mul_bcast(be, a->layer[0].x, a->emb, a->mask_in, t, b, E);
    else
        be->copy(be, a->layer[0].x, a->emb, N * E * sizeof(float));

    for (int l = 0; l < NL; l++) {
        nn_layer_acts *la = &a->layer[l];
        size_t H = (size_t)nn_out_size(c, l);
        be->copy(be, la->h, m->state_h[l], (size_t)b * H * sizeof(float));
        be->copy(be, la->c, m->state_c[l], (size_t)b * H * sizeof(float));
        nn_lstm_forward(m, a, l);
        /* New carried state, detached. */
        be->copy(be, m->state_h[l], la->h + (size_t)t * b * H, (size_t)b * H * sizeof(float));
        be->copy(be, m->state_c[l], la->c + (size_t)t * b * H, (size_t)b * H * sizeof(float));
        if (l < NL - 1) {
            const float *raw = la->h + (size_t)b * H;
            if (a->training)
                be->mul_bcast(be, a->layer[l + 1].x, raw, la->mask_h, t, b, (int)H);
            else
                be->copy(be, a->layer[l + 1].x, raw, N * H * sizeof(float));
        }
    }
}

int nn_encoder_forward(nn_model *m, nn_acts *a, const int32_t *tokens, int b, int t)
{
    int rc = encoder_set_batch(m, a, tokens, b, t);
    if (rc == 0)
        encoder_queue(m, a);
    return rc;
}

int nn_encoder_backward(nn_model *m, nn_acts *a)
{
    nn_backend *be = m->be;
    const nn_config *c = &m->cfg;
    int b = a->b, t = a->t, E = c->emb, NL = c->layers;
    float *dy = a->d_out, *dx = a->d_a;
    if (b < 1)
        return err_set(KF_EINVAL, "nn: encoder backward before a forward");
    for (int l = NL - 1; l >= 0; l--) {
        nn_lstm_backward(m, a, l, dy, dx);
        if (l > 0 && a->training) /* through the hidden dropout of layer l-1's output */
            be->mul_bcast(be, dx, dx, a->layer[l - 1].mask_h, t, b, nn_out_size(c, l - 1));
        dy = dx;
        dx = dy == a->d_a ? a->d_b : a->d_a;
    }
    /* dy = dL/d(input-dropped embedding); through the input dropout, then scatter-add. */
    if (a->training)
        be->mul_bcast(be, dy, dy, a->mask_in, t, b, E);
    be->embedding_bwd(be, m->g.emb, dy, a->tokens, a->training ? a->mask_emb : NULL,
                      c->pad_token, b, t, E);
    return 0;
}

int nn_lm_set_batch(nn_model *m, nn_acts *a, const int32_t *tokens, const int32_t *targets, int b,
                    int t)
{
    int rc;
    if (!a->decoder)
        return err_set(KF_EINVAL, "nn: LM forward needs activations made with NN_ACTS_DECODER");
    if ((rc = encoder_set_batch(m, a, tokens, b, t)))
        return rc;
    return upload_ids(m, a->targets, targets, b, t, true, "targets");
}

/* Which loss sums a forward of a takes: AR and TAR only in training, TAR only when b, t > 1. */
static bool takes_ar(const nn_config *c, const nn_acts *a)
{
    return a->training && c->ar_alpha > 0;
}

static bool takes_tar(const nn_config *c, const nn_acts *a)
{
    return a->training && c->tar_beta > 0 && a->b > 1 && a->t > 1;
}

int nn_lm_forward_queue(nn_model *m, nn_acts *a)
{
    nn_backend *be = m->be;
    const nn_config *c = &m->cfg;
    int b = a->b, t = a->t, E = c->emb, V = c->vocab;
    if (!a->decoder || b < 1)
        return err_set(KF_EINVAL, "nn: LM forward without a batch (nn_lm_set_batch)");
    encoder_queue(m, a);
    int N = b * t;
    const float *raw = a->layer[c->layers - 1].h + (size_t)b * E; /* (t,b,E) */

    if (a->training)
        be->mul_bcast(be, a->dec_in, raw, a->mask_out, t, b, E);
    else
        be->copy(be, a->dec_in, raw, (size_t)N * E * sizeof(float));
    /* logits(N,V) = dec_in(N,E) emb^T + bias: the decoder weight is the encoder's. */
    be->sgemm(be, false, true, N, V, E, 1.0f, a->dec_in, E, m->w.emb, E, 0.0f, a->logits, V);
    be->add_bias(be, a->logits, m->w.dec_bias, NULL, N, V);
    be->softmax_xent_fwd(be, a->losses, a->logits, a->targets, N, V);
    /* the loss sums stay in backend memory until nn_lm_loss_read */
    be->reduce_to(be, a->red + 0, NN_RED_SUM, a->losses, (size_t)N, 0);
    if (takes_ar(c, a))
        be->reduce_to(be, a->red + 1, NN_RED_SUMSQ, a->dec_in, (size_t)N * E, 0);
    if (takes_tar(c, a))
        be->reduce_to(be, a->red + 2, NN_RED_TDIFF, raw, (size_t)(t - 1) * b * E, b * E);
    return 0;
}

int nn_lm_loss_read(nn_model *m, nn_acts *a, nn_lm_loss *loss)
{
    const nn_config *c = &m->cfg;
    int b = a->b, t = a->t, E = c->emb, N = b * t;
    double sums[3] = {0, 0, 0};
    *loss = (nn_lm_loss){0};
    if (!a->decoder || b < 1)
        return err_set(KF_EINVAL, "nn: LM loss without an LM forward");
    m->be->download(m->be, sums, a->red, sizeof sums);
    loss->ce = sums[0] / N;
    if (takes_ar(c, a))
        loss->ar = c->ar_alpha * sums[1] / ((double)N * E);
    if (takes_tar(c, a))
        loss->tar = c->tar_beta * sums[2] / ((double)b * (t - 1) * E);
    loss->total = loss->ce + loss->ar + loss->tar;
    return 0;
}

int nn_lm_forward(nn_model *m, nn_acts *a, const int32_t *tokens, const int32_t *targets, int b,
                  int t, nn_lm_loss *loss)
{
    int rc;
    *loss = (nn_lm_loss){0};
    if ((rc = nn_lm_set_batch(m, a, tokens, targets, b, t)) ||
        (rc = nn_lm_forward_queue(m, a)))
        return rc;
    return nn_lm_loss_read(m, a, loss);
}

int nn_lm_backward(nn_model *m, nn_acts *a)
{
    nn_backend *be = m->be;
    const nn_config *c = &m->cfg;
    int b = a->b, t = a->t, E = c->emb, V = c->vocab, N = b * t;
    if (!a->decoder || b < 1)
        return err_set(KF_EINVAL, "nn: LM backward without an LM forward");
    const float *raw = a->layer[c->layers - 1].h + (size_t)b * E;

    be->softmax_xent_bwd(be, a->logits, a->logits, a->targets, 1.0f / N, N, V);
    be->bias_grad(be, m->g.dec_bias, a->logits, N, V);
    /* Tied weight, decoder use: d_emb(V,E) += dlogits^T(V,N) dec_in(N,E). */
    be->sgemm(be, true, false, V, E, N, 1.0f, a->logits, V, a->dec_in, E, 1.0f, m->g.emb, E);
    /* d_dec_in(N,E) = dlogits(N,V) emb(V,E), kept in d_a. */
    be->sgemm(be, false, false, N, E, V, 1.0f, a->logits, V, m->w.emb, E, 0.0f, a->d_a, E);
    if (a->training && c->ar_alpha > 0)
        be->axpy(be, a->d_a, (float)(2.0 * c->ar_alpha / ((double)N * E)), a->dec_in,
                 (size_t)N * E);
    if (a->training)
        be->mul_bcast(be, a->d_out, a->d_a, a->mask_out, t, b, E);
    else
        be->copy(be, a->d_out, a->d_a, (size_t)N * E * sizeof(float));
    if (a->training && c->tar_beta > 0 && b > 1 && t > 1)
        be->sumsq_tdiff_grad(be, a->d_out, raw, (float)(c->tar_beta / ((double)b * (t - 1) * E)),
                             t, b * E);
    return nn_encoder_backward(m, a);
}
