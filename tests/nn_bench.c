/*
 * nn_bench.c - the engine's side of `make bench` (tests/bench/engine.sh).
 *
 *   nn_bench ARCH BATCH SIZE ITERS [infer|train|both [fp32|bf16]]   one line per kind:
 *       "infer ARCH BATCH SIZE IMAGES_PER_S SECONDS_PER_BATCH PEAK_RSS_MB CPU_S GFLOP PEAK"
 *       "train ARCH BATCH SIZE IMAGES_PER_S SECONDS_PER_STEP PEAK_RSS_MB CPU_S GFLOP PEAK"
 * CPU_S is the processor time (all threads) of a round, the mean: a figure
 * that a busy machine disturbs less than the wall time.  GFLOP is the
 * arithmetic of one image's work that runs as matrix products
 * (convolutions, linear layers, attention; a multiply-add counts 2), as the
 * profiler counts it in the warm-up round; PEAK the machine's rate for it
 * in GFLOP/s with the engine's threads, the larger of the vector units'
 * (vector_peak) and our GEMM's on 2048^3 (gemm_peak).  PEAK / GFLOP is
 * then a ceiling on images/s: what the work would run at if every product
 * ran at that rate and nothing else took any time (tests/bench/engine.sh
 * prints it beside PyTorch's figure).
 * Inference: evaluation forward of a batch (evaluation plan).  Training
 * step: optimizer zero_grad, training forward, BCE loss, backward, SGD step
 * (momentum 0.9), as tests/bench/engine.py does it in PyTorch.  One warm-up
 * round, then ITERS timed rounds; the figure is the median round.  The
 * resident-set peak is the process's (VmHWM) after that kind of work.
 * A fifth argument runs only that kind (for a profiler), or both; a sixth
 * names the precision (model.h's enum mura_precision; bf16 fails where the
 * CPU lacks AVX512-BF16).  With
 * MURA_PROFILE set in the environment, the time per kind of operation over
 * the timed rounds goes to stderr.
 *
 * Without arguments it is a quick check that the harness runs, for `make
 * check` (no timing is asserted).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__) && defined(__GNUC__)
#define HAVE_SPIN 1
#include <immintrin.h>
#endif

#include "error.h"
#include "nn/loss.h"
#include "nn/model.h"
#include "nn/ops.h"
#include "nn/optim.h"
#include "rng.h"
#include "test.h"

static double
clock_of(clockid_t id)
{
	struct timespec t;
	clock_gettime(id, &t);
	return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static double now(void) { return clock_of(CLOCK_MONOTONIC); }
static double cpu_now(void) { return clock_of(CLOCK_PROCESS_CPUTIME_ID); }

static long
peak_rss_mb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;

	while (f && fgets(line, sizeof line, f))
		if (strncmp(line, "VmHWM:", 6) == 0)
			kb = atol(line + 6);
	if (f)
		fclose(f);
	return kb < 0 ? -1 : kb / 1024;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double
median(double *t, int n)
{
	qsort(t, (size_t)n, sizeof *t, cmp_double);
	return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

struct run {
	struct mura_model *m;
	struct mura_optim opt;
	struct mura_loss loss;
	float *x, *y, *logits, *dz;
	int n;
};

static int
infer_once(struct run *r)
{
	return mura_model_forward(r->m, r->x, r->n, 0, r->logits);
}

static int
train_once(struct run *r)
{
	double l;

	mura_optim_zero_grad(&r->opt);
	if (mura_model_forward(r->m, r->x, r->n, 1, r->logits) < 0 ||
	    mura_loss_compute(&r->loss, r->logits, r->y, NULL, (size_t)r->n, &l, r->dz) < 0 ||
	    mura_model_backward(r->m, r->dz) < 0)
		return -1;
	mura_optim_step(&r->opt);
	return 0;
}

/* The GEMM peak the profile's GFLOP/s are measured against: mura_sgemm
 * (bf16: mura_sbgemm) on 2048^3 with the engine's threads, the best of five.
 * The operands are written first: calloc's untouched pages all map the one
 * zero page, 4 KiB at a time, and read that way sgemm ran at 0.7x and
 * sbgemm at 0.4x of their speed on written memory (so shares read above
 * 100%). */
