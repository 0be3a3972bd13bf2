/*
 * bf16.c - matrix products with bf16 operands and fp32 accumulation: the
 * engine's mixed precision (ops.h's ctx->bf16), as PyTorch's CPU autocast
 * runs its convolutions and matrix products.
 *
 * mura_sbgemm takes fp32 operands, like mura_sgemm, and rounds them to
 * bf16 (to nearest, ties to even) while it packs them, the step every GEMM
 * takes anyway: so no layer keeps a bf16 copy of anything, master weights
 * and activations stay fp32, and the products are those of the rounded
 * operands, each exact in fp32, summed in fp32.
 *
 * The kernel is AVX512-BF16's vdpbf16ps (_mm512_dpbf16_ps): per 32-bit
 * lane, acc += a[2i] b[2i] + a[2i + 1] b[2i + 1], so both packed operands
 * hold pairs of k: A in panels of MR rows, [k / 2][MR] pairs, each pair
 * broadcast to every lane; B in panels of NR columns, [k / 2][NR] pairs,
 * two vectors per pair step.  An MR x NR tile of C lives in 24 registers
 * through a block of KC values of k; blocks of A (MC x KC) and of B (KC x NC)
 * are packed in turn, on the stack of the thread that runs them (about 330
 * KB), the loop order of GotoBLAS (Goto and van de Geijn, 2008): B's block
 * is read from the L2 cache, A's panel from L1.  Packing is vectorised for
 * both layouts of either operand (pack_block): it was scalar, and it was
 * most of the time where one dimension is small or k is long (a 1x1
 * convolution's weight gradient, 256 x 64 x 12800: 68 -> 157-223 GFLOP/s
 * on one thread, processor time, the machine loaded).
 *
 * Why our own kernel and not oneDNN's matmul primitive: see the measure in
 * tests/bench/sbgemm.sh (README, Performance).
 */
#define _GNU_SOURCE
#include <assert.h>
#include <limits.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define HAVE_BF16_KERNEL 1
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#define BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512bf16")))
#define AMX_TARGET __attribute__((target("avx512f,avx512bw,avx512bf16,amx-tile,amx-bf16")))
#endif

enum {
	MR = 12,    /* rows of a tile */
	NR = 32,    /* columns of a tile: two vectors */
	KC = 256,   /* values of k per block (even) */
	MC = 144,   /* rows of A per block (a multiple of MR) */
	NC = 512,   /* columns of B per block (a multiple of NR) */
	AHEAD = 8,  /* rows of an operand prefetched ahead while packing along its lanes */
};

/* AVX512-BF16 and AVX-512, unless MURA_SIMD asks for a lesser instruction
 * set (avx2, generic: conv3.c), which has no bf16 products; and AMX's tiles
 * (amx), where the CPU has them and Linux lets this process use them,
 * unless MURA_SIMD=avx512: decided once. */
static int supported, amx;
static pthread_once_t supported_once = PTHREAD_ONCE_INIT;

#ifdef HAVE_BF16_KERNEL
/* AMX-TILE and AMX-BF16 (CPUID leaf 7: EDX bits 24 and 22), and the
 * permission to use the tiles' 8 KB of state, which Linux (5.16 on) grants
 * a process that asks (arch_prctl ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA). */
static int
amx_usable(void)
{
	unsigned int a, b, c, d;

	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & 1u << 24) || !(d & 1u << 22))
		return 0;
	return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
}
#endif

static void
check_supported(void)
{
#ifdef HAVE_BF16_KERNEL
	const char *want = getenv("MURA_SIMD");

	__builtin_cpu_init();
	supported = __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512f") &&
	            !(want && (strcmp(want, "avx2") == 0 || strcmp(want, "generic") == 0));
	amx = supported && !(want && strcmp(want, "avx512") == 0) && amx_usable();
#endif
}

int
mura_bf16_amx(void)
{
	pthread_once(&supported_once, check_supported);
	return amx;
}

int
mura_bf16_supported(void)
{
	pthread_once(&supported_once, check_supported);
	return supported;
}

/* f rounded to bf16, to nearest with ties to even; a NaN stays a (quiet) NaN. */
static inline uint32_t
bf16_of(float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof u);
	if ((u & 0x7fffffffu) > 0x7f800000u)
		return (u >> 16) | 0x40u;
	return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}

float
mura_bf16_round(float f)
{
	uint32_t u = bf16_of(f) << 16;
	float r;

	memcpy(&r, &u, sizeof r);
	return r;
}

#ifdef HAVE_BF16_KERNEL
BF16_TARGET static void round_n_avx512(float *d, const float *s, size_t n);
#endif

void
mura_bf16_round_n(float *d, const float *s, size_t n)
{
#ifdef HAVE_BF16_KERNEL
	if (mura_bf16_supported()) {
		round_n_avx512(d, s, n);
		return;
	}
#endif
	for (size_t i = 0; i < n; i++)
		d[i] = mura_bf16_round(s[i]);
}

#ifdef HAVE_BF16_KERNEL
BF16_TARGET static void pair_n_avx512(uint32_t *d, const float *a, const float *b, size_t n);
#endif

void
mura_bf16_pair_n(uint32_t *d, const float *a, const float *b, size_t n)
{
#ifdef HAVE_BF16_KERNEL
	if (mura_bf16_supported()) {
		pair_n_avx512(d, a, b, n);
		return;
	}
#endif
	for (size_t i = 0; i < n; i++)
		d[i] = bf16_of(a[i]) | (b ? bf16_of(b[i]) << 16 : 0);
}

#ifdef HAVE_BF16_KERNEL
BF16_TARGET static void half_n_avx512(uint16_t *d, const float *s, size_t n);
#endif

