/*
 * hybrid.c - the head of the ResNet50 + ViT hybrid (model.h says what it
 * is): on the backbone's map F [C][n][h][w],
 *
 *   x = tokens(patch_embed.proj(F), cls_token) + pos_embed   [n][1 + h w][D]
 *   x = blocks.0(x) ... blocks.L-1(x)
 *   logit = head(drop(norm(x[:, 0])))
 *
 * with vit.c's operations.  A block, as timm's pre-norm Block:
 *   xa = x + drop(attn.proj(attention(attn.qkv(norm1(x)))))
 *   y  = xa + drop(mlp.fc2(drop(gelu(mlp.fc1(norm2(xa))))))
 * Its backward runs the same steps in reverse on g, the gradient of y
 * (then of xa, then of x), each residual addition adding its branch's
 * gradient into g.  The final norm and the head see the [CLS] rows only
 * (a layer norm works row by row, and nothing else reads the other rows).
 *
 * The projection and the transformer are the model's head: they train
 * with the backbone frozen, when backward stops at the projection.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "net.h"
#include "util.h"
#include "vit.h"

#define LN_EPS 1e-6f  /* timm's ViT: partial(nn.LayerNorm, eps=1e-6) */

/* Shared slots: an evaluation plan runs the residual stream in place. */
enum {
	SLOT_X = NET_SLOT_HEAD, SLOT_LN, SLOT_QKV, SLOT_AO, SLOT_H, SLOT_G, SLOT_TMP,
};

struct vit_block {
	struct mura_layernorm norm1, norm2;
	struct mura_linear qkv, proj, fc1, fc2;
	/* the plan's activations, [rows][...] with rows = n (1 + h w) */
	float *ln1, *mean1, *rstd1;    /* norm1's output and statistics */
	float *qkvo, *p, *ao;          /* qkv's output, attention probabilities and output */
	float *xa;                     /* after the attention's residual */
	float *ln2, *mean2, *rstd2;
	float *h, *g;                  /* fc1's output, gelu's (after dropout) */
	float *y;                      /* the block's output */
	float *mask_proj, *mask1, *mask2;  /* dropout factors (training, p > 0) */
};

struct hybrid {
	int d, depth, heads, mlp, gh, gw;
	float p;                       /* dropout */
	int dropped;                   /* the last forward applied it */
	struct mura_conv proj;
	float *cls, *gcls, *pos, *gpos;
	struct vit_block *blk;
	struct mura_layernorm norm;
	struct mura_linear head;

	/* the plan */
	int h, w, t;                   /* the map, and tokens per image 1 + h w */
	struct mura_attention att;
	float *pmap;                   /* the projection's output [D][n][h][w] */
	float *x0;                     /* tokens + position embeddings */
	float *pos_r, *gpos_r;         /* pos_embed resampled to h x w, and its gradient */
	float *tmp;                    /* attn.proj's and fc2's outputs */
	float *cls_in, *cls_norm, *cls_drop, *cls_mask, *cls_mean, *cls_rstd;  /* [n][D] */
	float *g_pmap, *g_x, *g_t, *g_ao, *g_qkv, *g_h, *g_cls;
};

static void
vit_linear(struct net_build *b, struct mura_linear *l, const char *name, int in, int out)
{
	int64_t ws[2] = {out, in}, bs[1] = {out};

	l->in = in, l->out = out;
	l->w = net_param(b, name, "weight", 2, ws, NET_INIT_TRUNC_NORMAL, &l->gw);
	l->b = net_param(b, name, "bias", 1, bs, NET_INIT_ZERO, &l->gb);
}

static void
vit_norm(struct net_build *b, struct mura_layernorm *ln, const char *name, int d)
{
	int64_t s[1] = {d};

	ln->d = d, ln->eps = LN_EPS;
	ln->w = net_param(b, name, "weight", 1, s, NET_INIT_ONE, &ln->gw);
	ln->b = net_param(b, name, "bias", 1, s, NET_INIT_ZERO, &ln->gb);
}

