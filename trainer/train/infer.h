/* infer: a trained kubefit classifier (model.safetensors + vocab.txt) held in memory, answering
 * batches of texts - what kubefit-serve runs. The same code path as `kubefit-trainer predict`:
 * the model's metadata (modelio_clf_meta_read), tokenisation (data_encode_n), fastai's batch
 * padding (pad-first by whole BPTT chunks, with the batch length rounded up to a whole chunk:
 * data_clf_batch_aligned), the SentenceEncoder and head forward in eval mode, sigmoid/softmax
 * (head_predict_*). Rows of a batch do not influence each other (eval BatchNorm uses running
 * statistics, padding is masked in the pooling), so a text gets the probabilities it gets alone,
 * up to float32 summation order (tests/serve/test_infer.c: within 1e-6).
 *
 * Dimension legend: N texts of one call (<= max_batch), L labels, S padded length.
 *
 * Thread safety: one infer_model answers one infer_predict at a time (activations live in it);
 * separate models are independent (each owns its backend). */
#ifndef KUBEFIT_INFER_H
#define KUBEFIT_INFER_H

#include <stddef.h>

typedef struct infer_model infer_model;

typedef struct {
    const char *model_path; /* local model.safetensors (required) */
    const char *vocab_path; /* local vocab.txt (required) */
    const char *name;       /* for messages (e.g. the model's URI); NULL: model_path */
    const char *lang;       /* tokenizer language; NULL: the model's kubefit.config "lang" (then
                             * the generic rules when the model does not say) */
    const char *device;     /* auto | cpu | cuda (device.h); NULL: auto */
    int threads;            /* CPU threads; <= 0: the cgroup quota or every core */
    int max_batch;          /* texts per infer_predict; <= 0: 32 */
    double threshold;       /* multi-label decision threshold in (0,1); 0: the model's, else 0.5 */
} infer_options;

/* Loads and checks the model (finite weights, labels metadata, dimensions against the
 * vocabulary). KF_EINVAL naming the file for a bad model; device errors as device_backend_new.
 * Caller frees with infer_model_free. */
int infer_model_load(infer_model **out, const infer_options *o);
void infer_model_free(infer_model *m);

size_t infer_n_labels(const infer_model *m);
const char *infer_label(const infer_model *m, size_t i); /* NULL when i is out of range */
int infer_multi_label(const infer_model *m);
double infer_threshold(const infer_model *m);            /* the decision threshold in use */
int infer_max_batch(const infer_model *m);
const char *infer_lang(const infer_model *m);            /* "en", "fr", ... or "" */
const char *infer_device(const infer_model *m);          /* "cpu" | "cuda" */

/* probs (N, L) = the probabilities of texts[i][0..lens[i]) (UTF-8; invalid bytes and NUL are
 * tokenised as U+FFFD), n <= max_batch (KF_EINVAL otherwise); n_tokens (may be NULL) receives
 * the tokens of the batch. */
int infer_predict(infer_model *m, float *probs, const char *const *texts, const size_t *lens, size_t n,
                  size_t *n_tokens);

/* The predicted labels of one row of probabilities: multi-label, every label above the threshold
 * (possibly none); single-label, the argmax (first of ties). pred[L] receives 0/1. */
void infer_decide(const infer_model *m, unsigned char *pred, const float *probs);

#endif