void
mura_bf16_n(uint16_t *d, const float *s, size_t n)
{
#ifdef HAVE_BF16_KERNEL
	if (mura_bf16_supported()) {
		half_n_avx512(d, s, n);
		return;
	}
#endif
	for (size_t i = 0; i < n; i++)
		d[i] = (uint16_t)bf16_of(s[i]);
}

/* A "same" convolution's input (k x k, stride 1, padding (k - 1) / 2) read
 * as im2col's matrix: row q = (channel, ky, kx), column j = a position of
 * the output (image, y, x), which is the input's shifted, 0 off its edges. */
struct sb_conv {
	const float *x;  /* [channels][positions] */
	int h, w, k;
	size_t plane;    /* positions: images x h x w */
};

/* A strided matrix: element (i, j) at d[i * rs + j * cs]. */
struct smat {
	const float *d;
	size_t rs, cs;
	const float *ka, *kb;  /* B only, row-major: row q taken as relu(B[q] ka[q] + kb[q]); or NULL */
	const struct sb_conv *cv;  /* B only: im2col of cv->x, its columns from j0 on; d unused */
	size_t j0;
	int cv_t;                  /* B is im2col's transpose: its k the positions, its columns im2col's rows from j0 */
};

#ifdef HAVE_BF16_KERNEL

/* Sixteen floats rounded as bf16_of does (to nearest, ties to even; a NaN
 * made quiet), each bf16 in the high half of its 32-bit lane, the low half
 * left as it falls.  Integer arithmetic rather than vcvtne2ps2bf16, which
 * flushes subnormal inputs to zero: so the packed operands are exactly
 * mura_bf16_round's. */
BF16_TARGET static inline __m512i
round16(__m512 x)
{
	const __m512i u = _mm512_castps_si512(x);
	const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
	const __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
	const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
	                                              _mm512_set1_epi32(0x7f800000));
	return _mm512_mask_or_epi32(r, nan, u, _mm512_set1_epi32(0x00400000));
}

static void
round_n_avx512(float *d, const float *s, size_t n)
{
	const __m512i hi16 = _mm512_set1_epi32((int)0xffff0000u);

	for (size_t i = 0; i < n; i += 16) {
		__mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
		__m512i r = _mm512_and_si512(round16(_mm512_maskz_loadu_ps(m, s + i)), hi16);
		_mm512_mask_storeu_ps(d + i, m, _mm512_castsi512_ps(r));
	}
}

static void
pair_n_avx512(uint32_t *d, const float *a, const float *b, size_t n)
{
	const __m512i hi16 = _mm512_set1_epi32((int)0xffff0000u);

	for (size_t i = 0; i < n; i += 16) {
		__mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
		__m512i lo = _mm512_srli_epi32(round16(_mm512_maskz_loadu_ps(m, a + i)), 16);
		__m512i hi = b ? _mm512_and_si512(round16(_mm512_maskz_loadu_ps(m, b + i)), hi16) : _mm512_setzero_si512();
		_mm512_mask_storeu_epi32(d + i, m, _mm512_or_si512(lo, hi));
	}
}

static void
half_n_avx512(uint16_t *d, const float *s, size_t n)
{
	for (size_t i = 0; i < n; i += 16) {
		__mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
		__m512i r = _mm512_srli_epi32(round16(_mm512_maskz_loadu_ps(m, s + i)), 16);
		_mm512_mask_cvtepi32_storeu_epi16(d + i, m, r);
	}
}

/* r[i] becomes the i-th column of the 16 x 16 matrix of 32-bit words whose
 * rows were r[0..16): words, pairs, then 128-bit quarters interleaved. */
BF16_TARGET static inline void
transpose16(__m512i r[16])
{
	__m512i t[16];

	for (int i = 0; i < 16; i += 2) {
		t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
		t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
	}
	for (int i = 0; i < 16; i += 4) {  /* r[i + c]'s quarter q: rows i..i+3 of column 4q + c */
		r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
		r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
		r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
		r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
	}
	for (int c = 0; c < 4; c++) {
		__m512i x0 = _mm512_shuffle_i32x4(r[c], r[4 + c], 0x88), x1 = _mm512_shuffle_i32x4(r[c], r[4 + c], 0xdd);
		__m512i y0 = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0x88);
		__m512i y1 = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0xdd);
		t[c] = _mm512_shuffle_i32x4(x0, y0, 0x88);
		t[4 + c] = _mm512_shuffle_i32x4(x1, y1, 0x88);
		t[8 + c] = _mm512_shuffle_i32x4(x0, y0, 0xdd);
		t[12 + c] = _mm512_shuffle_i32x4(x1, y1, 0xdd);
	}
	for (int i = 0; i < 16; i++)
		r[i] = t[i];
}

static inline __mmask16
first(int n)
{
	return n >= 16 ? (__mmask16)0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
}

/*
 * The packed operand of the kernel: `width` lanes (rows of op(A) or columns
 * of op(B)) by kc values of k, in panels of `lanes` (MR or NR), each panel
 * [ceil(kc / 2)][lanes] pairs: out[c][p][l] = bf16(x(c lanes + l, 2p)) |
 * bf16(x(c lanes + l, 2p + 1)) << 16, x(l, q) = d[l ls + q ks] for l < w and
 * q < kc, 0 past them.  One of the strides is 1 (the operand is row- or
 * column-major).  Along the lanes: a row of pairs is two rounded vectors'
 * halves, and the block is read row by row, two rows at a time, across all
 * its panels (a panel at a time reads 2 x 128 bytes of each of kc rows: a
 * stride the prefetcher does not follow, from memory at a third of the
 * speed).  Along k: 16 lanes' 32 values of k become 16 vectors of pairs,
 * transposed 16 x 16.  Either way the next rows are prefetched: the operand
 * comes from memory (a 64 x 51200 x 576 product on one thread packed B in
 * 15 ms without, 7 with).
 */
