/* test_spectrum.c: the spectral core (include/noether.h) on operators whose spectra are
 * known: a diagonal matrix (eigenvalues given, negative and repeated ones included), an
 * explicit random symmetric matrix (LAPACK's dsyev on the same matrix is the reference) and
 * the Hessian of a small MLP (the explicit matrix of nt_hessian is the reference).
 *   dense:      the known values, dsyev's, the symmetrization of a non-symmetric product;
 *   Lanczos:    both ends against dense, values and vectors, indefinite spectra, the dense
 *               fallback for nev >= n - 1 and invalid nev;
 *   SLQ:        weights sum to 1; the first two moments are the Hutchinson estimates of
 *               tr(A)/n and tr(A^2)/n from the same probes (exactly) and within statistical
 *               error of the true values; a shifted density fails the same checks; on a
 *               matrix with few distinct eigenvalues the quadrature is the exact density;
 *   density:    the smoothed density integrates to 1;
 *   Hutchinson: exact on a diagonal matrix, within 4 standard errors on the random one. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include <cblas.h>
#include <lapacke.h>
#include "helpers.h"

#define N 300

/* ---------------------------------------------------------------- operators */

typedef struct { int64_t n; const double *A; } dense_op;     /* Y = X A^T (A row-major) */
typedef struct { int64_t n; const double *d; } diag_op;      /* Y = X diag(d) */

static int dense_apply(void *ctx, int k, const double *X, double *Y, nt_error *err)
{
    (void)err;
    const dense_op *M = ctx;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, k, (int)M->n, (int)M->n, 1.0, X, (int)M->n, M->A,
                (int)M->n, 0.0, Y, (int)M->n);
    return NT_OK;
}

static int diag_apply(void *ctx, int k, const double *X, double *Y, nt_error *err)
{
    (void)err;
    const diag_op *D = ctx;
    for (int j = 0; j < k; j++)
        for (int64_t i = 0; i < D->n; i++) Y[j * D->n + i] = D->d[i] * X[j * D->n + i];
    return NT_OK;
}

/* A = (B + B^T) / (2 sqrt(n)) (a semicircle of radius ~ sqrt(2)) plus diagonal outliers at
 * both ends, the most negative one the largest in magnitude (so "LA" is not "LM"). */
static double *random_symmetric(int64_t n, uint64_t stream)
{
    double *A = malloc(sizeof(double) * n * n), *B = malloc(sizeof(double) * n * n);
    fill_normal(B, n * n, 1.0, stream);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) A[i * n + j] = (B[i * n + j] + B[j * n + i]) / (2 * sqrt((double)n));
    const double out[5] = {10, 7, 5, -6, -12};
    for (int i = 0; i < 5; i++) A[(i * 37) * n + i * 37] += out[i];
    free(B);
    return A;
}

/* 1..n shifted to -20..n-21 (indefinite), with a repeated pair inside, a repeated pair at
 * the top and a repeated value at the bottom; returns the values in a shuffled order. */
static void known_diagonal(int64_t n, double *d, double *sorted)
{
    for (int64_t i = 0; i < n; i++) sorted[i] = (double)i - 20;
    sorted[1] = sorted[0];               /* -20 twice */
    sorted[100] = sorted[101];           /* 81 twice */
    sorted[n - 2] = sorted[n - 1];       /* the top twice */
    for (int64_t i = 0; i < n; i++) d[(i * 7) % n] = sorted[i];   /* 7 is prime to 300 */
}

static double max_abs(int64_t n, const double *x)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}

