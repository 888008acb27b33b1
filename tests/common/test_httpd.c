/* httpd on real sockets: routes answered at once and from workers, bodies and their limit, query
 * and bearer parsing, a slow client that holds nothing else, a client gone before its deferred
 * reply, IPv4 and IPv6, many clients at once, and WebSocket messages both ways. */
#include "err.h"
#include "http.h"
#include "httpd.h"
#include "test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    httpd *h;
    pthread_mutex_t mu;
    uint64_t ws_conn;
    char ws_got[256];
    int ws_opened, ws_closed;
    char ws_bearer[64];
    int deferred_done;
} app;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void slow_work(void *arg, httpd_req *r)
{
    app *a = arg;
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    char body[128];
    snprintf(body, sizeof body, "deferred %s", httpd_req_path(r));
    httpd_reply(r, 200, NULL, body, strlen(body), "X-Test: yes\r\n");
    pthread_mutex_lock(&a->mu);
    a->deferred_done++;
    pthread_mutex_unlock(&a->mu);
}

static void on_request(void *ctx, httpd_req *r)
{
    app *a = ctx;
    const char *path = httpd_req_path(r);
    char buf[512];
    if (!strcmp(path, "/echo")) {
        size_t len = 0;
        const char *body = httpd_req_body(r, &len);
        const char *q = httpd_req_query(r, "x"), *tok = httpd_req_bearer(r);
        snprintf(buf, sizeof buf, "%s len=%zu x=%s bearer=%s body=%.*s", httpd_req_method(r), len, q ? q : "-",
                 tok ? tok : "-", (int)len, body);
        httpd_reply(r, 200, "text/plain", buf, strlen(buf), NULL);
    } else if (!strncmp(path, "/slow", 5)) {
        httpd_defer(a->h, r, slow_work, a);
    } else if (!strcmp(path, "/big")) {
        size_t n = 200 * 1024;
        char *big = malloc(n);
        for (size_t i = 0; i < n; i++)
            big[i] = (char)('a' + i % 26);
        httpd_reply_take(r, 200, NULL, big, n, NULL);
    } else {
        httpd_reply(r, 404, NULL, "nope\n", 5, NULL);
    }
}

static int ws_path_ok(void *ctx, const char *path) { return !strcmp(path, "/ws"); }

static void ws_open(void *ctx, uint64_t conn, const char *path, const char *bearer)
{
    app *a = ctx;
    pthread_mutex_lock(&a->mu);
    a->ws_conn = conn;
    a->ws_opened++;
    snprintf(a->ws_bearer, sizeof a->ws_bearer, "%s", bearer ? bearer : "-");
    pthread_mutex_unlock(&a->mu);
}

static void ws_message(void *ctx, uint64_t conn, const char *text, size_t len)
{
    app *a = ctx;
    pthread_mutex_lock(&a->mu);
    snprintf(a->ws_got, sizeof a->ws_got, "%.*s", (int)len, text);
    pthread_mutex_unlock(&a->mu);
    char reply[300];
    snprintf(reply, sizeof reply, "echo:%.*s", (int)len, text);
    httpd_ws_send(a->h, conn, reply, strlen(reply));
}

static void ws_close(void *ctx, uint64_t conn)
{
    app *a = ctx;
    pthread_mutex_lock(&a->mu);
    a->ws_closed++;
    pthread_mutex_unlock(&a->mu);
}

static long request(http_client *c, const char *method, const char *url, const char *body, const char *auth, char **out)
{
    const char *headers[] = {auth, NULL};
    http_response r = {0};
    long status = -1;
    if (http_do(c, &(http_request){.method = method, .url = url, .body = body, .body_len = body ? strlen(body) : 0,
                                   .headers = auth ? headers : NULL},
                &r) == 0) {
        status = r.status;
        if (out)
            *out = strdup(r.body ? r.body : "");
    }
    http_response_dispose(&r);
    return status;
}

static int connect_to(int family, int port)
{
    int fd = socket(family, SOCK_STREAM, 0);
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        inet_pton(AF_INET, "127.0.0.1", &a->sin_addr);
        len = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        inet_pton(AF_INET6, "::1", &a->sin6_addr);
        len = sizeof *a;
    }
    if (fd >= 0 && connect(fd, (struct sockaddr *)&ss, len) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Reads until the peer closes, ms passes, or cap-1 bytes. */
static size_t read_all(int fd, char *buf, size_t cap, int ms)
{
    size_t have = 0;
    double end = now_s() + ms / 1000.0;
    while (have + 1 < cap) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int left = (int)((end - now_s()) * 1000);
        if (left <= 0 || poll(&p, 1, left) <= 0)
            break;
        ssize_t n = recv(fd, buf + have, cap - 1 - have, 0);
        if (n <= 0)
            break;
        have += (size_t)n;
    }
    buf[have] = '\0';
    return have;
}

