"""cam_ref.py - the PyTorch side of mura-cam's parity (tests/t-cam.sh):
Grad-CAM by its definition (Selvaraju et al. 2017) in autograd, on
torchvision's own model, against what mura-cam writes.

    cam_ref.py MURA_CAM WORKDIR CASE...     CASE = ARCH:LAYER:N:H:W, or construct

For each case: torchvision's random initialisation (seeded) with the batch
norms' affine weights and running statistics of parity_models.settle_bn,
the classifier's weights made positive (else the maps are often empty), as
a plain state dict in safetensors; N random f32 records of 3 x H x W (taken
by mura-cam as the network's input, as they are).  PyTorch, in evaluation
mode: A the layer's output (a DenseNet's features.norm5 after the ReLU
torchvision's forward applies to it), y the logit, alpha_c = mean of dy/dA_c
over the map, map = relu(sum_c alpha_c A_c), resized to H x W by
F.interpolate(bilinear, align_corners=False).  Compared:
  - the probabilities, |ours - torch| <= 1e-5;
  - the maps, max |ours - torch| <= 1e-4 of the map's largest value;
  - the peak: torch's map at our peak within 1e-4 of its maximum.
Prints PASS/FAIL lines.
"""
import os
import subprocess
import sys

import numpy as np
import torch
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mt  # noqa: E402
import st_tool  # noqa: E402
from parity_models import settle_bn  # noqa: E402


def verdict(name, ok, detail):
    print('%s: %s: %s' % ('PASS' if ok else 'FAIL', name, detail), flush=True)


def module_of(net, layer):
    m = net
    for part in layer.split('.'):
        m = m[int(part)] if part.isdigit() else getattr(m, part)
    return m


def reference(net, arch, layer, x):
    """Grad-CAM maps [n][h][w] and probabilities [n], by autograd."""
    store = {}
    if arch.startswith('densenet') and layer == 'features.norm5':
        feats = net.features(x)
        a = F.relu(feats)
        a.retain_grad()
        logit = net.classifier(F.adaptive_avg_pool2d(a, 1).flatten(1))[:, 0]
        store['a'] = a
    else:
        def hook(mod, inp, out):
            out.retain_grad()
            store['a'] = out
        h = module_of(net, layer).register_forward_hook(hook)
        logit = net(x)[:, 0]
        h.remove()
    logit.sum().backward()
    a, g = store['a'], store['a'].grad
    alpha = g.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((alpha * a).sum(dim=1, keepdim=True))
    up = F.interpolate(cam, size=x.shape[2:], mode='bilinear', align_corners=False)[:, 0]
    return up.detach().double().numpy(), torch.sigmoid(logit).detach().double().numpy()


def run_case(tool, work, case):
    arch, layer, n, h, w = case.split(':')
    n, h, w = int(n), int(h), int(w)
    tag = 'gradcam %s %s %dx%dx%d' % (arch, layer, n, h, w)
    torch.manual_seed(11)
    net = getattr(torchvision.models, arch)(num_classes=1)
    with torch.no_grad():
        settle_bn(net, n, h, w)
        # a classifier of positive weights: at the last layer (A >= 0) a
        # random one's map is often 0 everywhere, which would compare nothing
        (net.fc if hasattr(net, 'fc') else net.classifier).weight.abs_()
    net.eval()
    model = os.path.join(work, '%s.safetensors' % arch)
    st_tool.save(model, {k: v for k, v in net.state_dict().items()})
    x = torch.randn(n, 3, h, w)
    stream = os.path.join(work, 'cam-in.mt')
    with open(stream, 'wb') as f:
        for i in range(n):
            f.write(mt.pack_record(x[i].numpy().astype(np.float32), label=1.0, type=1 + i % 7,
                                   patient=i + 1, study=1, image=1, path='p%d/image1.png' % i))
    maps = os.path.join(work, 'maps.mt')
    rows = os.path.join(work, 'rows.tsv')
    r = subprocess.run([tool, '--model', model, '--arch', arch, '--layer', layer, '--batch', '3',
                        '--out', maps, '--tsv', rows, stream], capture_output=True, text=True)
    if r.returncode != 0:
        verdict(tag, False, 'mura-cam exited with %d: %s' % (r.returncode, r.stderr.strip()))
        return
    ref, prob = reference(net, arch, layer, x)
    ours = mt.read_mura(maps)
    got = np.stack([rec['x'][0].astype(np.float64) for rec in ours])
    table = [line.split('\t') for line in open(rows).read().splitlines()[1:]]
    gp = np.array([float(t[3]) for t in table])
    verdict(tag + ': records', len(ours) == n and all(rec['path'] == 'p%d/image1.png' % i and
                                                      rec['type'] == 1 + i % 7
                                                      for i, rec in enumerate(ours)),
            '%d maps with their inputs\' metadata' % len(ours))
    perr = float(np.abs(gp - prob).max())
    verdict(tag + ': probabilities', perr <= 1e-5, 'max abs err %.2g' % perr)
    errs = [float(np.abs(got[i] - ref[i]).max() / max(ref[i].max(), 1e-30)) for i in range(n)]
    verdict(tag + ': maps', max(errs) <= 1e-4 and all(ref[i].max() > 0 for i in range(n)),
            'max err %.2g of the map\'s maximum (torch maxima %s)' %
            (max(errs), ', '.join('%.3g' % ref[i].max() for i in range(n))))
    ok = True
    for i, t in enumerate(table):
        ok = ok and t[4] != 'NA' and ref[i][int(t[5]), int(t[4])] >= ref[i].max() * (1 - 1e-4)
    verdict(tag + ': peaks', ok, 'our peak is torch\'s maximum in every map')


