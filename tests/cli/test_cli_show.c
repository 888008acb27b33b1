/* show: durations, progress lines, the get table (the CRD's printer columns), metrics summaries. */
#include <jansson.h>
#include <string.h>

#include "crd.h"
#include "show.h"
#include "test.h"

/* What fn printed, in a static buffer. */
#define CAPTURE(buf, stmt)                                                                            \
    do {                                                                                              \
        char *mem_ = NULL;                                                                            \
        size_t len_ = 0;                                                                              \
        FILE *f = open_memstream(&mem_, &len_);                                                       \
        stmt;                                                                                         \
        fclose(f);                                                                                    \
        snprintf(buf, sizeof buf, "%s", mem_ ? mem_ : "");                                            \
        free(mem_);                                                                                   \
    } while (0)

int main(void)
{
    char d[32], out[4096];
    show_duration(d, sizeof d, 45.4);
    CHECK_EQ_STR("45s", d);
    show_duration(d, sizeof d, 185);
    CHECK_EQ_STR("3m05s", d);
    show_duration(d, sizeof d, 7440);
    CHECK_EQ_STR("2h04m", d);
    show_duration(d, sizeof d, 3 * 86400 + 4 * 3600);
    CHECK_EQ_STR("3d4h", d);

    json_t *p = json_loads("{\"stage\":\"classifier\",\"epoch\":3,\"epochs\":8,\"loss\":0.12345,\"percent\":42.4,"
                           "\"etaSeconds\":80}", 0, NULL);
    show_progress_text(out, sizeof out, p, 0);
    CHECK_EQ_STR(" 42%  classifier epoch 3/8  loss 0.1235  ETA 1m20s", out);
    show_progress_text(out, sizeof out, p, 10);
    CHECK_EQ_STR("[####......]  42%  classifier epoch 3/8  loss 0.1235  ETA 1m20s", out);
    json_decref(p);

    crd *c = NULL;
    CHECK_EQ_INT(0, crd_load(&c));
    json_t *jobs = json_loads(
        "[{\"metadata\":{\"name\":\"fr-classifier\",\"namespace\":\"ml\",\"creationTimestamp\":\"2026-01-01T00:00:00Z\"},"
        "\"spec\":{\"language\":\"fr\"},\"status\":{\"phase\":\"Succeeded\",\"currentRun\":2,\"metrics\":{\"microF1\":"
        "0.61234}}},{\"metadata\":{\"name\":\"en\",\"namespace\":\"default\",\"creationTimestamp\":"
        "\"2026-01-01T01:00:00Z\"},\"spec\":{\"language\":\"en\"}}]",
        0, NULL);
    show_table_opts to = {.columns = c ? crd_printer_columns(c) : NULL, .now = 1767229200 + 600};
    CAPTURE(out, show_table(f, jobs, &to));
    CHECK_EQ_STR("NAME            PHASE       LANGUAGE   ACCURACY   MICRO-F1   AGE\n"
                 "fr-classifier   Succeeded   fr                    0.6123     70m\n"
                 "en                          en                               10m\n",
                 out);
    to.wide = 1, to.all_namespaces = 1, to.no_headers = 1;
    CAPTURE(out, show_table(f, jobs, &to));
    CHECK_EQ_STR("ml        fr-classifier   Succeeded   fr      0.6123   2   70m\n"
                 "default   en                          en                   10m\n",
                 out);
    json_decref(jobs);
    crd_free(c);

    /* multi-label: F1 first, accuracy explained; labels with too few texts left out of best/worst */
    json_t *full = json_loads(
        "{\"multiLabel\":true,\"nTrain\":4000,\"nValid\":800,\"trainSeconds\":185,\"overall\":{\"subsetAccuracy\":0.25,"
        "\"labelAccuracy\":0.95,\"microF1\":0.7,\"macroF1\":0.5,\"loss\":0.1,\"validLoss\":0.12},\"labels\":["
        "{\"name\":\"a\",\"f1\":0.9,\"support\":50},{\"name\":\"b\",\"f1\":0.8,\"support\":40},"
        "{\"name\":\"c\",\"f1\":0.7,\"support\":30},{\"name\":\"d\",\"f1\":0.6,\"support\":20},"
        "{\"name\":\"e\",\"f1\":0.5,\"support\":20},{\"name\":\"f\",\"f1\":0.4,\"support\":20},"
        "{\"name\":\"g\",\"f1\":0.3,\"support\":10},{\"name\":\"h\",\"f1\":0.2,\"support\":10},"
        "{\"name\":\"i\",\"f1\":0.1,\"support\":10},{\"name\":\"j\",\"f1\":0.0,\"support\":10},"
        "{\"name\":\"rare\",\"f1\":1.0,\"support\":2},{\"name\":\"none\",\"f1\":0.0,\"support\":0}]}",
        0, NULL);
    CAPTURE(out, show_metrics(f, NULL, full, "  "));
    CHECK_EQ_STR("  micro-F1 0.700   macro-F1 0.500   (multi-label, 12 labels, 4000 train / 800 validation texts)\n"
                 "  exact label set right for 25.0% of the texts; label accuracy 0.950 (each yes/no decision; most "
                 "labels are absent from most texts, so this is high for any model)\n"
                 "  train loss 0.1000   validation loss 0.1200   trained in 3m05s\n"
                 "  best labels (F1, validation texts, labels with 5 or more):  a 0.90 (50), b 0.80 (40), c 0.70 (30), "
                 "d 0.60 (20), e 0.50 (20)\n"
                 "  worst labels:  f 0.40 (20), g 0.30 (10), h 0.20 (10), i 0.10 (10), j 0.00 (10)\n"
                 "  1 of 11 labels with validation texts are never predicted right (F1 0)\n",
                 out);
    json_decref(full);
    /* single-label, from a status alone */
    json_t *m = json_loads("{\"accuracy\":0.91,\"macroF1\":0.88,\"microF1\":0.91,\"validLoss\":0.3,\"loss\":0.2,"
                           "\"labels\":[{\"name\":\"pos\",\"f1\":0.92,\"support\":40},{\"name\":\"neg\",\"f1\":0.84,"
                           "\"support\":30}]}", 0, NULL);
    CAPTURE(out, show_metrics(f, m, NULL, ""));
    CHECK_EQ_STR("accuracy 0.910   macro-F1 0.880\n"
                 "train loss 0.2000   validation loss 0.3000\n"
                 "best labels (F1, validation texts):  pos 0.92 (40)\n"
                 "worst labels:  neg 0.84 (30)\n"
                 "(the 2 most frequent labels that fit in the result; all labels are in metrics.json)\n",
                 out);
    json_decref(m);
    return test_done();
}
