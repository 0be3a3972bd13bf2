#!/bin/sh
# t-safetensors.sh - safetensors files between C and Python.  The Python side
# is tests/py/st_tool.py, a reader and writer written independently from the
# format's definition (the `safetensors` package is used when present), with
# torch for the dtypes; tests/safetensors --list/--copy/--f32 is the C side.
#   - tensors of every dtype (all 65536 halves and bfloat16s among them),
#     written by Python with the header in shuffled order, read by C and
#     converted to f32: bit for bit torch's .float(); integers kept as I64
#   - the files C writes: read by Python, header exactly as the reference
#     writes it (and loaded by the `safetensors` package when installed)
#   - torchvision's resnet18 state_dict: C lists every name, dtype and shape,
#     and its copy loads into resnet18 with strict=True, every tensor and the
#     outputs identical
. "$(dirname "$0")/lib.sh"

if ! need_python torch torchvision; then
	skip safetensors-vs-python "/usr/bin/python3 cannot import torch and torchvision"
	exit 0
fi
prog=$MURA_BUILD/tests/safetensors
if [ ! -x "$prog" ]; then
	echo "FAIL: safetensors-vs-python: $prog is not built (make tests/safetensors)"
	exit 1
fi
st() { "$PY" "$MURA_TOP/tests/py/st_tool.py" "$@"; }

check "python writes tensors of every dtype" st gen-dtypes "$T/dtypes.st"
check "C reads them, integers kept" "$prog" --copy "$T/dtypes.st" "$T/keep.st"
check "C reads them, all as f32" "$prog" --f32 "$T/dtypes.st" "$T/f32.st"
st check-copy "$T/dtypes.st" "$T/keep.st" keep || echo "FAIL: check-copy keep: exited with $?"
st check-copy "$T/dtypes.st" "$T/f32.st" f32 || echo "FAIL: check-copy f32: exited with $?"

if need_python safetensors; then
	check "the safetensors package loads the C-written files" "$PY" -c "
import sys, torch, safetensors.torch
sys.path.insert(0, sys.argv[1])
import st_tool
for path in sys.argv[2:]:
    a = safetensors.torch.load_file(path)
    b = st_tool.load(path)[0]
    assert sorted(a) == sorted(b), path
    for k in b:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        assert st_tool.tensor_bytes(a[k]) == st_tool.tensor_bytes(b[k]), k
" "$MURA_TOP/tests/py" "$T/keep.st" "$T/f32.st"
else
	skip "the safetensors package loads the C-written files" "/usr/bin/python3 has no safetensors module (st_tool.py's reader checked them)"
fi

check "python saves resnet18's state_dict" st gen-resnet "$T/resnet18.st"
"$prog" --list "$T/resnet18.st" | grep -v '^meta ' | sort >"$T/c.list"
st list-resnet >"$T/py.list"
check_eq "C lists resnet18's names, dtypes and shapes as torch has them" \
	"$(cksum <"$T/c.list")" "$(cksum <"$T/py.list")"
check_eq "resnet18 has 122 tensors" "$(wc -l <"$T/c.list" | tr -d ' ')" 122
check "C copies resnet18" "$prog" --copy "$T/resnet18.st" "$T/resnet18-c.st"
st check-resnet "$T/resnet18-c.st" || echo "FAIL: check-resnet: exited with $?"

check_fails "C refuses a truncated resnet18" 1 "resnet18-cut.st: header: bytes \[0, [0-9]+\) of the data buffer belong to no tensor|tensor '.*': data_offsets .* go beyond" \
	sh -c 'head -c 100000 "$1" >"$2" && "$3" --list "$2"' sh "$T/resnet18.st" "$T/resnet18-cut.st" "$prog"
