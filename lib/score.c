/*
 * score.c - records into network inputs, and the ensemble with test-time
 * augmentation of score.h.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "augment.h"
#include "normalize.h"
#include "error.h"
#include "metrics.h"
#include "safetensors.h"
#include "score.h"

int
mura_input_check(const struct mura_record *r)
{
	if (r->c != 1 && r->c != 3)
		return mura_error("%u channels: the models take 1 (gray, replicated) or 3", r->c);
	if (r->dtype != MURA_DTYPE_U8 && r->dtype != MURA_DTYPE_U16 && r->dtype != MURA_DTYPE_F32)
		return mura_error("dtype %s: the models take u8, u16 or f32", mura_dtype_name(r->dtype));
	return 0;
}

int
mura_input_norm(struct mura_norm *n, const struct mura_model_config *c)
{
	mura_norm_default(n, 3);
	for (int i = 0; i < 3; i++)
		n->mean[i] = c->mean[i], n->std[i] = c->std[i];
	return mura_norm_init(n);
}

int
mura_input_from_record(float *x, const struct mura_record *r, const struct mura_norm *n,
                       struct mura_record *scratch)
{
	size_t hw = (size_t)r->h * r->w;
	const float *src;

	if (mura_input_check(r) < 0)
		return -1;
	if (r->dtype == MURA_DTYPE_F32) {
		src = r->data;
		for (int ch = 0; ch < 3; ch++)
			memcpy(x + ch * hw, src + (r->c == 1 ? 0 : ch * hw), hw * sizeof *x);
		return 0;
	}
	if (mura_norm_apply(n, r, scratch) < 0)
		return -1;
	memcpy(x, scratch->data, 3 * hw * sizeof *x);
	return 0;
}

int
mura_tta_parse(const char *s)
{
	if (!strcmp(s, "none"))
		return MURA_TTA_NONE;
	if (!strcmp(s, "flip"))
		return MURA_TTA_FLIP;
	if (!strcmp(s, "rot"))
		return MURA_TTA_ROT;
	if (!strcmp(s, "flip,rot") || !strcmp(s, "rot,flip"))
		return MURA_TTA_FLIP | MURA_TTA_ROT;
	return mura_error("unknown test-time augmentation '%s' (none, flip, rot, flip,rot)", s);
}

int
mura_tta_views(int tta)
{
	return 1 + !!(tta & MURA_TTA_FLIP) + 2 * !!(tta & MURA_TTA_ROT);
}

struct scorer_model {
	struct mura_model *m;
	const char *path;
	int sized;                 /* its file records the size it was trained at */
	int told_f32;              /* said that f32 records are taken as they are */
};

struct mura_scorer {
	struct mura_scorer_config c;
	struct scorer_model *mod;
	int views;
	uint32_t ph, pw;           /* the size planned for; 0 before the first record */
	struct mura_record *rec;   /* the batch's records, data copied */
	uint64_t *recno;
	int nb;
	float *x;                  /* batch * views inputs of the planned size */
	size_t xcap;               /* floats at x */
	int xmodel;                /* the model whose statistics x was made with; -1: none */
	float *logits;
	double *prob;
	struct mura_record view;   /* a turned record */
	struct mura_record scratch;
	struct mura_aug aug;       /* for the turns */
	struct mura_norm *norm;    /* each model's */
	void (*info)(void *arg, const char *msg);
	void *info_arg;
};

void
mura_scorer_free(struct mura_scorer *s)
{
	if (!s)
		return;
	for (size_t i = 0; s->mod && i < s->c.nmodels; i++)
		mura_model_free(s->mod[i].m);
	for (int i = 0; s->rec && i < s->c.batch; i++)
		mura_record_free(&s->rec[i]);
	mura_record_free(&s->view);
	mura_record_free(&s->scratch);
	mura_aug_free(&s->aug);
	free(s->mod);
	free(s->norm);
	free(s->rec);
	free(s->recno);
	free(s->x);
	free(s->logits);
	free(s->prob);
	free(s);
}

/* One model from its file: the configuration its metadata records, or
 * c->arch with torchvision's fc head and ImageNet's statistics for a plain
 * file. */
/* Every weight and running statistic of m finite: a diverged training run
 * saves NaN, and its scores would be meaningless rows. */
static int
check_finite(const struct mura_model *m, const char *path)
{
	for (size_t i = 0; i < mura_model_tensor_count(m); i++) {
		const struct mura_model_tensor *t = mura_model_tensor_at(m, i);
		if (t->kind == MURA_TENSOR_COUNT)
			continue;
		for (size_t k = 0; k < t->n; k++)
			if (!isfinite(t->data[k]))
				return mura_error("%s: tensor %s holds %g: a model whose weights are not finite "
				                  "(a diverged training run?) gives no scores", path, t->name,
				                  (double)t->data[k]);
	}
	return 0;
}

