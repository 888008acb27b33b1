/* device: the compute backend of a run from --device, --precision and --threads, and the
 * memory it has.
 *   nn_backend *be; rc = device_backend_new(&be, "auto", "fp32", 0);  ...; be->destroy(be);
 *   cpu   the CPU backend
 *   cuda  the CUDA backend on GPU 0. No usable GPU is an error, never a silent CPU run:
 *         KF_ERETRY (exit 3: retried) when this build has CUDA but no device answers,
 *         KF_EUNSUPPORTED (exit 2) when this build has no CUDA backend
 *   auto  CUDA when built with it and a GPU answers, else the CPU after ONE info line
 * precision (fp32 | tf32 | bf16) is the GPU's matrix-product math mode; on the CPU a value other
 * than fp32 is a warning (the CPU computes in fp32).
 * CPU threads: --threads N, or (0) the cgroup CPU quota when one is set, else every online core.
 * The cgroup files are read under $KUBEFIT_CGROUP_ROOT, default /sys/fs/cgroup. */
#ifndef KUBEFIT_DEVICE_H
#define KUBEFIT_DEVICE_H

#include <stdint.h>

#include "backend.h"

/* device/precision NULL: "auto"/"fp32". threads: CPU worker threads (<= 0: device_default_threads).
 * Returns 0, KF_EINVAL (an unknown device or precision, named in err_msg()), KF_ERETRY or
 * KF_EUNSUPPORTED (--device cuda, see above) or KF_ENOMEM. Caller frees with (*out)->destroy(*out). */
int device_backend_new(nn_backend **out, const char *device, const char *precision, int threads);

/* Threads for --threads 0: the CPU quota of the cgroup at cgroup_root - v2 cpu.max ("QUOTA
 * PERIOD"; "max" = none), else v1 cpu/cpu.cfs_quota_us and cpu.cfs_period_us (also under
 * cpu,cpuacct/) - rounded up, at least 1 and at most online; online when there is no quota.
 * *from_quota (may be NULL) = 1 when a quota decided. */
int device_default_threads(const char *cgroup_root, int online, int *from_quota);

/* $KUBEFIT_CGROUP_ROOT, else /sys/fs/cgroup. */
const char *device_cgroup_root(void);

/* Bytes the host can still give this process: MemAvailable of meminfo (NULL: /proc/meminfo) and
 * the cgroup's memory limit minus its usage less the inactive page cache (v2 memory.max /
 * memory.current / memory.stat inactive_file, v1 memory/memory.limit_in_bytes / usage_in_bytes /
 * memory.stat total_inactive_file), the smaller; 0 when neither is known. */
uint64_t device_host_available(const char *cgroup_root, const char *meminfo);

/* Bytes be's tensors can use: 95% of the GPU's memory, or device_host_available on the CPU. */
uint64_t device_memory_available(nn_backend *be);

/* 1 when be is the CUDA backend. */
int device_is_gpu(nn_backend *be);

/* The matrix-product precision be actually uses: "fp32" on the CPU. */
const char *device_precision(nn_backend *be);

#endif
