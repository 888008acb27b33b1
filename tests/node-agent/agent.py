#!/usr/bin/env python3
"""kubefit test node agent: plays the kubelet for Pods the controller creates (python3 stdlib).

There is no kubelet, scheduler or controller-manager next to the test kube-apiserver, so this
agent does their part for Pods labelled app.kubernetes.io/managed-by=kubefit:
  bind (pods/binding) -> Running (pods/status) -> Succeeded or Failed with a termination message,
and it finalises deletions (a bound Pod stays Terminating until "its kubelet" confirms).

What happens to each Pod is a *behaviour*, looked up by Pod name in a JSON plan file that the
test may rewrite at any time (first match wins: exact name, then the longest matching prefix,
then "default"):
  {"tj-1-1": {"outcome": "fail", "exitCode": 1, "message": "boom"},
   "tj-": {"outcome": "succeed", "result": {...termination message...}},
   "default": {"outcome": "succeed"}}
Outcomes: succeed | fail | preempt | run (stay Running) | pending (never bind) | exec |
waiting (bound, the container never starts: state.waiting with "reason", default ErrImagePull,
and "message", as a kubelet reports an image it cannot pull).
Options: runSeconds (time Running before finishing, default 0.5), progress (list of progress
objects POSTed to the Pod's --progress-url while running, with the Pod's projected token, as the
trainer does; progressGap: seconds between them, default 0), reason (preempt: DisruptionTarget
reason, default PreemptionByScheduler).
Projected ServiceAccount tokens (the kubelet's part): for each serviceAccountToken source of a
Pod's projected volumes the agent asks the TokenRequest API for a token bound to the Pod (creating
the ServiceAccount when missing, the ServiceAccount controller's part); exec mode writes it under
WORKDIR and points env values under the volume's mountPath there.
Logs (optional, serve_logs): the kubelet's /containerLogs endpoint over HTTPS for exec-mode Pods
(their WORKDIR/<pod>.log), and a Node object that sends the API server's pods/log there.
"exec" runs the container's command + args as a local process (the e2e mode): the command
`kubefit-trainer` maps to --trainer (default $KUBEFIT_BINARY_DIR/trainer/kubefit-trainer),
`--result-file /dev/termination-log` to a file of the agent's, the container env is added to the
agent's; the exit code decides Succeeded/Failed and the termination message is the result file
(at most 4096 bytes) or, when it is empty and the Pod failed, the tail of the output
(FallbackToLogsOnError). Output goes to WORKDIR/<pod>.log. Deleting the Pod kills the process.

Usage: agent.py --plan PLAN.json [--node NAME] [--namespace NS] [--trainer PATH] [--workdir DIR]
Needs KUBE_APISERVER_URL, KUBE_TOKEN, KUBE_CA_FILE (tests/cluster/with-apiserver sets them).
"""
import argparse
import datetime
import http.server
import json
import os
import signal
import ssl
import subprocess
import tempfile
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

MANAGED = "app.kubernetes.io/managed-by=kubefit"


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ApiError(Exception):
    def __init__(self, code, body):
        super().__init__(f"HTTP {code}: {body[:300]}")
        self.code = code
        self.body = body


class Kube:
    """The few API calls the agent and the tests need."""

    def __init__(self, url=None, token=None, ca_file=None):
        self.url = (url or os.environ["KUBE_APISERVER_URL"]).rstrip("/")
        self.token = token or os.environ["KUBE_TOKEN"]
        self.ctx = ssl.create_default_context(cafile=ca_file or os.environ["KUBE_CA_FILE"])

    def request(self, method, path, body=None, content_type="application/json", timeout=10):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + self.token)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=timeout) as r:
                text = r.read().decode()
                return json.loads(text) if text else None
        except urllib.error.HTTPError as e:
            raise ApiError(e.code, e.read().decode(errors="replace")) from None

    def get(self, path):
        return self.request("GET", path)

    def merge_patch(self, path, patch):
        return self.request("PATCH", path, patch, "application/merge-patch+json")

    def delete(self, path, grace=None):
        body = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace is not None:
            body["gracePeriodSeconds"] = grace
        return self.request("DELETE", path, body)

    def pods(self, namespace=None):
        base = f"/api/v1/namespaces/{namespace}/pods" if namespace else "/api/v1/pods"
        return self.get(base + "?labelSelector=" + urllib.parse.quote(MANAGED))["items"]


