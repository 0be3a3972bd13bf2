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
#include <assert.h>
#include <math.h>
#include <string.h>

#include "ops.h"

struct bn_job {
	const struct mura_bn *bn;
	const struct mura_fm *x, *y, *dy;
	struct mura_fm *yo, *dx;
	int train, relu, acc;
	int saved;    /* forward with bn->scale and bn->shift, no statistics */
	size_t m;
	struct mura_bn_stats *st;  /* training forward: statistics cache, or NULL */
	double mt;    /* values per channel over every process (sync), else m */
	int phase;    /* backward: BWD_FUSED, or sync's BWD_SUMS then BWD_DX */
	double *sums; /* sync: per channel sum(g), sum(g (x - mean)) */
	float *ka, *kb;  /* mura_bn_map: the affine map's two floats per channel, and no y */
};

enum { BWD_FUSED, BWD_SUMS, BWD_DX };

/* Sums over LANES independent double partial sums: the compiler turns the
 * inner loop into vector instructions without reordering any one sum, so
 * that the clones for wider vectors (picked at load time) give the same
 * doubles: x86-64 without them converts and adds two at a time.  resnet50
 * training step, batch 8, 320 px, 2 threads: batch norm forward 0.052 ->
 * 0.039 s (densenet169: 0.117 -> 0.105 s). */
#define LANES 16
#define WIDE_CLONES MURA_CLONES("arch=x86-64-v4", "arch=x86-64-v3")

WIDE_CLONES static double
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

WIDE_CLONES static double
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

