/*
 * vit.c - the Vision Transformer's operations of vit.h, forward and
 * backward side by side: layer norm, GELU, softmax, batched matrix
 * products, multi-head self-attention, tokens with a [CLS] token, and
 * position embeddings with their bilinear resampling.
 *
 * Every loop is split between the pool's threads in parts of at least about
 * MURA_EW_GRAIN values (ops.h).  Sums that a part's result depends on (a
 * row's mean, a parameter's gradient) are taken in one fixed order whatever
 * the number of threads, so the results do not depend on it.
 */
#include <math.h>
#include <string.h>

#include "vit.h"

#define SQRT1_2 0.70710678118654752f  /* 1 / sqrt 2 */

/* Rows per part for rows of `cols` values. */
static size_t
row_grain(size_t cols)
{
	return cols >= MURA_EW_GRAIN ? 1 : MURA_EW_GRAIN / (cols ? cols : 1);
}

static void
put(float *dx, size_t i, float g, int acc)
{
	dx[i] = acc ? dx[i] + g : g;
}

/* ---- layer normalisation ---------------------------------------------------
 * Forward, per row of d values: mu = mean(x), var = mean((x - mu)^2),
 * r = 1 / sqrt(var + eps), xh = (x - mu) r, y = xh w + b.
 * Backward: with g = dy w (the gradient of xh),
 *   dx = r (g - mean(g) - xh mean(g xh)),
 * since dxh_j/dx_i = r (delta_ij - 1/d - xh_i xh_j / d); and over all rows
 * dw += sum dy xh, db += sum dy.  The parameters' sums run over columns
 * (each part owns some columns and walks every row), so no two threads add
 * into the same value.
 */
struct ln_job {
	const struct mura_layernorm *ln;
	size_t rows;
	const float *x, *dy;
	float *y, *mean, *rstd, *dx;
	int acc;
};

static void
ln_fwd_part(void *v, size_t lo, size_t hi)
{
	const struct ln_job *j = v;
	const int d = j->ln->d;

	for (size_t r = lo; r < hi; r++) {
		const float *x = j->x + r * d;
		float *y = j->y + r * d;
		double s = 0, ss = 0;
		for (int i = 0; i < d; i++)
			s += x[i];
		const double mu = s / d;
		for (int i = 0; i < d; i++)
			ss += (x[i] - mu) * (x[i] - mu);
		const float m = (float)mu, rs = (float)(1.0 / sqrt(ss / d + j->ln->eps));
		if (j->mean)
			j->mean[r] = m, j->rstd[r] = rs;
		for (int i = 0; i < d; i++)
			y[i] = (x[i] - m) * rs * j->ln->w[i] + j->ln->b[i];
	}
}

void
mura_layernorm_forward(struct mura_nn_ctx *ctx, const struct mura_layernorm *ln, size_t rows,
                       const float *x, float *y, float *mean, float *rstd)
{
	struct ln_job j = {ln, rows, x, NULL, y, mean, rstd, NULL, 0};

	mura_nn_for(ctx, MURA_PROF_ELEMENTWISE, rows, row_grain((size_t)ln->d), ln_fwd_part, &j);
}

static void
ln_bwd_part(void *v, size_t lo, size_t hi)
{
	const struct ln_job *j = v;
	const int d = j->ln->d;
	const float *w = j->ln->w;

	for (size_t r = lo; r < hi; r++) {
		const float *x = j->x + r * d, *dy = j->dy + r * d;
		float *dx = j->dx + r * d;
		const float m = j->mean[r], rs = j->rstd[r];
		double sg = 0, sgx = 0;
		for (int i = 0; i < d; i++) {
			float g = dy[i] * w[i];
			sg += g;
			sgx += g * ((x[i] - m) * rs);
		}
		const float mg = (float)(sg / d), mgx = (float)(sgx / d);
		for (int i = 0; i < d; i++) {
			float xh = (x[i] - m) * rs;
			put(dx, (size_t)i, rs * (dy[i] * w[i] - mg - xh * mgx), j->acc);
		}
	}
}

