/*
 * nn_vit_grad.c - every operation of lib/nn/vit.h: its backward against
 * central differences of its forward (tests/gradcheck.h), its forward
 * against a direct computation in double, and the results of the parallel
 * loops against one thread's.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "nn/vit.h"

/* max |a - b| over n values */
static double
maxdiff(const float *a, const float *b, size_t n)
{
	double e = 0;
	for (size_t i = 0; i < n; i++)
		e = fmax(e, fabs((double)a[i] - b[i]));
	return e;
}

/* ---- layer norm ------------------------------------------------------------ */
struct ln_op {
	struct mura_layernorm ln;
	size_t rows;
	float *x, *y, *dx, *mean, *rstd;
};

static void
ln_fwd(struct gc *t)
{
	struct ln_op *o = t->op;
	mura_layernorm_forward(&ctx, &o->ln, o->rows, o->x, o->y, o->mean, o->rstd);
}

static void
ln_bwd(struct gc *t)
{
	struct ln_op *o = t->op;
	memset(o->ln.gw, 0, (size_t)o->ln.d * sizeof(float));
	memset(o->ln.gb, 0, (size_t)o->ln.d * sizeof(float));
	mura_layernorm_backward(&ctx, &o->ln, o->rows, o->x, o->mean, o->rstd, t->dy, o->dx, 0);
}

static void
check_layernorm(void)
{
	const int d = 13;
	const size_t rows = 7, sz = rows * d;
	struct ln_op o = {{d, 1e-6f, rnd(d, 0.5f, 1.5f), zeros(d), rnd(d, -0.5f, 0.5f), zeros(d)}, rows,
	                  rnd(sz, -2, 2), zeros(sz), zeros(sz), zeros(rows), zeros(rows)};
	struct gc t = {"layernorm", ln_fwd, ln_bwd, &o, o.y, NULL, sz,
	               {{"x", o.x, o.dx, sz}, {"w", o.ln.w, o.ln.gw, d}, {"b", o.ln.b, o.ln.gb, d}},
	               3, 1e-3, 2e-3, 1000};
	gradcheck(&t);

	ln_fwd(&t);
	double err = 0;
	for (size_t r = 0; r < rows; r++) {
		double s = 0, ss = 0;
		for (int i = 0; i < d; i++)
			s += o.x[r * d + i];
		for (int i = 0; i < d; i++)
			ss += (o.x[r * d + i] - s / d) * (o.x[r * d + i] - s / d);
		for (int i = 0; i < d; i++) {
			double want = (o.x[r * d + i] - s / d) / sqrt(ss / d + 1e-6) * o.ln.w[i] + o.ln.b[i];
			err = fmax(err, fabs(o.y[r * d + i] - want));
		}
	}
	CHECK_NEAR("layernorm forward = direct computation (biased variance, eps inside)", err, 0, 1e-5);

	/* dx may alias dy */
	float *g = malloc(sz * sizeof *g);
	memcpy(g, t.dy, sz * sizeof *g);
	mura_layernorm_backward(&ctx, &o.ln, rows, o.x, o.mean, o.rstd, g, g, 0);
	CHECK("layernorm backward in place (dx = dy)", maxdiff(g, o.dx, sz) < 1e-6);
	free(g);
	free(t.dy), free(o.ln.w), free(o.ln.gw), free(o.ln.b), free(o.ln.gb);
	free(o.x), free(o.y), free(o.dx), free(o.mean), free(o.rstd);
}

/* ---- GELU and softmax ---------------------------------------------------------- */
struct ew_op {
	int softmax;
	size_t n, rows;
	int cols;
	float *x, *y, *dx;
};

static void
ew_fwd(struct gc *t)
{
	struct ew_op *o = t->op;
	if (o->softmax)
		mura_softmax_forward(&ctx, o->rows, o->cols, o->x, o->y);
	else
		mura_gelu_forward(&ctx, o->n, o->x, o->y);
}

