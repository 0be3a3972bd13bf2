/* thread.c - the engine's thread pool and its split GEMM; see thread.h. */
#define _GNU_SOURCE
#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "ops.h"
#include "thread.h"
#include "util.h"

const char *const mura_prof_names[MURA_PROF_KINDS] = {
	[MURA_PROF_CONV1_FWD] = "conv 1x1 forward",   [MURA_PROF_CONV3_FWD] = "conv 3x3 forward",
	[MURA_PROF_CONVK_FWD] = "conv other forward", [MURA_PROF_IM2COL] = "  (im2col, all convs)",
	[MURA_PROF_CONV1_BWD] = "conv 1x1 backward",  [MURA_PROF_CONV3_BWD] = "conv 3x3 backward",
	[MURA_PROF_CONVK_BWD] = "conv other backward", [MURA_PROF_BN_FWD] = "batch norm forward",
	[MURA_PROF_BN_BWD] = "batch norm backward", [MURA_PROF_POOL] = "pooling",
	[MURA_PROF_ELEMENTWISE] = "elementwise",
	[MURA_PROF_LINEAR] = "linear",             [MURA_PROF_ATTENTION] = "attention",
};

/*
 * OpenBLAS picks its kernels once, when it loads, from a table of the CPU
 * models it knows.  Debian 12's 0.3.21 does not know Intel's Emerald Rapids
 * (family 6, model 207) and falls back to its Prescott kernels, SSE3 only:
 * sgemm at 63 GFLOP/s where its SkylakeX kernels reach 307, and resnet50
 * inference at 3.6 images/s instead of 10.4 (2 threads, 2026-12-06:
 * `MURA_PROFILE=1 tests/nn_bench resnet50 8 320 2 infer fp32`, without and
 * with OPENBLAS_CORETYPE=SkylakeX).  OPENBLAS_CORETYPE overrides the choice,
 * but only when it is set before the library loads.  So when the user has not
 * set it, and the kernels OpenBLAS chose are of a known older kind than the
 * CPU runs, this constructor sets it and starts the program again, before
 * main and before anything is read: the same process, arguments and open
 * files.  glibc passes argc, argv and envp to constructors.
 */
static int
blas_level(const char *name)
{
	/* OpenBLAS 0.3.21's names (its dynamic.c): 0 older than AVX2 + FMA, 1 those, 2 AVX-512 */
	static const struct {
		const char *name;
		int level;
	} kinds[] = {
		{"Unknown", 0}, {"Katmai", 0}, {"Coppermine", 0}, {"Northwood", 0}, {"Banias", 0},
		{"Athlon", 0}, {"Nano", 0}, {"Prescott", 0}, {"Core2", 0}, {"Penryn", 0},
		{"Dunnington", 0}, {"Nehalem", 0}, {"Atom", 0}, {"Sandybridge", 0}, {"Opteron", 0},
		{"Opteron(SSE3)", 0}, {"Barcelona", 0}, {"Bobcat", 0}, {"Bulldozer", 0},
		{"Piledriver", 0}, {"Steamroller", 0}, {"Haswell", 1}, {"Zen", 1}, {"Excavator", 1},
		{"SkylakeX", 2}, {"Cooperlake", 2}, {"SapphireRapids", 2},
	};

	for (size_t i = 0; name && i < sizeof kinds / sizeof kinds[0]; i++)
		if (!strcmp(name, kinds[i].name))
			return kinds[i].level;
	return -1; /* a name this table does not know: leave OpenBLAS's choice */
}

__attribute__((constructor)) static void
blas_core_check(int argc, char **argv, char **envp)
{
	static const char *const want[] = {"Haswell", "SkylakeX"};
	int cpu = 0, have;

	(void)envp;
	if (argc < 1 || !argv || getenv("OPENBLAS_CORETYPE"))
		return;
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
	    __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
		cpu = 2;
	else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		cpu = 1;
	have = blas_level(openblas_get_corename());
	if (have < 0 || have >= cpu)
		return;
	if (setenv("OPENBLAS_CORETYPE", want[cpu - 1], 1) == 0)
		execv("/proc/self/exe", argv);
	/* Not started again: run on OpenBLAS's choice, slower but correct. */
	unsetenv("OPENBLAS_CORETYPE");
}

