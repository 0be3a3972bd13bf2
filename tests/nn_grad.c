/*
 * nn_grad.c - every operation of lib/nn/ops.h: its backward against central
 * differences of its forward, and the forward of the convolution against a
 * direct sum in double.
 *
 * The harness (central differences of L = sum(r * y)) is gradcheck.h's.
 * ReLU and max pooling are checked away from their kinks: inputs are drawn
 * so that no value lies within a few eps of 0 (ReLU) and values in a window
 * differ by more than 2 eps (max pool).
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"

/* Values bounded away from 0 by at least gap, random sign. */
static float *
rnd_nonzero(size_t n, float gap)
{
	float *p = rnd(n, gap, 1.0f);
	for (size_t i = 0; i < n; i++)
		if (mura_rng_u64(&rng) & 1)
			p[i] = -p[i];
	return p;
}

/* ---- convolution -------------------------------------------------------- */
struct conv_op {
	struct mura_conv cv;
	struct mura_fm x, y, dx;
};

static void
conv_fwd(struct gc *t)
{
	struct conv_op *o = t->op;
	mura_conv_forward(&ctx, &o->cv, &o->x, &o->y);
}

static void
conv_bwd(struct gc *t)
{
	struct conv_op *o = t->op;
	struct mura_fm dy = o->y;
	size_t nw = (size_t)o->cv.cout * o->cv.cin * o->cv.k * o->cv.k;
	memset(o->cv.gw, 0, nw * sizeof(float));
	if (o->cv.gb)
		memset(o->cv.gb, 0, (size_t)o->cv.cout * sizeof(float));
	dy.d = t->dy;
	mura_conv_backward(&ctx, &o->cv, &o->x, &dy, &o->dx, 0);
}

/* y of a direct sum in double, [cout][n][ho][wo] */
static double
conv_naive_err(const struct conv_op *o)
{
	const struct mura_conv *cv = &o->cv;
	const struct mura_fm *x = &o->x, *y = &o->y;
	double err = 0, ymax = 0;

	for (int co = 0; co < cv->cout; co++)
		for (int n = 0; n < x->n; n++)
			for (int oh = 0; oh < y->h; oh++)
				for (int ow = 0; ow < y->w; ow++) {
					double s = cv->b ? cv->b[co] : 0;
					for (int ci = 0; ci < cv->cin; ci++)
						for (int a = 0; a < cv->k; a++)
							for (int b = 0; b < cv->k; b++) {
								int ih = oh * cv->stride - cv->pad + a;
								int iw = ow * cv->stride - cv->pad + b;
								if (ih < 0 || ih >= x->h || iw < 0 || iw >= x->w)
									continue;
								s += (double)cv->w[((co * cv->cin + ci) * cv->k + a) * cv->k + b] *
								     x->d[(((size_t)ci * x->n + n) * x->h + ih) * x->w + iw];
							}
					double got = y->d[(((size_t)co * y->n + n) * y->h + oh) * y->w + ow];
					err = fmax(err, fabs(got - s));
					ymax = fmax(ymax, fabs(s));
				}
	return err / fmax(ymax, 1e-30);
}