static void
ew_bwd(struct gc *t)
{
	struct ew_op *o = t->op;
	if (o->softmax)
		mura_softmax_backward(&ctx, o->rows, o->cols, o->y, t->dy, o->dx, 0);
	else
		mura_gelu_backward(&ctx, o->n, o->x, t->dy, o->dx, 0);
}

static void
check_gelu(void)
{
	/* 70000 values: more than one thread's part, so the split runs too */
	const size_t n = 70000;
	struct ew_op o = {0, n, 0, 0, rnd(n, -4, 4), zeros(n), zeros(n)};
	struct gc t = {"gelu", ew_fwd, ew_bwd, &o, o.y, NULL, n, {{"x", o.x, o.dx, n}}, 1, 1e-2, 1e-3, 300};

	gradcheck(&t);
	ew_fwd(&t);  /* the last difference left one value moved */
	double err = 0;
	for (size_t i = 0; i < n; i++) {
		double x = o.x[i];
		err = fmax(err, fabs(o.y[i] - 0.5 * x * (1 + erf(x / sqrt(2.0)))));
	}
	CHECK_NEAR("gelu forward = x/2 (1 + erf(x / sqrt 2)) in double", err, 0, 1e-6);
	float x[3] = {1, -1, 0}, y[3];
	mura_gelu_forward(&ctx, 3, x, y);
	CHECK("gelu(1) = 0.8413447, gelu(-1) = -0.1586553 (torch.nn.GELU())",
	      fabsf(y[0] - 0.8413447f) < 1e-6f && fabsf(y[1] + 0.1586553f) < 1e-6f && y[2] == 0);
	free(t.dy), free(o.x), free(o.y), free(o.dx);
}

static void
check_softmax(void)
{
	const size_t rows = 5;
	const int cols = 9;
	const size_t n = rows * cols;
	struct ew_op o = {1, n, rows, cols, rnd(n, -3, 3), zeros(n), zeros(n)};
	struct gc t = {"softmax", ew_fwd, ew_bwd, &o, o.y, NULL, n, {{"x", o.x, o.dx, n}}, 1, 1e-3, 1e-3, 1000};

	gradcheck(&t);
	ew_fwd(&t);
	double err = 0;
	for (size_t r = 0; r < rows; r++) {
		double s = 0;
		for (int i = 0; i < cols; i++)
			s += exp(o.x[r * cols + i]);
		for (int i = 0; i < cols; i++)
			err = fmax(err, fabs(o.y[r * cols + i] - exp(o.x[r * cols + i]) / s));
	}
	CHECK_NEAR("softmax forward = exp(x) / sum exp(x) in double", err, 0, 1e-6);
	/* large inputs: the max is subtracted, nothing overflows */
	float big[4] = {1000, 1000, -1000, 999}, out[4];
	mura_softmax_forward(&ctx, 1, 4, big, out);
	CHECK("softmax of +-1000 is finite and sums to 1",
	      isfinite(out[0]) && fabsf(out[0] + out[1] + out[2] + out[3] - 1) < 1e-6f && out[2] == 0);
	free(t.dy), free(o.x), free(o.y), free(o.dx);
}

/* ---- batched matrix products ------------------------------------------------------- */
struct bmm_op {
	int batch, ta, tb, m, n, k;
	float alpha;
	struct mura_mat a, b, c, da, db;
};

static void
bmm_fwd(struct gc *t)
{
	struct bmm_op *o = t->op;
	mura_bmm_forward(&ctx, o->batch, o->ta, o->tb, o->m, o->n, o->k, o->alpha, o->a, o->b, 0.0f, o->c);
}

static void
bmm_bwd(struct gc *t)
{
	struct bmm_op *o = t->op;
	struct mura_mat dc = o->c;
	dc.d = t->dy;
	mura_bmm_backward(&ctx, o->batch, o->ta, o->tb, o->m, o->n, o->k, o->alpha, o->a, o->b, dc, o->da,
	                  o->db, 0);
}

/* Element (r, c) of op(M_b) for a matrix stored rows x cols (ld apart), transposed or not. */
static float
at(const struct mura_mat *mm, int b, int trans, int r, int c)
{
	return trans ? mm->d[b * mm->stride + (size_t)c * mm->ld + r] : mm->d[b * mm->stride + (size_t)r * mm->ld + c];
}

