"""engine.py - PyTorch's side of tests/bench/engine.sh: the same work as
tests/nn_bench, timed the same way.

    engine.py ARCH BATCH SIZE ITERS THREADS [fp32|bf16]

ARCH is a torchvision model's name, or hybrid (the ResNet50 + ViT of
lib/nn/model.h with its default shape, as tests/py/hybrid_ref.py builds it).
Prints "infer ..." and "train ..." lines as nn_bench does: images per
second, seconds per batch (median of ITERS after one warm-up), peak RSS in
MB.  Inference: model.eval() under torch.no_grad().  Training step:
zero_grad, forward, BCEWithLogitsLoss, backward, SGD step (momentum 0.9).
bf16: forward (and the loss) under torch.cpu.amp.autocast(dtype=torch.bfloat16),
PyTorch's CPU mixed precision (convolutions and matrix products in bf16, fp32
weights and optimizer), backward outside it, as its documentation shows.
"""
import contextlib
import os
import resource
import sys
import time

import torch
import torchvision


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def timed(fn, iters):
    fn()
    t = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    t.sort()
    return t[len(t) // 2] if len(t) % 2 else 0.5 * (t[len(t) // 2 - 1] + t[len(t) // 2])


def main():
    arch, n, size, iters, threads = sys.argv[1], *map(int, sys.argv[2:6])
    prec = sys.argv[6] if len(sys.argv) > 6 else 'fp32'
    if prec not in ('fp32', 'bf16'):
        sys.exit('engine.py: precision %s: not fp32 or bf16' % prec)

    def amp():
        if prec == 'bf16':
            return torch.cpu.amp.autocast(dtype=torch.bfloat16)
        return contextlib.nullcontext()
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    if arch == 'hybrid':  # tests/py/hybrid_ref.py's torch.nn hybrid, model.h's defaults
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'py'))
        from hybrid_ref import Hybrid, grid_of
        model = Hybrid(4, 256, 4, 8, 4, (grid_of(size, 4),) * 2)
    else:
        model = getattr(torchvision.models, arch)(num_classes=1)
    x = torch.randn(n, 3, size, size)
    y = torch.tensor([float(i % 2) for i in range(n)])

    model.eval()

    def infer():
        with torch.no_grad(), amp():
            model(x)
    s = timed(infer, iters)
    print('infer %s %d %d %.2f %.3f %d' % (arch, n, size, n / s, s, peak_rss_mb()), flush=True)

    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def step():
        opt.zero_grad()
        with amp():
            loss = loss_fn(model(x).flatten(), y)
        loss.backward()
        opt.step()
    s = timed(step, iters)
    print('train %s %d %d %.2f %.3f %d' % (arch, n, size, n / s, s, peak_rss_mb()), flush=True)


if __name__ == '__main__':
    main()
