"""loss_optim_ref.py - PyTorch's side of tests/t-loss-optim.sh.

    loss_optim_ref.py gen DIR     write the cases (DIR/cases.txt), their inputs
                                  and PyTorch's results into DIR
    loss_optim_ref.py check DIR   compare tests/loss_optim's results (DIR/*.c_*)
                                  with PyTorch's, one PASS/FAIL line per check

Files are raw little-endian arrays (numpy tofile/fromfile).  Losses: PyTorch
in float64 (autograd for the gradients) on the same float32 inputs, so the
reference is exact to ~1e-15 and the comparison measures our error alone.
Label smoothing: the target tensor smoothed, y (1 - E) + E / 2, before
PyTorch's losses (class weights and focal terms as for the others).
Accumulation: K backward calls of each batch's loss divided by K (what a
PyTorch user writes), the gradient summed on the logits, against K calls
of our loss on a batch each, scaled by the step's K B images.
Optimizers: torch.optim 1.13 in float32 with foreach=False (the single-tensor
path), several steps, an lr change in the middle, frozen blocks (.grad None)
and a block without weight decay (a second param group).
"""
import sys

import numpy as np
import torch
import torch.nn.functional as F
import torchvision

NTYPES = 8
# MURA v1.1 training images (abnormal, normal) per type; index 0 = unknown.
MURA_A = [0, 2006, 1968, 661, 1484, 599, 4168, 3987]
MURA_N = [0, 2925, 3138, 1164, 4059, 673, 4211, 5765]

# name, kind, gamma, alpha, weights mode, boost, counts, fractional labels[, smoothing]
LOSS_CASES = [
    ("bce_smooth", "bce", 2, -1, "none", 1.0, "mura", 0, 0.1),
    ("bce_pertype_boost_smooth", "bce", 2, -1, "per-type", 1.5, "mura", 1, 0.2),
    ("focal_g2_a25_pertype_smooth", "focal", 2, 0.25, "per-type", 1.0, "mura", 0, 0.1),
    ("focal_g15_smooth_unweighted", "focal", 1.5, 0.25, "none", 1.0, "mura", 1, 0.05),
    ("bce_plain", "bce", 2, -1, "none", 1.0, "mura", 0),
    ("bce_none_boost2", "bce", 2, -1, "none", 2.0, "mura", 1),
    ("bce_global", "bce", 2, -1, "global", 1.0, "mura", 0),
    ("bce_pertype_boost", "bce", 2, -1, "per-type", 1.5, "mura", 1),
    ("bce_pertype_fallback", "bce", 2, -1, "per-type", 1.0, "sparse", 1),
    ("focal_g2", "focal", 2, -1, "none", 1.0, "mura", 0),
    ("focal_g2_a25", "focal", 2, 0.25, "none", 1.0, "mura", 0),
    ("focal_g0", "focal", 0, -1, "none", 1.0, "mura", 1),
    ("focal_g15_a25_pertype", "focal", 1.5, 0.25, "per-type", 1.5, "mura", 1),
    ("focal_g2_global_binary", "focal", 2, 0.75, "global", 1.0, "mura", 0),
]

# name, kind, gamma, alpha, weights mode, boost, smoothing, K batches of B
ACCUM_CASES = [
    ("accum_bce_pertype_smooth", "bce", 2, -1, "per-type", 1.5, 0.1, 4, 8),
    ("accum_focal_a25", "focal", 2, 0.25, "none", 1.0, 0.0, 3, 5),
]

SIZES = [37, 1000, 5, 4099]
# name, kind, lr, momentum, dampening, nesterov, wd, beta1, beta2, eps, amsgrad,
# lr change (step, new lr), no_decay per block, frozen steps per block
STEPS = 6
FROZEN = ["000000", "110000", "001100", "000000"]
NODECAY = [0, 0, 1, 0]
OPTIM_CASES = [
    ("sgd_plain", "sgd", 0.1, 0, 0, 0, 0, 0.9, 0.999, 1e-8, 0, (3, 0.05)),
    ("sgd_momentum_wd", "sgd", 0.01, 0.9, 0, 0, 1e-4, 0.9, 0.999, 1e-8, 0, (3, 0.001)),
    ("sgd_nesterov_wd", "sgd", 0.03, 0.9, 0, 1, 5e-4, 0.9, 0.999, 1e-8, 0, (2, 0.01)),
    ("sgd_dampening", "sgd", 0.02, 0.8, 0.1, 0, 1e-3, 0.9, 0.999, 1e-8, 0, (4, 0.002)),
    ("adam", "adam", 1e-3, 0, 0, 0, 0, 0.9, 0.999, 1e-8, 0, (3, 1e-4)),
    ("adam_wd", "adam", 1e-4, 0, 0, 0, 1e-2, 0.9, 0.999, 1e-8, 0, (3, 1e-5)),
    ("adam_amsgrad_wd", "adam", 2e-3, 0, 0, 0, 1e-3, 0.8, 0.99, 1e-6, 1, (2, 1e-3)),
    ("adamw", "adamw", 1e-3, 0, 0, 0, 1e-2, 0.9, 0.999, 1e-8, 0, (3, 1e-4)),
    ("adamw_amsgrad", "adamw", 1.9e-4, 0, 0, 0, 0.05, 0.9, 0.999, 1e-8, 1, (4, 1.9e-5)),
]


