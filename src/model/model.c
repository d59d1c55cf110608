/* model.c: a model is a list of layers and a loss; this derives its output width and the
 * parameter layout of docs/interface.md: each layer's shape and tensors from its kind's
 * entry in the registry (registry.h), in layer order: PyTorch's order for the same
 * nn.Sequential of nn.Linear, nn.Conv2d, nn.LayerNorm, nn.BatchNorm1d/2d and
 * nn.MultiheadAttention. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "registry.h"

/* Sets every layer's shape_in, shape_out and tokens from the input (shape sh, tokens T);
 * checks the blocks and the output.  Returns the output width. */
static int derive_shapes(nt_layer *L, int n_layers, int sh[3], int T, nt_loss loss, int *width, nt_error *err)
{
    int n_dense = 0, stack[NT_MAX_RESIDUAL_DEPTH + 1][4], depth = 0;
    for (int i = 0; i < n_layers; i++) {
        if (L[i].kind == NT_LAYER_BRANCH) {
            if (depth == NT_MAX_RESIDUAL_DEPTH)
                return nt_fail(err, NT_EINPUT, "model.layers: residual blocks nest at most %d deep", NT_MAX_RESIDUAL_DEPTH);
            memcpy(stack[depth], sh, sizeof(int) * 3);
            stack[depth++][3] = T;
        } else if (L[i].kind == NT_LAYER_ADD) {
            if (depth == 0) return nt_fail(err, NT_EINPUT, "model.layers[%d]: the end of a residual block without its start", i);
            const int *s = stack[--depth];
            if (memcmp(s, sh, sizeof(int) * 3) || s[3] != T)
                return nt_fail(err, NT_EINPUT, "model.layers: a residual block must keep the width: it takes %d and gives %d",
                               (s[1] ? s[0] * s[1] * s[2] : s[0]) * (s[3] ? s[3] : 1), (sh[1] ? sh[0] * sh[1] * sh[2] : sh[0]) * (T ? T : 1));
        }
        memcpy(L[i].shape_in, sh, sizeof(int) * 3);
        L[i].tokens = T;
        {
            const nt_layer_info *R = nt_layer_registry(L[i].kind);
            if (!R) return nt_fail(err, NT_EINPUT, "model.layers[%d]: unknown layer kind %d", i, (int)L[i].kind);
            memcpy(L[i].shape_out, sh, sizeof(int) * 3);
            int rc = R->shape(&L[i], i, sh, &T, L[i].shape_out, err);
            if (rc) return rc;
        }
        memcpy(sh, L[i].shape_out, sizeof(int) * 3);
        n_dense += L[i].kind == NT_LAYER_DENSE;
    }
    *width = sh[1] ? sh[0] * sh[1] * sh[2] : sh[0];
    if (depth != 0) return nt_fail(err, NT_EINPUT, "model.layers: a residual block is not closed");
    if (n_dense == 0) return nt_fail(err, NT_EINPUT, "model.layers: a model needs at least one dense layer");
    if (sh[1] != 0) return nt_fail(err, NT_EINPUT, "model.layers: the output is an image: end with a dense layer");
    if (T) return nt_fail(err, NT_EINPUT, "model.layers: the output is a sequence: end it with {\"pool\": \"tokens\"} "
                          "or {\"flatten\": true} and a dense layer");
    if ((loss == NT_LOSS_LOGISTIC || loss == NT_LOSS_EXPONENTIAL) && *width != 1)
        return nt_fail(err, NT_EINPUT, "model.loss: %s needs one output, the last dense layer has %d", nt_loss_name(loss), *width);
    if (loss == NT_LOSS_CROSS_ENTROPY && *width < 2)
        return nt_fail(err, NT_EINPUT, "model.loss: cross_entropy needs at least two outputs, got %d", *width);
    return NT_OK;
}

/* The layout: per layer, in PyTorch's parameters() order, each kind's tensors from its
 * registry entry (nt_model_add_tensor puts each right after the last). */
