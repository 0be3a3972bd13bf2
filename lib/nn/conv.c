/*
 * conv.c - 2-D convolution, forward and backward, as im2col + GEMM.
 *
 * With x in [Cin][N][H][W] and y in [Cout][N][Ho][Wo] (ops.h), let M =
 * N * Ho * Wo and K = Cin * k * k.  col[K][M] holds, in row (ci, ky, kx)
 * and column (n, oh, ow), the input value x[ci][n][oh*s - p + ky][ow*s - p + kx]
 * (0 outside the image).  Then
 *     y  = W col              W: [Cout][K], torchvision's weight as it lies
 *     gW += dy col^T          (the rows of col are W's columns)
 *     dcol = W^T dy,  dx = col2im(dcol)   (the sum of every window's share)
 * A 1x1 convolution with stride 1 and no padding has col == x, so it is a
 * plain GEMM on x with no copy.
 *
 * In mixed precision (ctx->bf16) every product here runs as mura_sbgemm
 * (bf16 operands rounded as they are packed, fp32 sums: PyTorch autocast's
 * convolution), and conv3.c's direct kernels in bf16 where they pay
 * (direct_ok).
 *
 * 3x3 "same" convolutions go to conv3.c's direct kernels where those pay
 * (is_conv3 below); everything here is what the others, and the rest of
 * those, use.
 *
 * A "same" convolution (stride 1, odd k, padding (k - 1) / 2) gets dx as a
 * forward convolution of dy instead: with ky' = k - 1 - ky, the input
 * position (ih, iw) receives W[co][ci][ky][kx] dy[co][ih - p + ky'][iw - p + kx'],
 * so dx = conv(dy, Wt) with Wt[ci][co][ky'][kx'] = W[co][ci][ky][kx], the
 * same padding and stride 1.  That GEMM has K = Cout * k * k rather than
 * Cout (a DenseNet layer's 3x3 convolution has Cout = 32: K = 32 would run
 * at a third of the speed), and it needs no col2im.
 *
 * col is built a chunk of columns at a time, in ctx scratch.  The forward
 * builds a chunk of at most FWD_BUDGET floats with all threads (split by
 * rows), then multiplies it with mura_sgemm (split by rows of W or columns
 * of col, whichever packs less twice).  The backward gives each thread
 * whole input channels (whole rows of col): it builds its rows of col for
 * gW and its rows of dcol for dx, in chunks of at most BWD_BUDGET floats
 * each, so each thread owns whole channels of dx (col2im of neighbouring
 * positions adds to shared input values) and whole columns of gW: no two
 * threads ever write the same value, and there is one dispatch per chunk.
 */
#include <assert.h>
#include <string.h>

#include "ops.h"

/* Floats of col in a forward chunk (all threads), and per thread and chunk
 * in the backward (col and dcol each).  A forward chunk large enough that
 * W is packed for the GEMM a few times per layer at most, not per 200
 * columns (at 320 px, layer4 of a ResNet has 800 columns and K = 4608);
 * backward chunks that stay in cache while the GEMMs read them back. */
#define FWD_BUDGET ((size_t)4 << 20)
#define BWD_BUDGET ((size_t)1 << 20)

static int
is_direct(const struct mura_conv *cv)
{
	return cv->k == 1 && cv->stride == 1 && cv->pad == 0;
}

/* Columns per chunk when a chunk has `rows` rows. */
static size_t
chunk_cols(size_t budget, size_t rows, size_t cols)
{
	size_t c = budget / (rows ? rows : 1);

	c = c < 64 ? 64 : c / 16 * 16;
	return c < cols ? c : cols;
}

/* Rows of the backward's share of K for one thread (at most). */
static size_t
rows_per_thread(const struct mura_conv *cv, int nt)
{
	size_t kk = (size_t)cv->k * cv->k;

	return ((size_t)cv->cin + (size_t)nt - 1) / (size_t)nt * kk;
}

static int
is_same(const struct mura_conv *cv)
{
	return cv->stride == 1 && cv->k > 1 && cv->k % 2 == 1 && cv->pad == (cv->k - 1) / 2;
}

