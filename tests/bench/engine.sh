#!/bin/sh
# engine.sh - the engine (lib/nn) against PyTorch on the same work, measured
# in the same run: images per second of inference and of one training step
# (zero_grad, forward, BCE on logits, backward, SGD step with momentum) for
# densenet169, resnet50 and the ResNet50 + ViT hybrid (its default shape:
# stage 4, D 256, L 4, H 8, R 4) at 320 x 320, batch 8.  A benchmark: it prints
# figures and judges nothing.
#
#   sh tests/bench/engine.sh [ITERS]       (default 5 timed rounds after 1 warm-up)
#   MURA_PROFILE=1 sh tests/bench/engine.sh   adds our time per kind of
#   (make bench PROFILE=1)                    operation, its GFLOP/s and their
#                                             share of the sgemm peak (stderr)
#
# Both sides: the same thread count ($MURA_THREADS, else every core: our
# pool, torch.set_num_threads), and OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE
# unset (this machine's environment pins OpenBLAS to its Haswell kernels,
# which run sgemm at about 60% of the speed it picks for itself).  Each
# figure is the median round; figures drift by 20% between runs on a shared
# machine, so only the ratios of one run count.  The load average before
# and after is printed: a busy machine makes every figure meaningless.
set -eu
TOP=$(cd "$(dirname "$0")/../.." && pwd)
PY=/usr/bin/python3
ITERS=${1:-5}
BATCH=8
SIZE=320
THREADS=${MURA_THREADS:-$(nproc)}
export MURA_THREADS=$THREADS
T=$(mktemp -d "${TMPDIR:-/tmp}/mura-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT

${MAKE:-make} -s -C "$TOP" tests/nn_bench >/dev/null
have_torch=1
"$PY" -c 'import torch, torchvision' 2>/dev/null || have_torch=0

echo "engine: batch $BATCH, ${SIZE}x$SIZE, $THREADS thread(s), median of $ITERS rounds after a warm-up"
echo "engine: both sides run with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (env -u); PyTorch with torch.set_num_threads($THREADS)"
echo "engine: load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for arch in densenet169 resnet50 hybrid; do
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$TOP/tests/nn_bench" "$arch" "$BATCH" "$SIZE" "$ITERS" \
		>"$T/ours.$arch" 2>"$T/profile.$arch"
	[ -s "$T/profile.$arch" ] && sed "s/^/$arch /" "$T/profile.$arch" >&2
	if [ "$have_torch" = 1 ]; then
		env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$PY" "$TOP/tests/bench/engine.py" \
			"$arch" "$BATCH" "$SIZE" "$ITERS" "$THREADS" >"$T/torch.$arch"
	fi
done
echo "engine: load after:  $(cut -d' ' -f1-3 /proc/loadavg)"

printf '%-34s %10s %10s %7s %11s %11s\n' "work (images/s)" "mura" "PyTorch" "ratio" "mura RSS" "torch RSS"
for arch in densenet169 resnet50 hybrid; do
	for kind in infer train; do
		case $kind in infer) what="$arch inference" ;; *) what="$arch training step" ;; esac
		ours=$(awk -v k=$kind '$1 == k { print $5, $7 }' "$T/ours.$arch")
		theirs=""
		[ "$have_torch" = 1 ] && theirs=$(awk -v k=$kind '$1 == k { print $5, $7 }' "$T/torch.$arch")
		echo "$ours|$theirs" | awk -F'|' -v w="$what" '{
			split($1, o, " "); n = split($2, t, " ");
			if (n == 2)
				printf "%-34s %10.2f %10.2f %6.2fx %8d MB %8d MB\n", w, o[1], t[1], o[1] / t[1], o[2], t[2];
			else
				printf "%-34s %10.2f %10s %7s %8d MB %11s\n", w, o[1], "-", "-", o[2], "-" }'
	done
done
[ "$have_torch" = 1 ] || echo "engine: PyTorch (python3-torch, python3-torchvision) is not installed: no comparison"
echo "engine: RSS is each process's peak after that work (inference runs first, so a training figure covers both)"
