/* test_layout.c: the parameter layout of docs/interface.md (W (n_out x n_in) then b, layer by
 * layer), proven on a hand-computed example and, where /usr/bin/python3 has torch, against
 * PyTorch's nn.Sequential fed the same flat vector. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include "helpers.h"

/* 2 -> dense 2 -> relu -> dense 1, mse, one sample x = (1, 1), y = 0, with
 *   W1 = [[1, 2], [3, 4]], b1 = (0.5, -0.5), W2 = [[1, -1]], b2 = 0.25.
 * By hand: z1 = W1 x + b1 = (3.5, 6.5) (both positive, relu passes them),
 *   f = 3.5 - 6.5 + 0.25 = -2.75, L = f^2 / 2 = 3.78125, u = f - y = -2.75;
 *   dW2 = u h = (-9.625, -17.875), db2 = -2.75; dh = u W2 = (-2.75, 2.75) = dz1;
 *   dW1 = dz1 x^T = [[-2.75, -2.75], [2.75, 2.75]], db1 = (-2.75, 2.75).
 *   With v = e_{b2}: H v = d(grad)/d b2 = (dW1, db1, dW2, db2) of u = 1 = (1,1,-1,-1, 1,-1, 3.5,6.5, 1). */
Test(layout, hand_computed_example)
{
    nt_layer L[] = {{.kind = NT_LAYER_DENSE, .units = 2, .bias = 1}, {.kind = NT_LAYER_ACT, .act = NT_ACT_RELU},
                    {.kind = NT_LAYER_DENSE, .units = 1, .bias = 1}};
    nt_model m;
    nt_error err;
    cr_assert_eq(nt_model_init(&m, 2, L, 3, NT_LOSS_MSE, 0.0, &err), NT_OK);
    cr_assert_eq(m.d, 9);
    cr_assert_str_eq(m.tensors[0].name, "0.weight");
    cr_assert_str_eq(m.tensors[1].name, "0.bias");
    cr_assert_str_eq(m.tensors[2].name, "2.weight");
    cr_assert_str_eq(m.tensors[3].name, "2.bias");
    cr_assert_eq(m.tensors[2].offset, 6);
    double theta[9] = {1, 2, 3, 4, 0.5, -0.5, 1, -1, 0.25};
    double x[2] = {1, 1}, y[1] = {0};
    nt_dataset ds = {.n = 1, .dim = 2, .ydim = 1, .x = x, .y = y};
    const double g_hand[9] = {-2.75, -2.75, 2.75, 2.75, -2.75, 2.75, -9.625, -17.875, -2.75};
    const double hv_hand[9] = {1, 1, -1, -1, 1, -1, 3.5, 6.5, 1};
    double g[9], hv[9], v[9] = {0, 0, 0, 0, 0, 0, 0, 0, 1};
    nt_engine *e = nt_engine_new(&m, 1, 1);
    double loss = t_grad(e, theta, &ds, g);
    cr_expect_eq(loss, 3.78125);
    for (int i = 0; i < 9; i++) cr_expect_eq(g[i], g_hand[i], "g[%d] = %g, by hand %g", i, g[i], g_hand[i]);
    t_hvp(e, theta, &ds, 1, v, hv, NULL);
    for (int i = 0; i < 9; i++) cr_expect_eq(hv[i], hv_hand[i], "Hv[%d] = %g, by hand %g", i, hv[i], hv_hand[i]);
    /* control: the transposed layout (W stored column-major) gives another loss */
    double swapped[9] = {1, 3, 2, 4, 0.5, -0.5, 1, -1, 0.25};
    cr_expect_neq(t_loss_value(e, swapped, &ds), loss);
    nt_engine_free(e);
    nt_model_free(&m);
}

/* The same network in PyTorch (tests/helpers.c, torch_diffs): loss, gradient and H v by double
 * backward must agree to 1e-10 relative; the model is freed.  prelude: python code (module
 * classes) defined before the network. */
