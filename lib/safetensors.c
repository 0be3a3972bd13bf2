/*
 * safetensors.c - reading (mapped, validated) and writing (atomic)
 * safetensors files; the layout and what is refused are in safetensors.h.
 *
 * The reader follows the reference implementation (huggingface/safetensors,
 * tensor.rs): header size at most 100 MB and inside the file, the tensors
 * sorted by offsets must tile the buffer exactly, each one's size equals its
 * dtype's size times its shape's product.  It is stricter where the reference
 * is silent: unknown keys in a tensor's entry, repeated names and keys are
 * refused, where serde would ignore or overwrite them.
 */
#define _GNU_SOURCE
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "json.h"
#include "safetensors.h"
#include "util.h"

static const struct {
	const char *name;
	unsigned size;
	int integral;                    /* convertible to int64 */
} dtypes[MURA_ST_DTYPE_COUNT] = {
	[MURA_ST_F32] = {"F32", 4, 0},
	[MURA_ST_F16] = {"F16", 2, 0},
	[MURA_ST_BF16] = {"BF16", 2, 0},
	[MURA_ST_I64] = {"I64", 8, 1},
	[MURA_ST_F64] = {"F64", 8, 0},
	[MURA_ST_I32] = {"I32", 4, 1},
	[MURA_ST_I16] = {"I16", 2, 1},
	[MURA_ST_I8] = {"I8", 1, 1},
	[MURA_ST_U64] = {"U64", 8, 1},
	[MURA_ST_U32] = {"U32", 4, 1},
	[MURA_ST_U16] = {"U16", 2, 1},
	[MURA_ST_U8] = {"U8", 1, 1},
	[MURA_ST_BOOL] = {"BOOL", 1, 1},
};

/* Dtypes of the format that this reader does not convert. */
static const char *const unsupported[] = {
	"F8_E5M2", "F8_E4M3", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64",
};

const char *
mura_st_dtype_name(int dtype)
{
	return dtype > 0 && dtype < MURA_ST_DTYPE_COUNT ? dtypes[dtype].name : "?";
}

size_t
mura_st_dtype_size(int dtype)
{
	return dtype > 0 && dtype < MURA_ST_DTYPE_COUNT ? dtypes[dtype].size : 0;
}

/* Little-endian access, independent of the host's byte order. */
static uint16_t get16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const unsigned char *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

static float
bits_f32(uint32_t u)
{
	float f;

	memcpy(&f, &u, 4);
	return f;
}

static float load_f32(const unsigned char *p) { return bits_f32(get32(p)); }
static float load_bf16(const unsigned char *p) { return bits_f32((uint32_t)get16(p) << 16); }
static double load_f64(const unsigned char *p)
{
	uint64_t u = get64(p);
	double d;

	memcpy(&d, &u, 8);
	return d;
}

/* IEEE binary16 to binary32, exactly: every half is a float.  A NaN keeps its
 * sign and payload and comes out quiet, as IEEE 754 converts a signaling one
 * (and as x86's vcvtph2ps and PyTorch's .float() do); a subnormal m * 2^-24 is
 * normal as a float. */
static float
load_f16(const unsigned char *p)
{
	uint32_t h = get16(p), sign = (h & 0x8000) << 16, e = h >> 10 & 0x1f, m = h & 0x3ff;

	if (e == 0x1f)
		return bits_f32(sign | 0x7f800000 | (m ? 0x400000 : 0) | m << 13);
	if (e)
		return bits_f32(sign | (e + 127 - 15) << 23 | m << 13);
	return sign ? -((float)m * 0x1p-24f) : (float)m * 0x1p-24f;
}

static int64_t load_i64(const unsigned char *p) { return (int64_t)get64(p); }
static int32_t load_i32(const unsigned char *p) { return (int32_t)get32(p); }
static int16_t load_i16(const unsigned char *p) { return (int16_t)get16(p); }
static int8_t load_i8(const unsigned char *p) { return (int8_t)p[0]; }
static uint64_t load_u64(const unsigned char *p) { return get64(p); }
static uint32_t load_u32(const unsigned char *p) { return get32(p); }
static uint16_t load_u16(const unsigned char *p) { return get16(p); }
static uint8_t load_u8(const unsigned char *p) { return p[0]; }
static uint8_t load_bool(const unsigned char *p) { return p[0] != 0; }

