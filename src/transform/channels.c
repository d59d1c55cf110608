/* channels.c: the symmetries of a convolution's channels (docs/theory.md §5, read with a channel
 * in the place of a hidden unit).  Channel j of the convolution P at model.layers[i] owns
 * its filter W_P[j] (C_in k k values) and bias b_P[j]; its values reach the next parametric
 * layer Q (the consumer) through the layers between them, and Q reads them with one slice
 * of its weight: input channel j of every filter of the next convolution (C_out' runs of
 * k' k' values) or, after a flatten, the H' W' columns of channel j in every row of the next
 * dense layer.  Every layer between P and Q acts on each channel alone and alike, so:
 *   - positively homogeneous activations (relu, leaky_relu, identity: 1; square: 2;
 *     products), poolings (average and max: degree 1) and flatten: the channel scaled by e^s
 *     reaches Q scaled by e^{ps}, which Q's slice undoes -> channel_rescale, A = +1 on
 *     filter j and bias j, -p on the slice;
 *   - any elementwise activation, poolings, flatten: channels j and j+1 exchanged in P and in
 *     Q's slices -> channel_swap (S_C by its C-1 adjacent swaps);
 *   - odd activations (tanh, identity) and average pooling (linear), not max pooling
 *     (max(-x) = -min(x)): the channel negated in P and in Q's slice -> channel_sign_flip.
 * A batch normalization (per channel, BatchNorm2d, or per value after a flatten,
 * BatchNorm1d) normalizes each of channel j's values over the batch on its own:
 *   - reached through positively homogeneous activations and poolings, with eps = 0: filter
 *     j and bias j scaled together leave the loss unchanged (the normalization divides the
 *     scale out; with eps > 0 it is broken at O(eps / var)) -> channel_scale, A = +1 on both;
 *   - reached through poolings only (which commute with adding a constant to a channel),
 *     any eps: b_P[j] + s shifts every value of channel j by s, which the batch mean removes
 *     -> channel_shift, A = 0, c = e on bias j, one generator per channel.
 * A layer normalization over C H W reached the same ways: every filter and bias scaled
 * together (channel_scale[layer=i], eps 0) and every bias shifted together (channel_shift,
 * one generator).
 * Beyond a normalization no plain channel rescaling, swap or sign flip is listed (a batch
 * norm's are its own, moving its gains too: norms.c; a layer normalization mixes the
 * channels), nor anything across the start or end of a residual block (the skip connection
 * carries the values past Q).  A square reached through odd maps only (not max pooling),
 * before any normalization or skip: the channel's filter and bias negated alone
 * (channel_even_flip).
 * Homogeneity: the layers before the first dense layer keep the value homogeneous in theta
 * when they are convolutions, positively homogeneous activations, poolings and flatten
 * (anything elementwise before the first parameter, which sees only the data). */
#include <stdlib.h>
#include <string.h>
#include "units.h"

void nt_conv_of(const nt_model *m, int layer, nt_conv *c)
{
    const nt_layer *L = &m->layers[layer];
    *c = (nt_conv){ .layer = layer, .c_out = L->units, .fan = L->shape_in[0] * L->kernel * L->kernel,
                    .off_w = -1, .off_b = -1 };
    for (int t = 0; t < m->n_tensors; t++) {
        if (m->tensors[t].layer != layer) continue;
        if (m->tensors[t].ndim == 4) c->off_w = m->tensors[t].offset;
        else c->off_b = m->tensors[t].offset;
    }
}

/* the next convolution or dense layer after layer i (n_layers: none) */
static int consumer_of(const nt_model *m, int i)
{
    int q = i + 1;
    while (q < m->n_layers && m->layers[q].kind != NT_LAYER_CONV && m->layers[q].kind != NT_LAYER_DENSE) q++;
    return q;
}