static double
gemm_peak(int bf16)
{
	const int n = 2048;
	struct mura_threads *p = mura_threads_create(0);
	float *a = calloc((size_t)n * n, sizeof *a), *b = calloc((size_t)n * n, sizeof *b);
	float *c = calloc((size_t)n * n, sizeof *c);
	double best = 0;

	for (size_t i = 0; a && b && i < (size_t)n * n; i++)
		a[i] = (float)(i % 7) * 0.1f, b[i] = (float)(i % 5) * 0.1f;
	for (int i = 0; p && a && b && c && i < 5; i++) {
		double t0 = now();
		mura_gemm(bf16, p, 0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
		double g = 2.0 * n * n * (double)n / (now() - t0) * 1e-9;
		best = g > best ? g : best;
	}
	free(a), free(b), free(c);
	mura_threads_free(p);
	return best;
}

/*
 * The vector units' rate: on each of the pool's threads, CHAINS independent
 * chains of 512-bit FMAs (fp32: 16 multiply-adds each), or of vdpbf16ps
 * (bf16: 32), enough to cover their latency on every core we know, with
 * the operands in registers; the best of five.  Without AVX-512, fp32 takes
 * AVX2's 256-bit FMA (8 multiply-adds); 0 without either, or for bf16
 * without AVX512-BF16.  On a CPU with AMX the tiles run faster than any
 * vector loop, and gemm_peak is the larger.
 */
#define CHAINS 16
#define SPINS 4000000L

#ifdef HAVE_SPIN
/* CHAINS accumulators of type V (set1's), each `step` SPINS times (its
 * acc[k] the accumulator), then summed into acc[0] by `add` */
#define SPIN(V, set1, add, step)                                               \
	V acc[CHAINS];                                                             \
	for (int k = 0; k < CHAINS; k++)                                           \
		acc[k] = set1((float)k);                                               \
	for (long s = 0; s < SPINS; s++)                                           \
		_Pragma("GCC unroll 16") for (int k = 0; k < CHAINS; k++) acc[k] = step; \
	for (int k = 1; k < CHAINS; k++)                                           \
		acc[0] = add(acc[0], acc[k])

__attribute__((target("avx512f"))) static void
spin_avx512(void *arg, int i, int n)
{
	const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-7f);
	SPIN(__m512, _mm512_set1_ps, _mm512_add_ps, _mm512_fmadd_ps(acc[k], a, b));
	(void)n;
	((volatile float *)arg)[i] = _mm512_reduce_add_ps(acc[0]);
}

__attribute__((target("avx2,fma"))) static void
spin_avx2(void *arg, int i, int n)
{
	const __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(1e-7f);
	float v[8];
	SPIN(__m256, _mm256_set1_ps, _mm256_add_ps, _mm256_fmadd_ps(acc[k], a, b));
	(void)n;
	_mm256_storeu_ps(v, acc[0]);
	((volatile float *)arg)[i] = v[0];
}

__attribute__((target("avx512f,avx512bf16"))) static void
spin_bf16(void *arg, int i, int n)
{
	const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3380);
	SPIN(__m512, _mm512_set1_ps, _mm512_add_ps, _mm512_dpbf16_ps(acc[k], a, b));
	(void)n;
	((volatile float *)arg)[i] = _mm512_reduce_add_ps(acc[0]);
}

#endif

