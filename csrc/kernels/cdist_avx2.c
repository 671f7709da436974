/* The AVX2 cdist path, with FMA (every AVX2 CPU but a rare few has it; the
 * path requires both). */
#include "simd.h"

#if PL_SIMD_X86
#include <immintrin.h>

#define CD_TARGET "avx2,fma"
#define CD_W 4
#define CD_LANES(F, b) F(0, b), F(1, b), F(2, b), F(3, b)
#define CD_MR PL_CDIST_AVX2_ROWS
#define CD_NV (PL_CDIST_AVX2_COLS / CD_W)
#define CD_SQRT(v) ((cd_vec)_mm256_sqrt_pd((__m256d)(v)))
#define CD_FMA(d, s) ((cd_vec)_mm256_fmadd_pd((__m256d)(d), (__m256d)(d), (__m256d)(s)))
#define CD_NAME pl_cdist_block_avx2
#include "cdist_simd.h"
#else
typedef int pl_cdist_avx2_unused; /* ISO C wants a non-empty file */
#endif
