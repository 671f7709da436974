/* Pairwise distances between the rows of two C-contiguous float64 matrices.
 * Plain C: no Python objects, callable with the GIL released. */
#ifndef PARLAB_CDIST_H
#define PARLAB_CDIST_H

#include <stddef.h>

typedef enum { PL_EUCLIDEAN = 0, PL_SQEUCLIDEAN = 1 } pl_metric;

/* Rows [row_begin, row_end) of the (mA, mB) distance matrix between XA (mA, n)
 * and XB (mB, n). Row i of the result goes to out + (i - row_begin) * out_row_stride
 * (stride in elements, may be negative). Uses the direct formula sum((a-b)^2),
 * which keeps full relative accuracy for close points. */
void pl_cdist_rows(const double *XA, const double *XB, ptrdiff_t row_begin,
                   ptrdiff_t row_end, ptrdiff_t mB, ptrdiff_t n, pl_metric metric,
                   double *out, ptrdiff_t out_row_stride);

#endif
