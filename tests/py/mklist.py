"""mklist.py SEED N - print MURA-style CSV lists for N patients: image paths
to stdout-file 'images.csv' and labeled studies to 'studies.csv' in the
current folder.  Patients have 1-3 studies of 1-4 images, some in two types."""
import random
import sys

seed, n = int(sys.argv[1]), int(sys.argv[2])
rng = random.Random(seed)
types = ['ELBOW', 'FINGER', 'FOREARM', 'HAND', 'HUMERUS', 'SHOULDER', 'WRIST']
with open('images.csv', 'w') as im, open('studies.csv', 'w') as st:
    for p in range(1, n + 1):
        ts = rng.sample(types, 2 if rng.random() < 0.1 else 1)
        k = 0
        for t in ts:
            for _ in range(rng.choice([1, 1, 1, 2, 3])):
                k += 1
                lab = rng.random() < 0.4
                d = 'MURA-v1.1/valid/XR_%s/patient%05d/study%d_%s/' % (
                    t, 11000 + p, k, 'positive' if lab else 'negative')
                st.write('%s,%d\n' % (d, lab))
                for i in range(1, rng.randint(1, 4) + 1):
                    im.write('%simage%d.png\n' % (d, i))
