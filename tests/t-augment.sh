#!/bin/sh
# t-augment.sh - mura-augment: deterministic (golden checksums), independent of
# how the stream is cut, flipping twice is the identity, each transform agrees
# with numpy, mixup mixes as documented, the spec grammar, and refusals.
. "$(dirname "$0")/lib.sh"

D=$MURA_TOP/tests/data/resize
mura-resize --root "$D" --size 24 <"$D/images.csv" >"$T/u8.mt"
mura-normalize "$T/u8.mt" >"$T/f32.mt"

# Deterministic: fixed seeds give fixed bytes.
check_eq "golden: the paper's set, u8, seed 1" "$(mura-augment --seed 1 "$T/u8.mt" | cksum)" "1225010148 13168"
check_eq "golden: the paper's set, f32, seed 1" "$(mura-augment --seed 1 "$T/f32.mt" | cksum)" "2253184260 133552"
check_eq "golden: everything and mixup, u8, seed 2 epoch 3" \
	"$(mura-augment --augment default,translate=0.1@0.7,brightness=0.1,mixup=0.3 --seed 2 --epoch 3 "$T/u8.mt" | cksum)" \
	"1924391632 13168"
check_eq "the same run twice" "$(mura-augment --seed 9 <"$T/u8.mt" | cksum)" "$(mura-augment --seed 9 <"$T/u8.mt" | cksum)"
check "another epoch draws otherwise" sh -c '! mura-augment --epoch 1 "$0" | cmp -s - "$1"' "$T/u8.mt" "$T/f32.mt"
mura-augment --epoch 0 "$T/u8.mt" >"$T/e0.mt"
mura-augment --epoch 1 "$T/u8.mt" >"$T/e1.mt"
check "another epoch gives another stream" sh -c '! cmp -s "$0" "$1"' "$T/e0.mt" "$T/e1.mt"
mura-augment --seed 1 "$T/u8.mt" >"$T/s1.mt"
check "another seed gives another stream" sh -c '! cmp -s "$0" "$1"' "$T/e0.mt" "$T/s1.mt"

# Flipping twice is the identity, on u8 and f32; nothing drawn, nothing changed.
for f in u8 f32; do
	check "flip twice is the identity ($f)" sh -c \
		'mura-augment --augment flip=1 "$0" | mura-augment --augment flip=1 | cmp -s - "$0"' "$T/$f.mt"
	check "rotate 90 then -90 is the identity ($f)" sh -c \
		'mura-augment --augment rot=90:90 "$0" | mura-augment --augment rot=-90:-90 | cmp -s - "$0"' "$T/$f.mt"
	check "--augment none changes nothing ($f)" sh -c 'mura-augment --augment none "$0" | cmp -s - "$0"' "$T/$f.mt"
	check "probability 0 changes nothing ($f)" sh -c \
		'mura-augment --augment rot=30@0,zoom=0.2@0,flip=0 "$0" | cmp -s - "$0"' "$T/$f.mt"
done

# Independent of the cut: under GNU parallel, each job resizes and augments
# its own piece of the list; the stream equals the serial one.
for i in 1 2 3 4 5 6 7 8; do cat "$D/images.csv"; done >"$T/many.csv"   # 152 paths
mura-resize --root "$D" --size 24 <"$T/many.csv" | mura-augment --seed 5 >"$T/serial.mt"
mura-resize --root "$D" --size 24 <"$T/many.csv" | mura-augment --seed 5 --mixup 0.4 >"$T/serial-mix.mt"
if command -v parallel >/dev/null; then
	parallel --pipe -k -N 5 -j 2 "mura-resize --root '$D' --size 24 | mura-augment --seed 5" \
		<"$T/many.csv" >"$T/par.mt" 2>/dev/null
	check "independent of the cut: parallel -N 5 equals serial" cmp "$T/serial.mt" "$T/par.mt"
	parallel --pipe -k -N 64 -j 2 "mura-resize --root '$D' --size 24 | mura-augment --seed 5 --mixup 0.4" \
		<"$T/many.csv" >"$T/par.mt" 2>/dev/null
	check "mixup: parallel -N 64 (4 buffers of 16) equals serial" cmp "$T/serial-mix.mt" "$T/par.mt"
else
	skip "independent of the cut" "GNU parallel missing"
fi

