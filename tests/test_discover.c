/* Discovery (docs/theory.md §7): the number of conservation laws of gradient flow against
 * the counts the literature proves (Marcotte, Gribonval & Peyre 2023), on sizes drawn here;
 * and the engine's second order of the outputs it is built on. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include "noether.h"
#include <cjson/cJSON.h>
#include "helpers.h"

typedef struct {
    nt_spec spec;
    nt_engine *e;
    double *theta;
} net;

/* a model of the layers JSON on `input` features, at a random theta (init seed) */
static void net_new(net *n, int input, const char *layers, const char *loss, uint64_t seed)
{
    char json[2048];
    snprintf(json, sizeof json,
             "{\"model\": {\"input\": %d, \"layers\": %s, \"loss\": \"%s\"}, \"data\": {\"source\": \"teacher\", "
             "\"n\": 8, \"seed\": 1}, \"init\": {\"seed\": %llu, \"bias_std\": 0.5}}",
             input, layers, loss, (unsigned long long)seed);
    nt_error err = {0};
    cr_assert_eq(nt_spec_parse(json, "discover.json", &n->spec, &err), NT_OK, "%s: %s", json, err.msg);
    n->theta = malloc(sizeof(double) * (size_t)n->spec.model.d);
    nt_init_params(&n->spec.model, &n->spec.init, n->theta);
    n->e = nt_engine_new(&n->spec.model, 256, 4);
    cr_assert(n->e);
}

static void net_free(net *n)
{
    nt_engine_free(n->e);
    free(n->theta);
    nt_spec_free(&n->spec);
}

static nt_conservation count(net *n)
{
    nt_conservation c;
    nt_error err = {0};
    cr_assert_eq(nt_conservation_count(n->e, &n->spec.model, n->theta, NULL, &c, &err), NT_OK, "%s", err.msg);
    cr_log_info("d %lld: ranks %d %d %d, conserved %d, gap %.2g | %.2g, %d products, %.2f s",
                (long long)n->spec.model.d, c.rank[0], c.rank[1], c.rank[2], c.conserved, c.rejected_max,
                c.accepted_min, c.products, c.seconds);
    cr_assert_eq(c.depth, 3);
    cr_assert(c.stagnated, "the rank still grew at depth 3");
    cr_assert_lt(c.rejected_max, 1e-3 * c.accepted_min, "no gap: rejected %.3g, accepted %.3g", c.rejected_max,
                 c.accepted_min);
    cr_assert_eq(c.n_laws, c.conserved);
    nt_conservation_free(&c);
    return c;
}

static int draw(uint64_t stream, int lo, int hi)
{
    return lo + (int)(nt_rand_u64(77, stream, 0) % (uint64_t)(hi - lo + 1));
}

