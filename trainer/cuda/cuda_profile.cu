/* cuda_profile: see cuda_profile.h. Events come from a fixed pool made at creation; when a run
 * records more ops than the pool holds, the rest are counted as dropped and the report says so. */
#include "cuda_profile.h"

#include "backend_cuda.h"
#include "cuda_check.h"

#include <stdlib.h>
#include <string.h>

#define PROF_EVENTS 65536 /* event pairs */
#define PROF_TAGS 256
#define PROF_TAG_LEN 64

typedef struct prof_tag {
    char name[PROF_TAG_LEN];
    double flops; /* per call, 0 for non-products */
} prof_tag;

typedef struct prof {
    nn_backend *inner;
    cudaStream_t stream;
    cudaEvent_t *ev;  /* 2 * PROF_EVENTS */
    int *ev_tag;      /* PROF_EVENTS */
    int used, dropped;
    prof_tag tags[PROF_TAGS];
    int n_tags;
} prof;

#define PR(be) ((prof *)(be)->ctx)
#define IN(be) (PR(be)->inner)

static int tag_of(prof *p, const char *name, double flops)
{
    for (int i = 0; i < p->n_tags; i++)
        if (!strcmp(p->tags[i].name, name))
            return i;
    if (p->n_tags == PROF_TAGS)
        return -1;
    prof_tag *t = &p->tags[p->n_tags];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->flops = flops;
    return p->n_tags++;
}

/* Returns the pair index to close with prof_end, or -1 (pool or tags full). */
static int prof_begin(prof *p, const char *name, double flops)
{
    int tag = tag_of(p, name, flops);
    if (tag < 0 || p->used == PROF_EVENTS) {
        p->dropped++;
        return -1;
    }
    int k = p->used++;
    p->ev_tag[k] = tag;
    CUDA_CHECK(cudaEventRecord(p->ev[2 * k], p->stream));
    return k;
}

static void prof_end(prof *p, int k)
{
    if (k >= 0)
        CUDA_CHECK(cudaEventRecord(p->ev[2 * k + 1], p->stream));
}

/* ---- wrapped ops: time the inner op under a tag ---- */
#define TIMED(be, name, flops, call)                        \
    do {                                                    \
        int k_ = prof_begin(PR(be), (name), (flops));       \
        call;                                               \
        prof_end(PR(be), k_);                               \
    } while (0)

