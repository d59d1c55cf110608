/* cmd_demo.c: noether demo: the main job on the built-in default (a ReLU MLP with a
 * softmax head on the wine data, compiled in).  What exists so far: the model, the loss and
 * gradient at the seeded initialization, an exact Hessian-vector product, and the dense
 * Hessian with its eigenvalues, and every identity of the model's catalogue of symmetries,
 * with the flat directions the logit translations predict (H c = 0, so H_gamma c = gamma c:
 * one eigenvalue gamma per translation generator).  Results go to the output folder. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include <lapacke.h>
#include "cli.h"

static const char usage[] =
    "usage: noether demo [-o DIR] [--json]\n\n"
    "Runs the main job on the built-in default (no files needed) and writes its results to\n"
    "DIR (default noether-demo): params_init.npy, grad.npy, hessian.npy, eigenvalues.npy,\n"
    "summary.json.\n";

static void write_npy(const char *dir, const char *name, const double *x, int ndim, const int64_t *shape)
{
    char path[NT_PATH_MAX + 64];
    nt_error err;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (nt_npy_write(path, x, ndim, shape, &err)) cli_die("demo", &err);
}

int cmd_demo(int argc, char **argv)
{
    const char *dir = "noether-demo", *json = NULL;
    cli_opt opts[] = {{"-o", 0, &dir}, {"--json", 1, &json}, {NULL, 0, NULL}};
    cli_parse("demo", usage, argc, argv, opts, NULL);
    cli_mkdir("demo", dir);
    cli_job job;
    cli_job_load(&job, "demo", NULL, NULL);
    const nt_model *m = &job.spec.model;
    const int64_t d = m->d;
    if (!json) { cli_describe(stdout, &job); putchar('\n'); }

    nt_engine *e = cli_engine(&job, 32);
    double *g = malloc(sizeof(double) * d), *H = malloc(sizeof(double) * d * d);
    double *v = malloc(sizeof(double) * d), *hv = malloc(sizeof(double) * d), *lam = malloc(sizeof(double) * d);
    double t0 = cli_now();
    double loss = nt_grad(e, job.theta, &job.data.train, g);
    double t_grad = cli_now() - t0;

    /* one exact product, against the dense Hessian's column combination */
    for (int64_t i = 0; i < d; i++) v[i] = nt_rand_normal(job.spec.init.seed, 99, (uint64_t)i);
    t0 = cli_now();
    nt_hvp(e, job.theta, &job.data.train, 1, v, hv, NULL);
    double t_hvp = cli_now() - t0;
    t0 = cli_now();
    nt_hessian(e, job.theta, &job.data.train, H);
    double t_hess = cli_now() - t0;
    double *Hv = malloc(sizeof(double) * d);
    cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)d, (int)d, 1.0, H, (int)d, v, 1, 0.0, Hv, 1);
    double hvp_vs_dense = nt_rel_diff(d, hv, Hv);

    int64_t s1[1] = {d}, s2[2] = {d, d};
    write_npy(dir, "params_init.npy", job.theta, 1, s1);
    write_npy(dir, "grad.npy", g, 1, s1);
    write_npy(dir, "hessian.npy", H, 2, s2);
    /* eigenvalues, ascending (LAPACK dsyevd on a copy) */
    double *A = malloc(sizeof(double) * d * d);
    memcpy(A, H, sizeof(double) * d * d);
    if (LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'N', 'U', (int)d, A, (int)d, lam) != 0) {
        nt_error err;
        nt_fail(&err, NT_EFAIL, "LAPACK dsyevd did not converge on the Hessian");
        cli_die("demo", &err);
    }
    write_npy(dir, "eigenvalues.npy", lam, 1, s1);
    double scale = fabs(lam[0]) > fabs(lam[d - 1]) ? fabs(lam[0]) : fabs(lam[d - 1]);
    const double gam = m->weight_decay;
    int near_zero = 0, negative = 0, at_gamma = 0;
    for (int64_t i = 0; i < d; i++) {
        near_zero += fabs(lam[i]) <= 1e-10 * scale;
        negative += lam[i] < -1e-10 * scale;
        at_gamma += fabs(lam[i] - gam) <= 1e-10 * scale;
    }

    /* the catalogue and its identities */
    nt_transform *list = NULL;
    int n_tr = 0;
    cli_load_transforms("demo", &job, &list, &n_tr);
    int count = nt_check_count(list, n_tr), held = 0, translations = 0;
    nt_check_result *res = malloc(sizeof *res * (size_t)count);
    t0 = cli_now();
    nt_check(e, m, &job.data.train, job.theta, list, n_tr, 1e-8, res);
    double t_check = cli_now() - t0, worst = 0;
    for (int i = 0; i < count; i++) {
        held += res[i].holds;
        worst = fmax(worst, fmax(res[i].first_order, res[i].second_order));
    }
    for (int i = 0; i < n_tr; i++) translations += list[i].kind == NT_TR_TRANSLATION ? list[i].generators : 0;

    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "spec", job.spec.path);
    cJSON_AddNumberToObject(doc, "d", (double)d);
    cJSON_AddStringToObject(doc, "data", job.data.desc);
    cJSON_AddNumberToObject(doc, "loss", loss);
    cJSON_AddNumberToObject(doc, "grad_norm", nt_norm2(d, g));
    cJSON_AddNumberToObject(doc, "hvp_vs_dense_hessian", hvp_vs_dense);
    cJSON_AddNumberToObject(doc, "lambda_max", lam[d - 1]);
    cJSON_AddNumberToObject(doc, "lambda_min", lam[0]);
    cJSON_AddNumberToObject(doc, "eigenvalues_near_zero", near_zero);
    cJSON_AddNumberToObject(doc, "eigenvalues_negative", negative);
    cJSON_AddNumberToObject(doc, "transformations", n_tr);
    cJSON_AddNumberToObject(doc, "identities_checked", count);
    cJSON_AddNumberToObject(doc, "identities_holding", held);
    cJSON_AddNumberToObject(doc, "worst_residual", worst);
    cJSON_AddNumberToObject(doc, "predicted_eigenvalues_at_gamma", translations);
    cJSON_AddNumberToObject(doc, "eigenvalues_at_gamma", at_gamma);
    cJSON_AddNumberToObject(doc, "seconds_check", t_check);
    cJSON_AddNumberToObject(doc, "seconds_grad", t_grad);
    cJSON_AddNumberToObject(doc, "seconds_hvp", t_hvp);
    cJSON_AddNumberToObject(doc, "seconds_hessian", t_hess);
    char *text = cJSON_Print(doc), path[NT_PATH_MAX + 64];
    nt_error err;
    snprintf(path, sizeof path, "%s/summary.json", dir);
    size_t len = strlen(text);
    text = realloc(text, len + 2);
    strcpy(text + len, "\n");
    if (cli_write_file(path, text, &err)) cli_die("demo", &err);
    if (json) {
        puts(text);
    } else {
        printf("at the seeded initialization:\n"
               "  loss                      %.10g\n"
               "  |gradient|                %.6e   (%.2f ms)\n"
               "  exact H v vs dense H v    %.2e relative   (one HVP %.2f ms)\n"
               "  dense Hessian             %lld x %lld   (%.2f s)\n"
               "  eigenvalues               lambda_max %.6e, lambda_min %.6e\n"
               "                            %d within 1e-10 of zero, %d negative\n"
               "symmetries                  %d transformations, %d identities: %d hold (worst residual %.1e, %.2f s)\n"
               "flat directions             %d logit translations predict %d eigenvalues equal to gamma = %g;\n"
               "                            found %d\n"
               "results written to %s/\n",
               loss, nt_norm2(d, g), 1e3 * t_grad, hvp_vs_dense, 1e3 * t_hvp, (long long)d, (long long)d,
               t_hess, lam[d - 1], lam[0], near_zero, negative, n_tr, count, held, worst, t_check,
               translations, translations, gam, at_gamma, dir);
    }
    free(text);
    cJSON_Delete(doc);
    free(res);
    nt_transforms_free(list, n_tr);
    free(A); free(g); free(H); free(v); free(hv); free(Hv); free(lam);
    nt_engine_free(e);
    cli_job_free(&job);
    return 0;
}