/* A 3x3 "same" convolution, which conv3.c's direct kernels compute where
 * they pay: the forward and dx where mura_conv3_pays, the weight gradient
 * for at most 64 output channels (single thread, 8 x 80 x 80: 26.8 ms
 * against im2col + GEMM's 36.2 at 32 channels; 2 threads, 64 -> 64
 * channels, 8 x 80 x 80: 11.5 ms against 12.6 (scaled from 63 channels),
 * 32 x 16 x 16: 2.0 against 2.4; but single thread 27.1 against 21.0 at
 * 128 x 128 x 40 x 40). */
static int
is_conv3(const struct mura_conv *cv)
{
	return is_same(cv) && cv->k == 3;
}

static int
conv3_fwd(const struct mura_conv *cv, const struct mura_fm *x)
{
	return is_conv3(cv) && mura_conv3_pays(cv->cout, x->h, x->w);
}

/* May conv3.c's direct kernels compute a product with m output channels
 * in ctx's precision, by positions (the forward and dx kernel) or not?
 * In fp32 wherever they pay (the rules beside each use).  In bf16 the
 * kernel by positions beats im2col + sbgemm wherever it pays in fp32
 * (320 px, batch 8, 2 threads, MURA_PROFILE=1, switched off by hand to
 * compare: resnet50's 3x3 forwards 0.283 -> 0.186 s; with dx too, the 3x3
 * backward of densenet169 0.29-0.33 -> 0.22-0.25 s, of resnet50 0.26-0.33
 * -> 0.23-0.27).  The weight gradient by positions (a bf16 kernel too,
 * where the CPU has AVX512-BF16) only for few channels, where im2col and
 * packing, not the products, bound the GEMM: densenet169's 3x3 backward
 * 0.72-0.77 -> 0.50-0.64 s at 32 channels, but resnet50's layer1 (64)
 * level either way.  The kernels by channels run in fp32 on operands
 * rounded to bf16, half the bf16 GEMM's speed: few channels only.
 * Where sbgemm runs on AMX tiles (bf16.c), im2col + sbgemm wins every
 * case, im2col included: 320 px, batch 8, 2 threads, bf16 inference,
 * images/s with every convolution on AMX / with the vector kernels for
 * 32 channels or fewer / as without AMX: densenet169 12.10 / 10.39 /
 * 10.44, resnet50 13.99 / 14.13 / 8.48 (MURA_PROFILE=1 tests/nn_bench,
 * 2026-12-06, Emerald Rapids; its 3x3 forwards 0.41 / 0.50 / 0.51 s and
 * 0.19 / 0.19 / 0.57 s per batch). */
static int
direct_ok(const struct mura_nn_ctx *ctx, int m, int by_positions)
{
	if (ctx->bf16 && mura_bf16_amx())
		return 0;  /* see above */
	return !ctx->bf16 || m <= 32 || (by_positions && mura_conv3_bf16(ctx));
}

size_t
mura_conv_scratch(const struct mura_conv *cv, const struct mura_fm *x, int nt)
{
	if (is_direct(cv))
		return 0;
	int ho = mura_window_out(x->h, cv->k, cv->stride, cv->pad);
	int wo = mura_window_out(x->w, cv->k, cv->stride, cv->pad);
	size_t m = (size_t)x->n * ho * wo, kk = (size_t)cv->k * cv->k, kdim = (size_t)cv->cin * kk;
	size_t fwd = kdim * chunk_cols(FWD_BUDGET, kdim, m);
	size_t rt = rows_per_thread(cv, nt), bwd = (size_t)nt * 2 * rt * chunk_cols(BWD_BUDGET, rt, m);
	size_t need = fwd > bwd ? fwd : bwd;
	if (is_same(cv)) {  /* dx's forward convolution: its col, then Wt */
		size_t tk = (size_t)cv->cout * kk, tcol = tk * chunk_cols(FWD_BUDGET, tk, m);
		size_t t = tcol + (size_t)cv->cin * tk;
		need = need > t ? need : t;
	}
	if (is_conv3(cv)) {
		size_t t = mura_conv3_scratch(cv->cin, cv->cout, x->n, x->h, x->w);
		need = need > t ? need : t;
	}
	if (mura_convc_pays(cv, 0)) {
		size_t t = mura_convc_scratch(cv, x, 0);
		need = need > t ? need : t;
	}
	if (mura_convc_grad_w_pays(cv)) {
		size_t t = mura_convc_grad_w_scratch(cv, x);
		need = need > t ? need : t;
	}
	if (is_same(cv) && mura_convc_pays(cv, 1)) {
		size_t t = mura_convc_scratch(cv, x, 1);
		need = need > t ? need : t;
	}
	return need;
}

