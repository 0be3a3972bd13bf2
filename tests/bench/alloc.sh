# alloc.sh - sourced by engine.sh and pipeline.sh: the allocators PyTorch's
# side runs under.  PyTorch's CPU performance guide ("Performance Tuning
# Guide": switch the memory allocator) recommends tcmalloc or jemalloc in
# place of glibc's malloc, which returns large blocks to the system and
# faults them in again on every batch; glibc's own knobs do the same job:
# a top-of-heap trim threshold no batch reaches and no mmap for large blocks
# (MALLOC_MMAP_THRESHOLD_ at its 32 MiB ceiling, MALLOC_MMAP_MAX_=0 for the
# larger activations).
#
#   alloc_tuned            the tuned allocators this machine has, by name
#   alloc_env NAME         the environment assignments that select NAME
#                          (nothing for "default"), for env(1)
TCMALLOC=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4
JEMALLOC=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2

alloc_tuned() {
	[ -r "$TCMALLOC" ] && printf 'tcmalloc '
	[ -r "$JEMALLOC" ] && printf 'jemalloc '
	echo glibc-tuned
}

alloc_env() {
	case $1 in
	default) ;;
	tcmalloc) echo "LD_PRELOAD=$TCMALLOC" ;;
	jemalloc) echo "LD_PRELOAD=$JEMALLOC" ;;
	glibc-tuned) echo "MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 MALLOC_TOP_PAD_=67108864" ;;
	*) echo "alloc.sh: unknown allocator $1" >&2; return 1 ;;
	esac
}

# Whether this CPU has AVX512-BF16 (PyTorch's and our bf16 rows run only there).
have_bf16() { grep -q '\<avx512_bf16\>' /proc/cpuinfo; }
