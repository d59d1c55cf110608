/* test_identities.c: the catalogue and its identities.  Every built-in entry holds at
 * random theta for models covering every activation, loss, bias and weight-decay setting;
 * transformations that are not symmetries fail with large residuals; dense twins agree with
 * the structured operators; the homogeneous closed forms of docs/theory.md §3; fixed points. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include <cJSON.h>
#include "helpers.h"

static void setup(model_fixture *f, int input, int n_hidden, const int *widths, nt_act act, int K,
                  nt_loss loss, int bias, double wd, uint64_t seed)
{
    mf_new(f, input, n_hidden, widths, act, K, loss, bias, wd, 31, 13, 5, seed);
}

static void teardown(model_fixture *f) { mf_free(f); }

static nt_check_result *run(model_fixture *f, nt_transform *list, int n, int *count)
{
    *count = nt_check_count(list, n);
    nt_check_result *r = malloc(sizeof *r * (size_t)*count);
    t_check(f->e, &f->m, &f->ds, f->theta, list, n, 1e-10, r);
    return r;
}

static int has_kind(const model_fixture *f, nt_transform_kind k)
{
    for (int i = 0; i < f->n; i++) if (f->list[i].kind == k) return 1;
    return 0;
}

/* Every activation x loss, with and without biases and weight decay: every entry holds. */
Test(identities, catalogue_holds_everywhere)
{
    int kinds_seen[NT_TR_KIND_COUNT] = {0}, total = 0;
    double worst = 0;
    for (int a = 0; a < NT_ACT_COUNT; a++)
        for (int l = 0; l < NT_LOSS_COUNT; l++)
            for (int v = 0; v < 2; v++) {
                model_fixture f;
                int K = (l == NT_LOSS_LOGISTIC || l == NT_LOSS_EXPONENTIAL) ? 1 : 3;
                setup(&f, 3, 2, (int[]){4, 3}, (nt_act)a, K, (nt_loss)l, v == 0, v ? 0.02 : 0.0, 10 * a + l);
                int count;
                nt_check_result *r = run(&f, f.list, f.n, &count);
                for (int i = 0; i < count; i++) {
                    cr_expect(r[i].holds, "%s/%s/%s: %s: first %.2e second %.2e fixed %.2e %.2e",
                              nt_act_name(a), nt_loss_name(l), v ? "wd" : "bias", r[i].name,
                              r[i].first_order, r[i].second_order, r[i].fixed_gradient, r[i].fixed_hessian);
                    worst = fmax(worst, fmax(r[i].first_order, r[i].second_order));
                    kinds_seen[f.list[r[i].entry].kind]++;
                }
                total += count;
                free(r);
                teardown(&f);
            }
    for (int k = 0; k < NT_TR_DENSE; k++)   /* the normalizations' own: test_norm.c; attention's: test_attention.c */
        if (k != NT_TR_SCALE && k != NT_TR_UNIT_SCALE && k != NT_TR_NORM_SHIFT && k != NT_TR_GL_QK && k != NT_TR_GL_VO &&
            k != NT_TR_HEAD_SWAP)
            cr_expect_gt(kinds_seen[k], 0, "kind %d never occurred", k);
    cr_log_info("%d identities over 8 activations x 4 losses x 2 settings: worst residual %.2e", total, worst);
}

