"""Checks `helm template --include-crds --set replicaCount=2` output (stdin): the objects the chart
renders, the controller flags, least-privilege RBAC, and the CRD copy. Exits 1 on a failure."""
import sys, yaml
root = sys.argv[1]
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
for a in ("--leader-elect=true", "--lease-namespace=kubefit-system", "--listen=0.0.0.0:8080",
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
    (("",), ("events",)): ["create", "patch"],
    (("events.k8s.io",), ("events",)): ["create", "patch"],
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