static void
bn_fwd_part(void *v, size_t c0, size_t c1)
{
	const struct bn_job *j = v;
	const struct mura_bn *bn = j->bn;
	const size_t m = j->m;

	for (size_t c = c0; c < c1; c++) {
		const float *x = j->x->d + c * m;
		float *y = j->yo ? j->yo->d + c * m : NULL;
		float a, b;

		if (j->saved) {
			a = bn->scale[c];
			b = bn->shift[c];
		} else {
			double mean, invstd;
			if (j->train) {
				double var;
				if (j->st && c < (size_t)j->st->known) {
					mean = j->st->mean[c];
					var = j->st->var[c];
				} else {
					mean = sum_of(x, m) / (double)m;
					var = sqdev_of(x, m, mean) / (double)m;
					if (j->st)
						j->st->mean[c] = mean, j->st->var[c] = var;
				}
				invstd = 1.0 / sqrt(var + bn->eps);
				bn->mean[c] = (float)mean;
				bn->invstd[c] = (float)invstd;
				bn->rmean[c] = (float)((1.0 - bn->momentum) * bn->rmean[c] + bn->momentum * mean);
				bn->rvar[c] = (float)((1.0 - bn->momentum) * bn->rvar[c] +
				                      bn->momentum * var * j->mt / (j->mt - 1));
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
		if (j->ka) {
			j->ka[c] = a;
			j->kb[c] = b;
			continue;
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

/*
 * SyncBatchNorm.  Each process has m_r values of a channel, with sum s_r,
 * mean u_r = s_r / m_r and squared deviations q_r = sum (x - u_r)^2; the
 * processes sum (s_r, q_r, s_r u_r) and m_r, and then over all M values
 *   mean = S / M,   var M = sum q_r + sum m_r u_r^2 - M mean^2
 *                         = sum q_r + (sum s_r u_r - S mean),
 * (Chan et al.'s pairwise update, summed): what one process with the whole
 * batch computes, up to the order of the double sums.  The running
 * variance's unbiased factor is M / (M - 1), as torch.nn.SyncBatchNorm's.
 * One allreduce per batch norm; a DenseNet's cached channels are summed
 * once, by the first layer that normalises them.
 */
struct sync_job {
	const struct mura_fm *x;
	size_t m;
	int c0;
	double *v;
};

static void
sync_stat_part(void *v, size_t lo, size_t hi)
{
	const struct sync_job *j = v;

	for (size_t c = lo; c < hi; c++) {
		const float *x = j->x->d + ((size_t)j->c0 + c) * j->m;
		double s = sum_of(x, j->m), u = s / (double)j->m;
		j->v[3 * c] = s;
		j->v[3 * c + 1] = sqdev_of(x, j->m, u);
		j->v[3 * c + 2] = s * u;
	}
}

/* st's channels [st->known, x->c) from every process's x; returns M. */
static double
sync_stats(struct mura_nn_ctx *ctx, const struct mura_fm *x, struct mura_bn_stats *st)
{
	struct mura_bn_sync *sy = ctx->sync;
	const size_t nc = (size_t)(x->c - st->known);
	struct sync_job j = {x, mura_fm_plane(x), st->known, sy->buf};

	assert((size_t)x->c <= sy->c);
	mura_threads_for(ctx->threads, nc, 1, sync_stat_part, &j);
	sy->buf[3 * nc] = (double)j.m;
	sy->fn(sy->arg, sy->buf, 3 * nc + 1);
	const double mt = sy->buf[3 * nc];
	for (size_t c = 0; c < nc; c++) {
		double mean = sy->buf[3 * c] / mt;
		double var = (sy->buf[3 * c + 1] + (sy->buf[3 * c + 2] - sy->buf[3 * c] * mean)) / mt;
		st->mean[(size_t)st->known + c] = mean;
		st->var[(size_t)st->known + c] = var > 0 ? var : 0;
	}
	st->known = x->c;
	return mt;
}

/* A training forward with the statistics of every process (st: the
 * cache, or NULL). */
static void
forward_synced(struct mura_nn_ctx *ctx, struct bn_job *j, struct mura_bn_stats *st)
{
	struct mura_bn_sync *sy = ctx->sync;
	struct mura_bn_stats own = {sy->buf + 3 * sy->c + 1, sy->buf + 4 * sy->c + 1, (int)sy->c, 0};
	struct mura_bn_stats *use = st ? st : &own;
	double mt;

	if (use->known < j->x->c)
		mt = sync_stats(ctx, j->x, use);
	else  /* every channel cached: M is this size's, summed again */
		mt = (double)j->m, sy->fn(sy->arg, &mt, 1);
	j->st = use;
	j->mt = mt;
	mura_threads_for(ctx->threads, (size_t)j->x->c, 1, bn_fwd_part, j);
}

void
mura_bn_forward(struct mura_nn_ctx *ctx, const struct mura_bn *bn, const struct mura_fm *x,
                struct mura_fm *y, int train, int relu)
{
	struct bn_job j = {bn, x, NULL, NULL, y, NULL, train, relu, 0, 0, mura_fm_plane(x), NULL,
	                   (double)mura_fm_plane(x), BWD_FUSED, NULL, NULL, NULL};
	const double t0 = mura_prof_start(ctx);

	if (train && ctx->sync)
		forward_synced(ctx, &j, NULL);
	else
		mura_threads_for(ctx->threads, (size_t)x->c, 1, bn_fwd_part, &j);
	mura_prof_stop(ctx, MURA_PROF_BN_FWD, t0, 0);
	if (train)
		++*bn->nbt;
}

/*
 * A DenseNet block's norm1 layers, and its transition's norm, normalise
 * longer and longer prefixes of one buffer whose channels never change once
 * written: the batch statistics of a channel are the same doubles in every
 * one of them, so they are computed once, by the first, and read back by the
 * others.  Buys densenet169 training, batch 8, 320 px, 2 threads: batch norm
 * forward 0.139 -> 0.116 s per step (tests/nn_bench).
 */
void
mura_bn_forward_cached(struct mura_nn_ctx *ctx, const struct mura_bn *bn, const struct mura_fm *x,
                       struct mura_fm *y, int relu, struct mura_bn_stats *st)
{
	struct bn_job j = {bn, x, NULL, NULL, y, NULL, 1, relu, 0, 0, mura_fm_plane(x), st,
	                   (double)mura_fm_plane(x), BWD_FUSED, NULL, NULL, NULL};
	const double t0 = mura_prof_start(ctx);

	assert(x->c <= st->c);
	if (ctx->sync)
		forward_synced(ctx, &j, st);
	else
		mura_threads_for(ctx->threads, (size_t)x->c, 1, bn_fwd_part, &j);
	if (st->known < x->c)
		st->known = x->c;
	mura_prof_stop(ctx, MURA_PROF_BN_FWD, t0, 0);
	++*bn->nbt;
}

/* mura_bn_forward, or mura_bn_forward_cached where st is not NULL, up to
 * y: the same statistics, updates and two floats per channel, into ka and
 * kb, and no y (mura_sbgemm_bn applies them). */
void
mura_bn_map(struct mura_nn_ctx *ctx, const struct mura_bn *bn, const struct mura_fm *x, int train,
            struct mura_bn_stats *st, float *ka, float *kb)
{
	struct bn_job j = {bn, x, NULL, NULL, NULL, NULL, train, 1, 0, 0, mura_fm_plane(x), st,
	                   (double)mura_fm_plane(x), BWD_FUSED, NULL, ka, kb};
	const double t0 = mura_prof_start(ctx);

	assert(!st || (train && x->c <= st->c));
	if (train && ctx->sync)
		forward_synced(ctx, &j, st);
	else
		mura_threads_for(ctx->threads, (size_t)x->c, 1, bn_fwd_part, &j);
	if (st && st->known < x->c)
		st->known = x->c;
	mura_prof_stop(ctx, MURA_PROF_BN_FWD, t0, 0);
	if (train)
		++*bn->nbt;
}

struct post_job {
	const struct mura_fm *c;
	const struct mura_bn_post *p;
	float *y;
};

static void
post_part(void *v, size_t c0, size_t c1)
{
	const struct post_job *j = v;
	const struct mura_bn_post *p = j->p;
	const size_t m = mura_fm_plane(j->c);

	for (size_t ch = c0; ch < c1; ch++) {
		const float *x = j->c->d + ch * m, a = p->ka[ch], b = p->kb[ch];
		const float *r = p->add ? p->add + ch * m : NULL;
		float *y = j->y + ch * m;
		if (r && p->da) {
			const float ad = p->da[ch], bd = p->db[ch];
			for (size_t i = 0; i < m; i++) {
				float t = x[i] * a + b + (r[i] * ad + bd);
				y[i] = t > 0 ? t : 0;
			}
		} else if (r) {
			for (size_t i = 0; i < m; i++) {
				float t = x[i] * a + b + r[i];
				y[i] = t > 0 ? t : 0;
			}
		} else {
			for (size_t i = 0; i < m; i++) {
				float t = x[i] * a + b;
				y[i] = t > 0 ? t : 0;
			}
		}
	}
}

void
mura_bn_post(struct mura_nn_ctx *ctx, const struct mura_fm *c, const struct mura_bn_post *p, float *y)
{
	struct post_job j = {c, p, y};

	mura_nn_for(ctx, MURA_PROF_BN_FWD, (size_t)c->c, 1, post_part, &j);
}

/* The same loop as the forward's with the same two floats per channel, so
 * the same values bit for bit. */
void
mura_bn_forward_saved(struct mura_nn_ctx *ctx, const struct mura_bn *bn, const struct mura_fm *x,
                      struct mura_fm *y, int relu)
{
	struct bn_job j = {bn, x, NULL, NULL, y, NULL, 1, relu, 0, 1, mura_fm_plane(x), NULL,
	                   (double)mura_fm_plane(x), BWD_FUSED, NULL, NULL, NULL};
	const double t0 = mura_prof_start(ctx);

	mura_threads_for(ctx->threads, (size_t)x->c, 1, bn_fwd_part, &j);
	mura_prof_stop(ctx, MURA_PROF_BN_FWD, t0, 0);
}

/*
 * Backward, one channel at a time: sg = sum(g) and sgx = sum(g * (x - mean)),
 * then dx from them while the channel's x and dy are still in cache.
 *
 * The sums run over blocks of BLOCK values, each summed in float over LANES
 * lanes (16 terms per lane, so float's rounding stays near 1e-7), the
 * blocks' sums in double, lane by lane in order.  The lanes are NV vectors
 * of VW floats (GCC's vector extension), written out rather than left to
 * the auto-vectoriser, which turned the lane loop into shuffles.  VW = 4 is
 * one register of SSE2 or NEON, which every x86-64 and arm64 has; wider
 * vectors the target lacks are split badly (compares one value at a time).
 * Each lane's sum runs in the same order as the scalar loop's before it, so
 * the results are those bit for bit.
 *
 * The ReLU's mask.  After a training forward, y > 0 exactly where
 * x * scale + shift > 0, the float operations the forward applied (no
 * contraction into fma: -std=c11 turns it off), so the mask is recomputed
 * from x, which backward reads anyway, rather than read from y: one stream
 * of memory less (MASK_X).  Without the saved affine map, or after an
 * evaluation forward, it is read from y (MASK_Y).
 *
 * Buys densenet169 training, batch 8, 320 px, 2 threads: batch norm
 * backward 0.205 -> 0.134 s per step (the vectors), -> 0.115 s (the mask
 * from x) (tests/nn_bench).
 */
#define BLOCK 256
#define VW 4
#define NV (LANES / VW)

typedef float vf __attribute__((vector_size(VW * sizeof(float))));
typedef int vi __attribute__((vector_size(VW * sizeof(int))));

enum { MASK_NONE, MASK_Y, MASK_X };

struct bn_chan {
	const float *x, *y, *dy;
	float *dx;
	size_t m;
	float scale, shift;   /* for MASK_X */
};

#define VLOAD(v, p) memcpy(&(v), (p), sizeof(vf))

/* *g = dy masked by the ReLU, VW values from i, x's among them in *xv */
static inline __attribute__((always_inline)) void
grad_vec(const struct bn_chan *ch, size_t i, const vf *xv, int mask, vf *g)
{
	vf d, y;

	VLOAD(d, ch->dy + i);
	switch (mask) {
	case MASK_Y:
		VLOAD(y, ch->y + i);
		*g = (vf)((vi)d & (y > 0));
		break;
	case MASK_X:
		*g = (vf)((vi)d & (*xv * ch->scale + ch->shift > 0));
		break;
	default:
		*g = d;
	}
}

static inline __attribute__((always_inline)) float
grad_one(const struct bn_chan *ch, size_t i, int mask)
{
	switch (mask) {
	case MASK_Y:
		return ch->y[i] > 0 ? ch->dy[i] : 0.0f;
	case MASK_X:
		return ch->x[i] * ch->scale + ch->shift > 0 ? ch->dy[i] : 0.0f;
	default:
		return ch->dy[i];
	}
}

static inline __attribute__((always_inline)) void
grad_sums(const struct bn_chan *ch, double mean, int mask, double *sg, double *sgx)
{
	const float fm = (float)mean;
	double s = 0, t = 0;
	size_t i = 0;

	for (; i + BLOCK <= ch->m; i += BLOCK) {
		vf a[NV] = {{0}}, b[NV] = {{0}};
		for (size_t j = i; j < i + BLOCK; j += LANES)
			for (int v = 0; v < NV; v++) {
				vf xv, g;
				VLOAD(xv, ch->x + j + v * VW);
				grad_vec(ch, j + v * VW, &xv, mask, &g);
				a[v] += g;
				b[v] += g * (xv - fm);
			}
		for (int k = 0; k < LANES; k++)
			s += a[k / VW][k % VW], t += b[k / VW][k % VW];
	}
	for (; i < ch->m; i++) {
		float g = grad_one(ch, i, mask);
		s += g;
		t += (double)g * (ch->x[i] - fm);
	}
	*sg = s;
	*sgx = t;
}

/* dx = k * (g - b - (x - cm) * a), written or (acc) added; dx may be dy
 * itself: each value is read before it is written. */
static inline __attribute__((always_inline)) void
grad_x(const struct bn_chan *ch, int mask, int acc, float k, float a, float b, float cm)
{
	size_t i = 0;

	for (; i + VW <= ch->m; i += VW) {
		vf xv, g, o;
		VLOAD(xv, ch->x + i);
		grad_vec(ch, i, &xv, mask, &g);
		vf d = k * (g - b - (xv - cm) * a);
		if (acc) {
			VLOAD(o, ch->dx + i);
			d = o + d;
		}
		memcpy(ch->dx + i, &d, sizeof d);
	}
	for (; i < ch->m; i++) {
		float d = k * (grad_one(ch, i, mask) - b - (ch->x[i] - cm) * a);
		ch->dx[i] = acc ? ch->dx[i] + d : d;
	}
}

static inline __attribute__((always_inline)) void
bn_bwd_chan(const struct bn_job *j, size_t c, int mask, int acc)
{
	const struct mura_bn *bn = j->bn;
	const size_t m = j->m;
	struct bn_chan ch = {j->x->d + c * m, j->y ? j->y->d + c * m : NULL, j->dy->d + c * m,
	                     j->dx ? j->dx->d + c * m : NULL, m,
	                     bn->scale ? bn->scale[c] : 0, bn->shift ? bn->shift[c] : 0};
	double mean, invstd;

	if (j->train) {
		mean = bn->mean[c];
		invstd = bn->invstd[c];
	} else {
		mean = bn->rmean[c];
		invstd = 1.0 / sqrt((double)bn->rvar[c] + bn->eps);
	}
	double sg, sgx;
	if (j->phase != BWD_DX) {
		grad_sums(&ch, mean, mask, &sg, &sgx);
		bn->gw[c] += (float)(sgx * invstd);
		bn->gb[c] += (float)sg;
		if (j->phase == BWD_SUMS) {
			j->sums[2 * c] = sg, j->sums[2 * c + 1] = sgx;
			return;
		}
	} else {  /* every process's sums */
		sg = j->sums[2 * c], sgx = j->sums[2 * c + 1];
	}
	if (!ch.dx)
		return;

	float k = (float)(bn->w[c] * invstd), a, b;
	if (j->train) {
		/* dx = k * (g - sg / M - (x - mean) * invstd^2 * sgx / M) */
		a = (float)(invstd * invstd * sgx / j->mt);
		b = (float)(sg / j->mt);
	} else {
		a = b = 0;
	}
	grad_x(&ch, mask, acc, k, a, b, (float)mean);
}

static void
bn_bwd_part(void *v, size_t c0, size_t c1)
{
	const struct bn_job *j = v;
	const int mask = !j->relu ? MASK_NONE : j->train && j->bn->scale ? MASK_X : MASK_Y;

	/* one copy of the loops for each mask and acc, constants inside */
	for (size_t c = c0; c < c1; c++) {
		if (mask == MASK_X && j->acc)
			bn_bwd_chan(j, c, MASK_X, 1);
		else if (mask == MASK_X)
			bn_bwd_chan(j, c, MASK_X, 0);
		else if (mask == MASK_Y)
			bn_bwd_chan(j, c, MASK_Y, j->acc);
		else
			bn_bwd_chan(j, c, MASK_NONE, j->acc);
	}
}

void
mura_bn_backward(struct mura_nn_ctx *ctx, const struct mura_bn *bn, const struct mura_fm *x,
                 const struct mura_fm *y, const struct mura_fm *dy, struct mura_fm *dx,
                 int train, int relu, int acc)
{
	struct bn_job j = {bn, x, y, dy, NULL, dx, train, relu, acc, 0, mura_fm_plane(x), NULL,
	                   (double)mura_fm_plane(x), BWD_FUSED, NULL, NULL, NULL};
	const double t0 = mura_prof_start(ctx);

	if (train && dx && ctx->sync) {
		/* SyncBatchNorm: dx needs sum(g) and sum(g (x - mean)) over every
		 * process's values (the parameters' gradients stay this process's
		 * part, summed with the others' gradients) */
		struct mura_bn_sync *sy = ctx->sync;
		const size_t nc = (size_t)x->c;
		assert(nc <= sy->c);
		j.sums = sy->buf;
		j.phase = BWD_SUMS;
		mura_threads_for(ctx->threads, nc, 1, bn_bwd_part, &j);
		sy->buf[2 * nc] = (double)j.m;
		sy->fn(sy->arg, sy->buf, 2 * nc + 1);
		j.mt = sy->buf[2 * nc];
		j.phase = BWD_DX;
	}
	mura_threads_for(ctx->threads, (size_t)x->c, 1, bn_bwd_part, &j);
	mura_prof_stop(ctx, MURA_PROF_BN_BWD, t0, 0);
}
