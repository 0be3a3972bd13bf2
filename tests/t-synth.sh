#!/bin/sh
# mura-synth: MURA-v1.1's layout and CSV formats line by line, labels that
# agree with the folders, patients unique to a split, PNG kinds and sizes,
# same bytes for the same seed (whatever the thread count), refusal of a
# non-empty folder, usage errors.
. "$(dirname "$0")/lib.sh"

TYPES='ELBOW|FINGER|FOREARM|HAND|HUMERUS|SHOULDER|WRIST'
IMG_RE="^MURA-v1\\.1/(train|valid)/XR_($TYPES)/patient[0-9]{5}/study[0-9]+_(positive|negative)/image[0-9]+\\.png\$"
STUDY_RE="^MURA-v1\\.1/(train|valid)/XR_($TYPES)/patient[0-9]{5}/study[0-9]+_(positive|negative)/,[01]\$"
ANN_RE="^MURA-v1\\.1/(train|valid)/XR_($TYPES)/patient[0-9]{5}/study[0-9]+_positive/image[0-9]+\\.png,(fracture|hardware|lesion|joint),[0-9]+,[0-9]+,[0-9]+,[0-9]+\$"

# checksum of every file under a tree, by relative path
sums() {
	(cd "$1" && find . -type f | LC_ALL=C sort | xargs md5sum) | md5sum | cut -d' ' -f1
}

# "path width height bitdepth colourtype" from each PNG's IHDR chunk
png_heads() {
	(cd "$1" && find MURA-v1.1 -name '*.png' | LC_ALL=C sort) | while read -r p; do
		printf '%s ' "$p"
		od -An -tu1 -j16 -N10 "$1/$p" | awk '{ print $1*16777216 + $2*65536 + $3*256 + $4, $5*16777216 + $6*65536 + $7*256 + $8, $9, $10 }'
	done
}

# --- usage errors and refusals ------------------------------------------------
check_fails "no --out is a usage error" 2 "^mura-synth: --out DIR is required" mura-synth
check_fails "too few patients is a usage error" 2 "^mura-synth: --patients: '5' is out of range" \
	mura-synth --out "$T/u" --patients 5
check_fails "difficulty above 1 is a usage error" 2 "^mura-synth: --difficulty: '1.5' is out of range" \
	mura-synth --out "$T/u" --difficulty 1.5
check_fails "a seed that is not a number is a usage error" 2 "^mura-synth: --seed: 'x' is not an integer" \
	mura-synth --out "$T/u" --seed x
check_fails "an unknown option is a usage error" 2 "usage: mura-synth" mura-synth --out "$T/u" --bogus
check_fails "an extra argument is a usage error" 2 "^mura-synth: unexpected argument 'more'" \
	mura-synth --out "$T/u" more
check "nothing written on a usage error" test ! -e "$T/u"
check_eq "--help prints the usage on stdout" "$(mura-synth --help | head -n 1 | cut -c1-18)" "usage: mura-synth "
check_eq "--version prints the version" "$(mura-synth --version | cut -d' ' -f1)" "mura-synth"

mkdir -p "$T/full"
echo keep > "$T/full/notes.txt"
check_fails "a non-empty folder is refused without --force" 1 "^mura-synth: .*/full: directory not empty" \
	mura-synth --out "$T/full" --patients 14
check_eq "a refused folder is left as it was" "$(ls -A "$T/full")" "notes.txt"
check_fails "a file in place of the folder is refused" 1 "^mura-synth: .*/notes.txt: not a directory" \
	mura-synth --out "$T/full/notes.txt" --patients 14

# --- one data set, checked line by line ---------------------------------------
mura-synth --out "$T/a" --patients 24 --seed 3 --difficulty 0.3 --threads 2 2>"$T/a.err"
check_eq "mura-synth writes a data set and exits 0" "$? $(cat "$T/a.err")" "0 "
M=$T/a/MURA-v1.1
check_eq "the folder holds MURA-v1.1 and annotations.csv only" "$(ls "$T/a" | tr '\n' ' ')" "MURA-v1.1 annotations.csv "
check_eq "MURA-v1.1 holds the two splits and four CSV files" "$(ls "$M" | tr '\n' ' ')" \
	"train train_image_paths.csv train_labeled_studies.csv valid valid_image_paths.csv valid_labeled_studies.csv "

