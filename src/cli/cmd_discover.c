/* cmd_discover.c: noether discover: the conservation laws and symmetries a model really has
 * (docs/theory.md §7), against the catalogue. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "cli.h"

static const char usage[] =
    "usage: noether discover [SPEC] [--params P.npy] [--json] [--out-generators DIR]\n"
    "                        [--samples N] [--depth 1..4]\n\n"
    "Finds, from the model itself rather than from its layer structure (docs/theory.md §7):\n"
    "  - the number of conservation laws of gradient flow, d - dim Lie(W)(theta) (Marcotte,\n"
    "    Gribonval & Peyre 2023): W the fields grad f_k(theta; x), their brackets exact, the\n"
    "    brackets of brackets by differences; a count for the model under any data and loss\n"
    "    (random inputs stand for any data), at theta;\n"
    "  - the Lie algebra of affine symmetries xi = A theta + c (J xi = 0 for every input, at\n"
    "    many points): in the full space of A, c (and B for equivariances) for d <= "
    NT_STR(NT_DISCOVER_FULL_MAX) ",\n"
    "    in a structured space (gl(n) on each hidden layer's units) beyond; its symmetric part's\n"
    "    charges theta^T A theta / 2 + c^T theta and how many are independent;\n"
    "  - the exchanges and sign flips of hidden units that leave the outputs unchanged;\n"
    "and what of it the catalogue (noether symmetries) does not generate.\n\n"
    "  --params P.npy        theta (default: the spec's initialization)\n"
    "  --json                one JSON document: conserved, lie_algebra_dim, charges_independent,\n"
    "                        missing_from_catalogue (list), search_space, and the diagnostics\n"
    "  --out-generators DIR  the algebra's basis as DIR/A_i.npy, DIR/c_i.npy and a spec fragment\n"
    "                        DIR/transformations.json (d <= " NT_STR(NT_DISCOVER_DENSE_MAX) "), so that noether check runs them\n"
    "  --samples N           random inputs for the count (default 2 max(d/K, input width) + 16)\n"
    "  --depth D             bracket depth of the count (default 3)\n";

static void progress(void *ctx, const char *phase)
{
    if (!*(const int *)ctx) fprintf(stderr, "discover: %s\n", phase);
}

/* the algebra's basis as NPY files and the spec fragment that declares them */
static void write_generators(const char *dir, const nt_algebra *a, int64_t d)
{
    cli_mkdir("discover", dir);
    cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "transformations");
    char name[64];
    const int64_t shape[2] = {d, d};
    for (int i = 0; i < a->n_generators; i++) {
        snprintf(name, sizeof name, "A_%d.npy", i);
        cli_write_npy("discover", dir, name, a->A + (int64_t)i * d * d, 2, shape);
        cJSON *o = cJSON_CreateObject();
        char path[NT_PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        snprintf(name, sizeof name, "discovered_%d", i);
        cJSON_AddStringToObject(o, "name", name);
        cJSON_AddStringToObject(o, "kind", "continuous");
        cJSON_AddStringToObject(o, "generator", path);
        snprintf(name, sizeof name, "c_%d.npy", i);
        cli_write_npy("discover", dir, name, a->c + (int64_t)i * d, 1, shape);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        cJSON_AddStringToObject(o, "shift", path);
        cJSON_AddItemToArray(arr, o);
    }
    char *text = nt_json_print(doc, 1);
    cli_write_in("discover", dir, "transformations.json", text);
    free(text);
    cJSON_Delete(doc);
}

static cJSON *numbers(const int *x, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(x[i]));
    return a;
}

