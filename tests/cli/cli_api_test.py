#!/usr/bin/env python3
"""cli_api: every kubefit subcommand against a real kube-apiserver + etcd, with the real
kubefit-controller and the test node agent (tests/node-agent/agent.py) playing the kubelet. The
agent runs each trainer Pod as the real kubefit-trainer on tiny keyword data in a file:// bucket
("exec"), or fails it as the plan says; a small HTTPS server here plays the kubelet's log
endpoint, so `kubefit logs` goes through the API server's pods/log as it does on a cluster.

Run inside tests/cluster/with-apiserver (KUBECONFIG, KUBE_APISERVER_URL, KUBE_TOKEN, KUBE_CA_FILE).
"""
import http.server
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

SRC = os.environ.get("KUBEFIT_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.environ.get("KUBEFIT_BINARY_DIR", os.path.join(SRC, "build"))
sys.path.insert(0, os.path.join(SRC, "tests", "node-agent"))
sys.path.insert(0, os.path.join(SRC, "tests", "controller"))
from agent import Agent, ApiError, Kube  # noqa: E402
import ctl_api_test as ctl  # noqa: E402  (Controller, wait_for, kubectl)

KUBEFIT = os.path.join(BIN, "cli", "kubefit")
NS = "cli"
failures = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def kubefit(*args, timeout=180, env=None, stdin=None):
    """Runs kubefit; returns (exit code, stdout, stderr)."""
    r = subprocess.run([KUBEFIT, *args], capture_output=True, text=True, timeout=timeout, env=env, input=stdin)
    return r.returncode, r.stdout, r.stderr


class LogServer:
    """The kubelet's containerLogs endpoint over HTTPS: the agent's WORKDIR/<pod>.log, followed
    until the Pod has finished when ?follow=true."""

    def __init__(self, kube, workdir, certdir):
        self.kube, self.workdir = kube, workdir
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=kubelet",
                        "-keyout", f"{certdir}/kubelet.key", "-out", f"{certdir}/kubelet.crt"],
                       check=True, capture_output=True)
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *a):
                pass

            def do_GET(self):
                u = urllib.parse.urlparse(self.path)
                m = re.match(r"^/containerLogs/([^/]+)/([^/]+)/([^/]+)$", u.path)
                if not m:
                    self.send_error(404)
                    return
                ns, pod = m.group(1), m.group(2)
                follow = urllib.parse.parse_qs(u.query).get("follow") == ["true"]
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                path, pos = os.path.join(server.workdir, pod + ".log"), 0
                while True:
                    done = not follow or server.finished(ns, pod)
                    try:
                        with open(path, "rb") as f:
                            f.seek(pos)
                            data = f.read()
                    except OSError:
                        data = b""
                    if data:
                        self.wfile.write(data)
                        self.wfile.flush()
                        pos += len(data)
                    if done:
                        return
                    time.sleep(0.2)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        sslctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sslctx.load_cert_chain(f"{certdir}/kubelet.crt", f"{certdir}/kubelet.key")
        self.httpd.socket = sslctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def finished(self, ns, pod):
        try:
            phase = self.kube.get(f"/api/v1/namespaces/{ns}/pods/{pod}").get("status", {}).get("phase")
        except ApiError:
            return True
        return phase in ("Succeeded", "Failed")


