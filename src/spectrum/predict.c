/* predict.c: what the symmetries predict beside the spectrum of H_gamma, for
 * nt_spectrum_analyse (docs/theory.md §3-§4):
 *   - flat: the orbit span (orbit.c) and the eigenvalues a critical point of L_gamma must
 *     have, each beside how many the whole spectrum has there (within 1e-9 of its scale,
 *     §6); (S1gamma) on random combinations; per generator |H xi| against its value by
 *     (S1gamma) with B = 0, |-A^T g_gamma + gamma (xi + A^T theta)|;
 *   - sharp: a bias-free k-homogeneous model's radial curvature against its closed form;
 *   - sectors: the S_n sector of each hidden layer (multiplicity n - 1, found as the gcd of
 *     the group sizes) and each mirror's stability margin;
 *   - the gradient-Hessian alignment of each scale-invariant block. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include "noether.h"
#include "analysis.h"

/* the seed of nt_orbit_s1_check's random combinations of the generators (and of its random
 * direction v for s_H) in the flat view */
#define S1_SEED 0x51

/* the symmetry generators (continuous, B = 0) of list */
static int symmetry_generators(const nt_transform *list, int n)
{
    int c = 0;
    for (int t = 0; t < n; t++) c += !list[t].discrete && !list[t].equivariance ? list[t].generators : 0;
    return c;
}

/* H xi for the nb generators waiting in X; their norms against the predictions, each
 * difference relative to the two sides plus s |xi| (s the curvature scale): as in
 * nt_check, an identity whose two sides vanish (H c = 0 for a pure shift without weight
 * decay) is measured against the scale of H, not round-off */
static int flat_block(nt_engine *e, const nt_dataset *ds, const double *theta, int64_t d, const double *X, double *HX,
                      int *nb, nt_flat_view *f, int *done, nt_error *err)
{
    if (*nb == 0) return NT_OK;
    int rc = nt_hvp(e, theta, ds, *nb, X, HX, NULL, NULL, err);
    if (rc != NT_OK) return rc;
    for (int j = 0; j < *nb; j++, (*done)++) {
        double h = nt_norm2(d, HX + (int64_t)j * d), p = f->h_xi_predicted[*done];
        f->h_xi_norm[*done] = h;
        const double size = h + p + f->curvature_scale * nt_norm2(d, X + (int64_t)j * d);
        f->each_worst = fmax(f->each_worst, fabs(h - p) / fmax(size, 1e-300));
    }
    *nb = 0;
    return NT_OK;
}

/* per symmetry generator |H xi| (block products) beside |-A^T g + gamma (xi + A^T theta)| */
static int each_generator(nt_engine *e, const nt_model *m, const nt_dataset *ds, const nt_transform *list, int n,
                          const double *theta, const double *g, nt_flat_view *f, nt_error *err)
{
    const int64_t d = m->d;
    const double gam = m->weight_decay;
    const int kb = nt_engine_k(e);
    f->n_each = symmetry_generators(list, n);
    f->h_xi_norm = malloc(sizeof(double) * (size_t)(f->n_each + 1));
    f->h_xi_predicted = malloc(sizeof(double) * (size_t)(f->n_each + 1));
    double *X = malloc(sizeof(double) * (size_t)(kb * d)), *HX = malloc(sizeof(double) * (size_t)(kb * d));
    double *a = malloc(sizeof(double) * (size_t)d), *b = malloc(sizeof(double) * (size_t)d);
    int rc = NT_OK, nb = 0, done = 0;
    if (!f->h_xi_norm || !f->h_xi_predicted || !X || !HX || !a || !b) {
        rc = nt_fail(err, NT_EFAIL, "out of memory for the products of each generator (d = %lld)", (long long)d);
        goto out;
    }
    for (int t = 0; t < n && rc == NT_OK; t++) {
        int gens = !list[t].discrete && !list[t].equivariance ? list[t].generators : 0;
        for (int i = 0; i < gens && rc == NT_OK; i++) {
            double *xi = X + (int64_t)nb * d;
            nt_tr_xi(m, &list[t], i, theta, xi);
            nt_tr_apply_At(m, &list[t], i, g, a);
            nt_tr_apply_At(m, &list[t], i, theta, b);
            for (int64_t j = 0; j < d; j++) a[j] = -a[j] + gam * (xi[j] + b[j]);
            f->h_xi_predicted[done + nb++] = nt_norm2(d, a);
            if (nb == kb) rc = flat_block(e, ds, theta, d, X, HX, &nb, f, &done, err);
        }
    }
    if (rc == NT_OK) rc = flat_block(e, ds, theta, d, X, HX, &nb, f, &done, err);
out:
    free(X); free(HX); free(a); free(b);
    return rc;
}

