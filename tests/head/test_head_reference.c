/* test_head_reference: the classifier head (pooling, BatchNorm, dropout, linear, ReLU, BCE/CE,
 * AR/TAR) forward and backward against fastai's PoolingLinearClassifier in float64
 * (tests/head/ref_head.py), tensor by tensor, same weights and dropout masks.
 * Tolerance: |got - ref| <= ATOL_REL * max|ref| + RTOL * |ref| per tensor (float32 sums of many
 * terms lose ~1e-6 of the tensor's scale on elements that cancel; a bug is far larger). */
#include <stdbool.h>

#include "classifier.h"
#include "err.h"
#include "loss.h"
#include "refdata.h"
#include "test.h"

#define RTOL 1e-5
#define ATOL_REL 1e-5

typedef struct shape_case {
    const char *tag;
    int B, E, T, L, bptt, n_blocks;
    int dims[HEAD_MAX_BLOCKS + 1];
    float ps[HEAD_MAX_BLOCKS];
} shape_case;

static const shape_case CASES[] = {
    {"a", 8, 6, 11, 4, 4, 2, {18, 50, 4}, {0.4f, 0.1f}},
    {"b", 6, 5, 8, 3, 3, 3, {15, 9, 7, 3}, {0.3f, 0.0f, 0.2f}},
    {"c", 8, 400, 80, 5, 72, 2, {1200, 50, 5}, {0.4f, 0.1f}},
};

static void compare(const ref_file *rf, const char *name, const float *got, size_t n)
{
    const float *ref = ref_f32(rf, name, n);
    double atol = ATOL_REL * ref_maxabs(ref, n);
    fprintf(stderr, "  compare %-28s n=%-5zu atol %.2e\n", name, n, atol);
    if (getenv("HEAD_DEBUG") && strstr(name, getenv("HEAD_DEBUG")))
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, "    [%zu] ref %.9g got %.9g diff %.3g\n", i, ref[i], got[i], got[i] - ref[i]);
    CHECK_ALLCLOSE(ref, got, n, atol, RTOL);
}

static head_config config_of(const shape_case *sc, bool multi)
{
    head_config hc = head_config_default(sc->E, sc->L, multi, 1.0f);
    hc.n_blocks = sc->n_blocks;
    for (int k = 0; k <= sc->n_blocks; k++)
        hc.dims[k] = sc->dims[k];
    for (int k = 0; k < sc->n_blocks; k++)
        hc.ps[k] = sc->ps[k];
    hc.bptt = sc->bptt;
    return hc;
}

/* Loads every parameter and buffer by its fastai name ("w." + name in the file). */
static void load_weights(head_clf *c, const ref_file *rf)
{
    char key[256];
    for (int i = 0; i < head_tensor_count(c); i++) {
        const nn_tensor *t = &head_tensors(c)[i];
        snprintf(key, sizeof key, "w.%s", t->name);
        memcpy(head_params(c) + t->offset, ref_f32(rf, key, t->numel), t->numel * sizeof(float));
    }
    for (int i = 0; i < head_buffer_count(c); i++) {
        const nn_tensor *t = &head_buffer_tensors(c)[i];
        snprintf(key, sizeof key, "w.%s", t->name);
        memcpy(head_buffers(c) + t->offset, ref_f32(rf, key, t->numel), t->numel * sizeof(float));
    }
}

/* Every fastai state_dict key but num_batches_tracked is one of our tensors, and vice versa. */
static void check_names(const head_clf *c, const ref_file *rf)
{
    const ref_tensor *nt = ref_get(rf, "names");
    CHECK(nt != NULL);
    if (!nt)
        return;
    char *all = calloc(nt->numel + 1, 1);
    memcpy(all, nt->data, nt->numel);
    int matched = 0, expected = 0;
    for (char *line = all, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (strstr(line, "num_batches_tracked"))
            continue;
        expected++;
        bool found = false;
        for (int i = 0; i < head_tensor_count(c); i++)
            found |= strcmp(head_tensors(c)[i].name, line) == 0;
        for (int i = 0; i < head_buffer_count(c); i++)
            found |= strcmp(head_buffer_tensors(c)[i].name, line) == 0;
        if (!found)
            fprintf(stderr, "  fastai key %s has no tensor here\n", line);
        matched += found;
    }
    CHECK_EQ_INT(expected, matched);
    CHECK_EQ_INT(expected, head_tensor_count(c) + head_buffer_count(c));
    free(all);
}

