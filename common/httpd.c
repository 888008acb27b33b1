/* httpd: HTTP/1.1 + WebSocket on libwebsockets 4.1. See httpd.h.
 *
 * Threads: the service thread owns every struct lws; other threads reach a connection only
 * through h->mu (requests by pointer with a state, WebSocket clients by id) and wake the loop
 * with lws_cancel_service(), the one lws call that is safe from any thread.
 *
 * A request's life: READING (headers, body) -> HANDLING (the handler or a worker has it) ->
 * QUEUED (replied from another thread, waiting for the loop) -> WRITING (headers, then the body
 * in 16 KiB pieces) -> freed. When the client goes away first, the request becomes ORPHANED and
 * whoever holds it next (the replier or the loop) frees it. */
#include "httpd.h"

#include "err.h"
#include "log.h"

#include <libwebsockets.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_HEADER 16384
#define BODY_TIMEOUT_S 10
#define HANDLER_TIMEOUT_S 60
#define CHUNK 16384
#define WS_MAX_MESSAGE 16384
#define WS_MAX_QUEUED (4u << 20)
#define WS_MAX_CLIENTS 512
#define MAX_QUERY_ARGS 32
#define MAX_WORKERS 32

typedef enum { RQ_READING, RQ_HANDLING, RQ_QUEUED, RQ_WRITING, RQ_ORPHANED } rq_state;

struct httpd_req {
    httpd *h;
    struct lws *wsi;
    rq_state state;
    char method[8];
    char *path, *bearer, peer[64];
    char *qk[MAX_QUERY_ARGS], *qv[MAX_QUERY_ARGS];
    int nq;
    char *body;
    size_t body_len, body_max;
    /* the reply */
    int status, close_after, headers_done;
    char *type, *resp, *resp_headers;
    size_t resp_len, sent;
    httpd_req *next_ready;
};

typedef struct ws_msg {
    struct ws_msg *next;
    size_t len;
    unsigned char data[]; /* LWS_PRE bytes, then the text */
} ws_msg;

typedef struct ws_conn {
    uint64_t id;
    struct lws *wsi;
    ws_msg *head, *tail;
    size_t queued;
    int closing, want_write;
    char *rx;
    size_t rx_len;
    struct ws_conn *next;
} ws_conn;

typedef struct {
    httpd_req *req; /* HTTP: the request in progress */
    ws_conn *ws;    /* WebSocket: this client */
} pss;

typedef struct task {
    struct task *next;
    void (*fn_req)(void *, httpd_req *);
    void (*fn)(void *);
    void *arg;
    httpd_req *req;
} task;

struct httpd {
    httpd_options opt;
    struct lws_context *ctx;
    struct lws_vhost *vh;
    struct lws_protocols protocols[2];
    char *iface;
    int port, stop, running, nworkers;
    pthread_t thread, workers[MAX_WORKERS];
    pthread_mutex_t mu;
    pthread_cond_t work_cv;
    task *tasks, *tasks_tail;
    int ntasks;
    httpd_req *ready;
    ws_conn *conns;
    int nconns;
    uint64_t next_id;
    httpd_stats n;
};

/* ---- requests ---- */

static void req_free(httpd_req *r)
{
    if (!r)
        return;
    free(r->path);
    free(r->bearer);
    for (int i = 0; i < r->nq; i++)
        free(r->qk[i]), free(r->qv[i]);
    free(r->body);
    free(r->type);
    free(r->resp);
    free(r->resp_headers);
    free(r);
}

const char *httpd_req_method(const httpd_req *r) { return r->method; }
const char *httpd_req_path(const httpd_req *r) { return r->path; }
const char *httpd_req_bearer(const httpd_req *r) { return r->bearer; }
const char *httpd_req_peer(const httpd_req *r) { return r->peer; }

const char *httpd_req_body(const httpd_req *r, size_t *len)
{
    if (len)
        *len = r->body_len;
    return r->body ? r->body : "";
}

const char *httpd_req_query(const httpd_req *r, const char *name)
{
    for (int i = 0; i < r->nq; i++)
        if (strcmp(r->qk[i], name) == 0)
            return r->qv[i];
    return NULL;
}

static void count_status(httpd *h, int status)
{
    if (status < 300)
        h->n.responses_2xx++;
    else if (status < 500)
        h->n.responses_4xx++;
    else
        h->n.responses_5xx++;
}

