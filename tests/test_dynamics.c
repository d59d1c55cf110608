/* test_dynamics.c: training and its ledger.  (F3) is exact algebra, so measured and
 * predicted quantities agree to round-off for every optimizer; the test proves that each
 * term is needed (the O(eta^2) term, Adam's first-order term), that the first-order term
 * vanishes exactly where the structure says it must, and that the gradient-flow law (F2),
 * computed from R on the model's outputs, differs from the measured trajectory by the
 * O(eta^2) term alone under GD without weight decay. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include <cJSON.h>
#include "helpers.h"

typedef struct {
    nt_spec spec;
    nt_data data;
    double *theta;
    nt_transform *list;
    int n_list;
    nt_quantity *q;
    int nq;
} run;

/* trains the model of `model_json` on teacher data with the optimizer line `train_json` */
static void train(run *r, const char *model_json, const char *train_json, double wd)
{
    char json[2048];
    snprintf(json, sizeof json,
             "{\"model\": %s, \"data\": {\"source\": \"teacher\", \"n\": 64, \"seed\": 3},"
             " \"init\": {\"seed\": 1, \"bias_std\": 0.2}, \"weight_decay\": %g, \"train\": %s}",
             model_json, wd, train_json);
    nt_error err = {0};
    cr_assert_eq(nt_spec_parse(json, "test.json", &r->spec, &err), NT_OK, "%s", err.msg);
    cr_assert_eq(nt_data_load(&r->spec, &r->data, &err), NT_OK, "%s", err.msg);
    r->theta = malloc(sizeof(double) * r->spec.model.d);
    nt_init_params(&r->spec.model, &r->spec.init, r->theta);
    nt_catalogue(&r->spec.model, &r->list, &r->n_list);
    nt_ledger_quantities(&r->spec.model, r->list, r->n_list, &r->q, &r->nq);
    cr_assert_gt(r->nq, 0);
    cr_assert_eq(nt_train(&r->spec, &r->data, r->list, r->n_list, r->theta, r->q, r->nq, NULL, NULL, &err), NT_OK, "%s", err.msg);
}

static void done(run *r)
{
    free(r->q);
    nt_transforms_free(r->list, r->n_list);
    free(r->theta);
    nt_data_free(&r->data);
    nt_spec_free(&r->spec);
}

static const char relu_ce[] = "{\"input\": 5, \"layers\": [{\"dense\": 6}, {\"act\": \"relu\"}, {\"dense\": 4},"
                              " {\"act\": \"relu\"}, {\"dense\": 3}], \"loss\": \"cross_entropy\"}";
static const char linear_mse[] = "{\"input\": 5, \"layers\": [{\"dense\": 4}, {\"dense\": 3}, {\"act\": \"identity\"},"
                                 " {\"dense\": 2}], \"loss\": \"mse\"}";

static double worst_gap(const run *r)
{
    double w = 0;
    for (int j = 0; j < r->nq; j++) w = fmax(w, r->q[j].max_gap);
    return w;
}

/* GD, SGD and momentum, with and without weight decay, over 1000 steps: the ledger closes
 * for every quantity (rescalings, translations, homogeneity, gl(n) entries). */
Test(dynamics, ledger_closes_for_gd_sgd_momentum)
{
    const char *opts[] = {
        "{\"optimizer\": \"gd\", \"lr\": 0.05, \"steps\": 1000}",
        "{\"optimizer\": \"sgd\", \"lr\": 0.05, \"steps\": 1000, \"batch\": 16, \"seed\": 4}",
        "{\"optimizer\": \"momentum\", \"lr\": 0.02, \"momentum\": 0.9, \"steps\": 1000, \"batch\": 16}",
    };
    const char *models[] = {relu_ce, linear_mse};
    for (int m = 0; m < 2; m++)
        for (int o = 0; o < 3; o++)
            for (int w = 0; w < 2; w++) {
                run r;
                train(&r, models[m], opts[o], w ? 0.01 : 0.0);
                double gap = worst_gap(&r);
                cr_expect_leq(gap, 1e-10, "model %d, %s, wd %d: ledger gap %.3e", m, opts[o], w, gap);
                cr_log_info("model %d optimizer %d wd %d: %d quantities, worst gap %.2e", m, o, w, r.nq, gap);
                done(&r);
            }
}

