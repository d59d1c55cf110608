/* units.h: where the parameters of a hidden unit live in theta.  Every built-in
 * transformation acts on hidden units (docs/theory.md §5: rows of W_l and b_l, columns of
 * W_{l+1}), on the channels of a convolution (its filter and bias, the next layer's slice
 * reading the channel: a two-level range) or on the rows of the last layer, so they are all
 * written with these ranges. */
#ifndef NT_UNITS_H
#define NT_UNITS_H
#include <string.h>
#include "../model/registry.h"

/* One dense layer of the model: W (n_out x n_in) at off_w, b at off_b (-1: no bias).  Its
 * units are read (unit j: column j) by a reader of rd_rows rows of rd_cols columns at rd_w,
 * with its bias at rd_b (-1: none): the next dense layer, or, when an attention layer comes
 * first (through activations only), its in-projection [W_Q; W_K; W_V] (3D x D) and
 * [b_Q; b_K; b_V]; rd_rows 0 for the last dense layer. */
typedef struct {
    int n_in, n_out;
    int64_t off_w, off_b;
    int layer;       /* index into model.layers */
    int64_t rd_w, rd_b;
    int rd_rows, rd_cols;
} nt_dense;

/* The dense layers in order; returns how many (dense has room for m->n_layers <= NT_MAX_LAYERS). */
int nt_dense_layers(const nt_model *m, nt_dense *dense);

/* A strided run of coordinates: start, start + stride, ... (count of them).  With inner > 1
 * it is two-level: runs of `inner` contiguous coordinates, run r starting at start + r stride
 * (count is the total, a multiple of inner): a conv channel's slice of the next layer, input
 * channel j of every filter (C_out runs of k k) or its H' W' columns in every row of a dense
 * layer after a flatten.  inner 0 (the default of an initializer) means 1. */
typedef struct {
    int64_t start, count, stride, inner;
} nt_range;

/* coordinate i of a range (the header's only function body: one line, inline because the
 * moves' loops call it once per coordinate) */
static inline int64_t nt_at(const nt_range *r, int64_t i)
{
    return r->inner > 1 ? r->start + (i / r->inner) * r->stride + i % r->inner : r->start + i * r->stride;
}

/* The parameters of unit j of hidden layer l (1-based: the output of dense layer l-1):
 * role 0 its row of W_l, role 1 its bias (count 0 without bias), role 2 its column of W_{l+1}
 * (of the reader: an attention layer's in-projection when that reads the units). */
void nt_unit_ranges(const nt_dense *dense, int l, int j, nt_range r[3]);
/* Row i of the last dense layer: role 0 its row of W, role 1 its bias entry. */
void nt_output_ranges(const nt_dense *dense, int n_dense, int i, nt_range r[2]);

/* A structured linear operator is a short list of moves: (A x)[dst_k] += coef x[src_k] for
 * k < count of both ranges.  Every built-in generator is at most 2 n_layers moves. */
typedef struct {
    nt_range dst, src;
    double coef;
} nt_move;

/* The moves of generator i of a built-in continuous transformation (none for a translation
 * or a dense one); returns how many (moves has room for NT_TR_MAX_MOVES). */
#define NT_TR_MAX_MOVES (2 * NT_MAX_LAYERS + 4)
int nt_tr_moves(const nt_model *m, const nt_transform *t, int i, nt_move *moves);
/* the same with m's dense layers D (nt_dense_layers) at hand: for loops over many generators */
int nt_tr_moves_in(const nt_model *m, const nt_dense *D, const nt_transform *t, int i, nt_move *moves);

/* heads.c: generator i (E_ab, i = a d_h + b) of gl_qk or gl_vo of head t->a of attention layer
 * t->layer, as moves (returns how many); y with heads t->a and t->b exchanged (head_swap). */
int nt_head_moves(const nt_model *m, const nt_transform *t, int i, nt_move *moves);
void nt_head_swap(const nt_model *m, const nt_transform *t, double *y);
/* Where the shift of a key_shift or value_shift generator i is 1 (b_K[i], b_V[i]), and the
 * value shift's move (b_O <- -column i of W_O). */
nt_range nt_head_shift(const nt_model *m, const nt_transform *t, int i);
int nt_value_shift_moves(const nt_model *m, const nt_transform *t, int i, nt_move *moves);
/* A growing list of transformations (the catalogue's); nt_tr_push appends a zeroed entry of
 * this kind (catalogue.c). */
typedef struct { nt_transform *v; int n, cap; } nt_tr_list;
nt_transform *nt_tr_push(nt_tr_list *L, nt_transform_kind kind, int discrete, int equiv, int gens);

/* ---- convolution channels (channels.c) ---------------------------------------------- */

/* One convolution of the model: its weight (c_out x fan, fan = C_in k k) at off_w, its bias
 * at off_b (-1: no bias). */
typedef struct {
    int layer, c_out, fan;
    int64_t off_w, off_b;
} nt_conv;

/* The convolution at model.layers[layer]. */
void nt_conv_of(const nt_model *m, int layer, nt_conv *c);
/* The parameters of channel j of the convolution at model.layers[layer]: role 0 its filter,
 * role 1 its bias (count 0 without bias), role 2 the slice of the next convolution or dense
 * layer that reads it (two-level). */
void nt_channel_ranges(const nt_model *m, int layer, int j, nt_range r[3]);
/* The channel entries of the catalogue, appended to L in layer order. */
void nt_channel_catalogue(const nt_model *m, nt_tr_list *L);
/* Whether the layers before model.layers[upto] keep the value positively homogeneous in
 * theta (convolutions, homogeneous activations after them, poolings, flatten; anything
 * elementwise before the first parameter); its degree into *degree. */
int nt_channel_prefix_homogeneous(const nt_model *m, int upto, double *degree);
/* The moves of a channel rescaling or channel scale; returns how many (at most 3). */
int nt_channel_moves(const nt_model *m, const nt_transform *t, nt_move *moves);

/* Where the shift c_i of a built-in generator is 1 (count 0: no shift). */
nt_range nt_tr_shift_range(const nt_model *m, const nt_transform *t, int i);
/* ---- units of a normalization (norms.c) ----------------------------------------------- */

/* The normalization entries of the catalogue (norm_rescale, norm_swap, norm_flip), appended
 * to L in layer order. */
void nt_norm_catalogue(const nt_model *m, nt_tr_list *L);
/* The moves of a norm_rescale; returns how many (3). */
int nt_norm_moves(const nt_model *m, const nt_transform *t, nt_move *moves);
/* y (a copy of x) mapped by a norm_swap or norm_flip in place. */
void nt_norm_map(const nt_model *m, const nt_transform *t, double *y);

/* sum |c_r y_r| of generator i's shift (0 for a linear generator). */
double nt_tr_shift_magnitude(const nt_model *m, const nt_transform *t, int i, const double *y);
/* whether t's generators have a shift c at all (c^T y is 0 for every y otherwise) */
int nt_tr_has_shift(const nt_transform *t);

#endif
