/* views.c: the Hessian as an operator for the spectral routines, and the symmetry-aware
 * views of its spectrum (docs/theory.md §3-§4):
 *   - the orbit span of the continuous symmetries, span{xi_i(theta)}: an orthonormal basis Q
 *     of it (dense SVD) deflates the operator, x -> P H P x with P = I - Q^T Q (its rank and
 *     what it predicts come cheaper from orbit.c);
 *   - the S_n sector of a hidden layer: at a point where its n units are equal (the
 *     projection onto Fix(S_n), every unit replaced by the units' mean), H maps the
 *     breaking subspace to itself and, by S_n's standard representation, its eigenvalues
 *     come in groups of n - 1.  The breaking subspace has the orthonormal Helmert basis
 *     h_{k,x} = (sum_{j<k} e_{j,x} - k e_{k,x}) / sqrt(k (k + 1)), k = 1..n-1, for every
 *     coordinate x of a unit (its row of W_l, its bias, its column of W_{l+1}). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include <lapacke.h>
#include "noether.h"
#include "../transform/units.h"

/* ---- the Hessian operator ------------------------------------------------------------ */

/* x (length d) <- P x = x - Q^T (Q x) */
static void deflate(const nt_hessian_ctx *h, double *x)
{
    for (int i = 0; i < h->r; i++) {
        const double *q = h->Q + (int64_t)i * h->d;
        cblas_daxpy((int)h->d, -cblas_ddot((int)h->d, q, 1, x, 1), q, 1, x, 1);
    }
}

static int hessian_apply(void *ctx, int k, const double *X, double *Y, nt_error *err)
{
    nt_hessian_ctx *h = ctx;
    const int64_t d = h->d, n = h->n;
    for (int j0 = 0; j0 < k; j0 += h->block) {
        int kk = k - j0 < h->block ? k - j0 : h->block;
        memset(h->X, 0, sizeof(double) * (size_t)(kk * d));
        for (int j = 0; j < kk; j++) {   /* embed, deflate */
            memcpy(h->X + j * d + h->off, X + (int64_t)(j0 + j) * n, sizeof(double) * (size_t)n);
            if (h->Q) deflate(h, h->X + j * d);
        }
        int rc = nt_hvp(h->e, h->theta, h->ds, kk, h->X, h->Y, NULL, NULL, err);
        if (rc != NT_OK) return rc;
        for (int j = 0; j < kk; j++) {   /* deflate, restrict */
            if (h->Q) deflate(h, h->Y + j * d);
            memcpy(Y + (int64_t)(j0 + j) * n, h->Y + j * d + h->off, sizeof(double) * (size_t)n);
        }
    }
    return NT_OK;
}

int nt_hessian_operator(nt_hessian_ctx *h, nt_operator *op, nt_engine *e, const nt_model *m, const nt_dataset *ds,
                        const double *theta, int64_t off, int64_t n, const double *Q, int r, nt_error *err)
{
    *h = (nt_hessian_ctx){ .e = e, .ds = ds, .theta = theta, .d = m->d, .off = off, .n = n, .Q = Q, .r = r,
                           .block = nt_engine_k(e) };
    *op = (nt_operator){ .n = n, .block = h->block, .apply = hessian_apply, .ctx = h };
    if (off < 0 || n < 1 || off + n > m->d)
        return nt_fail(err, NT_EINPUT, "Hessian operator: coordinates [%lld, %lld) outside [0, %lld)", (long long)off,
                       (long long)(off + n), (long long)m->d);
    h->X = malloc(sizeof(double) * (size_t)(h->block * m->d));
    h->Y = malloc(sizeof(double) * (size_t)(h->block * m->d));
    if (!h->X || !h->Y) {
        free(h->X); free(h->Y);
        h->X = h->Y = NULL;
        return nt_fail(err, NT_EFAIL, "Hessian operator: out of memory for %d vectors of %lld", h->block,
                       (long long)m->d);
    }
    nt_engine_freeze(e, theta, ds, 2.0 * (1 << 30));   /* theta is fixed for the operator's life */
    return NT_OK;
}

void nt_hessian_operator_free(nt_hessian_ctx *h)
{
    nt_engine_thaw(h->e);
    free(h->X);
    free(h->Y);
}

/* ---- the orbit span -------------------------------------------------------------------- */

