/* test_block_lanczos.c: nt_eigen_block_lanczos (src/spectrum/block_lanczos.c) on operators
 * whose spectra are known, against nt_eigen_dense (LAPACK dsyevr on the assembled matrix):
 *   - a random symmetric matrix with outliers at both ends, blocks of 1, 3, 7 and 16 (7 divides
 *     neither n, nor nev, nor the basis): values to 1e-12 |A|, vectors (where the gap allows),
 *     residuals |A v - lambda v| and orthonormality to 1e-12;
 *   - a diagonal with repeated eigenvalues at both ends and a tight cluster (both copies of a
 *     repeated value found: the block sees several directions of an eigenspace at once);
 *   - nev close to n (the basis is the whole space);
 *   - negative controls: the same check fails for the values of a perturbed operator and for
 *     a value moved by 1e-9 |A|;
 *   - products against ARPACK's (nt_eigen_arpack) on a fixed operator, counts being
 *     deterministic: single products fewer, pairs within 1.3 x;
 *   - nt_eigen_lanczos's rule (the thick restart from n = 5000), its values ARPACK's;
 *   - invalid nev and an operator's error returned as they are. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include <cblas.h>
#include "helpers.h"

#define N 300

typedef struct { int64_t n; const double *A; } dense_op;   /* Y = X A^T (A row-major) */
typedef struct { int64_t n; const double *d; } diag_op;    /* Y = X diag(d) */

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

static int failing_apply(void *ctx, int k, const double *X, double *Y, nt_error *err)
{
    (void)ctx; (void)k; (void)X; (void)Y;
    return nt_fail(err, NT_EFAIL, "test operator: refused");
}

/* (B + B^T) / (2 sqrt(n)) plus outliers at both ends, the bottom one the largest in magnitude */
static double *random_symmetric(int64_t n, uint64_t stream)
{
    double *A = malloc(sizeof(double) * n * n), *B = malloc(sizeof(double) * n * n);
    fill_normal(B, n * n, 1.0, stream);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) A[i * n + j] = (B[i * n + j] + B[j * n + i]) / (2 * sqrt((double)n));
    const double out[5] = {10, 7, 5, -6, -12};
    for (int i = 0; i < 5; i++) A[((i * 37) % n) * n + (i * 37) % n] += out[i];   /* distinct for n = 40 and 300 */
    free(B);
    return A;
}

typedef struct { double value, vector, residual, orth; } errors;

/* The nev pairs (val, V) at one end against dense (lam ascending, U rows): value errors
 * relative to |A|; 1 - |<v, u>| where the gap to the rest is >= 1e-3 |A|; |A v - val v| / |A|
 * with A the operator op (not necessarily the one that produced the pairs); |V V^T - I|. */
static errors check_pairs(const nt_operator *op, int nev, int largest, const double *val, const double *V,
                          const double *lam, const double *U)
{
    const int64_t n = op->n;
    const double scale = fmax(fabs(lam[0]), fabs(lam[n - 1]));
    errors e = {0};
    double *Av = malloc(sizeof(double) * n);
    for (int i = 0; i < nev; i++) {
        const int64_t k = largest ? n - 1 - i : i;
        e.value = fmax(e.value, fabs(val[i] - lam[k]) / scale);
        double gap = INFINITY;
        if (k > 0) gap = fmin(gap, lam[k] - lam[k - 1]);
        if (k < n - 1) gap = fmin(gap, lam[k + 1] - lam[k]);
        if (U && gap > 1e-3 * scale) e.vector = fmax(e.vector, 1 - fabs(cblas_ddot((int)n, V + i * n, 1, U + k * n, 1)));
        nt_error err;
        cr_assert_eq(op->apply(op->ctx, 1, V + i * n, Av, &err), NT_OK);
        cblas_daxpy((int)n, -val[i], V + i * n, 1, Av, 1);
        e.residual = fmax(e.residual, cblas_dnrm2((int)n, Av, 1) / scale);
        for (int j = 0; j <= i; j++)
            e.orth = fmax(e.orth, fabs(cblas_ddot((int)n, V + i * n, 1, V + j * n, 1) - (i == j)));
        if (i > 0) cr_expect(largest ? val[i] <= val[i - 1] : val[i] >= val[i - 1], "order at %d", i);
    }
    free(Av);
    return e;
}

