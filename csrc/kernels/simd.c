#include "simd.h"

#include <math.h> /* FP_FAST_FMA */
#include <string.h>

#define PL_SIMD_NAME(id, name) [id] = name,
static const char *const names[PL_SIMD_COUNT] = {PL_SIMD_PATHS(PL_SIMD_NAME)};
#undef PL_SIMD_NAME

/* Written once before threads start (see pl_simd_select), then only read. */
static pl_simd current = PL_SIMD_SCALAR;

const char *pl_simd_name(pl_simd path)
{
    return (unsigned)path < PL_SIMD_COUNT ? names[path] : NULL;
}

int pl_simd_from_name(const char *name, pl_simd *out)
{
    for (int p = 0; p < PL_SIMD_COUNT; p++) {
        if (strcmp(name, names[p]) == 0) {
            *out = (pl_simd)p;
            return 0;
        }
    }
    return -1;
}

int pl_simd_supported(pl_simd path)
{
    switch (path) {
    case PL_SIMD_SCALAR:
        return 1;
#if PL_SIMD_X86
    /* libgcc's probe also checks that the OS saves the wider registers. */
    /* Both SIMD cdist kernels fuse multiply-add: without FMA (or in a
     * PARLAB_ASSUME_NO_FMA build) only the scalar path runs. */
    case PL_SIMD_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && pl_simd_fma();
    case PL_SIMD_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
               pl_simd_fma();
#endif
#if PL_SIMD_AARCH64
    /* AdvSIMD, fused multiply-add included, is part of every ARMv8-A CPU
     * (Linux and macOS require it): nothing to probe. */
    case PL_SIMD_NEON:
        return pl_simd_fma();
#endif
    default:
        return 0;
    }
}

int pl_simd_fma(void)
{
#if defined(PARLAB_ASSUME_NO_FMA)
    return 0; /* a test build: runs as a CPU without FMA would */
#elif defined(_MSC_VER)
    return 0; /* see simd.h: the scalar loop rounds twice, as SciPy's does */
#elif defined(FP_FAST_FMA) || defined(__ARM_FEATURE_FMA)
    /* The ACLE's macro too: clang never defines __FP_FAST_FMA, on which a C
     * library's FP_FAST_FMA may depend. */
    return 1;
#elif PL_SIMD_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("fma") != 0;
#else
    return 0;
#endif
}

pl_simd pl_simd_best(void)
{
    for (int p = PL_SIMD_COUNT - 1; p > 0; p--)
        if (pl_simd_supported((pl_simd)p))
            return (pl_simd)p;
    return PL_SIMD_SCALAR;
}

void pl_simd_select(pl_simd path)
{
    current = pl_simd_supported(path) ? path : PL_SIMD_SCALAR;
}

pl_simd pl_simd_current(void)
{
    return current;
}
