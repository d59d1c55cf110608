/* test_catalogue.c: the entries that normalizations and even activations bring
 * (src/transform/norms.c, catalogue.c, channels.c; docs/theory.md §5) and the independent count of
 * conserved quantities (src/transform/independent.c).
 *   - every listed entry holds under nt_check at random theta (<= 1e-10), with weight decay;
 *   - each has a negative control, a wrong variant of the same transformation, that fails:
 *     a rescaling with the wrong degree, a swap that leaves the normalization's weights in
 *     place, the layer norm's column shift before a batch norm, a sign flip through relu
 *     into a normalization, an even flip under relu, an odd flip under square;
 *   - the orbit rank of dense 4->6, layer norm (eps 0), relu, dense 6->3 is 12: the scale,
 *     the bias shift, 4 column shifts, 6 unit rescalings (2 before these entries existed);
 *   - a linear network lists 14 conserved quantities of which 10 are independent (its
 *     rescalings are gl(n)'s diagonal), in the library and in `noether symmetries --json`. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include <cJSON.h>
#include "helpers.h"

static nt_layer dense(int units) { return (nt_layer){ .kind = NT_LAYER_DENSE, .units = units, .bias = 1 }; }
static nt_layer act(nt_act a) { return (nt_layer){ .kind = NT_LAYER_ACT, .act = a, .alpha = 0.01 }; }
static nt_layer ln(double eps) { return (nt_layer){ .kind = NT_LAYER_LAYERNORM, .affine = 1, .eps = eps }; }
static nt_layer bn(double eps) { return (nt_layer){ .kind = NT_LAYER_BATCHNORM, .affine = 1, .eps = eps }; }
static nt_layer conv(int c, int k, int p) { return (nt_layer){ .kind = NT_LAYER_CONV, .units = c, .kernel = k, .stride = 1, .padding = p, .bias = 1 }; }
static nt_layer pool(int max) { return (nt_layer){ .kind = NT_LAYER_POOL, .pool_max = max, .kernel = 2, .stride = 2 }; }
static const nt_layer FLAT = { .kind = NT_LAYER_FLATTEN };

/* a model (input 5, or an image), 23 samples held in one chunk, theta ~ N(0, 0.36), its catalogue */
typedef model_fixture fx;

static void fx_new(fx *f, const int *image, const nt_layer *L, int nl, nt_loss loss, double wd, uint64_t seed)
{
    nt_error err = {0};
    int rc = image ? nt_model_init_image(&f->m, image, L, nl, loss, wd, &err) : nt_model_init(&f->m, 5, L, nl, loss, wd, &err);
    cr_assert_eq(rc, NT_OK, "%s", err.msg);
    make_data(&f->ds, &f->m, 23, seed);
    f->e = nt_engine_new(&f->m, 32, 4);
    f->theta = malloc(sizeof(double) * (size_t)f->m.d);
    fill_normal(f->theta, f->m.d, 0.6, seed + 1);
    nt_catalogue(&f->m, &f->list, &f->n);
}

static void fx_free(fx *f)
{
    nt_transforms_free(f->list, f->n);
    free(f->theta);
    nt_engine_free(f->e);
    nt_dataset_free(&f->ds);
    nt_model_free(&f->m);
}

static const nt_transform *get(const fx *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->list[i].name, name)) return &f->list[i];
    return NULL;
}

/* the largest residual (first or second order) over the generators of list */
static double worst(fx *f, const nt_transform *list, int n)
{
    int nc = nt_check_count(list, n);
    nt_check_result *r = malloc(sizeof *r * (size_t)nc);
    t_check(f->e, &f->m, &f->ds, f->theta, list, n, 1e-10, r);
    double w = 0;
    for (int i = 0; i < nc; i++) w = fmax(w, fmax(r[i].first_order, r[i].second_order));
    free(r);
    return w;
}

