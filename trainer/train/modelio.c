/* modelio: weights <-> safetensors with fastai names. See modelio.h. */
#include "modelio.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

char *modelio_name(const char *nn_name, int classifier)
{
    char *s = NULL;
    if (!classifier || strncmp(nn_name, "0.", 2) != 0)
        return strdup(nn_name);
    if (asprintf(&s, "0.module.%s", nn_name + 2) < 0)
        return NULL;
    return s;
}

static int is_decoder(const char *name) { return strncmp(name, "1.decoder.", 10) == 0; }

/* Weights about to be written must be finite: a model that learnt NaN is a failed run, never a
 * saved model. */
static int check_finite(const float *v, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return err_set(KF_EINVAL, "weights: tensor \"%s\" holds %s (element %zu of %zu): training diverged",
                           name, isnan(v[i]) ? "NaN" : "infinity", i, n);
    return 0;
}

int modelio_add_nn(st_writer *w, nn_model *m, int classifier, float **host)
{
    int rc = 0;
    nn_backend *be = nn_model_backend(m);
    size_t n = nn_num_params(m);
    *host = malloc((n ? n : 1) * sizeof **host);
    if (!*host)
        return err_set(KF_ENOMEM, "out of memory");
    be->download(be, *host, nn_params(m), n * sizeof **host);
    const nn_tensor *t = nn_tensors(m);
    for (int i = 0; i < nn_tensor_count(m) && rc == 0; i++) {
        if (classifier && is_decoder(t[i].name))
            continue;
        char *name = modelio_name(t[i].name, classifier);
        if (!name)
            return err_set(KF_ENOMEM, "out of memory");
        if ((rc = check_finite(*host + t[i].offset, t[i].numel, name)) == 0)
            rc = st_writer_add(w, name, *host + t[i].offset, t[i].shape, t[i].ndim);
        free(name);
    }
    return rc;
}

int modelio_add_head(st_writer *w, head_clf *c, nn_backend *be, float **host)
{
    int rc = 0;
    size_t np = head_num_params(c), nb = head_num_buffers(c);
    *host = malloc((np + nb + 1) * sizeof **host);
    if (!*host)
        return err_set(KF_ENOMEM, "out of memory");
    be->download(be, *host, head_params(c), np * sizeof **host);
    be->download(be, *host + np, head_buffers(c), nb * sizeof **host);
    const nn_tensor *t = head_tensors(c);
    for (int i = 0; i < head_tensor_count(c) && rc == 0; i++)
        if ((rc = check_finite(*host + t[i].offset, t[i].numel, t[i].name)) == 0)
            rc = st_writer_add(w, t[i].name, *host + t[i].offset, t[i].shape, t[i].ndim);
    const nn_tensor *b = head_buffer_tensors(c);
    for (int i = 0; i < head_buffer_count(c) && rc == 0; i++)
        if ((rc = check_finite(*host + np + b[i].offset, b[i].numel, b[i].name)) == 0)
            rc = st_writer_add(w, b[i].name, *host + np + b[i].offset, b[i].shape, b[i].ndim);
    return rc;
}

/* Finds tensor t (or an alias) in f under the file's naming; returns the name found or NULL. */
static const st_tensor *find_any(const st_file *f, const nn_tensor *t, int classifier, char **found)
{
    *found = NULL;
    for (int k = -1; k < 3; k++) {
        const char *nm = k < 0 ? t->name : t->aliases[k];
        if (!nm)
            break;
        char *full = modelio_name(nm, classifier);
        if (!full)
            return NULL;
        const st_tensor *st = st_find(f, full);
        if (st) {
            *found = full;
            return st;
        }
        free(full);
    }
    return NULL;
}

