/* kernels_cpu: the head's ops on host memory; rows (or features) split over be->parallel_for.
 * Dimension legend: B batch, T time, E encoder output size, D layer features, n elements.
 * Reductions over the batch/time run in double; results are stored as float. */
#include <math.h>

#include "kernels.h"

typedef void (*range_fn)(void *arg, size_t lo, size_t hi);

static void run_range(nn_backend *be, size_t n, range_fn fn, void *arg)
{
    if (be && be->parallel_for)
        be->parallel_for(be, n, fn, arg);
    else
        fn(arg, 0, n);
}

/* ---- masked concat pooling ---- */

typedef struct pool_job {
    float *pooled;         /* (B,3E) */
    int32_t *argmax;       /* (B,E) */
    float *denc;           /* (T,B,E) */
    const float *enc;      /* (T,B,E) */
    const float *dpooled;  /* (B,3E) */
    const int32_t *cargmax;
    const head_pool_dims *d;
} pool_job;

static void pool_fwd_rows(void *arg, size_t lo, size_t hi)
{
    const pool_job *j = arg;
    const int T = j->d->T, B = j->d->B, E = j->d->E;
    for (size_t b = lo; b < hi; b++) {
        float *last = j->pooled + b * 3 * (size_t)E, *mx = last + E, *avg = mx + E;
        int32_t *am = j->argmax + b * (size_t)E;
        const float *src = j->enc + ((size_t)j->d->last[b] * B + b) * E;
        for (int e = 0; e < E; e++) {
            last[e] = src[e];
            mx[e] = -INFINITY;
            am[e] = -1;
            avg[e] = 0.0f;
        }
        for (int t = 0; t < T; t++) {
            if (j->d->pad[b * (size_t)T + t])
                continue;
            const float *x = j->enc + ((size_t)t * B + b) * E;
            for (int e = 0; e < E; e++) {
                if (x[e] > mx[e] || am[e] < 0) {
                    mx[e] = x[e];
                    am[e] = t;
                }
                avg[e] += x[e];
            }
        }
        const float inv = 1.0f / (float)j->d->len[b];
        for (int e = 0; e < E; e++)
            avg[e] *= inv;
    }
}

static void pool_fwd(nn_backend *be, float *pooled, int32_t *argmax, const float *enc,
                     const head_pool_dims *d)
{
    pool_job j = {.pooled = pooled, .argmax = argmax, .enc = enc, .d = d};
    run_range(be, (size_t)d->B, pool_fwd_rows, &j);
}

static void pool_bwd_rows(void *arg, size_t lo, size_t hi)
{
    const pool_job *j = arg;
    const int T = j->d->T, B = j->d->B, E = j->d->E;
    for (size_t b = lo; b < hi; b++) {
        const float *dlast = j->dpooled + b * 3 * (size_t)E, *dmx = dlast + E, *davg = dmx + E;
        const int32_t *am = j->cargmax + b * (size_t)E;
        float *dst = j->denc + ((size_t)j->d->last[b] * B + b) * E;
        for (int e = 0; e < E; e++)
            dst[e] += dlast[e];
        for (int e = 0; e < E; e++)
            j->denc[((size_t)am[e] * B + b) * E + e] += dmx[e];
        const float inv = 1.0f / (float)j->d->len[b];
        for (int t = 0; t < T; t++) {
            if (j->d->pad[b * (size_t)T + t])
                continue;
            float *dx = j->denc + ((size_t)t * B + b) * E;
            for (int e = 0; e < E; e++)
                dx[e] += davg[e] * inv;
        }
    }
}

static void pool_bwd(nn_backend *be, float *denc, const float *dpooled, const int32_t *argmax,
                     const head_pool_dims *d)
{
    pool_job j = {.denc = denc, .dpooled = dpooled, .cargmax = argmax, .d = d};
    run_range(be, (size_t)d->B, pool_bwd_rows, &j);
}

/* ---- BatchNorm1d ---- */

typedef struct bn_job {
    float *y, *xhat, *mean, *rstd, *run_mean, *run_var; /* fwd */
    float *dx, *dgamma, *dbeta;                          /* bwd */
    const float *x, *dy, *cxhat, *crstd, *gamma, *beta;
    const head_bn_dims *d;
} bn_job;

