/* modelio: model weights <-> safetensors, with fastai's state_dict names.
 * Language model: nn's names ("0.encoder.weight", "0.rnns.0.module.weight_ih_l0", ...,
 * "1.decoder.bias"). Classifier: the encoder under "0.module." (fastai SentenceEncoder), no
 * decoder, then the head's "1.layers.*" parameters and BatchNorm running statistics.
 * Tensors are stored once under their canonical name; loading also accepts any alias. */
#ifndef KUBEFIT_MODELIO_H
#define KUBEFIT_MODELIO_H

#include "classifier.h"
#include "nn.h"
#include "safetensors.h"
#include "vocab.h"

/* The file's name of nn tensor t (classifier: "0.X" -> "0.module.X"). Caller frees. */
char *modelio_name(const char *nn_name, int classifier);

/* Adds the encoder (+ decoder bias unless classifier) to w; *host holds the downloaded data the
 * writer points into (caller frees it after saving). A tensor holding NaN or infinity is
 * KF_EINVAL naming it (so no file is written with it); the same for the head below. */
int modelio_add_nn(st_writer *w, nn_model *m, int classifier, float **host);
/* Adds the head's parameters and running statistics (backend memory of be, the head's
 * backend); *host as above. */
int modelio_add_head(st_writer *w, head_clf *c, nn_backend *be, float **host);

/* Loads encoder weights. from_vocab NULL: the file has m's vocabulary; else rows are matched by
 * token (fastai match_embeds: tokens missing from the file get the mean embedding row and mean
 * decoder bias). from_classifier: the file uses classifier names. The decoder bias is loaded
 * only when m has one in use (classifier == 0) and the file has it. */
int modelio_load_nn(nn_model *m, const st_file *f, int from_classifier, const vocab *to_vocab,
                    const vocab *from_vocab);
/* Loads the head's parameters and running statistics (read on the host, then uploaded to be,
 * the head's backend); nothing changes when a tensor is missing or has a bad shape. */
int modelio_load_head(head_clf *c, nn_backend *be, const st_file *f);

/* Model dimensions stored in a file: V, E, H (0 when single layer), NL. */
int modelio_dims(const st_file *f, int classifier, int *V, int *E, int *H, int *NL);

/* What a trained classifier's file says about itself (the metadata run_save_model writes). */
typedef struct {
    char **labels;        /* kubefit.labels: label names in logit order [n_labels] */
    size_t n_labels;
    int multi_label;      /* kubefit.multi_label == "1" */
    double threshold;     /* kubefit.threshold when in (0,1), else 0 */
    int batch_size, bptt; /* kubefit.config's batchSize and bptt when in range, else 0 (a converted
                           * fastai model has no kubefit.config) */
    char *lang;           /* kubefit.config's "lang", or NULL */
} modelio_clf_meta;

/* Reads f's classifier metadata; KF_EINVAL naming name (the file, for messages) when the labels
 * are missing or not strings. Dispose with modelio_clf_meta_dispose (also after an error). */
int modelio_clf_meta_read(modelio_clf_meta *out, const st_file *f, const char *name);
void modelio_clf_meta_dispose(modelio_clf_meta *m);

#endif
