/* test_gpu_math: the LM step on the CUDA backend in TF32 and in BF16 (nn_backend_cuda_set_math)
 * against the CPU backend in FP32, with the bound of test_gpu_math.h:
 *   |gpu - cpu| <= 32 u (|cpu| + max|cpu|), u = 2^-11 (TF32) or 2^-8 (BF16),
 * on activations, probabilities and every gradient of two training chunks; loss finite; NaN
 * never passes; each mode must visibly differ from FP32 (else it is not on). Then FP32 again
 * must meet the FP32 rule of gpu_pair.h, 1e-5 of the scale (the mode switches back).
 * test_gpu_math_emu checks the same bounds on the CPU with emulated rounding. Skips (77) without
 * a GPU. */
#include "gpu_pair.h"
#include "test_gpu_math.h"

int main(void)
{
    gpu_pair P;
    math_stats st;
    nn_math m = NN_MATH_FP32;
    CHECK_EQ_INT(KF_EINVAL, nn_math_parse(&m, "fp16"));
    CHECK_EQ_INT(0, nn_math_parse(&m, "bf16"));
    CHECK_EQ_INT(NN_MATH_BF16, m);
    gpu_pair_init(&P);
    static const nn_math modes[] = {NN_MATH_TF32, NN_MATH_BF16};
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++) {
        double u = nn_math_unit_roundoff(modes[i]);
        nn_backend_cuda_set_math(P.gpu, modes[i]);
        CHECK_EQ_INT(modes[i], nn_backend_cuda_math(P.gpu));
        fprintf(stderr, "%s on %s, u = %g\n", nn_math_name(modes[i]),
                nn_backend_cuda_ctx(P.gpu)->name, u);
        math_lm_step(&st, P.cpu, P.gpu, u, true);
        fprintf(stderr, "%s: measured growth %.3g u (%s), bound %.0f u\n", nn_math_name(modes[i]),
                st.worst, st.where ? st.where : "-", MATH_GROWTH);
    }
    /* back to FP32; "u" chosen so that the bound MATH_GROWTH u is gpu_pair.h's 1e-5 */
    nn_backend_cuda_set_math(P.gpu, NN_MATH_FP32);
    CHECK_EQ_INT(NN_MATH_FP32, nn_backend_cuda_math(P.gpu));
    fprintf(stderr, "fp32 again, bound %g of the scale\n", GPU_RTOL);
    math_lm_step(&st, P.cpu, P.gpu, GPU_RTOL / MATH_GROWTH, false);
    gpu_pair_dispose(&P);
    return test_done();
}
