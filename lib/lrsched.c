/*
 * lrsched.c - the learning-rate schedules of lrsched.h.  Each formula is the
 * line of torch/optim/lr_scheduler.py (PyTorch 1.13) it copies, with its
 * operations in Python's order (left to right, double), so that the rates
 * are PyTorch's bit for bit (tests/t-sched.sh compares whole runs).
 */
#include <math.h>
#include <string.h>

#include "error.h"
#include "lrsched.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

static const char *const kind_names[] = {
	[MURA_SCHED_PLATEAU] = "plateau",
	[MURA_SCHED_COSINE] = "cosine",
	[MURA_SCHED_STEP] = "step",
	[MURA_SCHED_EXPONENTIAL] = "exponential",
	[MURA_SCHED_ONECYCLE] = "onecycle",
};
_Static_assert(sizeof kind_names / sizeof kind_names[0] == MURA_SCHED_KIND_END, "a name for every kind");

/* OneCycleLR's defaults. */
#define DIV_FACTOR 25.0
#define FINAL_DIV_FACTOR 1e4

int
mura_sched_kind_parse(const char *s)
{
	for (int i = 1; i < MURA_SCHED_KIND_END; i++)
		if (!strcmp(s, kind_names[i]))
			return i;
	return mura_error("unknown schedule '%s' (plateau, cosine, step, exponential, onecycle)", s);
}

const char *
mura_sched_kind_name(int kind)
{
	return kind > 0 && kind < MURA_SCHED_KIND_END ? kind_names[kind] : "?";
}

/* OneCycleLR's end of phase 1: float(pct_start * total_steps) - 1. */
static double
phase1_end(const struct mura_sched *s)
{
	return s->pct_start * (double)s->total_steps - 1;
}

int
mura_sched_check(const struct mura_sched *s)
{
	if (s->kind <= 0 || s->kind >= MURA_SCHED_KIND_END)
		return mura_error("unknown schedule %d", s->kind);
	if (!(s->lr >= 0) || !isfinite(s->lr))
		return mura_error("--lr %g: not a rate", s->lr);
	if (s->warmup < 0)
		return mura_error("--warmup %ld: negative", s->warmup);
	if (s->warmup > 0 && !(s->warmup_factor > 0 && s->warmup_factor <= 1))
		return mura_error("--warmup-factor %g: must be in (0, 1] (LinearLR's start_factor; 0 would "
		                  "divide by zero in its next step)", s->warmup_factor);
	switch (s->kind) {
	case MURA_SCHED_STEP:
		if (s->step_size < 1)
			return mura_error("--schedule step needs --step-size N >= 1");
		/* fall through */
	case MURA_SCHED_EXPONENTIAL:
		if (!(s->gamma > 0) || !isfinite(s->gamma))
			return mura_error("--lr-gamma %g: must be positive", s->gamma);
		break;
	case MURA_SCHED_COSINE:
		if (s->t_max < 1)
			return mura_error("--t-max %d: must be at least 1", s->t_max);
		if (!(s->min_lr >= 0) || !isfinite(s->min_lr))
			return mura_error("--min-lr %g: must be >= 0", s->min_lr);
		break;
	case MURA_SCHED_ONECYCLE:
		if (s->warmup > 0)
			return mura_error("--warmup with --schedule onecycle: OneCycleLR sets the rate outright "
			                  "at every step and warms up by itself (--pct-start)");
		if (!(s->max_lr > 0) || !isfinite(s->max_lr))
			return mura_error("--max-lr %g: must be positive", s->max_lr);
		if (!(s->pct_start >= 0 && s->pct_start <= 1))
			return mura_error("--pct-start %g: must be in [0, 1]", s->pct_start);
		if (s->total_steps < 1)
			return mura_error("onecycle: %ld steps in the run", s->total_steps);
		/* both phases must have a length, or PyTorch divides by zero */
		if (!(phase1_end(s) > 0) || !((double)(s->total_steps - 1) > phase1_end(s)))
			return mura_error("--pct-start %g of %ld steps leaves a phase of OneCycleLR without a step "
			                  "(it would divide by zero): more steps, or another --pct-start",
			                  s->pct_start, s->total_steps);
		break;
	}
	return 0;
}

