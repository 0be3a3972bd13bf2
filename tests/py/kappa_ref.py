"""kappa_ref.py - scikit-learn's side of the mura-kappa parity tests.

  kappa_ref.py gen OUT SEED NSTUDIES      a scores table drawn at random, ties included
  kappa_ref.py thresholds OUT SEED        a random per-type thresholds file
  kappa_ref.py check MANIFEST             compare mura-kappa's JSON reports with sklearn
  kappa_ref.py tune VALID THRESHOLDS AGG  the tuned thresholds maximise kappa on VALID
  kappa_ref.py op VALID THRESHOLDS AGG POINT   the thresholds of an operating point
                                               (sens=T or spec=T) chosen on VALID
  kappa_ref.py roc DIR REPORT.json SCORES AGG   the ROC files agree with sklearn's roc_curve
  kappa_ref.py boot SCORES REPORT.json    the bootstrap intervals, redrawn here

MANIFEST lines: SCORES REPORT.json AGGREGATE THRESHOLDS (THRESHOLDS '-' for 0.5
everywhere).  Study probabilities are computed here from the image rows, on
their own: the mean adds a study's images in file order, as mura-kappa does.
Each command prints what differs on stderr and exits 1 if anything does.
"""
import json
import math
import random
import sys
import warnings

TYPES = ['unknown', 'elbow', 'finger', 'forearm', 'hand', 'humerus', 'shoulder', 'wrist']
HEADER = 'path\ttype\tpatient\tstudy\timage\tlabel\tprob'
TOL = 1e-9


def gen(out, seed, nstudies):
    """Studies of random types; a type with one study and a type with one class
    when there are enough studies; probabilities often on a coarse grid (ties,
    exactly 0.5 included), rows shuffled so a study's images are not adjacent."""
    rnd = random.Random(seed)
    types = TYPES[1:] + (['unknown'] if seed % 3 == 0 else [])
    single, oneclass = rnd.sample(TYPES[1:], 2)
    keys = set()
    rows = []
    for i in range(nstudies):
        if i == 0:
            t = single
        elif i < 4 and nstudies > 20:
            t = oneclass
        else:
            t = rnd.choice([x for x in types if x != single and (nstudies <= 20 or x != oneclass)])
        while True:
            key = (t, rnd.randint(1, 3000), rnd.randint(1, 3))
            if key not in keys:
                keys.add(key)
                break
        label = 1 if t == oneclass and nstudies > 20 else int(rnd.random() < 0.4)
        nimg = rnd.choice([1, 1, 1, 2, 3, 4])
        for k in range(nimg):
            if rnd.random() < 0.5:
                p = rnd.randint(0, 10) / 10
            else:
                p = min(1.0, max(0.0, rnd.gauss(0.35 + 0.3 * label, 0.25)))
            path = 'MURA-v1.1/valid/XR_%s/patient%05d/study%d_%s/image%d.png' % (
                t.upper(), key[1], key[2], 'positive' if label else 'negative', k + 1)
            rows.append('%s\t%s\t%d\t%d\t%d\t%d\t%r' % (path if t != 'unknown' else '', t, key[1], key[2],
                                                         k + 1, label, p))
    rnd.shuffle(rows)
    with open(out, 'w') as f:
        f.write(HEADER + '\n' + ''.join(r + '\n' for r in rows))


def gen_thresholds(out, seed):
    rnd = random.Random(seed)
    with open(out, 'w') as f:
        f.write('type\tthreshold\n')
        for t in rnd.sample(TYPES, 5):
            f.write('%s\t%r\n' % (t, rnd.choice([0.3, 0.5, 0.7, rnd.random()])))


def read_thresholds(path):
    thr = {t: 0.5 for t in TYPES}
    if path != '-':
        for i, line in enumerate(open(path)):
            t, v = line.rstrip('\n').split('\t')
            if i == 0 and (t, v) == ('type', 'threshold'):
                continue
            thr[t] = float(v)
    return thr