void httpd_reply_take(httpd_req *r, int status, const char *type, char *body, size_t len, const char *headers)
{
    httpd *h = r->h;
    pthread_mutex_lock(&h->mu);
    r->status = status;
    r->type = strdup(type ? type : "text/plain; charset=utf-8");
    r->resp = body;
    r->resp_len = body ? len : 0;
    r->resp_headers = headers ? strdup(headers) : NULL;
    count_status(h, status);
    if (r->state == RQ_ORPHANED) {
        req_free(r);
    } else if (h->running && pthread_equal(pthread_self(), h->thread)) {
        r->state = RQ_WRITING;
        lws_callback_on_writable(r->wsi);
    } else {
        r->state = RQ_QUEUED;
        r->next_ready = h->ready;
        h->ready = r;
        pthread_mutex_unlock(&h->mu);
        lws_cancel_service(h->ctx);
        return;
    }
    pthread_mutex_unlock(&h->mu);
}

void httpd_reply(httpd_req *r, int status, const char *type, const char *body, size_t len, const char *headers)
{
    char *copy = NULL;
    if (body && len) {
        copy = malloc(len);
        if (copy)
            memcpy(copy, body, len);
        else
            status = 500, len = 0;
    }
    httpd_reply_take(r, status, type, copy, copy ? len : 0, headers);
}

/* ---- worker pool ---- */

static int enqueue(httpd *h, task *t)
{
    pthread_mutex_lock(&h->mu);
    if (h->stop || h->ntasks >= h->opt.max_queued) {
        h->n.refused_busy++;
        pthread_mutex_unlock(&h->mu);
        return err_set(KF_ERETRY, "httpd: %d requests waiting for a worker", h->ntasks);
    }
    if (h->tasks_tail)
        h->tasks_tail->next = t;
    else
        h->tasks = t;
    h->tasks_tail = t;
    h->ntasks++;
    pthread_cond_signal(&h->work_cv);
    pthread_mutex_unlock(&h->mu);
    return KF_OK;
}

int httpd_defer(httpd *h, httpd_req *r, void (*fn)(void *arg, httpd_req *r), void *arg)
{
    task *t = calloc(1, sizeof *t);
    int rc = t ? KF_OK : err_set(KF_ENOMEM, "httpd: out of memory");
    if (t) {
        *t = (task){.fn_req = fn, .arg = arg, .req = r};
        rc = enqueue(h, t);
    }
    if (rc) {
        free(t);
        httpd_reply(r, 503, NULL, "busy, try again\n", 16, "Retry-After: 1\r\n");
    }
    return rc;
}

int httpd_submit(httpd *h, void (*fn)(void *arg), void *arg)
{
    task *t = calloc(1, sizeof *t);
    if (!t)
        return err_set(KF_ENOMEM, "httpd: out of memory");
    *t = (task){.fn = fn, .arg = arg};
    int rc = enqueue(h, t);
    if (rc)
        free(t);
    return rc;
}

