#!/bin/sh
# mura-kappa: parity with scikit-learn on random score files (ties included),
# malformed rows, degenerate input, threshold tuning, operating points, ROC curves,
# calibration, usage errors.
. "$(dirname "$0")/lib.sh"

cd "$T" || exit 1
HEAD='path	type	patient	study	image	label	prob'
REF="$MURA_TOP/tests/py/kappa_ref.py"

# A fixed table made without Python: 200 studies over the seven types and
# unknown, 1 to 3 images each, probabilities on a grid of 0.01 (ties).
awk -v h="$HEAD" 'BEGIN {
	split("unknown elbow finger forearm hand humerus shoulder wrist", ty, " ")
	print h
	for (i = 1; i <= 200; i++) {
		lab = (i * 7) % 3 == 0
		for (k = 1; k <= i % 3 + 1; k++)
			printf "p%d/i%d.png\t%s\t%d\t1\t%d\t%d\t%.2f\n", i, k, ty[i % 8 + 1], i, k, lab,
			       ((i * 37 + k * 11) % 61 + (lab ? 30 : 5)) / 100
	}
}' >fixed.tsv

# ---- usage ----
out=$(mura-kappa --help) && case $out in usage:*) echo "PASS: --help";; *) echo "FAIL: --help: $out";; esac
check_eq "--version" "$(mura-kappa --version)" "mura-kappa $(sed -n 's/^VERSION *= *//p' "$MURA_TOP/Makefile")"
check_fails "unknown option exits 2" 2 "unrecognized option|invalid option" mura-kappa --bogus fixed.tsv
check_fails "bad --format exits 2" 2 "--format: 'xml'" mura-kappa --format xml fixed.tsv
check_fails "bad --aggregate exits 2" 2 "--aggregate: 'median'" mura-kappa --aggregate median fixed.tsv
check_fails "negative --bootstrap exits 2" 2 "--bootstrap: '-1'" mura-kappa --bootstrap -1 fixed.tsv
check_fails "bad --threshold exits 2" 2 "--threshold: '1.5' is out of range" mura-kappa --threshold 1.5 fixed.tsv
check_fails "two scores files exit 2" 2 "one scores file at most" mura-kappa fixed.tsv fixed.tsv
check_fails "tuning and scores both on stdin exit 2" 2 "cannot both be stdin" mura-kappa -u - - <fixed.tsv
check_fails "missing file exits 1" 1 "mura-kappa: nope.tsv: No such file" mura-kappa nope.tsv

# ---- malformed rows: message with the line number, exit 1, nothing on stdout ----
bad() { # NAME PATTERN ROW: the row goes on line 3, after a good one
	printf '%s\nok.png\thand\t1\t1\t1\t1\t0.3\n%b\n' "$HEAD" "$3" >bad.tsv
	check_fails "malformed: $1" 1 "^mura-kappa: bad.tsv: line 3: $2" mura-kappa bad.tsv
}
bad "unknown label -1" "label is -1 \(unknown\)" 'x\thand\t2\t1\t1\t-1\t0.7'
bad "fractional label" "label '0.5' is not 0 or 1" 'x\thand\t2\t1\t1\t0.5\t0.7'
bad "prob above 1" "prob '1.01' is not a probability" 'x\thand\t2\t1\t1\t1\t1.01'
bad "prob not a number" "prob 'high' is not a probability" 'x\thand\t2\t1\t1\t1\thigh'
bad "unknown type" "type 'knee' is not a study type" 'x\tknee\t2\t1\t1\t1\t0.7'
bad "missing field" "6 fields, want 7" 'x\thand\t2\t1\t1\t0.7'
bad "extra field" "8 fields, want 7" 'x\thand\t2\t1\t1\t1\t0.7\textra'
bad "patient not an integer" "patient: '2x' is not an integer" 'x\thand\t2x\t1\t1\t1\t0.7'
bad "study out of range" "study: '65536' is out of range" 'x\thand\t2\t65536\t1\t1\t0.7'
bad "empty line" "1 field, want 7" ''
bad "labels differ within a study" "label 0 differs from label 1 of its study on line 2" 'x\thand\t1\t1\t2\t0\t0.7'
printf 'path,type\n' >bad.tsv
check_fails "malformed: not a scores header" 1 "bad.tsv: line 1: not a scores header" mura-kappa bad.tsv
printf 'elbow\t0.3\nelbow 0.4\n' >bad-thr.tsv
check_fails "malformed thresholds file" 1 "bad-thr.tsv: line 2: want 'type<TAB>threshold'" \
	mura-kappa -t bad-thr.tsv fixed.tsv

