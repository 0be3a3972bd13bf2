#!/bin/sh
# pipelines/mura.mk end to end on a tiny generated set: every stage's file
# made, a second make runs nothing, EPOCHS retrains and re-evaluates without
# preprocessing, a failing stage leaves no target, an interrupted training
# resumes from its checkpoint.
. "$(dirname "$0")/lib.sh"

cd "$T" || exit 1
mura-synth --out data --patients 40 --seed 4 >/dev/null 2>&1
# GALLERY=0: the page without its galleries' heat maps (tests/t-report.sh
# has them), so that each of the runs below stays short.
MK="make --no-print-directory -f $MURA_TOP/pipelines/mura.mk MURA=$T/data/MURA-v1.1 OUT=$T/run \
	SIZE=32 ARCH=resnet18 BATCH=16 LR=0.001 KEEP_TOP=2 BOOTSTRAP=50 GALLERY=0"

$MK EPOCHS=1 >log1 2>&1
check_eq "the pipeline runs end to end" "$?" 0
for f in prep/train.mt prep/valid.mt prep/test.mt run/model.safetensors run/trained \
	run/test.scores.tsv run/valid.scores.tsv run/report/metrics.md run/report/metrics.tsv \
	run/report/valid.md run/report/curves.png run/report/roc/roc-all.png run/report/index.html; do
	check "stage output $f exists" test -s "$f"
done
check_eq "the ensemble is the top models (one epoch: one model)" \
	"$(cat run/trained | sed 's|.*/||' | tr '\n' ' ')" "model.top1.safetensors "
check "the report is a Markdown table with an 'all' row" grep -q '^| all ' run/report/metrics.md