void nt_channel_ranges(const nt_model *m, int layer, int j, nt_range r[3])
{
    nt_conv P, Q;
    nt_conv_of(m, layer, &P);
    r[0] = (nt_range){ P.off_w + (int64_t)j * P.fan, P.fan, 1, 1 };
    r[1] = (nt_range){ P.off_b + j, P.off_b >= 0 ? 1 : 0, 1, 1 };
    const int q = consumer_of(m, layer);
    const nt_layer *L = &m->layers[q];
    if (L->kind == NT_LAYER_CONV) {   /* weight (C_out', C_in', k', k'): input channel j of each filter */
        nt_conv_of(m, q, &Q);
        const int64_t kk = (int64_t)L->kernel * L->kernel;
        r[2] = (nt_range){ Q.off_w + j * kk, Q.c_out * kk, Q.fan, kk };
    } else {                          /* dense (n_out x C H' W'): columns j H'W' ... of every row */
        int64_t off = 0;
        for (int t = 0; t < m->n_tensors; t++)
            if (m->tensors[t].layer == q && m->tensors[t].ndim == 2) off = m->tensors[t].offset;
        const int64_t n_in = L->shape_in[0], hw = n_in / P.c_out;
        r[2] = (nt_range){ off + j * hw, (int64_t)L->units * hw, n_in, hw };
    }
}

/* What lies between the convolution at layer i and its consumer (see the top of the file). */
typedef struct {
    double p;            /* degree of the composite before the first normalization (0: not homogeneous) */
    int odd, normed, crossed;
    int even;            /* an even activation (square) after odd maps only, before any mixing */
    int scale, shift;    /* channel_scale and channel_shift through the first normalization */
    int layer_norm;      /* ... a layer norm (over C H W): every channel together */
} path;

static path path_of(const nt_model *m, int i, int has_bias)
{
    path w = { .p = 1, .odd = 1 };
    int only_pools = 1;
    for (int q = i + 1; q < m->n_layers; q++) {
        const nt_layer *L = &m->layers[q];
        if (L->kind == NT_LAYER_CONV || L->kind == NT_LAYER_DENSE) break;
        switch (L->kind) {
        case NT_LAYER_BRANCH: case NT_LAYER_ADD:
            w.crossed = 1;
            break;
        case NT_LAYER_LAYERNORM: case NT_LAYER_BATCHNORM:
            if (!w.normed && !w.crossed) {
                /* (c z - c <z>) / sqrt(c^2 var z + eps) depends on c > 0 only through eps; the
                 * mean removes a constant: per channel over the batch (batch norm), or over all
                 * C H W values of a sample (layer norm: every channel's scale or shift alike) */
                w.scale = w.p > 0 && L->eps == 0;
                w.shift = only_pools && has_bias;
                w.layer_norm = L->kind == NT_LAYER_LAYERNORM;
            }
            w.normed = 1;
            break;
        case NT_LAYER_POOL:   /* degree 1; max pooling is not odd */
            w.odd &= nt_layer_registry(L->kind)->traits(L).odd;
            break;
        case NT_LAYER_ACT:
            w.even |= nt_act_traits(L->act).even && w.odd && !w.normed && !w.crossed;
            if (!w.normed) w.p *= nt_act_traits(L->act).degree;
            w.odd &= nt_act_traits(L->act).odd;
            only_pools = 0;
            break;
        case NT_LAYER_FLATTEN:
            break;
        default:              /* a kind these rules do not know: a barrier */
            w.crossed = 1;
            break;
        }
    }
    return w;
}

/* a new entry of the list, with its layer and channel */
static nt_transform *push(nt_tr_list *L, nt_transform_kind kind, int discrete, int layer, int a, int gens)
{
    nt_transform *t = nt_tr_push(L, kind, discrete, 0, gens);
    t->layer = layer;
    t->a = a;
    return t;
}

