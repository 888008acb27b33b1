/* classifier: fastai's PoolingLinearClassifier forward/backward (see classifier.h).
 * Dimension legend: B batch, T time, E encoder output size, D_k block k's input features,
 * L labels, NK blocks. Parameters, gradients, buffers and activations each live in one backend
 * allocation with typed views into it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classifier.h"
#include "err.h"
#include "loss.h"
#include "rng.h"

#define ALIGN_FLOATS 16 /* 64-byte aligned views */
#define HEAD_MASK_STREAM 0x6865616400000000ull /* "head": keeps our masks apart from nn's */
#define HEAD_INIT_STREAM 0x68696e6900000000ull

struct head_clf {
    head_config cfg;
    nn_backend *be;
    const head_kernels *k;
    int max_batch;

    size_t n_params, n_buffers;
    float *params, *grads, *buffers; /* backend memory */
    head_block_weights w[HEAD_MAX_BLOCKS], g[HEAD_MAX_BLOCKS];
    nn_tensor tensors[3 * HEAD_MAX_BLOCKS], buffer_tensors[2 * HEAD_MAX_BLOCKS];
    char *names[5 * HEAD_MAX_BLOCKS]; /* owned strings behind the tensors' names */
    int n_tensors, n_buffer_tensors, n_names;
    int64_t batches_tracked;

    /* activations (one allocation) */
    float *acts_block;
    float *pooled;        /* (B,3E) */
    int32_t *argmax;      /* (B,E) */
    int32_t *last, *len;  /* (B) backend copies */
    head_block_acts a[HEAD_MAX_BLOCKS];
    float *dlogits;       /* (B,L) */
    float *probs;         /* (B,L) softmax (single-label) */
    float *losses;        /* (B) */
    float *targets_f;     /* (B,L) */
    int32_t *targets_i;   /* (B) */
    float *scratch[3];    /* (B,maxD) each */
    uint8_t *pad;         /* (B,T) backend copy, pad_cap bytes */
    size_t pad_cap;
    int32_t *host_idx;    /* (2B) host: last then len */

    /* last forward */
    int fwd_B, fwd_T;
    bool fwd_training, fwd_done;
};

head_config head_config_default(int emb, int n_labels, bool multi_label, float drop_mult)
{
    head_config c = {
        .emb = emb,
        .n_blocks = 2,
        .dims = {3 * emb, 50, n_labels},
        .ps = {0.4f * drop_mult, 0.1f},
        .bptt = 72,
        .bn_eps = 1e-5f,
        .bn_momentum = 0.1f,
        .multi_label = multi_label,
    };
    return c;
}

