#!/bin/sh
# t-train.sh - mura-train on data from mura-synth and mura-resize.
#   - a small resnet18 learns: validation AUC above 0.75 (LEARN)
#   - interrupted twice (MURA_TRAIN_STOP_AFTER_STEPS, SIGTERM at an exact
#     step, exit 143) and resumed, once with every option again and once
#     with the files alone (the rest from the checkpoint), a run ends with
#     the tensors of the uninterrupted run, bit for bit: the last, best,
#     top-K models and the checkpoint with its optimizer state; and the same
#     log
#   - a fresh run over a checkpoint (a rerun without --resume) is refused,
#     naming --resume and --force, and touches no file; --force starts over
#   - resuming a finished run (or one early stopping ended) does nothing and
#     touches no file; --epochs above the recorded count extends it, as if
#     it had been run so; options that contradict the checkpoint are named
#   - the files it writes: names, metadata, the log's header; mura-score
#     reads the models
#   - the temporaries a killed run left (MODEL.tmp.PID of a dead PID) are
#     removed by the next run of that --out, a live process's are kept
#   - --progress without a terminal: a plain line per interval
#     (MURA_TRAIN_PROGRESS_SECONDS), one as validation starts; without it,
#     a line per epoch only
#   - a stream from stdin, the convolutional head with a frozen backbone
#     unfrozen later, SGD with focal loss, fine-tuning from --weights
#   - bad inputs and usage errors: message, status, empty stdout
. "$(dirname "$0")/lib.sh"

export MURA_THREADS=2
unset MURA_TRAIN_STOP_AFTER_STEPS

# The modification times of files, to the nanosecond.
stamp() { ls -l --time-style=+%s.%N "$@" | awk '{print $6, $7}'; }

# The metadata value of key $2 in file $1, its \n escapes made lines.
meta() {
	n=$(od -An -t u8 -N 8 "$1" | tr -d ' ')
	head -c $((8 + n)) "$1" | tail -c +9 | grep -o "\"$2\":\"[^\"]*\"" | cut -d'"' -f4 |
		sed 's/\\n/\n/g'
}

# ---- a small data set: 32 x 32, for the runs that only need to run ----
if ! mura-synth --out "$T/s" --patients 30 --seed 7 ||
	! mura-resize --root "$T/s" --size 32 < "$T/s/MURA-v1.1/train_image_paths.csv" > "$T/train.mt" ||
	! mura-resize --root "$T/s" --size 32 < "$T/s/MURA-v1.1/valid_image_paths.csv" > "$T/valid.mt"; then
	echo "FAIL: mura-synth or mura-resize failed: no data"
	exit 1
fi
n_train=$(mura-info "$T/train.mt" | awk '$1 == "records" { print $2 }')

# ---- a small network learns --------------------------------------------
# mura-synth's radiographs are too hard for a network trained from scratch
# on a few hundred 64 x 64 images in minutes (PyTorch's resnet18 gets
# validation AUC 0.55 to 0.61 in 8 epochs on 660 of them, as mura-train
# does), so this check uses tests/py/blobs.py: faint blobs in noise.
if need_python numpy; then
	"$PY" "$MURA_TOP/tests/py/blobs.py" "$T/blobs-train.mt" 150 1 &&
		"$PY" "$MURA_TOP/tests/py/blobs.py" "$T/blobs-valid.mt" 60 2
	check "resnet18 on blobs, 4 epochs" mura-train --arch resnet18 --valid "$T/blobs-valid.mt" --epochs 4 \
		--lr 0.001 --out "$T/blobs.safetensors" --log "$T/blobs.tsv" "$T/blobs-train.mt"
	sed 's/^/# /' "$T/blobs.tsv"
	auc=$(awk -F '\t' 'END { print $6 }' "$T/blobs.tsv")
	check_eq "it learns: validation AUC $auc above 0.75 after 4 epochs" \
		"$(awk -v a="$auc" 'BEGIN { print (a > 0.75) ? "yes" : "no" }')" yes
	mura-score -m "$T/blobs.best.safetensors" "$T/blobs-valid.mt" > "$T/blobs-scores.tsv"
	mura-kappa --bootstrap 0 "$T/blobs-scores.tsv" | sed 's/^/# /'
	auc=$(mura-kappa -f tsv --bootstrap 0 "$T/blobs-scores.tsv" | awk -F '\t' '$1 == "all" { print $9 }')
	check_eq "the best model scored by mura-score: study AUC $auc above 0.75" \
		"$(awk -v a="$auc" 'BEGIN { print (a > 0.75) ? "yes" : "no" }')" yes
