#!/bin/sh
# t-simd.sh - the engine's kernels compiled for lesser instruction sets
# (lib/nn/conv3.c: AVX-512, AVX2 + FMA, plain vectors) give what the best
# one gives: tests/nn_grad (gradients against finite differences, forward
# against a direct sum) and two whole networks against PyTorch
# (tests/py/parity_models.py) again with MURA_SIMD naming each lesser
# kernel.  The default runs cover the best kernel this CPU has.  Where
# the CPU has AMX, tests/nn_bf16 (the bf16 GEMM, convolutions and folded
# batch norm) runs again with MURA_SIMD=avx512, on the vector kernel.
. "$(dirname "$0")/lib.sh"

DRIVER="$MURA_BUILD/tests/nn_grad"
if [ ! -x "$DRIVER" ]; then
	echo "FAIL: simd: $DRIVER is not built (make tests/nn_grad)"
	exit 1
fi
for isa in avx2 generic; do
	if [ "$isa" = avx2 ] && ! grep -qw avx2 /proc/cpuinfo 2>/dev/null; then
		skip "nn_grad with MURA_SIMD=avx2" "this CPU has no AVX2"
		continue
	fi
	MURA_SIMD=$isa "$DRIVER" >"$T/out" 2>&1
	rc=$?
	sed -n "s/^\(PASS\|FAIL\|SKIPPED\): /\1: MURA_SIMD=$isa: /p" "$T/out"
	n=$(grep -c '^PASS' "$T/out")
	[ "$rc" = 0 ] && [ "$n" -gt 50 ] ||
		echo "FAIL: MURA_SIMD=$isa: nn_grad exited with $rc after $n passes"
	if need_python torch torchvision numpy && [ -x "$MURA_BUILD/tests/nn_model" ]; then
		MURA_SIMD=$isa MURA_THREADS=2 "$PY" "$MURA_TOP/tests/py/parity_models.py" \
			"$MURA_BUILD/tests/nn_model" "$T" densenet121:fc:2:64:64 resnet18:conv:3:67:45 >"$T/par" 2>&1
		rc=$?
		sed -n "s/^\(PASS\|FAIL\|SKIPPED\): /\1: MURA_SIMD=$isa: /p" "$T/par"
		[ "$rc" = 0 ] || echo "FAIL: MURA_SIMD=$isa: parity_models.py exited with status $rc"
	else
		skip "MURA_SIMD=$isa: parity with PyTorch" "/usr/bin/python3 lacks torch, torchvision or numpy, or tests/nn_model is not built"
	fi
done

if grep -qw amx_bf16 /proc/cpuinfo 2>/dev/null && [ -x "$MURA_BUILD/tests/nn_bf16" ]; then
	MURA_SIMD=avx512 "$MURA_BUILD/tests/nn_bf16" >"$T/bf" 2>&1
	rc=$?
	sed -n "s/^\(PASS\|FAIL\|SKIPPED\): /\1: MURA_SIMD=avx512: /p" "$T/bf"
	grep -q '^# sbgemm runs on AVX512-BF16 vectors' "$T/bf" ||
		echo "FAIL: MURA_SIMD=avx512: nn_bf16 did not run the vector kernel"
	[ "$rc" = 0 ] || echo "FAIL: MURA_SIMD=avx512: nn_bf16 exited with status $rc"
else
	skip "nn_bf16 with MURA_SIMD=avx512" "this CPU has no AMX, so the default run covered the vector kernel"
fi
