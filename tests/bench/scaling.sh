#!/bin/sh
# scaling.sh - data-parallel mura-train (lib/dist.c) on this machine: images
# per second of a training step of densenet169 and resnet50 at 320 x 320,
# global batch 8, as one process of 2 threads and as 2 processes of 1 thread
# under mpirun; for the job of 2, the time each process waits on the
# gradients' allreduce per step (after backward: what the overlap did not
# hide) and the bytes it sums per step.  A benchmark: it prints figures and
# judges nothing.
#
#   sh tests/bench/scaling.sh [STEPS]     (default 6 timed steps after 1 warm-up)
#   ARCHS=resnet50 sh tests/bench/scaling.sh   one architecture
#   BUCKETS="1 25 100" sh tests/bench/scaling.sh   the job of 2 once per
#                                   --bucket-mb (default: 25, mura-train's)
#
# The rates are mura-train's own (its --progress lines, one per step): the
# steps after the first, from the difference of the elapsed times the lines
# give.  OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset, as a user's machine
# runs.  2 processes of 1 thread on 2 cores against 1 of 2 threads measures
# what the job of several costs against threads, not what a second machine
# brings: the README's "Training on several machines" projects that from
# these figures.
set -eu
TOP=$(cd "$(dirname "$0")/../.." && pwd)
STEPS=${1:-6}
BATCH=8
SIZE=320
T=$(mktemp -d "${TMPDIR:-/tmp}/mura-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT
PATH="$TOP/bin:$PATH"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_orte_tmpdir_base="$T"
unset MURA_THREADS MURA_DIST_CHECK

if ! command -v mpirun >/dev/null 2>&1 || ! ldd "$TOP/bin/mura-train" | grep -q libmpi; then
	echo "scaling: SKIPPED: no mpirun, or mura-train built without MPI (make deps installs openmpi-bin, libopenmpi-dev)"
	exit 0
fi
need=$(((STEPS + 1) * BATCH))  # one epoch of STEPS + 1 whole batches
mura-synth --out "$T/s" --patients 60 --seed 5 >/dev/null
head -n $need "$T/s/MURA-v1.1/train_image_paths.csv" | mura-resize --root "$T/s" --size $SIZE >"$T/train.mt"

echo "scaling: batch $BATCH (global), ${SIZE}x$SIZE, $STEPS steps after 1 warm-up; OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset"
echo "scaling: load before: $(cut -d' ' -f1-3 /proc/loadavg)"
# run NAME NP THREADS ARCH BUCKET_MB: one epoch; prints "images/s wait_s
# bytes".  One process runs without mpirun, which would bind it to one core.
run() {
	n=$2 th=$3 arch=$4
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE MURA_TRAIN_PROGRESS_SECONDS=0 MURA_DIST_STATS=1 \
		$([ "$n" = 1 ] || echo mpirun -np "$n") mura-train --arch "$arch" --augment none --class-weights none --optimizer sgd \
		--momentum 0.9 --lr 0.001 --batch $BATCH --epochs 1 --threads "$th" --progress --bucket-mb "$5" \
		--out "$T/$1.safetensors" "$T/train.mt" 2>"$T/$1.err" >/dev/null || {
		sed 's/^/    /' "$T/$1.err" | tail -n 5 >&2; echo "- - -"; return; }
	# "step K/N, ..., R img/s": R = K * BATCH / elapsed, so elapsed = K * BATCH / R
	awk -v b=$BATCH -v steps=$STEPS '
		/: step [0-9]+\/[0-9]+,/ && match($0, /[0-9.]+ img\/s/) { split($4, k, "/");
			r = substr($0, RSTART, RLENGTH) + 0; if (r > 0) t[k[1] + 0] = k[1] * b / r }
		/ buckets / { for (i = 1; i <= NF; i++) { if ($i == "bytes") bytes = $(i - 1);
			if ($i == "waiting") { wait += $(i - 2); nw++ } } }
		END { rate = t[1] && t[steps + 1] > t[1] ? steps * b / (t[steps + 1] - t[1]) : 0;
			printf "%.2f %.4f %.0f\n", rate, nw ? wait / nw : 0, bytes }' "$T/$1.err"
}
printf '%-52s %10s %14s %15s\n' "training step (images/s)" "images/s" "wait/step" "MiB summed/step"
for arch in ${ARCHS:-densenet169 resnet50}; do
	for cfg in "1 2 25" $(for b in ${BUCKETS:-25}; do echo "2,1,$b"; done); do
		set -- $(echo "$cfg" | tr , ' ')
		r=$(run "$arch-$1-$3" "$1" "$2" "$arch" "$3")
		set -- "$@" $r
		if [ "$1" = 1 ]; then
			printf '%-52s %10s %14s %15s\n' "$arch, 1 process x $2 threads" "$4" - -
		else
			printf '%-52s %10s %12s s %15s\n' "$arch, $1 processes x $2 thread, buckets $3 MiB" "$4" "$5" \
				"$(awk -v b="$6" 'BEGIN { printf "%.1f", b / 1048576 }')"
		fi
	done
done
echo "scaling: load after:  $(cut -d' ' -f1-3 /proc/loadavg)"
echo "scaling: wait/step: a process's time blocked on the allreduce after its backward, per step, the mean over processes"