# ---- no rows: an error naming the file, never a report of 0 studies ----
: >empty.tsv
printf '%s\n' "$HEAD" >header.tsv
for f in empty header; do
	check_fails "$f file: no rows is an error" 1 "^mura-kappa: $f.tsv: no rows" mura-kappa $f.tsv
	check_fails "$f file as tuning file: no rows is an error" 1 "^mura-kappa: $f.tsv: no rows" \
		mura-kappa -u $f.tsv fixed.tsv
done
check_fails "empty stdin: no rows is an error" 1 "^mura-kappa: stdin: no rows" mura-kappa <empty.tsv

# ---- degenerate input: n/a, never a crash or a silent 0 ----
{
	printf '%s\n' "$HEAD"
	printf 'a\twrist\t1\t1\t1\t1\t0.9\nb\twrist\t2\t1\t1\t1\t0.2\nc\twrist\t3\t1\t1\t1\t0.7\n'
	printf 'd\thand\t4\t1\t1\t0\t0.2\ne\thand\t5\t1\t1\t1\t0.6\nf\thand\t6\t1\t1\t0\t0.4\n'
	printf 'g\telbow\t7\t1\t1\t0\t0.1\n'
} >oneclass.tsv
row() { mura-kappa -b 50 -f tsv oneclass.tsv | awk -F '\t' -v t="$1" '$1 == t'; }
check_eq "one-class type: kappa 0 (pe < 1, as sklearn), AUC and specificity n/a, sensitivity 2/3" \
	"$(row wrist | cut -f 2,3,6,7,8,9,10,11,12,15,16,17)" \
	"3	3	0	0	0	n/a	n/a	n/a	0.6666666666666666	n/a	n/a	n/a"
check_eq "single normal study: kappa and AUC n/a, specificity 1" \
	"$(row elbow | cut -f 2,3,6,9,12,15)" "1	0	n/a	n/a	n/a	1"
check_eq "a defined type beside them: kappa 1, AUC 1" "$(row hand | cut -f 6,9)" "1	1"
check_eq "one-class type in the table: kappa 0.000, AUC and specificity n/a" \
	"$(mura-kappa -b 0 oneclass.tsv | awk '$1 == "wrist" { print $5, $6, $8 }')" "0.000 n/a n/a"

# ---- a warning on every row of fewer than 10 studies or one class only ----
check_eq "tsv: a last column note on every such row" \
	"$(mura-kappa -b 50 -f tsv oneclass.tsv | awk -F '\t' '{ print $1 "=" $NF }' | tr '\n' ',')" \
	"type=note,elbow=one class only,hand=fewer than 10 studies,wrist=one class only,all=fewer than 10 studies,"
check_eq "json: a note, null where none" \
	"$(mura-kappa -b 0 -f json oneclass.tsv | grep -o '"type": "[a-z]*"\|"note": [^}]*' | tr '\n' ' ')" \
	'"type": "elbow" "note": "one class only" "type": "hand" "note": "fewer than 10 studies" "type": "wrist" "note": "one class only" "type": "all" "note": "fewer than 10 studies" '
check_eq "json: null on a row of 10 studies or more with both classes" \
	"$(mura-kappa -b 0 -f json fixed.tsv | grep -c '"note": null')" 9
mura-kappa -b 50 -f markdown oneclass.tsv >note.md
check_eq "markdown: the note in the row, where its interval looks certain" \
	"$(awk -F '|' '$2 ~ /hand/ { gsub(/ +$|^ +/, "", $7); gsub(/ +$|^ +/, "", $(NF - 1)); print $7 "; " $(NF - 1) }' note.md)" \
	"[1.000, 1.000]; fewer than 10 studies"
check "markdown: a footnote under the table says what the note means" \
	grep -q "^note: a row of fewer than 10 studies, or of one class only, is an anecdote" note.md
check_eq "no footnote when no row has a note" "$(mura-kappa -b 0 fixed.tsv | grep -c '^note:')" 0

