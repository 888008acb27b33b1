/* kubeconfig: where the API server is and how to authenticate to it.
 * Sources: a kubeconfig file (libyaml; current-context or a named one), or the in-cluster service
 * account (KUBERNETES_SERVICE_HOST/PORT + /var/run/secrets/kubernetes.io/serviceaccount).
 * Credentials that change over time (token files, exec plugins) live in kube_auth (kubeauth.h). */
#ifndef KUBEFIT_KUBECONFIG_H
#define KUBEFIT_KUBECONFIG_H

#include <stddef.h>

typedef struct {
    char *name;
    char *value;
} kube_env_var;

typedef struct {
    char *server;           /* "https://host:port" without a trailing slash */
    char *ca_file, *ca_pem; /* server CA: a path or the PEM text */
    char *cert_file, *cert_pem;
    char *key_file, *key_pem;
    int insecure;           /* insecure-skip-tls-verify */
    char *token;            /* static bearer token */
    char *token_file;       /* bearer token re-read when the file changes */
    char *namespace;        /* context namespace; "default" when unset */
    /* exec credential plugin (client.authentication.k8s.io ExecCredential) */
    char *exec_command;
    char **exec_args;       /* NULL-terminated */
    kube_env_var *exec_env;
    size_t exec_env_len;
    char *exec_api_version;
} kube_config;

/* Parses kubeconfig YAML text. context NULL: current-context. base_dir resolves relative file
 * paths (NULL: the current directory). Fills out (dispose with kube_config_dispose) or returns
 * KF_EINVAL naming the missing or malformed field. */
int kube_config_parse(kube_config *out, const char *yaml, size_t len, const char *context,
                      const char *base_dir);
/* Reads and parses the kubeconfig at path. */
int kube_config_load_file(kube_config *out, const char *path, const char *context);
/* In-cluster config. sa_dir NULL: /var/run/secrets/kubernetes.io/serviceaccount. */
int kube_config_in_cluster(kube_config *out, const char *sa_dir);
/* The usual order: explicit path, $KUBECONFIG (first entry), in-cluster, ~/.kube/config. */
int kube_config_load(kube_config *out, const char *path, const char *context);
void kube_config_dispose(kube_config *c);

/* Base64 (standard alphabet, padding optional, whitespace ignored). Returns a NUL-terminated
 * buffer (caller frees) with its length in *len, or NULL on bad input. */
char *kube_base64_decode(const char *s, size_t *len);

#endif
