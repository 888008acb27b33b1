/* kubefit: the command people type (docs/cli.md). One binary; also `kubectl kubefit` through
 * its kubectl-kubefit name. Subcommands live in cmd_*.c; what they share in cli.h. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "err.h"
#include "http.h"
#include "yamlout.h"

#ifndef KUBEFIT_VERSION
#define KUBEFIT_VERSION "dev"
#endif

const args_flag cli_cluster_flags[] = {
    {"kubeconfig", 0, "FILE", "kubeconfig (default: $KUBECONFIG, in-cluster, ~/.kube/config)", 0},
    {"context", 0, "NAME", "kubeconfig context (default: its current-context)", 0},
    {"namespace", 'n', "NS", "namespace (default: the context's, else default)", 0},
    {NULL, 0, NULL, NULL, 0},
};

int cli_fail(const cli_ctx *ctx, int rc)
{
    fprintf(ctx->err, "%s: %s\n", ctx->prog, err_msg()[0] ? err_msg() : err_name(rc));
    switch (rc) {
    case KF_EINVAL:
    case KF_EUNSUPPORTED:
        return CLI_BAD_INPUT;
    case KF_ERETRY:
        return CLI_TRANSIENT;
    default:
        return CLI_FAILED;
    }
}

int cli_args(args_parsed *a, const cli_ctx *ctx, const cli_command *cmd, char **argv)
{
    static const args_flag none[] = {{NULL, 0, NULL, NULL, 0}};
    const args_flag *tables[] = {cmd->flags ? cmd->flags : none, cmd->cluster ? cli_cluster_flags : NULL, NULL};
    char name[64];
    snprintf(name, sizeof name, "%s %s", ctx->prog, cmd->name);
    if (args_parse(a, tables, name, argv) < 0) {
        fprintf(ctx->err, "%s\n", err_msg()); /* it names the command already */
        return CLI_BAD_INPUT;
    }
    if (a->help) {
        char *flag_help = args_help(tables);
        fprintf(ctx->out, "Usage: %s %s\n\nFlags:\n%s  -h, --help                     this help\n", ctx->prog, cmd->usage,
                flag_help ? flag_help : "");
        free(flag_help);
        args_dispose(a);
        return 0;
    }
    return -1;
}

int cli_connect(cluster *c, const cli_ctx *ctx, const args_parsed *a)
{
    cluster_options o = {.kubeconfig = args_get(a, "kubeconfig"), .context = args_get(a, "context"),
                         .namespace = args_get(a, "namespace")};
    int rc = cluster_connect(c, &o);
    return rc < 0 ? cli_fail(ctx, rc) : -1;
}

int cli_output(const char **out, const cli_ctx *ctx, const args_parsed *a, const char *allowed)
{
    const char *v = args_get(a, "output");
    *out = v;
    if (!v || !*v)
        return -1;
    size_t n = strlen(v);
    for (const char *p = allowed; *p;) {
        size_t k = strcspn(p, "|");
        if (k == n && !strncmp(p, v, n))
            return -1;
        p += k + (p[k] == '|');
    }
    fprintf(ctx->err, "%s: --output must be one of %s, got \"%s\"\n", ctx->prog, allowed, v);
    return CLI_BAD_INPUT;
}

int cli_print_object(const cli_ctx *ctx, const json_t *v, const char *format)
{
    if (format && !strcmp(format, "yaml"))
        return yamlout_write(ctx->out, v);
    /* 15 digits: 0.4 rather than 0.40000000000000002 (every decimal of 15 digits reads back the same) */
    if (json_dumpf(v, ctx->out, JSON_INDENT(2) | JSON_REAL_PRECISION(15)) < 0)
        return err_set(KF_EIO, "cannot write JSON");
    fputc('\n', ctx->out);
    return 0;
}

/* ---- help and completion ---- */

typedef struct {
    const char *name;
    int (*fn)(const cli_ctx *, char **);
    const char *summary;
} command;

static const command COMMANDS[] = {
    {"run", cmd_run, "run a TrainingJob manifest on this machine, no cluster (run -f job.yaml)"},
    {"submit", cmd_submit, "create or update a TrainingJob from flags (--lang --epochs --bucket-name --model-dir)"},
    {"get", cmd_get, "list TrainingJobs, or show one (-o yaml|json)"},
    {"status", cmd_status, "phase, progress, metrics, best and worst labels, run history of a job"},
    {"logs", cmd_logs, "the trainer's log of a job's run (-f follows across retries)"},
    {"wait", cmd_wait, "wait for a job's current run to finish; the exit code says how it ended"},
    {"retrain", cmd_retrain, "start a new run of a job with the same spec (the kubefit.dev/retrain annotation)"},
    {"predict", cmd_predict, "label texts with a job's latest model (the local trainer reads it from the bucket)"},
    {NULL, NULL, NULL},
};

