/* progress: JSON lines on stdout + best-effort POST. See progress.h. */
#include "progress.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "http.h"
#include "log.h"

struct progress {
    FILE *out;
    char *url;
    http_client *http;
    int warned;
};

int progress_new(progress **out, const char *url, FILE *stream)
{
    progress *p = calloc(1, sizeof *p);
    *out = NULL;
    if (!p)
        return err_set(KF_ENOMEM, "out of memory");
    p->out = stream ? stream : stdout;
    if (url && *url) {
        http_global_init();
        p->url = strdup(url);
        p->http = http_client_new(&(http_options){.connect_timeout_ms = 2000, .timeout_ms = 5000});
        if (!p->url || !p->http) {
            log_warn("progress", "progress endpoint disabled", "{s:s,s:s}", "url", url, "error", err_msg());
            free(p->url);
            p->url = NULL;
        }
    }
    *out = p;
    return 0;
}

void progress_free(progress *p)
{
    if (!p)
        return;
    http_client_free(p->http);
    free(p->url);
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
    char *line = progress_format(e);
    if (!line)
        return;
    fprintf(p->out, "%s\n", line);
    fflush(p->out);
    if (p->url) {
        static const char *const headers[] = {"Content-Type: application/json", NULL};
        http_response resp = {0};
        int rc = http_do(p->http, &(http_request){.method = "POST", .url = p->url, .headers = headers,
                                                  .body = line, .body_len = strlen(line)},
                         &resp);
        if ((rc < 0 || resp.status / 100 != 2) && !p->warned) {
            p->warned = 1;
            log_warn("progress", "progress POST failed (not retried; the run goes on)", "{s:s,s:i,s:s}", "url",
                     p->url, "status", (int)resp.status, "error", rc < 0 ? err_msg() : "");
        }
        http_response_dispose(&resp);
    }
    free(line);
}