static void
check_bmm(int batch, int ta, int tb)
{
	const int m = 4, n = 5, k = 3, pad = 2;
	struct bmm_op o = {batch, ta, tb, m, n, k, 0.7f, {0}, {0}, {0}, {0}, {0}};
	/* stored shapes: A m x k (k x m transposed), B k x n (n x k), rows padded */
	int ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
	size_t as = (size_t)ar * (ac + pad), bs = (size_t)br * (bc + pad), cs = (size_t)m * (n + pad);
	o.a = (struct mura_mat){rnd(as * batch, -1, 1), ac + pad, as};
	o.b = (struct mura_mat){rnd(bs * batch, -1, 1), bc + pad, bs};
	o.c = (struct mura_mat){zeros(cs * batch), n + pad, cs};
	o.da = (struct mura_mat){zeros(as * batch), ac + pad, as};
	o.db = (struct mura_mat){zeros(bs * batch), bc + pad, bs};
	char name[100];
	snprintf(name, sizeof name, "bmm batch %d %s%s", batch, ta ? "A^T" : "A", tb ? " B^T" : " B");
	struct gc t = {name, bmm_fwd, bmm_bwd, &o, o.c.d, NULL, cs * batch,
	               {{"A", o.a.d, o.da.d, as * batch}, {"B", o.b.d, o.db.d, bs * batch}}, 2, 0.25, 1e-5, 1000};
	/* the padding of C is never written: its gradient is taken as 0 */
	t.dy = rnd(cs * batch, -1, 1);
	for (int b = 0; b < batch; b++)
		for (int r = 0; r < m; r++)
			for (int c = n; c < n + pad; c++)
				t.dy[b * cs + (size_t)r * (n + pad) + c] = 0;
	gradcheck(&t);

	bmm_fwd(&t);
	double err = 0;
	for (int b = 0; b < batch; b++)
		for (int r = 0; r < m; r++)
			for (int c = 0; c < n; c++) {
				double s = 0;
				for (int i = 0; i < k; i++)
					s += (double)at(&o.a, b, ta, r, i) * at(&o.b, b, tb, i, c);
				err = fmax(err, fabs(o.c.d[b * cs + (size_t)r * (n + pad) + c] - o.alpha * s));
			}
	snprintf(name, sizeof name, "bmm batch %d %s%s forward = direct sum", batch, ta ? "A^T" : "A",
	         tb ? " B^T" : " B");
	CHECK_NEAR(name, err, 0, 1e-6);
	free(t.dy), free(o.a.d), free(o.b.d), free(o.c.d), free(o.da.d), free(o.db.d);
}

/* ---- attention ----------------------------------------------------------------------- */
struct att_op {
	struct mura_attention a;
	int n;
	float *qkv, *p, *o, *dqkv;
};

static void
att_fwd(struct gc *t)
{
	struct att_op *o = t->op;
	mura_attention_forward(&ctx, &o->a, o->n, o->qkv, o->p, o->o);
}

static void
att_bwd(struct gc *t)
{
	struct att_op *o = t->op;
	mura_attention_backward(&ctx, &o->a, o->n, o->qkv, o->p, t->dy, o->dqkv, 0);
}

/* The attention of image i, head h, in double, straight from its definition. */
static double
att_naive_err(const struct att_op *o)
{
	const int H = o->a.heads, T = o->a.tokens, D = o->a.dim, dh = D / H;
	double err = 0, s[64];

	for (int i = 0; i < o->n; i++)
		for (int h = 0; h < H; h++)
			for (int r = 0; r < T; r++) {
				const float *base = o->qkv + (size_t)i * T * 3 * D;
				double mx = -DBL_MAX, sum = 0;
				for (int c = 0; c < T; c++) {
					s[c] = 0;
					for (int j = 0; j < dh; j++)
						s[c] += (double)base[r * 3 * D + h * dh + j] * base[c * 3 * D + D + h * dh + j];
					s[c] /= sqrt(dh);
					mx = fmax(mx, s[c]);
				}
				for (int c = 0; c < T; c++)
					sum += s[c] = exp(s[c] - mx);
				for (int j = 0; j < dh; j++) {
					double v = 0;
					for (int c = 0; c < T; c++)
						v += s[c] / sum * base[c * 3 * D + 2 * D + h * dh + j];
					err = fmax(err, fabs(o->o[((size_t)i * T + r) * D + h * dh + j] - v));
				}
			}
	return err;
}