static void *worker(void *u)
{
    httpd *h = u;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        while (!h->tasks && !h->stop)
            pthread_cond_wait(&h->work_cv, &h->mu);
        task *t = h->tasks;
        if (!t)
            break; /* stopping and nothing left */
        h->tasks = t->next;
        if (!h->tasks)
            h->tasks_tail = NULL;
        h->ntasks--;
        pthread_mutex_unlock(&h->mu);
        if (t->fn_req)
            t->fn_req(t->arg, t->req);
        else
            t->fn(t->arg);
        free(t);
        pthread_mutex_lock(&h->mu);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/* ---- WebSocket clients ---- */

static ws_conn *find_conn(httpd *h, uint64_t id)
{
    for (ws_conn *c = h->conns; c; c = c->next)
        if (c->id == id)
            return c;
    return NULL;
}

static void drop_messages(ws_conn *c)
{
    while (c->head) {
        ws_msg *m = c->head;
        c->head = m->next;
        free(m);
    }
    c->tail = NULL;
    c->queued = 0;
}

int httpd_ws_send(httpd *h, uint64_t conn, const char *text, size_t len)
{
    ws_msg *m = malloc(sizeof *m + LWS_PRE + len);
    if (!m)
        return err_set(KF_ENOMEM, "httpd: out of memory");
    m->next = NULL;
    m->len = len;
    memcpy(m->data + LWS_PRE, text, len);
    pthread_mutex_lock(&h->mu);
    ws_conn *c = find_conn(h, conn);
    int rc = KF_OK;
    if (!c || c->closing) {
        rc = err_set(KF_ENOTFOUND, "httpd: WebSocket client %llu is gone", (unsigned long long)conn);
        free(m);
    } else if (c->queued + len > WS_MAX_QUEUED) {
        /* A client this far behind will not catch up: close it rather than grow without bound. */
        drop_messages(c);
        c->closing = c->want_write = 1;
        h->n.ws_dropped++;
        free(m);
        rc = err_set(KF_ERETRY, "httpd: WebSocket client %llu fell behind; closed", (unsigned long long)conn);
    } else {
        if (c->tail)
            c->tail->next = m;
        else
            c->head = m;
        c->tail = m;
        c->queued += len;
        c->want_write = 1;
    }
    pthread_mutex_unlock(&h->mu);
    if (rc != KF_ENOTFOUND)
        lws_cancel_service(h->ctx);
    return rc;
}

void httpd_ws_close(httpd *h, uint64_t conn)
{
    pthread_mutex_lock(&h->mu);
    ws_conn *c = find_conn(h, conn);
    if (c)
        c->closing = c->want_write = 1;
    pthread_mutex_unlock(&h->mu);
    if (c)
        lws_cancel_service(h->ctx);
}

/* Service thread: replies that arrived from workers, clients with messages to send. */
static void drain(httpd *h)
{
    pthread_mutex_lock(&h->mu);
    httpd_req *r = h->ready;
    h->ready = NULL;
    while (r) {
        httpd_req *next = r->next_ready;
        if (r->state == RQ_ORPHANED) {
            req_free(r);
        } else {
            r->state = RQ_WRITING;
            lws_callback_on_writable(r->wsi);
        }
        r = next;
    }
    for (ws_conn *c = h->conns; c; c = c->next) {
        if (c->want_write) {
            c->want_write = 0;
            lws_callback_on_writable(c->wsi);
        }
    }
    pthread_mutex_unlock(&h->mu);
}

/* ---- HTTP ---- */

static char *header(struct lws *wsi, enum lws_token_indexes t)
{
    int n = lws_hdr_total_length(wsi, t);
    if (n <= 0 || n > MAX_HEADER)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (s && lws_hdr_copy(wsi, s, n + 1, t) < 0) {
        free(s);
        s = NULL;
    }
    return s;
}

/* The token of "Authorization: Bearer <token>" (scheme case-insensitive), copied, or NULL. */
static char *bearer_of(struct lws *wsi)
{
    char *a = header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION), *t = NULL;
    if (a && strncasecmp(a, "Bearer ", 7) == 0) {
        const char *v = a + 7;
        while (*v == ' ')
            v++;
        size_t n = strcspn(v, " \t\r\n");
        if (n)
            t = strndup(v, n);
    }
    if (a)
        explicit_bzero(a, strlen(a));
    free(a);
    return t;
}

static const struct {
    enum lws_token_indexes tok;
    const char *name;
} methods[] = {
    {WSI_TOKEN_GET_URI, "GET"},     {WSI_TOKEN_POST_URI, "POST"},     {WSI_TOKEN_PUT_URI, "PUT"},
    {WSI_TOKEN_PATCH_URI, "PATCH"}, {WSI_TOKEN_DELETE_URI, "DELETE"}, {WSI_TOKEN_OPTIONS_URI, "OPTIONS"},
    {WSI_TOKEN_HEAD_URI, "HEAD"},
};

