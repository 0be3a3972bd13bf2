/*
 * thread.h - the engine's one pool of threads.
 *
 * Every parallel loop of lib/nn runs on this pool, and so does every matrix
 * product: OpenBLAS is told to use one thread, and the engine splits each
 * GEMM between the pool's threads itself.  So there is exactly one set of
 * threads, of the size asked for, and never OpenBLAS's threads and ours
 * competing for the same cores (OpenBLAS's idle workers poll with
 * sched_yield, which on a 2-core machine steals time from whoever works).
 *
 * The pool is carried by whoever needs it (a model owns one); nothing here
 * is global, except OpenBLAS's own thread setting, which the pool sets to 1.
 */
#ifndef MURA_NN_THREAD_H
#define MURA_NN_THREAD_H

#include <stddef.h>

struct mura_threads;

/* The number of threads a pool asked for n has: n when n > 0, else the
 * MURA_THREADS environment variable when set, else every core this process
 * may run on.  -1 with mura_error set when MURA_THREADS is not a number in
 * [1, 1024].  The one place that decides it: a caller that records the
 * count (a checkpoint) asks here and creates its pool with the answer. */
int mura_threads_count(int n);
/* A pool of mura_threads_count(n) threads, the caller's counted (all but one
 * are started).  Returns NULL with mura_error set. */
struct mura_threads *mura_threads_create(int n);
void mura_threads_free(struct mura_threads *p);
int mura_threads_size(const struct mura_threads *p);

/* Call fn(arg, i, n) once for each i in [0, n), n = mura_threads_size(p), each
 * on its own thread (i = 0 on the caller's), and return when all are done.
 * Not reentrant: fn must not call mura_threads_run on the same pool. */
typedef void mura_threads_fn(void *arg, int i, int n);
void mura_threads_run(struct mura_threads *p, mura_threads_fn *fn, void *arg);

/* Run fn(arg, lo, hi) over contiguous parts of [0, n) on the pool's threads;
 * parts hold at least `grain` items, so small loops run inline. */
void mura_threads_for(struct mura_threads *p, size_t n, size_t grain,
                   void (*fn)(void *arg, size_t lo, size_t hi), void *arg);

/* Split [0, total) into n nearly equal contiguous parts, each a multiple of
 * `align` except the last; part i is [*lo, *hi), possibly empty. */
void mura_threads_share(size_t total, int i, int n, size_t align, size_t *lo, size_t *hi);

/*
 * C = alpha * op(A) * op(B) + beta * C, row-major, as cblas_sgemm, with the
 * work split between the pool's threads along M or N (whichever is larger).
 * Small products run on the caller's thread alone.
 */
void mura_sgemm(struct mura_threads *p, int trans_a, int trans_b, int m, int n, int k,
                float alpha, const float *a, int lda, const float *b, int ldb,
                float beta, float *c, int ldc);

/* The name of the kernels OpenBLAS runs ("SkylakeX", "Haswell", ...).  When
 * OPENBLAS_CORETYPE is unset and OpenBLAS's own choice is older than the CPU
 * (its table lacks the model), the engine sets it and starts the program
 * again before main: see thread.c. */
const char *mura_blas_core(void);

#endif
