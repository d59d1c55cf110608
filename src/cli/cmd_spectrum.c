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

/* the two ends as soon as they are known (text output) */
static void print_ends(FILE *f, int64_t d, const char *block, const char *method, int products, double seconds,
                       const double *top, int nt, const double *bottom, int nb)
{
    fprintf(f, "d = %lld%s%s, %s, %d products, %.2f s\n", (long long)d, block ? ", block " : "", block ? block : "",
            method, products, seconds);
    if (nt) fprintf(f, "top:   ");
    for (int i = 0; i < nt; i++) fprintf(f, " %.6g%s", top[i], i == nt - 1 ? "\n" : "");
    if (nb) fprintf(f, "bottom:");
    for (int i = 0; i < nb; i++) fprintf(f, " %.6g%s", bottom[i], i == nb - 1 ? "\n" : "");
    fflush(f);
}

static void print_flat(FILE *f, const cJSON *fl, double gamma)
{
    const cJSON *rank = cJSON_GetObjectItem(fl, "orbit_rank"), *it;
    if (cJSON_IsNumber(rank))
        fprintf(f, "flat:   %d continuous symmetry generators span %d dimensions (tolerance %g)",
                cJSON_GetObjectItem(fl, "generators")->valueint, rank->valueint,
                cJSON_GetObjectItem(fl, "rank_tolerance")->valuedouble);
    else
        fprintf(f, "flat:   %d continuous symmetry generators (too many for the orbit rank)",
                cJSON_GetObjectItem(fl, "generators")->valueint);
    fprintf(f, "; (S1) on %d random combinations: worst relative difference %.1e\n",
            cJSON_GetObjectItem(fl, "s1_random_combinations")->valueint,
            cJSON_GetObjectItem(fl, "worst_relative_difference")->valuedouble);
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(fl, "at_critical_point")) {
        double v = cJSON_GetObjectItem(it, "value")->valuedouble;
        fprintf(f, "        at a critical point of L_gamma: eigenvalue %g (%s) %d times",
                v, v == 0 ? "0" : v == gamma ? "gamma" : "2 gamma", cJSON_GetObjectItem(it, "multiplicity")->valueint);
        if (cJSON_GetObjectItem(it, "found")) fprintf(f, "; %d there now", cJSON_GetObjectItem(it, "found")->valueint);
        fprintf(f, "\n");
    }
}

/* the ends printed as soon as they are known (text output) */
typedef struct { const char *block; int print; } ends_ctx;

static void ends_known(void *ctx, const nt_spectrum *r)
{
    const ends_ctx *c = ctx;
    if (c->print) print_ends(stdout, r->d, c->block, r->dense ? "dense" : "lanczos", r->products, r->t_eigenvalues,
                             r->top_values, r->top, r->bottom_values, r->bottom);
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
        cJSON *cp = cJSON_AddArrayToObject(o, "at_critical_point");
        for (int v = 0; v < orb->n_values; v++) {
            cJSON *it = cJSON_CreateObject();
            cJSON_AddNumberToObject(it, "value", orb->value[v]);
            cJSON_AddNumberToObject(it, "multiplicity", orb->multiplicity[v]);
            cJSON_AddStringToObject(it, "from", orb->what[v]);
            if (f->found[v] >= 0) {
                cJSON_AddNumberToObject(it, "found", f->found[v]);
                cJSON_AddNumberToObject(it, "found_tolerance", f->found_tol);
            }
            cJSON_AddItemToArray(cp, it);
        }
        cJSON_AddNumberToObject(o, "unpredicted_generators", orb->unpredicted);
        cJSON_AddNumberToObject(o, "shifts_at_gamma_everywhere", orb->shift_rank);   /* H_gamma c = gamma c (A = 0) */
    }
    cJSON_AddNumberToObject(o, "s1_random_combinations", f->s1_combinations);
    cJSON_AddNumberToObject(o, "worst_relative_difference", f->s1_worst);
    cJSON_AddNumberToObject(o, "curvature_scale", f->curvature_scale);
    if (f->h_xi_norm) {
        cJSON_AddItemToObject(o, "H_xi_norm", numbers(f->h_xi_norm, f->n_each));
        cJSON_AddItemToObject(o, "predicted_H_xi_norm", numbers(f->h_xi_predicted, f->n_each));
        cJSON_AddNumberToObject(o, "each_generator_worst_relative_difference", f->each_worst);
    }
    return o;
}

