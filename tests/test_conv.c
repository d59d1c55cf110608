/* test_conv.c: 2-D convolution (stride, zero padding), average and max pooling, flatten, on
 * image inputs: gradient and Hessian-vector products against finite differences, alone and
 * composed with normalizations and a residual block; the same network against PyTorch's
 * nn.Conv2d / MaxPool2d / AvgPool2d (skipped with the reason where torch is missing). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include "helpers.h"

static nt_layer conv(int c, int k, int s, int p) { return (nt_layer){ .kind = NT_LAYER_CONV, .units = c, .kernel = k, .stride = s, .padding = p, .bias = 1 }; }
static nt_layer pool(int max, int k, int s) { return (nt_layer){ .kind = NT_LAYER_POOL, .pool_max = max, .kernel = k, .stride = s }; }
static nt_layer dense(int units) { return (nt_layer){ .kind = NT_LAYER_DENSE, .units = units, .bias = 1 }; }
static nt_layer act(nt_act a) { return (nt_layer){ .kind = NT_LAYER_ACT, .act = a, .alpha = 0.01 }; }
static const nt_layer FLAT = { .kind = NT_LAYER_FLATTEN };

Test(conv, alone_padded)
{
    nt_layer L[] = { conv(3, 3, 1, 1), act(NT_ACT_TANH), FLAT, dense(3) };
    fd_check_image((const int[3]){2, 5, 4}, L, 4, NT_LOSS_CROSS_ENTROPY, 0.0, 71, 0.5, "conv");
}

Test(conv, strided_without_bias)
{
    nt_layer c = conv(4, 2, 2, 0);
    c.bias = 0;
    nt_layer L[] = { c, act(NT_ACT_SOFTPLUS), FLAT, dense(2) };
    fd_check_image((const int[3]){1, 6, 6}, L, 4, NT_LOSS_MSE, 0.01, 72, 0.5, "conv");
}

Test(conv, average_pool)
{
    nt_layer L[] = { conv(3, 3, 1, 1), act(NT_ACT_GELU), pool(0, 2, 2), FLAT, dense(3) };
    fd_check_image((const int[3]){2, 6, 6}, L, 5, NT_LOSS_CROSS_ENTROPY, 0.0, 73, 0.5, "avg pool");
}

/* max pooling is piecewise linear: differences are exact away from ties, which random
 * inputs avoid */
Test(conv, max_pool)
{
    nt_layer L[] = { conv(3, 3, 1, 0), act(NT_ACT_TANH), pool(1, 2, 1), FLAT, dense(3) };
    fd_check_image((const int[3]){1, 6, 5}, L, 5, NT_LOSS_CROSS_ENTROPY, 0.003, 74, 0.5, "max pool");
}

Test(conv, composed_with_norms_and_residual)
{
    nt_layer L[] = { conv(3, 3, 1, 1), { .kind = NT_LAYER_BATCHNORM, .affine = 1, .eps = 1e-5 }, act(NT_ACT_RELU),
                     { .kind = NT_LAYER_BRANCH }, conv(3, 3, 1, 1), act(NT_ACT_TANH), { .kind = NT_LAYER_ADD },
                     pool(1, 2, 2), conv(2, 2, 1, 0), FLAT, { .kind = NT_LAYER_LAYERNORM, .affine = 1, .eps = 1e-5 },
                     dense(3) };
    fd_check_image((const int[3]){2, 6, 6}, L, 12, NT_LOSS_CROSS_ENTROPY, 0.001, 75, 0.5, "conv net");
}

Test(conv, shapes_are_checked)
{
    nt_model m;
    nt_error err = {0};
    nt_layer a[] = { conv(3, 7, 1, 0), FLAT, dense(2) };   /* kernel larger than the image */
    cr_assert_eq(nt_model_init_image(&m, (const int[3]){1, 5, 5}, a, 3, NT_LOSS_CROSS_ENTROPY, 0, &err), NT_EINPUT);
    cr_assert_not_null(strstr(err.msg, "model.layers[0].conv"), "%s", err.msg);
    nt_layer b[] = { conv(3, 3, 1, 0), dense(2) };   /* dense on an image */
    cr_assert_eq(nt_model_init_image(&m, (const int[3]){1, 5, 5}, b, 2, NT_LOSS_CROSS_ENTROPY, 0, &err), NT_EINPUT);
    cr_assert_not_null(strstr(err.msg, "flatten it first"), "%s", err.msg);
    nt_layer c[] = { dense(4), conv(2, 1, 1, 0), dense(2) };   /* conv on a flat vector */
    cr_assert_eq(nt_model_init(&m, 5, c, 3, NT_LOSS_CROSS_ENTROPY, 0, &err), NT_EINPUT);
    cr_assert_not_null(strstr(err.msg, "needs an image"), "%s", err.msg);
    nt_layer d[] = { conv(3, 3, 2, 1), FLAT, dense(2) };   /* (5 + 2 - 3)/2 + 1 = 3: 3 x 3 x 3 */
    cr_assert_eq(nt_model_init_image(&m, (const int[3]){2, 5, 5}, d, 3, NT_LOSS_CROSS_ENTROPY, 0, &err), NT_OK, "%s", err.msg);
    cr_assert_eq(m.layers[0].shape_out[1], 3);
    cr_assert_eq(m.d, 3 * 2 * 9 + 3 + 2 * 27 + 2);
    cr_assert_str_eq(m.tensors[0].name, "0.weight");
    cr_assert_eq(m.tensors[0].ndim, 4);
    nt_model_free(&m);
}
