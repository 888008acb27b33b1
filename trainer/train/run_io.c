/* run_io: the storage side of a trainer run - inputs fetched into the work folder (and named by
 * their URIs in errors), the model, vocabulary, metrics, curves, config and result written out. */
#define _XOPEN_SOURCE 700
#include "run_internal.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "device.h"
#include "err.h"
#include "log.h"
#include "modelio.h"
#include "report.h"

static char *work_path(const run_state *r, const char *name)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s", r->work, name) < 0)
        return NULL;
    return p;
}

/* The extension of the URI's last path segment (".jsonl"), or "" when it has none that looks
 * like one (at most 10 letters or digits). */
static const char *uri_ext(const char *uri)
{
    const char *base = strrchr(uri, '/'), *dot = strrchr(base ? base : uri, '.');
    if (!dot || !dot[1] || strlen(dot) > 11)
        return "";
    for (const char *p = dot + 1; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
            return "";
    return dot;
}

int run_fetch(run_state *r, const char *uri, const char *name, int required, char **local)
{
    int exists = 0, rc;
    char *file = NULL;
    *local = NULL;
    if ((rc = storage_exists(r->st, uri, &exists)) < 0)
        return rc;
    if (!exists)
        return required ? err_set(KF_ENOTFOUND, "%s: not found (a required input)", uri) : 0;
    if (asprintf(&file, "%s%s", name, strchr(name, '.') ? "" : uri_ext(uri)) < 0)
        return err_set(KF_ENOMEM, "out of memory");
    *local = work_path(r, file);
    free(file);
    if (!*local)
        return err_set(KF_ENOMEM, "out of memory");
    if ((rc = storage_get(r->st, uri, *local, NULL)) < 0) {
        free(*local);
        *local = NULL;
        return rc;
    }
    if (r->n_fetched < RUN_MAX_FETCHED) { /* for error messages: see with_uris */
        r->fetched[r->n_fetched][0] = strdup(*local);
        r->fetched[r->n_fetched][1] = strdup(uri);
        r->n_fetched++;
    }
    return 0;
}

/* *uri (a layout default ending in .csv) -> the .jsonl next to it when only that exists. */
static int resolve_table(run_state *r, char **uri)
{
    size_t n = strlen(*uri);
    int csv = 0, jsonl = 0, rc;
    char *alt = NULL;
    if (n < 4 || strcmp(*uri + n - 4, ".csv") != 0)
        return 0;
    if (asprintf(&alt, "%.*s.jsonl", (int)(n - 4), *uri) < 0)
        return err_set(KF_ENOMEM, "out of memory");
    if ((rc = storage_exists(r->st, *uri, &csv)) < 0 || (rc = storage_exists(r->st, alt, &jsonl)) < 0)
        goto done;
    if (csv && jsonl) {
        rc = err_set(KF_EINVAL, "%s and %s both exist: remove one, or name the one to read with --train-uri / "
                                "--valid-uri", *uri, alt);
        goto done;
    }
    if (jsonl) {
        free(*uri);
        *uri = alt;
        alt = NULL;
    }
done:
    free(alt);
    return rc;
}

int run_resolve_inputs(run_state *r)
{
    int rc = 0;
    if (!r->o->train_uri)
        rc = resolve_table(r, &r->lay.train);
    if (rc == 0 && !r->o->valid_uri)
        rc = resolve_table(r, &r->lay.valid);
    return rc;
}

int run_check_weights(const st_file *f, const char *local)
{
    int rc = st_check_finite(f);
    return rc < 0 ? err_wrap(rc, "%s", local) : 0;
}

/* msg with every local copy's path replaced by the URI it was fetched from, so that a data
 * error says "gs://b/en/train.csv:12: ..." rather than naming a temporary file. Caller frees;
 * NULL when out of memory. */
char *run_with_uris(const run_state *r, const char *msg)
{
    char *out = strdup(msg);
    for (int i = 0; out && i < r->n_fetched; i++) {
        const char *local = r->fetched[i][0], *uri = r->fetched[i][1];
        if (!local || !uri)
            continue;
        size_t ll = strlen(local), lu = strlen(uri), n = 0;
        for (const char *p = strstr(out, local); p; p = strstr(p + ll, local))
            n++;
        if (!n)
            continue;
        char *next = malloc(strlen(out) + n * lu + 1 - n * ll), *w = next;
        if (!next) {
            free(out);
            return NULL;
        }
        for (const char *p = out, *hit; (hit = strstr(p, local)); p = hit + ll) {
            memcpy(w, p, (size_t)(hit - p)), w += hit - p;
            memcpy(w, uri, lu), w += lu;
            strcpy(w, hit + ll); /* the rest, overwritten if another hit follows */
        }
        free(out);
        out = next;
    }
    return out;
}

static int put_text(run_state *r, const char *uri, const char *text)
{
    return storage_write(r->st, uri, text, strlen(text));
}

/* Uploads a writer's bytes to uri. */
int run_put_st(run_state *r, st_writer *w, const char *uri)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    int rc = st_writer_bytes(w, &buf, &len);
    if (rc == 0)
        rc = storage_write(r->st, uri, buf, len);
    free(buf);
    return rc;
}