BF16_TARGET static inline __m512
bn_relu16(__m512 x, const float *ka, const float *kb, int q)
{
	/* a product, then a sum: bn.c's x * a + b without contraction, and
	 * max(t, 0) is its t > 0 ? t : 0 (a NaN gives 0, as there) */
	__m512 t = _mm512_add_ps(_mm512_mul_ps(x, _mm512_set1_ps(ka[q])), _mm512_set1_ps(kb[q]));
	return _mm512_max_ps(t, _mm512_setzero_ps());
}

/* ka, kb: for an operand along its lanes (B row-major) only, value q of k
 * is packed as relu(x * ka[q] + kb[q]) (mura_sbgemm_bn), or NULL. */
BF16_TARGET static void
pack_block(const float *d, size_t ls, size_t ks, int w, int width, int kc, int kpl, int lanes,
           const float *ka, const float *kb, uint32_t *out)
{
	const size_t panel = (size_t)kpl * lanes;
	const __m512i hi16 = _mm512_set1_epi32((int)0xffff0000u);

	if (ls == 1 || w == 1) {
		for (int p = 0; p < kpl; p++) {
			/* pairs past k (the AMX kernel's padding) are zeros, read from nowhere */
			const float *r0 = 2 * p < kc ? d + (size_t)(2 * p) * ks : d, *r1 = 2 * p + 1 < kc ? r0 + ks : d;
			for (int c0 = 0; c0 < width; c0 += lanes) {
				uint32_t *o = out + (size_t)(c0 / lanes) * panel + (size_t)p * lanes;
				for (int l = 0; l < lanes; l += 16) {
					__mmask16 m0 = 2 * p < kc ? first(w - c0 - l) : 0, m1 = 2 * p + 1 < kc ? m0 : 0;
					if (2 * p + 1 + AHEAD < kc) {
						__builtin_prefetch(r0 + AHEAD * ks + (size_t)(c0 + l) * ls, 0, 3);
						__builtin_prefetch(r1 + AHEAD * ks + (size_t)(c0 + l) * ls, 0, 3);
					}
					__m512 x0 = _mm512_maskz_loadu_ps(m0, r0 + (size_t)(c0 + l) * ls);
					__m512 x1 = _mm512_maskz_loadu_ps(m1, r1 + (size_t)(c0 + l) * ls);
					if (ka && m0) {  /* lanes past the operand stay 0 */
						x0 = _mm512_maskz_mov_ps(m0, bn_relu16(x0, ka, kb, 2 * p));
						if (m1)
							x1 = _mm512_maskz_mov_ps(m1, bn_relu16(x1, ka, kb, 2 * p + 1));
					}
					__m512i lo = round16(x0);
					__m512i hi = round16(x1);
					__m512i v = _mm512_or_si512(_mm512_srli_epi32(lo, 16), _mm512_and_si512(hi, hi16));
					_mm512_mask_storeu_epi32(o + l, first(lanes - l), v);
				}
			}
		}
		return;
	}
	assert(ks == 1 && !ka);
	/* Halfword 2h + 1 of two rounded vectors side by side, h = 0..31: the
	 * high halves in order, so word p pairs values 2p and 2p + 1. */
	const __m512i odd = _mm512_set_epi16(63, 61, 59, 57, 55, 53, 51, 49, 47, 45, 43, 41, 39, 37, 35, 33,
	                                     31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
	for (int c0 = 0; c0 < width; c0 += lanes, out += panel)
		for (int p0 = 0; p0 < kpl; p0 += 16)
			for (int l0 = 0; l0 < lanes; l0 += 16) {
				__m512i v[16];
				for (int l = 0; l < 16; l++) {
					if (c0 + l0 + l >= w) {
						v[l] = _mm512_setzero_si512();
						continue;
					}
					const float *x = d + (size_t)(c0 + l0 + l) * ls + 2 * p0;
					if (2 * p0 >= kc) {
						v[l] = _mm512_setzero_si512();
						continue;
					}
					if (2 * p0 + 64 + 32 <= kc) {  /* the lane's values two steps on */
						__builtin_prefetch(x + 64, 0, 3);
						__builtin_prefetch(x + 80, 0, 3);
					}
					__m512i a = round16(_mm512_maskz_loadu_ps(first(kc - 2 * p0), x));
					__m512i b = round16(_mm512_maskz_loadu_ps(first(kc - 2 * p0 - 16), x + 16));
					v[l] = _mm512_permutex2var_epi16(a, odd, b);
				}
				transpose16(v);
				for (int p = 0; p < 16 && p0 + p < kpl; p++)
					_mm512_mask_storeu_epi32(out + (size_t)(p0 + p) * lanes + l0, first(lanes - l0),
					                         v[p]);
			}
}

/* Positions [j, j + n) of cv's output as (y, x) in oy, ox; those from
 * `valid` on are put where no shift brings them inside the image. */
static void
conv_positions(const struct sb_conv *cv, size_t j, int n, int valid, int32_t *oy, int32_t *ox)
{
	const size_t hw = (size_t)cv->h * cv->w;

	for (int c = 0; c < n; c++) {
		size_t r = (j + (size_t)c) % hw;
		oy[c] = c < valid ? (int32_t)(r / (size_t)cv->w) : -(1 << 20);
		ox[c] = (int32_t)(r % (size_t)cv->w);
	}
}

/* Row q of cv's im2col (channel, ky, kx): its shift (*dy, *dx) and where
 * its value at position j lies, row + j (inside the image only). */
BF16_TARGET static inline const float *
conv_row(const struct sb_conv *cv, size_t q, __m512i *dy, __m512i *dx)
{
	const int pad = (cv->k - 1) / 2, ky = (int)(q / (size_t)cv->k % (size_t)cv->k) - pad;
	const int kx = (int)(q % (size_t)cv->k) - pad;

	*dy = _mm512_set1_epi32(ky);
	*dx = _mm512_set1_epi32(kx);
	return cv->x + q / ((size_t)cv->k * cv->k) * cv->plane + (ptrdiff_t)ky * cv->w + kx;
}

/* The lanes of 16 positions (y, x) that the shift (dy, dx) keeps inside
 * the image: 0 <= y + dy < h and 0 <= x + dx < w, as unsigned compares. */
BF16_TARGET static inline __mmask16
conv_inside(const struct sb_conv *cv, __m512i y, __m512i x, __m512i dy, __m512i dx)
{
	return _mm512_cmplt_epu32_mask(_mm512_add_epi32(y, dy), _mm512_set1_epi32(cv->h)) &
	       _mm512_cmplt_epu32_mask(_mm512_add_epi32(x, dx), _mm512_set1_epi32(cv->w));
}

/* pack_b's panels of columns [j0, j0 + nc) (global columns from b->j0 +
 * j0) and rows [p0, p0 + kc) of a convolution's im2col, read from its input
 * directly: each row is the input plane shifted by (ky - pad) rows and
 * (kx - pad) columns, a lane loaded only where that lands inside the image
 * (masked loads, which do not fault on the lanes left out).  The values
 * im2col would have written, rounded as pack_block rounds them. */
BF16_TARGET static void
pack_conv(const struct smat *b, int n, int p0, int kc, int kpl, int j0, int nc, uint32_t *out)
{
	const struct sb_conv *cv = b->cv;
	const size_t jg = b->j0 + (size_t)j0, panel = (size_t)kpl * NR;
	_Alignas(64) int32_t oy[NC], ox[NC];
	const __m512i hi16 = _mm512_set1_epi32((int)0xffff0000u);

	conv_positions(cv, jg, nc, n - j0, oy, ox);
	for (int p = 0; p < kpl; p++) {
		const float *row[2] = {NULL, NULL};
		__m512i dy[2], dx[2];
		for (int t = 0; t < 2; t++)
			if (2 * p + t < kc)
				row[t] = conv_row(cv, (size_t)(p0 + 2 * p + t), &dy[t], &dx[t]) + jg;
		for (int c0 = 0; c0 < nc; c0 += NR) {
			uint32_t *o = out + (size_t)(c0 / NR) * panel + (size_t)p * NR;
			for (int l = 0; l < NR; l += 16) {
				const __m512i y = _mm512_load_si512((const void *)(oy + c0 + l));
				const __m512i x = _mm512_load_si512((const void *)(ox + c0 + l));
				__m512 v[2];
				for (int t = 0; t < 2; t++)
					v[t] = row[t] ? _mm512_maskz_loadu_ps(conv_inside(cv, y, x, dy[t], dx[t]), row[t] + c0 + l)
					              : _mm512_setzero_ps();
				__m512i lo = round16(v[0]), hi = round16(v[1]);
				_mm512_store_si512((void *)(o + l),
				                   _mm512_or_si512(_mm512_srli_epi32(lo, 16), _mm512_and_si512(hi, hi16)));
			}
		}
	}
}

/* pack_conv for B = im2col's transpose (a weight gradient, dW = dY
 * im2col(x)^T): B's k runs along positions [p0, p0 + kc), its columns are
 * im2col's rows b->j0 + j0 on, each a shifted input plane masked off the
 * image's edges; 16 columns' 32 positions at a time, transposed into pairs
 * as pack_block's k-contiguous branch does. */
BF16_TARGET static void
pack_conv_t(const struct smat *b, int n, int p0, int kc, int kpl, int j0, int nc, uint32_t *out)
{
	const struct sb_conv *cv = b->cv;
	const size_t panel = (size_t)kpl * NR;
	_Alignas(64) int32_t oy[KC + 32], ox[KC + 32];
	const __m512i odd = _mm512_set_epi16(63, 61, 59, 57, 55, 53, 51, 49, 47, 45, 43, 41, 39, 37, 35, 33,
	                                     31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);

	/* every position a step of 32 reads; past k never inside */
	conv_positions(cv, (size_t)p0, (2 * kpl + 31) / 32 * 32, kc, oy, ox);
	for (int c0 = 0; c0 < nc; c0 += NR, out += panel)
		for (int l0 = 0; l0 < NR; l0 += 16) {
			const float *row[16];
			__m512i dy[16], dx[16];
			for (int l = 0; l < 16; l++) {
				int c = c0 + l0 + l;
				row[l] = c < n - j0 ? conv_row(cv, b->j0 + (size_t)j0 + (size_t)c, &dy[l], &dx[l]) + p0 : NULL;
			}
			for (int pp = 0; pp < kpl; pp += 16) {
				__m512i v[16];
				const __m512i y0 = _mm512_load_si512((const void *)(oy + 2 * pp));
				const __m512i y1 = _mm512_load_si512((const void *)(oy + 2 * pp + 16));
				const __m512i x0 = _mm512_load_si512((const void *)(ox + 2 * pp));
				const __m512i x1 = _mm512_load_si512((const void *)(ox + 2 * pp + 16));
				for (int l = 0; l < 16; l++) {
					if (!row[l]) {
						v[l] = _mm512_setzero_si512();
						continue;
					}
					__m512i a = round16(_mm512_maskz_loadu_ps(conv_inside(cv, y0, x0, dy[l], dx[l]), row[l] + 2 * pp));
					__m512i bb = round16(
					    _mm512_maskz_loadu_ps(conv_inside(cv, y1, x1, dy[l], dx[l]), row[l] + 2 * pp + 16));
					v[l] = _mm512_permutex2var_epi16(a, odd, bb);
				}
				transpose16(v);
				for (int p = 0; p < 16 && pp + p < kpl; p++)
					_mm512_store_si512((void *)(out + (size_t)(pp + p) * NR + l0), v[p]);
			}
		}
}

/* Rows [i0, i0 + mc) and values of k [p0, p0 + kc) of A, packed in panels
 * of `lanes` rows (MR, or AM for AMX; mc a multiple of it), kpl pairs each;
 * rows past m are 0. */
static void
pack_a(const struct smat *a, int m, int i0, int mc, int p0, int kc, int kpl, int lanes, uint32_t *out)
{
	pack_block(a->d + (size_t)i0 * a->rs + (size_t)p0 * a->cs, a->rs, a->cs, m - i0, mc, kc, kpl, lanes, NULL,
	           NULL, out);
}

/* Values of k [p0, p0 + kc) and columns [j0, j0 + nc) of B, packed in
 * panels of NR columns (nc a multiple of NR); columns past n are 0. */
static void
pack_b(const struct smat *b, int n, int p0, int kc, int kpl, int j0, int nc, uint32_t *out)
{
	if (b->cv) {
		(b->cv_t ? pack_conv_t : pack_conv)(b, n, p0, kc, kpl, j0, nc, out);
		return;
	}
	pack_block(b->d + (size_t)p0 * b->rs + (size_t)j0 * b->cs, b->cs, b->rs, n - j0, nc, kc, kpl, NR,
	           b->ka ? b->ka + p0 : NULL, b->kb ? b->kb + p0 : NULL, out);
}

/* Rows [i0, i0 + mc) and columns [j0, j0 + nc) of C, whose products are
 * complete, taken through q (mura_bn_post: a batch norm, a shortcut, the
 * ReLU) while the block is in cache: bn.c's float operations in its order
 * (products, then sums, no contraction; max(t, 0) is its t > 0 ? t : 0). */
BF16_TARGET static void
post_block(const struct mura_bn_post *q, float *c, size_t ldc, int i0, int mc, int j0, int nc)
{
	for (int i = i0; i < i0 + mc; i++) {
		float *ci = c + (size_t)i * ldc + j0;
		const float *r = q->add ? q->add + (size_t)i * ldc + j0 : NULL;
		const __m512 a = _mm512_set1_ps(q->ka[i]), b = _mm512_set1_ps(q->kb[i]);
		const __m512 ad = _mm512_set1_ps(q->da ? q->da[i] : 0), bd = _mm512_set1_ps(q->db ? q->db[i] : 0);
		for (int j = 0; j < nc; j += 16) {
			const __mmask16 mk = first(nc - j);
			__m512 t = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(mk, ci + j), a), b);
			if (r) {
				__m512 e = _mm512_maskz_loadu_ps(mk, r + j);
				if (q->da)
					e = _mm512_add_ps(_mm512_mul_ps(e, ad), bd);
				t = _mm512_add_ps(t, e);
			}
			_mm512_mask_storeu_ps(ci + j, mk, _mm512_max_ps(t, _mm512_setzero_ps()));
		}
	}
}
#endif

