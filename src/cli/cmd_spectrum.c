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

static cJSON *numbers(const double *x, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(x[i]));
    return a;
}

/* numbers into o under keys, in order: put(o, KEYS("a", "b"), (double[]){a, b}) */
#define KEYS(...) ((const char *const[]){__VA_ARGS__, NULL})
static void put(cJSON *o, const char *const *keys, const double *v)
{
    for (int i = 0; keys[i]; i++) cJSON_AddNumberToObject(o, keys[i], v[i]);
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

/* predictions.flat.at_critical_point: the eigenvalues (S1gamma) forces at a critical point,
 * each with its multiplicity and the count found */
cJSON *cli_critical_json(const nt_flat_view *f)
{
    const nt_orbit *orb = &f->orbit;
    cJSON *cp = cJSON_CreateArray();
    for (int v = 0; v < orb->n_values; v++) {
        cJSON *it = cJSON_CreateObject();
        put(it, KEYS("value", "multiplicity"), (double[]){orb->value[v], orb->multiplicity[v]});
        cJSON_AddStringToObject(it, "from", orb->what[v]);
        if (f->found[v] >= 0) put(it, KEYS("found", "found_tolerance"), (double[]){f->found[v], f->found_tol});
        cJSON_AddItemToArray(cp, it);
    }
    return cp;
}

/* predictions.flat (docs/theory.md §3) */
static cJSON *flat_json(const nt_flat_view *f)
{
    const nt_orbit *orb = &f->orbit;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "generators", orb->generators);
    if (orb->rank < 0) {
        cJSON_AddNullToObject(o, "orbit_rank");
        cJSON_AddStringToObject(o, "skipped", "more than 4000 symmetry generators: the orbit rank is not computed");
    } else {
        cJSON_AddNumberToObject(o, "orbit_rank", orb->rank);
        cJSON_AddNumberToObject(o, "rank_tolerance", orb->tol);
        cJSON_AddStringToObject(o, "rank_method", "Gram matrix of the sparse generators (LAPACK dsyevd), small "
                                "singular values recomputed by dgesvd");
        cJSON_AddItemToObject(o, "singular_values", numbers(orb->sv, orb->generators));
        cJSON_AddNumberToObject(o, "singular_values_refined", orb->refined);
        cJSON_AddItemToObject(o, "at_critical_point", cli_critical_json(f));
        /* the shifts: H_gamma c = gamma c (A = 0) at every theta */
        put(o, KEYS("unpredicted_generators", "shifts_at_gamma_everywhere"),
            (double[]){orb->unpredicted, orb->shift_rank});
    }
    put(o, KEYS("s1_random_combinations", "worst_relative_difference", "curvature_scale"),
        (double[]){f->s1_combinations, f->s1_worst, f->curvature_scale});
    if (f->h_xi_norm) {
        cJSON_AddItemToObject(o, "H_xi_norm", numbers(f->h_xi_norm, f->n_each));
        cJSON_AddItemToObject(o, "predicted_H_xi_norm", numbers(f->h_xi_predicted, f->n_each));
        cJSON_AddNumberToObject(o, "each_generator_worst_relative_difference", f->each_worst);
    }
    return o;
}

/* predictions.sectors: the S_n sectors (with their eigenvalues or not), then the mirrors
 * (docs/theory.md §4) */
