/* Internal: the per-path implementations behind pl_count_hits. */
#ifndef PARLAB_MONTECARLO_PATHS_H
#define PARLAB_MONTECARLO_PATHS_H

#include "montecarlo.h"
#include "simd.h"

typedef int64_t pl_count_hits_fn(uint64_t key, uint64_t start, int64_t n);

/* The reference loop: the SIMD paths finish their tails with it. */
pl_count_hits_fn pl_count_hits_scalar;

#if PL_SIMD_X86
pl_count_hits_fn pl_count_hits_avx2, pl_count_hits_avx512;
#endif

#define PL_GAMMA UINT64_C(0x9E3779B97F4A7C15)
#define PL_MIX_M1 UINT64_C(0xBF58476D1CE4E5B9)
#define PL_MIX_M2 UINT64_C(0x94D049BB133111EB)
/* 2**-53: 53 random bits times this are a double in [0, 1). Exact, and
 * written without a hexadecimal float literal, which not every C compiler
 * that builds the scalar path (MSVC's) is known to accept. */
#define PL_TWO_POW_M53 (1.0 / 9007199254740992.0)

#endif