/* Columns [lo, hi) of dw and db, over every row. */
static void
ln_param_part(void *v, size_t lo, size_t hi)
{
	const struct ln_job *j = v;
	const size_t d = (size_t)j->ln->d, rows = j->rows;
	double gw[64], gb[64];

	for (size_t c0 = lo; c0 < hi; c0 += 64) {
		size_t c1 = c0 + 64 < hi ? c0 + 64 : hi;
		memset(gw, 0, sizeof gw);
		memset(gb, 0, sizeof gb);
		for (size_t r = 0; r < rows; r++) {
			const float *x = j->x + r * d, *dy = j->dy + r * d;
			const float m = j->mean[r], rs = j->rstd[r];
			for (size_t c = c0; c < c1; c++) {
				gw[c - c0] += dy[c] * ((x[c] - m) * rs);
				gb[c - c0] += dy[c];
			}
		}
		for (size_t c = c0; c < c1; c++) {
			j->ln->gw[c] += (float)gw[c - c0];
			j->ln->gb[c] += (float)gb[c - c0];
		}
	}
}

void
mura_layernorm_backward(struct mura_nn_ctx *ctx, const struct mura_layernorm *ln, size_t rows,
                        const float *x, const float *mean, const float *rstd,
                        const float *dy, float *dx, int acc)
{
	struct ln_job j = {ln, rows, x, dy, NULL, (float *)mean, (float *)rstd, dx, acc};
	const double t0 = mura_prof_start(ctx);

	/* The parameters first: dx may overwrite dy. */
	if (ln->gw)
		mura_threads_for(ctx->threads, (size_t)ln->d, row_grain(rows), ln_param_part, &j);
	if (dx)
		mura_threads_for(ctx->threads, rows, row_grain((size_t)ln->d), ln_bwd_part, &j);
	mura_prof_stop(ctx, MURA_PROF_ELEMENTWISE, t0, 0);
}

/* ---- GELU ------------------------------------------------------------------
 * y = x Phi(x), Phi the standard normal distribution function,
 * Phi(x) = (1 + erf(x / sqrt 2)) / 2; dy/dx = Phi(x) + x phi(x), with
 * phi(x) = exp(-x^2 / 2) / sqrt(2 pi) its density.  The job's a is x, b is dy.
 */
static void
gelu_fwd_part(void *v, size_t lo, size_t hi)
{
	const struct mura_ew_job *j = v;

	for (size_t i = lo; i < hi; i++) {
		float x = j->a[i];
		j->y[i] = 0.5f * x * (1.0f + erff(x * SQRT1_2));
	}
}

void
mura_gelu_forward(struct mura_nn_ctx *ctx, size_t n, const float *x, float *y)
{
	struct mura_ew_job j = {x, NULL, y, 0};

	mura_nn_for(ctx, MURA_PROF_ELEMENTWISE, n, MURA_EW_GRAIN / 8, gelu_fwd_part, &j);
}

static void
gelu_bwd_part(void *v, size_t lo, size_t hi)
{
	const struct mura_ew_job *j = v;
	const float inv_sqrt_2pi = 0.3989422804014327f;

	for (size_t i = lo; i < hi; i++) {
		float x = j->a[i];
		float d = 0.5f * (1.0f + erff(x * SQRT1_2)) + x * inv_sqrt_2pi * expf(-0.5f * x * x);
		put(j->y, i, j->b[i] * d, j->acc);
	}
}

void
mura_gelu_backward(struct mura_nn_ctx *ctx, size_t n, const float *x, const float *dy, float *dx,
                   int acc)
{
	struct mura_ew_job j = {x, dy, dx, acc};

	mura_nn_for(ctx, MURA_PROF_ELEMENTWISE, n, MURA_EW_GRAIN / 8, gelu_bwd_part, &j);
}

/* ---- softmax ----------------------------------------------------------------
 * y_i = exp(x_i - max x) / sum_k exp(x_k - max x) (the max keeps exp from
 * overflowing and changes nothing).  dy_i/dx_j = y_i (delta_ij - y_j), so
 * dx_j = y_j (dy_j - sum_i dy_i y_i).  The row kernels serve the attention
 * too.
 */
