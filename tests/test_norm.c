/* test_norm.c: layer normalization.  Its gradient and Hessian-vector products against
 * central finite differences, alone and composed (with and without its affine part, before
 * and after activations, chunked, with weight decay); its scale symmetry: the weights
 * feeding a normalization can be scaled freely, so H w = -g_w there (docs/theory.md §3), which
 * the catalogue lists and noether check confirms, with the negative controls (no scale
 * symmetry without the normalization; no unit rescaling across it). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include <cJSON.h>
#include "helpers.h"

static nt_layer dense(int units) { return (nt_layer){ .kind = NT_LAYER_DENSE, .units = units, .bias = 1 }; }
static nt_layer act(nt_act a) { return (nt_layer){ .kind = NT_LAYER_ACT, .act = a, .alpha = 0.01 }; }
static nt_layer norm(int affine) { return (nt_layer){ .kind = NT_LAYER_LAYERNORM, .affine = affine, .eps = 1e-5 }; }
static nt_layer bnorm(int affine, double eps) { return (nt_layer){ .kind = NT_LAYER_BATCHNORM, .affine = affine, .eps = eps }; }

/* the gradient coordinate by coordinate and H v on three directions, against differences */

Test(layernorm, alone_affine)
{
    nt_layer L[] = { dense(6), norm(1), dense(3) };
    fd_check_layers(L, 3, NT_LOSS_CROSS_ENTROPY, 0.0, 11, 0.6, "normalization");
}

Test(layernorm, alone_without_affine)
{
    nt_layer L[] = { dense(6), norm(0), dense(3) };
    fd_check_layers(L, 3, NT_LOSS_MSE, 0.01, 12, 0.6, "normalization");
}

Test(layernorm, composed)
{
    nt_layer L[] = { dense(7), norm(1), act(NT_ACT_TANH), dense(5), act(NT_ACT_GELU), norm(0), dense(4), norm(1), dense(3) };
    fd_check_layers(L, 9, NT_LOSS_CROSS_ENTROPY, 0.003, 13, 0.6, "normalization");
}

Test(layernorm, on_the_input)
{
    nt_layer L[] = { norm(1), dense(4), act(NT_ACT_RELU), dense(1) };
    fd_check_layers(L, 4, NT_LOSS_LOGISTIC, 0.0, 14, 0.6, "normalization");
}

/* batch normalization in training mode: the engine is made with chunks of 5 rows, and
 * must hold the 13 samples whole (the statistics are the batch's) */
Test(batchnorm, alone_affine)
{
    nt_layer L[] = { dense(6), bnorm(1, 1e-5), dense(3) };
    fd_check_layers(L, 3, NT_LOSS_CROSS_ENTROPY, 0.0, 21, 0.6, "normalization");
}

Test(batchnorm, without_affine_eps_zero)
{
    nt_layer L[] = { dense(6), bnorm(0, 0), dense(3) };
    fd_check_layers(L, 3, NT_LOSS_MSE, 0.01, 22, 0.6, "normalization");
}

Test(batchnorm, composed_with_layernorm)
{
    nt_layer L[] = { dense(7), bnorm(1, 1e-5), act(NT_ACT_TANH), dense(5), act(NT_ACT_RELU), bnorm(1, 0), norm(1),
                     dense(4), act(NT_ACT_SOFTPLUS), dense(3) };
    fd_check_layers(L, 10, NT_LOSS_CROSS_ENTROPY, 0.003, 23, 0.6, "normalization");
}

Test(batchnorm, on_the_input)
{
    nt_layer L[] = { bnorm(1, 1e-5), dense(4), act(NT_ACT_GELU), dense(1) };
    fd_check_layers(L, 4, NT_LOSS_EXPONENTIAL, 0.0, 24, 0.6, "normalization");
}

/* ---- the scale symmetry ------------------------------------------------------------- */

