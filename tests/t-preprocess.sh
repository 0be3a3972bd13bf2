#!/bin/sh
# t-preprocess.sh - pipelines/preprocess.mk on a small MURA-layout tree: the
# three streams hold the right images in order, byte for byte what serial
# mura-resize writes; a second run does nothing; a changed list, SIZE or
# SPLIT_SEED redoes exactly the stages that depend on it; a bad image fails
# the run and leaves no output behind.
. "$(dirname "$0")/lib.sh"

if ! command -v parallel >/dev/null; then
	skip "preprocess.mk" "GNU parallel missing"
	exit 0
fi
if ! command -v mura-split >/dev/null; then
	skip "preprocess.mk" "mura-split not built"
	exit 0
fi

# A MURA-v1.1 tree of the test images: 7 types, train 2 patients each, valid
# 4 each, 1 or 2 studies of 1 to 3 images.
D=$MURA_TOP/tests/data/resize
M=$T/data/MURA-v1.1
set -- $(grep '\.png$' "$D/images.csv" | grep -v image4)
n=0 patient=0
for split in train valid; do
	np=2; [ $split = valid ] && np=4
	for type in ELBOW FINGER FOREARM HAND HUMERUS SHOULDER WRIST; do
		p=0
		while [ $p -lt $np ]; do
			p=$((p + 1)) patient=$((patient + 1))
			for study in 1 $([ $((patient % 3)) = 0 ] && echo 2); do
				label=$([ $(((patient + study) % 2)) = 0 ] && echo positive || echo negative)
				dir=$split/XR_$type/patient$(printf %05d $patient)/study${study}_$label
				mkdir -p "$M/$dir"
				for image in $(seq 1 $((1 + (patient + study) % 3))); do
					n=$((n + 1))
					eval "src=\${$((1 + n % $#))}"
					cp "$D/$src" "$M/$dir/image$image.png"
					echo "MURA-v1.1/$dir/image$image.png" >>"$M/${split}_image_paths.csv"
				done
			done
		done
	done
done
O=$T/out
MK="make --no-print-directory -f $MURA_TOP/pipelines/preprocess.mk MURA=$M OUT=$O BLOCK=7 JOBS=2"

$MK SIZE=24 >"$T/log" 2>&1
check_eq "first run succeeds" "$?" 0
check_eq "the three streams, the two lists, nothing temporary" "$(cd "$O" && ls | tr '\n' ' ')" \
	"resize.params split.params test.mt test_paths.csv train.mt valid.mt valid_paths.csv "
check_eq "train.mt: the train list's images in order" \
	"$(mura-info --list "$O/train.mt" | sed 1d | cut -f9)" "$(cat "$M/train_image_paths.csv")"
check_eq "valid.mt: mura-split part 1 of valid" \
	"$(mura-info --list "$O/valid.mt" | sed 1d | cut -f9)" \
	"$(mura-split --fraction 0.3 --seed 0 --part 1 <"$M/valid_image_paths.csv")"
check_eq "test.mt: mura-split part 2 of valid" \
	"$(mura-info --list "$O/test.mt" | sed 1d | cut -f9)" \
	"$(mura-split --fraction 0.3 --seed 0 --part 2 <"$M/valid_image_paths.csv")"
check_eq "test.mt is not empty" "$(($(mura-info --list "$O/test.mt" | wc -l) > 5))" 1
check_eq "records are 1x24x24 u8" "$(mura-info --list "$O"/*.mt | sed '/^record/d' | cut -f2-3 | sort -u)" "u8	1x24x24"
check "train.mt equals serial mura-resize, byte for byte" sh -c \
	'mura-resize --root "$0/.." --size 24 <"$0/train_image_paths.csv" | cmp -s - "$1"' "$M" "$O/train.mt"

# Runs that must do nothing, or only some stages.
rebuilt() { # what newer than the stamp, after `$MK "$@"`
	touch "$T/stamp"
	# File times advance by the kernel's clock tick (up to 10 ms): wait one,
	# so that a file written right away is newer than the stamp.
	sleep 0.05
	$MK "$@" >"$T/log" 2>&1 || { echo "make failed: $(tail -n 3 "$T/log")"; return; }
	(cd "$O" && find . -newer "$T/stamp" -type f | sed 's|^\./||' | sort | tr '\n' ' ')
}
check_eq "a second run does nothing" "$(rebuilt SIZE=24)" ""
check "a second run says so" grep -q "Nothing to be done" "$T/log"
check "make -q agrees it is up to date" $MK -q SIZE=24
sleep 0.05; touch "$M/train_image_paths.csv"
check_eq "a newer train list redoes train.mt only" "$(rebuilt SIZE=24)" "train.mt "
check_eq "SIZE=16 resizes again, keeps the split" "$(rebuilt SIZE=16)" "resize.params test.mt train.mt valid.mt "
check_eq "... into 1x16x16" "$(mura-info --list "$O/test.mt" | sed 1d | cut -f3 | sort -u)" "1x16x16"
check_eq "SPLIT_SEED=3 splits again, keeps train" "$(rebuilt SIZE=16 SPLIT_SEED=3)" \
	"split.params test.mt test_paths.csv valid.mt valid_paths.csv "
check_eq "the same again does nothing" "$(rebuilt SIZE=16 SPLIT_SEED=3)" ""

# A bad image stops the run; nothing is left that looks finished.
bad=$(sed -n 5p "$M/train_image_paths.csv")
head -c 100 "$M/../$bad" >"$T/cut.png" && cp "$T/cut.png" "$M/../$bad"
sleep 0.05; touch "$M/train_image_paths.csv"
$MK SIZE=16 SPLIT_SEED=3 >"$T/log" 2>&1
check_eq "a truncated image fails the run" "$?" 2
check "... naming the image" grep -q "^mura-resize: .*$bad: cannot decode" "$T/log"
check_eq "... leaving no train.mt, finished or not" "$(cd "$O" && ls | grep -c '^train\.mt')" 0
check_eq "... and the other streams as they were" "$(cd "$O" && ls *.mt | tr '\n' ' ')" "test.mt valid.mt "
$MK SIZE=16 SPLIT_SEED=3 RESIZE_FLAGS=--skip-bad >"$T/log" 2>&1
check_eq "RESIZE_FLAGS=--skip-bad gets past it" "$?" 0
check_eq "... with one image less" "$(mura-info --list "$O/train.mt" | sed 1d | wc -l)" \
	"$(($(wc -l <"$M/train_image_paths.csv") - 1))"

check_fails "no MURA given" 2 "set MURA to the MURA-v1.1 folder" make -f "$MURA_TOP/pipelines/preprocess.mk" OUT="$T/x"
