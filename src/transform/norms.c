/* norms.c: the symmetries of a normalization's units (docs/theory.md §5: "normalization unit j
 * with affine (gamma_j, beta_j) ...", "units i, j of a normalization", and the sign flips a
 * normalization passes).  A normalization at model.layers[i] normalizes n units (a layer
 * norm: the width, per token on a sequence, or the C H W values of an image; a batch norm:
 * the features, or the C channels of an image), y_j = gamma_j xhat_j + beta_j.  Its
 * producer is the dense layer or convolution whose units it normalizes, reached through
 * elementwise activations and poolings only (matched when it has n units; an attention
 * layer produces through its output projection: row j of W_O and b_O[j]); its consumer is
 * the next dense layer, convolution or attention layer, reached through elementwise
 * activations, poolings, flatten and the mean over tokens, which reads unit j with one slice
 * of its weight (column j; after a batch norm of an image, input channel j of each filter
 * or channel j's H'W' columns after a flatten; an attention layer, column j of W_Q, W_K and
 * W_V, as in a pre-norm transformer block).  Then, for any eps (each acts outside the division):
 *   - norm_rescale[j]: (gamma_j, beta_j) -> e^s (gamma_j, beta_j) scales y_j by e^s; through
 *     positively homogeneous maps of degree p (relu, leaky_relu, identity: 1; square: 2;
 *     poolings: 1) it reaches the consumer scaled by e^{ps}, which its slice x e^{-ps} undoes:
 *     A = +1 on gamma_j and beta_j, -p on the slice; Q_j = (gamma_j^2 + beta_j^2 - p |a_j|^2) / 2;
 *   - norm_swap[j, j+1]: the normalization commutes with a permutation of its units (a layer
 *     norm's mean and variance are symmetric functions of them; a batch norm's are per unit),
 *     so exchanging the producer's rows and biases, gamma, beta and the consumer's slices of
 *     two units is a discrete symmetry (S_n by its n-1 adjacent swaps), with any elementwise
 *     activation around it;
 *   - norm_flip: a normalization is odd, (-z - mean(-z)) / sqrt(var(-z) + eps) = -xhat, so
 *     negating its input, through odd maps only (identity, tanh, average pooling), and its
 *     weights leaves y unchanged: per unit for a batch norm (row j, bias j, gamma_j), for the
 *     whole layer at once for a layer norm (which mixes its units: the producer's whole
 *     weight and bias and every gamma).
 * Not listed: per-unit entries of a layer norm over an image read by a convolution (a
 * gain per position, read at several offsets with one shared filter, cannot be undone), and
 * anything across a residual boundary, an attention layer, a flatten of a sequence or a
 * second normalization (docs/layers.md). */
#include <stdlib.h>
#include <string.h>
#include "units.h"

/* the offset of attention layer i's tensor named i.<what> (-1: none) */
static int64_t attn_tensor(const nt_model *m, int i, const char *what)
{
    for (int t = 0; t < m->n_tensors; t++)
        if (m->tensors[t].layer == i && !strcmp(m->tensors[t].name + strcspn(m->tensors[t].name, ".") + 1, what))
            return m->tensors[t].offset;
    return -1;
}

/* The weight (*off_w) and bias (*off_b, -1: none) of layer i, and its units (an attention
 * layer as a producer: its output projection, D units of D inputs) */
static int params_of(const nt_model *m, int i, int64_t *off_w, int64_t *off_b, int64_t *fan)
{
    const nt_layer *L = &m->layers[i];
    if (L->kind == NT_LAYER_ATTENTION) {
        *off_w = attn_tensor(m, i, "out_proj.weight");
        *off_b = attn_tensor(m, i, "out_proj.bias");
        *fan = L->shape_in[0];
        return L->shape_in[0];
    }
    int first = 1, n = L->kind == NT_LAYER_DENSE || L->kind == NT_LAYER_CONV ? L->units : nt_layer_norm_params(L);
    *off_w = *off_b = -1;
    *fan = 0;
    for (int t = 0; t < m->n_tensors; t++) {
        if (m->tensors[t].layer != i) continue;
        if (first) { *off_w = m->tensors[t].offset; *fan = m->tensors[t].size / n; first = 0; }
        else *off_b = m->tensors[t].offset;
    }
    return n;
}

