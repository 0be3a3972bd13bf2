#!/bin/sh
# t-resize.sh - mura-resize: every PNG colour type and bit depth decodes to the
# documented gray, resized output matches golden checksums and Pillow, the
# records carry what their paths say, GNU parallel's output equals the serial
# one, and every kind of bad input gets its message and exit status.
. "$(dirname "$0")/lib.sh"

D=$MURA_TOP/tests/data/resize   # made by tests/py/mkimages.py
LIST=$D/images.csv

# Golden checksums of the whole stream for the fixed images (19: PNG of every
# colour type and bit depth, interlaced, JPEG gray and RGB, a 20 x 12 one).
# At 16 every square image keeps its size; 10 shrinks, 24 enlarges.
golden() {
	name=$1 want=$2; shift 2
	check_eq "golden: $name" "$(mura-resize --root "$D" "$@" <"$LIST" | cksum)" "$want"
}
golden "own size (16)" "1886842559 7088" --size 16
golden "shrink to 10" "3871805536 4200" --size 10
golden "enlarge to 24" "2628278698 13168" --size 24
golden "pad to 10" "2945633 4200" --size 10 --fit pad
golden "crop to 10" "1213411462 4200" --size 10 --fit crop
golden "pad to 24" "1904817024 13168" --size 24 --fit pad
golden "crop to 24" "345587979 13168" --size 24 --fit crop

# The same decoded by the checker: exact gray per colour type, metadata.
if need_python numpy; then
	mura-resize --root "$D" --size 16 <"$LIST" >"$T/own.mt"
	"$PY" "$MURA_TOP/tests/py/resize_check.py" decode "$T/own.mt"
else
	skip "decode to the documented gray" "/usr/bin/python3 with numpy missing"
fi

# Peer: Pillow's resize(BILINEAR), the same triangle filter.
if need_python numpy PIL; then
	for fit in stretch pad crop; do
		for n in 10 24; do
			mura-resize --root "$D" --size $n --fit $fit <"$LIST" >"$T/p.mt"
			"$PY" "$MURA_TOP/tests/py/resize_check.py" pillow "$T/p.mt" "$D" $n $fit 2>/dev/null
		done
	done
	if command -v mura-synth >/dev/null; then
		mura-synth --out "$T/syn" --seed 3 --patients 14 >/dev/null 2>&1
		mura-resize --root "$T/syn" <"$T/syn/MURA-v1.1/valid_image_paths.csv" >"$T/syn.mt"
		"$PY" "$MURA_TOP/tests/py/resize_check.py" pillow "$T/syn.mt" "$T/syn" 320 stretch
	else
		skip "Pillow on mura-synth images" "mura-synth not built"
	fi
else
	skip "agreement with Pillow" "/usr/bin/python3 with numpy and PIL missing"
fi

# Absolute paths need no root, and give the same pixels and metadata.
if need_python numpy; then
	sed "s|^|$D/|" "$LIST" | mura-resize --size 10 >"$T/abs.mt"
	mura-resize --root "$D" --size 10 <"$LIST" >"$T/rel.mt"
	check_eq "absolute paths" "$("$PY" "$MURA_TOP/tests/py/mt.py" dump "$T/abs.mt" | cut -f1-8,10)" \
		"$("$PY" "$MURA_TOP/tests/py/mt.py" dump "$T/rel.mt" | cut -f1-8,10)"
else
	skip "absolute paths" "/usr/bin/python3 with numpy missing"
fi

# GNU parallel cuts the list anywhere; -k keeps the order; the stream must be
# byte for byte the serial one.
for i in 1 2 3 4 5 6 7 8; do cat "$LIST"; done >"$T/many.csv"   # 152 lines
mura-resize --root "$D" --size 24 <"$T/many.csv" >"$T/serial.mt"
if command -v parallel >/dev/null; then
	parallel --pipe -k -N 64 mura-resize --root "$D" --size 24 <"$T/many.csv" >"$T/par.mt" 2>"$T/par.err"
	check "parallel -N 64 equals serial" cmp "$T/serial.mt" "$T/par.mt"
	parallel --pipe -k -N 7 -j 2 mura-resize --root "$D" --size 24 <"$T/many.csv" >"$T/par.mt" 2>"$T/par.err"
	check "parallel -N 7 -j 2 equals serial" cmp "$T/serial.mt" "$T/par.mt"
else
	skip "parallel equals serial" "GNU parallel missing"
fi
check_eq "CRLF lines and empty lines" "$(printf '%s\r\n\n' $(head -n 3 "$LIST") | mura-resize --root "$D" | cksum)" \
	"$(head -n 3 "$LIST" | mura-resize --root "$D" | cksum)"