def construct(tool, work):
    """A model whose evidence is known by construction: resnet18 (random,
    seeded) on 256 x 256 images black but for one bright 40 x 40 square, in
    a different place in each; its classifier's weights are the layer4
    features of a square's cell less the mean of all cells, so that the
    logit grows with what the square makes (its bias makes every image
    abnormal, for the pointing game).  Each map must peak on its
    square (within a layer4 cell's half, 16 px)."""
    torch.manual_seed(5)
    net = torchvision.models.resnet18(num_classes=1)
    with torch.no_grad():
        settle_bn(net, 2, 256, 256)
    net.eval()
    spots = [(20, 30), (180, 40), (60, 190), (200, 200), (110, 100)]
    x = torch.zeros(len(spots), 3, 256, 256)
    for i, (sx, sy) in enumerate(spots):
        x[i, :, sy:sy + 40, sx:sx + 40] = 3.0
    with torch.no_grad():
        body = torch.nn.Sequential(*list(net.children())[:-2])
        f = body(x)
        cells = [f[i, :, (sy + 20) // 32, (sx + 20) // 32] for i, (sx, sy) in enumerate(spots)]
        v = torch.stack(cells).mean(0) - f.mean(dim=(0, 2, 3))
        net.fc.weight.copy_(v[None])
        net.fc.bias.zero_()
        net.fc.bias.fill_(1 - float(net(x).min()))  # every image called abnormal
    model = os.path.join(work, 'construct.safetensors')
    st_tool.save(model, {k: v for k, v in net.state_dict().items()})
    stream = os.path.join(work, 'construct.mt')
    with open(stream, 'wb') as fo:
        for i in range(len(spots)):
            fo.write(mt.pack_record(x[i].numpy(), label=1.0, type=1, path='s%d.png' % i))
    # the originals (twice the size: peaks and boxes in their pixels) and
    # the squares' boxes, for the pointing game
    from PIL import Image
    with open(os.path.join(work, 'annotations.csv'), 'w') as fa:
        fa.write('path,kind,x0,y0,x1,y1\n')
        for i, (sx, sy) in enumerate(spots):
            Image.new('L', (512, 512)).save(os.path.join(work, 's%d.png' % i))
            fa.write('s%d.png,square,%d,%d,%d,%d\n' % (i, 2 * sx, 2 * sy, 2 * sx + 80, 2 * sy + 80))
    rows = os.path.join(work, 'construct.tsv')
    pointing = os.path.join(work, 'pointing.tsv')
    pngs = os.path.join(work, 'png')
    r = subprocess.run([tool, '--model', model, '--arch', 'resnet18', '--out', '/dev/null', '--tsv', rows,
                        '--annotations', os.path.join(work, 'annotations.csv'), '--pointing', pointing,
                        '--png', pngs, stream], capture_output=True, text=True)
    if r.returncode != 0:
        verdict('gradcam by construction', False, 'mura-cam exited with %d: %s' % (r.returncode, r.stderr))
        return
    table = [line.split('\t') for line in open(rows).read().splitlines()[1:]]
    got = ['%s,%s' % (t[4], t[5]) for t in table]
    ok = len(table) == len(spots) and all(
        t[4] != 'NA' and 2 * (sx - 16) <= int(t[4]) < 2 * (sx + 56) and
        2 * (sy - 16) <= int(t[5]) < 2 * (sy + 56)
        for t, (sx, sy) in zip(table, spots))
    verdict('gradcam by construction', ok, 'peaks %s (in the originals, twice the size) on squares '
            'at %s (+ 40 px, +-16)' % (' '.join(got), ' '.join('%d,%d' % (2 * a, 2 * b) for a, b in spots)))
    # a hit is the peak inside the box (the originals' pixels): every one,
    # against a random point's chance of 80 * 80 / 512^2 = 0.024
    last = open(pointing).read().splitlines()[-1]
    verdict('pointing game by construction', last == 'all\t5\t5\t1.000\t0.024\t0', repr(last))
    sizes = [Image.open(os.path.join(pngs, 's%d.png' % i)).size for i in range(len(spots))]
    modes = {Image.open(os.path.join(pngs, 's%d.png' % i)).mode for i in range(len(spots))}
    verdict('overlays', sizes == [(256, 256)] * len(spots) and modes == {'RGB'},
            '%d RGB overlays of 256 x 256' % len(sizes))


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    torch.set_num_threads(1)
    for case in sys.argv[3:]:
        if case == 'construct':
            construct(sys.argv[1], sys.argv[2])
        else:
            run_case(sys.argv[1], sys.argv[2], case)


if __name__ == '__main__':
    main()
