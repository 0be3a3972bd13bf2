/*
 * resnet.c - ResNet 18/34/50 as torchvision.models.resnet builds them (He
 * et al. 2016, torchvision's "v1.5": in a bottleneck the stride sits on the
 * 3x3 convolution).
 *
 *   conv1 7x7 s2 p3, 3 -> 64, bn1 + relu, maxpool 3x3 s2 p1
 *   layer1..layer4 of blocks, 64/128/256/512 planes, stride 2 from layer2 on:
 *     basic (18, 34):  conv1 3x3 (stride), bn1 + relu, conv2 3x3, bn2
 *     bottleneck (50): conv1 1x1, bn1 + relu, conv2 3x3 (stride), bn2 + relu,
 *                      conv3 1x1 -> 4 x planes, bn3
 *     out = relu(main path + identity); the identity is downsample.0 (1x1
 *     convolution with the stride) + downsample.1 (batch norm) when the
 *     shape changes, else the input itself.
 * Both block kinds are one loop over 2 or 3 (conv, bn) pairs.  The backbone
 * ends with layer4 (its output is what avgpool pools), or with an earlier
 * stage when rn->stages says so (for a hybrid that cuts after layer3).
 *
 * Backward of a block, with dy the gradient of its output y:
 *   dz = dy where y > 0 (the final ReLU; in place);
 *   identity: dx = dz, or downsample's backward from dz;
 *   main path from the last pair to the first, the first conv adding into dx.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "net.h"

static const struct {
	int arch, bottleneck;
	int blocks[4];
} table[] = {
	{MURA_ARCH_RESNET18, 0, {2, 2, 2, 2}},
	{MURA_ARCH_RESNET34, 0, {3, 4, 6, 3}},
	{MURA_ARCH_RESNET50, 1, {3, 4, 6, 3}},
	{MURA_ARCH_HYBRID, 1, {3, 4, 6, 3}},   /* ResNet50, cut after cfg.hybrid_stage */
};

struct res_block {
	int npair;              /* 2 (basic) or 3 (bottleneck) (conv, bn) pairs */
	int down;               /* has a downsample path */
	int cin, cout, stride;
	int k, nk;              /* the block's index in its stage, the stage's blocks */
	int hin, win, h, w;     /* input and output sizes */
	struct mura_conv conv[3], dconv;
	struct mura_bn bn[3], dbn;
	float *c[3];            /* each conv's output */
	float *t[2];            /* relu(bn()) of every pair but the last (shared:
	                           recomputed in backward from c) */
	float *cd;              /* downsample conv's output (its batch norm's is never
	                           written: mura_bn_post) */
	float *y;               /* the block's output (shared in training, but the
	                           stage's last: recomputed in backward from c, cd) */
};

struct resnet {
	int stages, nblocks;
	struct mura_conv conv1;
	struct mura_bn bn1;
	struct mura_maxpool maxpool;
	int h0, w0, h1, w1;     /* after conv1, after maxpool */
	float *c0, *r0, *p0;    /* conv1, relu(bn1()) (shared), maxpool outputs */
	struct res_block *blk;
	float *g_io[2];         /* block input/output gradients, alternating */
	float *g_pair[2];       /* gradients inside a block, alternating */
	float *g_d;             /* downsample.1's input gradient (g_pair[0]) */
	float *map;             /* folded batch norms' maps in evaluation (block_forward,
	                           block_infer): 6 x the widest block output */
};

enum {
	SLOT_C0, SLOT_R0, SLOT_Y_A, SLOT_Y_B, SLOT_C, SLOT_T = SLOT_C + 3, SLOT_CD = SLOT_T + 2,
	SLOT_G_IO, SLOT_G_PAIR = SLOT_G_IO + 2, SLOT_YS = SLOT_G_PAIR + 2,
};

static struct mura_fm
fm(float *d, int c, int n, int h, int w)
{
	struct mura_fm f = {d, c, n, h, w};
	return f;
}

static int
spec_of(int arch)
{
	for (int i = 0; i < (int)(sizeof table / sizeof table[0]); i++)
		if (table[i].arch == arch)
			return i;
	return -1;
}

