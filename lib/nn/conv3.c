/*
 * conv3.c - convolutions by direct kernels, without im2col: the 3x3,
 * stride 1, padding 1 convolution by positions (below), and any other
 * window "by channels" (further down).
 *
 * Why: a DenseNet layer's 3x3 convolution has 32 output channels.  As
 * im2col + GEMM it spends as long building and packing col (9 copies of
 * its input) as multiplying, and OpenBLAS's kernels are shaped for large M:
 * densenet169 at 320 px ran its 3x3 forward at 160 GFLOP/s, its 1x1 at 350
 * (batch 8, 2 threads, an AVX-512 machine whose sgemm peaks near 450).
 * With this kernel: 345 GFLOP/s forward, 3x3 backward 206 -> 308, and the
 * whole training step 1.73 -> 1.34 s (make bench PROFILE=1).
 *
 * How: the input is copied once into a zero-bordered copy xp, each channel
 * one flat row of N images of (H+2) x (W+2) (plus margins).  In that flat
 * index q, the output at q is
 *     y[q] = sum over ci, tap (ky, kx) of  W[co][ci][ky][kx] * xp[ci][q + (ky-1)(W+2) + (kx-1)]
 * for every q that is inside an image; so a run of consecutive q is a run of
 * consecutive xp at nine fixed offsets, whatever rows it crosses.  The
 * kernel computes OCB output channels x QV vectors of q at once, in
 * registers, over all K = Cin * 9 products, with no packing of the input
 * at all; the values at border q are computed and thrown away (44% extra
 * work at 10 x 10, 5% at 80 x 80).  Weights are packed once per call as
 * wp[co / OCB][ci][tap][OCB], so each step broadcasts OCB consecutive floats.
 *
 * The kernel is compiled three times (conv3_kernel.h): AVX-512 (8 x 48),
 * AVX2 + FMA (4 x 24), and plain 128-bit vectors (4 x 8) for any other
 * machine; the first the CPU has is used, unless MURA_SIMD=avx2 or
 * MURA_SIMD=generic asks for a lesser one (the tests run all three).
 * This file is compiled with -ffp-contract=fast (Makefile): a += x * w is
 * meant to be one fused multiply-add.
 *
 * The same kernel gives a "same" convolution's dx (conv.c): a forward
 * convolution of dy with the flipped, transposed weights, which the packing
 * reads straight from W.
 *
 * In mixed precision (ctx->bf16) the kernels by positions have bf16
 * versions where the CPU has AVX512-BF16 (conv3_bf16_part: input channels
 * in pairs; conv3_bf16_gw_part: positions in pairs; vdpbf16ps), and the
 * others round their operands to bf16 as they copy them (the zero-bordered
 * input, the packed weights, dy's copies): so all compute what the bf16
 * GEMM does, products of bf16 values, exact in fp32, summed in fp32.
 * conv.c says where each pays.
 *
 * By channels: where the image is small against the channels (a 64 px
 * input reaches layer4 at 2 x 2), the border would be most of the work.
 * That kernel instead computes 6 output positions, whichever rows and images
 * they lie in, x 64 output channels (AVX-512; 2 x 8 AVX2, 2 x 4 plain) in
 * registers: each step broadcasts one input value per position from the
 * zero-bordered copy and multiplies it with 4 vectors of packed weights.
 * Any window, stride and padding: also the stems' 7x7 stride 2 and the
 * stride-2 3x3s.  resnet18 at 64 px, batch 32: inference 691 -> 950
 * images/s, training step 231 -> 288.  Its weight gradient likewise holds
 * 6 taps x 64 output channels, over a transposed copy of dy in which a
 * position's channels are one vector (the strided convolutions: resnet18 at
 * 64 px, training step 290 -> 326 images/s).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "util.h"

/* The three compiled kernels; conv3_kernel.h defines them. */
struct conv3_job {
	const float *xp, *wp, *dyp;
	float *y, *gw;
	int cin, cout, n, h, w, acc;
	size_t stride;   /* floats per channel of xp (and dyp) */
	size_t tiles;    /* tiles of q over [0, N (H+2) (W+2)) */
	size_t qblock;   /* values of q per block of the weight gradient */
	/* the kernel by channels: window k, stride s, output ho x wo, and the
	 * padded copy's row and image sizes */
	int k, s, ho, wo;
	size_t wpitch, img;
};

#define KNAME conv3_generic
#define VL 4
#define OCB 4
#define QV 2
#define GOCB 1
#define CVV 2
#define CPT 6
#include "conv3_kernel.h"

