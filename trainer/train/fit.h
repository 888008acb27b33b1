/* fit: the training loops - language model (fit_one_cycle) and classifier (ULMFiT gradual
 * unfreezing) - and evaluation, on any nn_backend.
 *
 * Dimension legend: B batch, T BPTT chunk (72), S padded length, V vocab, E embedding, L labels,
 * NL LSTM layers, G parameter groups (LM: NL+1, classifier: NL+2 as fastai's splitters).
 * Memory: everything a step touches (model, head, activations, optimizer state, scratch) is
 * allocated by fit_*_init for the stage; the step loops only upload a batch and download the
 * loss (and, in evaluation, logits or a hit count). */
#ifndef KUBEFIT_FIT_H
#define KUBEFIT_FIT_H

#include <signal.h>

#include "classifier.h"
#include "data.h"
#include "metrics.h"
#include "nn.h"
#include "optim.h"
#include "progress.h"
#include "report.h"
#include "sentence.h"

/* Shared by every stage of a run. */
typedef struct fit_ctx {
    nn_backend *be;
    progress *prog;          /* may be NULL */
    report_history *hist;
    uint64_t seed;
    int B, bptt;
    double clip;             /* global grad-norm clip, <= 0 off */
    double wd;
    double threshold;        /* multi-label decision threshold; <= 0: 0.5 */
    long steps_done, steps_total; /* whole run, for percent and ETA */
    double t_start;          /* monotonic seconds at the run's start */
    /* Called after every finished epoch (e = epochs done in the stage); non-zero rc stops. */
    int (*on_epoch)(void *ctx, const char *stage, int epochs_done);
    void *cb;
    /* When set and non-zero (SIGTERM: preemption), stop at the next step with KF_ERETRY; the
     * last epoch checkpoint is where the next attempt resumes. */
    const volatile sig_atomic_t *stop;
} fit_ctx;

double fit_now(void);

/* ---- language model ---- */
typedef struct {
    nn_model *m;   /* borrowed */
    nn_acts *a;
    optim *opt;
    int32_t *x, *y; /* (B,T) host */
    float *hits;    /* (T,B) backend memory: argmax hits for the accuracy (backends with the
                       argmax_hits op; NULL on the CPU backend, which counts on the host) */
} fit_lm;

int fit_lm_init(fit_lm *f, fit_ctx *c, nn_model *m);
void fit_lm_dispose(fit_lm *f);
/* Steps one epoch of fit_one_cycle takes with this data (for progress planning). */
long fit_lm_steps(const fit_ctx *c, const data_docs *train);
/* fit_one_cycle(epochs, lr) from epoch start_epoch (resume); records history. */
int fit_lm_run(fit_ctx *c, fit_lm *f, const char *stage, const data_docs *train, const data_docs *valid,
               int epochs, int start_epoch, double lr);
/* Mean cross-entropy and next-token accuracy (NaN when not measurable) over valid. */
int fit_lm_eval(fit_ctx *c, fit_lm *f, const data_docs *valid, double *loss, double *accuracy);

/* ---- classifier ---- */
typedef struct {
    nn_model *m;        /* borrowed, built with nn_config_clas */
    head_clf *head;     /* borrowed */
    head_sentence *s;
    optim *opt;
    int n_groups;
    char **names;       /* optimizer tensor names (owned) */
    int L, multi_label;
} fit_clf;

int fit_clf_init(fit_clf *f, fit_ctx *c, nn_model *m, head_clf *head, int L, int multi_label);
void fit_clf_dispose(fit_clf *f);
long fit_clf_steps(const fit_ctx *c, const data_set *d);
/* The gradual-unfreezing plan for `epochs` classifier epochs: phase k trains with
 * freeze_to(freeze[k]) for n[k] epochs at base lr times mult[k]. Returns the phase count. */
int fit_clf_plan(int epochs, int freeze[4], int n[4], double mult[4]);
int fit_clf_run(fit_ctx *c, fit_clf *f, const data_set *d, int epochs, int start_epoch, double lr,
                metrics_summary *final);
/* Validation metrics over docs/targets (s filled; dispose with metrics_summary_dispose). */
int fit_clf_eval(fit_ctx *c, fit_clf *f, const data_docs *docs, const float *y, metrics_summary *s);
/* Probabilities (L) for one numericalised text. */
int fit_clf_predict(fit_ctx *c, fit_clf *f, const int32_t *ids, size_t n, float *probs);

#endif
