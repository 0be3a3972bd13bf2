/* metrics.c - lib/metrics on cases worked out by hand: kappa, AUC with ties,
 * undefined metrics, the scores table reader and writer, aggregation,
 * bootstrap intervals, threshold tuning and the thresholds file. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "metrics.h"
#include "test.h"

#define HEAD MURA_SCORES_HEADER "\n"

static int
read_str(struct mura_scores *s, const char *text, int flags)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	int rc;

	if (!strlen(text)) /* fmemopen refuses size 0 in some libcs */
		f = fopen("/dev/null", "r");
	rc = mura_scores_read_file(s, f, "t.tsv", flags);
	fclose(f);
	return rc;
}

/* Whether reading text fails with a message containing want. */
static int
read_fails(const char *text, const char *want)
{
	struct mura_scores s;
	int rc;

	mura_scores_init(&s);
	mura_error_clear();
	rc = read_str(&s, text, MURA_SCORES_LABELED);
	mura_scores_free(&s);
	if (rc == 0 || !strstr(mura_error_get(), want)) {
		printf("    got rc %d, message '%s'\n", rc, rc ? mura_error_get() : "");
		return 0;
	}
	return 1;
}

static void
test_kappa(void)
{
	struct mura_confusion c;

	/* N 50, p0 = 35/50, pe = (25 * 30 + 25 * 20) / 2500 = 0.5: kappa 0.4 */
	c = (struct mura_confusion){.tp = 20, .fp = 5, .tn = 15, .fn = 10};
	CHECK_NEAR("kappa hand case", mura_kappa(&c), 0.4, 1e-15);
	CHECK_NEAR("sensitivity hand case", mura_sensitivity(&c), 20.0 / 30, 1e-15);
	CHECK_NEAR("specificity hand case", mura_specificity(&c), 15.0 / 20, 1e-15);
	CHECK_NEAR("accuracy hand case", mura_accuracy(&c), 0.7, 1e-15);
	CHECK_NEAR("f1 hand case", mura_f1(&c), 40.0 / 55, 1e-15);
	/* every call wrong, balanced: p0 0, pe 0.5 */
	c = (struct mura_confusion){.tp = 0, .fp = 5, .tn = 0, .fn = 5};
	CHECK_NEAR("kappa all wrong is -1", mura_kappa(&c), -1, 1e-15);
	CHECK_NEAR("f1 with no true positive is 0", mura_f1(&c), 0, 0);
	/* one class in both truth and calls: pe = 1 */
	c = (struct mura_confusion){.tn = 7};
	CHECK("kappa undefined when pe = 1", isnan(mura_kappa(&c)));
	CHECK("sensitivity undefined without abnormal", isnan(mura_sensitivity(&c)));
	CHECK_NEAR("specificity defined without abnormal", mura_specificity(&c), 1, 0);
	CHECK("f1 undefined without abnormal or calls", isnan(mura_f1(&c)));
	/* one class in truth, calls split: kappa 0, a real 0 */
	c = (struct mura_confusion){.tn = 3, .fp = 2};
	CHECK_NEAR("kappa 0 when truth has one class", mura_kappa(&c), 0, 0);
	c = (struct mura_confusion){0};
	CHECK("kappa undefined without cases", isnan(mura_kappa(&c)));
	CHECK("accuracy undefined without cases", isnan(mura_accuracy(&c)));
}

static void
test_confusion(void)
{
	const double p[] = {0.5, 0.5000001, 0.2, 0.9, 0.4999};
	const int y[] = {1, 0, 0, 1, 1};
	struct mura_confusion c;

	mura_confusion_count(&c, p, y, 5, 0.5);
	CHECK("prob equal to the threshold is normal (> rule)",
	      c.tp == 1 && c.fn == 2 && c.fp == 1 && c.tn == 1);
}

