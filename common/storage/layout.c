#include "layout.h"

#include "contract.h"
#include "err.h"
#include "uri.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A name used as one path segment: no '/', not "." or "..", printable, not empty. */
static int segment_ok(const char *s)
{
    if (!s || !*s || strlen(s) > 253 || !strcmp(s, ".") || !strcmp(s, ".."))
        return 0;
    for (const char *p = s; *p; p++)
        if (*p == '/' || (unsigned char)*p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

/* A relative folder: segments joined by single '/', each segment_ok (a trailing '/' is allowed). */
static int rel_dir_ok(const char *s)
{
    if (!s || !*s || *s == '/' || strstr(s, "://"))
        return 0;
    for (const char *seg = s; *seg;) {
        const char *end = strchr(seg, '/');
        size_t n = end ? (size_t)(end - seg) : strlen(seg);
        char buf[256];
        if (n == 0 || n >= sizeof buf)
            return 0;
        memcpy(buf, seg, n);
        buf[n] = '\0';
        if (!segment_ok(buf))
            return 0;
        seg += n + (end ? 1 : 0);
    }
    return 1;
}

static char *join(const char *a, const char *b)
{
    char *s = NULL;
    size_t n = strlen(a);
    return asprintf(&s, "%s%s%s", a, n && a[n - 1] == '/' ? "" : "/", b) < 0 ? NULL : s;
}

static char *pick(const char *override, const char *base, const char *name)
{
    return override ? strdup(override) : join(base, name);
}

int storage_layout_init(storage_layout *out, const storage_layout_options *o)
{
    memset(out, 0, sizeof *out);
    const char *model_dir = o->model_dir ? o->model_dir : "models";
    const char *job = o->job ? o->job : "default", *run = o->run ? o->run : "1";
    char *inputs = NULL, *tmp = NULL;
    int rc = 0;
    if (!o->bucket || !*o->bucket)
        return err_set(KF_EINVAL, "layout: no bucket (--bucket-name) given");
    if (contract_language_check(o->lang) < 0)
        return err_wrap(KF_EINVAL, "layout"); /* the CRD's rule (common/contract.c) */
    if (!rel_dir_ok(model_dir))
        return err_set(KF_EINVAL, "layout: model dir \"%s\" must be a relative folder without \"..\"", model_dir);
    if (!segment_ok(job))
        return err_set(KF_EINVAL, "layout: job name \"%s\" must be one path segment", job);
    if (!segment_ok(run))
        return err_set(KF_EINVAL, "layout: run \"%s\" must be one path segment", run);

    /* The root: a bare bucket name means gs://; validate what it says through the URI parser. */
    if (strchr(o->bucket, '/') || strstr(o->bucket, "://"))
        out->root = strdup(o->bucket);
    else if (asprintf(&out->root, "gs://%s", o->bucket) < 0)
        out->root = NULL;
    if (!out->root)
        goto oom;
    size_t n = strlen(out->root);
    while (n > 1 && out->root[n - 1] == '/' && !(n >= 3 && !strcmp(out->root + n - 3, "://")))
        out->root[--n] = '\0';
    storage_uri u;
    if ((rc = storage_uri_parse(&u, out->root))) {
        rc = err_wrap(rc, "layout: --bucket-name \"%s\"", o->bucket);
        goto done;
    }
    storage_uri_dispose(&u);

    inputs = o->data_dir ? strdup(o->data_dir) : join(out->root, o->lang);
    if (!inputs || !(tmp = join(inputs, "pretrained")))
        goto oom;
    if (!(out->lm = pick(o->lm, tmp, "lm.safetensors")) || !(out->vocab_in = pick(o->vocab_in, tmp, "vocab.txt")))
        goto oom;
    free(tmp);
    if (!(tmp = join(inputs, "data")))
        goto oom;
    if (!(out->train = pick(o->train, tmp, "train.csv")) || !(out->valid = pick(o->valid, tmp, "valid.csv")) ||
        !(out->corpus = pick(o->corpus, tmp, "corpus.txt")))
        goto oom;
    free(tmp), tmp = NULL;
    int mlen = (int)strlen(model_dir) - (model_dir[strlen(model_dir) - 1] == '/');
    if (o->output_dir) {
        size_t m = strlen(o->output_dir);
        if (asprintf(&out->output_dir, "%s%s", o->output_dir, m && o->output_dir[m - 1] == '/' ? "" : "/") < 0)
            out->output_dir = NULL;
    } else if (asprintf(&out->output_dir, "%s/%.*s/%s/%s/%s/", out->root, mlen, model_dir, o->lang, job, run) < 0) {
        out->output_dir = NULL;
    }
    if (!out->output_dir || !(out->model = storage_layout_output(out, "model.safetensors")) ||
        !(out->vocab = storage_layout_output(out, "vocab.txt")) ||
        !(out->config = storage_layout_output(out, "config.json")) ||
        !(out->metrics = storage_layout_output(out, "metrics.json")) ||
        !(out->history = storage_layout_output(out, "history.csv")) ||
        !(out->curves = storage_layout_output(out, "curves.svg")))
        goto oom;
    goto done;
oom:
    rc = err_set(KF_ENOMEM, "layout: out of memory");
done:
    free(inputs), free(tmp);
    if (rc)
        storage_layout_dispose(out);
    return rc;
}

void storage_layout_dispose(storage_layout *l)
{
    if (!l)
        return;
    char **fields[] = {&l->root,  &l->lm,     &l->vocab_in, &l->train,   &l->valid,   &l->corpus, &l->output_dir,
                       &l->model, &l->vocab, &l->config,   &l->metrics, &l->history, &l->curves};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        free(*fields[i]);
    memset(l, 0, sizeof *l);
}

char *storage_layout_output(const storage_layout *l, const char *name)
{
    char *s = NULL;
    if (!l || !l->output_dir || !name)
        return NULL;
    return asprintf(&s, "%s%s", l->output_dir, name) < 0 ? NULL : s;
}
