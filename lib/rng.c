/* rng.c - xoshiro256** (Blackman and Vigna), seeded by splitmix64; see rng.h. */
#include <math.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

#include "rng.h"

static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void
mura_rng_seed(struct mura_rng *r, uint64_t seed)
{
	uint64_t x = seed;
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

uint64_t
mura_hash_str(const char *s, uint64_t h)
{
	h ^= 0xcbf29ce484222325ull;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	return h;
}

void
mura_rng_derive(struct mura_rng *r, uint64_t seed, uint64_t epoch, const char *key)
{
	uint64_t x = seed;
	uint64_t a = splitmix64(&x);
	x = a ^ epoch;
	a = splitmix64(&x);
	mura_rng_seed(r, mura_hash_str(key, a));
}

uint64_t
mura_rng_u64(struct mura_rng *r)
{
	uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

float
mura_rng_float(struct mura_rng *r)
{
	return (float)(mura_rng_u64(r) >> 40) * 0x1.0p-24f;
}

double
mura_rng_double(struct mura_rng *r)
{
	return (double)(mura_rng_u64(r) >> 11) * 0x1.0p-53;
}

double
mura_rng_uniform(struct mura_rng *r, double lo, double hi)
{
	return lo + (hi - lo) * mura_rng_double(r);
}

uint64_t
mura_rng_below(struct mura_rng *r, uint64_t n)
{
	uint64_t lim = -n % n, x; /* reject the low 2^64 mod n values */
	do
		x = mura_rng_u64(r);
	while (x < lim);
	return x % n;
}

double
mura_rng_normal(struct mura_rng *r)
{
	double u = 1.0 - mura_rng_double(r), v = mura_rng_double(r);
	return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

/* Gamma(a, 1) by Marsaglia and Tsang (2000); a < 1 boosted by U^(1/a). */
static double
gamma_draw(struct mura_rng *r, double a)
{
	if (a < 1.0) {
		double u = 1.0 - mura_rng_double(r);
		return gamma_draw(r, a + 1.0) * pow(u, 1.0 / a);
	}
	double d = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
	for (;;) {
		double x = mura_rng_normal(r), v = 1.0 + c * x, u;
		if (v <= 0)
			continue;
		v = v * v * v;
		u = 1.0 - mura_rng_double(r);
		if (log(u) < 0.5 * x * x + d - d * v + d * log(v))
			return d * v;
	}
}

double
mura_rng_beta(struct mura_rng *r, double a, double b)
{
	double x = gamma_draw(r, a), y = gamma_draw(r, b);
	return x / (x + y);
}
