/* dead.c: ReLU units that are dead on the whole training set, and the flat directions they
 * make (docs/theory.md §3).  A unit j of a ReLU layer whose pre-activation
 * z_nj = W_j . h_n + b_j is negative on every sample n stays dead in a neighbourhood of
 * theta, so the loss does not depend there on its incoming row W_j, its bias b_j, nor on the
 * column j of the next dense layer (which multiplies an output that is 0): every first and
 * second derivative along those coordinates vanishes, and each coordinate is an eigenvector
 * of H_gamma = H + gamma I with eigenvalue exactly gamma.  The coordinates of all dead units
 * are counted once (a weight can be the outgoing weight of one dead unit and the incoming
 * weight of another).  Computed for chains of dense layers and activations (flat input, no
 * normalization, no residual block); other models: not computed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include "noether.h"

#define CHUNK 512   /* samples per forward block */

/* the tensor of layer l named like ".weight" / ".bias" (suffix), NULL when absent */
static const nt_tensor *tensor_of(const nt_model *m, int l, const char *suffix)
{
    for (int t = 0; t < m->n_tensors; t++) {
        const char *dot = strrchr(m->tensors[t].name, '.');
        if (m->tensors[t].layer == l && dot && !strcmp(dot, suffix)) return &m->tensors[t];
    }
    return NULL;
}

static int plain_chain(const nt_model *m)
{
    if (m->image[0] || m->sequence[0]) return 0;
    for (int l = 0; l < m->n_layers; l++)
        if (m->layers[l].kind != NT_LAYER_DENSE && m->layers[l].kind != NT_LAYER_ACT) return 0;
    return 1;
}

/* the activation after layer l (identity when none follows) */
static nt_act act_after(const nt_model *m, int l)
{
    return l + 1 < m->n_layers && m->layers[l + 1].kind == NT_LAYER_ACT ? m->layers[l + 1].act : NT_ACT_IDENTITY;
}

int nt_dead_units(const nt_model *m, const nt_dataset *ds, const double *theta, nt_dead *out, nt_error *err)
{
    if (!m || !ds || !theta || !out)
        return nt_fail(err, NT_EINPUT, "dead units: %s is missing", !m ? "the model" : !ds ? "the data" : !theta ? "theta" : "the result");
    memset(out, 0, sizeof *out);
    if (!plain_chain(m)) { out->units = out->directions = -1; return NT_OK; }
    if (ds->dim != m->input) return nt_fail(err, NT_EINPUT, "dead units: data dim %d, model input %d", ds->dim, m->input);
    int width = m->input;
    for (int l = 0; l < m->n_layers; l++)
        if (m->layers[l].kind == NT_LAYER_DENSE && m->layers[l].units > width) width = m->layers[l].units;
    const int64_t rows = ds->n < CHUNK ? ds->n : CHUNK;
    double *a = malloc(sizeof(double) * (size_t)(rows * width + 1)), *z = malloc(sizeof(double) * (size_t)(rows * width + 1));
    double *zmax = malloc(sizeof(double) * (size_t)((int64_t)m->n_layers * width + 1));
    unsigned char *flat = calloc((size_t)m->d + 1, 1);
    if (!a || !z || !zmax || !flat) {
        free(a); free(z); free(zmax); free(flat);
        return nt_fail(err, NT_EFAIL, "dead units: out of memory (%d units wide, d = %lld)", width, (long long)m->d);
    }
    for (int64_t i = 0; i < (int64_t)m->n_layers * width; i++) zmax[i] = -INFINITY;
    /* the forward pass in chunks: each unit's largest pre-activation over the samples */
    for (int64_t s = 0; s < ds->n; s += rows) {
        const int64_t n = ds->n - s < rows ? ds->n - s : rows;
        int in = m->input;
        memcpy(a, ds->x + s * ds->dim, sizeof(double) * (size_t)(n * in));
        for (int l = 0; l < m->n_layers; l++) {
            const nt_layer *L = &m->layers[l];
            if (L->kind == NT_LAYER_ACT) {   /* the model's own sigma (src/model/act.c), in place */
                for (int64_t i = 0; i < n * in; i++) nt_act_eval(L->act, L->alpha, a[i], &a[i], NULL, NULL);
                continue;
            }
            const nt_tensor *W = tensor_of(m, l, ".weight"), *b = tensor_of(m, l, ".bias");
            for (int64_t r = 0; r < n; r++)
                for (int j = 0; j < L->units; j++) z[r * L->units + j] = b ? theta[b->offset + j] : 0;
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, L->units, in, 1.0, a, in, theta + W->offset, in,
                        1.0, z, L->units);
            for (int64_t r = 0; r < n; r++)
                for (int j = 0; j < L->units; j++)
                    zmax[(int64_t)l * width + j] = fmax(zmax[(int64_t)l * width + j], z[r * L->units + j]);
            memcpy(a, z, sizeof(double) * (size_t)(n * L->units));
            in = L->units;
        }
    }
    /* each dead ReLU unit's coordinates: its row and bias, the next dense layer's column */
    for (int l = 0; l < m->n_layers; l++) {
        const nt_layer *L = &m->layers[l];
        if (L->kind != NT_LAYER_DENSE || act_after(m, l) != NT_ACT_RELU) continue;
        const nt_tensor *W = tensor_of(m, l, ".weight"), *b = tensor_of(m, l, ".bias"), *Wn = NULL;
        for (int k = l + 1; k < m->n_layers && !Wn; k++)
            if (m->layers[k].kind == NT_LAYER_DENSE) Wn = tensor_of(m, k, ".weight");
        const int64_t fan_in = W->shape[1];
        for (int j = 0; j < L->units; j++) {
            if (!(zmax[(int64_t)l * width + j] < 0)) continue;
            out->units++;
            for (int64_t i = 0; i < fan_in; i++) flat[W->offset + j * fan_in + i] = 1;
            if (b) flat[b->offset + j] = 1;
            if (Wn)
                for (int64_t r = 0; r < Wn->shape[0]; r++) flat[Wn->offset + r * Wn->shape[1] + j] = 1;
        }
    }
    for (int64_t i = 0; i < m->d; i++) out->directions += flat[i];
    free(a); free(z); free(zmax); free(flat);
    return NT_OK;
}