static void test_http(app *a, int port)
{
    http_client *c = http_client_new(&(http_options){.timeout_ms = 5000});
    char url[128], *body = NULL;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/echo?x=a%%20b&y=2", port);
    CHECK_EQ_INT(200, request(c, "GET", url, NULL, "Authorization: Bearer tok.en-1", &body));
    CHECK_EQ_STR("GET len=0 x=a b bearer=tok.en-1 body=", body);
    free(body);
    CHECK_EQ_INT(200, request(c, "POST", url, "{\"k\":1}", "Authorization: basic xyz", &body));
    CHECK_EQ_STR("POST len=7 x=a b bearer=- body={\"k\":1}", body);
    free(body);
    /* Over the body limit (1 KiB here): 413 before the body is read. */
    char big[2048];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK_EQ_INT(413, request(c, "POST", url, big, NULL, NULL));
    snprintf(url, sizeof url, "http://127.0.0.1:%d/slow/1", port);
    CHECK_EQ_INT(200, request(c, "GET", url, NULL, NULL, &body));
    CHECK_EQ_STR("deferred /slow/1", body);
    free(body);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/big", port);
    CHECK_EQ_INT(200, request(c, "GET", url, NULL, NULL, &body));
    CHECK_EQ_INT(200 * 1024, body ? strlen(body) : 0);
    CHECK(body && body[200 * 1024 - 1] == (char)('a' + (200 * 1024 - 1) % 26));
    free(body);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/missing", port);
    CHECK_EQ_INT(404, request(c, "GET", url, NULL, NULL, NULL));
    /* Keep-alive: the same client again, several times. */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/echo", port);
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(200, request(c, "GET", url, NULL, NULL, NULL));
    http_client_free(c);
}

/* A client that sends half a request and stalls holds nothing else up. */
static void test_slow_client(int port)
{
    int fd = connect_to(AF_INET, port);
    CHECK(fd >= 0);
    const char *half = "GET /echo HTTP/1.1\r\nHost: x\r\n";
    CHECK(send(fd, half, strlen(half), 0) > 0);
    int fd2 = connect_to(AF_INET, port);
    const char *post = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly-part";
    CHECK(fd2 >= 0 && send(fd2, post, strlen(post), 0) > 0);
    http_client *c = http_client_new(&(http_options){.timeout_ms = 2000});
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/echo", port);
    double t0 = now_s();
    CHECK_EQ_INT(200, request(c, "GET", url, NULL, NULL, NULL));
    CHECK(now_s() - t0 < 1.0);
    http_client_free(c);
    /* The stalled body is cut off after the body timeout (10 s): the server closes it. */
    char buf[512];
    double t1 = now_s();
    read_all(fd2, buf, sizeof buf, 15000);
    CHECK(now_s() - t1 < 14.0);
    close(fd);
    close(fd2);
}

/* A client that leaves before its deferred answer: the answer is dropped, nothing leaks. */
static void test_gone_client(app *a, int port)
{
    pthread_mutex_lock(&a->mu);
    int before = a->deferred_done;
    pthread_mutex_unlock(&a->mu);
    int fd = connect_to(AF_INET, port);
    const char *req = "GET /slow/gone HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK(fd >= 0 && send(fd, req, strlen(req), 0) > 0);
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    close(fd);
    int done = 0;
    for (int i = 0; i < 100 && !done; i++) {
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&a->mu);
        done = a->deferred_done > before;
        pthread_mutex_unlock(&a->mu);
    }
    CHECK(done);
}

typedef struct {
    int port;
    long status;
    double secs;
} par_arg;

static void *par_get(void *u)
{
    par_arg *p = u;
    http_client *c = http_client_new(&(http_options){.timeout_ms = 10000});
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/slow/par", p->port);
    double t0 = now_s();
    p->status = request(c, "GET", url, NULL, NULL, NULL);
    p->secs = now_s() - t0;
    http_client_free(c);
    return NULL;
}

