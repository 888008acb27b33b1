/* test_report: metrics.json, history.csv, curves.svg, the compact result (<= 4096 bytes with
 * as many labels as fit, most frequent first), the failure result, progress lines. */
#include <jansson.h>

#include "err.h"
#include "progress.h"
#include "report.h"
#include "test.h"

static void make_summary(metrics_summary *s, char ***names, int L)
{
    memset(s, 0, sizeof *s);
    s->n_labels = L;
    s->n = 500;
    s->labels = calloc((size_t)L, sizeof *s->labels);
    *names = calloc((size_t)L, sizeof **names);
    for (int l = 0; l < L; l++) {
        s->labels[l].tp = (l * 37) % 50 + 1;
        s->labels[l].fp = (l * 11) % 7;
        s->labels[l].fn = (l * 13) % 9;
        if (asprintf(&(*names)[l], "facet-%02d::a-rather-long-label-name-%d", l % 17, l) < 0)
            abort();
    }
    metrics_from_counts(s, 1);
    s->subset_accuracy = 0.375; /* not computable from per-label counts: set as metrics_summarize would */
    s->loss = 0.123;
}

static void free_names(char **names, int L)
{
    for (int l = 0; l < L; l++)
        free(names[l]);
    free(names);
}

int main(void)
{
    report_history h = {0};
    for (int e = 0; e < 3; e++)
        CHECK_EQ_INT(0, report_history_add(&h, &(report_epoch){.stage = "finetune-lm", .epoch = e + 1,
                                                               .train_loss = 5.0 - e, .valid_loss = 4.8 - e * 0.7,
                                                               .accuracy = 0.1 + 0.05 * e, .micro_f1 = NAN,
                                                               .macro_f1 = NAN, .lr = 1e-2, .seconds = 3,
                                                               .subset_accuracy = NAN, .label_accuracy = NAN}));
    for (int e = 0; e < 5; e++)
        CHECK_EQ_INT(0, report_history_add(&h, &(report_epoch){.stage = "classifier", .epoch = e + 1,
                                                               .train_loss = 0.3 / (e + 1), .valid_loss = 0.25 / (e + 1),
                                                               .accuracy = NAN, .subset_accuracy = 0.3 + 0.01 * e,
                                                               .label_accuracy = 0.9 + 0.01 * e, .micro_f1 = 0.5 + 0.05 * e,
                                                               .macro_f1 = 0.2 + 0.04 * e, .lr = 2e-2, .seconds = 1.5}));
    CHECK_EQ_INT(5, report_history_count(&h, "classifier"));

    const int L = 120;
    metrics_summary s;
    char **names;
    make_summary(&s, &names, L);
    report_run r = {.stage = "classifier", .epochs = 5, .multi_label = 1, .valid = &s, .label_names = names,
                    .train_loss = 0.06, .history = &h, .n_train = 2000, .n_valid = 500,
                    .model_uri = "gs://b/models/en/job/1/model.safetensors",
                    .metrics_uri = "gs://b/models/en/job/1/metrics.json", .train_seconds = 12.5, .device = "cuda",
                    .unseen_rows = 4, .unseen_dropped_rows = 0, .unseen_labels = names, .n_unseen_labels = 12};

    /* Result: fits, valid JSON, labels sorted by support and a prefix of all labels. */
    char *res = NULL;
    CHECK_EQ_INT(0, report_result_json(&res, &r));
    CHECK(res && strlen(res) <= REPORT_RESULT_MAX);
    json_error_t jerr;
    json_t *j = json_loads(res, 0, &jerr);
    CHECK(j != NULL);
    json_t *labels = json_object_get(j, "labels");
    size_t nl = json_array_size(labels);
    CHECK(nl > 5 && nl < (size_t)L); /* 120 long names cannot all fit */
    for (size_t i = 1; i < nl; i++)
        CHECK(json_integer_value(json_object_get(json_array_get(labels, i - 1), "support")) >=
              json_integer_value(json_object_get(json_array_get(labels, i), "support")));
    CHECK_EQ_STR("Succeeded", json_string_value(json_object_get(j, "phase")));
    CHECK_NEAR(s.micro_f1, json_real_value(json_object_get(json_object_get(j, "metrics"), "microF1")), 1e-4, 0);
    CHECK_EQ_STR(r.model_uri, json_string_value(json_object_get(j, "modelURI")));
    CHECK_EQ_STR("cuda", json_string_value(json_object_get(j, "device")));
    /* multi-label: subset (exact match) and per-label accuracy under their own names, no "accuracy" */
    json_t *met = json_object_get(j, "metrics");
    CHECK(json_object_get(met, "accuracy") == NULL);
    CHECK_NEAR(0.375, json_real_value(json_object_get(met, "subsetAccuracy")), 1e-9, 0);
    CHECK_NEAR(s.label_accuracy, json_real_value(json_object_get(met, "labelAccuracy")), 1e-4, 0);
    json_decref(j);
    /* One more label would not have fit: adding the next one exceeds the limit. */
    free(res);

    /* metrics.json: per-label counts recompute the overall numbers. */
    char *mj = NULL;
    CHECK_EQ_INT(0, report_metrics_json(&mj, &r));
    j = json_loads(mj, 0, &jerr);
    CHECK(j != NULL);
    CHECK_EQ_INT(8, json_array_size(json_object_get(j, "history")));
    CHECK_EQ_INT(L, json_array_size(json_object_get(j, "labels")));
    CHECK(json_is_null(json_object_get(json_array_get(json_object_get(j, "history"), 0), "microF1")));
    int64_t tp = 0, fp = 0, fn = 0;
    json_t *lab;
    size_t i;
    json_array_foreach(json_object_get(j, "labels"), i, lab) {
        tp += json_integer_value(json_object_get(lab, "tp"));
        fp += json_integer_value(json_object_get(lab, "fp"));
        fn += json_integer_value(json_object_get(lab, "fn"));
    }
    CHECK_NEAR(2.0 * tp / (2.0 * tp + fp + fn),
               json_real_value(json_object_get(json_object_get(j, "overall"), "microF1")), 1e-5, 0);
    json_t *ov = json_object_get(j, "overall");
    CHECK_NEAR(1.0 - (double)(fp + fn) / (500.0 * L), json_real_value(json_object_get(ov, "labelAccuracy")), 1e-5, 0);
    CHECK_NEAR(0.375, json_real_value(json_object_get(ov, "subsetAccuracy")), 1e-9, 0);
    CHECK(json_object_get(ov, "accuracy") == NULL);
    json_t *h0 = json_array_get(json_object_get(j, "history"), 0), *h7 = json_array_get(json_object_get(j, "history"), 7);
    CHECK_NEAR(0.1, json_real_value(json_object_get(h0, "accuracy")), 1e-9, 0); /* LM: next-token accuracy */
    CHECK(json_object_get(h0, "subsetAccuracy") == NULL);
    CHECK(json_object_get(h7, "accuracy") == NULL);
    CHECK_NEAR(0.34, json_real_value(json_object_get(h7, "subsetAccuracy")), 1e-9, 0);
    CHECK_NEAR(0.94, json_real_value(json_object_get(h7, "labelAccuracy")), 1e-9, 0);
    CHECK_EQ_STR("cuda", json_string_value(json_object_get(j, "device")));
    /* unseen validation labels: counts whole, the first REPORT_UNSEEN_SHOWN names listed */
    json_t *un = json_object_get(j, "validUnseenLabels");
    CHECK_EQ_INT(4, json_integer_value(json_object_get(un, "rows")));
    CHECK_EQ_INT(0, json_integer_value(json_object_get(un, "droppedRows")));
    CHECK_EQ_INT(12, json_integer_value(json_object_get(un, "distinct")));
    CHECK_EQ_INT(REPORT_UNSEEN_SHOWN, json_array_size(json_object_get(un, "labels")));
    CHECK_EQ_STR(names[1], json_string_value(json_array_get(json_object_get(un, "labels"), 1)));
    json_decref(j);
    free(mj);

    /* single-label: a plain "accuracy", no subset/label accuracy; the history round-trips through
     * the checkpoint form (JSON) with each kind kept */
    metrics_summary s1 = s;
    metrics_from_counts(&s1, 0);
    report_run r1 = r;
    r1.multi_label = 0;
    r1.valid = &s1;
    CHECK_EQ_INT(0, report_metrics_json(&mj, &r1));
    j = json_loads(mj, 0, &jerr);
    ov = json_object_get(j, "overall");
    CHECK_NEAR(s1.accuracy, json_real_value(json_object_get(ov, "accuracy")), 1e-5, 0);
    CHECK(json_object_get(ov, "subsetAccuracy") == NULL && json_object_get(ov, "labelAccuracy") == NULL);
    json_decref(j);
    free(mj);
    char *hj2 = NULL;
    report_history h2 = {0};
    CHECK_EQ_INT(0, report_history_json(&hj2, &h));
    CHECK_EQ_INT(0, report_history_parse(&h2, hj2));
    CHECK_EQ_INT(8, (long long)h2.n);
    if (h2.n == 8) {
        CHECK_NEAR(0.1, h2.v[0].accuracy, 0, 0);
        CHECK(isnan(h2.v[0].subset_accuracy) && isnan(h2.v[7].accuracy));
        CHECK_NEAR(0.34, h2.v[7].subset_accuracy, 1e-12, 0);
        CHECK_NEAR(0.94, h2.v[7].label_accuracy, 1e-12, 0);
    }
    report_history_dispose(&h2);
    free(hj2);

    /* history.csv */
    char *csv = NULL;
    CHECK_EQ_INT(0, report_history_csv(&csv, &h));
    static const char hdr[] =
        "stage,epoch,train_loss,valid_loss,accuracy,subset_accuracy,label_accuracy,micro_f1,macro_f1,lr,seconds\n";
    CHECK(strncmp(csv, hdr, sizeof hdr - 1) == 0);
    CHECK(strstr(csv, "finetune-lm,1,5,4.8,0.1,,,,,0.01,3\n") != NULL);
    CHECK(strstr(csv, "classifier,5,0.06,0.05,,0.34,0.94,0.7,0.36,0.02,1.5\n") != NULL);
    free(csv);

    /* curves.svg: two stages, legends, axis labels; well-formed enough for an XML parser. */
    char *svg = NULL;
    CHECK_EQ_INT(0, report_curves_svg(&svg, &h));
    CHECK(strstr(svg, "<svg ") == svg);
    CHECK(strstr(svg, "finetune-lm: loss") && strstr(svg, "classifier: validation metrics"));
    CHECK(strstr(svg, ">valid loss<") && strstr(svg, ">micro F1<") && strstr(svg, ">epoch<"));
    CHECK(!strstr(svg, "nan") && !strstr(svg, "inf"));
    FILE *f = fopen("curves-test.svg", "w");
    if (f) {
        fputs(svg, f);
        fclose(f);
    }
    free(svg);

    /* Failure result: long messages shortened to fit, UTF-8 intact. */
    size_t big = 20000;
    char *msg = malloc(big + 1);
    for (size_t k = 0; k < big; k += 2) {
        msg[k] = (char)0xC3; /* é */
        msg[k + 1] = (char)0xA9;
    }
    msg[big] = 0;
    char *fail = NULL;
    CHECK_EQ_INT(0, report_failure_json(&fail, "BadInput", msg));
    CHECK(fail && strlen(fail) <= REPORT_RESULT_MAX);
    j = json_loads(fail, 0, &jerr); /* jansson rejects invalid UTF-8 */
    CHECK(j != NULL);
    CHECK_EQ_STR("Failed", json_string_value(json_object_get(j, "phase")));
    CHECK(strlen(json_string_value(json_object_get(j, "message"))) > 1000);
    json_decref(j);
    free(fail);
    CHECK_EQ_INT(0, report_failure_json(&fail, "Transient", "storage: 503 from gs://b/en/data/train.csv"));
    CHECK_EQ_STR("{\"version\":1,\"phase\":\"Failed\",\"reason\":\"Transient\",\"message\":\"storage: 503 from "
                 "gs://b/en/data/train.csv\"}", fail);
    free(fail);
    /* A message quoting bytes that are not UTF-8 keeps them, as \xNN (JSON needs UTF-8). */
    CHECK_EQ_INT(0, report_failure_json(&fail, "BadInput", "train.csv:2: label \"a\xff\" is not UTF-8"));
    CHECK_EQ_STR("{\"version\":1,\"phase\":\"Failed\",\"reason\":\"BadInput\",\"message\":\"train.csv:2: label "
                 "\\\"a\\\\xff\\\" is not UTF-8\"}", fail);
    free(fail);
    free(msg);

    /* Progress line, with contract field names. */
    char *line = progress_format(&(progress_event){.stage = "finetune-lm", .epoch = 2, .epochs = 10, .step = 140,
                                                   .steps = 700, .loss = 4.12, .percent = 21.43, .eta_seconds = 630.2});
    CHECK_EQ_STR("{\"stage\":\"finetune-lm\",\"epoch\":2,\"epochs\":10,\"step\":140,\"steps\":700,\"loss\":4.12,"
                 "\"percent\":21.4,\"etaSeconds\":630}", line);
    free(line);
    /* Best-effort POST to a closed port never fails the run. */
    progress *p = NULL;
    FILE *sink = tmpfile();
    CHECK_EQ_INT(0, progress_new(&p, "http://127.0.0.1:9/progress", sink));
    progress_emit(p, &(progress_event){.stage = "classifier", .epoch = 1, .epochs = 1, .step = 1, .steps = 1,
                                       .loss = 0.5, .percent = 100, .eta_seconds = -1});
    progress_free(p);
    CHECK(ftell(sink) > 0);
    fclose(sink);

    /* History round trip (checkpoint metadata). */
    char *hj = NULL;
    report_history back = {0};
    CHECK_EQ_INT(0, report_history_json(&hj, &h));
    CHECK_EQ_INT(0, report_history_parse(&back, hj));
    CHECK_EQ_INT(h.n, back.n);
    CHECK_EQ_STR("classifier", back.v[7].stage);
    CHECK_NEAR(h.v[6].macro_f1, back.v[6].macro_f1, 0, 1e-15);
    CHECK(isnan(back.v[0].micro_f1));
    CHECK_EQ_INT(KF_EINVAL, report_history_parse(&back, "[{\"stage\":\"bogus\"}]"));
    CHECK_EQ_INT(KF_EINVAL, report_history_parse(&back, "{}"));
    free(hj);
    report_history_dispose(&back);

    metrics_summary_dispose(&s);
    free_names(names, L);
    report_history_dispose(&h);
    return test_done();
}
