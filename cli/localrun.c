/* localrun: a TrainingJob on this machine through the controller's reconcile (see localrun.h). */
#include "localrun.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "contract.h"
#include "crd.h"
#include "err.h"
#include "kubetime.h"
#include "manifest.h"
#include "podspec.h"
#include "reconcile.h"
#include "show.h"
#include "storage/layout.h"
#include "storage/storage.h"

#define KILL_GRACE_S 30.0 /* a kubelet's default terminationGracePeriodSeconds */

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static const char *str(const json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

/* ---- the manifest ---- */

/* metadata.name as the API server wants it (DNS subdomain), and short enough for Pod names. */
static int check_name(const char *name)
{
    size_t n = strlen(name);
    int ok = n > 0 && n <= 253;
    for (size_t i = 0; ok && i < n; i++) {
        char c = name[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        ok = alnum || ((c == '-' || c == '.') && i > 0 && i + 1 < n);
    }
    if (!ok)
        return err_set(KF_EINVAL, "metadata.name \"%s\" must be lowercase letters, digits, '-' and '.', starting "
                                  "and ending with a letter or digit", name);
    if (n > 52)
        return err_set(KF_EINVAL, "metadata.name must be at most 52 characters: trainer Pods are named "
                                  "<name>-<run>-<attempt>");
    return 0;
}

/* The one TrainingJob of docs (or the one called name). */
static int pick_job(json_t **out, const json_t *docs, const char *name, const char *file)
{
    const json_t *found = NULL;
    size_t i, count = 0;
    json_t *d;
    char names[256] = "";
    *out = NULL;
    json_array_foreach(docs, i, d) {
        const char *kind = str(d, "kind"), *api = str(d, "apiVersion");
        if (!json_is_object(d))
            return err_set(KF_EINVAL, "%s: document %zu is not a mapping", file, i + 1);
        if (!kind || strcmp(kind, CRD_KIND) != 0)
            return err_set(KF_EINVAL, "%s: document %zu is a %s, not a TrainingJob (kubefit run takes TrainingJob "
                                      "manifests)", file, i + 1, kind ? kind : "document without a kind");
        if (!api || strcmp(api, CRD_API_VERSION) != 0)
            return err_set(KF_EINVAL, "%s: document %zu: apiVersion \"%s\" is not %s", file, i + 1, api ? api : "",
                           CRD_API_VERSION);
        const char *n = str(json_object_get(d, "metadata"), "name");
        size_t used = strlen(names);
        snprintf(names + used, sizeof names - used, "%s%s", used ? ", " : "", n ? n : "?");
        if (name && (!n || strcmp(n, name) != 0))
            continue;
        found = d;
        count++;
    }
    if (!count && name)
        return err_set(KF_ENOTFOUND, "%s: no TrainingJob named \"%s\" (it has: %s)", file, name, *names ? names : "none");
    if (!count)
        return err_set(KF_EINVAL, "%s: no TrainingJob in the file", file);
    if (count > 1)
        return err_set(KF_EINVAL, "%s holds %zu TrainingJobs (%s): name the one to run", file, count, names);
    *out = json_deep_copy(found);
    return *out ? 0 : err_set(KF_ENOMEM, "out of memory");
}

static json_t *child_object(json_t *parent, const char *key)
{
    json_t *o = json_object_get(parent, key);
    if (!json_is_object(o)) {
        o = json_object();
        json_object_set_new(parent, key, o);
    }
    return o;
}

int localrun_load(json_t **out, const localrun_opts *o)
{
    json_t *docs = NULL, *job = NULL;
    crd *c = NULL;
    const char *file = strcmp(o->manifest, "-") ? o->manifest : "<stdin>";
    *out = NULL;
    int rc = manifest_load(&docs, o->manifest);
    if (rc < 0)
        goto done;
    if ((rc = pick_job(&job, docs, o->name, file)) < 0)
        goto done;
    json_object_del(job, "status"); /* the API server ignores a status sent on create */
    json_t *meta = json_object_get(job, "metadata");
    const char *name = str(meta, "name");
    if (!json_is_object(meta) || !name) {
        rc = err_set(KF_EINVAL, "%s: metadata.name is required%s", file,
                     str(meta, "generateName") ? " (kubefit run does not use generateName)" : "");
        goto done;
    }
    if ((rc = check_name(name)) < 0) {
        err_wrap(rc, "%s", file);
        goto done;
    }
    if (!str(meta, "namespace"))
        json_object_set_new(meta, "namespace", json_string("default"));
    json_t *spec = json_object_get(job, "spec");
    if (json_is_object(spec)) {
        if (o->bucket)
            json_object_set_new(child_object(spec, "storage"), "bucket", json_string(o->bucket));
        if (o->model_dir)
            json_object_set_new(child_object(spec, "storage"), "modelDir", json_string(o->model_dir));
        if (o->epochs > 0)
            json_object_set_new(spec, "epochs", json_integer(o->epochs));
    }
    if ((rc = crd_load(&c)) < 0 || (rc = crd_default(c, job)) < 0)
        goto done;
    if ((rc = crd_validate(c, job)) < 0) {
        err_wrap(rc, "%s", file);
        goto done;
    }
    spec = json_object_get(job, "spec");
    if (json_is_true(json_object_get(spec, "suspend"))) {
        rc = err_set(KF_EINVAL, "%s: spec.suspend is true: a suspended job starts no run (set it to false)", file);
        goto done;
    }
    char uid[40];
    snprintf(uid, sizeof uid, "local-%08lx-%04x", (unsigned long)time(NULL), (unsigned)getpid() & 0xffff);
    char now[32];
    kube_time_format(kube_now(), 0, now);
    json_object_set_new(meta, "uid", json_string(uid));
    json_object_set_new(meta, "generation", json_integer(1));
    json_object_set_new(meta, "creationTimestamp", json_string(now));
    reconcile_config cfg = {0};
    if ((rc = podspec_check(job, &cfg, kube_now())) < 0) {
        err_wrap(rc, "%s", file);
        goto done;
    }
    *out = job;
    job = NULL;
done:
    json_decref(docs);
    json_decref(job);
    crd_free(c);
    return rc;
}

/* ---- the trainer binary ---- */

static char *exe_dir(void)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (slash)
        *slash = '\0';
    return strdup(buf);
}

static int executable(const char *p) { return access(p, X_OK) == 0; }

int localrun_find_trainer(char **out, const char *explicit_path)
{
    *out = NULL;
    const char *env = getenv("KUBEFIT_TRAINER");
    const char *given = explicit_path && *explicit_path ? explicit_path : env && *env ? env : NULL;
    if (given) {
        if (!executable(given))
            return err_set(KF_ENOTFOUND, "trainer %s: not an executable file (%s)", given,
                           explicit_path ? "--trainer" : "$KUBEFIT_TRAINER");
        return (*out = strdup(given)) ? 0 : err_set(KF_ENOMEM, "out of memory");
    }
    char *dir = exe_dir(), *p = NULL;
    const char *rel[] = {"kubefit-trainer", "../trainer/kubefit-trainer"};
    for (size_t i = 0; dir && i < 2; i++) {
        if (asprintf(&p, "%s/%s", dir, rel[i]) < 0)
            break;
        if (executable(p)) {
            char *clean = realpath(p, NULL); /* build/trainer/..., not build/cli/../trainer/... */
            free(dir);
            if (clean)
                free(p), p = clean;
            *out = p;
            return 0;
        }
        free(p);
        p = NULL;
    }
    free(dir);
    const char *path = getenv("PATH");
    while (path && *path) {
        size_t n = strcspn(path, ":");
        if (n && asprintf(&p, "%.*s/kubefit-trainer", (int)n, path) >= 0) {
            if (executable(p)) {
                *out = p;
                return 0;
            }
            free(p);
            p = NULL;
        }
        path += n + (path[n] == ':');
    }
    return err_set(KF_ENOTFOUND, "kubefit-trainer not found next to kubefit or on $PATH (build it: cmake --build "
                                 "build --target kubefit-trainer; or pass --trainer PATH)");
}

/* ---- one local "Pod" ---- */

/* The last progress line into status.progress, as the controller's progress ingest writes it
 * (reconcile keeps what is there). */
static void fold_progress(json_t *job, const json_t *progress)
{
    json_t *st = json_object_get(job, "status");
    if (json_is_object(st) && json_is_object(progress))
        json_object_set_new(st, "progress", json_deep_copy(progress));
}

typedef struct {
    const localrun_opts *o;
    char *trainer;
    char *work;
    const char *file;
    json_t *progress;   /* last progress line of the running attempt */
    int bar_shown;      /* a progress bar is on the current terminal line */
    char last_key[96];  /* stage/epoch of the last progress line printed (no TTY) */
} local;

typedef struct {
    char **v;
    size_t n;
} strv;

static int strv_push(strv *a, const char *s)
{
    char **g = realloc(a->v, (a->n + 2) * sizeof *g);
    if (!g)
        return err_set(KF_ENOMEM, "out of memory");
    a->v = g;
    if (!(a->v[a->n] = strdup(s)))
        return err_set(KF_ENOMEM, "out of memory");
    a->v[++a->n] = NULL;
    return 0;
}

static void strv_free(strv *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i]);
    free(a->v);
    memset(a, 0, sizeof *a);
}

