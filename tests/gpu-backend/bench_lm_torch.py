#!/usr/bin/env python3
"""bench_lm_torch: the PyTorch peer of bench_lm_gpu - one AWD-LSTM LM training step on CUDA:
forward (cuDNN LSTMs with weight drop), cross-entropy + AR/TAR, backward, clip_grad_norm_(0.1),
AdamW (decoupled weight decay, fused), timed the same way (device drained at each boundary).
Uses fastai's own AWD_LSTM (get_language_model) when fastai imports, else the same model written
here on nn.LSTM (weight drop through torch.func.functional_call; --impl torch forces it).
--math fp32|tf32|bf16 as bench_lm_gpu (bf16: torch.autocast to bfloat16 around forward + loss).
Prints one JSON line like bench_lm_gpu. Exits 77 when torch or a CUDA device is missing, 1 when
the loss is not finite."""
import argparse
import json
import math
import sys
import time


def parse():
    p = argparse.ArgumentParser()
    for name, default in (("vocab", 60000), ("emb", 400), ("hidden", 1152), ("layers", 3),
                          ("batch", 64), ("bptt", 72), ("steps", 10), ("warmup", 2)):
        p.add_argument("--" + name, type=int, default=default)
    p.add_argument("--math", choices=("fp32", "tf32", "bf16"), default="fp32",
                   help="fp32 (default), tf32 (matmuls and cuDNN), bf16 (autocast)")
    p.add_argument("--tf32", action="store_const", dest="math", const="tf32", help="= --math tf32")
    p.add_argument("--impl", choices=("auto", "fastai", "torch"), default="auto")
    p.add_argument("--device", default="cuda", help="cpu: only to check this script, tiny sizes")
    return p.parse_args()


# fastai awd_lstm_lm_config dropouts (drop_mult 1), as nn_config_lm(V, 1).
DROPS = dict(output_p=0.1, hidden_p=0.15, input_p=0.25, embed_p=0.02, weight_p=0.2)


# bf16 with a cuDNN that has no bfloat16 LSTM (torch before cuDNN 9.13): our model can run its
# LSTMs in FP32 and the rest under autocast (run_first_step turns this on; the JSON says so).
LSTM_FP32 = {"on": False}


def run_first_step(fwd, a, impl, reset):
    """fwd() of the first step; in bf16 with our model a RuntimeError (no bf16 LSTM) retries it
    once with LSTM_FP32 on. Returns (fwd's result, impl, possibly suffixed)."""
    try:
        return fwd(), impl
    except RuntimeError as e:
        if a.math != "bf16" or impl != "torch" or LSTM_FP32["on"]:
            raise
        print(f"bf16 LSTM failed ({str(e).splitlines()[0]}); running the LSTMs in FP32",
              file=sys.stderr)
        LSTM_FP32["on"] = True
        reset()
        return fwd(), impl + "+lstm-fp32"


def adamw(torch, params, dev):
    """fastai's Adam groups as torch AdamW: weight decay 0.01 on matrices, none on biases."""
    decay = [p for p in params if p.dim() > 1]
    no_decay = [p for p in params if p.dim() <= 1]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=1e-3, betas=(0.9, 0.99), eps=1e-5, fused=dev.type == "cuda")


def time_steps(torch, a, fwd, opt, params, sync, impl, reset, name):
    """Warm-up then timed training steps: fwd() -> (loss read on the host, loss to
    differentiate), backward, clip_grad_norm_(0.1), opt.step(), the device drained at each
    boundary. Returns (t_fwd, t_bwd, t_opt, loss, impl) summed over the timed steps, or None
    (message printed) when the loss is not finite."""
    t_fwd = t_bwd = t_opt = 0.0
    loss_v = float("nan")
    for it in range(a.warmup + a.steps):
        sync()
        t0 = time.perf_counter()
        if it == 0:
            (shown, loss), impl = run_first_step(fwd, a, impl, reset)
        else:
            shown, loss = fwd()
        loss_v = shown.item()  # the host reads the loss, as kubefit's forward does
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        loss.backward()
        sync()
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(params, 0.1)
        opt.step()
        sync()
        t3 = time.perf_counter()
        if it >= a.warmup:
            t_fwd, t_bwd, t_opt = t_fwd + t1 - t0, t_bwd + t2 - t1, t_opt + t3 - t2
    if not math.isfinite(loss_v):
        print(f"{name}: the loss is {loss_v} in {a.math}: not a usable timing", file=sys.stderr)
        return None
    return t_fwd, t_bwd, t_opt, loss_v, impl


