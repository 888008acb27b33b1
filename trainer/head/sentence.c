/* sentence: fastai's SentenceEncoder (see sentence.h).
 * Dimension legend: B batch, S padded length, T kept length, E encoder output size. */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "loss.h"
#include "sentence.h"

typedef struct kept_chunk {
    nn_acts *acts; /* owned, reused batch to batch */
    int b, t;      /* rows and steps this batch */
    int toff;      /* time offset in the output */
} kept_chunk;

struct head_sentence {
    head_sentence_config cfg;
    nn_model *m;
    nn_backend *be;
    int max_batch, E;
    kept_chunk *kept;   /* kept chunks (capacity n_kept_cap) */
    int n_kept, n_kept_cap;
    nn_acts *skip_acts; /* for chunks whose output is dropped */
    int32_t *sub;       /* (B,bptt) host scratch: one chunk's tokens */
    float *out, *d_out; /* (T,B,E) backend memory, out_cap floats each */
    size_t out_cap;
    uint8_t *pad;       /* (B,T) host */
    size_t pad_cap;
    int B, T;
    bool training;
    bool fwd_ok; /* the last forward completed (backward needs it) */
    double reg;
};

head_sentence_config head_sentence_config_default(void)
{
    return (head_sentence_config){.bptt = 72, .max_len = 72 * 20, .pad_token = 1,
                                  .ar_alpha = 2.0f, .tar_beta = 1.0f};
}

int head_sentence_new(head_sentence **out, nn_model *m, const head_sentence_config *cfg,
                      int max_batch)
{
    head_sentence *s = NULL;
    int rc = 0;
    *out = NULL;
    if (cfg->bptt < 1 || max_batch < 1 || max_batch > (1 << 20))
        return err_set(KF_EINVAL, "sentence: bptt %d / max batch %d invalid", cfg->bptt,
                       max_batch);
    s = calloc(1, sizeof *s);
    if (!s)
        return err_set(KF_ENOMEM, "sentence: out of memory");
    s->cfg = *cfg;
    s->m = m;
    s->be = nn_model_backend(m);
    s->max_batch = max_batch;
    s->E = nn_model_config(m)->emb;
    s->sub = malloc((size_t)max_batch * cfg->bptt * sizeof(int32_t));
    if (!s->sub) {
        rc = err_set(KF_ENOMEM, "sentence: out of memory");
        goto done;
    }
    *out = s;
    s = NULL;
done:
    head_sentence_free(s);
    return rc;
}

void head_sentence_free(head_sentence *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n_kept_cap; i++)
        nn_acts_free(s->m, s->kept[i].acts);
    if (s->skip_acts)
        nn_acts_free(s->m, s->skip_acts);
    if (s->out)
        s->be->release(s->be, s->out);
    if (s->d_out)
        s->be->release(s->be, s->d_out);
    free(s->kept);
    free(s->sub);
    free(s->pad);
    free(s);
}

/* Activations for the n-th kept chunk (or the shared one for dropped chunks when n < 0). */
static int chunk_acts(head_sentence *s, int n, nn_acts **a)
{
    int rc = 0;
    if (n < 0) {
        if (!s->skip_acts)
            rc = nn_acts_new(&s->skip_acts, s->m, s->max_batch, s->cfg.bptt, 0);
        *a = s->skip_acts;
        return rc;
    }
    if (n >= s->n_kept_cap) {
        int cap = s->n_kept_cap ? 2 * s->n_kept_cap : 8;
        while (cap <= n)
            cap *= 2;
        kept_chunk *grown = realloc(s->kept, (size_t)cap * sizeof *grown);
        if (!grown)
            return err_set(KF_ENOMEM, "sentence: out of memory");
        memset(grown + s->n_kept_cap, 0, (size_t)(cap - s->n_kept_cap) * sizeof *grown);
        s->kept = grown;
        s->n_kept_cap = cap;
    }
    if (!s->kept[n].acts && (rc = nn_acts_new(&s->kept[n].acts, s->m, s->max_batch, s->cfg.bptt, 0)))
        return rc;
    *a = s->kept[n].acts;
    return 0;
}

/* Makes room for (T,B,E) outputs and a (B,T) mask; zeroes out and d_out. */
static int reserve_output(head_sentence *s, int B, int T)
{
    size_t n = (size_t)T * B * s->E;
    if (n > s->out_cap) {
        if (s->out)
            s->be->release(s->be, s->out);
        if (s->d_out)
            s->be->release(s->be, s->d_out);
        s->out = s->be->alloc(s->be, n * sizeof(float));
        s->d_out = s->be->alloc(s->be, n * sizeof(float));
        s->out_cap = s->out && s->d_out ? n : 0;
        if (!s->out_cap)
            return err_set(KF_ENOMEM, "sentence: cannot allocate %d x %d x %d outputs", T, B, s->E);
    }
    if ((size_t)B * T > s->pad_cap) {
        uint8_t *p = realloc(s->pad, (size_t)B * T);
        if (!p)
            return err_set(KF_ENOMEM, "sentence: out of memory");
        s->pad = p;
        s->pad_cap = (size_t)B * T;
    }
    s->be->fill(s->be, s->out, 0.0f, n);
    s->be->fill(s->be, s->d_out, 0.0f, n);
    return 0;
}

/* First kept chunk start for length S: the smallest multiple of bptt with S - i <= max_len. */
static int kept_from(const head_sentence *s, int S)
{
    const int bptt = s->cfg.bptt;
    return s->cfg.max_len > 0 && S > s->cfg.max_len
               ? (S - s->cfg.max_len + bptt - 1) / bptt * bptt
               : 0;
}