static size_t align_up(size_t n) { return (n + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS; }

static int validate_config(const head_config *cfg, int max_batch)
{
    if (cfg->emb < 1)
        return err_set(KF_EINVAL, "head: encoder output size %d must be >= 1", cfg->emb);
    if (cfg->n_blocks < 1 || cfg->n_blocks > HEAD_MAX_BLOCKS)
        return err_set(KF_EINVAL, "head: %d linear blocks, must be 1..%d", cfg->n_blocks,
                       HEAD_MAX_BLOCKS);
    if (cfg->dims[0] != 3 * cfg->emb)
        return err_set(KF_EINVAL, "head: dims[0] is %d, must be 3*emb = %d", cfg->dims[0],
                       3 * cfg->emb);
    for (int k = 0; k <= cfg->n_blocks; k++)
        if (cfg->dims[k] < 1 || cfg->dims[k] > (1 << 24))
            return err_set(KF_EINVAL, "head: layer size dims[%d] = %d out of range", k,
                           cfg->dims[k]);
    for (int k = 0; k < cfg->n_blocks; k++)
        if (!(cfg->ps[k] >= 0.0f && cfg->ps[k] < 1.0f))
            return err_set(KF_EINVAL, "head: dropout ps[%d] = %g must be in [0,1)", k,
                           (double)cfg->ps[k]);
    if (cfg->bptt < 1)
        return err_set(KF_EINVAL, "head: bptt %d must be >= 1", cfg->bptt);
    if (!(cfg->bn_eps > 0.0f) || !(cfg->bn_momentum >= 0.0f && cfg->bn_momentum <= 1.0f))
        return err_set(KF_EINVAL, "head: BatchNorm eps %g / momentum %g invalid",
                       (double)cfg->bn_eps, (double)cfg->bn_momentum);
    if (max_batch < 1 || max_batch > (1 << 20))
        return err_set(KF_EINVAL, "head: max batch %d out of range", max_batch);
    return 0;
}

static int add_tensor(head_clf *c, nn_tensor *t, const char *fmt, int k, int sub,
                      const char *leaf, size_t offset, int ndim, int64_t d0, int64_t d1)
{
    char *name = NULL;
    if (asprintf(&name, fmt, k, sub, leaf) < 0)
        return err_set(KF_ENOMEM, "head: out of memory naming tensors");
    c->names[c->n_names++] = name;
    *t = (nn_tensor){.name = name, .offset = offset, .ndim = ndim, .shape = {d0, d1},
                     .numel = (size_t)d0 * (size_t)(ndim == 2 ? d1 : 1), .group = 0};
    return 0;
}

/* Lays out params/grads/buffers and names the tensors as fastai's state_dict does. */
static int layout_params(head_clf *c)
{
    const head_config *cfg = &c->cfg;
    size_t off = 0, boff = 0;
    int rc = 0;
    for (int k = 0; k < cfg->n_blocks; k++) {
        int64_t D = cfg->dims[k], Dn = cfg->dims[k + 1];
        int lin_idx = cfg->ps[k] != 0.0f ? 2 : 1; /* Dropout is only there when p != 0 */
        nn_tensor *t = &c->tensors[c->n_tensors];
        if ((rc = add_tensor(c, &t[0], "1.layers.%d.%d.%s", k, 0, "weight", off, 1, D, 0)))
            goto done;
        t[0].no_wd = true;
        off = align_up(off + (size_t)D);
        if ((rc = add_tensor(c, &t[1], "1.layers.%d.%d.%s", k, 0, "bias", off, 1, D, 0)))
            goto done;
        t[1].no_wd = true;
        off = align_up(off + (size_t)D);
        if ((rc = add_tensor(c, &t[2], "1.layers.%d.%d.%s", k, lin_idx, "weight", off, 2, Dn, D)))
            goto done;
        off = align_up(off + (size_t)(Dn * D));
        c->n_tensors += 3;

        nn_tensor *bt = &c->buffer_tensors[c->n_buffer_tensors];
        if ((rc = add_tensor(c, &bt[0], "1.layers.%d.%d.%s", k, 0, "running_mean", boff, 1, D, 0)))
            goto done;
        boff = align_up(boff + (size_t)D);
        if ((rc = add_tensor(c, &bt[1], "1.layers.%d.%d.%s", k, 0, "running_var", boff, 1, D, 0)))
            goto done;
        boff = align_up(boff + (size_t)D);
        c->n_buffer_tensors += 2;
    }
    c->n_params = off;
    c->n_buffers = boff;
done:
    return rc;
}

static void bind_views(head_clf *c)
{
    for (int k = 0; k < c->cfg.n_blocks; k++) {
        const nn_tensor *t = &c->tensors[3 * k], *bt = &c->buffer_tensors[2 * k];
        c->w[k] = (head_block_weights){.bn_w = c->params + t[0].offset,
                                       .bn_b = c->params + t[1].offset,
                                       .lin_w = c->params + t[2].offset,
                                       .run_mean = c->buffers + bt[0].offset,
                                       .run_var = c->buffers + bt[1].offset};
        c->g[k] = (head_block_weights){.bn_w = c->grads + t[0].offset,
                                       .bn_b = c->grads + t[1].offset,
                                       .lin_w = c->grads + t[2].offset};
    }
}

/* One allocation for every activation; views carved in 64-byte aligned slices. */
static int alloc_acts(head_clf *c)
{
    const head_config *cfg = &c->cfg;
    const size_t B = (size_t)c->max_batch, E = (size_t)cfg->emb, L = (size_t)cfg->dims[cfg->n_blocks];
    size_t maxD = 0;
    for (int k = 0; k <= cfg->n_blocks; k++)
        if ((size_t)cfg->dims[k] > maxD)
            maxD = (size_t)cfg->dims[k];

    /* two passes: count, then carve */
    for (int pass = 0; pass < 2; pass++) {
        size_t off = 0;
        float *base = pass ? c->acts_block : NULL;
#define CARVE(ptr, type, n)                                                                     \
    do {                                                                                        \
        if (pass)                                                                               \
            (ptr) = (type *)(base + off);                                                       \
        off = align_up(off + (n));                                                              \
    } while (0)
        CARVE(c->pooled, float, B * 3 * E);
        CARVE(c->argmax, int32_t, B * E);
        CARVE(c->last, int32_t, B);
        CARVE(c->len, int32_t, B);
        for (int k = 0; k < cfg->n_blocks; k++) {
            size_t D = (size_t)cfg->dims[k], Dn = (size_t)cfg->dims[k + 1];
            CARVE(c->a[k].xhat, float, B * D);
            CARVE(c->a[k].mean, float, D);
            CARVE(c->a[k].rstd, float, D);
            CARVE(c->a[k].mask, float, B * D);
            CARVE(c->a[k].drop, float, B * D);
            CARVE(c->a[k].out, float, B * Dn);
        }
        CARVE(c->dlogits, float, B * L);
        CARVE(c->probs, float, B * L);
        CARVE(c->losses, float, B);
        CARVE(c->targets_f, float, B * L);
        CARVE(c->targets_i, int32_t, B);
        for (int i = 0; i < 3; i++)
            CARVE(c->scratch[i], float, B * maxD);
#undef CARVE
        if (!pass) {
            c->acts_block = c->be->alloc(c->be, off * sizeof(float));
            if (!c->acts_block)
                return err_set(KF_ENOMEM, "head: cannot allocate %zu activation floats", off);
        }
    }
    return 0;
}

int head_clf_new(head_clf **out, const head_config *cfg, nn_backend *be,
                 const head_kernels *kernels, int max_batch)
{
    head_clf *c = NULL;
    int rc;
    *out = NULL;
    if ((rc = validate_config(cfg, max_batch)))
        goto done;
    c = calloc(1, sizeof *c);
    if (!c) {
        rc = err_set(KF_ENOMEM, "head: out of memory");
        goto done;
    }
    c->cfg = *cfg;
    c->be = be;
    c->k = kernels ? kernels : be->head ? be->head : head_kernels_cpu();
    c->max_batch = max_batch;
    if ((rc = layout_params(c)))
        goto done;
    c->params = be->alloc(be, c->n_params * sizeof(float));
    c->grads = be->alloc(be, c->n_params * sizeof(float));
    c->buffers = be->alloc(be, c->n_buffers * sizeof(float));
    c->host_idx = calloc(2 * (size_t)max_batch, sizeof(int32_t));
    if (!c->params || !c->grads || !c->buffers || !c->host_idx) {
        rc = err_set(KF_ENOMEM, "head: cannot allocate %zu parameters", c->n_params);
        goto done;
    }
    bind_views(c);
    if ((rc = alloc_acts(c)))
        goto done;
    *out = c;
    c = NULL;
done:
    head_clf_free(c);
    return rc;
}

void head_clf_free(head_clf *c)
{
    if (!c)
        return;
    nn_backend *be = c->be;
    if (c->params)
        be->release(be, c->params);
    if (c->grads)
        be->release(be, c->grads);
    if (c->buffers)
        be->release(be, c->buffers);
    if (c->acts_block)
        be->release(be, c->acts_block);
    if (c->pad)
        be->release(be, c->pad);
    for (int i = 0; i < c->n_names; i++)
        free(c->names[i]);
    free(c->host_idx);
    free(c);
}

const head_config *head_clf_config(const head_clf *c) { return &c->cfg; }

int head_clf_init(head_clf *c, uint64_t seed)
{
    float *host = calloc(c->n_params > c->n_buffers ? c->n_params : c->n_buffers, sizeof(float));
    if (!host)
        return err_set(KF_ENOMEM, "head: out of memory initialising %zu parameters", c->n_params);
    for (int k = 0; k < c->cfg.n_blocks; k++) {
        const nn_tensor *t = &c->tensors[3 * k];
        for (size_t i = 0; i < t[0].numel; i++) {
            host[t[0].offset + i] = 1.0f;
            host[t[1].offset + i] = 1e-3f;
        }
        float bound = 1.0f / sqrtf((float)c->cfg.dims[k]);
        for (size_t i = 0; i < t[2].numel; i++)
            host[t[2].offset + i] =
                (2.0f * nn_rng_uniform(seed, HEAD_INIT_STREAM + (uint64_t)k, i) - 1.0f) * bound;
    }
    c->be->upload(c->be, c->params, host, c->n_params * sizeof(float));
    memset(host, 0, c->n_buffers * sizeof(float));
    for (int k = 0; k < c->cfg.n_blocks; k++) {
        const nn_tensor *bt = &c->buffer_tensors[2 * k];
        for (size_t i = 0; i < bt[1].numel; i++)
            host[bt[1].offset + i] = 1.0f;
    }
    c->be->upload(c->be, c->buffers, host, c->n_buffers * sizeof(float));
    c->batches_tracked = 0;
    free(host);
    return 0;
}

size_t head_num_params(const head_clf *c) { return c->n_params; }
float *head_params(head_clf *c) { return c->params; }
float *head_grads(head_clf *c) { return c->grads; }
void head_zero_grad(head_clf *c) { c->be->fill(c->be, c->grads, 0.0f, c->n_params); }
const head_block_weights *head_clf_weights(const head_clf *c, int k) { return &c->w[k]; }
const head_block_weights *head_clf_grads(const head_clf *c, int k) { return &c->g[k]; }
int head_tensor_count(const head_clf *c) { return c->n_tensors; }
const nn_tensor *head_tensors(const head_clf *c) { return c->tensors; }
size_t head_num_buffers(const head_clf *c) { return c->n_buffers; }
float *head_buffers(head_clf *c) { return c->buffers; }
int head_buffer_count(const head_clf *c) { return c->n_buffer_tensors; }
const nn_tensor *head_buffer_tensors(const head_clf *c) { return c->buffer_tensors; }
int64_t head_clf_batches_tracked(const head_clf *c) { return c->batches_tracked; }
const head_block_acts *head_clf_acts(const head_clf *c, int k) { return &c->a[k]; }
float *head_clf_pooled(head_clf *c) { return c->pooled; }
float *head_clf_logits(head_clf *c) { return c->a[c->cfg.n_blocks - 1].out; }
float *head_clf_dlogits(head_clf *c) { return c->dlogits; }
const int32_t *head_clf_argmax(const head_clf *c) { return c->argmax; }

void head_clf_masks_sample(head_clf *c, int B, uint64_t seed, uint64_t step)
{
    if (B > c->max_batch)
        B = c->max_batch;
    for (int k = 0; k < c->cfg.n_blocks; k++)
        c->be->dropout_mask(c->be, c->a[k].mask, (size_t)B * c->cfg.dims[k], c->cfg.ps[k], seed,
                            HEAD_MASK_STREAM + step * HEAD_MAX_BLOCKS + (uint64_t)k);
}

/* fastai masked_concat_pool's per-row numbers: len = non-pad count, last = T-1-(pads in the
 * last bptt positions). */
static int pool_rows(head_clf *c, const uint8_t *pad, int B, int T)
{
    int32_t *last = c->host_idx, *len = c->host_idx + B;
    int from = T > c->cfg.bptt ? T - c->cfg.bptt : 0;
    for (int b = 0; b < B; b++) {
        int n = 0, tail = 0;
        for (int t = 0; t < T; t++) {
            int p = pad[(size_t)b * T + t] != 0;
            n += !p;
            tail += p && t >= from;
        }
        if (n == 0)
            return err_set(KF_EINVAL, "head: row %d of the batch is all padding", b);
        len[b] = n;
        last[b] = T - 1 - tail;
    }
    return 0;
}

int head_clf_reserve(head_clf *c, int B, int T)
{
    size_t need = (size_t)B * T;
    if (B < 1 || T < 1 || (size_t)T > SIZE_MAX / (size_t)B)
        return err_set(KF_EINVAL, "head: cannot reserve a %d x %d pad mask", B, T);
    if (need <= c->pad_cap)
        return 0;
    if (c->pad)
        c->be->release(c->be, c->pad);
    c->pad = c->be->alloc(c->be, need);
    c->pad_cap = c->pad ? need : 0;
    if (!c->pad)
        return err_set(KF_ENOMEM, "head: cannot allocate a %d x %d pad mask", B, T);
    return 0;
}

int head_clf_forward(head_clf *c, const float *enc, const uint8_t *pad, int B, int T,
                     bool training)
{
    nn_backend *be = c->be;
    const head_config *cfg = &c->cfg;
    int rc = 0;
    c->fwd_done = false;
    if (B < 1 || B > c->max_batch)
        return err_set(KF_EINVAL, "head: batch %d outside 1..%d", B, c->max_batch);
    if (T < 1)
        return err_set(KF_EINVAL, "head: sequence length %d must be >= 1", T);
    if (training && B < 2)
        return err_set(KF_EINVAL, "head: BatchNorm in training needs a batch of >= 2 rows, got %d",
                       B);
    if ((size_t)T > SIZE_MAX / (size_t)B)
        return err_set(KF_EINVAL, "head: batch %d x length %d too large", B, T);
    if ((rc = pool_rows(c, pad, B, T)))
        return rc;
    size_t need = (size_t)B * T;
    if ((rc = head_clf_reserve(c, B, T)))
        return rc;
    be->upload(be, c->pad, pad, need);
    be->upload(be, c->last, c->host_idx, (size_t)B * sizeof(int32_t));
    be->upload(be, c->len, c->host_idx + B, (size_t)B * sizeof(int32_t));

    head_pool_dims pd = {.T = T, .B = B, .E = cfg->emb, .pad = c->pad, .last = c->last,
                         .len = c->len};
    c->k->pool_fwd(be, c->pooled, c->argmax, enc, &pd);

    const float *x = c->pooled; /* (B,D_k) */
    for (int k = 0; k < cfg->n_blocks; k++) {
        int D = cfg->dims[k], Dn = cfg->dims[k + 1];
        head_block_acts *a = &c->a[k];
        head_bn_dims bd = {.B = B, .D = D, .eps = cfg->bn_eps, .momentum = cfg->bn_momentum,
                           .training = training};
        c->k->bn_fwd(be, a->drop, a->xhat, a->mean, a->rstd, c->w[k].run_mean, c->w[k].run_var,
                     x, c->w[k].bn_w, c->w[k].bn_b, &bd);
        if (training && cfg->ps[k] != 0.0f)
            be->mul(be, a->drop, a->drop, a->mask, (size_t)B * D);
        /* out(B,Dn) = drop(B,D) @ lin_w(Dn,D)^T */
        be->sgemm(be, false, true, B, Dn, D, 1.0f, a->drop, D, c->w[k].lin_w, D, 0.0f, a->out, Dn);
        if (k < cfg->n_blocks - 1)
            c->k->relu_fwd(be, a->out, a->out, (size_t)B * Dn);
        x = a->out;
    }
    if (training)
        c->batches_tracked++;
    c->fwd_B = B;
    c->fwd_T = T;
    c->fwd_training = training;
    c->fwd_done = true;
    return 0;
}

int head_clf_loss(head_clf *c, double *loss, const head_targets *y, float dloss)
{
    nn_backend *be = c->be;
    const int B = c->fwd_B, L = c->cfg.dims[c->cfg.n_blocks];
    const float *logits = head_clf_logits(c);
    if (!c->fwd_done)
        return err_set(KF_EINVAL, "head: loss called before a forward");
    if (c->cfg.multi_label) {
        if (!y || !y->multi)
            return err_set(KF_EINVAL, "head: multi-label loss needs (B,L) float targets");
        for (size_t i = 0; i < (size_t)B * L; i++)
            if (!(y->multi[i] >= 0.0f && y->multi[i] <= 1.0f))
                return err_set(KF_EINVAL, "head: target [%zu][%zu] = %g is not in [0,1]",
                               i / (size_t)L, i % (size_t)L, (double)y->multi[i]);
        be->upload(be, c->targets_f, y->multi, (size_t)B * L * sizeof(float));
        *loss = head_bce_forward(c->k, be, logits, c->targets_f, (size_t)B * L);
        head_bce_backward(c->k, be, c->dlogits, logits, c->targets_f, (size_t)B * L, dloss);
    } else {
        if (!y || !y->single)
            return err_set(KF_EINVAL, "head: single-label loss needs (B) class targets");
        for (int b = 0; b < B; b++)
            if (y->single[b] < 0 || y->single[b] >= L)
                return err_set(KF_EINVAL, "head: target %d of row %d is not a class in [0,%d)",
                               y->single[b], b, L);
        be->upload(be, c->targets_i, y->single, (size_t)B * sizeof(int32_t));
        *loss = head_ce_forward(be, c->probs, c->losses, logits, c->targets_i, B, L);
        head_ce_backward(be, c->dlogits, c->probs, c->targets_i, B, L, dloss);
    }
    return 0;
}

int head_clf_backward(head_clf *c, float *d_enc)
{
    nn_backend *be = c->be;
    const head_config *cfg = &c->cfg;
    const int B = c->fwd_B;
    if (!c->fwd_done)
        return err_set(KF_EINVAL, "head: backward called before a forward");
    float *s_gd = c->scratch[0], *s_dbn = c->scratch[1], *s_dz = c->scratch[2];
    const float *dz = c->dlogits; /* (B,Dn) gradient w.r.t. block k's output */
    for (int k = cfg->n_blocks - 1; k >= 0; k--) {
        int D = cfg->dims[k], Dn = cfg->dims[k + 1];
        head_block_acts *a = &c->a[k];
        /* lin_w grad (Dn,D) += dz(B,Dn)^T @ drop(B,D); gd(B,D) = dz @ lin_w */
        be->sgemm(be, true, false, Dn, D, B, 1.0f, dz, Dn, a->drop, D, 1.0f, c->g[k].lin_w, D);
        be->sgemm(be, false, false, B, D, Dn, 1.0f, dz, Dn, c->w[k].lin_w, D, 0.0f, s_gd, D);
        if (c->fwd_training && cfg->ps[k] != 0.0f)
            be->mul(be, s_gd, s_gd, a->mask, (size_t)B * D);
        be->fill(be, s_dbn, 0.0f, (size_t)B * D);
        head_bn_dims bd = {.B = B, .D = D, .eps = cfg->bn_eps, .momentum = cfg->bn_momentum,
                           .training = c->fwd_training};
        c->k->bn_bwd(be, s_dbn, c->g[k].bn_w, c->g[k].bn_b, s_gd, a->xhat, a->rstd,
                     c->w[k].bn_w, &bd);
        if (k > 0) {
            be->fill(be, s_dz, 0.0f, (size_t)B * D);
            c->k->relu_bwd(be, s_dz, s_dbn, c->a[k - 1].out, (size_t)B * D);
            dz = s_dz;
        }
    }
    head_pool_dims pd = {.T = c->fwd_T, .B = B, .E = cfg->emb, .pad = c->pad, .last = c->last,
                         .len = c->len};
    c->k->pool_bwd(be, d_enc, s_dbn, c->argmax, &pd);
    return 0;
}
