/*
 * split.h - dividing MURA studies into two parts by patient, stratified by
 * study type (mura-split): the seed paper kept 30% of each type of `valid`
 * as its test set, with no patient on both sides.
 */
#ifndef MURA_SPLIT_H
#define MURA_SPLIT_H

#include <stddef.h>
#include <stdint.h>

struct mura_split_item {
	int type;          /* enum mura_type, > 0 */
	uint32_t patient;
	uint16_t study;
	int part;          /* out: 1 or 2 */
};

/*
 * Assign every item to part 2 (the fraction) or part 1 (the rest).  Items
 * with the same patient always share a part.  For each study type T with S_T
 * distinct studies, part 2 receives round(fraction * S_T) of them whenever
 * whole patients allow it; patients are taken in an order fixed by the seed
 * and their number, so the result depends neither on the input order nor on
 * whether the items are images or studies.  Returns 0, or -1 (out of memory).
 */
int mura_split_assign(struct mura_split_item *items, size_t n, double fraction, uint64_t seed);

#endif