static void compare_model_with(nt_model *mp, const char *prelude, const char *net, const char *what, const char *torch_loss)
{
    double r[3];
    torch_diffs(mp, prelude, net, torch_loss, 25, 80, r);
    cr_expect_leq(r[0], 1e-12, "%s: loss vs torch %.3e", what, r[0]);
    cr_expect_leq(r[1], 1e-10, "%s: gradient vs torch %.3e", what, r[1]);
    cr_expect_leq(r[2], 1e-10, "%s: Hv vs torch %.3e", what, r[2]);
    cr_log_info("%s vs PyTorch: loss %.1e, gradient %.1e, Hv %.1e", what, r[0], r[1], r[2]);
    nt_model_free(mp);
}

static void compare_model(nt_model *mp, const char *net, const char *what, const char *torch_loss)
{
    compare_model_with(mp, "", net, what, torch_loss);
}

/* an MLP 4-6-5-K with act between the layers */
static void compare_with_torch(nt_act act, const char *torch_act, nt_loss loss, const char *torch_loss,
                               int bias, double wd)
{
    nt_model m;
    int K = (loss == NT_LOSS_LOGISTIC || loss == NT_LOSS_EXPONENTIAL) ? 1 : 3;
    make_mlp(&m, 4, 2, (int[]){6, 5}, act, K, loss, bias, wd);
    char net[512], what[64];
    const char *b = bias ? "True" : "False";
    snprintf(net, sizeof net, "torch.nn.Sequential(torch.nn.Linear(4, 6, bias=%s), %s, torch.nn.Linear(6, 5, bias=%s), %s, "
             "torch.nn.Linear(5, %d, bias=%s))", b, torch_act, b, torch_act, K, b);
    snprintf(what, sizeof what, "%s/%s", nt_act_name(act), nt_loss_name(loss));
    compare_model(&m, net, what, torch_loss);
}

/* layer normalization, affine with PyTorch's eps and plain with eps 0, in nn.LayerNorm's
 * parameter order (weight, bias) */
Test(layout, layernorm_same_as_pytorch)
{
    if (!torch_available()) cr_skip_test("/usr/bin/python3 cannot import torch (Debian's python3-torch): PyTorch comparison skipped");
    nt_layer L[] = {{.kind = NT_LAYER_DENSE, .units = 6, .bias = 1}, {.kind = NT_LAYER_LAYERNORM, .affine = 1, .eps = 1e-5},
                    {.kind = NT_LAYER_ACT, .act = NT_ACT_RELU}, {.kind = NT_LAYER_DENSE, .units = 5, .bias = 1},
                    {.kind = NT_LAYER_LAYERNORM, .affine = 0, .eps = 0}, {.kind = NT_LAYER_ACT, .act = NT_ACT_TANH},
                    {.kind = NT_LAYER_DENSE, .units = 3, .bias = 1}};
    nt_model m;
    nt_error err = {0};
    cr_assert_eq(nt_model_init(&m, 4, L, 7, NT_LOSS_CROSS_ENTROPY, 0.001, &err), NT_OK, "%s", err.msg);
    compare_model(&m, "torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.LayerNorm(6, eps=1e-5), torch.nn.ReLU(), "
                  "torch.nn.Linear(6, 5), torch.nn.LayerNorm(5, eps=0.0, elementwise_affine=False), torch.nn.Tanh(), "
                  "torch.nn.Linear(5, 3))", "layernorm", "ce");
}

/* batch normalization in training mode (batch statistics, biased variance), affine with
 * eps 1e-5 and plain with eps 0, in nn.BatchNorm1d's parameter order; the data set is one batch */
