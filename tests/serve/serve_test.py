#!/usr/bin/env python3
"""serve_test: the real kubefit-serve binary over HTTP, on models kubefit-trainer trains here.

Trains three tiny models on a generated keyword dataset (multi-label runs 1 and 2 of one job,
different seeds; a single-label job), then checks:
  conformance  every route of docs/serving.md with good and bad requests: status codes, the
               protocol's error shape (v2/v1 {"error"}, TorchServe {"code","type","message"}),
               metadata shapes, 404 for other models/versions, 405 for wrong methods, 400 for bad
               bodies, 413 for a body over --max-body-bytes, /metrics;
  predictions  every inference route (v2 batched, v1, TorchServe) = `kubefit-trainer predict` on
               the same texts (contractions, accents, emoji, a text past the 1440-token window),
               single- and multi-label;
  batching     64 concurrent requests on 2 inference workers: all answered right, some batches hold
               several texts;
  queue        a burst over --max-queue gets 503 + Retry-After in the protocol's shape, the rest 200;
  hot swap     clients send requests without pause while the model is swapped run 1 -> 2 -> 1 -> 2
               (repository API) and reloaded (SIGHUP): no request fails, every answer equals the
               answer of the version it names;
  drain        SIGTERM with requests in flight: ready turns 503 at once, live stays 200, requests
               keep being answered during --drain-delay, all in flight finish, exit 0;
  bad model    a missing URI or vocab.txt: the server exits 1 naming the file.
Python standard library only. Label serve (make test runs it in the release build).
"""
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

SRC = os.environ.get("KUBEFIT_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.environ.get("KUBEFIT_BINARY_DIR", os.path.join(SRC, "build"))
TRAINER = os.path.join(BIN, "trainer", "kubefit-trainer")
SERVE = os.path.join(BIN, "serve", "kubefit-serve")
failures = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


# ---- data and models ----------------------------------------------------------------------------

FILLER = ("the a of and to in is it that for on with as at be this from or by not all can will up out many then "
          "them these so some time has two more see no way could people first day").split()
KEYS = {"fruit": ["apple", "pear"], "color": ["red", "blue"], "animal": ["cat", "dog"]}


def write_data(root, single):
    rnd = random.Random(7 if single else 5)
    os.makedirs(os.path.join(root, "en", "data"), exist_ok=True)
    for split, n in (("train", 300), ("valid", 80)):
        with open(os.path.join(root, "en", "data", split + ".csv"), "w") as f:
            f.write("text,labels\n")
            for _ in range(n):
                t = [rnd.choice(FILLER) for _ in range(rnd.randint(6, 30))]
                labels = [rnd.choice(list(KEYS))] if single else ([k for k in KEYS if rnd.random() < 0.4] or ["none"])
                for k in labels:
                    if k in KEYS:
                        t.insert(rnd.randrange(len(t)), rnd.choice(KEYS[k]))
                f.write(f"{' '.join(t)},{';'.join(labels)}\n")


def train(root, job, run, seed, single=False):
    args = [TRAINER, "train", "--lang", "en", "--bucket-name", root, "--model-dir", "models", "--job", job,
            "--run", str(run), "--epochs", "2", "--lm-epochs", "1", "--emb-size", "32", "--hidden-size", "48",
            "--layers", "2", "--batch-size", "16", "--bptt", "20", "--seed", str(seed), "--threads", "2",
            "--label-mode", "single" if single else "multi", "--result-file", os.path.join(root, f"{job}-{run}.json")]
    r = subprocess.run(args, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"training {job}/{run} failed: {r.stderr[-2000:]}")
    return os.path.join(root, "models", "en", job, str(run)) + "/"


def predict(root, job, run, texts):
    """kubefit-trainer predict's JSON lines for texts (one per line)."""
    r = subprocess.run([TRAINER, "predict", "--lang", "en", "--bucket-name", root, "--model-dir", "models", "--job",
                        job, "--run", str(run), "--threads", "2"], input="".join(t + "\n" for t in texts),
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"predict failed: {r.stderr[-2000:]}")
    return [json.loads(l) for l in r.stdout.splitlines()]


TEXTS = ["an apple and a pear on the table", "the red dog and the blue cat", "Don't eat it, it's a cat's pear!",
         "naïve café crème brûlée", "emoji 🍎🐶 and ZWJ 👩‍💻 text", "x", "THE RED APPLE IS NOT BLUE",
         " ".join(["the dog ate many red apples"] * 260),  # ~1800 tokens: past the 1440-token window
         "numbers 3.14 1,000 -5 10:30 and www.example.org", "tab\tand  spaces   here"]


# ---- HTTP -------------------------------------------------------------------------------------

class Server:
    def __init__(self, d, uri, *extra, name="srv"):
        self.port_file = os.path.join(d, f"{name}.port")
        self.log_path = os.path.join(d, f"{name}.log")
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([SERVE, "--model-uri", uri, "--listen", "127.0.0.1:0", "--port-file",
                                      self.port_file, "--threads", "2", *extra], stdout=self.log, stderr=self.log)
        self.port = None

    def wait_ready(self, timeout=60):
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kubefit-serve exited {self.proc.returncode}: {self.log_tail()}")
            if self.port is None and os.path.exists(self.port_file):
                txt = open(self.port_file).read().strip()
                self.port = int(txt) if txt else None
            if self.port and self.get("/v2/health/ready")[0] == 200:
                return self
            time.sleep(0.05)
        raise TimeoutError("kubefit-serve not ready: " + self.log_tail())

    def request(self, method, path, body=None, timeout=60):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = body if isinstance(body, (bytes, type(None))) else (
                body.encode() if isinstance(body, str) else json.dumps(body).encode())
            c.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
            r = c.getresponse()
            raw = r.read()
            try:
                doc = json.loads(raw) if raw else None
            except ValueError:
                doc = raw.decode(errors="replace")
            return r.status, doc, {k.lower(): v for k, v in r.getheaders()}
        finally:
            c.close()

    def get(self, path):
        try:
            return self.request("GET", path, timeout=5)
        except OSError:
            return 0, None, {}

    def metric(self, name):
        _, text, _ = self.request("GET", "/metrics")
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        return None

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.log.close()
        return rc

    def log_tail(self, n=30):
        try:
            return "".join(open(self.log_path).readlines()[-n:])
        except OSError:
            return ""


def v2_body(texts, **extra):
    return dict({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(texts)], "data": texts}]}, **extra)