static void model_of(nt_model *m, const nt_layer *layers, int n, nt_loss loss)
{
    nt_error err = {0};
    cr_assert_eq(nt_model_init(m, 5, layers, n, loss, 0.0, &err), NT_OK, "%s", err.msg);
}

static const nt_transform *find(const nt_transform *list, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(list[i].name, name)) return &list[i];
    return NULL;
}

/* which entries the structure implies: scale only with eps = 0 and only through positively
 * homogeneous activations; no unit rescaling, swap or homogeneity across a normalization */
Test(layernorm, catalogue_follows_the_structure)
{
    nt_layer a[] = { dense(6), act(NT_ACT_RELU), { .kind = NT_LAYER_LAYERNORM, .affine = 1, .eps = 0 }, dense(4),
                     act(NT_ACT_TANH), { .kind = NT_LAYER_LAYERNORM, .affine = 0, .eps = 0 }, dense(3) };
    nt_model m;
    nt_transform *list;
    int n;
    model_of(&m, a, 7, NT_LOSS_CROSS_ENTROPY);
    nt_catalogue(&m, &list, &n);
    cr_assert_not_null(find(list, n, "scale[layer=1]"), "relu then a normalization: a scale symmetry");
    cr_assert_null(find(list, n, "scale[layer=2]"), "tanh is not homogeneous: no scale symmetry through it");
    cr_assert_null(find(list, n, "rescale[layer=1,unit=0]"), "a unit rescaling across a normalization");
    cr_assert_null(find(list, n, "swap[layer=1,units=0,1]"), "a swap across an affine normalization");
    cr_assert_null(find(list, n, "homogeneous[degree=2]"), "homogeneity with a normalization");
    cr_assert_not_null(find(list, n, "translation[layer=3]"));
    nt_transforms_free(list, n);
    nt_model_free(&m);
    a[2].eps = 1e-5;   /* PyTorch's default breaks the scale symmetry */
    model_of(&m, a, 7, NT_LOSS_CROSS_ENTROPY);
    nt_catalogue(&m, &list, &n);
    cr_assert_null(find(list, n, "scale[layer=1]"), "eps > 0: not a symmetry");
    nt_transforms_free(list, n);
    nt_model_free(&m);
}

/* (S1) for the scale symmetry at random theta, weight decay 0: H xi = -A^T g, i.e. the
 * Hessian times the weights feeding the normalization is minus their gradient; checked
 * directly and through nt_check (with the negative controls: the same transformation on a
 * model without the normalization, a unit rescaling across it) */
