/* fixed.c: fixed points of discrete symmetries (docs/theory.md §4).  For a built-in swap or
 * sign flip T (an orthogonal involution) Fix(T)^perp is spanned by the orthonormal vectors
 * (e_x - T e_x)/|e_x - T e_x| for x among the coordinates of unit a: (e_a - e_b)/sqrt 2 for
 * a swap, e_x for a sign flip.  A start on Fix(T) stays there under GD and SGD (T g = g);
 * a small step off it evolves, to first order, by delta' = (I - lr H_gamma|perp) delta, so
 * the symmetric solution is stable along the breaking directions iff every eigenvalue of
 * H_gamma restricted to Fix(T)^perp lies in (0, 2/lr). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include <lapacke.h>
#include "../transform/units.h"

/* the stream of init->seed that nt_start_fixed's perturbation draws from (nt_init_params
 * draws tensor t's values from stream t) */
#define PERTURB_STREAM 4242

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
                         const nt_transform *t, double *lam, double *coef, nt_error *err)
{
    const int64_t d = m->d;
    const int dim = nt_breaking_dim(m, t);
    if (dim == 0) return NT_OK;
    double *O = malloc(sizeof(double) * dim * d), *HO = malloc(sizeof(double) * dim * d);
    double *M = malloc(sizeof(double) * dim * dim);
    int rc = O && HO && M ? NT_OK
                          : nt_fail(err, NT_EFAIL, "out of memory for the breaking subspace of %s (%d directions)",
                                    t->name, dim);
    if (rc == NT_OK) {
        nt_breaking_basis(m, t, O);
        rc = nt_hvp(e, theta, ds, dim, O, HO, NULL, NULL, err);
    }
    if (rc != NT_OK) {
        free(O); free(HO); free(M);
        return rc;
    }
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
    return NT_OK;
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
        for (int64_t i = 0; i < d; i++) r[i] = nt_rand_normal(init->seed, PERTURB_STREAM, (uint64_t)i);
        nt_tr_apply_T(m, first, r, Tx);
        for (int64_t i = 0; i < d; i++) r[i] = 0.5 * (r[i] - Tx[i]);
        double s = init->perturb / nt_norm2(d, r);
        for (int64_t i = 0; i < d; i++) theta[i] += s * r[i];
        free(r);
    }
    free(Tx);
    return NT_OK;
}

/* What a spec's theta is when no parameter file is given (docs/interface.md: "Without
 * --params, theta is the spec's seeded initialization"): the seeded draw of init, then,
 * when init.fixed_point names discrete symmetries, its projection onto the intersection of
 * their Fix(T) and the step of `perturb` off the first (nt_start_fixed, docs/theory.md §4). */
int nt_spec_theta(const nt_spec *spec, const nt_transform *list, int n, double *theta, nt_error *err)
{
    nt_init_params(&spec->model, &spec->init, theta);
    if (!spec->init.n_fixed) return NT_OK;
    nt_transform *own = NULL;
    int n_own = 0, rc = NT_OK;
    if (!list) {   /* the fixed points are the built-in catalogue's swaps and sign flips */
        rc = nt_catalogue(&spec->model, &own, &n_own);
        if (rc) return nt_fail(err, NT_EFAIL, "%s: the catalogue of the model could not be built", spec->path);
        list = own;
        n = n_own;
    }
    rc = nt_start_fixed(&spec->model, list, n, &spec->init, theta, err);
    nt_transforms_free(own, n_own);
    if (rc && err) {   /* name the file */
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        nt_fail(err, rc, "%s: %s", spec->path, msg);
    }
    return rc;
}