else
	skip "a small network learns" "/usr/bin/python3 cannot import numpy"
fi

# ---- interrupted and resumed = uninterrupted ---------------------------
opts="--arch resnet18 --valid $T/valid.mt --epochs 3 --batch 4 --lr 0.001 --keep-top 2
	--plateau-patience 0 --augment default,mixup=0.4 --seed 3"
check "an uninterrupted run" mura-train $opts --out "$T/a.safetensors" --log "$T/a.tsv" "$T/train.mt"
MURA_TRAIN_STOP_AFTER_STEPS=5 mura-train $opts --out "$T/b.safetensors" --log "$T/b.tsv" "$T/train.mt" \
	>"$T/out" 2>"$T/err"
check_eq "SIGTERM after step 5: exit status 143" "$?" 143
check_eq "... nothing on stdout" "$(cat "$T/out")" ""
check "... a checkpoint and no model yet" test -f "$T/b.ckpt.safetensors" -a ! -f "$T/b.safetensors"
check_eq "... the checkpoint says epoch 1, step 5" \
	"$(meta "$T/b.ckpt.safetensors" train_state | grep -E '^(epoch|step)=' | tr '\n' ' ')" \
	"epoch=1 step=5 "
check "... and tells how to resume" grep -q "resume.*b.ckpt.safetensors" "$T/err"
before=$(stamp "$T"/b.*)
check_fails "the same command again, without --resume: refused, naming the ways on" 1 \
	"b.ckpt.safetensors exists: .*continue it with --resume .*b.ckpt.safetensors, or start over with --force" \
	mura-train $opts --out "$T/b.safetensors" --log "$T/b.tsv" "$T/train.mt"
check_eq "... and touches no file" "$(stamp "$T"/b.*)" "$before"
# The second stop falls in epoch 2, after the first epoch's files.
MURA_TRAIN_STOP_AFTER_STEPS=14 mura-train $opts --out "$T/b.safetensors" --log "$T/b.tsv" \
	--resume "$T/b.ckpt.safetensors" "$T/train.mt" >"$T/out" 2>"$T/err"
check_eq "resumed with every option again, SIGTERM again 14 steps later: exit status 143" "$?" 143
check "resumed to the end with the files alone: the options from the checkpoint" \
	mura-train --out "$T/b.safetensors" --log "$T/b.tsv" --valid "$T/valid.mt" \
	--resume "$T/b.ckpt.safetensors" "$T/train.mt"
for f in "" .best .top1 .top2 .ckpt; do
	check_eq "interrupted twice and resumed: the tensors of model$f.safetensors equal the uninterrupted run's" \
		"$(tensors "$T/b$f.safetensors" 2>&1)" "$(tensors "$T/a$f.safetensors" 2>&1)"
done
check_eq "... and so does the log (but for the times)" "$(cut -f1-7 "$T/b.tsv")" "$(cut -f1-7 "$T/a.tsv")"
# With dropout (the conv head's and the classifier's masks): the same.
dopts="--arch resnet18 --head conv --dropout 0.3 --epochs 2 --batch 8 --lr 0.001 --augment none --seed 5"
mura-train $dopts --out "$T/d1.safetensors" "$T/train.mt" 2>/dev/null
MURA_TRAIN_STOP_AFTER_STEPS=3 mura-train $dopts --out "$T/d2.safetensors" "$T/train.mt" >/dev/null 2>&1
check_eq "dropout 0.3, stopped after step 3: exit status 143" "$?" 143
mura-train $dopts --out "$T/d2.safetensors" --resume "$T/d2.ckpt.safetensors" "$T/train.mt" 2>/dev/null
check_eq "... resumed: the tensors equal the uninterrupted run's" \
	"$(tensors "$T/d2.safetensors" 2>&1)" "$(tensors "$T/d1.safetensors" 2>&1)"
