/* test_gpu_trainer: the trainer on the CUDA backend against the CPU backend.
 *
 * 1. The optimizer (trainer/train optim.c) on both backends: 37 tensors in two blocks (more than
 *    one launch of cuda_optim's lists; sizes 1 .. 200003, past one grid stride), 4 groups with
 *    per-group lr, freezing (freeze_to -1, -2, 0), a force_train tensor, no_wd tensors, changing
 *    momentum and wd, clipping that scales, that does not, and measure-only; 6 steps on the same
 *    random params and fresh random grads every step. Norms within 1e-10 relative (double sums in
 *    another order); params and the avg/sqr state with gpu_pair.h's rule (1e-5 relative to the
 *    tensor's scale); a frozen tensor untouched bit for bit; step counts exact; a device checkpoint
 *    reloaded into a fresh device optimizer saves the same bytes.
 *    Then argmax_hits (the LM accuracy op) exactly against the host loop, with ties and rows wider
 *    and narrower than a block.
 * 2. kubefit-trainer end to end (finetune-lm 1 epoch, classifier 2 epochs: head only, then
 *    unfrozen) with --device cpu and --device cuda, same seed, on a tiny generated data set:
 *    every epoch's train/valid loss within 1e-3 relative. Why 1e-3: both runs do the same float32
 *    operations, but cuBLAS and OpenBLAS sum in different orders (~1e-6 relative per product) and
 *    ~20 Adam steps amplify that mildly (Adam divides by sqrt(sqr)); 1e-3 is far above that drift
 *    and far below what a wrong kernel, a stale upload or a missed optimizer step does to a loss.
 *    Accuracy-type metrics flip when one probability crosses 0.5, so they get an absolute 0.05
 *    (a few of the 96 label decisions). evaluate and predict of the GPU-trained model on both
 *    devices: validLoss within 1e-4 relative, probabilities within 2e-4 (printed with 4 decimals).
 * Skips (77) without a usable CUDA device. The trainer is $KUBEFIT_TRAINER, else next to this
 * executable (the device pack), else $KUBEFIT_BINARY_DIR/trainer/kubefit-trainer.
 * KUBEFIT_GPU_TRAINER_SELFTEST=1 (no GPU needed): the "GPU" is a CPU backend given host versions
 * of the device optimizer ops, so optim.c's device path (tensor lists, host copy for checkpoints)
 * and this test's own plumbing run on any machine; the "cuda" runs then pass --device auto, which
 * falls back to the CPU (--device cuda without a usable GPU is an error: exit 3). */
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gpu_pair.h"
#include "optim.h"
#include "safetensors.h"

static int selftest;

/* ---- self-test: host versions of the device ops (the semantics of cuda_optim.cu) ---- */

/* adam_set keeps the step's momenta and eps; adam_queue then updates the same list. */
static double host_mom, host_sqr_mom, host_eps, host_norm;

static int host_adam_set(nn_backend *be, const nn_opt_tensor *t, int count, double mom, double sqr_mom,
                         double eps)
{
    (void)be, (void)t, (void)count;
    host_mom = mom, host_sqr_mom = sqr_mom, host_eps = eps;
    return 0;
}

static void host_adam_queue(nn_backend *be, const nn_opt_tensor *t, int count)
{
    const double mom = host_mom, sqr_mom = host_sqr_mom, eps = host_eps;
    (void)be;
    for (int i = 0; i < count; i++) {
        const float decay = (float)(1.0 - t[i].lr * t[i].wd), scale = (float)(t[i].lr / (1.0 - pow(mom, t[i].step)));
        const float inv_d2 = (float)(1.0 / (1.0 - pow(sqr_mom, t[i].step)));
        for (size_t k = 0; k < t[i].n; k++) {
            float w = t[i].param[k], g = t[i].grad[k];
            if (t[i].wd != 0.0)
                w *= decay;
            t[i].avg[k] = (float)mom * t[i].avg[k] + (float)(1.0 - mom) * g;
            t[i].sqr[k] = (float)sqr_mom * t[i].sqr[k] + (float)(1.0 - sqr_mom) * g * g;
            t[i].param[k] = w - scale * t[i].avg[k] / (sqrtf(t[i].sqr[k] * inv_d2) + (float)eps);
        }
    }
}

