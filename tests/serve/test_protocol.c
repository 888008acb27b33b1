/* test_protocol: serve/protocol.c - request parsing of the three protocols (good and bad bodies,
 * the messages a client gets), response and error bodies (shapes, values, rounding). */
#include "test.h"

#include <jansson.h>

#include "err.h"
#include "protocol.h"

static proto_request parse(proto_kind k, const char *body, size_t max, int want_rc)
{
    proto_request r;
    int rc = proto_parse(&r, k, body, body ? strlen(body) : 0, max);
    CHECK_EQ_INT(want_rc, rc);
    if (rc != want_rc)
        fprintf(stderr, "  body: %s\n  error: %s\n", body ? body : "(null)", err_msg());
    return r;
}

/* A bad body: KF_EINVAL with a message containing want. */
static void refused(proto_kind k, const char *body, size_t max, const char *want)
{
    proto_request r = parse(k, body, max, KF_EINVAL);
    CHECK(strstr(err_msg(), want) != NULL);
    if (!strstr(err_msg(), want))
        fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", err_msg(), want);
    proto_request_dispose(&r);
}

static void test_v2(void)
{
    proto_request r = parse(PROTO_V2,
                            "{\"id\":\"42\",\"inputs\":[{\"name\":\"text\",\"datatype\":\"BYTES\",\"shape\":[3],"
                            "\"data\":[\"a b\",\"\\u00e9t\\u00e9\",\"nul \\u0000 inside\"]}]}",
                            0, 0);
    CHECK_EQ_INT(3, r.n);
    CHECK_EQ_STR("42", r.id);
    CHECK_EQ_STR("a b", r.texts[0]);
    CHECK_EQ_STR("\xc3\xa9t\xc3\xa9", r.texts[1]);
    CHECK_EQ_INT(12, r.lens[2]); /* the NUL is part of the text */
    CHECK_EQ_INT(PROTO_OUT_ALL, r.outputs);
    proto_request_dispose(&r);
    /* [N,1] with nested data, and requested outputs */
    r = parse(PROTO_V2,
              "{\"inputs\":[{\"name\":\"x\",\"datatype\":\"BYTES\",\"shape\":[2,1],\"data\":[[\"a\"],[\"b\"]]}],"
              "\"outputs\":[{\"name\":\"probabilities\"},{\"name\":\"labels\"}]}",
              0, 0);
    CHECK_EQ_INT(2, r.n);
    CHECK_EQ_STR("b", r.texts[1]);
    CHECK_EQ_INT(PROTO_OUT_PROBS | PROTO_OUT_LABELS, r.outputs);
    CHECK(r.id == NULL);
    proto_request_dispose(&r);

    refused(PROTO_V2, "", 0, "not JSON");
    refused(PROTO_V2, "[1]", 0, "not a JSON object");
    refused(PROTO_V2, "{}", 0, "\"inputs\" must be an array of one tensor");
    refused(PROTO_V2, "{\"inputs\":[]}", 0, "\"inputs\" must be an array of one tensor");
    refused(PROTO_V2, "{\"inputs\":[{\"name\":\"a\",\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[\"x\"]},"
                      "{\"name\":\"b\",\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[\"y\"]}]}",
            0, "one tensor");
    refused(PROTO_V2, "{\"inputs\":[{\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[\"x\"]}]}", 0, "needs a \"name\"");
    refused(PROTO_V2, "{\"inputs\":[{\"name\":\"t\",\"datatype\":\"FP32\",\"shape\":[1],\"data\":[1.0]}]}", 0,
            "datatype must be BYTES");
    refused(PROTO_V2, "{\"inputs\":[{\"name\":\"t\",\"datatype\":\"BYTES\",\"shape\":[2],\"data\":[\"x\"]}]}", 0,
            "shape says 2 texts, data holds 1");
    refused(PROTO_V2, "{\"inputs\":[{\"name\":\"t\",\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[\"x\",\"y\"]}]}", 0,
            "more elements than its shape");
    refused(PROTO_V2, "{\"inputs\":[{\"name\":\"t\",\"datatype\":\"BYTES\",\"shape\":[2,2],\"data\":[\"x\"]}]}", 0,
            "shape must be [N] or [N, 1]");
    refused(PROTO_V2, "{\"inputs\":[{\"name\":\"t\",\"datatype\":\"BYTES\",\"shape\":[1,1,1],\"data\":[\"x\"]}]}", 0,
            "shape must be [N] or [N, 1]");
    refused(PROTO_V2, "{\"inputs\":[{\"name\":\"t\",\"datatype\":\"BYTES\",\"shape\":[-1],\"data\":[\"x\"]}]}", 0,
            "N >= 1");
    refused(PROTO_V2, "{\"inputs\":[{\"name\":\"t\",\"datatype\":\"BYTES\",\"shape\":[0],\"data\":[]}]}", 0,
            "no texts");
    refused(PROTO_V2, "{\"inputs\":[{\"name\":\"t\",\"datatype\":\"BYTES\",\"shape\":[3],\"data\":[\"a\",\"b\",\"c\"]}]}",
            2, "3 texts in one request, at most 2");
    refused(PROTO_V2, "{\"inputs\":[{\"name\":\"t\",\"datatype\":\"BYTES\",\"shape\":[1099511627776],\"data\":[]}]}", 0,
            "at most");
    refused(PROTO_V2, "{\"inputs\":[{\"name\":\"t\",\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[3]}]}", 0,
            "data[0] is not a string");
    refused(PROTO_V2, "{\"inputs\":[{\"name\":\"t\",\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[[[\"x\"]]]}]}", 0,
            "nests deeper");
    refused(PROTO_V2, "{\"inputs\":[{\"name\":\"t\",\"datatype\":\"BYTES\",\"shape\":[1],\"data\":\"x\"}]}", 0,
            "\"data\" must be an array");
    refused(PROTO_V2,
            "{\"inputs\":[{\"name\":\"t\",\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[\"x\"],"
            "\"parameters\":{\"binary_data_size\":4}}]}",
            0, "binary tensor data is not supported");
    refused(PROTO_V2,
            "{\"inputs\":[{\"name\":\"t\",\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[\"x\"]}],"
            "\"outputs\":[{\"name\":\"logits\"}]}",
            0, "unknown output logits");
    refused(PROTO_V2, "{\"id\":7,\"inputs\":[{\"name\":\"t\",\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[\"x\"]}]}", 0,
            "\"id\" is not a string");
}

