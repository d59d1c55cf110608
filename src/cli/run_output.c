/* run_output.c: what noether run writes (cmd_run.c computes through the library): a
 * checkpoint's row of analysis.csv and entry of summary.json, the final spectrum's CSVs,
 * the distances and the growth at the fixed points (run_summary.c: the rest of summary.json). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "run.h"
#include "../report/report.h"

double run_num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* a CSV field: empty when not a number (missing for gnuplot and pandas) */
static void field(run_state *r, double x)
{
    if (isnan(x)) cli_printf(&r->csv, ",");
    else cli_printf(&r->csv, ",%.17g", x);
}

cJSON *run_row(run_state *r, const nt_spectrum *spp, int64_t step, double loss, double loss_gamma, int held,
               double worst, const nt_breaking_factor *bf, int n_bf)
{
    const nt_spectrum sp = *spp;
    /* the numbers of a checkpoint; NAN where the spectrum has none (an empty CSV field, null
     * in summary.json): no end asked for, not every eigenvalue known, too many generators
     * for the orbit rank, not a homogeneous model */
    const double lmax = sp.top ? sp.top_values[0] : NAN, lmin = sp.bottom ? sp.bottom_values[0] : NAN,
                 align = sp.gradient_fraction_in_top, at_gamma = sp.at_gamma >= 0 ? sp.at_gamma : NAN,
                 rank = sp.has_flat && sp.flat.orbit.rank >= 0 ? sp.flat.orbit.rank : NAN,
                 radial = sp.sharp.applies ? sp.sharp.radial_curvature : NAN,
                 closed = sp.sharp.applies ? sp.sharp.closed_form : NAN;

    if (r->csv.len == 0) {
        cli_printf(&r->csv, "step,loss,loss_gamma,grad_norm,identities,identities_holding,worst_residual,lambda_max,lambda_min,"
                  "gradient_fraction_in_top,orbit_rank,flat_predicted_everywhere,eigenvalues_at_gamma,"
                  "radial_curvature,radial_closed_form");
        for (int i = 0; i < sp.top; i++) cli_printf(&r->csv, ",top_%d", i + 1);
        for (int i = 0; i < sp.bottom; i++) cli_printf(&r->csv, ",bottom_%d", i + 1);
        cli_printf(&r->csv, "\n");
    }
    cli_printf(&r->csv, "%lld", (long long)step);
    field(r, loss);
    field(r, loss_gamma);
    field(r, sp.grad_norm);
    cli_printf(&r->csv, ",%d,%d", r->n_checks, held);
    field(r, worst);
    field(r, lmax);
    field(r, lmin);
    field(r, align);
    field(r, rank);
    cli_printf(&r->csv, ",%d", sp.flat.orbit.shift_rank);   /* flat at every theta: the pure shifts' rank */
    field(r, at_gamma);
    field(r, radial);
    field(r, closed);
    for (int i = 0; i < sp.top; i++) field(r, sp.top_values[i]);
    for (int i = 0; i < sp.bottom; i++) field(r, sp.bottom_values[i]);
    cli_printf(&r->csv, "\n");

    cJSON *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "step", (double)step);
    cJSON_AddNumberToObject(c, "loss", loss);
    cJSON_AddNumberToObject(c, "loss_gamma", loss_gamma);
    cJSON_AddNumberToObject(c, "grad_norm", sp.grad_norm);
    cJSON_AddNumberToObject(c, "identities", r->n_checks);
    cJSON_AddNumberToObject(c, "identities_holding", held);
    cJSON_AddNumberToObject(c, "worst_residual", worst);
    if (!isnan(lmax)) cJSON_AddNumberToObject(c, "lambda_max", lmax);
    if (!isnan(lmin)) cJSON_AddNumberToObject(c, "lambda_min", lmin);
    if (!isnan(align)) cJSON_AddNumberToObject(c, "gradient_fraction_in_top", align);
    cJSON_AddNumberToObject(c, "orbit_rank", rank);
    if (!isnan(at_gamma)) cJSON_AddNumberToObject(c, "eigenvalues_at_gamma", at_gamma);
    if (n_bf >= 0) {
        cJSON *brk = cJSON_AddArrayToObject(c, "breaking");
        for (int i = 0; i < n_bf; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", bf[i].name);
            cJSON_AddNumberToObject(o, "lambda_min", bf[i].lambda_min);
            cJSON_AddNumberToObject(o, "factor", bf[i].factor);
            cJSON_AddItemToArray(brk, o);
        }
    }
    return c;
}

/* the final spectrum: every eigenvalue (dense) and the density on a grid as CSV; the
 * sector spectra as CSV, one column per layer */
