/* Drives the kernels from plain C, without Python, for tests/test_c_kernels.py.
 *
 *   check_kernels paths                    -> each SIMD path and whether this CPU runs it
 *   check_kernels fma                      -> 1 if cdist fuses multiply and add here
 *   check_kernels checksum                 -> each path this CPU runs and a hash of
 *                                             its cdist bits (cdist_checksum.h)
 *   check_kernels seedkey SEED             -> the generator key for an int seed
 *   check_kernels hits PATH KEY START N CHUNK
 *                                          -> pl_count_hits on PATH, called per CHUNK samples
 *   check_kernels cpu ITERATIONS CHUNK     -> pl_cpu_work, run in chunks
 *   check_kernels counter MODE THREADS N   -> final value after THREADS threads add N each
 *   check_kernels sleep MS                 -> pl_sleep_until now + MS ms: the wall time and
 *                                             this thread's CPU time it took, in ns
 *   check_kernels together THREADS        -> every kernel at once in THREADS threads, on
 *                                             every path this CPU runs: "PATH ok" per path
 *                                             when each thread's results equal one
 *                                             thread's (exit status 1 otherwise)
 *   check_kernels cdist PATH METRIC LDA LDB LDO BI BJ THREADS < matrices
 *       -> pl_cdist_block on PATH, with row strides LDA, LDB (0: one row
 *          broadcast), LDO, called on BI x BJ blocks of the result shared out
 *          among THREADS threads. stdin: mA mB n, then the rows of A (one if
 *          LDA is 0, else mA) and of B. Strides' padding holds NaN, so reading
 *          it shows in the result; exits 3 if out's padding was written.
 *
 * Exit status 2: bad arguments (including a path this CPU lacks).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdist_checksum.h"
#include "kernels/cdist.h"
#include "kernels/counter.h"
#include "kernels/montecarlo.h"
#include "kernels/simd.h"
#include "kernels/work.h"
#include "platform.h"

/* Exit status 1, saying why: a thread could not be started. */
static int thread_failed(void)
{
    fprintf(stderr, "cannot start a thread: %s\n", strerror(errno));
    return 1;
}

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
    if (pl_counter_init(&c)) {
        fprintf(stderr, "cannot make a counter's mutex\n");
        return 1;
    }
    pl_thread tid[256];
    counter_job job = {&c, n, (pl_counter_mode)mode};
    for (int i = 0; i < threads; i++)
        if (pl_thread_start(&tid[i], add_job, &job))
            return thread_failed();
    for (int i = 0; i < threads; i++)
        pl_thread_join(tid[i]);
    printf("%" PRId64 "\n", pl_counter_get(&c));
    pl_counter_destroy(&c);
    return 0;
}

/* Reads `rows` rows of n doubles into a fresh buffer with row stride ld
 * (n when ld is 0); padding gets NaN. */
static double *read_rows(long rows, long n, long ld)
{
    const long stride = ld ? ld : n;
    double *m = malloc(sizeof(double) * (size_t)(rows * stride + 1));
    if (!m)
        return NULL;
    for (long i = 0; i < rows * stride; i++)
        m[i] = NAN;
    for (long i = 0; i < rows; i++)
        for (long k = 0; k < n; k++)
            if (scanf("%lf", &m[i * stride + k]) != 1) {
                free(m);
                return NULL;
            }
    return m;
}

typedef struct {
    const double *A, *B;
    long lda, ldb, ldo, mA, mB, n, bi, bj, first, step;
    pl_metric metric;
    double *out;
} cdist_job;

/* Blocks first, first + step, ... of the result in row-major block order. */
static void *cdist_blocks(void *arg)
{
    const cdist_job *c = arg;
    const long nbj = (c->mB + c->bj - 1) / c->bj;
    const long nblocks = (c->mA + c->bi - 1) / c->bi * nbj;
    for (long blk = c->first; blk < nblocks; blk += c->step) {
        const long i = blk / nbj * c->bi, j = blk % nbj * c->bj;
        const long mi = c->mA - i < c->bi ? c->mA - i : c->bi;
        const long mj = c->mB - j < c->bj ? c->mB - j : c->bj;
        pl_cdist_block(c->A + i * c->lda, c->lda, c->B + j * c->ldb, c->ldb, mi, mj, c->n,
                       c->metric, c->out + i * c->ldo + j, c->ldo);
    }
    return NULL;
}

