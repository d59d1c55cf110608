/* test_analysis.c: nt_spectrum_analyse (src/spectrum/analysis.c, predict.c) through the
 * library, each verdict against an independent computation and a negative control where it
 * must fail (docs/theory.md §3-§4, §6): the ends, the count at gamma, the trace and the
 * moments against the explicit Hessian; the flat view's counts and each generator's (S1gamma);
 * the sharp view's closed form (and the wrong degree); the S_n sectors (and a generic point)
 * and the mirror margins (against O H O^T); the scale alignment (and eps > 0); the errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include <lapacke.h>
#include "helpers.h"

/* eigenvalues of the explicit Hessian (nt_hessian + LAPACK) at theta, ascending; H kept when
 * Hout is not NULL */
static void explicit_spectrum(nt_engine *e, const nt_model *m, const nt_dataset *ds, const double *theta, double *lam,
                              double **Hout)
{
    const int64_t d = m->d;
    double *H = malloc(sizeof(double) * d * d), *A = malloc(sizeof(double) * d * d);
    t_hessian(e, theta, ds, H);
    for (int64_t i = 0; i < d; i++)
        for (int64_t j = 0; j < i; j++) H[i * d + j] = H[j * d + i] = 0.5 * (H[i * d + j] + H[j * d + i]);
    memcpy(A, H, sizeof(double) * d * d);
    LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'N', 'U', (int)d, A, (int)d, lam);
    free(A);
    if (Hout) *Hout = H;
    else free(H);
}

static nt_spectrum analyse(model_fixture *f, const nt_transform *list, int n, nt_spectrum_opts o)
{
    nt_spectrum r;
    nt_error err = {0};
    int rc = nt_spectrum_analyse(f->e, &f->m, &f->ds, list, n, f->theta, &o, &r, &err);
    cr_assert_eq(rc, NT_OK, "nt_spectrum_analyse: %s", err.msg);
    return r;
}

/* The ends, the trace and the moments are the explicit Hessian's; a softmax head's logit
 * translations hold eigenvalue gamma at every theta (H_gamma c = gamma c), so the count at
 * gamma and the flat view's count found there are at least their rank; Lanczos agrees with
 * the dense ends.  Negative control: the squared loss has no translations, and at a generic
 * point no eigenvalue sits at gamma. */
Test(analysis, ends_trace_and_count_at_gamma, .timeout = 120)
{
    model_fixture f;
    mf_new(&f, 3, 2, (int[]){5, 4}, NT_ACT_TANH, 3, NT_LOSS_CROSS_ENTROPY, 1, 0.01, 40, 40, 8, 11);
    const int64_t d = f.m.d;
    double *lam = malloc(sizeof(double) * d);
    explicit_spectrum(f.e, &f.m, &f.ds, f.theta, lam, NULL);
    nt_spectrum r = analyse(&f, f.list, f.n, (nt_spectrum_opts){ .top = 4, .bottom = 3, .trace = 1,
                                                                 .density = 1 });
    cr_assert(r.dense && r.values && r.n == d);
    const double scale = fmax(fabs(lam[0]), fabs(lam[d - 1]));
    for (int i = 0; i < 4; i++) cr_expect_leq(fabs(r.top_values[i] - lam[d - 1 - i]), 1e-12 * scale, "top %d", i);
    for (int i = 0; i < 3; i++) cr_expect_leq(fabs(r.bottom_values[i] - lam[i]), 1e-12 * scale, "bottom %d", i);
    double t1 = 0, t2 = 0;
    int at = 0;
    for (int64_t i = 0; i < d; i++) { t1 += lam[i]; t2 += lam[i] * lam[i]; at += fabs(lam[i] - 0.01) <= 1e-9 * scale; }
    cr_expect_leq(fabs(r.trace_exact - t1), 1e-11 * scale * d, "exact trace %.17g, explicit %.17g", r.trace_exact, t1);
    cr_expect_leq(fabs(r.trace - t1), 4 * r.trace_std_error, "Hutchinson %.6g +- %.2g, %.6g", r.trace, r.trace_std_error, t1);
    cr_expect_leq(fabs(r.moment_exact[1] - t2 / d), 1e-10 * t2 / d);
    cr_expect_leq(fabs(r.moment[0] - t1 / d), 4 * r.moment_std_error[0]);
    cr_expect_eq(r.at_gamma, at, "count at gamma %d, explicit %d", r.at_gamma, at);
    cr_expect_geq(r.at_gamma, r.flat.orbit.shift_rank, "translations: %d at gamma, rank %d", r.at_gamma,
                  r.flat.orbit.shift_rank);
    cr_expect_gt(r.flat.orbit.shift_rank, 0);
    for (int v = 0; v < r.flat.orbit.n_values; v++)
        if (r.flat.orbit.value[v] == 0.01) cr_expect_eq(r.flat.found[v], r.at_gamma, "found at gamma");
    cr_expect(r.gradient_fraction_in_top > 0 && r.gradient_fraction_in_top < 1);
    nt_spectrum L = analyse(&f, f.list, f.n, (nt_spectrum_opts){ .top = 4, .bottom = 3,
                                                                 .method = NT_METHOD_LANCZOS });
    cr_expect(!L.dense && !L.values && L.at_gamma == -1 && L.flat.found[0] == -1, "Lanczos: no whole spectrum");
    for (int i = 0; i < 4; i++) cr_expect_leq(fabs(L.top_values[i] - r.top_values[i]), 1e-8 * scale, "Lanczos top %d", i);
    nt_spectrum_free(&L);
    nt_spectrum_free(&r);
    mf_free(&f);
    /* negative control */
    mf_new(&f, 3, 2, (int[]){5, 4}, NT_ACT_TANH, 3, NT_LOSS_MSE, 1, 0.01, 40, 40, 8, 11);
    r = analyse(&f, f.list, f.n, (nt_spectrum_opts){ .top = 2, .bottom = 2 });
    cr_expect_eq(r.flat.orbit.shift_rank, 0);
    cr_expect_eq(r.at_gamma, 0, "mse at a generic point: %d eigenvalues at gamma", r.at_gamma);
    nt_spectrum_free(&r);
    free(lam);
    mf_free(&f);
}