/* The profiler's kind of a convolution: 1x1, 3x3 "same", or another. */
static int
prof_kind(const struct mura_conv *cv, int fwd)
{
	int kind = is_direct(cv) ? 0 : is_conv3(cv) ? 1 : 2;

	return (fwd ? MURA_PROF_CONV1_FWD : MURA_PROF_CONV1_BWD) + kind;
}

/* The geometry every helper below needs. */
struct geom {
	const struct mura_conv *cv;
	int h, w, ho, wo, kk;
	size_t plane, m; /* input N*H*W, output N*Ho*Wo */
};

static struct geom
geom_of(const struct mura_conv *cv, const struct mura_fm *x)
{
	struct geom g = {cv, x->h, x->w, 0, 0, cv->k * cv->k, 0, 0};

	g.ho = mura_window_out(x->h, cv->k, cv->stride, cv->pad);
	g.wo = mura_window_out(x->w, cv->k, cv->stride, cv->pad);
	g.plane = (size_t)x->n * x->h * x->w;
	g.m = (size_t)x->n * g.ho * g.wo;
	return g;
}

/* The output columns ow in [lo, hi) whose input column ow*s - p + kx lies
 * inside [0, w). */
static void
valid_cols(const struct geom *g, int kx, int *lo, int *hi)
{
	int s = g->cv->stride, p = g->cv->pad;
	int a = p - kx > 0 ? (p - kx + s - 1) / s : 0;
	int b = (g->w - 1 + p - kx) >= 0 ? (g->w - 1 + p - kx) / s + 1 : 0;

	*lo = a < g->wo ? a : g->wo;
	*hi = b < g->wo ? b : g->wo;
	if (*hi < *lo)
		*hi = *lo;
}

/* d[i] = s[2 i] for i < n, reading nothing past s[2 (n - 1)]: the gather
 * of a stride-2 convolution's im2col, 16 values per two vector loads and a
 * shuffle where the compiler was left with one value at a time (resnet50
 * bf16 inference, batch 8, 320 px, 2 threads, MURA_PROFILE=1: im2col
 * 0.045 -> 0.027 s per batch). */
typedef float f16v __attribute__((vector_size(64)));
typedef int i16v __attribute__((vector_size(64)));

MURA_CLONES("arch=x86-64-v4", "arch=x86-64-v3") static void
gather2(float *restrict d, const float *restrict s, int n)
{
	const i16v even = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
	int i = 0;

	for (; i + 16 < n; i += 16) {  /* reads s[2 i .. 2 i + 31], 2 i + 31 < 2 (n - 1) */
		f16v a, b, r;
		memcpy(&a, s + 2 * i, sizeof a);
		memcpy(&b, s + 2 * i + 16, sizeof b);
		r = __builtin_shuffle(a, b, even);
		memcpy(d + i, &r, sizeof r);
	}
	for (; i < n; i++)
		d[i] = s[2 * i];
}

/*
 * The two directions of the same walk over rows [r0, r1) and columns
 * [j0, j1) of col: gather (im2col: col = x) or scatter-add (col2im:
 * x += col).  One output row segment (n, oh, ow0..ow1) at a time.
 */
