/* cuda_check: every CUDA runtime and cuBLAS call of the backend goes through one of these.
 *   CUDA_CHECK(cudaMalloc(&p, n));       aborts on failure, after logging file:line, the call and
 *   CUBLAS_CHECK(cublasSgemm(...));      the library's error name and message (STYLE.md: the
 *   CUDA_CHECK(cudaGetLastError());      trainer may abort on a CUDA error, after saying where)
 *   rc = CUDA_TRY(cudaSetDevice(d));     returns 0 or KF_EIO with the same text in err_msg(),
 *                                        for failures a caller handles (no driver, bad device)
 * Usable from C and CUDA C++ sources. */
#ifndef KUBEFIT_CUDA_CHECK_H
#define KUBEFIT_CUDA_CHECK_H

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif
#include "err.h"
#include "log.h"
#ifdef __cplusplus
}
#endif

static inline void cuda_check_(cudaError_t rc, const char *call, const char *file, int line)
{
    if (rc == cudaSuccess)
        return;
    log_error("cuda", "CUDA call failed", "{s:s,s:i,s:s,s:s,s:s}", "file", file, "line", line,
              "call", call, "error", cudaGetErrorName(rc), "message", cudaGetErrorString(rc));
    abort();
}

static inline void cublas_check_(cublasStatus_t rc, const char *call, const char *file, int line)
{
    if (rc == CUBLAS_STATUS_SUCCESS)
        return;
    log_error("cuda", "cuBLAS call failed", "{s:s,s:i,s:s,s:s,s:s}", "file", file, "line", line,
              "call", call, "error", cublasGetStatusName(rc), "message", cublasGetStatusString(rc));
    abort();
}

static inline int cuda_try_(cudaError_t rc, const char *call, const char *file, int line)
{
    if (rc == cudaSuccess)
        return 0;
    return err_set(KF_EIO, "%s:%d: %s: %s (%s)", file, line, call, cudaGetErrorString(rc),
                   cudaGetErrorName(rc));
}

#define CUDA_CHECK(call) cuda_check_((call), #call, __FILE__, __LINE__)
#define CUBLAS_CHECK(call) cublas_check_((call), #call, __FILE__, __LINE__)
#define CUDA_TRY(call) cuda_try_((call), #call, __FILE__, __LINE__)

#endif
