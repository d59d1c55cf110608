/* analysis.c: nt_spectrum_analyse, everything noether spectrum reports at theta in one call
 * (docs/theory.md §3-§4): the gradient, the Hessian operator (a block of theta, the orbit
 * span deflated), both ends of its spectrum (dense LAPACK or ARPACK's Lanczos), the count
 * of eigenvalues at gamma, the trace (Hutchinson, exact beside it), the density (SLQ) with
 * its moments and their standard errors, the gradient's alignment with the top eigenspace,
 * and the symmetry predictions of predict.c (flat, sharp, sectors, scale alignment). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cblas.h>
#include "noether.h"
#include "analysis.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* a phase without products of its own to count: started (done 0) or ended (done 1 of 1) */
static void phase(const nt_spectrum_opts *o, const char *what, int ended)
{
    nt_progress_report(&o->progress, what, ended, 1);
}

/* both ends of op's spectrum with their eigenvectors (rows of n); dense: every eigenvalue,
 * ascending, into r->values */
static int spectrum_ends(const nt_operator *hessian, const nt_progress *p, nt_spectrum *r, nt_error *err)
{
    /* progress: the products, n of them for the dense matrix; Lanczos stops when converged */
    nt_counted_operator count;
    const nt_operator counted = nt_counted_operator_new(&count, hessian, p,
                                                        r->dense ? "dense Hessian (products with unit vectors)"
                                                                 : "Lanczos, both ends (products)",
                                                        r->dense ? hessian->n : 0),
                      *op = &counted;
    const int64_t n = op->n;
    r->top = r->top < n ? r->top : (int)n;
    r->bottom = r->bottom < n ? r->bottom : (int)n;
    r->top_values = malloc(sizeof(double) * (size_t)(r->top + 1));
    r->bottom_values = malloc(sizeof(double) * (size_t)(r->bottom + 1));
    r->top_vectors = malloc(sizeof(double) * (size_t)((r->top + 1) * n));
    r->bottom_vectors = malloc(sizeof(double) * (size_t)((r->bottom + 1) * n));
    if (!r->top_values || !r->bottom_values || !r->top_vectors || !r->bottom_vectors)
        return nt_fail(err, NT_EFAIL, "out of memory for the eigenvectors (n = %lld)", (long long)n);
    if (r->dense) {
        double *all = malloc(sizeof(double) * (size_t)n), *U = malloc(sizeof(double) * (size_t)(n * n));
        r->values = all;
        if (!all || !U) { free(U); return nt_fail(err, NT_EFAIL, "out of memory for the dense spectrum"); }
        if (nt_eigen_dense(op, all, U, err)) { free(U); return err ? err->code : NT_EFAIL; }
        nt_progress_report(p, "dense eigendecomposition (LAPACK)", 1, 1);
        for (int i = 0; i < r->top; i++) {
            r->top_values[i] = all[n - 1 - i];
            memcpy(r->top_vectors + i * n, U + (n - 1 - i) * n, sizeof(double) * (size_t)n);
        }
        for (int i = 0; i < r->bottom; i++) {
            r->bottom_values[i] = all[i];
            memcpy(r->bottom_vectors + i * n, U + i * n, sizeof(double) * (size_t)n);
        }
        r->products = (int)n;
        free(U);
        return NT_OK;
    }
    int p1 = 0, p2 = 0, rc;
    if (r->top && (rc = nt_eigen_lanczos(op, r->top, 1, 0, r->top_values, r->top_vectors, &p1, err))) return rc;
    if (r->bottom && (rc = nt_eigen_lanczos(op, r->bottom, 0, 0, r->bottom_values, r->bottom_vectors, &p2, err)))
        return rc;
    r->products = p1 + p2;
    nt_progress_report(p, count.phase, count.done, count.done);   /* the end: done = total */
    return NT_OK;
}

/* SLQ's moments and their standard errors over the probes: probe p alone estimates
 * tr(A^k)/n by P sum_s w_ps x_ps^k (its weights sum to 1/P); the probes that would bring
 * each standard error under 1 % of its moment (it falls as 1/sqrt(P)); the exact moments
 * when every eigenvalue is known */
