/* optim: fastai's Adam with decoupled weight decay over parameter groups, the one-cycle
 * schedule (fit_one_cycle), discriminative learning rates, freezing (freeze_to) and gradient
 * clipping by global norm.
 *
 * Adam step as fastai.optimizer.Adam (defaults mom 0.9, sqr_mom 0.99, eps 1e-5, wd 0.01):
 *   p      *= 1 - lr*wd                        (decoupled weight decay, when do_wd)
 *   avg     = mom*avg + (1-mom)*g
 *   sqr     = sqr_mom*sqr + (1-sqr_mom)*g*g
 *   step   += 1
 *   p      -= lr/(1-mom^step) * avg / (sqrt(sqr/(1-sqr_mom^step)) + eps)
 * Each parameter tensor keeps its own step count; frozen tensors are skipped entirely.
 * Optimizer state (avg, sqr) for all tensors lives in one allocation: backend memory when the
 * optimizer is made with a backend (optim_create), where params and grads live too.
 * Where the arithmetic runs: a backend with the optimizer ops (adam_set, adam_queue, clip_queue,
 * clip_norm: CUDA) does the element loops (one launch per 32 tensors); otherwise (the CPU backend, or no backend) the loops
 * below run on the host. Schedules, groups, freezing and step counts are host state always. */
#ifndef KUBEFIT_OPTIM_H
#define KUBEFIT_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "safetensors.h"

typedef struct {
    const char *name; /* for checkpoints; borrowed, must outlive the optimizer */
    float *param;     /* [n] backend memory (host memory without a backend) */
    float *grad;      /* [n] same */
    size_t n;
    int group;        /* parameter group, 0 = lowest layers (fastai's splitter order) */
    int no_wd;        /* 1: no weight decay (Linear biases, BatchNorm: fastai wd_bn_bias=False) */
    int force_train;  /* 1: trained even when its group is frozen (BatchNorm: fastai train_bn) */
} optim_param;

typedef struct {
    double mom, sqr_mom, eps, wd;
} optim_hparams;

#define OPTIM_HPARAMS_DEFAULT ((optim_hparams){.mom = 0.9, .sqr_mom = 0.99, .eps = 1e-5, .wd = 0.01})

typedef struct optim optim;

typedef struct optim_config {
    const optim_param *params; /* [n], copied; the arrays it points to are borrowed */
    size_t n;
    int n_groups;
    optim_hparams hp;
    nn_backend *be;            /* where params/grads live and the state goes; NULL: host memory */
} optim_config;

/* Caller frees with optim_free. KF_EINVAL (a group out of range), KF_ENOMEM. */
int optim_create(optim **out, const optim_config *cfg);
/* optim_create without a backend: params, grads and state in host memory. */
int optim_new(optim **out, const optim_param *params, size_t n, int n_groups, optim_hparams hp);
void optim_free(optim *o);

int optim_groups(const optim *o);
void optim_set_lr(optim *o, int group, double lr);
double optim_lr(const optim *o, int group);
void optim_set_mom(optim *o, double mom);     /* all groups */
void optim_set_wd(optim *o, double wd);       /* all groups */
/* fastai freeze_to(n): groups before n are frozen; negative n counts from the end.
 * freeze_to(0) unfreezes everything. */
void optim_freeze_to(optim *o, int n);
int optim_is_trainable(const optim *o, size_t param_index);

/* One Adam step on every trainable tensor, using each group's lr and the momentum set. */
void optim_step(optim *o);
void optim_zero_grad(optim *o);
/* torch.nn.utils.clip_grad_norm_ over trainable tensors: scales grads by
 * min(1, max_norm/(norm+1e-6)). Returns the norm before clipping. max_norm <= 0: only measures. */
double optim_clip_grad_norm(optim *o, double max_norm);

/* The step in recordable pieces, for a training step replayed as a graph (backends with the
 * optimizer ops, backend.h; optim_graphable says so; optim_step and optim_clip_grad_norm are
 * these in a row there):
 * optim_step_set counts the step and hands its constants to the backend (host only, never
 * inside a recording; 0 or KF_EINVAL); optim_step_queue queues the update (recordable);
 * optim_clip_queue queues the clip (recordable); optim_clip_norm reads its norm (waits). */
int optim_graphable(const optim *o);
int optim_step_set(optim *o);
void optim_step_queue(optim *o);
void optim_clip_queue(optim *o, double max_norm);
double optim_clip_norm(optim *o);

/* Checkpoint: writes "opt.<name>.avg", "opt.<name>.sqr", "opt.<name>.step" (one float) tensors
 * (data borrowed by the writer until it is saved; on a device backend a host copy of the state
 * the optimizer keeps, made at the first save/load). Load restores them, checking shapes. */
int optim_save(optim *o, st_writer *w);
int optim_load(optim *o, const st_file *f);

/* ---- schedules ---- */

/* fastai fit_one_cycle: cosine from lr_max/div up to lr_max over pct_start of the steps, then
 * cosine down to lr_max/div_final; momentum cosine mom_hi -> mom_lo -> mom_hi. */
typedef struct {
    double pct_start, div, div_final, mom_hi, mom_lo;
} optim_cycle;

#define OPTIM_CYCLE_DEFAULT \
    ((optim_cycle){.pct_start = 0.25, .div = 25.0, .div_final = 1e5, .mom_hi = 0.95, .mom_lo = 0.85})

/* fastai SchedCos: start + (1 + cos(pi*(1-pos))) * (end-start)/2 for pos in [0,1]. */
double optim_sched_cos(double start, double end, double pos);
/* At training progress pct = step/total_steps: lr as a fraction of lr_max, and the momentum. */
void optim_cycle_at(const optim_cycle *c, double pct, double *lr_frac, double *mom);
/* fastai even_mults: n values from lo to hi in geometric steps (lr slice(lo, hi)). */
void optim_even_mults(double *out, double lo, double hi, int n);

#endif
