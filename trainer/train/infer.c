/* infer: a trained classifier answering batches of texts. See infer.h. */
#include "infer.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "classifier.h"
#include "data.h"
#include "device.h"
#include "err.h"
#include "loss.h"
#include "modelio.h"
#include "nn.h"
#include "safetensors.h"
#include "sentence.h"
#include "vocab.h"

#define INFER_DEFAULT_BATCH 32
#define INFER_MAX_BATCH 4096

struct infer_model {
    nn_backend *be;
    vocab *vocab;
    tok_lang tl;
    char *lang;
    modelio_clf_meta meta;
    double threshold;
    int max_batch, bptt;
    nn_model *enc;
    head_clf *head;
    head_sentence *s;
    float *logits; /* (max_batch, L) host */
    uint8_t *pm;   /* (max_batch, L) host scratch */
    int32_t *pred; /* (max_batch) host scratch */
    size_t *perm;  /* (max_batch) */
    size_t *idx;   /* (max_batch) */
    data_doc *docs;
};

void infer_model_free(infer_model *m)
{
    if (!m)
        return;
    head_sentence_free(m->s);
    head_clf_free(m->head);
    nn_model_free(m->enc);
    vocab_free(m->vocab);
    modelio_clf_meta_dispose(&m->meta);
    free(m->lang);
    free(m->logits);
    free(m->pm);
    free(m->pred);
    free(m->perm);
    free(m->idx);
    free(m->docs);
    if (m->be)
        m->be->destroy(m->be);
    free(m);
}

/* Builds the encoder + head for the file's dimensions and loads the weights. */
static int build(infer_model *m, const st_file *f, const char *name)
{
    int rc, V, E, H, NL;
    if ((rc = modelio_dims(f, 1, &V, &E, &H, &NL)) < 0)
        return err_wrap(rc, "%s", name);
    if ((size_t)V != vocab_size(m->vocab))
        return err_set(KF_EINVAL, "%s: %d embedding rows but the vocabulary has %zu tokens (not this model's vocab.txt?)",
                       name, V, vocab_size(m->vocab));
    nn_config cfg = nn_config_clas(V, 0.5f);
    cfg.emb = E;
    cfg.hidden = H;
    cfg.layers = NL;
    if ((rc = nn_model_new(&m->enc, &cfg, m->be)) < 0)
        return err_wrap(rc, "%s", name);
    head_config hc = head_config_default(E, (int)m->meta.n_labels, m->meta.multi_label, 0.5f);
    hc.bptt = m->bptt;
    if ((rc = head_clf_new(&m->head, &hc, m->be, NULL, m->max_batch)) < 0)
        return err_wrap(rc, "%s", name);
    head_sentence_config sc = head_sentence_config_default();
    sc.bptt = m->bptt;
    if ((rc = head_sentence_new(&m->s, m->enc, &sc, m->max_batch)) < 0)
        return rc;
    /* Initialised as `kubefit-trainer predict` does (seed 42, 43) before loading, so a tensor the
     * file lacks has the same value there and here. */
    if ((rc = nn_model_init(m->enc, 42)) < 0 || (rc = head_clf_init(m->head, 43)) < 0)
        return rc;
    if ((rc = modelio_load_nn(m->enc, f, 1, NULL, NULL)) < 0 || (rc = modelio_load_head(m->head, m->be, f)) < 0)
        return err_wrap(rc, "%s", name);
    return 0;
}

int infer_model_load(infer_model **out, const infer_options *o)
{
    int rc;
    st_file *f = NULL;
    const char *name = o->name ? o->name : o->model_path;
    infer_model *m = calloc(1, sizeof *m);
    *out = NULL;
    if (!m)
        return err_set(KF_ENOMEM, "out of memory");
    m->max_batch = o->max_batch > 0 ? o->max_batch : INFER_DEFAULT_BATCH;
    if (m->max_batch > INFER_MAX_BATCH) {
        rc = err_set(KF_EINVAL, "max batch %d is over %d", m->max_batch, INFER_MAX_BATCH);
        goto done;
    }
    if ((rc = st_load(&f, o->model_path)) < 0 || (rc = st_check_finite(f)) < 0) {
        err_wrap(rc, "%s", name);
        goto done;
    }
    if ((rc = modelio_clf_meta_read(&m->meta, f, name)) < 0 || (rc = vocab_read(&m->vocab, o->vocab_path)) < 0)
        goto done;
    const char *lang = o->lang && *o->lang ? o->lang : m->meta.lang ? m->meta.lang : "";
    if (!(m->lang = strdup(lang))) {
        rc = err_set(KF_ENOMEM, "out of memory");
        goto done;
    }
    m->tl = TOK_LANG_GENERIC;
    if (*lang && (rc = tok_lang_parse(&m->tl, lang)) < 0) {
        err_wrap(rc, "%s", name);
        goto done;
    }
    m->threshold = o->threshold > 0 && o->threshold < 1 ? o->threshold : m->meta.threshold > 0 ? m->meta.threshold : 0.5;
    m->bptt = m->meta.bptt > 0 ? m->meta.bptt : 72;
    if ((rc = device_backend_new(&m->be, o->device ? o->device : "auto", "fp32", o->threads)) < 0)
        goto done;
    const size_t B = (size_t)m->max_batch, L = m->meta.n_labels;
    m->logits = malloc(B * L * sizeof *m->logits);
    m->pm = malloc(B * L);
    m->pred = malloc(B * sizeof *m->pred);
    m->perm = malloc(B * sizeof *m->perm);
    m->idx = malloc(B * sizeof *m->idx);
    m->docs = calloc(B, sizeof *m->docs);
    if (!m->logits || !m->pm || !m->pred || !m->perm || !m->idx || !m->docs) {
        rc = err_set(KF_ENOMEM, "out of memory");
        goto done;
    }
    rc = build(m, f, name);
done:
    st_free(f);
    if (rc < 0)
        infer_model_free(m);
    else
        *out = m;
    return rc;
}

