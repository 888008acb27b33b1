/* test_safetensors: our reader against files the `safetensors` package wrote, our writer read
 * back by it, and a table of malformed files that must each give a clear error. */
#include <jansson.h>
#include <stdint.h>

#include "err.h"
#include "pyref.h"
#include "safetensors.h"
#include "test.h"

/* Builds a file image: 8-byte length + header + data_len bytes of 0x5a. */
static unsigned char *image(const char *hdr, size_t data_len, size_t *len)
{
    size_t hl = strlen(hdr);
    unsigned char *buf = malloc(8 + hl + data_len + 1);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, hdr, hl);
    memset(buf + 8 + hl, 0x5a, data_len);
    *len = 8 + hl + data_len;
    return buf;
}

static void malformed(void)
{
    static const struct {
        const char *hdr;
        size_t data_len;
        const char *msg; /* substring the error must contain */
    } cases[] = {
        {"", 0, "does not start with '{'"},
        {"[1,2]", 0, "does not start with '{'"},
        {"{\"a\":", 0, "not valid JSON"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"a\":{}}", 8, "not valid JSON"},
        {"{\"a\":1}", 0, "entry is not an object"},
        {"{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "\"dtype\""},
        {"{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype \"F33\""},
        {"{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, "\"shape\""},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "shape[0]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, "shape[0]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, "dimensions"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]}}", 8,
         "overflows"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "bad data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}}", 12, "needs 8"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "cover 8 bytes of a 4-byte"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12, "cover 8 bytes of a 12-byte"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "gap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlaps"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", 20, "gap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,9223372036854775807]}}", 8, "needs 8"},
        {"{\"__metadata__\":[1]}", 0, "\"__metadata__\" is not an object"},
        {"{\"__metadata__\":{\"k\":3}}", 0, "is not a string"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        unsigned char *buf = image(cases[i].hdr, cases[i].data_len, &len);
        st_file *f = (st_file *)1;
        int rc = st_parse(&f, buf, len);
        CHECK_EQ_INT(KF_EINVAL, rc);
        CHECK(f == NULL);
        if (!strstr(err_msg(), cases[i].msg))
            TEST_FAIL_("case %zu: error \"%s\" lacks \"%s\"", i, err_msg(), cases[i].msg);
        free(buf);
    }
    /* Header length beyond the file / absurd, and a file shorter than 8 bytes. */
    unsigned char big[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, '{', '}'};
    st_file *f = NULL;
    CHECK_EQ_INT(KF_EINVAL, st_parse(&f, big, sizeof big));
    CHECK(strstr(err_msg(), "header length") != NULL);
    unsigned char over[12] = {100, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' '};
    CHECK_EQ_INT(KF_EINVAL, st_parse(&f, over, sizeof over));
    CHECK(strstr(err_msg(), "exceeds the file") != NULL);
    CHECK_EQ_INT(KF_EINVAL, st_parse(&f, over, 5));
    CHECK(strstr(err_msg(), "too short") != NULL);
    /* A valid file: zero-sized tensor, trailing-space padded header, missing tensor, wrong shape. */
    size_t len;
    unsigned char *buf = image("{\"e\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[0,0]},"
                               "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}   ", 8, &len);
    CHECK_EQ_INT(0, st_parse(&f, buf, len));
    CHECK_EQ_INT(2, st_count(f));
    float x[2];
    int64_t want[1] = {3};
    CHECK_EQ_INT(KF_ENOTFOUND, st_read_f32(x, 2, f, "nope", NULL, 0));
    CHECK(strstr(err_msg(), "'nope' not found") != NULL);
    CHECK_EQ_INT(KF_EINVAL, st_read_f32(x, 2, f, "a", want, 1));
    CHECK_EQ_INT(KF_EINVAL, st_read_f32(x, 3, f, "a", NULL, 0));
    CHECK_EQ_INT(0, st_read_f32(x, 2, f, "a", NULL, 0));
    st_free(f);
    free(buf);
}

