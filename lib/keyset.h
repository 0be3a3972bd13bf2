/*
 * keyset.h - a set of 64-bit keys (open addressing), for counting distinct
 * patients and studies in a stream without holding the stream.
 */
#ifndef MURA_KEYSET_H
#define MURA_KEYSET_H

#include <stddef.h>
#include <stdint.h>

struct mura_keyset {
	uint64_t *slot; /* 0 marks an empty slot; key 0 is stored as has_zero */
	size_t cap, n;
	int has_zero;
};

void mura_keyset_init(struct mura_keyset *s);
void mura_keyset_free(struct mura_keyset *s);
/* Add key; returns 1 if it was new, 0 if present, -1 when out of memory. */
int mura_keyset_add(struct mura_keyset *s, uint64_t key);
int mura_keyset_has(const struct mura_keyset *s, uint64_t key);
size_t mura_keyset_count(const struct mura_keyset *s);

#endif