Test(layernorm, scale_symmetry_H_w_equals_minus_g_w)
{
    nt_layer a[] = { dense(6), { .kind = NT_LAYER_LAYERNORM, .affine = 1, .eps = 0 }, act(NT_ACT_GELU), dense(3) };
    nt_model m;
    nt_dataset ds;
    model_of(&m, a, 4, NT_LOSS_CROSS_ENTROPY);
    make_data(&ds, &m, 29, 31);
    const int64_t d = m.d, nw = 6 * 5 + 6;   /* W (6 x 5) and b of the first layer */
    nt_engine *e = nt_engine_new(&m, 8, 4);
    double *theta = malloc(sizeof(double) * d), *g = malloc(sizeof(double) * d), *xi = calloc((size_t)d, sizeof(double));
    double *Hxi = malloc(sizeof(double) * d);
    fill_normal(theta, d, 0.7, 32);
    memcpy(xi, theta, sizeof(double) * nw);
    t_hvp(e, theta, &ds, 1, xi, Hxi, g);
    double diff = 0, size = 0;
    for (int64_t i = 0; i < d; i++) {
        double want = i < nw ? -g[i] : 0;
        diff = fmax(diff, fabs(Hxi[i] - want));
        size = fmax(size, fabs(Hxi[i]) + fabs(want));
    }
    cr_assert_leq(diff, 1e-14 * size, "|H w + g_w| = %.2e against %.2e", diff, size);
    cr_assert_gt(size, 1e-3, "the identity must not hold by being zero");

    nt_transform *list;
    int n;
    nt_catalogue(&m, &list, &n);
    int nc = nt_check_count(list, n);
    nt_check_result *r = malloc(sizeof *r * (size_t)nc);
    t_check(e, &m, &ds, theta, list, n, 1e-10, r);
    for (int i = 0; i < nc; i++) cr_expect(r[i].holds, "%s: %.2e %.2e", r[i].name, r[i].first_order, r[i].second_order);
    const nt_transform *sc = find(list, n, "scale[layer=1]");
    cr_assert_not_null(sc);
    nt_transform fake[2] = { *sc, { .kind = NT_TR_RESCALE, .generators = 1, .layer = 1, .a = 0, .p = 1 } };
    snprintf(fake[1].name, sizeof fake[1].name, "rescale[layer=1,unit=0]");
    t_check(e, &m, &ds, theta, fake + 1, 1, 1e-10, r);
    cr_expect(!r[0].holds && r[0].first_order > 1e-6, "a unit rescaling across the normalization held: %.2e",
              r[0].first_order);
    nt_transforms_free(list, n);

    /* the same scale transformation on the model without the normalization fails */
    nt_layer b[] = { dense(6), act(NT_ACT_GELU), dense(3) };
    nt_model m2;
    model_of(&m2, b, 3, NT_LOSS_CROSS_ENTROPY);
    nt_engine *e2 = nt_engine_new(&m2, 8, 4);
    t_check(e2, &m2, &ds, theta, fake, 1, 1e-10, r);
    cr_expect(!r[0].holds && r[0].first_order > 1e-6, "a scale symmetry without a normalization held: %.2e",
              r[0].first_order);
    free(r); free(theta); free(g); free(xi); free(Hxi);
    nt_engine_free(e);
    nt_engine_free(e2);
    nt_dataset_free(&ds);
    nt_model_free(&m);
    nt_model_free(&m2);
}

/* ---- through the binary ------------------------------------------------------------- */

static const char ln_spec[] =
    "{\"model\": {\"input\": 13, \"layers\": [{\"dense\": 12}, {\"norm\": \"layer\", \"eps\": 0}, {\"act\": \"relu\"},"
    " {\"dense\": 10}, {\"act\": \"relu\"}, {\"norm\": \"layer\", \"affine\": false, \"eps\": 0}, {\"dense\": 3}],"
    " \"loss\": \"cross_entropy\"}, \"data\": {\"source\": \"builtin\", \"name\": \"wine\", \"standardize\": true},"
    " \"weight_decay\": 0.01, \"init\": {\"seed\": 3, \"scheme\": \"he\", \"bias_std\": 0.1}}";

/* noether check: every entry (two scale symmetries among them) holds to 1e-10; the gradient
 * of each scale-invariant block has in the top-10 eigenspace the fraction (S1) predicts from
 * theta and the eigenpairs, (lambda - 2 gamma)^2-weighted; the unweighted share of theta
 * (the negative control: what the weighting adds) is far from it */
