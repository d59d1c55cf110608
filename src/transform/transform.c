/* transform.c: the built-in transformations as structured operators on theta (A, A^T, c, B
 * for continuous generators; T, T^T, rho for discrete maps), never as d x d matrices.
 * User-declared ones (NT_TR_DENSE) carry dense matrices and go through BLAS. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include "units.h"

int nt_dense_layers(const nt_model *m, nt_dense *dense)
{
    int n = 0;
    for (int t = 0; t < m->n_tensors; t++) {
        const nt_tensor *T = &m->tensors[t];
        if (m->layers[T->layer].kind != NT_LAYER_DENSE) continue;   /* a normalization's or a convolution's */
        if (T->ndim == 2) {
            dense[n] = (nt_dense){ .n_in = (int)T->shape[1], .n_out = (int)T->shape[0], .off_w = T->offset,
                                   .off_b = -1, .layer = T->layer };
            n++;
        } else {
            dense[n - 1].off_b = T->offset;
        }
    }
    for (int q = 0; q < n; q++) {   /* the readers: the next dense layer ... */
        nt_dense *P = &dense[q];
        P->rd_w = P->rd_b = -1;
        P->rd_rows = P->rd_cols = 0;
        if (q + 1 < n) {
            P->rd_w = dense[q + 1].off_w; P->rd_b = dense[q + 1].off_b;
            P->rd_rows = dense[q + 1].n_out; P->rd_cols = dense[q + 1].n_in;
        }
        int i = P->layer + 1;   /* ... or an attention layer reached through activations */
        while (i < m->n_layers && m->layers[i].kind == NT_LAYER_ACT) i++;
        if (i == m->n_layers || m->layers[i].kind != NT_LAYER_ATTENTION) continue;
        P->rd_w = P->rd_b = -1;
        P->rd_cols = m->layers[i].shape_in[0];
        P->rd_rows = 3 * P->rd_cols;
        for (int t = 0; t < m->n_tensors; t++) {
            const char *name = m->tensors[t].name + strcspn(m->tensors[t].name, ".");
            if (m->tensors[t].layer != i) continue;
            if (!strcmp(name, ".in_proj_weight")) P->rd_w = m->tensors[t].offset;
            if (!strcmp(name, ".in_proj_bias")) P->rd_b = m->tensors[t].offset;
        }
    }
    return n;
}

void nt_unit_ranges(const nt_dense *D, int l, int j, nt_range r[3])
{
    const nt_dense *in = &D[l - 1];
    r[0] = (nt_range){ in->off_w + (int64_t)j * in->n_in, in->n_in, 1, 1 };
    r[1] = (nt_range){ in->off_b + j, in->off_b >= 0 ? 1 : 0, 1, 1 };
    r[2] = (nt_range){ in->rd_w + j, in->rd_rows, in->rd_cols, 1 };   /* column j of the reader */
}

void nt_output_ranges(const nt_dense *D, int n_dense, int i, nt_range r[2])
{
    const nt_dense *L = &D[n_dense - 1];
    r[0] = (nt_range){ L->off_w + (int64_t)i * L->n_in, L->n_in, 1, 1 };
    r[1] = (nt_range){ L->off_b + i, L->off_b >= 0 ? 1 : 0, 1, 1 };
}

/* y[dst] = coef * x[src] over two ranges of the same count */
static void move(const nt_range *dst, const nt_range *src, double coef, const double *x, double *y)
{
    for (int64_t i = 0; i < dst->count; i++)
        y[nt_at(dst, i)] = coef * x[nt_at(src, i)];
}

/* y[r] <-> y[s] */
static void swap_ranges(const nt_range *r, const nt_range *s, double *y)
{
    for (int64_t i = 0; i < r->count; i++) {
        double t = y[nt_at(r, i)];
        y[nt_at(r, i)] = y[nt_at(s, i)];
        y[nt_at(s, i)] = t;
    }
}

/* the dense layers of m, on the stack of the caller */
#define DENSE(m, D, nd) nt_dense D[NT_MAX_LAYERS]; int nd = nt_dense_layers((m), D); (void)nd

static nt_range whole(int64_t start, int64_t count) { return (nt_range){ start, count, 1, 1 }; }

