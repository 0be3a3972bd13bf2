/* mura-kappa - study-level kappa, AUC and the rest from a scores table, per study type. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "metrics.h"
#include "mura.h"
#include "tool.h"

struct options {
	int aggregate;
	int format;
	double threshold;          /* for every type not set otherwise */
	const char *thresholds;    /* file to read */
	const char *tune;          /* validation scores to tune on */
	const char *op_text;       /* --operating-point, as given */
	struct mura_operating_point op;
	const char *write_thresholds;
	const char *roc;           /* folder for the ROC curves */
	const char *calibration;   /* folder for the calibration table and diagram */
	struct mura_eval_opts eval;
};

static void
usage(FILE *f)
{
	fprintf(f,
	        "usage: %s [options] [SCORES.tsv]\n"
	        "Study-level Cohen's kappa, ROC AUC, sensitivity, specificity, accuracy, F1 and\n"
	        "confusion counts per study type and overall, from a scores table as mura-score\n"
	        "writes it (stdin when no file or '-').\n"
	        "  -a, --aggregate mean|max     a study's probability from its images' (mean)\n"
	        "      --threshold T            abnormal when probability > T, every type (0.5)\n"
	        "  -t, --thresholds FILE        per-type thresholds, lines 'type<TAB>threshold'\n"
	        "  -u, --tune-thresholds VALID  per type, the threshold maximising kappa on VALID\n"
	        "      --operating-point P      with -u: per type, the threshold reaching P on VALID\n"
	        "                               instead: sens=T (sensitivity >= T) or spec=T\n"
	        "  -w, --write-thresholds FILE  write the thresholds used to FILE\n"
	        "  -b, --bootstrap N            resamples for 95%% intervals, 0 for none (1000)\n"
	        "  -s, --seed S                 seed of the resampling (1)\n"
	        "  -f, --format F               table, markdown, tsv or json (table)\n"
	        "  -r, --roc DIR                ROC curves as DIR/roc-TYPE.png and .tsv\n"
	        "      --calibration DIR        Brier score and ECE per type (DIR/calibration.tsv),\n"
	        "                               reliability diagram (DIR/reliability.png)\n"
	        "  -h, --help                   show this help\n"
	        "  -V, --version                show the version\n",
	        argv0);
}

/* Read and aggregate a scores table; any error ends the tool.  A table
 * without rows (an empty file, the header only) is an error too: an
 * upstream step that wrote nothing must not pass as a report of 0 studies. */
static void
load_studies(struct mura_studies *st, const char *path, int aggregate)
{
	const char *name = !path || !strcmp(path, "-") ? "stdin" : path;
	struct mura_scores s;

	mura_scores_init(&s);
	if (mura_scores_read(&s, path, MURA_SCORES_LABELED) < 0)
		die_lib();
	if (!s.n)
		die("%s: no rows (an empty file, or the header only)", name);
	if (mura_studies_aggregate(st, &s, aggregate) < 0)
		die("%s: %s", name, mura_error_get());
	mura_scores_free(&s);
}

/* Draw one ROC curve from DIR/roc-GROUP.tsv into DIR/roc-GROUP.png
 * (atomically) with gnuplot. */
static void
plot_roc(const char *dir, const char *group, const struct mura_group_eval *g)
{
	char tmp[64], path[4300], png[4300], thr[40];
	FILE *gp;
	pid_t pid;
	int st;

	snprintf(tmp, sizeof tmp, "roc-%s.png.tmp.%ld", group, (long)getpid());
	snprintf(path, sizeof path, "%s/%s", dir, tmp);
	snprintf(png, sizeof png, "%s/roc-%s.png", dir, group);
	gp = gnuplot_open(dir, &pid);
	fprintf(gp, "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
	            "  set terminal pngcairo size 640,640\n"
	            "} else {\n"
	            "  set terminal png size 640,640\n"
	            "}\n"
	            "set output '%s'\n", tmp);
	fprintf(gp, "set title \"ROC %s: AUC %.4f, %zu studies (%zu abnormal)\"\n", group,
	        g->value[MURA_METRIC_AUC], g->studies, g->abnormal);
	fprintf(gp, "set xlabel 'false positive rate (1 - specificity)'\n"
	            "set ylabel 'true positive rate (sensitivity)'\n"
	            "set xrange [0:1]\nset yrange [0:1]\nset size square\nset grid\n"
	            "set key bottom right\n"
	            "plot 'roc-%s.tsv'", group);
	if (isnan(g->threshold))
		snprintf(thr, sizeof thr, "per-type thresholds");
	else
		snprintf(thr, sizeof thr, "threshold %g", g->threshold);
	fprintf(gp, " skip 1 using 2:3 with lines lw 2 title 'model', "
	            "x with lines dt 2 lc rgb 'gray' title 'chance', "
	            "'-' using 1:2 with points pt 7 ps 1.5 title '%s'\n%.17g %.17g\ne\n", thr,
	        1 - mura_specificity(&g->cm), mura_sensitivity(&g->cm));
	st = gnuplot_close(gp, pid);
	if (st != 0) {
		unlink(path);
		if (st == 127)
			die("gnuplot: not found (install the Debian package gnuplot-nox)");
		if (st == 126)
			die("%s: cannot run gnuplot in this folder", dir);
		die("%s: gnuplot failed", png);
	}
	if (rename(path, png) < 0) {
		unlink(path);
		die("%s: %s", png, strerror(errno));
	}
}

