/*
 * bn.c - 2-D batch normalisation (torch.nn.BatchNorm2d), optionally fused
 * with the ReLU that follows it in every DenseNet and most ResNet uses.
 *
 * Per channel, over its M = N*H*W values (one contiguous span in [C][N][H][W]):
 *   training:   mean, var = the batch's (biased var), y = (x - mean) / sqrt(var + eps) * w + b;
 *               running_mean += momentum * (mean - running_mean), running_var likewise
 *               with the unbiased var * M / (M - 1), num_batches_tracked += 1;
 *   evaluation: y as above with the running mean and var.
 * Backward (training), with xhat = (x - mean) * invstd and g = dy (masked by y > 0
 * after a ReLU):
 *   gw += sum(g * xhat), gb += sum(g),
 *   dx  = w * invstd * (g - sum(g) / M - xhat * sum(g * xhat) / M)
 * (the mean and var depend on x too, hence the two correction terms); in
 * evaluation mode the statistics are constants and dx = w * invstd * g.
 * Sums run in double, as PyTorch's CPU kernels accumulate.
 * A training forward also keeps the per-channel affine map it applied, so
 * that mura_bn_forward_saved can recompute its output exactly in backward.
 */
#include <math.h>

#include "ops.h"

struct bn_job {
	const struct mura_bn *bn;
	const struct mura_fm *x, *y, *dy;
	struct mura_fm *yo, *dx;
	int train, relu, acc;
	int saved;    /* forward with bn->scale and bn->shift, no statistics */
	size_t m;
};

/* Sums over LANES independent double partial sums: the compiler turns the
 * inner loop into vector instructions without reordering any one sum. */
#define LANES 16

static double
sum_of(const float *x, size_t n)
{
	double acc[LANES] = {0}, s = 0;
	size_t i = 0;

	for (; i + LANES <= n; i += LANES)
		for (int k = 0; k < LANES; k++)
			acc[k] += x[i + k];
	for (; i < n; i++)
		s += x[i];
	for (int k = 0; k < LANES; k++)
		s += acc[k];
	return s;
}

static double
sqdev_of(const float *x, size_t n, double mean)
{
	double acc[LANES] = {0}, s = 0;
	size_t i = 0;

	for (; i + LANES <= n; i += LANES)
		for (int k = 0; k < LANES; k++) {
			double d = x[i + k] - mean;
			acc[k] += d * d;
		}
	for (; i < n; i++)
		s += (x[i] - mean) * (x[i] - mean);
	for (int k = 0; k < LANES; k++)
		s += acc[k];
	return s;
}

/*
 * sum(g) and sum(g * (x - mean)), g = dy, or dy where y > 0 with relu.
 * Blocks of BLOCK values are summed in float over LANES lanes (vector
 * instructions; 16 terms per lane, so float's rounding stays near 1e-7)
 * and the blocks' sums in double.  The masked gradient is written to a
 * block buffer first, with dy loaded unconditionally: that is what lets
 * the compiler vectorise the select.  Inlined with relu a constant.
 */
#define BLOCK 256

static inline __attribute__((always_inline)) void
grad_sums(const float *x, const float *y, const float *dy, size_t n, double mean, int relu,
          double *sg, double *sgx)
{
	const float fm = (float)mean;
	double s = 0, t = 0;
	size_t i = 0;

	for (; i + BLOCK <= n; i += BLOCK) {
		float buf[BLOCK], a[LANES] = {0}, b[LANES] = {0};
		const float *g = dy + i;
		if (relu) {
			for (size_t j = 0; j < BLOCK; j++) {
				float d = dy[i + j];
				buf[j] = y[i + j] > 0 ? d : 0.0f;
			}
			g = buf;
		}
		for (size_t j = 0; j < BLOCK; j += LANES)
			for (int k = 0; k < LANES; k++) {
				a[k] += g[j + k];
				b[k] += g[j + k] * (x[i + j + k] - fm);
			}
		for (int k = 0; k < LANES; k++)
			s += a[k], t += b[k];
	}
	for (; i < n; i++) {
		float d = dy[i], g = relu && !(y[i] > 0) ? 0.0f : d;
		s += g;
		t += (double)g * (x[i] - fm);
	}
	*sg = s;
	*sgx = t;
}