static void
check_conv(const char *name, int cin, int cout, int k, int s, int p, int bias, int n, int h, int w,
           size_t max_coords)
{
	struct conv_op o = {{cin, cout, k, s, p, NULL, NULL, NULL, NULL}, {0}, {0}, {0}};
	int ho = mura_window_out(h, k, s, p), wo = mura_window_out(w, k, s, p);
	size_t nw = (size_t)cout * cin * k * k;

	o.cv.w = rnd(nw, -0.5f, 0.5f);
	o.cv.gw = zeros(nw);
	if (bias) {
		o.cv.b = rnd((size_t)cout, -0.5f, 0.5f);
		o.cv.gb = zeros((size_t)cout);
	}
	o.x = (struct mura_fm){rnd((size_t)cin * n * h * w, -1, 1), cin, n, h, w};
	o.dx = (struct mura_fm){zeros((size_t)cin * n * h * w), cin, n, h, w};
	o.y = (struct mura_fm){zeros((size_t)cout * n * ho * wo), cout, n, ho, wo};
	need_scratch(mura_conv_scratch(&o.cv, &o.x, mura_threads_size(ctx.threads)));

	struct gc t = {name, conv_fwd, conv_bwd, &o, o.y.d, NULL, mura_fm_size(&o.y),
	               {{"x", o.x.d, o.dx.d, mura_fm_size(&o.x)}, {"w", o.cv.w, o.cv.gw, nw},
	                {"b", o.cv.b, o.cv.gb, (size_t)cout}},
	               bias ? 3 : 2, 0.25, 2e-4, max_coords};
	gradcheck(&t);

	char nm[200];
	conv_fwd(&t);
	snprintf(nm, sizeof nm, "conv forward %s = direct sum", name);
	CHECK_NEAR(nm, conv_naive_err(&o), 0, 1e-5);

	/* acc adds the input gradient to what dx held */
	float *before = malloc(mura_fm_size(&o.x) * sizeof(float));
	memcpy(before, o.dx.d, mura_fm_size(&o.x) * sizeof(float));
	struct mura_fm dy = o.y;
	dy.d = t.dy;
	mura_conv_backward(&ctx, &o.cv, &o.x, &dy, &o.dx, 1);
	double err = 0;
	for (size_t i = 0; i < mura_fm_size(&o.x); i++)
		err = fmax(err, fabs(o.dx.d[i] - 2 * before[i]));
	snprintf(nm, sizeof nm, "conv backward %s accumulates into dx", name);
	CHECK_NEAR(nm, err, 0, 1e-5);

	free(before);
	free(t.dy);
	free(o.cv.w), free(o.cv.gw), free(o.cv.b), free(o.cv.gb);
	free(o.x.d), free(o.dx.d), free(o.y.d);
}

/* ---- batch norm ----------------------------------------------------------- */
struct bn_op {
	struct mura_bn bn;
	struct mura_fm x, y, dx;
	int train, relu;
};

static void
bn_fwd(struct gc *t)
{
	struct bn_op *o = t->op;
	mura_bn_forward(&ctx, &o->bn, &o->x, &o->y, o->train, o->relu);
}

static void
bn_bwd(struct gc *t)
{
	struct bn_op *o = t->op;
	struct mura_fm dy = o->y;
	memset(o->bn.gw, 0, (size_t)o->bn.c * sizeof(float));
	memset(o->bn.gb, 0, (size_t)o->bn.c * sizeof(float));
	dy.d = t->dy;
	mura_bn_backward(&ctx, &o->bn, &o->x, &o->y, &dy, &o->dx, o->train, o->relu, 0);
}