static void
softmax_row(int cols, const float *x, float *y)
{
	float mx = x[0], s = 0;

	for (int i = 1; i < cols; i++)
		mx = x[i] > mx ? x[i] : mx;
	for (int i = 0; i < cols; i++) {
		y[i] = expf(x[i] - mx);
		s += y[i];
	}
	const float inv = 1.0f / s;
	for (int i = 0; i < cols; i++)
		y[i] *= inv;
}

static void
softmax_row_backward(int cols, const float *y, const float *dy, float *dx, int acc)
{
	float s = 0;

	for (int i = 0; i < cols; i++)
		s += dy[i] * y[i];
	for (int i = 0; i < cols; i++)
		put(dx, (size_t)i, y[i] * (dy[i] - s), acc);
}

struct sm_job {
	int cols;
	const float *x, *dy;
	float *y;
	int acc;
};

static void
softmax_fwd_part(void *v, size_t lo, size_t hi)
{
	const struct sm_job *j = v;

	for (size_t r = lo; r < hi; r++)
		softmax_row(j->cols, j->x + r * j->cols, j->y + r * j->cols);
}

void
mura_softmax_forward(struct mura_nn_ctx *ctx, size_t rows, int cols, const float *x, float *y)
{
	struct sm_job j = {cols, x, NULL, y, 0};

	mura_nn_for(ctx, MURA_PROF_ELEMENTWISE, rows, row_grain((size_t)cols), softmax_fwd_part, &j);
}

static void
softmax_bwd_part(void *v, size_t lo, size_t hi)
{
	const struct sm_job *j = v;
	const size_t c = (size_t)j->cols;

	for (size_t r = lo; r < hi; r++)
		softmax_row_backward(j->cols, j->x + r * c, j->dy + r * c, j->y + r * c, j->acc);
}

void
mura_softmax_backward(struct mura_nn_ctx *ctx, size_t rows, int cols, const float *y,
                      const float *dy, float *dx, int acc)
{
	struct sm_job j = {cols, y, dy, dx, acc};

	mura_nn_for(ctx, MURA_PROF_ELEMENTWISE, rows, row_grain((size_t)cols), softmax_bwd_part, &j);
}

/* ---- batched matrix products -------------------------------------------------
 * With A' = op(A) (m x k) and B' = op(B) (k x n), C = alpha A' B' gives
 *   dA' = alpha dC B'^T,  dB' = alpha A'^T dC,
 * and a transposed operand takes the transpose of its gradient:
 *   ta = 0: dA = alpha dC op(B)^T           (m x k)
 *   ta = 1: dA = alpha op(B) dC^T           (k x m)
 *   tb = 0: dB = alpha op(A)^T dC           (k x n)
 *   tb = 1: dB = alpha dC^T op(A)           (n x k)
 * each one more product of the same kind.  A batch of at least as many
 * products as threads is split between them (each product on one thread);
 * a smaller one runs its products in turn, each split by mura_sgemm.
 */
struct gemm {
	int ta, tb, m, n, k;
	float alpha, beta;
	struct mura_mat a, b, c;
};

struct bmm_job {
	struct gemm g[2];
	int ng, batch;
	int bf16;   /* ctx->bf16 */
};

static void
gemm_one(int bf16, struct mura_threads *p, const struct gemm *g, int i)
{
	mura_gemm(bf16, p, g->ta, g->tb, g->m, g->n, g->k, g->alpha, g->a.d + (size_t)i * g->a.stride, g->a.ld,
	           g->b.d + (size_t)i * g->b.stride, g->b.ld, g->beta, g->c.d + (size_t)i * g->c.stride,
	           g->c.ld);
}

static void
bmm_part(void *v, int t, int nt)
{
	const struct bmm_job *j = v;
	size_t lo, hi;

	mura_threads_share((size_t)j->batch, t, nt, 1, &lo, &hi);
	for (size_t i = lo; i < hi; i++)
		for (int k = 0; k < j->ng; k++)
			gemm_one(j->bf16, NULL, &j->g[k], (int)i);
}

