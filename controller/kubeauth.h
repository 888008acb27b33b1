/* kubeauth: the bearer token to send, kept fresh. A static token; a token file re-read when it
 * changes (projected service-account tokens rotate); or an exec credential plugin whose
 * ExecCredential is cached until shortly before its expirationTimestamp or a 401. Thread-safe. */
#ifndef KUBEFIT_KUBEAUTH_H
#define KUBEFIT_KUBEAUTH_H

#include "kubeconfig.h"

typedef struct kube_auth kube_auth;

/* Copies what it needs from cfg. Caller frees with kube_auth_free. NULL on out of memory. */
kube_auth *kube_auth_new(const kube_config *cfg);
void kube_auth_free(kube_auth *a);
/* *token: a new string (caller frees) or NULL when the config uses no bearer token. */
int kube_auth_token(kube_auth *a, char **token);
/* The server said 401: forget the cached credential so the next call fetches a new one. */
void kube_auth_invalidate(kube_auth *a);

/* Runs an exec plugin once and parses its ExecCredential (exposed for tests).
 * *token: new string; *expiry: seconds since the epoch, 0 when none. */
int kube_auth_exec(const kube_config *cfg, char **token, double *expiry);

#endif