static void
check_bn(int train, int relu)
{
	const int c = 3, n = 2, h = 3, w = 4;
	const size_t m = (size_t)n * h * w, sz = (size_t)c * m;
	struct bn_op o = {{0}, {0}, {0}, {0}, train, relu};
	int64_t nbt = 0;
	double eps = 1e-3;

	o.bn = (struct mura_bn){c, rnd(c, 0.5f, 1.5f), zeros(c), rnd(c, -0.5f, 0.5f), zeros(c),
	                        rnd(c, -0.3f, 0.3f), rnd(c, 0.5f, 2.0f), &nbt, zeros(c), zeros(c), 0.1f,
	                        1e-5f, zeros(c), zeros(c)};
	o.x = (struct mura_fm){NULL, c, n, h, w};
	o.y = (struct mura_fm){zeros(sz), c, n, h, w};
	o.dx = (struct mura_fm){zeros(sz), c, n, h, w};
	/* With the ReLU, draw until no output lies near its kink: a move of eps
	 * in one x moves every output of its channel (through the statistics). */
	for (int tries = 0;; tries++) {
		free(o.x.d);
		o.x.d = rnd(sz, -2, 2);
		mura_bn_forward(&ctx, &o.bn, &o.x, &o.y, train, 0);
		float least = FLT_MAX;
		for (size_t i = 0; i < sz; i++)
			least = fminf(least, fabsf(o.y.d[i]));
		if (!relu || least > 20 * eps || tries > 1000)
			break;
	}

	char name[100];
	snprintf(name, sizeof name, "batchnorm %s%s", train ? "train" : "eval", relu ? "+relu" : "");
	struct gc t = {name, bn_fwd, bn_bwd, &o, o.y.d, NULL, sz,
	               {{"x", o.x.d, o.dx.d, sz}, {"w", o.bn.w, o.bn.gw, c}, {"b", o.bn.b, o.bn.gb, c}},
	               3, eps, 2e-3, 1000};
	gradcheck(&t);

	if (train) {
		/* one more forward from known running statistics */
		float rm0 = 0.25f, rv0 = 1.5f;
		for (int i = 0; i < c; i++)
			o.bn.rmean[i] = rm0, o.bn.rvar[i] = rv0;
		int64_t nbt0 = nbt;
		mura_bn_forward(&ctx, &o.bn, &o.x, &o.y, 1, relu);
		double err = 0;
		for (int i = 0; i < c; i++) {
			double s = 0, ss = 0;
			for (size_t k = 0; k < m; k++)
				s += o.x.d[i * m + k];
			double mean = s / m;
			for (size_t k = 0; k < m; k++)
				ss += (o.x.d[i * m + k] - mean) * (o.x.d[i * m + k] - mean);
			err = fmax(err, fabs(o.bn.rmean[i] - (0.9 * rm0 + 0.1 * mean)));
			err = fmax(err, fabs(o.bn.rvar[i] - (0.9 * rv0 + 0.1 * ss / (m - 1))));
		}
		CHECK_NEAR("batchnorm running statistics: momentum 0.1, unbiased variance", err, 0, 1e-6);
		CHECK("batchnorm counts num_batches_tracked", nbt == nbt0 + 1);
	}
	free(t.dy);
	free(o.bn.w), free(o.bn.gw), free(o.bn.b), free(o.bn.gb), free(o.bn.rmean), free(o.bn.rvar);
	free(o.bn.mean), free(o.bn.invstd), free(o.bn.scale), free(o.bn.shift);
	free(o.x.d), free(o.y.d), free(o.dx.d);
}

/* mura_bn_forward_saved, the recomputation of a training forward's output
 * in backward (densenet.c): bit-identical to that forward, statistics and
 * num_batches_tracked untouched; and against central differences, the map
 * x -> y with the batch statistics frozen (no correction terms). */
static void
bn_saved_fwd(struct gc *t)
{
	struct bn_op *o = t->op;
	mura_bn_forward_saved(&ctx, &o->bn, &o->x, &o->y, o->relu);
}

static void
bn_saved_bwd(struct gc *t)
{
	struct bn_op *o = t->op;
	const size_t m = mura_fm_plane(&o->x);
	for (int c = 0; c < o->bn.c; c++)
		for (size_t i = c * m; i < (c + 1) * m; i++)
			o->dx.d[i] = o->relu && !(o->y.d[i] > 0) ? 0 : t->dy[i] * o->bn.scale[c];
}

