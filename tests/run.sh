#!/bin/sh
# run.sh - run every test program and script given, and add up their verdicts.
#
# A test prints one line per check: "PASS: name", "FAIL: name: why" or
# "SKIPPED: name: why".  A program that exits non-zero without printing a
# FAIL line is itself counted as a failure, so a crash never passes.
# The last line is "N passed, N failed, N skipped"; exit status 1 if any failed.
# Under make check-sanitize, ASan and UBSan write their reports as files in
# $MURA_SAN_LOGS: each one is a failure of the test that ran when it was
# made, even where that test ignored the status of the program behind it.
export MURA_TOP="$(cd "$(dirname "$0")/.." && pwd)"
# Where the programs were built: the tree, or make check-sanitize's build-san.
export MURA_BUILD="${MURA_BUILD:-$MURA_TOP}"
# Tests run as from a shell, not as part of the make that started them
# (a nested make would print "Entering directory" lines, take -j, ...).
unset MAKELEVEL MAKEFLAGS MFLAGS
export PATH="$MURA_BUILD/bin:$PATH"
pass=0 fail=0 skip=0
skipped="" failed=""
log=$(mktemp) || exit 1
trap 'rm -f "$log"' EXIT
for t in "$@"; do
	start=$(date +%s)
	case $t in
	*.sh) sh "$t" >"$log" 2>&1 </dev/null ;;
	*) "$t" >"$log" 2>&1 </dev/null ;;
	esac
	rc=$?
	for r in ${MURA_SAN_LOGS:+"$MURA_SAN_LOGS"/asan.* "$MURA_SAN_LOGS"/ubsan.*}; do
		[ -f "$r" ] || continue
		d="$MURA_SAN_LOGS/${t##*/}"
		mkdir -p "$d" && mv "$r" "$d/"
		echo "FAIL: $t: sanitizer report $d/${r##*/}: $(grep -m 1 -E 'SUMMARY|runtime error' "$d/${r##*/}")" >>"$log"
	done
	p=$(grep -c '^PASS: ' "$log")
	f=$(grep -c '^FAIL: ' "$log")
	s=$(grep -c '^SKIPPED: ' "$log")
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		echo "FAIL: $t exited with status $rc" >>"$log"
		f=1
	fi
	grep -E '^(FAIL|SKIPPED): ' "$log" | sed "s|^|  |"
	[ "$f" != 0 ] && { echo "---- output of $t ----"; tail -n 40 "$log"; echo "----"; }
	printf '%-28s %3d passed, %d failed, %d skipped (%ds)\n' "$t" "$p" "$f" "$s" $(( $(date +%s) - start ))
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
	[ "$s" != 0 ] && skipped="$skipped$(grep '^SKIPPED: ' "$log")
"
	[ "$f" != 0 ] && failed="$failed$(grep '^FAIL: ' "$log")
"
done
if [ "$skip" != 0 ]; then
	echo "#####################################################################"
	echo "# $skip check(s) SKIPPED - they did not run and prove nothing:"
	printf '%s' "$skipped" | sed 's/^/#   /'
	echo "#####################################################################"
fi
[ "$fail" != 0 ] && { echo "Failed:"; printf '%s' "$failed" | sed 's/^/  /'; }
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ]
