/* test_residual.c: residual blocks {"residual": [layers]}: x + g(x).  Gradient and
 * Hessian-vector products against finite differences (one block, nested blocks, with
 * normalizations); the catalogue inside and across a block, every entry holding, and the
 * negative controls: a unit rescaling across a skip connection, where it is not a symmetry. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include "helpers.h"

static nt_layer dense(int units) { return (nt_layer){ .kind = NT_LAYER_DENSE, .units = units, .bias = 1 }; }
static nt_layer act(nt_act a) { return (nt_layer){ .kind = NT_LAYER_ACT, .act = a, .alpha = 0.01 }; }
static const nt_layer BEGIN = { .kind = NT_LAYER_BRANCH }, END = { .kind = NT_LAYER_ADD };


Test(residual, one_block)
{
    nt_layer L[] = { dense(6), BEGIN, dense(4), act(NT_ACT_TANH), dense(6), END, act(NT_ACT_RELU), dense(3) };
    fd_check_layers(L, 8, NT_LOSS_CROSS_ENTROPY, 0.0, 51, 0.5, "residual");
}

Test(residual, nested_with_normalizations)
{
    nt_layer L[] = { dense(6), BEGIN, { .kind = NT_LAYER_LAYERNORM, .affine = 1, .eps = 1e-5 }, dense(5),
                     act(NT_ACT_GELU), BEGIN, dense(5), act(NT_ACT_SOFTPLUS), END, dense(6), END,
                     { .kind = NT_LAYER_BATCHNORM, .affine = 1, .eps = 1e-5 }, BEGIN, act(NT_ACT_TANH), END, dense(2) };
    fd_check_layers(L, 16, NT_LOSS_MSE, 0.01, 52, 0.5, "residual");
}

Test(residual, on_the_input)
{
    nt_layer L[] = { BEGIN, dense(3), act(NT_ACT_TANH), dense(5), END, dense(1) };
    fd_check_layers(L, 6, NT_LOSS_LOGISTIC, 0.0, 53, 0.5, "residual");
}

Test(residual, width_must_be_kept)
{
    nt_layer L[] = { dense(6), BEGIN, dense(4), END, dense(3) };
    nt_model m;
    nt_error err = {0};
    cr_assert_eq(nt_model_init(&m, 5, L, 5, NT_LOSS_CROSS_ENTROPY, 0, &err), NT_EINPUT);
    cr_assert_not_null(strstr(err.msg, "keep the width"), "%s", err.msg);
}

static const nt_transform *find(const nt_transform *list, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(list[i].name, name)) return &list[i];
    return NULL;
}

/* inside a block (between two of its dense layers) the unit entries are listed and hold;
 * across the skip (dense 1 feeds both the block and the skip) none is listed, and a unit
 * rescaling there, forced, fails: the negative control; homogeneity is not listed */
Test(residual, catalogue_inside_and_across)
{
    nt_layer L[] = { dense(6), act(NT_ACT_RELU), BEGIN, dense(4), act(NT_ACT_RELU), dense(6), END,
                     act(NT_ACT_RELU), dense(3) };
    nt_model m;
    nt_dataset ds;
    nt_error err = {0};
    cr_assert_eq(nt_model_init(&m, 5, L, 9, NT_LOSS_CROSS_ENTROPY, 0, &err), NT_OK, "%s", err.msg);
    make_data(&ds, &m, 31, 54);
    nt_transform *list;
    int n;
    nt_catalogue(&m, &list, &n);
    cr_assert_not_null(find(list, n, "rescale[layer=2,unit=0]"), "a unit inside the block");
    cr_assert_not_null(find(list, n, "swap[layer=2,units=0,1]"));
    cr_assert_null(find(list, n, "rescale[layer=1,unit=0]"), "a unit feeding the skip connection");
    cr_assert_null(find(list, n, "rescale[layer=3,unit=0]"), "a unit of the block's output, summed with the skip");
    for (int i = 0; i < n; i++) cr_assert(list[i].kind != NT_TR_HOMOGENEOUS, "x + g(x) listed as homogeneous");
    nt_engine *e = nt_engine_new(&m, 8, 4);
    double *theta = malloc(sizeof(double) * m.d);
    fill_normal(theta, m.d, 0.6, 55);
    int nc = nt_check_count(list, n);
    nt_check_result *r = malloc(sizeof *r * (size_t)(nc + 2));
    t_check(e, &m, &ds, theta, list, n, 1e-10, r);
    for (int i = 0; i < nc; i++) cr_expect(r[i].holds, "%s: %.2e %.2e", r[i].name, r[i].first_order, r[i].second_order);
    nt_transform fake[2] = { { .kind = NT_TR_RESCALE, .generators = 1, .layer = 1, .a = 0, .p = 1 },
                             { .kind = NT_TR_RESCALE, .generators = 1, .layer = 3, .a = 0, .p = 1 } };
    t_check(e, &m, &ds, theta, fake, 2, 1e-10, r);
    cr_expect(!r[0].holds && r[0].first_order > 1e-6, "a rescaling into the skip held: %.2e", r[0].first_order);
    cr_expect(!r[1].holds && r[1].first_order > 1e-6, "a rescaling out of the block held: %.2e", r[1].first_order);
    free(r); free(theta);
    nt_transforms_free(list, n);
    nt_engine_free(e);
    nt_dataset_free(&ds);
    nt_model_free(&m);
}

/* through the binary: a spec with two residual blocks (one with a layer normalization
 * inside) passes noether check; a block that changes the width is refused naming it */
Test(residual, binary_check_and_bad_width)
{
    char dir[256], spec[NT_PATH_MAX], args[2 * NT_PATH_MAX], *out, *err;
    tmpdir_new(dir);
    path_join(spec, dir, "res.json");
    write_text(spec, "{\"model\": {\"input\": 13, \"layers\": [{\"dense\": 8}, {\"act\": \"relu\"},"
                     " {\"residual\": [{\"dense\": 12}, {\"act\": \"relu\"}, {\"dense\": 8}]}, {\"act\": \"tanh\"},"
                     " {\"residual\": [{\"norm\": \"layer\", \"eps\": 0}, {\"dense\": 6}, {\"act\": \"tanh\"}, {\"dense\": 8}]},"
                     " {\"dense\": 3}], \"loss\": \"cross_entropy\"},"
                     " \"data\": {\"source\": \"builtin\", \"name\": \"wine\", \"standardize\": true},"
                     " \"init\": {\"seed\": 1, \"scheme\": \"he\", \"bias_std\": 0.1}}");
    snprintf(args, sizeof args, "check %s --tol 1e-10", spec);
    cr_assert_eq(run_noether(args, &out, &err), 0, "check: %s%s", out, err);
    cr_assert_not_null(strstr(out, "rescale[layer=2,unit=0]"), "%s", out);
    free(out);
    free(err);
    write_text(spec, "{\"model\": {\"input\": 13, \"layers\": [{\"dense\": 8}, {\"residual\": [{\"dense\": 5}]},"
                     " {\"dense\": 3}], \"loss\": \"cross_entropy\"}, \"data\": {\"source\": \"builtin\", \"name\": \"wine\"}}");
    snprintf(args, sizeof args, "info %s", spec);
    cr_assert_eq(run_noether(args, &out, &err), 2);
    cr_assert_not_null(strstr(err, "keep the width"), "%s", err);
    cr_assert_not_null(strstr(err, "res.json"), "%s", err);
    free(out);
    free(err);
}
