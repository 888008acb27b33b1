/* stats: Prometheus metrics of kubefit-serve. See stats.h. */
#include "stats.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const ROUTE_NAMES[STATS_NROUTES] = {"v2_infer", "v1_predict", "torchserve_predict", "health",
                                                       "metadata", "repository", "metrics", "other"};
static const int CODES[] = {200, 400, 404, 405, 409, 413, 500, 503};
#define NCODES (sizeof CODES / sizeof *CODES)

static const double LAT_BUCKETS[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define NLAT (sizeof LAT_BUCKETS / sizeof *LAT_BUCKETS)
static const double BATCH_BUCKETS[] = {1, 2, 4, 8, 16, 32, 64, 128, 256};
#define NBATCH (sizeof BATCH_BUCKETS / sizeof *BATCH_BUCKETS)

typedef struct {
    long counts[NLAT > NBATCH ? NLAT : NBATCH]; /* per bucket, not cumulative */
    long n;
    double sum;
} histogram;

struct stats {
    pthread_mutex_t mu;
    long requests[STATS_NROUTES][NCODES + 1]; /* last column: any other code */
    histogram latency[STATS_NROUTES];
    histogram batch, queue, infer;
    long texts, tokens, loads_ok, loads_error;
};

stats *stats_new(void)
{
    stats *s = calloc(1, sizeof *s);
    if (s)
        pthread_mutex_init(&s->mu, NULL);
    return s;
}

void stats_free(stats *s)
{
    if (!s)
        return;
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static void observe(histogram *h, const double *buckets, size_t nb, double v)
{
    for (size_t i = 0; i < nb; i++)
        if (v <= buckets[i]) {
            h->counts[i]++;
            break;
        }
    h->n++;
    h->sum += v;
}

void stats_request(stats *s, stats_route route, int code, double seconds)
{
    if ((unsigned)route >= STATS_NROUTES)
        route = STATS_OTHER;
    size_t k = 0;
    while (k < NCODES && CODES[k] != code)
        k++;
    pthread_mutex_lock(&s->mu);
    s->requests[route][k]++;
    if (route <= STATS_TS_PREDICT)
        observe(&s->latency[route], LAT_BUCKETS, NLAT, seconds);
    pthread_mutex_unlock(&s->mu);
}

void stats_batch(stats *s, int size, double queue_s, double infer_s, size_t tokens)
{
    pthread_mutex_lock(&s->mu);
    observe(&s->batch, BATCH_BUCKETS, NBATCH, size);
    observe(&s->queue, LAT_BUCKETS, NLAT, queue_s);
    observe(&s->infer, LAT_BUCKETS, NLAT, infer_s);
    s->texts += size;
    s->tokens += (long)tokens;
    pthread_mutex_unlock(&s->mu);
}

void stats_model_load(stats *s, int ok)
{
    pthread_mutex_lock(&s->mu);
    if (ok)
        s->loads_ok++;
    else
        s->loads_error++;
    pthread_mutex_unlock(&s->mu);
}

static void put_hist(FILE *f, const char *name, const char *labels, const histogram *h, const double *buckets,
                     size_t nb)
{
    long cum = 0;
    const char *sep = labels && *labels ? "," : "";
    for (size_t i = 0; i < nb; i++) {
        cum += h->counts[i];
        fprintf(f, "%s_bucket{%s%sle=\"%g\"} %ld\n", name, labels ? labels : "", sep, buckets[i], cum);
    }
    fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %ld\n", name, labels ? labels : "", sep, h->n);
    if (labels && *labels)
        fprintf(f, "%s_sum{%s} %.6f\n%s_count{%s} %ld\n", name, labels, h->sum, name, labels, h->n);
    else
        fprintf(f, "%s_sum %.6f\n%s_count %ld\n", name, h->sum, name, h->n);
}

/* A label value with \, " and newline escaped (the exposition format's rule). Caller frees. */
static char *label_value(const char *v)
{
    size_t n = strlen(v ? v : "");
    char *out = malloc(2 * n + 1), *p = out;
    if (!out)
        return NULL;
    for (const char *c = v ? v : ""; *c; c++) {
        if (*c == '\\' || *c == '"')
            *p++ = '\\', *p++ = *c;
        else if (*c == '\n')
            *p++ = '\\', *p++ = 'n';
        else
            *p++ = *c;
    }
    *p = 0;
    return out;
}

char *stats_render(stats *s, const stats_gauges *g, size_t *len)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return NULL;
    pthread_mutex_lock(&s->mu);
    fputs("# HELP kubefit_serve_requests_total HTTP requests answered, by route and status code.\n"
          "# TYPE kubefit_serve_requests_total counter\n", f);
    for (int r = 0; r < STATS_NROUTES; r++)
        for (size_t k = 0; k <= NCODES; k++)
            if (s->requests[r][k]) {
                if (k < NCODES)
                    fprintf(f, "kubefit_serve_requests_total{route=\"%s\",code=\"%d\"} %ld\n", ROUTE_NAMES[r],
                            CODES[k], s->requests[r][k]);
                else
                    fprintf(f, "kubefit_serve_requests_total{route=\"%s\",code=\"other\"} %ld\n", ROUTE_NAMES[r],
                            s->requests[r][k]);
            }
    fputs("# HELP kubefit_serve_request_duration_seconds Inference requests: whole request received -> reply.\n"
          "# TYPE kubefit_serve_request_duration_seconds histogram\n", f);
    for (int r = 0; r <= STATS_TS_PREDICT; r++) {
        char lbl[64];
        snprintf(lbl, sizeof lbl, "route=\"%s\"", ROUTE_NAMES[r]);
        put_hist(f, "kubefit_serve_request_duration_seconds", lbl, &s->latency[r], LAT_BUCKETS, NLAT);
    }
    fputs("# HELP kubefit_serve_batch_size Texts per model forward (dynamic batching).\n"
          "# TYPE kubefit_serve_batch_size histogram\n", f);
    put_hist(f, "kubefit_serve_batch_size", NULL, &s->batch, BATCH_BUCKETS, NBATCH);
    fputs("# HELP kubefit_serve_queue_seconds Wait of a batch's oldest text before the forward.\n"
          "# TYPE kubefit_serve_queue_seconds histogram\n", f);
    put_hist(f, "kubefit_serve_queue_seconds", NULL, &s->queue, LAT_BUCKETS, NLAT);
    fputs("# HELP kubefit_serve_inference_seconds Time of one model forward (tokenisation included).\n"
          "# TYPE kubefit_serve_inference_seconds histogram\n", f);
    put_hist(f, "kubefit_serve_inference_seconds", NULL, &s->infer, LAT_BUCKETS, NLAT);
    fprintf(f, "# TYPE kubefit_serve_texts_total counter\nkubefit_serve_texts_total %ld\n"
               "# TYPE kubefit_serve_tokens_total counter\nkubefit_serve_tokens_total %ld\n"
               "# HELP kubefit_serve_model_loads_total Model loads (start and hot swaps) by outcome.\n"
               "# TYPE kubefit_serve_model_loads_total counter\n"
               "kubefit_serve_model_loads_total{outcome=\"ok\"} %ld\n"
               "kubefit_serve_model_loads_total{outcome=\"error\"} %ld\n",
            s->texts, s->tokens, s->loads_ok, s->loads_error);
    pthread_mutex_unlock(&s->mu);
    fprintf(f, "# HELP kubefit_serve_queued_texts Texts waiting for a batch.\n# TYPE kubefit_serve_queued_texts gauge\n"
               "kubefit_serve_queued_texts %zu\n"
               "# HELP kubefit_serve_in_flight Inference requests received and not answered yet.\n"
               "# TYPE kubefit_serve_in_flight gauge\nkubefit_serve_in_flight %zu\n"
               "# TYPE kubefit_serve_ready gauge\nkubefit_serve_ready %d\n",
            g->queued, g->in_flight, g->ready);
    if (g->model) {
        char *m = label_value(g->model), *v = label_value(g->version), *u = label_value(g->uri);
        if (m && v && u)
            fprintf(f, "# HELP kubefit_serve_model_info The model being served.\n# TYPE kubefit_serve_model_info gauge\n"
                       "kubefit_serve_model_info{model=\"%s\",version=\"%s\",uri=\"%s\"} 1\n", m, v, u);
        free(m), free(v), free(u);
    }
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}