static errors block_vs_dense(const nt_operator *op, int nev, int largest, int b, const double *lam, const double *U,
                             int *products)
{
    double *val = malloc(sizeof(double) * nev), *V = malloc(sizeof(double) * nev * op->n);
    nt_block_lanczos_opts o = { .block = b };
    nt_error err = {0};
    cr_assert_eq(nt_eigen_block_lanczos(op, nev, largest, 0, &o, val, V, products, &err), NT_OK, "%s", err.msg);
    errors e = check_pairs(op, nev, largest, val, V, lam, U);
    free(val); free(V);
    return e;
}

static void expect_exact(errors e, const char *what)
{
    cr_expect_leq(e.value, 1e-12, "%s: values off by %.3e |A|", what, e.value);
    cr_expect_leq(e.vector, 1e-10, "%s: vectors 1 - |<v, u>| = %.3e", what, e.vector);
    cr_expect_leq(e.residual, 1e-12, "%s: residual %.3e |A|", what, e.residual);
    cr_expect_leq(e.orth, 1e-12, "%s: |V V^T - I| = %.3e", what, e.orth);
}

Test(block_lanczos, matches_dense_on_random_matrix)
{
    double *A = random_symmetric(N, 3), lam[N], *U = malloc(sizeof(double) * N * N);
    dense_op M = { N, A };
    nt_operator op = { N, 16, dense_apply, &M };
    nt_error err = {0};
    cr_assert_eq(nt_eigen_dense(&op, lam, U, &err), NT_OK, "%s", err.msg);
    const int blocks[4] = {1, 3, 7, 16};
    for (int t = 0; t < 4; t++)
        for (int largest = 0; largest < 2; largest++) {
            int products = 0;
            errors e = block_vs_dense(&op, 10, largest, blocks[t], lam, U, &products);
            char what[64];
            snprintf(what, sizeof what, "%s 10, block %d", largest ? "top" : "bottom", blocks[t]);
            expect_exact(e, what);
            cr_expect_eq(products % blocks[t], 0, "%s: %d products", what, products);
            cr_log_info("%s: %d products, values %.1e, vectors %.1e, residual %.1e, orth %.1e", what, products,
                        e.value, e.vector, e.residual, e.orth);
        }
    free(A); free(U);
}

/* -20 twice and 279 twice at the ends, a cluster of 6 within 6e-9 below the top pair */
Test(block_lanczos, repeated_and_clustered_diagonal)
{
    double d[N], lam[N];
    for (int i = 0; i < N; i++) lam[i] = i - 20.0;
    lam[1] = lam[0];
    lam[N - 2] = lam[N - 1];
    for (int i = 0; i < 6; i++) lam[N - 3 - i] = lam[N - 1] - 1 - 1e-9 * i;
    for (int i = 0; i < N; i++) d[(i * 7) % N] = lam[i];   /* shuffled; 7 is prime to 300 */
    double sorted[N];
    memcpy(sorted, lam, sizeof sorted);
    for (int i = 1; i < N; i++)   /* ascending (the cluster was written descending) */
        for (int j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) { double t = sorted[j]; sorted[j] = sorted[j - 1]; sorted[j - 1] = t; }
    diag_op D = { N, d };
    nt_operator op = { N, 4, diag_apply, &D };
    for (int largest = 0; largest < 2; largest++) {
        int products = 0;
        errors e = block_vs_dense(&op, 10, largest, 4, sorted, NULL, &products);
        expect_exact(e, largest ? "top 10 with a repeated pair and a cluster" : "bottom 10 with a repeated pair");
        cr_log_info("diagonal, %s: %d products, values %.1e, residual %.1e", largest ? "top" : "bottom", products,
                    e.value, e.residual);
    }
}

/* nev close to n: the basis is the whole space, the Ritz values exact */
Test(block_lanczos, nev_close_to_n)
{
    enum { n = 40 };
    double *A = random_symmetric(n, 5), lam[n], U[n * n];
    dense_op M = { n, A };
    nt_operator op = { n, 3, dense_apply, &M };
    nt_error err = {0};
    cr_assert_eq(nt_eigen_dense(&op, lam, U, &err), NT_OK, "%s", err.msg);
    const int nevs[3] = {35, 39, 40};
    for (int t = 0; t < 3; t++)
        for (int largest = 0; largest < 2; largest++) {
            int products = 0;
            errors e = block_vs_dense(&op, nevs[t], largest, 3, lam, U, &products);
            char what[64];
            snprintf(what, sizeof what, "nev %d of %d, %s", nevs[t], n, largest ? "top" : "bottom");
            expect_exact(e, what);
            cr_expect_leq(products, n + 3, "%s: %d products", what, products);
        }
    free(A);
}

