#!/bin/sh
# t-cam.sh - mura-cam: Grad-CAM against PyTorch's autograd on torchvision's
# models (tests/py/cam_ref.py: maps, probabilities, peaks, at the default and
# at named layers, one input odd and not square); a model whose evidence is
# known by construction, its peaks, the pointing game and the overlays; and
# its errors.  The PyTorch part is SKIPPED without torch and torchvision.
. "$(dirname "$0")/lib.sh"

printf 'path,kind,x0,y0,x1,y1\na.png,fracture,5,5,3,9\n' > "$T/bad.csv"
check_fails "no model" 2 "--model FILE is required" mura-cam
check_fails "unknown method" 2 "unknown method 'grad'" mura-cam --model x --method grad
check_fails "two tables on stdout" 2 "cannot all go to stdout" mura-cam --model x --tsv -
check_fails "missing model" 1 "^mura-cam: .*nothere" mura-cam --model "$T/nothere" </dev/null

if ! need_python torch torchvision numpy PIL; then
	skip "mura-cam against PyTorch" "/usr/bin/python3 lacks torch, torchvision, numpy or PIL"
	exit 0
fi
MURA_THREADS=2 "$PY" "$MURA_TOP/tests/py/cam_ref.py" "$MURA_BUILD/bin/mura-cam" "$T" \
	resnet18:layer4:3:64:64 \
	resnet18:layer2:3:67:45 \
	resnet50:layer3.2:2:64:64 \
	densenet121:features.norm5:2:64:64 \
	densenet121:features.denseblock3:2:64:64 \
	densenet121:features.transition1:2:64:64 \
	construct \
	2>&1 || echo "FAIL: cam_ref.py exited with status $?"

# The files cam_ref.py left: the resnet18 and the construction's stream.
M="$T/resnet18.safetensors" S="$T/construct.mt"
check_fails "unknown layer" 1 "no layer 'layer9' in resnet18: layer1 to layer4" \
	mura-cam --model "$M" --arch resnet18 --layer layer9 "$S"
check_fails "CAM of another layer" 1 "CAM is of the backbone's last layer \\(layer4\\), not layer2" \
	mura-cam --model "$M" --arch resnet18 --method cam --layer layer2 "$S"
check_fails "bad annotations" 1 "bad.csv: line 2: not path,kind" \
	mura-cam --model "$M" --arch resnet18 --annotations "$T/bad.csv" --out "$T/m.mt" "$S"
check "no maps left by a failure" test ! -e "$T/m.mt"
# CAM and Grad-CAM at the last layer of a GAP + linear head: the same map
# up to the factor 1 / (h w) (dlogit/dA_c = w_c / (h w) there)
mura-cam --model "$M" --arch resnet18 --method cam --out "$T/cam.mt" "$S" 2>/dev/null
mura-cam --model "$M" --arch resnet18 --out "$T/grad.mt" "$S" 2>/dev/null
check "CAM is Grad-CAM times h w at the last layer" "$PY" -c "
import sys; sys.path.insert(0, '$MURA_TOP/tests/py'); import mt, numpy as np
a = np.stack([r['x'] for r in mt.read_mura('$T/cam.mt')]); b = np.stack([r['x'] for r in mt.read_mura('$T/grad.mt')])
assert a.shape == b.shape == (5, 1, 256, 256) and a.max() > 0
assert np.abs(a - 64 * b).max() <= 1e-5 * a.max(), np.abs(a - 64 * b).max() / a.max()"