static int
hybrid_build(struct mura_model *m, struct net_build *b)
{
	struct hybrid *hy = m->head;
	const struct mura_model_config *c = &m->cfg;
	char name[128];

	if (!hy) {
		if (!(hy = m->head = calloc(1, sizeof *hy)) || !(hy->blk = calloc((size_t)c->vit_depth, sizeof *hy->blk)))
			return mura_error("out of memory");
		hy->d = c->vit_dim, hy->depth = c->vit_depth, hy->heads = c->vit_heads, hy->mlp = c->vit_mlp;
		hy->gh = c->vit_grid_h, hy->gw = c->vit_grid_w;
		hy->p = c->dropout;
	}
	const int d = hy->d;
	int64_t cs[3] = {1, 1, d}, ps[3] = {1, 1 + (int64_t)hy->gh * hy->gw, d};

	b->head = 1;
	/* timm's state_dict order */
	hy->cls = net_param(b, "cls_token", NULL, 3, cs, NET_INIT_TRUNC_NORMAL, &hy->gcls);
	hy->pos = net_param(b, "pos_embed", NULL, 3, ps, NET_INIT_TRUNC_NORMAL, &hy->gpos);
	net_conv(b, &hy->proj, "patch_embed.proj", m->feat_c, d, 1, 1, 0, 1, NET_INIT_UNIFORM_FANIN);
	for (int l = 0; l < hy->depth; l++) {
		struct vit_block *k = &hy->blk[l];
		snprintf(name, sizeof name, "blocks.%d.norm1", l);
		vit_norm(b, &k->norm1, name, d);
		snprintf(name, sizeof name, "blocks.%d.attn.qkv", l);
		vit_linear(b, &k->qkv, name, d, 3 * d);
		snprintf(name, sizeof name, "blocks.%d.attn.proj", l);
		vit_linear(b, &k->proj, name, d, d);
		snprintf(name, sizeof name, "blocks.%d.norm2", l);
		vit_norm(b, &k->norm2, name, d);
		snprintf(name, sizeof name, "blocks.%d.mlp.fc1", l);
		vit_linear(b, &k->fc1, name, d, hy->mlp * d);
		snprintf(name, sizeof name, "blocks.%d.mlp.fc2", l);
		vit_linear(b, &k->fc2, name, hy->mlp * d, d);
	}
	vit_norm(b, &hy->norm, "norm", d);
	vit_linear(b, &hy->head, "head", d, 1);
	b->head = 0;
	return 0;
}

static void
hybrid_free(void *v)
{
	struct hybrid *hy = v;

	if (hy)
		free(hy->blk);
	free(hy);
}

static int
hybrid_plan(struct mura_model *m, struct net_plan *p, int n, int h, int w)
{
	(void)h, (void)w;  /* the input's; the head reads m->feat */
	struct hybrid *hy = m->head;
	const struct mura_fm *f = &m->feat;
	const int d = hy->d, r = hy->mlp * d, train = p->training, drop = train && hy->p > 0;

	hy->h = f->h, hy->w = f->w, hy->t = 1 + f->h * f->w;
	hy->att = (struct mura_attention){hy->heads, hy->t, d};
	const size_t rows = (size_t)n * hy->t, sd = rows * d, sr = rows * r;

	net_conv_scratch(p, &hy->proj, f);
	size_t s = mura_attention_scratch(&hy->att, p->nthreads);
	if (s > p->scratch)
		p->scratch = s;
	hy->pmap = net_slot(p, SLOT_TMP, (size_t)d * n * f->h * f->w);
	hy->x0 = net_keep(p, SLOT_X, sd);
	const int resample = f->h != hy->gh || f->w != hy->gw;
	hy->pos_r = resample ? net_take(p, (size_t)hy->t * d) : NULL;
	hy->gpos_r = resample && train ? net_take(p, (size_t)hy->t * d) : NULL;
	hy->tmp = net_slot(p, SLOT_TMP, sd);
	for (int l = 0; l < hy->depth; l++) {
		struct vit_block *k = &hy->blk[l];
		k->ln1 = net_keep(p, SLOT_LN, sd);
		k->mean1 = train ? net_take(p, rows) : NULL;
		k->rstd1 = train ? net_take(p, rows) : NULL;
		k->qkvo = net_keep(p, SLOT_QKV, 3 * sd);
		k->p = train ? net_take(p, (size_t)n * hy->heads * hy->t * hy->t) : NULL;
		k->ao = net_keep(p, SLOT_AO, sd);
		k->xa = net_keep(p, SLOT_X, sd);
		k->ln2 = net_keep(p, SLOT_LN, sd);
		k->mean2 = train ? net_take(p, rows) : NULL;
		k->rstd2 = train ? net_take(p, rows) : NULL;
		k->h = net_keep(p, SLOT_H, sr);
		k->g = net_keep(p, SLOT_G, sr);
		k->y = net_keep(p, SLOT_X, sd);
		k->mask_proj = drop ? net_take(p, sd) : NULL;
		k->mask1 = drop ? net_take(p, sr) : NULL;
		k->mask2 = drop ? net_take(p, sd) : NULL;
	}
	const size_t nd = (size_t)n * d;
	hy->cls_in = net_take(p, nd);
	hy->cls_norm = net_take(p, nd);
	hy->cls_drop = net_take(p, nd);
	hy->cls_mask = net_take(p, nd);
	hy->cls_mean = net_take(p, (size_t)n);
	hy->cls_rstd = net_take(p, (size_t)n);
	if (train) {
		hy->g_pmap = net_take(p, (size_t)d * n * f->h * f->w);
		hy->g_x = net_take(p, sd);
		hy->g_t = net_take(p, sd);
		hy->g_ao = net_take(p, sd);
		hy->g_qkv = net_take(p, 3 * sd);
		hy->g_h = net_take(p, sr);
		hy->g_cls = net_take(p, nd);
	}
	m->logits = net_take(p, (size_t)n);
	m->dlogits = net_take(p, (size_t)n);
	return 0;
}

