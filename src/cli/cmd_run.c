/* cmd_run.c: noether run and noether demo, the main job.  Trains the spec's model with
 * the ledger (cmd_train.c) and, at every analysis checkpoint (analysis.every steps, and at
 * the start and the end), evaluates every identity of the catalogue (docs/theory.md §2, §6)
 * and the curvature views of noether spectrum (§3-§4, the numbers read from the struct
 * nt_spectrum_analyse fills, the JSON only for spectrum.json): both ends of the spectrum,
 * gradient alignment, flat directions against the orbit rank, the radial curvature of a
 * homogeneous model.  At the end: the whole spectrum where it is small enough, its
 * density, and the S_n sectors.  Writes CSV time series, summary.json, the plots and
 * report.html (src/report/). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"
#include "../report/report.h"

static const char run_usage[] =
    "usage: noether run SPEC [-o DIR] [--params P.npy] [--resume | --force] [--quiet]\n\n"
    "The main job: trains the spec's model with the ledger of every conserved or broken\n"
    "quantity and, every analysis.every steps (and at the start and the end), checks every\n"
    "identity of its symmetries and measures the Hessian's spectrum at both ends, the\n"
    "gradient's alignment with the top eigenspace, the flat directions against the orbit\n"
    "rank and, for a homogeneous model, the radial curvature; for a run started on fixed\n"
    "points (GD, SGD), the spectrum on each one's breaking directions, and at the end the\n"
    "growth of the distance to it against the linearized prediction along the run.  At the\n"
    "end also the spectral density and the S_n sector spectra.  Writes into DIR (default\n"
    "noether-run):\n"
    "  report.html          the report (opens from disk, no external assets)\n"
    "  plots/*.png, *.svg   its figures (gnuplot)\n"
    "  summary.json         every number of the report\n"
    "  ledger.csv           a row per logged step (noether train)\n"
    "  analysis.csv         a row per analysis checkpoint\n"
    "  density.csv, sectors.csv, spectrum.json   the final spectrum\n"
    "  params_init.npy, params_final.npy\n\n"
    "  -o DIR      output folder (created)\n"
    "  --params P  start from P.npy instead of the seeded initialization\n"
    "  --resume    continue the run in DIR from DIR/checkpoint.bin (written every\n"
    "              train.checkpoint_every steps, when SIGINT or SIGTERM stops a run,\n"
    "              which then exits 130 or 143 without the final analysis and report,\n"
    "              and at the end of training, kept until the report is written: a run\n"
    "              stopped in its final analysis or report resumes there)\n"
    "  --force     start afresh in a DIR that holds an unfinished run's checkpoint\n"
    "              (deleting it; without --force or --resume that is refused, exit 2)\n"
    "  --quiet     no progress on stderr, no summary on stdout\n";

static const char demo_usage[] =
    "usage: noether demo [-o DIR] [--resume | --force] [--quiet]\n\n"
    "noether run on the built-in default (no files needed): a ReLU MLP 13-16-16-3 with a\n"
    "softmax head on the wine data (compiled in), trained by SGD with weight decay.\n"
    "Writes the report and its data into DIR (default noether-demo); see noether run --help.\n";

typedef struct {
    cli_job *job;
    nt_engine *e;
    const nt_transform *list;
    int n_list, quiet, n_checks, translations;   /* translations: the rank of the pure shifts (A = 0) */
    int64_t every, last_analysed;
    nt_check_result *res;
    cJSON *checkpoints;      /* per checkpoint: the compact analysis */
    nt_spectrum fin;         /* the last checkpoint's spectrum (has_final) */
    cJSON *final;            /* its document, spectrum.json */
    int has_final;
    double sigma;            /* the broadening of the final density (density.csv) */
    cli_buf csv;
    double seconds;
} run_state;

static double num(const cJSON *o, const char *key)
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