static void
test_auc(void)
{
	const double p1[] = {0.1, 0.4, 0.35, 0.8};
	const int y1[] = {0, 0, 1, 1};
	const double p2[] = {0.5, 0.5, 0.5, 0.5};
	const int y2[] = {0, 1, 0, 1};
	const double p3[] = {0.9, 0.5, 0.2, 0.5};
	const int y3[] = {1, 1, 0, 0};
	const int y4[] = {1, 1, 1, 1};
	double auc;
	struct mura_roc_point *pts;
	size_t n;

	/* sklearn's roc_auc_score doc example: 0.75 */
	CHECK("auc runs", mura_auc(p1, y1, 4, &auc) == 0);
	CHECK_NEAR("auc no ties", auc, 0.75, 1e-15);
	mura_auc(p2, y2, 4, &auc);
	CHECK_NEAR("auc all tied is 0.5", auc, 0.5, 1e-15);
	/* pairs: 0.9 beats both (2), 0.5 beats 0.2 (1) and ties 0.5 (0.5): 3.5 / 4 */
	mura_auc(p3, y3, 4, &auc);
	CHECK_NEAR("auc tie counts half", auc, 0.875, 1e-15);
	mura_auc(p3, y4, 4, &auc);
	CHECK("auc undefined with one class", isnan(auc));
	mura_auc(p3, y4, 0, &auc);
	CHECK("auc undefined without cases", isnan(auc));

	CHECK("roc runs", mura_roc(p3, y3, 4, &pts, &n) == 0);
	/* thresholds inf, 0.9, 0.5, 0.2 -> (0,0) (0,.5) (.5,1) (1,1) */
	CHECK("roc has one point per distinct prob plus the origin", n == 4);
	if (n == 4)
		CHECK("roc points", isinf(pts[0].threshold) && pts[0].fpr == 0 && pts[0].tpr == 0 &&
		                        pts[1].threshold == 0.9 && pts[1].fpr == 0 && pts[1].tpr == 0.5 &&
		                        pts[2].threshold == 0.5 && pts[2].fpr == 0.5 && pts[2].tpr == 1 &&
		                        pts[3].fpr == 1 && pts[3].tpr == 1);
	free(pts);
}

static void
test_reader(void)
{
	struct mura_scores s;
	int rc;

	mura_scores_init(&s);
	rc = read_str(&s, HEAD "MURA-v1.1/valid/XR_HAND/patient11185/study1_positive/image1.png\thand\t11185\t1\t1\t1\t0.25\r\n"
	                       "\tXR_WRIST\t7\t2\t3\t1.0\t1\n",
	              MURA_SCORES_LABELED);
	CHECK("reader reads two rows (CRLF, empty path, XR_ type, label 1.0)", rc == 0 && s.n == 2);
	if (s.n == 2) {
		CHECK("reader fields", s.v[0].type == MURA_TYPE_HAND && s.v[0].patient == 11185 &&
		                           s.v[0].study == 1 && s.v[0].image == 1 && s.v[0].label == 1 &&
		                           s.v[0].prob == 0.25 && s.v[0].line == 2);
		CHECK("reader second row", s.v[1].type == MURA_TYPE_WRIST && !strcmp(mura_scores_path(&s, 1), "") &&
		                               s.v[1].label == 1 && s.v[1].prob == 1 && s.v[1].line == 3);
		CHECK("reader path", !strcmp(mura_scores_path(&s, 0),
		                             "MURA-v1.1/valid/XR_HAND/patient11185/study1_positive/image1.png"));
	}
	mura_scores_free(&s);

	mura_scores_init(&s);
	CHECK("empty text is an empty table", read_str(&s, "", MURA_SCORES_LABELED) == 0 && s.n == 0);
	CHECK("header only is an empty table", read_str(&s, HEAD, MURA_SCORES_LABELED) == 0 && s.n == 0);
	CHECK("label -1 allowed when not evaluating", read_str(&s, HEAD "x\telbow\t1\t1\t1\t-1\t0.5\n", 0) == 0 && s.n == 1);
	mura_scores_free(&s);

	CHECK("bad header", read_fails("path\ttype\n", "t.tsv: line 1: not a scores header"));
	CHECK("6 fields", read_fails(HEAD "x\telbow\t1\t1\t1\t1\n", "t.tsv: line 2: 6 fields, want 7"));
	CHECK("8 fields", read_fails(HEAD "x\telbow\t1\t1\t1\t1\t0.5\t\n", "line 2: 8 fields"));
	CHECK("blank line", read_fails(HEAD "x\telbow\t1\t1\t1\t1\t0.5\n\n", "line 3: 1 field,"));
	CHECK("bad type", read_fails(HEAD "x\tknee\t1\t1\t1\t1\t0.5\n", "line 2: type 'knee'"));
	CHECK("bad patient", read_fails(HEAD "x\telbow\t-1\t1\t1\t1\t0.5\n", "line 2: patient: '-1' is out of range"));
	CHECK("bad study", read_fails(HEAD "x\telbow\t1\t70000\t1\t1\t0.5\n", "line 2: study:"));
	CHECK("bad image", read_fails(HEAD "x\telbow\t1\t1\tone\t1\t0.5\n", "line 2: image:"));
	CHECK("fractional label", read_fails(HEAD "x\telbow\t1\t1\t1\t0.5\t0.5\n", "line 2: label '0.5' is not 0 or 1"));
	CHECK("unknown label", read_fails(HEAD "a\telbow\t1\t1\t1\t1\t0.5\nx\telbow\t1\t1\t1\t-1\t0.5\n",
	                                  "line 3: label is -1 (unknown)"));
	CHECK("prob above 1", read_fails(HEAD "x\telbow\t1\t1\t1\t1\t1.5\n", "line 2: prob '1.5'"));
	CHECK("prob nan", read_fails(HEAD "x\telbow\t1\t1\t1\t1\tnan\n", "line 2: prob 'nan'"));
	CHECK("prob empty", read_fails(HEAD "x\telbow\t1\t1\t1\t1\t\n", "line 2: prob ''"));
}