/* every entry of the catalogue holds, and the named ones are there */
static void all_hold(fx *f, const char *const *names)
{
    for (int i = 0; names[i]; i++) cr_assert_not_null(get(f, names[i]), "%s not listed", names[i]);
    int nc = nt_check_count(f->list, f->n);
    nt_check_result *r = malloc(sizeof *r * (size_t)nc);
    t_check(f->e, &f->m, &f->ds, f->theta, f->list, f->n, 1e-10, r);
    for (int i = 0; i < nc; i++)
        cr_expect(r[i].holds && r[i].first_order < 1e-12, "%s: %.2e %.2e", r[i].name, r[i].first_order, r[i].second_order);
    free(r);
}

/* a wrong variant fails: a residual far above round-off */
#define FAILS(f, t, what) do { double w_ = worst((f), (t), 1); \
    cr_expect_gt(w_, 1e-6, "%s held: %.2e", (what), w_); } while (0)

/* ---- layer normalization ------------------------------------------------------------ */

Test(catalogue, layernorm_units_hold)
{
    nt_layer L[] = { dense(6), ln(0), act(NT_ACT_RELU), dense(3) };
    fx f;
    fx_new(&f, NULL, L, 4, NT_LOSS_MSE, 0.01, 301);
    const char *names[] = { "scale[layer=1]", "norm_shift[layer=1]", "norm_rescale[layer=1,unit=0]",
                            "norm_rescale[layer=1,unit=5]", "norm_swap[layer=1,units=0,1]",
                            "norm_swap[layer=1,units=4,5]", "norm_flip[layer=1]", NULL };
    all_hold(&f, names);
    cr_expect_eq(get(&f, "norm_shift[layer=1]")->generators, 1 + 5, "the bias and each of the 5 columns of W");
    char buf[96];
    nt_generator_name(&f.m, get(&f, "norm_shift[layer=1]"), 3, buf, sizeof buf);
    cr_expect_str_eq(buf, "norm_shift[layer=1,column=2]");

    nt_transform bad = *get(&f, "norm_rescale[layer=1,unit=2]");
    bad.p = 2;   /* relu has degree 1 */
    FAILS(&f, &bad, "a normalization unit rescaled with degree 2 through relu");
    bad = (nt_transform){ .kind = NT_TR_SWAP, .discrete = 1, .generators = 1, .layer = 1, .a = 2, .b = 3 };
    snprintf(bad.name, sizeof bad.name, "swap leaving gamma, beta");
    FAILS(&f, &bad, "a swap of the rows and columns with the normalization's weights left in place");
    bad = *get(&f, "norm_flip[layer=1]");
    bad.kind = NT_TR_EVEN_FLIP;   /* the producer's unit 0 alone */
    bad.a = 0;
    FAILS(&f, &bad, "one unit's inputs negated before a layer norm");
    fx_free(&f);
}

/* the same transformations on structures that do not give them: a flip through relu into
 * the normalization, the layer norm's column shift before a batch norm */
Test(catalogue, normalization_negative_controls)
{
    nt_layer L[] = { dense(6), act(NT_ACT_RELU), ln(1e-5), dense(3) };
    fx f;
    fx_new(&f, NULL, L, 4, NT_LOSS_CROSS_ENTROPY, 0.0, 311);
    const char *names[] = { "norm_swap[layer=2,units=0,1]", "norm_rescale[layer=2,unit=0]", NULL };
    all_hold(&f, names);   /* any eps: both act outside the division */
    cr_expect_null(get(&f, "norm_flip[layer=2]"), "relu is not odd");
    cr_expect_null(get(&f, "norm_shift[layer=2]"), "an activation between: no shift");
    nt_transform bad = { .kind = NT_TR_NORM_FLIP, .discrete = 1, .generators = 1, .layer = 2, .a = -1 };
    snprintf(bad.name, sizeof bad.name, "norm_flip through relu");
    FAILS(&f, &bad, "a layer norm's flip through relu");
    fx_free(&f);

    nt_layer B[] = { dense(6), bn(1e-5), act(NT_ACT_TANH), dense(3) };
    fx_new(&f, NULL, B, 4, NT_LOSS_CROSS_ENTROPY, 0.0, 312);
    const char *bnames[] = { "norm_shift[layer=1]", NULL };
    all_hold(&f, bnames);
    cr_expect_eq(get(&f, "norm_shift[layer=1]")->generators, 6, "a batch norm: each unit's bias alone, no column");
    bad = *get(&f, "norm_shift[layer=1]");
    bad.p = 1;   /* the layer norm's: every bias together, then each column of W */
    bad.generators = 1 + 5;
    int nc = nt_check_count(&bad, 1);
    nt_check_result r[6];
    t_check(f.e, &f.m, &f.ds, f.theta, &bad, 1, 1e-10, r);
    cr_expect(r[0].holds, "every bias shifted together before a batch norm: %.2e", r[0].first_order);
    for (int i = 1; i < nc; i++)
        cr_expect(!r[i].holds && r[i].first_order > 1e-6, "%s before a batch norm held: %.2e", r[i].name, r[i].first_order);
    fx_free(&f);
}

