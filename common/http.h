/* http: a small libcurl client shared by the storage layer and the Kubernetes client.
 * One http_client per server identity (TLS settings). Each thread that uses it keeps one curl
 * handle and its open connection (so connections = threads, reused request after request);
 * DNS and TLS sessions are shared between the threads. Retries are the caller's policy. */
#ifndef KUBEFIT_HTTP_H
#define KUBEFIT_HTTP_H

#include <stddef.h>
#include <stdio.h>

typedef struct http_client http_client;

typedef struct {
    const char *ca_file;       /* PEM bundle to verify the server; NULL: system CAs */
    const char *ca_pem;        /* or the PEM text itself (kubeconfig certificate-authority-data) */
    const char *cert_file;     /* client certificate (PEM) for mutual TLS */
    const char *cert_pem;
    const char *key_file;      /* its private key (PEM) */
    const char *key_pem;
    int insecure;              /* skip server verification (kubeconfig insecure-skip-tls-verify) */
    long connect_timeout_ms;   /* default 10000 */
    long timeout_ms;           /* whole request; default 60000; 0 in a request keeps this */
} http_options;

/* Called with each chunk of the response body as it arrives (watch streams).
 * Return 0 to continue, non-zero to abort the transfer. */
typedef int (*http_data_fn)(void *ctx, const char *data, size_t len);

typedef struct {
    const char *method;          /* "GET" when NULL */
    const char *url;
    const char *const *headers;  /* NULL-terminated "Name: value" list, may be NULL */
    const void *body;            /* request body, may be NULL */
    size_t body_len;
    FILE *body_file;             /* or stream the body from this file (body_len bytes) */
    long timeout_ms;             /* 0: the client's; -1: none (long watches) */
    long low_speed_secs;         /* abort when under 1 byte/s for this long; 0 off */
    FILE *sink;                  /* stream a 2xx body into this file instead of memory */
    http_data_fn on_data;        /* or hand the body to this callback */
    void *ctx;
    const volatile int *cancel;  /* when set and *cancel becomes non-zero, abort (~1 s latency) */
} http_request;

typedef struct {
    long status;      /* HTTP status; 0 when no response arrived */
    char *body;       /* NUL-terminated body (memory mode, or a non-2xx body in sink mode) */
    size_t body_len;
    char *headers;    /* raw response header block of the last response */
} http_response;

/* Returns a client, or NULL with err_msg() set. Caller frees with http_client_free, after every
 * thread has stopped using it (the handles of threads still alive are freed then). */
http_client *http_client_new(const http_options *opt);
void http_client_free(http_client *c);

/* Performs one request. Returns 0 when a response (any status) arrived; KF_ERETRY on connection
 * errors and timeouts, KF_EIO when aborted by the callback, KF_EINVAL on bad arguments; with
 * err_msg() naming the method, URL and curl's reason. resp is filled on 0; dispose it. */
int http_do(http_client *c, const http_request *req, http_response *resp);
void http_response_dispose(http_response *resp);

/* Value of a response header (case-insensitive name), copied into a new string; NULL if absent.
 * Caller frees with free(). */
char *http_response_header(const http_response *resp, const char *name);

/* Percent-encodes s for a URL path segment or query value. Caller frees with free(). */
char *http_escape(const char *s);

/* Call once before threads start (curl_global_init); safe to call more than once. */
void http_global_init(void);

#endif
