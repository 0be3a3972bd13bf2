/*
 * fuzz-safetensors.c - the safetensors parser (lib/safetensors.c) on any
 * bytes.  For a file it accepts: every tensor is found by its name and
 * converts to f32 (and the integer ones to i64) within its bytes, and
 * every metadata key gives its value.
 */
#include <string.h>

#include "error.h"
#include "fuzz.h"
#include "safetensors.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mura_st_file f;

	if (mura_st_open_mem(&f, data, size, "fuzz") < 0) {
		FUZZ_ASSERT(!strncmp(mura_error_get(), "fuzz: ", 6));
		return 0;
	}
	for (size_t i = 0; i < f.n; i++) {
		const struct mura_st_tensor *t = &f.t[i];
		float *x;
		int64_t *y;

		FUZZ_ASSERT(mura_st_find(&f, t->name) == t);
		FUZZ_ASSERT(t->nbytes == t->nelem * mura_st_dtype_size(t->dtype));
		FUZZ_ASSERT(t->data >= data && t->data + t->nbytes <= data + size);
		x = malloc(t->nelem ? t->nelem * sizeof *x : 1);
		y = malloc(t->nelem ? t->nelem * sizeof *y : 1);
		FUZZ_ASSERT(x && y);
		FUZZ_ASSERT(mura_st_to_f32(t, x, t->nelem) == 0);
		mura_st_to_i64(t, y, t->nelem); /* refuses floating point, U64 above INT64_MAX */
		free(x);
		free(y);
	}
	for (size_t i = 0; i < f.n_meta; i++)
		FUZZ_ASSERT(mura_st_meta(&f, f.meta_key[i]) != NULL);
	mura_st_free(&f);
	return 0;
}
