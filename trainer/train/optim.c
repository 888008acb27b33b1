/* optim: fastai's Adam, one-cycle schedule, freezing and clipping. See optim.h. */
#include "optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"

struct optim {
    optim_param *p;   /* [n] */
    size_t n;
    int n_groups;
    double *lr;       /* [n_groups] */
    optim_hparams hp;
    int frozen_idx;   /* groups < frozen_idx are frozen */
    nn_backend *be;   /* NULL: everything is host memory */
    int device;       /* be has the optimizer ops (adam_set...): the element loops run there */
    size_t total;     /* floats of all tensors */
    float *state;     /* one allocation (be->alloc, else calloc): avg then sqr for every tensor */
    float **avg, **sqr; /* [n] views into state */
    float *step;      /* [n] per-tensor step counts (float so checkpoints stay F32) */
    nn_opt_tensor *list; /* [n] the trainable tensors of one device op (device only) */
    int list_n;          /* entries of list that optim_step_set filled */
    float *host;      /* [2*total] host copy of state for checkpoints (device only, lazily) */
};

int optim_new(optim **out, const optim_param *params, size_t n, int n_groups, optim_hparams hp)
{
    return optim_create(out, &(optim_config){.params = params, .n = n, .n_groups = n_groups, .hp = hp});
}

int optim_create(optim **out, const optim_config *cfg)
{
    int rc = 0;
    optim *o = NULL;
    size_t total = 0;
    const optim_param *params = cfg->params;
    const size_t n = cfg->n;
    const int n_groups = cfg->n_groups;
    nn_backend *be = cfg->be;
    *out = NULL;
    if (be && (be->adam_set || be->adam_queue || be->clip_queue || be->clip_norm) &&
        !(be->adam_set && be->adam_queue && be->clip_queue && be->clip_norm))
        return err_set(KF_EINVAL, "optim: backend '%s' has only some of adam_set/adam_queue/clip_queue/clip_norm",
                       be->name);
    if (n_groups < 1)
        return err_set(KF_EINVAL, "optim: %d parameter groups", n_groups);
    for (size_t i = 0; i < n; i++) {
        if (params[i].group < 0 || params[i].group >= n_groups)
            return err_set(KF_EINVAL, "optim: parameter '%s' in group %d of %d",
                           params[i].name ? params[i].name : "?", params[i].group, n_groups);
        if (params[i].n > (SIZE_MAX / 8 - total))
            return err_set(KF_EINVAL, "optim: parameters too large");
        total += params[i].n;
    }
    if (!(o = calloc(1, sizeof *o)) || !(o->p = calloc(n ? n : 1, sizeof *o->p)) ||
        !(o->lr = calloc((size_t)n_groups, sizeof *o->lr)) ||
        !(o->avg = calloc(n ? n : 1, sizeof *o->avg)) || !(o->sqr = calloc(n ? n : 1, sizeof *o->sqr)) ||
        !(o->step = calloc(n ? n : 1, sizeof *o->step)) ||
        !(o->list = calloc(n ? n : 1, sizeof *o->list))) {
        rc = err_set(KF_ENOMEM, "optim: out of memory (%zu parameters)", total);
        goto done;
    }
    o->be = be;
    o->device = be && be->adam_set;
    /* zeroed on both paths (be->alloc returns zeroed memory) */
    o->state = be ? be->alloc(be, (2 * total + 1) * sizeof *o->state) : calloc(2 * total + 1, sizeof *o->state);
    if (!o->state) {
        rc = err_set(KF_ENOMEM, "optim: cannot allocate the state of %zu parameters%s%s", total,
                     be ? " on " : "", be ? be->name : "");
        goto done;
    }
    memcpy(o->p, params, n * sizeof *params);
    o->n = n;
    o->total = total;
    o->n_groups = n_groups;
    o->hp = cfg->hp;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        o->avg[i] = o->state + off;
        o->sqr[i] = o->state + total + off;
        off += params[i].n;
    }
    *out = o;
    o = NULL;
done:
    optim_free(o);
    return rc;
}

void optim_free(optim *o)
{
    if (!o)
        return;
    free(o->p);
    free(o->lr);
    if (o->be && o->state)
        o->be->release(o->be, o->state);
    else
        free(o->state);
    free(o->list);
    free(o->host);
    free(o->avg);
    free(o->sqr);
    free(o->step);
    free(o);
}

int optim_groups(const optim *o) { return o->n_groups; }

