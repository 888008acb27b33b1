/* test_optim: our Adam, one-cycle schedule, even_mults, freezing and clipping against fastai's
 * own optimizer run in float64 (optim_ref.py), step by step; plus a checkpoint round trip in the
 * middle of the run. Tolerance: |a-b| <= 1e-6 + 1e-5*|ref| on parameters (float32 vs float64). */
#include "err.h"
#include "optim.h"
#include "pyref.h"
#include "safetensors.h"
#include "test.h"

#define NP 4
static const size_t sizes[NP] = {12, 5, 12, 3};
static const int64_t shapes[NP][2] = {{4, 3}, {5, 0}, {6, 2}, {3, 0}};
static const int ndims[NP] = {2, 1, 2, 1};

static void read_t(const st_file *f, float *out, size_t n, const char *fmt, int a, int b)
{
    char name[64];
    snprintf(name, sizeof name, fmt, a, b);
    if (st_read_f32(out, n, f, name, NULL, 0) < 0)
        TEST_FAIL_("%s", err_msg());
}

static optim *make(float *param[NP], float *grad[NP])
{
    static const char *names[NP] = {"p0", "p1", "p2", "p3"};
    optim_param p[NP];
    for (int i = 0; i < NP; i++)
        p[i] = (optim_param){.name = names[i], .param = param[i], .grad = grad[i], .n = sizes[i],
                             .group = i / 2, .no_wd = i == 1, .force_train = i == 0};
    optim *o = NULL;
    if (optim_new(&o, p, NP, 2, OPTIM_HPARAMS_DEFAULT) < 0)
        TEST_FAIL_("%s", err_msg());
    return o;
}

int main(void)
{
    st_file *f = py_reference("optim_ref.py");
    if (!f) {
        test_failures++;
        return test_done();
    }

    /* Schedules. */
    float pct[21], lr_frac[21], mom[21], mults[5];
    read_t(f, pct, 21, "sched.pct", 0, 0);
    read_t(f, lr_frac, 21, "sched.lr_frac", 0, 0);
    read_t(f, mom, 21, "sched.mom", 0, 0);
    optim_cycle cyc = OPTIM_CYCLE_DEFAULT;
    for (int i = 0; i < 21; i++) {
        double fr, m;
        optim_cycle_at(&cyc, pct[i], &fr, &m);
        CHECK_NEAR(lr_frac[i], fr, 1e-9, 1e-6);
        CHECK_NEAR(mom[i], m, 1e-9, 1e-6);
    }
    double em[5];
    read_t(f, mults, 5, "even_mults", 0, 0);
    optim_even_mults(em, 1e-3 / pow(2.6, 4), 1e-3, 5);
    for (int i = 0; i < 5; i++)
        CHECK_NEAR(mults[i], em[i], 0, 1e-6);
    CHECK_NEAR(1e-3 / pow(2.6, 4 - 3), em[3], 0, 1e-9); /* ULMFiT: group k gets lr/2.6^(4-k) */

    /* Adam steps. */
    float *param[NP], *grad[NP], *want = malloc(64 * sizeof *want);
    for (int i = 0; i < NP; i++) {
        param[i] = malloc(sizes[i] * sizeof(float));
        grad[i] = malloc(sizes[i] * sizeof(float));
        read_t(f, param[i], sizes[i], "init.%d", i, 0);
    }
    optim *o = make(param, grad);
    for (int s = 0; s < 7 && o; s++) {
        float hyper[6], norm_ref;
        read_t(f, hyper, 6, "hyper.%d", s, 0);
        read_t(f, &norm_ref, 1, "norm.%d", s, 0);
        optim_freeze_to(o, (int)hyper[0]);
        double fr, m, lrs[2];
        optim_cycle_at(&cyc, (double)s / 7, &fr, &m);
        optim_even_mults(lrs, 2e-3 / 2.6, 2e-3 * 50, 2);
        CHECK_NEAR(hyper[3], lrs[0] * fr, 0, 1e-6);
        CHECK_NEAR(hyper[5], m, 0, 1e-6);
        optim_set_lr(o, 0, lrs[0] * fr);
        optim_set_lr(o, 1, lrs[1] * fr);
        optim_set_mom(o, m);
        CHECK_EQ_INT(s >= 3, optim_is_trainable(o, 1));
        CHECK_EQ_INT(1, optim_is_trainable(o, 0)); /* force_train */
        for (int i = 0; i < NP; i++)
            read_t(f, grad[i], sizes[i], "grad.%d.%d", s, i);
        double norm = optim_clip_grad_norm(o, hyper[2]);
        CHECK_NEAR(norm_ref, norm, 1e-6, 1e-5);
        optim_step(o);
        for (int i = 0; i < NP; i++) {
            read_t(f, want, sizes[i], "after.%d.%d", s, i);
            CHECK_ALLCLOSE(want, param[i], sizes[i], 1e-6, 1e-5);
        }
        if (s == 3) { /* checkpoint and restore into a fresh optimizer */
            st_writer *w = NULL;
            unsigned char *buf = NULL;
            size_t len = 0;
            st_file *ck = NULL;
            CHECK_EQ_INT(0, st_writer_new(&w));
            CHECK_EQ_INT(0, optim_save(o, w));
            CHECK_EQ_INT(0, st_writer_bytes(w, &buf, &len));
            CHECK_EQ_INT(0, st_parse(&ck, buf, len));
            optim_free(o);
            o = make(param, grad);
            CHECK_EQ_INT(0, optim_load(o, ck));
            st_free(ck);
            free(buf);
            st_writer_free(w);
        }
    }
    (void)shapes;
    (void)ndims;
    /* A checkpoint for other parameters is a clear error. */
    st_file *bad = NULL;
    unsigned char hdr[] = "{}";
    unsigned char img[10] = {2, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    (void)hdr;
    CHECK_EQ_INT(0, st_parse(&bad, img, sizeof img));
    CHECK_EQ_INT(KF_ENOTFOUND, optim_load(o, bad));
    CHECK(strstr(err_msg(), "opt.p0.avg") != NULL);
    st_free(bad);
    optim_free(o);
    for (int i = 0; i < NP; i++) {
        free(param[i]);
        free(grad[i]);
    }
    free(want);
    st_free(f);
    return test_done();
}