/* Which entries the structure implies (and no others). */
Test(identities, catalogue_follows_the_layers)
{
    model_fixture f;
    setup(&f, 3, 2, (int[]){4, 3}, NT_ACT_TANH, 3, NT_LOSS_MSE, 1, 0, 1);
    cr_expect(!has_kind(&f, NT_TR_RESCALE) && !has_kind(&f, NT_TR_HOMOGENEOUS) && !has_kind(&f, NT_TR_GL));
    cr_expect(has_kind(&f, NT_TR_SIGN_FLIP) && has_kind(&f, NT_TR_SWAP) && !has_kind(&f, NT_TR_TRANSLATION));
    cr_expect_eq(f.n, 3 + 2 + 4 + 3 + 2, "swaps 3+2, flips 4+3, output swaps 2: got %d", f.n);
    teardown(&f);
    setup(&f, 3, 2, (int[]){4, 3}, NT_ACT_IDENTITY, 2, NT_LOSS_CROSS_ENTROPY, 0, 0, 2);
    cr_expect(has_kind(&f, NT_TR_GL) && has_kind(&f, NT_TR_TRANSLATION) && has_kind(&f, NT_TR_HOMOGENEOUS));
    for (int i = 0; i < f.n; i++) {
        if (f.list[i].kind == NT_TR_GL) cr_expect(f.list[i].generators == 16 || f.list[i].generators == 9);
        if (f.list[i].kind == NT_TR_HOMOGENEOUS) cr_expect_eq(f.list[i].p, 3.0, "bias-free linear, 3 layers: k = 3");
        if (f.list[i].kind == NT_TR_TRANSLATION) cr_expect_eq(f.list[i].generators, 3, "no bias: one per column");
    }
    teardown(&f);
    setup(&f, 3, 1, (int[]){4}, NT_ACT_SQUARE, 1, NT_LOSS_MSE, 0, 0, 3);
    for (int i = 0; i < f.n; i++) {
        if (f.list[i].kind == NT_TR_HOMOGENEOUS) cr_expect_eq(f.list[i].p, 3.0, "square doubles: k = 2*1 + 1");
        if (f.list[i].kind == NT_TR_RESCALE) cr_expect_eq(f.list[i].p, 2.0);
    }
    cr_expect(has_kind(&f, NT_TR_HOMOGENEOUS) && !has_kind(&f, NT_TR_SIGN_FLIP));
    teardown(&f);
}

/* Transformations that are not symmetries of the model fail: a sign flip under relu, a
 * rescaling under tanh, a translation under mse, a random generator, a swap across layers. */
Test(identities, negative_controls_fail)
{
    model_fixture f;
    setup(&f, 3, 2, (int[]){4, 4}, NT_ACT_RELU, 3, NT_LOSS_MSE, 1, 0, 5);
    const int64_t d = f.m.d;
    nt_transform bad[5] = {
        {.name = "sign_flip under relu", .kind = NT_TR_SIGN_FLIP, .discrete = 1, .generators = 1, .layer = 1, .a = 2},
        {.name = "translation under mse", .kind = NT_TR_TRANSLATION, .generators = 5, .layer = 3},
        {.name = "random generator", .kind = NT_TR_DENSE, .generators = 1},
        {.name = "swap across layers", .kind = NT_TR_DENSE, .discrete = 1, .generators = 1},
    };
    bad[2].A = malloc(sizeof(double) * d * d);
    fill_normal(bad[2].A, d * d, 1.0, 6);
    /* T exchanges unit 0 of layer 1 (row of W1, b1) with unit 0 of layer 2 (row of W2, b2):
     * rows of different widths (3 and 4) can only be swapped in their first 3 entries */
    double *T = calloc((size_t)(d * d), sizeof(double));
    for (int64_t i = 0; i < d; i++) T[i * d + i] = 1;
    int64_t r1 = 0, r2 = 3 * 4 + 4;   /* W1 row 0 at 0, W2 row 0 at 16 */
    for (int j = 0; j < 3; j++) {
        int64_t a = r1 + j, b = r2 + j;
        T[a * d + a] = T[b * d + b] = 0;
        T[a * d + b] = T[b * d + a] = 1;
    }
    bad[3].A = T;
    int count;
    nt_check_result *r = run(&f, bad, 4, &count);
    for (int i = 0; i < count; i++) {
        double worst = fmax(r[i].first_order, r[i].second_order);
        cr_expect(!r[i].holds, "%s holds", r[i].name);
        cr_expect_geq(worst, 1e-3, "%s: residual only %.2e", r[i].name, worst);
        cr_log_info("negative control %s: first %.2e second %.2e", r[i].name, r[i].first_order, r[i].second_order);
    }
    free(r);
    free(bad[2].A); free(bad[3].A);
    teardown(&f);
    /* a rescaling and a bias shift under tanh (both need a homogeneous or linear activation) */
    setup(&f, 3, 1, (int[]){4}, NT_ACT_TANH, 2, NT_LOSS_CROSS_ENTROPY, 1, 0, 7);
    nt_transform rs[2] = {{.name = "rescale under tanh", .kind = NT_TR_RESCALE, .generators = 1, .layer = 1, .a = 1, .p = 1},
                          {.name = "bias shift under tanh", .kind = NT_TR_BIAS_SHIFT, .generators = 4, .layer = 1}};
    r = run(&f, rs, 2, &count);
    for (int i = 0; i < count; i++)
        cr_expect(!r[i].holds && fmax(r[i].first_order, r[i].second_order) >= 1e-3, "%s: %.2e %.2e", r[i].name,
                  r[i].first_order, r[i].second_order);
    free(r);
    teardown(&f);
}

