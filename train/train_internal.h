/*
 * train_internal.h: helpers shared by the sources of train/ and nowhere else.
 *
 * Random numbers: every draw of the trainer (initial weights, sampling,
 * augmentation) is a pure function of (seed, stream, index) through a
 * splitmix64 mix, never of call order or thread: a run resumed at step k
 * draws exactly what the uninterrupted run drew at step k.
 */
#ifndef FP_TRAIN_INTERNAL_H
#define FP_TRAIN_INTERNAL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "fp_status.h"

/* The *.h5 file names in `dir`, sorted; *names and each name are malloc'ed
 * (free each, then the array), also on failure. FP_ERR_NOT_FOUND when none. */
enum fp_status fp_train_list_caches(const char *dir, char ***names, size_t *n);

/* Streams keep independent uses of one seed apart. */
enum fp_rng_stream {
	FP_RNG_INIT = 1,     /* parameter initialisation */
	FP_RNG_SAMPLE = 2,   /* which tiles make a batch */
	FP_RNG_AUGMENT = 3,  /* flips, rotations, stain and colour jitter */
	FP_RNG_SPLIT = 4,    /* validation split of patients */
	FP_RNG_SYNTH = 5     /* test fixtures */
};

static inline uint64_t fp_train_mix(uint64_t seed, uint64_t stream, uint64_t i)
{
	uint64_t z = seed ^ (stream * 0xD1B54A32D192ED03ULL);
	z += (i + 1) * 0x9E3779B97F4A7C15ULL;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	z ^= z >> 31;
	/* A second round so that nearby (stream, i) pairs decorrelate. */
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	return z ^ (z >> 31);
}

/* Uniform in [0, 1) with 53 bits. */
static inline double fp_train_uniform(uint64_t seed, uint64_t stream, uint64_t i)
{
	return (double)(fp_train_mix(seed, stream, i) >> 11) * (1.0 / 9007199254740992.0);
}

/* Standard normal (Box-Muller over draws 2i and 2i+1). */
static inline double fp_train_normal(uint64_t seed, uint64_t stream, uint64_t i)
{
	double u1 = fp_train_uniform(seed, stream, 2 * i);
	double u2 = fp_train_uniform(seed, stream, 2 * i + 1);
	if (u1 < 1e-300) u1 = 1e-300;
	return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

struct fp_augment;
struct fp_tile_aug;
/* The augmentation draws of sample `draw` (augment.c): fp_tile_to_input's
 * random part, for fp_k_augment_tiles / fp_trainer_step_tiles. aug NULL:
 * the identity. */
void fp_augment_draw(const struct fp_augment *aug, uint64_t seed, uint64_t draw, struct fp_tile_aug *out);

/* Integer in [0, n), n > 0. */
static inline uint64_t fp_train_below(uint64_t seed, uint64_t stream, uint64_t i, uint64_t n)
{
	return (uint64_t)(fp_train_uniform(seed, stream, i) * (double)n) % n;
}

#endif