/* For every shown group with a defined AUC: DIR/roc-GROUP.tsv and .png. */
static void
write_rocs(const char *dir, const struct mura_studies *st, const struct mura_report *r)
{
	double *prob = malloc((st->n ? st->n : 1) * sizeof *prob);
	int *label = malloc((st->n ? st->n : 1) * sizeof *label);

	if (!prob || !label)
		die("out of memory");
	if (mura_mkdirs(dir, 0777) < 0)
		die_lib();
	for (int gi = 0; gi < MURA_GROUP_COUNT; gi++) {
		const struct mura_group_eval *g = &r->group[gi];
		const char *name = mura_group_name(gi);
		struct mura_roc_point *pts;
		struct mura_out o;
		char tsv[4200], b[3][40];
		size_t n = 0, np;

		if (isnan(g->value[MURA_METRIC_AUC]))
			continue;
		for (size_t i = 0; i < st->n; i++)
			if (gi == MURA_GROUP_ALL || st->v[i].type == gi) {
				prob[n] = st->v[i].prob;
				label[n++] = st->v[i].label;
			}
		if (mura_roc(prob, label, n, &pts, &np) < 0)
			die_lib();
		snprintf(tsv, sizeof tsv, "%s/roc-%s.tsv", dir, name);
		if (mura_out_open(&o, tsv) < 0)
			die_lib();
		fprintf(o.f, "threshold\tfpr\ttpr\n");
		for (size_t i = 0; i < np; i++)
			fprintf(o.f, "%s\t%s\t%s\n", mura_number_format(b[0], pts[i].threshold),
			        mura_number_format(b[1], pts[i].fpr), mura_number_format(b[2], pts[i].tpr));
		if (mura_out_commit(&o) < 0)
			die_lib();
		free(pts);
		plot_roc(dir, name, g);
	}
	free(prob);
	free(label);
}

/* DIR/calibration.tsv: per type with studies, then all: studies, Brier
 * score, ECE, and a warning where the type has fewer than 10 studies or
 * one class only; DIR/reliability.tsv, the bins of all; and
 * DIR/reliability.png, their diagram (gnuplot). */
