#include "kubeauth.h"

#include "err.h"
#include "kubetime.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EXEC_TIMEOUT_MS 30000
#define EXEC_MAX_OUTPUT (1 << 20)
#define EXPIRY_MARGIN_S 30.0

extern char **environ;

struct kube_auth {
    pthread_mutex_t mu;
    kube_config cfg;      /* only the auth fields are filled */
    char *cached;         /* token from file or exec */
    double expiry;        /* exec: when to refresh; 0 none */
    struct timespec mtime;/* token file mtime when read */
    double read_at;       /* token file: last read */
};

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

kube_auth *kube_auth_new(const kube_config *cfg)
{
    kube_auth *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    pthread_mutex_init(&a->mu, NULL);
    a->cfg.token = dup_or_null(cfg->token);
    a->cfg.token_file = dup_or_null(cfg->token_file);
    a->cfg.exec_command = dup_or_null(cfg->exec_command);
    a->cfg.exec_api_version = dup_or_null(cfg->exec_api_version);
    size_t nargs = 0;
    while (cfg->exec_args && cfg->exec_args[nargs])
        nargs++;
    a->cfg.exec_args = calloc(nargs + 1, sizeof(char *));
    for (size_t i = 0; a->cfg.exec_args && i < nargs; i++)
        a->cfg.exec_args[i] = strdup(cfg->exec_args[i]);
    if (cfg->exec_env_len) {
        a->cfg.exec_env = calloc(cfg->exec_env_len, sizeof *a->cfg.exec_env);
        for (size_t i = 0; a->cfg.exec_env && i < cfg->exec_env_len; i++) {
            a->cfg.exec_env[i].name = strdup(cfg->exec_env[i].name);
            a->cfg.exec_env[i].value = strdup(cfg->exec_env[i].value);
            a->cfg.exec_env_len++;
        }
    }
    return a;
}