static int
resnet_build(struct mura_model *m, struct net_build *b)
{
	struct resnet *rn = m->backbone;
	int t = spec_of(m->cfg.arch);
	char name[128];

	if (t < 0)
		return mura_error("not a ResNet: arch %d", m->cfg.arch);
	if (!rn) {
		if (!(rn = m->backbone = calloc(1, sizeof *rn)))
			return mura_error("out of memory");
		rn->stages = m->cfg.arch == MURA_ARCH_HYBRID ? m->cfg.hybrid_stage : 4;
		for (int s = 0; s < rn->stages; s++)
			rn->nblocks += table[t].blocks[s];
		if (!(rn->blk = calloc((size_t)rn->nblocks, sizeof *rn->blk)))
			return mura_error("out of memory");
	}
	rn->maxpool = (struct mura_maxpool){3, 2, 1, NULL};
	net_conv(b, &rn->conv1, "conv1", 3, 64, 7, 2, 3, 0, NET_INIT_KAIMING_OUT);
	net_bn(b, &rn->bn1, "bn1", 64);
	int c = 64, i = 0, expansion = table[t].bottleneck ? 4 : 1;
	for (int s = 0; s < rn->stages; s++) {
		int planes = 64 << s;
		for (int k = 0; k < table[t].blocks[s]; k++, i++) {
			struct res_block *blk = &rn->blk[i];
			blk->npair = table[t].bottleneck ? 3 : 2;
			blk->k = k, blk->nk = table[t].blocks[s];
			blk->cin = c;
			blk->cout = planes * expansion;
			blk->stride = s > 0 && k == 0 ? 2 : 1;
			blk->down = blk->stride != 1 || blk->cin != blk->cout;
			for (int p = 0; p < blk->npair; p++) {
				/* bottleneck: 1x1, 3x3 with the stride, 1x1; basic: 3x3 with it, 3x3 */
				int three = blk->npair == 2 || p == 1;
				int cin = p == 0 ? c : planes, cout = p == blk->npair - 1 ? blk->cout : planes;
				int stride = (blk->npair == 2 ? p == 0 : p == 1) ? blk->stride : 1;
				snprintf(name, sizeof name, "layer%d.%d.conv%d", s + 1, k, p + 1);
				net_conv(b, &blk->conv[p], name, cin, cout, three ? 3 : 1, stride, three, 0,
				         NET_INIT_KAIMING_OUT);
				snprintf(name, sizeof name, "layer%d.%d.bn%d", s + 1, k, p + 1);
				net_bn(b, &blk->bn[p], name, cout);
			}
			if (blk->down) {
				snprintf(name, sizeof name, "layer%d.%d.downsample.0", s + 1, k);
				net_conv(b, &blk->dconv, name, c, blk->cout, 1, blk->stride, 0, 0, NET_INIT_KAIMING_OUT);
				snprintf(name, sizeof name, "layer%d.%d.downsample.1", s + 1, k);
				net_bn(b, &blk->dbn, name, blk->cout);
			}
			c = blk->cout;
		}
	}
	m->feat_c = c;
	if (!rn->map && !(rn->map = calloc(6 * (size_t)c, sizeof(float))))
		return mura_error("out of memory");
	return 0;
}

static void
resnet_free(void *v)
{
	struct resnet *rn = v;

	if (rn) {
		free(rn->blk);
		free(rn->map);
	}
	free(rn);
}

/* The size of pair q's output. */
static void
pair_size(const struct res_block *blk, int q, int *h, int *w)
{
	int hh = blk->hin, ww = blk->win;

	for (int i = 0; i <= q; i++) {
		hh = mura_window_out(hh, blk->conv[i].k, blk->conv[i].stride, blk->conv[i].pad);
		ww = mura_window_out(ww, blk->conv[i].k, blk->conv[i].stride, blk->conv[i].pad);
	}
	*h = hh, *w = ww;
}

