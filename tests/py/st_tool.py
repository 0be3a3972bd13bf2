"""st_tool.py - an independent pure-Python safetensors reader and writer,
written from the format's definition (huggingface/safetensors), with torch
only to turn bytes into tensors and back; the Python side of
tests/t-safetensors.sh (the `safetensors` package is not installed here).

    st_tool.py gen-dtypes OUT        tensors of every dtype the C reader converts,
                                     every half and bfloat16 bit pattern among them
    st_tool.py check-copy ORIG COPY MODE
                                     COPY, written by `tests/safetensors --copy`
                                     (MODE keep) or `--f32` (MODE f32) from ORIG:
                                     same names in the same order, shapes and
                                     metadata, floats equal bit for bit to torch's
                                     .float() of ORIG's, integers equal; and a
                                     header exactly as the reference writes it
    st_tool.py gen-resnet OUT        torchvision's resnet18 (seed 0) state_dict
    st_tool.py list-resnet           its "NAME DTYPE [shape]" lines, sorted
    st_tool.py check-resnet COPY     COPY loads into resnet18 with strict=True and
                                     equals the seed-0 model, outputs included

The check commands print PASS/FAIL lines and exit 0.
"""
import json
import random
import struct
import sys

import torch

MAX_HEADER = 100_000_000

# name, torch dtype, element size; in the reference's Dtype order, which its
# writer sorts by (descending), then by name.
DTYPES = [('BOOL', torch.bool, 1), ('U8', torch.uint8, 1), ('I8', torch.int8, 1),
          ('I16', torch.int16, 2), ('F16', torch.float16, 2), ('BF16', torch.bfloat16, 2),
          ('I32', torch.int32, 4), ('F32', torch.float32, 4), ('F64', torch.float64, 8),
          ('I64', torch.int64, 8)]
BY_NAME = {n: (t, s) for n, t, s in DTYPES}
BY_TORCH = {t: n for n, t, s in DTYPES}
RANK = {n: i for i, (n, t, s) in enumerate(DTYPES)}


class Bad(Exception):
    pass


