#!/usr/bin/env bash
# test_trainer_inputs: bad and unusual input through kubefit-trainer's command line, each with the
# exact exit code and message (issue 10's data classes): weights holding NaN/infinity, label names
# that are not UTF-8 or hold control characters, validation labels unseen in training, JSON lines
# on every input path and the default layout, the text,label header, NUL bytes, control
# characters in texts, folders and devices given as inputs, named inputs that do not exist, a
# model too large for the machine, evaluate = the run's metrics, and the --text-column /
# --label-column / --label-sep flags. Tiny data, file:// storage.
set -uo pipefail
src=${KUBEFIT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${KUBEFIT_BINARY_DIR:-$src/build}
T=${KUBEFIT_TRAINER:-$bin/trainer/kubefit-trainer}
[ -x "$T" ] || { echo "FAIL: $T not built"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fails=0 checks=0
ok() { checks=$((checks+1)); if ! eval "$1"; then echo "FAIL: $2"; fails=$((fails+1)); fi; }
small=(--emb-size 16 --hidden-size 24 --layers 2 --batch-size 8 --bptt 16 --max-vocab 500 --threads 2
       --lm-epochs 1 --epochs 1 --device cpu)

# tr CODE NAME BUCKET ARGS...: `train` into job NAME of BUCKET (a folder); exit status checked
# against CODE; stdout/stderr/result in $tmp/NAME.{out,err,json}.
tr() {
  local code=$1 name=$2 b=$3; shift 3
  "$T" train --lang en --bucket-name "file://$b" --model-dir m --job "$name" "${small[@]}" "$@" \
    --result-file "$tmp/$name.json" >"$tmp/$name.out" 2>"$tmp/$name.err"
  local rc=$?
  checks=$((checks+1))
  if [ $rc != "$code" ]; then
    echo "FAIL: $name: exit $rc, expected $code: $(tail -2 "$tmp/$name.err" | cut -c1-400)"; fails=$((fails+1))
  fi
}
# msg NAME TEXT: the failure result's message contains TEXT (exactly, as a substring).
msg() {
  python3 - "$tmp/$1.json" "$2" <<'PY' || { echo "FAIL: $1: message lacks: $2"; fails=$((fails+1)); }
import json, sys
r = json.load(open(sys.argv[1]))
if sys.argv[2] not in r.get("message", ""):
    print("  message:", r.get("message"))
    sys.exit(1)
PY
  checks=$((checks+1))
}
# js EXPR DESC: a Python expression over m (a job's metrics.json via M(name)) and friends.
js() {
  checks=$((checks+1))
  python3 - "$tmp" "$1" <<'PY' || { echo "FAIL: $2"; fails=$((fails+1)); }
import json, os, sys
tmp, expr = sys.argv[1], sys.argv[2]
def load(p): return json.load(open(p))
def M(b, job): return load(f"{tmp}/{b}/m/en/{job}/1/metrics.json")
def C(b, job): return load(f"{tmp}/{b}/m/en/{job}/1/config.json")
def R(name): return load(f"{tmp}/{name}.json")
def E(name): return json.loads(open(f"{tmp}/{name}.out").read())
def V(o): return {k: v for k, v in o.items() if k != "loss"}  # validation metrics (loss: training's)
if not eval(expr):
    sys.exit(1)
PY
}

# A labelled data set: DIR FORMAT(csv|jsonl) MODE(multi|single) [N_TRAIN N_VALID]
data() {
  python3 - "$@" <<'PY'
import csv, json, random, sys
out, fmt, mode = sys.argv[1], sys.argv[2], sys.argv[3]
n_train = int(sys.argv[4]) if len(sys.argv) > 4 else 80
n_valid = int(sys.argv[5]) if len(sys.argv) > 5 else 24
rnd = random.Random(5)
words = "the a of and to in is it for on with as at be this from or by not".split()
keys = {"fruit": "apple", "color": "red", "animal": "cat"}
for name, n in (("train", n_train), ("valid", n_valid)):
    rows = []
    for _ in range(n):
        t = [rnd.choice(words) for _ in range(rnd.randint(4, 12))]
        ls = ([k for k in keys if rnd.random() < 0.5] or ["fruit"]) if mode == "multi" else [rnd.choice(list(keys))]
        for k in ls:
            t.insert(rnd.randrange(len(t)), keys[k])
        rows.append((" ".join(t), ls))
    if fmt == "csv":
        with open(f"{out}/{name}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["text", "labels"])
            for t, ls in rows:
                w.writerow([t, ";".join(ls)])
    else:
        with open(f"{out}/{name}.jsonl", "w") as f:
            for t, ls in rows:
                f.write(json.dumps({"text": t, "labels": ls}) + "\n")
PY
}

# ---- weights holding NaN or infinity: refused at load, naming the URI and the tensor ----
mkdir -p "$tmp/w/en/data"
data "$tmp/w/en/data" csv multi
"$T" pretrain --lang en --bucket-name "file://$tmp/w" --model-dir m --job pre "${small[@]}" >/dev/null 2>"$tmp/pre.err" ||
  echo "FAIL: pretrain: $(tail -1 "$tmp/pre.err")"
mkdir -p "$tmp/w/en/pretrained"
cp "$tmp/w/m/en/pre/1/vocab.txt" "$tmp/w/en/pretrained/vocab.txt"
# poke FILE OUT TENSOR INDEX VALUE: a copy of FILE with one F32 element replaced
poke() {
  python3 - "$@" <<'PY'
import json, struct, sys
src, dst, name, idx, val = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
b = bytearray(open(src, "rb").read())
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
assert h[name]["dtype"] == "F32"
off = 8 + n + h[name]["data_offsets"][0] + 4 * idx
b[off:off + 4] = struct.pack("<f", val)
open(dst, "wb").write(b)
PY
}
poke "$tmp/w/m/en/pre/1/lm.safetensors" "$tmp/w/en/pretrained/lm.safetensors" 0.encoder.weight 0 nan
tr 2 nan "$tmp/w" --stages classifier
msg nan "pretrained language model: file://$tmp/w/en/pretrained/lm.safetensors: tensor \"0.encoder.weight\" holds NaN (element 0 of "
ok "grep -q '\"reason\":\"BadInput\"' $tmp/nan.json" "NaN weights: a BadInput result"
ok "[ ! -e $tmp/w/m/en/nan/1/model.safetensors ]" "NaN weights: no model written"
ok "! grep -q 'learning rate\|--lr' $tmp/nan.json" "NaN weights are not blamed on the learning rate"
poke "$tmp/w/m/en/pre/1/lm.safetensors" "$tmp/w/en/pretrained/lm.safetensors" 0.rnns.1.weight_hh_l0_raw 5 inf
tr 2 inf "$tmp/w"
msg inf "lm.safetensors: tensor \"0.rnns.1.weight_hh_l0_raw\" holds infinity (element 5 of "
cp "$tmp/w/m/en/pre/1/lm.safetensors" "$tmp/w/en/pretrained/lm.safetensors"
tr 0 finite "$tmp/w" --stages classifier
ok "grep -q 'pretrained language model loaded' $tmp/finite.err" "the same file without the NaN is used"

# ---- label names: not UTF-8 or with a control character -> exit 2 naming file:line and column ----
mkdir -p "$tmp/l/en/data"
data "$tmp/l/en/data" csv multi
printf 'spam and eggs,"fruit;b\xffd"\n' >> "$tmp/l/en/data/train.csv"
tr 2 badutf8 "$tmp/l"
msg badutf8 "file://$tmp/l/en/data/train.csv:82: column 2 (\"labels\"): label \"b\\xffd\" is not valid UTF-8"
ok "! grep -q '\"log_fields_error\"' $tmp/badutf8.err && grep -q 'label \\\\\"b\\\\\\\\xffd' $tmp/badutf8.err" \
   "the error line keeps the message, the bad byte as \\xff ($(grep 'run failed' $tmp/badutf8.err | head -c 300))"
# skipped with --skip-bad-rows: the model keeps one consistent label list everywhere
tr 0 skipped "$tmp/l" --skip-bad-rows
js "C('l','skipped')['labels'] == ['animal','color','fruit'] and [x['name'] for x in M('l','skipped')['labels']] == ['animal','color','fruit']" \
   "--skip-bad-rows: config.json and metrics.json list the same labels"
printf 'a red apple\n' | "$T" predict --lang en --bucket-name "file://$tmp/l" --model-dir m --job skipped >"$tmp/pred" 2>"$tmp/pred.err"
rc=$?
ok "[ $rc = 0 ] && python3 -c \"import json,sys; o=json.load(open('$tmp/pred')); sys.exit(sorted(o['probabilities'])!=['animal','color','fruit'])\"" \
   "--skip-bad-rows: the saved model loads with predict, same labels ($(head -c 200 $tmp/pred; tail -1 $tmp/pred.err | head -c 200))"
data "$tmp/l/en/data" csv multi
printf 'spam and eggs,"a\x01b"\n' >> "$tmp/l/en/data/train.csv"
tr 2 ctl "$tmp/l"
msg ctl "train.csv:82: column 2 (\"labels\"): label \"a\\x01b\" holds a control character"

# ---- validation labels unseen in training: counted; single-label rows dropped, not scored as 0 ----
mkdir -p "$tmp/u/en/data"
data "$tmp/u/en/data" csv single 80 20
printf 'a bird in the sky,bird\nthe bird and a cat,bird\nthe dog ate it,dog\n' >> "$tmp/u/en/data/valid.csv"
tr 0 unseen "$tmp/u"
js "M('u','unseen')['validUnseenLabels'] == {'rows': 3, 'droppedRows': 3, 'distinct': 2, 'labels': ['bird', 'dog']}" \
   "single-label: 3 rows with unseen labels counted and dropped, the names listed ($(python3 -c "import json; print(json.load(open('$tmp/u/m/en/unseen/1/metrics.json')).get('validUnseenLabels'))"))"
js "M('u','unseen')['nValid'] == 20 and sum(l['support'] for l in M('u','unseen')['labels']) == 20" \
   "single-label: the dropped rows are not scored (nValid 20, supports add up to 20)"
ok "grep -q '\"validation labels unseen in training\".*\"rows\":3,\"droppedRows\":3' $tmp/unseen.err" "a warning line with the counts"
"$T" evaluate --lang en --bucket-name "file://$tmp/u" --model-dir m --job unseen --batch-size 3 --bptt 5 --threads 2 \
  >"$tmp/ev1.out" 2>"$tmp/ev1.err"
rc=$?
ok "[ $rc = 0 ]" "evaluate after unseen labels: exit 0 ($(tail -1 $tmp/ev1.err | head -c 300))"
js "E('ev1')['validUnseenLabels']['rows'] == 3 and V(E('ev1')['overall']) == V(M('u','unseen')['overall'])" \
   "evaluate: the same unseen-label counts, and the run's metrics exactly (its own batch size and bptt, not the flags')"
ok "grep -q '\"using the trained model.s batch size and bptt\",\"batchSize\":8,\"bptt\":16' $tmp/ev1.err" \
   "evaluate says it uses the run's batch size and bptt"
js "'accuracy' in M('u','unseen')['overall'] and 'subsetAccuracy' not in M('u','unseen')['overall']" \
   "single-label: a plain accuracy, no subset/label accuracy"
mkdir -p "$tmp/u2/en/data"
data "$tmp/u2/en/data" csv multi 80 20
printf 'a bird and an apple,bird;fruit\n' >> "$tmp/u2/en/data/valid.csv"
tr 0 unseen2 "$tmp/u2"
js "M('u2','unseen2')['validUnseenLabels'] == {'rows': 1, 'droppedRows': 0, 'distinct': 1, 'labels': ['bird']} and M('u2','unseen2')['nValid'] == 21" \
   "multi-label: the unseen label is ignored, the row kept with its other labels"
js "'accuracy' not in R('unseen2')['metrics'] and 0 <= R('unseen2')['metrics']['subsetAccuracy'] <= R('unseen2')['metrics']['labelAccuracy'] <= 1" \
   "multi-label result: subsetAccuracy and labelAccuracy, no plain accuracy"

# ---- JSON lines on every path ----
mkdir -p "$tmp/j/en/data" "$tmp/j/elsewhere"
data "$tmp/j/en/data" jsonl multi
printf '{"text": "apples and red cats all the time"}\n{"text": "the cat is red"}\n' > "$tmp/j/elsewhere/more.ndjson"
tr 0 jsonl "$tmp/j"
js "C('j','jsonl')['inputs']['train'].endswith('/en/data/train.jsonl') and C('j','jsonl')['inputs']['valid'].endswith('/en/data/valid.jsonl') and M('j','jsonl')['nValid'] == 24" \
   "default layout: train.jsonl and valid.jsonl are found and read as JSON lines"
tr 0 jsonl2 "$tmp/j" --train-uri "file://$tmp/j/en/data/valid.jsonl" --valid-uri "$tmp/j/en/data/train.jsonl" \
   --corpus-uri "file://$tmp/j/elsewhere/more.ndjson"
js "M('j','jsonl2')['nTrain'] == 24 and M('j','jsonl2')['nValid'] == 80" "--train-uri/--valid-uri .jsonl, --corpus-uri .ndjson"
"$T" evaluate --lang en --bucket-name "file://$tmp/j" --model-dir m --job jsonl --threads 2 >"$tmp/ev2.out" 2>"$tmp/ev2.err"
rc=$?
ok "[ $rc = 0 ]" "evaluate reads valid.jsonl ($(tail -1 $tmp/ev2.err | head -c 300))"
js "V(E('ev2')['overall']) == V(M('j','jsonl')['overall'])" "evaluate on valid.jsonl = the run's metrics"
printf 'not json\n' >> "$tmp/j/en/data/train.jsonl"
tr 2 badjsonl "$tmp/j"
msg badjsonl "file://$tmp/j/en/data/train.jsonl:81: invalid JSON at column"
touch "$tmp/j/en/data/train.csv"
tr 2 both "$tmp/j"
msg both "file://$tmp/j/en/data/train.csv and file://$tmp/j/en/data/train.jsonl both exist"

# ---- text,label: one label name per row; NUL bytes and control characters in texts ----
mkdir -p "$tmp/t/en/data"
python3 - "$tmp/t/en/data" <<'PY'
import random, sys
rnd = random.Random(3)
words = "the a of and to in is it for on with".split()
with open(sys.argv[1] + "/train.csv", "wb") as f:
    f.write(b"text,label\n")
    for i in range(100):
        lab = rnd.choice(["spam", "ham", "other"])
        t = " ".join(rnd.choice(words) for _ in range(6)) + " " + {"spam": "win", "ham": "hello", "other": "misc"}[lab]
        if i % 7 == 0:
            t += " tab\x01ctl esc\x1b[0m bell\x07 nul\x00byte"   # control characters and a NUL
        f.write(t.encode() + b"," + lab.encode() + b"\n")
with open(sys.argv[1] + "/corpus.txt", "wb") as f:
    for i in range(40):
        f.write(b"the win and hello \x00 more\x02 text\n")
PY
tr 0 textlabel "$tmp/t"
js "C('t','textlabel')['labels'] == ['ham','other','spam'] and C('t','textlabel')['multiLabel'] is False" \
   "text,label: single-label with the label names of the column"
ok "! grep -q 'control character\|NUL byte' $tmp/textlabel.err" "texts with control characters and NUL bytes train"
tr 0 textlabel2 "$tmp/t" --label-mode single
js "M('t','textlabel2')['multiLabel'] is False" "text,label with --label-mode single"

# ---- --text-column, --label-column, --label-sep (CSV and JSON lines; evaluate reads the same) ----
mkdir -p "$tmp/c/en/data" "$tmp/c2/en/data"
python3 - "$tmp/c/en/data" "$tmp/c2/en/data" <<'PY'
import json, random, sys
rnd = random.Random(9)
words = "the a of and to in is it for on with".split()
keys = {"fruit": "apple", "color": "red", "animal": "cat"}
for name, n in (("train", 80), ("valid", 24)):
    rows = []
    for _ in range(n):
        ls = [k for k in keys if rnd.random() < 0.5] or ["fruit"]
        t = [rnd.choice(words) for _ in range(6)] + [keys[k] for k in ls]
        rows.append((" ".join(t), ls))
    with open(f"{sys.argv[1]}/{name}.csv", "w") as f:
        f.write("id,body,tags\n")
        for i, (t, ls) in enumerate(rows):
            f.write(f"{i},{t},{'|'.join(ls)}\n")
    with open(f"{sys.argv[2]}/{name}.jsonl", "w") as f:
        for t, ls in rows:
            f.write(json.dumps({"content": t, "category": ls}) + "\n")
PY
tr 0 cols "$tmp/c" --text-column body --label-column tags --label-sep '|'
js "C('c','cols')['labels'] == ['animal','color','fruit'] and C('c','cols')['multiLabel'] is True" \
   "--text-column body --label-column tags --label-sep '|': three labels, multi-label"
"$T" evaluate --lang en --bucket-name "file://$tmp/c" --model-dir m --job cols --threads 2 --text-column body \
  --label-column tags --label-sep '|' >"$tmp/ev3.out" 2>"$tmp/ev3.err"
rc=$?
ok "[ $rc = 0 ]" "evaluate with the same column flags: exit $rc ($(tail -1 $tmp/ev3.err | head -c 300))"
js "V(E('ev3')['overall']) == V(M('c','cols')['overall'])" "evaluate with the column flags = the run's metrics"
tr 0 keys "$tmp/c2" --text-column content --label-column category
js "C('c2','keys')['labels'] == ['animal','color','fruit']" "--text-column/--label-column name JSON keys"
tr 2 nocol "$tmp/c" --text-column body --label-column nope
msg nocol "train.csv:1: no label column \"nope\" in the header"
tr 2 notext "$tmp/c"
msg notext "train.csv:1: no column \"text\" in the header (first column: \"id\")"
tr 2 sep2 "$tmp/c" --label-sep '||'
msg sep2 "--label-sep: expected one printable ASCII character other than \" (e.g. ; | , or a space), got \"||\""
tr 2 samecol "$tmp/c" --text-column body --label-column body
msg samecol "--text-column and --label-column name the same column \"body\""

# ---- folders, devices, named inputs that do not exist ----
tr 2 folder "$tmp/t" --train-uri "file://$tmp/t/en/data"
msg folder "$tmp/t/en/data: not a regular file (a folder)"
tr 2 device "$tmp/t" --corpus-uri /dev/null
msg device "/dev/null: not a regular file (a device)"
for f in valid-uri corpus-uri pretrained-uri vocab-uri; do
  tr 2 "missing-$f" "$tmp/t" "--$f" "file://$tmp/nothing/$f.x"
  msg "missing-$f" "file://$tmp/nothing/$f.x: not found (a required input)"
done
tr 0 defaults "$tmp/t"   # only the layout's defaults may be absent (no valid.csv, no pretrained LM)

# ---- a model too large for this machine: exit 2 before anything is allocated ----
mkdir -p "$tmp/cg"
echo 268435456 > "$tmp/cg/memory.max"   # a 256 MiB memory limit
echo 0 > "$tmp/cg/memory.current"
KUBEFIT_CGROUP_ROOT="$tmp/cg" "$T" train --lang en --bucket-name "file://$tmp/t" --model-dir m --job big --device cpu \
  --emb-size 1024 --hidden-size 4096 --layers 4 --result-file "$tmp/big.json" >"$tmp/big.out" 2>"$tmp/big.err"
rc=$?
ok "[ $rc = 2 ]" "too large: exit $rc, expected 2 ($(tail -1 $tmp/big.err | head -c 300))"
msg big "model too large for this machine: emb 1024, hidden 4096, 4 layers"
msg big "0.2 GiB available"
ok "grep -q '\"reason\":\"BadInput\"' $tmp/big.json" "too large: a BadInput result, not a crash"

echo "$checks checks, $fails failed"
[ $fails = 0 ]