#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define KNAME conv3_avx2
#define VL 8
#define OCB 4
#define QV 3
#define GOCB 1
#define CVV 2
#define CPT 6
#include "conv3_kernel.h"
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f")
#define KNAME conv3_avx512
#define VL 16
#define OCB 8
#define QV 3
#define GOCB 2
#define CVV 4
#define CPT 6
#include "conv3_kernel.h"
#pragma GCC pop_options
#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#define HAVE_CONV3_BF16 1
/*
 * By positions in bf16 (AVX512-BF16): the AVX-512 kernel's tile (8 output
 * channels x 48 q) with input channels taken two at a time.  xp holds,
 * per pair of channels, one 32-bit word per q: bf16(x[2c][q]) |
 * bf16(x[2c + 1][q]) << 16 (mura_bf16_pair_n), and the weights are packed
 * likewise, wp[co / 8][c][tap][co % 8] = the pair (W[co][2c][tap],
 * W[co][2c + 1][tap]); one vdpbf16ps then adds both channels' products
 * for 16 q.  Half the instructions of the fp32 kernel, half the bytes.
 */
__attribute__((target("avx512f,avx512bf16"))) static void
conv3_bf16_part(void *v, size_t lo, size_t hi)
{
	const struct conv3_job *j = v;
	const ptrdiff_t wp = (ptrdiff_t)j->w + 2;
	const ptrdiff_t off[9] = {-wp - 1, -wp, -wp + 1, -1, 0, 1, wp - 1, wp, wp + 1};
	const size_t cp = ((size_t)j->cin + 1) / 2;
	const uint32_t *xp = (const uint32_t *)j->xp, *wpk = (const uint32_t *)j->wp;

	for (size_t t = lo; t < hi; t++) {
		const size_t q0 = t * 48;
		for (int co0 = 0; co0 < j->cout; co0 += 8) {
			const uint32_t *wb = wpk + (size_t)co0 * cp * 9;
			__m512 acc[8][3];
			for (int o = 0; o < 8; o++)
				acc[o][0] = acc[o][1] = acc[o][2] = _mm512_setzero_ps();
			for (size_t c = 0; c < cp; c++) {
				const uint32_t *xc = xp + c * j->stride + q0;
				for (int tap = 0; tap < 9; tap++) {
					const uint32_t *xs = xc + off[tap], *wk = wb + (c * 9 + (size_t)tap) * 8;
					__m512bh xv[3];
					for (int u = 0; u < 3; u++)
						xv[u] = (__m512bh)_mm512_loadu_si512((const void *)(xs + 16 * u));
#pragma GCC unroll 8
					for (int o = 0; o < 8; o++) {
						const __m512bh wv = (__m512bh)_mm512_set1_epi32((int)wk[o]);
						for (int u = 0; u < 3; u++)
							acc[o][u] = _mm512_dpbf16_ps(acc[o][u], wv, xv[u]);
					}
				}
			}
			float tb[8 * 48];
			for (int o = 0; o < 8; o++)
				for (int u = 0; u < 3; u++)
					_mm512_storeu_ps(tb + o * 48 + u * 16, acc[o][u]);
			conv3_avx512_store(j, tb, q0, co0);
		}
	}
}
/*
 * The weight gradient in bf16, as the fp32 kernel's _gw_block with pairs
 * of q: xp and dyp hold one bf16 per q (mura_bf16_n), so 32 consecutive q
 * are one vector, and one vdpbf16ps adds dy[q] x[q + off] for 32 q (16
 * lanes of two).  Thread t's input channels, blocks of j->qblock values of
 * q (dyp's block stays in cache), 2 output channels x 9 taps in registers.
 */
__attribute__((target("avx512f,avx512bf16"))) static inline __attribute__((always_inline)) void
conv3_bf16_gw_block(const struct conv3_job *j, int co0, int nb, int ci, size_t q0, size_t q1,
                    const ptrdiff_t *off)
{
	const uint16_t *xc = (const uint16_t *)j->xp + (size_t)ci * j->stride;
	const uint16_t *dyp = (const uint16_t *)j->dyp;
	__m512 acc[2][9];

	for (int o = 0; o < 2; o++)
		for (int tap = 0; tap < 9; tap++)
			acc[o][tap] = _mm512_setzero_ps();
	for (size_t q = q0; q < q1; q += 32) {
		__m512bh d[2];
		for (int o = 0; o < nb; o++)
			d[o] = (__m512bh)_mm512_loadu_si512((const void *)(dyp + (size_t)(co0 + o) * j->stride + q));
#pragma GCC unroll 9
		for (int tap = 0; tap < 9; tap++) {
			__m512bh xv = (__m512bh)_mm512_loadu_si512((const void *)(xc + q + off[tap]));
			for (int o = 0; o < nb; o++)
				acc[o][tap] = _mm512_dpbf16_ps(acc[o][tap], d[o], xv);
		}
	}
	for (int o = 0; o < nb; o++)
		for (int tap = 0; tap < 9; tap++)
			j->gw[((size_t)(co0 + o) * j->cin + ci) * 9 + tap] += _mm512_reduce_add_ps(acc[o][tap]);
}