mura-train $dopts --dropout 0 --out "$T/d3.safetensors" "$T/train.mt" 2>/dev/null
check "... which dropout changed (dropout 0: other tensors)" \
	test "$(tensors "$T/d3.safetensors" 2>&1)" != "$(tensors "$T/d1.safetensors" 2>&1)"
# A finished run extended by an epoch is the run made with one more.
mura-train $dopts --epochs 3 --out "$T/d4.safetensors" "$T/train.mt" 2>/dev/null
mura-train --epochs 3 --out "$T/d2.safetensors" --resume "$T/d2.ckpt.safetensors" "$T/train.mt" 2>"$T/err"
check_eq "a finished run of 2 epochs resumed with --epochs 3: exit 0" "$?" 0
check "... says it extends the run" grep -q "d2.ckpt.safetensors: extending the run from 2 to 3 epochs" "$T/err"
check_eq "... and ends with the tensors of a 3-epoch run" \
	"$(tensors "$T/d2.safetensors" 2>&1)" "$(tensors "$T/d4.safetensors" 2>&1)"
# The precision is the checkpoint's too: a resumed run keeps it unless told.
popts="--arch resnet18 --epochs 1 --batch 8 --lr 0.001 --augment none --seed 5"
MURA_TRAIN_STOP_AFTER_STEPS=3 mura-train $popts --out "$T/prec1.safetensors" "$T/train.mt" >/dev/null 2>&1
check_eq "an fp32 run stopped after step 3: its checkpoint records precision=fp32" \
	"$(meta "$T/prec1.ckpt.safetensors" train_state | grep '^precision=')" "precision=fp32"
# The same checkpoint saying bf16 (a string of the same length in place):
# refused where there is no bf16 (MURA_SIMD=avx2 takes it away), naming the way on.
/usr/bin/python3 -c 'import sys; p = sys.argv[1]; b = open(p, "rb").read()
assert b.count(b"precision=fp32") == 1
open(p, "wb").write(b.replace(b"precision=fp32", b"precision=bf16"))' "$T/prec1.ckpt.safetensors"
before=$(stamp "$T"/prec1.*)
check_fails "a bf16 checkpoint resumed where there is no AVX512-BF16: refused, saying how" 1 \
	"prec1.ckpt.safetensors was trained in bf16 and this CPU has no AVX512-BF16: resume it with --precision fp32" \
	env MURA_SIMD=avx2 mura-train --out "$T/prec1.safetensors" --resume "$T/prec1.ckpt.safetensors" "$T/train.mt"
check_eq "... and touches no file" "$(stamp "$T"/prec1.*)" "$before"
MURA_SIMD=avx2 mura-train --precision fp32 --out "$T/prec1.safetensors" --resume "$T/prec1.ckpt.safetensors" \
	"$T/train.mt" 2>"$T/err"
check_eq "... resumed with --precision fp32: exit 0" "$?" 0
check "... saying the precision changed" grep -q "prec1.ckpt.safetensors was trained in bf16, this run trains in fp32" "$T/err"
check_eq "... and the checkpoint records fp32" \
	"$(meta "$T/prec1.ckpt.safetensors" train_state | grep '^precision=')" "precision=fp32"
if grep -q '\<avx512_bf16\>' /proc/cpuinfo; then
	mura-train $popts --precision bf16 --out "$T/prec2.safetensors" "$T/train.mt" 2>/dev/null
	mura-train $popts --out "$T/prec3.safetensors" "$T/train.mt" 2>/dev/null
	MURA_TRAIN_STOP_AFTER_STEPS=3 mura-train $popts --precision bf16 --out "$T/prec4.safetensors" "$T/train.mt" \
		>/dev/null 2>&1
	check_eq "a bf16 run stopped after step 3: its checkpoint records precision=bf16" \
		"$(meta "$T/prec4.ckpt.safetensors" train_state | grep '^precision=')" "precision=bf16"
	mura-train --out "$T/prec4.safetensors" --resume "$T/prec4.ckpt.safetensors" "$T/train.mt" 2>"$T/err"
	check_eq "... resumed without --precision: exit 0" "$?" 0
	check_eq "... in bf16: the tensors of the uninterrupted bf16 run" \
		"$(tensors "$T/prec4.safetensors" 2>&1)" "$(tensors "$T/prec2.safetensors" 2>&1)"
	check "... which bf16 changed (the fp32 run's tensors differ)" \
		test "$(tensors "$T/prec3.safetensors" 2>&1)" != "$(tensors "$T/prec2.safetensors" 2>&1)"