static void usage(const cli_ctx *ctx, FILE *f)
{
    fprintf(f, "%s: train text classifiers on Kubernetes (kubefit %s)\n\nUsage: %s COMMAND [flags]\n\nCommands:\n",
            ctx->prog, KUBEFIT_VERSION, ctx->prog);
    for (const command *c = COMMANDS; c->name; c++)
        fprintf(f, "  %-10s %s\n", c->name, c->summary);
    fprintf(f, "  %-10s %s\n  %-10s %s\n\n", "completion", "shell completion script (bash or zsh)", "version",
            "print the version");
    fprintf(f, "Start with the local demo: make demo (docs/quickstart.md). On a cluster:\n"
               "  %s submit fr-classifier --lang fr --epochs 10 --bucket-name gs://B --model-dir models --follow\n"
               "%s COMMAND --help shows a command's flags; docs/cli.md has them all.\n",
            ctx->prog, ctx->prog);
}

static int completion(const cli_ctx *ctx, int argc, char **argv)
{
    const char *shell = argc > 1 ? argv[1] : "bash";
    if (strcmp(shell, "bash") != 0 && strcmp(shell, "zsh") != 0) {
        fprintf(ctx->err, "%s: completion: expected bash or zsh, got \"%s\"\n", ctx->prog, shell);
        return CLI_BAD_INPUT;
    }
    FILE *f = ctx->out;
    if (!strcmp(shell, "zsh"))
        fprintf(f, "autoload -U +X bashcompinit && bashcompinit\n");
    fprintf(f, "# %s shell completion: source <(kubefit completion %s)\n", ctx->prog, shell);
    fprintf(f, "_kubefit() {\n"
               "  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} sub=${COMP_WORDS[1]}\n"
               "  if [ \"$COMP_CWORD\" -eq 1 ]; then\n"
               "    COMPREPLY=($(compgen -W \"");
    for (const command *c = COMMANDS; c->name; c++)
        fprintf(f, "%s ", c->name);
    fprintf(f, "completion version\" -- \"$cur\")); return\n"
               "  fi\n"
               "  case \"$prev\" in\n"
               "    -f|--filename|--kubeconfig|--work-dir|--trainer) COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n"
               "    -o|--output) COMPREPLY=($(compgen -W \"json yaml wide name\" -- \"$cur\")); return ;;\n"
               "    --device) COMPREPLY=($(compgen -W \"auto cpu cuda\" -- \"$cur\")); return ;;\n"
               "  esac\n"
               "  if [[ \"$cur\" == -* ]]; then\n"
               "    COMPREPLY=($(compgen -W \"$(kubefit \"$sub\" --help 2>/dev/null | grep -o -- '--[a-z][a-z-]*' | sort -u)\" -- \"$cur\"))\n"
               "  else\n"
               "    case \"$sub\" in\n"
               "      status|logs|wait|retrain|predict|get|submit)\n"
               "        COMPREPLY=($(compgen -W \"$(kubefit get -o name 2>/dev/null)\" -- \"$cur\")) ;;\n"
               "    esac\n"
               "  fi\n"
               "}\n"
               "complete -F _kubefit kubefit\n"
               "complete -F _kubefit kubectl-kubefit\n");
    return 0;
}

int main(int argc, char **argv)
{
    const char *base = argv[0] ? strrchr(argv[0], '/') : NULL;
    base = base ? base + 1 : argv[0] ? argv[0] : "kubefit";
    cli_ctx ctx = {.prog = strncmp(base, "kubectl-", 8) == 0 ? "kubectl kubefit" : "kubefit", .out = stdout,
                   .err = stderr, .tty_out = isatty(1), .tty_err = isatty(2)};
    if (argc < 2) {
        usage(&ctx, stderr);
        return CLI_BAD_INPUT;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "-h") || !strcmp(sub, "--help") || !strcmp(sub, "help")) {
        usage(&ctx, stdout);
        return 0;
    }
    if (!strcmp(sub, "version") || !strcmp(sub, "--version")) {
        printf("kubefit %s\n", KUBEFIT_VERSION);
        return 0;
    }
    if (!strcmp(sub, "completion"))
        return completion(&ctx, argc - 1, argv + 1);
    for (const command *c = COMMANDS; c->name; c++)
        if (!strcmp(sub, c->name))
            return c->fn(&ctx, argv + 2);
    fprintf(stderr, "%s: unknown command \"%s\" (%s --help lists the commands)\n", ctx.prog, sub, ctx.prog);
    return CLI_BAD_INPUT;
}