int nt_predict_flat(nt_engine *e, const nt_model *m, const nt_dataset *ds, const nt_transform *list, int n,
                    const double *theta, const double *g, const double *values, int64_t n_values, double tol, int each,
                    nt_flat_view *f, nt_error *err)
{
    memset(f, 0, sizeof *f);
    nt_orbit_analyse(m, list, n, theta, tol, &f->orbit);
    double scale = values && n_values ? fmax(fabs(values[0]), fabs(values[n_values - 1])) : 0;
    f->found_tol = 1e-9 * scale;
    for (int v = 0; v < 3; v++) {
        f->found[v] = -1;
        if (!values || v >= f->orbit.n_values) continue;
        f->found[v] = 0;
        for (int64_t i = 0; i < n_values; i++) f->found[v] += fabs(values[i] - f->orbit.value[v]) <= f->found_tol;
    }
    const int q = 2;   /* each random combination alone tests every generator (with probability 1) */
    int rc = nt_orbit_s1_check(e, m, ds, list, n, theta, g, q, S1_SEED, &f->s1_worst, &f->curvature_scale, err);
    if (rc != NT_OK) return rc;
    f->s1_combinations = f->orbit.generators ? q : 0;
    return each ? each_generator(e, m, ds, list, n, theta, g, f, err) : NT_OK;
}

/* sharp direction of a homogeneous model: theta^T H theta / |theta|^2 against
 * k(k-1) E[u^T f] + k^2 E[f^T U f] + gamma |theta|^2 (bias-free: A = I) */
int nt_predict_sharp(nt_engine *e, const nt_model *m, const nt_dataset *ds, const nt_transform *list, int n,
                     const double *theta, double lambda_max, nt_sharp_view *s, nt_error *err)
{
    const int64_t d = m->d, N = ds->n;
    const int K = m->output;
    double k = 0;
    int biases = 0;
    memset(s, 0, sizeof *s);
    for (int t = 0; t < n; t++) if (list[t].kind == NT_TR_HOMOGENEOUS) k = list[t].p;
    for (int t = 0; t < m->n_tensors; t++) biases |= m->tensors[t].ndim == 1;
    if (k == 0 || biases) return NT_OK;
    double *Ht = malloc(sizeof(double) * (size_t)d), *F = malloc(sizeof(double) * (size_t)(N * K + 2 * K));
    int rc = Ht && F ? NT_OK : nt_fail(err, NT_EFAIL, "sharp direction: out of memory (%lld samples)", (long long)N);
    double *u = F + N * K, *Uf = u + K;
    if (rc == NT_OK) rc = nt_hvp(e, theta, ds, 1, theta, Ht, NULL, NULL, err);
    if (rc == NT_OK) rc = nt_outputs(e, theta, ds, F, err);
    if (rc != NT_OK) {
        free(Ht); free(F);
        return rc;
    }
    double uf = 0, fUf = 0, tt = cblas_ddot((int)d, theta, 1, theta, 1);
    for (int64_t i = 0; i < N; i++) {
        const double *f = F + i * K, *y = ds->y + i * ds->ydim;
        nt_loss_eval(m->loss, K, f, y, u);
        nt_loss_hess_apply(m->loss, K, f, y, f, Uf);
        for (int j = 0; j < K; j++) { uf += u[j] * f[j]; fUf += f[j] * Uf[j]; }
    }
    uf /= N; fUf /= N;
    s->applies = 1;
    s->degree = k;
    s->radial_curvature = cblas_ddot((int)d, theta, 1, Ht, 1) / tt;
    s->closed_form = (k * (k - 1) * uf + k * k * fUf + m->weight_decay * tt) / tt;
    s->lambda_max = lambda_max;
    s->relative_difference = nt_rel_diff(1, &s->radial_curvature, &s->closed_form);
    free(Ht); free(F);
    return NT_OK;
}