void nt_channel_catalogue(const nt_model *m, nt_tr_list *L)
{
    for (int i = 0; i < m->n_layers; i++) {
        if (m->layers[i].kind != NT_LAYER_CONV) continue;
        nt_conv P;
        nt_conv_of(m, i, &P);
        const path w = path_of(m, i, P.off_b >= 0);
        const int C = P.c_out, free_path = !w.normed && !w.crossed;
        for (int j = 0; w.scale && !w.layer_norm && j < C; j++) {
            nt_transform *t = push(L, NT_TR_CHANNEL_SCALE, 0, i, j, 1);
            snprintf(t->name, sizeof t->name, "channel_scale[layer=%d,channel=%d]", i, j);
        }
        if (w.scale && w.layer_norm) {   /* a = -1: every filter and bias */
            nt_transform *t = push(L, NT_TR_CHANNEL_SCALE, 0, i, -1, 1);
            snprintf(t->name, sizeof t->name, "channel_scale[layer=%d]", i);
        }
        if (w.shift) {   /* p = 1 (layer norm): one generator, every bias */
            nt_transform *t = push(L, NT_TR_CHANNEL_SHIFT, 0, i, 0, w.layer_norm ? 1 : C);
            t->p = w.layer_norm;
            snprintf(t->name, sizeof t->name, "channel_shift[layer=%d]", i);
        }
        for (int j = 0; free_path && w.p > 0 && j < C; j++) {
            nt_transform *t = push(L, NT_TR_CHANNEL_RESCALE, 0, i, j, 1);
            t->p = w.p;
            snprintf(t->name, sizeof t->name, "channel_rescale[layer=%d,channel=%d]", i, j);
        }
        for (int j = 0; free_path && j + 1 < C; j++) {
            nt_transform *t = push(L, NT_TR_CHANNEL_SWAP, 1, i, j, 1);
            t->b = j + 1;
            snprintf(t->name, sizeof t->name, "channel_swap[layer=%d,channels=%d,%d]", i, j, j + 1);
        }
        for (int j = 0; w.even && j < C; j++) {   /* square(-z) = square(z): the filter and bias negated */
            nt_transform *t = push(L, NT_TR_CHANNEL_EVEN_FLIP, 1, i, j, 1);
            snprintf(t->name, sizeof t->name, "channel_even_flip[layer=%d,channel=%d]", i, j);
        }
        for (int j = 0; free_path && w.odd && j < C; j++) {
            nt_transform *t = push(L, NT_TR_CHANNEL_SIGN_FLIP, 1, i, j, 1);
            snprintf(t->name, sizeof t->name, "channel_sign_flip[layer=%d,channel=%d]", i, j);
        }
    }
}

int nt_channel_prefix_homogeneous(const nt_model *m, int upto, double *degree)
{
    double deg = 0;
    for (int i = 0; i < upto; i++) {
        const nt_layer *L = &m->layers[i];
        if (L->kind == NT_LAYER_CONV) deg += 1;
        else if (L->kind == NT_LAYER_ACT) {
            if (deg > 0 && nt_act_traits(L->act).degree == 0) return 0;   /* after a parameter: must be homogeneous */
            deg *= nt_act_traits(L->act).degree > 0 ? nt_act_traits(L->act).degree : 1;
        } else if (L->kind != NT_LAYER_POOL && L->kind != NT_LAYER_FLATTEN && L->kind != NT_LAYER_MEAN_TOKENS)
            return 0;   /* a norm, a skip, an attention */
    }
    *degree = deg;
    return 1;
}

int nt_channel_moves(const nt_model *m, const nt_transform *t, nt_move *mv)
{
    nt_range r[3];
    if (t->a < 0) {   /* the scale before a layer norm: the whole filter bank and its biases */
        nt_conv c;
        nt_conv_of(m, t->layer, &c);
        mv[0] = (nt_move){ { c.off_w, (int64_t)c.c_out * c.fan, 1, 1 }, { c.off_w, (int64_t)c.c_out * c.fan, 1, 1 }, 1.0 };
        mv[1] = (nt_move){ { c.off_b, c.off_b >= 0 ? c.c_out : 0, 1, 1 }, { c.off_b, c.off_b >= 0 ? c.c_out : 0, 1, 1 }, 1.0 };
        return 2;
    }
    nt_channel_ranges(m, t->layer, t->a, r);
    int n = 0;
    mv[n++] = (nt_move){ r[0], r[0], 1.0 };   /* filter a */
    mv[n++] = (nt_move){ r[1], r[1], 1.0 };   /* bias a */
    if (t->kind == NT_TR_CHANNEL_RESCALE) mv[n++] = (nt_move){ r[2], r[2], -t->p };   /* the consumer's slice */
    return n;
}