static int
resnet_plan(struct mura_model *m, struct net_plan *p, int n, int h, int w)
{
	struct resnet *rn = m->backbone;
	struct mura_fm x = fm(NULL, 3, n, h, w);
	size_t io_max = 0, pair_max = 0;

	rn->h0 = mura_window_out(h, 7, 2, 3), rn->w0 = mura_window_out(w, 7, 2, 3);
	rn->h1 = mura_window_out(rn->h0, 3, 2, 1), rn->w1 = mura_window_out(rn->w0, 3, 2, 1);
	if (rn->h1 < 1 || rn->w1 < 1)
		return mura_error("%dx%d is too small for a ResNet (at least 32x32)", h, w);
	size_t plane0 = (size_t)n * rn->h0 * rn->w0, plane1 = (size_t)n * rn->h1 * rn->w1;
	net_conv_scratch(p, &rn->conv1, &x);
	rn->c0 = net_keep(p, SLOT_C0, 64 * plane0);
	/* Training keeps only what backward cannot recompute cheaply: the conv
	 * outputs (c, cd) and the blocks' outputs (y).  relu(bn()) (r0 and each
	 * block's t) is recomputed from c in backward, bit for bit, with the
	 * affine map its forward applied (mura_bn_forward_saved); so are the
	 * outputs of a stage's blocks but its last, from c and cd, in one
	 * buffer per stage (stage_recompute).  r0 lives in a gradients' slot,
	 * which is free until backward.
	 * Peak RSS of a training step, batch 8, 320 px, 2026-12-05: resnet50
	 * 1944 -> 1515 MB, the hybrid 2057 -> 1627, the speed unchanged within
	 * the noise (MURA_THREADS=2 tests/nn_bench ARCH 8 320 3 train fp32). */
	rn->r0 = net_slot(p, p->training ? SLOT_G_PAIR : SLOT_R0, 64 * plane0);
	rn->maxpool.arg = p->training ? (int32_t *)net_take(p, 64 * plane1) : NULL;
	rn->p0 = net_keep(p, SLOT_Y_B, 64 * plane1);
	io_max = 64 * plane0;  /* the stem's gradient shares the block buffers */

	int hh = rn->h1, ww = rn->w1;
	for (int i = 0; i < rn->nblocks; i++) {
		struct res_block *blk = &rn->blk[i];
		struct mura_fm in = fm(NULL, blk->cin, n, hh, ww);
		blk->hin = hh, blk->win = ww;
		for (int q = 0; q < blk->npair; q++) {
			const struct mura_conv *cv = &blk->conv[q];
			struct mura_fm qin = in;
			int oh, ow;
			if (q > 0)
				pair_size(blk, q - 1, &qin.h, &qin.w);
			qin.c = cv->cin;
			pair_size(blk, q, &oh, &ow);
			size_t sz = (size_t)cv->cout * n * oh * ow;
			net_conv_scratch(p, cv, &qin);
			blk->c[q] = net_keep(p, SLOT_C + q, sz);
			if (q < blk->npair - 1)
				blk->t[q] = net_slot(p, SLOT_T + q, sz);
			pair_max = sz > pair_max ? sz : pair_max;
		}
		pair_size(blk, blk->npair - 1, &blk->h, &blk->w);
		size_t osz = (size_t)blk->cout * n * blk->h * blk->w;
		if (blk->down) {
			net_conv_scratch(p, &blk->dconv, &in);
			blk->cd = net_keep(p, SLOT_CD, osz);
			if (p->training)
				rn->g_d = net_slot(p, SLOT_G_PAIR, osz);
		}
		if (p->training && blk->k < blk->nk - 1) {  /* the stage's own buffer */
			float *ys = net_slot(p, SLOT_YS, (size_t)(blk->nk - 1) * osz);
			blk->y = ys ? ys + (size_t)blk->k * osz : NULL;
		} else {
			blk->y = net_keep(p, i % 2 ? SLOT_Y_B : SLOT_Y_A, osz);
		}
		size_t isz = mura_fm_size(&in);
		io_max = osz > io_max ? osz : io_max;
		io_max = isz > io_max ? isz : io_max;
		hh = blk->h, ww = blk->w;
	}
	if (p->training) {
		for (int k = 0; k < 2; k++) {
			rn->g_io[k] = net_slot(p, SLOT_G_IO + k, io_max);
			rn->g_pair[k] = net_slot(p, SLOT_G_PAIR + k, pair_max);
		}
	}
	const struct res_block *last = &rn->blk[rn->nblocks - 1];
	m->feat = fm(last->y, last->cout, n, last->h, last->w);
	m->dfeat = fm(p->training ? net_take(p, (size_t)last->cout * n * last->h * last->w) : NULL,
	              last->cout, n, last->h, last->w);
	return 0;
}