static void host_clip_queue(nn_backend *be, const nn_opt_tensor *t, int count, double max_norm)
{
    double sum = 0;
    (void)be;
    for (int i = 0; i < count; i++)
        for (size_t k = 0; k < t[i].n; k++)
            sum += (double)t[i].grad[k] * t[i].grad[k];
    double norm = sqrt(sum), coef = max_norm > 0 ? max_norm / (norm + 1e-6) : 1.0;
    for (int i = 0; coef < 1.0 && i < count; i++)
        for (size_t k = 0; k < t[i].n; k++)
            t[i].grad[k] *= (float)coef;
    host_norm = norm;
}

static double host_clip_norm(nn_backend *be)
{
    (void)be;
    return host_norm;
}

/* hits[i] = (first index of row i's maximum == targets[i]): the host loop fit.c runs on the CPU. */
static void host_argmax_hits(nn_backend *be, float *hits, const float *x, const int32_t *targets, int N, int V)
{
    (void)be;
    for (int i = 0; i < N; i++) {
        const float *r = x + (size_t)i * V;
        int best = 0;
        for (int v = 1; v < V; v++)
            if (r[v] > r[best])
                best = v;
        hits[i] = best == targets[i] ? 1.0f : 0.0f;
    }
}

static void pair_init(gpu_pair *p)
{
    if (!selftest) {
        gpu_pair_init(p);
        return;
    }
    if (nn_backend_cpu_new(&p->cpu, 2) < 0 || nn_backend_cpu_new(&p->gpu, 2) < 0) {
        fprintf(stderr, "backend: %s\n", err_msg());
        exit(1);
    }
    p->gpu->adam_set = host_adam_set;
    p->gpu->adam_queue = host_adam_queue;
    p->gpu->clip_queue = host_clip_queue;
    p->gpu->clip_norm = host_clip_norm;
    p->gpu->argmax_hits = host_argmax_hits;
}

/* ---- 1b. argmax_hits (the LM's accuracy on the device) ---- */

static void test_argmax(gpu_pair *P)
{
    static const int shapes[][2] = {{1, 1}, {5, 7}, {37, 300}, {64, 1000}, {3, 70000}, {300, 257}};
    nn_backend *g = P->gpu;
    CHECK(g->argmax_hits != NULL);
    if (!g->argmax_hits)
        return;
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        const int N = shapes[s][0], V = shapes[s][1];
        float *x = host_rand((size_t)N * V, 0.0f, 1.0f), *ref = xmalloc((size_t)N * sizeof *ref);
        int32_t *tg = xmalloc((size_t)N * sizeof *tg);
        for (int i = 0; i < N; i++) {
            float *r = x + (size_t)i * V;
            int j1 = (int)(rnd(0.0f, 1.0f) * V) % V, j2 = (int)(rnd(0.0f, 1.0f) * V) % V;
            if (j1 > j2) {
                int t = j1;
                j1 = j2, j2 = t;
            }
            if (i % 3 == 0) /* a tie: the first index wins */
                r[j1] = r[j2] = 2.0f;
            int first = 0;
            for (int v = 1; v < V; v++)
                if (r[v] > r[first])
                    first = v;
            tg[i] = i % 2 == 0 ? first : i % 3 == 0 ? j2 : (int32_t)(rnd(0.0f, 1.0f) * V) % V;
        }
        host_argmax_hits(NULL, ref, x, tg, N, V);
        float *dx = be_from(g, x, (size_t)N * V * sizeof *x), *dh = g->alloc(g, (size_t)N * sizeof *dh);
        int32_t *dt = be_from(g, tg, (size_t)N * sizeof *tg);
        g->argmax_hits(g, dh, dx, dt, N, V);
        float *got = be_to_host(g, dh, (size_t)N);
        int bad = 0, hits = 0;
        for (int i = 0; i < N; i++) {
            hits += ref[i] == 1.0f;
            if (got[i] != ref[i] && bad++ < 3)
                fprintf(stderr, "  argmax_hits %dx%d row %d: expected %g, got %g (target %d)\n", N, V, i, ref[i],
                        got[i], tg[i]);
        }
        fprintf(stderr, "  argmax_hits %5d x %-6d %d hits, %d wrong\n", N, V, hits, bad);
        CHECK_EQ_INT(0, bad);
        CHECK(hits >= (N + 1) / 2);
        CHECK_NEAR(hits, g->sum(g, dh, (size_t)N), 0, 0);
        g->release(g, dx);
        g->release(g, dh);
        g->release(g, dt);
        free(x);
        free(ref);
        free(tg);
        free(got);
    }
}