static void
test_writer(void)
{
	struct mura_scores s, back;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	mura_scores_init(&s);
	mura_scores_init(&back);
	CHECK("add a row", mura_scores_add(&s, "a/b.png", MURA_TYPE_FINGER, 3, 2, 1, 0, 0.1) == 0);
	CHECK("add a row without path", mura_scores_add(&s, NULL, MURA_TYPE_UNKNOWN, 0, 0, 0, 1, 1.0 / 3) == 0);
	CHECK("add refuses a TAB in the path", mura_scores_add(&s, "a\tb", 1, 1, 1, 1, 0, 0.5) < 0);
	CHECK("add refuses prob 2", mura_scores_add(&s, "a", 1, 1, 1, 1, 0, 2) < 0);
	CHECK("add refuses label 2", mura_scores_add(&s, "a", 1, 1, 1, 1, 2, 0.5) < 0);
	mura_scores_write_header(f);
	for (size_t i = 0; i < s.n; i++)
		mura_scores_write_row(f, mura_scores_path(&s, i), &s.v[i]);
	fclose(f);
	CHECK("writer text", !strcmp(buf, HEAD "a/b.png\tfinger\t3\t2\t1\t0\t0.1\n"
	                                       "\tunknown\t0\t0\t0\t1\t0.3333333333333333\n"));
	CHECK("written table reads back", read_str(&back, buf, MURA_SCORES_LABELED) == 0 && back.n == 2);
	if (back.n == 2)
		CHECK("probabilities read back exactly", back.v[0].prob == 0.1 && back.v[1].prob == 1.0 / 3);
	free(buf);
	mura_scores_free(&s);
	mura_scores_free(&back);
}

