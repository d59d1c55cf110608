/* density.c: the spectral density and the trace of a symmetric operator, matrix-free.
 *
 * Stochastic Lanczos quadrature (Golub & Meurant 2010; Ubaru, Chen & Saad, SIAM J. Matrix
 * Anal. Appl. 38(4), 2017).  For a unit vector q, the measure mu_q = sum_i (u_i^T q)^2
 * delta(x - lambda_i) has the Gauss quadrature given by m steps of Lanczos from q_1 = q:
 * with T_m = tridiag(beta, alpha, beta) = S diag(theta) S^T,
 *     q^T f(A) q = sum_i (u_i^T q)^2 f(lambda_i)  ~  sum_j tau_j^2 f(theta_j),  tau_j = S_1j,
 * exact for polynomials of degree <= 2m - 1.  For a Rademacher v (E v v^T = I), E mu_{v/|v|}
 * = (1/n) sum_i delta(x - lambda_i) since |v|^2 = n, so averaging over P probes gives nodes
 * theta_j with weights tau_j^2 / P.  Degree 0, 1, 2: sum w = 1; sum w theta = (1/P) sum
 * q^T A q = (1/P) sum v^T A v / n (Hutchinson's estimate of tr(A)/n); sum w theta^2 =
 * (1/P) sum e_1^T T^2 e_1 = (1/P) sum |A q|^2 (of tr(A^2)/n).  Full reorthogonalization
 * (classical Gram-Schmidt, twice: Giraud et al. 2005) keeps Q orthonormal, so no ghost
 * eigenvalues.  If the Krylov space is invariant after s < m steps (beta_s ~ 0), the
 * quadrature is exact with s nodes; the remaining m - s entries get weight 0.
 *
 * Probes are processed in blocks (up to op->block at once, within a memory budget), so a
 * blocked HVP does one call per Lanczos step for the whole block.
 *
 * Hutchinson (1989): tr(A) ~ (1/P) sum_p v_p^T A v_p, unbiased for Rademacher v_p with
 * variance 2 sum_{i != j} A_ij^2 per probe; exact for a diagonal A. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include <lapacke.h>
#include "noether.h"

#define SLQ_MEMORY (256.0 * 1024 * 1024)   /* bytes of Lanczos bases held at once */

/* Rademacher probe p: v_i = +1 if the low bit of nt_rand_u64(seed, p, i) is set, else -1. */
static void rademacher(int64_t n, uint64_t seed, uint64_t p, double *v)
{
    for (int64_t i = 0; i < n; i++) v[i] = (nt_rand_u64(seed, p, (uint64_t)i) & 1) ? 1.0 : -1.0;
}

int nt_slq(const nt_operator *op, int n_probes, int m, uint64_t seed, double *nodes, double *weights,
           nt_error *err)
{
    const int64_t n = op->n;
    if (n < 1 || n_probes < 1 || m < 1)
        return nt_fail(err, NT_EINPUT, "SLQ: need n, probes and steps >= 1 (n %lld, %d probes, %d steps)",
                       (long long)n, n_probes, m);
    const int s_max = m < n ? m : (int)n;   /* Lanczos cannot take more than n steps */
    int kb = op->block < 1 ? 1 : op->block;
    if (kb > n_probes) kb = n_probes;
    while (kb > 1 && (double)kb * s_max * n * sizeof(double) > SLQ_MEMORY) kb /= 2;
    double *Q = malloc(sizeof(double) * (size_t)kb * (size_t)s_max * (size_t)n);   /* kb bases, s_max x n */
    double *X = malloc(sizeof(double) * (size_t)kb * (size_t)n), *Y = malloc(sizeof(double) * (size_t)kb * (size_t)n);
    double *alpha = malloc(sizeof(double) * (size_t)kb * s_max), *beta = malloc(sizeof(double) * (size_t)kb * s_max);
    double *c = malloc(sizeof(double) * (size_t)s_max), *S = malloc(sizeof(double) * (size_t)s_max * s_max);
    double *scale = malloc(sizeof(double) * (size_t)kb);   /* per probe: max_j |alpha_j| + beta_j + beta_{j-1} <= |A| */
    int *taken = malloc(sizeof(int) * (size_t)kb), *row = malloc(sizeof(int) * (size_t)kb);
    int rc = NT_OK;
    if (!Q || !X || !Y || !alpha || !beta || !c || !S || !scale || !taken || !row) {
        rc = nt_fail(err, NT_EFAIL, "SLQ: out of memory for %d Lanczos bases of %d x %lld", kb, s_max, (long long)n);
        goto done;
    }
    const double inv_norm = 1 / sqrt((double)n);   /* |v| = sqrt(n) for a Rademacher v */
    for (int p0 = 0; p0 < n_probes && rc == NT_OK; p0 += kb) {
        const int k = n_probes - p0 < kb ? n_probes - p0 : kb;
        for (int b = 0; b < k; b++) {
            double *q = Q + (int64_t)b * s_max * n;
            rademacher(n, seed, (uint64_t)(p0 + b), q);
            cblas_dscal((int)n, inv_norm, q, 1);
            taken[b] = 0;   /* 0 while running, then the number of Lanczos steps */
            scale[b] = 0;
        }
        for (int j = 0; j < s_max; j++) {   /* step j: w = A q_j for every running probe, one call */
            int ka = 0;
            for (int b = 0; b < k; b++)
                if (!taken[b]) {
                    memcpy(X + (int64_t)ka * n, Q + ((int64_t)b * s_max + j) * n, sizeof(double) * (size_t)n);
                    row[ka++] = b;
                }
            if (ka == 0) break;
            rc = op->apply(op->ctx, ka, X, Y, err);
            if (rc != NT_OK) goto done;
            for (int r = 0; r < ka; r++) {
                const int b = row[r];
                double *Qb = Q + (int64_t)b * s_max * n, *w = Y + (int64_t)r * n;
                double *al = alpha + (int64_t)b * s_max, *be = beta + (int64_t)b * s_max;
                al[j] = cblas_ddot((int)n, Qb + (int64_t)j * n, 1, w, 1);
                for (int pass = 0; pass < 2; pass++) {   /* w -= Q_j (Q_j^T w): the three-term recurrence and more */
                    cblas_dgemv(CblasRowMajor, CblasNoTrans, j + 1, (int)n, 1.0, Qb, (int)n, w, 1, 0.0, c, 1);
                    cblas_dgemv(CblasRowMajor, CblasTrans, j + 1, (int)n, -1.0, Qb, (int)n, c, 1, 1.0, w, 1);
                }
                be[j] = cblas_dnrm2((int)n, w, 1);
                scale[b] = fmax(scale[b], fabs(al[j]) + be[j] + (j > 0 ? be[j - 1] : 0));
                if (j + 1 == s_max || be[j] <= 1e-12 * scale[b]) {   /* m steps, or an invariant subspace */
                    taken[b] = j + 1;
                    continue;
                }
                cblas_dcopy((int)n, w, 1, Qb + (int64_t)(j + 1) * n, 1);
                cblas_dscal((int)n, 1 / be[j], Qb + (int64_t)(j + 1) * n, 1);
            }
        }
        for (int b = 0; b < k; b++) {   /* T's eigenpairs: nodes theta_j, weights S_1j^2 / P */
            const int s = taken[b];
            double *al = alpha + (int64_t)b * s_max, *be = beta + (int64_t)b * s_max;
            double *x = nodes + (int64_t)(p0 + b) * m, *wt = weights + (int64_t)(p0 + b) * m;
            lapack_int info = LAPACKE_dstev(LAPACK_COL_MAJOR, 'V', s, al, be, S, s);
            if (info != 0) {
                rc = nt_fail(err, NT_EFAIL, "SLQ: LAPACK dstev failed on probe %d (info %d)", p0 + b, (int)info);
                break;
            }
            for (int j = 0; j < m; j++) {   /* column j of S (column-major) starts at S + j s */
                x[j] = j < s ? al[j] : al[0];
                wt[j] = j < s ? S[(int64_t)j * s] * S[(int64_t)j * s] / n_probes : 0.0;
            }
        }
    }
done:
    free(Q); free(X); free(Y); free(alpha); free(beta); free(c); free(S); free(scale); free(taken); free(row);
    return rc;
}

