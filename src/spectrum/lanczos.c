/* lanczos.c: the nev largest or smallest eigenpairs of a symmetric operator, matrix-free.
 *
 * ARPACK's implicitly restarted Lanczos method (Sorensen 1992; Lehoucq, Sorensen & Yang,
 * "ARPACK Users' Guide", 1998) through the ARPACK-ng ISO-C bindings: dsaupd_c builds a
 * Lanczos factorization A V_m = V_m T_m + r e_m^T of ncv vectors, keeps the nev wanted Ritz
 * values by implicit QR shifts at the unwanted ones (exact shifts), and repeats until each
 * wanted Ritz pair (theta, V s) has residual |r| |e_m^T s| <= tol |theta|.  dseupd_c then
 * returns the Ritz values and vectors.  Mode 1 (standard problem A x = lambda x), "LA" or
 * "SA", reverse communication: every request (ido = +-1) is one product y = A x, so any
 * operator (an HVP) fits.
 *
 * tol = 0 means DBL_EPSILON: ARPACK's own default for tol <= 0 is dlamch('E') = DBL_EPSILON/2,
 * which buys no accuracy here (both give eigenvalues to ~1e-15 |A|) at about twice the
 * products (measured: 549 vs 251 for the top 10 of n = 300).
 *
 * ARPACK needs 0 < nev < n and nev < ncv <= n; ncv = min(n, max(3 nev + 10, 20)) for the
 * largest end and max(3 nev + 10, 60) for the smallest, which the Hessian's crowded low end
 * makes the slower one (measured, bottom 10 of the 784-256-256-10 MLP on 1024 samples: 343
 * products with 40, 270 with 60; the top 10 take 84 with 40 and 102 with 60).  Each step
 * reorthogonalizes against the ncv basis vectors (memory-bound passes over n x ncv), so a
 * wider subspace than the top end needs costs time twice: the top 5 of the trained MLP take
 * 26 products and 0.49 s with ncv = 25, 41 and 0.80 s with 40, the same values to 1e-15.  For
 * nev >= n - 1 (a Krylov space that is the whole space) the dense path is taken instead:
 * n products with unit vectors and dsyevr, the same answer in the same layout.
 *
 * The rule (nt_eigen_lanczos): from n = 5000 on, the thick-restart Lanczos of
 * block_lanczos.c with blocks of one product; ARPACK (nt_eigen_arpack) below.  Measured
 * (nev 10, the same convergence test, values equal to 1e-14 relative; products are
 * deterministic for a thread count, 2 OpenBLAS threads here, the b = 1 bottom count moving
 * between 202 and 222 with the last bits; bench/bench_spectrum.c prints the rows) on the
 * bench problem (784-256-256-10 MLP, 1024 Fashion-MNIST images, seeded theta, n = 269322):
 *     end     ARPACK   b = 1   b = 2   b = 4   b = 8   b = 16   (products)
 *     top       84       78     124     196     400     704
 *     bottom   270      202     270     388      -     1312
 * and on a Hessian-like diagonal of n = 2000 (tests/test_block_lanczos.c): top 283 | 233 336
 * 516 936 1920, bottom 523 | 368 478 760 1264 2576.  A block of b products costs per vector
 * what a single one does on the frozen Hessian operator (nt_engine_freeze: a product is the
 * tangent and adjoint-tangent sweeps, GEMMs of N rows already; measured 29.4 ms for k = 1,
 * 28.5 ms per vector for k = 16, one thread), so b > 1 buys nothing but a cheaper
 * orthogonalization per vector, and the block Krylov space grows one degree per b products:
 * b = 2 meets 1.3 x ARPACK's products at the bottom (1.00 x) but not at the top (1.48 x),
 * b >= 4 at neither end, and none of them ARPACK's time.  With b = 1 the method needs fewer
 * products than ARPACK (it tests convergence after every product, not once per restart, and
 * locks converged pairs): 0.93 x top and 0.75-0.82 x bottom on the bench problem, 0.53-0.89 x
 * on 784-h-10 MLPs of n = 1600 to 25450 (1024 images), whose best times of 5-9 runs are
 * 0.72-1.04 x ARPACK's (bottom of n = 6370: 0.47 vs 0.65 s); on the bench problem the best
 * times of 2-4 runs on the loaded machine were 2.19 vs 2.94 s (top) and 12.05-15.15 vs
 * 11.20 s (bottom), within its noise; with the engine's lanes (after the merge of main,
 * c8544b3), best of 2: top 84 products and 2.84 s vs 78 and 2.74 s, bottom 298 and 16.22 s
 * vs 221 and 10.29 s.  Its Rayleigh-Ritz step after every product (dsyevr on a basis of
 * 60-90) costs more than a product of a small model: on the demo's (n = 547,
 * 178 samples) 71 vs 92 products but 0.02-0.04 vs 0.01 s; hence ARPACK below n = 5000. */