static void
test_aggregate(void)
{
	struct mura_scores s;
	struct mura_studies st;
	const char *text = HEAD "a\twrist\t2\t1\t1\t1\t0.2\n"
	                        "b\telbow\t9\t1\t1\t0\t0.6\n"
	                        "c\twrist\t2\t1\t2\t1\t0.9\n"
	                        "d\twrist\t2\t2\t1\t0\t0.3\n"
	                        "e\twrist\t2\t1\t3\t1\t0.4\n";

	mura_scores_init(&s);
	read_str(&s, text, MURA_SCORES_LABELED);
	CHECK("aggregate mean", mura_studies_aggregate(&st, &s, MURA_AGGREGATE_MEAN) == 0);
	CHECK("three studies, sorted by type then patient then study",
	      st.n == 3 && st.images == 5 && st.v[0].type == MURA_TYPE_ELBOW && st.v[1].study == 1 &&
	          st.v[2].study == 2);
	if (st.n == 3) {
		CHECK_NEAR("mean of a study's images", st.v[1].prob, (0.2 + 0.9 + 0.4) / 3, 1e-15);
		CHECK("study keeps its label and image count", st.v[1].label == 1 && st.v[1].images == 3);
	}
	mura_studies_free(&st);
	CHECK("aggregate max", mura_studies_aggregate(&st, &s, MURA_AGGREGATE_MAX) == 0);
	if (st.n == 3)
		CHECK("max of a study's images", st.v[1].prob == 0.9 && st.v[0].prob == 0.6);
	mura_studies_free(&st);
	mura_scores_clear(&s);

	read_str(&s, HEAD "a\twrist\t2\t1\t1\t1\t0.2\nb\twrist\t3\t1\t1\t0\t0.6\nc\twrist\t2\t1\t2\t0\t0.9\n",
	         MURA_SCORES_LABELED);
	mura_error_clear();
	CHECK("a study's images must agree on the label",
	      mura_studies_aggregate(&st, &s, MURA_AGGREGATE_MEAN) < 0 &&
	          strstr(mura_error_get(), "line 4: label 0 differs from label 1 of its study on line 2"));
	mura_scores_clear(&s);
	mura_scores_add(&s, "x", MURA_TYPE_HAND, 1, 1, 1, -1, 0.5);
	CHECK("aggregation refuses unknown labels",
	      mura_studies_aggregate(&st, &s, MURA_AGGREGATE_MEAN) < 0 && strstr(mura_error_get(), "row 1"));
	mura_scores_clear(&s);
	CHECK("aggregate nothing", mura_studies_aggregate(&st, &s, MURA_AGGREGATE_MEAN) == 0 && st.n == 0);
	mura_studies_free(&st);
	mura_scores_free(&s);
}

/* Studies of one type from parallel arrays. */
static void
make_studies(struct mura_studies *st, int type, const double *p, const int *y, size_t n)
{
	st->v = calloc(n ? n : 1, sizeof *st->v);
	st->n = st->images = n;
	for (size_t i = 0; i < n; i++)
		st->v[i] = (struct mura_study){type, (uint32_t)i + 1, 1, y[i], 1, p[i]};
}