/* dst[i] = (T)load(element i), one loop per dtype. */
#define CONVERT(T, load, size)                                                \
	for (uint64_t i_ = 0; i_ < n; i_++)                                       \
		dst[i_] = (T)load(t->data + i_ * (size))

int
mura_st_to_f32(const struct mura_st_tensor *t, float *dst, uint64_t n)
{
	if (n != t->nelem)
		return mura_error("%s: tensor '%.200s': holds %" PRIu64 " values, not %" PRIu64,
		                  t->path, t->name, t->nelem, n);
	switch (t->dtype) {
	case MURA_ST_F32: CONVERT(float, load_f32, 4); break;
	case MURA_ST_F16: CONVERT(float, load_f16, 2); break;
	case MURA_ST_BF16: CONVERT(float, load_bf16, 2); break;
	case MURA_ST_F64: CONVERT(float, load_f64, 8); break;
	case MURA_ST_I64: CONVERT(float, load_i64, 8); break;
	case MURA_ST_I32: CONVERT(float, load_i32, 4); break;
	case MURA_ST_I16: CONVERT(float, load_i16, 2); break;
	case MURA_ST_I8: CONVERT(float, load_i8, 1); break;
	case MURA_ST_U64: CONVERT(float, load_u64, 8); break;
	case MURA_ST_U32: CONVERT(float, load_u32, 4); break;
	case MURA_ST_U16: CONVERT(float, load_u16, 2); break;
	case MURA_ST_U8: CONVERT(float, load_u8, 1); break;
	case MURA_ST_BOOL: CONVERT(float, load_bool, 1); break;
	default: assert(!"dtype validated by the reader");
	}
	return 0;
}

int
mura_st_to_i64(const struct mura_st_tensor *t, int64_t *dst, uint64_t n)
{
	if (n != t->nelem)
		return mura_error("%s: tensor '%.200s': holds %" PRIu64 " values, not %" PRIu64,
		                  t->path, t->name, t->nelem, n);
	switch (t->dtype) {
	case MURA_ST_I64: CONVERT(int64_t, load_i64, 8); break;
	case MURA_ST_I32: CONVERT(int64_t, load_i32, 4); break;
	case MURA_ST_I16: CONVERT(int64_t, load_i16, 2); break;
	case MURA_ST_I8: CONVERT(int64_t, load_i8, 1); break;
	case MURA_ST_U64:
		for (uint64_t i = 0; i < n; i++) {
			uint64_t v = load_u64(t->data + i * 8);
			if (v > INT64_MAX)
				return mura_error("%s: tensor '%.200s': value %" PRIu64
				                  " does not fit in int64",
				                  t->path, t->name, v);
			dst[i] = (int64_t)v;
		}
		break;
	case MURA_ST_U32: CONVERT(int64_t, load_u32, 4); break;
	case MURA_ST_U16: CONVERT(int64_t, load_u16, 2); break;
	case MURA_ST_U8: CONVERT(int64_t, load_u8, 1); break;
	case MURA_ST_BOOL: CONVERT(int64_t, load_bool, 1); break;
	default:
		return mura_error("%s: tensor '%.200s': %s is not an integer dtype",
		                  t->path, t->name, mura_st_dtype_name(t->dtype));
	}
	return 0;
}

/*
 * Elements and bytes of a shape; -1 if either overflows 64 bits.  A zero
 * dimension makes the product 0 whatever the others are.
 */
static int
count(const int64_t *shape, int ndim, size_t es, uint64_t *nelem, uint64_t *nbytes)
{
	uint64_t p = 1;
	int zero = 0, over = 0;

	for (int d = 0; d < ndim; d++) {
		uint64_t v = (uint64_t)shape[d];
		if (!v)
			zero = 1;
		else if (p > UINT64_MAX / v)
			over = 1;
		else
			p *= v;
	}
	if (zero)
		p = 0;
	else if (over || p > UINT64_MAX / es)
		return -1;
	*nelem = p;
	*nbytes = p * es;
	return 0;
}

static const char *
shape_str(const int64_t *shape, int ndim, char *buf, size_t size)
{
	size_t k = 0;

	k += snprintf(buf, size, "[");
	for (int d = 0; d < ndim && k < size; d++)
		k += snprintf(buf + k, size - k, "%s%" PRId64, d ? ", " : "", shape[d]);
	if (k < size)
		snprintf(buf + k, size - k, "]");
	return buf;
}

