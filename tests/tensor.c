/*
 * tensor.c - the stream format: round trips of every dtype, concatenation,
 * random access, and every malformed record refused with its message.
 */
#include <stdlib.h>
#include <string.h>

#include "mura.h"
#include "test.h"

static void
fill(struct mura_record *r, int dtype, uint32_t c, uint32_t h, uint32_t w, int seed)
{
	mura_record_alloc(r, dtype, c, h, w);
	for (size_t i = 0; i < mura_record_nelem(r); i++) {
		if (dtype == MURA_DTYPE_U8)
			((uint8_t *)r->data)[i] = (uint8_t)(i * 7 + seed);
		else if (dtype == MURA_DTYPE_U16)
			((uint16_t *)r->data)[i] = (uint16_t)(i * 977 + seed);
		else
			((float *)r->data)[i] = (float)i * 0.25f - seed;
	}
	r->label = seed % 2 ? 1.0f : 0.25f;
	r->patient = 11 + seed;
	r->study = 2;
	r->image = (uint16_t)(3 + seed);
	r->type = MURA_TYPE_WRIST;
	snprintf(r->path, sizeof r->path, "MURA-v1.1/train/XR_WRIST/patient%05d/study2_positive/image%d.png",
	         11 + seed, 3 + seed);
}

static int
same(const struct mura_record *a, const struct mura_record *b)
{
	return a->dtype == b->dtype && a->c == b->c && a->h == b->h && a->w == b->w &&
	       a->label == b->label && a->patient == b->patient && a->study == b->study &&
	       a->image == b->image && a->type == b->type && !strcmp(a->path, b->path) &&
	       a->ext_len == b->ext_len && (!a->ext_len || !memcmp(a->ext, b->ext, a->ext_len)) &&
	       !memcmp(a->data, b->data, mura_record_nbytes(a));
}

/* Write n records of the given dtypes to a memory buffer. */
static char *
stream(size_t *len, int n, const int *dtypes)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	struct mura_record r;

	mura_record_init(&r);
	for (int i = 0; i < n; i++) {
		fill(&r, dtypes[i], 1 + i % 3, 5 + i, 3, i);
		if (mura_write(f, &r) < 0)
			printf("FAIL: write: %s\n", mura_error_get());
	}
	fclose(f);
	mura_record_free(&r);
	return buf;
}

/* Read buf as a stream named "t.mt"; return the result of the first failing
 * or final mura_read, and count the records read. */
static int
read_all(const void *buf, size_t len, int *count)
{
	FILE *f = fmemopen((void *)buf, len, "rb");
	struct mura_reader rd;
	struct mura_record r;
	int rc;

	mura_reader_from_file(&rd, f, "t.mt");
	mura_record_init(&r);
	*count = 0;
	mura_error_clear();
	while ((rc = mura_read(&rd, &r)) > 0)
		(*count)++;
	mura_record_free(&r);
	fclose(f);
	return rc;
}

static void
put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> 8 * i);
}

/* Corrupt a copy of a 2-record stream in its second record and check the
 * message.  off is relative to the second record's start. */
static void
malformed(const char *name, const char *buf, size_t len, size_t second, size_t off,
          const void *bytes, size_t nbytes, size_t cut, const char *want)
{
	char *copy = malloc(len);
	int count, rc;
	char label[256];

	memcpy(copy, buf, len);
	if (nbytes)
		memcpy(copy + second + off, bytes, nbytes);
	rc = read_all(copy, cut ? cut : len, &count);
	snprintf(label, sizeof label, "malformed record refused: %s", name);
	CHECK(label, rc < 0 && count == 1 && strstr(mura_error_get(), "t.mt: record 2: ") &&
	                 strstr(mura_error_get(), want));
	if (!(rc < 0 && strstr(mura_error_get(), want)))
		printf("    message was: %s\n", mura_error_get());
	free(copy);
}

