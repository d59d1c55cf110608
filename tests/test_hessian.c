/* test_hessian.c: the dense Hessian: symmetric to round-off, equal to the finite-difference
 * Jacobian of the gradient, and consistent with single products and with chunking. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include <cblas.h>
#include "helpers.h"

static double asymmetry(int64_t d, const double *H)
{
    double a = 0, n = 0;
    for (int64_t i = 0; i < d; i++)
        for (int64_t j = 0; j < d; j++) {
            a += (H[i * d + j] - H[j * d + i]) * (H[i * d + j] - H[j * d + i]);
            n += H[i * d + j] * H[i * d + j];
        }
    return sqrt(a / n);
}

Test(hessian, symmetric_and_equal_to_fd_jacobian_of_gradient)
{
    const nt_act acts[] = {NT_ACT_TANH, NT_ACT_RELU, NT_ACT_SQUARE};
    const nt_loss losses[] = {NT_LOSS_CROSS_ENTROPY, NT_LOSS_MSE, NT_LOSS_LOGISTIC};
    for (int c = 0; c < 3; c++) {
        nt_model m;
        nt_dataset ds;
        int K = losses[c] == NT_LOSS_LOGISTIC ? 1 : 3;
        make_mlp(&m, 4, 2, (int[]){5, 4}, acts[c], K, losses[c], 1, 0.01 * c);
        make_data(&ds, &m, 19, 50 + c);
        const int64_t d = m.d;
        nt_engine *e = nt_engine_new(&m, 8, 7);
        double *theta = malloc(sizeof(double) * d), *H = malloc(sizeof(double) * d * d);
        double *J = malloc(sizeof(double) * d * d), *unit = calloc((size_t)d, sizeof(double));
        fill_normal(theta, d, 0.5, 60 + c);
        t_hessian(e, theta, &ds, H);
        for (int64_t i = 0; i < d; i++) {   /* column i of the Jacobian of g, as row i of J */
            unit[i] = 1;
            fd_grad_dir(e, d, theta, &ds, unit, 1e-5, J + i * d);
            unit[i] = 0;
        }
        double asym = asymmetry(d, H), err = nt_rel_diff(d * d, H, J);
        cr_expect_leq(asym, 1e-14, "%s: |H - H^T| / |H| = %.3e", nt_act_name(acts[c]), asym);
        cr_expect_leq(err, 1e-7, "%s: H vs FD Jacobian of g: %.3e", nt_act_name(acts[c]), err);
        cr_log_info("%s/%s d=%lld: asymmetry %.2e, H vs FD %.2e", nt_act_name(acts[c]),
                    nt_loss_name(losses[c]), (long long)d, asym, err);
        free(theta); free(H); free(J); free(unit);
        nt_engine_free(e);
        nt_dataset_free(&ds);
        nt_model_free(&m);
    }
}

/* H v from the dense matrix equals the matrix-free product; the Hessian does not depend
 * on the chunk size or the block size (to round-off); a different theta gives another H. */
Test(hessian, matches_products_and_chunking)
{
    nt_model m;
    nt_dataset ds;
    make_mlp(&m, 3, 2, (int[]){6, 5}, NT_ACT_GELU, 3, NT_LOSS_CROSS_ENTROPY, 1, 0.0);
    make_data(&ds, &m, 30, 70);
    const int64_t d = m.d;
    nt_engine *a = nt_engine_new(&m, 30, 32), *b = nt_engine_new(&m, 7, 3);
    double *theta = malloc(sizeof(double) * d), *H1 = malloc(sizeof(double) * d * d);
    double *H2 = malloc(sizeof(double) * d * d), *v = malloc(sizeof(double) * d);
    double *hv = malloc(sizeof(double) * d), *Hv = malloc(sizeof(double) * d);
    fill_normal(theta, d, 0.5, 71);
    fill_normal(v, d, 1.0, 72);
    t_hessian(a, theta, &ds, H1);
    t_hessian(b, theta, &ds, H2);
    cr_expect_leq(nt_rel_diff(d * d, H1, H2), 1e-13);
    t_hvp(a, theta, &ds, 1, v, hv, NULL);
    cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)d, (int)d, 1.0, H1, (int)d, v, 1, 0.0, Hv, 1);
    cr_expect_leq(nt_rel_diff(d, hv, Hv), 1e-13);
    theta[0] += 0.1;   /* control: the Hessian depends on theta */
    t_hessian(b, theta, &ds, H2);
    cr_expect_gt(nt_rel_diff(d * d, H1, H2), 1e-6);
    free(theta); free(H1); free(H2); free(v); free(hv); free(Hv);
    nt_engine_free(a); nt_engine_free(b);
    nt_dataset_free(&ds);
    nt_model_free(&m);
}

/* A frozen engine (values and adjoints kept at theta) gives bitwise the products of the
 * full sweep, over several chunks, blocks and with weight decay; it declines when the
 * memory cap is too small, and a product at another theta takes the full sweep. */
Test(hessian, frozen_products_are_bitwise_the_full_ones)
{
    nt_model m;
    nt_dataset ds;
    make_mlp(&m, 4, 2, (int[]){7, 5}, NT_ACT_TANH, 3, NT_LOSS_CROSS_ENTROPY, 1, 0.01);
    make_data(&ds, &m, 37, 73);
    const int64_t d = m.d;
    const int k = 5;
    nt_engine *e = nt_engine_new(&m, 8, 3);
    double *theta = malloc(sizeof(double) * d), *theta2 = malloc(sizeof(double) * d);
    double *V = malloc(sizeof(double) * k * d), *A = malloc(sizeof(double) * k * d), *B = malloc(sizeof(double) * k * d);
    fill_normal(theta, d, 0.5, 74);
    fill_normal(V, k * d, 1.0, 75);
    double la = t_hvp(e, theta, &ds, k, V, A, NULL);
    cr_assert_eq(nt_engine_freeze(e, theta, &ds, 16), 0, "froze past a 16-byte cap");
    cr_assert_eq(nt_engine_freeze(e, theta, &ds, 1e9), 1);
    double lb = t_hvp(e, theta, &ds, k, V, B, NULL);
    cr_assert_eq(memcmp(A, B, sizeof(double) * k * d), 0, "frozen products differ from the full sweep");
    cr_assert_eq(la, lb);
    memcpy(theta2, theta, sizeof(double) * d);   /* another theta: the full sweep, not the kept values */
    theta2[0] += 0.1;
    t_hvp(e, theta2, &ds, k, V, B, NULL);
    cr_assert_gt(nt_rel_diff(k * d, A, B), 1e-8, "a product at another theta used the frozen values");
    nt_engine_thaw(e);
    t_hvp(e, theta, &ds, k, V, B, NULL);
    cr_assert_eq(memcmp(A, B, sizeof(double) * k * d), 0);
    free(theta); free(theta2); free(V); free(A); free(B);
    nt_engine_free(e);
    nt_dataset_free(&ds);
    nt_model_free(&m);
}
