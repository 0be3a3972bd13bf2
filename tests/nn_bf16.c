/*
 * nn_bf16.c - tests of lib/nn/bf16.c: rounding to bf16, and mura_sbgemm
 * against a reference on the same rounded operands (the products of two
 * bf16 values are exact in fp32, so the reference sums them in double and
 * the only difference left is the order of fp32 sums: within 1e-5 of the
 * sum of the products' magnitudes), over shapes that cut every block and
 * tile edge, both transposes, alpha and beta, one thread and two.  And the
 * model's precision: fp32, bf16, auto and the error where the CPU lacks
 * AVX512-BF16.  And a batch norm + ReLU folded into a 1x1 convolution's
 * packing (mura_sbgemm_bn): the written-out path's values bit for bit.
 * The bf16 cases are SKIPPED (loudly) on such a CPU.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "nn/model.h"
#include "nn/ops.h"
#include "rng.h"
#include "test.h"

static void
test_round(void)
{
	const float one = 1.0f, tie_down = 1.0f + 0x1p-8f, tie_up = 1.0f + 3 * 0x1p-8f;

	CHECK("bf16 round: 1 stays 1", mura_bf16_round(one) == 1.0f);
	CHECK("bf16 round: 1 + 2^-8 (a tie) goes to the even 1", mura_bf16_round(tie_down) == 1.0f);
	CHECK("bf16 round: 1 + 3 2^-8 (a tie) goes to the even 1 + 2^-6",
	      mura_bf16_round(tie_up) == 1.0f + 0x1p-6f);
	CHECK("bf16 round: 1 + 2^-8 + 2^-20 rounds up to 1 + 2^-7",
	      mura_bf16_round(1.0f + 0x1p-8f + 0x1p-20f) == 1.0f + 0x1p-7f);
	CHECK("bf16 round: -3.0e38 stays finite, 3.4e38 becomes infinity",
	      isfinite(mura_bf16_round(-3.0e38f)) && isinf(mura_bf16_round(3.4e38f)));
	CHECK("bf16 round: NaN stays NaN", isnan(mura_bf16_round(NAN)));
}

/* One case: C (m x n) = alpha op(A) op(B) + beta C, against the reference. */
static int
gemm_case(struct mura_threads *p, int ta, int tb, int m, int n, int k, float alpha, float beta,
          struct mura_rng *g)
{
	const int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 7;
	float *a = malloc((size_t)(ta ? k : m) * lda * sizeof *a);
	float *b = malloc((size_t)(tb ? n : k) * ldb * sizeof *b);
	float *c = malloc((size_t)m * ldc * sizeof *c), *c0 = malloc((size_t)m * ldc * sizeof *c0);
	int ok = a && b && c && c0;