/* A name and where it came from, to sort names and find repeats. */
struct named {
	const char *name;
	size_t i;
};

static int
cmp_named(const void *a, const void *b)
{
	return strcmp(((const struct named *)a)->name, ((const struct named *)b)->name);
}

/* Sort a[0, n) by name; the first name that repeats, or NULL. */
static const char *
sort_named(struct named *a, size_t n)
{
	qsort(a, n, sizeof *a, cmp_named);
	for (size_t i = 1; i < n; i++)
		if (!strcmp(a[i - 1].name, a[i].name))
			return a[i].name;
	return NULL;
}

/* ---- reading ---- */

static int
read_dtype(struct mura_json *j, struct mura_st_tensor *t)
{
	char *s;

	if (mura_json_string(j, &s, NULL) < 0)
		return mura_error_prefix("dtype");
	for (int d = 1; d < MURA_ST_DTYPE_COUNT; d++)
		if (!strcmp(s, dtypes[d].name)) {
			t->dtype = d;
			free(s);
			return 0;
		}
	for (size_t i = 0; i < sizeof unsupported / sizeof *unsupported; i++)
		if (!strcmp(s, unsupported[i])) {
			mura_error("dtype %s is not supported", s);
			free(s);
			return -1;
		}
	mura_error("unknown dtype '%.40s'", s);
	free(s);
	return -1;
}

static int
read_shape(struct mura_json *j, struct mura_st_tensor *t)
{
	uint64_t d;
	int r;

	if (mura_json_array_begin(j) < 0)
		return mura_error_prefix("shape");
	while ((r = mura_json_array_next(j)) > 0) {
		if (t->ndim == MURA_ST_MAX_DIMS)
			return mura_error("shape has more than %d dimensions", MURA_ST_MAX_DIMS);
		if (mura_json_u64(j, &d) < 0)
			return mura_error_prefix("shape");
		if (d > INT64_MAX)
			return mura_error("shape: dimension %" PRIu64 " is too large", d);
		t->shape[t->ndim++] = (int64_t)d;
	}
	return r < 0 ? mura_error_prefix("shape") : 0;
}

static int
read_offsets(struct mura_json *j, uint64_t off[2])
{
	int n = 0, r;

	if (mura_json_array_begin(j) < 0)
		return mura_error_prefix("data_offsets");
	while ((r = mura_json_array_next(j)) > 0) {
		if (n == 2)
			return mura_error("data_offsets has more than 2 numbers");
		if (mura_json_u64(j, &off[n++]) < 0)
			return mura_error_prefix("data_offsets");
	}
	if (r < 0)
		return mura_error_prefix("data_offsets");
	if (n != 2)
		return mura_error("data_offsets has %d number%s, not 2", n, n == 1 ? "" : "s");
	return 0;
}

/* One tensor's entry; buf is the data buffer, of buf_size bytes. */
static int
read_entry(struct mura_json *j, struct mura_st_tensor *t, const unsigned char *buf, uint64_t buf_size)
{
	int have[3] = {0, 0, 0}, type, r;
	uint64_t off[2], need;
	char *key, sh[256];

	if ((type = mura_json_peek(j)) < 0)
		return -1;
	if (type != MURA_JSON_OBJECT)
		return mura_error("entry is %s, not an object", mura_json_type_name(type));
	if (mura_json_object_begin(j) < 0)
		return -1;
	while ((r = mura_json_object_next(j, &key, NULL)) > 0) {
		int k = !strcmp(key, "dtype") ? 0 : !strcmp(key, "shape") ? 1
		      : !strcmp(key, "data_offsets") ? 2 : -1;

		if (k < 0)
			r = mura_error("unexpected key '%.100s' (want dtype, shape and data_offsets)", key);
		else if (have[k]++)
			r = mura_error("key '%s' appears twice", key);
		else
			r = k == 0 ? read_dtype(j, t) : k == 1 ? read_shape(j, t) : read_offsets(j, off);
		free(key);
		if (r < 0)
			return -1;
	}
	if (r < 0)
		return -1;
	for (int k = 0; k < 3; k++)
		if (!have[k])
			return mura_error("no %s", k == 0 ? "dtype" : k == 1 ? "shape" : "data_offsets");
	if (off[0] > off[1])
		return mura_error("data_offsets [%" PRIu64 ", %" PRIu64 "]: begin is after end",
		                  off[0], off[1]);
	if (off[1] > buf_size)
		return mura_error("data_offsets [%" PRIu64 ", %" PRIu64 "] go beyond the %" PRIu64
		                  "-byte data buffer", off[0], off[1], buf_size);
	shape_str(t->shape, t->ndim, sh, sizeof sh);
	if (count(t->shape, t->ndim, dtypes[t->dtype].size, &t->nelem, &need) < 0)
		return mura_error("shape %s has too many elements", sh);
	if (off[1] - off[0] != need)
		return mura_error("data_offsets [%" PRIu64 ", %" PRIu64 "] hold %" PRIu64
		                  " bytes, but %s of shape %s needs %" PRIu64,
		                  off[0], off[1], off[1] - off[0], dtypes[t->dtype].name, sh, need);
	t->data = buf + off[0];
	t->nbytes = need;
	return 0;
}