static void
block_forward(struct mura_model *m, struct hybrid *hy, struct vit_block *k, const float *x, int n)
{
	struct mura_nn_ctx *ctx = &m->ctx;
	const size_t rows = (size_t)n * hy->t, sd = rows * hy->d, sr = sd * hy->mlp;

	mura_layernorm_forward(ctx, &k->norm1, rows, x, k->ln1, k->mean1, k->rstd1);
	mura_linear_forward(ctx, &k->qkv, (int)rows, k->ln1, k->qkvo);
	mura_attention_forward(ctx, &hy->att, n, k->qkvo, k->p, k->ao);
	mura_linear_forward(ctx, &k->proj, (int)rows, k->ao, hy->tmp);
	if (hy->dropped)
		mura_dropout_forward(ctx, sd, hy->p, &m->rng, hy->tmp, k->mask_proj, hy->tmp);
	mura_add_forward(ctx, sd, x, hy->tmp, k->xa);
	mura_layernorm_forward(ctx, &k->norm2, rows, k->xa, k->ln2, k->mean2, k->rstd2);
	mura_linear_forward(ctx, &k->fc1, (int)rows, k->ln2, k->h);
	mura_gelu_forward(ctx, sr, k->h, k->g);
	if (hy->dropped)
		mura_dropout_forward(ctx, sr, hy->p, &m->rng, k->g, k->mask1, k->g);
	mura_linear_forward(ctx, &k->fc2, (int)rows, k->g, hy->tmp);
	if (hy->dropped)
		mura_dropout_forward(ctx, sd, hy->p, &m->rng, hy->tmp, k->mask2, hy->tmp);
	mura_add_forward(ctx, sd, k->xa, hy->tmp, k->y);
}

/* hy->g_x holds the gradient of the block's output y; it leaves holding
 * that of its input x. */
static void
block_backward(struct mura_model *m, struct hybrid *hy, struct vit_block *k, const float *x, int n)
{
	struct mura_nn_ctx *ctx = &m->ctx;
	const size_t rows = (size_t)n * hy->t, sd = rows * hy->d, sr = sd * hy->mlp;
	const float *g = hy->g_x;

	if (hy->dropped) {
		mura_dropout_backward(ctx, sd, k->mask2, hy->g_x, hy->g_t, 0);
		g = hy->g_t;
	}
	mura_linear_backward(ctx, &k->fc2, (int)rows, k->g, g, hy->g_h, 0);
	if (hy->dropped)
		mura_dropout_backward(ctx, sr, k->mask1, hy->g_h, hy->g_h, 0);
	mura_gelu_backward(ctx, sr, k->h, hy->g_h, hy->g_h, 0);
	mura_linear_backward(ctx, &k->fc1, (int)rows, k->ln2, hy->g_h, hy->g_t, 0);
	mura_layernorm_backward(ctx, &k->norm2, rows, k->xa, k->mean2, k->rstd2, hy->g_t, hy->g_x, 1);

	g = hy->g_x;  /* now of xa */
	if (hy->dropped) {
		mura_dropout_backward(ctx, sd, k->mask_proj, hy->g_x, hy->g_t, 0);
		g = hy->g_t;
	}
	mura_linear_backward(ctx, &k->proj, (int)rows, k->ao, g, hy->g_ao, 0);
	mura_attention_backward(ctx, &hy->att, n, k->qkvo, k->p, hy->g_ao, hy->g_qkv, 0);
	mura_linear_backward(ctx, &k->qkv, (int)rows, k->ln1, hy->g_qkv, hy->g_t, 0);
	mura_layernorm_backward(ctx, &k->norm1, rows, x, k->mean1, k->rstd1, hy->g_t, hy->g_x, 1);
}

