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
 * is read from the L2 cache, A's panel from L1.
 *
 * Why our own kernel and not oneDNN's matmul primitive: see the measure in
 * tests/bench/sbgemm.sh (README, Performance).
 */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "ops.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define HAVE_BF16_KERNEL 1
#include <immintrin.h>
#endif

enum {
	MR = 12,    /* rows of a tile */
	NR = 32,    /* columns of a tile: two vectors */
	KC = 256,   /* values of k per block (even) */
	MC = 144,   /* rows of A per block (a multiple of MR) */
	NC = 512,   /* columns of B per block (a multiple of NR) */
};

int
mura_bf16_supported(void)
{
#ifdef HAVE_BF16_KERNEL
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512f");
#else
	return 0;
#endif
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

/* A strided matrix: element (i, j) at d[i * rs + j * cs]. */
struct smat {
	const float *d;
	size_t rs, cs;
};

/* Rows [i0, i0 + mc) and values of k [p0, p0 + kc) of A, packed: panel by
 * panel of MR rows, [ceil(kc / 2)][MR] pairs; rows past m and the odd k's
 * partner past k are 0. */
static void
pack_a(const struct smat *a, int m, int k, int i0, int mc, int p0, int kc, uint32_t *out)
{
	const int kp = (kc + 1) / 2;

	for (int r0 = 0; r0 < mc; r0 += MR)
		for (int r = 0; r < MR; r++) {
			int i = i0 + r0 + r;
			uint32_t *o = out + (size_t)r0 * kp + r;
			if (i >= m) {
				for (int p = 0; p < kp; p++)
					o[(size_t)p * MR] = 0;
				continue;
			}
			const float *row = a->d + (size_t)i * a->rs;
			for (int p = 0; p < kp; p++) {
				size_t q = (size_t)(p0 + 2 * p);
				uint32_t lo = bf16_of(row[q * a->cs]);
				uint32_t hi = (int)q + 1 < k ? bf16_of(row[(q + 1) * a->cs]) : 0;
				o[(size_t)p * MR] = lo | hi << 16;
			}
		}
}

/* Values of k [p0, p0 + kc) and columns [j0, j0 + nc) of B, packed: panel by
 * panel of NR columns, [ceil(kc / 2)][NR] pairs; zeros past k and n. */
static void
pack_b(const struct smat *b, int k, int n, int p0, int kc, int j0, int nc, uint32_t *out)
{
	const int kp = (kc + 1) / 2;

	for (int c0 = 0; c0 < nc; c0 += NR) {
		uint32_t *o = out + (size_t)c0 * kp;
		int w = n - (j0 + c0) < NR ? n - (j0 + c0) : NR;
		for (int p = 0; p < kp; p++, o += NR) {
			int q = p0 + 2 * p;
			const float *r0 = b->d + (size_t)q * b->rs + (size_t)(j0 + c0) * b->cs;
			const float *r1 = q + 1 < k ? r0 + b->rs : NULL;
			if (b->cs == 1 && r1 && w == NR) {  /* the common case, vectorised */
				for (int j = 0; j < NR; j++)
					o[j] = bf16_of(r0[j]) | bf16_of(r1[j]) << 16;
				continue;
			}
			for (int j = 0; j < NR; j++) {
				uint32_t lo = j < w ? bf16_of(r0[(size_t)j * b->cs]) : 0;
				uint32_t hi = j < w && r1 ? bf16_of(r1[(size_t)j * b->cs]) : 0;
				o[j] = lo | hi << 16;
			}
		}
	}
}

#ifdef HAVE_BF16_KERNEL
/* C[0..mr)[0..nr) += alpha * (A's panel x B's panel) over kp pairs of k. */
__attribute__((target("avx512f,avx512bf16")))
static void
kernel(int kp, const uint32_t *a, const uint32_t *b, float *c, size_t ldc, float alpha, int mr, int nr)
{
	__m512 acc[MR][2];

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
	const __m512 va = _mm512_set1_ps(alpha);
	const __mmask16 m0 = nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1);
	const __mmask16 m1 = nr >= 32 ? 0xffff : nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1);
	for (int i = 0; i < mr; i++) {
		float *ci = c + (size_t)i * ldc;
		__m512 c0 = _mm512_maskz_loadu_ps(m0, ci), c1 = _mm512_maskz_loadu_ps(m1, ci + 16);
		_mm512_mask_storeu_ps(ci, m0, _mm512_fmadd_ps(va, acc[i][0], c0));
		_mm512_mask_storeu_ps(ci + 16, m1, _mm512_fmadd_ps(va, acc[i][1], c1));
	}
}
#endif

