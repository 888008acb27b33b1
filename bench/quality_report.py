"""quality_report: bench/quality.sh's helpers (standard library only).
  quality_report.py run OUT.json -- CMD...   runs CMD, stores its wall and CPU seconds (children
                                             included) in OUT.json, exits with CMD's code
  quality_report.py dims LM.safetensors      prints "EMB HIDDEN LAYERS" of an AWD-LSTM LM
  quality_report.py table OUT_DIR SETS ROWS  the table (mean, spread = sample standard deviation
                                             over seeds, min..max), then quality_delta_vs_fastai=
                                             and quality_delta_vs_linear= (last lines)
OUT_DIR/SET_LANG/ROW-seedS.json hold one run's metrics (kubefit's metrics.json keys)."""
import json
import math
import os
import resource
import statistics
import struct
import subprocess
import sys
import time

ROW_NAMES = {"majority": "majority class", "tfidf-lr": "TF-IDF + logistic regression", "fastai": "fastai, random-init LM",
             "random": "kubefit, random-init LM", "pretrained": "kubefit, pretrained LM",
             "pretrained-ft": "kubefit, pretrained LM + LM fine-tuning"}


def cmd_run(out, argv):
    t0 = time.time()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    rc = subprocess.call(argv)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    json.dump({"seconds": time.time() - t0,
               "cpuSeconds": (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)}, open(out, "w"))
    return rc


def cmd_dims(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
    emb = hdr["0.encoder.weight"]["shape"][1]
    layers = 0
    while f"0.rnns.{layers}.module.weight_ih_l0" in hdr:
        layers += 1
    hidden = hdr["0.rnns.0.weight_hh_l0_raw"]["shape"][1]  # [4H, H]; one layer: H = emb
    print(emb, hidden, layers)


def primary(m):
    return ("accuracy", m["accuracy"]) if m.get("accuracy") is not None else ("microF1", m["microF1"])


def stats(xs):
    if not xs:
        return None
    mean = sum(xs) / len(xs)
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return mean, sd, min(xs), max(xs), len(xs)


def cmd_table(out, sets, rows):
    res = {}
    for s in sets:
        d = os.path.join(out, s.replace("/", "_"))
        for r in rows:
            runs = []
            for f in sorted(os.listdir(d)) if os.path.isdir(d) else []:
                if f.startswith(r + "-seed") and f.endswith(".json"):
                    runs.append(json.load(open(os.path.join(d, f))))
            res[s, r] = runs
    print(f"{'data set':14} {'row':42} {'metric':8} {'mean':>7} {'spread':>7} {'min..max':>13} {'macroF1':>7} {'seeds':>5} {'s/run':>6} {'cpu s':>6}")
    deltas_fastai, deltas_linear = [], []
    for s in sets:
        means = {}
        for r in rows:
            runs = res[s, r]
            if not runs:
                print(f"{s:14} {ROW_NAMES.get(r, r):42} (no runs)")
                continue
            name = primary(runs[0])[0]
            st = stats([primary(m)[1] for m in runs])
            mac = stats([m["macroF1"] for m in runs])
            secs = stats([m.get("seconds", float("nan")) for m in runs])
            cpu = stats([m.get("cpuSeconds", float("nan")) for m in runs])
            means[r] = st[0]
            print(f"{s:14} {ROW_NAMES.get(r, r):42} {name:8} {st[0]:7.4f} {st[1]:7.4f} {st[2]:6.4f}..{st[3]:6.4f} "
                  f"{mac[0]:7.4f} {st[4]:5d} {secs[0]:6.1f} {cpu[0]:6.1f}")
        if "random" in means and "fastai" in means:
            deltas_fastai.append(means["random"] - means["fastai"])
        best = next((r for r in ("pretrained-ft", "pretrained", "random") if r in means), None)
        if best and "tfidf-lr" in means:
            deltas_linear.append(means[best] - means["tfidf-lr"])
            print(f"{s:14} {'kubefit (' + best + ') - TF-IDF + LR':42} {means[best] - means['tfidf-lr']:+.4f}")
    f = lambda xs: f"{sum(xs) / len(xs):+.4f}" if xs else "nan"
    print("quality_delta_vs_fastai=" + f(deltas_fastai))
    print("quality_delta_vs_linear=" + f(deltas_linear))


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "run" and sys.argv[3] == "--":
        sys.exit(cmd_run(sys.argv[2], sys.argv[4:]))
    if len(sys.argv) == 3 and sys.argv[1] == "dims":
        return cmd_dims(sys.argv[2])
    if len(sys.argv) == 5 and sys.argv[1] == "table":
        return cmd_table(sys.argv[2], sys.argv[3].split(), sys.argv[4].split())
    sys.exit(__doc__)


if __name__ == "__main__":
    main()