/* ---- 1. optimizer ---- */

enum { NT = 37, NBLOCK_A = 20, NGROUPS = 4, NSTEPS = 6 };

typedef struct opt_side {
    nn_backend *be;
    float *params[2], *grads[2]; /* blocks A (tensors < NBLOCK_A) and B */
    optim *o;
} opt_side;

static size_t tensor_size(int i)
{
    return i == 5 ? 200003 : i == 9 ? 1 : 1 + (size_t)(i * 7919) % 3000;
}

static char names[NT][16];

static void side_init(opt_side *s, nn_backend *be, const float *host_params, const size_t *off,
                      const size_t *total)
{
    optim_param p[NT];
    s->be = be;
    for (int b = 0; b < 2; b++) {
        s->params[b] = be_from(be, host_params + (b ? total[0] : 0), total[b] * sizeof(float));
        s->grads[b] = be->alloc(be, total[b] * sizeof(float));
    }
    for (int i = 0; i < NT; i++) {
        int b = i >= NBLOCK_A;
        p[i] = (optim_param){.name = names[i], .param = s->params[b] + off[i], .grad = s->grads[b] + off[i],
                             .n = tensor_size(i), .group = i % NGROUPS, .no_wd = i % 5 == 0,
                             .force_train = i == 1};
    }
    if (optim_create(&s->o, &(optim_config){.params = p, .n = NT, .n_groups = NGROUPS,
                                            .hp = OPTIM_HPARAMS_DEFAULT, .be = be}) < 0) {
        fprintf(stderr, "optim_create on %s: %s\n", be->name, err_msg());
        exit(1);
    }
}

static void side_dispose(opt_side *s)
{
    optim_free(s->o);
    for (int b = 0; b < 2; b++) {
        s->be->release(s->be, s->params[b]);
        s->be->release(s->be, s->grads[b]);
    }
}

/* The optimizer's checkpoint image (caller frees *buf and the file). */
static st_file *saved(optim *o, unsigned char **buf)
{
    st_writer *w = NULL;
    st_file *f = NULL;
    size_t len = 0;
    *buf = NULL;
    if (st_writer_new(&w) < 0 || optim_save(o, w) < 0 || st_writer_bytes(w, buf, &len) < 0 ||
        st_parse(&f, *buf, len) < 0) {
        fprintf(stderr, "optimizer checkpoint: %s\n", err_msg());
        exit(1);
    }
    st_writer_free(w);
    return f;
}

static size_t saved_len(optim *o, unsigned char **buf)
{
    st_writer *w = NULL;
    size_t len = 0;
    if (st_writer_new(&w) < 0 || optim_save(o, w) < 0 || st_writer_bytes(w, buf, &len) < 0) {
        fprintf(stderr, "optimizer checkpoint: %s\n", err_msg());
        exit(1);
    }
    st_writer_free(w);
    return len;
}

/* Compares one saved state tensor of both checkpoints with the pair rule. */
static void check_state(const st_file *fc, const st_file *fg, const char *tensor, const char *part, size_t n)
{
    char nm[640];
    snprintf(nm, sizeof nm, "opt.%s.%s", tensor, part);
    float *c = xmalloc(n * sizeof *c), *g = xmalloc(n * sizeof *g);
    CHECK_EQ_INT(0, st_read_f32(c, n, fc, nm, NULL, 0));
    CHECK_EQ_INT(0, st_read_f32(g, n, fg, nm, NULL, 0));
    double scale = max_abs(c, n), worst = 0;
    size_t wi = 0;
    for (size_t k = 0; k < n; k++)
        if (!(fabs((double)g[k] - c[k]) <= worst))
            worst = fabs((double)g[k] - c[k]), wi = k;
    if (!(worst <= GPU_RTOL * (scale + fabs(c[wi]))))
        fprintf(stderr, "  %s: worst [%zu] cpu %.9g gpu %.9g (max|cpu| %.4g)\n", nm, wi, c[wi], g[wi], scale);
    CHECK_ALLCLOSE(c, g, n, GPU_RTOL * scale, GPU_RTOL);
    free(c);
    free(g);
}

