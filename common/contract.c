/* contract: the controller-trainer contract as tables and checks. See contract.h. */
#include "contract.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

const char *const contract_metric_keys[] = {"accuracy", "subsetAccuracy", "labelAccuracy", "microF1",
                                            "macroF1",  "loss",           "validLoss",     NULL};
const char *const contract_progress_keys[] = {"stage", "epoch", "epochs",  "step", "steps",
                                              "loss",  "percent", "etaSeconds", NULL};

/* ---- value rules ---- */

int contract_language_check(const char *lang)
{
    size_t n = 0;
    if (!lang)
        return err_set(KF_EINVAL, "language: missing");
    while (lang[n] >= 'a' && lang[n] <= 'z')
        n++;
    int ok = n >= 2 && n <= 3;
    if (ok && lang[n] == '-')
        ok = isupper((unsigned char)lang[n + 1]) && isupper((unsigned char)lang[n + 2]) && lang[n + 3] == 0 &&
             lang[n + 1] <= 'Z' && lang[n + 2] <= 'Z';
    else if (ok)
        ok = lang[n] == 0;
    if (!ok)
        return err_set(KF_EINVAL,
                       "language \"%s\" must be a 2-3 letter lowercase code with an optional uppercase region "
                       "(en, fr, pt-BR)",
                       lang);
    return 0;
}

static int is_ipv4(const char *s)
{
    int parts = 0;
    while (*s) {
        int digits = 0;
        while (isdigit((unsigned char)*s))
            s++, digits++;
        if (digits == 0 || digits > 3)
            return 0;
        parts++;
        if (*s == '.')
            s++;
        else if (*s)
            return 0;
    }
    return parts == 4;
}

int contract_gcs_bucket_check(const char *name)
{
    size_t n = name ? strlen(name) : 0, part = 0;
    const char *why = NULL;
    if (n < 3 || n > 222)
        why = "must be 3-63 characters (up to 222 with dots)";
    else if (!strchr(name, '.') && n > 63)
        why = "must be at most 63 characters without dots";
    else if (!isalnum((unsigned char)name[0]) || !isalnum((unsigned char)name[n - 1]))
        why = "must start and end with a lowercase letter or digit";
    else if (is_ipv4(name))
        why = "may not be an IP address";
    else if (!strncmp(name, "goog", 4) || strstr(name, "google"))
        why = "may not start with \"goog\" or contain \"google\"";
    for (size_t i = 0; !why && i < n; i++) {
        char c = name[i];
        if (!(islower((unsigned char)c) || isdigit((unsigned char)c) || c == '-' || c == '_' || c == '.'))
            why = "may hold only lowercase letters, digits, '-', '_' and '.'";
        else if (c == '.' && (i + 1 == n || name[i + 1] == '.' || part == 0))
            why = "may not have empty parts between dots";
        else if (c == '.')
            part = 0;
        else if (++part > 63)
            why = "may not have a dot-separated part over 63 characters";
    }
    return why ? err_set(KF_EINVAL, "bucket name \"%s\" %s", name ? name : "", why) : 0;
}

/* ---- the flag table ---- */

#define AT(field) offsetof(contract_args, field)
#define CTL CONTRACT_BY_CONTROLLER
#define USR CONTRACT_BY_USER