/* ---- batch normalization, flat and per channel ---------------------------------------- */

Test(catalogue, batchnorm_units_hold)
{
    nt_layer L[] = { dense(6), bn(1e-5), act(NT_ACT_LEAKY_RELU), dense(3) };
    fx f;
    fx_new(&f, NULL, L, 4, NT_LOSS_CROSS_ENTROPY, 0.01, 321);
    const char *names[] = { "norm_rescale[layer=1,unit=0]", "norm_swap[layer=1,units=0,1]", "norm_flip[layer=1,unit=0]",
                            "norm_flip[layer=1,unit=5]", NULL };
    all_hold(&f, names);
    nt_transform bad = *get(&f, "norm_flip[layer=1,unit=3]");
    bad.kind = NT_TR_EVEN_FLIP;   /* without gamma_3 */
    bad.a = 3;
    FAILS(&f, &bad, "a unit's inputs negated before a batch norm, its weight kept");
    bad = *get(&f, "norm_rescale[layer=1,unit=1]");
    bad.p = 0.5;
    FAILS(&f, &bad, "a batch norm unit rescaled with the wrong degree");
    fx_free(&f);
}

/* conv -> BatchNorm2d -> relu -> max pool -> conv -> flatten -> dense: the channels' gains */
Test(catalogue, batchnorm2d_channels_hold)
{
    nt_layer L[] = { conv(3, 3, 1), bn(1e-5), act(NT_ACT_RELU), pool(1), conv(2, 2, 0), bn(0), FLAT, dense(3) };
    fx f;
    fx_new(&f, (const int[3]){ 2, 6, 6 }, L, 8, NT_LOSS_CROSS_ENTROPY, 0.0, 331);
    const char *names[] = { "norm_rescale[layer=1,unit=2]", "norm_swap[layer=1,units=1,2]", "norm_flip[layer=1,unit=0]",
                            "norm_rescale[layer=5,unit=1]", "norm_swap[layer=5,units=0,1]", "norm_flip[layer=5,unit=1]",
                            "channel_scale[layer=4,channel=0]", NULL };
    all_hold(&f, names);
    nt_transform bad = *get(&f, "norm_swap[layer=1,units=0,1]");
    bad.kind = NT_TR_CHANNEL_SWAP;   /* filters, biases and the next filters' slices, the gains left */
    FAILS(&f, &bad, "a channel swap through a BatchNorm2d leaving its gains");
    bad = *get(&f, "norm_rescale[layer=5,unit=0]");
    bad.p = 2;
    FAILS(&f, &bad, "a BatchNorm2d channel rescaled with degree 2 through a flatten");
    fx_free(&f);
}

/* ---- even activations --------------------------------------------------------------- */

