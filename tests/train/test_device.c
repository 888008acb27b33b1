/* test_device: the CPU thread default from the cgroup CPU quota (v2 cpu.max, v1
 * cpu.cfs_quota_us / cpu.cfs_period_us) and the host memory a run may use (MemAvailable and the
 * cgroup memory limit), on fake cgroup folders; --device values. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "device.h"
#include "err.h"
#include "test.h"

static char root[64];

static void put(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", root, name);
    char *slash = strrchr(path, '/');
    *slash = 0;
    mkdir(path, 0700);
    *slash = '/';
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void clear(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'/*", root);
    CHECK_EQ_INT(0, system(cmd));
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/kubefit-cgroup-XXXXXX");
    CHECK(mkdtemp(root) != NULL);
    int q = -1;

    /* no cgroup files: every online core */
    CHECK_EQ_INT(16, device_default_threads(root, 16, &q));
    CHECK_EQ_INT(0, q);
    /* v2 */
    put("cpu.max", "max 100000\n");
    CHECK_EQ_INT(16, device_default_threads(root, 16, &q));
    CHECK_EQ_INT(0, q);
    put("cpu.max", "200000 100000\n");
    CHECK_EQ_INT(2, device_default_threads(root, 16, &q));
    CHECK_EQ_INT(1, q);
    put("cpu.max", "150000 100000\n"); /* 1.5 CPUs: rounded up */
    CHECK_EQ_INT(2, device_default_threads(root, 16, NULL));
    put("cpu.max", "50000 100000\n"); /* half a CPU: at least one thread */
    CHECK_EQ_INT(1, device_default_threads(root, 16, NULL));
    put("cpu.max", "6400000 100000\n"); /* 64 CPUs on a 16-core machine: the cores */
    CHECK_EQ_INT(16, device_default_threads(root, 16, NULL));
    put("cpu.max", "garbage\n");
    CHECK_EQ_INT(8, device_default_threads(root, 8, NULL));
    clear();
    /* v1, cpu/ and cpu,cpuacct/ */
    put("cpu/cpu.cfs_quota_us", "-1\n");
    put("cpu/cpu.cfs_period_us", "100000\n");
    CHECK_EQ_INT(4, device_default_threads(root, 4, &q));
    CHECK_EQ_INT(0, q);
    put("cpu/cpu.cfs_quota_us", "250000\n");
    CHECK_EQ_INT(3, device_default_threads(root, 4, &q));
    CHECK_EQ_INT(1, q);
    clear();
    put("cpu,cpuacct/cpu.cfs_quota_us", "100000\n");
    put("cpu,cpuacct/cpu.cfs_period_us", "50000\n");
    CHECK_EQ_INT(2, device_default_threads(root, 4, NULL));
    clear();

    /* memory: MemAvailable, a cgroup v2 limit minus usage, whichever is smaller */
    char meminfo[128];
    snprintf(meminfo, sizeof meminfo, "%s/meminfo", root);
    put("meminfo", "MemTotal:       32000000 kB\nMemFree:  1000 kB\nMemAvailable:   20000000 kB\n");
    CHECK_EQ_INT(20000000ll * 1024, (long long)device_host_available(root, meminfo));
    put("memory.max", "max\n");
    CHECK_EQ_INT(20000000ll * 1024, (long long)device_host_available(root, meminfo));
    put("memory.max", "4294967296\n");
    put("memory.current", "1073741824\n");
    CHECK_EQ_INT(3221225472ll, (long long)device_host_available(root, meminfo));
    put("memory.current", "5000000000\n"); /* over the limit (page cache): nothing left */
    CHECK_EQ_INT(0, (long long)device_host_available(root, meminfo));
    /* the inactive page cache is reclaimable: not counted as used */
    put("memory.stat", "anon 1000\nfile 4000000000\nactive_file 5\ninactive_file 3000000000\n");
    CHECK_EQ_INT(4294967296ll - 2000000000ll, (long long)device_host_available(root, meminfo));
    clear();
    put("meminfo", "MemAvailable:   20000000 kB\n");
    put("memory/memory.limit_in_bytes", "9223372036854771712\n"); /* v1 without a limit */
    put("memory/memory.usage_in_bytes", "1000\n");
    CHECK_EQ_INT(20000000ll * 1024, (long long)device_host_available(root, meminfo));
    put("memory/memory.limit_in_bytes", "2147483648\n");
    CHECK_EQ_INT(2147482648ll, (long long)device_host_available(root, meminfo));
    put("memory/memory.stat", "cache 900\ninactive_file 1\ntotal_inactive_file 600\n");
    CHECK_EQ_INT(2147483248ll, (long long)device_host_available(root, meminfo));
    clear();
    CHECK_EQ_INT(0, (long long)device_host_available(root, meminfo)); /* nothing known */

    /* --device */
    nn_backend *be = NULL;
    CHECK_EQ_INT(KF_EINVAL, device_backend_new(&be, "tpu", "fp32", 1));
    CHECK(strstr(err_msg(), "--device tpu: expected auto, cpu or cuda") != NULL);
    CHECK_EQ_INT(0, device_backend_new(&be, "cpu", "fp32", 3));
    CHECK(be && be->threads == 3 && !device_is_gpu(be));
    be->destroy(be);
#ifndef KUBEFIT_HAVE_CUDA
    be = NULL;
    CHECK_EQ_INT(KF_EUNSUPPORTED, device_backend_new(&be, "cuda", "fp32", 1));
    CHECK(be == NULL && strstr(err_msg(), "--device cuda: this trainer was built without CUDA") != NULL);
#else
    be = NULL;
    int rc = device_backend_new(&be, "cuda", "fp32", 1); /* a GPU, or a retryable error saying why */
    CHECK(rc == 0 || (rc == KF_ERETRY && be == NULL && strstr(err_msg(), "--device cuda: no usable GPU: ")));
    if (be) {
        CHECK(device_is_gpu(be));
        be->destroy(be);
    }
#endif
    setenv("KUBEFIT_CGROUP_ROOT", root, 1);
    put("cpu.max", "100000 100000\n");
    CHECK_EQ_INT(0, device_backend_new(&be, "cpu", "fp32", 0)); /* --threads 0: the quota */
    CHECK(be && be->threads == 1);
    be->destroy(be);
    clear();
    rmdir(root);
    return test_done();
}
