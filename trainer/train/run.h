/* run: one trainer command end to end - inputs from the storage layout, the stages, checkpoints
 * (resume), outputs and the compact result. The CLI (trainer/cli.c) fills run_opts. */
#ifndef KUBEFIT_RUN_H
#define KUBEFIT_RUN_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

typedef enum { RUN_PRETRAIN, RUN_TRAIN, RUN_EVALUATE, RUN_PREDICT } run_command;

/* Stages of `train` (bit set; they always run in this order). */
enum { RUN_STAGE_PRETRAIN = 1, RUN_STAGE_FINETUNE_LM = 2, RUN_STAGE_CLASSIFIER = 4 };
#define RUN_STAGES_DEFAULT (RUN_STAGE_FINETUNE_LM | RUN_STAGE_CLASSIFIER)

/* Label mode of the classifier: inferred from the data (a row with != 1 label -> multi), or forced. */
typedef enum { RUN_LABELS_AUTO, RUN_LABELS_MULTI, RUN_LABELS_SINGLE } run_label_mode;

typedef struct {
    run_command command;
    const char *lang, *bucket, *model_dir, *data_dir, *job, *run;
    const char *device;        /* auto | cpu | cuda */
    const char *precision;     /* GPU matrix products: fp32 | tf32 | bf16 (NULL: fp32) */
    const char *result_file;   /* NULL: /dev/termination-log when it exists */
    const char *progress_url;
    const char *work_dir;      /* NULL: a fresh temporary folder */
    uint64_t seed;
    int threads;               /* <= 0: all cores */
    int epochs;                /* classifier epochs (gradual unfreezing plan) */
    int lm_epochs;             /* LM fine-tuning epochs; < 0: same as epochs */
    int batch_size, bptt;
    double lr, lm_lr;          /* lm_lr <= 0: 2e-3 with a pretrained LM, 1e-2 without */
    int emb, hidden, layers;
    int max_vocab, min_freq;
    double drop_mult, wd, clip, valid_frac;
    int skip_bad_rows;
    int stages;                /* RUN_STAGE_* bits (train); 0: RUN_STAGES_DEFAULT */
    run_label_mode label_mode;
    double threshold;          /* multi-label decision threshold in (0,1); 0: the model's, else 0.5 */
    /* Data columns / keys (NULL: "text"; "labels", else "label") and the label separator (0: ';'). */
    const char *text_col, *label_col;
    char label_sep;
    /* Input overrides (full URIs or paths); NULL: the storage layout's default. A named input must
     * exist; only the defaults may be absent. */
    const char *pretrained_uri, *vocab_uri, *train_uri, *valid_uri, *corpus_uri;
    int resume;                /* 1: continue from a checkpoint in the output folder */
    const volatile sig_atomic_t *stop; /* see fit_ctx.stop (main sets it on SIGTERM/SIGINT) */
    FILE *in, *out;            /* predict: texts in, JSON lines out (default stdin/stdout) */
} run_opts;

/* Defaults as documented in docs/trainer.md. */
run_opts run_opts_default(void);

/* Runs the command; returns 0 or a negative KF_E* code with err_msg() set. The result file is
 * written in both cases. */
int run_main(const run_opts *o);

/* Exit status for a run_main return code: 0, 2 (bad input), 3 (transient), 1 (other). */
int run_exit_code(int rc);

#endif