#include <float.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <arpack/arpack.h>
#include "noether.h"
#include "analysis.h"

/* order[i]: the index of the i-th largest (or smallest) of val (insertion sort, stable) */
void nt_eigen_order(const double *val, int n, int largest, int *order)
{
    for (int i = 0; i < n; i++) {
        int j = i;
        for (; j > 0 && (largest ? val[order[j - 1]] < val[i] : val[order[j - 1]] > val[i]); j--) order[j] = order[j - 1];
        order[j] = i;
    }
}

#define LANCZOS_SEED 0x4c414e43ULL   /* the fixed start vector: "LANC" */
#define LANCZOS_MAXITER 1000
#define LANCZOS_THICK_MIN_N 5000   /* from here on block_lanczos.c with b = 1 (the rule, above) */

static const char *dsaupd_reason(int info)
{
    switch (info) {
    case 1: return "maximum number of restarts taken";
    case 3: return "no shifts could be applied during a restart (increase ncv)";
    case -7: return "workspace too small";
    case -8: return "error from the tridiagonal eigensolver (LAPACK dsteqr)";
    case -9: return "starting vector is zero";
    case -9999: return "could not build a Lanczos factorization";
    default: return info < 0 ? "invalid argument" : "unknown";
    }
}

/* The dense path for nev >= n - 1: the same ordering and layout as ARPACK's. */
static int lanczos_dense(const nt_operator *op, int nev, int largest, double *values, double *vectors,
                         int *n_products, nt_error *err)
{
    const int64_t n = op->n;
    double *all = malloc(sizeof(double) * (size_t)n);
    double *U = vectors ? malloc(sizeof(double) * (size_t)(n * n)) : NULL;
    if (!all || (vectors && !U)) {
        free(all); free(U);
        return nt_fail(err, NT_EFAIL, "Lanczos (dense path): out of memory for n = %lld", (long long)n);
    }
    int rc = nt_eigen_dense(op, all, U, err);
    for (int i = 0; rc == NT_OK && i < nev; i++) {
        const int64_t src = largest ? n - 1 - i : i;
        values[i] = all[src];
        if (U) memcpy(vectors + (int64_t)i * n, U + src * n, sizeof(double) * (size_t)n);
    }
    if (n_products) *n_products = (int)n;
    free(all); free(U);
    return rc;
}

int nt_eigen_lanczos(const nt_operator *op, int nev, int largest, double tol, double *values,
                     double *vectors, int *n_products, nt_error *err)
{
    if (op->n >= LANCZOS_THICK_MIN_N && nev < op->n - 1) {   /* the rule (header): thick restart, single products */
        nt_block_lanczos_opts o = { .block = 1 };
        return nt_eigen_block_lanczos(op, nev, largest, tol, &o, values, vectors, n_products, err);
    }
    return nt_eigen_arpack(op, nev, largest, tol, values, vectors, n_products, err);
}

