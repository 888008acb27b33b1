#!/usr/bin/env python3
"""The console in a real browser (label browser): headless Debian Chromium driven over WebDriver,
against the real controller, a real kube-apiserver, and a real kubefit-trainer run that the node
agent executes (file:// bucket, tiny generated data).

What it checks:
  - API access control: no token 401; a user with no rights 403 on every route (jobs, job, events,
    log, the WebSocket feed); a namespace viewer sees the jobs of that namespace;
  - the jobs table lists the running job; its progress bar advances and the job page's loss curve
    grows while the trainer runs, with no page reload (WebSocket push, counted by the page);
  - the per-label table equals metrics.json in the bucket; the log tail comes through pods/log;
  - a user without rights sees 403 in the page too; no token appears in the controller's log.
Screenshots (jobs table, job page, forbidden) go to $KUBEFIT_BINARY_DIR/artifacts/console/.

Run inside tests/cluster/with-apiserver. Without chromium/chromedriver it fails, or skips (77)
with KUBEFIT_ALLOW_SKIP=1, as the harness does for a missing server.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "controller"))
sys.path.insert(0, HERE)
import ctl_api_test as base  # noqa: E402
from ctl_api_test import ApiError, check, failures, wait_for  # noqa: E402
from webdriver import Browser  # noqa: E402

SRC, BIN = base.SRC, base.BIN
ARTIFACTS = os.environ.get("KUBEFIT_ARTIFACTS") or os.path.join(BIN, "artifacts", "console")
JOB = "news"


def api(port, path, token=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read().decode()
            return r.status, (json.loads(body) if r.headers.get_content_type() == "application/json" else body)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def ensure(env, path, body):
    try:
        env.kube.request("POST", path, body)
    except ApiError as e:
        if e.code != 409:
            raise


def docs_viewer(env):
    """The viewer of docs/console.md, made with its kubectl commands (namespace team-a -> ours)."""
    ns, out = env.ns, None
    for line in open(os.path.join(SRC, "docs", "console.md")):
        if not line.startswith("kubectl -n team-a create "):
            continue
        args = line.split("#")[0].replace("team-a", ns).split()[1:]
        out = base.kubectl(*args).stdout.strip()
    return out  # the last command's output: the token


def user_token(env, name, rules=None):
    """A ServiceAccount in the test namespace with a Role of rules (none: no rights), and a token."""
    ns = env.ns
    ensure(env, f"/api/v1/namespaces/{ns}/serviceaccounts",
           {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}})
    if rules:
        ensure(env, f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
               {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": name},
                "rules": rules})
        ensure(env, f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
               {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}]})
    out = env.kube.request("POST", f"/api/v1/namespaces/{ns}/serviceaccounts/{name}/token",
                           {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                            "spec": {"expirationSeconds": 3600}})
    return out["status"]["token"]


def start_training(env):
    """The agent runs the real trainer for the job's Pods; the bucket holds tiny keyword data."""
    bucket = os.path.join(env.dir, "bucket")
    data = os.path.join(bucket, "en", "data")
    os.makedirs(data)
    subprocess.run([sys.executable, os.path.join(SRC, "tests", "e2e-trainer", "keyword_data.py"), data, "3", "3000",
                    "400", "2000"], check=True, capture_output=True)
    env.agent.close()
    env.agent = base.Agent(env.kube, env.plan_file, namespace=env.ns, log=lambda *a: None,
                           trainer=os.path.join(BIN, "trainer", "kubefit-trainer"), workdir=env.dir).start()
    pki = os.path.join(os.environ["KUBE_CLUSTER_DIR"], "pki")
    env.agent.serve_logs(os.path.join(pki, "apiserver.crt"), os.path.join(pki, "apiserver.key"))
    env.set_plan({"default": {"outcome": "exec"}})
    # About 45 s of training on one thread here: long enough to watch it move.
    env.job(JOB, language="en", epochs=int(os.environ.get("KUBEFIT_CONSOLE_EPOCHS", "12")), batchSize=32,
            model={"embSize": 64, "hiddenSize": 128, "layers": 2},
            storage={"bucket": "file://" + bucket, "modelDir": "models"}, resources={"gpus": 0},
            args=["--bptt", "32", "--max-vocab", "2000", "--threads", "1", "--lm-epochs", "2"])
    return bucket


def check_api(port, env, viewer, nobody):
    st, body = api(port, "/api/jobs")
    check(st == 401, f"no token: 401 ({st})")
    st, body = api(port, "/api/jobs", viewer)
    check(st == 200 and any(j["name"] == JOB for j in body["jobs"]), f"viewer lists the job ({st})")
    check(all(j["namespace"] == env.ns for j in body["jobs"]), "viewer sees its namespace only")
    st, body = api(port, f"/api/jobs/{env.ns}/{JOB}", viewer)
    check(st == 200 and body.get("name") == JOB, f"viewer gets the job ({st})")
    check(all(e.get("value") in (None, "(hidden)") for e in body.get("spec", {}).get("env", [])), "env values hidden")
    for path in ("/api/jobs", f"/api/jobs?namespace={env.ns}", f"/api/jobs/{env.ns}/{JOB}",
                 f"/api/jobs/{env.ns}/{JOB}/events", f"/api/jobs/{env.ns}/{JOB}/log"):
        st, body = api(port, path, nobody)
        check(st == 403, f"no rights: {path} -> 403 ({st} {str(body)[:120]})")
    st, _ = api(port, f"/api/jobs/{env.ns}/{JOB}", "forged.token.value")
    check(st == 401, f"a forged token: 401 ({st})")