Test(layernorm, binary_check_and_scale_alignment)
{
    char dir[256], spec[NT_PATH_MAX], vec[NT_PATH_MAX], args[3 * NT_PATH_MAX], *out, *err;
    tmpdir_new(dir);
    path_join(spec, dir, "ln.json");
    path_join(vec, dir, "v.npy");
    write_text(spec, ln_spec);
    snprintf(args, sizeof args, "check %s --json --tol 1e-10", spec);
    cr_assert_eq(run_noether(args, &out, &err), 0, "check failed: %s", err);
    cr_assert_not_null(strstr(out, "\"scale[layer=1]\""), "no scale symmetry listed: %s", out);
    free(out);
    free(err);
    snprintf(args, sizeof args, "spectrum %s --json --top 10 --bottom 1 --vectors %s", spec, vec);
    cr_assert_eq(run_noether(args, &out, &err), 0, "spectrum failed: %s", err);
    cJSON *doc = cJSON_Parse(out);
    const cJSON *al = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "predictions"), "alignment_scale_invariant"), *it;
    cr_assert_eq(cJSON_GetArraySize(al), 2);
    cJSON_ArrayForEach(it, al) {
        double meas = cJSON_GetObjectItem(it, "fraction_in_top_measured")->valuedouble;
        double pred = cJSON_GetObjectItem(it, "fraction_in_top_predicted")->valuedouble;
        cr_expect(fabs(meas - pred) <= 1e-10 * pred && pred > 0.01, "%s: measured %.17g, predicted %.17g",
                  cJSON_GetObjectItem(it, "name")->valuestring, meas, pred);
    }
    /* the unweighted share of P_S theta for the first block, from the eigenvectors */
    nt_spec sp;
    nt_data data;
    nt_error e = {0};
    cr_assert_eq(nt_spec_load(spec, &sp, &e), NT_OK, "%s", e.msg);
    cr_assert_eq(nt_data_load(&sp, &data, &e), NT_OK, "%s", e.msg);
    double *theta = malloc(sizeof(double) * sp.model.d);
    nt_init_params(&sp.model, &sp.init, theta);
    nt_array V = {0};
    cr_assert_eq(nt_npy_read(vec, &V, &e), NT_OK, "%s", e.msg);
    const int64_t nb = 12 * 13 + 12, d = sp.model.d;
    double in = 0, tot = 0;
    for (int64_t i = 0; i < nb; i++) tot += theta[i] * theta[i];
    for (int r = 0; r < 10; r++) {
        double c = 0;
        for (int64_t i = 0; i < nb; i++) c += V.data[r * d + i] * theta[i];
        in += c * c;
    }
    double meas = cJSON_GetObjectItem(cJSON_GetArrayItem(al, 0), "fraction_in_top_measured")->valuedouble;
    cr_expect_gt(fabs(in / tot - meas), 1e-3, "the unweighted share %.6f equals the measured %.6f", in / tot, meas);
    nt_array_free(&V);
    free(theta);
    nt_data_free(&data);
    nt_spec_free(&sp);
    cJSON_Delete(doc);
    free(out);
    free(err);
}

/* ---- batch normalization's symmetries ----------------------------------------------- */

/* unit scalings only with eps = 0 and through positively homogeneous activations; shifts of
 * the bias right before a normalization for any eps, per unit (batch) or all units (layer) */
Test(batchnorm, catalogue_follows_the_structure)
{
    nt_layer a[] = { dense(6), bnorm(1, 0), act(NT_ACT_RELU), dense(5), act(NT_ACT_RELU), bnorm(1, 1e-5), dense(4),
                     norm(1), dense(3) };
    nt_model m;
    nt_transform *list;
    int n;
    model_of(&m, a, 9, NT_LOSS_CROSS_ENTROPY);
    nt_catalogue(&m, &list, &n);
    cr_assert_not_null(find(list, n, "unit_scale[layer=1,unit=5]"));
    const nt_transform *sh = find(list, n, "norm_shift[layer=1]");
    cr_assert(sh && sh->generators == 6, "a batch norm right after dense 1: 6 shifts");
    cr_assert_null(find(list, n, "unit_scale[layer=2,unit=0]"), "eps > 0: no unit scaling");
    cr_assert_null(find(list, n, "norm_shift[layer=2]"), "an activation before the normalization: no shift");
    sh = find(list, n, "norm_shift[layer=3]");
    cr_assert(sh && sh->generators == 1 + 5, "a layer norm right after dense 3 (5 inputs): the bias and each column of W");
    cr_assert_null(find(list, n, "scale[layer=3]"), "layer norm with eps > 0: no scale symmetry");
    cr_assert_null(find(list, n, "rescale[layer=1,unit=0]"));
    nt_transforms_free(list, n);
    nt_model_free(&m);
}