else
	skip "a bf16 run resumed in bf16" "this CPU has no AVX512-BF16 (grep avx512_bf16 /proc/cpuinfo)"
fi
check_eq "the log: a header and 3 rows" "$(head -n 1 "$T/a.tsv" | tr '\t' ' '; wc -l < "$T/a.tsv")" \
	"epoch lr train_loss train_acc val_loss val_auc val_kappa seconds images_per_s
4"
# ReduceLROnPlateau as PyTorch's (relative threshold 1e-4, eps 1e-8): a
# frozen backbone and a tiny rate keep the validation loss flat, so every
# epoch after the first is no improvement.  Patience 0 divides the next
# epoch's rate by 10 after each; the second cut would be by less than 1e-8
# and is not made.  Patience 1 waits for a second such epoch.
for pp in "0 1e-07 1e-07 1e-08 1e-08" "1 1e-07 1e-07 1e-07 1e-08"; do
	set -- $pp
	patience=$1
	shift
	mura-train --arch resnet18 --valid "$T/valid.mt" --epochs 4 --batch 8 --lr 1e-7 --freeze-backbone \
		--plateau-patience $patience --out "$T/p$patience.safetensors" --log "$T/p.tsv" "$T/train.mt" 2>/dev/null
	check_eq "plateau patience $patience: the learning rates of 4 epochs" "$(awk 'NR > 1 { print $2 }' "$T/p.tsv" | tr '\n' ' ')" "$* "
done
# Early stopping as Keras' (min_delta 0): the flat AUC never improves on
# epoch 1's, so --early-stop 2 ends the run after epoch 3.
mura-train --arch resnet18 --valid "$T/valid.mt" --epochs 6 --batch 8 --lr 1e-7 --freeze-backbone \
	--monitor val_auc --early-stop 2 --out "$T/e.safetensors" --log "$T/e.tsv" "$T/train.mt" 2>"$T/err"
check_eq "early stopping after 2 epochs without improvement: exit 0, 3 epochs" \
	"$? $(awk 'END { print $1 }' "$T/e.tsv")" "0 3"
check "... says so" grep -q "early stopping: val_auc did not improve for 2 epochs (best .* at epoch 1" "$T/err"
before=$(stamp "$T"/e.*safetensors "$T/e.tsv")
mura-train --out "$T/e.safetensors" --log "$T/e.tsv" --valid "$T/valid.mt" --resume "$T/e.ckpt.safetensors" \
	"$T/train.mt" 2>"$T/err"
check_eq "resuming a run early stopping ended: exit 0" "$?" 0
check "... nothing to do" grep -q "early stopping ended the run after epoch 3 of 6: nothing to do" "$T/err"
check_eq "... and touches no file" "$(stamp "$T"/e.*safetensors "$T/e.tsv")" "$before"
check_eq "the models record their epoch and metadata" \
	"$(meta "$T/a.safetensors" train_epoch) $(meta "$T/a.safetensors" arch) $(meta "$T/a.safetensors" input_size)" \
	"3 resnet18 32x32"
check_eq "top1 has the lowest validation loss" "$(meta "$T/a.top1.safetensors" train_val_loss)" \
	"$(awk -F '\t' 'NR > 1 { print $5 }' "$T/a.tsv" | sort -g | head -n 1)"
check_eq "the checkpoint records the run's epochs" \
	"$(meta "$T/b.ckpt.safetensors" train_state | grep '^epochs=')" "epochs=3"
before=$(stamp "$T"/b.*safetensors "$T/b.tsv")
mura-train --out "$T/b.safetensors" --log "$T/b.tsv" --valid "$T/valid.mt" \
	--resume "$T/b.ckpt.safetensors" "$T/train.mt" >"$T/out" 2>"$T/err"
