#!/bin/sh
# mura-tune: bad spaces and usage, TPE against random search and against
# Optuna's TPE (20 seeds), the median pruner and ASHA against their peers on
# fixed curves, a study killed with -9 mid-trial that resumes to the same
# journal, the report.  The trainer is tests/tune-trainer.sh, whose val_loss
# is a known function of its options (so a trial takes milliseconds).
. "$(dirname "$0")/lib.sh"

cd "$T" || exit 1
REF="$MURA_TOP/tests/py/tune_ref.py"
TRAINER="$MURA_TOP/tests/tune-trainer.sh"
printf 'lr log-uniform 1e-5 1e-1\ndropout uniform 0 0.5   # a comment\n\nbatch choice 8 16 32\n' > space

# ---- bad input --------------------------------------------------------------
printf 'lr log-uniform 0 1\n' > bad1
printf 'lr normal 0 1\n' > bad2
printf 'lr uniform 1 1\n' > bad3
printf 'lr uniform 0 1\nlr uniform 0 2\n' > bad4
printf 'batch choice 8\n' > bad5
printf '# nothing\n' > bad6
check_fails "log-uniform from 0 refused" 1 "bad1: line 1: lr: log-uniform needs LO above 0" \
	mura-tune --study s --space bad1 --trials 1 -- "$TRAINER"
check_fails "unknown distribution refused" 1 "bad2: line 1: lr: unknown distribution 'normal'" \
	mura-tune --study s --space bad2 --trials 1 -- "$TRAINER"
check_fails "empty range refused" 1 "bad3: line 1: lr: LO 1 is not below HI 1" \
	mura-tune --study s --space bad3 --trials 1 -- "$TRAINER"
check_fails "a parameter twice refused" 1 "bad4: line 2: lr: given twice" \
	mura-tune --study s --space bad4 --trials 1 -- "$TRAINER"
check_fails "a choice of one refused" 1 "bad5: line 1: batch: choice needs at least two words" \
	mura-tune --study s --space bad5 --trials 1 -- "$TRAINER"
check_fails "a space without parameters refused" 1 "bad6: no parameters" \
	mura-tune --study s --space bad6 --trials 1 -- "$TRAINER"
check_fails "no --study is a usage error" 2 "--study DIR is required" mura-tune --space space --trials 1
check_fails "a space parameter among the trainer's options refused" 2 "the trainer's --lr: a parameter" \
	mura-tune --study s --space space --trials 1 -- "$TRAINER" --lr 0.1 train.mt
check_fails "the trainer's --out refused" 2 "the trainer's --out: mura-tune gives" \
	mura-tune --study s --space space --trials 1 -- "$TRAINER" --out m.safetensors train.mt
check_eq "nothing written by the refused runs" "$(ls -d s 2>/dev/null)" ""

# ---- TPE against random search and against Optuna ----------------------------
# 20 seeds, 30 trials each, the objective at its last (only) epoch.
tune() {  # SAMPLER SEED
	mura-tune --study "$1-$2" --space space --trials 30 --epochs 1 --sampler "$1" --pruner none \
		--seed "$2" --poll 0.01 -- "$TRAINER" train.mt 2>/dev/null &&
	awk -F '\t' 'NR > 1 && $2 == "complete" && (b == "" || $3 + 0 < b) { b = $3 + 0 } END { print b }' \
		"$1-$2/trials.tsv"
}
# The two samplers side by side (two processes, a trial at a time each),
# Optuna beside them.
optuna=0
if need_python optuna; then
	"$PY" "$REF" tpe 20 30 > best-optuna &
	optuna=$!
fi
for s in $(seq 1 20); do tune tpe "$s"; done > best-tpe &
for s in $(seq 1 20); do tune random "$s"; done > best-random
wait $!
check_eq "40 studies of 30 trials ran" "$(grep -c . best-tpe) $(grep -c . best-random)" "20 20"
med() { sort -g "$1" | awk '{ v[NR] = $1 } END { printf "%.4f", (v[10] + v[11]) / 2 }'; }
if need_python; then
	read -r u p_less p_two <<EOF
$("$PY" "$REF" mwu best-tpe best-random)
EOF
	echo "    median best over 20 seeds: TPE $(med best-tpe), random $(med best-random);" \
	     "Mann-Whitney U $u, p (TPE lower) $p_less"
	check "TPE finds lower values than random search (one-sided p < 0.01)" \
		awk -v p="$p_less" 'BEGIN { exit !(p < 0.01) }'
else
	skip "TPE against random search" "no /usr/bin/python3"
fi
if [ "$optuna" != 0 ]; then
	wait "$optuna"
	read -r u p_less p_two <<EOF