/* The O(eta^2) term is needed: without it the ledger would be off far above round-off.
 * Under GD on a symmetry without weight decay the first-order term is zero to round-off
 * (g^T xi = 0), so the whole change of Q is the O(eta^2) term. */
Test(dynamics, second_order_term_is_needed)
{
    run r;
    train(&r, relu_ce, "{\"optimizer\": \"gd\", \"lr\": 0.1, \"steps\": 1000}", 0.0);
    int symmetric = 0;
    for (int j = 0; j < r.nq; j++) {
        const nt_quantity *Q = &r.q[j];
        if (Q->equivariance) continue;
        symmetric++;
        cr_expect_leq(fabs(Q->first), 1e-12 * Q->size, "%s: first-order term %.3e on a symmetry", Q->name, Q->first);
        cr_expect_eq(Q->decay, 0.0);
        /* the change of Q and the O(eta^2) sum are the same, and far from zero ... */
        double change = Q->measured - (Q->predicted - Q->first - Q->decay - Q->second);
        cr_expect_leq(fabs(change - Q->second), 1e-10 * Q->size, "%s", Q->name);
        /* ... for the rescalings (translations have A = 0: no second-order term) */
        if (r.list[Q->entry].kind == NT_TR_RESCALE)
            cr_expect_geq(fabs(Q->second), 1e-6 * Q->size, "%s: O(eta^2) term only %.3e", Q->name, Q->second);
    }
    cr_expect_gt(symmetric, 0);
    done(&r);
}

/* Adam: the preconditioner does not commute with A, so the first-order term of a symmetry
 * is not zero; the ledger still closes. */
Test(dynamics, adam_first_order_term)
{
    run r;
    train(&r, relu_ce, "{\"optimizer\": \"adam\", \"lr\": 0.01, \"steps\": 1000, \"batch\": 16}", 0.001);
    cr_expect_leq(worst_gap(&r), 1e-10, "adam ledger gap %.3e", worst_gap(&r));
    double largest = 0;
    for (int j = 0; j < r.nq; j++)
        if (r.list[r.q[j].entry].kind == NT_TR_RESCALE) largest = fmax(largest, fabs(r.q[j].first) / r.q[j].size);
    cr_expect_geq(largest, 1e-3, "Adam's first-order term is only %.3e of the scale", largest);
    done(&r);
}

/* Negative control: the rescaling of a tanh unit is not a symmetry; its first-order term
 * under GD is far from zero (while the same bookkeeping gives zero for relu above). */
Test(dynamics, first_order_term_detects_a_broken_symmetry)
{
    run r;
    train(&r, "{\"input\": 5, \"layers\": [{\"dense\": 6}, {\"act\": \"tanh\"}, {\"dense\": 3}], \"loss\": \"cross_entropy\"}",
          "{\"optimizer\": \"gd\", \"lr\": 0.05, \"steps\": 200}", 0.0);
    /* tanh has no rescaling in its catalogue; ask for one anyway */
    nt_transform rs = {.name = "rescale under tanh", .kind = NT_TR_RESCALE, .generators = 1, .layer = 1, .a = 0, .p = 1};
    nt_quantity *q;
    int nq;
    nt_ledger_quantities(&r.spec.model, &rs, 1, &q, &nq);
    nt_error err;
    nt_init_params(&r.spec.model, &r.spec.init, r.theta);
    cr_assert_eq(nt_train(&r.spec, &r.data, &rs, 1, r.theta, q, nq, NULL, NULL, &err), NT_OK);
    cr_expect_geq(fabs(q[0].first), 1e-3 * q[0].size, "first-order term %.3e", q[0].first);
    cr_expect_leq(q[0].max_gap, 1e-10, "the ledger itself still closes");
    free(q);
    done(&r);
}