	for (size_t i = 0; ok && i < (size_t)(ta ? k : m) * lda; i++)
		a[i] = (float)mura_rng_normal(g);
	for (size_t i = 0; ok && i < (size_t)(tb ? n : k) * ldb; i++)
		b[i] = (float)mura_rng_normal(g);
	for (size_t i = 0; ok && i < (size_t)m * ldc; i++)
		c0[i] = c[i] = (float)mura_rng_normal(g);
	if (ok)
		mura_sbgemm(p, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
	for (int i = 0; ok && i < m; i++)
		for (int j = 0; j < ldc; j++) {
			if (j >= n) {  /* outside C: untouched */
				ok = c[(size_t)i * ldc + j] == c0[(size_t)i * ldc + j];
				continue;
			}
			double s = 0, mag = 0;
			for (int q = 0; q < k; q++) {
				double x = mura_bf16_round(ta ? a[(size_t)q * lda + i] : a[(size_t)i * lda + q]);
				double y = mura_bf16_round(tb ? b[(size_t)j * ldb + q] : b[(size_t)q * ldb + j]);
				s += x * y, mag += fabs(x * y);
			}
			double want = alpha * s + (beta != 0 ? beta * c0[(size_t)i * ldc + j] : 0);
			double tol = 1e-5 * (fabs(alpha) * mag + fabs(beta * c0[(size_t)i * ldc + j])) + 1e-30;
			if (fabs(c[(size_t)i * ldc + j] - want) > tol) {
				printf("  sbgemm %dx%dx%d ta %d tb %d: C[%d][%d] %.9g, want %.9g\n", m, n, k, ta, tb, i,
				       j, c[(size_t)i * ldc + j], want);
				ok = 0;
			}
		}
	free(a), free(b), free(c), free(c0);
	return ok;
}

/* bf16 x as vdpbf16ps reads it: subnormal inputs count as 0, as do
 * subnormal products (the instruction's own DAZ and FTZ, whatever MXCSR). */
static float
as_dp(float x)
{
	return fpclassify(x) == FP_SUBNORMAL ? 0.0f : x;
}

/* The packing rounds exactly as mura_bf16_round (ties to even, NaN kept),
 * along either stride of either operand: with k = 1 each C value is one
 * product of two rounded values, exact in fp32 (a zero's sign aside: the
 * sum starts at +0). */
static void
test_sbgemm_rounding(struct mura_threads *p)
{
	const float v[] = {1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, -(1.0f + 0x1p-8f + 0x1p-20f), 1e-39f, -3e-39f,
	                   3.0e38f, NAN, 0.1f, -7.3f, 0x1p-126f * 1.5f, 2.0f, 65504.5f, 1e-3f, 0.0f, -0.0f,
	                   12345.678f, 0.33333f};
	enum { N = sizeof v / sizeof v[0] };
	float a[N], b[N], c[N * N];
	int ok = 1;

	for (int t = 0; t < 4; t++) {
		for (int i = 0; i < N; i++)
			a[i] = v[i], b[i] = v[(i * 5 + 3) % N];
		/* A is N x 1, B is 1 x N: as stored, either transpose reads the same floats */
		mura_sbgemm(p, t & 1, t >> 1, N, N, 1, 1.0f, a, t & 1 ? N : 1, b, t >> 1 ? 1 : N, 0.0f, c, N);
		for (int i = 0; i < N; i++)
			for (int j = 0; j < N; j++) {
				float want = as_dp(as_dp(mura_bf16_round(a[i])) * as_dp(mura_bf16_round(b[j])));
				float got = c[i * N + j];
				if (isnan(want) ? !isnan(got) : got != want) {
					printf("  sbgemm rounding ta %d tb %d: %.9g x %.9g gave %.9g, want %.9g\n", t & 1,
					       t >> 1, a[i], b[j], got, want);
					ok = 0;
				}
			}
	}
	CHECK("sbgemm: operands rounded exactly as mura_bf16_round (ties, subnormals, NaN), every transpose", ok);
}

static void
test_sbgemm(void)
{
	static const int shapes[][3] = {
		{1, 1, 1}, {12, 32, 2}, {13, 33, 3}, {7, 5, 257}, {145, 70, 300},
		{40, 530, 64}, {300, 40, 513}, {64, 100, 1},
	};
	struct mura_threads *one = mura_threads_create(1), *two = mura_threads_create(2);
	struct mura_rng g;
	int ok = one && two;

	mura_rng_seed(&g, 7);
	for (size_t s = 0; ok && s < sizeof shapes / sizeof shapes[0]; s++)
		for (int t = 0; ok && t < 4; t++)
			ok = gemm_case(one, t & 1, t >> 1, shapes[s][0], shapes[s][1], shapes[s][2], 1.0f, 0.0f, &g);
	CHECK("sbgemm: every transpose, shapes across tile and block edges, one thread", ok);
	ok = ok && gemm_case(two, 0, 0, 300, 600, 130, 0.5f, 1.0f, &g) &&
	     gemm_case(two, 1, 1, 700, 90, 70, -2.0f, 0.25f, &g) && gemm_case(two, 0, 1, 96, 96, 500, 1.0f, 0, &g);
	CHECK("sbgemm: alpha, beta (0, 1, 0.25), split by rows and by columns on two threads", ok);
	test_sbgemm_rounding(one);
	mura_threads_free(one);
	mura_threads_free(two);
}

/* One 3x3 "same" convolution in bf16 (x [cin][n][h][w]): y, gw and dx
 * against sums in double of the products of the rounded operands, each
 * within 1e-5 of its sum of magnitudes.  Which code computes each is
 * conv.c's choice (direct_ok): see test_conv. */
static int
conv_case(int cin, int cout, struct mura_rng *g)
{
	const int n = 2, h = 9, w = 11, kk = 9;
	const size_t plane = (size_t)n * h * w;
	struct mura_threads *two = mura_threads_create(2);
	float *wt = malloc((size_t)cout * cin * kk * sizeof *wt), *gw = calloc((size_t)cout * cin * kk, sizeof *gw);
	float *x = malloc(cin * plane * sizeof *x), *dx = malloc(cin * plane * sizeof *dx);
	float *y = malloc(cout * plane * sizeof *y), *dy = malloc(cout * plane * sizeof *dy);
	struct mura_conv cv = {cin, cout, 3, 1, 1, wt, gw, NULL, NULL};
	struct mura_fm fx = {x, cin, n, h, w}, fy = {y, cout, n, h, w}, fdy = {dy, cout, n, h, w}, fdx = {dx, cin, n, h, w};
	struct mura_nn_ctx ctx = {two, NULL, 0, NULL, NULL, NULL, 1};
	int ok = two && wt && gw && x && dx && y && dy;

	ctx.scratch_n = ok ? mura_conv_scratch(&cv, &fx, 2) : 0;
	ok = ok && (ctx.scratch = malloc(ctx.scratch_n * sizeof(float) + 64)) != NULL;
	for (size_t i = 0; ok && i < (size_t)cout * cin * kk; i++)
		wt[i] = (float)mura_rng_normal(g);
	for (size_t i = 0; ok && i < cin * plane; i++)
		x[i] = (float)mura_rng_normal(g);
	for (size_t i = 0; ok && i < cout * plane; i++)
		dy[i] = (float)mura_rng_normal(g);
	if (ok) {
		mura_conv_forward(&ctx, &cv, &fx, &fy);
		mura_conv_backward(&ctx, &cv, &fx, &fdy, &fdx, 0);
	}
#define R(v) ((double)mura_bf16_round(v))
#define X(c, i, r, q) x[(((size_t)(c) * n + (i)) * h + (r)) * w + (q)]
#define AT(a, c, i, r, q) a[(((size_t)(c) * n + (i)) * h + (r)) * w + (q)]
	double worst = 0;  /* the largest error over its tolerance */
	for (int co = 0; ok && co < cout; co++)
		for (int ci = 0; ci < cin; ci++)
			for (int t = 0; t < kk; t++) {
				double sg = 0, mg = 0;
				for (int i = 0; i < n; i++)
					for (int r = 0; r < h; r++)
						for (int q = 0; q < w; q++) {
							int ry = r + t / 3 - 1, qx = q + t % 3 - 1;
							if (ry < 0 || ry >= h || qx < 0 || qx >= w)
								continue;
							double v = R(AT(dy, co, i, r, q)) * R(X(ci, i, ry, qx));
							sg += v, mg += fabs(v);
						}
				double e = fabs(gw[((size_t)co * cin + ci) * kk + t] - sg) / (1e-5 * mg + 1e-30);
				worst = e > worst ? e : worst;
			}
	for (int i = 0; ok && i < n; i++)
		for (int r = 0; r < h; r++)
			for (int q = 0; q < w; q++) {
				for (int co = 0; co < cout; co++) {  /* y */
					double sy = 0, my = 0;
					for (int ci = 0; ci < cin; ci++)
						for (int t = 0; t < kk; t++) {
							int ry = r + t / 3 - 1, qx = q + t % 3 - 1;
							if (ry < 0 || ry >= h || qx < 0 || qx >= w)
								continue;
							double v = R(wt[((size_t)co * cin + ci) * kk + t]) * R(X(ci, i, ry, qx));
							sy += v, my += fabs(v);
						}
					double e = fabs(AT(y, co, i, r, q) - sy) / (1e-5 * my + 1e-30);
					worst = e > worst ? e : worst;
				}
				for (int ci = 0; ci < cin; ci++) {  /* dx */
					double sx = 0, mx = 0;
					for (int co = 0; co < cout; co++)
						for (int t = 0; t < kk; t++) {
							int ry = r - (t / 3 - 1), qx = q - (t % 3 - 1);
							if (ry < 0 || ry >= h || qx < 0 || qx >= w)
								continue;
							double v = R(wt[((size_t)co * cin + ci) * kk + t]) * R(AT(dy, co, i, ry, qx));
							sx += v, mx += fabs(v);
						}
					double e = fabs(AT(dx, ci, i, r, q) - sx) / (1e-5 * mx + 1e-30);
					worst = e > worst ? e : worst;
				}
			}
#undef R
#undef X
#undef AT
	if (ok && worst > 1)
		printf("  conv bf16 %d -> %d: error %.3g times its tolerance\n", cin, cout, worst);
	free(wt), free(gw), free(x), free(dx), free(y), free(dy), free(ctx.scratch);
	mura_threads_free(two);
	return ok && worst <= 1;
}

static void
test_conv(void)
{
	struct mura_rng g;

	mura_rng_seed(&g, 11);
	/* y and dx by conv3.c's bf16 kernel by positions (an odd channel left
	 * unpaired), gw by its fp32 kernel on rounded copies */
	CHECK("conv bf16: 7 -> 32 channels, direct kernels: y, gw, dx on rounded operands", conv_case(7, 32, &g));
	/* at 9 x 11 the kernel by positions pays for neither 80 channels (y)
	 * nor dx's 72 (mura_conv3_pays), the weight gradient's kernel not
	 * above 32: all three by im2col and sbgemm */
	CHECK("conv bf16: 72 -> 80 channels, im2col + sbgemm: y, gw, dx on rounded operands", conv_case(72, 80, &g));
}

/* mura_sbgemm_bn against mura_sbgemm of the operand bn.c would write,
 * relu(b ka + kb) per row: bit for bit, on shapes across block and tile
 * edges (k past KC, so the map is offset per block), a row stride past n,
 * one thread and two (split by columns, then by rows).  And its post (a
 * batch norm + ReLU, with a shortcut, with a normalised shortcut) applied
 * block by block against mura_bn_post of the product, bit for bit. */
static int
post_case(struct mura_threads *p, int m, int n, int k, const float *a, int lda, const float *b, int ldb,
          const float *ka, const float *kb, const float *want, struct mura_rng *g)
{
	float *f = malloc((size_t)(4 * m + 3 * m * n) * sizeof *f);
	float *r = f + 4 * m, *c = r + (size_t)m * n, *post = c + (size_t)m * n;
	struct mura_nn_ctx ctx = {p, NULL, 0, NULL, NULL, NULL, 1};
	int ok = f != NULL;

	for (int i = 0; ok && i < m; i++) {
		f[i] = (float)(0.2 + mura_rng_double(g));
		f[m + i] = (float)mura_rng_normal(g);
		f[2 * m + i] = (float)(0.2 + mura_rng_double(g));
		f[3 * m + i] = (float)mura_rng_normal(g) * 0.5f;
	}
	for (size_t i = 0; ok && i < (size_t)m * n; i++)
		r[i] = (float)mura_rng_normal(g);
	for (int v = 0; ok && v < 3; v++) {  /* no shortcut, r, r's own batch norm */
		const struct mura_bn_post q = {f, f + m, v ? r : NULL, v == 2 ? f + 2 * m : NULL,
		                               v == 2 ? f + 3 * m : NULL};
		const struct mura_fm fw = {(float *)want, m, 1, 1, n};
		mura_bn_post(&ctx, &fw, &q, post);
		mura_sbgemm_bn(p, m, n, k, a, lda, b, ldb, ka, kb, c, n, &q);
		ok = memcmp(c, post, (size_t)m * n * sizeof *c) == 0;
		if (!ok)
			printf("  sbgemm_bn %dx%dx%d, post %d: differs from mura_bn_post of the product\n", m, n, k, v);
	}
	free(f);
	return ok;
}

static int
gemm_bn_case(struct mura_threads *p, int m, int n, int k, struct mura_rng *g)
{
	const int lda = k + 3, ldb = n + 5;
	float *a = malloc((size_t)m * lda * sizeof *a), *b = malloc((size_t)k * ldb * sizeof *b);
	float *bn = malloc((size_t)k * ldb * sizeof *bn), *ka = malloc((size_t)k * sizeof *ka);
	float *kb = malloc((size_t)k * sizeof *kb);
	float *c = malloc((size_t)m * n * sizeof *c), *want = malloc((size_t)m * n * sizeof *want);
	int ok = a && b && bn && ka && kb && c && want;

	for (size_t i = 0; ok && i < (size_t)m * lda; i++)
		a[i] = (float)mura_rng_normal(g);
	for (int q = 0; ok && q < k; q++) {
		ka[q] = (float)(0.2 + mura_rng_double(g));
		kb[q] = (float)mura_rng_normal(g) * 0.5f;
		for (int j = 0; j < ldb; j++) {
			b[(size_t)q * ldb + j] = (float)mura_rng_normal(g);
			float t = b[(size_t)q * ldb + j] * ka[q] + kb[q];
			bn[(size_t)q * ldb + j] = t > 0 ? t : 0;
		}
	}
	if (ok) {
		mura_sbgemm(p, 0, 0, m, n, k, 1.0f, a, lda, bn, ldb, 0.0f, want, n);
		mura_sbgemm_bn(p, m, n, k, a, lda, b, ldb, ka, kb, c, n, NULL);
		ok = memcmp(c, want, (size_t)m * n * sizeof *c) == 0;
		if (!ok)
			printf("  sbgemm_bn %dx%dx%d: differs from sbgemm of the written operand\n", m, n, k);
		ok = ok && post_case(p, m, n, k, a, lda, b, ldb, ka, kb, want, g);
	}
	free(a), free(b), free(bn), free(ka), free(kb), free(c), free(want);
	return ok;
}

/* norm1 + relu1 + conv1 of a DenseNet layer folded (mura_bn_map, then
 * mura_conv_forward_bn) against the two written out (mura_bn_forward or
 * _cached, then mura_conv_forward): the same y, map, running statistics
 * and num_batches_tracked, bit for bit, in training and evaluation. */
static int
conv_bn_case(int train, struct mura_rng *g)
{
	enum { CIN = 45, COUT = 40, N = 2, H = 13, W = 17 };
	const size_t plane = (size_t)N * H * W;
	struct mura_threads *two = mura_threads_create(2);
	float *wt = malloc((size_t)COUT * CIN * sizeof *wt), *x = malloc(CIN * plane * sizeof *x);
	float *a1 = malloc(CIN * plane * sizeof *a1), *y0 = malloc(COUT * plane * sizeof *y0);
	float *y1 = malloc(COUT * plane * sizeof *y1), *f = calloc(2 * 8 * CIN, sizeof *f);
	double *st = calloc(4 * CIN, sizeof *st);
	int64_t nbt[2] = {0, 0};
	int ok = two && wt && x && a1 && y0 && y1 && f && st;
	if (!ok)
		goto out;
	struct mura_conv cv = {CIN, COUT, 1, 1, 0, wt, NULL, NULL, NULL};
	struct mura_bn bn[2];
	for (int i = 0; i < 2; i++) {  /* one per side, the same weights and running statistics */
		float *v = f + (size_t)i * 8 * CIN;
		bn[i] = (struct mura_bn){CIN, v, NULL, v + CIN, NULL, v + 2 * CIN, v + 3 * CIN, &nbt[i],
		                         v + 4 * CIN, v + 5 * CIN, 0.1f, 1e-5f, v + 6 * CIN, v + 7 * CIN};
	}
	for (int c = 0; c < CIN; c++) {
		bn[0].w[c] = bn[1].w[c] = (float)(0.5 + mura_rng_double(g));
		bn[0].b[c] = bn[1].b[c] = (float)mura_rng_normal(g) * 0.3f;
		bn[0].rmean[c] = bn[1].rmean[c] = (float)mura_rng_normal(g) * 0.2f;
		bn[0].rvar[c] = bn[1].rvar[c] = (float)(0.5 + mura_rng_double(g));
	}
	for (size_t i = 0; i < (size_t)COUT * CIN; i++)
		wt[i] = (float)mura_rng_normal(g);
	for (size_t i = 0; i < CIN * plane; i++)
		x[i] = (float)(mura_rng_normal(g) + 0.3);
	/* the first 20 channels' statistics cached, as by an earlier layer */
	struct mura_bn_stats s0 = {st, st + CIN, CIN, 0}, s1 = {st + 2 * CIN, st + 3 * CIN, CIN, 0};
	struct mura_fm fx = {x, CIN, N, H, W}, fx20 = {x, 20, N, H, W}, fa = {a1, CIN, N, H, W};
	struct mura_fm fy0 = {y0, COUT, N, H, W}, fy1 = {y1, COUT, N, H, W}, fa20 = {a1, 20, N, H, W};
	struct mura_nn_ctx ctx = {two, NULL, 0, NULL, NULL, NULL, 1};
	if (train) {
		mura_bn_forward_cached(&ctx, &bn[0], &fx20, &fa20, 1, &s0);
		mura_bn_forward_cached(&ctx, &bn[1], &fx20, &fa20, 1, &s1);
		mura_bn_forward_cached(&ctx, &bn[0], &fx, &fa, 1, &s0);
		mura_bn_map(&ctx, &bn[1], &fx, 1, &s1, bn[1].scale, bn[1].shift);
		ok = s1.known == CIN && nbt[0] == 2 && nbt[1] == 2;
	} else {
		mura_bn_forward(&ctx, &bn[0], &fx, &fa, 0, 1);
		mura_bn_map(&ctx, &bn[1], &fx, 0, NULL, bn[1].scale, bn[1].shift);
		ok = nbt[0] == 0 && nbt[1] == 0;
	}
	mura_conv_forward(&ctx, &cv, &fa, &fy0);
	mura_conv_forward_bn(&ctx, &cv, &fx, bn[1].scale, bn[1].shift, &fy1);
	ok = ok && memcmp(y0, y1, COUT * plane * sizeof *y0) == 0;
	if (train)  /* the maps, batch statistics and running statistics */
		ok = ok && memcmp(f + 4 * CIN, f + 12 * CIN, 4 * CIN * sizeof *f) == 0 &&
		     memcmp(f + 2 * CIN, f + 10 * CIN, 2 * CIN * sizeof *f) == 0;
out:
	free(wt), free(x), free(a1), free(y0), free(y1), free(f), free(st);
	mura_threads_free(two);
	return ok;
}

/* mura_sbgemm_conv and mura_sbgemm_conv_gw (im2col read while packed)
 * against im2col written out here + mura_sbgemm: the same values bit for
 * bit, k 3 and 5, beta 0 and 1, one thread and two, sizes that cut the
 * 16-lane vectors and tiles (and positions past KC, for the gradient). */
static int
conv_gemm_case(struct mura_threads *p, int m, int kin, int images, int h, int w, int k, float beta,
               struct mura_rng *g)
{
	const int kdim = kin * k * k, pad = (k - 1) / 2;
	const size_t n = (size_t)images * h * w;
	float *a = malloc((size_t)m * kdim * sizeof *a), *x = malloc((size_t)kin * n * sizeof *x);
	float *col = calloc((size_t)kdim * n, sizeof *col);
	float *c1 = malloc((size_t)m * n * sizeof *c1), *c2 = malloc((size_t)m * n * sizeof *c2);
	int ok = a && x && col && c1 && c2;

