#!/usr/bin/env bash
# Run under tests/cluster/with-apiserver: every manifest through the whole path.
#  - tests/crd/good/*.yaml and examples/*.yaml: admission accepts them; the controller's podspec
#    (render_pod) makes a Pod; with the trainer's own entry point, kubefit-trainer parses the Pod's
#    arguments and resolves the storage layout (--dry-run): outputs under
#    <bucket>/<modelDir>/<language>/<name>/1/.
#  - tests/crd/bad-controller/*.yaml: admission accepts them, the controller refuses them at once
#    with the message on their "# expect:" line.
set -euo pipefail
: "${KUBECONFIG:?run under tests/cluster/with-apiserver}" "${RENDER_POD:?}" "${KUBEFIT_TRAINER_BIN:?}"
root=${KUBEFIT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
kc=(kubectl --kubeconfig "$KUBECONFIG" --request-timeout 30s)
py=python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0 checks=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { checks=$((checks + 1)); }

"${kc[@]}" apply -f "$root/crds/trainingjob.yaml" >/dev/null
"$root/tests/cluster/crd-established" trainingjobs.kubefit.dev 60
for _ in $(seq 1 50); do "${kc[@]}" get tj -o name >/dev/null 2>&1 && break; sleep 0.2; done

ngood=0
for f in "$root"/tests/crd/good/*.yaml "$root"/examples/*.yaml; do
  name=$(basename "$f")
  if ! "${kc[@]}" apply -f "$f" -o json >"$tmp/job.json" 2>"$tmp/err"; then
    fail "$name: admission refused it: $(cat "$tmp/err")"; continue
  fi
  if ! "$RENDER_POD" <"$tmp/job.json" >"$tmp/pod.json" 2>"$tmp/err"; then
    fail "$name: the controller refused it: $(cat "$tmp/err")"; continue
  fi
  ok
  # The container's command and args, one per line (NUL-free: they came from YAML strings).
  $py - "$tmp/pod.json" "$tmp/job.json" >"$tmp/argv" <<'PY'
import json, sys
pod, job = (json.load(open(p)) for p in sys.argv[1:3])
c = pod["spec"]["containers"][0]
print(json.dumps({"command": c["command"], "args": c["args"], "job": job}))
PY
  if [ "$($py -c 'import json,sys; print(json.load(open(sys.argv[1]))["command"] == ["kubefit-trainer"])' "$tmp/argv")" != True ]; then
    ok; ngood=$((ngood + 1)); continue   # a custom entry point: the contract's own flags only (checked by render_pod)
  fi
  mapfile -t args < <($py -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1]))["args"]))' "$tmp/argv")
  if ! "$KUBEFIT_TRAINER_BIN" "${args[@]}" --dry-run >"$tmp/layout.json" 2>"$tmp/err"; then
    fail "$name: kubefit-trainer refused the controller's arguments (${args[*]}): $(cat "$tmp/err")"; continue
  fi
  if $py - "$tmp/argv" "$tmp/layout.json" <<'PY'
import json, sys
a = json.load(open(sys.argv[1])); lay = json.load(open(sys.argv[2]))
spec, meta = a["job"]["spec"], a["job"]["metadata"]
bucket = spec["storage"]["bucket"]
root = bucket if "/" in bucket else "gs://" + bucket
want = f'{root.rstrip("/")}/{spec["storage"]["modelDir"]}/{spec["language"]}/{meta["name"]}/1/'
gpus = spec["resources"]["gpus"]
ok = lay["outputs"]["dir"] == want and lay["inputs"]["train"].startswith(
    spec["storage"].get("trainURI") or f'{root.rstrip("/")}/{spec["language"]}/data/') \
    and lay["device"] == ("cuda" if gpus > 0 else "cpu")
if not ok:
    print(f"layout {lay} does not match the spec (want outputs in {want}, gpus {gpus})", file=sys.stderr)
sys.exit(0 if ok else 1)
PY
  then ok; ngood=$((ngood + 1)); else fail "$name: the trainer's layout does not match the spec"; fi
done

nlate=0
for f in "$root"/tests/crd/bad-controller/*.yaml; do
  name=$(basename "$f"); nlate=$((nlate + 1))
  expect=$(sed -n 's/^# expect: //p' "$f")
  if ! "${kc[@]}" apply -f "$f" -o json >"$tmp/job.json" 2>"$tmp/err"; then
    fail "$name: admission refused it (the controller should): $(cat "$tmp/err")"; continue
  fi
  if "$RENDER_POD" <"$tmp/job.json" >/dev/null 2>"$tmp/err"; then
    fail "$name: the controller accepted it; expected: $expect"
  elif ! grep -qF -- "$expect" "$tmp/err"; then
    fail "$name: expected the message to contain: $expect; the controller said: $(cat "$tmp/err")"
  else
    ok
  fi
done
[ "$ngood" -ge 6 ] && [ "$nlate" -ge 6 ] && ok || fail "too few manifests ($ngood good, $nlate refused by the controller)"
echo "$checks checks, $failures failed ($ngood good manifests through the trainer, $nlate refused by the controller)"
[ "$failures" -eq 0 ]