/* The dense twin of each built-in operator (A e_j or T e_j column by column) gives the same
 * residuals to round-off. */
Test(identities, dense_twin_agrees)
{
    model_fixture f;
    setup(&f, 3, 2, (int[]){4, 3}, NT_ACT_IDENTITY, 3, NT_LOSS_CROSS_ENTROPY, 1, 0.01, 8);
    const int64_t d = f.m.d;
    double *x = calloc((size_t)d, sizeof(double)), *col = malloc(sizeof(double) * d);
    for (int i = 0; i < f.n; i++) {
        const nt_transform *t = &f.list[i];
        int gens = t->discrete ? 1 : t->generators;
        for (int gi = 0; gi < gens && gi < 3; gi++) {
            nt_transform twin = {.kind = NT_TR_DENSE, .discrete = t->discrete, .equivariance = t->equivariance, .generators = 1};
            strcpy(twin.name, "twin");
            twin.A = malloc(sizeof(double) * d * d);
            for (int64_t j = 0; j < d; j++) {   /* column j of the operator */
                x[j] = 1;
                if (t->discrete) nt_tr_apply_T(&f.m, t, x, col);
                else nt_tr_apply_A(&f.m, t, gi, x, col);
                x[j] = 0;
                for (int64_t r = 0; r < d; r++) twin.A[r * d + j] = col[r];
            }
            const int K = f.m.output;
            twin.B = malloc(sizeof(double) * K * K);
            if (t->discrete) nt_tr_output_rho(&f.m, t, twin.B);
            else nt_tr_output_B(&f.m, t, gi, twin.B);
            if (!t->discrete) {   /* c = xi(0) */
                twin.c = malloc(sizeof(double) * d);
                nt_tr_xi(&f.m, t, gi, x, twin.c);
            }
            int c2;
            nt_check_result *a = malloc(sizeof *a * (size_t)nt_check_count(t, 1));
            t_check(f.e, &f.m, &f.ds, f.theta, t, 1, 1e-10, a);
            nt_check_result *b = run(&f, &twin, 1, &c2);
            const int c1 = t->discrete ? 0 : gi;   /* the built-in's result for generator gi */
            cr_expect_leq(fabs(a[c1].first_order - b[0].first_order), 1e-14, "%s: %.3e vs %.3e", a[c1].name,
                          a[c1].first_order, b[0].first_order);
            cr_expect_leq(fabs(a[c1].second_order - b[0].second_order), 1e-14, "%s: %.3e vs %.3e", a[c1].name,
                          a[c1].second_order, b[0].second_order);
            cr_expect(b[0].holds, "the twin of %s does not hold", a[c1].name);
            free(a); free(b);
            free(twin.A); free(twin.B); free(twin.c);
        }
    }
    free(x); free(col);
    teardown(&f);
}

/* docs/theory.md §3 for a k-homogeneous model (xi = theta, B = k I), no weight decay:
 *   H theta = (k-1) g + k E[J^T U f],   theta^T H theta = k(k-1) E[u^T f] + k^2 E[f^T U f]. */
