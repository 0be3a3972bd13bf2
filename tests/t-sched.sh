#!/bin/sh
# t-sched.sh - mura-train's learning-rate schedules against PyTorch 1.13's
# torch.optim.lr_scheduler (tests/py/sched_ref.py):
#   - lib/lrsched.c over whole runs (tests/sched): cosine (past T_max too),
#     step, exponential, onecycle with its momentum or beta1, each with and
#     without a warm-up, the warm-up alone: every step's rate and momentum
#     equal PyTorch's as doubles, to the last bit
#   - real runs: every step's rate on the --progress lines (%g) is
#     PyTorch's, for cosine with a warm-up that crosses an epoch and for
#     onecycle; the log's lr column is the rate of each epoch's last step
#   - a run stopped mid-cosine (in the warm-up, then mid-epoch) and resumed
#     ends with the tensors and log of the uninterrupted run, bit for bit;
#     so does onecycle with SGD's momentum cycled; the checkpoint records
#     the schedule; resuming with another --t-max is refused, naming it;
#     onecycle cannot be extended
#   - under mpirun -np 2, the same rates as one process
#   - usage errors: a parameter of another schedule, --gamma (focal) for
#     --lr-gamma, a warm-up with onecycle
. "$(dirname "$0")/lib.sh"

export MURA_THREADS=2
unset MURA_TRAIN_STOP_AFTER_STEPS

if ! need_python torch; then
	skip schedules-vs-torch "/usr/bin/python3 cannot import torch"
	exit 0
fi
ref=$MURA_TOP/tests/py/sched_ref.py

# The metadata value of key $2 in file $1, its \n escapes made lines.
meta() {
	n=$(od -An -t u8 -N 8 "$1" | tr -d ' ')
	head -c $((8 + n)) "$1" | tail -c +9 | grep -o "\"$2\":\"[^\"]*\"" | cut -d'"' -f4 |
		sed 's/\\n/\n/g'
}

# ---- the schedules alone, as doubles ------------------------------------
"$PY" "$ref" cases > "$T/cases"
"$MURA_BUILD/tests/sched" "$T/cases" > "$T/ours" 2>"$T/err" || { echo "FAIL: tests/sched: $(cat "$T/err")"; }
"$PY" "$ref" rates "$T/cases" > "$T/torch"
for c in $(cut -d' ' -f1 "$T/cases"); do
	n=$(grep -c "^$c " "$T/torch")
	check_eq "$c: the rate and momentum of all $n steps equal PyTorch's, to the bit" \
		"$(grep "^$c " "$T/ours")" "$(grep "^$c " "$T/torch")"
done

# ---- real runs ------------------------------------------------------------
mura-synth --out "$T/s" --patients 30 --seed 7 >/dev/null 2>&1 &&
	mura-resize --root "$T/s" --size 32 < "$T/s/MURA-v1.1/train_image_paths.csv" > "$T/train.mt" ||
	{ echo "FAIL: no data"; exit 0; }
n=$(mura-info "$T/train.mt" | awk '$1 == "records" { print $2 }')
# batch 10: 51 records make 5 steps (the last record left out), alone and
# under mpirun -np 2 alike
steps=$(((n - n % 10 + (n % 10 > 1 ? 10 : 0)) / 10))
# The rate of every step, as the progress lines say it.
rates() { sed -n 's/^epoch [0-9]*\/[0-9]*: step [0-9/]*, lr \([^,]*\),.*/\1/p' "$1"; }
base="--arch resnet18 --batch 10 --augment none --threads 2"

opts="$base --epochs 3 --lr 0.01 --schedule cosine --min-lr 0.0001 --warmup 7 --optimizer adamw"
MURA_TRAIN_PROGRESS_SECONDS=0 mura-train $opts --progress --log "$T/a.tsv" --out "$T/a.safetensors" \
	"$T/train.mt" 2>"$T/a.err"
check_eq "cosine over 3 epochs, a warm-up of 7 steps (into epoch 2): every step's rate is PyTorch's" \
	"$(rates "$T/a.err")" \
	"$("$PY" "$ref" run kind=cosine lr=0.01 epochs=3 steps=$steps t_max=3 min_lr=0.0001 warmup=7 warmup_factor=0.01)"
check_eq "... and the log's lr, each epoch's last step's" \
	"$(tail -n +2 "$T/a.tsv" | awk '{ printf "%g ", $2 }')" \
	"$(rates "$T/a.err" | awk -v s=$steps 'NR % s == 0' | tr '\n' ' ')"
check_eq "... the checkpoint records the schedule, T_max resolved to the epochs" \
	"$(meta "$T/a.ckpt.safetensors" train_settings | grep -E '^(schedule|t_max|min_lr|warmup)=' | tr '\n' ' ')" \
	"schedule=cosine t_max=3 min_lr=0.0001 warmup=7 "

# ---- resumed on the curve, bit for bit ----------------------------------
MURA_TRAIN_STOP_AFTER_STEPS=3 mura-train $opts --out "$T/b.safetensors" --log "$T/b.tsv" "$T/train.mt" \
	>/dev/null 2>&1
