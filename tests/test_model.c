/* test_model.c: the pieces under the engine: activations and losses against finite
 * differences, the layout and its errors, seeded initialization, the spec parser and the
 * data sources. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include "helpers.h"

/* sigma' and sigma'' against central differences of sigma and sigma', away from kinks */
Test(model, activation_derivatives)
{
    const double zs[] = {-3.1, -0.7, -0.05, 0.3, 1.9, 4.2};
    const double h = 1e-6;
    for (int a = 0; a < NT_ACT_COUNT; a++)
        for (size_t i = 0; i < sizeof zs / sizeof *zs; i++) {
            double z = zs[i], sp, sm, d1, d2, d1p, d1m;
            nt_act_eval((nt_act)a, 0.1, z, NULL, &d1, &d2);
            nt_act_eval((nt_act)a, 0.1, z + h, &sp, &d1p, NULL);
            nt_act_eval((nt_act)a, 0.1, z - h, &sm, &d1m, NULL);
            cr_expect_leq(fabs((sp - sm) / (2 * h) - d1), 1e-8 * (1 + fabs(d1)), "%s'(%g)", nt_act_name(a), z);
            cr_expect_leq(fabs((d1p - d1m) / (2 * h) - d2), 1e-8 * (1 + fabs(d2)), "%s''(%g)", nt_act_name(a), z);
        }
    /* exact values that define the activations */
    double s;
    nt_act_eval(NT_ACT_GELU, 0, 1.0, &s, NULL, NULL);
    cr_expect_leq(fabs(s - 0.5 * (1 + erf(1 / sqrt(2)))), 1e-16, "gelu is z Phi(z) with the exact erf");
    nt_act_eval(NT_ACT_LEAKY_RELU, 0.2, -2.0, &s, NULL, NULL);
    cr_expect_eq(s, -0.4);
    nt_act_eval(NT_ACT_SOFTPLUS, 0, 800.0, &s, NULL, NULL);
    cr_expect_eq(s, 800.0, "softplus overflows");
}

/* u = dl/df and U w against differences of l and u, for each loss */
Test(model, loss_derivatives)
{
    const double f[3] = {0.3, -1.2, 2.0}, w[3] = {0.5, 1.5, -0.7};
    const double ys[4][3] = {{1.0, 0.5, -0.2}, {2, 0, 0}, {-1, 0, 0}, {1, 0, 0}};
    const int Ks[4] = {3, 3, 1, 1};
    const double h = 1e-6;
    for (int l = 0; l < NT_LOSS_COUNT; l++) {
        int K = Ks[l];
        double u[3], Uw[3], fp[3], fm[3], up[3], um[3];
        nt_loss_eval((nt_loss)l, K, f, ys[l], u);
        nt_loss_hess_apply((nt_loss)l, K, f, ys[l], w, Uw);
        for (int i = 0; i < K; i++) {
            memcpy(fp, f, sizeof f); memcpy(fm, f, sizeof f);
            fp[i] += h; fm[i] -= h;
            double du = (nt_loss_eval((nt_loss)l, K, fp, ys[l], NULL) - nt_loss_eval((nt_loss)l, K, fm, ys[l], NULL)) / (2 * h);
            cr_expect_leq(fabs(du - u[i]), 1e-8, "%s: u[%d]", nt_loss_name(l), i);
        }
        for (int i = 0; i < K; i++) { fp[i] = f[i] + h * w[i]; fm[i] = f[i] - h * w[i]; }
        nt_loss_eval((nt_loss)l, K, fp, ys[l], up);
        nt_loss_eval((nt_loss)l, K, fm, ys[l], um);
        for (int i = 0; i < K; i++)
            cr_expect_leq(fabs((up[i] - um[i]) / (2 * h) - Uw[i]), 1e-8, "%s: (U w)[%d]", nt_loss_name(l), i);
    }
    /* the definitions of docs/interface.md at one point */
    double y = 1, f1 = 0.4;
    cr_expect_leq(fabs(nt_loss_eval(NT_LOSS_LOGISTIC, 1, &f1, &y, NULL) - log1p(exp(-0.4))), 1e-16);
    cr_expect_leq(fabs(nt_loss_eval(NT_LOSS_EXPONENTIAL, 1, &f1, &y, NULL) - exp(-0.4)), 1e-16);
    double c = 2, ce = nt_loss_eval(NT_LOSS_CROSS_ENTROPY, 3, f, &c, NULL);
    cr_expect_leq(fabs(ce - (log(exp(0.3) + exp(-1.2) + exp(2.0)) - 2.0)), 1e-15);
    /* stable far out: no overflow to inf or nan */
    double big = -800;
    cr_expect(isfinite(nt_loss_eval(NT_LOSS_LOGISTIC, 1, &big, &y, NULL)));
}