/* The container's command line as this machine runs it. */
static int pod_argv(strv *out, local *L, const json_t *container, const char *result_file)
{
    memset(out, 0, sizeof *out);
    size_t i;
    json_t *a;
    int rc = 0;
    json_array_foreach(json_object_get(container, "command"), i, a) {
        const char *s = json_string_value(a);
        if (rc == 0)
            rc = strv_push(out, i == 0 && s && !strcmp(s, "kubefit-trainer") ? L->trainer : s ? s : "");
    }
    const json_t *args = json_object_get(container, "args");
    json_array_foreach(args, i, a) {
        const char *s = json_string_value(a), *prev = i ? json_string_value(json_array_get(args, i - 1)) : NULL;
        if (rc == 0 && prev && !strcmp(prev, "--result-file"))
            rc = strv_push(out, result_file);
        else if (rc == 0 && prev && !strcmp(prev, "--device") && L->o->device)
            rc = strv_push(out, L->o->device);
        else if (rc == 0)
            rc = strv_push(out, s ? s : "");
    }
    if (rc < 0)
        strv_free(out);
    return rc;
}

static void clear_bar(local *L)
{
    if (L->bar_shown)
        fputs("\r\033[K", L->o->err);
    L->bar_shown = 0;
}

/* Without a terminal: one line per epoch, as it ends (the last report of each stage/epoch). */
static void print_epoch_end(local *L)
{
    char text[256];
    if (L->o->quiet || L->o->tty || !L->progress)
        return;
    show_progress_text(text, sizeof text, L->progress, 0);
    fprintf(L->o->err, "progress: %s\n", text);
}

