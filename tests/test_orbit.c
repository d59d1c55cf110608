/* test_orbit.c: the symmetry predictions of src/spectrum/orbit.c against independent
 * computations: the orbit rank and singular values against a dense SVD of the generator
 * matrix (nt_orbit_basis); the eigenvalues at a critical point of L_gamma against the dense
 * spectrum there (docs/theory.md §3, (S1gamma)); the random-combination (S1gamma) check against a
 * transformation that is not a symmetry. */
#include <criterion/criterion.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "helpers.h"

/* rank and singular values agree with LAPACK's SVD of the dense generator matrix */
static void expect_like_svd(const model_fixture *f, const double *theta, const char *label)
{
    nt_orbit o;
    double *Q, *sv;
    int g, rank = nt_orbit_basis(&f->m, f->list, f->n, theta, 1e-10, &Q, &sv, &g);
    nt_orbit_analyse(&f->m, f->list, f->n, theta, 1e-10, &o);
    cr_expect_eq(o.generators, g, "%s", label);
    cr_expect_eq(o.rank, rank, "%s: orbit rank %d, SVD %d", label, o.rank, rank);
    double worst = 0;
    for (int i = 0; i < g; i++) worst = fmax(worst, fabs(o.sv[i] - sv[i]));
    cr_expect_leq(worst, 1e-13 * sv[0], "%s: singular values differ by %.2e (largest %.3g)", label, worst, sv[0]);
    nt_orbit_free(&o);
    free(Q);
    free(sv);
}

Test(orbit, rank_and_singular_values_as_a_dense_svd)
{
    model_fixture f;
    mf_new(&f, 3, 2, (int[]){5, 4}, NT_ACT_RELU, 3, NT_LOSS_CROSS_ENTROPY, 1, 0.01, 40, 40, 8, 2);
    expect_like_svd(&f, f.theta, "relu MLP");
    /* unit 2 of layer 1 nearly dead (1e-9 of its weights): a small singular value, which the
     * Gram matrix alone would give only to ~1e-8 relative; refined, to round-off */
    double *t = malloc(sizeof(double) * f.m.d);
    memcpy(t, f.theta, sizeof(double) * f.m.d);
    for (int i = 0; i < 3; i++) t[2 * 3 + i] *= 1e-9;
    t[15 + 2] *= 1e-9;
    for (int r = 0; r < 4; r++) t[20 + r * 5 + 2] *= 1e-9;
    expect_like_svd(&f, t, "a nearly dead unit");
    nt_orbit o;
    nt_orbit_analyse(&f.m, f.list, f.n, t, 1e-10, &o);
    cr_expect_gt(o.refined, 0, "the small singular value was refined");
    nt_orbit_free(&o);
    /* dead: the rank drops by one */
    for (int i = 0; i < 3; i++) t[2 * 3 + i] = 0;
    t[15 + 2] = 0;
    for (int r = 0; r < 4; r++) t[20 + r * 5 + 2] = 0;
    nt_orbit_analyse(&f.m, f.list, f.n, t, 1e-10, &o);
    cr_expect_eq(o.rank, o.generators - 1, "a dead unit: rank %d of %d", o.rank, o.generators);
    nt_orbit_free(&o);
    free(t);
    mf_free(&f);
    /* a deep linear network: gl(n) of each hidden layer, whose generators overlap */
    mf_new(&f, 3, 2, (int[]){4, 3}, NT_ACT_IDENTITY, 2, NT_LOSS_MSE, 0, 0.0, 30, 30, 8, 5);
    expect_like_svd(&f, f.theta, "deep linear");
    mf_free(&f);
}

/* A deep linear network with a softmax head under weight decay, driven to a critical point
 * of L_gamma by Newton steps (minimum-norm: O(n) of the hidden layer leaves L_gamma
 * unchanged, so H_gamma is singular there).  Two hidden units: three classes need only
 * two logit directions besides the translation, so the point is not degenerate (with three,
 * weight decay kills one unit and its dead directions add eigenvalues at gamma that no
 * symmetry predicts).  (S1gamma) predicts: the symmetric part of gl(2) (3 generators) at
 * 2 gamma, the 3 logit translations at gamma, the antisymmetric part (1) at 0.  The dense
 * spectrum must hold each (value, multiplicity); the old claim, 7 zero modes, must not. */
