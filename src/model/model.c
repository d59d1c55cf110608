/* model.c: a model is a list of layers and a loss; this derives its output width and the
 * parameter layout of INTERFACE.md (per dense layer W, n_out x n_in, then b; per affine
 * layer or batch normalization its weight then its bias, each of the width it normalizes;
 * in layer order: PyTorch's order for the same nn.Sequential of nn.Linear, nn.LayerNorm and
 * nn.BatchNorm1d). */
#include <stdlib.h>
#include <string.h>
#include "noether.h"

int nt_model_init(nt_model *m, int input, const nt_layer *layers, int n_layers,
                  nt_loss loss, double weight_decay, nt_error *err)
{
    memset(m, 0, sizeof *m);
    if (input <= 0)
        return nt_fail(err, NT_EINPUT, "model.input: must be a positive integer, got %d", input);
    if (n_layers <= 0)
        return nt_fail(err, NT_EINPUT, "model.layers: a model needs at least one layer");
    int width = input, n_dense = 0, stack[17], depth = 0;
    for (int i = 0; i < n_layers; i++) {
        if (layers[i].kind == NT_LAYER_BRANCH) {
            if (depth == 16) return nt_fail(err, NT_EINPUT, "model.layers: residual blocks nest at most 16 deep");
            stack[depth++] = width;
        } else if (layers[i].kind == NT_LAYER_ADD) {
            if (depth == 0) return nt_fail(err, NT_EINPUT, "model.layers[%d]: the end of a residual block without its start", i);
            if (stack[--depth] != width)
                return nt_fail(err, NT_EINPUT, "model.layers: a residual block must keep the width: it takes %d and gives %d",
                               stack[depth], width);
        }
        if (layers[i].kind != NT_LAYER_DENSE) continue;
        if (layers[i].units <= 0)
            return nt_fail(err, NT_EINPUT, "model.layers[%d].dense: must be a positive integer, got %d",
                           i, layers[i].units);
        width = layers[i].units;
        n_dense++;
    }
    if (depth != 0) return nt_fail(err, NT_EINPUT, "model.layers: a residual block is not closed");
    if (n_dense == 0)
        return nt_fail(err, NT_EINPUT, "model.layers: a model needs at least one dense layer");
    if ((loss == NT_LOSS_LOGISTIC || loss == NT_LOSS_EXPONENTIAL) && width != 1)
        return nt_fail(err, NT_EINPUT, "model.loss: %s needs one output, the last dense layer has %d",
                       nt_loss_name(loss), width);
    if (loss == NT_LOSS_CROSS_ENTROPY && width < 2)
        return nt_fail(err, NT_EINPUT, "model.loss: cross_entropy needs at least two outputs, got %d", width);

    m->input = input;
    m->output = width;
    m->n_layers = n_layers;
    m->loss = loss;
    m->weight_decay = weight_decay;
    m->layers = malloc(sizeof *layers * (size_t)n_layers);
    m->tensors = calloc((size_t)2 * n_layers, sizeof *m->tensors);
    memcpy(m->layers, layers, sizeof *layers * (size_t)n_layers);

    int64_t off = 0;
    width = input;
    for (int i = 0; i < n_layers; i++) {
        const nt_layer *L = &layers[i];
        if ((L->kind == NT_LAYER_LAYERNORM || L->kind == NT_LAYER_BATCHNORM) && L->affine) {
            for (int r = 0; r < 2; r++) {
                nt_tensor *t = &m->tensors[m->n_tensors++];
                snprintf(t->name, sizeof t->name, "%d.%s", i, r ? "bias" : "weight");
                t->layer = i; t->offset = off; t->ndim = 1;
                t->shape[0] = width; t->size = width;
                off += width;
            }
        }
        if (L->kind != NT_LAYER_DENSE) continue;
        nt_tensor *t = &m->tensors[m->n_tensors++];
        snprintf(t->name, sizeof t->name, "%d.weight", i);
        t->layer = i; t->offset = off; t->ndim = 2;
        t->shape[0] = L->units; t->shape[1] = width;
        t->size = (int64_t)L->units * width;
        off += t->size;
        if (L->bias) {
            t = &m->tensors[m->n_tensors++];
            snprintf(t->name, sizeof t->name, "%d.bias", i);
            t->layer = i; t->offset = off; t->ndim = 1;
            t->shape[0] = L->units; t->size = L->units;
            off += t->size;
        }
        width = L->units;
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

void nt_model_free(nt_model *m)
{
    free(m->layers);
    free(m->tensors);
    memset(m, 0, sizeof *m);
}
