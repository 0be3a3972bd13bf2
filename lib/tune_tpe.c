/*
 * tune_tpe.c - the samplers (TPE and random) and the pruners (median and
 * ASHA) of a study.
 *
 * TPE (Bergstra et al., "Algorithms for Hyper-Parameter Optimization",
 * NIPS 2011) as Optuna 3.1's TPESampler with its defaults: univariate (each
 * parameter on its own), 10 random start-up trials, gamma(n) = min(ceil(0.1
 * n), 25) trials "below", weights 1 for the newest 25 observations and a
 * linear ramp from 1/n for the older ones, a prior component (weight 1, the
 * middle of the range, sigma the range), sigmas from the neighbours'
 * distances (consider_endpoints off) clipped to [range / min(100, 1 + n),
 * range] ("magic clip"), 24 candidates drawn from l(x), the one of largest
 * log l(x) - log g(x) kept.  Log-uniform parameters live in log space;
 * integers as reals in [LO - 0.5, HI + 0.5] whose density is the mass of
 * [x - 0.5, x + 0.5]; a choice as a categorical distribution per
 * observation (1 + prior / (n + 1) on the observed word, prior / (n + 1) on
 * the others, normalised).  Pruned trials rank after complete ones, by the
 * epoch they reached (later first), then by their last value.
 *
 * One deliberate difference: a component's density here is the truncated
 * normal's, with its 1/sigma.  Optuna 3.1 (Debian 12's) leaves 1/sigma out
 * of _truncnorm.logpdf (optuna issue #5109, fixed in 3.5), which favours
 * the wide components; tests/t-tune.sh compares the two on one objective.
 *
 * Our random stream is not numpy's: the draws follow the same
 * distributions, not the same numbers.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "tune.h"

#define N_EI_CANDIDATES 24
#define SQRT2 1.4142135623730950488
#define LOG_SQRT_2PI 0.91893853320467274178
#define PRIOR_WEIGHT 1.0

static double
sample_random(const struct mura_tune_param *p, struct mura_rng *r)
{
	switch (p->kind) {
	case MURA_TUNE_UNIFORM:
		return fmin(mura_rng_uniform(r, p->lo, p->hi), p->hi);
	case MURA_TUNE_LOG_UNIFORM:  /* exp(log(x)) may be x's neighbour: clipped */
		return fmin(fmax(exp(mura_rng_uniform(r, log(p->lo), log(p->hi))), p->lo), p->hi);
	case MURA_TUNE_INT_UNIFORM:
		return p->lo + (double)mura_rng_below(r, (uint64_t)(p->hi - p->lo) + 1);
	default:
		return (double)mura_rng_below(r, (uint64_t)p->nchoice);
	}
}

/* An observation for TPE: its rank key and the trial. */
struct obs {
	double step;   /* -inf for complete, -epochs for pruned, 1 for pruned without an epoch */
	double score;  /* the value, negated when maximising: lower is better */
	int trial;
};

static int
obs_cmp(const void *a, const void *b)
{
	const struct obs *x = a, *y = b;
	/* numpy's sort puts NaN last, as here */
	if (x->step != y->step)
		return x->step < y->step ? -1 : 1;
	if (isnan(x->score) != isnan(y->score))
		return isnan(x->score) ? 1 : -1;
	if (x->score != y->score)
		return x->score < y->score ? -1 : 1;
	return x->trial - y->trial;  /* a stable sort */
}