__attribute__((target("avx512f,avx512bf16"))) static void
conv3_bf16_gw_part(void *v, int t, int nt)
{
	const struct conv3_job *j = v;
	const ptrdiff_t wp = (ptrdiff_t)j->w + 2;
	const ptrdiff_t off[9] = {-wp - 1, -wp, -wp + 1, -1, 0, 1, wp - 1, wp, wp + 1};
	const size_t end = j->tiles * 32;
	size_t lo, hi;

	mura_threads_share((size_t)j->cin, t, nt, 1, &lo, &hi);
	for (size_t q0 = 0; q0 < end; q0 += j->qblock) {
		size_t q1 = q0 + j->qblock < end ? q0 + j->qblock : end;
		for (size_t ci = lo; ci < hi; ci++) {
			int co0 = 0;
			for (; co0 + 2 <= j->cout; co0 += 2)
				conv3_bf16_gw_block(j, co0, 2, (int)ci, q0, q1, off);
			if (co0 < j->cout)
				conv3_bf16_gw_block(j, co0, 1, (int)ci, q0, q1, off);
		}
	}
}
#endif

struct kernel {
	const char *name;
	int ocb, tile;   /* output channels and q per kernel call */
	void (*part)(void *job, size_t lo, size_t hi);     /* forward, tiles [lo, hi) */
	void (*gw_part)(void *job, int t, int nt);         /* weight gradient, thread t */
	int cob, cpt;    /* output channels and positions per item of the kernel by channels */
	void (*cv_part)(void *job, size_t lo, size_t hi);  /* by channels, items [lo, hi) */
	void (*cgw_part)(void *job, int t, int nt);        /* its weight gradient, thread t */
};

static const struct kernel kernels[] = {
#if defined(__x86_64__) && defined(__GNUC__)
	{"avx512", 8, 48, conv3_avx512_part, conv3_avx512_gw_part, 64, 6, conv3_avx512_cv_part,
	 conv3_avx512_cgw_part},
	{"avx2", 4, 24, conv3_avx2_part, conv3_avx2_gw_part, 16, 6, conv3_avx2_cv_part,
	 conv3_avx2_cgw_part},
#endif
	{"generic", 4, 8, conv3_generic_part, conv3_generic_gw_part, 8, 6, conv3_generic_cv_part,
	 conv3_generic_cgw_part},
};

/* The best kernel this CPU runs, or the one MURA_SIMD names (if it runs):
 * decided once per process, since neither the CPU nor the environment
 * changes under it, and convolutions ask for every call. */
static const struct kernel *chosen;
static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;

static void
choose(void)
{
	const char *want = getenv("MURA_SIMD");
	size_t i = 0;

#if defined(__x86_64__) && defined(__GNUC__)
	if (!__builtin_cpu_supports("avx512f"))
		i = 1;
	if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")))
		i = 2;
#endif
	chosen = &kernels[i];
	if (want && *want)
		for (size_t k = i; k < sizeof kernels / sizeof *kernels; k++)
			if (strcmp(kernels[k].name, want) == 0)
				chosen = &kernels[k];
}

static const struct kernel *
pick(void)
{
	pthread_once(&chosen_once, choose);
	return chosen;
}

/* Geometry of the padded copy: rows of (W+2p), images of (H+2p) rows, and a
 * margin before and after each channel that covers conv3's nine offsets
 * and its last tile's overrun. */
struct pgeom {
	size_t pad, wp, img, total, margin, stride;
};

static struct pgeom
pgeom_of(int n, int h, int w, int pad, int tile)
{
	struct pgeom g;

	g.pad = (size_t)pad;
	g.wp = (size_t)w + 2 * g.pad;
	g.img = ((size_t)h + 2 * g.pad) * g.wp;
	g.total = (size_t)n * g.img;
	g.margin = (g.wp + 1 + 15) / 16 * 16;
	g.stride = g.margin + (g.total + (size_t)tile - 1) / (size_t)tile * (size_t)tile + g.margin;
	return g;
}

size_t
mura_conv3_scratch(int cin, int cout, int n, int h, int w)
{
	size_t need = 0;

	for (size_t k = 0; k < sizeof kernels / sizeof *kernels; k++) {
		struct pgeom g = pgeom_of(n, h, w, 1, kernels[k].tile);
		/* forward: xp and the packed weights; backward: xp, dyp and
		 * the packed flipped weights */
		size_t f = (size_t)cin * g.stride + ((size_t)cout + 7) / 8 * 8 * cin * 9;
		size_t b = ((size_t)cin + cout) * g.stride + ((size_t)cin + 7) / 8 * 8 * cout * 9;
		need = need > f ? need : f;
		need = need > b ? need : b;
	}
	return need;
}

