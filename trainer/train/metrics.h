/* metrics: classification counts and scores.
 *
 * Dimensions: B samples in a batch, L labels.
 * Multi-label (sigmoid, threshold 0.5): a label is predicted when its probability is > thresh;
 * subset accuracy is the fraction of rows whose predicted label set is exactly the true one
 * (sklearn's accuracy_score on label matrices) and label accuracy is element-wise over B*L
 * (fastai accuracy_multi, Hamming). Single-label: the prediction is the argmax; accuracy is the
 * fraction of rows whose argmax is the target.
 * F1 as sklearn's f1_score: per label 2tp/(2tp+fp+fn), 0 when undefined; micro pools the counts;
 * macro averages per-label F1 over all L labels (multi-label) or over the labels present in the
 * targets or predictions (single-label, sklearn's default label set). */
#ifndef KUBEFIT_METRICS_H
#define KUBEFIT_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int n_labels;
    int multi_label;
    double thresh;     /* multi-label decision threshold, default 0.5 */
    int64_t *tp, *fp, *fn; /* [L] */
    int64_t n;         /* samples seen */
    int64_t correct;   /* single: rows right; multi: elements right */
    int64_t exact;     /* rows with every label right (multi-label; single: = correct) */
    double loss_sum;   /* sum of per-batch mean losses weighted by batch size */
} metrics_acc;

typedef struct {
    double precision, recall, f1;
    int64_t support, tp, fp, fn;
} metrics_label;

typedef struct {
    /* single-label: accuracy (subset/label accuracy NaN); multi-label: subset_accuracy and
     * label_accuracy (accuracy NaN: the two must not be confused, so neither is "accuracy") */
    double accuracy, subset_accuracy, label_accuracy, micro_f1, macro_f1, loss;
    int64_t n;
    int n_labels;
    metrics_label *labels; /* [L] */
} metrics_summary;

int metrics_init(metrics_acc *m, int n_labels, int multi_label);
void metrics_dispose(metrics_acc *m);
void metrics_reset(metrics_acc *m);
/* probs [B, L] row-major (probabilities or logits' sigmoid/softmax); targets: multi-label a
 * 0/1 matrix [B, L], single-label a class index per row [B] (as float, integral). loss is the
 * batch's mean loss (added weighted by B). */
void metrics_add(metrics_acc *m, const float *probs, const float *targets, int B, double loss);
/* Fills s (allocates s->labels; dispose with metrics_summary_dispose). */
int metrics_summarize(metrics_summary *s, const metrics_acc *m);
void metrics_summary_dispose(metrics_summary *s);
/* Recomputes accuracy (single-label) or label accuracy (multi-label: n*L elements), micro and
 * macro F1 from per-label counts: what a reader of metrics.json can check. Subset accuracy cannot
 * be recomputed from per-label counts and is left as it is. */
void metrics_from_counts(metrics_summary *s, int multi_label);

#endif