static void *w_alloc(nn_backend *be, size_t n) { return IN(be)->alloc(IN(be), n); }
static void w_release(nn_backend *be, void *x) { IN(be)->release(IN(be), x); }
static void w_upload(nn_backend *be, void *d, const void *s, size_t n)
{
    TIMED(be, "upload", 0, IN(be)->upload(IN(be), d, s, n));
}
static void w_download(nn_backend *be, void *d, const void *s, size_t n)
{
    TIMED(be, "download", 0, IN(be)->download(IN(be), d, s, n));
}
static void w_copy(nn_backend *be, void *d, const void *s, size_t n)
{
    TIMED(be, "copy", 0, IN(be)->copy(IN(be), d, s, n));
}
static void w_fill(nn_backend *be, float *x, float v, size_t n)
{
    TIMED(be, "fill", 0, IN(be)->fill(IN(be), x, v, n));
}
static void w_sgemm(nn_backend *be, bool ta, bool tb, int M, int N, int K, float alpha,
                    const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    char name[PROF_TAG_LEN];
    snprintf(name, sizeof name, "sgemm %dx%dx%d %c%c b%g", M, N, K, ta ? 'T' : 'N', tb ? 'T' : 'N',
             (double)beta);
    TIMED(be, name, 2.0 * M * N * K,
          IN(be)->sgemm(IN(be), ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc));
}
static void w_dropout_mask(nn_backend *be, float *m, size_t n, float pr, uint64_t seed,
                           uint64_t st)
{
    TIMED(be, "dropout_mask", 0, IN(be)->dropout_mask(IN(be), m, n, pr, seed, st));
}
static void w_mul(nn_backend *be, float *y, const float *x, const float *m, size_t n)
{
    TIMED(be, "mul", 0, IN(be)->mul(IN(be), y, x, m, n));
}
static void w_mul_bcast(nn_backend *be, float *y, const float *x, const float *m, int R, int B,
                        int D)
{
    TIMED(be, "mul_bcast", 0, IN(be)->mul_bcast(IN(be), y, x, m, R, B, D));
}
static void w_axpy(nn_backend *be, float *y, float a, const float *x, size_t n)
{
    TIMED(be, "axpy", 0, IN(be)->axpy(IN(be), y, a, x, n));
}
static void w_embedding_fwd(nn_backend *be, float *out, const int32_t *tok, const float *w,
                            const float *rm, int B, int T, int E)
{
    TIMED(be, "embedding_fwd", 0, IN(be)->embedding_fwd(IN(be), out, tok, w, rm, B, T, E));
}
static void w_embedding_bwd(nn_backend *be, float *dw, const float *dout, const int32_t *tok,
                            const float *rm, int pad, int B, int T, int E)
{
    TIMED(be, "embedding_bwd", 0, IN(be)->embedding_bwd(IN(be), dw, dout, tok, rm, pad, B, T, E));
}
static void w_add_bias(nn_backend *be, float *y, const float *b1, const float *b2, int N, int D)
{
    TIMED(be, "add_bias", 0, IN(be)->add_bias(IN(be), y, b1, b2, N, D));
}
static void w_bias_grad(nn_backend *be, float *db, const float *dy, int N, int D)
{
    TIMED(be, "bias_grad", 0, IN(be)->bias_grad(IN(be), db, dy, N, D));
}
static void w_cell_fwd(nn_backend *be, float *g, float *c, float *h, const float *cp, int B, int H)
{
    TIMED(be, "lstm_cell_fwd", 0, IN(be)->lstm_cell_fwd(IN(be), g, c, h, cp, B, H));
}
static void w_cell_bwd(nn_backend *be, float *dg, const float *dh, float *dc, const float *g,
                       const float *c, const float *cp, int B, int H)
{
    TIMED(be, "lstm_cell_bwd", 0, IN(be)->lstm_cell_bwd(IN(be), dg, dh, dc, g, c, cp, B, H));
}
static void w_xent_fwd(nn_backend *be, float *loss, float *probs, const int32_t *t, int N, int V)
{
    TIMED(be, "softmax_xent_fwd", 0, IN(be)->softmax_xent_fwd(IN(be), loss, probs, t, N, V));
}
static void w_xent_bwd(nn_backend *be, float *d, const float *p, const int32_t *t, float s, int N,
                       int V)
{
    TIMED(be, "softmax_xent_bwd", 0, IN(be)->softmax_xent_bwd(IN(be), d, p, t, s, N, V));
}
static double w_sum(nn_backend *be, const float *x, size_t n)
{
    double r;
    TIMED(be, "sum", 0, r = IN(be)->sum(IN(be), x, n));
    return r;
}
static double w_sumsq(nn_backend *be, const float *x, size_t n)
{
    double r;
    TIMED(be, "sumsq", 0, r = IN(be)->sumsq(IN(be), x, n));
    return r;
}
static double w_sumsq_tdiff(nn_backend *be, const float *x, int R, int M)
{
    double r;
    TIMED(be, "sumsq_tdiff", 0, r = IN(be)->sumsq_tdiff(IN(be), x, R, M));
    return r;
}
static void w_tdiff_grad(nn_backend *be, float *dx, const float *x, float s, int R, int M)
{
    TIMED(be, "sumsq_tdiff_grad", 0, IN(be)->sumsq_tdiff_grad(IN(be), dx, x, s, R, M));
}

static void w_reduce_to(nn_backend *be, double *dst, int kind, const float *x, size_t n, int M)
{
    TIMED(be, "reduce_to", 0, IN(be)->reduce_to(IN(be), dst, kind, x, n, M));
}

static void w_destroy(nn_backend *be)
{
    if (!be)
        return;
    prof *p = PR(be);
    if (p) {
        for (int i = 0; p->ev && i < 2 * PROF_EVENTS; i++)
            if (p->ev[i])
                CUDA_CHECK(cudaEventDestroy(p->ev[i]));
        free(p->ev);
        free(p->ev_tag);
        free(p);
    }
    free(be);
}

