/*
 * pool.c - max pooling, average pooling and global average pooling, with
 * their backward passes.  All work one plane (one channel of one image) at
 * a time, so threads split the planes.
 *
 * Max pooling follows PyTorch's CPU kernel to the tie: padding never wins,
 * and of equal values the first in row-major window order takes the
 * gradient (after a ReLU whole windows of zeros are common).
 */
#include <float.h>
#include <string.h>

#include "ops.h"

struct pool_job {
	struct mura_maxpool *mp;
	int k, stride, pad;
	const struct mura_fm *x;
	struct mura_fm *y;
	int acc;
};

/*
 * One output row's windows whose columns lie inside the row, ow in [lo, hi):
 * the same comparisons in the same (row-major) order as the general loop
 * below, but for all those windows at once, each step a select over a row
 * of outputs, which the compiler turns into vector instructions (the
 * stem's 3x3 stride-2 pool at 320 px, batch 8, one thread: 64 -> 8 ms in
 * evaluation, 67 -> 14 ms keeping the argmax).
 * Inlined with arg NULL (inference) or not.
 */
static inline __attribute__((always_inline)) void
maxpool_row(const float *x, int w, int h0, int h1, int k, int s, int pad, int lo, int hi, float *y,
            int32_t *arg)
{
	for (int ow = lo; ow < hi; ow++) {
		y[ow] = x[h0 * w + ow * s - pad];
		if (arg)
			arg[ow] = h0 * w + ow * s - pad;
	}
	for (int ih = h0; ih < h1; ih++)
		for (int b = ih == h0; b < k; b++) {
			const float *r = x + ih * w + b - pad;
			const int base = ih * w + b - pad;
			for (int ow = lo; ow < hi; ow++) {
				float t = r[ow * s];
				int take = t > y[ow] || t != t;
				y[ow] = take ? t : y[ow];
				if (arg)
					arg[ow] = take ? base + ow * s : arg[ow];
			}
		}
}

static void
maxpool_fwd_part(void *v, size_t p0, size_t p1)
{
	const struct pool_job *j = v;
	const int h = j->x->h, w = j->x->w, ho = j->y->h, wo = j->y->w;
	const int k = j->mp->k, s = j->mp->stride, pad = j->mp->pad;
	/* the output columns whose windows lie inside the row */
	int lo = (pad + s - 1) / s, hi = w - k + pad >= 0 ? (w - k + pad) / s + 1 : 0;

	hi = hi < wo ? hi : wo;
	lo = lo < hi ? lo : hi;
	for (size_t p = p0; p < p1; p++) {
		const float *x = j->x->d + p * (size_t)h * w;
		float *y = j->y->d + p * (size_t)ho * wo;
		int32_t *arg = j->mp->arg ? j->mp->arg + p * (size_t)ho * wo : NULL;
		for (int oh = 0; oh < ho; oh++) {
			int h0 = oh * s - pad, h1 = h0 + k < h ? h0 + k : h;
			h0 = h0 < 0 ? 0 : h0;
			if (arg)
				maxpool_row(x, w, h0, h1, k, s, pad, lo, hi, y + oh * wo, arg + oh * wo);
			else
				maxpool_row(x, w, h0, h1, k, s, pad, lo, hi, y + oh * wo, NULL);
			for (int ow = 0; ow < wo; ow++) {
				if (ow == lo)
					ow = hi;
				if (ow >= wo)
					break;
				int w0 = ow * s - pad, w1 = w0 + k < w ? w0 + k : w;
				w0 = w0 < 0 ? 0 : w0;
				int best = h0 * w + w0;
				float m = x[best];
				for (int ih = h0; ih < h1; ih++)
					for (int iw = w0; iw < w1; iw++) {
						float t = x[ih * w + iw];
						if (t > m || t != t) {
							m = t;
							best = ih * w + iw;
						}
					}
				y[oh * wo + ow] = m;
				if (arg)
					arg[oh * wo + ow] = best;
			}
		}
	}
}

void
mura_maxpool_forward(struct mura_nn_ctx *ctx, struct mura_maxpool *mp,
                     const struct mura_fm *x, struct mura_fm *y)
{
	struct pool_job j = {mp, 0, 0, 0, x, y, 0};

	mura_nn_for(ctx, MURA_PROF_POOL, (size_t)x->c * x->n, 1, maxpool_fwd_part, &j);
}

/* Here x is dx and y is dy. */
static void
maxpool_bwd_part(void *v, size_t p0, size_t p1)
{
	const struct pool_job *j = v;
	const size_t in = (size_t)j->x->h * j->x->w, out = (size_t)j->y->h * j->y->w;

	for (size_t p = p0; p < p1; p++) {
		float *dx = j->x->d + p * in;
		const float *dy = j->y->d + p * out;
		const int32_t *arg = j->mp->arg + p * out;
		if (!j->acc)
			memset(dx, 0, in * sizeof *dx);
		for (size_t o = 0; o < out; o++)
			dx[arg[o]] += dy[o];
	}
}

