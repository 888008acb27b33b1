/* gcs_json: parsing of the JSON the GCS JSON API, token endpoints and key files send back.
 * Every parser validates types and ranges and answers bad input with KF_EINVAL, never a crash
 * (the fuzz target in tests/fuzz-storage feeds them arbitrary bytes). */
#ifndef KUBEFIT_STORAGE_GCS_JSON_H
#define KUBEFIT_STORAGE_GCS_JSON_H

#include "storage.h"

#include <stddef.h>

/* An object resource ({"name":..,"bucket":..,"size":"12",...}) into out (uri = gs://bucket/name). */
int gcs_json_object(storage_object *out, const char *json, size_t len);

/* One page of objects.list: appends to *items, growing *n and *cap; *next_token gets the
 * nextPageToken or NULL on the last page (caller frees). */
int gcs_json_list_page(storage_object **items, size_t *n, size_t *cap, char **next_token,
                       const char *json, size_t len);

/* The server's error message ({"error":{"message":..}}), or NULL. Caller frees. */
char *gcs_json_error_message(const char *json, size_t len);

/* An OAuth2 token response: access_token and expires_in (seconds, > 0). *token: caller frees. */
int gcs_json_token(char **token, long *expires_in, const char *json, size_t len);

typedef struct {
    char *client_email;
    char *private_key; /* PEM */
    char *private_key_id;
    char *token_uri;
} gcs_key;

/* A service-account key file's JSON ("type":"service_account"). path is for messages. */
int gcs_json_key(gcs_key *out, const char *json, size_t len, const char *path);
void gcs_key_dispose(gcs_key *k);

#endif