static void homogeneous_closed_form(int n_hidden, const int *w, nt_act act, double k_expected, nt_loss loss)
{
    model_fixture f;
    int K = loss == NT_LOSS_MSE ? 2 : 1;
    setup(&f, 3, n_hidden, w, act, K, loss, 0, 0.0, 20 + n_hidden);
    const int64_t d = f.m.d, N = f.ds.n;
    double k = 0;
    for (int i = 0; i < f.n; i++) if (f.list[i].kind == NT_TR_HOMOGENEOUS) k = f.list[i].p;
    cr_assert_eq(k, k_expected);
    double *g = malloc(sizeof(double) * d), *Ht = malloc(sizeof(double) * d), *JUf = malloc(sizeof(double) * d);
    double *F = malloc(sizeof(double) * N * K), *seed = malloc(sizeof(double) * N * K), *rhs = malloc(sizeof(double) * d);
    t_hvp(f.e, f.theta, &f.ds, 1, f.theta, Ht, g);
    t_outputs(f.e, f.theta, &f.ds, F);
    double uf = 0, fUf = 0;
    for (int64_t n = 0; n < N; n++) {
        double u[2];
        nt_loss_eval(f.m.loss, K, F + n * K, f.ds.y + n * f.ds.ydim, u);
        nt_loss_hess_apply(f.m.loss, K, F + n * K, f.ds.y + n * f.ds.ydim, F + n * K, seed + n * K);
        for (int j = 0; j < K; j++) { uf += u[j] * F[n * K + j]; fUf += F[n * K + j] * seed[n * K + j]; }
    }
    uf /= N; fUf /= N;
    t_vjp(f.e, f.theta, &f.ds, seed, JUf);
    for (int64_t i = 0; i < d; i++) rhs[i] = (k - 1) * g[i] + k * JUf[i] / N;
    double e1 = nt_rel_diff(d, Ht, rhs);
    double tHt = 0;
    for (int64_t i = 0; i < d; i++) tHt += f.theta[i] * Ht[i];
    double closed = k * (k - 1) * uf + k * k * fUf, e2 = fabs(tHt - closed) / (fabs(tHt) + fabs(closed));
    cr_expect_leq(e1, 1e-12, "k=%g: H theta vs closed form %.3e", k, e1);
    cr_expect_leq(e2, 1e-12, "k=%g: theta^T H theta %.17g vs %.17g", k, tHt, closed);
    /* control: the closed form with the wrong degree does not hold */
    for (int64_t i = 0; i < d; i++) rhs[i] = (k - 2) * g[i] + (k - 1) * JUf[i] / N;
    cr_expect_gt(nt_rel_diff(d, Ht, rhs), 1e-3);
    cr_log_info("homogeneous k=%g (%s): H theta %.1e, theta^T H theta %.1e", k, nt_loss_name(loss), e1, e2);
    free(g); free(Ht); free(JUf); free(F); free(seed); free(rhs);
    teardown(&f);
}

Test(identities, homogeneous_closed_forms)
{
    homogeneous_closed_form(1, (int[]){5}, NT_ACT_RELU, 2, NT_LOSS_MSE);
    homogeneous_closed_form(2, (int[]){5, 4}, NT_ACT_LEAKY_RELU, 3, NT_LOSS_EXPONENTIAL);
    homogeneous_closed_form(1, (int[]){4}, NT_ACT_SQUARE, 3, NT_LOSS_LOGISTIC);
}

/* At a fixed point (two equal units; a dead odd unit) T g = g and T H v = H T v to
 * round-off; off the fixed point they do not. */
