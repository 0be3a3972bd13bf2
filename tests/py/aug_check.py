"""aug_check.py WHAT ... - numpy's view of mura-augment, for tests/t-augment.sh;
prints PASS/FAIL lines.

  warp IN OUT FLIP ANGLE SCALE TX TY FILL
      OUT must be IN warped as lib/augment.h says (inverse mapping about the
      centre, bilinear, neighbours outside the image = FILL), computed here
      in float64 independently; u8 within 0.5 of it (rounding), f32 1e-4.
  photo IN OUT CONTRAST BRIGHTNESS
      OUT = (IN - channel mean) * CONTRAST + channel mean + BRIGHTNESS * full
      scale; u8 rounded and clamped.
  mixup IN OUT BATCH
      each OUT record i is lam IN_i + (1 - lam) IN_j for some j of its batch,
      lam >= 0.5, its label mixed with the same lam, its metadata IN_i's.
  same A B
      records with the same path are identical in A and B (B may be a part).
  make OUT KIND
      'u16' a u16 record; 'unlabeled' u8 records with unknown labels;
      'shapes' two u8 records of different shapes."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mt import pack_record, read_mura  # noqa: E402

META = ('type', 'patient', 'study', 'image', 'path')


def verdict(name, ok, why=''):
    print('PASS: %s' % name if ok else 'FAIL: %s: %s' % (name, why))


def warp_ref(x, flip, angle, scale, tx, ty, fill):
    c, h, w = x.shape
    cx, cy = (w - 1) / 2, (h - 1) / 2
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    th = np.deg2rad(angle)
    dx, dy = xx - cx - tx * w, yy - cy - ty * h
    ux = (dx * np.cos(th) - dy * np.sin(th)) / scale
    uy = (dx * np.sin(th) + dy * np.cos(th)) / scale
    sx, sy = cx + (-ux if flip else ux), cy + uy
    x0, y0 = np.floor(sx), np.floor(sy)
    fx, fy = sx - x0, sy - y0
    x0, y0 = x0.astype(int), y0.astype(int)
    out = np.empty((c, h, w))
    for k in range(c):
        p = x[k].astype(np.float64)

        def at(xi, yi):
            inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            return np.where(inside, p[np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)], fill)
        out[k] = ((1 - fx) * (1 - fy) * at(x0, y0) + fx * (1 - fy) * at(x0 + 1, y0) +
                  (1 - fx) * fy * at(x0, y0 + 1) + fx * fy * at(x0 + 1, y0 + 1))
    return out


def warp(src, out, flip, angle, scale, tx, ty, fill):
    args = [int(flip)] + [float(v) for v in (angle, scale, tx, ty, fill)]
    ins, outs = read_mura(src), read_mura(out)
    worst = 0.0
    for a, b in zip(ins, outs):
        want = warp_ref(a['x'], *args)
        if a['x'].dtype == np.uint8:
            want = np.clip(want, 0, 255)
        worst = max(worst, float(np.abs(b['x'].astype(np.float64) - want).max()))
    tol = 0.5 + 1e-3 if ins and ins[0]['x'].dtype == np.uint8 else 1e-4
    verdict('warp flip=%s angle=%s scale=%s shift=%s,%s fill=%s agrees with numpy (%s)' % (
        flip, angle, scale, tx, ty, fill, ins[0]['x'].dtype), len(ins) == len(outs) > 0 and worst <= tol,
        'largest difference %g' % worst)


def photo(src, out, contrast, brightness):
    """u8: within 0.5 (+ float32 slack) of the unrounded value, clamped; f32: 1e-5."""
    c, b = float(contrast), float(brightness)
    worst = 0.0
    ins, outs = read_mura(src), read_mura(out)
    u8 = ins[0]['x'].dtype == np.uint8
    for a, o in zip(ins, outs):
        x = a['x'].astype(np.float64)
        m = x.mean(axis=(1, 2), keepdims=True)
        want = (x - m) * c + m + b * (255.0 if u8 else 1.0)
        if u8:
            want = np.clip(want, 0, 255)
        worst = max(worst, float(np.abs(o['x'].astype(np.float64) - want).max()))
    tol = 0.5 + 1e-3 if u8 else 1e-5
    verdict('contrast %g, brightness %g agree with numpy (%s)' % (c, b, ins[0]['x'].dtype),
            len(ins) == len(outs) > 0 and worst <= tol, 'largest difference %g' % worst)


def mixup(src, out, batch):
    n = int(batch)
    ins, outs = read_mura(src), read_mura(out)
    u8 = ins and ins[0]['x'].dtype == np.uint8
    tol = 1 if u8 else 1e-4  # u8: rounding, and lam estimated from rounded values
    ok, why, mixed = len(ins) == len(outs) > 0, '', 0
    for i, (a, o) in enumerate(zip(ins, outs)):
        start = i - i % n
        xi, xo = a['x'].astype(np.float64).ravel(), o['x'].astype(np.float64).ravel()
        best = None
        for g in ins[start:start + n]:
            xj = g['x'].astype(np.float64).ravel()
            d = xi - xj
            if a['label'] != g['label']:  # the label says lam
                lam = (o['label'] - g['label']) / (a['label'] - g['label'])
            elif abs(o['label'] - a['label']) > 1e-6:
                continue
            else:  # least squares
                lam = 1.0 if not d.any() else float(np.dot(xo - xj, d) / np.dot(d, d))
            if 0.5 - 1e-6 <= lam <= 1 + 1e-6 and np.abs(lam * xi + (1 - lam) * xj - xo).max() <= tol:
                best = lam
                break
        if best is None:
            ok, why = False, 'record %d is no mix of its batch with a matching label' % (i + 1)
            break
        mixed += best < 1 - 1e-3
        if any(a[k] != o[k] for k in META):
            ok, why = False, 'record %d lost its metadata' % (i + 1)
            break
    verdict('mixup: every record is lam x_i + (1 - lam) x_j of its batch, lam >= 0.5, label and metadata (%s)'
            % (ins[0]['x'].dtype if ins else '-'), ok, why)
    verdict('mixup: records were mixed (%s)' % (ins[0]['x'].dtype if ins else '-'), mixed > len(ins) // 2,
            '%d of %d mixed' % (mixed, len(ins)))


def same(a, b):
    whole = {r['path']: r for r in read_mura(a)}
    part = read_mura(b)
    ok = len(part) > 0 and all(r['path'] in whole and np.array_equal(r['x'], whole[r['path']]['x'])
                               for r in part)
    verdict('a record is augmented the same alone as in the stream (%d records)' % len(part), ok,
            'records differ')


def make(out, kind):
    rng = np.random.default_rng(5)
    p = 'MURA-v1.1/train/XR_HAND/patient%05d/study1_positive/image1.png'
    if kind == 'u16':
        recs = [pack_record(rng.integers(0, 65536, (1, 4, 4), dtype=np.uint16), label=1.0, path=p % 1)]
    elif kind == 'unlabeled':
        recs = [pack_record(rng.integers(0, 256, (1, 4, 4), dtype=np.uint8), label=-1.0, path=p % i)
                for i in range(1, 4)]
    else:
        recs = [pack_record(rng.integers(0, 256, (1, 4, 4 + i), dtype=np.uint8), label=1.0, path=p % i)
                for i in range(1, 3)]
    with open(out, 'wb') as f:
        f.write(b''.join(recs))


if __name__ == '__main__':
    try:
        {'warp': warp, 'photo': photo, 'mixup': mixup, 'same': same, 'make': make}[sys.argv[1]](*sys.argv[2:])
    except Exception as e:  # a crash is a failure, said as one
        verdict('aug_check.py %s' % sys.argv[1], False, repr(e))