/* The check above fails when it should: values of a perturbed operator (A + 1e-6 E, E
 * symmetric) against A's dense spectrum, and one value moved by 1e-9 |A|. */
Test(block_lanczos, negative_controls)
{
    double *A = random_symmetric(N, 3), *P = malloc(sizeof(double) * N * N), lam[N];
    memcpy(P, A, sizeof(double) * N * N);
    for (int i = 0; i < N; i++) P[i * N + i] += 1e-6 * ((i % 5) - 2);
    dense_op M = { N, A }, MP = { N, P };
    nt_operator op = { N, 16, dense_apply, &M }, opp = { N, 16, dense_apply, &MP };
    nt_error err = {0};
    cr_assert_eq(nt_eigen_dense(&op, lam, NULL, &err), NT_OK, "%s", err.msg);
    double val[10], *V = malloc(sizeof(double) * 10 * N);
    nt_block_lanczos_opts o = { .block = 4 };
    cr_assert_eq(nt_eigen_block_lanczos(&opp, 10, 1, 0, &o, val, V, NULL, &err), NT_OK, "%s", err.msg);
    errors perturbed = check_pairs(&op, 10, 1, val, V, lam, NULL);
    cr_expect_gt(perturbed.value, 1e-12, "a perturbed operator's values pass: %.3e", perturbed.value);
    cr_expect_gt(perturbed.residual, 1e-12, "a perturbed operator's vectors pass: %.3e", perturbed.residual);
    cr_assert_eq(nt_eigen_block_lanczos(&op, 10, 1, 0, &o, val, V, NULL, &err), NT_OK, "%s", err.msg);
    val[3] += 1e-9 * fabs(lam[0]);
    errors moved = check_pairs(&op, 10, 1, val, V, lam, NULL);
    cr_expect_gt(moved.value, 1e-12, "a moved value passes: %.3e", moved.value);
    cr_expect_gt(moved.residual, 1e-12, "a moved value's residual passes: %.3e", moved.residual);
    cr_log_info("negative controls: perturbed operator values %.1e residual %.1e; moved value %.1e residual %.1e",
                perturbed.value, perturbed.residual, moved.value, moved.residual);
    free(A); free(P); free(V);
}

Test(block_lanczos, invalid_input_and_operator_error)
{
    double d[12] = {0}, val[12];
    diag_op D = { 12, d };
    nt_operator op = { 12, 3, diag_apply, &D };
    nt_error err = {0};
    cr_expect_eq(nt_eigen_block_lanczos(&op, 0, 1, 0, NULL, val, NULL, NULL, &err), NT_EINPUT);
    cr_expect_eq(nt_eigen_block_lanczos(&op, 13, 1, 0, NULL, val, NULL, NULL, &err), NT_EINPUT);
    cr_expect(strstr(err.msg, "13") != NULL, "message names nev: %s", err.msg);
    nt_block_lanczos_opts wide = { .block = NT_BLOCK_LANCZOS_MAX_B + 1 };
    cr_expect_eq(nt_eigen_block_lanczos(&op, 2, 1, 0, &wide, val, NULL, NULL, &err), NT_EINPUT);
    cr_expect(strstr(err.msg, "block 17") != NULL, "message names the block: %s", err.msg);
    nt_operator bad = { 12, 3, failing_apply, NULL };
    cr_expect_eq(nt_eigen_block_lanczos(&bad, 2, 1, 0, NULL, val, NULL, NULL, &err), NT_EFAIL);
    cr_expect(strstr(err.msg, "refused") != NULL, "the operator's message: %s", err.msg);
}

/* A Hessian-like diagonal of n = 2000: a bulk near 0 (|x|^3 spread), a few outliers at the
 * top, a crowded negative tail at the bottom; shuffled. */
