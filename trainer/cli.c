/* cli: flags -> run_opts. Every flag takes a value (--flag V or --flag=V) except --help,
 * --skip-bad-rows and --no-resume. */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

const char cli_usage[] =
    "usage: kubefit-trainer <command> [options]\n"
    "\n"
    "commands:\n"
    "  pretrain   train the AWD-LSTM language model from scratch on LANG/data/corpus.txt (or train.csv)\n"
    "  train      fine-tune the language model, then train the classifier (ULMFiT)\n"
    "  evaluate   metrics of the trained model (B/D/LANG/JOB/RUN/) on LANG/data/valid.csv\n"
    "  predict    labels with probabilities, one JSON line per text read from stdin\n"
    "\n"
    "storage (gs://B, file:///path or a local path):\n"
    "  --lang L            language folder in the bucket (en, fr, ...)           required\n"
    "  --bucket-name B     bucket holding LANG/pretrained and LANG/data         required\n"
    "  --model-dir D       outputs go to B/D/LANG/JOB/RUN/                       required\n"
    "  --job NAME          default \"default\"\n"
    "  --run N             default \"1\"\n"
    "  --data-dir DIR      read the inputs from DIR instead of B/LANG\n"
    "  --pretrained-uri U  pretrained LM       default B/LANG/pretrained/lm.safetensors\n"
    "  --vocab-uri U       its vocabulary      default B/LANG/pretrained/vocab.txt\n"
    "  --train-uri U       labelled texts      default B/LANG/data/train.csv\n"
    "  --valid-uri U       validation texts    default B/LANG/data/valid.csv (else a split of train)\n"
    "  --corpus-uri U      unlabelled texts    default B/LANG/data/corpus.txt\n"
    "training:\n"
    "  --stages S,...      train: any of pretrain, finetune-lm, classifier, run in that order;\n"
    "                      without classifier the run ends with the LM saved  default finetune-lm,classifier\n"
    "  --label-mode M      auto (inferred from the data) | multi | single        default auto\n"
    "  --threshold X       multi-label: a label is predicted above X (0<X<1)     default 0.5 (the model's)\n"
    "  --epochs N          classifier epochs (gradual unfreezing: 1+1+1+rest)   default 4\n"
    "  --lm-epochs N       language-model fine-tuning epochs                     default = --epochs\n"
    "  --lr X              classifier learning rate                              default 0.02\n"
    "  --lm-lr X           language-model learning rate    default 0.002 (pretrained) / 0.01\n"
    "  --batch-size N      default 64\n"
    "  --bptt N            default 72\n"
    "  --emb-size N        default 400 (a pretrained model's own size wins)\n"
    "  --hidden-size N     default 1152\n"
    "  --layers N          default 3\n"
    "  --max-vocab N       default 60000\n"
    "  --min-freq N        default 3\n"
    "  --drop-mult X       dropout multiplier                                    default 0.5\n"
    "  --wd X              weight decay                                          default 0.01\n"
    "  --clip X            clip gradients to this global norm (0 = off)          default 0\n"
    "  --valid-frac X      held-out share when there is no valid.csv             default 0.2\n"
    "  --skip-bad-rows     skip (and count) malformed rows instead of failing\n"
    "  --no-resume         ignore a checkpoint left by an earlier attempt\n"
    "run:\n"
    "  --device D          auto | cpu | cuda (no GPU: the CPU, with a warning)   default auto\n"
    "  --precision P       GPU matrix products: fp32 | tf32 | bf16              default fp32\n"
    "  --seed S            default 42\n"
    "  --threads T         CPU threads (0 = all cores)                           default 0\n"
    "  --result-file PATH  compact result (default /dev/termination-log when it exists)\n"
    "  --progress-url URL  also POST each progress line there (best effort)\n"
    "  --work-dir DIR      local scratch folder (default a fresh one under $TMPDIR)\n"
    "  -h, --help          this text\n"
    "\n"
    "exit codes: 0 done, 2 bad input (do not retry), 3 transient failure (retry), other: crash\n";

static int parse_int(int *out, const char *flag, const char *v, long lo, long hi)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        return err_set(KF_EINVAL, "%s: expected an integer in [%ld, %ld], got \"%s\"", flag, lo, hi, v);
    *out = (int)x;
    return 0;
}

