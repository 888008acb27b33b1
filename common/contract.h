/* contract: what the controller and every trainer image agree on, as code (docs/contract.md).
 *
 * kubefit-controller renders a TrainingJob into a contract_args and that into the trainer's argv
 * (controller/podspec.c); kubefit-trainer parses the argv back with the same table
 * (trainer/cli.c). Value ranges, the language and bucket rules, exit codes, result and progress
 * keys live here once; tests/contract checks that the CRD (crds/trainingjob.yaml) and
 * docs/contract.md say the same. */
#ifndef KUBEFIT_CONTRACT_H
#define KUBEFIT_CONTRACT_H

#include <stddef.h>
#include <stdint.h>

/* ---- exit codes and the result ---- */

enum {
    CONTRACT_EXIT_OK = 0,
    CONTRACT_EXIT_CRASH = 1,     /* anything else: retried, counted against backoffLimit */
    CONTRACT_EXIT_BAD_INPUT = 2, /* never retried: the job fails with reason BadInput */
    CONTRACT_EXIT_TRANSIENT = 3, /* retried with backoff (storage unavailable, preempted, no GPU) */
};

#define CONTRACT_RESULT_VERSION 1
#define CONTRACT_RESULT_MAX 4096 /* bytes: the kubelet's termination-message limit */
#define CONTRACT_TERMINATION_LOG "/dev/termination-log"
#define CONTRACT_NONROOT_UID 65532 /* the trainer image's user */
/* Progress reports are authenticated with a projected ServiceAccount token of this audience, which
 * the controller mounts into the trainer Pod; the trainer reads the file named by the env var
 * (re-read for every report: the kubelet rotates it) and sends it as a bearer token. */
#define CONTRACT_PROGRESS_AUDIENCE "kubefit"
#define CONTRACT_PROGRESS_TOKEN_ENV "KUBEFIT_PROGRESS_TOKEN_FILE"
#define CONTRACT_PROGRESS_TOKEN_DIR "/var/run/secrets/kubefit.dev/progress"
#define CONTRACT_PROGRESS_TOKEN_FILE CONTRACT_PROGRESS_TOKEN_DIR "/token"

/* Keys of the result object's "metrics" (the trainer writes those that apply, the controller
 * copies them into status.metrics). Multi-label runs report subsetAccuracy (exact match) and
 * labelAccuracy (per label); single-label runs report accuracy. NULL-terminated. */
extern const char *const contract_metric_keys[];
/* Keys of one progress report (stdout JSON line / POST body). NULL-terminated. */
extern const char *const contract_progress_keys[];

/* ---- value rules shared with the CRD ---- */

/* spec.language / --lang: ^[a-z]{2,3}(-[A-Z]{2})?$ (en, fr, pt-BR): the input folder's name. */
int contract_language_check(const char *lang);
/* A GCS bucket name as GCS allows it (3-63 characters, or up to 222 with dots and 63 per dot
 * part; a-z 0-9 - _ .; starts and ends with a letter or digit; not an IPv4 address; no "goog"
 * prefix and no "google"). */
int contract_gcs_bucket_check(const char *name);

/* ---- the trainer's arguments ---- */

typedef enum {
    CONTRACT_INT,    /* integer in [min, max] */
    CONTRACT_NUMBER, /* finite number in [min, max], ends open where min_open / max_open */
    CONTRACT_CHOICE, /* one of choices ("a|b|c") */
    CONTRACT_LIST,   /* a comma list of choices, each at most once, in the choices' order */
    CONTRACT_TEXT,   /* non-empty text */
    CONTRACT_SWITCH, /* a flag without a value */
} contract_kind;

/* Who sets a flag on a controller-made Pod. */
typedef enum {
    CONTRACT_BY_USER,       /* only through spec.args (trainer knobs without a spec field) */
    CONTRACT_BY_CONTROLLER, /* rendered from the spec or the job; spec.args may not set it */
} contract_owner;

typedef struct {
    const char *name;   /* without "--" */
    contract_kind kind;
    double min, max;
    unsigned char min_open, max_open;
    const char *choices;
    contract_owner owner;
    const char *field;  /* the TrainingJob field it comes from ("spec.model.embSize"); NULL: none */
    const char *dflt;   /* the trainer's default, as text ("" when none) */
    const char *help;
    size_t offset;      /* of its value in contract_args (long, double, const char * or int by kind) */
} contract_flag;

/* Every flag, NULL-name terminated, in the order podspec renders them. */
extern const contract_flag contract_flags[];
const contract_flag *contract_flag_find(const char *name);

typedef enum { CONTRACT_TRAIN, CONTRACT_PRETRAIN, CONTRACT_EVALUATE, CONTRACT_PREDICT } contract_command;

/* Parsed (or to-be-rendered) arguments. Text values are borrowed from argv or the caller. */
typedef struct {
    contract_command command;
    const char *lang, *bucket_name, *model_dir, *job, *run, *data_dir;
    const char *pretrained_uri, *vocab_uri, *train_uri, *valid_uri, *corpus_uri;
    const char *text_column, *label_column, *label_sep;
    const char *stages, *label_mode, *device, *precision;
    const char *result_file, *progress_url, *work_dir;
    long epochs, lm_epochs, batch_size, bptt, emb_size, hidden_size, layers, max_vocab, min_freq, seed,
        threads;
    double lr, lm_lr, threshold, drop_mult, wd, clip, valid_frac;
    int skip_bad_rows, no_resume, dry_run;
    uint64_t given; /* bit i: contract_flags[i] is set */
} contract_args;

/* "train" -> CONTRACT_TRAIN; KF_EINVAL for an unknown command. */
int contract_command_parse(contract_command *out, const char *name);
const char *contract_command_name(contract_command c);

/* Checks text as the value of f and stores it in a (borrowing text). who names the value in
 * errors: "--batch-size" on the command line, "spec.batchSize" in the controller. */
int contract_set(contract_args *a, const contract_flag *f, const char *text, const char *who);
int contract_is_set(const contract_args *a, const contract_flag *f);

/* Parses argv[0] = command, then --flag VALUE / --flag=VALUE / switches. A flag given twice, an
 * unknown flag, a bad value, a missing --lang/--bucket-name/--model-dir or a bad language is
 * KF_EINVAL naming the flag. Returns 1 (not an error) when --help/-h is seen. Borrows argv. */
int contract_parse(contract_args *out, int argc, char **argv);

/* The argv for a: command first, then every set flag in table order, values in the shortest
 * text that reads back the same. Caller frees with contract_argv_free. */
typedef struct {
    char **v;
    size_t n;
} contract_argv;
int contract_render(contract_argv *out, const contract_args *a);
void contract_argv_free(contract_argv *v);

/* The trainer's --help text (from the table). Caller frees. */
char *contract_usage(void);

#endif
