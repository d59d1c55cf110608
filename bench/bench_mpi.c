/* bench_mpi.c: strong scaling of the block Hessian-vector product under MPI, for `make bench`
 * (run under mpirun -np 1, 2, ...; docs/theory.md §8 turns its numbers into a prediction for
 * a cluster).  Each rank holds its shard of SAMPLES rows of SPEC's data (nt_data_load_shard),
 * the engine reduces with one allreduce of 1 + k d doubles per block (nt_parallel_reduce):
 * printed, as one CSV row from rank 0, the seconds per block product and, timed apart on the
 * same buffer, the seconds of that allreduce alone, so that compute = product - allreduce.
 *     noether-bench-mpi SPEC SAMPLES K REPS [CSV]   (CSV: the row appended there too) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "noether.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void die(const nt_error *err)
{
    fprintf(stderr, "noether-bench-mpi: %s\n", err->msg);
    exit(nt_parallel_fail((nt_error *)err, 5.0));
}

int main(int argc, char **argv)
{
    nt_error err = {0};
    if (argc < 5) {
        fprintf(stderr, "usage: noether-bench-mpi SPEC SAMPLES K REPS [CSV]\n");
        return 2;
    }
    if (nt_parallel_init(&argc, &argv, &err)) die(&err);
    const int k = atoi(argv[3]), reps = atoi(argv[4]), P = nt_parallel_size(), rank = nt_parallel_rank();
    nt_spec spec;
    nt_data data;
    if (nt_spec_load(argv[1], &spec, &err)) die(&err);
    spec.data.limit = atoll(argv[2]);
    spec.data.test_images[0] = spec.data.test_labels[0] = 0;   /* the training rows only */
    if (nt_data_load_shard(&spec, rank, P, &data, &err)) die(&err);
    const int64_t d = spec.model.d, n = data.train.n, N = data.shard_total ? data.shard_total : n;
    nt_engine *e = nt_engine_new(&spec.model, n < NT_ENGINE_CHUNK ? n : NT_ENGINE_CHUNK, k);
    double *theta = malloc(sizeof(double) * (size_t)d), *V = malloc(sizeof(double) * (size_t)(k * d));
    double *HV = malloc(sizeof(double) * (size_t)(k * d)), *buf = malloc(sizeof(double) * (size_t)(1 + k * d));
    if (!e || !theta || !V || !HV || !buf) {
        nt_fail(&err, NT_EFAIL, "out of memory (d = %lld, k = %d)", (long long)d, k);
        die(&err);
    }
    if (P > 1 && nt_engine_set_reduce(e, nt_parallel_reduce, NULL, &err)) die(&err);
    nt_init_params(&spec.model, &spec.init, theta);
    for (int64_t i = 0; i < k * d; i++) V[i] = nt_rand_normal(5, 0, (uint64_t)i);
    if (nt_hvp(e, theta, &data.train, k, V, HV, NULL, NULL, &err)) die(&err);   /* warm-up */
    double t0 = now();
    for (int r = 0; r < reps; r++)
        if (nt_hvp(e, theta, &data.train, k, V, HV, NULL, NULL, &err)) die(&err);
    const double product = (now() - t0) / reps;
    /* the allreduce alone, on a buffer of the size the engine hands it */
    double allreduce = 0;
    if (P > 1) {
        for (int64_t i = 0; i < 1 + k * d; i++) buf[i] = 1.0;
        int64_t cnt = n;
        if (nt_parallel_reduce(NULL, buf, 1 + k * d, &cnt, &err)) die(&err);
        t0 = now();
        for (int r = 0; r < reps; r++)
            if (nt_parallel_reduce(NULL, buf, 1 + k * d, &cnt, &err)) die(&err);
        allreduce = (now() - t0) / reps;
    }
    if (rank == 0) {
        char row[256];
        snprintf(row, sizeof row, "%d,%lld,%lld,%lld,%d,%.6f,%.6f,%.6f,%.3f\n", P, (long long)N, (long long)n,
                 (long long)d, k, product, allreduce, product - allreduce, 8.0 * (double)(1 + k * d) / 1e6);
        fputs(row, stdout);
        FILE *f = argc > 5 ? fopen(argv[5], "a") : NULL;
        if (f) { fputs(row, f); fclose(f); }
    }
    free(theta); free(V); free(HV); free(buf);
    nt_engine_free(e);
    nt_data_free(&data);
    nt_spec_free(&spec);
    nt_parallel_finalize();
    return 0;
}
