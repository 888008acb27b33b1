#include "log.h"
#include "test.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>

int main(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    log_set_stream(mem);
    setenv("KUBEFIT_LOG_LEVEL", "info", 1);
    log_debug("watch", "hidden", NULL);
    log_info("watch", "relisting", "{s:s,s:i}", "rv", "42", "count", 3);
    log_error("gcs", "upload failed", "{s:s}", "uri", "gs://b/\"quoted\"");
    /* Fields with bytes that are not UTF-8 (an error quoting bad input): the line keeps them, the
     * invalid bytes written as \xNN; nested objects, arrays, optional and omitted values too. */
    log_error("run", "run failed", "{s:s,s:i}", "error", "train.csv:3: label \"b\xff" "d\"", "line", 3);
    log_warn("dataset", "nested", "{s:{s:s,s:[s,s]},s:s?,s:s*,s:o,s:b,s:I,s:f}", "in", "k", "\xc3(", "a", "ok",
             "\x80", "nul", (const char *)NULL, "gone", (const char *)NULL, "obj", json_pack("{s:i}", "n", 1),
             "flag", 1, "big", (json_int_t)1 << 40, "x", 0.5);
    log_info("fit", "nan", "{s:f,s:f,s:i}", "gone", NAN, "kept", 1.5, "n", 2); /* NaN: the field is left out */
    log_set_stream(NULL);
    fclose(mem);

    char *second = strchr(text, '\n');
    CHECK(second != NULL);
    json_error_t jerr;
    json_t *a = json_loadb(text, (size_t)(second - text), 0, &jerr);
    json_t *b = json_loads(second + 1, JSON_DISABLE_EOF_CHECK, &jerr);
    CHECK(a && b);
    CHECK_EQ_STR("info", json_string_value(json_object_get(a, "level")));
    CHECK_EQ_STR("watch", json_string_value(json_object_get(a, "mod")));
    CHECK_EQ_STR("relisting", json_string_value(json_object_get(a, "msg")));
    CHECK_EQ_STR("42", json_string_value(json_object_get(a, "rv")));
    CHECK_EQ_INT(3, json_integer_value(json_object_get(a, "count")));
    CHECK(json_string_value(json_object_get(a, "ts")) != NULL);
    CHECK_EQ_STR("gs://b/\"quoted\"", json_string_value(json_object_get(b, "uri")));
    CHECK(strstr(text, "hidden") == NULL);
    CHECK(strstr(text, "log_fields_error") == NULL);
    const char *third = strchr(second + 1, '\n'), *fourth = third ? strchr(third + 1, '\n') : NULL;
    json_t *c = third ? json_loads(third + 1, JSON_DISABLE_EOF_CHECK, &jerr) : NULL;
    json_t *d = fourth ? json_loads(fourth + 1, JSON_DISABLE_EOF_CHECK, &jerr) : NULL;
    CHECK(c && d);
    CHECK_EQ_STR("train.csv:3: label \"b\\xffd\"", json_string_value(json_object_get(c, "error")));
    CHECK_EQ_INT(3, json_integer_value(json_object_get(c, "line")));
    json_t *in = json_object_get(d, "in");
    CHECK_EQ_STR("\\xc3(", json_string_value(json_object_get(in, "k")));
    CHECK_EQ_STR("ok", json_string_value(json_array_get(json_object_get(in, "a"), 0)));
    CHECK_EQ_STR("\\x80", json_string_value(json_array_get(json_object_get(in, "a"), 1)));
    CHECK(json_is_null(json_object_get(d, "nul")));
    CHECK(json_object_get(d, "gone") == NULL);
    CHECK_EQ_INT(1, json_integer_value(json_object_get(json_object_get(d, "obj"), "n")));
    CHECK(json_is_true(json_object_get(d, "flag")));
    CHECK_EQ_INT((json_int_t)1 << 40, json_integer_value(json_object_get(d, "big")));
    CHECK_NEAR(0.5, json_real_value(json_object_get(d, "x")), 0, 0);
    const char *fifth = fourth ? strchr(fourth + 1, '\n') : NULL;
    json_t *e = fifth ? json_loads(fifth + 1, JSON_DISABLE_EOF_CHECK, &jerr) : NULL;
    CHECK(e && !json_object_get(e, "gone") && json_real_value(json_object_get(e, "kept")) == 1.5 &&
          json_integer_value(json_object_get(e, "n")) == 2);
    json_decref(e);
    json_decref(a);
    json_decref(b);
    json_decref(c);
    json_decref(d);
    free(text);
    return test_done();
}