def awd_encoder(torch, vocab, E, H, NL, drops):
    """fastai's AWD_LSTM (encoder_dp, input_dp, weight-dropped LSTMs, hidden_dps, carried
    detached state resized to the batch as _change_hidden does) on nn.LSTM/cuDNN. forward(tok)
    returns (last layer raw output, output of the last layer before hidden dropout: the same)."""
    nn, F = torch.nn, torch.nn.functional

    def mask(like, shape, p):  # RNNDropout / EmbeddingDropout masks: 0 or 1/(1-p)
        return like.new_empty(shape).bernoulli_(1 - p).div_(1 - p)

    class WDLSTM(nn.Module):  # one-layer LSTM whose recurrent weight is dropped per forward
        def __init__(self, i, h, p):
            super().__init__()
            self.lstm, self.p = nn.LSTM(i, h, batch_first=True), p
            self.w_hh_raw = nn.Parameter(self.lstm.weight_hh_l0.detach().clone())
            self.lstm.weight_hh_l0.requires_grad_(False)

        def forward(self, x, hc):
            params = dict(self.lstm.named_parameters())
            params["weight_hh_l0"] = F.dropout(self.w_hh_raw, self.p, self.training)
            if LSTM_FP32["on"]:
                with torch.autocast(device_type=x.device.type, enabled=False):
                    return torch.func.functional_call(
                        self.lstm, params, (x.float(), tuple(h.float() for h in hc)))
            return torch.func.functional_call(self.lstm, params, (x, hc))

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(vocab, E, padding_idx=1)
            self.rnns = nn.ModuleList(WDLSTM(E if l == 0 else H, E if l == NL - 1 else H,
                                             drops["weight_p"]) for l in range(NL))
            self.hidden = None

        def reset(self):
            self.hidden = None

        def resize(self, bs):  # fastai _change_hidden: new rows start at 0, dropped rows go
            old = self.hidden[0][0].size(1)
            if bs > old:
                self.hidden = [tuple(torch.cat([h, h.new_zeros(1, bs - old, h.size(2))], 1)
                                     for h in hc) for hc in self.hidden]
            elif bs < old:
                self.hidden = [tuple(h[:, :bs].contiguous() for h in hc) for hc in self.hidden]

        def forward(self, tok):
            w = self.emb.weight
            if self.training:
                w = w * mask(w, (vocab, 1), drops["embed_p"])
            x = F.embedding(tok, w, padding_idx=1)
            if self.training:
                x = x * mask(x, (x.size(0), 1, x.size(2)), drops["input_p"])
            if self.hidden is None:
                self.hidden = [(x.new_zeros(1, x.size(0), r.lstm.hidden_size),) * 2
                               for r in self.rnns]
            elif self.hidden[0][0].size(1) != x.size(0):
                self.resize(x.size(0))
            new = []
            for l, r in enumerate(self.rnns):
                x, hc = r(x, self.hidden[l])
                new.append(tuple(h.detach() for h in hc))
                if l != len(self.rnns) - 1 and self.training:
                    x = x * mask(x, (x.size(0), 1, x.size(2)), drops["hidden_p"])
            self.hidden = new
            return x

    return Encoder(), mask


