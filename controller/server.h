/* server: the controller's HTTP side, on libwebsockets (httpd.c):
 *   GET  /healthz   200 while the process serves      GET /readyz  200 once the caches synced
 *   GET  /metrics   Prometheus text (controller, API client, progress, HTTP, console)
 *   POST /progress/<ns>/<job>/<run>   a trainer's progress report, authenticated (ingest.h)
 *   GET  /, /api/..., WS /api/watch   the console (console.h), unless turned off
 * Every replica serves all of it: progress lands in status whichever replica receives it. */
#ifndef KUBEFIT_SERVER_H
#define KUBEFIT_SERVER_H

#include "controller.h"

typedef struct server server;

typedef struct {
    controller *ctl;            /* borrowed; its caches feed the console and the progress checks */
    kube_client *kube;          /* borrowed */
    const char *listen;         /* "ADDR:PORT" (httpd.h); NULL: ":8080" */
    const char *progress_audience; /* audience of the trainers' tokens; NULL: "kubefit" */
    double progress_rate;       /* reports a second per job; 0: 0.2 */
    int progress_burst;         /* 0: 5 */
    int console;                /* serve the console */
    int console_anonymous;      /* read-only console without a token (port-forward use) */
    int workers;                /* threads for API-server calls; 0: 4 */
} server_options;

/* Binds the port. Caller frees with server_free. NULL with err_msg() on failure. */
server *server_new(const server_options *opt);
int server_port(const server *s);
/* Starts serving; call before controller_start so the console sees every job event. */
int server_start(server *s);
void server_stop(server *s);
void server_free(server *s);

#endif
