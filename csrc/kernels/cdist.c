#include "cdist.h"

#include <math.h>

/* Four columns of XB per pass: each XA element is loaded once for four
 * independent accumulators. Every sum still runs over k in order, so results
 * are the same as the one-column loop. */
static void row_distances(const double *a, const double *XB, ptrdiff_t mB,
                          ptrdiff_t n, double *out)
{
    ptrdiff_t j = 0;
    for (; j + 4 <= mB; j += 4) {
        const double *b0 = XB + j * n, *b1 = b0 + n, *b2 = b1 + n, *b3 = b2 + n;
        double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
        for (ptrdiff_t k = 0; k < n; k++) {
            const double ak = a[k];
            const double d0 = ak - b0[k], d1 = ak - b1[k];
            const double d2 = ak - b2[k], d3 = ak - b3[k];
            s0 += d0 * d0;
            s1 += d1 * d1;
            s2 += d2 * d2;
            s3 += d3 * d3;
        }
        out[j] = s0;
        out[j + 1] = s1;
        out[j + 2] = s2;
        out[j + 3] = s3;
    }
    for (; j < mB; j++) {
        const double *b = XB + j * n;
        double s = 0.0;
        for (ptrdiff_t k = 0; k < n; k++) {
            const double d = a[k] - b[k];
            s += d * d;
        }
        out[j] = s;
    }
}

void pl_cdist_rows(const double *XA, const double *XB, ptrdiff_t row_begin,
                   ptrdiff_t row_end, ptrdiff_t mB, ptrdiff_t n, pl_metric metric,
                   double *out, ptrdiff_t out_row_stride)
{
    for (ptrdiff_t i = row_begin; i < row_end; i++) {
        double *row = out + (i - row_begin) * out_row_stride;
        row_distances(XA + i * n, XB, mB, n, row);
        if (metric == PL_EUCLIDEAN) {
            for (ptrdiff_t j = 0; j < mB; j++)
                row[j] = sqrt(row[j]);
        }
    }
}