#ifdef HAVE_BF16_KERNEL
/* C[0..mr)[0..nr) = alpha (A's panel x B's panel) + beta C over kp pairs
 * of k; C is not read where beta is 0.  C's tile is prefetched first: it
 * lies in memory (the rows of a large C are far apart), and its loads at
 * the end cost as long as the products where k is short. */
BF16_TARGET static void
kernel(int kp, const uint32_t *a, const uint32_t *b, float *c, size_t ldc, float alpha, float beta, int mr,
       int nr)
{
	__m512 acc[MR][2];

	for (int i = 0; i < mr; i++) {
		__builtin_prefetch(c + (size_t)i * ldc, 1, 3);
		__builtin_prefetch(c + (size_t)i * ldc + nr - 1, 1, 3);
	}
#pragma GCC unroll 12
	for (int i = 0; i < MR; i++)
		acc[i][0] = acc[i][1] = _mm512_setzero_ps();
	for (int p = 0; p < kp; p++, a += MR, b += NR) {
		const __m512bh b0 = (__m512bh)_mm512_load_si512((const void *)b);
		const __m512bh b1 = (__m512bh)_mm512_load_si512((const void *)(b + 16));
#pragma GCC unroll 12
		for (int i = 0; i < MR; i++) {
			const __m512bh ai = (__m512bh)_mm512_set1_epi32((int)a[i]);
			acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, b0);
			acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, b1);
		}
	}
	const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
	const __mmask16 m0 = first(nr), m1 = first(nr - 16);
	for (int i = 0; i < mr; i++) {
		float *ci = c + (size_t)i * ldc;
		__m512 r0 = _mm512_mul_ps(va, acc[i][0]), r1 = _mm512_mul_ps(va, acc[i][1]);
		if (beta != 0.0f) {
			r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, ci), r0);
			r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, ci + 16), r1);
		}
		_mm512_mask_storeu_ps(ci, m0, r0);
		_mm512_mask_storeu_ps(ci + 16, m1, r1);
	}
}
#endif

