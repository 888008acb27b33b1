/* curves: curves.svg from the epoch history - one row per stage: a loss panel (train and valid)
 * and, when the stage has them, a metrics panel (accuracy, micro F1, macro F1 on [0,1]). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "report.h"

typedef struct {
    char *buf;
    size_t len, cap;
    int failed;
} svg_buf;

static void put(svg_buf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(svg_buf *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (s->failed || n < 0) {
        s->failed = 1;
        return;
    }
    if (s->len + (size_t)n + 1 > s->cap) {
        size_t c = s->cap ? s->cap : 4096;
        while (c < s->len + (size_t)n + 1)
            c *= 2;
        char *b = realloc(s->buf, c);
        if (!b) {
            s->failed = 1;
            return;
        }
        s->buf = b;
        s->cap = c;
    }
    va_start(ap, fmt);
    vsnprintf(s->buf + s->len, s->cap - s->len, fmt, ap);
    va_end(ap);
    s->len += (size_t)n;
}

typedef struct {
    const char *name, *color;
    const double *y; /* [n], NaN = missing */
} series;

/* A "nice" tick step (1, 2 or 5 times a power of ten) for about 5 ticks over span. */
static double nice_step(double span)
{
    double raw = span / 5, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

enum { PANEL_W = 460, PANEL_H = 280, ML = 62, MR = 16, MT = 30, MB = 46 };

static void panel(svg_buf *s, int x0, int y0, const char *title, const char *ylabel, const series *sv,
                  int ns, size_t n, int fixed01)
{
    double lo = INFINITY, hi = -INFINITY;
    for (int k = 0; k < ns; k++)
        for (size_t i = 0; i < n; i++)
            if (isfinite(sv[k].y[i])) {
                lo = fmin(lo, sv[k].y[i]);
                hi = fmax(hi, sv[k].y[i]);
            }
    if (fixed01) {
        lo = 0;
        hi = 1;
    } else if (!isfinite(lo)) {
        lo = 0;
        hi = 1;
    } else if (hi - lo < 1e-9) {
        lo -= 0.5;
        hi += 0.5;
    } else {
        double pad = (hi - lo) * 0.08;
        lo -= pad;
        hi += pad;
    }
    const double step = nice_step(hi - lo);
    lo = floor(lo / step) * step;
    hi = ceil(hi / step) * step;
    const int pw = PANEL_W - ML - MR, ph = PANEL_H - MT - MB, px = x0 + ML, py = y0 + MT;
    const double xmax = n > 1 ? (double)n : 2;
#define SX(i) (px + ((double)(i) + 1 - 1) / (xmax - 1) * pw)
#define SY(v) (py + ph - ((v) - lo) / (hi - lo) * ph)
    put(s, "<g>\n<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">%s</text>\n",
        x0 + PANEL_W / 2, y0 + 18, title);
    put(s, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#444\"/>\n", px, py, pw, ph);
    for (double v = lo; v <= hi + step / 2; v += step) {
        double y = SY(v);
        put(s, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>"
               "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\">%.4g</text>\n",
            px, y, px + pw, y, px - 5, y + 4, fabs(v) < step / 1e6 ? 0.0 : v);
    }
    size_t every = n > 12 ? (n + 11) / 12 : 1;
    for (size_t i = 0; i < n; i += every) {
        double x = SX(i);
        put(s, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#444\"/>"
               "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-size=\"11\">%zu</text>\n",
            x, py + ph, x, py + ph + 5, x, py + ph + 18, i + 1);
    }
    put(s, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"12\">epoch</text>\n", px + pw / 2,
        py + ph + 36);
    put(s, "<text transform=\"translate(%d,%d) rotate(-90)\" text-anchor=\"middle\" font-size=\"12\">%s</text>\n",
        x0 + 16, py + ph / 2, ylabel);
    for (int k = 0, shown = 0; k < ns; k++) {
        int any = 0;
        for (size_t i = 0; i < n; i++)
            any |= isfinite(sv[k].y[i]);
        if (!any)
            continue; /* e.g. F1 of a language model */
        put(s, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", sv[k].color);
        for (size_t i = 0; i < n; i++)
            if (isfinite(sv[k].y[i]))
                put(s, "%.1f,%.1f ", SX(i), SY(sv[k].y[i]));
        put(s, "\"/>\n");
        for (size_t i = 0; i < n; i++)
            if (isfinite(sv[k].y[i]))
                put(s, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", SX(i), SY(sv[k].y[i]),
                    sv[k].color);
        /* legend, top right inside the plot */
        int ly = py + 14 + 16 * shown++, lx = px + pw - 110;
        put(s, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"3\"/>"
               "<text x=\"%d\" y=\"%d\" font-size=\"11\">%s</text>\n",
            lx, ly - 4, lx + 18, ly - 4, sv[k].color, lx + 24, ly, sv[k].name);
    }
    put(s, "</g>\n");
#undef SX
#undef SY
}

int report_curves_svg(char **out, const report_history *h)
{
    svg_buf s = {0};
    const char *stages[8];
    int n_stages = 0;
    double *col = NULL;
    *out = NULL;
    for (size_t i = 0; i < h->n && n_stages < 8; i++) {
        int seen = 0;
        for (int k = 0; k < n_stages; k++)
            seen |= strcmp(stages[k], h->v[i].stage) == 0;
        if (!seen)
            stages[n_stages++] = h->v[i].stage;
    }
    int rows = n_stages ? n_stages : 1, width = 2 * PANEL_W + 20, height = rows * (PANEL_H + 10) + 10;
    put(&s, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
            "font-family=\"sans-serif\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
        width, height, width, height);
    if (!n_stages)
        put(&s, "<text x=\"20\" y=\"40\" font-size=\"14\">no epochs recorded</text>\n");
    if (!(col = malloc((h->n ? h->n : 1) * 5 * sizeof *col))) {
        free(s.buf);
        return err_set(KF_ENOMEM, "out of memory");
    }
    for (int k = 0; k < n_stages; k++) {
        size_t n = 0;
        int has_metrics = 0, subset = 0;
        double *tl = col, *vl = col + h->n, *acc = col + 2 * h->n, *mi = col + 3 * h->n, *ma = col + 4 * h->n;
        for (size_t i = 0; i < h->n; i++) {
            const report_epoch *e = &h->v[i];
            if (strcmp(e->stage, stages[k]) != 0)
                continue;
            tl[n] = e->train_loss;
            vl[n] = e->valid_loss;
            subset |= isfinite(e->subset_accuracy); /* multi-label: exact-match accuracy */
            acc[n] = isfinite(e->subset_accuracy) ? e->subset_accuracy : e->accuracy;
            mi[n] = e->micro_f1;
            ma[n] = e->macro_f1;
            has_metrics |= isfinite(acc[n]) || isfinite(e->micro_f1);
            n++;
        }
        char title[96];
        int y0 = 10 + k * (PANEL_H + 10);
        snprintf(title, sizeof title, "%s: loss", stages[k]);
        series loss[2] = {{"train loss", "#1f77b4", tl}, {"valid loss", "#ff7f0e", vl}};
        panel(&s, 10, y0, title, "loss", loss, 2, n, 0);
        if (has_metrics) {
            snprintf(title, sizeof title, "%s: validation metrics", stages[k]);
            series m[3] = {{subset ? "subset accuracy" : "accuracy", "#2ca02c", acc}, {"micro F1", "#d62728", mi},
                           {"macro F1", "#9467bd", ma}};
            panel(&s, 20 + PANEL_W, y0, title, "score", m, 3, n, 1);
        }
    }
    put(&s, "</svg>\n");
    free(col);
    if (s.failed) {
        free(s.buf);
        return err_set(KF_ENOMEM, "out of memory");
    }
    *out = s.buf;
    return 0;
}
