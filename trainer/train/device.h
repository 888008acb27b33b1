/* device: the compute backend of a run from --device and --precision.
 *   nn_backend *be; rc = device_backend_new(&be, "auto", "fp32", 0);  ...; be->destroy(be);
 *   cpu   the CPU backend
 *   cuda  the CUDA backend on GPU 0; when this build has none or no GPU answers: the CPU backend
 *         after ONE warning log line naming the reason
 *   auto  CUDA when built with it and a GPU answers, else the CPU after ONE info line
 * precision (fp32 | tf32 | bf16) is the GPU's matrix-product math mode; on the CPU a value other
 * than fp32 is a warning (the CPU computes in fp32). */
#ifndef KUBEFIT_DEVICE_H
#define KUBEFIT_DEVICE_H

#include "backend.h"

/* device/precision NULL: "auto"/"fp32". threads: CPU worker threads (<= 0: all cores).
 * Returns 0, KF_EINVAL (an unknown device or precision, named in err_msg()) or KF_ENOMEM.
 * Caller frees with (*out)->destroy(*out). */
int device_backend_new(nn_backend **out, const char *device, const char *precision, int threads);

/* The matrix-product precision be actually uses: "fp32" on the CPU. */
const char *device_precision(nn_backend *be);

#endif
