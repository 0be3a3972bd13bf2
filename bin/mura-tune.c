/* mura-tune - hyperparameter search over mura-train runs (lib/tune.h does the work). */
#define _GNU_SOURCE
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mura.h"
#include "tool.h"
#include "tune.h"

static volatile sig_atomic_t stop_signal;

static void
on_signal(int sig)
{
	stop_signal = sig;
}

enum {
	OPT_SAMPLER = 256, OPT_PRUNER, OPT_METRIC, OPT_STARTUP, OPT_ETA, OPT_MIN_EPOCHS, OPT_POLL, OPT_REPORT,
	OPT_NO_PLOTS,
};

static const struct tool_option option_table[] = {
	{0, NULL, NULL, "Search:"},
	{'S', "study", "DIR", "the study's folder (required); run again to continue"},
	{'p', "space", "FILE", "the search space, one parameter a line"},
	{'n', "trials", "N", "trials the study should hold"},
	{OPT_SAMPLER, "sampler", "S", "tpe or random (tpe)"},
	{OPT_STARTUP, "startup", "N", "TPE: random trials first (10)"},
	{OPT_PRUNER, "pruner", "P", "median, asha or none (median)"},
	{OPT_ETA, "eta", "R", "ASHA: reduction factor (3)"},
	{OPT_MIN_EPOCHS, "min-epochs", "E", "ASHA: epochs of the first rung (1)"},
	{OPT_METRIC, "metric", "M", "the log's column to optimise: val_loss,\n"
	                            "train_loss (lower is better), val_auc, val_kappa,\n"
	                            "train_acc (higher) (val_loss)"},
	{'e', "epochs", "N", "each trial's --epochs (10)"},
	{'s', "seed", "S", "the samplers' seed (1)"},
	{0, NULL, NULL, "Processes:"},
	{'j', "jobs", "J", "trials at a time (1)"},
	{'t', "threads", "T", "each trial's --threads (the cores / J)"},
	{OPT_POLL, "poll", "SECONDS", "how often the trials' logs are read (0.5)"},
	{0, NULL, NULL, "Report:"},
	{OPT_REPORT, "report", NULL, "print the best trial and the table of trials, and\n"
	                             "plot DIR/history.png and DIR/param-NAME.png"},
	{OPT_NO_PLOTS, "no-plots", NULL, "with --report: no plots"},
	{'h', "help", NULL, "show this help"},
	{'V', "version", NULL, "show the version"},
	{0, NULL, NULL, NULL},
};

static void
usage(FILE *f)
{
	fprintf(f,
	        "usage: %s --study DIR --space FILE --trials N [options] -- mura-train ARGS...\n"
	        "       %s --study DIR --trials N [options]        (continue the study)\n"
	        "       %s --study DIR --report [--no-plots]\n"
	        "Search mura-train's options: each trial is a mura-train run with the trial's values\n"
	        "as its options, its epoch log the values a pruner watches.\n",
	        argv0, argv0, argv0);
	tool_usage_options(f, option_table);
}

struct options {
	struct mura_tune_settings set;
	const char *study, *space;
	int trials, jobs, threads, report, plots;
	double poll;
	int given[512];
};

static long
parse_int(const char *opt, const char *s, long lo, long hi)
{
	long v;
	if (mura_parse_long(s, lo, hi, &v) < 0)
		die_usage("%s: %s", opt, mura_error_get());
	return v;
}

