/*
 * rng.h - a small, seedable random stream (xoshiro256**, seeded by
 * splitmix64), carried by whoever needs randomness: no global state.
 *
 * Streams that must not depend on how work is split (augmenting a record
 * under GNU parallel) are derived from the data they apply to:
 * mura_rng_derive(&r, seed, epoch, path) gives the same stream for the same
 * record wherever it lands.
 */
#ifndef MURA_RNG_H
#define MURA_RNG_H

#include <stdint.h>

struct mura_rng {
	uint64_t s[4];
};

void mura_rng_seed(struct mura_rng *r, uint64_t seed);
/* Seed from (seed, epoch, a string), hashing all three. */
void mura_rng_derive(struct mura_rng *r, uint64_t seed, uint64_t epoch, const char *key);
uint64_t mura_rng_u64(struct mura_rng *r);
/* Uniform in [0, 1) with 24 random bits (float) or 53 (double). */
float mura_rng_float(struct mura_rng *r);
double mura_rng_double(struct mura_rng *r);
/* Uniform in [lo, hi). */
double mura_rng_uniform(struct mura_rng *r, double lo, double hi);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint64_t mura_rng_below(struct mura_rng *r, uint64_t n);
/* Standard normal (Box-Muller, one value per call). */
double mura_rng_normal(struct mura_rng *r);
/* Beta(a, a) for mixup, a > 0, via two gamma draws (Marsaglia-Tsang). */
double mura_rng_beta(struct mura_rng *r, double a, double b);
/* 64-bit FNV-1a of a string, for deriving streams and splitting by key. */
uint64_t mura_hash_str(const char *s, uint64_t h);

#endif
