/* cli: kubefit-trainer's command line (docs/contract.md, docs/trainer.md) -> run_opts. */
#ifndef KUBEFIT_TRAINER_CLI_H
#define KUBEFIT_TRAINER_CLI_H

#include "run.h"

typedef enum { CLI_RUN, CLI_HELP, CLI_BAD, CLI_DRY_RUN } cli_action;

/* Parses argv into o (strings borrowed from argv). CLI_BAD sets err_msg(); CLI_DRY_RUN: the
 * arguments are good and --dry-run asks only for the resolved layout. The help text is
 * contract_usage(). */
cli_action cli_parse(run_opts *o, int argc, char **argv);

#endif