def v2_probs(doc):
    out = {o["name"]: o for o in doc["outputs"]}
    p = out["probabilities"]
    n, L = p["shape"]
    return [p["data"][i * L:(i + 1) * L] for i in range(n)], out


def close_to(ref_line, probs, labels_order, tol=5.1e-5):
    return all(abs(ref_line["probabilities"][l] - p) <= tol for l, p in zip(labels_order, probs))


# ---- scenarios ----------------------------------------------------------------------------------

def conformance(s, job, labels):
    st, doc, _ = s.get("/v2/health/live")
    check(st == 200 and doc == {"live": True}, f"GET /v2/health/live: {st} {doc}")
    st, doc, _ = s.get("/v2/health/ready")
    check(st == 200 and doc == {"ready": True}, f"GET /v2/health/ready: {st} {doc}")
    st, doc, _ = s.get("/v2")
    check(st == 200 and doc.get("name") == "kubefit-serve" and "model_repository" in doc.get("extensions", []),
          f"GET /v2 server metadata: {doc}")
    st, doc, _ = s.get(f"/v2/models/{job}")
    L = len(labels)
    check(st == 200 and doc["name"] == job and doc["versions"] == ["1"] and doc["platform"] == "kubefit",
          f"model metadata: {st} name/versions/platform")
    check(doc.get("inputs") == [{"name": "text", "datatype": "BYTES", "shape": [-1]}], f"inputs {doc.get('inputs')}")
    check([(o["name"], o["datatype"], o["shape"]) for o in doc.get("outputs", [])] ==
          [("labels", "BYTES", [-1]), ("probabilities", "FP32", [-1, L]), ("predicted", "BOOL", [-1, L])],
          f"outputs {doc.get('outputs')}")
    check(doc.get("labels") == labels and doc["parameters"]["multi_label"] is True, "labels and parameters in metadata")
    check(s.get(f"/v2/models/{job}/versions/1")[0] == 200, "metadata of the served version")
    st, doc, _ = s.get(f"/v2/models/{job}/versions/7")
    check(st == 404 and "version 7 not found" in doc.get("error", ""), f"other version: 404 {doc}")
    st, doc, _ = s.get(f"/v2/models/{job}/ready")
    check(st == 200 and doc == {"name": job, "ready": True}, f"model ready: {doc}")
    st, doc, _ = s.get("/v2/models/nope")
    check(st == 404 and "model nope not found" in doc.get("error", ""), f"unknown model metadata: {st} {doc}")
    st, doc, _ = s.request("POST", "/v2/models/nope/infer", v2_body(["x"]))
    check(st == 404 and "error" in doc, f"unknown model infer: {st} {doc}")
    st, doc, _ = s.get(f"/v2/models/{job}/infer")
    check(st == 405 and "error" in doc, f"GET infer: 405 {doc}")
    st, doc, _ = s.request("POST", "/v2/health/live", b"")
    check(st == 405, f"POST live: {st}")
    st, doc, _ = s.get("/nowhere")
    check(st == 404 and "error" in doc, f"unknown path: {st} {doc}")
    # v2 infer: good, with id and selected outputs, and the versioned path
    st, doc, _ = s.request("POST", f"/v2/models/{job}/versions/1/infer",
                           v2_body(["a red apple", "cat"], id="req-1", outputs=[{"name": "predicted"}]))
    check(st == 200 and doc["id"] == "req-1" and doc["model_name"] == job and doc["model_version"] == "1" and
          [o["name"] for o in doc["outputs"]] == ["predicted"] and doc["outputs"][0]["shape"] == [2, L],
          f"v2 infer with id and outputs: {st} {str(doc)[:200]}")
    st, doc, _ = s.request("POST", f"/v2/models/{job}/infer",
                           {"inputs": [{"name": "t", "datatype": "BYTES", "shape": [2, 1], "data": [["a"], ["b"]]}]})
    check(st == 200 and doc["outputs"][0]["shape"] == [2], f"v2 infer shape [2,1]: {st}")
    bad = [("not json", "not JSON"),
           ({"inputs": []}, "one tensor"),
           ({"inputs": [{"name": "t", "datatype": "FP32", "shape": [1], "data": [1.0]}]}, "datatype must be BYTES"),
           ({"inputs": [{"name": "t", "datatype": "BYTES", "shape": [2], "data": ["x"]}]}, "shape says 2"),
           ({"inputs": [{"name": "t", "datatype": "BYTES", "shape": [1], "data": [5]}]}, "not a string"),
           (v2_body(["x"], outputs=[{"name": "logits"}]), "unknown output"),
           (v2_body(["x"] * 65), "at most 64")]
    for body, want in bad:
        st, doc, _ = s.request("POST", f"/v2/models/{job}/infer", body)
        check(st == 400 and want in (doc or {}).get("error", ""), f"v2 bad body -> 400 '{want}': {st} {doc}")
    st, doc, _ = s.request("POST", f"/v2/models/{job}/infer", v2_body(["y" * 70000]))
    check(st == 413 and "request body over" in (doc or {}).get("error", ""),
          f"body over --max-body-bytes: 413 in the v2 error shape ({st} {str(doc)[:120]})")
    st, doc, _ = s.request("POST", f"/predictions/{job}", "z" * 70000)
    check(st == 413 and isinstance(doc, dict) and doc.get("code") == 413 and "request body over" in doc.get("message", ""),
          f"body over --max-body-bytes: 413 in TorchServe's error shape ({st} {str(doc)[:120]})")
    # v1
    st, doc, _ = s.get("/v1/models")
    check(st == 200 and doc == {"models": [job]}, f"GET /v1/models: {doc}")
    st, doc, _ = s.get(f"/v1/models/{job}")
    check(st == 200 and doc == {"name": job, "ready": True}, f"GET /v1/models/NAME: {doc}")
    st, doc, _ = s.request("POST", f"/v1/models/{job}:predict", {"instances": ["apple", {"text": "dog"}]})
    check(st == 200 and len(doc["predictions"]) == 2 and set(doc["predictions"][0]["probabilities"]) == set(labels),
          f"v1 predict: {st}")
    st, doc, _ = s.request("POST", f"/v1/models/{job}:predict", {"instances": [1]})
    check(st == 400 and "instances[0] is not a text" in doc.get("error", ""), f"v1 bad instance: {st} {doc}")
    st, doc, _ = s.request("POST", "/v1/models/nope:predict", {"instances": ["x"]})
    check(st == 404 and "error" in doc, f"v1 unknown model: {st}")
    st, doc, _ = s.get(f"/v1/models/{job}:predict")
    check(st == 405, f"v1 GET predict: {st}")
    # TorchServe
    st, doc, _ = s.get("/ping")
    check(st == 200 and doc == {"status": "Healthy"}, f"/ping: {doc}")
    st, doc, _ = s.request("POST", f"/predictions/{job}", "an apple")
    check(st == 200 and set(doc) == {"labels", "probabilities"}, f"TorchServe predictions: {st} {str(doc)[:120]}")
    check(s.request("POST", f"/predictions/{job}/1", json.dumps({"data": "an apple"}))[1] == doc,
          "TorchServe: versioned path and {\"data\": text} give the same answer")
    st, doc, _ = s.request("POST", f"/predictions/{job}", b"bytes \xff\xfe not UTF-8")
    check(st == 200, f"TorchServe: bytes that are not UTF-8 are tokenised as U+FFFD ({st})")
    st, doc, _ = s.request("POST", f"/predictions/{job}", b"")
    check(st == 400 and doc.get("code") == 400 and doc.get("type") == "BadRequestException",
          f"TorchServe empty body: {st} {doc}")
    st, doc, _ = s.request("POST", "/predictions/nope", "x")
    check(st == 404 and doc.get("type") == "ModelNotFoundException", f"TorchServe unknown model: {doc}")
    st, doc, _ = s.request("POST", f"/predictions/{job}/9", "x")
    check(st == 404 and doc.get("code") == 404, f"TorchServe unknown version: {doc}")
    st, doc, _ = s.get(f"/predictions/{job}")
    check(st == 405 and doc.get("type") == "MethodNotAllowedException", f"TorchServe GET: {doc}")
    # repository API refusals
    st, doc, _ = s.request("POST", "/v2/repository/models/nope/load", b"")
    check(st == 404, f"load another model: 404 ({st})")
    st, doc, _ = s.request("POST", f"/v2/repository/models/{job}/load", {"parameters": {"uri": "/nonexistent/run/"}})
    check(st == 404 and "/nonexistent/run/model.safetensors" in doc.get("error", ""), f"load a missing URI: {st} {doc}")
    st, doc, _ = s.request("POST", f"/v2/repository/models/{job}/load", {"parameters": {"uri": 3}})
    check(st == 400, f"load with a bad uri parameter: {st}")
    check(s.get(f"/v2/models/{job}")[1]["versions"] == ["1"], "a failed load keeps the served model")
    st, doc, _ = s.request("POST", "/v2/repository/index", b"")
    check(st == 200 and doc == [{"name": job, "version": "1", "state": "READY"}], f"repository index: {doc}")
    # metrics
    _, text, hdr = s.request("GET", "/metrics")
    check(hdr.get("content-type", "").startswith("text/plain") and
          'kubefit_serve_requests_total{route="v2_infer",code="400"}' in text and
          "kubefit_serve_batch_size_bucket" in text and
          f'kubefit_serve_model_info{{model="{job}",version="1"' in text, "/metrics: requests by code, batches, model")
    check(s.metric('kubefit_serve_model_loads_total{outcome="error"}') == 1, "metrics count the failed load")


