/* manifest (YAML -> JSON as kubectl sends it) and yamlout (JSON -> YAML that reads back the same). */
#include <jansson.h>
#include <string.h>

#include "err.h"
#include "manifest.h"
#include "test.h"
#include "yamlout.h"

/* The JSON text of the one document of yaml, or "ERR: message". Static buffer. */
static const char *conv(const char *yaml)
{
    static char buf[4096];
    json_t *docs = NULL;
    if (manifest_parse(&docs, yaml, strlen(yaml), "t.yaml") < 0) {
        snprintf(buf, sizeof buf, "ERR: %s", err_msg());
        return buf;
    }
    char *s = json_dumps(json_array_size(docs) == 1 ? json_array_get(docs, 0) : docs,
                         JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
    snprintf(buf, sizeof buf, "%s", s ? s : "?");
    free(s);
    json_decref(docs);
    return buf;
}

/* How one plain scalar resolves (go-yaml v2 / sigs.k8s.io/yaml rules). */
static void scalars(void)
{
    struct {
        const char *in, *want;
    } cases[] = {
        {"10", "10"},       {"-7", "-7"},         {"+3", "3"},          {"0x1F", "31"},      {"017", "15"},
        {"0o17", "15"},     {"0b101", "5"},       {"1_000", "1000"},    {"1e-2", "0.01"},    {"1.5", "1.5"},
        {".5", "0.5"},      {"1.0", "1"},         {"1e3", "1000"},      {"08", "8"},         {"yes", "true"},
        {"No", "false"},    {"ON", "true"},       {"off", "false"},     {"y", "true"},       {"n", "false"},
        {"True", "true"},   {"~", "null"},        {"null", "null"},     {"Null", "null"},    {"abc", "\"abc\""},
        {"1.2.3", "\"1.2.3\""}, {"0x", "\"0x\""}, {"-1-", "\"-1-\""},       {"1e", "\"1e\""},    {"_1", "\"_1\""},
        {"12345678901234567890", "1.2345678901234567e19"},
        {"2026-12-01", "\"2026-12-01\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char yaml[128], want[160];
        snprintf(yaml, sizeof yaml, "v: %s\n", cases[i].in);
        snprintf(want, sizeof want, "{\"v\":%s}", cases[i].want);
        CHECK_EQ_STR(want, conv(yaml));
    }
    CHECK_EQ_STR("{\"v\":null}", conv("v:\n"));
    CHECK_EQ_STR("ERR: t.yaml:1:4: .nan: JSON has no NaN or infinity", conv("v: .nan\n"));
    CHECK_EQ_STR("ERR: t.yaml:1:4: -.inf: JSON has no NaN or infinity", conv("v: -.inf\n"));
}

static void quoting_and_tags(void)
{
    CHECK_EQ_STR("{\"a\":\"10\",\"b\":\"yes\",\"c\":\"\"}", conv("a: \"10\"\nb: 'yes'\nc: ''\n"));
    CHECK_EQ_STR("{\"a\":\"10\",\"b\":10,\"c\":2.5,\"d\":true}",
                 conv("a: !!str 10\nb: !!int \"10\"\nc: !!float '2.5'\nd: !!bool \"yes\"\n"));
    CHECK_EQ_STR("ERR: t.yaml:1:4: \"ten\" is not a valid tag:yaml.org,2002:int", conv("a: !!int ten\n"));
    CHECK_EQ_STR("{\"a\":\"x\\ny\\n\",\"b\":\"x y\"}", conv("a: |\n  x\n  y\nb: >-\n  x\n  y\n"));
    /* keys are strings whatever they look like */
    CHECK_EQ_STR("{\"1\":\"a\",\"true\":\"b\",\"null\":\"c\"}", conv("1: a\nyes: b\n~: c\n"));
}

static void structure(void)
{
    CHECK_EQ_STR("{\"a\":[1,{\"b\":[]}],\"c\":{}}", conv("a:\n- 1\n- b: []\nc: {}\n"));
    /* anchors, aliases and merge keys; own keys win over merged ones */
    CHECK_EQ_STR("{\"base\":{\"p\":1,\"q\":2},\"job\":{\"q\":3,\"p\":1},\"copy\":{\"p\":1,\"q\":2}}",
                 conv("base: &b {p: 1, q: 2}\njob:\n  <<: *b\n  q: 3\ncopy: *b\n"));
    /* as in go-yaml v2, y and n are booleans, also as keys: {"true": 2} */
    CHECK_EQ_STR("{\"x\":1,\"true\":2}", conv("x: 1\ny: 2\n"));
    CHECK_EQ_STR("ERR: t.yaml:3:1: duplicate key \"a\"", conv("a: 1\nb: 2\na: 3\n"));
    CHECK_EQ_STR("ERR: t.yaml:1:3: a mapping key must be a scalar", conv("? [a]\n: 1\n"));
    /* documents: empty ones are skipped */
    CHECK_EQ_STR("[{\"a\":1},{\"b\":2}]", conv("---\na: 1\n---\n---\nb: 2\n...\n"));
    CHECK_EQ_STR("[]", conv(""));
    CHECK(strncmp(conv("a: [1, 2\n"), "ERR: t.yaml:2:1: did not find expected ',' or ']'", 49) == 0);
    CHECK(strncmp(conv("a: b: c\n"), "ERR: t.yaml:1:5: mapping values are not allowed", 47) == 0);
    /* aliases cannot blow up: nine levels of ten references are 10^9 values */
    char bomb[2048] = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
    for (char c = 'b'; c <= 'j'; c++) {
        size_t n = strlen(bomb);
        snprintf(bomb + n, sizeof bomb - n, "%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n", c, c, c - 1,
                 c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1);
    }
    CHECK(strstr(conv(bomb), "too many values") != NULL);
}

/* yamlout writes what manifest_parse reads back as the same JSON. */
static void round_trip(void)
{
    const char *values[] = {
        "{\"s\":\"10\",\"t\":\"true\",\"n\":\"null\",\"e\":\"\",\"y\":\"yes\",\"o\":\"0x10\",\"f\":\"1e3\"}",
        "{\"multi\":\"line one\\nline two\\n\",\"colon\":\"a: b\",\"hash\":\"a #b\",\"lead\":\" x\",\"dash\":\"- x\"}",
        "{\"i\":-3,\"r\":0.02,\"big\":1e+300,\"b\":false,\"nil\":null,\"arr\":[],\"obj\":{},\"nested\":[[1],[{\"a\":[]}]]}",
        "{\"utf8\":\"caf\\u00e9 \\u2713\",\"quote\":\"it's \\\"x\\\"\",\"tab\":\"a\\tb\",\"star\":\"*x\",\"amp\":\"&y\"}",
        "{\"apiVersion\":\"kubefit.dev/v1alpha1\",\"spec\":{\"args\":[\"--max-vocab\",\"30000\"],\"cron\":\"0 3 * * 1\"}}",
    };
    for (size_t i = 0; i < sizeof values / sizeof *values; i++) {
        json_t *v = json_loads(values[i], 0, NULL), *docs = NULL;
        CHECK(v != NULL);
        char *y = yamlout_string(v);
        CHECK(y != NULL);
        CHECK_EQ_INT(0, manifest_parse(&docs, y, y ? strlen(y) : 0, "out.yaml"));
        int same = docs && json_equal(v, json_array_get(docs, 0));
        if (!same)
            fprintf(stderr, "round trip %zu differs; YAML was:\n%s\n", i, y ? y : "(null)");
        CHECK(same);
        free(y);
        json_decref(docs);
        json_decref(v);
    }
    json_t *v = json_pack("{s:s,s:i,s:b}", "name", "x", "count", 3, "n", 1);
    char *y = yamlout_string(v);
    CHECK_EQ_STR("name: x\ncount: 3\n'n': true\n", y); /* a plain n would read back as false */
    free(y);
    json_decref(v);
}

int main(void)
{
    scalars();
    quoting_and_tags();
    structure();
    round_trip();
    return test_done();
}
