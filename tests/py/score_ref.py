"""score_ref.py - torchvision's side of tests/t-score.sh: models saved as
plain state dicts (no mura metadata) and the probabilities torchvision
computes for the same records that mura-score reads.

    score_ref.py gen DIR     DIR/tv0.safetensors, DIR/tv1.safetensors: torchvision
                             resnet18(num_classes=1), seeds 0 and 1, batch norm
                             buffers randomised so that evaluation mode matters,
                             the classifier scaled so that probabilities spread
                             over (0, 1);
                             DIR/in.mt: u8 gray 64x64, u8 RGB 48x40, f32 RGB 64x64
                             records (three sizes in one stream), labels 0, 1, -1;
                             DIR/ref-single.tsv: model 0 alone, no views;
                             DIR/ref-ensemble.tsv: models 0 and 1, image and mirror:
                             the mean of the four probabilities
                             DIR/imagenet.safetensors: resnet18 with ImageNet's
                             1000-way classifier (random weights), for --weights
                             DIR/ref-single-bf16.tsv: model 0 alone under CPU autocast
                             (bfloat16), where the CPU has AVX512-BF16
    score_ref.py check OUT REF
                             OUT (mura-score's table) has REF's rows, in order, with
                             the same metadata, and probabilities within 1e-4
    score_ref.py check-bf16 OUT REF-BF16 REF
                             OUT (mura-score --precision bf16) has REF-BF16's rows,
                             its probabilities within max(2e-2, twice autocast's own
                             largest distance from fp32 (REF)) of autocast's, as
                             t-parity's logits, and no further from fp32 than 1.5
                             times autocast is (autocast also keeps activations in
                             bf16; --precision bf16 keeps them in fp32)
    score_ref.py load MODEL  MODEL (written by mura-train) loads into torchvision's
                             model of the architecture its metadata names,
                             num_classes=1, with strict=True
    score_ref.py archs DIR   torchvision's state dicts, as ImageNet imports are, for
                             mura-train to tell their architecture from:
                             DIR/densenet121.safetensors (whole, seed 3);
                             DIR/names-ARCH.safetensors for densenet169,
                             densenet201, resnet34 and resnet50: every name of
                             ARCH's state dict, each tensor cut to one value;
                             DIR/names-vit.safetensors (a few of timm's ViT names)
                             and DIR/names-both.safetensors (resnet18's names and
                             densenet121's), which fit none and two
"""
import csv
import os
import sys

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mt import pack_record  # noqa: E402
from st_tool import save  # noqa: E402

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
TYPES = ['unknown', 'elbow', 'finger', 'forearm', 'hand', 'humerus', 'shoulder', 'wrist']


def model(seed):
    torch.manual_seed(seed)
    m = torchvision.models.resnet18(num_classes=1)
    with torch.no_grad():
        for name, b in m.named_buffers():
            if name.endswith('running_mean'):
                b.uniform_(-0.2, 0.2)
            elif name.endswith('running_var'):
                b.uniform_(0.5, 2.0)
            else:
                b.fill_(7)
    return m.eval()


def spread(m, recs):
    """Scale and shift the classifier so that the records' logits have mean 0
    and standard deviation 2: probabilities spread over (0, 1), so that a
    wrong input or weight shows."""
    with torch.no_grad():
        z = torch.cat([m(x.unsqueeze(0)) for x, _, _ in recs]).flatten()
        k = 2 / z.std()
        m.fc.weight.mul_(k)
        m.fc.bias.copy_((m.fc.bias - z.mean()) * k)


def records(rng):
    """(x as the network sees it [3][h][w], the record's bytes, its metadata)."""
    out = []
    for i in range(14):
        kind = i % 3
        if kind == 0:
            a = rng.integers(0, 256, (1, 64, 64), dtype=np.uint8)
            x = torch.from_numpy(a).float().div(255).expand(3, -1, -1)
            x = (x - MEAN) / STD
        elif kind == 1:
            a = rng.integers(0, 256, (3, 48, 40), dtype=np.uint8)
            x = (torch.from_numpy(a).float().div(255) - MEAN) / STD
        else:
            a = rng.normal(0, 1, (3, 64, 64)).astype(np.float32)
            x = torch.from_numpy(a.copy())
        meta = dict(label=float([0, 1, -1][i % 3 if i < 12 else 0]), type=1 + i % 7, patient=100 + i,
                    study=1 + i % 2, image=1 + i % 3,
                    path='MURA-v1.1/valid/XR_%s/patient%05d/study1_positive/image%d.png'
                    % (TYPES[1 + i % 7].upper(), 100 + i, 1 + i % 3))
        out.append((x, pack_record(a, **meta), meta))
    return out


def probs(models, x, flip, bf16=False):
    views = [x, torch.flip(x, dims=[2])] if flip else [x]
    ps = []
    with torch.no_grad(), torch.cpu.amp.autocast(enabled=bf16, dtype=torch.bfloat16):
        for m in models:
            for v in views:
                ps.append(torch.sigmoid(m(v.unsqueeze(0)).double()).item())
    return sum(ps) / len(ps)


def has_bf16():
    try:
        return ' avx512_bf16' in open('/proc/cpuinfo').read()
    except OSError:
        return False


def write_ref(path, recs, models, flip, bf16=False):
    with open(path, 'w') as f:
        f.write('path\ttype\tpatient\tstudy\timage\tlabel\tprob\n')
        for x, _, meta in recs:
            f.write('%s\t%s\t%d\t%d\t%d\t%d\t%.17g\n' % (meta['path'], TYPES[meta['type']], meta['patient'],
                                                      meta['study'], meta['image'], int(meta['label']),
                                                      probs(models, x, flip, bf16)))