cJSON *cli_sectors_json(const nt_spectrum *r, int eigenvalues)
{
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < r->n_sectors; i++) {
        const nt_sector *S = &r->sectors[i];
        cJSON *o = cJSON_CreateObject();
        put(o, KEYS("layer", "dimension"), (double[]){S->layer, S->dimension});
        if (S->skipped) {
            cJSON_AddStringToObject(o, "skipped", "breaking subspace larger than 4000");
        } else {   /* the stability margin: lambda_min of H_gamma, gamma included */
            put(o, KEYS("units", "predicted_multiplicity", "multiplicity_found", "multiplicity_min", "multiplicity_max",
                        "groups", "lambda_min", "lambda_max", "stability_margin"),
                (double[]){S->units, S->predicted, S->found, S->min, S->max, S->groups, S->lambda_min, S->lambda_max,
                           S->lambda_min});
            if (eigenvalues) cJSON_AddItemToObject(o, "eigenvalues", numbers(S->eigenvalues, S->dimension));
        }
        cJSON_AddItemToArray(arr, o);
    }
    for (int i = 0; i < r->n_mirrors; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "mirror", r->mirrors[i].name);
        put(o, KEYS("dimension", "stability_margin"), (double[]){r->mirrors[i].dimension, r->mirrors[i].margin});
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

/* predictions.sharp (docs/theory.md §3) */
cJSON *cli_sharp_json(const nt_sharp_view *s)
{
    cJSON *o = cJSON_CreateObject();
    put(o, KEYS("degree", "radial_curvature", "closed_form", "lambda_max"),
        (double[]){s->degree, s->radial_curvature, s->closed_form, s->lambda_max});
    return o;
}