static json_t *config_json(const run_state *r)
{
    static const char *const modes[] = {"auto", "multi", "single"};
    static const char *const stage_names[] = {"pretrain", "finetune-lm", "classifier"};
    const run_opts *o = r->o;
    const data_set *d = &r->data;
    json_t *labels = json_array(), *stages = json_array();
    for (size_t i = 0; i < d->n_labels; i++)
        json_array_append_new(labels, json_string(d->labels[i]));
    for (int k = 0; k < 3; k++)
        if ((o->stages ? o->stages : RUN_STAGES_DEFAULT) & (1 << k))
            json_array_append_new(stages, json_string(stage_names[k]));
    json_t *c = json_pack("{s:i,s:s,s:s,s:s?,s:s?,s:s?,s:I,s:i,s:i,s:i,s:f,s:f,s:i,s:i,s:i,s:i,s:i,s:f,s:f,s:f,"
                     "s:I,s:b,s:o,s:I,s:I}",
                     "version", 1, "lang", o->lang, "device", r->be ? r->be->name : "cpu", "job", o->job, "run",
                     o->run, "modelDir", o->model_dir, "seed", (json_int_t)o->seed, "epochs", o->epochs,
                     "lmEpochs", o->lm_epochs, "batchSize", o->batch_size, "lr", o->lr, "lmLr", o->lm_lr, "bptt",
                     o->bptt, "embSize", o->emb, "hiddenSize", o->hidden, "layers", o->layers, "maxVocab",
                     o->max_vocab, "dropMult", o->drop_mult, "wd", o->wd, "clip", o->clip, "vocabSize",
                     (json_int_t)(d->vocab ? vocab_size(d->vocab) : 0), "multiLabel", d->multi_label, "labels",
                     labels, "nTrain", (json_int_t)d->train.n, "nValid", (json_int_t)d->valid.n);
    if (!c)
        json_decref(stages);
    if (c && json_object_set_new(c, "stages", stages) == 0 &&
        json_object_set_new(c, "labelMode", json_string(modes[o->label_mode])) == 0 &&
        json_object_set_new(c, "precision", json_string(r->be ? device_precision(r->be) : "fp32")) == 0 &&
        json_object_set_new(c, "threshold", json_real(r->fc.threshold > 0 ? r->fc.threshold : 0.5)) == 0 &&
        json_object_set_new(c, "inputs", json_pack("{s:s,s:s,s:s,s:s,s:s}", "pretrained", r->lay.lm, "vocab",
                                                   r->lay.vocab_in, "train", r->lay.train, "valid", r->lay.valid,
                                                   "corpus", r->lay.corpus)) == 0)
        return c;
    json_decref(c);
    return NULL;
}

int run_write_vocab(run_state *r, const char *uri)
{
    char *local = work_path(r, "vocab.out.txt");
    int rc = local ? vocab_write(r->data.vocab, local) : err_set(KF_ENOMEM, "out of memory");
    if (rc == 0)
        rc = storage_put(r->st, local, uri);
    free(local);
    return rc;
}

/* Serialises the model being trained (+ optimizer state when opt) into a writer. */
int run_add_model(run_state *r, st_writer *w, int classifier, optim *opt, float **h1, float **h2)
{
    int rc = modelio_add_nn(w, classifier ? r->clf : r->lm, classifier, h1);
    if (rc == 0 && classifier)
        rc = modelio_add_head(w, r->head, r->be, h2);
    if (rc == 0 && opt)
        rc = optim_save(opt, w);
    json_t *cfg = config_json(r);
    char *s = cfg ? json_dumps(cfg, JSON_COMPACT) : NULL;
    json_decref(cfg);
    if (rc == 0 && s)
        rc = st_writer_meta(w, "kubefit.config", s);
    free(s);
    if (rc == 0)
        rc = st_writer_meta(w, "format", "pt");
    return rc;
}

