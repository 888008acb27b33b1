/* fit: training loops and evaluation. See fit.h. */
#include "fit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "log.h"
#include "loss.h"
#include "modelio.h"

double fit_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double fit_threshold(const fit_ctx *c)
{
    return c->threshold > 0 && c->threshold < 1 ? c->threshold : 0.5;
}

static uint64_t mix(uint64_t a, uint64_t b)
{
    uint64_t z = a * 0x9E3779B97F4A7C15ull + b + 0x632BE59BD9B4E019ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (z ^ (z >> 31)) | 1;
}

static int stopped(const fit_ctx *c)
{
    if (c->stop && *c->stop)
        return err_set(KF_ERETRY, "stopped by SIGTERM (preempted?); the next attempt resumes from the last "
                                  "epoch checkpoint");
    return 0;
}

static void report_step(fit_ctx *c, const char *stage, int epoch, int epochs, long step, long steps,
                        double loss)
{
    c->steps_done++;
    if (!c->prog)
        return;
    long every = steps / 10 > 0 ? steps / 10 : 1;
    if (step % every != 0 && step != steps)
        return;
    double pct = c->steps_total > 0 ? 100.0 * c->steps_done / c->steps_total : 0;
    double el = fit_now() - c->t_start;
    double eta = c->steps_done > 0 && c->steps_total > c->steps_done
                     ? el / c->steps_done * (c->steps_total - c->steps_done) : 0;
    progress_emit(c->prog, &(progress_event){.stage = stage, .epoch = epoch, .epochs = epochs, .step = step,
                                             .steps = steps, .loss = loss, .percent = pct > 100 ? 100 : pct,
                                             .eta_seconds = eta});
}

/* Sets every group's lr (lr_max[g] * schedule fraction) and the momentum at progress pct. */
static void apply_cycle(optim *o, const double *lr_max, const optim_cycle *cyc, double pct)
{
    double frac, mom;
    optim_cycle_at(cyc, pct, &frac, &mom);
    for (int g = 0; g < optim_groups(o); g++)
        optim_set_lr(o, g, lr_max[g] * frac);
    optim_set_mom(o, mom);
}

/* ---- language model ---- */

int fit_lm_init(fit_lm *f, fit_ctx *c, nn_model *m)
{
    int rc = 0;
    memset(f, 0, sizeof *f);
    f->m = m;
    const nn_config *cfg = nn_model_config(m);
    const nn_tensor *t = nn_tensors(m);
    int nt = nn_tensor_count(m);
    optim_param *p = calloc((size_t)nt, sizeof *p);
    if (!p)
        return err_set(KF_ENOMEM, "out of memory");
    for (int i = 0; i < nt; i++) /* fastai: only Linear biases (the decoder's) skip weight decay */
        p[i] = (optim_param){.name = t[i].name, .param = nn_params(m) + t[i].offset,
                             .grad = nn_grads(m) + t[i].offset, .n = t[i].numel, .group = t[i].group,
                             .no_wd = strcmp(t[i].name, "1.decoder.bias") == 0};
    optim_hparams hp = OPTIM_HPARAMS_DEFAULT;
    hp.wd = c->wd;
    if ((rc = optim_create(&f->opt, &(optim_config){.params = p, .n = (size_t)nt, .n_groups = cfg->layers + 1,
                                                    .hp = hp, .be = c->be})) < 0)
        goto done;
    if ((rc = nn_acts_new(&f->a, m, c->B, c->bptt, NN_ACTS_DECODER)) < 0 ||
        (rc = nn_state_reserve(m, c->B)) < 0) /* the carried state: allocated here, not in a step */
        goto done;
    if (c->be->argmax_hits &&
        !(f->hits = c->be->alloc(c->be, (size_t)c->B * c->bptt * sizeof *f->hits))) {
        rc = err_set(KF_ENOMEM, "out of %s memory for %d x %d accuracy hits", c->be->name, c->B, c->bptt);
        goto done;
    }
    f->x = malloc((size_t)c->B * c->bptt * sizeof *f->x);
    f->y = malloc((size_t)c->B * c->bptt * sizeof *f->y);
    if (!f->x || !f->y)
        rc = err_set(KF_ENOMEM, "out of memory");
done:
    free(p);
    if (rc < 0)
        fit_lm_dispose(f);
    return rc;
}

