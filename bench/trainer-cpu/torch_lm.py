#!/usr/bin/env python3
"""torch_lm: the PyTorch peer of bench_lm - fastai's own AWD-LSTM language model
(get_language_model(AWD_LSTM, V, awd_lstm_lm_config)) in float32 on the CPU, timed per training
step: dropout masks + forward + loss (CE + AR + TAR, as fastai's RNNRegularizer) + backward,
optionally an optimizer step (--adam). Same flags and JSON fields as bench_lm, so
bench/trainer-cpu.sh can compare the two lines:
  torch_lm.py [--vocab V] [--emb E] [--hidden H] [--layers NL] [--batch B] [--bptt T]
              [--steps N] [--warmup W] [--threads N] [--eval] [--adam] [--bf16]
cpu_ms is process CPU time per step (all threads), fwd_ms/bwd_ms wall time per step.
--bf16: forward and loss under torch.autocast("cpu", dtype=torch.bfloat16) (float32 weights).
The line also says what PyTorch computed with: "cpu_capability" (ATen's vector kernels),
"blas" and "onednn" (the libraries it was built with) and "lstm" - "onednn" when the warm-up
step's autograd graph holds MkldnnRnnLayerBackward (oneDNN's fused LSTM), else "aten".
"""
import argparse
import json
import re
import time

import torch
import torch.nn.functional as F
from fastai.text.models.awdlstm import AWD_LSTM, awd_lstm_lm_config
from fastai.text.models.core import get_language_model


def graph_ops(fn):
    """Names of the autograd nodes behind fn (what the forward ran)."""
    seen, todo, names = set(), [fn], set()
    while todo:
        f = todo.pop()
        if f is None or f in seen:
            continue
        seen.add(f)
        names.add(type(f).__name__)
        todo.extend(g for g, _ in f.next_functions)
    return names


def main():
    ap = argparse.ArgumentParser()
    for name, default in (("vocab", 8000), ("emb", 400), ("hidden", 1152), ("layers", 3),
                          ("batch", 32), ("bptt", 70), ("steps", 5), ("warmup", 1),
                          ("threads", 0)):
        ap.add_argument("--" + name, type=int, default=default)
    ap.add_argument("--eval", action="store_true")
    ap.add_argument("--adam", action="store_true")
    ap.add_argument("--bf16", action="store_true")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(1)

    cfg = dict(awd_lstm_lm_config)
    cfg.update(emb_sz=a.emb, n_hid=a.hidden, n_layers=a.layers)
    model = get_language_model(AWD_LSTM, a.vocab, config=cfg).float()
    model.train(not a.eval)
    model[0].reset()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3) if a.adam else None
    g = torch.Generator().manual_seed(12345)
    x = torch.randint(0, a.vocab, (a.batch, a.bptt), generator=g)
    y = torch.randint(0, a.vocab, (a.batch, a.bptt), generator=g)
    alpha, beta = 2.0, 1.0

    t_fwd = t_bwd = cpu = 0.0
    loss_v = 0.0
    ops = set()
    for it in range(a.warmup + a.steps):
        c0, t0 = time.process_time(), time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            logits, raw, dropped = model(x)
            ce = F.cross_entropy(logits.view(-1, a.vocab).float(), y.view(-1))
            loss = ce
            if not a.eval:
                loss = loss + alpha * dropped.float().pow(2).mean()
                loss = loss + beta * (raw[:, 1:] - raw[:, :-1]).float().pow(2).mean()
        t1 = time.perf_counter()
        if not ops:
            ops = graph_ops(loss.grad_fn)
        model.zero_grad()
        loss.backward()
        if opt is not None:
            opt.step()
        t2 = time.perf_counter()
        if it >= a.warmup:
            t_fwd += t1 - t0
            t_bwd += t2 - t1
            cpu += time.process_time() - c0
        loss_v = ce.item()
    n = a.steps
    conf = torch.__config__.show()
    mkl = re.search(r"Math Kernel Library Version ([0-9.]+)", conf)
    dnn = re.search(r"MKL-DNN v([0-9.]+)", conf)
    blas = re.search(r"BLAS_INFO=(\w+)", conf)
    print(json.dumps({
        "bench": "lm_fwd_bwd", "backend": "pytorch", "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "blas": ("MKL " + mkl.group(1)) if mkl else (blas.group(1) if blas else "?"),
        "onednn": dnn.group(1) if dnn else None,
        "lstm": "onednn" if any("MkldnnRnn" in k for k in ops) else "aten",
        "precision": "bf16-autocast" if a.bf16 else "fp32",
        "threads": torch.get_num_threads(), "vocab": a.vocab, "emb": a.emb, "hidden": a.hidden,
        "layers": a.layers, "batch": a.batch, "bptt": a.bptt, "steps": n,
        "params": sum(p.numel() for p in model.parameters()),
        "fwd_ms": round(1e3 * t_fwd / n, 2), "bwd_ms": round(1e3 * t_bwd / n, 2),
        "cpu_ms": round(1e3 * cpu / n, 2),
        "tokens_per_s": round(a.batch * a.bptt * n / (t_fwd + t_bwd), 1),
        "loss": round(loss_v, 4)}))


if __name__ == "__main__":
    main()
