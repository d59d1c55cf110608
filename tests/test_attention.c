/* test_attention.c: multi-head self-attention and the sequence layers around it (per-token
 * dense layers and layer norms, the mean over tokens): exact derivatives against finite
 * differences, PyTorch's nn.MultiheadAttention, the catalogue's per-head symmetries and their
 * negative controls, the synthetic sequence task and the spec keys through the binary. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include "helpers.h"

#define ATTN(h, c, b) {.kind = NT_LAYER_ATTENTION, .heads = (h), .causal = (c), .bias = (b)}
#define DENSE(n) {.kind = NT_LAYER_DENSE, .units = (n), .bias = 1}
#define ACT(a) {.kind = NT_LAYER_ACT, .act = (a)}
#define MEAN {.kind = NT_LAYER_MEAN_TOKENS}

Test(attention, finite_differences_alone)
{
    nt_layer plain[] = {ATTN(2, 0, 1), MEAN, DENSE(3)};
    fd_check_sequence(4, 6, plain, 3, NT_LOSS_CROSS_ENTROPY, 0.0, 11, 0.6, "attention, 2 heads");
    nt_layer causal[] = {ATTN(3, 1, 0), MEAN, DENSE(2)};
    fd_check_sequence(5, 6, causal, 3, NT_LOSS_MSE, 0.01, 12, 0.6, "causal attention without biases");
    nt_layer one[] = {ATTN(1, 1, 1), {.kind = NT_LAYER_FLATTEN}, DENSE(1)};
    fd_check_sequence(3, 4, one, 3, NT_LOSS_LOGISTIC, 0.0, 13, 0.6, "one head, flattened");
}

/* a transformer block: x + attn(LN x), then x + MLP(LN x) per token, the mean, a head */
Test(attention, finite_differences_composed)
{
    nt_layer L[] = {DENSE(8), {.kind = NT_LAYER_BRANCH}, {.kind = NT_LAYER_LAYERNORM, .affine = 1, .eps = 1e-5},
                    ATTN(2, 1, 1), {.kind = NT_LAYER_ADD}, {.kind = NT_LAYER_BRANCH},
                    {.kind = NT_LAYER_LAYERNORM, .affine = 1, .eps = 1e-5}, DENSE(12), ACT(NT_ACT_GELU), DENSE(8),
                    {.kind = NT_LAYER_ADD}, MEAN, ACT(NT_ACT_TANH), DENSE(3)};
    fd_check_sequence(5, 4, L, 14, NT_LOSS_CROSS_ENTROPY, 0.001, 21, 0.5, "transformer block");
}

/* ---- the catalogue ------------------------------------------------------------------- */

static const nt_transform *find(const nt_transform *list, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(list[i].name, name)) return &list[i];
    return NULL;
}

static void sequence_model(nt_model *m, int T, int D, const nt_layer *L, int n, nt_loss loss, double wd)
{
    nt_error err = {0};
    cr_assert_eq(nt_model_init_sequence(m, T, D, L, n, loss, wd, &err), NT_OK, "%s", err.msg);
}

/* every identity of every entry at random theta, to 1e-10; returns how many were checked */
static int check_all(const nt_model *m, const nt_transform *list, int n, uint64_t seed)
{
    nt_dataset ds;
    make_data(&ds, m, 23, seed);
    nt_engine *e = nt_engine_new(m, 7, 4);
    double *theta = malloc(sizeof(double) * m->d);
    fill_normal(theta, m->d, 0.5, seed + 1);
    int nc = nt_check_count(list, n);
    nt_check_result *r = malloc(sizeof *r * (size_t)nc);
    t_check(e, m, &ds, theta, list, n, 1e-10, r);
    double worst = 0;
    for (int i = 0; i < nc; i++) {
        cr_expect(r[i].holds, "%s: first order %.2e, second order %.2e", r[i].name, r[i].first_order, r[i].second_order);
        worst = fmax(worst, fmax(r[i].first_order, r[i].second_order));
    }
    cr_log_info("%d identities, worst residual %.1e", nc, worst);
    free(r); free(theta);
    nt_engine_free(e);
    nt_dataset_free(&ds);
    return nc;
}