/* at random theta, weight decay 0: H xi_j = -P_j g for the unit scalings (each unit's row
 * and bias, H w = -g_w in training mode), H c = 0 for the shifts, every identity of the
 * catalogue to 1e-10; negative controls: a unit scaling with eps > 0 and a shift through an
 * activation fail */
Test(batchnorm, scale_symmetry_in_training_mode)
{
    nt_layer a[] = { dense(6), bnorm(1, 0), act(NT_ACT_RELU), dense(3) };
    nt_model m;
    nt_dataset ds;
    model_of(&m, a, 4, NT_LOSS_CROSS_ENTROPY);
    make_data(&ds, &m, 40, 41);
    const int64_t d = m.d;
    nt_engine *e = nt_engine_new(&m, 7, 4);
    double *theta = malloc(sizeof(double) * d), *g = malloc(sizeof(double) * d), *xi = calloc((size_t)d, sizeof(double));
    double *Hxi = malloc(sizeof(double) * d);
    fill_normal(theta, d, 0.7, 42);
    double worst = 0, size = 0;
    for (int j = 0; j < 6; j++) {   /* unit j: row j of W (5 wide) and b[j] at 30 + j */
        memset(xi, 0, sizeof(double) * d);
        for (int c = 0; c < 5; c++) xi[j * 5 + c] = theta[j * 5 + c];
        xi[30 + j] = theta[30 + j];
        t_hvp(e, theta, &ds, 1, xi, Hxi, g);
        for (int64_t i = 0; i < d; i++) {
            double want = xi[i] != 0 ? -g[i] : 0;
            worst = fmax(worst, fabs(Hxi[i] - want));
            size = fmax(size, fabs(Hxi[i]) + fabs(want));
        }
    }
    cr_assert_leq(worst, 1e-13 * size, "|H w_j + g_j| = %.2e against %.2e", worst, size);
    cr_assert_gt(size, 1e-3);
    nt_transform *list;
    int n;
    nt_catalogue(&m, &list, &n);
    int nc = nt_check_count(list, n);
    nt_check_result *r = malloc(sizeof *r * (size_t)nc);
    t_check(e, &m, &ds, theta, list, n, 1e-10, r);
    for (int i = 0; i < nc; i++) cr_expect(r[i].holds, "%s: %.2e %.2e", r[i].name, r[i].first_order, r[i].second_order);
    cr_assert_not_null(find(list, n, "unit_scale[layer=1,unit=0]"));
    cr_assert_not_null(find(list, n, "norm_shift[layer=1]"));
    nt_transform fake[2] = { *find(list, n, "unit_scale[layer=1,unit=0]"), *find(list, n, "norm_shift[layer=1]") };
    nt_transforms_free(list, n);
    free(r);

    nt_layer b[] = { dense(6), bnorm(1, 1e-5), act(NT_ACT_RELU), dense(3) };   /* eps > 0 */
    nt_layer c[] = { dense(6), act(NT_ACT_TANH), bnorm(1, 0), dense(3) };      /* an act before the norm */
    nt_model mb, mc;
    model_of(&mb, b, 4, NT_LOSS_CROSS_ENTROPY);
    model_of(&mc, c, 4, NT_LOSS_CROSS_ENTROPY);
    nt_engine *eb = nt_engine_new(&mb, 7, 4), *ec = nt_engine_new(&mc, 7, 4);
    nt_check_result rr[6];   /* the shift has 6 generators */
    t_check(eb, &mb, &ds, theta, fake, 1, 1e-10, rr);
    cr_expect(!rr[0].holds && rr[0].first_order > 1e-9, "a unit scaling with eps > 0 held: %.2e", rr[0].first_order);
    cr_assert_eq(nt_check_count(fake + 1, 1), 6);
    t_check(ec, &mc, &ds, theta, fake + 1, 1, 1e-10, rr);
    for (int j = 0; j < 6; j++)
        cr_expect(!rr[j].holds && rr[j].first_order > 1e-6, "a shift through an activation held: %.2e", rr[j].first_order);
    free(theta); free(g); free(xi); free(Hxi);
    nt_engine_free(e); nt_engine_free(eb); nt_engine_free(ec);
    nt_dataset_free(&ds);
    nt_model_free(&m); nt_model_free(&mb); nt_model_free(&mc);
}