# ---- determinism: golden checksums, stdin, seeds ----
check_eq "golden checksum, tsv with bootstrap (seed 7)" \
	"$(mura-kappa -b 200 -s 7 -f tsv fixed.tsv | cksum)" "3587069461 2913"
check_eq "golden checksum, table" "$(mura-kappa -b 100 -s 3 <fixed.tsv | cksum)" "2906631859 1942"
# The goldens from before the note column, which it must have left as they were.
check_eq "... the tsv less its note column: the golden of before the column" \
	"$(mura-kappa -b 200 -s 7 -f tsv fixed.tsv | cut -f 1-30 | cksum)" "2963517974 2899"
check_eq "... the table less its note column: the golden of before the column" \
	"$(mura-kappa -b 100 -s 3 <fixed.tsv | awk '/^type/ { c = index($0, "  note") - 1 }
		c && /^$/ { exit } { print c ? substr($0, 1, c) : $0 }' | sed 's/ *$//' | cksum)" "4051221631 1936"
check_eq "stdin and a file give the same report" \
	"$(mura-kappa -f tsv -b 20 <fixed.tsv | cksum)" "$(mura-kappa -f tsv -b 20 fixed.tsv | cksum)"
a=$(mura-kappa -f tsv -s 1 fixed.tsv | cksum) b=$(mura-kappa -f tsv -s 2 fixed.tsv | cksum)
[ "$a" != "$b" ] && echo "PASS: another seed gives other intervals" || echo "FAIL: seeds 1 and 2 give the same intervals"
check_eq "intervals are ordered: lo <= hi" "$(mura-kappa -f tsv fixed.tsv | awk -F '\t' 'NR > 1 {
	for (c = 6; c <= 21; c += 3) if ($(c + 1) != "n/a" && $(c + 1) > $(c + 2)) print $1, c }')" ""

# ---- thresholds: file in, file out, tuning ----
printf 'type\tthreshold\nelbow\t0.25\nwrist\t0.75\n' >thr.tsv
check_eq "--thresholds sets listed types, 0.5 elsewhere" \
	"$(mura-kappa -b 0 -f tsv -t thr.tsv fixed.tsv | awk -F '\t' 'NR > 1 { printf "%s=%s ", $1, $5 }')" \
	"unknown=0.5 elbow=0.25 finger=0.5 forearm=0.5 hand=0.5 humerus=0.5 shoulder=0.5 wrist=0.75 all=n/a "
check_eq "--threshold sets every type" \
	"$(mura-kappa -b 0 -f tsv --threshold 0.3 fixed.tsv | awk -F '\t' 'NR > 1 { printf "%s ", $5 }')" \
	"0.3 0.3 0.3 0.3 0.3 0.3 0.3 0.3 0.3 "
mura-kappa -b 0 -f tsv -u fixed.tsv -w tuned.tsv fixed.tsv >tuned.out 2>tuned.err
check_eq "tuning writes its thresholds, every type, atomically" \
	"$(cut -f 1 tuned.tsv | tr '\n' ' '; ls | grep -c '\.tmp')" \
	"type elbow finger forearm hand humerus shoulder wrist unknown 0"
check_eq "written thresholds read back give the same report" \
	"$(mura-kappa -b 0 -f tsv -t tuned.tsv fixed.tsv | cksum)" "$(cksum <tuned.out)"
check_eq "tuned kappa on the tuning file is at least the kappa at 0.5, per type" \
	"$(mura-kappa -b 0 -f tsv fixed.tsv | paste - tuned.out | awk -F '\t' 'NR > 1 && $1 != "all" && ($37 + 0 < $6 + 0) { print $1, $6, $37 }')" ""
# An output that is not a regular file (a FIFO here; /dev/null alike) is
# written in place: a rename over it would replace it (as root, /dev/null).
mkfifo fifo.tsv
timeout 20 cat fifo.tsv >fifo.got &  # (a FIFO replaced: no writer ever comes)
mura-kappa -b 0 -f tsv -u fixed.tsv -w fifo.tsv fixed.tsv >/dev/null 2>&1
wait
check "--write-thresholds to a FIFO: it stays a FIFO" test -p fifo.tsv
check_eq "... and it carried the thresholds" "$(cksum <fifo.got)" "$(cksum <tuned.tsv)"
moved=$(awk -F '\t' 'NR > 1 && $2 != 0.5' tuned.tsv | wc -l)
[ "$moved" -gt 0 ] && echo "PASS: tuning moved $moved thresholds" || echo "FAIL: tuning moved no threshold"
check_fails "--write-thresholds to stdout is refused" 2 "needs a file" mura-kappa -w - fixed.tsv

