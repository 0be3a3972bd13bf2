/* keyset.c - open-addressing set of 64-bit keys; see keyset.h. */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "keyset.h"

static size_t
mix(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	return (size_t)k;
}

void
mura_keyset_init(struct mura_keyset *s)
{
	memset(s, 0, sizeof *s);
}

void
mura_keyset_free(struct mura_keyset *s)
{
	free(s->slot);
	mura_keyset_init(s);
}

static int
grow(struct mura_keyset *s)
{
	size_t cap = s->cap ? 2 * s->cap : 64;
	uint64_t *slot = calloc(cap, sizeof *slot);

	if (!slot)
		return mura_error("out of memory");
	for (size_t i = 0; i < s->cap; i++) {
		if (!s->slot[i])
			continue;
		size_t j = mix(s->slot[i]) & (cap - 1);
		while (slot[j])
			j = (j + 1) & (cap - 1);
		slot[j] = s->slot[i];
	}
	free(s->slot);
	s->slot = slot;
	s->cap = cap;
	return 0;
}

int
mura_keyset_add(struct mura_keyset *s, uint64_t key)
{
	size_t j;

	if (!key) {
		int was = s->has_zero;
		s->has_zero = 1;
		return !was;
	}
	if (2 * (s->n + 1) > s->cap && grow(s) < 0)
		return -1;
	for (j = mix(key) & (s->cap - 1); s->slot[j]; j = (j + 1) & (s->cap - 1))
		if (s->slot[j] == key)
			return 0;
	s->slot[j] = key;
	s->n++;
	return 1;
}

int
mura_keyset_has(const struct mura_keyset *s, uint64_t key)
{
	if (!key)
		return s->has_zero;
	if (!s->cap)
		return 0;
	for (size_t j = mix(key) & (s->cap - 1); s->slot[j]; j = (j + 1) & (s->cap - 1))
		if (s->slot[j] == key)
			return 1;
	return 0;
}

size_t
mura_keyset_count(const struct mura_keyset *s)
{
	return s->n + (size_t)s->has_zero;
}