int nt_tr_moves(const nt_model *m, const nt_transform *t, int i, nt_move *mv)
{
    DENSE(m, D, nd);
    return nt_tr_moves_in(m, D, t, i, mv);
}

int nt_tr_moves_in(const nt_model *m, const nt_dense *D, const nt_transform *t, int i, nt_move *mv)
{
    nt_range ra[3], rb[3];
    int n = 0;
    switch (t->kind) {
    case NT_TR_RESCALE:       /* diagonal: +1 on the unit's row and bias, -p on its column */
        nt_unit_ranges(D, t->layer, t->a, ra);
        mv[n++] = (nt_move){ ra[0], ra[0], 1.0 };
        mv[n++] = (nt_move){ ra[1], ra[1], 1.0 };
        mv[n++] = (nt_move){ ra[2], ra[2], -t->p };
        break;
    case NT_TR_GL: {          /* E_ab acting as (E_ab W_l, E_ab b_l, -W_{l+1} E_ab):
                               * row a <- row b, b_a <- b_b, column b <- -column a */
        int w = D[t->layer - 1].n_out;
        nt_unit_ranges(D, t->layer, i / w, ra);
        nt_unit_ranges(D, t->layer, i % w, rb);
        mv[n++] = (nt_move){ ra[0], rb[0], 1.0 };
        mv[n++] = (nt_move){ ra[1], rb[1], 1.0 };
        mv[n++] = (nt_move){ rb[2], ra[2], -1.0 };
        break;
    }
    case NT_TR_HOMOGENEOUS: { /* diagonal: 1 on weights, k_q (degree of z_q) on biases of dense
                               * or conv q (poolings have degree 1) */
        double deg = 0;
        int q = 0;
        for (int l = 0; l < m->n_layers; l++) {
            const nt_layer *L = &m->layers[l];
            if (L->kind == NT_LAYER_ACT) { deg *= nt_act_traits(L->act).degree; continue; }   /* > 0: homogeneous */
            if (L->kind != NT_LAYER_DENSE && L->kind != NT_LAYER_CONV) continue;   /* never listed with a normalization */
            deg += 1;
            nt_dense Q = L->kind == NT_LAYER_DENSE ? D[q++] : (nt_dense){ 0 };
            if (L->kind == NT_LAYER_CONV) {   /* a filter bank as a c_out x fan matrix */
                nt_conv c;
                nt_conv_of(m, l, &c);
                Q = (nt_dense){ .n_in = c.fan, .n_out = c.c_out, .off_w = c.off_w, .off_b = c.off_b, .layer = l };
            }
            nt_range w = whole(Q.off_w, (int64_t)Q.n_out * Q.n_in), b = whole(Q.off_b, Q.off_b >= 0 ? Q.n_out : 0);
            mv[n++] = (nt_move){ w, w, 1.0 };
            mv[n++] = (nt_move){ b, b, deg };
        }
        break;
    }
    case NT_TR_SCALE: {       /* diagonal: +1 on W and b of the dense layer feeding the normalization */
        const nt_dense *Q = &D[t->layer - 1];
        nt_range w = whole(Q->off_w, (int64_t)Q->n_out * Q->n_in), b = whole(Q->off_b, Q->off_b >= 0 ? Q->n_out : 0);
        mv[n++] = (nt_move){ w, w, 1.0 };
        mv[n++] = (nt_move){ b, b, 1.0 };
        break;
    }
    case NT_TR_UNIT_SCALE:    /* diagonal: +1 on the unit's row and bias (its column untouched) */
        nt_unit_ranges(D, t->layer, t->a, ra);
        mv[n++] = (nt_move){ ra[0], ra[0], 1.0 };
        mv[n++] = (nt_move){ ra[1], ra[1], 1.0 };
        break;
    case NT_TR_BIAS_SHIFT: {  /* b_{l+1} <- -(column i of W_{l+1}): with c = e_{b_l[i]} the flow
                               * b_l += s e_i, b_{l+1} -= s W_{l+1} e_i leaves W_{l+1}(h + b_l) + b_{l+1}
                               * (W_{l+1}, b_{l+1}: the reader, an in-projection included) */
        const nt_dense *in = &D[t->layer - 1];
        mv[n++] = (nt_move){ whole(in->rd_b, in->rd_rows), (nt_range){ in->rd_w + i, in->rd_rows, in->rd_cols, 1 }, -1.0 };
        break;
    }
    case NT_TR_GL_QK: case NT_TR_GL_VO:
        return nt_head_moves(m, t, i, mv);
    case NT_TR_CHANNEL_RESCALE:
    case NT_TR_CHANNEL_SCALE:
        n = nt_channel_moves(m, t, mv);
        break;
    case NT_TR_NORM_RESCALE:
        return nt_norm_moves(m, t, mv);
    case NT_TR_VALUE_SHIFT:
        return nt_value_shift_moves(m, t, i, mv);
    default:                  /* translations: A = 0; dense: not moves */
        break;
    }
    return n;
}