Test(discover, the_output_second_order_is_the_mse_hessian_minus_its_gauss_newton_part)
{
    /* per sample l = |f - y|^2 / 2: Hess l = J^T J + sum_k (f_k - y_k) Hess f_k, so with
     * Fbar = F - Y:  N (H v - gamma v) = J^T (J v) + nt_output_hvp(Fbar, v) */
    nt_spec spec;
    nt_data data;
    nt_error err = {0};
    const char *json = "{\"model\": {\"input\": 4, \"layers\": [{\"dense\": 6}, {\"act\": \"tanh\"}, {\"dense\": 3}],"
                       " \"loss\": \"mse\"}, \"data\": {\"source\": \"teacher\", \"n\": 30, \"seed\": 2},"
                       " \"init\": {\"seed\": 3, \"bias_std\": 0.3}, \"weight_decay\": 0.01}";
    cr_assert_eq(nt_spec_parse(json, "o.json", &spec, &err), NT_OK, "%s", err.msg);
    cr_assert_eq(nt_data_load(&spec, &data, &err), NT_OK, "%s", err.msg);
    const nt_model *m = &spec.model;
    const nt_dataset *ds = &data.train;
    const int64_t d = m->d, N = ds->n, K = m->output;
    nt_engine *e = nt_engine_new(m, 8, 2);   /* chunks of 8: the sums over chunks too */
    double *theta = malloc(sizeof(double) * d), *v = malloc(sizeof(double) * 2 * d), *Hv = malloc(sizeof(double) * 2 * d);
    double *Jv = malloc(sizeof(double) * N * 2 * K), *JtJv = malloc(sizeof(double) * d), *F = malloc(sizeof(double) * N * K);
    double *rhs = malloc(sizeof(double) * 2 * d), *g = malloc(sizeof(double) * d), *g2 = malloc(sizeof(double) * d);
    nt_init_params(m, &spec.init, theta);
    for (int64_t i = 0; i < 2 * d; i++) v[i] = nt_rand_normal(4, 0, (uint64_t)i);
    t_hvp(e, theta, ds, 2, v, Hv, NULL);
    t_outputs(e, theta, ds, F);
    for (int64_t i = 0; i < N * K; i++) F[i] -= ds->y[i];
    cr_assert_eq(nt_output_hvp(e, theta, ds, F, 2, v, rhs, g, &err), NT_OK, "%s", err.msg);
    t_vjp(e, theta, ds, F, g2);
    cr_assert_eq(nt_rel_diff(d, g, g2), 0, "its gradient is nt_vjp's");
    t_jvp(e, theta, ds, 2, v, Jv);   /* n x k x K */
    double worst = 0, control = 0;
    for (int j = 0; j < 2; j++) {
        double *Jvj = malloc(sizeof(double) * N * K);
        for (int64_t n = 0; n < N; n++) memcpy(Jvj + n * K, Jv + (n * 2 + j) * K, sizeof(double) * K);
        t_vjp(e, theta, ds, Jvj, JtJv);
        double *lhs = malloc(sizeof(double) * d), *r = malloc(sizeof(double) * d);
        for (int64_t i = 0; i < d; i++) {
            lhs[i] = N * (Hv[j * d + i] - m->weight_decay * v[j * d + i]);
            r[i] = JtJv[i] + rhs[j * d + i];
        }
        worst = fmax(worst, nt_rel_diff(d, lhs, r));
        control = fmax(control, nt_rel_diff(d, lhs, JtJv));   /* without the second-order term */
        free(Jvj); free(lhs); free(r);
    }
    cr_log_info("N(H v - gamma v) against J^T J v + output second order: %.3g (without it: %.3g)", worst, control);
    cr_assert_leq(worst, 1e-13);
    cr_assert_geq(control, 1e-3);
    nt_engine_free(e);
    free(theta); free(v); free(Hv); free(Jv); free(JtJv); free(F); free(rhs); free(g); free(g2);
    nt_data_free(&data);
    nt_spec_free(&spec);
}

Test(discover, two_layer_linear_networks_conserve_r_r_plus_1_over_2, .timeout = 300)
{
    for (int r = 2; r <= 6; r++) {
        const int in = draw((uint64_t)r, r + 1, r + 4), out = draw(100 + (uint64_t)r, r + 1, r + 3);
        char layers[256];
        snprintf(layers, sizeof layers, "[{\"dense\": %d, \"bias\": false}, {\"dense\": %d, \"bias\": false}]", r, out);
        net n;
        net_new(&n, in, layers, "mse", (uint64_t)r);
        nt_conservation c = count(&n);
        cr_assert_eq(c.conserved, r * (r + 1) / 2, "x -> U V^T x, %d-%d-%d: %d laws, expected r(r+1)/2 = %d", in, r,
                     out, c.conserved, r * (r + 1) / 2);
        cr_assert_gt(c.rank[1], c.rank[0], "the brackets add directions to W (linear networks)");
        net_free(&n);
    }
}

