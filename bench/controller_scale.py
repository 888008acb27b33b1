"""kubefit-controller against the Job controller (kube-controller-manager --controllers=job, the
same Kubernetes release as the apiserver) on N objects. bench/controller-scale.sh runs it.

Each side gets a fresh harness kube-apiserver + etcd (tests/cluster/apiserver-up). The N objects
(TrainingJobs or batch/v1 Jobs, one Pod each) are created first with the controller stopped, then
the controller starts and the clock runs:
  pods      time until all N Pods exist (a watch counts them)
  settled   time until the objects' status stops changing (no update for QUIET seconds)
  complete  the bench then finishes the Pods of a share of the objects (bind + Succeeded, as a
            kubelet would) and times until those objects report success
For each side: controller CPU seconds and peak RSS (/proc), apiserver CPU seconds over the same
window, API requests per object (apiserver_request_total, less the bench's own), and for kubefit
its reconcile latency p50/p99 when its /metrics has the histogram. It checks every object has
exactly one Pod. Both controllers get the same client limit (--kube-api-qps/--kube-api-burst) and
5 workers.
The Jobs' Pod template is the Pod kubefit makes for a TrainingJob (rendered by the controller's
own podspec code), so both sides create the same Pods.
Usage: controller_scale.py --n N --kubefit BIN --kcm BIN --render-pod BIN [--qps Q] [--share F]
       [--sides kubefit,job]
"""
import argparse
import http.client
import json
import os
import re
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLUSTER = os.path.join(ROOT, "tests", "cluster")
CLK_TCK = os.sysconf("SC_CLK_TCK")
QUIET = 3.0
NS = "bench"


class Api:
    """One keep-alive HTTPS connection per thread to the harness apiserver."""

    def __init__(self, env):
        u = urllib.parse.urlparse(env["KUBE_APISERVER_URL"])
        self.host, self.port, self.token = u.hostname, u.port, env["KUBE_TOKEN"]
        self.ctx = ssl.create_default_context(cafile=env["KUBE_CA_FILE"])
        self.local = threading.local()

    def conn(self, fresh=False, timeout=60):
        if fresh or not getattr(self.local, "c", None):
            self.local.c = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=timeout)
        return self.local.c

    def request(self, method, path, body=None, ctype="application/json", raw=False):
        headers = {"Authorization": "Bearer " + self.token, "Accept": "application/json"}
        data = json.dumps(body).encode() if body is not None else None
        if data is not None:
            headers["Content-Type"] = ctype
        for attempt in range(3):
            try:
                c = self.conn(fresh=attempt > 0)
                c.request(method, path, data, headers)
                r = c.getresponse()
                text = r.read()
                if raw:
                    return r.status, text
                return r.status, (json.loads(text) if text and text[:1] in b"{[" else text.decode(errors="replace"))
            except (http.client.HTTPException, OSError):
                if attempt == 2:
                    raise
        raise RuntimeError("unreachable")

    def watch(self, path, on_event, stop):
        """Streams a watch; on_event(type, obj) for each event until stop() is true."""
        c = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=3600)
        c.request("GET", path, headers={"Authorization": "Bearer " + self.token})
        r = c.getresponse()
        buf = b""
        while not stop():
            try:
                chunk = r.read1(65536)
            except (http.client.HTTPException, OSError):
                break  # the apiserver went away at the end of the side
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.strip():
                    ev = json.loads(line)
                    on_event(ev["type"], ev["object"])
        c.close()


def load_env(d):
    """The variables apiserver-up wrote to d/env."""
    env = {}
    with open(os.path.join(d, "env")) as f:
        for line in f:
            m = re.match(r"export (\w+)=(.*)", line.strip())
            if m:
                env[m.group(1)] = m.group(2)
    return env