static void density_moments(nt_spectrum *r)
{
    const int P = r->density_probes, S = r->density_steps;
    const double *nodes = r->nodes, *w = r->weights;
    for (int k = 1; k <= 2; k++) {
        double mean = 0, sq = 0;
        for (int p = 0; p < P; p++) {
            double mp = 0;
            for (int s = 0; s < S; s++) mp += P * w[p * S + s] * (k == 1 ? nodes[p * S + s] : nodes[p * S + s] * nodes[p * S + s]);
            mean += mp / P;
            sq += mp * mp;
        }
        double var = P > 1 ? fmax(sq - P * mean * mean, 0) / (P - 1) : 0, se = sqrt(var / P);
        r->moment[k - 1] = mean;
        r->moment_std_error[k - 1] = se;
        r->moment_probes_for_1_percent[k - 1] = mean != 0 ? ceil(P * (se / (0.01 * fabs(mean))) * (se / (0.01 * fabs(mean)))) : 0;
        r->moment_exact[k - 1] = NAN;
        if (r->values) {
            double exact = 0;
            for (int64_t i = 0; i < r->n; i++) exact += k == 1 ? r->values[i] : r->values[i] * r->values[i];
            r->moment_exact[k - 1] = exact / r->n;
        }
    }
}

/* the fraction of |g|^2 in the span of the top eigenvectors (rows of U, n long) */
static double alignment(const double *U, int k, int64_t n, const double *g)
{
    double in = 0, gg = cblas_ddot((int)n, g, 1, g, 1);
    for (int i = 0; i < k; i++) {
        double c = cblas_ddot((int)n, U + i * n, 1, g, 1);
        in += c * c;
    }
    return gg > 0 ? in / gg : 0;
}

/* the analyses after the gradient g: the operator, its ends, trace, density, predictions */
static int analyse(nt_engine *e, const nt_model *m, const nt_dataset *ds, const nt_transform *list, int n_list,
                   const double *theta, const nt_spectrum_opts *o, int64_t off, nt_spectrum *r, const double *g,
                   double t_start, nt_error *err)
{
    const int64_t n = r->n;
    const double tol = 1e-10;   /* the orbit rank's, relative to the largest singular value */
    double *Q = NULL, *sv = NULL;
    int n_gen = 0, rc = NT_OK;
    if (o->deflate) {   /* the orbit span's orthonormal basis, only to deflate it (a dense SVD of rank x d) */
        phase(o, "the orbit span of the continuous symmetries (SVD, for the deflation)", 0);
        r->deflated = nt_orbit_basis(m, list, n_list, theta, tol, &Q, &sv, &n_gen);
        phase(o, "the orbit span of the continuous symmetries (SVD, for the deflation)", 1);
    }
    nt_hessian_ctx hc;
    nt_operator op;
    if ((rc = nt_hessian_operator(&hc, &op, e, m, ds, theta, off, n, o->deflate ? Q : NULL, o->deflate ? r->deflated : 0,
                                  err)))
        goto done;
    double t0 = now();
    r->t_operator = t0 - t_start - r->t_gradient;
    if ((rc = spectrum_ends(&op, &o->progress, r, err))) goto done;
    r->t_eigenvalues = now() - t0;
    r->at_gamma = -1;
    r->at_gamma_tol = NAN;
    if (r->values) {   /* the whole spectrum: how many eigenvalues sit at gamma (flat up to weight decay) */
        double scale = fmax(fabs(r->values[0]), fabs(r->values[n - 1]));
        r->at_gamma_tol = 1e-9 * scale;
        r->at_gamma = 0;
        for (int64_t i = 0; i < n; i++) r->at_gamma += fabs(r->values[i] - m->weight_decay) <= r->at_gamma_tol;
    }
    if (o->ends_known) o->ends_known(o->ctx, r);
    r->trace = r->trace_std_error = r->trace_exact = NAN;
    if (o->trace) {
        r->trace_probes = 100;
        nt_counted_operator count;
        const nt_operator counted = nt_counted_operator_new(&count, &op, &o->progress, "trace (Hutchinson probes)",
                                                            r->trace_probes);
        if ((rc = nt_hutchinson(&counted, r->trace_probes, NT_TRACE_SEED, &r->trace, &r->trace_std_error, err))) goto done;
        if (r->values) {   /* the sum of every eigenvalue */
            r->trace_exact = 0;
            for (int64_t i = 0; i < n; i++) r->trace_exact += r->values[i];
        }
    }
    if (o->density) {
        const int P = 10, S = (int)(n < 80 ? n : 80);
        r->density_probes = P;
        r->density_steps = S;
        r->nodes = malloc(sizeof(double) * P * S);
        r->weights = malloc(sizeof(double) * P * S);
        if (!r->nodes || !r->weights) { rc = nt_fail(err, NT_EFAIL, "out of memory for the density"); goto done; }
        nt_counted_operator count;   /* at most P x S products (a probe's Lanczos ends early on an invariant subspace) */
        const nt_operator counted = nt_counted_operator_new(&count, &op, &o->progress,
                                                            "spectral density (SLQ products)", (int64_t)P * S);
        if ((rc = nt_slq(&counted, P, S, NT_DENSITY_SEED, r->nodes, r->weights, err))) goto done;
        nt_progress_report(&o->progress, count.phase, count.total, count.total);
        density_moments(r);
    }
    r->gradient_fraction_in_top = o->block ? NAN : alignment(r->top_vectors, r->top, n, g);
    double t_pred = now();
    if (!o->block) {
        phase(o, "the symmetry predictions (flat, sharp)", 0);
        r->has_flat = 1;
        if ((rc = nt_predict_flat(e, m, ds, list, n_list, theta, g, r->values, n, tol, o->each_generator, &r->flat, err)))
            goto done;
        if (!o->deflate &&
            (rc = nt_predict_sharp(e, m, ds, list, n_list, theta, r->top ? r->top_values[0] : NAN, &r->sharp, err)))
            goto done;
        phase(o, "the symmetry predictions (flat, sharp)", 1);
        if (o->sectors && (rc = nt_predict_sectors(e, m, ds, list, n_list, theta, &o->progress, r, err))) goto done;
        if ((rc = nt_predict_scale_alignment(e, m, ds, list, n_list, theta, g, r->top_vectors, r->top_values, r->top,
                                             &r->scale, &r->n_scale, err)))
            goto done;
    }
    r->t_predictions = now() - t_pred;
    r->t_total = now() - t_start;
done:
    nt_hessian_operator_free(&hc);
    free(Q);
    free(sv);
    return rc;
}

