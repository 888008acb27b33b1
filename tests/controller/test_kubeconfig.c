/* kubeconfig parsing (libyaml), in-cluster config, token files and exec credential plugins. */
#include "err.h"
#include "kubeauth.h"
#include "kubeconfig.h"
#include "kubetime.h"
#include "test.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static void write_file(const char *path, const char *text, int mode)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
    chmod(path, (mode_t)mode);
}

/* base64 of "-----BEGIN CERTIFICATE-----\nCA\n" etc. computed by hand below */
static const char KUBECONFIG[] =
    "apiVersion: v1\n"
    "kind: Config\n"
    "current-context: dev\n"
    "clusters:\n"
    "- name: prod\n"
    "  cluster:\n"
    "    server: https://prod.example:6443/\n"
    "    certificate-authority: certs/ca.pem\n"
    "- name: dev\n"
    "  cluster:\n"
    "    server: https://127.0.0.1:6443\n"
    "    certificate-authority-data: Q0EtUEVN\n"   /* CA-PEM */
    "    insecure-skip-tls-verify: false\n"
    "contexts:\n"
    "- name: dev\n"
    "  context: {cluster: dev, user: alice, namespace: team-a}\n"
    "- name: prod\n"
    "  context:\n"
    "    cluster: prod\n"
    "    user: bob\n"
    "- name: gke\n"
    "  context: {cluster: prod, user: plugin}\n"
    "- name: ghost\n"
    "  context: {cluster: nowhere, user: alice}\n"
    "users:\n"
    "- name: alice\n"
    "  user:\n"
    "    client-certificate-data: Q0VSVA==\n"     /* CERT */
    "    client-key-data: S0VZ\n"                 /* KEY */
    "    token: s3cr3t\n"
    "- name: bob\n"
    "  user:\n"
    "    client-certificate: /abs/cert.pem\n"
    "    client-key: rel/key.pem\n"
    "    tokenFile: tok\n"
    "- name: plugin\n"
    "  user:\n"
    "    exec:\n"
    "      apiVersion: client.authentication.k8s.io/v1beta1\n"
    "      command: gke-gcloud-auth-plugin\n"
    "      args: [--use_application_default_credentials, -v]\n"
    "      env:\n"
    "      - {name: FOO, value: bar}\n";

