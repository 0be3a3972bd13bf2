#!/bin/sh
# make install / uninstall into a temporary prefix: the tools run from there,
# a program builds against the installed library with pkg-config, and
# uninstall leaves nothing behind.
# MURA_MAKE_ARGS (make check-sanitize sets it) names the build to install.
. "$(dirname "$0")/lib.sh"

d="$T/root" p=/opt/mura-test
check "make install into DESTDIR" make -s -C "$MURA_TOP" ${MURA_MAKE_ARGS:-} install DESTDIR="$d" PREFIX="$p"
check_eq "installed mura-info runs" "$("$d$p/bin/mura-info" --version | cut -d' ' -f1)" "mura-info"
check "man pages installed" test -f "$d$p/share/man/man5/mura-tensor.5"
check "headers installed" test -f "$d$p/include/mura/tensor.h"
check_eq "the engine's private headers are not installed" \
	"$(cd "$d$p/include/mura" && ls nn/net.h nn/ops.h nn/thread.h nn/vit.h nn/conv3_kernel.h 2>/dev/null)" ""
for h in $(cd "$d$p/include/mura" && find . -name '*.h' | sort); do
	printf '#include "%s"\n' "$h" > "$T/h.c"
	check "installed header $h compiles on its own" \
		cc -std=c11 -fsyntax-only -I"$d$p/include/mura" \
		-D_POSIX_C_SOURCE=200809L "$T/h.c"
done
cat > "$T/x.c" <<'EOC'
#include <mura.h>
int main(void)
{
	struct mura_record r;
	int rc;
	mura_record_init(&r);
	rc = mura_record_alloc(&r, MURA_DTYPE_U8, 1, 2, 2);
	mura_record_free(&r);
	return rc;
}
EOC
check "a program builds and runs against the installed library" sh -c \
	"PKG_CONFIG_SYSROOT_DIR='$d' PKG_CONFIG_PATH='$d$p/lib/pkgconfig' && export PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_PATH &&
	 cc -o '$T/x' '$T/x.c' \$(pkg-config --cflags --libs mura) && '$T/x'"
check "make uninstall" make -s -C "$MURA_TOP" ${MURA_MAKE_ARGS:-} uninstall DESTDIR="$d" PREFIX="$p"
check_eq "uninstall leaves no files" "$(find "$d" -type f | wc -l)" 0