static void test_optimizer(gpu_pair *P)
{
    size_t off[NT], total[2] = {0, 0};
    for (int i = 0; i < NT; i++) {
        int b = i >= NBLOCK_A;
        snprintf(names[i], sizeof names[i], "t%02d", i);
        off[i] = total[b];
        total[b] += tensor_size(i) + (size_t)(i % 3) * 5; /* gaps that must stay untouched */
    }
    float *host_params = host_rand(total[0] + total[1], -1.0f, 1.0f);
    opt_side cpu, gpu;
    side_init(&cpu, P->cpu, host_params, off, total);
    side_init(&gpu, P->gpu, host_params, off, total);
    static const int freeze[NSTEPS] = {-1, -1, -2, -2, 0, 0};
    static const double clip[NSTEPS] = {3.0, 3.0, 3.0, 1e9, 2.0, 0.0};
    for (int s = 0; s < NSTEPS; s++) {
        for (int b = 0; b < 2; b++) {
            float *g = host_rand(total[b], -1.0f, 1.0f);
            P->cpu->upload(P->cpu, cpu.grads[b], g, total[b] * sizeof *g);
            P->gpu->upload(P->gpu, gpu.grads[b], g, total[b] * sizeof *g);
            free(g);
        }
        for (opt_side *x = &cpu; x; x = x == &cpu ? &gpu : NULL) {
            optim_freeze_to(x->o, freeze[s]);
            for (int g = 0; g < NGROUPS; g++)
                optim_set_lr(x->o, g, 1e-3 * (g + 1) * (1.0 + 0.1 * s));
            optim_set_mom(x->o, 0.9 - 0.02 * s);
            if (s == 3)
                optim_set_wd(x->o, 0.05);
        }
        double nc = optim_clip_grad_norm(cpu.o, clip[s]), ng = optim_clip_grad_norm(gpu.o, clip[s]);
        fprintf(stderr, "  step %d: freeze_to %d, grad norm cpu %.12g gpu %.12g (clip %g)\n", s, freeze[s], nc, ng,
                clip[s]);
        CHECK(nc > 1.0);
        CHECK_NEAR(nc, ng, 0, 1e-10);
        if (s == 0) /* the clip scaled the grads the same way on both */
            CHECK_PAIR("clipped grads block A", P->cpu, cpu.grads[0], P->gpu, gpu.grads[0], total[0]);
        optim_step(cpu.o);
        optim_step(gpu.o);
        if (s == 1) { /* tensor 4 (group 0, not force_train) is frozen so far: bit for bit */
            float *now = be_to_host(P->gpu, gpu.params[0] + off[4], tensor_size(4));
            CHECK_EQ_INT(0, memcmp(now, host_params + off[4], tensor_size(4) * sizeof *now));
            free(now);
        }
    }
    for (int b = 0; b < 2; b++) /* whole blocks: the gaps included */
        CHECK_PAIR(b ? "params block B" : "params block A", P->cpu, cpu.params[b], P->gpu, gpu.params[b], total[b]);
    float *gapc = be_to_host(P->gpu, gpu.params[0], total[0]);
    CHECK_EQ_INT(0, memcmp(gapc + off[1] + tensor_size(1), host_params + off[1] + tensor_size(1), 5 * sizeof(float)));
    free(gapc);

    unsigned char *bc, *bg;
    st_file *fc = saved(cpu.o, &bc), *fg = saved(gpu.o, &bg);
    for (int i = 0; i < NT; i++) {
        check_state(fc, fg, names[i], "avg", tensor_size(i));
        check_state(fc, fg, names[i], "sqr", tensor_size(i));
        float sc = -1, sg = -2;
        char nm[640];
        snprintf(nm, sizeof nm, "opt.%s.step", names[i]);
        CHECK_EQ_INT(0, st_read_f32(&sc, 1, fc, nm, NULL, 0));
        CHECK_EQ_INT(0, st_read_f32(&sg, 1, fg, nm, NULL, 0));
        CHECK_EQ_INT((long long)sc, (long long)sg);
        CHECK(i % NGROUPS == 3 || i == 1 ? sc == NSTEPS : i % NGROUPS == 2 ? sc == NSTEPS - 2 : sc == 2);
    }
    /* Reload the device checkpoint into a fresh device optimizer: it saves the same bytes. */
    opt_side again;
    side_init(&again, P->gpu, host_params, off, total);
    CHECK_EQ_INT(0, optim_load(again.o, fg));
    unsigned char *b1 = NULL, *b2 = NULL;
    size_t l1 = saved_len(gpu.o, &b1), l2 = saved_len(again.o, &b2);
    CHECK_EQ_INT(l1, l2);
    CHECK(l1 == l2 && memcmp(b1, b2, l1) == 0);
    free(b1);
    free(b2);
    side_dispose(&again);
    st_free(fc);
    st_free(fg);
    free(bc);
    free(bg);
    side_dispose(&cpu);
    side_dispose(&gpu);
    free(host_params);
}

