#!/bin/sh
# t-normalize.sh - mura-normalize against numpy on the same records (u8 gray,
# u8 RGB, u16), --fit against numpy's mean and std, a golden checksum, and
# the records and options it must refuse.
. "$(dirname "$0")/lib.sh"

D=$MURA_TOP/tests/data/resize
mura-resize --root "$D" --size 24 <"$D/images.csv" >"$T/u8.mt"

check_eq "golden: ImageNet, 3 channels" "$(mura-normalize <"$T/u8.mt" | cksum)" "1432114463 133552"
check_eq "golden: 1 channel" "$(mura-normalize --channels 1 <"$T/u8.mt" | cksum)" "3855757974 46000"

if need_python numpy; then
	NC="$MURA_TOP/tests/py/norm_check.py"
	mura-normalize "$T/u8.mt" >"$T/out.mt"
	"$PY" "$NC" apply "$T/u8.mt" "$T/out.mt" 3 0.485,0.456,0.406 0.229,0.224,0.225
	mura-normalize --channels 1 <"$T/u8.mt" >"$T/out.mt"
	"$PY" "$NC" apply "$T/u8.mt" "$T/out.mt" 1 0.449 0.226
	mura-normalize --mean 0.5 --std 0.25,0.5,2 <"$T/u8.mt" >"$T/out.mt"
	"$PY" "$NC" apply "$T/u8.mt" "$T/out.mt" 3 0.5,0.5,0.5 0.25,0.5,2
	"$PY" "$NC" make "$T/u16.mt" u16
	mura-normalize --channels 1 --mean 0.3 --std 0.1 <"$T/u16.mt" >"$T/out.mt"
	"$PY" "$NC" apply "$T/u16.mt" "$T/out.mt" 1 0.3 0.1
	"$PY" "$NC" make "$T/rgb.mt" rgb
	mura-normalize <"$T/rgb.mt" >"$T/out.mt"
	"$PY" "$NC" apply "$T/rgb.mt" "$T/out.mt" 3 0.485,0.456,0.406 0.229,0.224,0.225

	"$PY" "$NC" fit "$T/u8.mt" 3 "$(mura-normalize --fit <"$T/u8.mt")"
	"$PY" "$NC" fit "$T/u8.mt" 1 "$(mura-normalize --fit --channels 1 <"$T/u8.mt")"
	"$PY" "$NC" fit "$T/u16.mt" 1 "$(mura-normalize --fit --channels 1 <"$T/u16.mt")"
	"$PY" "$NC" fit "$T/rgb.mt" 3 "$(mura-normalize --fit <"$T/rgb.mt")"
	cat "$T/u8.mt" "$T/u16.mt" >"$T/both.mt"
	"$PY" "$NC" fit "$T/both.mt" 1 "$(mura-normalize --fit --channels 1 <"$T/both.mt")"

	# What --fit prints, fed back, centres the data: mean 0, std 1.
	mura-normalize $(mura-normalize --fit "$T/u8.mt") "$T/u8.mt" >"$T/out.mt"
	check_eq "--fit's flags centre the stream" "$("$PY" -c "
import sys; sys.path.insert(0, '$MURA_TOP/tests/py')
import numpy as np; from mt import read_mura
x = np.concatenate([r['x'].ravel() for r in read_mura('$T/out.mt')]).astype(np.float64)
print('%.4f %.4f' % (abs(x.mean()), x.std()))")" "0.0000 1.0000"

	"$PY" "$NC" make "$T/f32.mt" f32
	check_fails "refuses f32 records, with the record number" 1 \
		"^mura-normalize: stdin: record 1: dtype f32 cannot be normalised" mura-normalize <"$T/f32.mt"
	cat "$T/u8.mt" "$T/f32.mt" >"$T/mixed.mt"
	mura-normalize "$T/mixed.mt" >/dev/null 2>"$T/err"
	check_eq "a bad record after good ones: status" "$?" 1
	check "a bad record after good ones: its number" grep -q "mixed.mt: record 20: dtype f32" "$T/err"
	check_fails "refuses 3 channels for 1" 1 "record 1: 3 channels cannot become 1" \
		mura-normalize --channels 1 "$T/rgb.mt"
else
	skip "normalize against numpy" "/usr/bin/python3 with numpy missing"
fi

check_fails "refuses what is not a stream" 1 "bad magic" mura-normalize "$D/MURA-v1.1/train/XR_WRIST/patient00001/study1_positive/image1.png"
check_fails "--fit of an empty stream" 1 "no values" mura-normalize --fit </dev/null
check_eq "an empty stream gives an empty stream" "$(mura-normalize </dev/null | wc -c)" 0
check_fails "usage: --channels 2" 2 "neither 1 nor 3" mura-normalize --channels 2
check_fails "usage: --std 0" 2 "must be positive" mura-normalize --std 0
check_fails "usage: --mean of 2 for 3 channels" 2 "not 1 or 3" mura-normalize --mean 0.1,0.2
check_fails "usage: --mean not a number" 2 "not 1 or 3" mura-normalize --mean x