stamp() { ls -l --time-style=+%s.%N "$@" | awk '{print $6, $7}'; }
before=$(stamp prep/*.mt run/model.safetensors run/report/metrics.md)
$MK EPOCHS=1 >log2 2>&1
check_eq "a second make does nothing" "$(cat log2)" "make: Nothing to be done for 'all'."
check_eq "... and touches no file" "$(stamp prep/*.mt run/model.safetensors run/report/metrics.md)" "$before"

# A dry run with another variable writes nothing, and shows what it would do.
params=$(cat run/train.params)
before=$(stamp run/*.params prep/*.params prep/*.mt run/model*.safetensors run/report/metrics.md)
$MK EPOCHS=2 -n >logn 2>&1
check_eq "make -n with another EPOCHS: exit status" "$?" 0
check_eq "... leaves run/train.params as it was" "$(cat run/train.params)" "$params"
check_eq "... and touches no file" \
	"$(stamp run/*.params prep/*.params prep/*.mt run/model*.safetensors run/report/metrics.md)" "$before"
check "... and shows the training it would run" grep -q -- "--epochs 2 --batch" logn
$MK EPOCHS=1 >logn2 2>&1
check_eq "... so the next real make with the old variables does nothing" "$(cat logn2)" \
	"make: Nothing to be done for 'all'."
# The schedule, warm-up, smoothing and accumulation reach mura-train, and
# are the stage's parameters (a dry run: the stage would run again).
$MK EPOCHS=1 SCHEDULE=cosine MIN_LR=1e-5 WARMUP=3 LABEL_SMOOTHING=0.1 ACCUMULATE=2 -n >logsc 2>&1
check "SCHEDULE=cosine MIN_LR= WARMUP= LABEL_SMOOTHING= ACCUMULATE=: mura-train's options, retraining" \
	grep -q -- "--schedule cosine --min-lr 1e-5 --warmup 3 --warmup-factor 0.01 --label-smoothing 0.1 --accumulate 2" logsc
$MK EPOCHS=1 SCHEDULE=step STEP_SIZE=2 LR_GAMMA=0.5 -n >logst 2>&1
check "SCHEDULE=step STEP_SIZE=2 LR_GAMMA=0.5: --schedule step --step-size 2 --lr-gamma 0.5, no plateau options" \
	sh -c "grep -q -- '--schedule step --step-size 2 --lr-gamma 0.5 --label' logst && ! grep -q -- --plateau logst"
$MK EPOCHS=1 PRECISION=bf16 -n >logpr 2>&1
check "PRECISION=bf16: mura-train and mura-score with --precision bf16, retraining and rescoring" \
	sh -c "grep -q -- '--seed 1 --precision bf16' logpr && grep -q -- '--precision bf16 .*/prep/test.mt' logpr"
check "PRECISION=fp32, the default: no --precision" sh -c "! grep -q -- --precision logst"

# NP= trains under mpirun, on the machines of HOSTS=; a real run with 2
# processes on this machine.
printf 'localhost slots=2\n' >hosts
$MK EPOCHS=1 NP=2 HOSTS=hosts THREADS=1 SYNC_BN=yes -n >lognp 2>&1
check "NP=2 HOSTS=hosts: mura-train under mpirun -np 2 --hostfile hosts, one per machine" \
	grep -q -- "mpirun -np 2 --hostfile hosts --map-by node --bind-to none mura-train" lognp
check "... THREADS=1 SYNC_BN=yes: --threads 1 --sync-bn" grep -q -- "--threads 1 --sync-bn" lognp
if command -v mpirun >/dev/null 2>&1; then
	OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 \
		OMPI_MCA_orte_tmpdir_base="$T" $MK OUT="$T/run2" EPOCHS=1 NP=2 HOSTS=hosts THREADS=1 \
		"$T/run2/trained" >lognp2 2>&1
	check_eq "NP=2: the training stage runs on 2 processes" "$?" 0
	check "... and writes the model" test -s run2/model.safetensors
else
	skip "NP=2: the training stage on 2 processes" "no mpirun (openmpi-bin; make deps installs it)"
fi

# Recipes, the pipelines' and those of a makefile that includes them, fail
# when any tool of a pipe fails.
printf 'include %s\npiped:\n\tfalse | cat > $@\n' "$MURA_TOP/pipelines/preprocess.mk" >pf.mk
make --no-print-directory -f pf.mk MURA="$T/data/MURA-v1.1" PREP="$T/pf" piped >logpf 2>&1
check_eq "a pipe whose first tool fails fails the recipe (pipefail)" "$?" 2

prep=$(stamp prep/*.mt)
model=$(stamp run/model.safetensors)
$MK EPOCHS=2 >log3 2>&1
check_eq "changing EPOCHS succeeds" "$?" 0
check_eq "changing EPOCHS does not preprocess again" "$(stamp prep/*.mt)" "$prep"
check "changing EPOCHS retrains" test "$(stamp run/model.safetensors)" != "$model"
check_eq "the new log has two epochs" "$(sed 1d run/log.tsv | wc -l)" 2
check_eq "two epochs give two top models" "$(wc -l < run/trained)" 2
check "changing EPOCHS re-evaluates" test run/report/metrics.md -nt run/model.safetensors

$MK EPOCHS=2 LR=nonsense >log4 2>&1
check_eq "a failing training stage fails the make" "$?" 2
check "a failing stage leaves no target behind" test ! -e run/trained
check "... nor a report that looks finished" test ! -e run/report/metrics.md -o run/report/metrics.md -ot run/train.params
check "... and says why" grep -q "mura-train: --lr" log4

$MK EPOCHS=2 SIZE=40 >log5 2>&1
check_eq "changing SIZE preprocesses again" "$(mura-info prep/train.mt | awk '/^shapes/ {print $2}')" "1x40x40"

# A training stopped mid-run resumes from its checkpoint on the next make,
# and ends as an uninterrupted run does.
$MK EPOCHS=3 SIZE=40 >/dev/null 2>&1
cp run/model.safetensors whole.safetensors
MURA_TRAIN_STOP_AFTER_STEPS=4 $MK EPOCHS=3 SIZE=40 SEED=1 LR=0.0010 >log6 2>&1
check_eq "an interrupted training fails the make" "$?" 2
check "... and leaves its checkpoint" test -s run/model.ckpt.safetensors
$MK EPOCHS=3 SIZE=40 SEED=1 LR=0.0010 >log7 2>&1
check "the next make resumes from the checkpoint" grep -q "resuming from" log7
check_eq "the resumed run ends with the uninterrupted run's weights" \
	"$(tensors run/model.safetensors)" "$(tensors whole.safetensors)"

# The tune target: a small mura-tune search of the hybrid space's options
# (resnet18 here), its report; a second make does nothing.
$MK SIZE=40 RUNS=$T TUNE_TRIALS=3 TUNE_EPOCHS=2 TUNE_PRUNER=none tune >log8 2>&1
check_eq "make tune runs a search" "$?" 0
check_eq "... of 3 complete trials" "$(awk -F '\t' 'NR > 1 && $2 == "complete"' tune/trials.tsv | wc -l)" 3
check "... and prints its report" grep -q "^best: trial [0-9] (complete), val_auc" log8
$MK SIZE=40 RUNS=$T TUNE_TRIALS=3 TUNE_EPOCHS=2 TUNE_PRUNER=none tune >log9 2>&1
check_eq "a second make tune trains nothing" "$(grep -c 'trial .: started' log9)" 0
