/* model: configuration, the parameter/gradient blocks and their fastai names, initialisation,
 * the carried hidden state, and the activation block.
 * Dimension legend: V vocab, E emb, H hidden, NL layers, B batch, T time; layer l maps
 * I_l = (l==0 ? E : H) to H_l = (l==NL-1 ? E : H). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "model_internal.h"
#include "rng.h"

nn_config nn_config_lm(int vocab, float drop_mult)
{
    return (nn_config){
        .vocab = vocab, .emb = 400, .hidden = 1152, .layers = 3, .pad_token = 1,
        .output_p = 0.1f * drop_mult, .hidden_p = 0.15f * drop_mult,
        .input_p = 0.25f * drop_mult, .embed_p = 0.02f * drop_mult,
        .weight_p = 0.2f * drop_mult, .ar_alpha = 2.0f, .tar_beta = 1.0f,
    };
}

nn_config nn_config_clas(int vocab, float drop_mult)
{
    return (nn_config){
        .vocab = vocab, .emb = 400, .hidden = 1152, .layers = 3, .pad_token = 1,
        .output_p = 0.4f * drop_mult, .hidden_p = 0.3f * drop_mult,
        .input_p = 0.4f * drop_mult, .embed_p = 0.05f * drop_mult,
        .weight_p = 0.5f * drop_mult,
    };
}

static int check_p(const char *what, float p)
{
    if (!(p >= 0.0f && p < 1.0f))
        return err_set(KF_EINVAL, "nn: %s must be in [0,1), got %g", what, (double)p);
    return 0;
}

static int check_config(const nn_config *c)
{
    int rc;
    if (c->vocab < 1 || c->emb < 1 || c->hidden < 1)
        return err_set(KF_EINVAL, "nn: vocab, emb and hidden must be positive (got %d, %d, %d)",
                       c->vocab, c->emb, c->hidden);
    if (c->layers < 1 || c->layers > NN_MAX_LAYERS)
        return err_set(KF_EINVAL, "nn: layers must be in 1..%d, got %d", NN_MAX_LAYERS, c->layers);
    if (c->pad_token < -1 || c->pad_token >= c->vocab)
        return err_set(KF_EINVAL, "nn: pad_token %d outside the vocab (size %d)", c->pad_token,
                       c->vocab);
    /* Sizes stay far below int range for every sgemm dimension. */
    if ((long long)c->vocab * c->emb > (1ll << 31) - 1 || c->hidden > 1 << 20 || c->emb > 1 << 20)
        return err_set(KF_EINVAL, "nn: model too large (vocab %d x emb %d)", c->vocab, c->emb);
    if ((rc = check_p("embed_p", c->embed_p)) || (rc = check_p("input_p", c->input_p)) ||
        (rc = check_p("hidden_p", c->hidden_p)) || (rc = check_p("weight_p", c->weight_p)) ||
        (rc = check_p("output_p", c->output_p)))
        return rc;
    if (!(c->ar_alpha >= 0) || !(c->tar_beta >= 0))
        return err_set(KF_EINVAL, "nn: ar_alpha and tar_beta must be >= 0");
    return 0;
}

static size_t align16(size_t n) { return (n + 15) / 16 * 16; }

/* Appends a tensor description; returns its float offset. */
static size_t add_tensor(nn_model *m, size_t *off, char **name_at, const char *name,
                         const char *const *aliases, int ndim, int64_t d0, int64_t d1, int group,
                         bool no_wd)
{
    nn_tensor *t = &m->tensors[m->num_tensors++];
    size_t len = strlen(name) + 1;
    memcpy(*name_at, name, len);
    t->name = *name_at;
    *name_at += len;
    for (int i = 0; aliases && aliases[i]; i++)
        t->aliases[i] = aliases[i];
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = ndim > 1 ? d1 : 0;
    t->numel = (size_t)d0 * (size_t)(ndim > 1 ? d1 : 1);
    t->group = group;
    t->no_wd = no_wd;
    t->offset = *off;
    *off = align16(*off + t->numel);
    return t->offset;
}