	for (size_t i = 0; ok && i < (size_t)m * kdim; i++)
		a[i] = (float)mura_rng_normal(g);
	for (size_t i = 0; ok && i < (size_t)kin * n; i++)
		x[i] = (float)mura_rng_normal(g);
	for (size_t i = 0; ok && i < (size_t)m * n; i++)
		c1[i] = c2[i] = (float)mura_rng_normal(g);
	for (int q = 0; ok && q < kdim; q++) {
		int ci = q / (k * k), dy = q / k % k - pad, dx = q % k - pad;
		for (int im = 0; im < images; im++)
			for (int y = 0; y < h; y++)
				for (int xx = 0; xx < w; xx++)
					if (y + dy >= 0 && y + dy < h && xx + dx >= 0 && xx + dx < w)
						col[(size_t)q * n + ((size_t)im * h + y) * w + xx] =
						    x[(size_t)ci * n + ((size_t)im * h + y + dy) * w + xx + dx];
	}
	if (ok) {
		mura_sbgemm(p, 0, 0, m, (int)n, kdim, 1.0f, a, kdim, col, (int)n, beta, c1, (int)n);
		mura_sbgemm_conv(p, m, kin, a, x, images, h, w, k, beta, c2, NULL);
		ok = memcmp(c1, c2, (size_t)m * n * sizeof *c1) == 0;
		if (!ok)
			printf("  sbgemm_conv %d x %d, %d x %d x %d, k %d, beta %g: differs\n", m, kin, images, h, w, k,
			       beta);
	}
	/* the weight gradient: g (m x kdim) += c1 col^T, rows [0, r) and [r, kdim) apart */
	float *g1 = ok ? malloc((size_t)m * kdim * sizeof *g1) : NULL, *g2 = ok ? malloc((size_t)m * kdim * sizeof *g2) : NULL;
	ok = ok && g1 && g2;
	for (size_t i = 0; ok && i < (size_t)m * kdim; i++)
		g1[i] = g2[i] = (float)mura_rng_normal(g);
	if (ok) {
		const size_t r = (size_t)kdim / 3;
		mura_sbgemm(NULL, 0, 1, m, kdim, (int)n, 1.0f, c1, (int)n, col, (int)n, 1.0f, g1, kdim);
		mura_sbgemm_conv_gw(m, c1, x, images, h, w, k, 0, r, g2, (size_t)kdim);
		mura_sbgemm_conv_gw(m, c1, x, images, h, w, k, r, (size_t)kdim, g2 + r, (size_t)kdim);
		ok = memcmp(g1, g2, (size_t)m * kdim * sizeof *g1) == 0;
		if (!ok)
			printf("  sbgemm_conv_gw %d x %d, %d x %d x %d, k %d: differs\n", m, kin, images, h, w, k);
	}
	free(g1), free(g2);
	free(a), free(x), free(col), free(c1), free(c2);
	return ok;
}

static void
test_conv_gemm(void)
{
	struct mura_threads *one = mura_threads_create(1), *two = mura_threads_create(2);
	struct mura_rng g;
	int ok = one && two;

	mura_rng_seed(&g, 11);
	ok = ok && conv_gemm_case(one, 40, 7, 2, 9, 11, 3, 0.0f, &g) && conv_gemm_case(two, 33, 5, 3, 17, 5, 3, 1.0f, &g) &&
	     conv_gemm_case(two, 70, 3, 1, 23, 29, 5, 0.0f, &g) && conv_gemm_case(one, 1, 40, 2, 1, 40, 3, 0.0f, &g) &&
	     conv_gemm_case(two, 32, 64, 2, 20, 30, 3, 0.0f, &g);
	CHECK("sbgemm_conv, sbgemm_conv_gw: im2col read while packed, bit for bit im2col + sbgemm (k 3 and 5, "
	      "beta 0 and 1, the weight gradient by parts of its rows)", ok);
	mura_threads_free(one);
	mura_threads_free(two);
}

static void
test_bn_folded(void)
{
	static const int shapes[][3] = {{1, 1, 1}, {13, 33, 3}, {7, 70, 257}, {40, 530, 513}, {300, 40, 130}};
	struct mura_threads *one = mura_threads_create(1), *two = mura_threads_create(2);
	struct mura_rng g;
	int ok = one && two;

	mura_rng_seed(&g, 13);
	for (size_t s = 0; ok && s < sizeof shapes / sizeof shapes[0]; s++)
		ok = gemm_bn_case(one, shapes[s][0], shapes[s][1], shapes[s][2], &g) &&
		     gemm_bn_case(two, shapes[s][0], shapes[s][1], shapes[s][2], &g);
	CHECK("sbgemm_bn: relu(B ka + kb) applied in the packing equals sbgemm of it written out, and its "
	      "post (batch norm, shortcut, ReLU) applied per block equals mura_bn_post after it, bit for bit", ok);
	mura_threads_free(one);
	mura_threads_free(two);
	CHECK("conv_forward_bn: a folded batch norm + ReLU + 1x1 conv, training (cached statistics): "
	      "y, map, statistics bit for bit", conv_bn_case(1, &g));
	CHECK("conv_forward_bn: the same in evaluation (running statistics)", conv_bn_case(0, &g));
}

static void
test_precision(void)
{
	struct mura_model_config c;
	struct mura_model *m;
	int fb;

	CHECK("precision: names parse, unknown refused",
	      mura_precision_parse("fp32") == MURA_PRECISION_FP32 &&
	          mura_precision_parse("bf16") == MURA_PRECISION_BF16 &&
	          mura_precision_parse("auto") == MURA_PRECISION_AUTO && mura_precision_parse("fp16") < 0 &&
	          strstr(mura_error_get(), "unknown precision 'fp16'"));
	int r = mura_precision_resolve(MURA_PRECISION_AUTO, &fb);
	CHECK("precision: auto is bf16 exactly where the CPU has AVX512-BF16",
	      mura_bf16_supported() ? r == MURA_PRECISION_BF16 && !fb : r == MURA_PRECISION_FP32 && fb);
	mura_model_config_default(&c);
	c.arch = MURA_ARCH_RESNET18;
	c.threads = 1;
	c.precision = MURA_PRECISION_BF16;
	m = mura_model_create(&c);
	if (mura_bf16_supported())
		CHECK("precision: a bf16 model is created on this CPU", m != NULL);
	else
		CHECK("precision: bf16 without AVX512-BF16 is an error that says so",
		      !m && strstr(mura_error_get(), "no AVX512-BF16"));
	mura_model_free(m);
}

int
main(void)
{
	test_round();
	test_precision();
	if (!mura_bf16_supported()) {
		printf("SKIPPED: sbgemm: this CPU has no AVX512-BF16\n");
		return test_status();
	}
	printf("# sbgemm runs on %s\n", mura_bf16_amx() ? "AMX tiles" : "AVX512-BF16 vectors");
	test_sbgemm();
	test_conv_gemm();
	test_conv();
	test_bn_folded();
	return test_status();
}
