"""parity_models.py - the PyTorch side of tests/t-parity.sh: torchvision's
own models (and, for the convolutional head, a torch.nn module written here
to model.h's description) against lib/nn, driven through `tests/nn_model
parity`.

    parity_models.py DRIVER WORKDIR CASE...     CASE = ARCH:HEAD:N:H:W

For each case: torchvision's random initialisation (seeded), its batch norms
given non-trivial affine weights and running statistics (from a training
pass with momentum 1 over another random batch), saved as a plain state dict
in safetensors; a random input batch x and upstream gradient dlogits.  The C
driver loads the file (every name and shape must match, nothing dropped),
runs an evaluation forward, a training forward, a backward, two SGD steps
and two Adam steps.  Compared here, each with its own tolerance:
  - the state's names in torchvision's state_dict order, and the model as
    the driver saved it (after the training forward) loads into the
    torchvision model with load_state_dict(strict=True) and equals the state
    PyTorch has then;
  - logits, evaluation and training mode: max |ours - torch| <= 1e-4 max |torch|;
  - every running mean and variance after the training forward: the same,
    per tensor, and every num_batches_tracked exactly;
  - every parameter's gradient from sum(dlogits * logits): max error <= 1e-3
    of that tensor's largest magnitude (but see kinks below);
  - two SGD steps (lr 0.1, momentum 0.9, weight decay 1e-4) from each side's
    own gradients: the weight change within 1e-3 of its largest magnitude;
  - two Adam steps (lr 0.01, weight decay 1e-4) on the model's parameter
    blocks: torch.optim.Adam given our gradients gives our weights, within
    1e-6 of each tensor's largest weight.  (From each side's own gradients
    Adam's first steps are lr * sign(g): an entry whose gradient is below
    the two backward passes' rounding could flip, so the gradients are
    compared above and the optimizer here.)

Kinks.  A ReLU input within rounding of 0 (there are millions of inputs,
so in most batches one lies within 1e-6 of its tensor's spread) is positive
for one float32 implementation and not for another: the forward does not
notice, but the gradient then differs by that position's whole share,
measured here up to 6e-3 of a tensor's maximum between PyTorch in float32
and in float64, and up to 6% between PyTorch and us.  Either answer is a
correct gradient of float32 arithmetic.  So: the batch norms' biases are
drawn away from 0 (+-1.5 to 2.5, weights 0.5 to 1), which leaves fewer
inputs near the kink; of 8 seeded input batches the first with no
training-mode ReLU input within KINK_TAU of 0 (relative to its tensor's
standard deviation, in float64) is used, or the one with the fewest; and
for each such input left, the float64 gradient is recomputed with that one
mask bit flipped: a tensor's tolerance is 1e-3 or 1.5 times the largest
such change of its gradient, if larger, and the PASS line says how many
tensors that widened.  A wrong backward shows up in nearly every tensor,
far beyond.
Prints PASS/FAIL lines.
"""
import copy
import os
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_tool  # noqa: E402


# Training-mode ReLU inputs closer than this to 0 (relative to their
# tensor's standard deviation) may go either way in float32 (see the top).
KINK_TAU = 5e-6


class ConvHead(nn.Module):
    """model.h's MURA_HEAD_CONV: conv 3x3 -> 256, BN, ReLU, conv 1x1 -> 1, mean."""

    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, 256, 3, padding=1, bias=False)
        self.norm1 = nn.BatchNorm2d(256)
        self.conv2 = nn.Conv2d(256, 1, 1)

    def forward(self, f):
        return self.conv2(F.relu(self.norm1(self.conv1(f)))).mean((2, 3)).flatten()


