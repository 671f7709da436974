/* The AVX2 Monte Carlo path. AVX2 has no 64-bit multiply or 64-bit integer to
 * double conversion: GCC builds the multiply from 32-bit ones, and the
 * conversion splits the value in two exact halves. */
#include "simd.h"

#if PL_SIMD_X86
#define MC_TARGET "avx2"
#define MC_W 4
#define MC_U 2

/* v < 2**53. The high and low 32-bit halves go into the mantissas of 2**84 and
 * 2**52; subtracting those is exact, and so is adding the two halves, whose
 * sum is v itself (below 2**53). */
#define MC_TO_DOUBLE(v)                                                              \
    (((mc_f64)(((v) >> 32) | UINT64_C(0x4530000000000000)) - 0x1.0p84) +            \
     ((mc_f64)(((v) & UINT64_C(0xFFFFFFFF)) | UINT64_C(0x4330000000000000)) - 0x1.0p52))
#define MC_NAME pl_count_hits_avx2
#include "montecarlo_simd.h"
#else
typedef int pl_montecarlo_avx2_unused; /* ISO C wants a non-empty file */
#endif
