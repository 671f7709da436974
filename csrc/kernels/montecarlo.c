#include "montecarlo.h"

#include "montecarlo_paths.h"

#define GAMMA PL_GAMMA

static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * PL_MIX_M1;
    z = (z ^ (z >> 27)) * PL_MIX_M2;
    return z ^ (z >> 31);
}

static inline double unit_double(uint64_t bits)
{
    return (double)(bits >> 11) * PL_TWO_POW_M53;
}

int64_t pl_count_hits_scalar(uint64_t key, uint64_t start, int64_t n)
{
    int64_t hits = 0;
    /* Unsigned arithmetic wraps mod 2**64, exactly as the stream is defined. */
    uint64_t state = key + (2 * start + 1) * GAMMA;
    for (int64_t i = 0; i < n; i++) {
        const double x = unit_double(mix64(state));
        const double y = unit_double(mix64(state + GAMMA));
        state += 2 * GAMMA;
        hits += (x * x + y * y <= 1.0);
    }
    return hits;
}

static pl_count_hits_fn *const paths[PL_SIMD_COUNT] = {
    [PL_SIMD_SCALAR] = pl_count_hits_scalar,
#if PL_SIMD_X86
    [PL_SIMD_AVX2] = pl_count_hits_avx2,
    [PL_SIMD_AVX512] = pl_count_hits_avx512,
#endif
#if PL_SIMD_AARCH64
    /* NEON has no 64-bit lane multiply, and mix64 takes four per sample: a
     * vector version would move every lane to a general register and back,
     * more work than this loop (two independent samples' chains per step of
     * its own, on aarch64's shifted-operand eor and 64-bit mul). */
    [PL_SIMD_NEON] = pl_count_hits_scalar,
#endif
};

int64_t pl_count_hits(uint64_t key, uint64_t start, int64_t n)
{
    return paths[pl_simd_current()](key, start, n);
}

/* SeedSequence (O'Neill's seed_seq variant as NumPy implements it), pool of 4
 * 32-bit words, no spawn key. */
#define POOL_SIZE 4
#define INIT_A UINT32_C(0x43b0d7e5)
#define MULT_A UINT32_C(0x931e8875)
#define INIT_B UINT32_C(0x8b51f9dd)
#define MULT_B UINT32_C(0x58f38ded)
#define MIX_MULT_L UINT32_C(0xca01f9dd)
#define MIX_MULT_R UINT32_C(0x4973f715)
#define XSHIFT 16

static inline uint32_t hashmix(uint32_t value, uint32_t *hash_const)
{
    value ^= *hash_const;
    *hash_const *= MULT_A;
    value *= *hash_const;
    return value ^ (value >> XSHIFT);
}

static inline uint32_t mix(uint32_t x, uint32_t y)
{
    uint32_t r = MIX_MULT_L * x - MIX_MULT_R * y;
    return r ^ (r >> XSHIFT);
}

uint64_t pl_seed_key(uint64_t seed)
{
    /* NumPy turns an int into little-endian 32-bit words, as few as needed
     * (one word for 0). */
    uint32_t entropy[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    const int n_entropy = (seed >> 32) ? 2 : 1;
    uint32_t pool[POOL_SIZE];
    uint32_t hash_const = INIT_A;

    for (int i = 0; i < POOL_SIZE; i++)
        pool[i] = hashmix(i < n_entropy ? entropy[i] : 0, &hash_const);
    for (int src = 0; src < POOL_SIZE; src++)
        for (int dst = 0; dst < POOL_SIZE; dst++)
            if (src != dst)
                pool[dst] = mix(pool[dst], hashmix(pool[src], &hash_const));

    /* generate_state(1, uint64) draws two 32-bit words, low word first. */
    uint32_t out[2];
    uint32_t hc = INIT_B;
    for (int i = 0; i < 2; i++) {
        uint32_t v = pool[i % POOL_SIZE];
        v ^= hc;
        hc *= MULT_B;
        v *= hc;
        out[i] = v ^ (v >> XSHIFT);
    }
    return (uint64_t)out[0] | ((uint64_t)out[1] << 32);
}