int nn_model_new(nn_model **out, const nn_config *cfg, nn_backend *be)
{
    static const char *const emb_aliases[] = {"0.encoder_dp.emb.weight", "1.decoder.weight", NULL};
    int rc = 0;
    nn_model *m = NULL;
    *out = NULL;
    if ((rc = check_config(cfg)))
        goto done;
    m = calloc(1, sizeof *m);
    if (!m || !(m->names = malloc((size_t)NN_MAX_TENSORS * 48))) {
        rc = err_set(KF_ENOMEM, "nn: out of memory");
        goto done;
    }
    m->cfg = *cfg;
    m->be = be;
    const nn_config *c = &m->cfg;
    int NL = c->layers;
    size_t off = 0, o_emb, o_bias, o_l[NN_MAX_LAYERS][4];
    char *name_at = m->names, buf[48];
    o_emb = add_tensor(m, &off, &name_at, "0.encoder.weight", emb_aliases, 2, c->vocab, c->emb,
                       NL, false);
    for (int l = 0; l < NL; l++) {
        int64_t I = nn_in_size(c, l), H = nn_out_size(c, l);
        snprintf(buf, sizeof buf, "0.rnns.%d.weight_hh_l0_raw", l);
        o_l[l][0] = add_tensor(m, &off, &name_at, buf, NULL, 2, 4 * H, H, l, false);
        snprintf(buf, sizeof buf, "0.rnns.%d.module.weight_ih_l0", l);
        o_l[l][1] = add_tensor(m, &off, &name_at, buf, NULL, 2, 4 * H, I, l, false);
        snprintf(buf, sizeof buf, "0.rnns.%d.module.bias_ih_l0", l);
        o_l[l][2] = add_tensor(m, &off, &name_at, buf, NULL, 1, 4 * H, 0, l, true);
        snprintf(buf, sizeof buf, "0.rnns.%d.module.bias_hh_l0", l);
        o_l[l][3] = add_tensor(m, &off, &name_at, buf, NULL, 1, 4 * H, 0, l, true);
    }
    o_bias = add_tensor(m, &off, &name_at, "1.decoder.bias", NULL, 1, c->vocab, 0, NL, true);
    m->num_params = off;
    if (off > SIZE_MAX / sizeof(float) ||
        !(m->params = be->alloc(be, off * sizeof(float))) ||
        !(m->grads = be->alloc(be, off * sizeof(float)))) {
        rc = err_set(KF_ENOMEM, "nn: cannot allocate %zu parameters", off);
        goto done;
    }
    float *blocks[2] = {m->params, m->grads};
    nn_weights *views[2] = {&m->w, &m->g};
    for (int k = 0; k < 2; k++) {
        views[k]->emb = blocks[k] + o_emb;
        views[k]->dec_bias = blocks[k] + o_bias;
        for (int l = 0; l < NL; l++) {
            views[k]->lstm[l].w_hh_raw = blocks[k] + o_l[l][0];
            views[k]->lstm[l].w_ih = blocks[k] + o_l[l][1];
            views[k]->lstm[l].b_ih = blocks[k] + o_l[l][2];
            views[k]->lstm[l].b_hh = blocks[k] + o_l[l][3];
        }
    }
    if (be->pack_b) { /* one layer's packed W_hh at a time, either orientation */
        size_t most = 0;
        for (int l = 0; l < NL; l++) {
            int H = nn_out_size(c, l);
            size_t f = be->packed_floats(be, H, 4 * H), b = be->packed_floats(be, 4 * H, H);
            most = f > most ? f : most;
            most = b > most ? b : most;
        }
        if (!(m->w_hh_packed = be->alloc(be, most * sizeof(float)))) {
            rc = err_set(KF_ENOMEM, "nn: cannot allocate %zu floats for the packed weight", most);
            goto done;
        }
    }
    if ((rc = nn_state_resize(m, 1)))
        goto done;
    *out = m;
    m = NULL;
done:
    nn_model_free(m);
    return rc;
}

void nn_model_free(nn_model *m)
{
    if (!m)
        return;
    nn_backend *be = m->be;
    for (int l = 0; l < NN_MAX_LAYERS; l++) {
        if (m->state_h[l])
            be->release(be, m->state_h[l]);
        if (m->state_c[l])
            be->release(be, m->state_c[l]);
    }
    if (m->params)
        be->release(be, m->params);
    if (m->grads)
        be->release(be, m->grads);
    if (m->w_hh_packed)
        be->release(be, m->w_hh_packed);
    free(m->names);
    free(m);
}

