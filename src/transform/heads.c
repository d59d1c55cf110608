/* heads.c: the per-head transformations of a multi-head self-attention layer (docs/theory.md §5).
 * Head h reads its queries, keys and values through rows h d_h .. (h+1) d_h - 1 of W_Q, W_K,
 * W_V (and of b_Q, b_K, b_V) and writes through the same columns of W_O.  Its scores are
 * q_i^T k_j and its output W_O,h P V_h, so for any invertible N (d_h x d_h):
 *   q -> N q,  k -> N^-T k        leaves q^T k (and the loss) unchanged    gl_qk
 *   v -> N v,  W_O,h -> W_O,h N^-1 leaves W_O,h P V_h unchanged           gl_vo
 * (the rows of P sum to 1, so b_V moves with W_V), with generators E_ab (a row-b-to-row-a
 * move); and the heads can be permuted as a whole (head_swap).  With biases, b_K is free
 * (key_shift) and b_V trades against b_O (value_shift): nt_head_shift below.  None of this depends on what
 * surrounds the layer: residual connections and normalizations keep all of it. */
#include "units.h"

typedef struct {
    int64_t w_in, b_in, w_out;   /* in_proj_weight (3D x D), in_proj_bias (3D; -1: none), out_proj.weight */
    int64_t b_out;               /* out_proj.bias (-1: none) */
    int64_t D, dh;
} attn_at;

static attn_at locate(const nt_model *m, int layer)
{
    attn_at a = { -1, -1, -1, -1, m->layers[layer].shape_in[0], m->layers[layer].shape_in[0] / m->layers[layer].heads };
    for (int t = 0; t < m->n_tensors; t++) {
        const nt_tensor *T = &m->tensors[t];
        if (T->layer != layer) continue;
        if (!strcmp(T->name + strcspn(T->name, "."), ".in_proj_weight")) a.w_in = T->offset;
        else if (!strcmp(T->name + strcspn(T->name, "."), ".in_proj_bias")) a.b_in = T->offset;
        else if (!strcmp(T->name + strcspn(T->name, "."), ".out_proj.weight")) a.w_out = T->offset;
        else if (!strcmp(T->name + strcspn(T->name, "."), ".out_proj.bias")) a.b_out = T->offset;
    }
    return a;
}

enum { Q, K, V };

/* row `row` of head h's block of W_Q, W_K or W_V, and its bias entry (count 0 without biases) */
static nt_range row_of(const attn_at *a, int part, int64_t h, int64_t row)
{
    return (nt_range){ a->w_in + (part * a->D + h * a->dh + row) * a->D, a->D, 1, 0 };
}

static nt_range bias_of(const attn_at *a, int part, int64_t h, int64_t row)
{
    return (nt_range){ a->b_in + part * a->D + h * a->dh + row, a->b_in >= 0 ? 1 : 0, 1, 0 };
}

/* column `col` of head h's block of W_O */
static nt_range col_of(const attn_at *a, int64_t h, int64_t col)
{
    return (nt_range){ a->w_out + h * a->dh + col, a->D, a->D, 0 };
}

int nt_head_moves(const nt_model *m, const nt_transform *t, int i, nt_move *mv)
{
    const attn_at a = locate(m, t->layer);
    const int64_t r = i / a.dh, c = i % a.dh, h = t->a;   /* E_rc */
    if (t->kind == NT_TR_GL_QK) {   /* W_Q,h += s E W_Q,h;  W_K,h -= s E^T W_K,h */
        mv[0] = (nt_move){ row_of(&a, Q, h, r), row_of(&a, Q, h, c), 1.0 };
        mv[1] = (nt_move){ bias_of(&a, Q, h, r), bias_of(&a, Q, h, c), 1.0 };
        mv[2] = (nt_move){ row_of(&a, K, h, c), row_of(&a, K, h, r), -1.0 };
        mv[3] = (nt_move){ bias_of(&a, K, h, c), bias_of(&a, K, h, r), -1.0 };
        return 4;
    }
    /* gl_vo: W_V,h += s E W_V,h;  W_O,h -= s W_O,h E */
    mv[0] = (nt_move){ row_of(&a, V, h, r), row_of(&a, V, h, c), 1.0 };
    mv[1] = (nt_move){ bias_of(&a, V, h, r), bias_of(&a, V, h, c), 1.0 };
    mv[2] = (nt_move){ col_of(&a, h, c), col_of(&a, h, r), -1.0 };
    return 3;
}

/* The bias shifts of attention layer t->layer (generator i: coordinate i of D).  Key: the
 * scores of query q_t are q_t^T (k_u + c), the same q_t^T c added to every key u, which the
 * softmax of the row removes (with or without the causal mask): c = e on b_K[i], A = 0.
 * Value: every row of P sums to 1, so P (V + 1 c^T) = P V + 1 c^T, and the output projection
 * turns c into W_O c, which b_O - W_O c cancels: c = e on b_V[i], A moves -(column i of W_O)
 * into b_O (an affine generator, like a linear layer's bias shift). */
nt_range nt_head_shift(const nt_model *m, const nt_transform *t, int i)
{
    const attn_at a = locate(m, t->layer);
    return (nt_range){ a.b_in + (t->kind == NT_TR_KEY_SHIFT ? a.D : 2 * a.D) + i, 1, 1, 0 };
}

int nt_value_shift_moves(const nt_model *m, const nt_transform *t, int i, nt_move *mv)
{
    const attn_at a = locate(m, t->layer);
    mv[0] = (nt_move){ { a.b_out, a.D, 1, 0 }, { a.w_out + i, a.D, a.D, 0 }, -1.0 };
    return 1;
}

/* y[r] <-> y[s] */
static void swap(const nt_range *r, const nt_range *s, double *y)
{
    for (int64_t i = 0; i < r->count; i++) {
        double t = y[r->start + i * r->stride];
        y[r->start + i * r->stride] = y[s->start + i * s->stride];
        y[s->start + i * s->stride] = t;
    }
}

void nt_head_swap(const nt_model *m, const nt_transform *t, double *y)
{
    const attn_at a = locate(m, t->layer);
    for (int64_t row = 0; row < a.dh; row++) {
        for (int part = Q; part <= V; part++) {
            nt_range ra = row_of(&a, part, t->a, row), rb = row_of(&a, part, t->b, row);
            swap(&ra, &rb, y);
            ra = bias_of(&a, part, t->a, row), rb = bias_of(&a, part, t->b, row);
            swap(&ra, &rb, y);
        }
        nt_range ca = col_of(&a, t->a, row), cb = col_of(&a, t->b, row);
        swap(&ca, &cb, y);
    }
}
