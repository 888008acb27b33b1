/* device: --device / --precision / --threads -> an nn_backend, and what memory it has. See
 * device.h. */
#include "device.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "fileio.h"
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

const char *device_cgroup_root(void)
{
    const char *r = getenv("KUBEFIT_CGROUP_ROOT");
    return r && *r ? r : "/sys/fs/cgroup";
}

/* The text of root/name (at most 1 MiB); NULL when unreadable (absent: that cgroup version or
 * controller is not there; nothing to report). */
static char *read_text(const char *root, const char *name)
{
    char *path = NULL, *buf = NULL;
    size_t len = 0;
    if (asprintf(&path, "%s/%s", root, name) < 0)
        return NULL;
    if (file_read_max(&buf, &len, path, 1 << 20) < 0)
        err_clear();
    free(path);
    return buf;
}

/* The first line of root/name without its line end; NULL when unreadable. */
static char *read_line(const char *root, const char *name)
{
    char *buf = read_text(root, name);
    if (buf)
        buf[strcspn(buf, "\r\n")] = 0;
    return buf;
}

/* A non-negative integer file (v1 counters); -1 when absent or not a number ("max", "-1"). */
static int64_t read_int(const char *root, const char *name)
{
    char *s = read_line(root, name), *end;
    int64_t v = -1;
    if (s) {
        errno = 0;
        long long x = strtoll(s, &end, 10);
        if (!errno && end != s && !*end && x >= 0)
            v = x;
    }
    free(s);
    return v;
}

int device_default_threads(const char *cgroup_root, int online, int *from_quota)
{
    int64_t quota = -1, period = -1;
    if (online < 1)
        online = 1;
    if (from_quota)
        *from_quota = 0;
    char *max = read_line(cgroup_root, "cpu.max"); /* v2: "QUOTA PERIOD" or "max PERIOD" */
    if (max) {
        long long q, p;
        if (sscanf(max, "%lld %lld", &q, &p) == 2 && q > 0 && p > 0)
            quota = q, period = p;
        free(max);
    } else { /* v1: the cpu controller's folder, alone or joined with cpuacct */
        static const char *const dirs[] = {"cpu", "cpu,cpuacct", "cpuacct,cpu"};
        for (int i = 0; i < 3 && quota < 0; i++) {
            char q[64], p[64];
            snprintf(q, sizeof q, "%s/cpu.cfs_quota_us", dirs[i]);
            snprintf(p, sizeof p, "%s/cpu.cfs_period_us", dirs[i]);
            int64_t qv = read_int(cgroup_root, q), pv = read_int(cgroup_root, p);
            if (qv > 0 && pv > 0)
                quota = qv, period = pv;
        }
    }
    if (quota <= 0 || period <= 0)
        return online;
    if (from_quota)
        *from_quota = 1;
    int64_t n = (quota + period - 1) / period; /* 1.5 CPUs -> 2 threads */
    return n < 1 ? 1 : n > online ? online : (int)n;
}

uint64_t device_host_available(const char *cgroup_root, const char *meminfo)
{
    uint64_t avail = 0;
    char *text = NULL;
    size_t len = 0;
    if (file_read_max(&text, &len, meminfo ? meminfo : "/proc/meminfo", 1 << 20) == 0) {
        const char *p = strstr(text, "MemAvailable:");
        unsigned long long kb;
        if (p && sscanf(p + 13, "%llu", &kb) == 1)
            avail = (uint64_t)kb * 1024;
    } else {
        err_clear();
    }
    free(text);
    /* cgroup v2: memory.max / memory.current; v1: memory/memory.limit_in_bytes / usage_in_bytes
     * (v1 says "no limit" with a huge number, which the min below absorbs) */
    int64_t limit = read_int(cgroup_root, "memory.max"), used = read_int(cgroup_root, "memory.current");
    const char *stat = "memory.stat", *inactive = "inactive_file ";
    if (limit < 0) {
        limit = read_int(cgroup_root, "memory/memory.limit_in_bytes");
        used = read_int(cgroup_root, "memory/memory.usage_in_bytes");
        stat = "memory/memory.stat", inactive = "total_inactive_file ";
    }
    /* usage counts the page cache; its inactive part is reclaimed before the limit bites (the
     * kubelet's working set is the same difference) */
    char *st = limit >= 0 && used > 0 ? read_text(cgroup_root, stat) : NULL;
    for (const char *p = st; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        unsigned long long v;
        if (strncmp(p, inactive, strlen(inactive)) == 0 && sscanf(p + strlen(inactive), "%llu", &v) == 1) {
            used = (uint64_t)used > v ? used - (int64_t)v : 0;
            break;
        }
    }
    free(st);
    if (limit >= 0) {
        uint64_t u = used > 0 ? (uint64_t)used : 0, left = (uint64_t)limit > u ? (uint64_t)limit - u : 0;
        if (!avail || left < avail)
            avail = left;
    }
    return avail;
}

