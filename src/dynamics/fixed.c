/* fixed.c: fixed points of discrete symmetries (docs/theory.md §4).  For a built-in swap or
 * sign flip T (an orthogonal involution) Fix(T)^perp is spanned by the orthonormal vectors
 * (e_x - T e_x)/|e_x - T e_x| for x among the coordinates of unit a: (e_a - e_b)/sqrt 2 for
 * a swap, e_x for a sign flip.  A start on Fix(T) stays there under GD and SGD (T g = g);
 * a small step off it evolves, to first order, by delta' = (I - lr H_gamma|perp) delta, so
 * the symmetric solution is stable along the breaking directions iff every eigenvalue of
 * H_gamma restricted to Fix(T)^perp lies in (0, 2/lr). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include <lapacke.h>
#include "../transform/units.h"

int nt_breaking_dim(const nt_model *m, const nt_transform *t)
{
    if (t->kind != NT_TR_SWAP && t->kind != NT_TR_SIGN_FLIP) return 0;
    nt_dense D[NT_MAX_LAYERS];
    nt_dense_layers(m, D);
    nt_range r[3];
    nt_unit_ranges(D, t->layer, t->a, r);
    return (int)(r[0].count + r[1].count + r[2].count);
}

/* the orthonormal basis of Fix(T)^perp as rows of O (dim x d) */
void nt_breaking_basis(const nt_model *m, const nt_transform *t, double *O)
{
    nt_dense D[NT_MAX_LAYERS];
    nt_dense_layers(m, D);
    nt_range r[3];
    nt_unit_ranges(D, t->layer, t->a, r);
    const int64_t d = m->d;
    double *e = calloc((size_t)d, sizeof(double));
    int row = 0;
    for (int k = 0; k < 3; k++)
        for (int64_t j = 0; j < r[k].count; j++, row++) {
            int64_t x = r[k].start + j * r[k].stride;
            double *o = O + (int64_t)row * d;
            e[x] = 1;
            nt_tr_apply_T(m, t, e, o);
            e[x] = 0;
            for (int64_t i = 0; i < d; i++) o[i] = -o[i];
            o[x] += 1;
            double nrm = nt_norm2(d, o);
            for (int64_t i = 0; i < d; i++) o[i] /= nrm;
        }
    free(e);
}

int nt_breaking_spectrum(nt_engine *e, const nt_model *m, const nt_dataset *ds, const double *theta,
                         const nt_transform *t, double *lam, double *coef)
{
    const int64_t d = m->d;
    const int dim = nt_breaking_dim(m, t);
    if (dim == 0) return 0;
    double *O = malloc(sizeof(double) * dim * d), *HO = malloc(sizeof(double) * dim * d);
    double *M = malloc(sizeof(double) * dim * dim);
    nt_breaking_basis(m, t, O);
    nt_hvp(e, theta, ds, dim, O, HO, NULL);
    for (int i = 0; i < dim; i++)   /* O H O^T, symmetrized against round-off */
        for (int j = 0; j <= i; j++) {
            double a = 0, b = 0;
            for (int64_t x = 0; x < d; x++) { a += O[i * d + x] * HO[j * d + x]; b += O[j * d + x] * HO[i * d + x]; }
            M[i * dim + j] = M[j * dim + i] = 0.5 * (a + b);
        }
    LAPACKE_dsyev(LAPACK_ROW_MAJOR, coef ? 'V' : 'N', 'U', dim, M, dim, lam);
    for (int i = 0; coef && i < dim; i++) {   /* c_i = u_i^T O theta; column i of M is u_i */
        double c = 0;
        for (int j = 0; j < dim; j++) c += M[j * dim + i] * cblas_ddot((int)d, O + j * d, 1, theta, 1);
        coef[i] = c;
    }
    free(O); free(HO); free(M);
    return dim;
}

int nt_start_fixed(const nt_model *m, const nt_transform *list, int n, const nt_init *init,
                   double *theta, nt_error *err)
{
    const int64_t d = m->d;
    double *Tx = malloc(sizeof(double) * d);
    const nt_transform *first = NULL;
    /* theta onto the intersection of the Fix(T): alternating orthogonal projections
     * P = (I + T)/2 (T orthogonal), which converge to the projection onto the intersection
     * (von Neumann); one sweep is exact when the sets are one or commute */
    const nt_transform *t[NT_MAX_FIXED];
    for (int f = 0; f < init->n_fixed; f++) {
        t[f] = NULL;
        for (int i = 0; i < n && !t[f]; i++) if (!strcmp(list[i].name, init->fixed_point[f])) t[f] = &list[i];
        if (!t[f] || !nt_breaking_dim(m, t[f])) {
            free(Tx);
            return nt_fail(err, NT_EINPUT, "init.fixed_point[%d]: '%s' is not a swap or sign flip of this model "
                           "(see noether symmetries)", f, init->fixed_point[f]);
        }
        if (!first) first = t[f];
    }
    for (int sweep = 0; sweep < 100000 && init->n_fixed; sweep++) {
        double moved = 0;
        for (int f = 0; f < init->n_fixed; f++) {
            nt_tr_apply_T(m, t[f], theta, Tx);
            for (int64_t i = 0; i < d; i++) {
                double p = 0.5 * (theta[i] + Tx[i]);
                moved = fmax(moved, fabs(p - theta[i]));
                theta[i] = p;
            }
        }
        if (moved <= 1e-17 * nt_norm2(d, theta)) break;
    }
    if (first && init->perturb > 0) {   /* (r - T r)/2 lies in Fix(T)^perp */
        double *r = malloc(sizeof(double) * d);
        for (int64_t i = 0; i < d; i++) r[i] = nt_rand_normal(init->seed, 4242, (uint64_t)i);
        nt_tr_apply_T(m, first, r, Tx);
        for (int64_t i = 0; i < d; i++) r[i] = 0.5 * (r[i] - Tx[i]);
        double s = init->perturb / nt_norm2(d, r);
        for (int64_t i = 0; i < d; i++) theta[i] += s * r[i];
        free(r);
    }
    free(Tx);
    return NT_OK;
}
