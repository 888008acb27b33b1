/* cli: what every kubefit subcommand shares - its streams, the global flags, the exit codes.
 *
 * Exit codes (docs/cli.md), the trainer's (common/contract.h) where they overlap:
 *   0  done; for run, wait and --follow: the run succeeded
 *   1  failed: the run failed (not for bad input), or the request did (not found, forbidden)
 *   2  bad input: a bad flag or manifest, no cluster configured, or a run that failed for bad
 *      input (BadInput, InvalidSpec) - trying again will not help
 *   3  transient: the API server could not be reached, a wait timed out, or the trainer's
 *      transient failures used up the retries - trying again may help
 *   130 interrupted */
#ifndef KUBEFIT_CLI_H
#define KUBEFIT_CLI_H

#include <stdio.h>

#include "args.h"
#include "cluster.h"

enum { CLI_OK = 0, CLI_FAILED = 1, CLI_BAD_INPUT = 2, CLI_TRANSIENT = 3 };

typedef struct {
    const char *prog; /* "kubefit" or "kubectl kubefit" */
    FILE *out, *err;
    int tty_out, tty_err;
} cli_ctx;

/* --kubeconfig, --context, -n/--namespace */
extern const args_flag cli_cluster_flags[];

/* What a subcommand's command line is. */
typedef struct {
    const char *name;         /* "submit" */
    const char *usage;        /* the Usage: line after the program name */
    const args_flag *flags;   /* its own flags */
    int cluster;              /* takes the cluster flags too */
} cli_command;

/* Parses a subcommand's argv (NULL-terminated) against its flags. Returns -1 when the command
 * should go on, else the exit code (help printed: 0; bad flag: 2, message printed). */
int cli_args(args_parsed *a, const cli_ctx *ctx, const cli_command *cmd, char **argv);

/* Connects with the cluster flags of a. Returns -1 when connected, else the exit code (message
 * printed). */
int cli_connect(cluster *c, const cli_ctx *ctx, const args_parsed *a);

/* Prints "kubefit: <err_msg()>" and returns the exit code for error code rc. */
int cli_fail(const cli_ctx *ctx, int rc);

/* --output: NULL/"" (human), "json", "yaml" or (get) "wide"/"name"; 2 with a message when the
 * value is not one of allowed ("json|yaml"). Returns -1 when fine. */
int cli_output(const char **out, const cli_ctx *ctx, const args_parsed *a, const char *allowed);
/* Prints v as JSON (indented) or YAML. */
int cli_print_object(const cli_ctx *ctx, const json_t *v, const char *format);

int cmd_submit(const cli_ctx *ctx, char **argv);
int cmd_run(const cli_ctx *ctx, char **argv);
int cmd_get(const cli_ctx *ctx, char **argv);
int cmd_status(const cli_ctx *ctx, char **argv);
int cmd_logs(const cli_ctx *ctx, char **argv);
int cmd_wait(const cli_ctx *ctx, char **argv);
int cmd_retrain(const cli_ctx *ctx, char **argv);
int cmd_predict(const cli_ctx *ctx, char **argv);

#endif
