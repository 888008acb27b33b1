/* report: metrics.json, history.csv and the compact result. See report.h. */
#include "report.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "utf8.h"

int report_history_add(report_history *h, const report_epoch *e)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 16;
        report_epoch *v = realloc(h->v, cap * sizeof *v);
        if (!v)
            return err_set(KF_ENOMEM, "out of memory");
        h->v = v;
        h->cap = cap;
    }
    h->v[h->n++] = *e;
    return 0;
}

void report_history_dispose(report_history *h)
{
    if (!h)
        return;
    free(h->v);
    memset(h, 0, sizeof *h);
}

size_t report_history_count(const report_history *h, const char *stage)
{
    size_t n = 0;
    for (size_t i = 0; h && i < h->n; i++)
        n += strcmp(h->v[i].stage, stage) == 0;
    return n;
}

/* A number, or null when NaN/inf (JSON has no NaN). */
static json_t *num(double x) { return isfinite(x) ? json_real(x) : json_null(); }

static json_t *label_json(const metrics_label *l, const char *name, int counts)
{
    json_t *o = json_pack("{s:s,s:o,s:o,s:o,s:I}", "name", name, "f1", num(l->f1), "precision",
                          num(l->precision), "recall", num(l->recall), "support", (json_int_t)l->support);
    if (o && counts) {
        json_object_set_new(o, "tp", json_integer(l->tp));
        json_object_set_new(o, "fp", json_integer(l->fp));
        json_object_set_new(o, "fn", json_integer(l->fn));
    }
    return o;
}

/* The headline metrics: single-label (and LM-only runs, all null) "accuracy"; multi-label
 * "subsetAccuracy" (exact match) and "labelAccuracy" (per label), never a plain "accuracy". */
static json_t *overall_json(const report_run *r)
{
    const metrics_summary *s = r->valid;
    json_t *o = s && r->multi_label
                    ? json_pack("{s:o,s:o}", "subsetAccuracy", num(s->subset_accuracy), "labelAccuracy",
                                num(s->label_accuracy))
                    : json_pack("{s:o}", "accuracy", num(s ? s->accuracy : NAN));
    json_t *rest = json_pack("{s:o,s:o,s:o,s:o}", "microF1", num(s ? s->micro_f1 : NAN), "macroF1",
                             num(s ? s->macro_f1 : NAN), "loss", num(r->train_loss), "validLoss",
                             num(s ? s->loss : NAN));
    if (!o || !rest || json_object_update(o, rest) != 0) {
        json_decref(o);
        o = NULL;
    }
    json_decref(rest);
    return o;
}

static int dump(char **out, json_t *root, size_t flags)
{
    *out = root ? json_dumps(root, flags | JSON_REAL_PRECISION(6)) : NULL;
    json_decref(root);
    return *out ? 0 : err_set(KF_ENOMEM, "report: cannot encode JSON");
}

static json_t *epoch_json(const report_epoch *e)
{
    json_t *o = json_pack("{s:s,s:i,s:o,s:o}", "stage", e->stage, "epoch", e->epoch, "trainLoss", num(e->train_loss),
                          "validLoss", num(e->valid_loss));
    if (o && (isfinite(e->subset_accuracy) || isfinite(e->label_accuracy))) {
        json_object_set_new(o, "subsetAccuracy", num(e->subset_accuracy));
        json_object_set_new(o, "labelAccuracy", num(e->label_accuracy));
    } else if (o) {
        json_object_set_new(o, "accuracy", num(e->accuracy));
    }
    if (o) {
        json_object_set_new(o, "microF1", num(e->micro_f1));
        json_object_set_new(o, "macroF1", num(e->macro_f1));
        json_object_set_new(o, "lr", num(e->lr));
        json_object_set_new(o, "seconds", num(e->seconds));
    }
    return o;
}

int report_history_json(char **out, const report_history *h)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < h->n; i++)
        json_array_append_new(a, epoch_json(&h->v[i]));
    *out = a ? json_dumps(a, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(a);
    return *out ? 0 : err_set(KF_ENOMEM, "report: cannot encode JSON");
}