class Net(nn.Module):
    """A torchvision model; with head 'conv' its classifier replaced by ConvHead
    on the feature map that torchvision's own forward would pool.  The
    forward is torchvision's, written out so that every ReLU is a module
    (DenseNet's last one is F.relu there)."""

    def __init__(self, arch, head):
        super().__init__()
        self.dense = arch.startswith('densenet')
        self.conv_head = head == 'conv'
        tv = getattr(torchvision.models, arch)(num_classes=1)
        if self.conv_head:
            c = tv.classifier.in_features if self.dense else tv.fc.in_features
            del tv._modules['classifier' if self.dense else 'fc']
            tv.head = ConvHead(c)
        self.tv = tv
        self.relu5 = nn.ReLU()

    def features(self, x):
        m = self.tv
        if self.dense:
            return self.relu5(m.features(x))
        x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
        return m.layer4(m.layer3(m.layer2(m.layer1(x))))

    def forward(self, x):
        f = self.features(x)
        if self.conv_head:
            return self.tv.head(f)
        return (self.tv.classifier if self.dense else self.tv.fc)(f.mean((2, 3))).flatten()


class KinkFn(torch.autograd.Function):
    """ReLU whose backward mask may have bits flipped (log['flip']: call -> flat
    index), read at backward time so one graph serves every flip."""

    @staticmethod
    def forward(ctx, x, log, call):
        ctx.save_for_backward(x)
        ctx.log, ctx.call = log, call
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        mask = (x > 0).reshape(-1).clone()
        flip = ctx.log['flip'].get(ctx.call)
        if flip is not None:
            mask[flip] = ~mask[flip]
        return g * mask.reshape(x.shape).to(g.dtype), None, None


class KinkReLU(nn.Module):
    def __init__(self, log):
        super().__init__()
        self.log = log

    def forward(self, x):
        self.log['inputs'].append(x.detach())
        return KinkFn.apply(x, self.log, len(self.log['inputs']) - 1)


def verdict(name, ok, detail):
    print('%s: %s%s' % ('PASS' if ok else 'FAIL', name, ('' if ok else ': ') + detail if not ok
                        else ' (%s)' % detail))
    sys.stdout.flush()


def rel(a, b):
    """max |a - b| / max |b| (b the reference)."""
    scale = b.abs().max().item()
    return (a - b).abs().max().item() / (scale if scale > 0 else 1.0)


def worst(pairs, tol):
    """The worst relative error, and the names beyond tol (a number, or a
    dict of tolerances by name)."""
    errs = [(rel(a, b), n) for n, a, b in pairs]
    lim = tol if isinstance(tol, dict) else {n: tol for _, n in errs}
    bad = ['%s %.2g (tolerance %.2g)' % (n, e, lim[n]) for e, n in sorted(errs, reverse=True)
           if e > lim[n]]
    return max(errs)[0], bad


def settle_bn(net, n, h, w):
    """Batch norms with weights and biases far from 1 and 0, and running
    statistics of one random batch, so that a mistake in either shows;
    then PyTorch's momentum back.  Call inside torch.no_grad()."""
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.weight.uniform_(0.5, 1.0)
        m.bias.uniform_(1.5, 2.5).mul_(torch.randint(0, 2, m.bias.shape) * 2 - 1)
        m.momentum = 1.0
    net.train()
    net(torch.randn(n, 3, h, w))
    for m in bns:
        m.momentum = 0.1


def run_driver(driver, args, tag):
    """The C driver's parity command; its seconds, or None (a FAIL said) if it failed."""
    t0 = time.time()
    r = subprocess.run([driver, 'parity'] + args, capture_output=True, text=True)
    if r.returncode != 0:
        verdict('parity %s: the C driver runs' % tag, False, r.stderr.strip())
        return None
    return time.time() - t0


def torch_pass(net, x, dl):
    """The reference: logits in evaluation and in training mode, then the
    training forward's backward from dl; and the seconds it took."""
    t0 = time.time()
    net.eval()
    with torch.no_grad():
        le = net(x)
    net.train()
    lt = net(x)
    (lt * dl).sum().backward()
    return le, lt, time.time() - t0


