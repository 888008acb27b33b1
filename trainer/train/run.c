/* run: one trainer command end to end. See run.h and docs/trainer.md. */
#define _XOPEN_SOURCE 700
#include "run_internal.h"

#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data.h"
#include "device.h"
#include "err.h"
#include "fit.h"
#include "log.h"
#include "loss.h"
#include "modelio.h"
#include "report.h"
#include "safetensors.h"
#include "storage/layout.h"
#include "storage/storage.h"

run_opts run_opts_default(void)
{
    return (run_opts){.command = RUN_TRAIN, .device = "auto", .precision = "fp32", .seed = 42, .threads = 0, .epochs = 4,
                      .lm_epochs = -1, .batch_size = 64, .bptt = 72, .lr = 2e-2, .lm_lr = 0, .emb = 400,
                      .hidden = 1152, .layers = 3, .max_vocab = 60000, .min_freq = 3, .drop_mult = 0.5,
                      .wd = 0.01, .clip = 0, .valid_frac = 0.2, .resume = 1};
}

int run_exit_code(int rc)
{
    switch (rc) {
    case 0:
        return 0;
    case KF_EINVAL:
    case KF_ENOTFOUND:
    case KF_EUNSUPPORTED:
        return 2;
    case KF_ERETRY:
    case KF_EIO:
    case KF_EAUTH:
        return 3;
    default:
        return 1;
    }
}