/* One forward/loss/backward case ("m." multi-label training, "s." single training, "e." eval). */
static void run_case(nn_backend *be, const shape_case *sc, const ref_file *rf, const char *prefix,
                     bool multi, bool training)
{
    const int B = sc->B, T = sc->T, E = sc->E, L = sc->L, NK = sc->n_blocks;
    head_config hc = config_of(sc, multi);
    head_clf *c = NULL;
    char key[128];
    fprintf(stderr, "case %s%s\n", sc->tag, prefix);
    CHECK_EQ_INT(0, head_clf_new(&c, &hc, be, NULL, B));
    if (!c)
        return;
    if (multi)
        check_names(c, rf);
    load_weights(c, rf);
    for (int k = 0; k < NK; k++) {
        snprintf(key, sizeof key, "mask.%d", k);
        memcpy(head_clf_acts(c, k)->mask, ref_f32(rf, key, (size_t)B * sc->dims[k]),
               (size_t)B * sc->dims[k] * sizeof(float));
    }
    const float *enc = ref_f32(rf, "enc", (size_t)T * B * E);
    const uint8_t *pad = ref_u8(rf, "pad", (size_t)B * T);
    CHECK_EQ_INT(0, head_clf_forward(c, enc, pad, B, T, training));

    snprintf(key, sizeof key, "%spooled", prefix);
    compare(rf, key, head_clf_pooled(c), (size_t)B * 3 * E);
    for (int k = 0; k < NK; k++) {
        snprintf(key, sizeof key, "%sout.%d", prefix, k);
        compare(rf, key, head_clf_acts(c, k)->out, (size_t)B * sc->dims[k + 1]);
    }
    double loss = 0;
    head_targets y = {.multi = ref_f32(rf, "y_multi", (size_t)B * L),
                      .single = ref_i32(rf, "y_single", (size_t)B)};
    CHECK_EQ_INT(0, head_clf_loss(c, &loss, &y, 1.0f));
    snprintf(key, sizeof key, "%sloss", prefix);
    CHECK_NEAR(ref_f32(rf, key, 1)[0], loss, 1e-7, RTOL);
    snprintf(key, sizeof key, "%sd_out.%d", prefix, NK - 1);
    compare(rf, key, head_clf_dlogits(c), (size_t)B * L);

    size_t n_enc = (size_t)T * B * E;
    float *d_enc = calloc(n_enc, sizeof(float)), *twice = malloc(n_enc * sizeof(float));
    head_zero_grad(c);
    CHECK_EQ_INT(0, head_clf_backward(c, d_enc));
    snprintf(key, sizeof key, "%sd_enc", prefix);
    compare(rf, key, d_enc, n_enc);
    for (int i = 0; i < head_tensor_count(c); i++) {
        const nn_tensor *t = &head_tensors(c)[i];
        snprintf(key, sizeof key, "%sg.%s", prefix, t->name);
        compare(rf, key, head_grads(c) + t->offset, t->numel);
    }
    for (int i = 0; i < head_buffer_count(c); i++) {
        const nn_tensor *t = &head_buffer_tensors(c)[i];
        snprintf(key, sizeof key, "%sb.%s", prefix, t->name);
        compare(rf, key, head_buffers(c) + t->offset, t->numel);
    }
    CHECK_EQ_INT(training ? 1 : 0, head_clf_batches_tracked(c));
    /* backward accumulates: a second one doubles d_enc */
    memcpy(twice, d_enc, n_enc * sizeof(float));
    for (size_t i = 0; i < n_enc; i++)
        twice[i] *= 2.0f;
    CHECK_EQ_INT(0, head_clf_backward(c, d_enc));
    double atol_twice = 1e-6 * ref_maxabs(twice, n_enc); /* not in the macro: it is per element */
    CHECK_ALLCLOSE(twice, d_enc, n_enc, atol_twice, 1e-6);
    free(d_enc);
    free(twice);
    head_clf_free(c);
}