Test(discover, two_layer_relu_networks_conserve_r_with_or_without_biases, .timeout = 300)
{
    for (int bias = 0; bias <= 1; bias++)
        for (int r = 2; r <= 5; r += 3) {
            const int in = draw(10 + (uint64_t)r, 2, 5), out = draw(20 + (uint64_t)r, 1, 3);
            char layers[256];
            snprintf(layers, sizeof layers, "[{\"dense\": %d, \"bias\": %s}, {\"act\": \"relu\"}, {\"dense\": %d, "
                     "\"bias\": false}]", r, bias ? "true" : "false", out);
            net n;
            net_new(&n, in, layers, "mse", 7 + (uint64_t)r);
            nt_conservation c = count(&n);
            cr_assert_eq(c.conserved, r, "relu %d-%d-%d, bias %d: %d laws, expected %d", in, r, out, bias,
                         c.conserved, r);
            net_free(&n);
        }
}

Test(discover, deep_linear_networks_conserve_the_sum_over_hidden_layers, .timeout = 300)
{
    const int r1 = draw(1, 2, 4), r2 = draw(2, 2, 3), in = r1 + 1, out = r2 + 1;
    char layers[256];
    snprintf(layers, sizeof layers, "[{\"dense\": %d, \"bias\": false}, {\"dense\": %d, \"bias\": false}, "
             "{\"dense\": %d, \"bias\": false}]", r1, r2, out);
    net n;
    net_new(&n, in, layers, "mse", 5);
    nt_conservation c = count(&n);
    const int want = r1 * (r1 + 1) / 2 + r2 * (r2 + 1) / 2;
    cr_assert_eq(c.conserved, want, "%d-%d-%d-%d: %d laws, expected %d", in, r1, r2, out, c.conserved, want);
    net_free(&n);
}

Test(discover, tanh_networks_conserve_nothing)
{
    net n;
    net_new(&n, 3, "[{\"dense\": 4}, {\"act\": \"tanh\"}, {\"dense\": 2}]", "mse", 3);
    nt_conservation c = count(&n);
    cr_assert_eq(c.conserved, 0, "%d laws", c.conserved);
    net_free(&n);
}

static nt_discrete discrete(net *n, int use_catalogue)
{
    nt_transform *list = NULL;
    int count = 0;
    nt_error err = {0};
    if (use_catalogue) cr_assert_eq(nt_catalogue(&n->spec.model, &list, &count), NT_OK);
    nt_discrete o;
    cr_assert_eq(nt_discover_discrete(n->e, &n->spec.model, n->theta, list, count, 0, &o, &err), NT_OK, "%s", err.msg);
    for (int i = 0; i < o.n_layers; i++)
        cr_log_info("layer %d: %d units, %d orbits, log10 |G| %.3f (catalogue %.3f), flips odd %d even %d",
                    o.layers[i].layer, o.layers[i].units, o.layers[i].orbits, o.layers[i].log10_order,
                    o.layers[i].catalogue_log10_order, o.layers[i].odd_flips, o.layers[i].even_flips);
    for (int i = 0; i < o.n_missing; i++) cr_log_info("missing: %s", o.missing[i]);
    nt_transforms_free(list, count);
    return o;
}

Test(discover, the_units_of_a_hidden_layer_are_exchanged_and_negated_as_the_activation_allows)
{
    const struct { const char *act; int odd, even; } cases[] = { {"tanh", 1, 0}, {"square", 0, 1}, {"relu", 0, 0} };
    for (int c = 0; c < 3; c++) {
        const int units = draw(30 + (uint64_t)c, 3, 6);
        char layers[256];
        snprintf(layers, sizeof layers, "[{\"dense\": %d}, {\"act\": \"%s\"}, {\"dense\": 2}]", units, cases[c].act);
        net n;
        net_new(&n, 3, layers, "mse", 11);
        nt_discrete o = discrete(&n, 1);
        cr_assert_eq(o.n_layers, 1);
        const nt_discrete_layer *L = &o.layers[0];
        cr_assert_eq(L->layer, 0, "the units are the outputs of model.layers[0]");
        cr_assert_eq(L->orbits, 1, "%s: every exchange of units is a symmetry", cases[c].act);
        cr_assert_float_eq(L->log10_order, lgamma(units + 1.0) / log(10.0), 1e-12, "|S_%d|", units);
        cr_assert_float_eq(L->catalogue_log10_order, L->log10_order, 1e-12);
        cr_assert_eq(L->odd_flips, cases[c].odd * units, "%s", cases[c].act);
        cr_assert_eq(L->even_flips, cases[c].even * units, "%s", cases[c].act);
        cr_assert_eq(o.n_missing, 0, "the catalogue generates all of them (%s)", o.n_missing ? o.missing[0] : "");
        nt_discrete_free(&o);
        /* the control: without the catalogue every exchange and flip found is missing */
        o = discrete(&n, 0);
        cr_assert_eq(o.n_missing, (units - 1) + (cases[c].odd + cases[c].even) * units);
        nt_discrete_free(&o);
        net_free(&n);
    }
}

