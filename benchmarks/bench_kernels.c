/* C-only timing of the SIMD kernels, one core, no Python in the loop.
 *
 *   gcc -std=c11 -O2 -ffp-contract=off -pthread -Icsrc benchmarks/bench_kernels.c
 *       csrc/platform.c $(find csrc/kernels -name '*.c') -o /tmp/bench_kernels -lm
 *   /tmp/bench_kernels [--rows R] [PATH...]
 *
 * For each path (default: every path this CPU supports) prints the best of
 * several runs of cdist 1000x1000 at d = 100 and d = 3 (GFLOP/s counting
 * 3 flops per element pair: subtract, multiply, add), called in blocks of R
 * rows (default 64) by all 1000 columns as a chunked run loop would, and of
 * the Monte Carlo count in chunks of 2**16 samples (ns per sample).
 * On x86 the vector paths also print their share of the direct formula's
 * peak on this CPU, as it runs now: each element pair costs one subtract and
 * one FMA, so the peak is the measured rate of independent subtracts and FMAs
 * mixed one to one (whichever ports the CPU issues them to, at the clock it
 * keeps under that load) times 3 flops per pair. Intel cores issue both to
 * their two FMA ports; AMD Zen 4 splits a 512-bit op over two 256-bit pipes
 * and sends subtracts to its adders.
 * Compare with SciPy measured in the same session, e.g.
 *   python -m timeit -s "import numpy as np; from scipy.spatial.distance import cdist; \
 *       a = np.random.rand(1000, 100)" "cdist(a, a)"
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cdist.h"
#include "kernels/montecarlo.h"
#include "kernels/simd.h"
#include "platform.h"

#if PL_SIMD_X86
#include <immintrin.h>
#endif

#define REPEATS 7

static double now(void)
{
    return 1e-9 * (double)pl_now_ns();
}

/* Seconds for the best of REPEATS full 1000 x 1000 cdist calls at dimension n. */
static double time_cdist(ptrdiff_t n, ptrdiff_t block_rows)
{
    const ptrdiff_t m = 1000;
    double *X = malloc(sizeof(double) * (size_t)(m * n));
    double *D = malloc(sizeof(double) * (size_t)(m * m));
    if (!X || !D)
        exit(1);
    uint64_t s = 42;
    for (ptrdiff_t i = 0; i < m * n; i++) {
        s = s * UINT64_C(6364136223846793005) + 1442695040888963407u;
        X[i] = (double)(s >> 11) * 0x1.0p-53;
    }
    double best = 1e30;
    for (int rep = 0; rep < REPEATS; rep++) {
        const double t0 = now();
        for (ptrdiff_t i = 0; i < m; i += block_rows) {
            const ptrdiff_t mi = m - i < block_rows ? m - i : block_rows;
            pl_cdist_block(X + i * n, n, X, n, mi, m, n, PL_EUCLIDEAN, D + i * m, m);
        }
        const double t = now() - t0;
        best = t < best ? t : best;
    }
    free(X);
    free(D);
    return best;
}

static double time_hits(int64_t n, int64_t chunk, int64_t *hits)
{
    const uint64_t key = pl_seed_key(12345);
    double best = 1e30;
    for (int rep = 0; rep < REPEATS; rep++) {
        const double t0 = now();
        int64_t h = 0;
        for (int64_t done = 0; done < n; done += chunk)
            h += pl_count_hits(key, (uint64_t)done, n - done < chunk ? n - done : chunk);
        const double t = now() - t0;
        best = t < best ? t : best;
        *hits = h;
    }
    return best;
}

#if PL_SIMD_X86
/* Six independent subtract chains and six FMA chains of vector type V: enough
 * in flight to cover a latency of 4 to 6 cycles at two issues a cycle. */