/* One line of the trainer's stdout: progress JSON becomes the bar (TTY) or a line per epoch. */
static void on_line(local *L, const char *line)
{
    json_t *p = json_loads(line, 0, NULL);
    if (!json_is_object(p) || !json_object_get(p, "stage") || !json_object_get(p, "percent")) {
        json_decref(p);
        if (!L->o->quiet && *line) {
            clear_bar(L);
            fprintf(L->o->err, "%s\n", line);
        }
        return;
    }
    char text[256], key[96];
    snprintf(key, sizeof key, "%s/%lld", str(p, "stage") ? str(p, "stage") : "",
             (long long)json_integer_value(json_object_get(p, "epoch")));
    if (L->last_key[0] && strcmp(key, L->last_key) != 0)
        print_epoch_end(L);
    json_decref(L->progress);
    L->progress = p;
    if (!L->o->quiet && L->o->tty) {
        size_t stage_len = strcspn(key, "/");
        if (L->bar_shown && (strlen(L->last_key) < stage_len || strncmp(key, L->last_key, stage_len + 1) != 0))
            fputc('\n', L->o->err); /* keep the finished stage's last bar on screen */
        show_progress_text(text, sizeof text, p, 30);
        fprintf(L->o->err, "\r\033[K%s", text);
        fflush(L->o->err);
        L->bar_shown = 1;
    }
    snprintf(L->last_key, sizeof L->last_key, "%s", key);
}

