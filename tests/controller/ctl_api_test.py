#!/usr/bin/env python3
"""apiserver tests: the real kubefit-controller binary against a real kube-apiserver + etcd.

Run inside tests/cluster/with-apiserver (which exports KUBECONFIG, KUBE_APISERVER_URL, KUBE_TOKEN,
KUBE_CA_FILE, KUBE_CLUSTER_DIR). The test node agent (tests/node-agent/agent.py) plays the kubelet.
Usage: ctl_api_test.py SCENARIO   (success | retries | lifecycle | restart | compaction | leader | exec | stuck |
                                   serving)
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

SRC = os.environ.get("KUBEFIT_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.environ.get("KUBEFIT_BINARY_DIR", os.path.join(SRC, "build"))
sys.path.insert(0, os.path.join(SRC, "tests", "node-agent"))
from agent import Agent, ApiError, Kube  # noqa: E402

API = "/apis/kubefit.dev/v1alpha1"
failures = []


def check(cond, what):
    if cond:
        print(f"ok: {what}", flush=True)
    else:
        print(f"FAIL: {what}", flush=True)
        failures.append(what)
    return cond


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def kubectl(*args, check_rc=True, timeout=60):
    r = subprocess.run(["kubectl", "--kubeconfig", os.environ["KUBECONFIG"], *args], capture_output=True, text=True,
                       timeout=timeout)
    if check_rc and r.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {r.stderr.strip()}")
    return r


class Controller:
    """One kubefit-controller process with its own port and log."""

    def __init__(self, env, name="ctl", extra=()):
        self.env, self.name = env, name
        self.port = free_port()
        self.log_path = os.path.join(env.dir, f"{name}.log")
        self.extra = list(extra)
        self.proc = None

    def start(self):
        exe = os.path.join(BIN, "controller", "kubefit-controller")
        args = [exe, "--kubeconfig", os.environ["KUBECONFIG"], "--listen", f"127.0.0.1:{self.port}",
                "--progress-url", f"http://127.0.0.1:{self.port}", "--retry-backoff", "1", "--retry-backoff-max", "2",
                "--lease-namespace", "default", "--lease-duration", "3", "--renew-deadline", "2",
                "--retry-period", "0.3", "--identity", self.name, "--default-image", "kubefit-trainer:test",
                "--watch-timeout", "30", *self.extra]
        self.logf = open(self.log_path, "a")
        self.proc = subprocess.Popen(args, stdout=self.logf, stderr=self.logf)
        wait_for(lambda: self.http("/readyz")[0] == 200, 20, f"{self.name} ready")
        return self

    def http(self, path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError:
            return 0, ""

    def metric(self, name):
        code, text = self.http("/metrics")
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        return None

    def stop(self, sig=signal.SIGTERM):
        if not self.proc:
            return None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        self.logf.close()
        return rc

    def log_tail(self, n=40):
        try:
            with open(self.log_path) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


def wait_for(pred, timeout, what):
    end = time.time() + timeout
    last = None
    while time.time() < end:
        try:
            last = pred()
            if last:
                return last
        except (ApiError, OSError, KeyError, TypeError) as e:
            last = e
        time.sleep(0.1)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last: {last})")


class Env:
    def __init__(self, scenario):
        self.kube = Kube()
        self.dir = tempfile.mkdtemp(prefix=f"kubefit-ctl-{scenario}-")
        self.ns = f"t-{scenario}"
        self.plan_file = os.path.join(self.dir, "plan.json")
        self.set_plan({"default": {"outcome": "succeed"}})
        kubectl("apply", "-f", os.environ.get("KUBEFIT_CRD") or os.path.join(SRC, "crds", "trainingjob.yaml"))
        subprocess.run([os.path.join(SRC, "tests", "cluster", "crd-established"), "trainingjobs.kubefit.dev", "30"],
                       check=True)
        try:
            self.kube.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                              "metadata": {"name": self.ns}})
        except ApiError as e:
            if e.code != 409:
                raise
        self.agent = Agent(self.kube, self.plan_file, namespace=self.ns, log=lambda *a: None).start()
        self.controllers = []

    def set_plan(self, plan):
        tmp = self.plan_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(plan, f)
        os.replace(tmp, self.plan_file)

    def controller(self, name="ctl", extra=()):
        c = Controller(self, name, extra).start()
        self.controllers.append(c)
        return c

    def job(self, name, **spec):
        body = {"apiVersion": "kubefit.dev/v1alpha1", "kind": "TrainingJob", "metadata": {"name": name},
                "spec": {"language": "fr", "epochs": 2, "storage": {"bucket": "gs://bucket"}, "resources": {"gpus": 1}}}
        annotations = spec.pop("annotations", None)
        if annotations:
            body["metadata"]["annotations"] = annotations
        body["spec"].update(spec)
        return self.kube.request("POST", f"{API}/namespaces/{self.ns}/trainingjobs", body)

    def get(self, name):
        return self.kube.get(f"{API}/namespaces/{self.ns}/trainingjobs/{name}")

    def patch(self, name, patch):
        return self.kube.merge_patch(f"{API}/namespaces/{self.ns}/trainingjobs/{name}", patch)

    def status(self, name):
        return self.get(name).get("status", {})

    def wait_phase(self, name, phase, timeout=20):
        return wait_for(lambda: self.status(name).get("phase") == phase and self.status(name), timeout,
                        f"{name} phase {phase}")

    def pods(self, job):
        return sorted(p["metadata"]["name"] for p in self.kube.pods(self.ns)
                      if p["metadata"]["labels"].get("kubefit.dev/job") == job)

    def events(self, name):
        evs = self.kube.get(f"/api/v1/namespaces/{self.ns}/events")["items"]
        return [e["reason"] for e in evs if e["involvedObject"]["name"] == name]

    def close(self):
        for c in self.controllers:
            if c.proc:
                c.stop()
        self.agent.close()
        if failures:
            for c in self.controllers:
                print(f"--- {c.name} log tail ---\n{c.log_tail()}", file=sys.stderr)


def cond(status, ctype):
    return next((c["status"] for c in status.get("conditions", []) if c["type"] == ctype), None)


# ---------------------------------------------------------------------------------------------

def scenario_success(env):
    ctl = env.controller()
    env.set_plan({"default": {"outcome": "succeed", "runSeconds": 2.5,
                              "progress": [{"stage": "finetune-lm", "epoch": 1, "epochs": 2, "step": 10, "steps": 40,
                                            "loss": 4.2, "percent": 25.0, "etaSeconds": 3}]}})
    env.job("ok", resources={"gpus": 1, "acceleratorType": "nvidia-h100-80gb", "spot": True},
            serviceAccountName="trainer")
    # kubectl wait, started before the job finishes, returns when Succeeded is True.
    waiter = subprocess.Popen(["kubectl", "--kubeconfig", os.environ["KUBECONFIG"], "-n", env.ns, "wait",
                               "--for=condition=Succeeded", "tj/ok", "--timeout=40s"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    st = env.wait_phase("ok", "Running")
    check(cond(st, "Running") == "True", "Running condition True while the Pod runs")
    check(st.get("startTime") is not None, "startTime set")
    prog = wait_for(lambda: env.status("ok").get("progress"), 10, "progress in status")
    check(prog.get("stage") == "finetune-lm" and prog.get("percent") == 25.0, f"progress reaches status: {prog}")
    st = env.wait_phase("ok", "Succeeded")
    out, _ = waiter.communicate(timeout=40)
    check(waiter.returncode == 0, f"kubectl wait --for=condition=Succeeded returned 0 ({out.strip()})")
    m = st.get("metrics", {})
    check(m.get("accuracy") == 0.875 and m.get("macroF1") == 0.62, f"metrics in status: {m}")
    check(m.get("labels", [{}])[0].get("name") == "pos", "per-label metrics in status")
    check(st.get("modelURI") == "gs://bucket/models/fr/ok/1/model.safetensors", f"modelURI {st.get('modelURI')}")
    check(st.get("metricsURI", "").endswith("/ok/1/metrics.json"), "metricsURI")
    check(st.get("completionTime") is not None, "completionTime set")
    check(cond(st, "Succeeded") == "True" and cond(st, "Failed") == "False", "conditions Succeeded/Failed")
    check(st.get("observedGeneration") == 1, "observedGeneration")
    check(len(st.get("runs", [])) == 1 and st["runs"][0].get("accuracy") == 0.875, "runs[] history")
    pod = env.kube.get(f"/api/v1/namespaces/{env.ns}/pods/ok-1-1")
    c = pod["spec"]["containers"][0]
    owner = pod["metadata"]["ownerReferences"][0]
    check(owner["kind"] == "TrainingJob" and owner["controller"] is True, "Pod ownerReference controller=true")
    check(c["resources"]["limits"].get("nvidia.com/gpu") == "1", "GPU limit")
    check(pod["spec"]["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb",
                                          "cloud.google.com/gke-spot": "true"}, "node selector")
    check(pod["spec"]["serviceAccountName"] == "trainer", "service account")
    check(c["terminationMessagePolicy"] == "FallbackToLogsOnError", "termination message policy")
    check(c["args"][:3] == ["train", "--lang", "fr"], f"args {c['args'][:6]}")
    check(wait_for(lambda: "Succeeded" in env.events("ok"), 5, "Succeeded event"), "Event recorded")
    # kubectl get tj shows the printer columns.
    out = kubectl("-n", env.ns, "get", "tj").stdout
    header = out.splitlines()[0].split()
    check(header == ["NAME", "PHASE", "LANGUAGE", "ACCURACY", "MICRO-F1", "AGE"], f"kubectl get tj columns: {header}")
    row = out.splitlines()[1].split()
    check(row[:5] == ["ok", "Succeeded", "fr", "0.875", m.get("microF1") and str(m["microF1"])],
          f"kubectl get tj row: {row}")
    # Nothing written when nothing changed (resync reconciles again).
    rv = env.get("ok")["metadata"]["resourceVersion"]
    time.sleep(3)
    check(env.get("ok")["metadata"]["resourceVersion"] == rv, "no writes for an unchanged job")
    check(ctl.metric("kubefit_pods_created_total") == 1, "metrics: one Pod created")
    check(ctl.http("/healthz")[0] == 200, "/healthz")
    rc = ctl.stop()
    check(rc == 0, f"clean SIGTERM exit (rc {rc})")
    check('"msg":"stopped"' in ctl.log_tail(), "logged stop")


def scenario_retries(env):
    env.controller()
    env.set_plan({"r-1-1": {"outcome": "fail", "exitCode": 1, "message": "CUDA error"},
                  "r-1-2": {"outcome": "preempt"},
                  "r-1-3": {"outcome": "fail", "exitCode": 3, "message": "storage unavailable"},
                  "r-1-4": {"outcome": "succeed"},
                  "lim-": {"outcome": "fail", "exitCode": 1, "message": "always"},
                  "bad-": {"outcome": "fail", "exitCode": 2, "message": "train.csv: missing"},
                  "default": {"outcome": "succeed"}})
    env.job("r", backoffLimit=2)
    env.job("lim", backoffLimit=1)
    env.job("bad", backoffLimit=5)
    st = env.wait_phase("r", "Succeeded", 30)
    check(st.get("attempts") == 4, f"r: 4 attempts ({st.get('attempts')})")
    check(st.get("failures") == 2, f"r: preemption not counted, 2 failures ({st.get('failures')})")
    check(env.pods("r") == ["r-1-1", "r-1-2", "r-1-3", "r-1-4"], f"r: Pods {env.pods('r')}")
    ev = env.events("r")
    check("Preempted" in ev and "AttemptFailed" in ev, f"r: events {ev}")
    st = env.wait_phase("lim", "Failed", 30)
    check(st.get("reason") == "BackoffLimitExceeded" and st.get("attempts") == 2, f"lim: {st.get('reason')} {st.get('attempts')}")
    check("always" in st.get("message", ""), "lim: message carries the trainer's")
    check(cond(st, "Failed") == "True", "lim: Failed condition")
    st = env.wait_phase("bad", "Failed", 15)
    check(st.get("reason") == "BadInput" and st.get("attempts") == 1, "bad: exit 2 = BadInput, no retry")
    check("train.csv: missing" in st.get("message", ""), "bad: message from the result")
    # A Pod the API server refuses fails the job with the server's reason instead of looping.
    try:
        env.job("rej", image=" padded-image")
    except ApiError as e:
        check(e.code == 422, "rej: the schema refused the job already")
    else:
        st = env.wait_phase("rej", "Failed", 15)
        check(st.get("reason") == "PodRejected" and "image" in st.get("message", ""),
              f"rej: Failed/PodRejected: {st.get('message', '')[:120]}")


def scenario_stuck(env):
    # A container that cannot start: its reason reaches status (and an Event) at once, and the run
    # fails after --pod-start-timeout with that reason; the stuck Pod is deleted, no retry is made.
    env.controller(extra=["--pod-start-timeout", "4"])
    env.set_plan({"img-": {"outcome": "waiting", "reason": "ImagePullBackOff",
                           "message": 'Back-off pulling image "registry.invalid/trainer:1"'},
                  "bad-": {"outcome": "waiting", "reason": "InvalidImageName",
                           "message": 'Failed to apply default image tag "UPPER/Case": invalid reference format'}})
    t0 = time.time()
    env.job("img", image="registry.invalid/trainer:1")
    st = wait_for(lambda: env.status("img").get("reason") == "ImagePullBackOff" and env.status("img"), 10,
                  "the waiting reason in status")
    check(st.get("phase") == "Pending" and "Back-off pulling image" in st.get("message", ""),
          f"Pending with the kubelet's message: {st.get('message')}")
    check(cond(st, "Running") == "False", "Running condition False while the image cannot be pulled")
    check(wait_for(lambda: "ImagePullBackOff" in env.events("img"), 5, "event"), "a Warning Event names the reason")
    st = env.wait_phase("img", "Failed", timeout=20)
    check(st.get("reason") == "ImagePullBackOff" and cond(st, "Failed") == "True",
          f"Failed with reason ImagePullBackOff: {st.get('reason')}: {st.get('message')}")
    check(time.time() - t0 >= 4, "not before the pod start timeout")
    check(st.get("attempts") == 1, f"no retry for a Pod that cannot start (attempts {st.get('attempts')})")
    check(wait_for(lambda: env.pods("img") == [] or all(
        env.kube.get(f"/api/v1/namespaces/{env.ns}/pods/{p}")["metadata"].get("deletionTimestamp")
        for p in env.pods("img")), 10, "pod deleted"), "the stuck Pod is deleted")
    # InvalidImageName never heals: failed at once.
    t0 = time.time()
    env.job("bad", image="UPPER/Case")
    st = env.wait_phase("bad", "Failed", timeout=10)
    check(st.get("reason") == "InvalidImageName" and "invalid reference format" in st.get("message", ""),
          f"InvalidImageName fails the run: {st.get('message')}")
    check(time.time() - t0 < 4, "at once, without waiting for the timeout")


def scenario_lifecycle(env):
    env.controller()
    env.set_plan({"dl-": {"outcome": "run"}, "s-1-1": {"outcome": "run"}, "default": {"outcome": "succeed"}})
    # Deadline.
    env.job("dl", activeDeadlineSeconds=2)
    st = env.wait_phase("dl", "Failed", 15)
    check(st.get("reason") == "DeadlineExceeded", "deadline -> Failed DeadlineExceeded")
    wait_for(lambda: env.pods("dl") == [], 10, "deadline Pod deleted")
    # Suspend / resume.
    env.job("s")
    env.wait_phase("s", "Running")
    env.patch("s", {"spec": {"suspend": True}})
    st = env.wait_phase("s", "Suspended")
    check(cond(st, "Suspended") == "True", "Suspended condition")
    wait_for(lambda: env.pods("s") == [], 10, "suspended Pod deleted")
    env.patch("s", {"spec": {"suspend": False}})
    st = env.wait_phase("s", "Succeeded", 20)
    check(cond(st, "Suspended") == "False" and st.get("currentRun") == 1, "resumed in the same run")
    check(env.pods("s") == ["s-1-2"], f"resume made attempt 2: {env.pods('s')}")
    # Spec change -> new run; retrain annotation -> another.
    env.job("c")
    env.wait_phase("c", "Succeeded")
    env.patch("c", {"spec": {"epochs": 3}})
    st = wait_for(lambda: env.status("c").get("currentRun") == 2 and env.status("c").get("phase") == "Succeeded"
                  and env.status("c"), 20, "c run 2 succeeded")
    check(len(st.get("runs", [])) == 2, "runs[] keeps both runs")
    pod = env.kube.get(f"/api/v1/namespaces/{env.ns}/pods/c-2-1")
    args = pod["spec"]["containers"][0]["args"]
    check(args[args.index("--epochs") + 1] == "3", "run 2 uses the new epochs")
    env.patch("c", {"metadata": {"annotations": {"kubefit.dev/retrain": "again"}}})
    wait_for(lambda: env.status("c").get("currentRun") == 3 and env.status("c").get("phase") == "Succeeded", 20,
             "retrain annotation -> run 3")
    check(True, "retrain annotation starts run 3")
    # TTL.
    env.job("ttl", ttlSecondsAfterFinished=1)
    env.wait_phase("ttl", "Succeeded")

    def gone():
        try:
            env.get("ttl")
            return False
        except ApiError as e:
            return e.code == 404
    check(wait_for(gone, 15, "ttl job deleted"), "TTL deleted the finished job")


def scenario_restart(env):
    # Controller restarted mid-run: no duplicate Pod, status completes.
    ctl = env.controller(extra=["--resync", "600"])
    env.set_plan({"x-": {"outcome": "run"}, "default": {"outcome": "succeed"}})
    env.job("x")
    env.wait_phase("x", "Running")
    check(ctl.stop() == 0, "controller stopped cleanly mid-run")
    env.set_plan({"default": {"outcome": "succeed"}})
    wait_for(lambda: env.kube.get(f"/api/v1/namespaces/{env.ns}/pods/x-1-1")["status"]["phase"] == "Succeeded", 10,
             "Pod finished while the controller was down")
    ctl2 = env.controller("ctl2", extra=["--resync", "600"])
    st = env.wait_phase("x", "Succeeded")
    check(env.pods("x") == ["x-1-1"], f"no duplicate Pod after restart: {env.pods('x')}")
    check(st.get("metrics", {}).get("accuracy") == 0.875, "status completed after restart")
    # API server restarted mid-watch: a job created right after comes through the new watch.
    env.set_plan({"default": {"outcome": "succeed"}})
    d = os.environ["KUBE_CLUSTER_DIR"]
    subprocess.run([os.path.join(SRC, "tests", "cluster", "apiserver-restart"), d], check=True,
                   capture_output=True, timeout=120)
    env.job("y")
    env.wait_phase("y", "Succeeded", 40)
    check(True, "job created after an API server restart succeeds (watch resumed, resync off)")
    restarts = ctl2.metric('kubefit_watch_restarts_total{resource="trainingjobs"}')
    check(restarts is not None and restarts >= 1, f"the watch reconnected ({restarts})")


def scenario_compaction(env):
    # With --watch-cache=false (set by the ctest) watches go straight to etcd: after compaction a
    # resume from an old resourceVersion answers 410, and the informer relists.
    ctl = env.controller(extra=["--resync", "600"])
    env.job("a")
    env.wait_phase("a", "Succeeded")
    before = ctl.metric('kubefit_relists_total{resource="trainingjobs"}')
    d = os.environ["KUBE_CLUSTER_DIR"]
    # Move etcd on and compact it; the restarted API server then refuses the old resourceVersion.
    for i in range(20):
        env.kube.request("POST", f"/api/v1/namespaces/{env.ns}/configmaps",
                         {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"filler-{i}"}})
    subprocess.run([os.path.join(SRC, "tests", "cluster", "etcd-compact"), d], check=True, capture_output=True,
                   timeout=60)
    subprocess.run([os.path.join(SRC, "tests", "cluster", "apiserver-restart"), d], check=True, capture_output=True,
                   timeout=120)
    env.job("b")
    env.wait_phase("b", "Succeeded", 40)
    after = wait_for(lambda: ctl.metric('kubefit_relists_total{resource="trainingjobs"}'), 5, "metric")
    check(after > before, f"relisted after 410 ({before} -> {after})")
    check('"watch expired, relisting"' in ctl.log_tail(200), "log says the watch expired (410)")
    check(env.status("a").get("phase") == "Succeeded", "state still correct for the older job")


def scenario_leader(env):
    a = env.controller("ctl-a")
    wait_for(lambda: a.metric("kubefit_leader") == 1, 10, "ctl-a leads")
    b = env.controller("ctl-b")
    time.sleep(1)
    check(b.metric("kubefit_leader") == 0, "ctl-b stands by")
    env.job("l1")
    env.wait_phase("l1", "Succeeded")
    check(b.metric("kubefit_reconcile_total") == 0, "the standby reconciles nothing")
    t0 = time.time()
    check(a.stop() == 0, "leader stopped (releases the Lease)")
    wait_for(lambda: b.metric("kubefit_leader") == 1, 10, "ctl-b takes over")
    check(time.time() - t0 < 5, f"takeover in {time.time() - t0:.1f}s")
    env.job("l2")
    env.wait_phase("l2", "Succeeded")
    check(env.pods("l1") == ["l1-1-1"], "no duplicate Pods across leaders")


def scenario_exec(env):
    # The agent's e2e mode: the Pod's command runs as a local process; its result file becomes the
    # termination message, its exit code the phase. A stand-in trainer honours docs/contract.md.
    fake = os.path.join(env.dir, "fake-trainer.sh")
    with open(fake, "w") as f:
        f.write("""#!/bin/sh
