"""blobs.py - a small learnable stream for tests/t-train.sh: gray u8 records
of a noisy, uneven background in which every image of an abnormal study
holds a faint round blob somewhere.  Studies of one to three images,
patients and study types as in MURA, so validation kappa is defined.

    blobs.py OUT.mt STUDIES SEED [SIZE]
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mt import pack_record  # noqa: E402

BLOB = 70  # the blob's height over a background of about 60 to 135, noise 18
TYPES = ['ELBOW', 'FINGER', 'FOREARM', 'HAND', 'HUMERUS', 'SHOULDER', 'WRIST']


def image(rng, size, abnormal):
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    # A gradient and a few broad bright shapes, like soft tissue and bone.
    x = 60 + 40 * rng.random() * (xx / size) + rng.normal(0, 18, (size, size))
    for _ in range(3):
        cy, cx, r = rng.uniform(0, size, 2).tolist() + [rng.uniform(size / 8, size / 3)]
        x += 35 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
    if abnormal:
        cy, cx = rng.uniform(size / 6, size * 5 / 6, 2)
        r = rng.uniform(size / 24, size / 14)
        x += BLOB * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
    return x.clip(0, 255).astype(np.uint8)[None]


def main():
    out, studies, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    size = int(sys.argv[4]) if len(sys.argv) > 4 else 48
    rng = np.random.default_rng(seed)
    with open(out, 'wb') as f:
        for s in range(studies):
            abnormal = int(rng.random() < 0.4)
            t = s % 7
            patient = 1 + s // 2
            study = 1 + s % 2
            for i in range(1, 1 + int(rng.integers(1, 4))):
                path = 'MURA-v1.1/blobs/XR_%s/patient%05d/study%d_%s/image%d.png' % (
                    TYPES[t], patient, study, 'positive' if abnormal else 'negative', i)
                f.write(pack_record(image(rng, size, abnormal), label=float(abnormal), type=t + 1,
                                    patient=patient, study=study, image=i, path=path))


if __name__ == '__main__':
    main()
