/*
 * metrics.c - the scores table, study aggregation, kappa, AUC and the rest,
 * bootstrap intervals, threshold tuning and the report; see metrics.h.
 */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "json.h"
#include "metrics.h"
#include "rng.h"
#include "util.h"

/* ---- the scores table ---- */

void
mura_scores_init(struct mura_scores *s)
{
	memset(s, 0, sizeof *s);
}

void
mura_scores_free(struct mura_scores *s)
{
	free(s->v);
	free(s->pool);
	mura_scores_init(s);
}

void
mura_scores_clear(struct mura_scores *s)
{
	s->n = 0;
	s->pool_len = 0;
}

const char *
mura_scores_path(const struct mura_scores *s, size_t i)
{
	return s->pool + s->v[i].path;
}

static int
label_ok(int label, int flags)
{
	return label == 0 || label == 1 || (label == -1 && !(flags & MURA_SCORES_LABELED));
}

/* The row without its line number: shared by mura_scores_add and the reader. */
static int
scores_append(struct mura_scores *s, const char *path, const struct mura_score *row)
{
	size_t len = path ? strlen(path) : 0;

	if (path && strpbrk(path, "\t\n\r"))
		return mura_error("path contains a TAB or a line break");
	if (mura_grow(&s->v, &s->cap, s->n + 1, sizeof *s->v) < 0 ||
	    mura_grow(&s->pool, &s->pool_cap, s->pool_len + len + 1, 1) < 0)
		return -1;
	s->v[s->n] = *row;
	s->v[s->n].path = s->pool_len;
	if (len)
		memcpy(s->pool + s->pool_len, path, len);
	s->pool[s->pool_len + len] = 0;
	s->pool_len += len + 1;
	s->n++;
	return 0;
}

int
mura_scores_add(struct mura_scores *s, const char *path, int type, uint32_t patient,
                uint16_t study, uint16_t image, int label, double prob)
{
	struct mura_score row = {type, patient, study, image, label, prob, 0, 0};

	if (type < 0 || type >= MURA_TYPE_COUNT)
		return mura_error("study type %d is not a known type", type);
	if (!label_ok(label, 0))
		return mura_error("label %d is not 0, 1 or -1", label);
	if (!(prob >= 0 && prob <= 1))
		return mura_error("probability %g is not in [0, 1]", prob);
	return scores_append(s, path, &row);
}

/* Parse one data line, split at its TABs, into row; mura_error on failure. */
static int
parse_row(char *line, size_t len, int flags, struct mura_score *row, const char **path)
{
	char *f[8];
	int nf = 0;
	long v;
	double d;

	if (strlen(line) != len)
		return mura_error("NUL byte in the line");
	for (char *p = line;; p++) {
		if (nf < 8)
			f[nf] = p;
		nf++;
		p = strchr(p, '\t');
		if (!p)
			break;
		*p = 0;
	}
	if (nf != 7)
		return mura_error("%d field%s, want 7 (path, type, patient, study, image, label, prob)", nf,
		                  nf == 1 ? "" : "s");
	*path = f[0];
	if ((row->type = mura_type_parse(f[1])) < 0)
		return mura_error("type '%s' is not a study type", f[1]);
	if (mura_parse_long(f[2], 0, UINT32_MAX, &v) < 0)
		return mura_error_prefix("patient");
	row->patient = (uint32_t)v;
	if (mura_parse_long(f[3], 0, UINT16_MAX, &v) < 0)
		return mura_error_prefix("study");
	row->study = (uint16_t)v;
	if (mura_parse_long(f[4], 0, UINT16_MAX, &v) < 0)
		return mura_error_prefix("image");
	row->image = (uint16_t)v;
	if (mura_parse_double(f[5], -1, 1, &d) < 0 || (d != 0 && d != 1 && d != -1))
		return mura_error("label '%s' is not %s", f[5], flags & MURA_SCORES_LABELED ? "0 or 1" : "0, 1 or -1");
	row->label = (int)d;
	if (!label_ok(row->label, flags))
		return mura_error("label is -1 (unknown); evaluation needs 0 or 1");
	if (mura_parse_double(f[6], 0, 1, &row->prob) < 0)
		return mura_error("prob '%s' is not a probability in [0, 1]", f[6]);
	return 0;
}

int
mura_scores_read_file(struct mura_scores *s, FILE *f, const char *name, int flags)
{
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	ssize_t len;
	int rc = 0;

	while ((len = getline(&line, &cap, f)) >= 0) {
		struct mura_score row = {0};
		const char *path = NULL;

		lineno++;
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = 0;
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = 0;
		if (lineno == 1) {
			if (strcmp(line, MURA_SCORES_HEADER)) {
				rc = mura_error("%s: line 1: not a scores header (want 'path<TAB>type<TAB>patient"
				                "<TAB>study<TAB>image<TAB>label<TAB>prob')", name);
				break;
			}
			continue;
		}
		row.line = lineno;
		if (parse_row(line, (size_t)len, flags, &row, &path) < 0 ||
		    scores_append(s, path, &row) < 0) {
			rc = mura_error_prefix("%s: line %zu", name, lineno);
			break;
		}
	}
	if (!rc && ferror(f))
		rc = mura_error("%s: read error: %s", name, strerror(errno));
	free(line);
	return rc;
}

int
mura_scores_read(struct mura_scores *s, const char *path, int flags)
{
	FILE *f;
	int rc;

	if (!path || !strcmp(path, "-"))
		return mura_scores_read_file(s, stdin, "stdin", flags);
	if (!(f = fopen(path, "r")))
		return mura_error("%s: %s", path, strerror(errno));
	rc = mura_scores_read_file(s, f, path, flags);
	fclose(f);
	return rc;
}

