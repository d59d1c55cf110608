/* cmd_spectrum.c: noether spectrum: both ends of the Hessian spectrum (dense LAPACK or
 * ARPACK's Lanczos), its density (stochastic Lanczos quadrature), its trace (Hutchinson),
 * and the symmetry-aware views with their predictions (docs/theory.md §3-§4): flat directions
 * from the orbit span, the sharp radial direction of a homogeneous model, S_n sectors and
 * mirror stability at fixed points, gradient alignment, deflation of the orbit span. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"

static const char usage[] =
    "usage: noether spectrum [SPEC] [--params P.npy] [--top K] [--bottom K] [--method M]\n"
    "                        [--density] [--trace] [--block NAME] [--deflate] [--sectors]\n"
    "                        [--each-generator] [--vectors OUT.npy] [--json]\n\n"
    "The spectrum of the Hessian H_gamma at theta, matrix-free, and what the model's\n"
    "symmetries predict about it (under \"predictions\" in the JSON):\n"
    "  flat      the orbit span of the continuous symmetries: its rank, from the generators'\n"
    "            structure; the eigenvalues of H_gamma it forces at a critical point of L_gamma\n"
    "            (S1gamma): 2 gamma (symmetric generators), gamma (shifts), 0 (antisymmetric),\n"
    "            each with its multiplicity (all 0 without weight decay), beside the count\n"
    "            found when every eigenvalue is known; and (S1gamma) H xi = -A^T g + gamma (xi +\n"
    "            A^T theta) checked on random combinations of all generators (one block product)\n"
    "  sharp     for a homogeneous model, the radial curvature theta^T H theta / |theta|^2 beside\n"
    "            its closed form from the outputs and lambda_max\n"
    "  sectors   (--sectors) per hidden layer, H on the breaking subspace of S_n at the point\n"
    "            where its units are equal: multiplicity n-1 predicted against found, and the\n"
    "            stability margin lambda_min; per odd unit, the mirror's margin\n"
    "  alignment the fraction of |g|^2 in the top-K eigenspace; for each block feeding a\n"
    "            normalization (a scale symmetry) its gradient's fraction beside the one\n"
    "            (S1) predicts: theta's weight on each eigenvector times (lambda - 2 gamma)^2\n\n"
    "  --top K, --bottom K  how many eigenvalues at each end (default 10 each; with only one of\n"
    "                       them, that end alone)\n"
    "  --method M           dense (LAPACK dsyevr), lanczos (ARPACK) or auto (dense up to d = 3000)\n"
    "  --density            spectral density by stochastic Lanczos quadrature (10 probes, 80 steps);\n"
    "                       its moments with their standard errors over the probes\n"
    "  --trace              Hutchinson trace estimate (100 probes) with its standard error; with\n"
    "                       the dense method the exact trace beside it\n"
    "  --block NAME         restrict H to one parameter tensor (a name from noether info)\n"
    "  --deflate            project the orbit span out of H and report what that removed\n"
    "  --each-generator     also |H xi| of every generator beside its (S1gamma) value (a product each)\n"
    "  --vectors OUT        write the eigenvectors (top then bottom, rows) to OUT.npy\n"
    "  --json               one JSON document on stdout\n";

/* a phase of long work, on stderr when it is a terminal */
static void progress(void *ctx, const char *what)
{
    (void)ctx;
    if (isatty(2)) fprintf(stderr, "spectrum: %s\n", what);
}

/* text output: the two ends as soon as they are known */
static void ends_known(void *ctx, const nt_spectrum *r)
{
    const char *block = ctx;
    printf("d = %lld%s%s, %s, %d products, %.2f s\n", (long long)r->d, block ? ", block " : "", block ? block : "",
           r->dense ? "dense" : "lanczos", r->products, r->t_eigenvalues);
    if (r->top) printf("top:   ");
    for (int i = 0; i < r->top; i++) printf(" %.6g%s", r->top_values[i], i == r->top - 1 ? "\n" : "");
    if (r->bottom) printf("bottom:");
    for (int i = 0; i < r->bottom; i++) printf(" %.6g%s", r->bottom_values[i], i == r->bottom - 1 ? "\n" : "");
    fflush(stdout);
}

/* text output: the predictions */
static void print_predictions(const nt_spectrum *r, double gamma)
{
    const nt_flat_view *f = &r->flat;
    if (!r->has_flat) return;
    if (f->orbit.rank >= 0)
        printf("flat:   %d continuous symmetry generators span %d dimensions (tolerance %g)", f->orbit.generators,
               f->orbit.rank, f->orbit.tol);
    else
        printf("flat:   %d continuous symmetry generators (too many for the orbit rank)", f->orbit.generators);
    printf("; (S1) on %d random combinations: worst relative difference %.1e\n", f->s1_combinations, f->s1_worst);
    for (int v = 0; f->orbit.rank >= 0 && v < f->orbit.n_values; v++) {
        double x = f->orbit.value[v];
        printf("        at a critical point of L_gamma: eigenvalue %g (%s) %d times", x,
               x == 0 ? "0" : x == gamma ? "gamma" : "2 gamma", f->orbit.multiplicity[v]);
        if (f->found[v] >= 0) printf("; %d there now", f->found[v]);
        printf("\n");
    }
    if (r->sharp.applies)
        printf("sharp:  radial curvature %.6g, closed form %.6g, lambda_max %.6g\n", r->sharp.radial_curvature,
               r->sharp.closed_form, r->sharp.lambda_max);
    printf("align:  %.4f of |g|^2 in the top-%d eigenspace\n", r->gradient_fraction_in_top, r->top);
    for (int i = 0; i < r->n_sectors; i++) {
        const nt_sector *S = &r->sectors[i];
        if (!S->skipped)
            printf("sector: layer %d, %d units: multiplicity %d (groups of %d to %d; predicted %d), margin %.4g\n",
                   S->layer, S->units, S->found, S->min, S->max, S->predicted, S->lambda_min);
    }
}