void optim_set_lr(optim *o, int group, double lr)
{
    if (group >= 0 && group < o->n_groups)
        o->lr[group] = lr;
}

double optim_lr(const optim *o, int group)
{
    return group >= 0 && group < o->n_groups ? o->lr[group] : 0.0;
}

void optim_set_mom(optim *o, double mom) { o->hp.mom = mom; }
void optim_set_wd(optim *o, double wd) { o->hp.wd = wd; }

void optim_freeze_to(optim *o, int n)
{
    int idx = n >= 0 ? n : o->n_groups + n;
    o->frozen_idx = idx < 0 ? 0 : idx;
}

int optim_is_trainable(const optim *o, size_t i)
{
    return i < o->n && (o->p[i].group >= o->frozen_idx || o->p[i].force_train);
}

/* The trainable tensors as the device ops take them, in o->list; counts a step when step. */
static int device_list(optim *o, int step)
{
    int k = 0;
    for (size_t i = 0; i < o->n; i++) {
        if (!optim_is_trainable(o, i))
            continue;
        const optim_param *p = &o->p[i];
        if (step)
            o->step[i] += 1.0f;
        o->list[k++] = (nn_opt_tensor){.param = p->param, .grad = p->grad, .avg = o->avg[i], .sqr = o->sqr[i],
                                       .n = p->n, .lr = o->lr[p->group],
                                       .wd = p->no_wd ? 0.0 : o->hp.wd, .step = o->step[i]};
    }
    return k;
}

void optim_step(optim *o)
{
    const double mom = o->hp.mom, sqr_mom = o->hp.sqr_mom, eps = o->hp.eps, wd = o->hp.wd;
    if (o->device) {
        if (optim_step_set(o) < 0) { /* more tensors than the backend takes in one step */
            log_error("optim", "adam step refused", "{s:s}", "error", err_msg());
            abort();
        }
        optim_step_queue(o);
        return;
    }
    for (size_t i = 0; i < o->n; i++) {
        if (!optim_is_trainable(o, i))
            continue;
        const optim_param *p = &o->p[i];
        const double lr = o->lr[p->group];
        float *w = p->param, *avg = o->avg[i], *sqr = o->sqr[i];
        const float *g = p->grad;
        o->step[i] += 1.0f;
        const double step = o->step[i];
        const double debias1 = 1.0 - pow(mom, step), debias2 = 1.0 - pow(sqr_mom, step);
        const float decay = (float)(1.0 - lr * wd), fmom = (float)mom, fsqr = (float)sqr_mom;
        const float damp1 = (float)(1.0 - mom), damp2 = (float)(1.0 - sqr_mom);
        const float inv_d2 = (float)(1.0 / debias2), feps = (float)eps, scale = (float)(lr / debias1);
        const int do_wd = !p->no_wd && wd != 0.0;
        for (size_t k = 0; k < p->n; k++) {
            if (do_wd)
                w[k] *= decay;
            avg[k] = fmom * avg[k] + damp1 * g[k];
            sqr[k] = fsqr * sqr[k] + damp2 * g[k] * g[k];
            w[k] -= scale * avg[k] / (sqrtf(sqr[k] * inv_d2) + feps);
        }
    }
}

int optim_graphable(const optim *o)
{
    return o->device;
}

int optim_step_set(optim *o)
{
    o->list_n = device_list(o, 1);
    return o->be->adam_set(o->be, o->list, o->list_n, o->hp.mom, o->hp.sqr_mom, o->hp.eps);
}

void optim_step_queue(optim *o)
{
    o->be->adam_queue(o->be, o->list, o->list_n);
}

void optim_clip_queue(optim *o, double max_norm)
{
    o->be->clip_queue(o->be, o->list, device_list(o, 0), max_norm);
}

double optim_clip_norm(optim *o)
{
    return o->be->clip_norm(o->be);
}

void optim_zero_grad(optim *o)
{
    for (size_t i = 0; i < o->n; i++) {
        if (o->be)
            o->be->fill(o->be, o->p[i].grad, 0.0f, o->p[i].n);
        else
            memset(o->p[i].grad, 0, o->p[i].n * sizeof(float));
    }
}

