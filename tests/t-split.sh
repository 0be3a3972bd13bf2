#!/bin/sh
# mura-split: parts by patient, stratified by type, deterministic, consistent
# between image lists and study lists.
. "$(dirname "$0")/lib.sh"

cd "$T" || exit 1
if ! need_python random; then skip "mura-split tests" "no /usr/bin/python3"; exit 0; fi
"$PY" "$MURA_TOP/tests/py/mklist.py" 7 400

patients() { sed 's|.*/patient\([0-9]*\)/.*|\1|' "$1" | sort -u; }
# studies per type in a list of study lines
per_type() { sed 's|.*/XR_\([A-Z]*\)/.*|\1|' "$1" | sort | uniq -c | awk '{print $2, $1}'; }

for f in 0.3 0.5; do
	mura-split --fraction $f --seed 1 --part 2 < studies.csv > s2
	mura-split --fraction $f --seed 1 --part 1 < studies.csv > s1
	check_eq "parts of $f together hold every line once" \
		"$(sort s1 s2 | cksum)" "$(sort studies.csv | cksum)"
	check_eq "no patient in both parts at fraction $f" "$(patients s1 > p1; patients s2 > p2; comm -12 p1 p2 | wc -l)" 0
	bad=$(per_type studies.csv | while read t n; do
		got=$(grep -c "/XR_$t/" s2)
		awk -v n="$n" -v g="$got" -v f="$f" -v t="$t" \
		  'BEGIN { want = int(n * f + 0.5); d = g - want; if (d < 0) d = -d; if (d > 1) print t, g, want }'
	done)
	check_eq "part 2 holds fraction $f of each type within one study" "$bad" ""
done

mura-split --fraction 0.3 --seed 5 < images.csv > i2
mura-split --fraction 0.3 --seed 5 < studies.csv > s2
check_eq "image list and study list split the same patients" \
	"$(patients i2 | cksum)" "$(patients s2 | cksum)"
shuf --random-source=images.csv images.csv > shuffled.csv
mura-split --fraction 0.3 --seed 5 < shuffled.csv > j2
check_eq "split does not depend on input order" "$(sort i2 | cksum)" "$(sort j2 | cksum)"
mura-split --fraction 0.3 --seed 6 < images.csv > k2
check "another seed gives another split" sh -c "! cmp -s i2 k2"
check_eq "default part is 2 at fraction 0.3" "$(mura-split --seed 5 < images.csv | cksum)" "$(cksum < i2)"
check_eq "fraction 0 keeps nothing in part 2" "$(mura-split --fraction 0 < images.csv | wc -l)" 0
check_eq "fraction 1 keeps everything in part 2" "$(mura-split --fraction 1 < images.csv | wc -l)" "$(wc -l < images.csv)"
check_eq "golden split of the generated list" "$(cksum < i2)" "$(cat "$MURA_TOP/tests/data/split.cksum" 2>/dev/null || echo missing)"

# Empty input: nothing to split, nothing out, success (under make
# check-sanitize: no qsort of a NULL array, no leak).
: >empty.csv
mura-split empty.csv >empty.out 2>empty.err
check_eq "empty input: exit 0, nothing on stdout or stderr" "$?:$(cat empty.out empty.err | wc -c)" "0:0"
mura-split --part 1 <empty.csv >empty.out 2>empty.err
check_eq "empty stdin, part 1: exit 0, nothing on stdout or stderr" "$?:$(cat empty.out empty.err | wc -c)" "0:0"

printf 'MURA-v1.1/valid/XR_WRIST/patient00001/study1_positive/image1.png\nnot/a/mura/path.png\n' > bad.csv
check_fails "a line that is no MURA path is refused with its number" 1 \
	"^mura-split: bad.csv: line 2: 'not/a/mura/path.png' is not a MURA path" mura-split bad.csv
check_fails "fraction above 1 is a usage error" 2 "^mura-split: --fraction: '1.5' is out of range" \
	mura-split --fraction 1.5 bad.csv
check_fails "part 3 is a usage error" 2 "^mura-split: --part" mura-split --part 3 bad.csv
check_fails "a missing file is an error" 1 "^mura-split: nosuch.csv: No such file" mura-split nosuch.csv