static void bn_fwd_features(void *arg, size_t lo, size_t hi)
{
    const bn_job *j = arg;
    const int B = j->d->B, D = j->d->D;
    for (size_t f = lo; f < hi; f++) {
        double mu, var;
        if (j->d->training) {
            double s = 0, ss = 0;
            for (int b = 0; b < B; b++)
                s += j->x[(size_t)b * D + f];
            mu = s / B;
            for (int b = 0; b < B; b++) {
                double c = j->x[(size_t)b * D + f] - mu;
                ss += c * c;
            }
            var = ss / B;
            const double m = j->d->momentum;
            j->run_mean[f] = (float)((1 - m) * j->run_mean[f] + m * mu);
            j->run_var[f] = (float)((1 - m) * j->run_var[f] + m * (ss / (B - 1)));
        } else {
            mu = j->run_mean[f];
            var = j->run_var[f];
        }
        const double rs = 1.0 / sqrt(var + j->d->eps);
        j->mean[f] = (float)mu;
        j->rstd[f] = (float)rs;
        for (int b = 0; b < B; b++) {
            size_t i = (size_t)b * D + f;
            double xh = (j->x[i] - mu) * rs;
            j->xhat[i] = (float)xh;
            j->y[i] = (float)(j->gamma[f] * xh + j->beta[f]);
        }
    }
}

static void bn_fwd(nn_backend *be, float *y, float *xhat, float *mean, float *rstd,
                   float *run_mean, float *run_var, const float *x, const float *gamma,
                   const float *beta, const head_bn_dims *d)
{
    bn_job j = {.y = y, .xhat = xhat, .mean = mean, .rstd = rstd, .run_mean = run_mean,
                .run_var = run_var, .x = x, .gamma = gamma, .beta = beta, .d = d};
    run_range(be, (size_t)d->D, bn_fwd_features, &j);
}

static void bn_bwd_features(void *arg, size_t lo, size_t hi)
{
    const bn_job *j = arg;
    const int B = j->d->B, D = j->d->D;
    for (size_t f = lo; f < hi; f++) {
        double sdy = 0, sdyx = 0;
        for (int b = 0; b < B; b++) {
            size_t i = (size_t)b * D + f;
            sdy += j->dy[i];
            sdyx += (double)j->dy[i] * j->cxhat[i];
        }
        j->dgamma[f] += (float)sdyx;
        j->dbeta[f] += (float)sdy;
        const double g = (double)j->gamma[f] * j->crstd[f];
        for (int b = 0; b < B; b++) {
            size_t i = (size_t)b * D + f;
            if (j->d->training)
                j->dx[i] += (float)(g / B * (B * (double)j->dy[i] - sdy - j->cxhat[i] * sdyx));
            else
                j->dx[i] += (float)(g * j->dy[i]);
        }
    }
}

static void bn_bwd(nn_backend *be, float *dx, float *dgamma, float *dbeta, const float *dy,
                   const float *xhat, const float *rstd, const float *gamma,
                   const head_bn_dims *d)
{
    bn_job j = {.dx = dx, .dgamma = dgamma, .dbeta = dbeta, .dy = dy, .cxhat = xhat,
                .crstd = rstd, .gamma = gamma, .d = d};
    run_range(be, (size_t)d->D, bn_bwd_features, &j);
}

/* ---- elementwise ---- */

static void relu_fwd(nn_backend *be, float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

static void relu_bwd(nn_backend *be, float *dx, const float *dy, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (y[i] > 0.0f)
            dx[i] += dy[i];
}

static double bce_sum(nn_backend *be, const float *logits, const float *targets, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double z = logits[i];
        s += (z > 0 ? z : 0) - z * targets[i] + log1p(exp(-fabs(z)));
    }
    return s;
}

static void bce_bwd(nn_backend *be, float *dlogits, const float *logits, const float *targets,
                    float scale, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double z = logits[i], sig;
        if (z >= 0) {
            sig = 1.0 / (1.0 + exp(-z));
        } else {
            double ez = exp(z);
            sig = ez / (1.0 + ez);
        }
        dlogits[i] += (float)(scale * (sig - targets[i]));
    }
}

static const head_kernels cpu_kernels = {
    .pool_fwd = pool_fwd,
    .pool_bwd = pool_bwd,
    .bn_fwd = bn_fwd,
    .bn_bwd = bn_bwd,
    .relu_fwd = relu_fwd,
    .relu_bwd = relu_bwd,
    .bce_sum = bce_sum,
    .bce_bwd = bce_bwd,
};

const head_kernels *head_kernels_cpu(void) { return &cpu_kernels; }
