/*
 * split.c - patient-level, type-stratified split; see split.h.
 *
 * Greedy: for each type in turn, patients (in seeded hash order) join part 2
 * while that keeps the type's count of part-2 studies at or below its
 * target; patients already placed by an earlier type count where they are.
 * Skipping a patient that would overshoot lets a smaller one fill the gap,
 * so the target is met exactly unless every remaining patient is too big.
 *
 * Also the reading of the CSV list itself (mura_split_read), lines kept.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "keyset.h"
#include "rng.h"
#include "split.h"
#include "tensor.h"
#include "util.h"

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

	if (!n)
		return 0; /* nothing to place (and qsort must not see a NULL array) */
	mura_keyset_init(&studies);
	if (!(pat = calloc(n, sizeof *pat)))
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

void
mura_split_list_init(struct mura_split_list *l)
{
	memset(l, 0, sizeof *l);
}

void
mura_split_list_free(struct mura_split_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->lines[i]);
	free(l->lines);
	free(l->items);
	mura_split_list_init(l);
}

/* Room for twice as many lines and items (one capacity for both). */
static int
grow(struct mura_split_list *l)
{
	size_t c = l->cap ? 2 * l->cap : 1024;
	void *p;

	if (c > SIZE_MAX / sizeof *l->items)
		return mura_error("out of memory");
	if (!(p = realloc(l->items, c * sizeof *l->items)))
		return mura_error("out of memory");
	l->items = p;
	if (!(p = realloc(l->lines, c * sizeof *l->lines)))
		return mura_error("out of memory");
	l->lines = p;
	l->cap = c;
	return 0;
}

int
mura_split_read(struct mura_split_list *l, FILE *f, const char *name)
{
	char *line = NULL, *comma;
	size_t lcap = 0;
	ssize_t len;
	int rc = 0;

	while ((len = getline(&line, &lcap, f)) >= 0) {
		struct mura_path_info pi;

		if (len && line[len - 1] == '\n')
			line[--len] = 0;
		if (len && line[len - 1] == '\r')
			line[--len] = 0;
		if (l->n == l->cap && grow(l) < 0) {
			rc = -1;
			break;
		}
		if (!(l->lines[l->n] = strdup(line))) {
			rc = mura_error("out of memory");
			break;
		}
		if ((comma = strchr(line, ',')))
			*comma = 0;
		if (mura_path_parse(line, &pi) < 0 || !pi.patient || !pi.study) {
			rc = mura_error("%s: line %zu: '%s' is not a MURA path with XR_<TYPE>/patientN/studyK",
			                name, l->n + 1, l->lines[l->n]);
			free(l->lines[l->n]);
			break;
		}
		l->items[l->n] = (struct mura_split_item){pi.type, pi.patient, pi.study, 0};
		l->n++;
	}
	if (!rc && ferror(f))
		rc = mura_error("%s: read error", name);
	free(line);
	return rc;
}