Test(model, layout_and_errors)
{
    nt_model m;
    nt_error err;
    make_mlp(&m, 5, 2, (int[]){7, 3}, NT_ACT_RELU, 2, NT_LOSS_CROSS_ENTROPY, 0, 0);
    cr_expect_eq(m.d, 5 * 7 + 7 * 3 + 3 * 2);
    cr_expect_eq(m.n_tensors, 3);
    cr_expect_eq(m.tensors[1].offset, 35);
    cr_expect_str_eq(m.tensors[2].name, "4.weight");
    nt_model_free(&m);
    nt_layer L[] = {{.kind = NT_LAYER_DENSE, .units = 3, .bias = 1}};
    cr_expect_eq(nt_model_init(&m, 4, L, 1, NT_LOSS_LOGISTIC, 0, &err), NT_EINPUT);
    cr_expect_not_null(strstr(err.msg, "logistic needs one output"), "%s", err.msg);
    cr_expect_eq(nt_model_init(&m, 0, L, 1, NT_LOSS_MSE, 0, &err), NT_EINPUT);
    cr_expect_not_null(strstr(err.msg, "model.input"), "%s", err.msg);
    L[0].units = 1;
    cr_expect_eq(nt_model_init(&m, 4, L, 1, NT_LOSS_CROSS_ENTROPY, 0, &err), NT_EINPUT);
}

Test(model, seeded_init)
{
    nt_model m;
    make_mlp(&m, 50, 1, (int[]){400}, NT_ACT_RELU, 3, NT_LOSS_MSE, 1, 0);
    double *a = malloc(sizeof(double) * m.d), *b = malloc(sizeof(double) * m.d);
    nt_init in = {.seed = 3, .scheme = NT_INIT_HE, .bias_std = 0};
    nt_init_params(&m, &in, a);
    nt_init_params(&m, &in, b);
    cr_expect_eq(memcmp(a, b, sizeof(double) * m.d), 0, "same seed, same theta");
    double ss = 0;
    for (int64_t i = 0; i < 50 * 400; i++) ss += a[i] * a[i];
    double var = ss / (50 * 400);   /* he: 2 / n_in = 0.04 */
    cr_expect_leq(fabs(var - 0.04), 0.002, "he variance %g", var);
    cr_expect_eq(a[m.tensors[1].offset], 0.0, "zero biases by default");
    in.seed = 4;
    nt_init_params(&m, &in, b);
    cr_expect_neq(a[0], b[0], "another seed, another theta");
    in.scheme = NT_INIT_XAVIER;
    nt_init_params(&m, &in, b);
    ss = 0;
    for (int64_t i = 0; i < 50 * 400; i++) ss += b[i] * b[i];
    cr_expect_leq(fabs(ss / (50 * 400) - 2.0 / 450), 0.0003);
    free(a); free(b);
    nt_model_free(&m);
}

/* ---- spec and data ------------------------------------------------------------------ */

static int parse(const char *json, nt_spec *s, nt_error *err)
{
    return nt_spec_parse(json, "/some/dir/spec.json", s, err);
}

Test(spec, default_spec_parses_and_loads)
{
    nt_spec s;
    nt_data data;
    nt_error err;
    cr_assert_eq(parse(nt_default_spec_json(), &s, &err), NT_OK, "%s", err.msg);
    cr_assert_eq(nt_data_load(&s, &data, &err), NT_OK, "%s", err.msg);
    cr_expect_eq(data.train.n + data.test.n, 178);
    cr_expect_eq(data.test.n, 44);   /* floor(0.25 * 178) */
    cr_expect_eq(data.train.dim, 13);
    double mean = 0;   /* standardized with the training statistics */
    for (int64_t i = 0; i < data.train.n; i++) mean += data.train.x[i * 13 + 12];
    cr_expect_leq(fabs(mean / data.train.n), 1e-12);
    nt_data_free(&data);
    nt_spec_free(&s);
}