/* a pre-norm transformer block: the heads' symmetries hold whatever surrounds the layer; the
 * MLP's unit swaps hold per token (gelu: no rescaling); nothing crosses a skip connection */
Test(attention, catalogue_of_a_transformer_block)
{
    nt_layer L[] = {DENSE(8), {.kind = NT_LAYER_BRANCH}, {.kind = NT_LAYER_LAYERNORM, .affine = 1, .eps = 1e-5},
                    ATTN(2, 1, 1), {.kind = NT_LAYER_ADD}, {.kind = NT_LAYER_BRANCH},
                    {.kind = NT_LAYER_LAYERNORM, .affine = 1, .eps = 1e-5}, DENSE(6), ACT(NT_ACT_GELU), DENSE(8),
                    {.kind = NT_LAYER_ADD}, MEAN, ACT(NT_ACT_TANH), DENSE(3)};
    nt_model m;
    sequence_model(&m, 5, 4, L, 14, NT_LOSS_CROSS_ENTROPY, 0.01);
    nt_transform *list;
    int n;
    nt_catalogue(&m, &list, &n);
    for (int h = 0; h < 2; h++) {
        char name[64];
        snprintf(name, sizeof name, "gl_qk[layer=3,head=%d]", h);
        const nt_transform *t = find(list, n, name);
        cr_assert_not_null(t, "%s", name);
        cr_expect_eq(t->generators, 16, "d_head = 4: 16 generators");
        snprintf(name, sizeof name, "gl_vo[layer=3,head=%d]", h);
        cr_assert_not_null(find(list, n, name), "%s", name);
    }
    cr_assert_not_null(find(list, n, "head_swap[layer=3,heads=0,1]"));
    cr_assert_not_null(find(list, n, "swap[layer=2,units=0,1]"), "the MLP's units are exchangeable per token");
    cr_assert_null(find(list, n, "rescale[layer=2,unit=0]"), "gelu is not homogeneous");
    cr_assert_null(find(list, n, "swap[layer=1,units=0,1]"), "the residual stream's units cross skips");
    cr_assert_null(find(list, n, "swap[layer=3,units=0,1]"), "the block's output crosses a skip");
    for (int i = 0; i < n; i++) cr_expect(!strstr(list[i].name, "homogeneous"), "%s", list[i].name);
    cr_assert_geq(check_all(&m, list, n, 41), 2 * 2 * 16 + 1);
    nt_transforms_free(list, n);
    nt_model_free(&m);
}

/* per-token dense layers through the mean over tokens keep the MLP's catalogue (rescaling,
 * gl(n), swaps, homogeneity); an attention layer between two dense layers removes it */
