#!/bin/sh
# quality.sh - what --precision bf16 does to training quality, against fp32,
# on the demo's configuration (pipelines/demo.mk: ResNet18 from scratch at
# 64 x 64 on its generated data, 20 epochs of Adam, the 3 best models as the
# ensemble), over several seeds: each run trained, scored and reported by
# pipelines/mura.mk with the demo's variables (make -f pipelines/demo.mk
# vars), then one row per run: study-level kappa and AUC on the validation
# split and on the test split, the best validation loss and its epoch, the
# median training images/s.  A benchmark: it prints figures and judges
# nothing.  About 4 minutes a run on 2 cores.
#
#   sh tests/bench/quality.sh [SEEDS [PRECISIONS]]   default "1 2 3", "fp32 bf16"
#   QUALITY_OUT=DIR   where the runs go (default out/quality; kept, so a
#                     second call reuses the runs it finds finished)
set -eu
TOP=$(cd "$(dirname "$0")/../.." && pwd)
cd "$TOP"
SEEDS=${1:-1 2 3}
PRECS=${2:-fp32 bf16}
Q=${QUALITY_OUT:-out/quality}
MAKE=${MAKE:-make}
VARS=$($MAKE -s -f pipelines/demo.mk vars)
DEMO=$(echo "$VARS" | tr ' ' '\n' | sed -n 's/^PREP=\(.*\)\/prep$/\1/p')
if ! grep -q '\<avx512_bf16\>' /proc/cpuinfo; then
	echo "quality: this CPU has no AVX512-BF16: no bf16 runs"
	PRECS=$(echo "$PRECS" | tr ' ' '\n' | grep -vx bf16 | tr '\n' ' ')
fi
$MAKE -s -f pipelines/demo.mk "$DEMO/data/MURA-v1.1/train_image_paths.csv"
mkdir -p "$Q"
for seed in $SEEDS; do
	for prec in $PRECS; do
		o=$Q/$prec-s$seed
		start=$(date +%s)
		# shellcheck disable=SC2086  # VARS is a list of words
		$MAKE -s -f pipelines/mura.mk $VARS OUT="$o" SEED="$seed" TRAIN_FLAGS="--precision $prec" \
			"$o/report/metrics.md" "$o/report/valid.tsv" >"$o.log" 2>&1 ||
			{ echo "quality: $prec seed $seed failed: $o.log" >&2; tail -n 5 "$o.log" >&2; exit 1; }
		echo "quality: $prec seed $seed: $(($(date +%s) - start)) s ($o)"
	done
done
printf 'run\tvalid_kappa\tvalid_auc\ttest_kappa\ttest_auc\tbest_val_loss\tepoch\timages_per_s\n'
for prec in $PRECS; do
	for seed in $SEEDS; do
		o=$Q/$prec-s$seed
		printf '%s\t%s\t%s\t%s\t%s\n' "$prec-s$seed" \
			"$(awk -F '\t' '$1 == "all" { printf "%.3f\t%.3f", $6, $9 }' "$o/report/valid.tsv")" \
			"$(awk -F '\t' '$1 == "all" { printf "%.3f\t%.3f", $6, $9 }' "$o/report/metrics.tsv")" \
			"$(awk -F '\t' 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
				best == "" || $c["val_loss"] < best { best = $c["val_loss"]; e = $1 }
				END { printf "%.4f\t%d", best, e }' "$o/log.tsv")" \
			"$(awk -F '\t' 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next } { print $c["images_per_s"] }' \
				"$o/log.tsv" | sort -n | awk '{ v[NR] = $1 } END { printf "%.1f", v[int((NR + 1) / 2)] }')"
	done
done