for s in train valid; do
	n=$(wc -l <"$M/${s}_image_paths.csv")
	check_eq "$s image paths: every line is a $s image path ($n lines)" \
		"$(grep -Evc "$(echo "$IMG_RE" | sed "s/(train|valid)/$s/")" "$M/${s}_image_paths.csv")" 0
	check_eq "$s labeled studies: every line is a $s study folder, a slash, a comma and 0 or 1" \
		"$(grep -Evc "$(echo "$STUDY_RE" | sed "s/(train|valid)/$s/")" "$M/${s}_labeled_studies.csv")" 0
	check_eq "$s labeled studies: the label agrees with the folder name" \
		"$(grep -Ec '_positive/,0$|_negative/,1$' "$M/${s}_labeled_studies.csv")" 0
	check_eq "$s labeled studies: each study of the image paths once, in order" \
		"$(sed 's|/image[0-9]*\.png$|/|' "$M/${s}_image_paths.csv" | uniq | md5sum)" \
		"$(cut -d, -f1 "$M/${s}_labeled_studies.csv" | md5sum)"
	check_eq "$s: every CSV line ends in a newline, no carriage return" \
		"$(cat "$M/${s}_image_paths.csv" "$M/${s}_labeled_studies.csv" | tr -d -c '\r' | wc -c) $(tail -c 1 "$M/${s}_image_paths.csv" | od -An -c | tr -d ' ')" "0 \\n"
done
check "train and valid both have studies of every type" sh -c "
	for s in train valid; do for t in ELBOW FINGER FOREARM HAND HUMERUS SHOULDER WRIST; do
		grep -q \"/XR_\$t/\" '$M/'\$s'_labeled_studies.csv' || { echo \"no \$t in \$s\" >&2; exit 1; }
	done; done"

(cd "$T/a" && find MURA-v1.1 -type f -name '*.png' | LC_ALL=C sort) >"$T/disk"
LC_ALL=C sort "$M/train_image_paths.csv" "$M/valid_image_paths.csv" >"$T/listed"
check_eq "every image listed exists and every image on disk is listed" "$(cmp "$T/disk" "$T/listed" 2>&1)" ""
check_eq "nothing but PNG files, CSV files and folders in the tree" \
	"$(cd "$T/a" && find MURA-v1.1 -type f ! -name '*.png' | LC_ALL=C sort | tr '\n' ' ')" \
	"MURA-v1.1/train_image_paths.csv MURA-v1.1/train_labeled_studies.csv MURA-v1.1/valid_image_paths.csv MURA-v1.1/valid_labeled_studies.csv "
check_eq "every study folder on disk is labeled" \
	"$(cd "$T/a" && find MURA-v1.1 -mindepth 4 -maxdepth 4 -type d | sed 's|$|/|' | LC_ALL=C sort | md5sum)" \
	"$(cut -d, -f1 "$M/train_labeled_studies.csv" "$M/valid_labeled_studies.csv" | LC_ALL=C sort | md5sum)"
check_eq "images of a study are numbered 1 to n, n from 1 to 4" \
	"$(sed 's|^\(.*\)/image\([0-9]*\)\.png$|\1 \2|' "$T/listed" | awk '
		{ n[$1]++; if ($2 > max[$1]) max[$1] = $2 }
		END { for (s in n) if (n[s] != max[s] || n[s] < 1 || n[s] > 4) bad++; print bad + 0 }')" 0
check_eq "studies of a patient are numbered 1 to n" \
	"$(cut -d, -f1 "$M/train_labeled_studies.csv" "$M/valid_labeled_studies.csv" |
		sed 's|^\(.*\)/study\([0-9]*\)_.*|\1 \2|' | awk '
		{ n[$1]++; if ($2 > max[$1]) max[$1] = $2 }
		END { for (p in n) if (n[p] != max[p]) bad++; print bad + 0 }')" 0
