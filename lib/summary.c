/* summary.c - counting a stream's records by type, label, study and patient. */
#include <string.h>

#include "error.h"
#include "summary.h"

void
mura_summary_init(struct mura_summary *s)
{
	memset(s, 0, sizeof *s);
	for (int t = 0; t <= MURA_TYPE_COUNT; t++) {
		mura_keyset_init(&s->type[t].studies);
		mura_keyset_init(&s->type[t].abnormal_studies);
		mura_keyset_init(&s->type[t].patients);
	}
}

void
mura_summary_free(struct mura_summary *s)
{
	for (int t = 0; t <= MURA_TYPE_COUNT; t++) {
		mura_keyset_free(&s->type[t].studies);
		mura_keyset_free(&s->type[t].abnormal_studies);
		mura_keyset_free(&s->type[t].patients);
	}
}

static int
add_type(struct mura_summary_type *st, const struct mura_record *r)
{
	/* A study is (type, patient, study); the key packs all three. */
	uint64_t study = (uint64_t)r->type << 56 | (uint64_t)r->patient << 16 | r->study;

	st->images++;
	if (r->label == MURA_LABEL_UNKNOWN)
		st->unknown++;
	else if (r->label == 1)
		st->abnormal++;
	else if (r->label == 0)
		st->normal++;
	else
		st->mixed++;
	if (mura_keyset_add(&st->studies, study) < 0 || mura_keyset_add(&st->patients, r->patient) < 0)
		return -1;
	if (r->label >= 0.5f && mura_keyset_add(&st->abnormal_studies, study) < 0)
		return -1;
	return 0;
}

int
mura_summary_add(struct mura_summary *s, const struct mura_record *r)
{
	int i;

	s->records++;
	s->bytes += mura_record_nbytes(r);
	if (r->dtype > 0 && r->dtype < 4)
		s->dtype[r->dtype]++;
	for (i = 0; i < s->nshape; i++)
		if (s->shape[i].c == r->c && s->shape[i].h == r->h && s->shape[i].w == r->w)
			break;
	if (i < s->nshape)
		s->shape[i].n++;
	else if (s->nshape < MURA_SUMMARY_SHAPES) {
		s->shape[i].c = r->c;
		s->shape[i].h = r->h;
		s->shape[i].w = r->w;
		s->shape[i].n = 1;
		s->nshape++;
	} else
		s->other_shapes++;
	if (add_type(&s->type[r->type], r) < 0 || add_type(&s->type[MURA_TYPE_COUNT], r) < 0)
		return mura_error("out of memory");
	return 0;
}
