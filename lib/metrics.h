/*
 * metrics.h - evaluating abnormality scores the way the MURA paper does:
 * the scores table that mura-score writes and mura-kappa reads, images
 * aggregated to studies, Cohen's kappa, ROC AUC, sensitivity, specificity,
 * accuracy and F1 per study type and overall, percentile bootstrap
 * intervals, and per-type thresholds (read, written, tuned for kappa or
 * chosen for a target sensitivity or specificity).
 *
 * The scores table (mura-kappa(1) describes it for users; the two agree):
 * UTF-8 text, fields separated by one TAB, lines ended by LF (a CR before
 * it is ignored).  The first line is the header, exactly
 *
 *   path	type	patient	study	image	label	prob
 *
 * then one line per image:
 *   path     the image's source path; may be empty; no TAB or LF inside
 *   type     study type: elbow finger forearm hand humerus shoulder wrist
 *            or unknown (XR_ELBOW etc. accepted too, any case)
 *   patient  integer in [0, 4294967295]  (0 unknown)
 *   study    integer in [0, 65535]       (0 unknown)
 *   image    integer in [0, 65535]       (0 unknown)
 *   label    1 abnormal, 0 normal, -1 unknown (a number equal to one of
 *            them, so "1.0" is read as 1); evaluation refuses -1
 *   prob     the model's probability of abnormality, a number in [0, 1]
 * A study is the set of rows sharing (type, patient, study); its rows must
 * agree on the label.  A file with no line at all, or the header only, is
 * an empty table (which mura-kappa refuses: nothing to evaluate).
 *
 * Metrics that are undefined (kappa when pe = 1, AUC with one class only,
 * sensitivity without abnormal studies, ...) are NAN, never 0.
 */
#ifndef MURA_METRICS_H
#define MURA_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tensor.h"

#define MURA_SCORES_HEADER "path\ttype\tpatient\tstudy\timage\tlabel\tprob"

/* One image's row.  Its path lives in the table's string pool. */
struct mura_score {
	int type;       /* enum mura_type */
	uint32_t patient;
	uint16_t study, image;
	int label;      /* 0, 1, or -1 unknown */
	double prob;    /* in [0, 1] */
	size_t line;    /* line of the file it was read from; 0 when added in memory */
	size_t path;    /* offset of its NUL-terminated path in the pool */
};

struct mura_scores {
	struct mura_score *v;
	size_t n, cap;
	char *pool;
	size_t pool_len, pool_cap;
};

/* Require labels 0 or 1 when reading (evaluation); else -1 is allowed. */
#define MURA_SCORES_LABELED 1

void mura_scores_init(struct mura_scores *s);
void mura_scores_free(struct mura_scores *s);
/* Forget the rows, keep the memory (one table reused every epoch). */
void mura_scores_clear(struct mura_scores *s);
const char *mura_scores_path(const struct mura_scores *s, size_t i);
/* Append a row (path NULL means empty).  Checks the values as the reader
 * does; returns 0, or -1 with mura_error set. */
int mura_scores_add(struct mura_scores *s, const char *path, int type, uint32_t patient,
                    uint16_t study, uint16_t image, int label, double prob);
/* Read a whole table from path ("-" or NULL: stdin), appending its rows.
 * Errors read "NAME: line N: what is wrong". */
int mura_scores_read(struct mura_scores *s, const char *path, int flags);
int mura_scores_read_file(struct mura_scores *s, FILE *f, const char *name, int flags);
/* Write the header line, or one row.  The probability is written with the
 * fewest digits that read back as the same double. */
int mura_scores_write_header(FILE *f);
int mura_scores_write_row(FILE *f, const char *path, const struct mura_score *row);

/* v with the fewest digits (15 to 17) that read back as the same double;
 * "n/a" for NAN, "inf" for infinity.  Returns buf or the constant. */
const char *mura_number_format(char buf[40], double v);

/* A study: its images' probabilities aggregated into one. */
enum mura_aggregate {
	MURA_AGGREGATE_MEAN, /* arithmetic mean, in the order the rows came: the MURA paper's */
	MURA_AGGREGATE_MAX,
};
int mura_aggregate_parse(const char *s); /* "mean" or "max"; -1 if neither */
const char *mura_aggregate_name(int agg);

struct mura_study {
	int type;
	uint32_t patient;
	uint16_t study;
	int label;
	uint32_t images;
	double prob;
};

struct mura_studies {
	struct mura_study *v; /* sorted by (type, patient, study) */
	size_t n;
	size_t images;
};

/* Group the rows into studies.  Every row must have label 0 or 1 and the
 * rows of a study the same label; otherwise -1 with mura_error naming the
 * line ("line 7: label 1 differs from label 0 of its study on line 3"). */
