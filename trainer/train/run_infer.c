/* run_infer: the inference side of the trainer - `evaluate` (metrics of a trained classifier on
 * labelled data) and `predict` (labels and probabilities per input line). Both load the trained
 * model from the output folder and use its own batch size, BPTT and threshold (its
 * kubefit.config / kubefit.threshold metadata), so evaluate's metrics are the run's. */
#define _XOPEN_SOURCE 700
#include "run_internal.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "modelio.h"
#include "report.h"

/* evaluate / predict: the trained classifier from the output folder, with the training run's
 * batch size and BPTT (its kubefit.config; the flags' values when the metadata is missing: a
 * converted fastai model) and tokenizer language (--lang). */
static int load_trained(run_state *r)
{
    int rc;
    char *model = NULL, *voc = NULL;
    modelio_clf_meta meta = {0};
    if ((rc = run_fetch(r, r->lay.model, "model.safetensors", 1, &model)) < 0 ||
        (rc = run_fetch(r, r->lay.vocab, "model-vocab.txt", 1, &voc)) < 0)
        goto done;
    if ((rc = st_load(&r->ckpt, model)) < 0 || (rc = run_check_weights(r->ckpt, model)) < 0)
        goto done;
    r->ckpt_stage = "classifier";
    vocab_free(r->data.vocab);
    r->data.vocab = NULL;
    if ((rc = vocab_read(&r->data.vocab, voc)) < 0 || (rc = tok_lang_parse(&r->data.lang, r->o->lang)) < 0 ||
        (rc = modelio_clf_meta_read(&meta, r->ckpt, r->lay.model)) < 0)
        goto done;
    for (size_t i = 0; i < r->data.n_labels; i++)
        free(r->data.labels[i]);
    free(r->data.labels);
    r->data.labels = meta.labels; /* taken from meta */
    r->data.n_labels = meta.n_labels;
    meta.labels = NULL;
    meta.n_labels = 0;
    r->data.multi_label = meta.multi_label;
    if (!(r->o->threshold > 0) && meta.threshold > 0)
        r->fc.threshold = meta.threshold;
    if (meta.batch_size) {
        if (meta.batch_size != r->fc.B || meta.bptt != r->fc.bptt)
            log_info("run", "using the trained model's batch size and bptt", "{s:i,s:i}", "batchSize",
                     meta.batch_size, "bptt", meta.bptt);
        r->fc.B = meta.batch_size;
        r->fc.bptt = meta.bptt;
    }
    if ((rc = run_build_classifier(r)) < 0)
        goto done;
    if ((rc = modelio_load_nn(r->clf, r->ckpt, 1, NULL, NULL)) < 0 || (rc = modelio_load_head(r->head, r->be, r->ckpt)) < 0)
        err_wrap(rc, "%s", r->lay.model);
done:
    modelio_clf_meta_dispose(&meta);
    free(model);
    free(voc);
    return rc;
}

int run_evaluate(run_state *r, char **result)
{
    int rc;
    metrics_summary s = {0};
    data_set d = {0};
    char *local = NULL;
    if ((rc = load_trained(r)) < 0)
        return rc;
    /* Labelled data: valid.csv (or .jsonl), else train.csv whole. */
    const char *uri = r->lay.valid;
    if ((rc = run_fetch(r, uri, "eval", r->o->valid_uri != NULL, &local)) < 0)
        goto done;
    if (!local && (rc = run_fetch(r, uri = r->lay.train, "eval", 1, &local)) < 0)
        goto done;
    data_options dopt = {.valid_path = local, .lang = r->o->lang, .vocab = r->data.vocab,
                         .skip_bad_rows = r->o->skip_bad_rows, .text_col = r->o->text_col,
                         .label_col = r->o->label_col, .label_sep = r->o->label_sep};
    if ((rc = data_load_eval(&d, &dopt, r->data.labels, r->data.n_labels, r->data.multi_label)) < 0)
        goto done;
    if ((rc = fit_clf_eval(&r->fc, &r->fclf, &d.valid, d.valid_y, &s)) < 0)
        goto done;
    report_run rr = {.stage = "evaluate", .epochs = 0, .multi_label = r->data.multi_label, .valid = &s,
                     .threshold = r->fc.threshold, .label_names = r->data.labels, .train_loss = NAN,
                     .history = &r->hist, .n_valid = (long)d.valid.n, .model_uri = r->lay.model,
                     .train_seconds = fit_now() - r->t0, .device = r->be->name,
                     .unseen_rows = (long)d.valid_unseen.rows, .unseen_dropped_rows = (long)d.valid_dropped_rows,
                     .unseen_labels = d.valid_unseen.names, .n_unseen_labels = d.valid_unseen.n_names};
    char *mj = NULL;
    if ((rc = report_metrics_json(&mj, &rr)) == 0) {
        fprintf(r->o->out ? r->o->out : stdout, "%s\n", mj);
        rc = report_result_json(result, &rr);
    }
    free(mj);
done:
    metrics_summary_dispose(&s);
    data_dispose(&d);
    free(local);
    return rc;
}

int run_predict(run_state *r)
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
