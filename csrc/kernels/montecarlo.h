/* Monte Carlo estimation of pi with a counter-based generator.
 *
 * Sample i (a global index) uses outputs 2i and 2i+1 of the SplitMix64 stream
 * seeded with `key`: output j is mix64(key + (j + 1) * GAMMA). Each output is a
 * pure function of (key, j), so a chunk starting at any index costs O(1) to
 * reach and chunks add up exactly to the serial count. */
#ifndef PARLAB_MONTECARLO_H
#define PARLAB_MONTECARLO_H

#include <stdint.h>

/* Samples [start, start + n) that fall inside the quarter circle x^2 + y^2 <= 1. */
int64_t pl_count_hits(uint64_t key, uint64_t start, int64_t n);

/* NumPy's SeedSequence(seed).generate_state(1, numpy.uint64)[0] for a seed
 * below 2**64, computed without Python so that seeding a small call is cheap. */
uint64_t pl_seed_key(uint64_t seed);

#endif