def predictions(s, root, job, run, labels, single=False, name=None):
    """job/run: the trained run (for predict); name: the served name (default job)."""
    ref = predict(root, job, run, TEXTS)
    job = name or job
    check(len(ref) == len(TEXTS), f"predict answered {len(ref)} texts")
    st, doc, _ = s.request("POST", f"/v2/models/{job}/infer", v2_body(TEXTS))
    rows, out = v2_probs(doc)
    check(st == 200 and all(close_to(r, p, labels) for r, p in zip(ref, rows)),
          f"{job}: v2 batched probabilities = predict (|d| <= 5.1e-5)")
    check([l.split(";") if l else [] for l in out["labels"]["data"]] == [r["labels"] for r in ref],
          f"{job}: v2 labels = predict's")
    pred = out["predicted"]["data"]
    L = len(labels)
    check([[labels[k] for k in range(L) if pred[i * L + k]] for i in range(len(TEXTS))] == [r["labels"] for r in ref],
          f"{job}: v2 predicted = predict's labels")
    if single:
        check(all(len(r["labels"]) == 1 for r in ref) and all(sum(pred[i * L:(i + 1) * L]) == 1
                                                                for i in range(len(TEXTS))), "single-label: one label each")
    st, doc, _ = s.request("POST", f"/v1/models/{job}:predict", {"instances": TEXTS})
    check(st == 200 and all(r["labels"] == p["labels"] and all(abs(r["probabilities"][l] - p["probabilities"][l]) <= 5.1e-5
                                                               for l in labels)
                            for r, p in zip(ref, doc["predictions"])), f"{job}: v1 = predict")
    same = 0
    for t, r in zip(TEXTS, ref):
        st, doc, _ = s.request("POST", f"/predictions/{job}", t)
        same += st == 200 and doc["labels"] == r["labels"] and all(
            abs(doc["probabilities"][l] - r["probabilities"][l]) <= 1.01e-4 for l in labels)
    check(same == len(TEXTS), f"{job}: TorchServe answers = predict's lines ({same}/{len(TEXTS)})")


