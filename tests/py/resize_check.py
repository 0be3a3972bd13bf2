"""resize_check.py WHAT STREAM [ARGS] - check mura-resize's output against its
peers; prints PASS/FAIL lines for tests/t-resize.sh.

  decode STREAM         the stream of tests/data/resize/images.csv at 16 x 16
                        (each image's own size): every PNG must give exactly the
                        gray image mkimages.expected() computes, and every
                        record the metadata its path says.
  pillow STREAM ROOT SIZE FIT
                        every image must be within 1 of Pillow's
                        resize(BILINEAR) (after convert('L'); 16-bit through
                        Pillow's float mode), placed as --fit places it.
                        Images with alpha are left out: Pillow's convert('L')
                        drops alpha where mura-resize flattens it on black."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mkimages  # noqa: E402
from mt import read_mura  # noqa: E402

TYPES = {'ELBOW': 1, 'FINGER': 2, 'FOREARM': 3, 'HAND': 4, 'HUMERUS': 5, 'SHOULDER': 6, 'WRIST': 7}


def verdict(name, ok, why=''):
    print('PASS: %s' % name if ok else 'FAIL: %s: %s' % (name, why))


def meta_of(path):
    parts = path.split('/')
    study = parts[-2]
    return dict(type=TYPES[parts[-4][3:]], patient=int(parts[-3][7:]), study=int(study[5:study.index('_')]),
                image=int(parts[-1][5:parts[-1].index('.')]), label=1.0 if study.endswith('positive') else 0.0)


def decode(stream):
    recs = {r['path']: r for r in read_mura(stream)}
    for path, kind in mkimages.IMAGES:
        r = recs.get(path)
        if r is None:
            verdict('decode %s' % kind, False, 'no record for ' + path)
            continue
        meta = {k: r[k] for k in ('type', 'patient', 'study', 'image', 'label')}
        verdict('metadata from the path of %s' % kind, meta == meta_of(path), '%s, want %s' % (meta, meta_of(path)))
        if kind.startswith('jpeg') or kind == 'wide':
            continue
        got, want = r['x'][0], mkimages.expected(kind)
        bad = int((got != want).sum())
        verdict('decode %s to the documented gray' % kind, got.shape == want.shape and bad == 0,
                '%d of %d pixels differ, largest by %d' % (bad, want.size, int(np.abs(
                    got.astype(int) - want.astype(int)).max())))


def pillow(stream, root, size, fit):
    from PIL import Image
    size = int(size)
    worst, n = 0, 0
    for r in read_mura(stream):
        im = Image.open(os.path.join(root, r['path']))
        if im.mode in ('LA', 'RGBA', 'PA') or 'transparency' in im.info:
            continue
        w, h = im.size
        if im.mode in ('I', 'I;16'):
            src = Image.fromarray((np.asarray(im).astype(np.float64) / 257).astype(np.float32), 'F')
        else:
            src = im.convert('L')
        ref = np.zeros((size, size))
        if fit == 'stretch':
            ref[:] = np.asarray(src.resize((size, size), Image.BILINEAR))
        elif fit == 'crop':
            s = min(w, h)
            box = ((w - s) / 2, (h - s) / 2, (w - s) / 2 + s, (h - s) / 2 + s)
            ref[:] = np.asarray(src.resize((size, size), Image.BILINEAR, box=box))
        else:
            sc = min(size / w, size / h)
            ow = size if w >= h else max(1, round(w * sc))
            oh = size if h >= w else max(1, round(h * sc))
            ox, oy = (size - ow) // 2, (size - oh) // 2
            ref[oy:oy + oh, ox:ox + ow] = np.asarray(src.resize((ow, oh), Image.BILINEAR))
        worst = max(worst, float(np.abs(r['x'][0] - np.round(ref)).max()))
        n += 1
    verdict('within 1 of Pillow resize(BILINEAR), %d images at %d, --fit %s' % (n, size, fit),
            n > 0 and worst <= 1, 'largest difference %g' % worst)


if __name__ == '__main__':
    try:
        {'decode': decode, 'pillow': pillow}[sys.argv[1]](*sys.argv[2:])
    except Exception as e:  # a crash is a failure, said as one
        verdict('resize_check.py %s' % ' '.join(sys.argv[1:]), False, repr(e))
