"""mkcorpus.py - write the fuzz harnesses' seed corpora (tests/fuzz/corpus/),
small valid inputs and a few broken ones of each format, from the formats'
specifications (lib/tensor.h, lib/safetensors.h, lib/metrics.h, split.h)
without the library.  Run from anywhere; the files are committed, so this
only needs running again to change them."""
import json
import os
import struct

TOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus')


def put(kind, name, data):
    os.makedirs(os.path.join(TOP, kind), exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(TOP, kind, name), 'wb') as f:
        f.write(data)


def pad8(b):
    return b + b'\0' * (-len(b) % 8)


def record(dtype, shape, data, label=0.0, patient=1, study=1, image=1, type=7,
           path='MURA-v1.1/train/XR_WRIST/patient00001/study1_positive/image1.png',
           ext=b'', version=1, flags=0):
    """One MT record (lib/tensor.h); data is the raw little-endian bytes."""
    p = path.encode()
    head = pad8(b'\0' * 48 + p)
    hsize = len(head) + len(ext)
    fixed = struct.pack('<4sHHIIIIQfIHHBBH', b'MURA', version, dtype, hsize, *shape, len(data),
                        label, patient, study, image, type, flags, len(p))
    return fixed + head[48:] + ext + pad8(data)


def tensor_corpus():
    u8 = record(1, (1, 4, 4), bytes(range(16)), label=1.0)
    u16 = record(2, (1, 2, 3), struct.pack('<6H', 0, 1, 256, 4095, 65535, 7), label=0.0,
                 path='MURA-v1.1/valid/XR_HAND/patient00002/study1_negative/image2.png', type=4)
    f32 = record(3, (3, 2, 2), struct.pack('<12f', *[i * 0.25 - 1 for i in range(12)]), label=-1.0,
                 path='', type=0, patient=0, study=0, image=0)
    note = b'note' + struct.pack('<I', 5) + pad8(b'hello')
    mixed = record(3, (1, 1, 1), struct.pack('<f', 0.5), label=0.5, ext=note)
    put('tensor', 'u8.mt', u8 + u8)
    put('tensor', 'three-dtypes.mt', u8 + u16 + f32)
    put('tensor', 'optional-field.mt', mixed)
    put('tensor', 'required-field.mt', record(1, (1, 1, 1), b'\x07', ext=b'ZZZZ' + b'\0' * 4))
    put('tensor', 'truncated.mt', (u8 + u16)[:len(u8) + 30])
    put('tensor', 'version-2.mt', record(1, (1, 1, 2), b'\1\2', version=2))
    put('tensor', 'path-tab.mt', record(1, (1, 1, 1), b'\0', path='XR_HAND/a\tb.png'))


def safetensors(tensors, meta=None, pad=True):
    """tensors: list of (name, dtype, shape, bytes); offsets follow in order."""
    head, off, buf = {}, 0, b''
    if meta is not None:
        head['__metadata__'] = meta
    for name, dt, shape, data in tensors:
        head[name] = {'dtype': dt, 'shape': shape, 'data_offsets': [off, off + len(data)]}
        off += len(data)
        buf += data
    h = json.dumps(head, separators=(',', ':')).encode()
    if pad:
        h += b' ' * (-len(h) % 8)
    return struct.pack('<Q', len(h)) + h + buf


def safetensors_corpus():
    put('safetensors', 'f32.st', safetensors(
        [('conv.weight', 'F32', [2, 3], struct.pack('<6f', 1, -2, 0.5, 3e-38, 1e38, 0))],
        meta={'format': 'mura', 'arch': 'resnet18'}))
    put('safetensors', 'dtypes.st', safetensors([
        ('h', 'F16', [2], struct.pack('<2H', 0x3c00, 0x7c00)),
        ('b', 'BF16', [1, 2], struct.pack('<2H', 0x3f80, 0xff80)),
        ('n', 'I64', [], struct.pack('<q', -5)),
        ('q', 'BOOL', [3], b'\0\1\1'),
        ('u', 'U8', [2], b'\xff\0'),
        ('i', 'I32', [1], struct.pack('<i', -7)),
        ('d', 'F64', [1], struct.pack('<d', 2.5)),
        ('z', 'F32', [0, 4], b''),
    ]))
    put('safetensors', 'empty-object.st', safetensors([], pad=True))
    h = (b'{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},'
         b'"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}')
    put('safetensors', 'overlap.st', struct.pack('<Q', len(h)) + h + b'abc')
    put('safetensors', 'not-json.st', struct.pack('<Q', 8) + b'{"a":[1,' + b'')
    put('safetensors', 'header-too-big.st', struct.pack('<Q', 1 << 40) + b'{}')


HEAD = 'path\ttype\tpatient\tstudy\timage\tlabel\tprob\n'


def scores_corpus():
    rows = []
    types = ['elbow', 'finger', 'hand', 'wrist', 'XR_SHOULDER', 'unknown']
    for i in range(12):
        lab = (i * 5) % 3 == 0
        for k in range(1 + i % 3):
            rows.append('p%d/image%d.png\t%s\t%d\t1\t%d\t%d\t%s\n' % (
                i, k + 1, types[i % len(types)], i + 1, k + 1, lab,
                repr(((i * 37 + k * 11) % 61 + (30 if lab else 5)) / 100)))
    put('scores', 'small.tsv', HEAD + ''.join(rows))
    put('scores', 'unknown-labels.tsv', HEAD + 'a\thand\t1\t1\t1\t-1\t0.25\nb\thand\t2\t1\t1\t1.0\t1\n')
    put('scores', 'crlf.tsv', (HEAD + ''.join(rows[:4])).replace('\n', '\r\n'))
    put('scores', 'header-only.tsv', HEAD)
    put('scores', 'labels-differ.tsv', HEAD + 'a\twrist\t3\t2\t1\t1\t0.9\nb\twrist\t3\t2\t2\t0\t0.1\n')
    put('scores', 'bad-prob.tsv', HEAD + 'a\telbow\t1\t1\t1\t0\t1e400\n')


def split_corpus():
    types = ['ELBOW', 'FINGER', 'FOREARM', 'HAND', 'HUMERUS', 'SHOULDER', 'WRIST']
    images, studies = [], []
    for p in range(1, 13):
        t = types[p % 7]
        for s in range(1, 1 + p % 2 + 1):
            lab = 'positive' if (p + s) % 2 else 'negative'
            d = 'MURA-v1.1/valid/XR_%s/patient%05d/study%d_%s/' % (t, p, s, lab)
            studies.append('%s,%d\n' % (d, lab == 'positive'))
            images.extend('%simage%d.png\n' % (d, i) for i in range(1, 3))
    put('split', 'images.csv', ''.join(images))
    put('split', 'studies.csv', ''.join(studies).replace('\n', '\r\n', 2))
    put('split', 'bad-line.csv', images[0] + 'not/a/mura/path.png\n')
    put('split', 'empty.csv', '')


tensor_corpus()
safetensors_corpus()
scores_corpus()
split_corpus()