/* (F2) along the run without weight decay: under GD, Q_GF = Q0 - sum lr R(theta_k) with R from
 * the outputs, while (F3)'s first-order terms use the gradient; by (F1) they agree, so
 * measured - gradient_flow = the O(eta^2) sum, for symmetries and for the homogeneous
 * equivariance (R != 0).  (With gamma > 0 the column is the exact decay law, not a re-summed
 * GD path: test_truth.c.) */
Test(dynamics, gradient_flow_law_differs_by_the_second_order_term)
{
    run r;
    train(&r, "{\"input\": 5, \"layers\": [{\"dense\": 6, \"bias\": false}, {\"act\": \"relu\"}, {\"dense\": 1, \"bias\": false}],"
              " \"loss\": \"exponential\"}", "{\"optimizer\": \"gd\", \"lr\": 0.05, \"steps\": 500}", 0.0);
    int seen_equivariance = 0;
    for (int j = 0; j < r.nq; j++) {
        const nt_quantity *Q = &r.q[j];
        seen_equivariance |= Q->equivariance;
        double diff = (Q->measured - Q->gradient_flow) - Q->second;
        cr_expect_leq(fabs(diff), 1e-10 * Q->size, "%s: measured - GF - O(eta^2) = %.3e", Q->name, diff);
        if (Q->equivariance) cr_expect_geq(fabs(Q->first), 1e-3 * Q->size, "the R-term of %s is zero?", Q->name);
    }
    cr_expect(seen_equivariance, "the homogeneous norm is in the ledger");
    done(&r);
}

/* The command: files written, ledger.csv with a row per logged step, summary.json with the
 * gap; a diverging run stops with the step named and keeps finite parameters. */
Test(dynamics, train_command)
{
    char dir[256], spec[NT_PATH_MAX], args[3 * NT_PATH_MAX], path[NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(spec, dir, "spec.json");
    char json[1024];
    snprintf(json, sizeof json, "{\"model\": %s, \"data\": {\"source\": \"builtin\", \"name\": \"iris\", \"standardize\": true,"
             " \"test_fraction\": 0.2}, \"train\": {\"optimizer\": \"sgd\", \"lr\": 0.05, \"steps\": 300, \"batch\": 16,"
             " \"log_every\": 50}}", "{\"input\": 4, \"layers\": [{\"dense\": 8}, {\"act\": \"relu\"}, {\"dense\": 3}], \"loss\": \"cross_entropy\"}");
    write_text(spec, json);
    snprintf(args, sizeof args, "train %s -o %s/out --quiet", spec, dir);
    char *out, *err;
    cr_assert_eq(run_noether(args, &out, &err), 0, "%s", err);
    free(out); free(err);
    const char *files[] = {"params_init.npy", "params_final.npy", "ledger.csv", "summary.json"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/out/%s", dir, files[i]);
        FILE *f = fopen(path, "r");
        cr_expect_not_null(f, "%s missing", files[i]);
        if (f) fclose(f);
    }
    snprintf(path, sizeof path, "%s/out/ledger.csv", dir);
    FILE *f = fopen(path, "r");
    int lines = 0, c;
    while ((c = fgetc(f)) != EOF) lines += c == '\n';
    fclose(f);
    cr_expect_eq(lines, 1 + 7, "header + steps 0, 50, ..., 300");
    snprintf(path, sizeof path, "%s/out/summary.json", dir);
    f = fopen(path, "r");
    char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    cJSON *doc = cJSON_Parse(buf);
    cr_assert_not_null(doc);
    cr_expect_leq(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "ledger"), "max_gap")->valuedouble, 1e-10);
    cr_expect_geq(cJSON_GetObjectItem(doc, "test_accuracy")->valuedouble, 0.8, "iris is learnable");
    cJSON_Delete(doc);
    /* divergence: a learning rate far too large */
    snprintf(json, sizeof json, "{\"model\": {\"input\": 4, \"layers\": [{\"dense\": 8}, {\"act\": \"square\"}, {\"dense\": 3}],"
             " \"loss\": \"mse\"}, \"data\": {\"source\": \"builtin\", \"name\": \"iris\"}, \"train\": {\"optimizer\": \"gd\","
             " \"lr\": 50, \"steps\": 300}}");
    write_text(spec, json);
    snprintf(args, sizeof args, "train %s -o %s/div --quiet", spec, dir);
    cr_expect_eq(run_noether(args, &out, &err), 1);
    cr_expect_not_null(strstr(err, "step "), "%s", err);
    cr_expect_not_null(strstr(err, "not finite"), "%s", err);
    free(out); free(err);
    snprintf(path, sizeof path, "%s/div/params_final.npy", dir);
    nt_array a = {0};
    nt_error e;
    cr_assert_eq(nt_npy_read(path, &a, &e), NT_OK, "%s", e.msg);   /* the reader refuses non-finite values */
    nt_array_free(&a);
}

