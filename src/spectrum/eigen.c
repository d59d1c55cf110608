/* eigen.c: eigenvalues of a symmetric operator, both ends.
 *   dense:   the n x n matrix from products with unit vectors (blocks of op->block),
 *            symmetrized (A + A^T)/2, all eigenpairs by LAPACK dsyevr;
 *   Lanczos: ARPACK's implicitly restarted Lanczos (dsaupd/dseupd, mode 1, reverse
 *            communication: each request is one product), "LA" for the largest algebraic
 *            eigenvalues and "SA" for the smallest. */
#include <float.h>
#include <stdlib.h>
#include <string.h>
#include <arpack/arpack.h>
#include <lapacke.h>
#include "spectrum.h"

int nt_eigen_dense(const nt_operator *op, double *values, double *vectors, nt_error *err)
{
    const int64_t n = op->n;
    const int kb = op->block > 0 ? op->block : 1;
    double *A = malloc(sizeof(double) * (size_t)(n * n)), *E = calloc((size_t)(kb * n), sizeof(double));
    if (!A || !E) {
        free(A); free(E);
        return nt_fail(err, NT_EFAIL, "out of memory for a dense %lld x %lld matrix", (long long)n, (long long)n);
    }
    for (int64_t j0 = 0; j0 < n; j0 += kb) {   /* rows j0.. of A = (A e_j)^T, A symmetric */
        int k = n - j0 < kb ? (int)(n - j0) : kb;
        for (int j = 0; j < k; j++) E[j * n + j0 + j] = 1;
        op->apply(op->ctx, k, E, A + j0 * n);
        for (int j = 0; j < k; j++) E[j * n + j0 + j] = 0;
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < i; j++) A[i * n + j] = A[j * n + i] = 0.5 * (A[i * n + j] + A[j * n + i]);
    lapack_int found, *support = malloc(sizeof(lapack_int) * 2 * (size_t)n);
    double *Z = vectors ? malloc(sizeof(double) * (size_t)(n * n)) : NULL;
    lapack_int info = LAPACKE_dsyevr(LAPACK_ROW_MAJOR, vectors ? 'V' : 'N', 'A', 'U', (lapack_int)n, A,
                                     (lapack_int)n, 0, 0, 0, 0, 0, &found, values, Z, (lapack_int)n, support);
    if (vectors && info == 0)   /* column i of Z is eigenvector i: into row i */
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++) vectors[i * n + j] = Z[j * n + i];
    free(A); free(E); free(Z); free(support);
    if (info != 0) return nt_fail(err, NT_EFAIL, "LAPACK dsyevr failed (info %d)", (int)info);
    return NT_OK;
}

int nt_eigen_lanczos(const nt_operator *op, int nev, int largest, double tol, double *values,
                     double *vectors, int *n_products, nt_error *err)
{
    const a_int n = (a_int)op->n;
    if (nev < 1 || nev >= n - 1) {   /* ARPACK needs nev < n - 1: take the dense path */
        double *all = malloc(sizeof(double) * (size_t)n), *U = vectors ? malloc(sizeof(double) * (size_t)n * n) : NULL;
        int rc = nt_eigen_dense(op, all, U, err);
        for (int i = 0; !rc && i < nev && i < n; i++) {
            int64_t src = largest ? n - 1 - i : i;
            values[i] = all[src];
            if (U) memcpy(vectors + (int64_t)i * n, U + src * n, sizeof(double) * (size_t)n);
        }
        if (n_products) *n_products = (int)n;
        free(all); free(U);
        return rc;
    }
    a_int ncv = 3 * nev + 10 > 40 ? 3 * nev + 10 : 40;   /* room for clustered ends */
    if (ncv > n) ncv = n;
    const a_int lworkl = ncv * (ncv + 8);
    a_int ido = 0, info = 1, iparam[11] = {0}, ipntr[11] = {0};
    double *resid = malloc(sizeof(double) * (size_t)n), *V = malloc(sizeof(double) * (size_t)n * ncv);
    double *workd = malloc(sizeof(double) * 3 * (size_t)n), *workl = malloc(sizeof(double) * (size_t)lworkl);
    for (a_int i = 0; i < n; i++) resid[i] = nt_rand_uniform(31, 0, (uint64_t)i) - 0.5;   /* a fixed start */
    iparam[0] = 1;      /* exact shifts */
    iparam[2] = 1000;   /* restarts */
    iparam[3] = 1;      /* block size: ARPACK works with 1 only */
    iparam[6] = 1;      /* mode 1: A x = lambda x */
    const char *which = largest ? "LA" : "SA";
    if (tol <= 0) tol = DBL_EPSILON;   /* ARPACK's own default (tol = 0) is half of it and costs ~4x the products */
    int products = 0;
    for (;;) {
        dsaupd_c(&ido, "I", n, which, nev, tol, resid, ncv, V, n, iparam, ipntr, workd, workl, lworkl, &info);
        if (ido != 1 && ido != -1) break;
        op->apply(op->ctx, 1, workd + ipntr[0] - 1, workd + ipntr[1] - 1);
        products++;
    }
    if (n_products) *n_products = products;
    int rc = NT_OK;
    if (info < 0 || (info != 0 && info != 1)) {
        rc = nt_fail(err, NT_EFAIL, "ARPACK dsaupd failed (info %d)", (int)info);
    } else if (info == 1) {
        rc = nt_fail(err, NT_EFAIL, "ARPACK dsaupd: no convergence within %d restarts (%d of %d converged)",
                     (int)iparam[2], (int)iparam[4], nev);
    } else {
        a_int *select = calloc((size_t)ncv, sizeof(a_int));   /* read even with howmny "A" */
        double *d = malloc(sizeof(double) * (size_t)nev), *Z = malloc(sizeof(double) * (size_t)n * nev);
        dseupd_c(vectors != NULL, "A", select, d, Z, n, 0.0, "I", n, which, nev, tol, resid, ncv, V, n,
                 iparam, ipntr, workd, workl, lworkl, &info);
        if (info != 0) {
            rc = nt_fail(err, NT_EFAIL, "ARPACK dseupd failed (info %d)", (int)info);
        } else {   /* sorted here (ARPACK's order differs between "LA" and "SA"): largest or smallest first */
            int *order = malloc(sizeof(int) * (size_t)nev);
            for (int i = 0; i < nev; i++) order[i] = i;
            for (int i = 1; i < nev; i++)   /* insertion sort on d */
                for (int j = i; j > 0 && (largest ? d[order[j]] > d[order[j - 1]] : d[order[j]] < d[order[j - 1]]); j--) {
                    int t = order[j]; order[j] = order[j - 1]; order[j - 1] = t;
                }
            for (int i = 0; i < nev; i++) {
                int src = order[i];
                values[i] = d[src];
                if (vectors) memcpy(vectors + (int64_t)i * n, Z + (int64_t)src * n, sizeof(double) * (size_t)n);
            }
            free(order);
        }
        free(select); free(d); free(Z);
    }
    free(resid); free(V); free(workd); free(workl);
    return rc;
}