/* eigenvalues of an explicit symmetric matrix by dsyev (the reference) */
static void dsyev_values(int64_t n, const double *A, double *lam)
{
    double *C = malloc(sizeof(double) * n * n);
    memcpy(C, A, sizeof(double) * n * n);
    cr_assert_eq(LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', (int)n, C, (int)n, lam), 0);
    free(C);
}

/* ---------------------------------------------------------------- dense */

Test(spectrum, dense_known_diagonal)
{
    double d[N], sorted[N], lam[N], *U = malloc(sizeof(double) * N * N);
    known_diagonal(N, d, sorted);
    diag_op D = { N, d };
    nt_operator op = { N, 7, diag_apply, &D };
    nt_error err = {0};
    cr_assert_eq(nt_eigen_dense(&op, lam, U, &err), NT_OK, "%s", err.msg);
    double worst = 0, orth = 0;
    for (int i = 0; i < N; i++) worst = fmax(worst, fabs(lam[i] - sorted[i]));
    for (int i = 0; i < N; i++)   /* rows of U orthonormal */
        for (int j = 0; j <= i; j++)
            orth = fmax(orth, fabs(cblas_ddot(N, U + i * N, 1, U + j * N, 1) - (i == j)));
    double axis = 0;   /* a simple eigenvalue's vector is +-e_k with d_k = lambda */
    for (int i = 2; i < N - 2; i++) {
        if (i == 100 || i == 101) continue;
        int k = -1;
        for (int j = 0; j < N; j++) if (d[j] == sorted[i]) k = j;
        axis = fmax(axis, 1 - fabs(U[i * N + k]));
    }
    cr_expect_leq(worst, 1e-12, "dense vs known: %.3e", worst);
    cr_expect_leq(orth, 1e-12, "U U^T - I: %.3e", orth);
    cr_expect_leq(axis, 1e-12, "simple eigenvectors off their axis by %.3e", axis);
    cr_log_info("dense, diagonal n=%d: max |lambda - known| %.2e, |U U^T - I| %.2e, axis %.2e", N, worst, orth, axis);
    free(U);
}

/* dsyevr (nt_eigen_dense) against dsyev on the explicit matrix, with eigenvector residuals;
 * adding an antisymmetric part to the product does not change the result (A + A^T)/2. */
Test(spectrum, dense_matches_dsyev_and_symmetrizes)
{
    double *A = random_symmetric(N, 1), ref[N], lam[N], *U = malloc(sizeof(double) * N * N);
    dsyev_values(N, A, ref);
    const double scale = max_abs(N, ref);
    dense_op M = { N, A };
    nt_operator op = { N, 16, dense_apply, &M };
    nt_error err = {0};
    cr_assert_eq(nt_eigen_dense(&op, lam, U, &err), NT_OK, "%s", err.msg);
    double worst = 0, resid = 0, *Au = malloc(sizeof(double) * N);
    for (int i = 0; i < N; i++) worst = fmax(worst, fabs(lam[i] - ref[i]) / scale);
    for (int i = 0; i < N; i++) {   /* |A u_i - lambda_i u_i| */
        dense_apply(&M, 1, U + i * N, Au, NULL);
        cblas_daxpy(N, -lam[i], U + i * N, 1, Au, 1);
        resid = fmax(resid, cblas_dnrm2(N, Au, 1) / scale);
    }
    cr_expect_leq(worst, 1e-12, "dense vs dsyev: %.3e", worst);
    cr_expect_leq(resid, 1e-12, "eigenvector residual: %.3e", resid);
    double *S = malloc(sizeof(double) * N * N), sym[N];   /* A + K, K = -K^T from the upper triangle of S */
    fill_normal(S, N * N, 1.0, 2);
    for (int i = 0; i < N; i++)
        for (int j = i; j < N; j++) {
            const double k = j > i ? S[i * N + j] : 0;
            S[i * N + j] = A[i * N + j] + k;
            S[j * N + i] = A[j * N + i] - k;
        }
    dense_op MS = { N, S };
    nt_operator ops = { N, 5, dense_apply, &MS };
    cr_assert_eq(nt_eigen_dense(&ops, sym, NULL, &err), NT_OK, "%s", err.msg);
    double worst_sym = 0;
    for (int i = 0; i < N; i++) worst_sym = fmax(worst_sym, fabs(sym[i] - ref[i]) / scale);
    cr_expect_leq(worst_sym, 1e-12, "A + antisymmetric: %.3e", worst_sym);
    cr_log_info("dense vs dsyev: %.2e (relative to |A| = %.3g), residual %.2e, symmetrized %.2e", worst, scale,
                resid, worst_sym);
    free(A); free(U); free(Au); free(S);
}

/* ---------------------------------------------------------------- Lanczos */

/* Lanczos at one end against dense (values, and vectors where the gap to the rest of the
 * spectrum is at least 1e-3 |A|).  Returns the worst value error relative to |A|. */
static double lanczos_vs_dense(const nt_operator *op, int nev, int largest, const double *lam,
                               const double *U, int *products, double *worst_vec)
{
    const int64_t n = op->n;
    const double scale = fmax(fabs(lam[0]), fabs(lam[n - 1]));
    double *val = malloc(sizeof(double) * nev), *V = malloc(sizeof(double) * nev * n);
    nt_error err = {0};
    *products = -1;
    cr_assert_eq(nt_eigen_lanczos(op, nev, largest, 0, val, V, products, &err), NT_OK, "%s", err.msg);
    double worst = 0;
    *worst_vec = 0;
    for (int i = 0; i < nev; i++) {
        const int64_t k = largest ? n - 1 - i : i;
        worst = fmax(worst, fabs(val[i] - lam[k]) / scale);
        double gap = INFINITY;
        if (k > 0) gap = fmin(gap, lam[k] - lam[k - 1]);
        if (k < n - 1) gap = fmin(gap, lam[k + 1] - lam[k]);
        if (U && gap > 1e-3 * scale) {
            double c = fabs(cblas_ddot((int)n, V + i * n, 1, U + k * n, 1));
            *worst_vec = fmax(*worst_vec, 1 - c);
        }
    }
    for (int i = 1; i < nev; i++)   /* sorted: descending for the largest, ascending for the smallest */
        cr_expect(largest ? val[i] <= val[i - 1] : val[i] >= val[i - 1], "order at %d", i);
    free(val); free(V);
    return worst;
}

Test(spectrum, lanczos_matches_dense_on_random_matrix)
{
    double *A = random_symmetric(N, 3), lam[N], *U = malloc(sizeof(double) * N * N);
    dense_op M = { N, A };
    nt_operator op = { N, 16, dense_apply, &M };
    nt_error err = {0};
    cr_assert_eq(nt_eigen_dense(&op, lam, U, &err), NT_OK, "%s", err.msg);
    cr_assert_lt(lam[0], -1);   /* indefinite, the bottom outlier the largest in magnitude */
    cr_assert_gt(lam[N - 1], 1);
    cr_assert_gt(-lam[0], lam[N - 1]);
    int p_top, p_bot;
    double v_top, v_bot;
    double top = lanczos_vs_dense(&op, 10, 1, lam, U, &p_top, &v_top);
    double bot = lanczos_vs_dense(&op, 10, 0, lam, U, &p_bot, &v_bot);
    cr_expect_leq(top, 1e-8, "top 10: %.3e", top);
    cr_expect_leq(bot, 1e-8, "bottom 10: %.3e", bot);
    cr_expect_leq(v_top, 1e-8, "top vectors: 1 - |<u, u_dense>| = %.3e", v_top);
    cr_expect_leq(v_bot, 1e-8, "bottom vectors: 1 - |<u, u_dense>| = %.3e", v_bot);
    cr_expect_gt(p_top, 0);
    cr_expect_gt(p_bot, 0);
    cr_log_info("Lanczos n=%d nev=10: top %.2e (%d products, vectors %.2e), bottom %.2e (%d products, vectors %.2e)",
                N, top, p_top, v_top, bot, p_bot, v_bot);
    free(A); free(U);
}

/* Indefinite, with repeated eigenvalues at both ends: a single-vector Krylov method sees
 * one direction per eigenspace in exact arithmetic; ARPACK's restarts must recover both. */
Test(spectrum, lanczos_matches_dense_on_diagonal_with_repeats)
{
    double d[N], sorted[N];
    known_diagonal(N, d, sorted);
    diag_op D = { N, d };
    nt_operator op = { N, 4, diag_apply, &D };
    int p_top, p_bot;
    double v_top, v_bot;
    double top = lanczos_vs_dense(&op, 10, 1, sorted, NULL, &p_top, &v_top);
    double bot = lanczos_vs_dense(&op, 10, 0, sorted, NULL, &p_bot, &v_bot);
    cr_expect_leq(top, 1e-8, "top 10: %.3e", top);
    cr_expect_leq(bot, 1e-8, "bottom 10: %.3e", bot);
    cr_log_info("Lanczos on diag(-20..279, repeats): top %.2e (%d products), bottom %.2e (%d products)", top, p_top,
                bot, p_bot);
}

/* nev >= n - 1 takes the dense path (same layout, n products); nev out of 1..n is an input error. */
Test(spectrum, lanczos_dense_fallback_and_invalid_nev)
{
    const int n = 12;
    double d[12], sorted[12], val[12], V[12 * 12];
    for (int i = 0; i < n; i++) d[i] = sorted[i] = i * i - 30.0;
    diag_op D = { n, d };
    nt_operator op = { n, 3, diag_apply, &D };
    nt_error err = {0};
    int products = 0;
    for (int nev = n - 2; nev <= n; nev++) {
        cr_assert_eq(nt_eigen_lanczos(&op, nev, 1, 0, val, V, &products, &err), NT_OK, "nev %d: %s", nev, err.msg);
        for (int i = 0; i < nev; i++) {
            cr_expect_float_eq(val[i], sorted[n - 1 - i], 1e-10, "nev %d, value %d", nev, i);
            cr_expect_float_eq(fabs(V[i * n + n - 1 - i]), 1.0, 1e-10, "nev %d, vector %d", nev, i);
        }
        cr_expect_gt(products, 0);
        cr_assert_eq(nt_eigen_lanczos(&op, nev, 0, 0, val, NULL, NULL, &err), NT_OK, "%s", err.msg);
        for (int i = 0; i < nev; i++) cr_expect_float_eq(val[i], sorted[i], 1e-10, "smallest, nev %d, value %d", nev, i);
    }
    cr_expect_eq(nt_eigen_lanczos(&op, 0, 1, 0, val, NULL, NULL, &err), NT_EINPUT);
    cr_expect_eq(nt_eigen_lanczos(&op, n + 1, 1, 0, val, NULL, NULL, &err), NT_EINPUT);
    cr_expect(strstr(err.msg, "13") != NULL, "message names nev: %s", err.msg);
}

/* ---------------------------------------------------------------- SLQ and Hutchinson */

/* The probes of nt_slq / nt_hutchinson, rebuilt here independently. */
static void probe(int64_t n, uint64_t seed, int p, double *v)
{
    for (int64_t i = 0; i < n; i++) v[i] = (nt_rand_u64(seed, (uint64_t)p, (uint64_t)i) & 1) ? 1.0 : -1.0;
}

typedef struct {
    double h1, h2;     /* (1/P) sum v^T A v / |v|^2 and (1/P) sum |A v|^2 / |v|^2 */
    double se1, se2;   /* their standard errors */
    double t1, t2;     /* tr(A)/n and tr(A^2)/n, exactly */
} moments;

static moments reference_moments(const double *A, int64_t n, int P, uint64_t seed)
{
    moments r = {0};
    double *v = malloc(sizeof(double) * n), *Av = malloc(sizeof(double) * n), *a = malloc(sizeof(double) * P),
           *b = malloc(sizeof(double) * P);
    dense_op M = { n, A };
    for (int p = 0; p < P; p++) {
        probe(n, seed, p, v);
        dense_apply(&M, 1, v, Av, NULL);
        a[p] = cblas_ddot((int)n, v, 1, Av, 1) / n;
        b[p] = cblas_ddot((int)n, Av, 1, Av, 1) / n;
        r.h1 += a[p] / P;
        r.h2 += b[p] / P;
    }
    for (int p = 0; p < P; p++) {
        r.se1 += (a[p] - r.h1) * (a[p] - r.h1) / (P - 1) / P;
        r.se2 += (b[p] - r.h2) * (b[p] - r.h2) / (P - 1) / P;
    }
    r.se1 = sqrt(r.se1);
    r.se2 = sqrt(r.se2);
    for (int64_t i = 0; i < n; i++) {
        r.t1 += A[i * n + i] / n;
        for (int64_t j = 0; j < n; j++) r.t2 += A[i * n + j] * A[i * n + j] / n;
    }
    free(v); free(Av); free(a); free(b);
    return r;
}

/* The four moment checks of a density (nodes, weights) against the references; returns
 * how many fail, and the measured gaps. */
static int moment_checks(const double *x, const double *w, int cnt, const moments *r, double gaps[4])
{
    double m1 = 0, m2 = 0;
    for (int i = 0; i < cnt; i++) { m1 += w[i] * x[i]; m2 += w[i] * x[i] * x[i]; }
    gaps[0] = fabs(m1 - r->h1) / fabs(r->h1);   /* exact: the same probes */
    gaps[1] = fabs(m2 - r->h2) / r->h2;
    gaps[2] = fabs(m1 - r->t1) / r->se1;         /* statistical: in standard errors */
    gaps[3] = fabs(m2 - r->t2) / r->se2;
    return (gaps[0] > 1e-10) + (gaps[1] > 1e-10) + (gaps[2] > 4) + (gaps[3] > 4);
}

Test(spectrum, slq_weights_and_moments)
{
    const int P = 30, S = 40;
    const uint64_t seed = 5;
    double *A = random_symmetric(N, 4);
    dense_op M = { N, A };
    nt_operator op = { N, 8, dense_apply, &M };
    double *x = malloc(sizeof(double) * P * S), *w = malloc(sizeof(double) * P * S);
    nt_error err = {0};
    cr_assert_eq(nt_slq(&op, P, S, seed, x, w, &err), NT_OK, "%s", err.msg);
    double ws = 0;
    for (int i = 0; i < P * S; i++) ws += w[i];
    cr_expect_leq(fabs(ws - 1), 1e-12, "weights sum to 1 + %.3e", ws - 1);
    moments r = reference_moments(A, N, P, seed);
    double se, hutch = t_hutchinson(&op, P, seed, &se) / N;   /* the same probes through nt_hutchinson */
    cr_expect_leq(fabs(hutch - r.h1), 1e-12 * fabs(r.h1), "nt_hutchinson %.15g vs %.15g", hutch, r.h1);
    cr_expect_leq(fabs(se / N - r.se1), 1e-10 * r.se1, "standard error %.15g vs %.15g", se / N, r.se1);
    double gaps[4];
    int fails = moment_checks(x, w, P * S, &r, gaps);
    cr_expect_eq(fails, 0, "moments: first %.3e, second %.3e (relative, same probes); %.2f and %.2f standard errors",
                 gaps[0], gaps[1], gaps[2], gaps[3]);
    cr_log_info("SLQ P=%d m=%d: sum w - 1 = %.1e; moments vs same-probe Hutchinson %.1e, %.1e; vs tr/n %.2f, %.2f se",
                P, S, ws - 1, gaps[0], gaps[1], gaps[2], gaps[3]);
    for (int i = 0; i < P * S; i++) x[i] += 1;   /* negative control: the density moved by 1 */
    double bad[4];
    int bad_fails = moment_checks(x, w, P * S, &r, bad);
    cr_expect_eq(bad_fails, 4, "the shifted density fails %d of 4 checks (%.3e %.3e %.2f %.2f)", bad_fails, bad[0],
                 bad[1], bad[2], bad[3]);
    free(A); free(x); free(w);
}

/* With m >= the number of distinct eigenvalues, Lanczos from a vector with a component in
 * every eigenspace stops at an invariant subspace and Gauss quadrature is exact: each probe's
 * nodes are the distinct eigenvalues and its weights their multiplicities / n (a Rademacher v
 * has |P_lambda v|^2 = multiplicity for a diagonal matrix).  m > n exercises the short path. */
Test(spectrum, slq_exact_density_on_few_distinct_values)
{
    const int n = 20, P = 3, S = 25;
    const double vals[4] = {-2, 0.5, 3, 7};
    const int mult[4] = {4, 9, 6, 1};
    double d[20];
    for (int i = 0, c = 0; c < 4; c++)
        for (int j = 0; j < mult[c]; j++) d[i++] = vals[c];
    diag_op D = { n, d };
    nt_operator op = { n, 2, diag_apply, &D };
    double x[3 * 25], w[3 * 25];
    nt_error err = {0};
    cr_assert_eq(nt_slq(&op, P, S, 9, x, w, &err), NT_OK, "%s", err.msg);
    double worst = 0, ws = 0;
    for (int p = 0; p < P; p++) {
        int nonzero = 0;
        double at[4] = {0};
        for (int j = 0; j < S; j++) {
            ws += w[p * S + j];   /* every node, weighted or not, in the spectrum's hull (Ritz values) */
            cr_expect(x[p * S + j] >= -2 - 1e-12 && x[p * S + j] <= 7 + 1e-12, "node %.6g outside [-2, 7]", x[p * S + j]);
            if (w[p * S + j] == 0) continue;
            nonzero++;
            int c = 0;
            while (c < 3 && fabs(x[p * S + j] - vals[c]) > 1e-8) c++;
            cr_expect_leq(fabs(x[p * S + j] - vals[c]), 1e-10, "probe %d node %.15g", p, x[p * S + j]);
            at[c] += w[p * S + j];
        }
        cr_expect_eq(nonzero, 4, "probe %d: %d nodes with weight", p, nonzero);
        for (int c = 0; c < 4; c++) worst = fmax(worst, fabs(at[c] - (double)mult[c] / n / P));
    }
    cr_expect_leq(worst, 1e-12, "weights vs multiplicity / n P: %.3e", worst);
    cr_expect_leq(fabs(ws - 1), 1e-12);
    cr_log_info("SLQ on 4 distinct values, m=%d > n=%d: weights exact to %.1e", S, n, worst);
}

Test(spectrum, density_grid_integrates_to_one)
{
    const int P = 10, S = 30, G = 8001;
    double *A = random_symmetric(N, 5);
    dense_op M = { N, A };
    nt_operator op = { N, 1, dense_apply, &M };
    double *x = malloc(sizeof(double) * P * S), *w = malloc(sizeof(double) * P * S);
    double *grid = malloc(sizeof(double) * G), *rho = malloc(sizeof(double) * G);
    nt_error err = {0};
    cr_assert_eq(nt_slq(&op, P, S, 11, x, w, &err), NT_OK, "%s", err.msg);
    for (int i = 0; i < G; i++) grid[i] = -30 + 60.0 * i / (G - 1);
    for (int s = 0; s < 2; s++) {
        const double sigma = s ? 0.05 : 0.5, h = grid[1] - grid[0];
        nt_density_grid(x, w, P * S, sigma, grid, G, rho);
        double integral = 0;
        for (int i = 1; i < G; i++) integral += 0.5 * (rho[i] + rho[i - 1]) * h;
        cr_expect_leq(fabs(integral - 1), 1e-6, "sigma %g: integral %.12g", sigma, integral);
        cr_log_info("density sigma=%g: trapezoid integral - 1 = %.2e", sigma, integral - 1);
    }
    double one = 0, at = 2.5, rho1;   /* one node of weight 1: the normal density itself */
    nt_density_grid(&one, (double[]){1.0}, 1, 2.0, &at, 1, &rho1);
    cr_expect_float_eq(rho1, exp(-0.5 * 1.25 * 1.25) / (2 * sqrt(2 * M_PI)), 1e-15);
    free(A); free(x); free(w); free(grid); free(rho);
}

/* v^T D v = sum_i d_i v_i^2 = tr D for every Rademacher v: all samples equal, the standard
 * error exactly 0 (not the round-off of a one-pass variance). */
Test(spectrum, hutchinson_exact_on_diagonal)
{
    double d[N], sorted[N], tr = 0;
    known_diagonal(N, d, sorted);
    for (int i = 0; i < N; i++) { d[i] = d[i] / 3 + 0.1 * sin(i); tr += d[i]; }   /* not integers: no exact sums */
    diag_op D = { N, d };
    nt_operator op = { N, 6, diag_apply, &D };
    double se = -1, est = t_hutchinson(&op, 25, 3, &se);
    cr_expect_leq(fabs(est - tr), 1e-12 * fabs(tr), "estimate %.17g, trace %.17g", est, tr);
    cr_expect_eq(se, 0.0, "standard error %.3e", se);
    est = t_hutchinson(&op, 1, 3, &se);   /* one probe: no standard error */
    cr_expect_leq(fabs(est - tr), 1e-12 * fabs(tr));
    cr_expect(isnan(se));
}

Test(spectrum, hutchinson_within_four_standard_errors)
{
    double *A = random_symmetric(N, 6), tr = 0;
    for (int i = 0; i < N; i++) tr += A[i * N + i];
    dense_op M = { N, A };
    nt_operator op = { N, 16, dense_apply, &M };
    double se, est = t_hutchinson(&op, 200, 4, &se);
    cr_expect_gt(se, 0);
    cr_expect_leq(fabs(est - tr), 4 * se, "estimate %.6g, trace %.6g, standard error %.3g", est, tr, se);
    /* the variance per probe is 2 sum_{i != j} A_ij^2: the standard error of 200 probes */
    double off = 0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) off += i != j ? A[i * N + j] * A[i * N + j] : 0;
    const double expected = sqrt(2 * off / 200);
    cr_expect(se > 0.7 * expected && se < 1.3 * expected, "standard error %.4g, expected %.4g", se, expected);
    cr_log_info("Hutchinson P=200: %.4f vs tr %.4f, %.2f standard errors (se %.4f, expected %.4f)", est, tr,
                fabs(est - tr) / se, se, expected);
    free(A);
}