void run_write_final(run_state *r, const char *dir)
{
    const nt_spectrum *sp = &r->fin;
    cli_buf t = {0};
    if (sp->nodes) {
        const int n = sp->density_probes * sp->density_steps;
        /* Gaussian broadening of the quadrature: sigma a hundredth of the spectral range */
        enum { NPTS = 500 };
        double grid[NPTS], rho[NPTS];
        const double sigma = nt_density_broaden(sp->nodes, sp->weights, n, NPTS, grid, rho);
        cli_printf(&t, "lambda,density\n");
        for (int i = 0; i < NPTS; i++) cli_printf(&t, "%.10g,%.10g\n", grid[i], rho[i]);
        r->sigma = sigma;
        cJSON_AddNumberToObject(cJSON_GetObjectItem(r->final, "density"), "sigma", sigma);
        cli_write_in("run", dir, "density.csv", t.s);
        t.len = 0;
    }
    int cols = 0, rows = 0;
    for (int s = 0; s < sp->n_sectors; s++) {   /* the sectors computed, their eigenvalues ascending */
        const nt_sector *S = &sp->sectors[s];
        if (S->skipped || !S->dimension) continue;
        cli_printf(&t, "%slayer_%d", cols++ ? "," : "index,", S->layer_index);
        rows = S->dimension > rows ? S->dimension : rows;
    }
    if (cols) {
        cli_printf(&t, "\n");
        for (int i = 0; i < rows; i++) {
            cli_printf(&t, "%d", i + 1);
            for (int s = 0; s < sp->n_sectors; s++) {
                const nt_sector *S = &sp->sectors[s];
                if (S->skipped || !S->dimension) continue;
                if (i < S->dimension) cli_printf(&t, ",%.17g", S->eigenvalues[i]);
                else cli_printf(&t, ",");
            }
            cli_printf(&t, "\n");
        }
        cli_write_in("run", dir, "sectors.csv", t.s);
    }
    free(t.s);
}

/* per discrete symmetry, the distance of theta to Fix(T) at the first and last logged
 * steps (ledger.csv) */
cJSON *run_distances(const char *dir)
{
    report_table L;
    cJSON *arr = cJSON_CreateArray();
    if (!report_table_read(dir, "ledger.csv", &L)) return arr;
    for (int c = 0; c < L.cols; c++) {
        size_t len = strlen(L.names[c]);
        if (len <= 9 || strcmp(L.names[c] + len - 9, ":distance")) continue;
        cJSON *o = cJSON_CreateObject();
        L.names[c][len - 9] = 0;
        cJSON_AddStringToObject(o, "name", L.names[c]);
        cJSON_AddNumberToObject(o, "initial", report_at(&L, 0, c));
        cJSON_AddNumberToObject(o, "final", report_at(&L, L.rows - 1, c));
        cJSON_AddItemToArray(arr, o);
    }
    report_table_free(&L);
    return arr;
}

/* The growth of the distance to each starting fixed point against the linearized dynamics
 * along the run (docs/theory.md §4, nt_fixed_point_growth): per step the breaking part grows by at most
 * f = max_i |1 - lr lambda_i| (lambda_i of H_gamma on Fix(T)^perp), measured at each analysis
 * checkpoint; log f is taken linear in the step between checkpoints (trapezoids), so the
 * prediction is exp(sum_k (s_{k+1} - s_k) (log f_k + log f_{k+1}) / 2).  The window runs from
 * the first checkpoint after the start to the last: in the first steps the round-off the run
 * starts from is not yet along the most unstable direction (the bound f^n overstates its
 * growth there) and the spectrum moves fastest.  Beside it, the start's factor raised to the
 * window's steps.  A fixed point whose distance is 0 at the window's start is left out. */
cJSON *run_growth(const run_state *r, const char *dir)
{
    report_table L;
    cJSON *arr = cJSON_CreateArray();
    const cJSON *cps = r->checkpoints, *first = cJSON_GetArrayItem(cps, 0), *it, *e;
    const int n_cp = cJSON_GetArraySize(cps);
    if (n_cp < 3 || !cJSON_GetObjectItem(first, "breaking") || !report_table_read(dir, "ledger.csv", &L)) return arr;
    const int st = report_col(&L, "step");
    double *steps = malloc(sizeof(double) * (size_t)n_cp), *factor = malloc(sizeof(double) * (size_t)n_cp);
    for (int k = 0; k < n_cp; k++) steps[k] = run_num(cJSON_GetArrayItem(cps, k), "step");
    int ra = 0;
    while (ra < L.rows && report_at(&L, ra, st) != steps[1]) ra++;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(first, "breaking")) {
        const char *name = cJSON_GetObjectItem(it, "name")->valuestring;
        char col[160];
        snprintf(col, sizeof col, "%s:distance", name);
        int c = report_col(&L, col);
        if (c < 0 || ra >= L.rows || !(report_at(&L, ra, c) > 0)) continue;
        factor[0] = run_num(it, "factor");
        for (int k = 1; k < n_cp; k++) {   /* this fixed point's factor at checkpoint k */
            factor[k] = NAN;
            cJSON_ArrayForEach(e, cJSON_GetObjectItem(cJSON_GetArrayItem(cps, k), "breaking"))
                if (!strcmp(cJSON_GetObjectItem(e, "name")->valuestring, name)) factor[k] = run_num(e, "factor");
        }
        nt_growth g;
        if (nt_fixed_point_growth(n_cp, steps, factor, report_at(&L, ra, c), report_at(&L, L.rows - 1, c), &g,
                                  &(nt_error){0}))
            continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", name);
        cJSON_AddNumberToObject(o, "from_step", g.from_step);
        cJSON_AddNumberToObject(o, "to_step", g.to_step);
        cJSON_AddNumberToObject(o, "measured", g.measured);
        cJSON_AddNumberToObject(o, "predicted", g.predicted);
        cJSON_AddNumberToObject(o, "predicted_from_start", g.predicted_from_start);
        cJSON_AddItemToArray(arr, o);
    }
    free(steps);
    free(factor);
    report_table_free(&L);
    return arr;
}
