/* cuda_ctx: device discovery and the per-device stream + cuBLAS handle. */
#include "cuda_ctx.h"

#include "cuda_check.h"
#include "cuda_splitk.h"

#include <stdlib.h>

#include <string.h>

extern "C" int cuda_device_count(int *out)
{
    int n = 0;
    *out = 0;
    cudaError_t rc = cudaGetDeviceCount(&n);
    if (rc != cudaSuccess) {
        (void)cudaGetLastError(); /* clear the sticky-free error so later calls start clean */
        return err_set(KF_EUNSUPPORTED, "no usable CUDA device: cudaGetDeviceCount: %s (%s)",
                       cudaGetErrorString(rc), cudaGetErrorName(rc));
    }
    if (n == 0)
        return err_set(KF_EUNSUPPORTED, "no usable CUDA device: cudaGetDeviceCount found none");
    *out = n;
    return 0;
}

extern "C" int cuda_ctx_init(cuda_ctx *ctx, int device)
{
    int rc, n = 0;
    cudaDeviceProp prop;
    memset(ctx, 0, sizeof *ctx);
    if ((rc = cuda_device_count(&n)) < 0)
        goto done;
    if (device < 0 || device >= n) {
        rc = err_set(KF_EINVAL, "CUDA device %d does not exist (this machine has %d)", device, n);
        goto done;
    }
    if ((rc = CUDA_TRY(cudaSetDevice(device))) < 0 ||
        (rc = CUDA_TRY(cudaGetDeviceProperties(&prop, device))) < 0 ||
        (rc = CUDA_TRY(cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking))) < 0)
        goto done;
    if (cublasCreate(&ctx->blas) != CUBLAS_STATUS_SUCCESS) {
        rc = err_set(KF_EIO, "cublasCreate failed on CUDA device %d", device);
        goto done;
    }
    CUBLAS_CHECK(cublasSetStream(ctx->blas, ctx->stream));
    if ((rc = CUDA_TRY(cudaMalloc((void **)&ctx->scratch,
                                  CUDA_SPLITK_SCRATCH_FLOATS * sizeof(float)))) < 0)
        goto done;
    ctx->scratch_floats = CUDA_SPLITK_SCRATCH_FLOATS;
    {
        const char *env = getenv("KUBEFIT_CUDA_SPLITK");
        ctx->splitk = !(env && !strcmp(env, "0"));
    }
    ctx->device = device;
    ctx->cc_major = prop.major;
    ctx->cc_minor = prop.minor;
    ctx->memory = prop.totalGlobalMem;
    memcpy(ctx->name, prop.name, sizeof ctx->name - 1);
    ctx->name[sizeof ctx->name - 1] = '\0';
    log_info("cuda", "device ready", "{s:i,s:s,s:i,s:i,s:f}", "device", device, "name", ctx->name,
             "ccMajor", prop.major, "ccMinor", prop.minor, "memoryGiB",
             (double)ctx->memory / (1024.0 * 1024.0 * 1024.0));
    rc = 0;
done:
    if (rc < 0)
        cuda_ctx_dispose(ctx);
    return rc;
}

extern "C" void cuda_ctx_dispose(cuda_ctx *ctx)
{
    if (!ctx)
        return;
    if (ctx->blas)
        cublasDestroy(ctx->blas);
    if (ctx->stream)
        cudaStreamSynchronize(ctx->stream);
    if (ctx->scratch)
        cudaFree(ctx->scratch);
    if (ctx->stream)
        cudaStreamDestroy(ctx->stream);
    memset(ctx, 0, sizeof *ctx);
}
