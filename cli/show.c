/* show: tables, status pages, progress lines and run summaries (see show.h). */
#include "show.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kubetime.h"

static const char *str(const json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

static double num(const json_t *o, const char *k, double dflt)
{
    const json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : dflt;
}

static int has_num(const json_t *o, const char *k) { return json_is_number(json_object_get(o, k)); }

void show_duration(char *out, size_t n, double s)
{
    if (!isfinite(s) || s < 0)
        s = 0;
    long t = (long)(s + 0.5);
    if (t < 60)
        snprintf(out, n, "%lds", t);
    else if (t < 3600)
        snprintf(out, n, "%ldm%02lds", t / 60, t % 60);
    else if (t < 86400)
        snprintf(out, n, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
    else
        snprintf(out, n, "%ldd%ldh", t / 86400, (t % 86400) / 3600);
}

/* kubectl's age: the two largest units ("5m", "3h", "2d"). */
static void show_age(char *out, size_t n, const char *ts, double now)
{
    double t;
    if (!ts || kube_time_parse(ts, &t) != 0) {
        snprintf(out, n, "<unknown>");
        return;
    }
    long s = (long)(now - t);
    if (s < 0)
        s = 0;
    if (s < 120)
        snprintf(out, n, "%lds", s);
    else if (s < 3600 * 3)
        snprintf(out, n, "%ldm", s / 60);
    else if (s < 86400 * 2)
        snprintf(out, n, "%ldh", s / 3600);
    else
        snprintf(out, n, "%ldd", s / 86400);
}

void show_progress_text(char *out, size_t n, const json_t *p, int bar_width)
{
    char bar[96] = "", eta[32] = "", loss[32] = "";
    double pct = num(p, "percent", 0);
    if (pct < 0)
        pct = 0;
    if (pct > 100)
        pct = 100;
    if (bar_width > 0) {
        if (bar_width > 80)
            bar_width = 80;
        int full = (int)(pct / 100.0 * bar_width + 0.5);
        bar[0] = '[';
        for (int i = 0; i < bar_width; i++)
            bar[1 + i] = i < full ? '#' : '.';
        bar[1 + bar_width] = ']';
        bar[2 + bar_width] = ' ';
        bar[3 + bar_width] = '\0';
    }
    if (has_num(p, "loss"))
        snprintf(loss, sizeof loss, "  loss %.4f", num(p, "loss", 0));
    if (has_num(p, "etaSeconds") && pct < 100) {
        char d[24];
        show_duration(d, sizeof d, num(p, "etaSeconds", 0));
        snprintf(eta, sizeof eta, "  ETA %s", d);
    }
    const char *stage = str(p, "stage");
    /* percent is the whole run's (all stages), so it comes first, next to the bar */
    snprintf(out, n, "%s%3.0f%%  %s epoch %ld/%ld%s%s", bar, pct, stage ? stage : "training", (long)num(p, "epoch", 0),
             (long)num(p, "epochs", 0), loss, eta);
}

/* ---- kubefit get ---- */

/* A printer column's simple JSONPath (".status.metrics.microF1") on obj. */
static const json_t *json_path(const json_t *obj, const char *path)
{
    const json_t *v = obj;
    char key[128];
    if (*path == '.')
        path++;
    while (v && *path) {
        size_t n = strcspn(path, ".");
        if (n >= sizeof key)
            return NULL;
        memcpy(key, path, n);
        key[n] = '\0';
        v = json_object_get(v, key);
        path += n + (path[n] == '.');
    }
    return v;
}

static void cell_text(char *out, size_t n, const json_t *v, const char *type, double now)
{
    if (!v || json_is_null(v))
        snprintf(out, n, "%s", "");
    else if (type && !strcmp(type, "date"))
        show_age(out, n, json_string_value(v), now);
    else if (json_is_string(v))
        snprintf(out, n, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(out, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v))
        snprintf(out, n, "%.4g", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(out, n, "%s", json_is_true(v) ? "true" : "false");
    else
        snprintf(out, n, "%s", "<object>");
}

void show_table(FILE *f, const json_t *jobs, const show_table_opts *o)
{
    enum { MAXC = 16 };
    const json_t *cols[MAXC];
    size_t nc = 0, i;
    json_t *c;
    json_array_foreach(o->columns, i, c) {
        if (nc < MAXC && (o->wide || num(c, "priority", 0) == 0))
            cols[nc++] = c;
    }
    size_t rows = json_array_size(jobs);
    size_t ncell = (rows + 1) * (nc + 2);
    char(*cells)[128] = calloc(ncell ? ncell : 1, sizeof *cells);
    size_t width[MAXC + 2] = {0};
    if (!cells)
        return;
    /* row 0: headers; columns: [namespace], name, printer columns */
    size_t w = nc + 2;
    snprintf(cells[0], 128, "NAMESPACE");
    snprintf(cells[1], 128, "NAME");
    for (size_t k = 0; k < nc; k++) {
        snprintf(cells[2 + k], 128, "%s", str(cols[k], "name") ? str(cols[k], "name") : "");
        for (char *p = cells[2 + k]; *p; p++)
            *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    }
    json_t *job;
    json_array_foreach(jobs, i, job) {
        const json_t *meta = json_object_get(job, "metadata");
        snprintf(cells[(i + 1) * w], 128, "%s", str(meta, "namespace") ? str(meta, "namespace") : "");
        snprintf(cells[(i + 1) * w + 1], 128, "%s", str(meta, "name") ? str(meta, "name") : "");
        for (size_t k = 0; k < nc; k++)
            cell_text(cells[(i + 1) * w + 2 + k], 128, json_path(job, str(cols[k], "jsonPath") ? str(cols[k], "jsonPath") : ""),
                      str(cols[k], "type"), o->now);
    }
    for (size_t r = o->no_headers; r <= rows; r++)
        for (size_t k = 0; k < w; k++)
            if (strlen(cells[r * w + k]) > width[k])
                width[k] = strlen(cells[r * w + k]);
    for (size_t r = o->no_headers; r <= rows; r++) {
        for (size_t k = o->all_namespaces ? 0 : 1; k < w; k++)
            fprintf(f, k + 1 < w ? "%-*s   " : "%-*s", k + 1 < w ? (int)width[k] : 0, cells[r * w + k]);
        fputc('\n', f);
    }
    free(cells);
}

/* ---- metrics ---- */

typedef struct {
    const char *name;
    double f1;
    long support;
} label_row;

static int by_f1_desc(const void *a, const void *b)
{
    const label_row *x = a, *y = b;
    if (x->f1 != y->f1)
        return x->f1 > y->f1 ? -1 : 1;
    return x->support > y->support ? -1 : x->support < y->support;
}

void show_metrics(FILE *f, const json_t *m, const json_t *full, const char *in)
{
    const json_t *overall = full ? json_object_get(full, "overall") : NULL;
    if (!m || !json_object_size(m))
        m = overall;
    int multi = has_num(m, "microF1") && (has_num(m, "subsetAccuracy") || has_num(m, "labelAccuracy"));
    if (full && json_is_boolean(json_object_get(full, "multiLabel")))
        multi = json_is_true(json_object_get(full, "multiLabel"));
    const json_t *labels = full ? json_object_get(full, "labels") : json_object_get(m, "labels");
    size_t n_labels = json_array_size(labels);
    if (multi) {
        fprintf(f, "%smicro-F1 %.3f   macro-F1 %.3f", in, num(m, "microF1", NAN), num(m, "macroF1", NAN));
        if (full)
            fprintf(f, "   (multi-label, %zu labels, %ld train / %ld validation texts)", n_labels,
                    (long)num(full, "nTrain", 0), (long)num(full, "nValid", 0));
        fputc('\n', f);
        if (has_num(m, "subsetAccuracy"))
            fprintf(f, "%sexact label set right for %.1f%% of the texts", in, 100 * num(m, "subsetAccuracy", 0));
        if (has_num(m, "labelAccuracy"))
            fprintf(f, "; label accuracy %.3f (each yes/no decision; most labels are absent from most texts, "
                       "so this is high for any model)", num(m, "labelAccuracy", 0));
        fputc('\n', f);
    } else {
        fprintf(f, "%saccuracy %.3f   macro-F1 %.3f", in, num(m, "accuracy", NAN), num(m, "macroF1", NAN));
        if (full)
            fprintf(f, "   (single-label, %zu labels, %ld train / %ld validation texts)", n_labels,
                    (long)num(full, "nTrain", 0), (long)num(full, "nValid", 0));
        fputc('\n', f);
    }
    if (has_num(m, "validLoss") || has_num(m, "loss")) {
        fprintf(f, "%strain loss %.4f   validation loss %.4f", in, num(m, "loss", NAN), num(m, "validLoss", NAN));
        if (has_num(m, "trainSeconds") || (full && has_num(full, "trainSeconds"))) {
            char d[24];
            show_duration(d, sizeof d, has_num(m, "trainSeconds") ? num(m, "trainSeconds", 0) : num(full, "trainSeconds", 0));
            fprintf(f, "   trained in %s", d);
        }
        fputc('\n', f);
    }
    if (!n_labels)
        return;
    label_row *rows = calloc(n_labels, sizeof *rows);
    size_t n = 0, zero = 0, i;
    json_t *l;
    if (!rows)
        return;
    json_array_foreach(labels, i, l) {
        if (!str(l, "name") || num(l, "support", 0) <= 0)
            continue;
        rows[n++] = (label_row){str(l, "name"), num(l, "f1", 0), (long)num(l, "support", 0)};
        zero += num(l, "f1", 0) <= 0;
    }
    /* best and worst among the labels with enough validation texts to say (F1 on 1-4 texts is
     * mostly luck), when there are enough of those */
    size_t all = n, frequent = 0;
    for (size_t k = 0; k < n; k++)
        frequent += rows[k].support >= 5;
    if (frequent >= 10) {
        size_t m = 0;
        for (size_t k = 0; k < n; k++)
            if (rows[k].support >= 5)
                rows[m++] = rows[k];
        n = m;
    }
    qsort(rows, n, sizeof *rows, by_f1_desc);
    size_t show = n < 10 ? (n + 1) / 2 : 5;
    if (n && rows[0].f1 <= 0) {
        fprintf(f, "%sno label is predicted right yet (F1 0 for all %zu with validation texts)\n", in, all);
        free(rows);
        return;
    }
    size_t right = 0; /* best labels are ones the model gets right at least sometimes */
    while (right < n && rows[right].f1 > 0)
        right++;
    if (show > right)
        show = right;
    if (n) {
        fprintf(f, "%sbest labels (F1, validation texts%s):  ", in, n < all ? ", labels with 5 or more" : "");
        for (size_t k = 0; k < show; k++)
            fprintf(f, "%s%s %.2f (%ld)", k ? ", " : "", rows[k].name, rows[k].f1, rows[k].support);
        fputc('\n', f);
    }
    if (n > show) {
        fprintf(f, "%sworst labels:  ", in);
        size_t from = n - (n - show < show ? n - show : show);
        for (size_t k = from; k < n; k++)
            fprintf(f, "%s%s %.2f (%ld)", k > from ? ", " : "", rows[k].name, rows[k].f1, rows[k].support);
        fputc('\n', f);
    }
    if (full && zero)
        fprintf(f, "%s%zu of %zu labels with validation texts are never predicted right (F1 0)\n", in, zero, all);
    else if (!full)
        fprintf(f, "%s(the %zu most frequent labels that fit in the result; all labels are in metrics.json)\n", in,
                n_labels);
    free(rows);
}

/* ---- kubefit status ---- */

static const json_t *condition(const json_t *st, const char *type)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(st, "conditions"), i, c) {
        const char *t = str(c, "type");
        if (t && !strcmp(t, type))
            return c;
    }
    return NULL;
}

static const json_t *last_succeeded_run(const json_t *st)
{
    const json_t *runs = json_object_get(st, "runs"), *best = NULL;
    size_t i;
    json_t *r;
    json_array_foreach(runs, i, r) {
        const char *ph = str(r, "phase");
        if (ph && !strcmp(ph, "Succeeded"))
            best = r;
    }
    return best;
}

void show_status(FILE *f, const json_t *job, double now, int tty)
{
    const json_t *meta = json_object_get(job, "metadata"), *spec = json_object_get(job, "spec");
    const json_t *st = json_object_get(job, "status");
    const char *phase = str(st, "phase");
    char age[32], d[32];
    show_age(age, sizeof age, str(meta, "creationTimestamp"), now);
    fprintf(f, "Name:        %s\nNamespace:   %s\n", str(meta, "name") ? str(meta, "name") : "",
            str(meta, "namespace") ? str(meta, "namespace") : "");
    const json_t *stor = json_object_get(spec, "storage");
    fprintf(f, "Language:    %s   epochs %ld   bucket %s   modelDir %s\n", str(spec, "language") ? str(spec, "language") : "?",
            (long)num(spec, "epochs", 0), str(stor, "bucket") ? str(stor, "bucket") : "?",
            str(stor, "modelDir") ? str(stor, "modelDir") : "models");
    if (str(spec, "schedule"))
        fprintf(f, "Schedule:    %s (%s)%s%s\n", str(spec, "schedule"), str(spec, "timeZone") ? str(spec, "timeZone") : "UTC",
                str(st, "lastScheduleTime") ? ", last " : "", str(st, "lastScheduleTime") ? str(st, "lastScheduleTime") : "");
    fprintf(f, "Age:         %s\n", age);
    if (!phase) {
        fprintf(f, "Phase:       (none yet: the controller has not seen this job; is kubefit-controller running?)\n");
        return;
    }
    fprintf(f, "Phase:       %s", phase);
    if (str(st, "reason"))
        fprintf(f, " (%s)", str(st, "reason"));
    fputc('\n', f);
    if (str(st, "message") && *str(st, "message"))
        fprintf(f, "Message:     %s\n", str(st, "message"));
    fprintf(f, "Run:         %ld, attempt %ld (%ld failed)", (long)num(st, "currentRun", 0), (long)num(st, "attempts", 0),
            (long)num(st, "failures", 0));
    if (str(st, "podName"))
        fprintf(f, ", pod %s", str(st, "podName"));
    double t0, t1;
    if (kube_time_parse(str(st, "startTime"), &t0) == 0) {
        if (kube_time_parse(str(st, "completionTime"), &t1) != 0)
            t1 = now;
        show_duration(d, sizeof d, t1 - t0);
        fprintf(f, ", %s %s", str(st, "completionTime") ? "took" : "running for", d);
    }
    fputc('\n', f);
    if (str(st, "nextAttemptTime"))
        fprintf(f, "Next try:    %s\n", str(st, "nextAttemptTime"));
    const json_t *prog = json_object_get(st, "progress");
    if (json_is_object(prog)) {
        char line[256];
        show_progress_text(line, sizeof line, prog, tty ? 30 : 0);
        fprintf(f, "Progress:    %s\n", line);
    }
    fprintf(f, "Conditions: ");
    const char *types[] = {"Running", "Succeeded", "Failed", "Suspended", "Scheduled"};
    for (size_t k = 0; k < sizeof types / sizeof *types; k++) {
        const json_t *c = condition(st, types[k]);
        if (c)
            fprintf(f, " %s=%s%s%s%s", types[k], str(c, "status") ? str(c, "status") : "?", str(c, "reason") ? "(" : "",
                    str(c, "reason") ? str(c, "reason") : "", str(c, "reason") ? ")" : "");
    }
    fputc('\n', f);
    const json_t *m = json_object_get(st, "metrics");
    if (json_is_object(m) && json_object_size(m)) {
        fprintf(f, "Metrics (run %ld):\n", (long)num(st, "currentRun", 0));
        show_metrics(f, m, NULL, "  ");
    } else {
        const json_t *r = last_succeeded_run(st);
        if (r) {
            fprintf(f, "Last success: run %ld:", (long)num(r, "run", 0));
            if (has_num(r, "microF1"))
                fprintf(f, " micro-F1 %.3f", num(r, "microF1", 0));
            if (has_num(r, "accuracy"))
                fprintf(f, " accuracy %.3f", num(r, "accuracy", 0));
            fputc('\n', f);
        }
    }
    if (str(st, "modelURI"))
        fprintf(f, "Model:       %s\n", str(st, "modelURI"));
    if (str(st, "metricsURI"))
        fprintf(f, "Metrics:     %s\n", str(st, "metricsURI"));
    const json_t *runs = json_object_get(st, "runs");
    if (json_array_size(runs)) {
        fprintf(f, "Runs:\n  %-4s %-10s %-22s %-8s %-9s %-9s %s\n", "RUN", "PHASE", "REASON", "ATTEMPTS", "DURATION",
                "SCORE", "MODEL");
        size_t i;
        json_t *r;
        json_array_foreach(runs, i, r) {
            char score[32] = "";
            if (has_num(r, "microF1"))
                snprintf(score, sizeof score, "F1 %.3f", num(r, "microF1", 0));
            else if (has_num(r, "accuracy"))
                snprintf(score, sizeof score, "acc %.3f", num(r, "accuracy", 0));
            d[0] = '\0';
            if (kube_time_parse(str(r, "startTime"), &t0) == 0 && kube_time_parse(str(r, "completionTime"), &t1) == 0)
                show_duration(d, sizeof d, t1 - t0);
            fprintf(f, "  %-4ld %-10s %-22s %-8ld %-9s %-9s %s\n", (long)num(r, "run", 0), str(r, "phase") ? str(r, "phase") : "",
                    str(r, "reason") ? str(r, "reason") : "", (long)num(r, "attempts", 0), d, score,
                    str(r, "modelURI") ? str(r, "modelURI") : "");
        }
    }
}

void show_summary(FILE *f, const json_t *job, const json_t *full)
{
    const json_t *meta = json_object_get(job, "metadata"), *st = json_object_get(job, "status");
    const char *phase = str(st, "phase") ? str(st, "phase") : "Unknown";
    char d[32] = "";
    double t0, t1;
    if (kube_time_parse(str(st, "startTime"), &t0) == 0 && kube_time_parse(str(st, "completionTime"), &t1) == 0)
        show_duration(d, sizeof d, t1 - t0);
    fprintf(f, "trainingjob %s: %s", str(meta, "name") ? str(meta, "name") : "?", phase);
    if (str(st, "reason") && strcmp(str(st, "reason"), phase) != 0)
        fprintf(f, " (%s)", str(st, "reason"));
    fprintf(f, ", run %ld, %ld attempt%s%s%s\n", (long)num(st, "currentRun", 0), (long)num(st, "attempts", 0),
            num(st, "attempts", 0) == 1 ? "" : "s", *d ? ", " : "", d);
    if (strcmp(phase, "Succeeded") != 0) {
        if (str(st, "message"))
            fprintf(f, "  %s\n", str(st, "message"));
        return;
    }
    show_metrics(f, json_object_get(st, "metrics"), full, "  ");
    if (str(st, "modelURI"))
        fprintf(f, "  model:    %s\n", str(st, "modelURI"));
    if (str(st, "metricsURI"))
        fprintf(f, "  metrics:  %s\n", str(st, "metricsURI"));
}