/* docs/theory.md §4 along the run: for each fixed point the spec starts on (GD or SGD), the
 * spectrum of H_gamma on Fix(T)^perp at theta and the per-step factor of the linearized
 * dynamics there, max_i |1 - lr lambda_i|; NULL when there is none.  Not through
 * nt_fixed_points_analyse: it asks nt_breaking_spectrum for theta's components on the
 * eigenvectors too, and LAPACK's dsyev with vectors ('V', dsteqr) gives eigenvalues that
 * differ in the last bits from those without ('N', dsterf), so lambda_min and the factor,
 * and the growth predicted from them, would change at round-off; it also measures the
 * distances at theta, which the run does not need here. */
static cJSON *breaking_factors(run_state *r)
{
    const cli_job *job = r->job;
    const nt_model *m = &job->spec.model;
    const nt_train_spec *ts = &job->spec.train;
    if (!job->spec.init.n_fixed || (ts->optimizer != NT_OPT_GD && ts->optimizer != NT_OPT_SGD)) return NULL;
    cJSON *arr = cJSON_CreateArray();
    for (int f = 0; f < job->spec.init.n_fixed; f++)
        for (int t = 0; t < r->n_list; t++) {
            if (strcmp(r->list[t].name, job->spec.init.fixed_point[f])) continue;
            int dim = nt_breaking_dim(m, &r->list[t]);
            double *lam = malloc(sizeof(double) * (size_t)(dim + 1)), factor = 0;
            nt_breaking_spectrum(r->e, m, &job->data.train, job->theta, &r->list[t], lam, NULL);
            for (int i = 0; i < dim; i++) factor = fmax(factor, fabs(1 - ts->lr * lam[i]));
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", r->list[t].name);
            cJSON_AddNumberToObject(o, "lambda_min", lam[0]);
            cJSON_AddNumberToObject(o, "factor", factor);
            cJSON_AddItemToArray(arr, o);
            free(lam);
        }
    return arr;
}

/* the analysis at theta (= job->theta, trained in place), as a CSV row and a JSON entry;
 * loss, loss_gamma: L and L_gamma at theta as the ledger logged them (the same numbers) */
static void analyse(run_state *r, int64_t step, int final, double loss, double loss_gamma)
{
    cli_job *job = r->job;
    const nt_analysis_spec *as = &job->spec.analysis;
    double t0 = cli_now();
    if (!r->quiet) fprintf(stderr, "%srun: analysis at step %lld: identities, spectrum%s\n", isatty(2) ? "\r" : "",
                           (long long)step, final ? ", density, sectors" : "");
    if (nt_check(r->e, &job->spec.model, &job->data.train, job->theta, r->list, r->n_list, NT_IDENTITY_TOL, r->res)) {
        nt_error err;
        nt_fail(&err, NT_EFAIL, "out of memory for the identities' workspace (d = %lld)", (long long)job->spec.model.d);
        cli_die("run", &err);
    }
    int held = 0;
    double worst = 0;
    for (int i = 0; i < r->n_checks; i++) {
        held += r->res[i].holds;
        worst = fmax(worst, fmax(r->res[i].first_order, r->res[i].second_order));
    }
    cli_spectrum_opts o = { .top = as->top, .bottom = as->bottom, .method = "auto", .density = final,
                            .sectors = final && job->spec.model.d <= 20000, .all_values = final };
    nt_spectrum sp;
    cli_spectrum_analyse(job, r->e, r->list, r->n_list, &o, &sp);
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
    cli_printf(&r->csv, ",%d", r->translations);
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
    cJSON *brk = breaking_factors(r);
    if (brk) cJSON_AddItemToObject(c, "breaking", brk);
    cJSON_AddNumberToObject(c, "seconds", cli_now() - t0);
    cJSON_AddItemToArray(r->checkpoints, c);
    if (final) {   /* kept for the final outputs, spectrum.json the document noether spectrum --json writes */
        r->fin = sp;
        r->final = cli_spectrum_doc(&sp, &o);
        r->has_final = 1;
    } else {
        nt_spectrum_free(&sp);
    }
    r->last_analysed = step;
    r->seconds += cli_now() - t0;
}