/* ---- 2. kubefit-trainer end to end ---- */

static char trainer[4096], dir[] = "/tmp/kubefit-gputrainer-XXXXXX";

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int find_trainer(void)
{
    const char *env = getenv("KUBEFIT_TRAINER"), *bin = getenv("KUBEFIT_BINARY_DIR");
    char self[4096];
    ssize_t n;
    if (env && access(env, X_OK) == 0)
        return snprintf(trainer, sizeof trainer, "%s", env), 0;
    if ((n = readlink("/proc/self/exe", self, sizeof self - 1)) > 0) {
        self[n] = 0;
        snprintf(trainer, sizeof trainer, "%s/kubefit-trainer", dirname(self));
        if (access(trainer, X_OK) == 0)
            return 0;
    }
    if (bin) {
        snprintf(trainer, sizeof trainer, "%s/trainer/kubefit-trainer", bin);
        if (access(trainer, X_OK) == 0)
            return 0;
    }
    return -1;
}

/* Tiny multi-label data: 3 keywords decide the labels among filler words. */
static void write_data(void)
{
    static const char *const words[] = {"the", "a", "of", "and", "to", "in", "is", "it", "for", "on",
                                        "with", "as", "at", "be", "this", "from", "or", "by", "not", "all"};
    static const char *const keys[3] = {"apple", "red", "cat"}, *const labels[3] = {"fruit", "color", "animal"};
    char path[4200];
    uint64_t r = 12345;
#define NEXT() (r = r * 6364136223846793005ull + 1442695040888963407ull, (unsigned)(r >> 33))
    snprintf(path, sizeof path, "mkdir -p %s/b/en/data", dir);
    if (system(path) != 0)
        exit(1);
    for (int part = 0; part < 2; part++) {
        snprintf(path, sizeof path, "%s/b/en/data/%s.csv", dir, part ? "valid" : "train");
        FILE *f = fopen(path, "w");
        if (!f) {
            perror(path);
            exit(1);
        }
        fprintf(f, "text,labels\n");
        for (int row = 0; row < (part ? 32 : 96); row++) {
            int on[3], any = 0, len = 5 + (int)(NEXT() % 16);
            for (int k = 0; k < 3; k++)
                any |= on[k] = NEXT() % 2;
            if (!any)
                on[0] = 1;
            fputc('"', f);
            for (int w = 0; w < len; w++) {
                fprintf(f, "%s%s", w ? " " : "", words[NEXT() % 20]);
                for (int k = 0; k < 3; k++)
                    if (on[k] && (int)(NEXT() % (unsigned)len) == w)
                        fprintf(f, " %s", keys[k]), on[k] = 2;
            }
            for (int k = 0; k < 3; k++)
                if (on[k] == 1)
                    fprintf(f, " %s", keys[k]);
            fputs("\",\"", f);
            for (int k = 0, first = 1; k < 3; k++)
                if (on[k])
                    fprintf(f, "%s%s", first ? "" : ";", labels[k]), first = 0;
            fputs("\"\n", f);
        }
        fclose(f);
    }
#undef NEXT
}

/* Runs `trainer ARGS` with stdin from `in` (or /dev/null); stdout/stderr to DIR/TAG.out/.err.
 * Returns the exit status and prints the tail of stderr on failure. */
static int run_trainer(const char *tag, const char *in, const char *args)
{
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "'%s' %s <%s >%s/%s.out 2>%s/%s.err", trainer, args, in ? in : "/dev/null", dir, tag,
             dir, tag);
    double t0 = now_seconds();
    int rc = system(cmd);
    rc = WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
    fprintf(stderr, "  %-12s exit %d in %.1f s\n", tag, rc, now_seconds() - t0);
    if (rc != 0) {
        snprintf(cmd, sizeof cmd, "tail -5 %s/%s.err >&2", dir, tag);
        if (system(cmd) != 0)
            fprintf(stderr, "  (no stderr)\n");
    }
    return rc;
}