void nt_density_grid(const double *nodes, const double *weights, int n_nodes, double sigma,
                     const double *x, int npts, double *rho)
{
    const double norm = 1 / (sigma * sqrt(2 * M_PI));
    for (int i = 0; i < npts; i++) {
        double s = 0;
        for (int j = 0; j < n_nodes; j++) {
            if (weights[j] == 0) continue;
            const double t = (x[i] - nodes[j]) / sigma;
            s += weights[j] * exp(-0.5 * t * t);
        }
        rho[i] = sigma > 0 ? norm * s : NAN;
    }
}

int nt_hutchinson(const nt_operator *op, int n_probes, uint64_t seed, double *trace, double *std_error,
                  nt_error *err)
{
    const int64_t n = op->n;
    if (std_error) *std_error = NAN;
    *trace = NAN;
    if (n < 1 || n_probes < 1)
        return nt_fail(err, NT_EINPUT, "Hutchinson: %lld probes on an operator of dimension %lld", (long long)n_probes,
                       (long long)n);
    const int kb = op->block < 1 ? 1 : (op->block > n_probes ? n_probes : op->block);
    double *V = malloc(sizeof(double) * (size_t)kb * (size_t)n), *AV = malloc(sizeof(double) * (size_t)kb * (size_t)n);
    double *t = malloc(sizeof(double) * (size_t)n_probes);
    int rc = V && AV && t ? NT_OK : nt_fail(err, NT_EFAIL, "Hutchinson: out of memory (n = %lld)", (long long)n);
    for (int p0 = 0; p0 < n_probes && rc == NT_OK; p0 += kb) {
        const int k = n_probes - p0 < kb ? n_probes - p0 : kb;
        for (int b = 0; b < k; b++) rademacher(n, seed, (uint64_t)(p0 + b), V + (int64_t)b * n);
        rc = op->apply(op->ctx, k, V, AV, err);
        if (rc != NT_OK) break;
        for (int b = 0; b < k; b++) t[p0 + b] = cblas_ddot((int)n, V + (int64_t)b * n, 1, AV + (int64_t)b * n, 1);
    }
    if (rc != NT_OK) { free(V); free(AV); free(t); return rc; }
    double mean = 0, shift = 0, ss = 0;   /* variance of t - t_0: exactly 0 when all samples agree */
    for (int p = 0; p < n_probes; p++) { mean += t[p]; shift += t[p] - t[0]; }
    mean /= n_probes;
    shift /= n_probes;
    for (int p = 0; p < n_probes; p++) ss += (t[p] - t[0] - shift) * (t[p] - t[0] - shift);
    if (std_error && n_probes > 1) *std_error = sqrt(ss / (n_probes - 1) / n_probes);
    free(V); free(AV); free(t);
    *trace = mean;
    return NT_OK;
}