Test(catalogue, even_flips_hold)
{
    nt_layer L[] = { dense(4), act(NT_ACT_TANH), act(NT_ACT_SQUARE), ln(1e-5), dense(3), act(NT_ACT_SQUARE) };
    fx f;
    fx_new(&f, NULL, L, 6, NT_LOSS_MSE, 0.01, 341);
    const char *names[] = { "even_flip[layer=1,unit=0]", "even_flip[layer=1,unit=3]", "even_flip[layer=2,unit=2]", NULL };
    all_hold(&f, names);
    nt_transform bad = *get(&f, "even_flip[layer=1,unit=1]");
    bad.kind = NT_TR_SIGN_FLIP;   /* the odd flip: its column of the next layer negated too */
    FAILS(&f, &bad, "a unit's inputs and outputs negated under square");
    fx_free(&f);

    nt_layer C[] = { conv(3, 3, 1), act(NT_ACT_SQUARE), pool(0), FLAT, dense(2) };
    fx_new(&f, (const int[3]){ 2, 6, 6 }, C, 5, NT_LOSS_CROSS_ENTROPY, 0.0, 342);
    const char *cnames[] = { "channel_even_flip[layer=0,channel=0]", "channel_even_flip[layer=0,channel=2]", NULL };
    all_hold(&f, cnames);
    fx_free(&f);

    nt_layer R[] = { dense(4), act(NT_ACT_RELU), act(NT_ACT_SQUARE), dense(3) };
    fx_new(&f, NULL, R, 4, NT_LOSS_MSE, 0.0, 343);
    cr_expect_null(get(&f, "even_flip[layer=1,unit=0]"), "relu then square is not even");
    bad = (nt_transform){ .kind = NT_TR_EVEN_FLIP, .discrete = 1, .generators = 1, .layer = 1, .a = 0 };
    snprintf(bad.name, sizeof bad.name, "even_flip under relu");
    FAILS(&f, &bad, "an even flip through relu then square");
    fx_free(&f);
}

/* ---- orbit rank and independent counts ------------------------------------------------ */

static const char rank_spec[] =
    "{\"model\": {\"input\": 4, \"layers\": [{\"dense\": 6}, {\"norm\": \"layer\", \"eps\": 0}, {\"act\": \"relu\"},"
    " {\"dense\": 3}], \"loss\": \"mse\"}, \"data\": {\"source\": \"teacher\", \"n\": 64, \"seed\": 1, \"hidden\": [5]},"
    " \"init\": {\"seed\": 0, \"scheme\": \"he\", \"bias_std\": 0.3}}";

/* the scale (1), the bias shift (1), the column shifts (4), the unit rescalings (6): 12,
 * all independent; before the column shifts and unit rescalings were listed, 2 */
Test(catalogue, layernorm_orbit_rank_is_12)
{
    nt_layer L[] = { dense(6), ln(0), act(NT_ACT_RELU), dense(3) };
    nt_model m;
    nt_error err = {0};
    cr_assert_eq(nt_model_init(&m, 4, L, 4, NT_LOSS_MSE, 0.0, &err), NT_OK, "%s", err.msg);
    nt_transform *list;
    int n, listed, n_gen;
    nt_catalogue(&m, &list, &n);
    double *theta = malloc(sizeof(double) * (size_t)m.d), *Q, *sv;
    fill_normal(theta, m.d, 0.6, 351);
    int rank = nt_orbit_basis(&m, list, n, theta, 1e-10, &Q, &sv, &n_gen);
    cr_expect_eq(rank, 12, "orbit rank %d of %d generators", rank, n_gen);
    cr_expect_eq(nt_catalogue_independent(&m, list, n, theta, 1e-10, &listed), 12);
    cr_expect_eq(listed, 12);
    free(Q); free(sv); free(theta);
    nt_transforms_free(list, n);
    nt_model_free(&m);

    char dir[256], spec[NT_PATH_MAX], args[2 * NT_PATH_MAX], *out, *errs;
    tmpdir_new(dir);
    path_join(spec, dir, "ln.json");
    write_text(spec, rank_spec);
    snprintf(args, sizeof args, "spectrum %s --json", spec);
    cr_assert_eq(run_noether(args, &out, &errs), 0, "%s", errs);
    cJSON *doc = cJSON_Parse(out);
    const cJSON *flat = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "predictions"), "flat");
    cr_assert_not_null(flat, "%s", out);
    cr_expect_eq(cJSON_GetObjectItem(flat, "orbit_rank")->valueint, 12);
    cJSON_Delete(doc);
    free(out); free(errs);
    snprintf(args, sizeof args, "check %s --json --tol 1e-10", spec);
    cr_expect_eq(run_noether(args, &out, &errs), 0, "noether check: %s", out);
    cr_expect_not_null(strstr(out, "\"norm_shift[layer=1,column=3]\""));
    cr_expect_not_null(strstr(out, "\"norm_swap[layer=1,units=4,5]\""));
    free(out); free(errs);
}

