"""norm_check.py WHAT ... - numpy's view of mura-normalize, for tests/t-normalize.sh;
the check modes print PASS/FAIL lines.

  apply IN OUT CHANNELS MEAN STD   OUT must be IN scaled to [0, 1], gray
                                   replicated to CHANNELS, minus MEAN, over STD
                                   (comma lists), within 1e-6, metadata kept.
  fit IN CHANNELS LINE             LINE (what --fit printed) must hold numpy's
                                   mean and std (ddof 0) of IN's values / max.
  make OUT KIND                    write a test stream: 'u16' (gray u16
                                   records), 'rgb' (3-channel u8 records),
                                   'f32' (one f32 record)."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mt import pack_record, read_mura  # noqa: E402

META = ('label', 'type', 'patient', 'study', 'image', 'path')


def verdict(name, ok, why=''):
    print('PASS: %s' % name if ok else 'FAIL: %s: %s' % (name, why))


def scaled(x):
    return x.astype(np.float64) / (255.0 if x.dtype == np.uint8 else 65535.0)


def apply(src, out, channels, mean, std):
    c = int(channels)
    mean = np.array([float(v) for v in mean.split(',')])
    std = np.array([float(v) for v in std.split(',')])
    ins, outs = read_mura(src), read_mura(out)
    worst, meta_ok = 0.0, len(ins) == len(outs) and len(ins) > 0
    for a, b in zip(ins, outs):
        x = scaled(a['x'])
        if x.shape[0] == 1:
            x = np.repeat(x, c, 0)
        want = ((x - mean[:, None, None]) / std[:, None, None]).astype(np.float32)
        if b['x'].dtype != np.float32 or b['x'].shape != want.shape:
            worst = np.inf
            break
        worst = max(worst, float(np.abs(b['x'] - want).max()))
        meta_ok &= all(a[k] == b[k] for k in META)
    name = 'agrees with numpy: %d records, %d channels, mean %s, std %s' % (len(ins), c, mean, std)
    verdict(name, worst <= 1e-6, 'largest difference %g' % worst)
    verdict(name + ': metadata kept', meta_ok, 'records or metadata differ')


def fit(src, channels, line):
    c = int(channels)
    recs = read_mura(src)
    vals = [[] for _ in range(c)]
    for r in recs:
        x = scaled(r['x'])
        for k in range(c):
            vals[k].append(x[0 if x.shape[0] == 1 else k].ravel())
    mean = [np.concatenate(v).mean() for v in vals]
    std = [np.concatenate(v).std() for v in vals]
    words = line.split()
    try:
        ok = (words[0] == '--mean' and words[2] == '--std' and len(words) == 4 and
              np.allclose([float(v) for v in words[1].split(',')], mean, rtol=0, atol=1e-6) and
              np.allclose([float(v) for v in words[3].split(',')], std, rtol=0, atol=1e-6))
    except (IndexError, ValueError):
        ok = False
    verdict('--fit agrees with numpy (%d channels)' % c, ok, "printed '%s', numpy mean %s std %s" % (line, mean, std))


def make(out, kind):
    rng = np.random.default_rng(7)
    recs = []
    for i in range(5):
        path = 'MURA-v1.1/train/XR_HAND/patient%05d/study1_positive/image1.png' % (i + 1)
        if kind == 'u16':
            x = rng.integers(0, 65536, (1, 6 + i, 9), dtype=np.uint16)
        elif kind == 'rgb':
            x = rng.integers(0, 256, (3, 7, 5 + i), dtype=np.uint8)
        else:
            x = rng.standard_normal((3, 4, 4)).astype(np.float32)
        recs.append(pack_record(x, label=1.0, type=4, patient=i + 1, study=1, image=1, path=path))
        if kind == 'f32':
            break
    with open(out, 'wb') as f:
        f.write(b''.join(recs))


if __name__ == '__main__':
    try:
        {'apply': apply, 'fit': fit, 'make': make}[sys.argv[1]](*sys.argv[2:])
    except Exception as e:  # a crash is a failure, said as one
        verdict('norm_check.py %s' % sys.argv[1], False, repr(e))