/* ---- fixed points, the gradient-flow limit, real data --------------------------------- */

/* runs `noether train` on a spec text in a fresh folder and returns summary.json */
static cJSON *train_cli(const char *json)
{
    char dir[256], spec[NT_PATH_MAX], args[3 * NT_PATH_MAX], path[NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(spec, dir, "spec.json");
    write_text(spec, json);
    snprintf(args, sizeof args, "train %s -o %s/out --quiet", spec, dir);
    char *out, *err;
    int rc = run_noether(args, &out, &err);
    cr_assert_eq(rc, 0, "train failed: %s", err);
    free(out); free(err);
    snprintf(path, sizeof path, "%s/out/summary.json", dir);
    FILE *f = fopen(path, "r");
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    cJSON *doc = cJSON_Parse(buf);
    cr_assert_not_null(doc);
    return doc;
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(o, k);
    cr_assert(cJSON_IsNumber(v), "no number %s", k);
    return v->valuedouble;
}

/* A start on Fix(T) stays there to round-off under GD and SGD (T g = g at a fixed point). */
Test(dynamics, start_on_fixed_point_stays)
{
    const char *opt[] = {"{\"optimizer\": \"gd\", \"lr\": 0.05, \"steps\": 300, \"log_every\": 100}",
                         "{\"optimizer\": \"sgd\", \"lr\": 0.05, \"steps\": 300, \"batch\": 16, \"log_every\": 100}"};
    for (int o = 0; o < 2; o++) {
        char json[1024];
        snprintf(json, sizeof json,
                 "{\"model\": {\"input\": 4, \"layers\": [{\"dense\": 6}, {\"act\": \"tanh\"}, {\"dense\": 3}], \"loss\": \"cross_entropy\"},"
                 " \"data\": {\"source\": \"builtin\", \"name\": \"iris\", \"standardize\": true},"
                 " \"init\": {\"seed\": 1, \"bias_std\": 0.1, \"fixed_point\": [\"swap[layer=0,units=1,2]\", \"sign_flip[layer=0,unit=4]\"]},"
                 " \"weight_decay\": 0.01, \"train\": %s}", opt[o]);
        cJSON *doc = train_cli(json);
        const cJSON *fp = cJSON_GetObjectItem(doc, "fixed_points"), *it;
        cr_assert_eq(cJSON_GetArraySize(fp), 2);
        cJSON_ArrayForEach(it, fp) {
            cr_expect_eq(num(it, "distance_initial"), 0.0, "the start is on Fix(T)");
            cr_expect_leq(num(it, "distance_final"), 1e-14, "%s drifted off Fix(T): %.3e",
                          cJSON_GetObjectItem(it, "name")->valuestring, num(it, "distance_final"));
        }
        cJSON_Delete(doc);
    }
}

/* A perturbed start grows (a dead tanh unit is a saddle without weight decay) or decays
 * (with enough weight decay), as the spectrum of H_gamma on Fix(T)^perp predicts: the
 * sign of the growth, and the distance after the first steps from the linearized map. */
Test(dynamics, perturbed_start_grows_or_decays_as_predicted)
{
    for (int stable = 0; stable < 2; stable++) {
        char json[1024];
        snprintf(json, sizeof json,
                 "{\"model\": {\"input\": 4, \"layers\": [{\"dense\": 6}, {\"act\": \"tanh\"}, {\"dense\": 3}], \"loss\": \"cross_entropy\"},"
                 " \"data\": {\"source\": \"builtin\", \"name\": \"iris\", \"standardize\": true},"
                 " \"init\": {\"seed\": 1, \"fixed_point\": [\"sign_flip[layer=0,unit=2]\"], \"perturb\": 1e-6},"
                 " \"weight_decay\": %g, \"train\": {\"optimizer\": \"gd\", \"lr\": 0.02, \"steps\": 200, \"log_every\": 16}}",
                 stable ? 2.0 : 0.0);
        cJSON *doc = train_cli(json);
        const cJSON *fp = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "fixed_points"), 0);
        cr_assert_not_null(fp);
        int predicted_stable = cJSON_IsTrue(cJSON_GetObjectItem(fp, "stable_predicted"));
        cr_expect_eq(predicted_stable, stable, "predicted %s", predicted_stable ? "stable" : "unstable");
        double d0 = num(fp, "distance_initial"), dT = num(fp, "distance_final");
        cr_expect(stable ? dT < d0 : dT > d0, "distance %.3e -> %.3e", d0, dT);
        double pred = num(fp, "predicted_distance_first_log"), meas = num(fp, "measured_distance_first_log");
        /* the linearization at the start holds while H along the run stays close to H(theta_0):
         * over 16 small steps the prediction must explain most of the motion */
        double error = fabs(pred - meas) / meas, motion = fabs(meas - d0) / d0;
        cr_expect_leq(error, 3e-2, "first-log distance predicted %.6e, measured %.6e", pred, meas);
        cr_expect_leq(error, 0.3 * motion, "the prediction misses %.3f of a motion of %.3f", error, motion);
        cr_log_info("%s: lambda_min %.4f, factor %.4f; distance at step 16 predicted %.6e measured %.6e",
                    stable ? "stable" : "unstable", num(fp, "lambda_min"), num(fp, "predicted_factor"), pred, meas);
        cJSON_Delete(doc);
    }
}

