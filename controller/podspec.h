/* podspec: the Pod one attempt of a TrainingJob run needs, and the spec checks that must hold
 * before any Pod is made. The trainer's arguments come from the contract's flag table
 * (common/contract.c): each flag with a spec field is read from that field, checked with the
 * trainer's own rule and rendered; spec.args follow and may not repeat a controller-owned flag. */
#ifndef KUBEFIT_PODSPEC_H
#define KUBEFIT_PODSPEC_H

#include <jansson.h>

#include "contract.h"
#include "reconcile.h"

/* The trainer argv (command first) of attempt for run; KF_EINVAL naming the spec field when the
 * spec holds a value the trainer would refuse. Caller frees with contract_argv_free. */
int podspec_args(contract_argv *out, const json_t *job, int run, const reconcile_config *cfg);

/* Everything about the spec that can be known before a Pod runs: the trainer arguments above,
 * the bucket name, resources.gpus, spec.args, the schedule (parses, can fire) and its time
 * zone. 0, or KF_EINVAL with a message naming the field. now: seconds since the epoch. */
int podspec_check(const json_t *job, const reconcile_config *cfg, double now);

#endif