const char *
mura_number_format(char buf[40], double v)
{
	if (isnan(v))
		return "n/a";
	for (int p = 15; p <= 17; p++) {
		snprintf(buf, 40, "%.*g", p, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	return buf;
}

int
mura_scores_write_header(FILE *f)
{
	if (fprintf(f, "%s\n", MURA_SCORES_HEADER) < 0)
		return mura_error("write error: %s", strerror(errno));
	return 0;
}

int
mura_scores_write_row(FILE *f, const char *path, const struct mura_score *row)
{
	char b[40];

	if (path && strpbrk(path, "\t\n\r"))
		return mura_error("%s: path contains a TAB or a line break", path);
	if (fprintf(f, "%s\t%s\t%u\t%u\t%u\t%d\t%s\n", path ? path : "", mura_type_name(row->type),
	            row->patient, row->study, row->image, row->label, mura_number_format(b, row->prob)) < 0)
		return mura_error("write error: %s", strerror(errno));
	return 0;
}

/* ---- studies ---- */

int
mura_aggregate_parse(const char *s)
{
	if (!strcmp(s, "mean"))
		return MURA_AGGREGATE_MEAN;
	if (!strcmp(s, "max"))
		return MURA_AGGREGATE_MAX;
	return -1;
}

const char *
mura_aggregate_name(int agg)
{
	return agg == MURA_AGGREGATE_MAX ? "max" : "mean";
}

/* Row order by study key, then by position, so a study's mean adds its
 * images in the order they came. */
struct keyed {
	const struct mura_score *row;
	size_t pos;
};

static int
cmp_keyed(const void *pa, const void *pb)
{
	const struct keyed *a = pa, *b = pb;

	if (a->row->type != b->row->type)
		return a->row->type < b->row->type ? -1 : 1;
	if (a->row->patient != b->row->patient)
		return a->row->patient < b->row->patient ? -1 : 1;
	if (a->row->study != b->row->study)
		return a->row->study < b->row->study ? -1 : 1;
	return (a->pos > b->pos) - (a->pos < b->pos);
}

/* "line N: ..." for a row read from a file, "row N: ..." for one added in memory. */
static int
label_error(const struct mura_score *r, size_t pos, const struct mura_score *first)
{
	if (!first)
		return r->line ? mura_error("line %zu: label is -1 (unknown); evaluation needs 0 or 1", r->line)
		               : mura_error("row %zu: label is -1 (unknown); evaluation needs 0 or 1", pos + 1);
	if (r->line)
		return mura_error("line %zu: label %d differs from label %d of its study on line %zu", r->line,
		                  r->label, first->label, first->line);
	return mura_error("row %zu: label %d differs from label %d of its study (%s patient %u study %u)",
	                  pos + 1, r->label, first->label, mura_type_name(r->type), r->patient, r->study);
}

int
mura_studies_aggregate(struct mura_studies *st, const struct mura_scores *s, int agg)
{
	struct keyed *k = NULL;
	size_t i, j;

	memset(st, 0, sizeof *st);
	for (i = 0; i < s->n; i++)
		if (s->v[i].label != 0 && s->v[i].label != 1)
			return label_error(&s->v[i], i, NULL);
	if (!s->n)
		return 0;
	if (!(k = malloc(s->n * sizeof *k)) || !(st->v = malloc(s->n * sizeof *st->v))) {
		free(k);
		return mura_error("out of memory");
	}
	for (i = 0; i < s->n; i++)
		k[i] = (struct keyed){&s->v[i], i};
	qsort(k, s->n, sizeof *k, cmp_keyed);
	for (i = 0; i < s->n; i = j) {
		const struct mura_score *first = k[i].row;
		struct mura_study *sd = &st->v[st->n++];
		double acc = first->prob;

		for (j = i + 1; j < s->n && k[j].row->type == first->type &&
		                k[j].row->patient == first->patient && k[j].row->study == first->study;
		     j++) {
			const struct mura_score *r = k[j].row;
			if (r->label != first->label) {
				label_error(r, k[j].pos, first);
				free(k);
				mura_studies_free(st);
				return -1;
			}
			if (agg == MURA_AGGREGATE_MAX)
				acc = fmax(acc, r->prob);
			else
				acc += r->prob;
		}
		sd->type = first->type;
		sd->patient = first->patient;
		sd->study = first->study;
		sd->label = first->label;
		sd->images = (uint32_t)(j - i);
		sd->prob = agg == MURA_AGGREGATE_MAX ? acc : acc / (double)(j - i);
	}
	st->images = s->n;
	free(k);
	return 0;
}

void
mura_studies_free(struct mura_studies *st)
{
	free(st->v);
	memset(st, 0, sizeof *st);
}

/* ---- the metrics ---- */

void
mura_confusion_count(struct mura_confusion *c, const double *prob, const int *label, size_t n,
                     double threshold)
{
	memset(c, 0, sizeof *c);
	for (size_t i = 0; i < n; i++) {
		int pred = prob[i] > threshold;
		if (label[i])
			pred ? c->tp++ : c->fn++;
		else
			pred ? c->fp++ : c->tn++;
	}
}

/*
 * kappa = (p0 - pe) / (1 - pe) with p0 = (TP + TN) / N and
 * pe = ((TP + FP)(TP + FN) + (TN + FN)(TN + FP)) / N^2; multiplied through
 * by N^2 both parts are integers, so only the last division rounds.
 */
double
mura_kappa(const struct mura_confusion *c)
{
	uint64_t n = c->tp + c->fp + c->tn + c->fn;
	uint64_t a = (c->tp + c->fp) * (c->tp + c->fn) + (c->tn + c->fn) * (c->tn + c->fp);
	int64_t num = (int64_t)(n * (c->tp + c->tn)) - (int64_t)a;
	int64_t den = (int64_t)(n * n) - (int64_t)a;

	return den ? (double)num / (double)den : NAN;
}

static double
ratio(uint64_t a, uint64_t b)
{
	return b ? (double)a / (double)b : NAN;
}

double mura_sensitivity(const struct mura_confusion *c) { return ratio(c->tp, c->tp + c->fn); }
double mura_specificity(const struct mura_confusion *c) { return ratio(c->tn, c->tn + c->fp); }
double mura_accuracy(const struct mura_confusion *c)
{
	return ratio(c->tp + c->tn, c->tp + c->fp + c->tn + c->fn);
}
double mura_f1(const struct mura_confusion *c) { return ratio(2 * c->tp, 2 * c->tp + c->fp + c->fn); }

/* A case of a group being evaluated, with its call made.  Items sort by
 * prob, then by their position in the input, so that the order (which the
 * bootstrap's draws index) does not depend on the C library's qsort. */
struct item {
	double prob;
	int label, type, pred;
	size_t idx;
};

static int
cmp_item(const void *pa, const void *pb)
{
	const struct item *a = pa, *b = pb;
	if (a->prob != b->prob)
		return a->prob < b->prob ? -1 : 1;
	return (a->idx > b->idx) - (a->idx < b->idx);
}

/*
 * AUC of items sorted by prob, each counted w[i] times (w NULL: once).
 * Within a run of equal probabilities every (abnormal, normal) pair counts
 * half; twice the Mann-Whitney U is then an integer.
 */
static double
auc_sorted(const struct item *it, size_t n, const uint32_t *w)
{
	uint64_t neg_below = 0, pos = 0, u2 = 0;

	for (size_t i = 0, j; i < n; i = j) {
		uint64_t pg = 0, ng = 0;
		for (j = i; j < n && it[j].prob == it[i].prob; j++) {
			uint64_t m = w ? w[j] : 1;
			it[j].label ? (pg += m) : (ng += m);
		}
		u2 += 2 * neg_below * pg + pg * ng;
		neg_below += ng;
		pos += pg;
	}
	return pos && neg_below ? (double)u2 / (2.0 * (double)pos * (double)neg_below) : NAN;
}

static int
items_from(struct item **it, const double *prob, const int *label, size_t n)
{
	if (!(*it = malloc((n ? n : 1) * sizeof **it)))
		return mura_error("out of memory");
	for (size_t i = 0; i < n; i++)
		(*it)[i] = (struct item){prob[i], label[i] != 0, 0, 0, i};
	qsort(*it, n, sizeof **it, cmp_item);
	return 0;
}

int
mura_auc(const double *prob, const int *label, size_t n, double *auc)
{
	struct item *it;

	if (items_from(&it, prob, label, n) < 0)
		return -1;
	*auc = auc_sorted(it, n, NULL);
	free(it);
	return 0;
}

int
mura_roc(const double *prob, const int *label, size_t n, struct mura_roc_point **pts, size_t *npts)
{
	struct item *it;
	struct mura_roc_point *p;
	uint64_t npos = 0, nneg = 0, tp = 0, fp = 0;
	size_t k = 0;

	if (items_from(&it, prob, label, n) < 0)
		return -1;
	if (!(p = malloc((n + 1) * sizeof *p))) {
		free(it);
		return mura_error("out of memory");
	}
	for (size_t i = 0; i < n; i++)
		it[i].label ? npos++ : nneg++;
	p[k++] = (struct mura_roc_point){INFINITY, 0, 0};
	for (size_t i = n, j; i > 0; i = j) {
		for (j = i; j > 0 && it[j - 1].prob == it[i - 1].prob; j--)
			it[j - 1].label ? tp++ : fp++;
		p[k++] = (struct mura_roc_point){it[i - 1].prob, ratio(fp, nneg), ratio(tp, npos)};
	}
	free(it);
	*pts = p;
	*npts = k;
	return 0;
}

const char *
mura_metric_name(int m)
{
	static const char *const names[MURA_METRIC_COUNT] = {
		"kappa", "auc", "sensitivity", "specificity", "accuracy", "f1",
	};
	return m >= 0 && m < MURA_METRIC_COUNT ? names[m] : "?";
}

const char *
mura_group_name(int g)
{
	return g == MURA_GROUP_ALL ? "all" : mura_type_name(g);
}

void
mura_eval_opts_init(struct mura_eval_opts *o)
{
	for (int t = 0; t < MURA_TYPE_COUNT; t++)
		o->threshold[t] = 0.5;
	o->bootstrap = 0;
	o->seed = 1;
	o->confidence = 0.95;
}

static void
metrics_of(double v[MURA_METRIC_COUNT], const struct mura_confusion *c, double auc)
{
	v[MURA_METRIC_KAPPA] = mura_kappa(c);
	v[MURA_METRIC_AUC] = auc;
	v[MURA_METRIC_SENSITIVITY] = mura_sensitivity(c);
	v[MURA_METRIC_SPECIFICITY] = mura_specificity(c);
	v[MURA_METRIC_ACCURACY] = mura_accuracy(c);
	v[MURA_METRIC_F1] = mura_f1(c);
}

static int
cmp_double(const void *pa, const void *pb)
{
	double a = *(const double *)pa, b = *(const double *)pb;
	return (a > b) - (a < b);
}

/* numpy.percentile's default ("linear"): q in [0, 1] of sorted a[0..n-1]. */
static double
percentile(const double *a, size_t n, double q)
{
	double pos = q * (double)(n - 1);
	size_t k = (size_t)pos;

	if (k + 1 >= n)
		return a[n - 1];
	return a[k] + (a[k + 1] - a[k]) * (pos - (double)k);
}

/* Resample the group's items b times and set the intervals of g. */
static int
bootstrap(struct mura_group_eval *g, const struct item *it, size_t n, const struct mura_eval_opts *o,
          const char *name)
{
	double *val[MURA_METRIC_COUNT] = {0};
	uint32_t *w = calloc(n ? n : 1, sizeof *w);
	struct mura_rng rng;
	int rc = 0;

	for (int m = 0; m < MURA_METRIC_COUNT; m++)
		if (!(val[m] = malloc((size_t)o->bootstrap * sizeof *val[m])))
			rc = -1;
	if (!w || rc < 0) {
		rc = mura_error("out of memory");
		goto out;
	}
	mura_rng_derive(&rng, o->seed, 0, name);
	for (int b = 0; b < o->bootstrap; b++) {
		struct mura_confusion c = {0};
		double v[MURA_METRIC_COUNT];

		memset(w, 0, n * sizeof *w);
		for (size_t i = 0; i < n; i++)
			w[mura_rng_below(&rng, n)]++;
		for (size_t i = 0; i < n; i++) {
			if (it[i].label)
				it[i].pred ? (c.tp += w[i]) : (c.fn += w[i]);
			else
				it[i].pred ? (c.fp += w[i]) : (c.tn += w[i]);
		}
		metrics_of(v, &c, auc_sorted(it, n, w));
		for (int m = 0; m < MURA_METRIC_COUNT; m++)
			if (!isnan(v[m]))
				val[m][g->resamples[m]++] = v[m];
	}
	for (int m = 0; m < MURA_METRIC_COUNT; m++) {
		size_t k = (size_t)g->resamples[m];
		if (!k)
			continue;
		qsort(val[m], k, sizeof *val[m], cmp_double);
		g->lo[m] = percentile(val[m], k, (1 - o->confidence) / 2);
		g->hi[m] = percentile(val[m], k, 1 - (1 - o->confidence) / 2);
	}
out:
	for (int m = 0; m < MURA_METRIC_COUNT; m++)
		free(val[m]);
	free(w);
	return rc;
}

int
mura_evaluate(struct mura_report *r, const struct mura_studies *st, const struct mura_eval_opts *o)
{
	struct item *it = malloc((st->n ? st->n : 1) * sizeof *it);

	memset(r, 0, sizeof *r);
	r->bootstrap = o->bootstrap;
	r->seed = o->seed;
	r->confidence = o->confidence;
	if (!it)
		return mura_error("out of memory");
	for (int gi = 0; gi < MURA_GROUP_COUNT; gi++) {
		struct mura_group_eval *g = &r->group[gi];
		size_t n = 0;
		int mixed = 0;

		g->threshold = NAN;
		for (int m = 0; m < MURA_METRIC_COUNT; m++)
			g->lo[m] = g->hi[m] = NAN;
		for (size_t i = 0; i < st->n; i++) {
			const struct mura_study *sd = &st->v[i];
			double thr = o->threshold[sd->type];
			struct item *x;
			if (gi != MURA_GROUP_ALL && sd->type != gi)
				continue;
			x = &it[n++];
			*x = (struct item){sd->prob, sd->label, sd->type, sd->prob > thr, i};
			if (x->label)
				x->pred ? g->cm.tp++ : g->cm.fn++;
			else
				x->pred ? g->cm.fp++ : g->cm.tn++;
			g->abnormal += (size_t)x->label;
			g->images += sd->images;
			if (n > 1 && thr != g->threshold)
				mixed = 1;
			g->threshold = thr;
		}
		if (gi != MURA_GROUP_ALL)
			g->threshold = o->threshold[gi];
		else if (mixed)
			g->threshold = NAN;
		else if (n == 0) /* no study: one threshold only if every type has it */
			for (int t = 0; t < MURA_TYPE_COUNT; t++)
				if (o->threshold[t] != (g->threshold = o->threshold[0])) {
					g->threshold = NAN;
					break;
				}
		g->studies = n;
		qsort(it, n, sizeof *it, cmp_item);
		metrics_of(g->value, &g->cm, auc_sorted(it, n, NULL));
		if (o->bootstrap > 0 && n > 0 && bootstrap(g, it, n, o, mura_group_name(gi)) < 0) {
			free(it);
			return -1;
		}
	}
	free(it);
	return 0;
}

/* ---- thresholds ---- */

/* Whether threshold t with kappa k beats the best so far (kb at tb). */
static int
better(double k, double t, double kb, double tb, double base)
{
	if (isnan(k))
		return 0;
	if (isnan(kb) || k > kb)
		return 1;
	if (k < kb || tb == base)
		return 0;
	if (t == base)
		return 1;
	if (fabs(t - base) != fabs(tb - base))
		return fabs(t - base) < fabs(tb - base);
	return t < tb;
}

int
mura_thresholds_tune(const struct mura_studies *st, const double base[MURA_TYPE_COUNT],
                     double out[MURA_TYPE_COUNT], double kappa[MURA_TYPE_COUNT])
{
	struct item *it = malloc((st->n ? st->n : 1) * sizeof *it);

	if (!it)
		return mura_error("out of memory");
	for (int t = 0; t < MURA_TYPE_COUNT; t++) {
		struct mura_confusion c = {0};
		uint64_t npos = 0, nneg = 0, tp = 0, fp = 0;
		double best_t = base[t], best_k;
		size_t n = 0;

		for (size_t i = 0; i < st->n; i++)
			if (st->v[i].type == t) {
				it[n++] = (struct item){st->v[i].prob, st->v[i].label, t, st->v[i].prob > base[t], i};
				it[n - 1].label ? npos++ : nneg++;
			}
		qsort(it, n, sizeof *it, cmp_item);
		for (size_t i = 0; i < n; i++) {
			if (it[i].label)
				it[i].pred ? c.tp++ : c.fn++;
			else
				it[i].pred ? c.fp++ : c.tn++;
		}
		best_k = mura_kappa(&c);
		/* Walk down the runs of equal probability; between a run (hi) and
		 * the next lower one (lo), every case from hi up is called abnormal. */
		for (size_t i = n, j; i > 0; i = j) {
			double hi = it[i - 1].prob, lo, mid, k;
			for (j = i; j > 0 && it[j - 1].prob == hi; j--)
				it[j - 1].label ? tp++ : fp++;
			if (j == 0)
				break;
			lo = it[j - 1].prob;
			mid = lo + (hi - lo) / 2;
			if (!(mid >= lo && mid < hi))
				mid = lo;
			c = (struct mura_confusion){tp, fp, nneg - fp, npos - tp};
			k = mura_kappa(&c);
			if (better(k, mid, best_k, best_t, base[t])) {
				best_k = k;
				best_t = mid;
			}
		}
		out[t] = best_t;
		if (kappa)
			kappa[t] = best_k;
	}
	free(it);
	return 0;
}

int
mura_operating_point_parse(const char *s, struct mura_operating_point *op)
{
	static const struct { const char *name; int kind; } names[] = {
		{"sens", MURA_OP_SENSITIVITY}, {"sensitivity", MURA_OP_SENSITIVITY},
		{"spec", MURA_OP_SPECIFICITY}, {"specificity", MURA_OP_SPECIFICITY},
	};
	const char *eq = strchr(s, '=');

	for (size_t i = 0; eq && i < sizeof names / sizeof *names; i++)
		if (strlen(names[i].name) == (size_t)(eq - s) && !strncmp(s, names[i].name, (size_t)(eq - s))) {
			op->kind = names[i].kind;
			if (mura_parse_double(eq + 1, 0, 1, &op->target) < 0)
				return mura_error_prefix("'%s'", s);
			return 0;
		}
	return mura_error("'%s' is not sens=T or spec=T", s);
}

int
mura_thresholds_operating(const struct mura_studies *st, const struct mura_operating_point *op,
                          const double base[MURA_TYPE_COUNT], double out[MURA_TYPE_COUNT],
                          double achieved[MURA_TYPE_COUNT], int status[MURA_TYPE_COUNT])
{
	struct item *it = malloc((st->n ? st->n : 1) * sizeof *it);
	int sens = op->kind == MURA_OP_SENSITIVITY;

	if (!it)
		return mura_error("out of memory");
	for (int t = 0; t < MURA_TYPE_COUNT; t++) {
		uint64_t npos = 0, nneg = 0, tp = 0, fp = 0;
		double hi = 1, best_t = NAN, best_v = NAN;
		int st_t = MURA_OP_SHORT;
		size_t n = 0, i;

		for (size_t k = 0; k < st->n; k++)
			if (st->v[k].type == t) {
				it[n++] = (struct item){st->v[k].prob, st->v[k].label, t, 0, k};
				it[n - 1].label ? npos++ : nneg++;
			}
		if (sens ? !npos : !nneg) {
			out[t] = base[t];
			if (achieved)
				achieved[t] = NAN;
			if (status)
				status[t] = MURA_OP_KEPT;
			continue;
		}
		qsort(it, n, sizeof *it, cmp_item);
		/* Walk the candidates from the highest down: at the candidate
		 * between hi and the next lower value lo, the studies of
		 * probability hi and above are called abnormal.  Sensitivity only
		 * grows on the way down, specificity only falls. */
		for (i = n;;) {
			struct mura_confusion c;
			double lo, mid, v;

			while (i > 0 && it[i - 1].prob >= hi) {
				it[i - 1].label ? tp++ : fp++;
				i--;
			}
			if (hi == 0)
				break;
			lo = i > 0 ? it[i - 1].prob : 0;
			mid = lo + (hi - lo) / 2;
			if (!(mid >= lo && mid < hi))
				mid = lo;
			c = (struct mura_confusion){tp, fp, nneg - fp, npos - tp};
			v = sens ? mura_sensitivity(&c) : mura_specificity(&c);
			if (sens) {
				best_t = mid; /* the lowest so far: the nearest when none reaches */
				best_v = v;
				if (v >= op->target) {
					st_t = MURA_OP_MET;
					break;
				}
			} else if (v >= op->target) {
				best_t = mid;
				best_v = v;
				st_t = MURA_OP_MET;
			} else {
				if (isnan(best_t)) { /* the highest: the nearest when none reaches */
					best_t = mid;
					best_v = v;
				}
				break;
			}
			hi = lo;
		}
		out[t] = best_t;
		if (achieved)
			achieved[t] = best_v;
		if (status)
			status[t] = st_t;
	}
	free(it);
	return 0;
}

int
mura_thresholds_read(const char *path, double thr[MURA_TYPE_COUNT])
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	ssize_t len;
	int seen[MURA_TYPE_COUNT] = {0}, rc = 0;

	if (!f)
		return mura_error("%s: %s", path, strerror(errno));
	while ((len = getline(&line, &cap, f)) >= 0) {
		char *tab;
		int t;
		double v;

		lineno++;
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = 0;
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = 0;
		if (lineno == 1 && !strcmp(line, "type\tthreshold"))
			continue;
		if (!(tab = strchr(line, '\t')) || strchr(tab + 1, '\t')) {
			rc = mura_error("%s: line %zu: want 'type<TAB>threshold'", path, lineno);
			break;
		}
		*tab = 0;
		if ((t = mura_type_parse(line)) < 0) {
			rc = mura_error("%s: line %zu: type '%s' is not a study type", path, lineno, line);
			break;
		}
		if (seen[t]) {
			rc = mura_error("%s: line %zu: type %s given twice", path, lineno, mura_type_name(t));
			break;
		}
		if (mura_parse_double(tab + 1, 0, 1, &v) < 0) {
			rc = mura_error_prefix("%s: line %zu: threshold", path, lineno);
			break;
		}
		seen[t] = 1;
		thr[t] = v;
	}
	if (!rc && ferror(f))
		rc = mura_error("%s: read error: %s", path, strerror(errno));
	free(line);
	fclose(f);
	return rc;
}

int
mura_thresholds_write(const char *path, const double thr[MURA_TYPE_COUNT])
{
	struct mura_out o;
	char b[40];

	if (mura_out_open(&o, path) < 0)
		return -1;
	fprintf(o.f, "type\tthreshold\n");
	for (int t = 1; t <= MURA_TYPE_COUNT; t++) {
		int type = t % MURA_TYPE_COUNT; /* the seven types, then unknown */
		fprintf(o.f, "%s\t%s\n", mura_type_name(type), mura_number_format(b, thr[type]));
	}
	return mura_out_commit(&o);
}

/* ---- what the paper compares with ---- */

void
mura_reference_kappa(int group, struct mura_reference *ref)
{
	/* The seed paper's Table 1, as {Stanford baseline, worst radiologist, best radiologist}. */
	static const struct mura_reference table[MURA_GROUP_COUNT] = {
		[MURA_TYPE_UNKNOWN] = {NAN, NAN, NAN},
		[MURA_TYPE_ELBOW] = {0.710, 0.710, 0.850},
		[MURA_TYPE_FINGER] = {0.389, 0.304, 0.410},
		[MURA_TYPE_FOREARM] = {0.737, 0.802, 0.796},
		[MURA_TYPE_HAND] = {0.851, 0.661, 0.927},
		[MURA_TYPE_HUMERUS] = {0.600, 0.733, 0.933},
		[MURA_TYPE_SHOULDER] = {0.729, 0.791, 0.864},
		[MURA_TYPE_WRIST] = {0.931, 0.791, 0.931},
		[MURA_GROUP_ALL] = {0.705, NAN, 0.778},
	};
	*ref = group >= 0 && group < MURA_GROUP_COUNT ? table[group]
	                                              : (struct mura_reference){NAN, NAN, NAN};
}

/* ---- the report ---- */

int
mura_report_format_parse(const char *s)
{
	if (!strcmp(s, "table"))
		return MURA_REPORT_TABLE;
	if (!strcmp(s, "tsv"))
		return MURA_REPORT_TSV;
	if (!strcmp(s, "json"))
		return MURA_REPORT_JSON;
	if (!strcmp(s, "markdown"))
		return MURA_REPORT_MARKDOWN;
	return -1;
}

const char *
mura_group_note(size_t studies, size_t abnormal)
{
	if (abnormal == 0 || abnormal == studies)
		return "one class only";
	return studies < MURA_FEW_STUDIES ? "fewer than 10 studies" : "";
}

static int
shown(const struct mura_report *r, int g)
{
	return g == MURA_GROUP_ALL || r->group[g].studies > 0;
}

/* The table is a grid of cells, so its columns fit what they hold. */
#define TABLE_COLS 20
#define TABLE_CELL 40
struct table {
	char cell[MURA_GROUP_COUNT + 1][TABLE_COLS][TABLE_CELL];
	int rows, cols;
};

static void
cell(struct table *t, const char *fmt, ...) MURA_PRINTF(2, 3);

static void
cell(struct table *t, const char *fmt, ...)
{
	va_list ap;

	assert(t->cols < TABLE_COLS);
	va_start(ap, fmt);
	vsnprintf(t->cell[t->rows][t->cols++], TABLE_CELL, fmt, ap);
	va_end(ap);
}

/* "0.712" or "n/a". */
static void
cell3(struct table *t, double v)
{
	if (isnan(v))
		cell(t, "n/a");
	else
		cell(t, "%.3f", v);
}

static void
cell_ci(struct table *t, const struct mura_group_eval *g, int m)
{
	if (isnan(g->lo[m]))
		cell(t, "n/a");
	else
		cell(t, "[%.3f, %.3f]", g->lo[m], g->hi[m]);
}

/* The table aligned for a terminal, or (markdown) as a Markdown table. */
static int
write_table(FILE *f, const struct mura_report *r, const struct mura_report_info *in, int markdown)
{
	static const char *const head[] = {
		"type", "studies", "abnormal", "threshold", "kappa", "95% CI", "AUC", "95% CI", "sens",
		"spec", "acc", "F1", "TP", "FP", "TN", "FN", "Stanford", "worst-rad", "best-rad", "note",
	};
	const struct mura_group_eval *all = &r->group[MURA_GROUP_ALL];
	int ci = r->bootstrap > 0, width[TABLE_COLS] = {0}, noted = 0;
	struct table *t = calloc(1, sizeof *t);

	if (!t)
		return mura_error("out of memory");
	fprintf(f, "%s: %zu image%s in %zu stud%s; a study's probability is the %s of its images'\n",
	        in->name, all->images, all->images == 1 ? "" : "s", all->studies, all->studies == 1 ? "y" : "ies",
	        in->aggregate == MURA_AGGREGATE_MAX ? "maximum" : "mean");
	fprintf(f, "abnormal when probability > threshold (%s)\n", in->thresholds);
	if (ci)
		fprintf(f, "%g%% intervals: percentile bootstrap, %d resamples of the studies of each row, "
		        "seed %llu\n", 100 * r->confidence, r->bootstrap, (unsigned long long)r->seed);
	fprintf(f, "Stanford, worst-rad, best-rad: study-level kappa of the MURA baseline and radiologists\n\n");
	for (size_t i = 0; i < sizeof head / sizeof *head; i++)
		if (ci || strcmp(head[i], "95% CI"))
			cell(t, "%s", head[i]);
	for (int gi = 0; gi < MURA_GROUP_COUNT; gi++) {
		const struct mura_group_eval *g = &r->group[gi];
		struct mura_reference ref;

		if (!shown(r, gi))
			continue;
		t->rows++;
		t->cols = 0;
		mura_reference_kappa(gi, &ref);
		cell(t, "%s", mura_group_name(gi));
		cell(t, "%zu", g->studies);
		cell(t, "%zu", g->abnormal);
		if (gi == MURA_GROUP_ALL && isnan(g->threshold) && g->studies)
			cell(t, "per type");
		else
			cell3(t, g->threshold);
		for (int m = 0; m < MURA_METRIC_COUNT; m++) {
			cell3(t, g->value[m]);
			if (ci && (m == MURA_METRIC_KAPPA || m == MURA_METRIC_AUC))
				cell_ci(t, g, m);
		}
		cell(t, "%llu", (unsigned long long)g->cm.tp);
		cell(t, "%llu", (unsigned long long)g->cm.fp);
		cell(t, "%llu", (unsigned long long)g->cm.tn);
		cell(t, "%llu", (unsigned long long)g->cm.fn);
		cell3(t, ref.baseline);
		cell3(t, ref.worst);
		cell3(t, ref.best);
		cell(t, "%s", mura_group_note(g->studies, g->abnormal));
		noted |= *mura_group_note(g->studies, g->abnormal) != 0;
	}
	t->rows++;
	for (int i = 0; i < t->rows; i++)
		for (int j = 0; j < t->cols; j++)
			if ((int)strlen(t->cell[i][j]) > width[j])
				width[j] = (int)strlen(t->cell[i][j]);
	/* The first and the last column (the type, the note) to the left, the
	 * numbers to the right; the plain table's lines end without blanks. */
	for (int i = 0; i < t->rows; i++) {
		for (int j = 0; j < t->cols; j++) {
			int left = j == 0 || j == t->cols - 1;
			if (markdown)
				fprintf(f, j == 0 ? "| %-*s |" : left ? " %-*s |" : " %*s |", width[j], t->cell[i][j]);
			else if (j == t->cols - 1)
				fprintf(f, *t->cell[i][j] ? "  %s" : "", t->cell[i][j]);
			else
				fprintf(f, j == 0 ? "%-*s" : "  %*s", width[j], t->cell[i][j]);
		}
		fputc('\n', f);
		for (int j = 0; markdown && i == 0 && j < t->cols; j++) {
			fputs(j == 0 ? "|" : "", f);
			for (int k = 0; k < width[j] + 1; k++)
				fputc('-', f);
			fputs(j == 0 ? "-|" : j == t->cols - 1 ? "-|" : ":|", f);
			if (j == t->cols - 1)
				fputc('\n', f);
		}
	}
	if (noted)
		fprintf(f, "\nnote: a row of fewer than %d studies, or of one class only, is an anecdote, not an "
		        "estimate:\nits metrics%s could change completely with a few more studies.\n",
		        MURA_FEW_STUDIES, ci ? " and their intervals (however narrow)" : "");
	free(t);
	return 0;
}

static void
write_tsv(FILE *f, const struct mura_report *r)
{
	char b[40];

	fprintf(f, "type\tstudies\tabnormal\timages\tthreshold");
	for (int m = 0; m < MURA_METRIC_COUNT; m++)
		fprintf(f, "\t%s\t%s_lo\t%s_hi", mura_metric_name(m), mura_metric_name(m), mura_metric_name(m));
	fprintf(f, "\ttp\tfp\ttn\tfn\tbaseline_kappa\tradiologist_worst_kappa\tradiologist_best_kappa\tnote\n");
	for (int gi = 0; gi < MURA_GROUP_COUNT; gi++) {
		const struct mura_group_eval *g = &r->group[gi];
		struct mura_reference ref;

		if (!shown(r, gi))
			continue;
		mura_reference_kappa(gi, &ref);
		fprintf(f, "%s\t%zu\t%zu\t%zu\t%s", mura_group_name(gi), g->studies, g->abnormal, g->images,
		        mura_number_format(b, g->threshold));
		for (int m = 0; m < MURA_METRIC_COUNT; m++) {
			fprintf(f, "\t%s", mura_number_format(b, g->value[m]));
			fprintf(f, "\t%s", mura_number_format(b, g->lo[m]));
			fprintf(f, "\t%s", mura_number_format(b, g->hi[m]));
		}
		fprintf(f, "\t%llu\t%llu\t%llu\t%llu", (unsigned long long)g->cm.tp,
		        (unsigned long long)g->cm.fp, (unsigned long long)g->cm.tn,
		        (unsigned long long)g->cm.fn);
		fprintf(f, "\t%s", mura_number_format(b, ref.baseline));
		fprintf(f, "\t%s", mura_number_format(b, ref.worst));
		fprintf(f, "\t%s", mura_number_format(b, ref.best));
		fprintf(f, "\t%s\n", mura_group_note(g->studies, g->abnormal));
	}
}

/* A JSON string; a name that is not UTF-8 cannot be one, so it is replaced. */
static void
json_str(FILE *f, const char *s)
{
	if (mura_json_write_string(f, s, strlen(s)) < 0)
		fputs("\"(not UTF-8)\"", f);
}

static void
json_num(FILE *f, const char *key, double v)
{
	char b[40];
	fprintf(f, ", \"%s\": %s", key, isnan(v) ? "null" : mura_number_format(b, v));
}

static void
write_json(FILE *f, const struct mura_report *r, const struct mura_report_info *in)
{
	int first = 1;

	fprintf(f, "{\n  \"file\": ");
	json_str(f, in->name);
	fprintf(f, ",\n  \"aggregate\": \"%s\",\n  \"rule\": \"abnormal when prob > threshold\",\n"
	           "  \"thresholds\": ", mura_aggregate_name(in->aggregate));
	json_str(f, in->thresholds);
	fprintf(f, ",\n  \"bootstrap\": %d,\n  \"seed\": %llu,\n  \"confidence\": %g,\n  \"groups\": [",
	        r->bootstrap, (unsigned long long)r->seed, r->confidence);
	for (int gi = 0; gi < MURA_GROUP_COUNT; gi++) {
		const struct mura_group_eval *g = &r->group[gi];
		struct mura_reference ref;
		char n[64];

		if (!shown(r, gi))
			continue;
		mura_reference_kappa(gi, &ref);
		fprintf(f, "%s\n    {\"type\": \"%s\", \"studies\": %zu, \"abnormal\": %zu, \"images\": %zu",
		        first ? "" : ",", mura_group_name(gi), g->studies, g->abnormal, g->images);
		first = 0;
		json_num(f, "threshold", g->threshold);
		for (int m = 0; m < MURA_METRIC_COUNT; m++) {
			json_num(f, mura_metric_name(m), g->value[m]);
			snprintf(n, sizeof n, "%s_lo", mura_metric_name(m));
			json_num(f, n, g->lo[m]);
			snprintf(n, sizeof n, "%s_hi", mura_metric_name(m));
			json_num(f, n, g->hi[m]);
		}
		fprintf(f, ", \"tp\": %llu, \"fp\": %llu, \"tn\": %llu, \"fn\": %llu",
		        (unsigned long long)g->cm.tp, (unsigned long long)g->cm.fp,
		        (unsigned long long)g->cm.tn, (unsigned long long)g->cm.fn);
		json_num(f, "baseline_kappa", ref.baseline);
		json_num(f, "radiologist_worst_kappa", ref.worst);
		json_num(f, "radiologist_best_kappa", ref.best);
		fprintf(f, ", \"note\": ");
		if (*mura_group_note(g->studies, g->abnormal))
			json_str(f, mura_group_note(g->studies, g->abnormal));
		else
			fputs("null", f);
		fputc('}', f);
	}
	fprintf(f, "\n  ]\n}\n");
}

int
mura_report_write(FILE *f, const struct mura_report *r, const struct mura_report_info *info,
                  int format)
{
	switch (format) {
	case MURA_REPORT_TABLE:
	case MURA_REPORT_MARKDOWN:
		if (write_table(f, r, info, format == MURA_REPORT_MARKDOWN) < 0)
			return -1;
		break;
	case MURA_REPORT_TSV:
		write_tsv(f, r);
		break;
	case MURA_REPORT_JSON:
		write_json(f, r, info);
		break;
	default:
		return mura_error("unknown report format %d", format);
	}
	if (ferror(f))
		return mura_error("write error: %s", strerror(errno));
	return 0;
}

void
mura_calibration(const struct mura_studies *st, int type, struct mura_calibration *c)
{
	double sp[MURA_CAL_BINS] = {0}, sy[MURA_CAL_BINS] = {0}, sq = 0;

	memset(c, 0, sizeof *c);
	for (size_t i = 0; i < st->n; i++) {
		const struct mura_study *s = &st->v[i];
		if (type && s->type != type)
			continue;
		int b = (int)(s->prob * MURA_CAL_BINS);
		b = b < 0 ? 0 : b >= MURA_CAL_BINS ? MURA_CAL_BINS - 1 : b;
		c->count[b]++;
		sp[b] += s->prob;
		sy[b] += s->label;
		sq += (s->prob - s->label) * (s->prob - s->label);
		c->n++;
	}
	c->brier = c->n ? sq / (double)c->n : NAN;
	c->ece = c->n ? 0 : NAN;
	for (int b = 0; b < MURA_CAL_BINS; b++) {
		c->mean_prob[b] = c->count[b] ? sp[b] / (double)c->count[b] : NAN;
		c->frac_pos[b] = c->count[b] ? sy[b] / (double)c->count[b] : NAN;
		if (c->count[b])
			c->ece += (double)c->count[b] / (double)c->n * fabs(c->mean_prob[b] - c->frac_pos[b]);
	}
}
