"""pipeline.py - PyTorch's side of tests/bench/pipeline.sh: the same work as
mura-score and one mura-train epoch of the demo configuration, on the same
records.

    pipeline.py score FILE THREADS     resnet18(num_classes=1), eval, no_grad, batch 16
    pipeline.py train FILE THREADS     one epoch: Adam 1e-3, BCE on logits with
                                       per-type class weights, flip + rotation
                                       up to 10 degrees, batch 32, shuffled

Prints "KIND IMAGES SECONDS IMAGES_PER_S": the clock runs from reading FILE
to the last batch (the imports and the model's construction excluded), as
the other side's wall time covers reading its records.
"""
import os
import sys
import time

import numpy as np
import torch
import torchvision
import torchvision.transforms.functional as TF

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'py'))
from mt import read_mura  # noqa: E402

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def load(path):
    recs = read_mura(path)
    x = torch.from_numpy(np.stack([r['x'] for r in recs]).astype(np.float32) / 255)
    x = (x.expand(-1, 3, -1, -1) - MEAN) / STD
    return recs, x


def class_weights(recs):
    """MURA's per-type weights: w1 = N / (A + N), w0 = A / (A + N) per type."""
    a, n = {}, {}
    for r in recs:
        d = a if r['label'] >= 0.5 else n
        d[r['type']] = d.get(r['type'], 0) + 1
    w = []
    for r in recs:
        A, N = a.get(r['type'], 0), n.get(r['type'], 0)
        w.append(N / (A + N) if r['label'] >= 0.5 else A / (A + N))
    return torch.tensor(w)


def main():
    kind, path, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    model = torchvision.models.resnet18(num_classes=1)
    t0 = time.perf_counter()
    recs, x = load(path)
    n = len(recs)
    if kind == 'score':
        model.eval()
        with torch.no_grad():
            for i in range(0, n, 16):
                torch.sigmoid(model(x[i:i + 16]))
    else:
        y = torch.tensor([r['label'] for r in recs])
        w = class_weights(recs)
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = torch.nn.BCEWithLogitsLoss(reduction='none')
        order = torch.randperm(n)
        for i in range(0, n, 32):
            idx = order[i:i + 32]
            b = []
            for img in x[idx]:
                if torch.rand(()) < 0.5:
                    img = TF.hflip(img)
                b.append(TF.rotate(img, float(torch.empty(()).uniform_(-10, 10))))
            opt.zero_grad()
            loss = (loss_fn(model(torch.stack(b)).flatten(), y[idx]) * w[idx]).mean()
            loss.backward()
            opt.step()
    s = time.perf_counter() - t0
    print('%s %d %.3f %.2f' % (kind, n, s, n / s), flush=True)


if __name__ == '__main__':
    main()