/* predictions.sectors: the S_n sectors, then the mirrors (docs/theory.md §4) */
static cJSON *sectors_json(const nt_spectrum *r)
{
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < r->n_sectors; i++) {
        const nt_sector *S = &r->sectors[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "layer", S->layer);
        cJSON_AddNumberToObject(o, "dimension", S->dimension);
        if (S->skipped) {
            cJSON_AddStringToObject(o, "skipped", "breaking subspace larger than 4000");
        } else {
            cJSON_AddNumberToObject(o, "units", S->units);
            cJSON_AddNumberToObject(o, "predicted_multiplicity", S->predicted);
            cJSON_AddNumberToObject(o, "multiplicity_found", S->found);
            cJSON_AddNumberToObject(o, "multiplicity_min", S->min);
            cJSON_AddNumberToObject(o, "multiplicity_max", S->max);
            cJSON_AddNumberToObject(o, "groups", S->groups);
            cJSON_AddNumberToObject(o, "lambda_min", S->lambda_min);
            cJSON_AddNumberToObject(o, "lambda_max", S->lambda_max);
            cJSON_AddNumberToObject(o, "stability_margin", S->lambda_min);   /* H_gamma: gamma included */
            cJSON_AddItemToObject(o, "eigenvalues", numbers(S->eigenvalues, S->dimension));
        }
        cJSON_AddItemToArray(arr, o);
    }
    for (int i = 0; i < r->n_mirrors; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "mirror", r->mirrors[i].name);
        cJSON_AddNumberToObject(o, "dimension", r->mirrors[i].dimension);
        cJSON_AddNumberToObject(o, "stability_margin", r->mirrors[i].margin);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

