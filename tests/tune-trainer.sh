#!/bin/sh
# tune-trainer.sh - a stand-in for mura-train in tests/t-tune.sh: it takes
# the options mura-tune gives a trial and writes, one epoch at a time, a log
# whose val_loss is a known function of them, with mura-train's files:
#   --out M.safetensors   M.ckpt.safetensors holds the epochs done (a resumed
#                         run goes on from there), M.safetensors the last
#   --log FILE            "epoch<TAB>val_loss", rewritten (tmp + rename) each epoch
#   --epochs E, --resume CKPT, --lr X, --dropout P, --batch N; others ignored
# val_loss after epoch e of E is f + 0.5 / e - 0.5 / E, where
#   f = 1 + (log10(lr) + 3)^2 / 4 + 2 (dropout - 0.2)^2 + {8: 0.05, 16: 0, 32: 0.1}[batch],
# or, with TUNE_CURVES=FILE, line N + 1 of FILE (whitespace-separated values per
# epoch) for the trial whose --out lies in a folder trial-N.
# TUNE_SLEEP=S: seconds per epoch (0).  A signal ends it at once, as a second
# signal ends mura-train: the checkpoint of the last epoch stays.
set -eu
out= log= epochs=10 resume= lr=0.001 dropout=0.2 batch=16
while [ $# -gt 0 ]; do
	case $1 in
	--out) out=$2; shift ;;
	--log) log=$2; shift ;;
	--epochs) epochs=$2; shift ;;
	--resume) resume=$2; shift ;;
	--lr) lr=$2; shift ;;
	--dropout) dropout=$2; shift ;;
	--batch) batch=$2; shift ;;
	--*) [ $# -gt 1 ] && case $2 in -*) ;; *) shift ;; esac ;;
	esac
	shift
done
[ -n "$out" ] && [ -n "$log" ] || { echo "tune-trainer: --out and --log are required" >&2; exit 2; }
ckpt=${out%.safetensors}.ckpt.safetensors
done_=0
if [ -n "$resume" ]; then
	done_=$(cat "$resume") || exit 1
	echo "tune-trainer: resumed after epoch $done_" >&2
fi
trial=${out%/*}; trial=${trial##*/trial-}
e=$done_
while [ "$e" -lt "$epochs" ]; do
	e=$((e + 1))
	[ "${TUNE_SLEEP:-0}" = 0 ] || sleep "$TUNE_SLEEP"
	awk -v lr="$lr" -v d="$dropout" -v b="$batch" -v E="$epochs" -v e="$e" -v n="$trial" \
	    -v curves="${TUNE_CURVES:-}" '
	BEGIN {
		print "epoch\tval_loss"
		for (k = 1; k <= e; k++) {
			if (curves != "") {
				while ((getline line < curves) > 0 && i++ < n) ;
				split(line, c); v = c[k]; close(curves); i = 0
			} else {
				f = 1 + (log(lr) / log(10) + 3) ^ 2 / 4 + 2 * (d - 0.2) ^ 2 + (b == 8 ? 0.05 : b == 32 ? 0.1 : 0)
				v = f + 0.5 / k - 0.5 / E
			}
			printf "%d\t%.10g\n", k, v
		}
	}' > "$log.tmp.$$"
	mv "$log.tmp.$$" "$log"
	# each written to a temporary name and renamed, as mura-train does: a
	# SIGTERM between the truncation and the write of a plain "echo > ckpt"
	# left an empty checkpoint, resumed as "after epoch " (a CI failure)
	echo "$e" > "$ckpt.tmp.$$" && mv "$ckpt.tmp.$$" "$ckpt"
	echo "$e" > "$out.tmp.$$" && mv "$out.tmp.$$" "$out"
done