/* The gradient-flow limit: with weight decay and c = 0, Q(t) -> Q0 e^{-2 gamma t} as the
 * step shrinks at fixed t = lr * steps (the gap is the O(lr) effect of the O(lr^2) terms). */
Test(dynamics, gradient_flow_limit)
{
    double err[2];
    const double gam = 0.05, t = 2.0, lrs[2] = {0.02, 0.002};
    for (int k = 0; k < 2; k++) {
        char opt[256];
        snprintf(opt, sizeof opt, "{\"optimizer\": \"gd\", \"lr\": %g, \"steps\": %d, \"log_every\": 1000000}",
                 lrs[k], (int)lround(t / lrs[k]));
        run r;
        train(&r, relu_ce, opt, gam);
        err[k] = 0;
        for (int j = 0; j < r.nq; j++) {
            const nt_quantity *Q = &r.q[j];
            if (r.list[Q->entry].kind != NT_TR_RESCALE) continue;
            double q0 = Q->predicted - Q->first - Q->decay - Q->second;
            err[k] = fmax(err[k], fabs(Q->measured - q0 * exp(-2 * gam * t)) / Q->size);
        }
        done(&r);
    }
    cr_expect_lt(err[1], err[0] / 5, "shrinking the step 10x: gap %.3e -> %.3e", err[0], err[1]);
    cr_expect_lt(err[1], 1e-2, "gap to Q0 e^(-2 gamma t): %.3e", err[1]);
    cr_log_info("Q vs Q0 exp(-2 gamma t): %.2e at lr %.3g, %.2e at lr %.3g", err[0], lrs[0], err[1], lrs[1]);
}

