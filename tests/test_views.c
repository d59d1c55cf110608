/* test_views.c: the symmetry-aware views of the spectrum (THEORY.md §3-§4): S_n sectors
 * with multiplicity n-1 at the symmetric point (and not off it), the orbit span's rank
 * (dropping by one when a unit dies), deflation, the zero modes of translations, the sharp
 * radial direction, and the spectrum command (dense against Lanczos). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include <cJSON.h>
#include "helpers.h"
#include "../src/spectrum/views.h"

typedef struct {
    nt_model m;
    nt_dataset ds;
    nt_engine *e;
    double *theta;
    nt_transform *list;
    int n;
} fixture;

static void setup(fixture *f, nt_act act, nt_loss loss, int K, int bias, double wd, uint64_t seed)
{
    make_mlp(&f->m, 3, 2, (int[]){5, 4}, act, K, loss, bias, wd);
    make_data(&f->ds, &f->m, 40, seed);
    f->e = nt_engine_new(&f->m, 40, 8);
    f->theta = malloc(sizeof(double) * f->m.d);
    fill_normal(f->theta, f->m.d, 0.6, seed + 1);
    nt_catalogue(&f->m, &f->list, &f->n);
}

static void teardown(fixture *f)
{
    nt_transforms_free(f->list, f->n);
    free(f->theta);
    nt_engine_free(f->e);
    nt_dataset_free(&f->ds);
    nt_model_free(&f->m);
}

/* At the point where the n units of a layer are equal, H on the breaking subspace of S_n
 * has every eigenvalue n-1 times; at a generic point the groups break up.  (mse: a softmax
 * head would add translations, flat everywhere, whose eigenvalue gamma comes n-1 times on
 * the last hidden layer at any point.) */
Test(views, sn_sector_multiplicity)
{
    fixture f;
    setup(&f, NT_ACT_TANH, NT_LOSS_MSE, 3, 1, 0.01, 1);
    for (int layer = 1; layer <= 2; layer++) {
        int dim = nt_sn_sector_dim(&f.m, layer), units = layer == 1 ? 5 : 4;
        double *lam = malloc(sizeof(double) * dim), *sym = malloc(sizeof(double) * f.m.d);
        int *mult = malloc(sizeof(int) * dim);
        cr_assert_eq(dim, (units - 1) * (layer == 1 ? 3 + 1 + 4 : 5 + 1 + 3));
        for (int project = 1; project >= 0; project--) {
            nt_sn_sector(f.e, &f.m, &f.ds, f.theta, layer, project, sym, lam);
            double scale = fmax(fabs(lam[0]), fabs(lam[dim - 1]));
            int groups = nt_multiplicities(lam, dim, 1e-9 * scale, mult), lo = dim, hi = 0;
            for (int i = 0; i < groups; i++) { lo = mult[i] < lo ? mult[i] : lo; hi = mult[i] > hi ? mult[i] : hi; }
            if (project) {
                cr_expect(lo == units - 1 && hi == units - 1, "layer %d: multiplicities %d..%d, predicted %d",
                          layer, lo, hi, units - 1);
            } else {
                cr_expect_lt(hi, units - 1, "layer %d off the symmetric point: a group of %d", layer, hi);
            }
        }
        free(lam); free(sym); free(mult);
    }
    teardown(&f);
}

/* The orbit span of the continuous symmetries has full rank at a generic theta and loses
 * one dimension when a relu unit dies (its rescaling generator A theta vanishes). */
Test(views, orbit_rank)
{
    fixture f;
    setup(&f, NT_ACT_RELU, NT_LOSS_CROSS_ENTROPY, 3, 1, 0.0, 2);
    double *Q, *sv;
    int g, rank = nt_orbit_basis(&f.m, f.list, f.n, f.theta, 1e-10, &Q, &sv, &g);
    cr_expect_eq(g, 5 + 4 + (4 + 1), "rescalings and translations");
    cr_expect_eq(rank, g);
    free(Q); free(sv);
    /* unit 2 of layer 1 dead: its row of W1, its bias and its column of W2 are zero */
    for (int i = 0; i < 3; i++) f.theta[2 * 3 + i] = 0;
    f.theta[15 + 2] = 0;
    for (int r = 0; r < 4; r++) f.theta[20 + r * 5 + 2] = 0;
    rank = nt_orbit_basis(&f.m, f.list, f.n, f.theta, 1e-10, &Q, &sv, &g);
    cr_expect_eq(rank, g - 1, "a dead unit: rank %d of %d", rank, g);
    free(Q); free(sv);
    teardown(&f);
}

