#!/usr/bin/env bash
# The trainer against fake-gcs-server, given only --lang, --bucket-name and --model-dir (plus small
# model sizes so it runs in seconds): inputs are read from gs://B/LANG/data/, every output lands in
# gs://B/MODELDIR/LANG/default/1/. Run under tests/cluster/with-gcs (GCS_BUCKETS=kubefit-test).
#   test-trainer-gcs.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: test-trainer-gcs.sh BUILD_DIR}
src=${KUBEFIT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
st=$build/common/storage/kubefit-storage
trainer=$build/trainer/kubefit-trainer
data=$src/data/debtags-small/en/data
[ -n "${STORAGE_EMULATOR_HOST:-}" ] || { echo "run under tests/cluster/with-gcs" >&2; exit 1; }
[ -f "$data/train.csv" ] || { echo "missing $data/train.csv: run hack/make-datasets" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A few hundred rows keep it quick; they go in through the storage CLI, in the per-language layout.
python3 - "$data" "$work" <<'PY'
import csv, sys
for name, n in (("train.csv", 600), ("valid.csv", 150)):
    with open(f"{sys.argv[1]}/{name}", newline="") as f, open(f"{sys.argv[2]}/{name}", "w", newline="") as g:
        r, w = csv.reader(f), csv.writer(g)
        for i, row in enumerate(r):
            if i > n:
                break
            w.writerow(row)
PY
"$st" cp "$work/train.csv" gs://kubefit-test/en/data/train.csv
"$st" cp "$work/valid.csv" gs://kubefit-test/en/data/valid.csv
# The same rows as JSON lines under de/: the default layout finds train.jsonl / valid.jsonl.
python3 - "$work" <<'PY'
import csv, json, sys
for name in ("train", "valid"):
    with open(f"{sys.argv[1]}/{name}.csv", newline="") as f, open(f"{sys.argv[1]}/{name}.jsonl", "w") as g:
        for row in csv.DictReader(f):
            g.write(json.dumps({"text": row["text"], "labels": row["labels"].split(";")}) + "\n")
PY
"$st" cp "$work/train.jsonl" gs://kubefit-test/de/data/train.jsonl
"$st" cp "$work/valid.jsonl" gs://kubefit-test/de/data/valid.jsonl
rm "$work/train.csv" "$work/valid.csv" "$work/train.jsonl" "$work/valid.jsonl"

cd "$work" # nothing may depend on local files
"$trainer" train --lang en --bucket-name kubefit-test --model-dir models \
  --epochs 1 --lm-epochs 1 --emb-size 16 --hidden-size 32 --layers 2 --max-vocab 2000 --batch-size 16 --bptt 32 \
  --seed 1 --threads 2 --result-file "$work/result.json" >"$work/progress.jsonl"

"$st" ls gs://kubefit-test/models/en/default/1/ | tee "$work/ls.txt"
fail=0
for f in model.safetensors vocab.txt config.json metrics.json history.csv curves.svg; do
  if ! grep -q " gs://kubefit-test/models/en/default/1/$f\$" "$work/ls.txt"; then
    echo "FAIL: gs://kubefit-test/models/en/default/1/$f was not written" >&2
    fail=1
  fi
done
# metrics.json in the bucket is JSON with the overall metrics; the result points at the bucket.
"$st" cat gs://kubefit-test/models/en/default/1/metrics.json >"$work/metrics.json"
python3 - "$work/metrics.json" "$work/result.json" <<'PY' || fail=1
import json, sys
m = json.load(open(sys.argv[1]))
r = json.load(open(sys.argv[2]))
assert isinstance(m, dict) and m, "metrics.json is empty"
assert r.get("phase") == "Succeeded", r
assert r.get("modelURI") == "gs://kubefit-test/models/en/default/1/model.safetensors", r.get("modelURI")
assert r.get("metricsURI") == "gs://kubefit-test/models/en/default/1/metrics.json", r.get("metricsURI")
print("trainer outputs in the bucket: ok")
PY
# JSON lines from the bucket (the format follows the object's name), and a named input that is
# not there: exit 2 naming it.
"$trainer" train --lang de --bucket-name kubefit-test --model-dir models \
  --epochs 1 --lm-epochs 1 --emb-size 16 --hidden-size 32 --layers 2 --max-vocab 2000 --batch-size 16 --bptt 32 \
  --seed 1 --threads 2 --result-file "$work/result-de.json" >/dev/null 2>"$work/de.err" ||
  { echo "FAIL: train from train.jsonl in the bucket: $(tail -1 "$work/de.err")" >&2; fail=1; }
"$st" cat gs://kubefit-test/models/de/default/1/config.json >"$work/config-de.json" || fail=1
python3 - "$work/config-de.json" <<'PY' || fail=1
import json, sys
c = json.load(open(sys.argv[1]))
assert c["inputs"]["train"] == "gs://kubefit-test/de/data/train.jsonl", c["inputs"]
assert c["inputs"]["valid"] == "gs://kubefit-test/de/data/valid.jsonl", c["inputs"]
print("JSON lines from the bucket: ok")
PY
set +e
"$trainer" train --lang de --bucket-name kubefit-test --model-dir models --valid-uri gs://kubefit-test/de/none.csv \
  --result-file "$work/result-miss.json" >/dev/null 2>&1
rc=$?
set -e
if [ $rc != 2 ] || ! grep -q 'gs://kubefit-test/de/none.csv: not found (a required input)' "$work/result-miss.json"; then
  echo "FAIL: a missing --valid-uri: exit $rc, $(cat "$work/result-miss.json")" >&2
  fail=1
fi
exit $fail