# Bad input: each case alone, so stdout must stay empty.
GOOD=$D/MURA-v1.1/train/XR_WRIST/patient00001/study1_positive/image1.png
JPEG=$D/MURA-v1.1/valid/XR_SHOULDER/patient00007/study1_positive/image3.jpg
: >"$T/empty.png"
echo "not an image at all" >"$T/text.png"
head -c 200 "$GOOD" >"$T/truncated.png"
head -c 400 "$JPEG" >"$T/truncated.jpg"
cp "$GOOD" "$T/corrupt.png"
printf 'XXXX' | dd of="$T/corrupt.png" bs=1 seek=50 conv=notrunc 2>/dev/null
mkdir "$T/dir.png"
bad() {
	name=$1 file=$2 pat=$3; shift 3
	check_fails "bad input: $name" 1 "^mura-resize: $file: $pat" sh -c 'echo "$0" | mura-resize "$@"' "$file" "$@"
}
bad "missing file" "$T/missing.png" "No such file or directory"
bad "empty file" "$T/empty.png" "empty file$"
bad "not an image" "$T/text.png" "not a known image format$"
bad "truncated PNG" "$T/truncated.png" "cannot decode: .*not enough data"
bad "truncated JPEG" "$T/truncated.jpg" "cannot (read the header|decode): .*(Premature end|truncated)"
bad "corrupt PNG (CRC)" "$T/corrupt.png" "cannot decode: .*CRC error"
bad "a directory" "$T/dir.png" "is a directory$"
bad "decompression bomb, refused from its header" "$D/bomb.png" \
	"100000 x 100000 = 10000000000 pixels exceed the limit of 50000000$"
bad "--max-pixels" "$GOOD" "16 x 16 = 256 pixels exceed the limit of 255$" --max-pixels 255

# A path with a control character (TAB, CR, ESC) is refused by its line, as
# a path too long is, --skip-bad or not: no record may carry it (a line
# break cannot be inside a line; the two halves are two paths).
for c in 09 0d 1b; do
	ch=$(printf "\\$(printf '%03o' 0x$c)")
	cp "$GOOD" "$T/ctl${ch}x.png"
	for opt in "" --skip-bad; do
		check_fails "path with control character 0x$c${opt:+ ($opt)}" 1 \
			"^mura-resize: stdin: line 2: path contains control character 0x$c at byte $((${#T} + 4))" \
			sh -c 'printf "\n%s\n" "$0" | mura-resize $1' "$T/ctl${ch}x.png" "$opt"
	done
done

# A bad image after good ones still fails the run.
{ head -n 2 "$LIST"; echo "$T/text.png"; } >"$T/mixed.csv"
mura-resize --root "$D" <"$T/mixed.csv" >"$T/mixed.mt" 2>"$T/err"
check_eq "bad input after good: exit status" "$?" 1
check_eq "... says where it stopped and how many records it wrote" "$(tail -n 1 "$T/err")" \
	"mura-resize: stdin: line 3: stopped, 2 records written before it (--skip-bad goes on)"
check_eq "... and those are the records it wrote" "$(mura-info "$T/mixed.mt" | awk '$1 == "records" { print $2 }')" 2

# --skip-bad: the good records, then the list and the count; 0 unless none was read.
{ head -n 3 "$LIST"; echo "$T/text.png"; sed -n 4p "$LIST"; echo "$T/missing.png"; } >"$T/mixed.csv"
mura-resize --root "$D" --skip-bad <"$T/mixed.csv" >"$T/skip.mt" 2>"$T/err"
check_eq "--skip-bad: exit status" "$?" 0
check_eq "--skip-bad: the good records" "$(cksum <"$T/skip.mt")" "$(head -n 4 "$LIST" | mura-resize --root "$D" | cksum)"
check_eq "--skip-bad: skipped files and count on stderr" "$(cat "$T/err")" "mura-resize: $T/text.png: not a known image format
mura-resize: $T/missing.png: No such file or directory
mura-resize: skipped 2 of 6 images"
check_fails "--skip-bad with nothing readable" 1 "skipped 2 of 2 images" \
	sh -c 'printf "%s\n" "$0" "$1" | mura-resize --skip-bad' "$T/text.png" "$T/empty.png"

check_fails "usage: --size 0" 2 "--size" mura-resize --size 0
check_fails "usage: --fit" 2 "not a fit" mura-resize --fit squash
check_fails "usage: two files" 2 "at most one" mura-resize a b