static int greatest_common_divisor(int a, int b)
{
    while (b) { int t = a % b; a = b; b = t; }
    return a;
}

/* the sector of hidden layer `layer` (units > 0 of them) into S: by S_n's standard
 * representation every eigenvalue on the breaking subspace comes n-1 times (a repeated one
 * several times n-1), so the multiplicity found is the gcd of the group sizes */
static int sector(nt_engine *e, const nt_model *m, const nt_dataset *ds, const double *theta, int layer, int units,
                  double *sym, nt_sector *S, nt_error *err)
{
    const int dim = nt_sn_sector_dim(m, layer);
    memset(S, 0, sizeof *S);
    S->layer = layer;
    S->units = units;
    S->dimension = dim;
    S->predicted = units - 1;
    if (dim > 4000) { S->skipped = 1; return NT_OK; }
    double *lam = malloc(sizeof(double) * (size_t)dim);
    int *mult = malloc(sizeof(int) * (size_t)dim);
    if (!lam || !mult) {
        free(lam); free(mult);
        return nt_fail(err, NT_EFAIL, "out of memory for the sector of layer %d", layer);
    }
    int rc = nt_sn_sector(e, m, ds, theta, layer, 1, sym, lam, err);
    if (rc != NT_OK) {
        free(lam); free(mult);
        return rc;
    }
    S->tol = 1e-9 * fmax(fabs(lam[0]), fabs(lam[dim - 1]));
    S->groups = nt_multiplicities(lam, dim, S->tol, mult);
    S->min = dim;
    for (int i = 0; i < S->groups; i++) {
        S->min = mult[i] < S->min ? mult[i] : S->min;
        S->max = mult[i] > S->max ? mult[i] : S->max;
        S->found = greatest_common_divisor(S->found, mult[i]);
    }
    S->holds = S->found > 0 && S->predicted > 0 && S->found % S->predicted == 0;
    S->lambda_min = lam[0];   /* the stability margin of H_gamma: gamma included */
    S->lambda_max = lam[dim - 1];
    S->eigenvalues = lam;
    free(mult);
    return NT_OK;
}

/* S_n sectors of the hidden layers (those with swaps: a normalization mixes the units) and
 * the mirror margins of odd units, each at the point where its unit is dead */
int nt_predict_sectors(nt_engine *e, const nt_model *m, const nt_dataset *ds, const nt_transform *list, int n,
                       const double *theta, nt_spectrum *r, nt_error *err)
{
    int layers = 0, mirrors = 0, rc = NT_OK;
    while (nt_sn_sector_dim(m, layers + 1) > 0) layers++;
    for (int t = 0; t < n; t++) mirrors += list[t].kind == NT_TR_SIGN_FLIP;
    double *sym = malloc(sizeof(double) * (size_t)m->d);
    r->sectors = calloc((size_t)layers + 1, sizeof(nt_sector));
    r->mirrors = calloc((size_t)mirrors + 1, sizeof(nt_mirror));
    if (!sym || !r->sectors || !r->mirrors) { free(sym); return nt_fail(err, NT_EFAIL, "out of memory for the sectors"); }
    for (int layer = 1; layer <= layers; layer++) {
        int units = 0;
        for (int t = 0; t < n; t++)
            if (list[t].kind == NT_TR_SWAP && list[t].layer == layer) units = list[t].b + 1;
        if (units == 0) continue;
        if ((rc = sector(e, m, ds, theta, layer, units, sym, &r->sectors[r->n_sectors], err))) goto out;
        r->n_sectors++;
    }
    for (int t = 0; t < n; t++) {
        if (list[t].kind != NT_TR_SIGN_FLIP) continue;
        int dim = nt_breaking_dim(m, &list[t]);
        double *lam = malloc(sizeof(double) * (size_t)(dim + 1));
        if (!lam) { rc = nt_fail(err, NT_EFAIL, "out of memory for the mirror %s", list[t].name); goto out; }
        nt_tr_apply_T(m, &list[t], theta, sym);
        for (int64_t i = 0; i < m->d; i++) sym[i] = 0.5 * (sym[i] + theta[i]);
        if ((rc = nt_breaking_spectrum(e, m, ds, sym, &list[t], lam, NULL, err))) {
            free(lam);
            goto out;
        }
        nt_mirror *M = &r->mirrors[r->n_mirrors++];
        snprintf(M->name, sizeof M->name, "%s", list[t].name);
        M->dimension = dim;
        M->margin = lam[0];
        M->stable = lam[0] > 0;
        free(lam);
    }
out:
    free(sym);
    return rc;
}

