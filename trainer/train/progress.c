/* progress: JSON lines on stdout + a background sender. See progress.h. */
#include "progress.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "contract.h"
#include "err.h"
#include "fileio.h"
#include "http.h"
#include "log.h"

#define BACKOFF_MIN_S 0.5
#define BACKOFF_MAX_S 30.0
#define FINAL_TIMEOUT_MS 2000
#define MAX_TOKEN_BYTES (64 * 1024)

struct progress {
    FILE *out;
    char *url, *token_file;
    http_client *http;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *pending;       /* the newest report not yet sent */
    volatile int stop;   /* also aborts a request in flight */
    int warned[6];       /* one warning per kind: connection, 401/403, 404, 429, 5xx, other */
    progress_stats n;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* "Authorization: Bearer <token>" from the token file, or NULL (no file, or unreadable: the
 * server then says 401 and the warning names the file). Caller frees (and clears). */
static char *auth_header(progress *p)
{
    char *text = NULL, *h = NULL;
    size_t len = 0;
    if (!p->token_file || file_read_max(&text, &len, p->token_file, MAX_TOKEN_BYTES) < 0)
        return NULL;
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        text[--len] = '\0';
    if (len && asprintf(&h, "Authorization: Bearer %s", text) < 0)
        h = NULL;
    explicit_bzero(text, len);
    free(text);
    return h;
}

static void clear_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static void warn_once(progress *p, int kind, long status, const char *why)
{
    if (p->warned[kind])
        return;
    p->warned[kind] = 1;
    log_warn("progress", "progress POST failed (retried with backoff; the run goes on)", "{s:s,s:i,s:s,s:s}", "url",
             p->url, "status", (int)status, "error", why, "tokenFile", p->token_file ? p->token_file : "");
}

/* One POST. Returns the seconds to wait before the next (0: sent or dropped), and *keep = 1 when
 * line should be sent again. */
static double post(progress *p, const char *line, int final, int *keep, double backoff)
{
    *keep = 0;
    char *auth = auth_header(p);
    const char *headers[] = {"Content-Type: application/json", auth, NULL};
    http_response resp = {0};
    int rc = http_do(p->http, &(http_request){.method = "POST", .url = p->url, .headers = headers, .body = line,
                                              .body_len = strlen(line), .timeout_ms = final ? FINAL_TIMEOUT_MS : 0,
                                              .cancel = final ? NULL : &p->stop},
                     &resp);
    clear_free(auth);
    double wait = 0;
    long st = rc < 0 ? 0 : resp.status;
    pthread_mutex_lock(&p->mu);
    if (st / 100 == 2) {
        p->n.sent++;
    } else if (st == 409) {
        p->n.refused++; /* the run is over or not current: this report has no place to go */
    } else {
        p->n.failed++;
        *keep = 1;
        wait = backoff <= 0 ? BACKOFF_MIN_S : backoff * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : backoff * 2;
        char *ra = st == 429 ? http_response_header(&resp, "Retry-After") : NULL;
        if (ra && atof(ra) > 0)
            wait = atof(ra) < BACKOFF_MAX_S ? atof(ra) : BACKOFF_MAX_S;
        free(ra);
    }
    pthread_mutex_unlock(&p->mu);
    if (*keep && !p->stop) {
        int kind = st == 0 ? 0 : st == 401 || st == 403 ? 1 : st == 404 ? 2 : st == 429 ? 3 : st >= 500 ? 4 : 5;
        if (kind != 3)
            warn_once(p, kind, st, rc < 0 ? err_msg() : resp.body ? resp.body : "");
    }
    http_response_dispose(&resp);
    return wait;
}

static void *sender(void *u)
{
    progress *p = u;
    double backoff = 0, next = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->pending && !p->stop)
            pthread_cond_wait(&p->cv, &p->mu);
        if (!p->pending)
            break;
        /* After a failure: wait (newer reports may replace the pending one meanwhile). */
        while (!p->stop && now_s() < next) {
            double left = next - now_s();
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += (time_t)left;
            ts.tv_nsec += (long)((left - (double)(time_t)left) * 1e9);
            if (ts.tv_nsec >= 1000000000L)
                ts.tv_sec++, ts.tv_nsec -= 1000000000L;
            pthread_cond_timedwait(&p->cv, &p->mu, &ts);
        }
        int final = p->stop;
        if (final && backoff > 0)
            break; /* the last POST failed (or hung until the end): no point in waiting at exit */
        char *line = p->pending;
        p->pending = NULL;
        pthread_mutex_unlock(&p->mu);
        int keep = 0;
        double wait = post(p, line, final, &keep, backoff);
        backoff = wait;
        next = now_s() + wait;
        pthread_mutex_lock(&p->mu);
        if (keep && !p->pending && !final)
            p->pending = line; /* still the newest: send it again */
        else
            free(line);
        if (final)
            break;
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int progress_new(progress **out, const char *url, FILE *stream)
{
    progress *p = calloc(1, sizeof *p);
    *out = NULL;
    if (!p)
        return err_set(KF_ENOMEM, "out of memory");
    p->out = stream ? stream : stdout;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (url && *url) {
        http_global_init();
        const char *tf = getenv(CONTRACT_PROGRESS_TOKEN_ENV);
        p->url = strdup(url);
        p->token_file = tf && *tf ? strdup(tf) : NULL;
        p->http = http_client_new(&(http_options){.connect_timeout_ms = 2000, .timeout_ms = 5000});
        if (!p->url || !p->http || pthread_create(&p->thread, NULL, sender, p) != 0) {
            log_warn("progress", "progress endpoint disabled", "{s:s,s:s}", "url", url, "error", err_msg());
            free(p->url);
            p->url = NULL;
        } else {
            p->started = 1;
        }
    }
    *out = p;
    return 0;
}

void progress_free(progress *p)
{
    if (!p)
        return;
    if (p->started) {
        pthread_mutex_lock(&p->mu);
        p->stop = 1;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thread, NULL);
    }
    if (p->url)
        log_info("progress", "progress reports", "{s:I,s:I,s:I,s:I,s:I}", "emitted", (json_int_t)p->n.emitted, "sent",
                 (json_int_t)p->n.sent, "replaced", (json_int_t)p->n.replaced, "failed", (json_int_t)p->n.failed,
                 "refused", (json_int_t)p->n.refused);
    free(p->pending);
    http_client_free(p->http);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->url);
    free(p->token_file);
    free(p);
}

