/* test_metrics: per-label precision/recall/F1/support, accuracy and micro/macro F1 against
 * sklearn (metrics_ref.py) on random predictions, multi-label and single-label; batches are fed
 * in uneven pieces to exercise accumulation. Tolerance 1e-6 (probabilities are float32, the
 * decisions are compared away from the threshold). */
#include "err.h"
#include "metrics.h"
#include "pyref.h"
#include "safetensors.h"
#include "test.h"

static float *load(const st_file *f, const char *name, size_t n)
{
    float *x = malloc(n * sizeof *x);
    if (st_read_f32(x, n, f, name, NULL, 0) < 0)
        TEST_FAIL_("%s", err_msg());
    return x;
}

static void run(const st_file *f, const char *kind, int B, int L, int multi)
{
    char name[64];
    snprintf(name, sizeof name, "%s.probs", kind);
    float *probs = load(f, name, (size_t)B * L);
    snprintf(name, sizeof name, "%s.truth", kind);
    float *truth = load(f, name, multi ? (size_t)B * L : (size_t)B);
    snprintf(name, sizeof name, "%s.per_label", kind);
    float *per = load(f, name, 4 * (size_t)L);
    snprintf(name, sizeof name, "%s.overall", kind);
    float *all = load(f, name, 4);

    metrics_acc m;
    CHECK_EQ_INT(0, metrics_init(&m, L, multi));
    for (int b = 0; b < B;) { /* pieces of 1, 2, 3, ... rows */
        int n = b / 7 + 1;
        if (b + n > B)
            n = B - b;
        metrics_add(&m, probs + (size_t)b * L, truth + (multi ? (size_t)b * L : (size_t)b), n, 0.25 * n);
        b += n;
    }
    metrics_summary s;
    CHECK_EQ_INT(0, metrics_summarize(&s, &m));
    CHECK_EQ_INT(B, s.n);
    if (multi) { /* per-label (Hamming) and subset (exact match) accuracy; no plain accuracy */
        CHECK_NEAR(all[0], s.label_accuracy, 1e-6, 0);
        CHECK_NEAR(all[3], s.subset_accuracy, 1e-6, 0);
        CHECK(all[3] > 0.2); /* the reference made rows exactly right: the check can fail */
        CHECK(isnan(s.accuracy));
    } else {
        CHECK_NEAR(all[0], s.accuracy, 1e-6, 0);
        CHECK_NEAR(all[3], s.accuracy, 1e-6, 0);
        CHECK(isnan(s.subset_accuracy) && isnan(s.label_accuracy));
    }
    CHECK_NEAR(all[1], s.micro_f1, 1e-6, 0);
    CHECK_NEAR(all[2], s.macro_f1, 1e-6, 0);
    CHECK_NEAR(all[0], (double)m.correct / (multi ? (double)B * L : B), 1e-6, 0);
    for (int l = 0; l < L; l++) {
        CHECK_NEAR(per[l], s.labels[l].precision, 1e-6, 0);
        CHECK_NEAR(per[L + l], s.labels[l].recall, 1e-6, 0);
        CHECK_NEAR(per[2 * L + l], s.labels[l].f1, 1e-6, 0);
        CHECK_EQ_INT((int64_t)per[3 * L + l], s.labels[l].support);
    }
    /* The loss is the sample-weighted mean of batch means. */
    double wsum = 0;
    for (int b = 0; b < B;) {
        int n = b / 7 + 1;
        if (b + n > B)
            n = B - b;
        wsum += 0.25 * n * n;
        b += n;
    }
    CHECK_NEAR(wsum / B, s.loss, 1e-12, 1e-12);
    /* Recomputing from the counts alone (what a metrics.json reader does) gives the same. */
    metrics_summary r = s;
    r.accuracy = r.label_accuracy = r.micro_f1 = r.macro_f1 = -1;
    metrics_from_counts(&r, multi);
    if (multi)
        CHECK_NEAR(s.label_accuracy, r.label_accuracy, 1e-12, 0);
    else
        CHECK_NEAR(s.accuracy, r.accuracy, 1e-12, 0);
    CHECK_NEAR(s.macro_f1, r.macro_f1, 1e-12, 0);
    metrics_reset(&m);
    CHECK_EQ_INT(0, m.n);
    metrics_summary_dispose(&s);
    metrics_dispose(&m);
    free(probs);
    free(truth);
    free(per);
    free(all);
}

int main(void)
{
    metrics_acc bad;
    CHECK_EQ_INT(KF_EINVAL, metrics_init(&bad, 0, 1));
    st_file *f = py_reference("metrics_ref.py");
    if (!f) {
        test_failures++;
        return test_done();
    }
    run(f, "multi", 97, 9, 1);
    run(f, "single", 83, 7, 0);
    st_free(f);
    return test_done();
}
