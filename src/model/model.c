/* model.c: a model is a list of layers and a loss; this derives its output width and the
 * parameter layout of INTERFACE.md (per dense layer W, n_out x n_in, then b; per affine
 * layer or batch normalization its weight then its bias, each of the width it normalizes,
 * or C for a batch normalization of an image (per channel); in layer order: PyTorch's order
 * for the same nn.Sequential of nn.Linear, nn.Conv2d, nn.LayerNorm, nn.BatchNorm1d/2d). */
#include <stdlib.h>
#include <string.h>
#include "noether.h"

/* the output shape of layer i from its input shape sh (C, H, W; H = 0: flat), or an error */
static int layer_shape(const nt_layer *L, int i, const int sh[3], int out[3], nt_error *err)
{
    const int flat = sh[1] == 0, width = flat ? sh[0] : sh[0] * sh[1] * sh[2];
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
        out[0] = width;
        out[1] = out[2] = 0;
        return NT_OK;
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

int nt_model_init(nt_model *m, int input, const nt_layer *layers, int n_layers,
                  nt_loss loss, double weight_decay, nt_error *err)
{
    const int flat[3] = { input, 0, 0 };
    return nt_model_init_image(m, flat, layers, n_layers, loss, weight_decay, err);
}

int nt_model_init_image(nt_model *m, const int image[3], const nt_layer *layers, int n_layers,
                        nt_loss loss, double weight_decay, nt_error *err)
{
    memset(m, 0, sizeof *m);
    const int input = image[1] ? image[0] * image[1] * image[2] : image[0];
    if (image[0] <= 0 || image[1] < 0 || image[2] < 0 || (image[1] == 0) != (image[2] == 0) || input <= 0)
        return nt_fail(err, NT_EINPUT, "model.input: must be a positive integer or [C, H, W] of positive integers");
    if (n_layers <= 0)
        return nt_fail(err, NT_EINPUT, "model.layers: a model needs at least one layer");
    nt_layer *copy = malloc(sizeof *layers * (size_t)n_layers);
    memcpy(copy, layers, sizeof *layers * (size_t)n_layers);
    int sh[3] = { image[0], image[1], image[2] }, n_dense = 0, stack[17][3], depth = 0, rc = NT_OK;
    for (int i = 0; i < n_layers && !rc; i++) {
        if (copy[i].kind == NT_LAYER_BRANCH) {
            if (depth == 16) { rc = nt_fail(err, NT_EINPUT, "model.layers: residual blocks nest at most 16 deep"); break; }
            memcpy(stack[depth++], sh, sizeof sh);
        } else if (copy[i].kind == NT_LAYER_ADD) {
            if (depth == 0) { rc = nt_fail(err, NT_EINPUT, "model.layers[%d]: the end of a residual block without its start", i); break; }
            if (memcmp(stack[--depth], sh, sizeof sh))
                rc = nt_fail(err, NT_EINPUT, "model.layers: a residual block must keep the width: it takes %d and gives %d",
                             stack[depth][1] ? stack[depth][0] * stack[depth][1] * stack[depth][2] : stack[depth][0],
                             sh[1] ? sh[0] * sh[1] * sh[2] : sh[0]);
        }
        memcpy(copy[i].shape_in, sh, sizeof sh);
        if (!rc) rc = layer_shape(&copy[i], i, sh, copy[i].shape_out, err);
        memcpy(sh, copy[i].shape_out, sizeof sh);
        n_dense += copy[i].kind == NT_LAYER_DENSE;
    }
    const int width = sh[1] ? sh[0] * sh[1] * sh[2] : sh[0];
    if (!rc && depth != 0) rc = nt_fail(err, NT_EINPUT, "model.layers: a residual block is not closed");
    if (!rc && n_dense == 0) rc = nt_fail(err, NT_EINPUT, "model.layers: a model needs at least one dense layer");
    if (!rc && sh[1] != 0) rc = nt_fail(err, NT_EINPUT, "model.layers: the output is an image: end with a dense layer");
    if (!rc && (loss == NT_LOSS_LOGISTIC || loss == NT_LOSS_EXPONENTIAL) && width != 1)
        rc = nt_fail(err, NT_EINPUT, "model.loss: %s needs one output, the last dense layer has %d", nt_loss_name(loss), width);
    if (!rc && loss == NT_LOSS_CROSS_ENTROPY && width < 2)
        rc = nt_fail(err, NT_EINPUT, "model.loss: cross_entropy needs at least two outputs, got %d", width);
    free(copy);
    if (rc) return rc;
    memcpy(m->image, image[1] ? image : (const int[3]){0, 0, 0}, sizeof m->image);

    m->input = input;
    m->output = width;
    m->n_layers = n_layers;
    m->loss = loss;
    m->weight_decay = weight_decay;
    m->layers = malloc(sizeof *layers * (size_t)n_layers);
    m->tensors = calloc((size_t)2 * n_layers, sizeof *m->tensors);
    memcpy(m->layers, layers, sizeof *layers * (size_t)n_layers);
    for (int i = 0, s2[3] = { image[0], image[1], image[2] }; i < n_layers; i++) {   /* the shapes again, checked */
        memcpy(m->layers[i].shape_in, s2, sizeof s2);
        layer_shape(&m->layers[i], i, s2, m->layers[i].shape_out, err);
        memcpy(s2, m->layers[i].shape_out, sizeof s2);
    }

    int64_t off = 0;
    for (int i = 0; i < n_layers; i++) {
        const nt_layer *L = &m->layers[i];
        const int *si = L->shape_in, w_in = si[1] ? si[0] * si[1] * si[2] : si[0];
        if ((L->kind == NT_LAYER_LAYERNORM || L->kind == NT_LAYER_BATCHNORM) && L->affine) {
            const int wn = nt_layer_norm_params(L);   /* per channel for BatchNorm2d */
            for (int r = 0; r < 2; r++) {
                nt_tensor *t = &m->tensors[m->n_tensors++];
                snprintf(t->name, sizeof t->name, "%d.%s", i, r ? "bias" : "weight");
                t->layer = i; t->offset = off; t->ndim = 1;
                t->shape[0] = wn; t->size = wn;
                off += wn;
            }
        }
        if (L->kind != NT_LAYER_DENSE && L->kind != NT_LAYER_CONV) continue;
        nt_tensor *t = &m->tensors[m->n_tensors++];
        snprintf(t->name, sizeof t->name, "%d.weight", i);
        t->layer = i; t->offset = off;
        if (L->kind == NT_LAYER_DENSE) {
            t->ndim = 2;
            t->shape[0] = L->units; t->shape[1] = w_in;
        } else {   /* nn.Conv2d: (out, in, k, k) */
            t->ndim = 4;
            t->shape[0] = L->units; t->shape[1] = si[0]; t->shape[2] = t->shape[3] = L->kernel;
        }
        t->size = 1;
        for (int a = 0; a < t->ndim; a++) t->size *= t->shape[a];
        off += t->size;
        if (L->bias) {
            t = &m->tensors[m->n_tensors++];
            snprintf(t->name, sizeof t->name, "%d.bias", i);
            t->layer = i; t->offset = off; t->ndim = 1;
            t->shape[0] = L->units; t->size = L->units;
            off += t->size;
        }
    }
    m->d = off;
    if (m->d > ((int64_t)1 << 40)) {
        nt_model_free(m);
        return nt_fail(err, NT_EINPUT, "model.layers: %lld parameters is more than noether can hold",
                       (long long)off);
    }
    return NT_OK;
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
