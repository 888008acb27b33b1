/* optim: fastai's Adam, one-cycle schedule, freezing and clipping. See optim.h. */
#include "optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

struct optim {
    optim_param *p;   /* [n] */
    size_t n;
    int n_groups;
    double *lr;       /* [n_groups] */
    optim_hparams hp;
    int frozen_idx;   /* groups < frozen_idx are frozen */
    float *state;     /* one allocation: avg then sqr for every tensor */
    float **avg, **sqr; /* [n] views into state */
    float *step;      /* [n] per-tensor step counts (float so checkpoints stay F32) */
};

int optim_new(optim **out, const optim_param *params, size_t n, int n_groups, optim_hparams hp)
{
    int rc = 0;
    optim *o = NULL;
    size_t total = 0;
    *out = NULL;
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
        !(o->state = calloc(2 * total + 1, sizeof *o->state)) ||
        !(o->avg = calloc(n ? n : 1, sizeof *o->avg)) || !(o->sqr = calloc(n ? n : 1, sizeof *o->sqr)) ||
        !(o->step = calloc(n ? n : 1, sizeof *o->step))) {
        rc = err_set(KF_ENOMEM, "optim: out of memory (%zu parameters)", total);
        goto done;
    }
    memcpy(o->p, params, n * sizeof *params);
    o->n = n;
    o->n_groups = n_groups;
    o->hp = hp;
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
    free(o->state);
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

void optim_step(optim *o)
{
    const double mom = o->hp.mom, sqr_mom = o->hp.sqr_mom, eps = o->hp.eps, wd = o->hp.wd;
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

void optim_zero_grad(optim *o)
{
    for (size_t i = 0; i < o->n; i++)
        memset(o->p[i].grad, 0, o->p[i].n * sizeof(float));
}

double optim_clip_grad_norm(optim *o, double max_norm)
{
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

/* The state array of tensor i for part k of ckpt_parts, and its length. */
static float *ckpt_view(const optim *o, size_t i, int k, size_t *n)
{
    *n = k == 2 ? 1 : o->p[i].n;
    return k == 0 ? o->avg[i] : k == 1 ? o->sqr[i] : &o->step[i];
}

int optim_save(const optim *o, st_writer *w)
{
    int rc = 0;
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
    int rc = 0;
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
