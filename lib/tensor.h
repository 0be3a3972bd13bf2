/*
 * tensor.h - the mura tensor stream format (MT), version 1.
 *
 * Every tool reads and writes streams of records in this format.  A stream is
 * a sequence of self-delimiting records with nothing between them, so
 * `cat a.mt b.mt > c.mt` of two valid streams is a valid stream, and a pipe
 * can carry one.  All integers are little-endian.  The same layout is
 * described for users in mura-tensor(5); the two must agree.
 *
 * A record is a header of `hsize` bytes followed by `dsize` bytes of data and
 * zero padding up to the next multiple of 8, so every record, and therefore
 * every concatenation of records, keeps 8-byte alignment of its data.
 *
 *   off size type  field
 *     0   4  char  magic     "MURA"
 *     4   2  u16   version   1; a reader rejects any other, naming it
 *     6   2  u16   dtype     1 = u8, 2 = u16, 3 = f32 (IEEE 754 binary32)
 *     8   4  u32   hsize     header bytes, a multiple of 8, 48 <= hsize <= 65536
 *    12   4  u32   channels  c >= 1
 *    16   4  u32   height    h >= 1
 *    20   4  u32   width     w >= 1
 *    24   8  u64   dsize     data bytes; must equal c * h * w * sizeof(dtype)
 *    32   4  f32   label     0 normal, 1 abnormal, in between after mixup,
 *                            -1 unknown; NaN or anything else is refused
 *    36   4  u32   patient   MURA patient number (patient00011 -> 11), 0 unknown
 *    40   2  u16   study     study number (study1_positive -> 1), 0 unknown
 *    42   2  u16   image     image number (image3.png -> 3), 0 unknown
 *    44   1  u8    type      study type: 0 unknown, 1 elbow, 2 finger,
 *                            3 forearm, 4 hand, 5 humerus, 6 shoulder, 7 wrist
 *    45   1  u8    flags     0; a reader rejects other values, naming them
 *    46   2  u16   pathlen   bytes of the source path that follows (no NUL)
 *    48   -  u8[]  path      the source path, UTF-8, pathlen bytes, no
 *                            control character (no byte < 0x20, no 0x7f)
 *     -   -  -     pad       zeros up to a multiple of 8
 *     -   -  -     fields    zero or more extension fields, up to hsize:
 *                              char tag[4], u32 len, u8 value[len], zeros to
 *                              a multiple of 8.
 *                            A tag whose first letter is lower case is
 *                            optional: a reader that does not know it keeps
 *                            it opaque and passes it on.  An upper-case first
 *                            letter marks a field a reader must understand:
 *                            an unknown one is refused, naming the tag.
 *                            Version 1 defines no fields.
 *  hsize   dsize  data      c * h * w values, channel-major (C, H, W), no gaps
 *     -   -  -     pad       zeros up to a multiple of 8
 *
 * Limits a reader enforces before it allocates or seeks: hsize as above;
 * c, h and w each at most 2^20; dsize at most MURA_MAX_DATA (1 GiB) unless
 * the caller raises it; pathlen fits inside hsize.  A path with a control
 * character is refused by the readers, mura_record_set_path and mura_write
 * alike ("path contains control character 0x0a at byte 12").
 */
#ifndef MURA_TENSOR_H
#define MURA_TENSOR_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define MURA_MAGIC "MURA"
#define MURA_VERSION 1
#define MURA_FIXED_HEADER 48
#define MURA_MAX_HEADER 65536
#define MURA_MAX_DIM (1u << 20)
#define MURA_MAX_DATA ((uint64_t)1 << 30)
#define MURA_PATH_MAX 4096
#define MURA_LABEL_UNKNOWN (-1.0f)

enum mura_dtype {
	MURA_DTYPE_U8 = 1,
	MURA_DTYPE_U16 = 2,
	MURA_DTYPE_F32 = 3,
};

