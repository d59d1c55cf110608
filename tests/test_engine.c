/* test_engine.c: the engine against central finite differences, for every activation x
 * loss, on several widths and depths, with and without biases and weight decay; blocks
 * against single products; output JVP/VJP against each other and against differences. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include "helpers.h"

#define FD_TOL 1e-7   /* a 4-point difference with h = 1e-5 is good to ~1e-10 here */

typedef struct { int n_hidden; int widths[3]; int bias; double wd; int64_t n, chunk; } config;

/* depth 1..3, odd widths, a chunk that does not divide n (so chunking is exercised) */
static const config configs[] = {
    {2, {5, 4}, 1, 0.0, 23, 7},
    {1, {6}, 0, 0.01, 17, 17},
    {3, {3, 4, 3}, 1, 0.003, 12, 5},
};

typedef struct { double grad_err, hvp_err; } fd_result;

/* g and H v_j (block of 3) against finite differences of the loss and of the gradient */
static fd_result fd_check(nt_act act, nt_loss loss, const config *c, uint64_t seed)
{
    nt_model m;
    nt_dataset ds;
    int K = (loss == NT_LOSS_LOGISTIC || loss == NT_LOSS_EXPONENTIAL) ? 1 : 3;
    make_mlp(&m, 4, c->n_hidden, c->widths, act, K, loss, c->bias, c->wd);
    make_data(&ds, &m, c->n, seed);
    const int64_t d = m.d;
    nt_engine *e = nt_engine_new(&m, c->chunk, 3);
    double *theta = malloc(sizeof(double) * d), *g = malloc(sizeof(double) * d);
    double *V = malloc(sizeof(double) * 3 * d), *HV = malloc(sizeof(double) * 3 * d);
    double *fd = malloc(sizeof(double) * d), *unit = calloc((size_t)d, sizeof(double));
    fill_normal(theta, d, 0.5, seed + 1);
    fill_normal(V, 3 * d, 1.0, seed + 2);
    t_grad(e, theta, &ds, g);
    for (int64_t i = 0; i < d; i++) {   /* every coordinate of the gradient */
        unit[i] = 1;
        fd[i] = fd_loss_dir(e, d, theta, &ds, unit, 1e-5);
        unit[i] = 0;
    }
    fd_result r = { nt_rel_diff(d, g, fd), 0 };
    t_hvp(e, theta, &ds, 3, V, HV, NULL);
    for (int j = 0; j < 3; j++) {
        fd_grad_dir(e, d, theta, &ds, V + j * d, 1e-5, fd);
        double err = nt_rel_diff(d, HV + j * d, fd);
        if (err > r.hvp_err) r.hvp_err = err;
    }
    free(theta); free(g); free(V); free(HV); free(fd); free(unit);
    nt_engine_free(e);
    nt_dataset_free(&ds);
    nt_model_free(&m);
    return r;
}

static void check_loss(nt_loss loss)
{
    double worst_g = 0, worst_h = 0;
    for (int a = 0; a < NT_ACT_COUNT; a++)
        for (size_t c = 0; c < sizeof configs / sizeof *configs; c++) {
            fd_result r = fd_check((nt_act)a, loss, &configs[c], 100 * a + 10 * c + loss);
            cr_expect_leq(r.grad_err, FD_TOL, "%s + %s, config %zu: gradient vs FD %.3e",
                          nt_act_name(a), nt_loss_name(loss), c, r.grad_err);
            cr_expect_leq(r.hvp_err, FD_TOL, "%s + %s, config %zu: HVP vs FD %.3e",
                          nt_act_name(a), nt_loss_name(loss), c, r.hvp_err);
            worst_g = fmax(worst_g, r.grad_err);
            worst_h = fmax(worst_h, r.hvp_err);
        }
    cr_log_info("%s: worst relative error vs FD over %d activations x %zu configs: gradient %.2e, HVP %.2e",
                nt_loss_name(loss), NT_ACT_COUNT, sizeof configs / sizeof *configs, worst_g, worst_h);
}