int mura_studies_aggregate(struct mura_studies *st, const struct mura_scores *s, int agg);
void mura_studies_free(struct mura_studies *st);

/* Calibration of the study probabilities of one type (0: every type): the
 * Brier score mean((p - y)^2), and the expected calibration error over
 * MURA_CAL_BINS equal bins of p ([k/B, (k+1)/B), the last closed):
 * ECE = sum over bins of n_b / N |mean p_b - fraction abnormal_b|
 * (Naeini et al. 2015; Guo et al. 2017).  n 0: both NaN. */
#define MURA_CAL_BINS 10
struct mura_calibration {
	size_t n;
	double brier, ece;
	size_t count[MURA_CAL_BINS];
	double mean_prob[MURA_CAL_BINS], frac_pos[MURA_CAL_BINS];  /* NaN in an empty bin */
};
void mura_calibration(const struct mura_studies *st, int type, struct mura_calibration *c);

/* Binary confusion counts; a case is called abnormal when prob > threshold. */
struct mura_confusion {
	uint64_t tp, fp, tn, fn;
};
void mura_confusion_count(struct mura_confusion *c, const double *prob, const int *label, size_t n,
                          double threshold);
/* Cohen's kappa (p0 - pe) / (1 - pe), computed from the integer counts. */
double mura_kappa(const struct mura_confusion *c);
double mura_sensitivity(const struct mura_confusion *c); /* TP / (TP + FN) */
double mura_specificity(const struct mura_confusion *c); /* TN / (TN + FP) */
double mura_accuracy(const struct mura_confusion *c);    /* (TP + TN) / N */
double mura_f1(const struct mura_confusion *c);          /* 2TP / (2TP + FP + FN) */

/* ROC AUC over every threshold, ties counted half: the Mann-Whitney U
 * statistic divided by (positives * negatives), which is what
 * scikit-learn's roc_auc_score gives.  *auc is NAN with one class only.
 * Returns 0, or -1 (no memory). */
int mura_auc(const double *prob, const int *label, size_t n, double *auc);

/* The ROC curve: one point per distinct probability s, from the highest
 * down, where "prob >= s" is called abnormal; the first point is (0, 0)
 * with threshold +inf.  *pts is malloc'd.  Returns 0 or -1. */
struct mura_roc_point {
	double threshold, fpr, tpr;
};
int mura_roc(const double *prob, const int *label, size_t n, struct mura_roc_point **pts,
             size_t *npts);

enum mura_metric {
	MURA_METRIC_KAPPA,
	MURA_METRIC_AUC,
	MURA_METRIC_SENSITIVITY,
	MURA_METRIC_SPECIFICITY,
	MURA_METRIC_ACCURACY,
	MURA_METRIC_F1,
	MURA_METRIC_COUNT
};
const char *mura_metric_name(int m); /* "kappa", "auc", "sensitivity", ... */

/* Groups of a report: one per study type, then all studies together. */
#define MURA_GROUP_ALL MURA_TYPE_COUNT
#define MURA_GROUP_COUNT (MURA_TYPE_COUNT + 1)
const char *mura_group_name(int g); /* a type's name, or "all" */

struct mura_eval_opts {
	double threshold[MURA_TYPE_COUNT]; /* per study type */
	int bootstrap;                     /* resamples; 0: no intervals */
	uint64_t seed;
	double confidence;                 /* of the intervals, e.g. 0.95 */
};
/* Thresholds 0.5, no bootstrap, seed 1, confidence 0.95. */
void mura_eval_opts_init(struct mura_eval_opts *o);

struct mura_group_eval {
	size_t studies, abnormal, images;
	double threshold; /* NAN for "all" when the types in it differ */
	struct mura_confusion cm;
	double value[MURA_METRIC_COUNT]; /* NAN where undefined */
	double lo[MURA_METRIC_COUNT], hi[MURA_METRIC_COUNT]; /* NAN without bootstrap */
	int resamples[MURA_METRIC_COUNT]; /* bootstrap resamples where the metric was defined */
};

struct mura_report {
	struct mura_group_eval group[MURA_GROUP_COUNT];
	int bootstrap;
	uint64_t seed;
	double confidence;
};

/*
 * Evaluate the studies per type and overall.  With o->bootstrap = B > 0,
 * each group's studies are resampled with replacement B times (a stream
 * derived from the seed and the group's name, so one group's interval does
 * not depend on the others); a metric's interval is the percentile interval
 * (linear interpolation between order statistics, as numpy.percentile) of
 * the resamples in which it is defined.  Returns 0, or -1 (no memory).
 */
int mura_evaluate(struct mura_report *r, const struct mura_studies *st,
                  const struct mura_eval_opts *o);