static const char *reason_of(int rc)
{
    switch (run_exit_code(rc)) {
    case 2:
        return "BadInput";
    case 3:
        return "Transient";
    default:
        return "Error";
    }
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int on_epoch(void *ctx, const char *stage, int epochs_done)
{
    run_state *r = ctx;
    int classifier = strcmp(stage, "classifier") == 0, rc;
    st_writer *w = NULL;
    float *h1 = NULL, *h2 = NULL;
    char ep[32], *uri = storage_layout_output(&r->lay, "checkpoint.safetensors");
    if (!uri)
        return err_set(KF_ENOMEM, "out of memory");
    char *hist = NULL;
    snprintf(ep, sizeof ep, "%d", epochs_done);
    if ((rc = report_history_json(&hist, &r->hist)) == 0 && (rc = st_writer_new(&w)) == 0 &&
        (rc = st_writer_meta(w, "kubefit.history", hist)) == 0 &&
        (rc = run_add_model(r, w, classifier, classifier ? r->fclf.opt : r->flm.opt, &h1, &h2)) == 0 &&
        (rc = st_writer_meta(w, "kubefit.stage", stage)) == 0 && (rc = st_writer_meta(w, "kubefit.epoch", ep)) == 0)
        rc = run_put_st(r, w, uri);
    if (rc == 0)
        log_info("run", "checkpoint saved", "{s:s,s:s,s:i}", "uri", uri, "stage", stage, "epoch", epochs_done);
    else
        err_wrap(rc, "checkpoint");
    st_writer_free(w);
    free(hist);
    free(h1);
    free(h2);
    free(uri);
    return rc;
}

/* Model dimensions: from the pretrained file when there is one, else from the flags. */
static int lm_config(run_state *r, nn_config *cfg, int classifier)
{
    int V = (int)vocab_size(r->data.vocab), E = r->o->emb, H = r->o->hidden, NL = r->o->layers, fV;
    const st_file *src = r->ckpt ? r->ckpt : r->pre_lm;
    if (src) {
        int rc = modelio_dims(src, r->ckpt && strcmp(r->ckpt_stage, "classifier") == 0, &fV, &E, &H, &NL);
        if (rc < 0)
            return rc;
    }
    *cfg = classifier ? nn_config_clas(V, (float)r->o->drop_mult) : nn_config_lm(V, (float)r->o->drop_mult);
    cfg->emb = E;
    cfg->hidden = H;
    cfg->layers = NL;
    return 0;
}

static int load_inputs(run_state *r)
{
    int rc;
    char *train = NULL, *valid = NULL, *corpus = NULL, *voc = NULL, *lm = NULL, *ck = NULL, *ck_uri = NULL;
    const run_opts *o = r->o;
    if ((rc = run_fetch(r, r->lay.train, "train.csv", o->command != RUN_PRETRAIN, &train)) < 0)
        goto done;
    if ((rc = run_fetch(r, r->lay.valid, "valid.csv", 0, &valid)) < 0 ||
        (rc = run_fetch(r, r->lay.corpus, "corpus.txt", 0, &corpus)) < 0)
        goto done;
    if (!train && !corpus) {
        rc = err_set(KF_ENOTFOUND, "%s and %s: neither exists; nothing to train on", r->lay.train, r->lay.corpus);
        goto done;
    }
    if (o->command == RUN_TRAIN || o->command == RUN_PRETRAIN) {
        if (o->command == RUN_TRAIN && !(o->stages & RUN_STAGE_PRETRAIN)) {
            if ((rc = run_fetch(r, r->lay.lm, "lm.safetensors", 0, &lm)) < 0 ||
                (rc = run_fetch(r, r->lay.vocab_in, "pretrained-vocab.txt", 0, &voc)) < 0)
                goto done;
            if (lm && !voc) {
                rc = err_set(KF_ENOTFOUND, "%s exists but its vocabulary %s does not", r->lay.lm, r->lay.vocab_in);
                goto done;
            }
            if (!lm)
                log_warn("run", "no pretrained language model: starting from random weights", "{s:s}", "uri",
                         r->lay.lm);
            if (lm && ((rc = st_load(&r->pre_lm, lm)) < 0 || (rc = vocab_read(&r->pre_vocab, voc)) < 0)) {
                err_wrap(rc, "pretrained language model");
                goto done;
            }
        }
        if (o->resume) {
            if (!(ck_uri = storage_layout_output(&r->lay, "checkpoint.safetensors"))) {
                rc = err_set(KF_ENOMEM, "out of memory");
                goto done;
            }
            if ((rc = run_fetch(r, ck_uri, "checkpoint.safetensors", 0, &ck)) < 0)
                goto done;
            if (ck) {
                if ((rc = st_load(&r->ckpt, ck)) < 0) {
                    err_wrap(rc, "checkpoint %s", ck_uri);
                    goto done;
                }
                const char *stage = st_metadata(r->ckpt, "kubefit.stage"), *ep = st_metadata(r->ckpt, "kubefit.epoch");
                r->ckpt_stage = stage && strcmp(stage, "classifier") == 0 ? "classifier"
                                : stage && strcmp(stage, "pretrain") == 0 ? "pretrain" : "finetune-lm";
                r->ckpt_epoch = ep ? atoi(ep) : 0;
                const char *hist = st_metadata(r->ckpt, "kubefit.history");
                if (hist && (rc = report_history_parse(&r->hist, hist)) < 0) {
                    err_wrap(rc, "checkpoint %s", ck_uri);
                    goto done;
                }
                log_info("run", "resuming from checkpoint", "{s:s,s:s,s:i}", "uri", ck_uri, "stage", r->ckpt_stage,
                         "epochsDone", r->ckpt_epoch);
            }
        }
    }
    data_options dopt = {.train_path = train ? train : corpus, .valid_path = train ? valid : NULL,
                         .corpus_path = train ? corpus : NULL, .lang = o->lang, .valid_frac = o->valid_frac,
                         .seed = o->seed, .skip_bad_rows = o->skip_bad_rows, .max_vocab = (size_t)o->max_vocab,
                         .min_freq = (uint64_t)o->min_freq, .lm_only = o->command == RUN_PRETRAIN,
                         .label_mode = o->label_mode};
    if ((rc = data_load(&r->data, &dopt)) < 0)
        goto done;
    log_info("run", "data loaded", "{s:I,s:I,s:I,s:I,s:I,s:I,s:b}", "train", (json_int_t)r->data.train.n, "valid",
             (json_int_t)r->data.valid.n, "lmDocs", (json_int_t)r->data.lm_train.n, "vocab",
             (json_int_t)vocab_size(r->data.vocab), "labels", (json_int_t)r->data.n_labels, "skippedRows",
             (json_int_t)r->data.skipped_rows, "multiLabel", r->data.multi_label);
done:
    free(train);
    free(valid);
    free(corpus);
    free(voc);
    free(lm);
    free(ck);
    free(ck_uri);
    return rc;
}

/* LM stage (pretrain or finetune-lm). Leaves the trained LM in r->lm. */
static int stage_lm(run_state *r, const char *stage, int epochs, double lr)
{
    int rc, start = 0, fresh = !r->lm;
    nn_config cfg;
    if (fresh) { /* else: go on with the LM of the previous stage (pretrain -> finetune-lm) */
        if ((rc = lm_config(r, &cfg, 0)) < 0 || (rc = nn_model_new(&r->lm, &cfg, r->be)) < 0)
            return rc;
        nn_model_init(r->lm, r->o->seed);
    }
    if (r->have_flm)
        fit_lm_dispose(&r->flm);
    r->have_flm = 0;
    if ((rc = fit_lm_init(&r->flm, &r->fc, r->lm)) < 0)
        return rc;
    r->have_flm = 1;
    if (r->ckpt && strcmp(r->ckpt_stage, stage) == 0) {
        if ((rc = modelio_load_nn(r->lm, r->ckpt, 0, NULL, NULL)) < 0 || (rc = optim_load(r->flm.opt, r->ckpt)) < 0)
            return err_wrap(rc, "checkpoint");
        start = r->ckpt_epoch;
    } else if (fresh && r->pre_lm) {
        if ((rc = modelio_load_nn(r->lm, r->pre_lm, 0, r->data.vocab, r->pre_vocab)) < 0)
            return err_wrap(rc, "pretrained language model");
        log_info("run", "pretrained language model loaded", "{s:s}", "uri", r->lay.lm);
    }
    if (epochs > 0)
        rc = fit_lm_run(&r->fc, &r->flm, stage, &r->data.lm_train, &r->data.lm_valid, epochs, start, lr);
    return rc;
}

static int build_classifier(run_state *r)
{
    int rc;
    nn_config cfg;
    if ((rc = lm_config(r, &cfg, 1)) < 0 || (rc = nn_model_new(&r->clf, &cfg, r->be)) < 0)
        return rc;
    nn_model_init(r->clf, r->o->seed);
    head_config hc = head_config_default(cfg.emb, (int)r->data.n_labels, r->data.multi_label, (float)r->o->drop_mult);
    hc.bptt = r->o->bptt;
    if ((rc = head_clf_new(&r->head, &hc, r->be, NULL, r->o->batch_size)) < 0 ||
        (rc = head_clf_init(r->head, r->o->seed + 1)) < 0)
        return rc;
    if ((rc = fit_clf_init(&r->fclf, &r->fc, r->clf, r->head, (int)r->data.n_labels, r->data.multi_label)) < 0)
        return rc;
    r->have_fclf = 1;
    return 0;
}

/* Copies the LM's encoder into the classifier's (through an in-memory safetensors image). */
static int transfer_encoder(run_state *r)
{
    st_writer *w = NULL;
    st_file *f = NULL;
    float *host = NULL;
    unsigned char *buf = NULL;
    size_t len;
    int rc;
    if ((rc = st_writer_new(&w)) == 0 && (rc = modelio_add_nn(w, r->lm, 0, &host)) == 0 &&
        (rc = st_writer_bytes(w, &buf, &len)) == 0 && (rc = st_parse(&f, buf, len)) == 0)
        rc = modelio_load_nn(r->clf, f, 0, NULL, NULL);
    st_free(f);
    free(buf);
    free(host);
    st_writer_free(w);
    return rc;
}

/* The stages of --stages in recipe order: pretrain (LM from scratch), finetune-lm, classifier.
 * Without classifier the run ends with the LM saved and a result for the last LM stage. */
static int cmd_train(run_state *r, char **result)
{
    const run_opts *o = r->o;
    const int stages = o->stages ? o->stages : RUN_STAGES_DEFAULT;
    int rc, lm_epochs = o->lm_epochs < 0 ? o->epochs : o->lm_epochs;
    double lm_lr = o->lm_lr > 0 ? o->lm_lr : r->pre_lm ? 2e-3 : 1e-2;
    int do_clf = (stages & RUN_STAGE_CLASSIFIER) != 0;
    int resume_clf = do_clf && r->ckpt && strcmp(r->ckpt_stage, "classifier") == 0;
    int resume_ft = r->ckpt && strcmp(r->ckpt_stage, "finetune-lm") == 0 && (stages & RUN_STAGE_FINETUNE_LM);
    int do_pre = (stages & RUN_STAGE_PRETRAIN) && !resume_clf && !resume_ft;
    int do_ft = (stages & RUN_STAGE_FINETUNE_LM) && !resume_clf;
    const char *last_lm = do_ft ? "finetune-lm" : "pretrain";
    metrics_summary final = {0};
    char *lm_uri = storage_layout_output(&r->lay, "lm.safetensors");
    if (!lm_uri)
        return err_set(KF_ENOMEM, "out of memory");
    long lm_steps = fit_lm_steps(&r->fc, &r->data.lm_train), clf_steps = fit_clf_steps(&r->fc, &r->data);
    long lm_left = (long)lm_epochs * (do_pre + do_ft) - (r->ckpt && !resume_clf ? r->ckpt_epoch : 0);
    r->fc.steps_total = lm_steps * (lm_left > 0 ? lm_left : 0) +
                        (do_clf ? clf_steps * (o->epochs - (resume_clf ? r->ckpt_epoch : 0)) : 0);
    if (do_pre && (rc = stage_lm(r, "pretrain", lm_epochs, o->lm_lr > 0 ? o->lm_lr : 1e-2)) < 0)
        goto done;
    if (do_ft && (rc = stage_lm(r, "finetune-lm", lm_epochs, lm_lr)) < 0)
        goto done;
    if ((do_pre || do_ft) && (rc = run_save_model(r, 0, lm_uri)) < 0)
        goto done;
    if (!do_clf) {
        double tl = r->hist.n ? r->hist.v[r->hist.n - 1].train_loss : NAN;
        if ((rc = run_write_vocab(r, r->lay.vocab)) == 0 &&
            (rc = run_write_outputs(r, last_lm, lm_epochs, NULL, tl, lm_uri, result)) == 0) {
            run_drop_checkpoint(r);
            log_info("run", "training finished without the classifier stage", "{s:s}", "model", lm_uri);
        }
        goto done;
    }
    /* classifier only: the encoder of the pretrained LM as it is */
    if (!resume_clf && !r->lm && (rc = stage_lm(r, "finetune-lm", 0, lm_lr)) < 0)
        goto done;
    if ((rc = build_classifier(r)) < 0)
        goto done;
    int start = 0;
    if (resume_clf) {
        if ((rc = modelio_load_nn(r->clf, r->ckpt, 1, NULL, NULL)) < 0 || (rc = modelio_load_head(r->head, r->be, r->ckpt)) < 0 ||
            (rc = optim_load(r->fclf.opt, r->ckpt)) < 0) {
            err_wrap(rc, "checkpoint");
            goto done;
        }
        start = r->ckpt_epoch;
    } else if ((rc = transfer_encoder(r)) < 0) {
        goto done;
    }
    if ((rc = fit_clf_run(&r->fc, &r->fclf, &r->data, o->epochs, start, o->lr, &final)) < 0)
        goto done;
    if ((rc = run_save_model(r, 1, r->lay.model)) < 0 || (rc = run_write_vocab(r, r->lay.vocab)) < 0)
        goto done;
    double train_loss = NAN;
    for (size_t i = r->hist.n; i-- > 0;)
        if (strcmp(r->hist.v[i].stage, "classifier") == 0) {
            train_loss = r->hist.v[i].train_loss;
            break;
        }
    if ((rc = run_write_outputs(r, "classifier", o->epochs, &final, train_loss, r->lay.model, result)) < 0)
        goto done;
    run_drop_checkpoint(r);
    log_info("run", "training finished", "{s:s,s:f,s:f,s:f}", "model", r->lay.model, "accuracy", final.accuracy,
             "microF1", final.micro_f1, "macroF1", final.macro_f1);
done:
    metrics_summary_dispose(&final);
    free(lm_uri);
    return rc;
}

static int cmd_pretrain(run_state *r, char **result)
{
    int rc;
    double lr = r->o->lm_lr > 0 ? r->o->lm_lr : 1e-2;
    int epochs = r->o->lm_epochs >= 0 ? r->o->lm_epochs : r->o->epochs;
    char *lm_uri = storage_layout_output(&r->lay, "lm.safetensors");
    if (!lm_uri)
        return err_set(KF_ENOMEM, "out of memory");
    r->fc.steps_total = fit_lm_steps(&r->fc, &r->data.lm_train) * epochs;
    if ((rc = stage_lm(r, "pretrain", epochs, lr)) == 0 && (rc = run_save_model(r, 0, lm_uri)) == 0 &&
        (rc = run_write_vocab(r, r->lay.vocab)) == 0) {
        double tl = r->hist.n ? r->hist.v[r->hist.n - 1].train_loss : NAN;
        rc = run_write_outputs(r, "pretrain", epochs, NULL, tl, lm_uri, result);
    }
    free(lm_uri);
    return rc;
}

/* evaluate / predict: the trained classifier from the output folder. */
static int load_trained(run_state *r)
{
    int rc;
    char *model = NULL, *voc = NULL;
    if ((rc = run_fetch(r, r->lay.model, "model.safetensors", 1, &model)) < 0 ||
        (rc = run_fetch(r, r->lay.vocab, "model-vocab.txt", 1, &voc)) < 0)
        goto done;
    if ((rc = st_load(&r->ckpt, model)) < 0)
        goto done;
    r->ckpt_stage = "classifier";
    vocab_free(r->data.vocab);
    r->data.vocab = NULL;
    if ((rc = vocab_read(&r->data.vocab, voc)) < 0)
        goto done;
    const char *labels = st_metadata(r->ckpt, "kubefit.labels"), *ml = st_metadata(r->ckpt, "kubefit.multi_label");
    json_t *jl = labels ? json_loads(labels, 0, NULL) : NULL;
    if (!json_is_array(jl) || json_array_size(jl) < 1) {
        json_decref(jl);
        rc = err_set(KF_EINVAL, "%s: no kubefit.labels metadata (not a kubefit classifier?)", r->lay.model);
        goto done;
    }
    for (size_t i = 0; i < r->data.n_labels; i++)
        free(r->data.labels[i]);
    free(r->data.labels);
    r->data.n_labels = json_array_size(jl);
    r->data.labels = calloc(r->data.n_labels, sizeof *r->data.labels);
    for (size_t i = 0; r->data.labels && i < r->data.n_labels; i++)
        r->data.labels[i] = strdup(json_string_value(json_array_get(jl, i)) ? json_string_value(json_array_get(jl, i)) : "?");
    json_decref(jl);
    r->data.multi_label = ml && strcmp(ml, "1") == 0;
    const char *thr = st_metadata(r->ckpt, "kubefit.threshold");
    if (!(r->o->threshold > 0) && thr && atof(thr) > 0 && atof(thr) < 1)
        r->fc.threshold = atof(thr);
    if (!r->data.labels) {
        rc = err_set(KF_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = build_classifier(r)) < 0)
        goto done;
    if ((rc = modelio_load_nn(r->clf, r->ckpt, 1, NULL, NULL)) < 0 || (rc = modelio_load_head(r->head, r->be, r->ckpt)) < 0)
        err_wrap(rc, "%s", r->lay.model);
done:
    free(model);
    free(voc);
    return rc;
}

static int cmd_evaluate(run_state *r, char **result)
{
    int rc;
    metrics_summary s = {0};
    char *valid = NULL;
    const char *src = NULL;
    if ((rc = load_trained(r)) < 0)
        return rc;
    /* Labelled data: valid.csv, else train.csv whole. */
    if ((rc = run_fetch(r, r->lay.valid, "eval.csv", 0, &valid)) < 0)
        return rc;
    if (!valid && (rc = run_fetch(r, r->lay.train, "eval.csv", 1, &valid)) < 0)
        return rc;
    src = valid;
    data_set d = {0};
    data_options dopt = {.train_path = src, .valid_path = src, .lang = r->o->lang, .vocab = r->data.vocab,
                         .seed = r->o->seed, .skip_bad_rows = r->o->skip_bad_rows};
    if ((rc = data_load(&d, &dopt)) < 0)
        goto done;
    /* Express the labels in the model's label order. */
    float *y = calloc(d.valid.n * (r->data.multi_label ? r->data.n_labels : 1) + 1, sizeof *y);
    if (!y) {
        rc = err_set(KF_ENOMEM, "out of memory");
        data_dispose(&d);
        goto done;
    }
    for (size_t i = 0; i < d.valid.n; i++)
        for (size_t k = 0; k < d.n_labels; k++) {
            int on = d.multi_label ? d.valid_y[i * d.n_labels + k] > 0.5f : (size_t)d.valid_y[i] == k;
            if (!on)
                continue;
            for (size_t j = 0; j < r->data.n_labels; j++)
                if (strcmp(d.labels[k], r->data.labels[j]) == 0) {
                    if (r->data.multi_label)
                        y[i * r->data.n_labels + j] = 1.0f;
                    else
                        y[i] = (float)j;
                }
        }
    rc = fit_clf_eval(&r->fc, &r->fclf, &d.valid, y, &s);
    if (rc == 0) {
        report_run rr = {.stage = "evaluate", .epochs = 0, .multi_label = r->data.multi_label, .valid = &s,
                         .threshold = r->fc.threshold,
                         .label_names = r->data.labels, .train_loss = NAN, .history = &r->hist,
                         .n_valid = (long)d.valid.n, .model_uri = r->lay.model, .train_seconds = fit_now() - r->t0};
        char *mj = NULL;
        if ((rc = report_metrics_json(&mj, &rr)) == 0) {
            fprintf(r->o->out ? r->o->out : stdout, "%s\n", mj);
            rc = report_result_json(result, &rr);
        }
        free(mj);
    }
    free(y);
    data_dispose(&d);
done:
    metrics_summary_dispose(&s);
    free(valid);
    return rc;
}

static int cmd_predict(run_state *r)
{
    int rc;
    FILE *in = r->o->in ? r->o->in : stdin, *out = r->o->out ? r->o->out : stdout;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    float *probs = NULL;
    if ((rc = load_trained(r)) < 0)
        return rc;
    const int L = (int)r->data.n_labels;
    if (!(probs = malloc((size_t)L * sizeof *probs)))
        return err_set(KF_ENOMEM, "out of memory");
    while ((len = getline(&line, &cap, in)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        int32_t *ids = NULL;
        size_t n = 0;
        if ((rc = data_encode(&ids, &n, r->data.vocab, r->data.lang, line)) < 0 ||
            (rc = fit_clf_predict(&r->fc, &r->fclf, ids, n, probs)) < 0) {
            free(ids);
            break;
        }
        free(ids);
        json_t *labels = json_array(), *scores = json_object();
        int best = 0;
        for (int l = 0; l < L; l++) {
            if (probs[l] > probs[best])
                best = l;
            if (r->data.multi_label && probs[l] > (r->fc.threshold > 0 ? r->fc.threshold : 0.5))
                json_array_append_new(labels, json_string(r->data.labels[l]));
            json_object_set_new(scores, r->data.labels[l], json_real(round(probs[l] * 1e4) / 1e4));
        }
        if (!r->data.multi_label)
            json_array_append_new(labels, json_string(r->data.labels[best]));
        json_t *o = json_pack("{s:s,s:o,s:o}", "text", line, "labels", labels, "probabilities", scores);
        char *s = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(4)) : NULL;
        if (s)
            fprintf(out, "%s\n", s);
        else
            fprintf(out, "{\"error\":\"text is not valid UTF-8\"}\n");
        fflush(out);
        free(s);
        json_decref(o);
    }
    free(line);
    free(probs);
    return rc;
}

static void run_dispose(run_state *r)
{
    if (r->have_fclf)
        fit_clf_dispose(&r->fclf);
    if (r->have_flm)
        fit_lm_dispose(&r->flm);
    head_clf_free(r->head);
    nn_model_free(r->clf);
    nn_model_free(r->lm);
    st_free(r->ckpt);
    st_free(r->pre_lm);
    vocab_free(r->pre_vocab);
    data_dispose(&r->data);
    report_history_dispose(&r->hist);
    progress_free(r->prog);
    if (r->be)
        r->be->destroy(r->be);
    storage_layout_dispose(&r->lay);
    storage_free(r->st);
    if (r->work && !r->o->work_dir)
        nftw(r->work, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(r->work);
    for (int i = 0; i < r->n_fetched; i++)
        free(r->fetched[i][0]), free(r->fetched[i][1]);
}

int run_main(const run_opts *o)
{
    int rc;
    run_state r = {.o = o, .t0 = fit_now()};
    char *result = NULL;
    storage_layout_options lo = {.bucket = o->bucket, .lang = o->lang, .model_dir = o->model_dir, .job = o->job,
                                 .run = o->run, .data_dir = o->data_dir, .lm = o->pretrained_uri,
                                 .vocab_in = o->vocab_uri, .train = o->train_uri, .valid = o->valid_uri,
                                 .corpus = o->corpus_uri};
    if (o->batch_size < 2 || o->bptt < 1 || o->epochs < 1 || o->emb < 1 || o->hidden < 1 || o->layers < 1 ||
        o->layers > NN_MAX_LAYERS || !(o->lr > 0) || !(o->drop_mult >= 0) || o->max_vocab < 16) {
        rc = err_set(KF_EINVAL, "bad numeric option (need batch-size >= 2, bptt, epochs, sizes >= 1, layers <= %d, "
                                "lr > 0, max-vocab >= 16)", NN_MAX_LAYERS);
        goto done;
    }
    if ((rc = storage_new(&r.st, NULL)) < 0 || (rc = storage_layout_init(&r.lay, &lo)) < 0)
        goto done;
    if (o->work_dir) {
        r.work = strdup(o->work_dir);
        mkdir(o->work_dir, 0700);
    } else {
        const char *tmp = getenv("TMPDIR");
        if (asprintf(&r.work, "%s/kubefit-XXXXXX", tmp && *tmp ? tmp : "/tmp") >= 0 && !mkdtemp(r.work)) {
            rc = err_set(KF_EIO, "cannot create a work folder: %s", strerror(errno));
            goto done;
        }
    }
    if (!r.work) {
        rc = err_set(KF_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = device_backend_new(&r.be, o->device, o->precision, o->threads)) < 0)
        goto done;
    if (o->command == RUN_TRAIN || o->command == RUN_PRETRAIN) {
        if ((rc = progress_new(&r.prog, o->progress_url, o->out)) < 0 || (rc = load_inputs(&r)) < 0)
            goto done;
    }
    r.fc = (fit_ctx){.be = r.be, .prog = r.prog, .hist = &r.hist, .seed = o->seed, .B = o->batch_size,
                     .bptt = o->bptt, .clip = o->clip, .wd = o->wd, .t_start = r.t0, .on_epoch = on_epoch, .cb = &r,
                     .stop = o->stop, .threshold = o->threshold};
    switch (o->command) {
    case RUN_TRAIN:
        rc = cmd_train(&r, &result);
        break;
    case RUN_PRETRAIN:
        rc = cmd_pretrain(&r, &result);
        break;
    case RUN_EVALUATE:
        rc = cmd_evaluate(&r, &result);
        break;
    case RUN_PREDICT:
        rc = cmd_predict(&r);
        break;
    }
done:
    if (rc < 0) {
        char *msg = run_with_uris(&r, err_msg());
        free(result);
        result = NULL;
        report_failure_json(&result, reason_of(rc), msg ? msg : "");
        err_set(rc, "%s", msg ? msg : "");
        free(msg);
    }
    if (result && o->command != RUN_PREDICT)
        run_write_result(o, result);
    free(result);
    run_dispose(&r);
    return rc;
}
