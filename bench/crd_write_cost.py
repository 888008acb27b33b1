"""What one write costs the kube-apiserver: a TrainingJob status patch (as kubefit-controller writes
it when it creates a run's Pod, slimmer variants of it, and the same status as a PUT of the whole
object) against the writes of the Job controller's path (a Pod create, a Job status patch). bench/crd-write-cost.sh runs it.

For each kind of write: N fresh objects are created first, then N writes go out on 4 keep-alive
connections while nothing else runs; the line says the apiserver's CPU seconds over those writes
divided by N (its /proc counters), and the request body's size. Each variant runs twice.
Usage: crd_write_cost.py APISERVER_DIR --n N --status FILE --render-pod BIN
"""
import argparse
import json
import time

import controller_scale as cs

NS = cs.NS


def expect(status, body, want, what):
    if status != want:
        raise RuntimeError(f"{what}: HTTP {status}: {str(body)[:300]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--status", required=True, help="a TrainingJob status as the controller writes it (JSON)")
    ap.add_argument("--render-pod", required=True)
    a = ap.parse_args()
    env = cs.load_env(a.dir)
    api = cs.Api(env)
    with open(env["KUBE_APISERVER_PID_FILE"]) as f:
        pid = int(f.read())
    api.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    with open(a.status) as f:
        full = json.load(f)
    pod_spec = cs.POD_SPEC = cs.kubefit_pod_spec(a.render_pod)
    tj = f"/apis/kubefit.dev/v1alpha1/namespaces/{NS}/trainingjobs"
    jobs = f"/apis/batch/v1/namespaces/{NS}/jobs"
    variants = [
        ("TrainingJob status patch, as written", "tj", full),
        ("  without the run history (runs)", "tj", {k: v for k, v in full.items() if k != "runs"}),
        ("  one condition (Running)", "tj", dict(full, conditions=full["conditions"][:1])),
        ("  no conditions, no run history", "tj", {k: v for k, v in full.items() if k not in ("runs", "conditions")}),
        ("TrainingJob status update (PUT), as written", "tj-put", full),
        ("Pod create (the same Pod)", "pod", None),
        ("Job status patch (active 1)", "job", None),
    ]

    def measure(label, kind, body, tag):
        names = [f"{tag}-{i:05d}" for i in range(a.n)]
        created = [None] * a.n
        if kind.startswith("tj"):
            def create(i):
                status, obj = api.request("POST", tj, dict(cs.training_job(i), metadata={"name": names[i]}))
                expect(status, obj, 201, "create TrainingJob")
                obj["metadata"].pop("managedFields", None)  # as the controller's cache keeps it
                created[i] = obj
            cs.fan_out(a.n, create)
        elif kind == "job":
            cs.fan_out(a.n, lambda i: expect(*api.request("POST", jobs, dict(cs.batch_job(i), metadata={"name": names[i]}),
                                                       ), 201, "create Job"))
        time.sleep(1)
        cpu0 = cs.cpu_seconds(pid)
        if kind == "tj":
            size = len(json.dumps({"status": body}))
            cs.fan_out(a.n, lambda i: expect(*api.request("PATCH", f"{tj}/{names[i]}/status", {"status": body},
                                                       "application/merge-patch+json"), 200, "patch status"))
        elif kind == "tj-put":
            size = len(json.dumps(dict(created[0], status=body)))
            cs.fan_out(a.n, lambda i: expect(*api.request("PUT", f"{tj}/{names[i]}/status", dict(created[i], status=body)),
                                          200, "put status"))
        elif kind == "pod":
            pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": pod_spec}
            size = len(json.dumps(pod))
            cs.fan_out(a.n, lambda i: expect(*api.request("POST", f"/api/v1/namespaces/{NS}/pods",
                                                       dict(pod, metadata={"name": names[i]})), 201, "create Pod"))
        else:
            ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            body = {"status": {"active": 1, "ready": 0, "startTime": ts, "terminating": 0,
                               "uncountedTerminatedPods": {}}}
            size = len(json.dumps(body))
            cs.fan_out(a.n, lambda i: expect(*api.request("PATCH", f"{jobs}/{names[i]}/status", body,
                                                       "application/merge-patch+json"), 200, "patch Job status"))
        ms = 1000 * (cs.cpu_seconds(pid) - cpu0) / a.n
        print(f"{label:42} {size:6} bytes {ms:6.2f} ms of apiserver CPU per write", flush=True)

    for rep in range(2):
        for k, (label, kind, body) in enumerate(variants):
            measure(label, kind, body, f"v{k}r{rep}")


if __name__ == "__main__":
    main()