int
resnet_out_size(int in, int stages)
{
	/* conv1 and the max pool, then a stride of 2 (3x3 padding 1, or 1x1)
	 * in every stage from layer2 on */
	int s = mura_window_out(mura_window_out(in, 7, 2, 3), 3, 2, 1);

	for (int i = 1; i < stages; i++)
		s = mura_window_out(s, 3, 2, 1);
	return s;
}

/* y = relu(bn(c) + the shortcut: x, or bn(cd)) in one pass
 * (mura_bn_post), neither batch norm's output written.  The maps:
 * saved, those of the last training forward (bn->scale, bn->shift); else
 * the running statistics', made here in rn->map. */
static void
block_end(struct mura_nn_ctx *ctx, struct resnet *rn, const struct res_block *blk, const struct mura_fm *x,
          int saved)
{
	const int n = x->n, q = blk->npair - 1, co = blk->cout;
	struct mura_fm c = fm(blk->c[q], co, n, blk->h, blk->w), cd = fm(blk->cd, co, n, blk->h, blk->w);
	const float *ka = saved ? blk->bn[q].scale : rn->map, *kb = saved ? blk->bn[q].shift : rn->map + co;
	const float *da = saved ? blk->dbn.scale : rn->map + 2 * co;
	const float *db = saved ? blk->dbn.shift : rn->map + 3 * co;

	if (!saved) {
		mura_bn_map(ctx, &blk->bn[q], &c, 0, NULL, rn->map, rn->map + co);
		if (blk->down)
			mura_bn_map(ctx, &blk->dbn, &cd, 0, NULL, rn->map + 2 * co, rn->map + 3 * co);
	}
	const struct mura_bn_post post = {ka, kb, blk->down ? cd.d : x->d, blk->down ? da : NULL,
	                                  blk->down ? db : NULL};
	mura_bn_post(ctx, &c, &post, blk->y);
}

static void
block_forward(struct mura_nn_ctx *ctx, struct resnet *rn, struct res_block *blk,
              const struct mura_fm *x, int train)
{
	const int n = x->n;
	struct mura_fm in = *x;
	const float *ka = NULL, *kb = NULL;  /* in's batch norm + ReLU, folded into the next conv */

	for (int q = 0; q < blk->npair; q++) {
		int h, w;
		pair_size(blk, q, &h, &w);
		struct mura_fm c = fm(blk->c[q], blk->conv[q].cout, n, h, w);
		if (ka)
			mura_conv_forward_bn(ctx, &blk->conv[q], &in, ka, kb, &c);
		else
			mura_conv_forward(ctx, &blk->conv[q], &in, &c);
		ka = kb = NULL;
		if (q < blk->npair - 1 && mura_conv_folds_bn(ctx, &blk->conv[q + 1])) {
			/* bf16, a bottleneck's bn2 + relu before its 1x1 conv3: t[q],
			 * which backward recomputes anyway, is not written */
			float *a = train ? blk->bn[q].scale : rn->map, *b = train ? blk->bn[q].shift : rn->map + c.c;
			mura_bn_map(ctx, &blk->bn[q], &c, train, NULL, a, b);
			ka = a, kb = b;
			in = c;
		} else if (q < blk->npair - 1) {
			struct mura_fm t = fm(blk->t[q], c.c, n, h, w);
			mura_bn_forward(ctx, &blk->bn[q], &c, &t, train, 1);
			in = t;
		} else if (train) {  /* the block's end (block_end): the batch statistics */
			mura_bn_map(ctx, &blk->bn[q], &c, 1, NULL, blk->bn[q].scale, blk->bn[q].shift);
		}
	}
	if (blk->down) {
		struct mura_fm cd = fm(blk->cd, blk->cout, n, blk->h, blk->w);
		mura_conv_forward(ctx, &blk->dconv, x, &cd);
		if (train)
			mura_bn_map(ctx, &blk->dbn, &cd, 1, NULL, blk->dbn.scale, blk->dbn.shift);
	}
	block_end(ctx, rn, blk, x, train);
}

