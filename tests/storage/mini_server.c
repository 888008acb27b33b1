#include "mini_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

char *mini_header(const mini_request *req, const char *name)
{
    size_t n = strlen(name);
    for (const char *l = req->headers; l && *l;) {
        const char *eol = strstr(l, "\r\n");
        size_t len = eol ? (size_t)(eol - l) : strlen(l);
        if (len > n && l[n] == ':' && strncasecmp(l, name, n) == 0) {
            const char *v = l + n + 1;
            while (*v == ' ')
                v++;
            return strndup(v, len - (size_t)(v - l));
        }
        if (!eol)
            break;
        l = eol + 2;
    }
    return NULL;
}

void mini_body(mini_response *resp, const char *s)
{
    free(resp->body);
    resp->body = strdup(s);
    resp->body_len = strlen(s);
}

static void serve(mini_server *s, int fd)
{
    size_t cap = 65536, got = 0, hend = 0; /* hend: offset of the blank line, 0 until seen */
    char *buf = malloc(cap);
    mini_request req = {0};
    mini_response resp = {.status = 500};
    while (buf) {
        if (got + 1 >= cap) {
            char *p = realloc(buf, cap * 2);
            if (!p)
                goto done;
            buf = p, cap *= 2;
        }
        ssize_t n = read(fd, buf + got, cap - got - 1);
        if (n <= 0)
            goto done;
        got += (size_t)n;
        buf[got] = '\0';
        char *end;
        if (!hend && (end = strstr(buf, "\r\n\r\n"))) {
            hend = (size_t)(end - buf);
            *end = '\0';
            req.headers = strchr(buf, '\n') ? strchr(buf, '\n') + 1 : "";
            char *cl = mini_header(&req, "Content-Length");
            req.body_len = cl ? strtoul(cl, NULL, 10) : 0;
            free(cl);
        }
        if (hend && got >= hend + 4 + req.body_len)
            break;
    }
    if (!buf)
        goto done;
    req.headers = strchr(buf, '\n') ? strchr(buf, '\n') + 1 : buf + hend;
    char *sp1 = strchr(buf, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2)
        goto done;
    req.method = strndup(buf, (size_t)(sp1 - buf));
    req.target = strndup(sp1 + 1, (size_t)(sp2 - sp1 - 1));
    req.body = buf + hend + 4;
    req.body[req.body_len] = '\0';
    s->handler(s->ctx, &req, &resp);
    s->requests++;
    if (resp.status > 0) {
        char head[1024];
        int hn = snprintf(head, sizeof head, "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n",
                          resp.status, resp.body_len, resp.headers);
        if (write(fd, head, (size_t)hn) < 0 || (resp.body_len && write(fd, resp.body, resp.body_len) < 0))
            goto done;
    } /* status <= 0: drop the connection without an answer */
done:
    free(req.method);
    free(req.target);
    free(resp.body);
    free(buf);
    close(fd);
}

static void *loop(void *u)
{
    mini_server *s = u;
    while (!s->stop) {
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        int fd = accept(s->fd, NULL, NULL);
        if (fd >= 0)
            serve(s, fd);
    }
    return NULL;
}

int mini_server_start(mini_server *s, mini_handler h, void *ctx)
{
    memset(s, 0, sizeof *s);
    s->handler = h;
    s->ctx = ctx;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(s->fd, 16) != 0 ||
        getsockname(s->fd, (struct sockaddr *)&a, &alen) != 0)
        return -1;
    s->port = ntohs(a.sin_port);
    return pthread_create(&s->thread, NULL, loop, s) == 0 ? 0 : -1;
}

void mini_server_stop(mini_server *s)
{
    s->stop = 1;
    pthread_join(s->thread, NULL);
    close(s->fd);
}