/* C (m x n, row stride ldc) = alpha A B + beta C on the caller's thread. */
static void
sbgemm_serial(const struct smat *a, const struct smat *b, int m, int n, int k, float alpha, float beta,
              float *c, size_t ldc)
{
	_Alignas(64) uint32_t pa[MC * KC / 2];
	_Alignas(64) uint32_t pb[KC / 2 * NC];

	for (int i = 0; i < m; i++) {
		float *ci = c + (size_t)i * ldc;
		if (beta == 0.0f)
			memset(ci, 0, (size_t)n * sizeof *ci);
		else if (beta != 1.0f)
			for (int j = 0; j < n; j++)
				ci[j] *= beta;
	}
	if (k == 0 || alpha == 0.0f)
		return;
#ifdef HAVE_BF16_KERNEL
	for (int j0 = 0; j0 < n; j0 += NC) {
		int nc = n - j0 < NC ? n - j0 : NC;
		for (int p0 = 0; p0 < k; p0 += KC) {
			int kc = k - p0 < KC ? k - p0 : KC, kp = (kc + 1) / 2;
			pack_b(b, k, n, p0, kc, j0, (nc + NR - 1) / NR * NR, pb);
			for (int i0 = 0; i0 < m; i0 += MC) {
				int mc = m - i0 < MC ? m - i0 : MC;
				pack_a(a, m, k, i0, (mc + MR - 1) / MR * MR, p0, kc, pa);
				for (int c0 = 0; c0 < nc; c0 += NR)
					for (int r0 = 0; r0 < mc; r0 += MR)
						kernel(kp, pa + (size_t)r0 * kp, pb + (size_t)c0 * kp,
						       c + (size_t)(i0 + r0) * ldc + j0 + c0, ldc, alpha,
						       mc - r0 < MR ? mc - r0 : MR, nc - c0 < NR ? nc - c0 : NR);
			}
		}
	}
#else
	(void)a, (void)b, (void)pa, (void)pb;
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
};

/* Each thread a block of C's rows (split along M) or columns. */
static void
sb_part(void *v, int i, int nt)
{
	const struct sb_job *j = v;
	size_t lo, hi;

	if (j->split_n) {
		mura_threads_share((size_t)j->n, i, nt, NR, &lo, &hi);
		if (lo == hi)
			return;
		struct smat b = {j->b.d + lo * j->b.cs, j->b.rs, j->b.cs};
		sbgemm_serial(&j->a, &b, j->m, (int)(hi - lo), j->k, j->alpha, j->beta, j->c + lo, j->ldc);
	} else {
		mura_threads_share((size_t)j->m, i, nt, MR, &lo, &hi);
		if (lo == hi)
			return;
		struct smat a = {j->a.d + lo * j->a.rs, j->a.rs, j->a.cs};
		sbgemm_serial(&a, &j->b, (int)(hi - lo), j->n, j->k, j->alpha, j->beta,
		              j->c + lo * j->ldc, j->ldc);
	}
}

void
mura_sbgemm(struct mura_threads *p, int trans_a, int trans_b, int m, int n, int k,
            float alpha, const float *a, int lda, const float *b, int ldb,
            float beta, float *c, int ldc)
{
	struct sb_job j = {
		{a, trans_a ? 1 : (size_t)lda, trans_a ? (size_t)lda : 1},
		{b, trans_b ? 1 : (size_t)ldb, trans_b ? (size_t)ldb : 1},
		m, n, k, alpha, beta, c, (size_t)ldc, n >= m,
	};

	if (m <= 0 || n <= 0)
		return;
	/* As mura_sgemm: below about a million multiply-adds one thread. */
	if ((double)m * n * k < 1e6 || mura_threads_size(p) == 1)
		sb_part(&j, 0, 1);
	else
		mura_threads_run(p, sb_part, &j);
}
