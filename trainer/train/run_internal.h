/* run_internal: what the trainer's command flow (run.c: train, pretrain), its inference side
 * (run_infer.c: evaluate, predict) and its storage side (run_io.c) share: the state of one run
 * and the helpers that fetch inputs and write outputs. Internal to trainer/train. */
#ifndef KUBEFIT_RUN_INTERNAL_H
#define KUBEFIT_RUN_INTERNAL_H

#include "data.h"
#include "fit.h"
#include "run.h"
#include "safetensors.h"
#include "storage/layout.h"
#include "storage/storage.h"

#define RUN_MAX_FETCHED 8

/* Everything one run holds; released by run_dispose. */
typedef struct {
    const run_opts *o;
    storage *st;
    storage_layout lay;
    char *work;
    nn_backend *be;
    data_set data;
    vocab *pre_vocab;
    st_file *pre_lm, *ckpt;
    nn_model *lm, *clf;
    head_clf *head;
    fit_lm flm;
    fit_clf fclf;
    int have_flm, have_fclf;
    report_history hist;
    progress *prog;
    fit_ctx fc;
    const char *ckpt_stage; /* stage recorded in the checkpoint */
    int ckpt_epoch;
    double t0;
    char *fetched[RUN_MAX_FETCHED][2]; /* (local copy, URI) of every input fetched */
    int n_fetched;
} run_state;

/* Downloads uri into the work folder as name; a name without '.' gets the URI's extension
 * ("train" + gs://b/x/data.jsonl -> train.jsonl), so the data loaders read the format the URI
 * names. *local = NULL when the object does not exist (an error when required). */
int run_fetch(run_state *r, const char *uri, const char *name, int required, char **local);

/* The layout's default train/valid files: LANG/data/train.csv, or train.jsonl when only that
 * exists (both: bad input, naming them); the same for valid. Inputs named by a flag are left
 * as given. */
int run_resolve_inputs(run_state *r);

/* KF_EINVAL naming local (shown as its URI) and the tensor when a weights file holds NaN or
 * infinity. */
int run_check_weights(const st_file *f, const char *local);

/* The classifier (encoder + head) for the run's labels, with r->fc's batch size and BPTT. */
int run_build_classifier(run_state *r);

/* evaluate / predict (run_infer.c). */
int run_evaluate(run_state *r, char **result);
int run_predict(run_state *r);

/* msg with every local copy's path replaced by the URI it was fetched from, so that a data
 * error says "gs://b/en/train.csv:12: ..." rather than naming a temporary file. Caller frees;
 * NULL when out of memory. */
char *run_with_uris(const run_state *r, const char *msg);

/* Uploads a writer's bytes to uri. */
int run_put_st(run_state *r, st_writer *w, const char *uri);

/* Writes the run's vocabulary (one token per line) to uri. */
int run_write_vocab(run_state *r, const char *uri);

/* Serialises the model being trained (+ optimizer state when opt) into a writer. */
int run_add_model(run_state *r, st_writer *w, int classifier, optim *opt, float **h1, float **h2);

/* Writes metrics.json, history.csv, curves.svg, config.json, and fills the result. */
int run_write_outputs(run_state *r, const char *stage, int epochs, const metrics_summary *valid,
                      double train_loss, const char *model_uri, char **result);

/* Saves the language model or the classifier (safetensors, fastai names) to uri. */
int run_save_model(run_state *r, int classifier, const char *uri);

/* Deletes the checkpoint of a finished run (best effort: it has served its purpose). */
void run_drop_checkpoint(run_state *r);

/* Writes the result JSON to --result-file (or /dev/termination-log when it exists); a failure
 * to write is logged, not fatal. */
void run_write_result(const run_opts *o, const char *text);

#endif