static void
col_walk(const struct geom *g, float *x, float *col, size_t r0, size_t r1, size_t j0, size_t j1,
         int scatter)
{
	const int k = g->cv->k, s = g->cv->stride, p = g->cv->pad;
	const size_t howo = (size_t)g->ho * g->wo, ncols = j1 - j0;

	for (size_t r = r0; r < r1; r++) {
		int ci = (int)(r / (size_t)g->kk), ky = (int)(r / (size_t)k % (size_t)k), kx = (int)(r % (size_t)k);
		const int off = kx - p;  /* row[ow * s + off] is the input under output column ow */
		float *src = x + (size_t)ci * g->plane;
		float *d = col + (r - r0) * ncols;
		int vlo, vhi;

		valid_cols(g, kx, &vlo, &vhi);
		size_t img = j0 / howo, rem = j0 % howo;
		int oh = (int)(rem / (size_t)g->wo), ow0 = (int)(rem % (size_t)g->wo);
		/* one output row segment (img, oh, ow0 .. ow1) at a time; d follows it */
		for (size_t j = j0; j < j1;) {
			int ow1 = g->wo;
			if ((size_t)(ow1 - ow0) > j1 - j)
				ow1 = ow0 + (int)(j1 - j);
			int ih = oh * s - p + ky, n = ow1 - ow0;
			int a = ow0 > vlo ? ow0 : vlo, b = ow1 < vhi ? ow1 : vhi;
			if (b <= a || ih < 0 || ih >= g->h)
				a = b = ow1;  /* nothing of the image under this segment */
			float *row = a < b ? src + img * (size_t)g->h * g->w + (size_t)ih * g->w : NULL;
			if (scatter) {
				for (int ow = a; ow < b; ow++)
					row[ow * s + off] += d[ow - ow0];
			} else {
				for (int ow = ow0; ow < a; ow++)
					d[ow - ow0] = 0;
				if (s == 1)
					for (int ow = a; ow < b; ow++)
						d[ow - ow0] = row[ow + off];
				else if (s == 2)
					gather2(d + (a - ow0), row + a * 2 + off, b - a);
				else
					for (int ow = a; ow < b; ow++)
						d[ow - ow0] = row[ow * s + off];
				for (int ow = b; ow < ow1; ow++)
					d[ow - ow0] = 0;
			}
			d += n;
			j += (size_t)n;
			ow0 = 0;
			if (++oh == g->ho)
				oh = 0, img++;
		}
	}
}

struct conv_job {
	struct mura_nn_ctx *ctx;
	struct geom g;
	const struct mura_fm *x, *dy;
	struct mura_fm *dx;
	float *gw;     /* cv->gw, or NULL where conv3.c computes it */
	int acc;
};

/* Rows [lo, hi) of a forward chunk of col (columns [c0, c1)). */
struct im2col_job {
	const struct geom *g;
	float *x, *col;
	size_t c0, c1;
};

static void
im2col_part(void *v, size_t lo, size_t hi)
{
	const struct im2col_job *j = v;

	col_walk(j->g, j->x, j->col + lo * (j->c1 - j->c0), lo, hi, j->c0, j->c1, 0);
}

struct bias_job {
	const struct mura_conv *cv;
	float *y;
	size_t m;
};

static void
bias_part(void *v, size_t lo, size_t hi)
{
	const struct bias_job *j = v;

	for (size_t co = lo; co < hi; co++) {
		float *yr = j->y + co * j->m, b = j->cv->b[co];
		for (size_t i = 0; i < j->m; i++)
			yr[i] += b;
	}
}

/* y = W col (beta 0) or y += W col (beta 1), col built in ctx scratch;
 * then y taken through post where it is not NULL (bf16, beta 0, not 1x1
 * stride 1: mura_sbgemm_bn's post, a block of y at a time). */
static void
gemm_forward(struct mura_nn_ctx *ctx, const struct mura_conv *cv, const struct mura_fm *x,
             struct mura_fm *y, float beta, const struct mura_bn_post *post)
{
	const struct geom g = geom_of(cv, x);
	const size_t m = g.m, kdim = (size_t)cv->cin * g.kk;

	assert(!post || (ctx->bf16 && beta == 0.0f && !is_direct(cv)));
	if (is_direct(cv)) {
		mura_gemm(ctx->bf16, ctx->threads, 0, 0, cv->cout, (int)m, cv->cin, 1.0f, cv->w, cv->cin,
		          x->d, (int)m, beta, y->d, (int)m);
		return;
	}
	if (ctx->bf16 && is_same(cv)) {  /* im2col read while packed (bf16.c's pack_conv) */
		mura_sbgemm_conv(ctx->threads, cv->cout, cv->cin, cv->w, x->d, x->n, x->h, x->w, cv->k, beta, y->d,
		                 post);
		return;
	}
	const size_t cc = chunk_cols(FWD_BUDGET, kdim, m);
	for (size_t c0 = 0; c0 < m; c0 += cc) {
		size_t c1 = c0 + cc < m ? c0 + cc : m;
		struct im2col_job j = {&g, x->d, ctx->scratch, c0, c1};
		double t1 = mura_prof_start(ctx);
		mura_threads_for(ctx->threads, kdim, 1, im2col_part, &j);
		mura_prof_stop(ctx, MURA_PROF_IM2COL, t1, 0);
		if (post) {  /* the chunk's columns of y, and of the shortcut */
			struct mura_bn_post q = *post;
			if (q.add)
				q.add += c0;
			mura_sbgemm_bn(ctx->threads, cv->cout, (int)(c1 - c0), (int)kdim, cv->w, (int)kdim,
			               ctx->scratch, (int)(c1 - c0), NULL, NULL, y->d + c0, (int)m, &q);
		} else {
			mura_gemm(ctx->bf16, ctx->threads, 0, 0, cv->cout, (int)(c1 - c0), (int)kdim, 1.0f, cv->w,
			          (int)kdim, ctx->scratch, (int)(c1 - c0), beta, y->d + c0, (int)m);
		}
	}
}

