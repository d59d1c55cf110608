/* bench_blas.c: `make bench`'s choice of BLAS.  The gradient's GEMMs and a square 1024^3
 * (bench_gemm.c) under OpenBLAS, with this process's kernel and (on an AVX-512 CPU) with the
 * AVX2 one, Haswell, and under Debian's BLIS, with its own detection and with the kernel of the CPU's
 * instruction set named (BLIS_ARCH_TYPE), each as a child process with the bench's thread
 * count.  Prints a row each and which library is faster on the gradient's GEMMs; libnoether
 * links OpenBLAS (README.md, "The BLAS"). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "noether.h"

/* gradient and square GFLOP/s of `env prog`, or 0 when it did not run */
static int gemm_rates(const char *env, const char *prog, double *grad, double *square)
{
    char cmd[2 * NT_PATH_MAX];
    *grad = *square = 0;
    if (access(prog, X_OK)) return 0;
    snprintf(cmd, sizeof cmd, "env %s '%s'", env, prog);
    fflush(stdout);
    FILE *p = popen(cmd, "r");
    if (!p) return 0;
    int ok = fscanf(p, "gradient_gflops %lf square_gflops %lf", grad, square) == 2;
    pclose(p);
    return ok;
}

static double row(const char *env, const char *prog, const char *label, FILE *csv, const char *key)
{
    double g, s;
    if (!gemm_rates(env, prog, &g, &s)) {
        printf("   %-48s not built (apt-get install libblis-pthread-dev, then make bench)\n", label);
        return 0;
    }
    printf("   %-48s gradient's GEMMs %6.1f GFLOP/s, square %6.1f\n", label, g, s);
    if (csv) fprintf(csv, "%s_gradient_gemms,%.1f,GFLOP/s\n%s_square,%.1f,GFLOP/s\n", key, g, key, s);
    return g;
}

void bench_blas(const char *bin, int threads, FILE *csv)
{
    char ob[NT_PATH_MAX], bl[NT_PATH_MAX], env[256];
    snprintf(ob, sizeof ob, "%s/noether-bench-gemm", bin);
    snprintf(bl, sizeof bl, "%s/noether-bench-gemm-blis", bin);
    const int tier = nt_cpu_tier();
    const char *blis_arch = tier >= 3 ? "skx" : tier == 2 ? "haswell" : "generic";
    printf("\n   BLAS, %d threads: the GEMMs of one gradient of the bench problem and a square 1024^3\n", threads);
    nt_blas_info k;
    nt_blas_info_get(&k);
    char label[96];
    snprintf(env, sizeof env, "OPENBLAS_CORETYPE=%s OPENBLAS_NUM_THREADS=%d", k.kernel, threads);
    snprintf(label, sizeof label, "OpenBLAS 0.3.21, kernel %s (this process's)", k.kernel);
    double o1 = row(env, ob, label, csv, "openblas_here");
    double o2 = 0;
    if (tier >= 3) {
        snprintf(env, sizeof env, "OPENBLAS_CORETYPE=Haswell OPENBLAS_NUM_THREADS=%d", threads);
        o2 = row(env, ob, "OpenBLAS 0.3.21, kernel Haswell (AVX2)", csv, "openblas_haswell");
    }
    snprintf(env, sizeof env, "BLIS_NUM_THREADS=%d", threads);
    double b1 = row(env, bl, "BLIS 0.9, its own detection", csv, "blis_own");
    snprintf(env, sizeof env, "BLIS_NUM_THREADS=%d BLIS_ARCH_TYPE=%s", threads, blis_arch);
    snprintf(label, sizeof label, "BLIS 0.9, BLIS_ARCH_TYPE=%s", blis_arch);
    double b2 = row(env, bl, label, csv, "blis_named");
    const double o = o1 > o2 ? o1 : o2, b = b1 > b2 ? b1 : b2;
    if (o > 0 && b > 0)
        printf("   faster on the gradient's GEMMs: %s, %.2f x the other's best (libnoether links OpenBLAS)\n",
               o >= b ? "OpenBLAS" : "BLIS", o >= b ? o / b : b / o);
}