#define PEAK_LOOP(V, SET1, SUB, FMA)                                                    \
    V m = SET1(0.999999), c = SET1(1e-9);                                               \
    V s0 = SET1(1), s1 = SET1(2), s2 = SET1(3), s3 = SET1(4), s4 = SET1(5), s5 = SET1(6); \
    V f0 = SET1(7), f1 = SET1(8), f2 = SET1(9), f3 = SET1(10), f4 = SET1(11), f5 = SET1(12); \
    for (long i = 0; i < n; i++) {                                                      \
        s0 = SUB(s0, c); s1 = SUB(s1, c); s2 = SUB(s2, c);                              \
        s3 = SUB(s3, c); s4 = SUB(s4, c); s5 = SUB(s5, c);                              \
        f0 = FMA(f0, m, c); f1 = FMA(f1, m, c); f2 = FMA(f2, m, c);                     \
        f3 = FMA(f3, m, c); f4 = FMA(f4, m, c); f5 = FMA(f5, m, c);                     \
    }                                                                                   \
    V all = SUB(SUB(SUB(s0, s1), SUB(s2, s3)), SUB(SUB(s4, s5), SUB(SUB(f0, f1),         \
                SUB(SUB(f2, f3), SUB(f4, f5)))));                                       \
    double out[sizeof(V) / sizeof(double)];                                             \
    memcpy(out, &all, sizeof out);                                                      \
    return out[0]

__attribute__((target("avx512f"))) static double mix_avx512(long n)
{
    PEAK_LOOP(__m512d, _mm512_set1_pd, _mm512_sub_pd, _mm512_fmadd_pd);
}

__attribute__((target("avx2,fma"))) static double mix_avx2(long n)
{
    PEAK_LOOP(__m256d, _mm256_set1_pd, _mm256_sub_pd, _mm256_fmadd_pd);
}

/* The direct formula's peak in GFLOP/s for ``path``, 0 where not measured. */
static double peak_gflops(pl_simd path)
{
    double (*mix)(long) = path == PL_SIMD_AVX512 ? mix_avx512 : path == PL_SIMD_AVX2 ? mix_avx2 : 0;
    if (!mix)
        return 0;
    const long n = 20000000;
    const double lanes = path == PL_SIMD_AVX512 ? 8 : 4;
    double best = 1e30, sink = 0;
    for (int rep = 0; rep < REPEATS; rep++) {
        const double t0 = now();
        sink += mix(n);
        const double t = now() - t0;
        best = t < best ? t : best;
    }
    if (sink == 42) /* keeps the result alive */
        puts("");
    return 6.0 * (double)n * lanes * 3 / best * 1e-9; /* 6 pairs of ops an iteration */
}
#else
static double peak_gflops(pl_simd path)
{
    (void)path;
    return 0;
}
#endif

static void bench(pl_simd path, ptrdiff_t block_rows)
{
    pl_simd_select(path);
    ptrdiff_t rows, cols;
    pl_cdist_tile(&rows, &cols);
    const double t100 = time_cdist(100, block_rows), t3 = time_cdist(3, block_rows);
    int64_t hits;
    const int64_t samples = INT64_C(1) << 24;
    const double th = time_hits(samples, INT64_C(1) << 16, &hits);
    const double gflops = 3e6 * 100 / t100 * 1e-9, peak = peak_gflops(path);
    char share[64] = "";
    if (peak > 0)
        snprintf(share, sizeof share, " (%.0f%% of %.1f peak)", 100 * gflops / peak, peak);
    printf("%-7s tile %tdx%-3td rows %td: cdist d=100 %7.2f ms %6.1f GFLOP/s%s | d=3 %6.2f ms %5.1f GFLOP/s"
           " | pi %.3f ns/sample (hits %" PRId64 ")\n",
           pl_simd_name(path), rows, cols, block_rows, 1e3 * t100, gflops, share, 1e3 * t3,
           3e6 * 3 / t3 * 1e-9, th / (double)samples * 1e9, hits);
}

int main(int argc, char **argv)
{
    ptrdiff_t block_rows = 64;
    int first = 1;
    if (argc > 2 && strcmp(argv[1], "--rows") == 0) {
        block_rows = atol(argv[2]);
        first = 3;
        if (block_rows < 1) {
            fprintf(stderr, "--rows must be positive\n");
            return 2;
        }
    }
    for (int a = first; a < argc; a++) {
        pl_simd path;
        if (pl_simd_from_name(argv[a], &path) < 0 || !pl_simd_supported(path)) {
            fprintf(stderr, "%s: unknown or not supported here\n", argv[a]);
            return 2;
        }
        bench(path, block_rows);
    }
    if (first == argc)
        for (int p = 0; p < PL_SIMD_COUNT; p++)
            if (pl_simd_supported((pl_simd)p))
                bench((pl_simd)p, block_rows);
    return 0;
}
