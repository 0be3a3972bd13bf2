/*
 * loss.c - binary cross-entropy (class-weighted) and focal loss on logits,
 * value and gradient together.  The formulas and conventions are in loss.h;
 * the gradient derivations are beside the code.
 */
#include <math.h>
#include <string.h>

#include "error.h"
#include "nn/loss.h"

static const char *const weights_names[] = {
	[MURA_WEIGHTS_NONE] = "none",
	[MURA_WEIGHTS_GLOBAL] = "global",
	[MURA_WEIGHTS_PER_TYPE] = "per-type",
};

static const char *const kind_names[] = {
	[MURA_LOSS_BCE] = "bce",
	[MURA_LOSS_FOCAL] = "focal",
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static int name_lookup(const char *const *names, size_t n, const char *s, const char *what)
{
	for (size_t i = 1; i < n; i++)
		if (names[i] && strcmp(names[i], s) == 0)
			return (int)i;
	mura_error("unknown %s '%s'", what, s);
	return -1;
}

int mura_weights_mode_parse(const char *s)
{
	return name_lookup(weights_names, COUNT(weights_names), s,
	                   "class weights mode (none, global, per-type)");
}

int mura_loss_kind_parse(const char *s)
{
	return name_lookup(kind_names, COUNT(kind_names), s, "loss (bce, focal)");
}

const char *mura_weights_mode_name(int mode)
{
	return mode > 0 && (size_t)mode < COUNT(weights_names) ? weights_names[mode] : "?";
}

const char *mura_loss_kind_name(int kind)
{
	return kind > 0 && (size_t)kind < COUNT(kind_names) ? kind_names[kind] : "?";
}

void mura_class_weights_none(struct mura_class_weights *cw)
{
	for (int t = 0; t < MURA_TYPE_COUNT; t++)
		cw->w0[t] = cw->w1[t] = 1.0f;
}

void mura_loss_init(struct mura_loss *l)
{
	memset(l, 0, sizeof(*l));
	l->kind = MURA_LOSS_BCE;
	l->gamma = 2.0f;
	l->alpha = -1.0f;
	mura_class_weights_none(&l->cw);
}

/* The paper's weights for a group of a abnormal and n normal images; 0 if
 * the group lacks a class (the caller falls back). */
static int paper_weights(uint64_t a, uint64_t n, double boost, float *w0, float *w1)
{
	if (a == 0 || n == 0)
		return 0;
	double total = (double)a + (double)n;
	*w1 = (float)(boost * ((double)n / total));
	*w0 = (float)((double)a / total);
	return 1;
}

int mura_class_weights_compute(struct mura_class_weights *cw, int mode,
                               const uint64_t abnormal[MURA_TYPE_COUNT],
                               const uint64_t normal[MURA_TYPE_COUNT], double boost)
{
	if (!(boost > 0) || !isfinite(boost))
		return mura_error("class weights boost %g: must be positive", boost);
	if (mode != MURA_WEIGHTS_NONE && mode != MURA_WEIGHTS_GLOBAL && mode != MURA_WEIGHTS_PER_TYPE)
		return mura_error("unknown class weights mode %d", mode);

	float g0 = 1.0f, g1 = (float)boost;
	if (mode != MURA_WEIGHTS_NONE) {
		uint64_t a = 0, n = 0;
		for (int t = 0; t < MURA_TYPE_COUNT; t++)
			a += abnormal[t], n += normal[t];
		paper_weights(a, n, boost, &g0, &g1);
	}
	for (int t = 0; t < MURA_TYPE_COUNT; t++) {
		cw->w0[t] = g0;
		cw->w1[t] = g1;
		if (mode == MURA_WEIGHTS_PER_TYPE)
			paper_weights(abnormal[t], normal[t], boost, &cw->w0[t], &cw->w1[t]);
	}
	return 0;
}

/* log(1 + e^x) without overflow or loss of precision for any x. */
static double softplus(double x)
{
	return fmax(x, 0.0) + log1p(exp(-fabs(x)));
}

/* 1 / (1 + e^-x), with the exponential of a non-positive number only. */
static double sigmoid(double x)
{
	if (x >= 0)
		return 1.0 / (1.0 + exp(-x));
	double e = exp(x);
	return e / (1.0 + e);
}

static int check_batch(const float *z, const float *y, const uint8_t *type, size_t n)
{
	if (n == 0)
		return mura_error("loss of an empty batch");
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(z[i]))
			return mura_error("image %zu of the batch: logit %g is not finite", i, (double)z[i]);
		if (!(y[i] >= 0.0f && y[i] <= 1.0f))
			return mura_error("image %zu of the batch: label %g is not in [0, 1]", i, (double)y[i]);
		if (type && type[i] >= MURA_TYPE_COUNT)
			return mura_error("image %zu of the batch: study type %d is unknown", i, type[i]);
	}
	return 0;
}

