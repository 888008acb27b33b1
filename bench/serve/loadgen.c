/* loadgen: a closed-loop HTTP/1.1 load generator for bench/serve.sh. C connections (keep-alive) on
 * one thread (epoll) each send a POST, wait for the whole response, and send the next one, for a
 * fixed time; bodies are the lines of a file, taken in turn. Prints one JSON line:
 *   {"concurrency":8,"seconds":10.0,"requests":1234,"errors":0,"rps":123.4,"p50_ms":..,"p99_ms":..,
 *    "mean_ms":..,"max_ms":..}
 * Latency is from the request's first byte sent to its response's last byte read. A response
 * that is not 2xx, or a connection that fails, counts as an error (the connection is reopened).
 * Responses: Content-Length or chunked bodies.
 *   loadgen --port P --path /predictions/m --bodies texts.txt [--host 127.0.0.1] [--concurrency C]
 *           [--seconds S] [--warmup S] [--content-type T] */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONN 1024
#define RESP_CAP (8u << 20)

typedef struct {
    int fd;
    char *req;       /* the request being sent */
    size_t req_len, sent;
    char *resp;      /* what has been read of the response */
    size_t resp_len, resp_cap;
    double t0;
} conn;

static struct sockaddr_in addr;
static char **bodies;
static size_t nbodies, next_body;
static const char *path = "/", *host = "127.0.0.1", *ctype = "text/plain";
static double *lat;
static size_t nlat, lat_cap;
static long errors;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int open_conn(conn *c, int ep)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0)
        return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    return epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void next_request(conn *c)
{
    const char *b = bodies[next_body++ % nbodies];
    size_t blen = strlen(b);
    free(c->req);
    c->req_len = (size_t)asprintf(&c->req,
                                  "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                                  "Connection: keep-alive\r\n\r\n%s",
                                  path, host, ctype, blen, b);
    c->sent = 0;
    c->resp_len = 0;
    c->t0 = now();
}