def paper_weights(a, n, boost):
    if a == 0 or n == 0:
        return None
    t = float(a) + float(n)
    return np.float32(a / t), np.float32(boost * (n / t))


def class_weights(mode, ab, no, boost):
    """The weight table, written from loss.h's promise, independently of loss.c."""
    g = (np.float32(1.0), np.float32(boost))
    if mode != "none":
        g = paper_weights(sum(ab), sum(no), boost) or g
    w0 = np.empty(NTYPES, np.float32)
    w1 = np.empty(NTYPES, np.float32)
    for t in range(NTYPES):
        w = g
        if mode == "per-type":
            w = paper_weights(ab[t], no[t], boost) or g
        w0[t], w1[t] = w
    return w0, w1


def torch_loss(kind, gamma, alpha, mode, boost, w0, w1, zt, yt, tt):
    """PyTorch's mean loss of a batch (float64 tensors)."""
    w0t = torch.tensor(w0, dtype=torch.float64)[tt]
    w1t = torch.tensor(w1, dtype=torch.float64)[tt]
    weighted = mode != "none" or boost != 1.0
    if kind == "bce":
        if weighted:  # loss_i = w0 [(w1/w0) y sp(-z) + (1-y) sp(z)]
            return F.binary_cross_entropy_with_logits(zt, yt, weight=w0t, pos_weight=w1t / w0t)
        return F.binary_cross_entropy_with_logits(zt, yt)
    if not weighted:
        return torchvision.ops.sigmoid_focal_loss(zt, yt, alpha=alpha, gamma=gamma, reduction="mean")
    # torchvision's sigmoid_focal_loss with the class-weighted BCE inside
    p = torch.sigmoid(zt)
    ce = F.binary_cross_entropy_with_logits(zt, yt, weight=w0t, pos_weight=w1t / w0t, reduction="none")
    p_t = p * yt + (1 - p) * (1 - yt)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (alpha * yt + (1 - alpha) * (1 - yt)) * loss
    return loss.mean()


