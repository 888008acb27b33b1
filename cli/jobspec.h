/* jobspec: a TrainingJob from the old command line,
 *   kubefit submit NAME --lang fr --epochs 10 --bucket-name B --model-dir D [--gpus 1 ...] -- ARGS
 * The trainer-shaped flags are the contract's (common/contract.c): every flag the controller
 * renders from a spec field (--lang -> spec.language, --bucket-name -> spec.storage.bucket,
 * --batch-size -> spec.batchSize, ...) is a submit flag of the same name, checked with the same
 * rule and message as the trainer's. The Pod-shaped ones (--gpus, --accelerator, --spot, --cpu,
 * --memory, --image, --service-account, --backoff-limit, --deadline, --schedule, --time-zone,
 * --env) set spec.resources and friends; what follows "--" becomes spec.args. The job is then
 * checked as the API server (crd.c) and the controller (podspec_check) would, with messages that
 * name the flag instead of the field. */
#ifndef KUBEFIT_JOBSPEC_H
#define KUBEFIT_JOBSPEC_H

#include <jansson.h>

#include "args.h"

/* The submit flags (contract-derived and Pod-shaped), NULL-name terminated, static storage. */
const args_flag *jobspec_flags(void);

/* Builds the TrainingJob name/namespace from the parsed flags into *job (caller decrefs).
 * KF_EINVAL naming the flag. */
int jobspec_build(json_t **job, const args_parsed *a, const char *name, const char *namespace);

/* Rewrites a message that starts with a spec field ("spec.batchSize: ...") to name its flag
 * ("--batch-size: ..."), in place in err_msg(). Returns rc. */
int jobspec_explain(int rc);

#endif