def studies(path, agg, keys=False):
    """[(type, label, prob)] per study, from the image rows; with keys,
    (type, label, prob, patient, study)."""
    by = {}
    with open(path) as f:
        lines = f.read().split('\n')
    for line in lines[1:]:
        if not line:
            continue
        _, t, patient, study, _, label, prob = line.split('\t')
        by.setdefault((t, int(patient), int(study)), []).append((int(label), float(prob)))
    out = []
    for (t, patient, study), imgs in by.items():
        ps = [p for _, p in imgs]
        if agg == 'max':
            prob = max(ps)
        else:
            s = ps[0]
            for p in ps[1:]:
                s += p
            prob = s / len(ps)
        out.append((t, imgs[0][0], prob) + ((patient, study) if keys else ()))
    return out


def expected(group):
    """sklearn's metrics of [(type, label, prob, threshold)]; None where undefined."""
    from sklearn.metrics import (accuracy_score, cohen_kappa_score, confusion_matrix, f1_score,
                                 recall_score, roc_auc_score)
    y = [g[1] for g in group]
    p = [g[2] for g in group]
    pred = [int(g[2] > g[3]) for g in group]
    e = {'studies': len(y), 'abnormal': sum(y)}
    if not y:
        e.update(tp=0, fp=0, tn=0, fn=0, kappa=None, auc=None, sensitivity=None, specificity=None,
                 accuracy=None, f1=None)
        return e
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(y, pred, labels=[0, 1]).ravel())
    e.update(tp=tp, fp=fp, tn=tn, fn=fn)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        k = cohen_kappa_score(y, pred)
    e['kappa'] = None if math.isnan(k) else float(k)
    e['auc'] = float(roc_auc_score(y, p)) if 0 < sum(y) < len(y) else None
    e['sensitivity'] = float(recall_score(y, pred, pos_label=1)) if tp + fn else None
    e['specificity'] = float(recall_score(y, pred, pos_label=0)) if tn + fp else None
    e['accuracy'] = float(accuracy_score(y, pred))
    e['f1'] = float(f1_score(y, pred)) if 2 * tp + fp + fn else None
    return e


def compare(where, got, want):
    bad = []
    for k, w in want.items():
        g = got.get(k, 'missing')
        if w is None or g is None or isinstance(w, int):
            ok = g == w
        else:
            ok = abs(g - w) <= TOL
        if not ok:
            bad.append('%s: %s: mura-kappa %r, sklearn %r' % (where, k, g, w))
    return bad


def check(manifest):
    bad = []
    n = 0
    for line in open(manifest):
        scores, report, agg, thrfile = line.split()
        thr = read_thresholds(thrfile)
        st = [(t, y, p, thr[t]) for t, y, p in studies(scores, agg)]
        got = {g['type']: g for g in json.load(open(report))['groups']}
        present = sorted({s[0] for s in st}, key=TYPES.index)
        if list(got) != present + ['all']:
            bad.append('%s: groups %s, want %s' % (report, list(got), present + ['all']))
            continue
        for t in present + ['all']:
            want = expected([s for s in st if t in ('all', s[0])])
            bad += compare('%s: %s' % (report, t), got[t], want)
            n += 1
    for b in bad:
        print(b, file=sys.stderr)
    print('%d groups compared' % n)
    return 1 if bad else 0