struct pad_job {
	const float *x;
	float *xp;
	int n, h, w;
	struct pgeom g;
	int bf16;  /* round to bf16 while copying */
	int c;     /* channels of x */
};

static void
pad_part(void *v, size_t c0, size_t c1)
{
	const struct pad_job *j = v;
	const size_t plane = (size_t)j->n * j->h * j->w;

	for (size_t c = c0; c < c1; c++) {
		float *d = j->xp + c * j->g.stride;
		const float *s = j->x + c * plane;
		memset(d, 0, j->g.stride * sizeof *d);
		d += j->g.margin;
		for (int i = 0; i < j->n; i++)
			for (int r = 0; r < j->h; r++) {
				float *dr = d + (size_t)i * j->g.img + ((size_t)r + j->g.pad) * j->g.wp + j->g.pad;
				const float *sr = s + ((size_t)i * j->h + r) * j->w;
				if (j->bf16)
					mura_bf16_round_n(dr, sr, (size_t)j->w);
				else
					memcpy(dr, sr, (size_t)j->w * sizeof *s);
			}
	}
}

/* Copies channels of f into the zero-bordered layout at xp (rounded to
 * bf16 in ctx's mixed precision); returns the pointer to q = 0 of channel 0. */
static float *
pad(struct mura_nn_ctx *ctx, const struct mura_fm *f, float *xp, struct pgeom g)
{
	struct pad_job j = {f->d, xp, f->n, f->h, f->w, g, ctx->bf16, f->c};

	mura_threads_for(ctx->threads, (size_t)f->c, 1, pad_part, &j);
	return xp + g.margin;
}

/* Does the forward by positions run conv3_bf16_part (ctx's precision is
 * bf16 and the AVX-512 kernel is the one picked)? */
static int
pairs(const struct mura_nn_ctx *ctx, const struct kernel *k)
{
#ifdef HAVE_CONV3_BF16
	return ctx->bf16 && k == &kernels[0];
#else
	(void)ctx, (void)k;
	return 0;
#endif
}

/* The pairs of channels [c0, c1) of the input, zero-bordered as pad_part's
 * copy, each word two channels' bf16 (conv3_bf16_part). */
static void
pad_pairs_part(void *v, size_t c0, size_t c1)
{
	const struct pad_job *j = v;
	const size_t plane = (size_t)j->n * j->h * j->w;

	for (size_t c = c0; c < c1; c++) {
		uint32_t *d = (uint32_t *)j->xp + c * j->g.stride;
		const float *a = j->x + 2 * c * plane, *b = 2 * (int)c + 1 < j->c ? a + plane : NULL;
		memset(d, 0, j->g.stride * sizeof *d);
		d += j->g.margin;
		for (int i = 0; i < j->n; i++)
			for (int r = 0; r < j->h; r++) {
				size_t so = ((size_t)i * j->h + r) * j->w;
				mura_bf16_pair_n(d + (size_t)i * j->g.img + ((size_t)r + j->g.pad) * j->g.wp + j->g.pad,
				                 a + so, b ? b + so : NULL, (size_t)j->w);
			}
	}
}

/* pad's copy of f in pairs of channels at xp; returns q = 0 of pair 0. */
static float *
pad_pairs(struct mura_nn_ctx *ctx, const struct mura_fm *f, float *xp, struct pgeom g)
{
	struct pad_job j = {f->d, xp, f->n, f->h, f->w, g, 1, f->c};

	mura_threads_for(ctx->threads, ((size_t)f->c + 1) / 2, 1, pad_pairs_part, &j);
	return xp + g.margin;
}

/* pad's copy of channels [c0, c1) with one bf16 per q (conv3_bf16_gw_part). */
static void
pad_halves_part(void *v, size_t c0, size_t c1)
{
	const struct pad_job *j = v;
	const size_t plane = (size_t)j->n * j->h * j->w;

	for (size_t c = c0; c < c1; c++) {
		uint16_t *d = (uint16_t *)j->xp + c * j->g.stride;
		memset(d, 0, j->g.stride * sizeof *d);
		d += j->g.margin;
		for (int i = 0; i < j->n; i++)
			for (int r = 0; r < j->h; r++)
				mura_bf16_n(d + (size_t)i * j->g.img + ((size_t)r + j->g.pad) * j->g.wp + j->g.pad,
				            j->x + c * plane + ((size_t)i * j->h + r) * j->w, (size_t)j->w);
	}
}

/* pad's copy of f at xp in bf16, one per q; returns q = 0 of channel 0 (in
 * 16-bit units from xp). */
static uint16_t *
pad_halves(struct mura_nn_ctx *ctx, const struct mura_fm *f, void *xp, struct pgeom g)
{
	struct pad_job j = {f->d, xp, f->n, f->h, f->w, g, 1, f->c};

	mura_threads_for(ctx->threads, (size_t)f->c, 1, pad_halves_part, &j);
	return (uint16_t *)xp + g.margin;
}

