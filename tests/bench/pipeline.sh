#!/bin/sh
# pipeline.sh - the whole tools against PyTorch on the same work, measured in
# the same run: one mura-train epoch of the `make demo` configuration
# (pipelines/demo.mk: resnet18 from scratch, 64 x 64, batch 32, Adam 1e-3,
# per-type class weights, flips and rotations up to 10 degrees), then
# mura-score with the model it saved (batch 16), on the u8 records of a
# generated data set.  PyTorch's side is tests/bench/pipeline.py.  A
# benchmark: it prints figures and judges nothing.
#
#   sh tests/bench/pipeline.sh [PATIENTS]     (default 600 generated patients, as
#                                             make demo: 1655 records)
#
# PyTorch runs under each tuned allocator of alloc.sh (tcmalloc, jemalloc,
# glibc's malloc tuned) and the fastest counts, named in the table; its
# figure with the default allocator is an extra column.
# Ours is the tool's wall time, start-up and reading included; PyTorch's
# runs from reading the records to the last batch (imports excluded).  Both
# sides: $MURA_THREADS threads (default 2), OPENBLAS_CORETYPE and
# OPENBLAS_L2_SIZE unset, as in engine.sh; the load average before and
# after is printed, and only the ratios of one run count.
set -eu
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/bench/alloc.sh"
PY=/usr/bin/python3
PATIENTS=${1:-600}
THREADS=${MURA_THREADS:-2}
export MURA_THREADS=$THREADS
T=$(mktemp -d "${TMPDIR:-/tmp}/mura-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT
B=$TOP/bin

${MAKE:-make} -s -C "$TOP" bin/mura-synth bin/mura-resize bin/mura-train bin/mura-score >/dev/null
have_torch=1
"$PY" -c 'import torch, torchvision' 2>/dev/null || have_torch=0

"$B/mura-synth" --out "$T/d" --patients "$PATIENTS" >/dev/null
"$B/mura-resize" --size 64 --root "$T/d" <"$T/d/MURA-v1.1/train_image_paths.csv" >"$T/x.mt"
n=$("$PY" -c 'import sys; sys.path.insert(0, sys.argv[1]); from mt import read_mura; print(len(read_mura(sys.argv[2])))' \
	"$TOP/tests/py" "$T/x.mt" 2>/dev/null || grep -c . "$T/d/MURA-v1.1/train_image_paths.csv")

now() { date +%s.%N; }
run() { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$@"; }

echo "pipeline: $n u8 64x64 records ($PATIENTS generated patients), $THREADS thread(s), one run each"
echo "pipeline: both sides run with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (env -u); PyTorch with torch.set_num_threads($THREADS)"
echo "pipeline: load before: $(cut -d' ' -f1-3 /proc/loadavg)"
t0=$(now)
run "$B/mura-train" --arch resnet18 --epochs 1 --batch 32 --optimizer adam --lr 0.001 \
	--class-weights per-type --augment flip=0.5,rotate=10 --out "$T/m.safetensors" "$T/x.mt" >/dev/null 2>"$T/train.err" ||
	{ cat "$T/train.err" >&2; exit 1; }
t1=$(now)
run "$B/mura-score" --model "$T/m.safetensors" --batch 16 "$T/x.mt" >"$T/scores" 2>"$T/score.err" ||
	{ cat "$T/score.err" >&2; exit 1; }
t2=$(now)
if [ "$have_torch" = 1 ]; then
	for a in default $(alloc_tuned); do
		for kind in train score; do
			run $(alloc_env "$a") "$PY" "$TOP/tests/bench/pipeline.py" $kind "$T/x.mt" "$THREADS" |
				sed "s/^/$a /" >>"$T/torch"
		done
	done
fi
echo "pipeline: load after:  $(cut -d' ' -f1-3 /proc/loadavg)"

# torch KIND: "IMAGES_PER_S SECONDS ALLOCATOR" of the fastest tuned run, then
# the default's images/s
torch() {
	awk -v k="$1" '$2 == k && $1 != "default" && (best == "" || $5 > best) { best = $5; s = $4; a = $1 }
	               $2 == k && $1 == "default" { d = $5 }
	               END { if (best != "") print best, s, a, d }' "$T/torch"
}

printf '%-34s %9s %9s %7s %-11s %9s %8s %8s\n' "work (images/s)" "mura" "PyTorch" "ratio" "allocator" \
	"default" "mura s" "torch s"
for kind in train score; do
	case $kind in
	train) what="resnet18 demo epoch (64 px)"; s=$(echo "$t1 $t0" | awk '{ print $1 - $2 }') ;;
	*) what="mura-score resnet18 (64 px)"; s=$(echo "$t2 $t1" | awk '{ print $1 - $2 }') ;;
	esac
	theirs=""
	[ "$have_torch" = 1 ] && theirs=$(torch $kind)
	echo "$n $s|$theirs" | awk -F'|' -v w="$what" '{
		split($1, o, " "); m = split($2, t, " "); r = o[1] / o[2];
		if (m == 4)
			printf "%-34s %9.2f %9.2f %6.2fx %-11s %9.2f %8.2f %8.2f\n", w, r, t[1], r / t[1], t[3], t[4], o[2], t[2];
		else
			printf "%-34s %9.2f %9s %7s %-11s %9s %8.2f %8s\n", w, r, "-", "-", "-", "-", o[2], "-" }'
done
[ "$have_torch" = 1 ] || echo "pipeline: PyTorch (python3-torch, python3-torchvision) is not installed: no comparison"
echo "pipeline: PyTorch's column is the fastest of its runs under the allocators named in tests/bench/alloc.sh; \"default\" is glibc's malloc as it starts"
