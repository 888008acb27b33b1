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

/* A model that fails the finite check before it is saved (modelio: "training diverged") has
 * learnt NaN or infinity from finite inputs (they were checked when loaded): say where and what
 * to change. Other errors pass unchanged. */
static int diverged(int rc, const char *stage, int epoch)
{
    if (rc != KF_EINVAL || !strstr(err_msg(), "training diverged"))
        return rc;
    char *msg = strdup(err_msg());
    err_set(rc, "%s epoch %d: %s; the inputs were finite: try a lower %s", stage, epoch, msg ? msg : "",
            strcmp(stage, "classifier") == 0 ? "--lr" : "--lm-lr");
    free(msg);
    return rc;
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
    else if (strstr(err_msg(), "training diverged"))
        diverged(rc, stage, epochs_done);
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

/* Refuses, before anything is allocated, a model this machine cannot train: the estimate counts
 * (in bytes, 64-bit, so nothing overflows) weights + gradients + Adam's two moments (16 per
 * parameter) and the activations nn_acts_new will take for batch x bptt (LM: with the decoder's
 * logits) on the backend's memory, plus the host copies a checkpoint makes (weights, Adam state
 * and the serialised file: 24 per parameter) on the host. Without it an oversized model fails
 * to allocate (exit 1, "crash", retried) or is killed by the kernel. KF_EINVAL names the sizes. */
static int check_fits(run_state *r, const nn_config *cfg, int classifier)
{
    const int B = r->fc.B > 0 ? r->fc.B : r->o->batch_size, T = r->fc.bptt > 0 ? r->fc.bptt : r->o->bptt;
    uint64_t P = nn_config_num_params(cfg), acts = nn_acts_bytes(cfg, B, T, classifier ? 0 : NN_ACTS_DECODER);
    if (!P || !acts)
        return err_set(KF_EINVAL, "model size out of range: emb %d, hidden %d, %d layers, vocab %d, batch %d x bptt %d "
                                  "(at most %d layers, vocab x emb below 2^31, batch x bptt at most 2^24)",
                       cfg->emb, cfg->hidden, cfg->layers, cfg->vocab, B, T, NN_MAX_LAYERS);
    const int gpu = device_is_gpu(r->be);
    uint64_t dev = 16 * P + acts, host = 24 * P, dev_avail = device_memory_available(r->be);
    uint64_t host_avail = gpu ? device_host_available(device_cgroup_root(), NULL) : dev_avail;
    if (!gpu)
        dev += host, host = 0;
    uint64_t need = dev, avail = dev_avail;
    const char *where = gpu ? "GPU" : "host";
    if (!(dev_avail && dev > dev_avail)) {
        if (!(gpu && host_avail && host > host_avail))
            return 0;
        need = host, avail = host_avail, where = "host";
    }
    const double GiB = 1024.0 * 1024.0 * 1024.0;
    return err_set(KF_EINVAL, "model too large for this machine: emb %d, hidden %d, %d layers, vocab %d = %.1f M "
                              "parameters need about %.1f GiB of %s memory to train with batch %d x bptt %d (weights, "
                              "gradients, Adam state, activations, checkpoint copies), %.1f GiB available; use a "
                              "smaller --emb-size, --hidden-size, --layers, --max-vocab or --batch-size, or more memory",
                   cfg->emb, cfg->hidden, cfg->layers, cfg->vocab, (double)P / 1e6, (double)need / GiB, where, B, T,
                   (double)avail / GiB);
}

static int load_inputs(run_state *r)
{
    int rc;
    char *train = NULL, *valid = NULL, *corpus = NULL, *voc = NULL, *lm = NULL, *ck = NULL, *ck_uri = NULL;
    const run_opts *o = r->o;
    /* A run without the classifier (pretrain, or train with LM stages only: a pretraining
     * TrainingJob) needs no labelled texts: corpus.txt alone will do. */
    const int lm_run = o->command == RUN_PRETRAIN ||
                       (o->command == RUN_TRAIN && !((o->stages ? o->stages : RUN_STAGES_DEFAULT) & RUN_STAGE_CLASSIFIER));
    /* Only the layout's defaults may be absent: a URI named by a flag must exist. The local
     * copies keep the URI's extension (train.jsonl is read as JSON lines). */
    if ((rc = run_fetch(r, r->lay.train, "train", !lm_run || o->train_uri, &train)) < 0)
        goto done;
    if ((rc = run_fetch(r, r->lay.valid, "valid", o->valid_uri != NULL, &valid)) < 0 ||
        (rc = run_fetch(r, r->lay.corpus, "corpus", o->corpus_uri != NULL, &corpus)) < 0)
        goto done;
    if (!train && !corpus) {
        rc = err_set(KF_ENOTFOUND, "%s and %s: neither exists; nothing to train on", r->lay.train, r->lay.corpus);
        goto done;
    }
    if (o->command == RUN_TRAIN || o->command == RUN_PRETRAIN) {
        if (o->command == RUN_TRAIN && !(o->stages & RUN_STAGE_PRETRAIN)) {
            if ((rc = run_fetch(r, r->lay.lm, "lm.safetensors", o->pretrained_uri != NULL, &lm)) < 0 ||
                (rc = run_fetch(r, r->lay.vocab_in, "pretrained-vocab.txt", o->vocab_uri != NULL, &voc)) < 0)
                goto done;
            if (lm && !voc) {
                rc = err_set(KF_ENOTFOUND, "%s exists but its vocabulary %s does not", r->lay.lm, r->lay.vocab_in);
                goto done;
            }
            if (!lm)
                log_warn("run", "no pretrained language model: starting from random weights", "{s:s}", "uri",
                         r->lay.lm);
            if (lm && ((rc = st_load(&r->pre_lm, lm)) < 0 || (rc = run_check_weights(r->pre_lm, lm)) < 0 ||
                       (rc = vocab_read(&r->pre_vocab, voc)) < 0)) {
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
                if ((rc = st_load(&r->ckpt, ck)) < 0 || (rc = run_check_weights(r->ckpt, ck)) < 0) {
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
                         .min_freq = (uint64_t)o->min_freq, .known_vocab = r->pre_vocab, .lm_only = o->command == RUN_PRETRAIN || (lm_run && !train),
                         .label_mode = o->label_mode, .text_col = o->text_col, .label_col = o->label_col,
                         .label_sep = o->label_sep};
    if ((rc = data_load(&r->data, &dopt)) < 0)
        goto done;
    json_int_t lm_tokens = 0; /* LM training tokens per epoch (xxbos included) */
    for (size_t i = 0; i < r->data.lm_train.n; i++)
        lm_tokens += (json_int_t)r->data.lm_train.v[i].n;
    log_info("run", "data loaded", "{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:b}", "train", (json_int_t)r->data.train.n, "valid",
             (json_int_t)r->data.valid.n, "lmDocs", (json_int_t)r->data.lm_train.n, "lmTokens", lm_tokens, "vocab",
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
        if ((rc = lm_config(r, &cfg, 0)) < 0 || (rc = check_fits(r, &cfg, 0)) < 0 ||
            (rc = nn_model_new(&r->lm, &cfg, r->be)) < 0)
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

int run_build_classifier(run_state *r)
{
    int rc;
    nn_config cfg;
    if ((rc = lm_config(r, &cfg, 1)) < 0 || (r->o->command == RUN_TRAIN && (rc = check_fits(r, &cfg, 1)) < 0) ||
        (rc = nn_model_new(&r->clf, &cfg, r->be)) < 0)
        return rc;
    nn_model_init(r->clf, r->o->seed);
    head_config hc = head_config_default(cfg.emb, (int)r->data.n_labels, r->data.multi_label, (float)r->o->drop_mult);
    hc.bptt = r->fc.bptt;
    if ((rc = head_clf_new(&r->head, &hc, r->be, NULL, r->fc.B)) < 0 ||
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
    if ((do_pre || do_ft) && (rc = run_save_model(r, 0, lm_uri)) < 0) {
        diverged(rc, last_lm, lm_epochs);
        goto done;
    }
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
    if ((rc = run_build_classifier(r)) < 0)
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
    if ((rc = run_save_model(r, 1, r->lay.model)) < 0) {
        diverged(rc, "classifier", o->epochs);
        goto done;
    }
    if ((rc = run_write_vocab(r, r->lay.vocab)) < 0)
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
    log_info("run", "training finished", "{s:s,s:f,s:f,s:f,s:f,s:f}", "model", r->lay.model, "accuracy", final.accuracy,
             "subsetAccuracy", final.subset_accuracy, "labelAccuracy", final.label_accuracy,
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
    if ((rc = stage_lm(r, "pretrain", epochs, lr)) == 0 && (rc = diverged(run_save_model(r, 0, lm_uri), "pretrain", epochs)) == 0 &&
        (rc = run_write_vocab(r, r->lay.vocab)) == 0) {
        double tl = r->hist.n ? r->hist.v[r->hist.n - 1].train_loss : NAN;
        rc = run_write_outputs(r, "pretrain", epochs, NULL, tl, lm_uri, result);
    }
    free(lm_uri);
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
    if (o->command != RUN_PREDICT && (rc = run_resolve_inputs(&r)) < 0)
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
        rc = run_evaluate(&r, &result);
        break;
    case RUN_PREDICT:
        rc = run_predict(&r);
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
