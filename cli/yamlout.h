/* yamlout: JSON values written as YAML (libyaml's emitter), for --output yaml and
 * `kubefit submit --dry-run`. Strings that would read back as something else ("10", "true",
 * "null", "") are quoted, so manifest_parse(yamlout(v)) == v. Multi-line strings use the literal
 * block style. */
#ifndef KUBEFIT_YAMLOUT_H
#define KUBEFIT_YAMLOUT_H

#include <stdio.h>

#include <jansson.h>

/* One YAML document for v into f. KF_EIO / KF_ENOMEM with err_msg() on failure. */
int yamlout_write(FILE *f, const json_t *v);

/* The same as a new string (caller frees). NULL with err_msg() on failure. */
char *yamlout_string(const json_t *v);

#endif