int
main(void)
{
	int dtypes[] = {MURA_DTYPE_U8, MURA_DTYPE_U16, MURA_DTYPE_F32};
	struct mura_record a, b;
	size_t len, len2;
	char *buf, *buf2, *cat;
	int count;

	mura_record_init(&a);
	mura_record_init(&b);

	/* Round trip of each dtype, with an optional extension field kept. */
	for (int d = 0; d < 3; d++) {
		char name[64];
		char *p = NULL;
		size_t n;
		FILE *f = open_memstream(&p, &n);
		static const unsigned char note[16] = "note\4\0\0\0abcd\0\0\0";

		fill(&a, dtypes[d], 3, 7, 5, d);
		a.ext = malloc(16);
		memcpy(a.ext, note, 16);
		a.ext_len = a.ext_cap = 16;
		CHECK("write succeeds", mura_write(f, &a) == 0);
		fclose(f);
		f = fmemopen(p, n, "rb");
		struct mura_reader rd;
		mura_reader_from_file(&rd, f, "mem");
		snprintf(name, sizeof name, "round trip of %s keeps data, metadata and fields",
		         mura_dtype_name(dtypes[d]));
		CHECK(name, mura_read(&rd, &b) == 1 && same(&a, &b) && mura_read(&rd, &b) == 0);
		snprintf(name, sizeof name, "record of %s is padded to 8 bytes", mura_dtype_name(dtypes[d]));
		CHECK(name, n % 8 == 0);
		fclose(f);
		free(p);
		free(a.ext);
		a.ext = NULL;
		a.ext_len = a.ext_cap = 0;
	}

	/* Concatenation of two streams is a stream. */
	buf = stream(&len, 3, dtypes);
	buf2 = stream(&len2, 2, dtypes);
	cat = malloc(len + len2);
	memcpy(cat, buf, len);
	memcpy(cat + len, buf2, len2);
	CHECK("concatenated streams read as one", read_all(cat, len + len2, &count) == 0 && count == 5);
	CHECK("empty stream has no records", read_all(cat, 0, &count) == 0 && count == 0);

	/* Random access over a file equals sequential reading. */
	{
		char path[] = "/tmp/mura-tensor-test.XXXXXX";
		int fd = mkstemp(path);
		FILE *f = fdopen(fd, "wb");
		struct mura_file mf;
		int ok = 1;

		fwrite(cat, 1, len + len2, f);
		fclose(f);
		CHECK("file index opens", mura_file_open(&mf, path) == 0 && mf.n == 5);
		for (int i = 4; i >= 0; i--) {
			struct mura_record want;
			mura_record_init(&want);
			fill(&want, dtypes[i % 3], 1 + (i % 3) % 3, 5 + i % 3, 3, i % 3);
			if (mura_file_get(&mf, (uint64_t)i, &b) < 0 || !same(&want, &b) ||
			    ((uintptr_t)b.data % 8))
				ok = 0;
			mura_record_free(&want);
		}
		CHECK("random access returns each record, 8-byte aligned", ok);
		CHECK("random access out of range is an error",
		      mura_file_get(&mf, 5, &b) < 0 && strstr(mura_error_get(), "record 6: out of range"));
		mura_file_free(&mf);
		f = fopen(path, "ab");
		fwrite("MURA", 1, 4, f);
		fclose(f);
		CHECK("file index refuses a truncated last record",
		      mura_file_open(&mf, path) < 0 && strstr(mura_error_get(), "record 6: truncated header"));
		remove(path);
	}

	/* Malformed second records: each refused with its message. */
	{
		size_t second;
		unsigned char v2[2] = {2, 0}, dt9[2] = {9, 0}, big[12], zero4[4] = {0};
		unsigned char nan[4] = {0, 0, 0xc0, 0x7f}, two[4] = {0, 0, 0, 0x40}, t9 = 9, fl = 1;
		unsigned char ds[8] = {1, 0, 0, 0, 0, 0, 0, 0}, hs[4], pl[2] = {0xff, 0x0f};
		int count1;
		free(buf);
		buf = stream(&len, 2, dtypes);
		{
			/* The first record's size: header plus padded data. */
			FILE *f = fmemopen(buf, len, "rb");
			struct mura_reader rd;
			mura_reader_from_file(&rd, f, "x");
			mura_read(&rd, &b);
			second = rd.offset;
			fclose(f);
			(void)count1;
		}
		malformed("bad magic", buf, len, second, 0, "MUTA", 4, 0, "bad magic");
		malformed("unknown version", buf, len, second, 4, v2, 2, 0, "unsupported version 2");
		malformed("unknown dtype", buf, len, second, 6, dt9, 2, 0, "unknown dtype 9");
		put32(big, 1u << 20);
		put32(big + 4, 1u << 20);
		put32(big + 8, 1u << 20);
		malformed("2^60 elements", buf, len, second, 12, big, 12, 0, "does not match shape");
		{
			/* 2^40 elements of u16 with a matching data size: refused by the limit. */
			unsigned char huge[20] = {0};
			put32(huge, 1);
			put32(huge + 4, 1u << 20);
			put32(huge + 8, 1u << 20);
			put32(huge + 16, 512); /* dsize = 2^41, high word */
			malformed("2^40 elements with a matching size", buf, len, second, 12, huge, 20, 0,
			          "exceeds the limit");
		}
		put32(big, 1u << 21);
		malformed("dimension beyond 2^20", buf, len, second, 12, big, 4, 0, "out of range");
		malformed("zero dimension", buf, len, second, 16, zero4, 4, 0, "out of range");
		malformed("data size not matching shape", buf, len, second, 24, ds, 8, 0, "does not match shape");
		malformed("NaN label", buf, len, second, 32, nan, 4, 0, "label nan");
		malformed("label out of range", buf, len, second, 32, two, 4, 0, "label 2");
		malformed("unknown study type", buf, len, second, 44, &t9, 1, 0, "unknown study type 9");
		malformed("unknown flags", buf, len, second, 45, &fl, 1, 0, "unknown flags");
		malformed("path longer than header", buf, len, second, 46, pl, 2, 0, "does not fit");
		put32(hs, 44);
		malformed("header size below 48", buf, len, second, 8, hs, 4, 0, "header size 44");
		put32(hs, 1u << 30);
		malformed("header size above limit", buf, len, second, 8, hs, 4, 0, "header size 1073741824");
		malformed("truncated header", buf, len, second, 0, NULL, 0, second + 20, "truncated header");
		malformed("truncated data", buf, len, second, 0, NULL, 0, len - 9, "truncated data");
		/* Control characters in the path: one listed record would print on
		 * several lines, or split a TSV row. */
		malformed("TAB in the path", buf, len, second, 48 + 4, "\t", 1, 0,
		          "path contains control character 0x09 at byte 4");
		malformed("line break in the path", buf, len, second, 48 + 9, "\n", 1, 0,
		          "path contains control character 0x0a at byte 9");
		malformed("ESC in the path", buf, len, second, 48, "\x1b", 1, 0,
		          "path contains control character 0x1b at byte 0");
		malformed("DEL in the path", buf, len, second, 48 + 1, "\x7f", 1, 0,
		          "path contains control character 0x7f at byte 1");
		malformed("NUL in the path", buf, len, second, 48 + 2, "", 1, 0,
		          "path contains control character 0x00 at byte 2");
	}

	/* Nor can such a path be set or written. */
	CHECK("set_path refuses a TAB",
	      mura_record_set_path(&a, "XR_HAND/a\tb.png") < 0 &&
	          strstr(mura_error_get(), "path contains control character 0x09 at byte 9"));
	CHECK("set_path refuses a line break", mura_record_set_path(&a, "a\nb") < 0);
	CHECK("set_path refuses DEL", mura_record_set_path(&a, "a\x7f") < 0);
	CHECK("set_path keeps UTF-8", mura_record_set_path(&a, "XR_HAND/\xc3\xa9t\xc3\xa9.png") == 0);
	{
		char *p = NULL;
		size_t n;
		FILE *f = open_memstream(&p, &n);
		fill(&a, MURA_DTYPE_U8, 1, 2, 2, 0);
		a.path[3] = '\n';
		CHECK("write refuses a path with a control character",
		      mura_write(f, &a) < 0 && strstr(mura_error_get(), "path contains control character 0x0a"));
		fclose(f);
		CHECK("nothing written for it", n == 0);
		free(p);
	}

	/* An unknown required field is refused by name; an unknown optional one kept. */
	{
		char *p = NULL;
		size_t n;
		FILE *f = open_memstream(&p, &n);
		static const unsigned char req[8] = "XTRA\0\0\0\0";
		fill(&a, MURA_DTYPE_U8, 1, 2, 2, 0);
		a.ext = malloc(8);
		memcpy(a.ext, req, 8);
		a.ext_len = a.ext_cap = 8;
		mura_write(f, &a);
		mura_write(f, &a);
		fclose(f);
		CHECK("unknown required field refused by name",
		      read_all(p, n, &count) < 0 && count == 0 && strstr(mura_error_get(), "record 1: unknown required field 'XTRA'"));
		free(p);
	}

	/* A huge record is refused before allocation by the reader's limit. */
	{
		char *p = NULL;
		size_t n;
		FILE *f = open_memstream(&p, &n);
		struct mura_reader rd;
		fill(&a, MURA_DTYPE_F32, 4, 1024, 1024, 0); /* 16 MiB */
		free(a.ext);
		a.ext = NULL;
		a.ext_len = a.ext_cap = 0;
		mura_write(f, &a);
		fclose(f);
		f = fmemopen(p, n, "rb");
		mura_reader_from_file(&rd, f, "big");
		rd.max_data = 1 << 20;
		CHECK("record over the reader's data limit refused",
		      mura_read(&rd, &b) < 0 && strstr(mura_error_get(), "exceeds the limit"));
		fclose(f);
		free(p);
	}

	/* The numpy reader of mura-tensor(5) reads what the C writer wrote. */
	{
		const char *top = getenv("MURA_TOP");
		char path[] = "/tmp/mura-numpy-test.XXXXXX", cmd[8192], line[8192], want[8192];
		int fd = mkstemp(path), ok = 1, n = 0;
		FILE *f = fdopen(fd, "wb"), *py;

		for (int i = 0; i < 6; i++) {
			fill(&a, dtypes[i % 3], 1 + i % 3, 4 + i, 5, i);
			mura_write(f, &a);
		}
		fclose(f);
		snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/py/mt.py dump %s 2>&1", top ? top : ".", path);
		if (system("/usr/bin/python3 -c 'import numpy' 2>/dev/null") != 0) {
			printf("SKIPPED: numpy reader agrees with the C writer: no numpy for /usr/bin/python3\n");
		} else if ((py = popen(cmd, "r"))) {
			for (int i = 0; i < 6; i++) {
				double sum = 0;
				fill(&a, dtypes[i % 3], 1 + i % 3, 4 + i, 5, i);
				for (size_t k = 0; k < mura_record_nelem(&a); k++)
					sum += a.dtype == MURA_DTYPE_U8 ? ((uint8_t *)a.data)[k]
					       : a.dtype == MURA_DTYPE_U16 ? ((uint16_t *)a.data)[k]
					       : ((float *)a.data)[k];
				snprintf(want, sizeof want, "%d\t%s\t%ux%ux%u\t%g\t%d\t%u\t%u\t%u\t%s\t%.6f\n", i + 1,
				         a.dtype == MURA_DTYPE_U8 ? "|u1" : a.dtype == MURA_DTYPE_U16 ? "<u2" : "<f4",
				         a.c, a.h, a.w, a.label, a.type, a.patient, a.study, a.image, a.path, sum);
				if (!fgets(line, sizeof line, py) || strcmp(line, want)) {
					printf("    numpy: %s    C:     %s", line, want);
					ok = 0;
					break;
				}
				n++;
			}
			CHECK("numpy reader agrees with the C writer, every dtype", pclose(py) == 0 && ok && n == 6);
		}
		remove(path);
	}

	free(buf);
	free(buf2);
	free(cat);
	mura_record_free(&a);
	mura_record_free(&b);
	return test_status();
}