def batching(s, job, expected):
    texts = list(expected)
    results = [None] * 64
    def one(i):
        st, doc, _ = s.request("POST", f"/v2/models/{job}/infer", v2_body([texts[i % len(texts)]]))
        results[i] = (st, v2_probs(doc)[0][0] if st == 200 else doc)
    before_b, before_t = s.metric("kubefit_serve_batch_size_count"), s.metric("kubefit_serve_texts_total")
    th = [threading.Thread(target=one, args=(i,)) for i in range(64)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    ok = sum(r[0] == 200 and all(abs(a - b) <= 1e-6 for a, b in zip(r[1], expected[texts[i % len(texts)]]))
             for i, r in enumerate(results))
    check(ok == 64, f"64 concurrent requests answered, each = its text's answer ({ok}/64)")
    nb, nt = s.metric("kubefit_serve_batch_size_count") - before_b, s.metric("kubefit_serve_texts_total") - before_t
    check(nt == 64 and nb < nt, f"dynamic batching: 64 texts in {nb:.0f} forwards")


def queue_limit(d, uri, job):
    s = Server(d, uri, "--max-queue", "40", "--max-batch-size", "8", "--max-texts", "40", name="queue").wait_ready()
    long_text = " ".join(["the red dog ate a pear"] * 80)
    res = []
    def burst():
        res.append(s.request("POST", f"/v2/models/{job}/infer", v2_body([long_text] * 40)))
    th = [threading.Thread(target=burst) for _ in range(6)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    codes = sorted(r[0] for r in res)
    busy = [r for r in res if r[0] == 503]
    check(200 in codes and busy, f"a burst over --max-queue: some 200, some 503 ({codes})")
    check(all("waiting" in r[1].get("error", "") and r[2].get("retry-after") == "1" for r in busy),
          "503 carries the v2 error shape and Retry-After")
    check(s.stop() == 0, "queue server stopped")


def hot_swap(s, d, job, uri1, uri2, exp):
    """exp[version][text] = probabilities."""
    texts = list(exp["1"])
    stop = threading.Event()
    stats = {"ok": 0, "bad": [], "versions": set()}
    lock = threading.Lock()
    def client(k):
        i = k
        while not stop.is_set():
            t = texts[i % len(texts)]
            i += 1
            try:
                st, doc, _ = s.request("POST", f"/v2/models/{job}/infer", v2_body([t, texts[(i + 3) % len(texts)]]))
            except OSError as e:
                st, doc = 0, str(e)
            with lock:
                if st != 200:
                    stats["bad"].append((st, str(doc)[:200]))
                    continue
                v = doc["model_version"]
                rows = v2_probs(doc)[0]
                good = v in exp and all(abs(a - b) <= 1e-6 for a, b in zip(rows[0], exp[v][t]))
                good = good and all(abs(a - b) <= 1e-6 for a, b in zip(rows[1], exp[v][texts[(i + 3) % len(texts)]]))
                if good:
                    stats["ok"] += 1
                    stats["versions"].add(v)
                else:
                    stats["bad"].append((st, f"version {v}: answer differs from that version's"))
    loads0 = s.metric('kubefit_serve_model_loads_total{outcome="ok"}')
    th = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in th:
        t.start()
    swaps = []
    for uri, want in ((uri2, "2"), (uri1, "1"), (uri2, "2")):
        time.sleep(0.6)
        st, doc, _ = s.request("POST", f"/v2/repository/models/{job}/load", {"parameters": {"uri": uri}}, timeout=120)
        swaps.append(st == 200 and doc.get("state") == "LOADED")
        # the inference thread switches at the next job boundary
        deadline = time.time() + 10
        while time.time() < deadline and s.get(f"/v2/models/{job}")[1]["versions"] != [want]:
            time.sleep(0.02)
        swaps.append(s.get(f"/v2/models/{job}")[1]["versions"] == [want])
    time.sleep(0.3)
    s.proc.send_signal(signal.SIGHUP)  # reload the URI served now (run 2) in the background
    deadline = time.time() + 20
    while time.time() < deadline and s.metric('kubefit_serve_model_loads_total{outcome="ok"}') < loads0 + 4:
        time.sleep(0.05)
    time.sleep(0.3)
    stop.set()
    for t in th:
        t.join()
    check(all(swaps), f"3 swaps through the repository API, metadata follows ({swaps})")
    check(s.metric('kubefit_serve_model_loads_total{outcome="ok"}') == loads0 + 4, "SIGHUP reloaded the model")
    check(not stats["bad"], f"hot swap under load: {stats['ok']} requests ok, failed or wrong: {stats['bad'][:3]}")
    check(stats["versions"] == {"1", "2"} and stats["ok"] > 20, f"answers from both versions ({stats['versions']})")


def drain(d, uri, job):
    s = Server(d, uri, "--drain-delay", "1.5", "--drain-timeout", "20", "--max-batch-size", "4",
               name="drain").wait_ready()
    long_text = " ".join(["an apple and a pear"] * 150)
    res = []
    def slow():
        res.append(s.request("POST", f"/v2/models/{job}/infer", v2_body([long_text] * 8), timeout=60)[0])
    th = [threading.Thread(target=slow) for _ in range(4)]
    for t in th:
        t.start()
    time.sleep(0.2)
    t0 = time.time()
    s.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    ready, live = s.get("/v2/health/ready")[0], s.get("/v2/health/live")[0]
    during = s.request("POST", f"/v2/models/{job}/infer", v2_body(["an apple"]))[0]
    ping = s.get("/ping")[0]
    for t in th:
        t.join()
    rc = s.proc.wait(60)
    s.log.close()
    check(ready == 503 and live == 200 and ping == 503, f"draining: ready 503, live 200, /ping 503 ({ready}, {live}, {ping})")
    check(during == 200, f"a request during the drain delay is answered ({during})")
    check(res == [200] * 4, f"requests in flight at SIGTERM all finish ({res})")
    check(rc == 0 and time.time() - t0 >= 1.5, f"exit 0 after the drain ({rc}, {time.time() - t0:.1f}s)")
    check('"msg":"drained"' in s.log_tail(), "logged the drain")


def bad_models(d, uri):
    for what, u in (("missing URI", os.path.join(d, "nowhere") + "/"), ("missing vocab.txt", None)):
        if u is None:
            u = os.path.join(d, "novocab") + "/"
            os.makedirs(u, exist_ok=True)
            with open(u + "model.safetensors", "wb") as f, open(uri + "model.safetensors", "rb") as src:
                f.write(src.read())
        s = Server(d, u, name="bad")
        try:
            rc = s.proc.wait(60)
        except subprocess.TimeoutExpired:
            s.proc.kill()
            rc = s.proc.wait()
        s.log.close()
        want = u + ("model.safetensors" if what == "missing URI" else "vocab.txt")
        check(rc == 1 and want in s.log_tail(), f"{what}: exit 1 naming {want} (rc {rc})")


def main():
    for exe in (TRAINER, SERVE):
        if not os.access(exe, os.X_OK):
            print(f"SKIP: {exe} not built", file=sys.stderr)
            return 77
    d = tempfile.mkdtemp(prefix="kubefit-serve-test-")
    root, root1 = os.path.join(d, "multi"), os.path.join(d, "single")
    write_data(root, False)
    write_data(root1, True)
    t0 = time.time()
    uri1 = train(root, "tags", 1, 42)
    uri2 = train(root, "tags", 2, 7)
    uri_s = train(root1, "topic", 1, 42, single=True)
    print(f"trained 3 models in {time.time() - t0:.1f}s", flush=True)
    labels = json.load(open(uri1 + "config.json"))["labels"]
    servers = []
    try:
        s = Server(d, uri1, "--max-texts", "64", "--max-body-bytes", "65536", "--repository-api",
                   "--max-batch-delay-ms", "20", "--workers", "2", "--threads", "1").wait_ready()
        servers.append(s)
        conformance(s, "tags", labels)
        predictions(s, root, "tags", 1, labels)
        exp = {}
        for run, uri in (("1", uri1), ("2", uri2)):
            ref = predict(root, "tags", run, TEXTS)
            exp[run] = {}
            st, doc, _ = s.request("POST", "/v2/repository/models/tags/load", {"parameters": {"uri": uri}}, timeout=120)
            deadline = time.time() + 10
            while time.time() < deadline and s.get("/v2/models/tags")[1]["versions"] != [run]:
                time.sleep(0.02)
            rows = v2_probs(s.request("POST", "/v2/models/tags/infer", v2_body(TEXTS))[1])[0]
            exp[run] = dict(zip(TEXTS, rows))
            check(all(close_to(r, p, labels) for r, p in zip(ref, rows)), f"run {run} answers = its predict")
        check(any(abs(a - b) > 1e-4 for t in TEXTS for a, b in zip(exp["1"][t], exp["2"][t])),
              "runs 1 and 2 answer differently (the swap test can tell them apart)")
        batching(s, "tags", exp["2"])
        hot_swap(s, d, "tags", uri1, uri2, exp)
        check(s.stop() == 0, "SIGTERM: exit 0")
        s1 = Server(d, uri_s, "--model-name", "topics", name="single").wait_ready()
        servers.append(s1)
        labels1 = json.load(open(uri_s + "config.json"))["labels"]
        check(s1.get("/v2/models/topics")[1]["parameters"]["multi_label"] is False, "--model-name; single-label model")
        predictions(s1, root1, "topic", 1, labels1, single=True, name="topics")
        check(s1.stop() == 0, "single-label server stopped")
        queue_limit(d, uri1, "tags")
        drain(d, uri1, "tags")
        bad_models(d, uri1)
    except Exception as e:  # a timeout or crash is a failure with its reason
        failures.append(f"{type(e).__name__}: {e}")
        print(f"FAIL: {type(e).__name__}: {e}", flush=True)
    finally:
        for s in servers:
            if s.proc.poll() is None:
                s.stop()
        if failures:
            for s in servers:
                print(f"--- {s.log_path} ---\n{s.log_tail()}", file=sys.stderr)
            print(f"kept {d} (models, logs)", file=sys.stderr)
        else:
            shutil.rmtree(d, ignore_errors=True)
    print(f"serve_test: {len(failures)} failed", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