Test(orbit, eigenvalues_at_a_critical_point_under_weight_decay, .timeout = 120)
{
    const double gamma = 0.05;
    char dir[256], spec[NT_PATH_MAX], params[NT_PATH_MAX], args[3 * NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(spec, dir, "linear.json");
    path_join(params, dir, "critical.npy");
    char text[1024];
    snprintf(text, sizeof text,
             "{\"model\": {\"input\": 4, \"layers\": [{\"dense\": 2, \"bias\": false}, {\"act\": \"identity\"}, {\"dense\": 3}],"
             " \"loss\": \"cross_entropy\"}, \"data\": {\"source\": \"builtin\", \"name\": \"iris\", \"standardize\": true},"
             " \"init\": {\"seed\": 4}, \"weight_decay\": %g}", gamma);
    write_text(spec, text);
    nt_spec s;
    nt_data data;
    nt_error err;
    cr_assert_eq(nt_spec_load(spec, &s, &err), 0, "%s", err.msg);
    cr_assert_eq(nt_data_load(&s, &data, &err), 0, "%s", err.msg);
    const int64_t d = s.model.d;
    cr_assert_eq(d, 8 + 6 + 3);
    nt_engine *e = nt_engine_new(&s.model, data.train.n, 8);
    double *theta = malloc(sizeof(double) * d), *g = malloc(sizeof(double) * d), *H = malloc(sizeof(double) * d * d),
           *lam = malloc(sizeof(double) * d), *step = malloc(sizeof(double) * d);
    nt_init_params(&s.model, &s.init, theta);
    for (int it = 0; it < 400; it++) {   /* gradient descent, then Newton */
        t_grad(e, theta, &data.train, g);
        for (int64_t j = 0; j < d; j++) theta[j] -= 0.5 * g[j];
    }
    double gnorm = 1;
    for (int it = 0; it < 30 && gnorm > 1e-13; it++) {
        t_grad(e, theta, &data.train, g);
        gnorm = nt_norm2(d, g);
        t_hessian(e, theta, &data.train, H);
        LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', (int)d, H, (int)d, lam);   /* H = V diag(lam) V^T, V in columns */
        memset(step, 0, sizeof(double) * d);
        for (int k = 0; k < d; k++) {
            if (fabs(lam[k]) < 1e-9 * fabs(lam[d - 1])) continue;
            double c = 0;
            for (int64_t j = 0; j < d; j++) c += H[j * d + k] * g[j];
            for (int64_t j = 0; j < d; j++) step[j] += H[j * d + k] * c / lam[k];
        }
        for (int64_t j = 0; j < d; j++) theta[j] -= step[j];
    }
    t_grad(e, theta, &data.train, g);
    gnorm = nt_norm2(d, g);
    cr_assert_leq(gnorm, 1e-12, "|g_gamma| = %.2e after Newton", gnorm);
    int64_t shape[1] = {d};
    cr_assert_eq(nt_npy_write(params, theta, 1, shape, &err), 0, "%s", err.msg);

    snprintf(args, sizeof args, "spectrum %s --params %s --method dense --json", spec, params);
    char *out, *errs;
    cr_assert_eq(run_noether(args, &out, &errs), 0, "%s", errs);
    cJSON *doc = cJSON_Parse(out);
    const cJSON *flat = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "predictions"), "flat"), *it;
    const cJSON *cp = cJSON_GetObjectItem(flat, "at_critical_point");
    cr_assert_eq(cJSON_GetArraySize(cp), 3, "three predicted values");
    const double want_value[3] = {2 * gamma, gamma, 0};
    const int want_mult[3] = {3, 3, 1};
    int k = 0;
    cJSON_ArrayForEach(it, cp) {
        double v = cJSON_GetObjectItem(it, "value")->valuedouble;
        int mult = cJSON_GetObjectItem(it, "multiplicity")->valueint, found = cJSON_GetObjectItem(it, "found")->valueint;
        cr_expect_eq(v, want_value[k]);
        cr_expect_eq(mult, want_mult[k], "value %g: multiplicity %d, want %d", v, mult, want_mult[k]);
        cr_expect_eq(found, mult, "value %g: %d eigenvalues there, %d predicted", v, found, mult);
        k++;
    }
    /* the old prediction, "orbit rank zero modes at a critical point": false here */
    int rank = cJSON_GetObjectItem(flat, "orbit_rank")->valueint;
    cr_expect_eq(rank, 7);
    t_hessian(e, theta, &data.train, H);
    LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'N', 'U', (int)d, H, (int)d, lam);
    int zeros = 0;
    for (int64_t j = 0; j < d; j++) zeros += fabs(lam[j]) <= 1e-9 * fabs(lam[d - 1]);
    cr_expect_lt(zeros, rank, "%d zero eigenvalues: the orbit rank %d is not the count of zero modes", zeros, rank);
    cJSON_Delete(doc);
    free(out); free(errs);
    free(theta); free(g); free(H); free(lam); free(step);
    nt_engine_free(e);
    nt_data_free(&data);
    nt_spec_free(&s);
}

