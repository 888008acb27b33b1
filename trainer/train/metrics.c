/* metrics: counts -> precision/recall/F1, accuracy. See metrics.h. */
#include "metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

int metrics_init(metrics_acc *m, int n_labels, int multi_label)
{
    memset(m, 0, sizeof *m);
    if (n_labels < 1)
        return err_set(KF_EINVAL, "metrics: %d labels", n_labels);
    m->n_labels = n_labels;
    m->multi_label = multi_label;
    m->thresh = 0.5;
    m->tp = calloc((size_t)n_labels * 3, sizeof *m->tp);
    if (!m->tp)
        return err_set(KF_ENOMEM, "out of memory");
    m->fp = m->tp + n_labels;
    m->fn = m->fp + n_labels;
    return 0;
}

void metrics_dispose(metrics_acc *m)
{
    if (!m)
        return;
    free(m->tp);
    memset(m, 0, sizeof *m);
}

void metrics_reset(metrics_acc *m)
{
    memset(m->tp, 0, (size_t)m->n_labels * 3 * sizeof *m->tp);
    m->n = m->correct = m->exact = 0;
    m->loss_sum = 0;
}

void metrics_add(metrics_acc *m, const float *probs, const float *targets, int B, double loss)
{
    const int L = m->n_labels;
    for (int b = 0; b < B; b++) {
        const float *p = probs + (size_t)b * L;
        if (m->multi_label) {
            const float *t = targets + (size_t)b * L;
            int all = 1;
            for (int l = 0; l < L; l++) {
                int pred = p[l] > m->thresh, truth = t[l] > 0.5f;
                m->tp[l] += pred && truth;
                m->fp[l] += pred && !truth;
                m->fn[l] += !pred && truth;
                m->correct += pred == truth;
                all &= pred == truth;
            }
            m->exact += all;
        } else {
            int best = 0, truth = (int)targets[b];
            for (int l = 1; l < L; l++)
                if (p[l] > p[best])
                    best = l;
            if (truth < 0 || truth >= L)
                truth = -1;
            if (best == truth) {
                m->tp[best]++;
                m->correct++;
                m->exact++;
            } else {
                m->fp[best]++;
                if (truth >= 0)
                    m->fn[truth]++;
            }
        }
    }
    m->n += B;
    m->loss_sum += loss * B;
}

static double ratio(double num, double den) { return den > 0 ? num / den : 0.0; }

void metrics_from_counts(metrics_summary *s, int multi_label)
{
    int64_t tp = 0, fp = 0, fn = 0;
    double f1_sum = 0;
    int counted = 0;
    for (int l = 0; l < s->n_labels; l++) {
        metrics_label *x = &s->labels[l];
        x->support = x->tp + x->fn;
        x->precision = ratio((double)x->tp, (double)(x->tp + x->fp));
        x->recall = ratio((double)x->tp, (double)(x->tp + x->fn));
        x->f1 = ratio(2.0 * x->tp, (double)(2 * x->tp + x->fp + x->fn));
        tp += x->tp;
        fp += x->fp;
        fn += x->fn;
        if (multi_label || x->tp + x->fp + x->fn > 0) {
            f1_sum += x->f1;
            counted++;
        }
    }
    s->micro_f1 = ratio(2.0 * tp, (double)(2 * tp + fp + fn));
    s->macro_f1 = counted ? f1_sum / counted : 0.0;
    if (multi_label) {
        s->accuracy = NAN;
        s->label_accuracy = ratio((double)s->n * s->n_labels - (double)(fp + fn), (double)s->n * s->n_labels);
    } else {
        s->accuracy = ratio((double)tp, (double)s->n);
        s->subset_accuracy = s->label_accuracy = NAN;
    }
}

int metrics_summarize(metrics_summary *s, const metrics_acc *m)
{
    memset(s, 0, sizeof *s);
    s->labels = calloc((size_t)m->n_labels, sizeof *s->labels);
    if (!s->labels)
        return err_set(KF_ENOMEM, "out of memory");
    s->n_labels = m->n_labels;
    s->n = m->n;
    for (int l = 0; l < m->n_labels; l++) {
        s->labels[l].tp = m->tp[l];
        s->labels[l].fp = m->fp[l];
        s->labels[l].fn = m->fn[l];
    }
    metrics_from_counts(s, m->multi_label);
    if (m->multi_label)
        s->subset_accuracy = ratio((double)m->exact, (double)m->n);
    s->loss = m->n ? m->loss_sum / (double)m->n : 0.0;
    return 0;
}

void metrics_summary_dispose(metrics_summary *s)
{
    if (!s)
        return;
    free(s->labels);
    s->labels = NULL;
}