/* a linear network 3 -> 4 -> 2: 4 rescalings + 10 symmetric gl(4) elements listed, of which
 * the rescalings repeat gl's diagonal: 10 independent (the negative control of the count:
 * the raw number overstates it) */
Test(catalogue, independent_count_of_a_linear_network)
{
    const int w[1] = { 4 };
    nt_model m;
    make_mlp(&m, 3, 1, w, NT_ACT_IDENTITY, 2, NT_LOSS_MSE, 1, 0.0);
    nt_transform *list;
    int n, listed;
    nt_catalogue(&m, &list, &n);
    cr_expect_eq(nt_catalogue_independent(&m, list, n, NULL, 1e-10, &listed), 10);
    cr_expect_eq(listed, 14);
    nt_transforms_free(list, n);
    nt_model_free(&m);

    char dir[256], spec[NT_PATH_MAX], args[2 * NT_PATH_MAX], *out;
    tmpdir_new(dir);
    path_join(spec, dir, "lin.json");
    write_text(spec, "{\"model\": {\"input\": 3, \"layers\": [{\"dense\": 4}, {\"act\": \"identity\"}, {\"dense\": 2}],"
                     " \"loss\": \"mse\"}, \"data\": {\"source\": \"teacher\", \"n\": 16, \"seed\": 1, \"hidden\": [3]}}");
    snprintf(args, sizeof args, "symmetries %s --json", spec);
    cr_assert_eq(run_noether(args, &out, NULL), 0);
    cJSON *doc = cJSON_Parse(out);
    cr_expect_eq(cJSON_GetObjectItem(doc, "conserved_quantities")->valueint, 14);
    cr_expect_eq(cJSON_GetObjectItem(doc, "independent_quantities")->valueint, 10);
    cJSON_Delete(doc);
    free(out);
}

/* ---- attention's biases ----------------------------------------------------------------- */

/* key_shift and value_shift hold (causal or not, no weight decay: the key bias's gradient is
 * round-off of a sum over keys, sized by the RMS gradient entry); the wrong variants fail: the
 * query bias shifted, the value bias shifted without moving the output bias */
Test(catalogue, attention_bias_shifts_hold)
{
    for (int causal = 0; causal < 2; causal++) {
        nt_layer L[] = { dense(6), act(NT_ACT_RELU), { .kind = NT_LAYER_ATTENTION, .heads = 2, .causal = causal, .bias = 1 },
                         { .kind = NT_LAYER_MEAN_TOKENS }, dense(3) };
        fx f;
        nt_error err = {0};
        cr_assert_eq(nt_model_init_sequence(&f.m, 4, 5, L, 5, NT_LOSS_CROSS_ENTROPY, 0.0, &err), NT_OK, "%s", err.msg);
        make_data(&f.ds, &f.m, 23, 361 + causal);
        f.e = nt_engine_new(&f.m, 32, 4);
        f.theta = malloc(sizeof(double) * (size_t)f.m.d);
        fill_normal(f.theta, f.m.d, 0.6, 362);
        nt_catalogue(&f.m, &f.list, &f.n);
        const char *names[] = { "key_shift[layer=2]", "value_shift[layer=2]", NULL };
        all_hold(&f, names);
        cr_expect_eq(get(&f, "key_shift[layer=2]")->generators, 6);
        int64_t b_in = -1;
        for (int t = 0; t < f.m.n_tensors; t++)
            if (!strcmp(f.m.tensors[t].name, "2.in_proj_bias")) b_in = f.m.tensors[t].offset;
        cr_assert_geq(b_in, 0);
        for (int part = 0; part < 3; part += 2) {   /* b_Q[1]; b_V[1] alone */
            nt_transform bad = { .kind = NT_TR_DENSE, .generators = 1 };
            snprintf(bad.name, sizeof bad.name, part ? "b_V alone" : "b_Q");
            bad.c = calloc((size_t)f.m.d, sizeof(double));
            bad.c[b_in + part * 6 + 1] = 1;
            FAILS(&f, &bad, bad.name);
            free(bad.c);
        }
        fx_free(&f);
    }
}