/*
 * Pick per study type the threshold that maximises kappa on the studies:
 * candidates are base[type] and the midpoints between consecutive distinct
 * study probabilities of that type.  The highest kappa wins; on equal
 * kappa base[type] wins, then the candidate nearest to it, then the lower.
 * Types without studies, or where no candidate gives a defined kappa, keep
 * base[type].  kappa (may be NULL) receives the kappa of the chosen
 * thresholds (NAN where undefined).  Returns 0, or -1 (no memory).
 */
int mura_thresholds_tune(const struct mura_studies *st, const double base[MURA_TYPE_COUNT],
                         double out[MURA_TYPE_COUNT], double kappa[MURA_TYPE_COUNT]);

/*
 * An operating point: per study type, the threshold that reaches a target
 * sensitivity or specificity on the studies (validation), to apply to
 * others.  Candidates are the midpoints lo + (hi - lo) / 2 between
 * consecutive distinct values of {0, 1, the type's study probabilities}.
 * MURA_OP_SENSITIVITY: the highest candidate whose sensitivity is at least
 * the target (the most specific one that reaches it); MURA_OP_SPECIFICITY:
 * the lowest whose specificity is at least the target.  A type without
 * studies, or without abnormal (resp. normal) studies, keeps base[type] and
 * gets status MURA_OP_KEPT; where no candidate reaches the target (abnormal
 * studies at probability 0, normal ones at 1) the nearest one is taken (the
 * lowest, resp. highest) with status MURA_OP_SHORT.  achieved (may be NULL)
 * receives the chosen threshold's sensitivity (resp. specificity) on the
 * studies, NAN when kept; status (may be NULL) MURA_OP_MET, _SHORT or _KEPT.
 * Returns 0, or -1 (no memory).
 */
enum mura_op_kind { MURA_OP_SENSITIVITY, MURA_OP_SPECIFICITY };
enum mura_op_status { MURA_OP_MET, MURA_OP_SHORT, MURA_OP_KEPT };
struct mura_operating_point {
	int kind;      /* enum mura_op_kind */
	double target; /* in [0, 1] */
};
/* "sens=T" or "spec=T" (also "sensitivity=", "specificity="), T in [0, 1];
 * -1 with mura_error set otherwise. */
int mura_operating_point_parse(const char *s, struct mura_operating_point *op);
int mura_thresholds_operating(const struct mura_studies *st, const struct mura_operating_point *op,
                              const double base[MURA_TYPE_COUNT], double out[MURA_TYPE_COUNT],
                              double achieved[MURA_TYPE_COUNT], int status[MURA_TYPE_COUNT]);

/*
 * The thresholds file: lines "type<TAB>threshold", an optional first line
 * "type<TAB>threshold", at most one line per type, thresholds in [0, 1].
 * Reading sets the types it lists and leaves the others as they were.
 * Writing (atomic, "-" is stdout) lists every type.
 */
int mura_thresholds_read(const char *path, double thr[MURA_TYPE_COUNT]);
int mura_thresholds_write(const char *path, const double thr[MURA_TYPE_COUNT]);

/* Study-level kappa of the MURA paper's baseline and radiologists, from the
 * seed paper's Table 1 (group "all": baseline and best radiologist only).
 * NAN where not given. */
struct mura_reference {
	double baseline, worst, best;
};
void mura_reference_kappa(int group, struct mura_reference *ref);

/* The warning a row of studies deserves: "one class only" (its kappa and
 * AUC say nothing, or are undefined), else "fewer than 10 studies" (its
 * metrics and intervals rest on too few: 4 studies can give an interval of
 * [1.000, 1.000]), else "".  Shared by the report and the calibration. */
#define MURA_FEW_STUDIES 10
const char *mura_group_note(size_t studies, size_t abnormal);

/* Print a report as an aligned table, TSV (one row per group, %.17g) or
 * JSON (undefined values null).  Groups without studies are left out,
 * except "all".  Every format ends a row with its mura_group_note (TSV: a
 * last column note, empty when none; JSON: "note", null when none; the
 * table and Markdown: a last column note and a footnote under the table
 * when any row has one).  name: the scores file, for the table's and JSON's header. */
enum mura_report_format {
	MURA_REPORT_TABLE,
	MURA_REPORT_TSV,
	MURA_REPORT_JSON,
	MURA_REPORT_MARKDOWN,
};
int mura_report_format_parse(const char *s); /* -1 if unknown */
struct mura_report_info {
	const char *name;       /* the scores file */
	int aggregate;
	const char *thresholds; /* where the thresholds came from, in words */
};
int mura_report_write(FILE *f, const struct mura_report *r, const struct mura_report_info *info,
                      int format);

#endif
