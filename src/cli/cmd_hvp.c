/* cmd_hvp.c: noether hvp: exact Hessian-vector products H_gamma v for one vector (d,) or
 * a block (k, d), by forward-over-reverse; the result has V's shape. */
#include <stdlib.h>
#include <cblas.h>
#include "cli.h"

static const char usage[] =
    "usage: noether hvp [SPEC] --vectors V.npy [--params P.npy] [--out HV.npy] [--json]\n\n"
    "Exact Hessian-vector products of the loss (weight decay included) at theta, computed\n"
    "by forward-over-reverse differentiation, a block of vectors carried together.\n\n"
    "  --vectors V  NPY float64 of shape (d,) or (k, d): the vectors v_j (rows)\n"
    "  --params P   theta, shape (d,); default: the spec's seeded initialization\n"
    "  --out HV     write H v_j to HV.npy, same shape as V\n"
    "  --json       one JSON document: d, k, loss, and per vector |Hv| and v^T H v\n";

int cmd_hvp(int argc, char **argv)
{
    const char *spec = NULL, *params = NULL, *vectors = NULL, *out = NULL, *json = NULL;
    cli_opt opts[] = {{"--params", 0, &params}, {"--vectors", 0, &vectors}, {"--out", 0, &out},
                      {"--json", 1, &json}, {NULL, 0, NULL}};
    cli_parse("hvp", usage, argc, argv, opts, &spec);
    if (!vectors) cli_usage_error("hvp", "--vectors V.npy is required (see noether hvp --help)");
    cli_job job;
    cli_job_load(&job, "hvp", spec, params);
    const nt_model *m = &job.spec.model;
    nt_error err = {0};
    nt_array V = {0};
    if (nt_npy_read(vectors, &V, &err)) cli_die("hvp", &err);
    int64_t k = V.ndim == 2 ? V.shape[0] : 1, cols = V.ndim == 2 ? V.shape[1] : V.shape[0];
    if ((V.ndim != 1 && V.ndim != 2) || cols != m->d || k < 1) {
        nt_fail(&err, NT_EINPUT, "%s: shape must be (%lld,) or (k, %lld) for d = %lld parameters",
                vectors, (long long)m->d, (long long)m->d, (long long)m->d);
        cli_die("hvp", &err);
    }
    nt_engine *e = cli_engine(&job, k < 16 ? (int)k : 16);
    double *HV = malloc(sizeof(double) * (size_t)V.size);
    if (!HV) { nt_fail(&err, NT_EFAIL, "out of memory for %lld products", (long long)k); cli_die("hvp", &err); }
    double loss;
    if (nt_hvp(e, job.theta, &job.data.train, (int)k, V.data, HV, NULL, &loss, &err)) cli_die("hvp", &err);
    cli_require_finite("hvp", loss, HV, V.size, "Hessian-vector products");
    if (out && cli_writer() && nt_npy_write(out, HV, V.ndim, V.shape, &err)) cli_die("hvp", &err);
    cJSON *doc = cJSON_CreateObject(), *norms = cJSON_CreateArray(), *quad = cJSON_CreateArray();
    for (int64_t j = 0; j < k; j++) {
        const double *v = V.data + j * m->d, *hv = HV + j * m->d;
        cJSON_AddItemToArray(norms, cJSON_CreateNumber(nt_norm2(m->d, hv)));
        cJSON_AddItemToArray(quad, cJSON_CreateNumber(cblas_ddot((int)m->d, v, 1, hv, 1)));
    }
    if (json) {
        cJSON_AddNumberToObject(doc, "d", (double)m->d);
        cJSON_AddNumberToObject(doc, "k", (double)k);
        cli_add_ranks(doc);
        cJSON_AddNumberToObject(doc, "loss", loss);
        cJSON_AddItemToObject(doc, "hv_norm", norms);
        cJSON_AddItemToObject(doc, "vHv", quad);
        if (out) cJSON_AddStringToObject(doc, "out", out);
        cli_print_json(doc);
    } else {
        printf("d = %lld, k = %lld, loss %.17g\n%6s %24s %24s\n", (long long)m->d, (long long)k, loss,
               "j", "|H v_j|", "v_j^T H v_j");
        for (int64_t j = 0; j < k; j++)
            printf("%6lld %24.17g %24.17g\n", (long long)j, cJSON_GetArrayItem(norms, (int)j)->valuedouble,
                   cJSON_GetArrayItem(quad, (int)j)->valuedouble);
        if (out) printf("products written to %s\n", out);
        cJSON_Delete(doc);
        cJSON_Delete(norms);
        cJSON_Delete(quad);
    }
    free(HV);
    nt_array_free(&V);
    nt_engine_free(e);
    cli_job_free(&job);
    return 0;
}