static void
bmm_run(struct mura_nn_ctx *ctx, struct bmm_job *j)
{
	const double t0 = mura_prof_start(ctx);
	double flop = 0;

	for (int k = 0; k < j->ng; k++)
		flop += 2.0 * j->batch * j->g[k].m * j->g[k].n * j->g[k].k;
	if (j->batch >= mura_threads_size(ctx->threads))
		mura_threads_run(ctx->threads, bmm_part, j);
	else
		for (int i = 0; i < j->batch; i++)
			for (int k = 0; k < j->ng; k++)
				gemm_one(j->bf16, ctx->threads, &j->g[k], i);
	mura_prof_stop(ctx, MURA_PROF_ATTENTION, t0, flop);
}

void
mura_bmm_forward(struct mura_nn_ctx *ctx, int batch, int ta, int tb, int m, int n, int k,
                 float alpha, struct mura_mat a, struct mura_mat b, float beta, struct mura_mat c)
{
	struct bmm_job j = {{{ta, tb, m, n, k, alpha, beta, a, b, c}}, 1, batch, ctx->bf16};

	bmm_run(ctx, &j);
}

void
mura_bmm_backward(struct mura_nn_ctx *ctx, int batch, int ta, int tb, int m, int n, int k,
                  float alpha, struct mura_mat a, struct mura_mat b, struct mura_mat dc,
                  struct mura_mat da, struct mura_mat db, int acc)
{
	struct bmm_job j = {.batch = batch, .bf16 = ctx->bf16};
	const float beta = acc ? 1.0f : 0.0f;

	if (da.d)
		j.g[j.ng++] = ta ? (struct gemm){tb, 1, k, m, n, alpha, beta, b, dc, da}
		                 : (struct gemm){0, !tb, m, k, n, alpha, beta, dc, b, da};
	if (db.d)
		j.g[j.ng++] = tb ? (struct gemm){1, ta, n, k, m, alpha, beta, dc, a, db}
		                 : (struct gemm){!ta, 0, k, n, m, alpha, beta, a, dc, db};
	bmm_run(ctx, &j);
}

/* ---- multi-head self-attention ------------------------------------------------
 * Per image and head, with Q, K, V the head's T x Dh blocks of qkv (rows 3D
 * apart) and s = 1 / sqrt(Dh):
 *   S = s Q K^T,  P = softmax(S) (along rows),  O = P V.
 * Backward, from dO:
 *   dP = dO V^T,  dV = P^T dO,
 *   dS = P * (dP - rowsum(dP * P))          (softmax, elementwise *),
 *   dQ = s dS K,  dK = s dS^T Q.
 * Fused: one (image, head) pair is one thread's job from start to end, its
 * products single-threaded, its S and P one T x T block (in p, or in the
 * thread's scratch) and dP another; different heads write different
 * columns of o and dqkv, so pairs never share an output.
 */
struct att_job {
	const struct mura_attention *a;
	int n;
	const float *qkv, *dout;
	float *p, *o, *dqkv, *scratch;
	int acc;
	int bf16;   /* ctx->bf16: the products' precision (softmax stays fp32) */
};

static void
att_fwd_part(void *v, int t, int nt)
{
	const struct att_job *j = v;
	const int H = j->a->heads, T = j->a->tokens, D = j->a->dim, dh = D / H;
	const size_t tt = (size_t)T * T;
	const float scale = 1.0f / sqrtf((float)dh);
	size_t lo, hi;

	mura_threads_share((size_t)j->n * H, t, nt, 1, &lo, &hi);
	for (size_t pair = lo; pair < hi; pair++) {
		const size_t i = pair / H, h = pair % H;
		const float *q = j->qkv + i * T * 3 * D + h * dh, *k = q + D, *vv = q + 2 * D;
		float *p = j->p ? j->p + pair * tt : j->scratch + (size_t)t * tt;
		mura_gemm(j->bf16, NULL, 0, 1, T, T, dh, scale, q, 3 * D, k, 3 * D, 0.0f, p, T);
		for (int r = 0; r < T; r++)
			softmax_row(T, p + (size_t)r * T, p + (size_t)r * T);
		mura_gemm(j->bf16, NULL, 0, 0, T, dh, T, 1.0f, p, T, vv, 3 * D, 0.0f, j->o + i * T * D + h * dh, D);
	}
}