int nt_spectrum_analyse(nt_engine *e, const nt_model *m, const nt_dataset *ds, const nt_transform *list, int n_list,
                        const double *theta, const nt_spectrum_opts *o, nt_spectrum *r, nt_error *err)
{
    memset(r, 0, sizeof *r);
    int64_t off = 0, n = m->d;   /* the block: a tensor or a layer (nt_layout_block), else all of theta */
    if (o->block && nt_layout_block(m, o->block, &off, &n, err)) return NT_EINPUT;
    if (o->top < 0 || o->bottom < 0) return nt_fail(err, NT_EINPUT, "top and bottom must not be negative");
    const int64_t d = m->d;
    r->d = d;
    r->n = n;
    r->top = o->top;
    r->bottom = o->bottom;
    r->dense = o->method == NT_METHOD_DENSE || (o->method == NT_METHOD_AUTO && n <= 3000);
    if (!r->dense && (r->top >= n - 1 || r->bottom >= n - 1)) r->dense = 1;   /* ARPACK needs nev < n - 1 */
    const double need = 16.0 * (double)n * (double)n, have = nt_memory_bytes();   /* the matrix and its vectors */
    if (r->dense && need > 0.5 * have)
        return nt_fail(err, NT_EINPUT, "the dense spectrum of n = %lld needs %.0f bytes (%.3g GiB), more than half of "
                       "this machine's %.3g GiB; use --method lanczos (or fewer --top/--bottom than n - 1)", (long long)n,
                       need, need / 1073741824.0, have / 1073741824.0);
    double *g = malloc(sizeof(double) * (size_t)d), t_start = now();
    if (!g) return nt_fail(err, NT_EFAIL, "out of memory for the gradient (d = %lld)", (long long)d);
    int rc = nt_grad(e, theta, ds, &r->loss, g, err);
    r->t_gradient = now() - t_start;
    if (!rc) rc = nt_require_finite(r->loss, g, d, "gradient", err);   /* before LAPACK or ARPACK sees a NaN */
    if (!rc) {
        r->grad_norm = nt_norm2(d, g);
        rc = analyse(e, m, ds, list, n_list, theta, o, off, r, g, t_start, err);
    }
    free(g);
    if (rc) nt_spectrum_free(r);
    return rc;
}

void nt_spectrum_free(nt_spectrum *r)
{
    if (!r) return;
    free(r->top_values); free(r->bottom_values); free(r->top_vectors); free(r->bottom_vectors); free(r->values);
    free(r->nodes); free(r->weights);
    nt_orbit_free(&r->flat.orbit);
    free(r->flat.h_xi_norm); free(r->flat.h_xi_predicted);
    for (int i = 0; i < r->n_sectors; i++) free(r->sectors[i].eigenvalues);
    free(r->sectors); free(r->mirrors); free(r->scale);
    memset(r, 0, sizeof *r);
}