struct pack_job {
	const float *w;
	float *wp;
	int cin, cout, ocb, flip, taps;
	int bf16;  /* round to bf16 while packing */
};

/* wp[co / ocb][ci][tap][co % ocb] for the output channels of blocks
 * [b0, b1), zero past cout, for taps = k * k.  With flip, the convolution
 * packed is the one whose weights are Wt[co][ci][taps - 1 - tap] =
 * W[ci][co][tap] (W as it lies: [cin'][cout'][k][k] with cin' = cout,
 * cout' = cin of this call). */
static void
pack_part(void *v, size_t b0, size_t b1)
{
	const struct pack_job *j = v;

	const int nt = j->taps;

	/* o outside t: each source row's nt floats read in one go (o inside
	 * read one float per cache line: a tenth of mura-score's time at 64 px) */
	for (size_t b = b0; b < b1; b++)
		for (int ci = 0; ci < j->cin; ci++) {
			float *d = j->wp + (b * j->cin + ci) * nt * j->ocb;
			for (int o = 0; o < j->ocb; o++) {
				const int co = (int)b * j->ocb + o;
				const float *src = co >= j->cout ? NULL
				                 : j->flip ? j->w + ((size_t)ci * j->cout + co) * nt
				                           : j->w + ((size_t)co * j->cin + ci) * nt;
				for (int t = 0; t < nt; t++) {
					float v = !src ? 0 : j->flip ? src[nt - 1 - t] : src[t];
					d[t * j->ocb + o] = j->bf16 ? mura_bf16_round(v) : v;
				}
			}
		}
}

/* pack_part's weights for conv3_bf16_part: blocks [b0, b1) of 8 output
 * channels, wp[b][c][tap][o] = the bf16 pair (W'[co][2c][tap], W'[co][2c +
 * 1][tap]) with co = 8 b + o, W' as pack_part reads it (flip too); zero
 * past cout and past cin. */
static void
pack_pairs_part(void *v, size_t b0, size_t b1)
{
	const struct pack_job *j = v;
	const int cp = (j->cin + 1) / 2;
	uint32_t *wp = (uint32_t *)j->wp;

	for (size_t b = b0; b < b1; b++)
		for (int c = 0; c < cp; c++)
			for (int o = 0; o < 8; o++) {
				const int co = (int)b * 8 + o;
				for (int t = 0; t < 9; t++) {
					uint32_t pr = 0;
					for (int h = 0; h < 2 && co < j->cout && 2 * c + h < j->cin; h++) {
						int ci = 2 * c + h;
						float w = j->flip ? j->w[((size_t)ci * j->cout + co) * 9 + (8 - t)]
						                  : j->w[((size_t)co * j->cin + ci) * 9 + t];
						uint32_t u;
						float r = mura_bf16_round(w);
						memcpy(&u, &r, sizeof u);
						pr |= (u >> 16) << (16 * h);
					}
					wp[((b * (size_t)cp + (size_t)c) * 9 + (size_t)t) * 8 + (size_t)o] = pr;
				}
			}
}

/*
 * Packed weights kept between calls while ctx->packs is set (the caller
 * promises constant weights: mura_model_keep_packed).  Packing every
 * layer for every batch was a tenth of mura-score's time at 64 px (all of
 * resnet18's 11M weights rewritten per batch of 16).  One entry per
 * (weights, direction, layout); a linear search, as a network has at most
 * a few hundred convolutions.
 */
struct pack_entry {
	const float *w;
	int flip, ocb, taps, cin, cout, bf16;
	float *wp;
};

struct mura_packs {
	struct pack_entry *e;
	size_t n, cap;
};

struct mura_packs *
mura_packs_new(void)
{
	return calloc(1, sizeof(struct mura_packs));
}

void
mura_packs_free(struct mura_packs *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++)
		free(p->e[i].wp);
	free(p->e);
	free(p);
}

/* j's weights packed: from ctx->packs, packed into it the first time, or
 * into j->wp (scratch) when nothing is kept or memory is short. */
static const float *
packed(struct mura_nn_ctx *ctx, struct pack_job *j, size_t blocks)
{
	struct mura_packs *p = ctx->packs;
	size_t n = blocks * (size_t)j->ocb * j->cin * j->taps;

	if (p) {
		for (size_t i = 0; i < p->n; i++) {
			struct pack_entry *e = &p->e[i];
			if (e->w == j->w && e->flip == j->flip && e->ocb == j->ocb && e->taps == j->taps &&
			    e->cin == j->cin && e->cout == j->cout && e->bf16 == j->bf16)
				return e->wp;
		}
		float *wp = NULL;
		if ((p->n < p->cap || mura_grow(&p->e, &p->cap, p->n + 1, sizeof *p->e) == 0) &&
		    (wp = aligned_alloc(64, (n * sizeof *wp + 63) / 64 * 64))) {
			p->e[p->n++] = (struct pack_entry){j->w, j->flip, j->ocb, j->taps, j->cin, j->cout, j->bf16, wp};
			j->wp = wp;
		}
	}
	mura_threads_for(ctx->threads, blocks, 1, pack_part, j);
	return j->wp;
}