$("$PY" "$REF" mwu best-tpe best-optuna)
EOF
	echo "    median best over 20 seeds: mura-tune TPE $(med best-tpe), Optuna $("$PY" -c \
	     'import optuna; print(optuna.__version__)') TPE $(med best-optuna); Mann-Whitney U $u, p (two-sided) $p_two"
	check "TPE's best values and Optuna's TPE's: one distribution (two-sided p > 0.05)" \
		awk -v p="$p_two" 'BEGIN { exit !(p > 0.05) }'
else
	skip "TPE against Optuna's" "python3-optuna is not installed (make deps installs it)"
fi

# ---- pruners on fixed curves ---------------------------------------------------
# 16 curves of 8 epochs, falling at different rates, some crossing.
awk 'BEGIN { for (n = 0; n < 16; n++) { a = 1 + ((n * 7) % 16) / 20; b = 0.2 + ((n * 5) % 7) / 10
	for (e = 1; e <= 8; e++) printf "%.6f%s", a + b / e + ((n * 3 + e * 5) % 4) / 50, e < 8 ? " " : "\n" } }' > curves
journal() {  # the trials' number, state and epochs
	awk -F '\t' 'NR > 1 { print $1, $2, $4 }' "$1/trials.tsv"
}
TUNE_CURVES=curves mura-tune --study median --space space --trials 16 --epochs 8 --sampler random \
	--pruner median --poll 0.01 -- "$TRAINER" train.mt 2>/dev/null
journal median > median.got
check "the median pruner pruned some trials and not others" \
	sh -c 'grep -q pruned median.got && grep -q complete median.got'
if need_python optuna; then
	"$PY" "$REF" median curves > median.want
	check "the median pruner stops the trials Optuna's MedianPruner does, at the same epochs" \
		cmp median.got median.want
else
	skip "median pruner against Optuna's" "python3-optuna is not installed"
fi
TUNE_CURVES=curves mura-tune --study asha --space space --trials 16 --epochs 8 --sampler random \
	--pruner asha --eta 2 --min-epochs 1 --poll 0.01 -- "$TRAINER" train.mt 2>/dev/null
journal asha > asha.got
if need_python; then
	"$PY" "$REF" asha 2 1 8 curves > asha.want
	check "ASHA promotes and stops the trials a reference written from the paper does" cmp asha.got asha.want
	check "ASHA resumed paused trials from their checkpoints" grep -q "resumed after epoch" asha/trial-*/stderr
else
	skip "ASHA against its reference" "no /usr/bin/python3"
fi

# ---- kill -9 mid-trial, then continue ------------------------------------------
set -- --space space --trials 5 --epochs 3 --startup 2 --seed 7 --poll 0.02 -- "$TRAINER" train.mt
mura-tune --study whole "$@" 2>/dev/null
TUNE_SLEEP=0.2 mura-tune --study killed "$@" 2>/dev/null &
pid=$!
i=0
until [ -s killed/trial-2/log.tsv ] || [ $i -ge 300 ]; do sleep 0.05; i=$((i + 1)); done
kill -9 $pid
wait $pid 2>/dev/null
check_eq "the killed study had trial 2 running" "$(awk -F '\t' '$1 == 2 { print $2 }' killed/trials.tsv)" running
check "the killed study continues" mura-tune --study killed "$@"
check "its trial 2 went on from its checkpoint" grep -q "resumed after epoch" killed/trial-2/stderr
cut -f 1-5,7- whole/trials.tsv > whole.j
cut -f 1-5,7- killed/trials.tsv > killed.j
check "it ends with the journal of a study never killed" cmp whole.j killed.j
check_fails "a study continued with another sampler refused" 1 "sampler random \(study: tpe\)" \
	mura-tune --study whole --trials 5 --sampler random

# ---- report -----------------------------------------------------------------
best=$(sort -t "$(printf '\t')" -k3,3g whole/trials.tsv | awk -F '\t' '$2 == "complete" { print $1; exit }')
mura-tune --report --study whole > report.txt 2>report.err
check "the report names the best trial" grep -q "^best: trial $best (complete)" report.txt
check_eq "the report's table has a row per trial" "$(awk -F '\t' '$2 == "complete"' report.txt | wc -l)" 5
if command -v gnuplot >/dev/null; then
	check "the report plots the history and each parameter" \
		sh -c 'for f in history param-lr param-dropout param-batch; do
		       head -c 8 whole/$f.png | od -An -c | grep -q "P   N   G" || exit 1; done'
else
	skip "report plots" "gnuplot is not installed"
fi