static void test_v1_ts(void)
{
    proto_request r = parse(PROTO_V1, "{\"instances\":[\"a\",{\"text\":\"b c\"}]}", 0, 0);
    CHECK_EQ_INT(2, r.n);
    CHECK_EQ_STR("b c", r.texts[1]);
    proto_request_dispose(&r);
    refused(PROTO_V1, "{\"inputs\":[\"a\"]}", 0, "\"instances\" must be an array");
    refused(PROTO_V1, "{\"instances\":[]}", 0, "no texts");
    refused(PROTO_V1, "{\"instances\":[\"a\",{\"data\":\"b\"}]}", 0, "instances[1] is not a text");
    refused(PROTO_V1, "{\"instances\":[\"a\",\"b\"]}", 1, "at most 1");

    r = parse(PROTO_TS, "just some text", 0, 0);
    CHECK_EQ_INT(1, r.n);
    CHECK_EQ_STR("just some text", r.texts[0]);
    proto_request_dispose(&r);
    r = parse(PROTO_TS, "{\"data\":\"wrapped\"}", 0, 0);
    CHECK_EQ_STR("wrapped", r.texts[0]);
    proto_request_dispose(&r);
    r = parse(PROTO_TS, "{\"text\":\"also wrapped\"}", 0, 0);
    CHECK_EQ_STR("also wrapped", r.texts[0]);
    proto_request_dispose(&r);
    r = parse(PROTO_TS, "\"a JSON string\"", 0, 0);
    CHECK_EQ_STR("a JSON string", r.texts[0]);
    proto_request_dispose(&r);
    r = parse(PROTO_TS, "{\"other\":1}", 0, 0); /* not a wrapper: the body is the text */
    CHECK_EQ_STR("{\"other\":1}", r.texts[0]);
    proto_request_dispose(&r);
    r = parse(PROTO_TS, "42", 0, 0);
    CHECK_EQ_STR("42", r.texts[0]);
    proto_request_dispose(&r);
    refused(PROTO_TS, "", 0, "empty body");
    refused(PROTO_TS, NULL, 0, "empty body");
}