static void
test_evaluate(void)
{
	const double p[] = {0.1, 0.3, 0.35, 0.6, 0.7, 0.5};
	const int y[] = {0, 0, 1, 1, 1, 0};
	struct mura_studies st;
	struct mura_eval_opts o;
	struct mura_report r, r2;
	const struct mura_group_eval *g;

	make_studies(&st, MURA_TYPE_HAND, p, y, 6);
	mura_eval_opts_init(&o);
	CHECK("evaluate", mura_evaluate(&r, &st, &o) == 0);
	g = &r.group[MURA_TYPE_HAND];
	/* calls: 0 0 0 1 1 0 (0.5 is not > 0.5): TP 2, FN 1, TN 3, FP 0 */
	CHECK("hand confusion", g->studies == 6 && g->abnormal == 3 && g->cm.tp == 2 && g->cm.fn == 1 &&
	                            g->cm.tn == 3 && g->cm.fp == 0);
	/* p0 5/6, pe (2*3 + 4*3)/36 = 0.5: kappa 2/3 */
	CHECK_NEAR("hand kappa", g->value[MURA_METRIC_KAPPA], 2.0 / 3, 1e-15);
	/* abnormal 0.35 beats 0.1 and 0.3 only: 8 of 9 pairs */
	CHECK_NEAR("hand auc", g->value[MURA_METRIC_AUC], 8.0 / 9, 1e-15);
	CHECK("all equals the only type", r.group[MURA_GROUP_ALL].cm.tp == 2 &&
	                                      r.group[MURA_GROUP_ALL].value[MURA_METRIC_AUC] == g->value[MURA_METRIC_AUC]);
	CHECK("no intervals without bootstrap", isnan(g->lo[MURA_METRIC_KAPPA]) && isnan(g->hi[MURA_METRIC_AUC]));
	CHECK("absent types have no studies", r.group[MURA_TYPE_ELBOW].studies == 0 &&
	                                          isnan(r.group[MURA_TYPE_ELBOW].value[MURA_METRIC_KAPPA]));

	o.bootstrap = 500;
	o.seed = 42;
	mura_evaluate(&r, &st, &o);
	mura_evaluate(&r2, &st, &o);
	CHECK("bootstrap is deterministic for a seed", !memcmp(&r, &r2, sizeof r));
	g = &r.group[MURA_TYPE_HAND];
	CHECK("bootstrap intervals are ordered and within [0, 1] for AUC",
	      g->lo[MURA_METRIC_AUC] <= g->hi[MURA_METRIC_AUC] && g->lo[MURA_METRIC_AUC] >= 0 &&
	          g->hi[MURA_METRIC_AUC] <= 1);
	CHECK("bootstrap interval contains the estimate (auc)",
	      g->lo[MURA_METRIC_AUC] <= g->value[MURA_METRIC_AUC] && g->value[MURA_METRIC_AUC] <= g->hi[MURA_METRIC_AUC]);
	/* Resamples of 6 studies with only one class (probability 2 * 0.5^6)
	 * leave the AUC undefined and are left out of its interval. */
	CHECK("auc resamples exclude one-class draws",
	      g->resamples[MURA_METRIC_AUC] < 500 && g->resamples[MURA_METRIC_AUC] > 450 &&
	          g->resamples[MURA_METRIC_ACCURACY] == 500);
	o.seed = 43;
	mura_evaluate(&r2, &st, &o);
	CHECK("another seed, other intervals", memcmp(&r, &r2, sizeof r) != 0);
	mura_studies_free(&st);

	/* All correct: every resample's accuracy is 1. */
	{
		const double q[] = {0.9, 0.1, 0.8, 0.2};
		const int z[] = {1, 0, 1, 0};
		make_studies(&st, MURA_TYPE_ELBOW, q, z, 4);
		mura_evaluate(&r, &st, &o);
		g = &r.group[MURA_TYPE_ELBOW];
		CHECK("perfect calls give the interval [1, 1]",
		      g->lo[MURA_METRIC_ACCURACY] == 1 && g->hi[MURA_METRIC_ACCURACY] == 1);
		mura_studies_free(&st);
	}
	/* A single study: every metric but accuracy, sensitivity, F1 undefined. */
	{
		const double q[] = {0.7};
		const int z[] = {1};
		make_studies(&st, MURA_TYPE_HUMERUS, q, z, 1);
		mura_evaluate(&r, &st, &o);
		g = &r.group[MURA_TYPE_HUMERUS];
		CHECK("single study: kappa, auc, specificity undefined",
		      isnan(g->value[MURA_METRIC_KAPPA]) && isnan(g->value[MURA_METRIC_AUC]) &&
		          isnan(g->value[MURA_METRIC_SPECIFICITY]) && isnan(g->lo[MURA_METRIC_KAPPA]));
		CHECK("single study: sensitivity 1", g->value[MURA_METRIC_SENSITIVITY] == 1);
		mura_studies_free(&st);
	}
	/* Nothing at all. */
	st = (struct mura_studies){0};
	CHECK("evaluate no studies", mura_evaluate(&r, &st, &o) == 0 && r.group[MURA_GROUP_ALL].studies == 0 &&
	                                 isnan(r.group[MURA_GROUP_ALL].value[MURA_METRIC_ACCURACY]) &&
	                                 r.group[MURA_GROUP_ALL].threshold == 0.5);
}