/* Whether mura_conv_forward takes conv3.c's kernel by positions (1), its
 * kernel by channels (2), or im2col + GEMM (0). */
static int
forward_kernel(const struct mura_nn_ctx *ctx, const struct mura_conv *cv, const struct mura_fm *x)
{
	if (direct_ok(ctx, cv->cout, 1) && conv3_fwd(cv, x))
		return 1;
	if (direct_ok(ctx, cv->cout, 0) && !is_direct(cv) && mura_convc_pays(cv, 0))
		return 2;
	return 0;
}

void
mura_conv_forward(struct mura_nn_ctx *ctx, const struct mura_conv *cv,
                  const struct mura_fm *x, struct mura_fm *y)
{
	const size_t m = mura_fm_plane(y), kdim = (size_t)cv->cin * cv->k * cv->k;
	const double t0 = mura_prof_start(ctx);
	const int kern = forward_kernel(ctx, cv, x);

	if (kern == 1)
		mura_conv3_forward(ctx, cv, x, y);
	else if (kern == 2)
		mura_convc_forward(ctx, cv, 0, x, y->d, 0);
	else
		gemm_forward(ctx, cv, x, y, 0.0f, NULL);
	if (cv->b) {
		struct bias_job bj = {cv, y->d, m};
		mura_threads_for(ctx->threads, (size_t)cv->cout, 1, bias_part, &bj);
	}
	mura_prof_stop(ctx, prof_kind(cv, 1), t0, 2.0 * (double)cv->cout * (double)kdim * (double)m);
}

int
mura_conv_folds_bn(const struct mura_nn_ctx *ctx, const struct mura_conv *cv)
{
	return ctx->bf16 && is_direct(cv) && !cv->b;
}

/* y = conv(relu(x ka + kb)) for a 1x1 convolution without bias in bf16:
 * the batch norm + ReLU in front of it (mura_bn_map's) applied as its
 * operand is packed (mura_sbgemm_bn), never written out. */
void
mura_conv_forward_bn(struct mura_nn_ctx *ctx, const struct mura_conv *cv, const struct mura_fm *x,
                     const float *ka, const float *kb, struct mura_fm *y)
{
	const size_t m = mura_fm_plane(y);
	const double t0 = mura_prof_start(ctx);

	assert(mura_conv_folds_bn(ctx, cv) && x->c == cv->cin);
	mura_sbgemm_bn(ctx->threads, cv->cout, (int)m, cv->cin, cv->w, cv->cin, x->d, (int)m, ka, kb, y->d,
	               (int)m, NULL);
	mura_prof_stop(ctx, prof_kind(cv, 1), t0, 2.0 * (double)cv->cout * (double)cv->cin * (double)m);
}

/*
 * y = post(conv(x)) for a convolution without bias in evaluation: its
 * batch norm + ReLU, and a residual block's shortcut (mura_bn_post), x
 * taken as relu(x xa + xb) where xa is not NULL (mura_conv_forward_bn's
 * fold, 1x1 only).  In bf16 through the GEMM (every convolution where
 * sbgemm runs on AMX) post is applied to each block of the product as soon
 * as its sums are complete, while it is in cache, so the convolution's own
 * output is never written or read back; otherwise by mura_bn_post after
 * it.  Bit for bit the same values either way.
 */