static struct mura_model *
load_model(const struct mura_scorer_config *c, const char *path, int *sized, char *info, size_t ilen)
{
	struct mura_model_config cfg;
	struct mura_st_file f;
	struct mura_model *m = NULL;
	int ours;

	if (mura_st_open(&f, path) < 0)
		return NULL;
	mura_model_config_default(&cfg);
	if ((ours = mura_model_config_read(&f, &cfg)) < 0)
		goto done;
	if (!ours) {
		if (!c->arch) {
			mura_error("%s: no mura metadata (a plain torchvision file?): give its --arch", path);
			goto done;
		}
		cfg.arch = c->arch;
	} else if (c->arch && c->arch != cfg.arch) {
		mura_error("%s: a %s model, not %s", path, mura_arch_name(cfg.arch), mura_arch_name(c->arch));
		goto done;
	}
	*sized = ours > 0 && mura_st_meta(&f, "input_size") != NULL;
	cfg.threads = c->threads;
	cfg.precision = c->precision;
	cfg.dropout = 0;  /* inference: no dropout, and no need to agree with the file */
	if (!(m = mura_model_create(&cfg)) || mura_model_load(m, &f, info, ilen) < 0) {
		mura_error_prefix("%s", path);
		mura_model_free(m);
		m = NULL;
	} else if (check_finite(m, path) < 0) {
		mura_model_free(m);
		m = NULL;
	} else {
		mura_model_keep_packed(m, 1);  /* scoring never changes the weights */
	}
done:
	mura_st_free(&f);
	return m;
}

struct mura_model *
mura_model_open(const char *path, int arch, int threads, int *sized, char *info, size_t infolen)
{
	struct mura_scorer_config c = {0};
	int dummy;

	c.arch = arch;
	c.threads = threads;
	return load_model(&c, path, sized ? sized : &dummy, info, infolen);
}

struct mura_scorer *
mura_scorer_create(const struct mura_scorer_config *c, void (*info)(void *arg, const char *msg), void *arg)
{
	struct mura_aug_spec none;
	struct mura_scorer *s;
	char msg[1024], line[1200];
	size_t nb;

	if (c->nmodels < 1 || c->batch < 1) {
		mura_error("no model, or a batch below 1");
		return NULL;
	}
	if (!(s = calloc(1, sizeof *s))) {
		mura_error("out of memory");
		return NULL;
	}
	s->c = *c;
	s->info = info;
	s->info_arg = arg;
	s->views = mura_tta_views(c->tta);
	s->xmodel = -1;
	nb = (size_t)c->batch * (size_t)s->views;
	mura_record_init(&s->view);
	mura_record_init(&s->scratch);
	mura_aug_spec_none(&none);
	mura_aug_init(&s->aug, &none);
	s->mod = calloc(c->nmodels, sizeof *s->mod);
	s->norm = calloc(c->nmodels, sizeof *s->norm);
	s->rec = calloc((size_t)c->batch, sizeof *s->rec);
	s->recno = calloc((size_t)c->batch, sizeof *s->recno);
	s->logits = malloc(nb * sizeof *s->logits);
	s->prob = malloc((size_t)c->batch * sizeof *s->prob);
	if (!s->mod || !s->norm || !s->rec || !s->recno || !s->logits || !s->prob) {
		mura_error("out of memory");
		goto fail;
	}
	for (int i = 0; i < c->batch; i++)
		mura_record_init(&s->rec[i]);
	for (size_t i = 0; i < c->nmodels; i++) {
		s->mod[i].path = c->models[i];
		if (!(s->mod[i].m = load_model(c, c->models[i], &s->mod[i].sized, msg, sizeof msg)))
			goto fail;
		if (mura_input_norm(&s->norm[i], mura_model_config(s->mod[i].m)) < 0) {
			mura_error_prefix("%s: normalisation", c->models[i]);
			goto fail;
		}
		if (msg[0] && info) {
			snprintf(line, sizeof line, "%s: %s", c->models[i], msg);
			info(arg, line);
		}
	}
	return s;
fail:
	mura_scorer_free(s);
	return NULL;
}

/* Records of h x w for a model trained at another size: refused, or with
 * any_size scored after a word (a network takes any size, but what it
 * learnt at one scale of anatomy is not what it sees at another). */
