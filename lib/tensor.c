/*
 * tensor.c - reading and writing the MT record stream (layout in tensor.h).
 *
 * Two readers share one header parser: a sequential reader over a FILE, for
 * pipes, and a mapped file with an offset index, for random access during
 * training.  Every size is checked before anything is allocated or skipped.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "tensor.h"

static const char *const type_names[MURA_TYPE_COUNT] = {
	"unknown", "elbow", "finger", "forearm", "hand", "humerus", "shoulder", "wrist",
};
static const char *const type_folders[MURA_TYPE_COUNT] = {
	NULL, "XR_ELBOW", "XR_FINGER", "XR_FOREARM", "XR_HAND", "XR_HUMERUS", "XR_SHOULDER", "XR_WRIST",
};

size_t
mura_dtype_size(int dtype)
{
	switch (dtype) {
	case MURA_DTYPE_U8: return 1;
	case MURA_DTYPE_U16: return 2;
	case MURA_DTYPE_F32: return 4;
	}
	return 0;
}

const char *
mura_dtype_name(int dtype)
{
	switch (dtype) {
	case MURA_DTYPE_U8: return "u8";
	case MURA_DTYPE_U16: return "u16";
	case MURA_DTYPE_F32: return "f32";
	}
	return "?";
}

int
mura_dtype_parse(const char *s)
{
	if (!strcmp(s, "u8")) return MURA_DTYPE_U8;
	if (!strcmp(s, "u16")) return MURA_DTYPE_U16;
	if (!strcmp(s, "f32")) return MURA_DTYPE_F32;
	return -1;
}

const char *
mura_type_name(int type)
{
	return type >= 0 && type < MURA_TYPE_COUNT ? type_names[type] : "?";
}

const char *
mura_type_folder(int type)
{
	return type > 0 && type < MURA_TYPE_COUNT ? type_folders[type] : NULL;
}

int
mura_type_parse(const char *s)
{
	for (int t = 0; t < MURA_TYPE_COUNT; t++)
		if (!strcasecmp(s, type_names[t]) || (type_folders[t] && !strcasecmp(s, type_folders[t])))
			return t;
	return -1;
}

/* Little-endian access, independent of the host's byte order. */
static uint16_t get16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const unsigned char *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }
static void put16(unsigned char *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
static void put32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = v >> 8 * i; }
static void put64(unsigned char *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }
static float getf(const unsigned char *p) { uint32_t u = get32(p); float f; memcpy(&f, &u, 4); return f; }
static void putf(unsigned char *p, float f) { uint32_t u; memcpy(&u, &f, 4); put32(p, u); }

static uint64_t pad8(uint64_t n) { return (n + 7) & ~(uint64_t)7; }

void
mura_record_init(struct mura_record *r)
{
	memset(r, 0, sizeof *r);
	r->label = MURA_LABEL_UNKNOWN;
	r->owned = 1;
}

void
mura_record_free(struct mura_record *r)
{
	if (r->owned)
		free(r->data);
	free(r->ext);
	mura_record_init(r);
}

size_t
mura_record_nelem(const struct mura_record *r)
{
	return (size_t)r->c * r->h * r->w;
}

size_t
mura_record_nbytes(const struct mura_record *r)
{
	return mura_record_nelem(r) * mura_dtype_size(r->dtype);
}

int
mura_record_alloc(struct mura_record *r, int dtype, uint32_t c, uint32_t h, uint32_t w)
{
	size_t es = mura_dtype_size(dtype);
	uint64_t n;

	if (!es)
		return mura_error("unknown dtype %d", dtype);
	if (!c || !h || !w || c > MURA_MAX_DIM || h > MURA_MAX_DIM || w > MURA_MAX_DIM)
		return mura_error("shape %ux%ux%u out of range", c, h, w);
	n = (uint64_t)c * h * w * es;
	if (n > SIZE_MAX / 2)
		return mura_error("shape %ux%ux%u too large", c, h, w);
	if (!r->owned) {
		r->data = NULL;
		r->cap = 0;
		r->owned = 1;
	}
	if (n > r->cap) {
		void *p = realloc(r->data, n);
		if (!p)
			return mura_error("out of memory for %llu bytes", (unsigned long long)n);
		r->data = p;
		r->cap = n;
	}
	r->dtype = dtype;
	r->c = c;
	r->h = h;
	r->w = w;
	return 0;
}

/* A path holds no control character (bytes below 0x20, and 0x7f): one
 * would break every line-based output (mura-info --list, a scores TSV)
 * or hide what a terminal shows.  MURA's paths never hold one. */
static int
check_path(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x20 || p[i] == 0x7f)
			return mura_error("path contains control character 0x%02x at byte %zu", p[i], i);
	return 0;
}

