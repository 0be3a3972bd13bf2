"""mkimages.py DIR - write the small fixed images that tests/t-resize.sh
decodes: one PNG of every colour type and bit depth PNG allows, an
interlaced one, two JPEGs, a non-square one for --fit, and a decompression
bomb (a header that claims 100000 x 100000 pixels), under MURA-like paths.

The PNGs are encoded here, by hand, so that every bit depth is exercised
(Pillow writes only some of them).  expected(name) gives, for each PNG, the
gray image mura-resize must produce at the image's own size, computed in
float32 in the order lib/image.c documents; t-resize.sh compares the two.
The files are committed under tests/data/resize; run this again only to
change them, and update the golden checksums in t-resize.sh then."""
import os
import struct
import sys
import zlib

import numpy as np

N = 16
y, x = np.mgrid[0:N, 0:N]
G = ((15 * x + 11 * y + 40 * ((x // 4 + y // 4) % 2)) % 256).astype(np.uint8)
G2 = ((255 - 12 * x - 4 * y) % 256).astype(np.uint8)
G3 = ((4 * x * y) % 256).astype(np.uint8)
A = (17 * x).astype(np.uint8)                      # 0 (transparent) to 255 (opaque)
W16 = ((G.astype(np.int64) * 257 + 911 * x + 37 * y) % 65536).astype(np.uint16)
A16 = (A.astype(np.uint16) * 257 - (A > 0) * 3).astype(np.uint16)

# Where each image goes, relative to DIR, and what it holds.
IMAGES = [
    ('MURA-v1.1/train/XR_WRIST/patient00001/study1_positive/image1.png', 'gray8'),
    ('MURA-v1.1/train/XR_WRIST/patient00001/study1_positive/image2.png', 'gray16'),
    ('MURA-v1.1/train/XR_ELBOW/patient00002/study1_negative/image1.png', 'gray1'),
    ('MURA-v1.1/train/XR_ELBOW/patient00002/study1_negative/image2.png', 'gray2'),
    ('MURA-v1.1/train/XR_ELBOW/patient00002/study1_negative/image3.png', 'gray4'),
    ('MURA-v1.1/train/XR_HAND/patient00003/study2_positive/image1.png', 'rgb8'),
    ('MURA-v1.1/train/XR_HAND/patient00003/study2_positive/image2.png', 'rgb16'),
    ('MURA-v1.1/train/XR_FINGER/patient00004/study1_negative/image1.png', 'rgba8'),
    ('MURA-v1.1/train/XR_FINGER/patient00004/study1_negative/image2.png', 'rgba16'),
    ('MURA-v1.1/train/XR_FOREARM/patient00005/study1_positive/image1.png', 'ga8'),
    ('MURA-v1.1/train/XR_FOREARM/patient00005/study1_positive/image2.png', 'ga16'),
    ('MURA-v1.1/valid/XR_HUMERUS/patient00006/study1_negative/image1.png', 'pal1'),
    ('MURA-v1.1/valid/XR_HUMERUS/patient00006/study1_negative/image2.png', 'pal2'),
    ('MURA-v1.1/valid/XR_HUMERUS/patient00006/study1_negative/image3.png', 'pal4'),
    ('MURA-v1.1/valid/XR_HUMERUS/patient00006/study1_negative/image4.png', 'pal8'),
    ('MURA-v1.1/valid/XR_SHOULDER/patient00007/study1_positive/image1.png', 'interlaced'),
    ('MURA-v1.1/valid/XR_SHOULDER/patient00007/study1_positive/image2.jpg', 'jpeg-gray'),
    ('MURA-v1.1/valid/XR_SHOULDER/patient00007/study1_positive/image3.jpg', 'jpeg-rgb'),
    ('MURA-v1.1/valid/XR_SHOULDER/patient00007/study1_positive/image4.png', 'wide'),
]


def chunk(tag, data):
    return struct.pack('>I', len(data)) + tag + data + struct.pack('>I', zlib.crc32(tag + data))


def pack_rows(a, depth):
    """Rows of samples (h, w*channels) to PNG scanlines, each with filter byte 0."""
    a = np.asarray(a)
    rows = []
    for r in a:
        if depth == 16:
            b = r.astype('>u2').tobytes()
        elif depth == 8:
            b = r.astype(np.uint8).tobytes()
        else:
            b = np.packbits(np.unpackbits(r.astype(np.uint8)[:, None], axis=1)[:, 8 - depth:].ravel()).tobytes()
        rows.append(b'\0' + b)
    return rows


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png(a, ctype, depth, plte=None, trns=None, interlace=False):
    """a: (h, w) or (h, w, channels) samples; ctype 0 gray, 2 RGB, 3 palette, 4 GA, 6 RGBA."""
    a = np.asarray(a)
    h, w = a.shape[:2]
    flat = a.reshape(h, -1)
    if interlace:
        raw = b''
        for x0, y0, dx, dy in ADAM7:
            sub = a[y0::dy, x0::dx]
            if sub.size:
                raw += b''.join(pack_rows(sub.reshape(sub.shape[0], -1), depth))
    else:
        raw = b''.join(pack_rows(flat, depth))
    out = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, depth, ctype, 0, 0, int(interlace)))
    if plte is not None:
        out += chunk(b'PLTE', bytes(np.asarray(plte, np.uint8).ravel()))
    if trns is not None:
        out += chunk(b'tRNS', bytes(np.asarray(trns, np.uint8).ravel()))
    return out + chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b'')


def palette(bits):
    n = 1 << bits
    i = np.arange(n)
    if bits <= 2:  # gray levels
        v = i * 255 // (n - 1)
        return np.stack([v, v, v], 1)
    return np.stack([(i * 37) % 256, (i * 91 + 20) % 256, (255 - i * 13) % 256], 1)


def index_image(bits):
    return (G.astype(np.int64) >> (8 - bits)).astype(np.uint8)


def f32(v):
    return np.asarray(v, np.float32)


def luma(r, g, b):
    return f32(0.299) * f32(r) + f32(0.587) * f32(g) + f32(0.114) * f32(b)


def rnd(v, scale=1.0):
    """lib/image.c's final step: v * scale + 0.5 in float32, truncated, clamped."""
    v = f32(v) * f32(scale) + f32(0.5)
    return np.clip(v, 0, 255).astype(np.uint8)


def expected(kind):
    """The gray image mura-resize must give for a PNG at its own size."""
    inv8, inv16 = f32(1.0) / f32(255), f32(1.0) / f32(65535)
    if kind in ('gray8', 'interlaced'):
        return G
    if kind == 'gray16':
        return rnd(W16, f32(1.0) / f32(257))
    if kind.startswith('gray'):
        b = int(kind[4:])
        return (index_image(b).astype(np.int64) * (255 // ((1 << b) - 1))).astype(np.uint8)
    if kind == 'rgb8':
        return rnd(luma(G, G2, G3))
    if kind == 'rgb16':
        return rnd(luma(W16, G2.astype(np.uint16) * 257, G3.astype(np.uint16) * 257), f32(1.0) / f32(257))
    if kind == 'rgba8':
        return rnd(luma(G, G2, G3) * (f32(A) * inv8))
    if kind == 'rgba16':
        return rnd(luma(W16, G2.astype(np.uint16) * 257, G3.astype(np.uint16) * 257) * (f32(A16) * inv16),
                   f32(1.0) / f32(257))
    if kind == 'ga8':
        return rnd(f32(G) * (f32(A) * inv8))
    if kind == 'ga16':
        return rnd(f32(W16) * (f32(A16) * inv16), f32(1.0) / f32(257))
    if kind.startswith('pal'):
        b = int(kind[3:])
        rgb = palette(b)[index_image(b)]
        v = luma(rgb[..., 0], rgb[..., 1], rgb[..., 2])
        if b == 8:  # with tRNS: alpha per palette entry
            v = v * (f32(trns8()[index_image(b)]) * inv8)
        return rnd(v)
    raise KeyError(kind)


def trns8():
    return (np.arange(256) * 5) % 256


def encode(kind):
    if kind == 'gray8':
        return png(G, 0, 8)
    if kind == 'interlaced':
        return png(G, 0, 8, interlace=True)
    if kind == 'gray16':
        return png(W16, 0, 16)
    if kind.startswith('gray'):
        b = int(kind[4:])
        return png(index_image(b), 0, b)
    if kind == 'rgb8':
        return png(np.stack([G, G2, G3], -1), 2, 8)
    if kind == 'rgb16':
        return png(np.stack([W16, G2.astype(np.uint16) * 257, G3.astype(np.uint16) * 257], -1), 2, 16)
    if kind == 'rgba8':
        return png(np.stack([G, G2, G3, A], -1), 6, 8)
    if kind == 'rgba16':
        return png(np.stack([W16, G2.astype(np.uint16) * 257, G3.astype(np.uint16) * 257, A16], -1), 6, 16)
    if kind == 'ga8':
        return png(np.stack([G, A], -1), 4, 8)
    if kind == 'ga16':
        return png(np.stack([W16, A16], -1), 4, 16)
    if kind.startswith('pal'):
        b = int(kind[3:])
        return png(index_image(b), 3, b, plte=palette(b), trns=trns8() if b == 8 else None)
    if kind == 'wide':
        yy, xx = np.mgrid[0:12, 0:20]
        return png(((13 * xx + 9 * yy + 60 * ((xx // 3) % 2)) % 256).astype(np.uint8), 0, 8)
    if kind.startswith('jpeg'):
        import io
        from PIL import Image
        im = Image.fromarray(G) if kind == 'jpeg-gray' else Image.fromarray(np.stack([G, G2, G3], -1))
        b = io.BytesIO()
        im.save(b, 'JPEG', quality=90)
        return b.getvalue()
    raise KeyError(kind)


def bomb():
    """A PNG header claiming 100000 x 100000 gray pixels, with a token IDAT:
    refused from its header, before any decoding."""
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 100000, 100000, 8, 0, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(b'\0' * 1000)) + chunk(b'IEND', b''))


if __name__ == '__main__':
    top = sys.argv[1]
    for path, kind in IMAGES:
        os.makedirs(os.path.dirname(os.path.join(top, path)), exist_ok=True)
        with open(os.path.join(top, path), 'wb') as f:
            f.write(encode(kind))
    with open(os.path.join(top, 'bomb.png'), 'wb') as f:
        f.write(bomb())
    with open(os.path.join(top, 'images.csv'), 'w') as f:
        for path, kind in IMAGES:
            f.write(path + '\n')
