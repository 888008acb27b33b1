#!/usr/bin/env python3
"""e2e tests on the real thing: hack/dev-cluster (a kubelet on containerd + runc, the controller-manager,
the scheduler, kube-proxy, DNS, the registry with the images hack/images built, fake-gcs-server) with
kubefit installed from charts/kubefit by helm. A test `kubectl apply -f`s a TrainingJob; the controller,
a Pod of the chart's Deployment, creates the trainer Pod; the kubelet runs kubefit-trainer in a
container from the registry; the job's status must end with what the trainer wrote.

Usage: e2e_test.py SCENARIO      (the cluster: $KUBEFIT_CLUSTER_DIR/env, written by hack/dev-cluster up)
  example             examples/trainingjob-dev.yaml as it is: Succeeded, status == metrics.json, progress,
                      one Pod with blockOwnerDeletion, kubectl logs/get tj
  fr                  a French multi-label job: Succeeded, status == metrics.json, config.json
  kubelet-view        the Pod as the kubelet and containerd see it: container started, process uid/gid
                      65532, the termination message the kubelet read == status == metrics.json
  bad-input           a language the bucket lacks: exit 2 -> Failed/BadInput, one attempt, one Pod
  delete-mid-run      the job deleted while it trains: the garbage collector deletes its Pod, the
                      container stops
  evict               the Pod evicted through the Eviction API mid-run: a disruption, not a failure
  image-pull          an image the registry does not have: ErrImagePull/ImagePullBackOff in the status
  controller-restart  the controller's Pod deleted mid-run: the new one takes over, no second trainer Pod
  serving             spec.serving: the served run answers through its Service = kubefit-trainer predict; a
                      better run is rolled out with no failed request; a retrain that is not better is not
Each scenario works in a namespace of its own (e2e-SCENARIO), deleted at the end (KEEP=1 keeps it).
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

SRC = os.environ.get("KUBEFIT_SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(SRC, "tests", "node-agent"))
from agent import ApiError, Kube  # noqa: E402  (the stdlib API client; no node agent runs here)

API = "/apis/kubefit.dev/v1alpha1"
WAIT_S = 240          # bound on one training run (about 10 s in a container on 2 idle cores)
# The result (termination message) carries 4 significant digits, metrics.json 6: they agree within
# half a unit of the 4th digit, i.e. 5e-4 relative for a leading digit of 1, plus the 6-digit rounding.
RTOL = 6e-4
UID = 65532           # the trainer image's USER and the Pod's runAsUser
# A tiny AWD-LSTM that still learns some labels of debtags-small in seconds (micro-F1 about 0.1; an
# epoch takes 2-3 s on 2 cores). Fault scenarios train longer, to have time to act while it runs.
TRAIN_ARGS = ["--lm-epochs", "1", "--max-vocab", "2000", "--bptt", "32", "--seed", "1", "--threads", "2"]
GC_USER = "system:serviceaccount:kube-system:generic-garbage-collector"
CONTROLLER_USER = "system:serviceaccount:kubefit-system:kubefit"

failures = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def close_to(a, ref, rtol=RTOL):
    return isinstance(a, (int, float)) and isinstance(ref, (int, float)) and abs(a - ref) <= rtol * abs(ref) + 1e-9


def load_env(path):
    """The `export K=V` lines of hack/dev-cluster's env file."""
    env = {}
    with open(path) as f:
        for line in f:
            m = re.match(r"export (\w+)=(.*)$", line.strip())
            if m:
                env[m.group(1)] = m.group(2)
    return env


def to_yaml(v, indent=0):
    """Enough YAML for a manifest: block maps and lists, scalars as JSON (valid YAML flow scalars)."""
    pad = "  " * indent
    if isinstance(v, dict):
        out = []
        for k, x in v.items():
            out.append(f"{pad}{k}:" + ("\n" + to_yaml(x, indent + 1) if isinstance(x, (dict, list)) and x
                                       else " " + json.dumps(x)))
        return "\n".join(out)
    return "\n".join(f"{pad}- " + (to_yaml(x, indent + 1).lstrip() if isinstance(x, (dict, list)) else json.dumps(x))
                     for x in v)


