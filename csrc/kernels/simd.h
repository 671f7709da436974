/* Which vector instructions the kernels use, chosen at run time. */
#ifndef PARLAB_SIMD_H
#define PARLAB_SIMD_H

#define PL_SIMD_PATHS(X) X(PL_SIMD_SCALAR, "scalar") X(PL_SIMD_AVX2, "avx2") X(PL_SIMD_AVX512, "avx512")
#define PL_SIMD_ITEM(id, name) id,
typedef enum { PL_SIMD_PATHS(PL_SIMD_ITEM) PL_SIMD_N } pl_simd;

const char *pl_simd_name(pl_simd path);
int pl_simd_from_name(const char *name, pl_simd *out);
int pl_simd_supported(pl_simd path);
pl_simd pl_simd_best(void);
void pl_simd_select(pl_simd path);
pl_simd pl_simd_current(void);

#endif