int head_sentence_kept_len(const head_sentence *s, int S)
{
    return S - kept_from(s, S);
}

int head_sentence_reserve(head_sentence *s, int B, int S)
{
    if (B < 1 || B > s->max_batch || S < 1)
        return err_set(KF_EINVAL, "sentence: batch %d x length %d (capacity %d rows)", B, S,
                       s->max_batch);
    const int bptt = s->cfg.bptt, first = kept_from(s, S), T = S - first;
    nn_acts *a;
    int rc = reserve_output(s, B, T);
    if (!rc)
        rc = nn_state_reserve(s->m, B);
    for (int n = 0; !rc && n < (T + bptt - 1) / bptt; n++)
        rc = chunk_acts(s, n, &a);
    if (!rc && first > 0)
        rc = chunk_acts(s, -1, &a);
    return rc;
}

int head_sentence_forward(head_sentence *s, const int32_t *tokens, int B, int S,
                          const head_forward_opts *o)
{
    const int bptt = s->cfg.bptt, pad = s->cfg.pad_token, E = s->E;
    const int NL = nn_model_config(s->m)->layers;
    nn_backend *be = s->be;
    int rc = 0;
    s->n_kept = 0;
    s->reg = 0;
    s->fwd_ok = false;
    if (B < 1 || B > s->max_batch || S < 1)
        return err_set(KF_EINVAL, "sentence: batch %d x length %d (capacity %d rows)", B, S,
                       s->max_batch);
    if ((S - 1) / bptt >= HEAD_CHUNK_STREAMS)
        return err_set(KF_EINVAL, "sentence: length %d is too many BPTT chunks", S);
    const int first = kept_from(s, S), T = S - first;
    if ((rc = reserve_output(s, B, T)))
        return rc;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            s->pad[(size_t)b * T + t] = tokens[(size_t)b * S + first + t] == pad;

    nn_reset(s->m);
    for (int i = 0, chunk = 0; i < S; i += bptt, chunk++) {
        const int t = S - i < bptt ? S - i : bptt;
        const bool keep = i >= first;
        int rb = 0;
        for (int b = 0; b < B; b++)
            rb += tokens[(size_t)b * S + i] != pad;
        if (rb == 0)
            return err_set(KF_EINVAL,
                           "sentence: every row is padding at position %d (batch not pad-first"
                           " with the longest row first?)", i);
        nn_acts *a = NULL;
        /* Only a training forward keeps each chunk's activations (for backward); eval runs every
         * chunk in the shared scratch (inference memory: one chunk's activations, not max_len's). */
        if ((rc = chunk_acts(s, keep && o && o->training ? s->n_kept : -1, &a)))
            return rc;
        for (int b = 0; b < rb; b++)
            memcpy(s->sub + (size_t)b * t, tokens + (size_t)b * S + i, (size_t)t * sizeof(int32_t));
        a->training = false;
        if (o && o->training) {
            if (o->set_masks)
                o->set_masks(o->ctx, s->m, a, chunk, rb);
            else
                nn_masks_sample(s->m, a, o->seed, o->step * HEAD_CHUNK_STREAMS + (uint64_t)chunk);
        }
        if ((rc = nn_encoder_forward(s->m, a, s->sub, rb, t)))
            return err_wrap(rc, "sentence: chunk at position %d", i);
        if (!keep)
            continue;
        const int toff = i - first;
        if (o && o->training) { /* what backward needs of the chunk (its activations are kept[n]) */
            kept_chunk *kc = &s->kept[s->n_kept++];
            kc->b = rb, kc->t = t, kc->toff = toff;
        }
        const float *h = a->layer[NL - 1].h + (size_t)rb * E; /* (t,rb,E) raw output */
        for (int tt = 0; tt < t; tt++)
            be->copy(be, s->out + ((size_t)(toff + tt) * B) * E, h + (size_t)tt * rb * E,
                     (size_t)rb * E * sizeof(float));
    }
    s->B = B;
    s->T = T;
    s->training = o && o->training;
    if (s->training)
        s->reg = head_artar_forward(be, s->out, T, B, E, s->cfg.ar_alpha, s->cfg.tar_beta);
    s->fwd_ok = true;
    return 0;
}

const float *head_sentence_output(const head_sentence *s, int *T)
{
    if (T)
        *T = s->T;
    return s->out;
}

const uint8_t *head_sentence_pad(const head_sentence *s) { return s->pad; }
float *head_sentence_dout(head_sentence *s) { return s->d_out; }
double head_sentence_reg(const head_sentence *s) { return s->reg; }

int head_sentence_backward(head_sentence *s)
{
    nn_backend *be = s->be;
    const int B = s->B, E = s->E;
    int rc = 0;
    if (!s->fwd_ok || !s->training)
        return err_set(KF_EINVAL, "sentence: backward without a completed training forward");
    if (s->training)
        head_artar_backward(be, s->d_out, s->out, s->T, B, E, s->cfg.ar_alpha, s->cfg.tar_beta,
                            1.0f);
    for (int n = 0; n < s->n_kept; n++) {
        kept_chunk *kc = &s->kept[n];
        for (int tt = 0; tt < kc->t; tt++)
            be->copy(be, kc->acts->d_out + (size_t)tt * kc->b * E,
                     s->d_out + ((size_t)(kc->toff + tt) * B) * E, (size_t)kc->b * E * sizeof(float));
        if ((rc = nn_encoder_backward(s->m, kc->acts)))
            return err_wrap(rc, "sentence: backward of kept chunk %d", n);
    }
    return 0;
}