def gen(d):
    torch.set_num_threads(1)
    ms = [model(0), model(1)]
    recs = records(np.random.default_rng(5))
    for i, m in enumerate(ms):
        spread(m, recs)
        save(os.path.join(d, 'tv%d.safetensors' % i), m.state_dict())
    torch.manual_seed(2)
    save(os.path.join(d, 'imagenet.safetensors'), torchvision.models.resnet18().state_dict())
    with open(os.path.join(d, 'in.mt'), 'wb') as f:
        for _, b, _ in recs:
            f.write(b)
    write_ref(os.path.join(d, 'ref-single.tsv'), recs, ms[:1], False)
    write_ref(os.path.join(d, 'ref-ensemble.tsv'), recs, ms, True)
    if has_bf16():
        write_ref(os.path.join(d, 'ref-single-bf16.tsv'), recs, ms[:1], False, True)


def check(out_path, ref_path):
    got = list(csv.reader(open(out_path), delimiter='\t'))
    want = list(csv.reader(open(ref_path), delimiter='\t'))
    name = os.path.basename(ref_path)
    if got[0] != want[0] or len(got) != len(want):
        print('FAIL: %s: header or row count differ: %r, %d rows, want %r, %d rows'
              % (name, got[0], len(got), want[0], len(want)))
        return
    meta_ok = all(g[:6] == w[:6] for g, w in zip(got[1:], want[1:]))
    print(('PASS: %s: every row has its record\'s metadata' if meta_ok else
           'FAIL: %s: metadata differ') % name)
    diff = max(abs(float(g[6]) - float(w[6])) for g, w in zip(got[1:], want[1:]))
    spread = max(float(w[6]) for w in want[1:]) - min(float(w[6]) for w in want[1:])
    print('%s: %s: %d probabilities within 1e-4 of torchvision\'s (largest difference %.3g, '
          'spread of the values %.3g)' % ('PASS' if diff <= 1e-4 else 'FAIL', name, len(got) - 1, diff, spread))


def check_bf16(out_path, ref_path, fp32_path):
    got = list(csv.reader(open(out_path), delimiter='\t'))
    want = list(csv.reader(open(ref_path), delimiter='\t'))
    fp32 = list(csv.reader(open(fp32_path), delimiter='\t'))
    name = os.path.basename(ref_path)
    if got[0] != want[0] or len(got) != len(want) or len(fp32) != len(want):
        print('FAIL: %s: header or row count differ' % name)
        return
    print(('PASS: %s: every row has its record\'s metadata' if all(g[:6] == w[:6] for g, w in zip(got[1:], want[1:]))
           else 'FAIL: %s: metadata differ') % name)
    ours = [float(g[6]) for g in got[1:]]
    auto = [float(w[6]) for w in want[1:]]
    full = [float(f[6]) for f in fp32[1:]]
    d_auto = max(abs(a - f) for a, f in zip(auto, full))   # autocast's own error
    d_ours = max(abs(o - a) for o, a in zip(ours, auto))
    d_full = max(abs(o - f) for o, f in zip(ours, full))
    tol = max(2e-2, 2 * d_auto)
    print('%s: %s: %d probabilities within max(2e-2, twice autocast\'s own distance from fp32, %.3g) of '
          'PyTorch autocast\'s: largest difference %.3g' % ('PASS' if d_ours <= tol else 'FAIL', name, len(ours),
                                                              d_auto, d_ours))
    print('%s: %s: no further from fp32 than 1.5 times autocast is: %.3g against %.3g'
          % ('PASS' if d_full <= 1.5 * d_auto else 'FAIL', name, d_full, d_auto))


def load(path):
    from st_tool import load as st_load
    tensors, meta, _ = st_load(path)
    arch = meta.get('arch')
    m = getattr(torchvision.models, arch)(num_classes=1)
    try:
        m.load_state_dict(tensors, strict=True)
        print('PASS: %s loads into torchvision %s(num_classes=1), strict (epoch %s)'
              % (os.path.basename(path), arch, meta.get('train_epoch')))
    except RuntimeError as e:
        print('FAIL: %s does not load into torchvision: %s' % (os.path.basename(path), str(e)[:300]))


def names_only(sd):
    return {k: v.reshape(-1)[:1].clone() for k, v in sd.items()}


def archs(d):
    torch.manual_seed(3)
    save(os.path.join(d, 'densenet121.safetensors'), torchvision.models.densenet121().state_dict())
    for a in ('densenet169', 'densenet201', 'resnet34', 'resnet50'):
        save(os.path.join(d, 'names-%s.safetensors' % a), names_only(getattr(torchvision.models, a)().state_dict()))
    vit = {k: torch.zeros(1) for k in ('cls_token', 'pos_embed', 'patch_embed.proj.weight',
                                       'blocks.0.attn.qkv.weight', 'head.weight')}
    save(os.path.join(d, 'names-vit.safetensors'), vit)
    both = names_only(torchvision.models.resnet18().state_dict())
    both.update(names_only(torchvision.models.densenet121().state_dict()))
    save(os.path.join(d, 'names-both.safetensors'), both)


if __name__ == '__main__':
    if sys.argv[1] == 'gen':
        gen(sys.argv[2])
    elif sys.argv[1] == 'check':
        check(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == 'check-bf16':
        check_bf16(sys.argv[2], sys.argv[3], sys.argv[4])
    elif sys.argv[1] == 'load':
        load(sys.argv[2])
    elif sys.argv[1] == 'archs':
        archs(sys.argv[2])
    else:
        sys.exit('usage: score_ref.py gen DIR | check OUT REF | check-bf16 OUT REF-BF16 REF | load MODEL | archs DIR')