def torch_model(torch, a):
    nn, F = torch.nn, torch.nn.functional
    encoder, mask = awd_encoder(torch, a.vocab, a.emb, a.hidden, a.layers, DROPS)

    class LM(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = encoder
            self.bias = nn.Parameter(torch.zeros(a.vocab))

        def forward(self, tok):
            x = self.encoder(tok)
            out = x * mask(x, (x.size(0), 1, x.size(2)), DROPS["output_p"]) if self.training else x
            return F.linear(out, self.encoder.emb.weight, self.bias), x, out

    return LM()


def math_context(torch, math, device):
    """fp32: no TF32 anywhere; tf32: TF32 in matmuls and cuDNN; bf16: autocast to bfloat16
    around forward + loss (fastai's to_fp16 does the same with float16), FP32 master weights."""
    torch.backends.cuda.matmul.allow_tf32 = math == "tf32"
    torch.backends.cudnn.allow_tf32 = math == "tf32"
    if math == "bf16":
        if device.type == "cpu":  # oneDNN's bf16 LSTM needs AVX512-BF16; the check here may lack it
            torch.backends.mkldnn.enabled = False
        return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    import contextlib
    return contextlib.nullcontext


def fastai_model(a):
    from fastai.text.models.awdlstm import AWD_LSTM, awd_lstm_lm_config
    from fastai.text.models.core import get_language_model
    cfg = dict(awd_lstm_lm_config, emb_sz=a.emb, n_hid=a.hidden, n_layers=a.layers)
    return get_language_model(AWD_LSTM, a.vocab, config=cfg, drop_mult=1.0)


def bench_torch(a):
    """torch set up for a timing run on a.device, or None (the reason printed) when torch is
    missing or sees no CUDA device."""
    try:
        import torch
    except ImportError as e:
        print(f"SKIP: no torch ({e})", file=sys.stderr)
        return None
    if a.device == "cuda" and not torch.cuda.is_available():
        print("SKIP: torch sees no CUDA device", file=sys.stderr)
        return None
    torch.backends.cudnn.benchmark = True
    return torch


def main():
    a = parse()
    torch = bench_torch(a)
    if torch is None:
        return 77
    impl = a.impl
    model = None
    if impl in ("auto", "fastai"):
        try:
            model, impl = fastai_model(a), "fastai"
        except ImportError as e:
            if impl == "fastai":
                raise
            print(f"fastai not importable ({e}); using the nn.LSTM model", file=sys.stderr)
    if model is None:
        model, impl = torch_model(torch, a), "torch"
    dev = torch.device(a.device)
    autocast = math_context(torch, a.math, dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    model = model.to(dev).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = adamw(torch, params, dev)
    g = torch.Generator(device="cpu").manual_seed(12345)
    x = torch.randint(0, a.vocab, (a.batch, a.bptt), generator=g).to(dev)
    y = torch.randint(0, a.vocab, (a.batch, a.bptt), generator=g).to(dev)
    def fwd():
        with autocast():
            logits, raw, out = model(x)
            if isinstance(logits, (list, tuple)):
                logits = logits[-1]
            raw = raw[-1] if isinstance(raw, (list, tuple)) else raw
            out = out[-1] if isinstance(out, (list, tuple)) else out
            ce = torch.nn.functional.cross_entropy(logits.reshape(-1, a.vocab).float(),
                                                   y.reshape(-1))
            return ce, ce + 2.0 * out.float().pow(2).mean() + \
                1.0 * (raw[:, 1:] - raw[:, :-1]).float().pow(2).mean()
    timed = time_steps(torch, a, fwd, opt, params, sync, impl,
                       lambda: model.encoder.reset(), "bench_lm_torch")
    if timed is None:
        return 1
    t_fwd, t_bwd, t_opt, loss_ce, impl = timed
    n = a.steps
    step = (t_fwd + t_bwd + t_opt) / n
    print(json.dumps({
        "bench": "lm_step", "backend": "pytorch-" + impl, "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu", "math": a.math,
        "vocab": a.vocab,
        "emb": a.emb, "hidden": a.hidden, "layers": a.layers, "batch": a.batch, "bptt": a.bptt,
        "steps": n, "params": sum(p.numel() for p in params),
        "fwd_ms": round(1e3 * t_fwd / n, 3), "bwd_ms": round(1e3 * t_bwd / n, 3),
        "opt_ms": round(1e3 * t_opt / n, 3), "step_ms": round(1e3 * step, 3),
        "tokens": a.batch * a.bptt, "tokens_per_s": round(a.batch * a.bptt / step, 1), "loss": round(loss_ce, 4)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