static void
check_bn_saved(int relu)
{
	const int c = 4, n = 2, h = 5, w = 3;
	const size_t m = (size_t)n * h * w, sz = (size_t)c * m;
	struct bn_op o = {{0}, {0}, {0}, {0}, 1, relu};
	int64_t nbt = 0;
	char name[100];

	o.bn = (struct mura_bn){c, rnd(c, 0.5f, 1.5f), zeros(c), rnd(c, -0.5f, 0.5f), zeros(c),
	                        rnd(c, -0.3f, 0.3f), rnd(c, 0.5f, 2.0f), &nbt, zeros(c), zeros(c), 0.1f,
	                        1e-5f, zeros(c), zeros(c)};
	o.x = (struct mura_fm){rnd_nonzero(sz, 0.05f), c, n, h, w};
	o.y = (struct mura_fm){zeros(sz), c, n, h, w};
	o.dx = (struct mura_fm){zeros(sz), c, n, h, w};
	float *y0 = zeros(sz), *rm = zeros(c), *rv = zeros(c), *mean = zeros(c);
	mura_bn_forward(&ctx, &o.bn, &o.x, &o.y, 1, relu);
	memcpy(y0, o.y.d, sz * sizeof(float));
	memcpy(rm, o.bn.rmean, c * sizeof(float));
	memcpy(rv, o.bn.rvar, c * sizeof(float));
	memcpy(mean, o.bn.mean, c * sizeof(float));
	int64_t nbt0 = nbt;

	memset(o.y.d, 0, sz * sizeof(float));
	mura_bn_forward_saved(&ctx, &o.bn, &o.x, &o.y, relu);
	snprintf(name, sizeof name, "batchnorm%s saved forward: the training forward bit for bit",
	         relu ? "+relu" : "");
	CHECK(name, !memcmp(o.y.d, y0, sz * sizeof(float)));
	snprintf(name, sizeof name, "batchnorm%s saved forward: statistics untouched", relu ? "+relu" : "");
	CHECK(name, !memcmp(rm, o.bn.rmean, c * sizeof(float)) && !memcmp(rv, o.bn.rvar, c * sizeof(float)) &&
	            !memcmp(mean, o.bn.mean, c * sizeof(float)) && nbt == nbt0);

	/* y = x * scale + shift away from the ReLU's kink: x at least 0.05 from
	 * the kink's x (-shift / scale), eps far below that */
	for (int k = 0; k < c; k++) {
		float kink = -o.bn.shift[k] / o.bn.scale[k];
		for (size_t i = k * m; i < (k + 1) * m; i++)
			if (fabsf(o.x.d[i] - kink) < 0.05f)
				o.x.d[i] = kink + (o.x.d[i] < kink ? -0.05f : 0.05f);
	}
	snprintf(name, sizeof name, "batchnorm saved%s", relu ? "+relu" : "");
	struct gc t = {name, bn_saved_fwd, bn_saved_bwd, &o, o.y.d, NULL, sz,
	               {{"x", o.x.d, o.dx.d, sz}}, 1, 1e-2, 1e-3, 1000};
	gradcheck(&t);
	snprintf(name, sizeof name, "batchnorm%s saved forward: num_batches_tracked untouched by the check",
	         relu ? "+relu" : "");
	CHECK(name, nbt == nbt0);

	free(t.dy), free(y0), free(rm), free(rv), free(mean);
	free(o.bn.w), free(o.bn.gw), free(o.bn.b), free(o.bn.gb), free(o.bn.rmean), free(o.bn.rvar);
	free(o.bn.mean), free(o.bn.invstd), free(o.bn.scale), free(o.bn.shift);
	free(o.x.d), free(o.y.d), free(o.dx.d);
}

/* ---- elementwise --------------------------------------------------------- */
enum ew_kind { EW_RELU, EW_SIGMOID, EW_ADD, EW_DROPOUT };

struct ew_op {
	int kind;
	size_t n;
	float *a, *b, *y, *da, *db, *mask;
	struct mura_rng r;
};

static void
ew_fwd(struct gc *t)
{
	struct ew_op *o = t->op;
	struct mura_rng r = o->r; /* the same mask on every call */
	switch (o->kind) {
	case EW_RELU: mura_relu_forward(&ctx, o->n, o->a, o->y); break;
	case EW_SIGMOID: mura_sigmoid_forward(&ctx, o->n, o->a, o->y); break;
	case EW_ADD: mura_add_forward(&ctx, o->n, o->a, o->b, o->y); break;
	case EW_DROPOUT: mura_dropout_forward(&ctx, o->n, 0.4f, &r, o->a, o->mask, o->y); break;
	}
}

static void
ew_bwd(struct gc *t)
{
	struct ew_op *o = t->op;
	switch (o->kind) {
	case EW_RELU: mura_relu_backward(&ctx, o->n, o->y, t->dy, o->da, 0); break;
	case EW_SIGMOID: mura_sigmoid_backward(&ctx, o->n, o->y, t->dy, o->da, 0); break;
	case EW_ADD:
		mura_add_backward(&ctx, o->n, t->dy, o->da, 0);
		mura_add_backward(&ctx, o->n, t->dy, o->db, 0);
		break;
	case EW_DROPOUT: mura_dropout_backward(&ctx, o->n, o->mask, t->dy, o->da, 0); break;
	}
}