static double num_of(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

int report_history_parse(report_history *h, const char *json)
{
    static const char *const stages[] = {"pretrain", "finetune-lm", "classifier"};
    json_error_t jerr;
    json_t *a = json_loads(json, 0, &jerr), *e;
    size_t i;
    int rc = 0;
    if (!json_is_array(a)) {
        json_decref(a);
        return err_set(KF_EINVAL, "history: not a JSON array");
    }
    json_array_foreach(a, i, e) {
        const char *st = json_string_value(json_object_get(e, "stage")), *stage = NULL;
        for (size_t k = 0; st && k < 3; k++)
            if (strcmp(st, stages[k]) == 0)
                stage = stages[k];
        if (!stage) {
            rc = err_set(KF_EINVAL, "history: entry %zu has an unknown stage", i);
            break;
        }
        report_epoch r = {.stage = stage, .epoch = (int)json_integer_value(json_object_get(e, "epoch")),
                          .train_loss = num_of(e, "trainLoss"), .valid_loss = num_of(e, "validLoss"),
                          .accuracy = num_of(e, "accuracy"), .subset_accuracy = num_of(e, "subsetAccuracy"),
                          .label_accuracy = num_of(e, "labelAccuracy"), .micro_f1 = num_of(e, "microF1"),
                          .macro_f1 = num_of(e, "macroF1"), .lr = num_of(e, "lr"), .seconds = num_of(e, "seconds")};
        if ((rc = report_history_add(h, &r)) < 0)
            break;
    }
    json_decref(a);
    return rc;
}

int report_metrics_json(char **out, const report_run *r)
{
    double thr = r->threshold > 0 ? r->threshold : 0.5;
    json_t *root = json_pack("{s:i,s:s,s:i,s:b,s:f,s:I,s:I,s:o}", "version", 1, "stage", r->stage, "epochs",
                             r->epochs, "multiLabel", r->multi_label, "threshold", thr, "nTrain", (json_int_t)r->n_train,
                             "nValid", (json_int_t)r->n_valid, "overall", overall_json(r));
    if (!root)
        return err_set(KF_ENOMEM, "report: cannot encode JSON");
    json_t *labels = json_array(), *hist = json_array();
    for (int l = 0; r->valid && l < r->valid->n_labels; l++)
        json_array_append_new(labels, label_json(&r->valid->labels[l], r->label_names[l], 1));
    for (size_t i = 0; r->history && i < r->history->n; i++)
        json_array_append_new(hist, epoch_json(&r->history->v[i]));
    json_object_set_new(root, "labels", labels);
    if (r->valid) {
        json_t *names = json_array();
        for (size_t i = 0; names && i < r->n_unseen_labels && i < REPORT_UNSEEN_SHOWN; i++)
            json_array_append_new(names, json_string(r->unseen_labels[i]));
        json_object_set_new(root, "validUnseenLabels",
                            json_pack("{s:I,s:I,s:I,s:o}", "rows", (json_int_t)r->unseen_rows, "droppedRows",
                                      (json_int_t)r->unseen_dropped_rows, "distinct",
                                      (json_int_t)r->n_unseen_labels, "labels", names));
    }
    if (r->device)
        json_object_set_new(root, "device", json_string(r->device));
    json_object_set_new(root, "history", hist);
    if (r->model_uri)
        json_object_set_new(root, "modelURI", json_string(r->model_uri));
    if (r->metrics_uri)
        json_object_set_new(root, "metricsURI", json_string(r->metrics_uri));
    json_object_set_new(root, "trainSeconds", num(r->train_seconds));
    return dump(out, root, JSON_INDENT(2));
}

static int appendf(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int appendf(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return err_set(KF_EINVAL, "report: format error");
    if (*len + (size_t)n + 1 > *cap) {
        size_t c = (*cap ? *cap : 256);
        while (c < *len + (size_t)n + 1)
            c *= 2;
        char *b = realloc(*buf, c);
        if (!b)
            return err_set(KF_ENOMEM, "out of memory");
        *buf = b;
        *cap = c;
    }
    va_start(ap, fmt);
    vsnprintf(*buf + *len, *cap - *len, fmt, ap);
    va_end(ap);
    *len += (size_t)n;
    return 0;
}

/* "%.6g" or "" for NaN, into a small caller buffer. */
static const char *cell(char *b, size_t n, double x)
{
    if (isfinite(x))
        snprintf(b, n, "%.6g", x);
    else
        b[0] = 0;
    return b;
}

int report_history_csv(char **out, const report_history *h)
{
    int rc;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    char c[9][32];
    rc = appendf(&buf, &len, &cap,
                 "stage,epoch,train_loss,valid_loss,accuracy,subset_accuracy,label_accuracy,micro_f1,macro_f1,lr,"
                 "seconds\n");
    for (size_t i = 0; rc == 0 && i < h->n; i++) {
        const report_epoch *e = &h->v[i];
        rc = appendf(&buf, &len, &cap, "%s,%d,%s,%s,%s,%s,%s,%s,%s,%s,%s\n", e->stage, e->epoch,
                     cell(c[0], 32, e->train_loss), cell(c[1], 32, e->valid_loss), cell(c[2], 32, e->accuracy),
                     cell(c[3], 32, e->subset_accuracy), cell(c[4], 32, e->label_accuracy),
                     cell(c[5], 32, e->micro_f1), cell(c[6], 32, e->macro_f1), cell(c[7], 32, e->lr),
                     cell(c[8], 32, e->seconds));
    }
    if (rc < 0) {
        free(buf);
        buf = NULL;
    }
    *out = buf;
    return rc;
}

typedef struct {
    int index;
    int64_t support;
} by_support;

static int cmp_support(const void *a, const void *b)
{
    const by_support *x = a, *y = b;
    if (x->support != y->support)
        return x->support > y->support ? -1 : 1;
    return x->index - y->index;
}

int report_result_json(char **out, const report_run *r)
{
    int rc = 0;
    by_support *order = NULL;
    char *text = NULL;
    json_t *root = json_pack("{s:i,s:s,s:s,s:i,s:o}", "version", 1, "phase", "Succeeded", "stage", r->stage,
                             "epochs", r->epochs, "metrics", overall_json(r));
    json_t *labels = json_array();
    *out = NULL;
    if (!root || !labels) {
        rc = err_set(KF_ENOMEM, "report: cannot encode JSON");
        goto done;
    }
    json_object_set(root, "labels", labels);
    if (r->device)
        json_object_set_new(root, "device", json_string(r->device));
    if (r->model_uri)
        json_object_set_new(root, "modelURI", json_string(r->model_uri));
    if (r->metrics_uri)
        json_object_set_new(root, "metricsURI", json_string(r->metrics_uri));
    json_object_set_new(root, "trainSeconds", num(r->train_seconds));
    if (!(text = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(4)))) {
        rc = err_set(KF_ENOMEM, "report: cannot encode JSON");
        goto done;
    }
    if (strlen(text) > REPORT_RESULT_MAX) { /* only absurdly long URIs get here */
        json_object_del(root, "metricsURI");
        json_object_del(root, "modelURI");
        free(text);
        text = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(4));
    }
    int L = r->valid ? r->valid->n_labels : 0;
    if (L > 0 && !(order = calloc((size_t)L, sizeof *order))) {
        rc = err_set(KF_ENOMEM, "out of memory");
        goto done;
    }
    for (int l = 0; l < L; l++)
        order[l] = (by_support){l, r->valid->labels[l].support};
    if (L)
        qsort(order, (size_t)L, sizeof *order, cmp_support);
    /* Add labels while the text fits; each try re-serialises (L is at most a few hundred). */
    for (int i = 0; i < L && text; i++) {
        int l = order[i].index;
        json_array_append_new(labels, label_json(&r->valid->labels[l], r->label_names[l], 0));
        char *t = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(4));
        if (!t || strlen(t) > REPORT_RESULT_MAX) {
            free(t);
            json_array_remove(labels, json_array_size(labels) - 1);
            break;
        }
        free(text);
        text = t;
    }
    if (!text || strlen(text) > REPORT_RESULT_MAX) {
        rc = err_set(KF_EINVAL, "report: result does not fit in %d bytes", REPORT_RESULT_MAX);
        goto done;
    }
    *out = text;
    text = NULL;