int
mura_record_set_path(struct mura_record *r, const char *path)
{
	size_t n = strlen(path);

	if (n > MURA_PATH_MAX)
		return mura_error("path longer than %d bytes", MURA_PATH_MAX);
	if (check_path((const unsigned char *)path, n) < 0)
		return -1;
	memcpy(r->path, path, n + 1);
	return 0;
}

static int
set_ext(struct mura_record *r, const unsigned char *p, size_t n)
{
	if (n > r->ext_cap) {
		unsigned char *q = realloc(r->ext, n);
		if (!q)
			return mura_error("out of memory");
		r->ext = q;
		r->ext_cap = n;
	}
	if (n)
		memcpy(r->ext, p, n);
	r->ext_len = n;
	return 0;
}

int
mura_record_copy_meta(struct mura_record *dst, const struct mura_record *src)
{
	dst->label = src->label;
	dst->patient = src->patient;
	dst->study = src->study;
	dst->image = src->image;
	dst->type = src->type;
	memcpy(dst->path, src->path, strlen(src->path) + 1);
	return set_ext(dst, src->ext, src->ext_len);
}

/* Check the extension fields in p[0..n): well formed, and no unknown
 * critical (upper-case) tag.  Version 1 knows no tags at all. */
static int
check_fields(const unsigned char *p, size_t n)
{
	size_t off = 0;

	while (off < n) {
		char tag[5];
		uint32_t len;

		if (n - off < 8)
			return mura_error("extension field at header byte %zu is cut short", off);
		memcpy(tag, p + off, 4);
		tag[4] = 0;
		for (int i = 0; i < 4; i++)
			if (tag[i] < 0x21 || tag[i] > 0x7e)
				return mura_error("extension field at header byte %zu has a non-ASCII tag", off);
		len = get32(p + off + 4);
		if (pad8(len) > n - off - 8)
			return mura_error("extension field '%s' runs past the header", tag);
		if (tag[0] >= 'A' && tag[0] <= 'Z')
			return mura_error("unknown required field '%s'", tag);
		off += 8 + pad8(len);
	}
	return 0;
}

int
mura_header_parse(const unsigned char *b, size_t avail, struct mura_record *r,
                  uint32_t *hsizep, uint64_t *dsizep, uint64_t max_data)
{
	uint16_t version, dtype, pathlen;
	uint32_t hsize, c, h, w;
	uint64_t dsize, want;
	size_t es, fields;
	float label;

	if (avail < MURA_FIXED_HEADER)
		return mura_error("header cut short");
	if (memcmp(b, MURA_MAGIC, 4)) {
		if (!memcmp(b, "\x89PNG", 4))
			return mura_error("bad magic: this is a PNG image, not a mura tensor stream");
		return mura_error("bad magic (not a mura tensor stream)");
	}
	version = get16(b + 4);
	if (version != MURA_VERSION)
		return mura_error("unsupported version %u (this reader knows version %d)", version, MURA_VERSION);
	dtype = get16(b + 6);
	es = mura_dtype_size(dtype);
	if (!es)
		return mura_error("unknown dtype %u", dtype);
	hsize = get32(b + 8);
	if (hsize < MURA_FIXED_HEADER || hsize > MURA_MAX_HEADER || hsize % 8)
		return mura_error("header size %u is not a multiple of 8 in [%d, %d]", hsize,
		                  MURA_FIXED_HEADER, MURA_MAX_HEADER);
	c = get32(b + 12);
	h = get32(b + 16);
	w = get32(b + 20);
	if (!c || !h || !w || c > MURA_MAX_DIM || h > MURA_MAX_DIM || w > MURA_MAX_DIM)
		return mura_error("shape %ux%ux%u out of range (each 1 to %u)", c, h, w, MURA_MAX_DIM);
	want = (uint64_t)c * h * w * es; /* < 2^62, no overflow */
	dsize = get64(b + 24);
	if (dsize != want)
		return mura_error("data size %llu does not match shape %ux%ux%u of %s",
		                  (unsigned long long)dsize, c, h, w, mura_dtype_name(dtype));
	if (dsize > max_data)
		return mura_error("data size %llu exceeds the limit of %llu bytes",
		                  (unsigned long long)dsize, (unsigned long long)max_data);
	label = getf(b + 32);
	if (isnan(label) || (label != MURA_LABEL_UNKNOWN && !(label >= 0 && label <= 1)))
		return mura_error("label %g is neither in [0, 1] nor -1 (unknown)", label);
	if (b[44] >= MURA_TYPE_COUNT)
		return mura_error("unknown study type %u", b[44]);
	if (b[45])
		return mura_error("unknown flags 0x%02x", b[45]);
	pathlen = get16(b + 46);
	if (pad8(MURA_FIXED_HEADER + (uint64_t)pathlen) > hsize)
		return mura_error("path length %u does not fit in the header", pathlen);
	if (pathlen > MURA_PATH_MAX)
		return mura_error("path length %u exceeds %d", pathlen, MURA_PATH_MAX);
	if (avail < hsize)
		return mura_error("header cut short");
	if (check_path(b + MURA_FIXED_HEADER, pathlen) < 0)
		return -1;
	fields = (size_t)pad8(MURA_FIXED_HEADER + pathlen);
	if (check_fields(b + fields, hsize - fields) < 0)
		return -1;
	if (set_ext(r, b + fields, hsize - fields) < 0)
		return -1;
	r->dtype = dtype;
	r->c = c;
	r->h = h;
	r->w = w;
	r->label = label;
	r->patient = get32(b + 36);
	r->study = get16(b + 40);
	r->image = get16(b + 42);
	r->type = b[44];
	memcpy(r->path, b + MURA_FIXED_HEADER, pathlen);
	r->path[pathlen] = 0;
	*hsizep = hsize;
	*dsizep = dsize;
	return 0;
}

