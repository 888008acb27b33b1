/* ew_cpu: LSTM cell and softmax row kernels (see ew_cpu.h). The AVX2 set uses a Cephes-style
 * exp (range reduction by ln 2, degree-6 polynomial, ~1 ulp) and tanh (odd polynomial below
 * 0.625, 1 - 2/(exp(2|x|)+1) above), compiled for AVX2+FMA through a function attribute and
 * picked at run time, so the rest of the build keeps its default target and no fast-math.
 * Dimension legend: H hidden size, V vocab. */
#include "ew_cpu.h"

#include <math.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

static void cell_fwd_scalar(float *g, float *c, float *h, const float *c_prev, int H)
{
    for (int j = 0; j < H; j++) {
        float gi = sigmoidf(g[j]), gf = sigmoidf(g[H + j]);
        float gg = tanhf(g[2 * H + j]), go = sigmoidf(g[3 * H + j]);
        g[j] = gi, g[H + j] = gf, g[2 * H + j] = gg, g[3 * H + j] = go;
        float cn = gf * c_prev[j] + gi * gg;
        c[j] = cn;
        h[j] = go * tanhf(cn);
    }
}

static void cell_bwd_scalar(float *dg, float *dc, const float *dh, const float *g, const float *c,
                            const float *c_prev, int H)
{
    for (int j = 0; j < H; j++) {
        float gi = g[j], gf = g[H + j], gg = g[2 * H + j], go = g[3 * H + j];
        float tc = tanhf(c[j]);
        float dct = dc[j] + dh[j] * go * (1.0f - tc * tc);
        dg[j] = dct * gg * gi * (1.0f - gi);
        dg[H + j] = dct * c_prev[j] * gf * (1.0f - gf);
        dg[2 * H + j] = dct * gi * (1.0f - gg * gg);
        dg[3 * H + j] = dh[j] * tc * go * (1.0f - go);
        dc[j] = dct * gf;
    }
}

static float softmax_scalar(float *x, int V, int32_t target)
{
    float mx = x[0];
    for (int k = 1; k < V; k++)
        mx = x[k] > mx ? x[k] : mx;
    double s = 0;
    for (int k = 0; k < V; k++)
        s += exp((double)x[k] - mx);
    float loss = (float)(log(s) + mx - x[target]);
    float inv = (float)(1.0 / s);
    for (int k = 0; k < V; k++)
        x[k] = expf(x[k] - mx) * inv;
    return loss;
}

static const nn_ew_kernels scalar_set = {cell_fwd_scalar, cell_bwd_scalar, softmax_scalar};

#if HAVE_X86
#define AVX2 __attribute__((target("avx2,fma")))

AVX2 static inline __m256 v_exp(__m256 x)
{
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3365447505531f)),
                      _mm256_set1_ps(88.3762626647949f)); /* 2^fx stays a normal float */
    __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x); /* ln 2 in two parts */
    r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

AVX2 static inline __m256 v_sigmoid(__m256 x)
{
    __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, v_exp(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

AVX2 static inline __m256 v_tanh(__m256 x)
{
    __m256 sign = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f);
    __m256 ax = _mm256_andnot_ps(sign, x);
    /* |x| < 0.625: x + x^3 P(x^2) */
    __m256 z = _mm256_mul_ps(x, x);
    __m256 p = _mm256_set1_ps(-5.70498872745e-3f);
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(2.06390887954e-2f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-5.37397155531e-2f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.33314422036e-1f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-3.33332819422e-1f));
    __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), x, x);
    /* otherwise 1 - 2/(exp(2|x|)+1) with the sign of x */
    __m256 e = v_exp(_mm256_add_ps(ax, ax));
    __m256 big = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
    big = _mm256_or_ps(big, _mm256_and_ps(sign, x));
    return _mm256_blendv_ps(big, small, _mm256_cmp_ps(ax, _mm256_set1_ps(0.625f), _CMP_LT_OQ));
}

AVX2 static void cell_fwd_avx2(float *g, float *c, float *h, const float *c_prev, int H)
{
    int j = 0;
    for (; j + 8 <= H; j += 8) {
        __m256 gi = v_sigmoid(_mm256_loadu_ps(g + j));
        __m256 gf = v_sigmoid(_mm256_loadu_ps(g + H + j));
        __m256 gg = v_tanh(_mm256_loadu_ps(g + 2 * H + j));
        __m256 go = v_sigmoid(_mm256_loadu_ps(g + 3 * H + j));
        _mm256_storeu_ps(g + j, gi);
        _mm256_storeu_ps(g + H + j, gf);
        _mm256_storeu_ps(g + 2 * H + j, gg);
        _mm256_storeu_ps(g + 3 * H + j, go);
        __m256 cn = _mm256_add_ps(_mm256_mul_ps(gf, _mm256_loadu_ps(c_prev + j)),
                                  _mm256_mul_ps(gi, gg));
        _mm256_storeu_ps(c + j, cn);
        _mm256_storeu_ps(h + j, _mm256_mul_ps(go, v_tanh(cn)));
    }
    if (j < H) { /* tail: the scalar kernel on the rest of the row, gates strided by H */
        for (; j < H; j++) {
            float gi = sigmoidf(g[j]), gf = sigmoidf(g[H + j]);
            float gg = tanhf(g[2 * H + j]), go = sigmoidf(g[3 * H + j]);
            g[j] = gi, g[H + j] = gf, g[2 * H + j] = gg, g[3 * H + j] = go;
            float cn = gf * c_prev[j] + gi * gg;
            c[j] = cn;
            h[j] = go * tanhf(cn);
        }
    }
}

