/*
 * densenet.c - DenseNet-BC 121/169/201 as torchvision.models.densenet
 * builds them (Huang et al. 2017): growth rate 32, 64 initial features,
 * bottleneck width 4 x 32, compression 0.5, no dropout inside.
 *
 *   features.conv0  7x7 s2 p3, 3 -> 64     features.norm0 + relu0
 *   features.pool0  max 3x3 s2 p1
 *   features.denseblockB.denselayerL:  norm1 + relu1, conv1 1x1 -> 128,
 *                                      norm2 + relu2, conv2 3x3 p1 -> 32,
 *                                      output appended to the block's input
 *   features.transitionT: norm + relu, conv 1x1 -> half, avg pool 2x2 s2
 *                         (run here as pool, then conv: see densenet_forward)
 *   features.norm5, then (forward) relu: the backbone's output.
 *
 * Memory.  A block's input and its layers' outputs live in one buffer
 * [C_out][N][H][W]: layer L reads channels [0, c_L) and writes channels
 * [c_L, c_L + 32), which is the concatenation with no copy.  Backward runs
 * the layers in reverse over a gradient buffer of the same shape: layer L
 * takes the gradient of its 32 channels (complete by then: only later layers
 * and the transition read them) and adds its input's gradient into [0, c_L).
 * A training plan keeps each layer's conv1 output only; its norm1 and norm2
 * outputs live in buffers shared by all layers and are recomputed in
 * backward from the saved affine maps (mura_bn_forward_saved: bit-identical,
 * running statistics untouched), as Pleiss et al. 2017's memory-efficient
 * DenseNet.  The gradients inside a layer use buffers shared by all layers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "net.h"

#define GROWTH 32
#define BN_SIZE 4
#define NORM2_MAP (2 * BN_SIZE * GROWTH)
#define INIT_FEATURES 64

static const struct {
	int arch;
	int layers[4];
} table[] = {
	{MURA_ARCH_DENSENET121, {6, 12, 24, 16}},
	{MURA_ARCH_DENSENET169, {6, 12, 32, 32}},
	{MURA_ARCH_DENSENET201, {6, 12, 48, 32}},
};

struct dense_layer {
	int cin;
	struct mura_bn norm1, norm2;
	struct mura_conv conv1, conv2;
	float *a1, *a2, *a3;  /* relu1(norm1(x)) [cin], conv1 [128], relu2(norm2()) [128];
	                         a1 and a3 shared by all layers, recomputed in backward */
};

struct dense_block {
	int nlayers, cin, cout, h, w;
	struct dense_layer *layer;
	float *x, *dx;        /* [cout][n][h][w]: input, then each layer's output */
	struct mura_bn_stats stats;  /* x's batch statistics, for norm1 and the transition */
};

struct transition {
	struct mura_bn norm;
	struct mura_conv conv;
	float *t1, *t2;       /* relu(norm(x)) [cin], its 2x2 average [cin] at half size */
};

struct densenet {
	struct mura_conv conv0;
	struct mura_bn norm0;
	struct mura_maxpool pool0;
	int h0, w0;           /* after conv0 */
	float *c0, *r0;       /* conv0 and relu0(norm0()) [64][n][h0][w0] */
	struct dense_block block[4];
	struct transition trans[3];
	struct mura_bn norm5;
	float *g_a1, *g_a3, *g_t1, *g_t2, *g_r0;  /* gradients, shared */
	float *map;           /* maps in evaluation (layer_forward): norm2's (or norm0's) in
	                         [0, NORM2_MAP), norm1's after it, 2 x the largest cin */
};

/* The layers mura_model_capture names (densenet_layer): each block's
 * output (its input and every layer's, concatenated), each transition's,
 * and features.norm5's after the ReLU that torchvision's forward applies in
 * place (what the head pools). */
enum { LAYER_BLOCK = 0, LAYER_TRANSITION = 4, LAYER_NORM5 = 7 };

