/* model.c: a model is a list of layers and a loss; this derives its output width and the
 * parameter layout of docs/interface.md (per dense layer W, n_out x n_in, then b; per affine
 * layer or batch normalization its weight then its bias, each of the width it normalizes,
 * or C for a batch normalization of an image (per channel); in layer order: PyTorch's order
 * for the same nn.Sequential of nn.Linear, nn.Conv2d, nn.LayerNorm, nn.BatchNorm1d/2d and
 * nn.MultiheadAttention). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "noether.h"

/* the output shape of layer i from its input shape sh (C, H, W; H = 0: flat; on a sequence
 * of *tok tokens, one token's (D, 0, 0)), and the tokens of its output, or an error */
static int layer_shape(const nt_layer *L, int i, const int sh[3], int *tok, int out[3], nt_error *err)
{
    const int flat = sh[1] == 0, width = flat ? sh[0] : sh[0] * sh[1] * sh[2], T = *tok;
    memcpy(out, sh, sizeof(int) * 3);
    switch (L->kind) {
    case NT_LAYER_DENSE:
        if (!flat)
            return nt_fail(err, NT_EINPUT, "model.layers[%d].dense: its input is an image %d x %d x %d: flatten it first "
                           "({\"flatten\": true})", i, sh[0], sh[1], sh[2]);
        if (L->units <= 0)
            return nt_fail(err, NT_EINPUT, "model.layers[%d].dense: must be a positive integer, got %d", i, L->units);
        out[0] = L->units;
        return NT_OK;
    case NT_LAYER_FLATTEN:
        out[0] = T ? T * width : width;
        out[1] = out[2] = 0;
        *tok = 0;
        return NT_OK;
    case NT_LAYER_BATCHNORM:
        if (T) return nt_fail(err, NT_EINPUT, "model.layers[%d].norm: batch normalization of a sequence is not supported "
                              "(use \"layer\")", i);
        return NT_OK;
    case NT_LAYER_ATTENTION: case NT_LAYER_MEAN_TOKENS: {
        const char *what = L->kind == NT_LAYER_ATTENTION ? "attention" : "pool";
        if (!T) return nt_fail(err, NT_EINPUT, "model.layers[%d].%s: needs a sequence input (model.input: [T, D])", i, what);
        if (L->kind == NT_LAYER_MEAN_TOKENS) { *tok = 0; return NT_OK; }
        if (L->heads < 1 || sh[0] % L->heads)
            return nt_fail(err, NT_EINPUT, "model.layers[%d].attention: %d heads do not divide the %d features of a token",
                           i, L->heads, sh[0]);
        return NT_OK;
    }
    case NT_LAYER_CONV: case NT_LAYER_POOL: {
        const char *what = L->kind == NT_LAYER_CONV ? "conv" : "pool";
        if (flat)
            return nt_fail(err, NT_EINPUT, "model.layers[%d].%s: needs an image input (model.input: [C, H, W])", i, what);
        const int pad = L->kind == NT_LAYER_CONV ? L->padding : 0;
        if (L->kernel < 1 || L->stride < 1 || pad < 0)
            return nt_fail(err, NT_EINPUT, "model.layers[%d].%s: kernel and stride must be positive, padding not negative", i, what);
        out[1] = (sh[1] + 2 * pad - L->kernel) / L->stride + 1;
        out[2] = (sh[2] + 2 * pad - L->kernel) / L->stride + 1;
        if (sh[1] + 2 * pad < L->kernel || sh[2] + 2 * pad < L->kernel)
            return nt_fail(err, NT_EINPUT, "model.layers[%d].%s: kernel %d is larger than the %d x %d image (padding %d)", i,
                           what, L->kernel, sh[1], sh[2], pad);
        if (L->kind == NT_LAYER_CONV) {
            if (L->units <= 0)
                return nt_fail(err, NT_EINPUT, "model.layers[%d].conv: must be a positive integer, got %d", i, L->units);
            out[0] = L->units;
        }
        return NT_OK;
    }
    default:
        return NT_OK;
    }
}

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
            int rc = layer_shape(&L[i], i, sh, &T, L[i].shape_out, err);
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