int modelio_load_nn(nn_model *m, const st_file *f, int from_classifier, const vocab *to_vocab,
                    const vocab *from_vocab)
{
    int rc = 0;
    nn_backend *be = nn_model_backend(m);
    const nn_config *cfg = nn_model_config(m);
    size_t n = nn_num_params(m);
    float *host = malloc((n ? n : 1) * sizeof *host), *tmp = NULL;
    if (!host)
        return err_set(KF_ENOMEM, "out of memory");
    be->download(be, host, nn_params(m), n * sizeof *host);
    const nn_tensor *t = nn_tensors(m);
    for (int i = 0; i < nn_tensor_count(m) && rc == 0; i++) {
        char *name = NULL;
        const st_tensor *st = find_any(f, &t[i], from_classifier, &name);
        int is_emb = i == 0, is_bias = is_decoder(t[i].name);
        if (!st) {
            if (is_bias)
                continue; /* a classifier file has no decoder bias: keep the init */
            rc = err_set(KF_EINVAL, "weights: tensor '%s' missing", t[i].name);
            break;
        }
        if (!from_vocab || (!is_emb && !is_bias)) {
            rc = st_read_f32(host + t[i].offset, t[i].numel, f, name, t[i].shape, t[i].ndim);
        } else { /* match_embeds */
            int64_t oldV = st->shape[0];
            size_t row = is_emb ? (size_t)cfg->emb : 1;
            if (oldV <= 0 || (size_t)oldV != vocab_size(from_vocab) || st->numel != (size_t)oldV * row) {
                rc = err_set(KF_EINVAL, "weights: '%s' has %lld rows, the pretrained vocab %zu tokens of %zu values",
                             name, (long long)oldV, vocab_size(from_vocab), row);
            } else if (!(tmp = malloc(st->numel * sizeof *tmp))) {
                rc = err_set(KF_ENOMEM, "out of memory");
            } else if ((rc = st_read_f32(tmp, st->numel, f, name, NULL, 0)) == 0) {
                float *dst = host + t[i].offset;
                double *mean = calloc(row, sizeof *mean);
                if (!mean) {
                    rc = err_set(KF_ENOMEM, "out of memory");
                } else {
                    for (int64_t r = 0; r < oldV; r++)
                        for (size_t k = 0; k < row; k++)
                            mean[k] += tmp[(size_t)r * row + k] / (double)oldV;
                    for (size_t v = 0; v < vocab_size(to_vocab); v++) {
                        const char *tok = vocab_token(to_vocab, (int32_t)v);
                        int32_t old = vocab_id(from_vocab, tok);
                        int hit = old > 0 || (old == 0 && strcmp(tok, vocab_token(from_vocab, 0)) == 0);
                        for (size_t k = 0; k < row; k++)
                            dst[v * row + k] = hit ? tmp[(size_t)old * row + k] : (float)mean[k];
                    }
                    free(mean);
                }
            }
            free(tmp);
            tmp = NULL;
        }
        if (rc < 0)
            err_wrap(rc, "weights");
        free(name);
    }
    if (rc == 0)
        be->upload(be, nn_params(m), host, n * sizeof *host);
    free(host);
    return rc;
}

int modelio_load_head(head_clf *c, nn_backend *be, const st_file *f)
{
    int rc = 0;
    const nn_tensor *t = head_tensors(c);
    size_t np = head_num_params(c), nb = head_num_buffers(c);
    float *p = calloc(np + nb + 1, sizeof *p), *b = p ? p + np : NULL; /* host staging */
    if (!p)
        return err_set(KF_ENOMEM, "out of memory");
    for (int i = 0; i < head_tensor_count(c) && rc == 0; i++)
        rc = st_read_f32(p + t[i].offset, t[i].numel, f, t[i].name, t[i].shape, t[i].ndim);
    const nn_tensor *bt = head_buffer_tensors(c);
    for (int i = 0; i < head_buffer_count(c) && rc == 0; i++)
        rc = st_read_f32(b + bt[i].offset, bt[i].numel, f, bt[i].name, bt[i].shape, bt[i].ndim);
    if (rc < 0) {
        err_wrap(rc, "classifier head weights");
    } else { /* every tensor of both blocks was read: the blocks are complete */
        be->upload(be, head_params(c), p, np * sizeof *p);
        be->upload(be, head_buffers(c), b, nb * sizeof *b);
    }
    free(p);
    return rc;
}