/* Each symmetry generator's |H xi| equals its (S1gamma) value; a unit rescaling through
 * tanh (not a symmetry) does not.  A block restricts H to one tensor: its ends are the
 * explicit Hessian's block's, and no predictions are made there. */
Test(analysis, each_generator_and_block, .timeout = 120)
{
    model_fixture f;
    mf_new(&f, 3, 2, (int[]){5, 4}, NT_ACT_RELU, 3, NT_LOSS_CROSS_ENTROPY, 1, 0.02, 40, 40, 8, 12);
    nt_spectrum r = analyse(&f, f.list, f.n, (nt_spectrum_opts){ .top = 1, .bottom = 1, .each_generator = 1 });
    cr_assert_eq(r.flat.n_each, r.flat.orbit.generators);
    cr_expect_leq(r.flat.each_worst, 1e-12, "the catalogue: %.2e", r.flat.each_worst);
    cr_expect_leq(r.flat.s1_worst, 1e-12);
    nt_spectrum_free(&r);
    nt_transform bad[2] = {{.kind = NT_TR_RESCALE, .generators = 1, .layer = 1, .a = 0, .p = 1}};
    bad[1] = f.list[0];
    model_fixture t;
    mf_new(&t, 3, 2, (int[]){5, 4}, NT_ACT_TANH, 3, NT_LOSS_CROSS_ENTROPY, 1, 0.02, 40, 40, 8, 12);
    r = analyse(&t, bad, 2, (nt_spectrum_opts){ .top = 1, .bottom = 1, .each_generator = 1 });
    cr_expect_gt(r.flat.each_worst, 1e-4, "a rescaling through tanh: %.2e", r.flat.each_worst);
    nt_spectrum_free(&r);
    mf_free(&t);
    /* the block "2.weight" (4 x 5) against the explicit Hessian's block */
    const nt_tensor *T = &f.m.tensors[2];
    const int64_t d = f.m.d, off = T->offset, n = T->size;
    double *lam = malloc(sizeof(double) * d), *H;
    explicit_spectrum(f.e, &f.m, &f.ds, f.theta, lam, &H);
    double *B = malloc(sizeof(double) * n * n), *mu = malloc(sizeof(double) * n);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) B[i * n + j] = H[(off + i) * d + off + j];
    LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'N', 'U', (int)n, B, (int)n, mu);
    cr_assert_str_eq(T->name, "2.weight");
    r = analyse(&f, f.list, f.n, (nt_spectrum_opts){ .top = 2, .bottom = 2, .block = "2.weight" });
    cr_assert_eq(r.n, n);
    const double scale = fmax(fabs(mu[0]), fabs(mu[n - 1]));
    cr_expect_leq(fabs(r.top_values[0] - mu[n - 1]), 1e-12 * scale);
    cr_expect_leq(fabs(r.bottom_values[0] - mu[0]), 1e-12 * scale);
    cr_expect(fabs(r.top_values[0] - lam[d - 1]) > 1e-6 * scale, "the block's lambda_max is not the whole H's");
    cr_expect(!r.has_flat && isnan(r.gradient_fraction_in_top), "no predictions on a block");
    nt_spectrum_free(&r);
    free(lam); free(H); free(B); free(mu);
    mf_free(&f);
}