extern "C" int cuda_profile_new(nn_backend **out, nn_backend *inner)
{
    *out = NULL;
    cuda_ctx *cx = nn_backend_cuda_ctx(inner);
    if (!cx)
        return err_set(KF_EINVAL, "cuda_profile: the wrapped backend is not a CUDA backend");
    nn_backend *be = (nn_backend *)calloc(1, sizeof *be);
    prof *p = (prof *)calloc(1, sizeof *p);
    if (p) {
        p->ev = (cudaEvent_t *)calloc(2 * PROF_EVENTS, sizeof *p->ev);
        p->ev_tag = (int *)calloc(PROF_EVENTS, sizeof *p->ev_tag);
    }
    if (!be || !p || !p->ev || !p->ev_tag) {
        if (p) {
            free(p->ev);
            free(p->ev_tag);
        }
        free(p);
        free(be);
        return err_set(KF_ENOMEM, "cuda_profile: out of memory");
    }
    *be = *inner; /* name, threads, optional ops: as the inner backend */
    be->ctx = p;
    p->inner = inner;
    p->stream = cx->stream;
    for (int i = 0; i < 2 * PROF_EVENTS; i++)
        CUDA_CHECK(cudaEventCreate(&p->ev[i]));
    be->destroy = w_destroy;
    be->alloc = w_alloc;
    be->release = w_release;
    be->upload = w_upload;
    be->download = w_download;
    be->copy = w_copy;
    be->fill = w_fill;
    be->sgemm = w_sgemm;
    be->dropout_mask = w_dropout_mask;
    be->mul = w_mul;
    be->mul_bcast = w_mul_bcast;
    be->axpy = w_axpy;
    be->embedding_fwd = w_embedding_fwd;
    be->embedding_bwd = w_embedding_bwd;
    be->add_bias = w_add_bias;
    be->bias_grad = w_bias_grad;
    be->lstm_cell_fwd = w_cell_fwd;
    be->lstm_cell_bwd = w_cell_bwd;
    be->softmax_xent_fwd = w_xent_fwd;
    be->softmax_xent_bwd = w_xent_bwd;
    be->sum = w_sum;
    be->sumsq = w_sumsq;
    be->sumsq_tdiff = w_sumsq_tdiff;
    be->sumsq_tdiff_grad = w_tdiff_grad;
    be->reduce_to = w_reduce_to;
    be->adam_set = NULL, be->adam_queue = NULL, be->clip_queue = NULL, be->clip_norm = NULL;
    be->argmax_hits = NULL, be->head = NULL;
    be->capture_begin = NULL;
    be->capture_end = NULL;
    be->graph_launch = NULL;
    be->graph_free = NULL;
    be->packed_floats = NULL; /* the CUDA backend has no packed products */
    be->pack_b = NULL;
    be->sgemm_packed = NULL;
    *out = be;
    return 0;
}

extern "C" void cuda_profile_reset(nn_backend *be)
{
    CUDA_CHECK(cudaStreamSynchronize(PR(be)->stream));
    PR(be)->used = PR(be)->dropped = 0;
}

typedef struct tag_total {
    int tag, calls;
    double ms;
} tag_total;

static int by_ms_desc(const void *a, const void *b)
{
    double d = ((const tag_total *)b)->ms - ((const tag_total *)a)->ms;
    return d > 0 ? 1 : d < 0 ? -1 : 0;
}

extern "C" void cuda_profile_report(nn_backend *be, FILE *f, int top)
{
    prof *p = PR(be);
    CUDA_CHECK(cudaStreamSynchronize(p->stream));
    tag_total tot[PROF_TAGS];
    double all = 0;
    for (int i = 0; i < p->n_tags; i++)
        tot[i] = (tag_total){i, 0, 0.0};
    for (int k = 0; k < p->used; k++) {
        float ms = 0;
        CUDA_CHECK(cudaEventElapsedTime(&ms, p->ev[2 * k], p->ev[2 * k + 1]));
        tot[p->ev_tag[k]].ms += ms;
        tot[p->ev_tag[k]].calls++;
        all += ms;
    }
    qsort(tot, (size_t)p->n_tags, sizeof *tot, by_ms_desc);
    fprintf(f, "{\"profile\":\"ops\",\"recorded_ms\":%.3f,\"ops\":%d,\"dropped\":%d}\n", all,
            p->used, p->dropped);
    for (int i = 0; i < p->n_tags && i < top; i++) {
        const prof_tag *t = &p->tags[tot[i].tag];
        double tflops = t->flops > 0 && tot[i].ms > 0 ? t->flops * tot[i].calls / (tot[i].ms * 1e9) : 0;
        fprintf(f, "{\"op\":\"%s\",\"ms\":%.3f,\"calls\":%d,\"share\":%.3f,\"tflops\":%.1f}\n",
                t->name, tot[i].ms, tot[i].calls, all > 0 ? tot[i].ms / all : 0, tflops);
    }
}