#ifdef HAVE_BF16_KERNEL
/*
 * AMX (Intel Sapphire Rapids on): eight tile registers of 16 rows x 64
 * bytes, and TDPBF16PS, which adds to a 16 x 16 fp32 tile the products of
 * a 16 x 32 bf16 tile (A: rows of 16 pairs of k) and a 16 x 16 tile of
 * pairs (B: a row per pair of k, the layout of our B panels).  A 32 x 32
 * block of C is four tiles; each step of 32 values of k loads two tiles of
 * A and two of B and makes four products: 32768 multiply-adds against
 * vdpbf16ps's 512 per instruction.  The operands are packed as for the
 * vector kernel (the same rounding, so the same bf16 values), A in panels of
 * 32 rows that are then transposed per 16 pairs, and both padded with zero
 * pairs to a multiple of 16.  Products and sums are fp32 as there; AMX
 * treats subnormal bf16 inputs as zero and flushes subnormal results.
 */
enum {
	AM = 32,   /* rows and columns of C per kernel call (NR = 32 too) */
	AMC = 128, /* rows of A per block (a multiple of AM) */
};

struct tilecfg {
	uint8_t palette, start;
	uint8_t reserved[14];
	uint16_t colsb[16];
	uint8_t rows[16];
};

/* Tiles 0-3: C's four quarters; 4, 5: A's two halves; 6, 7: B's. */
AMX_TARGET static void
amx_config(void)
{
	_Alignas(64) struct tilecfg cfg;

	memset(&cfg, 0, sizeof cfg);
	cfg.palette = 1;
	for (int t = 0; t < 8; t++) {
		cfg.rows[t] = 16;
		cfg.colsb[t] = 64;
	}
	_tile_loadconfig(&cfg);
}