# ---- operating points: thresholds chosen on one file for a target
# sensitivity or specificity, applied to another ----
{
	printf '%s\n' "$HEAD"
	printf 'a\thand\t1\t1\t1\t1\t0.9\nb\thand\t2\t1\t1\t1\t0.7\nc\thand\t3\t1\t1\t1\t0.3\n'
	printf 'd\thand\t4\t1\t1\t0\t0.6\ne\thand\t5\t1\t1\t0\t0.2\n'
	printf 'f\twrist\t6\t1\t1\t0\t0.4\ng\twrist\t7\t1\t1\t0\t0.1\n'
} >op.tsv
# By hand: hand's candidates, from the top, are 0.95, 0.8, 0.65, 0.45, 0.25, 0.1;
# sensitivity there 0, 1/3, 2/3, 2/3, 1, 1; specificity 1, 1, 1, 1/2, 1/2, 0.
# wrist (normal studies at 0.4 and 0.1): 0.7, 0.25, 0.05; specificity 1, 1/2, 0.
opthr() { # POINT: hand's and wrist's thresholds, and stderr
	mura-kappa -b 0 -u op.tsv --operating-point "$1" -w op.thr op.tsv >/dev/null 2>op.err &&
	awk -F '\t' '$1 == "hand" || $1 == "wrist" { printf "%s=%.3f ", $1, $2 }' op.thr
}
check_eq "sens=0.6: the highest threshold with sensitivity >= 0.6 (by hand)" "$(opthr sens=0.6)" \
	"hand=0.650 wrist=0.500 "
check_eq "sens=1: every abnormal study called" "$(opthr sens=1)" "hand=0.250 wrist=0.500 "
check_eq "... and a type without abnormal studies keeps its threshold, with a note" \
	"$(sed 's/^mura-kappa: //' op.err)" "wrist: no abnormal studies in op.tsv: threshold 0.5 kept"
check_eq "spec=0.5: the lowest threshold with specificity >= 0.5 (by hand)" "$(opthr spec=0.5)" \
	"hand=0.250 wrist=0.250 "
check_eq "spec=0.9: above the normal study at 0.6" "$(opthr specificity=0.9)" "hand=0.650 wrist=0.700 "
check_eq "the report says where its thresholds come from" \
	"$(mura-kappa -b 0 -u op.tsv --operating-point sens=0.6 op.tsv 2>/dev/null | sed -n 2p)" \
	"abnormal when probability > threshold (per type, chosen on op.tsv for sensitivity >= 0.6)"
sed 's/\t0\.9$/\t0/' op.tsv >op0.tsv
check_eq "a target no threshold reaches: the nearest, with a note" \
	"$(mura-kappa -b 0 -u op0.tsv --operating-point sens=1 -f tsv op0.tsv 2>&1 >/dev/null | sed 's/^mura-kappa: //')" \
	"hand: sensitivity 1 not reached on op0.tsv: 0.6667 at threshold 0.1, the nearest
wrist: no abnormal studies in op0.tsv: threshold 0.5 kept"
check_fails "--operating-point without a validation file exits 2" 2 "needs --tune-thresholds" \
	mura-kappa --operating-point sens=0.9 fixed.tsv
check_fails "--operating-point of another metric exits 2" 2 "'ppv=0.9' is not sens=T or spec=T" \
	mura-kappa -u fixed.tsv --operating-point ppv=0.9 fixed.tsv
check_fails "--operating-point target above 1 exits 2" 2 "'sens=1.2'.*out of range" \
	mura-kappa -u fixed.tsv --operating-point sens=1.2 fixed.tsv
for p in sens=0.9 spec=0.95; do
	check_eq "$p chosen on a file reaches it there, in every type that has the class" \
		"$(mura-kappa -b 0 -f tsv -u fixed.tsv --operating-point $p fixed.tsv 2>/dev/null | awk -F '\t' -v p=$p '
			NR > 1 && $1 != "all" { v = p ~ /^sens/ ? $12 : $15; if (v != "n/a" && v + 0 < substr(p, 6) + 0) print $1, v }')" ""
done