/*
 * block_forward in evaluation with no backward to come (no explaining
 * forward): every batch norm + ReLU, and the block's end, applied by the
 * convolution before it (mura_conv_forward_post), so that in bf16 only
 * the pairs' t (or c, where the next convolution folds the batch norm in)
 * and y are written, and neither the last convolution's output nor the
 * normalised maps are read back.  The same y bit for bit.  The maps in
 * rn->map: the last pair's [0, 2 co), the shortcut's [2 co, 4 co), the
 * other pairs' from 4 co.  Buys bf16 inference, batch 8, 320 px, 2
 * threads, AMX (tests/nn_bench ARCH 8 320 3 infer bf16, medians of 5 runs
 * alternating with the build before, 2026-12-06): resnet50 17.29 -> 18.74
 * images/s, the hybrid 15.72 -> 17.34; with MURA_PROFILE=1, resnet50's
 * batch norm forward 0.069 -> 0.002 s per batch, its 1x1 forwards 0.175
 * -> 0.205 s (they now apply it).  fp32 (OpenBLAS's GEMM: post after it)
 * unchanged.
 */
static void
block_infer(struct mura_nn_ctx *ctx, struct resnet *rn, struct res_block *blk, const struct mura_fm *x)
{
	const int n = x->n, co = blk->cout, last = blk->npair - 1;
	float *map = rn->map;
	struct mura_fm in = *x;
	const float *xa = NULL, *xb = NULL;  /* in's batch norm + ReLU, folded into the next conv */

	if (blk->down) {
		struct mura_fm cd = fm(blk->cd, co, n, blk->h, blk->w);
		mura_conv_forward(ctx, &blk->dconv, x, &cd);
		mura_bn_map(ctx, &blk->dbn, &cd, 0, NULL, map + 2 * co, map + 3 * co);
	}
	for (int q = 0; q < blk->npair; q++) {
		int h, w;
		pair_size(blk, q, &h, &w);
		const int cq = blk->conv[q].cout;
		struct mura_fm c = fm(blk->c[q], cq, n, h, w);
		if (q == last) {
			struct mura_fm y = fm(blk->y, co, n, h, w);
			mura_bn_map(ctx, &blk->bn[q], &c, 0, NULL, map, map + co);
			const struct mura_bn_post p = {map, map + co, blk->down ? blk->cd : x->d,
			                               blk->down ? map + 2 * co : NULL, blk->down ? map + 3 * co : NULL};
			mura_conv_forward_post(ctx, &blk->conv[q], &in, xa, xb, &p, &y);
		} else if (mura_conv_folds_bn(ctx, &blk->conv[q + 1])) {
			if (xa)
				mura_conv_forward_bn(ctx, &blk->conv[q], &in, xa, xb, &c);
			else
				mura_conv_forward(ctx, &blk->conv[q], &in, &c);
			float *a = map + 4 * co + (xa == map + 4 * co ? 2 * cq : 0);
			mura_bn_map(ctx, &blk->bn[q], &c, 0, NULL, a, a + cq);
			xa = a, xb = a + cq;
			in = c;
			continue;
		} else {
			struct mura_fm t = fm(blk->t[q], cq, n, h, w);
			float *a = map + 4 * co + (xa == map + 4 * co ? 2 * cq : 0);
			mura_bn_map(ctx, &blk->bn[q], &c, 0, NULL, a, a + cq);
			const struct mura_bn_post p = {a, a + cq, NULL, NULL, NULL};
			mura_conv_forward_post(ctx, &blk->conv[q], &in, xa, xb, &p, &t);
			in = t;
		}
		xa = xb = NULL;
	}
}

/* relu(bn(c)) of the last forward again, into t: with the affine map that
 * forward applied, or after an explaining forward (bt = 0) the running
 * statistics' map, which is the same computation as that forward's. */
static void
recompute(struct mura_nn_ctx *ctx, const struct mura_bn *bn, const struct mura_fm *c,
          struct mura_fm *t, int bt, int relu)
{
	if (bt)
		mura_bn_forward_saved(ctx, bn, c, t, relu);
	else
		mura_bn_forward(ctx, bn, c, t, 0, relu);
}

/* The outputs of blocks first to last - 1 again, as block_forward computed
 * them, from their last conv's (and downsample's) kept output and x0, the
 * input of block first. */
static void
stage_recompute(struct mura_nn_ctx *ctx, struct resnet *rn, int first, int last,
                const struct mura_fm *x0, int bt)
{
	struct mura_fm x = *x0;

	for (int i = first; i < last; i++) {
		struct res_block *blk = &rn->blk[i];
		block_end(ctx, rn, blk, &x, bt);
		x = fm(blk->y, blk->cout, x0->n, blk->h, blk->w);
	}
}