static int run_cdist(char **argv)
{
    const char *metric_name = argv[0];
    const long lda = atol(argv[1]), ldb = atol(argv[2]), ldo = atol(argv[3]);
    const long bi = atol(argv[4]), bj = atol(argv[5]);
    const int threads = atoi(argv[6]);
    long mA, mB, n;
    if (scanf("%ld %ld %ld", &mA, &mB, &n) != 3 || mA < 0 || mB < 0 || n < 0)
        return 2;
    if ((lda && lda < n) || (ldb && ldb < n) || ldo < mB || bi < 1 || bj < 1 || threads < 1 ||
        threads > 64)
        return 2;
    pl_metric metric;
    if (strcmp(metric_name, "euclidean") == 0)
        metric = PL_EUCLIDEAN;
    else if (strcmp(metric_name, "sqeuclidean") == 0)
        metric = PL_SQEUCLIDEAN;
    else
        return 2;
    double *A = read_rows(lda ? mA : 1, n, lda);
    double *B = read_rows(ldb ? mB : 1, n, ldb);
    double *out = malloc(sizeof(double) * (size_t)(mA * ldo + 1));
    if (!A || !B || !out)
        return 2;
    const double sentinel = -12345.0;
    for (long i = 0; i < mA * ldo; i++)
        out[i] = sentinel;

    cdist_job jobs[64];
    pl_thread tid[64];
    for (int t = 0; t < threads; t++) {
        jobs[t] = (cdist_job){A, B, lda, ldb, ldo, mA, mB, n, bi, bj, t, threads, metric, out};
        if (pl_thread_start(&tid[t], cdist_blocks, &jobs[t]))
            return thread_failed();
    }
    for (int t = 0; t < threads; t++)
        pl_thread_join(tid[t]);

    int status = 0;
    for (long i = 0; i < mA; i++) {
        for (long j = 0; j < mB; j++)
            printf("%.17g\n", out[i * ldo + j]);
        for (long j = mB; j < ldo; j++)
            if (out[i * ldo + j] != sentinel)
                status = 3;
    }
    free(A);
    free(B);
    free(out);
    return status;
}

/* "together": each thread counts hits in its own stretch of one stream,
 * runs cpu_work, writes its own rows of one distance matrix from shared
 * inputs, adds to one shared counter per mode and sleeps, all at once. */
#define TOGETHER_ROWS 8       /* rows of the distance matrix per thread */
#define TOGETHER_COLS 13      /* rows of its shared XB */
#define TOGETHER_DIM 37       /* columns of XA and XB */
#define TOGETHER_SAMPLES 100003
#define TOGETHER_ITERATIONS 5000
#define TOGETHER_ADDS 10000

typedef struct {
    const double *A, *B;
    double *out;           /* rows [index * TOGETHER_ROWS, ...) are this thread's */
    pl_counter *counters;  /* one per mode, shared by every thread */
    int index;
    int64_t hits;
    double x;
} together_job;

static void *together_work(void *arg)
{
    together_job *j = arg;
    const long row = (long)j->index * TOGETHER_ROWS;
    j->hits = pl_count_hits(UINT64_C(0x9e3779b97f4a7c15), (uint64_t)j->index * TOGETHER_SAMPLES,
                            TOGETHER_SAMPLES);
    pl_cpu_state s = {0.0, 0};
    pl_cpu_work(&s, TOGETHER_ITERATIONS);
    j->x = s.x;
    pl_cdist_block(j->A + row * TOGETHER_DIM, TOGETHER_DIM, j->B, TOGETHER_DIM, TOGETHER_ROWS,
                   TOGETHER_COLS, TOGETHER_DIM, PL_EUCLIDEAN, j->out + row * TOGETHER_COLS,
                   TOGETHER_COLS);
    for (int mode = 0; mode < 3; mode++)
        pl_counter_add(&j->counters[mode], TOGETHER_ADDS, (pl_counter_mode)mode);
    pl_sleep_until(pl_now_ns() + 1000000);
    return NULL;
}

/* The threads' results against the same work done by the main thread alone. */
static int together_on_path(int threads, const double *A, const double *B, double *out,
                            double *alone)
{
    const long rows = (long)threads * TOGETHER_ROWS;
    pl_counter counters[3];
    for (int mode = 0; mode < 3; mode++)
        if (pl_counter_init(&counters[mode])) {
            fprintf(stderr, "cannot make a counter's mutex\n");
            return 1;
        }
    together_job jobs[64];
    pl_thread tid[64];
    for (int t = 0; t < threads; t++) {
        jobs[t] = (together_job){.A = A, .B = B, .out = out, .counters = counters, .index = t};
        if (pl_thread_start(&tid[t], together_work, &jobs[t]))
            return thread_failed();
    }
    for (int t = 0; t < threads; t++)
        pl_thread_join(tid[t]);

    int ok = 1;
    pl_cdist_block(A, TOGETHER_DIM, B, TOGETHER_DIM, rows, TOGETHER_COLS, TOGETHER_DIM,
                   PL_EUCLIDEAN, alone, TOGETHER_COLS);
    ok &= memcmp(out, alone, sizeof(double) * (size_t)(rows * TOGETHER_COLS)) == 0;
    pl_cpu_state s = {0.0, 0};
    pl_cpu_work(&s, TOGETHER_ITERATIONS);
    for (int t = 0; t < threads; t++) {
        ok &= jobs[t].hits == pl_count_hits(UINT64_C(0x9e3779b97f4a7c15),
                                            (uint64_t)t * TOGETHER_SAMPLES, TOGETHER_SAMPLES);
        ok &= jobs[t].x == s.x;
    }
    /* The racy counter loses updates, but never gains any. */
    const int64_t total = (int64_t)threads * TOGETHER_ADDS;
    const int64_t racy = pl_counter_get(&counters[PL_RACY]);
    ok &= racy >= TOGETHER_ADDS && racy <= total;
    ok &= pl_counter_get(&counters[PL_LOCKED]) == total;
    ok &= pl_counter_get(&counters[PL_ATOMIC]) == total;
    for (int mode = 0; mode < 3; mode++)
        pl_counter_destroy(&counters[mode]);
    return ok ? 0 : 1;
}