static void run_artar(nn_backend *be, const shape_case *sc, const ref_file *rf)
{
    const int B = sc->B, T = sc->T, E = sc->E;
    size_t n = (size_t)T * B * E;
    const float *enc = ref_f32(rf, "enc", n);
    double loss = head_artar_forward(be, enc, T, B, E, 2.0f, 1.0f);
    CHECK_NEAR(ref_f32(rf, "r.loss", 1)[0], loss, 1e-7, RTOL);
    float *d = calloc(n, sizeof(float));
    head_artar_backward(be, d, enc, T, B, E, 2.0f, 1.0f, 1.0f);
    compare(rf, "r.d_out", d, n);
    free(d);
}

/* Bad input gets a clear error, never a crash. */
static void run_errors(nn_backend *be)
{
    head_config hc = head_config_default(4, 3, true, 1.0f);
    head_clf *c = NULL;
    hc.dims[0] = 11;
    CHECK_EQ_INT(KF_EINVAL, head_clf_new(&c, &hc, be, NULL, 4));
    CHECK(strstr(err_msg(), "3*emb") != NULL);
    hc = head_config_default(4, 3, true, 1.0f);
    hc.ps[1] = 1.0f;
    CHECK_EQ_INT(KF_EINVAL, head_clf_new(&c, &hc, be, NULL, 4));
    hc = head_config_default(4, 3, false, 1.0f);
    CHECK_EQ_INT(0, head_clf_new(&c, &hc, be, NULL, 4));
    if (!c)
        return;
    CHECK_EQ_INT(0, head_clf_init(c, 7));
    float enc[3 * 4 * 4];
    for (int i = 0; i < 48; i++)
        enc[i] = (float)(i % 7) - 3.0f;
    uint8_t pad[4 * 3] = {0, 0, 0, 1, 0, 0, 1, 1, 0, 1, 1, 1}; /* row 3 all pad */
    CHECK_EQ_INT(KF_EINVAL, head_clf_forward(c, enc, pad, 4, 3, false));
    CHECK(strstr(err_msg(), "row 3") != NULL);
    CHECK_EQ_INT(KF_EINVAL, head_clf_forward(c, enc, pad, 5, 3, false));
    CHECK_EQ_INT(KF_EINVAL, head_clf_forward(c, enc, pad, 1, 3, true));
    CHECK(strstr(err_msg(), "BatchNorm") != NULL);
    CHECK_EQ_INT(0, head_clf_forward(c, enc, pad, 3, 3, false));
    int32_t bad[3] = {0, 3, 1};
    double loss;
    CHECK_EQ_INT(KF_EINVAL, head_clf_loss(c, &loss, &(head_targets){.single = bad}, 1.0f));
    CHECK(strstr(err_msg(), "row 1") != NULL);
    CHECK_EQ_INT(KF_EINVAL, head_clf_loss(c, &loss, &(head_targets){0}, 1.0f));
    head_clf_free(c);
}

int main(void)
{
    nn_backend *be = NULL;
    if (nn_backend_cpu_new(&be, 2) != 0) {
        fprintf(stderr, "cannot create CPU backend: %s\n", err_msg());
        return 1;
    }
    /* one Python run writes both shapes' files (fastai's import dominates the time) */
    remove("head_ref_a.bin");
    remove("head_ref_b.bin");
    remove("head_ref_c.bin");
    if (ref_generate("ref_head.py", "a=head_ref_a.bin b=head_ref_b.bin c=head_ref_c.bin") != 0)
        CHECK(!"reference script ran");
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        const shape_case *sc = &CASES[i];
        char path[64];
        ref_file rf;
        snprintf(path, sizeof path, "head_ref_%s.bin", sc->tag);
        if (ref_load(&rf, path) != 0) {
            CHECK(!"reference data loaded");
            continue;
        }
        run_case(be, sc, &rf, "m.", true, true);
        run_case(be, sc, &rf, "s.", false, true);
        run_case(be, sc, &rf, "e.", false, false);
        run_artar(be, sc, &rf);
        ref_free(&rf);
    }
    run_errors(be);
    be->destroy(be);
    return test_done();
}
