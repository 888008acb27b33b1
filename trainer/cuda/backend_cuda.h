/* backend_cuda: the nn_backend table (trainer/nn/backend.h) on one NVIDIA GPU - cuBLAS for the
 * matrix products, own kernels (kernels_*.cu) for the rest, everything queued on one stream.
 *   nn_backend *be; if (nn_backend_cuda_new(&be, 0) < 0) -> CPU (err_msg() says why)
 *   nn_model_new(&m, &cfg, be); ...; be->destroy(be);
 * Semantics are those of the CPU backend (backend_cpu.c), which the gpu tests compare against.
 * alloc is stream-ordered (cudaMallocAsync from the device's default pool, whose release
 * threshold is raised so freed blocks are reused; destroy trims it), zeroed, 256-byte aligned.
 * upload/download/sum/sumsq/sumsq_tdiff wait for the stream, nothing else does. CUDA errors
 * inside ops abort after logging file:line (cuda_check.h). */
#ifndef KUBEFIT_CUDA_BACKEND_CUDA_H
#define KUBEFIT_CUDA_BACKEND_CUDA_H

#include <stdbool.h>

#include "backend.h"
#include "cuda_ctx.h"
#include "cuda_matmul.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Creates the backend on CUDA device `device`. Returns 0, KF_EUNSUPPORTED (no driver or GPU),
 * KF_EINVAL (no such device), KF_EIO (CUDA refused) or KF_ENOMEM; *out is NULL on failure. */
int nn_backend_cuda_new(nn_backend **out, int device);

/* Math mode of the matrix products (cuda_matmul.h): NN_MATH_FP32 (the default, which the
 * float32 tolerances of the tests assume), NN_MATH_TF32 or NN_MATH_BF16 (tensor cores, operands
 * rounded, FP32 accumulation and storage; everything else stays FP32). No-op when be is not a
 * CUDA backend. */
void nn_backend_cuda_set_math(nn_backend *be, nn_math math);
/* The current mode (NN_MATH_FP32 when be is not a CUDA backend). */
nn_math nn_backend_cuda_math(nn_backend *be);
/* Same as set_math(be, on ? NN_MATH_TF32 : NN_MATH_FP32). */
void nn_backend_cuda_set_tf32(nn_backend *be, bool on);

/* The device, stream and cuBLAS handle behind a CUDA backend (for cuda_optim and tests), or
 * NULL when be is not one. */
cuda_ctx *nn_backend_cuda_ctx(nn_backend *be);

/* Waits until every op queued so far has finished (timing). */
void nn_backend_cuda_sync(nn_backend *be);

#ifdef __cplusplus
}
#endif

#endif