static int parse_double(double *out, const char *flag, const char *v, double lo, double hi)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !(x >= lo && x <= hi))
        return err_set(KF_EINVAL, "%s: expected a number in [%g, %g], got \"%s\"", flag, lo, hi, v);
    *out = x;
    return 0;
}

/* A number strictly between 0 and 1. */
static int parse_fraction(double *out, const char *flag, const char *v)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !(x > 0 && x < 1))
        return err_set(KF_EINVAL, "%s: expected a number strictly between 0 and 1, got \"%s\"", flag, v);
    *out = x;
    return 0;
}

/* fp32 | tf32 | bf16 (run.c hands it to the CUDA backend; the CPU always computes in fp32). */
static int parse_precision(const char **out, const char *flag, const char *v)
{
    if (strcmp(v, "fp32") != 0 && strcmp(v, "tf32") != 0 && strcmp(v, "bf16") != 0)
        return err_set(KF_EINVAL, "%s: expected fp32, tf32 or bf16, got \"%s\"", flag, v);
    *out = v;
    return 0;
}

/* "a,b,c" -> RUN_STAGE_* bits; unknown or repeated names are errors. */
static int parse_stages(int *out, const char *flag, const char *v)
{
    static const char *const names[] = {"pretrain", "finetune-lm", "classifier"};
    int bits = 0;
    const char *p = v;
    for (;;) {
        size_t n = strcspn(p, ",");
        int k = 0;
        while (k < 3 && !(strlen(names[k]) == n && strncmp(p, names[k], n) == 0))
            k++;
        if (k == 3)
            return err_set(KF_EINVAL, "%s: unknown stage '%.*s' in \"%s\" (expected pretrain, finetune-lm, classifier)",
                           flag, (int)n, p, v);
        if (bits & (1 << k))
            return err_set(KF_EINVAL, "%s: stage '%s' given twice in \"%s\"", flag, names[k], v);
        bits |= 1 << k;
        if (!p[n])
            break;
        p += n + 1;
    }
    *out = bits;
    return 0;
}

static int parse_label_mode(run_label_mode *out, const char *flag, const char *v)
{
    if (!strcmp(v, "auto"))
        *out = RUN_LABELS_AUTO;
    else if (!strcmp(v, "multi"))
        *out = RUN_LABELS_MULTI;
    else if (!strcmp(v, "single"))
        *out = RUN_LABELS_SINGLE;
    else
        return err_set(KF_EINVAL, "%s: expected auto, multi or single, got \"%s\"", flag, v);
    return 0;
}

static int set_uri(const char **out, const char *flag, const char *v)
{
    if (!*v)
        return err_set(KF_EINVAL, "%s: expected a URI or path, got an empty string", flag);
    *out = v;
    return 0;
}

