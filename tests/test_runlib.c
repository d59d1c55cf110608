/* test_runlib.c: the computations noether run takes from the library (src/analysis/run.c),
 * each against a hand computation and with a negative control:
 *   - nt_check_tally: held count and worst residual; none held when every one fails;
 *   - nt_breaking_factors: lambda_min and max |1 - lr lambda| from nt_breaking_spectrum
 *     bitwise; nothing applies under another optimizer or without fixed points;
 *   - nt_fixed_point_growth: the trapezoid rule on log f; a constant factor gives f^n, and
 *     fewer than 3 checkpoints are refused;
 *   - nt_density_broaden: sigma a hundredth of the weighted range, zero-weight nodes ignored. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include "helpers.h"

Test(runlib, check_tally)
{
    nt_check_result r[3] = {0};
    r[0].holds = 1; r[0].first_order = 1e-14; r[0].second_order = 2e-13;
    r[1].holds = 1; r[1].first_order = 3e-12; r[1].second_order = 1e-15;
    r[2].holds = 0; r[2].first_order = 0.5;   r[2].second_order = 1e-16;
    int held;
    double worst;
    nt_check_tally(r, 2, &held, &worst);
    cr_assert_eq(held, 2);
    cr_assert_eq(worst, 3e-12);
    nt_check_tally(r, 3, &held, &worst);
    cr_assert_eq(held, 2);
    cr_assert_eq(worst, 0.5);
    nt_check_tally(r + 2, 1, &held, &worst);   /* control: the failing one alone */
    cr_assert_eq(held, 0);
    nt_check_tally(r, 0, &held, &worst);
    cr_assert_eq(held, 0);
    cr_assert_eq(worst, 0);
}

Test(runlib, breaking_factors)
{
    model_fixture f;
    const int widths[1] = {4};
    mf_new(&f, 3, 1, widths, NT_ACT_TANH, 2, NT_LOSS_MSE, 1, 1e-3, 11, 11, 4, 7);
    nt_spec *spec = calloc(1, sizeof *spec);
    spec->model = f.m;
    spec->train.optimizer = NT_OPT_GD;
    spec->train.lr = 0.3;
    int t = -1;
    for (int i = 0; i < f.n && t < 0; i++)
        if (nt_breaking_dim(&f.m, &f.list[i]) > 0) t = i;
    cr_assert_geq(t, 0, "no swap or sign flip in the catalogue");
    spec->init.n_fixed = 1;
    snprintf(spec->init.fixed_point[0], sizeof spec->init.fixed_point[0], "%s", f.list[t].name);
    nt_breaking_factor *bf;
    int n;
    nt_error err = {0};
    cr_assert_eq(nt_breaking_factors(f.e, spec, &f.ds, f.theta, f.list, f.n, &bf, &n, &err), NT_OK);
    cr_assert_eq(n, 1);
    int dim = nt_breaking_dim(&f.m, &f.list[t]);
    double *lam = malloc(sizeof(double) * (size_t)dim), factor = 0;
    t_breaking_spectrum(f.e, &f.m, &f.ds, f.theta, &f.list[t], lam, NULL);
    for (int i = 0; i < dim; i++) factor = fmax(factor, fabs(1 - 0.3 * lam[i]));
    cr_assert_str_eq(bf[0].name, f.list[t].name);
    cr_assert(bf[0].lambda_min == lam[0] && bf[0].factor == factor, "not bitwise nt_breaking_spectrum's");
    cr_assert_gt(factor, 0);
    free(bf);
    /* controls: adam, and no fixed point, give nothing; an unknown name an empty list */
    spec->train.optimizer = NT_OPT_ADAM;
    cr_assert_eq(nt_breaking_factors(f.e, spec, &f.ds, f.theta, f.list, f.n, &bf, &n, &err), NT_OK);
    cr_assert(n == -1 && bf == NULL);
    spec->train.optimizer = NT_OPT_SGD;
    spec->init.n_fixed = 0;
    cr_assert_eq(nt_breaking_factors(f.e, spec, &f.ds, f.theta, f.list, f.n, &bf, &n, &err), NT_OK);
    cr_assert(n == -1 && bf == NULL);
    spec->init.n_fixed = 1;
    snprintf(spec->init.fixed_point[0], sizeof spec->init.fixed_point[0], "no such symmetry");
    cr_assert_eq(nt_breaking_factors(f.e, spec, &f.ds, f.theta, f.list, f.n, &bf, &n, &err), NT_OK);
    cr_assert_eq(n, 0);
    free(bf);
    free(lam);
    free(spec);
    mf_free(&f);
}

Test(runlib, fixed_point_growth)
{
    const double steps[4] = {0, 10, 30, 60}, factor[4] = {1.5, 1.1, 1.2, 1.05};
    nt_growth g;
    nt_error err = {0};
    cr_assert_eq(nt_fixed_point_growth(4, steps, factor, 2.0, 8.0, &g, &err), NT_OK);
    double logp = 20 * (log(1.1) + log(1.2)) / 2 + 30 * (log(1.2) + log(1.05)) / 2;
    cr_assert_float_eq(g.predicted, exp(logp), 1e-12 * exp(logp));
    cr_assert_eq(g.measured, 4.0);
    cr_assert_eq(g.from_step, 10);
    cr_assert_eq(g.to_step, 60);
    cr_assert_float_eq(g.predicted_from_start, pow(1.5, 50), 1e-12 * pow(1.5, 50));
    const double same[4] = {1.1, 1.1, 1.1, 1.1};   /* a constant factor: f^(window) */
    cr_assert_eq(nt_fixed_point_growth(4, steps, same, 1, 1, &g, &err), NT_OK);
    cr_assert_float_eq(g.predicted, pow(1.1, 50), 1e-12 * pow(1.1, 50));
    /* control: two checkpoints are not a window */
    cr_assert_eq(nt_fixed_point_growth(2, steps, factor, 1, 1, &g, &err), NT_EINPUT);
}

Test(runlib, density_broaden)
{
    const double nodes[4] = {-1, 3, 100, 0.5}, weights[4] = {0.25, 0.5, 0, 0.25};
    double grid[50], rho[50];
    double sigma = nt_density_broaden(nodes, weights, 4, 50, grid, rho);
    cr_assert_float_eq(sigma, 0.04, 1e-15);   /* range 4 (the node at 100 weighs 0) */
    cr_assert_float_eq(grid[0], -1 - 5 * sigma, 1e-12);
    cr_assert_float_eq(grid[49], 3 + 5 * sigma, 1e-12);
    double mass = 0;
    for (int i = 1; i < 50; i++) mass += (grid[i] - grid[i - 1]) * (rho[i] + rho[i - 1]) / 2;
    cr_assert_gt(mass, 0);
    const double one[1] = {2}, w1[1] = {1};   /* control: one node, the 1e-12 floor */
    cr_assert_eq(nt_density_broaden(one, w1, 1, 50, grid, rho), 1e-12);
}