/* clang-format off */
const contract_flag contract_flags[] = {
    /* where the run reads and writes */
    {"lang", CONTRACT_TEXT, 0, 0, 0, 0, NULL, CTL, "spec.language", "",
     "language folder in the bucket (en, fr, pt-BR)  required", AT(lang)},
    {"bucket-name", CONTRACT_TEXT, 0, 0, 0, 0, NULL, CTL, "spec.storage.bucket", "",
     "gs://B, B, file:///path or a path: holds LANG/pretrained and LANG/data  required", AT(bucket_name)},
    {"model-dir", CONTRACT_TEXT, 0, 0, 0, 0, NULL, CTL, "spec.storage.modelDir", "",
     "outputs go to B/D/LANG/JOB/RUN/  required", AT(model_dir)},
    {"job", CONTRACT_TEXT, 0, 0, 0, 0, NULL, CTL, NULL, "default", "job name in the output path", AT(job)},
    {"run", CONTRACT_TEXT, 0, 0, 0, 0, NULL, CTL, NULL, "1", "run number in the output path", AT(run)},
    {"pretrained-uri", CONTRACT_TEXT, 0, 0, 0, 0, NULL, CTL, "spec.storage.pretrainedURI", "",
     "pretrained LM (default B/LANG/pretrained/lm.safetensors; given: must exist)", AT(pretrained_uri)},
    {"vocab-uri", CONTRACT_TEXT, 0, 0, 0, 0, NULL, CTL, "spec.storage.vocabURI", "",
     "its vocabulary (default B/LANG/pretrained/vocab.txt)", AT(vocab_uri)},
    {"train-uri", CONTRACT_TEXT, 0, 0, 0, 0, NULL, CTL, "spec.storage.trainURI", "",
     "labelled texts (default B/LANG/data/train.csv)", AT(train_uri)},
    {"valid-uri", CONTRACT_TEXT, 0, 0, 0, 0, NULL, CTL, "spec.storage.validURI", "",
     "validation texts (default B/LANG/data/valid.csv, else a split of train)", AT(valid_uri)},
    {"corpus-uri", CONTRACT_TEXT, 0, 0, 0, 0, NULL, CTL, "spec.storage.corpusURI", "",
     "unlabelled texts (default B/LANG/data/corpus.txt)", AT(corpus_uri)},
    {"data-dir", CONTRACT_TEXT, 0, 0, 0, 0, NULL, USR, NULL, "", "read the inputs from DIR instead of B/LANG",
     AT(data_dir)},
    /* training */
    {"stages", CONTRACT_LIST, 0, 0, 0, 0, "pretrain|finetune-lm|classifier", CTL, "spec.stages",
     "finetune-lm,classifier", "train: stages to run (always in this order)", AT(stages)},
    {"label-mode", CONTRACT_CHOICE, 0, 0, 0, 0, "auto|multi|single", CTL, "spec.labels.mode", "auto",
     "auto (from the data), multi (sigmoid + BCE) or single (softmax + CE)", AT(label_mode)},
    {"threshold", CONTRACT_NUMBER, 0, 1, 1, 1, NULL, CTL, "spec.labels.threshold", "0.5",
     "multi-label: a label is predicted above X (default: the model's)", AT(threshold)},
    {"epochs", CONTRACT_INT, 1, 1000, 0, 0, NULL, CTL, "spec.epochs", "4",
     "classifier epochs (gradual unfreezing: 1+1+1+rest)", AT(epochs)},
    {"batch-size", CONTRACT_INT, 2, 4096, 0, 0, NULL, CTL, "spec.batchSize", "64", "texts per batch", AT(batch_size)},
    {"lr", CONTRACT_NUMBER, 1e-12, 100, 0, 0, NULL, CTL, "spec.learningRate", "0.02",
     "classifier peak learning rate", AT(lr)},
    {"lm-lr", CONTRACT_NUMBER, 1e-12, 100, 0, 0, NULL, CTL, "spec.lmLearningRate", "",
     "language-model peak learning rate (default 0.002 pretrained, 0.01 from scratch)", AT(lm_lr)},
    {"emb-size", CONTRACT_INT, 1, 2048, 0, 0, NULL, CTL, "spec.model.embSize", "400",
     "embedding size (a pretrained model's own size wins)", AT(emb_size)},
    {"hidden-size", CONTRACT_INT, 1, 4096, 0, 0, NULL, CTL, "spec.model.hiddenSize", "1152", "LSTM hidden size",
     AT(hidden_size)},
    {"layers", CONTRACT_INT, 1, 8, 0, 0, NULL, CTL, "spec.model.layers", "3", "LSTM layers", AT(layers)},
    {"lm-epochs", CONTRACT_INT, 0, 1000, 0, 0, NULL, USR, NULL, "", "language-model epochs (default = --epochs)",
     AT(lm_epochs)},
    {"bptt", CONTRACT_INT, 1, 4096, 0, 0, NULL, USR, NULL, "72", "tokens per sequence chunk", AT(bptt)},
    {"max-vocab", CONTRACT_INT, 16, 1048560, 0, 0, NULL, USR, NULL, "60000",
     "vocabulary size limit (vocab x emb must stay under 2^31)", AT(max_vocab)},
    {"min-freq", CONTRACT_INT, 1, 1000000000, 0, 0, NULL, USR, NULL, "3", "a token needs this many uses",
     AT(min_freq)},
    {"drop-mult", CONTRACT_NUMBER, 0, 1.99, 0, 0, NULL, USR, NULL, "0.5", "dropout multiplier", AT(drop_mult)},
    {"wd", CONTRACT_NUMBER, 0, 10, 0, 0, NULL, USR, NULL, "0.01", "weight decay", AT(wd)},
    {"clip", CONTRACT_NUMBER, 0, 1e9, 0, 0, NULL, USR, NULL, "0", "clip gradients to this global norm (0: off)",
     AT(clip)},
    {"valid-frac", CONTRACT_NUMBER, 0.01, 0.99, 0, 0, NULL, USR, NULL, "0.2",
     "held-out share when there is no valid file", AT(valid_frac)},
    {"text-column", CONTRACT_TEXT, 0, 0, 0, 0, NULL, USR, NULL, "text", "CSV column / JSON key of the text",
     AT(text_column)},
    {"label-column", CONTRACT_TEXT, 0, 0, 0, 0, NULL, USR, NULL, "labels",
     "CSV column / JSON key of the labels (\"label\" is found too)", AT(label_column)},
    {"label-sep", CONTRACT_TEXT, 0, 0, 0, 0, NULL, USR, NULL, ";", "separator of several labels in one field",
     AT(label_sep)},
    {"skip-bad-rows", CONTRACT_SWITCH, 0, 0, 0, 0, NULL, USR, NULL, "", "skip (and count) malformed rows",
     AT(skip_bad_rows)},
    {"no-resume", CONTRACT_SWITCH, 0, 0, 0, 0, NULL, USR, NULL, "", "ignore an earlier attempt's checkpoint",
     AT(no_resume)},
    /* how it runs */
    {"device", CONTRACT_CHOICE, 0, 0, 0, 0, "auto|cpu|cuda", CTL, NULL, "auto",
     "auto (a GPU when usable, else the CPU), cpu, or cuda (fails without a usable GPU)", AT(device)},
    {"precision", CONTRACT_CHOICE, 0, 0, 0, 0, "fp32|tf32|bf16", USR, NULL, "fp32",
     "matrix products: GPU; bf16 also on CPUs with AMX-BF16",
     AT(precision)},
    {"seed", CONTRACT_INT, 0, 2147483647, 0, 0, NULL, USR, NULL, "42", "random seed", AT(seed)},
    {"threads", CONTRACT_INT, 0, 1024, 0, 0, NULL, USR, NULL, "0", "CPU threads (0: the CPU quota, else all cores)",
     AT(threads)},
    {"result-file", CONTRACT_TEXT, 0, 0, 0, 0, NULL, CTL, NULL, "",
     "compact result (default " CONTRACT_TERMINATION_LOG " when it exists)", AT(result_file)},
    {"progress-url", CONTRACT_TEXT, 0, 0, 0, 0, NULL, CTL, NULL, "", "also POST each progress line there",
     AT(progress_url)},
    {"work-dir", CONTRACT_TEXT, 0, 0, 0, 0, NULL, USR, NULL, "", "local scratch folder (default: a fresh one)",
     AT(work_dir)},
    {"dry-run", CONTRACT_SWITCH, 0, 0, 0, 0, NULL, USR, NULL, "",
     "check the arguments, print the resolved inputs and outputs (JSON) and exit", AT(dry_run)},
    {NULL, 0, 0, 0, 0, 0, NULL, 0, NULL, NULL, NULL, 0},
};
/* clang-format on */

