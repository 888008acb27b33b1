"""Reference side of test_optim: fastai's own Adam, schedules and torch's clip_grad_norm_, float64.

  optim_ref.py OUT.safetensors   writes initial params, per-step grads/hypers and the params
                                 after every step as F64 tensors.
Setup: 2 groups x 2 tensors; p1 has do_wd False (a bias), p0 is force_train (a BatchNorm weight);
steps 0-2 run with freeze_to(-1) (group 0 frozen), later steps unfrozen; lr = slice(lo, hi) over
the groups (even_mults) times the one-cycle fraction; momentum from the one-cycle schedule;
steps 2 and 4 clip the global grad norm.
"""
import sys

import numpy as np
import torch
from fastai.callback.schedule import combined_cos
from fastai.optimizer import Adam
from fastai.torch_core import even_mults
from safetensors.torch import save_file

torch.manual_seed(7)
shapes = [(4, 3), (5,), (6, 2), (3,)]
groups = [0, 0, 1, 1]
params = [torch.nn.Parameter(torch.randn(*s, dtype=torch.float64)) for s in shapes]
out = {f"init.{i}": p.detach().clone() for i, p in enumerate(params)}
opt = Adam([[params[0], params[1]], [params[2], params[3]]], lr=1e-3)
opt.state[params[1]]["do_wd"] = False
opt.state[params[0]]["force_train"] = True

steps, lo, hi = 7, 2e-3 / 2.6, 2e-3 * 50
lrs = even_mults(lo, hi, 2)
out["even_mults"] = torch.tensor(np.array(list(even_mults(1e-3 / 2.6**4, 1e-3, 5)), dtype=np.float64))
sched_lr = combined_cos(0.25, 1 / 25, 1.0, 1 / 1e5)
sched_mom = combined_cos(0.25, 0.95, 0.85, 0.95)
pcts = [i / 20 for i in range(21)]
out["sched.pct"] = torch.tensor(pcts, dtype=torch.float64)
out["sched.lr_frac"] = torch.tensor([float(sched_lr(p)) for p in pcts], dtype=torch.float64)
out["sched.mom"] = torch.tensor([float(sched_mom(p)) for p in pcts], dtype=torch.float64)

for s in range(steps):
    frozen = -1 if s < 3 else 0
    opt.freeze_to(frozen)
    pct = s / steps
    frac, mom = float(sched_lr(pct)), float(sched_mom(pct))
    opt.set_hyper("lr", [lr * frac for lr in lrs])
    opt.set_hyper("mom", mom)
    for i, p in enumerate(params):
        g = torch.randn(*shapes[i], dtype=torch.float64) * (0.1 + i)
        out[f"grad.{s}.{i}"] = g.clone()
        p.grad = g if p.requires_grad else None
    clip = 0.5 if s in (2, 4) else 0.0
    trainable = [p for p in params if p.grad is not None]
    norm = torch.nn.utils.clip_grad_norm_(trainable, clip if clip > 0 else float("inf"))
    out[f"norm.{s}"] = torch.tensor([float(norm)], dtype=torch.float64)
    out[f"hyper.{s}"] = torch.tensor([frozen, pct, clip, lrs[0] * frac, lrs[1] * frac, mom], dtype=torch.float64)
    opt.step()
    for i, p in enumerate(params):
        out[f"after.{s}.{i}"] = p.detach().clone()
    for p in params:
        p.grad = None

out = {k: v.contiguous() for k, v in out.items()}
save_file(out, sys.argv[1])