enum {
	SLOT_C0, SLOT_R0, SLOT_BLOCK_A, SLOT_BLOCK_B, SLOT_A1, SLOT_A2, SLOT_A3,
	SLOT_T1, SLOT_T2, SLOT_G_A1, SLOT_G_A3, SLOT_G_T1, SLOT_G_T2, SLOT_G_R0,
};

static struct mura_fm
fm(float *d, int c, int n, int h, int w)
{
	struct mura_fm f = {d, c, n, h, w};
	return f;
}

/* "features.denseblockK.denselayerL.part" (1-based, as torchvision) in buf[128] */
static const char *
layer_name(char *buf, int k, int l, const char *part)
{
	snprintf(buf, 128, "features.denseblock%d.denselayer%d.%s", k + 1, l + 1, part);
	return buf;
}

static int
densenet_build(struct mura_model *m, struct net_build *b)
{
	struct densenet *dn = m->backbone;
	char name[128];
	int t = -1;

	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
		if (table[i].arch == m->cfg.arch)
			t = (int)i;
	if (t < 0)
		return mura_error("not a DenseNet: arch %d", m->cfg.arch);
	if (!dn) {
		if (!(dn = m->backbone = calloc(1, sizeof *dn)))
			return mura_error("out of memory");
		for (int k = 0; k < 4; k++) {
			dn->block[k].nlayers = table[t].layers[k];
			dn->block[k].layer = calloc((size_t)table[t].layers[k], sizeof(struct dense_layer));
			if (!dn->block[k].layer)
				return mura_error("out of memory");
		}
	}
	dn->pool0 = (struct mura_maxpool){3, 2, 1, NULL};
	net_conv(b, &dn->conv0, "features.conv0", 3, INIT_FEATURES, 7, 2, 3, 0, NET_INIT_KAIMING_IN);
	net_bn(b, &dn->norm0, "features.norm0", INIT_FEATURES);
	int c = INIT_FEATURES;
	for (int k = 0; k < 4; k++) {
		struct dense_block *blk = &dn->block[k];
		blk->cin = c;
		for (int l = 0; l < blk->nlayers; l++) {
			struct dense_layer *L = &blk->layer[l];
			L->cin = c;
			net_bn(b, &L->norm1, layer_name(name, k, l, "norm1"), c);
			net_conv(b, &L->conv1, layer_name(name, k, l, "conv1"), c, BN_SIZE * GROWTH, 1, 1, 0, 0,
			         NET_INIT_KAIMING_IN);
			net_bn(b, &L->norm2, layer_name(name, k, l, "norm2"), BN_SIZE * GROWTH);
			net_conv(b, &L->conv2, layer_name(name, k, l, "conv2"), BN_SIZE * GROWTH, GROWTH, 3, 1, 1,
			         0, NET_INIT_KAIMING_IN);
			c += GROWTH;
		}
		blk->cout = c;
		if (!blk->stats.mean) {
			if (!(blk->stats.mean = calloc(2 * (size_t)c, sizeof(double))))
				return mura_error("out of memory");
			blk->stats.var = blk->stats.mean + c;
			blk->stats.c = c;
		}
		if (k < 3) {
			snprintf(name, sizeof name, "features.transition%d.norm", k + 1);
			net_bn(b, &dn->trans[k].norm, name, c);
			snprintf(name, sizeof name, "features.transition%d.conv", k + 1);
			net_conv(b, &dn->trans[k].conv, name, c, c / 2, 1, 1, 0, 0, NET_INIT_KAIMING_IN);
			c /= 2;
		}
	}
	net_bn(b, &dn->norm5, "features.norm5", c);
	if (!dn->map) {
		int most = 0;
		for (int k = 0; k < 4; k++)
			for (int l = 0; l < dn->block[k].nlayers; l++)
				most = dn->block[k].layer[l].cin > most ? dn->block[k].layer[l].cin : most;
		if (!(dn->map = calloc(NORM2_MAP + 2 * (size_t)most, sizeof(float))))
			return mura_error("out of memory");
	}
	m->feat_c = c;
	return 0;
}