static void
parse_options(int argc, char **argv, struct options *o)
{
	int ch;

	mura_tune_settings_default(&o->set);
	o->jobs = 1;
	o->poll = 0.5;
	o->plots = 1;
	while ((ch = tool_getopt(argc, argv, option_table)) != -1) {
		if (ch > 0 && ch < 512)
			o->given[ch] = 1;
		switch (ch) {
		case 'S':
			o->study = optarg;
			break;
		case 'p':
			o->space = optarg;
			break;
		case 'n':
			o->trials = (int)parse_int("--trials", optarg, 1, 100000);
			break;
		case OPT_SAMPLER:
			if ((o->set.sampler = mura_tune_sampler_parse(optarg)) < 0)
				die_usage("--sampler: %s", mura_error_get());
			break;
		case OPT_STARTUP:
			o->set.startup = (int)parse_int("--startup", optarg, 0, 100000);
			break;
		case OPT_PRUNER:
			if ((o->set.pruner = mura_tune_pruner_parse(optarg)) < 0)
				die_usage("--pruner: %s", mura_error_get());
			break;
		case OPT_ETA:
			o->set.eta = (int)parse_int("--eta", optarg, 2, 999);
			break;
		case OPT_MIN_EPOCHS:
			o->set.min_epochs = (int)parse_int("--min-epochs", optarg, 1, 999999);
			break;
		case OPT_METRIC:
			if (mura_tune_metric_set(&o->set, optarg) < 0)
				die_usage("--metric: %s", mura_error_get());
			break;
		case 'e':
			o->set.epochs = (int)parse_int("--epochs", optarg, 1, 999999);
			break;
		case 's':
			o->set.seed = parse_int("--seed", optarg, 0, 1L << 40);
			break;
		case 'j':
			o->jobs = (int)parse_int("--jobs", optarg, 1, 1024);
			break;
		case 't':
			o->threads = (int)parse_int("--threads", optarg, 1, 1024);
			break;
		case OPT_POLL:
			if (mura_parse_double(optarg, 0.001, 3600, &o->poll) < 0)
				die_usage("--poll: %s", mura_error_get());
			break;
		case OPT_REPORT:
			o->report = 1;
			break;
		case OPT_NO_PLOTS:
			o->plots = 0;
			break;
		TOOL_COMMON_OPTIONS;
		}
	}
}

/* The trainer's options that mura-tune gives each trial itself. */
static void
check_command(const struct mura_tune_space *sp, int argc, char **argv)
{
	static const char *const ours[] = {"out", "log", "threads", "epochs", "resume"};

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strncmp(a, "--", 2) != 0)
			continue;
		a += 2;
		for (size_t k = 0; k < sizeof ours / sizeof ours[0]; k++)
			if (!strncmp(a, ours[k], strlen(ours[k])) && (!a[strlen(ours[k])] || a[strlen(ours[k])] == '='))
				die_usage("the trainer's %s: mura-tune gives each trial its own (see --epochs, --threads)",
				          argv[i]);
		for (int k = 0; sp && k < sp->n; k++)
			if (!strncmp(a, sp->p[k].name, strlen(sp->p[k].name)) &&
			    (!a[strlen(sp->p[k].name)] || a[strlen(sp->p[k].name)] == '='))
				die_usage("the trainer's %s: a parameter of the space", argv[i]);
	}
}

/* Continuing: what the command line gives must agree with the study. */
static void
check_agrees(const struct options *o, const struct mura_tune_study *s, int argc, char **argv)
{
	const struct mura_tune_settings *a = &o->set, *b = &s->set;
	const int *g = o->given;
	char msg[1024] = "";

#define DIFF(code, name, cond, fmt, x, y) \
	if (g[code] && (cond)) \
		snprintf(msg + strlen(msg), sizeof msg - strlen(msg), "%s--%s " fmt " (study: " fmt ")", \
		         *msg ? "; " : "", name, x, y)
	DIFF(OPT_METRIC, "metric", strcmp(a->metric, b->metric), "%s", a->metric, b->metric);
	DIFF(OPT_SAMPLER, "sampler", a->sampler != b->sampler, "%s", mura_tune_sampler_name(a->sampler),
	     mura_tune_sampler_name(b->sampler));
	DIFF(OPT_PRUNER, "pruner", a->pruner != b->pruner, "%s", mura_tune_pruner_name(a->pruner),
	     mura_tune_pruner_name(b->pruner));
	DIFF('s', "seed", a->seed != b->seed, "%ld", a->seed, b->seed);
	DIFF(OPT_STARTUP, "startup", a->startup != b->startup, "%d", a->startup, b->startup);
	DIFF('e', "epochs", a->epochs != b->epochs, "%d", a->epochs, b->epochs);
	DIFF(OPT_ETA, "eta", a->eta != b->eta, "%d", a->eta, b->eta);
	DIFF(OPT_MIN_EPOCHS, "min-epochs", a->min_epochs != b->min_epochs, "%d", a->min_epochs, b->min_epochs);
#undef DIFF
	if (*msg)
		die("%s: the study was made otherwise: %s", o->study, msg);
	if (o->space) {
		struct mura_tune_space sp;
		if (mura_tune_space_read(&sp, o->space) < 0)
			die_lib();
		if (strcmp(sp.text, s->space.text) != 0)
			die("%s: --space %s differs from the study's %s/space", o->study, o->space, o->study);
		mura_tune_space_free(&sp);
	}
	if (argc > 0) {
		int same = argc == s->argc;
		for (int i = 0; same && i < argc; i++)
			same = !strcmp(argv[i], s->argv[i]);
		if (!same)
			die("%s: the trainer's command differs from the study's (%s/command)", o->study, o->study);
	}
}