static httpd_req *req_new(httpd *h, struct lws *wsi, const char *path)
{
    httpd_req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->h = h;
    r->wsi = wsi;
    r->state = RQ_READING;
    r->body_max = h->opt.max_body;
    for (size_t i = 0; i < sizeof methods / sizeof *methods; i++)
        if (lws_hdr_total_length(wsi, methods[i].tok) > 0) {
            snprintf(r->method, sizeof r->method, "%s", methods[i].name);
            break;
        }
    r->path = strdup(path && *path ? path : "/");
    r->bearer = bearer_of(wsi);
    lws_get_peer_simple(wsi, r->peer, sizeof r->peer);
    char frag[2048];
    for (int i = 0; r->nq < MAX_QUERY_ARGS; i++) {
        int n = lws_hdr_copy_fragment(wsi, frag, sizeof frag, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0)
            break;
        char *eq = strchr(frag, '=');
        r->qk[r->nq] = strndup(frag, eq ? (size_t)(eq - frag) : strlen(frag));
        r->qv[r->nq] = strdup(eq ? eq + 1 : "");
        if (!r->qk[r->nq] || !r->qv[r->nq]) {
            free(r->qk[r->nq]), free(r->qv[r->nq]);
            break;
        }
        r->nq++;
    }
    if (!r->path) {
        req_free(r);
        return NULL;
    }
    return r;
}

static void dispatch(httpd *h, httpd_req *r)
{
    r->state = RQ_HANDLING;
    lws_set_timeout(r->wsi, PENDING_TIMEOUT_HTTP_CONTENT, HANDLER_TIMEOUT_S);
    h->opt.on_request(h->opt.ctx, r);
}

/* Answers at once and closes the connection afterwards (the body, if any, is not read). */
static void refuse(httpd *h, httpd_req *r, int status, const char *text)
{
    r->close_after = 1;
    r->state = RQ_HANDLING;
    if (h->opt.on_refuse)
        h->opt.on_refuse(h->opt.ctx, r, status, text);
    else
        httpd_reply(r, status, NULL, text, strlen(text), NULL);
}

static int on_http(httpd *h, struct lws *wsi, pss *ps, const char *path)
{
    if (ps->req) { /* a pipelined request before the last one finished: not supported */
        return -1;
    }
    httpd_req *r = req_new(h, wsi, path);
    if (!r)
        return -1;
    ps->req = r;
    pthread_mutex_lock(&h->mu);
    h->n.requests++;
    pthread_mutex_unlock(&h->mu);
    if (!r->method[0]) {
        refuse(h, r, 405, "method not supported\n");
        return 0;
    }
    int has_body = !strcmp(r->method, "POST") || !strcmp(r->method, "PUT") || !strcmp(r->method, "PATCH");
    char *cl = header(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
    unsigned long long declared = cl ? strtoull(cl, NULL, 10) : 0;
    free(cl);
    if (has_body && declared > h->opt.max_body) {
        char msg[96];
        snprintf(msg, sizeof msg, "request body over %zu bytes\n", h->opt.max_body);
        refuse(h, r, 413, msg);
        return 0;
    }
    if (has_body && declared > 0) {
        lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT, BODY_TIMEOUT_S);
        return 0; /* LWS_CALLBACK_HTTP_BODY / _COMPLETION follow */
    }
    dispatch(h, r);
    return 0;
}

static int on_body(httpd *h, pss *ps, const char *in, size_t len)
{
    httpd_req *r = ps->req;
    if (!r || r->state != RQ_READING)
        return 0;
    if (r->body_len + len > r->body_max) {
        refuse(h, r, 413, "request body too large\n");
        return 0;
    }
    char *grown = realloc(r->body, r->body_len + len + 1);
    if (!grown)
        return -1;
    r->body = grown;
    memcpy(r->body + r->body_len, in, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    return 0;
}

static int add_header_lines(struct lws *wsi, const char *lines, unsigned char **p, unsigned char *end)
{
    while (lines && *lines) {
        const char *eol = strstr(lines, "\r\n"), *colon = strchr(lines, ':');
        if (!eol || !colon || colon > eol)
            return 0;
        char name[64];
        size_t nlen = (size_t)(colon - lines) + 1;
        if (nlen >= sizeof name)
            return -1;
        memcpy(name, lines, nlen);
        name[nlen] = '\0';
        const char *v = colon + 1;
        while (*v == ' ')
            v++;
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)name, (const unsigned char *)v, (int)(eol - v), p, end))
            return -1;
        lines = eol + 2;
    }
    return 0;
}