/* A panel of 32 lanes, [kpl][32] pairs (kpl a multiple of 16), rewritten in
 * place as AMX's A operand: per 16 pairs, [32 lanes][16 pairs]. */
AMX_TARGET static void
amx_a_layout(uint32_t *panel, int kpl)
{
	for (int p0 = 0; p0 < kpl; p0 += 16) {
		uint32_t *blk = panel + (size_t)p0 * AM;
		__m512i lo[16], hi[16];
		for (int p = 0; p < 16; p++) {
			lo[p] = _mm512_load_si512((const void *)(blk + p * AM));
			hi[p] = _mm512_load_si512((const void *)(blk + p * AM + 16));
		}
		transpose16(lo);
		transpose16(hi);
		for (int l = 0; l < 16; l++) {
			_mm512_store_si512((void *)(blk + l * 16), lo[l]);
			_mm512_store_si512((void *)(blk + 256 + l * 16), hi[l]);
		}
	}
}

/* C[0..mr)[0..nr) = alpha (A's panel x B's panel) + beta C over kpl pairs;
 * C is not read where beta is 0.  With alpha 1 and beta 0 or 1 (every
 * call of the engine) the tiles start from C (or 0) and add the products
 * to it: a whole 32 x 32 block between the tiles and C directly, a part
 * of one through buf, so that each value's arithmetic is the same
 * wherever it lies in C (an operand packed another way, or a product cut
 * into parts, gives the same bits).  Other alpha and beta: the products
 * from 0, then alpha times them plus beta C. */
AMX_TARGET static void
amx_kernel(int kpl, const uint32_t *a, const uint32_t *b, float *c, size_t ldc, float alpha, float beta,
           int mr, int nr, float *buf)
{
	const int plain = alpha == 1.0f && (beta == 0.0f || beta == 1.0f);
	const int direct = plain && mr == AM && nr == AM;
	const size_t s = ldc * sizeof *c;

	if (plain && !direct && beta == 1.0f) {  /* the part of C through buf, zeros around it */
		for (int i = 0; i < AM; i++)
			for (int j = 0; j < AM; j++)
				buf[i * AM + j] = i < mr && j < nr ? c[(size_t)i * ldc + j] : 0.0f;
		_tile_loadd(0, buf, AM * 4);
		_tile_loadd(1, buf + 16, AM * 4);
		_tile_loadd(2, buf + 16 * AM, AM * 4);
		_tile_loadd(3, buf + 16 * AM + 16, AM * 4);
	} else if (direct && beta == 1.0f) {
		_tile_loadd(0, c, s);
		_tile_loadd(1, c + 16, s);
		_tile_loadd(2, c + 16 * ldc, s);
		_tile_loadd(3, c + 16 * ldc + 16, s);
	} else {
		_tile_zero(0);
		_tile_zero(1);
		_tile_zero(2);
		_tile_zero(3);
	}
	for (int p0 = 0; p0 < kpl; p0 += 16) {
		const uint32_t *ak = a + (size_t)p0 * AM, *bk = b + (size_t)p0 * NR;
		_tile_loadd(4, ak, 64);
		_tile_loadd(5, ak + 256, 64);
		_tile_loadd(6, bk, NR * 4);
		_tile_loadd(7, bk + 16, NR * 4);
		_tile_dpbf16ps(0, 4, 6);
		_tile_dpbf16ps(1, 4, 7);
		_tile_dpbf16ps(2, 5, 6);
		_tile_dpbf16ps(3, 5, 7);
	}
	if (direct) {
		_tile_stored(0, c, s);
		_tile_stored(1, c + 16, s);
		_tile_stored(2, c + 16 * ldc, s);
		_tile_stored(3, c + 16 * ldc + 16, s);
		return;
	}
	_tile_stored(0, buf, AM * 4);
	_tile_stored(1, buf + 16, AM * 4);
	_tile_stored(2, buf + 16 * AM, AM * 4);
	_tile_stored(3, buf + 16 * AM + 16, AM * 4);
	if (plain) {
		for (int i = 0; i < mr; i++)
			memcpy(c + (size_t)i * ldc, buf + i * AM, (size_t)nr * sizeof *c);
		return;
	}
	const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
	const __mmask16 m0 = first(nr), m1 = first(nr - 16);
	for (int i = 0; i < mr; i++) {
		float *ci = c + (size_t)i * ldc;
		__m512 r0 = _mm512_mul_ps(va, _mm512_load_ps(buf + i * AM));
		__m512 r1 = _mm512_mul_ps(va, _mm512_load_ps(buf + i * AM + 16));
		if (beta != 0.0f) {
			r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, ci), r0);
			r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, ci + 16), r1);
		}
		_mm512_mask_storeu_ps(ci, m0, r0);
		_mm512_mask_storeu_ps(ci + 16, m1, r1);
	}
}