int nt_orbit_basis(const nt_model *m, const nt_transform *list, int n, const double *theta, double tol,
                   double **Q, double **sv, int *n_gen)
{
    const int64_t d = m->d;
    int g = 0;
    for (int t = 0; t < n; t++) if (!list[t].discrete && !list[t].equivariance) g += list[t].generators;
    *n_gen = g;
    *Q = NULL;
    *sv = calloc((size_t)g + 1, sizeof(double));
    if (g == 0) return 0;
    double *X = malloc(sizeof(double) * (size_t)(g * d)), *superb = malloc(sizeof(double) * (size_t)(g + 1));
    int row = 0;
    for (int t = 0; t < n; t++) {
        if (list[t].discrete || list[t].equivariance) continue;
        for (int i = 0; i < list[t].generators; i++) nt_tr_xi(m, &list[t], i, theta, X + (int64_t)(row++) * d);
    }
    /* X = U diag(s) V^T (LAPACK dgesvd, the rows of V^T overwriting X): the basis is the rows
     * of V^T whose singular values exceed tol * s_max.  (Not the Gram matrix X X^T: squaring
     * would blur singular values below sqrt(eps) s_max.) */
    int k = g < d ? g : (int)d;
    LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'N', 'O', g, (int)d, X, (int)d, *sv, NULL, 1, NULL, (int)d, superb);
    int rank = 0;
    while (rank < k && (*sv)[rank] > tol * (*sv)[0]) rank++;
    *Q = realloc(X, sizeof(double) * (size_t)((rank ? rank : 1) * d));
    free(superb);
    return rank;
}

/* ---- the S_n sector of a hidden layer --------------------------------------------------- */

int nt_sn_sector_dim(const nt_model *m, int layer)
{
    nt_dense D[NT_MAX_LAYERS];
    int nd = nt_dense_layers(m, D);
    if (layer < 1 || layer >= nd) return 0;
    nt_range r[3];
    nt_unit_ranges(D, layer, 0, r);
    return (int)((D[layer - 1].n_out - 1) * (r[0].count + r[1].count + r[2].count));
}

/* the coordinate of slot x (over the three ranges) of unit j */
static int64_t unit_coord(const nt_dense *D, int layer, int j, int64_t x)
{
    nt_range r[3];
    nt_unit_ranges(D, layer, j, r);
    for (int k = 0; k < 3; k++) {
        if (x < r[k].count) return r[k].start + x * r[k].stride;
        x -= r[k].count;
    }
    return -1;
}

int nt_sn_sector(nt_engine *e, const nt_model *m, const nt_dataset *ds, const double *theta, int layer,
                 int project, double *theta_sym, double *lam, nt_error *err)
{
    nt_dense D[NT_MAX_LAYERS];
    nt_dense_layers(m, D);
    const int64_t d = m->d;
    const int dim = nt_sn_sector_dim(m, layer);
    if (dim == 0) return NT_OK;
    const int n = D[layer - 1].n_out;
    const int64_t u = dim / (n - 1);
    /* theta on Fix(S_n): every unit replaced by the units' mean */
    memcpy(theta_sym, theta, sizeof(double) * (size_t)d);
    for (int64_t x = 0; project && x < u; x++) {
        double mean = 0;
        for (int j = 0; j < n; j++) mean += theta[unit_coord(D, layer, j, x)];
        mean /= n;
        for (int j = 0; j < n; j++) theta_sym[unit_coord(D, layer, j, x)] = mean;
    }
    /* the Helmert basis of the breaking subspace, rows of B (dim x d) */
    double *B = calloc((size_t)dim * (size_t)d, sizeof(double)), *HB = malloc(sizeof(double) * (size_t)dim * (size_t)d);
    double *M = malloc(sizeof(double) * (size_t)dim * dim);
    if (!B || !HB || !M) {
        free(B); free(HB); free(M);
        return nt_fail(err, NT_EFAIL, "out of memory for the S_n sector of layer %d (%d directions)", layer, dim);
    }
    for (int k = 1; k < n; k++)
        for (int64_t x = 0; x < u; x++) {
            double *b = B + ((int64_t)(k - 1) * u + x) * d, c = 1 / sqrt((double)k * (k + 1));
            for (int j = 0; j < k; j++) b[unit_coord(D, layer, j, x)] = c;
            b[unit_coord(D, layer, k, x)] = -k * c;
        }
    int rc = nt_hvp(e, theta_sym, ds, dim, B, HB, NULL, NULL, err);
    if (rc != NT_OK) {
        free(B); free(HB); free(M);
        return rc;
    }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, dim, dim, (int)d, 1.0, B, (int)d, HB, (int)d, 0.0, M, dim);
    for (int i = 0; i < dim; i++)   /* symmetrize against round-off */
        for (int j = 0; j < i; j++) M[i * dim + j] = M[j * dim + i] = 0.5 * (M[i * dim + j] + M[j * dim + i]);
    LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'N', 'U', dim, M, dim, lam);
    free(B); free(HB); free(M);
    return NT_OK;
}

int nt_multiplicities(const double *lam, int n, double tol, int *mult)
{
    int groups = 0;
    for (int i = 0; i < n;) {
        int j = i + 1;
        while (j < n && lam[j] - lam[j - 1] <= tol) j++;
        mult[groups++] = j - i;
        i = j;
    }
    return groups;
}