cli_action cli_parse(run_opts *o, int argc, char **argv)
{
    *o = run_opts_default();
    if (argc < 2) {
        err_set(KF_EINVAL, "missing command (see --help)");
        return CLI_BAD;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help"))
        return CLI_HELP;
    if (!strcmp(cmd, "train"))
        o->command = RUN_TRAIN;
    else if (!strcmp(cmd, "pretrain"))
        o->command = RUN_PRETRAIN;
    else if (!strcmp(cmd, "evaluate"))
        o->command = RUN_EVALUATE;
    else if (!strcmp(cmd, "predict"))
        o->command = RUN_PREDICT;
    else {
        err_set(KF_EINVAL, "unknown command '%s' (see --help)", cmd);
        return CLI_BAD;
    }
    for (int i = 2; i < argc; i++) {
        char *arg = argv[i], *val = NULL, *eq;
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help"))
            return CLI_HELP;
        if (!strcmp(arg, "--skip-bad-rows")) {
            o->skip_bad_rows = 1;
            continue;
        }
        if (!strcmp(arg, "--no-resume")) {
            o->resume = 0;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0) {
            err_set(KF_EINVAL, "unexpected argument '%s' (see --help)", arg);
            return CLI_BAD;
        }
        if ((eq = strchr(arg, '='))) {
            *eq = 0;
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            err_set(KF_EINVAL, "%s needs a value", arg);
            return CLI_BAD;
        }
        int rc = 0, seed = 0;
        const char *f = arg + 2;
        if (!strcmp(f, "lang")) o->lang = val;
        else if (!strcmp(f, "bucket-name")) o->bucket = val;
        else if (!strcmp(f, "model-dir")) o->model_dir = val;
        else if (!strcmp(f, "data-dir")) o->data_dir = val;
        else if (!strcmp(f, "job")) o->job = val;
        else if (!strcmp(f, "run")) o->run = val;
        else if (!strcmp(f, "device")) o->device = val;
        else if (!strcmp(f, "precision")) rc = parse_precision(&o->precision, arg, val);
        else if (!strcmp(f, "result-file")) o->result_file = val;
        else if (!strcmp(f, "progress-url")) o->progress_url = val;
        else if (!strcmp(f, "work-dir")) o->work_dir = val;
        else if (!strcmp(f, "seed")) { rc = parse_int(&seed, arg, val, 0, INT_MAX); o->seed = (uint64_t)seed; }
        else if (!strcmp(f, "threads")) rc = parse_int(&o->threads, arg, val, 0, 1024);
        else if (!strcmp(f, "epochs")) rc = parse_int(&o->epochs, arg, val, 1, 100000);
        else if (!strcmp(f, "lm-epochs")) rc = parse_int(&o->lm_epochs, arg, val, 0, 100000);
        else if (!strcmp(f, "batch-size")) rc = parse_int(&o->batch_size, arg, val, 2, 1 << 16);
        else if (!strcmp(f, "bptt")) rc = parse_int(&o->bptt, arg, val, 1, 1 << 16);
        else if (!strcmp(f, "emb-size")) rc = parse_int(&o->emb, arg, val, 1, 1 << 16);
        else if (!strcmp(f, "hidden-size")) rc = parse_int(&o->hidden, arg, val, 1, 1 << 16);
        else if (!strcmp(f, "layers")) rc = parse_int(&o->layers, arg, val, 1, 8);
        else if (!strcmp(f, "max-vocab")) rc = parse_int(&o->max_vocab, arg, val, 16, 1 << 24);
        else if (!strcmp(f, "min-freq")) rc = parse_int(&o->min_freq, arg, val, 1, INT_MAX);
        else if (!strcmp(f, "lr")) rc = parse_double(&o->lr, arg, val, 1e-12, 100);
        else if (!strcmp(f, "lm-lr")) rc = parse_double(&o->lm_lr, arg, val, 1e-12, 100);
        else if (!strcmp(f, "drop-mult")) rc = parse_double(&o->drop_mult, arg, val, 0, 1.99);
        else if (!strcmp(f, "wd")) rc = parse_double(&o->wd, arg, val, 0, 10);
        else if (!strcmp(f, "clip")) rc = parse_double(&o->clip, arg, val, 0, 1e9);
        else if (!strcmp(f, "valid-frac")) rc = parse_double(&o->valid_frac, arg, val, 0.01, 0.99);
        else if (!strcmp(f, "threshold")) rc = parse_fraction(&o->threshold, arg, val);
        else if (!strcmp(f, "stages")) rc = parse_stages(&o->stages, arg, val);
        else if (!strcmp(f, "label-mode")) rc = parse_label_mode(&o->label_mode, arg, val);
        else if (!strcmp(f, "pretrained-uri")) rc = set_uri(&o->pretrained_uri, arg, val);
        else if (!strcmp(f, "vocab-uri")) rc = set_uri(&o->vocab_uri, arg, val);
        else if (!strcmp(f, "train-uri")) rc = set_uri(&o->train_uri, arg, val);
        else if (!strcmp(f, "valid-uri")) rc = set_uri(&o->valid_uri, arg, val);
        else if (!strcmp(f, "corpus-uri")) rc = set_uri(&o->corpus_uri, arg, val);
        else {
            err_set(KF_EINVAL, "unknown option '%s' (see --help)", arg);
            return CLI_BAD;
        }
        if (rc < 0)
            return CLI_BAD;
    }
    const char *missing = !o->lang ? "--lang" : !o->bucket ? "--bucket-name" : !o->model_dir ? "--model-dir" : NULL;
    if (missing) {
        err_set(KF_EINVAL, "%s is required (see --help)", missing);
        return CLI_BAD;
    }
    if (o->stages && o->command != RUN_TRAIN) {
        err_set(KF_EINVAL, "--stages applies to the train command only");
        return CLI_BAD;
    }
    return CLI_RUN;
}