size_t
mura_attention_scratch(const struct mura_attention *a, int nthreads)
{
	return (size_t)nthreads * a->tokens * a->tokens;
}

void
mura_attention_forward(struct mura_nn_ctx *ctx, const struct mura_attention *a, int n,
                       const float *qkv, float *p, float *o)
{
	struct att_job j = {a, n, qkv, NULL, p, o, NULL, ctx->scratch, 0, ctx->bf16};
	const double t0 = mura_prof_start(ctx);
	const double T = a->tokens;

	mura_threads_run(ctx->threads, att_fwd_part, &j);
	mura_prof_stop(ctx, MURA_PROF_ATTENTION, t0, 4.0 * n * T * T * a->dim);
}

static void
att_bwd_part(void *v, int t, int nt)
{
	const struct att_job *j = v;
	const int H = j->a->heads, T = j->a->tokens, D = j->a->dim, dh = D / H;
	const size_t tt = (size_t)T * T;
	const float scale = 1.0f / sqrtf((float)dh), beta = j->acc ? 1.0f : 0.0f;
	float *dp = j->scratch + (size_t)t * tt;
	size_t lo, hi;

	mura_threads_share((size_t)j->n * H, t, nt, 1, &lo, &hi);
	for (size_t pair = lo; pair < hi; pair++) {
		const size_t i = pair / H, h = pair % H;
		const size_t off = i * T * 3 * D + h * dh;
		const float *q = j->qkv + off, *k = q + D, *vv = q + 2 * D;
		float *dq = j->dqkv + off, *dk = dq + D, *dv = dq + 2 * D;
		const float *p = j->p + pair * tt, *dout = j->dout + i * T * D + h * dh;
		mura_gemm(j->bf16, NULL, 0, 1, T, T, dh, 1.0f, dout, D, vv, 3 * D, 0.0f, dp, T);
		mura_gemm(j->bf16, NULL, 1, 0, T, dh, T, 1.0f, p, T, dout, D, beta, dv, 3 * D);
		for (int r = 0; r < T; r++)
			softmax_row_backward(T, p + (size_t)r * T, dp + (size_t)r * T, dp + (size_t)r * T, 0);
		mura_gemm(j->bf16, NULL, 0, 0, T, dh, T, scale, dp, T, k, 3 * D, beta, dq, 3 * D);
		mura_gemm(j->bf16, NULL, 1, 0, T, dh, T, scale, dp, T, q, 3 * D, beta, dk, 3 * D);
	}
}

void
mura_attention_backward(struct mura_nn_ctx *ctx, const struct mura_attention *a, int n,
                        const float *qkv, const float *p, const float *dout, float *dqkv, int acc)
{
	struct att_job j = {a, n, qkv, dout, (float *)p, NULL, dqkv, ctx->scratch, acc, ctx->bf16};
	const double t0 = mura_prof_start(ctx);
	const double T = a->tokens;

	mura_threads_run(ctx->threads, att_bwd_part, &j);
	mura_prof_stop(ctx, MURA_PROF_ATTENTION, t0, 8.0 * n * T * T * a->dim);
}

/* ---- tokens ---------------------------------------------------------------------- */
struct tok_job {
	const struct mura_fm *f;
	const float *src;
	float *dst;
	int acc;
};

/* Rows [lo, hi) of the n * (1 + hw) token rows; row 0 of an image is skipped. */
static void
tok_fwd_part(void *v, size_t lo, size_t hi)
{
	const struct tok_job *j = v;
	const struct mura_fm *f = j->f;
	const size_t hw = (size_t)f->h * f->w, T = hw + 1, plane = mura_fm_plane(f);

	for (size_t r = lo; r < hi; r++) {
		size_t i = r / T, t = r % T;
		float *y = j->dst + r * f->c;
		if (t == 0)
			continue;
		const float *x = j->src + i * hw + (t - 1);
		for (int c = 0; c < f->c; c++)
			y[c] = x[(size_t)c * plane];
	}
}

