/*
 * synth_rng.c: counter-based random numbers for the phantom cohort.
 *
 * A stream is a 64-bit key and a counter; draw i is splitmix64's finaliser of
 * key + i * golden-ratio. Keys come from (seed, centre, patient, purpose), so a
 * patient's draws never depend on how many draws another patient used, on
 * thread scheduling, or on the order slides are rendered in: the property
 * byte-identical output rests on. Not cryptographic; never used for secrets.
 */
#include <math.h>

#include "synth_internal.h"

uint64_t synth_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xBF58476D1CE4E5B9ull;
	x ^= x >> 27;
	x *= 0x94D049BB133111EBull;
	x ^= x >> 31;
	return x;
}

uint64_t synth_key(uint64_t seed, uint32_t centre, uint32_t patient, uint32_t purpose)
{
	uint64_t k = synth_mix64(seed + 0x9E3779B97F4A7C15ull);
	k = synth_mix64(k ^ ((uint64_t)centre << 32 | patient));
	return synth_mix64(k ^ ((uint64_t)purpose * 0xD6E8FEB86659FD93ull));
}

void synth_rng_init(struct synth_rng *r, uint64_t key)
{
	r->key = key;
	r->ctr = 0;
}

uint64_t synth_rng_u64(struct synth_rng *r)
{
	r->ctr++;
	return synth_mix64(r->key + r->ctr * 0x9E3779B97F4A7C15ull);
}

double synth_rng_unif(struct synth_rng *r)
{
	return synth_u01(synth_rng_u64(r));
}

double synth_rng_normal(struct synth_rng *r)
{
	/* Box-Muller without a cached second value, so every call uses exactly
	 * two draws and streams stay aligned whatever the caller does. */
	double u1 = synth_rng_unif(r), u2 = synth_rng_unif(r);
	return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

double synth_rng_exp(struct synth_rng *r)
{
	return -log(synth_rng_unif(r));
}

int synth_rng_bernoulli(struct synth_rng *r, double p)
{
	return synth_rng_unif(r) < p;
}
