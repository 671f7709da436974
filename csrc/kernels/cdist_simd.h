/* Internal template: the register-blocked cdist kernel for one instruction
 * set, written with GCC vector extensions (gcc and clang both have them;
 * MSVC has not, so its builds have the scalar path only). The including file
 * defines
 *   CD_TARGET  target attribute string, e.g. "avx2"; left undefined where the
 *              build's baseline has the instructions (NEON on aarch64)
 *   CD_W       doubles per vector (2, 4 or 8)
 *   CD_LANES(F, b)  F(0, b), F(1, b), ..., F(CD_W - 1, b)
 *   CD_MR      rows of A per tile
 *   CD_NV      vectors of B columns per tile (tile columns NR = CD_NV * CD_W)
 *   CD_SPLAT(p)  a vector with *p in every lane (optional)
 *   CD_SQRT(v) element-wise sqrt of one vector
 *   CD_FMA(d, s) s + d * d with one rounding, element-wise
 *   CD_NAME    the function to define (a pl_cdist_fn)
 *
 * A panel of NR rows of B is packed k-major (panel[k] holds B[j][k] for each
 * of the NR rows j, padded with zeros), PL_CDIST_KC values of k at a time. A
 * tile keeps MR x NR sums in registers; for each k it broadcasts A[i][k],
 * subtracts the NR lanes from it and fuses their squares into the sums: two
 * instructions per lane, where a separate multiply and add would take three
 * on the same ports. A sum that spans several panels of k is
 * parked in out between them and reloaded, so each entry is still one sum
 * over k in increasing order. */
#include <stdint.h>
#include <string.h>

#include "cdist_paths.h"

#define CD_NR (CD_NV * CD_W)
#ifdef CD_TARGET
#define CD_ATTR __attribute__((target(CD_TARGET)))
#else
#define CD_ATTR
#endif
#define CD_FN static inline CD_ATTR __attribute__((always_inline))

typedef double cd_vec __attribute__((vector_size(CD_W * sizeof(double))));

#ifndef CD_SPLAT
#define CD_SPLAT_LANE(t, p) *(p)
#define CD_SPLAT(p) ((cd_vec){CD_LANES(CD_SPLAT_LANE, p)})
#endif

/* Lane t of round b of a transpose: rows i and i + b (i & b == 0) become
 * lo = shuffle(row i, row i + b, CD_LO) and hi likewise, which interleaves
 * them in blocks of b lanes. */
#define CD_LO(t, b) ((t) & (b) ? CD_W + (t) - (b) : (t))
#define CD_HI(t, b) ((t) & (b) ? CD_W + (t) : (t) + (b))

/* The lanes of x and y that CD_LANES(F, b) names, b a literal: clang and
 * gcc >= 12 take them as constant arguments of __builtin_shufflevector;
 * older gcc, which lacks it, as a constant index vector. */
#if defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)
#define CD_SHUFFLE(x, y, F, b) __builtin_shufflevector(x, y, CD_LANES(F, b))
#endif
#endif
#ifndef CD_SHUFFLE
typedef int64_t cd_idx __attribute__((vector_size(CD_W * sizeof(int64_t))));
#define CD_SHUFFLE(x, y, F, b) __builtin_shuffle(x, y, (cd_idx){CD_LANES(F, b)})
#endif

/* One round of the transpose: a macro, as the lanes must be literals. */
#define CD_ROUND(x, b)                                                              \
    _Pragma("GCC unroll 16") for (int i = 0; i < CD_W; i++) if (!(i & (b))) {      \
        const cd_vec l = CD_SHUFFLE(x[i], x[i + (b)], CD_LO, b);                    \
        x[i + (b)] = CD_SHUFFLE(x[i], x[i + (b)], CD_HI, b);                        \
        x[i] = l;                                                                   \
    }

/* Transposes the W x W block x[row][lane] in registers, in log2(W) rounds. */
CD_FN void cd_transpose(cd_vec x[CD_W])
{
    CD_ROUND(x, 1)
#if CD_W > 2
    CD_ROUND(x, 2)
#endif
#if CD_W > 4
    CD_ROUND(x, 4)
#endif
}

/* Copies rows [0, nr) of B (stride ldb), elements [0, kc), into panel[k][j];
 * lanes j >= nr get zeros. Full groups of W rows go W x W blocks at a time
 * through registers; the rest element by element. */