Test(spec, errors_name_the_key)
{
    const struct { const char *json, *expect; } cases[] = {
        {"{\"model\": {\"input\": 2, \"layers\": [{\"dense\": 1}], \"loss\": \"mse\"}, \"data\": {\"source\": \"teacher\"}, \"extra\": 1}", "extra: unknown key"},
        {"{\"model\": {\"input\": 2, \"layers\": [{\"dense\": 1}, {\"act\": \"swish\"}], \"loss\": \"mse\"}, \"data\": {\"source\": \"teacher\"}}", "model.layers[1].act: 'swish' is not one of"},
        {"{\"model\": {\"input\": 2, \"layers\": [{\"dense\": 1}], \"loss\": \"hinge\"}, \"data\": {\"source\": \"teacher\"}}", "model.loss: 'hinge'"},
        {"{\"model\": {\"input\": 2, \"layers\": [{\"dense\": -3}], \"loss\": \"mse\"}, \"data\": {\"source\": \"teacher\"}}", "model.layers[0].dense"},
        {"{\"model\": {\"input\": \"2\", \"layers\": [{\"dense\": 1}], \"loss\": \"mse\"}, \"data\": {\"source\": \"teacher\"}}", "model.input: must be an integer"},
        {"{\"model\": {\"input\": 2, \"layers\": [{\"dense\": 1}], \"loss\": \"mse\"}, \"data\": {\"source\": \"npy\", \"x\": \"x.npy\"}}", "data.y: missing"},
        {"{\"model\": {\"input\": 2, \"layers\": [{\"dense\": 1}], \"loss\": \"mse\"}, \"data\": {\"source\": \"teacher\"}, \"train\": {\"optimizer\": \"lbfgs\"}}", "train.optimizer"},
        {"{\"model\": {\"input\": 2, \"layers\": [{\"dense\": 1}], \"loss\": \"mse\"", "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        nt_spec s;
        nt_error err = {0};
        cr_expect_eq(parse(cases[i].json, &s, &err), NT_EINPUT, "case %zu parsed", i);
        cr_expect_not_null(strstr(err.msg, cases[i].expect), "case %zu: '%s' lacks '%s'", i, err.msg, cases[i].expect);
        cr_expect_not_null(strstr(err.msg, "spec.json"), "case %zu: '%s' does not name the file", i, err.msg);
    }
}

Test(spec, paths_relative_to_the_spec)
{
    nt_spec s;
    nt_error err;
    cr_assert_eq(parse("{\"model\": {\"input\": 2, \"layers\": [{\"dense\": 1}], \"loss\": \"mse\"},"
                       " \"data\": {\"source\": \"npy\", \"x\": \"a/x.npy\", \"y\": \"/abs/y.npy\"}}", &s, &err), NT_OK, "%s", err.msg);
    cr_expect_str_eq(s.data.x, "/some/dir/a/x.npy");
    cr_expect_str_eq(s.data.y, "/abs/y.npy");
    nt_spec_free(&s);
}

/* teacher data: seeded, labels valid for the loss; logistic maps 0/1 CSV labels to -1/+1 */
Test(spec, teacher_and_label_mapping)
{
    const char *json = "{\"model\": {\"input\": 5, \"layers\": [{\"dense\": 4}], \"loss\": \"cross_entropy\"},"
                       " \"data\": {\"source\": \"teacher\", \"n\": 200, \"seed\": 9, \"hidden\": [8, 8]}}";
    nt_spec s;
    nt_data a, b;
    nt_error err;
    cr_assert_eq(parse(json, &s, &err), NT_OK, "%s", err.msg);
    cr_assert_eq(nt_data_load(&s, &a, &err), NT_OK, "%s", err.msg);
    cr_assert_eq(nt_data_load(&s, &b, &err), NT_OK, "%s", err.msg);
    cr_expect_eq(memcmp(a.train.y, b.train.y, sizeof(double) * 200), 0);
    int seen[4] = {0};
    for (int i = 0; i < 200; i++) seen[(int)a.train.y[i]]++;
    cr_expect(seen[0] > 0 && seen[1] > 0 && seen[2] > 0 && seen[3] > 0, "every class occurs");
    nt_data_free(&a); nt_data_free(&b);
    nt_spec_free(&s);
    json = "{\"model\": {\"input\": 30, \"layers\": [{\"dense\": 1}], \"loss\": \"logistic\"},"
           " \"data\": {\"source\": \"builtin\", \"name\": \"breast_cancer\"}}";
    cr_assert_eq(parse(json, &s, &err), NT_OK, "%s", err.msg);
    cr_assert_eq(nt_data_load(&s, &a, &err), NT_OK, "%s", err.msg);
    cr_expect_eq(a.train.n, 569);
    cr_expect_eq(a.train.y[0], -1.0, "label 0 (malignant) becomes -1");
    int pos = 0;
    for (int i = 0; i < 569; i++) pos += a.train.y[i] == 1;
    cr_expect_eq(pos, 357, "357 benign samples");
    nt_data_free(&a);
    nt_spec_free(&s);
}

Test(spec, idx_fashion_mnist)
{
    const char *img = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
    FILE *f = fopen(img, "rb");
    if (!f) cr_skip_test("Debian's dataset-fashion-mnist is not installed");
    fclose(f);
    const char *json = "{\"model\": {\"input\": 784, \"layers\": [{\"dense\": 10}], \"loss\": \"cross_entropy\"},"
        " \"data\": {\"source\": \"idx\", \"images\": \"/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz\","
        " \"labels\": \"/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz\", \"limit\": 1000}}";
    nt_spec s;
    nt_data a;
    nt_error err;
    cr_assert_eq(parse(json, &s, &err), NT_OK, "%s", err.msg);
    cr_assert_eq(nt_data_load(&s, &a, &err), NT_OK, "%s", err.msg);
    cr_expect_eq(a.train.n, 1000);
    double lo = 1, hi = 0;
    for (int64_t i = 0; i < 1000 * 784; i++) { lo = fmin(lo, a.train.x[i]); hi = fmax(hi, a.train.x[i]); }
    cr_expect(lo == 0 && hi == 1, "pixels scaled into [0, 1]: %g..%g", lo, hi);
    nt_data_free(&a);
    nt_spec_free(&s);
}