static void read_python(const char *dir)
{
    char path[4096], args[4096];
    snprintf(args, sizeof args, "write '%s'", dir);
    CHECK_EQ_INT(0, py_run("st_ref.py", args));
    snprintf(path, sizeof path, "%s/py_expected.json", dir);
    json_error_t jerr;
    json_t *exp = json_load_file(path, 0, &jerr);
    CHECK(exp != NULL);
    if (!exp)
        return;
    snprintf(path, sizeof path, "%s/py.safetensors", dir);
    st_file *f = NULL;
    int rc = st_load(&f, path);
    CHECK_EQ_INT(0, rc);
    if (rc < 0) {
        fprintf(stderr, "%s\n", err_msg());
        json_decref(exp);
        return;
    }
    CHECK_EQ_INT(8, st_count(f));
    CHECK_EQ_STR("pt", st_metadata(f, "format"));
    CHECK_EQ_STR("kubefit é", st_metadata(f, "note"));
    CHECK(st_metadata(f, "absent") == NULL);
    const char *name;
    json_t *vals;
    json_object_foreach(json_object_get(exp, "values"), name, vals) {
        size_t n = json_array_size(vals);
        float *want = malloc((n ? n : 1) * sizeof *want), *got = malloc((n ? n : 1) * sizeof *got);
        for (size_t i = 0; i < n; i++) {
            json_t *v = json_array_get(vals, i);
            want[i] = json_is_string(v) ? (json_string_value(v)[0] == '-' ? -INFINITY : INFINITY)
                                        : (float)json_number_value(v);
        }
        json_t *jshape = json_object_get(json_object_get(exp, "shapes"), name);
        int64_t shape[8];
        int nd = (int)json_array_size(jshape);
        for (int d = 0; d < nd; d++)
            shape[d] = json_integer_value(json_array_get(jshape, (size_t)d));
        rc = st_read_f32(got, n, f, name, shape, nd);
        CHECK_EQ_INT(0, rc);
        if (rc == 0) {
            int same = memcmp(want, got, n * sizeof *got) == 0;
            if (!same)
                TEST_FAIL_("tensor %s differs from the reference", name);
            test_checks++;
        } else {
            fprintf(stderr, "%s: %s\n", name, err_msg());
        }
        free(want);
        free(got);
    }
    /* I64 is recognised but not convertible: a clear error. */
    float ids[6];
    CHECK_EQ_INT(KF_EINVAL, st_read_f32(ids, 6, f, "i64.ids", NULL, 0));
    CHECK(strstr(err_msg(), "dtype I64") != NULL);
    const st_tensor *t = st_find(f, "bf16.cube");
    CHECK(t && t->ndim == 3 && t->shape[2] == 4 && t->dtype == ST_BF16);
    st_free(f);
    json_decref(exp);
}

static void write_for_python(const char *dir)
{
    char path[4096], exp_path[4096], args[8300];
    float a[3 * 5], b[7], s[1] = {-2.5f};
    uint32_t r = 12345;
    for (size_t i = 0; i < 15; i++) {
        r = r * 1103515245u + 12345u;
        a[i] = ((float)(r >> 8) / 16777216.0f - 0.5f) * 7.0f;
    }
    for (size_t i = 0; i < 7; i++)
        b[i] = 1.0f / (float)(i + 1) - 0.3f;
    st_writer *w = NULL;
    CHECK_EQ_INT(0, st_writer_new(&w));
    CHECK_EQ_INT(0, st_writer_add(w, "layer.0.weight", a, (int64_t[]){3, 5}, 2));
    CHECK_EQ_INT(0, st_writer_add(w, "bias", b, (int64_t[]){7}, 1));
    CHECK_EQ_INT(0, st_writer_add(w, "scalar", s, NULL, 0));
    CHECK_EQ_INT(KF_EEXISTS, st_writer_add(w, "bias", b, (int64_t[]){7}, 1));
    CHECK_EQ_INT(0, st_writer_meta(w, "format", "pt"));
    CHECK_EQ_INT(0, st_writer_meta(w, "kubefit.epoch", "3"));
    snprintf(path, sizeof path, "%s/c.safetensors", dir);
    CHECK_EQ_INT(0, st_writer_save(w, path));
    st_writer_free(w);

    json_t *vals = json_object(), *shapes = json_object();
    json_t *ja = json_array(), *jb = json_array(), *js = json_array();
    for (int i = 0; i < 15; i++)
        json_array_append_new(ja, json_real(a[i]));
    for (int i = 0; i < 7; i++)
        json_array_append_new(jb, json_real(b[i]));
    json_array_append_new(js, json_real(s[0]));
    json_object_set_new(vals, "layer.0.weight", ja);
    json_object_set_new(vals, "bias", jb);
    json_object_set_new(vals, "scalar", js);
    json_object_set_new(shapes, "layer.0.weight", json_pack("[i,i]", 3, 5));
    json_object_set_new(shapes, "bias", json_pack("[i]", 7));
    json_object_set_new(shapes, "scalar", json_array());
    json_t *exp = json_pack("{s:o,s:o,s:{s:s,s:s}}", "values", vals, "shapes", shapes, "metadata", "format",
                            "pt", "kubefit.epoch", "3");
    snprintf(exp_path, sizeof exp_path, "%s/c_expected.json", dir);
    CHECK_EQ_INT(0, json_dump_file(exp, exp_path, JSON_REAL_PRECISION(17)));
    json_decref(exp);
    snprintf(args, sizeof args, "check '%s' '%s'", path, exp_path);
    CHECK_EQ_INT(0, py_run("st_ref.py", args));

    /* And our own reader round-trips it. */
    st_file *f = NULL;
    CHECK_EQ_INT(0, st_load(&f, path));
    float back[15];
    CHECK_EQ_INT(0, st_read_f32(back, 15, f, "layer.0.weight", (int64_t[]){3, 5}, 2));
    CHECK(memcmp(back, a, sizeof a) == 0);
    CHECK_EQ_STR("3", st_metadata(f, "kubefit.epoch"));
    st_free(f);
}

int main(void)
{
    char dir[] = "/tmp/kf-st-XXXXXX";
    malformed();
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    py_path(); /* skips or fails here when the reference is missing */
    read_python(dir);
    write_for_python(dir);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return test_done();
}