/* Real data end to end: a Fashion-MNIST subset trains to a sensible accuracy with the
 * ledger on (iris and wine: the train command test and the demo). */
Test(dynamics, fashion_mnist_subset, .timeout = 120)
{
    FILE *f = fopen("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", "rb");
    if (!f) cr_skip_test("Debian's dataset-fashion-mnist is not installed");
    fclose(f);
    cJSON *doc = train_cli(
        "{\"model\": {\"input\": 784, \"layers\": [{\"dense\": 32}, {\"act\": \"relu\"}, {\"dense\": 10}], \"loss\": \"cross_entropy\"},"
        " \"data\": {\"source\": \"idx\", \"images\": \"/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz\","
        " \"labels\": \"/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz\","
        " \"test_images\": \"/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz\","
        " \"test_labels\": \"/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz\", \"limit\": 2000},"
        " \"weight_decay\": 0.0001, \"train\": {\"optimizer\": \"sgd\", \"lr\": 0.1, \"steps\": 400, \"batch\": 64, \"log_every\": 100}}");
    double acc = num(doc, "test_accuracy");
    cr_expect_geq(acc, 0.7, "Fashion-MNIST test accuracy %.3f", acc);
    cr_expect_leq(num(cJSON_GetObjectItem(doc, "ledger"), "max_gap"), 1e-10);
    cr_log_info("Fashion-MNIST 2000/2000: test accuracy %.3f", acc);
    cJSON_Delete(doc);
}

/* Implicit bias of a homogeneous network (Lyu & Li): on separable data with the
 * exponential loss, |theta| grows and the normalized margin min y f / |theta|^k rises once
 * the data are separated.  The labels come from a linear teacher, so they are separable. */
typedef struct { int n; double margin[64], norm2[64]; } margins;

static void keep_margin(void *ctx, const nt_train_log *L, const double *theta, const nt_quantity *q, int nq)
{
    margins *M = ctx;
    if (M->n < 64) { M->margin[M->n] = L->margin; M->norm2[M->n++] = L->norm2; }
}

Test(dynamics, normalized_margin_grows)
{
    run r;
    const char *json =
        "{\"model\": {\"input\": 5, \"layers\": [{\"dense\": 8, \"bias\": false}, {\"act\": \"relu\"},"
        " {\"dense\": 1, \"bias\": false}], \"loss\": \"exponential\"},"
        " \"data\": {\"source\": \"teacher\", \"n\": 100, \"seed\": 5, \"hidden\": []},"
        " \"init\": {\"seed\": 2}, \"train\": {\"optimizer\": \"gd\", \"lr\": 0.05, \"steps\": 20000, \"log_every\": 2000}}";
    nt_error err = {0};
    cr_assert_eq(nt_spec_parse(json, "t.json", &r.spec, &err), NT_OK, "%s", err.msg);
    cr_assert_eq(nt_data_load(&r.spec, &r.data, &err), NT_OK, "%s", err.msg);
    r.theta = malloc(sizeof(double) * r.spec.model.d);
    nt_init_params(&r.spec.model, &r.spec.init, r.theta);
    nt_catalogue(&r.spec.model, &r.list, &r.n_list);
    nt_ledger_quantities(&r.spec.model, r.list, r.n_list, &r.q, &r.nq);
    margins M = {0};
    cr_assert_eq(nt_train(&r.spec, &r.data, r.list, r.n_list, r.theta, r.q, r.nq, keep_margin, &M, &err), NT_OK, "%s", err.msg);
    cr_assert_eq(M.n, 11);
    cr_expect_gt(M.margin[M.n - 1], 0, "the data are separated at the end");
    cr_expect_gt(M.margin[M.n - 1], M.margin[M.n / 2], "margin %.4g at the middle, %.4g at the end",
                 M.margin[M.n / 2], M.margin[M.n - 1]);
    cr_expect_gt(M.norm2[M.n - 1], M.norm2[M.n / 2], "the norm grows");
    cr_expect_leq(worst_gap(&r), 1e-10);
    cr_log_info("normalized margin %.4g -> %.4g -> %.4g; |theta|^2 %.4g -> %.4g", M.margin[0], M.margin[M.n / 2],
                M.margin[M.n - 1], M.norm2[0], M.norm2[M.n - 1]);
    done(&r);
}