static void
check_ew(const char *name, int kind)
{
	/* 70000 values: more than one thread's grain, so the split runs too */
	const size_t n = 70000;
	struct ew_op o = {kind, n, rnd_nonzero(n, 0.05f), rnd(n, -1, 1), zeros(n), zeros(n), zeros(n),
	                  zeros(n), {{0}}};

	mura_rng_seed(&o.r, 99);
	struct gc t = {name, ew_fwd, ew_bwd, &o, o.y, NULL, n,
	               {{"a", o.a, o.da, n}, {"b", o.b, o.db, n}}, kind == EW_ADD ? 2 : 1, 1e-2,
	               kind == EW_SIGMOID ? 2e-4 : 1e-4, 300};
	gradcheck(&t);
	if (kind == EW_DROPOUT) {
		size_t zero = 0;
		for (size_t i = 0; i < n; i++)
			zero += o.mask[i] == 0;
		CHECK_NEAR("dropout drops a fraction p = 0.4", (double)zero / n, 0.4, 0.01);
		CHECK("dropout scales the kept by 1 / (1 - p)", fabsf(o.mask[0] - (o.mask[0] ? 1 / 0.6f : 0)) < 1e-6);
	}
	free(t.dy);
	free(o.a), free(o.b), free(o.y), free(o.da), free(o.db), free(o.mask);
}

/* ---- pooling ------------------------------------------------------------ */
enum pool_kind { P_MAX, P_AVG, P_GAP };

struct pool_op {
	int kind;
	struct mura_maxpool mp;
	struct mura_fm x, y, dx;
};

static void
pool_fwd(struct gc *t)
{
	struct pool_op *o = t->op;
	switch (o->kind) {
	case P_MAX: mura_maxpool_forward(&ctx, &o->mp, &o->x, &o->y); break;
	case P_AVG: mura_avgpool_forward(&ctx, 2, 2, &o->x, &o->y); break;
	case P_GAP: mura_gap_forward(&ctx, &o->x, o->y.d); break;
	}
}

static void
pool_bwd(struct gc *t)
{
	struct pool_op *o = t->op;
	struct mura_fm dy = o->y;
	dy.d = t->dy;
	switch (o->kind) {
	case P_MAX: mura_maxpool_backward(&ctx, &o->mp, &dy, &o->dx, 0); break;
	case P_AVG: mura_avgpool_backward(&ctx, 2, 2, &dy, &o->dx, 0); break;
	case P_GAP: mura_gap_backward(&ctx, t->dy, &o->dx, 0); break;
	}
}

static void
check_pool(const char *name, int kind, int h, int w)
{
	const int c = 3, n = 2;
	const size_t sz = (size_t)c * n * h * w;
	struct pool_op o = {kind, {3, 2, 1, NULL}, {NULL, c, n, h, w}, {0}, {zeros(sz), c, n, h, w}};

	int ho = kind == P_MAX ? mura_window_out(h, 3, 2, 1) : kind == P_AVG ? mura_window_out(h, 2, 2, 0) : 1;
	int wo = kind == P_MAX ? mura_window_out(w, 3, 2, 1) : kind == P_AVG ? mura_window_out(w, 2, 2, 0) : 1;
	o.y = (struct mura_fm){zeros((size_t)c * n * ho * wo), c, n, ho, wo};
	o.mp.arg = malloc((size_t)c * n * ho * wo * sizeof(int32_t));
	/* distinct values 0.05 apart, shuffled: no ties within 2 eps (max pool;
	 * the average pools are linear and take a large eps) */
	o.x.d = malloc(sz * sizeof(float));
	for (size_t i = 0; i < sz; i++)
		o.x.d[i] = (float)i * 0.05f - 3;
	for (size_t i = sz - 1; i > 0; i--) {
		size_t k = (size_t)mura_rng_below(&rng, i + 1);
		float s = o.x.d[i];
		o.x.d[i] = o.x.d[k];
		o.x.d[k] = s;
	}
	struct gc t = {name, pool_fwd, pool_bwd, &o, o.y.d, NULL, mura_fm_size(&o.y),
	               {{"x", o.x.d, o.dx.d, sz}}, 1, kind == P_MAX ? 1e-2 : 0.25, 1e-4, 1000};
	gradcheck(&t);
	free(t.dy), free(o.x.d), free(o.y.d), free(o.dx.d), free(o.mp.arg);
}