class Cluster:
    """One scenario's view of the dev cluster: API, kubectl, bucket, containerd, its namespace."""

    def __init__(self, scenario):
        cdir = os.environ.get("KUBEFIT_CLUSTER_DIR") or "/var/tmp/kubefit-dev"
        env_file = os.path.join(cdir, "env")
        if not os.path.exists(env_file):
            raise RuntimeError(f"{env_file} missing: the cluster is not up (hack/dev-cluster up --dir {cdir})")
        self.env = load_env(env_file)
        os.environ.update({k: v for k, v in self.env.items() if k in ("KUBECONFIG", "KUBECACHEDIR")})
        self.kube = Kube(self.env["KUBE_APISERVER_URL"], self.env["KUBE_TOKEN"], self.env["KUBE_CA_FILE"])
        self.gcs = self.env["STORAGE_EMULATOR_HOST"].rstrip("/")
        self.bucket = self.env["KUBEFIT_CLUSTER_BUCKET"]
        self.node = self.env["KUBEFIT_CLUSTER_NODE"]
        self.ns = f"e2e-{scenario}"
        self.dir = tempfile.mkdtemp(prefix=f"kubefit-e2e-{scenario}-")

    # ---- kubectl, API ----
    def kubectl(self, *args, timeout=60, check_rc=True):
        r = subprocess.run(["kubectl", *args], capture_output=True, text=True, timeout=timeout)
        if check_rc and r.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {r.stderr.strip()}")
        return r

    def fresh_namespace(self):
        path = f"/api/v1/namespaces/{self.ns}"
        try:
            self.kube.delete(path)
        except ApiError as e:
            if e.code != 404:
                raise
        self.wait_for(lambda: not self.exists(path), 120, f"namespace {self.ns} gone")
        self.kube.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                          "metadata": {"name": self.ns}})

    def exists(self, path):
        try:
            self.kube.get(path)
            return True
        except ApiError as e:
            if e.code == 404:
                return False
            raise

    def close(self):
        if os.environ.get("KEEP") == "1":
            print(f"KEEP=1: kept namespace {self.ns}", flush=True)
            return
        try:
            self.kube.delete(f"/api/v1/namespaces/{self.ns}")
        except (ApiError, OSError) as e:
            print(f"deleting namespace {self.ns}: {e}", flush=True)

    def wait_for(self, pred, timeout, what, poll=0.3):
        end = time.time() + timeout
        while time.time() < end:
            try:
                v = pred()
                if v:
                    return v
            except (ApiError, OSError, KeyError, IndexError) as e:
                print(f"waiting for {what}: {e}", flush=True)
            time.sleep(poll)
        raise TimeoutError(f"timed out after {timeout}s waiting for {what}")

    def apply(self, name, spec):
        manifest = {"apiVersion": "kubefit.dev/v1alpha1", "kind": "TrainingJob",
                    "metadata": {"name": name, "namespace": self.ns}, "spec": spec}
        path = os.path.join(self.dir, f"{name}.yaml")
        with open(path, "w") as f:
            f.write(to_yaml(manifest) + "\n")
        print(self.kubectl("apply", "-f", path).stdout.strip(), flush=True)

    def job(self, name):
        return self.kube.get(f"{API}/namespaces/{self.ns}/trainingjobs/{name}")

    def status(self, name):
        return self.job(name).get("status", {})

    def condition(self, name, ctype):
        for c in self.status(name).get("conditions") or []:
            if c.get("type") == ctype:
                return c
        return {}

    def wait_condition(self, name, condition, timeout=WAIT_S):
        """`kubectl wait` for the condition while reading the status; returns (rc, statuses seen)."""
        w = subprocess.Popen(["kubectl", "-n", self.ns, "wait", f"--for=condition={condition}", f"tj/{name}",
                              f"--timeout={timeout}s"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        seen = []
        try:
            while w.poll() is None:
                try:
                    seen.append(self.status(name))
                except (ApiError, OSError) as e:
                    print(f"status read: {e}", flush=True)
                time.sleep(0.5)
            print(w.stdout.read().strip(), flush=True)
        finally:
            if w.poll() is None:
                w.kill()
                w.wait()
        return w.returncode, seen

    def pods(self, job):
        sel = urllib.parse.quote(f"kubefit.dev/job={job}")
        return self.kube.get(f"/api/v1/namespaces/{self.ns}/pods?labelSelector={sel}")["items"]

    def pod(self, name):
        return self.kube.get(f"/api/v1/namespaces/{self.ns}/pods/{name}")

    def events(self, name):
        evs = self.kube.get(f"/api/v1/namespaces/{self.ns}/events")["items"]
        return [(e.get("reason"), e.get("message", "")) for e in evs if e.get("involvedObject", {}).get("name") == name]

    def wait_running(self, job, what="the trainer Pod Running"):
        """The job's current Pod once its container runs and the trainer reported progress."""
        def running():
            st = self.status(job)
            pod = self.pod(st["podName"]) if st.get("podName") else None
            if pod and pod["status"].get("phase") == "Running" and st.get("progress", {}).get("step"):
                return pod
            return None
        return self.wait_for(running, WAIT_S, what)

    def kubelet_pods(self):
        """The kubelet's own Pod list (GET /pods on its API, through the API server's node proxy)."""
        return self.kube.get(f"/api/v1/nodes/{self.node}/proxy/pods")["items"]

    # ---- the bucket ----
    def read(self, name):
        url = f"{self.gcs}/storage/v1/b/{self.bucket}/o/{urllib.parse.quote(name, '')}?alt=media"
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.read()

    def objects(self, prefix):
        url = f"{self.gcs}/storage/v1/b/{self.bucket}/o?prefix={urllib.parse.quote(prefix, '')}"
        with urllib.request.urlopen(url, timeout=30) as r:
            return [o["name"] for o in json.load(r).get("items", [])]

    # ---- containerd (the node's runtime, reached on its socket from the host) ----
    def ctr(self, *args):
        r = subprocess.run(["ctr", "-a", self.env["KUBEFIT_CLUSTER_CONTAINERD"], "-n", "k8s.io", *args],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"ctr {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout

    def audit(self, resource, name, verb, subresource=None):
        """The API server's audit events (hack/dev-cluster's policy) for one object of this namespace."""
        out = []
        path = os.path.join(self.env["KUBE_CLUSTER_DIR"], "logs", "audit.log")
        with open(path) as f:
            for line in f:
                e = json.loads(line)
                ref = e.get("objectRef") or {}
                if (e.get("verb") == verb and ref.get("resource") == resource and ref.get("name") == name
                        and ref.get("namespace") == self.ns and ref.get("subresource") == subresource):
                    out.append(e)
        return out

    def task_pids(self):
        """containerd task id -> (pid, status)."""
        out = {}
        for line in self.ctr("tasks", "ls").splitlines()[1:]:
            f = line.split()
            if len(f) >= 3:
                out[f[0]] = (int(f[1]), f[2])
        return out


def spec(language="en", epochs=4, **extra):
    s = {"language": language, "epochs": epochs, "batchSize": 16, "learningRate": 0.05, "lmLearningRate": 0.01,
         "model": {"embSize": 32, "hiddenSize": 64, "layers": 2}, "resources": {"gpus": 0}, "backoffLimit": 3,
         "storage": {"bucket": "gs://kubefit-dev"},
         "env": [{"name": "STORAGE_EMULATOR_HOST", "value": "http://fake-gcs.kube-system.svc.cluster.local:4443"}],
         "args": list(TRAIN_ARGS)}
    s.update(extra)
    return s


def terminated(pod, container="trainer"):
    for cs in pod.get("status", {}).get("containerStatuses") or []:
        if cs.get("name") == container:
            return cs.get("state", {}).get("terminated") or {}
    return {}


def check_metrics(c, name, lang, st):
    """status.metrics against BUCKET/models/LANG/NAME/1/metrics.json (what the trainer wrote itself)."""
    out = f"models/{lang}/{name}/1/"
    metrics_json = json.loads(c.read(out + "metrics.json"))
    overall = metrics_json.get("overall", {})
    m = st.get("metrics", {})
    shared = [k for k, v in m.items() if isinstance(v, (int, float)) and k in overall]
    check(len(shared) >= 4, f"status.metrics and metrics.json share the summary keys: {shared}")
    for k in shared:
        check(close_to(m[k], overall[k]), f"status.metrics.{k} {m[k]} == metrics.json {overall[k]}")
    check(st.get("modelURI") == f"gs://{c.bucket}/{out}model.safetensors", f"status.modelURI {st.get('modelURI')}")
    check(st.get("metricsURI") == f"gs://{c.bucket}/{out}metrics.json", f"status.metricsURI {st.get('metricsURI')}")
    return metrics_json


def check_succeeded(c, name, lang, seen):
    st = c.status(name)
    check(st.get("phase") == "Succeeded", f"phase Succeeded (got {st.get('phase')}, {st.get('message')})")
    check(any(s.get("phase") == "Running" for s in seen), "status went through Running")
    prog = st.get("progress", {})
    # Progress reaches the controller over the chart's Service through cluster DNS and kube-proxy.
    check(prog.get("stage") == "classifier" and isinstance(prog.get("step"), int),
          f"the trainer's progress (POSTed to the chart's Service) reached status.progress: {prog}")
    metrics_json = check_metrics(c, name, lang, st)
    pods = c.pods(name)
    check(len(pods) == 1, f"one Pod for the run ({[p['metadata']['name'] for p in pods]})")
    if pods:
        term = terminated(pods[0])
        check(term.get("exitCode") == 0 and term.get("reason") == "Completed",
              f"the trainer container exited 0 (kubelet: {term.get('reason')}, {term.get('exitCode')})")
        result = json.loads(term.get("message") or "{}")
        rm = result.get("metrics") or {}
        check(len(rm) >= 3 and all(st.get("metrics", {}).get(k) == v for k, v in rm.items()),
              f"status.metrics is the termination message the kubelet read: {rm}")
    check("Succeeded" in [r for r, _ in c.events(name)], "a Succeeded Event for the job")
    return st, pods, metrics_json


# ---- scenarios ----

def scenario_example(c):
    path = os.path.join(SRC, "examples", "trainingjob-dev.yaml")
    with open(path) as f:
        name = re.search(r"^  name: (\S+)", f.read(), re.M).group(1)
    print(c.kubectl("-n", c.ns, "apply", "-f", path).stdout.strip(), flush=True)
    rc, seen = c.wait_condition(name, "Succeeded")
    check(rc == 0, f"kubectl wait --for=condition=Succeeded tj/{name} (exit {rc})")
    st, pods, metrics_json = check_succeeded(c, name, "en", seen)
    config = json.loads(c.read(f"models/en/{name}/1/config.json"))
    check(config.get("lang") == "en" and config.get("device") == "cpu" and config.get("epochs") == metrics_json.get("epochs"),
          f"config.json: lang {config.get('lang')}, device {config.get('device')}, epochs {config.get('epochs')}")
    if pods:
        p = pods[0]
        ref = (p["metadata"].get("ownerReferences") or [{}])[0]
        job = c.job(name)
        check(ref.get("uid") == job["metadata"]["uid"] and ref.get("controller") is True
              and ref.get("blockOwnerDeletion") is True,
              f"the Pod is owned by the job with blockOwnerDeletion (admitted under OwnerReferencesPermissionEnforcement): {ref}")
        image = p["spec"]["containers"][0]["image"]
        check(image.startswith("localhost:5000/kubefit/kubefit-trainer:dev-cpu-"),
              f"the Pod runs the chart's default trainer image from the cluster registry: {image}")
        check(p["spec"].get("nodeName") == c.node, f"the scheduler bound it to {c.node}")
        logs = c.kubectl("-n", c.ns, "logs", p["metadata"]["name"]).stdout
        check('"training finished"' in logs, "kubectl logs (through the kubelet) shows the trainer's log")
    row = c.kubectl("-n", c.ns, "get", "tj", name).stdout
    print(row.strip(), flush=True)
    check("Succeeded" in row, "kubectl get tj shows Succeeded")
    # The controller itself: a Pod of the chart, as 65532:65532, its API calls made with the chart's
    # ServiceAccount token (projected by the kubelet; the status writes above needed its RBAC).
    q = urllib.parse.quote("app.kubernetes.io/name=kubefit")
    ctl = [p for p in c.kube.get(f"/api/v1/namespaces/kubefit-system/pods?labelSelector={q}")["items"]
           if p["status"].get("phase") == "Running"]
    cid = ((ctl[0]["status"].get("containerStatuses") or [{}])[0].get("containerID", "") if ctl else "")
    pid = c.task_pids().get(cid.removeprefix("containerd://"), (0, ""))[0]
    creds = {}
    if pid:
        with open(f"/proc/{pid}/status") as f:
            creds = {l.split(":")[0]: l.split()[1:] for l in f if l.startswith(("Uid:", "Gid:"))}
    check(creds.get("Uid") == [str(UID)] * 4 and creds.get("Gid") == [str(UID)] * 4,
          f"the controller process (pid {pid}) runs as {UID}:{UID}: {creds}")
    writers = sorted({e["user"]["username"] for e in c.audit("pods", pods[0]["metadata"]["name"], "create")}) if pods else []
    check(writers == [CONTROLLER_USER], f"the trainer Pod was created with the chart's ServiceAccount: {writers}")


def scenario_fr(c):
    c.apply("fr-multi", spec("fr", labels={"mode": "multi"}))
    rc, seen = c.wait_condition("fr-multi", "Succeeded")
    check(rc == 0, f"kubectl wait --for=condition=Succeeded tj/fr-multi (exit {rc})")
    st, _, metrics_json = check_succeeded(c, "fr-multi", "fr", seen)
    config = json.loads(c.read("models/fr/fr-multi/1/config.json"))
    check(config.get("lang") == "fr" and config.get("labelMode", config.get("mode")) in ("multi", None),
          f"config.json: lang {config.get('lang')}, label mode {config.get('labelMode')}")
    labels = st.get("metrics", {}).get("labels") or []
    check(len(labels) > 1, f"per-label metrics of a multi-label run ({len(labels)} labels)")


def scenario_kubelet_view(c):
    c.apply("view", spec("en", epochs=4))
    pod = c.wait_running("view")
    pname = pod["metadata"]["name"]
    # The kubelet's view while it runs: its own /pods (not the API server's copy).
    kp = [p for p in c.kubelet_pods() if p["metadata"]["name"] == pname and p["metadata"]["namespace"] == c.ns]
    check(len(kp) == 1, f"the kubelet's /pods lists {pname}")
    cs = ((kp[0]["status"].get("containerStatuses") or [{}])[0]) if kp else {}
    check(cs.get("started") is True and "running" in cs.get("state", {}),
          f"the kubelet reports the trainer container started and running: {cs.get('state')}")
    cid = (cs.get("containerID") or "").removeprefix("containerd://")
    check(bool(cid), f"container ID {cid}")
    # containerd's view: the OCI spec's user and the live process's credentials.
    info = json.loads(c.ctr("containers", "info", cid)) if cid else {}
    user = ((info.get("Spec") or {}).get("process") or {}).get("user") or {}
    # The primary group: the Pod's runAsGroup; without one the runtime gives gid 0 to a uid the
    # image's /etc/passwd does not know (the image's USER 65532:65532 does not count then). fsGroup
    # 65532 is a supplementary group either way.
    psc = pod["spec"].get("securityContext") or {}
    gid = psc.get("runAsGroup", 0)
    check(user.get("uid") == UID and user.get("gid") == gid and psc.get("fsGroup") in user.get("additionalGids", []),
          f"OCI spec: uid {UID}, gid {gid} (runAsGroup {psc.get('runAsGroup')}), fsGroup {psc.get('fsGroup')} "
          f"among the groups: {user}")
    if gid != UID:
        print(f"NOTE: the trainer Pod sets no runAsGroup, so the trainer runs with primary gid {gid}, not the "
              f"image's {UID}", flush=True)
    pid, state = c.task_pids().get(cid, (0, ""))
    creds, argv = {}, []
    if pid:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("Uid:", "Gid:", "Groups:")):
                    creds[line.split(":")[0]] = line.split()[1:]
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    check(state == "RUNNING" and creds.get("Uid") == [str(UID)] * 4 and creds.get("Gid") == [str(gid)] * 4
          and str(psc.get("fsGroup")) in creds.get("Groups", []),
          f"the trainer process (pid {pid}, {state}) runs as uid {UID}, gid {gid}: {creds}")
    check(argv[:2] == [b"kubefit-trainer", b"train"], f"that process is the trainer: {argv[:2]}")
    rc, seen = c.wait_condition("view", "Succeeded")
    check(rc == 0, f"kubectl wait --for=condition=Succeeded tj/view (exit {rc})")
    st, _, metrics_json = check_succeeded(c, "view", "en", seen)
    # After it exited: the termination message as the kubelet read it from the container.
    kp = [p for p in c.kubelet_pods() if p["metadata"]["name"] == pname and p["metadata"]["namespace"] == c.ns]
    term = terminated(kp[0]) if kp else {}
    check(term.get("exitCode") == 0, f"the kubelet saw exit code 0: {term.get('exitCode')}")
    result = json.loads(term.get("message") or "{}")
    rm = result.get("metrics") or {}
    overall = metrics_json.get("overall", {})
    check(len(rm) >= 3 and all(st["metrics"].get(k) == v for k, v in rm.items()),
          f"status.metrics == the kubelet's termination message: {rm}")
    check(all(close_to(v, overall.get(k)) for k, v in rm.items() if k in overall) and
          sum(k in overall for k in rm) >= 3, "the kubelet's termination message == the bucket's metrics.json")
    check(result.get("metricsURI") == st.get("metricsURI"), f"metricsURI {result.get('metricsURI')}")


def scenario_bad_input(c):
    c.apply("nodata", spec("de"))   # gs://kubefit-dev has en/ and fr/ only
    rc, _ = c.wait_condition("nodata", "Failed")
    check(rc == 0, f"kubectl wait --for=condition=Failed tj/nodata (exit {rc})")
    time.sleep(12)  # the default retry backoff is 10 s: a retry would have made a second Pod by now
    st = c.status("nodata")
    msg = st.get("message", "")
    check(st.get("phase") == "Failed" and st.get("reason") == "BadInput",
          f"phase Failed, reason BadInput (got {st.get('phase')}, {st.get('reason')})")
    check("exit code 2" in msg and "de/data/train.csv" in msg, f"message names the exit code and the missing file: {msg}")
    check(st.get("attempts") == 1, f"no retry: attempts {st.get('attempts')}")
    pods = c.pods("nodata")
    check(len(pods) == 1, f"exactly one Pod ({[p['metadata']['name'] for p in pods]})")
    term = terminated(pods[0]) if pods else {}
    check(term.get("exitCode") == 2, f"the kubelet saw the trainer exit 2 (got {term.get('exitCode')})")
    check("BadInput" in [r for r, _ in c.events("nodata")], "a BadInput Event for the job")
    row = c.kubectl("-n", c.ns, "get", "tj", "nodata").stdout
    check("Failed" in row, f"kubectl get tj shows Failed: {row.strip()}")


def scenario_delete_mid_run(c):
    c.apply("doomed", spec("en", epochs=30))
    pod = c.wait_running("doomed")
    pname, puid = pod["metadata"]["name"], pod["metadata"]["uid"]
    cid = pod["status"]["containerStatuses"][0]["containerID"].removeprefix("containerd://")
    check(cid in c.task_pids(), f"containerd runs the trainer ({cid[:12]})")
    # Background propagation: the job goes at once; its dependents are the garbage collector's.
    print(c.kubectl("-n", c.ns, "delete", "tj", "doomed", "--wait=false").stdout.strip(), flush=True)
    c.wait_for(lambda: not c.exists(f"{API}/namespaces/{c.ns}/trainingjobs/doomed"), 60, "the job gone")

    def pod_gone():
        try:
            return c.pod(pname)["metadata"]["uid"] != puid
        except ApiError as e:
            return e.code == 404
    c.wait_for(pod_gone, 120, f"{pname} deleted")
    # The garbage collector asks for the delete; the kubelet completes it once the container stopped.
    deletes = [(e["user"]["username"], e.get("responseStatus", {}).get("code")) for e in c.audit("pods", pname, "delete")]
    node_user = f"system:node:{c.node}"
    check(bool(deletes) and deletes[0][0] == GC_USER and all(u in (GC_USER, node_user) for u, _ in deletes),
          f"the garbage collector deleted {pname} (the kubelet finished it): {deletes}")
    c.wait_for(lambda: cid not in c.task_pids(), 60, "the trainer container stopped")
    check(True, "the kubelet stopped the trainer container")


def scenario_evict(c):
    c.apply("evicted", spec("en", epochs=3))
    pod = c.wait_running("evicted")
    pname = pod["metadata"]["name"]
    c.kube.request("POST", f"/api/v1/namespaces/{c.ns}/pods/{pname}/eviction",
                   {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pname, "namespace": c.ns}})
    print(f"evicted {pname} through the Eviction API", flush=True)
    c.wait_for(lambda: c.audit("pods", pname, "create", "eviction"), 10, "the eviction in the audit log")
    rc, seen = c.wait_condition("evicted", "Succeeded")
    check(rc == 0, f"kubectl wait --for=condition=Succeeded tj/evicted (exit {rc})")
    st = c.status("evicted")
    check(st.get("phase") == "Succeeded", f"the job still Succeeded: {st.get('phase')} {st.get('message')}")
    check(st.get("failures", 0) == 0, f"the eviction is not counted as a failure: failures {st.get('failures')}")
    reasons = [r for r, _ in c.events("evicted")]
    check("AttemptFailed" not in reasons, f"no AttemptFailed Event: {reasons}")
    check(st.get("attempts", 1) >= 2 or any(s.get("reason") == "Preempted" for s in seen) or "Preempted" in reasons,
          f"a new attempt after the disruption (attempts {st.get('attempts')}, events {reasons})")
    check_metrics(c, "evicted", "en", st)


def scenario_image_pull(c):
    image = "localhost:5000/kubefit/kubefit-trainer:does-not-exist"
    c.apply("noimage", spec("en", image=image))

    def waiting_reason():
        cond = c.condition("noimage", "Running")
        return cond if cond.get("reason") in ("ErrImagePull", "ImagePullBackOff") else None
    cond = c.wait_for(waiting_reason, 120, "the image pull failure in the job's conditions")
    st = c.status("noimage")
    check(cond.get("status") == "False", f"condition Running=False, reason {cond.get('reason')}")
    check(image in cond.get("message", "") or "does-not-exist" in cond.get("message", ""),
          f"the condition's message names the image: {cond.get('message')}")
    check(st.get("phase") == "Pending" and st.get("reason") in ("ErrImagePull", "ImagePullBackOff"),
          f"phase Pending, reason {st.get('reason')}")
    pods = c.pods("noimage")
    waiting = ((pods[0]["status"].get("containerStatuses") or [{}])[0].get("state", {}).get("waiting", {})
               if pods else {})
    check(waiting.get("reason") in ("ErrImagePull", "ImagePullBackOff"),
          f"the kubelet reports the container waiting: {waiting.get('reason')}")
    reasons = [r for r, _ in c.events("noimage")]
    check(any(r in ("ErrImagePull", "ImagePullBackOff") for r in reasons), f"a Warning Event on the job: {reasons}")
    c.kubectl("-n", c.ns, "delete", "tj", "noimage", "--wait=false")


def scenario_controller_restart(c):
    sel = "app.kubernetes.io/name=kubefit"
    ctl_ns = "kubefit-system"

    def controller_pods():
        q = urllib.parse.quote(sel)
        return [p for p in c.kube.get(f"/api/v1/namespaces/{ctl_ns}/pods?labelSelector={q}")["items"]
                if not p["metadata"].get("deletionTimestamp")]
    before = controller_pods()
    check(len(before) == 1, f"one controller Pod ({[p['metadata']['name'] for p in before]})")
    c.apply("survivor", spec("en", epochs=10))
    c.wait_running("survivor")
    old = before[0]["metadata"]["name"]
    print(c.kubectl("-n", ctl_ns, "delete", "pod", old, "--wait=false").stdout.strip(), flush=True)

    def new_ready():
        for p in controller_pods():
            if p["metadata"]["name"] != old and any(
                    x.get("type") == "Ready" and x.get("status") == "True" for x in p["status"].get("conditions") or []):
                return p
        return None
    new = c.wait_for(new_ready, 120, "a new controller Pod Ready")
    print(f"controller {old} -> {new['metadata']['name']}", flush=True)
    check(c.status("survivor").get("phase") == "Running", "the job kept running across the restart")
    rc, seen = c.wait_condition("survivor", "Succeeded")
    check(rc == 0, f"kubectl wait --for=condition=Succeeded tj/survivor (exit {rc})")
    st = c.status("survivor")
    pods = c.pods("survivor")
    check([p["metadata"]["name"] for p in pods] == ["survivor-1-1"] and st.get("attempts") == 1,
          f"no second trainer Pod: {[p['metadata']['name'] for p in pods]}, attempts {st.get('attempts')}")
    creates = [(e["user"]["username"], e.get("responseStatus", {}).get("code"))
               for e in c.audit("pods", "survivor-1-1", "create")]
    check([x for x in creates if x[1] == 201] == [(CONTROLLER_USER, 201)],
          f"the API server created survivor-1-1 once, for the controller's ServiceAccount: {creates}")
    lease = c.kube.get(f"/apis/coordination.k8s.io/v1/namespaces/{ctl_ns}/leases/kubefit-controller")
    holder = lease["spec"].get("holderIdentity", "")
    check(holder.startswith(new["metadata"]["name"]), f"the new controller holds the Lease: {holder}")
    check_metrics(c, "survivor", "en", st)


def scenario_serving(c):
    """spec.serving for real: the kubelet runs kubefit-serve from the trainer image, reading the run's
    model from the bucket; callers reach it through its Service (here through the API server's
    service proxy). Run 1 predicts no label at all (decision threshold 0.999: micro-F1 0) and is
    served as the first run; run 2 (threshold 0.5, a spec change) beats it and is rolled out while
    requests keep coming, none failing; run 3 (the retrain annotation, the same spec) does not beat
    run 2 by minImprovement and is not served. The answers equal kubefit-trainer predict's."""
    name = "srv"
    serving = {"replicas": 1, "resources": {"cpu": "500m", "memory": "512Mi"},
               "promote": {"metric": "microF1", "minImprovement": 0.01}}
    c.apply(name, spec("en", epochs=3, labels={"threshold": 0.999}, serving=serving))
    proxy = f"/api/v1/namespaces/{c.ns}/services/{name}-serve:http/proxy"

    def serving_run(run):
        st = c.status(name)
        cond = next((x for x in st.get("conditions") or [] if x.get("type") == "Serving"), {})
        return st.get("serving", {}).get("run") == run and cond.get("status") == "True" and st

    def infer(texts):
        return c.kube.request("POST", f"{proxy}/v2/models/{name}/infer", {"inputs": [
            {"name": "text", "datatype": "BYTES", "shape": [len(texts)], "data": texts}]}, timeout=60)

    st = c.wait_for(lambda: serving_run(1), WAIT_S + 180, "run 1 served by a ready kubefit-serve Pod")
    check(st["metrics"].get("microF1") == 0, f"run 1 predicts no label (micro-F1 {st['metrics'].get('microF1')})")
    check(st["serving"]["url"] == f"http://{name}-serve.{c.ns}.svc:8080", f"status.serving.url {st['serving']['url']}")
    dep = c.kube.get(f"/apis/apps/v1/namespaces/{c.ns}/deployments/{name}-serve")
    pods = c.kube.get(f"/api/v1/namespaces/{c.ns}/pods?labelSelector=kubefit.dev/serve%3D{name}")["items"]
    check(dep["status"].get("readyReplicas") == 1 and pods and pods[0]["status"].get("phase") == "Running",
          "the Deployment's Pod runs (kubelet, containerd) and is ready (/v2/health/ready)")
    if pods:
        image = pods[0]["spec"]["containers"][0]["image"]
        check(image.startswith("localhost:5000/kubefit/kubefit-trainer:"), f"kubefit-serve from the trainer image: {image}")
    texts = ["a library for the perl language", "an arcade game with sound", "Don't use it: it's a daemon"]
    doc = infer(texts)
    check(doc["model_name"] == name and doc["model_version"] == "1", f"v2 infer answered by run 1: {doc.get('model_version')}")
    # The same texts through kubefit-trainer predict on the host, reading the same bucket.
    env = dict(os.environ, STORAGE_EMULATOR_HOST=c.gcs)
    trainer = os.path.join(os.environ.get("KUBEFIT_BINARY_DIR", os.path.join(SRC, "build")), "trainer", "kubefit-trainer")
    r = subprocess.run([trainer, "predict", "--lang", "en", "--bucket-name", f"gs://{c.bucket}", "--model-dir", "models",
                        "--job", name, "--run", "1", "--threads", "1"], input="".join(t + "\n" for t in texts),
                       capture_output=True, text=True, env=env, timeout=120)
    ref = [json.loads(l) for l in r.stdout.splitlines()] if r.returncode == 0 else []
    out = {o["name"]: o for o in doc["outputs"]}
    L = out["probabilities"]["shape"][1]
    labels = c.kube.get(f"{proxy}/v2/models/{name}")["labels"]
    same = len(ref) == len(texts) and all(
        abs(out["probabilities"]["data"][i * L + k] - ref[i]["probabilities"][labels[k]]) <= 5.1e-5
        for i in range(len(texts)) for k in range(L))
    check(same, f"the served answers equal kubefit-trainer predict's (rc {r.returncode} {r.stderr[-200:]})")

    # Run 2 learns: promoted and rolled out while a client keeps calling; no request fails.
    codes, stop = [], [False]

    def client():
        while not stop[0]:
            try:
                d = infer(texts[:1])
                codes.append(d.get("model_version"))
            except (ApiError, OSError) as e:
                codes.append(f"error {e}")
            time.sleep(0.05)
    t = threading.Thread(target=client)
    t.start()
    try:
        c.kube.merge_patch(f"{API}/namespaces/{c.ns}/trainingjobs/{name}", {"spec": {"labels": {"threshold": 0.5}}})
        st = c.wait_for(lambda: serving_run(2), WAIT_S + 180, "run 2 promoted and rolled out")
        time.sleep(8)  # the old Pod drains (--drain-delay 5) and goes
    finally:
        stop[0] = True
        t.join()
    promoted = next(x for x in st["conditions"] if x["type"] == "Promoted")
    check(promoted["reason"] == "Promoted" and "run 2 is served" in promoted["message"], promoted["message"])
    errors = [x for x in codes if x not in ("1", "2")]
    check(not errors and "1" in codes and codes[-1] == "2",
          f"the rollout from run 1 to run 2 failed no request ({len(codes)} requests, {len(errors)} failed: {errors[:3]})")

    # Run 3 (retrain, same spec): not better by minImprovement: run 2 keeps serving.
    c.kube.merge_patch(f"{API}/namespaces/{c.ns}/trainingjobs/{name}",
                       {"metadata": {"annotations": {"kubefit.dev/retrain": "again"}}})
    st = c.wait_for(lambda: c.status(name).get("serving", {}).get("lastEvaluatedRun") == 3 and c.status(name),
                    WAIT_S + 60, "run 3 evaluated")
    check(st["serving"]["run"] == 2, f"run 3 is not served: {st['serving']}")
    check("PromotionSkipped" in [r for r, _ in c.events(name)], "Event PromotionSkipped")
    check(infer(texts[:1])["model_version"] == "2", "run 2 still answers")


def main():
    scenario = sys.argv[1] if len(sys.argv) > 1 else ""
    run = globals().get("scenario_" + scenario.replace("-", "_"))
    if not run:
        print(__doc__, file=sys.stderr)
        return 2

    def on_term(*_):
        print("FAIL: interrupted (SIGTERM)", flush=True)
        sys.exit(143)
    signal.signal(signal.SIGTERM, on_term)
    started = time.time()
    c = None
    try:
        c = Cluster(scenario)
        c.fresh_namespace()
        run(c)
    except Exception as e:  # a timeout, an API error, a missing cluster: a failure with its reason
        check(False, f"{type(e).__name__}: {e}")
    finally:
        if c and failures:
            for args in (["get", "tj,pods,events", "-n", c.ns, "-o", "wide"],
                         ["-n", "kubefit-system", "logs", "deploy/kubefit", "--tail=30"]):
                r = c.kubectl(*args, check_rc=False)
                print(f"--- kubectl {' '.join(args)} ---\n{r.stdout}{r.stderr}", file=sys.stderr, flush=True)
        if c:
            c.close()
    print(f"e2e {scenario}: {len(failures)} failed, {time.time() - started:.1f} s", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