/* ---- the ledger's forms in one pass with the step (train.c) ---------------------------- */
#include "../src/dynamics/ledger.h"

typedef struct {
    const double *src[3];   /* s, s_decay, theta as they are to be made */
    double *dst[3];
    int64_t cursor, d, skip_lo, skip_hi;   /* made so far; a range left unmade (the control) */
    int calls, in_order, scratch_rows;     /* scratch_rows: ranges made in the ledger's scratch */
} maker;

static void make_range(void *ctx, int64_t lo, int64_t hi, double *const *to)
{
    maker *k = ctx;
    k->calls++;
    k->scratch_rows += to != NULL;
    k->in_order &= lo == k->cursor && hi > lo && hi <= k->d;
    k->cursor = hi;
    for (int v = 0; v < 3; v++)
        for (int64_t i = lo; i < hi; i++)
            if (i < k->skip_lo || i >= k->skip_hi) (to ? to[v] + (i - lo) : k->dst[v] + i)[0] = k->src[v][i];
}

/* A step's four pairs (s, theta), (s_decay, theta), (s, s), (theta, theta) made range by range
 * during the pass: every form equal to the bits of the pass over the same pairs held in
 * separate vectors (the kernel for pairs alone), and to y^T A x quantity by quantity to
 * 1e-13; the ranges made cover [0, d) in order.  The rows of a weight matrix read only
 * through its sums are made in the ledger's scratch, the made vectors' own places left as
 * they were (NaN here: a read of one the plan should have kept would show).  Control: a range
 * of the rows left unmade changes the forms.  Widths 13, 11 and 9 leave tails after the 8-wide loop; the linear
 * network's gl(n) moves are read over their support, the convolution's channels (ranges
 * the row sums do not hold) too. */
