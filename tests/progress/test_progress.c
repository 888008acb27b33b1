/* The trainer's progress sender (trainer/train/progress.c) against real sockets: a stalled
 * server never slows progress_emit (measured), the bearer token comes from the file that
 * KUBEFIT_PROGRESS_TOKEN_FILE names and is re-read, the newest report wins, failures back off,
 * 429 honours Retry-After, 409 drops the report, and progress_free delivers the last one. */
#include "progress.h"
#include "test.h"
#include "../storage/mini_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nap(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

typedef struct {
    pthread_mutex_t mu;
    int status;          /* what to answer */
    char retry_after[8]; /* with 429 */
    int posts;
    char last_auth[128];
    char last_body[512];
    double last_at;
} fake;

static void handler(void *ctx, const mini_request *req, mini_response *resp)
{
    fake *f = ctx;
    char *auth = mini_header(req, "Authorization");
    pthread_mutex_lock(&f->mu);
    f->posts++;
    snprintf(f->last_auth, sizeof f->last_auth, "%s", auth ? auth : "");
    snprintf(f->last_body, sizeof f->last_body, "%s", req->body ? req->body : "");
    f->last_at = now_s();
    resp->status = f->status;
    if (f->status == 429)
        snprintf(resp->headers, sizeof resp->headers, "Retry-After: %s\r\n", f->retry_after);
    pthread_mutex_unlock(&f->mu);
    free(auth);
}

static progress_event ev(long step)
{
    return (progress_event){.stage = "finetune-lm", .epoch = 1, .epochs = 2, .step = step, .steps = 100,
                            .loss = 4.5 - step * 0.01, .percent = step / 2.0, .eta_seconds = 10};
}

static int wait_posts(fake *f, int n, double secs)
{
    double end = now_s() + secs;
    for (;;) {
        pthread_mutex_lock(&f->mu);
        int got = f->posts;
        pthread_mutex_unlock(&f->mu);
        if (got >= n || now_s() > end)
            return got;
        nap(0.01);
    }
}

/* A listener that accepts nothing: connections complete (backlog) and then hang. */
static void test_stalled(FILE *sink)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    socklen_t len = sizeof a;
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(fd, 1) == 0 &&
          getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/progress/ns/j/1", ntohs(a.sin_port));
    progress *p = NULL;
    CHECK_EQ_INT(0, progress_new(&p, url, sink));
    /* 2000 reports, as a step loop would emit them, while every POST hangs. */
    double t0 = now_s();
    for (long i = 1; i <= 2000; i++) {
        progress_event e = ev(i);
        progress_emit(p, &e);
    }
    double loop = now_s() - t0;
    progress_stats st = progress_get_stats(p);
    printf("stalled server: 2000 emits in %.4f s (%.1f us each), slowest %.1f us; %ld replaced in the mailbox\n",
           loop, loop / 2000 * 1e6, st.max_emit_seconds * 1e6, st.replaced);
    CHECK_EQ_INT(2000, st.emitted);
    CHECK(st.replaced >= 1990); /* at most a handful reached the (hung) sender */
    if (!(st.max_emit_seconds < 0.05))
        TEST_FAIL_("an emit took %.3f s with a stalled server (want < 0.05 s)", st.max_emit_seconds);
    if (!(loop < 1.0))
        TEST_FAIL_("2000 emits took %.3f s with a stalled server (want < 1 s)", loop);
    /* progress_free gives up on the stalled server in bounded time (in flight + one last try). */
    double t1 = now_s();
    progress_free(p);
    double freed = now_s() - t1;
    printf("stalled server: progress_free took %.2f s\n", freed);
    if (!(freed < 8.0))
        TEST_FAIL_("progress_free took %.2f s with a stalled server (want < 8 s)", freed);
    close(fd);
}