static void
hybrid_forward(struct mura_model *m, int n, int train)
{
	struct hybrid *hy = m->head;
	struct mura_nn_ctx *ctx = &m->ctx;
	const int d = hy->d, t = hy->t;
	struct mura_fm pm = {hy->pmap, d, n, hy->h, hy->w};
	const float *pos = hy->pos, *x = hy->x0;

	hy->dropped = train && hy->p > 0;
	mura_conv_forward(ctx, &hy->proj, &m->feat, &pm);
	mura_tokens_forward(ctx, &pm, hy->cls, hy->x0);
	if (hy->pos_r) {
		/* timm's resample_abs_pos_embed: the class position as it is, the grid resampled */
		memcpy(hy->pos_r, hy->pos, (size_t)d * sizeof *hy->pos);
		mura_resample_forward(ctx, hy->gh, hy->gw, hy->h, hy->w, d, hy->pos + d, hy->pos_r + d);
		pos = hy->pos_r;
	}
	mura_posembed_forward(ctx, n, t, d, hy->x0, pos, hy->x0);
	for (int l = 0; l < hy->depth; l++) {
		block_forward(m, hy, &hy->blk[l], x, n);
		x = hy->blk[l].y;
	}
	for (int i = 0; i < n; i++)
		memcpy(hy->cls_in + (size_t)i * d, x + (size_t)i * t * d, (size_t)d * sizeof *x);
	mura_layernorm_forward(ctx, &hy->norm, (size_t)n, hy->cls_in, hy->cls_norm, hy->cls_mean, hy->cls_rstd);
	const float *z = hy->cls_norm;
	if (hy->dropped) {
		mura_dropout_forward(ctx, (size_t)n * d, hy->p, &m->rng, hy->cls_norm, hy->cls_mask, hy->cls_drop);
		z = hy->cls_drop;
	}
	mura_linear_forward(ctx, &hy->head, n, z, m->logits);
}

static void
hybrid_backward(struct mura_model *m, int n)
{
	struct hybrid *hy = m->head;
	struct mura_nn_ctx *ctx = &m->ctx;
	const int d = hy->d, t = hy->t;
	const size_t nd = (size_t)n * d, sd = (size_t)n * t * d;
	struct mura_fm *df = m->frozen ? NULL : &m->dfeat;
	struct mura_fm gpm = {hy->g_pmap, d, n, hy->h, hy->w};

	mura_linear_backward(ctx, &hy->head, n, hy->dropped ? hy->cls_drop : hy->cls_norm, m->dlogits, hy->g_cls, 0);
	if (hy->dropped)
		mura_dropout_backward(ctx, nd, hy->cls_mask, hy->g_cls, hy->g_cls, 0);
	mura_layernorm_backward(ctx, &hy->norm, (size_t)n, hy->cls_in, hy->cls_mean, hy->cls_rstd, hy->g_cls,
	                        hy->g_cls, 0);
	memset(hy->g_x, 0, sd * sizeof *hy->g_x);
	for (int i = 0; i < n; i++)
		memcpy(hy->g_x + (size_t)i * t * d, hy->g_cls + (size_t)i * d, (size_t)d * sizeof *hy->g_x);
	net_grads_final(m, hy->norm.gw);
	for (int l = hy->depth - 1; l >= 0; l--) {
		block_backward(m, hy, &hy->blk[l], l ? hy->blk[l - 1].y : hy->x0, n);
		net_grads_final(m, hy->blk[l].norm1.gw);
	}

	if (hy->pos_r) {
		memset(hy->gpos_r, 0, (size_t)t * d * sizeof *hy->gpos_r);
		mura_posembed_backward(ctx, n, t, d, hy->g_x, hy->g_x, hy->gpos_r, 0);
		for (int c = 0; c < d; c++)
			hy->gpos[c] += hy->gpos_r[c];
		mura_resample_backward(ctx, hy->gh, hy->gw, hy->h, hy->w, d, hy->gpos_r + d, hy->gpos + d);
	} else {
		mura_posembed_backward(ctx, n, t, d, hy->g_x, hy->g_x, hy->gpos, 0);
	}
	mura_tokens_backward(ctx, hy->g_x, &gpm, hy->gcls, 0);
	if (df)
		df->n = n;
	mura_conv_backward(ctx, &hy->proj, &m->feat, &gpm, df, 0);
}

