/* kubefit-controller: the TrainingJob operator. See docs/controller.md for the flags. */
#include "controller.h"
#include "err.h"
#include "http.h"
#include "kube.h"
#include "kubeconfig.h"
#include "leader.h"
#include "log.h"
#include "server.h"

#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char USAGE[] =
    "usage: kubefit-controller [flags]\n"
    "  --kubeconfig PATH          kubeconfig (default: $KUBECONFIG, in-cluster, ~/.kube/config)\n"
    "  --context NAME             kubeconfig context (default: current-context)\n"
    "  --namespace NS             watch only this namespace (default: all)\n"
    "  --workers N                reconcile workers (default 2)\n"
    "  --listen ADDR:PORT         /healthz /readyz /metrics /progress and the console (default :8080:\n"
    "                             IPv6 and IPv4; 0.0.0.0:8080 IPv4 only, [::1]:8080, port 0 picks one)\n"
    "  --port-file PATH           write the listening port here (tests)\n"
    "  --leader-elect=BOOL        use a Lease (default true)\n"
    "  --lease-namespace NS       (default: $POD_NAMESPACE or the kubeconfig namespace)\n"
    "  --lease-name NAME          (default kubefit-controller)\n"
    "  --identity ID              (default hostname_pid)\n"
    "  --lease-duration S, --renew-deadline S, --retry-period S   (15, 10, 2)\n"
    "  --default-image IMAGE      trainer image when spec.image is empty\n"
    "  --progress-url URL         base URL trainers POST progress to (e.g. http://kubefit.kubefit-system:8080)\n"
    "  --retry-backoff S          first retry delay of a failed attempt (default 10), doubling\n"
    "  --retry-backoff-max S      (default 600)\n"
    "  --pod-start-timeout S      a trainer container that cannot start (image pull, config) fails\n"
    "                             the run after this long (default 300)\n"
    "  --resync S                 re-reconcile unfinished jobs this often (default 60)\n"
    "  --watch-timeout S          server-side watch timeout (default 300)\n"
    "  --console=BOOL             serve the browser console at / (default true)\n"
    "  --console-anonymous=BOOL   console readable without a token, read-only (default false;\n"
    "                             for kubectl port-forward use only)\n"
    "  --progress-rate R          progress reports a second per job (default 0.2: one in 5 s)\n"
    "  --progress-burst N         reports a job may send at once above that rate (default 5)\n"
    "  --http-workers N           threads that answer API-backed requests (default 4)\n"
    "  --serving=BOOL             run spec.serving: kubefit-serve Deployments + Services (default true; false\n"
    "                             needs no rights on deployments and services)\n"
    "  --kube-api-qps Q           requests a second to the API server, on average (default 50; 0: no limit)\n"
    "  --kube-api-burst N         requests allowed at once above that rate (default 100)\n";

enum {
    OPT_CONSOLE = 200, OPT_CONSOLE_ANON, OPT_SERVING, OPT_PROGRESS_RATE, OPT_PROGRESS_BURST, OPT_HTTP_WORKERS,
    OPT_KUBECONFIG = 256, OPT_CONTEXT, OPT_NAMESPACE, OPT_WORKERS, OPT_LISTEN, OPT_PORT_FILE, OPT_LEADER_ELECT,
    OPT_LEASE_NS, OPT_LEASE_NAME, OPT_IDENTITY, OPT_LEASE_DURATION, OPT_RENEW_DEADLINE, OPT_RETRY_PERIOD,
    OPT_IMAGE, OPT_PROGRESS_URL, OPT_BACKOFF, OPT_BACKOFF_MAX, OPT_POD_START, OPT_API_QPS, OPT_API_BURST, OPT_RESYNC, OPT_WATCH_TIMEOUT, OPT_HELP,
};

static int parse_double(const char *flag, const char *v, double *out)
{
    char *end = NULL;
    double d = strtod(v, &end);
    if (!end || *end || !(d >= 0)) {
        fprintf(stderr, "kubefit-controller: %s wants a number >= 0, got \"%s\"\n", flag, v);
        return -1;
    }
    *out = d;
    return 0;
}

/* --flag, --flag=true|1, --flag=false|0. */
static int parse_bool(const char *flag, const char *v, int *out)
{
    if (!v || !strcmp(v, "true") || !strcmp(v, "1")) {
        *out = 1;
    } else if (!strcmp(v, "false") || !strcmp(v, "0")) {
        *out = 0;
    } else {
        fprintf(stderr, "kubefit-controller: %s wants true or false, got \"%s\"\n", flag, v);
        return -1;
    }
    return 0;
}

static void on_leader_change(void *ctx, int leading) { controller_set_leader(ctx, leading); }