int
mura_write(FILE *f, const struct mura_record *r)
{
	unsigned char hdr[MURA_FIXED_HEADER + MURA_PATH_MAX + 8] = {0};
	static const unsigned char zeros[8];
	size_t pathlen = strlen(r->path), fields = pad8(MURA_FIXED_HEADER + pathlen);
	uint64_t hsize = fields + r->ext_len, dsize = mura_record_nbytes(r);

	if (!mura_dtype_size(r->dtype) || !r->c || !r->h || !r->w)
		return mura_error("record has no valid shape or dtype");
	if (isnan(r->label) || (r->label != MURA_LABEL_UNKNOWN && !(r->label >= 0 && r->label <= 1)))
		return mura_error("label %g is neither in [0, 1] nor -1 (unknown)", r->label);
	if (pathlen > MURA_PATH_MAX || hsize > MURA_MAX_HEADER || r->ext_len % 8)
		return mura_error("header too large");
	if (check_path((const unsigned char *)r->path, pathlen) < 0)
		return -1;
	memcpy(hdr, MURA_MAGIC, 4);
	put16(hdr + 4, MURA_VERSION);
	put16(hdr + 6, (uint16_t)r->dtype);
	put32(hdr + 8, (uint32_t)hsize);
	put32(hdr + 12, r->c);
	put32(hdr + 16, r->h);
	put32(hdr + 20, r->w);
	put64(hdr + 24, dsize);
	putf(hdr + 32, r->label);
	put32(hdr + 36, r->patient);
	put16(hdr + 40, r->study);
	put16(hdr + 42, r->image);
	hdr[44] = r->type;
	hdr[45] = 0;
	put16(hdr + 46, (uint16_t)pathlen);
	memcpy(hdr + MURA_FIXED_HEADER, r->path, pathlen);
	if (fwrite(hdr, 1, fields, f) != fields ||
	    (r->ext_len && fwrite(r->ext, 1, r->ext_len, f) != r->ext_len) ||
	    fwrite(r->data, 1, dsize, f) != dsize ||
	    fwrite(zeros, 1, pad8(dsize) - dsize, f) != pad8(dsize) - dsize)
		return mura_error("write error: %s", strerror(errno));
	return 0;
}

/* The data is stored little-endian; on a big-endian host it would need
 * swapping here.  We build for little-endian hosts only and say so. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "mura's stream I/O assumes a little-endian host"
#endif

int
mura_reader_open(struct mura_reader *rd, const char *path)
{
	FILE *f;

	if (!path || !strcmp(path, "-")) {
		mura_reader_from_file(rd, stdin, "stdin");
		return 0;
	}
	if (!(f = fopen(path, "rb")))
		return mura_error("%s: %s", path, strerror(errno));
	mura_reader_from_file(rd, f, path);
	rd->close = 1;
	return 0;
}

void
mura_reader_from_file(struct mura_reader *rd, FILE *f, const char *name)
{
	memset(rd, 0, sizeof *rd);
	rd->f = f;
	snprintf(rd->name, sizeof rd->name, "%s", name);
	rd->max_data = MURA_MAX_DATA;
}

void
mura_reader_free(struct mura_reader *rd)
{
	if (rd->close && rd->f)
		fclose(rd->f);
	rd->f = NULL;
}

/* Read exactly n bytes; returns n, or fewer at end of file or error. */
static size_t
readn(FILE *f, void *p, size_t n)
{
	return fread(p, 1, n, f);
}

