/* args: subcommand command lines. */
#include <string.h>

#include "args.h"
#include "err.h"
#include "test.h"

static const args_flag FLAGS[] = {
    {"filename", 'f', "FILE", "manifest", 0},
    {"epochs", 0, "N", "epochs", 0},
    {"follow", 'w', NULL, "follow", 0},
    {"env", 0, "K=V", "env", 1},
    {"timeout", 0, "DURATION", "timeout", 0},
    {NULL, 0, NULL, NULL, 0},
};
static const args_flag GLOBAL[] = {{"namespace", 'n', "NS", "ns", 0}, {NULL, 0, NULL, NULL, 0}};
static const args_flag *const TABLES[] = {FLAGS, GLOBAL, NULL};

/* Parses a space-separated command line (no quoting); returns 0 or the error message. */
static const char *parse(args_parsed *a, const char *line)
{
    static char buf[512], msg[512];
    char *argv[32];
    int argc = 0;
    snprintf(buf, sizeof buf, "%s", line);
    for (char *t = buf; *t && argc < 31;) {
        argv[argc++] = t;
        t += strcspn(t, " ");
        if (*t)
            *t++ = '\0';
    }
    argv[argc] = NULL;
    if (args_parse(a, TABLES, "kubefit x", argv) < 0) {
        snprintf(msg, sizeof msg, "%s", err_msg());
        return msg;
    }
    return "ok";
}

int main(void)
{
    args_parsed a;
    CHECK_EQ_STR("ok", parse(&a, "NAME -f job.yaml --epochs=3 -w -nprod --env A=1 --env B=2 more -- --lr 1"));
    CHECK_EQ_STR("job.yaml", args_get(&a, "filename"));
    CHECK_EQ_STR("3", args_get(&a, "epochs"));
    CHECK_EQ_STR("true", args_get(&a, "follow"));
    CHECK_EQ_STR("prod", args_get(&a, "namespace"));
    CHECK_EQ_STR("A=1", args_get_all(&a, "env")[0]);
    CHECK_EQ_STR("B=2", args_get_all(&a, "env")[1]);
    CHECK(args_get_all(&a, "env")[2] == NULL);
    CHECK_EQ_INT(2, a.n_pos);
    CHECK_EQ_STR("NAME", a.pos[0]);
    CHECK_EQ_STR("more", a.pos[1]);
    CHECK_EQ_INT(2, a.n_rest);
    CHECK_EQ_STR("--lr", a.rest[0]);
    long n = 0;
    CHECK_EQ_INT(0, args_long(&n, &a, "epochs", 1, 10, 7));
    CHECK_EQ_INT(3, n);
    args_dispose(&a);

    CHECK_EQ_STR("ok", parse(&a, "-f=x.yaml -h"));
    CHECK_EQ_STR("x.yaml", args_get(&a, "filename"));
    CHECK(a.help);
    CHECK(args_get(&a, "epochs") == NULL);
    CHECK(args_get_all(&a, "env")[0] == NULL);
    CHECK_EQ_INT(0, args_long(&n, &a, "epochs", 1, 10, 7));
    CHECK_EQ_INT(7, n);
    args_dispose(&a);

    CHECK_EQ_STR("kubefit x: unknown flag --epoch (did you mean --epochs?)", parse(&a, "--epoch 3"));
    CHECK_EQ_STR("kubefit x: unknown flag --zzz (kubefit x --help lists the flags)", parse(&a, "--zzz"));
    CHECK_EQ_STR("kubefit x: unknown flag -z (kubefit x --help lists the flags)", parse(&a, "-z"));
    CHECK_EQ_STR("kubefit x: --epochs needs a value (N)", parse(&a, "--epochs"));
    CHECK_EQ_STR("kubefit x: -f needs a value (FILE)", parse(&a, "-f"));
    CHECK_EQ_STR("kubefit x: --follow takes no value", parse(&a, "--follow=yes"));
    CHECK_EQ_STR("kubefit x: --epochs given twice (\"1\", then \"2\")", parse(&a, "--epochs 1 --epochs=2"));
    CHECK_EQ_STR("kubefit x: --follow given twice", parse(&a, "-w --follow"));

    CHECK_EQ_STR("ok", parse(&a, "--epochs 0"));
    CHECK_EQ_INT(KF_EINVAL, args_long(&n, &a, "epochs", 1, 10, 7));
    CHECK_EQ_STR("--epochs: expected an integer in [1, 10], got \"0\"", err_msg());
    args_dispose(&a);

    struct {
        const char *in;
        double want;
    } durations[] = {{"90", 90}, {"90s", 90}, {"5m", 300}, {"1h30m", 5400}, {"1.5h", 5400}, {"2h0m10s", 7210}};
    for (size_t i = 0; i < sizeof durations / sizeof *durations; i++) {
        char line[64];
        double d = -1;
        snprintf(line, sizeof line, "--timeout %s", durations[i].in);
        CHECK_EQ_STR("ok", parse(&a, line));
        CHECK_EQ_INT(0, args_duration(&d, &a, "timeout", 0));
        CHECK_NEAR(durations[i].want, d, 1e-9, 0);
        args_dispose(&a);
    }
    const char *bad[] = {"5x", "m", "-3s", "1h-2m"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char line[64], want[128];
        double d = 0;
        snprintf(line, sizeof line, "--timeout=%s", bad[i]);
        CHECK_EQ_STR("ok", parse(&a, line));
        CHECK_EQ_INT(KF_EINVAL, args_duration(&d, &a, "timeout", 0));
        snprintf(want, sizeof want, "--timeout: expected a duration such as 90s, 5m or 1h30m, got \"%s\"", bad[i]);
        CHECK_EQ_STR(want, err_msg());
        args_dispose(&a);
    }
    char *help = args_help(TABLES);
    CHECK(help && strstr(help, "  -f, --filename FILE") && strstr(help, "      --env K=V"));
    free(help);
    return test_done();
}