static void derive_layout(nt_model *m)
{
    m->tensors = calloc((size_t)NT_LAYER_MAX_TENSORS * m->n_layers, sizeof *m->tensors);
    for (int i = 0; i < m->n_layers; i++) {
        const nt_layer_info *R = nt_layer_registry(m->layers[i].kind);
        if (R->tensors) R->tensors(m, i);
    }
    m->d = m->n_tensors ? m->tensors[m->n_tensors - 1].offset + m->tensors[m->n_tensors - 1].size : 0;
}

static int init_shaped(nt_model *m, const int shape[3], int tokens, const nt_layer *layers, int n_layers,
                       nt_loss loss, double weight_decay, nt_error *err)
{
    memset(m, 0, sizeof *m);
    const int input = (shape[1] ? shape[0] * shape[1] * shape[2] : shape[0]) * (tokens ? tokens : 1);
    if (n_layers <= 0)
        return nt_fail(err, NT_EINPUT, "model.layers: a model needs at least one layer");
    if (n_layers > NT_MAX_LAYERS)
        return nt_fail(err, NT_EINPUT, "model.layers: %d layers, more than the %d noether can hold", n_layers, NT_MAX_LAYERS);
    nt_layer *copy = malloc(sizeof *layers * (size_t)n_layers);
    if (!copy) return nt_fail(err, NT_EFAIL, "model.layers: out of memory");
    memcpy(copy, layers, sizeof *layers * (size_t)n_layers);
    int sh[3] = { shape[0], shape[1], shape[2] }, width = 0;
    int rc = derive_shapes(copy, n_layers, sh, tokens, loss, &width, err);
    if (rc) { free(copy); return rc; }
    m->input = input;
    m->output = width;
    m->n_layers = n_layers;
    m->loss = loss;
    m->weight_decay = weight_decay;
    m->layers = copy;
    derive_layout(m);
    if (m->d > ((int64_t)1 << 40)) {
        int64_t d = m->d;
        nt_model_free(m);
        return nt_fail(err, NT_EINPUT, "model.layers: %lld parameters is more than noether can hold", (long long)d);
    }
    return NT_OK;
}

int nt_model_init(nt_model *m, int input, const nt_layer *layers, int n_layers,
                  nt_loss loss, double weight_decay, nt_error *err)
{
    const int flat[3] = { input, 0, 0 };
    return nt_model_init_image(m, flat, layers, n_layers, loss, weight_decay, err);
}

int nt_model_init_image(nt_model *m, const int image[3], const nt_layer *layers, int n_layers,
                        nt_loss loss, double weight_decay, nt_error *err)
{
    const int64_t input = image[1] ? (int64_t)image[0] * image[1] * image[2] : image[0];
    if (image[0] <= 0 || image[1] < 0 || image[2] < 0 || (image[1] == 0) != (image[2] == 0) || input <= 0 || input > INT32_MAX)
        return nt_fail(err, NT_EINPUT, "model.input: must be a positive integer or [C, H, W] of positive integers");
    int rc = init_shaped(m, image, 0, layers, n_layers, loss, weight_decay, err);
    if (!rc && image[1]) memcpy(m->image, image, sizeof m->image);
    return rc;
}

int nt_model_init_sequence(nt_model *m, int tokens, int features, const nt_layer *layers, int n_layers,
                           nt_loss loss, double weight_decay, nt_error *err)
{
    if (tokens <= 0 || features <= 0 || (int64_t)tokens * features > INT32_MAX)
        return nt_fail(err, NT_EINPUT, "model.input: a sequence is [T, D], two positive integers");
    int rc = init_shaped(m, (const int[3]){ features, 0, 0 }, tokens, layers, n_layers, loss, weight_decay, err);
    if (!rc) { m->sequence[0] = tokens; m->sequence[1] = features; }
    return rc;
}

int nt_model_batch_coupled(const nt_model *m)
{
    for (int i = 0; i < m->n_layers; i++)
        if (nt_layer_registry(m->layers[i].kind)->couples_samples) return 1;
    return 0;
}

int nt_layer_norm_params(const nt_layer *L)
{
    const int *s = L->shape_in;
    if (s[1] == 0) return s[0];
    return L->kind == NT_LAYER_BATCHNORM ? s[0] : s[0] * s[1] * s[2];
}

void nt_model_free(nt_model *m)
{
    free(m->layers);
    free(m->tensors);
    memset(m, 0, sizeof *m);
}
