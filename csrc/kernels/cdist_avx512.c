/* The AVX-512 cdist path (AVX-512F has fused multiply-add of its own). */
#include "simd.h"

#if PL_SIMD_X86
#include <immintrin.h>

#define CD_TARGET "avx512f,avx512dq"
#define CD_W 8
#define CD_LANES(F, b) F(0, b), F(1, b), F(2, b), F(3, b), F(4, b), F(5, b), F(6, b), F(7, b)
#define CD_MR PL_CDIST_AVX512_ROWS
#define CD_NV (PL_CDIST_AVX512_COLS / CD_W)
#define CD_SQRT(v) ((cd_vec)_mm512_sqrt_pd((__m512d)(v)))
#define CD_FMA(d, s) ((cd_vec)_mm512_fmadd_pd((__m512d)(d), (__m512d)(d), (__m512d)(s)))
#define CD_NAME pl_cdist_block_avx512
#include "cdist_simd.h"
#else
typedef int pl_cdist_avx512_unused; /* ISO C wants a non-empty file */
#endif