check_eq "no patient number in both splits or under two types" \
	"$(cut -d/ -f2-4 "$T/listed" | sort -u | cut -d/ -f3 | sort | uniq -d | wc -l)" 0
check_eq "patients are numbered 1 to N, valid after train" \
	"$(cut -d/ -f2,4 "$T/listed" | sort -u -t/ -k2 | awk -F/ '
		{ p = substr($2, 8) + 0; if (p != ++n) bad++; if ($1 == "valid") v = 1; else if (v) bad++ }
		END { print bad + 0, n }')" "0 24"
check_eq "each type and split has MURA's share of abnormal studies, to the nearest study" \
	"$(cut -d/ -f2,3 "$M/train_labeled_studies.csv" "$M/valid_labeled_studies.csv" >/dev/null;
	   cat "$M/train_labeled_studies.csv" "$M/valid_labeled_studies.csv" | awk -F'[/,]' '
		BEGIN { f["XR_ELBOW"] = 0.376; f["XR_FINGER"] = 0.338; f["XR_FOREARM"] = 0.327; f["XR_HAND"] = 0.258
		        f["XR_HUMERUS"] = 0.458; f["XR_SHOULDER"] = 0.516; f["XR_WRIST"] = 0.383 }
		{ k = $2 " " $3; n[k]++; a[k] += $NF; t[k] = $3 }
		END { for (k in n) { w = f[t[k]] * n[k]; w = int(w + 0.5); if (a[k] != w) { print k, a[k], w; bad++ } } print bad + 0 }')" 0

# --- annotations ---------------------------------------------------------------
check_eq "annotations.csv starts with its header" "$(head -n 1 "$T/a/annotations.csv")" "path,kind,x0,y0,x1,y1"
check_eq "annotations.csv: every other line is an abnormal image, a kind and a box" \
	"$(tail -n +2 "$T/a/annotations.csv" | grep -Evc "$ANN_RE")" 0
check "annotations.csv marks some findings" test "$(wc -l <"$T/a/annotations.csv")" -gt 5
check_eq "annotations.csv names listed images only" \
	"$(tail -n +2 "$T/a/annotations.csv" | cut -d, -f1 | LC_ALL=C sort -u | LC_ALL=C comm -23 - "$T/listed" | wc -l)" 0
png_heads "$T/a" >"$T/heads"
check_eq "annotation boxes are non-empty and inside their image" \
	"$(awk -F, 'NR > 1 { print $1, $3, $4, $5, $6 }' "$T/a/annotations.csv" | LC_ALL=C sort |
		LC_ALL=C join - "$T/heads" | awk '{ if (!($2 < $4 && $3 < $5 && $4 <= $6 && $5 <= $7)) bad++ } END { print bad + 0 }')" 0
tail -n +2 "$T/a/annotations.csv" | cut -d, -f1 | LC_ALL=C sort -u >"$T/marked"
check "some abnormal images show no finding, as in real studies" \
	test "$(grep -c _positive/ "$T/listed")" -gt "$(wc -l <"$T/marked")"

# --- PNG kinds and sizes -------------------------------------------------------
check_eq "every image is 89 to 512 pixels a side" \
	"$(awk '$2 < 89 || $2 > 512 || $3 < 89 || $3 > 512' "$T/heads" | wc -l)" 0
check_eq "every PNG is 8-bit grey, 16-bit grey or 8-bit RGB" \
	"$(awk '!(($4 == 8 && ($5 == 0 || $5 == 2)) || ($4 == 16 && $5 == 0))' "$T/heads" | wc -l)" 0
check "some PNGs are 8-bit grey" grep -q ' 8 0$' "$T/heads"
check "some PNGs are 16-bit grey" grep -q ' 16 0$' "$T/heads"
check "some PNGs are RGB" grep -q ' 8 2$' "$T/heads"
check "sizes vary" test "$(awk '{ print $2 "x" $3 }' "$T/heads" | sort -u | wc -l)" -gt 10

