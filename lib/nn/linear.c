/*
 * linear.c - the fully connected layer (torch.nn.Linear): y = x W^T + b for
 * n rows x [n][in], W [out][in] as torchvision stores it.
 * Backward: gW += dy^T x, gb += the column sums of dy, dx = dy W.
 * Its products in ctx's precision (mura_gemm); the bias and sums in fp32.
 */
#include "ops.h"

void
mura_linear_forward(struct mura_nn_ctx *ctx, const struct mura_linear *l, int n,
                    const float *x, float *y)
{
	const double t0 = mura_prof_start(ctx);

	mura_gemm(ctx->bf16, ctx->threads, 0, 1, n, l->out, l->in, 1.0f, x, l->in, l->w, l->in, 0.0f, y, l->out);
	if (l->b)
		for (int i = 0; i < n; i++)
			for (int o = 0; o < l->out; o++)
				y[(size_t)i * l->out + o] += l->b[o];
	mura_prof_stop(ctx, MURA_PROF_LINEAR, t0, 2.0 * n * l->in * l->out);
}

void
mura_linear_backward(struct mura_nn_ctx *ctx, const struct mura_linear *l, int n,
                     const float *x, const float *dy, float *dx, int acc)
{
	const double t0 = mura_prof_start(ctx);

	mura_gemm(ctx->bf16, ctx->threads, 1, 0, l->out, l->in, n, 1.0f, dy, l->out, x, l->in, 1.0f, l->gw, l->in);
	if (l->gb)
		for (int o = 0; o < l->out; o++) {
			double s = 0;
			for (int i = 0; i < n; i++)
				s += dy[(size_t)i * l->out + o];
			l->gb[o] += (float)s;
		}
	if (dx)
		mura_gemm(ctx->bf16, ctx->threads, 0, 0, n, l->in, l->out, 1.0f, dy, l->out, l->w, l->in,
		          acc ? 1.0f : 0.0f, dx, l->in);
	mura_prof_stop(ctx, MURA_PROF_LINEAR, t0, (dx ? 4.0 : 2.0) * n * l->in * l->out);
}