/* nt_spectrum_analyse with the options of o (exits through cli_die when it fails) */
void cli_spectrum_analyse(cli_job *job, nt_engine *e, const nt_transform *list, int n_list, const cli_spectrum_opts *o,
                          nt_spectrum *r)
{
    const nt_model *m = &job->spec.model;
    int t = 0;
    while (o->block && t < m->n_tensors && strcmp(m->tensors[t].name, o->block)) t++;
    if (o->block && t == m->n_tensors) cli_usage_error("spectrum", "--block: no parameter tensor '%s' (see noether info)", o->block);
    nt_spectrum_opts so = { .top = o->top, .bottom = o->bottom, .block = o->block, .deflate = o->deflate,
                            .trace = o->trace, .density = o->density, .sectors = o->sectors,
                            .each_generator = o->each_generator, .progress = o->verbose ? progress : NULL,
                            .ends_known = o->print_ends ? ends_known : NULL,
                            .ctx = (void *)o->block,
                            .method = !strcmp(o->method, "dense") ? NT_METHOD_DENSE
                                      : !strcmp(o->method, "lanczos") ? NT_METHOD_LANCZOS : NT_METHOD_AUTO };
    nt_error err = {0};
    if (nt_spectrum_analyse(e, m, &job->data.train, list, n_list, job->theta, &so, r, &err)) cli_die("spectrum", &err);
}

/* the document of the library (src/spectrum/doc.c) for what o asked */
cJSON *cli_spectrum_doc(const nt_spectrum *r, const cli_spectrum_opts *o)
{
    nt_spectrum_doc_opts d = {.block = o->block, .deflate = o->deflate, .trace = o->trace, .density = o->density,
                              .sectors = o->sectors, .all_values = o->all_values};
    return nt_spectrum_doc(r, &d);
}

/* the eigenvectors, top then bottom, as the rows of OUT.npy */
static void write_vectors(const char *path, const nt_spectrum *r)
{
    const int64_t n = r->n, shape[2] = {r->top + r->bottom, n};
    double *V = malloc(sizeof(double) * (size_t)(shape[0] * n));
    memcpy(V, r->top_vectors, sizeof(double) * (size_t)(r->top * n));
    memcpy(V + r->top * n, r->bottom_vectors, sizeof(double) * (size_t)(r->bottom * n));
    nt_error err = {0};
    if (cli_writer() && nt_npy_write(path, V, 2, shape, &err)) cli_die("spectrum", &err);
    free(V);
}

int cmd_spectrum(int argc, char **argv)
{
    const char *spec = NULL, *params = NULL, *top_s = NULL, *bottom_s = NULL, *method = "auto", *density = NULL,
               *trace = NULL, *block = NULL, *deflate = NULL, *sectors = NULL, *vectors = NULL, *json = NULL, *each = NULL;
    cli_opt opts[] = {{"--params", 0, &params}, {"--top", 0, &top_s}, {"--bottom", 0, &bottom_s},
                      {"--method", 0, &method}, {"--density", 1, &density}, {"--trace", 1, &trace},
                      {"--block", 0, &block}, {"--deflate", 1, &deflate}, {"--sectors", 1, &sectors},
                      {"--vectors", 0, &vectors}, {"--json", 1, &json}, {"--each-generator", 1, &each}, {NULL, 0, NULL}};
    cli_parse("spectrum", usage, argc, argv, opts, &spec);
    /* both ends, 10 each, unless one end is asked for: then that end alone */
    cli_spectrum_opts o = { .top = top_s ? atoi(top_s) : bottom_s ? 0 : 10, .bottom = bottom_s ? atoi(bottom_s) : top_s ? 0 : 10,
                            .method = method, .density = density != NULL, .trace = trace != NULL,
                            .deflate = deflate != NULL, .sectors = sectors != NULL, .block = block,
                            .vectors = vectors, .verbose = 1, .each_generator = each != NULL, .print_ends = !json };
    if (o.top < 0 || o.bottom < 0 || (top_s && strspn(top_s, "0123456789") != strlen(top_s)) ||
        (bottom_s && strspn(bottom_s, "0123456789") != strlen(bottom_s)))
        cli_usage_error("spectrum", "--top and --bottom take a whole number");
    if (strcmp(method, "auto") && strcmp(method, "dense") && strcmp(method, "lanczos"))
        cli_usage_error("spectrum", "--method: '%s' is not one of auto, dense, lanczos", method);
    cli_job job;
    cli_job_load(&job, "spectrum", spec, params);
    nt_engine *e = cli_engine(&job, 16);
    nt_transform *list = NULL;
    int n_list = 0;
    cli_load_transforms("spectrum", &job, &list, &n_list);
    nt_spectrum r;
    cli_spectrum_analyse(&job, e, list, n_list, &o, &r);
    if (vectors) write_vectors(vectors, &r);
    if (json) cli_print_json(cli_spectrum_doc(&r, &o));
    else print_predictions(&r, job.spec.model.weight_decay);
    nt_spectrum_free(&r);
    nt_transforms_free(list, n_list);
    nt_engine_free(e);
    cli_job_free(&job);
    return 0;
}