static int
int_cmp(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* Optuna's default_gamma and default_weights. */
static int
gamma_n(int n)
{
	int g = (int)ceil(0.1 * n);
	return g < 25 ? g : 25;
}

static void
default_weights(int n, double *w)
{
	if (n < 25) {
		for (int i = 0; i < n; i++)
			w[i] = 1;
		return;
	}
	/* np.linspace(1 / n, 1, n - 25), then 25 ones */
	for (int i = 0; i < n - 25; i++)
		w[i] = n - 25 == 1 ? 1.0 / n : 1.0 / n + (1.0 - 1.0 / n) * i / (n - 26);
	for (int i = n - 25; i < n; i++)
		w[i] = 1;
}

/* A one-parameter Parzen estimator: m observations and the prior. */
struct parzen {
	int m;            /* components, the prior included */
	double *w;        /* normalised weights */
	double *mu, *sigma;
	double low, high; /* numeric: the bounds in the internal space */
	int q;            /* an integer parameter */
	int nc;           /* a choice: categories */
	double *cw;       /* m x nc probabilities */
};

static double
internal(const struct mura_tune_param *p, double x)
{
	return p->kind == MURA_TUNE_LOG_UNIFORM ? log(x) : x;
}

static int
dbl_idx_cmp(const void *a, const void *b, void *arg)
{
	const double *v = arg;
	double x = v[*(const int *)a], y = v[*(const int *)b];
	return x < y ? -1 : x > y ? 1 : 0;
}

/* A sort of indices by their values (qsort_r is not C11): an insertion
 * sort, stable, for the few hundred observations a study has. */
static void
sort_idx(int *idx, int n, const double *v)
{
	for (int i = 1; i < n; i++) {
		int k = idx[i], j = i;
		while (j > 0 && dbl_idx_cmp(&idx[j - 1], &k, (void *)v) > 0) {
			idx[j] = idx[j - 1];
			j--;
		}
		idx[j] = k;
	}
}

static int
parzen_init(struct parzen *pe, const struct mura_tune_param *p, const double *obs, int n)
{
	int m = n + 1;

	memset(pe, 0, sizeof *pe);
	pe->m = m;
	pe->w = malloc((size_t)m * sizeof *pe->w);
	pe->mu = malloc((size_t)m * sizeof *pe->mu);
	pe->sigma = malloc((size_t)m * sizeof *pe->sigma);
	if (!pe->w || !pe->mu || !pe->sigma)
		return -1;
	default_weights(n, pe->w);
	pe->w[n] = PRIOR_WEIGHT;
	{
		double sum = 0;
		for (int i = 0; i < m; i++)
			sum += pe->w[i];
		for (int i = 0; i < m; i++)
			pe->w[i] /= sum;
	}
	if (p->kind == MURA_TUNE_CHOICE) {
		pe->nc = p->nchoice;
		if (!(pe->cw = malloc((size_t)m * (size_t)pe->nc * sizeof *pe->cw)))
			return -1;
		for (int i = 0; i < m; i++) {
			double *row = pe->cw + (size_t)i * pe->nc, sum = 0;
			for (int c = 0; c < pe->nc; c++)
				row[c] = PRIOR_WEIGHT / m;
			if (i < n)
				row[(int)obs[i]] += 1;
			for (int c = 0; c < pe->nc; c++)
				sum += row[c];
			for (int c = 0; c < pe->nc; c++)
				row[c] /= sum;
		}
		return 0;
	}
	if (p->kind == MURA_TUNE_INT_UNIFORM) {
		pe->q = 1;
		pe->low = p->lo - 0.5, pe->high = p->hi + 0.5;
	} else {
		pe->low = internal(p, p->lo), pe->high = internal(p, p->hi);
	}
	for (int i = 0; i < n; i++)
		pe->mu[i] = internal(p, obs[i]);
	pe->mu[n] = 0.5 * (pe->low + pe->high);
	{
		/* each sigma: the larger distance to a neighbour among the sorted
		 * mus with the bounds at both ends; the first's and the last's
		 * only to the inner neighbour (consider_endpoints off) */
		int *idx = malloc((size_t)m * sizeof *idx);
		double *s = malloc((size_t)(m + 2) * sizeof *s);
		double range = pe->high - pe->low, minsigma = range / fmin(100.0, 1.0 + m);
		if (!idx || !s) {
			free(idx);
			free(s);
			return -1;
		}
		for (int i = 0; i < m; i++)
			idx[i] = i;
		sort_idx(idx, m, pe->mu);
		s[0] = pe->low;
		for (int i = 0; i < m; i++)
			s[i + 1] = pe->mu[idx[i]];
		s[m + 1] = pe->high;
		for (int i = 0; i < m; i++) {
			double sg = fmax(s[i + 1] - s[i], s[i + 2] - s[i + 1]);
			if (m + 2 >= 4 && i == 0)
				sg = s[2] - s[1];
			else if (m + 2 >= 4 && i == m - 1)
				sg = s[m] - s[m - 1];
			pe->sigma[idx[i]] = fmin(fmax(sg, minsigma), range);
		}
		pe->sigma[n] = range;
		free(idx);
		free(s);
	}
	return 0;
}

static void
parzen_free(struct parzen *pe)
{
	free(pe->w);
	free(pe->mu);
	free(pe->sigma);
	free(pe->cw);
}

static int
pick(const double *p, int n, struct mura_rng *r)
{
	double u = mura_rng_double(r), c = 0;
	for (int i = 0; i < n; i++)
		if (u < (c += p[i]))
			return i;
	return n - 1;
}

/* One draw, in the parameter's external space (an integer rounded and
 * clipped, a choice's index). */
static double
parzen_sample(const struct parzen *pe, const struct mura_tune_param *p, struct mura_rng *r)
{
	int k = pick(pe->w, pe->m, r);
	double x;

	if (pe->nc)
		return pick(pe->cw + (size_t)k * pe->nc, pe->nc, r);
	/* the truncated normal by rejection: the same distribution as
	 * Optuna's inverse CDF; mu lies inside and sigma is at most the
	 * range, so at least a third of the draws land inside */
	do
		x = pe->mu[k] + pe->sigma[k] * mura_rng_normal(r);
	while (x < pe->low || x > pe->high);
	if (p->kind == MURA_TUNE_LOG_UNIFORM)
		return fmin(fmax(exp(x), p->lo), p->hi);
	if (pe->q)
		return fmin(fmax(round(x), p->lo), p->hi);
	return x;
}

/* log(Phi(b) - Phi(a)) for a < b, from the tail that keeps precision. */
static double
log_mass(double a, double b)
{
	double m = a > 0 ? 0.5 * (erfc(a / SQRT2) - erfc(b / SQRT2))
	                 : 0.5 * (erfc(-b / SQRT2) - erfc(-a / SQRT2));
	return log(fmax(m, 1e-300));
}

static double
parzen_log_pdf(const struct parzen *pe, const struct mura_tune_param *p, double x)
{
	double best = -INFINITY, *lp = malloc((size_t)pe->m * sizeof *lp), sum = 0;

	if (pe->nc) {
		for (int i = 0; i < pe->m; i++)
			sum += pe->w[i] * pe->cw[(size_t)i * pe->nc + (int)x];
		free(lp);
		return log(sum);
	}
	if (!lp)
		return NAN;
	x = internal(p, x);
	for (int i = 0; i < pe->m; i++) {
		double mu = pe->mu[i], s = pe->sigma[i], l;
		double accept = log_mass((pe->low - mu) / s, (pe->high - mu) / s);
		if (pe->q) {
			double hi = fmin(x + 0.5, pe->high), lo = fmax(x - 0.5, pe->low);
			l = log_mass((lo - mu) / s, (hi - mu) / s) - accept;
		} else {
			double z = (x - mu) / s;
			l = -0.5 * z * z - LOG_SQRT_2PI - log(s) - accept;
		}
		lp[i] = l + log(pe->w[i]);
		if (lp[i] > best)
			best = lp[i];
	}
	for (int i = 0; i < pe->m; i++)
		sum += exp(lp[i] - best);
	free(lp);
	return best + log(sum);
}

void
mura_tune_sample(const struct mura_tune_study *s, int number, double *x)
{
	struct mura_rng r;
	struct obs *o = malloc(((size_t)s->n + 1) * sizeof *o);
	int *below = malloc(((size_t)s->n + 1) * sizeof *below), *above = malloc(((size_t)s->n + 1) * sizeof *above);
	double *vb = malloc(((size_t)s->n + 1) * sizeof *vb), *va = malloc(((size_t)s->n + 1) * sizeof *va);
	int n = 0, nb, na = 0;
	double sign = s->set.maximize ? -1 : 1;

	mura_rng_derive(&r, (uint64_t)s->set.seed, (uint64_t)number, "mura-tune");
	for (int i = 0; o && i < s->n; i++) {
		const struct mura_tune_trial *t = &s->t[i];
		if (t->state == MURA_TUNE_COMPLETE)
			o[n++] = (struct obs){-INFINITY, isnan(t->value) ? NAN : sign * t->value, i};
		else if (t->state == MURA_TUNE_PRUNED || t->state == MURA_TUNE_PAUSED) {
			if (!t->epochs)
				o[n++] = (struct obs){1, 0, i};
			else
				o[n++] = (struct obs){-t->epochs, isnan(t->curve[t->epochs - 1]) ? INFINITY
				                                                                 : sign * t->curve[t->epochs - 1], i};
		}
	}
	if (!o || !below || !above || !vb || !va || s->set.sampler == MURA_TUNE_RANDOM || n < s->set.startup) {
		/* random search, and TPE's start-up (out of memory: random too) */
		for (int k = 0; k < s->space.n; k++)
			x[k] = sample_random(&s->space.p[k], &r);
		goto out;
	}
	qsort(o, (size_t)n, sizeof *o, obs_cmp);
	nb = gamma_n(n);
	for (int i = 0; i < n; i++)
		if (i < nb)
			below[i] = o[i].trial;
		else
			above[na++] = o[i].trial;
	qsort(below, (size_t)nb, sizeof *below, int_cmp);
	qsort(above, (size_t)na, sizeof *above, int_cmp);
	for (int k = 0; k < s->space.n; k++) {
		const struct mura_tune_param *p = &s->space.p[k];
		struct parzen l, g;
		double cand, best = NAN, best_score = -INFINITY;
		for (int i = 0; i < nb; i++)
			vb[i] = s->t[below[i]].x[k];
		for (int i = 0; i < na; i++)
			va[i] = s->t[above[i]].x[k];
		if (parzen_init(&l, p, vb, nb) < 0 || parzen_init(&g, p, va, na) < 0) {
			parzen_free(&l);
			parzen_free(&g);
			x[k] = sample_random(p, &r);
			continue;
		}
		for (int c = 0; c < N_EI_CANDIDATES; c++) {
			double sc;
			cand = parzen_sample(&l, p, &r);
			sc = parzen_log_pdf(&l, p, cand) - parzen_log_pdf(&g, p, cand);
			if (isnan(best) || sc > best_score)
				best = cand, best_score = sc;
		}
		x[k] = best;
		parzen_free(&l);
		parzen_free(&g);
	}
out:
	free(o);
	free(below);
	free(above);
	free(vb);
	free(va);
}

/*
 * Optuna's MedianPruner with its defaults (a PercentilePruner at 50,
 * n_startup_trials 5, n_warmup_steps 0, interval_steps 1, n_min_trials 1):
 * once 5 trials are complete, a trial stops after an epoch when its best
 * value so far is worse than the median (np.nanpercentile, linear) of the
 * complete trials' values at that epoch; a trial whose values are all NaN
 * stops.  Pruned trials do not count.
 */
int
mura_tune_median_prune(const struct mura_tune_study *s, const struct mura_tune_trial *t, int step)
{
	double best = NAN, *v, med, pos;
	int ncomplete = 0, nv = 0;

	for (int i = 0; i < s->n; i++)
		ncomplete += s->t[i].state == MURA_TUNE_COMPLETE;
	if (ncomplete < 5 || step < 1 || step > t->epochs)
		return 0;
	for (int e = 0; e < step; e++)
		if (mura_tune_better(s, t->curve[e], best))
			best = t->curve[e];
	if (isnan(best))
		return 1;
	if (!(v = malloc((size_t)ncomplete * sizeof *v)))
		return 0;
	for (int i = 0; i < s->n; i++) {
		const struct mura_tune_trial *c = &s->t[i];
		if (c->state == MURA_TUNE_COMPLETE && c->epochs >= step && !isnan(c->curve[step - 1]))
			v[nv++] = c->curve[step - 1];
	}
	if (!nv) {
		free(v);
		return 0;
	}
	for (int i = 1; i < nv; i++)
		for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
			double tmp = v[j];
			v[j] = v[j - 1], v[j - 1] = tmp;
		}
	pos = 0.5 * (nv - 1);
	med = v[(int)pos] + (v[(int)ceil(pos)] - v[(int)pos]) * (pos - floor(pos));
	free(v);
	return s->set.maximize ? best < med : best > med;
}