/* predictions.alignment_scale_invariant (docs/theory.md §3) */
cJSON *cli_scale_json(const nt_spectrum *r)
{
    cJSON *sa = cJSON_CreateArray();
    for (int i = 0; i < r->n_scale; i++) {
        const nt_scale_alignment *a = &r->scale[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", a->name);
        put(o, KEYS("k", "block_gradient_norm", "fraction_in_top_measured", "fraction_in_top_predicted"),
            (double[]){a->k, a->gradient_norm, a->measured, a->predicted});
        cJSON_AddItemToArray(sa, o);
    }
    return sa;
}

/* alignment: the gradient's fraction in the top-k eigenspace */
cJSON *cli_alignment_json(const nt_spectrum *r)
{
    cJSON *o = cJSON_CreateObject();
    put(o, KEYS("k", "gradient_fraction_in_top"), (double[]){r->top, r->gradient_fraction_in_top});
    return o;
}

/* predictions: flat, sharp, sectors, alignment_scale_invariant (all of theta only) */
static void predictions_json(cJSON *pred, const nt_spectrum *r, int sectors)
{
    if (!r->has_flat) return;
    cJSON_AddItemToObject(pred, "flat", flat_json(&r->flat));
    if (r->sharp.applies) cJSON_AddItemToObject(pred, "sharp", cli_sharp_json(&r->sharp));
    if (sectors) cJSON_AddItemToObject(pred, "sectors", cli_sectors_json(r, 1));
    if (r->n_scale) cJSON_AddItemToObject(pred, "alignment_scale_invariant", cli_scale_json(r));
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

/* the spectrum's document (noether spectrum --json) from the library's result r */
cJSON *cli_spectrum_doc(const nt_spectrum *r, const cli_spectrum_opts *o)
{
    const int64_t n = r->n;

    cJSON *doc = cJSON_CreateObject();
    put(doc, KEYS("d", "n"), (double[]){r->d, n});
    if (o->block) cJSON_AddStringToObject(doc, "block", o->block);
    cJSON_AddStringToObject(doc, "method", r->dense ? "dense" : "lanczos");
    put(doc, KEYS("loss", "grad_norm"), (double[]){r->loss, r->grad_norm});
    cJSON_AddItemToObject(doc, "top", numbers(r->top_values, r->top));
    cJSON_AddItemToObject(doc, "bottom", numbers(r->bottom_values, r->bottom));
    put(doc, KEYS("hessian_vector_products", "seconds"), (double[]){r->products, r->t_eigenvalues});
    if (r->at_gamma >= 0) {   /* the whole spectrum: how many eigenvalues sit at gamma (flat up to weight decay) */
        put(doc, KEYS("eigenvalues_at_gamma", "eigenvalues_at_gamma_tolerance"), (double[]){r->at_gamma, r->at_gamma_tol});
        if (o->all_values) cJSON_AddItemToObject(doc, "eigenvalues", numbers(r->values, (int)n));
    }
    if (o->deflate) {
        cJSON *df = cJSON_AddObjectToObject(doc, "deflated");
        cJSON_AddNumberToObject(df, "removed_dimensions", r->deflated);
        cJSON_AddStringToObject(df, "note", "top and bottom are of P H P, P the projector off the orbit span");
    }
    if (o->trace) {
        cJSON *tr = cJSON_AddObjectToObject(doc, "trace");
        put(tr, KEYS("hutchinson", "std_error", "probes"), (double[]){r->trace, r->trace_std_error, r->trace_probes});
        if (r->values) cJSON_AddNumberToObject(tr, "exact", r->trace_exact);
    }
    if (o->density) {
        cJSON *de = cJSON_AddObjectToObject(doc, "density");
        const int P = r->density_probes, S = r->density_steps;
        put(de, KEYS("probes", "steps"), (double[]){P, S});
        cJSON_AddItemToObject(de, "nodes", numbers(r->nodes, P * S));
        cJSON_AddItemToObject(de, "weights", numbers(r->weights, P * S));
        for (int k = 1; k <= 2; k++) {   /* tr(H^k)/n with its standard error over the probes */
            char key[40];
            snprintf(key, sizeof key, "moment%d", k);
            cJSON_AddNumberToObject(de, key, r->moment[k - 1]);
            snprintf(key, sizeof key, "moment%d_std_error", k);
            cJSON_AddNumberToObject(de, key, r->moment_std_error[k - 1]);
            snprintf(key, sizeof key, "moment%d_probes_for_1_percent", k);
            cJSON_AddNumberToObject(de, key, r->moment_probes_for_1_percent[k - 1]);
            snprintf(key, sizeof key, "moment%d_exact", k);
            if (r->values) cJSON_AddNumberToObject(de, key, r->moment_exact[k - 1]);
        }
    }
    if (!o->block) cJSON_AddItemToObject(doc, "alignment", cli_alignment_json(r));
    predictions_json(cJSON_AddObjectToObject(doc, "predictions"), r, o->sectors);
    /* seconds of each phase (operator: the deflation basis, the frozen engine) */
    put(cJSON_AddObjectToObject(doc, "timings"), KEYS("gradient", "operator", "eigenvalues", "predictions", "total"),
        (double[]){r->t_gradient, r->t_operator, r->t_eigenvalues, r->t_predictions, r->t_total});
    return doc;
}

/* the spectrum's document (noether spectrum --json) from the library's analyses */
cJSON *cli_spectrum(cli_job *job, nt_engine *e, const nt_transform *list, int n_list, const cli_spectrum_opts *o)
{
    nt_spectrum r;
    nt_error err = {0};
    cli_spectrum_analyse(job, e, list, n_list, o, &r);
    const int64_t n = r.n;
    cJSON *doc = cli_spectrum_doc(&r, o);
    if (o->vectors) {   /* top then bottom, rows */
        int64_t shape[2] = {r.top + r.bottom, n};
        double *V = malloc(sizeof(double) * (size_t)(shape[0] * n));
        memcpy(V, r.top_vectors, sizeof(double) * (size_t)(r.top * n));
        memcpy(V + r.top * n, r.bottom_vectors, sizeof(double) * (size_t)(r.bottom * n));
        if (nt_npy_write(o->vectors, V, 2, shape, &err)) cli_die("spectrum", &err);
        free(V);
    }
    if (o->print_ends) print_predictions(&r, job->spec.model.weight_decay);
    nt_spectrum_free(&r);
    return doc;
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
    cJSON *doc = cli_spectrum(&job, e, list, n_list, &o);
    if (json) cli_print_json(doc);
    else cJSON_Delete(doc);
    nt_transforms_free(list, n_list);
    nt_engine_free(e);
    cli_job_free(&job);
    return 0;
}