AVX2 static void cell_bwd_avx2(float *dg, float *dc, const float *dh, const float *g,
                               const float *c, const float *c_prev, int H)
{
    __m256 one = _mm256_set1_ps(1.0f);
    int j = 0;
    for (; j + 8 <= H; j += 8) {
        __m256 gi = _mm256_loadu_ps(g + j), gf = _mm256_loadu_ps(g + H + j);
        __m256 gg = _mm256_loadu_ps(g + 2 * H + j), go = _mm256_loadu_ps(g + 3 * H + j);
        __m256 tc = v_tanh(_mm256_loadu_ps(c + j)), vdh = _mm256_loadu_ps(dh + j);
        __m256 dct = _mm256_add_ps(
            _mm256_loadu_ps(dc + j),
            _mm256_mul_ps(_mm256_mul_ps(vdh, go), _mm256_sub_ps(one, _mm256_mul_ps(tc, tc))));
        _mm256_storeu_ps(dg + j, _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(dct, gg), gi),
                                               _mm256_sub_ps(one, gi)));
        __m256 dcp = _mm256_mul_ps(dct, _mm256_loadu_ps(c_prev + j));
        _mm256_storeu_ps(dg + H + j,
                         _mm256_mul_ps(_mm256_mul_ps(dcp, gf), _mm256_sub_ps(one, gf)));
        _mm256_storeu_ps(dg + 2 * H + j, _mm256_mul_ps(_mm256_mul_ps(dct, gi),
                                                       _mm256_sub_ps(one, _mm256_mul_ps(gg, gg))));
        _mm256_storeu_ps(dg + 3 * H + j, _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(vdh, tc), go),
                                                       _mm256_sub_ps(one, go)));
        _mm256_storeu_ps(dc + j, _mm256_mul_ps(dct, gf));
    }
    for (; j < H; j++) {
        float gi = g[j], gf = g[H + j], gg = g[2 * H + j], go = g[3 * H + j];
        float tc = tanhf(c[j]);
        float dct = dc[j] + dh[j] * go * (1.0f - tc * tc);
        dg[j] = dct * gg * gi * (1.0f - gi);
        dg[H + j] = dct * c_prev[j] * gf * (1.0f - gf);
        dg[2 * H + j] = dct * gi * (1.0f - gg * gg);
        dg[3 * H + j] = dh[j] * tc * go * (1.0f - go);
        dc[j] = dct * gf;
    }
}

/* exp(x - mx) written back into x once; the sum accumulates in double (4 lanes x 2). */
AVX2 static float softmax_avx2(float *x, int V, int32_t target)
{
    float xt = x[target];
    __m256 vm = _mm256_set1_ps(x[0]);
    int k = 0;
    for (; k + 8 <= V; k += 8)
        vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + k));
    float lanes[8];
    _mm256_storeu_ps(lanes, vm);
    float mx = lanes[0];
    for (int q = 1; q < 8; q++)
        mx = lanes[q] > mx ? lanes[q] : mx;
    for (; k < V; k++)
        mx = x[k] > mx ? x[k] : mx;
    __m256 vmx = _mm256_set1_ps(mx);
    __m256d s0 = _mm256_setzero_pd(), s1 = s0;
    for (k = 0; k + 8 <= V; k += 8) {
        __m256 e = v_exp(_mm256_sub_ps(_mm256_loadu_ps(x + k), vmx));
        _mm256_storeu_ps(x + k, e);
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    double part[4];
    _mm256_storeu_pd(part, _mm256_add_pd(s0, s1));
    double s = part[0] + part[1] + part[2] + part[3];
    for (; k < V; k++) {
        x[k] = expf(x[k] - mx);
        s += x[k];
    }
    float inv = (float)(1.0 / s);
    __m256 vinv = _mm256_set1_ps(inv);
    for (k = 0; k + 8 <= V; k += 8)
        _mm256_storeu_ps(x + k, _mm256_mul_ps(_mm256_loadu_ps(x + k), vinv));
    for (; k < V; k++)
        x[k] *= inv;
    return (float)(log(s) + mx - xt);
}

static const nn_ew_kernels avx2_set = {cell_fwd_avx2, cell_bwd_avx2, softmax_avx2};
#endif

const nn_ew_kernels *nn_ew_kernels_scalar(void) { return &scalar_set; }

const nn_ew_kernels *nn_ew_kernels_get(void)
{
#if HAVE_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return &avx2_set;
#endif
    return &scalar_set;
}