/* the spectrum's frozen engine (values and adjoints kept at theta) gives bitwise the products
 * of the full sweep for the normalizations and a residual block too */
Test(normalizations, frozen_products_are_bitwise_the_full_ones)
{
    nt_layer L[] = { dense(6), bnorm(1, 1e-5), act(NT_ACT_TANH), { .kind = NT_LAYER_BRANCH }, norm(1), dense(6),
                     act(NT_ACT_GELU), { .kind = NT_LAYER_ADD }, dense(3) };
    nt_model m;
    nt_dataset ds;
    model_of(&m, L, 9, NT_LOSS_CROSS_ENTROPY);
    make_data(&ds, &m, 21, 61);
    const int64_t d = m.d;
    const int k = 4;
    nt_engine *e = nt_engine_new(&m, 5, 3);
    double *theta = malloc(sizeof(double) * d), *V = malloc(sizeof(double) * k * d);
    double *A = malloc(sizeof(double) * k * d), *B = malloc(sizeof(double) * k * d);
    fill_normal(theta, d, 0.5, 62);
    fill_normal(V, k * d, 1.0, 63);
    t_hvp(e, theta, &ds, k, V, A, NULL);
    cr_assert_eq(nt_engine_freeze(e, theta, &ds, 1e9), 1);
    t_hvp(e, theta, &ds, k, V, B, NULL);
    cr_assert_eq(memcmp(A, B, sizeof(double) * k * d), 0, "frozen products differ: %.2e", nt_rel_diff(k * d, A, B));
    free(theta); free(V); free(A); free(B);
    nt_engine_free(e);
    nt_dataset_free(&ds);
    nt_model_free(&m);
}

/* noether spectrum's flat view on a batch-norm model without weight decay: the pure shifts
 * have H c = 0 and a predicted |-A^T g| = 0, both round-off; measured against the curvature
 * scale they agree (the difference was reported as 1.0 when measured against themselves) */
Test(batchnorm, spectrum_flat_view_of_pure_shifts)
{
    char dir[256], spec[NT_PATH_MAX], args[2 * NT_PATH_MAX], *out, *err;
    tmpdir_new(dir);
    path_join(spec, dir, "bn.json");
    write_text(spec, "{\"model\": {\"input\": 13, \"layers\": [{\"dense\": 8}, {\"norm\": \"batch\"}, {\"act\": \"relu\"},"
                     " {\"dense\": 3}], \"loss\": \"cross_entropy\"}, \"data\": {\"source\": \"builtin\", \"name\": \"wine\","
                     " \"standardize\": true}, \"init\": {\"seed\": 1, \"scheme\": \"he\", \"bias_std\": 0.1}}");
    snprintf(args, sizeof args, "spectrum %s --top 3 --bottom 3 --json", spec);
    cr_assert_eq(run_noether(args, &out, &err), 0, "%s", err);
    cJSON *doc = cJSON_Parse(out);
    const cJSON *flat = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "predictions"), "flat");
    double w = cJSON_GetObjectItem(flat, "worst_relative_difference")->valuedouble;
    cr_assert_leq(w, 1e-10, "flat view: worst relative difference %.2e", w);
    cr_assert_eq(cJSON_GetObjectItem(flat, "generators")->valueint, 25,
                 "8 shifts + 9 translations + 8 rescalings of the normalization's units against dense 3's columns");
    cJSON_Delete(doc);
    free(out);
    free(err);
}
