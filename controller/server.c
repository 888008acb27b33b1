#include "server.h"

#include "err.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEADER (16 * 1024)
#define MAX_BODY (64 * 1024)
#define IO_TIMEOUT_MS 5000

struct server {
    controller *ctl;
    int fd, port;
    volatile int stop;
    pthread_t thread;
    int started;
};

server *server_new(controller *c, const char *addr, int port)
{
    server *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(KF_ENOMEM, "server: out of memory");
        return NULL;
    }
    s->ctl = c;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, addr && *addr ? addr : "0.0.0.0", &a.sin_addr) != 1) {
        err_set(KF_EINVAL, "server: bad listen address \"%s\"", addr);
        free(s);
        return NULL;
    }
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    socklen_t alen = sizeof a;
    if (s->fd < 0 || setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(s->fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(s->fd, 64) != 0 ||
        getsockname(s->fd, (struct sockaddr *)&a, &alen) != 0) {
        err_set(KF_EIO, "server: cannot listen on %s:%d: %s", addr ? addr : "0.0.0.0", port, strerror(errno));
        if (s->fd >= 0)
            close(s->fd);
        free(s);
        return NULL;
    }
    s->port = ntohs(a.sin_port);
    return s;
}

int server_port(const server *s) { return s->port; }

static void reply(int fd, int status, const char *reason, const char *type, const char *body)
{
    char *msg = NULL;
    size_t blen = body ? strlen(body) : 0;
    int n = asprintf(&msg, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     status, reason, type, blen, body ? body : "");
    if (n < 0)
        return;
    for (size_t off = 0; off < (size_t)n;) {
        ssize_t w = send(fd, msg + off, (size_t)n - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    free(msg);
}

/* Reads until cond or limit; returns bytes in buf or -1 on timeout/error. */
static ssize_t read_some(int fd, char *buf, size_t cap, size_t have)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, IO_TIMEOUT_MS) <= 0)
        return -1;
    ssize_t n = recv(fd, buf + have, cap - have, 0);
    return n <= 0 ? -1 : n;
}

/* Splits "/progress/ns/name/run"; returns 0 when it matches. Strings point into path (modified). */
static int parse_progress_path(char *path, char **ns, char **name, int *run)
{
    if (strncmp(path, "/progress/", 10) != 0)
        return -1;
    *ns = path + 10;
    char *a = strchr(*ns, '/');
    if (!a)
        return -1;
    *a = '\0';
    *name = a + 1;
    char *b = strchr(*name, '/');
    if (!b)
        return -1;
    *b = '\0';
    char *end = NULL;
    long r = strtol(b + 1, &end, 10);
    if (!**ns || !**name || !end || *end || r < 1 || r > 1000000)
        return -1;
    *run = (int)r;
    return 0;
}

static void handle(server *s, int fd)
{
    size_t cap = MAX_HEADER + MAX_BODY + 1, have = 0;
    char *buf = malloc(cap), *hend = NULL;
    if (!buf)
        return;
    while (!(hend = memmem(buf, have, "\r\n\r\n", 4))) {
        if (have >= MAX_HEADER) {
            reply(fd, 431, "Request Header Fields Too Large", "text/plain", "headers too large\n");
            goto done;
        }
        ssize_t n = read_some(fd, buf, MAX_HEADER, have);
        if (n < 0)
            goto done;
        have += (size_t)n;
    }
    *hend = '\0';
    char method[8] = "", path[1024] = "";
    if (sscanf(buf, "%7s %1023s", method, path) != 2) {
        reply(fd, 400, "Bad Request", "text/plain", "bad request line\n");
        goto done;
    }
    size_t clen = 0;
    for (char *h = strstr(buf, "\r\n"); h; h = strstr(h + 2, "\r\n"))
        if (strncasecmp(h + 2, "Content-Length:", 15) == 0)
            clen = strtoul(h + 17, NULL, 10);
    char *q = strchr(path, '?');
    if (q)
        *q = '\0';
    if (strcmp(method, "GET") == 0 && strcmp(path, "/healthz") == 0) {
        reply(fd, 200, "OK", "text/plain", "ok\n");
    } else if (strcmp(method, "GET") == 0 && strcmp(path, "/readyz") == 0) {
        int ok = controller_ready(s->ctl);
        reply(fd, ok ? 200 : 503, ok ? "OK" : "Service Unavailable", "text/plain", ok ? "ok\n" : "caches not synced\n");
    } else if (strcmp(method, "GET") == 0 && strcmp(path, "/metrics") == 0) {
        char *m = controller_metrics(s->ctl);
        reply(fd, m ? 200 : 500, m ? "OK" : "Internal Server Error", "text/plain; version=0.0.4", m ? m : "");
        free(m);
    } else if (strncmp(path, "/progress/", 10) == 0) {
        char *ns, *name;
        int run;
        if (strcmp(method, "POST") != 0) {
            reply(fd, 405, "Method Not Allowed", "text/plain", "POST only\n");
            goto done;
        }
        if (parse_progress_path(path, &ns, &name, &run) != 0) {
            reply(fd, 404, "Not Found", "text/plain", "want /progress/<namespace>/<name>/<run>\n");
            goto done;
        }
        if (clen > MAX_BODY) {
            reply(fd, 413, "Payload Too Large", "text/plain", "body over 64 KiB\n");
            goto done;
        }
        char *body = hend + 4;
        size_t got = have - (size_t)(body - buf);
        while (got < clen) {
            ssize_t n = read_some(fd, buf, cap - 1, have);
            if (n < 0)
                goto done;
            have += (size_t)n;
            got += (size_t)n;
        }
        if (controller_progress(s->ctl, ns, name, run, body, clen) != 0) {
            char *m = NULL;
            if (asprintf(&m, "%s\n", err_msg()) >= 0)
                reply(fd, 400, "Bad Request", "text/plain", m);
            free(m);
            goto done;
        }
        reply(fd, 204, "No Content", "text/plain", NULL);
    } else {
        reply(fd, 404, "Not Found", "text/plain", "not found\n");
    }
done:
    free(buf);
}

static void *run(void *u)
{
    server *s = u;
    while (!s->stop) {
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        if (poll(&p, 1, 200) <= 0)
            continue;
        int fd = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        handle(s, fd);
        close(fd);
    }
    return NULL;
}

int server_start(server *s)
{
    if (pthread_create(&s->thread, NULL, run, s) != 0)
        return err_set(KF_EIO, "server: cannot start thread");
    s->started = 1;
    log_info("server", "listening", "{s:i}", "port", s->port);
    return KF_OK;
}

void server_stop(server *s)
{
    if (!s || !s->started)
        return;
    s->stop = 1;
    pthread_join(s->thread, NULL);
    s->started = 0;
}

void server_free(server *s)
{
    if (!s)
        return;
    server_stop(s);
    close(s->fd);
    free(s);
}