static int run_together(int threads)
{
    if (threads < 1 || threads > 64)
        return 2;
    const long rows = (long)threads * TOGETHER_ROWS;
    double *A = malloc(sizeof(double) * (size_t)(rows * TOGETHER_DIM));
    double *B = malloc(sizeof(double) * TOGETHER_COLS * TOGETHER_DIM);
    double *out = malloc(sizeof(double) * (size_t)(rows * TOGETHER_COLS));
    double *alone = malloc(sizeof(double) * (size_t)(rows * TOGETHER_COLS));
    if (!A || !B || !out || !alone)
        return 2;
    for (long i = 0; i < rows * TOGETHER_DIM; i++)
        A[i] = sin((double)i);
    for (long i = 0; i < TOGETHER_COLS * TOGETHER_DIM; i++)
        B[i] = cos((double)i);
    int status = 0;
    for (int p = 0; p < PL_SIMD_COUNT && status == 0; p++) {
        if (!pl_simd_supported((pl_simd)p))
            continue;
        /* Selected while no other thread runs, as parlab selects at import. */
        pl_simd_select((pl_simd)p);
        status = together_on_path(threads, A, B, out, alone);
        printf("%s %s\n", pl_simd_name((pl_simd)p), status ? "differs" : "ok");
    }
    free(A);
    free(B);
    free(out);
    free(alone);
    return status;
}

/* Selects the named path; -1 if unknown or not runnable here. */
static int select_path(const char *name)
{
    pl_simd path;
    if (pl_simd_from_name(name, &path) < 0 || !pl_simd_supported(path)) {
        fprintf(stderr, "SIMD path %s is unknown or not supported by this CPU\n", name);
        return -1;
    }
    pl_simd_select(path);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "seedkey") == 0) {
        printf("%" PRIu64 "\n", pl_seed_key(strtoull(argv[2], NULL, 10)));
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "paths") == 0) {
        for (int p = 0; p < PL_SIMD_COUNT; p++)
            printf("%s %d\n", pl_simd_name((pl_simd)p), pl_simd_supported((pl_simd)p));
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "fma") == 0) {
        printf("%d\n", pl_simd_fma());
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "checksum") == 0)
        return pl_print_cdist_checksums();
    if (argc == 7 && strcmp(argv[1], "hits") == 0) {
        if (select_path(argv[2]) < 0)
            return 2;
        const uint64_t key = strtoull(argv[3], NULL, 10), start = strtoull(argv[4], NULL, 10);
        const int64_t n = strtoll(argv[5], NULL, 10), chunk = strtoll(argv[6], NULL, 10);
        if (n < 0 || chunk < 1)
            return 2;
        int64_t hits = 0;
        for (int64_t done = 0; done < n; done += chunk)
            hits += pl_count_hits(key, start + (uint64_t)done, n - done < chunk ? n - done : chunk);
        printf("%" PRId64 "\n", hits);
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
    if (argc == 3 && strcmp(argv[1], "sleep") == 0) {
        const int64_t t0 = pl_now_ns(), cpu0 = pl_thread_cpu_ns();
        pl_sleep_until(t0 + strtoll(argv[2], NULL, 10) * 1000000);
        printf("%" PRId64 " %" PRId64 "\n", pl_now_ns() - t0, pl_thread_cpu_ns() - cpu0);
        return 0;
    }
    if (argc == 5 && strcmp(argv[1], "counter") == 0)
        return run_counter(argv[2], atoi(argv[3]), strtoll(argv[4], NULL, 10));
    if (argc == 3 && strcmp(argv[1], "together") == 0)
        return run_together(atoi(argv[2]));
    if (argc == 10 && strcmp(argv[1], "cdist") == 0)
        return select_path(argv[2]) < 0 ? 2 : run_cdist(argv + 3);
    fprintf(stderr, "usage: see the comment at the top of check_kernels.c\n");
    return 2;
}
