# lib.sh - helpers for the shell tests (sourced, not run).
#
#   check NAME CMD...      PASS if CMD succeeds, else FAIL
#   check_eq NAME GOT WANT PASS if the two strings are equal
#   check_fails NAME STATUS PATTERN CMD...
#                          CMD must exit with STATUS, print nothing on stdout and
#                          a line matching PATTERN (grep -E) on stderr
#   skip NAME WHY          SKIPPED, counted and shown loudly by run.sh
#   need_python MODULE...  true if /usr/bin/python3 imports them all
#   tensors FILE           checksum of a safetensors file's data bytes (after
#                          its header: the tensors without the metadata)
set -u
: "${MURA_TOP:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${MURA_BUILD:=$MURA_TOP}"   # where bin/ and the test programs were built
PATH="$MURA_BUILD/bin:$PATH"
PY=/usr/bin/python3
T=$(mktemp -d "${TMPDIR:-/tmp}/mura-test.XXXXXX")
trap 'rm -rf "$T"' EXIT

check() {
	name=$1; shift
	if "$@" >"$T/.out" 2>"$T/.err"; then
		echo "PASS: $name"
	else
		echo "FAIL: $name: '$*' exited with $?"; sed 's/^/    /' "$T/.err" | head -n 20
	fi
}

check_eq() {
	if [ "$2" = "$3" ]; then
		echo "PASS: $1"
	else
		echo "FAIL: $1: got '$2', want '$3'"
	fi
}

check_fails() {
	name=$1 want=$2 pat=$3; shift 3
	"$@" >"$T/.out" 2>"$T/.err"
	rc=$?
	if [ "$rc" != "$want" ]; then
		echo "FAIL: $name: exit status $rc, want $want"; sed 's/^/    /' "$T/.err" | head -n 5
	elif [ -s "$T/.out" ]; then
		echo "FAIL: $name: wrote $(wc -c <"$T/.out") bytes to stdout on failure"
	elif ! grep -Eq -- "$pat" "$T/.err"; then
		echo "FAIL: $name: stderr does not match /$pat/:"; sed 's/^/    /' "$T/.err" | head -n 5
	else
		echo "PASS: $name"
	fi
}

skip() {
	echo "SKIPPED: $1: $2"
}

need_python() {
	for m in "$@"; do
		"$PY" -c "import $m" 2>/dev/null || return 1
	done
}

tensors() {
	n=$(od -An -t u8 -N 8 "$1" | tr -d ' ')
	tail -c +$((9 + n)) "$1" | cksum
}
