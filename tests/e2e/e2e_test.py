#!/usr/bin/env python3
"""e2e tests: `kubectl apply -f` a TrainingJob; the real kubefit-controller creates its Pod; the
test node agent (tests/node-agent/agent.py, outcome "exec") runs the Pod's command as a local
process, the real kubefit-trainer on data/debtags-small/en; the status ends with real metrics.

Run inside tests/cluster/with-apiserver (and tests/cluster/with-gcs for the gcs scenario).
Usage: e2e_test.py local | gcs | fail
  local  file:// bucket in a temp folder; metrics, model and `kubectl get tj` checked
  gcs    gs:// bucket on fake-gcs-server; STORAGE_EMULATOR_HOST reaches the trainer only via spec.env
  fail   the language's data is missing: exit 2 -> Failed/BadInput with a clear message, no retry
Env: KUBEFIT_TRAINER_BIN, KUBEFIT_CONTROLLER_BIN (default KUBEFIT_BINARY_DIR/{trainer,controller}/...),
     KEEP=1 keeps the work folder (logs, bucket) and prints where it is.
"""
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

SRC = os.environ.get("KUBEFIT_SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("KUBEFIT_BINARY_DIR") or os.path.join(SRC, "build")
TRAINER = os.environ.get("KUBEFIT_TRAINER_BIN") or os.path.join(BIN, "trainer", "kubefit-trainer")
CONTROLLER = os.environ.get("KUBEFIT_CONTROLLER_BIN") or os.path.join(BIN, "controller", "kubefit-controller")
DATA = os.path.join(SRC, "data", "debtags-small", "en", "data")
sys.path.insert(0, os.path.join(SRC, "tests", "node-agent"))
from agent import Agent, ApiError, Kube  # noqa: E402

API = "/apis/kubefit.dev/v1alpha1"
WAIT_S = 240          # bound on one training run (about 50 s on a busy 2-core machine)
# The result (termination message) carries 4 significant digits, metrics.json 6: they agree within
# half a unit of the 4th digit, i.e. 5e-4 relative for a leading digit of 1, plus the 6-digit rounding.
RTOL = 6e-4
# A tiny AWD-LSTM that still learns some labels of debtags-small in well under a minute on 2 cores
# (micro-F1 about 0.1 at seed 1). Model size and rates go through the spec; the rest via spec.args.
SPEC = {"epochs": 4, "batchSize": 16, "learningRate": "0.05", "lmLearningRate": "0.01",
        "model": {"embSize": 32, "hiddenSize": 64, "layers": 2}, "resources": {"gpus": 0},
        "backoffLimit": 3,
        "args": ["--lm-epochs", "1", "--max-vocab", "2000", "--bptt", "32", "--seed", "1", "--threads", "2",
                 "--device", "cpu"]}

failures = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def close_to(a, ref, rtol=RTOL):
    return isinstance(a, (int, float)) and isinstance(ref, (int, float)) and abs(a - ref) <= rtol * abs(ref) + 1e-9


def real_in_unit(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and 0 < x <= 1


def kubectl(*args, timeout=60):
    return subprocess.run(["kubectl", "--kubeconfig", os.environ["KUBECONFIG"], *args], capture_output=True,
                          text=True, timeout=timeout)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def safetensors_names(blob):
    """Tensor names of a safetensors file (header checked against the file size), or None."""
    if len(blob) < 8:
        return None
    n = struct.unpack("<Q", blob[:8])[0]
    try:
        header = json.loads(blob[8:8 + n])
    except ValueError:
        return None
    try:
        ends = [t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"]
    except (TypeError, KeyError, IndexError):
        return None
    return sorted(k for k in header if k != "__metadata__") if ends and 8 + n + max(ends) == len(blob) else None


class Gcs:
    """fake-gcs-server's JSON API (STORAGE_EMULATOR_HOST), for setting up and checking the bucket."""

    def __init__(self, host):
        self.host = host.rstrip("/")

    def call(self, method, url, data=None, ctype="application/json"):
        req = urllib.request.Request(self.host + url, data=data, method=method, headers={"Content-Type": ctype})
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.read()

    def create_bucket(self, name):
        try:
            self.call("POST", "/storage/v1/b?project=e2e", json.dumps({"name": name}).encode())
        except urllib.error.HTTPError as e:
            if e.code != 409:
                raise

    def put(self, bucket, name, path):
        with open(path, "rb") as f:
            self.call("POST", f"/upload/storage/v1/b/{bucket}/o?uploadType=media&name={urllib.parse.quote(name, '')}",
                      f.read(), "application/octet-stream")

    def get(self, bucket, name):
        return self.call("GET", f"/storage/v1/b/{bucket}/o/{urllib.parse.quote(name, '')}?alt=media")


class E2E:
    """One namespace with the real controller and the exec node agent; torn down by close()."""

    def __init__(self, scenario):
        self.scenario, self.ns = scenario, f"e2e-{scenario}"
        self.dir = tempfile.mkdtemp(prefix=f"kubefit-e2e-{scenario}-")
        self.kube, self.ctl, self.agent = Kube(), None, None
        self.ctl_log = os.path.join(self.dir, "controller.log")
        self.node_dir = os.path.join(self.dir, "node")
        os.makedirs(self.node_dir)

    def start(self):
        for exe in (TRAINER, CONTROLLER):
            if not os.access(exe, os.X_OK):
                raise RuntimeError(f"{exe} is not built (cmake --build BUILD --target kubefit-trainer kubefit-controller)")
        r = kubectl("apply", "-f", os.path.join(SRC, "crds", "trainingjob.yaml"))
        if r.returncode == 0:
            r = kubectl("wait", "--for=condition=Established", "crd/trainingjobs.kubefit.dev", "--timeout=60s")
        if r.returncode != 0:
            raise RuntimeError(f"CRD not established: {r.stderr.strip()}")
        try:
            self.kube.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                              "metadata": {"name": self.ns}})
        except ApiError as e:
            if e.code != 409:
                raise
        port = free_port()
        self.port = port
        with open(self.ctl_log, "ab") as log:
            self.ctl = subprocess.Popen(
                [CONTROLLER, "--kubeconfig", os.environ["KUBECONFIG"], "--namespace", self.ns,
                 "--listen", f"127.0.0.1:{port}", "--progress-url", f"http://127.0.0.1:{port}",
                 "--leader-elect=false", "--retry-backoff", "1", "--retry-backoff-max", "2", "--resync", "5",
                 "--watch-timeout", "60", "--default-image", "kubefit-trainer:e2e"],
                stdout=log, stderr=log)
        self.wait_for(lambda: self.http(f"http://127.0.0.1:{port}/readyz") == 200, 30, "controller /readyz")
        plan = os.path.join(self.dir, "plan.json")
        with open(plan, "w") as f:
            json.dump({"default": {"outcome": "exec"}}, f)
        self.agent = Agent(self.kube, plan, node="e2e-node", namespace=self.ns, trainer=TRAINER,
                           workdir=self.node_dir, log=lambda *a: print("node-agent:", *a, flush=True)).start()

    @staticmethod
    def http(url):
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except OSError:
            return 0

    def wait_for(self, pred, timeout, what):
        end = time.time() + timeout
        while time.time() < end:
            if self.ctl and self.ctl.poll() is not None:
                raise RuntimeError(f"controller exited with {self.ctl.returncode}")
            try:
                v = pred()
                if v:
                    return v
            except (ApiError, OSError, KeyError) as e:
                print(f"waiting for {what}: {e}", flush=True)
            time.sleep(0.3)
        raise TimeoutError(f"timed out after {timeout}s waiting for {what}")

    def apply(self, name, spec):
        manifest = {"apiVersion": "kubefit.dev/v1alpha1", "kind": "TrainingJob",
                    "metadata": {"name": name, "namespace": self.ns}, "spec": spec}
        path = os.path.join(self.dir, f"{name}.yaml")
        with open(path, "w") as f:
            f.write(to_yaml(manifest) + "\n")
        r = kubectl("apply", "-f", path)
        if r.returncode != 0:
            raise RuntimeError(f"kubectl apply -f {path}: {r.stderr.strip()}")
        print(r.stdout.strip(), flush=True)

    def status(self, name):
        return self.kube.get(f"{API}/namespaces/{self.ns}/trainingjobs/{name}").get("status", {})

    def wait_condition(self, name, condition):
        """`kubectl wait` for the condition while watching the status; returns (rc, statuses seen)."""
        w = subprocess.Popen(["kubectl", "--kubeconfig", os.environ["KUBECONFIG"], "-n", self.ns, "wait",
                              f"--for=condition={condition}", f"tj/{name}", f"--timeout={WAIT_S}s"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        seen = []
        try:
            while w.poll() is None:
                try:
                    seen.append(self.status(name))
                except (ApiError, OSError) as e:
                    print(f"status read: {e}", flush=True)
                if self.ctl.poll() is not None:
                    raise RuntimeError(f"controller exited with {self.ctl.returncode}")
                time.sleep(0.5)
            print(w.stdout.read().strip(), flush=True)
        finally:
            if w.poll() is None:
                w.kill()
                w.wait()
        return w.returncode, seen

    def pods(self, job):
        return [p for p in self.kube.pods(self.ns) if p["metadata"]["labels"].get("kubefit.dev/job") == job]

    def events(self, name):
        evs = self.kube.get(f"/api/v1/namespaces/{self.ns}/events")["items"]
        return [e.get("reason") for e in evs if e.get("involvedObject", {}).get("name") == name]

    def get_tj(self, name):
        """`kubectl get tj NAME` as {column: value}."""
        r = kubectl("-n", self.ns, "get", "tj", name)
        lines = r.stdout.strip().splitlines()
        print(r.stdout.strip() or r.stderr.strip(), flush=True)
        if r.returncode != 0 or len(lines) != 2:
            return {}
        # Columns by their header offsets: an empty cell (no accuracy yet) must not shift the rest.
        starts = [i for i, ch in enumerate(lines[0]) if ch != " " and (i == 0 or lines[0][i - 1] == " ")]
        bounds = zip(starts, starts[1:] + [None])
        return {lines[0][a:b].strip(): lines[1][a:b].strip() for a, b in bounds}

    def close(self):
        if self.agent:
            self.agent.close()    # kills trainer processes still running
        if self.ctl and self.ctl.poll() is None:
            self.ctl.send_signal(signal.SIGTERM)
            try:
                self.ctl.wait(15)
            except subprocess.TimeoutExpired:
                self.ctl.kill()
                self.ctl.wait()
        if self.ctl:
            check(self.ctl.returncode == 0, f"controller shut down cleanly on SIGTERM (exit {self.ctl.returncode})")
        left = subprocess.run(["pgrep", "-f", self.dir], capture_output=True, text=True).stdout.split()
        check(not left, f"no process left that runs in {self.dir} ({left})")
        if failures:
            for path in [self.ctl_log] + [os.path.join(self.node_dir, f) for f in sorted(os.listdir(self.node_dir))
                                          if f.endswith(".log")]:
                try:
                    with open(path, errors="replace") as f:
                        tail = f.readlines()[-25:]
                    print(f"--- last lines of {path} ---\n" + "".join(tail), file=sys.stderr)
                except OSError:
                    pass
        if os.environ.get("KEEP") == "1":
            print(f"kept {self.dir}", flush=True)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def terminated(pod):
    return (pod["status"].get("containerStatuses") or [{}])[0].get("state", {}).get("terminated", {})


def ensure_data():
    if not os.path.exists(os.path.join(DATA, "train.csv")):
        print(f"{DATA}/train.csv missing: running hack/make-datasets", flush=True)
        subprocess.run([os.path.join(SRC, "hack", "make-datasets")], check=True, timeout=900)
    for f in ("train.csv", "valid.csv"):
        if not os.path.exists(os.path.join(DATA, f)):
            raise RuntimeError(f"{DATA}/{f} missing after hack/make-datasets")


def check_success(env, name, seen, read_output):
    """Checks shared by the file:// and gs:// runs. read_output(relpath) -> bytes of BUCKET/<relpath>."""
    st = env.status(name)
    m = st.get("metrics", {})
    check(st.get("phase") == "Succeeded", f"phase Succeeded (got {st.get('phase')}, {st.get('message')})")
    for k in ("accuracy", "microF1", "macroF1"):
        check(real_in_unit(m.get(k)), f"status.metrics.{k} is a real number in (0,1]: {m.get(k)}")
    check(any(s.get("phase") == "Running" for s in seen), "status went through Running")
    prog = st.get("progress", {})
    check(prog.get("stage") == "classifier" and isinstance(prog.get("step"), int),
          f"the trainer's progress reached status.progress: {prog}")
    # The trainer wrote these itself; status must carry the same numbers.
    out = f"models/en/{name}/1/"
    metrics_json = json.loads(read_output(out + "metrics.json"))
    overall = metrics_json.get("overall", {})
    for k in ("accuracy", "microF1", "macroF1", "validLoss"):
        check(close_to(m.get(k), overall.get(k)), f"status.metrics.{k} {m.get(k)} == metrics.json {overall.get(k)}")
    check(metrics_json.get("epochs") == SPEC["epochs"], f"metrics.json epochs {metrics_json.get('epochs')} == spec.epochs")
    # The trainer ran with what the spec (fields and args) asked for.
    config = json.loads(read_output(out + "config.json"))
    want = {"lang": "en", "job": name, "run": "1", "epochs": SPEC["epochs"], "lmEpochs": 1,
            "batchSize": SPEC["batchSize"], "embSize": 32, "hiddenSize": 64, "layers": 2, "maxVocab": 2000,
            "bptt": 32, "seed": 1, "device": "cpu"}
    got = {k: config.get(k) for k in want}
    check(got == want, f"config.json has the spec's settings: {got}")
    check(close_to(config.get("lr"), 0.05, 1e-12) and close_to(config.get("lmLr"), 0.01, 1e-12),
          f"config.json lr {config.get('lr')}, lmLr {config.get('lmLr')} from spec.learningRate/lmLearningRate")
    names = safetensors_names(read_output(out + "model.safetensors"))
    check(bool(names), f"model.safetensors is a valid safetensors file ({len(names or [])} tensors)")
    check(st.get("modelURI", "").endswith(out + "model.safetensors"), f"status.modelURI {st.get('modelURI')}")
    check(st.get("metricsURI", "").endswith(out + "metrics.json"), f"status.metricsURI {st.get('metricsURI')}")
    pods = env.pods(name)
    check(len(pods) == 1, f"one Pod for the run ({[p['metadata']['name'] for p in pods]})")
    term = terminated(pods[0]) if pods else {}
    check(term.get("exitCode") == 0, f"the trainer process exited 0 (got {term.get('exitCode')})")
    try:
        result = json.loads(term.get("message") or "{}")
    except ValueError:
        result = {}
    rm = result.get("metrics") or {}
    check(len(rm) >= 3 and all(m.get(k) == v for k, v in rm.items()),
          f"status.metrics carries the trainer's termination message exactly: {rm}")
    check("Succeeded" in env.events(name), f"a Succeeded Event for the job ({env.events(name)})")
    row = env.get_tj(name)
    check(row.get("PHASE") == "Succeeded", f"kubectl get tj shows PHASE Succeeded: {row}")
    try:
        acc = float(row.get("ACCURACY", "nan"))
    except ValueError:
        acc = float("nan")
    check(close_to(acc, m.get("accuracy"), 1e-9), f"kubectl get tj shows ACCURACY {row.get('ACCURACY')}")
    return st


def scenario_local(env):
    bucket = os.path.join(env.dir, "bucket")
    shutil.copytree(DATA, os.path.join(bucket, "en", "data"))
    spec = dict(SPEC, language="en", storage={"bucket": "file://" + bucket})
    env.apply("local", spec)
    rc, seen = env.wait_condition("local", "Succeeded")
    check(rc == 0, f"kubectl wait --for=condition=Succeeded tj/local (exit {rc})")

    def read(rel):
        with open(os.path.join(bucket, rel), "rb") as f:
            return f.read()
    st = check_success(env, "local", seen, read)
    check(st.get("modelURI") == f"file://{bucket}/models/en/local/1/model.safetensors", "modelURI is the file:// URI")
    check(os.path.getsize(os.path.join(bucket, "models/en/local/1/model.safetensors")) > 0, "model file exists")


def scenario_gcs(env):
    host = os.environ.get("STORAGE_EMULATOR_HOST")
    if not host:
        raise RuntimeError("STORAGE_EMULATOR_HOST unset: run under tests/cluster/with-gcs")
    # Only the TrainingJob's spec.env may tell the trainer where the emulator is.
    del os.environ["STORAGE_EMULATOR_HOST"]
    gcs, bucket = Gcs(host), "kubefit-e2e"
    gcs.create_bucket(bucket)
    for f in ("train.csv", "valid.csv"):
        gcs.put(bucket, f"en/data/{f}", os.path.join(DATA, f))
    spec = dict(SPEC, language="en", storage={"bucket": f"gs://{bucket}"},
                env=[{"name": "STORAGE_EMULATOR_HOST", "value": host}])
    env.apply("gcs", spec)
    rc, seen = env.wait_condition("gcs", "Succeeded")
    check(rc == 0, f"kubectl wait --for=condition=Succeeded tj/gcs (exit {rc})")
    st = check_success(env, "gcs", seen, lambda rel: gcs.get(bucket, rel))
    check(st.get("modelURI") == f"gs://{bucket}/models/en/gcs/1/model.safetensors", "modelURI is the gs:// URI")


def scenario_fail(env):
    bucket = os.path.join(env.dir, "empty-bucket")
    os.makedirs(bucket)
    env.apply("nodata", dict(SPEC, language="en", storage={"bucket": "file://" + bucket}))
    rc, _ = env.wait_condition("nodata", "Failed")
    check(rc == 0, f"kubectl wait --for=condition=Failed tj/nodata (exit {rc})")
    time.sleep(4)  # retry backoff is 1-2 s: a retry would have created a second Pod by now
    st = env.status("nodata")
    msg = st.get("message", "")
    check(st.get("phase") == "Failed" and st.get("reason") == "BadInput",
          f"phase Failed, reason BadInput (got {st.get('phase')}, {st.get('reason')})")
    check("exit code 2" in msg and "en/data/train.csv" in msg, f"message names the exit code and the missing file: {msg}")
    check(st.get("attempts") == 1, f"no retry: attempts {st.get('attempts')}")
    pods = env.pods("nodata")
    check(len(pods) == 1, f"exactly one Pod ({[p['metadata']['name'] for p in pods]})")
    term = terminated(pods[0]) if pods else {}
    check(term.get("exitCode") == 2, f"the trainer process exited 2 (got {term.get('exitCode')})")
    check("BadInput" in env.events("nodata"), f"a BadInput Event for the job ({env.events('nodata')})")
    row = env.get_tj("nodata")
    check(row.get("PHASE") == "Failed" and row.get("ACCURACY") == "", f"kubectl get tj shows PHASE Failed, no accuracy: {row}")


def main():
    scenario = sys.argv[1] if len(sys.argv) > 1 else ""
    run = globals().get("scenario_" + scenario)
    if not run:
        print(__doc__, file=sys.stderr)
        return 2
    # ctest's timeout and the harness's watchdog stop us with SIGTERM: clean up as on any failure.
    def on_term(*_):
        print("FAIL: interrupted (SIGTERM): cleaning up", flush=True)
        sys.exit(143)
    signal.signal(signal.SIGTERM, on_term)
    env = E2E(scenario)
    started = time.time()
    try:
        ensure_data()
        env.start()
        run(env)
    except Exception as e:  # a timeout, an API error, a missing tool: a failure with its reason
        check(False, f"{type(e).__name__}: {e}")
    finally:
        env.close()
    print(f"e2e {scenario}: {len(failures)} failed, {time.time() - started:.1f} s", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