const contract_flag *contract_flag_find(const char *name)
{
    for (const contract_flag *f = contract_flags; name && f->name; f++)
        if (!strcmp(f->name, name))
            return f;
    return NULL;
}

static const char *const COMMANDS[] = {"train", "pretrain", "evaluate", "predict"};

int contract_command_parse(contract_command *out, const char *name)
{
    for (int i = 0; i < 4; i++)
        if (name && !strcmp(name, COMMANDS[i])) {
            *out = (contract_command)i;
            return 0;
        }
    return err_set(KF_EINVAL, "unknown command '%s' (expected train, pretrain, evaluate or predict)",
                   name ? name : "");
}

const char *contract_command_name(contract_command c)
{
    return (unsigned)c < 4 ? COMMANDS[c] : "?";
}

/* Index of word (length n) in "a|b|c", or -1. */
static int choice_index(const char *choices, const char *word, size_t n)
{
    int k = 0;
    for (const char *p = choices;; k++) {
        size_t m = strcspn(p, "|");
        if (m == n && !strncmp(p, word, n))
            return k;
        if (!p[m])
            return -1;
        p += m + 1;
    }
}

static void choices_text(char *buf, size_t size, const char *choices)
{
    /* "a|b|c" -> "a, b or c" */
    size_t o = 0, count = 1;
    for (const char *p = choices; *p; p++)
        count += *p == '|';
    size_t k = 0;
    for (const char *p = choices; o + 8 < size;) {
        size_t m = strcspn(p, "|");
        o += (size_t)snprintf(buf + o, size - o, "%s%.*s", k == 0 ? "" : k + 1 == count ? " or " : ", ", (int)m, p);
        k++;
        if (!p[m] || o >= size)
            break;
        p += m + 1;
    }
}

