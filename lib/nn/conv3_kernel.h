/*
 * conv3_kernel.h - the bodies of conv3.c's kernels, included once per
 * instruction set with these defined:
 *   KNAME  the functions' prefix
 *   VL     floats per vector
 *   OCB, QV  by positions: output channels per block, vectors of q per tile
 *   GOCB   by positions' weight gradient: output channels per block
 *   CVV, CPT  by channels: vectors of output channels, positions per item
 * see conv3.c for what they compute.  Each kernel's accumulators and inputs
 * must fit the registers (AVX-512 has 32, AVX2 16): by positions OCB * QV
 * + QV, its gradient 9 * GOCB + GOCB + 1, by channels CPT * CVV + CVV + 1,
 * and its gradient 6 * CVV + CVV + 1.
 */
#define KCAT2(a, b) a##b
#define KCAT(a, b) KCAT2(a, b)
#define KVEC KCAT(KNAME, _vec)
#define KVECU KCAT(KNAME, _vecu)
#define TILE (VL * QV)

typedef float KVEC __attribute__((vector_size(VL * 4)));
typedef float KVECU __attribute__((vector_size(VL * 4), aligned(4)));

/* Write (or add) the tile's OCB x TILE values at q0.. to y, keeping only the
 * q that lie inside an image. */
static void
KCAT(KNAME, _store)(const struct conv3_job *j, const float *tb, size_t q0, int co0)
{
	const size_t wp = (size_t)j->w + 2, img = ((size_t)j->h + 2) * wp;
	const size_t plane = (size_t)j->n * j->h * j->w, total = (size_t)j->n * img;
	const size_t end = q0 + TILE < total ? q0 + TILE : total;
	const int nb = j->cout - co0 < OCB ? j->cout - co0 : OCB;

	for (size_t q = q0; q < end;) {
		size_t im = q / img, r = q % img, hp = r / wp, c = r % wp;
		size_t run = wp - c < end - q ? wp - c : end - q;
		size_t a = c > 1 ? c : 1, b = c + run < (size_t)j->w + 1 ? c + run : (size_t)j->w + 1;
		if (hp >= 1 && hp <= (size_t)j->h && a < b) {
			const float *s = tb + (q - q0) + (a - c);
			float *d = j->y + (im * j->h + hp - 1) * j->w + (a - 1);
			for (int o = 0; o < nb; o++) {
				float *dd = d + (size_t)(co0 + o) * plane;
				const float *ss = s + (size_t)o * TILE;
				if (j->acc)
					for (size_t i = 0; i < b - a; i++)
						dd[i] += ss[i];
				else
					memcpy(dd, ss, (b - a) * sizeof *dd);
			}
		}
		q += run;
	}
}

static void
KCAT(KNAME, _part)(void *v, size_t lo, size_t hi)
{
	const struct conv3_job *j = v;
	const ptrdiff_t wp = (ptrdiff_t)j->w + 2;
	const ptrdiff_t off[9] = {-wp - 1, -wp, -wp + 1, -1, 0, 1, wp - 1, wp, wp + 1};
	const size_t kdim = (size_t)j->cin * 9;

	for (size_t t = lo; t < hi; t++) {
		const size_t q0 = t * TILE;
		for (int co0 = 0; co0 < j->cout; co0 += OCB) {
			const float *wb = j->wp + (size_t)co0 * kdim;
			KVEC acc[OCB][QV];
			memset(acc, 0, sizeof acc);
			for (int ci = 0; ci < j->cin; ci++) {
				const float *xc = j->xp + (size_t)ci * j->stride + q0;
				for (int tap = 0; tap < 9; tap++) {
					const float *xs = xc + off[tap];
					const float *wk = wb + ((size_t)ci * 9 + (size_t)tap) * OCB;
					KVEC xv[QV];
#pragma GCC unroll 4
					for (int u = 0; u < QV; u++)
						xv[u] = *(const KVECU *)(xs + u * VL);
#pragma GCC unroll 8
					for (int o = 0; o < OCB; o++)
#pragma GCC unroll 4
						for (int u = 0; u < QV; u++)
							acc[o][u] += xv[u] * wk[o];
				}
			}
			float tb[OCB * TILE];
			for (int o = 0; o < OCB; o++)
				for (int u = 0; u < QV; u++)
					*(KVECU *)(tb + o * TILE + u * VL) = acc[o][u];
			KCAT(KNAME, _store)(j, tb, q0, co0);
		}
	}
}