uint64_t device_memory_available(nn_backend *be)
{
#ifdef KUBEFIT_HAVE_CUDA
    cuda_ctx *ctx = nn_backend_cuda_ctx(be);
    if (ctx)
        return (uint64_t)ctx->memory / 20 * 19; /* the driver, cuBLAS and the pool keep some */
#endif
    (void)be;
    return device_host_available(device_cgroup_root(), NULL);
}

int device_is_gpu(nn_backend *be)
{
#ifdef KUBEFIT_HAVE_CUDA
    return nn_backend_cuda_ctx(be) != NULL;
#else
    (void)be;
    return 0;
#endif
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
#ifdef KUBEFIT_HAVE_CUDA
        if ((rc = cuda_backend_new(out, prec)) == 0)
            return 0;
        if (want_cuda) /* the GPU may come back (a driver restart, another node): retry */
            return err_wrap(rc == KF_ENOMEM ? rc : KF_ERETRY, "--device cuda: no usable GPU");
        char *why = strdup(err_msg());
#else
        if (want_cuda) /* the same image will never have one: do not retry */
            return err_set(KF_EUNSUPPORTED, "--device cuda: this trainer was built without CUDA (use --device cpu "
                                            "or auto, or an image built with CUDA)");
        char *why = strdup("this trainer was built without the CUDA backend");
#endif
        err_clear();
        log_info("device", "no usable GPU: training on the CPU", "{s:s,s:s}", "device", "cpu", "reason",
                 why ? why : "out of memory");
        free(why);
    }
    const char *source = "--threads";
    if (threads <= 0) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        int all = online > 0 ? (int)(online < 1024 ? online : 1024) : 1;
        int quota = 0;
        threads = device_default_threads(device_cgroup_root(), all, &quota);
        source = quota ? "cgroup CPU quota" : "online cores";
    }
    if ((rc = nn_backend_cpu_new(out, threads)) < 0)
        return rc;
    log_info("device", "CPU threads", "{s:i,s:s}", "threads", (*out)->threads, "from", source);
    /* bf16: the CPU's products in bfloat16 on AMX (float32 sums, weights and gradients), as on
     * the GPU; tf32 has no CPU counterpart. Either way a CPU without it computes in fp32. */
    if (strcmp(prec, "bf16") == 0 && nn_backend_cpu_set_bf16(*out, true) == 0)
        log_info("device", "CPU products in bf16 (AMX)", "{s:s,s:s}", "precision", "bf16", "gemm",
                 nn_backend_cpu_gemm(*out));
    else if (strcmp(prec, "fp32") != 0)
        log_warn("device", "the CPU computes in fp32", "{s:s,s:s}", "precision", prec, "reason",
                 strcmp(prec, "bf16") == 0 ? err_msg() : "tf32 is a GPU mode");
    err_clear();
    return 0;
}

const char *device_precision(nn_backend *be)
{
#ifdef KUBEFIT_HAVE_CUDA
    if (nn_backend_cuda_ctx(be))
        return nn_math_name(nn_backend_cuda_math(be));
#endif
    const char *gemm = nn_backend_cpu_gemm(be);
    return gemm && strcmp(gemm, "amx-bf16") == 0 ? "bf16" : "fp32";
}