static void sleep_s(double s)
{
    double end = kube_now() + s;
    while (!interrupted && kube_now() < end) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* The last bytes of a file (the termination message of a failed Pod without a result:
 * FallbackToLogsOnError). Caller frees. */
static char *file_tail(const char *path, size_t max)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = calloc(max + 1, 1);
    if (buf) {
        if (fseek(f, 0, SEEK_END) == 0) {
            long size = ftell(f);
            fseek(f, size > (long)max ? size - (long)max : 0, SEEK_SET);
        }
        size_t n = fread(buf, 1, max, f);
        buf[n] = '\0';
    }
    fclose(f);
    return buf;
}

/* Runs one Pod as a process; *status: the Pod status a kubelet would report at its end. */
static int run_pod(local *L, const json_t *pod, json_t **status)
{
    const json_t *meta = json_object_get(pod, "metadata"), *pspec = json_object_get(pod, "spec");
    const json_t *container = json_array_get(json_object_get(pspec, "containers"), 0);
    const char *pod_name = str(meta, "name");
    char *result = NULL, *log = NULL, started[32], finished[32];
    strv argv = {0};
    int rc = 0, fds[2] = {-1, -1}, logfd = -1;
    pid_t pid = -1;
    *status = NULL;
    if (asprintf(&result, "%s/%s.result", L->work, pod_name) < 0 || asprintf(&log, "%s/%s.log", L->work, pod_name) < 0) {
        rc = err_set(KF_ENOMEM, "out of memory");
        goto done;
    }
    unlink(result);
    if ((rc = pod_argv(&argv, L, container, result)) < 0)
        goto done;
    if ((logfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0 || pipe2(fds, O_CLOEXEC) < 0) {
        rc = err_set(KF_EIO, "%s: %s", logfd < 0 ? log : "pipe", strerror(errno));
        goto done;
    }
    const json_t *labels = json_object_get(meta, "labels");
    if (!L->o->quiet)
        fprintf(L->o->err, "kubefit: %s: run %s, attempt %s (trainer log: %s)\n", str(labels, RECONCILE_LABEL_JOB),
                str(labels, RECONCILE_LABEL_RUN), str(labels, RECONCILE_LABEL_ATTEMPT), log);
    kube_time_format(kube_now(), 0, started);
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        rc = err_set(KF_EIO, "fork: %s", strerror(errno));
        goto done;
    }
    if (pid == 0) {
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(container, "env"), i, e) {
            if (str(e, "name"))
                setenv(str(e, "name"), str(e, "value") ? str(e, "value") : "", 1);
        }
        dup2(fds[1], 1);
        dup2(logfd, 2);
        execvp(argv.v[0], argv.v);
        fprintf(stderr, "kubefit: cannot start %s: %s\n", argv.v[0], strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    fds[1] = -1;
    json_int_t ads = json_integer_value(json_object_get(pspec, "activeDeadlineSeconds"));
    double t0 = kube_now(), killed_at = 0;
    int deadline_hit = 0, wstatus = 0;
    char buf[8192], *line = NULL;
    size_t len = 0, cap = 0;
    json_decref(L->progress);
    L->progress = NULL;
    L->last_key[0] = '\0';
    for (;;) {
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        int pr = poll(&pfd, 1, 500);
        if (pr > 0) {
            ssize_t n = read(fds[0], buf, sizeof buf);
            if (n <= 0)
                break; /* the trainer closed stdout: it is exiting */
            for (ssize_t k = 0; k < n; k++) {
                if (buf[k] == '\n') {
                    if (line) {
                        line[len] = '\0';
                        on_line(L, line);
                    }
                    len = 0;
                    continue;
                }
                if (len + 2 > cap) {
                    size_t nc = cap ? cap * 2 : 1024;
                    char *g = nc > (1u << 20) ? NULL : realloc(line, nc);
                    if (!g)
                        continue; /* an absurd line: drop the rest of it */
                    line = g, cap = nc;
                }
                line[len++] = buf[k];
            }
        }
        double now = kube_now();
        if (!killed_at && ((ads > 0 && now - t0 >= (double)ads) || interrupted)) {
            deadline_hit = !interrupted;
            kill(pid, SIGTERM); /* as a kubelet stops a container: TERM, then KILL after the grace period */
            killed_at = now;
        } else if (killed_at && now - killed_at > KILL_GRACE_S) {
            kill(pid, SIGKILL);
        }
    }
    free(line);
    while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
        ;
    if (L->bar_shown)
        fputc('\n', L->o->err); /* the last bar stays */
    L->bar_shown = 0;
    print_epoch_end(L);
    kube_time_format(kube_now(), 0, finished);
    int code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + (WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0);
    char *msg = file_tail(result, CONTRACT_RESULT_MAX);
    if ((!msg || !*msg) && code != 0) {
        free(msg);
        msg = file_tail(log, 2048);
        for (size_t n = msg ? strlen(msg) : 0; n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '); n--)
            msg[n - 1] = '\0';
    }
    json_t *term = json_pack("{s:i,s:s,s:s,s:s}", "exitCode", code, "reason", code == 0 ? "Completed" : "Error",
                             "startedAt", started, "finishedAt", finished);
    if (msg && *msg)
        json_object_set_new(term, "message", json_string(msg));
    free(msg);
    json_t *st = json_pack("{s:s,s:[{s:s,s:{s:o}}]}", "phase", code == 0 && !deadline_hit ? "Succeeded" : "Failed",
                           "containerStatuses", "name", RECONCILE_CONTAINER, "state", "terminated", term);
    if (st && deadline_hit) {
        json_object_set_new(st, "reason", json_string("DeadlineExceeded"));
        json_object_set_new(st, "message", json_string("Pod was active on the node longer than the specified deadline"));
    }
    if (!st)
        rc = err_set(KF_ENOMEM, "out of memory");
    *status = st;
done:
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    if (logfd >= 0)
        close(logfd);
    strv_free(&argv);
    free(result);
    free(log);
    return rc;
}

/* ---- the loop ---- */

/* The next run number: one more than the highest RUN folder under B/D/LANG/JOB/. */
static int next_run(long *out, const json_t *job)
{
    const json_t *spec = json_object_get(job, "spec"), *stor = json_object_get(spec, "storage");
    storage_layout lay;
    storage_layout_options lo = {.bucket = str(stor, "bucket"), .lang = str(spec, "language"),
                                 .model_dir = str(stor, "modelDir"),
                                 .job = str(json_object_get(job, "metadata"), "name"), .run = "0"};
    storage *s = NULL;
    storage_object *objs = NULL;
    size_t n = 0;
    *out = 1;
    int rc = storage_layout_init(&lay, &lo);
    if (rc < 0)
        return rc;
    /* output_dir is ".../JOB/0/": list ".../JOB/" */
    size_t plen = strlen(lay.output_dir) - 2;
    lay.output_dir[plen] = '\0';
    if ((rc = storage_new(&s, NULL)) == 0) {
        rc = storage_list(s, lay.output_dir, &objs, &n);
        if (rc == KF_ENOTFOUND) /* no such folder yet: run 1 */
            rc = 0, n = 0, err_clear();
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (strncmp(objs[i].uri, lay.output_dir, plen) != 0)
            continue;
        const char *rest = objs[i].uri + plen;
        char *end = NULL;
        long r = strtol(rest, &end, 10);
        if (end != rest && *end == '/' && r >= *out)
            *out = r + 1;
    }
    storage_list_free(objs, n);
    storage_free(s);
    storage_layout_dispose(&lay);
    return rc;
}

static int exit_code_of(const json_t *job, const json_t *pods)
{
    const json_t *st = json_object_get(job, "status");
    const char *phase = str(st, "phase"), *reason = str(st, "reason");
    if (phase && !strcmp(phase, "Succeeded"))
        return 0;
    if (reason && (!strcmp(reason, "BadInput") || !strcmp(reason, "InvalidSpec") || !strcmp(reason, "PodRejected")))
        return CONTRACT_EXIT_BAD_INPUT;
    const json_t *last = json_array_get(pods, json_array_size(pods) - 1);
    const json_t *cs = json_array_get(json_object_get(json_object_get(last, "status"), "containerStatuses"), 0);
    json_int_t code = json_integer_value(json_object_get(json_object_get(json_object_get(cs, "state"), "terminated"),
                                                         "exitCode"));
    return reason && !strcmp(reason, "BackoffLimitExceeded") && code == CONTRACT_EXIT_TRANSIENT ? CONTRACT_EXIT_TRANSIENT
                                                                                               : CONTRACT_EXIT_CRASH;
}

static void print_events(local *L, const json_t *events)
{
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e) {
        const char *reason = str(e, "reason");
        /* the outcome itself is in the summary; what is said here is why there is a retry */
        if (L->o->quiet || !reason || (strcmp(reason, "AttemptFailed") != 0 && strcmp(reason, "Preempted") != 0))
            continue;
        fprintf(L->o->err, "kubefit: %s: %s\n", reason ? reason : "Warning", str(e, "message") ? str(e, "message") : "");
    }
}

/* --dry-run: the trainer's own --dry-run on the command line of attempt 1. */
static int dry_run(local *L, json_t *job, long run, localrun_result *out)
{
    json_t *pod = NULL;
    strv argv = {0};
    reconcile_config cfg = {0};
    char *result = NULL;
    int rc = reconcile_build_pod(&pod, job, (int)run, 1, &cfg, 0);
    if (rc < 0 || asprintf(&result, "%s/dry-run.result", L->work) < 0 ||
        (rc = pod_argv(&argv, L, json_array_get(json_object_get(json_object_get(pod, "spec"), "containers"), 0),
                       result)) < 0 ||
        (rc = strv_push(&argv, "--dry-run")) < 0)
        goto done;
    fprintf(L->o->out, "trainer:");
    for (size_t i = 0; i < argv.n; i++)
        fprintf(L->o->out, " %s", argv.v[i]);
    fputc('\n', L->o->out);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        execvp(argv.v[0], argv.v);
        fprintf(stderr, "kubefit: cannot start %s: %s\n", argv.v[0], strerror(errno));
        _exit(127);
    }
    int ws = 0;
    while (pid > 0 && waitpid(pid, &ws, 0) < 0 && errno == EINTR)
        ;
    out->exit_code = pid < 0 ? 1 : WIFEXITED(ws) ? WEXITSTATUS(ws) : 1;
done:
    free(result);
    strv_free(&argv);
    json_decref(pod);
    return rc;
}

