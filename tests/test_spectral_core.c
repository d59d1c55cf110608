/* test_spectral_core.c: the spectral routines on operators with known spectra: the dense
 * path, ARPACK's Lanczos at both ends, stochastic Lanczos quadrature (its weights and its
 * first two moments) and Hutchinson's trace. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include <cblas.h>
#include <lapacke.h>
#include "helpers.h"
#include "../src/spectrum/spectrum.h"

/* an explicit symmetric matrix as an operator */
typedef struct { int64_t n; double *A; } matrix;

static void matrix_apply(void *ctx, int k, const double *X, double *Y)
{
    const matrix *M = ctx;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, k, (int)M->n, (int)M->n, 1.0, X, (int)M->n, M->A,
                (int)M->n, 0.0, Y, (int)M->n);
}

/* Q diag(lam) Q^T with a random orthogonal Q (QR of a Gaussian matrix) */
static matrix with_spectrum(int64_t n, const double *lam, uint64_t seed)
{
    matrix M = { n, malloc(sizeof(double) * n * n) };
    double *Q = malloc(sizeof(double) * n * n), *tau = malloc(sizeof(double) * n), *QL = malloc(sizeof(double) * n * n);
    fill_normal(Q, n * n, 1.0, seed);
    LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, (int)n, (int)n, Q, (int)n, tau);
    LAPACKE_dorgqr(LAPACK_ROW_MAJOR, (int)n, (int)n, (int)n, Q, (int)n, tau);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) QL[i * n + j] = Q[i * n + j] * lam[j];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)n, (int)n, 1.0, QL, (int)n, Q, (int)n, 0.0, M.A, (int)n);
    for (int64_t i = 0; i < n; i++)   /* exactly symmetric */
        for (int64_t j = 0; j < i; j++) M.A[i * n + j] = M.A[j * n + i];
    free(Q); free(tau); free(QL);
    return M;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* an indefinite spectrum with outliers at both ends and a repeated value */
static void spectrum_300(double *lam)
{
    for (int i = 0; i < 300; i++) lam[i] = -2 + 4.0 * ((i * 7) % 300) / 300;   /* evenly spread, shuffled */
    lam[0] = 25; lam[1] = 19; lam[2] = 14; lam[3] = -12; lam[4] = -9; lam[5] = lam[6] = 0.5;
}

Test(spectral_core, dense_and_lanczos_both_ends)
{
    const int64_t n = 300;
    double lam[300], sorted[300];
    spectrum_300(lam);
    memcpy(sorted, lam, sizeof lam);
    qsort(sorted, n, sizeof(double), cmp);
    matrix M = with_spectrum(n, lam, 1);
    nt_operator op = { n, 16, matrix_apply, &M };
    double all[300], *U = malloc(sizeof(double) * n * n);
    nt_error err;
    cr_assert_eq(nt_eigen_dense(&op, all, U, &err), NT_OK);
    for (int i = 0; i < n; i++) cr_expect_leq(fabs(all[i] - sorted[i]), 1e-12 * 25, "dense %d: %.15g vs %.15g", i, all[i], sorted[i]);
    double top[10], bottom[10], *Ut = malloc(sizeof(double) * 10 * n);
    int products = 0;
    cr_assert_eq(nt_eigen_lanczos(&op, 10, 1, 0, top, Ut, &products, &err), NT_OK, "%s", err.msg);
    cr_expect_gt(products, 0);
    cr_assert_eq(nt_eigen_lanczos(&op, 10, 0, 0, bottom, NULL, NULL, &err), NT_OK, "%s", err.msg);
    for (int i = 0; i < 10; i++) {
        cr_expect_leq(fabs(top[i] - sorted[n - 1 - i]), 1e-8 * 25, "top %d: %.15g vs %.15g", i, top[i], sorted[n - 1 - i]);
        cr_expect_leq(fabs(bottom[i] - sorted[i]), 1e-8 * 25, "bottom %d: %.15g vs %.15g", i, bottom[i], sorted[i]);
    }
    for (int i = 0; i < 3; i++) {   /* the well separated top vectors: the same as dense's */
        double c = fabs(cblas_ddot((int)n, Ut + i * n, 1, U + (n - 1 - i) * n, 1));
        cr_expect_geq(c, 1 - 1e-8, "top vector %d: |<u, u_dense>| = %.15g", i, c);
    }
    cr_log_info("Lanczos: 10 largest in %d products", products);
    free(U); free(Ut); free(M.A);
}

/* SLQ: weights sum to one; its first two moments are exactly the Hutchinson estimates from
 * the same probes and close to tr(A)/n, tr(A^2)/n; a shifted density fails the check. */