# ---- ROC curves ----
if mura-kappa -b 0 -f json -r roc oneclass.tsv >roc.json 2>roc.err; then
	check_eq "--roc: PNGs for the groups with an AUC only" "$(cd roc && ls | tr '\n' ' ')" \
		"roc-all.png roc-all.tsv roc-hand.png roc-hand.tsv "
	for f in roc/roc-all.png roc/roc-hand.png; do
		check_eq "$f is a PNG" "$(od -An -c -N4 "$f" | tr -d ' ')" '211PNG'
	done
	check_eq "--roc: TSV of the overall curve" "$(cat roc/roc-all.tsv | tr '\t\n' ', ')" \
		"threshold,fpr,tpr inf,0,0 0.9,0,0.25 0.7,0,0.5 0.6,0,0.75 0.4,0.3333333333333333,0.75 0.2,0.6666666666666666,1 0.1,1,1 "
else
	echo "FAIL: --roc: mura-kappa failed"; sed 's/^/    /' roc.err
fi

# Hostile folder names: the ROC script must never carry them (gnuplot would
# run a line of the name as a command), yet the curves land in that folder.
nl='
' cr=$(printf '\r')
for d in "roc-nl${nl}system \"touch PWNED-nl\"${nl}x" "roc-q'${nl}system 'touch PWNED-q'${nl}'" \
	"roc-dq\"${nl}system \"touch PWNED-dq\"${nl}\"" 'roc-bs\'"${nl}"'system "touch PWNED-bs"' \
	'roc-sh$(touch PWNED-sh)`touch PWNED-bt`;touch PWNED-semi' "roc-cr${cr}system \"touch PWNED-cr\"${cr}x"; do
	label=$(printf '%s' "$d" | tr '\n\r' '~~' | cut -c1-24)
	rm -rf ./PWNED* "$d"
	if mura-kappa -b 0 -f tsv -r "$d" oneclass.tsv >/dev/null 2>roc.err; then
		check_eq "--roc into '$label': the curves are there, PNGs" \
			"$(od -An -c -N4 "$d/roc-all.png" | tr -d ' ')$(od -An -c -N4 "$d/roc-hand.png" | tr -d ' ')" \
			'211PNG211PNG'
	else
		echo "FAIL: --roc into '$label': mura-kappa failed"; sed 's/^/    /' roc.err
	fi
	check_eq "--roc into '$label': nothing of the name was run" "$(ls -d ./PWNED* 2>/dev/null)" ""
done
# With stdin closed, the pipe to gnuplot may get descriptor 0.
rm -rf roc3
mura-kappa -b 0 -r roc3 oneclass.tsv <&- >/dev/null 2>roc.err
check_eq "--roc with stdin closed: exit 0 and the PNG" "$?:$(od -An -c -N4 roc3/roc-all.png | tr -d ' ')" '0:211PNG'

# ---- parity with scikit-learn ----
if ! need_python sklearn numpy; then
	skip "parity with scikit-learn" "sklearn not importable by $PY"
	exit 0
fi
: >manifest
for seed in 1 2 3 4 5 6; do
	for n in 3 25 400; do
		f=s$seed-$n
		"$PY" "$REF" gen $f.tsv $seed $n
		"$PY" "$REF" thresholds $f.thr $seed
		mura-kappa -b 0 -f json $f.tsv >$f.mean.json && echo "$f.tsv $f.mean.json mean -" >>manifest
		mura-kappa -b 30 -s $seed -a max -f json $f.tsv >$f.max.json && echo "$f.tsv $f.max.json max -" >>manifest
		mura-kappa -b 0 -t $f.thr -f json $f.tsv >$f.thr.json && echo "$f.tsv $f.thr.json mean $f.thr" >>manifest
	done
done
check_eq "every run of mura-kappa succeeded" "$(wc -l <manifest | tr -d ' ')" 54
check "kappa, AUC, sensitivity, specificity, accuracy, F1, confusion counts equal sklearn's (1e-9)" \
	"$PY" "$REF" check manifest
