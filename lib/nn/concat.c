/*
 * concat.c - concatenation along channels, and the reverse for layout.
 *
 * In [C][N][H][W] each input's values are one contiguous run of the output,
 * so the forward is a copy per input and the backward hands each input its
 * run of dy.  (A DenseNet block does not call this: its layers write into
 * one buffer in place, which is the same concatenation without the copy.)
 * layout.c's NCHW conversions live here too: both are pure data movement.
 */
#include <string.h>

#include "ops.h"

void
mura_concat_forward(struct mura_nn_ctx *ctx, int nx, const struct mura_fm *x, struct mura_fm *y)
{
	float *d = y->d;

	(void)ctx;
	for (int i = 0; i < nx; i++) {
		memcpy(d, x[i].d, mura_fm_size(&x[i]) * sizeof *d);
		d += mura_fm_size(&x[i]);
	}
}

void
mura_concat_backward(struct mura_nn_ctx *ctx, int nx, const struct mura_fm *dy,
                     struct mura_fm *dx, int acc)
{
	const float *g = dy->d;

	for (int i = 0; i < nx; i++) {
		size_t n = mura_fm_size(&dx[i]);
		if (dx[i].d)
			mura_add_backward(ctx, n, g, dx[i].d, acc);
		g += n;
	}
}

void
mura_fm_from_nchw(struct mura_nn_ctx *ctx, const float *src, struct mura_fm *dst)
{
	const size_t hw = (size_t)dst->h * dst->w;

	(void)ctx;
	for (int c = 0; c < dst->c; c++)
		for (int n = 0; n < dst->n; n++)
			memcpy(dst->d + ((size_t)c * dst->n + n) * hw,
			       src + ((size_t)n * dst->c + c) * hw, hw * sizeof *src);
}

void
mura_fm_to_nchw(struct mura_nn_ctx *ctx, const struct mura_fm *src, float *dst)
{
	const size_t hw = (size_t)src->h * src->w;

	(void)ctx;
	for (int c = 0; c < src->c; c++)
		for (int n = 0; n < src->n; n++)
			memcpy(dst + ((size_t)n * src->c + c) * hw,
			       src->d + ((size_t)c * src->n + n) * hw, hw * sizeof *dst);
}
