/* gcs_auth: OAuth2 access tokens for GCS, cached until shortly before they expire.
 * Sources: a service-account key file (a JWT signed RS256 with OpenSSL, exchanged at the key's
 * token_uri) or the GCE/GKE metadata server (Workload Identity). With neither (an emulator),
 * requests carry no Authorization header. Tokens are never logged. */
#ifndef KUBEFIT_STORAGE_GCS_AUTH_H
#define KUBEFIT_STORAGE_GCS_AUTH_H

#include <time.h>

typedef enum { GCS_AUTH_NONE = 0, GCS_AUTH_KEY_FILE, GCS_AUTH_METADATA } gcs_auth_kind;

typedef struct gcs_auth gcs_auth;

typedef struct {
    gcs_auth_kind kind;
    const char *key_file;       /* GCS_AUTH_KEY_FILE */
    const char *metadata_host;  /* GCS_AUTH_METADATA: "host[:port]"; NULL: metadata.google.internal */
    const char *scope;          /* NULL: devstorage.read_write */
    int max_attempts;           /* token fetches; default 6 */
    long backoff_initial_ms;    /* default 250 */
    long backoff_max_ms;        /* default 4000 */
    time_t (*now)(void *ctx);   /* clock for tests; NULL: time() */
    void *now_ctx;
} gcs_auth_options;

/* Loads and checks the key file now (a bad file is a clear KF_EINVAL). Caller frees. */
int gcs_auth_new(gcs_auth **out, const gcs_auth_options *opt);
void gcs_auth_free(gcs_auth *a);
gcs_auth_kind gcs_auth_kind_of(const gcs_auth *a);

/* "Authorization: Bearer ..." for the current token, fetching or refreshing it when needed;
 * *header is NULL for GCS_AUTH_NONE. Caller frees. Thread-safe. */
int gcs_auth_header(gcs_auth *a, char **header);
/* Drops the cached token (after a 401), so the next call fetches a new one. */
void gcs_auth_invalidate(gcs_auth *a);
/* Who the requests run as, for messages: the key's client_email, the metadata server's
 * default account email, or a description. Valid until gcs_auth_free. */
const char *gcs_auth_identity(gcs_auth *a);
/* Number of tokens fetched so far (tests check caching). */
int gcs_auth_fetch_count(gcs_auth *a);

#endif