double optim_clip_grad_norm(optim *o, double max_norm)
{
    if (o->device) {
        optim_clip_queue(o, max_norm);
        return optim_clip_norm(o);
    }
    double sum = 0.0;
    for (size_t i = 0; i < o->n; i++) {
        if (!optim_is_trainable(o, i))
            continue;
        for (size_t k = 0; k < o->p[i].n; k++)
            sum += (double)o->p[i].grad[k] * o->p[i].grad[k];
    }
    double norm = sqrt(sum);
    if (max_norm > 0) {
        double coef = max_norm / (norm + 1e-6);
        if (coef < 1.0) {
            for (size_t i = 0; i < o->n; i++) {
                if (!optim_is_trainable(o, i))
                    continue;
                for (size_t k = 0; k < o->p[i].n; k++)
                    o->p[i].grad[k] *= (float)coef;
            }
        }
    }
    return norm;
}

static const char *const ckpt_parts[3] = {"avg", "sqr", "step"};

/* The host array of tensor i for part k of ckpt_parts, and its length: the state itself on the
 * host path, else its place in the host copy o->host. */
static float *ckpt_view(const optim *o, size_t i, int k, size_t *n)
{
    *n = k == 2 ? 1 : o->p[i].n;
    if (k == 2)
        return &o->step[i];
    float *v = k == 0 ? o->avg[i] : o->sqr[i];
    return o->device ? o->host + (v - o->state) : v;
}

/* Device path: makes the host copy of the state (once). */
static int host_copy(optim *o)
{
    if (!o->device || o->host)
        return 0;
    if (!(o->host = malloc((2 * o->total + 1) * sizeof *o->host)))
        return err_set(KF_ENOMEM, "optim: out of memory for a host copy of %zu state values", 2 * o->total);
    return 0;
}

int optim_save(optim *o, st_writer *w)
{
    int rc = host_copy(o);
    if (rc < 0)
        return rc;
    if (o->device)
        o->be->download(o->be, o->host, o->state, 2 * o->total * sizeof *o->host);
    for (size_t i = 0; i < o->n && rc == 0; i++) {
        if (!o->p[i].name)
            return err_set(KF_EINVAL, "optim: parameter %zu has no name", i);
        for (int k = 0; k < 3 && rc == 0; k++) {
            char *nm = NULL;
            size_t n;
            const float *v = ckpt_view(o, i, k, &n);
            int64_t shape[1] = {(int64_t)n};
            if (asprintf(&nm, "opt.%s.%s", o->p[i].name, ckpt_parts[k]) < 0)
                return err_set(KF_ENOMEM, "out of memory");
            rc = st_writer_add(w, nm, v, shape, 1);
            free(nm);
        }
    }
    return rc;
}

int optim_load(optim *o, const st_file *f)
{
    int rc = host_copy(o);
    if (rc < 0)
        return rc;
    if (o->device) /* tensors the file lacks keep their state */
        o->be->download(o->be, o->host, o->state, 2 * o->total * sizeof *o->host);
    for (size_t i = 0; i < o->n && rc == 0; i++) {
        for (int k = 0; k < 3 && rc == 0; k++) {
            char *nm = NULL;
            size_t n;
            float *v = ckpt_view(o, i, k, &n);
            if (asprintf(&nm, "opt.%s.%s", o->p[i].name ? o->p[i].name : "?", ckpt_parts[k]) < 0)
                return err_set(KF_ENOMEM, "out of memory");
            rc = st_read_f32(v, n, f, nm, NULL, 0);
            free(nm);
        }
    }
    if (rc < 0)
        err_wrap(rc, "optimizer state");
    else if (o->device)
        o->be->upload(o->be, o->state, o->host, 2 * o->total * sizeof *o->host);
    return rc;
}

double optim_sched_cos(double start, double end, double pos)
{
    return start + (1.0 + cos(M_PI * (1.0 - pos))) * (end - start) / 2.0;
}

void optim_cycle_at(const optim_cycle *c, double pct, double *lr_frac, double *mom)
{
    if (pct < 0)
        pct = 0;
    if (pct < c->pct_start) {
        double pos = pct / c->pct_start;
        *lr_frac = optim_sched_cos(1.0 / c->div, 1.0, pos);
        *mom = optim_sched_cos(c->mom_hi, c->mom_lo, pos);
    } else {
        double pos = (pct - c->pct_start) / (1.0 - c->pct_start);
        *lr_frac = optim_sched_cos(1.0, 1.0 / c->div_final, pos);
        *mom = optim_sched_cos(c->mom_lo, c->mom_hi, pos);
    }
}

void optim_even_mults(double *out, double lo, double hi, int n)
{
    if (n == 1) {
        out[0] = hi;
        return;
    }
    double step = pow(hi / lo, 1.0 / (n - 1));
    for (int i = 0; i < n; i++)
        out[i] = lo * pow(step, i);
}
