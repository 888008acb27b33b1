#include "kubeconfig.h"

#include "err.h"
#include "fileio.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* ---- a read-only view of a libyaml document ---- */

static yaml_node_t *node_at(yaml_document_t *d, int id) { return id ? yaml_document_get_node(d, id) : NULL; }

static const char *scalar(yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static yaml_node_t *map_get(yaml_document_t *d, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        const char *k = scalar(node_at(d, p->key));
        if (k && strcmp(k, key) == 0)
            return node_at(d, p->value);
    }
    return NULL;
}

static const char *map_str(yaml_document_t *d, yaml_node_t *map, const char *key)
{
    return scalar(map_get(d, map, key));
}

/* In a list of {name: X, <field>: {...}} return the <field> mapping of the entry named name. */
static yaml_node_t *named_entry(yaml_document_t *d, yaml_node_t *list, const char *name, const char *field)
{
    if (!list || list->type != YAML_SEQUENCE_NODE)
        return NULL;
    for (yaml_node_item_t *it = list->data.sequence.items.start; it < list->data.sequence.items.top; it++) {
        yaml_node_t *e = node_at(d, *it);
        const char *n = map_str(d, e, "name");
        if (n && strcmp(n, name) == 0)
            return map_get(d, e, field);
    }
    return NULL;
}

/* ---- helpers ---- */