def setup(tmp):
    kube = Kube()
    # The node the agent binds Pods to, with this test's kubelet log endpoint.
    workdir = os.path.join(tmp, "node")
    os.makedirs(workdir)
    logs = LogServer(kube, workdir, tmp)
    kube.request("POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "cli-node"}})
    kube.request("PATCH", "/api/v1/nodes/cli-node/status", {"status": {
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": logs.port}}}}, "application/merge-patch+json")
    kube.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    return kube, workdir, logs


def job_flags(tmp, name, *extra):
    return ["submit", name, "-n", NS, "--lang", "en", "--epochs", "2", "--batch-size", "16", "--bucket-name",
            f"file://{tmp}/b", "--gpus", "0", "--emb-size", "16", "--hidden-size", "24", "--layers", "2", *extra,
            "--", "--lm-epochs", "1", "--bptt", "16", "--max-vocab", "500", "--threads", "2"]


def main():
    for f in (KUBEFIT, os.path.join(BIN, "controller", "kubefit-controller"), os.path.join(BIN, "trainer", "kubefit-trainer")):
        if not os.access(f, os.X_OK):
            print(f"FAIL: {f} is not built")
            return 1
    tmp = tempfile.mkdtemp(prefix="kubefit-cli-api-")
    os.makedirs(f"{tmp}/b/en/data")
    subprocess.run([sys.executable, os.path.join(SRC, "tests", "e2e-trainer", "keyword_data.py"), f"{tmp}/b/en/data",
                    "7", "160", "48"], check=True)
    agent = controller = None
    try:
        # Before the CRD is installed: kubefit says so.
        rc, out, err = kubefit("get", "-n", "default")
        check(rc == 1 and "kubefit: the TrainingJob resource is not installed on https://" in err
              and "helm install kubefit charts/kubefit; docs/install.md" in err, f"no CRD: rc {rc}: {err.strip()}")
        ctl.kubectl("apply", "-f", os.path.join(SRC, "crds", "trainingjob.yaml"))
        subprocess.run([os.path.join(SRC, "tests", "cluster", "crd-established"), "trainingjobs.kubefit.dev", "30"],
                       check=True)
        kube, workdir, _ = setup(tmp)
        plan = os.path.join(tmp, "plan.json")
        with open(plan, "w") as f:
            json.dump({"bad-": {"outcome": "fail", "exitCode": 2, "message": "en/data/train.csv: not found"},
                       "flaky-1-1": {"outcome": "fail", "exitCode": 3, "message": "storage unavailable"},
                       "slow-": {"outcome": "run"}, "default": {"outcome": "exec"}}, f)
        agent = Agent(kube, plan, node="cli-node", namespace=NS, workdir=workdir, log=lambda *a: None,
                      trainer=os.path.join(BIN, "trainer", "kubefit-trainer")).start()
        env = type("E", (), {"dir": tmp})()
        controller = ctl.Controller(env, "ctl").start()

        # submit: created, then unchanged, and wait follows the run to its end.
        rc, out, err = kubefit(*job_flags(tmp, "kw"))
        check(rc == 0 and out == "trainingjob.kubefit.dev/kw created\n", f"submit creates: {rc} {out!r} {err}")
        rc, out, err = kubefit("wait", "kw", "-n", NS, "--timeout", "150s")
        check(rc == 0 and out.startswith("trainingjob kw: Succeeded, run 1, 1 attempt"), f"wait: {rc} {out!r} {err}")
        check(re.search(r"^  micro-F1 [01]\.\d+   macro-F1 [01]\.\d+$", out, re.M) is not None, f"wait: summary {out!r}")
        check("  model:    file://" + tmp + "/b/models/en/kw/1/model.safetensors\n" in out, "wait: where the model is")
        rc, out, err = kubefit(*job_flags(tmp, "kw"))
        check(rc == 0 and out == "trainingjob.kubefit.dev/kw unchanged (kubefit retrain starts a new run with the same "
              "spec)\n", f"submit again: unchanged: {out!r} {err}")

        # get: the CRD's printer columns, one job, JSON, names, all namespaces, an unknown job.
        rc, out, err = kubefit("get", "-n", NS)
        lines = out.splitlines()
        check(rc == 0 and lines and lines[0].split() == ["NAME", "PHASE", "LANGUAGE", "ACCURACY", "MICRO-F1", "AGE"],
              f"get: header {lines[:1]}")
        check(len(lines) == 2 and lines[1].split()[:3] == ["kw", "Succeeded", "en"], f"get: row {lines[1:]}")
        rc, out, err = kubefit("get", "kw", "-n", NS, "-o", "json")
        obj = json.loads(out) if rc == 0 else {}
        check(obj.get("status", {}).get("phase") == "Succeeded" and obj.get("spec", {}).get("epochs") == 2,
              "get -o json: the object")
        rc, out, err = kubefit("get", "-o", "name", "-n", NS)
        check(rc == 0 and out == "kw\n", f"get -o name: {out!r}")
        rc, out, err = kubefit("get", "-A", "-o", "wide")
        check(rc == 0 and out.splitlines()[0].split()[:2] == ["NAMESPACE", "NAME"] and "RUN" in out.splitlines()[0],
              f"get -A -o wide: {out.splitlines()[:1]}")
        rc, out, err = kubefit("get", "-n", "default")
        check(rc == 0 and err == "No TrainingJobs in namespace \"default\".\n", f"get: empty namespace: {err!r}")
        nf = 'kubefit: trainingjob "nope" not found in namespace "cli" (kubefit get lists the jobs; -n picks the namespace)\n'
        for cmd in (["get", "nope"], ["status", "nope"], ["logs", "nope"], ["wait", "nope"], ["retrain", "nope"],
                    ["predict", "nope", "x"]):
            rc, out, err = kubefit(*cmd, "-n", NS)
            check(rc == 1 and err == nf, f"{cmd[0]} of an unknown job: rc {rc}: {err!r}")

        # status: the page.
        rc, out, err = kubefit("status", "kw", "-n", NS)
        for want in ("Name:        kw\n", "Namespace:   cli\n", "Phase:       Succeeded (Succeeded)\n",
                     "Run:         1, attempt 1 (0 failed), pod kw-1-1, took ", "Metrics (run 1):\n  micro-F1 ",
                     f"Model:       file://{tmp}/b/models/en/kw/1/model.safetensors\n", "Runs:\n  RUN  PHASE"):
            check(rc == 0 and want in out, f"status shows {want.strip()!r}")
        rc, out, err = kubefit("status", "kw", "-n", NS, "-o", "yaml")
        check(rc == 0 and "phase: Succeeded\n" in out and "currentRun: 1\n" in out, "status -o yaml")

        # logs: the trainer's own log lines, through pods/log.
        rc, out, err = kubefit("logs", "kw", "-n", NS)
        check(rc == 0 and '"msg":"data loaded"' in out, f"logs: the trainer's log: rc {rc} {err.strip()} {out[:200]!r}")

        # predict: the job's latest model, read by the local trainer from the bucket.
        rc, out, err = kubefit("predict", "kw", "-n", NS, "the red apple is here", "a cat")
        check(rc == 0 and out.count("\n  ->") == 2 and out.startswith("the red apple is here\n"), f"predict: {out!r} {err}")
        rc, out, err = kubefit("predict", "kw", "-n", NS, "-o", "json", stdin="a red cat\n")
        check(rc == 0 and json.loads(out.splitlines()[0]).get("text") == "a red cat", f"predict from stdin: {out!r}")

        # The object as the API server returns it is a manifest kubefit reads back (install.md's
        # "fetching the model": predict -f on a copy of the bucket).
        rc, out, err = kubefit("get", "kw", "-n", NS, "-o", "yaml")
        with open(f"{tmp}/kw.yaml", "w") as f:
            f.write(out)
        rc, out, err = kubefit("predict", "-f", f"{tmp}/kw.yaml", "a red apple")
        check(rc == 0 and out.startswith("a red apple\n  ->"), f"predict -f on get -o yaml: rc {rc}: {out!r} {err}")

        # retrain: a new run with the same spec, followed to its end.
        rc, out, err = kubefit("retrain", "kw", "-n", NS, "--follow", "--timeout", "150s")
        check(rc == 0 and out.startswith("trainingjob.kubefit.dev/kw: retrain requested (kubefit.dev/retrain=")
              and "trainingjob kw: Succeeded, run 2, 1 attempt" in out, f"retrain --follow: {rc} {out!r} {err}")
        check("kubefit: kw: run 2: " in err, f"retrain --follow reports the run: {err!r}")
        rc, out, err = kubefit("logs", "kw", "-n", NS, "--run", "1")
        check(rc == 0 and '"msg":"data loaded"' in out, "logs --run 1 after run 2")

        # submit with a changed spec: configured, a new run, followed with progress.
        rc, out, err = kubefit(*job_flags(tmp, "kw", "--lr", "0.03", "--follow", "--timeout", "150s"))
        check(rc == 0 and out.startswith("trainingjob.kubefit.dev/kw configured\n")
              and "trainingjob kw: Succeeded, run 3" in out, f"submit --follow after a change: {rc} {out!r} {err}")
        check("kubefit: kw: run 3: " in err, f"submit --follow reports the run: {err!r}")

        # A job that fails for bad input: exit 2 with the trainer's message; no retry.
        rc, out, err = kubefit(*job_flags(tmp, "bad", "--follow", "--timeout", "60s"))
        check(rc == 2 and "trainingjob bad: Failed (BadInput), run 1, 1 attempt" in out
              and "en/data/train.csv: not found" in out, f"bad input: rc {rc}: {out!r}")
        rc, out, err = kubefit("wait", "bad", "-n", NS, "-q")
        check(rc == 2 and out == "" and err == "", f"wait -q on a failed job: rc {rc}")

        # A retry: logs -f follows attempt 1 (failed) into attempt 2.
        rc, out, err = kubefit(*job_flags(tmp, "flaky"))
        check(rc == 0, f"submit flaky: {err}")
        rc, out, err = kubefit("logs", "flaky", "-n", NS, "-f", timeout=150)
        check(rc == 0 and "==> flaky-1-1 (attempt 1, Failed, exit code 3) <==" in out
              and "==> flaky-1-2 (attempt 2, " in out and '"msg":"data loaded"' in out,
              f"logs -f across a retry: rc {rc}: {out[:300]!r} {err}")
        rc, out, err = kubefit("wait", "flaky", "-n", NS, "--timeout", "60s")
        check(rc == 0 and "trainingjob flaky: Succeeded, run 1, 2 attempts" in out, f"wait after a retry: {out!r}")

        # wait gives up: exit 3.
        rc, out, err = kubefit(*job_flags(tmp, "slow"))
        rc, out, err = kubefit("wait", "slow", "-n", NS, "--timeout", "3s")
        check(rc == 3 and re.search(r"^kubefit: slow: timed out after 3s \(phase (Pending|Running)\)$", err, re.M),
              f"wait --timeout: rc {rc}: {err!r}")

        # Refused by the API server (a CEL rule): exit 2 with its message.
        rc, out, err = kubefit("submit", "x", "-n", NS, "--lang", "en", "--bucket-name", "gs://abc", "--memory", "0")
        check(rc == 2 and err.startswith('kubefit: the API server refused the TrainingJob: TrainingJob.kubefit.dev "x" is '
                                         'invalid: spec.resources.memory: Invalid value: 0: spec.resources.memory must '
                                         'be more than 0'), f"API server refusal: rc {rc}: {err!r}")
        # Bad flags never reach the cluster; an unknown context is named.
        rc, out, err = kubefit("submit", "x", "-n", NS, "--lang", "en", "--bucket-name", "gs://abc", "--lr", "0")
        check(rc == 2 and err == 'kubefit: --lr: expected a number in [1e-12, 100], got "0"\n', f"bad flag: {err!r}")
        rc, out, err = kubefit("get", "--context", "nope")
        check(rc == 2 and err.endswith(': kubeconfig: context "nope" not found\n'), f"unknown context: {err!r}")

        # As a kubectl plugin.
        env = dict(os.environ, PATH=os.path.join(BIN, "cli") + os.pathsep + os.environ.get("PATH", ""))
        r = subprocess.run(["kubectl", "kubefit", "get", "kw", "-n", NS, "-o", "name"], capture_output=True, text=True,
                           env=env, timeout=60)
        check(r.returncode == 0 and r.stdout == "kw\n", f"kubectl kubefit get: {r.returncode} {r.stdout!r} {r.stderr}")
    except Exception as e:  # a timeout or an API error is a failure with its reason
        failures.append(f"{type(e).__name__}: {e}")
        print(f"FAIL: {type(e).__name__}: {e}", flush=True)
    finally:
        if controller and controller.proc:
            if failures:
                print(f"--- controller log tail ---\n{controller.log_tail()}", file=sys.stderr)
            controller.stop()
        if agent:
            agent.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"cli_api: {len(failures)} failed", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