/* 1 when resp holds a whole response; *status receives its code. */
static int complete(conn *c, int *status)
{
    c->resp[c->resp_len] = 0;
    char *end = strstr(c->resp, "\r\n\r\n");
    if (!end)
        return 0;
    *status = atoi(c->resp + 9);
    size_t head = (size_t)(end - c->resp) + 4, body = 0;
    int chunked = 0;
    for (char *p = c->resp; p && p < end; p = strstr(p, "\r\n"), p = p ? p + 2 : NULL) {
        if (!strncasecmp(p, "content-length:", 15))
            body = (size_t)strtoull(p + 15, NULL, 10);
        else if (!strncasecmp(p, "transfer-encoding:", 18))
            chunked = 1;
    }
    if (!chunked)
        return c->resp_len >= head + body;
    /* chunked: SIZE CRLF DATA CRLF ... 0 CRLF CRLF */
    size_t off = head;
    for (;;) {
        char *eol = off < c->resp_len ? strstr(c->resp + off, "\r\n") : NULL;
        if (!eol)
            return 0;
        size_t n = (size_t)strtoul(c->resp + off, NULL, 16), data = (size_t)(eol - c->resp) + 2;
        if (n == 0)
            return c->resp_len >= data + 2;
        off = data + n + 2;
        if (off > c->resp_len)
            return 0;
    }
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int port = 0, concurrency = 1;
    double seconds = 10, warmup = 2;
    const char *bodies_file = NULL;
    static const struct option opts[] = {{"host", 1, 0, 'h'},         {"port", 1, 0, 'p'},    {"path", 1, 0, 'u'},
                                         {"bodies", 1, 0, 'b'},       {"concurrency", 1, 0, 'c'},
                                         {"seconds", 1, 0, 's'},      {"warmup", 1, 0, 'w'},
                                         {"content-type", 1, 0, 't'}, {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'h': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'u': path = optarg; break;
        case 'b': bodies_file = optarg; break;
        case 'c': concurrency = atoi(optarg); break;
        case 's': seconds = atof(optarg); break;
        case 'w': warmup = atof(optarg); break;
        case 't': ctype = optarg; break;
        default: return 2;
        }
    }
    if (!port || !bodies_file || concurrency < 1 || concurrency > MAX_CONN) {
        fprintf(stderr, "usage: loadgen --port P --path PATH --bodies FILE [--concurrency C] [--seconds S]\n");
        return 2;
    }
    FILE *f = fopen(bodies_file, "r");
    if (!f) {
        perror(bodies_file);
        return 2;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        if (!n)
            continue;
        bodies = realloc(bodies, (nbodies + 1) * sizeof *bodies);
        bodies[nbodies++] = strdup(line);
    }
    free(line);
    fclose(f);
    if (!nbodies) {
        fprintf(stderr, "%s: no bodies\n", bodies_file);
        return 2;
    }
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, host, &addr.sin_addr);
    int ep = epoll_create1(0);
    conn *cs = calloc((size_t)concurrency, sizeof *cs);
    for (int i = 0; i < concurrency; i++) {
        cs[i].resp_cap = 65536;
        cs[i].resp = malloc(cs[i].resp_cap + 1);
        if (open_conn(&cs[i], ep) < 0) {
            perror("connect");
            return 1;
        }
        next_request(&cs[i]);
    }
    double start = now(), measure = start + warmup, stop = measure + seconds;
    struct epoll_event evs[64];
    while (now() < stop) {
        int k = epoll_wait(ep, evs, 64, 100);
        for (int e = 0; e < k; e++) {
            conn *c = evs[e].data.ptr;
            int failed = (evs[e].events & (EPOLLERR | EPOLLHUP)) && !(evs[e].events & EPOLLIN);
            if (!failed && (evs[e].events & EPOLLOUT) && c->sent < c->req_len) {
                ssize_t w = send(c->fd, c->req + c->sent, c->req_len - c->sent, MSG_NOSIGNAL);
                if (w < 0 && errno != EAGAIN)
                    failed = 1;
                else if (w > 0)
                    c->sent += (size_t)w;
                if (c->sent == c->req_len) {
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
            }
            if (!failed && (evs[e].events & EPOLLIN)) {
                for (;;) {
                    if (c->resp_len == c->resp_cap) {
                        if (c->resp_cap >= RESP_CAP) {
                            failed = 1;
                            break;
                        }
                        c->resp_cap *= 2;
                        c->resp = realloc(c->resp, c->resp_cap + 1);
                    }
                    ssize_t r = recv(c->fd, c->resp + c->resp_len, c->resp_cap - c->resp_len, 0);
                    if (r > 0) {
                        c->resp_len += (size_t)r;
                        continue;
                    }
                    if (r == 0 || errno != EAGAIN)
                        failed = 1;
                    break;
                }
                int status = 0;
                if (!failed && complete(c, &status)) {
                    double t = now();
                    if (c->t0 >= measure) {
                        if (status < 200 || status > 299) {
                            errors++;
                        } else {
                            if (nlat == lat_cap)
                                lat = realloc(lat, (lat_cap = lat_cap ? 2 * lat_cap : 4096) * sizeof *lat);
                            lat[nlat++] = t - c->t0;
                        }
                    }
                    next_request(c);
                    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
            }
            if (failed) {
                if (c->t0 >= measure)
                    errors++;
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                if (open_conn(c, ep) < 0) {
                    perror("reconnect");
                    return 1;
                }
                next_request(c);
            }
        }
    }
    qsort(lat, nlat, sizeof *lat, cmp);
    double sum = 0;
    for (size_t i = 0; i < nlat; i++)
        sum += lat[i];
    double p50 = nlat ? lat[nlat / 2] : 0, p99 = nlat ? lat[(size_t)((double)(nlat - 1) * 0.99)] : 0;
    printf("{\"concurrency\":%d,\"seconds\":%.1f,\"requests\":%zu,\"errors\":%ld,\"rps\":%.2f,\"p50_ms\":%.2f,"
           "\"p99_ms\":%.2f,\"mean_ms\":%.2f,\"max_ms\":%.2f}\n",
           concurrency, seconds, nlat, errors, (double)nlat / seconds, p50 * 1e3, p99 * 1e3,
           nlat ? sum / (double)nlat * 1e3 : 0, nlat ? lat[nlat - 1] * 1e3 : 0);
    fflush(stdout);
    for (int i = 0; i < concurrency; i++) {
        if (cs[i].fd >= 0)
            close(cs[i].fd);
        free(cs[i].req);
        free(cs[i].resp);
    }
    free(cs);
    for (size_t i = 0; i < nbodies; i++)
        free(bodies[i]);
    free(bodies);
    free(lat);
    close(ep);
    return 0;
}

