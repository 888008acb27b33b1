/* contract: the flag table parses what it renders, refuses what it must, and its rules. */
#include <string.h>

#include "contract.h"
#include "err.h"
#include "test.h"

/* Parses a space-separated command line; returns contract_parse's code. */
static int parse_line(contract_args *a, const char *line, char *buf, size_t size)
{
    char *argv[64];
    int argc = 0;
    snprintf(buf, size, "%s", line);
    for (char *p = buf; *p && argc < 63;) {
        argv[argc++] = p;
        p += strcspn(p, " ");
        if (*p)
            *p++ = 0;
    }
    argv[argc] = NULL;
    return contract_parse(a, argc, argv);
}

static void expect_bad(const char *line, const char *message)
{
    contract_args a;
    char buf[1024];
    int rc = parse_line(&a, line, buf, sizeof buf);
    CHECK_EQ_INT(KF_EINVAL, rc);
    if (!strstr(err_msg(), message))
        TEST_FAIL_("%s: expected a message with \"%s\", got \"%s\"", line, message, err_msg());
}

static void test_language(void)
{
    const char *good[] = {"en", "fr", "pt-BR", "haw", "zh-TW"};
    const char *bad[] = {"", "e", "english", "pt-br", "PT", "pt_BR", "pt-BRA", "en-", "fr-F1", "de-Ä"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        CHECK_EQ_INT(0, contract_language_check(good[i]));
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK_EQ_INT(KF_EINVAL, contract_language_check(bad[i]));
    CHECK(strstr(err_msg(), "pt-BR") != NULL);
}

static void test_bucket(void)
{
    const char *good[] = {"my-bucket", "a_b", "abc", "data.example.com", "b1.b2.b3"};
    const char *bad[][2] = {{"ab", "3-63"},
                            {"-abc", "start and end"},
                            {"abc-", "start and end"},
                            {"ABC", "lowercase"},
                            {"my bucket", "lowercase"},
                            {"192.168.5.4", "IP address"},
                            {"goog-data", "goog"},
                            {"my-google-data", "google"},
                            {"a..b", "empty parts"},
                            {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "63 characters"}};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        CHECK_EQ_INT(0, contract_gcs_bucket_check(good[i]));
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK_EQ_INT(KF_EINVAL, contract_gcs_bucket_check(bad[i][0]));
        if (!strstr(err_msg(), bad[i][1]))
            TEST_FAIL_("bucket %s: expected \"%s\" in \"%s\"", bad[i][0], bad[i][1], err_msg());
    }
}

static void test_parse_render(void)
{
    contract_args a, b;
    char buf[1024];
    const char *line = "train --lang pt-BR --bucket-name gs://b --model-dir m --epochs 7 --lr=2e-2 --threshold 0.25 "
                       "--stages pretrain,classifier --label-mode single --skip-bad-rows --device cpu";
    CHECK_EQ_INT(0, parse_line(&a, line, buf, sizeof buf));
    CHECK_EQ_STR("pt-BR", a.lang);
    CHECK_EQ_INT(7, a.epochs);
    CHECK_NEAR(0.02, a.lr, 0, 0);
    CHECK_NEAR(0.25, a.threshold, 0, 0);
    CHECK_EQ_INT(1, a.skip_bad_rows);
    CHECK(contract_is_set(&a, contract_flag_find("epochs")));
    CHECK(!contract_is_set(&a, contract_flag_find("batch-size")));
    /* Rendering and parsing back gives the same values. */
    contract_argv v;
    CHECK_EQ_INT(0, contract_render(&v, &a));
    CHECK_EQ_STR("train", v.v[0]);
    CHECK_EQ_INT(0, contract_parse(&b, (int)v.n, v.v));
    CHECK_EQ_STR(a.lang, b.lang);
    CHECK_EQ_STR(a.stages, b.stages);
    CHECK_EQ_INT(a.epochs, b.epochs);
    CHECK(a.lr == b.lr && a.threshold == b.threshold);
    CHECK_EQ_INT(a.given, b.given);
    /* The shortest exact text: 0.02, not 0.0200000000000000004. */
    int found = 0;
    for (size_t i = 0; i + 1 < v.n; i++)
        if (!strcmp(v.v[i], "--lr"))
            found = !strcmp(v.v[i + 1], "0.02");
    CHECK(found);
    contract_argv_free(&v);
    CHECK_EQ_INT(1, parse_line(&a, "train --help", buf, sizeof buf));
}

static void test_refusals(void)
{
    const char *base = "train --lang en --bucket-name b --model-dir m";
    char line[512];
    struct {
        const char *extra, *message;
    } cases[] = {
        {"--batch-size 1", "--batch-size: expected an integer in [2, 4096], got \"1\""},
        {"--lr 1e-13", "--lr: expected a number in [1e-12, 100], got \"1e-13\""},
        {"--lr 101", "--lr: expected a number in [1e-12, 100]"},
        {"--lr nan", "--lr: expected a number"},
        {"--lr inf", "--lr: expected a number"},
        {"--threshold 1", "--threshold: expected a number in (0, 1)"},
        {"--threshold 0", "--threshold: expected a number in (0, 1)"},
        {"--epochs 1001", "--epochs: expected an integer in [1, 1000]"},
        {"--epochs 3x", "--epochs: expected an integer"},
        {"--emb-size 99999", "--emb-size: expected an integer in [1, 2048]"},
        {"--stages finetune-lm,lm", "--stages: unknown value 'lm'"},
        {"--stages classifier,classifier", "--stages: 'classifier' given twice"},
        {"--label-mode both", "--label-mode: expected auto, multi or single, got \"both\""},
        {"--device tpu", "--device: expected auto, cpu or cuda"},
        {"--result-file a --result-file b", "--result-file given twice"},
        {"--lang fr", "--lang given twice"},
        {"--nope 1", "unknown option '--nope'"},
        {"--skip-bad-rows=1", "--skip-bad-rows takes no value"},
        {"stray", "unexpected argument 'stray'"},
        {"--seed", "--seed needs a value"},
        {"--train-uri=", "--train-uri: expected a value, got an empty string"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(line, sizeof line, "%s %s", base, cases[i].extra);
        expect_bad(line, cases[i].message);
    }
    expect_bad("train --lang pt-br --bucket-name b --model-dir m", "--lang: language \"pt-br\" must be");
    expect_bad("train --bucket-name b --model-dir m", "--lang is required");
    expect_bad("evaluate --lang en --bucket-name b --model-dir m --stages classifier", "--stages applies to the train");
    expect_bad("fit --lang en", "unknown command 'fit'");
}

static void test_table(void)
{
    int n = 0;
    for (const contract_flag *f = contract_flags; f->name; f++, n++) {
        CHECK(f->help && *f->help);
        CHECK(f->dflt != NULL);
        CHECK(contract_flag_find(f->name) == f);
        if (f->field)
            CHECK(!strncmp(f->field, "spec.", 5) && f->owner == CONTRACT_BY_CONTROLLER);
        if (f->kind == CONTRACT_INT || f->kind == CONTRACT_NUMBER)
            CHECK(f->min < f->max);
    }
    CHECK(n > 0 && n <= 64); /* contract_args.given has 64 bits */
    char *usage = contract_usage();
    CHECK(usage && strstr(usage, "--batch-size N") && strstr(usage, "[2, 4096]") && strstr(usage, "exit codes"));
    free(usage);
}

int main(void)
{
    test_language();
    test_bucket();
    test_parse_render();
    test_refusals();
    test_table();
    return test_done();
}