/* y (+)= the convolution of the padded input xp (cin channels) with W
 * (flip: see pack_part) packed at wp. */
static void
forward(struct mura_nn_ctx *ctx, const struct kernel *k, struct pgeom g, int cin, int cout,
        const float *w, int flip, const float *xp, float *wp, const struct mura_fm *shape,
        float *y, int acc)
{
	const size_t blocks = ((size_t)cout + (size_t)k->ocb - 1) / (size_t)k->ocb;
	struct pack_job pj = {w, wp, cin, cout, k->ocb, flip, 9, ctx->bf16};
	struct conv3_job j = {xp, NULL, NULL, y, NULL, cin, cout, shape->n, shape->h, shape->w, acc,
	                      g.stride, (g.total + (size_t)k->tile - 1) / (size_t)k->tile, 0, 3, 1, 0, 0, 0, 0};

#ifdef HAVE_CONV3_BF16
	if (pairs(ctx, k)) {  /* xp in pairs (pad_pairs); the weights likewise, not kept */
		mura_threads_for(ctx->threads, blocks, 1, pack_pairs_part, &pj);
		j.wp = wp;
		mura_threads_for(ctx->threads, j.tiles, 1, conv3_bf16_part, &j);
		return;
	}
#endif
	j.wp = packed(ctx, &pj, blocks);
	mura_threads_for(ctx->threads, j.tiles, 1, k->part, &j);
}

int
mura_conv3_bf16(const struct mura_nn_ctx *ctx)
{
	return pairs(ctx, pick());
}

/* Single thread, 8 images: 128 -> 32 channels at 10 x 10, the forward
 * takes 0.40 ms against im2col + GEMM's 0.78 though 44% of it is border;
 * 512 -> 512 at 10 x 10, 24.3 ms against 18.2; 256 -> 256 at 20 x 20 (21%
 * border), 18.4 against 20.2. */
int
mura_conv3_pays(int cout, int h, int w)
{
	return cout <= 64 || (size_t)(h + 2) * (size_t)(w + 2) * 4 <= (size_t)h * (size_t)w * 5;
}

void
mura_conv3_forward(struct mura_nn_ctx *ctx, const struct mura_conv *cv, const struct mura_fm *x,
                   struct mura_fm *y)
{
	const struct kernel *k = pick();
	const struct pgeom g = pgeom_of(x->n, x->h, x->w, 1, k->tile);
	float *xp = pairs(ctx, k) ? pad_pairs(ctx, x, ctx->scratch, g) : pad(ctx, x, ctx->scratch, g);

	forward(ctx, k, g, cv->cin, cv->cout, cv->w, 0, xp, ctx->scratch + (size_t)cv->cin * g.stride,
	        x, y->d, 0);
}

void
mura_conv3_dx(struct mura_nn_ctx *ctx, const struct mura_conv *cv, const struct mura_fm *dy,
              struct mura_fm *dx, int acc)
{
	const struct kernel *k = pick();
	const struct pgeom g = pgeom_of(dy->n, dy->h, dy->w, 1, k->tile);
	float *dyp = pairs(ctx, k) ? pad_pairs(ctx, dy, ctx->scratch, g) : pad(ctx, dy, ctx->scratch, g);

	forward(ctx, k, g, cv->cout, cv->cin, cv->w, 1, dyp, ctx->scratch + (size_t)cv->cout * g.stride,
	        dy, dx->d, acc);
}

void
mura_conv3_grad_w(struct mura_nn_ctx *ctx, const struct mura_conv *cv, const struct mura_fm *x,
                  const struct mura_fm *dy)
{
	const struct kernel *k = pick();
#ifdef HAVE_CONV3_BF16
	if (pairs(ctx, k)) {  /* one bf16 per q, the q in steps of 32 */
		const struct pgeom h = pgeom_of(x->n, x->h, x->w, 1, 32);
		uint16_t *dyh = pad_halves(ctx, dy, ctx->scratch, h);
		uint16_t *xh = pad_halves(ctx, x, (uint16_t *)ctx->scratch + (size_t)cv->cout * h.stride, h);
		size_t qb = ((size_t)256 << 10) / (size_t)cv->cout / 32 * 32;
		struct conv3_job j = {(const float *)xh, NULL, (const float *)dyh, NULL, cv->gw, cv->cin,
		                      cv->cout, x->n, x->h, x->w, 0, h.stride, (h.total + 31) / 32,
		                      qb > 32 * 16 ? qb : 32 * 16, 3, 1, 0, 0, 0, 0};
		mura_threads_run(ctx->threads, conv3_bf16_gw_part, &j);
		return;
	}
#endif
	const struct pgeom g = pgeom_of(x->n, x->h, x->w, 1, k->tile);
	float *dyp = pad(ctx, dy, ctx->scratch, g);
	float *xp = pad(ctx, x, ctx->scratch + (size_t)cv->cout * g.stride, g);
	/* blocks of q whose dyp (all channels) is about 512 KB, in whole tiles */
	size_t qb = ((size_t)128 << 10) / (size_t)cv->cout / (size_t)k->tile * (size_t)k->tile;
	struct conv3_job j = {xp, NULL, dyp, NULL, cv->gw, cv->cin, cv->cout, x->n, x->h, x->w, 0,
	                      g.stride, (g.total + (size_t)k->tile - 1) / (size_t)k->tile,
	                      qb > (size_t)k->tile * 16 ? qb : (size_t)k->tile * 16, 3, 1, 0, 0, 0, 0};

	mura_threads_run(ctx->threads, k->gw_part, &j);
}