static void hessian_like(int64_t n, double *d)
{
    for (int64_t i = 0; i < n; i++) {
        const double x = 2.0 * i / (n - 1) - 1;   /* -1 .. 1 */
        d[(i * 7) % n] = x * x * x * (x < 0 ? 0.5 : 1.0) + (i >= n - 5 ? 10.0 * (i - n + 6) : 0);
    }
}

Test(block_lanczos, products_against_arpack)
{
    enum { n = 2000 };
    double *d = malloc(sizeof(double) * n), val[10];
    hessian_like(n, d);
    diag_op D = { n, d };
    nt_operator op = { n, 16, diag_apply, &D };
    nt_error err = {0};
    for (int largest = 0; largest < 2; largest++) {
        int p_arpack = 0;
        cr_assert_eq(nt_eigen_arpack(&op, 10, largest, 0, val, NULL, &p_arpack, &err), NT_OK, "%s", err.msg);
        const int blocks[5] = {1, 2, 4, 8, 16};
        for (int t = 0; t < 5; t++) {
            int p = 0;
            nt_block_lanczos_opts o = { .block = blocks[t] };
            cr_assert_eq(nt_eigen_block_lanczos(&op, 10, largest, 0, &o, val, NULL, &p, &err), NT_OK, "%s", err.msg);
            cr_log_info("%s 10 of n = %d: ARPACK %d products, block %d: %d (%.2f x)", largest ? "top" : "bottom", n,
                        p_arpack, blocks[t], p, (double)p / p_arpack);
            /* the count lanczos.c's rule rests on: single products fewer than ARPACK's (measured
             * 0.76 / 0.85 with OpenBLAS's Haswell kernel, 0.75 / 0.94 with its SSE one); pairs
             * within 1.5 x, a guard against a regression only (measured 1.16 / 1.27 and
             * 1.14 / 1.37: the start vectors' rounding moves them by a tenth) */
            if (blocks[t] == 1) cr_expect_leq(p, p_arpack, "block 1: %d products, ARPACK %d", p, p_arpack);
            if (blocks[t] == 2) cr_expect_leq(p, 1.5 * p_arpack, "block 2: %d products, ARPACK %d", p, p_arpack);
        }
    }
    free(d);
}

/* nt_eigen_lanczos's rule: from n = 5000 the thick restart with single products (the same
 * count as nt_eigen_block_lanczos with b = 1), the values ARPACK's to 1e-12 */
Test(block_lanczos, lanczos_rule_takes_the_thick_restart_from_5000)
{
    enum { n = 6000 };
    double *d = malloc(sizeof(double) * n), lanczos[10], arpack[10], block[10];
    hessian_like(n, d);
    diag_op D = { n, d };
    nt_operator op = { n, 16, diag_apply, &D };
    nt_error err = {0};
    for (int largest = 0; largest < 2; largest++) {
        int p_rule = 0, p_arpack = 0, p_block = 0;
        nt_block_lanczos_opts o = { .block = 1 };
        cr_assert_eq(nt_eigen_lanczos(&op, 10, largest, 0, lanczos, NULL, &p_rule, &err), NT_OK, "%s", err.msg);
        cr_assert_eq(nt_eigen_arpack(&op, 10, largest, 0, arpack, NULL, &p_arpack, &err), NT_OK, "%s", err.msg);
        cr_assert_eq(nt_eigen_block_lanczos(&op, 10, largest, 0, &o, block, NULL, &p_block, &err), NT_OK, "%s", err.msg);
        cr_expect_eq(p_rule, p_block, "the rule took %d products, the thick restart %d", p_rule, p_block);
        cr_expect_neq(p_rule, p_arpack, "the rule took ARPACK's %d products", p_arpack);
        double worst = 0, scale = 0;
        for (int i = 0; i < n; i++) scale = fmax(scale, fabs(d[i]));
        for (int i = 0; i < 10; i++) worst = fmax(worst, fabs(lanczos[i] - arpack[i]) / scale);
        cr_expect_leq(worst, 1e-12, "%s: the rule's values off ARPACK's by %.3e |A|", largest ? "top" : "bottom", worst);
        cr_log_info("rule at n = %d, %s 10: %d products (ARPACK %d), values agree to %.1e", n,
                    largest ? "top" : "bottom", p_rule, p_arpack, worst);
    }
    free(d);
}
