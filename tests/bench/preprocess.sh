#!/bin/sh
# preprocess.sh - how fast mura-resize turns PNGs into 320 x 320 records
# (`make bench-preprocess`; a benchmark, not a test: it prints figures and
# judges nothing).
#
#   - images/s of mura-resize on 1 core against Pillow in one process (open,
#     convert("L"), resize((320, 320), BILINEAR), tobytes()) on the same files,
#     in the same run, and the ratio (target: 2 or more);
#   - images/s of `parallel --pipe -k -N 64 -j 2 mura-resize` against its own
#     -j 1 rate (target: 1.8 or more), and MB/s of output.
# Each figure is the best of REPEAT runs (wall time; for 1 core also per CPU
# second, which a busy machine disturbs less), files in the page cache.  The images
# are drawn by mura-synth (radiograph-like, 8-bit gray, up to 512 px a side).
#
#   sh tests/bench/preprocess.sh [IMAGES]      (default 400)
set -eu
TOP=$(cd "$(dirname "$0")/../.." && pwd)
PATH=$TOP/bin:$PATH
PY=/usr/bin/python3
IMAGES=${1:-400}
REPEAT=${REPEAT:-3}
T=$(mktemp -d "${TMPDIR:-/tmp}/mura-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT

ONE=""
command -v taskset >/dev/null && ONE="taskset -c 0"

# seconds since the epoch, with nanoseconds
now() { date +%s.%N; }
# CPU seconds (user + system) used by this shell's finished children so far
# (`times` must run in the shell that waited for them, not in a $(...))
cpu() { awk 'NR == 2 { gsub(/s/, ""); split($1, u, "m"); split($2, s, "m");
	print u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$T/times"; }
# Run a command reading file $1 REPEAT times, output to $T/out; set WALL
# and CPU to the seconds of the fastest run.
best() {
	in=$1 WALL="" CPU=""
	shift
	for i in $(seq "$REPEAT"); do
		times >"$T/times"
		t0=$(now) c0=$(cpu)
		"$@" <"$in" >"$T/out" || { echo "failed: $*" >&2; exit 1; }
		times >"$T/times"
		t=$(calc "$(now) - $t0") c=$(calc "$(cpu) - $c0")
		if [ -z "$WALL" ] || [ "$(calc "$t < $WALL")" = 1 ]; then WALL=$t CPU=$c; fi
	done
}
calc() { awk "BEGIN { print $1 }"; }
rate() { awk "BEGIN { printf \"%.1f\", $1 / $2 }"; }
ratio() { awk "BEGIN { printf \"%.2f\", $1 / $2 }"; }
mbs() { awk "BEGIN { printf \"%.1f\", $1 * $2 / $3 / 1e6 }"; }

patients=$((IMAGES / 3 + 14))
echo "drawing about $IMAGES images with mura-synth ($patients patients)..."
mura-synth --out "$T/data" --seed 7 --patients "$patients" >/dev/null
cat "$T/data/MURA-v1.1/train_image_paths.csv" "$T/data/MURA-v1.1/valid_image_paths.csv" |
	head -n "$IMAGES" >"$T/list"
n=$(wc -l <"$T/list")
(cd "$T/data" && cat $(cat "$T/list")) | wc -c >"$T/bytes"
echo "$n PNG files, $(($(cat "$T/bytes") / n / 1024)) KiB each on average"
sed "s|^|$T/data/|" "$T/list" >"$T/abs"

cat >"$T/pil.py" <<'EOF'
import sys
from PIL import Image
out = sys.stdout.buffer
for line in open(sys.argv[1]):
    with Image.open(line.rstrip('\n')) as im:
        out.write(im.convert('L').resize((320, 320), Image.BILINEAR).tobytes())
EOF

echo "machine: $(nproc) cores; load average now:$(uptime | sed 's/.*average://')"
echo
best "$T/list" $ONE mura-resize --root "$T/data"
mb=$(wc -c <"$T/out")
r1=$(rate "$n" "$WALL") r1c=$(rate "$n" "$CPU")
if "$PY" -c "import PIL" 2>/dev/null; then
	best /dev/null $ONE "$PY" "$T/pil.py" "$T/abs"
	p1=$(rate "$n" "$WALL") p1c=$(rate "$n" "$CPU")
	printf '1 core:  mura-resize %8s images/s   Pillow %8s images/s   ratio %sx (target 2x)\n' \
		"$r1" "$p1" "$(ratio "$r1" "$p1")"
	printf '         per CPU second: %8s         %8s            ratio %sx\n' \
		"$r1c" "$p1c" "$(ratio "$r1c" "$p1c")"
else
	printf '1 core:  mura-resize %8s images/s   Pillow: not installed\n' "$r1"
fi
printf '         output %s MB/s (%s bytes a record)\n' \
	"$(mbs "$r1" "$mb" "$n")" "$((mb / n))"

if command -v parallel >/dev/null; then
	best "$T/list" parallel --pipe -k -N 64 -j 1 mura-resize --root "$T/data"
	j1=$(rate "$n" "$WALL") j1c=$(awk "BEGIN { printf \"%.2f\", 1000 * $CPU / $n }")
	best "$T/list" parallel --pipe -k -N 64 -j 2 mura-resize --root "$T/data"
	j2=$(rate "$n" "$WALL") j2c=$(awk "BEGIN { printf \"%.2f\", 1000 * $CPU / $n }")
	printf 'parallel --pipe -k -N 64:  -j 1 %8s images/s   -j 2 %8s images/s   ratio %sx (target 1.8x)\n' \
		"$j1" "$j2" "$(ratio "$j2" "$j1")"
	printf '         CPU per image, parallel included: -j 1 %s ms, -j 2 %s ms\n' "$j1c" "$j2c"
	printf '         output %s MB/s with -j 2\n' "$(mbs "$j2" "$mb" "$n")"
else
	echo "parallel: GNU parallel not installed"
fi
echo "load average after:$(uptime | sed 's/.*average://')"