Test(attention, catalogue_through_the_mean_and_across_attention)
{
    nt_model m;
    sequence_model(&m, 4, 3, (nt_layer[]){DENSE(5), ACT(NT_ACT_RELU), MEAN, DENSE(4), DENSE(3)}, 5,
                   NT_LOSS_CROSS_ENTROPY, 0.0);
    nt_transform *list;
    int n;
    nt_catalogue(&m, &list, &n);
    cr_assert_not_null(find(list, n, "rescale[layer=1,unit=4]"), "relu, then the mean: degree 1");
    cr_assert_not_null(find(list, n, "gl[layer=2]"), "nothing between: gl(4)");
    cr_assert_not_null(find(list, n, "homogeneous[degree=3]"));
    check_all(&m, list, n, 43);
    nt_transforms_free(list, n);
    nt_model_free(&m);

    sequence_model(&m, 4, 6, (nt_layer[]){DENSE(6), ACT(NT_ACT_RELU), ATTN(2, 0, 1), MEAN, DENSE(3)}, 5,
                   NT_LOSS_CROSS_ENTROPY, 0.0);
    nt_catalogue(&m, &list, &n);
    /* the attention layer reads dense 0's units through columns of its in-projection: they
     * rescale and swap against those (and hold); nothing reaches dense 4 across it */
    cr_assert_not_null(find(list, n, "rescale[layer=1,unit=0]"), "a rescaling against the in-projection");
    cr_assert_not_null(find(list, n, "swap[layer=1,units=0,1]"), "a swap against the in-projection");
    for (int i = 0; i < n; i++) cr_expect(!strstr(list[i].name, "homogeneous"), "%s", list[i].name);
    cr_assert_not_null(find(list, n, "gl_vo[layer=2,head=1]"));
    check_all(&m, list, n, 45);
    /* the negative control: the rescaling forced across the attention layer, against column 0
     * of the last dense layer (a dense A: +1 on row 0 of W_0 and b_0[0], -1 on that column) */
    nt_transform fake = { .kind = NT_TR_DENSE, .generators = 1 };
    snprintf(fake.name, sizeof fake.name, "rescale across attention");
    fake.A = calloc((size_t)(m.d * m.d), sizeof(double));
    int64_t w_last = 0;
    for (int t = 0; t < m.n_tensors; t++)
        if (!strcmp(m.tensors[t].name, "4.weight")) w_last = m.tensors[t].offset;
    for (int64_t x = 0; x < 6; x++) fake.A[x * m.d + x] = 1;   /* row 0 of W_0 */
    fake.A[36 * m.d + 36] = 1;                                /* b_0[0] */
    for (int64_t k = 0; k < 3; k++) fake.A[(w_last + 6 * k) * m.d + w_last + 6 * k] = -1;
    nt_dataset ds;
    make_data(&ds, &m, 23, 46);
    nt_engine *e = nt_engine_new(&m, 7, 4);
    double *theta = malloc(sizeof(double) * m.d);
    fill_normal(theta, m.d, 0.5, 47);
    nt_check_result r;
    t_check(e, &m, &ds, theta, &fake, 1, 1e-10, &r);
    cr_expect(!r.holds && r.first_order > 1e-6, "a rescaling across attention held: %.2e", r.first_order);
    free(fake.A);
    free(theta);
    nt_engine_free(e);
    nt_dataset_free(&ds);
    nt_transforms_free(list, n);
    nt_model_free(&m);
}

/* the negative controls of the heads' symmetries, as user-declared transformations (dense
 * A and T): gl on the queries alone (the keys not moved the inverse way), gl_vo with W_O
 * moved the wrong way, a head swap that leaves W_O's columns in place all fail */
Test(attention, head_symmetries_negative_controls)
{
    nt_model m;
    sequence_model(&m, 4, 6, (nt_layer[]){ATTN(2, 1, 1), MEAN, DENSE(3)}, 3, NT_LOSS_CROSS_ENTROPY, 0.0);
    const int64_t d = m.d, D = 6, dh = 3, w_in = 0, b_in = 3 * D * D, w_out = b_in + 3 * D;
    cr_assert_str_eq(m.tensors[2].name, "0.out_proj.weight");
    cr_assert_eq(m.tensors[2].offset, w_out);
    nt_transform bad[3] = {{.kind = NT_TR_DENSE, .generators = 1}, {.kind = NT_TR_DENSE, .generators = 1},
                           {.kind = NT_TR_DENSE, .discrete = 1, .generators = 1}};
    for (int i = 0; i < 3; i++) bad[i].A = calloc((size_t)(d * d), sizeof(double));
    /* E_01 of head 0 on the queries only: row 0 of W_Q <- row 1, b_Q[0] <- b_Q[1] */
    for (int64_t c = 0; c < D; c++) bad[0].A[(w_in + c) * d + w_in + D + c] = 1;
    bad[0].A[b_in * d + b_in + 1] = 1;
    /* gl_vo with W_O's column moved +: row 0 of W_V <- row 1; column 1 of W_O <- + column 0 */
    for (int64_t c = 0; c < D; c++) bad[1].A[(w_in + (2 * D) * D + c) * d + w_in + (2 * D + 1) * D + c] = 1;
    bad[1].A[(b_in + 2 * D) * d + b_in + 2 * D + 1] = 1;
    for (int64_t r = 0; r < D; r++) bad[1].A[(w_out + r * D + 1) * d + w_out + r * D] = 1;
    /* heads 0 and 1 exchanged in Q, K, V and their biases, W_O left alone */
    for (int64_t i = 0; i < d; i++) bad[2].A[i * d + i] = 1;
    for (int64_t part = 0; part < 3; part++)
        for (int64_t row = 0; row < dh; row++) {
            int64_t ra = part * D + row, rb = part * D + dh + row;
            for (int64_t c = 0; c < D; c++) {
                int64_t x = w_in + ra * D + c, y = w_in + rb * D + c;
                bad[2].A[x * d + x] = bad[2].A[y * d + y] = 0;
                bad[2].A[x * d + y] = bad[2].A[y * d + x] = 1;
            }
            int64_t x = b_in + ra, y = b_in + rb;
            bad[2].A[x * d + x] = bad[2].A[y * d + y] = 0;
            bad[2].A[x * d + y] = bad[2].A[y * d + x] = 1;
        }
    nt_dataset ds;
    make_data(&ds, &m, 23, 51);
    nt_engine *e = nt_engine_new(&m, 7, 4);
    double *theta = malloc(sizeof(double) * d);
    fill_normal(theta, d, 0.5, 52);
    nt_check_result r[3];
    t_check(e, &m, &ds, theta, bad, 3, 1e-10, r);
    for (int i = 0; i < 3; i++) cr_expect(!r[i].holds, "negative control %d held", i);
    cr_expect_gt(r[0].first_order, 1e-6, "gl on the queries alone: %.2e", r[0].first_order);
    cr_expect_gt(r[1].first_order, 1e-6, "gl_vo the wrong way: %.2e", r[1].first_order);
    cr_log_info("negative controls: queries alone %.1e, gl_vo the wrong way %.1e, head swap without W_O (holds = %d)",
                r[0].first_order, r[1].first_order, r[2].holds);
    /* the catalogue's own entries at the same theta hold */
    nt_transform *list;
    int n;
    nt_catalogue(&m, &list, &n);
    check_all(&m, list, n, 51);
    nt_transforms_free(list, n);
    for (int i = 0; i < 3; i++) free(bad[i].A);
    free(theta);
    nt_engine_free(e);
    nt_dataset_free(&ds);
    nt_model_free(&m);
}