/* y = A x (or A^T x): y is zeroed first */
static void apply_linear(const nt_model *m, const nt_transform *t, int i, int transpose,
                         const double *x, double *y)
{
    const int64_t d = m->d;
    if (t->kind == NT_TR_DENSE) {
        if (t->A) cblas_dgemv(CblasRowMajor, transpose ? CblasTrans : CblasNoTrans, (int)d, (int)d,
                              1.0, t->A, (int)d, x, 1, 0.0, y, 1);
        else memset(y, 0, sizeof(double) * (size_t)d);
        return;
    }
    nt_move mv[NT_TR_MAX_MOVES];
    int n = nt_tr_moves(m, t, i, mv);
    memset(y, 0, sizeof(double) * (size_t)d);
    for (int k = 0; k < n; k++) {
        const nt_range *dst = transpose ? &mv[k].src : &mv[k].dst, *src = transpose ? &mv[k].dst : &mv[k].src;
        for (int64_t j = 0; j < dst->count; j++)
            y[nt_at(dst, j)] += mv[k].coef * x[nt_at(src, j)];
    }
}

void nt_tr_apply_A(const nt_model *m, const nt_transform *t, int i, const double *x, double *y)
{
    apply_linear(m, t, i, 0, x, y);
}

void nt_tr_apply_At(const nt_model *m, const nt_transform *t, int i, const double *x, double *y)
{
    apply_linear(m, t, i, 1, x, y);
}

int nt_tr_has_shift(const nt_transform *t)
{
    switch (t->kind) {
    case NT_TR_BIAS_SHIFT: case NT_TR_CHANNEL_SHIFT: case NT_TR_KEY_SHIFT: case NT_TR_VALUE_SHIFT:
    case NT_TR_NORM_SHIFT: case NT_TR_TRANSLATION:
        return 1;
    case NT_TR_DENSE:
        return t->c != NULL;
    default:
        return 0;
    }
}

/* Where the shift c of generator i is 1 (it is 0 elsewhere): a translation's on the last
 * bias (i = 0, when there is one) or on one column of the last W, both adding the same
 * constant to every logit; a bias shift's on the hidden bias b_l[i]; a normalization
 * shift's on b_l[i] (batch norm) or, for a layer norm, on the whole b_l (i = 0) or one
 * column of W_l, as a translation's.  count 0: no shift. */
static nt_range shift_range(const nt_model *m, const nt_transform *t, int i)
{
    if (t->kind == NT_TR_DENSE || !nt_tr_has_shift(t)) return whole(0, 0);
    DENSE(m, D, nd);
    if (t->kind == NT_TR_BIAS_SHIFT) return whole(D[t->layer - 1].off_b + i, 1);
    if (t->kind == NT_TR_CHANNEL_SHIFT) {   /* bias i of the convolution */
        nt_conv c;
        nt_conv_of(m, t->layer, &c);
        return t->p == 1 ? whole(c.off_b, c.c_out) : whole(c.off_b + i, 1);   /* p = 1: before a layer norm, all */
    }
    if (t->kind == NT_TR_KEY_SHIFT || t->kind == NT_TR_VALUE_SHIFT) return nt_head_shift(m, t, i);
    if (t->kind == NT_TR_NORM_SHIFT && t->p != 1)   /* batch norm: unit i's bias */
        return whole(D[t->layer - 1].off_b + i, 1);
    /* a translation of the last layer, or a layer norm's shift of the layer before it (p = 1):
     * the whole bias (i = 0 when there is one) or one column of W, each adding the same
     * constant to every unit, z -> z + s 1 (W + 1 v^T: the constant v^T h of each sample) */
    const nt_dense *L = t->kind == NT_TR_NORM_SHIFT ? &D[t->layer - 1] : &D[nd - 1];
    int col = L->off_b >= 0 ? i - 1 : i;
    if (col < 0) return whole(L->off_b, L->n_out);
    return (nt_range){ L->off_w + col, L->n_out, L->n_in, 1 };
}