/* torchvision's tie rule: in a window of equal values, the first gets it all */
static void
check_maxpool_ties(void)
{
	float x[16] = {0}, y[4], dx[16], dy[4] = {1, 1, 1, 1};
	int32_t arg[4];
	struct mura_maxpool mp = {3, 2, 1, arg};
	struct mura_fm fx = {x, 1, 1, 4, 4}, fy = {y, 1, 1, 2, 2}, fdx = {dx, 1, 1, 4, 4},
	               fdy = {dy, 1, 1, 2, 2};

	mura_maxpool_forward(&ctx, &mp, &fx, &fy);
	mura_maxpool_backward(&ctx, &mp, &fdy, &fdx, 0);
	/* windows start at rows/cols -1 and 1: first in-bounds elements 0, 1, 4, 5 */
	CHECK("maxpool ties go to the first element of the window",
	      dx[0] == 1 && dx[1] == 1 && dx[4] == 1 && dx[5] == 1 && dx[2] == 0);
}

/* ---- linear -------------------------------------------------------------- */
struct lin_op {
	struct mura_linear l;
	int n;
	float *x, *y, *dx;
};

static void
lin_fwd(struct gc *t)
{
	struct lin_op *o = t->op;
	mura_linear_forward(&ctx, &o->l, o->n, o->x, o->y);
}

static void
lin_bwd(struct gc *t)
{
	struct lin_op *o = t->op;
	memset(o->l.gw, 0, (size_t)o->l.in * o->l.out * sizeof(float));
	memset(o->l.gb, 0, (size_t)o->l.out * sizeof(float));
	mura_linear_backward(&ctx, &o->l, o->n, o->x, t->dy, o->dx, 0);
}

static void
check_linear(int n, int in, int out)
{
	struct lin_op o = {{in, out, rnd((size_t)in * out, -1, 1), zeros((size_t)in * out),
	                    rnd((size_t)out, -1, 1), zeros((size_t)out)},
	                   n, rnd((size_t)n * in, -1, 1), zeros((size_t)n * out), zeros((size_t)n * in)};
	char name[100];

	snprintf(name, sizeof name, "linear %dx%d->%d", n, in, out);
	struct gc t = {name, lin_fwd, lin_bwd, &o, o.y, NULL, (size_t)n * out,
	               {{"x", o.x, o.dx, (size_t)n * in}, {"w", o.l.w, o.l.gw, (size_t)in * out},
	                {"b", o.l.b, o.l.gb, (size_t)out}},
	               3, 0.25, 1e-4, 500};
	gradcheck(&t);
	free(t.dy), free(o.l.w), free(o.l.gw), free(o.l.b), free(o.l.gb), free(o.x), free(o.y), free(o.dx);
}

/* ---- concatenation ------------------------------------------------------- */
struct cat_op {
	struct mura_fm x[2], dx[2], y;
};

static void
cat_fwd(struct gc *t)
{
	struct cat_op *o = t->op;
	mura_concat_forward(&ctx, 2, o->x, &o->y);
}

static void
cat_bwd(struct gc *t)
{
	struct cat_op *o = t->op;
	struct mura_fm dy = o->y;
	dy.d = t->dy;
	mura_concat_backward(&ctx, 2, &dy, o->dx, 0);
}