static void
densenet_free(void *v)
{
	struct densenet *dn = v;

	if (!dn)
		return;
	for (int k = 0; k < 4; k++) {
		free(dn->block[k].layer);
		free(dn->block[k].stats.mean);
	}
	free(dn->map);
	free(dn);
}

static int
densenet_plan(struct mura_model *m, struct net_plan *p, int n, int h, int w)
{
	struct densenet *dn = m->backbone;
	struct mura_fm x = fm(NULL, 3, n, h, w);

	dn->h0 = mura_window_out(h, 7, 2, 3);
	dn->w0 = mura_window_out(w, 7, 2, 3);
	int hb = mura_window_out(dn->h0, 3, 2, 1), wb = mura_window_out(dn->w0, 3, 2, 1);
	for (int k = 0; k < 3; k++) {
		dn->block[k].h = hb, dn->block[k].w = wb;
		hb = mura_window_out(hb, 2, 2, 0), wb = mura_window_out(wb, 2, 2, 0);
	}
	dn->block[3].h = hb, dn->block[3].w = wb;
	if (hb < 1 || wb < 1)
		return mura_error("%dx%d is too small for a DenseNet (at least 32x32)", h, w);

	size_t plane0 = (size_t)n * dn->h0 * dn->w0;
	net_conv_scratch(p, &dn->conv0, &x);
	dn->c0 = net_keep(p, SLOT_C0, INIT_FEATURES * plane0);
	dn->r0 = net_keep(p, SLOT_R0, INIT_FEATURES * plane0);
	if (p->training)
		dn->g_r0 = net_slot(p, SLOT_G_R0, INIT_FEATURES * plane0);
	for (int k = 0; k < 4; k++) {
		struct dense_block *blk = &dn->block[k];
		size_t plane = (size_t)n * blk->h * blk->w;
		if (k == 0)
			dn->pool0.arg = p->training ? (int32_t *)net_take(p, INIT_FEATURES * plane) : NULL;
		blk->x = net_keep(p, k % 2 ? SLOT_BLOCK_B : SLOT_BLOCK_A, (size_t)blk->cout * plane);
		blk->dx = p->training ? net_take(p, (size_t)blk->cout * plane) : NULL;
		for (int l = 0; l < blk->nlayers; l++) {
			struct dense_layer *L = &blk->layer[l];
			struct mura_fm a3 = fm(NULL, BN_SIZE * GROWTH, n, blk->h, blk->w);
			/* Shared a1/a3, recomputed in layer_backward (Pleiss et al. 2017), buys
			 * densenet169 training, batch 8, 320 px: peak RSS 2158 -> 1188 MB
			 * (PyTorch 3219 MB) for about 3% of the step's time (tests/nn_bench). */
			L->a1 = net_slot(p, SLOT_A1, (size_t)L->cin * plane);
			L->a2 = net_keep(p, SLOT_A2, BN_SIZE * GROWTH * plane);
			L->a3 = net_slot(p, SLOT_A3, BN_SIZE * GROWTH * plane);
			net_conv_scratch(p, &L->conv2, &a3);
			if (p->training) {
				dn->g_a1 = net_slot(p, SLOT_G_A1, (size_t)L->cin * plane);
				dn->g_a3 = net_slot(p, SLOT_G_A3, BN_SIZE * GROWTH * plane);
			}
		}
		if (k < 3) {
			struct transition *tr = &dn->trans[k];
			tr->t1 = net_keep(p, SLOT_T1, (size_t)blk->cout * plane);
			size_t half = (size_t)n * dn->block[k + 1].h * dn->block[k + 1].w;
			tr->t2 = net_keep(p, SLOT_T2, (size_t)blk->cout * half);
			if (p->training) {
				dn->g_t1 = net_slot(p, SLOT_G_T1, (size_t)blk->cout * plane);
				dn->g_t2 = net_slot(p, SLOT_G_T2, (size_t)blk->cout * half);
			}
		}
	}
	const struct dense_block *last = &dn->block[3];
	size_t fsize = (size_t)m->feat_c * n * last->h * last->w;
	m->feat = fm(net_take(p, fsize), m->feat_c, n, last->h, last->w);
	m->dfeat = fm(p->training ? net_take(p, fsize) : NULL, m->feat_c, n, last->h, last->w);
	return 0;
}