static void
check_attention(int n, int heads, int tokens, int dim, int keep_p)
{
	struct att_op o = {{heads, tokens, dim}, n, NULL, NULL, NULL, NULL};
	const size_t nq = (size_t)n * tokens * 3 * dim, no = (size_t)n * tokens * dim;
	char name[100];

	need_scratch(mura_attention_scratch(&o.a, mura_threads_size(ctx.threads)));
	o.qkv = rnd(nq, -1.5f, 1.5f);
	o.p = zeros((size_t)n * heads * tokens * tokens);
	o.o = zeros(no);
	o.dqkv = zeros(nq);
	snprintf(name, sizeof name, "attention n %d H %d T %d D %d", n, heads, tokens, dim);
	struct gc t = {name, att_fwd, att_bwd, &o, o.o, NULL, no, {{"qkv", o.qkv, o.dqkv, nq}}, 1, 1e-2, 2e-3, 600};
	gradcheck(&t);

	att_fwd(&t);
	snprintf(name, sizeof name, "attention n %d H %d T %d D %d forward = softmax(Q K^T / sqrt(Dh)) V", n,
	         heads, tokens, dim);
	CHECK_NEAR(name, att_naive_err(&o), 0, 1e-5);
	if (keep_p) {
		/* without p (evaluation), the same output */
		float *o2 = zeros(no);
		mura_attention_forward(&ctx, &o.a, n, o.qkv, NULL, o2);
		CHECK("attention without kept probabilities gives the same output", maxdiff(o2, o.o, no) == 0);
		/* acc adds the gradient to what dqkv held */
		float *before = malloc(nq * sizeof *before);
		memcpy(before, o.dqkv, nq * sizeof *before);
		mura_attention_backward(&ctx, &o.a, n, o.qkv, o.p, t.dy, o.dqkv, 1);
		for (size_t i = 0; i < nq; i++)
			before[i] *= 2;
		CHECK("attention backward accumulates into dqkv", maxdiff(before, o.dqkv, nq) < 1e-5);
		free(before), free(o2);
	}
	free(t.dy), free(o.qkv), free(o.p), free(o.o), free(o.dqkv);
}

/* ---- tokens and position embeddings ---------------------------------------------------- */
struct tok_op {
	int kind;  /* 0 tokens, 1 position embedding, 2 resampling */
	struct mura_fm f, df;
	int n, t, d, gh, gw, h, w;
	float *cls, *dcls, *x, *dx, *pos, *dpos, *y;
};

static void
tok_fwd(struct gc *t)
{
	struct tok_op *o = t->op;
	switch (o->kind) {
	case 0: mura_tokens_forward(&ctx, &o->f, o->cls, o->y); break;
	case 1: mura_posembed_forward(&ctx, o->n, o->t, o->d, o->x, o->pos, o->y); break;
	case 2: mura_resample_forward(&ctx, o->gh, o->gw, o->h, o->w, o->d, o->pos, o->y); break;
	}
}

static void
tok_bwd(struct gc *t)
{
	struct tok_op *o = t->op;
	switch (o->kind) {
	case 0:
		memset(o->dcls, 0, (size_t)o->f.c * sizeof(float));
		mura_tokens_backward(&ctx, t->dy, &o->df, o->dcls, 0);
		break;
	case 1:
		memset(o->dpos, 0, (size_t)o->t * o->d * sizeof(float));
		mura_posembed_backward(&ctx, o->n, o->t, o->d, t->dy, o->dx, o->dpos, 0);
		break;
	case 2:
		memset(o->dpos, 0, (size_t)o->gh * o->gw * o->d * sizeof(float));
		mura_resample_backward(&ctx, o->gh, o->gw, o->h, o->w, o->d, t->dy, o->dpos);
		break;
	}
}

