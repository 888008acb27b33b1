/* loss: BCE-with-logits, softmax cross-entropy, predictions and AR/TAR (see loss.h).
 * Dimension legend: B batch, L labels, n = B*L, T time, E encoder output size. */
#include <math.h>

#include "loss.h"

double head_bce_forward(const head_kernels *k, nn_backend *be, const float *logits,
                        const float *targets, size_t n)
{
    return n ? k->bce_sum(be, logits, targets, n) / (double)n : 0.0;
}

void head_bce_backward(const head_kernels *k, nn_backend *be, float *d_logits,
                       const float *logits, const float *targets, size_t n, float dloss)
{
    be->fill(be, d_logits, 0.0f, n);
    if (n)
        k->bce_bwd(be, d_logits, logits, targets, (float)(dloss / (double)n), n);
}

double head_ce_forward(nn_backend *be, float *probs, float *losses, const float *logits,
                       const int32_t *targets, int B, int L)
{
    if (B <= 0)
        return 0.0;
    be->copy(be, probs, logits, (size_t)B * L * sizeof(float));
    be->softmax_xent_fwd(be, losses, probs, targets, B, L);
    return be->sum(be, losses, (size_t)B) / B;
}

void head_ce_backward(nn_backend *be, float *d_logits, const float *probs,
                      const int32_t *targets, int B, int L, float dloss)
{
    if (B > 0)
        be->softmax_xent_bwd(be, d_logits, probs, targets, (float)(dloss / (double)B), B, L);
}

void head_predict_multi(uint8_t *pred, float *probs, const float *logits, size_t n,
                        float thresh)
{
    for (size_t i = 0; i < n; i++) {
        double z = logits[i];
        double p = z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z));
        if (probs)
            probs[i] = (float)p;
        if (pred)
            pred[i] = p > thresh;
    }
}

void head_predict_single(int32_t *pred, float *probs, const float *logits, int B, int L)
{
    for (int b = 0; b < B; b++) {
        const float *z = logits + (size_t)b * L;
        int best = 0;
        for (int l = 1; l < L; l++)
            if (z[l] > z[best])
                best = l;
        if (pred)
            pred[b] = best;
        if (probs) {
            double s = 0;
            for (int l = 0; l < L; l++)
                s += exp((double)z[l] - z[best]);
            for (int l = 0; l < L; l++)
                probs[(size_t)b * L + l] = (float)(exp((double)z[l] - z[best]) / s);
        }
    }
}

static int tar_applies(int T, int B) { return B > 1 && T > 1; }

double head_artar_forward(nn_backend *be, const float *out, int T, int B, int E, float alpha,
                          float beta)
{
    size_t n = (size_t)T * B * E;
    double loss = 0;
    if (alpha != 0 && n)
        loss += alpha * be->sumsq(be, out, n) / (double)n;
    if (beta != 0 && tar_applies(T, B))
        loss += beta * be->sumsq_tdiff(be, out, T, B * E) / ((double)(T - 1) * B * E);
    return loss;
}

void head_artar_backward(nn_backend *be, float *d_out, const float *out, int T, int B, int E,
                         float alpha, float beta, float dloss)
{
    size_t n = (size_t)T * B * E;
    if (alpha != 0 && n)
        be->axpy(be, d_out, (float)(2.0 * alpha * dloss / (double)n), out, n);
    if (beta != 0 && tar_applies(T, B))
        be->sumsq_tdiff_grad(be, d_out, out, (float)(beta * dloss / ((double)(T - 1) * B * E)),
                             T, B * E);
}