/* A normalization and its neighbours (see the top of the file). */
typedef struct {
    int n;
    int64_t off_g, off_b;   /* gamma, beta (-1: not affine) */
    int producer;           /* model.layers index, -1: none */
    int matched;            /* the producer has n units */
    int odd_in;             /* only odd maps between the producer and the normalization */
    int consumer;           /* model.layers index, -1: none */
    double p;               /* degree between the normalization and the consumer (0: not homogeneous) */
} norm_at;

static norm_at locate(const nt_model *m, int i)
{
    norm_at w = { .producer = -1, .odd_in = 1, .consumer = -1, .p = 1 };
    int64_t fan;
    w.n = params_of(m, i, &w.off_g, &w.off_b, &fan);
    for (int q = i - 1; q >= 0; q--) {
        const nt_layer *L = &m->layers[q];
        const nt_layer_info *R = nt_layer_registry(L->kind);
        if (R->traits) { w.odd_in &= R->traits(L).odd; continue; }   /* an activation, a pooling */
        if (L->kind == NT_LAYER_DENSE || L->kind == NT_LAYER_CONV || L->kind == NT_LAYER_ATTENTION) {
            int64_t ow, ob, fan;
            w.producer = q;
            w.matched = params_of(m, q, &ow, &ob, &fan) == w.n;
        }
        break;   /* a normalization, a skip, attention, flatten, the mean over tokens: a barrier */
    }
    for (int q = i + 1; q < m->n_layers; q++) {
        const nt_layer *L = &m->layers[q];
        const nt_layer_info *R = nt_layer_registry(L->kind);
        if (R->traits) { w.p *= R->traits(L).degree; continue; }   /* an activation, a pooling (degree 1) */
        if (L->kind == NT_LAYER_MEAN_TOKENS || (L->kind == NT_LAYER_FLATTEN && !L->tokens))
            continue;   /* per unit (channel), alike, degree 1 */
        if (L->kind == NT_LAYER_DENSE || L->kind == NT_LAYER_CONV || L->kind == NT_LAYER_ATTENTION) w.consumer = q;
        break;
    }
    if (w.consumer >= 0) {   /* does it read the units one slice each? */
        const nt_layer *C = &m->layers[w.consumer];
        if (C->kind == NT_LAYER_DENSE ? C->shape_in[0] % w.n != 0 : C->shape_in[0] != w.n) w.consumer = -1;
    }
    return w;
}

/* Unit j of the normalization at model.layers[i]: role 0 the producer's row (filter) j,
 * 1 its bias j, 2 gamma_j, 3 beta_j, 4 the consumer's slice reading it (count 0: absent). */
static void unit_ranges(const nt_model *m, int i, const norm_at *w, int j, nt_range r[5])
{
    memset(r, 0, sizeof(nt_range) * 5);
    for (int k = 0; k < 5; k++) r[k].stride = r[k].inner = 1;
    int64_t ow, ob, fan;
    if (w->producer >= 0 && w->matched) {
        params_of(m, w->producer, &ow, &ob, &fan);
        r[0] = (nt_range){ ow + j * fan, fan, 1, 1 };
        r[1] = (nt_range){ ob + j, ob >= 0, 1, 1 };
    }
    if (w->off_g >= 0) {
        r[2] = (nt_range){ w->off_g + j, 1, 1, 1 };
        r[3] = (nt_range){ w->off_b + j, 1, 1, 1 };
    }
    if (w->consumer >= 0) {
        const nt_layer *C = &m->layers[w->consumer];
        if (C->kind != NT_LAYER_ATTENTION) params_of(m, w->consumer, &ow, &ob, &fan);
        if (C->kind == NT_LAYER_ATTENTION) {   /* column j of W_Q, W_K and W_V (in_proj_weight, 3D x D) */
            r[4] = (nt_range){ attn_tensor(m, w->consumer, "in_proj_weight") + j, 3 * (int64_t)w->n, w->n, 1 };
        } else if (C->kind == NT_LAYER_CONV) {   /* input channel j of each of its filters */
            const int64_t kk = (int64_t)C->kernel * C->kernel;
            r[4] = (nt_range){ ow + j * kk, C->units * kk, fan, kk };
        } else {                          /* columns j hw .. (j+1) hw - 1 of every row (hw 1: column j) */
            const int64_t hw = C->shape_in[0] / w->n;
            r[4] = (nt_range){ ow + j * hw, (int64_t)C->units * hw, fan, hw };
        }
    }
}