static void
check_tokens(void)
{
	const int c = 4, n = 2, h = 2, w = 3, T = h * w + 1;
	const size_t sz = (size_t)c * n * h * w, ny = (size_t)n * T * c;
	struct tok_op o = {0};

	o.f = (struct mura_fm){rnd(sz, -1, 1), c, n, h, w};
	o.df = (struct mura_fm){zeros(sz), c, n, h, w};
	o.cls = rnd(c, -1, 1);
	o.dcls = zeros(c);
	o.y = zeros(ny);
	struct gc t = {"tokens", tok_fwd, tok_bwd, &o, o.y, NULL, ny,
	               {{"f", o.f.d, o.df.d, sz}, {"cls", o.cls, o.dcls, c}}, 2, 0.25, 1e-5, 1000};
	gradcheck(&t);
	tok_fwd(&t);
	/* image 1, position (1, 2) = token 1 + 5, channel 3 */
	CHECK("tokens: [CLS] first, then the map's positions in raster order, channels last",
	      o.y[(size_t)1 * T * c] == o.cls[0] && o.y[((size_t)1 * T + 6) * c + 3] == o.f.d[((size_t)3 * n + 1) * h * w + 5]);
	free(t.dy), free(o.f.d), free(o.df.d), free(o.cls), free(o.dcls), free(o.y);
}

static void
check_posembed(void)
{
	struct tok_op o = {.kind = 1};
	o.n = 3, o.t = 5, o.d = 4;
	const size_t np = (size_t)o.t * o.d, nx = o.n * np;
	o.x = rnd(nx, -1, 1), o.dx = zeros(nx), o.pos = rnd(np, -1, 1), o.dpos = zeros(np), o.y = zeros(nx);
	struct gc t = {"position embedding", tok_fwd, tok_bwd, &o, o.y, NULL, nx,
	               {{"x", o.x, o.dx, nx}, {"pos", o.pos, o.dpos, np}}, 2, 0.25, 1e-5, 1000};
	gradcheck(&t);
	free(t.dy), free(o.x), free(o.dx), free(o.pos), free(o.dpos), free(o.y);
}

static void
check_resample(int gh, int gw, int h, int w)
{
	struct tok_op o = {.kind = 2};
	char name[100];

	o.gh = gh, o.gw = gw, o.h = h, o.w = w, o.d = 3;
	const size_t ns = (size_t)gh * gw * o.d, nd = (size_t)h * w * o.d;
	o.pos = rnd(ns, -1, 1), o.dpos = zeros(ns), o.y = zeros(nd);
	snprintf(name, sizeof name, "resample %dx%d -> %dx%d", gh, gw, h, w);
	struct gc t = {name, tok_fwd, tok_bwd, &o, o.y, NULL, nd, {{"src", o.pos, o.dpos, ns}}, 1, 0.25, 1e-5, 1000};
	gradcheck(&t);
	free(t.dy), free(o.pos), free(o.dpos), free(o.y);
}

static void
check_resample_values(void)
{
	/* one axis, 2 -> 4 (F.interpolate([0, 1], size=4, mode='linear')):
	 * 0, 0.25, 0.75, 1; and 4 -> 2: 0.5 and 2.5 of [0, 1, 2, 3] */
	float up[2] = {0, 1}, out[4], down[4] = {0, 1, 2, 3}, half[2];
	mura_resample_forward(&ctx, 1, 2, 1, 4, 1, up, out);
	mura_resample_forward(&ctx, 1, 4, 1, 2, 1, down, half);
	CHECK("resample 2 -> 4 gives 0, 0.25, 0.75, 1 (PyTorch's align_corners=False)",
	      out[0] == 0 && out[1] == 0.25f && out[2] == 0.75f && out[3] == 1);
	CHECK("resample 4 -> 2 gives 0.5, 2.5", half[0] == 0.5f && half[1] == 2.5f);
	float *src = rnd(5 * 6 * 7, -1, 1), *dst = zeros(5 * 6 * 7);
	mura_resample_forward(&ctx, 5, 6, 5, 6, 7, src, dst);
	CHECK("resample to the same size is the identity", maxdiff(src, dst, 5 * 6 * 7) == 0);
	free(src), free(dst);
}

