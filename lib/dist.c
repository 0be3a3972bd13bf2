/*
 * dist.c - data-parallel training over MPI processes (see dist.h).
 *
 * Built with MPI where the Makefile finds it (pkg-config ompi-c: MURA_MPI);
 * without it, a job is always of one process and a process that mpirun
 * started says that it cannot join.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef MURA_MPI
#include <mpi.h>
#endif

#include "dist.h"
#include "error.h"

struct bucket {
	size_t lo, hi;        /* floats of g */
	uint64_t sum;         /* MURA_DIST_CHECK: its bits when it was started */
};

struct mura_dist {
	int rank, size, mpi;
	char where[300];
	int check;            /* MURA_DIST_CHECK: started buckets must not change */
	/* the gradients' plan */
	float *g;
	size_t lo, hi;
	struct bucket *b;
	int nb, next;         /* buckets; the next to start */
	struct mura_dist_stats st;
#ifdef MURA_MPI
	MPI_Comm comm, gcomm; /* collectives; the gradients' (own order) */
	MPI_Request *req;
#endif
};

static double
seconds(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

/* Did a launcher start this process as one rank of a job? */
static int
launched(void)
{
	static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
		if (getenv(vars[i]))
			return 1;
	return 0;
}

int
mura_dist_init(struct mura_dist **out, int *argc, char ***argv)
{
	struct mura_dist *d;
	char host[256];
	const char *e = getenv("MURA_DIST_CHECK");

	(void)argc, (void)argv;
	*out = NULL;
	if (!(d = calloc(1, sizeof *d)))
		return mura_error("out of memory");
	d->size = 1;
	d->check = e && *e && strcmp(e, "0") != 0;
	if (gethostname(host, sizeof host) < 0)
		snprintf(host, sizeof host, "?");
	host[sizeof host - 1] = 0;
	snprintf(d->where, sizeof d->where, "%s:%ld", host, (long)getpid());
	if (launched()) {
#ifdef MURA_MPI
		int provided;
		if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
			free(d);
			return mura_error("MPI_Init_thread failed");
		}
		d->mpi = 1;
		MPI_Comm_dup(MPI_COMM_WORLD, &d->comm);
		MPI_Comm_dup(MPI_COMM_WORLD, &d->gcomm);
		MPI_Comm_rank(d->comm, &d->rank);
		MPI_Comm_size(d->comm, &d->size);
#else
		free(d);
		return mura_error("started by an MPI launcher, but built without MPI: install libopenmpi-dev "
		                  "(make deps) and rebuild");
#endif
	}
	*out = d;
	return 0;
}

void
mura_dist_end(struct mura_dist *d)
{
	if (!d)
		return;
#ifdef MURA_MPI
	if (d->mpi) {
		MPI_Comm_free(&d->gcomm);
		MPI_Comm_free(&d->comm);
		MPI_Finalize();
	}
	free(d->req);
#endif
	free(d->b);
	free(d);
}

_Noreturn void
mura_dist_abort(struct mura_dist *d, int status)
{
	fflush(stdout);
	fflush(stderr);
#ifdef MURA_MPI
	if (d && d->mpi && d->size > 1)
		MPI_Abort(MPI_COMM_WORLD, status);
#else
	(void)d;
#endif
	exit(status);
}

int
mura_dist_rank(const struct mura_dist *d)
{
	return d ? d->rank : 0;
}

int
mura_dist_size(const struct mura_dist *d)
{
	return d ? d->size : 1;
}

const char *
mura_dist_where(const struct mura_dist *d)
{
	return d ? d->where : "";
}

/* ---- collectives --------------------------------------------------------- */

/* MPI counts are ints: large arrays go in parts of at most CHUNK. */
#define CHUNK ((size_t)1 << 28)

void
mura_dist_sum(struct mura_dist *d, double *v, size_t n)
{
#ifdef MURA_MPI
	if (d && d->size > 1)
		for (size_t i = 0; i < n; i += CHUNK)
			MPI_Allreduce(MPI_IN_PLACE, v + i, (int)(n - i < CHUNK ? n - i : CHUNK), MPI_DOUBLE, MPI_SUM,
			              d->comm);
#else
	(void)d, (void)v, (void)n;
#endif
}

void
mura_dist_bcast(struct mura_dist *d, void *p, size_t bytes)
{
#ifdef MURA_MPI
	if (d && d->size > 1)
		for (size_t i = 0; i < bytes; i += CHUNK)
			MPI_Bcast((char *)p + i, (int)(bytes - i < CHUNK ? bytes - i : CHUNK), MPI_BYTE, 0, d->comm);
#else
	(void)d, (void)p, (void)bytes;
#endif
}

void
mura_dist_gather(struct mura_dist *d, double *v, const size_t *count)
{
#ifdef MURA_MPI
	if (!d || d->size < 2)
		return;
	int *n = malloc((size_t)d->size * sizeof *n), *off = malloc((size_t)d->size * sizeof *off);
	if (!n || !off) {
		fprintf(stderr, "%s: out of memory\n", d->where);
		mura_dist_abort(d, 1);
	}
	for (int r = 0, o = 0; r < d->size; o += n[r], r++)
		n[r] = (int)count[r], off[r] = o;
	MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, v, n, off, MPI_DOUBLE, d->comm);
	free(n);
	free(off);