int main(int argc, char **argv)
{
    /* Two malloc arenas, not eight per core: the threads allocate little, and each extra arena
     * keeps memory it once used (docs/controller.md, "Memory"). */
    mallopt(M_ARENA_MAX, 2);
    const char *kubeconfig = NULL, *context = NULL, *watch_ns = NULL, *listen_addr = ":8080";
    const char *port_file = NULL, *lease_ns = getenv("POD_NAMESPACE"), *lease_name = "kubefit-controller";
    const char *identity = NULL, *image = NULL, *progress_url = NULL;
    double workers = 2, lease_s = 15, renew_s = 10, retry_s = 2, backoff = 10, backoff_max = 600, resync = 60;
    double pod_start = 300, api_qps = 50, api_burst = 100;
    double watch_timeout = 300;
    int leader_elect = 1, console = 1, console_anon = 0, serving = 1;
    double progress_rate = 0.2, progress_burst = 5, http_workers = 4;
    static const struct option opts[] = {
        {"kubeconfig", required_argument, 0, OPT_KUBECONFIG}, {"context", required_argument, 0, OPT_CONTEXT},
        {"namespace", required_argument, 0, OPT_NAMESPACE}, {"workers", required_argument, 0, OPT_WORKERS},
        {"listen", required_argument, 0, OPT_LISTEN}, {"port-file", required_argument, 0, OPT_PORT_FILE},
        {"leader-elect", optional_argument, 0, OPT_LEADER_ELECT}, {"lease-namespace", required_argument, 0, OPT_LEASE_NS},
        {"lease-name", required_argument, 0, OPT_LEASE_NAME}, {"identity", required_argument, 0, OPT_IDENTITY},
        {"lease-duration", required_argument, 0, OPT_LEASE_DURATION},
        {"renew-deadline", required_argument, 0, OPT_RENEW_DEADLINE},
        {"retry-period", required_argument, 0, OPT_RETRY_PERIOD}, {"default-image", required_argument, 0, OPT_IMAGE},
        {"progress-url", required_argument, 0, OPT_PROGRESS_URL}, {"retry-backoff", required_argument, 0, OPT_BACKOFF},
        {"retry-backoff-max", required_argument, 0, OPT_BACKOFF_MAX},
        {"pod-start-timeout", required_argument, 0, OPT_POD_START},
        {"kube-api-qps", required_argument, 0, OPT_API_QPS}, {"kube-api-burst", required_argument, 0, OPT_API_BURST}, {"resync", required_argument, 0, OPT_RESYNC},
        {"watch-timeout", required_argument, 0, OPT_WATCH_TIMEOUT},
        {"console", optional_argument, 0, OPT_CONSOLE}, {"console-anonymous", optional_argument, 0, OPT_CONSOLE_ANON},
        {"serving", optional_argument, 0, OPT_SERVING},
        {"progress-rate", required_argument, 0, OPT_PROGRESS_RATE},
        {"progress-burst", required_argument, 0, OPT_PROGRESS_BURST},
        {"http-workers", required_argument, 0, OPT_HTTP_WORKERS}, {"help", no_argument, 0, OPT_HELP},
        {0, 0, 0, 0},
    };
    int o, bad = 0;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case OPT_KUBECONFIG: kubeconfig = optarg; break;
        case OPT_CONTEXT: context = optarg; break;
        case OPT_NAMESPACE: watch_ns = optarg; break;
        case OPT_WORKERS: bad |= parse_double("--workers", optarg, &workers); break;
        case OPT_LISTEN: listen_addr = optarg; break;
        case OPT_PORT_FILE: port_file = optarg; break;
        case OPT_LEADER_ELECT:
            if (!optarg || !strcmp(optarg, "true") || !strcmp(optarg, "1")) {
                leader_elect = 1;
            } else if (!strcmp(optarg, "false") || !strcmp(optarg, "0")) {
                leader_elect = 0;
            } else {
                fprintf(stderr, "kubefit-controller: --leader-elect wants true or false\n");
                bad = 1;
            }
            break;
        case OPT_LEASE_NS: lease_ns = optarg; break;
        case OPT_LEASE_NAME: lease_name = optarg; break;
        case OPT_IDENTITY: identity = optarg; break;
        case OPT_LEASE_DURATION: bad |= parse_double("--lease-duration", optarg, &lease_s); break;
        case OPT_RENEW_DEADLINE: bad |= parse_double("--renew-deadline", optarg, &renew_s); break;
        case OPT_RETRY_PERIOD: bad |= parse_double("--retry-period", optarg, &retry_s); break;
        case OPT_IMAGE: image = optarg; break;
        case OPT_PROGRESS_URL: progress_url = optarg; break;
        case OPT_BACKOFF: bad |= parse_double("--retry-backoff", optarg, &backoff); break;
        case OPT_BACKOFF_MAX: bad |= parse_double("--retry-backoff-max", optarg, &backoff_max); break;
        case OPT_POD_START: bad |= parse_double("--pod-start-timeout", optarg, &pod_start); break;
        case OPT_API_QPS: bad |= parse_double("--kube-api-qps", optarg, &api_qps); break;
        case OPT_API_BURST: bad |= parse_double("--kube-api-burst", optarg, &api_burst); break;
        case OPT_RESYNC: bad |= parse_double("--resync", optarg, &resync); break;
        case OPT_WATCH_TIMEOUT: bad |= parse_double("--watch-timeout", optarg, &watch_timeout); break;
        case OPT_CONSOLE: bad |= parse_bool("--console", optarg, &console); break;
        case OPT_CONSOLE_ANON: bad |= parse_bool("--console-anonymous", optarg, &console_anon); break;
        case OPT_SERVING: bad |= parse_bool("--serving", optarg, &serving); break;
        case OPT_PROGRESS_RATE: bad |= parse_double("--progress-rate", optarg, &progress_rate); break;
        case OPT_PROGRESS_BURST: bad |= parse_double("--progress-burst", optarg, &progress_burst); break;
        case OPT_HTTP_WORKERS: bad |= parse_double("--http-workers", optarg, &http_workers); break;
        case OPT_HELP: fputs(USAGE, stdout); return 0;
        default: bad = 1; break;
        }
    }
    if (bad || optind != argc) {
        fputs(USAGE, stderr);
        return 2;
    }

    /* Signals go to the main thread only: block them before any thread starts. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    http_global_init();

    int rc = 1;
    kube_config cfg = {0};
    kube_client *kube = NULL;
    controller *ctl = NULL;
    server *srv = NULL;
    leader *ld = NULL;
    if (kube_config_load(&cfg, kubeconfig, context) != KF_OK) {
        log_error("main", "no usable Kubernetes configuration", "{s:s}", "error", err_msg());
        goto done;
    }
    if (!(kube = kube_client_new(&cfg)) || kube_client_set_limit(kube, api_qps, (int)api_burst) != KF_OK) {
        log_error("main", "cannot create the Kubernetes client", "{s:s}", "error", err_msg());
        goto done;
    }
    controller_options co = {
        .kube = kube, .watch_namespace = watch_ns, .workers = (int)workers, .resync_s = resync,
        .watch_timeout_s = (long)watch_timeout, .serving_off = !serving,
        .reconcile = {.default_image = image, .progress_base_url = progress_url, .backoff_base_s = backoff,
                      .backoff_max_s = backoff_max, .pod_start_timeout_s = pod_start},
    };
    if (!(ctl = controller_new(&co)) ||
        !(srv = server_new(&(server_options){.ctl = ctl, .kube = kube, .listen = listen_addr,
                                             .progress_rate = progress_rate, .progress_burst = (int)progress_burst,
                                             .console = console, .console_anonymous = console_anon,
                                             .workers = (int)http_workers}))) {
        log_error("main", "cannot start", "{s:s}", "error", err_msg());
        goto done;
    }
    if (port_file) {
        FILE *f = fopen(port_file, "w");
        if (f) {
            fprintf(f, "%d\n", server_port(srv));
            fclose(f);
        }
    }
    if (server_start(srv) || controller_start(ctl)) {
        log_error("main", "cannot start", "{s:s}", "error", err_msg());
        goto done;
    }
    if (leader_elect) {
        ld = leader_new(&(leader_options){.kube = kube, .namespace = lease_ns ? lease_ns : cfg.namespace,
                                          .name = lease_name, .identity = identity, .lease_s = lease_s,
                                          .renew_deadline_s = renew_s, .retry_s = retry_s,
                                          .on_change = on_leader_change, .ctx = ctl});
        if (!ld || leader_start(ld)) {
            log_error("main", "cannot start leader election", "{s:s}", "error", err_msg());
            goto done;
        }
    } else {
        controller_set_leader(ctl, 1);
    }
    log_info("main", "started", "{s:s,s:i,s:b,s:s}", "server", cfg.server, "port", server_port(srv), "leaderElect",
             leader_elect, "namespace", watch_ns ? watch_ns : "(all)");
    int sig = 0;
    sigwait(&sigs, &sig);
    log_info("main", "shutting down", "{s:i}", "signal", sig);
    rc = 0;
done:
    leader_free(ld); /* releases the Lease first, so a standby takes over at once */
    if (ctl)
        controller_set_leader(ctl, 0);
    controller_stop(ctl);
    server_free(srv);
    controller_free(ctl);
    kube_client_free(kube);
    kube_config_dispose(&cfg);
    if (rc == 0)
        log_info("main", "stopped", NULL);
    return rc;
}