Test(layout, batchnorm_same_as_pytorch)
{
    if (!torch_available()) cr_skip_test("/usr/bin/python3 cannot import torch (Debian's python3-torch): PyTorch comparison skipped");
    nt_layer L[] = {{.kind = NT_LAYER_DENSE, .units = 6, .bias = 1}, {.kind = NT_LAYER_BATCHNORM, .affine = 1, .eps = 1e-5},
                    {.kind = NT_LAYER_ACT, .act = NT_ACT_RELU}, {.kind = NT_LAYER_DENSE, .units = 5, .bias = 1},
                    {.kind = NT_LAYER_ACT, .act = NT_ACT_TANH}, {.kind = NT_LAYER_BATCHNORM, .affine = 0, .eps = 0},
                    {.kind = NT_LAYER_DENSE, .units = 3, .bias = 1}};
    nt_model m;
    nt_error err = {0};
    cr_assert_eq(nt_model_init(&m, 4, L, 7, NT_LOSS_CROSS_ENTROPY, 0.001, &err), NT_OK, "%s", err.msg);
    compare_model(&m, "torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6, eps=1e-5), torch.nn.ReLU(), "
                  "torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.BatchNorm1d(5, eps=0.0, affine=False), "
                  "torch.nn.Linear(5, 3)).train()", "batchnorm", "ce");
}

/* a conv net on 2 x 6 x 6 images: nn.Conv2d (padding, stride), MaxPool2d, BatchNorm1d after
 * flattening, AvgPool2d, in parameters() order; the flat input is unflattened for PyTorch */
Test(layout, conv_net_same_as_pytorch)
{
    if (!torch_available()) cr_skip_test("/usr/bin/python3 cannot import torch (Debian's python3-torch): PyTorch comparison skipped");
    nt_layer L[] = {{.kind = NT_LAYER_CONV, .units = 3, .kernel = 3, .stride = 1, .padding = 1, .bias = 1},
                    {.kind = NT_LAYER_ACT, .act = NT_ACT_RELU}, {.kind = NT_LAYER_POOL, .pool_max = 1, .kernel = 2, .stride = 2},
                    {.kind = NT_LAYER_CONV, .units = 4, .kernel = 2, .stride = 1, .padding = 0, .bias = 0},
                    {.kind = NT_LAYER_ACT, .act = NT_ACT_TANH}, {.kind = NT_LAYER_POOL, .pool_max = 0, .kernel = 2, .stride = 1},
                    {.kind = NT_LAYER_FLATTEN}, {.kind = NT_LAYER_BATCHNORM, .affine = 1, .eps = 1e-5},
                    {.kind = NT_LAYER_DENSE, .units = 3, .bias = 1}};
    nt_model m;
    nt_error err = {0};
    cr_assert_eq(nt_model_init_image(&m, (const int[3]){2, 6, 6}, L, 9, NT_LOSS_CROSS_ENTROPY, 0.001, &err), NT_OK, "%s", err.msg);
    compare_model(&m, "torch.nn.Sequential(torch.nn.Unflatten(1, (2, 6, 6)), torch.nn.Conv2d(2, 3, 3, padding=1), "
                  "torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Conv2d(3, 4, 2, bias=False), torch.nn.Tanh(), "
                  "torch.nn.AvgPool2d(2, stride=1), torch.nn.Flatten(), torch.nn.BatchNorm1d(4), "
                  "torch.nn.Linear(4, 3)).train()", "conv net", "ce");
}

/* PyTorch modules for sequences: nn.MultiheadAttention as self-attention (causal: the mask
 * triu(ones(T, T), 1)), a residual block x + body(x), the mean over tokens */
static const char *seq_modules =
    "class Attn(torch.nn.Module):\n"
    "    def __init__(s, D, H, causal, bias):\n"
    "        super().__init__(); s.causal = causal\n"
    "        s.a = torch.nn.MultiheadAttention(D, H, bias=bias, batch_first=True)\n"
    "    def forward(s, x):\n"
    "        T = x.shape[1]\n"
    "        m = torch.triu(torch.ones(T, T, dtype=torch.bool), 1) if s.causal else None\n"
    "        return s.a(x, x, x, attn_mask=m, need_weights=False)[0]\n"
    "class Res(torch.nn.Module):\n"
    "    def __init__(s, *body):\n"
    "        super().__init__(); s.body = torch.nn.Sequential(*body)\n"
    "    def forward(s, x): return x + s.body(x)\n"
    "class Mean(torch.nn.Module):\n"
    "    def forward(s, x): return x.mean(1)\n";