CD_FN void cd_pack(cd_vec (*panel)[CD_NV], const double *B, ptrdiff_t ldb, ptrdiff_t nr,
                   ptrdiff_t kc)
{
    double *p = (double *)panel;
    for (int v = 0; v < CD_NV; v++) {
        const ptrdiff_t j0 = (ptrdiff_t)v * CD_W;
        ptrdiff_t k0 = 0;
        if (j0 + CD_W <= nr) {
            for (; k0 + CD_W <= kc; k0 += CD_W) {
                cd_vec x[CD_W];
#pragma GCC unroll 16
                for (int l = 0; l < CD_W; l++)
                    memcpy(&x[l], B + (j0 + l) * ldb + k0, sizeof(cd_vec));
                cd_transpose(x);
#pragma GCC unroll 16
                for (int l = 0; l < CD_W; l++)
                    panel[k0 + l][v] = x[l];
            }
        }
        for (ptrdiff_t j = j0; j < j0 + CD_W; j++)
            for (ptrdiff_t k = k0; k < kc; k++)
                p[k * CD_NR + j] = j < nr ? B[j * ldb + k] : 0.0;
    }
}

/* One tile: rows [0, mr) of A (row r at a[r]), the nr packed columns, k in
 * [0, kc). first: start the sums at zero, not at out's parked values; root:
 * store their square roots (the last panel of k of a euclidean block). */
CD_FN void cd_tile(const double *const a[CD_MR], cd_vec (*panel)[CD_NV], ptrdiff_t kc,
                   ptrdiff_t mr, ptrdiff_t nr, int first, int root, double *out,
                   ptrdiff_t ldo)
{
    cd_vec acc[CD_MR][CD_NV];
    double tmp[CD_NR];
#pragma GCC unroll 16
    for (int r = 0; r < CD_MR; r++) {
#pragma GCC unroll 16
        for (int v = 0; v < CD_NV; v++)
            acc[r][v] = (cd_vec){0};
        if (!first && r < mr) {
            const double *src = out + r * ldo;
            if (nr < CD_NR) {
                memset(tmp, 0, sizeof tmp);
                memcpy(tmp, src, (size_t)nr * sizeof(double));
                src = tmp;
            }
#pragma GCC unroll 16
            for (int v = 0; v < CD_NV; v++)
                memcpy(&acc[r][v], src + v * CD_W, sizeof(cd_vec));
        }
    }
    for (ptrdiff_t k = 0; k < kc; k++) {
        cd_vec b[CD_NV];
#pragma GCC unroll 16
        for (int v = 0; v < CD_NV; v++)
            b[v] = panel[k][v];
#pragma GCC unroll 16
        for (int r = 0; r < CD_MR; r++) {
            const cd_vec ak = CD_SPLAT(&a[r][k]);
#pragma GCC unroll 16
            for (int v = 0; v < CD_NV; v++) {
                const cd_vec d = ak - b[v];
                acc[r][v] = CD_FMA(d, acc[r][v]);
            }
        }
    }
#pragma GCC unroll 16
    for (int r = 0; r < CD_MR; r++) {
        if (r >= mr)
            break;
        double *dst = nr < CD_NR ? tmp : out + r * ldo;
#pragma GCC unroll 16
        for (int v = 0; v < CD_NV; v++) {
            const cd_vec s = root ? CD_SQRT(acc[r][v]) : acc[r][v];
            memcpy(dst + v * CD_W, &s, sizeof(cd_vec));
        }
        if (nr < CD_NR)
            memcpy(out + r * ldo, tmp, (size_t)nr * sizeof(double));
    }
}

CD_ATTR void CD_NAME(const double *A, ptrdiff_t lda, const double *B, ptrdiff_t ldb,
                     ptrdiff_t mA, ptrdiff_t mB, ptrdiff_t n, pl_metric metric, double *out,
                     ptrdiff_t ldo)
{
    if (n == 0) {
        for (ptrdiff_t i = 0; i < mA; i++)
            memset(out + i * ldo, 0, (size_t)mB * sizeof(double));
        return;
    }
    cd_vec panel[PL_CDIST_KC][CD_NV];
    for (ptrdiff_t j0 = 0; j0 < mB; j0 += CD_NR) {
        const ptrdiff_t nr = mB - j0 < CD_NR ? mB - j0 : CD_NR;
        for (ptrdiff_t k0 = 0; k0 < n; k0 += PL_CDIST_KC) {
            const ptrdiff_t kc = n - k0 < PL_CDIST_KC ? n - k0 : PL_CDIST_KC;
            const int root = metric == PL_EUCLIDEAN && k0 + kc == n;
            cd_pack(panel, B + j0 * ldb + k0, ldb, nr, kc);
            for (ptrdiff_t i0 = 0; i0 < mA; i0 += CD_MR) {
                const ptrdiff_t mr = mA - i0 < CD_MR ? mA - i0 : CD_MR;
                /* Rows past mA repeat the last one: computed, never stored. */
                const double *a[CD_MR];
                for (int r = 0; r < CD_MR; r++)
                    a[r] = A + (i0 + (r < mr ? r : mr - 1)) * lda + k0;
                cd_tile(a, panel, kc, mr, nr, k0 == 0, root, out + i0 * ldo + j0, ldo);
            }
        }
    }
}
