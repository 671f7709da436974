/* Drives the kernels from plain C, without Python, for tests/test_c_kernels.py.
 *
 *   check_kernels seedkey SEED             -> the generator key for an int seed
 *   check_kernels hits KEY START N         -> pl_count_hits
 *   check_kernels cpu ITERATIONS CHUNK     -> pl_cpu_work, run in chunks
 *   check_kernels counter MODE THREADS N   -> final value after THREADS pthreads add N each
 *   check_kernels cdist METRIC < matrices  -> stdin: mA mB n, XA, XB; prints the result
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cdist.h"
#include "kernels/counter.h"
#include "kernels/montecarlo.h"
#include "kernels/work.h"

typedef struct {
    pl_counter *c;
    int64_t n;
    pl_counter_mode mode;
} counter_job;

static void *add_job(void *arg)
{
    counter_job *job = arg;
    pl_counter_add(job->c, job->n, job->mode);
    return NULL;
}

static int run_counter(const char *mode_name, int threads, int64_t n)
{
    const char *modes[] = {"racy", "locked", "atomic"};
    int mode = -1;
    for (int i = 0; i < 3; i++)
        if (strcmp(mode_name, modes[i]) == 0)
            mode = i;
    if (mode < 0 || threads < 1 || threads > 256)
        return 2;
    pl_counter c;
    if (pl_counter_init(&c, 0))
        return 1;
    pthread_t tid[256];
    counter_job job = {&c, n, (pl_counter_mode)mode};
    for (int i = 0; i < threads; i++)
        pthread_create(&tid[i], NULL, add_job, &job);
    for (int i = 0; i < threads; i++)
        pthread_join(tid[i], NULL);
    printf("%" PRId64 "\n", pl_counter_get(&c));
    pl_counter_destroy(&c);
    return 0;
}

static int run_cdist(const char *metric_name)
{
    long mA, mB, n;
    if (scanf("%ld %ld %ld", &mA, &mB, &n) != 3 || mA < 0 || mB < 0 || n < 0)
        return 2;
    double *XA = malloc(sizeof(double) * (size_t)(mA * n + 1));
    double *XB = malloc(sizeof(double) * (size_t)(mB * n + 1));
    double *out = malloc(sizeof(double) * (size_t)(mA * mB + 1));
    for (long i = 0; i < mA * n; i++)
        if (scanf("%lf", &XA[i]) != 1)
            return 2;
    for (long i = 0; i < mB * n; i++)
        if (scanf("%lf", &XB[i]) != 1)
            return 2;
    pl_metric metric = strcmp(metric_name, "sqeuclidean") == 0 ? PL_SQEUCLIDEAN : PL_EUCLIDEAN;
    pl_cdist_block(XA, n, XB, n, mA, mB, n, metric, out, mB);
    for (long i = 0; i < mA * mB; i++)
        printf("%.17g\n", out[i]);
    free(XA);
    free(XB);
    free(out);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "seedkey") == 0) {
        printf("%" PRIu64 "\n", pl_seed_key(strtoull(argv[2], NULL, 10)));
        return 0;
    }
    if (argc == 5 && strcmp(argv[1], "hits") == 0) {
        printf("%" PRId64 "\n", pl_count_hits(strtoull(argv[2], NULL, 10),
                                               strtoull(argv[3], NULL, 10),
                                               strtoll(argv[4], NULL, 10)));
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "cpu") == 0) {
        const int64_t total = strtoll(argv[2], NULL, 10), chunk = strtoll(argv[3], NULL, 10);
        pl_cpu_state s = {0.0, 0};
        while (s.y < total)
            pl_cpu_work(&s, total - s.y < chunk ? total - s.y : chunk);
        printf("%.17g\n", s.x);
        return 0;
    }
    if (argc == 5 && strcmp(argv[1], "counter") == 0)
        return run_counter(argv[2], atoi(argv[3]), strtoll(argv[4], NULL, 10));
    if (argc == 3 && strcmp(argv[1], "cdist") == 0)
        return run_cdist(argv[2]);
    fprintf(stderr, "usage: see the comment at the top of check_kernels.c\n");
    return 2;
}
