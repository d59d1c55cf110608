/* cmd_check.c: noether check: every identity of every transformation at theta (first
 * order (F1)/(D1), second order (S1), (S2)/(D1) on probes, fixed points); exit 3 when one
 * does not hold. */
#include <math.h>
#include <stdlib.h>
#include "cli.h"

static const char usage[] =
    "usage: noether check [SPEC] [--params P.npy] [--tol T] [--json]\n\n"
    "Evaluates, at theta, the identities of docs/theory.md for every transformation of the\n"
    "catalogue and of the spec, each side computed independently:\n"
    "  continuous: (F1) g^T xi = R, (S1) H xi + A^T g = grad R, (S2) xi^T H xi + g^T A xi = ...\n"
    "  discrete:   (D1) T^T g(T theta) = grad L^rho(theta), T^T H(T theta) T v = grad^2 L^rho v,\n"
    "              and at the fixed point (theta + T theta)/2 of a symmetry: T g = g, T H v = H T v\n"
    "with weight decay terms where the spec has them.  Residuals are relative; an identity\n"
    "holds when both residuals are <= T.  Exit status 3 when any does not hold.\n\n"
    "  --params P  theta, shape (d,); default: the spec's seeded initialization\n"
    "  --tol T     tolerance (default " NT_STR(NT_IDENTITY_TOL) ")\n"
    "  --json      one JSON document: {d, loss, grad_norm, all_hold, transformations: [...]}\n";

static void add_residual(cJSON *o, const char *key, double v)
{
    if (isnan(v)) return;
    cJSON_AddNumberToObject(o, key, v);
}

int cmd_check(int argc, char **argv)
{
    const char *spec = NULL, *params = NULL, *tol_s = NULL, *json = NULL;
    cli_opt opts[] = {{"--params", 0, &params}, {"--tol", 0, &tol_s}, {"--json", 1, &json}, {NULL, 0, NULL}};
    cli_parse("check", usage, argc, argv, opts, &spec);
    double tol = NT_IDENTITY_TOL;
    if (tol_s) {
        char *end;
        tol = strtod(tol_s, &end);
        if (*end || !(tol > 0)) cli_usage_error("check", "--tol: '%s' is not a positive number", tol_s);
    }
    cli_job job;
    cli_job_load(&job, "check", spec, params);
    const nt_model *m = &job.spec.model;
    nt_transform *list = NULL;
    int n = 0;
    cli_load_transforms("check", &job, &list, &n);
    int count = nt_check_count(list, n);
    nt_check_result *res = malloc(sizeof *res * (size_t)(count > 0 ? count : 1));
    nt_engine *e = cli_engine(&job, 16);
    double *g = malloc(sizeof(double) * (size_t)m->d);
    nt_error err = {0};
    if (!g) { nt_fail(&err, NT_EFAIL, "out of memory for the gradient (d = %lld)", (long long)m->d); cli_die("check", &err); }
    double loss;
    if (nt_grad(e, job.theta, &job.data.train, &loss, g, &err)) cli_die("check", &err);   /* a warm-up, then one timed */
    double t0 = cli_now();
    if (nt_grad(e, job.theta, &job.data.train, NULL, g, &err)) cli_die("check", &err);
    double t_grad = cli_now() - t0;
    t0 = cli_now();
    if (!res) nt_fail(&err, NT_EFAIL, "out of memory for %d identities' results", count);
    if (!res || nt_check(e, m, &job.data.train, job.theta, list, n, tol, res, &err)) cli_die("check", &err);
    double t_check = cli_now() - t0;
    int all = 1, failed = 0;
    for (int i = 0; i < count; i++) { all &= res[i].holds; failed += !res[i].holds; }
    if (json) {
        cJSON *doc = cJSON_CreateObject(), *arr;
        cJSON_AddNumberToObject(doc, "d", (double)m->d);
        cJSON_AddNumberToObject(doc, "loss", loss);
        cJSON_AddNumberToObject(doc, "grad_norm", nt_norm2(m->d, g));
        cJSON_AddNumberToObject(doc, "tol", tol);
        cli_add_ranks(doc);
        cJSON_AddBoolToObject(doc, "all_hold", all);
        cJSON_AddNumberToObject(doc, "seconds", t_check);
        cJSON_AddNumberToObject(doc, "gradients", t_check / t_grad);
        arr = cJSON_AddArrayToObject(doc, "transformations");
        for (int i = 0; i < count; i++) {
            const nt_check_result *r = &res[i];
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", r->name);
            cJSON_AddStringToObject(o, "kind", cli_kind(&list[r->entry]));
            cJSON_AddStringToObject(o, "type", cli_type(&list[r->entry]));
            cJSON_AddNumberToObject(o, "first_order_residual", r->first_order);
            cJSON_AddNumberToObject(o, "second_order_residual", r->second_order);
            add_residual(o, "s1_residual", r->s1);
            add_residual(o, "s2_residual", r->s2);
            add_residual(o, "fixed_point_gradient_residual", r->fixed_gradient);
            add_residual(o, "fixed_point_hessian_residual", r->fixed_hessian);
            cJSON_AddBoolToObject(o, "holds", r->holds);
            cJSON_AddItemToArray(arr, o);
        }
        cli_print_json(doc);
    } else {
        printf("d = %lld, loss %.10g, |g| %.4e, tolerance %g\n", (long long)m->d, loss, nt_norm2(m->d, g), tol);
        printf("%-40s %-10s %-12s %10s %10s %10s %10s  %s\n", "name", "kind", "type", "1st order",
               "2nd order", "fix grad", "fix hess", "holds");
        for (int i = 0; i < count; i++) {
            const nt_check_result *r = &res[i];
            printf("%-40s %-10s %-12s %10.2e %10.2e ", r->name, cli_kind(&list[r->entry]),
                   cli_type(&list[r->entry]), r->first_order, r->second_order);
            if (isnan(r->fixed_gradient)) printf("%10s %10s", "-", "-");
            else printf("%10.2e %10.2e", r->fixed_gradient, r->fixed_hessian);
            printf("  %s\n", r->holds ? "yes" : "NO");
        }
        printf("%d of %d identities hold; %.3f s (%.1f gradients)\n", count - failed, count, t_check,
               t_check / t_grad);
    }
    free(g);
    free(res);
    nt_engine_free(e);
    nt_transforms_free(list, n);
    cli_job_free(&job);
    return all ? 0 : 3;
}
