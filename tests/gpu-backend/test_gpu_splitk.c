/* test_gpu_splitk: the split-K products (trainer/cuda/cuda_splitk.h) against the CPU backend's
 * sgemm, on the shapes the LSTM uses per time step (B = 64 rows, H = 1152 and 400) and on
 * transposed, strided and alpha/beta variants; each shape is checked to really take the split
 * path, and its result compared with the unsplit cuBLAS product too. Skips without a GPU. */
#include "gpu_pair.h"
#include "cuda_splitk.h"

static gpu_pair P;

typedef struct shape {
    int M, N, K;
    bool ta, tb;
    float alpha, beta;
    int pad; /* extra columns in every leading dimension */
} shape;

static void check_shape(const shape *s)
{
    int lda = (s->ta ? s->M : s->K) + s->pad, ldb = (s->tb ? s->K : s->N) + s->pad;
    int ldc = s->N + s->pad;
    size_t na = (size_t)(s->ta ? s->K : s->M) * lda, nb = (size_t)(s->tb ? s->N : s->K) * ldb;
    size_t nc = (size_t)s->M * ldc;
    cuda_ctx *ctx = nn_backend_cuda_ctx(P.gpu);
    cuda_gemm g = {NULL, NULL, NULL, s->M, s->N, s->K, s->ta, s->tb, s->alpha, s->beta,
                   lda, ldb, ldc, NN_MATH_FP32};
    int slices = cuda_splitk_slices(ctx, &g);
    char what[96];
    snprintf(what, sizeof what, "%dx%dx%d %c%c a%g b%g pad%d: %d slices", s->M, s->N, s->K,
             s->ta ? 'T' : 'N', s->tb ? 'T' : 'N', (double)s->alpha, (double)s->beta, s->pad,
             slices);
    fprintf(stderr, "%s\n", what);
    CHECK(slices > 1);

    float *ha = host_rand(na, -1, 1), *hb = host_rand(nb, -1, 1), *hc = host_rand(nc, -1, 1);
    float *ca = be_from(P.cpu, ha, na * 4), *cb = be_from(P.cpu, hb, nb * 4);
    float *cc = be_from(P.cpu, hc, nc * 4);
    float *ga = be_from(P.gpu, ha, na * 4), *gb = be_from(P.gpu, hb, nb * 4);
    float *gc = be_from(P.gpu, hc, nc * 4), *gu = be_from(P.gpu, hc, nc * 4);
    P.cpu->sgemm(P.cpu, s->ta, s->tb, s->M, s->N, s->K, s->alpha, ca, lda, cb, ldb, s->beta, cc, ldc);
    P.gpu->sgemm(P.gpu, s->ta, s->tb, s->M, s->N, s->K, s->alpha, ga, lda, gb, ldb, s->beta, gc, ldc);
    CHECK_PAIR("split vs cpu", P.cpu, cc, P.gpu, gc, nc);
    ctx->splitk = false; /* the same product in one cuBLAS call */
    CHECK(cuda_splitk_slices(ctx, &g) == 1);
    P.gpu->sgemm(P.gpu, s->ta, s->tb, s->M, s->N, s->K, s->alpha, ga, lda, gb, ldb, s->beta, gu, ldc);
    ctx->splitk = true;
    CHECK_PAIR("unsplit vs cpu", P.cpu, cc, P.gpu, gu, nc);
    /* the padding columns of C are never written */
    if (s->pad) {
        float *back = be_to_host(P.gpu, gc, nc);
        int untouched = 1;
        for (int i = 0; i < s->M; i++)
            for (int j = s->N; j < ldc; j++)
                untouched &= back[(size_t)i * ldc + j] == hc[(size_t)i * ldc + j];
        CHECK(untouched);
        free(back);
    }
    P.cpu->release(P.cpu, ca), P.cpu->release(P.cpu, cb), P.cpu->release(P.cpu, cc);
    P.gpu->release(P.gpu, ga), P.gpu->release(P.gpu, gb), P.gpu->release(P.gpu, gc);
    P.gpu->release(P.gpu, gu);
    free(ha), free(hb), free(hc);
}

int main(void)
{
    gpu_pair_init(&P);
    const shape shapes[] = {
        {64, 1600, 400, false, true, 1.0f, 1.0f, 0},   /* last layer forward: gates += h W^T */
        {64, 1152, 4608, false, false, 1.0f, 0.0f, 0}, /* backward: dh = dgates W_hh */
        {64, 400, 1600, false, false, 1.0f, 0.0f, 0},  /* last layer (H 400) backward */
        {37, 1000, 1536, true, false, 0.5f, 0.0f, 0},  /* transposed A, odd M */
        {50, 700, 1024, true, true, -1.5f, 0.25f, 3},  /* both transposed, strided, beta */
        {64, 500, 1152, false, true, 2.0f, -1.0f, 5},  /* B transposed, strided */
    };
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        check_shape(&shapes[i]);
    gpu_pair_dispose(&P);
    return test_done();
}
