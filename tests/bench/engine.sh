#!/bin/sh
# engine.sh - the engine (lib/nn) against PyTorch on the same work, measured
# in the same run: images per second of inference and of one training step
# (zero_grad, forward, BCE on logits, backward, SGD step with momentum) for
# densenet169, resnet50 and the ResNet50 + ViT hybrid (its default shape:
# stage 4, D 256, L 4, H 8, R 4) at 320 x 320, batch 8.  A benchmark: it prints
# figures and judges nothing.
#
#   sh tests/bench/engine.sh [ITERS]       (default 5 timed rounds after 1 warm-up)
#   BENCH_ARCHS=resnet50 sh tests/bench/engine.sh   only those networks
#   MURA_PROFILE=1 sh tests/bench/engine.sh   adds our time per kind of
#   (make bench PROFILE=1)                    operation, its GFLOP/s and their
#                                             share of the sgemm peak (stderr)
#
# A ceiling column: nn_bench counts the arithmetic of our matrix products per
# image (convolutions, linear layers, attention) and measures the machine's
# peak rate for it (the larger of a loop of independent 512-bit FMAs, or
# vdpbf16ps for bf16, on every thread, and our GEMM on 2048^3: where there is
# AMX, the GEMM); peak / arithmetic is the images/s no program doing the same
# products could pass on this machine, and "at most" that over PyTorch's
# figure: the largest ratio a target may ask for here.
#
# PyTorch runs in its best documented configuration: for each network a
# short probe (one warm-up and one round of each kind of work) under each
# tuned allocator of alloc.sh (tcmalloc, jemalloc preloaded; glibc's malloc
# tuned), then the full measure under the fastest, named in the table; its
# figure with the default allocator stays as an extra column.  Where the CPU
# has AVX512-BF16, bf16 rows: PyTorch under CPU autocast (bfloat16), with
# that network's allocator.
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
. "$TOP/tests/bench/alloc.sh"
PY=/usr/bin/python3
ITERS=${1:-5}
BATCH=8
SIZE=320
THREADS=${MURA_THREADS:-$(nproc)}
export MURA_THREADS=$THREADS
T=$(mktemp -d "${TMPDIR:-/tmp}/mura-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT
ARCHS=${BENCH_ARCHS:-densenet169 resnet50 hybrid}
PRECS=fp32
have_bf16 && PRECS="fp32 bf16"

${MAKE:-make} -s -C "$TOP" tests/nn_bench >/dev/null
have_torch=1
"$PY" -c 'import torch, torchvision' 2>/dev/null || have_torch=0

# torch ALLOC ARCH ITERS PREC: engine.py's lines under that allocator
torch() {
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(alloc_env "$1") "$PY" "$TOP/tests/bench/engine.py" \
		"$2" "$BATCH" "$SIZE" "$3" "$THREADS" "$4"
}

echo "engine: batch $BATCH, ${SIZE}x$SIZE, $THREADS thread(s), median of $ITERS rounds after a warm-up"
echo "engine: both sides run with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (env -u); PyTorch with torch.set_num_threads($THREADS)"
have_bf16 || echo "engine: this CPU has no AVX512-BF16: no bf16 rows"
echo "engine: load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for arch in $ARCHS; do
	for prec in $PRECS; do
		env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$TOP/tests/nn_bench" "$arch" "$BATCH" "$SIZE" "$ITERS" \
			both "$prec" >"$T/ours.$arch.$prec" 2>"$T/profile.$arch.$prec" ||
			{ [ "$prec" = bf16 ] || { cat "$T/profile.$arch.$prec" >&2; exit 1; }
			  echo "engine: $arch: no bf16 figure of ours: $(tail -n 1 "$T/profile.$arch.$prec")"
			  rm -f "$T/ours.$arch.$prec" "$T/profile.$arch.$prec"; }
		[ -s "$T/profile.$arch.$prec" ] && sed "s/^/$arch $prec /" "$T/profile.$arch.$prec" >&2
	done
	[ "$have_torch" = 1 ] || continue
	best="" bs=""
	for a in $(alloc_tuned); do
		s=$(torch "$a" "$arch" 1 fp32 | awk '{ s += $6 } END { print s }')
		echo "engine: $arch: PyTorch probe under $a: $s s (inference + training step)"
		if [ -z "$best" ] || awk -v a="$s" -v b="$bs" 'BEGIN { exit !(a < b) }'; then
			best=$a bs=$s
		fi
	done
	echo "$best" >"$T/alloc.$arch"
	torch "$best" "$arch" "$ITERS" fp32 >"$T/torch.$arch.fp32"
	torch default "$arch" "$ITERS" fp32 >"$T/torchdef.$arch"
	have_bf16 && torch "$best" "$arch" "$ITERS" bf16 >"$T/torch.$arch.bf16"
done
echo "engine: load after:  $(cut -d' ' -f1-3 /proc/loadavg)"

# field KIND FILE: "IMAGES_PER_S RSS_MB [GFLOP PEAK]" of that kind's line, or nothing
field() { [ -f "$2" ] && awk -v k="$1" '$1 == k { print $5, $7, $9, $10 }' "$2" || true; }

printf '%-34s %9s %9s %7s %-11s %9s %9s %9s %9s %7s\n' "work (images/s)" "mura" "PyTorch" "ratio" "allocator" \
	"default" "mura RSS" "torch RSS" "ceiling" "at most"
for arch in $ARCHS; do
	for prec in $PRECS; do
		for kind in infer train; do
			case $kind in infer) what="$arch inference" ;; *) what="$arch training step" ;; esac
			[ "$prec" = bf16 ] && what="$what, bf16"
			ours=$(field $kind "$T/ours.$arch.$prec")
			theirs=$(field $kind "$T/torch.$arch.$prec")
			def=""
			[ "$prec" = fp32 ] && def=$(field $kind "$T/torchdef.$arch" | cut -d' ' -f1)
			alloc=$(cat "$T/alloc.$arch" 2>/dev/null || echo -)
			echo "$ours|$theirs|$def" | awk -F'|' -v w="$what" -v al="$alloc" '{
				no = split($1, o, " "); nt = split($2, t, " ");
				ceil = no >= 4 && o[3] > 0 ? o[4] / o[3] : 0;
				printf "%-34s %9s %9s %7s %-11s %9s %6s MB %6s MB %9s %7s\n", w,
				    no ? sprintf("%.2f", o[1]) : "-", nt ? sprintf("%.2f", t[1]) : "-",
				    no && nt ? sprintf("%.2fx", o[1] / t[1]) : "-", nt ? al : "-",
				    $3 != "" ? sprintf("%.2f", $3) : "-", no ? o[2] : "-", nt ? t[2] : "-",
				    ceil ? sprintf("%.2f", ceil) : "-", ceil && nt ? sprintf("%.2fx", ceil / t[1]) : "-" }'
		done
	done
done
[ "$have_torch" = 1 ] || echo "engine: PyTorch (python3-torch, python3-torchvision) is not installed: no comparison"
echo "engine: PyTorch's column runs under the allocator named, the fastest of its probe; \"default\" is PyTorch with glibc's malloc as it starts"
echo "engine: RSS is each process's peak after that work (inference runs first, so a training figure covers both)"
echo "engine: ceiling is the images/s of our work if every matrix product (convolutions, linear layers, attention: nn_bench's"
echo "engine: GFLOP per image) ran at this machine's peak and nothing else took time; \"at most\" is the ratio to PyTorch that allows"
for prec in $PRECS; do
	cat "$T"/ours.*."$prec" 2>/dev/null | awk -v p="$prec" 'NF >= 10 { print "engine: this machine'"'"'s peak, " p ": " $10 \
		" GFLOP/s, the larger of its vector units'"'"' and our GEMM'"'"'s on 2048^3 (nn_bench)"; exit }'
done
