/* device: --device / --precision -> an nn_backend. See device.h. */
#include "device.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#ifdef KUBEFIT_HAVE_CUDA
#include "backend_cuda.h"
#endif

static int check_precision(const char *p)
{
    if (strcmp(p, "fp32") != 0 && strcmp(p, "tf32") != 0 && strcmp(p, "bf16") != 0)
        return err_set(KF_EINVAL, "--precision %s: expected fp32, tf32 or bf16", p);
    return 0;
}

#ifdef KUBEFIT_HAVE_CUDA
/* The CUDA backend on GPU 0 in the given math mode; on failure err_msg() says why. */
static int cuda_backend_new(nn_backend **out, const char *precision)
{
    nn_math math = NN_MATH_FP32;
    int rc = nn_math_parse(&math, precision);
    if (rc < 0 || (rc = nn_backend_cuda_new(out, 0)) < 0)
        return rc;
    nn_backend_cuda_set_math(*out, math);
    cuda_ctx *ctx = nn_backend_cuda_ctx(*out);
    log_info("device", "training on the GPU", "{s:s,s:s,s:i,s:i,s:s}", "device", "cuda", "gpu", ctx->name, "sm",
             ctx->cc_major * 10 + ctx->cc_minor, "memoryMiB", (int)(ctx->memory >> 20), "precision",
             nn_math_name(math));
    return 0;
}
#endif

int device_backend_new(nn_backend **out, const char *device, const char *precision, int threads)
{
    const char *dev = device ? device : "auto", *prec = precision ? precision : "fp32";
    const int want_cuda = strcmp(dev, "cuda") == 0;
    int rc;
    *out = NULL;
    if (!want_cuda && strcmp(dev, "cpu") != 0 && strcmp(dev, "auto") != 0)
        return err_set(KF_EINVAL, "--device %s: expected auto, cpu or cuda", dev);
    if ((rc = check_precision(prec)) < 0)
        return rc;
    if (strcmp(dev, "cpu") != 0) {
        char *why = NULL;
#ifdef KUBEFIT_HAVE_CUDA
        if ((rc = cuda_backend_new(out, prec)) == 0)
            return 0;
        if (rc == KF_ENOMEM)
            return rc;
        why = strdup(err_msg());
#else
        why = strdup("this trainer was built without the CUDA backend");
#endif
        err_clear();
        if (want_cuda)
            log_warn("device", "--device cuda is not possible here: falling back to the CPU", "{s:s,s:s}", "device",
                     "cpu", "reason", why ? why : "out of memory");
        else
            log_info("device", "no usable GPU: training on the CPU", "{s:s,s:s}", "device", "cpu", "reason",
                     why ? why : "out of memory");
        free(why);
    }
    if (strcmp(prec, "fp32") != 0)
        log_warn("device", "--precision applies to the GPU only: the CPU computes in fp32", "{s:s}", "precision",
                 prec);
    return nn_backend_cpu_new(out, threads);
}

const char *device_precision(nn_backend *be)
{
#ifdef KUBEFIT_HAVE_CUDA
    if (nn_backend_cuda_ctx(be))
        return nn_math_name(nn_backend_cuda_math(be));
#endif
    (void)be;
    return "fp32";
}