void
mura_maxpool_backward(struct mura_nn_ctx *ctx, const struct mura_maxpool *mp,
                      const struct mura_fm *dy, struct mura_fm *dx, int acc)
{
	struct pool_job j = {(struct mura_maxpool *)mp, 0, 0, 0, dx, (struct mura_fm *)dy, acc};

	mura_nn_for(ctx, MURA_PROF_POOL, (size_t)dx->c * dx->n, 1, maxpool_bwd_part, &j);
}

/* The window's values summed in row order, then divided: PyTorch's order
 * and rounding.  DenseNet's 2x2 stride-2 case is written out. */
static void
avgpool_fwd_part(void *v, size_t p0, size_t p1)
{
	const struct pool_job *j = v;
	const int h = j->x->h, w = j->x->w, ho = j->y->h, wo = j->y->w, k = j->k, s = j->stride;
	const float div = (float)(k * k);

	for (size_t p = p0; p < p1; p++) {
		const float *x = j->x->d + p * (size_t)h * w;
		float *y = j->y->d + p * (size_t)ho * wo;
		for (int oh = 0; oh < ho; oh++) {
			const float *r0 = x + (size_t)oh * s * w, *r1 = r0 + w;
			if (k == 2 && s == 2) {
				for (int ow = 0; ow < wo; ow++)
					y[oh * wo + ow] = (r0[2 * ow] + r0[2 * ow + 1] + r1[2 * ow] + r1[2 * ow + 1]) / 4.0f;
				continue;
			}
			for (int ow = 0; ow < wo; ow++) {
				float t = 0;
				for (int a = 0; a < k; a++)
					for (int b = 0; b < k; b++)
						t += r0[a * w + ow * s + b];
				y[oh * wo + ow] = t / div;
			}
		}
	}
}

void
mura_avgpool_forward(struct mura_nn_ctx *ctx, int k, int stride,
                     const struct mura_fm *x, struct mura_fm *y)
{
	struct pool_job j = {NULL, k, stride, 0, x, y, 0};

	mura_nn_for(ctx, MURA_PROF_POOL, (size_t)x->c * x->n, 1, avgpool_fwd_part, &j);
}

/* Here x is dx and y is dy. */
static void
avgpool_bwd_part(void *v, size_t p0, size_t p1)
{
	const struct pool_job *j = v;
	const int h = j->x->h, w = j->x->w, ho = j->y->h, wo = j->y->w, k = j->k, s = j->stride;
	const float div = (float)(k * k);

	for (size_t p = p0; p < p1; p++) {
		float *dx = j->x->d + p * (size_t)h * w;
		const float *dy = j->y->d + p * (size_t)ho * wo;
		if (!j->acc)
			memset(dx, 0, (size_t)h * w * sizeof *dx);
		for (int oh = 0; oh < ho; oh++)
			for (int ow = 0; ow < wo; ow++) {
				float g = dy[oh * wo + ow] / div;
				for (int a = 0; a < k; a++)
					for (int b = 0; b < k; b++)
						dx[(oh * s + a) * w + ow * s + b] += g;
			}
	}
}

void
mura_avgpool_backward(struct mura_nn_ctx *ctx, int k, int stride,
                      const struct mura_fm *dy, struct mura_fm *dx, int acc)
{
	struct pool_job j = {NULL, k, stride, 0, dx, (struct mura_fm *)dy, acc};

	mura_nn_for(ctx, MURA_PROF_POOL, (size_t)dx->c * dx->n, 1, avgpool_bwd_part, &j);
}

struct gap_job {
	const struct mura_fm *x;
	float *y;
	int acc;
};

static void
gap_fwd_part(void *v, size_t c0, size_t c1)
{
	const struct gap_job *j = v;
	const int n = j->x->n, c = j->x->c;
	const size_t hw = (size_t)j->x->h * j->x->w;

	for (size_t ci = c0; ci < c1; ci++)
		for (int i = 0; i < n; i++) {
			const float *x = j->x->d + (ci * (size_t)n + (size_t)i) * hw;
			double s = 0;
			for (size_t t = 0; t < hw; t++)
				s += x[t];
			j->y[(size_t)i * c + ci] = (float)(s / (double)hw);
		}
}

void
mura_gap_forward(struct mura_nn_ctx *ctx, const struct mura_fm *x, float *y)
{
	struct gap_job j = {x, y, 0};

	mura_nn_for(ctx, MURA_PROF_POOL, (size_t)x->c, 16, gap_fwd_part, &j);
}

/* Here x is dx and y is dy. */
static void
gap_bwd_part(void *v, size_t c0, size_t c1)
{
	const struct gap_job *j = v;
	const int n = j->x->n, c = j->x->c;
	const size_t hw = (size_t)j->x->h * j->x->w;

	for (size_t ci = c0; ci < c1; ci++)
		for (int i = 0; i < n; i++) {
			float *dx = j->x->d + (ci * (size_t)n + (size_t)i) * hw;
			float g = j->y[(size_t)i * c + ci] / (float)hw;
			for (size_t t = 0; t < hw; t++)
				dx[t] = j->acc ? dx[t] + g : g;
		}
}

void
mura_gap_backward(struct mura_nn_ctx *ctx, const float *dy, struct mura_fm *dx, int acc)
{
	struct gap_job j = {dx, (float *)dy, acc};

	mura_nn_for(ctx, MURA_PROF_POOL, (size_t)dx->c, 16, gap_bwd_part, &j);
}