static int bit_of(const contract_flag *f) { return (int)(f - contract_flags); }

int contract_is_set(const contract_args *a, const contract_flag *f)
{
    return (a->given >> bit_of(f)) & 1;
}

int contract_set(contract_args *a, const contract_flag *f, const char *text, const char *who)
{
    void *slot = (char *)a + f->offset;
    char *end, buf[96];
    if (f->kind == CONTRACT_SWITCH) {
        *(int *)slot = 1;
        a->given |= (uint64_t)1 << bit_of(f);
        return 0;
    }
    if (!text)
        return err_set(KF_EINVAL, "%s needs a value", who);
    switch (f->kind) {
    case CONTRACT_INT: {
        errno = 0;
        long x = strtol(text, &end, 10);
        if (errno || end == text || *end || x < (long)f->min || x > (long)f->max)
            return err_set(KF_EINVAL, "%s: expected an integer in [%.0f, %.0f], got \"%s\"", who, f->min, f->max,
                           text);
        *(long *)slot = x;
        break;
    }
    case CONTRACT_NUMBER: {
        errno = 0;
        double x = strtod(text, &end);
        int below = f->min_open ? !(x > f->min) : !(x >= f->min);
        int above = f->max_open ? !(x < f->max) : !(x <= f->max);
        if (errno || end == text || *end || !isfinite(x) || below || above)
            return err_set(KF_EINVAL, "%s: expected a number in %c%g, %g%c, got \"%s\"", who, f->min_open ? '(' : '[',
                           f->min, f->max, f->max_open ? ')' : ']', text);
        *(double *)slot = x;
        break;
    }
    case CONTRACT_CHOICE:
        if (choice_index(f->choices, text, strlen(text)) < 0) {
            choices_text(buf, sizeof buf, f->choices);
            return err_set(KF_EINVAL, "%s: expected %s, got \"%s\"", who, buf, text);
        }
        *(const char **)slot = text;
        break;
    case CONTRACT_LIST: {
        unsigned seen = 0;
        const char *p = text;
        for (;;) {
            size_t n = strcspn(p, ",");
            int k = choice_index(f->choices, p, n);
            if (k < 0) {
                choices_text(buf, sizeof buf, f->choices);
                return err_set(KF_EINVAL, "%s: unknown value '%.*s' in \"%s\" (expected %s)", who, (int)n, p, text,
                               buf);
            }
            if (seen & (1u << k))
                return err_set(KF_EINVAL, "%s: '%.*s' given twice in \"%s\"", who, (int)n, p, text);
            seen |= 1u << k;
            if (!p[n])
                break;
            p += n + 1;
        }
        *(const char **)slot = text;
        break;
    }
    case CONTRACT_TEXT:
        if (!*text)
            return err_set(KF_EINVAL, "%s: expected a value, got an empty string", who);
        if (!strcmp(f->name, "lang") && contract_language_check(text) < 0)
            return err_wrap(KF_EINVAL, "%s", who);
        *(const char **)slot = text;
        break;
    case CONTRACT_SWITCH:
        break;
    }
    a->given |= (uint64_t)1 << bit_of(f);
    return 0;
}

int contract_parse(contract_args *out, int argc, char **argv)
{
    memset(out, 0, sizeof *out);
    if (argc < 1 || !argv[0])
        return err_set(KF_EINVAL, "missing command (see --help)");
    if (!strcmp(argv[0], "-h") || !strcmp(argv[0], "--help") || !strcmp(argv[0], "help"))
        return 1;
    int rc = contract_command_parse(&out->command, argv[0]);
    if (rc < 0)
        return err_wrap(rc, "%s", "command line");
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *val = NULL, *eq;
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help"))
            return 1;
        if (strncmp(arg, "--", 2) != 0 || !arg[2])
            return err_set(KF_EINVAL, "unexpected argument '%s' (see --help)", arg);
        char name[64];
        size_t n = (eq = strchr(arg, '=')) ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        if (n >= sizeof name)
            return err_set(KF_EINVAL, "unknown option '%.80s' (see --help)", arg);
        memcpy(name, arg + 2, n);
        name[n] = 0;
        const contract_flag *f = contract_flag_find(name);
        if (!f)
            return err_set(KF_EINVAL, "unknown option '--%s' (see --help)", name);
        if (contract_is_set(out, f))
            return err_set(KF_EINVAL, "--%s given twice", name);
        if (f->kind == CONTRACT_SWITCH) {
            if (eq)
                return err_set(KF_EINVAL, "--%s takes no value", name);
        } else if (eq) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            return err_set(KF_EINVAL, "--%s needs a value", name);
        }
        char who[72];
        snprintf(who, sizeof who, "--%s", name);
        if ((rc = contract_set(out, f, val, who)) < 0)
            return rc;
    }
    const char *missing = !out->lang ? "--lang" : !out->bucket_name ? "--bucket-name" : !out->model_dir ? "--model-dir" : NULL;
    if (missing)
        return err_set(KF_EINVAL, "%s is required (see --help)", missing);
    if (out->stages && out->command != CONTRACT_TRAIN)
        return err_set(KF_EINVAL, "--stages applies to the train command only");
    return 0;
}

