/*
 * safetensors.h - reading and writing safetensors files, the model file format.
 *
 * Format (https://github.com/huggingface/safetensors):
 *   8 bytes   u64 little-endian N, the size of the JSON header; at most
 *             100000000 (the reference implementation's limit)
 *   N bytes   JSON object, UTF-8: for each tensor name
 *               {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}
 *             and optionally "__metadata__": {"key": "value", ...} (strings only);
 *             may be padded with trailing spaces (writers pad N to a multiple
 *             of 8, so that the data starts aligned)
 *   rest      the byte buffer; offsets are relative to its start, little-endian data,
 *             C order; tensors must not overlap and must cover the buffer exactly.
 *             end - begin must equal the dtype's size times the product of the
 *             shape ([] is a scalar: one element).
 *
 * Written: F32 and I64 (torchvision's num_batches_tracked), tensors in the
 * order given, "__metadata__" first, compact JSON as the reference writes it.
 * Read: every dtype of the format's classic set, converted to f32 (and the
 * integer ones to i64) on request: F64 F32 F16 BF16 I64 I32 I16 I8 U64 U32
 * U16 U8 BOOL.  The newer F8_*, F6_*, F4 and C64 are refused by name.
 *
 * A reader refuses, naming the problem and the tensor ("PATH: tensor 'NAME':
 * what", or "PATH: header: what"): a file too short, a header size beyond
 * the file or above the limit (checked before anything is allocated), bad
 * JSON or JSON that is not an object, an unknown or unsupported dtype, a
 * missing, repeated or unexpected key in a tensor's entry, a shape that is
 * not a list of at most MURA_ST_MAX_DIMS non-negative integers, data_offsets
 * that are not [begin, end] with begin <= end <= the buffer's size, a size
 * not equal to dtype size times shape, overlapping tensors, bytes of the
 * buffer that no tensor covers, a name given twice, a name holding a NUL,
 * and "__metadata__" that is not an object of strings.  Nothing is read out
 * of the file's bounds.
 */
#ifndef MURA_SAFETENSORS_H
#define MURA_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define MURA_ST_MAX_DIMS 8
#define MURA_ST_MAX_HEADER 100000000u

enum mura_st_dtype {
	MURA_ST_F32 = 1,
	MURA_ST_F16,
	MURA_ST_BF16,
	MURA_ST_I64,
	MURA_ST_F64,
	MURA_ST_I32,
	MURA_ST_I16,
	MURA_ST_I8,
	MURA_ST_U64,
	MURA_ST_U32,
	MURA_ST_U16,
	MURA_ST_U8,
	MURA_ST_BOOL,
	MURA_ST_DTYPE_COUNT
};

struct mura_st_tensor {
	char *name;                      /* no NUL inside: names with one are refused */
	int dtype;
	int ndim;                        /* 0 for a scalar */
	int64_t shape[MURA_ST_MAX_DIMS];
	uint64_t nelem;                  /* product of the shape (1 for a scalar) */
	const unsigned char *data;       /* into the mapped file; not aligned in general */
	uint64_t nbytes;
	const char *path;                /* the file's, for messages */
};

struct mura_st_file {
	char *path;                      /* malloc'd copy of the name given */
	const unsigned char *map;
	size_t size;
	int mapped;                      /* map is ours to unmap */
	struct mura_st_tensor *t;        /* in the header's order */
	size_t n;
	size_t *by_name;                 /* indices into t, sorted by name */
	char **meta_key, **meta_val;     /* __metadata__, in the header's order */
	size_t n_meta;
};

/* Map and validate a file.  Returns 0, or -1 with mura_error set (and f
 * left empty, safe to free). */
int mura_st_open(struct mura_st_file *f, const char *path);
/* Validate a file's image already in memory, size bytes; data must outlive
 * f.  name stands for the path in messages.  Returns 0 or -1. */
int mura_st_open_mem(struct mura_st_file *f, const void *data, size_t size, const char *name);
void mura_st_free(struct mura_st_file *f);
/* The tensor of that name, or NULL. */
const struct mura_st_tensor *mura_st_find(const struct mura_st_file *f, const char *name);
/* The metadata value for key, or NULL. */
const char *mura_st_meta(const struct mura_st_file *f, const char *key);

/* Convert a tensor's values to f32 into dst, which holds n values; n must equal
 * t->nelem (else -1 with a message naming the tensor and both counts).
 * Exact for F32, F16, BF16 (half subnormals, infinities and NaN included);
 * others round to nearest, as PyTorch's .float() does.  BOOL gives 0 or 1. */
int mura_st_to_f32(const struct mura_st_tensor *t, float *dst, uint64_t n);
/* The same into int64 for the integer dtypes and BOOL (a U64 value above
 * INT64_MAX is refused); a floating-point dtype is refused. */
int mura_st_to_i64(const struct mura_st_tensor *t, int64_t *dst, uint64_t n);

/* "F32", "BF16", ...; and the size of one element in bytes (0 if unknown). */
const char *mura_st_dtype_name(int dtype);
size_t mura_st_dtype_size(int dtype);

/* One tensor to write. */
struct mura_st_entry {
	const char *name;                /* UTF-8, not "__metadata__" */
	int dtype;                       /* MURA_ST_F32 or MURA_ST_I64 */
	int ndim;
	int64_t shape[MURA_ST_MAX_DIMS];
	const void *data;                /* host floats or int64s, C order */
};

/* Write a file atomically (temporary name, then rename): tensors in the order
 * given, metadata as n_meta key/value pairs (UTF-8; "__metadata__" left out
 * when n_meta is 0).  Refuses, writing nothing, a repeated name or key, a
 * dtype other than F32 or I64, a bad shape, text that is not UTF-8.
 * Returns 0 or -1. */
int mura_st_write(const char *path, const struct mura_st_entry *e, size_t n,
                  const char *const *meta_key, const char *const *meta_val, size_t n_meta);

#endif
