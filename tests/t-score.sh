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
#   - --precision bf16 (where the CPU has AVX512-BF16) against PyTorch's
#     autocast, and one record a batch (weights packed once) against 16
#   - mura-train fine-tunes an ImageNet-shaped torchvision file (its classifier
#     dropped, said on stderr), and its model loads back into torchvision;
#     without --arch it tells the architecture from the file's tensors
#     (resnet18, densenet121 whole; densenet169/201, resnet34/50 by their
#     names), and asks for --arch when none fits or two do
#   - bad inputs: their message, status and empty stdout
. "$(dirname "$0")/lib.sh"

ref() { "$PY" "$MURA_TOP/tests/py/score_ref.py" "$@"; }
# within TOL A.tsv B.tsv: "yes" if the two tables' probabilities differ by
# less than TOL everywhere, else the largest difference.
within() {
	paste "$2" "$3" | awk -F '\t' -v tol="$1" 'NR > 1 { d = $7 - $14; if (d < 0) d = -d; if (d > m) m = d }
		END { print (NR > 1 && m < tol) ? "yes" : "no: " m }'
}
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
		# bf16 (mura-score packs each layer's weights once: --batch 1 scores
		# 13 of the 14 records with weights packed for an earlier batch).
		if [ -f "$T/ref-single-bf16.tsv" ]; then
			mura-score -a resnet18 -m "$T/tv0.safetensors" --precision bf16 --batch 16 "$T/in.mt" \
				> "$T/bf16.tsv" 2>"$T/err"
			check_eq "--precision bf16: exit 0" "$?" 0
			ref check-bf16 "$T/bf16.tsv" "$T/ref-single-bf16.tsv" "$T/ref-single.tsv"
			check "... not fp32's probabilities" test "$(cut -f7 "$T/bf16.tsv")" != "$(cut -f7 "$T/single.tsv")"
			mura-score -a resnet18 -m "$T/tv0.safetensors" --precision bf16 --batch 1 "$T/in.mt" \
				> "$T/bf16-1.tsv" 2>"$T/err"
			check_eq "... one record a batch, weights packed once: the same probabilities within 1e-6" \
				"$(within 1e-6 "$T/bf16-1.tsv" "$T/bf16.tsv")" yes
		else
			skip "mura-score --precision bf16 against PyTorch autocast" \
				"this CPU has no AVX512-BF16 (grep avx512_bf16 /proc/cpuinfo)"
		fi
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
		mura-train --weights "$T/imagenet.safetensors" --epochs 1 --batch 8 \
			--out "$T/ft.safetensors" "$T/blobs.mt" 2>"$T/err"
		check_eq "mura-train --weights from a torchvision ImageNet resnet18, no --arch" "$?" 0
		check "... tells its architecture from its tensors" \
			grep -q "imagenet.safetensors: a resnet18 (from its tensors)" "$T/err"
		check "... says it dropped the 1000-way classifier" \
			grep -q "imagenet.safetensors: fc.\* of shape \[1000, 512\] dropped" "$T/err"
		ref load "$T/ft.safetensors"
		if ref archs "$T"; then
			mura-train --weights "$T/densenet121.safetensors" --epochs 1 --batch 8 \
				--out "$T/ft121.safetensors" "$T/blobs.mt" 2>"$T/err"
			check_eq "... and from a torchvision densenet121" "$?" 0
			check "... a densenet121 (from its tensors)" \
				grep -q "densenet121.safetensors: a densenet121 (from its tensors)" "$T/err"
			ref load "$T/ft121.safetensors"
			# Names alone: the architecture is told, then its tensors of one
			# value are refused.
			for a in densenet169 densenet201 resnet34 resnet50; do
				mura-train --weights "$T/names-$a.safetensors" --epochs 1 --batch 8 \
					--out "$T/x.safetensors" "$T/blobs.mt" 2>"$T/err"
				check_eq "the names of a torchvision $a: $a told, one-value tensors refused" \
					"$? $(grep -c "names-$a.safetensors: a $a (from its tensors)" "$T/err")" "1 1"
			done
			check_fails "tensors of no architecture known: give --arch" 1 \
				"names-vit.safetensors: no mura metadata, and its tensors are none of densenet121, .*resnet50: give its --arch" \
				mura-train --weights "$T/names-vit.safetensors" --out "$T/x.safetensors" "$T/blobs.mt"
			check_fails "tensors of two: give --arch" 1 \
				"names-both.safetensors: no mura metadata, and its tensors fit densenet121 and resnet18 alike: give its --arch" \
				mura-train --weights "$T/names-both.safetensors" --out "$T/x.safetensors" "$T/blobs.mt"
		else
			echo "FAIL: score_ref.py archs failed"
		fi
		# A model scores records of the size it was trained at (64 x 64 here).
		"$PY" "$MURA_TOP/tests/py/blobs.py" "$T/blobs96.mt" 4 5 96
		check_fails "records of another size than the model's are refused" 1 \
			"blobs96.mt: record 1: 96x96: .*ft.safetensors was trained on 64x64 records" \
			mura-score -m "$T/ft.safetensors" "$T/blobs96.mt"
		mura-score --any-size -m "$T/ft.safetensors" "$T/blobs96.mt" >"$T/any.tsv" 2>"$T/err"
		check_eq "... scored with --any-size" "$?/$(sed 1d "$T/any.tsv" | wc -l)" \
			"0/$(mura-info "$T/blobs96.mt" | awk '$1 == "records" { print $2 }')"
		check "... which says so" grep -q "ft.safetensors: trained on 64x64 records, scoring 96x96 ones" "$T/err"
		# A model trained on f32 records (normalised before, with the stream's own
		# statistics) records it: u8 records are refused unless --mean/--std said how.
		norm=$(mura-normalize --fit "$T/blobs.mt")
		mura-normalize $norm < "$T/blobs.mt" > "$T/blobs-f32.mt"
		mura-train --arch resnet18 --epochs 1 --batch 8 --out "$T/f32.safetensors" "$T/blobs-f32.mt" 2>/dev/null
		check_fails "a model that learnt from f32 records of unknown normalisation refuses u8 ones" 1 \
			"blobs.mt: record 1: u8, but .*f32.safetensors learnt from f32 records normalised before" \
			mura-score -m "$T/f32.safetensors" "$T/blobs.mt"
		check "... and scores f32 ones" sh -c "mura-score -m '$T/f32.safetensors' '$T/blobs-f32.mt' >/dev/null"
		mura-train --arch resnet18 --epochs 1 --batch 8 $norm --out "$T/f32n.safetensors" \
			"$T/blobs-f32.mt" 2>/dev/null
		mura-score -m "$T/f32n.safetensors" "$T/blobs.mt" > "$T/u8.tsv"
		mura-score -m "$T/f32n.safetensors" "$T/blobs-f32.mt" > "$T/f32.tsv" 2>/dev/null
		check_eq "... told by --mean/--std, it brings u8 records to that normalisation: the f32 records' scores" \
			"$(within 1e-5 "$T/u8.tsv" "$T/f32.tsv")" yes
		# An image's score depends on its batch and the thread count in the last
		# digits only (mura-score(1), NOTES), and not at all on a rerun.
		mura-score -b 1 -j 1 -m "$T/ft.safetensors" "$T/blobs.mt" > "$T/b1.tsv"
		mura-score -b 16 -j 2 -m "$T/ft.safetensors" "$T/blobs.mt" > "$T/b16.tsv"
		check_eq "batch 1 on 1 thread and batch 16 on 2 agree within 1e-6" \
			"$(within 1e-6 "$T/b1.tsv" "$T/b16.tsv")" yes
		check_eq "... and the same batch and threads again give the same bytes" \
			"$(mura-score -b 16 -j 2 -m "$T/ft.safetensors" "$T/blobs.mt" | cksum)" "$(cksum < "$T/b16.tsv")"
		# A diverged model (a NaN weight) gives no scores.
		"$PY" -c "
import sys; sys.path.insert(0, '$MURA_TOP/tests/py')
import st_tool
t, meta, _ = st_tool.load('$T/ft.safetensors')
t['fc.weight'][0, 3] = float('nan')
st_tool.save('$T/nan.safetensors', t, meta)
"
		check_fails "a model with a NaN weight is refused, naming the tensor" 1 \
			"nan.safetensors: tensor fc.weight holds nan" mura-score -m "$T/nan.safetensors" "$T/blobs.mt"
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
