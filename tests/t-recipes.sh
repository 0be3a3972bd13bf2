#!/bin/sh
# t-recipes.sh - mura-train's gradient accumulation and learning-rate range
# test (label smoothing and accumulation's loss scaling are checked against
# PyTorch in t-loss-optim.sh, the schedules in t-sched.sh):
#   - --batch 5 --accumulate 2 against --batch 10 with the backbone frozen
#     (batch norm in evaluation mode): the same training loss and the head's
#     weights to float rounding (the engine sums a batch's gradients in
#     another association than two batches'); a stop in the middle of a
#     step finishes it, and the run resumed ends bit for bit as the
#     uninterrupted one; refused with a stream
#   - --find-lr: the rates grow by (1e8)^(1/100) a step from 1e-7; the
#     suggestion on stdout is the steepest descent of the smoothed loss of
#     the TSV, recomputed here (fastai's "steep"); a PNG; nothing else
#     written; refused with --out
. "$(dirname "$0")/lib.sh"

export MURA_THREADS=2
unset MURA_TRAIN_STOP_AFTER_STEPS

mura-synth --out "$T/s" --patients 30 --seed 7 >/dev/null 2>&1 &&
	mura-resize --root "$T/s" --size 32 < "$T/s/MURA-v1.1/train_image_paths.csv" > "$T/train.mt" ||
	{ echo "FAIL: no data"; exit 0; }

# The largest difference between two models' head tensors, relative to the
# largest value, and whether they are the same bytes.
head_diff() {
	"$PY" - "$1" "$2" <<'PYEOF'
import json, struct, sys
import numpy as np
def load(p):
    b = open(p, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    return {k: np.frombuffer(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], np.float32)
            for k, v in h.items() if k.startswith("fc.")}
a, b = load(sys.argv[1]), load(sys.argv[2])
d = max(float(np.abs(a[k] - b[k]).max() / np.abs(a[k]).max()) for k in a)
print("%s %.1e" % ("same" if all(np.array_equal(a[k], b[k]) for k in a) else "differ", d))
PYEOF
}

if need_python numpy; then
	base="--arch resnet18 --freeze-backbone --augment none --optimizer sgd --momentum 0.9 --lr 0.05 --epochs 2"
	mura-train $base --batch 10 --log "$T/b10.tsv" --out "$T/b10.safetensors" "$T/train.mt" 2>/dev/null
	mura-train $base --batch 5 --accumulate 2 --log "$T/a2.tsv" --out "$T/a2.safetensors" "$T/train.mt" 2>/dev/null
	d=$(head_diff "$T/b10.safetensors" "$T/a2.safetensors")
	echo "# --batch 5 --accumulate 2 against --batch 10, frozen backbone: the head's tensors $d"
	check_eq "--accumulate 2 of batches of 5 = batches of 10 (frozen backbone): the head within 1e-5" \
		"$(echo "$d" | awk '{ print ($2 < 1e-5) ? "yes" : "no" }')" yes
	check_eq "... and the training loss, to 6 digits" \
		"$(awk -F '\t' 'NR > 1 { printf "%.6g ", $3 }' "$T/a2.tsv")" \
		"$(awk -F '\t' 'NR > 1 { printf "%.6g ", $3 }' "$T/b10.tsv")"
	check "... which without accumulation differs (batches of 5)" sh -c \
		"mura-train $base --batch 5 --log '$T/b5.tsv' --out '$T/b5.safetensors' '$T/train.mt' 2>/dev/null &&
		test -s '$T/b5.tsv' && test \"\$(cut -f3 '$T/b5.tsv')\" != \"\$(cut -f3 '$T/a2.tsv')\""
else
	skip "accumulation against one batch" "/usr/bin/python3 cannot import numpy"
fi

opts="--arch resnet18 --augment none --batch 5 --accumulate 2 --epochs 2 --lr 0.001"
mura-train $opts --out "$T/u.safetensors" "$T/train.mt" 2>/dev/null
MURA_TRAIN_STOP_AFTER_STEPS=3 mura-train $opts --out "$T/v.safetensors" "$T/train.mt" >/dev/null 2>&1
check_eq "--accumulate 2, SIGTERM after batch 3: exit 143" "$?" 143
n=$(od -An -t u8 -N 8 "$T/v.ckpt.safetensors" | tr -d ' ')
check_eq "... the step is finished: the checkpoint is at batch 4" \
	"$(head -c $((8 + n)) "$T/v.ckpt.safetensors" | tail -c +9 | grep -ao '\\nstep=[0-9]*' | head -n 1)" '\nstep=4'
mura-train --resume "$T/v.ckpt.safetensors" --out "$T/v.safetensors" "$T/train.mt" 2>/dev/null
check_eq "... resumed: the tensors of the uninterrupted run" "$(tensors "$T/v.safetensors")" \
	"$(tensors "$T/u.safetensors")"
check_fails "--accumulate with a stream: refused" 1 "--accumulate 2 needs a file" \
	sh -c "mura-train --accumulate 2 --class-weights none --out '$T/x.safetensors' - < '$T/train.mt'"

# ---- the range test ------------------------------------------------------------
mkdir "$T/f"
mura-train --find-lr "$T/f/lr" --arch resnet18 --freeze-backbone --batch 4 --augment none "$T/train.mt" \
	>"$T/f.out" 2>"$T/f.err"
check_eq "--find-lr: exit 0" "$?" 0
check_eq "... writes NAME.tsv and NAME.png, nothing else" "$(cd "$T/f" && ls | tr '\n' ' ')" "lr.png lr.tsv "
check_eq "... a PNG" "$(head -c 4 "$T/f/lr.png" | tail -c 3)" "PNG"
check_eq "... the rates: 1e-7, growing by (1e8)^(1/100) a step" \
	"$(awk -F '\t' 'NR == 2 { a = $2 } NR > 2 { r = $2 / p; if (r < 1.2022644 || r > 1.2022645) bad++ } NR > 1 { p = $2 }
		END { printf "%g %d", a, bad }' "$T/f/lr.tsv")" "1e-07 0"
check_eq "... the suggestion on stdout: the steepest descent of the smoothed loss in the TSV" \
	"$(cat "$T/f.out")" \
	"$(awk -F '\t' 'NR > 1 { lr[NR - 2] = $2; s[NR - 2] = $4; n = NR - 1 }
		END { best = 1e300; for (i = 10; i + 1 < n - 5; i++) { g = (s[i + 1] - s[i]) / (log(lr[i + 1]) - log(lr[i]));
		if (g < best) { best = g; k = i } } printf "%g\n", lr[k] }' "$T/f/lr.tsv")"
check "... and says it on stderr" grep -q "suggested learning rate $(cat "$T/f.out")" "$T/f.err"
check_fails "--find-lr with --out: refused" 2 "--find-lr writes no model.*--out" \
	mura-train --find-lr "$T/f/x" --out "$T/x.safetensors" "$T/train.mt"