/* ---- configuration ------------------------------------------------------ */

/* The hybrid's shape checked, and its grid made from input_h/w when not given. */
int
hybrid_config_check(struct mura_model_config *c)
{
	if (c->hybrid_stage != 3 && c->hybrid_stage != 4)
		return mura_error("hybrid stage %d: the ResNet50 is cut after layer3 or layer4 (3 or 4)",
		                  c->hybrid_stage);
	if (c->vit_dim < 1 || c->vit_dim > 65536 || c->vit_depth < 1 || c->vit_depth > 1000 ||
	    c->vit_heads < 1 || c->vit_mlp < 1 || c->vit_mlp > 64)
		return mura_error("hybrid: D %d, L %d, H %d, R %d out of range", c->vit_dim, c->vit_depth,
		                  c->vit_heads, c->vit_mlp);
	if (c->vit_dim % c->vit_heads)
		return mura_error("hybrid: D %d is not a multiple of H %d (each head takes D / H values)",
		                  c->vit_dim, c->vit_heads);
	if (!c->vit_grid_h || !c->vit_grid_w) {
		c->vit_grid_h = resnet_out_size(c->input_h, c->hybrid_stage);
		c->vit_grid_w = resnet_out_size(c->input_w, c->hybrid_stage);
	}
	if (c->vit_grid_h < 1 || c->vit_grid_w < 1 || c->vit_grid_h > 4096 || c->vit_grid_w > 4096)
		return mura_error("hybrid: a position grid of %dx%d (input %dx%d)", c->vit_grid_h, c->vit_grid_w,
		                  c->input_h, c->input_w);
	return 0;
}

/* The hybrid's shape from its metadata; a file without vit_grid has the
 * grid of its input_size. */
int
hybrid_config_read(const struct mura_st_file *f, struct mura_model_config *c)
{
	static const struct {
		const char *key;
		size_t off;
		long lo, hi;
	} keys[] = {
		{"hybrid_stage", offsetof(struct mura_model_config, hybrid_stage), 3, 4},
		{"vit_dim", offsetof(struct mura_model_config, vit_dim), 1, 65536},
		{"vit_depth", offsetof(struct mura_model_config, vit_depth), 1, 1000},
		{"vit_heads", offsetof(struct mura_model_config, vit_heads), 1, 65536},
		{"vit_mlp", offsetof(struct mura_model_config, vit_mlp), 1, 64},
	};
	const char *v;
	long n;

	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		if (!(v = mura_st_meta(f, keys[i].key)))
			return mura_error("%s: a hybrid model without metadata %s", f->path, keys[i].key);
		if (mura_parse_long(v, keys[i].lo, keys[i].hi, &n) < 0)
			return mura_error_prefix("%s: metadata %s", f->path, keys[i].key);
		*(int *)((char *)c + keys[i].off) = (int)n;
	}
	c->vit_grid_h = c->vit_grid_w = 0;
	if ((v = mura_st_meta(f, "vit_grid"))) {
		int h, w, end = 0;
		if (sscanf(v, "%dx%d%n", &h, &w, &end) != 2 || v[end] || h < 1 || w < 1)
			return mura_error("%s: metadata vit_grid '%s' is not HxW", f->path, v);
		c->vit_grid_h = h, c->vit_grid_w = w;
	}
	return 1;
}

const struct net_part net_hybrid = {
	"hybrid transformer", hybrid_build, hybrid_plan, hybrid_forward, hybrid_backward, hybrid_free, NULL,
	NULL,
};