def tensor_bytes(t):
    return t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def save(path, tensors, metadata=None, shuffle_header=None, ensure_ascii=False):
    """tensors: dict name -> tensor.  Data laid out as the reference writer
    does (dtype descending, then name); the header lists the entries in that
    order, or shuffled with the seed given (the format allows any order)."""
    names = sorted(tensors, key=lambda n: (-RANK[BY_TORCH[tensors[n].dtype]], n))
    entries, blobs, off = {}, [], 0
    for n in names:
        t = tensors[n]
        b = tensor_bytes(t)
        entries[n] = {'dtype': BY_TORCH[t.dtype], 'shape': list(t.shape),
                      'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    order = list(names)
    if shuffle_header is not None:
        random.Random(shuffle_header).shuffle(order)
    head = {}
    if metadata is not None:
        head['__metadata__'] = metadata
    for n in order:
        head[n] = entries[n]
    h = json.dumps(head, separators=(',', ':'), ensure_ascii=ensure_ascii).encode()
    h += b' ' * (-len(h) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h + b''.join(blobs))


def _pairs(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise Bad('key %r appears twice' % k)
        d[k] = v
    return d


def load(path):
    """(dict name -> tensor in header order, metadata or None, raw header)."""
    buf = open(path, 'rb').read()
    if len(buf) < 8:
        raise Bad('file too short')
    n, = struct.unpack_from('<Q', buf)
    if n > MAX_HEADER or 8 + n > len(buf):
        raise Bad('bad header size %d' % n)
    raw = buf[8:8 + n]
    head = json.loads(raw.decode('utf-8'), object_pairs_hook=_pairs)
    if not isinstance(head, dict):
        raise Bad('header not an object')
    data = buf[8 + n:]
    meta = head.pop('__metadata__', None)
    if meta is not None and not (isinstance(meta, dict) and
                                 all(isinstance(v, str) for v in meta.values())):
        raise Bad('__metadata__ not an object of strings')
    spans = []
    out = {}
    for name, e in head.items():
        if not isinstance(e, dict) or set(e) != {'dtype', 'shape', 'data_offsets'}:
            raise Bad('%s: bad entry' % name)
        dtype, size = BY_NAME[e['dtype']]
        shape, (b, end) = e['shape'], e['data_offsets']
        if not all(type(d) is int and d >= 0 for d in shape) or not 0 <= b <= end <= len(data):
            raise Bad('%s: bad shape or offsets' % name)
        count = 1
        for d in shape:
            count *= d
        if end - b != count * size:
            raise Bad('%s: %d bytes for %s %s' % (name, end - b, e['dtype'], shape))
        spans.append((b, end, name))
        if count:
            t = torch.frombuffer(bytearray(data[b:end]), dtype=torch.uint8).view(dtype)
        else:
            t = torch.empty(0, dtype=dtype)
        out[name] = t.reshape(shape)
    at = 0
    for b, end, name in sorted(spans):
        if b != at:
            raise Bad('%s: offsets do not tile the buffer' % name)
        at = end
    if at != len(data):
        raise Bad('buffer not covered')
    return out, meta, raw


def gen_dtypes(path):
    g = torch.Generator().manual_seed(4)
    every16 = torch.arange(-32768, 32768, dtype=torch.int32).to(torch.int16)
    specials = torch.tensor([0.0, -0.0, 1.0, -2.5, float('inf'), float('-inf'), float('nan'),
                             1e-45, -1e-40, 3.4028234663852886e38, 65504.0, 6e-8, 1e-3])
    t = {
        'f16.every': every16.view(torch.float16),
        'bf16.every': every16.view(torch.bfloat16),
        'f16.randn': torch.randn(3, 5, 7, generator=g).half(),
        'bf16.randn': torch.randn(64, 3, 3, 3, generator=g).bfloat16(),
        'f32.randn': torch.randn(4, 6, generator=g),
        'f32.specials': specials,
        'f64.values': torch.cat([torch.randn(20, generator=g, dtype=torch.float64) * 1e3,
                                 torch.tensor([1e300, -1e300, 1e-300, 0.1, 1 / 3, 16777217.0],
                                              dtype=torch.float64)]),
        'i64.values': torch.tensor([0, -1, 2**53 + 1, 2**63 - 1, -2**63, 16777217, 123456789012345]),
        'i32.values': torch.tensor([-2**31, 2**31 - 1, 16777217, 7], dtype=torch.int32),
        'i16.values': torch.tensor([-32768, 32767, 0], dtype=torch.int16),
        'i8.values': torch.tensor([-128, 127, 3], dtype=torch.int8),
        'u8.values': torch.tensor([0, 255, 17], dtype=torch.uint8),
        'bool.values': torch.tensor([True, False, True]),
        'bn1.num_batches_tracked': torch.tensor(42),
        'f32.scalar': torch.tensor(3.25),
        'f16.empty': torch.zeros(0, 3, dtype=torch.float16),
        'name with "quotes", \\ backslash, \t tab, \u00e9 and \U0001F600': torch.tensor([1.5, -1.5]),
    }
    meta = {'arch': 'resnet18', 'note': 'caf\u00e9 \U0001F600 "q" \\ \n new line', 'empty': ''}
    save(path, t, meta, shuffle_header=7, ensure_ascii=True)


def verdict(name, ok, why=''):
    print('PASS: %s' % name if ok else 'FAIL: %s: %s' % (name, why))


def bits_equal(a, b):
    """Same float32 values bit for bit (every NaN kept as the same NaN)."""
    return a.dtype == b.dtype == torch.float32 and a.shape == b.shape and \
        torch.equal(a.view(torch.int32), b.view(torch.int32))


def check_copy(orig_path, copy_path, mode):
    def verdict_(name, ok, why=''):
        verdict('%s: %s' % (mode, name), ok, why)
    orig, ometa, _ = load(orig_path)
    try:
        copy, cmeta, raw = load(copy_path)
    except Exception as e:
        verdict_('python reads the C-written file', False, repr(e))
        return
    verdict_('python reads the C-written file', True)
    verdict_('same names in the same order', list(orig) == list(copy),
            '%s vs %s' % (list(orig)[:3], list(copy)[:3]))
    verdict_('same metadata', ometa == cmeta, '%r vs %r' % (ometa, cmeta))
    # The header as the reference (serde_json) writes it: compact, metadata
    # first, raw UTF-8, padded with spaces to a multiple of 8.
    body = raw.rstrip(b' ')
    head = json.loads(body.decode('utf-8'))
    want = json.dumps(head, separators=(',', ':'), ensure_ascii=False).encode()
    verdict_('C header is compact JSON as the reference writes it', body == want, body[:80])
    verdict_('C header padded with spaces to a multiple of 8', len(raw) % 8 == 0 and len(raw) - len(body) < 8,
            '%d bytes, %d of them padding' % (len(raw), len(raw) - len(body)))
    verdict_('C header lists __metadata__ first', list(head)[0] == '__metadata__')
    bad = []
    for name, t in orig.items():
        c = copy.get(name)
        if c is None or c.shape != t.shape:
            bad.append(name)
            continue
        if t.is_floating_point() or mode == 'f32':
            if not bits_equal(c, t.float()):
                bad.append(name)
        elif c.dtype != torch.int64 or not torch.equal(c, t.long()):
            bad.append(name)
    verdict_('every value equals torch\'s %s' % ('.float()' if mode == 'f32' else '.float() or .long()'),
            not bad, 'differ: %s' % bad)
    nan = orig['f16.every'].float().isnan()
    print('# %d of the 65536 halves are NaN; compared bit for bit' % nan.sum().item())


def resnet18(seed):
    import torchvision
    torch.manual_seed(seed)
    return torchvision.models.resnet18()


def gen_resnet(path):
    m = resnet18(0)
    # Nonzero buffers, so that every tensor's bytes are checked.
    with torch.no_grad():
        for name, b in m.named_buffers():
            if name.endswith('num_batches_tracked'):
                b.fill_(len(name))
            else:
                b.uniform_(0.5, 1.5)
    save(path, m.state_dict(), {'arch': 'resnet18', 'source': 'torchvision 0.14'})


def list_resnet():
    sd = resnet18(0).state_dict()
    for line in sorted('%s %s [%s]' % (n, BY_TORCH[t.dtype], ','.join(map(str, t.shape)))
                       for n, t in sd.items()):
        print(line)


def check_resnet(copy_path):
    ref = resnet18(0)
    with torch.no_grad():
        for name, b in ref.named_buffers():
            if name.endswith('num_batches_tracked'):
                b.fill_(len(name))
            else:
                b.uniform_(0.5, 1.5)
    sd, meta, _ = load(copy_path)
    m = resnet18(1)
    try:
        m.load_state_dict(sd, strict=True)
        verdict('resnet18: the C-written file loads with strict=True', True)
    except Exception as e:
        verdict('resnet18: the C-written file loads with strict=True', False, repr(e)[:300])
        return
    want = ref.state_dict()
    bad = [n for n, t in m.state_dict().items() if t.dtype != want[n].dtype or not torch.equal(t, want[n])]
    verdict('resnet18: all %d tensors identical after C read and wrote them' % len(want), not bad,
            'differ: %s' % bad[:5])
    verdict('resnet18: metadata kept', meta == {'arch': 'resnet18', 'source': 'torchvision 0.14'}, repr(meta))
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    m.eval()
    ref.eval()
    with torch.no_grad():
        same = torch.equal(m(x), ref(x))
    verdict('resnet18: same outputs as the original model', same)
    n = sum(t.numel() for t in want.values())
    print('# resnet18: %d tensors, %d values' % (len(want), n))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == 'gen-dtypes':
        gen_dtypes(*args)
    elif cmd == 'check-copy':
        check_copy(*args)
    elif cmd == 'gen-resnet':
        gen_resnet(*args)
    elif cmd == 'list-resnet':
        list_resnet()
    elif cmd == 'check-resnet':
        check_resnet(*args)
    else:
        sys.exit('st_tool.py: unknown command %s' % cmd)


if __name__ == '__main__':
    main()
