#include "cdist.h"

#include <math.h>

#include "../platform.h"
#include "cdist_paths.h"

/* s + d * d, rounded once (fused) or twice. Always inlined, even into its
 * fused caller's target, so that `fused` is a constant. */
PL_ALWAYS_INLINE double add_square(double s, double d, int fused)
{
    return fused ? fma(d, d, s) : s + d * d;
}

/* The portable path, and the reference arithmetic every path keeps: one sum
 * per entry over k in increasing order of (a_k - b_k)^2, each term fused into
 * the sum where the CPU can. Four rows of B per pass load each A element once
 * for four independent sums. */
PL_ALWAYS_INLINE void
scalar_block(const double *A, ptrdiff_t lda, const double *B, ptrdiff_t ldb, ptrdiff_t mA,
             ptrdiff_t mB, ptrdiff_t n, pl_metric metric, double *out, ptrdiff_t ldo,
             int fused)
{
    for (ptrdiff_t i = 0; i < mA; i++) {
        const double *a = A + i * lda;
        double *row = out + i * ldo;
        ptrdiff_t j = 0;
        for (; j + 4 <= mB; j += 4) {
            const double *b0 = B + j * ldb, *b1 = b0 + ldb, *b2 = b1 + ldb, *b3 = b2 + ldb;
            double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
            for (ptrdiff_t k = 0; k < n; k++) {
                const double ak = a[k];
                const double d0 = ak - b0[k], d1 = ak - b1[k];
                const double d2 = ak - b2[k], d3 = ak - b3[k];
                s0 = add_square(s0, d0, fused);
                s1 = add_square(s1, d1, fused);
                s2 = add_square(s2, d2, fused);
                s3 = add_square(s3, d3, fused);
            }
            row[j] = s0;
            row[j + 1] = s1;
            row[j + 2] = s2;
            row[j + 3] = s3;
        }
        for (; j < mB; j++) {
            const double *b = B + j * ldb;
            double s = 0.0;
            for (ptrdiff_t k = 0; k < n; k++) {
                const double d = a[k] - b[k];
                s = add_square(s, d, fused);
            }
            row[j] = s;
        }
        if (metric == PL_EUCLIDEAN)
            for (j = 0; j < mB; j++)
                row[j] = sqrt(row[j]);
    }
}

#if PL_SIMD_X86 && !defined(FP_FAST_FMA)
/* Built for any x86-64, fma() is a library call, and a slow exact emulation
 * on CPUs without FMA (still sold in low-cost laptops): compile the fused
 * version for FMA hardware, and only call it there. */
#define FUSED_TARGET __attribute__((target("fma")))
#else
#define FUSED_TARGET
#endif

FUSED_TARGET static void scalar_fused(const double *A, ptrdiff_t lda, const double *B,
                                      ptrdiff_t ldb, ptrdiff_t mA, ptrdiff_t mB, ptrdiff_t n,
                                      pl_metric metric, double *out, ptrdiff_t ldo)
{
    scalar_block(A, lda, B, ldb, mA, mB, n, metric, out, ldo, 1);
}

static void cdist_scalar(const double *A, ptrdiff_t lda, const double *B, ptrdiff_t ldb,
                         ptrdiff_t mA, ptrdiff_t mB, ptrdiff_t n, pl_metric metric,
                         double *out, ptrdiff_t ldo)
{
    if (pl_simd_fma())
        scalar_fused(A, lda, B, ldb, mA, mB, n, metric, out, ldo);
    else
        scalar_block(A, lda, B, ldb, mA, mB, n, metric, out, ldo, 0);
}

static pl_cdist_fn *const paths[PL_SIMD_COUNT] = {
    [PL_SIMD_SCALAR] = cdist_scalar,
#if PL_SIMD_X86
    [PL_SIMD_AVX2] = pl_cdist_block_avx2,
    [PL_SIMD_AVX512] = pl_cdist_block_avx512,
#endif
#if PL_SIMD_AARCH64
    [PL_SIMD_NEON] = pl_cdist_block_neon,
#endif
};

void pl_cdist_block(const double *A, ptrdiff_t lda, const double *B, ptrdiff_t ldb,
                    ptrdiff_t mA, ptrdiff_t mB, ptrdiff_t n, pl_metric metric,
                    double *out, ptrdiff_t ldo)
{
    paths[pl_simd_current()](A, lda, B, ldb, mA, mB, n, metric, out, ldo);
}

void pl_cdist_tile(ptrdiff_t *rows, ptrdiff_t *cols)
{
    switch (pl_simd_current()) {
#if PL_SIMD_X86
    case PL_SIMD_AVX2:
        *rows = PL_CDIST_AVX2_ROWS;
        *cols = PL_CDIST_AVX2_COLS;
        return;
    case PL_SIMD_AVX512:
        *rows = PL_CDIST_AVX512_ROWS;
        *cols = PL_CDIST_AVX512_COLS;
        return;
#endif
#if PL_SIMD_AARCH64
    case PL_SIMD_NEON:
        *rows = PL_CDIST_NEON_ROWS;
        *cols = PL_CDIST_NEON_COLS;
        return;
#endif
    default:
        *rows = 1;
        *cols = 4;
    }
}