/* (S1gamma) on random combinations holds for the catalogue (round-off) and fails when one
 * generator in the list is not a symmetry: a unit rescaling through tanh */
Test(orbit, s1_on_random_combinations_and_its_negative_control)
{
    model_fixture f;
    mf_new(&f, 3, 2, (int[]){5, 4}, NT_ACT_TANH, 3, NT_LOSS_CROSS_ENTROPY, 1, 0.01, 40, 40, 8, 6);
    double *g = malloc(sizeof(double) * f.m.d), sH;
    t_grad(f.e, f.theta, &f.ds, g);
    double w = t_orbit_s1_check(f.e, &f.m, &f.ds, f.list, f.n, f.theta, g, 4, 3, &sH);
    cr_expect_leq(w, 1e-13, "the catalogue: %.2e", w);
    cr_expect_gt(sH, 0);
    nt_transform bad[2] = {{.kind = NT_TR_RESCALE, .generators = 1, .layer = 1, .a = 0, .p = 1}};
    bad[1] = f.list[0];
    w = t_orbit_s1_check(f.e, &f.m, &f.ds, bad, 2, f.theta, g, 4, 3, &sH);
    cr_expect_gt(w, 1e-4, "a rescaling through tanh is not a symmetry: %.2e", w);
    free(g);
    mf_free(&f);
}

/* The flat check does not depend on how many eigenvalues were asked for (it read 1.0 with
 * --top 0 --bottom 0, when its scale came from the eigenvalues found) */
Test(orbit, flat_check_independent_of_the_ends_asked)
{
    char *out[2], *err;
    const char *args[2] = {"spectrum --top 0 --bottom 0 --json", "spectrum --top 1 --bottom 0 --json"};
    double w[2];
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(run_noether(args[i], &out[i], &err), 0, "%s", err);
        free(err);
        cJSON *doc = cJSON_Parse(out[i]);
        w[i] = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "predictions"), "flat"),
                                   "worst_relative_difference")->valuedouble;
        cJSON_Delete(doc);
        free(out[i]);
    }
    cr_expect_leq(w[0], 1e-13, "--top 0 --bottom 0: %.2e", w[0]);
    cr_expect_eq(w[0], w[1]);
}

/* --trace with the dense method gives the exact trace (the sum of every eigenvalue, checked
 * against the dense Hessian's diagonal here) beside Hutchinson's; --density gives each
 * moment's standard error over the probes, consistent with the exact moment, and the probes
 * that would bring it under 1 % */