static void test_parse(void)
{
    kube_config c;
    CHECK_EQ_INT(0, kube_config_parse(&c, KUBECONFIG, strlen(KUBECONFIG), NULL, "/home/u/.kube"));
    CHECK_EQ_STR("https://127.0.0.1:6443", c.server);
    CHECK_EQ_STR("CA-PEM", c.ca_pem);
    CHECK(c.ca_file == NULL);
    CHECK_EQ_STR("CERT", c.cert_pem);
    CHECK_EQ_STR("KEY", c.key_pem);
    CHECK_EQ_STR("s3cr3t", c.token);
    CHECK_EQ_STR("team-a", c.namespace);
    CHECK_EQ_INT(0, c.insecure);
    kube_config_dispose(&c);

    CHECK_EQ_INT(0, kube_config_parse(&c, KUBECONFIG, strlen(KUBECONFIG), "prod", "/home/u/.kube"));
    CHECK_EQ_STR("https://prod.example:6443", c.server); /* trailing slash dropped */
    CHECK_EQ_STR("/home/u/.kube/certs/ca.pem", c.ca_file);
    CHECK_EQ_STR("/abs/cert.pem", c.cert_file);
    CHECK_EQ_STR("/home/u/.kube/rel/key.pem", c.key_file);
    CHECK_EQ_STR("/home/u/.kube/tok", c.token_file);
    CHECK_EQ_STR("default", c.namespace);
    kube_config_dispose(&c);

    CHECK_EQ_INT(0, kube_config_parse(&c, KUBECONFIG, strlen(KUBECONFIG), "gke", NULL));
    CHECK_EQ_STR("gke-gcloud-auth-plugin", c.exec_command);
    CHECK_EQ_STR("client.authentication.k8s.io/v1beta1", c.exec_api_version);
    CHECK_EQ_STR("--use_application_default_credentials", c.exec_args[0]);
    CHECK_EQ_STR("-v", c.exec_args[1]);
    CHECK(c.exec_args[2] == NULL);
    CHECK_EQ_INT(1, c.exec_env_len);
    CHECK_EQ_STR("FOO", c.exec_env[0].name);
    CHECK_EQ_STR("bar", c.exec_env[0].value);
    kube_config_dispose(&c);

    /* Errors name what is wrong. */
    struct {
        const char *yaml, *context, *want;
    } bad[] = {
        {KUBECONFIG, "nope", "context \"nope\" not found"},
        {KUBECONFIG, "ghost", "cluster \"nowhere\" of context \"ghost\" not found"},
        {"current-context: \"\"\n", NULL, "current-context is empty"},
        {"- just\n- a list\n", NULL, "not a mapping"},
        {"a: [unclosed\n", NULL, "YAML error at line"},
        {"", NULL, "not a mapping"},
        {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\nclusters:\n- name: c\n  cluster: {}\n",
         NULL, "cluster \"c\" has no server"},
        {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\nclusters:\n- name: c\n"
         "  cluster: {server: https://h, certificate-authority-data: '!!notbase64'}\n",
         NULL, "certificate-authority-data is not valid base64"},
        {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\nclusters:\n- name: c\n"
         "  cluster: {server: https://h}\nusers:\n- name: u\n  user: {client-certificate-data: Q0VSVA==}\n",
         NULL, "client certificate and key must come together"},
        {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\nclusters:\n- name: c\n"
         "  cluster: {server: https://h}\nusers:\n- name: u\n  user: {exec: {args: [a]}}\n",
         NULL, "user.exec.command is missing"},
        {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\nclusters:\n- name: c\n"
         "  cluster: {server: https://h}\nusers:\n- name: u\n  user: {auth-provider: {name: gcp}}\n",
         NULL, "auth-provider is not supported"},
        {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\nclusters:\n- name: c\n"
         "  cluster: {server: https://h}\n",
         NULL, "user \"u\" of context \"x\" not found"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = kube_config_parse(&c, bad[i].yaml, strlen(bad[i].yaml), bad[i].context, NULL);
        CHECK(rc < 0);
        if (!strstr(err_msg(), bad[i].want))
            TEST_FAIL_("case %zu: message \"%s\" lacks \"%s\"", i, err_msg(), bad[i].want);
        CHECK(c.server == NULL); /* disposed on error */
    }

    size_t n;
    char *d = kube_base64_decode("aGVs\nbG8=", &n);
    CHECK_EQ_STR("hello", d);
    CHECK_EQ_INT(5, n);
    free(d);
    CHECK(kube_base64_decode("aGVsbG8=x", &n) == NULL);
    CHECK(kube_base64_decode("a", &n) == NULL);
}

static void test_in_cluster_and_token_file(const char *dir)
{
    char sa[512], path[600];
    snprintf(sa, sizeof sa, "%s/sa", dir);
    mkdir(sa, 0700);
    snprintf(path, sizeof path, "%s/token", sa);
    write_file(path, "token-one\n", 0600);
    snprintf(path, sizeof path, "%s/namespace", sa);
    write_file(path, "kubefit-system", 0600);
    unsetenv("KUBERNETES_SERVICE_HOST");
    kube_config c;
    CHECK_EQ_INT(KF_ENOTFOUND, kube_config_in_cluster(&c, sa));
    setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    CHECK_EQ_INT(0, kube_config_in_cluster(&c, sa));
    CHECK_EQ_STR("https://10.0.0.1:443", c.server);
    CHECK_EQ_STR("kubefit-system", c.namespace);
    snprintf(path, sizeof path, "%s/ca.crt", sa);
    CHECK_EQ_STR(path, c.ca_file);
    setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
    kube_config c6;
    CHECK_EQ_INT(0, kube_config_in_cluster(&c6, sa));
    CHECK_EQ_STR("https://[fd00::1]:443", c6.server);
    kube_config_dispose(&c6);
    unsetenv("KUBERNETES_SERVICE_HOST");

    /* The token file is re-read when it changes (projected tokens rotate). */
    kube_auth *a = kube_auth_new(&c);
    char *t = NULL;
    CHECK_EQ_INT(0, kube_auth_token(a, &t));
    CHECK_EQ_STR("token-one", t);
    free(t);
    snprintf(path, sizeof path, "%s/token", sa);
    usleep(20000);
    write_file(path, "token-two-longer\n", 0600);
    CHECK_EQ_INT(0, kube_auth_token(a, &t));
    CHECK_EQ_STR("token-two-longer", t);
    free(t);
    unlink(path);
    kube_auth_invalidate(a);
    CHECK_EQ_INT(KF_EAUTH, kube_auth_token(a, &t));
    CHECK(strstr(err_msg(), "token") != NULL);
    kube_auth_free(a);
    kube_config_dispose(&c);
}

static void test_exec(const char *dir)
{
    char script[256], counter[256], yaml[2048];
    snprintf(script, sizeof script, "%s/plugin.sh", dir);
    snprintf(counter, sizeof counter, "%s/calls", dir);
    /* Counts its calls; the token carries the call number, its env and args, and KUBERNETES_EXEC_INFO. */
    char body[2048];
    snprintf(body, sizeof body,
             "#!/bin/sh\n"
             "n=$(($(cat %s 2>/dev/null || echo 0) + 1)); echo $n > %s\n"
             "case \"$KUBERNETES_EXEC_INFO\" in *ExecCredential*) ;; *) exit 9;; esac\n"
             "exp=\"${EXPIRY:-2099-01-01T00:00:00Z}\"\n"
             "echo \"{\\\"apiVersion\\\":\\\"client.authentication.k8s.io/v1\\\",\\\"kind\\\":\\\"ExecCredential\\\","
             "\\\"status\\\":{\\\"token\\\":\\\"tok-$n-$FOO-$1\\\",\\\"expirationTimestamp\\\":\\\"$exp\\\"}}\"\n",
             counter, counter);
    write_file(script, body, 0700);
    snprintf(yaml, sizeof yaml,
             "current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\nclusters:\n- name: c\n"
             "  cluster: {server: https://h}\nusers:\n- name: u\n  user:\n    exec:\n      command: %s\n"
             "      args: [arg1]\n      env: [{name: FOO, value: bar}]\n",
             script);
    kube_config c;
    CHECK_EQ_INT(0, kube_config_parse(&c, yaml, strlen(yaml), NULL, NULL));
    char *t = NULL;
    double exp = 0;
    CHECK_EQ_INT(0, kube_auth_exec(&c, &t, &exp));
    CHECK_EQ_STR("tok-1-bar-arg1", t);
    double want;
    kube_time_parse("2099-01-01T00:00:00Z", &want);
    CHECK_NEAR(want, exp, 0, 0);
    free(t);

    kube_auth *a = kube_auth_new(&c);
    CHECK_EQ_INT(0, kube_auth_token(a, &t));
    CHECK_EQ_STR("tok-2-bar-arg1", t);
    free(t);
    CHECK_EQ_INT(0, kube_auth_token(a, &t)); /* cached until expiry */
    CHECK_EQ_STR("tok-2-bar-arg1", t);
    free(t);
    kube_auth_invalidate(a); /* a 401 */
    CHECK_EQ_INT(0, kube_auth_token(a, &t));
    CHECK_EQ_STR("tok-3-bar-arg1", t);
    free(t);
    kube_auth_free(a);

    /* An already-expired credential is fetched again on every use. */
    setenv("EXPIRY", "2001-01-01T00:00:00Z", 1);
    a = kube_auth_new(&c);
    CHECK_EQ_INT(0, kube_auth_token(a, &t));
    free(t);
    CHECK_EQ_INT(0, kube_auth_token(a, &t));
    CHECK_EQ_STR("tok-5-bar-arg1", t);
    free(t);
    unsetenv("EXPIRY");
    kube_auth_free(a);

    /* Bad plugins give clear errors. */
    setenv("EXPIRY", "yesterday", 1);
    CHECK_EQ_INT(KF_EINVAL, kube_auth_exec(&c, &t, &exp));
    CHECK(strstr(err_msg(), "yesterday") != NULL);
    unsetenv("EXPIRY");
    write_file(script, "#!/bin/sh\necho not json\n", 0700);
    CHECK_EQ_INT(KF_EINVAL, kube_auth_exec(&c, &t, &exp));
    CHECK(strstr(err_msg(), "not JSON") != NULL);
    write_file(script, "#!/bin/sh\necho '{\"status\":{}}'\n", 0700);
    CHECK_EQ_INT(KF_EUNSUPPORTED, kube_auth_exec(&c, &t, &exp));
    write_file(script, "#!/bin/sh\nexit 4\n", 0700);
    CHECK_EQ_INT(KF_EAUTH, kube_auth_exec(&c, &t, &exp));
    CHECK(strstr(err_msg(), "status 4") != NULL);
    free(c.exec_command);
    c.exec_command = strdup("/nonexistent/plugin");
    CHECK_EQ_INT(KF_EAUTH, kube_auth_exec(&c, &t, &exp));
    kube_config_dispose(&c);
}

static void test_time(void)
{
    double t;
    CHECK_EQ_INT(0, kube_time_parse("1970-01-01T00:01:40Z", &t));
    CHECK_NEAR(100, t, 0, 0);
    CHECK_EQ_INT(0, kube_time_parse("2026-11-26T15:40:00.250000Z", &t));
    char buf[32];
    CHECK_EQ_STR("2026-11-26T15:40:00Z", kube_time_format(t, 0, buf));
    CHECK_EQ_STR("2026-11-26T15:40:00.250000Z", kube_time_format(t, 1, buf));
    double u;
    CHECK_EQ_INT(0, kube_time_parse("2026-11-26T16:40:00+01:00", &u));
    CHECK_NEAR(t - 0.25, u, 1e-9, 0);
    CHECK_EQ_INT(KF_EINVAL, kube_time_parse("2026-11-26 15:40:00Z", &t));
    CHECK_EQ_INT(KF_EINVAL, kube_time_parse("2026-11-26T15:40:00", &t));
    CHECK_EQ_INT(KF_EINVAL, kube_time_parse("2026-13-26T15:40:00Z", &t));
    CHECK_EQ_INT(KF_EINVAL, kube_time_parse(NULL, &t));
}

int main(void)
{
    char dir[] = "/tmp/kubefit-kubeconfig-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    test_parse();
    test_in_cluster_and_token_file(dir);
    test_exec(dir);
    test_time();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return test_done();
}