def main():
    if not Browser.available():
        if os.environ.get("KUBEFIT_ALLOW_SKIP") == "1":
            print("SKIP: chromium/chromedriver missing (run hack/setup)")
            return 77
        print("FAIL: chromium/chromedriver missing (hack/setup installs them; KUBEFIT_ALLOW_SKIP=1 skips)")
        return 1
    env = base.Env("console")
    browser = None
    ctl = None
    try:
        viewer = docs_viewer(env)
        check(viewer and viewer.count(".") == 2, "docs/console.md's kubectl commands made a viewer and its token")
        nobody = user_token(env, "nobody")
        ctl = env.controller(extra=["--progress-rate", "1"])  # a report a second: a 30 s run moves visibly
        bucket = start_training(env)
        port = ctl.port
        env.wait_phase(JOB, "Running", 60)
        check_api(port, env, viewer, nobody)

        browser = Browser(ARTIFACTS)
        b = browser
        b.get(f"http://127.0.0.1:{port}/#token={viewer}")
        row = f'tr[data-job="{env.ns}/{JOB}"]'
        b.wait_js(f"return document.querySelector('{row}')", 30, "the job's row in the jobs table")
        check(b.js("return location.hash") == "#/", "the token left the address bar")
        check(b.js("return document.getElementById('who').textContent") == f"system:serviceaccount:{env.ns}:console-viewer",
              "signed in as the viewer")
        pct = f"parseFloat(document.querySelector('{row} .bar').dataset.percent)"
        loaded = b.js("return window.kubefit.stats.loaded")
        b.wait_js("return window.kubefit.stats.snapshots >= 1", 30, "the feed's first snapshot")
        p0 = b.wait_js(f"return {pct} > 0 && {pct}", 120, "a first progress report in the table")
        check(b.js(f"return document.querySelector('{row} .phase').textContent") == "Running", "the row says Running")
        b.screenshot("console-jobs.png")
        updates0 = b.js("return window.kubefit.stats.jobUpdates")
        p1 = b.wait_js(f"const p = {pct}; return p > arguments[0] && p", 120, "the progress bar to advance", p0)
        check(p1 > p0, f"the progress bar advanced: {p0}% -> {p1}%")
        check(b.js("return window.kubefit.stats.loaded") == loaded, "without a page reload")
        st_now = b.js("return window.kubefit.stats")
        check(st_now["jobUpdates"] > updates0, f"pushed over the WebSocket ({updates0} -> {st_now})")
        check("live" == b.js("return document.getElementById('live').textContent"), "the page shows the feed live")
        # Filters: by phase, then by namespace (the namespace one narrows the feed too).
        b.js("const s = document.getElementById('f-phase'); s.value = 'Failed'; s.dispatchEvent(new Event('change'))")
        check(b.js(f"return !document.querySelector('{row}') && document.querySelector('#jobs .empty') !== null"),
              "the phase filter hides a running job from 'Failed'")
        b.js("const s = document.getElementById('f-phase'); s.value = 'Running'; s.dispatchEvent(new Event('change'))")
        check(b.js(f"return document.querySelector('{row}') !== null"), "and shows it under 'Running'")
        b.js("const s = document.getElementById('f-phase'); s.value = ''; s.dispatchEvent(new Event('change'))")
        b.js(f"const i = document.getElementById('f-namespace'); i.value = '{env.ns}'; i.dispatchEvent(new Event('change'))")
        b.wait_js(f"return window.kubefit.stats.snapshots >= 2 && document.querySelector('{row}')", 20,
                  "a snapshot for the namespace")
        b.screenshot("console-jobs.png")

        # The job page: its loss curve grows while the trainer runs.
        b.js(f"document.querySelector('{row} a').click()")
        series = "return [...document.querySelectorAll('#chart-loss path.series')].reduce((n, p) => n + +p.dataset.points, 0)"
        n0 = b.wait_js(f"const n = (() => {{ {series} }})(); return n >= 1 && n", 60, "the loss curve")
        phase = b.js("return document.getElementById('phase').textContent")
        if phase == "Running":
            n1 = b.wait_js(f"const n = (() => {{ {series} }})(); return n > arguments[0] && n", 120,
                           "the loss curve to grow", n0)
            check(n1 > n0, f"the loss curve grew while training: {n0} -> {n1} points")
            check(b.js("return window.kubefit.stats.progressPoints") >= 1, "progress points pushed to the job page")
            check(b.js("return window.kubefit.stats.loaded") == loaded, "still the same page load")
            b.resize(1440, 1200)
            b.screenshot("console-job-running.png")
        else:
            check(False, f"the run finished before the job page could watch it grow (phase {phase}): "
                         "raise KUBEFIT_CONSOLE_EPOCHS")
        b.resize(1440, 2300)
        st = env.wait_phase(JOB, "Succeeded", 600)
        b.wait_js("return document.getElementById('phase').textContent === 'Succeeded'", 30, "Succeeded on the page")
        b.wait_js("return document.querySelectorAll('#labels tbody tr').length > 0", 30, "the per-label table")
        # Per-label table == metrics.json in the bucket.
        mpath = os.path.join(bucket, "models", "en", JOB, "1", "metrics.json")
        with open(mpath) as f:
            metrics = json.load(f)
        # The table shows status.metrics.labels, which the trainer's result carries with 4 significant
        # digits (metrics.json has 6): equal within that rounding, names and supports exactly.
        want = {l["name"]: [l["precision"], l["recall"], l["f1"], l["support"]] for l in metrics["labels"]}
        got = b.js("return Object.fromEntries([...document.querySelectorAll('#labels tbody tr')].map(r => "
                   "[r.dataset.label, [...r.cells].slice(1).map(c => +c.dataset.value)]))")
        same = set(got) == set(want) and all(
            got[k][3] == want[k][3] and all(abs(g - w) <= 5e-4 * max(abs(w), 1e-3) + 1e-9
                                            for g, w in zip(got[k][:3], want[k][:3])) for k in want)
        check(same and len(want) == 3, f"per-label table == metrics.json: {got} vs {want}")
        shown = b.js("return [...document.querySelectorAll('#labels tbody tr')].map(r => "
                     "[...r.cells].slice(1, 4).map(c => c.textContent))")
        check(all(re.fullmatch(r"\d\.\d{3}", t) for row in shown for t in row), f"shown with 3 decimals: {shown}")
        # Sortable: by support, ascending then descending.
        b.js("document.querySelector('#labels th[data-key=support]').click()")
        sup = b.js("return [...document.querySelectorAll('#labels tbody tr')].map(r => +r.cells[4].textContent)")
        check(sup == sorted(sup, reverse=True), f"sorted by support, descending first: {sup}")
        b.js("document.querySelector('#labels th[data-key=support]').click()")
        sup = b.js("return [...document.querySelectorAll('#labels tbody tr')].map(r => +r.cells[4].textContent)")
        check(sup == sorted(sup), f"then ascending: {sup}")
        check(b.js("return document.getElementById('metrics-uri').textContent") == st.get("metricsURI"),
              "the metrics.json URI is shown")
        check(b.js("return document.querySelectorAll('#runs tbody tr[data-run]').length") == 1, "the run history")
        b.wait_js("return [...document.querySelectorAll('#events td')].some(td => td.textContent === 'Succeeded')", 20,
                  "the Succeeded event")
        log = b.wait_js("const t = document.getElementById('log').textContent; "
                        "return t.includes('\"stage\":\"classifier\"') && t", 60, "the trainer's log tail")
        check('"stage":"classifier"' in log, "the log tail is the trainer's output (through pods/log)")
        b.js("window.scrollTo(0, 0)")
        b.screenshot("console-job.png")

        # A user without rights: 403 in the page.
        b.resize(1440, 900)
        b.get(f"http://127.0.0.1:{port}/#token={nobody}")
        b.js("location.reload()")
        b.wait_js("return document.getElementById('forbidden')", 30, "the 403 message")
        check(not b.js(f"return document.querySelector('{row}')"), "no job shown without rights")
        b.wait_js("return window.kubefit.stats.feedErrors.includes(403)", 20, "the feed's 403")
        b.get(f"http://127.0.0.1:{port}/#/jobs/{env.ns}/{JOB}")
        b.wait_js("return document.getElementById('forbidden')", 30, "the 403 message on the job page")
        b.screenshot("console-forbidden.png")
        errors = [e for e in b.console_log() if e.get("level") == "SEVERE" and "403" not in e.get("message", "")
                  and "401" not in e.get("message", "")]
        check(not errors, f"no script errors in the page: {errors[:3]}")
        st, _ = api(port, "/metrics")
        text = ctl.http("/metrics")[1]
        check("kubefit_console_forbidden_total" in text, "console refusals are counted")
        with open(ctl.log_path) as f:
            log_text = f.read()
        check(viewer not in log_text and nobody not in log_text, "no token in the controller's log")
        print(f"screenshots: {ARTIFACTS}", flush=True)
    except Exception as e:  # a timeout or API error is a failure with its reason, not a crash
        failures.append(f"{type(e).__name__}: {e}")
        print(f"FAIL: {type(e).__name__}: {e}", flush=True)
        if browser:
            try:
                browser.screenshot("console-failure.png")
            except Exception:  # noqa: BLE001 - best effort
                pass
            for entry in browser.console_log()[-10:]:
                print("browser:", re.sub(r"token=[^ '\"]+", "token=(hidden)", str(entry)), flush=True)
    finally:
        if browser:
            browser.close()
        env.close()
        if not failures:
            shutil.rmtree(env.dir, ignore_errors=True)  # the bucket and the run's outputs
    print(f"console: {len(failures)} failed", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
