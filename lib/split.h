/*
 * split.h - dividing MURA studies into two parts by patient, stratified by
 * study type (mura-split): the seed paper kept 30% of each type of `valid`
 * as its test set, with no patient on both sides.
 */
#ifndef MURA_SPLIT_H
#define MURA_SPLIT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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

/*
 * A MURA CSV list held in memory: its lines (without the line end) and, for
 * each, the item its path gives.  A line is "PATH" or "PATH,MORE" (MURA's
 * image paths and labeled studies files); PATH must hold XR_<TYPE>,
 * patientN and studyK.
 */
struct mura_split_list {
	struct mura_split_item *items;
	char **lines;
	size_t n, cap;
};

void mura_split_list_init(struct mura_split_list *l);
void mura_split_list_free(struct mura_split_list *l);
/* Append every line of f (an LF ends a line, a CR before it is dropped).
 * name is f's name in messages: "NAME: line N: 'TEXT' is not a MURA path
 * with XR_<TYPE>/patientN/studyK".  Returns 0, or -1 with mura_error set
 * (the lines before the bad one stay in l). */
int mura_split_read(struct mura_split_list *l, FILE *f, const char *name);

#endif