/* one tensor of layer i at *off, of shape s (ndim entries) */
static void add_tensor(nt_model *m, int i, const char *what, int ndim, const int64_t *s, int64_t *off)
{
    nt_tensor *t = &m->tensors[m->n_tensors++];
    snprintf(t->name, sizeof t->name, "%d.%s", i, what);
    t->layer = i;
    t->offset = *off;
    t->ndim = ndim;
    t->size = 1;
    for (int a = 0; a < ndim; a++) t->size *= t->shape[a] = s[a];
    *off += t->size;
}

/* The layout: per layer, in PyTorch's parameters() order. */
static void derive_layout(nt_model *m)
{
    int64_t off = 0;
    m->tensors = calloc((size_t)4 * m->n_layers, sizeof *m->tensors);
    for (int i = 0; i < m->n_layers; i++) {
        const nt_layer *L = &m->layers[i];
        const int *si = L->shape_in;
        const int64_t w_in = si[1] ? (int64_t)si[0] * si[1] * si[2] : si[0], D = si[0], n = L->units;
        if ((L->kind == NT_LAYER_LAYERNORM || L->kind == NT_LAYER_BATCHNORM) && L->affine) {
            const int64_t wn = nt_layer_norm_params(L);   /* per channel for BatchNorm2d, per token on a sequence */
            add_tensor(m, i, "weight", 1, &wn, &off);
            add_tensor(m, i, "bias", 1, &wn, &off);
        } else if (L->kind == NT_LAYER_ATTENTION) {   /* nn.MultiheadAttention */
            add_tensor(m, i, "in_proj_weight", 2, (int64_t[]){3 * D, D}, &off);
            if (L->bias) add_tensor(m, i, "in_proj_bias", 1, (int64_t[]){3 * D}, &off);
            add_tensor(m, i, "out_proj.weight", 2, (int64_t[]){D, D}, &off);
            if (L->bias) add_tensor(m, i, "out_proj.bias", 1, &D, &off);
        } else if (L->kind == NT_LAYER_DENSE || L->kind == NT_LAYER_CONV) {
            if (L->kind == NT_LAYER_DENSE) add_tensor(m, i, "weight", 2, (int64_t[]){n, w_in}, &off);
            else add_tensor(m, i, "weight", 4, (int64_t[]){n, si[0], L->kernel, L->kernel}, &off);   /* nn.Conv2d */
            if (L->bias) add_tensor(m, i, "bias", 1, &n, &off);
        }
    }
    m->d = off;
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
        if (m->layers[i].kind == NT_LAYER_BATCHNORM) return 1;
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

int nt_layout_block(const nt_model *m, const char *name, int64_t *off, int64_t *n, nt_error *err)
{
    for (int t = 0; t < m->n_tensors; t++)
        if (!strcmp(m->tensors[t].name, name)) {
            *off = m->tensors[t].offset;
            *n = m->tensors[t].size;
            return NT_OK;
        }
    /* a layer: its tensors are contiguous in the layout (one layer after another) */
    const char *digits = strncmp(name, "layer=", 6) ? name : name + 6;
    int found = 0;
    if (*digits && strspn(digits, "0123456789") == strlen(digits) && strlen(digits) < 6) {
        const int layer = atoi(digits);
        for (int t = 0; t < m->n_tensors; t++) {
            if (m->tensors[t].layer != layer) continue;
            if (!found++) *off = m->tensors[t].offset, *n = 0;
            *n += m->tensors[t].size;
        }
    }
    if (!found)
        return nt_fail(err, NT_EINPUT, "block '%s': no parameter tensor (e.g. %s) or layer with parameters (e.g. %d) "
                       "of that name (see noether info)", name, m->n_tensors ? m->tensors[0].name : "0.weight",
                       m->n_tensors ? m->tensors[0].layer : 0);
    return NT_OK;
}