static void on_log(void *ctx, const nt_train_log *L, const double *theta)
{
    run_state *r = ctx;
    (void)theta;
    int64_t steps = r->job->spec.train.steps;
    if (L->step == steps) return;   /* the end: analysed after training, with the extras */
    if (L->step == 0 || (r->every > 0 && L->step % r->every == 0)) analyse(r, L->step, 0, L->loss, L->loss_gamma);
}

/* the analyses so far into a checkpoint, and back when the run resumes: the rows of
 * analysis.csv and the checkpoint entries of summary.json, so that a resumed run's
 * outputs are those of an uninterrupted one */
static void save_state(void *ctx, nt_checkpoint *c)
{
    run_state *r = ctx;
    char *cp = cJSON_PrintUnformatted(r->checkpoints);
    nt_checkpoint_put_bytes(c, "run.analysis_csv", (int64_t)r->csv.len, r->csv.s ? r->csv.s : "");
    nt_checkpoint_put_bytes(c, "run.checkpoints", (int64_t)strlen(cp), cp);
    nt_checkpoint_put_f64(c, "run.seconds", 1, &r->seconds);
    free(cp);
}

static int load_state(void *ctx, const nt_checkpoint *c, nt_error *err)
{
    run_state *r = ctx;
    const char *csv, *cp;
    int64_t n_csv, n_cp;
    if (nt_checkpoint_get_bytes(c, "run.analysis_csv", &csv, &n_csv, err) ||
        nt_checkpoint_get_bytes(c, "run.checkpoints", &cp, &n_cp, err) ||
        nt_checkpoint_get_f64(c, "run.seconds", 1, &r->seconds, err))
        return err->code;
    cJSON *arr = cJSON_Parse(cp);
    if (!cJSON_IsArray(arr)) {
        cJSON_Delete(arr);
        return nt_fail(err, NT_EINPUT, "%s: record run.checkpoints is not a JSON array", nt_checkpoint_path(c));
    }
    cJSON_Delete(r->checkpoints);
    r->checkpoints = arr;
    r->csv.len = 0;
    cli_printf(&r->csv, "%s", csv);
    return NT_OK;
}

/* the final spectrum: every eigenvalue (dense) and the density on a grid as CSV; the
 * sector spectra as CSV, one column per layer */
