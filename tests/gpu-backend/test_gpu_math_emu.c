/* test_gpu_math_emu: the TF32/BF16 bounds of test_gpu_math checked without a GPU. A copy of the
 * CPU backend's table whose sgemm first rounds both operands to TF32 (10 mantissa bits) or
 * bfloat16 (7 bits) and then multiplies in FP32 - what the tensor cores do with
 * CUBLAS_COMPUTE_32F_FAST_TF32 / _16BF - runs the LM step of test_gpu_math.h against the plain
 * CPU backend. Rounding is by truncation (toward zero), the worst case (error < 2u per operand;
 * rounding to nearest, < u), so the factor measured here bounds what the GPU should show.
 * Also checks that the measured factor stays at most half the bound (margin for the GPU's
 * different accumulation order and rounding pattern) and the rounding helper on known values.
 * Label unit: runs in every build. */
#include <stdbool.h>
#include <string.h>

#include "test_gpu_math.h"

static nn_backend *cpu;    /* the real CPU backend (owns ctx) */
static nn_backend emu;     /* its table with sgemm rounding the operands */
static int drop_bits;      /* mantissa bits removed: 13 (TF32) or 16 (BF16) */

/* x with its low `bits` mantissa bits cleared (truncation toward zero); inf/NaN unchanged. */
static float truncate_mantissa(float x, int bits)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7f800000u) != 0x7f800000u)
        u &= ~((1u << bits) - 1u);
    memcpy(&x, &u, sizeof x);
    return x;
}

/* A rounded copy of the rows x cols operand with leading dimension ld (host memory). */
static float *rounded(const float *a, int rows, int cols, int ld)
{
    size_t n = rows > 0 && cols > 0 ? (size_t)(rows - 1) * ld + cols : 0;
    float *r = malloc((n ? n : 1) * sizeof *r);
    if (!r) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        r[i] = truncate_mantissa(a[i], drop_bits);
    return r;
}

static void emu_sgemm(nn_backend *be, bool ta, bool tb, int M, int N, int K, float alpha,
                      const float *A, int lda, const float *B, int ldb, float beta, float *C,
                      int ldc)
{
    (void)be;
    float *ar = rounded(A, ta ? K : M, ta ? M : K, lda);
    float *br = rounded(B, tb ? N : K, tb ? K : N, ldb);
    cpu->sgemm(cpu, ta, tb, M, N, K, alpha, ar, lda, br, ldb, beta, C, ldc);
    free(ar);
    free(br);
}

static void run_mode(const char *name, int bits, double u)
{
    math_stats st;
    drop_bits = bits;
    fprintf(stderr, "%s emulated (truncating %d mantissa bits), u = %g\n", name, bits, u);
    math_lm_step(&st, cpu, &emu, u, true);
    fprintf(stderr, "%s: measured growth %.3g u, bound %.0f u\n", name, st.worst, MATH_GROWTH);
    CHECK(st.worst <= MATH_GROWTH / 2);
}

int main(void)
{
    /* the helper itself: 1 + 2^-9 keeps its bit in TF32 and loses it in BF16 */
    CHECK_EQ_INT(1, truncate_mantissa(1.0f + 0x1p-9f, 13) == 1.0f + 0x1p-9f);
    CHECK_EQ_INT(1, truncate_mantissa(1.0f + 0x1p-9f, 16) == 1.0f);
    CHECK_EQ_INT(1, truncate_mantissa(-3.0f - 0x1p-20f, 13) == -3.0f);
    if (nn_backend_cpu_new(&cpu, 2) < 0) {
        fprintf(stderr, "cpu backend: %s\n", err_msg());
        return 1;
    }
    emu = *cpu;
    emu.sgemm = emu_sgemm;
    /* every product through sgemm (the packed recurrent path would skip the rounding) */
    emu.packed_floats = NULL;
    emu.pack_b = NULL;
    emu.sgemm_packed = NULL;
    run_mode("TF32", 13, 0x1p-11);
    run_mode("BF16", 16, 0x1p-8);
    cpu->destroy(cpu);
    return test_done();
}
