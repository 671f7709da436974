/* Which SIMD instruction set the kernels use, chosen at run time.
 *
 * One build runs everywhere: the AVX2 and AVX-512 kernels are compiled with
 * per-function target attributes (never -march), the NEON kernels with
 * aarch64's baseline, and each public kernel calls the implementation of the
 * path selected here. */
#ifndef PARLAB_SIMD_H
#define PARLAB_SIMD_H

/* X(enumerator, name): the single list the enum and the name table come from,
 * in increasing order of preference (no CPU runs both x86 and ARM paths). */
#define PL_SIMD_PATHS(X)              \
    X(PL_SIMD_SCALAR, "scalar")       \
    X(PL_SIMD_AVX2, "avx2")           \
    X(PL_SIMD_AVX512, "avx512")       \
    X(PL_SIMD_NEON, "neon")

#define PL_SIMD_ENUMERATOR(id, name) id,
typedef enum { PL_SIMD_PATHS(PL_SIMD_ENUMERATOR) PL_SIMD_COUNT } pl_simd;
#undef PL_SIMD_ENUMERATOR

/* The SIMD kernels are written with GCC vector extensions, which gcc, clang
 * and MinGW's gcc have (all define __GNUC__) and MSVC and clang-cl lack: an
 * MSVC build has the scalar path only, on x86-64 and ARM64 alike. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define PL_SIMD_X86 1
#else
#define PL_SIMD_X86 0
#endif
#if defined(__GNUC__) && defined(__aarch64__)
#define PL_SIMD_AARCH64 1
#else
#define PL_SIMD_AARCH64 0
#endif

/* "scalar", "avx2", "avx512" or "neon"; NULL for a value outside the enum. */
const char *pl_simd_name(pl_simd path);

/* 0 and *out set for a known name (exact, lower case), -1 otherwise. */
int pl_simd_from_name(const char *name, pl_simd *out);

/* 1 if this CPU (and OS) can run the path: avx2 needs AVX2 and FMA, avx512
 * needs AVX-512F, AVX-512DQ and FMA, neon an aarch64 CPU (all have it). */
int pl_simd_supported(pl_simd path);

/* 1 if this CPU fuses a multiply and an add in one instruction (x86 FMA, or
 * a build target where fma() is one instruction, as on every aarch64),
 * whatever path is selected; 0 in MSVC builds, which have no way to compile
 * the fused x86 scalar loop for FMA CPUs only. Compiled with
 * -DPARLAB_ASSUME_NO_FMA it says 0, so a test can run the code a CPU without
 * FMA runs. */
int pl_simd_fma(void);

/* The most preferred supported path. */
pl_simd pl_simd_best(void);

/* Process-wide choice: call once (at import) before any thread runs a kernel.
 * A path this CPU cannot run selects PL_SIMD_SCALAR instead, so a wrong call
 * never ends in an illegal instruction; check pl_simd_supported first to
 * report it. Until the first call the kernels use PL_SIMD_SCALAR. */
void pl_simd_select(pl_simd path);

pl_simd pl_simd_current(void);

#endif