/* Where the kernel by channels beats im2col + GEMM: while the packed
 * weights of one block of output channels (Cin k k x 64 floats with
 * AVX-512) stay within about half of L2, as each tile of positions reads
 * them all.  Batch 32, 2 threads: resnet18 at 64 px, 128 -> 128 at 8 x 8,
 * 1.40 ms against 2.28; 256 -> 256 at 4 x 4, 1.50 against 2.00; the stem,
 * 2.03 against 3.13; but 512 -> 512 at 2 x 2, 2.81 against 2.03. */
int
mura_convc_pays(const struct mura_conv *cv, int flip)
{
	/* k <= 7: the kernel's table of window offsets holds 49 */
	return cv->k > 1 && cv->k <= 7 && (size_t)(flip ? cv->cout : cv->cin) * cv->k * cv->k <= 2304;
}

size_t
mura_convc_scratch(const struct mura_conv *cv, const struct mura_fm *x, int flip)
{
	size_t need = 0;
	int cin = flip ? cv->cout : cv->cin, cout = flip ? cv->cin : cv->cout;

	for (size_t k = 0; k < sizeof kernels / sizeof *kernels; k++) {
		struct pgeom g = pgeom_of(x->n, x->h, x->w, cv->pad, 16);
		size_t b = ((size_t)cout + (size_t)kernels[k].cob - 1) / (size_t)kernels[k].cob;
		size_t t = (size_t)cin * g.stride + 16 + b * (size_t)kernels[k].cob * cin * cv->k * cv->k;
		need = need > t ? need : t;
	}
	return need;
}

void
mura_convc_forward(struct mura_nn_ctx *ctx, const struct mura_conv *cv, int flip,
                   const struct mura_fm *x, float *y, int acc)
{
	const struct kernel *k = pick();
	const int cin = flip ? cv->cout : cv->cin, cout = flip ? cv->cin : cv->cout;
	const int ho = mura_window_out(x->h, cv->k, flip ? 1 : cv->stride, cv->pad);
	const int wo = mura_window_out(x->w, cv->k, flip ? 1 : cv->stride, cv->pad);
	const struct pgeom g = pgeom_of(x->n, x->h, x->w, cv->pad, 16);
	/* the packed weights after the padded copy, 64-byte aligned */
	float *xp = pad(ctx, x, ctx->scratch, g);
	float *wp = ctx->scratch + ((size_t)cin * g.stride + 15) / 16 * 16;
	const size_t blocks = ((size_t)cout + (size_t)k->cob - 1) / (size_t)k->cob;
	const size_t tiles = ((size_t)x->n * ho * wo + (size_t)k->cpt - 1) / (size_t)k->cpt;
	struct pack_job pj = {cv->w, wp, cin, cout, k->cob, flip, cv->k * cv->k, ctx->bf16};
	struct conv3_job j = {xp, packed(ctx, &pj, blocks), NULL, y, NULL, cin, cout, x->n, x->h, x->w,
	                      acc, g.stride, 0, 0, cv->k, flip ? 1 : cv->stride, ho, wo, g.wp, g.img};

	mura_threads_for(ctx->threads, blocks * tiles, 1, k->cv_part, &j);
}

/* dy [cout][npos] as dyt [cout / cob][npos][cob], zero past cout: a
 * position's output channels one vector for the weight gradient by channels. */
struct tr_job {
	const float *dy;
	float *dyt;
	int cout, cob;
	size_t npos;
	int bf16;  /* round to bf16 while copying */
};