/* Training: norm1 with the block's statistics cache, from which it needs
 * only those of the previous layer's output (mura_bn_forward_cached).
 * In bf16, norm1 + relu1 are applied as conv1 packs its operand
 * (mura_conv_forward_bn), and a1 is not written: the same a2 bit for bit,
 * from one pass over the block's concatenation rather than three
 * (backward recomputes a1 as before).  infer (evaluation, no backward to
 * come): norm2 + relu2 applied by conv1 as well (mura_conv_forward_post),
 * a2 not written either: densenet169 bf16 inference, batch 8, 320 px, 2
 * threads, 19.56 -> 22.43 images/s (medians of 5 runs alternating with
 * the build before, tests/nn_bench densenet169 8 320 3 infer bf16,
 * 2026-12-06, AMX). */
static void
layer_forward(struct mura_nn_ctx *ctx, const struct densenet *dn, struct dense_layer *L,
              const struct mura_fm *blk, struct mura_bn_stats *st, int train, int infer)
{
	struct mura_fm x = mura_fm_slice(blk, 0, L->cin), out = mura_fm_slice(blk, L->cin, GROWTH);
	struct mura_fm a1 = fm(L->a1, L->cin, blk->n, blk->h, blk->w);
	struct mura_fm a2 = fm(L->a2, BN_SIZE * GROWTH, blk->n, blk->h, blk->w);
	struct mura_fm a3 = fm(L->a3, BN_SIZE * GROWTH, blk->n, blk->h, blk->w);

	if (infer) {
		const int fold = mura_conv_folds_bn(ctx, &L->conv1);
		float *ka = dn->map + NORM2_MAP, *kb = ka + L->cin;
		const struct mura_bn_post p = {dn->map, dn->map + a2.c, NULL, NULL, NULL};
		if (fold)
			mura_bn_map(ctx, &L->norm1, &x, 0, NULL, ka, kb);
		else
			mura_bn_forward(ctx, &L->norm1, &x, &a1, 0, 1);
		mura_bn_map(ctx, &L->norm2, &a2, 0, NULL, dn->map, dn->map + a2.c);
		mura_conv_forward_post(ctx, &L->conv1, fold ? &x : &a1, fold ? ka : NULL, kb, &p, &a3);
		mura_conv_forward(ctx, &L->conv2, &a3, &out);
		return;
	}
	if (mura_conv_folds_bn(ctx, &L->conv1)) {
		float *ka = train ? L->norm1.scale : dn->map + NORM2_MAP;
		float *kb = train ? L->norm1.shift : dn->map + NORM2_MAP + L->cin;
		mura_bn_map(ctx, &L->norm1, &x, train, train ? st : NULL, ka, kb);
		mura_conv_forward_bn(ctx, &L->conv1, &x, ka, kb, &a2);
	} else {
		if (train)
			mura_bn_forward_cached(ctx, &L->norm1, &x, &a1, 1, st);
		else
			mura_bn_forward(ctx, &L->norm1, &x, &a1, 0, 1);
		mura_conv_forward(ctx, &L->conv1, &a1, &a2);
	}
	mura_bn_forward(ctx, &L->norm2, &a2, &a3, train, 1);
	mura_conv_forward(ctx, &L->conv2, &a3, &out);
}