const char *
mura_blas_core(void)
{
	return openblas_get_corename();
}

double
mura_nn_clock(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/*
 * Handing out a job and waiting for it spins a little before sleeping on
 * the condition variables: a network's step is hundreds of short parallel
 * loops, and waking a sleeping thread took about 20 us each time; spinning,
 * a dispatch takes under 1 us (densenet169 training step, batch 8, 320 px,
 * 1.15 -> 1.03 s; resnet50 inference 0.42 -> 0.38 s).  SPIN pauses are some
 * tens of microseconds, so an idle pool soon sleeps and leaves the cores to
 * others.
 */
#define SPIN 4000

struct mura_threads {
	int n;
	pthread_t *tid;
	pthread_mutex_t mu;
	pthread_cond_t go, done;
	atomic_ulong gen;   /* bumped once per job (after fn, arg); workers wait for a change */
	atomic_int pending; /* workers still inside the current job */
	atomic_int stop;
	mura_threads_fn *fn;
	void *arg;
};

static inline void
cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

struct worker {
	struct mura_threads *p;
	int i;
};

static void *
worker_main(void *v)
{
	struct worker w = *(struct worker *)v;
	struct mura_threads *p = w.p;
	unsigned long seen = 0;
	mura_threads_fn *fn;
	void *arg;

	free(v);
	for (;;) {
		unsigned long g = atomic_load(&p->gen);
		for (int k = 0; g == seen && k < SPIN && !atomic_load(&p->stop); k++) {
			cpu_relax();
			g = atomic_load(&p->gen);
		}
		if (g == seen) {
			pthread_mutex_lock(&p->mu);
			while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->stop))
				pthread_cond_wait(&p->go, &p->mu);
			pthread_mutex_unlock(&p->mu);
		}
		if (atomic_load(&p->stop))
			return NULL;
		seen = g;
		fn = p->fn;
		arg = p->arg;

		fn(arg, w.i, p->n);

		if (atomic_fetch_sub(&p->pending, 1) == 1) {
			pthread_mutex_lock(&p->mu);
			pthread_cond_signal(&p->done);
			pthread_mutex_unlock(&p->mu);
		}
	}
}

int
mura_threads_count(int asked)
{
	const char *s = getenv("MURA_THREADS");
	long n;

	if (asked > 0)
		return asked;
	if (s && *s) {
		if (mura_parse_long(s, 1, 1024, &n) < 0)
			return mura_error_prefix("MURA_THREADS");
		return (int)n;
	}
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

struct mura_threads *
mura_threads_create(int n)
{
	struct mura_threads *p;

	if ((n = mura_threads_count(n)) < 0)
		return NULL;
	if (!(p = calloc(1, sizeof *p)) || !(p->tid = calloc((size_t)n, sizeof *p->tid))) {
		free(p);
		mura_error("out of memory");
		return NULL;
	}
	p->n = 1;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->go, NULL);
	pthread_cond_init(&p->done, NULL);
	for (int i = 1; i < n; i++) {
		struct worker *w = malloc(sizeof *w);
		if (w) {
			w->p = p;
			w->i = i;
		}
		if (!w || pthread_create(&p->tid[i], NULL, worker_main, w) != 0) {
			free(w);
			mura_threads_free(p);
			mura_error("cannot start thread %d of %d", i + 1, n);
			return NULL;
		}
		p->n = i + 1;
	}
	/* One set of threads: ours.  See the header comment. */
	openblas_set_num_threads(1);
	return p;
}

void
mura_threads_free(struct mura_threads *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	atomic_store(&p->stop, 1);
	pthread_cond_broadcast(&p->go);
	pthread_mutex_unlock(&p->mu);
	for (int i = 1; i < p->n; i++)
		pthread_join(p->tid[i], NULL);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->go);
	pthread_cond_destroy(&p->done);
	free(p->tid);
	free(p);
}

int
mura_threads_size(const struct mura_threads *p)
{
	return p ? p->n : 1;
}