const nn_config *nn_model_config(const nn_model *m) { return &m->cfg; }
nn_backend *nn_model_backend(const nn_model *m) { return m->be; }
size_t nn_num_params(const nn_model *m) { return m->num_params; }
float *nn_params(nn_model *m) { return m->params; }
float *nn_grads(nn_model *m) { return m->grads; }
const nn_weights *nn_model_weights(const nn_model *m) { return &m->w; }
const nn_weights *nn_model_grads(const nn_model *m) { return &m->g; }
int nn_tensor_count(const nn_model *m) { return m->num_tensors; }
const nn_tensor *nn_tensors(const nn_model *m) { return m->tensors; }

void nn_zero_grad(nn_model *m) { m->be->fill(m->be, m->grads, 0.0f, m->num_params); }

/* Init draws from streams far above any dropout mask stream (step * 64 + kind). */
#define INIT_STREAM (1ull << 62)

int nn_model_init(nn_model *m, uint64_t seed)
{
    const nn_config *c = &m->cfg;
    float *host = calloc(m->num_params, sizeof *host);
    if (!host)
        return err_set(KF_ENOMEM, "nn: cannot stage %zu parameters for init", m->num_params);
    for (int i = 0; i < m->num_tensors; i++) {
        const nn_tensor *t = &m->tensors[i];
        if (i == m->num_tensors - 1)
            continue; /* decoder bias: 0 */
        /* embedding U(-0.1,0.1) (fastai initrange); LSTM tensors U(-1/sqrt(H_l), 1/sqrt(H_l)) */
        float range = i == 0 ? 0.1f : 1.0f / sqrtf((float)nn_out_size(c, t->group));
        for (size_t k = 0; k < t->numel; k++)
            host[t->offset + k] =
                (2.0f * nn_rng_uniform(seed, INIT_STREAM + (uint64_t)i, k) - 1.0f) * range;
    }
    m->be->upload(m->be, m->params, host, m->num_params * sizeof *host);
    free(host);
    nn_reset(m);
    return 0;
}

int nn_state_reserve(nn_model *m, int b)
{
    nn_backend *be = m->be;
    const nn_config *c = &m->cfg;
    if (b > m->state_cap) {
        int cap = b > 2 * m->state_cap ? b : 2 * m->state_cap;
        for (int l = 0; l < c->layers; l++) {
            size_t H = (size_t)nn_out_size(c, l);
            float *nh = be->alloc(be, (size_t)cap * H * sizeof(float));
            float *nc = be->alloc(be, (size_t)cap * H * sizeof(float));
            if (!nh || !nc) {
                if (nh)
                    be->release(be, nh);
                if (nc)
                    be->release(be, nc);
                return err_set(KF_ENOMEM, "nn: cannot grow the hidden state to %d rows", cap);
            }
            if (m->state_h[l]) {
                be->copy(be, nh, m->state_h[l], (size_t)m->state_b * H * sizeof(float));
                be->copy(be, nc, m->state_c[l], (size_t)m->state_b * H * sizeof(float));
                be->release(be, m->state_h[l]);
                be->release(be, m->state_c[l]);
            }
            m->state_h[l] = nh;
            m->state_c[l] = nc;
        }
        m->state_cap = cap;
    }
    return 0;
}

int nn_state_resize(nn_model *m, int b)
{
    nn_backend *be = m->be;
    const nn_config *c = &m->cfg;
    int rc = nn_state_reserve(m, b);
    if (rc)
        return rc;
    if (b > m->state_b) { /* fastai appends zero rows */
        for (int l = 0; l < c->layers; l++) {
            size_t H = (size_t)nn_out_size(c, l), n = (size_t)(b - m->state_b) * H;
            be->fill(be, m->state_h[l] + (size_t)m->state_b * H, 0.0f, n);
            be->fill(be, m->state_c[l] + (size_t)m->state_b * H, 0.0f, n);
        }
    }
    m->state_b = b; /* smaller b keeps the first b rows */
    return 0;
}

void nn_reset(nn_model *m)
{
    for (int l = 0; l < m->cfg.layers; l++) {
        size_t n = (size_t)m->state_cap * nn_out_size(&m->cfg, l);
        m->be->fill(m->be, m->state_h[l], 0.0f, n);
        m->be->fill(m->be, m->state_c[l], 0.0f, n);
    }
}

size_t nn_config_num_params(const nn_config *c)
{
    if (check_config(c) < 0) {
        err_clear();
        return 0;
    }
    /* as nn_model_new lays them out: each tensor starts 16-float aligned */
    size_t n = align16((size_t)c->vocab * (size_t)c->emb);
    for (int l = 0; l < c->layers; l++) {
        size_t I = (size_t)nn_in_size(c, l), H = (size_t)nn_out_size(c, l);
        n += align16(4 * H * H) + align16(4 * H * I) + 2 * align16(4 * H);
    }
    return n + align16((size_t)c->vocab);
}

