/*
 * gradcheck.h - an operation's backward against central differences of its
 * forward, for the C tests of lib/nn (included by one test file; its state
 * is that file's).
 *
 * For an op y = f(x) and a fixed random upstream gradient r, the scalar
 * L(x) = sum(r * y) has dL/dx = the op's backward applied to r.  Each input
 * coordinate checked is moved by +-eps and (L(x+) - L(x-)) / (2 eps) is
 * compared with the analytic value; the error is measured relative to the
 * largest analytic value of that tensor, with a tolerance per op (linear
 * ops are exact up to rounding, so they take a large eps and a tight
 * tolerance; smooth non-linear ones a small eps).
 */
#ifndef MURA_TEST_GRADCHECK_H
#define MURA_TEST_GRADCHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "nn/ops.h"
#include "rng.h"
#include "test.h"

static struct mura_rng rng;
static struct mura_nn_ctx ctx;

static float *
rnd(size_t n, float lo, float hi)
{
	float *p = malloc((n ? n : 1) * sizeof *p);
	for (size_t i = 0; i < n; i++)
		p[i] = (float)mura_rng_uniform(&rng, lo, hi);
	return p;
}

static float *
zeros(size_t n)
{
	return calloc(n ? n : 1, sizeof(float));
}

/* ctx's scratch holds at least n floats. */
static void
need_scratch(size_t n)
{
	if (n > ctx.scratch_n) {
		free(ctx.scratch);
		ctx.scratch = malloc(n * sizeof(float));
		ctx.scratch_n = n;
	}
}

struct input {
	const char *what;
	float *x, *g;
	size_t n;
};

struct gc {
	const char *name;
	void (*fwd)(struct gc *);
	void (*bwd)(struct gc *);  /* zeroes its parameter gradients, then runs the backward with dy */
	void *op;                  /* the op's own state, for fwd and bwd */
	float *y, *dy;
	size_t ny;
	struct input in[4];
	int nin;
	double eps, tol;
	size_t max_coords;         /* check at most this many coordinates per input */
};

static double
loss_of(struct gc *t)
{
	double s = 0;
	t->fwd(t);
	for (size_t i = 0; i < t->ny; i++)
		s += (double)t->dy[i] * t->y[i];
	return s;
}

static void
gradcheck(struct gc *t)
{
	if (!t->dy)
		t->dy = rnd(t->ny, -1, 1);
	t->fwd(t);
	t->bwd(t);
	for (int k = 0; k < t->nin; k++) {
		struct input *in = &t->in[k];
		double gmax = 0, err = 0;
		for (size_t i = 0; i < in->n; i++)
			gmax = fmax(gmax, fabs(in->g[i]));
		size_t step = in->n > t->max_coords ? in->n / t->max_coords : 1;
		for (size_t i = (size_t)mura_rng_below(&rng, step); i < in->n; i += step) {
			float keep = in->x[i];
			in->x[i] = keep + (float)t->eps;
			double lp = loss_of(t);
			in->x[i] = keep - (float)t->eps;
			double lm = loss_of(t);
			in->x[i] = keep;
			double num = (lp - lm) / (2 * t->eps);
			err = fmax(err, fabs(num - in->g[i]));
		}
		char name[200];
		snprintf(name, sizeof name, "grad %s d%s", t->name, in->what);
		if (gmax == 0) {
			CHECK(name, !"gradient identically zero: the check would prove nothing");
			continue;
		}
		if (err / gmax > t->tol)
			printf("  %s: max error %.3g of max |grad| %.3g\n", name, err, gmax);
		CHECK(name, err / gmax <= t->tol);
	}
}

#endif