/* ---- through the binary --------------------------------------------------------------- */

/* writes a spec of these model keys on the sequence task and runs `noether CMD` on it */
static int run_spec(const char *cmd, const char *model, char **out, char **err)
{
    char dir[256], spec[NT_PATH_MAX], text[2048], args[NT_PATH_MAX + 64];
    tmpdir_new(dir);
    path_join(spec, dir, "spec.json");
    snprintf(text, sizeof text, "{\"model\": %s, \"data\": {\"source\": \"sequence\", \"n\": 64, \"seed\": 3}, "
             "\"init\": {\"seed\": 4, \"bias_std\": 0.1}, \"weight_decay\": 0.001}", model);
    write_text(spec, text);
    snprintf(args, sizeof args, "%s %s", cmd, spec);
    return run_noether(args, out, err);
}

/* noether check on a causal transformer block: every identity of the heads' symmetries
 * holds; info describes the layers and the layout of nn.MultiheadAttention */
Test(attention, binary_check_and_info)
{
    const char *model = "{\"input\": [6, 4], \"layers\": [{\"dense\": 8}, {\"residual\": [{\"norm\": \"layer\"}, "
                        "{\"attention\": 2, \"causal\": true}]}, {\"pool\": \"tokens\"}, {\"dense\": 3}], "
                        "\"loss\": \"cross_entropy\"}";
    char *out = NULL, *err = NULL;
    cr_assert_eq(run_spec("check", model, &out, &err), 0, "check failed: %s%s", out, err);
    cr_assert(strstr(out, "gl_qk[layer=3,head=1,i=3,j=3]"), "%s", out);
    cr_assert(strstr(out, "head_swap[layer=3,heads=0,1]"), "%s", out);
    cr_assert(strstr(out, "identities hold"), "%s", out);
    free(out); free(err);
    cr_assert_eq(run_spec("info", model, &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "6 tokens x 4 -> dense 8 -> residual [ -> layernorm (eps 1e-05) -> attention (2 heads, causal) ] "
                          "+ skip -> mean over tokens -> dense 3"), "%s", out);
    cr_assert(strstr(out, "3.in_proj_weight") && strstr(out, "24 x 8") && strstr(out, "3.out_proj.bias"), "%s", out);
    free(out); free(err);
}