def check_gradients(tag, out, params, kinks, x, dl, near, seed):
    """Every parameter's gradient from the driver's out against PyTorch's,
    within 1e-3 of the tensor's max, wider where a ReLU input of x lies
    near its kink (Kinks.tolerances says how much).  Returns those
    tolerances by name."""
    tol = kinks.tolerances(x, dl, near, 1e-3)
    wide = ['%s %.2g' % (k, t) for k, t in tol.items() if t > 1e-3]
    grads = [(k, out['grad.' + k], p.grad) for k, p in params.items()]
    e, bad = worst(grads, tol)
    verdict('parity %s: gradients of %d parameters' % (tag, len(grads)), not bad,
            ('worst %.2g of the tensor\'s max; input seed %d, ' % (e, seed) +
             ('%d ReLU input(s) within %g of the kink, widening %d tolerances, largest %s'
              % (len(near), KINK_TAU, len(wide), max(wide, key=lambda t: float(t.split()[1])))
              if wide else 'no ReLU input within %g of the kink' % KINK_TAU)) if not bad
            else ', '.join(bad[:5]))
    return tol


class Kinks:
    """A float64 copy of the model whose ReLUs log their inputs and can have
    a backward mask bit flipped: to find inputs near the kink, and to see
    what a flip does to the gradients."""

    def __init__(self, net, params=None):
        """net is copied, not changed; params(copy) is the module whose
        named parameters carry the state's names (default: the copy)."""
        self.net = copy.deepcopy(net).double().train()
        self.params = params(self.net) if params else self.net
        self.log = {'inputs': [], 'flip': {}}
        for mod in list(self.net.modules()):
            for name, child in list(mod.named_children()):
                if isinstance(child, nn.ReLU):
                    setattr(mod, name, KinkReLU(self.log))

    def near(self, x, tau):
        """(distance / std, call, flat index) of every training-mode ReLU
        input within tau of the kink, nearest first."""
        self.log['inputs'] = []
        with torch.no_grad():
            self.net(x.double())
        found = []
        for call, v in enumerate(self.log['inputs']):
            a = v.abs().reshape(-1) / v.std().item()
            found += [(a[i].item(), call, i.item()) for i in (a < tau).nonzero().reshape(-1)]
        return sorted(found)

    def tolerances(self, x, dl, found, base):
        """Per parameter: base, or 1.5 x the largest change of its gradient
        when one of the inputs found goes the other way, if larger."""
        self.log['inputs'], self.log['flip'] = [], {}
        out = (self.net(x.double()) * dl.double()).sum()

        def grads():
            self.net.zero_grad()
            out.backward(retain_graph=True)
            return {k: p.grad.clone() for k, p in self.params.named_parameters()}
        g0 = grads()
        tol = {k: base for k in g0}
        for _, call, i in found:
            self.log['flip'] = {call: i}
            g = grads()
            for k in g0:
                tol[k] = max(tol[k], 1.5 * rel(g[k], g0[k]))
        return tol


def pick_input(kinks, n, h, w, tau, tries=8):
    """The first of a few seeded input batches with no training-mode ReLU
    input within tau of the kink, or the one with the fewest."""
    best = None
    for seed in range(tries):
        x = torch.randn(n, 3, h, w, generator=torch.Generator().manual_seed(seed))
        found = kinks.near(x, tau)
        if best is None or len(found) < len(best[1]):
            best = (x, found, seed)
        if not found:
            break
    return best


