/* Pairwise distances between the rows of two float64 matrices.
 * Plain C: no Python objects, callable with the GIL released. */
#ifndef PARLAB_CDIST_H
#define PARLAB_CDIST_H

#include <stddef.h>

#define PL_METRICS(X) X(PL_EUCLIDEAN, "euclidean") X(PL_SQEUCLIDEAN, "sqeuclidean")
#define PL_METRIC_ITEM(id, name) id,
typedef enum { PL_METRICS(PL_METRIC_ITEM) } pl_metric;

/* Blocks whose sides are multiples of these run the kernel's full tiles. */
#define PL_CDIST_TILE_ROWS 4
#define PL_CDIST_TILE_COLS 8

/* For 0 <= i < mA, 0 <= j < mB: out[i*ldo + j] = distance between the rows
 * A + i*lda and B + j*ldb, each of n contiguous elements. lda and ldb may be 0
 * (a broadcast row). Thread-safe on disjoint blocks of out. */
void pl_cdist_block(const double *A, ptrdiff_t lda, const double *B, ptrdiff_t ldb,
                    ptrdiff_t mA, ptrdiff_t mB, ptrdiff_t n, pl_metric metric, double *out,
                    ptrdiff_t ldo);

#endif