/* The gradient of the layer's output is in dblk's channels [cin, cin + 32);
 * its input's is added to dblk's channels [0, cin).  a3, then a1, are
 * recomputed first: later layers overwrote the shared buffers. */
static void
layer_backward(struct mura_nn_ctx *ctx, const struct densenet *dn, struct dense_layer *L,
               const struct mura_fm *blk, struct mura_fm *dblk, int bt)
{
	struct mura_fm x = mura_fm_slice(blk, 0, L->cin);
	struct mura_fm dx = mura_fm_slice(dblk, 0, L->cin), dout = mura_fm_slice(dblk, L->cin, GROWTH);
	struct mura_fm a1 = fm(L->a1, L->cin, blk->n, blk->h, blk->w);
	struct mura_fm a2 = fm(L->a2, BN_SIZE * GROWTH, blk->n, blk->h, blk->w);
	struct mura_fm a3 = fm(L->a3, BN_SIZE * GROWTH, blk->n, blk->h, blk->w);
	struct mura_fm g1 = fm(dn->g_a1, L->cin, blk->n, blk->h, blk->w);
	struct mura_fm g3 = fm(dn->g_a3, BN_SIZE * GROWTH, blk->n, blk->h, blk->w);

	/* after an explaining forward (evaluation mode), the running statistics' map */
	if (bt)
		mura_bn_forward_saved(ctx, &L->norm2, &a2, &a3, 1);
	else
		mura_bn_forward(ctx, &L->norm2, &a2, &a3, 0, 1);
	mura_conv_backward(ctx, &L->conv2, &a3, &dout, &g3, 0);
	mura_bn_backward(ctx, &L->norm2, &a2, &a3, &g3, &g3, bt, 1, 0);  /* g3 now d(a2) */
	if (bt)
		mura_bn_forward_saved(ctx, &L->norm1, &x, &a1, 1);
	else
		mura_bn_forward(ctx, &L->norm1, &x, &a1, 0, 1);
	mura_conv_backward(ctx, &L->conv1, &a1, &g3, &g1, 0);
	mura_bn_backward(ctx, &L->norm1, &x, &a1, &g1, &dx, bt, 1, 1);
}