def run_case(driver, work, case):
    arch, head, n, h, w = case.split(':')
    n, h, w = int(n), int(h), int(w)
    tag = '%s %s %dx%dx%d' % (arch, head, n, h, w)
    torch.manual_seed(20240601)
    net = Net(arch, head)
    with torch.no_grad():
        settle_bn(net, n, h, w)
    sd = net.tv.state_dict()
    names = list(sd.keys())
    fresh = Net(arch, head)
    fresh.tv.load_state_dict(sd)
    kinks = Kinks(fresh, lambda m: m.tv)
    x, near, seed = pick_input(kinks, n, h, w, KINK_TAU)
    dl = torch.randn(n)
    model_path = os.path.join(work, 'model.safetensors')
    input_path = os.path.join(work, 'input.safetensors')
    out_path = os.path.join(work, 'out.safetensors')
    st_tool.save(model_path, {k: v.contiguous() for k, v in sd.items()})
    st_tool.save(input_path, {'x': x, 'dlogits': dl})

    ours_s = run_driver(driver, [arch, head, model_path, input_path, out_path], tag)
    if ours_s is None:
        return
    out, meta, _ = st_tool.load(out_path)

    ours = meta['state_order'].split('\n')
    verdict('parity %s: state names and order are torchvision\'s' % tag, ours == names,
            '%d names' % len(names) if ours == names else
            'first difference: %s' % next((a, b) for a, b in zip(ours + [''], names + ['']) if a != b))

    params = dict(net.tv.named_parameters())
    w0 = {k: p.detach().clone() for k, p in params.items()}
    le, lt, torch_s = torch_pass(net, x, dl)

    e = rel(out['logits_eval'], le)
    verdict('parity %s: logits, evaluation mode' % tag, e <= 1e-4, 'max rel err %.2g' % e)
    e = rel(out['logits_train'], lt.detach())
    verdict('parity %s: logits, training mode (batch statistics)' % tag, e <= 1e-4,
            'max rel err %.2g' % e)

    sd = net.tv.state_dict()
    stats = [(k, out['state.' + k], v) for k, v in sd.items()
             if k.endswith('running_mean') or k.endswith('running_var')]
    e, bad = worst(stats, 1e-4)
    verdict('parity %s: %d running statistics after the training forward' % (tag, len(stats)),
            not bad, 'worst rel err %.2g' % e if not bad else ', '.join(bad[:5]))
    saved, meta, _ = st_tool.load(out_path + '.model')
    again = Net(arch, head).tv
    try:
        again.load_state_dict(saved, strict=True)
        e = max(rel(saved[k].double(), v.double()) for k, v in sd.items())
        ok = e <= 1e-4 and meta['arch'] == arch and meta['head'] == head
        why = 'max rel err %.2g, metadata %s' % (e, ', '.join('%s=%s' % kv for kv in sorted(meta.items())))
    except RuntimeError as x:
        ok, why = False, str(x).split('\n')[0]
    verdict('parity %s: our saved model loads into torchvision, strict' % tag, ok, why)
    counts = [k for k, v in sd.items() if k.endswith('num_batches_tracked')]
    verdict('parity %s: num_batches_tracked' % tag,
            all(out['state.' + k].item() == sd[k].item() for k in counts), 'differ')

    tol = check_gradients(tag, out, params, kinks, x, dl, near, seed)

    plist = list(params.values())
    opt = torch.optim.SGD(plist, lr=0.1, momentum=0.9, weight_decay=1e-4)
    opt.step()
    opt.step()
    # The change of each tensor, within its gradient tolerance of the
    # largest change, plus two float32 steps of its largest weight (the
    # change of a weight of 2 by 1e-6 is only known to 2.4e-7).
    errs, bad = [], []
    for k, p in params.items():
        ours, ref = out['sgd.' + k].reshape(p.shape), p.detach()
        big = (ref - w0[k]).abs().max().item()
        e = (ours - ref).abs().max().item()
        lim = tol[k] * big + 2.0 ** -22 * w0[k].abs().max().item()
        errs.append(e / max(big, 1e-30))
        if e > lim:
            bad.append('%s %.2g of its largest change (tolerance %.2g)' % (k, e / big, lim / big))
    verdict('parity %s: two SGD steps' % tag, not bad,
            'worst %.2g of the largest change' % max(errs) if not bad else ', '.join(bad[:5]))

    with torch.no_grad():
        for k, p in params.items():
            p.copy_(w0[k])
            p.grad.copy_(out['grad.' + k].reshape(p.shape))
    opt = torch.optim.Adam(plist, lr=0.01, weight_decay=1e-4)
    opt.step()
    opt.step()
    adam = [(k, out['adam.' + k].reshape(p.shape), p.detach()) for k, p in params.items()]
    e, bad = worst(adam, 1e-6)
    verdict('parity %s: two Adam steps on the same gradients' % tag, not bad,
            'worst %.2g of the largest weight' % e if not bad else ', '.join(bad[:5]))
    print('    %s: ours %.1f s (driver: load, 2 forwards, backward, 4 steps), torch %.1f s'
          % (tag, ours_s, torch_s))