static int
read_meta(struct mura_st_file *f, struct mura_json *j)
{
	struct named *a;
	const char *dup;
	size_t cap = 0, len;
	char *key;
	int type, r;

	if ((type = mura_json_peek(j)) < 0)
		return -1;
	if (type != MURA_JSON_OBJECT)
		return mura_error("%s, not an object", mura_json_type_name(type));
	if (mura_json_object_begin(j) < 0)
		return -1;
	while ((r = mura_json_object_next(j, &key, &len)) > 0) {
		if (f->n_meta == cap) {
			size_t c = cap ? 2 * cap : 16;
			char **k = realloc(f->meta_key, c * sizeof *k), **v;
			if (k)
				f->meta_key = k;
			if (!k || !(v = realloc(f->meta_val, c * sizeof *v))) {
				free(key);
				return mura_error("out of memory");
			}
			f->meta_val = v;
			cap = c;
		}
		f->meta_key[f->n_meta] = key;
		f->meta_val[f->n_meta++] = NULL;
		if (memchr(key, 0, len))
			return mura_error("a key holds a NUL byte (\\u0000)");
		if ((type = mura_json_peek(j)) < 0)
			return -1;
		if (type != MURA_JSON_STRING)
			return mura_error("the value of '%.200s' is %s, not a string", key,
			                  mura_json_type_name(type));
		if (mura_json_string(j, &f->meta_val[f->n_meta - 1], &len) < 0)
			return -1;
		if (memchr(f->meta_val[f->n_meta - 1], 0, len))
			return mura_error("the value of '%.200s' holds a NUL byte (\\u0000)", key);
	}
	if (r < 0)
		return -1;
	if (!f->n_meta)
		return 0;
	if (!(a = malloc(f->n_meta * sizeof *a)))
		return mura_error("out of memory");
	for (size_t i = 0; i < f->n_meta; i++)
		a[i] = (struct named){f->meta_key[i], i};
	dup = sort_named(a, f->n_meta);
	if (dup)
		mura_error("key '%.200s' appears twice", dup);
	free(a);
	return dup ? -1 : 0;
}

/* Names must be unique; keep them sorted for mura_st_find. */
static int
index_names(struct mura_st_file *f)
{
	struct named *a;
	const char *dup;

	if (!f->n)
		return 0;
	if (!(a = malloc(f->n * sizeof *a)) || !(f->by_name = malloc(f->n * sizeof *f->by_name))) {
		free(a);
		return mura_error("header: out of memory for %zu tensors", f->n);
	}
	for (size_t i = 0; i < f->n; i++)
		a[i] = (struct named){f->t[i].name, i};
	dup = sort_named(a, f->n);
	for (size_t i = 0; i < f->n; i++)
		f->by_name[i] = a[i].i;
	if (dup)
		mura_error("tensor '%.200s': appears twice in the header", dup);
	free(a);
	return dup ? -1 : 0;
}

static int
cmp_offset(const void *a, const void *b)
{
	const struct mura_st_tensor *x = *(const struct mura_st_tensor *const *)a;
	const struct mura_st_tensor *y = *(const struct mura_st_tensor *const *)b;

	if (x->data != y->data)
		return x->data < y->data ? -1 : 1;
	return (x->nbytes > y->nbytes) - (x->nbytes < y->nbytes);
}