static void
write_calibration(const char *dir, const struct mura_studies *st)
{
	struct mura_calibration c;
	struct mura_out o;
	char path[4300], png[4300], tmp[64];
	FILE *gp;
	pid_t pid;
	int rc;

	if (mura_mkdirs(dir, 0777) < 0)
		die_lib();
	snprintf(path, sizeof path, "%s/calibration.tsv", dir);
	if (mura_out_open(&o, path) < 0)
		die_lib();
	fprintf(o.f, "type\tstudies\tbrier\tece\twarning\n");
	for (int t = 1; t <= MURA_TYPE_COUNT; t++) {
		int type = t == MURA_TYPE_COUNT ? 0 : t;
		size_t pos = 0;
		mura_calibration(st, type, &c);
		if (!c.n)
			continue;
		for (size_t i = 0; i < st->n; i++)
			pos += (!type || st->v[i].type == type) && st->v[i].label;
		fprintf(o.f, "%s\t%zu\t%.4f\t%.4f\t%s\n", type ? mura_type_name(type) : "all", c.n, c.brier, c.ece,
		        mura_group_note(c.n, pos));
	}
	if (mura_out_commit(&o) < 0)
		die_lib();
	mura_calibration(st, 0, &c);
	snprintf(path, sizeof path, "%s/reliability.tsv", dir);
	if (mura_out_open(&o, path) < 0)
		die_lib();
	fprintf(o.f, "bin_lo\tbin_hi\tstudies\tmean_prob\tfrac_abnormal\n");
	for (int b = 0; b < MURA_CAL_BINS; b++)
		if (c.count[b])
			fprintf(o.f, "%.2f\t%.2f\t%zu\t%.6f\t%.6f\n", (double)b / MURA_CAL_BINS,
			        (double)(b + 1) / MURA_CAL_BINS, c.count[b], c.mean_prob[b], c.frac_pos[b]);
	if (mura_out_commit(&o) < 0)
		die_lib();
	snprintf(tmp, sizeof tmp, "reliability.png.tmp.%ld", (long)getpid());
	snprintf(path, sizeof path, "%s/%s", dir, tmp);
	snprintf(png, sizeof png, "%s/reliability.png", dir);
	gp = gnuplot_open(dir, &pid);
	fprintf(gp, "set terminal png size 640,640\nset output '%s'\n", tmp);
	fprintf(gp, "set title \"reliability: %zu studies, Brier %.4f, ECE %.4f\"\n", c.n, c.brier, c.ece);
	fprintf(gp, "set xlabel 'mean predicted probability (bins of 0.1)'\n"
	            "set ylabel 'fraction abnormal'\nset xrange [0:1]\nset yrange [0:1]\n"
	            "set size square\nset grid\nset key top left\n"
	            "plot 'reliability.tsv' skip 1 using 4:5 with linespoints lw 2 pt 7 title 'model', "
	            "x with lines dt 2 lc rgb 'gray' title 'perfect calibration'\n");
	rc = gnuplot_close(gp, pid);
	if (rc != 0) {
		unlink(path);
		die("%s: gnuplot failed%s", png, rc == 127 ? " (not found: install gnuplot-nox)" : "");
	}
	if (rename(path, png) < 0) {
		unlink(path);
		die("%s: %s", png, strerror(errno));
	}
}

/* The thresholds of the operating point, chosen on the validation studies;
 * a note on stderr for each type present there that cannot reach it. */
static void
choose_operating(const struct mura_studies *valid, struct options *o, const double base[MURA_TYPE_COUNT])
{
	const char *what = o->op.kind == MURA_OP_SENSITIVITY ? "sensitivity" : "specificity";
	const char *vname = strcmp(o->tune, "-") ? o->tune : "stdin";
	double got[MURA_TYPE_COUNT];
	int status[MURA_TYPE_COUNT], present[MURA_TYPE_COUNT] = {0};

	if (mura_thresholds_operating(valid, &o->op, base, o->eval.threshold, got, status) < 0)
		die_lib();
	for (size_t i = 0; i < valid->n; i++)
		present[valid->v[i].type] = 1;
	for (int t = 0; t < MURA_TYPE_COUNT; t++) {
		if (!present[t] || status[t] == MURA_OP_MET)
			continue;
		if (status[t] == MURA_OP_KEPT)
			fprintf(stderr, "%s: %s: no %s studies in %s: threshold %g kept\n", argv0,
			        mura_type_name(t), o->op.kind == MURA_OP_SENSITIVITY ? "abnormal" : "normal",
			        vname, base[t]);
		else
			fprintf(stderr, "%s: %s: %s %g not reached on %s: %.4f at threshold %g, the nearest\n",
			        argv0, mura_type_name(t), what, o->op.target, vname, got[t], o->eval.threshold[t]);
	}
}

