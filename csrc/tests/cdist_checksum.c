#include "cdist_checksum.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cdist.h"
#include "kernels/simd.h"

/* xorshift64*: integers only, so the inputs need no floating-point library. */
static uint64_t next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(0x2545F4914F6CDD1D);
}

/* 53 random bits in [-0.5, 0.5) times a power of two from 2**-8 to 2**7:
 * every step exact, so the same value wherever it is computed. */
static double value(uint64_t *s)
{
    const uint64_t r = next(s);
    const double unit = (double)(r >> 11) * 0x1.0p-53 - 0.5;
    return unit * (double)(UINT64_C(1) << (r & 15)) * 0x1.0p-8;
}

static uint64_t fnv1a(uint64_t h, double x)
{
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    for (int byte = 0; byte < 8; byte++) {
        h ^= (bits >> (8 * byte)) & 0xFF;
        h *= UINT64_C(0x100000001B3);
    }
    return h;
}

/* Shapes that fill the tiles of every path and leave every kind of tail; the
 * dimensions cross the packing of k (PL_CDIST_KC = 128) and every vector
 * width. Odd rows of B lie within about 2**-30 of a row of A: close pairs,
 * whose sums round differently unless the arithmetic is the same. */
static const long SHAPES[][2] = {{1, 1}, {3, 5}, {4, 12}, {2, 24}, {9, 25}, {37, 53}};
static const long DIMS[] = {1, 2, 3, 5, 8, 9, 17, 33, 100, 128, 129, 257};

static uint64_t checksum(double *A, double *B, double *out)
{
    uint64_t h = UINT64_C(0xCBF29CE484222325);
    uint64_t s = UINT64_C(0x9E3779B97F4A7C15);
    for (size_t c = 0; c < sizeof SHAPES / sizeof SHAPES[0]; c++) {
        for (size_t d = 0; d < sizeof DIMS / sizeof DIMS[0]; d++) {
            const long mA = SHAPES[c][0], mB = SHAPES[c][1], n = DIMS[d];
            for (long i = 0; i < mA * n; i++)
                A[i] = value(&s);
            for (long j = 0; j < mB; j++)
                for (long k = 0; k < n; k++)
                    B[j * n + k] = j % 2 ? A[j % mA * n + k] + value(&s) * 0x1.0p-30
                                         : value(&s);
            for (int metric = 0; metric < PL_METRIC_COUNT; metric++) {
                pl_cdist_block(A, n, B, n, mA, mB, n, (pl_metric)metric, out, mB);
                for (long i = 0; i < mA * mB; i++)
                    h = fnv1a(h, out[i]);
            }
        }
    }
    return h;
}

int pl_print_cdist_checksums(void)
{
    const size_t most = 53 * 257;
    double *A = malloc(most * sizeof(double)), *B = malloc(most * sizeof(double));
    double *out = malloc(37 * 53 * sizeof(double));
    const int ok = A && B && out;
    for (int p = 0; ok && p < PL_SIMD_COUNT; p++) {
        if (!pl_simd_supported((pl_simd)p))
            continue;
        pl_simd_select((pl_simd)p);
        printf("%s %016" PRIx64 "\n", pl_simd_name((pl_simd)p), checksum(A, B, out));
    }
    free(A);
    free(B);
    free(out);
    return ok ? 0 : 1;
}
