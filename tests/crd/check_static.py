"""Static checks of the TrainingJob CRD and its packaging (no API server needed):
the chart's copy is identical, names/versions/columns are as documented, every optional spec
field has a default (in the schema or stated as "Default:"), every field is in
docs/trainingjob.md, every CEL rule has a message, and the example/bad manifests are well formed.
Prints one line per failure and exits 1 if any."""
import os
import re
import sys

import yaml

root = os.environ.get("KUBEFIT_SOURCE_DIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
failures, checks = [], 0


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        failures.append(what)


def read(path):
    with open(os.path.join(root, path), "rb") as f:
        return f.read()


crd_bytes = read("crds/trainingjob.yaml")
check(crd_bytes == read("charts/kubefit/crds/trainingjob.yaml"),
      "charts/kubefit/crds/trainingjob.yaml differs from crds/trainingjob.yaml (copy it over)")
crd = yaml.safe_load(crd_bytes)
spec = crd["spec"]
check(crd["metadata"]["name"] == "trainingjobs.kubefit.dev", "CRD name")
check(spec["group"] == "kubefit.dev" and spec["scope"] == "Namespaced", "group/scope")
names = spec["names"]
check((names["kind"], names["plural"], names["singular"]) == ("TrainingJob", "trainingjobs", "trainingjob"), "names")
check(names.get("shortNames") == ["tj"] and names.get("categories") == ["kubefit"], "shortNames/categories")
check([v["name"] for v in spec["versions"]] == ["v1alpha1"], "versions")
version = spec["versions"][0]
check(version["served"] and version["storage"] and version["subresources"] == {"status": {}}, "status subresource")
cols = [(c["name"], c["jsonPath"]) for c in version["additionalPrinterColumns"]]
check(cols == [("Phase", ".status.phase"), ("Language", ".spec.language"), ("Accuracy", ".status.metrics.accuracy"),
               ("Micro-F1", ".status.metrics.microF1"), ("Run", ".status.currentRun"),
               ("Age", ".metadata.creationTimestamp")], f"printer columns {cols}")

schema = version["schema"]["openAPIV3Schema"]
docs = read("docs/trainingjob.md").decode()


def walk(node, path, required_here):
    """Visits every property below node; path like spec.storage.bucket."""
    for rule in node.get("x-kubernetes-validations", []):
        check(rule.get("message") or rule.get("messageExpression"),
              f"{path}: CEL rule without a message: {rule.get('rule')}")
    if path.startswith("spec"):
        # The API server's message for a bare pattern names the regex, not the rule: use CEL.
        check("pattern" not in node, f"{path}: a bare pattern (use a CEL rule with a message)")
    props = node.get("properties", {})
    required = set(node.get("required", []))
    for name, sub in props.items():
        p = f"{path}.{name}" if path else name
        if p.startswith("spec."):
            check("[]" in p or f"`{p}`" in docs or any(f"`{p}." in line for line in docs.splitlines()),
                  f"{p} is not described in docs/trainingjob.md")
            structural = "type" in sub or sub.get("x-kubernetes-int-or-string") or sub.get("x-kubernetes-preserve-unknown-fields")
            check(structural, f"{p}: no type (not a structural schema)")
            check(sub.get("description"), f"{p}: no description")
            if name not in required:
                documented = "default" in sub or "Default:" in sub.get("description", "") or "properties" in sub
                check(documented, f"{p}: optional without a default in the schema or a 'Default:' in its description")
        walk(sub, p, required)
        if "items" in sub:
            walk(sub["items"], p + "[]", set())


walk(schema, "", set())
spec_schema = schema["properties"]["spec"]
check(set(spec_schema["required"]) == {"language", "storage"}, "spec.required")
check(spec_schema["properties"]["storage"]["required"] == ["bucket"], "spec.storage.required")

# Manifests: examples apply as-is; each bad one names what the API server must answer.
for rel in ("examples/trainingjob.yaml", "examples/trainingjob-local.yaml"):
    doc = yaml.safe_load(read(rel))
    check(doc.get("kind") == "TrainingJob" and doc.get("apiVersion") == "kubefit.dev/v1alpha1", f"{rel}: kind/apiVersion")
local = yaml.safe_load(read("examples/trainingjob-local.yaml"))["spec"]
check(local["storage"]["bucket"].startswith("file:///") and local["resources"]["gpus"] == 0,
      "examples/trainingjob-local.yaml: file:// storage and gpus 0")
bad_dir = os.path.join(root, "tests/crd/bad")
bad = sorted(os.listdir(bad_dir))
check(len(bad) >= 15, f"only {len(bad)} bad manifests")
seen = set()
for f in bad:
    text = open(os.path.join(bad_dir, f)).read()
    m = re.match(r"# expect: (.+)\n", text)
    check(m, f"bad/{f}: first line must be '# expect: <message substring>'")
    doc = yaml.safe_load(text)
    name = doc["metadata"]["name"]
    check(name not in seen, f"bad/{f}: metadata.name {name} used twice")
    seen.add(name)
    check(doc["kind"] == "TrainingJob", f"bad/{f}: kind")

for msg in failures:
    print(f"FAIL: {msg}", file=sys.stderr)
print(f"{checks} checks, {len(failures)} failed", file=sys.stderr)
sys.exit(1 if failures or not checks else 0)