/*
 * The weight gradient over q in [q0, q1) (multiples of VL) of output
 * channels [co0, co0 + nb) and input channel ci:
 *     gw[co][ci][tap] += sum over q of dyp[co][q] * xp[ci][q + off[tap]]
 * with dyp zero wherever q is not inside an image.  9 * nb vector sums,
 * added across lanes at the end.  Inlined with nb a constant.
 */
static inline __attribute__((always_inline)) void
KCAT(KNAME, _gw_block)(const struct conv3_job *j, const float *dyp, int co0, int nb, int ci,
                       size_t q0, size_t q1, const ptrdiff_t *off)
{
	KVEC acc[GOCB][9];
	const float *xc = j->xp + (size_t)ci * j->stride;

	memset(acc, 0, sizeof acc);
	for (size_t q = q0; q < q1; q += VL) {
		KVEC d[GOCB];
		for (int o = 0; o < nb; o++)
			d[o] = *(const KVECU *)(dyp + (size_t)(co0 + o) * j->stride + q);
#pragma GCC unroll 9
		for (int tap = 0; tap < 9; tap++) {
			KVEC xv = *(const KVECU *)(xc + q + off[tap]);
			/* one load into a register, used nb times: left to itself
			 * GCC folds the load into each multiply-add, and a load that
			 * crosses a cache line (most do here) costs two */
			__asm__("" : "+v"(xv));
			for (int o = 0; o < nb; o++)
				acc[o][tap] += d[o] * xv;
		}
	}
	for (int o = 0; o < nb; o++)
		for (int tap = 0; tap < 9; tap++) {
			float s = 0;
			for (int l = 0; l < VL; l++)
				s += acc[o][tap][l];
			j->gw[((size_t)(co0 + o) * j->cin + ci) * 9 + tap] += s;
		}
}

/* Thread t's input channels, in blocks of j->qblock values of q so that
 * the block of dyp stays in cache while every channel reads it. */
static void
KCAT(KNAME, _gw_part)(void *v, int t, int nt)
{
	const struct conv3_job *j = v;
	const ptrdiff_t wp = (ptrdiff_t)j->w + 2;
	const ptrdiff_t off[9] = {-wp - 1, -wp, -wp + 1, -1, 0, 1, wp - 1, wp, wp + 1};
	const size_t end = j->tiles * TILE;
	size_t lo, hi;

	mura_threads_share((size_t)j->cin, t, nt, 1, &lo, &hi);
	for (size_t q0 = 0; q0 < end; q0 += j->qblock) {
		size_t q1 = q0 + j->qblock < end ? q0 + j->qblock : end;
		for (size_t ci = lo; ci < hi; ci++) {
			int co0 = 0;
			for (; co0 + GOCB <= j->cout; co0 += GOCB)
				KCAT(KNAME, _gw_block)(j, j->dyp, co0, GOCB, (int)ci, q0, q1, off);
			if (j->cout - co0 >= 2 && GOCB > 2)
				KCAT(KNAME, _gw_block)(j, j->dyp, co0, 2, (int)ci, q0, q1, off), co0 += 2;
			for (; co0 < j->cout; co0++)
				KCAT(KNAME, _gw_block)(j, j->dyp, co0, 1, (int)ci, q0, q1, off);
		}
	}
}