check_eq "resuming a finished run without --epochs: exit 0" "$?" 0
check "... says there is nothing to do" \
	grep -q "b.ckpt.safetensors: the run is done (3 of 3 epochs): nothing to do (to train on, give --epochs above 3)" "$T/err"
mura-train $opts --out "$T/b.safetensors" --log "$T/b.tsv" --resume "$T/b.ckpt.safetensors" "$T/train.mt" \
	>"$T/out" 2>&1
check "... and with its own --epochs" grep -q "nothing to do" "$T/out"
check_eq "... and touches no file" "$(stamp "$T"/b.*safetensors "$T/b.tsv")" "$before"
check_fails "resuming with another --batch: named" 1 \
	"b.ckpt.safetensors was made with --batch 4, this run says --batch 8 \(leave out" \
	mura-train $opts --batch 8 --out "$T/c.safetensors" --resume "$T/b.ckpt.safetensors" "$T/train.mt"
check_fails "... every option that differs in one message, the model's too" 1 \
	"made with --arch resnet18, --batch 4, --seed 3 and --augment [^ ]*mixup=0.4, this run says --arch resnet34, --batch 8, --seed 4 and --augment none" \
	mura-train --arch resnet34 --batch 8 --seed 4 --augment none --valid "$T/valid.mt" --out "$T/c.safetensors" \
	--resume "$T/b.ckpt.safetensors" "$T/train.mt"
check_fails "... and the data: no --valid" 1 "made with valid=[0-9]+ records, this run has valid=0 records" \
	mura-train --out "$T/c.safetensors" --resume "$T/b.ckpt.safetensors" "$T/train.mt"
check_fails "resuming into another run's --out: refused" 1 \
	"a.ckpt.safetensors exists, and is not the checkpoint resumed \\(.*b.ckpt.safetensors\\): give another --out, or --force" \
	mura-train --valid "$T/valid.mt" --out "$T/a.safetensors" --resume "$T/b.ckpt.safetensors" "$T/train.mt"
check_fails "resuming from a model that is no checkpoint" 1 "not a checkpoint" \
	mura-train $opts --out "$T/c.safetensors" --resume "$T/a.safetensors" "$T/train.mt"
check "mura-score reads the models" sh -c "mura-score -m '$T/a.safetensors' -m '$T/a.top2.safetensors' \
	'$T/valid.mt' > '$T/a-scores.tsv' && mura-kappa '$T/a-scores.tsv' > /dev/null"

# ---- other ways to train ------------------------------------------------
check "a stream from stdin" sh -c "mura-train --arch resnet18 --batch 8 --class-weights none \
	--out '$T/stream.safetensors' - < '$T/train.mt'"
check "the conv head, frozen backbone unfrozen at epoch 2 with its own rate" \
	mura-train --arch resnet18 --head conv --dropout 0.2 --freeze-backbone --unfreeze-at 2 \
	--lr-after-unfreeze 0.0005 --epochs 2 --batch 8 --out "$T/h.safetensors" --log "$T/h.tsv" "$T/train.mt"
check_eq "... the log shows the rate changing" "$(cut -f2 "$T/h.tsv" | tr '\n' ' ')" "lr 0.0001 0.0005 "
check "SGD, Nesterov, focal loss, global weights with a boost, AUC monitored, early stopping" \
	mura-train --arch resnet18 --optimizer sgd --lr 0.01 --momentum 0.9 --nesterov --loss focal \
	--gamma 2 --alpha 0.25 --class-weights global --boost 1.5 --monitor val_auc --early-stop 1 \
	--valid "$T/valid.mt" --epochs 2 --batch 8 --augment none --out "$T/g.safetensors" "$T/train.mt"
mura-train --arch resnet18 --weights "$T/a.safetensors" --epochs 1 --batch 8 \
	--out "$T/f.safetensors" "$T/train.mt" 2>"$T/err"
check_eq "fine-tuning from a model of ours" "$?" 0
check "... says what it loaded" grep -q "a.safetensors: every tensor loaded" "$T/err"
check_eq "... and, without --progress on no terminal, nothing between epochs" "$(grep -c ': step ' "$T/err")" 0