static double
vector_peak(int bf16)
{
	struct mura_threads *p = mura_threads_create(0);
	mura_threads_fn *fn = NULL;
	double madds = 0, best = 0;
	static float sink[1024];  /* a thread's result, so that its loop is kept */

#ifdef HAVE_SPIN
	__builtin_cpu_init();
	if (bf16 && mura_bf16_supported())
		fn = spin_bf16, madds = 32;
	else if (!bf16 && __builtin_cpu_supports("avx512f"))
		fn = spin_avx512, madds = 16;
	else if (!bf16 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		fn = spin_avx2, madds = 8;
#else
	(void)bf16;
#endif
	for (int i = 0; p && fn && i < 5; i++) {
		double t0 = now();
		mura_threads_run(p, fn, sink);
		double g = 2.0 * madds * CHAINS * SPINS * mura_threads_size(p) / (now() - t0) * 1e-9;
		best = g > best ? g : best;
	}
	mura_threads_free(p);
	return best;
}

/* The rate the ceiling is computed at: the larger of the two (each
 * measured once per precision); *gemm, *vec each where not NULL. */
static double
machine_peak(int bf16, double *gemm, double *vec)
{
	static double g[2], v[2];

	if (!g[bf16]) {
		g[bf16] = gemm_peak(bf16);
		v[bf16] = vector_peak(bf16);
	}
	if (gemm)
		*gemm = g[bf16];
	if (vec)
		*vec = v[bf16];
	return v[bf16] > g[bf16] ? v[bf16] : g[bf16];
}

static void
print_profile(const char *what, const struct mura_nn_prof *p, double total, int iters, int bf16)
{
	double peak, vec;

	machine_peak(bf16, &peak, &vec);
	fprintf(stderr, "profile %s: %.3f s per round; %s peak %.0f GFLOP/s (2048^3; OpenBLAS %s), "
	        "vector units %.0f\n", what, total / iters, bf16 ? "sbgemm" : "sgemm", peak, mura_blas_core(), vec);
	for (int k = 0; k < MURA_PROF_KINDS; k++) {
		if (!p->calls[k])
			continue;
		double g = p->sec[k] > 0 ? p->flop[k] / p->sec[k] * 1e-9 : 0;
		fprintf(stderr, "  %-22s %8.3f s %5.1f%% %6ld calls", mura_prof_names[k], p->sec[k] / iters,
		        100 * p->sec[k] / total, p->calls[k] / iters);
		if (g > 0)
			fprintf(stderr, " %7.1f GFLOP/s %3.0f%% of peak", g, peak > 0 ? 100 * g / peak : 0);
		fputc('\n', stderr);
	}
}

/* Time ITERS rounds of fn after one warm-up; seconds per round, median;
 * *cpu the mean processor time of a round, *flop the arithmetic the
 * profiler counted in the warm-up. */
static double
timed(struct run *r, int (*fn)(struct run *), int iters, const char *what, double *cpu, double *flop,
      int bf16)
{
	double t[64], total = 0, c0;
	struct mura_nn_prof prof = {{0}, {0}, {0}}, warm = {{0}, {0}, {0}};
	int profile = getenv("MURA_PROFILE") != NULL;

	if (iters > 64)
		iters = 64;
	mura_model_profile(r->m, &warm);
	int rc = fn(r);
	mura_model_profile(r->m, NULL);
	if (rc < 0)
		return -1;
	*flop = 0;
	for (int k = 0; k < MURA_PROF_KINDS; k++)
		*flop += warm.flop[k];
	if (profile)
		mura_model_profile(r->m, &prof);
	c0 = cpu_now();
	for (int i = 0; i < iters; i++) {
		double t0 = now();
		if (fn(r) < 0)
			return -1;
		t[i] = now() - t0;
		total += t[i];
	}
	*cpu = (cpu_now() - c0) / iters;
	mura_model_profile(r->m, NULL);
	if (profile)
		print_profile(what, &prof, total, iters, bf16);
	return median(t, iters);
}

enum { DO_INFER = 1, DO_TRAIN = 2 };

static int
bench(int arch, int n, int size, int iters, int what, int precision, int quiet, double *infer_s,
      double *train_s, double *infer_flop, double *train_flop)
{
	struct mura_model_config c;
	struct mura_optim_config oc;
	struct run r = {0};
	size_t np;
	struct mura_rng g;
	double cpu = 0;
	const int bf16 = precision == MURA_PRECISION_BF16;

	mura_model_config_default(&c);
	c.arch = arch;
	c.precision = precision;
	r.n = n;
	if (!(r.m = mura_model_create(&c)))
		return -1;
	r.x = malloc((size_t)n * 3 * size * size * sizeof *r.x);
	r.y = malloc((size_t)n * sizeof *r.y);
	r.logits = malloc((size_t)n * sizeof *r.logits);
	r.dz = malloc((size_t)n * sizeof *r.dz);
	mura_rng_seed(&g, 1);
	for (size_t i = 0; i < (size_t)n * 3 * size * size; i++)
		r.x[i] = (float)mura_rng_normal(&g);
	for (int i = 0; i < n; i++)
		r.y[i] = (float)(i % 2);
	mura_loss_init(&r.loss);
	mura_optim_config_default(&oc, MURA_OPTIM_SGD);
	oc.momentum = 0.9;
	struct mura_param *p = mura_model_params(r.m, &np);
	if (mura_optim_init(&r.opt, &oc, p, np) < 0)
		return -1;

	if ((what & DO_INFER) && (mura_model_plan(r.m, n, size, size, 0) < 0 ||
	                          (*infer_s = timed(&r, infer_once, iters, "inference", &cpu, infer_flop, bf16)) < 0))
		return -1;
	if ((what & DO_INFER) && !quiet)
		printf("infer %s %d %d %.2f %.3f %ld %.3f %.2f %.0f\n", mura_arch_name(arch), n, size, n / *infer_s,
		       *infer_s, peak_rss_mb(), cpu, *infer_flop / n * 1e-9, machine_peak(bf16, NULL, NULL));
	fflush(stdout);
	if ((what & DO_TRAIN) && (mura_model_plan(r.m, n, size, size, 1) < 0 ||
	                          (*train_s = timed(&r, train_once, iters, "training step", &cpu, train_flop, bf16)) < 0))
		return -1;
	if ((what & DO_TRAIN) && !quiet)
		printf("train %s %d %d %.2f %.3f %ld %.3f %.2f %.0f\n", mura_arch_name(arch), n, size, n / *train_s,
		       *train_s, peak_rss_mb(), cpu, *train_flop / n * 1e-9, machine_peak(bf16, NULL, NULL));
	mura_optim_free(&r.opt);
	mura_model_free(r.m);
	free(r.x), free(r.y), free(r.logits), free(r.dz);
	return 0;
}

int
main(int argc, char **argv)
{
	double ti, tt, fi = 0, ft = 0;

	if (argc == 1) {
		CHECK("bench harness: resnet18 inference and a training step at 64x64",
		      bench(MURA_ARCH_RESNET18, 2, 64, 1, DO_INFER | DO_TRAIN, 0, 1, &ti, &tt, &fi, &ft) == 0 &&
		          ti > 0 && tt > 0);
		/* resnet18 at 64 x 64, 2 images: its convolutions' 1,813,561,344
		 * multiply-adds at 224 x 224 (torchvision's model counted by forward
		 * hooks: 1,814,073,344 with its 1000-way head) times (64 / 224)^2,
		 * exact since every map scales, and our one-logit head's 512; 2 FLOP
		 * each */
		CHECK_NEAR("bench harness: the counted inference arithmetic is resnet18's", fi * 1e-8,
		           1e-8 * 2 * 2 * (1813561344.0 * 64 * 64 / (224 * 224) + 512), 1e-9);
		CHECK("bench harness: a training step counts 2 to 3 times the inference's arithmetic",
		      ft >= 2 * fi && ft <= 3 * fi);
		return test_status();
	}
	int what = argc >= 6 ? (strcmp(argv[5], "infer") == 0 ? DO_INFER : strcmp(argv[5], "train") == 0 ? DO_TRAIN
	                        : strcmp(argv[5], "both") == 0 ? DO_INFER | DO_TRAIN : 0)
	                     : DO_INFER | DO_TRAIN;
	int precision = argc == 7 ? mura_precision_parse(argv[6]) : MURA_PRECISION_FP32;
	if ((argc < 5 || argc > 7) || !what || precision < 0 || precision == MURA_PRECISION_AUTO) {
		fprintf(stderr, "usage: nn_bench [ARCH BATCH SIZE ITERS [infer|train|both [fp32|bf16]]]\n");
		return 2;
	}
	int arch = mura_arch_parse(argv[1]);
	if (arch < 0 || bench(arch, atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), what, precision, 0, &ti, &tt, &fi, &ft) < 0) {
		fprintf(stderr, "nn_bench: %s\n", mura_error_get());
		return 1;
	}
	return 0;
}
