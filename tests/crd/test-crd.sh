#!/usr/bin/env bash
# Run under tests/cluster/with-apiserver: the TrainingJob CRD on a real kube-apiserver.
#  1. crds/trainingjob.yaml applies and becomes Established; `kubectl get kubefit` knows it.
#  2. examples/*.yaml and tests/crd/good/*.yaml apply; read back, the defaults are filled in.
#  3. every tests/crd/bad/*.yaml is rejected by `kubectl apply` with the message on its
#     "# expect:" line, and nothing is stored.
#  4. the status subresource keeps what the controller writes; `kubectl get tj` shows the
#     Phase/Language/Accuracy/Age columns (Run with -o wide).
#  5. the chart's RBAC, applied to the server, allows the controller's calls and nothing more.
set -euo pipefail
: "${KUBECONFIG:?run under tests/cluster/with-apiserver}"
root=${KUBEFIT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
here=$root/tests/crd
kc=(kubectl --kubeconfig "$KUBECONFIG" --request-timeout 30s)
failures=0
checks=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { checks=$((checks + 1)); }
py=python3

# -- 1. the CRD ------------------------------------------------------------------------------
"${kc[@]}" apply -f "$root/crds/trainingjob.yaml" >/dev/null
"$root/tests/cluster/crd-established" trainingjobs.kubefit.dev 60
ok
# Discovery can lag the Established condition by a moment.
for _ in $(seq 1 50); do "${kc[@]}" get tj -o name >/dev/null 2>&1 && break; sleep 0.2; done
"${kc[@]}" get trainingjobs.kubefit.dev -o name >/dev/null && ok || fail "kubectl get trainingjobs failed"

# -- 2. examples and good manifests apply; defaults are filled -----------------------------------
for f in "$root"/examples/*.yaml "$here"/good/*.yaml; do
  if out=$("${kc[@]}" apply -f "$f" 2>&1); then ok; else fail "$(basename "$f") was rejected: $out"; fi
done

# check_json NAME PYTHON-EXPR...: each expression, with `s` = the stored object's spec, is true.
check_json() {
  local name=$1; shift
  local json
  json=$("${kc[@]}" get tj "$name" -o json)
  for expr in "$@"; do
    if $py -c 'import json,sys; o=json.load(sys.stdin); s=o["spec"]; sys.exit(0 if eval(sys.argv[1]) else 1)' \
         "$expr" <<<"$json"; then
      ok
    else
      fail "$name: expected $expr; spec is $($py -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["spec"], sort_keys=True))' <<<"$json")"
    fi
  done
}
# The local example sets language, epochs, batchSize, learningRate, storage.bucket and gpus: 0.
check_json en-local \
  's["epochs"] == 2 and s["batchSize"] == 32' \
  's["learningRate"] == 0.01 and s["lmLearningRate"] == 0.002' \
  's["stages"] == ["finetune-lm", "classifier"]' \
  's["model"] == {"embSize": 400, "hiddenSize": 1152, "layers": 3}' \
  's["labels"] == {"mode": "auto", "threshold": 0.5}' \
  's["storage"] == {"bucket": "file:///data/bucket", "modelDir": "models"}' \
  's["resources"] == {"gpus": 0, "spot": False}' \
  's["backoffLimit"] == 3 and s["suspend"] is False and s["runsHistoryLimit"] == 10' \
  's["concurrencyPolicy"] == "Forbid"' \
  '"image" not in s and "schedule" not in s and "activeDeadlineSeconds" not in s'
check_json fr-classifier \
  's["epochs"] == 10 and s["batchSize"] == 64 and s["learningRate"] == 0.02' \
  's["resources"] == {"gpus": 1, "acceleratorType": "nvidia-h100-80gb", "spot": True, "cpu": "8", "memory": "32Gi"}'
check_json good-lr-forms 's["learningRate"] == 3 and s["lmLearningRate"] == 0.0005'
check_json good-serving \
  's["serving"] == {"enabled": True, "replicas": 2, "maxBatchSize": 16, "maxBatchDelayMs": 2, "resources": {"cpu": "500m", "gpus": 0}, "promote": {"metric": "macroF1", "minImprovement": 0.005, "minValue": 0}}'
check_json good-cpu-only-env 's["env"] == [{"name": "OMP_NUM_THREADS", "value": "4"}]' \
  's["labels"] == {"mode": "single", "threshold": 0.5}'

# -- 3. bad manifests are rejected with their message ---------------------------------------------
nbad=0
for f in "$here"/bad/*.yaml; do
  nbad=$((nbad + 1))
  expect=$(sed -n 's/^# expect: //p' "$f")
  name=$(sed -n 's/^  name: //p' "$f")
  if [ -z "$expect" ] || [ -z "$name" ]; then fail "$(basename "$f"): no '# expect:' line or metadata.name"; continue; fi
  if out=$("${kc[@]}" apply -f "$f" 2>&1); then
    fail "$(basename "$f") was accepted, expected rejection with: $expect"
    "${kc[@]}" delete tj "$name" --ignore-not-found >/dev/null
  elif [[ "$out" != *"$expect"* ]]; then
    fail "$(basename "$f"): expected the message to contain: $expect; kubectl said: $out"
  else
    ok
  fi
  if "${kc[@]}" get tj "$name" >/dev/null 2>&1; then fail "$(basename "$f"): $name was stored"; fi
done
[ "$nbad" -ge 15 ] && ok || fail "only $nbad bad manifests (want at least 15)"

# -- 4. status subresource and printer columns ----------------------------------------------------
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
status=$(cat <<JSON
{"status":{"phase":"Succeeded","reason":"Succeeded","message":"done","observedGeneration":1,
 "currentRun":2,"runGeneration":1,"attempts":2,"failures":1,"podName":"fr-classifier-2-2",
 "startTime":"$now","completionTime":"$now","nextAttemptTime":"$now","retrain":"r1",
 "conditions":[{"type":"Succeeded","status":"True","reason":"Succeeded","message":"done",
                "lastTransitionTime":"$now","observedGeneration":1}],
 "progress":{"run":2,"stage":"classifier","epoch":10,"epochs":10,"step":70,"steps":70,
             "loss":0.12,"percent":100,"etaSeconds":0,"updateTime":"$now"},
 "metrics":{"accuracy":0.91,"microF1":0.83,"macroF1":0.61,"loss":0.12,"validLoss":0.15,
            "trainSeconds":812.4,"labels":[{"name":"role::program","f1":0.9,"precision":0.9,
            "recall":0.9,"support":120}]},
 "modelURI":"gs://my-models/models/fr/fr-classifier/2/model.safetensors",
 "metricsURI":"gs://my-models/models/fr/fr-classifier/2/metrics.json",
 "runs":[{"run":2,"generation":1,"phase":"Succeeded","accuracy":0.91,"extra":"kept"}],
 "serving":{"run":2,"modelURI":"gs://my-models/models/fr/fr-classifier/2/model.safetensors","metric":"microF1",
            "value":0.83,"promotionTime":"$now","lastEvaluatedRun":2,"url":"http://fr-classifier-serve.default.svc:8080",
            "replicas":1,"readyReplicas":1},
 "notInSchema":"pruned"}}
JSON
)
# (kubectl warns about status.notInSchema: the schema prunes it, checked below)
"${kc[@]}" patch tj fr-classifier --subresource=status --type=merge -p "$status" >/dev/null 2>&1
st=$("${kc[@]}" get tj fr-classifier -o json)
for expr in 'st["phase"] == "Succeeded" and st["currentRun"] == 2 and st["failures"] == 1' \
            'st["metrics"]["accuracy"] == 0.91 and st["metrics"]["labels"][0]["support"] == 120' \
            'st["progress"]["updateTime"] and st["nextAttemptTime"] and st["podName"] == "fr-classifier-2-2"' \
            'st["runs"][0]["extra"] == "kept"' \
            'st["serving"]["run"] == 2 and st["serving"]["readyReplicas"] == 1 and st["serving"]["url"].endswith(":8080")' \
            '"notInSchema" not in st'; do
  if $py -c 'import json,sys; st=json.load(sys.stdin)["status"]; sys.exit(0 if eval(sys.argv[1]) else 1)' "$expr" <<<"$st"; then
    ok
  else
    fail "status after patch: expected $expr; got $($py -c 'import json,sys; print(json.dumps(json.load(sys.stdin).get("status")))' <<<"$st")"
  fi
done
# A bad condition is refused (metav1.Condition shape).
if out=$("${kc[@]}" patch tj fr-classifier --subresource=status --type=merge \
          -p '{"status":{"conditions":[{"type":"Ready","status":"Maybe","reason":"x","message":"","lastTransitionTime":"'"$now"'"}]}}' 2>&1); then
  fail "a condition with status Maybe was accepted"
elif [[ "$out" != *'Unsupported value: "Maybe"'* ]]; then
  fail "bad condition status: unexpected message: $out"
else
  ok
fi
# Status is not writable through the main resource.
"${kc[@]}" patch tj fr-classifier --type=merge -p '{"status":{"phase":"Failed"},"spec":{"epochs":11}}' >/dev/null
[ "$("${kc[@]}" get tj fr-classifier -o 'jsonpath={.status.phase}/{.spec.epochs}')" = "Succeeded/11" ] && ok \
  || fail "a spec patch changed status, or the spec change was lost"

table=$("${kc[@]}" get tj fr-classifier)
header=$(head -1 <<<"$table" | tr -s ' ')
row=$(sed -n 2p <<<"$table" | tr -s ' ')
[ "$header" = "NAME PHASE LANGUAGE ACCURACY MICRO-F1 AGE" ] && ok || fail "kubectl get tj header: '$header'"
[[ "$row" == "fr-classifier Succeeded fr 0.91 0.83 "* ]] && ok || fail "kubectl get tj row: '$row'"
wide=$("${kc[@]}" get tj fr-classifier -o wide | head -1 | tr -s ' ')
[ "$wide" = "NAME PHASE LANGUAGE ACCURACY MICRO-F1 RUN AGE" ] && ok || fail "kubectl get tj -o wide header: '$wide'"
"${kc[@]}" get kubefit -o name 2>&1 | grep -qx 'trainingjob.kubefit.dev/fr-classifier' && ok \
  || fail "kubectl get kubefit (category) does not list the TrainingJob"

# -- 5. the chart's RBAC on the real server: what the controller may and may not do ------------------
helm=${KUBEFIT_TOOLS:-$HOME/.cache/kubefit}/bin/helm
if [ -x "$helm" ]; then
  "${kc[@]}" create namespace kubefit-system >/dev/null
  "$helm" template kf "$root/charts/kubefit" --kube-version 1.37.2 --namespace kubefit-system \
    | "${kc[@]}" apply -f - -l app.kubernetes.io/name=kubefit --selector 'app.kubernetes.io/component=controller' >/dev/null
  sa=system:serviceaccount:kubefit-system:kf-kubefit
  can() { "${kc[@]}" auth can-i --as "$sa" "$@" 2>/dev/null || true; }
  for q in "watch trainingjobs.kubefit.dev -A" "patch trainingjobs.kubefit.dev --subresource=status -n default" \
           "delete trainingjobs.kubefit.dev -n default" "create pods -n default" "delete pods -n default" \
           "create events -n default" "update leases.coordination.k8s.io/kubefit-controller -n kubefit-system" \
           "create leases.coordination.k8s.io -n kubefit-system" \
           "update trainingjobs.kubefit.dev --subresource=finalizers -n default" \
           "create deployments.apps -n default" "update deployments.apps -n default" "watch deployments.apps -A" \
           "delete deployments.apps -n default" "create services -n default" "patch services -n default" \
           "watch services -A" "delete services -n default"; do
    [ "$(can $q)" = yes ] && ok || fail "the controller's service account may not: $q"
  done
  for q in "update trainingjobs.kubefit.dev -n default" "get secrets -n default" "create replicasets.apps -n default" \
           "patch deployments.apps -n default" "update services -n default" "create statefulsets.apps -n default" \
           "update pods -n default" "update leases.coordination.k8s.io/other -n kubefit-system" \
           "create leases.coordination.k8s.io -n default" "create pods --subresource=exec -n default"; do
    [ "$(can $q)" = no ] && ok || fail "the controller's service account may: $q (least privilege)"
  done
else
  echo "note: $helm missing, chart RBAC not checked on the server" >&2
fi

for f in "$root"/examples/*.yaml "$here"/good/*.yaml; do "${kc[@]}" delete -f "$f" --wait=false >/dev/null; done
echo "$checks checks, $failures failed ($nbad bad manifests)"
[ "$failures" -eq 0 ]
