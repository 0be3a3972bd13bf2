#!/bin/sh
# t-loss-optim.sh - losses and optimizers against PyTorch 1.13: the loss values
# and gradients (float64 autograd) within 1e-6 relative, label smoothing and
# gradient accumulation (K backward calls of loss / K) included, the weights and state
# after six optimizer steps (lr change, frozen blocks, weight decay on and
# off) within 4 ulp (bit-exact on Debian's torch).  The cases and the
# comparison are in tests/py/loss_optim_ref.py; tests/loss_optim --run
# computes our side.
. "$(dirname "$0")/lib.sh"

if ! need_python torch torchvision numpy; then
	skip loss-optim-vs-torch "/usr/bin/python3 cannot import torch, torchvision and numpy"
	exit 0
fi
prog=$MURA_BUILD/tests/loss_optim
if [ ! -x "$prog" ]; then
	echo "FAIL: loss-optim-vs-torch: $prog is not built (make tests/loss_optim)"
	exit 1
fi
ref=$MURA_TOP/tests/py/loss_optim_ref.py
check "torch computes the cases" "$PY" "$ref" gen "$T"
check "loss_optim computes the cases" "$prog" --run "$T"
# The comparison prints its own PASS/FAIL lines, and "#" lines with the figures.
"$PY" "$ref" check "$T" || echo "FAIL: loss-optim comparison: $ref exited with $?"