int
mura_tune_asha_rung_epoch(const struct mura_tune_settings *c, int k)
{
	long e = c->min_epochs;

	for (int i = 0; i < k; i++)
		if ((e *= c->eta) >= c->epochs)
			return 0;
	return e < c->epochs ? (int)e : 0;
}

/*
 * ASHA (Li et al., "A System for Massively Parallel Hyperparameter
 * Tuning", MLSys 2020, algorithm 2): rung k holds the trials that reached
 * its epoch; the top floor(n_k / eta) of them, by their value at that
 * epoch, may go on to the next rung.  Ties go to the older trial.
 */
int
mura_tune_asha_promotable(const struct mura_tune_study *s, const struct mura_tune_trial *t, int k)
{
	int e = mura_tune_asha_rung_epoch(&s->set, k), nk = 0, ahead = 0;
	double v;

	if (!e || t->rung <= k || t->epochs < e)
		return 0;
	v = t->curve[e - 1];
	for (int i = 0; i < s->n; i++) {
		const struct mura_tune_trial *o = &s->t[i];
		double w;
		if (o->rung <= k || o->epochs < e)
			continue;
		nk++;
		w = o->curve[e - 1];
		if (o != t && (mura_tune_better(s, w, v) || (!mura_tune_better(s, v, w) && o->number < t->number)))
			ahead++;
	}
	return ahead < nk / s->set.eta;
}