cJSON *cli_discovery_json(int64_t d, const nt_discovery *D)
{
    const nt_conservation *c = &D->laws;
    const nt_algebra *a = &D->algebra;
    const nt_discrete *q = &D->discrete;
    cJSON *doc = cJSON_CreateObject(), *o;
    cJSON_AddNumberToObject(doc, "d", (double)d);
    cJSON_AddNumberToObject(doc, "conserved", c->conserved);
    cJSON_AddNumberToObject(doc, "conserved_at_theta", D->at_theta.conserved);
    cJSON_AddNumberToObject(doc, "catalogue_conserved", D->catalogue_laws);
    cJSON_AddNumberToObject(doc, "catalogue_not_conserved", D->not_conserved);
    cJSON_AddNumberToObject(doc, "lie_algebra_dim", a->lie_algebra_dim);
    cJSON_AddNumberToObject(doc, "charges_independent", a->charges_independent);
    cJSON *miss = cJSON_AddArrayToObject(doc, "missing_from_catalogue");
    for (int i = 0; i < q->n_missing; i++) cJSON_AddItemToArray(miss, cJSON_CreateString(q->missing[i]));
    for (int i = 0; i < D->unexplained && i < NT_DISCOVER_MAX_UNEXPLAINED; i++) {
        char s[224];
        snprintf(s, sizeof s, "conservation law beyond the catalogue's quantities: %s", D->unexplained_where[i]);
        cJSON_AddItemToArray(miss, cJSON_CreateString(s));
    }
    for (int i = 0; i < a->missing_from_catalogue; i++) {
        char s[96];
        snprintf(s, sizeof s, "continuous: direction %d of %d of the algebra outside the catalogue's span",
                 i + 1, a->missing_from_catalogue);
        cJSON_AddItemToArray(miss, cJSON_CreateString(s));
    }
    cJSON_AddStringToObject(doc, "search_space", a->search_space);
    cJSON_AddBoolToObject(doc, "explained", D->explained);
    cJSON_AddNumberToObject(doc, "seconds", D->laws.seconds + D->at_theta.seconds + a->seconds);
    o = cJSON_AddObjectToObject(doc, "conservation");
    cJSON_AddStringToObject(o, "scope", "the model under any data and loss (random inputs), at a generic point near "
                            "theta");
    cJSON_AddNumberToObject(o, "depth", c->depth);
    cJSON_AddBoolToObject(o, "stagnated", c->stagnated);
    cJSON_AddItemToObject(o, "rank", numbers(c->rank, c->depth));
    cJSON_AddItemToObject(o, "candidates", numbers(c->candidates, c->depth));
    cJSON_AddNumberToObject(o, "discarded", c->discarded);
    cJSON_AddNumberToObject(o, "samples", c->samples);
    cJSON_AddNumberToObject(o, "input_rounds", c->rounds);
    cJSON_AddNumberToObject(o, "products", c->products);
    cJSON_AddNumberToObject(o, "tol", c->tol);
    cJSON_AddNumberToObject(o, "step", c->step);
    cJSON_AddNumberToObject(o, "residual_accepted_min", isfinite(c->accepted_min) ? c->accepted_min : 0);
    cJSON_AddNumberToObject(o, "residual_rejected_max", c->rejected_max);
    cJSON *sv = cJSON_AddObjectToObject(o, "singular_values");
    cJSON_AddNumberToObject(sv, "first_index", c->sv_first);
    cJSON_AddNumberToObject(sv, "largest", c->sv_max);
    cJSON *vals = cJSON_AddArrayToObject(sv, "relative");
    for (int i = 0; i < c->n_sv; i++) cJSON_AddItemToArray(vals, cJSON_CreateNumber(c->sv[i]));
    cJSON_AddNumberToObject(o, "seconds", c->seconds);
    o = cJSON_AddObjectToObject(doc, "algebra");
    cJSON_AddNumberToObject(o, "equivariances", a->equivariances);
    cJSON_AddNumberToObject(o, "charges", a->charges);
    cJSON_AddNumberToObject(o, "catalogue_rank", a->catalogue_rank);
    cJSON_AddNumberToObject(o, "missing_dimensions", a->missing_from_catalogue);
    cJSON_AddNumberToObject(o, "points", a->points);
    cJSON_AddNumberToObject(o, "samples", a->samples);
    cJSON_AddNumberToObject(o, "tol", a->tol);
    cJSON_AddNumberToObject(o, "singular_value_zero_max", a->sv_cut[0]);
    cJSON_AddNumberToObject(o, "singular_value_nonzero_min", a->sv_cut[1]);
    cJSON_AddNumberToObject(o, "seconds", a->seconds);
    cJSON *layers = cJSON_AddArrayToObject(doc, "discrete");
    for (int i = 0; i < q->n_layers; i++) {
        const nt_discrete_layer *L = &q->layers[i];
        o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "layer", L->layer);
        cJSON_AddNumberToObject(o, "units", L->units);
        cJSON_AddNumberToObject(o, "orbits", L->orbits);
        cJSON_AddNumberToObject(o, "log10_group_order", L->log10_order);
        cJSON_AddNumberToObject(o, "catalogue_log10_group_order", L->catalogue_log10_order);
        cJSON_AddNumberToObject(o, "sign_flips", L->odd_flips);
        cJSON_AddNumberToObject(o, "even_flips", L->even_flips);
        cJSON_AddItemToArray(layers, o);
    }
    if (q->missing_more) cJSON_AddNumberToObject(doc, "missing_not_listed", q->missing_more);
    return doc;
}

