/* mini_server: a tiny HTTP/1.1 server on a loopback port it picks, for tests that need a token
 * endpoint, a metadata server or a misbehaving GCS. One thread; one request per connection. */
#ifndef KUBEFIT_TESTS_MINI_SERVER_H
#define KUBEFIT_TESTS_MINI_SERVER_H

#include <pthread.h>
#include <stddef.h>

typedef struct {
    char *method, *target; /* "POST", "/token?x=1" */
    char *headers;         /* raw header lines */
    char *body;            /* NUL-terminated */
    size_t body_len;
} mini_request;

typedef struct {
    int status;
    char headers[512];     /* extra header lines, each ending in \r\n */
    char *body;            /* malloc'd or NULL; the server frees it */
    size_t body_len;
} mini_response;

typedef void (*mini_handler)(void *ctx, const mini_request *req, mini_response *resp);

typedef struct {
    int fd, port, stop;
    mini_handler handler;
    void *ctx;
    pthread_t thread;
    int requests;          /* served so far */
} mini_server;

int mini_server_start(mini_server *s, mini_handler h, void *ctx);
void mini_server_stop(mini_server *s);
/* Value of a request header (case-insensitive), copied; NULL if absent. Caller frees. */
char *mini_header(const mini_request *req, const char *name);
/* Sets a body from a string (copied). */
void mini_body(mini_response *resp, const char *s);

#endif
