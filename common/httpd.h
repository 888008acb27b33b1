/* httpd: the controller's HTTP/1.1 + WebSocket server on libwebsockets (4.1).
 *
 * One service thread runs the lws event loop: it parses requests, enforces the limits (headers
 * 16 KiB, bodies max_body bytes, 10 s to send them, WebSocket messages 16 KiB) and calls the
 * route handler once a request is complete. A handler answers with httpd_reply(), at once (cheap
 * routes) or later from another thread: httpd_defer() runs work on a small pool of threads, so
 * a slow API-server call never holds the event loop, and many clients are served concurrently.
 * A reply for a client that has gone away is dropped.
 *
 * WebSocket connections (an Upgrade on a path the ws_path_ok hook accepts, same-origin only)
 * get an id; messages arrive on the service thread; httpd_ws_send() queues text for a client
 * from any thread (a client that falls behind by more than 4 MiB is closed).
 *
 * listen: "ADDR:PORT" - "0.0.0.0:8080" (IPv4), "[::]:8080" or ":8080" (IPv6 and IPv4),
 * "127.0.0.1:0" / "[::1]:0" (port 0 picks one; see httpd_port). */
#ifndef KUBEFIT_HTTPD_H
#define KUBEFIT_HTTPD_H

#include <stddef.h>
#include <stdint.h>

typedef struct httpd httpd;
typedef struct httpd_req httpd_req;

typedef struct {
    void (*on_request)(void *ctx, httpd_req *r);            /* must lead to exactly one httpd_reply */
    int (*ws_path_ok)(void *ctx, const char *path);          /* 0: refuse the upgrade; NULL: refuse all */
    void (*on_ws_open)(void *ctx, uint64_t conn, const char *path, const char *authorization);
    void (*on_ws_message)(void *ctx, uint64_t conn, const char *text, size_t len);
    void (*on_ws_close)(void *ctx, uint64_t conn);
    /* The server refuses r before on_request (405 method, 413 body too large): answer it in the
     * application's own error shape, exactly once with httpd_reply. NULL: a text/plain answer. */
    void (*on_refuse)(void *ctx, httpd_req *r, int status, const char *message);
    void *ctx;
    const char *listen;     /* see above; NULL: ":8080" */
    size_t max_body;        /* 0: 64 KiB */
    int workers;            /* httpd_defer threads; 0: 4 */
    int max_queued;         /* deferred work waiting for a thread before 503; 0: 256 */
} httpd_options;

typedef struct {
    long requests, responses_2xx, responses_4xx, responses_5xx, refused_busy, ws_open, ws_total, ws_dropped;
} httpd_stats;

/* Binds the listening socket (so a port file can be written before httpd_start). NULL with
 * err_msg() when it cannot listen. Caller frees with httpd_free. */
httpd *httpd_new(const httpd_options *opt);
int httpd_port(const httpd *h);
int httpd_start(httpd *h);
/* Stops the loop and the workers (waits for running work to finish). */
void httpd_stop(httpd *h);
void httpd_free(httpd *h);
httpd_stats httpd_get_stats(httpd *h);

/* ---- a request (valid until httpd_reply) ---- */
const char *httpd_req_method(const httpd_req *r); /* "GET", "POST", ... */
const char *httpd_req_path(const httpd_req *r);   /* percent-decoded, without the query */
/* The decoded value of query parameter name, or NULL. Borrowed from r. */
const char *httpd_req_query(const httpd_req *r, const char *name);
/* The Authorization header's bearer token, or NULL. Borrowed from r; never log it. */
const char *httpd_req_bearer(const httpd_req *r);
const char *httpd_req_body(const httpd_req *r, size_t *len);
const char *httpd_req_peer(const httpd_req *r);   /* client address, for logs */

/* Answers r (any thread, exactly once) and releases it. type NULL: text/plain. body is copied.
 * headers: NULL or extra "Name: value\r\n" lines (e.g. "Retry-After: 2\r\n"). */
void httpd_reply(httpd_req *r, int status, const char *type, const char *body, size_t len, const char *headers);
/* Same, taking ownership of body (malloc'd). */
void httpd_reply_take(httpd_req *r, int status, const char *type, char *body, size_t len, const char *headers);

/* Runs fn(arg, r) on a worker thread; fn must httpd_reply(r). When the pool is saturated, answers
 * 503 at once and returns KF_ERETRY (arg is then not used; the caller frees it). */
int httpd_defer(httpd *h, httpd_req *r, void (*fn)(void *arg, httpd_req *r), void *arg);
/* Runs fn(arg) on a worker thread (background work for WebSocket clients). KF_ERETRY when busy. */
int httpd_submit(httpd *h, void (*fn)(void *arg), void *arg);

/* ---- WebSocket ---- */
/* Queues a text message for conn (any thread). KF_ENOTFOUND when conn has closed. */
int httpd_ws_send(httpd *h, uint64_t conn, const char *text, size_t len);
/* Closes conn after what is queued (any thread). */
void httpd_ws_close(httpd *h, uint64_t conn);

#endif