def gen_accum(d, rng, case, out):
    name, kind, gamma, alpha, mode, boost, smooth, k, b = case
    n = k * b
    z = (rng.standard_normal(n) * 3).astype(np.float32)
    y = rng.integers(0, 2, n).astype(np.float32)
    y[: n // 4] = rng.random(n // 4).astype(np.float32)
    t = rng.integers(0, NTYPES, n).astype(np.uint8)
    w0, w1 = class_weights(mode, MURA_A, MURA_N, boost)
    for ext, v in (("z", z), ("y", y), ("t", t)):
        v.tofile(f"{d}/{name}.{ext}")
    np.array(MURA_A + MURA_N, np.uint64).tofile(f"{d}/{name}.counts")
    np.concatenate([w0, w1]).astype(np.float32).tofile(f"{d}/{name}.t_w")
    zt = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    ys = torch.tensor(y, dtype=torch.float64) * (1 - smooth) + smooth / 2
    tt = torch.tensor(t.astype(np.int64))
    total = 0.0
    for i in range(k):  # loss.backward() per batch, the gradients summed
        s = slice(i * b, (i + 1) * b)
        loss = torch_loss(kind, gamma, alpha, mode, boost, w0, w1, zt[s], ys[s], tt[s]) / k
        loss.backward()
        total += loss.item()
    np.array([total], np.float64).tofile(f"{d}/{name}.t_loss")
    zt.grad.numpy().astype(np.float64).tofile(f"{d}/{name}.t_dz")
    out.write(f"accum {name} kind={kind} gamma={gamma} alpha={alpha} weights={mode} boost={boost} "
              f"smoothing={smooth} n={n} k={k}\n")


def gen_loss(d, rng, case, out):
    name, kind, gamma, alpha, mode, boost, counts, frac = case[:8]
    smooth = case[8] if len(case) > 8 else 0.0
    if counts == "mura":
        ab, no = MURA_A, MURA_N
    else:  # empty types, a one-class type, and unknown-type images
        ab = [5, 0, 30, 0, 12, 7, 0, 40]
        no = [0, 0, 0, 25, 18, 3, 0, 60]
    extreme = np.array([50, -50, 100, -100, 1000, -1000, 0, 30, -30], np.float32)
    z = np.concatenate([(rng.standard_normal(64) * 4).astype(np.float32),
                        extreme, extreme]).astype(np.float32)
    n = len(z)
    y = rng.integers(0, 2, n).astype(np.float32)
    y[-2 * len(extreme):] = np.repeat([0.0, 1.0], len(extreme))
    if frac:
        y[: n // 3] = rng.random(n // 3).astype(np.float32)
    t = rng.integers(0, NTYPES, n).astype(np.uint8)
    w0, w1 = class_weights(mode, ab, no, boost)

    z.tofile(f"{d}/{name}.z")
    y.tofile(f"{d}/{name}.y")
    t.tofile(f"{d}/{name}.t")
    np.array(ab + no, np.uint64).tofile(f"{d}/{name}.counts")
    np.concatenate([w0, w1]).astype(np.float32).tofile(f"{d}/{name}.t_w")

    zt = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    yt = torch.tensor(y, dtype=torch.float64) * (1 - smooth) + smooth / 2
    tt = torch.tensor(t.astype(np.int64))
    loss = torch_loss(kind, gamma, alpha, mode, boost, w0, w1, zt, yt, tt)
    loss.backward()
    np.array([loss.item()], np.float64).tofile(f"{d}/{name}.t_loss")
    zt.grad.numpy().astype(np.float64).tofile(f"{d}/{name}.t_dz")
    out.write(f"loss {name} kind={kind} gamma={gamma} alpha={alpha} weights={mode} "
              f"boost={boost} smoothing={smooth} n={n}\n")


def gen_optim(d, rng, case, out):
    (name, kind, lr, mom, damp, nest, wd, b1, b2, eps, ams, (lr_at, lr2)) = case
    w0 = [(rng.standard_normal(n) * 0.5).astype(np.float32) for n in SIZES]
    grads = [[(rng.standard_normal(n) * 10.0 ** rng.uniform(-3, 1)).astype(np.float32)
              for n in SIZES] for _ in range(STEPS)]
    np.concatenate(w0).tofile(f"{d}/{name}.w0")
    np.concatenate([np.concatenate(g) for g in grads]).tofile(f"{d}/{name}.g")

    params = [torch.nn.Parameter(torch.tensor(w)) for w in w0]
    groups = [{"params": [p for p, nd in zip(params, NODECAY) if not nd]},
              {"params": [p for p, nd in zip(params, NODECAY) if nd], "weight_decay": 0.0}]
    if kind == "sgd":
        opt = torch.optim.SGD(groups, lr=lr, momentum=mom, dampening=damp, nesterov=bool(nest),
                              weight_decay=wd, foreach=False)
    else:
        cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
        opt = cls(groups, lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd, amsgrad=bool(ams),
                  foreach=False)
    steps = [0] * len(SIZES)
    for s in range(STEPS):
        if s == lr_at:
            for g in opt.param_groups:
                g["lr"] = lr2
        for b, p in enumerate(params):
            frozen = FROZEN[b][s] == "1"
            p.grad = None if frozen else torch.tensor(grads[s][b])
            steps[b] += not frozen
        opt.step()

    np.concatenate([p.detach().numpy() for p in params]).tofile(f"{d}/{name}.t_w")
    keys = (["momentum_buffer"] if mom else []) if kind == "sgd" else \
        ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if ams else [])
    state = []
    for p in params:
        st = opt.state.get(p, {})
        for k in keys:
            state.append(st[k].numpy() if k in st else np.zeros(p.numel(), np.float32))
    np.concatenate(state or [np.zeros(0, np.float32)]).astype(np.float32).tofile(
        f"{d}/{name}.t_state")
    np.array(steps, np.int64).tofile(f"{d}/{name}.t_step")
    out.write(f"optim {name} kind={kind} lr={lr!r} momentum={mom!r} dampening={damp!r} "
              f"nesterov={nest} wd={wd!r} beta1={b1!r} beta2={b2!r} eps={eps!r} amsgrad={ams} "
              f"steps={STEPS} lr_at={lr_at} lr2={lr2!r} sizes={','.join(map(str, SIZES))} "
              f"nodecay={','.join(map(str, NODECAY))} frozen={','.join(FROZEN)}\n")


def gen(d):
    torch.set_num_threads(1)
    rng = np.random.default_rng(20240511)
    with open(f"{d}/cases.txt", "w") as out:
        for c in LOSS_CASES:
            gen_loss(d, rng, c, out)
        for c in ACCUM_CASES:
            gen_accum(d, rng, c, out)
        for c in OPTIM_CASES:
            gen_optim(d, rng, c, out)


def ulps(a, b):
    """Distance in units in the last place between float32 arrays."""
    def ordered(x):
        i = x.view(np.int32).astype(np.int64)
        return np.where(i < 0, -(i & 0x7FFFFFFF), i)
    return np.abs(ordered(a) - ordered(b))


def verdict(ok, name, why):
    print(f"PASS: {name}" if ok else f"FAIL: {name}: {why}")


def check(d):
    worst = {}
    for line in open(f"{d}/cases.txt"):
        what, name = line.split()[:2]
        if what in ("loss", "accum"):
            tw = np.fromfile(f"{d}/{name}.t_w", np.float32)
            cw = np.fromfile(f"{d}/{name}.c_w", np.float32)
            verdict(np.array_equal(tw, cw), f"loss {name}: class weights",
                    f"got {cw.tolist()}, want {tw.tolist()}")
            tl = np.fromfile(f"{d}/{name}.t_loss", np.float64)[0]
            cl = np.fromfile(f"{d}/{name}.c_loss", np.float64)[0]
            rel = abs(cl - tl) / abs(tl)
            verdict(np.isfinite(cl) and rel <= 1e-6, f"loss {name}: value",
                    f"got {cl!r}, want {tl!r}")
            tg = np.fromfile(f"{d}/{name}.t_dz", np.float64)
            cg = np.fromfile(f"{d}/{name}.c_dz", np.float32).astype(np.float64)
            err = np.abs(cg - tg)
            bad = err > 1e-6 * np.abs(tg) + 1e-12
            big = np.abs(tg) > 1e-10
            grel = float((err[big] / np.abs(tg[big])).max())
            verdict(np.isfinite(cg).all() and not bad.any(), f"loss {name}: gradient",
                    f"{bad.sum()} elements off, first at {np.argmax(bad)}: "
                    f"got {cg[np.argmax(bad)]!r}, want {tg[np.argmax(bad)]!r}")
            print(f"# loss {name}: value rel diff {rel:.2e}, gradient max rel diff {grel:.2e} "
                  f"(|dz| > 1e-10), max abs diff {err.max():.2e}")
            worst["loss value"] = max(worst.get("loss value", 0), rel)
            worst["loss gradient"] = max(worst.get("loss gradient", 0), grel)
        else:
            for part, dt in (("w", np.float32), ("state", np.float32), ("step", np.int64)):
                t = np.fromfile(f"{d}/{name}.t_{part}", dt)
                c = np.fromfile(f"{d}/{name}.c_{part}", dt)
                if t.shape != c.shape:
                    verdict(False, f"optim {name}: {part}", f"{c.size} values, want {t.size}")
                    continue
                if dt == np.int64:
                    verdict(np.array_equal(t, c), f"optim {name}: step counts",
                            f"got {c.tolist()}, want {t.tolist()}")
                    continue
                u = int(ulps(t, c).max()) if t.size else 0
                rel = float((np.abs(c - t) / np.maximum(np.abs(t), 1e-30)).max()) if t.size else 0
                verdict(u <= 4, f"optim {name}: {part}", f"max {u} ulp, max rel diff {rel:.2e}")
                print(f"# optim {name}: {part}: {'bit-exact' if u == 0 else f'max {u} ulp'}, "
                      f"max rel diff {rel:.2e}")
                worst[f"optim {part}"] = max(worst.get(f"optim {part}", 0), u)
    for k, v in worst.items():
        print(f"# worst {k}: {v:.3g}" + (" ulp" if k.startswith("optim") else " relative"))


if __name__ == "__main__":
    {"gen": gen, "check": check}[sys.argv[1]](sys.argv[2])