/* The options into o, and the scores file's path (or "-"). */
static const char *
parse_options(int argc, char **argv, struct options *o)
{
	enum { OPT_THRESHOLD = 256, OPT_CALIBRATION, OPT_OPERATING_POINT };
	static const struct option longopts[] = {
		{"aggregate", required_argument, NULL, 'a'},
		{"threshold", required_argument, NULL, OPT_THRESHOLD},
		{"thresholds", required_argument, NULL, 't'},
		{"tune-thresholds", required_argument, NULL, 'u'},
		{"operating-point", required_argument, NULL, OPT_OPERATING_POINT},
		{"write-thresholds", required_argument, NULL, 'w'},
		{"bootstrap", required_argument, NULL, 'b'},
		{"seed", required_argument, NULL, 's'},
		{"format", required_argument, NULL, 'f'},
		{"roc", required_argument, NULL, 'r'},
		{"calibration", required_argument, NULL, OPT_CALIBRATION},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	const char *path;
	long v;
	int c;

	*o = (struct options){.aggregate = MURA_AGGREGATE_MEAN, .format = MURA_REPORT_TABLE, .threshold = 0.5};
	mura_eval_opts_init(&o->eval);
	o->eval.bootstrap = 1000;
	while ((c = getopt_long(argc, argv, "a:t:u:w:b:s:f:r:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'a':
			if ((o->aggregate = mura_aggregate_parse(optarg)) < 0)
				die_usage("--aggregate: '%s' is not mean or max", optarg);
			break;
		case OPT_THRESHOLD:
			if (mura_parse_double(optarg, 0, 1, &o->threshold) < 0)
				die_usage("--threshold: %s", mura_error_get());
			break;
		case 't':
			o->thresholds = optarg;
			break;
		case 'u':
			o->tune = optarg;
			break;
		case 'w':
			o->write_thresholds = optarg;
			break;
		case OPT_OPERATING_POINT:
			if (mura_operating_point_parse(optarg, &o->op) < 0)
				die_usage("--operating-point: %s", mura_error_get());
			o->op_text = optarg;
			break;
		case 'b':
			if (mura_parse_long(optarg, 0, 1000000, &v) < 0)
				die_usage("--bootstrap: %s", mura_error_get());
			o->eval.bootstrap = (int)v;
			break;
		case 's':
			if (mura_parse_long(optarg, 0, LONG_MAX, &v) < 0)
				die_usage("--seed: %s", mura_error_get());
			o->eval.seed = (uint64_t)v;
			break;
		case 'f':
			if ((o->format = mura_report_format_parse(optarg)) < 0)
				die_usage("--format: '%s' is not table, markdown, tsv or json", optarg);
			break;
		case 'r':
			o->roc = optarg;
			break;
		case OPT_CALIBRATION:
			o->calibration = optarg;
			break;
		TOOL_COMMON_OPTIONS;
		}
	}
	path = tool_input(argc, argv, "one scores file at most");
	if (o->tune && !strcmp(o->tune, "-") && !strcmp(path, "-"))
		die_usage("--tune-thresholds and the scores cannot both be stdin");
	if (o->op_text && !o->tune)
		die_usage("--operating-point needs --tune-thresholds VALID, the scores to choose on");
	if (o->write_thresholds && !strcmp(o->write_thresholds, "-"))
		die_usage("--write-thresholds needs a file, not stdout");
	return path;
}

int
main(int argc, char **argv)
{
	struct options o;
	struct mura_studies st;
	struct mura_report rep;
	struct mura_report_info info;
	char source[4300];
	const char *path;

	set_argv0(argv[0]);
	path = parse_options(argc, argv, &o);

	for (int t = 0; t < MURA_TYPE_COUNT; t++)
		o.eval.threshold[t] = o.threshold;
	snprintf(source, sizeof source, "%g for every type", o.threshold);
	if (o.thresholds) {
		if (mura_thresholds_read(o.thresholds, o.eval.threshold) < 0)
			die_lib();
		snprintf(source, sizeof source, "from %s, else %g", o.thresholds, o.threshold);
	}
	if (o.tune) {
		struct mura_studies valid;
		double base[MURA_TYPE_COUNT];

		load_studies(&valid, o.tune, o.aggregate);
		memcpy(base, o.eval.threshold, sizeof base);
		if (o.op_text) {
			choose_operating(&valid, &o, base);
			snprintf(source, sizeof source, "per type, chosen on %s for %s >= %g",
			         strcmp(o.tune, "-") ? o.tune : "stdin",
			         o.op.kind == MURA_OP_SENSITIVITY ? "sensitivity" : "specificity", o.op.target);
		} else {
			if (mura_thresholds_tune(&valid, base, o.eval.threshold, NULL) < 0)
				die_lib();
			snprintf(source, sizeof source, "per type, tuned for kappa on %s",
			         strcmp(o.tune, "-") ? o.tune : "stdin");
		}
		mura_studies_free(&valid);
	}

	load_studies(&st, path, o.aggregate);
	if (mura_evaluate(&rep, &st, &o.eval) < 0)
		die_lib();
	if (o.write_thresholds && mura_thresholds_write(o.write_thresholds, o.eval.threshold) < 0)
		die_lib();
	if (o.roc)
		write_rocs(o.roc, &st, &rep);
	if (o.calibration)
		write_calibration(o.calibration, &st);

	info = (struct mura_report_info){strcmp(path, "-") ? path : "stdin", o.aggregate, source};
	if (mura_report_write(stdout, &rep, &info, o.format) < 0)
		die_lib();
	mura_studies_free(&st);
	return close_stdout();
}