int localrun(localrun_result *out, const localrun_opts *o)
{
    local L = {.o = o};
    json_t *job = NULL, *pods = json_array();
    memset(out, 0, sizeof *out);
    out->exit_code = 1;
    int rc = localrun_load(&job, o);
    if (rc < 0)
        goto done;
    if ((rc = localrun_find_trainer(&L.trainer, o->trainer)) < 0)
        goto done;
    if (o->work_dir) {
        if (mkdir(o->work_dir, 0755) < 0 && errno != EEXIST) {
            rc = err_set(KF_EIO, "--work-dir %s: %s", o->work_dir, strerror(errno));
            goto done;
        }
        L.work = strdup(o->work_dir);
    } else {
        const char *tmp = getenv("TMPDIR");
        if (asprintf(&L.work, "%s/kubefit-run-XXXXXX", tmp && *tmp ? tmp : "/tmp") < 0 || !mkdtemp(L.work)) {
            rc = err_set(KF_EIO, "cannot make a work folder under %s", tmp && *tmp ? tmp : "/tmp");
            goto done;
        }
    }
    long run = o->run;
    if (run <= 0 && (rc = next_run(&run, job)) < 0) {
        if (!o->dry_run) {
            err_wrap(rc, "cannot list earlier runs");
            goto done;
        }
        rc = 0, run = 1;
    }
    /* A local run is one run, now: the schedule is the cluster's business. */
    json_t *spec = json_object_get(job, "spec");
    if (json_object_get(spec, "schedule") && !o->quiet)
        fprintf(o->err, "kubefit: note: spec.schedule is not used by kubefit run (it trains once, now)\n");
    const char *sched_fields[] = {"schedule", "timeZone", "startingDeadlineSeconds", "concurrencyPolicy"};
    for (size_t i = 0; i < 4; i++)
        json_object_del(spec, sched_fields[i]);
    if (o->dry_run) {
        rc = dry_run(&L, job, run, out);
        if (!o->work_dir) { /* nothing in it worth keeping */
            char *res = NULL;
            if (asprintf(&res, "%s/dry-run.result", L.work) >= 0)
                unlink(res);
            free(res);
            rmdir(L.work);
        }
        goto done;
    }
    /* Run numbers are counted in status on a cluster; here the output folder says which is next. */
    json_object_set_new(job, "status", json_pack("{s:I,s:s,s:s}", "currentRun", (json_int_t)(run - 1), "specHash", "",
                                                 "phase", "Succeeded"));
    struct sigaction sa = {.sa_handler = on_signal}, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    reconcile_config cfg = {.backoff_base_s = o->retry_backoff_s > 0 ? o->retry_backoff_s : 10};
    for (int step = 0; step < 10000 && !interrupted; step++) {
        reconcile_result r;
        fold_progress(job, L.progress);
        reconcile_input in = {.job = job, .pods = pods, .now = kube_now(), .cfg = &cfg};
        rc = reconcile(&r, &in);
        if (rc < 0)
            break;
        if (r.status)
            json_object_set(job, "status", r.status);
        print_events(&L, r.events);
        const char *phase = str(json_object_get(job, "status"), "phase");
        if (r.create_pod) {
            json_t *pod = json_deep_copy(r.create_pod), *st = NULL;
            /* Running first (startTime, progress as the controller folds it in), then the end. */
            json_object_set_new(pod, "status", json_pack("{s:s}", "phase", "Running"));
            json_array_append(pods, pod);
            rc = run_pod(&L, r.create_pod, &st);
            if (rc == 0) {
                reconcile_result mid;
                fold_progress(job, L.progress);
                reconcile_input in2 = {.job = job, .pods = pods, .now = kube_now(), .cfg = &cfg};
                if (reconcile(&mid, &in2) == 0 && mid.status)
                    json_object_set(job, "status", mid.status);
                reconcile_result_dispose(&mid);
                json_object_set_new(pod, "status", st);
            }
            json_decref(pod);
        } else if (reconcile_phase_finished(phase)) {
            reconcile_result_dispose(&r);
            break;
        } else if (r.requeue_after > 0) {
            if (!o->quiet)
                fprintf(o->err, "kubefit: retrying in %.1fs\n", r.requeue_after);
            sleep_s(r.requeue_after);
        } else {
            reconcile_result_dispose(&r);
            rc = err_set(KF_EINVAL, "the run is stuck in phase %s (reconcile asks for nothing)", phase ? phase : "?");
            break;
        }
        reconcile_result_dispose(&r);
        if (rc < 0)
            break;
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (rc < 0)
        goto done;
    if (interrupted) {
        out->exit_code = 130;
        if (!o->quiet)
            fprintf(o->err, "kubefit: interrupted; the trainer keeps a checkpoint per epoch: kubefit run -f %s --run %ld "
                            "resumes this run\n", o->manifest, run);
    } else {
        out->exit_code = exit_code_of(job, pods);
    }
    const char *muri = str(json_object_get(job, "status"), "metricsURI");
    if (out->exit_code == 0 && muri) {
        storage *s = NULL;
        char *text = NULL;
        size_t len = 0;
        if (storage_new(&s, NULL) == 0 && storage_read(s, muri, &text, &len) == 0)
            out->metrics = json_loadb(text, len, 0, NULL);
        free(text);
        storage_free(s);
        err_clear();
    }
    out->job = job;
    job = NULL;
done:
    json_decref(L.progress);
    json_decref(job);
    json_decref(pods);
    free(L.trainer);
    free(L.work);
    return rc;
}

void localrun_result_dispose(localrun_result *r)
{
    if (!r)
        return;
    json_decref(r->job);
    json_decref(r->metrics);
    memset(r, 0, sizeof *r);
}
