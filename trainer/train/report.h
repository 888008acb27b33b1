/* report: the run's outputs as text - metrics.json, history.csv, the compact result (the
 * container termination message, <= 4096 bytes, docs/contract.md) - and the per-epoch history
 * they are made from. Producing text only; the caller stores it (storage layer). */
#ifndef KUBEFIT_REPORT_H
#define KUBEFIT_REPORT_H

#include <stddef.h>

#include "metrics.h"

#define REPORT_RESULT_MAX 4096

/* One epoch of one stage. Metrics that do not apply (a language model has no F1) are NaN and
 * appear as null in JSON and empty in CSV. accuracy: next-token (LM) or single-label accuracy;
 * a multi-label classifier epoch has subset_accuracy and label_accuracy instead (its JSON entry
 * has those keys and no "accuracy"). */
typedef struct {
    const char *stage;   /* static string: "pretrain", "finetune-lm", "classifier" */
    int epoch;           /* 1-based within the stage */
    double train_loss, valid_loss, accuracy, micro_f1, macro_f1, lr, seconds;
    double subset_accuracy, label_accuracy;
} report_epoch;

typedef struct {
    report_epoch *v;
    size_t n, cap;
} report_history;

int report_history_add(report_history *h, const report_epoch *e);
void report_history_dispose(report_history *h);
size_t report_history_count(const report_history *h, const char *stage);

/* The history as a compact JSON array (checkpoint metadata) and back; parse appends and maps
 * stage names to the static strings above (unknown stages are an error). */
int report_history_json(char **out, const report_history *h);
int report_history_parse(report_history *h, const char *json);

/* What metrics.json and the result say about the finished run. */
typedef struct {
    const char *stage;          /* the last stage run */
    int epochs;                 /* epochs of that stage */
    int multi_label;
    double threshold;           /* multi-label decision threshold; <= 0: 0.5 */
    const metrics_summary *valid;        /* final validation metrics (NULL: none) */
    char *const *label_names;            /* [valid->n_labels] */
    double train_loss;          /* last epoch's training loss */
    const report_history *history;
    long n_train, n_valid;
    const char *model_uri, *metrics_uri;
    double train_seconds;
    const char *device;         /* the backend the run used ("cpu", "cuda"); NULL: not said */
    /* Validation labels unseen in training (data.h): rows naming one, rows dropped for it
     * (single-label), the distinct names (the first REPORT_UNSEEN_SHOWN are listed). In
     * metrics.json as validUnseenLabels whenever valid is set. */
    long unseen_rows, unseen_dropped_rows;
    char *const *unseen_labels;
    size_t n_unseen_labels;
} report_run;

#define REPORT_UNSEEN_SHOWN 10

/* metrics.json (pretty-printed). Caller frees *out. */
int report_metrics_json(char **out, const report_run *r);
/* history.csv: header
 * stage,epoch,train_loss,valid_loss,accuracy,subset_accuracy,label_accuracy,micro_f1,macro_f1,lr,seconds. */
int report_history_csv(char **out, const report_history *h);
/* The compact result: at most REPORT_RESULT_MAX bytes; per-label entries most frequent first,
 * as many as fit. Caller frees *out. */
int report_result_json(char **out, const report_run *r);
/* A failure result: {"version":1,"phase":"Failed","reason":reason,"message":...}, the message
 * shortened (on a UTF-8 boundary) to fit. */
int report_failure_json(char **out, const char *reason, const char *message);

/* curves.svg (curves.c): per stage a loss panel (train and valid loss per epoch), plus a panel
 * of accuracy / micro F1 / macro F1 when the stage has them; axes, ticks, labels, legend. */
int report_curves_svg(char **out, const report_history *h);

#endif