Test(spectral_core, slq_moments)
{
    const int64_t n = 300;
    const int P = 20, S = 40;
    double lam[300];
    spectrum_300(lam);
    matrix M = with_spectrum(n, lam, 2);
    nt_operator op = { n, 1, matrix_apply, &M };
    double *x = malloc(sizeof(double) * P * S), *w = malloc(sizeof(double) * P * S);
    nt_error err;
    cr_assert_eq(nt_slq(&op, P, S, 5, x, w, &err), NT_OK, "%s", err.msg);
    double ws = 0, m1 = 0, m2 = 0, t1 = 0, t2 = 0;
    for (int i = 0; i < P * S; i++) { ws += w[i]; m1 += w[i] * x[i]; m2 += w[i] * x[i] * x[i]; }
    for (int i = 0; i < n; i++) { t1 += lam[i] / n; t2 += lam[i] * lam[i] / n; }
    cr_expect_leq(fabs(ws - 1), 1e-12, "weights sum to %.17g", ws);
    /* the same probes through Hutchinson: v^T A v / n and |A v|^2 / n */
    double h1 = 0, h2 = 0, *v = malloc(sizeof(double) * n), *Av = malloc(sizeof(double) * n);
    for (int p = 0; p < P; p++) {
        for (int64_t i = 0; i < n; i++) v[i] = (nt_rand_u64(5, (uint64_t)p, (uint64_t)i) & 1) ? 1.0 : -1.0;
        matrix_apply(&M, 1, v, Av);
        h1 += cblas_ddot((int)n, v, 1, Av, 1) / n / P;
        h2 += cblas_ddot((int)n, Av, 1, Av, 1) / n / P;
    }
    cr_expect_leq(fabs(m1 - h1), 1e-10 * fabs(h1), "first moment %.15g, Hutchinson %.15g", m1, h1);
    cr_expect_leq(fabs(m2 - h2), 1e-10 * h2, "second moment %.15g, Hutchinson %.15g", m2, h2);
    cr_expect_leq(fabs(m1 - t1), 0.25 * sqrt(t2), "first moment %.4g, tr(A)/n %.4g", m1, t1);
    cr_expect_leq(fabs(m2 - t2), 0.25 * t2, "second moment %.4g, tr(A^2)/n %.4g", m2, t2);
    double shifted = 0;   /* control: a density moved by 1 misses the first moment */
    for (int i = 0; i < P * S; i++) shifted += w[i] * (x[i] + 1);
    cr_expect_gt(fabs(shifted - h1), 0.5);
    /* the smoothed density integrates to one */
    const int G = 4001;
    double *grid = malloc(sizeof(double) * G), *rho = malloc(sizeof(double) * G), integral = 0;
    for (int i = 0; i < G; i++) grid[i] = -40 + 80.0 * i / (G - 1);
    nt_density_grid(x, w, P * S, 0.3, grid, G, rho);
    for (int i = 1; i < G; i++) integral += 0.5 * (rho[i] + rho[i - 1]) * (grid[i] - grid[i - 1]);
    cr_expect_leq(fabs(integral - 1), 1e-6, "integral %.12g", integral);
    free(x); free(w); free(v); free(Av); free(grid); free(rho); free(M.A);
}

/* Hutchinson: exact for a diagonal matrix with Rademacher probes (v^T D v = tr D); within a
 * few standard errors otherwise. */
Test(spectral_core, hutchinson)
{
    const int64_t n = 200;
    matrix D = { n, calloc((size_t)(n * n), sizeof(double)) };
    double tr = 0;
    for (int64_t i = 0; i < n; i++) { D.A[i * n + i] = i % 7 - 2.5; tr += D.A[i * n + i]; }
    nt_operator op = { n, 8, matrix_apply, &D };
    double se, est = nt_hutchinson(&op, 30, 3, &se);
    cr_expect_leq(fabs(est - tr), 1e-12 * fabs(tr) + 1e-12, "diagonal: %.15g vs %.15g", est, tr);
    cr_expect_leq(se, 1e-12);
    double lam[300];
    spectrum_300(lam);
    matrix M = with_spectrum(300, lam, 3);
    nt_operator op2 = { 300, 8, matrix_apply, &M };
    double t = 0;
    for (int i = 0; i < 300; i++) t += lam[i];
    est = nt_hutchinson(&op2, 200, 4, &se);
    cr_expect_gt(se, 0);
    cr_expect_leq(fabs(est - t), 4 * se, "estimate %.6g, trace %.6g, standard error %.3g", est, t, se);
    free(D.A); free(M.A);
}