/* Carves the activation block: first pass (base NULL) sizes it, second assigns pointers. */
static size_t layout_acts(const nn_config *c, nn_acts *a, char *base)
{
    size_t off = 0, B = (size_t)a->B, T = (size_t)a->T, E = (size_t)c->emb, V = (size_t)c->vocab;
    size_t Hmax = (size_t)(c->hidden > c->emb ? c->hidden : c->emb);
#define TAKE(ptr, type, count)                                                                 \
    do {                                                                                       \
        if (base)                                                                              \
            ptr = (type *)(base + off);                                                        \
        off += ((count) * sizeof(type) + 63) / 64 * 64;                                        \
    } while (0)
    TAKE(a->tokens, int32_t, B * T);
    TAKE(a->mask_emb, float, V);
    TAKE(a->mask_in, float, B * E);
    TAKE(a->emb, float, T * B * E);
    for (int l = 0; l < c->layers; l++) {
        size_t I = (size_t)nn_in_size(c, l), H = (size_t)nn_out_size(c, l);
        nn_layer_acts *la = &a->layer[l];
        TAKE(la->x, float, T * B * I);
        TAKE(la->gates, float, T * B * 4 * H);
        TAKE(la->h, float, (T + 1) * B * H);
        TAKE(la->c, float, (T + 1) * B * H);
        TAKE(la->w_hh, float, 4 * H * H);
        TAKE(la->mask_w, float, 4 * H * H);
        if (l < c->layers - 1)
            TAKE(la->mask_h, float, B * H);
    }
    if (a->decoder) {
        TAKE(a->targets, int32_t, B * T);
        TAKE(a->mask_out, float, B * E);
        TAKE(a->dec_in, float, T * B * E);
        TAKE(a->logits, float, T * B * V);
        TAKE(a->losses, float, T * B);
    }
    TAKE(a->d_out, float, T * B * E);
    TAKE(a->d_a, float, T * B * Hmax);
    TAKE(a->d_b, float, T * B * Hmax);
    TAKE(a->d_gates, float, T * B * 4 * Hmax);
    TAKE(a->d_c, float, B * Hmax);
    TAKE(a->d_w, float, 4 * Hmax * Hmax);
#undef TAKE
    return off;
}

int nn_acts_new(nn_acts **out, nn_model *m, int B, int T, unsigned flags)
{
    int rc = 0;
    nn_acts *a = NULL;
    *out = NULL;
    if (B < 1 || T < 1 || (long long)B * T > (1ll << 24)) {
        rc = err_set(KF_EINVAL, "nn: batch %d x time %d out of range", B, T);
        goto done;
    }
    if (!(a = calloc(1, sizeof *a))) {
        rc = err_set(KF_ENOMEM, "nn: out of memory");
        goto done;
    }
    a->B = B, a->T = T, a->decoder = (flags & NN_ACTS_DECODER) != 0;
    size_t bytes = layout_acts(&m->cfg, a, NULL);
    if (!(a->block = m->be->alloc(m->be, bytes))) {
        rc = err_set(KF_ENOMEM, "nn: cannot allocate %zu bytes of activations", bytes);
        goto done;
    }
    layout_acts(&m->cfg, a, a->block);
    if (a->decoder && !(a->red = m->be->alloc(m->be, 3 * sizeof(double)))) {
        rc = err_set(KF_ENOMEM, "nn: cannot allocate the loss sums");
        goto done;
    }
    *out = a;
    a = NULL;
done:
    nn_acts_free(m, a);
    return rc;
}

size_t nn_acts_bytes(const nn_config *cfg, int B, int T, unsigned flags)
{
    if (B < 1 || T < 1 || (long long)B * T > (1ll << 24) || check_config(cfg) < 0) {
        err_clear();
        return 0;
    }
    nn_acts a = {.B = B, .T = T, .decoder = (flags & NN_ACTS_DECODER) != 0};
    return layout_acts(cfg, &a, NULL);
}

void nn_acts_free(nn_model *m, nn_acts *a)
{
    if (!a)
        return;
    if (a->block)
        m->be->release(m->be, a->block);
    if (a->red)
        m->be->release(m->be, a->red);
    free(a);
}
