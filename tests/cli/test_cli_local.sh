#!/usr/bin/env bash
# test_cli_local: the kubefit command with no cluster - run -f end to end (the real trainer on
# tiny keyword data, file:// storage), its failures (bad manifest, bad flags, bad input, retries,
# deadline) with their exact messages and exit codes, predict -f, submit --dry-run, the kubectl
# plugin name, completion, and the cluster commands without a kubeconfig.
set -uo pipefail
src=${KUBEFIT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${KUBEFIT_BINARY_DIR:-$src/build}
K=$bin/cli/kubefit
T=$bin/trainer/kubefit-trainer
for f in "$K" "$T"; do [ -x "$f" ] || { echo "FAIL: $f not built"; exit 1; }; done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export TMPDIR=$tmp   # kubefit run's default work folders go here too
fails=0 checks=0
ok() { checks=$((checks+1)); if ! eval "$1"; then echo "FAIL: $2"; fails=$((fails+1)); fi; }

# expect CODE DESC -- ARGS...: runs kubefit (stdout $tmp/out, stderr $tmp/err), checks the exit code.
expect() {
  local code=$1 desc=$2; shift 3
  "$K" "$@" >"$tmp/out" 2>"$tmp/err" <"${STDIN:-/dev/null}"; local rc=$?
  checks=$((checks+1))
  if [ $rc != "$code" ]; then
    echo "FAIL: $desc: exit $rc, expected $code"; tail -5 "$tmp/err"; tail -5 "$tmp/out"; fails=$((fails+1))
  fi
}
# err_is TEXT DESC: stderr is exactly TEXT (one line)
err_is() { ok "[ \"\$(cat $tmp/err)\" = \"\$1\" ]" "$2: stderr was: $(head -c 400 "$tmp/err")"; }
# an exact stderr, with the message as an argument (quotes in it stay as they are)
want_err() {
  checks=$((checks+1))
  if [ "$(cat "$tmp/err")" != "$1" ]; then
    echo "FAIL: $2"; echo "  expected: $1"; echo "  actual:   $(cat "$tmp/err")"; fails=$((fails+1))
  fi
}

mkdir -p "$tmp/b/en/data" "$tmp/home"
python3 "$src/tests/e2e-trainer/keyword_data.py" "$tmp/b/en/data" 5 160 48 || { echo "FAIL: no data"; exit 1; }
job() { # job FILE NAME [extra spec lines...]: a tiny CPU TrainingJob on $tmp/b
  local file=$1 name=$2; shift 2
  {
    printf 'apiVersion: kubefit.dev/v1alpha1\nkind: TrainingJob\nmetadata:\n  name: %s\nspec:\n' "$name"
    printf '  language: en\n  epochs: 2\n  batchSize: 16\n  model: {embSize: 16, hiddenSize: 24, layers: 2}\n'
    printf '  storage:\n    bucket: file://%s/b\n  resources:\n    gpus: 0\n' "$tmp"
    printf '  args: ["--lm-epochs", "1", "--bptt", "16", "--max-vocab", "500", "--threads", "2"]\n'
    for l in "$@"; do printf '%s\n' "$l"; done
  } >"$file"
}
job "$tmp/kw.yaml" kw
export HOME=$tmp/home KUBEFIT_TRAINER=$T
unset KUBECONFIG KUBERNETES_SERVICE_HOST

# ---- run -f: success, the summary, the outputs, the status ----
expect 0 "run -f" -- run -f "$tmp/kw.yaml" --work-dir "$tmp/w"
ok "grep -q '^trainingjob kw: Succeeded, run 1, 1 attempt' $tmp/out" "summary names the outcome ($(head -1 $tmp/out))"
ok "grep -q '^  micro-F1 [01]\.[0-9]*   macro-F1 [01]\.[0-9]*   (multi-label, 3 labels, 160 train / 48 validation texts)' $tmp/out" \
   "multi-label summary leads with micro-F1 and macro-F1"
ok "grep -q '^  best labels (F1, validation texts):  ' $tmp/out" "best labels"
ok "grep -q \"^  model:    file://$tmp/b/models/en/kw/1/model.safetensors\$\" $tmp/out" "where the model is"
ok "grep -q \"^  metrics:  file://$tmp/b/models/en/kw/1/metrics.json\$\" $tmp/out" "where the metrics are"
for f in model.safetensors vocab.txt config.json metrics.json history.csv; do
  ok "[ -s $tmp/b/models/en/kw/1/$f ]" "run 1 wrote $f"
done
ok "grep -q \"^kubefit: kw: run 1, attempt 1 (trainer log: $tmp/w/kw-1-1.log)\$\" $tmp/err" "the attempt and its log are named"
ok "grep -q '^progress: 100%  classifier epoch 2/2  loss ' $tmp/err" "progress without a terminal: a line per epoch"
ok "[ -s $tmp/w/kw-1-1.result ] && grep -q '\"phase\":\"Succeeded\"' $tmp/w/kw-1-1.result" "the result file is the termination message"
# a second run is run 2 (a new output folder), and -o yaml prints the job with its status
expect 0 "run -f again, -o yaml" -- run -f "$tmp/kw.yaml" -q -o yaml
ok "grep -q '^  currentRun: 2$' $tmp/out && grep -q '^  phase: Succeeded$' $tmp/out" "second run is run 2 ($(grep -m1 currentRun $tmp/out))"
ok "grep -q '^  modelURI: file://.*/models/en/kw/2/model.safetensors$' $tmp/out" "status.modelURI of run 2"
ok "grep -q '^    embSize: 16$' $tmp/out && grep -q '^  backoffLimit: 3$' $tmp/out" "the CRD's defaults are in the spec"
ok "[ ! -s $tmp/err ]" "-q prints no progress"
# --run N reuses a run's folder; --dry-run shows the trainer's command line and layout
expect 0 "--dry-run" -- run -f "$tmp/kw.yaml" --dry-run --run 7
ok "grep -q \"^trainer: $T train --lang en --bucket-name file://$tmp/b --model-dir models --job kw --run 7 --stages finetune-lm,classifier --label-mode auto --threshold 0.5 --epochs 2 --batch-size 16 --lr 0.02 --lm-lr 0.002 --emb-size 16 --hidden-size 24 --layers 2 --device cpu --result-file .*/dry-run.result --lm-epochs 1 --bptt 16 --max-vocab 500 --threads 2 --dry-run\$\" $tmp/out" \
   "dry run: the controller's argv ($(head -1 $tmp/out))"
ok "grep -q '\"outputs\":{\"dir\":\"file://$tmp/b/models/en/kw/7/\"' $tmp/out" "dry run: the layout"
ok "[ ! -e $tmp/b/models/en/kw/7 ]" "dry run trains nothing"

# ---- predict -f: the latest local run's model ----
expect 0 "predict -f" -- predict -f "$tmp/kw.yaml" "the red apple is on the table" "a cat"
ok "[ \$(grep -c '^  ->' $tmp/out) = 2 ] && grep -q '^the red apple is on the table$' $tmp/out" "predict: a line per text ($(cat $tmp/out))"
expect 0 "predict -f -o json" -- predict -f "$tmp/kw.yaml" -o json --run 1 "a cat"
ok "grep -q '^{\"text\":\"a cat\",\"labels\":\\[.*\\],\"probabilities\":{' $tmp/out" "predict -o json: the trainer's lines"
expect 2 "predict, no such run" -- predict -f "$tmp/kw.yaml" --run 9 "x"
ok "grep -q 'predict: the trainer failed (exit 2) reading run 9 of kw from file://' $tmp/err" "predict names the run it could not read"

# ---- run -f: bad manifests (exit 2, nothing runs) ----
bad_job() { # bad_job MESSAGE SED_EXPR: the tiny job edited by SED_EXPR is refused with MESSAGE
  sed "$2" "$tmp/kw.yaml" >"$tmp/bad.yaml"
  expect 2 "bad manifest: $2" -- run -f "$tmp/bad.yaml"
  want_err "kubefit: $tmp/bad.yaml: $1" "bad manifest $2"
}
bad_job 'spec.epoch: unknown field (did you mean "epochs"?)' 's/epochs: 2/epoch: 2/'
bad_job 'spec.epochs: must be at least 1, got 0' 's/epochs: 2/epochs: 0/'
bad_job 'spec.epochs: must be an integer, got a string ("two")' 's/epochs: 2/epochs: two/'
bad_job 'spec.language: must be a string, got a boolean (YAML reads yes, no, on, off, y and n as booleans: quote the value)' 's/language: en/language: no/'
bad_job 'spec.language: language "EN" must be a 2-3 letter lowercase code with an optional uppercase region (en, fr, pt-BR)' 's/language: en/language: EN/'
bad_job 'spec.args[8]: --lr is set by the controller from spec.learningRate; set that field instead' 's/"--threads", "2"/"--threads", "2", "--lr", "1"/'
bad_job 'spec.args: unknown option '"'"'--bogus'"'"' (see --help)' 's/"--threads", "2"/"--bogus"/'
bad_job 'spec.resources.gpus: 2 GPUs requested; the trainer uses one GPU (0 or 1)' 's/gpus: 0/gpus: 2/'
bad_job 'spec.storage.bucket: required field is missing' "s|bucket: file://$tmp/b|modelDir: m|"
bad_job 'metadata.name "Kw" must be lowercase letters, digits, '"'"'-'"'"' and '"'"'.'"'"', starting and ending with a letter or digit' 's/name: kw/name: Kw/'
bad_job 'spec.suspend is true: a suspended job starts no run (set it to false)' 's/  epochs: 2/  epochs: 2\n  suspend: true/'
printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n' >"$tmp/pod.yaml"
expect 2 "not a TrainingJob" -- run -f "$tmp/pod.yaml"
want_err "kubefit: $tmp/pod.yaml: document 1 is a Pod, not a TrainingJob (kubefit run takes TrainingJob manifests)" "not a TrainingJob"
printf 'spec: [1, 2\n' >"$tmp/broken.yaml"
expect 2 "broken YAML" -- run -f "$tmp/broken.yaml"
want_err "kubefit: $tmp/broken.yaml:2:1: did not find expected ',' or ']' while parsing a flow sequence" "broken YAML names line and column"
{ cat "$tmp/kw.yaml"; echo "---"; sed 's/name: kw/name: other/' "$tmp/kw.yaml"; } >"$tmp/two.yaml"
expect 2 "two jobs, no name" -- run -f "$tmp/two.yaml"
want_err "kubefit: $tmp/two.yaml holds 2 TrainingJobs (kw, other): name the one to run" "two jobs need a name"
expect 1 "unknown job in the file" -- run -f "$tmp/two.yaml" nope
want_err "kubefit: $tmp/two.yaml: no TrainingJob named \"nope\" (it has: kw, other)" "unknown job is named"
expect 0 "pick one of two (dry run)" -- run -f "$tmp/two.yaml" other --dry-run
expect 1 "missing file" -- run -f "$tmp/nothere.yaml"
want_err "kubefit: $tmp/nothere.yaml: no such file" "missing manifest"
STDIN=$tmp/kw.yaml expect 0 "manifest on stdin" -- run -f - --dry-run

# ---- run: bad flags (exit 2) ----
expect 2 "no -f" -- run
want_err "kubefit run: -f FILE is required (a TrainingJob manifest, e.g. examples/trainingjob-demo.yaml)" "-f is required"
expect 2 "bad --device" -- run -f "$tmp/kw.yaml" --device gpu
want_err 'kubefit run: --device must be auto, cpu or cuda, got "gpu"' "--device values"
expect 2 "unknown flag" -- run -f "$tmp/kw.yaml" --epoch 3
want_err 'kubefit run: unknown flag --epoch (did you mean --epochs?)' "unknown flag with a suggestion"
expect 2 "bad --epochs" -- run -f "$tmp/kw.yaml" --epochs 0
want_err 'kubefit: --epochs: expected an integer in [1, 1000], got "0"' "--epochs range"
expect 2 "bad -o" -- run -f "$tmp/kw.yaml" -o table
want_err 'kubefit: --output must be one of json|yaml, got "table"' "--output values"
expect 1 "no trainer" -- run -f "$tmp/kw.yaml" --trainer "$tmp/none"
want_err "kubefit: trainer $tmp/none: not an executable file (--trainer)" "a missing trainer is named"

# ---- run: the trainer's verdicts through reconcile ----
# bad input (exit 2 from the trainer): Failed/BadInput at once, no retry
sed "s|bucket: file://$tmp/b|bucket: file://$tmp/empty|" "$tmp/kw.yaml" >"$tmp/nodata.yaml"
expect 2 "missing data" -- run -f "$tmp/nodata.yaml" --work-dir "$tmp/w2"
ok "grep -q '^trainingjob kw: Failed (BadInput), run 1, 1 attempt' $tmp/out" "BadInput: one attempt ($(head -1 $tmp/out))"
ok "grep -q \"^  attempt 1: exit code 2: file://$tmp/empty/en/data/train.csv: not found (a required input)\$\" $tmp/out" \
   "BadInput: the trainer's message ($(tail -1 $tmp/out))"
# gpus: 1 renders --device cuda, as on a cluster; --device cpu replaces it
sed 's/gpus: 0/gpus: 1/' "$tmp/kw.yaml" >"$tmp/gpu.yaml"
expect 0 "gpus 1 with --device cpu" -- run -f "$tmp/gpu.yaml" --device cpu --dry-run
ok "grep -q -- '--device cpu --result-file' $tmp/out" "--device replaces the rendered device"
# a fake trainer: exit 3 (transient) twice, then the real one; retries with backoff
cat >"$tmp/flaky" <<EOF
#!/bin/bash
n=\$(cat "$tmp/flaky.count" 2>/dev/null || echo 0); echo \$((n+1)) >"$tmp/flaky.count"
if [ "\$n" -lt 2 ]; then echo "storage unavailable (try \$((n+1)))" >&2; exit 3; fi
exec "$T" "\$@"
EOF
chmod +x "$tmp/flaky"
expect 0 "transient failures are retried" -- run -f "$tmp/kw.yaml" --trainer "$tmp/flaky" --retry-backoff 1 --work-dir "$tmp/w3"
ok "grep -q ', 3 attempts' $tmp/out" "three attempts ($(head -1 $tmp/out))"
ok "[ \$(grep -c '^kubefit: AttemptFailed: attempt [12]: exit code 3: storage unavailable (try [12])' $tmp/err) = 2 ]" \
   "each failed attempt is reported with the trainer's last words ($(grep AttemptFailed $tmp/err | head -2))"
ok "grep -q '^kubefit: retrying in [0-9]\.[0-9]s$' $tmp/err" "the retry delay is said ($(grep retrying $tmp/err))"
ok "[ -s $tmp/w3/kw-3-3.log ] && [ -s $tmp/w3/kw-3-1.log ]" "one log per attempt (run 3: runs 1 and 2 exist)"
# ... until backoffLimit: transient all the way -> exit 3
printf '#!/bin/bash\necho "GCS: 503" >&2\nexit 3\n' >"$tmp/down"; chmod +x "$tmp/down"
job "$tmp/b1.yaml" kw '  backoffLimit: 1'
expect 3 "backoffLimit exceeded, transient" -- run -f "$tmp/b1.yaml" --trainer "$tmp/down" --retry-backoff 0.1
ok "grep -q '^trainingjob kw: Failed (BackoffLimitExceeded), run [0-9]*, 2 attempts' $tmp/out" "BackoffLimitExceeded ($(head -1 $tmp/out))"
ok "grep -q '^  2 failed attempts (backoffLimit 1); last attempt 2: exit code 3: GCS: 503' $tmp/out" "the last failure is kept ($(tail -1 $tmp/out))"
# a crash (exit 1) after the retries: exit 1
printf '#!/bin/bash\nexit 1\n' >"$tmp/crash"; chmod +x "$tmp/crash"
job "$tmp/b0.yaml" kw '  backoffLimit: 0'
expect 1 "crash" -- run -f "$tmp/b0.yaml" --trainer "$tmp/crash"
# activeDeadlineSeconds: the attempt is stopped (SIGTERM), the run fails with DeadlineExceeded
printf '#!/bin/bash\ntrap "exit 3" TERM\nwhile :; do sleep 0.1; done\n' >"$tmp/slow"; chmod +x "$tmp/slow"
job "$tmp/dl.yaml" kw '  activeDeadlineSeconds: 1' '  backoffLimit: 0'
expect 1 "deadline" -- run -f "$tmp/dl.yaml" --trainer "$tmp/slow"
ok "grep -q '^trainingjob kw: Failed (DeadlineExceeded)' $tmp/out" "DeadlineExceeded ($(head -1 $tmp/out))"
# the first thing a newcomer types: the example of the demo, checked without training
expect 0 "the demo example" -- run -f "$src/examples/trainingjob-demo.yaml" --bucket-name "file://$tmp/b" --dry-run

# ---- submit --dry-run: the old flags as a manifest, no cluster needed ----
expect 0 "submit --dry-run" -- submit fr-classifier --lang fr --epochs 10 --bucket-name gs://my-models --model-dir models \
  --gpus 1 --accelerator nvidia-l4 --spot --dry-run -- --max-vocab 30000
cat >"$tmp/want.yaml" <<'EOF'
apiVersion: kubefit.dev/v1alpha1
kind: TrainingJob
metadata:
  name: fr-classifier
spec:
  language: fr
  storage:
    bucket: gs://my-models
    modelDir: models
  epochs: 10
  resources:
    gpus: 1
    acceleratorType: nvidia-l4
    spot: true
  args:
  - --max-vocab
  - '30000'
EOF
ok "diff $tmp/want.yaml $tmp/out" "submit --dry-run YAML"
# ... which kubefit run reads back as the same job
"$K" submit fr --lang en --epochs 2 --batch-size 16 --bucket-name "file://$tmp/b" --gpus 0 --emb-size 16 --hidden-size 24 \
  --layers 2 --dry-run -- --lm-epochs 1 --bptt 16 --max-vocab 500 >"$tmp/fr.yaml"
expect 0 "submit --dry-run | run -f" -- run -f "$tmp/fr.yaml" -q
ok "grep -q '^trainingjob fr: Succeeded' $tmp/out" "a submit manifest runs locally"
expect 2 "submit: bad value" -- submit x --lang fr --bucket-name gs://abc --batch-size 1 --dry-run
want_err 'kubefit: --batch-size: expected an integer in [2, 4096], got "1"' "submit names the flag"
expect 2 "submit: no name" -- submit --lang fr --bucket-name gs://abc --dry-run
want_err 'kubefit submit: NAME is required (the TrainingJob'"'"'s name)' "submit needs a name"

# ---- the cluster commands without a cluster: exit 2, what to do ----
nocluster='kubefit: no cluster configured: no --kubeconfig, no $KUBECONFIG, not inside a cluster and no ~/.kube/config (point KUBECONFIG at your cluster'"'"'s kubeconfig, e.g. after `gcloud container clusters get-credentials`; `kubefit run -f` trains without a cluster)'
for cmd in "get" "status kw" "logs kw" "wait kw" "retrain kw" "predict kw x" "submit kw --lang en --bucket-name gs://abc"; do
  # shellcheck disable=SC2086
  expect 2 "$cmd without a cluster" -- $cmd
  want_err "$nocluster" "$cmd without a cluster"
done
expect 2 "a kubeconfig that is not there" -- get --kubeconfig "$tmp/none.yaml"
want_err "kubefit: kubeconfig: $tmp/none.yaml: no such file" "a missing kubeconfig is named"
printf 'apiVersion: v1\nkind: Config\ncurrent-context: a\ncontexts: [{name: a, context: {cluster: c, user: u}}]\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]\nusers: [{name: u, user: {token: t}}]\n' >"$tmp/kc.yaml"
expect 2 "unknown context" -- get --kubeconfig "$tmp/kc.yaml" --context nope
want_err 'kubefit: '"$tmp"'/kc.yaml: kubeconfig: context "nope" not found' "an unknown context is named"
expect 3 "unreachable API server" -- get --kubeconfig "$tmp/kc.yaml"
ok "grep -q '^kubefit: cannot reach the API server at https://127.0.0.1:1 (is the cluster up, and is this the right context? kubectl cluster-info checks the same kubeconfig): ' $tmp/err" \
   "an unreachable server is explained ($(cat $tmp/err))"

# ---- the command itself ----
expect 2 "no command" --
expect 2 "unknown command" -- fly
want_err 'kubefit: unknown command "fly" (kubefit --help lists the commands)' "unknown command"
expect 0 "--help" -- --help
ok "grep -q '^  submit ' $tmp/out && grep -q '^  predict ' $tmp/out" "--help lists the commands"
"$bin/cli/kubectl-kubefit" status >/dev/null 2>"$tmp/err"; rc=$?
ok "[ $rc = 2 ] && grep -q '^kubectl kubefit status: NAME is required' $tmp/err" "as a kubectl plugin it calls itself kubectl kubefit ($(cat $tmp/err))"
expect 0 "completion" -- completion bash
ok "bash -n $tmp/out && grep -q 'complete -F _kubefit kubefit' $tmp/out" "bash completion parses"
expect 2 "completion fish" -- completion fish

echo "$checks checks, $fails failed"
[ $fails = 0 ]