Test(engine_fd, mse) { check_loss(NT_LOSS_MSE); }
Test(engine_fd, cross_entropy) { check_loss(NT_LOSS_CROSS_ENTROPY); }
Test(engine_fd, logistic) { check_loss(NT_LOSS_LOGISTIC); }
Test(engine_fd, exponential) { check_loss(NT_LOSS_EXPONENTIAL); }

/* Negative control: the comparison resolves an error far below what a wrong rule makes.
 * A product off by 1e-5 of its norm in one coordinate, or the Gauss-Newton part alone
 * (what dropping sigma'' would give), must fail the FD_TOL check. */
Test(engine_fd, check_detects_a_wrong_product)
{
    nt_model m;
    nt_dataset ds;
    make_mlp(&m, 4, 2, (int[]){5, 4}, NT_ACT_TANH, 3, NT_LOSS_CROSS_ENTROPY, 1, 0.0);
    make_data(&ds, &m, 20, 3);
    const int64_t d = m.d;
    nt_engine *e = nt_engine_new(&m, 20, 1);
    double *theta = malloc(sizeof(double) * d), *v = malloc(sizeof(double) * d);
    double *hv = malloc(sizeof(double) * d), *fd = malloc(sizeof(double) * d);
    fill_normal(theta, d, 0.5, 4);
    fill_normal(v, d, 1.0, 5);
    t_hvp(e, theta, &ds, 1, v, hv, NULL);
    fd_grad_dir(e, d, theta, &ds, v, 1e-5, fd);
    cr_assert_leq(nt_rel_diff(d, hv, fd), FD_TOL);
    hv[d / 2] += 1e-5 * nt_norm2(d, hv);
    cr_assert_gt(nt_rel_diff(d, hv, fd), FD_TOL, "a perturbed product passed the check");
    /* Gauss-Newton product sum_n J^T U J v / N, from the engine's own JVP/VJP */
    double *Jv = malloc(sizeof(double) * 20 * 3), *UJv = malloc(sizeof(double) * 20 * 3);
    double *F = malloc(sizeof(double) * 20 * 3);
    t_outputs(e, theta, &ds, F);
    t_jvp(e, theta, &ds, 1, v, Jv);
    for (int n = 0; n < 20; n++) nt_loss_hess_apply(m.loss, 3, F + 3 * n, ds.y + n, Jv + 3 * n, UJv + 3 * n);
    t_vjp(e, theta, &ds, UJv, hv);
    for (int64_t i = 0; i < d; i++) hv[i] /= 20;
    double gn = nt_rel_diff(d, hv, fd);
    cr_assert_gt(gn, 1e-3, "the Gauss-Newton product is not the Hessian's (%.3e)", gn);
    free(theta); free(v); free(hv); free(fd); free(Jv); free(UJv); free(F);
    nt_engine_free(e);
    nt_dataset_free(&ds);
    nt_model_free(&m);
}

/* A block of k vectors gives the k single products, to round-off; and a workspace
 * smaller than the block (blocks of blocks) as well. */
