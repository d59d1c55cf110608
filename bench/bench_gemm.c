/* bench_gemm.c: `make bench`'s BLAS comparison.  Built twice from this one source, against
 * OpenBLAS (noether-bench-gemm) and against Debian's BLIS (noether-bench-gemm-blis, when
 * libblis-pthread-dev is installed), through the same CBLAS calls: the GEMMs of one gradient
 * of the bench problem (MLP 784-256-256-10 on 512 samples, each with the transposes the
 * engine uses) and a square 1024^3.  Prints one line, `key value` pairs, for bench.c:
 *   gradient_gflops  the gradient's 0.62 GFLOP over the sum of its GEMMs' fastest times
 *   square_gflops    the square's fastest
 * Threads as the library's environment sets them (OPENBLAS_NUM_THREADS, BLIS_NUM_THREADS). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <cblas.h>

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

typedef struct { int ta, tb, M, N, K; } shape;

/* fastest of reps calls of C = op(A) op(B) + C, ms */
static double fastest(const shape *s, const double *A, const double *B, double *C, int reps)
{
    const int lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N;
    double best = 1e300;
    for (int r = -1; r < reps; r++) {   /* r = -1: warm-up */
        double t0 = now_ms();
        cblas_dgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans, s->tb ? CblasTrans : CblasNoTrans, s->M, s->N,
                    s->K, 1.0, A, lda, B, ldb, 1.0, C, s->N);
        double dt = now_ms() - t0;
        if (r >= 0 && dt < best) best = dt;
    }
    return best;
}

int main(void)
{
    /* forward h W^T (3 layers), W_bar = z_bar^T h (3), h_bar = z_bar W (2: not the data's) */
    const shape grad[] = { {0, 1, 512, 256, 784}, {0, 1, 512, 256, 256}, {0, 1, 512, 10, 256},
                           {1, 0, 256, 784, 512}, {1, 0, 256, 256, 512}, {1, 0, 10, 256, 512},
                           {0, 0, 512, 256, 256}, {0, 0, 512, 256, 10} };
    const shape square = {0, 0, 1024, 1024, 1024};
    const size_t cap = 1024 * 1024;
    double *A = malloc(sizeof(double) * cap), *B = malloc(sizeof(double) * cap), *C = malloc(sizeof(double) * cap);
    if (!A || !B || !C) return 1;
    for (size_t i = 0; i < cap; i++) { A[i] = (double)(i % 7) * 0.1; B[i] = (double)(i % 5) * 0.2; C[i] = 0; }
    double ms = 0, flops = 0;
    for (size_t i = 0; i < sizeof grad / sizeof *grad; i++) {
        ms += fastest(&grad[i], A, B, C, 30);
        flops += 2.0 * grad[i].M * grad[i].N * grad[i].K;
    }
    const double sq = fastest(&square, A, B, C, 10);
    printf("gradient_gflops %.1f square_gflops %.1f\n", flops / (ms * 1e6), 2.0 * 1024 * 1024 * 1024 / (sq * 1e6));
    free(A); free(B); free(C);
    return 0;
}
