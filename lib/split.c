/*
 * split.c - patient-level, type-stratified split; see split.h.
 *
 * Greedy: for each type in turn, patients (in seeded hash order) join part 2
 * while that keeps the type's count of part-2 studies at or below its
 * target; patients already placed by an earlier type count where they are.
 * Skipping a patient that would overshoot lets a smaller one fill the gap,
 * so the target is met exactly unless every remaining patient is too big.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "keyset.h"
#include "rng.h"
#include "split.h"
#include "tensor.h"

struct patient {
	uint32_t id;
	uint64_t order;
	int part;                        /* 0 until placed */
	uint32_t studies[MURA_TYPE_COUNT];
};

static int
by_order(const void *a, const void *b)
{
	const struct patient *p = a, *q = b;
	if (p->order != q->order)
		return p->order < q->order ? -1 : 1;
	return (p->id > q->id) - (p->id < q->id);
}

static int
by_id(const void *a, const void *b)
{
	const struct patient *p = a, *q = b;
	return (p->id > q->id) - (p->id < q->id);
}

static struct patient *
find(struct patient *p, size_t n, uint32_t id)
{
	struct patient key = {.id = id};
	return bsearch(&key, p, n, sizeof *p, by_id);
}

int
mura_split_assign(struct mura_split_item *it, size_t n, double fraction, uint64_t seed)
{
	struct mura_keyset studies;
	struct patient *pat = NULL;
	size_t np = 0;
	uint32_t total[MURA_TYPE_COUNT] = {0};
	int rc = -1;

	mura_keyset_init(&studies);
	if (n && !(pat = calloc(n, sizeof *pat)))
		goto out;
	/* Distinct patients, sorted by id for lookup. */
	for (size_t i = 0; i < n; i++)
		pat[i].id = it[i].patient;
	qsort(pat, n, sizeof *pat, by_id);
	for (size_t i = 0; i < n; i++)
		if (!np || pat[np - 1].id != pat[i].id)
			pat[np++] = pat[i];
	/* Distinct studies per patient and type. */
	for (size_t i = 0; i < n; i++) {
		uint64_t key = (uint64_t)it[i].type << 56 | (uint64_t)it[i].patient << 16 | it[i].study;
		int added = mura_keyset_add(&studies, key);
		if (added < 0)
			goto out;
		if (added) {
			find(pat, np, it[i].patient)->studies[it[i].type]++;
			total[it[i].type]++;
		}
	}
	for (size_t i = 0; i < np; i++) {
		struct mura_rng r;
		mura_rng_seed(&r, seed ^ ((uint64_t)pat[i].id * 0x9e3779b97f4a7c15ull));
		pat[i].order = mura_rng_u64(&r);
	}
	qsort(pat, np, sizeof *pat, by_order);
	for (int t = 1; t < MURA_TYPE_COUNT; t++) {
		uint32_t target = (uint32_t)lround(fraction * total[t]), have = 0;
		for (size_t i = 0; i < np; i++)
			if (pat[i].part == 2)
				have += pat[i].studies[t];
		for (size_t i = 0; i < np && have < target; i++) {
			if (pat[i].part || !pat[i].studies[t] || have + pat[i].studies[t] > target)
				continue;
			pat[i].part = 2;
			have += pat[i].studies[t];
		}
		for (size_t i = 0; i < np; i++)
			if (!pat[i].part && pat[i].studies[t])
				pat[i].part = 1;
	}
	qsort(pat, np, sizeof *pat, by_id);
	for (size_t i = 0; i < n; i++) {
		struct patient *p = find(pat, np, it[i].patient);
		it[i].part = p->part ? p->part : 1;
	}
	rc = 0;
out:
	if (rc < 0)
		mura_error("out of memory");
	free(pat);
	mura_keyset_free(&studies);
	return rc;
}