# --progress on no terminal (a file here): plain lines, every step at interval 0.
n=$n_train
[ $((n % 8)) = 1 ] && n=$((n - 1))
steps=$(((n + 7) / 8))
MURA_TRAIN_PROGRESS_SECONDS=0 mura-train --progress --arch resnet18 --epochs 1 --batch 8 --augment none \
	--valid "$T/valid.mt" --out "$T/q.safetensors" "$T/train.mt" 2>"$T/err"
check_eq "--progress without a terminal, interval 0: a plain line per step" \
	"$(grep -cE "^epoch 1/1: step [0-9]+/$steps, lr [0-9.e-]+, loss [0-9.]+, acc [0-9.]+, [0-9.]+ img/s, [0-9]+:[0-9]{2} left\$" "$T/err")" \
	"$steps"
check "... then one as validation starts" grep -qx "epoch 1/1: validating" "$T/err"
check_eq "... no carriage return or escape (no bar)" "$(tr -dc '\r\033' < "$T/err" | wc -c)" 0
MURA_TRAIN_PROGRESS_SECONDS=1000 mura-train --progress --arch resnet18 --epochs 1 --batch 8 --augment none \
	--out "$T/q2.safetensors" "$T/train.mt" 2>"$T/err"
check_eq "... interval 1000 s: no step line in a short epoch" "$(grep -c ': step ' "$T/err")" 0

mura-augment --seed 3 --epoch 1 < "$T/train.mt" |
	mura-train --arch resnet18 --seed 3 --augment none --class-weights none --out "$T/aug1.safetensors" - 2>/dev/null
mura-train --arch resnet18 --seed 3 --class-weights none --out "$T/aug2.safetensors" - < "$T/train.mt" 2>/dev/null
check_eq "augmenting in-process is mura-augment --seed S --epoch 1: the same weights from a stream" \
	"$(tensors "$T/aug2.safetensors" 2>&1)" "$(tensors "$T/aug1.safetensors" 2>&1)"

# ---- what killed runs leave ----------------------------------------------
# SIGKILL during a write leaves NAME.tmp.PID behind.  The next run of that
# --out removes those of its files (the models, the log) whose process is
# gone, and keeps a live one's (this shell's) and other files'.
sleep 0 &
dead=$!
wait $dead
for f in k.safetensors k.best.safetensors k.ckpt.safetensors k.top3.safetensors k.tsv other.safetensors; do
	: >"$T/$f.tmp.$dead"
done
: >"$T/k.safetensors.tmp.$$"
mura-train --arch resnet18 --epochs 1 --batch 8 --augment none --out "$T/k.safetensors" --log "$T/k.tsv" \
	"$T/train.mt" 2>"$T/err"
check_eq "a run where killed ones left temporaries: exit 0" "$?" 0
check_eq "... removed those of its files whose process is gone" "$(cd "$T" && ls k.*.tmp.$dead 2>/dev/null)" ""
check "... and says so" grep -q "k.ckpt.safetensors.tmp.$dead: removed, the temporary file of a run that was killed" \
	"$T/err"
check "... kept a live process's" test -f "$T/k.safetensors.tmp.$$"
check "... and another file's" test -f "$T/other.safetensors.tmp.$dead"

# ---- bad inputs ---------------------------------------------------------
check_fails "no --out" 2 "--out MODEL.safetensors is required" mura-train "$T/train.mt"
check_fails "no training file" 2 "no training file" mura-train --out "$T/x.safetensors"
check_fails "unknown --arch" 2 "unknown architecture 'resnet19'" \
	mura-train --arch resnet19 --out "$T/x.safetensors" "$T/train.mt"
check_fails "a stream for two epochs" 2 "read once" \
	mura-train --epochs 2 --class-weights none --out "$T/x.safetensors" -
check_fails "a stream with class weights" 2 "needs the counts" mura-train --out "$T/x.safetensors" -
check_fails "--unfreeze-at without --freeze-backbone" 2 "needs --freeze-backbone" \
	mura-train --unfreeze-at 2 --out "$T/x.safetensors" "$T/train.mt"
