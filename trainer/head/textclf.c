/* textclf: the whole classifier (see textclf.h).
 * Dimension legend: B batch, S padded length, T kept length, L labels. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "textclf.h"

struct head_textclf {
    nn_model *m;
    head_clf *clf;
    head_sentence *se;
    head_param *params;
    char **names; /* owned strings behind params[].name / .alias */
    int n_params, n_names;
    int B, T;
    bool fwd_done, loss_done;
    bool training;
};

/* "0.X" -> "0.module.X" (the SentenceEncoder wraps the AWD-LSTM); NULL for LM-only names. */
static int clas_name(head_textclf *tc, const char **out, const char *nn_name)
{
    *out = NULL;
    if (!nn_name || strncmp(nn_name, "0.", 2) != 0)
        return 0;
    char *s = NULL;
    if (asprintf(&s, "0.module.%s", nn_name + 2) < 0)
        return err_set(KF_ENOMEM, "textclf: out of memory");
    tc->names[tc->n_names++] = s;
    *out = s;
    return 0;
}

static int build_params(head_textclf *tc)
{
    const int NL = nn_model_config(tc->m)->layers;
    const int n_nn = nn_tensor_count(tc->m), n_head = head_tensor_count(tc->clf),
              n_buf = head_buffer_count(tc->clf);
    const nn_tensor *nt = nn_tensors(tc->m);
    int rc = 0, n = 0;
    tc->params = calloc((size_t)(n_nn + n_head + n_buf), sizeof *tc->params);
    tc->names = calloc((size_t)(2 * n_nn), sizeof *tc->names);
    if (!tc->params || !tc->names)
        return err_set(KF_ENOMEM, "textclf: out of memory");
    for (int i = 0; i < n_nn; i++) {
        head_param *p = &tc->params[n];
        if ((rc = clas_name(tc, &p->name, nt[i].name)))
            return rc;
        if (!p->name)
            continue; /* the LM decoder bias: not part of the classifier */
        for (int a = 0; a < 3 && nt[i].aliases[a] && !p->alias; a++)
            if ((rc = clas_name(tc, &p->alias, nt[i].aliases[a])))
                return rc;
        p->param = nn_params(tc->m) + nt[i].offset;
        p->grad = nn_grads(tc->m) + nt[i].offset;
        p->numel = nt[i].numel, p->ndim = nt[i].ndim;
        p->shape[0] = nt[i].shape[0], p->shape[1] = nt[i].shape[1];
        p->group = nt[i].group >= NL ? 0 : nt[i].group + 1; /* LM split -> clas split */
        p->no_wd = nt[i].no_wd;
        n++;
    }
    for (int pass = 0; pass < 2; pass++) {
        const nn_tensor *ht = pass ? head_buffer_tensors(tc->clf) : head_tensors(tc->clf);
        float *base = pass ? head_buffers(tc->clf) : head_params(tc->clf);
        for (int i = 0; i < (pass ? n_buf : n_head); i++) {
            head_param *p = &tc->params[n++];
            p->name = ht[i].name;
            p->param = base + ht[i].offset;
            p->grad = pass ? NULL : head_grads(tc->clf) + ht[i].offset;
            p->numel = ht[i].numel, p->ndim = ht[i].ndim;
            p->shape[0] = ht[i].shape[0], p->shape[1] = ht[i].shape[1];
            p->group = NL + 1;
            p->no_wd = ht[i].no_wd || pass;
            p->buffer = pass;
        }
    }
    tc->n_params = n;
    return 0;
}

int head_textclf_new(head_textclf **out, nn_model *m, head_clf *clf,
                     const head_sentence_config *sc, int max_batch)
{
    head_textclf *tc = NULL;
    int rc = 0;
    *out = NULL;
    if (head_clf_config(clf)->emb != nn_model_config(m)->emb)
        return err_set(KF_EINVAL, "textclf: head input emb %d != encoder emb %d",
                       head_clf_config(clf)->emb, nn_model_config(m)->emb);
    if (head_clf_config(clf)->bptt != sc->bptt)
        return err_set(KF_EINVAL, "textclf: head bptt %d != sentence bptt %d",
                       head_clf_config(clf)->bptt, sc->bptt);
    if (sc->pad_token != nn_model_config(m)->pad_token)
        return err_set(KF_EINVAL, "textclf: pad token %d != encoder pad token %d", sc->pad_token,
                       nn_model_config(m)->pad_token);
    tc = calloc(1, sizeof *tc);
    if (!tc)
        return err_set(KF_ENOMEM, "textclf: out of memory");
    tc->m = m;
    tc->clf = clf;
    if ((rc = head_sentence_new(&tc->se, m, sc, max_batch)) || (rc = build_params(tc)))
        goto done;
    *out = tc;
    tc = NULL;
done:
    head_textclf_free(tc);
    return rc;
}

void head_textclf_free(head_textclf *tc)
{
    if (!tc)
        return;
    head_sentence_free(tc->se);
    for (int i = 0; i < tc->n_names; i++)
        free(tc->names[i]);
    free(tc->names);
    free(tc->params);
    free(tc);
}

void head_textclf_zero_grad(head_textclf *tc)
{
    nn_zero_grad(tc->m);
    head_zero_grad(tc->clf);
}

int head_textclf_forward(head_textclf *tc, const int32_t *tokens, int B, int S,
                         const head_forward_opts *o)
{
    int rc;
    bool training = o && o->training;
    tc->fwd_done = tc->loss_done = false;
    if ((rc = head_sentence_forward(tc->se, tokens, B, S, o)))
        return rc;
    int T = 0;
    const float *enc = head_sentence_output(tc->se, &T);
    if (training && !o->set_masks)
        head_clf_masks_sample(tc->clf, B, o->seed, o->step);
    if ((rc = head_clf_forward(tc->clf, enc, head_sentence_pad(tc->se), B, T, training)))
        return rc;
    tc->B = B, tc->T = T, tc->training = training;
    tc->fwd_done = true;
    return 0;
}

head_sentence *head_textclf_sentence(head_textclf *tc) { return tc->se; }
float *head_textclf_logits(head_textclf *tc) { return head_clf_logits(tc->clf); }

int head_textclf_loss(head_textclf *tc, head_losses *out, const head_targets *y)
{
    int rc;
    if (!tc->fwd_done)
        return err_set(KF_EINVAL, "textclf: loss called before a forward");
    if ((rc = head_clf_loss(tc->clf, &out->task, y, 1.0f)))
        return rc;
    out->reg = head_sentence_reg(tc->se);
    out->total = out->task + out->reg;
    tc->loss_done = true;
    return 0;
}

int head_textclf_backward(head_textclf *tc)
{
    int rc;
    if (!tc->loss_done)
        return err_set(KF_EINVAL, "textclf: backward needs a forward and a loss first");
    tc->loss_done = false; /* d_out accumulates: one backward per forward */
    if ((rc = head_clf_backward(tc->clf, head_sentence_dout(tc->se))))
        return rc;
    return head_sentence_backward(tc->se);
}

int head_textclf_param_count(const head_textclf *tc) { return tc->n_params; }
const head_param *head_textclf_params(const head_textclf *tc) { return tc->params; }
int head_textclf_group_count(const head_textclf *tc)
{
    return nn_model_config(tc->m)->layers + 2;
}