static void
densenet_forward(struct mura_model *m, int n, int train)
{
	struct densenet *dn = m->backbone;
	struct mura_nn_ctx *ctx = &m->ctx;
	const int t = net_backbone_train(m, train);
	struct mura_fm c0 = fm(dn->c0, INIT_FEATURES, n, dn->h0, dn->w0);
	struct mura_fm r0 = fm(dn->r0, INIT_FEATURES, n, dn->h0, dn->w0);

	const int infer = !train && !m->explain;  /* no backward to come */

	if (infer) {
		const struct mura_bn_post p = {dn->map, dn->map + INIT_FEATURES, NULL, NULL, NULL};
		mura_bn_map(ctx, &dn->norm0, &c0, 0, NULL, dn->map, dn->map + INIT_FEATURES);
		mura_conv_forward_post(ctx, &dn->conv0, &m->in, NULL, NULL, &p, &r0);
	} else {
		mura_conv_forward(ctx, &dn->conv0, &m->in, &c0);
		mura_bn_forward(ctx, &dn->norm0, &c0, &r0, t, 1);
	}
	for (int k = 0; k < 4; k++) {
		struct dense_block *blk = &dn->block[k];
		struct mura_fm x = fm(blk->x, blk->cout, n, blk->h, blk->w);
		struct mura_fm in = mura_fm_slice(&x, 0, blk->cin);
		if (k == 0) {
			struct mura_maxpool mp = dn->pool0;
			if (!t && !m->explain)
				mp.arg = NULL;  /* no backward to come */
			mura_maxpool_forward(ctx, &mp, &r0, &in);
		} else {
			const struct dense_block *prev = &dn->block[k - 1];
			struct transition *tr = &dn->trans[k - 1];
			struct mura_fm px = fm(prev->x, prev->cout, n, prev->h, prev->w);
			struct mura_fm t1 = fm(tr->t1, prev->cout, n, prev->h, prev->w);
			struct mura_fm t2 = fm(tr->t2, prev->cout, n, blk->h, blk->w);
			if (t)
				mura_bn_forward_cached(ctx, &tr->norm, &px, &t1, 1, &dn->block[k - 1].stats);
			else
				mura_bn_forward(ctx, &tr->norm, &px, &t1, 0, 1);
			/* The 1x1 convolution and the average pool are both linear
			 * and act on different axes, so they commute: pooling first
			 * runs the convolution on a quarter of the pixels.  Not bit
			 * for bit torchvision's order, well within the parity tests'
			 * tolerances.  Buys densenet169 training, batch 8, 320 px,
			 * 2 threads: step 1.28 -> 1.19 s (conv 1x1 forward 0.174 ->
			 * 0.150 s, backward 0.354 -> 0.305 s), peak RSS 1208 ->
			 * 1173 MB; inference 0.381 -> 0.357 s (tests/nn_bench). */
			mura_avgpool_forward(ctx, 2, 2, &t1, &t2);
			mura_conv_forward(ctx, &tr->conv, &t2, &in);
			net_capture_act(m, LAYER_TRANSITION + k - 1, &in);
		}
		blk->stats.known = 0;
		for (int l = 0; l < blk->nlayers; l++)
			layer_forward(ctx, dn, &blk->layer[l], &x, &blk->stats, t, infer);
		net_capture_act(m, LAYER_BLOCK + k, &x);
	}
	const struct dense_block *last = &dn->block[3];
	struct mura_fm x = fm(last->x, last->cout, n, last->h, last->w);
	m->feat.n = n;
	if (t)
		mura_bn_forward_cached(ctx, &dn->norm5, &x, &m->feat, 1, &dn->block[3].stats);
	else
		mura_bn_forward(ctx, &dn->norm5, &x, &m->feat, 0, 1);
	net_capture_act(m, LAYER_NORM5, &m->feat);
}

