#!/bin/sh
# Man pages: every page renders without warnings, every tool has one, and
# the options that `mura-X --help` lists are the ones its page documents.
. "$(dirname "$0")/lib.sh"

for page in "$MURA_TOP"/man/man*/*.[0-9]; do
	name=$(basename "$page")
	out=$(groff -t -man -ww -z "$page" 2>&1)
	check_eq "$name renders without warnings" "$out" ""
	for s in NAME SYNOPSIS DESCRIPTION "EXIT STATUS" EXAMPLES "SEE ALSO"; do
		case $name in *.5|*.7) [ "$s" = "EXIT STATUS" ] && continue ;; esac
		grep -q "^\.SH \"*$s" "$page" || echo "FAIL: $name has no $s section"
	done
done

for src in "$MURA_TOP"/bin/mura-*.c; do
	tool=$(basename "$src" .c)
	page="$MURA_TOP/man/man1/$tool.1"
	if [ ! -f "$page" ]; then
		echo "FAIL: $tool has no man page"
		continue
	fi
	help=$("$MURA_BUILD/bin/$tool" --help | grep -o -- '--[a-z][a-z0-9-]*' | sort -u)
	# only the OPTIONS section: examples may use other tools' options
	man=$(awk '/^\.SH/ { on = ($2 == "OPTIONS") } on' "$page" |
		grep -o -- '\\-\\-[a-z][a-z0-9-]*' | sed 's/\\//g' | sort -u)
	check_eq "$tool: --help and the man page list the same options" \
		"$(echo "$help" | tr '\n' ' ')" "$(echo "$man" | tr '\n' ' ')"
	check_eq "$tool --help exits 0 and writes to stdout" \
		"$("$MURA_BUILD/bin/$tool" --help 2>/dev/null | head -n 1 | cut -c1-6)" "usage:"
done