static int
check_size(struct mura_scorer *s, uint32_t h, uint32_t w)
{
	char msg[1200];

	for (size_t i = 0; i < s->c.nmodels; i++) {
		const struct mura_model_config *mc = mura_model_config(s->mod[i].m);
		if (!s->mod[i].sized || (mc->input_h == (int)h && mc->input_w == (int)w))
			continue;
		if (!s->c.any_size)
			return mura_error("%s was trained on %dx%d records: resize to its size "
			                  "(mura-resize --size %d), or score at this size with --any-size",
			                  s->mod[i].path, mc->input_h, mc->input_w, mc->input_h);
		if (s->info) {
			snprintf(msg, sizeof msg, "%s: trained on %dx%d records, scoring %ux%u ones (--any-size)",
			         s->mod[i].path, mc->input_h, mc->input_w, h, w);
			s->info(s->info_arg, msg);
		}
	}
	return 0;
}

/* Plan every model for records of h x w. */
static int
plan(struct mura_scorer *s, uint32_t h, uint32_t w)
{
	size_t need = (size_t)s->c.batch * (size_t)s->views * 3 * h * w;

	for (size_t i = 0; i < s->c.nmodels; i++)
		if (mura_model_plan(s->mod[i].m, s->c.batch * s->views, (int)h, (int)w, 0) < 0)
			return mura_error_prefix("%s", s->mod[i].path);
	if (need > s->xcap) {
		free(s->x);
		if (!(s->x = malloc(need * sizeof *s->x)))
			return mura_error("out of memory");
		s->xcap = need;
	}
	s->ph = h, s->pw = w;
	s->xmodel = -1;
	return 0;
}

/* Mirror x[3][h][w] left to right in place. */
static void
flip(float *x, uint32_t h, uint32_t w)
{
	for (size_t row = 0; row < 3 * (size_t)h; row++) {
		float *p = x + row * w;
		for (uint32_t a = 0, b = w - 1; a < b; a++, b--) {
			float t = p[a];
			p[a] = p[b];
			p[b] = t;
		}
	}
}

/* The batch's views, normalised for model k.  The turns are augment.h's
 * warp, the one mura-augment and mura-train use, on the record before
 * normalisation, so the border is black for u8. */
static int
make_inputs(struct mura_scorer *s, size_t k)
{
	size_t one = 3 * (size_t)s->ph * s->pw;
	const struct mura_norm *n = &s->norm[k];
	const struct mura_model_config *mc = mura_model_config(s->mod[k].m);
	char msg[1200];

	for (int i = 0; i < s->nb; i++) {
		float *x = s->x + (size_t)i * s->views * one;
		int v = 1;
		if (s->rec[i].dtype != MURA_DTYPE_F32 && mc->norm_unknown)
			return mura_error("record %llu: %s, but %s learnt from f32 records normalised before "
			                  "training, and does not know how: give it f32 records normalised the "
			                  "same way (mura-normalize), or train with --mean and --std saying how",
			                  (unsigned long long)s->recno[i], mura_dtype_name(s->rec[i].dtype),
			                  s->mod[k].path);
		if (s->rec[i].dtype == MURA_DTYPE_F32 && mc->input_dtype != MURA_DTYPE_F32 &&
		    !s->mod[k].told_f32 && s->info) {
			snprintf(msg, sizeof msg, "%s learnt from %s records normalised with mean %g,%g,%g and "
			         "std %g,%g,%g: f32 records are taken as normalised that way",
			         s->mod[k].path, mc->input_dtype ? mura_dtype_name(mc->input_dtype) : "integer",
			         mc->mean[0], mc->mean[1], mc->mean[2], mc->std[0], mc->std[1], mc->std[2]);
			s->info(s->info_arg, msg);
			s->mod[k].told_f32 = 1;
		}
		if (mura_input_from_record(x, &s->rec[i], n, &s->scratch) < 0)
			return mura_error_prefix("record %llu", (unsigned long long)s->recno[i]);
		if (s->c.tta & MURA_TTA_FLIP) {
			memcpy(x + one, x, one * sizeof *x);
			flip(x + one, s->ph, s->pw);
			v++;
		}
		for (int t = 0; (s->c.tta & MURA_TTA_ROT) && t < 2; t++, v++) {
			struct mura_aug_draw d = {0, t ? MURA_TTA_DEGREES : -MURA_TTA_DEGREES, 1, 0, 0, 1, 0};
			if (mura_record_copy_meta(&s->view, &s->rec[i]) < 0 ||
			    mura_record_alloc(&s->view, s->rec[i].dtype, s->rec[i].c, s->ph, s->pw) < 0)
				return -1;
			memcpy(s->view.data, s->rec[i].data, mura_record_nbytes(&s->rec[i]));
			if (mura_aug_apply(&s->aug, &d, &s->view) < 0 ||
			    mura_input_from_record(x + (size_t)v * one, &s->view, n, &s->scratch) < 0)
				return mura_error_prefix("record %llu", (unsigned long long)s->recno[i]);
		}
	}
	s->xmodel = (int)k;
	return 0;
}