/* OneCycleLR._annealing_cos: from start to end as pct goes from 0 to 1. */
static double
anneal_cos(double start, double end, double pct)
{
	double cos_out = cos(M_PI * pct) + 1;
	return end + (start - end) / 2.0 * cos_out;
}

/* OneCycleLR.get_lr at last_epoch step: the rate and the momentum. */
static void
onecycle(const struct mura_sched *s, long step, double *lr, double *mom)
{
	double initial = s->max_lr / DIV_FACTOR, min = initial / FINAL_DIV_FACTOR;
	double end1 = phase1_end(s), end2 = (double)(s->total_steps - 1);
	double x = (double)step, pct;

	if (x <= end1) {
		pct = (x - 0) / (end1 - 0);
		*lr = anneal_cos(initial, s->max_lr, pct);
		*mom = anneal_cos(MURA_SCHED_MAX_MOMENTUM, MURA_SCHED_BASE_MOMENTUM, pct);
	} else {
		pct = (x - end1) / (end2 - end1);
		*lr = anneal_cos(s->max_lr, min, pct);
		*mom = anneal_cos(MURA_SCHED_BASE_MOMENTUM, MURA_SCHED_MAX_MOMENTUM, pct);
	}
}

double
mura_sched_start(const struct mura_sched *s)
{
	double lr = s->lr, mom;

	if (s->kind == MURA_SCHED_ONECYCLE) {
		onecycle(s, 0, &lr, &mom);
		return lr;
	}
	/* LinearLR at last_epoch 0: group['lr'] * start_factor; the epoch
	 * schedules' first step (last_epoch 0) leaves the rate as it is */
	if (s->warmup > 0)
		lr = lr * s->warmup_factor;
	return lr;
}

void
mura_sched_step(const struct mura_sched *s, long done, double *lr)
{
	double mom;

	if (s->kind == MURA_SCHED_ONECYCLE) {
		onecycle(s, done, lr, &mom);
		return;
	}
	/* LinearLR.get_lr, last_epoch = done; beyond total_iters, unchanged */
	if (done >= 1 && done <= s->warmup) {
		double f = s->warmup_factor, d = 1.0 - f;
		*lr = *lr * (1. + d / ((double)s->warmup * f + (double)(done - 1) * d));
	}
}

/* Python's a % b for b > 0: never negative. */
static long
py_mod(long a, long b)
{
	long m = a % b;
	return m < 0 ? m + b : m;
}

void
mura_sched_epoch(const struct mura_sched *s, int done, double *lr)
{
	switch (s->kind) {
	case MURA_SCHED_STEP:  /* StepLR.get_lr */
		if (done != 0 && done % s->step_size == 0)
			*lr = *lr * s->gamma;
		break;
	case MURA_SCHED_EXPONENTIAL:  /* ExponentialLR.get_lr */
		if (done != 0)
			*lr = *lr * s->gamma;
		break;
	case MURA_SCHED_COSINE: {  /* CosineAnnealingLR.get_lr */
		double e = done, t = s->t_max;
		if (done == 0)
			break;
		if (py_mod((long)done - 1 - s->t_max, 2 * (long)s->t_max) == 0)
			*lr = *lr + (s->lr - s->min_lr) * (1 - cos(M_PI / t)) / 2;
		else
			*lr = (1 + cos(M_PI * e / t)) / (1 + cos(M_PI * (e - 1) / t)) * (*lr - s->min_lr) + s->min_lr;
		break;
	}
	default:
		break;
	}
}

int
mura_sched_momentum(const struct mura_sched *s, long done, double *m)
{
	double lr;

	if (s->kind != MURA_SCHED_ONECYCLE)
		return 0;
	onecycle(s, done, &lr, m);
	return 1;
}