Test(engine, block_equals_single_products)
{
    nt_model m;
    nt_dataset ds;
    make_mlp(&m, 6, 2, (int[]){9, 7}, NT_ACT_GELU, 4, NT_LOSS_CROSS_ENTROPY, 1, 0.01);
    make_data(&ds, &m, 37, 11);
    const int64_t d = m.d;
    const int k = 11;
    nt_engine *eb = nt_engine_new(&m, 16, k), *e1 = nt_engine_new(&m, 16, 1), *e4 = nt_engine_new(&m, 37, 4);
    double *theta = malloc(sizeof(double) * d), *V = malloc(sizeof(double) * k * d);
    double *HV = malloc(sizeof(double) * k * d), *HV4 = malloc(sizeof(double) * k * d);
    double *hv = malloc(sizeof(double) * d);
    fill_normal(theta, d, 0.4, 12);
    fill_normal(V, k * d, 1.0, 13);
    t_hvp(eb, theta, &ds, k, V, HV, NULL);
    t_hvp(e4, theta, &ds, k, V, HV4, NULL);
    for (int j = 0; j < k; j++) {
        t_hvp(e1, theta, &ds, 1, V + j * d, hv, NULL);
        cr_expect_leq(nt_rel_diff(d, HV + j * d, hv), 1e-14, "vector %d: block vs single %.3e", j,
                      nt_rel_diff(d, HV + j * d, hv));
        cr_expect_leq(nt_rel_diff(d, HV4 + j * d, hv), 1e-14, "vector %d: blocks of 4 vs single", j);
    }
    /* control: products of different vectors differ */
    cr_expect_gt(nt_rel_diff(d, HV, HV + d), 1e-3);
    free(theta); free(V); free(HV); free(HV4); free(hv);
    nt_engine_free(eb); nt_engine_free(e1); nt_engine_free(e4);
    nt_dataset_free(&ds);
    nt_model_free(&m);
}

/* The gradient returned by nt_hvp is nt_grad's, and the loss is nt_loss_value's. */
Test(engine, hvp_returns_the_gradient)
{
    nt_model m;
    nt_dataset ds;
    make_mlp(&m, 3, 1, (int[]){5}, NT_ACT_SOFTPLUS, 2, NT_LOSS_MSE, 1, 0.05);
    make_data(&ds, &m, 9, 21);
    const int64_t d = m.d;
    nt_engine *e = nt_engine_new(&m, 4, 2);
    double *theta = malloc(sizeof(double) * d), *V = malloc(sizeof(double) * 2 * d);
    double *HV = malloc(sizeof(double) * 2 * d), *g1 = malloc(sizeof(double) * d), *g2 = malloc(sizeof(double) * d);
    fill_normal(theta, d, 0.7, 22);
    fill_normal(V, 2 * d, 1.0, 23);
    double l1 = t_hvp(e, theta, &ds, 2, V, HV, g1);
    double l2 = t_grad(e, theta, &ds, g2);
    double l3 = t_loss_value(e, theta, &ds);
    cr_expect_leq(nt_rel_diff(d, g1, g2), 1e-15);
    cr_expect_leq(fabs(l1 - l2), 1e-15 * fabs(l2));
    cr_expect_leq(fabs(l3 - l2), 1e-15 * fabs(l2));
    free(theta); free(V); free(HV); free(g1); free(g2);
    nt_engine_free(e);
    nt_dataset_free(&ds);
    nt_model_free(&m);
}

/* Weight decay enters exactly as (gamma/2)|theta|^2: g_gamma - g = gamma theta,
 * H_gamma v - H v = gamma v, L_gamma - L = gamma |theta|^2 / 2. */
Test(engine, weight_decay_terms)
{
    nt_model m0, m1;
    nt_dataset ds;
    const double gam = 0.3;
    make_mlp(&m0, 3, 1, (int[]){4}, NT_ACT_SIGMOID, 3, NT_LOSS_CROSS_ENTROPY, 1, 0.0);
    make_mlp(&m1, 3, 1, (int[]){4}, NT_ACT_SIGMOID, 3, NT_LOSS_CROSS_ENTROPY, 1, gam);
    make_data(&ds, &m0, 10, 31);
    const int64_t d = m0.d;
    nt_engine *e0 = nt_engine_new(&m0, 10, 1), *e1 = nt_engine_new(&m1, 10, 1);
    double *theta = malloc(sizeof(double) * d), *v = malloc(sizeof(double) * d);
    double *h0 = malloc(sizeof(double) * d), *h1 = malloc(sizeof(double) * d);
    double *g0 = malloc(sizeof(double) * d), *g1 = malloc(sizeof(double) * d);
    fill_normal(theta, d, 1.0, 32);
    fill_normal(v, d, 1.0, 33);
    double L0 = t_hvp(e0, theta, &ds, 1, v, h0, g0), L1 = t_hvp(e1, theta, &ds, 1, v, h1, g1);
    double tt = 0;
    for (int64_t i = 0; i < d; i++) {
        tt += theta[i] * theta[i];
        cr_expect_leq(fabs(g1[i] - g0[i] - gam * theta[i]), 1e-14);
        cr_expect_leq(fabs(h1[i] - h0[i] - gam * v[i]), 1e-14);
    }
    cr_expect_leq(fabs(L1 - L0 - 0.5 * gam * tt), 1e-13);
    free(theta); free(v); free(h0); free(h1); free(g0); free(g1);
    nt_engine_free(e0); nt_engine_free(e1);
    nt_dataset_free(&ds);
    nt_model_free(&m0); nt_model_free(&m1);
}