void
mura_tokens_forward(struct mura_nn_ctx *ctx, const struct mura_fm *f, const float *cls, float *y)
{
	struct tok_job j = {f, f->d, y, 0};
	const size_t T = (size_t)f->h * f->w + 1;
	for (int i = 0; i < f->n; i++)
		memcpy(y + (size_t)i * T * f->c, cls, (size_t)f->c * sizeof *cls);
	mura_nn_for(ctx, MURA_PROF_ELEMENTWISE, (size_t)f->n * T, row_grain((size_t)f->c), tok_fwd_part, &j);
}

/* Channels [lo, hi) of df from the token rows. */
static void
tok_bwd_part(void *v, size_t lo, size_t hi)
{
	const struct tok_job *j = v;
	const struct mura_fm *f = j->f;
	const size_t hw = (size_t)f->h * f->w, T = hw + 1, plane = mura_fm_plane(f);

	for (size_t c = lo; c < hi; c++)
		for (int i = 0; i < f->n; i++) {
			const float *dy = j->src + ((size_t)i * T + 1) * f->c + c;
			float *dx = j->dst + c * plane + (size_t)i * hw;
			for (size_t t = 0; t < hw; t++)
				put(dx, t, dy[t * f->c], j->acc);
		}
}

void
mura_tokens_backward(struct mura_nn_ctx *ctx, const float *dy, struct mura_fm *df, float *dcls, int acc)
{
	const double t0 = mura_prof_start(ctx);
	const size_t T = (size_t)df->h * df->w + 1;

	if (dcls)
		for (int i = 0; i < df->n; i++)
			for (int c = 0; c < df->c; c++)
				dcls[c] += dy[(size_t)i * T * df->c + c];
	if (df->d) {
		struct tok_job j = {df, dy, df->d, acc};
		mura_threads_for(ctx->threads, (size_t)df->c, row_grain(mura_fm_plane(df)), tok_bwd_part, &j);
	}
	mura_prof_stop(ctx, MURA_PROF_ELEMENTWISE, t0, 0);
}

/* ---- position embeddings ---------------------------------------------------------- */
struct pos_job {
	size_t per;        /* T * D: one image's values */
	int n;
	const float *x, *pos;
	float *y;
	int acc;
};

static void
pos_fwd_part(void *v, size_t lo, size_t hi)
{
	const struct pos_job *j = v;

	for (int i = 0; i < j->n; i++) {
		const float *x = j->x + (size_t)i * j->per;
		float *y = j->y + (size_t)i * j->per;
		for (size_t k = lo; k < hi; k++)
			y[k] = x[k] + j->pos[k];
	}
}

void
mura_posembed_forward(struct mura_nn_ctx *ctx, int n, int t, int d, const float *x, const float *pos,
                      float *y)
{
	struct pos_job j = {(size_t)t * d, n, x, pos, y, 0};

	mura_nn_for(ctx, MURA_PROF_ELEMENTWISE, j.per, MURA_EW_GRAIN / (n > 0 ? n : 1) + 1, pos_fwd_part, &j);
}

/* x = dy, y = dx (or NULL), pos = dpos (or NULL): values [lo, hi) of an image. */
static void
pos_bwd_part(void *v, size_t lo, size_t hi)
{
	const struct pos_job *j = v;
	float *dpos = (float *)j->pos;

	for (int i = 0; i < j->n; i++) {
		const float *dy = j->x + (size_t)i * j->per;
		for (size_t k = lo; k < hi; k++) {
			float g = dy[k];
			if (dpos)
				dpos[k] += g;
			if (j->y)
				put(j->y + (size_t)i * j->per, k, g, j->acc);
		}
	}
}

void
mura_posembed_backward(struct mura_nn_ctx *ctx, int n, int t, int d, const float *dy, float *dx,
                       float *dpos, int acc)
{
	struct pos_job j = {(size_t)t * d, n, dy, dpos, dx, acc};
	if (dx == dy && !acc)
		j.y = NULL;  /* already there */
	mura_nn_for(ctx, MURA_PROF_ELEMENTWISE, j.per, MURA_EW_GRAIN / (n > 0 ? n : 1) + 1, pos_bwd_part, &j);
}