size_t infer_n_labels(const infer_model *m) { return m->meta.n_labels; }
const char *infer_label(const infer_model *m, size_t i) { return i < m->meta.n_labels ? m->meta.labels[i] : NULL; }
int infer_multi_label(const infer_model *m) { return m->meta.multi_label; }
double infer_threshold(const infer_model *m) { return m->threshold; }
int infer_max_batch(const infer_model *m) { return m->max_batch; }
const char *infer_lang(const infer_model *m) { return m->lang; }
const char *infer_device(const infer_model *m) { return m->be->name; }

void infer_decide(const infer_model *m, unsigned char *pred, const float *probs)
{
    const size_t L = m->meta.n_labels;
    size_t best = 0;
    for (size_t l = 0; l < L; l++) {
        if (probs[l] > probs[best])
            best = l;
        pred[l] = m->meta.multi_label && probs[l] > m->threshold;
    }
    if (!m->meta.multi_label)
        pred[best] = 1;
}

int infer_predict(infer_model *m, float *probs, const char *const *texts, const size_t *lens, size_t n,
                  size_t *n_tokens)
{
    int rc = 0, S, T;
    const int L = (int)m->meta.n_labels, b = (int)n;
    int32_t *tok = NULL;
    uint8_t *pad = NULL;
    size_t total = 0;
    if (n == 0)
        return 0;
    if (n > (size_t)m->max_batch)
        return err_set(KF_EINVAL, "%zu texts in one batch, at most %d", n, m->max_batch);
    memset(m->docs, 0, n * sizeof *m->docs);
    for (size_t i = 0; i < n; i++) {
        if ((rc = data_encode_n(&m->docs[i].ids, &m->docs[i].n, m->vocab, m->tl, texts[i], lens[i])) < 0)
            goto done;
        total += m->docs[i].n;
        m->idx[i] = i;
    }
    data_docs docs = {.v = m->docs, .n = n};
    if ((rc = data_clf_batch_aligned(&tok, &pad, &S, m->perm, &docs, m->idx, b, m->bptt, 1, 1)) < 0 ||
        (rc = head_sentence_forward(m->s, tok, b, S, &(head_forward_opts){.training = false})) < 0)
        goto done;
    const float *enc = head_sentence_output(m->s, &T);
    if ((rc = head_clf_forward(m->head, enc, head_sentence_pad(m->s), b, T, false)) < 0)
        goto done;
    m->be->download(m->be, m->logits, head_clf_logits(m->head), (size_t)b * (size_t)L * sizeof *m->logits);
    /* Rows come back longest first: row i is text perm[i]. */
    float *sorted = malloc((size_t)b * (size_t)L * sizeof *sorted);
    if (!sorted) {
        rc = err_set(KF_ENOMEM, "out of memory");
        goto done;
    }
    if (m->meta.multi_label)
        head_predict_multi(m->pm, sorted, m->logits, (size_t)b * (size_t)L, (float)m->threshold);
    else
        head_predict_single(m->pred, sorted, m->logits, b, L);
    for (int i = 0; i < b; i++)
        memcpy(probs + m->perm[i] * (size_t)L, sorted + (size_t)i * (size_t)L, (size_t)L * sizeof *probs);
    free(sorted);
    if (n_tokens)
        *n_tokens = total;
done:
    for (size_t i = 0; i < n; i++) {
        free(m->docs[i].ids);
        m->docs[i].ids = NULL;
    }
    free(tok);
    free(pad);
    return rc;
}