/* Output JVP and VJP: w^T (J v) = (J^T w)^T v for every sample set, and J v against a
 * finite difference of the outputs. */
Test(engine, jvp_vjp_adjoint_and_fd)
{
    nt_model m;
    nt_dataset ds;
    make_mlp(&m, 5, 2, (int[]){6, 5}, NT_ACT_TANH, 3, NT_LOSS_MSE, 1, 0.0);
    make_data(&ds, &m, 13, 41);
    const int64_t d = m.d, n = 13, K = 3;
    nt_engine *e = nt_engine_new(&m, 6, 2);
    double *theta = malloc(sizeof(double) * d), *V = malloc(sizeof(double) * 2 * d);
    double *Jv = malloc(sizeof(double) * n * 2 * K), *W = malloc(sizeof(double) * n * K);
    double *JtW = malloc(sizeof(double) * d), *Fp = malloc(sizeof(double) * n * K), *Fm = malloc(sizeof(double) * n * K);
    double *tp = malloc(sizeof(double) * d);
    fill_normal(theta, d, 0.6, 42);
    fill_normal(V, 2 * d, 1.0, 43);
    fill_normal(W, n * K, 1.0, 44);
    t_jvp(e, theta, &ds, 2, V, Jv);
    t_vjp(e, theta, &ds, W, JtW);
    for (int j = 0; j < 2; j++) {
        double lhs = 0, rhs = 0;
        for (int64_t s = 0; s < n; s++)
            for (int64_t o = 0; o < K; o++) lhs += W[s * K + o] * Jv[(s * 2 + j) * K + o];
        for (int64_t i = 0; i < d; i++) rhs += JtW[i] * V[j * d + i];
        cr_expect_leq(fabs(lhs - rhs), 1e-13 * (fabs(lhs) + fabs(rhs)), "vector %d: %.17g vs %.17g", j, lhs, rhs);
        /* central difference of the outputs along v_j (2 points; h^2 error ~ 1e-12) */
        const double h = 1e-6;
        for (int64_t i = 0; i < d; i++) tp[i] = theta[i] + h * V[j * d + i];
        t_outputs(e, tp, &ds, Fp);
        for (int64_t i = 0; i < d; i++) tp[i] = theta[i] - h * V[j * d + i];
        t_outputs(e, tp, &ds, Fm);
        double num = 0, den = 0;
        for (int64_t s = 0; s < n; s++)
            for (int64_t o = 0; o < K; o++) {
                double fd = (Fp[s * K + o] - Fm[s * K + o]) / (2 * h), an = Jv[(s * 2 + j) * K + o];
                num += (fd - an) * (fd - an);
                den += an * an;
            }
        cr_expect_leq(sqrt(num / den), 1e-8, "vector %d: JVP vs FD %.3e", j, sqrt(num / den));
    }
    free(theta); free(V); free(Jv); free(W); free(JtW); free(Fp); free(Fm); free(tp);
    nt_engine_free(e);
    nt_dataset_free(&ds);
    nt_model_free(&m);
}