static void
report(void *arg, int ev, const struct mura_tune_trial *t, const char *msg)
{
	const struct mura_tune_study *s = arg;
	char b[64];

	switch (ev) {
	case MURA_TUNE_EV_START:
	case MURA_TUNE_EV_RESUME:
		fprintf(stderr, "%s: trial %d: %s", argv0, t->number, ev == MURA_TUNE_EV_START ? "started" : "resumed");
		for (int k = 0; k < s->space.n; k++) {
			mura_tune_value_format(&s->space.p[k], t->x[k], b, sizeof b);
			fprintf(stderr, " --%s %s", s->space.p[k].name, b);
		}
		fputc('\n', stderr);
		break;
	case MURA_TUNE_EV_COMPLETE:
	case MURA_TUNE_EV_PRUNED:
	case MURA_TUNE_EV_PAUSED:
		fprintf(stderr, "%s: trial %d: %s after epoch %d, %s %.6g\n", argv0, t->number,
		        ev == MURA_TUNE_EV_COMPLETE ? "complete" : ev == MURA_TUNE_EV_PRUNED ? "pruned" : "paused",
		        t->epochs, s->set.metric, t->value);
		break;
	case MURA_TUNE_EV_FAILED:
		fprintf(stderr, "%s: trial %d: failed: %s\n", argv0, t->number, msg);
		break;
	case MURA_TUNE_EV_INFO:
		fprintf(stderr, "%s: trial %d: %s\n", argv0, t ? t->number : -1, msg);
		break;
	}
}

/* One PNG in the study's folder, written to a temporary name and renamed;
 * the data go inline, so no path reaches gnuplot's parser. */
static FILE *
plot_open(const struct mura_tune_study *s, const char *name, pid_t *pid, char *tmp, size_t len)
{
	FILE *gp;

	snprintf(tmp, len, "%s.tmp.%ld", name, (long)getpid());
	gp = gnuplot_open(s->dir, pid);
	fprintf(gp, "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
	            "  set terminal pngcairo size 800,560\n"
	            "} else {\n"
	            "  set terminal png size 800,560\n"
	            "}\n"
	            "set output '%s'\nset grid\nset ylabel '%s'\n",
	        tmp, s->set.metric);
	return gp;
}

static void
plot_close(const struct mura_tune_study *s, FILE *gp, pid_t pid, const char *name, const char *tmp)
{
	char from[4400], to[4400];
	int st = gnuplot_close(gp, pid);

	snprintf(from, sizeof from, "%s/%s", s->dir, tmp);
	snprintf(to, sizeof to, "%s/%s", s->dir, name);
	if (st != 0) {
		unlink(from);
		if (st == 127)
			die("gnuplot: not found (install the Debian package gnuplot-nox, or give --no-plots)");
		die("%s: gnuplot failed", to);
	}
	if (rename(from, to) < 0) {
		unlink(from);
		die("%s: %s", to, strerror(errno));
	}
}