static json_t *num(double x) { return isfinite(x) ? json_real(x) : json_null(); }

char *progress_format(const progress_event *e)
{
    json_t *o = json_pack("{s:s,s:i,s:i,s:I,s:I,s:o,s:o}", "stage", e->stage, "epoch", e->epoch, "epochs",
                          e->epochs, "step", (json_int_t)e->step, "steps", (json_int_t)e->steps, "loss",
                          num(e->loss), "percent", json_real(round(e->percent * 10) / 10));
    if (!o)
        return NULL;
    if (e->eta_seconds >= 0)
        json_object_set_new(o, "etaSeconds", json_integer((json_int_t)llround(e->eta_seconds)));
    char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(5));
    json_decref(o);
    return s;
}

void progress_emit(progress *p, const progress_event *e)
{
    double t0 = now_s();
    char *line = progress_format(e);
    if (!line)
        return;
    fprintf(p->out, "%s\n", line);
    fflush(p->out);
    pthread_mutex_lock(&p->mu);
    p->n.emitted++;
    if (p->started && !p->stop) {
        if (p->pending)
            p->n.replaced++;
        free(p->pending);
        p->pending = line;
        line = NULL;
        pthread_cond_signal(&p->cv);
    }
    double took = now_s() - t0;
    if (took > p->n.max_emit_seconds)
        p->n.max_emit_seconds = took;
    pthread_mutex_unlock(&p->mu);
    free(line);
}

progress_stats progress_get_stats(progress *p)
{
    pthread_mutex_lock(&p->mu);
    progress_stats s = p->n;
    pthread_mutex_unlock(&p->mu);
    return s;
}