/* The fused residual end equals its two steps, bit for bit, in place too. */
static void
check_add_relu(void)
{
	const size_t n = 1003;
	float *a = rnd(n, -1, 1), *b = rnd(n, -1, 1), *y = zeros(n), *want = zeros(n);
	int same = 1;

	mura_add_forward(&ctx, n, a, b, want);
	mura_relu_forward(&ctx, n, want, want);
	mura_add_relu_forward(&ctx, n, a, b, y);
	mura_add_relu_forward(&ctx, n, a, b, a);  /* y aliasing a */
	for (size_t i = 0; i < n; i++)
		same &= y[i] == want[i] && a[i] == want[i];
	CHECK("add + relu fused = relu(add), also in place", same);

	/* and backward: the masked gradient in place and its copy */
	float *g = rnd(n, -1, 1), *g2 = malloc(n * sizeof *g2), *c = zeros(n);
	memcpy(g2, g, n * sizeof *g2);
	mura_relu_backward(&ctx, n, want, g2, g2, 0);
	mura_relu_backward_tee(&ctx, n, want, g, c);
	same = 1;
	for (size_t i = 0; i < n; i++)
		same &= g[i] == g2[i] && c[i] == g2[i];
	CHECK("relu backward with a copy = relu backward, twice", same);
	free(g), free(g2), free(c);
	free(a), free(b), free(y), free(want);
}

static void
check_concat(void)
{
	const int n = 2, h = 3, w = 5;
	struct cat_op o;
	o.x[0] = (struct mura_fm){rnd(2 * n * h * w, -1, 1), 2, n, h, w};
	o.x[1] = (struct mura_fm){rnd(3 * n * h * w, -1, 1), 3, n, h, w};
	o.dx[0] = (struct mura_fm){zeros(2 * n * h * w), 2, n, h, w};
	o.dx[1] = (struct mura_fm){zeros(3 * n * h * w), 3, n, h, w};
	o.y = (struct mura_fm){zeros(5 * n * h * w), 5, n, h, w};
	struct gc t = {"concat", cat_fwd, cat_bwd, &o, o.y.d, NULL, mura_fm_size(&o.y),
	               {{"x0", o.x[0].d, o.dx[0].d, mura_fm_size(&o.x[0])},
	                {"x1", o.x[1].d, o.dx[1].d, mura_fm_size(&o.x[1])}},
	               2, 0.25, 1e-5, 1000};
	gradcheck(&t);
	/* the layout: channel 2 of y is channel 0 of x1 */
	struct mura_fm s = mura_fm_slice(&o.y, 2, 1);
	CHECK("concat puts x1 after x0 along channels",
	      memcmp(s.d, o.x[1].d, (size_t)n * h * w * sizeof(float)) == 0);
	free(t.dy);
	for (int i = 0; i < 2; i++)
		free(o.x[i].d), free(o.dx[i].d);
	free(o.y.d);
}

/* The NCHW round trip and the thread split leave values unchanged. */
static void
check_layout_and_threads(void)
{
	const int c = 4, n = 3, h = 5, w = 6;
	const size_t sz = (size_t)c * n * h * w;
	float *src = rnd(sz, -1, 1), *back = zeros(sz);
	struct mura_fm f = {zeros(sz), c, n, h, w};

	mura_fm_from_nchw(&ctx, src, &f);
	CHECK("NCHW -> CNHW puts (n, c) at channel c, image n",
	      f.d[((size_t)2 * n + 1) * h * w + 7] == src[((size_t)1 * c + 2) * h * w + 7]);
	mura_fm_to_nchw(&ctx, &f, back);
	CHECK("CNHW -> NCHW restores the original", memcmp(src, back, sz * sizeof(float)) == 0);

	/* the same convolution with 1 and with 3 threads */
	struct mura_conv cv = {8, 16, 3, 1, 1, rnd(8 * 16 * 9, -1, 1), NULL, NULL, NULL};
	struct mura_fm x = {rnd((size_t)8 * 2 * 20 * 20, -1, 1), 8, 2, 20, 20};
	struct mura_fm y1 = {zeros((size_t)16 * 2 * 400), 16, 2, 20, 20}, y3 = y1;
	y3.d = zeros((size_t)16 * 2 * 400);
	struct mura_nn_ctx c1 = {0}, c3 = {0};
	c1.threads = mura_threads_create(1);
	c3.threads = mura_threads_create(3);
	c1.scratch_n = mura_conv_scratch(&cv, &x, 1);
	c3.scratch_n = mura_conv_scratch(&cv, &x, 3);
	c1.scratch = malloc(c1.scratch_n * sizeof(float));
	c3.scratch = malloc(c3.scratch_n * sizeof(float));
	mura_conv_forward(&c1, &cv, &x, &y1);
	mura_conv_forward(&c3, &cv, &x, &y3);
	double err = 0;
	for (size_t i = 0; i < mura_fm_size(&y1); i++)
		err = fmax(err, fabs(y1.d[i] - y3.d[i]));
	CHECK_NEAR("conv forward: 1 and 3 threads agree", err, 0, 1e-5);
	mura_threads_free(c1.threads), mura_threads_free(c3.threads);
	free(c1.scratch), free(c3.scratch), free(cv.w), free(x.d), free(y1.d), free(y3.d);
	free(src), free(back), free(f.d);
}