/*
 * The other direct kernel (conv3.c's "by channels"): any k, stride and
 * padding, vectorised over output channels.  Item i is block i / tiles of
 * CVV * VL output channels and tile i % tiles of CPT output positions (in
 * y's order, so across rows and images as they come: no border computed);
 * each position's input window starts at base[p] in the padded copy, and
 * each step broadcasts one input value per position against CVV vectors of
 * packed weights.  CPT * CVV accumulators, CVV weight vectors and one
 * broadcast must fit the registers, and the CPT window pointers the
 * general ones.
 */
static void
KCAT(KNAME, _cv_part)(void *v, size_t lo, size_t hi)
{
	const struct conv3_job *j = v;
	const int k = j->k, taps = k * k, cob = CVV * VL;
	const size_t npos = (size_t)j->n * j->ho * j->wo, howo = (size_t)j->ho * j->wo;
	const size_t tiles = (npos + CPT - 1) / CPT;

	for (size_t it = lo; it < hi; it++) {
		const int co0 = (int)(it / tiles) * cob;
		const size_t p0 = it % tiles * CPT;
		const int np = npos - p0 < CPT ? (int)(npos - p0) : CPT;
		const float *base[CPT];
		for (int i = 0; i < CPT; i++) {
			size_t p = p0 + (size_t)(i < np ? i : np - 1);
			size_t im = p / howo, r = p % howo, oh = r / (size_t)j->wo, ow = r % (size_t)j->wo;
			base[i] = j->xp + im * j->img + oh * (size_t)j->s * j->wpitch + ow * (size_t)j->s;
		}
		const float *wb = j->wp + (size_t)co0 * j->cin * taps;
		KVEC acc[CPT][CVV];
		memset(acc, 0, sizeof acc);
		ptrdiff_t off[49];  /* each tap's offset in the window, k <= 7 */
		for (int t = 0; t < taps; t++)
			off[t] = (ptrdiff_t)((size_t)(t / k) * j->wpitch) + t % k;
		for (int ci = 0; ci < j->cin; ci++)
			for (int t = 0; t < taps; t++) {
					const ptrdiff_t r = (ptrdiff_t)((size_t)ci * j->stride) + off[t];
					const float *wk = wb + ((size_t)ci * taps + t) * cob;
					KVEC wv[CVV];
#pragma GCC unroll 4
					for (int u = 0; u < CVV; u++)
						wv[u] = *(const KVECU *)(wk + u * VL);
#pragma GCC unroll 12
					for (int i = 0; i < CPT; i++) {
						const float xs = base[i][r];
#pragma GCC unroll 4
						for (int u = 0; u < CVV; u++)
							acc[i][u] += xs * wv[u];
					}
				}
		float tb[CPT][CVV * VL];
		for (int i = 0; i < CPT; i++)
			for (int u = 0; u < CVV; u++)
				*(KVECU *)(tb[i] + u * VL) = acc[i][u];
		for (int c = 0; c < cob && co0 + c < j->cout; c++) {
			float *d = j->y + (size_t)(co0 + c) * npos + p0;
			for (int i = 0; i < np; i++)
				d[i] = j->acc ? d[i] + tb[i][c] : tb[i][c];
		}
	}
}

/*
 * The weight gradient by channels (any window and stride), thread t's input
 * channels: for each block of CVV * VL output channels and of PB positions,
 *     gwp[cb][ci][tap][c] += sum over p of dyt[cb][p][c] * xp[ci][base(p) + off[tap]]
 * with dyt the output gradient transposed so that a position's channels are
 * one vector, and NT taps x CVV vectors of channels in registers.  Inlined
 * with nt a constant.
 */
#define PB (16384 / (CVV * VL))