/* Gradient-Hessian alignment of each scale-invariant block S (the weights feeding a
 * normalization, xi = P_S theta, docs/theory.md §3): by (S1gamma) P_S g = -(H - 2 gamma) P_S theta,
 * so on an eigenvector v_i of H the block's gradient weighs (lambda_i - 2 gamma)^2 (v_i^T
 * P_S theta)^2: theta's weight times the squared shifted eigenvalue, tilted to the large
 * |lambda|.  The fraction of |P_S g|^2 in the top-k eigenspace measured from g, beside the
 * one predicted from theta, the eigenpairs and one product H P_S theta. */
int nt_predict_scale_alignment(nt_engine *e, const nt_model *m, const nt_dataset *ds, const nt_transform *list, int n,
                               const double *theta, const double *g, const double *U, const double *lam, int k,
                               nt_scale_alignment **out, int *n_out, nt_error *err)
{
    const int64_t d = m->d;
    const double gam = m->weight_decay;
    int blocks = 0;
    for (int t = 0; t < n; t++) blocks += list[t].kind == NT_TR_SCALE;
    *n_out = 0;
    *out = calloc((size_t)blocks + 1, sizeof(nt_scale_alignment));
    double *xi = malloc(sizeof(double) * (size_t)d), *Hxi = malloc(sizeof(double) * (size_t)d),
           *Pg = malloc(sizeof(double) * (size_t)d);
    if (!*out || !xi || !Hxi || !Pg) {
        free(xi); free(Hxi); free(Pg);
        return nt_fail(err, NT_EFAIL, "out of memory for the scale alignment (d = %lld)", (long long)d);
    }
    int rc = NT_OK;
    for (int t = 0; t < n && rc == NT_OK; t++) {
        if (list[t].kind != NT_TR_SCALE) continue;
        nt_tr_xi(m, &list[t], 0, theta, xi);        /* P_S theta */
        nt_tr_apply_A(m, &list[t], 0, g, Pg);       /* P_S g (A = P_S) */
        if ((rc = nt_hvp(e, theta, ds, 1, xi, Hxi, NULL, NULL, err))) break;
        double total = 0, gg = cblas_ddot((int)d, Pg, 1, Pg, 1), in_meas = 0, in_pred = 0;
        for (int64_t j = 0; j < d; j++) total += (Hxi[j] - 2 * gam * xi[j]) * (Hxi[j] - 2 * gam * xi[j]);
        for (int i = 0; i < k; i++) {
            double c = cblas_ddot((int)d, U + i * d, 1, xi, 1), cg = cblas_ddot((int)d, U + i * d, 1, Pg, 1);
            in_pred += (lam[i] - 2 * gam) * (lam[i] - 2 * gam) * c * c;
            in_meas += cg * cg;
        }
        nt_scale_alignment *a = &(*out)[(*n_out)++];
        snprintf(a->name, sizeof a->name, "%s", list[t].name);
        a->k = k;
        a->gradient_norm = sqrt(gg);
        a->measured = gg > 0 ? in_meas / gg : 0;
        a->predicted = total > 0 ? in_pred / total : 0;
    }
    free(xi); free(Hxi); free(Pg);
    return rc;
}
