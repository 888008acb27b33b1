# Sourced by hack/ scripts: common paths and the stamp helpers.
export KUBEFIT_ROOT=${KUBEFIT_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
export KUBEFIT_TOOLS=${KUBEFIT_TOOLS:-$HOME/.cache/kubefit}
export PATH="$KUBEFIT_TOOLS/bin:$PATH"

say() { echo "hack/setup: $*" >&2; }

# stamp_ok NAME KEY: true when step NAME last finished with the same KEY (a version string/hash).
stamp_ok() { [ -f "$KUBEFIT_TOOLS/stamps/$1" ] && [ "$(cat "$KUBEFIT_TOOLS/stamps/$1")" = "$2" ]; }
stamp_set() { mkdir -p "$KUBEFIT_TOOLS/stamps"; printf '%s' "$2" > "$KUBEFIT_TOOLS/stamps/$1"; }
# hash_of FILE...: a short hash of the given files' contents (a step's inputs).
hash_of() { cat "$@" | sha256sum | cut -c1-16; }