static void
plots(const struct mura_tune_study *s)
{
	char tmp[600], name[128];
	double best = NAN;
	pid_t pid;
	FILE *gp;

	gp = plot_open(s, "history.png", &pid, tmp, sizeof tmp);
	fprintf(gp, "set title 'optimisation history: %s'\nset xlabel 'trial'\n"
	            "plot '-' using 1:2 with points pt 7 title 'complete', "
	            "'-' using 1:2 with points pt 6 title 'pruned', "
	            "'-' using 1:2 with steps lw 2 title 'best so far'\n",
	        s->set.metric);
	for (int pass = 0; pass < 3; pass++) {
		for (int i = 0; i < s->n; i++) {
			const struct mura_tune_trial *t = &s->t[i];
			if (isnan(t->value))
				continue;
			if (pass == 0 && t->state == MURA_TUNE_COMPLETE)
				fprintf(gp, "%d %.17g\n", t->number, t->value);
			else if (pass == 1 && t->state != MURA_TUNE_COMPLETE)
				fprintf(gp, "%d %.17g\n", t->number, t->value);
			else if (pass == 2 && t->state == MURA_TUNE_COMPLETE && mura_tune_better(s, t->value, best))
				fprintf(gp, "%d %.17g\n", t->number, best = t->value);
		}
		if (pass == 2 && !isnan(best))
			fprintf(gp, "%d %.17g\n", s->n - 1, best);
		fprintf(gp, "%se\n", pass == 2 && isnan(best) ? "0 NaN\n" : "");
	}
	plot_close(s, gp, pid, "history.png", tmp);

	for (int k = 0; k < s->space.n; k++) {
		const struct mura_tune_param *p = &s->space.p[k];
		snprintf(name, sizeof name, "param-%s.png", p->name);
		gp = plot_open(s, name, &pid, tmp, sizeof tmp);
		fprintf(gp, "set title '%s against %s (complete trials)'\nset xlabel '%s'\n", s->set.metric, p->name,
		        p->name);
		if (p->kind == MURA_TUNE_LOG_UNIFORM)
			fprintf(gp, "set logscale x\n");
		if (p->kind == MURA_TUNE_CHOICE) {
			fprintf(gp, "set xrange [-0.5:%d.5]\nset xtics (", p->nchoice - 1);
			for (int c = 0; c < p->nchoice; c++)  /* words of [A-Za-z0-9._+-] (tune.h) */
				fprintf(gp, "%s\"%s\" %d", c ? ", " : "", p->choice[c], c);
			fprintf(gp, ")\n");
		}
		fprintf(gp, "plot '-' using 1:2 with points pt 7 notitle\n");
		for (int i = 0; i < s->n; i++) {
			const struct mura_tune_trial *t = &s->t[i];
			if (t->state == MURA_TUNE_COMPLETE && !isnan(t->value))
				fprintf(gp, "%.17g %.17g\n", t->x[k], t->value);
		}
		fprintf(gp, "e\n");
		plot_close(s, gp, pid, name, tmp);
	}
}

static void
print_report(const struct mura_tune_study *s, int with_plots)
{
	const struct mura_tune_trial *best = mura_tune_best(s);
	int count[MURA_TUNE_STATE_COUNT] = {0};
	char b[64];

	for (int i = 0; i < s->n; i++)
		count[s->t[i].state]++;
	printf("study %s: %d trials (", s->dir, s->n);
	for (int k = 0, first = 1; k < MURA_TUNE_STATE_COUNT; k++)
		if (count[k]) {
			printf("%s%d %s", first ? "" : ", ", count[k], mura_tune_state_name(k));
			first = 0;
		}
	printf("), %s (%s is better), sampler %s, pruner %s\n", s->set.metric, s->set.maximize ? "higher" : "lower",
	       mura_tune_sampler_name(s->set.sampler), mura_tune_pruner_name(s->set.pruner));
	if (best) {
		mura_format_shortest(b, sizeof b, best->value, 0);
		printf("best: trial %d (%s), %s %s after %d epochs:", best->number, mura_tune_state_name(best->state),
		       s->set.metric, b, best->epochs);
		for (int k = 0; k < s->space.n; k++) {
			mura_tune_value_format(&s->space.p[k], best->x[k], b, sizeof b);
			printf(" --%s %s", s->space.p[k].name, b);
		}
		printf("\n");
	} else
		printf("best: none yet\n");
	printf("\ntrial\tstate\tepochs\t%s", s->set.metric);
	for (int k = 0; k < s->space.n; k++)
		printf("\t%s", s->space.p[k].name);
	printf("\n");
	for (int i = 0; i < s->n; i++) {
		const struct mura_tune_trial *t = &s->t[i];
		mura_format_shortest(b, sizeof b, t->value, 0);
		printf("%d\t%s\t%d\t%s", t->number, mura_tune_state_name(t->state), t->epochs, isnan(t->value) ? "n/a" : b);
		for (int k = 0; k < s->space.n; k++) {
			mura_tune_value_format(&s->space.p[k], t->x[k], b, sizeof b);
			printf("\t%s", b);
		}
		printf("\n");
	}
	if (with_plots && s->n)
		plots(s);
}

