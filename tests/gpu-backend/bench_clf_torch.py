#!/usr/bin/env python3
"""bench_clf_torch: the PyTorch peer of bench_clf_gpu - one ULMFiT classifier training step:
SentenceEncoder over BPTT chunks of a pad-first batch (real_bs rows per chunk, state carried
detached), PoolingLinearClassifier (masked concat pooling, BatchNorm, dropout, linear),
BCE-with-logits + fastai TextLearner's AR/TAR, backward, clip_grad_norm_(0.1), AdamW (fused).
Uses fastai's get_text_classifier(AWD_LSTM) when fastai imports, else the same model written here
(--impl torch forces it): bench_lm_torch.awd_encoder (nn.LSTM/cuDNN, weight drop) and fastai's
SentenceEncoder / masked_concat_pool / LinBnDrop order re-stated. The batch is bench_clf_gpu's:
row r has len_max - (len_max-len_min)*r//(B-1) random tokens, pad-first (whole bptt chunks of
padding in front, the rest at the end). --math fp32|tf32|bf16 (bf16: autocast around forward +
loss). Prints one JSON line like bench_clf_gpu. Exits 77 without torch or a CUDA device, 1 when
the loss is not finite."""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_lm_torch import adamw, awd_encoder, bench_torch, math_context, time_steps  # noqa: E402

# fastai awd_lstm_clas_config dropouts; text_classifier_learner's drop_mult 0.5 (as bench_clf_gpu)
DROP_MULT = 0.5
CLAS_DROPS = {k: v * DROP_MULT for k, v in
              dict(output_p=0.4, hidden_p=0.3, input_p=0.4, embed_p=0.05, weight_p=0.5).items()}
PAD = 1


def parse():
    p = argparse.ArgumentParser()
    for name, default in (("vocab", 60000), ("emb", 400), ("hidden", 1152), ("layers", 3),
                          ("batch", 64), ("bptt", 72), ("min-len", 400), ("max-len", 1400),
                          ("labels", 200), ("steps", 10), ("warmup", 2)):
        p.add_argument("--" + name, type=int, default=default)
    p.add_argument("--math", choices=("fp32", "tf32", "bf16"), default="fp32")
    p.add_argument("--impl", choices=("auto", "fastai", "torch"), default="auto")
    p.add_argument("--device", default="cuda", help="cpu: only to check this script, tiny sizes")
    a = p.parse_args()
    if a.batch < 2 or a.min_len < 1 or a.min_len > a.max_len:
        p.error("need --batch >= 2 and 1 <= --min-len <= --max-len")
    return a


def torch_classifier(torch, a):
    nn = torch.nn
    encoder, _ = awd_encoder(torch, a.vocab, a.emb, a.hidden, a.layers, CLAS_DROPS)

    def masked_concat_pool(out, mask, bptt):  # fastai's, re-stated
        lens = out.shape[1] - mask.long().sum(dim=1)
        last_lens = mask[:, -bptt:].long().sum(dim=1)
        avg = out.masked_fill(mask[:, :, None], 0).sum(dim=1)
        avg = avg / lens.type(avg.dtype)[:, None]
        mx = out.masked_fill(mask[:, :, None], -float("inf")).max(dim=1)[0]
        return torch.cat([out[torch.arange(0, out.size(0)), -last_lens - 1], mx, avg], 1)

    def lin_bn_drop(n_in, n_out, p, act):  # fastai LinBnDrop(lin_first=False)
        layers = [nn.BatchNorm1d(n_in)] + ([nn.Dropout(p)] if p else [])
        layers += [nn.Linear(n_in, n_out, bias=False)] + ([act] if act else [])
        return nn.Sequential(*layers)

    class Classifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = encoder
            dims, ps = [3 * a.emb, 50, a.labels], [CLAS_DROPS["output_p"], 0.1]
            self.head = nn.Sequential(lin_bn_drop(dims[0], dims[1], ps[0], nn.ReLU(inplace=True)),
                                      lin_bn_drop(dims[1], dims[2], ps[1], None))

        def forward(self, tok):  # fastai SentenceEncoder.forward, max_len 72*20
            bs, sl = tok.shape
            self.encoder.reset()
            mask = tok == PAD
            outs, masks = [], []
            for i in range(0, sl, a.bptt):
                real_bs = (tok[:, i] != PAD).long().sum()
                o = self.encoder(tok[:real_bs, i:min(i + a.bptt, sl)])
                if sl - i <= 72 * 20:
                    outs.append(torch.cat([o, o.new_zeros(bs - o.size(0), *o.shape[1:])])
                                if o.size(0) < bs else o)
                    masks.append(mask[:, i:min(i + a.bptt, sl)])
            out, mask = torch.cat(outs, dim=1), torch.cat(masks, dim=1)
            return self.head(masked_concat_pool(out, mask, a.bptt)), out, out

    return Classifier()


