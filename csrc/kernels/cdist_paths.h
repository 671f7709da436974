/* Internal: the per-path implementations behind pl_cdist_block. */
#ifndef PARLAB_CDIST_PATHS_H
#define PARLAB_CDIST_PATHS_H

#include "cdist.h"
#include "simd.h"

typedef void pl_cdist_fn(const double *A, ptrdiff_t lda, const double *B, ptrdiff_t ldb,
                         ptrdiff_t mA, ptrdiff_t mB, ptrdiff_t n, pl_metric metric,
                         double *out, ptrdiff_t ldo);

/* Elements of k per packed panel of B: bounds the stack buffer
 * (PL_CDIST_KC * tile columns doubles) and keeps it in L1. */
#define PL_CDIST_KC 128

#if PL_SIMD_X86
pl_cdist_fn pl_cdist_block_avx2, pl_cdist_block_avx512;
#define PL_CDIST_AVX2_ROWS 4
#define PL_CDIST_AVX2_COLS 12
#define PL_CDIST_AVX512_ROWS 4
#define PL_CDIST_AVX512_COLS 24
#endif
#if PL_SIMD_AARCH64
pl_cdist_fn pl_cdist_block_neon;
/* 12 of the 32 vector registers hold sums, 6 the panel's row of k, and 12
 * the differences in flight: gcc 12 spills a 4 x 8 tile's sums to the stack
 * (clang does not), and this one's too, only 2 x 12 is roomy enough. */
#define PL_CDIST_NEON_ROWS 2
#define PL_CDIST_NEON_COLS 12
#endif

#endif
