/* cuda_optim: the optimizer's two GPU pieces, fastai's Adam with decoupled weight decay and
 * torch's clip_grad_norm_ (global L2 norm), over tensors given by pointer (the _list functions)
 * or by offset into flat arrays (the model's params block, with grads, avg and sqr blocks of the
 * same layout), CUDA_OPTIM_LIST_TENSORS tensors per launch. The schedule, groups, freezing and
 * step counts stay on the host (trainer/train optim.c); a frozen tensor is simply left out of the
 * list.
 *   cuda_optim *o; cuda_optim_new(&o, nn_backend_cuda_ctx(be));
 *   double norm = cuda_optim_clip_grad_norm(o, grads, tensors, n, 0.1);
 *   cuda_optim_adam_step(o, &(cuda_adam_args){.params = p, .grads = g, .avg = avg, .sqr = sqr,
 *                                             .tensors = tensors, .count = n, .mom = 0.9,
 *                                             .sqr_mom = 0.99, .eps = 1e-5});
 * Per element, as optim.c (fastai.optimizer.Adam):
 *   p *= 1 - lr*wd;  avg = mom*avg + (1-mom)*g;  sqr = sqr_mom*sqr + (1-sqr_mom)*g*g;
 *   p -= lr/(1-mom^step) * avg / (sqrt(sqr/(1-sqr_mom^step)) + eps) */
#ifndef KUBEFIT_CUDA_OPTIM_H
#define KUBEFIT_CUDA_OPTIM_H

#include <stddef.h>

#include "backend.h"
#include "cuda_ctx.h"

#ifdef __cplusplus
extern "C" {
#endif

/* tensors whose partial sums one clip launch may leave (>= CUDA_OPTIM_LIST_TENSORS) */
#define CUDA_OPTIM_MAX_TENSORS 64

typedef struct cuda_optim_tensor {
    size_t offset, n; /* floats from the start of every flat array */
    double lr;        /* learning rate of the tensor's group */
    double wd;        /* decoupled weight decay; 0 for no_wd tensors (biases) */
    double step;      /* the tensor's step count including this update (1 on the first) */
} cuda_optim_tensor;

typedef struct cuda_adam_args {
    float *params, *avg, *sqr; /* flat device arrays (avg, sqr zeroed before the first step) */
    const float *grads;
    const cuda_optim_tensor *tensors; /* host array */
    int count;
    double mom, sqr_mom, eps;
} cuda_adam_args;

typedef struct cuda_optim cuda_optim;

/* ctx is borrowed (the backend's). Returns 0, KF_ENOMEM or KF_EIO. Caller frees with
 * cuda_optim_free. */
int cuda_optim_new(cuda_optim **out, cuda_ctx *ctx);
void cuda_optim_free(cuda_optim *o);

#define CUDA_OPTIM_STEP_TENSORS 1024 /* tensors of one flat-array Adam step */

/* Queues the Adam update of every listed tensor (cuda_optim_adam_set + cuda_optim_adam_queue);
 * does not wait for the device, except for the previous step's copy of the constants. */
void cuda_optim_adam_step(cuda_optim *o, const cuda_adam_args *a);

/* L2 norm of the listed tensors' gradients (in double); when max_norm > 0 and
 * max_norm/(norm+1e-6) < 1 the gradients are scaled by that factor on the device. Returns the
 * norm before clipping (waits for the stream): cuda_optim_clip_queue + cuda_optim_clip_norm. */
double cuda_optim_clip_grad_norm(cuda_optim *o, float *grads, const cuda_optim_tensor *tensors,
                                 int count, double max_norm);

/* The same in pieces that a recorded graph (nn_backend capture_begin) can hold:
 *   cuda_optim_adam_set    host only: this step's constants (lr, wd, step per tensor; the
 *                          momenta and eps, which the one-cycle schedule moves too) into
 *                          pinned memory; waits until the last copy of them has been made.
 *                          KF_EINVAL over CUDA_OPTIM_STEP_TENSORS tensors. Never in a recording.
 *   cuda_optim_adam_queue  queues their copy to the device and the update (recordable; a
 *                          replay uses what adam_set wrote last).
 *   cuda_optim_clip_queue  queues the norm and the scaling with the factor computed on the
 *                          device (recordable);
 *   cuda_optim_clip_norm   the norm of the last clip (waits). */
int cuda_optim_adam_set(cuda_optim *o, const cuda_adam_args *a);
void cuda_optim_adam_queue(cuda_optim *o, const cuda_adam_args *a);
void cuda_optim_clip_queue(cuda_optim *o, float *grads, const cuda_optim_tensor *tensors,
                           int count, double max_norm);
double cuda_optim_clip_norm(cuda_optim *o);

/* The same two pieces over tensors anywhere in device memory (the trainer's optimizer: the
 * encoder's and the head's blocks, the optimizer's own state block; the flat calls above build
 * such a list) - CUDA_OPTIM_LIST_TENSORS per launch. A tensor's wd
 * 0 means no weight decay; tensors with n == 0 are allowed. */
#define CUDA_OPTIM_LIST_TENSORS 32
void cuda_optim_adam_list(cuda_optim *o, const nn_opt_tensor *t, int count, double mom,
                          double sqr_mom, double eps);
/* The list versions in recordable pieces, as the flat ones above: _set (host only, never in a
 * recording), _queue (recordable); the norm of the last clip: cuda_optim_clip_norm. The CUDA
 * backend's optimizer ops (backend.h adam_set/adam_queue/clip_queue/clip_norm) are these. */
int cuda_optim_adam_list_set(cuda_optim *o, const nn_opt_tensor *t, int count, double mom,
                             double sqr_mom, double eps);
void cuda_optim_adam_list_queue(cuda_optim *o, const nn_opt_tensor *t, int count);
void cuda_optim_clip_list_queue(cuda_optim *o, const nn_opt_tensor *t, int count,
                                double max_norm);

#ifdef __cplusplus
}
#endif

#endif
