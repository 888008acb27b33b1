/* server: the controller's small HTTP/1.1 endpoint (plain sockets, one thread, one request per
 * connection; libwebsockets was not needed for four routes):
 *   GET /healthz  -> 200 ok           GET /readyz -> 200 when the caches are synced, else 503
 *   GET /metrics  -> Prometheus text  POST /progress/<ns>/<name>/<run> -> 204 (JSON body)
 * Requests are bounded (headers 16 KiB, body 64 KiB, 5 s to arrive). */
#ifndef KUBEFIT_SERVER_H
#define KUBEFIT_SERVER_H

#include "controller.h"

typedef struct server server;

/* Listens on addr:port (port 0 picks one; see server_port). Caller frees with server_free. */
server *server_new(controller *c, const char *addr, int port);
int server_port(const server *s);
int server_start(server *s);
void server_stop(server *s);
void server_free(server *s);

#endif
