/* lstm: one WeightDropout-wrapped single-layer LSTM (fastai _one_rnn) over a chunk, forward and
 * backward, time-major, through the backend table.
 * Dimension legend: b batch rows, t time steps of the chunk, I input size, H output size of the
 * layer, N = t*b rows; gates in PyTorch order i,f,g,o. */
#include "model_internal.h"

/* Forward of layer l: reads a->layer[l].x (t,b,I) and h[0], c[0] (b,H); writes gates (t,b,4H),
 * h[1..t], c[1..t] (t,b,H) and the dropped weight w_hh (4H,H). */
void nn_lstm_forward(nn_model *m, nn_acts *a, int l)
{
    nn_backend *be = m->be;
    const nn_lstm_weights *w = &m->w.lstm[l];
    nn_layer_acts *la = &a->layer[l];
    int b = a->b, t = a->t, I = nn_in_size(&m->cfg, l), H = nn_out_size(&m->cfg, l), N = t * b;
    size_t bH = (size_t)b * H, b4H = (size_t)b * 4 * H;

    /* WeightDropout: one mask per forward call on the raw recurrent weight. */
    if (a->training)
        be->mul(be, la->w_hh, w->w_hh_raw, la->mask_w, (size_t)4 * H * H);
    else
        be->copy(be, la->w_hh, w->w_hh_raw, (size_t)4 * H * H * sizeof(float));

    /* Input projection of every step at once: gates(N,4H) = x(N,I) w_ih^T + b_ih + b_hh. */
    be->sgemm(be, false, true, N, 4 * H, I, 1.0f, la->x, I, w->w_ih, I, 0.0f, la->gates, 4 * H);
    be->add_bias(be, la->gates, w->b_ih, w->b_hh, N, 4 * H);

    float *packed = m->w_hh_packed; /* W_hh^T, packed once instead of in every product */
    if (packed)
        be->pack_b(be, packed, la->w_hh, H, true, H, 4 * H);
    for (int s = 0; s < t; s++) {
        float *g = la->gates + (size_t)s * b4H;
        /* gates_s(b,4H) += h_{s-1}(b,H) w_hh^T */
        if (packed)
            be->sgemm_packed(be, b, 4 * H, H, la->h + (size_t)s * bH, H, packed, 1.0f, g, 4 * H);
        else
            be->sgemm(be, false, true, b, 4 * H, H, 1.0f, la->h + (size_t)s * bH, H, la->w_hh,
                      H, 1.0f, g, 4 * H);
        be->lstm_cell_fwd(be, g, la->c + (size_t)(s + 1) * bH, la->h + (size_t)(s + 1) * bH,
                          la->c + (size_t)s * bH, b, H);
    }
}

/* Backward of layer l. dy (t,b,H) = dL/dh[1..t] from above, CLOBBERED: step s+1's recurrent
 * gradient is accumulated into dy_s by the product itself (beta 1), so dy_s becomes the total
 * dL/dh_s the cell backward reads. Writes dx (t,b,I) = dL/dx; accumulates into the gradients of
 * w_ih, b_ih, b_hh and (through the dropout mask) w_hh_raw. The carried state is detached: no
 * gradient flows into h[0], c[0]. */
void nn_lstm_backward(nn_model *m, nn_acts *a, int l, float *dy, float *dx)
{
    nn_backend *be = m->be;
    const nn_lstm_weights *w = &m->w.lstm[l];
    const nn_lstm_weights *gw = &m->g.lstm[l];
    nn_layer_acts *la = &a->layer[l];
    int b = a->b, t = a->t, I = nn_in_size(&m->cfg, l), H = nn_out_size(&m->cfg, l), N = t * b;
    size_t bH = (size_t)b * H, b4H = (size_t)b * 4 * H, HH4 = (size_t)4 * H * H;
    float *dc = a->d_c; /* (b,H) dL/dc_s */

    float *packed = m->w_hh_packed; /* W_hh packed once for the dh products */
    if (packed)
        be->pack_b(be, packed, la->w_hh, H, false, 4 * H, H);
    be->fill(be, dc, 0.0f, bH);
    for (int s = t - 1; s >= 0; s--) {
        float *dg = a->d_gates + (size_t)s * b4H;
        be->lstm_cell_bwd(be, dg, dy + (size_t)s * bH, dc, la->gates + (size_t)s * b4H,
                          la->c + (size_t)(s + 1) * bH, la->c + (size_t)s * bH, b, H);
        float *dh_prev = dy + (size_t)(s - 1) * bH; /* dy_{s-1}(b,H) += dg(b,4H) w_hh(4H,H) */
        if (s > 0 && packed)
            be->sgemm_packed(be, b, H, 4 * H, dg, 4 * H, packed, 1.0f, dh_prev, H);
        else if (s > 0)
            be->sgemm(be, false, false, b, H, 4 * H, 1.0f, dg, 4 * H, la->w_hh, H, 1.0f, dh_prev, H);
    }
    /* dW_hh(4H,H) = dgates^T(4H,N) h[0..t-1](N,H); raw gradient through the mask. */
    if (a->training) {
        be->sgemm(be, true, false, 4 * H, H, N, 1.0f, a->d_gates, 4 * H, la->h, H, 0.0f, a->d_w, H);
        be->mul(be, a->d_w, a->d_w, la->mask_w, HH4);
        be->axpy(be, gw->w_hh_raw, 1.0f, a->d_w, HH4);
    } else {
        be->sgemm(be, true, false, 4 * H, H, N, 1.0f, a->d_gates, 4 * H, la->h, H, 1.0f,
                  gw->w_hh_raw, H);
    }
    /* dW_ih(4H,I) += dgates^T(4H,N) x(N,I); both biases get the column sums, summed once
     * into the free d_w scratch. */
    be->sgemm(be, true, false, 4 * H, I, N, 1.0f, a->d_gates, 4 * H, la->x, I, 1.0f, gw->w_ih, I);
    be->fill(be, a->d_w, 0.0f, (size_t)4 * H);
    be->bias_grad(be, a->d_w, a->d_gates, N, 4 * H);
    be->axpy(be, gw->b_ih, 1.0f, a->d_w, (size_t)4 * H);
    be->axpy(be, gw->b_hh, 1.0f, a->d_w, (size_t)4 * H);
    /* dx(N,I) = dgates(N,4H) w_ih(4H,I) */
    be->sgemm(be, false, false, N, I, 4 * H, 1.0f, a->d_gates, 4 * H, w->w_ih, I, 0.0f, dx, I);
}
