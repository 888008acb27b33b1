/* head_cuda: the classifier head's own ops (trainer/head/kernels.h: masked concat pooling,
 * BatchNorm1d, ReLU, BCE) as CUDA kernels on a CUDA nn_backend's stream (kernels_head.cu).
 *   be->head = head_kernels_cuda();   (nn_backend_cuda_new does this; head_clf_new picks it up)
 * Every op takes that backend as `be` and device pointers; semantics are kernels_cpu.c's. */
#ifndef KUBEFIT_CUDA_HEAD_CUDA_H
#define KUBEFIT_CUDA_HEAD_CUDA_H

#ifdef __cplusplus
extern "C" {
#endif

struct head_kernels;

/* The CUDA table (static storage; never NULL). Its ops abort, after logging, when `be` is not a
 * CUDA backend (a programmer error) or CUDA fails (cuda_check.h). */
const struct head_kernels *head_kernels_cuda(void);

#ifdef __cplusplus
}
#endif

#endif
