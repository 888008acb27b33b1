"""The contract's table (common/contract.c, dumped by contract_dump) against what else states it:
- the CRD (crds/trainingjob.yaml): every flag with a spec field has that field, of the same kind,
  with the same bounds (minimum/maximum/exclusive, or a CEL range rule), the same choices; the
  spec.args rule refuses exactly the controller-owned flags;
- docs/contract.md: its flag table lists every flag with its range/choices, owner and spec field,
  and the same exit codes, result limit, metric and progress keys.
Prints one line per disagreement; exits 1 if any."""
import json
import os
import re
import subprocess
import sys

import yaml

root = os.environ.get("KUBEFIT_SOURCE_DIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
dump = json.loads(subprocess.run([os.environ["CONTRACT_DUMP"]], check=True, capture_output=True, text=True).stdout)
crd = yaml.safe_load(open(os.path.join(root, "crds/trainingjob.yaml")))
schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
docs = open(os.path.join(root, "docs/contract.md")).read()
failures, checks = [], 0


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        failures.append(what)


def node_at(path):
    node = schema
    for part in path.split("."):
        node = node.get("properties", {}).get(part)
        if node is None:
            return None
    return node


def cel_range(node):
    """(min, max) from a rule 'self >= A && self <= B', or None."""
    for rule in node.get("x-kubernetes-validations", []):
        m = re.fullmatch(r"self >= ([0-9.e+-]+) && self <= ([0-9.e+-]+)", rule["rule"])
        if m:
            return float(m.group(1)), float(m.group(2))
    return None


def fmt(x):
    return ("%.0f" % x) if x == int(x) and abs(x) < 1e15 else "%g" % x


for f in dump["flags"]:
    name, field = f["name"], f.get("field")
    # docs/contract.md: a table row "| `--name` | ... |" naming the range or choices and the field.
    row = next((line for line in docs.splitlines() if line.startswith(f"| `--{name}")), None)
    check(row is not None, f"docs/contract.md has no row for --{name}")
    if row:
        if "range" in f:
            r = f["range"]
            text = ("(" if r["minOpen"] else "[") + fmt(r["min"]) + ", " + fmt(r["max"]) + (")" if r["maxOpen"] else "]")
            check(text in row, f"docs/contract.md: --{name} should say {text}: {row}")
        if "choices" in f:
            check(all(f"`{c}`" in row for c in f["choices"].split("|")),
                  f"docs/contract.md: --{name} should list {f['choices']}: {row}")
        if field:
            check(f"`{field}`" in row, f"docs/contract.md: --{name} should name {field}: {row}")
        check(("controller" in row) == (f["owner"] == "controller"), f"docs/contract.md: --{name} owner ({f['owner']}): {row}")
    if not field:
        continue
    node = node_at(field)
    check(node is not None, f"--{name}: the CRD has no {field}")
    if node is None:
        continue
    kind = f["kind"]
    want_type = {"int": "integer", "number": "number", "choice": "string", "text": "string", "list": "array"}[kind]
    check(node.get("type") == want_type, f"{field}: CRD type {node.get('type')}, the contract's --{name} is {kind}")
    if "range" in f:
        r = f["range"]
        lo, hi = node.get("minimum"), node.get("maximum")
        if lo is None and hi is None and cel_range(node):
            lo, hi = cel_range(node)
        check(lo is not None and float(lo) == r["min"] and bool(node.get("exclusiveMinimum", False)) == r["minOpen"],
              f"{field}: CRD minimum {lo} (exclusive {node.get('exclusiveMinimum', False)}), contract {r['min']} (open {r['minOpen']})")
        check(hi is not None and float(hi) == r["max"] and bool(node.get("exclusiveMaximum", False)) == r["maxOpen"],
              f"{field}: CRD maximum {hi} (exclusive {node.get('exclusiveMaximum', False)}), contract {r['max']} (open {r['maxOpen']})")
    if "choices" in f:
        enum = node.get("enum") or node.get("items", {}).get("enum")
        check(enum == f["choices"].split("|"), f"{field}: CRD enum {enum}, contract {f['choices']}")

# spec.args: the admission rule's flag list is the controller-owned set.
args_rule = node_at("spec.args")["items"]["x-kubernetes-validations"][0]["rule"]
m = re.search(r"\^--\(([^)]*)\)", args_rule)
listed = set(m.group(1).split("|")) if m else set()
owned = {f["name"] for f in dump["flags"] if f["owner"] == "controller"}
check(listed == owned, f"spec.args rule lists {sorted(listed ^ owned)} differently from the controller-owned flags")
# spec.language: the CRD's rule is the contract's (checked on examples in test_contract.c).
lang_rule = node_at("spec.language")["x-kubernetes-validations"][0]["rule"]
check("^[a-z]{2,3}(-[A-Z]{2})?$" in lang_rule, f"spec.language rule {lang_rule}")

# The rest of docs/contract.md.
ex = dump["exitCodes"]
for code, word in ((ex["badInput"], "bad input"), (ex["transient"], "transient")):
    check(re.search(rf"^\| {code} \| {word}", docs, re.M), f"docs/contract.md: exit code {code} ({word})")
check(f"at most {dump['resultMax']} bytes" in docs, "docs/contract.md: the result limit")
check(dump["terminationLog"] in docs, "docs/contract.md: the termination log path")
for k in dump["metricKeys"]:
    check(f"`{k}`" in docs, f"docs/contract.md: metric key {k}")
for k in dump["progressKeys"]:
    check(f'"{k}"' in docs, f"docs/contract.md: progress key {k}")
status_metrics = node_at("status.metrics")["properties"]
for k in dump["metricKeys"]:
    check(k in status_metrics, f"the CRD's status.metrics has no {k}")

for msg in failures:
    print(f"FAIL: {msg}", file=sys.stderr)
print(f"{checks} checks, {len(failures)} failed", file=sys.stderr)
sys.exit(1 if failures or not checks else 0)