void nt_tr_xi(const nt_model *m, const nt_transform *t, int i, const double *theta, double *xi)
{
    apply_linear(m, t, i, 0, theta, xi);
    if (t->kind == NT_TR_DENSE && t->c) {
        for (int64_t j = 0; j < m->d; j++) xi[j] += t->c[j];
    } else {
        nt_range r = shift_range(m, t, i);
        for (int64_t j = 0; j < r.count; j++) xi[nt_at(&r, j)] += 1.0;
    }
}

double nt_tr_bilinear(const nt_model *m, const nt_transform *t, int i, const double *y, const double *x)
{
    const int64_t d = m->d;
    double s = 0;
    if (t->kind == NT_TR_DENSE) {
        for (int64_t r = 0; t->A && r < d; r++) s += y[r] * cblas_ddot((int)d, t->A + r * d, 1, x, 1);
        return s;
    }
    nt_move mv[NT_TR_MAX_MOVES];
    int n = nt_tr_moves(m, t, i, mv);
    for (int k = 0; k < n; k++) {
        double part = 0;
        for (int64_t j = 0; j < mv[k].dst.count; j++)
            part += y[nt_at(&mv[k].dst, j)] * x[nt_at(&mv[k].src, j)];
        s += mv[k].coef * part;
    }
    return s;
}

double nt_tr_magnitude(const nt_model *m, const nt_transform *t, int i, const double *theta)
{
    const int64_t d = m->d;
    double s = 0;
    if (t->kind == NT_TR_DENSE) {
        for (int64_t r = 0; t->A && r < d; r++)
            for (int64_t c = 0; c < d; c++) s += 0.5 * fabs(theta[r] * t->A[r * d + c] * theta[c]);
        for (int64_t r = 0; t->c && r < d; r++) s += fabs(t->c[r] * theta[r]);
        return s;
    }
    nt_move mv[NT_TR_MAX_MOVES];
    int n = nt_tr_moves(m, t, i, mv);
    for (int k = 0; k < n; k++)
        for (int64_t j = 0; j < mv[k].dst.count; j++)
            s += 0.5 * fabs(mv[k].coef * theta[nt_at(&mv[k].dst, j)] * theta[nt_at(&mv[k].src, j)]);
    nt_range r = shift_range(m, t, i);
    for (int64_t j = 0; j < r.count; j++) s += fabs(theta[nt_at(&r, j)]);
    return s;
}

double nt_tr_shift_magnitude(const nt_model *m, const nt_transform *t, int i, const double *y)
{
    double s = 0;
    if (t->kind == NT_TR_DENSE && t->c) {
        for (int64_t j = 0; j < m->d; j++) s += fabs(t->c[j] * y[j]);
        return s;
    }
    nt_range r = shift_range(m, t, i);
    for (int64_t j = 0; j < r.count; j++) s += fabs(y[nt_at(&r, j)]);
    return s;
}

double nt_tr_shift_dot(const nt_model *m, const nt_transform *t, int i, const double *y)
{
    double s = 0;
    if (t->kind == NT_TR_DENSE && t->c) return cblas_ddot((int)m->d, t->c, 1, y, 1);
    nt_range r = shift_range(m, t, i);
    for (int64_t j = 0; j < r.count; j++) s += y[nt_at(&r, j)];
    return s;
}

void nt_tr_output_B(const nt_model *m, const nt_transform *t, int i, double *B)
{
    const int K = m->output;
    memset(B, 0, sizeof(double) * (size_t)(K * K));
    if (t->kind == NT_TR_HOMOGENEOUS)
        for (int j = 0; j < K; j++) B[j * K + j] = t->p;
    else if (t->kind == NT_TR_DENSE && t->B)
        memcpy(B, t->B, sizeof(double) * (size_t)(K * K));
}

