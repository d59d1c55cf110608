/* cmd_grad.c: noether grad: L_gamma(theta) and its gradient. */
#include <stdlib.h>
#include "cli.h"

static const char usage[] =
    "usage: noether grad [SPEC] [--params P.npy] [--out G.npy] [--json]\n\n"
    "The loss L(theta) (mean over the training samples, plus (gamma/2)|theta|^2 with weight\n"
    "decay) and its exact gradient.  Without --params theta is the spec's seeded\n"
    "initialization; without SPEC, the built-in default.\n\n"
    "  --params P   theta as NPY, float64, shape (d,)\n"
    "  --out G      write the gradient to G.npy, shape (d,)\n"
    "  --json       one JSON document on stdout: d, n, loss, grad_norm, per-tensor norms\n";

cJSON *cli_tensor_norms(const nt_model *m, const double *g)
{
    cJSON *arr = cJSON_CreateArray();
    for (int t = 0; t < m->n_tensors; t++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", m->tensors[t].name);
        cJSON_AddNumberToObject(o, "grad_norm", nt_norm2(m->tensors[t].size, g + m->tensors[t].offset));
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

int cmd_grad(int argc, char **argv)
{
    const char *spec = NULL, *params = NULL, *out = NULL, *json = NULL;
    cli_opt opts[] = {{"--params", 0, &params}, {"--out", 0, &out}, {"--json", 1, &json}, {NULL, 0, NULL}};
    cli_parse("grad", usage, argc, argv, opts, &spec);
    cli_job job;
    cli_job_load(&job, "grad", spec, params);
    const nt_model *m = &job.spec.model;
    nt_engine *e = cli_engine(&job, 1);
    double *g = malloc(sizeof(double) * (size_t)m->d);
    if (!g) { nt_error oom; nt_fail(&oom, NT_EFAIL, "out of memory for the gradient (d = %lld)", (long long)m->d); cli_die("grad", &oom); }
    nt_error err = {0};
    double loss;
    if (nt_grad(e, job.theta, &job.data.train, &loss, g, &err)) cli_die("grad", &err);
    cli_require_finite("grad", loss, g, m->d, "gradient");
    int64_t shape[1] = {m->d};
    if (out && cli_writer() && nt_npy_write(out, g, 1, shape, &err)) cli_die("grad", &err);
    if (json) {
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddNumberToObject(doc, "d", (double)m->d);
        cJSON_AddNumberToObject(doc, "n", (double)cli_samples(&job));
        cli_add_ranks(doc);
        cJSON_AddNumberToObject(doc, "loss", loss);
        cJSON_AddNumberToObject(doc, "grad_norm", nt_norm2(m->d, g));
        cJSON_AddItemToObject(doc, "tensors", cli_tensor_norms(m, g));
        if (out) cJSON_AddStringToObject(doc, "out", out);
        cli_print_json(doc);
    } else {
        printf("d = %lld, n = %lld\nloss      %.17g\ngrad_norm %.17g\n", (long long)m->d,
               (long long)cli_samples(&job), loss, nt_norm2(m->d, g));
        for (int t = 0; t < m->n_tensors; t++)
            printf("  |g[%s]| = %.6e\n", m->tensors[t].name, nt_norm2(m->tensors[t].size, g + m->tensors[t].offset));
        if (out) printf("gradient written to %s\n", out);
    }
    free(g);
    nt_engine_free(e);
    cli_job_free(&job);
    return 0;
}
