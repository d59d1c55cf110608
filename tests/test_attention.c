/* test_attention.c: multi-head self-attention and the sequence layers around it (per-token
 * dense layers and layer norms, the mean over tokens): exact derivatives against finite
 * differences, PyTorch's nn.MultiheadAttention, the catalogue's per-head symmetries and their
 * negative controls, the synthetic sequence task and the spec keys through the binary. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include "helpers.h"

#define ATTN(h, c, b) {.kind = NT_LAYER_ATTENTION, .heads = (h), .causal = (c), .bias = (b)}
#define DENSE(n) {.kind = NT_LAYER_DENSE, .units = (n), .bias = 1}
#define ACT(a) {.kind = NT_LAYER_ACT, .act = (a)}
#define MEAN {.kind = NT_LAYER_MEAN_TOKENS}

Test(attention, finite_differences_alone)
{
    nt_layer plain[] = {ATTN(2, 0, 1), MEAN, DENSE(3)};
    fd_check_sequence(4, 6, plain, 3, NT_LOSS_CROSS_ENTROPY, 0.0, 11, 0.6, "attention, 2 heads");
    nt_layer causal[] = {ATTN(3, 1, 0), MEAN, DENSE(2)};
    fd_check_sequence(5, 6, causal, 3, NT_LOSS_MSE, 0.01, 12, 0.6, "causal attention without biases");
    nt_layer one[] = {ATTN(1, 1, 1), {.kind = NT_LAYER_FLATTEN}, DENSE(1)};
    fd_check_sequence(3, 4, one, 3, NT_LOSS_LOGISTIC, 0.0, 13, 0.6, "one head, flattened");
}

/* a transformer block: x + attn(LN x), then x + MLP(LN x) per token, the mean, a head */
Test(attention, finite_differences_composed)
{
    nt_layer L[] = {DENSE(8), {.kind = NT_LAYER_BRANCH}, {.kind = NT_LAYER_LAYERNORM, .affine = 1, .eps = 1e-5},
                    ATTN(2, 1, 1), {.kind = NT_LAYER_ADD}, {.kind = NT_LAYER_BRANCH},
                    {.kind = NT_LAYER_LAYERNORM, .affine = 1, .eps = 1e-5}, DENSE(12), ACT(NT_ACT_GELU), DENSE(8),
                    {.kind = NT_LAYER_ADD}, MEAN, ACT(NT_ACT_TANH), DENSE(3)};
    fd_check_sequence(5, 4, L, 14, NT_LOSS_CROSS_ENTROPY, 0.001, 21, 0.5, "transformer block");
}