check_eq "the same, stopped after step 3 (in the warm-up): exit 143" "$?" 143
MURA_TRAIN_STOP_AFTER_STEPS=4 mura-train --resume "$T/b.ckpt.safetensors" --out "$T/b.safetensors" \
	--log "$T/b.tsv" "$T/train.mt" >/dev/null 2>&1
check_eq "... resumed, stopped again 4 steps later (mid-epoch 2): exit 143" "$?" 143
check_eq "... the checkpoint: epoch 2, step 2" \
	"$(meta "$T/b.ckpt.safetensors" train_state | grep -E '^(epoch|step)=' | tr '\n' ' ')" "epoch=2 step=2 "
mura-train --resume "$T/b.ckpt.safetensors" --out "$T/b.safetensors" --log "$T/b.tsv" "$T/train.mt" 2>/dev/null
for f in "" .ckpt; do
	check_eq "... resumed to the end: model$f's tensors equal the uninterrupted run's" \
		"$(tensors "$T/b$f.safetensors")" "$(tensors "$T/a$f.safetensors")"
done
check_eq "... and the log's rates and losses" "$(cut -f1-4 "$T/b.tsv")" "$(cut -f1-4 "$T/a.tsv")"
check_fails "... resuming with another --t-max: refused, named" 1 \
	"was made with --t-max 3, this run says --t-max 5" \
	mura-train --resume "$T/b.ckpt.safetensors" --t-max 5 --epochs 4 --out "$T/b.safetensors" "$T/train.mt"

opts="$base --epochs 2 --optimizer sgd --lr 0.01 --schedule onecycle --max-lr 0.05 --pct-start 0.4"
MURA_TRAIN_PROGRESS_SECONDS=0 mura-train $opts --progress --out "$T/oa.safetensors" "$T/train.mt" 2>"$T/o.err"
check_eq "onecycle, SGD, 2 epochs: every step's rate is PyTorch's" "$(rates "$T/o.err")" \
	"$("$PY" "$ref" run kind=onecycle lr=0.01 epochs=2 steps=$steps max_lr=0.05 pct_start=0.4 optimizer=sgd)"
MURA_TRAIN_STOP_AFTER_STEPS=6 mura-train $opts --out "$T/ob.safetensors" "$T/train.mt" >/dev/null 2>&1
mura-train --resume "$T/ob.ckpt.safetensors" --out "$T/ob.safetensors" "$T/train.mt" 2>/dev/null
check_eq "... with SGD's momentum cycled, stopped after step 6 and resumed: the same tensors" \
	"$(tensors "$T/ob.safetensors")" "$(tensors "$T/oa.safetensors")"
check_fails "... a finished onecycle run cannot be extended" 1 "a one-cycle schedule ends with its run's" \
	mura-train --resume "$T/ob.ckpt.safetensors" --epochs 3 --out "$T/ob.safetensors" "$T/train.mt"

# ---- several processes ------------------------------------------------------
if command -v mpirun >/dev/null 2>&1 && ldd "$(command -v mura-train)" | grep -q libmpi; then
	export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
	export OMPI_MCA_orte_tmpdir_base="$T"
	mpirun -np 2 mura-train --arch resnet18 --batch 10 --augment none --threads 1 --epochs 3 --lr 0.01 \
		--schedule cosine --min-lr 0.0001 --warmup 7 --optimizer adamw --log "$T/m2.tsv" \
		--out "$T/m2.safetensors" "$T/train.mt" >/dev/null 2>&1
	check_eq "the same cosine under mpirun -np 2: the rates of one process" \
		"$(cut -f2 "$T/m2.tsv" | tr '\n' ' ')" "$(cut -f2 "$T/a.tsv" | tr '\n' ' ')"
else
	skip "schedules under mpirun" "no mpirun, or mura-train built without MPI"
fi

# ---- usage errors ------------------------------------------------------------
check_fails "--t-max with --schedule step" 2 "--t-max is not for --schedule step" \
	mura-train --schedule step --step-size 2 --t-max 3 --out "$T/x.safetensors" "$T/train.mt"
check_fails "--schedule step without --step-size" 2 "needs --step-size" \
	mura-train --schedule step --out "$T/x.safetensors" "$T/train.mt"
check_fails "--schedule exponential without --lr-gamma" 2 "needs --lr-gamma" \
	mura-train --schedule exponential --out "$T/x.safetensors" "$T/train.mt"
check_fails "--gamma for the schedule's factor: points to --lr-gamma" 2 "focal.*--lr-gamma" \
	mura-train --schedule step --step-size 1 --gamma 0.5 --out "$T/x.safetensors" "$T/train.mt"
check_fails "--warmup with onecycle" 2 "warms up by itself" \
	mura-train --schedule onecycle --warmup 5 --out "$T/x.safetensors" "$T/train.mt"
check_fails "--plateau-patience with cosine" 2 "--plateau-patience is not for --schedule cosine" \
	mura-train --schedule cosine --plateau-patience 2 --valid "$T/train.mt" --out "$T/x.safetensors" "$T/train.mt"
check_fails "an unknown schedule" 2 "unknown schedule 'linear'" \
	mura-train --schedule linear --out "$T/x.safetensors" "$T/train.mt"