Test(identities, fixed_points)
{
    model_fixture f;
    setup(&f, 3, 1, (int[]){5}, NT_ACT_TANH, 3, NT_LOSS_CROSS_ENTROPY, 1, 0.0, 30);
    const int64_t d = f.m.d;
    double *tt = malloc(sizeof(double) * d), *g = malloc(sizeof(double) * d), *Tg = malloc(sizeof(double) * d);
    double *V = malloc(sizeof(double) * 2 * d), *HV = malloc(sizeof(double) * 2 * d), *THv = malloc(sizeof(double) * d);
    fill_normal(V, d, 1.0, 31);
    for (int i = 0; i < f.n; i++) {
        const nt_transform *t = &f.list[i];
        if (!t->discrete || t->equivariance) continue;
        for (int at_fixed = 0; at_fixed < 2; at_fixed++) {
            nt_tr_apply_T(&f.m, t, f.theta, tt);
            for (int64_t j = 0; j < d; j++) tt[j] = at_fixed ? 0.5 * (f.theta[j] + tt[j]) : f.theta[j];
            nt_tr_apply_T(&f.m, t, V, V + d);
            t_hvp(f.e, tt, &f.ds, 2, V, HV, g);
            nt_tr_apply_T(&f.m, t, g, Tg);
            nt_tr_apply_T(&f.m, t, HV, THv);
            double eg = nt_rel_diff(d, Tg, g), eh = nt_rel_diff(d, THv, HV + d);
            if (at_fixed) {
                cr_expect_leq(eg, 1e-14, "%s: T g = g at the fixed point: %.2e", t->name, eg);
                cr_expect_leq(eh, 1e-14, "%s: T H v = H T v at the fixed point: %.2e", t->name, eh);
            } else {
                cr_expect_geq(eg, 1e-3, "%s: T g = g off the fixed point?", t->name);
                cr_expect_geq(eh, 1e-3, "%s: T H v = H T v off the fixed point?", t->name);
            }
        }
    }
    free(tt); free(g); free(Tg); free(V); free(HV); free(THv);
    teardown(&f);
}

/* ---- the commands, as processes ------------------------------------------------------ */

/* spec.json in dir for a relu MLP 3-4-3 with teacher data, plus `extra` top-level JSON */
static void write_spec(const char *dir, const char *extra, char *spec)
{
    char json[2048];
    snprintf(json, sizeof json,
             "{\"model\": {\"input\": 3, \"layers\": [{\"dense\": 4}, {\"act\": \"relu\"}, {\"dense\": 3}],"
             " \"loss\": \"cross_entropy\"}, \"data\": {\"source\": \"teacher\", \"n\": 40, \"seed\": 1},"
             " \"init\": {\"seed\": 2, \"bias_std\": 0.3}%s}", extra);
    path_join(spec, dir, "spec.json");
    write_text(spec, json);
}

static cJSON *run_json(const char *args, int want_rc)
{
    char *out, *err;
    int rc = run_noether(args, &out, &err);
    cr_assert_eq(rc, want_rc, "noether %s: exit %d, want %d; stderr: %s", args, rc, want_rc, err);
    cJSON *doc = cJSON_Parse(out);
    cr_assert_not_null(doc, "not JSON: %s", out);
    free(out);
    free(err);
    return doc;
}

Test(identities_cli, symmetries_and_check_json)
{
    char dir[256], spec[NT_PATH_MAX], args[NT_PATH_MAX + 64];
    tmpdir_new(dir);
    write_spec(dir, "", spec);
    snprintf(args, sizeof args, "symmetries %s --json", spec);
    cJSON *doc = run_json(args, 0);
    cr_expect_eq(cJSON_GetObjectItem(doc, "d")->valueint, 3 * 4 + 4 + 4 * 3 + 3);
    cJSON *arr = cJSON_GetObjectItem(doc, "transformations");
    /* rescale x4, swaps x3, translation (4 columns + bias), homogeneous, output swaps x2 */
    cr_expect_eq(cJSON_GetArraySize(arr), 4 + 3 + 1 + 1 + 2);
    cJSON *first = cJSON_GetArrayItem(arr, 0);
    cr_expect_str_eq(cJSON_GetObjectItem(first, "name")->valuestring, "rescale[layer=1,unit=0]");
    cr_expect_str_eq(cJSON_GetObjectItem(first, "kind")->valuestring, "continuous");
    cr_expect_str_eq(cJSON_GetObjectItem(first, "type")->valuestring, "symmetry");
    cr_expect_eq(cJSON_GetObjectItem(first, "generators")->valueint, 1);
    cJSON_Delete(doc);
    snprintf(args, sizeof args, "check %s --json", spec);
    doc = run_json(args, 0);
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(doc, "all_hold")));
    arr = cJSON_GetObjectItem(doc, "transformations");
    cr_expect_eq(cJSON_GetArraySize(arr), 4 + 3 + 5 + 1 + 2, "one entry per generator");
    cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(it, "holds")), "%s", cJSON_GetObjectItem(it, "name")->valuestring);
        cr_expect_leq(cJSON_GetObjectItem(it, "first_order_residual")->valuedouble, 1e-10);
        cr_expect_leq(cJSON_GetObjectItem(it, "second_order_residual")->valuedouble, 1e-10);
    }
    cJSON_Delete(doc);
}