void fit_lm_dispose(fit_lm *f)
{
    if (!f)
        return;
    if (f->a)
        nn_acts_free(f->m, f->a);
    if (f->hits)
        nn_model_backend(f->m)->release(nn_model_backend(f->m), f->hits);
    optim_free(f->opt);
    free(f->x);
    free(f->y);
    memset(f, 0, sizeof *f);
}

long fit_lm_steps(const fit_ctx *c, const data_docs *train)
{
    size_t total = 0;
    for (size_t i = 0; i < train->n; i++)
        total += train->v[i].n;
    if (total < (size_t)c->B + 1)
        return 0;
    size_t m = (total - 1) / (size_t)c->B;
    return (long)((m + (size_t)c->bptt - 1) / (size_t)c->bptt);
}

int fit_lm_eval(fit_ctx *c, fit_lm *f, const data_docs *valid, double *loss, double *accuracy)
{
    int rc = 0;
    data_lm lm = {0};
    double sum = 0, n = 0, right = 0;
    nn_backend *be = c->be;
    const int V = nn_model_config(f->m)->vocab;
    *loss = *accuracy = NAN;
    if (valid->n == 0)
        return 0;
    if ((rc = data_lm_build(&lm, valid, c->B, 0)) < 0) {
        err_clear();
        return 0; /* too little validation text for a batch: no LM validation */
    }
    nn_reset(f->m);
    f->a->training = false;
    for (size_t k = 0;; k++) {
        int t = data_lm_chunk(&lm, k, c->bptt, f->x, f->y);
        if (t == 0)
            break;
        nn_lm_loss l;
        if ((rc = nn_lm_forward(f->m, f->a, f->x, f->y, c->B, t, &l)) < 0)
            goto done;
        sum += l.ce * t * c->B;
        n += (double)t * c->B;
        if (f->hits) { /* on the device: probs (T,B,V) against the (T,B) targets it holds */
            be->argmax_hits(be, f->hits, f->a->logits, f->a->targets, t * c->B, V);
            right += be->sum(be, f->hits, (size_t)t * c->B);
        } else { /* host memory: probs (T,B,V) time-major; targets (B,T) batch-first */
            for (int tt = 0; tt < t; tt++)
                for (int b = 0; b < c->B; b++) {
                    const float *p = f->a->logits + ((size_t)tt * c->B + b) * V;
                    int best = 0;
                    for (int v = 1; v < V; v++)
                        if (p[v] > p[best])
                            best = v;
                    right += best == f->y[(size_t)b * t + tt];
                }
        }
    }
    *loss = n > 0 ? sum / n : NAN;
    *accuracy = n > 0 ? right / n : NAN;
done:
    nn_reset(f->m);
    data_lm_dispose(&lm);
    return rc;
}

/* Whether the LM steps replay one recorded graph (CUDA; KUBEFIT_CUDA_GRAPH=0 runs them op by op). */
static bool lm_graphs(const fit_ctx *c, const fit_lm *f)
{
    const char *env = getenv("KUBEFIT_CUDA_GRAPH");
    return c->be->capture_begin && optim_graphable(f->opt) && !(env && !strcmp(env, "0"));
}

/* Records forward + backward + clip + Adam of the batch nn_lm_set_batch put in f->a (after
 * optim_step_set) as one graph. */
static int lm_record(fit_ctx *c, fit_lm *f, void **graph)
{
    nn_backend *be = c->be;
    int rc = be->capture_begin(be), end;
    if (rc < 0)
        return rc;
    rc = nn_lm_forward_queue(f->m, f->a);
    if (rc == 0) {
        nn_zero_grad(f->m);
        rc = nn_lm_backward(f->m, f->a);
    }
    if (rc == 0) {
        if (c->clip > 0)
            optim_clip_queue(f->opt, c->clip);
        optim_step_queue(f->opt);
    }
    end = be->capture_end(be, graph);
    return rc < 0 ? rc : end;
}