Test(discover, units_bound_to_a_layer_norm_are_not_exchanged_alone)
{
    net n;
    net_new(&n, 3, "[{\"dense\": 4}, {\"norm\": \"layer\"}, {\"act\": \"tanh\"}, {\"dense\": 2}]", "mse", 5);
    nt_discrete o = discrete(&n, 1);
    cr_assert_eq(o.layers[0].orbits, 4, "the gains differ at random points: no exchange without them");
    cr_assert_eq(o.n_missing, 0);
    nt_discrete_free(&o);
    net_free(&n);
}

static nt_algebra algebra(net *n, int use_catalogue)
{
    nt_transform *list = NULL;
    int count = 0;
    nt_error err = {0};
    if (use_catalogue) cr_assert_eq(nt_catalogue(&n->spec.model, &list, &count), NT_OK);
    nt_algebra o;
    cr_assert_eq(nt_discover_algebra(n->e, &n->spec.model, n->theta, list, count, &o, &err), NT_OK, "%s", err.msg);
    cr_log_info("%s: dim %d (+%d equivariances), charges %d (%d independent), missing %d, cut %.2g | %.2g, "
                "%d points, %.2f s", o.search_space, o.lie_algebra_dim, o.equivariances, o.charges,
                o.charges_independent, o.missing_from_catalogue, o.sv_cut[0], o.sv_cut[1], o.points, o.seconds);
    cr_assert_lt(o.sv_cut[0], 1e-6 * o.sv_cut[1], "no gap at the cut: %.3g | %.3g", o.sv_cut[0], o.sv_cut[1]);
    nt_transforms_free(list, count);
    return o;
}

Test(discover, the_symmetry_algebra_and_its_charges_match_the_conservation_count, .timeout = 300)
{
    /* linear: gl(r) (r^2), its symmetric part r(r+1)/2 = the laws; relu: the r rescalings;
     * tanh: none (its symmetries are discrete) */
    const struct { const char *layers; int dim, charges; } cases[] = {
        { "[{\"dense\": 2, \"bias\": false}, {\"dense\": 3, \"bias\": false}]", 4, 3 },
        { "[{\"dense\": 3, \"bias\": false}, {\"act\": \"relu\"}, {\"dense\": 2, \"bias\": false}]", 3, 3 },
        { "[{\"dense\": 3}, {\"act\": \"relu\"}, {\"dense\": 2, \"bias\": false}]", 3, 3 },
        { "[{\"dense\": 3}, {\"act\": \"tanh\"}, {\"dense\": 2}]", 0, 0 },
    };
    for (int c = 0; c < 4; c++) {
        net n;
        net_new(&n, 3, cases[c].layers, "mse", 21 + (uint64_t)c);
        cr_assert_leq(n.spec.model.d, NT_DISCOVER_FULL_MAX);
        nt_algebra o = algebra(&n, 1);
        nt_conservation laws = count(&n);
        cr_assert_eq(o.lie_algebra_dim, cases[c].dim, "%s", cases[c].layers);
        cr_assert_eq(o.charges_independent, cases[c].charges, "%s", cases[c].layers);
        cr_assert_eq(o.charges_independent, laws.conserved, "the charges are all the laws (%s)", cases[c].layers);
        cr_assert_eq(o.missing_from_catalogue, 0, "%s", cases[c].layers);
        nt_algebra_free(&o);
        if (cases[c].dim) {   /* the control: without the catalogue the whole algebra is missing */
            o = algebra(&n, 0);
            cr_assert_gt(o.missing_from_catalogue, 0);
            nt_algebra_free(&o);
        }
        net_free(&n);
    }
}

