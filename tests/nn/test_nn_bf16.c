/* test_nn_bf16: the CPU backend's bf16 products (nn_backend_cpu_set_bf16: operands rounded to
 * bfloat16, sums in float32, on AMX) through a whole LM training step, against the same backend
 * in float32 - the bound and the comparison of the GPU's bf16 mode (tests/gpu-backend/
 * test_gpu_math.h): every activation, probability and gradient within
 *   |bf16 - fp32| <= 32 u (|fp32| + max|fp32| over the tensor), u = 2^-8,
 * the cross-entropy within 32 u relative, and the deviation visible (> 0.05 u somewhere: the
 * mode is on). Skipped (77) where the CPU or kernel offers no AMX-BF16. Label unit. */
#include "gpu-backend/test_gpu_math.h"

int main(void)
{
    nn_backend *ref = NULL, *bf = NULL;
    if (nn_backend_cpu_new(&ref, 2) < 0 || nn_backend_cpu_new(&bf, 2) < 0) {
        fprintf(stderr, "cpu backend: %s\n", err_msg());
        return 1;
    }
    int rc = nn_backend_cpu_set_bf16(bf, true);
    if (rc == KF_EUNSUPPORTED) {
        fprintf(stderr, "test_nn_bf16: skipped: %s\n", err_msg());
        ref->destroy(ref), bf->destroy(bf);
        return 77;
    }
    CHECK_EQ_INT(0, rc);
    CHECK_EQ_STR("amx-bf16", nn_backend_cpu_gemm(bf));
    CHECK_EQ_STR(nn_backend_cpu_gemm(ref), nn_backend_cpu_gemm(ref)); /* fp32 kernels */
    math_stats st;
    math_lm_step(&st, ref, bf, 0x1p-8, true);
    fprintf(stderr, "test_nn_bf16: worst %.3g u (%s), bound %.0f u\n", st.worst,
            st.where ? st.where : "-", MATH_GROWTH);
    ref->destroy(ref);
    bf->destroy(bf);
    return test_done();
}
