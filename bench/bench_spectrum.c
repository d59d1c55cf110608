/* bench_spectrum.c: the eigensolvers of the spectrum side by side on one operator, both ends:
 * ARPACK (nt_eigen_lanczos, one product per request) and the thick-restart block Lanczos
 * (nt_eigen_block_lanczos) with blocks of 1 and 2 products (4 and 16 need 2-8 x the
 * products: README.md).  Each row: the products
 * (deterministic for a thread count), the best wall time of `reps` runs (b >= 4: one; the
 * machine is shared: times are noisy, counts are not) and the largest difference of the eigenvalues from ARPACK's,
 * relative to the largest in magnitude.  Used by bench.c on the bench problem and on the
 * demo's model. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "noether.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

enum { N_METHODS = 3 };
static const int method_block[N_METHODS] = {0, 1, 2};   /* 0: ARPACK (blocks of 4 and 16: README) */

/* One (method, end): the values, products and the best time of reps runs; 1 on failure.
 * block 0: ARPACK (nt_eigen_arpack). */
static int run_method(const nt_operator *op, int block, int K, int largest, int reps, double *vals, int *products,
                      double *secs)
{
    nt_error err = {0};
    *secs = INFINITY;
    for (int r = 0; r < reps; r++) {
        const double t0 = now_s();
        nt_block_lanczos_opts o = { .block = block };
        int rc = block ? nt_eigen_block_lanczos(op, K, largest, 0, &o, vals, NULL, products, &err)
                       : nt_eigen_arpack(op, K, largest, 0, vals, NULL, products, &err);
        if (rc) { fprintf(stderr, "noether-bench: %s\n", err.msg); return 1; }
        *secs = fmin(*secs, now_s() - t0);
    }
    return 0;
}

int bench_spectrum_methods(const char *label, const char *key, const nt_operator *op, int K, int reps, FILE *csv,
                           double arpack_vals[2][16], int arpack_products[2], double arpack_secs[2])
{
    double *vals = malloc(sizeof(double) * (size_t)K), *ref = malloc(sizeof(double) * (size_t)K);
    int rc = 0;
    printf("\n   %s: eigensolvers, top-%d and bottom-%d (n = %lld, products in blocks of up to %d)\n", label, K, K,
           (long long)op->n, op->block);
    for (int end = 0; end < 2 && !rc; end++) {
        const char *name = end == 0 ? "top" : "bottom";
        int p_arpack = 0;
        double t_arpack = 0;
        for (int m = 0; m < N_METHODS && !rc; m++) {
            int products = 0;
            double secs = 0;
            const int r = method_block[m] >= 4 ? 1 : reps;   /* the slow ones once */
            if ((rc = run_method(op, method_block[m], K, end == 0, r, m ? vals : ref, &products, &secs))) break;
            double worst = 0, scale = 0;
            for (int i = 0; i < K; i++) scale = fmax(scale, fabs(ref[i]));
            for (int i = 0; m && i < K; i++) worst = fmax(worst, fabs(vals[i] - ref[i]) / scale);
            char method[32];
            if (m == 0) {
                p_arpack = products;
                t_arpack = secs;
                if (arpack_vals) memcpy(arpack_vals[end], ref, sizeof(double) * (size_t)(K < 16 ? K : 16));
                if (arpack_products) arpack_products[end] = products;
                if (arpack_secs) arpack_secs[end] = secs;
                snprintf(method, sizeof method, "arpack");
                printf("   %-6s ARPACK            %5d products %7.2f s\n", name, products, secs);
            } else {
                snprintf(method, sizeof method, "block%d", method_block[m]);
                printf("   %-6s block Lanczos b=%-2d %5d products %7.2f s   %.2f x ARPACK's products, %.2f x its time; "
                       "values agree to %.1e\n", name, method_block[m], products, secs, (double)products / p_arpack,
                       secs / t_arpack, worst);
            }
            if (csv) {
                fprintf(csv, "spectrum_%s_%s_%s_hvps,%d,count\n", key, name, method, products);
                fprintf(csv, "spectrum_%s_%s_%s_seconds,%.6g,s\n", key, name, method, secs);
                if (m) fprintf(csv, "spectrum_%s_%s_%s_rel_diff,%.3g,rel\n", key, name, method, worst);
            }
        }
    }
    free(vals); free(ref);
    return rc;
}

/* The demo's model (the built-in default spec) at its seeded initialization. */
int bench_spectrum_demo(FILE *csv)
{
    nt_spec spec;
    nt_data data;
    nt_error err = {0};
    if (nt_spec_parse(nt_default_spec_json(), "<built-in default>", &spec, &err) || nt_data_load(&spec, &data, &err)) {
        fprintf(stderr, "noether-bench: %s\n", err.msg);
        return 1;
    }
    const nt_model *m = &spec.model;
    double *theta = malloc(sizeof(double) * (size_t)m->d);
    nt_init_params(m, &spec.init, theta);
    nt_engine *e = nt_engine_new(m, data.train.n < NT_ENGINE_CHUNK ? data.train.n : NT_ENGINE_CHUNK, 16);
    nt_hessian_ctx hc;
    nt_operator op;
    int rc = 1;
    if (e && nt_hessian_operator(&hc, &op, e, m, &data.train, theta, 0, m->d, NULL, 0, &err) == NT_OK) {
        rc = bench_spectrum_methods("the demo's model (built-in default, seeded theta)", "demo", &op, 10, 5, csv,
                                    NULL, NULL, NULL);
        nt_hessian_operator_free(&hc);
    } else {
        fprintf(stderr, "noether-bench: %s\n", e ? err.msg : "cannot allocate the engine");
    }
    nt_engine_free(e);
    free(theta);
    nt_data_free(&data);
    nt_spec_free(&spec);
    return rc;
}