"$PY" "$REF" gen valid.tsv 11 600
"$PY" "$REF" gen test.tsv 12 600
for agg in mean max; do
	mura-kappa -b 0 -a $agg -u valid.tsv -w tuned-$agg.tsv -f json valid.tsv >v.json
	check "tuned thresholds ($agg) maximise kappa on the validation file (brute force with sklearn)" \
		"$PY" "$REF" tune valid.tsv tuned-$agg.tsv $agg
	mura-kappa -b 0 -a $agg -u valid.tsv -f json test.tsv >t-$agg.json
	echo "test.tsv t-$agg.json $agg tuned-$agg.tsv" >manifest2
	check "tuned thresholds ($agg) applied to another file: parity with sklearn" "$PY" "$REF" check manifest2
done
for p in sens=0.9 spec=0.95 sens=0.5 spec=1 sens=1; do
	mura-kappa -b 0 -a max -u valid.tsv --operating-point $p -w op-$p.tsv -f json test.tsv >op-$p.json 2>/dev/null
	check "operating point $p chosen on the validation file: brute force with sklearn" \
		"$PY" "$REF" op valid.tsv op-$p.tsv max $p
	echo "test.tsv op-$p.json max op-$p.tsv" >manifest3
	check "operating point $p applied to another file: parity with sklearn" "$PY" "$REF" check manifest3
done
mura-kappa -b 100 -s 5 -f json fixed.tsv >boot1.json
check "bootstrap intervals equal a redraw with sklearn and numpy.percentile (fixed table)" \
	"$PY" "$REF" boot fixed.tsv boot1.json
mura-kappa -b 60 -s 9 -a max -f json s2-25.tsv >boot2.json
check "bootstrap intervals equal a redraw (few studies, one-class resamples, max)" \
	"$PY" "$REF" boot s2-25.tsv boot2.json
mura-kappa -b 0 -f json -r roc2 s1-400.tsv >r.json
check "ROC points equal sklearn's roc_curve and their area the AUC" "$PY" "$REF" roc roc2 r.json s1-400.tsv mean

mura-kappa -b 0 -f markdown s1-400.tsv >md.txt
mura-kappa -b 0 -f table s1-400.tsv >tb.txt
check_eq "markdown table has the header rule of a Markdown table" \
	"$(grep -c '^|-*|[-:|]*$' md.txt)" 1
check_eq "markdown table holds the same cells as the plain table" \
	"$(grep '^| ' md.txt | sed 's/|/ /g' | tr -s ' ' | sed 's/^ //; s/ $//')" \
	"$(sed -n '/^type/,/^$/p' tb.txt | sed '/^$/d' | tr -s ' ')"
check_eq "... and the same footnote" "$(sed -n '/^| all/,$p' md.txt | sed 1d)" "$(sed -n '/^all/,$p' tb.txt | sed 1d)"

# ---- calibration: Brier score (scikit-learn's brier_score_loss) and ECE
# (10 equal bins, computed here in numpy) of the study probabilities ----
mura-kappa --bootstrap 0 --calibration cal fixed.tsv >/dev/null 2>"$T/cal.err"
check "calibration writes its table, bins and diagram" test -s cal/calibration.tsv -a -s cal/reliability.tsv \
	-a -s cal/reliability.png
if need_python sklearn numpy; then
	check "Brier score and ECE, per type and overall, equal scikit-learn's and numpy's (1e-4)" "$PY" -c "
import csv, numpy as np
from sklearn.metrics import brier_score_loss
st = {}
for r in csv.DictReader(open('fixed.tsv'), delimiter='\t'):
    st.setdefault((r['type'], r['patient'], r['study']), [int(r['label']), []])[1].append(float(r['prob']))
got = {r['type']: r for r in csv.DictReader(open('cal/calibration.tsv'), delimiter='\t')}
for t in ['elbow', 'finger', 'forearm', 'hand', 'humerus', 'shoulder', 'wrist', 'all']:
    v = [(y, np.mean(p)) for (ty, _, _), (y, p) in st.items() if t in ('all', ty)]
    if not v:
        assert t not in got, t; continue
    y = np.array([a for a, _ in v]); p = np.array([b for _, b in v])
    b = np.minimum((p * 10).astype(int), 9)
    ece = sum(np.mean(b == k) * abs(p[b == k].mean() - y[b == k].mean()) for k in range(10) if (b == k).any())
    assert abs(float(got[t]['brier']) - brier_score_loss(y, p)) < 1e-4, (t, got[t], brier_score_loss(y, p))
    assert abs(float(got[t]['ece']) - ece) < 1e-4, (t, got[t], ece)
    assert int(got[t]['studies']) == len(v)
"
fi
