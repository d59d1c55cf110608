/* test_views.c: the symmetry-aware views of the spectrum (docs/theory.md §3-§4): S_n sectors
 * with multiplicity n-1 at the symmetric point (and not off it), the orbit span's rank
 * (dropping by one when a unit dies), deflation, the zero modes of translations, the sharp
 * radial direction, and the spectrum command (dense against Lanczos). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include <cJSON.h>
#include <lapacke.h>
#include "helpers.h"

static void setup(model_fixture *f, nt_act act, nt_loss loss, int K, int bias, double wd, uint64_t seed)
{
    mf_new(f, 3, 2, (int[]){5, 4}, act, K, loss, bias, wd, 40, 40, 8, seed);
}

static void teardown(model_fixture *f) { mf_free(f); }

/* At the point where the n units of a layer are equal, H on the breaking subspace of S_n
 * has every eigenvalue n-1 times; at a generic point the groups break up.  (mse: a softmax
 * head would add translations, flat everywhere, whose eigenvalue gamma comes n-1 times on
 * the last hidden layer at any point.) */
Test(views, sn_sector_multiplicity)
{
    model_fixture f;
    setup(&f, NT_ACT_TANH, NT_LOSS_MSE, 3, 1, 0.01, 1);
    for (int layer = 1; layer <= 2; layer++) {
        int dim = nt_sn_sector_dim(&f.m, layer), units = layer == 1 ? 5 : 4;
        double *lam = malloc(sizeof(double) * dim), *sym = malloc(sizeof(double) * f.m.d);
        int *mult = malloc(sizeof(int) * dim);
        cr_assert_eq(dim, (units - 1) * (layer == 1 ? 3 + 1 + 4 : 5 + 1 + 3));
        for (int project = 1; project >= 0; project--) {
            t_sn_sector(f.e, &f.m, &f.ds, f.theta, layer, project, sym, lam);
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
    model_fixture f;
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
    model_fixture f;
    setup(&f, NT_ACT_GELU, NT_LOSS_CROSS_ENTROPY, 3, 1, 0.0, 3);
    const int64_t d = f.m.d;
    nt_hessian_ctx hc;
    nt_operator op = t_hessian_operator(&hc, f.e, &f.m, &f.ds, f.theta, 0, d, NULL, 0);
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
    op = t_hessian_operator(&hc, f.e, &f.m, &f.ds, f.theta, 0, d, Q, rank);
    for (int i = 0; i < rank; i++) {
        cr_assert_eq(op.apply(op.ctx, 1, Q + (int64_t)i * d, Y, NULL), NT_OK);
        cr_expect_leq(nt_norm2(d, Y), 1e-14, "P H P q_%d = %.2e", i, nt_norm2(d, Y));
    }
    fill_normal(x, d, 1.0, 9);
    cr_assert_eq(op.apply(op.ctx, 1, x, Y, NULL), NT_OK);
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

/* ---- against the explicit Hessian ------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* eigenvalues of the explicit Hessian (nt_hessian + LAPACK), ascending */
static void explicit_spectrum(model_fixture *f, const double *theta, double *lam)
{
    const int64_t d = f->m.d;
    double *H = malloc(sizeof(double) * d * d);
    t_hessian(f->e, theta, &f->ds, H);
    for (int64_t i = 0; i < d; i++)
        for (int64_t j = 0; j < i; j++) H[i * d + j] = H[j * d + i] = 0.5 * (H[i * d + j] + H[j * d + i]);
    LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'N', 'U', (int)d, H, (int)d, lam);
    free(H);
}

/* The operator's dense spectrum is the explicit Hessian's; the density's moments are
 * tr(H)/d and tr(H^2)/d within the probes' statistical error. */
Test(views, explicit_hessian_and_density_moments)
{
    model_fixture f;
    setup(&f, NT_ACT_TANH, NT_LOSS_CROSS_ENTROPY, 3, 1, 0.01, 4);
    const int64_t d = f.m.d;
    double *a = malloc(sizeof(double) * d), *b = malloc(sizeof(double) * d);
    explicit_spectrum(&f, f.theta, a);
    nt_hessian_ctx hc;
    nt_operator op = t_hessian_operator(&hc, f.e, &f.m, &f.ds, f.theta, 0, d, NULL, 0);
    nt_error err;
    cr_assert_eq(nt_eigen_dense(&op, b, NULL, &err), NT_OK);
    double scale = fmax(fabs(a[0]), fabs(a[d - 1])), t1 = 0, t2 = 0;
    for (int64_t i = 0; i < d; i++) {
        cr_expect_leq(fabs(a[i] - b[i]), 1e-12 * scale, "eigenvalue %lld: %.15g vs %.15g", (long long)i, a[i], b[i]);
        t1 += a[i] / d;
        t2 += a[i] * a[i] / d;
    }
    const int P = 60, S = 30;
    double *x = malloc(sizeof(double) * P * S), *w = malloc(sizeof(double) * P * S), m1 = 0, m2 = 0, ws = 0;
    cr_assert_eq(nt_slq(&op, P, S, 8, x, w, &err), NT_OK);
    for (int i = 0; i < P * S; i++) { ws += w[i]; m1 += w[i] * x[i]; m2 += w[i] * x[i] * x[i]; }
    /* Rademacher probes: var(v^T H v)/d^2 <= 2 tr(H^2)/d^2, so the standard error of the first
     * moment is at most sqrt(2 t2 / (d P)) */
    double se1 = sqrt(2 * t2 / ((double)d * P));
    cr_expect_leq(fabs(ws - 1), 1e-12);
    cr_expect_leq(fabs(m1 - t1), 4 * se1, "first moment %.6g, tr(H)/d %.6g (se %.2g)", m1, t1, se1);
    cr_expect_leq(fabs(m2 - t2), 0.2 * t2, "second moment %.6g, tr(H^2)/d %.6g", m2, t2);
    cr_log_info("density moments: %.5g vs tr(H)/d %.5g; %.5g vs tr(H^2)/d %.5g", m1, t1, m2, t2);
    nt_hessian_operator_free(&hc);
    free(a); free(b); free(x); free(w);
    teardown(&f);
}

/* the largest gap between the full spectrum (plus u zeros) and the union of P H P's (P the
 * projector off the breaking basis O of T, whose extra zeros are O's) and O H O^T's */
static double sector_union_gap(model_fixture *f, const nt_transform *T, const double *theta)
{
    const int64_t d = f->m.d;
    int u = nt_breaking_dim(&f->m, T);
    double *O = malloc(sizeof(double) * u * d), *perp = malloc(sizeof(double) * u);
    double *full = malloc(sizeof(double) * (d + u)), *parts = malloc(sizeof(double) * (d + u));
    nt_breaking_basis(&f->m, T, O);
    explicit_spectrum(f, theta, full);
    for (int i = 0; i < u; i++) full[d + i] = 0;
    nt_hessian_ctx hc;
    nt_operator op = t_hessian_operator(&hc, f->e, &f->m, &f->ds, theta, 0, d, O, u);
    nt_error err;
    cr_assert_eq(nt_eigen_dense(&op, parts, NULL, &err), NT_OK);
    t_breaking_spectrum(f->e, &f->m, &f->ds, theta, T, perp, NULL);
    memcpy(parts + d, perp, sizeof(double) * u);
    qsort(full, d + u, sizeof(double), cmp_double);
    qsort(parts, d + u, sizeof(double), cmp_double);
    double scale = fmax(fabs(full[0]), fabs(full[d + u - 1])), gap = 0;
    for (int64_t i = 0; i < d + u; i++) gap = fmax(gap, fabs(full[i] - parts[i]) / scale);
    nt_hessian_operator_free(&hc);
    free(O); free(perp); free(full); free(parts);
    return gap;
}

/* At a fixed point of a swap, H maps Fix(T) and Fix(T)^perp into themselves: the two sector
 * spectra make up the full spectrum; off the fixed point they do not. */
Test(views, sector_spectra_make_up_the_full_spectrum)
{
    model_fixture f;
    setup(&f, NT_ACT_SIGMOID, NT_LOSS_MSE, 2, 1, 0.0, 5);
    const int64_t d = f.m.d;
    const nt_transform *T = NULL;
    for (int i = 0; i < f.n && !T; i++) if (f.list[i].kind == NT_TR_SWAP) T = &f.list[i];
    cr_assert_not_null(T);
    double off = sector_union_gap(&f, T, f.theta);
    double *Tt = malloc(sizeof(double) * d);
    nt_tr_apply_T(&f.m, T, f.theta, Tt);
    for (int64_t i = 0; i < d; i++) f.theta[i] = 0.5 * (f.theta[i] + Tt[i]);   /* onto Fix(T) */
    double on = sector_union_gap(&f, T, f.theta);
    cr_expect_leq(on, 1e-12, "at the fixed point: union vs full spectrum %.2e", on);
    cr_expect_geq(off, 1e-6, "off the fixed point the sectors still make up the spectrum (%.2e)", off);
    cr_log_info("sector union vs full spectrum: %.1e at the fixed point, %.1e off it", on, off);
    free(Tt);
    teardown(&f);
}

/* At a critical point (a deep linear network trained to zero loss on data from a linear
 * teacher, gradient at round-off) the Hessian has at least as many zero eigenvalues as the
 * orbit span of its symmetries has dimensions, and deflating that span removes exactly
 * those: P H P has the same spectrum as H.  Here the prediction is exact: gl(4) gives 16
 * dimensions and the bias shifts 2 more (b_1 += s e_i, b_2 -= s W_2 e_i; only 2 of the 4 are
 * new, since W_2 has rank 2), 18 = 26 parameters - 8 that the function 3 -> 2 needs. */
Test(views, critical_point_zero_modes_and_deflation, .timeout = 120)
{
    const char *json =
        "{\"model\": {\"input\": 3, \"layers\": [{\"dense\": 4}, {\"act\": \"identity\"}, {\"dense\": 2}], \"loss\": \"mse\"},"
        " \"data\": {\"source\": \"teacher\", \"n\": 40, \"seed\": 2, \"hidden\": []},"
        " \"init\": {\"seed\": 1, \"bias_std\": 0.3}, \"train\": {\"optimizer\": \"gd\", \"lr\": 0.05, \"steps\": 30000,"
        " \"log_every\": 100000}}";
    nt_spec spec;
    nt_data data;
    nt_error err = {0};
    cr_assert_eq(nt_spec_parse(json, "c.json", &spec, &err), NT_OK, "%s", err.msg);
    cr_assert_eq(nt_data_load(&spec, &data, &err), NT_OK, "%s", err.msg);
    const nt_model *m = &spec.model;
    const int64_t d = m->d;
    double *theta = malloc(sizeof(double) * d), *g = malloc(sizeof(double) * d);
    nt_init_params(m, &spec.init, theta);
    nt_transform *list;
    int n;
    nt_catalogue(m, &list, &n);
    cr_assert_eq(nt_train(&spec, &data, list, n, theta, NULL, 0, NULL, NULL, &err), NT_OK, "%s", err.msg);
    nt_engine *e = nt_engine_new(m, 40, 8);
    t_grad(e, theta, &data.train, g);
    cr_assert_leq(nt_norm2(d, g), 1e-12, "not a critical point: |g| = %.2e", nt_norm2(d, g));
    double *Q, *sv;
    int n_gen, rank = nt_orbit_basis(m, list, n, theta, 1e-10, &Q, &sv, &n_gen);
    cr_expect_eq(rank, 18, "gl(4) and bias shifts: rank %d", rank);
    double *lam = malloc(sizeof(double) * d), *lamd = malloc(sizeof(double) * d);
    nt_hessian_ctx hc;
    nt_operator op = t_hessian_operator(&hc, e, m, &data.train, theta, 0, d, NULL, 0);
    cr_assert_eq(nt_eigen_dense(&op, lam, NULL, &err), NT_OK);
    nt_hessian_operator_free(&hc);
    op = t_hessian_operator(&hc, e, m, &data.train, theta, 0, d, Q, rank);
    cr_assert_eq(nt_eigen_dense(&op, lamd, NULL, &err), NT_OK);
    nt_hessian_operator_free(&hc);
    double scale = fmax(fabs(lam[0]), fabs(lam[d - 1]));
    int zeros = 0;
    for (int64_t i = 0; i < d; i++) {
        zeros += fabs(lam[i]) <= 1e-9 * scale;
        cr_expect_leq(fabs(lam[i] - lamd[i]), 1e-9 * scale, "deflation changed eigenvalue %lld: %.3e -> %.3e",
                      (long long)i, lam[i], lamd[i]);
    }
    cr_expect_eq(zeros, rank, "%d near-zero eigenvalues, orbit rank %d", zeros, rank);
    cr_log_info("critical point |g| = %.1e: %d zero eigenvalues, orbit rank %d", nt_norm2(d, g), zeros, rank);
    free(theta); free(g); free(Q); free(sv); free(lam); free(lamd);
    nt_engine_free(e);
    nt_transforms_free(list, n);
    nt_data_free(&data);
    nt_spec_free(&spec);
}
