/* cmd_demo.c: noether demo: the main job on the built-in default (a ReLU MLP with a
 * softmax head on the wine data, compiled in), as far as the toolbox goes today:
 *   1. the catalogue of symmetries and every identity at the seeded initialization;
 *   2. training with the ledger of every conserved or broken quantity;
 *   3. at the trained parameters: the identities again, an exact Hessian-vector product
 *      against the dense Hessian, the spectrum, and the flat directions the logit
 *      translations predict (H c = 0, so H_gamma c = gamma c: one eigenvalue gamma per
 *      translation generator, THEORY.md §3).
 * Results go to the output folder. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include <lapacke.h>
#include "cli.h"

static const char usage[] =
    "usage: noether demo [-o DIR] [--quiet]\n\n"
    "Runs the main job on the built-in default (no files needed): checks every identity of\n"
    "the model's symmetries, trains it with the ledger of conserved and broken quantities,\n"
    "and analyses the trained network's Hessian.  Writes into DIR (default noether-demo):\n"
    "params_init.npy, params_final.npy, ledger.csv, hessian.npy, eigenvalues.npy,\n"
    "summary.json.\n";

typedef struct { int count, held; double worst, seconds; } check_stats;

static check_stats run_check(nt_engine *e, const cli_job *job, const double *theta,
                             const nt_transform *list, int n)
{
    check_stats s = { nt_check_count(list, n), 0, 0, cli_now() };
    nt_check_result *r = malloc(sizeof *r * (size_t)s.count);
    nt_check(e, &job->spec.model, &job->data.train, theta, list, n, 1e-8, r);
    for (int i = 0; i < s.count; i++) {
        s.held += r[i].holds;
        s.worst = fmax(s.worst, fmax(r[i].first_order, r[i].second_order));
    }
    s.seconds = cli_now() - s.seconds;
    free(r);
    return s;
}

int cmd_demo(int argc, char **argv)
{
    const char *dir = "noether-demo", *quiet = NULL;
    cli_opt opts[] = {{"-o", 0, &dir}, {"--quiet", 1, &quiet}, {NULL, 0, NULL}};
    cli_parse("demo", usage, argc, argv, opts, NULL);
    cli_mkdir("demo", dir);
    cli_job job;
    cli_job_load(&job, "demo", NULL, NULL);
    const nt_model *m = &job.spec.model;
    const int64_t d = m->d;
    const double gam = m->weight_decay;
    if (!quiet) { cli_describe(stdout, &job); putchar('\n'); }
    nt_transform *list = NULL;
    int n_tr = 0, translations = 0;
    cli_load_transforms("demo", &job, &list, &n_tr);
    for (int i = 0; i < n_tr; i++) translations += list[i].kind == NT_TR_TRANSLATION ? list[i].generators : 0;
    nt_engine *e = cli_engine(&job, 32);

    /* 1. the identities at the initialization; 2. training with the ledger */
    check_stats c0 = run_check(e, &job, job.theta, list, n_tr);
    nt_error err = {0};
    int rc;
    cJSON *doc = cli_train_run(&job, dir, 1, NULL, &rc, &err);   /* a second of training: no progress lines */
    if (rc) cli_die("demo", &err);

    /* 3. at the trained parameters */
    check_stats c1 = run_check(e, &job, job.theta, list, n_tr);
    double *g = malloc(sizeof(double) * d), *H = malloc(sizeof(double) * d * d), *A = malloc(sizeof(double) * d * d);
    double *v = malloc(sizeof(double) * d), *hv = malloc(sizeof(double) * d), *Hv = malloc(sizeof(double) * d);
    double *lam = malloc(sizeof(double) * d);
    double t0 = cli_now(), loss = nt_grad(e, job.theta, &job.data.train, g), t_grad = cli_now() - t0;
    for (int64_t i = 0; i < d; i++) v[i] = nt_rand_normal(job.spec.init.seed, 99, (uint64_t)i);
    t0 = cli_now();
    nt_hvp(e, job.theta, &job.data.train, 1, v, hv, NULL);
    double t_hvp = cli_now() - t0;
    t0 = cli_now();
    nt_hessian(e, job.theta, &job.data.train, H);
    double t_hess = cli_now() - t0;
    cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)d, (int)d, 1.0, H, (int)d, v, 1, 0.0, Hv, 1);
    double hvp_vs_dense = nt_rel_diff(d, hv, Hv);
    memcpy(A, H, sizeof(double) * d * d);
    if (LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'N', 'U', (int)d, A, (int)d, lam) != 0) {
        nt_fail(&err, NT_EFAIL, "LAPACK dsyevd did not converge on the Hessian");
        cli_die("demo", &err);
    }
    int64_t s1[1] = {d}, s2[2] = {d, d};
    cli_write_npy("demo", dir, "hessian.npy", H, 2, s2);
    cli_write_npy("demo", dir, "eigenvalues.npy", lam, 1, s1);
    double scale = fmax(fabs(lam[0]), fabs(lam[d - 1]));
    int at_gamma = 0, negative = 0;
    for (int64_t i = 0; i < d; i++) {
        at_gamma += fabs(lam[i] - gam) <= 1e-10 * scale;
        negative += lam[i] < -1e-10 * scale;
    }

    cJSON *an = cJSON_AddObjectToObject(doc, "analysis");
    cJSON_AddNumberToObject(an, "transformations", n_tr);
    cJSON_AddNumberToObject(an, "identities", c0.count);
    cJSON_AddNumberToObject(an, "identities_holding_at_init", c0.held);
    cJSON_AddNumberToObject(an, "identities_holding_trained", c1.held);
    cJSON_AddNumberToObject(an, "worst_residual", fmax(c0.worst, c1.worst));
    cJSON_AddNumberToObject(an, "loss", loss);
    cJSON_AddNumberToObject(an, "grad_norm", nt_norm2(d, g));
    cJSON_AddNumberToObject(an, "hvp_vs_dense_hessian", hvp_vs_dense);
    cJSON_AddNumberToObject(an, "lambda_max", lam[d - 1]);
    cJSON_AddNumberToObject(an, "lambda_min", lam[0]);
    cJSON_AddNumberToObject(an, "eigenvalues_negative", negative);
    cJSON_AddNumberToObject(an, "predicted_eigenvalues_at_gamma", translations);
    cJSON_AddNumberToObject(an, "eigenvalues_at_gamma", at_gamma);
    cJSON_AddNumberToObject(an, "seconds_grad", t_grad);
    cJSON_AddNumberToObject(an, "seconds_hvp", t_hvp);
    cJSON_AddNumberToObject(an, "seconds_hessian", t_hess);
    cJSON_AddNumberToObject(an, "seconds_check", c0.seconds + c1.seconds);
    cli_write_json("demo", dir, "summary.json", doc);
    const cJSON *led = cJSON_GetObjectItem(doc, "ledger");
    if (!quiet)
        printf("symmetries        %d transformations, %d identities (F1, S1, S2, D1, fixed points):\n"
               "                  %d hold at the initialization, %d after training (worst residual %.1e)\n"
               "training          %d steps of %s: loss %.4g, test accuracy %.3f\n"
               "ledger            %d conserved or tracked quantities; measured and predicted agree to %.1e\n"
               "trained network   loss %.6g, |gradient| %.3e\n"
               "                  exact H v against the dense Hessian: %.1e relative (%.2f ms; gradient %.2f ms)\n"
               "                  spectrum: lambda_max %.4e, lambda_min %.4e, %d negative (dense, %.2f s)\n"
               "flat directions   %d logit translations predict %d eigenvalues equal to gamma = %g: found %d\n"
               "results written to %s/\n",
               n_tr, c0.count, c0.held, c1.held, fmax(c0.worst, c1.worst),
               cJSON_GetObjectItem(doc, "steps")->valueint, cJSON_GetObjectItem(doc, "optimizer")->valuestring,
               cJSON_GetObjectItem(doc, "final_loss")->valuedouble, cJSON_GetObjectItem(doc, "test_accuracy")->valuedouble,
               cJSON_GetObjectItem(led, "quantities")->valueint, cJSON_GetObjectItem(led, "max_gap")->valuedouble,
               loss, nt_norm2(d, g), hvp_vs_dense, 1e3 * t_hvp, 1e3 * t_grad, lam[d - 1], lam[0], negative, t_hess,
               translations, translations, gam, at_gamma, dir);
    int all = c0.held == c0.count && c1.held == c1.count;
    cJSON_Delete(doc);
    free(g); free(H); free(A); free(v); free(hv); free(Hv); free(lam);
    nt_transforms_free(list, n_tr);
    nt_engine_free(e);
    cli_job_free(&job);
    return all ? 0 : 3;
}
