#!/bin/sh
# t-score.sh - mura-score against torchvision, and its bad inputs.
#   - torchvision's resnet18(num_classes=1), saved as a plain state dict by
#     tests/py/score_ref.py, scores u8 gray, u8 RGB and f32 records of three
#     sizes in one stream: the probabilities torchvision computes, within 1e-4;
#     the same read from a pipe
#   - an ensemble of two such models with the mirror view: the mean of the
#     four probabilities torchvision computes
#   - the other views run and stay probabilities; the header alone for an
#     empty stream
#   - mura-train fine-tunes an ImageNet-shaped torchvision file (its classifier
#     dropped, said on stderr), and its model loads back into torchvision
#   - bad inputs: their message, status and empty stdout
. "$(dirname "$0")/lib.sh"

ref() { "$PY" "$MURA_TOP/tests/py/score_ref.py" "$@"; }
mt() { "$PY" "$MURA_TOP/tests/py/mt.py" "$@"; }

if need_python torch torchvision numpy; then
	if ref gen "$T"; then
		check "score a torchvision resnet18" sh -c "mura-score --arch resnet18 --model '$T/tv0.safetensors' \
			--batch 4 '$T/in.mt' > '$T/single.tsv'"
		ref check "$T/single.tsv" "$T/ref-single.tsv"
		mura-score --arch resnet18 -m "$T/tv0.safetensors" < "$T/in.mt" > "$T/pipe.tsv" 2>"$T/err"
		check_eq "the same from stdin" "$(cmp "$T/pipe.tsv" "$T/single.tsv" 2>&1)" ""
		check "score an ensemble of two with the mirror view" sh -c "mura-score --arch resnet18 \
			-m '$T/tv0.safetensors' -m '$T/tv1.safetensors' --tta flip '$T/in.mt' > '$T/ens.tsv'"
		ref check "$T/ens.tsv" "$T/ref-ensemble.tsv"
		for tta in rot flip,rot; do
			mura-score -a resnet18 -m "$T/tv0.safetensors" --tta $tta "$T/in.mt" > "$T/tta.tsv" 2>"$T/err"
			check_eq "--tta $tta: a probability per record" \
				"$(awk -F '\t' 'NR > 1 && $7 >= 0 && $7 <= 1' "$T/tta.tsv" | wc -l)" 14
		done
		check_eq "an empty stream: the header alone" \
			"$(mura-score -a resnet18 -m "$T/tv0.safetensors" < /dev/null)" \
			"$(printf 'path\ttype\tpatient\tstudy\timage\tlabel\tprob')"
		check_fails "a plain file needs --arch" 1 "no mura metadata.*--arch" \
			mura-score -m "$T/tv0.safetensors" "$T/in.mt"
		check_fails "a plain file of another architecture" 1 "tv0.safetensors" \
			mura-score -a resnet34 -m "$T/tv0.safetensors" "$T/in.mt"
		"$PY" -c "
import sys; sys.path.insert(0, '$MURA_TOP/tests/py')
import numpy as np
from mt import pack_record
z = np.zeros((1, 64, 64), np.uint8)
open('$T/half.mt', 'wb').write(pack_record(z, label=0) + pack_record(z, label=0.5))
open('$T/small.mt', 'wb').write(pack_record(z, label=0) + pack_record(np.zeros((1, 16, 16), np.uint8)))
open('$T/two.mt', 'wb').write(pack_record(np.zeros((2, 64, 64), np.uint8)))
open('$T/u16.mt', 'wb').write(pack_record(np.full((1, 64, 64), 30000, np.uint16), label=1))
"
		check_fails "a mixed-up label" 1 "half.mt: record 2: label 0.5" \
			mura-score -a resnet18 -m "$T/tv0.safetensors" "$T/half.mt"
		check_fails "a record too small" 1 "small.mt: record 2: 16x16" \
			mura-score -a resnet18 -m "$T/tv0.safetensors" "$T/small.mt"
		check_fails "two channels" 1 "two.mt: record 1: 2 channels" \
			mura-score -a resnet18 -m "$T/tv0.safetensors" "$T/two.mt"
		check "u16 records are normalised too" sh -c \
			"mura-score -a resnet18 -m '$T/tv0.safetensors' '$T/u16.mt' | grep -q '	1	0\.[0-9]'"
		# mura-train from an ImageNet import, and its model back in torchvision.
		"$PY" "$MURA_TOP/tests/py/blobs.py" "$T/blobs.mt" 12 3 64
		mura-train --arch resnet18 --weights "$T/imagenet.safetensors" --epochs 1 --batch 8 \
			--out "$T/ft.safetensors" "$T/blobs.mt" 2>"$T/err"
		check_eq "mura-train --weights from a torchvision ImageNet resnet18" "$?" 0
		check "... says it dropped the 1000-way classifier" \
			grep -q "imagenet.safetensors: fc.\* of shape \[1000, 512\] dropped" "$T/err"
		ref load "$T/ft.safetensors"
	else
		echo "FAIL: score_ref.py gen failed"
	fi
else
	skip "mura-score vs torchvision" "/usr/bin/python3 cannot import torch, torchvision and numpy"
fi

check_fails "no --model" 2 "--model FILE is required" mura-score /dev/null
check_fails "unknown --arch" 2 "unknown architecture 'resnet19'" mura-score -a resnet19 -m x /dev/null
check_fails "unknown --tta" 2 "unknown test-time augmentation 'spin'" mura-score --tta spin -m x /dev/null
check_fails "--batch 0" 2 "--batch: '0' is out of range" mura-score --batch 0 -m x /dev/null
check_fails "two files" 2 "unexpected argument 'b'" mura-score -m x a b
check_fails "a missing model" 1 "nothere.safetensors" mura-score -m "$T/nothere.safetensors" /dev/null
check_fails "a missing input" 1 "nothere.mt" mura-score -m "$T/nothere.safetensors" "$T/nothere.mt"
printf 'not a model' > "$T/junk.safetensors"
check_fails "a file that is not safetensors" 1 "junk.safetensors" mura-score -m "$T/junk.safetensors" /dev/null
