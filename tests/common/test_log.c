#include "log.h"
#include "test.h"

#include <jansson.h>
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
    json_decref(a);
    json_decref(b);
    free(text);
    return test_done();
}
