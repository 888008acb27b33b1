/* test_finite: weights that hold NaN or infinity never pass. st_check_finite finds the first
 * non-finite value of a safetensors file in every floating dtype (F32, F64, F16, BF16) and names
 * the tensor and element; integer tensors are not floats and pass; modelio refuses to serialise
 * a model (encoder or head) that learnt NaN, naming the tensor, so no file is written with it. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "classifier.h"
#include "err.h"
#include "modelio.h"
#include "nn.h"
#include "safetensors.h"
#include "test.h"

/* A file with one tensor "t" of dtype dt and n elements (raw little-endian bytes). */
static st_file *one_tensor(const char *dt, const void *data, size_t n, size_t esize)
{
    char header[160];
    int hl = snprintf(header, sizeof header, "{\"t\":{\"dtype\":\"%s\",\"shape\":[%zu],\"data_offsets\":[0,%zu]}}",
                      dt, n, n * esize);
    size_t len = 8 + (size_t)hl + n * esize;
    unsigned char *buf = malloc(len);
    uint64_t h = (uint64_t)hl;
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)(h >> (8 * i));
    memcpy(buf + 8, header, (size_t)hl);
    memcpy(buf + 8 + hl, data, n * esize);
    st_file *f = NULL;
    if (st_parse(&f, buf, len) < 0)
        TEST_FAIL_("st_parse %s: %s", dt, err_msg());
    free(buf);
    return f;
}

static void expect(int line, st_file *f, const char *msg)
{
    int rc = st_check_finite(f);
    test_checks++;
    if (msg ? rc != KF_EINVAL || !strstr(err_msg(), msg) : rc != 0) {
        test_failures++;
        fprintf(stderr, "%s:%d: FAIL: st_check_finite: expected %s, got %d \"%s\"\n", __FILE__, line,
                msg ? msg : "0", rc, rc ? err_msg() : "");
    }
    st_free(f);
}

int main(void)
{
    float f32[4] = {1, -2, 0, 3};
    expect(__LINE__, one_tensor("F32", f32, 4, 4), NULL);
    f32[2] = NAN;
    expect(__LINE__, one_tensor("F32", f32, 4, 4), "tensor \"t\" holds NaN (element 2 of 4)");
    f32[2] = 0;
    f32[3] = -INFINITY;
    expect(__LINE__, one_tensor("F32", f32, 4, 4), "tensor \"t\" holds infinity (element 3 of 4)");
    double f64[3] = {1e300, 0, INFINITY};
    expect(__LINE__, one_tensor("F64", f64, 3, 8), "holds infinity (element 2 of 3)");
    f64[2] = 1;
    expect(__LINE__, one_tensor("F64", f64, 3, 8), NULL);
    uint16_t f16[3] = {0x3c00, 0x7bff /* 65504, finite */, 0x7e00 /* NaN */};
    expect(__LINE__, one_tensor("F16", f16, 3, 2), "holds NaN (element 2 of 3)");
    f16[2] = 0xfc00; /* -inf */
    expect(__LINE__, one_tensor("F16", f16, 3, 2), "holds infinity (element 2 of 3)");
    uint16_t bf16[2] = {0x7f80 /* inf */, 0x3f80};
    expect(__LINE__, one_tensor("BF16", bf16, 2, 2), "holds infinity (element 0 of 2)");
    bf16[0] = 0x7fc1; /* NaN */
    expect(__LINE__, one_tensor("BF16", bf16, 2, 2), "holds NaN (element 0 of 2)");
    int32_t i32[2] = {0x7fc00000, -1}; /* the bits of a NaN, but integers */
    expect(__LINE__, one_tensor("I32", i32, 2, 4), NULL);

    /* modelio: a model holding NaN is refused when it is serialised (checkpoint, save, transfer) */
    nn_backend *be = NULL;
    CHECK_EQ_INT(0, nn_backend_cpu_new(&be, 1));
    nn_config cfg = nn_config_lm(40, 0.5f);
    cfg.emb = 8, cfg.hidden = 12, cfg.layers = 2;
    nn_model *m = NULL;
    CHECK_EQ_INT(0, nn_model_new(&m, &cfg, be));
    nn_model_init(m, 1);
    st_writer *w = NULL;
    float *host = NULL;
    CHECK_EQ_INT(0, st_writer_new(&w));
    CHECK_EQ_INT(0, modelio_add_nn(w, m, 0, &host)); /* finite: fine */
    free(host);
    st_writer_free(w);
    const nn_tensor *t = &nn_tensors(m)[2]; /* a layer-0 tensor */
    float nan = NAN;
    be->upload(be, nn_params(m) + t->offset + 1, &nan, sizeof nan);
    CHECK_EQ_INT(0, st_writer_new(&w));
    CHECK_EQ_INT(KF_EINVAL, modelio_add_nn(w, m, 0, &host));
    char want[160];
    snprintf(want, sizeof want, "weights: tensor \"%s\" holds NaN (element 1 of %zu): training diverged", t->name,
             t->numel);
    CHECK_EQ_STR(want, err_msg());
    free(host);
    st_writer_free(w);
    /* the head too (its BatchNorm statistics included) */
    head_config hc = head_config_default(cfg.emb, 3, true, 0.5f);
    head_clf *c = NULL;
    CHECK_EQ_INT(0, head_clf_new(&c, &hc, be, NULL, 4));
    CHECK_EQ_INT(0, head_clf_init(c, 2));
    float inf = INFINITY;
    be->upload(be, head_buffers(c), &inf, sizeof inf);
    CHECK_EQ_INT(0, st_writer_new(&w));
    CHECK_EQ_INT(KF_EINVAL, modelio_add_head(w, c, be, &host));
    CHECK(strstr(err_msg(), "holds infinity (element 0 of ") != NULL);
    free(host);
    st_writer_free(w);
    head_clf_free(c);
    nn_model_free(m);
    be->destroy(be);
    return test_done();
}