/* Returns -1 to close the connection. */
static int write_http(httpd *h, struct lws *wsi, pss *ps)
{
    httpd_req *r = ps->req;
    if (!r || r->state != RQ_WRITING)
        return 0;
    unsigned char buf[LWS_PRE + CHUNK], *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
    if (!r->headers_done) {
        static const char security[] = "X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n";
        if (lws_add_http_common_headers(wsi, (unsigned int)r->status, r->type, r->resp_len, &p, end) ||
            add_header_lines(wsi, security, &p, end) || add_header_lines(wsi, r->resp_headers, &p, end) ||
            lws_finalize_write_http_header(wsi, start, &p, end))
            return -1;
        r->headers_done = 1;
        if (r->resp_len) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    } else {
        size_t n = r->resp_len - r->sent < CHUNK ? r->resp_len - r->sent : CHUNK;
        int final = r->sent + n == r->resp_len;
        memcpy(start, r->resp + r->sent, n);
        if (lws_write(wsi, start, n, final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)n)
            return -1;
        r->sent += n;
        if (!final) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    }
    int close_after = r->close_after;
    pthread_mutex_lock(&h->mu);
    ps->req = NULL;
    req_free(r);
    pthread_mutex_unlock(&h->mu);
    if (close_after || lws_http_transaction_completed(wsi))
        return -1;
    return 0;
}

/* The connection closed or moved on: the request in progress, if any, is let go. */
static void release(httpd *h, pss *ps)
{
    pthread_mutex_lock(&h->mu);
    httpd_req *r = ps->req;
    ps->req = NULL;
    if (r) {
        r->wsi = NULL;
        if (r->state == RQ_HANDLING || r->state == RQ_QUEUED)
            r->state = RQ_ORPHANED; /* the replier or drain() frees it */
        else
            req_free(r);
    }
    pthread_mutex_unlock(&h->mu);
}

/* ---- WebSocket callbacks ---- */

/* Same-origin only: a page elsewhere must not ride on a user's port-forward. */
static int same_origin(struct lws *wsi)
{
    char *origin = header(wsi, WSI_TOKEN_ORIGIN), *host = header(wsi, WSI_TOKEN_HOST);
    int ok = 1;
    if (origin) {
        const char *o = strstr(origin, "://");
        o = o ? o + 3 : origin;
        ok = host && strcasecmp(o, host) == 0;
    }
    free(origin);
    free(host);
    return ok;
}

static int ws_filter(httpd *h, struct lws *wsi)
{
    char *path = header(wsi, WSI_TOKEN_GET_URI);
    int ok = path && h->opt.ws_path_ok && h->opt.ws_path_ok(h->opt.ctx, path) && same_origin(wsi);
    free(path);
    pthread_mutex_lock(&h->mu);
    if (h->nconns >= WS_MAX_CLIENTS)
        ok = 0;
    pthread_mutex_unlock(&h->mu);
    return ok ? 0 : 1;
}

static int ws_open(httpd *h, struct lws *wsi, pss *ps)
{
    ws_conn *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    c->wsi = wsi;
    char *path = header(wsi, WSI_TOKEN_GET_URI), *tok = bearer_of(wsi);
    pthread_mutex_lock(&h->mu);
    c->id = ++h->next_id;
    c->next = h->conns;
    h->conns = c;
    h->nconns++;
    h->n.ws_open++;
    h->n.ws_total++;
    pthread_mutex_unlock(&h->mu);
    ps->ws = c;
    if (h->opt.on_ws_open)
        h->opt.on_ws_open(h->opt.ctx, c->id, path ? path : "/", tok);
    if (tok)
        explicit_bzero(tok, strlen(tok));
    free(tok);
    free(path);
    return 0;
}

static int ws_receive(httpd *h, struct lws *wsi, pss *ps, const char *in, size_t len)
{
    ws_conn *c = ps->ws;
    if (!c || lws_frame_is_binary(wsi))
        return -1;
    if (c->rx_len + len > WS_MAX_MESSAGE) {
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)"message too large", 17);
        return -1;
    }
    char *grown = realloc(c->rx, c->rx_len + len + 1);
    if (!grown)
        return -1;
    c->rx = grown;
    memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += len;
    c->rx[c->rx_len] = '\0';
    if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
        if (h->opt.on_ws_message)
            h->opt.on_ws_message(h->opt.ctx, c->id, c->rx, c->rx_len);
        c->rx_len = 0;
    }
    return 0;
}