Test(orbit, trace_exact_and_density_moments_with_errors)
{
    char *out, *err;
    cr_assert_eq(run_noether("spectrum --method dense --trace --density --json", &out, &err), 0, "%s", err);
    cJSON *doc = cJSON_Parse(out);
    const cJSON *tr = cJSON_GetObjectItem(doc, "trace"), *de = cJSON_GetObjectItem(doc, "density");
    cr_assert_not_null(cJSON_GetObjectItem(tr, "exact"), "the dense path gives the exact trace");
    double exact = cJSON_GetObjectItem(tr, "exact")->valuedouble;
    /* independently: the diagonal of the dense Hessian of the built-in default at its init */
    nt_error e;
    free(out); free(err);
    cr_assert_eq(run_noether("info --json", &out, &err), 0, "%s", err);
    cJSON *info = cJSON_Parse(out);
    const int d = cJSON_GetObjectItem(info, "d")->valueint;
    cJSON_Delete(info);
    free(out); free(err);
    char dir[256], H[NT_PATH_MAX], args[2 * NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(H, dir, "H.npy");
    snprintf(args, sizeof args, "hessian --out %s", H);
    cr_assert_eq(run_noether(args, NULL, NULL), 0);
    nt_array a;
    cr_assert_eq(nt_npy_read(H, &a, &e), 0, "%s", e.msg);
    double diag = 0, tr2 = 0;
    for (int i = 0; i < d; i++) diag += a.data[(int64_t)i * d + i];
    for (int64_t i = 0; i < (int64_t)d * d; i++) tr2 += a.data[i] * a.data[i];
    nt_array_free(&a);
    cr_expect_leq(fabs(exact - diag), 1e-12 * fabs(diag) + 1e-14, "exact trace %.17g, diagonal %.17g", exact, diag);
    double hut = cJSON_GetObjectItem(tr, "hutchinson")->valuedouble, se = cJSON_GetObjectItem(tr, "std_error")->valuedouble;
    cr_expect_leq(fabs(hut - diag), 4 * se, "Hutchinson %.6g +- %.2g against %.6g", hut, se, diag);
    cr_expect_neq(hut, exact, "the estimate is not the exact value");
    for (int k = 1; k <= 2; k++) {
        char key[64];
        snprintf(key, sizeof key, "moment%d", k);
        double m = cJSON_GetObjectItem(de, key)->valuedouble;
        snprintf(key, sizeof key, "moment%d_std_error", k);
        double sm = cJSON_GetObjectItem(de, key)->valuedouble;
        snprintf(key, sizeof key, "moment%d_exact", k);
        double mx = cJSON_GetObjectItem(de, key)->valuedouble, want = k == 1 ? diag / d : tr2 / d;
        cr_expect_leq(fabs(mx - want), 1e-10 * fabs(want), "moment %d exact %.12g, from H %.12g", k, mx, want);
        cr_expect_gt(sm, 0, "moment %d has a standard error", k);
        cr_expect_leq(fabs(m - want), 4 * sm, "moment %d: %.6g +- %.2g against %.6g", k, m, sm, want);
        snprintf(key, sizeof key, "moment%d_probes_for_1_percent", k);
        double need = cJSON_GetObjectItem(de, key)->valuedouble, rel = sm / fabs(m);
        cr_expect_leq(fabs(need - ceil(10 * (rel / 0.01) * (rel / 0.01))), 1, "probes for 1 %%: %g", need);
    }
    cJSON_Delete(doc);
}

/* Every layer kind's generators through the sparse path: rank and singular values as the
 * dense SVD of nt_tr_xi's vectors, on the examples' models (layer and batch normalization,
 * a CNN with BatchNorm2d, an attention block) at their seeded initialization */
Test(orbit, every_layer_kind_as_a_dense_svd, .timeout = 120)
{
    const char *names[] = {"layernorm_scale.json", "batchnorm_wine.json", "cnn_batchnorm_fashion.json",
                           "attention_heads.json", "deep_linear.json"};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        char path[NT_PATH_MAX];
        snprintf(path, sizeof path, "%s/examples/%s", NOETHER_SOURCE_DIR, names[k]);
        model_fixture f = {0};
        nt_spec s;
        nt_error err;
        cr_assert_eq(nt_spec_load(path, &s, &err), 0, "%s", err.msg);
        f.m = s.model;
        f.theta = malloc(sizeof(double) * s.model.d);
        nt_init_params(&s.model, &s.init, f.theta);
        cr_assert_eq(nt_catalogue(&s.model, &f.list, &f.n), 0);
        nt_orbit o;
        nt_orbit_analyse(&s.model, f.list, f.n, f.theta, 1e-10, &o);
        cr_log_info("%s: %d generators, orbit rank %d", names[k], o.generators, o.rank);
        cr_expect_gt(o.generators, 0, "%s lists continuous symmetries", names[k]);
        nt_orbit_free(&o);
        expect_like_svd(&f, f.theta, names[k]);
        nt_transforms_free(f.list, f.n);
        free(f.theta);
        nt_spec_free(&s);
    }
}
