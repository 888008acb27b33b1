/* loader: fetch and load a served model. See loader.h. */
#include "loader.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "storage/uri.h"

char *loader_folder(const char *uri)
{
    size_t n = strlen(uri);
    const char *ext = ".safetensors";
    if (n > strlen(ext) && strcmp(uri + n - strlen(ext), ext) == 0) {
        const char *slash = strrchr(uri, '/');
        return slash ? strndup(uri, (size_t)(slash - uri) + 1) : strdup("./");
    }
    char *s = NULL;
    if (asprintf(&s, "%s%s", uri, n && uri[n - 1] == '/' ? "" : "/") < 0)
        return NULL;
    return s;
}

/* A local path for folder + name: the file itself for local storage, else a download into dir. */
static int fetch(storage *st, const storage_uri *u, const char *folder, const char *name, const char *dir, char **local)
{
    char *uri = NULL;
    int rc = 0;
    *local = NULL;
    if (asprintf(&uri, "%s%s", folder, name) < 0)
        return err_set(KF_ENOMEM, "out of memory");
    if (u->kind == STORAGE_URI_FILE) {
        storage_uri fu;
        if ((rc = storage_uri_parse(&fu, uri)) == 0) {
            struct stat sb;
            if (stat(fu.path, &sb) != 0)
                rc = err_set(errno == ENOENT ? KF_ENOTFOUND : KF_EIO, "%s: %s", uri, strerror(errno));
            else if (!(*local = strdup(fu.path)))
                rc = err_set(KF_ENOMEM, "out of memory");
            storage_uri_dispose(&fu);
        }
    } else if (asprintf(local, "%s/%s", dir, name) < 0) {
        *local = NULL;
        rc = err_set(KF_ENOMEM, "out of memory");
    } else {
        rc = storage_get(st, uri, *local, NULL);
    }
    free(uri);
    return rc;
}

/* config.json's string or integer field as text, or NULL. Caller frees. */
static char *config_text(const json_t *cfg, const char *key)
{
    const json_t *v = json_object_get(cfg, key);
    char *s = NULL;
    if (json_is_string(v) && *json_string_value(v))
        return strdup(json_string_value(v));
    if (json_is_integer(v) && asprintf(&s, "%lld", (long long)json_integer_value(v)) >= 0)
        return s;
    return NULL;
}

int loader_load(batcher_model **out, const loader_options *o)
{
    int rc;
    storage_uri u = {0};
    char *folder = loader_folder(o->uri), *dir = NULL, *model = NULL, *vocab = NULL, *cfg_uri = NULL, *cfg_text = NULL;
    json_t *cfg = NULL;
    batcher_model *m = calloc(1, sizeof *m);
    *out = NULL;
    if (!folder || !m) {
        rc = err_set(KF_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = storage_uri_parse(&u, folder)) < 0)
        goto done;
    if (u.kind != STORAGE_URI_FILE) {
        const char *tmp = o->work_dir ? o->work_dir : getenv("TMPDIR");
        if (asprintf(&dir, "%s/kubefit-serve-XXXXXX", tmp && *tmp ? tmp : "/tmp") < 0) {
            dir = NULL;
            rc = err_set(KF_ENOMEM, "out of memory");
            goto done;
        }
        if (!mkdtemp(dir)) {
            rc = err_set(KF_EIO, "%s: cannot create a download folder: %s", dir, strerror(errno));
            free(dir);
            dir = NULL;
            goto done;
        }
    }
    if ((rc = fetch(o->st, &u, folder, "model.safetensors", dir, &model)) < 0 ||
        (rc = fetch(o->st, &u, folder, "vocab.txt", dir, &vocab)) < 0)
        goto done;
    size_t len = 0;
    if (asprintf(&cfg_uri, "%sconfig.json", folder) < 0) {
        cfg_uri = NULL;
        rc = err_set(KF_ENOMEM, "out of memory");
        goto done;
    }
    rc = storage_read(o->st, cfg_uri, &cfg_text, &len);
    if (rc == KF_ENOTFOUND)
        rc = 0; /* optional */
    else if (rc < 0)
        goto done;
    if (cfg_text)
        cfg = json_loadb(cfg_text, len, 0, NULL);
    if (cfg_text && !json_is_object(cfg)) {
        rc = err_set(KF_EINVAL, "%s: not a JSON object", cfg_uri);
        goto done;
    }
    char *model_uri = NULL;
    if (asprintf(&model_uri, "%smodel.safetensors", folder) < 0) {
        rc = err_set(KF_ENOMEM, "out of memory");
        goto done;
    }
    infer_options io = o->infer;
    io.model_path = model;
    io.vocab_path = vocab;
    io.name = model_uri;
    if (!io.lang)
        io.lang = json_string_value(json_object_get(cfg, "lang"));
    m->n = o->replicas > 0 ? o->replicas : 1;
    if (!(m->models = calloc((size_t)m->n, sizeof *m->models)))
        rc = err_set(KF_ENOMEM, "out of memory");
    for (int i = 0; rc == 0 && i < m->n; i++)
        rc = infer_model_load(&m->models[i], &io);
    free(model_uri);
    if (rc < 0)
        goto done;
    m->name = o->name ? strdup(o->name) : config_text(cfg, "job");
    if (!m->name)
        m->name = strdup("kubefit");
    m->version = config_text(cfg, "run");
    if (!m->version)
        m->version = strdup("1");
    m->uri = strdup(folder);
    if (!m->name || !m->version || !m->uri)
        rc = err_set(KF_ENOMEM, "out of memory");
done:
    if (dir) { /* the model is in memory now (or failed): the downloads go */
        if (model)
            unlink(model);
        if (vocab)
            unlink(vocab);
        rmdir(dir);
    }
    storage_uri_dispose(&u);
    json_decref(cfg);
    free(cfg_text);
    free(cfg_uri);
    free(folder);
    free(dir);
    free(model);
    free(vocab);
    if (rc < 0)
        batcher_model_free(m);
    else
        *out = m;
    return rc;
}