def tune(valid, thrfile, agg):
    """Per type, kappa at the written threshold equals the best kappa over 0.5
    and every midpoint between distinct study probabilities, and is at least
    the kappa at 0.5."""
    from sklearn.metrics import cohen_kappa_score
    thr = read_thresholds(thrfile)
    st = studies(valid, agg)
    bad = []
    ntuned = 0

    def kappa(group, t):
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            k = cohen_kappa_score([g[1] for g in group], [int(g[2] > t) for g in group])
        return -math.inf if math.isnan(k) else k

    for t in sorted({s[0] for s in st}):
        group = [s for s in st if s[0] == t]
        u = sorted({s[2] for s in group})
        cands = [0.5] + [a + (b - a) / 2 for a, b in zip(u, u[1:])]
        best = max(kappa(group, c) for c in cands)
        mine = kappa(group, thr[t])
        if abs(mine - best) > 1e-12 and not (mine == best):
            bad.append('%s: kappa %r at the tuned threshold %r, best %r' % (t, mine, thr[t], best))
        if mine < kappa(group, 0.5) - 1e-12:
            bad.append('%s: tuned kappa %r below the kappa at 0.5, %r' % (t, mine, kappa(group, 0.5)))
        ntuned += thr[t] != 0.5
    for b in bad:
        print(b, file=sys.stderr)
    print('%d types checked, %d thresholds moved' % (len({s[0] for s in st}), ntuned))
    return 1 if bad else 0


def op(valid, thrfile, agg, point):
    """Per type, by brute force over every candidate with sklearn's recall:
    sens=T, the highest candidate whose sensitivity on VALID is at least T
    (else the lowest); spec=T, the lowest whose specificity is at least T (else
    the highest); candidates the midpoints between consecutive distinct values
    of {0, 1, the type's study probabilities}.  A type without abnormal
    (normal) studies keeps 0.5."""
    from sklearn.metrics import recall_score
    kind, target = point.split('=')
    target = float(target)
    pos = 1 if kind == 'sens' else 0
    thr = read_thresholds(thrfile)
    st = studies(valid, agg)
    bad = []
    met = 0
    for t in TYPES:
        group = [s for s in st if s[0] == t]
        if not any(g[1] == pos for g in group):
            if group and thr[t] != 0.5:
                bad.append('%s: no class %d, threshold %r, want 0.5 kept' % (t, pos, thr[t]))
            continue
        u = sorted({0.0, 1.0} | {g[2] for g in group})
        cands = [a + (b - a) / 2 for a, b in zip(u, u[1:])]
        y = [g[1] for g in group]

        def rate(c):
            return recall_score(y, [int(g[2] > c) for g in group], pos_label=pos)
        ok = [c for c in cands if rate(c) >= target]
        if kind == 'sens':
            want = max(ok) if ok else min(cands)
        else:
            want = min(ok) if ok else max(cands)
        met += bool(ok)
        if thr[t] != want:
            bad.append('%s: threshold %r, want %r (%s %r there)' % (t, thr[t], want, kind, rate(want)))
    for b in bad:
        print(b, file=sys.stderr)
    print('%s: %d types reach it' % (point, met))
    return 1 if bad else 0


def roc(folder, report, scores, agg):
    """Every group with an AUC has a ROC TSV whose points are sklearn's
    roc_curve (drop_intermediate=False) and whose trapezoids add up to the AUC."""
    import os
    from sklearn.metrics import roc_curve
    st = studies(scores, agg)
    bad = []
    n = 0
    for g in json.load(open(report))['groups']:
        path = os.path.join(folder, 'roc-%s.tsv' % g['type'])
        if g['auc'] is None:
            if os.path.exists(path):
                bad.append('%s: written for a group without AUC' % path)
            continue
        lines = open(path).read().split('\n')
        pts = [tuple(float(v) for v in ln.split('\t')) for ln in lines[1:] if ln]
        group = [s for s in st if g['type'] in ('all', s[0])]
        fpr, tpr, _ = roc_curve([s[1] for s in group], [s[2] for s in group], drop_intermediate=False)
        if len(pts) != len(fpr) or any(abs(a[1] - b) > 1e-12 or abs(a[2] - c) > 1e-12
                                       for a, b, c in zip(pts, fpr, tpr)):
            bad.append('%s: points differ from sklearn roc_curve' % path)
        area = sum((b[1] - a[1]) * (a[2] + b[2]) / 2 for a, b in zip(pts, pts[1:]))
        if abs(area - g['auc']) > TOL:
            bad.append('%s: area %r, reported AUC %r' % (path, area, g['auc']))
        n += 1
    for b in bad:
        print(b, file=sys.stderr)
    print('%d curves compared' % n)
    return 1 if bad else 0