static void
densenet_backward(struct mura_model *m, int n)
{
	struct densenet *dn = m->backbone;
	struct mura_nn_ctx *ctx = &m->ctx;

	const struct dense_block *last = &dn->block[3];
	struct mura_fm x = fm(last->x, last->cout, n, last->h, last->w);
	struct mura_fm dx = fm(last->dx, last->cout, n, last->h, last->w);
	const int bt = net_bn_train(m);
	m->feat.n = m->dfeat.n = n;
	if (net_capture_grad(m, LAYER_NORM5, &m->dfeat))
		return;
	mura_bn_backward(ctx, &dn->norm5, &x, &m->feat, &m->dfeat, &dx, bt, 1, 0);
	net_grads_final(m, dn->norm5.gw);
	for (int k = 3; k >= 0; k--) {
		struct dense_block *blk = &dn->block[k];
		struct mura_fm bx = fm(blk->x, blk->cout, n, blk->h, blk->w);
		struct mura_fm bdx = fm(blk->dx, blk->cout, n, blk->h, blk->w);
		struct mura_fm din = mura_fm_slice(&bdx, 0, blk->cin);
		if (net_capture_grad(m, LAYER_BLOCK + k, &bdx))
			return;
		for (int l = blk->nlayers - 1; l >= 0; l--) {
			layer_backward(ctx, dn, &blk->layer[l], &bx, &bdx, bt);
			net_grads_final(m, blk->layer[l].norm1.gw);
		}
		if (k == 0)
			break;
		if (net_capture_grad(m, LAYER_TRANSITION + k - 1, &din))
			return;
		const struct dense_block *prev = &dn->block[k - 1];
		struct transition *tr = &dn->trans[k - 1];
		struct mura_fm px = fm(prev->x, prev->cout, n, prev->h, prev->w);
		struct mura_fm pdx = fm(prev->dx, prev->cout, n, prev->h, prev->w);
		struct mura_fm t1 = fm(tr->t1, prev->cout, n, prev->h, prev->w);
		struct mura_fm g1 = fm(dn->g_t1, prev->cout, n, prev->h, prev->w);
		struct mura_fm t2 = fm(tr->t2, prev->cout, n, blk->h, blk->w);
		struct mura_fm g2 = fm(dn->g_t2, prev->cout, n, blk->h, blk->w);
		mura_conv_backward(ctx, &tr->conv, &t2, &din, &g2, 0);
		mura_avgpool_backward(ctx, 2, 2, &g2, &g1, 0);
		mura_bn_backward(ctx, &tr->norm, &px, &t1, &g1, &pdx, bt, 1, 0);
		net_grads_final(m, tr->norm.gw);
	}
	const struct dense_block *first = &dn->block[0];
	struct mura_fm fdx = fm(first->dx, first->cout, n, first->h, first->w);
	struct mura_fm dp = mura_fm_slice(&fdx, 0, first->cin);
	struct mura_fm c0 = fm(dn->c0, INIT_FEATURES, n, dn->h0, dn->w0);
	struct mura_fm r0 = fm(dn->r0, INIT_FEATURES, n, dn->h0, dn->w0);
	struct mura_fm g0 = fm(dn->g_r0, INIT_FEATURES, n, dn->h0, dn->w0);
	mura_maxpool_backward(ctx, &dn->pool0, &dp, &g0, 0);
	mura_bn_backward(ctx, &dn->norm0, &c0, &r0, &g0, &g0, bt, 1, 0);
	mura_conv_backward(ctx, &dn->conv0, &m->in, &g0, NULL, 0);
}

/* f has arch's stem and, in each dense block, exactly its layers. */
static int
densenet_fits(const struct mura_st_file *f, int arch)
{
	char name[96];

	for (size_t t = 0; t < sizeof table / sizeof table[0]; t++) {
		if (table[t].arch != arch)
			continue;
		if (!mura_st_find(f, "features.conv0.weight"))
			return 0;
		for (int k = 0; k < 4; k++) {
			int n = 0;
			do
				snprintf(name, sizeof name, "features.denseblock%d.denselayer%d.conv1.weight", k + 1, ++n);
			while (mura_st_find(f, name));
			if (n - 1 != table[t].layers[k])
				return 0;
		}
		return 1;
	}
	return 0;
}

static int
densenet_layer(struct mura_model *m, const char *name, struct mura_fm *shape)
{
	const struct densenet *dn = m->backbone;
	int k, end = 0;

	if (strcmp(name, "features.norm5") == 0) {
		*shape = m->feat;
		shape->d = NULL;
		return LAYER_NORM5;
	}
	if (sscanf(name, "features.denseblock%d%n", &k, &end) == 1 && !name[end] && k >= 1 && k <= 4) {
		const struct dense_block *b = &dn->block[k - 1];
		*shape = fm(NULL, b->cout, 0, b->h, b->w);
		return LAYER_BLOCK + k - 1;
	}
	if (sscanf(name, "features.transition%d%n", &k, &end) == 1 && !name[end] && k >= 1 && k <= 3) {
		const struct dense_block *b = &dn->block[k];
		*shape = fm(NULL, b->cin, 0, b->h, b->w);
		return LAYER_TRANSITION + k - 1;
	}
	return mura_error("no layer '%s' in %s: features.denseblock1 to 4, features.transition1 to 3, "
	                  "features.norm5", name, mura_arch_name(m->cfg.arch));
}

const struct net_part net_densenet = {
	"densenet", densenet_build, densenet_plan, densenet_forward, densenet_backward, densenet_free,
	densenet_fits, densenet_layer,
};