def fastai_classifier(a):
    from fastai.text.models.awdlstm import AWD_LSTM, awd_lstm_clas_config
    from fastai.text.models.core import get_text_classifier
    cfg = dict(awd_lstm_clas_config, emb_sz=a.emb, n_hid=a.hidden, n_layers=a.layers)
    return get_text_classifier(AWD_LSTM, a.vocab, a.labels, seq_len=a.bptt, config=cfg,
                               drop_mult=DROP_MULT)


def make_batch(torch, a):
    """tokens (B,S) pad-first as bench_clf_gpu; returns them and the encoder positions run."""
    g = torch.Generator(device="cpu").manual_seed(12345)
    S = a.max_len
    tok = torch.full((a.batch, S), PAD, dtype=torch.long)
    for r in range(a.batch):
        n = a.max_len - (a.max_len - a.min_len) * r // (a.batch - 1)
        front = (S - n) // a.bptt * a.bptt
        tok[r, front:front + n] = torch.randint(2, a.vocab, (n,), generator=g)
    run = sum(int((tok[:, i] != PAD).sum()) * min(a.bptt, S - i) for i in range(0, S, a.bptt))
    return tok, run


def main():
    a = parse()
    torch = bench_torch(a)
    if torch is None:
        return 77
    dev = torch.device(a.device)
    autocast = math_context(torch, a.math, dev)
    impl, model = a.impl, None
    if impl in ("auto", "fastai"):
        try:
            model, impl = fastai_classifier(a), "fastai"
        except ImportError as e:
            if impl == "fastai":
                raise
            print(f"fastai not importable ({e}); using the nn.LSTM model", file=sys.stderr)
    if model is None:
        model, impl = torch_classifier(torch, a), "torch"
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    model = model.to(dev).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = adamw(torch, params, dev)
    tok, run = make_batch(torch, a)
    g = torch.Generator(device="cpu").manual_seed(777)
    y = (torch.rand(a.batch, a.labels, generator=g) < 0.05).float().to(dev)
    tok = tok.to(dev)
    def fwd():
        with autocast():
            logits, raw, out = model(tok)
            task = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), y)
            return task, task + 2.0 * out.float().pow(2).mean() + \
                1.0 * (raw[:, 1:] - raw[:, :-1]).float().pow(2).mean()
    timed = time_steps(torch, a, fwd, opt, params, sync, impl, lambda: None, "bench_clf_torch")
    if timed is None:
        return 1
    t_fwd, t_bwd, t_opt, loss_v, impl = timed
    n = a.steps
    step = (t_fwd + t_bwd + t_opt) / n
    print(json.dumps({
        "bench": "clf_step", "backend": "pytorch-" + impl, "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu",
        "math": a.math, "vocab": a.vocab, "emb": a.emb, "hidden": a.hidden, "layers": a.layers,
        "batch": a.batch, "bptt": a.bptt, "min_len": a.min_len, "max_len": a.max_len,
        "labels": a.labels, "steps": n, "params": sum(p.numel() for p in params),
        "fwd_ms": round(1e3 * t_fwd / n, 3), "bwd_ms": round(1e3 * t_bwd / n, 3),
        "opt_ms": round(1e3 * t_opt / n, 3), "step_ms": round(1e3 * step, 3), "tokens": run,
        "tokens_per_s": round(run / step, 1), "loss": round(loss_v, 4)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
