/*
 * dist.h - data-parallel training over several processes, on MPI (Open MPI
 * as Debian packages it), the way Horovod and PyTorch's DistributedDataParallel
 * do it: every process holds the same model, takes its share of each batch,
 * and the gradients are summed across processes with an allreduce before
 * every process takes the same optimizer step.
 *
 * A process joins an MPI job only when a launcher started it: mpirun,
 * mpiexec or srun leave OMPI_COMM_WORLD_SIZE (Open MPI) or PMI_SIZE (MPICH,
 * Slurm) in its environment.  Otherwise it is the only rank of a job of
 * one and nothing here calls MPI: a tool started by hand runs as it always
 * did.  Only the process's main thread calls MPI (MPI_THREAD_FUNNELED).
 *
 * Gradients go in buckets, as in DistributedDataParallel (Li et al., "PyTorch
 * Distributed", VLDB 2020): the flat gradient array cut at parameter
 * boundaries into buckets taken from the end (the head first, since
 * backward makes those gradients first), the first small, the others about
 * bucket_bytes.  While backward runs, mura_dist_grads_final() learns that
 * the gradients from some offset to the end are final; every bucket wholly
 * inside starts its MPI_Iallreduce there and then, in bucket order (the
 * same order on every process, as MPI requires); mura_dist_grads_sum()
 * starts what is left and waits for all of them.
 *
 * Errors: a function that fails has set mura_error and returns -1, and the
 * job cannot go on (its collectives no longer match): the caller says why
 * and calls mura_dist_abort(), which stops every process of the job.
 */
#ifndef MURA_DIST_H
#define MURA_DIST_H

#include <stddef.h>
#include <stdint.h>

struct mura_dist;

/* Join the job this process was launched in (argc, argv: main's, for
 * MPI_Init), or make a job of one.  Returns 0, or -1 (launched by mpirun,
 * but this build has no MPI). */
int mura_dist_init(struct mura_dist **d, int *argc, char ***argv);
/* Leave the job (MPI_Finalize) and free d (NULL: nothing). */
void mura_dist_end(struct mura_dist *d);
/* Stop every process of the job with status (MPI_Abort); or exit(status). */
_Noreturn void mura_dist_abort(struct mura_dist *d, int status);

int mura_dist_rank(const struct mura_dist *d);  /* 0 .. size - 1 */
int mura_dist_size(const struct mura_dist *d);
/* "host:pid" of this process, for messages. */
const char *mura_dist_where(const struct mura_dist *d);

/* Collectives: every process calls them, in the same order. */
/* v[0..n) = the sum over the processes of their v. */
void mura_dist_sum(struct mura_dist *d, double *v, size_t n);
/* p[0..bytes) = process 0's. */
void mura_dist_bcast(struct mura_dist *d, void *p, size_t bytes);
/* v holds every process's part one after the other, process r's being
 * count[r] doubles; each process fills in its own and gets the others'. */
void mura_dist_gather(struct mura_dist *d, double *v, const size_t *count);
/* The lowest rank whose failed is non-zero, or -1 when none: so that
 * processes that failed alike (a bad option, a missing file) say it once,
 * and a failure on one process stops all of them cleanly. */
int mura_dist_first_failed(struct mura_dist *d, int failed);
/* 1 when p[0..n) is the same on every process, bit for bit, else 0. */
int mura_dist_same(struct mura_dist *d, const void *p, size_t bytes);

/* ---- gradients --------------------------------------------------------------- */

/* Sum g[lo..hi) across the processes from now on, in buckets that break
 * only at the offsets start[0..nstart) (the parameters' first elements,
 * rising): the first about first_bytes, the others about bucket_bytes.
 * Called again whenever [lo, hi) changes (a backbone frozen or not).
 * Returns 0 or -1. */
int mura_dist_grads_plan(struct mura_dist *d, float *g, size_t lo, size_t hi, const size_t *start,
                         size_t nstart, size_t first_bytes, size_t bucket_bytes);
/* During backward: g[off..hi) is final (lib/nn/model.h's
 * mura_model_on_grads hook, with d as its argument). */
void mura_dist_grads_final(void *d, size_t off);
/* After backward: every bucket summed.  Returns 0, or -1 (MURA_DIST_CHECK
 * found a gradient changed after it was said final: a bug in the engine). */
int mura_dist_grads_sum(struct mura_dist *d);

/* What the gradients cost so far; buckets of the last plan. */
struct mura_dist_stats {
	long steps;
	double wait_seconds;   /* in mura_dist_grads_sum, waiting for the sums */
	double bytes;          /* summed per process (each step's gradients) */
	int buckets;
	int late;              /* buckets started only by mura_dist_grads_sum */
};
void mura_dist_stats(const struct mura_dist *d, struct mura_dist_stats *s);

#endif