/* y = T x; every built-in map is its own transpose and inverse (a swap or a sign flip) */
static void apply_map(const nt_model *m, const nt_transform *t, int transpose, const double *x, double *y)
{
    DENSE(m, D, nd);
    const int64_t d = m->d;
    if (t->kind == NT_TR_DENSE) {
        cblas_dgemv(CblasRowMajor, transpose ? CblasTrans : CblasNoTrans, (int)d, (int)d, 1.0, t->A,
                    (int)d, x, 1, 0.0, y, 1);
        return;
    }
    memcpy(y, x, sizeof(double) * (size_t)d);
    nt_range ra[3], rb[3];
    switch (t->kind) {
    case NT_TR_SWAP:
        nt_unit_ranges(D, t->layer, t->a, ra);
        nt_unit_ranges(D, t->layer, t->b, rb);
        for (int r = 0; r < 3; r++) swap_ranges(&ra[r], &rb[r], y);
        break;
    case NT_TR_SIGN_FLIP:
        nt_unit_ranges(D, t->layer, t->a, ra);
        for (int r = 0; r < 3; r++) move(&ra[r], &ra[r], -1.0, x, y);
        break;
    case NT_TR_HEAD_SWAP:
        nt_head_swap(m, t, y);
        break;
    case NT_TR_CHANNEL_SWAP:
        nt_channel_ranges(m, t->layer, t->a, ra);
        nt_channel_ranges(m, t->layer, t->b, rb);
        for (int r = 0; r < 3; r++) swap_ranges(&ra[r], &rb[r], y);
        break;
    case NT_TR_CHANNEL_SIGN_FLIP:
        nt_channel_ranges(m, t->layer, t->a, ra);
        for (int r = 0; r < 3; r++) move(&ra[r], &ra[r], -1.0, x, y);
        break;
    case NT_TR_NORM_SWAP: case NT_TR_NORM_FLIP:
        nt_norm_map(m, t, y);
        break;
    case NT_TR_EVEN_FLIP:     /* row a of the dense layer before hidden layer `layer`, and its bias a */
        nt_output_ranges(D, t->layer, t->a, ra);
        for (int r = 0; r < 2; r++) move(&ra[r], &ra[r], -1.0, x, y);
        break;
    case NT_TR_CHANNEL_EVEN_FLIP: {   /* filter a and bias a */
        nt_conv c;
        nt_conv_of(m, t->layer, &c);
        ra[0] = (nt_range){ c.off_w + (int64_t)t->a * c.fan, c.fan, 1, 1 };
        ra[1] = (nt_range){ c.off_b + t->a, c.off_b >= 0, 1, 1 };
        for (int r = 0; r < 2; r++) move(&ra[r], &ra[r], -1.0, x, y);
        break;
    }
    case NT_TR_OUTPUT_SWAP:
        nt_output_ranges(D, nd, t->a, ra);
        nt_output_ranges(D, nd, t->b, rb);
        for (int r = 0; r < 2; r++) swap_ranges(&ra[r], &rb[r], y);
        break;
    default:
        break;
    }
}

void nt_tr_apply_T(const nt_model *m, const nt_transform *t, const double *x, double *y)
{
    apply_map(m, t, 0, x, y);
}

void nt_tr_apply_Tt(const nt_model *m, const nt_transform *t, const double *x, double *y)
{
    apply_map(m, t, 1, x, y);
}

void nt_tr_output_rho(const nt_model *m, const nt_transform *t, double *rho)
{
    const int K = m->output;
    memset(rho, 0, sizeof(double) * (size_t)(K * K));
    for (int j = 0; j < K; j++) rho[j * K + j] = 1;
    if (t->kind == NT_TR_OUTPUT_SWAP) {
        rho[t->a * K + t->a] = rho[t->b * K + t->b] = 0;
        rho[t->a * K + t->b] = rho[t->b * K + t->a] = 1;
    } else if (t->kind == NT_TR_DENSE && t->B) {
        memcpy(rho, t->B, sizeof(double) * (size_t)(K * K));
    }
}

nt_range nt_tr_shift_range(const nt_model *m, const nt_transform *t, int i)
{
    return shift_range(m, t, i);
}
