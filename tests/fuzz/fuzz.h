/*
 * fuzz.h - what the fuzz harnesses share.  Each tests/fuzz/fuzz-X.c is a
 * libFuzzer target (LLVMFuzzerTestOneInput) over one parser of the library;
 * built with clang -fsanitize=fuzzer it fuzzes, built with replay.c it runs
 * a corpus once (tests/t-fuzz.sh does both, see there).  A harness checks
 * what must hold for any input: no crash, no sanitizer report, and what the
 * parser accepted comes back unchanged through the matching writer;
 * FUZZ_ASSERT aborts otherwise, so the input is kept as a crash.
 */
#ifndef MURA_FUZZ_H
#define MURA_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond)                                                          \
	do {                                                                           \
		if (!(cond)) {                                                             \
			fprintf(stderr, "%s:%d: FUZZ_ASSERT(%s) failed\n", __FILE__, __LINE__, \
			        #cond);                                                        \
			abort();                                                               \
		}                                                                          \
	} while (0)

/* The input as a read-only FILE (fmemopen; an empty input reads as EOF). */
static inline FILE *
fuzz_file(const uint8_t *data, size_t size)
{
	FILE *f = fmemopen((void *)data, size, "r");
	FUZZ_ASSERT(f);
	return f;
}

/* A FILE writing to memory: *buf holds *len bytes after fclose (free it). */
static inline FILE *
fuzz_memstream(char **buf, size_t *len)
{
	FILE *f;

	*buf = NULL;
	*len = 0;
	f = open_memstream(buf, len);
	FUZZ_ASSERT(f);
	return f;
}

#endif