/* Models i and k take the same input (and the same checks of it). */
static int
same_input(const struct mura_scorer *s, size_t i, size_t k)
{
	const struct mura_norm *a = &s->norm[i], *b = &s->norm[k];

	return !memcmp(a->mean, b->mean, sizeof a->mean) && !memcmp(a->std, b->std, sizeof a->std) &&
	       mura_model_config(s->mod[i].m)->norm_unknown == mura_model_config(s->mod[k].m)->norm_unknown &&
	       mura_model_config(s->mod[i].m)->input_dtype == mura_model_config(s->mod[k].m)->input_dtype;
}

/* Score the batch and write its rows. */
static int
flush(struct mura_scorer *s, const char *name, FILE *out)
{
	if (!s->nb)
		return 0;
	for (int i = 0; i < s->nb; i++)
		s->prob[i] = 0;
	for (size_t k = 0; k < s->c.nmodels; k++) {
		/* Models trained with the same statistics share one input. */
		if ((s->xmodel < 0 || !same_input(s, (size_t)s->xmodel, k)) && make_inputs(s, k) < 0)
			return mura_error_prefix("%s", name);
		if (mura_model_forward(s->mod[k].m, s->x, s->nb * s->views, 0, s->logits) < 0)
			return mura_error_prefix("%s", s->mod[k].path);
		for (int i = 0; i < s->nb * s->views; i++)
			if (!isfinite(s->logits[i]))
				return mura_error("%s: record %llu: %s gives the logit %g, not a number to score with",
				                  name, (unsigned long long)s->recno[i / s->views], s->mod[k].path,
				                  (double)s->logits[i]);
		for (int i = 0; i < s->nb; i++)
			for (int v = 0; v < s->views; v++)
				s->prob[i] += 1.0 / (1.0 + exp(-(double)s->logits[i * s->views + v]));
	}
	for (int i = 0; i < s->nb; i++) {
		const struct mura_record *r = &s->rec[i];
		struct mura_score row = {r->type, r->patient, r->study, r->image, (int)r->label,
		                         s->prob[i] / (double)(s->c.nmodels * (size_t)s->views), 0, 0};
		if (mura_scores_write_row(out, r->path, &row) < 0)
			return mura_error_prefix("%s: record %llu", name, (unsigned long long)s->recno[i]);
	}
	s->nb = 0;
	s->xmodel = -1;
	return 0;
}

/* Keep a copy of r (its data too) as the batch's next record. */
static int
push(struct mura_scorer *s, const struct mura_record *r, uint64_t recno)
{
	struct mura_record *d = &s->rec[s->nb];

	if (mura_record_copy_meta(d, r) < 0 || mura_record_alloc(d, r->dtype, r->c, r->h, r->w) < 0)
		return -1;
	memcpy(d->data, r->data, mura_record_nbytes(r));
	s->recno[s->nb++] = recno;
	return 0;
}

long long
mura_scorer_run(struct mura_scorer *s, struct mura_reader *rd, FILE *out)
{
	struct mura_record r;
	long long n = 0;
	int rc;

	mura_record_init(&r);
	while ((rc = mura_read(rd, &r)) == 1) {
		uint64_t recno = rd->recno;
		if (mura_input_check(&r) < 0 ||
		    (r.label != 0 && r.label != 1 && r.label != MURA_LABEL_UNKNOWN &&
		     mura_error("label %g is not 0, 1 or -1 (unknown): a mixed-up record has no "
		                "place in a scores table", r.label))) {
			mura_error_prefix("%s: record %llu", rd->name, (unsigned long long)recno);
			goto fail;
		}
		if (r.h != s->ph || r.w != s->pw || s->nb == s->c.batch)
			if (flush(s, rd->name, out) < 0)
				goto fail;
		if ((r.h != s->ph || r.w != s->pw) && (check_size(s, r.h, r.w) < 0 || plan(s, r.h, r.w) < 0)) {
			mura_error_prefix("%s: record %llu: %ux%u", rd->name, (unsigned long long)recno, r.h, r.w);
			goto fail;
		}
		if (push(s, &r, recno) < 0)
			goto fail;
		n++;
	}
	if (rc < 0 || flush(s, rd->name, out) < 0)
		goto fail;
	mura_record_free(&r);
	return n;
fail:
	mura_record_free(&r);
	return -1;
}
