/* cmd_hessian.c: noether hessian: the dense d x d Hessian, from blocks of products with
 * unit vectors.  Refuses, naming the size, when it would not fit in memory. */
#include <stdlib.h>
#include <math.h>
#include <unistd.h>
#include "cli.h"

static const char usage[] =
    "usage: noether hessian [SPEC] --out H.npy [--params P.npy] [--max-memory GIB]\n\n"
    "The dense Hessian of the loss (weight decay included) at theta, d x d float64, built\n"
    "column block by column block from exact Hessian-vector products.\n\n"
    "  --out H         write H to H.npy, shape (d, d) (required)\n"
    "  --params P      theta, shape (d,); default: the spec's seeded initialization\n"
    "  --max-memory G  refuse when H needs more than G GiB (default: half the machine's memory)\n";

int cmd_hessian(int argc, char **argv)
{
    const char *spec = NULL, *params = NULL, *out = NULL, *maxmem = NULL;
    cli_opt opts[] = {{"--params", 0, &params}, {"--out", 0, &out}, {"--max-memory", 0, &maxmem},
                      {NULL, 0, NULL}};
    cli_parse("hessian", usage, argc, argv, opts, &spec);
    if (!out) cli_usage_error("hessian", "--out H.npy is required (see noether hessian --help)");
    double limit = cli_physical_bytes() / 2;
    if (maxmem) {
        char *end;
        double g = strtod(maxmem, &end);
        if (*end || !(g > 0)) cli_usage_error("hessian", "--max-memory: '%s' is not a positive number of GiB", maxmem);
        limit = g * 1073741824.0;
    }
    cli_job job;
    cli_job_load(&job, "hessian", spec, params);
    const int64_t d = job.spec.model.d;
    const double need = 8.0 * (double)d * (double)d;
    nt_error err = {0};
    if (nt_memory_fits(&err, need, limit, "allowed (--max-memory); use noether hvp for products",
                       "the dense Hessian of d = %lld parameters", (long long)d))
        cli_die("hessian", &err);
    double *H = malloc((size_t)need);
    if (!H) { nt_fail(&err, NT_EFAIL, "out of memory for %.1f GiB", need / 1073741824.0); cli_die("hessian", &err); }
    nt_engine *e = cli_engine(&job, d < 32 ? (int)d : 32);
    double t0 = cli_now();
    if (nt_hessian(e, job.theta, &job.data.train, H, &err)) cli_die("hessian", &err);
    double asym = 0, norm = 0;
    for (int64_t i = 0; i < d; i++)
        for (int64_t j = 0; j < d; j++) {
            double a = H[i * d + j] - H[j * d + i];
            asym += a * a;
            norm += H[i * d + j] * H[i * d + j];
        }
    int64_t shape[2] = {d, d};
    if (cli_writer() && nt_npy_write(out, H, 2, shape, &err)) cli_die("hessian", &err);
    printf("d = %lld, %.3f s, |H - H^T| / |H| = %.3e\nHessian written to %s\n", (long long)d,
           cli_now() - t0, norm > 0 ? sqrt(asym / norm) : 0.0, out);
    free(H);
    nt_engine_free(e);
    cli_job_free(&job);
    return 0;
}