char *kube_base64_decode(const char *s, size_t *len)
{
    size_t n = strlen(s);
    char *out = malloc(n / 4 * 3 + 4);
    if (!out)
        return NULL;
    uint32_t acc = 0;
    int bits = 0, pad = 0;
    size_t o = 0;
    for (const char *p = s; *p; p++) {
        int v;
        char c = *p;
        if (c >= 'A' && c <= 'Z') v = c - 'A';
        else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
        else if (c >= '0' && c <= '9') v = c - '0' + 52;
        else if (c == '+') v = 62;
        else if (c == '/') v = 63;
        else if (c == '=') { pad++; continue; }
        else if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
        else goto bad;
        if (pad)
            goto bad; /* data after padding */
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    if (bits >= 6 || pad > 2)
        goto bad;
    out[o] = '\0';
    if (len)
        *len = o;
    return out;
bad:
    free(out);
    return NULL;
}

static char *resolve_path(const char *base_dir, const char *p)
{
    char *out = NULL;
    if (p[0] == '/' || !base_dir || !*base_dir)
        return strdup(p);
    if (asprintf(&out, "%s/%s", base_dir, p) < 0)
        return NULL;
    return out;
}

static int read_file(const char *path, char **out, size_t *len)
{
    size_t n = 0;
    int rc = file_read_all(out, &n, path);
    if (len)
        *len = n;
    return rc;
}

/* field_data (base64 PEM) wins over field (a path). */
static int take_pem(char **pem, char **file, yaml_document_t *d, yaml_node_t *m, const char *field,
                    const char *base_dir)
{
    char key[64];
    snprintf(key, sizeof key, "%s-data", field);
    const char *data = map_str(d, m, key), *path = map_str(d, m, field);
    if (data && *data) {
        *pem = kube_base64_decode(data, NULL);
        if (!*pem)
            return err_set(KF_EINVAL, "kubeconfig: %s is not valid base64", key);
    } else if (path && *path) {
        *file = resolve_path(base_dir, path);
        if (!*file)
            return err_set(KF_ENOMEM, "kubeconfig: out of memory");
    }
    return KF_OK;
}

static int parse_exec(kube_config *c, yaml_document_t *d, yaml_node_t *ex)
{
    const char *cmd = map_str(d, ex, "command");
    if (!cmd || !*cmd)
        return err_set(KF_EINVAL, "kubeconfig: user.exec.command is missing");
    c->exec_command = strdup(cmd);
    const char *api = map_str(d, ex, "apiVersion");
    c->exec_api_version = strdup(api ? api : "client.authentication.k8s.io/v1");
    yaml_node_t *args = map_get(d, ex, "args");
    size_t nargs = args && args->type == YAML_SEQUENCE_NODE
                       ? (size_t)(args->data.sequence.items.top - args->data.sequence.items.start)
                       : 0;
    c->exec_args = calloc(nargs + 1, sizeof *c->exec_args);
    if (!c->exec_command || !c->exec_api_version || !c->exec_args)
        return err_set(KF_ENOMEM, "kubeconfig: out of memory");
    for (size_t i = 0; i < nargs; i++) {
        const char *a = scalar(node_at(d, args->data.sequence.items.start[i]));
        if (!a)
            return err_set(KF_EINVAL, "kubeconfig: user.exec.args[%zu] is not a string", i);
        if (!(c->exec_args[i] = strdup(a)))
            return err_set(KF_ENOMEM, "kubeconfig: out of memory");
    }
    yaml_node_t *env = map_get(d, ex, "env");
    if (env && env->type == YAML_SEQUENCE_NODE) {
        size_t n = (size_t)(env->data.sequence.items.top - env->data.sequence.items.start);
        c->exec_env = calloc(n ? n : 1, sizeof *c->exec_env);
        if (!c->exec_env)
            return err_set(KF_ENOMEM, "kubeconfig: out of memory");
        for (size_t i = 0; i < n; i++) {
            yaml_node_t *e = node_at(d, env->data.sequence.items.start[i]);
            const char *name = map_str(d, e, "name"), *value = map_str(d, e, "value");
            if (!name || !value)
                return err_set(KF_EINVAL, "kubeconfig: user.exec.env[%zu] needs name and value", i);
            c->exec_env[i].name = strdup(name);
            c->exec_env[i].value = strdup(value);
            c->exec_env_len++;
            if (!c->exec_env[i].name || !c->exec_env[i].value)
                return err_set(KF_ENOMEM, "kubeconfig: out of memory");
        }
    }
    return KF_OK;
}

int kube_config_parse(kube_config *out, const char *yaml, size_t len, const char *context,
                      const char *base_dir)
{
    memset(out, 0, sizeof *out);
    yaml_parser_t parser;
    yaml_document_t doc;
    int have_doc = 0, rc = KF_OK;
    if (!yaml_parser_initialize(&parser))
        return err_set(KF_ENOMEM, "kubeconfig: out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    if (!yaml_parser_load(&parser, &doc)) {
        rc = err_set(KF_EINVAL, "kubeconfig: YAML error at line %zu: %s",
                     parser.problem_mark.line + 1, parser.problem ? parser.problem : "unknown");
        goto done;
    }
    have_doc = 1;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root || root->type != YAML_MAPPING_NODE) {
        rc = err_set(KF_EINVAL, "kubeconfig: the document is not a mapping");
        goto done;
    }
    const char *ctx_name = context ? context : map_str(&doc, root, "current-context");
    if (!ctx_name || !*ctx_name) {
        rc = err_set(KF_EINVAL, "kubeconfig: no context given and current-context is empty");
        goto done;
    }
    yaml_node_t *ctx = named_entry(&doc, map_get(&doc, root, "contexts"), ctx_name, "context");
    if (!ctx) {
        rc = err_set(KF_EINVAL, "kubeconfig: context \"%s\" not found", ctx_name);
        goto done;
    }
    const char *cluster_name = map_str(&doc, ctx, "cluster"), *user_name = map_str(&doc, ctx, "user");
    const char *ns = map_str(&doc, ctx, "namespace");
    out->namespace = strdup(ns && *ns ? ns : "default");
    yaml_node_t *cluster = cluster_name ? named_entry(&doc, map_get(&doc, root, "clusters"), cluster_name, "cluster") : NULL;
    if (!cluster) {
        rc = err_set(KF_EINVAL, "kubeconfig: cluster \"%s\" of context \"%s\" not found",
                     cluster_name ? cluster_name : "", ctx_name);
        goto done;
    }
    const char *server = map_str(&doc, cluster, "server");
    if (!server || !*server) {
        rc = err_set(KF_EINVAL, "kubeconfig: cluster \"%s\" has no server", cluster_name);
        goto done;
    }
    out->server = strdup(server);
    if (!out->server || !out->namespace) {
        rc = err_set(KF_ENOMEM, "kubeconfig: out of memory");
        goto done;
    }
    size_t sl = strlen(out->server);
    while (sl > 0 && out->server[sl - 1] == '/')
        out->server[--sl] = '\0';
    const char *insecure = map_str(&doc, cluster, "insecure-skip-tls-verify");
    out->insecure = insecure && strcmp(insecure, "true") == 0;
    if ((rc = take_pem(&out->ca_pem, &out->ca_file, &doc, cluster, "certificate-authority", base_dir)))
        goto done;

    yaml_node_t *user = user_name ? named_entry(&doc, map_get(&doc, root, "users"), user_name, "user") : NULL;
    if (user_name && *user_name && !user) {
        rc = err_set(KF_EINVAL, "kubeconfig: user \"%s\" of context \"%s\" not found", user_name, ctx_name);
        goto done;
    }
    if (!user)
        goto done; /* anonymous */
    if ((rc = take_pem(&out->cert_pem, &out->cert_file, &doc, user, "client-certificate", base_dir)) ||
        (rc = take_pem(&out->key_pem, &out->key_file, &doc, user, "client-key", base_dir)))
        goto done;
    if (!(out->cert_pem || out->cert_file) != !(out->key_pem || out->key_file)) {
        rc = err_set(KF_EINVAL, "kubeconfig: user \"%s\": client certificate and key must come together", user_name);
        goto done;
    }
    const char *token = map_str(&doc, user, "token"), *token_file = map_str(&doc, user, "tokenFile");
    if (token && *token && !(out->token = strdup(token))) {
        rc = err_set(KF_ENOMEM, "kubeconfig: out of memory");
        goto done;
    }
    if (token_file && *token_file && !(out->token_file = resolve_path(base_dir, token_file))) {
        rc = err_set(KF_ENOMEM, "kubeconfig: out of memory");
        goto done;
    }
    yaml_node_t *ex = map_get(&doc, user, "exec");
    if (ex && (rc = parse_exec(out, &doc, ex)))
        goto done;
    if (map_get(&doc, user, "auth-provider") && !out->token && !out->exec_command) {
        rc = err_set(KF_EUNSUPPORTED, "kubeconfig: user \"%s\": auth-provider is not supported; use exec", user_name);
        goto done;
    }
done:
    if (have_doc)
        yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (rc)
        kube_config_dispose(out);
    return rc;
}

