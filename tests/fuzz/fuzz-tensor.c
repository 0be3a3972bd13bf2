/*
 * fuzz-tensor.c - the stream reader (lib/tensor.c) on any bytes.  Every
 * record mura_read accepts is written back with mura_write and read again:
 * it must come back the same.  mura_header_parse also sees the bytes as the
 * mapped file's index does (no limit on the data size, nothing allocated).
 */
#include <string.h>

#include "error.h"
#include "fuzz.h"
#include "tensor.h"

static int
same(const struct mura_record *a, const struct mura_record *b)
{
	return a->dtype == b->dtype && a->c == b->c && a->h == b->h && a->w == b->w &&
	       !memcmp(&a->label, &b->label, sizeof a->label) && a->patient == b->patient &&
	       a->study == b->study && a->image == b->image && a->type == b->type &&
	       !strcmp(a->path, b->path) && a->ext_len == b->ext_len &&
	       (!a->ext_len || !memcmp(a->ext, b->ext, a->ext_len)) &&
	       !memcmp(a->data, b->data, mura_record_nbytes(a));
}

/* Write r to memory, read it back: the same record, and nothing more. */
static void
round_trip(const struct mura_record *r)
{
	char *buf;
	size_t len;
	FILE *f = fuzz_memstream(&buf, &len);
	struct mura_reader rd;
	struct mura_record back;

	FUZZ_ASSERT(mura_write(f, r) == 0);
	FUZZ_ASSERT(fclose(f) == 0);
	f = fuzz_file((const uint8_t *)buf, len);
	mura_reader_from_file(&rd, f, "written");
	mura_record_init(&back);
	FUZZ_ASSERT(mura_read(&rd, &back) == 1);
	FUZZ_ASSERT(same(r, &back));
	FUZZ_ASSERT(mura_read(&rd, &back) == 0);
	mura_record_free(&back);
	mura_reader_free(&rd);
	fclose(f);
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FILE *f = fuzz_file(data, size);
	struct mura_reader rd;
	struct mura_record r;
	uint32_t hsize;
	uint64_t dsize;
	int rc;

	mura_reader_from_file(&rd, f, "fuzz");
	rd.max_data = 1 << 24; /* a fuzzer's input is small; spare it 1 GiB allocations */
	mura_record_init(&r);
	while ((rc = mura_read(&rd, &r)) > 0)
		round_trip(&r);
	FUZZ_ASSERT(rc == 0 || strstr(mura_error_get(), "fuzz: record "));
	mura_reader_free(&rd);
	fclose(f);

	if (size >= MURA_FIXED_HEADER &&
	    mura_header_parse(data, size, &r, &hsize, &dsize, UINT64_MAX) == 0)
		FUZZ_ASSERT(hsize <= size && hsize % 8 == 0 && dsize == mura_record_nbytes(&r));
	mura_record_free(&r);
	return 0;
}