static nt_transform *push(nt_tr_list *L, nt_transform_kind kind, int discrete, int layer, int a)
{
    nt_transform *t = nt_tr_push(L, kind, discrete, 0, 1);
    t->layer = layer;
    t->a = a;
    t->b = a + 1;
    return t;
}

void nt_norm_catalogue(const nt_model *m, nt_tr_list *L)
{
    for (int i = 0; i < m->n_layers; i++) {
        const nt_layer *N = &m->layers[i];
        if (N->kind != NT_LAYER_LAYERNORM && N->kind != NT_LAYER_BATCHNORM) continue;
        const norm_at w = locate(m, i);
        const int affine = w.off_g >= 0, batch = N->kind == NT_LAYER_BATCHNORM;
        for (int j = 0; affine && w.consumer >= 0 && w.p > 0 && j < w.n; j++) {
            nt_transform *t = push(L, NT_TR_NORM_RESCALE, 0, i, j);
            t->p = w.p;
            snprintf(t->name, sizeof t->name, "norm_rescale[layer=%d,unit=%d]", i, j);
        }
        for (int j = 0; w.producer >= 0 && w.matched && w.consumer >= 0 && j + 1 < w.n; j++) {
            nt_transform *t = push(L, NT_TR_NORM_SWAP, 1, i, j);
            snprintf(t->name, sizeof t->name, "norm_swap[layer=%d,units=%d,%d]", i, j, j + 1);
        }
        if (!affine || w.producer < 0 || !w.odd_in) continue;
        for (int j = 0; batch && w.matched && j < w.n; j++) {
            nt_transform *t = push(L, NT_TR_NORM_FLIP, 1, i, j);
            snprintf(t->name, sizeof t->name, "norm_flip[layer=%d,unit=%d]", i, j);
        }
        if (!batch) {
            nt_transform *t = push(L, NT_TR_NORM_FLIP, 1, i, -1);
            snprintf(t->name, sizeof t->name, "norm_flip[layer=%d]", i);
        }
    }
}

int nt_norm_moves(const nt_model *m, const nt_transform *t, nt_move *mv)
{
    const norm_at w = locate(m, t->layer);
    nt_range r[5];
    unit_ranges(m, t->layer, &w, t->a, r);
    mv[0] = (nt_move){ r[2], r[2], 1.0 };    /* gamma_a */
    mv[1] = (nt_move){ r[3], r[3], 1.0 };    /* beta_a */
    mv[2] = (nt_move){ r[4], r[4], -t->p };  /* the consumer's slice */
    return 3;
}

static void negate(const nt_range *r, double *y)
{
    for (int64_t i = 0; i < r->count; i++) y[nt_at(r, i)] = -y[nt_at(r, i)];
}

void nt_norm_map(const nt_model *m, const nt_transform *t, double *y)
{
    const norm_at w = locate(m, t->layer);
    nt_range ra[5], rb[5];
    if (t->kind == NT_TR_NORM_FLIP && t->a < 0) {   /* layer norm: all of the producer, every gamma */
        int64_t ow, ob, fan;
        int units = params_of(m, w.producer, &ow, &ob, &fan);
        nt_range all[3] = { { ow, units * fan, 1, 1 }, { ob, ob >= 0 ? units : 0, 1, 1 }, { w.off_g, w.n, 1, 1 } };
        for (int k = 0; k < 3; k++) negate(&all[k], y);
        return;
    }
    unit_ranges(m, t->layer, &w, t->a, ra);
    if (t->kind == NT_TR_NORM_FLIP) {   /* batch norm: row a, bias a, gamma_a */
        for (int k = 0; k < 3; k++) negate(&ra[k], y);
        return;
    }
    unit_ranges(m, t->layer, &w, t->b, rb);   /* a swap */
    for (int k = 0; k < 5; k++)
        for (int64_t i = 0; i < ra[k].count; i++) {
            double s = y[nt_at(&ra[k], i)];
            y[nt_at(&ra[k], i)] = y[nt_at(&rb[k], i)];
            y[nt_at(&rb[k], i)] = s;
        }
}
