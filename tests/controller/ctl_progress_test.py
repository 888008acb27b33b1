#!/usr/bin/env python3
"""apiserver tests of progress reports: authenticated, bound to the job's Pod, rate-limited,
written to status by whichever replica receives them, and kept across a controller restart.

Run inside tests/cluster/with-apiserver, like ctl_api_test.py (whose Env and Controller it uses).
The API server issues and reviews ServiceAccount tokens (its --service-account-* flags); the node
agent asks for each trainer Pod's projected token as a kubelet does.
Usage: ctl_progress_test.py SCENARIO   (auth | replicas | restart)
"""
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ctl_api_test as base  # noqa: E402
from ctl_api_test import ApiError, check, failures, wait_for  # noqa: E402

AUDIENCE = "kubefit"


def post(url, body, token=None):
    """POSTs a report; returns (status, body, headers)."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = "Bearer " + token
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)


def report(step, percent, run_stage="finetune-lm"):
    return {"stage": run_stage, "epoch": 1, "epochs": 2, "step": step, "steps": 100, "loss": 5 - step / 100,
            "percent": percent, "etaSeconds": 30}


def ensure(env, path, body):
    try:
        env.kube.request("POST", path, body)
    except ApiError as e:
        if e.code != 409:
            raise


def token_for(env, ns, pod=None, audience=AUDIENCE, sa="default"):
    """A TokenRequest token of ns/sa, bound to Pod ns/pod when given."""
    ensure(env, f"/api/v1/namespaces/{ns}/serviceaccounts",
           {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa}})
    spec = {"expirationSeconds": 3600}
    if audience:
        spec["audiences"] = [audience]
    if pod:
        p = env.kube.get(f"/api/v1/namespaces/{ns}/pods/{pod}")
        spec["boundObjectRef"] = {"kind": "Pod", "apiVersion": "v1", "name": pod, "uid": p["metadata"]["uid"]}
    out = env.kube.request("POST", f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token",
                           {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec})
    return out["status"]["token"]


def bare_pod(env, ns, name, labels=None):
    ensure(env, "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    ensure(env, f"/api/v1/namespaces/{ns}/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}},
        "spec": {"serviceAccountName": "default", "containers": [{"name": "c", "image": "busybox"}]}})


def outcome(ctl, name):
    return ctl.metric(f'kubefit_progress_reports_total{{outcome="{name}"}}') or 0


def pod_token(env, pod):
    """The projected token the agent (as kubelet) mounted into the trainer Pod."""
    p = env.kube.get(f"/api/v1/namespaces/{env.ns}/pods/{pod}")
    return wait_for(lambda: env.agent.progress_token(p), 10, f"{pod}'s projected token")


def no_tokens_in(ctl, tokens):
    with open(ctl.log_path) as f:
        text = f.read()
    leaked = [t[:12] + "..." for t in tokens if t and t in text]
    check(not leaked, f"{ctl.name}: no token appears in the log ({leaked})")
    check(not re.search(r"eyJ[A-Za-z0-9_-]{20,}\.", text), f"{ctl.name}: nothing JWT-shaped in the log")


# ---------------------------------------------------------------------------------------------

def scenario_auth(env):
    ctl = env.controller(extra=["--progress-rate", "1", "--progress-burst", "5"])
    env.set_plan({"default": {"outcome": "run"}})
    env.job("p")
    env.job("q")
    env.wait_phase("p", "Running")
    env.wait_phase("q", "Running")
    pod = env.kube.get(f"/api/v1/namespaces/{env.ns}/pods/p-1-1")
    c = pod["spec"]["containers"][0]
    vol = next((v for v in pod["spec"].get("volumes", []) if v["name"] == "kubefit-progress-token"), None)
    check(vol is not None and vol["projected"]["sources"][0]["serviceAccountToken"]["audience"] == AUDIENCE,
          f"the Pod has a projected token of audience {AUDIENCE}: {vol}")
    env_vars = {e["name"]: e.get("value") for e in c.get("env", [])}
    check(env_vars.get("KUBEFIT_PROGRESS_TOKEN_FILE") == "/var/run/secrets/kubefit.dev/progress/token",
          "KUBEFIT_PROGRESS_TOKEN_FILE names the mounted token")
    check(any(m["mountPath"] == "/var/run/secrets/kubefit.dev/progress" and m.get("readOnly") for m in
              c.get("volumeMounts", [])), "mounted read-only")
    url = f"http://127.0.0.1:{ctl.port}/progress/{env.ns}/p/1"
    good = pod_token(env, "p-1-1")
    st, body, _ = post(url, report(10, 10.0), good)
    check(st == 204, f"the Pod's own token: 204 ({st} {body})")
    prog = wait_for(lambda: env.status("p").get("progress", {}).get("step") == 10 and env.status("p")["progress"], 5,
                    "progress in status")
    check(prog.get("run") == 1 and prog.get("percent") == 10.0 and prog.get("updateTime"), f"status.progress {prog}")

    # Forgeries, each refused and counted.
    forged = []
    st, body, hdr = post(url, report(11, 11.0))
    check(st == 401 and "WWW-Authenticate" in hdr, f"no token: 401 ({st} {body.strip()})")
    st, body, _ = post(url, report(11, 11.0), "not-a-token")
    check(st == 401, f"garbage token: 401 ({st} {body.strip()})")
    other_job = pod_token(env, "q-1-1")
    forged.append(other_job)
    st, body, _ = post(url, report(11, 11.0), other_job)
    check(st == 403 and "not the trainer of job p" in body, f"another job's Pod token: 403 ({st} {body.strip()})")
    unbound = token_for(env, env.ns, pod=None)
    forged.append(unbound)
    st, body, _ = post(url, report(11, 11.0), unbound)
    check(st == 403 and "not bound to a Pod" in body, f"a token not bound to a Pod: 403 ({st} {body.strip()})")
    bare_pod(env, env.ns, "intruder")
    intruder = token_for(env, env.ns, pod="intruder")
    forged.append(intruder)
    st, body, _ = post(url, report(11, 11.0), intruder)
    check(st == 403, f"a token of another Pod in the namespace: 403 ({st} {body.strip()})")
    other_ns = env.ns + "-other"
    bare_pod(env, other_ns, "p-1-1", {"app.kubernetes.io/managed-by": "kubefit", "kubefit.dev/job": "p",
                                      "kubefit.dev/run": "1"})
    foreign = token_for(env, other_ns, pod="p-1-1")
    forged.append(foreign)
    st, body, _ = post(url, report(11, 11.0), foreign)
    check(st == 403 and "namespace" in body, f"a look-alike Pod in another namespace: 403 ({st} {body.strip()})")
    wrong_aud = token_for(env, env.ns, pod="p-1-1", audience="other")
    forged.append(wrong_aud)
    st, body, _ = post(url, report(11, 11.0), wrong_aud)
    check(st == 401, f"the Pod's token for another audience: 401 ({st} {body.strip()})")
    api_token = token_for(env, env.ns, pod="p-1-1", audience=None)
    forged.append(api_token)
    st, body, _ = post(url, report(11, 11.0), api_token)
    check(st == 401, f"the Pod's API-server token: 401 ({st} {body.strip()})")
    st, body, _ = post(f"http://127.0.0.1:{ctl.port}/progress/{env.ns}/p/2", report(11, 11.0), good)
    check(st == 403, f"the right Pod, another run: 403 ({st} {body.strip()})")
    st, body, _ = post(f"http://127.0.0.1:{ctl.port}/progress/{env.ns}/q/1", report(11, 11.0), good)
    check(st == 403, f"the right Pod, another job: 403 ({st} {body.strip()})")
    check(env.status("p")["progress"]["step"] == 10, "no forged report reached status")
    check(outcome(ctl, "unauthenticated") == 4, f"refusals counted: unauthenticated {outcome(ctl, 'unauthenticated')}")
    check(outcome(ctl, "forbidden") == 6, f"refusals counted: forbidden {outcome(ctl, 'forbidden')}")

    # Rate limit: a burst of 5, then 1 a second; a refusal says when to come back.
    codes = []
    for i in range(8):
        st, body, hdr = post(url, report(20 + i, 20.0 + i), good)
        codes.append(st)
        if st == 429:
            retry = hdr.get("Retry-After")
    check(codes.count(204) >= 4 and codes.count(429) >= 2, f"rate limit per job: {codes}")
    check(codes.count(429) == 0 or (retry and int(retry) >= 1), "429 carries Retry-After")
    check(outcome(ctl, "rate_limited") == codes.count(429), "rate-limited reports counted")
    time.sleep(1.2)
    st, _, _ = post(f"http://127.0.0.1:{ctl.port}/progress/{env.ns}/q/1", report(5, 5.0), other_job)
    check(st == 204, f"another job has its own budget ({st})")
    # A malformed body from the right Pod.
    time.sleep(1.1)
    req = urllib.request.Request(url, data=b"not json", method="POST", headers={"Authorization": "Bearer " + good})
    try:
        urllib.request.urlopen(req, timeout=5)
        st = 200
    except urllib.error.HTTPError as e:
        st = e.code
    check(st == 400, f"a body that is not JSON: 400 ({st})")
    # A finished run takes no more reports (409: the trainer drops it).
    env.set_plan({"default": {"outcome": "succeed"}})
    env.agent.close()
    env.agent = base.Agent(env.kube, env.plan_file, namespace=env.ns, log=lambda *a: None).start()
    env.wait_phase("p", "Succeeded", 20)
    time.sleep(1.1)
    st, body, _ = post(url, report(99, 99.0), good)
    check(st in (409, 403), f"after the run finished: refused ({st} {body.strip()})")
    check(env.status("p")["progress"]["percent"] == 100, "the finished run's progress stays at 100%")
    no_tokens_in(ctl, [good, other_job, unbound, intruder, foreign, wrong_aud, api_token])


def scenario_replicas(env):
    rate = ["--progress-rate", "10"]
    a = env.controller("ctl-a", extra=rate)
    wait_for(lambda: a.metric("kubefit_leader") == 1, 10, "ctl-a leads")
    b = env.controller("ctl-b", extra=rate)
    time.sleep(0.5)
    check(b.metric("kubefit_leader") == 0, "ctl-b stands by")
    env.set_plan({"default": {"outcome": "run"}})
    env.job("h")
    env.wait_phase("h", "Running")
    tok = pod_token(env, "h-1-1")
    # Reports alternate between the replicas (as a Service spreads them): every one lands.
    for i in range(8):
        ctl = (a, b)[i % 2]
        st, body, _ = post(f"http://127.0.0.1:{ctl.port}/progress/{env.ns}/h/1", report(i + 1, 10.0 * (i + 1)), tok)
        check(st == 204, f"report {i + 1} to {ctl.name}: {st} {body.strip()}")
        got = wait_for(lambda: env.status("h").get("progress", {}).get("step") == i + 1, 5,
                       f"report {i + 1} in status")
        check(got, f"report {i + 1} (via {ctl.name}) is in status.progress")
        time.sleep(0.3)
    check(outcome(a, "accepted") == 4 and outcome(b, "accepted") == 4,
          f"each replica wrote its share ({outcome(a, 'accepted')}, {outcome(b, 'accepted')})")
    check(b.metric("kubefit_reconcile_total") == 0, "the standby wrote progress without reconciling")
    no_tokens_in(a, [tok])
    no_tokens_in(b, [tok])


def scenario_restart(env):
    ctl = env.controller(extra=["--resync", "1", "--progress-rate", "10"])
    env.set_plan({"default": {"outcome": "run"}})
    env.job("r")
    env.wait_phase("r", "Running")
    tok = pod_token(env, "r-1-1")
    st, _, _ = post(f"http://127.0.0.1:{ctl.port}/progress/{env.ns}/r/1", report(42, 42.0), tok)
    check(st == 204, f"report accepted ({st})")
    before = wait_for(lambda: env.status("r").get("progress", {}).get("step") == 42 and env.status("r")["progress"],
                      5, "progress in status")
    check(ctl.stop() == 0, "controller stopped")
    check(env.status("r").get("progress") == before, "status.progress intact while no controller runs")
    ctl2 = env.controller("ctl2", extra=["--resync", "1", "--progress-rate", "10"])
    wait_for(lambda: (ctl2.metric("kubefit_reconcile_total") or 0) >= 3, 15, "the new controller reconciles")
    check(env.status("r").get("progress") == before, f"status.progress intact after the restart: "
                                                      f"{env.status('r').get('progress')}")
    st, _, _ = post(f"http://127.0.0.1:{ctl2.port}/progress/{env.ns}/r/1", report(43, 43.0), tok)
    check(st == 204, f"the new controller accepts the next report ({st})")
    check(wait_for(lambda: env.status("r").get("progress", {}).get("step") == 43, 5, "next report"), "and writes it")


def main():
    scenario = sys.argv[1] if len(sys.argv) > 1 else "auth"
    env = base.Env("progress-" + scenario)
    try:
        globals()["scenario_" + scenario](env)
    except Exception as e:  # a timeout or API error is a failure with its reason, not a crash
        failures.append(f"{type(e).__name__}: {e}")
        print(f"FAIL: {type(e).__name__}: {e}", flush=True)
    finally:
        env.close()
    print(f"progress {scenario}: {len(failures)} failed", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