/* ---- a convolution feeding a layer norm over C H W ------------------------------------- */

/* every filter and bias scaled together (eps 0) and every bias shifted together (poolings
 * only between) hold; one channel's scale, or the scale with eps > 0, fails */
Test(catalogue, conv_into_layernorm)
{
    nt_layer L[] = { conv(3, 3, 1), act(NT_ACT_RELU), pool(1), ln(0), FLAT, dense(3) };
    fx f;
    fx_new(&f, (const int[3]){ 2, 6, 6 }, L, 6, NT_LOSS_CROSS_ENTROPY, 0.01, 371);
    const char *names[] = { "channel_scale[layer=0]", "norm_rescale[layer=3,unit=26]", NULL };
    all_hold(&f, names);
    cr_expect_null(get(&f, "channel_shift[layer=0]"), "relu between: no shift");
    cr_expect_null(get(&f, "norm_swap[layer=3,units=0,1]"), "27 positions, 3 channels: no producer's unit per position");
    nt_transform bad = *get(&f, "channel_scale[layer=0]");
    bad.a = 1;   /* one channel: the layer norm mixes them */
    FAILS(&f, &bad, "one channel scaled before a layer norm over C H W");
    fx_free(&f);

    nt_layer S[] = { conv(3, 3, 1), pool(0), ln(1e-5), FLAT, dense(3) };
    fx_new(&f, (const int[3]){ 2, 6, 6 }, S, 5, NT_LOSS_CROSS_ENTROPY, 0.0, 372);
    const char *snames[] = { "channel_shift[layer=0]", "norm_flip[layer=2]", NULL };
    all_hold(&f, snames);
    cr_expect_eq(get(&f, "channel_shift[layer=0]")->generators, 1);
    cr_expect_null(get(&f, "channel_scale[layer=0]"), "eps > 0: no scale");
    bad = (nt_transform){ .kind = NT_TR_CHANNEL_SCALE, .generators = 1, .layer = 0, .a = -1 };
    snprintf(bad.name, sizeof bad.name, "channel_scale with eps > 0");
    FAILS(&f, &bad, "the scale before a layer norm with eps > 0");
    bad = *get(&f, "channel_shift[layer=0]");
    bad.p = 0;   /* channel 0's bias alone */
    FAILS(&f, &bad, "one channel's bias shifted before a layer norm");
    fx_free(&f);
}

/* ---- units read by an attention layer ------------------------------------------------- */

/* dense -> identity -> attention: the in-projection reads the units (column j of W_Q, W_K,
 * W_V), so gl(6), the bias shifts (b_Q, b_K, b_V absorb them), rescalings, swaps and sign
 * flips hold against it; under relu the sign flip, forced, fails */