int fit_lm_run(fit_ctx *c, fit_lm *f, const char *stage, const data_docs *train, const data_docs *valid,
               int epochs, int start_epoch, double lr)
{
    int rc = 0;
    data_lm lm = {0};
    const int G = optim_groups(f->opt);
    double lr_max[NN_MAX_LAYERS + 2];
    for (int g = 0; g < G; g++)
        lr_max[g] = lr;
    const optim_cycle cyc = OPTIM_CYCLE_DEFAULT;
    const bool graphs = lm_graphs(c, f);
    void *graph = NULL; /* the full-chunk step, recorded once (lm_record) */
    optim_freeze_to(f->opt, 0);
    for (int e = start_epoch; e < epochs; e++) {
        double t0 = fit_now(), sum = 0, smooth = 0;
        long nsteps = 0;
        if ((rc = data_lm_build(&lm, train, c->B, mix(c->seed, 1000 + (uint64_t)e))) < 0)
            goto done;
        const long nch = (long)data_lm_chunks(&lm, c->bptt);
        nn_reset(f->m);
        for (long k = 0; k < nch; k++) {
            if ((rc = stopped(c)) < 0)
                goto done;
            int t = data_lm_chunk(&lm, (size_t)k, c->bptt, f->x, f->y);
            apply_cycle(f->opt, lr_max, &cyc, (double)(e * nch + k) / ((double)epochs * nch));
            nn_masks_sample(f->m, f->a, c->seed, (uint64_t)e * 1000003u + (uint64_t)k);
            nn_lm_loss l;
            if (graphs && t == c->bptt && k > 0) { /* full chunk, carried state sized: replay */
                if ((rc = nn_lm_set_batch(f->m, f->a, f->x, f->y, c->B, t)) < 0 ||
                    (rc = optim_step_set(f->opt)) < 0)
                    goto done;
                if (!graph) {
                    if ((rc = lm_record(c, f, &graph)) < 0)
                        goto done;
                    log_info("fit", "LM step recorded as a CUDA graph", "{s:s,s:i,s:i}", "stage", stage,
                             "batch", c->B, "bptt", t);
                }
                if ((rc = c->be->graph_launch(c->be, graph)) < 0 || (rc = nn_lm_loss_read(f->m, f->a, &l)) < 0)
                    goto done;
            } else {
                if ((rc = nn_lm_forward(f->m, f->a, f->x, f->y, c->B, t, &l)) < 0)
                    goto done;
                if (isfinite(l.total)) {
                    nn_zero_grad(f->m);
                    if ((rc = nn_lm_backward(f->m, f->a)) < 0)
                        goto done;
                    if (c->clip > 0)
                        optim_clip_grad_norm(f->opt, c->clip);
                    optim_step(f->opt);
                }
            }
            if (!isfinite(l.total)) {
                rc = err_set(KF_EINVAL, "%s epoch %d step %ld: the loss became %g: training diverged; the inputs were "
                             "finite: try a lower --lm-lr", stage, e + 1, k + 1, l.total);
                goto done;
            }
            sum += l.ce;
            nsteps++;
            smooth = nsteps == 1 ? l.ce : 0.98 * smooth + 0.02 * l.ce;
            report_step(c, stage, e + 1, epochs, k + 1, nch, smooth);
        }
        data_lm_dispose(&lm);
        double vloss, vacc;
        if ((rc = fit_lm_eval(c, f, valid, &vloss, &vacc)) < 0)
            goto done;
        report_epoch rec = {.stage = stage, .epoch = e + 1, .train_loss = nsteps ? sum / nsteps : NAN,
                            .valid_loss = vloss, .accuracy = vacc, .micro_f1 = NAN, .macro_f1 = NAN,
                            .subset_accuracy = NAN, .label_accuracy = NAN,
                            .lr = lr, .seconds = fit_now() - t0};
        if ((rc = report_history_add(c->hist, &rec)) < 0)
            goto done;
        log_info("fit", "epoch done", "{s:s,s:i,s:i,s:f,s:f,s:f,s:f}", "stage", stage, "epoch", e + 1, "epochs",
                 epochs, "trainLoss", rec.train_loss, "validLoss", isfinite(vloss) ? vloss : -1.0, "accuracy",
                 isfinite(vacc) ? vacc : -1.0, "seconds", rec.seconds);
        if (c->on_epoch && (rc = c->on_epoch(c->cb, stage, e + 1)) < 0)
            goto done;
    }
done:
    if (graph)
        c->be->graph_free(c->be, graph);
    data_lm_dispose(&lm);
    return rc;
}

