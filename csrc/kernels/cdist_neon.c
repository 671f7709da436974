/* The NEON (AdvSIMD) cdist path for aarch64: two doubles per vector, and
 * fused multiply-add (FMLA) in every ARMv8-A CPU. */
#include "simd.h"

#if PL_SIMD_AARCH64
#include <arm_neon.h>

#define CD_W 2
#define CD_LANES(F, b) F(0, b), F(1, b)
#define CD_MR PL_CDIST_NEON_ROWS
#define CD_NV (PL_CDIST_NEON_COLS / CD_W)
#define CD_SPLAT(p) ((cd_vec)vld1q_dup_f64(p))
#define CD_SQRT(v) ((cd_vec)vsqrtq_f64((float64x2_t)(v)))
#define CD_FMA(d, s) ((cd_vec)vfmaq_f64((float64x2_t)(s), (float64x2_t)(d), (float64x2_t)(d)))
#define CD_NAME pl_cdist_block_neon
#include "cdist_simd.h"
#else
typedef int pl_cdist_neon_unused; /* ISO C wants a non-empty file */
#endif