static void write_final(run_state *r, const char *dir)
{
    const nt_spectrum *sp = &r->fin;
    cli_buf t = {0};
    if (sp->nodes) {
        const int n = sp->density_probes * sp->density_steps;
        const double *x = sp->nodes, *w = sp->weights;
        double lo = INFINITY, hi = -INFINITY;
        for (int i = 0; i < n; i++)
            if (w[i] > 0) { lo = fmin(lo, x[i]); hi = fmax(hi, x[i]); }
        /* Gaussian broadening of the quadrature: sigma a hundredth of the spectral range */
        enum { NPTS = 500 };
        double sigma = fmax((hi - lo) / 100, 1e-12), grid[NPTS], rho[NPTS];
        for (int i = 0; i < NPTS; i++) grid[i] = lo - 5 * sigma + (hi - lo + 10 * sigma) * i / (NPTS - 1);
        nt_density_grid(x, w, n, sigma, grid, NPTS, rho);
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
        cli_printf(&t, "%slayer_%d", cols++ ? "," : "index,", S->layer);
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
static cJSON *distances(const char *dir)
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
 * along the run (docs/theory.md §4): per step the breaking part grows by at most
 * f = max_i |1 - lr lambda_i| (lambda_i of H_gamma on Fix(T)^perp), measured at each analysis
 * checkpoint; log f is taken linear in the step between checkpoints (trapezoids), so the
 * prediction is exp(sum_k (s_{k+1} - s_k) (log f_k + log f_{k+1}) / 2).  The window runs from
 * the first checkpoint after the start to the last: in the first steps the round-off the run
 * starts from is not yet along the most unstable direction (the bound f^n overstates its
 * growth there) and the spectrum moves fastest.  Beside it, the start's factor raised to the
 * window's steps.  A fixed point whose distance is 0 at the window's start is left out. */
static cJSON *growth(const run_state *r, const char *dir)
{
    report_table L;
    cJSON *arr = cJSON_CreateArray();
    const cJSON *cps = r->checkpoints, *first = cJSON_GetArrayItem(cps, 0), *it;
    const int n_cp = cJSON_GetArraySize(cps);
    if (n_cp < 3 || !cJSON_GetObjectItem(first, "breaking") || !report_table_read(dir, "ledger.csv", &L)) return arr;
    const int st = report_col(&L, "step");
    const double a = num(cJSON_GetArrayItem(cps, 1), "step"), b = num(cJSON_GetArrayItem(cps, n_cp - 1), "step");
    int ra = 0;
    while (ra < L.rows && report_at(&L, ra, st) != a) ra++;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(first, "breaking")) {
        const char *name = cJSON_GetObjectItem(it, "name")->valuestring;
        char col[160];
        snprintf(col, sizeof col, "%s:distance", name);
        int c = report_col(&L, col);
        if (c < 0 || ra >= L.rows || !(report_at(&L, ra, c) > 0)) continue;
        double logp = 0, prev = NAN;
        for (int k = 1; k < n_cp; k++) {   /* log f at checkpoint k, trapezoids from the one before */
            const cJSON *cp = cJSON_GetArrayItem(cps, k), *e;
            double f = NAN;
            cJSON_ArrayForEach(e, cJSON_GetObjectItem(cp, "breaking"))
                if (!strcmp(cJSON_GetObjectItem(e, "name")->valuestring, name)) f = log(num(e, "factor"));
            if (k > 1) logp += (num(cp, "step") - num(cJSON_GetArrayItem(cps, k - 1), "step")) * (prev + f) / 2;
            prev = f;
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", name);
        cJSON_AddNumberToObject(o, "from_step", a);
        cJSON_AddNumberToObject(o, "to_step", b);
        cJSON_AddNumberToObject(o, "measured", report_at(&L, L.rows - 1, c) / report_at(&L, ra, c));
        cJSON_AddNumberToObject(o, "predicted", exp(logp));
        cJSON_AddNumberToObject(o, "predicted_from_start", pow(num(it, "factor"), b - a));
        cJSON_AddItemToArray(arr, o);
    }
    report_table_free(&L);
    return arr;
}

/* the headline numbers of the final checkpoint, for summary.json */
static cJSON *final_view(const run_state *r)
{
    const nt_spectrum *sp = &r->fin;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "method", sp->dense ? "dense" : "lanczos");
    cJSON *top = cJSON_AddArrayToObject(o, "top"), *bottom = cJSON_AddArrayToObject(o, "bottom");
    for (int i = 0; i < sp->top; i++) cJSON_AddItemToArray(top, cJSON_CreateNumber(sp->top_values[i]));
    for (int i = 0; i < sp->bottom; i++) cJSON_AddItemToArray(bottom, cJSON_CreateNumber(sp->bottom_values[i]));
    cJSON *flat = cJSON_AddObjectToObject(o, "flat");
    cJSON_AddNumberToObject(flat, "predicted_everywhere", r->translations);
    if (sp->has_flat && sp->flat.orbit.rank >= 0)   /* eigenvalues with multiplicities (S1gamma) */
        cJSON_AddItemToObject(flat, "at_critical_point", cli_critical_json(&sp->flat));
    if (sp->at_gamma >= 0) {
        cJSON_AddNumberToObject(flat, "found", sp->at_gamma);
        cJSON_AddNumberToObject(flat, "tolerance", sp->at_gamma_tol);
    }
    cJSON_AddNumberToObject(flat, "gamma", r->job->spec.model.weight_decay);
    cJSON_AddItemToObject(o, "alignment", cli_alignment_json(sp));
    if (sp->has_flat && sp->sharp.applies) cJSON_AddItemToObject(o, "sharp", cli_sharp_json(&sp->sharp));
    if (sp->has_flat && sp->n_scale) cJSON_AddItemToObject(o, "alignment_scale_invariant", cli_scale_json(sp));
    if (sp->nodes) {
        cJSON *dd = cJSON_AddObjectToObject(o, "density");
        cJSON_AddNumberToObject(dd, "moment1", sp->moment[0]);
        cJSON_AddNumberToObject(dd, "moment2", sp->moment[1]);
        cJSON_AddNumberToObject(dd, "sigma", r->sigma);
    }
    cJSON_AddItemToObject(o, "sectors", cli_sectors_json(sp, 0));
    return o;
}

/* an integer of o, `absent` when it is not there */
static int int_of(const cJSON *o, const char *key, int absent)
{
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsNumber(v) ? v->valueint : absent;
}

/* Every verdict of the run, decided once (nt_verdicts_decide, src/analysis/verdict.c): from
 * doc's ledger and stopped, the checkpoints' identities (r->checkpoints, restored on a
 * resume), and the final spectrum r->fin.  summary.json's all_identities_hold, the exit
 * code, the report's "At a glance" marks and the closing lines all read v.  The sectors are
 * those of summary.json's final.sectors: the S_n sectors (a skipped one counts -1 found, 0
 * predicted), then the mirrors (-1, 0). */
static int decide(const cJSON *doc, const run_state *r, nt_verdicts *v, nt_error *err)
{
    const nt_spectrum *sp = &r->fin;
    const cJSON *led = cJSON_GetObjectItem(doc, "ledger"), *it;
    const int n_cp = cJSON_GetArraySize(r->checkpoints), n_bl = sp->has_flat ? sp->n_scale : 0,
              n_sec = sp->n_sectors + sp->n_mirrors;
    int *holding = malloc(sizeof(int) * (size_t)(n_cp + 1)), *found = malloc(sizeof(int) * (size_t)(n_sec + 1)),
        *predicted = malloc(sizeof(int) * (size_t)(n_sec + 1)), k = 0;
    double *measured = malloc(sizeof(double) * (size_t)(n_bl + 1)), *fraction = malloc(sizeof(double) * (size_t)(n_bl + 1));
    cJSON_ArrayForEach(it, r->checkpoints) holding[k++] = int_of(it, "identities_holding", 0);
    for (int i = 0; i < n_bl; i++) {
        measured[i] = sp->scale[i].measured;
        fraction[i] = sp->scale[i].predicted;
    }
    for (int i = 0; i < n_sec; i++) {
        const nt_sector *S = i < sp->n_sectors && !sp->sectors[i].skipped ? &sp->sectors[i] : NULL;
        found[i] = S ? S->found : -1;
        predicted[i] = S ? S->predicted : 0;
    }
    const int sharp = sp->has_flat && sp->sharp.applies;
    const nt_run_facts f = {
        .identities = r->n_checks, .checkpoints = n_cp, .identities_holding = holding,
        .quantities = int_of(led, "quantities", 0), .ledger_max_gap = num(led, "max_gap"),
        .stopped = !cJSON_IsNull(cJSON_GetObjectItem(doc, "stopped")),
        .flat_found = sp->at_gamma, .flat_predicted = r->translations,
        .sharp = sharp, .radial_curvature = sharp ? sp->sharp.radial_curvature : NAN,
        .radial_closed_form = sharp ? sp->sharp.closed_form : NAN,
        .blocks = n_bl, .block_measured = measured, .block_predicted = fraction,
        .sectors = n_sec, .sector_found = found, .sector_predicted = predicted };
    int rc = nt_verdicts_decide(&f, v, err);
    free(holding);
    free(found);
    free(predicted);
    free(measured);
    free(fraction);
    return rc;
}

/* The whole job; returns the exit code, or -1 with *err set (an interrupted or diverged
 * run, a failed report): the caller frees the job, then exits through cli_die. */
static int run_job(cli_job *job, const char *cmd, const char *dir, int quiet, int resume, int force, nt_error *err)
{
    cli_claim_dir(cmd, dir, resume, force);   /* locked; SIGINT/SIGTERM set cli_stop from here to the end */
    nt_transform *list = NULL;
    int n_list = 0;
    cli_load_transforms(cmd, job, &list, &n_list);
    run_state r = { .job = job, .e = cli_engine(job, 16), .list = list, .n_list = n_list, .quiet = quiet,
                    .n_checks = nt_check_count(list, n_list), .every = job->spec.analysis.every, .last_analysed = -1,
                    .checkpoints = cJSON_CreateArray() };
    nt_orbit orb;   /* the pure shifts (A = 0): H_gamma c = gamma c at every theta, their span's rank */
    nt_orbit_analyse(&job->spec.model, list, n_list, job->theta, 1e-10, &orb);
    r.translations = orb.shift_rank;
    nt_orbit_free(&orb);
    r.res = malloc(sizeof(nt_check_result) * (size_t)(r.n_checks + 1));
    /* analysis steps must be logged steps: log every gcd(log_every, every) */
    nt_train_spec *ts = &job->spec.train;
    for (int64_t a = r.every, b = ts->log_every; a > 0; ) { int64_t t = b % a; b = a; a = t; ts->log_every = b; }
    if (!quiet) { cli_describe(stderr, job); fputc('\n', stderr); }
    double t0 = cli_now();
    int rc, all_hold = 1;
    nt_verdicts v = {0};
    cli_train_hook hook = { on_log, &r, save_state, load_state };
    cJSON *doc = cli_train_run(job, dir, quiet, resume, &hook, &rc, err);
    if (rc >= 128) {   /* interrupted: what there is so far; the caller says how to resume */
        cli_write_in(cmd, dir, "analysis.csv", r.csv.s ? r.csv.s : "");
        cJSON_AddItemToObject(doc, "analysis", r.checkpoints);
        cli_write_json(cmd, dir, "summary.json", doc);
        goto done;
    }
    /* The final phase: the checkpoint of the finished training stays until the report is
     * written, so a stop here (checked between the phases) resumes at the final analysis. */
    char where[128];
    const int64_t step = (int64_t)cJSON_GetObjectItem(doc, "steps")->valuedouble;
    snprintf(where, sizeof where, "in the final analysis, after step %lld of %lld (training done)", (long long)step,
             (long long)ts->steps);
    if (!rc && cli_stop) { rc = cli_interrupted(err, job, dir, where); cJSON_Delete(r.checkpoints); goto done; }
    analyse(&r, step, 1, num(doc, "final_loss"), num(doc, "final_loss_gamma"));
    if (!rc && cli_stop) { rc = cli_interrupted(err, job, dir, where); cJSON_Delete(r.checkpoints); goto done; }

    cli_write_in(cmd, dir, "analysis.csv", r.csv.s);
    write_final(&r, dir);
    cli_write_json(cmd, dir, "spectrum.json", r.final);
    cJSON *fin = final_view(&r);
    if (decide(doc, &r, &v, err)) {
        rc = err->code;
        cJSON_Delete(fin);
        cJSON_Delete(r.checkpoints);
        goto done;
    }
    all_hold = v.identities != NT_VERDICT_FAILS;
    cJSON *an = cJSON_AddObjectToObject(doc, "analysis");
    cJSON_AddNumberToObject(an, "transformations", n_list);
    cJSON_AddNumberToObject(an, "identities", r.n_checks);
    double worst = 0;
    cJSON *c;
    cJSON_ArrayForEach(c, r.checkpoints) worst = fmax(worst, num(c, "worst_residual"));
    cJSON_AddBoolToObject(an, "all_identities_hold", all_hold);
    cJSON_AddNumberToObject(an, "worst_residual", worst);
    cJSON_AddItemToObject(an, "checkpoints", r.checkpoints);
    cJSON_AddItemToObject(an, "final", fin);
    cJSON_AddItemToObject(an, "distances_to_fixed_points", distances(dir));
    cJSON_AddItemToObject(an, "fixed_point_growth", growth(&r, dir));
    cJSON_AddNumberToObject(an, "seconds", r.seconds);
    cJSON *ids = cJSON_AddArrayToObject(an, "identities_final");
    for (int i = 0; i < r.n_checks; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", r.res[i].name);
        cJSON_AddStringToObject(o, "kind", r.res[i].discrete ? "discrete" : "continuous");
        cJSON_AddStringToObject(o, "type", r.res[i].equivariance ? "equivariance" : "symmetry");
        cJSON_AddNumberToObject(o, "first_order_residual", r.res[i].first_order);
        cJSON_AddNumberToObject(o, "second_order_residual", r.res[i].second_order);
        cJSON_AddBoolToObject(o, "holds", r.res[i].holds);
        cJSON_AddItemToArray(ids, o);
    }
    cJSON_AddItemToObject(doc, "info", cli_info_json(job));
    cJSON_AddNumberToObject(doc, "seconds_total", cli_now() - t0);
    cJSON_AddStringToObject(doc, "report", "report.html");
    cli_write_json(cmd, dir, "summary.json", doc);
    if (!rc && cli_stop) { rc = cli_interrupted(err, job, dir, "before the report (training done)"); goto done; }
    if (!quiet) fprintf(stderr, "run: plots (gnuplot) and report\n");
    if (!rc) {
        rc = report_build(dir, doc, &v, &cli_stop, err);
        if (rc >= 128 || (!rc && cli_stop)) rc = cli_interrupted(err, job, dir, "while the report was drawn (training done)");
        if (!rc) cli_checkpoint_done(dir);   /* every output written */
    } else {
        report_build(dir, doc, &v, &cli_stop, &(nt_error){0});   /* a diverged run: the report of what there is */
    }
    if (!quiet) report_print_summary(stdout, dir, doc, &v);
done:
    nt_verdicts_free(&v);
    cJSON_Delete(doc);
    cJSON_Delete(r.final);
    if (r.has_final) nt_spectrum_free(&r.fin);
    free(r.res);
    free(r.csv.s);
    nt_engine_free(r.e);
    nt_transforms_free(list, n_list);
    return rc ? -1 : all_hold ? 0 : 3;
}

int cmd_run(int argc, char **argv)
{
    const char *spec = NULL, *dir = "noether-run", *params = NULL, *quiet = NULL, *resume = NULL, *force = NULL;
    cli_opt opts[] = {{"-o", 0, &dir}, {"--params", 0, &params}, {"--resume", 1, &resume}, {"--force", 1, &force},
                      {"--quiet", 1, &quiet}, {NULL, 0, NULL}};
    cli_parse("run", run_usage, argc, argv, opts, &spec);
    if (!spec) cli_usage_error("run", "a SPEC file is needed (noether demo runs the built-in default)");
    if (resume && params) cli_usage_error("run", "--resume continues from DIR/checkpoint.bin; --params cannot go with it");
    if (resume && force) cli_usage_error("run", "--force starts afresh: it excludes --resume");
    cli_job job;
    cli_job_load(&job, "run", spec, params);
    nt_error err = {0};
    int rc = run_job(&job, "run", dir, quiet != NULL, resume != NULL, force != NULL, &err);
    cli_job_free(&job);
    if (rc < 0) cli_die("run", &err);
    return rc;
}

int cmd_demo(int argc, char **argv)
{
    const char *dir = "noether-demo", *quiet = NULL, *resume = NULL, *force = NULL;
    cli_opt opts[] = {{"-o", 0, &dir}, {"--resume", 1, &resume}, {"--force", 1, &force}, {"--quiet", 1, &quiet},
                      {NULL, 0, NULL}};
    cli_parse("demo", demo_usage, argc, argv, opts, NULL);
    if (resume && force) cli_usage_error("demo", "--force starts afresh: it excludes --resume");
    cli_job job;
    cli_job_load(&job, "demo", NULL, NULL);
    nt_error err = {0};
    int rc = run_job(&job, "demo", dir, quiet != NULL, resume != NULL, force != NULL, &err);
    cli_job_free(&job);
    if (rc < 0) cli_die("demo", &err);
    return rc;
}