static int ws_writable(httpd *h, struct lws *wsi, pss *ps)
{
    ws_conn *c = ps->ws;
    if (!c)
        return 0;
    pthread_mutex_lock(&h->mu);
    ws_msg *m = c->head;
    if (m) {
        c->head = m->next;
        if (!c->head)
            c->tail = NULL;
        c->queued -= m->len;
    }
    int more = c->head != NULL, closing = c->closing;
    pthread_mutex_unlock(&h->mu);
    if (m) {
        int n = lws_write(wsi, m->data + LWS_PRE, m->len, LWS_WRITE_TEXT);
        free(m);
        if (n < 0)
            return -1;
    }
    if (more) {
        lws_callback_on_writable(wsi);
    } else if (closing) {
        lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
        return -1;
    }
    return 0;
}

static void ws_closed(httpd *h, pss *ps)
{
    ws_conn *c = ps->ws;
    if (!c)
        return;
    ps->ws = NULL;
    pthread_mutex_lock(&h->mu);
    for (ws_conn **pp = &h->conns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    h->nconns--;
    h->n.ws_open--;
    drop_messages(c);
    pthread_mutex_unlock(&h->mu);
    if (h->opt.on_ws_close)
        h->opt.on_ws_close(h->opt.ctx, c->id);
    free(c->rx);
    free(c);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    httpd *h = lws_context_user(lws_get_context(wsi));
    pss *ps = user;
    if (!h)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        drain(h);
        return 0;
    case LWS_CALLBACK_HTTP:
        return on_http(h, wsi, ps, in);
    case LWS_CALLBACK_HTTP_BODY:
        return on_body(h, ps, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (ps->req && ps->req->state == RQ_READING)
            dispatch(h, ps->req);
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return write_http(h, wsi, ps);
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (ps)
            release(h, ps);
        return 0;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return ws_filter(h, wsi);
    case LWS_CALLBACK_ESTABLISHED:
        return ws_open(h, wsi, ps);
    case LWS_CALLBACK_RECEIVE:
        return ws_receive(h, wsi, ps, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return ws_writable(h, wsi, ps);
    case LWS_CALLBACK_CLOSED:
        if (ps)
            ws_closed(h, ps);
        return 0;
    default:
        return 0;
    }
}

/* ---- life cycle ---- */

static void lws_log(int level, const char *line)
{
    char text[512];
    snprintf(text, sizeof text, "%s", line);
    text[strcspn(text, "\r\n")] = '\0';
    if (level & LLL_ERR)
        log_warn("httpd", "libwebsockets error", "{s:s}", "line", text);
    else
        log_debug("httpd", "libwebsockets", "{s:s}", "line", text);
}

/* "ADDR:PORT", "[V6]:PORT", ":PORT" -> *iface (NULL: all), *port, *v4only. */
static int parse_listen(const char *listen, char **iface, int *port, int *v4only)
{
    *iface = NULL;
    *v4only = 0;
    const char *colon = strrchr(listen, ':');
    char *end = NULL;
    long p = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || !end || *end || colon[1] == '\0' || p < 0 || p > 65535)
        return err_set(KF_EINVAL, "listen address \"%s\": want ADDR:PORT, [ADDR]:PORT or :PORT", listen);
    size_t n = (size_t)(colon - listen);
    if (n >= 2 && listen[0] == '[' && listen[n - 1] == ']') {
        listen++;
        n -= 2;
    } else if (n && memchr(listen, ':', n)) {
        return err_set(KF_EINVAL, "listen address \"%s\": put an IPv6 address in brackets", listen);
    } else if (n) {
        *v4only = 1;
    }
    if (n && !(n == 2 && !strncmp(listen, "::", 2)) && !(n == 7 && !strncmp(listen, "0.0.0.0", 7)) &&
        !(*iface = strndup(listen, n)))
        return err_set(KF_ENOMEM, "httpd: out of memory");
    *port = (int)p;
    return KF_OK;
}

httpd *httpd_new(const httpd_options *opt)
{
    httpd *h = calloc(1, sizeof *h);
    if (!h) {
        err_set(KF_ENOMEM, "httpd: out of memory");
        return NULL;
    }
    h->opt = *opt;
    if (!h->opt.max_body)
        h->opt.max_body = 64 * 1024;
    if (h->opt.workers <= 0)
        h->opt.workers = 4;
    if (h->opt.workers > MAX_WORKERS)
        h->opt.workers = MAX_WORKERS;
    if (h->opt.max_queued <= 0)
        h->opt.max_queued = 256;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->work_cv, NULL);
    int port = 0, v4only = 0;
    const char *listen = opt->listen ? opt->listen : ":8080";
    if (parse_listen(listen, &h->iface, &port, &v4only) != KF_OK)
        goto fail;
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log);
    h->protocols[0] = (struct lws_protocols){.name = "http", .callback = callback,
                                             .per_session_data_size = sizeof(pss), .rx_buffer_size = 4096};
    struct lws_context_creation_info ci = {0};
    ci.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS;
    ci.user = h;
    ci.max_http_header_data = MAX_HEADER;
    ci.max_http_header_pool = 64;
    ci.timeout_secs = BODY_TIMEOUT_S;
    ci.server_string = "kubefit-controller";
    ci.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    if (!(h->ctx = lws_create_context(&ci))) {
        err_set(KF_EIO, "httpd: cannot create the libwebsockets context");
        goto fail;
    }
    struct lws_context_creation_info vi = {0};
    vi.vhost_name = "kubefit";
    vi.port = port;
    vi.iface = h->iface;
    vi.protocols = h->protocols;
    vi.options = LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS | (v4only ? LWS_SERVER_OPTION_DISABLE_IPV6 : 0);
    vi.keepalive_timeout = 30;
    vi.user = h;
    h->vh = lws_create_vhost(h->ctx, &vi);
    if (!h->vh && !h->iface && !v4only) {
        /* A host without IPv6: listen on IPv4 alone. */
        vi.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
        h->vh = lws_create_vhost(h->ctx, &vi);
    }
    if (!h->vh) {
        err_set(KF_EIO, "httpd: cannot listen on %s", listen);
        goto fail;
    }
    h->port = lws_get_vhost_listen_port(h->vh);
    return h;