Test(catalogue, units_read_by_attention)
{
    for (int relu = 0; relu < 2; relu++) {
        nt_layer L[] = { dense(6), act(relu ? NT_ACT_RELU : NT_ACT_IDENTITY),
                         { .kind = NT_LAYER_ATTENTION, .heads = 2, .bias = 1 }, { .kind = NT_LAYER_MEAN_TOKENS }, dense(3) };
        fx f;
        nt_error err = {0};
        cr_assert_eq(nt_model_init_sequence(&f.m, 4, 5, L, 5, NT_LOSS_MSE, 0.01, &err), NT_OK, "%s", err.msg);
        make_data(&f.ds, &f.m, 23, 381);
        f.e = nt_engine_new(&f.m, 32, 4);
        f.theta = malloc(sizeof(double) * (size_t)f.m.d);
        fill_normal(f.theta, f.m.d, 0.6, 382);
        nt_catalogue(&f.m, &f.list, &f.n);
        const char *lin[] = { "gl[layer=1]", "bias_shift[layer=1]", "rescale[layer=1,unit=5]", "swap[layer=1,units=0,1]",
                              "sign_flip[layer=1,unit=2]", NULL };
        const char *rel[] = { "rescale[layer=1,unit=5]", "swap[layer=1,units=4,5]", NULL };
        all_hold(&f, relu ? rel : lin);
        if (relu) {
            cr_expect_null(get(&f, "sign_flip[layer=1,unit=0]"));
            nt_transform bad = { .kind = NT_TR_SIGN_FLIP, .discrete = 1, .generators = 1, .layer = 1, .a = 0 };
            snprintf(bad.name, sizeof bad.name, "sign flip under relu");
            FAILS(&f, &bad, "a sign flip under relu into attention");
        }
        fx_free(&f);
    }
}

/* ---- through the binary, on mixed structures ----------------------------------------------- */

/* normalizations on the input, without affine parts, at the end, a BatchNorm2d on the image,
 * a layer norm over C H W into a convolution, a per-value batch norm after a flatten,
 * attention without biases writing into a layer norm read by a second attention, residual
 * blocks with layer norms, squares at the end: `noether check` confirms every listed entry
 * (exit 0) and checks as many identities as the structure gives */
static const char *const mixed[] = {
    "{\"model\": {\"input\": 5, \"layers\": [{\"norm\": \"layer\", \"eps\": 0}, {\"dense\": 4, \"bias\": false}, {\"norm\": \"layer\", \"affine\": false}, {\"act\": \"square\"}, {\"dense\": 3}], \"loss\": \"mse\"}, \"data\": {\"source\": \"teacher\", \"n\": 20, \"seed\": 1, \"hidden\": [3]}, \"init\": {\"seed\": 0, \"scheme\": \"he\", \"bias_std\": 0.3}}",
    "{\"model\": {\"input\": 5, \"layers\": [{\"norm\": \"batch\"}, {\"dense\": 4}, {\"act\": \"tanh\"}, {\"norm\": \"batch\", \"eps\": 0}, {\"dense\": 3}, {\"norm\": \"layer\"}], \"loss\": \"mse\"}, \"data\": {\"source\": \"teacher\", \"n\": 20, \"seed\": 1, \"hidden\": [3]}, \"init\": {\"seed\": 0, \"scheme\": \"he\", \"bias_std\": 0.3}}",
    "{\"model\": {\"input\": [2, 5, 5], \"layers\": [{\"norm\": \"batch\"}, {\"conv\": 3, \"kernel\": 3, \"padding\": 1}, {\"norm\": \"layer\", \"eps\": 0}, {\"conv\": 2, \"kernel\": 2}, {\"act\": \"square\"}, {\"flatten\": true}, {\"norm\": \"batch\"}, {\"dense\": 2}], \"loss\": \"cross_entropy\"}, \"data\": {\"source\": \"teacher\", \"n\": 20, \"seed\": 1, \"hidden\": [3]}, \"init\": {\"seed\": 0, \"scheme\": \"he\", \"bias_std\": 0.3}}",
    "{\"model\": {\"input\": [2, 6, 6], \"layers\": [{\"conv\": 3, \"kernel\": 3, \"bias\": false}, {\"norm\": \"batch\"}, {\"act\": \"tanh\"}, {\"pool\": \"avg\", \"kernel\": 2}, {\"norm\": \"batch\", \"affine\": false}, {\"conv\": 2, \"kernel\": 2}, {\"act\": \"relu\"}, {\"pool\": \"max\", \"kernel\": 1}, {\"flatten\": true}, {\"dense\": 1}], \"loss\": \"logistic\"}, \"data\": {\"source\": \"teacher\", \"n\": 20, \"seed\": 1, \"hidden\": [3]}, \"init\": {\"seed\": 0, \"scheme\": \"he\", \"bias_std\": 0.3}}",
    "{\"model\": {\"input\": [4, 3], \"layers\": [{\"dense\": 4}, {\"act\": \"square\"}, {\"attention\": 2, \"bias\": false, \"causal\": true}, {\"norm\": \"layer\"}, {\"attention\": 1}, {\"pool\": \"tokens\"}, {\"act\": \"tanh\"}, {\"dense\": 2}], \"loss\": \"mse\"}, \"data\": {\"source\": \"sequence\", \"n\": 20, \"seed\": 0}, \"init\": {\"seed\": 0, \"scheme\": \"xavier\", \"bias_std\": 0.3}}",
    "{\"model\": {\"input\": [4, 3], \"layers\": [{\"dense\": 4}, {\"residual\": [{\"norm\": \"layer\"}, {\"dense\": 4}, {\"act\": \"relu\"}, {\"norm\": \"layer\"}, {\"dense\": 4}]}, {\"residual\": [{\"norm\": \"layer\", \"eps\": 0}, {\"attention\": 2}]}, {\"pool\": \"tokens\"}, {\"dense\": 2}, {\"act\": \"square\"}], \"loss\": \"mse\"}, \"data\": {\"source\": \"sequence\", \"n\": 20, \"seed\": 0}, \"init\": {\"seed\": 0, \"scheme\": \"xavier\", \"bias_std\": 0.3}}",
};