static void
transpose_part(void *v, size_t b0, size_t b1)
{
	const struct tr_job *j = v;
	const size_t chunk = 64, cob = (size_t)j->cob;
	const size_t pchunks = (j->npos + chunk - 1) / chunk;

	for (size_t b = b0; b < b1; b++) {  /* b = block * pchunks + chunk of positions */
		size_t cb = b / pchunks, p0 = b % pchunks * chunk;
		size_t p1 = p0 + chunk < j->npos ? p0 + chunk : j->npos;
		float *d = j->dyt + cb * j->npos * cob;
		for (size_t c = 0; c < cob; c++) {
			size_t co = cb * cob + c;
			const float *s = co < (size_t)j->cout ? j->dy + co * j->npos : NULL;
			for (size_t p = p0; p < p1; p++)
				d[p * cob + c] = !s ? 0 : j->bf16 ? mura_bf16_round(s[p]) : s[p];
		}
	}
}

struct unpack_job {
	const float *gp;
	float *gw;
	int cin, cout, cob, taps;
};

/* gw[co][ci][tap] += gp[co / cob][ci][tap][co % cob] */
static void
unpack_part(void *v, size_t c0, size_t c1)
{
	const struct unpack_job *j = v;

	for (size_t co = c0; co < c1; co++)
		for (int ci = 0; ci < j->cin; ci++)
			for (int t = 0; t < j->taps; t++)
				j->gw[(co * (size_t)j->cin + (size_t)ci) * (size_t)j->taps + (size_t)t] +=
					j->gp[(((co / (size_t)j->cob) * (size_t)j->cin + (size_t)ci) * (size_t)j->taps +
					       (size_t)t) * (size_t)j->cob + co % (size_t)j->cob];
}

/* Where the weight gradient by channels beats im2col + GEMM, measured with
 * 2 threads: strided windows over few input channels.  The 7x7 stem, batch
 * 8 at 320 px: 18.7 ms against 22.4; 128 -> 128 stride 2 at 80 x 80: 11.2
 * against 12.7; batch 32, 128 -> 256 stride 2 at 8 x 8: 0.96 against 1.88.
 * But 512 -> 512 stride 2 at 20 x 20: 11.4 against 9.6, and stride 1 on
 * small maps (128 -> 128 at 8 x 8, batch 32: 3.6 against 2.1). */
int
mura_convc_grad_w_pays(const struct mura_conv *cv)
{
	return cv->k > 1 && cv->k <= 7 && cv->stride > 1 && (size_t)cv->cin * cv->k * cv->k <= 1152;
}

size_t
mura_convc_grad_w_scratch(const struct mura_conv *cv, const struct mura_fm *x)
{
	size_t need = 0;
	const int ho = mura_window_out(x->h, cv->k, cv->stride, cv->pad);
	const int wo = mura_window_out(x->w, cv->k, cv->stride, cv->pad);
	const size_t npos = (size_t)x->n * ho * wo;

	for (size_t k = 0; k < sizeof kernels / sizeof *kernels; k++) {
		struct pgeom g = pgeom_of(x->n, x->h, x->w, cv->pad, 16);
		size_t b = ((size_t)cv->cout + (size_t)kernels[k].cob - 1) / (size_t)kernels[k].cob;
		size_t t = (size_t)cv->cin * g.stride + 16 + b * (size_t)kernels[k].cob *
		           (npos + (size_t)cv->cin * cv->k * cv->k) + 16;
		need = need > t ? need : t;
	}
	return need;
}

void
mura_convc_grad_w(struct mura_nn_ctx *ctx, const struct mura_conv *cv, const struct mura_fm *x,
                  const struct mura_fm *dy)
{
	const struct kernel *k = pick();
	const int taps = cv->k * cv->k;
	const struct pgeom g = pgeom_of(x->n, x->h, x->w, cv->pad, 16);
	const size_t npos = mura_fm_plane(dy), cob = (size_t)k->cob;
	const size_t blocks = ((size_t)cv->cout + cob - 1) / cob;
	float *xp = pad(ctx, x, ctx->scratch, g);
	float *dyt = ctx->scratch + ((size_t)cv->cin * g.stride + 15) / 16 * 16;
	float *gp = dyt + blocks * cob * npos;

	struct tr_job tj = {dy->d, dyt, cv->cout, k->cob, npos, ctx->bf16};
	mura_threads_for(ctx->threads, blocks * ((npos + 63) / 64), 1, transpose_part, &tj);
	memset(gp, 0, blocks * cob * (size_t)cv->cin * taps * sizeof *gp);
	struct conv3_job j = {xp, NULL, dyt, NULL, gp, cv->cin, cv->cout, x->n, x->h, x->w, 0, g.stride,
	                      0, 0, cv->k, cv->stride, dy->h, dy->w, g.wp, g.img};
	mura_threads_run(ctx->threads, k->cgw_part, &j);
	struct unpack_job uj = {gp, cv->gw, cv->cin, cv->cout, k->cob, taps};
	mura_threads_for(ctx->threads, (size_t)cv->cout, 1, unpack_part, &uj);
}