check_fails "--keep-top without --valid" 2 "--keep-top needs --valid" \
	mura-train --keep-top 5 --out "$T/x.safetensors" "$T/train.mt"
check_fails "--gamma with bce" 2 "are for --loss focal" \
	mura-train --gamma 1 --out "$T/x.safetensors" "$T/train.mt"
check_fails "--momentum with adam" 2 "are for --optimizer sgd" \
	mura-train --momentum 0.9 --out "$T/x.safetensors" "$T/train.mt"
check_fails "--nesterov without momentum" 2 "optimizer sgd" \
	mura-train --optimizer sgd --nesterov --out "$T/x.safetensors" "$T/train.mt"
check_fails "a bad --augment" 2 "--augment" \
	mura-train --augment wobble=3 --out "$T/x.safetensors" "$T/train.mt"
check_fails "--weights with --resume" 2 "exclude each other" \
	mura-train --weights "$T/a.safetensors" --resume "$T/a.ckpt.safetensors" --out "$T/x.safetensors" "$T/train.mt"
check_fails "an --out in a missing folder" 1 "--out $T/nodir/x.safetensors: folder $T/nodir" \
	mura-train --out "$T/nodir/x.safetensors" "$T/train.mt"
check_fails "a missing training file" 1 "nothere.mt" mura-train --out "$T/x.safetensors" "$T/nothere.mt"
check_fails "a missing validation file" 1 "nothere.mt" \
	mura-train --valid "$T/nothere.mt" --out "$T/x.safetensors" "$T/train.mt"
mura-resize --root "$T/s" --size 48 < "$T/s/MURA-v1.1/valid_image_paths.csv" > "$T/valid48.mt"
cat "$T/train.mt" "$T/valid48.mt" > "$T/mixed.mt"
check_fails "records of two sizes" 1 "mixed.mt: record $((n_train + 1)): 48x48, but record 1 is 32x32" \
	mura-train --arch resnet18 --out "$T/x.safetensors" "$T/mixed.mt"
check_fails "validation records of another size" 1 "valid48.mt: record 1: 48x48, but the training records are 32x32" \
	mura-train --arch resnet18 --valid "$T/valid48.mt" --out "$T/x.safetensors" "$T/train.mt"
check_fails "weights of another architecture" 1 "a resnet18 model, not resnet34" \
	mura-train --arch resnet34 --weights "$T/a.safetensors" --out "$T/x.safetensors" "$T/train.mt"
# Batch norm keeps a ResNet finite at any finite rate; 1e300 is infinite as
# a float: the first step makes weights infinite, the second's logits NaN.
rm -f "$T/x"*.safetensors
check_fails "a diverging loss (--lr 1e300)" 1 "epoch 1, step 2: a logit is nan: .*nothing was saved" \
	mura-train --arch resnet18 --optimizer sgd --lr 1e300 --batch 8 --epochs 2 --out "$T/x.safetensors" "$T/train.mt"
check "... and wrote no model" test ! -f "$T/x.safetensors" -a ! -f "$T/x.ckpt.safetensors"
# A run that diverges after a good epoch keeps that epoch's files.
check_fails "diverging in epoch 2" 1 "epoch 2, step [0-9]+: .*last good state is .*y.safetensors \\(epoch 1\\)" \
	mura-train --arch resnet18 --freeze-backbone --unfreeze-at 2 --lr-after-unfreeze 1e300 --optimizer sgd \
	--batch 8 --epochs 3 --out "$T/y.safetensors" "$T/train.mt"
check_eq "... and kept the model of epoch 1" "$(meta "$T/y.safetensors" train_epoch)" 1
check_fails "a fresh run where one left its checkpoint: refused" 1 "y.ckpt.safetensors exists: .*--force" \
	mura-train --arch resnet18 --epochs 1 --batch 8 --augment none --out "$T/y.safetensors" "$T/train.mt"
check "... --force starts over" \
	mura-train --force --arch resnet18 --epochs 1 --batch 8 --augment none --out "$T/y.safetensors" "$T/train.mt"
check_eq "... and writes that run's checkpoint" "$(meta "$T/y.ckpt.safetensors" train_state | grep '^epochs=')" \
	"epochs=1"
