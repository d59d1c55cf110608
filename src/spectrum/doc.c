/* doc.c: the spectrum's JSON document (noether spectrum --json, run's spectrum.json and
 * summary.json parts, and Problem.spectrum() of the Python module) written from the
 * library's nt_spectrum, every key as docs/interface.md gives it.  Writing only: the numbers
 * and verdicts are the library's (analysis.c, predict.c). */
#include <stdio.h>
#include <stdlib.h>
#include "doc.h"
#include "../util/buf.h"

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

/* predictions.flat.at_critical_point: the eigenvalues (S1gamma) forces at a critical point,
 * each with its multiplicity and the count found */
cJSON *nt_critical_json(const nt_flat_view *f)
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
        cJSON_AddItemToObject(o, "at_critical_point", nt_critical_json(f));
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
cJSON *nt_sectors_json(const nt_spectrum *r, int eigenvalues)
{
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < r->n_sectors; i++) {
        const nt_sector *S = &r->sectors[i];
        cJSON *o = cJSON_CreateObject();
        put(o, KEYS("layer", "dimension"), (double[]){S->layer_index, S->dimension});
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
cJSON *nt_sharp_json(const nt_sharp_view *s)
{
    cJSON *o = cJSON_CreateObject();
    put(o, KEYS("degree", "radial_curvature", "closed_form", "lambda_max"),
        (double[]){s->degree, s->radial_curvature, s->closed_form, s->lambda_max});
    return o;
}

/* predictions.alignment_scale_invariant (docs/theory.md §3) */
cJSON *nt_scale_json(const nt_spectrum *r)
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
cJSON *nt_alignment_json(const nt_spectrum *r)
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
    if (r->sharp.applies) cJSON_AddItemToObject(pred, "sharp", nt_sharp_json(&r->sharp));
    if (sectors) cJSON_AddItemToObject(pred, "sectors", nt_sectors_json(r, 1));
    if (r->n_scale) cJSON_AddItemToObject(pred, "alignment_scale_invariant", nt_scale_json(r));
}

/* the spectrum's document (noether spectrum --json) from the library's result r */
cJSON *nt_spectrum_doc(const nt_spectrum *r, const nt_spectrum_doc_opts *o)
{
    const int64_t n = r->n;

    cJSON *doc = cJSON_CreateObject();
    put(doc, KEYS("d", "dim"), (double[]){r->d, n});   /* dim: the operator's size (a block's, or d) */
    cJSON_AddNumberToObject(doc, "ranks", nt_parallel_size());   /* MPI ranks (1 without mpirun) */
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
    if (!o->block) cJSON_AddItemToObject(doc, "alignment", nt_alignment_json(r));
    predictions_json(cJSON_AddObjectToObject(doc, "predictions"), r, o->sectors);
    /* seconds of each phase (operator: the deflation basis, the frozen engine) */
    put(cJSON_AddObjectToObject(doc, "timings"), KEYS("gradient", "operator", "eigenvalues", "predictions", "total"),
        (double[]){r->t_gradient, r->t_operator, r->t_eigenvalues, r->t_predictions, r->t_total});
    return doc;
}

char *nt_spectrum_json(const nt_spectrum *r, const nt_spectrum_doc_opts *o)
{
    cJSON *doc = nt_spectrum_doc(r, o);
    char *text = doc ? nt_json_print(doc, 1) : NULL;
    cJSON_Delete(doc);
    return text;
}