/* A bias-free ReLU network (2-homogeneous): the radial curvature equals its closed form to
 * round-off.  Negative controls: the closed form with the wrong degree (3) is far from it;
 * with biases, no sharp view. */
Test(analysis, sharp_view_and_wrong_degree)
{
    model_fixture f;
    mf_new(&f, 3, 1, (int[]){6}, NT_ACT_RELU, 2, NT_LOSS_MSE, 0, 0.01, 40, 40, 8, 13);
    nt_spectrum r = analyse(&f, f.list, f.n, (nt_spectrum_opts){ .top = 3, .bottom = 0 });
    cr_assert(r.sharp.applies);
    cr_expect_eq(r.sharp.degree, 2.0);
    cr_expect_leq(r.sharp.relative_difference, 1e-13, "radial %.17g, closed form %.17g", r.sharp.radial_curvature,
                  r.sharp.closed_form);
    cr_expect_leq(r.sharp.radial_curvature, r.sharp.lambda_max * (1 + 1e-12));
    cr_expect_eq(r.sharp.lambda_max, r.top_values[0]);
    nt_spectrum_free(&r);
    nt_transform *wrong = malloc(sizeof(nt_transform) * f.n);
    memcpy(wrong, f.list, sizeof(nt_transform) * f.n);
    int found = 0;
    for (int t = 0; t < f.n; t++) if (wrong[t].kind == NT_TR_HOMOGENEOUS) { wrong[t].p = 3; found = 1; }
    cr_assert(found, "the catalogue lists the homogeneity");
    r = analyse(&f, wrong, f.n, (nt_spectrum_opts){ .top = 1, .bottom = 0 });
    cr_expect_gt(r.sharp.relative_difference, 1e-3, "degree 3: %.2e", r.sharp.relative_difference);
    nt_spectrum_free(&r);
    r = analyse(&f, f.list, f.n, (nt_spectrum_opts){ .top = 1, .bottom = 0, .deflate = 1 });
    cr_expect(!r.sharp.applies && r.deflated == r.flat.orbit.rank, "deflated %d, rank %d", r.deflated, r.flat.orbit.rank);
    nt_spectrum_free(&r);
    free(wrong);
    mf_free(&f);
    mf_new(&f, 3, 1, (int[]){6}, NT_ACT_RELU, 2, NT_LOSS_MSE, 1, 0.01, 40, 40, 8, 13);
    r = analyse(&f, f.list, f.n, (nt_spectrum_opts){ .top = 1, .bottom = 0 });
    cr_expect(!r.sharp.applies, "biases: not homogeneous with A = I");
    nt_spectrum_free(&r);
    mf_free(&f);
}

/* The S_n sectors at the point where each layer's units are equal: multiplicity n - 1 found
 * (the verdict holds); negative controls: at the generic point the same eigenvalue groups
 * have a group of 1, and a list claiming one unit fewer is refused by the verdict.  Each tanh unit's mirror margin is lambda_min of O H_gamma O^T at the point
 * where the unit is dead, from the explicit Hessian. */
