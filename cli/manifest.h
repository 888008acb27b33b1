/* manifest: YAML manifests as the JSON the API server would see (libyaml).
 *
 * kubectl turns YAML into JSON with sigs.k8s.io/yaml (go-yaml v2 rules), and so does this: plain
 * scalars resolve as YAML 1.1 does there (null: ~ null ""; booleans: true/false, yes/no, on/off,
 * y/n in their three spellings; integers: decimal, 0x.., 0o.., 0b.., a leading 0 is octal,
 * '_' separators; floats: 1.5, .5, 1e-2), quoted scalars are strings, !!str/!!int/!!float/!!bool
 * tags are honoured, aliases and merge keys (<<) are expanded. A float with an integral value
 * becomes a JSON integer (Go's encoder writes 10.0 as 10, and the API server reads that as an
 * integer). Duplicate keys, NaN/Inf and non-scalar keys are errors, as strict validation makes them.
 * Errors name the source and line: "job.yaml:4:3: duplicate key \"epochs\"". */
#ifndef KUBEFIT_MANIFEST_H
#define KUBEFIT_MANIFEST_H

#include <stddef.h>

#include <jansson.h>

/* Every non-empty document of text, in order, as a new JSON array (caller decrefs).
 * source names the text in errors ("job.yaml", "<stdin>"). KF_EINVAL on malformed YAML. */
int manifest_parse(json_t **docs, const char *text, size_t len, const char *source);

/* Reads path ("-": stdin) and parses it. KF_ENOTFOUND / KF_EINVAL naming the path. */
int manifest_load(json_t **docs, const char *path);

/* The JSON value of one plain (unquoted, untagged) YAML scalar, or NULL for a string (the caller
 * keeps the text). KF_EINVAL for .nan/.inf, which JSON cannot hold. Exposed for tests and for
 * the YAML writer, which quotes strings that would read back as something else. */
int manifest_plain_scalar(json_t **out, const char *text, size_t len);

#endif