/* ---------------------------------------------------------------- the Hessian */

typedef struct { nt_engine *e; const double *theta; const nt_dataset *ds; } hvp_ctx;

static int hvp_apply(void *ctx, int k, const double *X, double *Y, nt_error *err)
{
    const hvp_ctx *h = ctx;
    return nt_hvp(h->e, h->theta, h->ds, k, X, Y, NULL, NULL, err);
}

Test(spectrum, hessian_operator, .timeout = 120)
{
    nt_model m;
    nt_dataset ds;
    make_mlp(&m, 4, 2, (int[]){6, 5}, NT_ACT_TANH, 3, NT_LOSS_CROSS_ENTROPY, 1, 1e-3);
    make_data(&ds, &m, 40, 90);
    const int64_t d = m.d;
    nt_engine *e = nt_engine_new(&m, 16, 8);
    double *theta = malloc(sizeof(double) * d), *H = malloc(sizeof(double) * d * d);
    double *lam = malloc(sizeof(double) * d), *ref = malloc(sizeof(double) * d), *U = malloc(sizeof(double) * d * d);
    fill_normal(theta, d, 0.7, 91);
    hvp_ctx ctx = { e, theta, &ds };
    nt_operator op = { d, nt_engine_k(e), hvp_apply, &ctx };
    nt_error err = {0};
    cr_assert_eq(nt_eigen_dense(&op, lam, U, &err), NT_OK, "%s", err.msg);
    t_hessian(e, theta, &ds, H);
    for (int64_t i = 0; i < d; i++)
        for (int64_t j = 0; j < i; j++) H[i * d + j] = H[j * d + i] = 0.5 * (H[i * d + j] + H[j * d + i]);
    dsyev_values(d, H, ref);
    const double scale = max_abs(d, ref);
    double worst = 0;
    for (int64_t i = 0; i < d; i++) worst = fmax(worst, fabs(lam[i] - ref[i]) / scale);
    cr_expect_leq(worst, 1e-10, "dense on the HVP operator vs dsyev of nt_hessian: %.3e", worst);
    int p_top, p_bot;
    double v_top, v_bot;
    double top = lanczos_vs_dense(&op, 5, 1, lam, U, &p_top, &v_top);
    double bot = lanczos_vs_dense(&op, 5, 0, lam, U, &p_bot, &v_bot);
    cr_expect_leq(top, 1e-8, "Hessian top 5: %.3e", top);
    cr_expect_leq(bot, 1e-8, "Hessian bottom 5: %.3e", bot);
    cr_expect_leq(v_top, 1e-8, "Hessian top vectors: %.3e", v_top);
    cr_expect_leq(v_bot, 1e-8, "Hessian bottom vectors: %.3e", v_bot);
    cr_expect(lam[0] < 0 && lam[d - 1] > 0, "an indefinite Hessian: [%.3g, %.3g]", lam[0], lam[d - 1]);
    cr_log_info("Hessian d=%lld, spectrum [%.4g, %.4g]: dense vs nt_hessian %.2e; Lanczos top 5 %.2e (%d products, "
                "vectors %.1e), bottom 5 %.2e (%d products, vectors %.1e)", (long long)d, lam[0], lam[d - 1], worst,
                top, p_top, v_top, bot, p_bot, v_bot);
    free(theta); free(H); free(lam); free(ref); free(U);
    nt_engine_free(e);
    nt_dataset_free(&ds);
    nt_model_free(&m);
}