/* user-declared: a dense twin of swap(0,1) holds; a random generator fails with exit 3;
 * a matrix of the wrong size is bad input (exit 2, naming the file) */
Test(identities_cli, user_declared)
{
    char dir[256], spec[NT_PATH_MAX], args[NT_PATH_MAX + 64], T[NT_PATH_MAX], A[NT_PATH_MAX], S[NT_PATH_MAX];
    tmpdir_new(dir);
    const int64_t d = 31;
    double *M = calloc((size_t)(d * d), sizeof(double));
    nt_error err;
    /* swap units 0 and 1 of the hidden layer: rows 0,1 of W1 (3 each), b1[0], b1[1], columns 0,1 of W2 */
    for (int64_t i = 0; i < d; i++) M[i * d + i] = 1;
    int64_t pairs[][2] = {{0, 3}, {1, 4}, {2, 5}, {12, 13}, {16, 17}, {20, 21}, {24, 25}};
    for (size_t p = 0; p < sizeof pairs / sizeof *pairs; p++) {
        int64_t a = pairs[p][0], b = pairs[p][1];
        M[a * d + a] = M[b * d + b] = 0;
        M[a * d + b] = M[b * d + a] = 1;
    }
    path_join(T, dir, "T.npy");
    cr_assert_eq(nt_npy_write(T, M, 2, (int64_t[]){d, d}, &err), NT_OK);
    fill_normal(M, d * d, 1.0, 40);
    path_join(A, dir, "A.npy");
    cr_assert_eq(nt_npy_write(A, M, 2, (int64_t[]){d, d}, &err), NT_OK);
    path_join(S, dir, "small.npy");
    cr_assert_eq(nt_npy_write(S, M, 2, (int64_t[]){5, 5}, &err), NT_OK);
    free(M);
    write_spec(dir, ", \"transformations\": [{\"name\": \"my_swap\", \"kind\": \"discrete\", \"matrix\": \"T.npy\"}]", spec);
    snprintf(args, sizeof args, "check %s --json", spec);
    cJSON *doc = run_json(args, 0), *it, *mine = NULL;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(doc, "transformations"))
        if (!strcmp(cJSON_GetObjectItem(it, "name")->valuestring, "my_swap")) mine = it;
    cr_assert_not_null(mine);
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(mine, "holds")));
    cJSON_Delete(doc);
    write_spec(dir, ", \"transformations\": [{\"name\": \"random\", \"kind\": \"continuous\", \"generator\": \"A.npy\"}]", spec);
    doc = run_json(args, 3);
    cr_expect(cJSON_IsFalse(cJSON_GetObjectItem(doc, "all_hold")));
    mine = NULL;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(doc, "transformations"))
        if (!strcmp(cJSON_GetObjectItem(it, "name")->valuestring, "random")) mine = it;
    cr_assert_not_null(mine);
    cr_expect(cJSON_IsFalse(cJSON_GetObjectItem(mine, "holds")));
    cr_expect_geq(cJSON_GetObjectItem(mine, "first_order_residual")->valuedouble, 1e-3);
    cJSON_Delete(doc);
    write_spec(dir, ", \"transformations\": [{\"name\": \"bad\", \"kind\": \"continuous\", \"generator\": \"small.npy\"}]", spec);
    char *out, *errs;
    cr_expect_eq(run_noether(args, &out, &errs), 2);
    cr_expect_not_null(strstr(errs, "small.npy"), "%s", errs);
    cr_expect_not_null(strstr(errs, "(31, 31)"), "%s", errs);
    free(out); free(errs);
}
