/* cuda_profile: a timing wrapper around a CUDA nn_backend, for finding where a step's time goes.
 * Every table op the LM uses is bracketed by two CUDA events on the backend's stream and summed
 * per tag (the op's name; matrix products also by shape), without synchronising in between.
 *   nn_backend *p; cuda_profile_new(&p, cuda_be);  build the model on p; run steps;
 *   cuda_profile_reset(p); run the steps to measure; cuda_profile_report(p, stdout, 30);
 *   p->destroy(p) (the wrapped backend is not destroyed).
 * Ops outside the LM's set (head table, optimizer) are not wrapped: build only the LM on it. */
#ifndef KUBEFIT_CUDA_PROFILE_H
#define KUBEFIT_CUDA_PROFILE_H

#include <stdio.h>

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* inner must be a CUDA backend (nn_backend_cuda_new). Returns 0, KF_EINVAL or KF_ENOMEM. */
int cuda_profile_new(nn_backend **out, nn_backend *inner);
/* Forgets what was recorded so far (waits for the stream). */
void cuda_profile_reset(nn_backend *p);
/* Waits for the stream and prints the `top` costliest tags: total ms, calls, share of the
 * recorded time and, for products, TFLOP/s. One JSON line per tag after a header line. */
void cuda_profile_report(nn_backend *p, FILE *f, int top);

#ifdef __cplusplus
}
#endif

#endif
