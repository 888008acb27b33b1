/* cli: argv -> run_opts through the contract's flag table (common/contract.c), so the trainer
 * accepts exactly what the controller renders: same flags, ranges and language rule. */
#include "cli.h"

#include <string.h>

#include "contract.h"
#include "err.h"

static run_label_mode label_mode_of(const char *v)
{
    return !v || !strcmp(v, "auto") ? RUN_LABELS_AUTO : !strcmp(v, "multi") ? RUN_LABELS_MULTI : RUN_LABELS_SINGLE;
}

/* "a,b" (already checked by the contract) -> RUN_STAGE_* bits. */
static int stages_of(const char *v)
{
    int bits = 0;
    if (strstr(v, "pretrain"))
        bits |= RUN_STAGE_PRETRAIN;
    if (strstr(v, "finetune-lm"))
        bits |= RUN_STAGE_FINETUNE_LM;
    if (strstr(v, "classifier"))
        bits |= RUN_STAGE_CLASSIFIER;
    return bits;
}

#define GIVEN(name) contract_is_set(&a, contract_flag_find(name))

cli_action cli_parse(run_opts *o, int argc, char **argv)
{
    contract_args a;
    *o = run_opts_default();
    if (argc < 2) {
        err_set(KF_EINVAL, "missing command (see --help)");
        return CLI_BAD;
    }
    int rc = contract_parse(&a, argc - 1, argv + 1);
    if (rc == 1)
        return CLI_HELP;
    if (rc < 0)
        return CLI_BAD;
    static const run_command commands[] = {RUN_TRAIN, RUN_PRETRAIN, RUN_EVALUATE, RUN_PREDICT};
    o->command = commands[a.command];
    o->lang = a.lang;
    o->bucket = a.bucket_name;
    o->model_dir = a.model_dir;
    o->data_dir = a.data_dir;
    o->job = a.job;
    o->run = a.run;
    o->result_file = a.result_file;
    o->progress_url = a.progress_url;
    o->work_dir = a.work_dir;
    o->pretrained_uri = a.pretrained_uri;
    o->vocab_uri = a.vocab_uri;
    o->train_uri = a.train_uri;
    o->valid_uri = a.valid_uri;
    o->corpus_uri = a.corpus_uri;
    if (a.device)
        o->device = a.device;
    if (a.precision)
        o->precision = a.precision;
    if (a.stages)
        o->stages = stages_of(a.stages);
    o->label_mode = label_mode_of(a.label_mode);
    if (GIVEN("seed")) o->seed = (uint64_t)a.seed;
    if (GIVEN("threads")) o->threads = (int)a.threads;
    if (GIVEN("epochs")) o->epochs = (int)a.epochs;
    if (GIVEN("lm-epochs")) o->lm_epochs = (int)a.lm_epochs;
    if (GIVEN("batch-size")) o->batch_size = (int)a.batch_size;
    if (GIVEN("bptt")) o->bptt = (int)a.bptt;
    if (GIVEN("emb-size")) o->emb = (int)a.emb_size;
    if (GIVEN("hidden-size")) o->hidden = (int)a.hidden_size;
    if (GIVEN("layers")) o->layers = (int)a.layers;
    if (GIVEN("max-vocab")) o->max_vocab = (int)a.max_vocab;
    if (GIVEN("min-freq")) o->min_freq = (int)a.min_freq;
    if (GIVEN("lr")) o->lr = a.lr;
    if (GIVEN("lm-lr")) o->lm_lr = a.lm_lr;
    if (GIVEN("drop-mult")) o->drop_mult = a.drop_mult;
    if (GIVEN("wd")) o->wd = a.wd;
    if (GIVEN("clip")) o->clip = a.clip;
    if (GIVEN("valid-frac")) o->valid_frac = a.valid_frac;
    if (GIVEN("threshold")) o->threshold = a.threshold;
    o->text_col = a.text_column;
    o->label_col = a.label_column;
    if (a.label_sep) { /* one printable ASCII character (a space too: fastai's label_delim) */
        const char *v = a.label_sep;
        if (strlen(v) != 1 || v[0] < 0x20 || v[0] > 0x7e || v[0] == '"') {
            err_set(KF_EINVAL, "--label-sep: expected one printable ASCII character other than \" (e.g. ; | , or a "
                               "space), got \"%s\"", v);
            return CLI_BAD;
        }
        o->label_sep = v[0];
    }
    if (o->text_col && o->label_col && strcmp(o->text_col, o->label_col) == 0) {
        err_set(KF_EINVAL, "--text-column and --label-column name the same column \"%s\"", o->text_col);
        return CLI_BAD;
    }
    o->skip_bad_rows = a.skip_bad_rows;
    if (a.no_resume)
        o->resume = 0;
    return a.dry_run ? CLI_DRY_RUN : CLI_RUN;
}
