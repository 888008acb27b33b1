/* cuda_ctx: one GPU, the stream all of its work is queued on, and a cuBLAS handle bound to it.
 *   int n; if (cuda_device_count(&n) < 0 || n == 0) -> CPU path (err_msg() says why)
 *   cuda_ctx ctx; rc = cuda_ctx_init(&ctx, 0); ...; cuda_ctx_dispose(&ctx);
 * cuBLAS keeps its default math mode: true FP32, no TF32, so results match the CPU reference
 * within float32 tolerance. */
#ifndef KUBEFIT_CUDA_CTX_H
#define KUBEFIT_CUDA_CTX_H

#include <stdbool.h>
#include <stddef.h>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cuda_ctx {
    int device;
    int cc_major, cc_minor;  /* compute capability, 9.0 on H100/H200 */
    size_t memory;           /* device memory in bytes */
    char name[256];          /* as cudaDeviceProp.name reports it */
    cudaStream_t stream;
    cublasHandle_t blas;
    float *scratch;          /* op scratch, scratch_floats long: split-K slices (cuda_splitk.h),
                                reduction partials; an op is done with it before the next op
                                on the stream starts */
    size_t scratch_floats;
    bool splitk;             /* split-K on (default; KUBEFIT_CUDA_SPLITK=0 turns it off) */
} cuda_ctx;

/* Stores the number of CUDA devices in *out. Returns 0, or KF_EUNSUPPORTED with *out = 0 when
 * there is no driver, no device or the driver is too old (err_msg() has CUDA's reason). */
int cuda_device_count(int *out);

/* Makes device current and creates the stream and cuBLAS handle. KF_EINVAL for an index outside
 * [0, cuda_device_count), KF_EIO when CUDA refuses; ctx is left zeroed then. */
int cuda_ctx_init(cuda_ctx *ctx, int device);

/* Releases what cuda_ctx_init created; accepts NULL or a zeroed ctx. */
void cuda_ctx_dispose(cuda_ctx *ctx);

#ifdef __cplusplus
}
#endif

#endif