Test(catalogue, binary_check_on_mixed_structures)
{
    /* generators and maps, from the structure:
     * 0: norm_rescale 5 + norm_shift 5 (no bias: the 5 columns) + norm_swap 3 + output_swap 2 = 15
     * 1: norm_rescale 5 + 4, norm_flip 4 + 1, norm_shift 1 + 4, norm_swap 3 = 22
     * 2: channel_even_flip 2, channel_scale 1, channel_shift 1, norm_flip 1, norm_rescale 2 + 32
     *    (BatchNorm2d on the input; per value after the flatten), output_swap 1, translation 33 = 73
     * 3: channel_rescale 2, channel_swap 1, norm_flip 3 = 6
     * 4: even_flip 4, rescale 4, swap 3 (read by attention), gl_qk and gl_vo 2 (2 heads x 4 + 16),
     *    head_swap 1, key_shift 4, value_shift 4, norm_rescale 4, norm_swap 3, norm_flip 1, output_swap 1 = 77
     * 5: even_flip 2, gl_qk 8, gl_vo 8, head_swap 1, key_shift 4, value_shift 4, norm_rescale 3 x 4,
     *    norm_swap 3, output_swap 1 = 43 */
    const int identities[] = { 15, 22, 73, 6, 77, 43 };
    char dir[256], spec[NT_PATH_MAX], args[2 * NT_PATH_MAX], *out, *errs;
    tmpdir_new(dir);
    for (int i = 0; i < (int)(sizeof mixed / sizeof *mixed); i++) {
        path_join(spec, dir, "mixed.json");
        write_text(spec, mixed[i]);
        snprintf(args, sizeof args, "check %s --json --tol 1e-9", spec);
        cr_expect_eq(run_noether(args, &out, &errs), 0, "structure %d: %s %s", i, out, errs);
        cJSON *doc = cJSON_Parse(out);
        cr_assert_not_null(doc, "%s", out);
        cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(doc, "all_hold")), "structure %d", i);
        cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "transformations")), identities[i], "structure %d", i);
        cJSON_Delete(doc);
        free(out); free(errs);
    }
}
