/* run.c: the computations of noether run that are not formatting (src/cli/cmd_run.c writes
 * them): the identities' tally at a checkpoint, the breaking spectrum's step factor at each
 * starting fixed point, the predicted growth away from it along the run (docs/theory.md §4),
 * and the final density's Gaussian broadening. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "noether.h"

void nt_check_tally(const nt_check_result *res, int n, int *held, double *worst)
{
    *held = 0;
    *worst = 0;
    for (int i = 0; i < n; i++) {
        *held += res[i].holds;
        *worst = fmax(*worst, fmax(res[i].first_order, res[i].second_order));
    }
}

/* Not through nt_fixed_points_analyse: that asks nt_breaking_spectrum for theta's components
 * on the eigenvectors too, and LAPACK's dsyev with vectors ('V', dsteqr) gives eigenvalues
 * that differ in the last bits from those without ('N', dsterf), so lambda_min and the
 * factor, and the growth predicted from them, would change at round-off. */
int nt_breaking_factors(nt_engine *e, const nt_spec *spec, const nt_dataset *ds, const double *theta,
                        const nt_transform *list, int n, nt_breaking_factor **out, int *n_out, nt_error *err)
{
    const nt_train_spec *ts = &spec->train;
    *out = NULL;
    *n_out = -1;
    if (!spec->init.n_fixed || (ts->optimizer != NT_OPT_GD && ts->optimizer != NT_OPT_SGD)) return NT_OK;
    int k = 0;
    nt_breaking_factor *bf = malloc(sizeof *bf * (size_t)(spec->init.n_fixed * n + 1));
    if (!bf) return nt_fail(err, NT_EFAIL, "out of memory for the breaking factors");
    for (int f = 0; f < spec->init.n_fixed; f++)
        for (int t = 0; t < n; t++) {
            if (strcmp(list[t].name, spec->init.fixed_point[f])) continue;
            int dim = nt_breaking_dim(&spec->model, &list[t]);
            double *lam = calloc((size_t)(dim + 1), sizeof(double)), factor = 0;
            if (!lam) {
                free(bf);
                return nt_fail(err, NT_EFAIL, "out of memory for the breaking spectrum (dimension %d)", dim);
            }
            int rc = nt_breaking_spectrum(e, &spec->model, ds, theta, &list[t], lam, NULL, err);
            if (rc != NT_OK) {
                free(lam);
                free(bf);
                return rc;
            }
            for (int i = 0; i < dim; i++) factor = fmax(factor, fabs(1 - ts->lr * lam[i]));
            snprintf(bf[k].name, sizeof bf[k].name, "%s", list[t].name);
            bf[k].lambda_min = lam[0];
            bf[k].factor = factor;
            k++;
            free(lam);
        }
    *out = bf;
    *n_out = k;
    return NT_OK;
}

int nt_fixed_point_growth(int n_cp, const double *steps, const double *factor, double d_from, double d_to,
                          nt_growth *g, nt_error *err)
{
    if (n_cp < 3 || !steps || !factor) return nt_fail(err, NT_EINPUT, "growth: %d checkpoints (3 needed)", n_cp);
    double logp = 0, prev = NAN;
    for (int k = 1; k < n_cp; k++) {   /* log f at checkpoint k, trapezoids from the one before */
        double f = log(factor[k]);
        if (k > 1) logp += (steps[k] - steps[k - 1]) * (prev + f) / 2;
        prev = f;
    }
    g->from_step = steps[1];
    g->to_step = steps[n_cp - 1];
    g->measured = d_to / d_from;
    g->predicted = exp(logp);
    g->predicted_from_start = pow(factor[0], g->to_step - g->from_step);
    return NT_OK;
}

double nt_density_broaden(const double *nodes, const double *weights, int n, int npts, double *grid, double *rho)
{
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < n; i++)
        if (weights[i] > 0) { lo = fmin(lo, nodes[i]); hi = fmax(hi, nodes[i]); }
    double sigma = fmax((hi - lo) / 100, 1e-12);
    for (int i = 0; i < npts; i++) grid[i] = lo - 5 * sigma + (hi - lo + 10 * sigma) * i / (npts - 1);
    nt_density_grid(nodes, weights, n, sigma, grid, npts, rho);
    return sigma;
}