enum mura_type {
	MURA_TYPE_UNKNOWN = 0,
	MURA_TYPE_ELBOW,
	MURA_TYPE_FINGER,
	MURA_TYPE_FOREARM,
	MURA_TYPE_HAND,
	MURA_TYPE_HUMERUS,
	MURA_TYPE_SHOULDER,
	MURA_TYPE_WRIST,
	MURA_TYPE_COUNT
};

/* One record.  `data` and `ext` are owned by the record and grown as needed;
 * a record read from a mapped file (mura_file_get) points into the mapping
 * instead and must not outlive it (`owned` is 0 then). */
struct mura_record {
	int dtype;
	uint32_t c, h, w;
	float label;
	uint32_t patient;
	uint16_t study, image;
	uint8_t type;
	char path[MURA_PATH_MAX + 1];
	void *data;
	size_t cap;         /* bytes allocated at data, when owned */
	unsigned char *ext; /* optional extension fields, raw, passed through */
	size_t ext_len, ext_cap;
	int owned;
};

/* A sequential reader over a FILE (a pipe, stdin, or a file). */
struct mura_reader {
	FILE *f;
	char name[MURA_PATH_MAX + 1]; /* for messages: the path, or "stdin" */
	uint64_t recno;               /* records read so far */
	uint64_t offset;              /* byte offset of the next record */
	uint64_t max_data;            /* refuse records with more data bytes */
	int close;                    /* whether free closes f */
};

/* A file indexed for random access: mapped, every header checked once. */
struct mura_file {
	char name[MURA_PATH_MAX + 1];
	const unsigned char *map;
	size_t size;
	uint64_t n;        /* records */
	uint64_t *offset;  /* offset[i]: where record i starts */
};

size_t mura_dtype_size(int dtype);
const char *mura_dtype_name(int dtype);
int mura_dtype_parse(const char *s);
const char *mura_type_name(int type);      /* "elbow", ..., "unknown" */
const char *mura_type_folder(int type);    /* "XR_ELBOW", ..., NULL */
int mura_type_parse(const char *s);        /* "elbow" or "XR_ELBOW"; -1 if neither */

void mura_record_init(struct mura_record *r);
void mura_record_free(struct mura_record *r);
/* Set the shape and dtype and make room for the data (contents undefined). */
int mura_record_alloc(struct mura_record *r, int dtype, uint32_t c, uint32_t h, uint32_t w);
/* Copy everything but the data buffer's contents from src: metadata, path, ext. */
int mura_record_copy_meta(struct mura_record *dst, const struct mura_record *src);
size_t mura_record_nelem(const struct mura_record *r);
size_t mura_record_nbytes(const struct mura_record *r);
int mura_record_set_path(struct mura_record *r, const char *path);

/* Open a path ("-" or NULL: stdin).  Returns 0, or -1 with mura_error set. */
int mura_reader_open(struct mura_reader *rd, const char *path);
void mura_reader_from_file(struct mura_reader *rd, FILE *f, const char *name);
void mura_reader_free(struct mura_reader *rd);
/* Read the next record.  Returns 1 on a record, 0 at a clean end of stream,
 * -1 on an error (mura_error says "name: record N: what is wrong"). */
int mura_read(struct mura_reader *rd, struct mura_record *r);

/* Write one record.  Returns 0, or -1 with mura_error set. */
int mura_write(FILE *f, const struct mura_record *r);

/* Map a file and index its records.  Returns 0, or -1 with mura_error set. */
int mura_file_open(struct mura_file *mf, const char *path);
void mura_file_free(struct mura_file *mf);
/* Fill r with record i; r->data points into the mapping (r->owned = 0). */
int mura_file_get(const struct mura_file *mf, uint64_t i, struct mura_record *r);

/* Parse and validate a record header held in memory; used by both readers.
 * `avail` is how many header bytes buf holds (at least MURA_FIXED_HEADER).
 * On success fills r's metadata (not data) and sets *hsize and *dsize. */
int mura_header_parse(const unsigned char *buf, size_t avail, struct mura_record *r,
                      uint32_t *hsize, uint64_t *dsize, uint64_t max_data);

#endif
