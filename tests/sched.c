/*
 * sched.c - the learning-rate schedules of lib/lrsched.h over whole runs, for
 * tests/t-sched.sh to compare with PyTorch's (tests/py/sched_ref.py).
 *
 *   tests/sched CASES   for every line "NAME key=value ..." of the file
 *                       CASES, the rate and momentum of every optimizer
 *                       step of the run, as lines "NAME STEP LR MOMENTUM"
 *                       (%.17g: the exact doubles), in the order lib/train.c
 *                       calls the schedule: mura_sched_start, then after
 *                       each step mura_sched_step, after each epoch
 *                       mura_sched_epoch
 *   tests/sched         (as make check runs it) the per-epoch schedules
 *                       against their closed forms: StepLR, ExponentialLR,
 *                       CosineAnnealingLR
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "lrsched.h"

/* The value of key=VALUE among the words, or def. */
static const char *
field(char **w, int nw, const char *key, const char *def)
{
	size_t k = strlen(key);

	for (int i = 1; i < nw; i++)
		if (!strncmp(w[i], key, k) && w[i][k] == '=')
			return w[i] + k + 1;
	return def;
}

/* The rate of each of `epochs` epochs of one step: rate[e], e = 0 .. epochs - 1. */
static void
per_epoch(struct mura_sched *s, int epochs, double *rate)
{
	double lr;

	s->total_steps = epochs;
	lr = mura_sched_start(s);
	for (int e = 1; e <= epochs; e++) {
		rate[e - 1] = lr;
		mura_sched_step(s, e, &lr);
		mura_sched_epoch(s, e, &lr);
	}
}

/* Each epoch's rate within 1e-12 of the closed form's. */
static void
closed_form(const char *name, struct mura_sched *s, int epochs, double (*want)(int e))
{
	double rate[64], worst = 0;

	if (mura_sched_check(s) < 0) {
		printf("FAIL: %s: %s\n", name, mura_error_get());
		return;
	}
	per_epoch(s, epochs, rate);
	for (int e = 0; e < epochs; e++) {
		double d = fabs(rate[e] - want(e));
		if (!(d <= worst))
			worst = d;
	}
	printf("%s: %s: largest difference %.3g over %d epochs\n", worst <= 1e-12 ? "PASS" : "FAIL", name, worst,
	       epochs);
}

static double step_want(int e) { return 0.1 * pow(0.1, e / 3); }
static double exp_want(int e) { return 0.1 * pow(0.5, e); }
static double cos_want(int e) { return 0.001 + (0.1 - 0.001) * (1 + cos(3.14159265358979323846 * e / 10)) / 2; }

static int
self_check(void)
{
	struct mura_sched s = {0};

	s.kind = mura_sched_kind_parse("step"), s.lr = 0.1, s.step_size = 3, s.gamma = 0.1;
	closed_form("step: 0.1 x 0.1^floor(e / 3)", &s, 10, step_want);
	memset(&s, 0, sizeof s);
	s.kind = mura_sched_kind_parse("exponential"), s.lr = 0.1, s.gamma = 0.5;
	closed_form("exponential: 0.1 x 0.5^e", &s, 12, exp_want);
	memset(&s, 0, sizeof s);
	s.kind = mura_sched_kind_parse("cosine"), s.lr = 0.1, s.t_max = 10, s.min_lr = 0.001;
	closed_form("cosine: 0.001 + 0.099 (1 + cos(pi e / 10)) / 2", &s, 11, cos_want);
	return fclose(stdout) != 0;
}

int
main(int argc, char **argv)
{
	char line[1024];
	FILE *f;

	if (argc == 1)
		return self_check();
	if (argc != 2 || !(f = fopen(argv[1], "r"))) {
		fprintf(stderr, "usage: sched CASES\n");
		return 2;
	}
	while (fgets(line, sizeof line, f)) {
		char *w[32], *save;
		int nw = 0;
		for (char *t = strtok_r(line, " \n", &save); t && nw < 32; t = strtok_r(NULL, " \n", &save))
			w[nw++] = t;
		if (nw < 2)
			continue;
		struct mura_sched s = {0};
		if ((s.kind = mura_sched_kind_parse(field(w, nw, "kind", "?"))) < 0) {
			fprintf(stderr, "sched: %s: %s\n", w[0], mura_error_get());
			return 1;
		}
		int epochs = atoi(field(w, nw, "epochs", "1")), steps = atoi(field(w, nw, "steps", "1"));
		double mom0 = atof(field(w, nw, "momentum", "0.9"));
		s.lr = atof(field(w, nw, "lr", "0.001"));
		s.step_size = atoi(field(w, nw, "step_size", "0"));
		s.gamma = atof(field(w, nw, "gamma", "0.1"));
		s.t_max = atoi(field(w, nw, "t_max", "0"));
		s.min_lr = atof(field(w, nw, "min_lr", "0"));
		s.max_lr = atof(field(w, nw, "max_lr", "0"));
		s.pct_start = atof(field(w, nw, "pct_start", "0.3"));
		s.warmup = atol(field(w, nw, "warmup", "0"));
		s.warmup_factor = atof(field(w, nw, "warmup_factor", "0.01"));
		s.total_steps = (long)epochs * steps;
		if (mura_sched_check(&s) < 0) {
			fprintf(stderr, "sched: %s: %s\n", w[0], mura_error_get());
			return 1;
		}
		double lr = mura_sched_start(&s);
		long done = 0;
		for (int e = 1; e <= epochs; e++) {
			for (int b = 0; b < steps; b++) {
				double m = mom0;
				mura_sched_momentum(&s, done, &m);
				printf("%s %ld %.17g %.17g\n", w[0], done + 1, lr, m);
				mura_sched_step(&s, ++done, &lr);
			}
			mura_sched_epoch(&s, e, &lr);
		}
	}
	fclose(f);
	return fclose(stdout) != 0;
}
