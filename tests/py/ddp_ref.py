"""ddp_ref.py - the PyTorch side of tests/t-mpi.sh: data-parallel training
with torch.nn.parallel.DistributedDataParallel on the gloo backend, the
same data, shards and initial weights as `mpirun -np N mura-train`.

    ddp_ref.py setup DIR             DIR/init.safetensors, DIR/train.mt
    ddp_ref.py run DIR N SYNC B LR OUT
                                     N processes (torch.multiprocessing),
                                     one epoch of batches of B over
                                     DIR/train.mt, SGD (LR, momentum 0.9);
                                     OUT: rank 0's state dict; OUT.loss:
                                     the epoch's mean training loss
    ddp_ref.py compare A B TOL [BASE] per parameter tensor, max |a - b| /
                                     max |a| (with BASE: of the changes
                                     a - base and b - base); PASS/FAIL
    ddp_ref.py nearer REF T M BASE FLOOR
                                     with REF a float64 run (DDP_F64=1):
                                     M's error against it (as compare's,
                                     of the changes) at most twice T's, or
                                     FLOOR; PASS/FAIL

The initial weights are torchvision's resnet18(num_classes=1), seeded, with
its batch norms' weights drawn in [0.5, 1] and biases at +-[1.5, 2.5] (as
tests/py/parity_models.py draws them): few ReLU inputs then lie within
rounding of 0, where two float32 implementations may take the kink apart
(see parity_models.py).  The records are 24 float32 3 x 64 x 64 images,
already normalised (mura-train takes f32 records as they are), labels 0
and 1.  Each epoch's order is mura-train's: lib/rng.c's stream
(kappa_ref.Rng) derived from (seed 1, epoch 1, "shuffle"), a Fisher-Yates
shuffle; process r of N takes [B r / N, B (r + 1) / N) of every batch, as
lib/train.c deals it.

SYNC 1: batch norm over the global batch.  PyTorch 1.13's
torch.nn.SyncBatchNorm runs on CUDA only (it raises "SyncBatchNorm expected
input tensor to be on GPU", and its batch_norm_gather_stats kernels have no
CPU version), so SyncBN below does its arithmetic (torch/nn/modules/
_functions.py: statistics summed with all_reduce in forward, sum(dy) and
sum(dy xhat) in backward, the running variance unbiased over the global
count) in float64 with torch.distributed.all_reduce on gloo, and returns
the model's type (float32, or float64 under DDP_F64=1).  The gradients are
DDP's own.
"""
import os
import sys

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mt  # noqa: E402
import st_tool  # noqa: E402
from kappa_ref import Rng  # noqa: E402

NREC = 24
SIDE = 64


def setup(d):
    torch.manual_seed(5)
    m = torchvision.models.resnet18(num_classes=1)
    g = torch.Generator().manual_seed(6)
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            c = mod.num_features
            with torch.no_grad():
                mod.weight.copy_(0.5 + 0.5 * torch.rand(c, generator=g))
                sign = torch.where(torch.rand(c, generator=g) < 0.5, -1.0, 1.0)
                mod.bias.copy_(sign * (1.5 + torch.rand(c, generator=g)))
    st_tool.save(os.path.join(d, 'init.safetensors'), {k: v.contiguous() for k, v in m.state_dict().items()})
    rng = np.random.default_rng(7)
    with open(os.path.join(d, 'train.mt'), 'wb') as f:
        for i in range(NREC):
            x = rng.standard_normal((3, SIDE, SIDE)).astype(np.float32)
            f.write(mt.pack_record(x, label=float(i % 2), type=1 + i % 7, patient=i + 1, study=1, image=1,
                                   path='img%02d.png' % i))


def order(n, seed=1, epoch=1):
    o = list(range(n))
    r = Rng(seed, epoch, 'shuffle')
    for i in range(n - 1, 0, -1):
        j = r.below(i + 1)
        o[i], o[j] = o[j], o[i]
    return o


class SyncBNFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, b, rm, rv, eps, mom):
        c = x.shape[1]
        xd = x.double()
        buf = torch.cat([xd.sum((0, 2, 3)), (xd * xd).sum((0, 2, 3)),
                         torch.tensor([float(x.numel() // c)], dtype=torch.float64)])
        dist.all_reduce(buf)
        m = buf[-1]
        mean = buf[:c] / m
        var = buf[c:2 * c] / m - mean * mean
        invstd = 1 / torch.sqrt(var + eps)
        with torch.no_grad():
            rm.mul_(1 - mom).add_(mom * mean.to(rm.dtype))
            rv.mul_(1 - mom).add_(mom * (var * m / (m - 1)).to(rv.dtype))
        xhat = (xd - mean[None, :, None, None]) * invstd[None, :, None, None]
        ctx.save_for_backward(xhat, w, invstd)
        ctx.m = m
        return (xhat * w.double()[None, :, None, None] + b.double()[None, :, None, None]).to(x.dtype)

    @staticmethod
    def backward(ctx, gy):
        xhat, w, invstd = ctx.saved_tensors
        g = gy.double()
        c = g.shape[1]
        sg, sgx = g.sum((0, 2, 3)), (g * xhat).sum((0, 2, 3))
        gw, gb = sgx.to(w.dtype), sg.to(w.dtype)      # this process's part; DDP sums them
        buf = torch.cat([sg, sgx])
        dist.all_reduce(buf)
        gx = (w.double() * invstd)[None, :, None, None] * (
            g - buf[:c][None, :, None, None] / ctx.m - xhat * buf[c:][None, :, None, None] / ctx.m)
        return gx.to(gy.dtype), gw, gb, None, None, None, None


class SyncBN(nn.BatchNorm2d):
    def forward(self, x):
        if not self.training:
            return super().forward(x)
        self.num_batches_tracked += 1
        return SyncBNFn.apply(x, self.weight, self.bias, self.running_mean, self.running_var, self.eps,
                              self.momentum)


def to_sync(m):
    for name, mod in m.named_children():
        if isinstance(mod, nn.BatchNorm2d):
            s = SyncBN(mod.num_features)
            s.load_state_dict(mod.state_dict())
            setattr(m, name, s)
        else:
            to_sync(mod)


def worker(rank, d, n, sync, b, lr, out):
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method='file://' + os.path.abspath(d) + '/rdv', rank=rank,
                            world_size=n)
    m = torchvision.models.resnet18(num_classes=1)
    m.load_state_dict({k: v for k, v in st_tool.load(os.path.join(d, 'init.safetensors'))[0].items()})
    if sync:
        to_sync(m)
    f64 = os.environ.get('DDP_F64') == '1'   # float64: how well conditioned the comparison is
    if f64:
        m.double()
    m.train()
    ddp = nn.parallel.DistributedDataParallel(m)
    opt = torch.optim.SGD(ddp.parameters(), lr=lr, momentum=0.9)
    recs = mt.read_mura(os.path.join(d, 'train.mt'))
    o = order(len(recs))
    total = 0.0
    steps = len(recs) // b
    for s in range(steps):
        idx = o[s * b + b * rank // n:s * b + b * (rank + 1) // n]
        x = torch.tensor(np.stack([recs[i]['x'] for i in idx]))
        y = torch.tensor([recs[i]['label'] for i in idx], dtype=torch.float32)
        if f64:
            x, y = x.double(), y.double()
        loss = F.binary_cross_entropy_with_logits(ddp(x).squeeze(1), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        lt = loss.detach().double().clone()
        dist.all_reduce(lt)
        total += lt.item() / n
    if rank == 0:
        st_tool.save(out, {k: (v.float() if v.is_floating_point() else v).contiguous()
                           for k, v in m.state_dict().items()})
        with open(out + '.loss', 'w') as f:
            f.write('%.9g\n' % (total / steps))
    dist.destroy_process_group()


def params(path):
    t = st_tool.load(path)[0]
    return {k: v.double() for k, v in t.items()
            if v.is_floating_point() and 'running' not in k and not k.startswith('optim.')}


def error(a, b, base=None):
    """The worst tensor's max |a - b| / max |a|, and its name."""
    pa, pb = params(a), params(b)
    p0 = params(base) if base else None
    worst, name = 0.0, ''
    for k in pa:
        x, y = pa[k], pb[k]
        if p0 is not None:
            x, y = x - p0[k], y - p0[k]
        s = x.abs().max().item()
        e = (x - y).abs().max().item() / (s if s > 0 else 1.0)
        if e > worst:
            worst, name = e, k
    return worst, name


def nearer(ref, t, m, base, floor):
    et, nt = error(ref, t, base)
    em, nm = error(ref, m, base)
    ok = em <= max(floor, 2 * et)
    print('%s: against float64, PyTorch float32 %.3g (%s), ours %.3g (%s): at most max(%g, twice '
          'PyTorch\'s)' % ('PASS' if ok else 'FAIL', et, nt, em, nm, floor))
    return ok


def compare(a, b, tol, base=None):
    pa, pb = params(a), params(b)
    p0 = params(base) if base else None
    worst, name = 0.0, ''
    for k in pa:
        x, y = pa[k], pb[k]
        if p0 is not None:
            x, y = x - p0[k], y - p0[k]
        s = x.abs().max().item()
        e = (x - y).abs().max().item() / (s if s > 0 else 1.0)
        if e > worst:
            worst, name = e, k
    ok = len(pa) == len(pb) and worst <= tol
    print('%s: %d tensors, worst max|a - b| / max|a| %.3g (%s), tolerance %g' %
          ('PASS' if ok else 'FAIL', len(pa), worst, name, tol))
    return ok


def main():
    cmd = sys.argv[1]
    if cmd == 'setup':
        setup(sys.argv[2])
    elif cmd == 'run':
        d, n, sync, b, lr, out = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), \
            float(sys.argv[6]), sys.argv[7]
        if os.path.exists(d + '/rdv'):
            os.remove(d + '/rdv')
        mp.spawn(worker, args=(d, n, sync, b, lr, out), nprocs=n)
    elif cmd == 'nearer':
        sys.exit(0 if nearer(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], float(sys.argv[6])) else 1)
    elif cmd == 'compare':
        sys.exit(0 if compare(sys.argv[2], sys.argv[3], float(sys.argv[4]),
                              sys.argv[5] if len(sys.argv) > 5 else None) else 1)


if __name__ == '__main__':
    main()