#else
	(void)d, (void)v, (void)count;
#endif
}

int
mura_dist_first_failed(struct mura_dist *d, int failed)
{
	if (!d || d->size < 2)
		return failed ? 0 : -1;
#ifdef MURA_MPI
	int mine = failed ? d->rank : d->size, first;
	MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, d->comm);
	return first < d->size ? first : -1;
#else
	return failed ? 0 : -1;
#endif
}

/* FNV-1a over 8-byte words, then the tail. */
static uint64_t
hash_bytes(const void *p, size_t bytes)
{
	const unsigned char *c = p;
	uint64_t h = 1469598103934665603ull, w;
	size_t i = 0;

	for (; i + 8 <= bytes; i += 8) {
		memcpy(&w, c + i, 8);
		h = (h ^ w) * 1099511628211ull;
	}
	for (; i < bytes; i++)
		h = (h ^ c[i]) * 1099511628211ull;
	return h;
}

int
mura_dist_same(struct mura_dist *d, const void *p, size_t bytes)
{
	if (!d || d->size < 2)
		return 1;
#ifdef MURA_MPI
	/* the largest of h and of ~h: h and ~(~h) only when every h is one */
	uint64_t h[2], m[2];
	h[0] = hash_bytes(p, bytes);
	h[1] = ~h[0];
	MPI_Allreduce(h, m, 2, MPI_UINT64_T, MPI_MAX, d->comm);
	return m[0] == ~m[1];
#else
	(void)p, (void)bytes;
	return 1;
#endif
}

/* ---- gradients ------------------------------------------------------------ */

int
mura_dist_grads_plan(struct mura_dist *d, float *g, size_t lo, size_t hi, const size_t *start, size_t nstart,
                     size_t first_bytes, size_t bucket_bytes)
{
	size_t k = nstart, top = hi, cap = first_bytes;

	free(d->b);
	d->b = NULL;
	d->nb = d->next = 0;
	d->g = g, d->lo = lo, d->hi = hi;
	if (d->size < 2 && !d->check)
		return 0;
	if (!(d->b = calloc(nstart + 1, sizeof *d->b)))
		return mura_error("out of memory");
#ifdef MURA_MPI
	free(d->req);
	if (!(d->req = calloc(nstart + 1, sizeof *d->req)))
		return mura_error("out of memory");
#endif
	/* From the end: the parameters starting at or above lo, whole. */
	while (k > 0 && top > lo) {
		size_t s;
		do
			s = start[--k];
		while (k > 0 && s > lo && (top - s) * sizeof(float) < cap);
		if (s < lo)
			s = lo;
		d->b[d->nb++] = (struct bucket){s, top, 0};
		top = s;
		cap = bucket_bytes;
	}
	if (top > lo)
		d->b[d->nb++] = (struct bucket){lo, top, 0};
	d->st.buckets = d->nb;
	return 0;
}

static void
start_bucket(struct mura_dist *d, int i)
{
	struct bucket *b = &d->b[i];

	if (d->check)
		b->sum = hash_bytes(d->g + b->lo, (b->hi - b->lo) * sizeof *d->g);
#ifdef MURA_MPI
	if (d->size > 1)
		MPI_Iallreduce(MPI_IN_PLACE, d->g + b->lo, (int)(b->hi - b->lo), MPI_FLOAT, MPI_SUM, d->gcomm,
		               &d->req[i]);
#endif
	d->st.bytes += (double)(b->hi - b->lo) * sizeof *d->g;
}

void
mura_dist_grads_final(void *v, size_t off)
{
	struct mura_dist *d = v;

	while (d->next < d->nb && d->b[d->next].lo >= off)
		start_bucket(d, d->next++);
#ifdef MURA_MPI
	/* MPI moves the sums on only inside its calls */
	if (d->size > 1 && d->next > 0) {
		int done;
		MPI_Testall(d->next, d->req, &done, MPI_STATUSES_IGNORE);
	}
#endif
}

int
mura_dist_grads_sum(struct mura_dist *d)
{
	double t0 = seconds();
	int rc = 0;

	if (!d)
		return 0;
	while (d->next < d->nb) {
		d->st.late++;
		start_bucket(d, d->next++);
	}
#ifdef MURA_MPI
	if (d->size > 1 && d->nb > 0)
		MPI_Waitall(d->nb, d->req, MPI_STATUSES_IGNORE);
#endif
	if (d->check && d->size < 2)
		for (int i = 0; i < d->nb; i++)
			if (hash_bytes(d->g + d->b[i].lo, (d->b[i].hi - d->b[i].lo) * sizeof *d->g) != d->b[i].sum) {
				rc = mura_error("MURA_DIST_CHECK: gradients [%zu, %zu) changed after backward said they "
				                "were final", d->b[i].lo, d->b[i].hi);
				break;
			}
	d->next = 0;
	d->st.steps++;
	d->st.wait_seconds += seconds() - t0;
	return rc;
}

void
mura_dist_stats(const struct mura_dist *d, struct mura_dist_stats *s)
{
	*s = d->st;
}
