/*
 * head.c - the two classifier heads on the backbone's feature map F
 * (model.h says what they are and why).
 *
 *   fc:    logit = fc(dropout(gap(F)))                         (Figure 1)
 *   conv:  logit = gap(conv2(dropout(relu(norm1(conv1(F))))))   (Figure 2)
 *
 * The head always trains in a training forward, frozen backbone or not;
 * when the backbone is frozen its backward stops here (no dF).
 */
#include <stdlib.h>

#include "error.h"
#include "net.h"

#define CONV_HEAD_WIDTH 256

struct head {
	int kind;
	float p;                 /* dropout */
	int dropped;             /* the last forward applied dropout */
	/* fc */
	struct mura_linear fc;
	float *pooled, *dropout_out, *mask, *g_pooled;   /* [n][C] */
	/* conv */
	struct mura_conv conv1, conv2;
	struct mura_bn norm1;
	float *h1, *h2, *h3, *hmask, *map;  /* conv1, relu(norm1()), dropout, its mask, conv2 */
	float *g_map, *g_h;
};

static int
head_build(struct mura_model *m, struct net_build *b)
{
	struct head *hd = m->head;
	const struct net_arch *a = m->arch;

	if (!hd) {
		if (!(hd = m->head = calloc(1, sizeof *hd)))
			return mura_error("out of memory");
		hd->kind = m->cfg.head;
		hd->p = m->cfg.dropout;
	}
	b->head = 1;
	if (hd->kind == MURA_HEAD_FC) {
		net_linear(b, &hd->fc, a->classifier, m->feat_c, 1, a->classifier_bias_init);
	} else {
		net_conv(b, &hd->conv1, "head.conv1", m->feat_c, CONV_HEAD_WIDTH, 3, 1, 1, 0,
		         NET_INIT_UNIFORM_FANIN);
		net_bn(b, &hd->norm1, "head.norm1", CONV_HEAD_WIDTH);
		net_conv(b, &hd->conv2, "head.conv2", CONV_HEAD_WIDTH, 1, 1, 1, 0, 1,
		         NET_INIT_UNIFORM_FANIN);
	}
	b->head = 0;
	return 0;
}

static void
head_free(void *v)
{
	free(v);
}

static int
head_plan(struct mura_model *m, struct net_plan *p, int n, int h, int w)
{
	(void)h, (void)w;  /* the input's; the head reads m->feat */
	struct head *hd = m->head;
	const struct mura_fm *f = &m->feat;
	size_t plane = (size_t)n * f->h * f->w;

	if (hd->kind == MURA_HEAD_FC) {
		size_t sz = (size_t)n * f->c;
		hd->pooled = net_take(p, sz);
		hd->dropout_out = net_take(p, sz);
		hd->mask = net_take(p, sz);
		hd->g_pooled = p->training ? net_take(p, sz) : NULL;
	} else {
		net_conv_scratch(p, &hd->conv1, f);
		hd->h1 = net_take(p, CONV_HEAD_WIDTH * plane);
		hd->h2 = net_take(p, CONV_HEAD_WIDTH * plane);
		hd->h3 = net_take(p, CONV_HEAD_WIDTH * plane);
		hd->hmask = net_take(p, CONV_HEAD_WIDTH * plane);
		hd->map = net_take(p, plane);
		hd->g_map = p->training ? net_take(p, plane) : NULL;
		hd->g_h = p->training ? net_take(p, CONV_HEAD_WIDTH * plane) : NULL;
	}
	m->logits = net_take(p, (size_t)n);
	m->dlogits = net_take(p, (size_t)n);
	return 0;
}

static void
head_forward(struct mura_model *m, int n, int train)
{
	struct head *hd = m->head;
	struct mura_nn_ctx *ctx = &m->ctx;
	const struct mura_fm *f = &m->feat;

	hd->dropped = train && hd->p > 0;
	if (hd->kind == MURA_HEAD_FC) {
		size_t sz = (size_t)n * f->c;
		float *x = hd->pooled;
		mura_gap_forward(ctx, f, hd->pooled);
		if (hd->dropped) {
			mura_dropout_forward(ctx, sz, hd->p, &m->rng, hd->pooled, hd->mask, hd->dropout_out);
			x = hd->dropout_out;
		}
		mura_linear_forward(ctx, &hd->fc, n, x, m->logits);
		return;
	}
	struct mura_fm h1 = {hd->h1, CONV_HEAD_WIDTH, n, f->h, f->w};
	struct mura_fm h2 = {hd->h2, CONV_HEAD_WIDTH, n, f->h, f->w};
	struct mura_fm h3 = {hd->h3, CONV_HEAD_WIDTH, n, f->h, f->w};
	struct mura_fm map = {hd->map, 1, n, f->h, f->w};
	mura_conv_forward(ctx, &hd->conv1, f, &h1);
	mura_bn_forward(ctx, &hd->norm1, &h1, &h2, train, 1);
	if (hd->dropped)
		mura_dropout_forward(ctx, mura_fm_size(&h2), hd->p, &m->rng, h2.d, hd->hmask, h3.d);
	mura_conv_forward(ctx, &hd->conv2, hd->dropped ? &h3 : &h2, &map);
	mura_gap_forward(ctx, &map, m->logits);
}

static void
head_backward(struct mura_model *m, int n)
{
	struct head *hd = m->head;
	struct mura_nn_ctx *ctx = &m->ctx;
	const struct mura_fm *f = &m->feat;
	struct mura_fm *df = m->frozen ? NULL : &m->dfeat;

	if (df)
		df->n = n;
	if (hd->kind == MURA_HEAD_FC) {
		size_t sz = (size_t)n * f->c;
		const float *x = hd->dropped ? hd->dropout_out : hd->pooled;
		mura_linear_backward(ctx, &hd->fc, n, x, m->dlogits, df ? hd->g_pooled : NULL, 0);
		if (!df)
			return;
		if (hd->dropped)
			mura_dropout_backward(ctx, sz, hd->mask, hd->g_pooled, hd->g_pooled, 0);
		mura_gap_backward(ctx, hd->g_pooled, df, 0);
		return;
	}
	struct mura_fm h1 = {hd->h1, CONV_HEAD_WIDTH, n, f->h, f->w};
	struct mura_fm h2 = {hd->h2, CONV_HEAD_WIDTH, n, f->h, f->w};
	struct mura_fm h3 = {hd->h3, CONV_HEAD_WIDTH, n, f->h, f->w};
	struct mura_fm gmap = {hd->g_map, 1, n, f->h, f->w};
	struct mura_fm gh = {hd->g_h, CONV_HEAD_WIDTH, n, f->h, f->w};
	mura_gap_backward(ctx, m->dlogits, &gmap, 0);
	mura_conv_backward(ctx, &hd->conv2, hd->dropped ? &h3 : &h2, &gmap, &gh, 0);
	if (hd->dropped)
		mura_dropout_backward(ctx, mura_fm_size(&gh), hd->hmask, gh.d, gh.d, 0);
	mura_bn_backward(ctx, &hd->norm1, &h1, &h2, &gh, &gh, net_bn_train(m), 1, 0);
	mura_conv_backward(ctx, &hd->conv1, f, &gh, df, 0);
}

const struct net_part net_head = {
	"head", head_build, head_plan, head_forward, head_backward, head_free, NULL, NULL,
};