int modelio_dims(const st_file *f, int classifier, int *V, int *E, int *H, int *NL)
{
    const char *emb = classifier ? "0.module.encoder.weight" : "0.encoder.weight";
    const st_tensor *t = st_find(f, emb);
    if (!t || t->ndim != 2)
        return err_set(KF_EINVAL, "weights: no 2-D '%s' (not an AWD-LSTM %s?)", emb,
                       classifier ? "classifier" : "language model");
    *V = (int)t->shape[0];
    *E = (int)t->shape[1];
    *NL = 0;
    *H = 0;
    for (int l = 0; l < NN_MAX_LAYERS; l++) {
        char name[64];
        snprintf(name, sizeof name, "%srnns.%d.module.weight_ih_l0", classifier ? "0.module." : "0.", l);
        const st_tensor *w = st_find(f, name);
        if (!w)
            break;
        if (w->ndim != 2 || w->shape[0] % 4)
            return err_set(KF_EINVAL, "weights: '%s' has a bad shape", name);
        if (l == 0)
            *H = (int)(w->shape[0] / 4);
        *NL = l + 1;
    }
    if (*NL == 0)
        return err_set(KF_EINVAL, "weights: no LSTM layers found");
    if (*NL == 1)
        *H = *E;
    return 0;
}

void modelio_clf_meta_dispose(modelio_clf_meta *m)
{
    if (!m)
        return;
    for (size_t i = 0; m->labels && i < m->n_labels; i++)
        free(m->labels[i]);
    free(m->labels);
    free(m->lang);
    memset(m, 0, sizeof *m);
}

int modelio_clf_meta_read(modelio_clf_meta *out, const st_file *f, const char *name)
{
    int rc = 0;
    memset(out, 0, sizeof *out);
    const char *labels = st_metadata(f, "kubefit.labels"), *ml = st_metadata(f, "kubefit.multi_label");
    const char *thr = st_metadata(f, "kubefit.threshold"), *cfg = st_metadata(f, "kubefit.config");
    json_t *jl = labels ? json_loads(labels, 0, NULL) : NULL, *c = cfg ? json_loads(cfg, 0, NULL) : NULL;
    if (!json_is_array(jl) || json_array_size(jl) < 1) {
        rc = err_set(KF_EINVAL, "%s: no kubefit.labels metadata (not a kubefit classifier?)", name);
        goto done;
    }
    if (!(out->labels = calloc(json_array_size(jl), sizeof *out->labels))) {
        rc = err_set(KF_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < json_array_size(jl); i++) {
        const char *s = json_string_value(json_array_get(jl, i));
        if (!s) {
            rc = err_set(KF_EINVAL, "%s: kubefit.labels[%zu] is not a string", name, i);
            goto done;
        }
        if (!(out->labels[i] = strdup(s))) {
            rc = err_set(KF_ENOMEM, "out of memory");
            goto done;
        }
        out->n_labels = i + 1;
    }
    out->multi_label = ml && strcmp(ml, "1") == 0;
    if (thr && atof(thr) > 0 && atof(thr) < 1)
        out->threshold = atof(thr);
    json_int_t B = json_integer_value(json_object_get(c, "batchSize"));
    json_int_t T = json_integer_value(json_object_get(c, "bptt"));
    if (B >= 2 && B <= 1 << 16 && T >= 1 && T <= 1 << 16)
        out->batch_size = (int)B, out->bptt = (int)T;
    const char *lang = json_string_value(json_object_get(c, "lang"));
    if (lang && !(out->lang = strdup(lang)))
        rc = err_set(KF_ENOMEM, "out of memory");
done:
    json_decref(jl);
    json_decref(c);
    if (rc < 0)
        modelio_clf_meta_dispose(out);
    return rc;
}