/* ---- rendering ---- */

static int argv_push(contract_argv *v, const char *s)
{
    char **grown = realloc(v->v, (v->n + 2) * sizeof *grown);
    if (!grown)
        return err_set(KF_ENOMEM, "contract: out of memory");
    v->v = grown;
    if (!(v->v[v->n] = strdup(s)))
        return err_set(KF_ENOMEM, "contract: out of memory");
    v->v[++v->n] = NULL;
    return 0;
}

/* The shortest %g text that reads back as x (0.02, not 0.020000000000000000). */
static void number_text(char *buf, size_t size, double x)
{
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, x);
        if (strtod(buf, NULL) == x)
            return;
    }
}

int contract_render(contract_argv *out, const contract_args *a)
{
    memset(out, 0, sizeof *out);
    int rc = argv_push(out, contract_command_name(a->command));
    for (const contract_flag *f = contract_flags; rc == 0 && f->name; f++) {
        if (!contract_is_set(a, f))
            continue;
        const void *slot = (const char *)a + f->offset;
        char flag[72], val[64];
        snprintf(flag, sizeof flag, "--%s", f->name);
        if ((rc = argv_push(out, flag)) < 0)
            break;
        switch (f->kind) {
        case CONTRACT_INT:
            snprintf(val, sizeof val, "%ld", *(const long *)slot);
            rc = argv_push(out, val);
            break;
        case CONTRACT_NUMBER:
            number_text(val, sizeof val, *(const double *)slot);
            rc = argv_push(out, val);
            break;
        case CONTRACT_SWITCH:
            break;
        default:
            rc = argv_push(out, *(const char *const *)slot);
        }
    }
    if (rc < 0)
        contract_argv_free(out);
    return rc;
}

void contract_argv_free(contract_argv *v)
{
    for (size_t i = 0; v && i < v->n; i++)
        free(v->v[i]);
    if (v)
        free(v->v);
    if (v)
        memset(v, 0, sizeof *v);
}

char *contract_usage(void)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f)
        return NULL;
    fputs("usage: kubefit-trainer <command> [options]\n"
          "\n"
          "commands:\n"
          "  pretrain   train the AWD-LSTM language model from scratch on LANG/data/corpus.txt (or train.csv)\n"
          "  train      fine-tune the language model, then train the classifier (ULMFiT)\n"
          "  evaluate   metrics of the trained model (B/D/LANG/JOB/RUN/) on LANG/data/valid.csv\n"
          "  predict    labels with probabilities, one JSON line per text read from stdin\n"
          "\n"
          "options (--flag VALUE or --flag=VALUE; each at most once):\n",
          f);
    for (const contract_flag *fl = contract_flags; fl->name; fl++) {
        char arg[48], range[96] = "";
        snprintf(arg, sizeof arg, "--%s%s", fl->name,
                 fl->kind == CONTRACT_SWITCH ? "" : fl->kind == CONTRACT_INT ? " N" : fl->kind == CONTRACT_NUMBER ? " X" : " V");
        if (fl->kind == CONTRACT_INT)
            snprintf(range, sizeof range, " [%.0f, %.0f]", fl->min, fl->max);
        else if (fl->kind == CONTRACT_NUMBER)
            snprintf(range, sizeof range, " %c%g, %g%c", fl->min_open ? '(' : '[', fl->min, fl->max,
                     fl->max_open ? ')' : ']');
        else if (fl->choices)
            snprintf(range, sizeof range, " {%s}", fl->choices);
        fprintf(f, "  %-20s %s%s%s%s%s\n", arg, fl->help, range, *fl->dflt ? " (default " : "", fl->dflt,
                *fl->dflt ? ")" : "");
    }
    fputs("  -h, --help           this text\n"
          "\n"
          "exit codes: 0 done, 2 bad input (do not retry), 3 transient failure (retry), other: crash\n",
          f);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