int
main(int argc, char **argv)
{
	static struct options o;
	static struct mura_tune_study s;
	struct mura_tune_run r = {0};
	struct sigaction sa;
	int cmd_argc, rc;
	char **cmd_argv;
	long cores;

	set_argv0(argv[0]);
	parse_options(argc, argv, &o);
	cmd_argc = argc - optind;
	cmd_argv = argv + optind;
	if (!o.study)
		die_usage("--study DIR is required");
	if (o.report) {
		if (cmd_argc || o.trials)
			die_usage("--report takes --study and --no-plots only");
		if (mura_tune_study_open(&s, o.study) < 0)
			die_lib();
		print_report(&s, o.plots);
		mura_tune_study_free(&s);
		return close_stdout();
	}
	if (!o.trials)
		die_usage("--trials N is required");
	if (mura_tune_study_exists(o.study)) {
		if (mura_tune_study_open(&s, o.study) < 0)
			die_lib();
		check_agrees(&o, &s, cmd_argc, cmd_argv);
	} else {
		struct mura_tune_space sp;
		if (!o.space)
			die_usage("a new study needs --space FILE");
		if (!cmd_argc)
			die_usage("a new study needs the trainer's command after '--' (mura-train ARGS...)");
		if (o.set.pruner == MURA_TUNE_ASHA && !mura_tune_asha_rung_epoch(&o.set, 0))
			die_usage("--pruner asha: --min-epochs %d leaves no rung below --epochs %d", o.set.min_epochs,
			          o.set.epochs);
		if (mura_tune_space_read(&sp, o.space) < 0)
			die_lib();
		check_command(&sp, cmd_argc, cmd_argv);
		mura_tune_space_free(&sp);
		if (mura_tune_study_create(&s, o.study, &o.set, o.space, cmd_argc, cmd_argv) < 0)
			die_lib();
	}
	cores = sysconf(_SC_NPROCESSORS_ONLN);
	r.trials = o.trials;
	r.jobs = o.jobs;
	r.threads = o.threads ? o.threads : (int)(cores / o.jobs > 1 ? cores / o.jobs : 1);
	r.poll = o.poll;
	r.stop = &stop_signal;
	r.report = report;
	r.report_arg = &s;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	rc = mura_tune_study_run(&s, &r);
	if (rc < 0)
		die_lib();
	if (rc == 1) {
		warn("%s: the running trials were stopped at a checkpoint; run the same command again to continue",
		     stop_signal == SIGINT ? "interrupted" : "terminated");
		mura_tune_study_free(&s);
		return 128 + stop_signal;
	}
	{
		const struct mura_tune_trial *best = mura_tune_best(&s);
		int failed = 0;
		for (int i = 0; i < s.n; i++)
			failed += s.t[i].state == MURA_TUNE_FAILED;
		if (best)
			warn("best: trial %d, %s %.6g (mura-tune --report --study %s)", best->number, s.set.metric,
			     best->value, o.study);
		mura_tune_study_free(&s);
		if (failed) {
			warn("%d trial%s failed (see their stderr in %s/trial-N/)", failed, failed > 1 ? "s" : "", o.study);
			return 1;
		}
	}
	return 0;
}