static void
test_tune(void)
{
	const double p[] = {0.1, 0.3, 0.35, 0.6, 0.7};
	const int y[] = {0, 0, 1, 1, 1};
	const double p2[] = {0.2, 0.9};
	const int y2[] = {0, 1};
	const double p3[] = {0.3, 0.7};
	const int y3[] = {1, 1};
	double base[MURA_TYPE_COUNT], out[MURA_TYPE_COUNT], k[MURA_TYPE_COUNT];
	struct mura_studies st;

	for (int t = 0; t < MURA_TYPE_COUNT; t++)
		base[t] = 0.5;
	make_studies(&st, MURA_TYPE_HAND, p, y, 5);
	CHECK("tune", mura_thresholds_tune(&st, base, out, k) == 0);
	/* at 0.5 kappa is 0.615; between 0.3 and 0.35 every call is right */
	CHECK_NEAR("tuned threshold is the midpoint 0.325", out[MURA_TYPE_HAND], 0.325, 1e-15);
	CHECK_NEAR("tuned kappa 1", k[MURA_TYPE_HAND], 1, 1e-15);
	CHECK("types without studies keep the base", out[MURA_TYPE_ELBOW] == 0.5 && isnan(k[MURA_TYPE_ELBOW]));
	mura_studies_free(&st);

	/* 0.5 and the midpoint 0.55 both give kappa 1: the base wins */
	make_studies(&st, MURA_TYPE_WRIST, p2, y2, 2);
	mura_thresholds_tune(&st, base, out, k);
	CHECK("equal kappa keeps the base threshold", out[MURA_TYPE_WRIST] == 0.5 && k[MURA_TYPE_WRIST] == 1);
	base[MURA_TYPE_WRIST] = 0.95;
	mura_thresholds_tune(&st, base, out, k);
	CHECK("a base that calls nothing abnormal moves to the midpoint", out[MURA_TYPE_WRIST] == 0.55);
	mura_studies_free(&st);

	/* one class: no threshold beats the base (kappa 0 or undefined) */
	base[MURA_TYPE_WRIST] = 0.5;
	make_studies(&st, MURA_TYPE_WRIST, p3, y3, 2);
	mura_thresholds_tune(&st, base, out, k);
	CHECK("one class keeps the base threshold", out[MURA_TYPE_WRIST] == 0.5 && k[MURA_TYPE_WRIST] == 0);
	mura_studies_free(&st);
}

static void
test_thresholds_file(void)
{
	char path[] = "/tmp/mura-metrics-test.XXXXXX";
	int fd = mkstemp(path);
	double thr[MURA_TYPE_COUNT], back[MURA_TYPE_COUNT];
	FILE *f;

	for (int t = 0; t < MURA_TYPE_COUNT; t++) {
		thr[t] = 1.0 / (t + 3);
		back[t] = -1;
	}
	close(fd);
	CHECK("write thresholds", mura_thresholds_write(path, thr) == 0);
	CHECK("read thresholds", mura_thresholds_read(path, back) == 0);
	CHECK("thresholds round trip exactly", !memcmp(thr, back, sizeof thr));

	f = fopen(path, "w");
	fprintf(f, "elbow\t0.25\nwrist\t0.75\n");
	fclose(f);
	for (int t = 0; t < MURA_TYPE_COUNT; t++)
		back[t] = 0.5;
	CHECK("read a partial file without header", mura_thresholds_read(path, back) == 0 &&
	                                                back[MURA_TYPE_ELBOW] == 0.25 &&
	                                                back[MURA_TYPE_WRIST] == 0.75 && back[MURA_TYPE_HAND] == 0.5);
	f = fopen(path, "w");
	fprintf(f, "type\tthreshold\nelbow\t0.25\nelbow\t0.3\n");
	fclose(f);
	CHECK("a type twice is refused", mura_thresholds_read(path, back) < 0 &&
	                                     strstr(mura_error_get(), "line 3: type elbow given twice"));
	f = fopen(path, "w");
	fprintf(f, "hand\t1.5\n");
	fclose(f);
	CHECK("a threshold above 1 is refused", mura_thresholds_read(path, back) < 0 &&
	                                            strstr(mura_error_get(), "line 1: threshold"));
	unlink(path);
}

static void
test_reference(void)
{
	struct mura_reference r;

	mura_reference_kappa(MURA_TYPE_ELBOW, &r);
	CHECK("elbow reference kappas", r.baseline == 0.710 && r.worst == 0.710 && r.best == 0.850);
	mura_reference_kappa(MURA_TYPE_FINGER, &r);
	CHECK("finger reference kappas", r.baseline == 0.389 && r.worst == 0.304 && r.best == 0.410);
	mura_reference_kappa(MURA_GROUP_ALL, &r);
	CHECK("overall reference kappas", r.baseline == 0.705 && isnan(r.worst) && r.best == 0.778);
	mura_reference_kappa(MURA_TYPE_UNKNOWN, &r);
	CHECK("unknown type has no reference", isnan(r.baseline) && isnan(r.best));
}

int
main(void)
{
	test_kappa();
	test_confusion();
	test_auc();
	test_reader();
	test_writer();
	test_aggregate();
	test_evaluate();
	test_tune();
	test_thresholds_file();
	test_reference();
	return test_status();
}