/*
 * Per image, with p = s(z), s the sigmoid, s(-z) = 1 - p, sp the softplus:
 *
 * BCE:  c = w1 y sp(-z) + w0 (1 - y) sp(z).  Since sp'(x) = s(x),
 *       dc/dz = -w1 y s(-z) + w0 (1 - y) s(z), which is p - y when w0 = w1 = 1;
 *       written this way it keeps its precision where p rounds to 1.
 *
 * Focal: L = a q^gamma c with q = 1 - p_t = (1 - y) p + y (1 - p), the
 *       probability given to the wrong answer (computed as that sum of two
 *       non-negative terms, not as 1 - p_t, which cancels).  With
 *       dp/dz = p (1 - p):  dq/dz = p (1 - p) (1 - 2y), so
 *         dL/dz = a [q^gamma dc/dz + gamma c q^(gamma - 1) p (1 - p) (1 - 2y)]
 *               = a q^gamma [dc/dz + gamma c r (1 - 2y)],   r = p (1 - p) / q.
 *       r is bounded (q >= min(p, 1 - p), so r <= 1), which avoids
 *       q^(gamma - 1) blowing up for gamma < 1 where q -> 0; q = 0 (underflow
 *       beyond |z| ~ 745) can only happen with y = 0 or 1, where the limit of
 *       the whole term is 0.
 */
int
mura_loss_compute(const struct mura_loss *l, const float *z, const float *y, const uint8_t *type, size_t n,
                  double *loss, float *dz)
{
	double sum;

	if (mura_loss_part(l, z, y, type, n, n, &sum, dz) < 0)
		return -1;
	*loss = sum * (1.0 / (double)n);
	return 0;
}

int
mura_loss_part(const struct mura_loss *l, const float *z, const float *y, const uint8_t *type, size_t n,
               size_t total, double *sum_out, float *dz)
{
	if (check_batch(z, y, type, n) < 0)
		return -1;
	if (l->kind != MURA_LOSS_BCE && l->kind != MURA_LOSS_FOCAL)
		return mura_error("unknown loss kind %d", l->kind);
	if (l->kind == MURA_LOSS_FOCAL && !(l->gamma >= 0))
		return mura_error("focal loss gamma %g: must be >= 0", (double)l->gamma);
	if (!(l->smoothing >= 0 && l->smoothing <= 1))
		return mura_error("label smoothing %g: must be in [0, 1]", l->smoothing);

	const double inv_n = 1.0 / (double)total;
	const double gamma = l->gamma, alpha = l->alpha;
	double sum = 0;
	for (size_t i = 0; i < n; i++) {
		int t = type ? type[i] : 0;
		double zi = z[i], yi = l->smoothing > 0 ? (double)y[i] * (1 - l->smoothing) + l->smoothing / 2 : y[i];
		double w0 = l->cw.w0[t], w1 = l->cw.w1[t];
		double p = sigmoid(zi), pn = sigmoid(-zi);
		double c = w1 * yi * softplus(-zi) + w0 * (1 - yi) * softplus(zi);
		double dc = -w1 * yi * pn + w0 * (1 - yi) * p;
		double li = c, di = dc;
		if (l->kind == MURA_LOSS_FOCAL) {
			double a = alpha < 0 ? 1.0 : alpha * yi + (1 - alpha) * (1 - yi);
			double q = (1 - yi) * p + yi * pn;
			double qg = pow(q, gamma);
			double r = q > 0 ? p * pn / q : 0.0;
			li = a * qg * c;
			di = a * qg * (dc + gamma * c * r * (1 - 2 * yi));
		}
		sum += li;
		if (dz)
			dz[i] = (float)(di * inv_n);
	}
	*sum_out = sum;
	return 0;
}