Test(discover, a_larger_model_is_searched_in_the_structured_space, .timeout = 300)
{
    net n;
    net_new(&n, 6, "[{\"dense\": 8}, {\"act\": \"relu\"}, {\"dense\": 3}]", "mse", 4);
    cr_assert_gt(n.spec.model.d, NT_DISCOVER_FULL_MAX);
    nt_algebra o = algebra(&n, 1);
    cr_assert(strstr(o.search_space, "structured"), "%s", o.search_space);
    cr_assert_eq(o.lie_algebra_dim, 8, "the rescalings of the 8 units");
    cr_assert_eq(o.charges_independent, 8);
    cr_assert_eq(o.missing_from_catalogue, 0);
    cr_assert_eq(o.equivariances, -1, "not searched there");
    nt_algebra_free(&o);
    net_free(&n);
}

/* noether discover SPEC --json [args]: the document (the test fails unless it exits 0) */
static cJSON *discover_json(const char *spec, const char *args)
{
    char cmd[4096], *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd, "discover '%s' --json %s", spec, args);
    int rc = run_noether(cmd, &out, &err);
    cr_assert_eq(rc, 0, "noether %s: exit %d: %s", cmd, rc, err);
    cJSON *doc = cJSON_Parse(out);
    cr_assert(doc, "not JSON: %s", out);
    free(out);
    free(err);
    return doc;
}

static int json_int(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    cr_assert(cJSON_IsNumber(v), "no number %s", key);
    return (int)v->valuedouble;
}

Test(discover, the_command_writes_generators_that_noether_check_runs, .timeout = 300)
{
    char dir[256], spec[NT_PATH_MAX], gen[NT_PATH_MAX], with[NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(spec, dir, "linear.json");
    path_join(gen, dir, "gen");
    const char *model = "{\"model\": {\"input\": 4, \"layers\": [{\"dense\": 3, \"bias\": false}, {\"dense\": 4, "
                        "\"bias\": false}], \"loss\": \"mse\"}, \"data\": {\"source\": \"teacher\", \"n\": 20, \"seed\": 1}";
    char text[8192];
    snprintf(text, sizeof text, "%s}", model);
    write_text(spec, text);
    char args[NT_PATH_MAX + 32];
    snprintf(args, sizeof args, "--out-generators '%s'", gen);
    cJSON *doc = discover_json(spec, args);
    cr_assert_eq(json_int(doc, "conserved"), 6, "r(r+1)/2 for r = 3");
    cr_assert_eq(json_int(doc, "lie_algebra_dim"), 9, "gl(3)");
    cr_assert_eq(json_int(doc, "charges_independent"), 6);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "missing_from_catalogue")), 0);
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(doc, "explained")));
    cr_assert(strstr(cJSON_GetObjectItem(doc, "search_space")->valuestring, "full"));
    cJSON_Delete(doc);
    /* the spec with the generators declared: every identity of each holds */
    char frag_path[NT_PATH_MAX];
    path_join(frag_path, gen, "transformations.json");
    size_t len;
    char *frag = read_file(frag_path, &len);
    cr_assert(frag);
    cJSON *f = cJSON_Parse(frag);
    char *list = cJSON_PrintUnformatted(cJSON_GetObjectItem(f, "transformations"));
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(f, "transformations")), 9);
    snprintf(text, sizeof text, "%s, \"transformations\": %s}", model, list);
    path_join(with, dir, "with.json");
    write_text(with, text);
    snprintf(args, sizeof args, "check '%s'", with);
    char *out = NULL, *err = NULL;
    int rc = run_noether(args, &out, &err);
    cr_assert_eq(rc, 0, "noether check of the discovered generators: exit %d\n%s%s", rc, out, err);
    cr_assert(strstr(out, "discovered_8"), "%s", out);
    free(out); free(err);
    /* the control: one generator's matrix replaced by a random one (not a symmetry) */
    char A0[NT_PATH_MAX];
    path_join(A0, gen, "A_0.npy");
    nt_array a = {0};
    nt_error e = {0};
    cr_assert_eq(nt_npy_read(A0, &a, &e), NT_OK, "%s", e.msg);
    fill_normal(a.data, a.size, 1.0, 5);
    int64_t shape[2] = {a.shape[0], a.shape[1]};
    cr_assert_eq(nt_npy_write(A0, a.data, 2, shape, &e), NT_OK);
    nt_array_free(&a);
    rc = run_noether(args, NULL, NULL);
    cr_assert_eq(rc, 3, "a transposed generator must fail its identities (exit %d)", rc);
    free(list); free(frag);
    cJSON_Delete(f);
}