/* predictions: flat, sharp, sectors, alignment_scale_invariant (all of theta only) */
static void predictions_json(cJSON *pred, const nt_spectrum *r, int sectors)
{
    if (!r->has_flat) return;
    cJSON_AddItemToObject(pred, "flat", flat_json(&r->flat));
    if (r->sharp.applies) {
        cJSON *o = cJSON_AddObjectToObject(pred, "sharp");
        cJSON_AddNumberToObject(o, "degree", r->sharp.degree);
        cJSON_AddNumberToObject(o, "radial_curvature", r->sharp.radial_curvature);
        cJSON_AddNumberToObject(o, "closed_form", r->sharp.closed_form);
        cJSON_AddNumberToObject(o, "lambda_max", r->sharp.lambda_max);
    }
    if (sectors) cJSON_AddItemToObject(pred, "sectors", sectors_json(r));
    if (r->n_scale == 0) return;
    cJSON *sa = cJSON_AddArrayToObject(pred, "alignment_scale_invariant");
    for (int i = 0; i < r->n_scale; i++) {
        const nt_scale_alignment *a = &r->scale[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", a->name);
        cJSON_AddNumberToObject(o, "k", a->k);
        cJSON_AddNumberToObject(o, "block_gradient_norm", a->gradient_norm);
        cJSON_AddNumberToObject(o, "fraction_in_top_measured", a->measured);
        cJSON_AddNumberToObject(o, "fraction_in_top_predicted", a->predicted);
        cJSON_AddItemToArray(sa, o);
    }
}

/* the spectrum's document (noether spectrum --json) from the library's analyses */
cJSON *cli_spectrum(cli_job *job, nt_engine *e, const nt_transform *list, int n_list, const cli_spectrum_opts *o)
{
    const nt_model *m = &job->spec.model;
    int block = -1;
    if (o->block) {
        block = 0;
        while (block < m->n_tensors && strcmp(m->tensors[block].name, o->block)) block++;
        if (block == m->n_tensors) cli_usage_error("spectrum", "--block: no parameter tensor '%s' (see noether info)", o->block);
    }
    ends_ctx ec = { .block = o->block, .print = o->print_ends };
    nt_spectrum_opts so = { .top = o->top, .bottom = o->bottom, .block = block, .deflate = o->deflate,
                            .trace = o->trace, .density = o->density, .sectors = o->sectors,
                            .each_generator = o->each_generator, .progress = o->verbose ? progress : NULL,
                            .ends_known = ends_known, .ctx = &ec,
                            .method = !strcmp(o->method, "dense") ? NT_METHOD_DENSE
                                      : !strcmp(o->method, "lanczos") ? NT_METHOD_LANCZOS : NT_METHOD_AUTO };
    nt_spectrum r;
    nt_error err = {0};
    if (nt_spectrum_analyse(e, m, &job->data.train, list, n_list, job->theta, &so, &r, &err)) cli_die("spectrum", &err);
    const int64_t n = r.n;

    cJSON *doc = cJSON_CreateObject();
    cJSON_AddNumberToObject(doc, "d", (double)r.d);
    cJSON_AddNumberToObject(doc, "n", (double)n);
    if (o->block) cJSON_AddStringToObject(doc, "block", o->block);
    cJSON_AddStringToObject(doc, "method", r.dense ? "dense" : "lanczos");
    cJSON_AddNumberToObject(doc, "loss", r.loss);
    cJSON_AddNumberToObject(doc, "grad_norm", r.grad_norm);
    cJSON_AddItemToObject(doc, "top", numbers(r.top_values, r.top));
    cJSON_AddItemToObject(doc, "bottom", numbers(r.bottom_values, r.bottom));
    cJSON_AddNumberToObject(doc, "hessian_vector_products", r.products);
    cJSON_AddNumberToObject(doc, "seconds", r.t_eigenvalues);
    if (r.at_gamma >= 0) {   /* the whole spectrum: how many eigenvalues sit at gamma (flat up to weight decay) */
        cJSON_AddNumberToObject(doc, "eigenvalues_at_gamma", r.at_gamma);
        cJSON_AddNumberToObject(doc, "eigenvalues_at_gamma_tolerance", r.at_gamma_tol);
        if (o->all_values) cJSON_AddItemToObject(doc, "eigenvalues", numbers(r.values, (int)n));
    }
    if (o->deflate) {
        cJSON *df = cJSON_AddObjectToObject(doc, "deflated");
        cJSON_AddNumberToObject(df, "removed_dimensions", r.deflated);
        cJSON_AddStringToObject(df, "note", "top and bottom are of P H P, P the projector off the orbit span");
    }
    if (o->trace) {
        cJSON *tr = cJSON_AddObjectToObject(doc, "trace");
        cJSON_AddNumberToObject(tr, "hutchinson", r.trace);
        cJSON_AddNumberToObject(tr, "std_error", r.trace_std_error);
        cJSON_AddNumberToObject(tr, "probes", r.trace_probes);
        if (r.values) cJSON_AddNumberToObject(tr, "exact", r.trace_exact);
    }
    if (o->density) {
        cJSON *de = cJSON_AddObjectToObject(doc, "density");
        const int P = r.density_probes, S = r.density_steps;
        cJSON_AddNumberToObject(de, "probes", P);
        cJSON_AddNumberToObject(de, "steps", S);
        cJSON_AddItemToObject(de, "nodes", numbers(r.nodes, P * S));
        cJSON_AddItemToObject(de, "weights", numbers(r.weights, P * S));
        for (int k = 1; k <= 2; k++) {   /* tr(H^k)/n with its standard error over the probes */
            char key[40];
            snprintf(key, sizeof key, "moment%d", k);
            cJSON_AddNumberToObject(de, key, r.moment[k - 1]);
            snprintf(key, sizeof key, "moment%d_std_error", k);
            cJSON_AddNumberToObject(de, key, r.moment_std_error[k - 1]);
            snprintf(key, sizeof key, "moment%d_probes_for_1_percent", k);
            cJSON_AddNumberToObject(de, key, r.moment_probes_for_1_percent[k - 1]);
            snprintf(key, sizeof key, "moment%d_exact", k);
            if (r.values) cJSON_AddNumberToObject(de, key, r.moment_exact[k - 1]);
        }
    }
    if (!o->block) {
        cJSON *al = cJSON_AddObjectToObject(doc, "alignment");
        cJSON_AddNumberToObject(al, "k", r.top);
        cJSON_AddNumberToObject(al, "gradient_fraction_in_top", r.gradient_fraction_in_top);
    }
    predictions_json(cJSON_AddObjectToObject(doc, "predictions"), &r, o->sectors);
    cJSON *tm = cJSON_AddObjectToObject(doc, "timings");   /* seconds of each phase */
    cJSON_AddNumberToObject(tm, "gradient", r.t_gradient);
    cJSON_AddNumberToObject(tm, "operator", r.t_operator);   /* deflation basis, frozen engine */
    cJSON_AddNumberToObject(tm, "eigenvalues", r.t_eigenvalues);
    cJSON_AddNumberToObject(tm, "predictions", r.t_predictions);
    cJSON_AddNumberToObject(tm, "total", r.t_total);
    if (o->vectors) {   /* top then bottom, rows */
        int64_t shape[2] = {r.top + r.bottom, n};
        double *V = malloc(sizeof(double) * (size_t)(shape[0] * n));
        memcpy(V, r.top_vectors, sizeof(double) * (size_t)(r.top * n));
        memcpy(V + r.top * n, r.bottom_vectors, sizeof(double) * (size_t)(r.bottom * n));
        if (nt_npy_write(o->vectors, V, 2, shape, &err)) cli_die("spectrum", &err);
        free(V);
    }
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
    cJSON *pred = cJSON_GetObjectItem(doc, "predictions");
    const int top = cJSON_GetArraySize(cJSON_GetObjectItem(doc, "top"));
    if (json) {
        cli_print_json(doc);
    } else {
        const cJSON *fl = cJSON_GetObjectItem(pred, "flat"), *it;
        if (fl) print_flat(stdout, fl, job.spec.model.weight_decay);
        const cJSON *sh = cJSON_GetObjectItem(pred, "sharp");
        if (sh)
            printf("sharp:  radial curvature %.6g, closed form %.6g, lambda_max %.6g\n",
                   cJSON_GetObjectItem(sh, "radial_curvature")->valuedouble,
                   cJSON_GetObjectItem(sh, "closed_form")->valuedouble, cJSON_GetObjectItem(sh, "lambda_max")->valuedouble);
        const cJSON *al = cJSON_GetObjectItem(doc, "alignment");
        if (al) printf("align:  %.4f of |g|^2 in the top-%d eigenspace\n",
                       cJSON_GetObjectItem(al, "gradient_fraction_in_top")->valuedouble, top);
        cJSON_ArrayForEach(it, cJSON_GetObjectItem(pred, "sectors")) {
            if (cJSON_GetObjectItem(it, "layer") && cJSON_GetObjectItem(it, "multiplicity_min"))
                printf("sector: layer %d, %d units: multiplicity %d (groups of %d to %d; predicted %d), margin %.4g\n",
                       cJSON_GetObjectItem(it, "layer")->valueint, cJSON_GetObjectItem(it, "units")->valueint,
                       cJSON_GetObjectItem(it, "multiplicity_found")->valueint,
                       cJSON_GetObjectItem(it, "multiplicity_min")->valueint,
                       cJSON_GetObjectItem(it, "multiplicity_max")->valueint,
                       cJSON_GetObjectItem(it, "predicted_multiplicity")->valueint,
                       cJSON_GetObjectItem(it, "stability_margin")->valuedouble);
        }
        cJSON_Delete(doc);
    }
    nt_transforms_free(list, n_list);
    nt_engine_free(e);
    cli_job_free(&job);
    return 0;
}
