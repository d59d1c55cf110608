/* independent.c: how many of a catalogue's conserved quantities are independent.  Entries
 * can overlap: in a linear network the rescaling of unit j, Q = (|w_j|^2 + b_j^2 - |a_j|^2)/2,
 * is the diagonal entry (j, j) of gl(n)'s W_l W_l^T + b_l b_l^T - W_{l+1}^T W_{l+1}, so a raw
 * count overstates.  Quantities Q_i (docs/theory.md (F2): symmetric A_i, B = 0) are functionally
 * independent near theta when their gradients xi_i(theta) = A_i theta + c_i are linearly
 * independent; at a generic (random) theta the rank of {xi_i(theta)} is the number of
 * independent quantities.  It is computed from the Gram matrix of the normalized gradients,
 * G_ij = u_i^T u_j with u_i = xi_i / |xi_i| (unit diagonal, so no quantity's scale dominates),
 * built sparse over each xi's support (the generators' moves touch few coordinates), and its
 * eigenvalues (LAPACK dsyevd): rank = #{lambda > tol lambda_max}.  G squares the singular
 * values of [u_i], so tol 1e-10 on lambda is 1e-5 on them: far above G's round-off
 * (~ nq eps lambda_max) and far below the spread of generic independent gradients.
 * Beyond NT_INDEPENDENT_MAX quantities (a wide linear layer's gl(n): n(n+1)/2 of them) the
 * k x k Gram matrix and its O(k^3) eigenvalues are not worth it: -1, not computed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <lapacke.h>
#include "units.h"

/* theta NULL: the seed ("noether" in ASCII) and stream of the generic point's N(0, 1) entries */
#define GENERIC_SEED 0x6e6f6574686572ULL
#define GENERIC_STREAM 13

/* the sparse form of one gradient: its nonzero coordinates and values */
typedef struct { int64_t nnz, *at; double *v; } sparse;

int nt_catalogue_independent(const nt_model *m, const nt_transform *list, int n, const double *theta, double tol,
                             int *listed)
{
    const int64_t d = m->d;
    nt_quantity *q = NULL;
    int nq = 0, k = 0, rank = 0;
    nt_ledger_quantities(m, list, n, &q, &nq);
    for (int i = 0; i < nq; i++) k += !q[i].equivariance;
    if (listed) *listed = k;
    if (k > NT_INDEPENDENT_MAX) {   /* the Gram matrix would be too large: not computed */
        free(q);
        return -1;
    }
    k = 0;
    double *th = malloc(sizeof(double) * (size_t)d), *xi = malloc(sizeof(double) * (size_t)d);
    double *x2 = malloc(sizeof(double) * (size_t)d), *w = calloc((size_t)d, sizeof(double));
    for (int64_t j = 0; j < d; j++)   /* NULL: a seeded generic point, N(0, 1) entries */
        th[j] = theta ? theta[j] : nt_rand_normal(GENERIC_SEED, GENERIC_STREAM, (uint64_t)j);
    sparse *u = calloc((size_t)nq + 1, sizeof *u);
    for (int i = 0; i < nq; i++) {
        if (q[i].equivariance) continue;   /* tracked, not conserved */
        nt_quantity_gradient(m, list, &q[i], th, xi, x2);
        sparse *s = &u[k++];
        double norm = 0;
        for (int64_t j = 0; j < d; j++)
            if (xi[j] != 0) { s->nnz++; norm += xi[j] * xi[j]; }
        s->at = malloc(sizeof(int64_t) * (size_t)(s->nnz + 1));
        s->v = malloc(sizeof(double) * (size_t)(s->nnz + 1));
        norm = sqrt(norm);
        for (int64_t j = 0, r = 0; j < d; j++)
            if (xi[j] != 0) { s->at[r] = j; s->v[r++] = xi[j] / norm; }
    }
    double *G = calloc((size_t)k * (size_t)k + 1, sizeof(double)), *lam = malloc(sizeof(double) * (size_t)(k + 1));
    for (int i = 0; i < k; i++) {   /* G_ij = u_i^T u_j: u_i scattered into w, dotted with each sparse u_j */
        for (int64_t r = 0; r < u[i].nnz; r++) w[u[i].at[r]] = u[i].v[r];
        for (int j = 0; j <= i; j++) {
            double s = 0;
            for (int64_t r = 0; r < u[j].nnz; r++) s += w[u[j].at[r]] * u[j].v[r];
            G[(int64_t)i * k + j] = G[(int64_t)j * k + i] = s;
        }
        for (int64_t r = 0; r < u[i].nnz; r++) w[u[i].at[r]] = 0;
    }
    if (k > 0 && LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'N', 'U', k, G, k, lam) == 0)
        for (int i = 0; i < k; i++) rank += lam[i] > tol * lam[k - 1];   /* ascending: lam[k-1] the largest */
    for (int i = 0; i < k; i++) { free(u[i].at); free(u[i].v); }
    free(u); free(G); free(lam); free(q); free(th); free(xi); free(x2); free(w);
    return rank;
}