/* sbgemm_serial on AMX: the same loops, blocks of AMC rows of A. */
AMX_TARGET static void
amx_serial(const struct smat *a, const struct smat *b, int m, int n, int k, float alpha, float beta, float *c,
           size_t ldc, const struct mura_bn_post *q)
{
	_Alignas(64) uint32_t pa[AMC * KC / 2];
	_Alignas(64) uint32_t pb[KC / 2 * NC];
	_Alignas(64) float buf[AM * AM];

	amx_config();
	for (int j0 = 0; j0 < n; j0 += NC) {
		int nc = n - j0 < NC ? n - j0 : NC;
		for (int p0 = 0; p0 < k; p0 += KC) {
			int kc = k - p0 < KC ? k - p0 : KC, kpl = ((kc + 1) / 2 + 15) / 16 * 16;
			float bk = p0 == 0 ? beta : 1.0f;
			pack_b(b, n, p0, kc, kpl, j0, (nc + NR - 1) / NR * NR, pb);
			for (int i0 = 0; i0 < m; i0 += AMC) {
				int mc = m - i0 < AMC ? m - i0 : AMC, mcr = (mc + AM - 1) / AM * AM;
				pack_a(a, m, i0, mcr, p0, kc, kpl, AM, pa);
				for (int r0 = 0; r0 < mc; r0 += AM)
					amx_a_layout(pa + (size_t)r0 * kpl, kpl);
				for (int c0 = 0; c0 < nc; c0 += NR)
					for (int r0 = 0; r0 < mc; r0 += AM)
						amx_kernel(kpl, pa + (size_t)r0 * kpl, pb + (size_t)c0 * kpl,
						           c + (size_t)(i0 + r0) * ldc + j0 + c0, ldc, alpha, bk,
						           mc - r0 < AM ? mc - r0 : AM, nc - c0 < NR ? nc - c0 : NR, buf);
				if (q && p0 + kc >= k)
					post_block(q, c, ldc, i0, mc, j0, nc);
			}
		}
	}
	_tile_release();
}
#endif

/* C (m x n, row stride ldc) = alpha A B + beta C on the caller's thread,
 * then taken through q where it is not NULL. */
static void
sbgemm_serial(const struct smat *a, const struct smat *b, int m, int n, int k, float alpha, float beta,
              float *c, size_t ldc, const struct mura_bn_post *q)
{
	_Alignas(64) uint32_t pa[MC * KC / 2];
	_Alignas(64) uint32_t pb[KC / 2 * NC];

	if (k == 0 || alpha == 0.0f) {  /* no products: C = beta C */
		for (int i = 0; i < m; i++) {
			float *ci = c + (size_t)i * ldc;
			for (int j = 0; j < n; j++)
				ci[j] = beta == 0.0f ? 0.0f : beta * ci[j];
		}
#ifdef HAVE_BF16_KERNEL
		if (q)
			post_block(q, c, ldc, 0, m, 0, n);
#endif
		return;
	}
#ifdef HAVE_BF16_KERNEL
	if (mura_bf16_amx()) {
		amx_serial(a, b, m, n, k, alpha, beta, c, ldc, q);
		return;
	}
	for (int j0 = 0; j0 < n; j0 += NC) {
		int nc = n - j0 < NC ? n - j0 : NC;
		for (int p0 = 0; p0 < k; p0 += KC) {
			int kc = k - p0 < KC ? k - p0 : KC, kp = (kc + 1) / 2;
			float bk = p0 == 0 ? beta : 1.0f;  /* the first block of k applies beta */
			pack_b(b, n, p0, kc, kp, j0, (nc + NR - 1) / NR * NR, pb);
			for (int i0 = 0; i0 < m; i0 += MC) {
				int mc = m - i0 < MC ? m - i0 : MC;
				pack_a(a, m, i0, (mc + MR - 1) / MR * MR, p0, kc, kp, MR, pa);
				for (int c0 = 0; c0 < nc; c0 += NR)
					for (int r0 = 0; r0 < mc; r0 += MR)
						kernel(kp, pa + (size_t)r0 * kp, pb + (size_t)c0 * kp,
						       c + (size_t)(i0 + r0) * ldc + j0 + c0, ldc, alpha, bk,
						       mc - r0 < MR ? mc - r0 : MR, nc - c0 < NR ? nc - c0 : NR);
				if (q && p0 + kc >= k)
					post_block(q, c, ldc, i0, mc, j0, nc);
			}
		}
	}
#else
	(void)a, (void)b, (void)pa, (void)pb, (void)q;
	assert(!"mura_sbgemm without AVX512-BF16");
#endif
}

struct sb_job {
	struct smat a, b;
	int m, n, k;
	float alpha, beta;
	float *c;
	size_t ldc;
	int split_n;
	const struct mura_bn_post *post;  /* or NULL */
};

