#!/bin/sh
# mura-info: summary, listing and PNG of streams written by the independent
# Python writer; every malformed record refused with its message.
. "$(dirname "$0")/lib.sh"

cd "$T" || exit 1
if ! need_python numpy; then skip "mura-info tests" "no numpy for /usr/bin/python3"; exit 0; fi
mk() { "$PY" "$MURA_TOP/tests/py/mkstream.py" "$@"; }
mk good.mt good

mura-info good.mt > sum.txt
check_eq "summary counts records" "$(awk '/^records/ {print $2}' sum.txt)" 6
check_eq "summary counts dtypes" "$(grep '^dtypes' sum.txt | tr -s ' ')" "dtypes u8 5 f32 1"
check_eq "summary line for wrist" "$(grep '^wrist' sum.txt | tr -s ' ')" "wrist 2 2 0 0 0 2 2 1"
check_eq "summary line for all" "$(grep '^all' sum.txt | tr -s ' ')" "all 6 2 2 1 1 6 3 3"
check_eq "stdin and '-' read the same stream" "$(mura-info < good.mt | cksum)" "$(mura-info - < good.mt | cksum)"
cat good.mt good.mt > twice.mt
check_eq "a concatenated stream has all records" "$(mura-info twice.mt | awk '/^records/ {print $2}')" 12
check_eq "two files are read as one stream" "$(mura-info good.mt good.mt | sed 1d | cksum)" "$(mura-info twice.mt | sed 1d | cksum)"

mura-info --list good.mt > list.txt
check_eq "list has a header and one line per record" "$(wc -l < list.txt)" 7
check_eq "list line of record 4" "$(sed -n 5p list.txt)" \
	"$(printf '4\tu8\t1x11x6\t0.5\thumerus\t12\t2\t1\tMURA-v1.1/train/XR_X/patient00014/image3.png')"
"$PY" "$MURA_TOP/tests/py/mt.py" dump good.mt | cut -f1,3-9 > py.txt
check_eq "C reader agrees with the numpy reader on every record" \
	"$(sed 1d list.txt | cut -f1,3-9 | sed 's/^\([0-9]*\)\t\([0-9x]*\)\t\([^\t]*\)\t\([a-z]*\)/\1\t\2\t\3\t\4/' | awk -F '\t' 'BEGIN{split("unknown elbow finger forearm hand humerus shoulder wrist",n," "); for(i=1;i<=8;i++) m[n[i]]=i-1} {$4=m[$4]; print}' OFS='\t')" \
	"$(cat py.txt)"

mura-info --png 5 f32.png good.mt
check "png of an f32 record is a PNG" sh -c "head -c 8 f32.png | od -An -c | grep -q 'P   N   G'"
mura-info --png 1 u8.png good.mt
check_eq "png of a u8 record keeps its pixels" \
	"$("$PY" -c "import numpy as np, PIL.Image as I, sys; sys.path.insert(0, '$MURA_TOP/tests/py'); from mt import read_mura; print(int((np.asarray(I.open('u8.png')) == read_mura('good.mt')[0]['x'][0]).all()))")" 1
check_fails "png of a record beyond the stream" 1 "^mura-info: --png: record 9: out of range \(6 records\)" \
	mura-info --png 9 x.png good.mt
check "no file left behind by a failed --png" test ! -e x.png

for case in "version:unsupported version 2" "dtype:unknown dtype 7" "label-nan:label nan" \
	"type:unknown study type 12" "flags:unknown flags 0x04" "dsize:data size 5 does not match" \
	"required-field:unknown required field 'ZZZZ'" "truncated:truncated header" "magic:bad magic" \
	"huge:data size 1099511627776 exceeds the limit" \
	"path-tab:path contains control character 0x09 at byte 25" \
	"path-newline:path contains control character 0x0a at byte 25" \
	"path-del:path contains control character 0x7f at byte 0"; do
	k=${case%%:*} msg=${case#*:}
	mk bad-$k.mt "$k"
	check_fails "malformed record refused: $k" 1 "^mura-info: bad-$k.mt: record 2: $msg" mura-info bad-$k.mt
done
mura-info --list bad-path-newline.mt >list-nl.txt 2>list-nl.err
check_eq "--list stops at a path with a line break: exit 1, record 2 named, one line per record" \
	"$?:$(grep -c 'record 2: path contains control character' list-nl.err):$(wc -l <list-nl.txt)" "1:1:2"
check_fails "missing file" 1 "^mura-info: nosuch.mt: No such file or directory" mura-info nosuch.mt
check_fails "a PNG is not a stream" 1 "record 1: bad magic: this is a PNG image" mura-info u8.png

# A model file is described, not refused for its magic.
"$PY" "$MURA_TOP/tests/py/blobs.py" blobs.mt 6 1 32
mura-train --arch resnet18 --epochs 1 --batch 8 --class-weights none --out m.safetensors blobs.mt 2>/dev/null
mura-info m.safetensors > model.txt
check_eq "a model: its architecture and head" "$(grep '^model' model.txt)" "model      resnet18, head fc, dropout 0"
check_eq "... the records it learnt from" "$(grep '^input' model.txt | cut -d, -f1)" "input      32x32 u8 records"
check "... the command that trained it" grep -q "^command    mura-train --arch resnet18" model.txt
check "... and a checkpoint says it resumes" sh -c \
	"mura-info m.ckpt.safetensors | grep -q '^checkpoint resumable: mura-train --resume m.ckpt.safetensors'"
"$PY" -c "
import sys; sys.path.insert(0, '$MURA_TOP/tests/py')
import st_tool
t, meta, _ = st_tool.load('m.safetensors')
st_tool.save('plain.safetensors', t)
"
check "a plain state dict is said to have no mura metadata" sh -c "mura-info plain.safetensors | grep -q 'no mura metadata'"
check_fails "unknown option is a usage error" 2 "^usage: mura-info" mura-info --bogus
check_eq "--version" "$(mura-info --version | cut -d' ' -f1)" "mura-info"
