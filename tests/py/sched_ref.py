"""sched_ref.py - PyTorch's side of tests/t-sched.sh: learning-rate schedules.

    sched_ref.py cases              the cases, one line each (for tests/sched)
    sched_ref.py rates CASES        PyTorch 1.13's rate and momentum of every
                                    optimizer step of each case, as tests/sched
                                    prints them ("NAME STEP LR MOMENTUM", %.17g)
    sched_ref.py run KEY=VALUE...   one case's rates, "%g" as mura-train's
                                    progress lines print them, one a line

The loop is the one lib/lrsched.h promises: torch.optim.lr_scheduler's
schedulers on one optimizer, the warm-up (LinearLR) built first and stepped
after each of its first N optimizer steps, OneCycleLR stepped after every
step, CosineAnnealingLR, StepLR and ExponentialLR after every epoch.
"""
import sys
import warnings

import torch
from torch.optim import lr_scheduler as S

CASES = [
    "cosine kind=cosine lr=0.01 epochs=6 steps=5 t_max=6 optimizer=adam",
    "cosine_past_tmax kind=cosine lr=0.1 epochs=11 steps=3 t_max=4 min_lr=0.0001 optimizer=sgd",
    "cosine_warmup kind=cosine lr=0.003 epochs=5 steps=4 t_max=5 min_lr=1e-05 warmup=7 warmup_factor=0.01",
    "step_warmup kind=step lr=0.05 epochs=7 steps=3 step_size=2 gamma=0.5 warmup=3 warmup_factor=0.1",
    "exponential kind=exponential lr=0.001 epochs=8 steps=2 gamma=0.9",
    "onecycle_adam kind=onecycle lr=0.001 epochs=4 steps=9 max_lr=0.01 pct_start=0.3 optimizer=adam",
    "onecycle_sgd kind=onecycle lr=0.01 epochs=3 steps=7 max_lr=0.1 pct_start=0.25 optimizer=sgd",
    "warmup_only kind=plateau lr=0.0001 epochs=3 steps=5 warmup=10 warmup_factor=0.01",
]


def parse(words):
    d = dict(w.split("=", 1) for w in words)
    num = lambda k, v: float(d.get(k, v))
    return d, num


def run(words):
    """(lr, momentum) of every optimizer step of the case."""
    d, num = parse(words)
    p = torch.nn.Parameter(torch.zeros(1))
    lr = num("lr", 0.001)
    if d.get("optimizer", "sgd") == "sgd":
        opt = torch.optim.SGD([p], lr=lr, momentum=num("momentum", 0.9))
    else:
        opt = torch.optim.Adam([p], lr=lr)
    kind = d["kind"]
    epochs, steps, warm_n = int(d["epochs"]), int(d["steps"]), int(d.get("warmup", 0))
    warm = S.LinearLR(opt, start_factor=num("warmup_factor", 0.01), end_factor=1.0,
                      total_iters=warm_n) if warm_n > 0 else None
    main = None
    if kind == "cosine":
        main = S.CosineAnnealingLR(opt, T_max=int(d["t_max"]), eta_min=num("min_lr", 0))
    elif kind == "step":
        main = S.StepLR(opt, step_size=int(d["step_size"]), gamma=num("gamma", 0.1))
    elif kind == "exponential":
        main = S.ExponentialLR(opt, gamma=num("gamma", 0.1))
    elif kind == "onecycle":
        main = S.OneCycleLR(opt, max_lr=num("max_lr", 0), total_steps=epochs * steps,
                            pct_start=num("pct_start", 0.3))
    out, s = [], 0
    for _ in range(epochs):
        for _ in range(steps):
            g = opt.param_groups[0]
            out.append((g["lr"], g["momentum"] if "momentum" in g else g["betas"][0]))
            p.grad = torch.zeros(1)
            opt.step()
            s += 1
            if warm is not None and s <= warm_n:
                warm.step()
            if kind == "onecycle":
                main.step()
        if main is not None and kind != "onecycle":
            main.step()
    return out


def main():
    warnings.simplefilter("ignore")
    what = sys.argv[1]
    if what == "cases":
        print("\n".join(CASES))
    elif what == "rates":
        for line in open(sys.argv[2]):
            w = line.split()
            for i, (lr, m) in enumerate(run(w[1:]), 1):
                print("%s %d %.17g %.17g" % (w[0], i, lr, m))
    elif what == "run":
        for lr, _ in run(sys.argv[2:]):
            print("%g" % lr)


if __name__ == "__main__":
    main()