/* bad sequence specs are refused with exit 2 and a message naming the field */
Test(attention, bad_specs_name_the_field)
{
    struct { const char *model, *says; } bad[] = {
        {"{\"input\": 8, \"layers\": [{\"attention\": 2}, {\"dense\": 2}], \"loss\": \"mse\"}", "needs a sequence input"},
        {"{\"input\": [4, 6], \"layers\": [{\"attention\": 4}, {\"pool\": \"tokens\"}, {\"dense\": 2}], \"loss\": \"mse\"}",
         "4 heads do not divide the 6 features"},
        {"{\"input\": [4, 6], \"layers\": [{\"dense\": 2}], \"loss\": \"mse\"}", "the output is a sequence"},
        {"{\"input\": [4, 6], \"layers\": [{\"norm\": \"batch\"}, {\"pool\": \"tokens\"}, {\"dense\": 2}], \"loss\": \"mse\"}",
         "batch normalization of a sequence"},
        {"{\"input\": [4, 6], \"layers\": [{\"dense\": 2, \"causal\": true}, {\"pool\": \"tokens\"}], \"loss\": \"mse\"}",
         "model.layers[0].causal: not a key of {\"dense\": N} (its keys: dense, bias)"},
        {"{\"input\": [4, 6], \"layers\": [{\"attention\": 2, \"kernel\": 3}, {\"pool\": \"tokens\"}, {\"dense\": 2}], "
         "\"loss\": \"mse\"}", "model.layers[0].kernel: not a key of {\"attention\": HEADS} (its keys: attention, causal, bias)"},
        {"{\"input\": [4, 6], \"layers\": [{\"pool\": \"tokens\", \"kernel\": 2}, {\"dense\": 2}], \"loss\": \"mse\"}",
         "model.layers[0].kernel: not a key of {\"pool\": \"tokens\"}"},
        {"{\"input\": 24, \"layers\": [{\"dense\": 2}], \"loss\": \"mse\"}", "'sequence' needs a sequence model"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *err = NULL;
        cr_expect_eq(run_spec("info", bad[i].model, NULL, &err), 2, "case %zu exit code", i);
        cr_expect(err && strstr(err, bad[i].says), "case %zu: expected '%s' in: %s", i, bad[i].says, err);
        cr_expect(err && strstr(err, "spec.json"), "case %zu: the message names the file: %s", i, err);
        free(err);
    }
}

/* the spectrum's frozen engine (values, adjoints and every head's weights P kept at theta)
 * gives bitwise the products of the full sweep; another theta (another array: the frozen one
 * must not change) takes the full sweep */
Test(attention, frozen_products_are_bitwise_the_full_ones)
{
    nt_model m;
    sequence_model(&m, 5, 4, (nt_layer[]){DENSE(8), {.kind = NT_LAYER_BRANCH}, {.kind = NT_LAYER_LAYERNORM, .affine = 1,
                   .eps = 1e-5}, ATTN(2, 1, 1), {.kind = NT_LAYER_ADD}, MEAN, DENSE(3)}, 7, NT_LOSS_CROSS_ENTROPY, 0.01);
    nt_dataset ds;
    make_data(&ds, &m, 21, 71);
    const int64_t d = m.d;
    const int k = 4;
    nt_engine *e = nt_engine_new(&m, 5, 3);
    double *theta = malloc(sizeof(double) * d), *V = malloc(sizeof(double) * k * d);
    double *A = malloc(sizeof(double) * k * d), *B = malloc(sizeof(double) * k * d);
    fill_normal(theta, d, 0.5, 72);
    fill_normal(V, k * d, 1.0, 73);
    t_hvp(e, theta, &ds, k, V, A, NULL);
    cr_assert_eq(nt_engine_freeze(e, theta, &ds, 1e9), 1);
    t_hvp(e, theta, &ds, k, V, B, NULL);
    cr_assert_eq(memcmp(A, B, sizeof(double) * k * d), 0, "frozen products differ: %.2e", nt_rel_diff(k * d, A, B));
    double *other = malloc(sizeof(double) * d);   /* control: another theta takes the full sweep */
    memcpy(other, theta, sizeof(double) * d);
    other[0] += 0.1;
    t_hvp(e, other, &ds, k, V, B, NULL);
    cr_assert_gt(nt_rel_diff(k * d, A, B), 1e-6);
    free(other); free(theta); free(V); free(A); free(B);
    nt_engine_free(e);
    nt_dataset_free(&ds);
    nt_model_free(&m);
}