# stand-in for kubefit-trainer: checks its flags, writes a contract result
shift  # train
while [ $# -gt 0 ]; do case "$1" in
  --lang) lang=$2; shift;; --job) job=$2; shift;; --run) run=$2; shift;; --result-file) out=$2; shift;;
  --epochs) [ "$2" -gt 0 ] || { echo "bad --epochs $2" >&2; exit 2; }; shift;; esac; shift; done
echo '{"stage":"classifier","epoch":1,"epochs":1,"percent":100}'
[ "$KUBEFIT_RUN" = "$run" ] || exit 9
printf '{"version":1,"phase":"Succeeded","metrics":{"accuracy":0.5},"modelURI":"file:///m/%s/%s/%s/model.safetensors"}' \
  "$lang" "$job" "$run" > "$out"
""")
    os.chmod(fake, 0o755)
    env.agent.close()
    env.agent = Agent(env.kube, env.plan_file, namespace=env.ns, log=lambda *a: None, trainer=fake,
                      workdir=env.dir).start()
    env.set_plan({"default": {"outcome": "exec"}})
    env.controller()
    env.job("e", resources={"gpus": 0})
    st = env.wait_phase("e", "Succeeded", 30)
    check(st.get("metrics", {}).get("accuracy") == 0.5, f"exec: metrics from the process's result {st.get('metrics')}")
    check(st.get("modelURI") == "file:///m/fr/e/1/model.safetensors", f"exec: modelURI {st.get('modelURI')}")
    env.patch("e", {"spec": {"command": ["/bin/sh", "-c", "echo boom >&2; exit 3", "sh"], "image": "x"}})
    st = wait_for(lambda: env.status("e").get("currentRun") == 2 and env.status("e").get("failures", 0) >= 1
                  and env.status("e"), 20, "e run 2 failing")
    check("boom" in st.get("message", ""), f"exec: logs as the message on failure (FallbackToLogsOnError): {st.get('message')}")


def scenario_serving(env):
    # spec.serving on a scheduled job: run 1 (micro-F1 0.80) is served; the next tick's run 2 (0.86)
    # beats it by more than minImprovement and is rolled out; run 3 (0.83) regresses and is not.
    # There is no Deployment controller here: the test plays it by writing the Deployment's status.
    env.controller()
    def result(run, f1):
        base = f"gs://bucket/models/fr/sv/{run}"
        return {"outcome": "succeed", "result": {
            "version": 1, "phase": "Succeeded", "stage": "classifier", "epochs": 2,
            "metrics": {"subsetAccuracy": 0.5, "labelAccuracy": 0.9, "microF1": f1, "macroF1": f1 - 0.1},
            "modelURI": base + "/model.safetensors", "metricsURI": base + "/metrics.json"}}
    env.set_plan({"sv-1-": result(1, 0.80), "sv-2-": result(2, 0.86), "sv-3-": result(3, 0.83),
                  "default": {"outcome": "succeed"}})
    env.job("sv", schedule="* * * * *", serving={"replicas": 2, "resources": {"cpu": "500m"},
                                                 "promote": {"metric": "microF1", "minImprovement": 0.01}})
    deps = f"/apis/apps/v1/namespaces/{env.ns}/deployments"
    svcs = f"/api/v1/namespaces/{env.ns}/services"

    def deployment():
        try:
            return env.kube.get(deps + "/sv-serve")
        except ApiError as e:
            if e.code == 404:
                return None
            raise

    def served_uri(d):
        args = d["spec"]["template"]["spec"]["containers"][0]["args"] if d else []
        return args[args.index("--model-uri") + 1] if "--model-uri" in args else None

    def make_ready(d):
        n = d["spec"]["replicas"]
        env.kube.merge_patch(deps + "/sv-serve/status", {"status": {
            "observedGeneration": d["metadata"]["generation"], "replicas": n, "updatedReplicas": n,
            "readyReplicas": n, "availableReplicas": n}})

    st = wait_for(lambda: env.status("sv").get("serving", {}).get("run") == 1 and env.status("sv"), 30, "run 1 served")
    d = wait_for(lambda: served_uri(deployment()) and deployment(), 10, "the Deployment")
    check(served_uri(d) == "gs://bucket/models/fr/sv/1/model.safetensors", f"Deployment serves run 1: {served_uri(d)}")
    owner = d["metadata"]["ownerReferences"][0]
    check(owner["kind"] == "TrainingJob" and owner["name"] == "sv" and owner["controller"] is True,
          "Deployment owned by the job")
    c = d["spec"]["template"]["spec"]["containers"][0]
    check(d["spec"]["replicas"] == 2 and c["image"] == "kubefit-trainer:test" and c["command"] == ["kubefit-serve"]
          and c["resources"]["requests"]["cpu"] == "500m", f"Deployment spec: replicas, image, command, cpu")
    check(d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0 and
          c["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready", "rolling update behind the readiness probe")
    svc = env.kube.get(svcs + "/sv-serve")
    check(svc["spec"]["selector"] == d["spec"]["selector"]["matchLabels"] and svc["spec"]["ports"][0]["port"] == 8080,
          "Service selects the Deployment's Pods on 8080")
    check(st["serving"]["url"] == f"http://sv-serve.{env.ns}.svc:8080" and st["serving"]["value"] == 0.80,
          f"status.serving: {st['serving']}")
    check(cond(st, "Promoted") == "True", "Promoted condition True")
    check(env.pods("sv") == ["sv-1-1"], f"serving Pods are not the node agent's (trainer Pods {env.pods('sv')})")
    make_ready(d)
    st = wait_for(lambda: cond(env.status("sv"), "Serving") == "True" and env.status("sv"), 10, "Serving Available")
    check(st["serving"]["readyReplicas"] == 2, "readyReplicas from the Deployment's status")
    check(wait_for(lambda: "Promoted" in env.events("sv"), 5, "Promoted Event"), "Event Promoted")

    # spec.serving changes start no run; the Deployment follows.
    env.patch("sv", {"spec": {"serving": {"replicas": 1}}})
    wait_for(lambda: (deployment() or {}).get("spec", {}).get("replicas") == 1, 10, "replicas 1")
    check(env.status("sv").get("currentRun") == 1, "changing spec.serving starts no run")

    # The next tick: run 2 improves (0.86 > 0.80 + 0.01) and is rolled out.
    st = wait_for(lambda: env.status("sv").get("serving", {}).get("run") == 2 and env.status("sv"), 75,
                  "the scheduled run 2 promoted")
    check(st.get("currentRun") == 2 and st["serving"]["lastEvaluatedRun"] == 2, "run 2 came from the schedule")
    d = wait_for(lambda: served_uri(deployment()) == "gs://bucket/models/fr/sv/2/model.safetensors" and deployment(), 10,
                 "Deployment rolled to run 2")
    check(True, "a scheduled retrain that improves is rolled out")
    check(cond(st, "Serving") == "False", "Serving False while run 2 rolls out")
    make_ready(d)
    wait_for(lambda: cond(env.status("sv"), "Serving") == "True", 10, "run 2 available")

    # The tick after: run 3 regresses (0.83 < 0.86): not served, said why.
    st = wait_for(lambda: env.status("sv").get("serving", {}).get("lastEvaluatedRun") == 3 and env.status("sv"), 75,
                  "the scheduled run 3 evaluated")
    check(st["serving"]["run"] == 2 and st["serving"]["value"] == 0.86, "a scheduled retrain that regresses is not served")
    promoted = next(c for c in st["conditions"] if c["type"] == "Promoted")
    check(promoted["status"] == "False" and promoted["reason"] == "PromotionSkipped" and
          "run 2 keeps serving" in promoted["message"], f"Promoted False PromotionSkipped: {promoted['message']}")
    check(wait_for(lambda: "PromotionSkipped" in env.events("sv"), 5, "PromotionSkipped Event"), "Event PromotionSkipped")
    time.sleep(1)
    check(served_uri(deployment()) == "gs://bucket/models/fr/sv/2/model.safetensors", "the Deployment still serves run 2")

    # Serving off: the objects and status.serving go; the job keeps its schedule.
    env.patch("sv", {"spec": {"serving": {"enabled": False}}})
    wait_for(lambda: deployment() is None, 15, "Deployment deleted")
    def svc_gone():
        try:
            env.kube.get(svcs + "/sv-serve")
            return False
        except ApiError as e:
            return e.code == 404
    check(wait_for(svc_gone, 15, "Service deleted"), "serving off deletes the Deployment and the Service")
    st = wait_for(lambda: "serving" not in env.status("sv") and env.status("sv"), 10, "status.serving gone")
    check(cond(st, "Serving") is None, "Serving condition gone")


def main():
    scenario = sys.argv[1] if len(sys.argv) > 1 else "success"
    env = Env(scenario)
    try:
        globals()["scenario_" + scenario](env)
    except Exception as e:  # a timeout or API error is a failure with its reason, not a crash
        failures.append(f"{type(e).__name__}: {e}")
        print(f"FAIL: {type(e).__name__}: {e}", flush=True)
    finally:
        env.close()
    print(f"{scenario}: {len(failures)} failed", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
