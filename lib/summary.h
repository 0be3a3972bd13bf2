/*
 * summary.h - what a stream holds, gathered one record at a time in memory
 * bounded by the number of distinct studies and patients (mura-info).
 */
#ifndef MURA_SUMMARY_H
#define MURA_SUMMARY_H

#include <stdint.h>

#include "keyset.h"
#include "tensor.h"

#define MURA_SUMMARY_SHAPES 8

struct mura_summary_type {
	uint64_t images, abnormal, normal, mixed, unknown;
	struct mura_keyset studies, abnormal_studies, patients;
};

struct mura_summary {
	uint64_t records, bytes;
	uint64_t dtype[4];                      /* by enum mura_dtype */
	struct { uint32_t c, h, w; uint64_t n; } shape[MURA_SUMMARY_SHAPES];
	int nshape;
	uint64_t other_shapes;                  /* records beyond the first 8 shapes */
	struct mura_summary_type type[MURA_TYPE_COUNT + 1]; /* [MURA_TYPE_COUNT]: all */
};

void mura_summary_init(struct mura_summary *s);
void mura_summary_free(struct mura_summary *s);
/* Count one record in.  Returns 0, or -1 when out of memory. */
int mura_summary_add(struct mura_summary *s, const struct mura_record *r);

#endif