def nrel(a, b):
    """|a - b| / |b|, whole tensors (Frobenius)."""
    a, b = a.double().reshape(-1), b.double().reshape(-1)
    scale = b.norm().item()
    return (a - b).norm().item() / (scale if scale > 0 else 1.0)


# bf16 mixed precision: ours against PyTorch's CPU autocast (bfloat16), each
# figure against its tolerance (see run_case_bf16).
BF16_LOGITS = 2e-2
BF16_STATS = 2e-2
BF16_GRADS = 6e-2
BF16_SPREAD = 8
BF16_WHOLE = 1.5


def run_case_bf16(driver, work, case):
    """A case in bf16 mixed precision (CASE:bf16).  Both sides round the
    operands of convolutions and matrix products to bf16 and sum in fp32,
    but PyTorch's autocast also stores each product's output in bf16 and
    runs the batch norm after it on that, where ours keeps fp32 outputs: so
    the two differ by bf16 rounding through the whole network, as autocast
    differs from fp32.  Compared, each against ours-minus-autocast's own
    tolerance and beside autocast-minus-fp32 (the figure it must be of the
    order of): logits in evaluation and in training mode (max error over
    the largest logit, against autocast and against fp32: BF16_LOGITS or
    twice autocast's own error against fp32 if larger), the running statistics after the
    training forward (the same per tensor, BF16_STATS).  Gradients are
    measured against PyTorch's fp32 ones, beside autocast's own error
    against those (|g - g32| / |g32| over a whole tensor; a ReLU mask near
    its kink differs between any two bf16 computations, so no per-element
    max): every tensor within BF16_SPREAD times autocast's error, or
    BF16_GRADS if larger (a batch norm's bias gradient is a sum of 8 to 32
    values at the last blocks' sizes here, all rounding noise: measured up
    to 6x autocast's on densenet121, while the median tensor's error is
    0.8x autocast's), and all gradients as one vector within BF16_WHOLE
    times autocast's (densenet121 2x64x64: 0.078 against 0.098).  A wrong
    backward errs by about 1.  And that ours did run in bf16: its logits
    differ from PyTorch's fp32 ones by more than fp32's parity tolerance
    (1e-4)."""
    arch, head, n, h, w, _ = case.split(':')
    n, h, w = int(n), int(h), int(w)
    tag = '%s %s %dx%dx%d bf16' % (arch, head, n, h, w)
    torch.manual_seed(20240601)
    net = Net(arch, head)
    with torch.no_grad():
        settle_bn(net, n, h, w)
    sd = net.tv.state_dict()
    ref = Net(arch, head)
    ref.tv.load_state_dict(sd)
    x = torch.randn(n, 3, h, w, generator=torch.Generator().manual_seed(0))
    dl = torch.randn(n)
    model_path = os.path.join(work, 'model.safetensors')
    input_path = os.path.join(work, 'input.safetensors')
    out_path = os.path.join(work, 'out.safetensors')
    st_tool.save(model_path, {k: v.contiguous() for k, v in sd.items()})
    st_tool.save(input_path, {'x': x, 'dlogits': dl})
    ours_s = run_driver(driver, [arch, head, model_path, input_path, out_path, 'bf16'], tag)
    if ours_s is None:
        return
    out, _, _ = st_tool.load(out_path)
    torch_s = bf16_verdicts(tag, out, net, net.tv, ref, ref.tv, x, dl)
    print('    %s: ours %.1f s, torch %.1f s' % (tag, ours_s, torch_s))