/* Writes metrics.json, history.csv, curves.svg, config.json, and fills the result. */
int run_write_outputs(run_state *r, const char *stage, int epochs, const metrics_summary *valid,
                      double train_loss, const char *model_uri, char **result)
{
    int rc;
    char *mj = NULL, *csv = NULL, *svg = NULL, *cfg = NULL;
    report_run rr = {.stage = stage, .epochs = epochs, .multi_label = r->data.multi_label, .valid = valid,
                     .threshold = r->fc.threshold,
                     .label_names = r->data.labels, .train_loss = train_loss, .history = &r->hist,
                     .n_train = (long)(valid ? r->data.train.n : r->data.lm_train.n),
                     .n_valid = (long)(valid ? r->data.valid.n : r->data.lm_valid.n), .model_uri = model_uri,
                     .metrics_uri = r->lay.metrics, .train_seconds = fit_now() - r->t0,
                     .device = r->be ? r->be->name : NULL, .unseen_rows = (long)r->data.valid_unseen.rows,
                     .unseen_dropped_rows = (long)r->data.valid_dropped_rows,
                     .unseen_labels = r->data.valid_unseen.names, .n_unseen_labels = r->data.valid_unseen.n_names};
    json_t *cj = config_json(r);
    cfg = cj ? json_dumps(cj, JSON_INDENT(2)) : NULL;
    json_decref(cj);
    if (!cfg) {
        rc = err_set(KF_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = report_metrics_json(&mj, &rr)) < 0 || (rc = report_history_csv(&csv, &r->hist)) < 0 ||
        (rc = report_curves_svg(&svg, &r->hist)) < 0 || (rc = report_result_json(result, &rr)) < 0)
        goto done;
    if ((rc = put_text(r, r->lay.metrics, mj)) < 0 || (rc = put_text(r, r->lay.history, csv)) < 0 ||
        (rc = put_text(r, r->lay.curves, svg)) < 0 || (rc = put_text(r, r->lay.config, cfg)) < 0)
        goto done;
done:
    free(mj);
    free(csv);
    free(svg);
    free(cfg);
    return rc;
}

int run_save_model(run_state *r, int classifier, const char *uri)
{
    st_writer *w = NULL;
    float *h1 = NULL, *h2 = NULL;
    int rc = st_writer_new(&w);
    if (rc == 0)
        rc = run_add_model(r, w, classifier, NULL, &h1, &h2);
    json_t *labels = json_array();
    for (size_t i = 0; i < r->data.n_labels; i++)
        json_array_append_new(labels, json_string(r->data.labels[i]));
    char *ls = json_dumps(labels, JSON_COMPACT);
    json_decref(labels);
    if (rc == 0 && classifier && ls)
        rc = st_writer_meta(w, "kubefit.labels", ls);
    if (rc == 0 && classifier)
        rc = st_writer_meta(w, "kubefit.multi_label", r->data.multi_label ? "1" : "0");
    char thr[32];
    snprintf(thr, sizeof thr, "%.17g", r->fc.threshold > 0 ? r->fc.threshold : 0.5);
    if (rc == 0 && classifier)
        rc = st_writer_meta(w, "kubefit.threshold", thr);
    if (rc == 0)
        rc = run_put_st(r, w, uri);
    free(ls);
    st_writer_free(w);
    free(h1);
    free(h2);
    return rc;
}

/* Deletes the checkpoint of a finished run (best effort: it has served its purpose). */
void run_drop_checkpoint(run_state *r)
{
    char *ck = storage_layout_output(&r->lay, "checkpoint.safetensors");
    int exists = 0;
    if (ck && storage_exists(r->st, ck, &exists) == 0 && exists)
        storage_delete(r->st, ck);
    free(ck);
}

void run_write_result(const run_opts *o, const char *text)
{
    const char *path = o->result_file;
    if (!path) {
        if (access("/dev/termination-log", W_OK) != 0)
            return;
        path = "/dev/termination-log";
    }
    FILE *f = fopen(path, "w");
    if (!f) {
        log_warn("run", "cannot write the result file", "{s:s,s:s}", "path", path, "error", strerror(errno));
        return;
    }
    fputs(text, f);
    fclose(f);
}