M64 = (1 << 64) - 1


class Rng:
    """lib/rng.c's stream, for redrawing mura-kappa's resamples: xoshiro256**
    seeded by splitmix64, derived from (seed, epoch, key) by FNV-1a."""

    def __init__(self, seed, epoch, key):
        x = [seed]
        a = self._splitmix(x)
        x = [a ^ epoch]
        a = self._splitmix(x)
        h = a ^ 0xcbf29ce484222325
        for c in key.encode():
            h = ((h ^ c) * 0x100000001b3) & M64
        x = [h]
        self.s = [self._splitmix(x) for _ in range(4)]

    @staticmethod
    def _splitmix(x):
        x[0] = (x[0] + 0x9e3779b97f4a7c15) & M64
        z = x[0]
        z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M64
        z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M64
        return z ^ (z >> 31)

    def u64(self):
        s = self.s
        rotl = lambda v, k: ((v << k) | (v >> (64 - k))) & M64  # noqa: E731
        out = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return out

    def below(self, n):
        lim = ((1 << 64) - n) % n
        while True:
            x = self.u64()
            if x >= lim:
                return x % n


def boot(scores, report):
    """Resample each group's studies as mura-kappa does (the draws index the
    studies ordered by probability, then by type, patient and study), compute
    every resample's metrics with sklearn, and compare numpy's percentile
    intervals with the reported ones."""
    import numpy as np
    rep = json.load(open(report))
    agg, nboot, seed, conf = rep['aggregate'], rep['bootstrap'], rep['seed'], rep['confidence']
    st = studies(scores, agg, keys=True)
    bad = []
    for g in rep['groups']:
        group = sorted((s for s in st if g['type'] in ('all', s[0])),
                       key=lambda s: (s[2], TYPES.index(s[0]), s[3], s[4]))
        n = len(group)
        rng = Rng(seed, 0, g['type'])
        vals = {m: [] for m in ('kappa', 'auc', 'sensitivity', 'specificity', 'accuracy', 'f1')}
        for _ in range(nboot):
            e = expected([group[rng.below(n)][:3] + (0.5,) for _ in range(n)])
            for m in vals:
                if e[m] is not None:
                    vals[m].append(e[m])
        for m, v in vals.items():
            want = [None, None] if not v else [float(x) for x in np.percentile(v, [50 * (1 - conf),
                                                                                    100 - 50 * (1 - conf)])]
            got = [g[m + '_lo'], g[m + '_hi']]
            for a, b in zip(got, want):
                if (a is None) != (b is None) or (a is not None and abs(a - b) > TOL):
                    bad.append('%s: %s interval: mura-kappa %r, here %r' % (g['type'], m, got, want))
                    break
    for b in bad:
        print(b, file=sys.stderr)
    print('%d groups, %d resamples each' % (len(rep['groups']), nboot))
    return 1 if bad else 0


def main(argv):
    cmd = argv[1]
    if cmd == 'gen':
        gen(argv[2], int(argv[3]), int(argv[4]))
        return 0
    if cmd == 'thresholds':
        gen_thresholds(argv[2], int(argv[3]))
        return 0
    if cmd == 'check':
        return check(argv[2])
    if cmd == 'tune':
        return tune(argv[2], argv[3], argv[4])
    if cmd == 'op':
        return op(argv[2], argv[3], argv[4], argv[5])
    if cmd == 'boot':
        return boot(argv[2], argv[3])
    if cmd == 'roc':
        return roc(argv[2], argv[3], argv[4], argv[5])
    print('kappa_ref.py: unknown command %s' % cmd, file=sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv))