/* Without weight decay a translation is flat everywhere (H c = 0): the dense spectrum has
 * at least as many zeros as translation generators; deflating the orbit span leaves P H P
 * with the orbit span in its kernel. */
Test(views, translation_zero_modes_and_deflation)
{
    fixture f;
    setup(&f, NT_ACT_GELU, NT_LOSS_CROSS_ENTROPY, 3, 1, 0.0, 3);
    const int64_t d = f.m.d;
    nt_hessian_ctx hc;
    nt_operator op = nt_hessian_operator(&hc, f.e, &f.m, &f.ds, f.theta, 0, d, NULL, 0);
    double *lam = malloc(sizeof(double) * d);
    nt_error err;
    cr_assert_eq(nt_eigen_dense(&op, lam, NULL, &err), NT_OK);
    double scale = fmax(fabs(lam[0]), fabs(lam[d - 1]));
    int zeros = 0, translations = 0;
    for (int64_t i = 0; i < d; i++) zeros += fabs(lam[i]) <= 1e-12 * scale;
    for (int t = 0; t < f.n; t++) translations += f.list[t].kind == NT_TR_TRANSLATION ? f.list[t].generators : 0;
    cr_expect_eq(translations, 5);
    cr_expect_geq(zeros, translations, "%d zero eigenvalues, %d translations", zeros, translations);
    nt_hessian_operator_free(&hc);
    /* deflation: P H P q = 0 for every orbit direction, and its range is orthogonal to them */
    double *Q, *sv, *Y = malloc(sizeof(double) * d), *x = malloc(sizeof(double) * d);
    int g, rank = nt_orbit_basis(&f.m, f.list, f.n, f.theta, 1e-10, &Q, &sv, &g);
    op = nt_hessian_operator(&hc, f.e, &f.m, &f.ds, f.theta, 0, d, Q, rank);
    for (int i = 0; i < rank; i++) {
        op.apply(op.ctx, 1, Q + (int64_t)i * d, Y);
        cr_expect_leq(nt_norm2(d, Y), 1e-14, "P H P q_%d = %.2e", i, nt_norm2(d, Y));
    }
    fill_normal(x, d, 1.0, 9);
    op.apply(op.ctx, 1, x, Y);
    for (int i = 0; i < rank; i++) {
        double c = 0;
        for (int64_t j = 0; j < d; j++) c += Q[(int64_t)i * d + j] * Y[j];
        cr_expect_leq(fabs(c), 1e-12 * nt_norm2(d, Y));
    }
    cr_expect_gt(nt_norm2(d, Y), 1e-6, "control: P H P x is not zero");
    nt_hessian_operator_free(&hc);
    free(lam); free(Q); free(sv); free(Y); free(x);
    teardown(&f);
}

/* ---- the command ---------------------------------------------------------------------- */

static cJSON *spectrum_json(const char *spec_json, const char *flags)
{
    char dir[256], spec[NT_PATH_MAX], args[2 * NT_PATH_MAX];
    tmpdir_new(dir);
    path_join(spec, dir, "spec.json");
    write_text(spec, spec_json);
    snprintf(args, sizeof args, "spectrum %s --json %s", spec, flags);
    char *out, *err;
    int rc = run_noether(args, &out, &err);
    cr_assert_eq(rc, 0, "noether %s: %s", args, err);
    cJSON *doc = cJSON_Parse(out);
    cr_assert_not_null(doc, "not JSON: %.200s", out);
    free(out); free(err);
    return doc;
}

static double item(const cJSON *a, int i) { return cJSON_GetArrayItem(a, i)->valuedouble; }