Test(dynamics, the_steps_forms_in_one_pass_are_the_pairs_forms)
{
    static const char *models[3] = {
        "{\"input\": 13, \"layers\": [{\"dense\": 11}, {\"act\": \"relu\"}, {\"dense\": 9}, {\"act\": \"relu\"},"
        " {\"dense\": 3}], \"loss\": \"cross_entropy\"}",
        "{\"input\": 13, \"layers\": [{\"dense\": 11}, {\"dense\": 9}, {\"act\": \"identity\"}, {\"dense\": 2}],"
        " \"loss\": \"mse\"}",
        "{\"input\": [2, 6, 6], \"layers\": [{\"conv\": 3, \"kernel\": 3}, {\"act\": \"relu\"}, {\"flatten\": true},"
        " {\"dense\": 5}, {\"act\": \"relu\"}, {\"dense\": 3}], \"loss\": \"cross_entropy\"}" };
    static const char *names[3] = { "relu", "linear", "conv" };
    for (int mi = 0; mi < 3; mi++) {
        char json[1024];
        snprintf(json, sizeof json, "{\"model\": %s, \"data\": {\"source\": \"teacher\", \"n\": 8, \"seed\": 3}}", models[mi]);
        nt_spec spec;
        nt_error err = {0};
        cr_assert_eq(nt_spec_parse(json, "forms.json", &spec, &err), NT_OK, "%s", err.msg);
        const nt_model *m = &spec.model;
        const int64_t d = m->d;
        nt_transform *list = NULL;
        nt_quantity *q = NULL;
        int n_list = 0, nq = 0;
        nt_catalogue(m, &list, &n_list);
        nt_ledger_quantities(m, list, n_list, &q, &nq);
        cr_assert_gt(nq, 0);
        double *src = malloc(sizeof(double) * 6 * d), *made = src + 3 * d;
        fill_normal(src, 3 * d, 1.0, 17 + mi);
        for (int64_t i = 0; i < 3 * d; i++) made[i] = NAN;   /* a read of a place left unmade shows */
        double *step = malloc(sizeof(double) * 5 * nq), *apart = malloc(sizeof(double) * 5 * nq);
        double *ctl = malloc(sizeof(double) * 5 * nq), *copy = malloc(sizeof(double) * 4 * d);
        maker k = { { src, src + d, src + 2 * d }, { made, made + d, made + 2 * d }, 0, d, -1, -1, 0, 1, 0 };
        const double *ys[4] = { made, made + d, made, made + 2 * d }, *xs[4] = { made + 2 * d, made + 2 * d, made, made + 2 * d };
        nt_ledger_plan *plan = nt_ledger_plan_new(m, list, q, nq);
        cr_assert_not_null(plan);
        nt_ledger_forms(m, list, q, plan, 4, ys, xs, step, step + 4 * nq, make_range, &k);
        cr_assert(k.in_order && k.cursor == d, "the ranges made do not cover [0, %lld) in order", (long long)d);
        /* the same pairs in vectors of their own: not a step's, each pair alone */
        for (int v = 0; v < 4; v++) memcpy(copy + v * d, src + (v == 3 ? 2 : v == 2 ? 0 : v) * d, sizeof(double) * d);
        const double *ya[4] = { copy, copy + d, copy + 2 * d, copy + 3 * d };
        double *xa_buf = malloc(sizeof(double) * 3 * d);
        memcpy(xa_buf, src + 2 * d, sizeof(double) * d);
        memcpy(xa_buf + d, src + 2 * d, sizeof(double) * d);
        memcpy(xa_buf + 2 * d, src, sizeof(double) * d);
        const double *xa[4] = { xa_buf, xa_buf + d, xa_buf + 2 * d, copy + 3 * d };
        nt_ledger_forms(m, list, q, plan, 4, ya, xa, apart, apart + 4 * nq, NULL, NULL);
        double worst = 0;
        for (int p = 0; p < 4; p++)
            for (int j = 0; j < nq; j++) {
                cr_assert_eq(step[p * nq + j], apart[p * nq + j], "pair %d, %s: %.17g in the step's pass, %.17g alone",
                             p, q[j].name, step[p * nq + j], apart[p * nq + j]);
                double ref = nt_ledger_bilinear(m, list, &q[j], ya[p], xa[p]);
                worst = fmax(worst, fabs(step[p * nq + j] - ref) / fmax(1, fabs(ref)));
            }
        for (int j = 0; j < nq; j++)   /* Q's magnitude at the last pair's theta, the shift's range read in place */
            cr_assert_eq(step[4 * nq + j], apart[4 * nq + j], "%s: magnitude %.17g in the step's pass, %.17g alone", q[j].name,
                         step[4 * nq + j], apart[4 * nq + j]);
        cr_log_info("%s: %d quantities, 4 pairs: step pass and pairs alone bitwise equal; against y^T A x %.1e; "
                    "%d of %d ranges made in the ledger's scratch", names[mi], nq, worst, k.scratch_rows, k.calls);
        if (mi == 0) cr_assert_gt(k.scratch_rows, 0, "the relu network's rows, read only through their sums, are not made in scratch");
        cr_assert_lt(worst, 1e-13);
        /* control: one row of the first layer left unmade */
        memset(made, 0, sizeof(double) * 3 * d);
        maker bad = k;
        bad.cursor = 0;
        bad.skip_lo = 13;
        bad.skip_hi = 26;
        nt_ledger_forms(m, list, q, plan, 4, ys, xs, ctl, ctl + 4 * nq, make_range, &bad);
        double moved = 0;
        for (int i = 0; i < 4 * nq; i++) moved = fmax(moved, fabs(ctl[i] - step[i]));
        cr_assert_gt(moved, 1e-3, "a row left unmade does not change the forms (%.1e)", moved);
        nt_ledger_plan_free(plan);
        free(src); free(step); free(apart); free(ctl); free(copy); free(xa_buf); free(q);
        nt_transforms_free(list, n_list);
        nt_spec_free(&spec);
    }
}