static json_t *load_json(const char *fmt, const char *a, const char *b)
{
    char path[4200];
    snprintf(path, sizeof path, fmt, dir, a, b);
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    if (!j)
        fprintf(stderr, "  %s: %s\n", path, e.text);
    return j;
}

static int file_has(const char *tag, const char *what)
{
    char path[4200], line[8192];
    int hit = 0;
    snprintf(path, sizeof path, "%s/%s.err", dir, tag);
    FILE *f = fopen(path, "r");
    while (f && !hit && fgets(line, sizeof line, f))
        hit = strstr(line, what) != NULL;
    if (f)
        fclose(f);
    return hit;
}

/* Compares a number of two JSON objects: |gpu - cpu| <= atol + rtol*|cpu|. */
static void check_num(const char *what, json_t *c, json_t *g, const char *key, double atol, double rtol)
{
    json_t *jc = json_object_get(c, key), *jg = json_object_get(g, key);
    double vc = json_is_number(jc) ? json_number_value(jc) : NAN, vg = json_is_number(jg) ? json_number_value(jg) : NAN;
    int bad = !(fabs(vg - vc) <= atol + rtol * fabs(vc));
    fprintf(stderr, "  %-28s %-10s cpu %-12.6g gpu %-12.6g%s\n", what, key, vc, vg, bad ? "  <-- FAIL" : "");
    CHECK_NEAR(vc, vg, atol, rtol);
}

