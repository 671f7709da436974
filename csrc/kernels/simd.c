#include "simd.h"

#include <string.h>

#define PL_SIMD_NAME(id, name) name,
static const char *const names[] = {PL_SIMD_PATHS(PL_SIMD_NAME)};
static pl_simd current = PL_SIMD_SCALAR;

const char *pl_simd_name(pl_simd path) { return names[path]; }
int pl_simd_from_name(const char *name, pl_simd *out)
{
    for (int i = 0; i < PL_SIMD_N; i++)
        if (strcmp(name, names[i]) == 0) {
            *out = (pl_simd)i;
            return 0;
        }
    return -1;
}
int pl_simd_supported(pl_simd path) { return path == PL_SIMD_SCALAR; }
pl_simd pl_simd_best(void) { return PL_SIMD_SCALAR; }
void pl_simd_select(pl_simd path) { current = path; }
pl_simd pl_simd_current(void) { return current; }