int
mura_read(struct mura_reader *rd, struct mura_record *r)
{
	unsigned char hdr[MURA_MAX_HEADER];
	uint32_t hsize;
	uint64_t dsize, rest;
	size_t got;
	unsigned long long recno = rd->recno + 1;

	got = readn(rd->f, hdr, MURA_FIXED_HEADER);
	if (got == 0 && !ferror(rd->f))
		return 0;
	if (got < MURA_FIXED_HEADER) {
		if (ferror(rd->f))
			return mura_error("%s: record %llu: read error: %s", rd->name, recno, strerror(errno));
		return mura_error("%s: record %llu: truncated header (%zu of %d bytes)", rd->name, recno,
		                  got, MURA_FIXED_HEADER);
	}
	/* Validate the fixed part before trusting hsize to read the rest; a bad
	 * fixed part is reported by the parser from those 48 bytes alone. */
	hsize = get32(hdr + 8);
	if (!memcmp(hdr, MURA_MAGIC, 4) && get16(hdr + 4) == MURA_VERSION &&
	    hsize >= MURA_FIXED_HEADER && hsize <= MURA_MAX_HEADER && hsize % 8 == 0) {
		got = readn(rd->f, hdr + MURA_FIXED_HEADER, hsize - MURA_FIXED_HEADER);
		if (got < hsize - MURA_FIXED_HEADER)
			return mura_error("%s: record %llu: truncated header", rd->name, recno);
	} else {
		hsize = MURA_FIXED_HEADER;
	}
	if (mura_header_parse(hdr, hsize, r, &hsize, &dsize, rd->max_data) < 0 ||
	    mura_record_alloc(r, r->dtype, r->c, r->h, r->w) < 0)
		return mura_error_prefix("%s: record %llu", rd->name, recno);
	if (readn(rd->f, r->data, dsize) != dsize)
		return mura_error("%s: record %llu: truncated data (expected %llu bytes)", rd->name, recno,
		                  (unsigned long long)dsize);
	rest = pad8(dsize) - dsize;
	if (rest) {
		unsigned char pad[8];
		if (readn(rd->f, pad, rest) != rest)
			return mura_error("%s: record %llu: truncated padding", rd->name, recno);
	}
	rd->recno++;
	rd->offset += hsize + pad8(dsize);
	return 1;
}

int
mura_file_open(struct mura_file *mf, const char *path)
{
	struct stat st;
	struct mura_record r;
	uint64_t off = 0, cap = 0;
	int fd, rc = -1;

	memset(mf, 0, sizeof *mf);
	snprintf(mf->name, sizeof mf->name, "%s", path);
	if ((fd = open(path, O_RDONLY)) < 0)
		return mura_error("%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return mura_error("%s: not a regular file (random access needs one; use a file, not a pipe)", path);
	}
	mf->size = (size_t)st.st_size;
	if (mf->size) {
		void *m = mmap(NULL, mf->size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m == MAP_FAILED) {
			close(fd);
			return mura_error("%s: mmap: %s", path, strerror(errno));
		}
		mf->map = m;
	}
	close(fd);
	mura_record_init(&r);
	while (off < mf->size) {
		uint32_t hsize;
		uint64_t dsize, left = mf->size - off;
		unsigned long long recno = mf->n + 1;

		if (left < MURA_FIXED_HEADER) {
			mura_error("%s: record %llu: truncated header", path, recno);
			goto out;
		}
		if (mura_header_parse(mf->map + off, left, &r, &hsize, &dsize, UINT64_MAX) < 0) {
			mura_error_prefix("%s: record %llu", path, recno);
			goto out;
		}
		if (pad8(dsize) > left - hsize) {
			mura_error("%s: record %llu: truncated data", path, recno);
			goto out;
		}
		if (mf->n == cap) {
			uint64_t *p;
			cap = cap ? 2 * cap : 1024;
			if (!(p = realloc(mf->offset, cap * sizeof *p))) {
				mura_error("%s: out of memory", path);
				goto out;
			}
			mf->offset = p;
		}
		mf->offset[mf->n++] = off;
		off += hsize + pad8(dsize);
	}
	rc = 0;
out:
	mura_record_free(&r);
	if (rc < 0)
		mura_file_free(mf);
	return rc;
}

void
mura_file_free(struct mura_file *mf)
{
	if (mf->map)
		munmap((void *)mf->map, mf->size);
	free(mf->offset);
	memset(mf, 0, sizeof *mf);
}

int
mura_file_get(const struct mura_file *mf, uint64_t i, struct mura_record *r)
{
	uint32_t hsize;
	uint64_t dsize;
	const unsigned char *p;

	if (i >= mf->n)
		return mura_error("%s: record %llu: out of range (%llu records)", mf->name,
		                  (unsigned long long)i + 1, (unsigned long long)mf->n);
	p = mf->map + mf->offset[i];
	if (mura_header_parse(p, mf->size - mf->offset[i], r, &hsize, &dsize, UINT64_MAX) < 0)
		return mura_error_prefix("%s: record %llu", mf->name, (unsigned long long)i + 1);
	if (r->owned)
		free(r->data);
	r->owned = 0;
	r->data = (void *)(p + hsize);
	r->cap = dsize;
	return 0;
}