def lookup(plan, name):
    if name in plan:
        return plan[name]
    best = None
    for key in plan:
        if key != "default" and name.startswith(key) and (best is None or len(key) > len(best)):
            best = key
    return plan[best] if best else plan.get("default", {"outcome": "succeed"})


def default_result(pod):
    """A contract-shaped termination message (docs/contract.md) for a Pod with no plan result."""
    args = pod["spec"]["containers"][0].get("args", [])
    flag = {args[i]: args[i + 1] for i in range(len(args) - 1) if args[i].startswith("--")}
    base = f"{flag.get('--bucket-name', 'gs://b')}/{flag.get('--model-dir', 'models')}/" \
           f"{flag.get('--lang', 'xx')}/{flag.get('--job', 'job')}/{flag.get('--run', '1')}"
    return {"version": 1, "phase": "Succeeded", "stage": "classifier", "epochs": int(flag.get("--epochs", 1)),
            "metrics": {"accuracy": 0.875, "microF1": 0.81, "macroF1": 0.62, "loss": 0.25, "validLoss": 0.31},
            "labels": [{"name": "pos", "f1": 0.9, "precision": 0.88, "recall": 0.92, "support": 40}],
            "modelURI": base + "/model.safetensors", "metricsURI": base + "/metrics.json", "trainSeconds": 1.5}