int
main(void)
{
	mura_rng_seed(&rng, 20240601);
	ctx.threads = mura_threads_create(2);
	if (!ctx.threads)
		return 1;

	check_conv("3x3 s1 p1 bias", 3, 4, 3, 1, 1, 1, 2, 7, 9, 1000);
	check_conv("3x3 s2 p1", 4, 5, 3, 2, 1, 0, 2, 8, 7, 1000);
	check_conv("7x7 s2 p3", 3, 4, 7, 2, 3, 0, 2, 11, 10, 1000);
	check_conv("1x1 s1 direct", 6, 5, 1, 1, 0, 1, 3, 4, 5, 1000);
	check_conv("1x1 s2", 6, 5, 1, 2, 0, 0, 2, 7, 7, 1000);
	/* im2col's stride-2 gather by vectors: rows of 36 and 34 outputs */
	check_conv("1x1 s2 on 71 wide (im2col's gather)", 6, 5, 1, 2, 0, 0, 2, 3, 71, 1000);
	check_conv("3x3 s2 p1 260 in on 67 wide (im2col's gather)", 260, 3, 3, 2, 1, 0, 1, 3, 67, 300);
	check_conv("3x3 in chunks", 512, 4, 3, 1, 1, 1, 2, 33, 31, 40);
	/* conv3.c's kernels and the im2col + GEMM they stand in for, mixed
	 * (which runs where: conv.c's is_conv3, mura_conv3_pays, mura_convc_pays) */
	check_conv("3x3 s1 p1 37 out, 1 wide", 5, 37, 3, 1, 1, 1, 3, 6, 1, 1000);
	check_conv("3x3 s1 p1 80 out on 3x4 (by channels, GEMM weights)", 6, 80, 3, 1, 1, 0, 2, 3, 4, 1000);
	check_conv("3x3 s1 p1 70 in on 3x4 (dx by channels)", 70, 6, 3, 1, 1, 0, 2, 3, 4, 1000);
	check_conv("3x3 s1 p1 300 -> 70 on 3x4 (GEMM forward and weights)", 300, 70, 3, 1, 1, 0, 2, 3, 4, 500);
	check_conv("3x3 s1 p1 70 -> 260 on 3x4 (GEMM dx)", 70, 260, 3, 1, 1, 1, 2, 3, 4, 500);
	check_conv("5x5 s1 p2 (by channels both ways)", 3, 20, 5, 1, 2, 1, 2, 6, 7, 1000);
	check_conv("9x9 s1 p4 (wider than the kernel by channels: im2col + GEMM)", 2, 3, 9, 1, 4, 1, 2, 10, 9, 1000);
	check_bn(1, 0);
	check_bn(1, 1);
	check_bn(0, 0);
	check_bn(0, 1);
	check_bn_saved(0);
	check_bn_saved(1);
	check_ew("relu", EW_RELU);
	check_ew("sigmoid", EW_SIGMOID);
	check_ew("add", EW_ADD);
	check_ew("dropout", EW_DROPOUT);
	check_pool("maxpool 3x3 s2 p1", P_MAX, 9, 8);
	check_pool("avgpool 2x2 s2", P_AVG, 9, 8);
	check_pool("global average pool", P_GAP, 5, 7);
	check_maxpool_ties();
	check_linear(4, 37, 3);
	check_linear(2, 16, 1);
	check_add_relu();
	check_concat();
	check_layout_and_threads();

	mura_threads_free(ctx.threads);
	free(ctx.scratch);
	return test_status();
}