/* ---- bilinear resampling of a grid of vectors ---------------------------------------
 * PyTorch's upsample_bilinear2d with align_corners=False: output index o
 * reads the source at s = max(0, (o + 1/2) in/out - 1/2), between i0 =
 * floor(s) and i1 = min(i0 + 1, in - 1), with weights 1 - l and l, l = s -
 * i0; the two axes multiply.  Its backward hands each output's gradient to
 * the same four sources with the same weights.
 */
struct axis {
	int i0, i1;
	float l0, l1;
};

static struct axis
axis_at(int o, int in, int out)
{
	const float scale = (float)in / (float)out;
	float s = scale * ((float)o + 0.5f) - 0.5f;
	struct axis a;

	s = s < 0 ? 0 : s;
	a.i0 = (int)s;
	a.i1 = a.i0 + (a.i0 < in - 1);
	a.l1 = s - (float)a.i0;
	a.l1 = a.l1 < 0 ? 0 : a.l1 > 1 ? 1 : a.l1;
	a.l0 = 1.0f - a.l1;
	return a;
}

struct rs_job {
	int gh, gw, h, w, d;
	const float *src;
	float *dst;
};

/* Output positions [lo, hi). */
static void
rs_fwd_part(void *v, size_t lo, size_t hi)
{
	const struct rs_job *j = v;
	const int d = j->d;

	for (size_t o = lo; o < hi; o++) {
		struct axis y = axis_at((int)(o / j->w), j->gh, j->h), x = axis_at((int)(o % j->w), j->gw, j->w);
		const float *s00 = j->src + ((size_t)y.i0 * j->gw + x.i0) * d;
		const float *s01 = j->src + ((size_t)y.i0 * j->gw + x.i1) * d;
		const float *s10 = j->src + ((size_t)y.i1 * j->gw + x.i0) * d;
		const float *s11 = j->src + ((size_t)y.i1 * j->gw + x.i1) * d;
		float *out = j->dst + o * d;
		for (int c = 0; c < d; c++)
			out[c] = y.l0 * (x.l0 * s00[c] + x.l1 * s01[c]) + y.l1 * (x.l0 * s10[c] + x.l1 * s11[c]);
	}
}

void
mura_resample_forward(struct mura_nn_ctx *ctx, int gh, int gw, int h, int w, int d, const float *src,
                      float *dst)
{
	struct rs_job j = {gh, gw, h, w, d, src, dst};

	mura_nn_for(ctx, MURA_PROF_ELEMENTWISE, (size_t)h * w, row_grain((size_t)d), rs_fwd_part, &j);
}

/* Channels [lo, hi) of every source vector. */
static void
rs_bwd_part(void *v, size_t lo, size_t hi)
{
	const struct rs_job *j = v;
	const int d = j->d;

	for (int oy = 0; oy < j->h; oy++) {
		struct axis y = axis_at(oy, j->gh, j->h);
		for (int ox = 0; ox < j->w; ox++) {
			struct axis x = axis_at(ox, j->gw, j->w);
			const float *g = j->src + ((size_t)oy * j->w + ox) * d;
			float *s00 = j->dst + ((size_t)y.i0 * j->gw + x.i0) * d;
			float *s01 = j->dst + ((size_t)y.i0 * j->gw + x.i1) * d;
			float *s10 = j->dst + ((size_t)y.i1 * j->gw + x.i0) * d;
			float *s11 = j->dst + ((size_t)y.i1 * j->gw + x.i1) * d;
			for (size_t c = lo; c < hi; c++) {
				s00[c] += y.l0 * x.l0 * g[c];
				s01[c] += y.l0 * x.l1 * g[c];
				s10[c] += y.l1 * x.l0 * g[c];
				s11[c] += y.l1 * x.l1 * g[c];
			}
		}
	}
}

void
mura_resample_backward(struct mura_nn_ctx *ctx, int gh, int gw, int h, int w, int d, const float *ddst,
                       float *dsrc)
{
	struct rs_job j = {gh, gw, h, w, d, ddst, dsrc};

	mura_nn_for(ctx, MURA_PROF_ELEMENTWISE, (size_t)d, row_grain((size_t)h * w), rs_bwd_part, &j);
}