static void test_responses(void)
{
    const char *labels[] = {"a", "b;c", "d"};
    proto_model m = {.name = "job", .version = "3", .labels = labels, .n_labels = 3};
    float probs[6] = {0.1f, 0.7f, 0.65f, 0.123456789f, 0.2f, 0.3f};
    unsigned char pred[6] = {0, 1, 1, 0, 0, 0};
    proto_request r = parse(PROTO_V2,
                            "{\"id\":\"x\",\"inputs\":[{\"name\":\"t\",\"datatype\":\"BYTES\",\"shape\":[2],"
                            "\"data\":[\"p\",\"q\"]}]}",
                            0, 0);
    size_t len = 0;
    char *body = proto_response(&r, &m, probs, pred, &len);
    json_t *j = body ? json_loads(body, 0, NULL) : NULL;
    CHECK(j != NULL);
    CHECK_EQ_INT(strlen(body ? body : ""), len);
    CHECK_EQ_STR("job", json_string_value(json_object_get(j, "model_name")));
    CHECK_EQ_STR("3", json_string_value(json_object_get(j, "model_version")));
    CHECK_EQ_STR("x", json_string_value(json_object_get(j, "id")));
    json_t *outs = json_object_get(j, "outputs");
    CHECK_EQ_INT(3, json_array_size(outs));
    json_t *lab = json_array_get(outs, 0), *pr = json_array_get(outs, 1), *pd = json_array_get(outs, 2);
    CHECK_EQ_STR("labels", json_string_value(json_object_get(lab, "name")));
    CHECK_EQ_STR("BYTES", json_string_value(json_object_get(lab, "datatype")));
    CHECK_EQ_STR("b;c;d", json_string_value(json_array_get(json_object_get(lab, "data"), 0)));
    CHECK_EQ_STR("", json_string_value(json_array_get(json_object_get(lab, "data"), 1)));
    CHECK_EQ_STR("FP32", json_string_value(json_object_get(pr, "datatype")));
    CHECK_EQ_INT(2, json_integer_value(json_array_get(json_object_get(pr, "shape"), 0)));
    CHECK_EQ_INT(3, json_integer_value(json_array_get(json_object_get(pr, "shape"), 1)));
    CHECK_EQ_INT(6, json_array_size(json_object_get(pr, "data")));
    /* float32 values survive the trip: 9 significant digits */
    CHECK((float)json_real_value(json_array_get(json_object_get(pr, "data"), 3)) == probs[3]);
    CHECK_EQ_STR("BOOL", json_string_value(json_object_get(pd, "datatype")));
    CHECK(json_is_true(json_array_get(json_object_get(pd, "data"), 1)));
    CHECK(json_is_false(json_array_get(json_object_get(pd, "data"), 3)));
    json_decref(j);
    free(body);
    r.outputs = PROTO_OUT_PROBS;
    body = proto_response(&r, &m, probs, pred, &len);
    j = body ? json_loads(body, 0, NULL) : NULL;
    CHECK_EQ_INT(1, json_array_size(json_object_get(j, "outputs")));
    CHECK_EQ_STR("probabilities", json_string_value(json_object_get(json_array_get(json_object_get(j, "outputs"), 0),
                                                                    "name")));
    json_decref(j);
    free(body);
    proto_request_dispose(&r);

    /* TorchServe: predict's shape, 4 decimals */
    r = parse(PROTO_TS, "p", 0, 0);
    body = proto_response(&r, &m, probs + 3, pred + 3, &len);
    j = body ? json_loads(body, 0, NULL) : NULL;
    CHECK_EQ_INT(0, json_array_size(json_object_get(j, "labels")));
    CHECK_NEAR(0.1235, json_real_value(json_object_get(json_object_get(j, "probabilities"), "a")), 1e-12, 0);
    CHECK(body && strstr(body, "\"a\":0.1235") != NULL);
    json_decref(j);
    free(body);
    proto_request_dispose(&r);
    /* v1 */
    r = parse(PROTO_V1, "{\"instances\":[\"p\",\"q\"]}", 0, 0);
    body = proto_response(&r, &m, probs, pred, &len);
    j = body ? json_loads(body, 0, NULL) : NULL;
    json_t *p0 = json_array_get(json_object_get(j, "predictions"), 0);
    CHECK_EQ_INT(2, json_array_size(json_object_get(j, "predictions")));
    CHECK_EQ_STR("b;c", json_string_value(json_array_get(json_object_get(p0, "labels"), 0)));
    CHECK_NEAR(0.7, json_real_value(json_object_get(json_object_get(p0, "probabilities"), "b;c")), 1e-7, 0);
    json_decref(j);
    free(body);
    proto_request_dispose(&r);

    /* errors */
    body = proto_error(PROTO_V2, 400, "bad \"thing\"", &len);
    j = body ? json_loads(body, 0, NULL) : NULL;
    CHECK_EQ_STR("bad \"thing\"", json_string_value(json_object_get(j, "error")));
    json_decref(j);
    free(body);
    body = proto_error(PROTO_TS, 404, "Model not found", &len);
    j = body ? json_loads(body, 0, NULL) : NULL;
    CHECK_EQ_INT(404, json_integer_value(json_object_get(j, "code")));
    CHECK_EQ_STR("ModelNotFoundException", json_string_value(json_object_get(j, "type")));
    CHECK_EQ_STR("Model not found", json_string_value(json_object_get(j, "message")));
    json_decref(j);
    free(body);
    body = proto_error(PROTO_V1, 503, "\xff not utf-8", &len); /* still a JSON body */
    j = body ? json_loads(body, 0, NULL) : NULL;
    CHECK(json_is_string(json_object_get(j, "error")));
    json_decref(j);
    free(body);
}

int main(void)
{
    test_v2();
    test_v1_ts();
    test_responses();
    return test_done();
}
