#!/bin/sh
# t-parity.sh - lib/nn against PyTorch itself: torchvision's DenseNet
# 121/169/201 and ResNet 18/34/50, with the fc head, and two of them with
# the convolutional head (against a torch.nn module of model.h's design),
# at small sizes, one of them odd and not square.  tests/py/parity_models.py
# says what is compared and with which tolerance; tests/nn_model (its
# "parity" mode) is the C side.  SKIPPED without torch and torchvision.
# Then three cases in bf16 mixed precision against PyTorch's CPU autocast
# (--precision bf16; parity_models.py's run_case_bf16 says what and how
# closely), SKIPPED where the CPU has no AVX512-BF16.
. "$(dirname "$0")/lib.sh"

if ! need_python torch torchvision numpy; then
	skip "parity with PyTorch" "/usr/bin/python3 lacks torch, torchvision or numpy"
	exit 0
fi
DRIVER="$MURA_BUILD/tests/nn_model"
if [ ! -x "$DRIVER" ]; then
	echo "FAIL: parity: $DRIVER is not built (make tests/nn_model)"
	exit 1
fi
# Two threads here, so the engine's split loops and GEMMs run as in use;
# PyTorch runs on one (parity_models.py says why).
MURA_THREADS=2 "$PY" "$MURA_TOP/tests/py/parity_models.py" "$DRIVER" "$T" \
	densenet121:fc:4:64:64 \
	densenet121:conv:2:64:64 \
	resnet18:fc:4:64:64 \
	resnet18:conv:3:67:45 \
	densenet169:fc:2:64:64 \
	densenet201:fc:2:64:64 \
	resnet34:fc:2:64:64 \
	resnet50:fc:2:64:64 \
	2>&1 || echo "FAIL: parity: parity_models.py exited with status $?"
if grep -q '\<avx512_bf16\>' /proc/cpuinfo; then
	MURA_THREADS=2 "$PY" "$MURA_TOP/tests/py/parity_models.py" "$DRIVER" "$T" \
		densenet121:fc:2:64:64:bf16 \
		resnet18:conv:3:67:45:bf16 \
		resnet50:fc:2:64:64:bf16 \
		2>&1 || echo "FAIL: parity bf16: parity_models.py exited with status $?"
else
	skip "parity bf16 with PyTorch autocast" "this CPU has no AVX512-BF16 (grep avx512_bf16 /proc/cpuinfo)"
fi