if need_python numpy; then
	AC="$MURA_TOP/tests/py/aug_check.py"
	# A record alone gets the transform it gets in the stream.
	sed -n '5p;12p;17p' "$D/images.csv" | mura-resize --root "$D" --size 24 | mura-augment --seed 5 >"$T/part.mt"
	"$PY" "$AC" same "$T/serial.mt" "$T/part.mt"
	for f in u8 f32; do
		mura-augment --augment flip=1 "$T/$f.mt" >"$T/out.mt"
		"$PY" "$AC" warp "$T/$f.mt" "$T/out.mt" 1 0 1 0 0 0
		mura-augment --augment rot=90:90 "$T/$f.mt" >"$T/out.mt"
		"$PY" "$AC" warp "$T/$f.mt" "$T/out.mt" 0 90 1 0 0 0
		mura-augment --augment flip=1,rot=17:17,zoom=1.3:1.3,translate=0.1:0.1 "$T/$f.mt" >"$T/out.mt"
		"$PY" "$AC" warp "$T/$f.mt" "$T/out.mt" 1 17 1.3 0.1 0.1 0
		mura-augment --augment rot=-40:-40,zoom=0.7:0.7,translate=-0.2:-0.2,fill=30 "$T/$f.mt" >"$T/out.mt"
		"$PY" "$AC" warp "$T/$f.mt" "$T/out.mt" 0 -40 0.7 -0.2 -0.2 30
		mura-augment --augment contrast=1.5:1.5,brightness=0.1:0.1 "$T/$f.mt" >"$T/out.mt"
		"$PY" "$AC" photo "$T/$f.mt" "$T/out.mt" 1.5 0.1
		mura-augment --augment contrast=0.5:0.5,brightness=-0.3:-0.3 "$T/$f.mt" >"$T/out.mt"
		"$PY" "$AC" photo "$T/$f.mt" "$T/out.mt" 0.5 -0.3
		mura-augment --augment none --mixup 0.4 --mixup-buffer 4 "$T/$f.mt" >"$T/out.mt"
		"$PY" "$AC" mixup "$T/$f.mt" "$T/out.mt" 4
	done
	"$PY" "$AC" make "$T/u16.mt" u16
	check_fails "refuses u16 records, with the record number" 1 \
		"^mura-augment: stdin: record 1: dtype u16 cannot be augmented" mura-augment <"$T/u16.mt"
	"$PY" "$AC" make "$T/unlabeled.mt" unlabeled
	check_fails "mixup refuses unknown labels" 1 "record 1: label unknown: mixup needs labels" \
		mura-augment --mixup 0.2 "$T/unlabeled.mt"
	check_eq "without mixup, unknown labels are fine" "$(mura-augment "$T/unlabeled.mt" | wc -c)" \
		"$(wc -c <"$T/unlabeled.mt")"
	"$PY" "$AC" make "$T/shapes.mt" shapes
	check_fails "mixup refuses a second shape in a batch" 1 "record 2: u8 1x4x6 differs from .* 1x4x5" \
		mura-augment --mixup 0.2 "$T/shapes.mt"
else
	skip "augment against numpy" "/usr/bin/python3 with numpy missing"
fi

# The spec grammar: canonical form, round trip, the flags, the errors.
check_eq "spec: default" "$(mura-augment --print-spec)" "flip=0.5,rotate=-30:30,zoom=0.9:1.1,contrast=0.8:1.2"
check_eq "spec: none" "$(mura-augment --augment none --print-spec)" "none"
S='flip=0.5,rot=30,zoom=0.9:1.1,contrast=0.2,brightness=0.2,translate=0.05'
check_eq "spec: all items" "$(mura-augment --augment "$S" --print-spec)" \
	"flip=0.5,rotate=-30:30,zoom=0.9:1.1,translate=-0.05:0.05,contrast=0.8:1.2,brightness=-0.2:0.2"
C=$(mura-augment --augment "default,rotate=-5:10@0.25,fill=7,mixup=0.2" --print-spec)
check_eq "spec: canonical form parses back to itself" "$(mura-augment --augment "$C" --print-spec)" "$C"
check_eq "spec: flags act in order" "$(mura-augment --augment none --rotate 10 --zoom 0.8:1@0.5 --augment flip=1 --flip 0.3 --print-spec)" \
	"flip=0.3"
check_eq "spec: flags change one item" "$(mura-augment --rotate 10@0.5 --brightness 0.1 --print-spec)" \
	"flip=0.5,rotate=-10:10@0.5,zoom=0.9:1.1,contrast=0.8:1.2,brightness=-0.1:0.1"
for bad in "" "bogus=1" "flip" "flip=2" "rot=30," ",rot=30" "rot=200" "rot=20:10" "zoom=1.1" "zoom=0:2" \
	"contrast=0.2@1.5" "rot=x" "none=1" "mixup=-1"; do
	check_fails "spec: '$bad' is a usage error" 2 "^mura-augment: --augment: " mura-augment --augment "$bad"
done
check_fails "usage: --mixup-buffer 0" 2 "--mixup-buffer" mura-augment --mixup-buffer 0
check_fails "usage: --seed -1" 2 "--seed" mura-augment --seed -1
check_fails "not a stream" 1 "bad magic" mura-augment "$D/bomb.png"