void
mura_threads_run(struct mura_threads *p, mura_threads_fn *fn, void *arg)
{
	if (!p || p->n == 1) {
		fn(arg, 0, 1);
		return;
	}
	p->fn = fn;
	p->arg = arg;
	atomic_store(&p->pending, p->n - 1);
	pthread_mutex_lock(&p->mu);
	atomic_fetch_add(&p->gen, 1);  /* publishes fn and arg to a spinning worker */
	pthread_cond_broadcast(&p->go);
	pthread_mutex_unlock(&p->mu);

	fn(arg, 0, p->n);

	for (int k = 0; k < SPIN && atomic_load(&p->pending) > 0; k++)
		cpu_relax();
	if (atomic_load(&p->pending) > 0) {
		pthread_mutex_lock(&p->mu);
		while (atomic_load(&p->pending) > 0)
			pthread_cond_wait(&p->done, &p->mu);
		pthread_mutex_unlock(&p->mu);
	}
}

void
mura_threads_share(size_t total, int i, int n, size_t align, size_t *lo, size_t *hi)
{
	size_t units = (total + align - 1) / align;
	size_t a = units * (size_t)i / (size_t)n, b = units * (size_t)(i + 1) / (size_t)n;

	*lo = a * align < total ? a * align : total;
	*hi = b * align < total ? b * align : total;
}

struct for_job {
	size_t n;
	int parts;
	void (*fn)(void *arg, size_t lo, size_t hi);
	void *arg;
};

static void
for_part(void *v, int i, int nt)
{
	const struct for_job *j = v;
	size_t lo, hi;

	(void)nt;
	if (i >= j->parts)
		return;
	mura_threads_share(j->n, i, j->parts, 1, &lo, &hi);
	if (lo < hi)
		j->fn(j->arg, lo, hi);
}

void
mura_threads_for(struct mura_threads *p, size_t n, size_t grain,
              void (*fn)(void *arg, size_t lo, size_t hi), void *arg)
{
	size_t parts = grain ? n / grain : n;
	int nt = mura_threads_size(p);

	if (parts > (size_t)nt)
		parts = (size_t)nt;
	if (parts <= 1) {
		if (n)
			fn(arg, 0, n);
		return;
	}
	struct for_job j = {n, (int)parts, fn, arg};
	mura_threads_run(p, for_part, &j);
}

struct gemm_job {
	int ta, tb, m, n, k, lda, ldb, ldc;
	float alpha, beta;
	const float *a, *b;
	float *c;
	int split_n;
};

/* Each thread computes a block of C's rows (split along M) or columns. */
static void
gemm_part(void *v, int i, int nt)
{
	const struct gemm_job *j = v;
	size_t lo, hi;

	if (j->split_n) {
		mura_threads_share((size_t)j->n, i, nt, 16, &lo, &hi);
		if (lo == hi)
			return;
		const float *b = j->tb ? j->b + lo * (size_t)j->ldb : j->b + lo;
		cblas_sgemm(CblasRowMajor, j->ta ? CblasTrans : CblasNoTrans,
		            j->tb ? CblasTrans : CblasNoTrans, j->m, (int)(hi - lo), j->k,
		            j->alpha, j->a, j->lda, b, j->ldb, j->beta, j->c + lo, j->ldc);
	} else {
		mura_threads_share((size_t)j->m, i, nt, 16, &lo, &hi);
		if (lo == hi)
			return;
		const float *a = j->ta ? j->a + lo : j->a + lo * (size_t)j->lda;
		cblas_sgemm(CblasRowMajor, j->ta ? CblasTrans : CblasNoTrans,
		            j->tb ? CblasTrans : CblasNoTrans, (int)(hi - lo), j->n, j->k,
		            j->alpha, a, j->lda, j->b, j->ldb, j->beta,
		            j->c + lo * (size_t)j->ldc, j->ldc);
	}
}

void
mura_sgemm(struct mura_threads *p, int trans_a, int trans_b, int m, int n, int k,
           float alpha, const float *a, int lda, const float *b, int ldb,
           float beta, float *c, int ldc)
{
	struct gemm_job j = {trans_a, trans_b, m, n, k, lda, ldb, ldc, alpha, beta, a, b, c,
	                     n >= m};

	/* Below about a million multiply-adds a second thread costs more than it saves. */
	if ((double)m * n * k < 1e6 || mura_threads_size(p) == 1)
		gemm_part(&j, 0, 1);
	else
		mura_threads_run(p, gemm_part, &j);
}
