/*
 * fuzz-split.c - the CSV list reader and the split (lib/split.c) on any
 * bytes: the lines read before any bad one are split, every item lands in
 * part 1 or 2, and a patient's items all in the same part.
 */
#include <string.h>

#include "error.h"
#include "fuzz.h"
#include "split.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FILE *f = fuzz_file(data, size);
	struct mura_split_list l;

	mura_split_list_init(&l);
	if (mura_split_read(&l, f, "fuzz") < 0)
		FUZZ_ASSERT(!strncmp(mura_error_get(), "fuzz: ", 6));
	fclose(f);
	for (int k = 0; k < 3; k++) {
		FUZZ_ASSERT(mura_split_assign(l.items, l.n, k * 0.5, (uint64_t)k) == 0);
		for (size_t i = 0; i < l.n; i++) {
			FUZZ_ASSERT(l.items[i].part == 1 || l.items[i].part == 2);
			FUZZ_ASSERT(l.items[i].type > 0 && l.items[i].patient && l.items[i].study);
			for (size_t j = 0; j < i && j < 256; j++)
				if (l.items[j].patient == l.items[i].patient)
					FUZZ_ASSERT(l.items[j].part == l.items[i].part);
		}
	}
	mura_split_list_free(&l);
	return 0;
}