def bf16_verdicts(tag, out, net, mod, ref, ref_mod, x, dl):
    """run_case_bf16's comparisons (its docstring), for any network: net in
    fp32 weights run under autocast, ref a copy run in fp32, mod and ref_mod
    the modules whose state_dict names are out's (state.NAME, grad.NAME).
    Returns PyTorch's seconds."""
    t0 = time.time()
    net.eval()
    with torch.no_grad(), torch.cpu.amp.autocast(dtype=torch.bfloat16):
        le = net(x).float()
    net.train()
    with torch.cpu.amp.autocast(dtype=torch.bfloat16):
        lt = net(x).float()
    (lt * dl).sum().backward()
    torch_s = time.time() - t0
    le32, lt32, _ = torch_pass(ref, x, dl)

    for mode, ours, auto, fp in (('evaluation', out['logits_eval'], le, le32),
                                 ('training', out['logits_train'], lt.detach(), lt32.detach())):
        e, spread, off = rel(ours, auto), rel(auto, fp), rel(ours, fp)
        lim = max(BF16_LOGITS, 2 * spread)
        verdict('parity %s: logits, %s mode, against autocast and fp32' % (tag, mode), e <= lim and off <= lim,
                'max rel err against autocast %.2g, against fp32 %.2g (tolerance %.2g); autocast against fp32 %.2g'
                % (e, off, lim, spread))
        verdict('parity %s: logits, %s mode, are bf16\'s, not fp32\'s' % (tag, mode), off > 1e-4,
                'ours against fp32 %.2g' % off)
    sdb, sd32 = mod.state_dict(), ref_mod.state_dict()
    stats = [k for k in sdb if k.endswith('running_mean') or k.endswith('running_var')]
    e = max(rel(out['state.' + k], sdb[k]) for k in stats)
    spread = max(rel(sdb[k], sd32[k]) for k in stats)
    verdict('parity %s: %d running statistics' % (tag, len(stats)), e <= BF16_STATS,
            'worst rel err %.2g (tolerance %.2g); autocast against fp32 %.2g' % (e, BF16_STATS, spread))
    p16, p32 = dict(mod.named_parameters()), dict(ref_mod.named_parameters())
    ours = {k: out['grad.' + k].reshape(p.shape) for k, p in p16.items()}
    errs, bad = [], []
    for k, p in p16.items():
        e, spread = nrel(ours[k], p32[k].grad), nrel(p.grad, p32[k].grad)
        lim = max(BF16_GRADS, BF16_SPREAD * spread)
        errs.append((e / max(spread, 1e-12), e, spread, k))
        if e > lim:
            bad.append('%s %.2g (tolerance %.2g; autocast %.2g)' % (k, e, lim, spread))
    errs.sort()
    verdict('parity %s: gradients of %d parameters, each against fp32 within %g x autocast\'s error'
            % (tag, len(errs), BF16_SPREAD), not bad,
            'largest ratio %.2g (%s: %.2g, autocast %.2g), median %.2g'
            % (errs[-1][0], errs[-1][3], errs[-1][1], errs[-1][2], errs[len(errs) // 2][0])
            if not bad else ', '.join(bad[:5]))
    cat = lambda g: torch.cat([g[k].double().reshape(-1) for k in p16])
    g32 = cat({k: p.grad for k, p in p32.items()})
    e = nrel(cat(ours), g32)
    spread = nrel(cat({k: p.grad for k, p in p16.items()}), g32)
    verdict('parity %s: all gradients together against fp32, within %g x autocast\'s error'
            % (tag, BF16_WHOLE), e <= BF16_WHOLE * spread,
            'ours %.3g, autocast %.3g; ours against autocast %.3g' % (e, spread, nrel(cat(ours), cat({k: p.grad for k, p in p16.items()}))))
    return torch_s


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    # One thread: on a busy machine, PyTorch's OpenMP threads spin against
    # each other and a small model takes 50 times longer.
    torch.set_num_threads(1)
    for case in sys.argv[3:]:
        if case.endswith(':bf16'):
            run_case_bf16(sys.argv[1], sys.argv[2], case)
        else:
            run_case(sys.argv[1], sys.argv[2], case)


if __name__ == '__main__':
    main()
