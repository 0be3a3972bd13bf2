#!/bin/sh
# t-fuzz.sh - the fuzz harnesses of tests/fuzz (fuzz.h says what they check):
# each replays its seed corpus (tests/fuzz/corpus/NAME, from mkcorpus.py)
# through the harness built like the tests (with ASan and UBSan under make
# check-sanitize); then, where clang has libFuzzer (make fuzz built
# build-fuzz/), fuzzes for MURA_FUZZ_SECONDS (3) from that corpus.  An input
# that crashes is kept as build-fuzz/crashes/NAME-*; replay it with
# build-fuzz/fuzz-NAME FILE.  Without libFuzzer, one SKIPPED line says so.
. "$(dirname "$0")/lib.sh"

secs=${MURA_FUZZ_SECONDS:-3}
F=$MURA_TOP/tests/fuzz
LF=$MURA_BUILD/build-fuzz
fuzzed=
for c in "$F"/fuzz-*.c; do
	h=${c##*/fuzz-} && h=${h%.c}
	corpus=$F/corpus/$h replay=$MURA_BUILD/tests/fuzz/fuzz-$h
	if [ ! -x "$replay" ]; then
		echo "FAIL: fuzz-$h: $replay is not built (make fuzz builds it)"
		continue
	fi
	if "$replay" "$corpus" >"$T/$h.replay" 2>&1; then
		echo "PASS: fuzz-$h: corpus replay ($(ls "$corpus" | wc -l) inputs)"
	else
		echo "FAIL: fuzz-$h: corpus replay failed"; tail -n 30 "$T/$h.replay" | sed 's/^/    /'
	fi
	[ -x "$LF/fuzz-$h" ] || continue
	fuzzed=1
	mkdir -p "$T/new-$h" "$LF/crashes"
	if "$LF/fuzz-$h" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$LF/crashes/$h-" "$T/new-$h" "$corpus" >"$T/$h.fuzz" 2>&1; then
		echo "PASS: fuzz-$h: libFuzzer for $secs s, $(sed -n 's/^stat::number_of_executed_units: *//p' \
			"$T/$h.fuzz") inputs, no crash"
	else
		echo "FAIL: fuzz-$h: libFuzzer: $(grep -m 1 -o 'Test unit written to .*' "$T/$h.fuzz")" \
			"($(grep -m 1 -o 'Seed: [0-9]*' "$T/$h.fuzz"))"
		grep -v '^#[0-9]' "$T/$h.fuzz" | tail -n 30 | sed 's/^/    /'
	fi
done
[ -n "$fuzzed" ] || skip "fuzzing with libFuzzer" \
	"libFuzzer not available: corpus replay only (clang with libFuzzer makes build-fuzz/)"