/* Dense and Lanczos agree on both ends for a model of a few thousand parameters. */
Test(views, dense_and_lanczos_agree, .timeout = 300)
{
    const char *spec =
        "{\"model\": {\"input\": 13, \"layers\": [{\"dense\": 40}, {\"act\": \"tanh\"}, {\"dense\": 40}, {\"act\": \"tanh\"},"
        " {\"dense\": 3}], \"loss\": \"cross_entropy\"}, \"data\": {\"source\": \"builtin\", \"name\": \"wine\","
        " \"standardize\": true}, \"init\": {\"seed\": 1, \"bias_std\": 0.1}, \"weight_decay\": 0.001}";
    cJSON *a = spectrum_json(spec, "--method dense --top 5 --bottom 5");
    cJSON *b = spectrum_json(spec, "--method lanczos --top 5 --bottom 5");
    cr_assert_eq(cJSON_GetObjectItem(a, "d")->valueint, 13 * 40 + 40 + 40 * 40 + 40 + 40 * 3 + 3);
    cr_expect_str_eq(cJSON_GetObjectItem(b, "method")->valuestring, "lanczos");
    for (int end = 0; end < 2; end++) {
        const char *key = end ? "bottom" : "top";
        const cJSON *x = cJSON_GetObjectItem(a, key), *y = cJSON_GetObjectItem(b, key);
        for (int i = 0; i < 5; i++) {
            double u = item(x, i), v = item(y, i), scale = fabs(item(cJSON_GetObjectItem(a, "top"), 0));
            cr_expect_leq(fabs(u - v), 1e-8 * scale, "%s[%d]: dense %.12g, lanczos %.12g", key, i, u, v);
            if (i) cr_expect(end ? item(x, i) >= item(x, i - 1) : item(x, i) <= item(x, i - 1), "%s is ordered", key);
        }
    }
    cJSON_Delete(a);
    cJSON_Delete(b);
}

/* Predictions on a bias-free homogeneous network: the radial curvature equals its closed
 * form and lies below lambda_max; with all eigenvectors the gradient is wholly aligned. */
Test(views, sharp_direction_and_alignment)
{
    const char *spec =
        "{\"model\": {\"input\": 4, \"layers\": [{\"dense\": 6, \"bias\": false}, {\"act\": \"relu\"},"
        " {\"dense\": 3, \"bias\": false}], \"loss\": \"mse\"}, \"data\": {\"source\": \"builtin\", \"name\": \"iris\","
        " \"standardize\": true}, \"init\": {\"seed\": 3}, \"weight_decay\": 0.01}";
    cJSON *doc = spectrum_json(spec, "--top 42 --bottom 3 --sectors");
    const cJSON *pred = cJSON_GetObjectItem(doc, "predictions"), *sh = cJSON_GetObjectItem(pred, "sharp");
    cr_assert_not_null(sh);
    double rc = cJSON_GetObjectItem(sh, "radial_curvature")->valuedouble, cf = cJSON_GetObjectItem(sh, "closed_form")->valuedouble;
    cr_expect_eq(cJSON_GetObjectItem(sh, "degree")->valuedouble, 2.0);
    cr_expect_leq(fabs(rc - cf), 1e-12 * fabs(cf), "radial %.17g, closed form %.17g", rc, cf);
    cr_expect_leq(rc, cJSON_GetObjectItem(sh, "lambda_max")->valuedouble);
    double frac = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "alignment"), "gradient_fraction_in_top")->valuedouble;
    cr_expect_leq(fabs(frac - 1), 1e-12, "all 42 eigenvectors hold all of g: %.17g", frac);
    const cJSON *fl = cJSON_GetObjectItem(pred, "flat");
    cr_expect_leq(cJSON_GetObjectItem(fl, "worst_relative_difference")->valuedouble, 1e-10);
    const cJSON *sec = cJSON_GetArrayItem(cJSON_GetObjectItem(pred, "sectors"), 0);
    cr_expect_eq(cJSON_GetObjectItem(sec, "multiplicity_min")->valueint, 5);
    cr_expect_eq(cJSON_GetObjectItem(sec, "multiplicity_max")->valueint, 5);
    cJSON_Delete(doc);
}
