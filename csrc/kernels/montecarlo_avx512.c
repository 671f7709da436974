/* The AVX-512 Monte Carlo path: AVX-512DQ multiplies 64-bit lanes and converts
 * them to double directly (exactly, as the values are below 2**53). */
#include "simd.h"

#if PL_SIMD_X86
#define MC_TARGET "avx512f,avx512dq"
#define MC_W 8
#define MC_U 2

#define MC_TO_DOUBLE(v) __builtin_convertvector((v), mc_f64)
#define MC_NAME pl_count_hits_avx512
#include "montecarlo_simd.h"
#else
typedef int pl_montecarlo_avx512_unused; /* ISO C wants a non-empty file */
#endif