/* ---- threads --------------------------------------------------------------------------- */
/* The parallel loops give the same bits on 1 and 3 threads. */
static void
check_threads(void)
{
	const int d = 96;
	const size_t rows = 2000, sz = rows * d;
	struct mura_layernorm ln = {d, 1e-6f, rnd(d, 0.5f, 1.5f), zeros(d), rnd(d, -1, 1), zeros(d)};
	float *x = rnd(sz, -2, 2), *dy = rnd(sz, -1, 1);
	float *y[2], *dx[2], *gw[2], *mean = zeros(rows), *rstd = zeros(rows);
	struct mura_attention a = {4, 37, 32};
	const size_t nq = (size_t)3 * a.tokens * 3 * a.dim, no = (size_t)3 * a.tokens * a.dim;
	float *qkv = rnd(nq, -1, 1), *dout = rnd(no, -1, 1), *o[2], *dq[2];
	float *p = zeros((size_t)3 * a.heads * a.tokens * a.tokens);

	for (int k = 0; k < 2; k++) {
		int nt = k ? 3 : 1;
		struct mura_nn_ctx c = {0};
		c.threads = mura_threads_create(nt);
		c.scratch_n = mura_attention_scratch(&a, nt);
		c.scratch = malloc(c.scratch_n * sizeof(float));
		y[k] = zeros(sz), dx[k] = zeros(sz), gw[k] = zeros(d), o[k] = zeros(no), dq[k] = zeros(nq);
		memset(ln.gw, 0, d * sizeof(float));
		mura_layernorm_forward(&c, &ln, rows, x, y[k], mean, rstd);
		mura_layernorm_backward(&c, &ln, rows, x, mean, rstd, dy, dx[k], 0);
		memcpy(gw[k], ln.gw, d * sizeof(float));
		mura_attention_forward(&c, &a, 3, qkv, p, o[k]);
		mura_attention_backward(&c, &a, 3, qkv, p, dout, dq[k], 0);
		mura_threads_free(c.threads);
		free(c.scratch);
	}
	CHECK("layernorm forward: 1 and 3 threads agree bit for bit", maxdiff(y[0], y[1], sz) == 0);
	CHECK("layernorm backward: 1 and 3 threads agree bit for bit",
	      maxdiff(dx[0], dx[1], sz) == 0 && maxdiff(gw[0], gw[1], d) == 0);
	CHECK("attention: 1 and 3 threads agree bit for bit",
	      maxdiff(o[0], o[1], no) == 0 && maxdiff(dq[0], dq[1], nq) == 0);
	for (int k = 0; k < 2; k++)
		free(y[k]), free(dx[k]), free(gw[k]), free(o[k]), free(dq[k]);
	free(ln.w), free(ln.gw), free(ln.b), free(ln.gb), free(x), free(dy), free(mean), free(rstd);
	free(qkv), free(dout), free(p);
}

int
main(void)
{
	mura_rng_seed(&rng, 20240607);
	ctx.threads = mura_threads_create(2);
	if (!ctx.threads)
		return 1;

	check_layernorm();
	check_gelu();
	check_softmax();
	for (int ta = 0; ta < 2; ta++)
		for (int tb = 0; tb < 2; tb++) {
			check_bmm(3, ta, tb);
			check_bmm(1, ta, tb);
		}
	check_attention(2, 2, 5, 8, 1);
	check_attention(1, 4, 11, 16, 0);
	check_tokens();
	check_posembed();
	check_resample(3, 4, 5, 2);
	check_resample(4, 4, 7, 9);
	check_resample(6, 5, 3, 3);
	check_resample_values();
	check_threads();

	mura_threads_free(ctx.threads);
	free(ctx.scratch);
	return test_status();
}