/* Each thread a block of C's rows (split along M) or columns. */
static void
sb_part(void *v, int i, int nt)
{
	const struct sb_job *j = v;
	struct mura_bn_post q = j->post ? *j->post : (struct mura_bn_post){0};
	const struct mura_bn_post *qp = j->post ? &q : NULL;
	size_t lo, hi;

	if (j->split_n) {
		mura_threads_share((size_t)j->n, i, nt, NR, &lo, &hi);
		if (lo == hi)
			return;
		struct smat b = {j->b.d + lo * j->b.cs, j->b.rs, j->b.cs, j->b.ka, j->b.kb, j->b.cv, j->b.j0 + lo,
		                 j->b.cv_t};
		if (b.cv)
			b.d = NULL;
		if (q.add)
			q.add += lo;
		sbgemm_serial(&j->a, &b, j->m, (int)(hi - lo), j->k, j->alpha, j->beta, j->c + lo, j->ldc, qp);
	} else {
		mura_threads_share((size_t)j->m, i, nt, mura_bf16_amx() ? 32 : MR, &lo, &hi);
		if (lo == hi)
			return;
		struct smat a = {j->a.d + lo * j->a.rs, j->a.rs, j->a.cs, NULL, NULL, NULL, 0, 0};
		if (qp) {
			q.ka += lo, q.kb += lo;
			if (q.add)
				q.add += lo * j->ldc;
			if (q.da)
				q.da += lo, q.db += lo;
		}
		sbgemm_serial(&a, &j->b, (int)(hi - lo), j->n, j->k, j->alpha, j->beta,
		              j->c + lo * j->ldc, j->ldc, qp);
	}
}

static void
sb_run(struct mura_threads *p, struct sb_job j)
{
	if (j.m <= 0 || j.n <= 0)
		return;
	/* As mura_sgemm: below about a million multiply-adds one thread. */
	if ((double)j.m * j.n * j.k < 1e6 || mura_threads_size(p) == 1)
		sb_part(&j, 0, 1);
	else
		mura_threads_run(p, sb_part, &j);
}

void
mura_sbgemm(struct mura_threads *p, int trans_a, int trans_b, int m, int n, int k,
            float alpha, const float *a, int lda, const float *b, int ldb,
            float beta, float *c, int ldc)
{
	struct sb_job j = {
		{a, trans_a ? 1 : (size_t)lda, trans_a ? (size_t)lda : 1, NULL, NULL, NULL, 0, 0},
		{b, trans_b ? 1 : (size_t)ldb, trans_b ? (size_t)ldb : 1, NULL, NULL, NULL, 0, 0},
		m, n, k, alpha, beta, c, (size_t)ldc, n >= m, NULL,
	};

	sb_run(p, j);
}

/*
 * C = A relu(B ka + kb), ka and kb per row of B: a batch norm and ReLU
 * (their per-channel affine map) in front of a 1x1 convolution, applied
 * while B is packed, so that the normalised operand is never written out
 * (a DenseNet layer's norm1 + relu1 + conv1 read the block's whole
 * concatenation once rather than three times).  Bit for bit the product
 * of the operand that bn.c's forward writes.  ka NULL: B itself.  And C
 * taken through post (the batch norm, shortcut and ReLU after the
 * convolution) a block at a time as its products complete, where post is
 * not NULL: bit for bit mura_bn_post of the product.
 */
void
mura_sbgemm_bn(struct mura_threads *p, int m, int n, int k, const float *a, int lda, const float *b,
               int ldb, const float *ka, const float *kb, float *c, int ldc, const struct mura_bn_post *post)
{
	struct sb_job j = {
		{a, (size_t)lda, 1, NULL, NULL, NULL, 0, 0}, {b, (size_t)ldb, 1, ka, kb, NULL, 0, 0},
		m, n, k, 1.0f, 0.0f, c, (size_t)ldc, n >= m, post,
	};

	sb_run(p, j);
}

/*
 * C (m x positions) = A im2col(x) + beta C for a "same" convolution (k x k,
 * stride 1, padding (k - 1) / 2) of x [k_in][images][h][w], A the weights
 * (m x k_in k k, row-major), either kernel: the columns are
 * read from x as they are packed (pack_conv), so im2col's matrix is never
 * written.  The same values as im2col + mura_sbgemm, bit for bit; post as
 * for mura_sbgemm_bn.
 */
void
mura_sbgemm_conv(struct mura_threads *p, int m, int kin, const float *a, const float *x, int images, int h,
                 int w, int k, float beta, float *c, const struct mura_bn_post *post)
{
	const size_t n = (size_t)images * h * w;
	const struct sb_conv cv = {x, h, w, k, n};
	struct sb_job j = {
		{a, (size_t)kin * k * k, 1, NULL, NULL, NULL, 0, 0}, {NULL, n, 1, NULL, NULL, &cv, 0, 0},
		m, (int)n, kin * k * k, 1.0f, beta, c, n, 1, post,
	};

	assert(mura_bf16_supported() && n <= INT_MAX);
	sb_run(p, j);
}

/*
 * The weight gradient of a "same" convolution over rows [r0, r1) of its
 * im2col (input channel, ky, kx): gw[co][r - r0] (row stride ldg) +=
 * sum over positions of dy[co][pos] im2col(x)[r][pos], dy m x positions;
 * im2col read as it is packed (pack_conv_t), never written.  On the
 * caller's thread (conv.c gives each thread its rows).
 */
void
mura_sbgemm_conv_gw(int m, const float *dy, const float *x, int images, int h, int w, int k, size_t r0,
                    size_t r1, float *gw, size_t ldg)
{
	const size_t n = (size_t)images * h * w;
	const struct sb_conv cv = {x, h, w, k, n};
	struct sb_job j = {
		{dy, n, 1, NULL, NULL, NULL, 0, 0}, {NULL, 1, n, NULL, NULL, &cv, r0, 1},
		m, (int)(r1 - r0), (int)n, 1.0f, 1.0f, gw, ldg, 0, NULL,
	};

	assert(mura_bf16_supported() && n <= INT_MAX);
	sb_run(NULL, j);
}
