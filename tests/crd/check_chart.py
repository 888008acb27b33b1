"""Checks `helm template --include-crds --set replicaCount=2` output (stdin): the objects the chart
renders, the controller flags, least-privilege RBAC, and the CRD copy. Exits 1 on a failure.
With --extras, stdin is a render with serviceMonitor and grafanaDashboard on and the console off:
the ServiceMonitor, the dashboard (valid JSON whose every kubefit_ metric the controller exports)
and RBAC without the console's rules."""
import glob, json, re, sys, yaml
root = sys.argv[1]
if len(sys.argv) > 2 and sys.argv[2] == "--extras":
    docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
    by = {d["kind"]: d for d in docs}
    bad = []
    sm = by.get("ServiceMonitor")
    if not sm or sm["spec"]["endpoints"][0]["port"] != "http" or sm["spec"]["endpoints"][0]["path"] != "/metrics":
        bad.append(f"ServiceMonitor for /metrics on the http port: {sm}")
    elif sm["spec"]["selector"]["matchLabels"] != by["Deployment"]["spec"]["selector"]["matchLabels"]:
        bad.append("the ServiceMonitor does not select the controller's Service")
    cm = next((d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-dashboard")), None)
    if not cm or cm["metadata"]["labels"].get("grafana_dashboard") != "1":
        bad.append("the Grafana dashboard ConfigMap (label grafana_dashboard=1)")
    else:
        dash = json.loads(cm["data"]["kubefit.json"])
        exported = set()
        for f in glob.glob(f"{root}/controller/*.c"):
            exported |= set(re.findall(r"kubefit_[a-z_]+", open(f).read()))
        used = set()
        for p in dash["panels"]:
            for t in p["targets"]:
                used |= set(re.findall(r"kubefit_[a-z_]+", t["expr"]))
        missing = sorted(m for m in used if m not in exported and re.sub(r"_(bucket|sum|count)$", "", m) not in exported)
        if missing:
            bad.append(f"the dashboard queries metrics the controller does not export: {missing}")
        if len(dash["panels"]) < 8:
            bad.append("the dashboard has fewer than 8 panels")
    args = by["Deployment"]["spec"]["template"]["spec"]["containers"][0]["args"]
    if "--console=false" not in args:
        bad.append(f"console.enabled=false does not reach the flag: {args}")
    rules = by["ClusterRole"]["rules"]
    if any("subjectaccessreviews" in r["resources"] or "pods/log" in r["resources"] for r in rules):
        bad.append("without the console, the controller needs no SubjectAccessReview or pods/log rights")
    for b in bad:
        print(f"FAIL: {b}", file=sys.stderr)
    sys.exit(1 if bad else 0)
docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
bad = []
kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in docs)
want = ["ClusterRole/kf-kubefit", "ClusterRoleBinding/kf-kubefit", "CustomResourceDefinition/trainingjobs.kubefit.dev",
        "Deployment/kf-kubefit", "Role/kf-kubefit-leader-election", "RoleBinding/kf-kubefit-leader-election",
        "Service/kf-kubefit", "ServiceAccount/kf-kubefit"]
if kinds != want:
    bad.append(f"rendered objects {kinds}, want {want}")
by = {d["kind"]: d for d in docs}
crd = by["CustomResourceDefinition"]
if crd != yaml.safe_load(open(f"{root}/crds/trainingjob.yaml")):
    bad.append("the chart's CRD differs from crds/trainingjob.yaml")
dep = by["Deployment"]
if dep["spec"]["replicas"] != 2:
    bad.append("replicas")
c = dep["spec"]["template"]["spec"]["containers"][0]
args = c["args"]
for a in ("--leader-elect=true", "--lease-namespace=kubefit-system", "--listen=:8080", "--console=true",
          "--console-anonymous=false", "--serving=true", "--progress-rate=0.2", "--progress-burst=5",
          "--default-image=ghcr.io/kubefit/kubefit-trainer:0.1.0",
          "--progress-url=http://kf-kubefit.kubefit-system.svc:8080"):
    if a not in args:
        bad.append(f"controller args lack {a}: {args}")
if dep["spec"]["template"]["spec"]["serviceAccountName"] != "kf-kubefit":
    bad.append("serviceAccountName")
if c["securityContext"].get("allowPrivilegeEscalation") is not False:
    bad.append("container may escalate privileges")
rules = {(tuple(r["apiGroups"]), tuple(r["resources"])): sorted(r["verbs"]) for r in by["ClusterRole"]["rules"]}
want_rules = {
    (("kubefit.dev",), ("trainingjobs",)): ["delete", "get", "list", "watch"],
    (("kubefit.dev",), ("trainingjobs/status",)): ["get", "patch", "update"],
    (("kubefit.dev",), ("trainingjobs/finalizers",)): ["update"],
    (("",), ("pods",)): ["create", "delete", "get", "list", "watch"],
    (("",), ("events",)): ["create", "list", "patch"],
    (("authentication.k8s.io",), ("tokenreviews",)): ["create"],
    (("authorization.k8s.io",), ("subjectaccessreviews",)): ["create"],
    (("",), ("pods/log",)): ["get"],
    (("events.k8s.io",), ("events",)): ["create", "patch"],
    (("apps",), ("deployments",)): ["create", "delete", "get", "list", "update", "watch"],
    (("",), ("services",)): ["create", "delete", "get", "list", "patch", "watch"],
}
if rules != want_rules:
    bad.append(f"ClusterRole rules {rules}")
role = by["Role"]
if any(g != ["coordination.k8s.io"] or res != ["leases"] for g, res in ((r["apiGroups"], r["resources"]) for r in role["rules"])):
    bad.append("the leader-election Role reaches beyond leases")
if role["metadata"]["namespace"] != "kubefit-system":
    bad.append("the leader-election Role is not in the release namespace")
text = yaml.safe_dump_all(docs)
if "'*'" in text:
    bad.append("a wildcard in the rendered RBAC")
svc = by["Service"]
if svc["spec"]["ports"][0]["port"] != 8080 or svc["spec"]["selector"] != dep["spec"]["selector"]["matchLabels"]:
    bad.append("the Service does not select the controller on 8080")
for b in bad:
    print(f"FAIL: {b}", file=sys.stderr)
sys.exit(1 if bad else 0)