void
mura_conv_forward_post(struct mura_nn_ctx *ctx, const struct mura_conv *cv, const struct mura_fm *x,
                       const float *xa, const float *xb, const struct mura_bn_post *post, struct mura_fm *y)
{
	const size_t m = mura_fm_plane(y), kdim = (size_t)cv->cin * cv->k * cv->k;

	assert(!cv->b && (!xa || mura_conv_folds_bn(ctx, cv)));
	if (!ctx->bf16 || forward_kernel(ctx, cv, x)) {
		if (xa)
			mura_conv_forward_bn(ctx, cv, x, xa, xb, y);
		else
			mura_conv_forward(ctx, cv, x, y);
		mura_bn_post(ctx, y, post, y->d);
		return;
	}
	const double t0 = mura_prof_start(ctx);
	if (is_direct(cv))
		mura_sbgemm_bn(ctx->threads, cv->cout, (int)m, cv->cin, cv->w, cv->cin, x->d, (int)m, xa, xb, y->d,
		               (int)m, post);
	else
		gemm_forward(ctx, cv, x, y, 0.0f, post);
	mura_prof_stop(ctx, prof_kind(cv, 1), t0, 2.0 * (double)cv->cout * (double)kdim * (double)m);
}

static void
conv_bwd_part(void *v, int t, int nt)
{
	const struct conv_job *j = v;
	const struct mura_conv *cv = j->g.cv;
	const size_t m = j->g.m, kk = (size_t)j->g.kk, kdim = (size_t)cv->cin * kk;
	const float *dy = j->dy->d;
	const int bf16 = j->ctx->bf16;
	size_t lo, hi;

	if (cv->gb) {
		mura_threads_share((size_t)cv->cout, t, nt, 1, &lo, &hi);
		for (size_t co = lo; co < hi; co++) {
			double s = 0;
			for (size_t i = 0; i < m; i++)
				s += dy[co * m + i];
			cv->gb[co] += (float)s;
		}
	}
	/* Whole input channels per thread when dx is wanted (see the top). */
	mura_threads_share(kdim, t, nt, j->dx ? kk : 1, &lo, &hi);
	if (lo == hi)
		return;
	size_t rows = hi - lo;
	if (is_direct(cv)) {
		if (j->gw)
			mura_gemm(bf16, NULL, 0, 1, cv->cout, (int)rows, (int)m, 1.0f, dy, (int)m,
			          j->x->d + lo * m, (int)m, 1.0f, j->gw + lo, (int)kdim);
		if (j->dx)
			mura_gemm(bf16, NULL, 1, 0, (int)rows, (int)m, cv->cout, 1.0f, cv->w + lo, (int)kdim,
			          dy, (int)m, j->acc ? 1.0f : 0.0f, j->dx->d + lo * m, (int)m);
		return;
	}
	if (bf16 && is_same(cv) && !j->dx) {  /* im2col read while packed (bf16.c's pack_conv_t) */
		if (j->gw)
			mura_sbgemm_conv_gw(cv->cout, dy, j->x->d, j->x->n, j->x->h, j->x->w, cv->k, lo, hi,
			                    j->gw + lo, kdim);
		return;
	}
	if (j->dx && !j->acc)
		memset(j->dx->d + lo / kk * j->g.plane, 0, rows / kk * j->g.plane * sizeof(float));
	size_t rt = rows_per_thread(cv, nt), cc = chunk_cols(BWD_BUDGET, rt, m);
	float *col = j->ctx->scratch + (size_t)t * (j->ctx->scratch_n / (size_t)nt);
	float *dcol = col + rt * cc;
	for (size_t c0 = 0; c0 < m; c0 += cc) {
		size_t c1 = c0 + cc < m ? c0 + cc : m, n = c1 - c0;
		if (j->gw) {
			col_walk(&j->g, j->x->d, col, lo, hi, c0, c1, 0);
			mura_gemm(bf16, NULL, 0, 1, cv->cout, (int)rows, (int)n, 1.0f, dy + c0, (int)m, col,
			          (int)n, 1.0f, j->gw + lo, (int)kdim);
		}
		if (j->dx) {
			mura_gemm(bf16, NULL, 1, 0, (int)rows, (int)n, cv->cout, 1.0f, cv->w + lo, (int)kdim,
			          dy + c0, (int)m, 0.0f, dcol, (int)n);
			col_walk(&j->g, j->dx->d, dcol, lo, hi, c0, c1, 1);
		}
	}
}

struct flip_job {
	const struct mura_conv *cv;
	float *wt;
};

/* Rows [lo, hi) of Wt: Wt[ci][co][k*k - 1 - q] = W[co][ci][q]. */
static void
flip_part(void *v, size_t lo, size_t hi)
{
	const struct flip_job *j = v;
	const struct mura_conv *cv = j->cv;
	const size_t kk = (size_t)cv->k * cv->k, tk = (size_t)cv->cout * kk;

	for (size_t ci = lo; ci < hi; ci++)
		for (size_t co = 0; co < (size_t)cv->cout; co++)
			for (size_t q = 0; q < kk; q++)
				j->wt[ci * tk + co * kk + (kk - 1 - q)] = cv->w[(co * (size_t)cv->cin + ci) * kk + q];
}

