#!/usr/bin/env bash
# The trainer image as a user would try it before pushing ("run the image locally"): podman runs
# the CPU image hack/images built, host network, against fake-gcs-server on loopback (run inside
# tests/cluster/with-gcs), on the tiny e2e job; the bucket must then hold the model and metrics.json
# and the result (--result-file /dev/stdout) must name them.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
image=localhost/kubefit/kubefit-trainer:dev-cpu
bucket=kubefit-image-run
fail() { echo "FAIL: $*" >&2; exit 1; }
[ -n "${STORAGE_EMULATOR_HOST:-}" ] || fail "STORAGE_EMULATOR_HOST unset: run inside tests/cluster/with-gcs"
data=$root/data/debtags-small/en/data
[ -f "$data/train.csv" ] || "$root/hack/make-datasets" >&2
curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' -d "{\"name\":\"$bucket\"}" \
  "$STORAGE_EMULATOR_HOST/storage/v1/b?project=e2e" || fail "creating the bucket"
for f in train valid; do
  curl -sf -o /dev/null -X POST --data-binary "@$data/$f.csv" \
    "$STORAGE_EMULATOR_HOST/upload/storage/v1/b/$bucket/o?uploadType=media&name=en%2Fdata%2F$f.csv" ||
    fail "uploading $f.csv"
done
start=$SECONDS
out=$("$root/hack/images" run -e "STORAGE_EMULATOR_HOST=$STORAGE_EMULATOR_HOST" "$image" \
  train --lang en --bucket-name "gs://$bucket" --model-dir models --job image-run --run 1 --epochs 2 \
  --lm-epochs 1 --max-vocab 2000 --bptt 32 --seed 1 --threads 2 --emb-size 32 --hidden-size 64 --layers 2 \
  --batch-size 16 --result-file /dev/stdout 2>"${TMPDIR:-/tmp}/image-run.$$.log") ||
  { tail -n 20 "${TMPDIR:-/tmp}/image-run.$$.log" >&2; fail "the trainer container failed"; }
rm -f "${TMPDIR:-/tmp}/image-run.$$.log"
result=$(tail -n 1 <<<"$out")
echo "trained in the container in $((SECONDS - start))s; result: ${result:0:200}..."
python3 - "$result" "$STORAGE_EMULATOR_HOST" "$bucket" <<'PY'
import json, sys, urllib.request
result, host, bucket = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
prefix = "models/en/image-run/1/"
with urllib.request.urlopen(f"{host}/storage/v1/b/{bucket}/o?prefix={prefix}") as r:
    names = sorted(o["name"][len(prefix):] for o in json.load(r).get("items", []))
with urllib.request.urlopen(f"{host}/storage/v1/b/{bucket}/o/{(prefix + 'metrics.json').replace('/', '%2F')}?alt=media") as r:
    overall = json.load(r)["overall"]
bad = []
if result.get("phase") != "Succeeded":
    bad.append(f"result phase {result.get('phase')}")
for f in ("model.safetensors", "metrics.json", "config.json", "vocab.txt"):
    if f not in names:
        bad.append(f"{f} missing from gs://{bucket}/{prefix} ({names})")
if result.get("modelURI") != f"gs://{bucket}/{prefix}model.safetensors":
    bad.append(f"modelURI {result.get('modelURI')}")
m = result.get("metrics") or {}
shared = [k for k in m if k in overall]
if len(shared) < 3 or any(abs(m[k] - overall[k]) > 6e-4 * abs(overall[k]) + 1e-9 for k in shared):
    bad.append(f"result metrics {m} vs metrics.json {overall}")
for b in bad:
    print("FAIL:", b)
print("ok: the trainer image trained from gs:// and wrote", ", ".join(names)) if not bad else None
sys.exit(1 if bad else 0)
PY