/* Sorted by offsets, the tensors must tile the buffer: no overlap, no gap. */
static int
check_tiling(const struct mura_st_file *f, const unsigned char *buf, uint64_t buf_size)
{
	const struct mura_st_tensor **p = NULL;
	uint64_t at = 0;
	int r = 0;

	if (f->n) {
		if (!(p = malloc(f->n * sizeof *p)))
			return mura_error("header: out of memory for %zu tensors", f->n);
		for (size_t i = 0; i < f->n; i++)
			p[i] = &f->t[i];
		qsort(p, f->n, sizeof *p, cmp_offset);
	}
	for (size_t i = 0; i < f->n && !r; i++) {
		uint64_t begin = (uint64_t)(p[i]->data - buf);
		if (begin < at) {
			uint64_t pb = (uint64_t)(p[i - 1]->data - buf);
			r = mura_error("tensor '%.200s': data_offsets [%" PRIu64 ", %" PRIu64 "] overlap "
			               "those of tensor '%.200s' [%" PRIu64 ", %" PRIu64 "]", p[i]->name, begin,
			               begin + p[i]->nbytes, p[i - 1]->name, pb, pb + p[i - 1]->nbytes);
		} else if (begin > at) {
			r = mura_error("header: bytes [%" PRIu64 ", %" PRIu64 ") of the data buffer belong "
			               "to no tensor (before tensor '%.200s')",
			               at, begin, p[i]->name);
		}
		at = begin + p[i]->nbytes;
	}
	if (!r && at != buf_size)
		r = mura_error("header: bytes [%" PRIu64 ", %" PRIu64 ") of the data buffer belong "
		               "to no tensor",
		               at, buf_size);
	free(p);
	return r;
}

/* Validate f->map[0, f->size) and fill f; messages lack only the path. */
static int
parse(struct mura_st_file *f)
{
	const unsigned char *buf;
	uint64_t hsize, buf_size;
	struct mura_json j;
	size_t cap = 0, len;
	int r, type, have_meta = 0;
	char *key;

	if (f->size < 8)
		return mura_error("header: the file has %zu bytes, too few for the 8-byte header size",
		                  f->size);
	hsize = get64(f->map);
	if (hsize > MURA_ST_MAX_HEADER)
		return mura_error("header: size %" PRIu64 " is more than the %u allowed", hsize,
		                  MURA_ST_MAX_HEADER);
	if (hsize > f->size - 8)
		return mura_error("header: size %" PRIu64 " goes beyond the end of the file "
		                  "(%zu bytes follow)",
		                  hsize, f->size - 8);
	buf = f->map + 8 + hsize;
	buf_size = f->size - 8 - hsize;
	mura_json_init(&j, (const char *)f->map + 8, hsize);
	if ((type = mura_json_peek(&j)) < 0)
		return mura_error_prefix("header");
	if (type != MURA_JSON_OBJECT)
		return mura_error("header: %s, not a JSON object", mura_json_type_name(type));
	if (mura_json_object_begin(&j) < 0)
		return mura_error_prefix("header");
	while ((r = mura_json_object_next(&j, &key, &len)) > 0) {
		struct mura_st_tensor *t;

		if (memchr(key, 0, len)) {
			mura_error("header: the name '%.200s...' holds a NUL byte (\\u0000)", key);
			free(key);
			return -1;
		}
		if (!strcmp(key, "__metadata__")) {
			free(key);
			if (have_meta++)
				return mura_error("header: __metadata__ appears twice");
			if (read_meta(f, &j) < 0)
				return mura_error_prefix("header: __metadata__");
			continue;
		}
		if (f->n == cap) {
			size_t c = cap ? 2 * cap : 64;
			void *p = realloc(f->t, c * sizeof *f->t);
			if (!p) {
				free(key);
				return mura_error("header: out of memory for %zu tensors", c);
			}
			f->t = p;
			cap = c;
		}
		t = &f->t[f->n++];
		memset(t, 0, sizeof *t);
		t->name = key;
		t->path = f->path;
		if (read_entry(&j, t, buf, buf_size) < 0)
			return mura_error_prefix("tensor '%.200s'", t->name);
	}
	if (r < 0 || mura_json_end(&j) < 0)
		return mura_error_prefix("header");
	if (index_names(f) < 0)
		return -1;
	return check_tiling(f, buf, buf_size);
}

