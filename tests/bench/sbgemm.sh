#!/bin/sh
# sbgemm.sh - our bf16 GEMM kernel (lib/nn/bf16.c) against oneDNN's bf16
# matmul and OpenBLAS's sgemm on a few shapes (tests/bench/sbgemm.c says
# what is measured).  Needs libdnnl-dev (not a dependency of the project:
# only this measure uses it).  A benchmark: it prints figures, judges nothing.
#
#   sh tests/bench/sbgemm.sh [M N K ...]
set -eu
TOP=$(cd "$(dirname "$0")/../.." && pwd)
[ -r /usr/include/dnnl.h ] || { echo "sbgemm: libdnnl-dev is not installed: no measure" >&2; exit 0; }
T=$(mktemp -d "${TMPDIR:-/tmp}/mura-sbgemm.XXXXXX")
trap 'rm -rf "$T"' EXIT
${MAKE:-make} -s -C "$TOP" lib/libmura.a >/dev/null
cc -O2 -std=c11 -I"$TOP/lib" -o "$T/sbgemm" "$TOP/tests/bench/sbgemm.c" "$TOP/lib/libmura.a" \
	$(pkg-config --libs vips libpng 2>/dev/null) -ldnnl -lopenblas -lpthread -lm
THREADS=${MURA_THREADS:-$(nproc)}
echo "sbgemm: load before: $(cut -d' ' -f1-3 /proc/loadavg)"
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE MURA_THREADS=$THREADS OMP_NUM_THREADS=$THREADS "$T/sbgemm" "$@"
echo "sbgemm: load after:  $(cut -d' ' -f1-3 /proc/loadavg)"
