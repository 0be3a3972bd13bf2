"""mt.py - an independent Python reader and writer of the mura tensor stream
(mura-tensor(5)), used by the tests to cross-check the C implementation.
read_mura() is the 15-line numpy reader printed in the man page's EXAMPLES."""
import struct
import sys

import numpy as np


def read_mura(path):
    buf = open(path, 'rb').read(); off = 0; recs = []
    while off < len(buf):
        (magic, ver, dt, hsize, c, h, w, dsize, label, patient, study, image,
         typ, flags, plen) = struct.unpack_from('<4sHHIIIIQfIHHBBH', buf, off)
        assert magic == b'MURA' and ver == 1, 'not a mura version 1 record'
        dtype = {1: '<u1', 2: '<u2', 3: '<f4'}[dt]
        x = np.frombuffer(buf, dtype, c * h * w, off + hsize).reshape(c, h, w)
        recs.append(dict(x=x, label=label, type=typ, patient=patient, study=study,
                         image=image, path=buf[off + 48:off + 48 + plen].decode()))
        off += hsize + (dsize + 7) // 8 * 8
    return recs


def pack_record(x, label=-1.0, type=0, patient=0, study=0, image=0, path='', ext=b'',
                version=1, dtype=None, flags=0, dsize=None, hsize=None):
    """One record as bytes; the keyword overrides build malformed records."""
    x = np.asarray(x)
    codes = {np.dtype('uint8'): 1, np.dtype('uint16'): 2, np.dtype('float32'): 3}
    dt = codes[x.dtype] if dtype is None else dtype
    c, h, w = x.shape
    p = path.encode()
    fixed = 48 + len(p)
    fixed += -fixed % 8
    if hsize is None:
        hsize = fixed + len(ext)
    data = x.astype(x.dtype.newbyteorder('<')).tobytes()
    if dsize is None:
        dsize = len(data)
    head = struct.pack('<4sHHIIIIQfIHHBBH', b'MURA', version, dt, hsize, c, h, w, dsize,
                       label, patient, study, image, type, flags, len(p))
    head += p + b'\0' * (fixed - 48 - len(p)) + ext
    return head + data + b'\0' * (-len(data) % 8)


if __name__ == '__main__':
    # mt.py dump FILE: one line per record, for comparing with mura-info --list.
    if sys.argv[1] == 'dump':
        for i, r in enumerate(read_mura(sys.argv[2]), 1):
            x = r['x']
            print(i, x.dtype.str, 'x'.join(map(str, x.shape)), '%g' % r['label'], r['type'],
                  r['patient'], r['study'], r['image'], r['path'],
                  '%.6f' % float(x.astype(np.float64).sum()), sep='\t')