def fan_out(n, one):
    """one(i) for i < n on 4 threads; the first failure stops the rest and is raised here."""
    todo, lock, errors = list(range(n)), threading.Lock(), []

    def worker():
        while True:
            with lock:
                if not todo or errors:
                    return
                i = todo.pop()
            try:
                one(i)
            except Exception as e:  # noqa: BLE001 - raised again in the caller's thread
                with lock:
                    errors.append(e)
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid, field="VmHWM"):
    """Peak (VmHWM) or current (VmRSS) resident memory in MB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def request_count(api, exclude_verbs=("WATCH",)):
    """Sum of apiserver_request_total over all verbs but the excluded ones."""
    status, text = api.request("GET", "/metrics")
    total = 0.0
    for line in text.splitlines():
        if line.startswith("apiserver_request_total{"):
            verb = re.search(r'verb="([A-Z]+)"', line)
            if verb and verb.group(1) not in exclude_verbs:
                total += float(line.rsplit(" ", 1)[1])
    return total


def request_seconds(api):
    """apiserver_request_duration_seconds_sum by (verb, resource, subresource)."""
    status, text = api.request("GET", "/metrics")
    out = {}
    for line in text.splitlines():
        if line.startswith("apiserver_request_duration_seconds_sum{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
            key = f"{labels.get('verb')} {labels.get('resource')}{'/' + labels['subresource'] if labels.get('subresource') else ''}"
            out[key] = out.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def histogram_quantiles(text, name, qs=(0.5, 0.99)):
    buckets = []
    for line in text.splitlines():
        m = re.match(rf'{name}_bucket{{le="([^"]+)"}} ([0-9.e+]+)', line)
        if m:
            buckets.append((float("inf") if m.group(1) == "+Inf" else float(m.group(1)), float(m.group(2))))
    if not buckets or buckets[-1][1] == 0:
        return None
    out = []
    for q in qs:
        want = q * buckets[-1][1]
        out.append(next(le for le, n in buckets if n >= want))
    return out


def training_job(i):
    return {"apiVersion": "kubefit.dev/v1alpha1", "kind": "TrainingJob", "metadata": {"name": f"o-{i:05d}"},
            "spec": {"language": "en", "epochs": 1, "storage": {"bucket": "gs://bench-bucket"},
                     "resources": {"gpus": 0}}}


POD_SPEC = None  # the Pod spec kubefit makes for training_job(0), set by main()


def kubefit_pod_spec(render_pod):
    """The Pod spec kubefit-controller makes for a bench TrainingJob (through the controller's own
    podspec code, tests/contract/render_pod): the Jobs get the same Pods, so both sides create
    the same objects."""
    job = training_job(0)
    job["metadata"].update({"namespace": NS, "uid": "00000000-0000-0000-0000-000000000000"})
    out = subprocess.run([render_pod], input=json.dumps(job), capture_output=True, text=True, check=True).stdout
    spec = json.loads(out)["spec"]
    spec.pop("activeDeadlineSeconds", None)
    return spec


def batch_job(i):
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": f"o-{i:05d}"},
            "spec": {"backoffLimit": 0, "template": {"spec": POD_SPEC}}}


class Side:
    def __init__(self, name, args):
        self.name, self.a = name, args
        self.dir = tempfile.mkdtemp(prefix=f"kubefit-scale-{name}-")

    def up(self):
        subprocess.run([os.path.join(CLUSTER, "apiserver-up"), self.dir], check=True, capture_output=True)
        self.env = load_env(self.dir)
        self.api = Api(self.env)
        with open(self.env["KUBE_APISERVER_PID_FILE"]) as f:
            self.apiserver_pid = int(f.read())
        kc = ["kubectl", "--kubeconfig", self.env["KUBECONFIG"]]
        env = dict(os.environ, KUBECACHEDIR=self.env["KUBECACHEDIR"])
        if self.name == "kubefit":
            subprocess.run(kc + ["apply", "-f", os.environ.get("BENCH_CRD") or os.path.join(ROOT, "crds", "trainingjob.yaml")], check=True,
                           capture_output=True, env=env)
            subprocess.run([os.path.join(CLUSTER, "crd-established"), "trainingjobs.kubefit.dev", "60"],
                           check=True, capture_output=True, env=dict(env, KUBECONFIG=self.env["KUBECONFIG"]))
        self.api.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                          "metadata": {"name": NS}})

    def down(self):
        subprocess.run([os.path.join(CLUSTER, "apiserver-down"), self.dir], capture_output=True)

    def collection(self):
        return (f"/apis/kubefit.dev/v1alpha1/namespaces/{NS}/trainingjobs" if self.name == "kubefit"
                else f"/apis/batch/v1/namespaces/{NS}/jobs")

    def create_all(self, n):
        make = training_job if self.name == "kubefit" else batch_job

        def create(i):
            status, body = self.api.request("POST", self.collection(), make(i))
            if status != 201:
                raise RuntimeError(f"create {i}: HTTP {status}: {str(body)[:300]}")
        fan_out(n, create)

    def start_controller(self):
        log = open(os.path.join(self.dir, "controller.log"), "w")
        q = str(self.a.qps)
        if self.name == "kubefit":
            cmd = [self.a.kubefit, "--kubeconfig", self.env["KUBECONFIG"], "--listen", "127.0.0.1:0",
                   "--port-file", os.path.join(self.dir, "port"), "--leader-elect=false", "--workers", "5",
                   "--kube-api-qps", q, "--kube-api-burst", q]
        else:
            cmd = [self.a.kcm, "--kubeconfig", self.env["KUBECONFIG"], "--controllers=job", "--leader-elect=false",
                   "--kube-api-qps", q, "--kube-api-burst", q, "--concurrent-job-syncs", "5", "--secure-port", "0",
                   "--v", "1"]
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        return self.proc

    def metrics_text(self):
        if self.name != "kubefit":
            return ""
        try:
            with open(os.path.join(self.dir, "port")) as f:
                port = int(f.read())
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/metrics")
            return c.getresponse().read().decode()
        except (OSError, ValueError):
            return ""

    def finished(self, obj):
        st = obj.get("status") or {}
        if self.name == "kubefit":
            return st.get("phase") == "Succeeded"
        return any(c.get("type") == "Complete" and c.get("status") == "True" for c in st.get("conditions", []))

    def run(self, n):
        self.up()
        try:
            return self.measure(n)
        finally:
            if getattr(self, "proc", None):
                self.proc.terminate()
                try:
                    self.proc.wait(20)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
            self.down()

    def measure(self, n):
        self.create_all(n)
        status, lst = self.api.request("GET", f"{self.collection()}?limit=1")
        rv = lst["metadata"]["resourceVersion"]
        pods, owners, last_update = {}, {}, [time.time()]
        done = threading.Event()
        lock = threading.Lock()

        def on_pod(t, obj):
            if t == "ADDED":
                m = obj["metadata"]
                owner = next((r["name"] for r in m.get("ownerReferences", []) if r.get("controller")), None)
                with lock:
                    pods[m["name"]] = (time.time(), owner)
                    owners.setdefault(owner, []).append(m["name"])

        finished_at = {}

        def on_obj(t, obj):
            with lock:
                last_update[0] = time.time()
                if self.finished(obj) and obj["metadata"]["name"] not in finished_at:
                    finished_at[obj["metadata"]["name"]] = time.time()

        pod_watch = threading.Thread(target=self.api.watch, daemon=True, args=(
            f"/api/v1/namespaces/{NS}/pods?watch=1&resourceVersion={rv}", on_pod, done.is_set))
        obj_watch = threading.Thread(target=self.api.watch, daemon=True, args=(
            f"{self.collection()}?watch=1&resourceVersion={rv}", on_obj, done.is_set))
        pod_watch.start()
        obj_watch.start()
        time.sleep(0.5)
        req0 = request_count(self.api)
        secs0 = request_seconds(self.api)
        api_cpu0 = cpu_seconds(self.apiserver_pid)
        prof = None
        if os.environ.get("BENCH_PPROF"):  # a CPU profile of the apiserver while the controller works
            def profile():
                status, body = self.api.request("GET", "/debug/pprof/profile?seconds=" + os.environ.get("BENCH_PPROF_S", "5"),
                                                raw=True)
                with open(os.path.join(os.environ["BENCH_PPROF"], f"apiserver-{self.name}.pprof"), "wb") as f:
                    f.write(body)
            prof = threading.Thread(target=profile)
            prof.start()
        t0 = time.time()
        proc = self.start_controller()
        deadline = t0 + self.a.timeout
        while time.time() < deadline:
            with lock:
                if len(pods) >= n:
                    break
            if proc.poll() is not None:
                raise RuntimeError(f"{self.name} controller exited with {proc.returncode}")
            time.sleep(0.05)
        with lock:
            t_pods = max(t for t, _ in pods.values()) - t0 if len(pods) >= n else float("nan")
        while time.time() < deadline:
            with lock:
                quiet = time.time() - last_update[0]
            if quiet >= QUIET:
                break
            time.sleep(0.1)
        with lock:
            t_settled = last_update[0] - t0
        # Finish the Pods of a share of the objects, as a kubelet would.
        share = sorted(pods)[: max(1, int(n * self.a.share))]
        self.api.request("POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node",
                                                    "metadata": {"name": "bench-node"}})
        t1 = time.time()
        for name in share:
            base = f"/api/v1/namespaces/{NS}/pods/{name}"
            self.api.request("POST", base + "/binding", {"apiVersion": "v1", "kind": "Binding",
                                                          "metadata": {"name": name},
                                                          "target": {"apiVersion": "v1", "kind": "Node",
                                                                     "name": "bench-node"}})
            ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            result = json.dumps({"version": 1, "phase": "Succeeded", "stage": "classifier", "epochs": 1,
                                 "metrics": {"accuracy": 0.9, "microF1": 0.9, "macroF1": 0.8}})
            self.api.request("PATCH", base + "/status", {"status": {
                "phase": "Succeeded", "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": ts}],
                "containerStatuses": [{"name": "trainer", "ready": False, "restartCount": 0, "image": "img",
                                       "imageID": "", "state": {"terminated": {
                                           "exitCode": 0, "reason": "Completed", "startedAt": ts, "finishedAt": ts,
                                           "message": result}}}]}}, "application/merge-patch+json")
        want = {pods[p][1] for p in share}
        while time.time() < deadline:
            with lock:
                if want <= set(finished_at):
                    break
            time.sleep(0.05)
        with lock:
            t_complete = max(finished_at[w] for w in want) - t1 if want <= set(finished_at) else float("nan")
        time.sleep(QUIET)
        if prof:
            prof.join()
        ctl_cpu = cpu_seconds(proc.pid)
        ctl_rss = rss_mb(proc.pid)
        ctl_rss_end = rss_mb(proc.pid, "VmRSS")
        api_cpu = cpu_seconds(self.apiserver_pid) - api_cpu0
        bench_requests = len(share) * 2 + 3  # binding + status per finished Pod, the node, this metrics read...
        requests = request_count(self.api) - req0 - bench_requests
        quant = histogram_quantiles(self.metrics_text(), "kubefit_reconcile_duration_seconds")
        secs = request_seconds(self.api)
        top = sorted(((v - secs0.get(k, 0.0), k) for k, v in secs.items() if k.split()[0] != "WATCH"), reverse=True)[:5]
        done.set()
        with lock:
            dup = sum(1 for o, names in owners.items() if len(names) > 1)
            missing = n - len([o for o in owners if o])
        return {"side": self.name, "n": n, "pods_s": t_pods, "settled_s": t_settled, "complete_s": t_complete,
                "completed": len(share), "ctl_cpu_s": ctl_cpu, "ctl_rss_mb": ctl_rss, "ctl_rss_end_mb": ctl_rss_end, "apiserver_cpu_s": api_cpu,
                "requests_per_object": requests / n, "reconcile_p50_s": quant[0] if quant else None,
                "reconcile_p99_s": quant[1] if quant else None, "duplicate_pods": dup, "missing_pods": missing,
                "apiserver_seconds_by_request": {k: round(v, 3) for v, k in top}}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--kubefit", required=True)
    ap.add_argument("--kcm", required=True)
    ap.add_argument("--render-pod", required=True, help="tests/contract/render_pod (the Jobs' Pod template)")
    ap.add_argument("--qps", type=int, default=1000)
    ap.add_argument("--share", type=float, default=0.1, help="share of objects whose Pod the bench finishes")
    ap.add_argument("--sides", default="kubefit,job")
    ap.add_argument("--timeout", type=float, default=1800)
    a = ap.parse_args()
    global POD_SPEC
    POD_SPEC = kubefit_pod_spec(a.render_pod)
    results = {}
    for name in a.sides.split(","):
        print(f"== {name}: N={a.n}", flush=True)
        r = Side(name, a).run(a.n)
        results[name] = r
        print(json.dumps(r), flush=True)
    bad = [r for r in results.values() if r["duplicate_pods"] or r["missing_pods"]]
    for r in bad:
        print(f"FAIL: {r['side']}: {r['duplicate_pods']} objects with more than one Pod, {r['missing_pods']} "
              "without a Pod", file=sys.stderr)
    rows = ["pods_s", "settled_s", "complete_s", "ctl_cpu_s", "ctl_rss_mb", "ctl_rss_end_mb", "apiserver_cpu_s",
            "requests_per_object",
            "reconcile_p50_s", "reconcile_p99_s"]
    print(f"{'':22}" + "".join(f"{s:>14}" for s in results))
    for k in rows:
        cells = "".join(f"{r[k]:>14.3f}" if isinstance(r[k], float) else f"{str(r[k]):>14}" for r in results.values())
        print(f"{k:22}{cells}")
    if "kubefit" in results and "job" in results:
        print(f"scale_ratio_vs_job_controller={results['job']['pods_s'] / results['kubefit']['pods_s']:.3f}")
    if "kubefit" in results:
        print(f"controller_rss_mb={results['kubefit']['ctl_rss_mb']:.1f}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