fail:
    httpd_free(h);
    return NULL;
}

int httpd_port(const httpd *h) { return h->port; }

static void *service(void *u)
{
    httpd *h = u;
    while (!h->stop)
        if (lws_service(h->ctx, 0) < 0) {
            log_error("httpd", "event loop stopped", NULL);
            break;
        }
    return NULL;
}

int httpd_start(httpd *h)
{
    for (int i = 0; i < h->opt.workers; i++) {
        if (pthread_create(&h->workers[i], NULL, worker, h) != 0)
            return err_set(KF_EIO, "httpd: cannot start a worker thread");
        h->nworkers++;
    }
    pthread_mutex_lock(&h->mu);
    int rc = pthread_create(&h->thread, NULL, service, h);
    if (rc == 0)
        h->running = 1;
    pthread_mutex_unlock(&h->mu);
    if (rc != 0)
        return err_set(KF_EIO, "httpd: cannot start the service thread");
    log_info("httpd", "listening", "{s:s,s:i}", "listen", h->opt.listen ? h->opt.listen : ":8080", "port", h->port);
    return KF_OK;
}

void httpd_stop(httpd *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    h->stop = 1;
    int running = h->running;
    pthread_cond_broadcast(&h->work_cv);
    pthread_mutex_unlock(&h->mu);
    /* Workers finish what they hold (their replies are dropped once the loop is gone). */
    for (int i = 0; i < h->nworkers; i++)
        pthread_join(h->workers[i], NULL);
    h->nworkers = 0;
    if (running) {
        lws_cancel_service(h->ctx);
        pthread_join(h->thread, NULL);
        pthread_mutex_lock(&h->mu);
        h->running = 0;
        pthread_mutex_unlock(&h->mu);
    }
}

void httpd_free(httpd *h)
{
    if (!h)
        return;
    httpd_stop(h);
    if (h->ctx)
        lws_context_destroy(h->ctx); /* closes connections: their requests are freed (release) */
    while (h->tasks) {
        task *t = h->tasks;
        h->tasks = t->next;
        free(t);
    }
    for (httpd_req *r = h->ready; r;) {
        httpd_req *next = r->next_ready;
        req_free(r);
        r = next;
    }
    free(h->iface);
    pthread_cond_destroy(&h->work_cv);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

httpd_stats httpd_get_stats(httpd *h)
{
    pthread_mutex_lock(&h->mu);
    httpd_stats s = h->n;
    pthread_mutex_unlock(&h->mu);
    return s;
}