int
mura_st_open(struct mura_st_file *f, const char *path)
{
	struct stat st;
	int fd;

	memset(f, 0, sizeof *f);
	if (!(f->path = strdup(path)))
		return mura_error("%s: out of memory", path);
	if ((fd = open(path, O_RDONLY)) < 0) {
		mura_error("%s: %s", path, strerror(errno));
		goto fail;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		mura_error("%s: not a regular file", path);
		goto fail;
	}
	f->size = (size_t)st.st_size;
	if (f->size) {
		void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m == MAP_FAILED) {
			mura_error("%s: mmap: %s", path, strerror(errno));
			close(fd);
			goto fail;
		}
		f->map = m;
		f->mapped = 1;
	}
	close(fd);
	if (parse(f) < 0) {
		mura_error_prefix("%s", path);
		goto fail;
	}
	return 0;
fail:
	mura_st_free(f);
	return -1;
}

int
mura_st_open_mem(struct mura_st_file *f, const void *data, size_t size, const char *name)
{
	memset(f, 0, sizeof *f);
	if (!(f->path = strdup(name)))
		return mura_error("%s: out of memory", name);
	f->map = data;
	f->size = size;
	if (parse(f) < 0) {
		mura_error_prefix("%s", name);
		mura_st_free(f);
		return -1;
	}
	return 0;
}

void
mura_st_free(struct mura_st_file *f)
{
	if (f->mapped)
		munmap((void *)f->map, f->size);
	for (size_t i = 0; i < f->n; i++)
		free(f->t[i].name);
	for (size_t i = 0; i < f->n_meta; i++) {
		free(f->meta_key[i]);
		free(f->meta_val[i]);
	}
	free(f->t);
	free(f->by_name);
	free(f->meta_key);
	free(f->meta_val);
	free(f->path);
	memset(f, 0, sizeof *f);
}