/* 8 clients of a 300 ms route on 4 workers: about 2 rounds, not 8. */
static void test_concurrent(int port)
{
    pthread_t t[8];
    par_arg args[8];
    double t0 = now_s();
    for (int i = 0; i < 8; i++) {
        args[i] = (par_arg){.port = port};
        pthread_create(&t[i], NULL, par_get, &args[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        CHECK_EQ_INT(200, args[i].status);
    }
    double all = now_s() - t0;
    if (!(all < 1.5))
        TEST_FAIL_("8 concurrent 0.3 s requests on 4 workers took %.2f s", all);
}

static void test_ipv6(int port)
{
    int fd = connect_to(AF_INET6, port);
    CHECK(fd >= 0);
    const char *req = "GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    CHECK(fd >= 0 && send(fd, req, strlen(req), 0) > 0);
    char buf[1024];
    read_all(fd, buf, sizeof buf, 3000);
    CHECK(strncmp(buf, "HTTP/1.1 200", 12) == 0);
    if (fd >= 0)
        close(fd);
}

/* A minimal WebSocket client: handshake, one masked text frame out, one frame in. */
static void test_websocket(app *a, int port)
{
    int fd = connect_to(AF_INET, port);
    char req[512], buf[2048];
    snprintf(req, sizeof req,
             "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
             "Origin: http://127.0.0.1:%d\r\nAuthorization: Bearer ws-token\r\n\r\n",
             port, port);
    CHECK(fd >= 0 && send(fd, req, strlen(req), 0) > 0);
    size_t n = 0;
    for (int i = 0; i < 30 && !strstr(buf, "\r\n\r\n"); i++)
        n += read_all(fd, buf + n, sizeof buf - n, 100);
    CHECK(strncmp(buf, "HTTP/1.1 101", 12) == 0);
    CHECK(strstr(buf, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") != NULL);
    const char *msg = "hello";
    unsigned char frame[32] = {0x81, 0x80 | 5, 1, 2, 3, 4};
    for (int i = 0; i < 5; i++)
        frame[6 + i] = (unsigned char)msg[i] ^ frame[2 + i % 4];
    CHECK(send(fd, frame, 11, 0) == 11);
    n = read_all(fd, buf, sizeof buf, 1000);
    CHECK(n >= 2 && (unsigned char)buf[0] == 0x81);
    CHECK(n >= 2 && (size_t)(buf[1] & 0x7f) == strlen("echo:hello") && !memcmp(buf + 2, "echo:hello", 10));
    pthread_mutex_lock(&a->mu);
    CHECK_EQ_STR("hello", a->ws_got);
    CHECK_EQ_STR("ws-token", a->ws_bearer);
    uint64_t conn = a->ws_conn;
    pthread_mutex_unlock(&a->mu);
    /* Pushed from another thread. */
    CHECK_EQ_INT(0, httpd_ws_send(a->h, conn, "push", 4));
    n = read_all(fd, buf, sizeof buf, 1000);
    CHECK(n == 6 && !memcmp(buf + 2, "push", 4));
    close(fd);
    int closed = 0;
    struct timespec ts = {0, 20 * 1000 * 1000};
    for (int i = 0; i < 100 && !closed; i++) {
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&a->mu);
        closed = a->ws_closed;
        pthread_mutex_unlock(&a->mu);
    }
    CHECK_EQ_INT(1, closed);
    CHECK_EQ_INT(KF_ENOTFOUND, httpd_ws_send(a->h, conn, "late", 4));
    /* Another origin, or a path the app does not take: no upgrade. */
    fd = connect_to(AF_INET, port);
    snprintf(req, sizeof req,
             "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
             "Origin: http://evil.example\r\n\r\n",
             port);
    CHECK(fd >= 0 && send(fd, req, strlen(req), 0) > 0);
    read_all(fd, buf, sizeof buf, 1000);
    CHECK(strncmp(buf, "HTTP/1.1 101", 12) != 0);
    close(fd);
    pthread_mutex_lock(&a->mu);
    CHECK_EQ_INT(1, a->ws_opened);
    pthread_mutex_unlock(&a->mu);
}

static void test_listen_errors(void)
{
    CHECK(httpd_new(&(httpd_options){.on_request = on_request, .listen = "nonsense"}) == NULL);
    CHECK(strstr(err_msg(), "want ADDR:PORT") != NULL);
    CHECK(httpd_new(&(httpd_options){.on_request = on_request, .listen = "::1:80"}) == NULL);
    CHECK(strstr(err_msg(), "brackets") != NULL);
    httpd *a = httpd_new(&(httpd_options){.on_request = on_request, .listen = "127.0.0.1:0"});
    CHECK(a != NULL);
    char taken[64];
    snprintf(taken, sizeof taken, "127.0.0.1:%d", a ? httpd_port(a) : 1);
    CHECK(httpd_new(&(httpd_options){.on_request = on_request, .listen = taken}) == NULL);
    CHECK(strstr(err_msg(), "cannot listen") != NULL);
    httpd_free(a);
    /* IPv4 only: no IPv6 connection. */
    httpd *v4 = httpd_new(&(httpd_options){.on_request = on_request, .listen = "127.0.0.1:0"});
    CHECK(v4 && httpd_start(v4) == 0);
    int fd = v4 ? connect_to(AF_INET6, httpd_port(v4)) : -1;
    CHECK(fd < 0);
    if (fd >= 0)
        close(fd);
    httpd_free(v4);
}

int main(void)
{
    http_global_init();
    app a = {.mu = PTHREAD_MUTEX_INITIALIZER};
    a.h = httpd_new(&(httpd_options){.on_request = on_request, .ws_path_ok = ws_path_ok, .on_ws_open = ws_open,
                                     .on_ws_message = ws_message, .on_ws_close = ws_close, .ctx = &a,
                                     .listen = ":0", .max_body = 1024, .workers = 4});
    CHECK(a.h != NULL);
    if (!a.h)
        return test_done();
    int port = httpd_port(a.h);
    CHECK(port > 0);
    CHECK_EQ_INT(0, httpd_start(a.h));
    test_http(&a, port);
    test_ipv6(port);
    test_concurrent(port);
    test_gone_client(&a, port);
    test_websocket(&a, port);
    test_slow_client(port);
    httpd_stats st = httpd_get_stats(a.h);
    CHECK(st.requests >= 15);
    CHECK(st.responses_4xx >= 2);
    httpd_free(a.h);
    test_listen_errors();
    return test_done();
}