Test(analysis, sectors_and_mirrors, .timeout = 120)
{
    model_fixture f;
    mf_new(&f, 3, 2, (int[]){5, 4}, NT_ACT_TANH, 3, NT_LOSS_MSE, 1, 0.01, 40, 40, 8, 14);
    nt_spectrum r = analyse(&f, f.list, f.n, (nt_spectrum_opts){ .top = 1, .bottom = 1, .sectors = 1 });
    cr_assert_eq(r.n_sectors, 2);
    for (int i = 0; i < 2; i++) {
        const nt_sector *S = &r.sectors[i];
        cr_expect_eq(S->units, i == 0 ? 5 : 4);
        cr_expect_eq(S->predicted, S->units - 1);
        cr_expect(S->holds && S->found == S->predicted, "layer %d: found %d, predicted %d", S->layer, S->found,
                  S->predicted);
        cr_expect_eq(S->lambda_min, S->eigenvalues[0]);
        /* negative control: the same layer at the generic point */
        const int dim = S->dimension;
        double *lam = malloc(sizeof(double) * dim), *sym = malloc(sizeof(double) * f.m.d);
        int *mult = malloc(sizeof(int) * dim);
        t_sn_sector(f.e, &f.m, &f.ds, f.theta, S->layer, 0, sym, lam);
        int groups = nt_multiplicities(lam, dim, 1e-9 * fmax(fabs(lam[0]), fabs(lam[dim - 1])), mult), small = dim;
        for (int k = 0; k < groups; k++) small = mult[k] < small ? mult[k] : small;
        cr_expect_eq(small, 1, "layer %d at a generic point: smallest group %d", S->layer, small);
        free(lam); free(sym); free(mult);
    }
    /* negative control of the verdict: a list claiming 4 units in layer 1 (swaps up to unit 3)
     * predicts multiplicity 3; the 5 units' sector shows 4, not a multiple of 3 */
    nt_transform claim = {.kind = NT_TR_SWAP, .discrete = 1, .generators = 1, .layer = 1, .a = 2, .b = 3};
    nt_spectrum w = analyse(&f, &claim, 1, (nt_spectrum_opts){ .top = 1, .bottom = 0, .sectors = 1 });
    cr_assert_eq(w.n_sectors, 1);
    cr_expect(w.sectors[0].predicted == 3 && w.sectors[0].found == 4 && !w.sectors[0].holds,
              "claimed 4 units: predicted %d, found %d, holds %d", w.sectors[0].predicted, w.sectors[0].found,
              w.sectors[0].holds);
    nt_spectrum_free(&w);
    cr_assert_eq(r.n_mirrors, 9, "a sign flip per tanh unit");
    const int64_t d = f.m.d;
    for (int t = 0, k = 0; t < f.n; t++) {
        if (f.list[t].kind != NT_TR_SIGN_FLIP) continue;
        const nt_mirror *M = &r.mirrors[k++];
        cr_expect_str_eq(M->name, f.list[t].name);
        const int u = nt_breaking_dim(&f.m, &f.list[t]);
        cr_assert_eq(M->dimension, u);
        double *O = malloc(sizeof(double) * u * d), *dead = malloc(sizeof(double) * d), *lam = malloc(sizeof(double) * d);
        double *OH = malloc(sizeof(double) * u * d), *A = malloc(sizeof(double) * u * u), *mu = malloc(sizeof(double) * u), *H;
        nt_tr_apply_T(&f.m, &f.list[t], f.theta, dead);
        for (int64_t i = 0; i < d; i++) dead[i] = 0.5 * (dead[i] + f.theta[i]);
        nt_breaking_basis(&f.m, &f.list[t], O);
        explicit_spectrum(f.e, &f.m, &f.ds, dead, lam, &H);
        for (int a = 0; a < u; a++)
            for (int64_t j = 0; j < d; j++) {
                double s = 0;
                for (int64_t i = 0; i < d; i++) s += O[a * d + i] * H[i * d + j];
                OH[a * d + j] = s;
            }
        for (int a = 0; a < u; a++)
            for (int b = 0; b < u; b++) {
                double s = 0;
                for (int64_t j = 0; j < d; j++) s += OH[a * d + j] * O[b * d + j];
                A[a * u + b] = s;
            }
        LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'N', 'U', u, A, u, mu);
        cr_expect_leq(fabs(M->margin - mu[0]), 1e-10 * fmax(fabs(mu[0]), fabs(mu[u - 1])), "%s: margin %.15g, O H O^T %.15g",
                      M->name, M->margin, mu[0]);
        cr_expect_eq(M->stable, mu[0] > 0);
        free(O); free(dead); free(lam); free(OH); free(A); free(mu); free(H);
    }
    nt_spectrum_free(&r);
    mf_free(&f);
}

/* a model from spec text: its data, engine, seeded theta and catalogue */
static void spec_fixture(model_fixture *f, nt_spec *s, nt_data *data, const char *text)
{
    nt_error err;
    cr_assert_eq(nt_spec_parse(text, "<test>", s, &err), NT_OK, "%s", err.msg);
    cr_assert_eq(nt_data_load(s, data, &err), NT_OK, "%s", err.msg);
    memset(f, 0, sizeof *f);
    f->m = s->model;
    f->ds = data->train;
    f->e = nt_engine_new(&s->model, data->train.n, 8);
    f->theta = malloc(sizeof(double) * s->model.d);
    nt_init_params(&s->model, &s->init, f->theta);
    cr_assert_eq(nt_catalogue(&s->model, &f->list, &f->n), NT_OK);
}