const struct mura_st_tensor *
mura_st_find(const struct mura_st_file *f, const char *name)
{
	size_t lo = 0, hi = f->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct mura_st_tensor *t = &f->t[f->by_name[mid]];
		int c = strcmp(name, t->name);
		if (!c)
			return t;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

const char *
mura_st_meta(const struct mura_st_file *f, const char *key)
{
	for (size_t i = 0; i < f->n_meta; i++)
		if (!strcmp(f->meta_key[i], key))
			return f->meta_val[i];
	return NULL;
}

/* ---- writing ---- */

/* Host values to little-endian bytes, through a buffer. */
static void
write_le(FILE *f, const void *data, uint64_t nelem, size_t es)
{
	unsigned char buf[1 << 16];
	const unsigned char *p = data;
	size_t k = 0;

	for (uint64_t i = 0; i < nelem; i++, p += es) {
		uint64_t v;
		if (es == 4) {
			uint32_t u;
			memcpy(&u, p, 4);
			v = u;
		} else {
			memcpy(&v, p, 8);
		}
		for (size_t b = 0; b < es; b++)
			buf[k++] = (unsigned char)(v >> 8 * b);
		if (k == sizeof buf) {
			fwrite(buf, 1, k, f);
			k = 0;
		}
	}
	fwrite(buf, 1, k, f);
}

static int
check_entry(const struct mura_st_entry *e, uint64_t *nbytes)
{
	uint64_t nelem;

	if (!mura_json_utf8_valid(e->name, strlen(e->name)))
		return mura_error("the name is not valid UTF-8");
	if (!strcmp(e->name, "__metadata__"))
		return mura_error("the name __metadata__ is reserved for the metadata");
	if (e->dtype != MURA_ST_F32 && e->dtype != MURA_ST_I64)
		return mura_error("cannot write dtype %s (only F32 and I64)", mura_st_dtype_name(e->dtype));
	if (e->ndim < 0 || e->ndim > MURA_ST_MAX_DIMS)
		return mura_error("%d dimensions, not 0 to %d", e->ndim, MURA_ST_MAX_DIMS);
	for (int d = 0; d < e->ndim; d++)
		if (e->shape[d] < 0)
			return mura_error("dimension %d is negative (%" PRId64 ")", d, e->shape[d]);
	if (count(e->shape, e->ndim, dtypes[e->dtype].size, &nelem, nbytes) < 0)
		return mura_error("too many elements");
	assert(e->data || !*nbytes);
	return 0;
}

/* Check what is to be written; messages lack only the path. */
static int
check_write(const struct mura_st_entry *e, size_t n, uint64_t *nbytes,
            const char *const *meta_key, const char *const *meta_val, size_t n_meta)
{
	struct named *a;
	const char *dup;
	uint64_t total = 0;
	size_t m = n > n_meta ? n : n_meta;

	for (size_t i = 0; i < n; i++) {
		if (check_entry(&e[i], &nbytes[i]) < 0)
			return mura_error_prefix("tensor '%.200s'", e[i].name);
		if (nbytes[i] > UINT64_MAX - total)
			return mura_error("header: the tensors hold more than 2^64 bytes");
		total += nbytes[i];
	}
	for (size_t i = 0; i < n_meta; i++)
		if (!mura_json_utf8_valid(meta_key[i], strlen(meta_key[i])) ||
		    !mura_json_utf8_valid(meta_val[i], strlen(meta_val[i])))
			return mura_error("header: metadata '%.200s': not valid UTF-8", meta_key[i]);
	if (!m)
		return 0;
	if (!(a = malloc(m * sizeof *a)))
		return mura_error("out of memory");
	for (size_t i = 0; i < n; i++)
		a[i] = (struct named){e[i].name, i};
	if ((dup = sort_named(a, n)))
		mura_error("tensor '%.200s': given twice", dup);
	for (size_t i = 0; !dup && i < n_meta; i++)
		a[i] = (struct named){meta_key[i], i};
	if (!dup && (dup = sort_named(a, n_meta)))
		mura_error("header: metadata key '%.200s' given twice", dup);
	free(a);
	return dup ? -1 : 0;
}

int
mura_st_write(const char *path, const struct mura_st_entry *e, size_t n,
              const char *const *meta_key, const char *const *meta_val, size_t n_meta)
{
	uint64_t *nbytes, off = 0, total;
	unsigned char size8[8];
	struct mura_out o;
	char *hdr = NULL;
	size_t hlen = 0, pad;
	FILE *h;

	if (!(nbytes = malloc((n ? n : 1) * sizeof *nbytes)))
		return mura_error("%s: out of memory", path);
	if (check_write(e, n, nbytes, meta_key, meta_val, n_meta) < 0) {
		free(nbytes);
		return mura_error_prefix("%s", path);
	}
	/* The header as serde_json writes it: compact, "__metadata__" first.
	 * Names and values were checked to be UTF-8, so quoting cannot fail. */
	if (!(h = open_memstream(&hdr, &hlen))) {
		free(nbytes);
		return mura_error("%s: %s", path, strerror(errno));
	}
	putc('{', h);
	if (n_meta) {
		fputs("\"__metadata__\":{", h);
		for (size_t i = 0; i < n_meta; i++) {
			if (i)
				putc(',', h);
			mura_json_write_string(h, meta_key[i], strlen(meta_key[i]));
			putc(':', h);
			mura_json_write_string(h, meta_val[i], strlen(meta_val[i]));
		}
		putc('}', h);
	}
	for (size_t i = 0; i < n; i++) {
		if (i || n_meta)
			putc(',', h);
		mura_json_write_string(h, e[i].name, strlen(e[i].name));
		fprintf(h, ":{\"dtype\":\"%s\",\"shape\":[", dtypes[e[i].dtype].name);
		for (int d = 0; d < e[i].ndim; d++)
			fprintf(h, "%s%" PRId64, d ? "," : "", e[i].shape[d]);
		fprintf(h, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", off, off + nbytes[i]);
		off += nbytes[i];
	}
	putc('}', h);
	if (ferror(h) | fclose(h)) {
		free(hdr);
		free(nbytes);
		return mura_error("%s: out of memory for the header", path);
	}
	/* Padding to a multiple of 8 aligns the data, as the reference does. */
	pad = (8 - hlen % 8) % 8;
	total = (uint64_t)hlen + pad;
	if (total > MURA_ST_MAX_HEADER) {
		free(hdr);
		free(nbytes);
		return mura_error("%s: header: %" PRIu64 " bytes, more than the %u a reader accepts",
		                  path, total, MURA_ST_MAX_HEADER);
	}
	if (mura_out_open(&o, path) < 0) {
		free(hdr);
		free(nbytes);
		return -1;
	}
	for (int b = 0; b < 8; b++)
		size8[b] = (unsigned char)(total >> 8 * b);
	fwrite(size8, 1, 8, o.f);
	fwrite(hdr, 1, hlen, o.f);
	fwrite("       ", 1, pad, o.f);
	for (size_t i = 0; i < n; i++)
		write_le(o.f, e[i].data, nbytes[i] / dtypes[e[i].dtype].size, dtypes[e[i].dtype].size);
	free(hdr);
	free(nbytes);
	return mura_out_commit(&o);
}