class Agent:
    def __init__(self, kube, plan_file, node="node-1", namespace=None, log=None, trainer=None, workdir=None):
        self.kube = kube
        self.trainer = trainer or os.path.join(os.environ.get("KUBEFIT_BINARY_DIR", "build"), "trainer",
                                               "kubefit-trainer")
        self.workdir = workdir or tempfile.mkdtemp(prefix="kubefit-node-")
        self.procs = {}         # pod uid -> (Popen, result file, log file)
        self.plan_file = plan_file
        self.node = node
        self.namespace = namespace
        self.started = {}       # pod uid -> time it was marked Running
        self.done = set()       # pod uids finished by us
        self.stop = threading.Event()
        self.thread = None
        self.log = log or (lambda *a: print("node-agent:", *a, file=sys.stderr, flush=True))
        self.actions = []       # (pod name, action) for tests to inspect
        self.tokens = {}        # pod uid -> {mountPath: {path-in-volume: token}}

    def plan(self):
        try:
            with open(self.plan_file) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def status_patch(self, pod, patch):
        m = pod["metadata"]
        self.kube.merge_patch(f"/api/v1/namespaces/{m['namespace']}/pods/{m['name']}/status", {"status": patch})

    def bind(self, pod):
        m = pod["metadata"]
        self.kube.request("POST", f"/api/v1/namespaces/{m['namespace']}/pods/{m['name']}/binding", {
            "apiVersion": "v1", "kind": "Binding", "metadata": {"name": m["name"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.node}})
        self.actions.append((m["name"], "bind"))

    def ensure_service_account(self, ns, name):
        try:
            self.kube.get(f"/api/v1/namespaces/{ns}/serviceaccounts/{name}")
        except ApiError as e:
            if e.code != 404:
                raise
            try:
                self.kube.request("POST", f"/api/v1/namespaces/{ns}/serviceaccounts",
                                  {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}})
            except ApiError as e2:
                if e2.code != 409:
                    raise

    def request_token(self, pod, audience, seconds=3600):
        """A token of the Pod's service account, bound to the Pod (as the kubelet asks for one)."""
        m = pod["metadata"]
        sa = pod["spec"].get("serviceAccountName") or "default"
        self.ensure_service_account(m["namespace"], sa)
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"expirationSeconds": seconds,
                         "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": m["name"], "uid": m["uid"]}}}
        if audience:
            body["spec"]["audiences"] = [audience]
        out = self.kube.request("POST", f"/api/v1/namespaces/{m['namespace']}/serviceaccounts/{sa}/token", body)
        return out["status"]["token"]

    def mount_tokens(self, pod):
        """Projected serviceAccountToken volumes: {mountPath: {path: token}} for the Pod's container."""
        out = {}
        c = pod["spec"]["containers"][0]
        for v in pod["spec"].get("volumes", []):
            files = {}
            for src in v.get("projected", {}).get("sources", []):
                sat = src.get("serviceAccountToken")
                if sat:
                    files[sat["path"]] = self.request_token(pod, sat.get("audience"),
                                                            int(sat.get("expirationSeconds", 3600)))
            for vm in c.get("volumeMounts", []):
                if files and vm["name"] == v["name"]:
                    out[vm["mountPath"]] = files
        self.tokens[pod["metadata"]["uid"]] = out
        return out

    def progress_token(self, pod):
        """The token the trainer would send with its progress (KUBEFIT_PROGRESS_TOKEN_FILE), or None."""
        env = {e["name"]: e.get("value", "") for e in pod["spec"]["containers"][0].get("env", [])}
        path = env.get("KUBEFIT_PROGRESS_TOKEN_FILE")
        for mount, files in self.tokens.get(pod["metadata"]["uid"], {}).items():
            if path and path.startswith(mount.rstrip("/") + "/"):
                return files.get(path[len(mount.rstrip("/")) + 1:])
        return None

    def run_pod(self, pod):
        t = now_rfc3339()
        self.status_patch(pod, {
            "phase": "Running", "startTime": t, "hostIP": "127.0.0.1", "podIP": "10.0.0.2",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": t}],
            "containerStatuses": [{"name": "trainer", "ready": True, "restartCount": 0, "image": "img",
                                   "imageID": "", "state": {"running": {"startedAt": t}}}]})
        self.actions.append((pod["metadata"]["name"], "running"))

    def post_progress(self, pod, behaviour):
        args = pod["spec"]["containers"][0].get("args", [])
        url = next((args[i + 1] for i in range(len(args) - 1) if args[i] == "--progress-url"), None)
        token = self.progress_token(pod)
        for i, p in enumerate(behaviour.get("progress", [])):
            if not url:
                return
            if i:
                time.sleep(float(behaviour.get("progressGap", 0)))
            headers = {"Content-Type": "application/json"}
            if token:
                headers["Authorization"] = "Bearer " + token
            try:
                req = urllib.request.Request(url, data=json.dumps(p).encode(), method="POST", headers=headers)
                urllib.request.urlopen(req, timeout=5).read()
            except OSError as e:
                self.log("progress post failed", url, e)

    def terminate(self, pod, phase, code, message, extra=None):
        t = now_rfc3339()
        term = {"exitCode": code, "reason": "Completed" if code == 0 else "Error", "startedAt": t, "finishedAt": t}
        if message is not None:
            term["message"] = message
        patch = {"phase": phase, "containerStatuses": [{"name": "trainer", "ready": False, "restartCount": 0,
                                                          "image": "img", "imageID": "",
                                                          "state": {"terminated": term}}]}
        patch.update(extra or {})
        self.status_patch(pod, patch)
        self.actions.append((pod["metadata"]["name"], phase.lower()))

    def finish(self, pod, b):
        outcome = b.get("outcome", "succeed")
        if outcome == "succeed":
            result = b.get("result") or default_result(pod)
            self.terminate(pod, "Succeeded", 0, json.dumps(result) if not isinstance(result, str) else result)
        elif outcome == "fail":
            code = int(b.get("exitCode", 1))
            msg = b.get("message", "trainer failed")
            if code == 2:
                msg = json.dumps({"version": 1, "phase": "Failed", "reason": "BadInput", "message": msg})
            self.terminate(pod, "Failed", code, msg)
        elif outcome == "preempt":
            t = now_rfc3339()
            reason = b.get("reason", "PreemptionByScheduler")
            self.terminate(pod, "Failed", 137, None, {
                "reason": b.get("podReason", "Preempted"), "message": "preempted by a higher-priority Pod",
                "conditions": [{"type": "DisruptionTarget", "status": "True", "reason": reason,
                                "message": "preempted", "lastTransitionTime": t}]})
        elif outcome == "exec":
            self.finish_exec(pod)

    def start_exec(self, pod):
        """Starts the container's command as a local process (e2e mode)."""
        m, c = pod["metadata"], pod["spec"]["containers"][0]
        cmd = list(c.get("command") or []) + list(c.get("args") or [])
        if cmd and cmd[0] == "kubefit-trainer":
            cmd[0] = self.trainer
        result = os.path.join(self.workdir, m["name"] + ".result")
        cmd = [result if (i > 0 and cmd[i - 1] == "--result-file") else a for i, a in enumerate(cmd)]
        env = dict(os.environ)
        env.update({e["name"]: e.get("value", "") for e in c.get("env", [])})
        # Projected tokens: written under WORKDIR, the env values that point into the volume follow.
        for mount, files in self.tokens.get(m["uid"], {}).items():
            local = os.path.join(self.workdir, m["name"] + "-" + mount.strip("/").replace("/", "_"))
            os.makedirs(local, exist_ok=True)
            for rel, tok in files.items():
                with open(os.path.join(local, rel), "w") as f:
                    f.write(tok)
            for k, v in list(env.items()):
                if v.startswith(mount.rstrip("/") + "/"):
                    env[k] = local + v[len(mount.rstrip("/")):]
        log = open(os.path.join(self.workdir, m["name"] + ".log"), "wb")
        try:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir,
                                    start_new_session=True)
        except OSError as e:
            log.close()
            self.terminate(pod, "Failed", 127, f"node-agent: cannot start {cmd[:1]}: {e}")
            return
        self.procs[m["uid"]] = (proc, result, log)
        self.actions.append((m["name"], "exec"))

    def finish_exec(self, pod):
        uid = pod["metadata"]["uid"]
        if uid not in self.procs:
            self.start_exec(pod)
            return
        proc, result, log = self.procs[uid]
        code = proc.poll()
        if code is None:
            return
        log.close()
        del self.procs[uid]
        try:
            with open(result, "rb") as f:
                msg = f.read(4096).decode(errors="replace")
        except OSError:
            msg = ""
        if not msg and code != 0:
            with open(log.name, "rb") as f:
                msg = f.read()[-2048:].decode(errors="replace")
        self.terminate(pod, "Succeeded" if code == 0 else "Failed", code if code >= 0 else 128 - code, msg)

    def kill_exec(self, uid):
        if uid in self.procs:
            proc, _, log = self.procs.pop(uid)
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            proc.wait()
            log.close()

    def step(self):
        plan = self.plan()
        for pod in self.kube.pods(self.namespace):
            m, spec, st = pod["metadata"], pod["spec"], pod.get("status", {})
            uid, name = m["uid"], m["name"]
            if m.get("deletionTimestamp"):
                # The kubelet's part of a graceful delete: stop what runs, confirm it.
                self.kill_exec(uid)
                try:
                    self.kube.delete(f"/api/v1/namespaces/{m['namespace']}/pods/{name}", grace=0)
                    self.actions.append((name, "deleted"))
                except ApiError as e:
                    if e.code != 404:
                        raise
                continue
            phase = st.get("phase", "Pending")
            if phase in ("Succeeded", "Failed"):
                continue
            b = lookup(plan, name)
            outcome = b.get("outcome", "succeed")
            if outcome == "pending":
                continue
            if not spec.get("nodeName"):
                self.bind(pod)
                continue
            if outcome == "waiting":
                if uid not in self.started:
                    self.started[uid] = time.time()
                    self.status_patch(pod, {"phase": "Pending", "containerStatuses": [{
                        "name": "trainer", "ready": False, "restartCount": 0, "image": "img", "imageID": "",
                        "state": {"waiting": {"reason": b.get("reason", "ErrImagePull"),
                                              "message": b.get("message", "failed to pull image")}}}]})
                    self.actions.append((name, "waiting"))
                continue
            if phase == "Pending":
                try:
                    self.mount_tokens(pod)
                except (ApiError, KeyError) as e:
                    self.log("projected token failed", name, e)
                self.run_pod(pod)
                self.started[uid] = time.time()
                threading.Thread(target=self.post_progress, args=(pod, b), daemon=True).start()
                continue
            if outcome == "run":
                continue
            if outcome == "exec":
                self.finish_exec(pod)
                continue
            if uid not in self.started:
                self.started[uid] = time.time()  # Running before we came (agent restarted)
            if time.time() - self.started[uid] >= float(b.get("runSeconds", 0.5)):
                self.finish(pod, b)

    def loop(self):
        while not self.stop.is_set():
            try:
                self.step()
            except (ApiError, OSError, ValueError, KeyError) as e:
                self.log("step failed:", e)
            self.stop.wait(0.1)

    def start(self):
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()
        return self

    def serve_logs(self, cert_file, key_file, address="127.0.0.1"):
        """Serves GET /containerLogs/<ns>/<pod>/<container>[?tailLines=N&limitBytes=B] (the kubelet's
        log endpoint) over HTTPS and registers the Node so that pods/log reaches it."""
        agent = self

        class Logs(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                u = urllib.parse.urlparse(self.path)
                parts = u.path.split("/")
                q = urllib.parse.parse_qs(u.query)
                data = None
                if len(parts) == 5 and parts[1] == "containerLogs":
                    try:
                        with open(os.path.join(agent.workdir, os.path.basename(parts[3]) + ".log"), "rb") as f:
                            data = f.read()
                    except OSError:
                        pass
                if data is None:
                    self.send_error(404, "no such container log")
                    return
                tail = int((q.get("tailLines") or ["0"])[0] or 0)
                if tail > 0:
                    data = b"".join(data.splitlines(keepends=True)[-tail:])
                limit = int((q.get("limitBytes") or ["0"])[0] or 0)
                if limit > 0:
                    data = data[-limit:]
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        srv = http.server.ThreadingHTTPServer((address, 0), Logs)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_file, key_file)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        self.log_server = srv
        try:
            self.kube.request("POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node",
                                                        "metadata": {"name": self.node}})
        except ApiError as e:
            if e.code != 409:
                raise
        self.kube.merge_patch(f"/api/v1/nodes/{self.node}/status", {"status": {
            "addresses": [{"type": "Hostname", "address": address}, {"type": "InternalIP", "address": address}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": srv.server_address[1]}}}})
        return self

    def close(self):
        if getattr(self, "log_server", None):
            self.log_server.shutdown()
            self.log_server = None
        self.stop.set()
        if self.thread:
            self.thread.join(5)
        for uid in list(self.procs):
            self.kill_exec(uid)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plan", required=True, help="JSON plan file (re-read every step)")
    ap.add_argument("--node", default="node-1")
    ap.add_argument("--namespace", default=None)
    ap.add_argument("--trainer", default=None, help="binary that stands for kubefit-trainer (exec outcome)")
    ap.add_argument("--workdir", default=None, help="where exec outcomes run and log")
    a = ap.parse_args()
    agent = Agent(Kube(), a.plan, a.node, a.namespace, trainer=a.trainer, workdir=a.workdir)
    signal.signal(signal.SIGTERM, lambda *_: agent.stop.set())
    try:
        agent.loop()
    except KeyboardInterrupt:
        pass
    finally:
        for uid in list(agent.procs):  # like a kubelet going away: nothing keeps running
            agent.kill_exec(uid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
