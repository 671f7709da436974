/* Internal template: pl_count_hits for one instruction set, with GCC vector
 * extensions. The including file defines
 *   MC_TARGET        target attribute string
 *   MC_W             64-bit lanes per vector
 *   MC_U             vectors per step of the loop
 *   MC_TO_DOUBLE(v)  an mc_u64 vector of values below 2**53 to mc_f64, exactly
 *   MC_NAME          the function to define (a pl_count_hits_fn)
 *
 * Lane l of a vector handles sample start + l; MC_U vectors per step keep
 * that many independent dependency chains in flight. Every operation is the scalar
 * one lane-wise (integer ops wrap mod 2**64, the conversion is exact, the
 * float products and sum are separately rounded), so the count is bit-for-bit
 * the scalar loop's. */
#include "montecarlo_paths.h"

#define MC_FN static inline __attribute__((target(MC_TARGET), always_inline))

typedef uint64_t mc_u64 __attribute__((vector_size(MC_W * 8)));
typedef int64_t mc_i64 __attribute__((vector_size(MC_W * 8)));
typedef double mc_f64 __attribute__((vector_size(MC_W * 8)));

MC_FN mc_u64 mc_mix64(mc_u64 z)
{
    z = (z ^ (z >> 30)) * PL_MIX_M1;
    z = (z ^ (z >> 27)) * PL_MIX_M2;
    return z ^ (z >> 31);
}

/* Lane-wise -1 where the sample whose x output is drawn from state s hits. */
MC_FN mc_i64 mc_hit(mc_u64 s)
{
    const mc_f64 x = MC_TO_DOUBLE(mc_mix64(s) >> 11) * PL_TWO_POW_M53;
    const mc_f64 y = MC_TO_DOUBLE(mc_mix64(s + PL_GAMMA) >> 11) * PL_TWO_POW_M53;
    return (mc_i64)(x * x + y * y <= 1.0);
}

__attribute__((target(MC_TARGET)))
int64_t MC_NAME(uint64_t key, uint64_t start, int64_t n)
{
    mc_u64 s;
    for (int l = 0; l < MC_W; l++)
        s[l] = key + (2 * (start + (uint64_t)l) + 1) * PL_GAMMA;
    const uint64_t vector_step = 2 * MC_W * PL_GAMMA;
    mc_i64 acc = {0};
    int64_t i = 0;
    for (; i + MC_U * MC_W <= n; i += MC_U * MC_W) {
#pragma GCC unroll 8
        for (int u = 0; u < MC_U; u++)
            acc += mc_hit(s + u * vector_step);
        s += MC_U * vector_step;
    }
    int64_t hits = 0;
    for (int l = 0; l < MC_W; l++)
        hits -= acc[l];
    return hits + pl_count_hits_scalar(key, start + (uint64_t)i, n - i);
}
