#include "work.h"

#include <math.h>

void pl_cpu_work(pl_cpu_state *s, int64_t iterations)
{
    double x = s->x;
    int64_t y = s->y;
    const int64_t end = y + iterations;
    /* pow() rather than x*x or sqrt(): Python's float ** calls pow(), so a
     * pure-Python loop gives bit-identical results to compare against. */
    for (; y < end; y++) {
        const double fy = (double)y;
        if (fmod(x, 2.0) == 0.0)
            x = pow(x - fy, 2.0);
        else
            x = pow(x + fy, 0.5);
    }
    s->x = x;
    s->y = y;
}
