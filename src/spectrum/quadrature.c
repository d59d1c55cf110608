/* quadrature.c: the spectral density and the trace, matrix-free.
 *   Stochastic Lanczos quadrature (Ubaru, Chen & Saad 2017): for each Rademacher probe v,
 *   m Lanczos steps from q_1 = v/|v| (full reorthogonalization) give a tridiagonal T whose
 *   eigenpairs (theta_j, s_j) are a Gauss quadrature of the spectral measure of v:
 *   v^T f(A) v / |v|^2 ~ sum_j s_j(1)^2 f(theta_j).  Averaged over P probes, the nodes
 *   theta_j with weights s_j(1)^2 / P estimate the density (1/n) sum_i delta(x - lambda_i);
 *   its first two moments are exactly the Hutchinson estimates of tr(A)/n and tr(A^2)/n
 *   from the same probes (e_1^T T e_1 = q_1^T A q_1, e_1^T T^2 e_1 = |A q_1|^2).
 *   Hutchinson: tr(A) ~ (1/P) sum_p v_p^T A v_p with Rademacher v_p. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include <lapacke.h>
#include "spectrum.h"

static void rademacher(int64_t n, uint64_t seed, uint64_t probe, double *v)
{
    for (int64_t i = 0; i < n; i++) v[i] = (nt_rand_u64(seed, probe, (uint64_t)i) & 1) ? 1.0 : -1.0;
}

int nt_slq(const nt_operator *op, int n_probes, int m, uint64_t seed, double *nodes, double *weights,
           nt_error *err)
{
    const int64_t n = op->n;
    if (m > n) m = (int)n;
    double *Q = malloc(sizeof(double) * (size_t)(m + 1) * n), *w = malloc(sizeof(double) * n);
    double *alpha = malloc(sizeof(double) * m), *beta = malloc(sizeof(double) * m);
    double *Z = malloc(sizeof(double) * (size_t)m * m);
    int rc = NT_OK;
    for (int p = 0; p < n_probes && !rc; p++) {
        double *out_x = nodes + (int64_t)p * m, *out_w = weights + (int64_t)p * m;
        rademacher(n, seed, (uint64_t)p, Q);
        cblas_dscal((int)n, 1 / sqrt((double)n), Q, 1);
        int steps = 0;
        for (int j = 0; j < m; j++) {   /* w = A q_j - beta_{j-1} q_{j-1}, reorthogonalized */
            op->apply(op->ctx, 1, Q + (int64_t)j * n, w);
            alpha[j] = cblas_ddot((int)n, w, 1, Q + (int64_t)j * n, 1);
            for (int pass = 0; pass < 2; pass++)
                for (int i = 0; i <= j; i++)
                    cblas_daxpy((int)n, -cblas_ddot((int)n, w, 1, Q + (int64_t)i * n, 1), Q + (int64_t)i * n, 1, w, 1);
            steps = j + 1;
            beta[j] = nt_norm2(n, w);
            if (j + 1 == m || beta[j] <= 1e-12 * fabs(alpha[j]) + 1e-300) break;   /* breakdown: exact */
            memcpy(Q + (int64_t)(j + 1) * n, w, sizeof(double) * n);
            cblas_dscal((int)n, 1 / beta[j], Q + (int64_t)(j + 1) * n, 1);
        }
        /* eigenpairs of T (alpha on the diagonal, beta off it) */
        lapack_int info = LAPACKE_dstev(LAPACK_ROW_MAJOR, 'V', steps, alpha, beta, Z, m);
        if (info != 0) { rc = nt_fail(err, NT_EFAIL, "LAPACK dstev failed (info %d)", (int)info); break; }
        for (int j = 0; j < m; j++) {
            out_x[j] = j < steps ? alpha[j] : 0;
            out_w[j] = j < steps ? Z[j] * Z[j] / n_probes : 0;   /* first component of eigenvector j */
        }
    }
    free(Q); free(w); free(alpha); free(beta); free(Z);
    return rc;
}

void nt_density_grid(const double *nodes, const double *weights, int n_nodes, double sigma,
                     const double *x, int npts, double *rho)
{
    const double c = 1 / (sigma * sqrt(2 * M_PI));
    for (int i = 0; i < npts; i++) {
        double s = 0;
        for (int j = 0; j < n_nodes; j++) {
            double t = (x[i] - nodes[j]) / sigma;
            s += weights[j] * exp(-0.5 * t * t);
        }
        rho[i] = c * s;
    }
}

double nt_hutchinson(const nt_operator *op, int n_probes, uint64_t seed, double *std_error)
{
    const int64_t n = op->n;
    const int kb = op->block > 0 ? op->block : 1;
    double *V = malloc(sizeof(double) * (size_t)(kb * n)), *AV = malloc(sizeof(double) * (size_t)(kb * n));
    double sum = 0, sq = 0;
    for (int p0 = 0; p0 < n_probes; p0 += kb) {
        int k = n_probes - p0 < kb ? n_probes - p0 : kb;
        for (int j = 0; j < k; j++) rademacher(n, seed, (uint64_t)(p0 + j), V + (int64_t)j * n);
        op->apply(op->ctx, k, V, AV);
        for (int j = 0; j < k; j++) {
            double t = cblas_ddot((int)n, V + (int64_t)j * n, 1, AV + (int64_t)j * n, 1);
            sum += t;
            sq += t * t;
        }
    }
    double mean = sum / n_probes;
    if (std_error)
        *std_error = n_probes > 1 ? sqrt(fmax(sq / n_probes - mean * mean, 0) * n_probes / (n_probes - 1) / n_probes) : NAN;
    free(V); free(AV);
    return mean;
}