static void text(int64_t d, const nt_discovery *D)
{
    const nt_conservation *c = &D->laws;
    const nt_algebra *a = &D->algebra;
    const nt_discrete *q = &D->discrete;
    printf("conservation laws: %d (d = %lld, dim Lie(W) = %d; ranks by depth:", c->conserved, (long long)d,
           c->rank[c->depth - 1]);
    for (int i = 0; i < c->depth; i++) printf(" %d", c->rank[i]);
    printf("%s)\n", c->stagnated ? ", stagnated" : ", still growing at the last depth: an upper bound");
    printf("  for the model under any data and loss, at a generic point near theta; %d random inputs, %d products, "
           "%.2f s\n", c->samples, c->products, c->seconds);
    if (D->at_theta.conserved != c->conserved)
        printf("  at theta itself: %d (theta is special: the fields' rank drops there)\n", D->at_theta.conserved);
    printf("  residual gap: largest rejected %.2g, smallest accepted %.2g (tolerance %.0e)\n", c->rejected_max,
           isfinite(c->accepted_min) ? c->accepted_min : 0, c->tol);
    printf("symmetry algebra: dimension %d", a->lie_algebra_dim);
    if (a->equivariances >= 0) printf(" (+%d equivariances)", a->equivariances);
    printf("; %d charges, %d independent\n  searched: %s\n", a->charges, a->charges_independent, a->search_space);
    for (int i = 0; i < q->n_layers; i++) {
        const nt_discrete_layer *L = &q->layers[i];
        printf("units of model.layers[%d] (%d): exchanges generate a group of order 10^%.2f (catalogue 10^%.2f), "
               "%d sign flips, %d even flips\n", L->layer, L->units, L->log10_order, L->catalogue_log10_order,
               L->odd_flips, L->even_flips);
    }
    if (D->explained)
        printf("conservation laws: %d (all explained by the catalogue's symmetries)\n", c->conserved);
    else {
        printf("not explained by the catalogue: %d laws against its %d independent conserved quantities for any "
               "loss%s; missing:", c->conserved, D->catalogue_laws, c->stagnated ? "" : " (the count is an upper bound)");
        for (int i = 0; i < q->n_missing; i++) printf(" %s", q->missing[i]);
        if (q->missing_more) printf(" and %d more", q->missing_more);
        for (int i = 0; i < D->unexplained && i < NT_DISCOVER_MAX_UNEXPLAINED; i++)
            printf("%s a law in %s", i ? ";" : "", D->unexplained_where[i]);
        if (D->not_conserved) printf("; %d of its quantities are not conserved for every loss", D->not_conserved);
        if (a->missing_from_catalogue) printf(" %d continuous direction(s)", a->missing_from_catalogue);
        printf("%s\n", D->missing || D->unexplained || D->not_conserved ? "" : " nothing");
    }
}

int cmd_discover(int argc, char **argv)
{
    const char *spec = NULL, *params = NULL, *json = NULL, *out = NULL, *samples = NULL, *depth = NULL;
    cli_opt opts[] = {{"--params", 0, &params}, {"--json", 1, &json}, {"--out-generators", 0, &out},
                      {"--samples", 0, &samples}, {"--depth", 0, &depth}, {NULL, 0, NULL}};
    cli_parse("discover", usage, argc, argv, opts, &spec);
    nt_conservation_opts co = { .progress = progress };
    int quiet = json != NULL;
    co.ctx = &quiet;
    if (samples && (sscanf(samples, "%d", &co.samples) != 1 || co.samples < 1))
        cli_usage_error("discover", "--samples %s: a positive integer", samples);
    if (depth && (sscanf(depth, "%d", &co.depth) != 1 || co.depth < 1 || co.depth > NT_DISCOVER_MAX_DEPTH))
        cli_usage_error("discover", "--depth %s: 1 to " NT_STR(NT_DISCOVER_MAX_DEPTH), depth);
    cli_job job;
    cli_job_load(&job, "discover", spec, params);
    const nt_model *m = &job.spec.model;
    if (out && m->d > NT_DISCOVER_DENSE_MAX)
        cli_usage_error("discover", "--out-generators writes d x d matrices: d = %lld is above %d", (long long)m->d,
                        NT_DISCOVER_DENSE_MAX);
    nt_transform *list = NULL;
    int n = 0;
    cli_load_transforms("discover", &job, &list, &n);
    nt_engine *e = cli_engine(&job, 8);
    nt_error err = {0};
    nt_discovery D;
    if (nt_discover(e, m, job.theta, list, n, &co, &D, &err)) cli_die("discover", &err);
    if (out) write_generators(out, &D.algebra, m->d);
    if (json) cli_print_json(cli_discovery_json(m->d, &D));
    else text(m->d, &D);
    nt_discovery_free(&D);
    nt_transforms_free(list, n);
    nt_engine_free(e);
    cli_job_free(&job);
    return 0;
}