/* ---- classifier ---- */

int fit_clf_init(fit_clf *f, fit_ctx *c, nn_model *m, head_clf *head, int L, int multi_label)
{
    int rc = 0;
    memset(f, 0, sizeof *f);
    f->m = m;
    f->head = head;
    f->L = L;
    f->multi_label = multi_label;
    const int NL = nn_model_config(m)->layers;
    const nn_tensor *t = nn_tensors(m), *ht = head_tensors(head);
    int nt = nn_tensor_count(m), nh = head_tensor_count(head), k = 0;
    optim_param *p = calloc((size_t)(nt + nh), sizeof *p);
    f->names = calloc((size_t)(nt + nh + 1), sizeof *f->names);
    if (!p || !f->names) {
        rc = err_set(KF_ENOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < nt; i++) {
        if (strncmp(t[i].name, "1.decoder.", 10) == 0)
            continue;
        /* fastai awd_lstm_clas_split: embedding 0, rnn l -> l+1, head NL+1 */
        int group = t[i].group >= NL ? 0 : t[i].group + 1;
        if (!(f->names[k] = modelio_name(t[i].name, 1))) {
            rc = err_set(KF_ENOMEM, "out of memory");
            goto done;
        }
        p[k] = (optim_param){.name = f->names[k], .param = nn_params(m) + t[i].offset,
                             .grad = nn_grads(m) + t[i].offset, .n = t[i].numel, .group = group};
        k++;
    }
    for (int i = 0; i < nh; i++) {
        if (!(f->names[k] = strdup(ht[i].name))) {
            rc = err_set(KF_ENOMEM, "out of memory");
            goto done;
        }
        /* BatchNorm parameters: no weight decay, trained even when frozen (fastai train_bn) */
        p[k] = (optim_param){.name = f->names[k], .param = head_params(head) + ht[i].offset,
                             .grad = head_grads(head) + ht[i].offset, .n = ht[i].numel, .group = NL + 1,
                             .no_wd = ht[i].no_wd, .force_train = ht[i].no_wd};
        k++;
    }
    f->n_groups = NL + 2;
    optim_hparams hp = OPTIM_HPARAMS_DEFAULT;
    hp.wd = c->wd;
    if ((rc = optim_create(&f->opt, &(optim_config){.params = p, .n = (size_t)k, .n_groups = f->n_groups,
                                                    .hp = hp, .be = c->be})) < 0)
        goto done;
    head_sentence_config sc = head_sentence_config_default();
    sc.bptt = c->bptt;
    if ((rc = head_sentence_new(&f->s, m, &sc, c->B)) < 0)
        goto done;
done:
    free(p);
    if (rc < 0)
        fit_clf_dispose(f);
    return rc;
}

void fit_clf_dispose(fit_clf *f)
{
    if (!f)
        return;
    head_sentence_free(f->s);
    optim_free(f->opt);
    for (int i = 0; f->names && f->names[i]; i++)
        free(f->names[i]);
    free(f->names);
    memset(f, 0, sizeof *f);
}

long fit_clf_steps(const fit_ctx *c, const data_set *d) { return (long)(d->train.n / (size_t)c->B); }

int fit_clf_plan(int epochs, int freeze[4], int n[4], double mult[4])
{
    /* ULMFiT: lr, then lr/2 with freeze_to(-2), lr/4 with freeze_to(-3), lr/20 unfrozen. */
    static const int fz[4] = {-1, -2, -3, 0};
    static const double mu[4] = {1.0, 0.5, 0.25, 0.05};
    static const int pick[4][4] = {{0}, {0, 3}, {0, 1, 3}, {0, 1, 2, 3}};
    int phases = epochs >= 4 ? 4 : epochs < 1 ? 1 : epochs;
    for (int k = 0; k < phases; k++) {
        int src = pick[phases - 1][k];
        freeze[k] = fz[src];
        mult[k] = mu[src];
        n[k] = 1;
    }
    if (epochs > 4)
        n[3] = epochs - 3;
    return phases;
}

/* Targets of a batch in row order perm: multi (b,L) floats; single (b) int32 and floats. */
static void batch_targets(float *ym, int32_t *ys, float *yf, const fit_clf *f, const float *y,
                          const size_t *perm, int b)
{
    for (int i = 0; i < b; i++) {
        if (f->multi_label) {
            memcpy(ym + (size_t)i * f->L, y + perm[i] * (size_t)f->L, (size_t)f->L * sizeof *ym);
        } else {
            ys[i] = (int32_t)y[perm[i]];
            yf[i] = y[perm[i]];
        }
    }
}

/* Forward (and loss) of one batch; training adds masks. Returns the loss in *loss. */
static int clf_forward(fit_ctx *c, fit_clf *f, const int32_t *tok, int b, int S, bool training, uint64_t step,
                       const head_targets *y, double *loss)
{
    int rc, T;
    head_forward_opts fo = {.training = training, .seed = c->seed, .step = step};
    if ((rc = head_sentence_forward(f->s, tok, b, S, &fo)) < 0)
        return rc;
    const float *out = head_sentence_output(f->s, &T);
    if (training)
        head_clf_masks_sample(f->head, b, c->seed, step);
    if ((rc = head_clf_forward(f->head, out, head_sentence_pad(f->s), b, T, training)) < 0)
        return rc;
    return y ? head_clf_loss(f->head, loss, y, 1.0f) : 0;
}

int fit_clf_eval(fit_ctx *c, fit_clf *f, const data_docs *docs, const float *y, metrics_summary *s)
{
    int rc = 0;
    size_t *order = malloc((docs->n ? docs->n : 1) * sizeof *order), *perm = malloc((size_t)c->B * sizeof *perm);
    float *ym = malloc((size_t)c->B * f->L * sizeof *ym), *yf = malloc((size_t)c->B * sizeof *yf);
    float *logits = malloc((size_t)c->B * f->L * sizeof *logits), *probs = malloc((size_t)c->B * f->L * sizeof *probs);
    int32_t *ys = malloc((size_t)c->B * sizeof *ys), *pred = malloc((size_t)c->B * f->L * sizeof *pred);
    uint8_t *predm = malloc((size_t)c->B * f->L);
    metrics_acc acc = {0};
    memset(s, 0, sizeof *s);
    if (!order || !perm || !ym || !yf || !logits || !probs || !ys || !pred || !predm) {
        rc = err_set(KF_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = metrics_init(&acc, f->L, f->multi_label)) < 0 || (rc = data_clf_order(order, docs, c->B, 0)) < 0)
        goto done;
    acc.thresh = fit_threshold(c);
    for (size_t i = 0; i < docs->n; i += (size_t)c->B) {
        int b = (int)(docs->n - i < (size_t)c->B ? docs->n - i : (size_t)c->B), S;
        int32_t *tok = NULL;
        uint8_t *pad = NULL;
        if ((rc = data_clf_batch(&tok, &pad, &S, perm, docs, order + i, b, c->bptt, 1)) < 0)
            goto done;
        batch_targets(ym, ys, yf, f, y, perm, b);
        head_targets ht = {.multi = f->multi_label ? ym : NULL, .single = f->multi_label ? NULL : ys};
        double loss = 0;
        rc = clf_forward(c, f, tok, b, S, false, 0, &ht, &loss);
        free(tok);
        free(pad);
        if (rc < 0)
            goto done;
        c->be->download(c->be, logits, head_clf_logits(f->head), (size_t)b * f->L * sizeof *logits);
        if (f->multi_label)
            head_predict_multi(predm, probs, logits, (size_t)b * f->L, (float)fit_threshold(c));
        else
            head_predict_single(pred, probs, logits, b, f->L);
        metrics_add(&acc, probs, f->multi_label ? ym : yf, b, loss);
    }
    rc = metrics_summarize(s, &acc);
done:
    metrics_dispose(&acc);
    free(order);
    free(perm);
    free(ym);
    free(yf);
    free(logits);
    free(probs);
    free(ys);
    free(pred);
    free(predm);
    return rc;
}

/* Allocates the encoder outputs, kept-chunk activations and pad mask for the longest text of
 * either set, so the epochs allocate no device memory. */
static int fit_clf_reserve(fit_clf *f, int B, const data_docs *train, const data_docs *valid)
{
    size_t longest = 1;
    for (size_t i = 0; i < train->n; i++)
        longest = train->v[i].n > longest ? train->v[i].n : longest;
    for (size_t i = 0; i < valid->n; i++)
        longest = valid->v[i].n > longest ? valid->v[i].n : longest;
    if (longest > (size_t)1 << 24)
        return err_set(KF_EINVAL, "a text of %zu tokens is too long", longest);
    int rc, S = (int)longest;
    if ((rc = head_sentence_reserve(f->s, B, S)) < 0)
        return rc;
    return head_clf_reserve(f->head, B, head_sentence_kept_len(f->s, S));
}

int fit_clf_run(fit_ctx *c, fit_clf *f, const data_set *d, int epochs, int start_epoch, double lr,
                metrics_summary *final)
{
    int rc = 0, freeze[4], nph[4];
    double mult[4];
    const int phases = fit_clf_plan(epochs, freeze, nph, mult), G = f->n_groups;
    const size_t n = d->train.n;
    const long nb = (long)(n / (size_t)c->B);
    size_t *order = malloc((n ? n : 1) * sizeof *order), *perm = malloc((size_t)c->B * sizeof *perm);
    float *ym = malloc((size_t)c->B * f->L * sizeof *ym), *yf = malloc((size_t)c->B * sizeof *yf);
    int32_t *ys = malloc((size_t)c->B * sizeof *ys);
    optim_cycle cyc = OPTIM_CYCLE_DEFAULT;
    cyc.mom_hi = 0.8; /* ULMFiT's classifier momentum (0.8, 0.7, 0.8) */
    cyc.mom_lo = 0.7;
    memset(final, 0, sizeof *final);
    if (!order || !perm || !ym || !yf || !ys) {
        rc = err_set(KF_ENOMEM, "out of memory");
        goto done;
    }
    if (nb < 1 || c->B < 2) {
        rc = err_set(KF_EINVAL, "classifier: %zu training examples for batch size %d (need a full batch of at "
                                "least 2)", n, c->B);
        goto done;
    }
    if ((rc = fit_clf_reserve(f, c->B, &d->train, &d->valid)) < 0)
        goto done;
    int e = 0; /* epoch index across phases */
    for (int ph = 0; ph < phases; ph++) {
        double lr_max[NN_MAX_LAYERS + 2], hi = lr * mult[ph];
        if (ph == 0) /* fit_one_cycle(1, lr): the same lr everywhere (only the head trains) */
            for (int g = 0; g < G; g++)
                lr_max[g] = hi;
        else /* slice(hi/2.6^(G-1), hi): discriminative rates, factor 2.6 per group */
            optim_even_mults(lr_max, hi / pow(2.6, G - 1), hi, G);
        optim_freeze_to(f->opt, freeze[ph]);
        const int encoder_trains = freeze[ph] == 0 || G + freeze[ph] < G - 1;
        for (int pe = 0; pe < nph[ph]; pe++, e++) {
            if (e < start_epoch)
                continue;
            double t0 = fit_now(), sum = 0, smooth = 0;
            if ((rc = data_clf_order(order, &d->train, c->B, mix(c->seed, 2000 + (uint64_t)e))) < 0)
                goto done;
            for (long k = 0; k < nb; k++) {
                int32_t *tok = NULL;
                uint8_t *pad = NULL;
                int S;
                if ((rc = stopped(c)) < 0)
                    goto done;
                if ((rc = data_clf_batch(&tok, &pad, &S, perm, &d->train, order + (size_t)k * c->B, c->B, c->bptt,
                                         1)) < 0)
                    goto done;
                batch_targets(ym, ys, yf, f, d->train_y, perm, c->B);
                head_targets ht = {.multi = f->multi_label ? ym : NULL, .single = f->multi_label ? NULL : ys};
                apply_cycle(f->opt, lr_max, &cyc, (double)(pe * nb + k) / ((double)nph[ph] * nb));
                double loss = 0;
                uint64_t step = (uint64_t)e * 1000003u + (uint64_t)k;
                rc = clf_forward(c, f, tok, c->B, S, true, step, &ht, &loss);
                free(tok);
                free(pad);
                if (rc < 0)
                    goto done;
                if (!isfinite(loss)) {
                    rc = err_set(KF_EINVAL, "classifier epoch %d step %ld: the loss became %g: training diverged; the "
                                 "inputs were finite: try a lower --lr", e + 1, k + 1, loss);
                    goto done;
                }
                nn_zero_grad(f->m);
                head_zero_grad(f->head);
                if ((rc = head_clf_backward(f->head, head_sentence_dout(f->s))) < 0)
                    goto done;
                if (encoder_trains && (rc = head_sentence_backward(f->s)) < 0)
                    goto done;
                if (c->clip > 0)
                    optim_clip_grad_norm(f->opt, c->clip);
                optim_step(f->opt);
                sum += loss;
                smooth = k == 0 ? loss : 0.98 * smooth + 0.02 * loss;
                report_step(c, "classifier", e + 1, epochs, k + 1, nb, smooth);
            }
            metrics_summary_dispose(final);
            if ((rc = fit_clf_eval(c, f, &d->valid, d->valid_y, final)) < 0)
                goto done;
            report_epoch rec = {.stage = "classifier", .epoch = e + 1, .train_loss = sum / nb,
                                .valid_loss = final->loss, .accuracy = final->accuracy,
                                .subset_accuracy = final->subset_accuracy, .label_accuracy = final->label_accuracy,
                                .micro_f1 = final->micro_f1, .macro_f1 = final->macro_f1, .lr = hi,
                                .seconds = fit_now() - t0};
            if ((rc = report_history_add(c->hist, &rec)) < 0)
                goto done;
            /* (a NaN field is left out of the line: accuracy or subset/label accuracy, by the mode) */
            log_info("fit", "epoch done", "{s:s,s:i,s:i,s:i,s:f,s:f,s:f,s:f,s:f,s:f,s:f}", "stage", "classifier",
                     "epoch", e + 1, "epochs", epochs, "freezeTo", freeze[ph], "trainLoss", rec.train_loss,
                     "validLoss", rec.valid_loss, "accuracy", rec.accuracy, "subsetAccuracy", rec.subset_accuracy,
                     "labelAccuracy", rec.label_accuracy, "microF1", rec.micro_f1, "seconds", rec.seconds);
            if (c->on_epoch && (rc = c->on_epoch(c->cb, "classifier", e + 1)) < 0)
                goto done;
        }
    }
    if (!final->labels) /* resumed after the last epoch: measure again */
        rc = fit_clf_eval(c, f, &d->valid, d->valid_y, final);
done:
    free(order);
    free(perm);
    free(ym);
    free(yf);
    free(ys);
    return rc;
}

int fit_clf_predict(fit_ctx *c, fit_clf *f, const int32_t *ids, size_t n, float *probs)
{
    int rc;
    data_doc doc = {.ids = (int32_t *)ids, .n = n};
    data_docs docs = {.v = &doc, .n = 1};
    size_t idx = 0, perm;
    int32_t *tok = NULL, pred[1];
    uint8_t *pad = NULL;
    int S;
    float *logits = malloc((size_t)f->L * sizeof *logits);
    uint8_t *pm = malloc((size_t)f->L);
    if (!logits || !pm) {
        rc = err_set(KF_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = data_clf_batch(&tok, &pad, &S, &perm, &docs, &idx, 1, c->bptt, 1)) < 0)
        goto done;
    if ((rc = clf_forward(c, f, tok, 1, S, false, 0, NULL, NULL)) < 0)
        goto done;
    c->be->download(c->be, logits, head_clf_logits(f->head), (size_t)f->L * sizeof *logits);
    if (f->multi_label)
        head_predict_multi(pm, probs, logits, (size_t)f->L, (float)fit_threshold(c));
    else
        head_predict_single(pred, probs, logits, 1, f->L);
done:
    free(tok);
    free(pad);
    free(logits);
    free(pm);
    return rc;
}
