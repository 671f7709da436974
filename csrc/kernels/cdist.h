/* Pairwise distances between rows of float64 matrices.
 * Plain C: no Python objects, callable with the GIL released. */
#ifndef PARLAB_CDIST_H
#define PARLAB_CDIST_H

#include <stddef.h>

/* X(enumerator, name): the single list the enum and any name table come from. */
#define PL_METRICS(X)                  \
    X(PL_EUCLIDEAN, "euclidean")       \
    X(PL_SQEUCLIDEAN, "sqeuclidean")

#define PL_METRIC_ENUMERATOR(id, name) id,
typedef enum { PL_METRICS(PL_METRIC_ENUMERATOR) PL_METRIC_COUNT } pl_metric;
#undef PL_METRIC_ENUMERATOR

/* One block of the distance matrix: for 0 <= i < mA and 0 <= j < mB,
 *   out[i*ldo + j] = dist(A + i*lda, B + j*ldb),
 * each row n contiguous doubles. lda and ldb are row strides in elements and
 * may be 0 (one row broadcast) or larger than n; ldo >= mB. Only those mA*mB
 * entries of out are written.
 *
 * Every path (see simd.h) sums (a_k - b_k)^2 over k in increasing order,
 * then takes sqrt for PL_EUCLIDEAN. Each difference is exact for close points
 * (no |a|^2 + |b|^2 - 2 a.b), so they keep full relative accuracy. Where the
 * CPU has fused multiply-add (pl_simd_fma) every path adds each square to the
 * sum with one rounding, else with two; either way each entry is bit-for-bit
 * the same whatever the path and however the matrix is cut into blocks.
 *
 * Thread-safe for disjoint out blocks: no global state besides the path
 * chosen before threads start; the packing buffer lives on the stack. */
void pl_cdist_block(const double *A, ptrdiff_t lda, const double *B, ptrdiff_t ldb,
                    ptrdiff_t mA, ptrdiff_t mB, ptrdiff_t n, pl_metric metric,
                    double *out, ptrdiff_t ldo);

/* The current path's register tile: blocks whose mA is a multiple of *rows and
 * whose mB is a multiple of *cols waste no lanes. Each call packs B once per
 * tile of columns and reuses it for all mA rows, so larger mA (16..64)
 * amortises the packing better. */
void pl_cdist_tile(ptrdiff_t *rows, ptrdiff_t *cols);

#endif
