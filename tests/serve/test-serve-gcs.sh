#!/usr/bin/env bash
# kubefit-serve loads a run's model from gs:// through the storage layer (fake-gcs-server): the
# folder URI and the model.safetensors URI both serve; the answers equal `kubefit-trainer predict`
# reading the same bucket; the downloads are gone once the model is in memory; a missing object
# ends the server with exit 1 naming it. Run under tests/cluster/with-gcs (GCS_BUCKETS=kubefit-test).
#   test-serve-gcs.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: test-serve-gcs.sh BUILD_DIR}
st=$build/common/storage/kubefit-storage
trainer=$build/trainer/kubefit-trainer
serve=$build/serve/kubefit-serve
[ -n "${STORAGE_EMULATOR_HOST:-}" ] || { echo "run under tests/cluster/with-gcs" >&2; exit 1; }
work=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
fail=0
check() { if eval "$1"; then echo "ok: $2"; else echo "FAIL: $2" >&2; fail=1; fi; }

# A generated keyword dataset (multi-label), in the bucket's layout.
python3 - "$work" <<'PY'
import random, sys
rnd = random.Random(3)
filler = "the a of and to in is it that for on with as at be this from or by not".split()
keys = {"fruit": ["apple", "pear"], "color": ["red", "blue"], "animal": ["cat", "dog"]}
for split, n in (("train", 240), ("valid", 60)):
    with open(f"{sys.argv[1]}/{split}.csv", "w") as f:
        f.write("text,labels\n")
        for _ in range(n):
            t = [rnd.choice(filler) for _ in range(rnd.randint(5, 25))]
            labels = [k for k in keys if rnd.random() < 0.4] or ["none"]
            for k in labels:
                if k in keys:
                    t.insert(rnd.randrange(len(t)), rnd.choice(keys[k]))
            f.write(" ".join(t) + "," + ";".join(labels) + "\n")
PY
"$st" cp "$work/train.csv" gs://kubefit-test/en/data/train.csv
"$st" cp "$work/valid.csv" gs://kubefit-test/en/data/valid.csv
"$trainer" train --lang en --bucket-name kubefit-test --model-dir models --job gcsjob --run 4 --stages classifier \
  --epochs 2 --emb-size 16 --hidden-size 32 --layers 2 --batch-size 16 --bptt 16 --seed 1 --threads 2 \
  --result-file "$work/result.json" >/dev/null 2>"$work/train.log"
uri=gs://kubefit-test/models/en/gcsjob/4/

printf 'a red apple\nthe dog and the cat\nblue pear with a cat\n' >"$work/texts.txt"
STORAGE_EMULATOR_HOST=$STORAGE_EMULATOR_HOST "$trainer" predict --lang en --bucket-name kubefit-test --model-dir models \
  --job gcsjob --run 4 --threads 1 <"$work/texts.txt" >"$work/predict.jsonl" 2>/dev/null

serve_and_compare() { # MODEL_URI WHAT
  mkdir -p "$work/dl"
  rm -f "$work/port"
  "$serve" --model-uri "$1" --listen 127.0.0.1:0 --port-file "$work/port" --work-dir "$work/dl" --drain-delay 0 \
    2>"$work/serve.log" &
  pid=$!
  python3 - "$work" <<'PY' && echo "ok: $2 answers = kubefit-trainer predict" || { echo "FAIL: $2 answers" >&2; tail -5 "$work/serve.log" >&2; fail=1; }
import json, os, sys, time, urllib.request
w = sys.argv[1]
for _ in range(300):
    try:
        port = int(open(f"{w}/port").read())
        if urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2).status == 200:
            break
    except (OSError, ValueError):
        time.sleep(0.1)
texts = open(f"{w}/texts.txt").read().splitlines()
body = json.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(texts)], "data": texts}]}).encode()
doc = json.load(urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/v2/models/gcsjob/infer",
                                                              data=body, method="POST"), timeout=30))
meta = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/models/gcsjob", timeout=5))
ref = [json.loads(l) for l in open(f"{w}/predict.jsonl")]
out = {o["name"]: o for o in doc["outputs"]}
L = out["probabilities"]["shape"][1]
ok = doc["model_version"] == "4" and len(ref) == len(texts) and all(
    abs(out["probabilities"]["data"][i * L + k] - ref[i]["probabilities"][l]) <= 5.1e-5
    for i in range(len(texts)) for k, l in enumerate(meta["labels"]))
sys.exit(0 if ok else 1)
PY
  check '[ -z "$(ls -A "$work/dl")" ]' "$2: the downloads are removed once the model is loaded"
  kill -TERM "$pid"
  wait "$pid" && rc=0 || rc=$?
  pid=""
  check '[ "$rc" = 0 ]' "$2: SIGTERM exit 0"
}
serve_and_compare "$uri" "gs:// run folder"
serve_and_compare "${uri}model.safetensors" "gs:// model.safetensors"

"$serve" --model-uri gs://kubefit-test/models/en/gcsjob/9/ --listen 127.0.0.1:0 --work-dir "$work/dl" \
  2>"$work/missing.log" && rc=0 || rc=$?
check '[ "$rc" = 1 ] && grep -q "gs://kubefit-test/models/en/gcsjob/9/model.safetensors" "$work/missing.log"' \
  "a missing gs:// model: exit 1 naming the object"
exit $fail