/* dy (overwritten) is the gradient of the block's output; dx gets its input's. */
static void
block_backward(struct mura_nn_ctx *ctx, struct resnet *rn, struct res_block *blk,
               const struct mura_fm *x, struct mura_fm *dy, struct mura_fm *dx, int bt)
{
	const int n = x->n;
	const size_t osz = mura_fm_size(dy);

	if (blk->down) {
		struct mura_fm cd = fm(blk->cd, blk->cout, n, blk->h, blk->w);
		struct mura_fm gd = fm(rn->g_d, blk->cout, n, blk->h, blk->w);
		mura_relu_backward(ctx, osz, blk->y, dy->d, dy->d, 0);
		mura_bn_backward(ctx, &blk->dbn, &cd, NULL, dy, &gd, bt, 0, 0);
		mura_conv_backward(ctx, &blk->dconv, x, &gd, dx, 0);
	} else {  /* the identity shortcut's dx is the masked dy itself */
		mura_relu_backward_tee(ctx, osz, blk->y, dy->d, dx->d);
	}
	struct mura_fm g = *dy;  /* the gradient of the current pair's bn output */
	for (int q = blk->npair - 1; q >= 0; q--) {
		int h, w;
		pair_size(blk, q, &h, &w);
		struct mura_fm c = fm(blk->c[q], blk->conv[q].cout, n, h, w);
		struct mura_fm gc = fm(rn->g_pair[q % 2], c.c, n, h, w);
		if (q == blk->npair - 1) {
			mura_bn_backward(ctx, &blk->bn[q], &c, NULL, &g, &gc, bt, 0, 0);
		} else {
			struct mura_fm t = fm(blk->t[q], c.c, n, h, w);
			mura_bn_backward(ctx, &blk->bn[q], &c, &t, &g, &gc, bt, 1, 0);
		}
		if (q == 0) {
			mura_conv_backward(ctx, &blk->conv[0], x, &gc, dx, 1);
		} else {
			int ph, pw;
			pair_size(blk, q - 1, &ph, &pw);
			struct mura_fm cp = fm(blk->c[q - 1], blk->conv[q - 1].cout, n, ph, pw);
			struct mura_fm t = fm(blk->t[q - 1], cp.c, n, ph, pw);
			recompute(ctx, &blk->bn[q - 1], &cp, &t, bt, 1);  /* kept for bn[q - 1] too */
			g = fm(rn->g_pair[(q - 1) % 2], t.c, n, ph, pw);
			mura_conv_backward(ctx, &blk->conv[q], &t, &gc, &g, 0);
		}
	}
}

static void
resnet_forward(struct mura_model *m, int n, int train)
{
	struct resnet *rn = m->backbone;
	struct mura_nn_ctx *ctx = &m->ctx;
	const int t = net_backbone_train(m, train);
	struct mura_fm c0 = fm(rn->c0, 64, n, rn->h0, rn->w0);
	struct mura_fm r0 = fm(rn->r0, 64, n, rn->h0, rn->w0);
	struct mura_fm x = fm(rn->p0, 64, n, rn->h1, rn->w1);

	const int infer = !train && !m->explain;  /* no backward to come */

	if (infer) {
		const struct mura_bn_post p = {rn->map, rn->map + 64, NULL, NULL, NULL};
		mura_bn_map(ctx, &rn->bn1, &c0, 0, NULL, rn->map, rn->map + 64);
		mura_conv_forward_post(ctx, &rn->conv1, &m->in, NULL, NULL, &p, &r0);
	} else {
		mura_conv_forward(ctx, &rn->conv1, &m->in, &c0);
		mura_bn_forward(ctx, &rn->bn1, &c0, &r0, t, 1);
	}
	struct mura_maxpool mp = rn->maxpool;
	if (!t && !m->explain)
		mp.arg = NULL;  /* no backward to come */
	mura_maxpool_forward(ctx, &mp, &r0, &x);
	for (int i = 0; i < rn->nblocks; i++) {
		struct res_block *blk = &rn->blk[i];
		if (infer)
			block_infer(ctx, rn, blk, &x);
		else
			block_forward(ctx, rn, blk, &x, t);
		x = fm(blk->y, blk->cout, n, blk->h, blk->w);
		net_capture_act(m, i, &x);
	}
	m->feat.n = n;
}