# --- determinism ---------------------------------------------------------------
mura-synth --out "$T/b" --patients 24 --seed 3 --difficulty 0.3 --threads 1
check_eq "the same seed gives the same bytes, with 1 thread or 2" "$(sums "$T/b")" "$(sums "$T/a")"
mura-synth --out "$T/c" --patients 24 --seed 4 --difficulty 0.3
check "another seed gives other bytes" test "$(sums "$T/c")" != "$(sums "$T/a")"
mura-synth --out "$T/d" --patients 24 --seed 3 --difficulty 0.9
check_eq "the difficulty changes the images, not the plan" \
	"$(cat "$T/d/MURA-v1.1/"*.csv | md5sum) $(test "$(sums "$T/d")" != "$(sums "$T/a")" && echo differ)" \
	"$(cat "$M/"*.csv | md5sum) differ"
# The plan draws integers only, so its files are the same on every machine.
check_eq "golden checksum of the CSV files for seed 3, 24 patients" \
	"$(cat "$M/train_image_paths.csv" "$M/train_labeled_studies.csv" "$M/valid_image_paths.csv" \
		"$M/valid_labeled_studies.csv" | cksum)" "1468443786 7859"

# --- --force -------------------------------------------------------------------
mura-synth --out "$T/full" --patients 14 --force
check_eq "--force writes into a non-empty folder and keeps what else is there" \
	"$? $(ls "$T/full" | tr '\n' ' ')" "0 MURA-v1.1 annotations.csv notes.txt "
mura-synth --out "$T/a" --patients 14 --seed 5 --force
check_eq "--force replaces the old tree: no image left over from it" \
	"$(cd "$T/a" && find MURA-v1.1 -name '*.png' | LC_ALL=C sort | md5sum)" \
	"$(LC_ALL=C sort "$M/train_image_paths.csv" "$M/valid_image_paths.csv" | md5sum)"
check_eq "no temporary file left behind" "$(find "$T/a" "$T/full" -name '*.tmp*' -o -name '.MURA*' | wc -l)" 0

# --- what the pixels look like (PIL) ------------------------------------------
if need_python PIL numpy; then
	check "images are grey radiographs: dark background, bright bone, RGB channels equal" "$PY" -c "
import sys, numpy as np
from PIL import Image
root = '$T/b'
bad = []
for p in open(root + '/MURA-v1.1/train_image_paths.csv').read().split():
    im = Image.open(root + '/' + p)
    a = np.asarray(im).astype(np.float64)
    if im.mode == 'RGB':
        if not (a[..., 0] == a[..., 1]).all() or not (a[..., 1] == a[..., 2]).all(): bad.append(p + ': channels differ')
        a = a[..., 0] / 255
    else:
        a = a / (65535 if a.max() > 255 else 255)
    lo, hi = np.percentile(a, 5), np.percentile(a, 99.5)
    if not (lo < 0.45 and hi > 0.6 and a.std() > 0.08): bad.append('%s: 5%%=%.2f 99.5%%=%.2f std=%.2f' % (p, lo, hi, a.std()))
print('\n'.join(bad), file=sys.stderr)
sys.exit(1 if bad else 0)"
	check "hardware is among the brightest things in its image" "$PY" -c "
import sys, csv, numpy as np
from PIL import Image
root = '$T/b'
bad = []
for p, k, x0, y0, x1, y1 in list(csv.reader(open(root + '/annotations.csv')))[1:]:
    if k != 'hardware': continue
    a = np.asarray(Image.open(root + '/' + p)).astype(np.float64)
    a = a[..., 0] if a.ndim == 3 else a
    box = a[int(y0):int(y1), int(x0):int(x1)]
    if box.max() < 0.9 * a.max() or box.max() < np.percentile(a, 99): bad.append(p)
print(bad, file=sys.stderr)
sys.exit(1 if bad else 0)"
else
	skip "images are grey radiographs" "python3 with PIL and numpy not found"
fi