/* a pre-norm transformer block on 5 tokens of 4 features, and a bare attention layer */
Test(layout, attention_same_as_pytorch)
{
    if (!torch_available()) cr_skip_test("/usr/bin/python3 cannot import torch (Debian's python3-torch): PyTorch comparison skipped");
    nt_layer B[] = {{.kind = NT_LAYER_DENSE, .units = 8, .bias = 1}, {.kind = NT_LAYER_BRANCH},
                    {.kind = NT_LAYER_LAYERNORM, .affine = 1, .eps = 1e-5},
                    {.kind = NT_LAYER_ATTENTION, .heads = 2, .causal = 1, .bias = 1}, {.kind = NT_LAYER_ADD},
                    {.kind = NT_LAYER_BRANCH}, {.kind = NT_LAYER_LAYERNORM, .affine = 1, .eps = 1e-5},
                    {.kind = NT_LAYER_DENSE, .units = 12, .bias = 1}, {.kind = NT_LAYER_ACT, .act = NT_ACT_GELU},
                    {.kind = NT_LAYER_DENSE, .units = 8, .bias = 1}, {.kind = NT_LAYER_ADD}, {.kind = NT_LAYER_MEAN_TOKENS},
                    {.kind = NT_LAYER_ACT, .act = NT_ACT_TANH}, {.kind = NT_LAYER_DENSE, .units = 3, .bias = 1}};
    nt_model m;
    nt_error err = {0};
    cr_assert_eq(nt_model_init_sequence(&m, 5, 4, B, 14, NT_LOSS_CROSS_ENTROPY, 0.001, &err), NT_OK, "%s", err.msg);
    compare_model_with(&m, seq_modules,
                       "torch.nn.Sequential(torch.nn.Unflatten(1, (5, 4)), torch.nn.Linear(4, 8), "
                       "Res(torch.nn.LayerNorm(8), Attn(8, 2, True, True)), "
                       "Res(torch.nn.LayerNorm(8), torch.nn.Linear(8, 12), torch.nn.GELU(), torch.nn.Linear(12, 8)), "
                       "Mean(), torch.nn.Tanh(), torch.nn.Linear(8, 3))", "transformer block", "ce");
    nt_layer A[] = {{.kind = NT_LAYER_ATTENTION, .heads = 3, .causal = 0, .bias = 0}, {.kind = NT_LAYER_MEAN_TOKENS},
                    {.kind = NT_LAYER_DENSE, .units = 2, .bias = 1}};
    cr_assert_eq(nt_model_init_sequence(&m, 4, 6, A, 3, NT_LOSS_MSE, 0.0, &err), NT_OK, "%s", err.msg);
    compare_model_with(&m, seq_modules,
                       "torch.nn.Sequential(torch.nn.Unflatten(1, (4, 6)), Attn(6, 3, False, False), Mean(), "
                       "torch.nn.Linear(6, 2))", "attention without biases", "mse");
}

Test(layout, same_as_pytorch)
{
    if (!torch_available()) cr_skip_test("/usr/bin/python3 cannot import torch (Debian's python3-torch): PyTorch comparison skipped");
    compare_with_torch(NT_ACT_RELU, "torch.nn.ReLU()", NT_LOSS_CROSS_ENTROPY, "ce", 1, 0.0);
    compare_with_torch(NT_ACT_TANH, "torch.nn.Tanh()", NT_LOSS_MSE, "mse", 0, 0.01);
    compare_with_torch(NT_ACT_GELU, "torch.nn.GELU()", NT_LOSS_LOGISTIC, "logistic", 1, 0.0);
    compare_with_torch(NT_ACT_SOFTPLUS, "torch.nn.Softplus()", NT_LOSS_EXPONENTIAL, "exp", 1, 0.001);
    compare_with_torch(NT_ACT_LEAKY_RELU, "torch.nn.LeakyReLU(0.1)", NT_LOSS_CROSS_ENTROPY, "ce", 1, 0.0);
    compare_with_torch(NT_ACT_SIGMOID, "torch.nn.Sigmoid()", NT_LOSS_MSE, "mse", 1, 0.0);
}