static void
resnet_backward(struct mura_model *m, int n)
{
	struct resnet *rn = m->backbone;
	struct mura_nn_ctx *ctx = &m->ctx;
	struct mura_fm dy = m->dfeat;
	const int bt = net_bn_train(m);

	dy.n = n;
	for (int i = rn->nblocks - 1; i >= 0; i--) {
		if (net_capture_grad(m, i, &dy))
			return;
		struct res_block *blk = &rn->blk[i];
		const struct res_block *prev = i ? &rn->blk[i - 1] : NULL;
		struct mura_fm x = prev ? fm(prev->y, prev->cout, n, prev->h, prev->w)
		                        : fm(rn->p0, 64, n, rn->h1, rn->w1);
		struct mura_fm dx = fm(rn->g_io[i % 2], x.c, n, x.h, x.w);
		if (blk->k == blk->nk - 1 && blk->k > 0) {  /* the stage's shared outputs */
			const int f = i - blk->k;
			const struct res_block *in = f ? &rn->blk[f - 1] : NULL;
			struct mura_fm x0 = in ? fm(in->y, in->cout, n, in->h, in->w)
			                       : fm(rn->p0, 64, n, rn->h1, rn->w1);
			stage_recompute(ctx, rn, f, i, &x0, bt);
		}
		block_backward(ctx, rn, blk, &x, &dy, &dx, bt);
		net_grads_final(m, blk->conv[0].gw);
		dy = dx;
	}
	struct mura_fm c0 = fm(rn->c0, 64, n, rn->h0, rn->w0);
	struct mura_fm r0 = fm(rn->r0, 64, n, rn->h0, rn->w0);
	struct mura_fm g0 = fm(rn->g_io[1], 64, n, rn->h0, rn->w0);  /* dy is g_io[0] */
	mura_maxpool_backward(ctx, &rn->maxpool, &dy, &g0, 0);
	if (!bt)  /* the ReLU's mask read from r0 (with bt, from c0) */
		recompute(ctx, &rn->bn1, &c0, &r0, bt, 1);
	mura_bn_backward(ctx, &rn->bn1, &c0, &r0, &g0, &g0, bt, 1, 0);
	mura_conv_backward(ctx, &rn->conv1, &m->in, &g0, NULL, 0);
}

/* f has arch's stem, exactly its blocks in each layer, and a bottleneck's
 * third convolution if and only if arch has one. */
static int
resnet_fits(const struct mura_st_file *f, int arch)
{
	int t = spec_of(arch);
	char name[64];

	if (t < 0 || !mura_st_find(f, "conv1.weight") ||
	    !mura_st_find(f, "layer1.0.conv3.weight") != !table[t].bottleneck)
		return 0;
	for (int s = 0; s < 4; s++) {
		int n = -1;
		do
			snprintf(name, sizeof name, "layer%d.%d.conv1.weight", s + 1, ++n);
		while (mura_st_find(f, name));
		if (n != table[t].blocks[s])
			return 0;
	}
	return 1;
}

/* "layerS" (the last block of stage S) or "layerS.K" (block K of it): the
 * block's output, relu(main path + identity). */
static int
resnet_layer(struct mura_model *m, const char *name, struct mura_fm *shape)
{
	const struct resnet *rn = m->backbone;
	int t = spec_of(m->cfg.arch), s, k = -1, end = 0;

	if (sscanf(name, "layer%d%n.%d%n", &s, &end, &k, &end) >= 1 && !name[end] && s >= 1 &&
	    s <= rn->stages && k < table[t].blocks[s - 1] && (k >= 0 || !strchr(name, '.'))) {
		int i = 0;
		for (int q = 0; q < s - 1; q++)
			i += table[t].blocks[q];
		i += k >= 0 ? k : table[t].blocks[s - 1] - 1;
		const struct res_block *blk = &rn->blk[i];
		*shape = fm(NULL, blk->cout, 0, blk->h, blk->w);
		return i;
	}
	return mura_error("no layer '%s' in %s: layer1 to layer%d, or a block of one (layer%d.0 to layer%d.%d)",
	                  name, mura_arch_name(m->cfg.arch), rn->stages, rn->stages, rn->stages,
	                  table[t].blocks[rn->stages - 1] - 1);
}

const struct net_part net_resnet = {
	"resnet", resnet_build, resnet_plan, resnet_forward, resnet_backward, resnet_free, resnet_fits,
	resnet_layer,
};