static inline __attribute__((always_inline)) void
KCAT(KNAME, _cgw_tile)(const float *dyb, const float *xc, const ptrdiff_t *base, size_t np,
                       const ptrdiff_t *off, float *gp, const int nt)
{
	KVEC acc[6][CVV];

	for (int tt = 0; tt < nt; tt++)
		for (int u = 0; u < CVV; u++)
			acc[tt][u] = *(const KVECU *)(gp + (size_t)tt * CVV * VL + (size_t)u * VL);
	for (size_t p = 0; p < np; p++) {
		KVEC d[CVV];
		const float *xb = xc + base[p];
#pragma GCC unroll 4
		for (int u = 0; u < CVV; u++)
			d[u] = *(const KVECU *)(dyb + p * CVV * VL + (size_t)u * VL);
#pragma GCC unroll 6
		for (int tt = 0; tt < nt; tt++) {
			const float xs = xb[off[tt]];
#pragma GCC unroll 4
			for (int u = 0; u < CVV; u++)
				acc[tt][u] += xs * d[u];
		}
	}
	for (int tt = 0; tt < nt; tt++)
		for (int u = 0; u < CVV; u++)
			*(KVECU *)(gp + (size_t)tt * CVV * VL + (size_t)u * VL) = acc[tt][u];
}

static void
KCAT(KNAME, _cgw_part)(void *v, int t, int nthreads)
{
	const struct conv3_job *j = v;
	const int k = j->k, taps = k * k, cob = CVV * VL;
	const size_t npos = (size_t)j->n * j->ho * j->wo, howo = (size_t)j->ho * j->wo;
	const size_t blocks = ((size_t)j->cout + cob - 1) / cob;
	ptrdiff_t off[49], base[PB];
	size_t lo, hi;

	mura_threads_share((size_t)j->cin, t, nthreads, 1, &lo, &hi);
	for (int tap = 0; tap < taps; tap++)
		off[tap] = (ptrdiff_t)((size_t)(tap / k) * j->wpitch) + tap % k;
	for (size_t cb = 0; cb < blocks; cb++)
		for (size_t p0 = 0; p0 < npos; p0 += PB) {
			const size_t np = npos - p0 < PB ? npos - p0 : PB;
			const float *dyb = j->dyp + (cb * npos + p0) * cob;
			for (size_t i = 0; i < np; i++) {
				size_t p = p0 + i, im = p / howo, r = p % howo;
				size_t oh = r / (size_t)j->wo, ow = r % (size_t)j->wo;
				base[i] = (ptrdiff_t)(im * j->img + oh * (size_t)j->s * j->wpitch + ow * (size_t)j->s);
			}
			for (size_t ci = lo; ci < hi; ci++) {
				const float *xc = j->xp + ci * j->stride;
				float *g = j->gw + (cb * (size_t)j->cin + ci) * (size_t)taps * cob;
				int t0 = 0;
				for (; t0 + 6 <= taps; t0 += 6)
					KCAT(KNAME, _cgw_tile)(dyb, xc, base, np, off + t0, g + (size_t)t0 * cob, 6);
				switch (taps - t0) {
				case 5: KCAT(KNAME, _cgw_tile)(dyb, xc, base, np, off + t0, g + (size_t)t0 * cob, 5); break;
				case 4: KCAT(KNAME, _cgw_tile)(dyb, xc, base, np, off + t0, g + (size_t)t0 * cob, 4); break;
				case 3: KCAT(KNAME, _cgw_tile)(dyb, xc, base, np, off + t0, g + (size_t)t0 * cob, 3); break;
				case 2: KCAT(KNAME, _cgw_tile)(dyb, xc, base, np, off + t0, g + (size_t)t0 * cob, 2); break;
				case 1: KCAT(KNAME, _cgw_tile)(dyb, xc, base, np, off + t0, g + (size_t)t0 * cob, 1); break;
				}
			}
		}
}
#undef PB

#undef KNAME
#undef VL
#undef GOCB
#undef CVV
#undef CPT
#undef OCB
#undef QV
#undef TILE
#undef KVEC
#undef KVECU
#undef KCAT
#undef KCAT2
