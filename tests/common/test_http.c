/* http client against a one-shot HTTP server on a loopback port this test picks. */
#include "err.h"
#include "http.h"
#include "test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    int listen_fd;
    const char *reply;
    char request[4096];
} server;

static void *serve_once(void *u)
{
    server *s = u;
    int fd = accept(s->listen_fd, NULL, NULL);
    if (fd < 0)
        return NULL;
    size_t got = 0;
    while (got < sizeof s->request - 1) {
        ssize_t n = read(fd, s->request + got, sizeof s->request - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        s->request[got] = '\0';
        char *end = strstr(s->request, "\r\n\r\n");
        if (end) {
            char *cl = strstr(s->request, "Content-Length: ");
            size_t want = cl ? (size_t)atol(cl + 16) : 0;
            if (got >= (size_t)(end + 4 - s->request) + want)
                break;
        }
    }
    ssize_t w = write(fd, s->reply, strlen(s->reply));
    (void)w;
    close(fd);
    return NULL;
}

static int start(server *s, char *url, size_t url_len)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (s->listen_fd < 0 || bind(s->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(s->listen_fd, 1) != 0 || getsockname(s->listen_fd, (struct sockaddr *)&a, &alen) != 0)
        return -1;
    snprintf(url, url_len, "http://127.0.0.1:%d/path", ntohs(a.sin_port));
    return 0;
}

static int count_chunks(void *ctx, const char *data, size_t len)
{
    size_t *total = ctx;
    (void)data;
    *total += len;
    return 0;
}

int main(void)
{
    http_client *c = http_client_new(&(http_options){.timeout_ms = 5000});
    CHECK(c != NULL);
    char url[128];
    pthread_t th;

    /* POST with body and headers; 201 with a Location header and a body in memory. */
    server s1 = {.reply = "HTTP/1.1 201 Created\r\nLocation: http://x/upload?id=7\r\n"
                          "Content-Length: 5\r\nConnection: close\r\n\r\nhello"};
    CHECK_EQ_INT(0, start(&s1, url, sizeof url));
    pthread_create(&th, NULL, serve_once, &s1);
    http_response r;
    const char *hdrs[] = {"Content-Type: application/json", NULL};
    CHECK_EQ_INT(0, http_do(c, &(http_request){.method = "POST", .url = url, .headers = hdrs,
                                               .body = "{\"a\":1}", .body_len = 7},
                            &r));
    pthread_join(th, NULL);
    close(s1.listen_fd);
    CHECK_EQ_INT(201, r.status);
    CHECK_EQ_STR("hello", r.body);
    char *loc = http_response_header(&r, "location");
    CHECK_EQ_STR("http://x/upload?id=7", loc);
    free(loc);
    CHECK(http_response_header(&r, "x-missing") == NULL);
    CHECK(strstr(s1.request, "POST /path HTTP/1.1") != NULL);
    CHECK(strstr(s1.request, "Content-Type: application/json") != NULL);
    CHECK(strstr(s1.request, "{\"a\":1}") != NULL);
    http_response_dispose(&r);

    /* 2xx body streamed to a callback; the memory body stays empty. */
    server s2 = {.reply = "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{\"x\":1}\n{}\n"};
    CHECK_EQ_INT(0, start(&s2, url, sizeof url));
    pthread_create(&th, NULL, serve_once, &s2);
    size_t total = 0;
    CHECK_EQ_INT(0, http_do(c, &(http_request){.url = url, .on_data = count_chunks, .ctx = &total}, &r));
    pthread_join(th, NULL);
    close(s2.listen_fd);
    CHECK_EQ_INT(200, r.status);
    CHECK_EQ_INT(11, total);
    CHECK_EQ_INT(0, r.body_len);
    http_response_dispose(&r);

    /* A non-2xx body reaches memory even in streaming mode, so errors can be read. */
    server s3 = {.reply = "HTTP/1.1 410 Gone\r\nContent-Length: 4\r\nConnection: close\r\n\r\ngone"};
    CHECK_EQ_INT(0, start(&s3, url, sizeof url));
    pthread_create(&th, NULL, serve_once, &s3);
    total = 0;
    CHECK_EQ_INT(0, http_do(c, &(http_request){.url = url, .on_data = count_chunks, .ctx = &total}, &r));
    pthread_join(th, NULL);
    close(s3.listen_fd);
    CHECK_EQ_INT(410, r.status);
    CHECK_EQ_STR("gone", r.body);
    CHECK_EQ_INT(0, total);
    http_response_dispose(&r);

    /* Nothing listening: a retryable error naming the URL. */
    server s4 = {0};
    CHECK_EQ_INT(0, start(&s4, url, sizeof url));
    close(s4.listen_fd);
    CHECK_EQ_INT(KF_ERETRY, http_do(c, &(http_request){.url = url}, &r));
    CHECK(strstr(err_msg(), url) != NULL);

    char *e = http_escape("a b/c?d=é");
    CHECK_EQ_STR("a%20b%2Fc%3Fd%3D%C3%A9", e);
    free(e);
    http_client_free(c);
    return test_done();
}