int nt_eigen_arpack(const nt_operator *op, int nev, int largest, double tol, double *values,
                    double *vectors, int *n_products, nt_error *err)
{
    const int64_t n64 = op->n;
    if (n_products) *n_products = 0;
    if (n64 < 1 || n64 > INT_MAX / 3)
        return nt_fail(err, NT_EINPUT, "Lanczos: dimension %lld out of range", (long long)n64);
    if (nev < 1 || nev > n64)
        return nt_fail(err, NT_EINPUT, "Lanczos: %d eigenvalues asked of a %lld-dimensional operator",
                       nev, (long long)n64);
    if (nev >= n64 - 1) return lanczos_dense(op, nev, largest, values, vectors, n_products, err);

    const a_int n = (a_int)n64;
    const a_int floor = largest ? 20 : 60;
    a_int ncv = 3 * nev + 10 > floor ? 3 * nev + 10 : floor;
    if (ncv > n) ncv = n;
    const a_int lworkl = ncv * (ncv + 8);
    const char *which = largest ? "LA" : "SA";
    double *resid = malloc(sizeof(double) * (size_t)n);
    double *V = malloc(sizeof(double) * (size_t)n * (size_t)ncv);      /* column-major n x ncv */
    double *workd = malloc(sizeof(double) * 3 * (size_t)n);
    double *workl = malloc(sizeof(double) * (size_t)lworkl);
    double *d = malloc(sizeof(double) * (size_t)nev);
    double *Z = vectors ? malloc(sizeof(double) * (size_t)n * (size_t)nev) : NULL;
    a_int *select = calloc((size_t)ncv, sizeof(a_int));   /* read by dseupd even with howmny "A" */
    int rc = NT_OK;
    if (!resid || !V || !workd || !workl || !d || (vectors && !Z) || !select) {
        rc = nt_fail(err, NT_EFAIL, "Lanczos: out of memory for n = %d, ncv = %d", (int)n, (int)ncv);
        goto done;
    }
    for (a_int i = 0; i < n; i++) resid[i] = 2 * nt_rand_uniform(LANCZOS_SEED, 0, (uint64_t)i) - 1;
    a_int iparam[11] = {0}, ipntr[11] = {0}, ido = 0, info = 1;   /* info = 1: resid is the start */
    iparam[0] = 1;                 /* exact shifts */
    iparam[2] = LANCZOS_MAXITER;   /* restarts */
    iparam[3] = 1;                 /* block size: ARPACK supports 1 only */
    iparam[6] = 1;                 /* mode 1 */
    if (tol <= 0) tol = DBL_EPSILON;
    int products = 0;
    for (;;) {
        dsaupd_c(&ido, "I", n, which, nev, tol, resid, ncv, V, n, iparam, ipntr, workd, workl, lworkl, &info);
        if (ido != 1 && ido != -1) break;
        rc = op->apply(op->ctx, 1, workd + ipntr[0] - 1, workd + ipntr[1] - 1, err);
        if (rc != NT_OK) goto done;
        products++;
    }
    if (n_products) *n_products = products;
    if (info != 0) {
        rc = nt_fail(err, NT_EFAIL, "ARPACK dsaupd (%s, nev %d, ncv %d, n %d): info %d, %s; %d of %d converged",
                     which, nev, (int)ncv, (int)n, (int)info, dsaupd_reason((int)info), (int)iparam[4], nev);
        goto done;
    }
    if (ido != 99) {
        rc = nt_fail(err, NT_EFAIL, "ARPACK dsaupd: unexpected request ido %d in mode 1", (int)ido);
        goto done;
    }
    dseupd_c(vectors != NULL, "A", select, d, Z ? Z : V, n, 0.0, "I", n, which, nev, tol, resid, ncv, V, n,
             iparam, ipntr, workd, workl, lworkl, &info);
    if (info != 0 || iparam[4] < nev) {
        rc = nt_fail(err, NT_EFAIL, "ARPACK dseupd (%s, nev %d): info %d, %d of %d converged", which, nev,
                     (int)info, (int)iparam[4], nev);
        goto done;
    }
    /* ARPACK returns the Ritz values in its own order: sort, largest or smallest first */
    int *order = malloc(sizeof(int) * (size_t)nev);
    if (!order) { rc = nt_fail(err, NT_EFAIL, "Lanczos: out of memory"); goto done; }
    nt_eigen_order(d, nev, largest, order);
    for (int i = 0; i < nev; i++) {
        values[i] = d[order[i]];
        if (vectors) memcpy(vectors + (int64_t)i * n, Z + (int64_t)order[i] * n, sizeof(double) * (size_t)n);
    }
    free(order);
done:
    free(resid); free(V); free(workd); free(workl); free(d); free(Z); free(select);
    return rc;
}