int kube_config_load_file(kube_config *out, const char *path, const char *context)
{
    memset(out, 0, sizeof *out);
    char *text = NULL, *dir = NULL;
    size_t len = 0;
    int rc = read_file(path, &text, &len);
    if (rc)
        return err_wrap(rc, "kubeconfig");
    dir = strdup(path);
    if (!dir) {
        rc = err_set(KF_ENOMEM, "kubeconfig: out of memory");
        goto done;
    }
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        dir[0] = '\0';
    rc = kube_config_parse(out, text, len, context, slash ? (dir[0] ? dir : "/") : NULL);
    if (rc)
        err_wrap(rc, "%s", path);
done:
    free(text);
    free(dir);
    return rc;
}

int kube_config_in_cluster(kube_config *out, const char *sa_dir)
{
    memset(out, 0, sizeof *out);
    const char *dir = sa_dir ? sa_dir : SA_DIR;
    const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
    if (!host || !*host || !port || !*port)
        return err_set(KF_ENOTFOUND, "in-cluster: KUBERNETES_SERVICE_HOST/PORT are not set");
    int rc = KF_OK;
    char *ns = NULL;
    int v6 = strchr(host, ':') != NULL;
    if (asprintf(&out->server, v6 ? "https://[%s]:%s" : "https://%s:%s", host, port) < 0 ||
        asprintf(&out->token_file, "%s/token", dir) < 0 || asprintf(&out->ca_file, "%s/ca.crt", dir) < 0) {
        out->server = out->token_file = out->ca_file = NULL;
        rc = err_set(KF_ENOMEM, "in-cluster: out of memory");
        goto done;
    }
    char *nspath = NULL;
    if (asprintf(&nspath, "%s/namespace", dir) >= 0) {
        if (read_file(nspath, &ns, NULL) == KF_OK) {
            ns[strcspn(ns, " \r\n")] = '\0';
        }
        free(nspath);
    }
    err_clear();
    out->namespace = strdup(ns && *ns ? ns : "default");
    if (!out->namespace)
        rc = err_set(KF_ENOMEM, "in-cluster: out of memory");
done:
    free(ns);
    if (rc)
        kube_config_dispose(out);
    return rc;
}

int kube_config_load(kube_config *out, const char *path, const char *context)
{
    if (path && *path)
        return kube_config_load_file(out, path, context);
    const char *env = getenv("KUBECONFIG");
    if (env && *env) {
        char *first = strndup(env, strcspn(env, ":"));
        if (!first)
            return err_set(KF_ENOMEM, "kubeconfig: out of memory");
        int rc = kube_config_load_file(out, first, context);
        free(first);
        return rc;
    }
    if (kube_config_in_cluster(out, NULL) == KF_OK)
        return KF_OK;
    const char *home = getenv("HOME");
    char *p = NULL;
    if (!home || asprintf(&p, "%s/.kube/config", home) < 0)
        return err_set(KF_ENOTFOUND, "kubeconfig: no --kubeconfig, $KUBECONFIG, in-cluster config or $HOME");
    int rc = kube_config_load_file(out, p, context);
    free(p);
    return rc;
}

void kube_config_dispose(kube_config *c)
{
    if (!c)
        return;
    free(c->server), free(c->ca_file), free(c->ca_pem), free(c->cert_file), free(c->cert_pem);
    free(c->key_file), free(c->key_pem), free(c->token), free(c->token_file), free(c->namespace);
    free(c->exec_command), free(c->exec_api_version);
    for (char **a = c->exec_args; a && *a; a++)
        free(*a);
    free(c->exec_args);
    for (size_t i = 0; i < c->exec_env_len; i++)
        free(c->exec_env[i].name), free(c->exec_env[i].value);
    free(c->exec_env);
    memset(c, 0, sizeof *c);
}