done:
    free(text);
    free(order);
    json_decref(labels);
    json_decref(root);
    return rc;
}

int report_failure_json(char **out, const char *reason, const char *message)
{
    /* bytes that are not UTF-8 (a message quoting bad input) are written as \xNN: JSON needs UTF-8 */
    char *esc = utf8_escape(message, strlen(message));
    size_t n = esc ? strlen(esc) : 0;
    char *msg = NULL;
    int rc = 0;
    *out = NULL;
    if (!esc)
        return err_set(KF_ENOMEM, "out of memory");
    message = esc;
    for (;;) {
        free(msg);
        if (!(msg = strndup(message, n)))
            return err_set(KF_ENOMEM, "out of memory");
        json_t *root = json_pack("{s:i,s:s,s:s,s:s?}", "version", 1, "phase", "Failed", "reason", reason,
                                 "message", msg);
        char *t = root ? json_dumps(root, JSON_COMPACT) : NULL;
        json_decref(root);
        if (t && strlen(t) <= REPORT_RESULT_MAX) {
            *out = t;
            break;
        }
        free(t);
        if (n == 0) {
            rc = err_set(KF_EINVAL, "report: failure result does not fit");
            break;
        }
        /* Shorten: drop what does not fit (escaping can only grow text), keep UTF-8 whole. */
        n = n > 256 ? n - n / 8 : n - 1;
        while (n > 0 && ((unsigned char)message[n] & 0xC0) == 0x80)
            n--;
    }
    free(msg);
    free(esc);
    return rc;
}