static void test_trainer(void)
{
    char args[8192];
    const char *small = "--emb-size 24 --hidden-size 40 --layers 3 --batch-size 16 --bptt 12 --max-vocab 500 "
                        "--threads 2 --lm-epochs 1 --epochs 2 --clip 0.5 --seed 7 --lm-lr 0.01 --lr 0.02";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(1);
    }
    write_data();
    fprintf(stderr, "trainer %s, data in %s\n", trainer, dir);
    const char *dev[2] = {"cpu", "cuda"}, *flag[2] = {"cpu", selftest ? "auto" : "cuda"};
    json_t *m[2] = {NULL, NULL}, *ev[2] = {NULL, NULL};
    for (int d = 0; d < 2; d++) {
        snprintf(args, sizeof args, "train --lang en --bucket-name file://%s/b --model-dir m --job %s --device %s %s "
                 "--result-file %s/%s.result", dir, dev[d], flag[d], small, dir, dev[d]);
        CHECK_EQ_INT(0, run_trainer(dev[d], NULL, args));
        m[d] = load_json("%s/b/m/en/%s/1/metrics.json%s", dev[d], "");
        json_t *cfg = load_json("%s/b/m/en/%s/1/config.json%s", dev[d], "");
        CHECK_EQ_STR(selftest ? "cpu" : dev[d], json_string_value(json_object_get(cfg, "device")));
        json_decref(cfg);
    }
    CHECK(selftest || file_has("cuda", "\"training on the GPU\""));
    CHECK(selftest || !file_has("cuda", "falling back"));
    /* the LM stage replayed its full-chunk step as a CUDA graph (fit.c lm_record) */
    CHECK(selftest || file_has("cuda", "\"LM step recorded as a CUDA graph\""));
    json_t *hc = json_object_get(m[0], "history"), *hg = json_object_get(m[1], "history");
    CHECK_EQ_INT(3, json_array_size(hc));
    CHECK_EQ_INT(json_array_size(hc), json_array_size(hg));
    for (size_t i = 0; i < json_array_size(hc) && i < json_array_size(hg); i++) {
        json_t *ec = json_array_get(hc, i), *eg = json_array_get(hg, i);
        char what[64];
        snprintf(what, sizeof what, "%s epoch %d", json_string_value(json_object_get(ec, "stage")),
                 (int)json_integer_value(json_object_get(ec, "epoch")));
        CHECK_EQ_STR(json_string_value(json_object_get(ec, "stage")), json_string_value(json_object_get(eg, "stage")));
        check_num(what, ec, eg, "trainLoss", 0, 1e-3);
        check_num(what, ec, eg, "validLoss", 0, 1e-3);
        /* LM: next-token accuracy over a few hundred tokens, only near-ties may flip */
        const char *stage = json_string_value(json_object_get(ec, "stage"));
        int lm = stage && strcmp(stage, "classifier") != 0;
        if (lm) {
            check_num(what, ec, eg, "accuracy", 0.02, 0);
        } else { /* multi-label data: subset and per-label accuracy, no plain accuracy */
            check_num(what, ec, eg, "subsetAccuracy", 0.05, 0);
            check_num(what, ec, eg, "labelAccuracy", 0.05, 0);
        }
    }
    json_t *oc = json_object_get(m[0], "overall"), *og = json_object_get(m[1], "overall");
    check_num("overall", oc, og, "microF1", 0.05, 0);
    check_num("overall", oc, og, "macroF1", 0.05, 0);
    check_num("overall", oc, og, "validLoss", 0, 1e-3);

    /* evaluate and predict the GPU-trained model on both devices */
    char in[4200];
    snprintf(in, sizeof in, "%s/texts.txt", dir);
    FILE *f = fopen(in, "w");
    if (!f || fputs("a cat and an apple\nred red red\nthe of and\n", f) < 0 || fclose(f) != 0) {
        perror(in);
        exit(1);
    }
    json_t *pr[2][3] = {{NULL}};
    for (int d = 0; d < 2; d++) {
        char tag[32];
        snprintf(tag, sizeof tag, "eval-%s", dev[d]);
        snprintf(args, sizeof args, "evaluate --lang en --bucket-name file://%s/b --model-dir m --job cuda --device %s "
                 "--batch-size 16 --bptt 12", dir, flag[d]);
        CHECK_EQ_INT(0, run_trainer(tag, NULL, args));
        ev[d] = load_json("%s/%s.out%s", tag, "");
        snprintf(tag, sizeof tag, "pred-%s", dev[d]);
        snprintf(args, sizeof args, "predict --lang en --bucket-name file://%s/b --model-dir m --job cuda --device %s "
                 "--bptt 12", dir, flag[d]);
        CHECK_EQ_INT(0, run_trainer(tag, in, args));
        char path[4200], line[8192];
        snprintf(path, sizeof path, "%s/%s.out", dir, tag);
        FILE *p = fopen(path, "r");
        for (int k = 0; p && k < 3 && fgets(line, sizeof line, p); k++)
            pr[d][k] = json_loads(line, 0, NULL);
        if (p)
            fclose(p);
    }
    check_num("evaluate (model from cuda)", json_object_get(ev[0], "overall"), json_object_get(ev[1], "overall"),
              "validLoss", 0, 1e-4);
    check_num("evaluate (model from cuda)", json_object_get(ev[0], "overall"), json_object_get(ev[1], "overall"),
              "microF1", 0.02, 0);
    check_num("train vs evaluate, cuda", og, json_object_get(ev[1], "overall"), "validLoss", 0, 1e-4);
    for (int k = 0; k < 3; k++) {
        json_t *pc = json_object_get(pr[0][k], "probabilities"), *pg = json_object_get(pr[1][k], "probabilities");
        CHECK(json_object_size(pc) == 3 && json_object_size(pg) == 3);
        const char *key;
        json_t *v;
        json_object_foreach(pc, key, v) {
            char what[64];
            (void)v;
            snprintf(what, sizeof what, "predict line %d", k + 1);
            check_num(what, pc, pg, key, 2e-4, 0);
        }
        json_decref(pr[0][k]);
        json_decref(pr[1][k]);
    }
    for (int d = 0; d < 2; d++) {
        json_decref(m[d]);
        json_decref(ev[d]);
    }
    if (test_failures == 0) {
        snprintf(args, sizeof args, "rm -rf '%s'", dir);
        if (system(args) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    } else {
        fprintf(stderr, "kept %s for a look\n", dir);
    }
}

int main(void)
{
    gpu_pair P;
    selftest = getenv("KUBEFIT_GPU_TRAINER_SELFTEST") && strcmp(getenv("KUBEFIT_GPU_TRAINER_SELFTEST"), "1") == 0;
    pair_init(&P);
    fprintf(stderr, "optimizer: CPU optim vs CUDA optim\n");
    test_optimizer(&P);
    fprintf(stderr, "argmax_hits on the device vs the host loop\n");
    test_argmax(&P);
    gpu_pair_dispose(&P);
    if (find_trainer() < 0) {
        fprintf(stderr, "FAIL: no kubefit-trainer (set KUBEFIT_TRAINER, or put it next to this test)\n");
        return 1;
    }
    fprintf(stderr, "kubefit-trainer: --device cpu vs --device cuda\n");
    test_trainer();
    return test_done();
}