static void spec_fixture_free(model_fixture *f, nt_spec *s, nt_data *data)
{
    nt_engine_free(f->e);
    free(f->theta);
    nt_transforms_free(f->list, f->n);
    nt_data_free(data);
    nt_spec_free(s);
}

#define LN_SPEC(eps) \
    "{\"model\": {\"input\": 13, \"layers\": [{\"dense\": 12}, {\"norm\": \"layer\", \"eps\": " eps "}, {\"act\": \"relu\"}," \
    " {\"dense\": 3}], \"loss\": \"cross_entropy\"}, \"data\": {\"source\": \"builtin\", \"name\": \"wine\"," \
    " \"standardize\": true}, \"init\": {\"seed\": 5}, \"weight_decay\": 0.01}"

/* The weights feeding a layer normalization (eps = 0) are scale-invariant: the fraction of
 * their gradient in the top-k eigenspace is the one (S1gamma) predicts from theta and the
 * eigenpairs.  Negative control: the same block with eps = 0.5 is not scale-invariant, and
 * the prediction misses. */
Test(analysis, scale_alignment_and_eps, .timeout = 120)
{
    model_fixture f;
    nt_spec s;
    nt_data data;
    spec_fixture(&f, &s, &data, LN_SPEC("0"));
    nt_spectrum r = analyse(&f, f.list, f.n, (nt_spectrum_opts){ .top = 8, .bottom = 0 });
    cr_assert_eq(r.n_scale, 1, "one scale-invariant block");
    const nt_scale_alignment *a = &r.scale[0];
    cr_expect_eq(a->k, 8);
    cr_expect_gt(a->gradient_norm, 0);
    cr_expect_gt(a->measured, 0.01);
    cr_expect_leq(fabs(a->measured - a->predicted), 1e-9, "measured %.15g, predicted %.15g", a->measured, a->predicted);
    nt_transform scale = f.list[0];
    for (int t = 0; t < f.n; t++) if (f.list[t].kind == NT_TR_SCALE) scale = f.list[t];
    nt_spectrum_free(&r);
    spec_fixture_free(&f, &s, &data);
    /* negative control: the same generator where eps breaks the scale symmetry */
    spec_fixture(&f, &s, &data, LN_SPEC("0.5"));
    r = analyse(&f, &scale, 1, (nt_spectrum_opts){ .top = 8, .bottom = 0 });
    cr_assert_eq(r.n_scale, 1);
    cr_expect_gt(fabs(r.scale[0].measured - r.scale[0].predicted), 1e-4, "eps 0.5: measured %.6g, predicted %.6g",
                 r.scale[0].measured, r.scale[0].predicted);
    nt_spectrum_free(&r);
    spec_fixture_free(&f, &s, &data);
}

/* Refused: a block naming no tensor, a negative end (NT_EINPUT); a loss that is not finite
 * (NT_EFAIL, before LAPACK sees it), each with nothing to free.  Control: the same call on
 * finite parameters succeeds. */
Test(analysis, errors)
{
    model_fixture f;
    mf_new(&f, 3, 1, (int[]){4}, NT_ACT_TANH, 2, NT_LOSS_MSE, 1, 0.0, 20, 20, 4, 15);
    nt_spectrum r;
    nt_error err = {0};
    nt_spectrum_opts o = { .top = 1, .bottom = 1, .block = "1.weight" };   /* layer 1 is the activation */
    cr_expect_eq(nt_spectrum_analyse(f.e, &f.m, &f.ds, f.list, f.n, f.theta, &o, &r, &err), NT_EINPUT);
    cr_expect(strstr(err.msg, "'1.weight'"), "%s", err.msg);
    o.block = NULL;
    o.top = -1;
    cr_expect_eq(nt_spectrum_analyse(f.e, &f.m, &f.ds, f.list, f.n, f.theta, &o, &r, &err), NT_EINPUT);
    o.top = 1;
    cr_assert_eq(nt_spectrum_analyse(f.e, &f.m, &f.ds, f.list, f.n, f.theta, &o, &r, &err), NT_OK, "%s", err.msg);
    nt_spectrum_free(&r);
    f.theta[0] = NAN;
    cr_expect_eq(nt_spectrum_analyse(f.e, &f.m, &f.ds, f.list, f.n, f.theta, &o, &r, &err), NT_EFAIL);
    cr_expect(strstr(err.msg, "loss is not finite"), "%s", err.msg);
    cr_expect(r.top_values == NULL && r.values == NULL, "nothing held after an error");
    mf_free(&f);
}
