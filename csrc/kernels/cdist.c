#include "cdist.h"

#include <math.h>

void pl_cdist_block(const double *A, ptrdiff_t lda, const double *B, ptrdiff_t ldb,
                    ptrdiff_t mA, ptrdiff_t mB, ptrdiff_t n, pl_metric metric, double *out,
                    ptrdiff_t ldo)
{
    for (ptrdiff_t i = 0; i < mA; i++) {
        const double *a = A + i * lda;
        for (ptrdiff_t j = 0; j < mB; j++) {
            const double *b = B + j * ldb;
            double s = 0.0;
            for (ptrdiff_t k = 0; k < n; k++) {
                const double d = a[k] - b[k];
                s += d * d;
            }
            out[i * ldo + j] = metric == PL_EUCLIDEAN ? sqrt(s) : s;
        }
    }
}