Test(discover, every_example_is_explained_by_the_catalogue_but_one_known_gap, .timeout = 900)
{
    const char *names[] = { "attention_heads", "batchnorm_wine", "cnn_batchnorm_fashion", "collapsed_units",
                            "deep_linear", "layernorm_scale", "lyu_li_margin", "ziyin_mirror" };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char spec[NT_PATH_MAX];
        snprintf(spec, sizeof spec, "%s/examples/%s.json", NOETHER_SOURCE_DIR, names[i]);
        cJSON *doc = discover_json(spec, "");
        const cJSON *laws = cJSON_GetObjectItem(doc, "conservation");
        const int stagnated = cJSON_IsTrue(cJSON_GetObjectItem(laws, "stagnated"));
        cr_log_info("%s: %d laws (catalogue %d), algebra %d, %s, explained %d", names[i], json_int(doc, "conserved"),
                    json_int(doc, "catalogue_conserved"), json_int(doc, "lie_algebra_dim"),
                    stagnated ? "stagnated" : "still growing at depth 3", cJSON_IsTrue(cJSON_GetObjectItem(doc, "explained")));
        cr_assert(stagnated, "%s: the rank still grows at the deepest level", names[i]);
        cr_assert_eq(json_int(doc, "catalogue_not_conserved"), 0, "%s: a catalogue quantity is not a law", names[i]);
        const cJSON *miss = cJSON_GetObjectItem(doc, "missing_from_catalogue");
        if (strcmp(names[i], "attention_heads") == 0) {
            /* the one known gap: a layer norm inside a residual block ignores the residual
             * stream's uniform direction 1, so b_0 += s 1, b_O -= s 1 (and the rank-one maps
             * I + s 1 w^T of the stream) are symmetries the catalogue does not list: two laws */
            cr_assert_eq(json_int(doc, "conserved") - json_int(doc, "catalogue_conserved"), 2);
            cr_assert_eq(cJSON_GetArraySize(miss), 2);
            cr_assert(strstr(cJSON_GetArrayItem(miss, 0)->valuestring, "0.bias") &&
                      strstr(cJSON_GetArrayItem(miss, 0)->valuestring, "out_proj.bias"), "%s",
                      cJSON_GetArrayItem(miss, 0)->valuestring);
            cJSON_Delete(doc);
            continue;
        }
        cr_assert_eq(cJSON_GetArraySize(miss), 0, "%s: %s", names[i],
                     cJSON_GetArraySize(miss) ? cJSON_GetArrayItem(miss, 0)->valuestring : "");
        cr_assert_eq(json_int(doc, "conserved"), json_int(doc, "catalogue_conserved"), "%s", names[i]);
        cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(doc, "explained")), "%s", names[i]);
        cJSON_Delete(doc);
    }
    char args[NT_PATH_MAX + 32], *err = NULL;
    snprintf(args, sizeof args, "discover %s/examples/fashion_mlp.json", NOETHER_SOURCE_DIR);
    cr_assert_eq(run_noether(args, NULL, &err), 2);
    cr_assert(strstr(err, "d x d basis: d = 269322"), "%s", err);
    free(err);
}
