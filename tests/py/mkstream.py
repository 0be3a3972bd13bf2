"""mkstream.py OUT KIND - write a small stream for the tests, built by the
independent Python writer (tests/py/mt.py).  KIND 'good' is a valid stream
of 6 records; any other KIND is the good stream with record 2 broken in
that way (see CASES)."""
import struct
import sys

import numpy as np

sys.path.insert(0, __file__.rsplit('/', 1)[0])
from mt import pack_record  # noqa: E402

rng = np.random.default_rng(1)


def good(i, **kw):
    types = [7, 7, 1, 5, 0, 3]
    x = rng.integers(0, 256, (1, 8 + i, 6), dtype=np.uint8) if i != 4 else \
        rng.standard_normal((3, 4, 4)).astype(np.float32)
    args = dict(label=[1.0, 1.0, 0.0, 0.5, -1.0, 0.0][i], type=types[i], patient=11 + i // 2,
                study=1 + i % 2, image=1, path='MURA-v1.1/train/XR_X/patient%05d/image%d.png' % (11 + i, i))
    args.update(kw)
    return pack_record(x, **args)


CASES = {
    'good': {},
    'version': dict(version=2),
    'dtype': dict(dtype=7),
    'label-nan': dict(label=float('nan')),
    'type': dict(type=12),
    'flags': dict(flags=4),
    'dsize': dict(dsize=5),
    'required-field': dict(ext=b'ZZZZ' + struct.pack('<I', 0)),
    'path-tab': dict(path='MURA-v1.1/train/XR_HAND/a\tb.png'),
    'path-newline': dict(path='MURA-v1.1/train/XR_HAND/a\n2\tdtype\tb.png'),
    'path-del': dict(path='\x7fMURA-v1.1/train/XR_HAND/b.png'),
}

out, kind = sys.argv[1], sys.argv[2]
recs = [good(i, **(CASES.get(kind, {}) if i == 1 else {})) for i in range(6)]
data = b''.join(recs)
if kind == 'truncated':
    data = data[:len(recs[0]) + 30]
elif kind == 'magic':
    data = recs[0] + b'P6\n' + recs[1][3:]
elif kind == 'huge':
    # record 2 claims 2^40 u8 elements, with a matching data size
    r = bytearray(recs[1])
    struct.pack_into('<IIIQ', r, 12, 1, 1 << 20, 1 << 20, 1 << 40)
    data = recs[0] + bytes(r)
open(out, 'wb').write(data)
