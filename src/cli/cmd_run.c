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
#include "run.h"
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

/* the analysis at theta (= job->theta, trained in place), as a CSV row and a JSON entry;
 * loss, loss_gamma: L and L_gamma at theta as the ledger logged them (the same numbers) */
static void analyse(run_state *r, int64_t step, int final, double loss, double loss_gamma)
{
    cli_job *job = r->job;
    const nt_analysis_spec *as = &job->spec.analysis;
    double t0 = cli_now();
    if (!r->quiet) fprintf(stderr, "%srun: analysis at step %lld: identities, spectrum%s\n", isatty(2) ? "\r" : "",
                           (long long)step, final ? ", density, sectors" : "");
    nt_error err = {0};
    if (nt_check(r->e, &job->spec.model, &job->data.train, job->theta, r->list, r->n_list, NT_IDENTITY_TOL, r->res, &err))
        cli_die("run", &err);
    int held, n_bf;
    double worst;
    nt_check_tally(r->res, r->n_checks, &held, &worst);
    cli_spectrum_opts o = { .top = as->top, .bottom = as->bottom, .method = "auto", .density = final,
                            .sectors = final && job->spec.model.d <= 20000, .all_values = final };
    nt_spectrum sp;
    cli_spectrum_analyse(job, r->e, r->list, r->n_list, &o, &sp);
    nt_breaking_factor *bf;
    if (nt_breaking_factors(r->e, &job->spec, &job->data.train, job->theta, r->list, r->n_list, &bf, &n_bf, &err))
        cli_die("run", &err);
    cJSON *c = run_row(r, &sp, step, loss, loss_gamma, held, worst, bf, n_bf);
    free(bf);
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
    r.res = malloc(sizeof(nt_check_result) * (size_t)(r.n_checks + 1));
    /* analysis steps must be logged steps: log every gcd(log_every, every) */
    nt_train_spec *ts = &job->spec.train;
    for (int64_t a = r.every, b = ts->log_every; a > 0; ) { int64_t t = b % a; b = a; a = t; ts->log_every = b; }
    if (!quiet) { cli_describe(stderr, job); fputc('\n', stderr); }
    double t0 = cli_now();
    int rc, all_hold = 1;
    nt_verdicts v = {0};
    cli_train_hook hook = { on_log, &r, run_save_state, run_load_state };
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
    analyse(&r, step, 1, run_num(doc, "final_loss"), run_num(doc, "final_loss_gamma"));
    if (!rc && cli_stop) { rc = cli_interrupted(err, job, dir, where); cJSON_Delete(r.checkpoints); goto done; }

    cli_write_in(cmd, dir, "analysis.csv", r.csv.s);
    run_write_final(&r, dir);
    cli_write_json(cmd, dir, "spectrum.json", r.final);
    cJSON *fin = run_final_view(&r), *margin = run_margin(&r, dir), *laws = run_laws(&r);
    if (run_decide(doc, &r, &v, err)) {
        rc = err->code;
        cJSON_Delete(fin);
        cJSON_Delete(margin);
        cJSON_Delete(laws);
        cJSON_Delete(r.checkpoints);
        goto done;
    }
    all_hold = v.identities != NT_VERDICT_FAILS;
    cJSON *an = cJSON_AddObjectToObject(doc, "analysis");
    cJSON_AddNumberToObject(an, "transformations", n_list);
    cJSON_AddNumberToObject(an, "identities", r.n_checks);
    double worst = 0;
    cJSON *c;
    cJSON_ArrayForEach(c, r.checkpoints) worst = fmax(worst, run_num(c, "worst_residual"));
    cJSON_AddBoolToObject(an, "all_identities_hold", all_hold);
    cJSON_AddNumberToObject(an, "worst_residual", worst);
    cJSON_AddItemToObject(an, "checkpoints", r.checkpoints);
    cJSON_AddItemToObject(an, "final", fin);
    cJSON_AddItemToObject(an, "distances_to_fixed_points", run_distances(dir));
    cJSON_AddItemToObject(an, "fixed_point_growth", run_growth(&r, dir));
    if (margin) cJSON_AddItemToObject(an, "margin_growth", margin);
    cJSON_AddItemToObject(an, "discovery", laws);
    cJSON_AddNumberToObject(an, "seconds", r.seconds);
    cJSON_AddItemToObject(an, "identities_final", run_identities_json(&r));
    cJSON_AddItemToObject(doc, "info", cli_info_json(job));
    cJSON_AddItemToObject(doc, "theta_origin", run_theta_origin(job));
    cJSON_AddNumberToObject(doc, "seconds_total", cli_now() - t0);
    cJSON_AddStringToObject(doc, "report", "report.html");
    cli_write_json(cmd, dir, "summary.json", doc);
    if (!rc && cli_stop) { rc = cli_interrupted(err, job, dir, "before the report (training done)"); goto done; }
    if (!quiet) fprintf(stderr, "run: plots (gnuplot) and report\n");
    if (!cli_writer()) {   /* under mpirun rank 0 draws the report */
    } else if (!rc) {
        rc = report_build(dir, doc, &v, &cli_stop, err);
        if (rc >= 128 || (!rc && cli_stop)) rc = cli_interrupted(err, job, dir, "while the report was drawn (training done)");
        if (!rc) cli_checkpoint_done(dir);   /* every output written */
    } else {
        report_build(dir, doc, &v, &cli_stop, &(nt_error){0});   /* a diverged run: the report of what there is */
    }
    if (!quiet) report_print_summary(stdout, dir, doc, &v);
done:
    nt_verdicts_free(&v);
    if (r.has_laws) nt_discovery_free(&r.laws);
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