/* dx (+)= conv(dy, Wt) for a "same" convolution (see the top); Wt is laid
 * out after the col chunk that gemm_forward uses at the start of scratch. */
static void
same_backward_dx(struct mura_nn_ctx *ctx, const struct mura_conv *cv, const struct mura_fm *dy,
                 struct mura_fm *dx, int acc)
{
	const size_t tk = (size_t)cv->cout * cv->k * cv->k;
	struct flip_job j = {cv, ctx->scratch + tk * chunk_cols(FWD_BUDGET, tk, mura_fm_plane(dy))};
	struct mura_conv t = {cv->cout, cv->cin, cv->k, 1, cv->pad, j.wt, NULL, NULL, NULL};

	mura_threads_for(ctx->threads, (size_t)cv->cin, 8, flip_part, &j);
	gemm_forward(ctx, &t, dy, dx, acc ? 1.0f : 0.0f, NULL);
}

void
mura_conv_backward(struct mura_nn_ctx *ctx, const struct mura_conv *cv,
                   const struct mura_fm *x, const struct mura_fm *dy,
                   struct mura_fm *dx, int acc)
{
	const int same = dx && is_same(cv);
	const int gw3 = direct_ok(ctx, cv->cout, 0) && cv->gw && is_conv3(cv) && cv->cout <= 64;
	const size_t m = (size_t)x->n * x->h * x->w;
	/* A 1x1 convolution's products as whole GEMMs that mura_sgemm splits
	 * along their larger side: the weight gradient always, dx where the
	 * images are large against the channels.  Per-thread input channels
	 * (conv_bwd_part) make thin products: resnet50's 64 -> 256 at 80 x 80,
	 * batch 8, 2 threads, dx 9.8 -> 5.8 ms, weights 7.6 -> 5.9 ms; but at
	 * 1024 -> 128 at 20 x 20 dx they are faster, 1.9 against 2.1 ms. */
	const int gw1 = cv->gw && is_direct(cv), dx1 = dx && is_direct(cv) && m >= (size_t)8 * cv->cin;
	const int gwc = direct_ok(ctx, cv->cout, 0) && cv->gw && !gw3 && mura_convc_grad_w_pays(cv);
	struct conv_job j = {ctx, geom_of(cv, x), x, dy, same || dx1 ? NULL : dx,
	                     gw3 || gw1 || gwc ? NULL : cv->gw, acc};
	const double t0 = mura_prof_start(ctx);
	const double gemm = 2.0 * (double)cv->cout * cv->cin * j.g.kk * (double)j.g.m;

	if (j.gw || cv->gb || j.dx)
		mura_threads_run(ctx->threads, conv_bwd_part, &j);
	if (gw1)
		mura_gemm(ctx->bf16, ctx->threads, 0, 1, cv->cout, cv->cin, (int)m, 1.0f, dy->d, (int)m,
		          x->d, (int)m, 1.0f, cv->gw, cv->cin);
	if (dx1)
		mura_gemm(ctx->bf16, ctx->threads, 1, 0, cv->cin, (int)m, cv->cout, 1.0f, cv->w, cv->cin,
		          dy->d, (int)m, acc ? 1.0f : 0.0f, dx->d, (int)m);
	if (gw3)
		mura_conv3_grad_w(ctx, cv, x, dy);
	if (gwc)
		mura_convc_grad_w(ctx, cv, x, dy);
	if (same && direct_ok(ctx, cv->cin, 1) && is_conv3(cv) && mura_conv3_pays(cv->cin, x->h, x->w))
		mura_conv3_dx(ctx, cv, dy, dx, acc);
	else if (same && direct_ok(ctx, cv->cin, 0) && mura_convc_pays(cv, 1))
		mura_convc_forward(ctx, cv, 1, dy, dx->d, acc);
	else if (same)
		same_backward_dx(ctx, cv, dy, dx, acc);
	mura_prof_stop(ctx, prof_kind(cv, 0), t0, (cv->gw ? gemm : 0) + (dx ? gemm : 0));
}