static void test_delivery(FILE *sink)
{
    fake f = {.mu = PTHREAD_MUTEX_INITIALIZER, .status = 204};
    mini_server srv;
    CHECK_EQ_INT(0, mini_server_start(&srv, handler, &f));
    char url[96], tokfile[] = "/tmp/kubefit-progress-token-XXXXXX";
    int tfd = mkstemp(tokfile);
    CHECK(tfd >= 0 && write(tfd, "token-one\n", 10) == 10);
    close(tfd);
    setenv("KUBEFIT_PROGRESS_TOKEN_FILE", tokfile, 1);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/progress/ns/j/1", srv.port);
    progress *p = NULL;
    CHECK_EQ_INT(0, progress_new(&p, url, sink));
    progress_event e = ev(1);
    progress_emit(p, &e);
    CHECK(wait_posts(&f, 1, 5) >= 1);
    pthread_mutex_lock(&f.mu);
    CHECK_EQ_STR("Bearer token-one", f.last_auth);
    CHECK(strstr(f.last_body, "\"step\":1,") != NULL);
    pthread_mutex_unlock(&f.mu);
    /* The kubelet rotates the token: the next POST reads the new one. */
    FILE *tf = fopen(tokfile, "w");
    fputs("token-two", tf);
    fclose(tf);
    e = ev(2);
    progress_emit(p, &e);
    CHECK(wait_posts(&f, 2, 5) >= 2);
    pthread_mutex_lock(&f.mu);
    CHECK_EQ_STR("Bearer token-two", f.last_auth);
    /* Server errors: retried with backoff (0.5 s, 1 s, ...), the newest report going out. */
    f.status = 503;
    int before = f.posts;
    pthread_mutex_unlock(&f.mu);
    e = ev(3);
    progress_emit(p, &e);
    CHECK(wait_posts(&f, before + 2, 5) >= before + 2); /* first try + a retry after 0.5 s */
    e = ev(4);
    progress_emit(p, &e); /* replaces 3 while backing off */
    pthread_mutex_lock(&f.mu);
    f.status = 204;
    before = f.posts;
    pthread_mutex_unlock(&f.mu);
    CHECK(wait_posts(&f, before + 1, 5) >= before + 1);
    nap(0.2);
    pthread_mutex_lock(&f.mu);
    CHECK(strstr(f.last_body, "\"step\":4,") != NULL);
    /* 429: the next POST waits for Retry-After. */
    f.status = 429;
    snprintf(f.retry_after, sizeof f.retry_after, "2");
    before = f.posts;
    pthread_mutex_unlock(&f.mu);
    e = ev(5);
    progress_emit(p, &e);
    CHECK(wait_posts(&f, before + 1, 5) >= before + 1);
    pthread_mutex_lock(&f.mu);
    double first = f.last_at;
    f.status = 204;
    pthread_mutex_unlock(&f.mu);
    CHECK(wait_posts(&f, before + 2, 5) >= before + 2);
    pthread_mutex_lock(&f.mu);
    double gap = f.last_at - first;
    pthread_mutex_unlock(&f.mu);
    if (!(gap >= 1.9 && gap < 3.5))
        TEST_FAIL_("after 429 with Retry-After: 2 the retry came %.2f s later", gap);
    /* 409: dropped, not retried. */
    pthread_mutex_lock(&f.mu);
    f.status = 409;
    before = f.posts;
    pthread_mutex_unlock(&f.mu);
    e = ev(6);
    progress_emit(p, &e);
    CHECK(wait_posts(&f, before + 1, 5) >= before + 1);
    nap(1.0);
    pthread_mutex_lock(&f.mu);
    CHECK_EQ_INT(before + 1, f.posts);
    f.status = 204;
    pthread_mutex_unlock(&f.mu);
    /* The last report of a run is delivered by progress_free. */
    e = ev(7);
    progress_emit(p, &e);
    progress_stats st = progress_get_stats(p);
    progress_free(p);
    pthread_mutex_lock(&f.mu);
    CHECK(strstr(f.last_body, "\"step\":7,") != NULL);
    pthread_mutex_unlock(&f.mu);
    CHECK_EQ_INT(7, st.emitted);
    CHECK(st.refused == 1);
    CHECK(st.failed >= 3);
    mini_server_stop(&srv);
    unsetenv("KUBEFIT_PROGRESS_TOKEN_FILE");
    unlink(tokfile);
}

int main(void)
{
    FILE *sink = fopen("/dev/null", "w");
    test_stalled(sink);
    test_delivery(sink);
    fclose(sink);
    return test_done();
}