void kube_auth_free(kube_auth *a)
{
    if (!a)
        return;
    kube_config_dispose(&a->cfg);
    free(a->cached);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

void kube_auth_invalidate(kube_auth *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    free(a->cached);
    a->cached = NULL;
    a->expiry = 0;
    a->mtime = (struct timespec){0};
    pthread_mutex_unlock(&a->mu);
}

/* Builds envp: the process environment plus the plugin's env and KUBERNETES_EXEC_INFO. */
static char **build_env(const kube_config *cfg)
{
    size_t n = 0;
    while (environ && environ[n])
        n++;
    char **env = calloc(n + cfg->exec_env_len + 2, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!(env[k++] = strdup(environ[i])))
            goto fail;
    for (size_t i = 0; i < cfg->exec_env_len; i++)
        if (asprintf(&env[k++], "%s=%s", cfg->exec_env[i].name, cfg->exec_env[i].value) < 0) {
            env[k - 1] = NULL;
            goto fail;
        }
    if (asprintf(&env[k++],
                 "KUBERNETES_EXEC_INFO={\"apiVersion\":\"%s\",\"kind\":\"ExecCredential\","
                 "\"spec\":{\"interactive\":false}}",
                 cfg->exec_api_version ? cfg->exec_api_version : "client.authentication.k8s.io/v1") < 0) {
        env[k - 1] = NULL;
        goto fail;
    }
    return env;
fail:
    for (size_t i = 0; env[i]; i++)
        free(env[i]);
    free(env);
    return NULL;
}

int kube_auth_exec(const kube_config *cfg, char **token, double *expiry)
{
    *token = NULL;
    *expiry = 0;
    int rc = KF_OK, fds[2] = {-1, -1}, status = 0;
    char *out = NULL;
    size_t len = 0, cap = 0;
    json_t *j = NULL;
    pid_t pid = -1;
    size_t nargs = 0;
    while (cfg->exec_args && cfg->exec_args[nargs])
        nargs++;
    char **argv = calloc(nargs + 2, sizeof *argv);
    char **envp = build_env(cfg);
    if (!argv || !envp) {
        rc = err_set(KF_ENOMEM, "exec plugin: out of memory");
        goto done;
    }
    argv[0] = cfg->exec_command;
    for (size_t i = 0; i < nargs; i++)
        argv[i + 1] = cfg->exec_args[i];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        rc = err_set(KF_EIO, "exec plugin %s: pipe: %s", cfg->exec_command, strerror(errno));
        goto done;
    }
    pid = fork();
    if (pid < 0) {
        rc = err_set(KF_EIO, "exec plugin %s: fork: %s", cfg->exec_command, strerror(errno));
        goto done;
    }
    if (pid == 0) {
        dup2(fds[1], 1);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        execvpe(argv[0], argv, envp);
        _exit(127);
    }
    close(fds[1]);
    fds[1] = -1;
    double deadline = kube_now() + EXEC_TIMEOUT_MS / 1000.0;
    for (;;) {
        int left = (int)((deadline - kube_now()) * 1000);
        if (left <= 0) {
            kill(pid, SIGKILL);
            rc = err_set(KF_ERETRY, "exec plugin %s: timed out after %d ms", cfg->exec_command, EXEC_TIMEOUT_MS);
            goto done;
        }
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        int pr = poll(&p, 1, left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            continue;
        if (len + 4096 + 1 > cap) {
            if (cap >= EXEC_MAX_OUTPUT) {
                kill(pid, SIGKILL);
                rc = err_set(KF_EINVAL, "exec plugin %s: output over %d bytes", cfg->exec_command, EXEC_MAX_OUTPUT);
                goto done;
            }
            size_t nc = cap ? cap * 2 : 8192;
            char *b = realloc(out, nc);
            if (!b) {
                rc = err_set(KF_ENOMEM, "exec plugin: out of memory");
                goto done;
            }
            out = b;
            cap = nc;
        }
        ssize_t n = read(fds[0], out + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    pid = -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        rc = err_set(KF_EAUTH, "exec plugin %s: exited with status %d", cfg->exec_command,
                     WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        goto done;
    }
    json_error_t jerr;
    j = json_loadb(out ? out : "", len, 0, &jerr);
    if (!j) {
        rc = err_set(KF_EINVAL, "exec plugin %s: output is not JSON: %s", cfg->exec_command, jerr.text);
        goto done;
    }
    json_t *st = json_object_get(j, "status");
    const char *tok = json_string_value(json_object_get(st, "token"));
    if (!tok || !*tok) {
        rc = err_set(KF_EUNSUPPORTED, "exec plugin %s: ExecCredential has no status.token "
                     "(client certificates from plugins are not supported)", cfg->exec_command);
        goto done;
    }
    const char *exp = json_string_value(json_object_get(st, "expirationTimestamp"));
    if (exp && (rc = kube_time_parse(exp, expiry)))
        goto done;
    if (!(*token = strdup(tok)))
        rc = err_set(KF_ENOMEM, "exec plugin: out of memory");
done:
    if (pid > 0)
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    for (size_t i = 0; envp && envp[i]; i++)
        free(envp[i]);
    free(envp);
    free(argv);
    free(out);
    json_decref(j);
    return rc;
}

static int read_token_file(kube_auth *a)
{
    struct stat st;
    double now = kube_now();
    if (stat(a->cfg.token_file, &st) != 0)
        return err_set(KF_EAUTH, "token file %s: %s", a->cfg.token_file, strerror(errno));
    if (a->cached && st.st_mtim.tv_sec == a->mtime.tv_sec && st.st_mtim.tv_nsec == a->mtime.tv_nsec &&
        now - a->read_at < 60)
        return KF_OK;
    FILE *f = fopen(a->cfg.token_file, "r");
    if (!f)
        return err_set(KF_EAUTH, "token file %s: %s", a->cfg.token_file, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);
    fclose(f);
    if (n <= 0) {
        free(line);
        return err_set(KF_EAUTH, "token file %s: empty", a->cfg.token_file);
    }
    line[strcspn(line, "\r\n")] = '\0';
    free(a->cached);
    a->cached = line;
    a->mtime = st.st_mtim;
    a->read_at = now;
    return KF_OK;
}

int kube_auth_token(kube_auth *a, char **token)
{
    *token = NULL;
    int rc = KF_OK;
    pthread_mutex_lock(&a->mu);
    if (a->cfg.exec_command) {
        if (!a->cached || (a->expiry > 0 && kube_now() > a->expiry - EXPIRY_MARGIN_S)) {
            char *t = NULL;
            double exp = 0;
            if ((rc = kube_auth_exec(&a->cfg, &t, &exp)))
                goto done;
            free(a->cached);
            a->cached = t;
            a->expiry = exp;
        }
    } else if (a->cfg.token_file) {
        if ((rc = read_token_file(a)))
            goto done;
    } else if (a->cfg.token) {
        *token = strdup(a->cfg.token);
        goto done;
    } else {
        goto done;
    }
    *token = a->cached ? strdup(a->cached) : NULL;
done:
    pthread_mutex_unlock(&a->mu);
    return rc;
}