static void
bn_fwd_part(void *v, size_t c0, size_t c1)
{
	const struct bn_job *j = v;
	const struct mura_bn *bn = j->bn;
	const size_t m = j->m;

	for (size_t c = c0; c < c1; c++) {
		const float *x = j->x->d + c * m;
		float *y = j->yo->d + c * m;
		float a, b;

		if (j->saved) {
			a = bn->scale[c];
			b = bn->shift[c];
		} else {
			double mean, invstd;
			if (j->train) {
				mean = sum_of(x, m) / (double)m;
				double var = sqdev_of(x, m, mean) / (double)m;
				invstd = 1.0 / sqrt(var + bn->eps);
				bn->mean[c] = (float)mean;
				bn->invstd[c] = (float)invstd;
				bn->rmean[c] = (float)((1.0 - bn->momentum) * bn->rmean[c] + bn->momentum * mean);
				bn->rvar[c] = (float)((1.0 - bn->momentum) * bn->rvar[c] +
				                      bn->momentum * var * (double)m / (double)(m - 1));
			} else {
				mean = bn->rmean[c];
				invstd = 1.0 / sqrt((double)bn->rvar[c] + bn->eps);
			}
			a = (float)(invstd * bn->w[c]);
			b = (float)(bn->b[c] - mean * invstd * bn->w[c]);
			if (j->train && bn->scale) {
				bn->scale[c] = a;
				bn->shift[c] = b;
			}
		}
		if (j->relu)
			for (size_t i = 0; i < m; i++) {
				float t = x[i] * a + b;
				y[i] = t > 0 ? t : 0;
			}
		else
			for (size_t i = 0; i < m; i++)
				y[i] = x[i] * a + b;
	}
}

void
mura_bn_forward(struct mura_nn_ctx *ctx, const struct mura_bn *bn, const struct mura_fm *x,
                struct mura_fm *y, int train, int relu)
{
	struct bn_job j = {bn, x, NULL, NULL, y, NULL, train, relu, 0, 0, mura_fm_plane(x)};
	const double t0 = mura_prof_start(ctx);

	mura_pool_for(ctx->pool, (size_t)x->c, 1, bn_fwd_part, &j);
	mura_prof_stop(ctx, MURA_PROF_BN_FWD, t0, 0);
	if (train)
		++*bn->nbt;
}

/* The same loop as the forward's with the same two floats per channel, so
 * the same values bit for bit. */
void
mura_bn_forward_saved(struct mura_nn_ctx *ctx, const struct mura_bn *bn, const struct mura_fm *x,
                      struct mura_fm *y, int relu)
{
	struct bn_job j = {bn, x, NULL, NULL, y, NULL, 1, relu, 0, 1, mura_fm_plane(x)};
	const double t0 = mura_prof_start(ctx);

	mura_pool_for(ctx->pool, (size_t)x->c, 1, bn_fwd_part, &j);
	mura_prof_stop(ctx, MURA_PROF_BN_FWD, t0, 0);
}

static void
bn_bwd_part(void *v, size_t c0, size_t c1)
{
	const struct bn_job *j = v;
	const struct mura_bn *bn = j->bn;
	const size_t m = j->m;

	for (size_t c = c0; c < c1; c++) {
		const float *x = j->x->d + c * m, *dy = j->dy->d + c * m;
		const float *y = j->relu ? j->y->d + c * m : NULL;
		double mean, invstd;

		if (j->train) {
			mean = bn->mean[c];
			invstd = bn->invstd[c];
		} else {
			mean = bn->rmean[c];
			invstd = 1.0 / sqrt((double)bn->rvar[c] + bn->eps);
		}
		double sg, sgx;
		if (y)
			grad_sums(x, y, dy, m, mean, 1, &sg, &sgx);
		else
			grad_sums(x, y, dy, m, mean, 0, &sg, &sgx);
		bn->gw[c] += (float)(sgx * invstd);
		bn->gb[c] += (float)sg;
		if (!j->dx)
			continue;

		float *dx = j->dx->d + c * m;
		float k = (float)(bn->w[c] * invstd), a, b, cm = (float)mean;
		if (j->train) {
			/* dx = k * (g - sg / M - (x - mean) * invstd^2 * sgx / M) */
			a = (float)(invstd * invstd * sgx / (double)m);
			b = (float)(sg / (double)m);
		} else {
			a = b = 0;
		}
		/* dx may be dy itself: each value is read before it is written */
		const int acc = j->acc;
#pragma GCC ivdep
		for (size_t i = 0; i < m; i++) {
			float g = dy[i];
			if (y && !(y[i] > 0))
				g = 0;
			float d = k * (g - b - (x[i] - cm) * a);
			dx[i] = acc ? dx[i] + d : d;
		}
	}
}

void
mura_bn_backward(struct mura_nn_ctx *ctx, const struct mura_bn *bn, const struct mura_fm *x,
                 const struct mura_fm *y, const struct mura_fm *dy, struct mura_fm *dx,
                 int train, int relu, int acc)
{
	struct bn_job j = {bn, x, y, dy, NULL, dx, train, relu, acc, 0, mura_fm_plane(x)};
	const double t0 = mura_prof_start(ctx);

	mura_pool_for(ctx->pool, (size_t)x->c, 1, bn_bwd_part, &j);
	mura_prof_stop(ctx, MURA_PROF_BN_BWD, t0, 0);
}
